//! What the middleware reports about 401s (features `metrics`, `middleware`): returned as
//! not about the token, retried after a forced refresh, or handed back within the forced
//! refresh interval. A binary of its own: the recorder is global to the process.
#![cfg(all(feature = "metrics", feature = "middleware"))]

#[path = "support/token_body.rs"]
mod token_body;

#[path = "support/example_keys.rs"]
mod example_keys;

use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use token_body::standard_token_body;
use vipps_access_token::{
    ClientBuilder, StandardCredentials, TokenProvider, TokenSource, VippsAuthMiddleware,
};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

#[tokio::test]
async fn each_401_is_counted_by_what_was_done() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder in this binary");

    let server = MockServer::start().await;
    Mock::given(matchers::path("/accesstoken/get"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(standard_token_body(
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1Ni.counted",
                "3600",
            )),
        )
        .mount(&server)
        .await;
    Mock::given(matchers::path("/apim"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "statusCode": 401,
            "message": "Access denied due to invalid subscription key."
        })))
        .mount(&server)
        .await;
    Mock::given(matchers::path("/bare"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let client = ClientBuilder::with_base_url(server.uri()).build().unwrap();
    let credentials = StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY);
    let http = VippsAuthMiddleware::new(TokenProvider::new(
        client,
        TokenSource::Standard(credentials),
    ))
    .client()
    .unwrap();

    for path in ["/apim", "/bare", "/bare"] {
        let response = http
            .get(format!("{}{path}", server.uri()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }

    // One snapshot: reading a counter resets it.
    let snapshot = snapshotter.snapshot().into_vec();
    let counted = |outcome: &str| {
        snapshot.iter().find_map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<_> = key.labels().map(|l| (l.key(), l.value())).collect();
            (key.name() == "vipps_access_token_unauthorized_total"
                && labels.contains(&("flow", "standard"))
                && labels.contains(&("outcome", outcome)))
            .then_some(value)
        })
    };
    for (outcome, times) in [("not_token", 1), ("refreshed", 1), ("rate_limited", 1)] {
        assert_eq!(
            counted(outcome),
            Some(&DebugValue::Counter(times)),
            "{outcome}"
        );
    }
}
