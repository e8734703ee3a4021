//! [`TokenProvider`]: cached tokens for a busy service. One upstream request per key at a
//! time (single flight), refreshed ahead of expiry in the background, never expired.
//!
//! Expiry is counted on tokio's clock from the moment the request was sent, so tests can
//! drive it with paused time, and latency or a wrong wall clock can only shorten a token's
//! life here, never lengthen it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    AccessToken, Client, Error, LegacyResource, PartnerCredentials, StandardCredentials,
    headers::MerchantSerialNumber,
};

/// What to ask for a token with: the flow and its keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenSource {
    /// `POST /accesstoken/get`.
    Standard(StandardCredentials),
    /// `POST /miami/v1/token`, with an optional `scope`.
    Partner {
        /// Management or accounting keys.
        credentials: PartnerCredentials,
        /// The optional OAuth scope.
        scope: Option<String>,
    },
    /// `POST /api/v2/accesstoken/jwt`, deprecated.
    Legacy {
        /// The keys with their subscription key.
        credentials: StandardCredentials,
        /// The product the token is for.
        resource: LegacyResource,
    },
}

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
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            refresh_fraction: 0.2,
            jitter_fraction: 0.1,
            expiry_margin: Duration::from_secs(30),
            retry_interval: Duration::from_secs(5),
        }
    }
}

/// Hands out cached tokens, fetching one only when needed. Cheap to clone; clones share
/// the cache.
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
    #[cfg(feature = "store")]
    store: Option<Arc<dyn crate::store::TokenStore>>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("base_url", &self.client.base_url())
            .field("source", &self.source)
            .finish_non_exhaustive()
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

struct Cache {
    policy: RefreshPolicy,
    slots: Mutex<HashMap<CacheKey, Arc<Slot>>>,
}

/// The cache of one key. Its lock is only ever held for a few instructions, never
/// across an `.await`.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
}

type SharedFetch = Shared<BoxFuture<'static, Result<Arc<AccessToken>, Error>>>;

#[derive(Default)]
struct SlotState {
    cached: Option<Cached>,
    in_flight: Option<SharedFetch>,
    last_error: Option<Error>,
    /// The expiry of the last token refused with 401: the store must not hand it back.
    #[cfg(feature = "store")]
    refused_expiry: Option<std::time::SystemTime>,
}

struct Cached {
    token: Arc<AccessToken>,
    refresh_at: Instant,
    usable_until: Instant,
}

impl TokenProvider {
    /// A provider for `source`, sending its requests through `client`.
    pub fn new(client: Client, source: TokenSource) -> Self {
        Self::with_policy(client, source, RefreshPolicy::default())
    }

    /// Like [`Self::new`], with another refresh policy.
    pub fn with_policy(client: Client, source: TokenSource, policy: RefreshPolicy) -> Self {
        let cache = Arc::new(Cache {
            policy,
            slots: Mutex::default(),
        });
        Self::on_cache(client, source, cache)
    }

    fn on_cache(client: Client, source: TokenSource, cache: Arc<Cache>) -> Self {
        let key = CacheKey {
            source: source.clone(),
            base_url: client.base_url.clone(),
            partner_token_path: client.partner_token_path.clone(),
            merchant_serial_number: client.caller.merchant_serial_number.clone(),
        };
        let slot = lock(&cache.slots).entry(key).or_default().clone();
        Self {
            client,
            source,
            slot,
            cache,
            #[cfg(feature = "store")]
            store: None,
        }
    }

    /// Shares tokens with other processes through `store` (feature `store`): fetched once
    /// for the fleet, sealed at rest; a store that fails is warned about and bypassed.
    #[cfg(feature = "store")]
    pub fn with_store(mut self, store: Arc<dyn crate::store::TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// A provider for the same keys acting for another merchant (`Merchant-Serial-Number`),
    /// on the same cache; its tokens are its own.
    pub fn with_merchant_serial_number(&self, msn: &str) -> Result<Self, Error> {
        let client = self.client.with_merchant_serial_number(msn)?;
        Ok(self.keep_store(Self::on_cache(
            client,
            self.source.clone(),
            self.cache.clone(),
        )))
    }

    /// A provider for other keys on the same cache.
    pub fn with_source(&self, source: TokenSource) -> Self {
        self.keep_store(Self::on_cache(
            self.client.clone(),
            source,
            self.cache.clone(),
        ))
    }

    #[cfg_attr(not(feature = "store"), allow(clippy::unused_self))]
    fn keep_store(&self, #[allow(unused_mut)] mut other: Self) -> Self {
        #[cfg(feature = "store")]
        {
            other.store.clone_from(&self.store);
        }
        other
    }

    /// The client requests go through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A valid token. Served from the cache when it holds one (refreshing it in the
    /// background when it nears expiry); otherwise fetched, once, for every caller that
    /// asks meanwhile. A failed fetch is handed to the callers that waited for it and is
    /// not cached: the next call tries again.
    pub async fn token(&self) -> Result<Arc<AccessToken>, Error> {
        let now = Instant::now();
        let fetch = {
            let mut state = lock(&self.slot.state);
            if let Some(cached) = &state.cached {
                if now < cached.refresh_at {
                    tracing::trace!("vipps access token cache hit");
                    return Ok(cached.token.clone());
                }
                if now < cached.usable_until {
                    let token = cached.token.clone();
                    if state.in_flight.is_none() {
                        tracing::debug!(
                            "vipps access token nears expiry: refreshing in the background"
                        );
                        state.in_flight = Some(self.start_fetch());
                    }
                    return Ok(token);
                }
            }
            tracing::debug!("vipps access token cache miss");
            state
                .in_flight
                .get_or_insert_with(|| self.start_fetch())
                .clone()
        };
        fetch.await
    }

    /// Fetches a fresh token now, or joins the fetch already running, and caches it. On
    /// failure the cached token, if any, stays. Useful to fail fast on bad keys at start-up.
    pub async fn refresh(&self) -> Result<Arc<AccessToken>, Error> {
        let fetch = lock(&self.slot.state)
            .in_flight
            .get_or_insert_with(|| self.start_fetch())
            .clone();
        fetch.await
    }

    /// Forgets the cached token, for when an API answered 401 to a request that used it.
    pub fn invalidate(&self) {
        lock(&self.slot.state).cached = None;
    }

    /// Forgets the cached token only if it is still `token`: many requests that fail with
    /// the same old token then cause one refresh, not one each.
    pub fn invalidate_token(&self, token: &Arc<AccessToken>) {
        let mut state = lock(&self.slot.state);
        if state
            .cached
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.token, token))
        {
            state.cached = None;
            #[cfg(feature = "store")]
            if let Some(store) = &self.store {
                state.refused_expiry = Some(token.expires_at());
                let identity = crate::store::TokenIdentity::new(&self.source, &self.client);
                crate::store::forget_in_background(store.clone(), identity, token.clone());
            }
        }
    }

    /// The error of the last fetch, if it failed; cleared by the next success. While a
    /// background refresh fails, the old token is served until it expires.
    pub fn last_refresh_error(&self) -> Option<Error> {
        lock(&self.slot.state).last_error.clone()
    }

    /// Starts one fetch in its own task, so that it completes (and fills the cache) even
    /// if every caller waiting for it gives up.
    fn start_fetch(&self) -> SharedFetch {
        let client = self.client.clone();
        let source = self.source.clone();
        let slot = Arc::downgrade(&self.slot);
        let policy = self.cache.policy;
        let span = tracing::info_span!(
            "vipps_access_token_fetch",
            base_url = %client.base_url(),
            merchant_serial_number = client.caller.merchant_serial_number.as_ref().map(|m| m.as_str()),
        );
        #[cfg(feature = "store")]
        let shared_store = self.store.clone();
        let work = async move {
            #[cfg(feature = "store")]
            let result = match shared_store {
                Some(store) => {
                    // A stored token is taken only if newer than the one held or refused.
                    let older_than = slot.upgrade().and_then(|slot| {
                        let state = lock(&slot.state);
                        let cached = state.cached.as_ref().map(|c| c.token.expires_at());
                        cached.max(state.refused_expiry)
                    });
                    let identity = crate::store::TokenIdentity::new(&source, &client);
                    let margin = policy.expiry_margin;
                    let direct = fetch(&client, &source);
                    crate::store::fetch_through_store(
                        &*store, &identity, margin, older_than, direct,
                    )
                    .await
                }
                None => fetch(&client, &source).await,
            }
            .map(Arc::new);
            #[cfg(not(feature = "store"))]
            let result = fetch(&client, &source).await.map(Arc::new);
            store(&slot, &result, policy);
            result
        }
        .instrument(span);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let task = runtime.spawn(work);
                async move { task.await.unwrap_or_else(|_| Err(Error::Interrupted)) }
                    .boxed()
                    .shared()
            }
            Err(_) => work.boxed().shared(),
        }
    }
}

async fn fetch(client: &Client, source: &TokenSource) -> Result<AccessToken, Error> {
    let result = match source {
        TokenSource::Standard(credentials) => client.standard_token(credentials).await,
        TokenSource::Partner { credentials, scope } => {
            client.partner_token(credentials, scope.as_deref()).await
        }
        TokenSource::Legacy {
            credentials,
            resource,
        } =>
        {
            #[allow(deprecated)]
            client.legacy_token(credentials, resource).await
        }
    };
    match &result {
        Ok(token) => {
            tracing::info!(
                expires_in_secs = token.expires_in().as_secs(),
                "fetched a vipps access token"
            );
            warn_on_clock_skew(token);
        }
        Err(error) => tracing::warn!(%error, "fetching a vipps access token failed"),
    }
    result
}

/// Puts a fetch's outcome into the slot: a new token, or the error beside the old token.
fn store(slot: &Weak<Slot>, result: &Result<Arc<AccessToken>, Error>, policy: RefreshPolicy) {
    let Some(slot) = slot.upgrade() else { return };
    let mut state = lock(&slot.state);
    state.in_flight = None;
    match result {
        Ok(token) => {
            state.cached = Some(Cached::new(token.clone(), policy));
            state.last_error = None;
        }
        Err(error) => {
            state.last_error = Some(error.clone());
            if let Some(cached) = &mut state.cached {
                // Keep serving the old token; try again a little later, not on every call.
                cached.refresh_at =
                    (Instant::now() + policy.retry_interval).min(cached.usable_until);
            }
        }
    }
}

impl Cached {
    fn new(token: Arc<AccessToken>, policy: RefreshPolicy) -> Self {
        let sent = Instant::from_std(token.requested_at_instant());
        let life = token.expires_in();
        let expiry = Instant::from_std(token.expires_at_instant());
        let jitter = policy.jitter_fraction * fastrand::f64();
        let ahead = life.mul_f64((policy.refresh_fraction + jitter).clamp(0.0, 1.0));
        let margin = policy.expiry_margin.min(life / 10);
        let usable_until = expiry.checked_sub(margin).unwrap_or(sent);
        let refresh_at = expiry.checked_sub(ahead).unwrap_or(sent).min(usable_until);
        Self {
            token,
            refresh_at,
            usable_until,
        }
    }
}

/// Clocks more than this far apart earn a warning.
const CLOCK_SKEW_WARNING: Duration = Duration::from_secs(60);

fn warn_on_clock_skew(token: &AccessToken) {
    let Some(server_expiry) = token.server_expires_on() else {
        return;
    };
    let local_expiry = token.expires_at();
    let skew = server_expiry
        .duration_since(local_expiry)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default();
    if skew > CLOCK_SKEW_WARNING {
        tracing::warn!(
            skew_secs = skew.as_secs(),
            "the server's expires_on and the local clock disagree by more than a minute: \
             check the clock (expiry is counted from expires_in, so tokens stay safe)"
        );
    }
}

/// Locks a mutex; a panic elsewhere while it was held leaves the data usable, so go on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
