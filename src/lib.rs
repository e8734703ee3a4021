#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// Leaves every layer may use: secret types, environments, which flow, clocks, locks.
mod credentials;
mod environment;
mod flow;
mod integer_or_digits;
mod sync;
mod time;

// The one error type, the error bodies it carries, and secret-free excerpts.
mod error;
// The wire format: the generated binding, paths, headers, tolerant responses, tokens, JWTs.
mod wire;
// The flows and their client: HTTP, TLS, retries, the exchange, the token source.
mod client;
// The cached provider: slots, single flight, refresh and freshness, throttles, metrics.
mod provider;
// Tokens on requests to other Vipps MobilePay APIs (feature `middleware`).
#[cfg(feature = "middleware")]
mod middleware;
// Tokens shared by many processes (feature `store`).
#[cfg(feature = "store")]
pub mod store;

// The guides in docs/, as pages of the docs whose examples run as doctests.
pub mod guide;

// The Access Token API on loopback (feature `mock`).
#[cfg(feature = "mock")]
pub mod mock;
// A token broker for clients in any language (feature `broker`).
#[cfg(feature = "broker")]
pub mod broker;
// Live conformance checks against a deployment (feature `conformance`).
#[cfg(feature = "conformance")]
pub mod conformance;

pub use client::{
    Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, http::http_client_builder,
    legacy::LegacyResource, partner::FORM_CONTENT_TYPE, retry::RetryPolicy, source::TokenSource,
};
pub use credentials::{
    ClientId, ClientSecret, PartnerCredentials, StandardCredentials, SubscriptionKey, TokenSecret,
};
pub use environment::Environment;
pub use error::{
    ApiError, ArrivedLateError, Error, FailureKind, InvalidInputError, InvalidResponseError,
    SharedError,
    body::{AzureAdError, ErrorBody, GatewayError, OAuthError},
};
pub use flow::Flow;
pub use integer_or_digits::integer_or_digits;
#[cfg(feature = "middleware")]
pub use middleware::{TokenWaitTimedOut, VippsAuthMiddleware};
pub use provider::{
    TokenProvider, TokenProviderBuilder, refresh::RefreshPolicy, slots::DEFAULT_MAX_SLOTS,
};
pub use wire::{
    body::MAX_RESPONSE_BYTES,
    headers::{MerchantSerialNumber, SYSTEM_HEADER_MAX_CHARS, SystemHeaders},
    jwt::{JwtError, UnverifiedJwt},
    paths::{
        LEGACY_TOKEN_PATH, PARTNER_TOKEN_PATH, RENAMED_PARTNER_TOKEN_PATH, STANDARD_TOKEN_PATH,
    },
    response::{PartnerTokenResponse, StandardTokenResponse},
    token::AccessToken,
};
