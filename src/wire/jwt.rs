//! Reading a JWT's header and claims without verifying its signature: to show what a
//! token says and check that its `exp` agrees with `expires_in`. Never use it to trust one.

use std::{fmt, time::SystemTime};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

/// A JWT's header and claims, decoded but **not verified**.
#[derive(Clone, Debug, PartialEq)]
pub struct UnverifiedJwt {
    /// The JOSE header, for example `{"typ": "JWT", "alg": "RS256"}`.
    pub header: Map<String, Value>,
    /// The claims, for example `exp`, `nbf`, `iat`, `aud`.
    pub claims: Map<String, Value>,
}

/// Why a string is not a readable JWT. Never holds the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three parts separated by dots.
    #[error("not a JWT: expected three parts separated by dots (header.claims.signature)")]
    Shape,
    /// A part is not base64url.
    #[error("the JWT's {0} is not base64url")]
    Base64(&'static str),
    /// A part is not a JSON object.
    #[error("the JWT's {0} is not a JSON object")]
    Json(&'static str),
}

impl UnverifiedJwt {
    /// Decodes `token`'s header and claims. The signature is not checked.
    pub fn decode(token: &str) -> Result<Self, JwtError> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Shape);
        };
        Ok(Self {
            header: object(header, "header")?,
            claims: object(claims, "claims")?,
        })
    }

    /// `exp`: when the token expires.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.time("exp")
    }

    /// `nbf`: when the token becomes valid.
    pub fn not_before(&self) -> Option<SystemTime> {
        self.time("nbf")
    }

    /// `iat`: when the token was issued.
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.time("iat")
    }

    /// A claim holding Unix seconds (as a number or a string of digits) as a time.
    fn time(&self, claim: &str) -> Option<SystemTime> {
        let seconds = match self.claims.get(claim)? {
            Value::Number(n) => n.as_u64()?,
            Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok()?,
            _ => return None,
        };
        crate::time::from_unix_seconds(seconds)
    }
}

fn object(part: &str, name: &'static str) -> Result<Map<String, Value>, JwtError> {
    // Some encoders pad; base64url in JWTs has no padding.
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| JwtError::Base64(name))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Json(name)),
    }
}

impl fmt::Display for UnverifiedJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "header: {}\nclaims: {}",
            Value::Object(self.header.clone()),
            Value::Object(self.claims.clone())
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn part(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn reads_header_claims_and_times() {
        let token = format!(
            "{}.{}.c2ln",
            part(r#"{"typ":"JWT","alg":"RS256"}"#),
            part(r#"{"exp":1495271273,"nbf":"1495184574","iat":1495184574}"#)
        );
        let jwt = UnverifiedJwt::decode(&token).unwrap();
        assert_eq!(jwt.header["alg"], "RS256");
        assert_eq!(
            jwt.expires_at(),
            Some(UNIX_EPOCH + Duration::from_secs(1495271273))
        );
        assert_eq!(
            jwt.not_before(),
            Some(UNIX_EPOCH + Duration::from_secs(1495184574))
        );
        assert_eq!(
            jwt.issued_at(),
            Some(UNIX_EPOCH + Duration::from_secs(1495184574))
        );
    }

    #[test]
    fn says_what_is_wrong() {
        assert_eq!(UnverifiedJwt::decode("abc"), Err(JwtError::Shape));
        assert_eq!(UnverifiedJwt::decode("a.b.c.d"), Err(JwtError::Shape));
        assert_eq!(
            UnverifiedJwt::decode("!!.e30.x"),
            Err(JwtError::Base64("header"))
        );
        assert_eq!(
            UnverifiedJwt::decode("e30.WzFd.x"),
            Err(JwtError::Json("claims"))
        );
        let far = format!("e30.{}.x", part(r#"{"exp":18446744073709551615}"#));
        assert_eq!(UnverifiedJwt::decode(&far).unwrap().expires_at(), None);
    }
}
