//! The token client's HTTP client: no idle connection shared across runtimes, no redirect
//! followed, whether the crate builds it or starts from the caller's `reqwest::ClientBuilder`.

#[path = "support/token_body.rs"]
mod token_body;

#[path = "support/example_keys.rs"]
mod example_keys;

use std::time::Duration;

use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};
use serde_json::json;
use token_body::standard_token_body;
use vipps_access_token::{
    AccessToken, Client, ClientBuilder, Error, Flow, LEGACY_TOKEN_PATH, LegacyResource,
    PARTNER_TOKEN_PATH, PartnerCredentials, RetryPolicy, StandardCredentials, http_client_builder,
};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

const TOKEN: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJodHRwLWNsaWVudCJ9.SHR0cENsaWVudFNpZw";

/// Long enough for a loopback fetch, short enough that a hung one fails the test quickly.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

const FLOWS: [Flow; 3] = [Flow::Standard, Flow::Partner, Flow::Legacy];

fn standard_credentials() -> StandardCredentials {
    StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY)
}

fn flow_path(flow: Flow) -> &'static str {
    match flow {
        Flow::Standard => "/accesstoken/get",
        Flow::Partner => PARTNER_TOKEN_PATH,
        Flow::Legacy => LEGACY_TOKEN_PATH,
    }
}

#[allow(deprecated)] // the legacy flow is deprecated, and still served
async fn request_token(client: &Client, flow: Flow) -> Result<AccessToken, Error> {
    match flow {
        Flow::Standard => client.standard_token(&standard_credentials()).await,
        Flow::Partner => {
            client
                .partner_token(&PartnerCredentials::new(CLIENT_ID, CLIENT_SECRET), None)
                .await
        }
        Flow::Legacy => {
            client
                .legacy_token(&standard_credentials(), &LegacyResource::Recurring)
                .await
        }
    }
}

/// How the test builds its token client: the crate's HTTP client, or one from a builder
/// of the caller's that asks for the opposite of every setting that matters here.
#[derive(Clone, Copy, Debug)]
enum Http {
    Crate,
    CallersBuilder,
}

fn client(base_url: &str, http: Http) -> Client {
    let builder = ClientBuilder::with_base_url(base_url)
        .retry_policy(RetryPolicy::none())
        .timeout(REQUEST_TIMEOUT);
    let builder = match http {
        Http::Crate => builder,
        Http::CallersBuilder => builder.http_client_builder(
            http_client_builder()
                .expect("TLS set up")
                .redirect(reqwest::redirect::Policy::limited(10))
                .pool_max_idle_per_host(usize::MAX)
                .pool_idle_timeout(Duration::from_secs(600)),
        ),
    };
    builder.build().expect("a valid client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A runtime of its own for the test's server, always running, whatever the client's
/// runtimes do.
fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the server's runtime")
}

/// A fetch on one runtime, then on another while the first is alive but idle (its
/// `block_on` returned): the second must not wait on a connection the idle runtime drives.
fn a_second_runtime_fetches_while_the_first_idles(http: Http) {
    // The server runs on a runtime of its own, always running.
    let server_runtime = server_runtime();
    let server = server_runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(matchers::path("/accesstoken/get"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(standard_token_body(TOKEN, "3600")),
            )
            .mount(&server)
            .await;
        server
    });
    let client = client(&server.uri(), http);

    let idle = runtime();
    idle.block_on(client.standard_token(&standard_credentials()))
        .expect("the first runtime's token");
    // `idle` is still alive, and runs nothing from here on.
    let second = runtime().block_on(client.standard_token(&standard_credentials()));
    assert!(
        second.is_ok(),
        "{http:?}: the second runtime's fetch failed: {second:?}"
    );
    let requests = server_runtime.block_on(server.received_requests());
    assert_eq!(requests.map(|r| r.len()), Some(2), "{http:?}");
    drop(idle);
}

#[test]
fn an_idle_runtime_holds_no_connection_another_needs() {
    a_second_runtime_fetches_while_the_first_idles(Http::Crate);
}

#[test]
fn an_idle_runtime_holds_no_connection_another_needs_with_the_callers_builder() {
    a_second_runtime_fetches_while_the_first_idles(Http::CallersBuilder);
}

/// A token endpoint answering 307 to another server: the credentials must not follow.
#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_refused() {
    let elsewhere = MockServer::start().await;
    Mock::given(matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": TOKEN, "token_type": "Bearer", "expires_in": 900,
        })))
        .mount(&elsewhere)
        .await;
    let redirecting = MockServer::start().await;
    for flow in FLOWS {
        let target = format!("{}{}", elsewhere.uri(), flow_path(flow));
        Mock::given(matchers::path(flow_path(flow)))
            .respond_with(ResponseTemplate::new(307).insert_header("location", target.as_str()))
            .mount(&redirecting)
            .await;
    }

    for http in [Http::Crate, Http::CallersBuilder] {
        let client = client(&redirecting.uri(), http);
        for flow in FLOWS {
            let what = format!("{http:?} {flow:?}");
            let error = request_token(&client, flow)
                .await
                .expect_err(&format!("{what}: a redirect is no token"));
            let Error::Api(api) = &error else {
                panic!("{what}: expected the 307 itself, got {error:?}");
            };
            assert_eq!(api.status(), 307, "{what}");
            let message = error.to_string();
            assert!(
                message.contains("307") && message.contains("redirect"),
                "{what}: {message}"
            );
        }
    }
    let leaked = elsewhere.received_requests().await.expect("recording");
    assert!(leaked.is_empty(), "the redirect was followed: {leaked:?}");
    assert_eq!(
        redirecting.received_requests().await.map(|r| r.len()),
        Some(2 * FLOWS.len())
    );
}

/// The crate's HTTP client is built at the first request (`Client::api`): clones of one
/// `Client` racing that first request from threads of their own, each on a runtime of its
/// own, all get a token; so does a later fetch once every one of those runtimes is gone.
#[test]
fn clones_racing_the_first_request_from_many_runtimes_all_get_a_token() {
    const RACERS: usize = 8;
    let server_runtime = server_runtime();
    let server = server_runtime.block_on(async {
        let server = MockServer::start().await;
        for flow in FLOWS {
            Mock::given(matchers::path(flow_path(flow)))
                .respond_with(
                    ResponseTemplate::new(200).set_body_json(standard_token_body(TOKEN, "3600")),
                )
                .mount(&server)
                .await;
        }
        server
    });
    let client = client(&server.uri(), Http::Crate);
    let start = std::sync::Barrier::new(RACERS);
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let (client, start) = (client.clone(), &start);
                scope.spawn(move || {
                    let runtime = if i % 2 == 0 {
                        runtime()
                    } else {
                        tokio::runtime::Builder::new_multi_thread()
                            .worker_threads(1)
                            .enable_all()
                            .build()
                            .expect("a runtime")
                    };
                    start.wait();
                    runtime.block_on(request_token(&client, FLOWS[i % FLOWS.len()]))
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|racer| racer.join().unwrap())
            .collect()
    });
    for (i, outcome) in outcomes.iter().enumerate() {
        assert!(outcome.is_ok(), "racer {i}: {outcome:?}");
    }
    // Every runtime that made a request is gone: the next one still gets its token.
    let after = runtime().block_on(request_token(&client, Flow::Standard));
    assert!(after.is_ok(), "{after:?}");
    let requests = server_runtime.block_on(server.received_requests());
    assert_eq!(requests.map(|r| r.len()), Some(RACERS + 1));
}

/// A caller's `reqwest::ClientBuilder` that cannot build (here: a TLS configuration of a
/// type reqwest does not know) is refused by `ClientBuilder::build`, before any request,
/// naming the setting; the crate's own HTTP client waits for the first request and builds.
#[test]
fn a_callers_builder_that_cannot_build_is_refused_by_build() {
    let refused = ClientBuilder::with_base_url("https://apitest.vipps.no")
        .http_client_builder(
            http_client_builder()
                .expect("TLS set up")
                .tls_backend_preconfigured(7_u8),
        )
        .build()
        .expect_err("an unknown TLS backend");
    let Error::InvalidInput(input) = &refused else {
        panic!("expected InvalidInput, got {refused:?}");
    };
    assert_eq!(input.field, "http_client", "{refused}");
    let lazy = runtime().block_on(async {
        let client = ClientBuilder::with_base_url("http://127.0.0.1:1")
            .retry_policy(RetryPolicy::none())
            .build()
            .expect("the crate's client is not built yet");
        request_token(&client, Flow::Standard).await
    });
    assert!(
        matches!(lazy, Err(Error::Transport(_))),
        "built at the first request, which then fails to connect: {lazy:?}"
    );
}
