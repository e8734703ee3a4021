//! Fleet-wide single flight: read the record; on a miss take the lease (`SET NX PX`), fetch,
//! save the sealed record until the token expires, release the lease. Processes without
//! the lease wait, with backoff and a bound, for the record; once a dead holder's lease
//! expires exactly one of them takes it over. Any store failure: warn, fetch directly.

use std::{
    future::Future,
    time::{Duration, SystemTime},
};

use tokio::time::Instant;

use crate::{error::Error, token::AccessToken};

use super::{StoreError, TokenIdentity, TokenStore, degraded, record::TokenRecord};

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
    let freshness = Freshness { margin, older_than };
    match read_or_miss(store, identity, freshness).await {
        Ok(Some(token)) => return Ok(token),
        Ok(None) => {}
        Err(error) => {
            degraded("read", &error);
            return fetch.await;
        }
    }
    let config = store.config();
    let lease = identity.lease_name(config);
    let holder = format!("{:032x}", fastrand::u128(..)).into_bytes();
    // One lease to expire (a dead holder) and one fetch by whoever takes over.
    let deadline = Instant::now() + config.lease_ttl * 2;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match timed(
            store,
            store.put_if_absent(&lease, &holder, config.lease_ttl),
        )
        .await
        {
            Ok(true) => {
                // Someone may have saved a token between our miss and our lease.
                let saved = read_or_miss(store, identity, freshness).await;
                if let Ok(Some(token)) = saved {
                    release(store, &lease, &holder).await;
                    return Ok(token);
                }
                return fetch_and_save(store, identity, &lease, &holder, fetch).await;
            }
            Ok(false) => {}
            Err(error) => {
                degraded("lease", &error);
                return fetch.await;
            }
        }
        if Instant::now() >= deadline {
            degraded("wait", &StoreError::Timeout(config.lease_ttl * 2));
            return fetch.await;
        }
        // Jitter, so that waiters of many processes do not poll in lockstep.
        tokio::time::sleep(backoff.mul_f64(0.5 + fastrand::f64())).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        match read(store, identity, freshness).await {
            Ok(Some(token)) => return Ok(token),
            Ok(None) | Err(StoreError::Corrupt(_) | StoreError::Foreign(_)) => {}
            Err(error) => {
                degraded("read", &error);
                return fetch.await;
            }
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
    for key in config.keys.readers() {
        let name = identity.record_name(config, key);
        let sealed = match timed(store, store.get(&name)).await {
            Ok(Some(sealed)) => sealed,
            Ok(None) => continue,
            Err(error) => return degraded("forget", &error),
        };
        let holds_token = config
            .keys
            .open(&name, &sealed)
            .and_then(|plain| TokenRecord::from_bytes(&plain))
            .is_ok_and(|record| record.holds(token));
        if holds_token {
            if let Err(error) = timed(store, store.delete_if_equal(&name, &sealed)).await {
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

/// Writes, reads back, opens and deletes a probe record.
pub(crate) async fn probe(store: &dyn TokenStore) -> Result<(), StoreError> {
    let config = store.config();
    let name = TokenIdentity::probe_name(config, config.keys.writer());
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
        life_left > self.margin && self.older_than.is_none_or(|held| expires_at > held)
    }
}

/// Like [`read`], but a corrupt or foreign record is a miss (after a warning): the fetch
/// that follows overwrites it. Only an unreachable or slow store is an error.
async fn read_or_miss(
    store: &dyn TokenStore,
    identity: &TokenIdentity,
    freshness: Freshness,
) -> Result<Option<AccessToken>, StoreError> {
    match read(store, identity, freshness).await {
        Err(error @ (StoreError::Corrupt(_) | StoreError::Foreign(_))) => {
            degraded("open", &error);
            Ok(None)
        }
        other => other,
    }
}

/// The stored token, if fresh: under the current key's name, else the previous key's.
async fn read(
    store: &dyn TokenStore,
    identity: &TokenIdentity,
    freshness: Freshness,
) -> Result<Option<AccessToken>, StoreError> {
    let config = store.config();
    for key in config.keys.readers() {
        let name = identity.record_name(config, key);
        let Some(sealed) = timed(store, store.get(&name)).await? else {
            continue;
        };
        let record = TokenRecord::from_bytes(&config.keys.open(&name, &sealed)?)?;
        if !freshness.accepts(&record) {
            return Ok(None);
        }
        return record
            .into_token(&identity.source, &identity.client)
            .map(Some);
    }
    Ok(None)
}

/// Runs the fetch as the lease holder, saves the token for the fleet, releases the lease.
async fn fetch_and_save<F>(
    store: &dyn TokenStore,
    identity: &TokenIdentity,
    lease: &str,
    holder: &[u8],
    fetch: F,
) -> Result<AccessToken, Error>
where
    F: Future<Output = Result<AccessToken, Error>>,
{
    let result = fetch.await;
    if let Ok(token) = &result
        && let Err(error) = save(store, identity, token).await
    {
        degraded("save", &error);
    }
    release(store, lease, holder).await;
    result
}

/// Seals `token` under the current key and stores it until it expires.
async fn save(
    store: &dyn TokenStore,
    identity: &TokenIdentity,
    token: &AccessToken,
) -> Result<(), StoreError> {
    let config = store.config();
    let ttl = token
        .expires_at()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    if ttl.is_zero() {
        return Ok(());
    }
    let name = identity.record_name(config, config.keys.writer());
    let sealed = config
        .keys
        .seal(&name, &TokenRecord::of(token).to_bytes())?;
    timed(store, store.put(&name, sealed, ttl)).await
}

/// Gives the lease back, if still ours; if it fails, the lease expires by itself.
async fn release(store: &dyn TokenStore, lease: &str, holder: &[u8]) {
    if let Err(error) = timed(store, store.delete_if_equal(lease, holder)).await {
        degraded("release", &error);
    }
}

/// One store operation, bounded by the store's own timeout.
async fn timed<T>(
    store: &dyn TokenStore,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let limit = store.config().operation_timeout;
    tokio::time::timeout(limit, operation)
        .await
        .unwrap_or(Err(StoreError::Timeout(limit)))
}
