//! A canned answer that the mock sends instead of checking a request.

use axum::{body::Bytes, http::StatusCode};

/// A canned answer.
#[derive(Clone, Debug)]
pub(super) struct Fault {
    pub(super) status: StatusCode,
    pub(super) body: Bytes,
}

impl Fault {
    /// `status` with `body`; a `status` outside 100 to 999 becomes 500, so that any `u16`
    /// a test passes is a valid answer.
    pub(super) fn new(status: u16, body: String) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: body.into(),
        }
    }
}
