//! Whether an API's 401 is about the token: only then can a fresh token help.
//!
//! Not about the token, so returned as is with no token fetched:
//! - Azure API Management's own 401, `{"statusCode": 401, "message": "Access denied due to
//!   invalid subscription key. ..."}` (or "missing subscription key"): the subscription key
//!   is wrong or lacks the product, and will be on every call;
//! - a `WWW-Authenticate` challenge other than `invalid_token` (RFC 6750 §3.1:
//!   `insufficient_scope`, `invalid_request`, or a challenge with no error, as azure_core's
//!   bearer policy reads them).
//!
//! Anything else (a bare 401, a challenge with `error="invalid_token"`) may be an expired or
//! revoked token: the real API sends a bare 401 then.

use reqwest::{Response, header::WWW_AUTHENTICATE};

/// The largest 401 body read to look for APIM's message; APIM's is about 150 bytes. A
/// larger one, or one of unknown length, is not read, and counts as possibly the token's.
const MAX_BODY_BYTES: u64 = 8 * 1024;

/// What a 401 is about.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unauthorized {
    /// Something a new token cannot fix; the reason, for logs.
    NotTheToken(&'static str),
    /// Possibly the token: refreshing it may help.
    MaybeTheToken,
}

/// Classifies a 401 `response`, and hands it back whole (its body read, if it was, and put
/// back).
pub(crate) async fn classify(
    response: Response,
) -> Result<(Response, Unauthorized), reqwest::Error> {
    let challenges: Vec<String> = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_owned)
        .collect();
    if !challenges.is_empty() {
        let verdict = if challenges.iter().any(|c| names_invalid_token(c)) {
            Unauthorized::MaybeTheToken
        } else {
            Unauthorized::NotTheToken("a WWW-Authenticate challenge other than invalid_token")
        };
        return Ok((response, verdict));
    }
    if response
        .content_length()
        .is_none_or(|length| length > MAX_BODY_BYTES)
    {
        return Ok((response, Unauthorized::MaybeTheToken));
    }
    let (response, body) = read_body(response).await?;
    let verdict = if is_subscription_key_refusal(&body) {
        Unauthorized::NotTheToken("the API gateway refused the subscription key")
    } else {
        Unauthorized::MaybeTheToken
    };
    Ok((response, verdict))
}

/// True when a challenge carries `error="invalid_token"` (quoted or not).
fn names_invalid_token(challenge: &str) -> bool {
    challenge.split(',').any(|param| {
        // The first parameter follows the scheme: `Bearer error="invalid_token"`.
        let param = param.trim().rsplit(' ').next().unwrap_or_default();
        param.split_once('=').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("error")
                && value.trim().trim_matches('"') == "invalid_token"
        })
    })
}

/// APIM's `{"statusCode": 401, "message": "Access denied due to invalid (or missing)
/// subscription key. ..."}`.
fn is_subscription_key_refusal(body: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(body)) = serde_json::from_slice(body) else {
        return false;
    };
    let status = body.get("statusCode").and_then(serde_json::Value::as_u64);
    let message = body
        .get("message")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    status == Some(401) && message.contains("subscription key")
}

/// Reads `response`'s body and rebuilds the response around it: status, version, headers
/// and URL as they came.
async fn read_body(response: Response) -> Result<(Response, Vec<u8>), reqwest::Error> {
    use reqwest::ResponseBuilderExt;
    let mut rebuilt = http::Response::builder()
        .status(response.status())
        .version(response.version())
        .url(response.url().clone());
    if let Some(headers) = rebuilt.headers_mut() {
        *headers = response.headers().clone();
    }
    let body = response.bytes().await?;
    let read = body.to_vec();
    let rebuilt = rebuilt
        .body(body.clone())
        .unwrap_or_else(|_| http::Response::new(body));
    Ok((Response::from(rebuilt), read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_invalid_token_from_a_challenge() {
        for token in [
            r#"Bearer error="invalid_token""#,
            r#"Bearer realm="vipps", error="invalid_token", error_description="expired""#,
            "Bearer error=invalid_token",
        ] {
            assert!(names_invalid_token(token), "{token}");
        }
        for other in [
            r#"Bearer error="insufficient_scope", scope="payments""#,
            r#"Bearer realm="vipps""#,
            r#"Basic realm="x""#,
            r#"Bearer error_description="invalid_token""#,
        ] {
            assert!(!names_invalid_token(other), "{other}");
        }
    }

    #[test]
    fn knows_apims_subscription_key_refusals() {
        for apim in [
            r#"{"statusCode":401,"message":"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."}"#,
            r#"{ "statusCode": 401, "message": "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API." }"#,
        ] {
            assert!(is_subscription_key_refusal(apim.as_bytes()), "{apim}");
        }
        for other in [
            "",
            "Unauthorized",
            r#"{"statusCode":401,"message":"Unauthorized. Access token is missing or invalid."}"#,
            r#"{"error":"invalid_token"}"#,
        ] {
            assert!(!is_subscription_key_refusal(other.as_bytes()), "{other}");
        }
    }
}
