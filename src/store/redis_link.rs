//! The connection to Redis, whichever its shape: one server (`ConnectionManager`), a
//! Redis Cluster (the `redis` crate's cluster client, which follows MOVED and ASK), or the
//! master a set of sentinels names (asked again on every new connection, so the store
//! follows a failover). TLS verifies certificates against the system roots, or only
//! against the CA given.

use std::time::Duration;

use redis::{
    Client, Cmd, Pipeline, RedisError, RedisFuture, TlsCertificates, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
    sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType},
};

use super::{
    redis_scripts,
    redis_url::{Target, Topology},
};

/// A live connection; cheap to clone (all clones share it).
#[derive(Clone)]
pub(super) enum Link {
    /// One server, or the master a sentinel named.
    Node(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(node) => node.req_packed_command(cmd),
            Self::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(node) => node.req_packed_commands(pipeline, offset, count),
            Self::Cluster(cluster) => cluster.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(node) => node.get_db(),
            Self::Cluster(cluster) => cluster.get_db(),
        }
    }
}

/// Makes new connections.
pub(super) enum Connector {
    Node(Client),
    Cluster(ClusterClient),
    /// Behind a lock: asking the sentinels needs `&mut`.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

impl Connector {
    /// A connector for `target`, trusting only `ca` (PEM) when given; connecting may take
    /// `connect_timeout`, each answer `response_timeout`.
    pub(super) fn new(
        target: Target,
        ca: Option<Vec<u8>>,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Self, RedisError> {
        let certificates = || TlsCertificates {
            client_tls: None,
            root_cert: ca.clone(),
        };
        match target.topology {
            Topology::Node(info) => Ok(Self::Node(match &ca {
                Some(_) => Client::build_with_tls(info, certificates())?,
                None => Client::open(info)?,
            })),
            Topology::Cluster(seeds) => {
                let mut builder = ClusterClientBuilder::new(seeds)
                    .connection_timeout(connect_timeout)
                    .response_timeout(response_timeout)
                    // MOVED and ASK are followed without counting; a retry is for a node
                    // that failed, and the store's own timeout bounds them all.
                    .retries(2);
                if ca.is_some() {
                    builder = builder.certs(certificates());
                }
                Ok(Self::Cluster(builder.build()?))
            }
            Topology::Sentinel {
                sentinels,
                service,
                master,
            } => {
                let mut builder =
                    SentinelClientBuilder::new(sentinels, service, SentinelServerType::Master)?
                        .set_client_to_redis_db(master.db());
                if let Some(username) = master.username() {
                    builder = builder.set_client_to_redis_username(username);
                }
                if let Some(password) = master.password() {
                    builder = builder.set_client_to_redis_password(password);
                }
                if target.tls {
                    builder = builder
                        .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
                    if ca.is_some() {
                        builder = builder
                            .set_client_to_redis_certificates(certificates())
                            .set_client_to_sentinel_certificates(certificates());
                    }
                }
                Ok(Self::Sentinel(tokio::sync::Mutex::new(builder.build()?)))
            }
        }
    }

    /// A new connection, made now (its handshake done and the scripts loaded, so that the
    /// first operation on it spends none of its own timeout on either); its background
    /// task runs on the current runtime.
    pub(super) async fn connect(
        &self,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Link, RedisError> {
        let link = self.handshake(connect_timeout, response_timeout).await?;
        self.load_scripts(&link).await?;
        Ok(link)
    }

    /// Loads every script at once (one round trip on one server; on a Cluster, each
    /// `SCRIPT LOAD` goes to every master). An error reply (a user not allowed `SCRIPT`)
    /// is only a warning: `EVALSHA` still loads a script on `NOSCRIPT` later. A broken
    /// connection or a timeout fails the connect.
    async fn load_scripts(&self, link: &Link) -> Result<(), RedisError> {
        let loads = redis_scripts::ALL.iter().map(|script| {
            let mut link = link.clone();
            async move { script.load_async(&mut link).await }
        });
        for loaded in futures_util::future::join_all(loads).await {
            match loaded {
                Ok(_) => {}
                Err(error) if self.needs_new_connection(&error) => return Err(error),
                Err(error) => {
                    tracing::warn!(
                        %error,
                        "vipps token store: could not load its scripts while connecting; \
                         each is loaded on its first use instead"
                    );
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// A new connection, its handshake done.
    async fn handshake(
        &self,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Link, RedisError> {
        let settings = || {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(response_timeout))
                // One attempt per operation: a store that is down must cost a refused
                // connection, not a backoff; the next operation tries again.
                .set_number_of_retries(0)
        };
        match self {
            Self::Node(client) => Ok(Link::Node(
                ConnectionManager::new_with_config(client.clone(), settings()).await?,
            )),
            Self::Cluster(client) => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(connect_timeout)
                    .set_response_timeout(response_timeout);
                Ok(Link::Cluster(
                    client.get_async_connection_with_config(config).await?,
                ))
            }
            Self::Sentinel(sentinel) => {
                let master = sentinel.lock().await.async_get_client().await?;
                Ok(Link::Node(
                    ConnectionManager::new_with_config(master, settings()).await?,
                ))
            }
        }
    }

    /// Whether `error` means this connection is done for and the next operation should
    /// make a new one. Server replies (MOVED, OOM, NOSCRIPT, a script error) are answers:
    /// the connection is fine. READONLY from a sentinel's master means it was demoted by
    /// a failover: ask the sentinels again.
    pub(super) fn needs_new_connection(&self, error: &RedisError) -> bool {
        let demoted = matches!(self, Self::Sentinel(_))
            && error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly);
        demoted
            || error.is_io_error()
            || error.is_connection_dropped()
            || error.is_unrecoverable_error()
            || error.kind() == redis::ErrorKind::ClusterConnectionNotFound
    }
}
