//! The token responses as they arrive on the wire, read tolerantly.
//!
//! The real `POST /accesstoken/get` sends its numbers as JSON strings (`"86398"`), the
//! spec 1.0.1 says `integer`, the spec 2.0.0 says `string`, and the partner endpoint's
//! docs show `expires_in` as the number `900`. Every numeric field here takes either a
//! JSON integer or a string of digits; anything else is an error that names the field.
//! build.rs makes the generated client deserialise into these types.

use serde::{Deserialize, de};

use crate::{
    credentials::TokenSecret,
    error::{
        Error, InvalidResponseError,
        redact::{excerpt, hide_secrets, redact},
    },
    integer_or_digits::integer_or_digits,
};

/// The body of a successful `POST /accesstoken/get` (and of the legacy endpoint).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct StandardTokenResponse {
    /// Always `Bearer` in practice.
    pub token_type: String,
    /// Seconds the token is valid for, counted from when it was issued.
    #[serde(deserialize_with = "integer_or_digits")]
    pub expires_in: u64,
    /// Extra expiry time; documented as not used.
    #[serde(deserialize_with = "integer_or_digits")]
    pub ext_expires_in: u64,
    /// Expiry as Unix time (seconds), by the server's clock.
    #[serde(deserialize_with = "integer_or_digits")]
    pub expires_on: u64,
    /// Issue time as Unix time (seconds), by the server's clock.
    #[serde(deserialize_with = "integer_or_digits")]
    pub not_before: u64,
    /// The resource the token was issued for; not used in token validation.
    pub resource: String,
    /// The token itself: a JWT.
    pub access_token: TokenSecret,
}

impl StandardTokenResponse {
    /// Reads a `POST /accesstoken/get` body, tolerantly; the error names the field at fault.
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        parse_token_body(body).map_err(|failure| failure.into_error(200, body, &[]))
    }
}

/// The body of a successful partner-flow `POST /miami/v1/token`: plain OAuth 2.0.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PartnerTokenResponse {
    /// The token itself: a JWT.
    pub access_token: TokenSecret,
    /// Always `Bearer` in practice.
    pub token_type: String,
    /// Seconds the token is valid for (900: 15 minutes).
    #[serde(deserialize_with = "integer_or_digits")]
    pub expires_in: u64,
}

impl PartnerTokenResponse {
    /// Reads a partner-flow body, tolerantly; the error names the field at fault.
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        parse_token_body(body).map_err(|failure| failure.into_error(200, body, &[]))
    }
}

/// Parses a token body, naming the field that failed (`expires_in: invalid value ...`).
pub(crate) fn parse_token_body<T: de::DeserializeOwned>(body: &[u8]) -> Result<T, ParseFailure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseFailure {
            field: None,
            reason: "the body is empty".to_owned(),
        });
    }
    let mut json = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut json).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let reason = inner.to_string();
        // serde names a missing field in its message but not in the path.
        let field = match path.as_str() {
            "." | "" => missing_field(&reason),
            _ => Some(path),
        };
        ParseFailure { field, reason }
    })
}

/// Why a body could not be read as a token response.
#[derive(Debug)]
pub(crate) struct ParseFailure {
    pub(crate) field: Option<String>,
    pub(crate) reason: String,
}

impl ParseFailure {
    /// The error for an answer whose `body` could not be read. The reason and the excerpt
    /// quote the server, so the `secrets` sent and anything token-like are hidden in both.
    pub(crate) fn into_error(self, status: u16, body: &[u8], secrets: &[&str]) -> Error {
        Error::InvalidResponse(Box::new(InvalidResponseError {
            status,
            field: self.field,
            reason: redact(&self.reason, secrets),
            // Secrets first: cut off by the excerpt's end, one would no longer be found.
            excerpt: excerpt(hide_secrets(&String::from_utf8_lossy(body), secrets).as_bytes()),
        }))
    }
}

fn missing_field(reason: &str) -> Option<String> {
    let rest = reason.strip_prefix("missing field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expires_in(json: &str) -> Result<u64, ParseFailure> {
        let body = format!(r#"{{"access_token":"t","token_type":"Bearer","expires_in":{json}}}"#);
        parse_token_body::<PartnerTokenResponse>(body.as_bytes()).map(|r| r.expires_in)
    }

    #[test]
    fn takes_integers_and_strings_of_digits() {
        assert_eq!(expires_in("900").unwrap(), 900);
        assert_eq!(expires_in(r#""900""#).unwrap(), 900);
        assert_eq!(expires_in("0").unwrap(), 0);
        assert_eq!(expires_in(r#""18446744073709551615""#).unwrap(), u64::MAX);
        assert_eq!(expires_in("18446744073709551615").unwrap(), u64::MAX);
    }

    #[test]
    fn rejects_everything_else_naming_the_field() {
        for bad in [
            "-5",
            "1.5",
            "true",
            "null",
            r#""""#,
            r#""12a""#,
            r#"" 12""#,
            r#""+12""#,
            r#""-1""#,
            r#""18446744073709551616""#,
            "[1]",
            "{}",
        ] {
            let failure = expires_in(bad).expect_err(bad);
            assert_eq!(
                failure.field.as_deref(),
                Some("expires_in"),
                "{bad}: {failure:?}"
            );
        }
    }

    #[test]
    fn names_a_missing_field() {
        let failure =
            parse_token_body::<PartnerTokenResponse>(br#"{"token_type":"Bearer","expires_in":1}"#)
                .unwrap_err();
        assert_eq!(failure.field.as_deref(), Some("access_token"));
    }

    #[test]
    fn says_when_the_body_is_empty() {
        let failure = parse_token_body::<PartnerTokenResponse>(b" \n").unwrap_err();
        assert_eq!(failure.field, None);
        assert_eq!(failure.reason, "the body is empty");
    }
}
