//! [`RedisTokenStore`]: the store on Redis 7 or Valkey (feature `redis`), through the
//! `redis` crate's tokio `ConnectionManager`, which reconnects by itself after a restart.
//! One key per token (and one per lease), so Redis Cluster works.

use std::time::Duration;

use futures_util::{FutureExt, future::BoxFuture};
use redis::{
    AsyncCommands, Client, ExistenceCheck, SetExpiry, SetOptions,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{StoreConfig, StoreError, TokenStore};
use crate::sync::lock;

/// Deletes `KEYS[1]` only if it holds exactly `ARGV[1]`, atomically.
const DELETE_IF_EQUAL: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                               return redis.call('DEL', KEYS[1]) else return 0 end";

/// A token store on Redis or Valkey.
///
/// `Debug` shows the host and port, never the password of the URL nor the sealing keys.
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
    client: Client,
    address: String,
    /// The connection, made on first use and dropped after any failure, so that the next
    /// operation connects again from the runtime it runs on.
    connection: std::sync::Mutex<Option<ConnectionManager>>,
    config: StoreConfig,
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("address", &self.address)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisTokenStore {
    /// A store at `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://` for
    /// TLS). Connects on first use, so a store that is down at start-up is only a miss.
    pub fn new(url: &str, config: StoreConfig) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|_| {
            StoreError::Config(
                "the store URL is not a redis:// or rediss:// URL \
                 (redis://[user:password@]host[:port][/db])"
                    .to_owned(),
            )
        })?;
        if url.starts_with("rediss:") {
            ensure_tls_provider();
        }
        let address = client.get_connection_info().addr().to_string();
        Ok(Self {
            client,
            address,
            connection: std::sync::Mutex::new(None),
            config,
        })
    }

    /// The connection, made on first use. Its background task runs on the runtime that
    /// made it: if that runtime shuts down (a provider in a `static` shared by tests), the
    /// next operation fails or times out, [`Self::run`] drops the connection, and the one
    /// after connects again from its own runtime.
    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut connection = lock(&self.connection);
        if let Some(connection) = connection.as_ref() {
            return Ok(connection.clone());
        }
        let timeout = self.config.operation_timeout;
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // One attempt per operation: a store that is down must cost a refused
            // connection, not a backoff; the next operation tries again.
            .set_number_of_retries(0);
        let made = ConnectionManager::new_lazy_with_config(self.client.clone(), settings)
            .map_err(unavailable)?;
        *connection = Some(made.clone());
        Ok(made)
    }

    /// Runs one operation on the connection. A failure drops the connection and tries
    /// once more on a new one: a connection whose runtime shut down fails at once, and its
    /// replacement belongs to the caller's runtime. An operation given up on (a timeout
    /// around it) drops the connection too.
    async fn run<T, F>(&self, operation: impl Fn(ConnectionManager) -> F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut outcome = Err(StoreError::Unavailable(String::new()));
        for _ in 0..2 {
            let mut reset = ForgetConnectionOnDrop(Some(self));
            outcome = operation(self.connection()?).await;
            if outcome.is_ok() {
                reset.0 = None;
                break;
            }
        }
        outcome
    }
}

/// Drops the store's connection when dropped armed.
struct ForgetConnectionOnDrop<'a>(Option<&'a RedisTokenStore>);

impl Drop for ForgetConnectionOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(store) = self.0 {
            *lock(&store.connection) = None;
        }
    }
}

fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

impl TokenStore for RedisTokenStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        self.run(
            move |mut connection| async move { connection.get(key).await.map_err(unavailable) },
        )
        .boxed()
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.run(move |mut connection| {
            let value = value.clone();
            async move {
                let options = SetOptions::default().with_expiration(SetExpiry::PX(millis(ttl)));
                connection
                    .set_options(key, value, options)
                    .await
                    .map_err(unavailable)
            }
        })
        .boxed()
    }

    fn put_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.run(move |mut connection| async move {
            let options = SetOptions::default()
                .conditional_set(ExistenceCheck::NX)
                .with_expiration(SetExpiry::PX(millis(ttl)));
            // `SET NX` answers OK when it set the key, nil when the key existed.
            let reply: Option<String> = connection
                .set_options(key, value, options)
                .await
                .map_err(unavailable)?;
            Ok(reply.is_some())
        })
        .boxed()
    }

    fn delete_if_equal<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.run(move |mut connection| async move {
            let deleted: i64 = redis::cmd("EVAL")
                .arg(DELETE_IF_EQUAL)
                .arg(1)
                .arg(key)
                .arg(value)
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(deleted == 1)
        })
        .boxed()
    }

    fn config(&self) -> &StoreConfig {
        &self.config
    }
}

/// Milliseconds for `PX`, at least 1 (Redis refuses 0).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
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
