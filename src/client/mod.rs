//! The flows and their client: [`Client`] (here), its HTTP client and TLS (`http`, `tls`),
//! one file per flow (`standard`, `partner`, `legacy`), the one path every answer takes
//! (`exchange`), retries (`retry`), and [`TokenSource`](source::TokenSource), which picks
//! a flow. It asks for a token and keeps none: caching is `provider`'s.
//!
//! May import: credentials, environment, error, flow, wire.
//!
//! [`Client`]: where requests go, and the identifying headers every request carries.

mod exchange;
pub(crate) mod http;
pub(crate) mod legacy;
pub(crate) mod partner;
pub(crate) mod retry;
pub(crate) mod source;
mod standard;
mod tls;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use crate::{
    environment::Environment,
    error::Error,
    wire::{
        generated,
        headers::{CallerHeaders, MerchantSerialNumber, SystemHeaders},
        paths::PARTNER_TOKEN_PATH,
    },
};
use retry::RetryPolicy;

/// Time allowed to open a connection, by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole request, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for the Access Token API. Cheap to clone: clones share one HTTP client.
///
/// With the crate's own HTTP client (no [`ClientBuilder::http_client_builder`]), that
/// client is built at the first request: a process served from a token store builds none.
///
/// It keeps no idle connections: a connection is driven by the runtime that opened it, so
/// a pooled one would hang a later fetch from another runtime once its own runtime idles
/// (a `block_on` that returned, a runtime in a `static`). A token is fetched about once an
/// hour; a handshake per fetch costs nothing next to that.
///
/// ```
/// use vipps_access_token::{Client, Environment, SystemHeaders};
///
/// let client = Client::builder(Environment::Test)
///     .system_headers(SystemHeaders::new("acme", "3.1.2").with_plugin("acme-webshop", "4.5.6"))
///     .merchant_serial_number("123456")
///     .build()?;
/// # Ok::<(), vipps_access_token::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    api: Arc<OnceLock<generated::Client>>,
    /// The timeouts the crate's own HTTP client is built with, at the first request.
    timeouts: Option<Timeouts>,
    pub(crate) base_url: String,
    pub(crate) caller: CallerHeaders,
    pub(crate) partner_token_path: String,
    pub(crate) retry: RetryPolicy,
}

impl Client {
    /// A client for `environment` with the default settings.
    pub fn new(environment: Environment) -> Result<Self, Error> {
        Self::builder(environment).build()
    }

    /// Starts configuring a client for `environment`.
    pub fn builder(environment: Environment) -> ClientBuilder {
        ClientBuilder::with_base_url(environment.base_url())
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The same client, sending another `Merchant-Serial-Number`: for partners that act
    /// for many merchants with one set of keys.
    pub fn with_merchant_serial_number(&self, msn: &str) -> Result<Self, Error> {
        let mut client = self.clone();
        client.caller.merchant_serial_number = Some(MerchantSerialNumber::new(msn)?);
        Ok(client)
    }

    /// The same client (and HTTP client) sending `caller`'s headers, and partner requests
    /// to `partner_token_path`: the token broker's client for one caller. The headers are
    /// checked as [`ClientBuilder::build`] checks them.
    #[cfg(feature = "broker")]
    pub(crate) fn for_caller(
        &self,
        partner_token_path: &str,
        system: SystemHeaders,
        msn: Option<&str>,
    ) -> Result<Self, Error> {
        let mut client = self.clone();
        client.partner_token_path = partner_token_path.to_owned();
        client.caller.system = system;
        client.caller.merchant_serial_number = msn.map(MerchantSerialNumber::new).transpose()?;
        client
            .caller
            .insert_into(&mut reqwest::header::HeaderMap::new())?;
        Ok(client)
    }

    /// The generated client, building the HTTP client under it at the first call. Two
    /// callers racing may both build one; the first stored is kept.
    pub(crate) fn api(&self) -> Result<&generated::Client, Error> {
        if let Some(api) = self.api.get() {
            return Ok(api);
        }
        let mut builder = http::http_client_builder()?;
        if url::Url::parse(&self.base_url).is_ok_and(|url| is_loopback(&url)) {
            // A proxy for the machine (`HTTP_PROXY`) must not stand between a process and
            // a server on itself: a mock, a local gateway.
            builder = builder.no_proxy();
        }
        let http = token_http_client(builder, self.timeouts)?;
        Ok(self
            .api
            .get_or_init(|| generated::Client::new_with_client(&self.base_url, http)))
    }

    pub(crate) fn http(&self) -> Result<&reqwest::Client, Error> {
        use progenitor_client::ClientInfo;
        Ok(self.api()?.client())
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// Configures a [`Client`]. Every value is checked in [`ClientBuilder::build`], before
/// anything is sent.
///
/// The HTTP client it builds follows no redirect, keeps no idle connection and has the
/// timeouts set here, whether it starts from [`crate::http_client_builder`] (the default)
/// or from your own [`reqwest::ClientBuilder`] ([`Self::http_client_builder`]: proxies,
/// TLS roots). Not `Clone`, as a `reqwest::ClientBuilder` is not.
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    base_url: String,
    system: SystemHeaders,
    merchant_serial_number: Option<String>,
    partner_token_path: String,
    http: HttpSetup,
    timeouts: Option<Timeouts>,
    retry: RetryPolicy,
    allow_insecure_http: bool,
}

/// Where the HTTP client comes from.
enum HttpSetup {
    /// [`crate::http_client_builder`], with this crate's settings.
    Default,
    /// The caller's builder, with this crate's settings laid over it (boxed: it is large).
    Builder(Box<reqwest::ClientBuilder>),
    /// The caller's finished client, used as it is (deprecated).
    Client(reqwest::Client),
}

/// Not derived: a caller's builder or client may hold proxy credentials or headers.
impl std::fmt::Debug for HttpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Default => "Default",
            Self::Builder(_) => "Builder(reqwest::ClientBuilder { .. })",
            Self::Client(_) => "Client(reqwest::Client { .. })",
        })
    }
}

/// The connect and whole-request timeouts.
#[derive(Clone, Copy, Debug)]
struct Timeouts {
    connect: Duration,
    request: Duration,
}

impl Timeouts {
    const DEFAULT: Self = Self {
        connect: DEFAULT_CONNECT_TIMEOUT,
        request: DEFAULT_TIMEOUT,
    };
}

impl ClientBuilder {
    /// Starts configuring a client for any base URL: a proxy, a mock, a local server.
    pub fn with_base_url(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            system: SystemHeaders::default(),
            merchant_serial_number: None,
            partner_token_path: PARTNER_TOKEN_PATH.to_owned(),
            http: HttpSetup::Default,
            timeouts: Some(Timeouts::DEFAULT),
            retry: RetryPolicy::default(),
            allow_insecure_http: false,
        }
    }

    /// When to retry a transient failure ([`RetryPolicy::default`]: at most 3 attempts,
    /// about 10 s in all). Credentials rejected (400, 401, 403) are never retried.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Allows a plain `http` base URL on a host other than loopback. Off by default: the
    /// credentials travel in headers, readable by anyone on the path.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The `Vipps-System-*` headers to send on every call.
    pub fn system_headers(mut self, system: SystemHeaders) -> Self {
        self.system = system;
        self
    }

    /// The `Merchant-Serial-Number` header to send on every call.
    pub fn merchant_serial_number(mut self, msn: impl Into<String>) -> Self {
        self.merchant_serial_number = Some(msn.into());
        self
    }

    /// The partner token path, [`PARTNER_TOKEN_PATH`] by default. Set it to
    /// [`RENAMED_PARTNER_TOKEN_PATH`](crate::RENAMED_PARTNER_TOKEN_PATH) once the endpoint is renamed.
    pub fn partner_token_path(mut self, path: impl Into<String>) -> Self {
        self.partner_token_path = path.into();
        self
    }

    /// Time allowed to open a connection ([`DEFAULT_CONNECT_TIMEOUT`] by default).
    /// Ignored by the deprecated [`Self::http_client`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.get_or_insert(Timeouts::DEFAULT).connect = timeout;
        self
    }

    /// Time allowed for a whole request ([`DEFAULT_TIMEOUT`] by default).
    /// Ignored by the deprecated [`Self::http_client`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.get_or_insert(Timeouts::DEFAULT).request = timeout;
        self
    }

    /// No connect or request timeout at all, until [`Self::connect_timeout`] or
    /// [`Self::timeout`] sets one again. For tests on tokio's paused clock with a server
    /// on another thread (wiremock, a process): there a pending timer fires at once while
    /// the runtime waits for the answer. Not for production: a request could hang.
    pub fn without_timeouts(mut self) -> Self {
        self.timeouts = None;
        self
    }

    /// Builds the HTTP client from your own `reqwest::ClientBuilder` (proxies, TLS roots,
    /// default headers). Start it from [`crate::http_client_builder`], which sets up TLS.
    /// [`Self::build`] then sets on it what keeps the credentials and the caller safe,
    /// whatever it said: no redirects followed (the credentials travel in headers and must
    /// not reach another host), no idle connections kept (see [`Client`]), and the
    /// timeouts of [`Self::connect_timeout`] and [`Self::timeout`].
    ///
    /// ```
    /// use vipps_access_token::{ClientBuilder, http_client_builder};
    ///
    /// let client = ClientBuilder::with_base_url("https://apitest.vipps.no")
    ///     .http_client_builder(http_client_builder()?.https_only(true))
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), vipps_access_token::Error>(())
    /// ```
    pub fn http_client_builder(mut self, http: reqwest::ClientBuilder) -> Self {
        self.http = HttpSetup::Builder(Box::new(http));
        self
    }

    /// Uses your own finished `reqwest::Client`, as it is: its redirect policy, its pool
    /// and its timeouts are its own, and none of this builder's timeouts apply.
    #[deprecated(
        note = "a finished reqwest::Client may follow redirects (sending the credentials to \
                another host) and keeps idle connections (which hang fetches from other \
                runtimes): pass its reqwest::ClientBuilder to \
                ClientBuilder::http_client_builder instead, and use \
                ClientBuilder::without_timeouts for tests on a paused clock"
    )]
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = HttpSetup::Client(http);
        self
    }

    /// Checks every value and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let base_url = checked_base_url(&self.base_url, self.allow_insecure_http)?;
        self.system.validate()?;
        let merchant_serial_number = self
            .merchant_serial_number
            .as_deref()
            .map(MerchantSerialNumber::new)
            .transpose()?;
        if !self.partner_token_path.starts_with('/') || self.partner_token_path.contains(['?', '#'])
        {
            return Err(Error::invalid_input(
                "partner_token_path",
                "must be a path starting with `/`, such as /authentication/v1/token",
            ));
        }
        // The crate's own HTTP client waits for the first request; the caller's is built
        // now, so that its settings are checked here.
        let api = Arc::new(OnceLock::new());
        let http = match self.http {
            HttpSetup::Default => None,
            HttpSetup::Builder(builder) => Some(token_http_client(*builder, self.timeouts)?),
            HttpSetup::Client(http) => Some(http),
        };
        if let Some(http) = http {
            let _ = api.set(generated::Client::new_with_client(&base_url, http));
        }
        Ok(Client {
            api,
            timeouts: self.timeouts,
            base_url,
            caller: CallerHeaders {
                merchant_serial_number,
                system: self.system,
            },
            partner_token_path: self.partner_token_path,
            retry: self.retry,
        })
    }
}

/// The token client from `builder`: it never follows a redirect (credentials travel in
/// headers and must not reach another host), keeps no idle connection (one opened on a
/// runtime that goes idle would hang the next fetch from another runtime) and gives up
/// after the given times.
fn token_http_client(
    builder: reqwest::ClientBuilder,
    timeouts: Option<Timeouts>,
) -> Result<reqwest::Client, Error> {
    let mut builder = builder
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        // Nothing is idle, so no idle timer either (one timer less on a paused clock).
        .pool_idle_timeout(None);
    if let Some(timeouts) = timeouts {
        builder = builder
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request);
    }
    builder.build().map_err(|e| {
        Error::invalid_input(
            "http_client",
            format!(
                "could not be set up ({}): check the TLS roots and any proxy settings",
                // A URL may carry a proxy's credentials.
                e.without_url()
            ),
        )
    })
}

/// Parses the base URL and drops a trailing slash; it must be https (or http on loopback,
/// or anywhere when allowed) with no query, fragment or credentials.
fn checked_base_url(base_url: &str, allow_insecure_http: bool) -> Result<String, Error> {
    let url = url::Url::parse(base_url).map_err(|e| {
        Error::invalid_input(
            "base_url",
            format!("is not a URL ({e}); use for example https://apitest.vipps.no"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Error::invalid_input(
            "base_url",
            "must be an http or https URL with a host",
        ));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(Error::invalid_input(
            "base_url",
            "must not carry a query, a fragment or credentials",
        ));
    }
    if url.scheme() == "http" && !is_loopback(&url) && !allow_insecure_http {
        return Err(Error::invalid_input(
            "base_url",
            "must use https: the credentials travel in headers (plain http is accepted on \
             loopback, or anywhere with ClientBuilder::allow_insecure_http)",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Whether `url`'s host is this machine: `localhost` or a loopback address.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crates_own_http_client_waits_for_the_first_request() {
        let client = Client::new(Environment::Test).unwrap();
        assert!(client.api.get().is_none(), "built with the client");
        let clone = client.clone();
        client.http().unwrap();
        assert!(clone.api.get().is_some(), "clones share the one built");
        assert!(
            clone
                .with_merchant_serial_number("123456")
                .unwrap()
                .api
                .get()
                .is_some(),
            "and so does a client for another merchant"
        );
    }

    #[test]
    fn a_callers_http_client_builder_is_built_and_checked_at_once() {
        let client = Client::builder(Environment::Test)
            .http_client_builder(http::http_client_builder().unwrap())
            .build()
            .unwrap();
        assert!(client.api.get().is_some());
    }
}
