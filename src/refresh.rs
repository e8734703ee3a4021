//! [`RefreshPolicy`] and [`Cached`]: when a cached token is refreshed, and when it stops
//! being handed out.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{freshness::Freshness, token::AccessToken};

/// When to refresh a token ahead of its expiry.
///
/// A token is refreshed in the background once `refresh_fraction` plus a random part of
/// `jitter_fraction` of its life is left (by default between 20 % and 30 %: 3 to 4.5
/// minutes of a 15-minute token, 4.8 to 7.2 hours of a 24-hour one), so a fleet of
/// services does not refresh in lockstep. It is never handed out in its last
/// `expiry_margin` (at most a tenth of its life), so it cannot expire in transit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefreshPolicy {
    /// The share of a token's life left when refreshing starts, before jitter.
    pub refresh_fraction: f64,
    /// The largest random share of a token's life added to `refresh_fraction`.
    pub jitter_fraction: f64,
    /// How long before expiry a token stops being handed out.
    pub expiry_margin: Duration,
    /// How long to wait before trying again after a background refresh failed.
    pub retry_interval: Duration,
    /// At most one refresh per key in this interval is forced by APIs answering 401
    /// ([`crate::TokenProvider::token_after_rejection`]): an API that refuses every token
    /// (a key without the product, say) then costs the token endpoint one request per
    /// interval, not one per call. 5 s by default.
    pub forced_refresh_interval: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            refresh_fraction: 0.2,
            jitter_fraction: 0.1,
            expiry_margin: Duration::from_secs(30),
            retry_interval: Duration::from_secs(5),
            forced_refresh_interval: Duration::from_secs(5),
        }
    }
}

/// A cached token with its times, on tokio's clock.
pub(crate) struct Cached {
    pub(crate) token: Arc<AccessToken>,
    /// From here on, callers still get the token, and one of them starts a refresh.
    pub(crate) refresh_at: Instant,
    /// From here on, the token is not handed out at all.
    pub(crate) usable_until: Instant,
    /// The cheap check of `refresh_at` that a cache hit makes.
    pub(crate) freshness: Freshness,
}

impl Cached {
    /// `token`'s times under `policy`, counted from when its request was sent.
    pub(crate) fn new(token: Arc<AccessToken>, policy: RefreshPolicy) -> Self {
        let sent = Instant::from_std(token.requested_at_instant());
        let life = token.expires_in();
        let expiry = Instant::from_std(token.expires_at_instant());
        let jitter = policy.jitter_fraction * fastrand::f64();
        let ahead = life.mul_f64((policy.refresh_fraction + jitter).clamp(0.0, 1.0));
        let margin = policy.expiry_margin.min(life / 10);
        let usable_until = expiry.checked_sub(margin).unwrap_or(sent);
        let refresh_at = expiry.checked_sub(ahead).unwrap_or(sent).min(usable_until);
        Self::with_times(token, refresh_at, usable_until)
    }

    /// The same token, to be refreshed again at `refresh_at`: after a failed refresh.
    pub(crate) fn refresh_again_at(&self, refresh_at: Instant) -> Self {
        Self::with_times(
            self.token.clone(),
            refresh_at.min(self.usable_until),
            self.usable_until,
        )
    }

    fn with_times(token: Arc<AccessToken>, refresh_at: Instant, usable_until: Instant) -> Self {
        Self {
            token,
            refresh_at,
            usable_until,
            freshness: Freshness::until(refresh_at),
        }
    }
}
