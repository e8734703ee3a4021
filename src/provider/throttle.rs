//! How often the token endpoint may be asked when asking does not help: [`ForcedRefreshes`]
//! (refreshes that APIs answering 401 force) and [`FailureBackoffs`] (fetches after
//! failures while no usable token is left), both per keys and endpoint, whatever the
//! merchant (a refusal of one merchant, [`is_merchant_refusal`], waits in a map of its
//! own per merchant), in bounded maps that outlive slot eviction.

use std::{collections::HashMap, hash::Hash, sync::Mutex, time::Duration};

use tokio::time::Instant;

use super::refresh::RefreshPolicy;
use crate::{error::Error, sync::lock};

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
/// [`RefreshPolicy::max_failure_backoff`], ±20 %.
///
/// Kept per keys and endpoint, not per merchant: keys that are refused or an endpoint that
/// is down fail for every merchant alike, so 200 merchants cost the token endpoint what one
/// does. Once a wait is over, one caller (whatever its merchant) tries again while the
/// others go on sharing the error; a success for any merchant of those keys resets it.
/// Kept apart from the slots, so evicting a slot does not reset its wait; bounded like
/// them.
pub(crate) struct FailureBackoffs<K> {
    capacity: usize,
    waits: Mutex<HashMap<K, Backoff>>,
}

/// The failures in a row so far, for one keys and endpoint.
struct Backoff {
    error: Error,
    /// No fetch until then; `None`: the wait is too long for the clock, so until a success.
    until: Option<Instant>,
    /// The wait before jitter, doubled by the next failure.
    wait: Duration,
    /// A caller took the turn to try again once the wait was over: the failure of that
    /// attempt doubles the wait. `until` then bounds the turn, in case no fetch comes of
    /// it (a token was cached meanwhile, say).
    trying: bool,
}

impl Backoff {
    fn running(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// Whether `error` refuses one merchant rather than the keys or the endpoint: a 4xx other
/// than rejected credentials and 429 (an MSN not linked to the keys, say). Its wait is kept
/// per merchant; every other failure (credentials rejected, 5xx, 429, transport, timeout,
/// an invalid answer) is the same for every merchant of the keys and shares one wait.
pub(crate) fn is_merchant_refusal(error: &Error) -> bool {
    match error {
        Error::Api(api) => {
            (400..500).contains(&api.status())
                && api.status() != 429
                && !error.is_credentials_rejected()
        }
        Error::Shared(shared) => shared.kind == crate::error::FailureKind::Refused,
        _ => false,
    }
}

/// The share of a wait that jitter adds or takes away.
const JITTER: f64 = 0.2;

impl<K: Hash + Eq + Clone> FailureBackoffs<K> {
    /// Remembers at most `capacity` keys (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            waits: Mutex::default(),
        }
    }

    /// The error to answer with instead of fetching, while the wait for `key` runs.
    /// `None`: fetch. The first caller after a wait is over takes the turn to try again;
    /// the others get the error until that attempt ends (or for one more wait, if it
    /// never does).
    pub(crate) fn current(&self, key: &K) -> Option<Error> {
        let now = Instant::now();
        let mut waits = lock(&self.waits);
        let backoff = waits.get_mut(key)?;
        if backoff.running(now) {
            return Some(backoff.error.clone());
        }
        backoff.trying = true;
        backoff.until = now.checked_add(backoff.wait);
        None
    }

    /// A fetch for `key` failed with `error`, and no usable token is left: wait before the
    /// next. A failure that ends while the wait runs and no caller took a turn (fetches
    /// of several merchants that started together, before the first failure) shares the
    /// wait rather than doubling it.
    pub(crate) fn failed(&self, key: &K, error: &Error, policy: &RefreshPolicy) {
        let now = Instant::now();
        let mut waits = lock(&self.waits);
        let wait = match waits.get_mut(key) {
            Some(backoff) if !backoff.trying && backoff.running(now) => {
                backoff.error = error.clone();
                return;
            }
            Some(previous) => previous.wait.saturating_mul(2),
            None => {
                make_room(&mut waits, self.capacity, now);
                policy.failure_backoff
            }
        }
        .min(policy.max_failure_backoff);
        let jitter = 1.0 - JITTER + 2.0 * JITTER * fastrand::f64();
        let jittered = Duration::try_from_secs_f64(wait.as_secs_f64() * jitter).unwrap_or(wait);
        waits.insert(
            key.clone(),
            Backoff {
                error: error.clone(),
                until: now.checked_add(jittered),
                wait,
                trying: false,
            },
        );
    }

    /// A fetch for `key` succeeded: the next failure waits the shortest time again.
    pub(crate) fn succeeded(&self, key: &K) {
        let mut waits = lock(&self.waits);
        if !waits.is_empty() {
            waits.remove(key);
        }
    }

    /// How many keys are remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.waits).len()
    }
}

/// Frees a place in a full map: first keys whose wait is over (their next failure starts
/// from the shortest wait again), then the one whose wait ends soonest.
fn make_room<K: Hash + Eq + Clone>(waits: &mut HashMap<K, Backoff>, capacity: usize, now: Instant) {
    if waits.len() < capacity {
        return;
    }
    waits.retain(|_, backoff| backoff.running(now));
    if waits.len() >= capacity {
        // `None` (endless) sorts first in `Option`'s order: rank it last instead.
        let soonest = waits
            .iter()
            .min_by_key(|(_, backoff)| (backoff.until.is_none(), backoff.until))
            .map(|(key, _)| key.clone());
        if let Some(soonest) = soonest {
            waits.remove(&soonest);
        }
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
        let backoff = FailureBackoffs::new(8);
        let policy = RefreshPolicy::default();
        let error = Error::Interrupted;
        assert!(backoff.current(&"keys").is_none());
        for wait in [1, 2, 4, 8, 16, 30, 30] {
            backoff.failed(&"keys", &error, &policy);
            let wait = Duration::from_secs(wait);
            tokio::time::advance(wait.mul_f64(1.0 - JITTER) - Duration::from_millis(1)).await;
            assert!(
                backoff.current(&"keys").is_some(),
                "still waiting within {wait:?}"
            );
            assert!(backoff.current(&"other keys").is_none(), "per keys");
            tokio::time::advance(wait.mul_f64(2.0 * JITTER) + Duration::from_millis(2)).await;
            assert!(backoff.current(&"keys").is_none(), "done after {wait:?}");
        }
        backoff.failed(&"keys", &error, &policy);
        backoff.succeeded(&"keys");
        assert!(backoff.current(&"keys").is_none());
    }

    /// Once a wait is over, one caller tries again; the others share the error until its
    /// attempt ends, or for one more wait if it never does.
    #[tokio::test(start_paused = true)]
    async fn one_caller_tries_again_after_a_wait() {
        let backoff = FailureBackoffs::new(8);
        let policy = RefreshPolicy::default();
        backoff.failed(&1, &Error::Interrupted, &policy);
        tokio::time::advance(Duration::from_millis(1200)).await;
        assert!(backoff.current(&1).is_none(), "the one that tries");
        assert!(backoff.current(&1).is_some(), "the others wait for it");
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(
            backoff.current(&1).is_none(),
            "a turn with no outcome runs out"
        );
    }

    /// Failures of fetches that started together, before the first one failed, share one
    /// wait instead of doubling it each.
    #[tokio::test(start_paused = true)]
    async fn failures_that_started_together_do_not_double_the_wait() {
        let backoff = FailureBackoffs::new(8);
        let policy = RefreshPolicy::default();
        for _ in 0..8 {
            backoff.failed(&1, &Error::Interrupted, &policy);
        }
        tokio::time::advance(Duration::from_millis(1201)).await;
        assert!(backoff.current(&1).is_none(), "the first wait, not 2^8 s");
    }

    #[tokio::test(start_paused = true)]
    async fn the_waits_stay_within_capacity_and_endless_ones_never_overflow() {
        let backoff = FailureBackoffs::new(4);
        let endless = RefreshPolicy {
            failure_backoff: Duration::MAX,
            max_failure_backoff: Duration::MAX,
            ..RefreshPolicy::default()
        };
        backoff.failed(&-1, &Error::Interrupted, &endless);
        for key in 0..100 {
            backoff.failed(&key, &Error::Interrupted, &RefreshPolicy::default());
            assert!(backoff.len() <= 4);
        }
        assert!(backoff.current(&99).is_some());
        tokio::time::advance(Duration::from_secs(1_000_000)).await;
        backoff.failed(&-1, &Error::Interrupted, &endless);
        assert!(backoff.current(&-1).is_some(), "endless: until a success");
    }
}
