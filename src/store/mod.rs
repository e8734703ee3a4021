//! Tokens shared by many processes (feature `store`): a [`TokenStore`] holds each token as
//! a sealed record, so a fleet of replicas, cron jobs or CLI runs fetches a token once.
//!
//! The store never sees anything readable: records are sealed with ChaCha20-Poly1305 under
//! keys derived from [`SealingKeys`], bound to their key name, and key names are an HMAC of
//! what identifies the token (flow, base URL, client id, `Merchant-Serial-Number`, scope or
//! resource). A store that is down, slow, full or holding a record it cannot open is
//! treated as a miss: the provider warns and fetches directly, it never fails because of it.
//!
//! When the one process fetching for the fleet fails, it leaves a failure marker (sealed:
//! the kind of failure, the HTTP status, the redacted message) for twice the lease TTL
//! (4 s by default): every process that looks meanwhile returns that error
//! ([`crate::Error::Shared`]) instead of asking the API again. The marker carries the time
//! it was written: one this build cannot open (another version, another key) or written
//! longer ago than that life is ignored and removed, whatever TTL the store gave it.
//!
//! [`FileTokenStore`] keeps the records in a directory on one machine (no server); enable
//! feature `redis` for [`RedisTokenStore`], or implement [`TokenStore`] on another
//! key-value store with atomic "set if absent" and "delete if equal".

// A plain comment, as the docs above are `vipps_access_token::store`'s public ones:
// May import: client, credentials, error, flow, sync, time, wire.

mod background;
mod failure;
mod file;
mod file_dir;
mod file_format;
mod file_lease;
mod file_names;
mod identity;
mod lease;
mod record;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_link;
#[cfg(feature = "redis")]
mod redis_scripts;
#[cfg(feature = "redis")]
mod redis_url;
mod seal;
mod shared_fetch;

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;

pub use background::settle;
pub use file::{FileEntry, FileEntryKind, FileTokenStore};
pub(crate) use identity::TokenIdentity;
pub use identity::TokenKeys;
#[cfg(feature = "redis")]
pub use redis::RedisTokenStore;
pub use seal::{SEALING_KEY_BYTES, SealingKeys};
pub use shared_fetch::probe;
pub(crate) use shared_fetch::{fetch_through_store, forget_in_background};
// The contract the provider's 401 path ports: compare-and-delete of one token.
#[allow(unused_imports)]
pub(crate) use shared_fetch::forget_in_store;

/// The prefix of every key name by default.
pub const DEFAULT_KEY_PREFIX: &str = "vipps-access-token:";

/// How long one store operation may take before the provider gives up on the store and
/// fetches directly, by default: a store must never make a token slower than a fetch.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_millis(250);

/// How long connecting to the store may take by default, apart from the operation that
/// needed the connection: a store far away (a slow TLS handshake, another region) is still
/// used, while [`DEFAULT_OPERATION_TIMEOUT`] bounds each operation once connected.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a lease (the right to fetch for the fleet) lasts by default. Short, so that a
/// holder that dies is replaced within seconds; its holder renews it while its fetch runs
/// (every third of it), so a slow fetch keeps it for as long as the fetch really takes.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(2);

/// A key-value store that holds sealed token records for many processes.
///
/// The provider only ever stores sealed bytes under HMAC'd names; an implementation stores
/// bytes, nothing more. Every method must be atomic on one key. Object safe: use it as
/// `Arc<dyn TokenStore>`.
///
/// The first five methods are required. The others bundle them into the few round trips a
/// token needs (read-or-lease, extend, save-and-release, fail-and-release); their default
/// implementations compose the required ones, and a store with scripts (Redis) overrides
/// them to make each one round trip and atomic.
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// The value under `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// Sets `key` to `value`, expiring after `ttl`.
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Sets `key` to `value`, expiring after `ttl`, only if `key` holds nothing
    /// (`SET NX PX`). True when it was set.
    fn put_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deletes `key` only if it still holds exactly `value` (compare-and-delete). True
    /// when it was deleted.
    fn delete_if_equal<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// The sealing keys, key prefix and timings records are kept with.
    fn config(&self) -> &StoreConfig;

    /// Connects, if the store needs a connection and has none, within
    /// [`StoreConfig::connect_timeout`]; called before each operation, outside its
    /// [`StoreConfig::operation_timeout`]. The default has nothing to connect.
    fn connect(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    /// Reads a token's records and its failure marker and, unless one of the records has
    /// more than `min_life` left or the marker is set, takes its lease for `holder`
    /// (`SET NX PX lease_ttl`); says who holds the lease otherwise.
    ///
    /// The default reads each key in turn and takes the lease only when no record and no
    /// marker exists (it cannot see a record's life left; the caller then leases on its
    /// own). After taking it, it looks again: a holder may have finished meanwhile.
    fn read_or_lease<'a>(
        &'a self,
        keys: &'a TokenKeys,
        holder: &'a [u8],
        lease_ttl: Duration,
        min_life: Duration,
    ) -> BoxFuture<'a, Result<Lookup, StoreError>> {
        let _ = min_life;
        Box::pin(async move {
            let mut records = Vec::with_capacity(keys.records.len());
            for name in &keys.records {
                records.push(record_or_miss(self.get(name).await)?);
            }
            let mut failed = self.get(&keys.failure).await?;
            let mut leased = records.iter().all(Option::is_none)
                && failed.is_none()
                && self.put_if_absent(&keys.lease, holder, lease_ttl).await?;
            if leased {
                // Not atomic: a holder may have saved its record, or failed, and let go of
                // the lease between our look and our lease. Look again, or we would fetch
                // twice.
                for (record, name) in records.iter_mut().zip(&keys.records) {
                    // Quietly: a file found corrupt was warned about on the first look.
                    *record = match self.get(name).await {
                        Err(StoreError::Corrupt(_) | StoreError::Foreign(_)) => None,
                        read => read?,
                    };
                }
                failed = self.get(&keys.failure).await?;
                if failed.is_some() {
                    self.delete_if_equal(&keys.lease, holder).await?;
                    leased = false;
                }
            }
            let lease_holder = if leased {
                None
            } else {
                self.get(&keys.lease).await?
            };
            Ok(Lookup {
                records,
                leased,
                lease_holder,
                failed,
            })
        })
    }

    /// Extends `key`'s life to `ttl` only if it still holds exactly `value`
    /// (compare-and-extend): only a lease's holder renews it. True when extended.
    ///
    /// The default reads then writes again: not atomic, so a lease taken over in between
    /// could be overwritten; stores that can should override it.
    fn extend_if_equal<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            if self.get(key).await?.as_deref() != Some(value) {
                return Ok(false);
            }
            self.put(key, value.to_vec(), ttl).await?;
            Ok(true)
        })
    }

    /// Saves a sealed record under `record` for `ttl`, clears the failure marker and gives
    /// the lease back if `holder` still holds it. (The default leaves the marker to expire.)
    fn save_and_release<'a>(
        &'a self,
        keys: &'a TokenKeys,
        record: &'a str,
        sealed: Vec<u8>,
        ttl: Duration,
        holder: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.put(record, sealed, ttl).await?;
            self.delete_if_equal(&keys.lease, holder).await?;
            Ok(())
        })
    }

    /// Sets the failure marker to `marker` (the sealed summary of `holder`'s failed fetch)
    /// for `marker_ttl`, so that the processes waiting for it return that failure, and
    /// gives the lease back if `holder` still holds it. The marker is set first: no process
    /// can take the lease and miss it.
    fn fail_and_release<'a>(
        &'a self,
        keys: &'a TokenKeys,
        holder: &'a [u8],
        marker: &'a [u8],
        marker_ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.put(&keys.failure, marker.to_vec(), marker_ttl).await?;
            self.delete_if_equal(&keys.lease, holder).await?;
            Ok(())
        })
    }

    /// A handle on this same store that outlives the borrow, for work finished after the
    /// caller has its token (saving a record, releasing the lease of a dropped fetch).
    /// `None` (the default): that work is awaited instead, or the lease left to expire.
    fn detached(&self) -> Option<Arc<dyn TokenStore>> {
        None
    }
}

/// A record that the store itself finds corrupt or foreign (a file that is not one of
/// this library's) is a miss, after a warning: the fetch that follows replaces it.
fn record_or_miss(
    read: Result<Option<Vec<u8>>, StoreError>,
) -> Result<Option<Vec<u8>>, StoreError> {
    match read {
        Err(error @ (StoreError::Corrupt(_) | StoreError::Foreign(_))) => {
            degraded("open", &error);
            Ok(None)
        }
        other => other,
    }
}

/// What one [`TokenStore::read_or_lease`] found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Lookup {
    /// The sealed records under [`TokenKeys::records`], in the same order.
    pub records: Vec<Option<Vec<u8>>>,
    /// True when the lease was taken for the caller.
    pub leased: bool,
    /// Who holds the lease, when the caller did not get it.
    pub lease_holder: Option<Vec<u8>>,
    /// The failure marker (sealed) of the holder whose fetch failed last, while it lives.
    pub failed: Option<Vec<u8>>,
}

impl Lookup {
    /// A lookup with these parts.
    pub fn new(
        records: Vec<Option<Vec<u8>>>,
        leased: bool,
        lease_holder: Option<Vec<u8>>,
        failed: Option<Vec<u8>>,
    ) -> Self {
        Self {
            records,
            leased,
            lease_holder,
            failed,
        }
    }
}

/// How records are named, sealed and waited for.
#[derive(Debug)]
pub struct StoreConfig {
    /// The keys records are sealed and named with.
    pub keys: SealingKeys,
    /// Put before every key name, so that one Redis can serve many applications.
    pub key_prefix: String,
    /// How long one store operation may take before the store is treated as down, once
    /// connected.
    pub operation_timeout: Duration,
    /// How long connecting may take, apart from the operation that needed it.
    pub connect_timeout: Duration,
    /// How long a lease lasts; a process that dies holding one is replaced after it. A
    /// failed fetch's marker lives twice as long.
    pub lease_ttl: Duration,
}

impl StoreConfig {
    /// The defaults ([`DEFAULT_KEY_PREFIX`], [`DEFAULT_OPERATION_TIMEOUT`],
    /// [`DEFAULT_CONNECT_TIMEOUT`], [`DEFAULT_LEASE_TTL`]) with `keys`.
    pub fn new(keys: SealingKeys) -> Self {
        Self {
            keys,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }
}

/// Why the store could not be used. Never holds a secret, a token or a record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store's address or settings are wrong; the message says what to change.
    #[error("the token store is misconfigured: {0}")]
    Config(String),
    /// The store could not be reached or refused the operation (down, full, denied).
    #[error("the token store is unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer within its operation timeout.
    #[error("the token store did not answer within {0:?}")]
    Timeout(Duration),
    /// A record was not written by this library, was altered, or was moved from another
    /// key name.
    #[error("a record in the token store is corrupt: {0}")]
    Corrupt(String),
    /// A record was sealed under a key this process does not hold, or by another version.
    #[error("a record in the token store is foreign: {0}")]
    Foreign(String),
}

/// Every time the store is bypassed goes through here: one warning, with no secret, so
/// that a counter can be added in one place.
pub(crate) fn degraded(operation: &'static str, reason: &StoreError) {
    tracing::warn!(
        operation,
        %reason,
        "vipps token store bypassed: fetching directly"
    );
}
