//! `POST /accesstoken/get`: the keys in the `client_id`, `client_secret` and
//! `Ocp-Apim-Subscription-Key` headers, no body. Anything else a client sends (a body,
//! `Authorization`, `Merchant-Serial-Number`, `Vipps-System-*`) is ignored.

use axum::{http::HeaderMap, response::Response};

use super::{gateway, key_check::check_keys, request::header, state::Shared, tokens};

/// The answer to a standard token request.
pub(super) fn answer(shared: &Shared, headers: &HeaderMap) -> Response {
    if let Some(refused) = gateway::refusal(&shared.keys, headers) {
        return refused;
    }
    let client_id = header(headers, "client_id");
    let client_secret = header(headers, "client_secret");
    match check_keys(shared, client_id.as_deref(), client_secret.as_deref()) {
        Ok(client_id) => tokens::standard(shared, client_id, tokens::DEFAULT_RESOURCE),
        Err(refused) => refused.into_response(),
    }
}
