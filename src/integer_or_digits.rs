//! The real API's numbers: a JSON integer, or a string of digits where the spec says integer.

use std::fmt;

use serde::{Deserializer, de};

/// Deserialises a `u64` from a JSON integer or from a string of ASCII digits.
///
/// Public so that other crates reading Vipps MobilePay responses can use the same rule:
/// `#[serde(deserialize_with = "vipps_access_token::integer_or_digits")]`.
pub fn integer_or_digits<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    deserializer.deserialize_any(IntegerOrDigits)
}

struct IntegerOrDigits;

impl de::Visitor<'_> for IntegerOrDigits {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer, as a JSON number or a string of digits")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
        Ok(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
        u64::try_from(value).map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<u64, E> {
        let digits_only = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        let parsed = if digits_only {
            value.parse().ok()
        } else {
            None
        };
        parsed.ok_or_else(|| E::invalid_value(de::Unexpected::Str(value), &self))
    }
}
