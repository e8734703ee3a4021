//! [`Freshness`]: whether a cached token is still before its refresh time. Read on every
//! cache hit, so it must cost next to nothing.
//!
//! Reading the precise monotonic clock costs two to three times a whole `ArcSwap` load, so a
//! hit reads the coarse one instead (`CLOCK_MONOTONIC_COARSE` on Linux: a few nanoseconds,
//! behind by at most a scheduler tick), against the refresh time less [`COARSE_TICK`]. The
//! refresh time is always a margin ahead of the moment a token stops being handed out, so
//! the coarse clock's lag can only send a caller to the slow path early, never late.
//!
//! Under tokio's paused clock (tests with `start_paused` or `tokio::time::pause`), time only
//! moves when the test moves it, so there a hit reads tokio's clock: exact, and slower, which
//! no test notices. Whether the clock is paused is found once, when the token is cached.

use std::time::Duration;

use tokio::time::Instant;

/// The coarse clock's worst-case lag behind the precise one, with room to spare.
const COARSE_TICK: Duration = Duration::from_millis(20);

/// Whether a cached token is still before its refresh time.
pub(crate) struct Freshness {
    refresh_at: Instant,
    refresh_at_coarse: coarsetime::Instant,
    paused_clock: bool,
}

impl Freshness {
    /// Freshness that ends at `refresh_at` on tokio's clock.
    pub(crate) fn until(refresh_at: Instant) -> Self {
        let left = refresh_at.saturating_duration_since(Instant::now());
        let refresh_at_coarse = coarsetime::Instant::now_without_cache_update()
            + coarsetime::Duration::from(left.saturating_sub(COARSE_TICK));
        Self {
            refresh_at,
            refresh_at_coarse,
            paused_clock: tokio_clock_is_paused(),
        }
    }

    /// True until the refresh time; then false for good.
    #[inline]
    pub(crate) fn is_fresh(&self) -> bool {
        if self.paused_clock {
            Instant::now() < self.refresh_at
        } else {
            coarsetime::Instant::now_without_cache_update() < self.refresh_at_coarse
        }
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

    #[tokio::test(start_paused = true)]
    async fn follows_tokio_time_when_paused() {
        assert!(tokio_clock_is_paused());
        let freshness = Freshness::until(Instant::now() + Duration::from_secs(60));
        assert!(freshness.is_fresh());
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(freshness.is_fresh());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!freshness.is_fresh());
    }

    #[tokio::test]
    async fn follows_the_coarse_clock_when_running() {
        assert!(!tokio_clock_is_paused());
        let fresh = Freshness::until(Instant::now() + Duration::from_secs(3600));
        assert!(fresh.is_fresh());
        let due = Freshness::until(Instant::now() + COARSE_TICK / 2);
        assert!(
            !due.is_fresh(),
            "within a coarse tick of its time counts as due"
        );
    }

    #[test]
    fn works_without_a_runtime() {
        assert!(!tokio_clock_is_paused());
        assert!(Freshness::until(Instant::now() + Duration::from_secs(3600)).is_fresh());
        assert!(!Freshness::until(Instant::now()).is_fresh());
    }
}
