//! VippsAuthMiddleware against wiremock: the headers it puts on calls to another Vipps
//! MobilePay API, and one retry with a fresh token after a 401.
#![cfg(feature = "middleware")]

#[path = "support/token_body.rs"]
mod token_body;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use token_body::standard_token_body;

use vipps_access_token::{
    ClientBuilder, StandardCredentials, SystemHeaders, TokenProvider, TokenSource,
    VippsAuthMiddleware,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate, matchers};

#[path = "support/example_keys.rs"]
mod example_keys;
use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};
const API_PATH: &str = "/epayment/v1/payments/order-1";

/// Mounts a token endpoint issuing `token-1`, `token-2`, ... on `server`.
async fn mount_token_endpoint(server: &MockServer) {
    let issued = Arc::new(AtomicUsize::new(0));
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/accesstoken/get"))
        .respond_with(move |_: &Request| {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200)
                .set_body_json(standard_token_body(&format!("token-{n}"), "3600"))
        })
        .mount(server)
        .await;
}

fn authenticated_http(server: &MockServer) -> reqwest_middleware::ClientWithMiddleware {
    let client = ClientBuilder::with_base_url(server.uri())
        .merchant_serial_number("123456")
        .system_headers(SystemHeaders::new("acme", "3.1.2"))
        .build()
        .unwrap();
    let credentials = StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY);
    let provider = TokenProvider::new(client, TokenSource::Standard(credentials));
    reqwest_middleware::ClientBuilder::new(
        vipps_access_token::http_client_builder()
            .expect("TLS set up")
            .build()
            .expect("a reqwest client"),
    )
    .with(VippsAuthMiddleware::new(provider))
    .build()
}

async fn requests_to(server: &MockServer, path: &str) -> Vec<Request> {
    let all = server.received_requests().await.unwrap_or_default();
    all.into_iter().filter(|r| r.url.path() == path).collect()
}

/// One call to the API behind the middleware.
async fn call_api(
    http: &reqwest_middleware::ClientWithMiddleware,
    server: &MockServer,
) -> reqwest_middleware::Result<reqwest::Response> {
    http.get(format!("{}{API_PATH}", server.uri())).send().await
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn puts_the_token_and_identifying_headers_on_api_calls() {
    let server = MockServer::start().await;
    mount_token_endpoint(&server).await;
    Mock::given(matchers::path(API_PATH))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let http = authenticated_http(&server);

    for _ in 0..3 {
        let response = call_api(&http, &server).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    // A request's own identifying header wins over the provider's.
    http.get(format!("{}{API_PATH}", server.uri()))
        .header("Merchant-Serial-Number", "654321")
        .send()
        .await
        .unwrap();

    let calls = requests_to(&server, API_PATH).await;
    assert_eq!(calls.len(), 4);
    for call in &calls[..3] {
        assert_eq!(
            header(call, "authorization").as_deref(),
            Some("Bearer token-1")
        );
        assert_eq!(
            header(call, "ocp-apim-subscription-key").as_deref(),
            Some(SUBSCRIPTION_KEY)
        );
        assert_eq!(
            header(call, "merchant-serial-number").as_deref(),
            Some("123456")
        );
        assert_eq!(header(call, "vipps-system-name").as_deref(), Some("acme"));
        assert_eq!(
            header(call, "vipps-system-version").as_deref(),
            Some("3.1.2")
        );
    }
    assert_eq!(
        header(&calls[3], "merchant-serial-number").as_deref(),
        Some("654321")
    );
    assert_eq!(
        requests_to(&server, "/accesstoken/get").await.len(),
        1,
        "one token for all calls"
    );
}

#[tokio::test]
async fn a_401_invalidates_the_token_and_retries_once_with_a_fresh_one() {
    let server = MockServer::start().await;
    mount_token_endpoint(&server).await;
    Mock::given(matchers::path(API_PATH))
        .and(matchers::header("authorization", "Bearer token-1"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(matchers::path(API_PATH))
        .and(matchers::header("authorization", "Bearer token-2"))
        .respond_with(ResponseTemplate::new(200).set_body_string("paid"))
        .mount(&server)
        .await;
    let http = authenticated_http(&server);

    let response = http
        .post(format!("{}{API_PATH}", server.uri()))
        .body("{\"amount\":100}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "paid");

    let calls = requests_to(&server, API_PATH).await;
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[1].body, b"{\"amount\":100}",
        "the retry carries the same body"
    );
    assert_eq!(requests_to(&server, "/accesstoken/get").await.len(), 2);
}

#[tokio::test]
async fn retries_only_once() {
    let server = MockServer::start().await;
    mount_token_endpoint(&server).await;
    Mock::given(matchers::path(API_PATH))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let http = authenticated_http(&server);

    let response = call_api(&http, &server).await.unwrap();
    assert_eq!(
        response.status(),
        401,
        "the second 401 is handed to the caller"
    );
    assert_eq!(requests_to(&server, API_PATH).await.len(), 2);
    assert_eq!(requests_to(&server, "/accesstoken/get").await.len(), 2);
}

#[tokio::test]
async fn a_token_failure_is_a_middleware_error_and_nothing_reaches_the_api() {
    let server = MockServer::start().await;
    Mock::given(matchers::path("/accesstoken/get"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "statusCode": 401,
            "message": "Access denied due to invalid subscription key."
        })))
        .mount(&server)
        .await;
    let http = authenticated_http(&server);

    let error = call_api(&http, &server).await.unwrap_err();
    let message = format!("{error:?} {error}");
    assert!(matches!(error, reqwest_middleware::Error::Middleware(_)));
    assert!(message.contains("subscription key"), "{message}");
    assert!(!message.contains(CLIENT_SECRET) && !message.contains(SUBSCRIPTION_KEY));
    assert!(requests_to(&server, API_PATH).await.is_empty());
}

/// APIM's own 401 for a subscription key that is wrong or lacks the product.
fn subscription_key_refusal() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(serde_json::json!({
        "statusCode": 401,
        "message": "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."
    }))
}

#[tokio::test]
async fn a_subscription_key_401_is_returned_as_is_without_a_token_request() {
    let server = MockServer::start().await;
    mount_token_endpoint(&server).await;
    Mock::given(matchers::path(API_PATH))
        .respond_with(subscription_key_refusal())
        .mount(&server)
        .await;
    let http = authenticated_http(&server);

    for _ in 0..20 {
        let response = call_api(&http, &server).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.url().path(), API_PATH, "the response as it came");
        let body = response.text().await.unwrap();
        assert!(body.contains("invalid subscription key"), "{body}");
    }
    assert_eq!(requests_to(&server, API_PATH).await.len(), 20, "no retry");
    let token_requests = requests_to(&server, "/accesstoken/get").await.len();
    assert!(token_requests <= 2, "{token_requests} token requests");
    assert_eq!(token_requests, 1, "the first token only");
}

#[tokio::test]
async fn a_challenge_other_than_invalid_token_is_returned_as_is() {
    let server = MockServer::start().await;
    mount_token_endpoint(&server).await;
    Mock::given(matchers::path(API_PATH))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            r#"Bearer error="insufficient_scope", scope="payments""#,
        ))
        .mount(&server)
        .await;
    let http = authenticated_http(&server);

    let response = call_api(&http, &server).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(requests_to(&server, API_PATH).await.len(), 1);
    assert_eq!(requests_to(&server, "/accesstoken/get").await.len(), 1);
}

#[tokio::test]
async fn an_invalid_token_challenge_is_retried_with_a_fresh_token() {
    let server = MockServer::start().await;
    mount_token_endpoint(&server).await;
    Mock::given(matchers::path(API_PATH))
        .and(matchers::header("authorization", "Bearer token-1"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"Bearer error="invalid_token""#),
        )
        .mount(&server)
        .await;
    Mock::given(matchers::path(API_PATH))
        .and(matchers::header("authorization", "Bearer token-2"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let http = authenticated_http(&server);

    let response = call_api(&http, &server).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(requests_to(&server, "/accesstoken/get").await.len(), 2);
}

#[tokio::test]
async fn forced_refreshes_are_rate_limited_per_key() {
    let server = MockServer::start().await;
    mount_token_endpoint(&server).await;
    // A bare 401 to every token: nothing the token can fix, but nothing says so.
    Mock::given(matchers::path(API_PATH))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let http = authenticated_http(&server);

    for _ in 0..20 {
        let response = call_api(&http, &server).await.unwrap();
        assert_eq!(response.status(), 401);
    }
    assert_eq!(
        requests_to(&server, "/accesstoken/get").await.len(),
        2,
        "the first token, then one forced refresh within the interval"
    );
    assert_eq!(
        requests_to(&server, API_PATH).await.len(),
        21,
        "one retry, with the refreshed token; then each 401 is handed back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_401s_for_one_stale_token_causes_one_refresh() {
    let server = MockServer::start().await;
    mount_token_endpoint(&server).await;
    Mock::given(matchers::path(API_PATH))
        .and(matchers::header("authorization", "Bearer token-1"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(matchers::path(API_PATH))
        .and(matchers::header("authorization", "Bearer token-2"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let http = authenticated_http(&server);
    // Every call below starts with token-1.
    http.get(format!("{}/warm-up", server.uri()))
        .send()
        .await
        .unwrap();

    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (http, url) = (http.clone(), format!("{}{API_PATH}", server.uri()));
            tokio::spawn(async move { http.get(url).send().await.unwrap().status() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(requests_to(&server, "/accesstoken/get").await.len(), 2);
}

/// One bare 401 on one API must not take the shared, valid token away from another API
/// while the token endpoint is down: the refused call gets its own 401 back, and the
/// other API's calls keep succeeding with the token that has an hour left.
#[tokio::test]
async fn a_bare_401_keeps_the_valid_token_while_the_token_endpoint_fails() {
    let server = MockServer::start().await;
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    Mock::given(matchers::path("/accesstoken/get"))
        .respond_with(move |_: &Request| {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                ResponseTemplate::new(200).set_body_json(standard_token_body("token-1", "3600"))
            } else {
                ResponseTemplate::new(503)
            }
        })
        .mount(&server)
        .await;
    Mock::given(matchers::path("/stray"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(matchers::path(API_PATH))
        .and(matchers::header("authorization", "Bearer token-1"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let client = ClientBuilder::with_base_url(server.uri())
        .retry_policy(vipps_access_token::RetryPolicy::none())
        .build()
        .unwrap();
    let credentials = StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY);
    let provider = TokenProvider::new(client, TokenSource::Standard(credentials));
    let http = VippsAuthMiddleware::new(provider).client().unwrap();

    assert_eq!(call_api(&http, &server).await.unwrap().status(), 200);
    let stray = http
        .get(format!("{}/stray", server.uri()))
        .send()
        .await
        .expect("the API's own answer, not the token endpoint's failure");
    assert_eq!(stray.status(), 401);
    for _ in 0..3 {
        let response = call_api(&http, &server).await.expect("served");
        assert_eq!(response.status(), 200, "the valid token is still used");
    }
    assert_eq!(
        issued.load(Ordering::SeqCst),
        2,
        "the first token, one forced refresh"
    );
}

/// A token endpoint that hangs (the embedded mock, delaying on tokio's paused clock), a
/// token client that gives up after 3 s with the default retries (about 10 s in all), and
/// an API that refuses the token. The refused call waits for the forced refresh a bounded
/// time, then gets the API's own 401; the refresh goes on without it. Both servers run on
/// the test's runtime, so that the paused clock moves only when every task waits.
#[cfg(feature = "mock")]
mod hanging_token_endpoint {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
        time::Instant,
    };
    use vipps_access_token::{
        RetryPolicy, TokenProvider, TokenSource, VippsAuthMiddleware, mock::MockServer,
    };

    /// An API on loopback: `/good` answers 200, anything else 401 with no challenge; one
    /// request a connection. Counts the 401s.
    struct Api {
        uri: String,
        refused: Arc<AtomicUsize>,
    }

    impl Api {
        async fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let uri = format!("http://{}", listener.local_addr().expect("an address"));
            let refused = Arc::new(AtomicUsize::new(0));
            let counter = refused.clone();
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let counter = counter.clone();
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut buffer = [0u8; 4096];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buffer).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buffer[..n]),
                            }
                        }
                        let status = if head.starts_with(b"GET /good ") {
                            "200 OK"
                        } else {
                            counter.fetch_add(1, Ordering::SeqCst);
                            "401 Unauthorized"
                        };
                        let reply = format!(
                            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        let _ = stream.write_all(reply.as_bytes()).await;
                    });
                }
            });
            Self { uri, refused }
        }

        fn refused(&self) -> usize {
            self.refused.load(Ordering::SeqCst)
        }
    }

    async fn token_endpoint_and_provider() -> (MockServer, TokenProvider) {
        let token = MockServer::start().await.expect("the token endpoint");
        let client = token
            .client_builder()
            .timeout(Duration::from_secs(3))
            .retry_policy(RetryPolicy::default())
            .build()
            .expect("a token client");
        let provider =
            TokenProvider::new(client, TokenSource::Standard(token.standard_credentials()));
        (token, provider)
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_waits_for_a_hanging_forced_refresh_at_most_five_seconds() {
        let (token, provider) = token_endpoint_and_provider().await;
        let api = Api::start().await;
        let http = VippsAuthMiddleware::new(provider.clone())
            .with_origin(&api.uri)
            .expect("a loopback origin")
            .client()
            .expect("the documented client");
        let good = format!("{}/good", api.uri);
        assert_eq!(http.get(&good).send().await.unwrap().status(), 200);
        assert_eq!(token.request_count(), 1);
        token.set_delay(Duration::from_secs(3600));

        let started = Instant::now();
        let refused = http
            .get(format!("{}/refuses", api.uri))
            .send()
            .await
            .expect("the API's own answer, not the token endpoint's failure");
        let waited = started.elapsed();

        assert_eq!(refused.status(), 401);
        assert_eq!(
            waited,
            Duration::from_secs(5),
            "the forced refresh is waited for 5 s, not for the token client's ~10 s budget"
        );
        assert_eq!(api.refused(), 1, "no retry");
        assert_eq!(
            token.request_count(),
            3,
            "the first token, then the forced refresh's attempts at 0 s and ~3.4 s"
        );

        // The refresh goes on in the background, to the end of its budget.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(token.request_count(), 4, "the first token, 3 attempts");
        assert!(provider.last_refresh_error().is_some());
        // The refused token, unexpired, is still served, with no wait.
        let started = Instant::now();
        assert_eq!(http.get(&good).send().await.unwrap().status(), 200);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    /// A cold cache behind a hanging token endpoint: a request with a timeout of its own
    /// fails when that runs out, saying why, instead of waiting the token client's budget.
    #[tokio::test(start_paused = true)]
    async fn a_request_timeout_bounds_the_wait_for_the_first_token() {
        let (token, provider) = token_endpoint_and_provider().await;
        token.set_delay(Duration::from_secs(3600));
        let api = Api::start().await;
        let http = VippsAuthMiddleware::new(provider)
            .with_origin(&api.uri)
            .expect("a loopback origin")
            .client()
            .expect("the documented client");

        let started = Instant::now();
        let outcome = http
            .get(format!("{}/good", api.uri))
            .timeout(Duration::from_millis(300))
            .send()
            .await;
        let waited = started.elapsed();

        let error = outcome.expect_err("no token within the request's timeout");
        assert_eq!(
            waited,
            Duration::from_millis(300),
            "the request's own timeout"
        );
        let message = format!("{error:#}");
        assert!(
            message.contains("timeout") && message.contains("token"),
            "it says what ran out: {message}"
        );
        assert_eq!(api.refused(), 0, "nothing reached the API");
        assert_eq!(token.request_count(), 1, "one fetch, which goes on");
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_for_a_forced_refresh_is_a_setting_and_a_request_timeout_bounds_it() {
        let (token, provider) = token_endpoint_and_provider().await;
        let api = Api::start().await;
        let http = VippsAuthMiddleware::new(provider)
            .with_refresh_wait(Duration::from_secs(1))
            .with_origin(&api.uri)
            .expect("a loopback origin")
            .client()
            .expect("the documented client");
        let good = format!("{}/good", api.uri);
        assert_eq!(http.get(&good).send().await.unwrap().status(), 200);
        token.set_delay(Duration::from_secs(3600));
        let refused = format!("{}/refuses", api.uri);

        let started = Instant::now();
        let response = http.get(&refused).send().await.expect("the API's answer");
        assert_eq!(response.status(), 401);
        assert_eq!(started.elapsed(), Duration::from_secs(1), "the setting");

        // Past the forced-refresh interval (5 s) and the failed refresh's end, a request
        // with a timeout of its own, shorter than the setting, waits only that long.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let before = token.request_count();
        let started = Instant::now();
        let response = http
            .get(&refused)
            .timeout(Duration::from_millis(300))
            .send()
            .await
            .expect("the API's answer");
        assert_eq!(response.status(), 401);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(300),
            "the request's own timeout"
        );
        assert_eq!(token.request_count(), before + 1, "one refresh in flight");
        assert_eq!(api.refused(), 2, "no retry");
    }
}
