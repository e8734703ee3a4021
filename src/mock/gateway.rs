//! The API gateway (Azure API Management) in front of `/accesstoken/get` and the legacy
//! path: it checks `Ocp-Apim-Subscription-Key` before anything else, and answers unknown
//! paths itself.

use axum::{
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde::Serialize;

use super::{
    keys::Keys,
    reply::json,
    request::{header, keys_match},
};

/// The subscription key header.
pub(super) const SUBSCRIPTION_KEY_HEADER: &str = "ocp-apim-subscription-key";

/// The gateway's body: `{"statusCode": 401, "message": "..."}`.
#[derive(Serialize)]
struct GatewayBody {
    #[serde(rename = "statusCode")]
    status_code: u16,
    message: &'static str,
}

fn gateway(status: StatusCode, message: &'static str) -> Response {
    json(
        status,
        &GatewayBody {
            status_code: status.as_u16(),
            message,
        },
    )
}

/// The gateway's refusal when the request lacks the right subscription key.
pub(super) fn refusal(keys: &Keys, headers: &HeaderMap) -> Option<Response> {
    match header(headers, SUBSCRIPTION_KEY_HEADER) {
        None => Some(missing_subscription_key()),
        Some(key) if keys_match(&key, keys.subscription_key.expose_secret()) => None,
        Some(_) => Some(gateway(
            StatusCode::UNAUTHORIZED,
            "Access denied due to invalid subscription key. Make sure to provide a valid key \
             for an active subscription.",
        )),
    }
}

/// The gateway's 401 for a request without a subscription key.
pub(crate) fn missing_subscription_key() -> Response {
    gateway(
        StatusCode::UNAUTHORIZED,
        "Access denied due to missing subscription key. Make sure to include subscription \
         key when making requests to an API.",
    )
}

/// The answer for a path nothing serves.
pub(crate) fn not_found() -> Response {
    gateway(StatusCode::NOT_FOUND, "Resource not found")
}
