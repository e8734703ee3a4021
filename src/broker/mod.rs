//! A token broker (feature `broker`): an [`axum::Router`] that answers the four token
//! paths as the Access Token API does, so that a client in any language shares one cached,
//! single-flight, fleet-wide token by changing only its base URL. `vipps-token serve` runs
//! it; a Rust service can mount it.
//!
//! Who gets a token: whoever presents the keys it was fetched with (and the same
//! `Merchant-Serial-Number`, scope or resource, and path). The broker holds no secret of its
//! own: it keeps each token under a keyed hash of those values (a random key per process,
//! compared in constant time), and a store keeps it sealed under a key derived from them.
//! Keys the broker has not seen go upstream once; the upstream's refusal (400, 401, 403) goes
//! back as it was sent and is remembered for those keys alone, for the provider's wait after
//! failures ([`crate::RefreshPolicy::failure_backoff`]), so wrong keys cannot make the broker
//! ask the API on every request, nor ever reach the right keys' token. A malformed request
//! gets the real API's answer and goes nowhere. Only the four paths are served, only to the
//! one upstream, and no redirect is followed.
//!
//! Serve it (alone, or nested in your own `Router`) with [`serve`], which bounds what a
//! client can hold: a connection limit, header, body and write timeouts, a bounded
//! graceful stop. `axum::serve` has none of those.
//!
//! ```no_run
//! use vipps_access_token::{
//!     Client, Environment,
//!     broker::{Broker, ServeOptions, serve},
//! };
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = Broker::builder(Client::new(Environment::Test)?).build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8479").await?;
//! let stop = async { let _ = tokio::signal::ctrl_c().await; };
//! serve(listener, broker.router(), ServeOptions::default(), stop).await?;
//! # Ok(()) }
//! ```

// A plain comment, as the docs above are `vipps_access_token::broker`'s public ones:
// May import: client, credentials, error, flow, mock, provider, store, sync, time, wire.

mod caller;
mod caller_key;
mod registry;
mod reply;
mod request;
mod server;

use std::{fmt, sync::Arc, time::Duration};

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::{Request, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};

pub use server::{ServeOptions, serve, tls_config};

use crate::{
    client::Client,
    error::Error,
    mock::answers::{self, Endpoint},
    provider::{TokenProvider, refresh::RefreshPolicy},
};
use caller::Caller;
use caller_key::KeyHasher;
use registry::Registry;
use request::TokenRequest;

/// The largest request body read: a token request's body is a short form or JSON object.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// How long a client may take to send a request's body by default: the server's header
/// timeout does not cover it.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many sets of keys a broker keeps a token for by default.
pub const DEFAULT_MAX_KEYS: usize = 1024;

/// The store for one caller's keys.
#[cfg(feature = "store")]
type StoreFor = Arc<
    dyn Fn(&crate::client::source::TokenSource) -> Option<Arc<dyn crate::store::TokenStore>>
        + Send
        + Sync,
>;

/// Renders the `/metrics` page (the Prometheus text format).
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// A token broker: build one with [`Broker::builder`], serve [`Broker::router`].
#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

struct Shared {
    client: Client,
    policy: RefreshPolicy,
    #[cfg(feature = "store")]
    store: Option<StoreFor>,
    hasher: KeyHasher,
    /// The provider of each set of keys, whatever the merchant.
    providers: Registry<TokenProvider>,
    /// Each caller's handle: its merchant's provider, and its last refusal.
    callers: Registry<Caller>,
    metrics: Option<MetricsRender>,
    body_timeout: Duration,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("upstream", &self.shared.client.base_url())
            .field("keys", &self.shared.callers.len())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Broker`].
#[must_use]
pub struct BrokerBuilder {
    client: Client,
    policy: RefreshPolicy,
    #[cfg(feature = "store")]
    store: Option<StoreFor>,
    max_keys: usize,
    metrics: Option<MetricsRender>,
    body_timeout: Duration,
}

impl fmt::Debug for BrokerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerBuilder")
            .field("upstream", &self.client.base_url())
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl BrokerBuilder {
    /// When tokens are refreshed and how long failures are remembered.
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Shares every caller's tokens with every process using `store` (feature `store`):
    /// a Redis shared by a fleet of brokers, say.
    #[cfg(feature = "store")]
    pub fn store(mut self, store: Arc<dyn crate::store::TokenStore>) -> Self {
        self.store = Some(Arc::new(move |_: &crate::client::source::TokenSource| {
            Some(store.clone())
        }));
        self
    }

    /// Shares each caller's tokens through the store `store_for` gives for its keys, asked
    /// once per keys (feature `store`): a file cache sealed under a key derived from each
    /// caller's own secret ([`crate::store::SealingKeys::from_client_secret`]), so that
    /// nothing on disk opens without the keys. `None`: no store for those keys.
    #[cfg(feature = "store")]
    pub fn store_per_keys(
        mut self,
        store_for: impl Fn(
            &crate::client::source::TokenSource,
        ) -> Option<Arc<dyn crate::store::TokenStore>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.store = Some(Arc::new(store_for));
        self
    }

    /// How many sets of keys to keep a token for ([`DEFAULT_MAX_KEYS`] by default).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// How long a client may take to send a request's body ([`DEFAULT_BODY_TIMEOUT`] by
    /// default); past it the answer is a 408.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Serves `GET /metrics` with what `render` returns (a Prometheus recorder's render).
    /// The broker counts its requests through the `metrics` facade as
    /// `vipps_token_broker_requests_total{path, outcome}`.
    pub fn metrics(mut self, render: MetricsRender) -> Self {
        self.metrics = Some(render);
        self
    }

    /// The broker. Fails only when the system has no random source for the broker's key.
    pub fn build(self) -> Result<Broker, Error> {
        let hasher = KeyHasher::random().ok_or_else(|| {
            Error::invalid_input("broker", "the system's random source is unavailable")
        })?;
        Ok(Broker {
            shared: Arc::new(Shared {
                client: self.client,
                policy: self.policy,
                #[cfg(feature = "store")]
                store: self.store,
                hasher,
                providers: Registry::new(self.max_keys),
                callers: Registry::new(self.max_keys),
                metrics: self.metrics,
                body_timeout: self.body_timeout,
            }),
        })
    }
}

impl Broker {
    /// A broker that fetches through `client`: its base URL is the one upstream, and its
    /// HTTP client, timeouts and retries are used for every caller's keys.
    pub fn builder(client: Client) -> BrokerBuilder {
        BrokerBuilder {
            client,
            policy: RefreshPolicy::default(),
            #[cfg(feature = "store")]
            store: None,
            max_keys: DEFAULT_MAX_KEYS,
            metrics: None,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }

    /// The base URL tokens are fetched from.
    pub fn upstream(&self) -> &str {
        self.shared.client.base_url()
    }

    /// The router: `POST` on the four token paths, `GET /healthz`, `GET /metrics` (when
    /// configured), and a JSON 404 for anything else.
    pub fn router(&self) -> Router {
        let mut router = Router::new();
        for endpoint in Endpoint::ALL {
            router = router.route(
                endpoint.path(),
                post(
                    move |State(broker): State<Broker>, request: Request| async move {
                        broker.answer(endpoint, request).await
                    },
                )
                .fallback(not_found),
            );
        }
        router
            .route("/healthz", get(healthz).fallback(not_found))
            .route("/metrics", get(metrics).fallback(not_found))
            .fallback(not_found)
            .layer(axum::middleware::map_request(refuse_absolute_form))
            .with_state(self.clone())
    }

    /// The answer to one token request.
    async fn answer(&self, endpoint: Endpoint, request: Request) -> Response {
        let path = endpoint.path();
        let (parts, body) = request.into_parts();
        let read =
            tokio::time::timeout(self.shared.body_timeout, to_bytes(body, MAX_REQUEST_BYTES));
        let body = match read.await {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => return counted(path, "refused", too_large()),
            Err(_) => return counted(path, "refused", body_too_slow()),
        };
        let request = match request::read(endpoint, &parts.headers, &body) {
            Ok(request) => request,
            Err(answer) => return counted(path, "malformed", answer),
        };
        let Some(caller) = self.caller(&request) else {
            let answer = reply::error_json(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "a header value cannot be sent on to the Access Token API",
            );
            return counted(path, "malformed", answer);
        };
        match caller.provider.token().await {
            Ok(token) => counted(path, "token", reply::token(&token)),
            Err(error) => {
                let outcome = if error.is_credentials_rejected() {
                    "rejected"
                } else {
                    "failed"
                };
                tracing::warn!(path, %error, "the broker could not get a token");
                counted(path, outcome, caller.answer_failure(&error))
            }
        }
    }

    /// The caller of `request`'s keys and merchant, made the first time they are seen,
    /// on the provider of its keys (made the first time those are seen).
    fn caller(&self, request: &TokenRequest) -> Option<Arc<Caller>> {
        let shared = &self.shared;
        let identity = request.identity();
        let key = shared.hasher.key_of(&identity);
        shared.callers.get_or_make(key, || {
            let provider = self.provider(request, identity)?;
            let provider = match &request.merchant_serial_number {
                Some(msn) => provider.with_merchant_serial_number(msn).ok()?,
                None => (*provider).clone(),
            };
            Some(Caller::new(provider))
        })
    }

    /// The provider of `request`'s keys, whatever the merchant.
    fn provider(
        &self,
        request: &TokenRequest,
        mut identity: [&str; 7],
    ) -> Option<Arc<TokenProvider>> {
        let shared = &self.shared;
        identity[TokenRequest::MERCHANT] = "";
        let key = shared.hasher.key_of(&identity);
        shared.providers.get_or_make(key, || {
            let client = shared
                .client
                .for_caller(request.endpoint.path(), request.system.clone(), None)
                .ok()?;
            let builder = TokenProvider::builder(client, request.source.clone())
                .refresh_policy(shared.policy)
                .ok()?;
            #[cfg(feature = "store")]
            let builder = match shared.store.as_ref().and_then(|f| f(&request.source)) {
                Some(store) => builder.store(store),
                None => builder,
            };
            Some(builder.build())
        })
    }
}

/// `GET /healthz`: the broker answers.
async fn healthz() -> Response {
    reply::json_body(StatusCode::OK, r#"{"status":"ok"}"#)
}

/// `GET /metrics`, when a renderer is configured; otherwise a 404.
async fn metrics(State(broker): State<Broker>) -> Response {
    match &broker.shared.metrics {
        Some(render) => {
            let mut response = Response::new(Body::from(render()));
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        None => answers::not_found(),
    }
}

/// Anything else: the gateway's JSON 404.
async fn not_found() -> Response {
    counted("other", "not_found", answers::not_found())
}

/// Refuses a request target in absolute form (`POST http://elsewhere/...`) or authority
/// form (`CONNECT host:443`): a proxy's request, which the broker is not.
async fn refuse_absolute_form(request: Request) -> Result<Request, Response> {
    let uri = request.uri();
    if uri.scheme().is_none() && uri.authority().is_none() {
        return Ok(request);
    }
    let answer = reply::error_json(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "the broker is not a proxy: send the path only (origin form), not an absolute URL",
    );
    Err(counted("other", "refused", answer))
}

fn body_too_slow() -> Response {
    reply::error_json(
        StatusCode::REQUEST_TIMEOUT,
        "invalid_request",
        "the request body did not arrive in time",
    )
}

fn too_large() -> Response {
    reply::error_json(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request",
        "the request body is larger than a token request can be",
    )
}

/// Counts the answer by path and outcome (never by anything the caller sent).
fn counted(path: &'static str, outcome: &'static str, answer: Response) -> Response {
    metrics::counter!("vipps_token_broker_requests_total", "path" => path, "outcome" => outcome)
        .increment(1);
    answer
}
