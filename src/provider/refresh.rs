//! [`RefreshPolicy`] and [`Cached`]: when a cached token is refreshed, and when it stops
//! being handed out.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use super::freshness::Freshness;
use crate::{error::Error, time::coarse_wall_clock, wire::token::AccessToken};

/// When to refresh a token ahead of its expiry, and how often to try again after failures.
///
/// A token is refreshed in the background once `refresh_fraction` plus a random part of
/// `jitter_fraction` of its life is left (by default between 20 % and 30 %: 3 to 4.5
/// minutes of a 15-minute token, 4.8 to 7.2 hours of a 24-hour one), so a fleet of
/// services does not refresh in lockstep. It is never handed out in its last
/// `expiry_margin` (at most a tenth of its life), so it cannot expire in transit: not from
/// the cache, and not straight from a fetch whose answer arrived that late (see
/// [`Error::ArrivedLate`]).
///
/// A provider checks its policy when it is given one
/// ([`crate::TokenProviderBuilder::refresh_policy`], [`crate::TokenProvider::with_policy`]):
/// see [`Self::validate`]. A token is always fresh (served without a refresh) for at
/// least a tenth of its life, and every wait and interval is at least a millisecond, so
/// no value makes every call a token request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefreshPolicy {
    /// The share of a token's life left when refreshing starts, before jitter: 0 to 0.9,
    /// and at most 0.9 together with `jitter_fraction`.
    pub refresh_fraction: f64,
    /// The largest random share of a token's life added to `refresh_fraction`: 0 to 0.9,
    /// and at most 0.9 together with `refresh_fraction`, so that a token is fresh for at
    /// least a tenth of its life.
    pub jitter_fraction: f64,
    /// How long before expiry a token stops being handed out.
    pub expiry_margin: Duration,
    /// How long to wait before trying again after a background refresh failed (the old
    /// token still being served). At least 1 ms.
    pub retry_interval: Duration,
    /// At most one refresh per keys and endpoint (whatever the merchant) in this interval
    /// is forced by APIs answering 401 ([`crate::TokenProvider::token_after_rejection`]):
    /// an API that refuses every token (a key without the product, say) then costs the
    /// token endpoint one request per interval, not one per call. 5 s by default; at least
    /// 1 ms.
    pub forced_refresh_interval: Duration,
    /// After a fetch failed with no usable token to serve, callers share its error for
    /// this long (±20 % jitter) instead of fetching again; it doubles with every failure in
    /// a row, up to `max_failure_backoff`, and a success resets it. Counted per keys and
    /// endpoint, whatever the merchant. 1 s by default; at least 1 ms.
    pub failure_backoff: Duration,
    /// The longest wait between fetches that keep failing with no usable token. 30 s by
    /// default; at least `failure_backoff` (so at least 1 ms).
    pub max_failure_backoff: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            refresh_fraction: 0.2,
            jitter_fraction: 0.1,
            expiry_margin: Duration::from_secs(30),
            retry_interval: Duration::from_secs(5),
            forced_refresh_interval: Duration::from_secs(5),
            failure_backoff: Duration::from_secs(1),
            max_failure_backoff: Duration::from_secs(30),
        }
    }
}

/// The largest share of a token's life that `refresh_fraction` and `jitter_fraction` may
/// take together: a token is fresh for at least the rest (a tenth of it).
const MAX_REFRESH_SHARE: f64 = 0.9;

/// A rounding error's worth: `0.8 + 0.1` is a hair above 0.9 in `f64`, and is allowed.
const SHARE_TOLERANCE: f64 = 1e-9;

/// The shortest wait or interval a policy may have.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

impl RefreshPolicy {
    /// Checks every field: `Err` (an [`Error::InvalidInput`] naming the field and its
    /// allowed range) for a value the provider cannot work with or that would make every
    /// call a token request:
    ///
    /// - `refresh_fraction` and `jitter_fraction`: NaN, outside 0 to 0.9, or more than 0.9
    ///   together (a token must be fresh for at least a tenth of its life);
    /// - `retry_interval`, `forced_refresh_interval` and `failure_backoff`: under 1 ms;
    /// - `max_failure_backoff`: less than `failure_backoff`.
    ///
    /// Durations too long to add to a clock are fine: they mean "not within the program's
    /// life". `expiry_margin` may be anything (it is at most a tenth of a token's life).
    pub fn validate(&self) -> Result<(), Error> {
        for (field, value) in [
            ("refresh_fraction", self.refresh_fraction),
            ("jitter_fraction", self.jitter_fraction),
        ] {
            if !(0.0..=MAX_REFRESH_SHARE).contains(&value) {
                return Err(Error::invalid_input(
                    field,
                    format!(
                        "is {value}; use a share of the token's life from 0.0 to {MAX_REFRESH_SHARE}"
                    ),
                ));
            }
        }
        let share = self.refresh_fraction + self.jitter_fraction;
        if share > MAX_REFRESH_SHARE + SHARE_TOLERANCE {
            return Err(Error::invalid_input(
                "refresh_fraction",
                format!(
                    "plus jitter_fraction is {share} ({} + {}); keep the sum from 0.0 to {MAX_REFRESH_SHARE}, so that a token is fresh for at least a tenth of its life instead of being fetched again on every call",
                    self.refresh_fraction, self.jitter_fraction
                ),
            ));
        }
        for (field, value) in [
            ("retry_interval", self.retry_interval),
            ("forced_refresh_interval", self.forced_refresh_interval),
            ("failure_backoff", self.failure_backoff),
        ] {
            if value < MIN_INTERVAL {
                return Err(Error::invalid_input(
                    field,
                    format!(
                        "is {value:?}, which would ask the token endpoint again on almost every call; use from 1 ms to Duration::MAX (never)"
                    ),
                ));
            }
        }
        if self.max_failure_backoff < self.failure_backoff {
            return Err(Error::invalid_input(
                "max_failure_backoff",
                format!(
                    "is {:?}, less than failure_backoff ({:?}); use from failure_backoff to Duration::MAX",
                    self.max_failure_backoff, self.failure_backoff
                ),
            ));
        }
        Ok(())
    }
}

/// A cached token with its times: on tokio's clock, and on the wall clock, which also
/// runs while the machine sleeps.
pub(crate) struct Cached {
    pub(crate) token: Arc<AccessToken>,
    /// From here on, callers still get the token, and one of them starts a refresh.
    refresh_at: Instant,
    /// From here on, the token is not handed out at all.
    usable_until: Instant,
    /// `usable_until` on the wall clock (since the Unix epoch, less a coarse tick).
    usable_until_wall: Duration,
    /// The cheap check of `refresh_at` (and of `usable_until_wall`) that a cache hit makes.
    pub(crate) freshness: Freshness,
}

impl Cached {
    /// `token`'s times under `policy`, counted from when its request was sent.
    pub(crate) fn new(token: Arc<AccessToken>, policy: RefreshPolicy) -> Self {
        let sent = Instant::from_std(token.requested_at_instant());
        let life = token.expires_in();
        let expiry = Instant::from_std(token.expires_at_instant());
        let share = policy.refresh_fraction + policy.jitter_fraction * fastrand::f64();
        // A validated policy gives a finite share; NaN would make `mul_f64` panic.
        let share = if share.is_finite() {
            share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let ahead = life.mul_f64(share);
        let usable = Usable::of(&token, &policy);
        let refresh_at = expiry.checked_sub(ahead).unwrap_or(sent).min(usable.until);
        Self::with_times(token, refresh_at, usable.until, usable.until_wall)
    }

    /// The same token, to be refreshed again `after` from now: after a failed refresh, or
    /// at once (`Duration::ZERO`) when an API refused it.
    pub(crate) fn refresh_again_after(&self, after: Duration) -> Self {
        let refresh_at = Instant::now()
            .checked_add(after)
            .map_or(self.usable_until, |at| at.min(self.usable_until));
        Self::with_times(
            self.token.clone(),
            refresh_at,
            self.usable_until,
            self.usable_until_wall,
        )
    }

    /// Whether the token may still be handed out at `now` (tokio's clock), by both clocks.
    pub(crate) fn is_usable(&self, now: Instant) -> bool {
        Usable::before(now, self.usable_until, self.usable_until_wall)
    }

    /// Whether the token is due for a refresh at `now` (tokio's clock).
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        now >= self.refresh_at
    }

    /// How long until the token expires, by the earlier of both clocks (for the gauge).
    #[cfg(feature = "metrics")]
    pub(crate) fn expires_in(&self, now: Instant) -> Duration {
        let monotonic =
            Instant::from_std(self.token.expires_at_instant()).saturating_duration_since(now);
        let wall = self
            .token
            .expires_at()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_sub(coarse_wall_clock());
        monotonic.min(wall)
    }

    fn with_times(
        token: Arc<AccessToken>,
        refresh_at: Instant,
        usable_until: Instant,
        usable_until_wall: Duration,
    ) -> Self {
        Self {
            token,
            refresh_at,
            usable_until,
            usable_until_wall,
            freshness: Freshness::until(refresh_at, usable_until_wall),
        }
    }
}

/// When a token stops being handed out: its last `expiry_margin` (at most a tenth of its
/// life), by tokio's clock and by the wall clock.
struct Usable {
    /// On tokio's clock, counted from when its request was sent.
    until: Instant,
    /// On the wall clock (since the Unix epoch, less a coarse tick).
    until_wall: Duration,
    margin: Duration,
}

impl Usable {
    fn of(token: &AccessToken, policy: &RefreshPolicy) -> Self {
        let sent = Instant::from_std(token.requested_at_instant());
        let expiry = Instant::from_std(token.expires_at_instant());
        let margin = policy.expiry_margin.min(token.expires_in() / 10);
        let wall_expiry = token
            .expires_at()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            until: expiry.checked_sub(margin).unwrap_or(sent),
            until_wall: wall_expiry
                .saturating_sub(margin)
                .saturating_sub(crate::time::COARSE_TICK),
            margin,
        }
    }

    fn before(now: Instant, until: Instant, until_wall: Duration) -> bool {
        now < until && coarse_wall_clock() < until_wall
    }
}

/// Checks a token a fetch produced as it is handed out at `now` (tokio's clock): to a
/// caller, or into the cache. `Err(Error::ArrivedLate)` when it is past its usable time by
/// either clock: its answer took too long, its runtime stood still while the answer
/// waited, or the clock jumped (a suspend) while it was on its way. Such a token is never
/// handed out; see `TokenProvider::join_fetch` for what the caller gets instead.
pub(crate) fn check_handout(
    token: &AccessToken,
    policy: &RefreshPolicy,
    now: Instant,
) -> Result<(), Error> {
    let usable = Usable::of(token, policy);
    if Usable::before(now, usable.until, usable.until_wall) {
        return Ok(());
    }
    let sent = Instant::from_std(token.requested_at_instant());
    Err(Error::arrived_late(
        now.saturating_duration_since(sent),
        token.expires_in(),
        usable.margin,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_valid() {
        assert!(RefreshPolicy::default().validate().is_ok());
    }

    #[test]
    fn a_policy_that_cannot_work_names_its_field() {
        let cases = [
            (
                RefreshPolicy {
                    refresh_fraction: f64::NAN,
                    ..RefreshPolicy::default()
                },
                "refresh_fraction",
            ),
            (
                RefreshPolicy {
                    jitter_fraction: 1.5,
                    ..RefreshPolicy::default()
                },
                "jitter_fraction",
            ),
            (
                RefreshPolicy {
                    refresh_fraction: f64::INFINITY,
                    ..RefreshPolicy::default()
                },
                "refresh_fraction",
            ),
            (
                RefreshPolicy {
                    retry_interval: Duration::ZERO,
                    ..RefreshPolicy::default()
                },
                "retry_interval",
            ),
            (
                RefreshPolicy {
                    failure_backoff: Duration::ZERO,
                    ..RefreshPolicy::default()
                },
                "failure_backoff",
            ),
            (
                RefreshPolicy {
                    max_failure_backoff: Duration::from_millis(10),
                    ..RefreshPolicy::default()
                },
                "max_failure_backoff",
            ),
        ];
        for (policy, field) in cases {
            let Err(Error::InvalidInput(error)) = policy.validate() else {
                panic!("{policy:?} passed");
            };
            assert_eq!(error.field, field);
        }
        let endless = RefreshPolicy {
            forced_refresh_interval: Duration::MAX,
            retry_interval: Duration::MAX,
            expiry_margin: Duration::MAX,
            max_failure_backoff: Duration::MAX,
            ..RefreshPolicy::default()
        };
        assert!(endless.validate().is_ok(), "too long to add is fine");
    }

    fn refused_field(policy: RefreshPolicy) -> Option<&'static str> {
        match policy.validate() {
            Ok(()) => None,
            Err(Error::InvalidInput(error)) => {
                assert!(
                    error.reason.contains(" to "),
                    "{}: no range in {:?}",
                    error.field,
                    error.reason
                );
                Some(error.field)
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    /// A token is fresh for at least a tenth of its life: the two fractions may take 0.9
    /// of it together (with room for rounding: 0.8 + 0.1 is a hair above 0.9), not more.
    #[test]
    fn the_fractions_leave_a_tenth_of_the_life_fresh() {
        let fractions = |refresh_fraction, jitter_fraction| RefreshPolicy {
            refresh_fraction,
            jitter_fraction,
            ..RefreshPolicy::default()
        };
        for (refresh, jitter) in [(0.9, 0.0), (0.0, 0.9), (0.8, 0.1), (0.6, 0.3), (0.0, 0.0)] {
            assert_eq!(
                refused_field(fractions(refresh, jitter)),
                None,
                "{refresh} + {jitter}"
            );
        }
        for (refresh, jitter, field) in [
            (1.0, 0.0, "refresh_fraction"),
            (0.0, 1.0, "jitter_fraction"),
            (0.91, 0.0, "refresh_fraction"),
            (0.0, 0.91, "jitter_fraction"),
            (0.5, 0.5, "refresh_fraction"),
            // 0.9999999999999999 in f64: under 1.0, and still a token that is never fresh.
            (0.7, 0.3, "refresh_fraction"),
            (0.9, 0.000_001, "refresh_fraction"),
        ] {
            assert_eq!(
                refused_field(fractions(refresh, jitter)),
                Some(field),
                "{refresh} + {jitter}"
            );
        }
        let Err(error) = fractions(0.5, 0.5).validate() else {
            unreachable!()
        };
        let message = error.to_string();
        assert!(message.contains("jitter_fraction"), "{message}");
        assert!(message.contains("0.9"), "{message}");
    }

    /// Every wait and interval is at least a millisecond, as the messages say, and the
    /// longest wait after failures is at least the first.
    #[test]
    fn waits_and_intervals_are_at_least_a_millisecond() {
        let just_under = Duration::from_millis(1) - Duration::from_nanos(1);
        type Set = fn(&mut RefreshPolicy, Duration);
        let fields: [(&str, Set); 3] = [
            ("retry_interval", |p, d| p.retry_interval = d),
            ("forced_refresh_interval", |p, d| {
                p.forced_refresh_interval = d
            }),
            ("failure_backoff", |p, d| {
                p.failure_backoff = d;
                p.max_failure_backoff = d;
            }),
        ];
        for (field, set) in fields {
            for (value, refused) in [
                (Duration::ZERO, true),
                (Duration::from_nanos(1), true),
                (just_under, true),
                (Duration::from_millis(1), false),
            ] {
                let mut policy = RefreshPolicy::default();
                set(&mut policy, value);
                assert_eq!(
                    refused_field(policy),
                    refused.then_some(field),
                    "{field} = {value:?}"
                );
            }
        }
        let backoff = |failure_backoff, max_failure_backoff| RefreshPolicy {
            failure_backoff,
            max_failure_backoff,
            ..RefreshPolicy::default()
        };
        let second = Duration::from_secs(1);
        assert_eq!(refused_field(backoff(second, second)), None);
        assert_eq!(
            refused_field(backoff(second, second - Duration::from_nanos(1))),
            Some("max_failure_backoff")
        );
    }
}
