//! [`http_client_builder`]: the one place an HTTP client is configured, so that every client
//! the crate, its CLI, its tests and its users build has a TLS provider.
//!
//! The crate enables reqwest's `rustls-no-provider`: a plain `reqwest::Client::builder()`
//! in a program that installs no rustls provider panics on its first https request ("No
//! rustls crypto provider is configured"). Start from this builder instead.

use crate::error::Error;

/// A `reqwest::ClientBuilder` with this crate's TLS settings (rustls with `ring`, the
/// platform's trust store, TLS 1.2 and 1.3), a `User-Agent`, and **no redirects followed**.
///
/// Use it for any `reqwest::Client` in a program that uses this crate: it works whether or
/// not a process-wide rustls provider is installed.
///
/// For the token client, add your proxies or TLS roots and hand the builder, unbuilt, to
/// [`ClientBuilder::http_client_builder`](crate::ClientBuilder::http_client_builder): it
/// sets the redirect policy, the pool (no idle connections) and the timeouts itself. For
/// any other client, add your own timeouts and pool settings before `build()`; if you
/// re-enable redirects, the middleware's client has its own policy
/// (`VippsAuthMiddleware::client_from`).
///
/// ```
/// use vipps_access_token::{ClientBuilder, Environment, http_client_builder};
///
/// // The token client, with settings of your own (here: no system proxy):
/// let client = ClientBuilder::with_base_url(Environment::Test.base_url())
///     .http_client_builder(http_client_builder()?.no_proxy())
///     .build()?;
/// // Any other client:
/// let http = http_client_builder()?
///     .timeout(std::time::Duration::from_secs(5))
///     .build()
///     .expect("no further settings that can fail");
/// # let _ = (client, http);
/// # Ok::<(), vipps_access_token::Error>(())
/// ```
// The one sanctioned plain builder: clippy.toml disallows it everywhere else.
#[allow(clippy::disallowed_methods)]
pub fn http_client_builder() -> Result<reqwest::ClientBuilder, Error> {
    let tls = super::tls::ring_client_config().map_err(|e| {
        Error::invalid_input(
            "http_client",
            format!("TLS could not be set up ({e}): are the system's CA certificates installed?"),
        )
    })?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        )))
}
