//! Building answers: JSON bodies with the right content type, and the ids and
//! timestamps error bodies carry.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::{
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use serde::Serialize;

use super::faults::Fault;

/// `status` with `body` serialised as JSON.
pub(super) fn json(status: StatusCode, body: &impl Serialize) -> Response {
    // The bodies here are structs of strings and numbers: serialising cannot fail.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    with_body(status, "application/json; charset=utf-8", bytes.into())
}

/// A canned answer: JSON if its body parses as JSON, plain text otherwise.
pub(super) fn fault(fault: Fault) -> Response {
    let content_type = if serde_json::from_slice::<serde_json::Value>(&fault.body).is_ok() {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    with_body(fault.status, content_type, Body::from(fault.body))
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
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A random id shaped like a GUID, for trace and correlation ids and `jti` claims.
pub(super) fn random_guid() -> String {
    let n = fastrand::u128(..);
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `2022-11-17 11:37:08Z`: the timestamp format of Azure AD's error bodies.
pub(super) fn azure_timestamp(unix: u64) -> String {
    let (days, seconds) = (unix / 86_400, unix % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_azure_timestamps() {
        assert_eq!(azure_timestamp(0), "1970-01-01 00:00:00Z");
        assert_eq!(azure_timestamp(1_668_685_028), "2022-11-17 11:37:08Z");
        assert_eq!(azure_timestamp(951_782_400), "2000-02-29 00:00:00Z");
    }

    #[test]
    fn guids_have_the_guid_shape() {
        let guid = random_guid();
        let lengths: Vec<usize> = guid.split('-').map(str::len).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12], "{guid}");
    }
}
