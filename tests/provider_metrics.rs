//! The provider's metrics (feature `metrics`), read with a recorder: fetches by flow and
//! outcome, their latency, seconds until expiry, and a refresh failing while a valid token
//! is still served. No label carries a secret, a client id or a merchant serial number.
#![cfg(all(feature = "metrics", feature = "mock"))]

use std::time::Duration;

use metrics_util::{
    CompositeKey, MetricKind,
    debugging::{DebugValue, DebuggingRecorder, Snapshotter},
};
use vipps_access_token::{
    RefreshPolicy, TokenProvider, TokenSource,
    mock::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServer},
};

type Metrics = Vec<(CompositeKey, DebugValue)>;

fn read(snapshotter: &Snapshotter) -> Metrics {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| (key, value))
        .collect()
}

fn find<'a>(metrics: &'a Metrics, name: &str, labels: &[(&str, &str)]) -> Option<&'a DebugValue> {
    metrics.iter().find_map(|(key, value)| {
        let key_labels: Vec<(&str, &str)> =
            key.key().labels().map(|l| (l.key(), l.value())).collect();
        (key.key().name() == name && labels.iter().all(|l| key_labels.contains(l))).then_some(value)
    })
}

fn counter(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(metrics, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        _ => 0,
    }
}

/// The gauge is the earlier of the token's expiry by tokio's clock (paused here) and by the
/// wall clock, which runs on during the test: `expected` less the test's real time so far.
fn assert_seconds_left(gauge: f64, expected: f64, what: &str) {
    assert!(
        gauge <= expected && gauge > expected - 1.0,
        "{what}: the gauge reads {gauge}, expected {expected} less well under a second"
    );
}

// One test: the recorder is global to the process.
#[tokio::test(start_paused = true)]
async fn fetches_latency_expiry_and_refresh_failures_are_reported() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder in this test binary");

    let mock = MockServer::start().await.unwrap();
    let client = mock
        .client_builder()
        .merchant_serial_number("123456")
        .retry_policy(vipps_access_token::RetryPolicy::none())
        .build()
        .unwrap();
    let policy = RefreshPolicy {
        jitter_fraction: 0.0,
        ..RefreshPolicy::default()
    };
    let provider = TokenProvider::with_policy(
        client,
        TokenSource::Standard(mock.standard_credentials()),
        policy,
    )
    .expect("a valid policy");

    provider.token().await.unwrap();
    let metrics = read(&snapshotter);
    let success = [("flow", "standard"), ("outcome", "success")];
    assert_eq!(
        counter(&metrics, "vipps_access_token_fetches_total", &success),
        1
    );
    assert!(matches!(
        find(&metrics, "vipps_access_token_fetch_duration_seconds", &success),
        Some(DebugValue::Histogram(samples)) if samples.len() == 1
    ));
    let Some(DebugValue::Gauge(expires_in)) = find(
        &metrics,
        "vipps_access_token_expires_in_seconds",
        &[("flow", "standard")],
    ) else {
        panic!("no expiry gauge in {metrics:?}");
    };
    assert_seconds_left(expires_in.into_inner(), 3600.0, "a fresh token");

    // Into the refresh window, with the API failing: the old token is still served, and
    // the failure is counted before anything expires.
    mock.fail_all(
        503,
        r#"{"statusCode": 503, "message": "Service Unavailable"}"#,
    );
    tokio::time::advance(Duration::from_secs(2900)).await;
    provider.token().await.expect("the old token, still valid");
    provider.refresh().await.expect_err("the refresh fails");
    let metrics = read(&snapshotter);
    assert_eq!(
        counter(
            &metrics,
            "vipps_access_token_fetches_total",
            &[("flow", "standard"), ("outcome", "api")]
        ),
        1
    );
    assert_eq!(
        counter(
            &metrics,
            "vipps_access_token_refresh_failures_total",
            &[("flow", "standard")]
        ),
        1
    );
    let Some(DebugValue::Gauge(expires_in)) = find(
        &metrics,
        "vipps_access_token_expires_in_seconds",
        &[("flow", "standard")],
    ) else {
        panic!("no expiry gauge");
    };
    assert_seconds_left(
        expires_in.into_inner(),
        700.0,
        "seconds left on the token served",
    );

    // Another merchant of the same flow fetches a token of an hour: the gauge still shows
    // the soonest expiry among the flow's cached tokens, not the last one fetched.
    mock.clear_faults();
    let other_merchant = provider.with_merchant_serial_number("654321").unwrap();
    other_merchant
        .token()
        .await
        .expect("a token for the other merchant");
    let metrics = read(&snapshotter);
    let Some(DebugValue::Gauge(expires_in)) = find(
        &metrics,
        "vipps_access_token_expires_in_seconds",
        &[("flow", "standard")],
    ) else {
        panic!("no expiry gauge");
    };
    assert_seconds_left(
        expires_in.into_inner(),
        700.0,
        "the soonest expiry of the flow's tokens",
    );

    // No label or name holds a secret, the client id or the merchant serial number.
    let rendered = format!("{metrics:?}");
    for secret in [
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_SUBSCRIPTION_KEY,
        "123456",
        "654321",
    ] {
        assert!(!rendered.contains(secret), "{secret} in {rendered}");
    }
    assert!(
        metrics
            .iter()
            .all(|(key, _)| key.kind() != MetricKind::Counter
                || key.key().name().ends_with("_total"))
    );
}
