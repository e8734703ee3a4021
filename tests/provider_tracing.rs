//! TokenProvider's `tracing` output: fetch, hit, miss, failure and clock skew are
//! reported, and no secret is. A test binary of its own, because `tracing` caches each
//! callsite's interest process-wide: a test on another thread that logs first, with no
//! subscriber, can make this one miss events.

#[path = "support/token_body.rs"]
mod token_body;

#[path = "support/captured_logs.rs"]
mod captured_logs;

use captured_logs::CapturedLogs;
use token_body::standard_token_body;

use vipps_access_token::{
    ClientBuilder, RetryPolicy, StandardCredentials, TokenProvider, TokenSource,
};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

#[path = "support/example_keys.rs"]
mod example_keys;
use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1Ni.traced";

#[tokio::test]
async fn traces_fetch_hit_miss_and_clock_skew_without_secrets() {
    let (logs, _guard) = CapturedLogs::start();

    let server = MockServer::start().await;
    // One token whose expires_on (2017) is far from the local clock, then a failure.
    Mock::given(matchers::path("/accesstoken/get"))
        .respond_with(ResponseTemplate::new(200).set_body_json(standard_token_body(TOKEN, "3600")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(matchers::path("/accesstoken/get"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let client = ClientBuilder::with_base_url(server.uri())
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let credentials = StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY);
    let provider = TokenProvider::new(client, TokenSource::Standard(credentials));
    provider.token().await.unwrap();
    provider.token().await.unwrap();
    // Invalidated, the token is suspect: its refresh (which fails here) is awaited.
    provider.invalidate();
    provider.refresh().await.unwrap_err();

    let logs = logs.text();
    for expected in [
        "cache miss",
        "fetched a vipps access token",
        "cache hit",
        "disagree by more than a minute",
        "fetching a vipps access token failed",
        "vipps_access_token_fetch",
    ] {
        assert!(logs.contains(expected), "no `{expected}` in:\n{logs}");
    }
    for secret in [CLIENT_SECRET, SUBSCRIPTION_KEY, TOKEN] {
        assert!(!logs.contains(secret), "a secret was logged:\n{logs}");
    }
}
