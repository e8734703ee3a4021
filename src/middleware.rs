//! [`VippsAuthMiddleware`]: authenticates calls to other Vipps MobilePay APIs from a
//! [`TokenProvider`], and retries once with a fresh token when one is refused with 401.
//! Only requests to the origins it is meant for are touched: a client shared with other
//! hosts never hands them a Vipps credential.

use reqwest::{Request, Response, StatusCode, header::HeaderMap, redirect};
use reqwest_middleware::{Middleware, Next};
use url::{Origin, Url};

use crate::{client::is_loopback, error::Error, provider::TokenProvider};

/// Puts `Authorization: Bearer <token>`, the subscription key (standard and legacy flows),
/// `Merchant-Serial-Number` and the `Vipps-System-*` headers on requests to the Vipps
/// MobilePay origin, and on nothing else.
///
/// The origin (scheme, host and port) is the provider's base URL: `https://api.vipps.no`,
/// `https://apitest.vipps.no`, or a custom or mock URL. Add others with
/// [`Self::with_origin`]. A request to any other origin, including plain `http` to a Vipps
/// host, passes through untouched: no header, no token fetched, no retry.
///
/// `Authorization` and the subscription key always come from the token; the identifying
/// headers are added only where the request has none of its own. On a 401 the token is
/// invalidated and the request sent once more with a fresh one (if its body can be cloned).
///
/// reqwest's default redirect policy drops `Authorization` when a redirect leaves the host,
/// but keeps `Ocp-Apim-Subscription-Key` and the other headers: build the client with
/// [`Self::redirect_policy`], which refuses redirects away from an authenticated origin.
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
/// let auth = VippsAuthMiddleware::new(provider);
/// let http = reqwest::Client::builder()
///     .redirect(auth.redirect_policy())
///     .build()
///     .expect("a reqwest client");
/// let http = reqwest_middleware::ClientBuilder::new(http).with(auth).build();
/// # let _ = http; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct VippsAuthMiddleware {
    provider: TokenProvider,
    origins: Vec<Origin>,
}

impl VippsAuthMiddleware {
    /// Authenticates requests to the origin of `provider`'s base URL with its tokens.
    pub fn new(provider: TokenProvider) -> Self {
        let origins = Url::parse(provider.client().base_url())
            .map(|url| vec![url.origin()])
            .unwrap_or_default();
        Self { provider, origins }
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

    /// A redirect policy for the `reqwest::Client` under this middleware: redirects within
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
        let token = self
            .provider
            .token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let response = next
            .clone()
            .run(authenticated(request, token.headers()), extensions)
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        tracing::debug!("a Vipps MobilePay API answered 401: retrying once with a fresh token");
        self.provider.invalidate_token(&token);
        let Some(retry) = retry else {
            return Ok(response);
        };
        let token = self
            .provider
            .token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        next.run(authenticated(retry, token.headers()), extensions)
            .await
    }
}

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
