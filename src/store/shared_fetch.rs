//! Fleet-wide single flight, in few round trips: one script reads the record or, on a miss,
//! takes the lease (a short one, renewed while the fetch runs, given back when the fetch ends
//! or is dropped); the holder fetches and hands the token to its caller while the record is
//! saved and the lease released in one more round trip. Processes without the lease poll
//! (backoff, jitter) for the record. When the fetch they wait for fails, its failure marker
//! (`failure.rs`) tells them at once, and they return the holder's error: the fleet makes
//! one fetch (with its retries) per failure, and any process that looks while the marker
//! lives returns that error too. Any store failure: warn, fetch directly.

use std::{
    future::Future,
    time::{Duration, SystemTime},
};

use tokio::time::Instant;

use crate::{client::Client, error::Error, time::COARSE_TICK, wire::token::AccessToken};

use super::{
    StoreConfig, StoreError, TokenIdentity, TokenKeys, TokenStore, background, degraded, failure,
    lease::{self, LeaseGuard},
    record::TokenRecord,
};

/// The first pause between looks at the store while another process fetches.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest pause between looks.
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// A token for `identity`: from the store when it holds one with more than `margin` of
/// life left (and, for a refresh ahead, expiring after `older_than`), otherwise from
/// `fetch`, run by one process of the fleet at a time. Never fails because of the store.
pub(crate) async fn fetch_through_store<F>(
    store: &dyn TokenStore,
    identity: &TokenIdentity,
    margin: Duration,
    older_than: Option<SystemTime>,
    fetch: F,
) -> Result<AccessToken, Error>
where
    F: Future<Output = Result<AccessToken, Error>>,
{
    let config = store.config();
    let keys = identity.keys(config);
    let freshness = Freshness { margin, older_than };
    let holder = lease::new_holder();
    let budget = fetch_budget(&identity.client);
    // The holder renews its lease for at most its budget; then it expires; then one of us
    // takes it over and fetches.
    let patience = budget.saturating_add(config.lease_ttl.saturating_mul(2));
    let deadline = Instant::now().checked_add(patience);
    let mut warned = false;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let looked = store.read_or_lease(&keys, &holder, config.lease_ttl, freshness.min_life());
        let lookup = match timed(store, looked).await {
            Ok(lookup) => lookup,
            Err(error) => {
                degraded("read", &error);
                return fetch.await;
            }
        };
        if let Some(token) = open_fresh(
            store,
            identity,
            &keys,
            &lookup.records,
            freshness,
            &mut warned,
        ) {
            if lookup.leased {
                // Taken as a precaution by a store that cannot judge life left: give it back.
                drop(LeaseGuard::new(store, &keys.lease, &holder));
            }
            return Ok(token);
        }
        if let Some(marker) = &lookup.failed {
            match failure::open(config, &keys.failure, marker) {
                // A fetch failed moments ago (the one we waited for, or another): its error
                // is ours, rather than one more request to an upstream that is failing.
                Some(error) => {
                    if lookup.leased {
                        release(store, &keys, &holder).await;
                    }
                    return Err(error);
                }
                // A marker this build cannot read, or past this build's marker life: it
                // stops no one. Remove it (only it), then lease as if it were not there.
                None => {
                    if let Err(error) = clear_marker(store, &keys, marker).await {
                        if lookup.leased {
                            release(store, &keys, &holder).await;
                        }
                        degraded("clear", &error);
                        return fetch.await;
                    }
                }
            }
        }
        if lookup.leased {
            return fetch_as_holder(store, &keys, &holder, budget, fetch).await;
        }
        match lookup.lease_holder {
            Some(other) if lease::abandoned_by_this_process(&other) => {
                // Our own fetch, dropped before it could give the lease back: take it over now.
                if let Err(error) = timed(store, store.delete_if_equal(&keys.lease, &other)).await {
                    degraded("release", &error);
                    return fetch.await;
                }
                continue;
            }
            Some(_) => {}
            // A stale record and a free lease, from a store that leases only on a miss.
            None => match timed(
                store,
                store.put_if_absent(&keys.lease, &holder, config.lease_ttl),
            )
            .await
            {
                Ok(true) => {
                    // The record may have been renewed, or its fetch failed, between our
                    // look and our lease.
                    let again = reread_records(store, &keys).await;
                    if let Some(token) =
                        open_fresh(store, identity, &keys, &again, freshness, &mut warned)
                    {
                        release(store, &keys, &holder).await;
                        return Ok(token);
                    }
                    if let Ok(Some(marker)) = timed(store, store.get(&keys.failure)).await {
                        match failure::open(config, &keys.failure, &marker) {
                            Some(error) => {
                                release(store, &keys, &holder).await;
                                return Err(error);
                            }
                            None => {
                                if let Err(error) = clear_marker(store, &keys, &marker).await {
                                    degraded("clear", &error);
                                }
                            }
                        }
                    }
                    return fetch_as_holder(store, &keys, &holder, budget, fetch).await;
                }
                Ok(false) => {}
                Err(error) => {
                    degraded("lease", &error);
                    return fetch.await;
                }
            },
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            degraded("wait", &StoreError::Timeout(patience));
            return fetch.await;
        }
        // Jitter, so that waiters of many processes do not poll in lockstep.
        tokio::time::sleep(backoff.mul_f64(0.5 + fastrand::f64())).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Gives back a lease taken but not needed (a record or a failure marker turned up).
async fn release(store: &dyn TokenStore, keys: &TokenKeys, holder: &[u8]) {
    if let Err(error) = timed(store, store.delete_if_equal(&keys.lease, holder)).await {
        degraded("release", &error);
    }
}

/// Removes a failure marker that is not honoured, compare-and-delete: a marker written
/// meanwhile (another fetch failed) stays.
async fn clear_marker(
    store: &dyn TokenStore,
    keys: &TokenKeys,
    marker: &[u8],
) -> Result<(), StoreError> {
    timed(store, store.delete_if_equal(&keys.failure, marker))
        .await
        .map(drop)
}

/// The token's records as they are now; any that cannot be read counts as missing.
async fn reread_records(store: &dyn TokenStore, keys: &TokenKeys) -> Vec<Option<Vec<u8>>> {
    let mut records = Vec::with_capacity(keys.records.len());
    for name in &keys.records {
        records.push(timed(store, store.get(name)).await.ok().flatten());
    }
    records
}

/// The longest a fetch of `client` may take: the retry policy's total, then one more
/// attempt of at most the request timeout. The lease is renewed for that long at most.
fn fetch_budget(client: &Client) -> Duration {
    // The request timeout lives in the reqwest client, which does not tell it: the
    // default one is the upper bound the crate sets.
    client
        .retry
        .max_total
        .saturating_add(crate::client::DEFAULT_TIMEOUT)
}

/// Runs the fetch as the lease holder, renewing the lease meanwhile. On success the token
/// goes to the caller at once while the record is saved and the lease released (in the
/// background when the store can, else awaited); on failure the failure marker is set and
/// the lease released, so that the waiters stop waiting.
async fn fetch_as_holder<F>(
    store: &dyn TokenStore,
    keys: &TokenKeys,
    holder: &[u8],
    budget: Duration,
    fetch: F,
) -> Result<AccessToken, Error>
where
    F: Future<Output = Result<AccessToken, Error>>,
{
    let config = store.config();
    let mut guard = LeaseGuard::new(store, &keys.lease, holder);
    let result =
        lease::renewed_while(store, &keys.lease, holder, config.lease_ttl, budget, fetch).await;
    match &result {
        Ok(token) => {
            let Some((sealed, ttl)) = seal(store, keys, token) else {
                return result; // nothing to save: the guard gives the lease back
            };
            guard.disarm();
            match store.detached() {
                Some(detached) => {
                    let keys = keys.clone();
                    let holder = holder.to_vec();
                    background::spawn(async move {
                        let _guard = guard;
                        let saved = detached.save_and_release(
                            &keys,
                            &keys.records[0],
                            sealed,
                            ttl,
                            &holder,
                        );
                        if let Err(error) = timed(&*detached, saved).await {
                            degraded("save", &error);
                        }
                    });
                }
                None => {
                    let saved = store.save_and_release(keys, &keys.records[0], sealed, ttl, holder);
                    if let Err(error) = timed(store, saved).await {
                        degraded("save", &error);
                    }
                }
            }
        }
        Err(error) => {
            guard.disarm();
            match failure::seal(config, &keys.failure, holder, error) {
                Some(marker) => {
                    let marked =
                        store.fail_and_release(keys, holder, &marker, failure::life(config));
                    if let Err(error) = timed(store, marked).await {
                        degraded("release", &error);
                    }
                }
                // A failure of this process alone: the next process fetches for itself.
                None => release(store, keys, holder).await,
            }
        }
    }
    result
}

/// `token` sealed under the current key's record name, with its life left; `None` when
/// it cannot be saved (already expired, or sealing failed, after a warning).
fn seal(
    store: &dyn TokenStore,
    keys: &TokenKeys,
    token: &AccessToken,
) -> Option<(Vec<u8>, Duration)> {
    let ttl = token
        .expires_at()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    if ttl.is_zero() {
        return None;
    }
    let sealed = store
        .config()
        .keys
        .seal(&keys.records[0], &TokenRecord::of(token).to_bytes());
    match sealed {
        Ok(sealed) => Some((sealed, ttl)),
        Err(error) => {
            degraded("save", &error);
            None
        }
    }
}

/// Removes the record of `token`, and only of that token, for a 401: compare-and-delete
/// of the exact sealed bytes that held it, so a newer token saved meanwhile stays.
pub(crate) async fn forget_in_store(
    store: &dyn TokenStore,
    identity: &TokenIdentity,
    token: &AccessToken,
) {
    let config = store.config();
    let keys = identity.keys(config);
    for name in &keys.records {
        let sealed = match timed(store, store.get(name)).await {
            Ok(Some(sealed)) => sealed,
            Ok(None) => continue,
            Err(error) => return degraded("forget", &error),
        };
        let holds_token = config
            .keys
            .open(name, &sealed)
            .and_then(|plain| TokenRecord::from_bytes(&plain))
            .is_ok_and(|record| record.holds(token));
        if holds_token {
            if let Err(error) = timed(store, store.delete_if_equal(name, &sealed)).await {
                degraded("forget", &error);
            }
            return;
        }
    }
}

/// [`forget_in_store`] on the current runtime, for callers that cannot wait (a 401 seen in
/// a synchronous method); without a runtime the record simply expires.
pub(crate) fn forget_in_background(
    store: std::sync::Arc<dyn TokenStore>,
    identity: TokenIdentity,
    token: std::sync::Arc<AccessToken>,
) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move { forget_in_store(&*store, &identity, &token).await });
    }
}

/// Writes a sealed probe record, reads it back and opens it, then deletes it: proves the
/// store is reachable and these keys can read what they write. For preflight checks.
pub async fn probe(store: &dyn TokenStore) -> Result<(), StoreError> {
    let config = store.config();
    let name = TokenIdentity::probe_name(config, config.keys.writer(), fastrand::u128(..));
    let plain = format!("probe {:032x}", fastrand::u128(..)).into_bytes();
    let sealed = config.keys.seal(&name, &plain)?;
    timed(
        store,
        store.put(&name, sealed.clone(), Duration::from_secs(60)),
    )
    .await?;
    let read = timed(store, store.get(&name)).await?.ok_or_else(|| {
        StoreError::Unavailable(
            "the probe record vanished: is the store evicting keys at once?".to_owned(),
        )
    })?;
    if config.keys.open(&name, &read)? != plain {
        return Err(StoreError::Corrupt(
            "the probe record read back differs".to_owned(),
        ));
    }
    timed(store, store.delete_if_equal(&name, &sealed)).await?;
    Ok(())
}

/// Which stored tokens are good enough to serve.
#[derive(Clone, Copy)]
struct Freshness {
    margin: Duration,
    older_than: Option<SystemTime>,
}

impl Freshness {
    fn accepts(self, record: &TokenRecord) -> bool {
        let expires_at = record.expires_at();
        let life_left = expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        life_left > self.margin_and_tick() && self.older_than.is_none_or(|held| expires_at > held)
    }

    /// The life a record must have left to be served, for the store to judge by its TTL.
    fn min_life(self) -> Duration {
        let beyond_held = self
            .older_than
            .and_then(|held| held.duration_since(SystemTime::now()).ok())
            .unwrap_or_default();
        self.margin_and_tick().max(beyond_held)
    }

    /// The margin, and the coarse clocks' tick that the provider's handout check adds to
    /// it: a record judged fresh here is one the provider hands out, never one it refuses
    /// as arrived late.
    fn margin_and_tick(self) -> Duration {
        self.margin.saturating_add(COARSE_TICK)
    }
}

/// The token `identity` has in the first record `read` finds (current key first), if it
/// has more than `margin` of life left, as [`open_fresh`] judges it, read at once: no
/// lease, no runtime. `None` on a miss, a record too old, or one that cannot be read or
/// opened, quietly: the provider that follows reads it again and says why.
pub(crate) fn fresh_at_once(
    config: &StoreConfig,
    identity: &TokenIdentity,
    margin: Duration,
    read: impl Fn(&str) -> Result<Option<Vec<u8>>, StoreError>,
) -> Option<AccessToken> {
    let keys = identity.keys(config);
    // Read up to the first record found, as the provider's lookup uses no other.
    let mut records = Vec::with_capacity(keys.records.len());
    for name in &keys.records {
        let record = read(name).ok()?;
        let found = record.is_some();
        records.push(record);
        if found {
            break;
        }
    }
    let freshness = Freshness {
        margin,
        older_than: None,
    };
    open_first(config, identity, &keys, &records, freshness)
        .ok()
        .flatten()
}

/// The token in the first record found (current key first), if fresh. A corrupt or
/// foreign record is a miss, warned about once per call: the fetch that follows
/// overwrites it.
fn open_fresh(
    store: &dyn TokenStore,
    identity: &TokenIdentity,
    keys: &TokenKeys,
    records: &[Option<Vec<u8>>],
    freshness: Freshness,
    warned: &mut bool,
) -> Option<AccessToken> {
    match open_first(store.config(), identity, keys, records, freshness) {
        Ok(token) => token,
        Err(error) => {
            if !std::mem::replace(warned, true) {
                degraded("open", &error);
            }
            None
        }
    }
}

/// The first record found (current key first), opened: its token if `freshness` accepts
/// it, `None` when there is no record or it is too old, the error when it does not open.
fn open_first(
    config: &StoreConfig,
    identity: &TokenIdentity,
    keys: &TokenKeys,
    records: &[Option<Vec<u8>>],
    freshness: Freshness,
) -> Result<Option<AccessToken>, StoreError> {
    let Some((name, sealed)) = keys
        .records
        .iter()
        .zip(records)
        .find_map(|(name, sealed)| Some((name, sealed.as_ref()?)))
    else {
        return Ok(None);
    };
    let record = TokenRecord::from_bytes(&config.keys.open(name, sealed)?)?;
    if !freshness.accepts(&record) {
        return Ok(None);
    }
    record
        .into_token(&identity.source, &identity.client)
        .map(Some)
}

/// One store operation, bounded by the store's own timeout, once the store is connected
/// (within its connect timeout, which a store far away needs more of).
async fn timed<T>(
    store: &dyn TokenStore,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let config = store.config();
    tokio::time::timeout(config.connect_timeout, store.connect())
        .await
        .unwrap_or(Err(StoreError::Timeout(config.connect_timeout)))?;
    let limit = config.operation_timeout;
    tokio::time::timeout(limit, operation)
        .await
        .unwrap_or(Err(StoreError::Timeout(limit)))
}
