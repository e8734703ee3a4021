//! [`VippsAuthMiddleware`]: authenticates calls to other Vipps MobilePay APIs from a
//! [`TokenProvider`], and retries once with a fresh token when one is refused with 401.

use reqwest::{Request, Response, StatusCode, header::HeaderMap};
use reqwest_middleware::{Middleware, Next};

use crate::TokenProvider;

/// Puts `Authorization: Bearer <token>`, the subscription key (standard and legacy flows),
/// `Merchant-Serial-Number` and the `Vipps-System-*` headers on every request.
///
/// `Authorization` and the subscription key always come from the token; the identifying
/// headers are added only where the request has none of its own. On a 401 the token is
/// invalidated and the request sent once more with a fresh one (if its body can be cloned).
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
/// let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(VippsAuthMiddleware::new(provider))
///     .build();
/// # let _ = http; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct VippsAuthMiddleware {
    provider: TokenProvider,
}

impl VippsAuthMiddleware {
    /// Authenticates with tokens from `provider`.
    pub fn new(provider: TokenProvider) -> Self {
        Self { provider }
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
