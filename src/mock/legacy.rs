//! `POST /api/v2/accesstoken/jwt`, deprecated: the subscription key header and the JSON
//! body `{"client_id", "client_secret", "resource"}`; the answer has the shape of
//! `/accesstoken/get`'s, for the resource asked for.

use axum::{http::HeaderMap, response::Response};
use serde::Deserialize;

use super::{azure, gateway, key_check::check_keys, state::Shared, tokens};

#[derive(Deserialize)]
struct LegacyRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    resource: Option<String>,
}

/// The answer to a legacy token request.
pub(super) fn answer(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Some(refused) = gateway::refusal(&shared.keys, headers) {
        return refused;
    }
    let Ok(request) = serde_json::from_slice::<LegacyRequest>(body) else {
        return azure::malformed_body(
            r#"a JSON object {"client_id": ..., "client_secret": ..., "resource": ...}"#,
        );
    };
    let client_id = present(request.client_id);
    let client_secret = present(request.client_secret);
    let client_id = match check_keys(shared, client_id.as_deref(), client_secret.as_deref()) {
        Ok(client_id) => client_id,
        Err(refused) => return refused.into_response(),
    };
    match present(request.resource) {
        Some(resource) => tokens::standard(shared, client_id, &resource),
        None => azure::missing_parameter("resource"),
    }
}

/// The value, unless it is absent or blank.
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}
