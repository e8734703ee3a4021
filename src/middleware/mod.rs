//! The middleware: [`VippsAuthMiddleware`] (here), and whether an API's 401 is about the
//! token (`unauthorized`). It gets its tokens from `provider` and its HTTP client from
//! `client`.
//!
//! May import: client, error, provider.
//!
//! [`VippsAuthMiddleware`]: authenticates calls to other Vipps MobilePay APIs from a
//! [`TokenProvider`], and retries once with a fresh token when a 401 may be about the token.
//! Only requests to the origins it is meant for are touched: a client shared with other
//! hosts never hands them a Vipps credential.

mod unauthorized;

use std::time::Duration;

use reqwest::{Request, Response, StatusCode, header::HeaderMap, redirect};
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};
use url::{Origin, Url};

use crate::{client::is_loopback, error::Error, provider::TokenProvider};
use unauthorized::{Unauthorized, classify};

/// Puts `Authorization: Bearer <token>`, the subscription key (standard and legacy flows),
/// `Merchant-Serial-Number` and the `Vipps-System-*` headers on requests to the Vipps
/// MobilePay origin, and on nothing else.
///
/// **Build the client with [`Self::client`] (or [`Self::client_from`]).** The middleware
/// sees only the first request of a redirect chain: reqwest follows redirects below it, and
/// its default policy carries `Ocp-Apim-Subscription-Key`, `Merchant-Serial-Number` and the
/// other custom headers to wherever a 3xx points, another host included (it drops only
/// `Authorization`). Put on a client of your own without [`Self::redirect_policy`], this
/// middleware **cannot stop a redirect from handing the subscription key to a foreign
/// origin**. `client` and `client_from` set that policy, which refuses redirects away from
/// an authenticated origin.
///
/// The origin (scheme, host and port) is the provider's base URL: `https://api.vipps.no`,
/// `https://apitest.vipps.no`, or a custom or mock URL. Add others with
/// [`Self::with_origin`]. A request to any other origin, including plain `http` to a Vipps
/// host, passes through untouched: no header, no token fetched, no retry.
///
/// `Authorization` and the subscription key always come from the token; the identifying
/// headers are added only where the request has none of its own.
///
/// A 401 is retried once with a fresh token (if the request's body can be cloned) only
/// when it may be about the token: see [`TokenProvider::token_after_rejection`]. A 401 from
/// the API gateway about the subscription key, or with a `WWW-Authenticate` challenge
/// other than `invalid_token`, is returned as is, and no token is fetched; forced
/// refreshes are at most one per keys and endpoint (whatever the merchant) per
/// [`crate::RefreshPolicy::forced_refresh_interval`]. When no newer token can be had (the
/// interval runs, or the forced refresh failed), the API's own 401 is returned; the token it
/// refused stays in use for other calls until its replacement exists. The refused call
/// waits for a forced refresh at most [`Self::DEFAULT_REFRESH_WAIT`] (see
/// [`Self::with_refresh_wait`]), or the request's own timeout if shorter, and then gets the
/// API's 401 while the refresh goes on in the background: a hanging token endpoint does
/// not hold it for the token client's whole timeout and retries.
///
/// ```no_run
/// use vipps_access_token::{Client, Environment, StandardCredentials, TokenProvider, TokenSource, VippsAuthMiddleware};
///
/// # fn run() -> Result<(), vipps_access_token::Error> {
/// let credentials = StandardCredentials::new(
///     "fb492b5e-7907-4d83-ba20-c7fb60ca35de",
///     "Y8Kteew6GE2ZmeycEt6egg==",
///     "0f14ebcab0ec4b29ae0cb90d91b4a84a",
/// );
/// let provider = TokenProvider::new(Client::new(Environment::Test)?, TokenSource::Standard(credentials));
/// let http = VippsAuthMiddleware::new(provider).client()?;
/// # let _ = http; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct VippsAuthMiddleware {
    provider: TokenProvider,
    origins: Vec<Origin>,
    refresh_wait: Duration,
}

impl VippsAuthMiddleware {
    /// How long a call refused with a 401 waits, by default, for the fresh token a forced
    /// refresh is fetching before it returns the API's 401: 5 s, enough for a token
    /// endpoint that answers, short of the token client's whole budget (a 30 s timeout and
    /// retries by default) when it hangs.
    pub const DEFAULT_REFRESH_WAIT: Duration = Duration::from_secs(5);

    /// Authenticates requests to the origin of `provider`'s base URL with its tokens.
    pub fn new(provider: TokenProvider) -> Self {
        let origins = Url::parse(provider.client().base_url())
            .map(|url| vec![url.origin()])
            .unwrap_or_default();
        Self {
            provider,
            origins,
            refresh_wait: Self::DEFAULT_REFRESH_WAIT,
        }
    }

    /// How long a call refused with a 401 waits for a forced refresh's token (default
    /// [`Self::DEFAULT_REFRESH_WAIT`]) before it returns the API's own 401; the refresh
    /// goes on in the background and later calls get its token. A request with a shorter
    /// timeout of its own (`RequestBuilder::timeout`) waits at most that long. `Duration::ZERO`
    /// retries only with a token that is ready at once (another call's refresh).
    ///
    /// `Duration::MAX` waits for the refresh to end, with no timer: for tests on tokio's
    /// paused clock whose token endpoint runs on another thread (wiremock), where the
    /// clock would jump to the wait's end while the refresh's answer is on its way.
    pub fn with_refresh_wait(mut self, wait: Duration) -> Self {
        self.refresh_wait = wait;
        self
    }

    /// Authenticates requests to `origin` too (for example `https://api.vipps.no` when the
    /// provider's base URL is a proxy). It must be `https`, or `http` on loopback.
    pub fn with_origin(mut self, origin: &str) -> Result<Self, Error> {
        let url = Url::parse(origin).map_err(|e| {
            Error::invalid_input(
                "origin",
                format!("is not a URL ({e}); use for example https://api.vipps.no"),
            )
        })?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            _ => {
                return Err(Error::invalid_input(
                    "origin",
                    "must be https (or http on loopback): the token travels in headers",
                ));
            }
        }
        self.origins.push(url.origin());
        Ok(self)
    }

    /// An authenticated client: this middleware on a `reqwest::Client` from
    /// [`crate::http_client_builder`], with [`Self::redirect_policy`] and no idle
    /// connections kept. The safe way to call other Vipps MobilePay APIs.
    ///
    /// **No keep-alive, by design.** hyper drives a pooled connection on the runtime that
    /// opened it: a client kept across runtimes (in a `static`, behind a sync wrapper,
    /// shared by `#[tokio::test]`s) would pick up a connection whose runtime went idle,
    /// and that call would hang (here: for ever, as this client has no timeout). So every
    /// call opens its own connection, as the token client's fetches do: one TCP and TLS
    /// handshake a call: on loopback without TLS, about 0.9 ms a call instead of 0.4 ms
    /// (debug build); over the internet with TLS, a round trip or two more, small against a
    /// payment API's own latency. Add a timeout with [`Self::client_from`].
    ///
    /// A service that runs **one** runtime for its whole life and wants keep-alive can
    /// build the client itself: a `reqwest::Client` from [`crate::http_client_builder`]
    /// with its pool settings and `.redirect(middleware.redirect_policy())`, then
    /// `reqwest_middleware::ClientBuilder::new(http).with(middleware).build()`. Only that
    /// runtime may then use it.
    pub fn client(self) -> Result<ClientWithMiddleware, Error> {
        self.client_from(crate::client::http::http_client_builder()?)
    }

    /// Like [`Self::client`], on your own `reqwest::ClientBuilder` (timeouts, proxies, TLS
    /// roots): its redirect policy is replaced by [`Self::redirect_policy`], and its pool
    /// by one that keeps no idle connections (`pool_max_idle_per_host(0)`: a connection
    /// pooled by a runtime that went idle hangs a call from another runtime until the
    /// timeout; see [`Self::client`], which also says how to keep connections alive on one
    /// runtime). Start it from [`crate::http_client_builder`], which sets the TLS provider.
    /// Its timeout applies to each exchange with the API; a 401's wait for a fresh token
    /// is [`Self::with_refresh_wait`].
    pub fn client_from(self, http: reqwest::ClientBuilder) -> Result<ClientWithMiddleware, Error> {
        let http = http
            .redirect(self.redirect_policy())
            .pool_max_idle_per_host(0)
            // Nothing is idle, so no idle timer either.
            .pool_idle_timeout(None)
            .build()
            .map_err(|e| {
                Error::invalid_input(
                    "http_client",
                    format!(
                        "the reqwest client could not be built ({}): check its TLS roots and \
                         proxy settings",
                        // A URL may carry a proxy's credentials.
                        e.without_url()
                    ),
                )
            })?;
        Ok(reqwest_middleware::ClientBuilder::new(http)
            .with(self)
            .build())
    }

    /// A redirect policy for the `reqwest::Client` under this middleware (set by
    /// [`Self::client`] and [`Self::client_from`]): redirects within
    /// an origin, or between origins that are not authenticated, are followed as reqwest's
    /// default does (at most 10); a redirect from an authenticated origin to another origin
    /// is not followed, and the 3xx response is returned as it came.
    pub fn redirect_policy(&self) -> redirect::Policy {
        let origins = self.origins.clone();
        redirect::Policy::custom(move |attempt| {
            let from = attempt.previous().last().map(Url::origin);
            let to = attempt.url().origin();
            if attempt.previous().len() > 10 {
                attempt.error("too many redirects")
            } else if from.is_some_and(|from| from != to && origins.contains(&from)) {
                attempt.stop()
            } else {
                attempt.follow()
            }
        })
    }

    fn authenticates(&self, request: &Request) -> bool {
        self.origins.contains(&request.url().origin())
    }
}

#[async_trait::async_trait]
impl Middleware for VippsAuthMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if !self.authenticates(&request) {
            return next.run(request, extensions).await;
        }
        let retry = request.try_clone();
        let timeout = request.timeout().copied();
        // The request's own timeout bounds the wait for a token too; the fetch goes on.
        let token = match timeout {
            Some(limit) => tokio::time::timeout(limit, self.provider.token())
                .await
                .map_err(|_| reqwest_middleware::Error::middleware(TokenWaitTimedOut(limit)))?,
            None => self.provider.token().await,
        }
        .map_err(reqwest_middleware::Error::middleware)?;
        let response = next
            .clone()
            .run(authenticated(request, token.headers()), extensions)
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let (response, verdict) = classify(response).await?;
        if let Unauthorized::NotTheToken(reason) = verdict {
            tracing::debug!(
                outcome = "not_token",
                reason,
                "a Vipps MobilePay API answered 401, not about the token: returned as is"
            );
            crate::provider::metrics::unauthorized(self.provider.flow_name(), "not_token");
            return Ok(response);
        }
        // `None` when nothing newer can be had now, or not within the wait: the API's own
        // 401 goes back. A forced refresh runs as a task of its own and goes on. A request
        // that cannot be sent again (its body is a stream) only starts the refresh.
        let wait = match (&retry, timeout) {
            (None, _) => Duration::ZERO,
            (Some(_), Some(timeout)) => self.refresh_wait.min(timeout),
            (Some(_), None) => self.refresh_wait,
        };
        let rejection = self.provider.token_after_rejection(&token);
        let fresh = if wait == Duration::MAX {
            // No bound, and no timer for a paused clock to jump to.
            rejection.await
        } else {
            tokio::time::timeout(wait, rejection).await.unwrap_or_else(|_| {
                if retry.is_some() {
                    tracing::warn!(
                        outcome = "refresh_wait",
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "no fresh vipps access token within the wait after a 401: returning the 401, the refresh goes on (is the token endpoint slow? see VippsAuthMiddleware::with_refresh_wait)"
                    );
                }
                None
            })
        };
        match (fresh, retry) {
            (Some(fresh), Some(retry)) => {
                next.run(authenticated(retry, fresh.headers()), extensions)
                    .await
            }
            _ => Ok(response),
        }
    }
}

/// A request's own timeout (`RequestBuilder::timeout`) ran out while the middleware waited
/// for a token: the token endpoint is slow or down. The fetch goes on, so a later call may
/// find the token cached; check the token endpoint, or give the request more time.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request's timeout ({0:?}) ran out while waiting for a vipps access token: is the token endpoint slow or down?"
)]
pub struct TokenWaitTimedOut(pub Duration);

/// The headers of `token` on `request`: credentials always, identifying headers if absent.
fn authenticated(mut request: Request, token_headers: &HeaderMap) -> Request {
    let headers = request.headers_mut();
    for (name, value) in token_headers {
        let credential =
            name == reqwest::header::AUTHORIZATION || name == "ocp-apim-subscription-key";
        if credential {
            headers.insert(name.clone(), value.clone());
        } else {
            headers.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
    request
}
