//! Unix seconds and wall-clock gaps: the conversions the token (and its clock-skew check),
//! the JWT claims, the mock and the conformance checks share.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole seconds since the Unix epoch; 0 for a time before it.
#[cfg(feature = "mock")]
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The time `seconds` after the Unix epoch, or `None` past what `SystemTime` can hold.
pub(crate) fn from_unix_seconds(seconds: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// How far apart `a` and `b` are, whichever is later.
pub(crate) fn abs_diff(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .unwrap_or_else(|earlier| earlier.duration())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "mock")]
    #[test]
    fn converts_unix_seconds_both_ways() {
        let time = from_unix_seconds(1_668_685_028).expect("in range");
        assert_eq!(unix_seconds(time), 1_668_685_028);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(from_unix_seconds(u64::MAX), None);
    }

    #[test]
    fn measures_gaps_in_either_order() {
        let (a, b) = (UNIX_EPOCH + Duration::from_secs(10), UNIX_EPOCH);
        assert_eq!(abs_diff(a, b), Duration::from_secs(10));
        assert_eq!(abs_diff(b, a), Duration::from_secs(10));
    }
}
