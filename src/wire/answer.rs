//! The standard flow's body as the generated client reads it: parsed, and kept as sent.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::response::{StandardTokenResponse, parse_token_body};

/// A `POST /accesstoken/get` body and its JSON text: what build.rs makes the generated
/// client read, so that the standard flow keeps the body as sent, as the hand-written
/// flows do. Not exported.
pub struct StandardTokenAnswer {
    pub(crate) parsed: StandardTokenResponse,
    pub(crate) raw: Box<RawValue>,
}

impl<'de> Deserialize<'de> for StandardTokenAnswer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let parsed = parse_token_body(raw.get().as_bytes())
            .map_err(|failure| serde::de::Error::custom(failure.reason))?;
        Ok(Self { parsed, raw })
    }
}
