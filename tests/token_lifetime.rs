//! Token lifetimes the server can send: none at all (`expires_in` 0) is not a token; one
//! too long to be a time is clamped; silly `expires_on` and `not_before` panic nothing.
//! Each case in all three flows: the standard flow's digit strings, the partner flow's
//! integers, the legacy flow.

#[path = "support/token_body.rs"]
mod token_body;

#[path = "support/example_keys.rs"]
mod example_keys;

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};
use serde_json::{Value, json};
use token_body::standard_token_body;
use vipps_access_token::{
    AccessToken, Client, ClientBuilder, Error, Flow, LEGACY_TOKEN_PATH, LegacyResource,
    PARTNER_TOKEN_PATH, PartnerCredentials, RetryPolicy, StandardCredentials, TokenProvider,
    TokenSource,
};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

const TOKEN: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsaWZldGltZSJ9.TGlmZXRpbWVTaWduYXR1cmU";

const FLOWS: [Flow; 3] = [Flow::Standard, Flow::Partner, Flow::Legacy];

/// Past what `Instant` and the provider's clocks can count from now, on any platform.
const TOO_LONG: u64 = 6_500_000_000;

fn standard_credentials() -> StandardCredentials {
    StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY)
}

fn source(flow: Flow) -> TokenSource {
    match flow {
        Flow::Standard => TokenSource::Standard(standard_credentials()),
        Flow::Partner => TokenSource::Partner {
            credentials: PartnerCredentials::new(CLIENT_ID, CLIENT_SECRET),
            scope: None,
        },
        Flow::Legacy => TokenSource::Legacy {
            credentials: standard_credentials(),
            resource: LegacyResource::Recurring,
        },
    }
}

fn flow_path(flow: Flow) -> &'static str {
    match flow {
        Flow::Standard => "/accesstoken/get",
        Flow::Partner => PARTNER_TOKEN_PATH,
        Flow::Legacy => LEGACY_TOKEN_PATH,
    }
}

/// The flow's 200 body with `expires_in` as that flow sends it: digits in a string for
/// the standard and legacy flows, an integer for the partner flow.
fn body(flow: Flow, expires_in: u64) -> Value {
    match flow {
        Flow::Partner => {
            json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": expires_in})
        }
        Flow::Standard | Flow::Legacy => standard_token_body(TOKEN, expires_in.to_string()),
    }
}

async fn server_answering(flow: Flow, body: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(matchers::path(flow_path(flow)))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    server
}

/// No retries (each request counted is one fetch); no timers, for paused time.
fn client(server: &MockServer) -> Client {
    ClientBuilder::with_base_url(server.uri())
        .retry_policy(RetryPolicy::none())
        .without_timeouts()
        .build()
        .expect("a valid client")
}

async fn fetch(server: &MockServer, flow: Flow) -> Result<AccessToken, Error> {
    TokenSource::fetch(&source(flow), &client(server)).await
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::test]
async fn a_token_with_no_life_is_an_invalid_response() {
    for flow in FLOWS {
        let server = server_answering(flow, body(flow, 0)).await;
        let error = fetch(&server, flow)
            .await
            .expect_err("expires_in 0 is no token");
        let Error::InvalidResponse(invalid) = &error else {
            panic!("{flow:?}: expected InvalidResponse, got {error:?}");
        };
        assert_eq!(invalid.field.as_deref(), Some("expires_in"), "{flow:?}");
        assert!(error.to_string().contains("expires_in"), "{error}");
    }
}

/// A provider hands out no token with no life, and so does not refetch one in a loop: at
/// most one request per call (fewer once the provider backs off its failures).
#[tokio::test(start_paused = true)]
async fn a_provider_hands_out_no_token_with_no_life() {
    for flow in FLOWS {
        let server = server_answering(flow, body(flow, 0)).await;
        let provider = TokenProvider::new(client(&server), source(flow));
        for _ in 0..3 {
            let error = provider.token().await.expect_err("no usable token");
            assert!(
                matches!(error, Error::InvalidResponse(_)),
                "{flow:?}: {error:?}"
            );
        }
        let requests = requests(&server).await;
        assert!((1..=3).contains(&requests), "{flow:?}: {requests} requests");
    }
}

#[tokio::test]
async fn the_shortest_usable_life_is_one_second() {
    for flow in FLOWS {
        let server = server_answering(flow, body(flow, 1)).await;
        let token = fetch(&server, flow).await.expect("a 1-second token");
        assert_eq!(token.expires_in(), AccessToken::MIN_LIFETIME, "{flow:?}");
    }
}

#[tokio::test]
async fn a_life_too_long_to_be_a_time_is_clamped() {
    for flow in FLOWS {
        for expires_in in [AccessToken::MAX_LIFETIME.as_secs() + 1, TOO_LONG, u64::MAX] {
            let what = format!("{flow:?} expires_in {expires_in}");
            let server = server_answering(flow, body(flow, expires_in)).await;
            let before = SystemTime::now();
            let token = fetch(&server, flow).await.expect(&what);
            assert_eq!(token.expires_in(), AccessToken::MAX_LIFETIME, "{what}");
            let latest = before + AccessToken::MAX_LIFETIME + Duration::from_secs(60);
            assert!(token.expires_at() <= latest, "{what}");
            assert_eq!(
                token.expires_at_instant() - token.requested_at_instant(),
                AccessToken::MAX_LIFETIME,
                "{what}"
            );
            assert!(!token.is_expired(), "{what}");
        }
    }
}

/// The real API's lifetimes (15 minutes to 24 hours) pass untouched.
#[tokio::test]
async fn documented_lifetimes_are_kept() {
    for flow in FLOWS {
        for expires_in in [900, 3600, 86_400] {
            let server = server_answering(flow, body(flow, expires_in)).await;
            let token = fetch(&server, flow).await.expect("a token");
            assert_eq!(token.expires_in(), Duration::from_secs(expires_in));
        }
    }
}

/// A clamped token is cached like any other: one request, then hits, and no overflow
/// anywhere in the provider's clocks (debug builds panic on one).
#[tokio::test(start_paused = true)]
async fn a_provider_caches_a_clamped_token() {
    for flow in FLOWS {
        let server = server_answering(flow, body(flow, TOO_LONG)).await;
        let provider = TokenProvider::new(client(&server), source(flow));
        let first = provider.token().await.expect("a token");
        for _ in 0..10 {
            let hit = provider.token().await.expect("a cache hit");
            assert!(Arc::ptr_eq(&first, &hit), "{flow:?}");
        }
        tokio::time::advance(Duration::from_secs(24 * 60 * 60)).await;
        let later = provider.token().await.expect("still cached a day later");
        assert!(Arc::ptr_eq(&first, &later), "{flow:?}");
        assert_eq!(requests(&server).await, 1, "{flow:?}");
    }
}

/// `expires_on` and `not_before` come from the server's clock and are only reported:
/// past, future or zero, they panic nothing; a value past what a time can hold is an
/// invalid response naming the field.
#[tokio::test]
async fn silly_server_times_panic_nothing() {
    for flow in [Flow::Standard, Flow::Legacy] {
        for (field, value, usable) in [
            ("expires_on", "0", true),
            ("expires_on", "1", true),
            ("expires_on", "99999999999", true),
            ("not_before", "0", true),
            ("not_before", "99999999999", true),
            ("expires_on", "18446744073709551615", false),
            ("not_before", "18446744073709551615", false),
        ] {
            let what = format!("{flow:?} {field} {value}");
            let mut body = body(flow, 3600);
            body[field] = json!(value);
            let server = server_answering(flow, body).await;
            match fetch(&server, flow).await {
                Ok(token) => {
                    assert!(usable, "{what}: accepted");
                    assert!(token.clock_skew().is_some(), "{what}");
                    assert_eq!(token.expires_in(), Duration::from_secs(3600), "{what}");
                }
                Err(Error::InvalidResponse(invalid)) => {
                    assert!(!usable, "{what}: refused: {invalid}");
                    assert_eq!(invalid.field.as_deref(), Some(field), "{what}");
                }
                Err(other) => panic!("{what}: {other:?}"),
            }
        }
    }
}
