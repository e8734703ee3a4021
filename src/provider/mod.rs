//! The cached provider: [`TokenProvider`] (here), the bounded map of slots (`slots`), one
//! fetch in flight per slot (`single_flight`), when a token is refreshed and handed out
//! (`refresh`, `freshness`), how often the token endpoint is asked when asking does not
//! help (`throttle`), and what it reports (`metrics`).
//!
//! May import: client, error, mock (in its unit test only), store, sync, time, wire.
//!
//! [`TokenProvider`]: cached tokens for a busy service. One upstream request per key at a
//! time (single flight), refreshed ahead of expiry in the background, never expired.
//!
//! Expiry is counted on tokio's clock from the moment the request was sent, so tests can
//! drive it with paused time, and latency can only shorten a token's life here, never
//! lengthen it; the wall clock is checked too, because tokio's stops while the machine
//! sleeps. A cache hit takes no lock and reads only coarse clocks (see `freshness.rs`);
//! every other decision is made on the slow path, on tokio's clock.
//!
//! A token an API refused (401) is suspect, not gone: it is served until its replacement
//! exists, and again if the replacement fails, so one stray 401 cannot take a valid token
//! away from every other caller while the token endpoint is down.
//!
//! What a fetch produced is checked again as it is handed out, to the cache and to each
//! caller that waited for it (`refresh::check_handout`): an answer can take most of a short
//! token's life, its runtime can stand still while the answer waits, or the clock can jump
//! while it is on its way. A token past its usable time is never handed out; the caller
//! gets one more fetch if it had waited only moments, otherwise [`Error::ArrivedLate`]
//! (see `LATE_REFETCH_WITHIN`).

mod freshness;
pub(crate) mod metrics;
pub(crate) mod refresh;
mod single_flight;
pub(crate) mod slots;
mod throttle;

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::{FutureExt, future::BoxFuture};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    client::{Client, source::TokenSource},
    error::Error,
    sync::lock,
    wire::{headers::MerchantSerialNumber, token::AccessToken},
};
use refresh::{Cached, RefreshPolicy, check_handout};
use single_flight::Abandoned;
use slots::{DEFAULT_MAX_SLOTS, FetchOutcome, Slot, Slots};
use throttle::{FailureBackoffs, ForcedRefreshes};

/// How long a caller may have waited for a fetch whose token arrived too late to hand out
/// and still get one more fetch; a caller that waited longer gets [`Error::ArrivedLate`].
///
/// A late token is either the upstream's slowness (an answer that took most of a short
/// token's life: another request would likely be as slow) or time that passed around the
/// request (a suspend, a clock step, a runtime that stood still, a fetch joined late:
/// another request fixes it). A caller that waited only moments lost nothing to the first
/// cause, and one more fetch keeps its whole wait within one fetch's time and half a
/// second; a caller that waited longer has spent its time already, and doubling it would
/// break the bound on a caller's wait. At most one more fetch per call either way, so an
/// upstream that is always too slow cannot make a caller loop.
const LATE_REFETCH_WITHIN: Duration = Duration::from_millis(500);

/// Hands out cached tokens, fetching one only when needed. Cheap to clone; clones share
/// the cache.
///
/// Safe to keep in a `static` and use from many runtimes (every `#[tokio::test]` has its
/// own): a fetch whose runtime shuts down is replaced by a fresh one on the next call.
///
/// ```no_run
/// use vipps_access_token::{Client, Environment, StandardCredentials, TokenProvider, TokenSource};
///
/// # async fn run() -> Result<(), vipps_access_token::Error> {
/// let client = Client::new(Environment::Test)?;
/// let credentials = StandardCredentials::new(
///     "fb492b5e-7907-4d83-ba20-c7fb60ca35de",
///     "Y8Kteew6GE2ZmeycEt6egg==",
///     "0f14ebcab0ec4b29ae0cb90d91b4a84a",
/// );
/// let provider = TokenProvider::new(client, TokenSource::Standard(credentials));
/// let token = provider.token().await?; // fetched once, then served from the cache
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenProvider {
    client: Client,
    source: TokenSource,
    /// The keys and endpoint, whatever the merchant: what the rate limits count by.
    endpoint: Arc<CacheKey>,
    /// The keys, endpoint and merchant: what the wait after a merchant's refusal counts by.
    key: Arc<CacheKey>,
    slot: Arc<Slot>,
    cache: Arc<Cache>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("base_url", &self.client.base_url())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Configures a [`TokenProvider`].
#[derive(Debug)]
#[must_use]
pub struct TokenProviderBuilder {
    client: Client,
    source: TokenSource,
    policy: RefreshPolicy,
    max_slots: usize,
    #[cfg(feature = "store")]
    store: Option<Arc<dyn crate::store::TokenStore>>,
}

impl TokenProviderBuilder {
    /// When to refresh ahead of expiry and how often to try again after failures
    /// ([`RefreshPolicy::default`]). `Err` (naming the field and its range) for a policy
    /// [`RefreshPolicy::validate`] refuses: checked here, so that `build` cannot fail.
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Result<Self, Error> {
        policy.validate()?;
        self.policy = policy;
        Ok(self)
    }

    /// How many keys (merchant serial numbers, scopes, key sets) the provider and the
    /// providers derived from it keep a token for ([`DEFAULT_MAX_SLOTS`] by default; at
    /// least 1). When full, idle and expired entries go first; an entry with a fetch in
    /// flight or a live handle pointing at it is never evicted.
    pub fn max_slots(mut self, max_slots: usize) -> Self {
        self.max_slots = max_slots;
        self
    }

    /// Shares tokens with other processes through `store` (feature `store`): fetched once
    /// for the fleet, sealed at rest; a store that fails is warned about and bypassed.
    #[cfg(feature = "store")]
    pub fn store(mut self, store: Arc<dyn crate::store::TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Builds the provider.
    pub fn build(self) -> TokenProvider {
        let cache = Arc::new(Cache {
            policy: self.policy,
            slots: Slots::new(self.max_slots),
            forced_refreshes: ForcedRefreshes::new(self.max_slots),
            failure_backoffs: FailureBackoffs::new(self.max_slots),
            merchant_failure_backoffs: FailureBackoffs::new(self.max_slots),
            #[cfg(feature = "store")]
            store: self.store,
        });
        TokenProvider::on_cache(self.client, self.source, cache)
    }
}

/// Everything that makes two tokens different. Tokens are never shared across keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    source: TokenSource,
    base_url: String,
    partner_token_path: String,
    merchant_serial_number: Option<MerchantSerialNumber>,
}

impl CacheKey {
    /// The key of the keys and endpoint, whatever the merchant: what forced refreshes and
    /// the wait after failures are counted by.
    fn without_merchant(&self) -> Self {
        Self {
            merchant_serial_number: None,
            ..self.clone()
        }
    }
}

/// What a provider and the providers derived from it share.
struct Cache {
    policy: RefreshPolicy,
    slots: Slots<CacheKey>,
    /// When a 401 last forced a refresh, per keys and endpoint.
    forced_refreshes: ForcedRefreshes<CacheKey>,
    /// The wait after failures with no usable token that every merchant of the keys
    /// shares (refused keys, an endpoint that is down, an invalid answer), per keys and
    /// endpoint.
    failure_backoffs: FailureBackoffs<CacheKey>,
    /// The wait after a refusal of one merchant (another 4xx), per keys, endpoint and
    /// merchant: reset only by that merchant's own success.
    merchant_failure_backoffs: FailureBackoffs<CacheKey>,
    /// Where the fleet shares its tokens, if anywhere.
    #[cfg(feature = "store")]
    store: Option<Arc<dyn crate::store::TokenStore>>,
}

impl TokenProvider {
    /// A provider for `source`, sending its requests through `client`.
    pub fn new(client: Client, source: TokenSource) -> Self {
        Self::builder(client, source).build()
    }

    /// Like [`Self::new`], with another refresh policy; `Err` (naming the field and its
    /// range) for a policy [`RefreshPolicy::validate`] refuses.
    pub fn with_policy(
        client: Client,
        source: TokenSource,
        policy: RefreshPolicy,
    ) -> Result<Self, Error> {
        Ok(Self::builder(client, source)
            .refresh_policy(policy)?
            .build())
    }

    /// Starts configuring a provider for `source`, sending its requests through `client`.
    pub fn builder(client: Client, source: TokenSource) -> TokenProviderBuilder {
        TokenProviderBuilder {
            client,
            source,
            policy: RefreshPolicy::default(),
            max_slots: DEFAULT_MAX_SLOTS,
            #[cfg(feature = "store")]
            store: None,
        }
    }

    fn on_cache(client: Client, source: TokenSource, cache: Arc<Cache>) -> Self {
        let key = CacheKey {
            source: source.clone(),
            base_url: client.base_url.clone(),
            partner_token_path: client.partner_token_path.clone(),
            merchant_serial_number: client.caller.merchant_serial_number.clone(),
        };
        let slot = cache.slots.get_or_insert(key.clone());
        Self {
            client,
            source,
            endpoint: Arc::new(key.without_merchant()),
            key: Arc::new(key),
            slot,
            cache,
        }
    }

    /// A provider for the same keys acting for another merchant (`Merchant-Serial-Number`),
    /// on the same cache; its tokens are its own.
    pub fn with_merchant_serial_number(&self, msn: &str) -> Result<Self, Error> {
        let client = self.client.with_merchant_serial_number(msn)?;
        Ok(Self::on_cache(
            client,
            self.source.clone(),
            self.cache.clone(),
        ))
    }

    /// A provider for other keys on the same cache.
    pub fn with_source(&self, source: TokenSource) -> Self {
        Self::on_cache(self.client.clone(), source, self.cache.clone())
    }

    /// The client requests go through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The flow's name, for logs and metric labels.
    #[cfg(feature = "middleware")]
    pub(crate) fn flow_name(&self) -> &'static str {
        self.source.flow_name()
    }

    /// How many keys the cache holds a slot for now; at most
    /// [`TokenProviderBuilder::max_slots`] besides those live handles point at.
    pub fn cached_keys(&self) -> usize {
        self.cache.slots.len()
    }

    /// A valid token. Served from the cache when it holds one (refreshing it in the
    /// background when it nears expiry); otherwise fetched, once, for every caller that
    /// asks meanwhile. A failed fetch is handed to the callers that waited for it; while no
    /// usable token is left, callers then share that error for a short wait that grows with
    /// every failure in a row ([`RefreshPolicy::failure_backoff`]) instead of asking the
    /// token endpoint on every call, and the first call after it tries again. The wait is
    /// per keys and endpoint, whatever the merchant (refused keys or an endpoint that is
    /// down fail for every merchant alike): a failure for one merchant is shared with the
    /// others that have no usable token, and a success for any of them resets it. A
    /// refusal of this merchant only (another 4xx, such as an MSN not linked to the keys)
    /// waits for this merchant alone, and only its own success resets it.
    ///
    /// A fetched token is never handed out in its last [`RefreshPolicy::expiry_margin`]:
    /// one that arrives that late (a slow answer, a runtime that stood still, a clock that
    /// jumped) is fetched once more for a caller that had waited only moments, and is
    /// otherwise [`Error::ArrivedLate`].
    ///
    /// A hit is answered when `token()` is called, without an allocation; the future it
    /// returns only hands the token over. Only the slow path is boxed.
    #[inline]
    pub fn token(&self) -> impl Future<Output = Result<Arc<AccessToken>, Error>> + Send + '_ {
        match self.fresh_token() {
            Some(token) => TokenFuture::Hit(Some(token)),
            None => TokenFuture::Slow(self.token_slowly().boxed()),
        }
    }

    /// The cached token if it is fresh (before its refresh time), without waiting and
    /// without starting anything: for synchronous code, or to look before awaiting.
    /// `None` means "call [`Self::token`]", not "there is no token".
    #[inline]
    pub fn cached_token(&self) -> Option<Arc<AccessToken>> {
        self.fresh_token()
    }

    /// The cache hit: no lock, no precise clock.
    #[inline]
    fn fresh_token(&self) -> Option<Arc<AccessToken>> {
        let cached = self.slot.cached.load();
        let cached = cached.as_ref()?;
        if !cached.freshness.is_fresh() {
            return None;
        }
        self.slot.mark_used();
        tracing::trace!("vipps access token cache hit");
        Some(cached.token.clone())
    }

    async fn token_slowly(&self) -> Result<Arc<AccessToken>, Error> {
        self.slot.mark_used();
        let now = Instant::now();
        if let Some(cached) = self.slot.cached.load_full()
            && cached.is_usable(now)
        {
            if !cached.is_due(now) {
                // Within the coarse clock's lag of the refresh time.
                return Ok(cached.token.clone());
            }
            tracing::debug!("vipps access token due for a refresh: refreshing in the background");
            self.refresh_in_background(&cached);
            return Ok(cached.token.clone());
        }
        if !self.slot.flight.is_running()
            && let Some(error) = self
                .cache
                .failure_backoffs
                .current(&self.endpoint)
                .or_else(|| self.cache.merchant_failure_backoffs.current(&self.key))
        {
            tracing::debug!(
                "a vipps access token fetch for these keys failed moments ago: sharing its error"
            );
            return Err(error);
        }
        tracing::debug!("vipps access token cache miss");
        self.join_fetch(|| self.fresh_token(), None).await
    }

    /// Starts a refresh of `cached` unless one is running, or a refresh ended since the
    /// caller looked (a new token, or a failure that set the next attempt's time).
    fn refresh_in_background(&self, cached: &Arc<Cached>) {
        let still_needed = || {
            let current = self.slot.cached.load();
            current.as_ref().is_some_and(|c| Arc::ptr_eq(c, cached))
        };
        self.slot.flight.start(still_needed, || self.fetch());
    }

    /// Fetches a fresh token now, or joins the fetch already running, and caches it. On
    /// failure the cached token, if any, stays. Useful to fail fast on bad keys at start-up.
    ///
    /// Not held back by the wait after failures ([`RefreshPolicy::failure_backoff`]): an
    /// explicit refresh always asks. A token that arrives in its last
    /// [`RefreshPolicy::expiry_margin`] is not returned (see [`Self::token`]).
    pub async fn refresh(&self) -> Result<Arc<AccessToken>, Error> {
        self.join_fetch(|| None, None).await
    }

    /// Joins the fetch in flight, or takes the token `done` finds (one cached since the
    /// caller looked), or starts a fetch. A fetch whose runtime shut down or stopped running
    /// tasks is replaced by one on the caller's runtime (see `single_flight.rs`).
    ///
    /// Whatever comes back is checked against its usable time now, as it is handed out
    /// (the fetch checked it when it ended, on its own runtime; time may have passed since):
    /// a token past it is never returned. The caller then joins or starts one more fetch if
    /// it had waited less than [`LATE_REFETCH_WITHIN`], and gets [`Error::ArrivedLate`]
    /// otherwise or when that one is late too. `as_is` is a token `done` may return that
    /// is not handed out (`token_after_rejection`'s "nothing newer"): it is not checked.
    async fn join_fetch(
        &self,
        done: impl Fn() -> Option<Arc<AccessToken>>,
        as_is: Option<&Arc<AccessToken>>,
    ) -> Result<Arc<AccessToken>, Error> {
        let started = Instant::now();
        let done = || done().map(Ok);
        let mut refetched = false;
        loop {
            let outcome = match self.slot.flight.run(&done, || self.fetch()).await {
                Ok(outcome) => outcome,
                Err(Abandoned) => Err(Error::Interrupted),
            };
            let outcome = outcome.and_then(|token| {
                if !as_is.is_some_and(|as_is| Arc::ptr_eq(as_is, &token)) {
                    check_handout(&token, &self.cache.policy, Instant::now())?;
                }
                Ok(token)
            });
            match outcome {
                Err(Error::ArrivedLate(_))
                    if !refetched && started.elapsed() < LATE_REFETCH_WITHIN =>
                {
                    tracing::debug!(
                        "the vipps access token fetched for this caller arrived too late to use: fetching once more"
                    );
                    refetched = true;
                }
                outcome => return outcome,
            }
        }
    }

    /// Marks the cached token suspect, for when an API answered 401 to a request that used
    /// it: the next call for a token starts a refresh, and callers keep getting the token
    /// until its replacement is cached, or, if the refresh fails, until it expires. To wait
    /// for the replacement, call [`Self::refresh`].
    pub fn invalidate(&self) {
        if let Some(cached) = self.slot.cached.load_full() {
            self.suspect(&cached);
        }
    }

    /// Like [`Self::invalidate`], only if the cached token is still `token`: many requests
    /// that fail with the same old token then cause one refresh, not one each. With a
    /// token store (feature `store`), `token`'s record is deleted, so that no process is
    /// handed it again.
    pub fn invalidate_token(&self, token: &Arc<AccessToken>) {
        let Some(cached) = self.slot.cached.load_full() else {
            return;
        };
        if Arc::ptr_eq(&cached.token, token) {
            self.suspect(&cached);
            #[cfg(feature = "store")]
            self.forget_in_store(token);
        }
    }

    /// Makes `cached` due for a refresh now, if it is still cached: hits go to the slow
    /// path, which serves it and starts the refresh; a failed refresh puts it back for
    /// [`RefreshPolicy::retry_interval`], as after any failed refresh.
    fn suspect(&self, cached: &Arc<Cached>) {
        let due = Arc::new(cached.refresh_again_after(Duration::ZERO));
        self.slot.cached.compare_and_swap(cached, Some(due));
    }

    /// What to retry with after an API refused `rejected` with a 401 that may be about the
    /// token (one that is not, such as APIM's "invalid subscription key", is better
    /// returned as is: another token cannot fix it).
    ///
    /// - `Some(token)` newer than `rejected`: another call's refresh produced it already,
    ///   or this call forced one. `rejected` is only suspect meanwhile: other callers keep
    ///   getting it until its replacement exists (the fleet's store forgets it at once).
    /// - `None`: hand the API's 401 back. Either a refresh was forced less than
    ///   [`RefreshPolicy::forced_refresh_interval`] ago for these keys and endpoint (any
    ///   merchant) and nothing newer came of it, so an API that refuses every token costs
    ///   one token request per interval, not one per call; or the forced refresh failed
    ///   (see [`Self::last_refresh_error`]), and `rejected`, unexpired, is served again:
    ///   the token endpoint's failure is not the refused call's.
    ///
    /// Many calls refused with the same token cause one refresh.
    /// `VippsAuthMiddleware` (feature `middleware`) calls it on every 401 it may retry.
    pub async fn token_after_rejection(
        &self,
        rejected: &Arc<AccessToken>,
    ) -> Option<Arc<AccessToken>> {
        let flow = self.source.flow_name();
        let newer = || {
            let cached = self.slot.cached.load();
            cached
                .as_ref()
                .filter(|c| !Arc::ptr_eq(&c.token, rejected) && c.is_usable(Instant::now()))
                .map(|c| c.token.clone())
        };
        if let Some(token) = newer() {
            tracing::debug!(
                outcome = "newer_token",
                "retrying a 401 with a newer vipps access token"
            );
            metrics::unauthorized(flow, "newer_token");
            return Some(token);
        }
        let forced = self.cache.forced_refreshes.try_force(
            (*self.endpoint).clone(),
            self.cache.policy.forced_refresh_interval,
            || {
                self.invalidate_token(rejected);
                // Now, whether or not `rejected` is still cached (it may have expired).
                self.slot
                    .flight
                    .start(|| newer().is_none(), || self.fetch());
            },
        );
        if forced {
            tracing::info!(
                outcome = "refreshed",
                "an API answered 401: retrying once with a fresh token"
            );
            metrics::unauthorized(flow, "refreshed");
        } else if !self.slot.flight.is_running() {
            // A refresh that ended since `newer` looked cached its token before it cleared
            // the flight: look again.
            if let Some(token) = newer() {
                tracing::debug!(
                    outcome = "newer_token",
                    "retrying a 401 with a newer vipps access token"
                );
                metrics::unauthorized(flow, "newer_token");
                return Some(token);
            }
            tracing::warn!(
                outcome = "rate_limited",
                interval_secs = self.cache.policy.forced_refresh_interval.as_secs_f64(),
                "an API answered 401 to a vipps access token refreshed moments ago: returning the 401 (check the API's product and keys)"
            );
            metrics::unauthorized(flow, "rate_limited");
            return None;
        } else {
            tracing::debug!(
                outcome = "newer_token",
                "retrying a 401 with the token being refreshed"
            );
            metrics::unauthorized(flow, "newer_token");
        }
        // No fetch in flight means the one this call forced or found has ended: with a
        // newer token, or failed, and then `rejected` is what is left to serve.
        let ended = || Some(newer().unwrap_or_else(|| rejected.clone()));
        match self.join_fetch(ended, Some(rejected)).await {
            Ok(token) if !Arc::ptr_eq(&token, rejected) => Some(token),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(
                    %error,
                    "the refresh a 401 forced failed: returning the 401, still serving the unexpired token"
                );
                None
            }
        }
    }

    /// Removes `token`, refused with 401, from the fleet's store too, so that no process
    /// is handed it again.
    #[cfg(feature = "store")]
    fn forget_in_store(&self, token: &Arc<AccessToken>) {
        if let Some(store) = &self.cache.store {
            *lock(&self.slot.refused_expiry) = Some(token.expires_at());
            let identity = crate::store::TokenIdentity::new(&self.source, &self.client);
            crate::store::forget_in_background(store.clone(), identity, token.clone());
        }
    }

    /// The error of this key's last fetch, if it failed; cleared by the next success. While
    /// a background refresh fails, the old token is served until it expires. A call that
    /// shared the failure of another merchant's fetch (the wait after failures is per keys
    /// and endpoint) leaves it as it was: that error came back from `token()`.
    pub fn last_refresh_error(&self) -> Option<Error> {
        lock(&self.slot.last_error).clone()
    }

    /// One fetch, which caches its outcome into the slot (if the slot still exists) and
    /// notes it for the wait after failures of its keys and endpoint.
    fn fetch(&self) -> impl Future<Output = FetchOutcome> + Send + 'static {
        let client = self.client.clone();
        let source = self.source.clone();
        let endpoint = self.endpoint.clone();
        let key = self.key.clone();
        let slot = Arc::downgrade(&self.slot);
        let cache = Arc::downgrade(&self.cache);
        let policy = self.cache.policy;
        #[cfg(feature = "store")]
        let store = self.cache.store.clone().map(|store| {
            let identity = crate::store::TokenIdentity::new(&source, &client);
            (store, identity, self.newest_known_expiry())
        });
        let span = tracing::info_span!(
            "vipps_access_token_fetch",
            flow = source.flow_name(),
            base_url = %client.base_url(),
            merchant_serial_number = client.caller.merchant_serial_number.as_ref().map(|m| m.as_str()),
        );
        async move {
            let started = Instant::now();
            #[cfg(feature = "store")]
            let outcome = match &store {
                Some((store, identity, older_than)) => {
                    let direct = Box::pin(source.fetch(&client));
                    let margin = policy.expiry_margin;
                    crate::store::fetch_through_store(
                        &**store,
                        identity,
                        margin,
                        *older_than,
                        direct,
                    )
                    .await
                }
                None => Box::pin(source.fetch(&client)).await,
            };
            #[cfg(not(feature = "store"))]
            let outcome = Box::pin(source.fetch(&client)).await;
            // Checked as it ends, on this runtime's clock: a token already past its usable
            // time is neither cached nor handed to the callers waiting (who check again).
            let outcome = outcome.map(Arc::new).and_then(|token| {
                check_handout(&token, &policy, Instant::now())?;
                Ok(token)
            });
            metrics::fetch_finished(source.flow_name(), &outcome, started.elapsed());
            match &outcome {
                Ok(token) => {
                    tracing::info!(
                        expires_in_secs = token.expires_in().as_secs(),
                        "fetched a vipps access token"
                    );
                    token.warn_on_clock_skew();
                }
                Err(error) => tracing::warn!(%error, "fetching a vipps access token failed"),
            }
            let token_left = slot
                .upgrade()
                .is_some_and(|slot| keep(&slot, &outcome, policy, source.flow_name()));
            if let Some(cache) = cache.upgrade() {
                match &outcome {
                    Ok(_) => {
                        cache.failure_backoffs.succeeded(&endpoint);
                        cache.merchant_failure_backoffs.succeeded(&key);
                    }
                    // A token that arrived late says nothing about the next request (a
                    // suspend, a runtime that stood still), and a slow upstream limits
                    // itself: each late answer took most of a token's life.
                    Err(Error::ArrivedLate(_)) => {}
                    Err(error) if !token_left && throttle::is_merchant_refusal(error) => {
                        cache.merchant_failure_backoffs.failed(&key, error, &policy);
                    }
                    Err(error) if !token_left => {
                        cache.failure_backoffs.failed(&endpoint, error, &policy);
                    }
                    Err(_) => {}
                }
                report_expiry(&cache, &source);
            }
            outcome
        }
        .instrument(span)
    }
}

#[cfg(feature = "store")]
impl TokenProvider {
    /// A stored token is taken only if it expires after both the one held and the last
    /// one refused with 401: otherwise the fleet would hand back what this process is
    /// replacing.
    fn newest_known_expiry(&self) -> Option<std::time::SystemTime> {
        let held = self
            .slot
            .cached
            .load()
            .as_ref()
            .map(|cached| cached.token.expires_at());
        held.max(*lock(&self.slot.refused_expiry))
    }
}

/// What [`TokenProvider::token`] returns: a token already in hand, or the slow path.
enum TokenFuture<'a> {
    /// A cache hit; `None` once handed over.
    Hit(Option<Arc<AccessToken>>),
    Slow(BoxFuture<'a, Result<Arc<AccessToken>, Error>>),
}

impl Future for TokenFuture<'_> {
    type Output = Result<Arc<AccessToken>, Error>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            // Polled again after it was ready: there is nothing left to hand over.
            Self::Hit(token) => Poll::Ready(token.take().ok_or_else(|| Error::Interrupted)),
            Self::Slow(slow) => slow.as_mut().poll(cx),
        }
    }
}

/// Puts a fetch's outcome into the slot: a new token, or the error beside the old token. A
/// token that arrived too late is a failure here: the old token stays. Returns whether the
/// slot holds a usable token now.
fn keep(slot: &Slot, outcome: &FetchOutcome, policy: RefreshPolicy, flow: &'static str) -> bool {
    match outcome {
        Ok(token) => {
            let fresh = Arc::new(Cached::new(token.clone(), policy));
            // A fetch that stalled and finished after its replacement must not put back an
            // older token: the later request wins.
            slot.cached.rcu(|current| match current {
                Some(held) if held.token.requested_at_instant() > token.requested_at_instant() => {
                    Some(held.clone())
                }
                _ => Some(fresh.clone()),
            });
            *lock(&slot.last_error) = None;
            true
        }
        Err(error) => {
            *lock(&slot.last_error) = Some(error.clone());
            let now = Instant::now();
            slot.cached.rcu(|current| {
                let cached = current.as_ref()?;
                // Keep serving the old token; try again a little later, not on every call.
                cached
                    .is_usable(now)
                    .then(|| Arc::new(cached.refresh_again_after(policy.retry_interval)))
            });
            let token_left = slot.holds_usable_token(now);
            if token_left {
                metrics::refresh_failed(flow);
            }
            token_left
        }
    }
}

/// Sets the flow's expiry gauge to the soonest expiry among its cached tokens, whatever
/// their merchant or keys: the one that needs attention first.
#[cfg(feature = "metrics")]
fn report_expiry(cache: &Cache, source: &TokenSource) {
    let flow = source.flow_name();
    let soonest = cache
        .slots
        .soonest_expiry(|key| key.source.flow_name() == flow);
    if let Some(left) = soonest {
        metrics::expires_in(flow, left);
    }
}

#[cfg(not(feature = "metrics"))]
fn report_expiry(_: &Cache, _: &TokenSource) {}

#[cfg(all(test, feature = "mock"))]
mod tests {
    use super::*;
    use crate::{mock::MockServer, time::test_clock};

    /// The monotonic clocks stop while the machine sleeps; the wall clock does not. A token
    /// whose wall-clock expiry passed during a suspend is not served, hit or slow path.
    #[tokio::test]
    async fn a_token_is_not_served_past_its_wall_clock_expiry_after_a_suspend() {
        let mock = MockServer::start().await.unwrap();
        let client = mock.client_builder().build().unwrap();
        let provider =
            TokenProvider::new(client, TokenSource::Standard(mock.standard_credentials()));
        let first = provider.token().await.unwrap();
        assert_eq!(first.expires_in(), Duration::from_secs(3600));
        assert!(provider.cached_token().is_some());

        // An hour's suspend, less 20 s: by the wall clock the token is in its last 30 s.
        test_clock::advance(Duration::from_secs(3580));
        assert!(
            provider.cached_token().is_none(),
            "no cache hit past the wall deadline"
        );
        let second = provider.token().await.unwrap();
        assert!(
            !Arc::ptr_eq(&first, &second),
            "a new token, not the expired one"
        );
        assert_eq!(mock.request_count(), 2);
    }

    /// A stored token with a few milliseconds more than the margin left: the provider must
    /// hand it out or fetch another, never fail. The handout check asks for the margin and
    /// a coarse tick (`time::COARSE_TICK`) more; the store asked only for the margin, so
    /// within that tick the provider read the record, refused it as late, read it again
    /// and returned `Error::ArrivedLate`, while the CLI's warm read printed it. The store
    /// now asks for the tick too.
    #[cfg(feature = "store")]
    #[tokio::test]
    async fn a_stored_token_at_the_edge_of_its_margin_is_served_or_replaced_never_an_error() {
        use crate::store::{FileTokenStore, SealingKeys, StoreConfig, TokenIdentity, TokenStore};

        let mock = MockServer::start().await.unwrap();
        let client = mock.client_builder().build().unwrap();
        let source = TokenSource::Partner {
            credentials: mock.partner_credentials(),
            scope: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let keys = || SealingKeys::new([7; 32], None);
        let store = FileTokenStore::new(dir.path(), StoreConfig::new(keys())).unwrap();
        let config = StoreConfig::new(keys());
        let name = TokenIdentity::new(&source, &client).keys(&config).records[0].clone();

        // An hour's token, requested so long ago that the margin and 5 ms are left.
        let margin = RefreshPolicy::default().expiry_margin;
        let life = Duration::from_secs(3600);
        let left = margin + Duration::from_millis(5);
        let requested = std::time::SystemTime::now() - (life - left);
        let requested_ms = requested
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let record = format!(
            r#"{{"flow":"partner","access_token":"a.stored.token","token_type":"Bearer","expires_in":{},"requested_at_ms":{requested_ms},"ext_expires_in":null,"expires_on":null,"not_before":null,"resource":null}}"#,
            life.as_secs()
        );
        let sealed = config.keys.seal(&name, record.as_bytes()).unwrap();
        store.put(&name, sealed, left).await.unwrap();

        let provider = TokenProvider::builder(client, source)
            .store(Arc::new(store))
            .build();
        let token = provider.token().await;
        assert!(token.is_ok(), "{token:?}");
    }
}
