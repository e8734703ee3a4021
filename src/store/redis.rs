//! [`RedisTokenStore`]: the store on Redis 7 or Valkey (feature `redis`): one server, a
//! Redis Cluster or a Sentinel-managed master, plain or TLS. Each step of a token is one
//! round trip (a Lua script, see `redis_scripts.rs`, loaded while connecting). Connecting
//! has its own timeout, apart from the first operation's; a connection that breaks is made
//! again on the next operation; a failed connect is not tried again for a short, growing
//! while (the store is bypassed at once meanwhile); a server's error reply is only an
//! error, except `WRONGTYPE`: a key of ours holding another type is deleted and the
//! operation tried once more.
//!
//! Why the whole handshake (TCP, TLS, `AUTH`/`SELECT`, loading the scripts) is under the
//! connect timeout and not the operation timeout: it is several round trips, so a Redis
//! whose one round trip fits the operation timeout (another zone, 60 ms each way) could
//! never connect under it. The price is paid by a Redis that accepts connections and never
//! answers: the connect timeout (2 s by default) once per connect attempt. A long-lived
//! store pays it once, then bypasses at once until its next attempt (1 s after the
//! failure, doubling to a minute); a one-shot process (a CLI run) has no such memory and
//! pays it on every run: lower `StoreConfig::connect_timeout` where that matters more than
//! reaching a far Redis.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::time::Instant;

use futures_util::{FutureExt, future::BoxFuture};
use redis::{AsyncCommands, ExistenceCheck, RedisError, Script, SetExpiry, SetOptions};

use super::{
    Lookup, StoreConfig, StoreError, TokenKeys, TokenStore,
    redis_link::{Connector, Link},
    redis_scripts::{
        DELETE_IF_EQUAL, EXTEND_IF_EQUAL, FAIL_AND_RELEASE, READ_OR_LEASE, REPAIR, SAVE_AND_RELEASE,
    },
    redis_url,
};
use crate::sync::lock;

/// A token store on Redis or Valkey.
///
/// `Debug` shows the hosts and ports, never the password of the URL nor the sealing keys.
///
/// ```no_run
/// use std::sync::Arc;
/// use vipps_access_token::store::{RedisTokenStore, SealingKeys, StoreConfig};
///
/// # fn run(key_from_env: &str) -> Result<(), vipps_access_token::store::StoreError> {
/// let keys = SealingKeys::from_base64(key_from_env, None, "VIPPS_TOKEN_STORE_KEY", "")?;
/// let store = RedisTokenStore::new("redis://127.0.0.1:6379", StoreConfig::new(keys))?;
/// # let _ = Arc::new(store); Ok(()) }
/// ```
pub struct RedisTokenStore {
    /// Shared with the detached handles that finish work in the background.
    inner: Arc<Inner>,
}

struct Inner {
    connector: Connector,
    address: String,
    /// The connection, made on first use and dropped after a broken connection or a
    /// timeout, so that the next operation connects again from the runtime it runs on.
    link: std::sync::Mutex<Option<Link>>,
    /// Held while connecting: concurrent operations wait for one connection, not each
    /// make their own.
    connecting: tokio::sync::Mutex<()>,
    /// Failed connects in a row, and when the next may be tried.
    backoff: std::sync::Mutex<ConnectBackoff>,
    config: StoreConfig,
}

/// The first wait after a failed connect.
const FIRST_CONNECT_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between connect attempts.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(60);

/// How long a store that failed to connect waits before trying again: meanwhile every
/// operation bypasses the store at once, instead of each paying the connect timeout again.
#[derive(Debug, Default)]
struct ConnectBackoff {
    /// Failed connects in a row.
    failures: u32,
    /// No connect is tried before then.
    until: Option<Instant>,
}

impl ConnectBackoff {
    /// The wait left at `now`, if any.
    fn remaining(&self, now: Instant) -> Option<Duration> {
        self.until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|left| !left.is_zero())
    }

    /// One more failure, known at `now`: 1 s, doubling, at most a minute.
    fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(16);
        let wait = FIRST_CONNECT_BACKOFF
            .saturating_mul(1 << doublings)
            .min(MAX_CONNECT_BACKOFF);
        self.until = now.checked_add(wait);
    }
}

/// Records a failed connect when dropped armed: on an error, and when the caller's connect
/// timeout drops the attempt.
struct ConnectAttempt<'a>(Option<&'a Inner>);

impl Drop for ConnectAttempt<'_> {
    fn drop(&mut self) {
        if let Some(inner) = self.0 {
            lock(&inner.backoff).failed(Instant::now());
        }
    }
}

/// Why an attempt failed: Redis's error (an answer, or a broken connection), or the store
/// itself declining to connect yet.
enum AttemptError {
    Redis(RedisError),
    Store(StoreError),
}

impl From<AttemptError> for StoreError {
    fn from(error: AttemptError) -> Self {
        match error {
            AttemptError::Redis(error) => unavailable(&error),
            AttemptError::Store(error) => error,
        }
    }
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("address", &self.inner.address)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl RedisTokenStore {
    /// A store at `url`: `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS
    /// (checked against the system's roots), `redis+cluster://host:port,host:port,...` for
    /// a Redis Cluster, `redis+sentinel://host:port,host:port/SERVICE` for the master
    /// sentinels name (`rediss+` forms for TLS). Connects on first use, so a store that is
    /// down at start-up is only a miss.
    pub fn new(url: &str, config: StoreConfig) -> Result<Self, StoreError> {
        Self::open(url, config, None)
    }

    /// [`Self::new`], with TLS certificates checked against `ca_pem` (PEM text, one or
    /// more certificates) instead of the system's roots: for a private CA, as Redis in a
    /// cluster of your own often has. Verification is never turned off.
    pub fn with_ca(url: &str, config: StoreConfig, ca_pem: &[u8]) -> Result<Self, StoreError> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let certificates = CertificateDer::pem_slice_iter(ca_pem).collect::<Result<Vec<_>, _>>();
        if !matches!(certificates, Ok(certificates) if !certificates.is_empty()) {
            return Err(StoreError::Config(
                "the store's CA is not PEM text holding a certificate \
                 (-----BEGIN CERTIFICATE-----)"
                    .to_owned(),
            ));
        }
        Self::open(url, config, Some(ca_pem.to_vec()))
    }

    fn open(url: &str, config: StoreConfig, ca: Option<Vec<u8>>) -> Result<Self, StoreError> {
        let target = redis_url::parse(url)?;
        if target.tls {
            ensure_tls_provider();
        }
        let address = target.address.clone();
        let connector =
            Connector::new(target, ca, config.connect_timeout, config.operation_timeout).map_err(
                |error| StoreError::Config(format!("the store URL was refused: {error}")),
            )?;
        Ok(Self {
            inner: Arc::new(Inner {
                connector,
                address,
                link: std::sync::Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                backoff: std::sync::Mutex::new(ConnectBackoff::default()),
                config,
            }),
        })
    }

    /// The connection, made on first use, its scripts loaded. Its background task runs on
    /// the runtime that made it: if that runtime shuts down (a provider in a `static` shared
    /// by tests), the next operation fails or times out, [`Self::run`] drops the
    /// connection, and the one after connects again from its own runtime. After a failed
    /// connect, no other is tried until the backoff has passed: the caller (and every
    /// caller that waited for that connect) bypasses the store at once.
    async fn link(&self) -> Result<Link, AttemptError> {
        if let Some(link) = lock(&self.inner.link).as_ref() {
            return Ok(link.clone());
        }
        let _connecting = self.inner.connecting.lock().await;
        if let Some(link) = lock(&self.inner.link).as_ref() {
            return Ok(link.clone());
        }
        let waiting = {
            let backoff = lock(&self.inner.backoff);
            backoff
                .remaining(Instant::now())
                .map(|left| (left, backoff.failures))
        };
        if let Some((left, failures)) = waiting {
            return Err(AttemptError::Store(StoreError::Unavailable(format!(
                "connecting to {} failed {failures} time(s) in a row; not trying again for \
                 another {} ms (check that Redis is up and answering there)",
                self.inner.address,
                left.as_millis()
            ))));
        }
        let config = &self.inner.config;
        let mut attempt = ConnectAttempt(Some(&self.inner));
        let made = self
            .inner
            .connector
            .connect(config.connect_timeout, config.operation_timeout)
            .await
            .map_err(AttemptError::Redis)?;
        attempt.0 = None;
        *lock(&self.inner.backoff) = ConnectBackoff::default();
        Ok(lock(&self.inner.link).get_or_insert(made).clone())
    }

    /// Runs one operation on `keys`; a `WRONGTYPE` answer (one of them holds a list, a
    /// hash...) deletes those of the wrong type and tries once more, after a warning.
    async fn run<T, F>(
        &self,
        keys: &[&[u8]],
        operation: impl Fn(Link) -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, RedisError>>,
    {
        match self.attempt(&operation).await {
            Err(AttemptError::Redis(error)) if is_wrong_type(&error) => {
                let repaired: Result<i64, AttemptError> = self
                    .attempt(|mut link| async move {
                        let mut invocation = REPAIR.prepare_invoke();
                        for key in keys {
                            invocation.key(*key);
                        }
                        invocation.invoke_async(&mut link).await
                    })
                    .await;
                let deleted = repaired?;
                tracing::warn!(
                    deleted,
                    "vipps token store: deleted keys of another type than a string \
                     (WRONGTYPE) under this token's names; trying again"
                );
                Ok(self.attempt(&operation).await?)
            }
            outcome => Ok(outcome?),
        }
    }

    /// Runs one operation. A broken connection is dropped and the operation tried once
    /// more on a new one (a connection whose runtime shut down fails at once; its
    /// replacement belongs to the caller's runtime). An error reply from the server is
    /// returned as it is, the connection kept. An operation given up on (a timeout
    /// around it) drops the connection too. A failed connect is not tried again at once.
    async fn attempt<T, F>(&self, operation: impl Fn(Link) -> F) -> Result<T, AttemptError>
    where
        F: Future<Output = Result<T, RedisError>>,
    {
        let mut tries = 2;
        loop {
            tries -= 1;
            let mut reset = ForgetConnectionOnDrop(Some(&self.inner));
            let outcome = match self.link().await {
                Ok(link) => operation(link).await,
                // A connect that failed (remembered for the backoff), or declined: a new
                // connection is what was just tried.
                Err(error) => {
                    reset.0 = None;
                    return Err(error);
                }
            };
            match outcome {
                Ok(value) => {
                    reset.0 = None;
                    return Ok(value);
                }
                Err(error) if self.inner.connector.needs_new_connection(&error) => {
                    drop(reset);
                    if tries == 0 {
                        return Err(AttemptError::Redis(error));
                    }
                }
                Err(error) => {
                    reset.0 = None;
                    return Err(AttemptError::Redis(error));
                }
            }
        }
    }

    /// Runs `script` with `keys` and `args`.
    async fn script<T: redis::FromRedisValue>(
        &self,
        script: &'static Script,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        self.run(keys, move |mut link| async move {
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(*key);
            }
            for arg in args {
                invocation.arg(*arg);
            }
            invocation.invoke_async(&mut link).await
        })
        .await
    }
}

/// Drops the store's connection when dropped armed.
struct ForgetConnectionOnDrop<'a>(Option<&'a Inner>);

impl Drop for ForgetConnectionOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(inner) = self.0 {
            *lock(&inner.link) = None;
        }
    }
}

/// Whether the server answered `WRONGTYPE`: a key holds another type than a string. (Redis
/// 7 passes a script's error code on; older servers wrap it in `ERR`.)
fn is_wrong_type(error: &RedisError) -> bool {
    error.code() == Some("WRONGTYPE") || error.detail().is_some_and(|d| d.contains("WRONGTYPE"))
}

/// The error, said without the URL (the `redis` crate's messages hold no password).
fn unavailable(error: &RedisError) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// Milliseconds for `PX`, at least 1 (Redis refuses 0), as script argument text.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl TokenStore for RedisTokenStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        async move {
            self.run(&[key.as_bytes()], move |mut link| async move {
                link.get(key).await
            })
            .await
        }
        .boxed()
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            self.run(&[key.as_bytes()], move |mut link| {
                let value = value.clone();
                async move {
                    let options = SetOptions::default().with_expiration(SetExpiry::PX(millis(ttl)));
                    link.set_options(key, value, options).await
                }
            })
            .await
        }
        .boxed()
    }

    fn put_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        async move {
            self.run(&[key.as_bytes()], move |mut link| async move {
                let options = SetOptions::default()
                    .conditional_set(ExistenceCheck::NX)
                    .with_expiration(SetExpiry::PX(millis(ttl)));
                // `SET NX` answers OK when it set the key, nil when the key existed.
                let reply: Option<String> = link.set_options(key, value, options).await?;
                Ok(reply.is_some())
            })
            .await
        }
        .boxed()
    }

    fn delete_if_equal<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        async move {
            let deleted: i64 = self
                .script(&DELETE_IF_EQUAL, &[key.as_bytes()], &[value])
                .await?;
            Ok(deleted == 1)
        }
        .boxed()
    }

    fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Connects once for every operation waiting (`StoreConfig::connect_timeout` bounds
    /// the caller's wait), and loads the scripts, so that the first operation's own
    /// timeout is spent on neither; declines at once while a failed connect's backoff runs.
    fn connect(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.link().await?;
            Ok(())
        }
        .boxed()
    }

    fn read_or_lease<'a>(
        &'a self,
        keys: &'a TokenKeys,
        holder: &'a [u8],
        lease_ttl: Duration,
        min_life: Duration,
    ) -> BoxFuture<'a, Result<Lookup, StoreError>> {
        async move {
            let mut names: Vec<&[u8]> = vec![keys.lease.as_bytes(), keys.failure.as_bytes()];
            names.extend(keys.records.iter().map(|name| name.as_bytes()));
            let lease_ms = millis(lease_ttl).to_string();
            let min_life_ms = millis(min_life).to_string();
            let reply: Vec<Option<Vec<u8>>> = self
                .script(
                    &READ_OR_LEASE,
                    &names,
                    &[holder, lease_ms.as_bytes(), min_life_ms.as_bytes()],
                )
                .await?;
            let mut reply = reply.into_iter();
            let (Some(leased), Some(lease_holder), Some(failed)) =
                (reply.next(), reply.next(), reply.next())
            else {
                return Err(StoreError::Unavailable(
                    "the read-or-lease script answered too little: is this Redis 7 or Valkey?"
                        .to_owned(),
                ));
            };
            let records: Vec<Option<Vec<u8>>> = reply.collect();
            if records.len() != keys.records.len() {
                return Err(StoreError::Unavailable(
                    "the read-or-lease script answered a record too many or too few".to_owned(),
                ));
            }
            Ok(Lookup::new(
                records,
                leased.as_deref() == Some(b"1"),
                lease_holder,
                failed,
            ))
        }
        .boxed()
    }

    fn extend_if_equal<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        async move {
            let ms = millis(ttl).to_string();
            let extended: i64 = self
                .script(&EXTEND_IF_EQUAL, &[key.as_bytes()], &[value, ms.as_bytes()])
                .await?;
            Ok(extended == 1)
        }
        .boxed()
    }

    fn save_and_release<'a>(
        &'a self,
        keys: &'a TokenKeys,
        record: &'a str,
        sealed: Vec<u8>,
        ttl: Duration,
        holder: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let ms = millis(ttl).to_string();
            let _: i64 = self
                .script(
                    &SAVE_AND_RELEASE,
                    &[
                        record.as_bytes(),
                        keys.lease.as_bytes(),
                        keys.failure.as_bytes(),
                    ],
                    &[&sealed, ms.as_bytes(), holder],
                )
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn fail_and_release<'a>(
        &'a self,
        keys: &'a TokenKeys,
        holder: &'a [u8],
        marker: &'a [u8],
        marker_ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let ms = millis(marker_ttl).to_string();
            let _: i64 = self
                .script(
                    &FAIL_AND_RELEASE,
                    &[keys.lease.as_bytes(), keys.failure.as_bytes()],
                    &[holder, ms.as_bytes(), marker],
                )
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn detached(&self) -> Option<Arc<dyn TokenStore>> {
        Some(Arc::new(Self {
            inner: self.inner.clone(),
        }))
    }
}

/// redis builds its TLS config with rustls's process-wide default provider, which rustls
/// picks by itself only when exactly one provider is compiled in. An application whose
/// other dependencies enable aws-lc-rs beside this crate's ring would then have none, and
/// the first `rediss://` connection would panic inside rustls. So install ring, this
/// crate's provider, unless the application installed one already (that one is kept).
fn ensure_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error means another thread installed one meanwhile: also fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
