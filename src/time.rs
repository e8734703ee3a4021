//! Unix seconds and wall-clock gaps: the conversions the token (and its clock-skew check),
//! the JWT claims, the mock and the conformance checks share; and the coarse wall clock
//! the provider checks a cached token's expiry against.

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

/// The coarse clocks' worst-case lag behind the precise ones, with room to spare: what a
/// token must have left beyond its margin, wherever that is judged (the cache, the store).
pub(crate) const COARSE_TICK: Duration = Duration::from_millis(20);

/// The wall clock's time since the Unix epoch (zero for a clock set before it), coarse:
/// behind by at most a scheduler tick, and cheap enough for every cache hit. The provider
/// reads it beside the monotonic clock because that one stops while the machine sleeps, and
/// a token expires by the wall clock. Unit tests can move it ahead ([`test_clock`]).
#[inline]
pub(crate) fn coarse_wall_clock() -> Duration {
    let now = read_coarse_wall_clock();
    #[cfg(test)]
    let now = now.saturating_add(test_clock::ahead());
    now
}

/// `CLOCK_REALTIME_COARSE`, through the vDSO: a few nanoseconds.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn read_coarse_wall_clock() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    Duration::from_secs(seconds).saturating_add(Duration::from_nanos(nanos))
}

/// The precise wall clock, where there is no coarse one at hand.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[inline]
fn read_coarse_wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A wall clock that unit tests move ahead, as a suspend or a clock step does, on their own
/// thread only (a current-thread runtime keeps a test's tasks on it).
#[cfg(test)]
pub(crate) mod test_clock {
    use std::{cell::Cell, time::Duration};

    thread_local! {
        static AHEAD: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    }

    /// How far this thread's wall clock is ahead of the real one.
    pub(crate) fn ahead() -> Duration {
        AHEAD.with(Cell::get)
    }

    /// Moves this thread's wall clock `by` ahead, the monotonic clocks standing still.
    pub(crate) fn advance(by: Duration) {
        AHEAD.with(|ahead| ahead.set(ahead.get().saturating_add(by)));
    }
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

    #[test]
    fn the_coarse_wall_clock_is_within_a_tick_of_the_precise_one() {
        let precise = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let coarse = coarse_wall_clock();
        assert!(abs_diff(UNIX_EPOCH + precise, UNIX_EPOCH + coarse) < Duration::from_millis(50));
        test_clock::advance(Duration::from_secs(3600));
        assert!(coarse_wall_clock() >= coarse + Duration::from_secs(3600));
    }
}
