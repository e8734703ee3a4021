//! [`MockServerBuilder`]: the keys the mock accepts, token lifetimes, where it listens.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use crate::{
    credentials::{ClientId, ClientSecret, SubscriptionKey, TokenSecret},
    environment::Environment,
};

use super::keys::Keys;

/// The documented example `client_id`, accepted by default.
pub const DEFAULT_CLIENT_ID: &str = "fb492b5e-7907-4d83-ba20-c7fb60ca35de";
/// The documented example `client_secret`, accepted by default.
pub const DEFAULT_CLIENT_SECRET: &str = "Y8Kteew6GE2ZmeycEt6egg==";
/// The documented example `Ocp-Apim-Subscription-Key`, accepted by default.
pub const DEFAULT_SUBSCRIPTION_KEY: &str = "0f14ebcab0ec4b29ae0cb90d91b4a84a";

/// Lifetime of a standard or legacy token in the test environment: 1 hour (the default).
pub const TEST_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Lifetime of a standard or legacy token in production: 24 hours.
pub const PRODUCTION_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// Lifetime of a partner token: 15 minutes.
pub const PARTNER_TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// Configures a [`MockServer`](super::MockServer). `Debug` never shows a secret.
///
/// ```
/// use std::time::Duration;
/// use vipps_access_token::{Environment, mock::MockServer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let mock = MockServer::builder()
///     .credentials("my-client-id", "my-client-secret", "my-subscription-key")
///     .environment(Environment::Production) // 24-hour tokens
///     .partner_token_lifetime(Duration::from_secs(60))
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct MockServerBuilder {
    pub(super) addr: SocketAddr,
    pub(super) keys: Keys,
    pub(super) token_lifetime: Duration,
    pub(super) partner_token_lifetime: Duration,
    pub(super) signing_key: Option<TokenSecret>,
}

impl Default for MockServerBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            keys: Keys {
                client_id: ClientId::new(DEFAULT_CLIENT_ID),
                client_secret: ClientSecret::new(DEFAULT_CLIENT_SECRET),
                subscription_key: SubscriptionKey::new(DEFAULT_SUBSCRIPTION_KEY),
            },
            token_lifetime: TEST_TOKEN_LIFETIME,
            partner_token_lifetime: PARTNER_TOKEN_LIFETIME,
            signing_key: None,
        }
    }
}

impl MockServerBuilder {
    /// The address to listen on; `127.0.0.1` on a random free port by default.
    /// Anything but a loopback address exposes the mock to the network.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Listens on `127.0.0.1:port` (`0` for a random free port).
    pub fn port(self, port: u16) -> Self {
        self.addr(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    /// The keys to accept instead of the documented example keys. The partner paths
    /// accept `client_id` and `client_secret` as Basic credentials.
    pub fn credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        subscription_key: impl Into<String>,
    ) -> Self {
        self.keys = Keys {
            client_id: ClientId::new(client_id),
            client_secret: ClientSecret::new(client_secret),
            subscription_key: SubscriptionKey::new(subscription_key),
        };
        self
    }

    /// Issues standard and legacy tokens that last as long as in `environment`:
    /// [`TEST_TOKEN_LIFETIME`] (the default) or [`PRODUCTION_TOKEN_LIFETIME`].
    pub fn environment(self, environment: Environment) -> Self {
        self.token_lifetime(match environment {
            Environment::Test => TEST_TOKEN_LIFETIME,
            Environment::Production => PRODUCTION_TOKEN_LIFETIME,
        })
    }

    /// The lifetime of standard and legacy tokens, in whole seconds.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// The lifetime of partner tokens, in whole seconds; [`PARTNER_TOKEN_LIFETIME`] by default.
    pub fn partner_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.partner_token_lifetime = lifetime;
        self
    }

    /// The HS256 key tokens are signed with; a random key by default. Set it to check
    /// the mock's tokens with your own JWT library.
    pub fn signing_key(mut self, key: impl Into<String>) -> Self {
        self.signing_key = Some(TokenSecret::new(key));
        self
    }
}
