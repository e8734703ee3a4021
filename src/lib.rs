#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod client;
#[cfg(feature = "conformance")]
pub mod conformance;
mod credentials;
mod error;
mod error_body;
mod exchange;
mod flow;
mod generated;
mod headers;
mod hint;
mod integer_or_digits;
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
mod standard;
mod time;
mod tls;
mod token;

pub use body::MAX_RESPONSE_BYTES;
pub use client::{
    Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Environment,
    PARTNER_TOKEN_PATH, RENAMED_PARTNER_TOKEN_PATH,
};
pub use credentials::{
    ClientId, ClientSecret, PartnerCredentials, StandardCredentials, SubscriptionKey, TokenSecret,
};
pub use error::{ApiError, Error};
pub use error_body::{AzureAdError, ErrorBody, GatewayError, OAuthError};
pub use flow::Flow;
pub use headers::{MerchantSerialNumber, SYSTEM_HEADER_MAX_CHARS, SystemHeaders};
pub use integer_or_digits::integer_or_digits;
pub use jwt::{JwtError, UnverifiedJwt};
pub use legacy::{LEGACY_TOKEN_PATH, LegacyResource};
#[cfg(feature = "middleware")]
pub use middleware::VippsAuthMiddleware;
pub use partner::FORM_CONTENT_TYPE;
pub use provider::{RefreshPolicy, TokenProvider, TokenSource};
pub use response::{PartnerTokenResponse, StandardTokenResponse};
pub use retry::RetryPolicy;
pub use token::AccessToken;
