//! An embedded mock of the Access Token API for tests (feature `mock`).
//!
//! [`MockServer`] serves the four token paths on loopback and behaves as the docs say:
//! `POST /accesstoken/get` and the legacy `POST /api/v2/accesstoken/jwt` behind an API
//! gateway that checks `Ocp-Apim-Subscription-Key`, with Azure AD's error bodies and
//! numbers sent as strings; `POST /miami/v1/token` and `POST /authentication/v1/token` as
//! plain OAuth 2.0 client credentials. Tokens are real JWTs (HS256, signed with a key of
//! the server's own) whose `iat`, `nbf` and `exp` agree with the response's fields.
//!
//! It accepts one set of keys, by default the documented example keys
//! ([`DEFAULT_CLIENT_ID`], [`DEFAULT_CLIENT_SECRET`], [`DEFAULT_SUBSCRIPTION_KEY`]), and
//! can fail or delay on demand ([`MockServer::fail_next`], [`MockServer::set_delay`]).
//!
//! ```
//! use vipps_access_token::mock::MockServer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = MockServer::start().await?;
//! let client = mock.client_builder().build()?;
//! let token = client.standard_token(&mock.standard_credentials()).await?;
//! assert!(mock.verify_token(token.secret().expose_secret()).is_some());
//!
//! // One 503, which the client retries.
//! mock.fail_next(1, 503, r#"{"statusCode": 503, "message": "Service Unavailable"}"#);
//! client.standard_token(&mock.standard_credentials()).await?;
//! assert_eq!(mock.request_count(), 3);
//!
//! // Rejected keys, which it does not.
//! mock.fail_all(401, r#"{"statusCode": 401, "message": "Access denied"}"#);
//! let error = client.standard_token(&mock.standard_credentials()).await.unwrap_err();
//! assert!(error.is_credentials_rejected());
//! mock.shutdown().await?;
//! # Ok(()) }
//! ```

// A plain comment, as the docs above are `vipps_access_token::mock`'s public ones:
// May import: client, credentials, environment, sync, time, wire.

#[cfg(feature = "broker")]
pub(crate) mod answers;
mod azure;
mod config;
mod endpoint;
mod fault;
mod faults;
mod gateway;
mod jwt;
mod key_check;
mod keys;
mod legacy;
mod oauth;
mod partner;
mod reply;
mod request;
mod routes;
mod server;
mod standard;
mod state;
mod tokens;

pub use crate::wire::paths::STANDARD_TOKEN_PATH;
pub use config::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServerBuilder,
    PARTNER_TOKEN_LIFETIME, PRODUCTION_TOKEN_LIFETIME, TEST_TOKEN_LIFETIME,
};
pub use server::MockServer;
