//! Signing and checking the mock's tokens: compact JWTs with HS256 (RFC 7515, RFC 7518).

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;

/// Every token's header.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT","kid":"vipps-access-token-mock"}"#;

/// Signs and checks tokens with one HS256 key. `Debug` hides the key.
#[derive(Clone)]
pub(super) struct Signer {
    mac: Hmac<Sha256>,
    header: String,
}

impl Signer {
    /// A signer for `key`; `None` when the key is empty.
    pub(super) fn new(key: &[u8]) -> Option<Self> {
        if key.is_empty() {
            return None;
        }
        Some(Self {
            mac: Hmac::new_from_slice(key).ok()?,
            header: URL_SAFE_NO_PAD.encode(HEADER),
        })
    }

    /// A random 32-byte key. Not for production: it comes from a fast, non-cryptographic
    /// generator, which is enough to tell one mock's tokens from another's in tests.
    pub(super) fn random_key() -> Vec<u8> {
        std::iter::repeat_with(|| fastrand::u8(..))
            .take(32)
            .collect()
    }

    /// `header.claims.signature`, each part base64url without padding.
    pub(super) fn sign(&self, claims: &impl Serialize) -> Result<String, serde_json::Error> {
        let claims = serde_json::to_vec(claims)?;
        let signing_input = format!("{}.{}", self.header, URL_SAFE_NO_PAD.encode(claims));
        let signature = self
            .mac
            .clone()
            .chain_update(signing_input.as_bytes())
            .finalize()
            .into_bytes();
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// The claims of `token` when it carries this signer's signature and header.
    pub(super) fn verify(&self, token: &str) -> Option<Map<String, Value>> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header, _claims) = signing_input.split_once('.')?;
        if header != self.header {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac
            .clone()
            .chain_update(signing_input.as_bytes())
            .verify_slice(&signature)
            .ok()?;
        crate::wire::jwt::UnverifiedJwt::decode(token)
            .ok()
            .map(|jwt| jwt.claims)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer { alg: HS256, key: [redacted] }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        let signer = Signer::new(b"Jefe").unwrap();
        let tag = signer
            .mac
            .clone()
            .chain_update(b"what do ya want for nothing?")
            .finalize()
            .into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signs_header_dot_claims_and_verifies_only_its_own() {
        let signer = Signer::new(b"key").unwrap();
        let token = signer
            .sign(&serde_json::json!({"exp": 1}))
            .expect("a JSON object serialises");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[0]).unwrap(), HEADER.as_bytes());
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[1]).unwrap(), br#"{"exp":1}"#);
        assert_eq!(signer.verify(&token).unwrap()["exp"], 1);
        assert!(Signer::new(b"other").unwrap().verify(&token).is_none());
        assert!(signer.verify(&format!("{token}x")).is_none());
        assert!(Signer::new(b"").is_none());
        assert_eq!(
            format!("{signer:?}"),
            "Signer { alg: HS256, key: [redacted] }"
        );
    }
}
