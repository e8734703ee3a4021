//! Shared helpers for `tests/conformance.rs`: the documented example keys, clients that
//! point at a `wiremock::MockServer`, a readable rendering of captured requests, and the
//! checks that no secret leaks into `Debug` or `Display`.

pub mod fixtures;

use std::fmt::Write as _;

use base64::Engine as _;
use vipps_access_token::{
    AccessToken, ApiError, Client, ClientBuilder, Error, Flow, LEGACY_TOKEN_PATH, LegacyResource,
    PARTNER_TOKEN_PATH, PartnerCredentials, RetryPolicy, StandardCredentials, SystemHeaders,
};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path},
};

// The documented example keys: the only keys these tests use.
pub const CLIENT_ID: &str = "fb492b5e-7907-4d83-ba20-c7fb60ca35de";
pub const CLIENT_SECRET: &str = "Y8Kteew6GE2ZmeycEt6egg==";
pub const SUBSCRIPTION_KEY: &str = "0f14ebcab0ec4b29ae0cb90d91b4a84a";
pub const MSN: &str = "123456";
pub const SYSTEM_NAME: &str = "acme";
pub const SYSTEM_VERSION: &str = "3.1.2";
pub const PLUGIN_NAME: &str = "acme-webshop";
pub const PLUGIN_VERSION: &str = "4.5.6";

/// A fake JWT-looking access token.
pub const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1Ni.test-token";
/// The JWT-looking head every fake token starts with: finding it anywhere means a leak.
pub const TOKEN_HEAD: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1Ni";

pub const STANDARD_PATH: &str = "/accesstoken/get";

/// `base64(client_id:client_secret)`, as the partner flow's Basic credentials carry it.
pub fn basic_credentials() -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
}

pub fn standard_credentials() -> StandardCredentials {
    StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY)
}

pub fn partner_credentials() -> PartnerCredentials {
    PartnerCredentials::new(CLIENT_ID, CLIENT_SECRET)
}

pub fn system_headers() -> SystemHeaders {
    SystemHeaders::new(SYSTEM_NAME, SYSTEM_VERSION).with_plugin(PLUGIN_NAME, PLUGIN_VERSION)
}

/// A client with the MSN and all four system headers set. Retries are off: each case
/// pins one exchange (retrying is tested in tests/faults.rs).
pub fn full_client(server: &MockServer) -> Client {
    full_builder(server).build().expect("a valid client")
}

pub fn full_builder(server: &MockServer) -> ClientBuilder {
    ClientBuilder::with_base_url(server.uri())
        .system_headers(system_headers())
        .merchant_serial_number(MSN)
        .retry_policy(RetryPolicy::none())
}

/// A client with no optional header set, and no retries.
pub fn bare_client(server: &MockServer) -> Client {
    ClientBuilder::with_base_url(server.uri())
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("a valid client")
}

/// The path each flow posts to by default.
pub fn flow_path(flow: Flow) -> &'static str {
    match flow {
        Flow::Standard => STANDARD_PATH,
        Flow::Partner => PARTNER_TOKEN_PATH,
        Flow::Legacy => LEGACY_TOKEN_PATH,
    }
}

/// Asks for a token the way `flow` does, with the documented keys (no scope, the
/// recurring resource for the legacy flow).
#[allow(deprecated)]
pub async fn request_token(client: &Client, flow: Flow) -> Result<AccessToken, Error> {
    match flow {
        Flow::Standard => client.standard_token(&standard_credentials()).await,
        Flow::Partner => client.partner_token(&partner_credentials(), None).await,
        Flow::Legacy => {
            client
                .legacy_token(&standard_credentials(), &LegacyResource::Recurring)
                .await
        }
    }
}

/// Mounts `template` on `flow`'s path, expecting exactly one call.
pub async fn mount_once(server: &MockServer, flow: Flow, template: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(flow_path(flow)))
        .respond_with(template)
        .expect(1)
        .mount(server)
        .await;
}

/// Serves `template` once on `flow`'s path and returns what the full client makes of it.
/// Every error is checked for leaked secrets before it is handed back.
pub async fn exchange(flow: Flow, template: ResponseTemplate) -> Result<AccessToken, Error> {
    let server = MockServer::start().await;
    mount_once(&server, flow, template).await;
    let result = request_token(&full_client(&server), flow).await;
    if let Err(error) = &result {
        assert_error_secret_free(error);
    }
    result
}

/// Like [`exchange`], for an answer that must be an error.
pub async fn exchange_err(flow: Flow, template: ResponseTemplate) -> Error {
    match exchange(flow, template).await {
        Ok(token) => panic!("expected an error, got a token: {token:?}"),
        Err(error) => error,
    }
}

/// A JSON response with `status` and the raw `body` text.
pub fn json(status: u16, body: impl Into<String>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), "application/json")
}

/// A response with `status`, the given content type and raw body.
pub fn raw(status: u16, content_type: &str, body: impl Into<String>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), content_type)
}

/// The API error inside `error`, or a panic that shows what it was instead.
pub fn api(error: &Error) -> &ApiError {
    match error {
        Error::Api(api) => api,
        other => panic!("expected Error::Api, got {other:?}"),
    }
}

/// The parts of an `Error::InvalidResponse`: status, field, reason, excerpt.
pub fn invalid_response(error: &Error) -> (u16, Option<&str>, &str, &str) {
    match error {
        Error::InvalidResponse(invalid) => (
            invalid.status,
            invalid.field.as_deref(),
            &invalid.reason,
            &invalid.excerpt,
        ),
        other => panic!("expected Error::InvalidResponse, got {other:?}"),
    }
}

/// The field named by an `Error::InvalidInput`.
pub fn invalid_input_field(error: &Error) -> &'static str {
    match error {
        Error::InvalidInput(invalid) => invalid.field,
        other => panic!("expected Error::InvalidInput, got {other:?}"),
    }
}

/// Every request the server received.
pub async fn received(server: &MockServer) -> Vec<Request> {
    server
        .received_requests()
        .await
        .expect("request recording is on")
}

/// The one request the server received.
pub async fn only_request(server: &MockServer) -> Request {
    let mut requests = received(server).await;
    assert_eq!(requests.len(), 1, "expected exactly one request");
    requests.remove(0)
}

/// A catch-all mock that must never be hit, for the "rejected before sending" tests.
pub async fn mount_nothing_expected(server: &MockServer) {
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(server)
        .await;
}

/// All values of header `name` in a captured request, as text.
pub fn header_values(request: &Request, name: &str) -> Vec<String> {
    request
        .headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().expect("ASCII header").to_owned())
        .collect()
}

/// A deterministic rendering of a captured request: method, path and query, every header
/// sorted by name (all but `host`, whose port changes each run), then the body as text.
pub fn render_request(request: &Request) -> String {
    let mut out = String::new();
    let query = request
        .url
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    writeln!(out, "{} {}{query}", request.method, request.url.path()).unwrap();
    let mut names: Vec<&str> = request.headers.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names.into_iter().filter(|n| *n != "host") {
        for value in request.headers.get_all(name) {
            let value = value
                .to_str()
                .map(str::to_owned)
                .unwrap_or_else(|_| format!("{:?}", value.as_bytes()));
            writeln!(out, "{name}: {value}").unwrap();
        }
    }
    out.push('\n');
    if request.body.is_empty() {
        out.push_str("(no body)\n");
    } else {
        out.push_str(&String::from_utf8_lossy(&request.body));
        out.push('\n');
    }
    out
}

/// Every secret a message must never hold: the client secret, the subscription key, the
/// Basic credentials and any fake token.
pub fn secrets() -> Vec<String> {
    vec![
        CLIENT_SECRET.to_owned(),
        CLIENT_SECRET.trim_end_matches('=').to_owned(),
        SUBSCRIPTION_KEY.to_owned(),
        basic_credentials(),
        TOKEN.to_owned(),
        TOKEN_HEAD.to_owned(),
    ]
}

/// Fails when `text` holds any secret.
pub fn assert_secret_free(what: &str, text: &str) {
    for secret in secrets() {
        assert!(
            !text.contains(&secret),
            "{what} leaks the secret {secret:?}: {text}"
        );
    }
}

/// Checks `Display` and `Debug` of an error, of its parsed body and of its sources.
pub fn assert_error_secret_free(error: &Error) {
    assert_secret_free("Display of the error", &error.to_string());
    assert_secret_free("Debug of the error", &format!("{error:?}"));
    if let Error::Api(api) = error {
        assert_secret_free("Display of the API error", &api.to_string());
        assert_secret_free("Debug of the error body", &format!("{:?}", api.body()));
        assert_secret_free("Display of the error body", &api.body().to_string());
    }
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        assert_secret_free("Display of a source", &inner.to_string());
        assert_secret_free("Debug of a source", &format!("{inner:?}"));
        source = inner.source();
    }
}
