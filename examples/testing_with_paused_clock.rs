//! How to test your own code that uses this crate: against the embedded mock, with tokio's
//! paused clock driving expiry, so an hour passes in no time and nothing is flaky.
//!
//! ```sh
//! cargo run --example testing_with_paused_clock --features mock
//! ```
//!
//! In your crate this is a test: put `vipps-access-token = { features = ["mock"] }` in
//! `[dev-dependencies]` and write `#[tokio::test(start_paused = true)] async fn ...` with
//! the body of `my_service_keeps_a_valid_token` below (tokio's `test-util` feature).

use std::time::Duration;

use vipps_access_token::{TokenProvider, TokenSource, mock::MockServer};

fn main() {
    // What `#[tokio::test(start_paused = true)]` builds for a test.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(my_service_keeps_a_valid_token());
    println!("ok: the provider refreshed ahead of expiry and never served an expired token");
}

async fn my_service_keeps_a_valid_token() {
    // Start the mock inside the test: it then runs on the test's own runtime, so the paused
    // clock never jumps while it answers.
    let mock = MockServer::start().await.expect("the mock starts");
    let client = mock.client_builder().build().expect("a client");
    let provider = TokenProvider::new(client, TokenSource::Standard(mock.standard_credentials()));

    let first = provider.token().await.expect("a token");
    assert_eq!(mock.request_count(), 1);
    println!(
        "t+0: token fetched, valid for {} s",
        first.expires_in().as_secs()
    );

    // A test token lives an hour. 50 minutes on, the provider refreshes in the background
    // while callers still get the current one.
    tokio::time::advance(Duration::from_secs(50 * 60)).await;
    let served = provider.token().await.expect("a token");
    assert_eq!(
        served.secret().expose_secret(),
        first.secret().expose_secret()
    );
    let refreshed = provider.refresh().await.expect("a refresh"); // joins that refresh
    assert_ne!(
        refreshed.secret().expose_secret(),
        first.secret().expose_secret()
    );
    assert_eq!(mock.request_count(), 2);
    println!("t+50 min: refreshed ahead of expiry; 2 token requests in all");

    // When the API fails and the token runs out, callers get the error, never an expired
    // token.
    mock.fail_all(
        503,
        r#"{"statusCode": 503, "message": "Service Unavailable"}"#,
    );
    tokio::time::advance(Duration::from_secs(60 * 60)).await;
    let error = provider
        .token()
        .await
        .expect_err("no expired token is served");
    println!("t+110 min, API down: the caller gets the error: {error}");
}
