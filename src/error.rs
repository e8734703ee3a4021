//! One error type for every way a token request can fail, and the parsed error bodies.
//!
//! Each message says what went wrong and what to do about it. No message holds a
//! secret: credentials are never echoed, and bodies are shown as short redacted excerpts.

use std::{fmt, sync::Arc, time::Duration};

use serde::Deserialize;

use crate::{
    redact::{excerpt, hide_secrets},
    token::Flow,
};

/// Everything that can go wrong when asking for a token.
/// Cheap to clone, so that one failed attempt can be handed to every caller that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value was rejected before anything was sent.
    #[error("{field} {reason}; nothing was sent")]
    InvalidInput {
        /// The field or header at fault, for example `Merchant-Serial-Number`.
        field: &'static str,
        /// Why it was rejected. Never contains the value itself.
        reason: String,
    },
    /// The API answered with a status other than 200.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The request did not complete: no connection, a timeout, a broken connection.
    #[error("{}", transport_message(.0))]
    Transport(#[source] Arc<reqwest::Error>),
    /// The task fetching a token ended without an answer: its runtime shut down.
    #[error("the token request was interrupted because its runtime shut down; try again")]
    Interrupted,
    /// The response body was larger than [`crate::MAX_RESPONSE_BYTES`]; reading stopped there.
    #[error(
        "the response (HTTP {status}) is larger than {limit} bytes, far more than a token needs; \
         reading stopped there. Check that the base URL points at the Access Token API"
    )]
    ResponseTooLarge {
        /// The HTTP status of the response.
        status: u16,
        /// The limit that was passed.
        limit: usize,
    },
    /// The API answered 200 with a body that is not a token response.
    #[error(
        "the token response (HTTP {status}) could not be read: {}{reason}; body starts: {excerpt:?}. \
         Check that the base URL points at the Access Token API and not at a proxy or login page",
        .field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default()
    )]
    InvalidResponse {
        /// The HTTP status of the response.
        status: u16,
        /// The field that could not be read, when one can be named.
        field: Option<String>,
        /// What was wrong with it.
        reason: String,
        /// The start of the body, with anything that looks like a token or key redacted.
        excerpt: String,
    },
}

impl Error {
    pub(crate) fn invalid_input(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn transport(error: reqwest::Error) -> Self {
        Self::Transport(Arc::new(error))
    }

    /// The HTTP status the API answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(api) => Some(api.status),
            Self::InvalidResponse { status, .. } | Self::ResponseTooLarge { status, .. } => {
                Some(*status)
            }
            Self::Transport(error) => error.status().map(|s| s.as_u16()),
            Self::InvalidInput { .. } | Self::Interrupted => None,
        }
    }

    /// True for failures that may pass if tried again: no connection, a timeout, or the
    /// statuses 429, 500, 502, 503 and 504.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(error) => error.is_connect() || error.is_timeout(),
            Self::Api(api) => matches!(api.status, 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// True when the API rejected the credentials (401 or 403): retrying will not help.
    pub fn is_credentials_rejected(&self) -> bool {
        matches!(self, Self::Api(api) if api.status == 401 || api.status == 403)
    }
}

fn transport_message(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "was redirected, which is refused so that credentials never reach another host"
    } else if error.is_body() || error.is_decode() {
        "broke off while reading the response"
    } else {
        "failed"
    };
    let url = error.url().map(|u| format!(" to {u}")).unwrap_or_default();
    format!(
        "the token request{url} {what}: check the base URL, the network and any proxy; \
         retrying later is safe"
    )
}

/// An answer from the API with a status other than 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    flow: Flow,
    status: u16,
    body: ErrorBody,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// Builds the error from the status and the raw body, parsing the body's shape, and
    /// hides every known secret wherever the server may have echoed it.
    pub(crate) fn new(
        flow: Flow,
        status: u16,
        retry_after: Option<Duration>,
        body: &[u8],
        secrets: &[&str],
    ) -> Self {
        let raw = String::from_utf8_lossy(body);
        let mut body = ErrorBody::parse(hide_secrets(&raw, secrets).as_bytes());
        // Again after parsing: JSON escapes (`\u003d` for `=`) hide a secret from the raw text.
        body.hide_secrets(secrets);
        Self {
            flow,
            status,
            body,
            retry_after,
        }
    }

    /// How long the server asked to wait before trying again (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The flow whose request was answered.
    pub fn flow(&self) -> Flow {
        self.flow
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body, parsed into one of the documented shapes where it has one.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }

    /// What to do about this answer, in one sentence.
    pub fn hint(&self) -> &'static str {
        let body = &self.body;
        match self.status {
            400 if body.mentions_any(&["AADSTS700016", "AADSTS70001"]) => {
                "the client_id was not found: check it, and that test keys go to the test \
                 environment (apitest.vipps.no) and production keys to production (api.vipps.no)"
            }
            400 if body.error_code() == Some("unsupported_grant_type") => {
                "the partner endpoint needs the form body grant_type=client_credentials"
            }
            400 if self.flow == Flow::Partner => {
                "check the Basic credentials (management or accounting keys) and that the form \
                 body carries grant_type=client_credentials: without it the endpoint answers \
                 invalid_client"
            }
            400 => {
                "the request was refused: check client_id, client_secret and that the keys \
                 belong to the environment you call"
            }
            401 if self.flow == Flow::Partner => {
                "the partner keys were rejected: check client_id and client_secret (management \
                 or accounting keys), and call production: the partner flow has no test environment"
            }
            401 if body.mentions_any(&["subscription key"]) => {
                "the subscription key is missing or wrong: use the Ocp-Apim-Subscription-Key \
                 of the same sales unit and environment as the client_id"
            }
            401 => {
                "the credentials were rejected: check client_secret (and the subscription key), \
                 and that test keys are not used against production or the other way round"
            }
            403 => {
                "the keys are valid but lack access: the product may not be active for this \
                 sales unit, or these keys need the other token endpoint (management and \
                 accounting keys use the partner flow)"
            }
            404 => {
                "nothing answers at this path: check the base URL (https://api.vipps.no or \
                 https://apitest.vipps.no) and the token path"
            }
            408 | 429 => "the API asks you to slow down: retry later, with backoff",
            500..=599 => {
                "a server error on Vipps MobilePay's side: retry later, with backoff; if it \
                 persists, report the status and any trace id to Vipps MobilePay"
            }
            _ => "an undocumented answer: check the base URL and any proxy in between",
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let body = self.body.to_string();
        write!(
            f,
            "the Access Token API answered HTTP {} {reason}: {}; {}",
            self.status,
            body.trim_end_matches('.'),
            self.hint()
        )
    }
}

impl std::error::Error for ApiError {}

/// An error body, in one of the shapes the API is known to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorBody {
    /// Azure AD's shape, from `POST /accesstoken/get` (`AADSTS...` errors).
    AzureAd(AzureAdError),
    /// The API gateway's shape: `{"statusCode": 401, "message": "..."}`, or its 404
    /// shape with `responseInfo`.
    Gateway(GatewayError),
    /// OAuth 2.0's shape (RFC 6749 section 5.2), from the partner endpoint.
    OAuth(OAuthError),
    /// No body at all.
    Empty,
    /// Anything else (an HTML page from a proxy, say), kept as text.
    Text(String),
}

/// Azure AD's error body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AzureAdError {
    /// The OAuth error code, for example `unauthorized_client`.
    pub error: String,
    /// A description starting with an `AADSTS` code.
    #[serde(default)]
    pub error_description: Option<String>,
    /// The numeric `AADSTS` codes, for example `[700016]`.
    #[serde(default)]
    pub error_codes: Vec<u64>,
    /// When it happened, for example `2022-11-17 11:37:08Z`.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// The trace id to quote to support.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// The correlation id to quote to support.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// A link to Microsoft's description of the error.
    #[serde(default)]
    pub error_uri: Option<String>,
}

/// The API gateway's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    /// The status the gateway reports in the body, where it does.
    pub status_code: Option<u64>,
    /// The gateway's message.
    pub message: String,
}

/// An OAuth 2.0 error body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OAuthError {
    /// The error code, for example `invalid_client`.
    pub error: String,
    /// A human-readable description.
    #[serde(default)]
    pub error_description: Option<String>,
    /// A link to a description of the error.
    #[serde(default)]
    pub error_uri: Option<String>,
}

/// The gateway's two shapes: `{statusCode, message}` and `{responseInfo: {...}, result: {...}}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum GatewayWire {
    Plain {
        #[serde(rename = "statusCode", default, deserialize_with = "optional_number")]
        status_code: Option<u64>,
        message: String,
    },
    NotFound {
        #[serde(rename = "responseInfo")]
        response_info: ResponseInfo,
    },
}

#[derive(Deserialize)]
struct ResponseInfo {
    #[serde(rename = "responseCode", default, deserialize_with = "optional_number")]
    response_code: Option<u64>,
    #[serde(rename = "responseMessage", default)]
    response_message: Option<String>,
}

fn optional_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    crate::response::integer_or_digits(d).map(Some)
}

/// Hides each secret in every string of `json`, keys included.
fn hide_in_json(json: &mut serde_json::Value, secrets: &[&str]) {
    use serde_json::Value;
    match json {
        Value::String(text) => *text = hide_secrets(text, secrets),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| hide_in_json(item, secrets)),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut value) in entries {
                hide_in_json(&mut value, secrets);
                map.insert(hide_secrets(&key, secrets), value);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Fields only Azure AD sends; any of them tells its shape from plain OAuth 2.0.
const AZURE_AD_FIELDS: [&str; 4] = ["error_codes", "trace_id", "correlation_id", "timestamp"];

impl ErrorBody {
    /// Recognises the shape of `body`; falls back to [`ErrorBody::Text`].
    pub fn parse(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        if text.trim().is_empty() {
            return Self::Empty;
        }
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text) else {
            return Self::Text(text.into_owned());
        };
        let value = serde_json::Value::Object(map);
        if value.get("error").is_some_and(|e| e.is_string()) {
            let azure = AZURE_AD_FIELDS.iter().any(|f| value.get(f).is_some());
            let parsed = if azure {
                AzureAdError::deserialize(&value).map(Self::AzureAd)
            } else {
                OAuthError::deserialize(&value).map(Self::OAuth)
            };
            if let Ok(parsed) = parsed {
                return parsed;
            }
        }
        match GatewayWire::deserialize(&value) {
            Ok(GatewayWire::Plain {
                status_code,
                message,
            }) => Self::Gateway(GatewayError {
                status_code,
                message,
            }),
            Ok(GatewayWire::NotFound { response_info }) => Self::Gateway(GatewayError {
                status_code: response_info.response_code,
                message: response_info.response_message.unwrap_or_default(),
            }),
            Err(_) => Self::Text(text.into_owned()),
        }
    }

    /// The OAuth-style error code (`unauthorized_client`, `invalid_client`, ...), if any.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Self::AzureAd(e) => Some(&e.error),
            Self::OAuth(e) => Some(&e.error),
            _ => None,
        }
    }

    /// The server's human-readable description, if any.
    pub fn description(&self) -> Option<&str> {
        match self {
            Self::AzureAd(e) => e.error_description.as_deref(),
            Self::OAuth(e) => e.error_description.as_deref(),
            Self::Gateway(e) => Some(&e.message),
            Self::Empty | Self::Text(_) => None,
        }
    }

    /// Replaces each secret in every text the body holds with `[redacted]`.
    fn hide_secrets(&mut self, secrets: &[&str]) {
        let hide = |text: &mut String| *text = hide_secrets(text, secrets);
        let hide_opt = |text: &mut Option<String>| {
            if let Some(text) = text {
                *text = hide_secrets(text, secrets);
            }
        };
        match self {
            Self::AzureAd(e) => {
                hide(&mut e.error);
                hide_opt(&mut e.error_description);
                hide_opt(&mut e.timestamp);
                hide_opt(&mut e.trace_id);
                hide_opt(&mut e.correlation_id);
                hide_opt(&mut e.error_uri);
            }
            Self::OAuth(e) => {
                hide(&mut e.error);
                hide_opt(&mut e.error_description);
                hide_opt(&mut e.error_uri);
            }
            Self::Gateway(e) => hide(&mut e.message),
            Self::Text(text) => match serde_json::from_str::<serde_json::Value>(text) {
                // JSON of no known shape: escapes (`\u003d`) could still hide a secret.
                Ok(mut json) => {
                    hide_in_json(&mut json, secrets);
                    *text = json.to_string();
                }
                Err(_) => hide(text),
            },
            Self::Empty => {}
        }
    }

    fn mentions_any(&self, needles: &[&str]) -> bool {
        let description = self.description().unwrap_or_default();
        needles.iter().any(|n| description.contains(n))
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AzureAd(e) => {
                write!(f, "{}", e.error)?;
                if let Some(d) = &e.error_description {
                    // Azure appends trace lines after the first; the first says it all.
                    write!(f, " ({})", d.lines().next().unwrap_or_default())?;
                }
                if let Some(t) = &e.trace_id {
                    write!(f, " [trace id {t}]")?;
                }
                Ok(())
            }
            Self::OAuth(e) => {
                write!(f, "{}", e.error)?;
                match &e.error_description {
                    Some(d) => write!(f, " ({d})"),
                    None => Ok(()),
                }
            }
            Self::Gateway(e) => write!(f, "{}", e.message),
            Self::Empty => f.write_str("empty body"),
            Self::Text(text) => write!(f, "body starts {:?}", excerpt(text.as_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_azure_ad_from_plain_oauth() {
        let azure = br#"{"error":"invalid_client","error_codes":[7000215],"trace_id":"t"}"#;
        assert!(
            matches!(ErrorBody::parse(azure), ErrorBody::AzureAd(e) if e.error_codes == [7000215])
        );
        let oauth = br#"{"error":"invalid_client","error_description":"bad"}"#;
        assert!(
            matches!(ErrorBody::parse(oauth), ErrorBody::OAuth(e) if e.error == "invalid_client")
        );
    }

    #[test]
    fn reads_both_gateway_shapes() {
        let plain = br#"{"statusCode": 401, "message": "Access denied"}"#;
        assert_eq!(
            ErrorBody::parse(plain),
            ErrorBody::Gateway(GatewayError {
                status_code: Some(401),
                message: "Access denied".into()
            })
        );
        let not_found =
            br#"{"responseInfo":{"responseCode":404,"responseMessage":"Gone"},"result":{}}"#;
        assert_eq!(
            ErrorBody::parse(not_found),
            ErrorBody::Gateway(GatewayError {
                status_code: Some(404),
                message: "Gone".into()
            })
        );
    }

    #[test]
    fn keeps_anything_else_as_text() {
        assert_eq!(ErrorBody::parse(b""), ErrorBody::Empty);
        assert_eq!(
            ErrorBody::parse(b"<html>502</html>"),
            ErrorBody::Text("<html>502</html>".into())
        );
        assert_eq!(ErrorBody::parse(b"[1,2]"), ErrorBody::Text("[1,2]".into()));
        assert_eq!(
            ErrorBody::parse(br#"{"other":1}"#),
            ErrorBody::Text(r#"{"other":1}"#.into())
        );
    }
}
