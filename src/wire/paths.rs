//! Every token endpoint's path, in one place: the client sends to them, the mock serves
//! them, the conformance checks name them.

/// The standard flow: `POST /accesstoken/get`, for merchant and partner keys.
pub const STANDARD_TOKEN_PATH: &str = "/accesstoken/get";

/// The partner specialised flow as documented today.
pub const PARTNER_TOKEN_PATH: &str = "/miami/v1/token";

/// The name the partner token path is announced to get "when the internal technical
/// dependencies are resolved". Switch with [`crate::ClientBuilder::partner_token_path`].
pub const RENAMED_PARTNER_TOKEN_PATH: &str = "/authentication/v1/token";

/// The deprecated legacy flow: `POST /api/v2/accesstoken/jwt`.
pub const LEGACY_TOKEN_PATH: &str = "/api/v2/accesstoken/jwt";
