//! A client for the Vipps MobilePay Access Token API, the API every other Vipps MobilePay
//! API depends on for its `Authorization` header.
//!
//! Three flows, one [`Client`]:
//!
//! | flow | method | endpoint | keys |
//! | --- | --- | --- | --- |
//! | standard | [`Client::standard_token`] | `POST /accesstoken/get` | [`StandardCredentials`] |
//! | partner specialised | [`Client::partner_token`] | `POST /miami/v1/token` | [`PartnerCredentials`] |
//! | legacy (deprecated) | [`Client::legacy_token`] | `POST /api/v2/accesstoken/jwt` | [`StandardCredentials`] |
//!
//! The standard flow goes through a binding that `build.rs` generates from the bundled
//! spec `openapi/access-token.yaml`; the other two are written by hand. Every response is
//! read tolerantly: numbers arrive as JSON integers or as strings of digits (the real API
//! sends `"86398"`, its spec says `integer`). Secrets never appear in `Debug`, `Display`
//! or errors.
//!
//! ```no_run
//! use vipps_access_token::{Client, Environment, StandardCredentials, SystemHeaders};
//!
//! # async fn run() -> Result<(), vipps_access_token::Error> {
//! let client = Client::builder(Environment::Test)
//!     .system_headers(SystemHeaders::new("acme", "3.1.2"))
//!     .merchant_serial_number("123456")
//!     .build()?;
//! let credentials = StandardCredentials::new(
//!     "fb492b5e-7907-4d83-ba20-c7fb60ca35de",
//!     "Y8Kteew6GE2ZmeycEt6egg==",
//!     "0f14ebcab0ec4b29ae0cb90d91b4a84a",
//! );
//! let token = client.standard_token(&credentials).await?;
//! println!("valid for {:?}", token.expires_in());
//! // Authorization: Bearer <token>, Ocp-Apim-Subscription-Key, Merchant-Serial-Number, ...
//! let headers_for_later_calls = token.headers();
//! # let _ = headers_for_later_calls; Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod credentials;
mod error;
mod exchange;
mod generated;
mod headers;
mod legacy;
mod partner;
mod redact;
mod response;
mod standard;
mod token;

pub use client::{
    Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Environment,
    PARTNER_TOKEN_PATH, RENAMED_PARTNER_TOKEN_PATH,
};
pub use credentials::{
    ClientId, ClientSecret, PartnerCredentials, StandardCredentials, SubscriptionKey, TokenSecret,
};
pub use error::{ApiError, AzureAdError, Error, ErrorBody, GatewayError, OAuthError};
pub use headers::{MerchantSerialNumber, SYSTEM_HEADER_MAX_CHARS, SystemHeaders};
pub use legacy::{LEGACY_TOKEN_PATH, LegacyResource};
pub use partner::FORM_CONTENT_TYPE;
pub use response::{PartnerTokenResponse, StandardTokenResponse, integer_or_digits};
pub use token::{AccessToken, Flow};
