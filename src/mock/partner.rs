//! `POST /miami/v1/token` and its announced name `POST /authentication/v1/token`: OAuth 2.0
//! client credentials with `Authorization: Basic base64(client_id:client_secret)` and the
//! form body `grant_type=client_credentials` (plus an optional `scope`). No subscription key.

use std::borrow::Cow;

use axum::{
    http::{HeaderMap, header},
    response::Response,
};
use base64::{Engine, engine::general_purpose::STANDARD};

use super::{
    gateway::SUBSCRIPTION_KEY_HEADER,
    oauth,
    request::{header, keys_match},
    state::Shared,
    tokens,
};

/// The content type the partner paths read.
const FORM: &str = "application/x-www-form-urlencoded";

/// The answer to a partner token request.
pub(super) fn answer(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Some(refused) = header_refusal(headers) {
        return refused;
    }
    let Some(client_id) = basic_client(shared, headers) else {
        return unauthenticated();
    };
    match form_scope(body) {
        Ok(scope) => tokens::partner(shared, &client_id, scope.as_deref()),
        Err(refused) => refused,
    }
}

/// The answer to a request with a subscription key, or not a form: checked before the
/// credentials.
pub(crate) fn header_refusal(headers: &HeaderMap) -> Option<Response> {
    if headers.contains_key(SUBSCRIPTION_KEY_HEADER) {
        return Some(oauth::bad_request(
            "invalid_request",
            "The Ocp-Apim-Subscription-Key header must not be sent to this endpoint: \
             the partner token flow uses no subscription key.",
        ));
    }
    if !is_form(headers) {
        return Some(oauth::bad_request(
            "invalid_request",
            "The Content-Type must be application/x-www-form-urlencoded.",
        ));
    }
    None
}

/// The answer to credentials that are missing, malformed or wrong.
pub(crate) fn unauthenticated() -> Response {
    oauth::invalid_client(
        "Client authentication failed: send Authorization: Basic \
         base64(client_id:client_secret) with the management or accounting keys.",
    )
}

/// The form's `scope`, if any, once `grant_type` is `client_credentials`; else the answer.
// A refusal is an answer sent at once: boxing it gains nothing.
#[allow(clippy::result_large_err)]
pub(crate) fn form_scope(body: &[u8]) -> Result<Option<String>, Response> {
    let form: Vec<(Cow<'_, str>, Cow<'_, str>)> = url::form_urlencoded::parse(body).collect();
    let values = |name: &str| -> Vec<&str> {
        form.iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_ref())
            .collect()
    };
    match values("grant_type").as_slice() {
        // The docs: leave out grant_type "or you'll get an invalid_client error".
        [] => {
            return Err(oauth::bad_request(
                "invalid_client",
                "The request body must contain grant_type=client_credentials.",
            ));
        }
        ["client_credentials"] => {}
        [_] => {
            return Err(oauth::bad_request(
                "unsupported_grant_type",
                "The grant_type must be client_credentials.",
            ));
        }
        _ => {
            return Err(oauth::bad_request(
                "invalid_request",
                "The grant_type is repeated.",
            ));
        }
    }
    match values("scope").as_slice() {
        [] => Ok(None),
        [scope] => Ok(Some((*scope).to_owned())),
        _ => Err(oauth::bad_request(
            "invalid_request",
            "The scope is repeated.",
        )),
    }
}

/// True for `application/x-www-form-urlencoded`, with or without parameters such as
/// `; charset=utf-8`, in any case.
fn is_form(headers: &HeaderMap) -> bool {
    header(headers, header::CONTENT_TYPE.as_str()).is_some_and(|value| {
        let media_type = value.split(';').next().unwrap_or_default();
        media_type.trim().eq_ignore_ascii_case(FORM)
    })
}

/// The `client_id` of valid Basic credentials. RFC 6749 form-encodes both parts before
/// Base64; the docs do not. Either is accepted.
fn basic_client(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let (id, secret) = basic_pair(headers)?;
    let keys = &shared.keys;
    let matches = |id: &str, secret: &str| {
        id == keys.client_id.as_str() && keys_match(secret, keys.client_secret.expose_secret())
    };
    if matches(&id, &secret) || matches(&form_decoded(&id), &form_decoded(&secret)) {
        Some(keys.client_id.as_str().to_owned())
    } else {
        None
    }
}

/// The id and secret of `Authorization: Basic base64(id:secret)`, as sent.
pub(crate) fn basic_pair(headers: &HeaderMap) -> Option<(String, String)> {
    let value = header(headers, header::AUTHORIZATION.as_str())?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(credentials.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn form_decoded(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .map(|(_, value)| value.into_owned())
        .next()
        .unwrap_or_default()
}
