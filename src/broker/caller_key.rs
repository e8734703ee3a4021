//! What a token request is identified by in the broker: a keyed hash (HMAC-SHA256 under a
//! key drawn at start and never kept anywhere else) of every value the token depends on,
//! the secrets included. The broker keeps no secret of its own and compares no secret
//! directly: a request is served a cached token only when its hash equals the one the
//! token was fetched for, compared in constant time.

use std::hash::{Hash, Hasher};

use ring::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};
use subtle::ConstantTimeEq;

/// The HMAC key of one broker, random per process.
pub(super) struct KeyHasher {
    key: hmac::Key,
}

impl KeyHasher {
    /// A hasher under a fresh random key; `None` when the system has no random source.
    pub(super) fn random() -> Option<Self> {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).ok()?;
        Some(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }

    /// The key of `fields`, each length-prefixed so that no two lists hash alike.
    pub(super) fn key_of(&self, fields: &[&str]) -> CallerKey {
        let mut context = hmac::Context::with_key(&self.key);
        for field in fields {
            context.update(&(field.len() as u64).to_be_bytes());
            context.update(field.as_bytes());
        }
        let tag = context.sign();
        let mut digest = [0u8; 32];
        digest.copy_from_slice(tag.as_ref());
        CallerKey(digest)
    }
}

/// The keyed hash of one request's keys. Equality is constant time.
#[derive(Clone, Copy)]
pub(super) struct CallerKey([u8; 32]);

impl PartialEq for CallerKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for CallerKey {}

impl Hash for CallerKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // A keyed hash is already uniform: its first bytes bucket it.
        state.write(&self.0[..8]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_and_its_boundaries_count() {
        let hasher = KeyHasher::random().unwrap();
        let key = hasher.key_of(&["a", "bc"]);
        assert!(key == hasher.key_of(&["a", "bc"]));
        assert!(key != hasher.key_of(&["ab", "c"]));
        assert!(key != hasher.key_of(&["a", "bd"]));
        assert!(key != hasher.key_of(&["a", "bc", ""]));
    }

    #[test]
    fn two_brokers_hash_alike_keys_apart() {
        let (one, two) = (KeyHasher::random().unwrap(), KeyHasher::random().unwrap());
        assert!(one.key_of(&["a"]) != two.key_of(&["a"]));
    }
}
