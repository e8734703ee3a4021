#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod client;
#[cfg(feature = "conformance")]
pub mod conformance;
mod credentials;
mod environment;
mod error;
mod error_body;
mod exchange;
mod flow;
mod freshness;
mod generated;
// The guides in docs/, as pages of the docs whose examples run as doctests.
pub mod guide;
mod headers;
mod hint;
mod http;
mod integer_or_digits;
mod jwt;
mod legacy;
mod metrics;
#[cfg(feature = "middleware")]
mod middleware;
#[cfg(feature = "mock")]
pub mod mock;
mod partner;
mod paths;
mod provider;
mod redact;
mod refresh;
mod response;
mod retry;
mod single_flight;
mod slots;
mod source;
mod standard;
#[cfg(feature = "store")]
pub mod store;
mod sync;
mod throttle;
mod time;
mod tls;
mod token;
#[cfg(feature = "middleware")]
mod unauthorized;

pub use body::MAX_RESPONSE_BYTES;
pub use client::{Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
pub use credentials::{
    ClientId, ClientSecret, PartnerCredentials, StandardCredentials, SubscriptionKey, TokenSecret,
};
pub use environment::Environment;
pub use error::{
    ApiError, ArrivedLateError, Error, FailureKind, InvalidInputError, InvalidResponseError,
    SharedError,
};
pub use error_body::{AzureAdError, ErrorBody, GatewayError, OAuthError};
pub use flow::Flow;
pub use headers::{MerchantSerialNumber, SYSTEM_HEADER_MAX_CHARS, SystemHeaders};
pub use http::http_client_builder;
pub use integer_or_digits::integer_or_digits;
pub use jwt::{JwtError, UnverifiedJwt};
pub use legacy::LegacyResource;
#[cfg(feature = "middleware")]
pub use middleware::{TokenWaitTimedOut, VippsAuthMiddleware};
pub use partner::FORM_CONTENT_TYPE;
pub use paths::{
    LEGACY_TOKEN_PATH, PARTNER_TOKEN_PATH, RENAMED_PARTNER_TOKEN_PATH, STANDARD_TOKEN_PATH,
};
pub use provider::{TokenProvider, TokenProviderBuilder};
pub use refresh::RefreshPolicy;
pub use response::{PartnerTokenResponse, StandardTokenResponse};
pub use retry::RetryPolicy;
pub use slots::DEFAULT_MAX_SLOTS;
pub use source::TokenSource;
pub use token::AccessToken;
