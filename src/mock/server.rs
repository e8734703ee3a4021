//! [`MockServer`]: a running mock, and the handle to steer and stop it.

use std::{
    fmt, io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use serde_json::{Map, Value};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use super::{
    config::MockServerBuilder, endpoint::Endpoint, fault::Fault, jwt::Signer, routes, state::Shared,
};
use crate::{
    client::ClientBuilder,
    credentials::{PartnerCredentials, StandardCredentials},
};

/// A mock of the Access Token API, serving on its own port until dropped or
/// [shut down](Self::shutdown).
///
/// ```
/// use vipps_access_token::mock::MockServer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mock = MockServer::start().await?;
/// let client = vipps_access_token::ClientBuilder::with_base_url(mock.base_url()).build()?;
/// let token = client.partner_token(&mock.partner_credentials(), None).await?;
/// assert_eq!(token.expires_in().as_secs(), 900);
/// # Ok(()) }
/// ```
pub struct MockServer {
    addr: SocketAddr,
    base_url: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl MockServer {
    /// Starts a mock on `127.0.0.1` on a random free port, accepting the documented
    /// example keys and issuing test-environment (1-hour) tokens.
    pub async fn start() -> io::Result<Self> {
        MockServerBuilder::default().start().await
    }

    /// Starts configuring a mock: other keys, lifetimes, a fixed port.
    pub fn builder() -> MockServerBuilder {
        MockServerBuilder::default()
    }

    async fn start_with(config: MockServerBuilder) -> io::Result<Self> {
        let key = match &config.signing_key {
            Some(key) => key.expose_secret().as_bytes().to_vec(),
            None => Signer::random_key(),
        };
        let signer = Signer::new(&key).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the signing key is empty")
        })?;
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{}", reachable(addr));
        let (stop, stopping) = watch::channel(false);
        let shared = Arc::new(Shared {
            keys: config.keys,
            token_lifetime: config.token_lifetime.as_secs(),
            partner_token_lifetime: config.partner_token_lifetime.as_secs(),
            signer,
            issuer: base_url.clone(),
            faults: Default::default(),
            stopping: stopping.clone(),
        });
        let app = routes::router(Arc::clone(&shared));
        let mut stopped = stopping;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // An error means the handle is gone: stop as well.
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Self {
            addr,
            base_url,
            shared,
            stop,
            task: Some(task),
        })
    }

    /// The base URL to give a client, such as `http://127.0.0.1:41234` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A [`ClientBuilder`] pointed at the mock; the same as
    /// `ClientBuilder::with_base_url(mock.base_url())`.
    pub fn client_builder(&self) -> ClientBuilder {
        ClientBuilder::with_base_url(&self.base_url)
    }

    /// The keys the mock accepts, for the standard and legacy flows.
    pub fn standard_credentials(&self) -> StandardCredentials {
        let keys = &self.shared.keys;
        StandardCredentials {
            client_id: keys.client_id.clone(),
            client_secret: keys.client_secret.clone(),
            subscription_key: keys.subscription_key.clone(),
        }
    }

    /// The keys the mock accepts, for the partner flow.
    pub fn partner_credentials(&self) -> PartnerCredentials {
        let keys = &self.shared.keys;
        PartnerCredentials {
            client_id: keys.client_id.clone(),
            client_secret: keys.client_secret.clone(),
        }
    }

    /// Answers the next `times` token requests, on any of the four paths, with `status`
    /// and `body` (sent as JSON when it parses as JSON, as text otherwise) instead of
    /// checking them. A `status` outside 100 to 999 is sent as 500.
    pub fn fail_next(&self, times: u32, status: u16, body: impl Into<String>) {
        self.shared
            .faults
            .fail(Fault::new(status, body.into()), Some(times.into()));
    }

    /// Answers every token request with `status` and `body` until [`Self::clear_faults`].
    pub fn fail_all(&self, status: u16, body: impl Into<String>) {
        self.shared
            .faults
            .fail(Fault::new(status, body.into()), None);
    }

    /// Delays every answer by `delay` (zero: no delay). The delay is measured on tokio's
    /// clock, so tests with paused time do not wait for it.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.faults.set_delay(delay);
    }

    /// Drops any canned answer and delay: requests are checked and answered again.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// How many requests reached the mock, on any path (canned answers included).
    pub fn request_count(&self) -> u64 {
        self.shared.faults.total()
    }

    /// How many requests reached `path` (such as `/accesstoken/get`): 0 for a path the
    /// mock does not serve.
    pub fn requests_to(&self, path: &str) -> u64 {
        Endpoint::at(path).map_or(0, |endpoint| self.shared.faults.to(endpoint))
    }

    /// The claims of `token` if this mock signed it, without checking its times.
    pub fn verify_token(&self, token: &str) -> Option<Map<String, Value>> {
        self.shared.signer.verify(token)
    }

    /// Stops accepting connections, finishes the requests in progress (cutting delays
    /// short) and waits until the server has stopped. Dropping the mock stops it too,
    /// without waiting.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.stop.send_replace(true);
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl MockServerBuilder {
    /// Binds the address and starts serving on the current tokio runtime.
    ///
    /// Fails when the address cannot be bound, or when the signing key is empty.
    pub async fn start(self) -> io::Result<MockServer> {
        MockServer::start_with(self).await
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("base_url", &self.base_url)
            .field("client_id", &self.shared.keys.client_id)
            .finish_non_exhaustive()
    }
}

/// The address to connect to: loopback when listening on every address.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}
