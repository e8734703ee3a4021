//! The middleware's own HTTP client across runtimes: one `ClientWithMiddleware` from
//! `VippsAuthMiddleware::client()` (or `client_from`) kept by a program, for example in a
//! `static` behind a sync wrapper, and used from several current-thread runtimes in turn,
//! each left alive but idle once its `block_on` returned.
//!
//! hyper drives a pooled connection on the runtime that opened it: a later call from
//! another runtime that picked that connection up waited for ever (`client()`, no timeout)
//! or for the caller's whole timeout (`client_from`). The middleware's clients keep no idle
//! connection, as the token client does (`tests/http_client.rs`).
//!
//! The token endpoint is the embedded mock and the API a wiremock server, both on a
//! runtime of their own thread. Each call is bounded by a real 10 s timeout, only so that
//! a hang fails the test instead of stalling it; a call takes milliseconds.
#![cfg(all(feature = "mock", feature = "middleware"))]

use std::time::Duration;

use reqwest_middleware::ClientWithMiddleware;
use vipps_access_token::{
    RetryPolicy, TokenProvider, TokenSource, VippsAuthMiddleware, http_client_builder,
    mock::MockServer,
};
use wiremock::{Mock, ResponseTemplate, matchers};

const API_PATH: &str = "/epayment/v1/payments";

/// Far longer than a loopback call; only there so that a hang ends the test.
const HANG: Duration = Duration::from_secs(10);

/// The token endpoint and the API, served by a runtime on another thread.
struct Servers {
    token: MockServer,
    api: wiremock::MockServer,
    _runtime: tokio::runtime::Runtime,
}

fn servers() -> Servers {
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the servers");
        let (token, api) = runtime.block_on(async {
            let token = MockServer::start().await.expect("the token endpoint");
            let api = wiremock::MockServer::start().await;
            Mock::given(matchers::path(API_PATH))
                .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
                .mount(&api)
                .await;
            (token, api)
        });
        Servers {
            token,
            api,
            _runtime: runtime,
        }
    })
    .join()
    .expect("the servers started")
}

fn middleware(servers: &Servers) -> VippsAuthMiddleware {
    let client = servers
        .token
        .client_builder()
        .merchant_serial_number("123456")
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("a token client");
    let provider = TokenProvider::new(
        client,
        TokenSource::Standard(servers.token.standard_credentials()),
    );
    VippsAuthMiddleware::new(provider)
        .with_origin(&servers.api.uri())
        .expect("a loopback origin")
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

/// One authenticated API call from each of three runtimes in turn; each runtime stays
/// alive and idle after its call. Each call's status, or `None` if it hung.
fn statuses_across_idle_runtimes(http: &ClientWithMiddleware, url: &str) -> Vec<Option<u16>> {
    let mut idle_runtimes = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let runtime = current_thread();
        let status = runtime.block_on(async {
            match tokio::time::timeout(HANG, http.get(url).send()).await {
                Ok(Ok(response)) => Some(response.status().as_u16()),
                Ok(Err(error)) => panic!("the call failed: {error}"),
                Err(_) => None,
            }
        });
        statuses.push(status);
        idle_runtimes.push(runtime);
    }
    statuses
}

async fn api_requests(servers: &Servers) -> usize {
    let received = servers.api.received_requests().await.unwrap_or_default();
    received.iter().filter(|r| r.url.path() == API_PATH).count()
}

fn assert_every_call_answered(servers: &Servers, http: &ClientWithMiddleware) {
    let url = format!("{}{API_PATH}", servers.api.uri());
    let statuses = statuses_across_idle_runtimes(http, &url);
    assert_eq!(
        statuses,
        [Some(200); 3],
        "None: the call hung on a connection pooled by an idle runtime"
    );
    let api_requests = current_thread().block_on(api_requests(servers));
    assert_eq!(api_requests, 3, "one request a call, no retry");
    assert_eq!(servers.token.request_count(), 1, "one token for all three");
}

#[test]
fn the_middleware_client_works_from_runtimes_that_went_idle() {
    let servers = servers();
    let http = middleware(&servers)
        .client()
        .expect("the documented client");
    assert_every_call_answered(&servers, &http);
}

/// The same with a caller's builder that has a timeout (and asks for a pool): before the
/// fix, the second call ended in `TimedOut` after the whole timeout.
#[test]
fn the_middleware_client_from_a_callers_builder_works_from_runtimes_that_went_idle() {
    let servers = servers();
    let builder = http_client_builder()
        .expect("TLS set up")
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(16);
    let http = middleware(&servers)
        .client_from(builder)
        .expect("a client from the caller's builder");
    assert_every_call_answered(&servers, &http);
}
