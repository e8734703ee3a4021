//! The README's section "Testing code that uses this crate", run word for word: the test
//! below is the README's code block, and `readme_shows_this_test` checks they agree.
#![cfg(feature = "mock")]

// README example starts
use std::time::Duration;
use vipps_access_token::{TokenProvider, TokenSource, mock::MockServer};

#[tokio::test(start_paused = true)]
async fn my_service_keeps_a_valid_token() {
    // Start the mock inside the test: it then runs on the test's own runtime.
    let mock = MockServer::start().await.unwrap();
    let client = mock.client_builder().build().unwrap();
    let provider = TokenProvider::new(client, TokenSource::Standard(mock.standard_credentials()));

    let first = provider.token().await.unwrap();
    assert_eq!(mock.request_count(), 1);

    // A test token lives an hour. 50 minutes on, it is refreshed in the background
    // while callers still get the current one.
    tokio::time::advance(Duration::from_secs(50 * 60)).await;
    let served = provider.token().await.unwrap();
    assert_eq!(
        served.secret().expose_secret(),
        first.secret().expose_secret()
    );
    let refreshed = provider.refresh().await.unwrap(); // joins that refresh
    assert_ne!(
        refreshed.secret().expose_secret(),
        first.secret().expose_secret()
    );
    assert_eq!(mock.request_count(), 2);

    // When the API fails and the token runs out, callers get the error, never an
    // expired token.
    mock.fail_all(
        503,
        r#"{"statusCode": 503, "message": "Service Unavailable"}"#,
    );
    tokio::time::advance(Duration::from_secs(60 * 60)).await;
    assert!(provider.token().await.is_err());
}
// README example ends

#[test]
fn readme_shows_this_test() {
    let this = include_str!("readme_testing.rs");
    let start = this.find("// README example starts\n").unwrap() + 24;
    let end = this.find("// README example ends").unwrap();
    let example = &this[start..end];
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(&format!("```rust,ignore\n{example}```")),
        "the README's testing example differs from tests/readme_testing.rs"
    );
}
