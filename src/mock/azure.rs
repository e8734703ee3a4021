//! Azure AD's error bodies, as `/accesstoken/get` and the legacy path send them:
//! `{"error", "error_description": "AADSTS...", "error_codes", "timestamp", "trace_id",
//! "correlation_id", "error_uri"}`.

use std::time::SystemTime;

use axum::{http::StatusCode, response::Response};
use serde::Serialize;

use super::{
    reply::{azure_timestamp, json, random_guid},
    request::truncated,
};

/// The directory name unknown applications are "not found" in.
const DIRECTORY: &str = "VIPPS-MOCK";

#[derive(Serialize)]
struct AzureAdBody {
    error: &'static str,
    error_description: String,
    error_codes: [u64; 1],
    timestamp: String,
    trace_id: String,
    correlation_id: String,
    error_uri: String,
}

/// An Azure AD error: the description starts with `AADSTS<code>: ` and ends with the
/// trace lines Azure AD appends.
fn azure_ad(status: StatusCode, error: &'static str, code: u64, text: &str) -> Response {
    let timestamp = azure_timestamp(SystemTime::now());
    let trace_id = random_guid();
    let correlation_id = random_guid();
    let error_description = format!(
        "AADSTS{code}: {text}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\n\
         Timestamp: {timestamp}"
    );
    json(
        status,
        &AzureAdBody {
            error,
            error_description,
            error_codes: [code],
            timestamp,
            trace_id,
            correlation_id,
            error_uri: format!("https://login.windows.net/error?code={code}"),
        },
    )
}

/// 400: a required parameter (`client_id`, `resource`, ...) is missing.
pub(crate) fn missing_parameter(name: &str) -> Response {
    azure_ad(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900_144,
        &format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// 400: the body is not what the endpoint reads.
pub(crate) fn malformed_body(expected: &str) -> Response {
    azure_ad(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900_144,
        &format!("The request body could not be read: expected {expected}."),
    )
}

/// 400: no application has this `client_id` (AADSTS700016).
pub(super) fn unknown_client(client_id: &str) -> Response {
    azure_ad(
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700_016,
        &format!(
            "Application with identifier '{}' was not found in the directory '{DIRECTORY}'. \
             This can happen if the application has not been installed by the administrator \
             of the tenant or consented to by any user in the tenant. You may have sent your \
             authentication request to the wrong tenant.",
            truncated(client_id, 64)
        ),
    )
}

/// 401: no `client_secret` (AADSTS7000216).
pub(crate) fn missing_secret() -> Response {
    azure_ad(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7_000_216,
        "'client_assertion', 'client_secret' or 'request' is required for the \
         'client_credentials' grant type.",
    )
}

/// 401: the `client_secret` is wrong (AADSTS7000215). The secret is never echoed.
pub(super) fn invalid_secret(client_id: &str) -> Response {
    azure_ad(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7_000_215,
        &format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is \
             the client secret value, not the client secret ID, for a secret added to app '{}'.",
            truncated(client_id, 64)
        ),
    )
}
