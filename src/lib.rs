#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod client;
pub mod conformance;
mod credentials;
mod error;
mod exchange;
mod generated;
mod headers;
mod jwt;
mod legacy;
#[cfg(feature = "middleware")]
mod middleware;
#[cfg(feature = "mock")]
pub mod mock;
mod partner;
mod provider;
mod redact;
mod response;
mod retry;
#[cfg(feature = "spec-diff")]
pub mod spec_diff;
mod standard;
mod token;

pub use body::MAX_RESPONSE_BYTES;
pub use client::{
    Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Environment,
    PARTNER_TOKEN_PATH, RENAMED_PARTNER_TOKEN_PATH,
};
pub use credentials::{
    ClientId, ClientSecret, PartnerCredentials, StandardCredentials, SubscriptionKey, TokenSecret,
};
pub use error::{ApiError, AzureAdError, Error, ErrorBody, GatewayError, OAuthError};
pub use headers::{MerchantSerialNumber, SYSTEM_HEADER_MAX_CHARS, SystemHeaders};
pub use jwt::{JwtError, UnverifiedJwt};
pub use legacy::{LEGACY_TOKEN_PATH, LegacyResource};
#[cfg(feature = "middleware")]
pub use middleware::VippsAuthMiddleware;
pub use partner::FORM_CONTENT_TYPE;
pub use provider::{RefreshPolicy, TokenProvider, TokenSource};
pub use response::{PartnerTokenResponse, StandardTokenResponse, integer_or_digits};
pub use retry::RetryPolicy;
pub use token::{AccessToken, Flow};
