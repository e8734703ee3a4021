//! Sealing records with ChaCha20-Poly1305: each record names the key it was sealed under
//! and is bound to its key name (associated data), so it can be neither read, altered nor
//! moved to another token's name. A previous key stays readable during a rotation.

use std::fmt;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    ChaCha20Poly1305, Nonce,
    aead::{Aead, Generate, KeyInit, Payload},
};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

use super::StoreError;
use crate::credentials::ClientSecret;

/// The length of a sealing key: 32 bytes, given as base64 (`openssl rand -base64 32`).
pub const SEALING_KEY_BYTES: usize = 32;

/// Marks a sealed record of this library, and its format version.
const MAGIC: &[u8; 3] = b"vat";
const VERSION: u8 = 1;
const KEY_ID_BYTES: usize = 8;
const NONCE_BYTES: usize = 12;
const HEADER_BYTES: usize = MAGIC.len() + 1 + KEY_ID_BYTES;
/// The HKDF label of keys derived from a client secret: a new version makes old records
/// a miss, never a misread.
const CLIENT_SECRET_LABEL: &[u8] = b"vipps-access-token/store/client-secret-key/v1";

/// One 32-byte key, with the subkeys derived from it: one to name records, one to seal
/// them, and a public id so a record says which key sealed it.
struct SealingKey {
    naming: SecretBox<[u8; 32]>,
    sealing: SecretBox<[u8; 32]>,
    id: [u8; KEY_ID_BYTES],
}

impl SealingKey {
    fn new(material: &[u8; SEALING_KEY_BYTES]) -> Self {
        let naming = Box::new(derive(material, b"vipps-access-token/store/name/v1"));
        let sealing = Box::new(derive(material, b"vipps-access-token/store/seal/v1"));
        let mut id = [0; KEY_ID_BYTES];
        id.copy_from_slice(
            &derive(material, b"vipps-access-token/store/key-id/v1")[..KEY_ID_BYTES],
        );
        Self {
            naming: SecretBox::new(naming),
            sealing: SecretBox::new(sealing),
            id,
        }
    }
}

/// HMAC-SHA256 of `label` under `key`: independent subkeys from one key.
fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = hmac(key);
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn hmac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// The keys records are sealed with: the current one, which seals and names every new
/// record, and optionally the previous one, still accepted for reading during a rotation.
///
/// `Debug` shows the keys' public ids, never the keys.
pub struct SealingKeys {
    current: SealingKey,
    previous: Option<SealingKey>,
}

impl fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKeys")
            .field("current_id", &hex(&self.current.id))
            .field("previous_id", &self.previous.as_ref().map(|k| hex(&k.id)))
            .finish()
    }
}

impl SealingKeys {
    /// Keys from raw bytes.
    pub fn new(
        current: [u8; SEALING_KEY_BYTES],
        previous: Option<[u8; SEALING_KEY_BYTES]>,
    ) -> Self {
        let keys = Self {
            current: SealingKey::new(&current),
            previous: previous.as_ref().map(SealingKey::new),
        };
        let mut current = current;
        let mut previous = previous;
        zeroize::Zeroize::zeroize(&mut current);
        if let Some(previous) = &mut previous {
            zeroize::Zeroize::zeroize(previous);
        }
        keys
    }

    /// Keys derived from the client secret (HKDF-SHA256, fixed versioned label): no key of
    /// its own to make, hand out or rotate.
    ///
    /// Protects records from whoever can read the store but does not hold the secret (a
    /// backup, another user, a copied disk): they can neither read a token nor tell whose
    /// it is. Does not protect from anyone holding the secret: they could mint tokens with
    /// it anyway. Rotating the secret makes the old records unreadable, a miss and a fetch.
    /// The file store uses it when no `VIPPS_TOKEN_STORE_KEY` is given; the CLI's Redis
    /// store does not: a fleet's store is shared over the network, and its own key can be
    /// rotated or revoked without touching the Vipps MobilePay keys.
    pub fn from_client_secret(secret: &ClientSecret) -> Self {
        let mut material = zeroize::Zeroizing::new([0u8; SEALING_KEY_BYTES]);
        hkdf::Hkdf::<Sha256>::new(None, secret.expose_secret().as_bytes())
            .expand(CLIENT_SECRET_LABEL, material.as_mut())
            // 32 bytes is well within HKDF-SHA256's 8160.
            .unwrap_or_else(|_| unreachable!());
        Self::new(*material, None)
    }

    /// Keys from base64 text (standard alphabet, padded), as in `VIPPS_TOKEN_STORE_KEY`.
    /// The error names `current_name` or `previous_name`, never the value.
    pub fn from_base64(
        current: &str,
        previous: Option<&str>,
        current_name: &str,
        previous_name: &str,
    ) -> Result<Self, StoreError> {
        let current = decode_key(current, current_name)?;
        let previous = previous
            .filter(|text| !text.trim().is_empty())
            .map(|text| decode_key(text, previous_name))
            .transpose()?;
        Ok(Self::new(
            *current.expose_secret(),
            previous.map(|p| *p.expose_secret()),
        ))
    }

    /// The keys to try when reading, current first.
    pub(crate) fn readers(&self) -> impl Iterator<Item = KeyRef<'_>> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .map(|key| KeyRef { key })
    }

    /// The key that seals and names new records.
    pub(crate) fn writer(&self) -> KeyRef<'_> {
        KeyRef { key: &self.current }
    }

    /// Seals `plaintext` under the current key, bound to `name`.
    pub(crate) fn seal(&self, name: &str, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let key = &self.current;
        let mut header = Vec::with_capacity(HEADER_BYTES + NONCE_BYTES + plaintext.len() + 16);
        header.extend_from_slice(MAGIC);
        header.push(VERSION);
        header.extend_from_slice(&key.id);
        let nonce = Nonce::generate();
        let cipher = ChaCha20Poly1305::new(key.sealing.expose_secret().into());
        let aad = associated_data(&header, name);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Corrupt("the record could not be sealed".to_owned()))?;
        let mut record = header;
        record.extend_from_slice(&nonce);
        record.extend_from_slice(&sealed);
        Ok(record)
    }

    /// Opens a record read from `name` with whichever of the keys sealed it.
    pub(crate) fn open(&self, name: &str, record: &[u8]) -> Result<Vec<u8>, StoreError> {
        if record.len() < HEADER_BYTES + NONCE_BYTES || !record.starts_with(MAGIC) {
            return Err(StoreError::Corrupt(
                "not a record of this library (wrong length or marker)".to_owned(),
            ));
        }
        let version = record[MAGIC.len()];
        if version != VERSION {
            return Err(StoreError::Foreign(format!(
                "record format version {version}, this build reads version {VERSION}: \
                 run one version per store, or give each its own key prefix"
            )));
        }
        let (header, rest) = record.split_at(HEADER_BYTES);
        let key_id = &header[MAGIC.len() + 1..];
        let Some(key) = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|key| key.id == key_id)
        else {
            return Err(StoreError::Foreign(
                "sealed under a key this process does not hold: check VIPPS_TOKEN_STORE_KEY \
                 across the fleet"
                    .to_owned(),
            ));
        };
        let (nonce, sealed) = rest.split_at(NONCE_BYTES);
        let nonce = Nonce::try_from(nonce)
            .map_err(|_| StoreError::Corrupt("the record's nonce is malformed".to_owned()))?;
        let cipher = ChaCha20Poly1305::new(key.sealing.expose_secret().into());
        let aad = associated_data(header, name);
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                StoreError::Corrupt(
                    "the record does not authenticate: altered, or moved from another key name"
                        .to_owned(),
                )
            })
    }
}

/// A key to name records with.
#[derive(Clone, Copy)]
pub(crate) struct KeyRef<'a> {
    key: &'a SealingKey,
}

impl KeyRef<'_> {
    /// Hex of HMAC-SHA256 of `identity` under this key's naming subkey.
    pub(crate) fn name(&self, identity: &[u8]) -> String {
        let mut mac = hmac(self.key.naming.expose_secret());
        mac.update(identity);
        hex(&mac.finalize().into_bytes())
    }
}

/// The header and the key name: a record opens only where it was written.
fn associated_data(header: &[u8], name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + name.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(name.as_bytes());
    aad
}

fn decode_key(
    text: &str,
    variable: &str,
) -> Result<SecretBox<[u8; SEALING_KEY_BYTES]>, StoreError> {
    let wrong = || {
        StoreError::Config(format!(
            "{variable} must be {SEALING_KEY_BYTES} bytes in base64 \
             (make one with `openssl rand -base64 32`)"
        ))
    };
    let bytes = zeroize::Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| wrong())?);
    let key: [u8; SEALING_KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| wrong())?;
    Ok(SecretBox::new(Box::new(key)))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(byte: u8) -> SealingKeys {
        SealingKeys::new([byte; 32], None)
    }

    #[test]
    fn a_sealed_record_opens_under_its_name_only() {
        let keys = keys(1);
        let record = keys.seal("name-a", b"plaintext").unwrap();
        assert!(!record.windows(9).any(|w| w == b"plaintext"));
        assert_eq!(keys.open("name-a", &record).unwrap(), b"plaintext");
        assert!(matches!(
            keys.open("name-b", &record),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn another_key_is_foreign_and_a_previous_key_still_reads() {
        let old = keys(1);
        let record = old.seal("name", b"x").unwrap();
        assert!(matches!(
            keys(2).open("name", &record),
            Err(StoreError::Foreign(_))
        ));
        let rotated = SealingKeys::new([2; 32], Some([1; 32]));
        assert_eq!(rotated.open("name", &record).unwrap(), b"x");
    }

    #[test]
    fn a_flipped_byte_or_a_short_record_is_corrupt() {
        let keys = keys(1);
        let mut record = keys.seal("name", b"plaintext").unwrap();
        let last = record.len() - 1;
        record[last] ^= 1;
        assert!(matches!(
            keys.open("name", &record),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            keys.open("name", b"vat"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            keys.open("name", b""),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn keys_from_a_client_secret_are_stable_and_differ_by_secret() {
        let secret = |text: &str| ClientSecret::new(text);
        let a = SealingKeys::from_client_secret(&secret("Y8Kteew6GE2ZmeycEt6egg=="));
        let again = SealingKeys::from_client_secret(&secret("Y8Kteew6GE2ZmeycEt6egg=="));
        let rotated = SealingKeys::from_client_secret(&secret("rotated-secret"));
        let record = a.seal("name", b"x").unwrap();
        assert_eq!(again.open("name", &record).unwrap(), b"x");
        assert!(matches!(
            rotated.open("name", &record),
            Err(StoreError::Foreign(_))
        ));
        assert_ne!(a.writer().name(b"id"), rotated.writer().name(b"id"));
        assert!(!format!("{a:?}").contains("Y8Kteew6GE2ZmeycEt6egg=="));
    }

    #[test]
    fn keys_from_base64_name_the_variable_not_the_value() {
        let error =
            SealingKeys::from_base64("c2hvcnQ=", None, "VIPPS_TOKEN_STORE_KEY", "P").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("VIPPS_TOKEN_STORE_KEY"), "{text}");
        assert!(!text.contains("c2hvcnQ="), "{text}");
        let good = STANDARD.encode([7u8; 32]);
        let keys = SealingKeys::from_base64(&good, Some(""), "K", "P").unwrap();
        assert!(keys.previous.is_none());
        assert!(!format!("{keys:?}").contains(&good));
    }
}
