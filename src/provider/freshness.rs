//! [`Freshness`]: whether a cached token is still before its refresh time. Read on every
//! cache hit, so it must cost next to nothing.
//!
//! Reading the precise monotonic clock costs two to three times a whole `ArcSwap` load, so a
//! hit reads the coarse one instead (`CLOCK_MONOTONIC_COARSE` on Linux: a few nanoseconds,
//! behind by at most a scheduler tick), against the refresh time less [`COARSE_TICK`]. The
//! refresh time is always a margin ahead of the moment a token stops being handed out, so
//! the coarse clock's lag can only send a caller to the slow path early, never late.
//!
//! The monotonic clocks stop while the machine sleeps (a laptop's lid, a suspended VM), the
//! wall clock does not, and a token expires by the wall clock: so a hit also reads the
//! coarse wall clock (`CLOCK_REALTIME_COARSE`, as cheap; see `time.rs`) against the moment
//! the token stops being handed out. After a suspend, a token is never served past it.
//!
//! Under tokio's paused clock (tests with `start_paused` or `tokio::time::pause`), time only
//! moves when the test moves it, so there a hit reads tokio's clock: exact, and slower, which
//! no test notices. Whether the clock is paused is found once, when the token is cached.

use std::time::Duration;

use tokio::time::Instant;

use crate::time::COARSE_TICK;

/// The furthest ahead the coarse monotonic deadline is set: its 32.32 fixed-point seconds
/// overflow past about 136 years (which a token's `expires_in` could ask for). A token
/// fresh for longer merely takes the slow path after ten years.
const MAX_COARSE_AHEAD: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Whether a cached token is still before its refresh time.
pub(crate) struct Freshness {
    refresh_at: Instant,
    refresh_at_coarse: coarsetime::Instant,
    /// When the token stops being handed out, on the wall clock (since the Unix epoch).
    usable_until_wall: Duration,
    paused_clock: bool,
}

impl Freshness {
    /// Freshness that ends at `refresh_at` on tokio's clock, or at `usable_until_wall` on
    /// the coarse wall clock, whichever comes first.
    pub(crate) fn until(refresh_at: Instant, usable_until_wall: Duration) -> Self {
        let left = refresh_at
            .saturating_duration_since(Instant::now())
            .saturating_sub(COARSE_TICK)
            .min(MAX_COARSE_AHEAD);
        let refresh_at_coarse = coarsetime::Instant::now_without_cache_update()
            .saturating_add(coarsetime::Duration::from(left));
        Self {
            refresh_at,
            refresh_at_coarse,
            usable_until_wall,
            paused_clock: tokio_clock_is_paused(),
        }
    }

    /// True until the refresh time or the wall-clock deadline; then false for good.
    #[inline]
    pub(crate) fn is_fresh(&self) -> bool {
        let before_refresh = if self.paused_clock {
            Instant::now() < self.refresh_at
        } else {
            coarsetime::Instant::now_without_cache_update() < self.refresh_at_coarse
        };
        before_refresh && crate::time::coarse_wall_clock() < self.usable_until_wall
    }
}

/// Whether tokio's clock stands still: read it, wait until the real clock has moved, read
/// it again. A running clock has moved too; a paused one has not.
fn tokio_clock_is_paused() -> bool {
    let before = Instant::now();
    let real = std::time::Instant::now();
    while std::time::Instant::now() == real {
        std::hint::spin_loop();
    }
    Instant::now() == before
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{coarse_wall_clock, test_clock};

    /// A wall-clock deadline a day ahead.
    fn far() -> Duration {
        coarse_wall_clock() + Duration::from_secs(86_400)
    }

    #[tokio::test(start_paused = true)]
    async fn follows_tokio_time_when_paused() {
        assert!(tokio_clock_is_paused());
        let freshness = Freshness::until(Instant::now() + Duration::from_secs(60), far());
        assert!(freshness.is_fresh());
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(freshness.is_fresh());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!freshness.is_fresh());
    }

    #[tokio::test]
    async fn follows_the_coarse_clock_when_running() {
        assert!(!tokio_clock_is_paused());
        let fresh = Freshness::until(Instant::now() + Duration::from_secs(3600), far());
        assert!(fresh.is_fresh());
        let due = Freshness::until(Instant::now() + COARSE_TICK / 2, far());
        assert!(
            !due.is_fresh(),
            "within a coarse tick of its time counts as due"
        );
    }

    #[test]
    fn works_without_a_runtime() {
        assert!(!tokio_clock_is_paused());
        assert!(Freshness::until(Instant::now() + Duration::from_secs(3600), far()).is_fresh());
        assert!(!Freshness::until(Instant::now(), far()).is_fresh());
    }

    #[test]
    fn a_deadline_beyond_the_coarse_clock_s_range_does_not_overflow() {
        let distant = Instant::now().checked_add(Duration::from_secs(u64::MAX / 4));
        if let Some(distant) = distant {
            assert!(Freshness::until(distant, Duration::MAX).is_fresh());
        }
        // 2^33 - 1 s: in 32.32 fixed point it wraps to just under 2^64, and adding it to the
        // coarse clock overflowed (a panic in debug builds, no cache hit in release).
        let wraps = Instant::now() + Duration::from_secs((1 << 33) - 1);
        assert!(Freshness::until(wraps, Duration::MAX).is_fresh());
    }

    #[test]
    fn ends_at_the_wall_clock_deadline_when_the_machine_slept() {
        let freshness = Freshness::until(Instant::now() + Duration::from_secs(3600), far());
        assert!(freshness.is_fresh());
        // A day's suspend: the monotonic clocks stood still, the wall clock did not.
        test_clock::advance(Duration::from_secs(86_400));
        assert!(!freshness.is_fresh());
    }
}
