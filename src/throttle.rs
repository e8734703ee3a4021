//! How often the token endpoint may be asked when asking does not help: [`ForcedRefreshes`]
//! (refreshes that APIs answering 401 force, per keys and endpoint) and [`FailureBackoff`]
//! (fetches after failures, per key, while no usable token is left).

use std::{collections::HashMap, hash::Hash, sync::Mutex, time::Duration};

use tokio::time::Instant;

use crate::{error::Error, refresh::RefreshPolicy, sync::lock};

/// When a 401 last forced a refresh, by keys and endpoint (not by merchant: an API that
/// refuses every token costs one request per interval however many merchants call it).
/// Kept apart from the slots, so evicting a slot does not reset its limit; bounded like
/// them.
pub(crate) struct ForcedRefreshes<K> {
    capacity: usize,
    last: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> ForcedRefreshes<K> {
    /// Remembers at most `capacity` keys (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            last: Mutex::default(),
        }
    }

    /// Whether a refresh for `key` may be forced now: none was in the last `interval`.
    /// If so, it is recorded and `force` runs under the same lock, so that a caller that
    /// finds the interval running also finds what `force` started.
    pub(crate) fn try_force(&self, key: K, interval: Duration, force: impl FnOnce()) -> bool {
        let now = Instant::now();
        let within = |at: &Instant| at.checked_add(interval).is_none_or(|end| now < end);
        let mut last = lock(&self.last);
        if last.get(&key).is_some_and(within) {
            return false;
        }
        if last.len() >= self.capacity && !last.contains_key(&key) {
            last.retain(|_, at| within(at));
            if last.len() >= self.capacity {
                // Every one is within its interval: the oldest goes, losing its limit.
                let oldest = last
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    last.remove(&oldest);
                }
            }
        }
        last.insert(key, now);
        force();
        true
    }

    /// How many keys are remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.last).len()
    }
}

/// After a fetch failed with no usable token left, its error is shared for a short,
/// growing, jittered wait instead of fetching again on every call: from
/// [`RefreshPolicy::failure_backoff`], doubling up to
/// [`RefreshPolicy::max_failure_backoff`], ±20 %. A success resets it.
#[derive(Default)]
pub(crate) struct FailureBackoff {
    state: Mutex<Option<Backoff>>,
}

/// The failures in a row so far.
struct Backoff {
    error: Error,
    /// No fetch until then; `None`: the wait is too long for the clock, so until a success.
    until: Option<Instant>,
    /// The wait before jitter, doubled by the next failure.
    wait: Duration,
}

/// The share of a wait that jitter adds or takes away.
const JITTER: f64 = 0.2;

impl FailureBackoff {
    /// The error to answer with instead of fetching, while the wait runs.
    pub(crate) fn current(&self) -> Option<Error> {
        let now = Instant::now();
        let state = lock(&self.state);
        let backoff = state.as_ref()?;
        backoff
            .until
            .is_none_or(|until| now < until)
            .then(|| backoff.error.clone())
    }

    /// A fetch failed with `error`, and no usable token is left: wait before the next.
    pub(crate) fn failed(&self, error: &Error, policy: &RefreshPolicy) {
        let mut state = lock(&self.state);
        let wait = match state.as_ref() {
            Some(previous) => previous.wait.saturating_mul(2),
            None => policy.failure_backoff,
        }
        .min(policy.max_failure_backoff);
        let jitter = 1.0 - JITTER + 2.0 * JITTER * fastrand::f64();
        let jittered = Duration::try_from_secs_f64(wait.as_secs_f64() * jitter).unwrap_or(wait);
        *state = Some(Backoff {
            error: error.clone(),
            until: Instant::now().checked_add(jittered),
            wait,
        });
    }

    /// A fetch succeeded: the next failure waits the shortest time again.
    pub(crate) fn succeeded(&self) {
        *lock(&self.state) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_forced_refresh_per_key_per_interval() {
        let forced = ForcedRefreshes::new(8);
        let interval = Duration::from_secs(5);
        assert!(forced.try_force("keys", interval, || {}));
        assert!(!forced.try_force("keys", interval, || unreachable!()));
        assert!(forced.try_force("other keys", interval, || {}));
        tokio::time::advance(interval).await;
        assert!(forced.try_force("keys", interval, || {}));
        assert!(forced.try_force("keys", Duration::ZERO, || {}));
    }

    #[tokio::test(start_paused = true)]
    async fn an_endless_interval_never_overflows() {
        let forced = ForcedRefreshes::new(8);
        assert!(forced.try_force(1, Duration::MAX, || {}));
        tokio::time::advance(Duration::from_secs(1_000_000)).await;
        assert!(!forced.try_force(1, Duration::MAX, || {}));
    }

    #[tokio::test(start_paused = true)]
    async fn stays_within_capacity() {
        let forced = ForcedRefreshes::new(4);
        for key in 0..100 {
            assert!(forced.try_force(key, Duration::from_secs(5), || {}));
            assert!(forced.len() <= 4);
        }
        assert!(!forced.try_force(99, Duration::from_secs(5), || {}));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_grows_with_jitter_and_a_success_resets_it() {
        let backoff = FailureBackoff::default();
        let policy = RefreshPolicy::default();
        let error = Error::Interrupted;
        assert!(backoff.current().is_none());
        for wait in [1, 2, 4, 8, 16, 30, 30] {
            backoff.failed(&error, &policy);
            let wait = Duration::from_secs(wait);
            tokio::time::advance(wait.mul_f64(1.0 - JITTER) - Duration::from_millis(1)).await;
            assert!(backoff.current().is_some(), "still waiting within {wait:?}");
            tokio::time::advance(wait.mul_f64(2.0 * JITTER) + Duration::from_millis(2)).await;
            assert!(backoff.current().is_none(), "done after {wait:?}");
        }
        backoff.failed(&error, &policy);
        backoff.succeeded();
        assert!(backoff.current().is_none());
    }
}
