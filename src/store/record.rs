//! The plaintext of a stored record (before sealing): the token and the response fields
//! it came with, and the wall-clock time its request was sent. Turned back into an
//! [`AccessToken`] with this process's own headers: the subscription key is never stored.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{
    client::{Client, source::TokenSource},
    credentials::TokenSecret,
    error::answer::UpstreamAnswer,
    flow::Flow,
    wire::{
        response::{PartnerTokenResponse, StandardTokenResponse},
        token::{AccessToken, SentAt},
    },
};

use super::StoreError;

/// One token as stored. Field names are short and stable: this is the record format
/// (version 1, see `seal.rs`).
#[derive(Serialize, Deserialize)]
pub(crate) struct TokenRecord {
    flow: StoredFlow,
    access_token: String,
    token_type: String,
    expires_in: u64,
    /// When the request was sent, in Unix milliseconds: the start of the token's life.
    requested_at_ms: u64,
    ext_expires_in: Option<u64>,
    expires_on: Option<u64>,
    not_before: Option<u64>,
    resource: Option<String>,
    /// The body the token came in, as sent, and its content type: the token broker
    /// answers with it. Absent in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<StoredAnswer>,
}

/// A token's answer as sent. A token body is JSON, so it is text.
#[derive(Serialize, Deserialize)]
struct StoredAnswer {
    content_type: Option<String>,
    body: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredFlow {
    Standard,
    Partner,
    Legacy,
}

impl TokenRecord {
    /// The record of `token`.
    pub(crate) fn of(token: &AccessToken) -> Self {
        let requested = token
            .expires_at()
            .checked_sub(token.expires_in())
            .unwrap_or(UNIX_EPOCH);
        Self {
            flow: match token.flow() {
                Flow::Standard => StoredFlow::Standard,
                Flow::Partner => StoredFlow::Partner,
                Flow::Legacy => StoredFlow::Legacy,
            },
            access_token: token.secret().expose_secret().to_owned(),
            token_type: token.token_type().to_owned(),
            expires_in: token.expires_in().as_secs(),
            requested_at_ms: unix_millis(requested),
            ext_expires_in: token.ext_expires_in().map(|d| d.as_secs()),
            expires_on: token.server_expires_on().map(|t| unix_millis(t) / 1000),
            not_before: token.server_not_before().map(|t| unix_millis(t) / 1000),
            resource: token.resource().map(str::to_owned),
            answer: token.answer().and_then(|answer| {
                Some(StoredAnswer {
                    content_type: answer.content_type().map(str::to_owned),
                    body: String::from_utf8(answer.body().to_vec()).ok()?,
                })
            }),
        }
    }

    /// The record as JSON bytes, to be sealed.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and numbers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A record from opened bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes).map_err(|error| {
            StoreError::Corrupt(format!(
                "the opened record is not a token record (at line {}, column {})",
                error.line(),
                error.column()
            ))
        })
    }

    /// True when this is the record of `token`.
    pub(crate) fn holds(&self, token: &AccessToken) -> bool {
        self.access_token == token.secret().expose_secret()
    }

    /// When the token expires by the wall clock.
    pub(crate) fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH
            + Duration::from_millis(self.requested_at_ms)
            + Duration::from_secs(self.expires_in)
    }

    /// The token, with the headers `client` and `source` give it in this process.
    pub(crate) fn into_token(
        self,
        source: &TokenSource,
        client: &Client,
    ) -> Result<AccessToken, StoreError> {
        let sent_at = sent_at(UNIX_EPOCH + Duration::from_millis(self.requested_at_ms))
            .ok_or_else(|| {
                StoreError::Foreign("the record is older than this host's uptime".to_owned())
            })?;
        let answer = self.answer.as_ref().map(|answer| {
            UpstreamAnswer::new(200, answer.content_type.as_deref(), answer.body.as_bytes())
        });
        let secret = TokenSecret::new(self.access_token);
        let caller = &client.caller;
        let rebuilt = match (self.flow, source) {
            (StoredFlow::Partner, TokenSource::Partner { .. }) => AccessToken::from_partner(
                PartnerTokenResponse {
                    access_token: secret,
                    token_type: self.token_type,
                    expires_in: self.expires_in,
                },
                sent_at,
                caller,
            ),
            (StoredFlow::Standard, TokenSource::Standard(credentials))
            | (StoredFlow::Legacy, TokenSource::Legacy { credentials, .. }) => {
                let flow = if self.flow == StoredFlow::Legacy {
                    Flow::Legacy
                } else {
                    Flow::Standard
                };
                let (Some(ext_expires_in), Some(expires_on), Some(not_before), Some(resource)) = (
                    self.ext_expires_in,
                    self.expires_on,
                    self.not_before,
                    self.resource,
                ) else {
                    return Err(StoreError::Corrupt(
                        "a standard-flow record lacks a response field".to_owned(),
                    ));
                };
                let body = StandardTokenResponse {
                    token_type: self.token_type,
                    expires_in: self.expires_in,
                    ext_expires_in,
                    expires_on,
                    not_before,
                    resource,
                    access_token: secret,
                };
                AccessToken::from_standard(
                    body,
                    flow,
                    sent_at,
                    &credentials.subscription_key,
                    caller,
                )
            }
            _ => {
                return Err(StoreError::Foreign(
                    "the record is of another flow than asked for".to_owned(),
                ));
            }
        };
        rebuilt.map(|token| token.with_answer(answer)).map_err(|_| {
            StoreError::Corrupt("the record does not describe a usable token".to_owned())
        })
    }
}

/// The moment a request was sent by another process, on this process's clocks. A time
/// ahead of our wall clock (another host's clock runs fast) counts as now. None when it
/// is older than this host's monotonic clock can express (a host booted since).
fn sent_at(requested: SystemTime) -> Option<SentAt> {
    let now = SentAt::now();
    let age = now.wall.duration_since(requested).unwrap_or_default();
    Some(SentAt {
        instant: now.instant.checked_sub(age)?,
        wall: now.wall.checked_sub(age)?,
    })
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
