//! The failure marker: what a lease holder leaves in the store when its fetch fails, so that
//! the fleet returns that failure for the marker's short life instead of each process
//! fetching again. It says who failed and a secret-free summary of why (kind, HTTP status,
//! the redacted message), sealed like a record and bound to the marker's name. A marker
//! this build cannot read (another version, another key) still means "failed", without
//! details.

use serde::{Deserialize, Serialize};

use crate::error::{Error, FailureKind};

use super::{StoreConfig, degraded};

/// The marker's plaintext format; another version is read as "failed, no details".
const MARKER_VERSION: u8 = 1;
/// The longest message kept: enough for an API error and its hint.
const MAX_MESSAGE_CHARS: usize = 600;

/// One failure, as stored (sealed).
#[derive(Serialize, Deserialize)]
struct Marker {
    v: u8,
    holder: String,
    kind: String,
    status: Option<u16>,
    message: String,
}

/// The sealed marker for `holder`'s `error`, under the marker key `name`; `None` when the
/// error says nothing about the upstream (a value refused before sending, an interrupted
/// task) and should not stop the fleet, or when it cannot be sealed (after a warning).
pub(super) fn seal(
    config: &StoreConfig,
    name: &str,
    holder: &[u8],
    error: &Error,
) -> Option<Vec<u8>> {
    let kind = kind_of(error)?;
    let marker = Marker {
        v: MARKER_VERSION,
        holder: String::from_utf8_lossy(holder).into_owned(),
        kind: kind_name(kind).to_owned(),
        status: error.status(),
        message: error.to_string().chars().take(MAX_MESSAGE_CHARS).collect(),
    };
    let plain = serde_json::to_vec(&marker).ok()?;
    match config.keys.seal(name, &plain) {
        Ok(sealed) => Some(sealed),
        Err(error) => {
            degraded("mark", &error);
            None
        }
    }
}

/// The error a marker read from `name` stands for: the holder's, rebuilt; or, for a marker
/// this build cannot read, a failure without details.
pub(super) fn open(config: &StoreConfig, name: &str, sealed: &[u8]) -> Error {
    let marker = config
        .keys
        .open(name, sealed)
        .ok()
        .and_then(|plain| serde_json::from_slice::<Marker>(&plain).ok())
        .filter(|marker| marker.v == MARKER_VERSION);
    match marker {
        Some(marker) => {
            tracing::debug!(
                holder = %marker.holder,
                "another process's vipps token fetch just failed: sharing its error"
            );
            Error::shared(kind_from_name(&marker.kind), marker.status, marker.message)
        }
        None => Error::shared(
            FailureKind::Unknown,
            None,
            "its details cannot be read here (a marker from another version of this \
             library, or sealed under another key)"
                .to_owned(),
        ),
    }
}

/// What kind of failure `error` is for the fleet; `None` for one local to this process.
fn kind_of(error: &Error) -> Option<FailureKind> {
    Some(match error {
        Error::InvalidInput(_) | Error::Interrupted => return None,
        _ if error.is_credentials_rejected() => FailureKind::CredentialsRejected,
        _ if error.is_transient() => FailureKind::Unavailable,
        Error::InvalidResponse(_) | Error::ResponseTooLarge { .. } => FailureKind::InvalidResponse,
        Error::Api(_) => FailureKind::Refused,
        Error::Shared(shared) => shared.kind,
        _ => FailureKind::Unknown,
    })
}

fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::CredentialsRejected => "credentials_rejected",
        FailureKind::Unavailable => "unavailable",
        FailureKind::Refused => "refused",
        FailureKind::InvalidResponse => "invalid_response",
        FailureKind::Unknown => "unknown",
    }
}

fn kind_from_name(name: &str) -> FailureKind {
    match name {
        "credentials_rejected" => FailureKind::CredentialsRejected,
        "unavailable" => FailureKind::Unavailable,
        "refused" => FailureKind::Refused,
        "invalid_response" => FailureKind::InvalidResponse,
        _ => FailureKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SealingKeys;

    fn config(key: u8) -> StoreConfig {
        StoreConfig::new(SealingKeys::new([key; 32], None))
    }

    #[test]
    fn a_marker_rebuilds_the_holders_error_and_a_foreign_one_is_a_failure_without_details() {
        let error = Error::shared(FailureKind::Refused, Some(400), "bad request".to_owned());
        let sealed = seal(&config(1), "a:failed", b"holder", &error).expect("shared");
        let opened = open(&config(1), "a:failed", &sealed);
        assert_eq!(opened.status(), Some(400));
        assert!(opened.to_string().contains("bad request"), "{opened}");

        let next_version = br#"{"v":2,"holder":"h","kind":"refused","status":400,"message":"m"}"#;
        let next_version = config(1).keys.seal("a:failed", next_version).unwrap();
        for (key, name, bytes) in [
            (2, "a:failed", sealed.as_slice()),
            (1, "b:failed", sealed.as_slice()),
            (
                1,
                "a:failed",
                b"0123456789abcdef0123456789abcdef".as_slice(),
            ),
            (1, "a:failed", next_version.as_slice()),
        ] {
            let Error::Shared(shared) = open(&config(key), name, bytes) else {
                panic!("not a shared failure");
            };
            assert_eq!((shared.kind, shared.status), (FailureKind::Unknown, None));
        }
    }

    #[test]
    fn a_refused_input_is_not_shared() {
        let error = Error::invalid_input("Merchant-Serial-Number", "is empty");
        assert!(seal(&config(1), "a:failed", b"holder", &error).is_none());
    }
}
