//! The file store's names: a key name as a file name and back, and which names are
//! provably ours (the shapes `identity.rs` and `lease.rs` make), so that housekeeping never
//! touches a file it did not write, whatever the key prefix.

use std::fmt::Write as _;

/// The suffixes `identity.rs` puts after a token's record name.
pub(super) const LEASE_SUFFIX: &str = ":lease";
const FAILURE_SUFFIX: &str = ":failed";
/// A probe record's name: a record name, this, then 32 hex digits (`probe_name`).
const PROBE_INFIX: &str = ":probe:";
/// The hex digits of a hash tag (`{xxxx}`) and of a name's HMAC.
const TAG_DIGITS: usize = 4;
const MAC_DIGITS: usize = 64;
/// Files being written: this, then 32 hex digits; never read as records.
const TEMP_PREFIX: &str = ".tmp-";
const TEMP_DIGITS: usize = 32;
/// The longest holder id a lease file may hold (`lease.rs` makes 32 hex digits).
const MAX_HOLDER_DIGITS: usize = 64;

/// What a file of ours holds, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A sealed token record.
    Record,
    /// A lease: a lock file, holding its holder's id while it is held.
    Lease,
    /// A failure marker: a record naming the holder whose fetch failed.
    FailureMarker,
    /// A preflight probe's record.
    Probe,
}

/// What the key name `key` is, if it has one of our shapes under `prefix`:
/// `prefix{xxxx}` and 64 hex digits, then nothing, `:lease`, `:failed` or a probe's nonce.
pub(super) fn kind_of(key: &str, prefix: &str) -> Option<Kind> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('{')?;
    let (tag, rest) = rest.split_at_checked(TAG_DIGITS)?;
    let (mac, suffix) = rest.strip_prefix('}')?.split_at_checked(MAC_DIGITS)?;
    if !is_hex(tag) || !is_hex(mac) {
        return None;
    }
    match suffix {
        "" => Some(Kind::Record),
        LEASE_SUFFIX => Some(Kind::Lease),
        FAILURE_SUFFIX => Some(Kind::FailureMarker),
        _ => {
            let nonce = suffix.strip_prefix(PROBE_INFIX)?;
            (nonce.len() == TEMP_DIGITS && is_hex(nonce)).then_some(Kind::Probe)
        }
    }
}

/// True for a lease name, whatever its shape: its file is a lock, never a record.
pub(super) fn is_lease(key: &str) -> bool {
    key.ends_with(LEASE_SUFFIX)
}

/// A new temporary file name, unique in practice.
pub(super) fn new_temp_name() -> String {
    format!("{TEMP_PREFIX}{:032x}", fastrand::u128(..))
}

/// True for a name [`new_temp_name`] makes.
pub(super) fn is_temp_name(file: &str) -> bool {
    file.strip_prefix(TEMP_PREFIX)
        .is_some_and(|digits| digits.len() == TEMP_DIGITS && is_hex(digits))
}

/// True for what a lease file of ours may hold: a holder id (hex digits).
pub(super) fn is_holder_id(bytes: &[u8]) -> bool {
    (1..=MAX_HOLDER_DIGITS).contains(&bytes.len())
        && bytes
            .iter()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lower-case hex digits only (what `seal.rs` and `lease.rs` write).
fn is_hex(text: &str) -> bool {
    text.bytes()
        .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// A key name as a file name: letters, digits, `-`, `_`, `:` (Unix) and `.` (not first)
/// as they are, any other byte as `%XX`; so no name can leave the directory or collide
/// with the store's own dot files.
pub(super) fn file_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len());
    for (index, byte) in key.bytes().enumerate() {
        let plain = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_')
            || (byte == b':' && cfg!(unix))
            || (byte == b'.' && index > 0);
        if plain {
            name.push(char::from(byte));
        } else {
            let _ = write!(name, "%{byte:02X}");
        }
    }
    name
}

/// The key name of a file name made by [`file_name`]; `None` for any other file.
pub(super) fn key_name(file: &str) -> Option<String> {
    if file.starts_with('.') {
        return None;
    }
    let mut bytes = Vec::with_capacity(file.len());
    let mut rest = file.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    let key = String::from_utf8(bytes).ok()?;
    // Only the one spelling `file_name` makes: `%41` is not another name for `A`.
    (file_name(&key) == file).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        client::{ClientBuilder, source::TokenSource},
        credentials::StandardCredentials,
        store::{SealingKeys, StoreConfig, TokenIdentity},
    };

    #[test]
    fn file_names_stay_in_the_directory_and_read_back() {
        for key in [
            "vipps-access-token:0a1b",
            "a/../../etc/passwd",
            ".hidden",
            "p%x",
            "ü",
        ] {
            let name = file_name(key);
            assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
            assert_eq!(key_name(&name).as_deref(), Some(key));
        }
        assert_eq!(key_name(".lock"), None);
        assert_eq!(key_name("bad%4"), None);
        assert_eq!(key_name("%41"), None, "one spelling per name");
    }

    /// The shapes here are the ones `identity.rs` makes: every key of a real token, and a
    /// probe's, is recognised; nothing under another prefix or of another shape is.
    #[test]
    fn every_name_the_store_makes_is_ours_and_nothing_else_is() {
        let client = ClientBuilder::with_base_url("http://127.0.0.1:1")
            .allow_insecure_http(true)
            .build()
            .unwrap();
        let source = TokenSource::Standard(StandardCredentials::new(
            "fb492b5e-7907-4d83-ba20-c7fb60ca35de",
            "Y8Kteew6GE2ZmeycEt6egg==",
            "0f14ebcab0ec4b29ae0cb90d91b4a84a",
        ));
        let config = StoreConfig::new(SealingKeys::new([3; 32], Some([4; 32])));
        let keys = TokenIdentity::new(&source, &client).keys(&config);
        let prefix = &config.key_prefix;
        for record in &keys.records {
            assert_eq!(kind_of(record, prefix), Some(Kind::Record), "{record}");
        }
        assert_eq!(kind_of(&keys.lease, prefix), Some(Kind::Lease));
        assert_eq!(kind_of(&keys.failure, prefix), Some(Kind::FailureMarker));
        let probe = TokenIdentity::probe_name(&config, config.keys.writer(), 7);
        assert_eq!(kind_of(&probe, prefix), Some(Kind::Probe), "{probe}");
        assert_eq!(kind_of(&keys.lease, "other:"), None);
        assert_eq!(kind_of(&keys.lease, "v"), None);
        for other in [
            "notes.txt",
            "vipps-access-token:",
            "vipps-access-token:{0a1b}short",
            &format!("{}:unknown", keys.records[0]),
            &format!("{}x", keys.records[0]),
        ] {
            assert_eq!(kind_of(other, prefix), None, "{other}");
        }
        assert!(is_temp_name(&new_temp_name()));
        assert!(!is_temp_name(".tmp-notes"));
        assert!(is_holder_id(b"0123456789abcdef0123456789abcdef"));
        assert!(!is_holder_id(b"") && !is_holder_id(b"not hex"));
    }
}
