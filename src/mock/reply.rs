//! Building answers: JSON bodies with the right content type, and the ids and
//! timestamps error bodies carry.

use std::time::SystemTime;

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use serde::Serialize;

/// `status` with `body` serialised as JSON.
pub(super) fn json(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => with_body(status, "application/json; charset=utf-8", bytes.into()),
        Err(error) => unserialisable(&error),
    }
}

/// A 500 that says which answer the mock could not build, instead of an empty body.
pub(super) fn unserialisable(error: &serde_json::Error) -> Response {
    with_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain; charset=utf-8",
        format!("the mock could not serialise its answer: {error}").into(),
    )
}

/// A canned answer: JSON if its body parses as JSON, plain text otherwise.
pub(super) fn canned(status: StatusCode, body: Bytes) -> Response {
    let content_type = if serde_json::from_slice::<serde_json::Value>(&body).is_ok() {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    with_body(status, content_type, Body::from(body))
}

fn with_body(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Adds `Cache-Control: no-store` and `Pragma: no-cache`, as OAuth 2.0 asks of any
/// answer that carries a token (RFC 6749 section 5.1).
pub(super) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Seconds since the Unix epoch, by the wall clock.
pub(super) fn unix_now() -> u64 {
    crate::time::unix_seconds(SystemTime::now())
}

/// A random (version 4) UUID, for trace and correlation ids and `jti` claims. Ids, not
/// secrets: fastrand's bytes are random enough.
pub(super) fn random_guid() -> String {
    let bytes = fastrand::u128(..).to_le_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// `2022-11-17 11:37:08Z`: the timestamp format of Azure AD's error bodies (RFC 3339 with
/// a space for the `T`).
pub(super) fn azure_timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn formats_azure_timestamps() {
        let at = |unix: u64| azure_timestamp(UNIX_EPOCH + std::time::Duration::from_secs(unix));
        assert_eq!(at(0), "1970-01-01 00:00:00Z");
        assert_eq!(at(1_668_685_028), "2022-11-17 11:37:08Z");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00Z");
    }

    #[test]
    fn guids_have_the_guid_shape() {
        let guid = random_guid();
        let lengths: Vec<usize> = guid.split('-').map(str::len).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12], "{guid}");
        assert_ne!(guid, random_guid(), "each id is new");
        assert_eq!(guid.as_bytes()[14], b'4', "version 4: {guid}");
    }
}
