//! Reading what a request carries: header values, and comparing them with the keys.

use std::borrow::Cow;

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

/// The value of header `name`, or `None` when it is absent or blank. A value that is not
/// UTF-8 is read lossily, so that it compares unequal to any key instead of failing.
pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<Cow<'a, str>> {
    let value = headers.get(name)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    if text.trim().is_empty() {
        None
    } else {
        Some(text)
    }
}

/// True when a `sent` key equals the `expected` one, compared in constant time wherever
/// they differ, so that timing does not reveal how much of a guess was right (the length
/// may still show).
pub(super) fn keys_match(sent: &str, expected: &str) -> bool {
    sent.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// At most `max` characters of `text`, for echoing a caller's value in an error.
pub(super) fn truncated(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_exactly() {
        assert!(keys_match("abc", "abc"));
        assert!(!keys_match("abc", "abd"));
        assert!(!keys_match("abc", "abcd"));
        assert!(keys_match("", ""));
    }

    #[test]
    fn blank_headers_count_as_absent() {
        let mut headers = HeaderMap::new();
        headers.insert("client_id", " ".parse().unwrap());
        headers.insert("client_secret", "s".parse().unwrap());
        assert_eq!(header(&headers, "client_id"), None);
        assert_eq!(header(&headers, "client_secret").as_deref(), Some("s"));
        assert_eq!(header(&headers, "other"), None);
    }
}
