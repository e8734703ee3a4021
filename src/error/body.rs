//! The three error-body shapes the API sends (Azure AD, the API gateway, OAuth 2.0), told
//! apart and parsed, with anything else kept as text.

use std::fmt;

use serde::Deserialize;

use super::redact::{
    hide_secrets, hide_secrets_in_json, hide_token_like, one_line, redact, redact_id, text_excerpt,
};

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
    /// Anything else (an HTML page from a proxy, say), kept as text: at most its first
    /// 2 KiB (cut on a character boundary), anything shaped like a token or a key (and, in
    /// an [`ApiError`](crate::ApiError), the caller's secrets) hidden, and a longer body
    /// ending with `…[N more bytes]`.
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
    crate::integer_or_digits::integer_or_digits(d).map(Some)
}

/// Fields only Azure AD sends; any of them tells its shape from plain OAuth 2.0.
const AZURE_AD_FIELDS: [&str; 4] = ["error_codes", "trace_id", "correlation_id", "timestamp"];

impl ErrorBody {
    /// Recognises the shape of `body`; falls back to [`ErrorBody::Text`], which keeps a
    /// bounded excerpt with anything shaped like a token or a key hidden.
    pub fn parse(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        if text.trim().is_empty() {
            return Self::Empty;
        }
        Self::shaped(&text).unwrap_or_else(|| Self::Text(text_excerpt(&text, &[])))
    }

    /// [`Self::parse`] for an [`ApiError`](crate::ApiError): the caller's `secrets` (in any
    /// form) and anything shaped like a token or a key hidden in every text it keeps. A
    /// body of no known shape longer than the excerpt is redacted once, over its first
    /// 2 KiB and a margin (so that a secret across the cut is found), then cut: its cost
    /// does not grow with the body.
    pub(crate) fn parse_redacted(body: &[u8], secrets: &[&str]) -> Self {
        let text = String::from_utf8_lossy(body);
        if text.trim().is_empty() {
            return Self::Empty;
        }
        if Self::shaped(&text).is_none() && text.len() > super::redact::TEXT_EXCERPT_BYTES {
            return Self::Text(text_excerpt(&text, secrets));
        }
        let mut parsed = Self::parse(hide_secrets(&text, secrets).as_bytes());
        // Again after parsing: JSON escapes (`\u003d` for `=`) hide a secret from the raw text.
        parsed.redact(secrets);
        parsed
    }

    /// One of the known shapes, or `None` for anything else.
    fn shaped(text: &str) -> Option<Self> {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) else {
            return None;
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
                return Some(parsed);
            }
        }
        match GatewayWire::deserialize(&value) {
            Ok(GatewayWire::Plain {
                status_code,
                message,
            }) => Some(Self::Gateway(GatewayError {
                status_code,
                message,
            })),
            Ok(GatewayWire::NotFound { response_info }) => Some(Self::Gateway(GatewayError {
                status_code: response_info.response_code,
                message: response_info.response_message.unwrap_or_default(),
            })),
            Err(_) => None,
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

    /// Hides the caller's `secrets` in every text the body holds, and anything shaped
    /// like a token or a key (see `redact.rs`), so that `Display`, `Debug`, logs and the
    /// accessors show the server's words and ids but no credential, the caller's or not.
    pub(crate) fn redact(&mut self, secrets: &[&str]) {
        let hide = |text: &mut String| *text = redact(text, secrets);
        let hide_opt = |text: &mut Option<String>| {
            if let Some(text) = text {
                *text = redact(text, secrets);
            }
        };
        // Ids to quote to support: only a token or the caller's secret is hidden there.
        let hide_id = |text: &mut Option<String>| {
            if let Some(text) = text {
                *text = redact_id(text, secrets);
            }
        };
        match self {
            Self::AzureAd(e) => {
                hide(&mut e.error);
                hide_opt(&mut e.error_description);
                hide_opt(&mut e.timestamp);
                hide_id(&mut e.trace_id);
                hide_id(&mut e.correlation_id);
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
                    hide_secrets_in_json(&mut json, secrets);
                    *text = hide_token_like(&json.to_string());
                }
                Err(_) => hide(text),
            },
            Self::Empty => {}
        }
    }

    pub(crate) fn mentions_any(&self, needles: &[&str]) -> bool {
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
            // Redacted when the body was kept: here only put on one line and shortened.
            Self::Text(text) => write!(f, "body starts {:?}", one_line(text)),
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
