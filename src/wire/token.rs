//! [`AccessToken`]: a token, when it expires, and the headers for later API calls.

use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use super::{
    headers::{CallerHeaders, secret_header_value},
    response::{PartnerTokenResponse, StandardTokenResponse},
};
use crate::{
    credentials::{SubscriptionKey, TokenSecret},
    error::{Error, answer::UpstreamAnswer, redact::hide_token_like},
    flow::Flow,
};

/// When a request was sent, by both clocks: expiry is computed from the moment
/// *before* sending, so that latency can only make the token look older, never younger.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SentAt {
    pub(crate) instant: Instant,
    pub(crate) wall: SystemTime,
}

impl SentAt {
    pub(crate) fn now() -> Self {
        let wall = SystemTime::now();
        // Unit tests move the wall clock ahead (a suspend): a request sent afterwards is
        // sent on that clock too.
        #[cfg(test)]
        let wall = wall + crate::time::test_clock::ahead();
        Self {
            // tokio's clock, so that tests can drive expiry with paused time.
            instant: tokio::time::Instant::now().into_std(),
            wall,
        }
    }
}

/// An access token and everything needed to use it.
///
/// `Debug` shows when it expires but never the token or the subscription key.
#[derive(Clone, Debug)]
pub struct AccessToken {
    secret: TokenSecret,
    token_type: String,
    flow: Flow,
    sent_at: SentAt,
    expires_in: Duration,
    ext_expires_in: Option<Duration>,
    expires_at: SystemTime,
    expires_at_instant: Instant,
    server_expires_on: Option<SystemTime>,
    server_not_before: Option<SystemTime>,
    resource: Option<String>,
    call_headers: HeaderMap,
    /// The body the token came in, as sent, when it is known: the token broker answers
    /// with it. `Debug` shows only its length.
    answer: Option<UpstreamAnswer>,
}

impl AccessToken {
    pub(crate) fn from_standard(
        body: StandardTokenResponse,
        flow: Flow,
        sent_at: SentAt,
        subscription_key: &SubscriptionKey,
        caller: &CallerHeaders,
    ) -> Result<Self, Error> {
        let mut token = Self::new(
            body.access_token,
            body.token_type,
            body.expires_in,
            flow,
            sent_at,
        )?;
        token.ext_expires_in = Some(Duration::from_secs(body.ext_expires_in));
        token.server_expires_on = Some(unix_seconds("expires_on", body.expires_on)?);
        token.server_not_before = Some(unix_seconds("not_before", body.not_before)?);
        token.resource = Some(body.resource);
        token.call_headers.insert(
            HeaderName::from_static("ocp-apim-subscription-key"),
            secret_header_value(
                "Ocp-Apim-Subscription-Key",
                subscription_key.expose_secret(),
            )?,
        );
        caller.insert_into(&mut token.call_headers)?;
        Ok(token)
    }

    pub(crate) fn from_partner(
        body: PartnerTokenResponse,
        sent_at: SentAt,
        caller: &CallerHeaders,
    ) -> Result<Self, Error> {
        let mut token = Self::new(
            body.access_token,
            body.token_type,
            body.expires_in,
            Flow::Partner,
            sent_at,
        )?;
        caller.insert_into(&mut token.call_headers)?;
        Ok(token)
    }

    fn new(
        secret: TokenSecret,
        token_type: String,
        expires_in: u64,
        flow: Flow,
        sent_at: SentAt,
    ) -> Result<Self, Error> {
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(Error::invalid_response(
                "token_type",
                format!(
                    "expected `Bearer`, got {}",
                    hide_token_like(&format!("{token_type:?}"))
                ),
            ));
        }
        // The API only accepts `Bearer` with a capital B, whatever token_type says.
        let bearer = format!("Bearer {}", secret.expose_secret());
        let authorization = secret_header_value("access_token", &bearer).map_err(|_| {
            Error::invalid_response(
                "access_token",
                "holds characters an HTTP header cannot carry",
            )
        })?;
        let mut call_headers = HeaderMap::new();
        call_headers.insert(AUTHORIZATION, authorization);
        let expires_in = usable_lifetime(expires_in)?;
        let (Some(expires_at), Some(expires_at_instant)) = (
            sent_at.wall.checked_add(expires_in),
            sent_at.instant.checked_add(expires_in),
        ) else {
            return Err(out_of_range("expires_in"));
        };
        Ok(Self {
            secret,
            token_type,
            flow,
            sent_at,
            expires_in,
            ext_expires_in: None,
            expires_at,
            expires_at_instant,
            server_expires_on: None,
            server_not_before: None,
            resource: None,
            call_headers,
            answer: None,
        })
    }

    /// The shortest life a token is accepted with: `expires_in` of 1 second. A token of
    /// 0 seconds is expired when it arrives, so it is an [`Error::InvalidResponse`]: handed
    /// out, it would fail every call, and a cache would fetch it again in a loop.
    pub const MIN_LIFETIME: Duration = Duration::from_secs(1);

    /// The longest life counted from `expires_in`: 7 days. The API issues 15 minutes to
    /// 24 hours; a larger value is taken as this, so that every time counted from it
    /// (here and in a cache) stays far from overflowing.
    pub const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

    /// The same token, with the answer it came in as sent.
    pub(crate) fn with_answer(mut self, answer: Option<UpstreamAnswer>) -> Self {
        self.answer = answer;
        self
    }

    /// The answer the token came in, as sent, when it is known.
    #[cfg_attr(not(any(feature = "store", feature = "broker")), allow(dead_code))]
    pub(crate) fn answer(&self) -> Option<&UpstreamAnswer> {
        self.answer.as_ref()
    }

    /// The token itself (a JWT). Call `expose_secret()` on it where it must be sent.
    pub fn secret(&self) -> &TokenSecret {
        &self.secret
    }

    /// `token_type` as the server sent it (`Bearer`).
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// Which endpoint issued the token.
    pub fn flow(&self) -> Flow {
        self.flow
    }

    /// How long the token is valid for, as the server said (`expires_in`), at most
    /// [`Self::MAX_LIFETIME`].
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// `ext_expires_in` as the server sent it (standard and legacy flows only; documented
    /// as not used).
    pub fn ext_expires_in(&self) -> Option<Duration> {
        self.ext_expires_in
    }

    /// When the token expires by the local clock: the moment the request was sent plus
    /// `expires_in`. Slightly early, never late.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// [`Self::expires_at`] on the monotonic clock, immune to changes of the wall clock.
    pub fn expires_at_instant(&self) -> Instant {
        self.expires_at_instant
    }

    /// When the request for this token was sent, on the monotonic clock.
    pub fn requested_at_instant(&self) -> Instant {
        self.sent_at.instant
    }

    /// True once [`Self::expires_at_instant`] has passed.
    pub fn is_expired(&self) -> bool {
        tokio::time::Instant::now().into_std() >= self.expires_at_instant()
    }

    /// `expires_on` as the server sent it (standard and legacy flows only).
    pub fn server_expires_on(&self) -> Option<SystemTime> {
        self.server_expires_on
    }

    /// `not_before` as the server sent it (standard and legacy flows only).
    pub fn server_not_before(&self) -> Option<SystemTime> {
        self.server_not_before
    }

    /// `resource` as the server sent it (standard and legacy flows only).
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// `Authorization: Bearer <token>`, marked sensitive.
    pub fn authorization_header(&self) -> &HeaderValue {
        &self.call_headers[AUTHORIZATION]
    }

    /// Every header a later call to another Vipps MobilePay API needs: `Authorization`,
    /// the subscription key (standard and legacy flows), `Merchant-Serial-Number` and the
    /// `Vipps-System-*` headers. Secret values are marked sensitive.
    pub fn headers(&self) -> &HeaderMap {
        &self.call_headers
    }
}

/// `expires_in` as a lifetime: refused below [`AccessToken::MIN_LIFETIME`], clamped to
/// [`AccessToken::MAX_LIFETIME`].
fn usable_lifetime(expires_in: u64) -> Result<Duration, Error> {
    let lifetime = Duration::from_secs(expires_in);
    if lifetime < AccessToken::MIN_LIFETIME {
        return Err(Error::invalid_response(
            "expires_in",
            format!(
                "is {expires_in}: the token is expired on arrival (at least {} s is needed)",
                AccessToken::MIN_LIFETIME.as_secs()
            ),
        ));
    }
    if lifetime > AccessToken::MAX_LIFETIME {
        tracing::debug!(
            expires_in,
            max_secs = AccessToken::MAX_LIFETIME.as_secs(),
            "expires_in is longer than any token the API issues: counting the maximum instead"
        );
        return Ok(AccessToken::MAX_LIFETIME);
    }
    Ok(lifetime)
}

fn unix_seconds(field: &str, seconds: u64) -> Result<SystemTime, Error> {
    crate::time::from_unix_seconds(seconds).ok_or_else(|| out_of_range(field))
}

fn out_of_range(field: &str) -> Error {
    Error::invalid_response(field, "is too large to be a time")
}

/// The server's `expires_on` and the local clock more than this far apart earn a warning.
const CLOCK_SKEW_WARNING: Duration = Duration::from_secs(60);

impl AccessToken {
    /// How far the server's `expires_on` is from the expiry computed here (`expires_in`
    /// after the request was sent), when the server sent one: the two clocks' skew, plus
    /// the request's latency.
    pub fn clock_skew(&self) -> Option<Duration> {
        let server = self.server_expires_on?;
        Some(crate::time::abs_diff(server, self.expires_at))
    }

    /// Warns when the clocks disagree by more than a minute. Expiry is counted from
    /// `expires_in`, so the token stays safe either way; the warning is for the operator.
    pub(crate) fn warn_on_clock_skew(&self) {
        if let Some(skew) = self.clock_skew().filter(|skew| *skew > CLOCK_SKEW_WARNING) {
            tracing::warn!(
                skew_secs = skew.as_secs(),
                "the server's expires_on and the local clock disagree by more than a minute: \
                 check the clock (expiry is counted from expires_in, so tokens stay safe)"
            );
        }
    }
}
