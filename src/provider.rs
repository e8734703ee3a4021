//! [`TokenProvider`]: cached tokens for a busy service. One upstream request per key at a
//! time (single flight), refreshed ahead of expiry in the background, never expired.
//!
//! Expiry is counted on tokio's clock from the moment the request was sent, so tests can
//! drive it with paused time, and latency or a wrong wall clock can only shorten a token's
//! life here, never lengthen it. A cache hit takes no lock and reads only a coarse clock (see
//! `freshness.rs`); every other decision is made on the slow path, on tokio's clock.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    AccessToken, Client, Error, TokenSource,
    headers::MerchantSerialNumber,
    metrics,
    refresh::{Cached, RefreshPolicy},
    single_flight::Abandoned,
    slots::{DEFAULT_MAX_SLOTS, FetchOutcome, Slot, Slots},
    sync::lock,
};

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
}

impl TokenProviderBuilder {
    /// When to refresh ahead of expiry ([`RefreshPolicy::default`]).
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How many keys (merchant serial numbers, scopes, key sets) the provider and the
    /// providers derived from it keep a token for ([`DEFAULT_MAX_SLOTS`] by default; at
    /// least 1). When full, idle and expired entries go first; an entry with a fetch in
    /// flight or a live handle pointing at it is never evicted.
    pub fn max_slots(mut self, max_slots: usize) -> Self {
        self.max_slots = max_slots;
        self
    }

    /// Builds the provider.
    pub fn build(self) -> TokenProvider {
        let cache = Arc::new(Cache {
            policy: self.policy,
            slots: Slots::new(self.max_slots),
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

/// What a provider and the providers derived from it share.
struct Cache {
    policy: RefreshPolicy,
    slots: Slots<CacheKey>,
}

impl TokenProvider {
    /// A provider for `source`, sending its requests through `client`.
    pub fn new(client: Client, source: TokenSource) -> Self {
        Self::builder(client, source).build()
    }

    /// Like [`Self::new`], with another refresh policy.
    pub fn with_policy(client: Client, source: TokenSource, policy: RefreshPolicy) -> Self {
        Self::builder(client, source).refresh_policy(policy).build()
    }

    /// Starts configuring a provider for `source`, sending its requests through `client`.
    pub fn builder(client: Client, source: TokenSource) -> TokenProviderBuilder {
        TokenProviderBuilder {
            client,
            source,
            policy: RefreshPolicy::default(),
            max_slots: DEFAULT_MAX_SLOTS,
        }
    }

    fn on_cache(client: Client, source: TokenSource, cache: Arc<Cache>) -> Self {
        let key = CacheKey {
            source: source.clone(),
            base_url: client.base_url.clone(),
            partner_token_path: client.partner_token_path.clone(),
            merchant_serial_number: client.caller.merchant_serial_number.clone(),
        };
        let slot = cache.slots.get_or_insert(key);
        Self {
            client,
            source,
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

    /// How many keys the cache holds a slot for now; at most
    /// [`TokenProviderBuilder::max_slots`] besides those live handles point at.
    pub fn cached_keys(&self) -> usize {
        self.cache.slots.len()
    }

    /// A valid token. Served from the cache when it holds one (refreshing it in the
    /// background when it nears expiry); otherwise fetched, once, for every caller that
    /// asks meanwhile. A failed fetch is handed to the callers that waited for it and is
    /// not cached: the next call tries again.
    pub async fn token(&self) -> Result<Arc<AccessToken>, Error> {
        if let Some(token) = self.fresh_token() {
            return Ok(token);
        }
        self.token_slowly().await
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
        Some(cached.token.clone())
    }

    async fn token_slowly(&self) -> Result<Arc<AccessToken>, Error> {
        self.slot.mark_used();
        let now = Instant::now();
        if let Some(cached) = self.slot.cached.load().as_ref() {
            if now < cached.refresh_at {
                // Within the coarse clock's lag of the refresh time.
                return Ok(cached.token.clone());
            }
            if now < cached.usable_until {
                tracing::debug!("vipps access token nears expiry: refreshing in the background");
                self.slot.flight.start(|| self.fetch());
                return Ok(cached.token.clone());
            }
        }
        tracing::debug!("vipps access token cache miss");
        self.join_fetch().await
    }

    /// Fetches a fresh token now, or joins the fetch already running, and caches it. On
    /// failure the cached token, if any, stays. Useful to fail fast on bad keys at start-up.
    pub async fn refresh(&self) -> Result<Arc<AccessToken>, Error> {
        self.join_fetch().await
    }

    /// Joins the fetch in flight or starts one. If the task running it is dropped (its
    /// runtime shut down), one more is started on the caller's runtime.
    async fn join_fetch(&self) -> Result<Arc<AccessToken>, Error> {
        for _ in 0..2 {
            match self.slot.flight.join_or_start(|| self.fetch()).await {
                Ok(outcome) => return outcome,
                Err(Abandoned) => {
                    tracing::debug!("a vipps access token fetch was abandoned: starting another");
                }
            }
        }
        Err(Error::Interrupted)
    }

    /// Forgets the cached token, for when an API answered 401 to a request that used it.
    pub fn invalidate(&self) {
        self.slot.cached.store(None);
    }

    /// Forgets the cached token only if it is still `token`: many requests that fail with
    /// the same old token then cause one refresh, not one each.
    pub fn invalidate_token(&self, token: &Arc<AccessToken>) {
        let current = self.slot.cached.load_full();
        if current
            .as_ref()
            .is_some_and(|cached| Arc::ptr_eq(&cached.token, token))
        {
            self.slot.cached.compare_and_swap(&current, None);
        }
    }

    /// The error of the last fetch, if it failed; cleared by the next success. While a
    /// background refresh fails, the old token is served until it expires.
    pub fn last_refresh_error(&self) -> Option<Error> {
        lock(&self.slot.last_error).clone()
    }

    /// One fetch, which caches its outcome into the slot (if the slot still exists).
    fn fetch(&self) -> impl Future<Output = FetchOutcome> + Send + 'static {
        let client = self.client.clone();
        let source = self.source.clone();
        let slot = Arc::downgrade(&self.slot);
        let policy = self.cache.policy;
        let span = tracing::info_span!(
            "vipps_access_token_fetch",
            flow = source.flow_name(),
            base_url = %client.base_url(),
            merchant_serial_number = client.caller.merchant_serial_number.as_ref().map(|m| m.as_str()),
        );
        async move {
            let started = Instant::now();
            let outcome = source.fetch(&client).await.map(Arc::new);
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
            if let Some(slot) = slot.upgrade() {
                keep(&slot, &outcome, policy, source.flow_name());
            }
            outcome
        }
        .instrument(span)
    }
}

/// Puts a fetch's outcome into the slot: a new token, or the error beside the old token.
fn keep(slot: &Slot, outcome: &FetchOutcome, policy: RefreshPolicy, flow: &'static str) {
    match outcome {
        Ok(token) => {
            slot.cached
                .store(Some(Arc::new(Cached::new(token.clone(), policy))));
            *lock(&slot.last_error) = None;
            metrics::expires_in(flow, token.expires_in());
        }
        Err(error) => {
            *lock(&slot.last_error) = Some(error.clone());
            let now = Instant::now();
            slot.cached.rcu(|current| {
                let cached = current.as_ref()?;
                // Keep serving the old token; try again a little later, not on every call.
                (now < cached.usable_until)
                    .then(|| Arc::new(cached.refresh_again_at(now + policy.retry_interval)))
            });
            if let Some(cached) = slot.cached.load().as_ref() {
                metrics::refresh_failed(flow);
                metrics::expires_in(flow, expiry_left(&cached.token));
            }
        }
    }
}

fn expiry_left(token: &AccessToken) -> Duration {
    Instant::from_std(token.expires_at_instant()).saturating_duration_since(Instant::now())
}
