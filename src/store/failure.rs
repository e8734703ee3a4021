//! The failure marker: what a lease holder leaves in the store when its fetch fails, so that
//! the fleet returns that failure for the marker's short life instead of each process
//! fetching again. It says who failed, when, and a secret-free summary of why (kind, HTTP
//! status, the redacted message), sealed like a record and bound to the marker's name.
//!
//! Only a marker this build can open is honoured, and only for this build's marker life
//! ([`life`]) counted from the time written inside it, whatever life the store gave the
//! key: a marker of another version, sealed under another key, altered, or written with a
//! longer life (a key set by hand with no TTL) would otherwise stop the whole fleet for as
//! long as it lasts. Such a marker is ignored (the caller removes it, compare-and-delete).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, FailureKind};

use super::{StoreConfig, degraded};

/// The marker's plaintext format. 2: with the time it was written (`at`). Any other
/// version is ignored.
const MARKER_VERSION: u8 = 2;
/// The longest message kept: enough for an API error and its hint.
const MAX_MESSAGE_CHARS: usize = 600;

/// One failure, as stored (sealed).
#[derive(Serialize, Deserialize)]
struct Marker {
    v: u8,
    /// When it was written: milliseconds since the Unix epoch, on the writer's clock.
    at: u64,
    holder: String,
    kind: String,
    status: Option<u16>,
    message: String,
}

/// How long a failed fetch's marker lives, and the longest any marker is honoured for:
/// twice the lease, a few seconds.
pub(super) fn life(config: &StoreConfig) -> Duration {
    config.lease_ttl.saturating_mul(2)
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
    seal_at(config, name, holder, error, SystemTime::now())
}

fn seal_at(
    config: &StoreConfig,
    name: &str,
    holder: &[u8],
    error: &Error,
    now: SystemTime,
) -> Option<Vec<u8>> {
    let kind = kind_of(error)?;
    let marker = Marker {
        v: MARKER_VERSION,
        at: unix_millis(now),
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

/// The error a marker read from `name` stands for (the holder's, rebuilt), while it is
/// honoured; `None` for a marker to ignore: one this build cannot open or read (another
/// version, another key, altered), or one written longer ago than [`life`] (or as far in
/// the future: a clock that far off is not trusted either).
pub(super) fn open(config: &StoreConfig, name: &str, sealed: &[u8]) -> Option<Error> {
    open_at(config, name, sealed, SystemTime::now())
}

fn open_at(config: &StoreConfig, name: &str, sealed: &[u8], now: SystemTime) -> Option<Error> {
    let marker = config
        .keys
        .open(name, sealed)
        .ok()
        .and_then(|plain| serde_json::from_slice::<Marker>(&plain).ok())
        .filter(|marker| marker.v == MARKER_VERSION);
    let Some(marker) = marker else {
        tracing::warn!(
            "vipps token store: ignoring a failure marker this build cannot read (another \
             version of this library, another sealing key, or not written by it); fetching"
        );
        return None;
    };
    let life_ms = u64::try_from(life(config).as_millis()).unwrap_or(u64::MAX);
    if unix_millis(now).abs_diff(marker.at) > life_ms {
        tracing::warn!(
            holder = %marker.holder,
            "vipps token store: ignoring a failure marker written more than its life ago \
             (or dated ahead of this clock by as much); fetching"
        );
        return None;
    }
    tracing::debug!(
        holder = %marker.holder,
        "another process's vipps token fetch just failed: sharing its error"
    );
    Some(Error::shared(
        kind_from_name(&marker.kind),
        marker.status,
        marker.message,
    ))
}

/// `time` in milliseconds since the Unix epoch; 0 before it, `u64::MAX` past what fits.
fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
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
    fn a_marker_rebuilds_the_holders_error_and_a_foreign_one_is_ignored() {
        let error = Error::shared(FailureKind::Refused, Some(400), "bad request".to_owned());
        let sealed = seal(&config(1), "a:failed", b"holder", &error).expect("shared");
        let opened = open(&config(1), "a:failed", &sealed).expect("honoured");
        assert_eq!(opened.status(), Some(400));
        assert!(opened.to_string().contains("bad request"), "{opened}");

        let sealed_plain = |plain: &[u8]| config(1).keys.seal("a:failed", plain).unwrap();
        let older_version =
            sealed_plain(br#"{"v":1,"holder":"h","kind":"refused","status":400,"message":"m"}"#);
        let next_version = sealed_plain(
            br#"{"v":3,"at":0,"holder":"h","kind":"refused","status":400,"message":"m"}"#,
        );
        let without_time =
            sealed_plain(br#"{"v":2,"holder":"h","kind":"refused","status":400,"message":"m"}"#);
        for (key, name, bytes) in [
            (2, "a:failed", sealed.as_slice()),
            (1, "b:failed", sealed.as_slice()),
            (1, "a:failed", b"1".as_slice()),
            (
                1,
                "a:failed",
                b"0123456789abcdef0123456789abcdef".as_slice(),
            ),
            (1, "a:failed", older_version.as_slice()),
            (1, "a:failed", next_version.as_slice()),
            (1, "a:failed", without_time.as_slice()),
        ] {
            assert!(open(&config(key), name, bytes).is_none(), "{key} {name}");
        }
    }

    #[test]
    fn a_marker_is_honoured_for_its_life_from_when_it_was_written_and_no_longer() {
        let config = config(1);
        let life = life(&config);
        let error = Error::shared(FailureKind::Unavailable, Some(503), "down".to_owned());
        let written = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let sealed = seal_at(&config, "a:failed", b"holder", &error, written).expect("shared");
        let at = |offset: Duration, ahead: bool| {
            let now = if ahead {
                written.checked_add(offset)
            } else {
                written.checked_sub(offset)
            };
            open_at(&config, "a:failed", &sealed, now.expect("in range")).is_some()
        };
        assert!(at(Duration::ZERO, true));
        assert!(at(life, true), "at the end of its life");
        assert!(!at(life + Duration::from_millis(1), true), "past its life");
        assert!(!at(Duration::from_secs(3600), true), "an hour later");
        assert!(at(life, false), "a writer's clock a little ahead");
        assert!(!at(Duration::from_secs(3600), false), "dated an hour ahead");
        assert!(open_at(&config, "a:failed", &sealed, UNIX_EPOCH).is_none());
    }

    #[test]
    fn a_refused_input_is_not_shared() {
        let error = Error::invalid_input("Merchant-Serial-Number", "is empty");
        assert!(seal(&config(1), "a:failed", b"holder", &error).is_none());
    }
}
