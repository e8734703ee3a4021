//! The testing guide's example (`docs/testing.md`), run word for word: the test below is
//! the guide's code block less its hidden lines, and `the_testing_guide_shows_this_test`
//! checks they agree. The guide's block also runs as a doctest; this keeps it an
//! integration test too, as a user's `tests/` would hold it.
#![cfg(feature = "mock")]

// Guide example starts
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
// Guide example ends

#[test]
fn the_testing_guide_shows_this_test() {
    let this = include_str!("testing_guide.rs");
    let start_marker = "// Guide example starts\n";
    let start = this.find(start_marker).unwrap() + start_marker.len();
    let end = this.find("// Guide example ends").unwrap();
    let example = &this[start..end];

    let guide = include_str!("../docs/testing.md");
    let block = guide
        .split("```rust,test_harness\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/testing.md has a ```rust,test_harness block");
    // What a reader sees: rustdoc hides the lines that start with `# `.
    let shown: String = block
        .lines()
        .filter(|line| !line.trim_start().starts_with("# "))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(
        shown, example,
        "the testing guide's example differs from tests/testing_guide.rs"
    );
}
