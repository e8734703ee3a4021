//! OAuth 2.0 error bodies (RFC 6749 section 5.2), as the partner paths send them:
//! `{"error": "...", "error_description": "..."}`.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use serde::Serialize;

use super::reply::{json, no_store};

#[derive(Serialize)]
struct OAuthBody {
    error: &'static str,
    error_description: &'static str,
}

/// 400 with `error` and `description`.
pub(crate) fn bad_request(error: &'static str, description: &'static str) -> Response {
    no_store(json(
        StatusCode::BAD_REQUEST,
        &OAuthBody {
            error,
            error_description: description,
        },
    ))
}

/// 401 `invalid_client`, with the `WWW-Authenticate` challenge RFC 6749 asks for.
pub(crate) fn invalid_client(description: &'static str) -> Response {
    let mut response = no_store(json(
        StatusCode::UNAUTHORIZED,
        &OAuthBody {
            error: "invalid_client",
            error_description: description,
        },
    ));
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Basic realm="vipps-access-token-mock""#),
    );
    response
}
