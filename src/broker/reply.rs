//! Answers as the API answers: a token in the body the upstream sent, its relative
//! lifetimes set to the seconds left in the JSON type the upstream used; a refusal as it
//! was sent; and for failures the upstream never answered, a JSON error that says what
//! happened (no secret: the library's messages hold none).

use std::{fmt::Write as _, time::Instant};

use axum::{
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::{
    error::{Error, answer::UpstreamAnswer},
    flow::Flow,
    wire::token::AccessToken,
};

/// The fields counted from when the token was issued, rewritten to what is left of them.
const RELATIVE_FIELDS: [&str; 2] = ["expires_in", "ext_expires_in"];

/// The content type of answers the broker writes itself.
const JSON: &str = "application/json; charset=utf-8";

/// The answer carrying `token`, as the upstream sent it but for the seconds left.
pub(super) fn token(token: &AccessToken) -> Response {
    let now = Instant::now();
    let left = token.expires_at_instant().saturating_duration_since(now);
    let elapsed = token.expires_in().saturating_sub(left);
    // Rounded up, so that the seconds left are never overstated.
    let elapsed = elapsed.as_secs() + u64::from(elapsed.subsec_nanos() > 0);
    let (content_type, body) = match token.answer().and_then(|a| rewrite(a, elapsed)) {
        Some(rewritten) => rewritten,
        None => (JSON.to_owned(), synthesised(token, left.as_secs())),
    };
    let mut response = with_body(StatusCode::OK, &content_type, Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The upstream's body with each relative field less `elapsed` seconds, in its own JSON type: a digit string
/// stays a string, a number a number. The other fields keep their order and text.
fn rewrite(answer: &UpstreamAnswer, elapsed: u64) -> Option<(String, String)> {
    let text = std::str::from_utf8(answer.body()).ok()?;
    let fields = serde_json::Deserializer::from_str(text)
        .deserialize_map(OrderedFields)
        .ok()?;
    let mut body = String::with_capacity(text.len());
    body.push('{');
    for (index, (name, value)) in fields.iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(&serde_json::to_string(name).ok()?);
        body.push(':');
        let raw = value.get();
        if RELATIVE_FIELDS.contains(&name.as_str()) {
            let quoted = raw.starts_with('"');
            let seconds: u64 = raw.trim_matches('"').parse().ok()?;
            let left = seconds.saturating_sub(elapsed);
            if quoted {
                let _ = write!(body, "\"{left}\"");
            } else {
                let _ = write!(body, "{left}");
            }
        } else {
            body.push_str(raw);
        }
    }
    body.push('}');
    let content_type = answer.content_type().unwrap_or(JSON).to_owned();
    Some((content_type, body))
}

/// A body for a token whose answer was not kept (a record of an older version): the
/// real API's shape, with its numbers as digit strings, or the partner endpoint's.
fn synthesised(token: &AccessToken, left: u64) -> String {
    let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
    let unix = |time: Option<std::time::SystemTime>| time.map(crate::time::unix_seconds);
    let access_token = quote(token.secret().expose_secret());
    let token_type = quote(token.token_type());
    match token.flow() {
        Flow::Partner => format!(
            r#"{{"access_token":{access_token},"token_type":{token_type},"expires_in":{left}}}"#
        ),
        Flow::Standard | Flow::Legacy => {
            let ext = token.ext_expires_in().map_or(left, |ext| {
                ext.as_secs()
                    .saturating_sub(token.expires_in().as_secs().saturating_sub(left))
            });
            format!(
                r#"{{"token_type":{token_type},"expires_in":"{left}","ext_expires_in":"{ext}","expires_on":"{}","not_before":"{}","resource":{},"access_token":{access_token}}}"#,
                unix(token.server_expires_on()).unwrap_or_default(),
                unix(token.server_not_before()).unwrap_or_default(),
                quote(token.resource().unwrap_or_default()),
            )
        }
    }
}

/// The answer to a request whose token could not be had: the upstream's own answer when
/// there was one (a refusal, a 429, a 5xx), byte for byte; otherwise a JSON error.
pub(super) fn failure(error: &Error) -> Response {
    if let Some(answer) = upstream_answer(error) {
        return passed_on(answer);
    }
    if let Error::InvalidInput(_) = error {
        // A value of the caller's the library would not send (a client_id with a tab, a
        // resource that is not a URL): nothing went upstream.
        return error_json(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &error.to_string(),
        );
    }
    let status = match error {
        Error::Transport(transport) if transport.is_timeout() => StatusCode::GATEWAY_TIMEOUT,
        Error::Shared(_) | Error::Api(_) => error
            .status()
            .filter(|status| *status >= 400)
            .and_then(|status| StatusCode::from_u16(status).ok())
            .unwrap_or(StatusCode::BAD_GATEWAY),
        _ => StatusCode::BAD_GATEWAY,
    };
    error_json(status, "upstream_failed", &error.to_string())
}

/// The upstream's own answer in `error`, when it is one to pass on: an error status (a
/// refusal, a 429, a 5xx), not a redirect.
pub(super) fn upstream_answer(error: &Error) -> Option<&UpstreamAnswer> {
    match error {
        Error::Api(api) => api.answer().filter(|answer| answer.status() >= 400),
        _ => None,
    }
}

/// An upstream answer passed on as it was sent.
pub(super) fn passed_on(answer: &UpstreamAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::new(Body::from(answer.body().to_vec()));
    *response.status_mut() = status;
    if let Some(value) = answer
        .content_type()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// `body`, which is JSON, with `status`.
pub(super) fn json_body(status: StatusCode, body: &'static str) -> Response {
    with_body(status, JSON, Body::from(body))
}

/// `{"error": ..., "error_description": ...}` with `status`: the OAuth 2.0 error shape.
pub(super) fn error_json(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    with_body(status, JSON, Body::from(body.to_string()))
}

fn with_body(status: StatusCode, content_type: &str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let value =
        HeaderValue::from_str(content_type).unwrap_or_else(|_| HeaderValue::from_static(JSON));
    response.headers_mut().insert(header::CONTENT_TYPE, value);
    response
}

/// A JSON object's members in the order sent, each value's text untouched.
struct OrderedFields;

impl<'de> Visitor<'de> for OrderedFields {
    type Value = Vec<(String, Box<RawValue>)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
            fields.push(entry);
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(body: &str, elapsed: u64) -> String {
        let answer = UpstreamAnswer::new(200, Some("application/json"), body.as_bytes());
        rewrite(&answer, elapsed).unwrap().1
    }

    #[test]
    fn digit_strings_stay_strings_and_numbers_numbers() {
        assert_eq!(
            rewritten(
                r#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","expires_on":"1700003599","access_token":"a.b.c"}"#,
                99
            ),
            r#"{"token_type":"Bearer","expires_in":"3500","ext_expires_in":"3500","expires_on":"1700003599","access_token":"a.b.c"}"#
        );
        assert_eq!(
            rewritten(
                r#"{ "access_token" : "a.b.c", "token_type": "Bearer", "expires_in": 900, "scope": ["x", 1] }"#,
                900
            ),
            r#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":0,"scope":["x", 1]}"#
        );
    }

    #[test]
    fn a_body_that_cannot_be_rewritten_is_not() {
        let answer = UpstreamAnswer::new(200, None, br#"{"expires_in":"soon"}"#);
        assert!(rewrite(&answer, 1).is_none());
        let answer = UpstreamAnswer::new(200, None, b"[1]");
        assert!(rewrite(&answer, 1).is_none());
    }
}
