//! The token broker in this process, served on loopback in front of the embedded mock (or
//! a wiremock upstream for answers the mock never gives): it answers as the API answers,
//! refuses as the API refuses without asking upstream, passes refusals on byte for byte,
//! fetches once per keys, and is not an open proxy.

#![cfg(feature = "broker")]

#[path = "support/captured_logs.rs"]
mod captured_logs;

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use futures_util::future::join_all;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};
use vipps_access_token::{
    ClientBuilder,
    broker::{Broker, ServeOptions, serve},
    http_client_builder,
    mock::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServer},
};

/// A broker served on a free loopback port until dropped (or stopped).
struct Served {
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start(upstream: &str, options: ServeOptions) -> Self {
        let client = ClientBuilder::with_base_url(upstream).build().unwrap();
        let broker = Broker::builder(client).build().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, broker.router(), options, async {
            let _ = stopped.await;
        }));
        Self {
            base_url,
            stop: Some(stop),
            task,
        }
    }

    async fn before(upstream: &str) -> Self {
        Self::start(upstream, ServeOptions::default()).await
    }

    /// Stops accepting, and waits for the requests in flight.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap();
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

fn http() -> reqwest::Client {
    http_client_builder().unwrap().no_proxy().build().unwrap()
}

/// A standard request with the example keys (and `secret` for the client secret).
fn standard(http: &reqwest::Client, url: String, secret: &str) -> reqwest::RequestBuilder {
    http.post(url)
        .header("client_id", DEFAULT_CLIENT_ID)
        .header("client_secret", secret)
        .header("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY)
}

fn partner(http: &reqwest::Client, url: String) -> reqwest::RequestBuilder {
    http.post(url)
        .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
}

fn legacy(http: &reqwest::Client, url: String) -> reqwest::RequestBuilder {
    http.post(url)
        .header("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY)
        .json(&serde_json::json!({
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "resource": "https://testapivipps.no/vippsas/recurring-payment-service",
        }))
}

/// Status, content type and body of an answer.
async fn read(request: reqwest::RequestBuilder) -> (u16, String, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The names of a JSON object's members, in order.
fn keys_in_order(body: &str) -> Vec<String> {
    // serde_json's Map is sorted, so read the names off the text.
    let value: Value = serde_json::from_str(body).unwrap();
    let mut names: Vec<(usize, String)> = value
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (body.find(&format!("\"{k}\":")).unwrap(), k.clone()))
        .collect();
    names.sort();
    names.into_iter().map(|(_, k)| k).collect()
}

#[tokio::test]
async fn each_token_path_answers_with_the_upstream_body_and_its_number_types() {
    let mock = MockServer::start().await.unwrap();
    let broker = Served::before(mock.base_url()).await;
    let http = http();
    let cases = [
        ("/accesstoken/get", true),
        ("/miami/v1/token", false),
        ("/authentication/v1/token", false),
        ("/api/v2/accesstoken/jwt", true),
    ];
    for (path, digit_strings) in cases {
        let request = |base: &str| match path {
            "/accesstoken/get" => standard(&http, format!("{base}{path}"), DEFAULT_CLIENT_SECRET),
            "/api/v2/accesstoken/jwt" => legacy(&http, format!("{base}{path}")),
            _ => partner(&http, format!("{base}{path}")),
        };
        let (direct_status, direct_type, direct) = read(request(mock.base_url())).await;
        let (status, content_type, body) = read(request(&broker.base_url)).await;
        assert_eq!((status, direct_status), (200, 200), "{path}: {body}");
        assert_eq!(
            content_type, direct_type,
            "{path}: the content type as sent"
        );
        assert_eq!(keys_in_order(&body), keys_in_order(&direct), "{path}");
        let value: Value = serde_json::from_str(&body).unwrap();
        let token = value["access_token"].as_str().unwrap();
        assert!(
            mock.verify_token(token).is_some(),
            "{path}: a token the mock issued"
        );
        let expires_in = &value["expires_in"];
        assert_eq!(
            expires_in.is_string(),
            digit_strings,
            "{path}: {expires_in}"
        );
        let seconds: u64 = match expires_in {
            Value::String(text) => text.parse().unwrap(),
            other => other.as_u64().unwrap(),
        };
        let direct: Value = serde_json::from_str(&direct).unwrap();
        let full: u64 = match &direct["expires_in"] {
            Value::String(text) => text.parse().unwrap(),
            other => other.as_u64().unwrap(),
        };
        assert!(
            seconds <= full && seconds + 5 >= full,
            "{path}: {seconds} of {full}"
        );
    }
    // Each path fetched once through the broker, once directly.
    assert_eq!(mock.request_count(), 8);
    broker.stop().await;
}

#[tokio::test]
async fn a_malformed_request_gets_the_apis_answer_and_nothing_goes_upstream() {
    let mock = MockServer::start().await.unwrap();
    let broker = Served::before(mock.base_url()).await;
    let http = http();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}"));
    type Case = (
        &'static str,
        &'static str,
        Vec<(&'static str, String)>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "no subscription key",
            "/accesstoken/get",
            vec![("client_id", DEFAULT_CLIENT_ID.into())],
            "",
        ),
        (
            "no client_id",
            "/accesstoken/get",
            vec![("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY.into())],
            "",
        ),
        (
            "no client_secret",
            "/accesstoken/get",
            vec![
                ("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY.into()),
                ("client_id", DEFAULT_CLIENT_ID.into()),
            ],
            "",
        ),
        (
            "partner with a subscription key",
            "/miami/v1/token",
            vec![
                ("Authorization", format!("Basic {basic}")),
                ("Content-Type", "application/x-www-form-urlencoded".into()),
                ("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY.into()),
            ],
            "grant_type=client_credentials",
        ),
        (
            "partner as JSON",
            "/miami/v1/token",
            vec![
                ("Authorization", format!("Basic {basic}")),
                ("Content-Type", "application/json".into()),
            ],
            r#"{"grant_type":"client_credentials"}"#,
        ),
        (
            "partner without Basic credentials",
            "/miami/v1/token",
            vec![("Content-Type", "application/x-www-form-urlencoded".into())],
            "grant_type=client_credentials",
        ),
        (
            "partner without grant_type",
            "/authentication/v1/token",
            vec![
                ("Authorization", format!("Basic {basic}")),
                ("Content-Type", "application/x-www-form-urlencoded".into()),
            ],
            "scope=x",
        ),
        (
            "partner with another grant_type",
            "/miami/v1/token",
            vec![
                ("Authorization", format!("Basic {basic}")),
                ("Content-Type", "application/x-www-form-urlencoded".into()),
            ],
            "grant_type=password",
        ),
        (
            "legacy without a JSON body",
            "/api/v2/accesstoken/jwt",
            vec![("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY.into())],
            "client_id=x",
        ),
        (
            "legacy without resource",
            "/api/v2/accesstoken/jwt",
            vec![("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY.into())],
            r#"{"client_id":"fb492b5e-7907-4d83-ba20-c7fb60ca35de","client_secret":"Y8Kteew6GE2ZmeycEt6egg=="}"#,
        ),
    ];
    for (name, path, headers, body) in cases {
        let request = |base: &str| {
            let mut request = http.post(format!("{base}{path}")).body(body);
            for (header, value) in &headers {
                request = request.header(*header, value);
            }
            request
        };
        let before = mock.request_count();
        let (status, content_type, answer) = read(request(&broker.base_url)).await;
        assert_eq!(
            mock.request_count(),
            before,
            "{name}: nothing goes upstream"
        );
        let (want_status, want_type, want) = read(request(mock.base_url())).await;
        assert_eq!(status, want_status, "{name}: {answer}");
        assert_eq!(content_type, want_type, "{name}");
        let (got, want): (Value, Value) = (
            serde_json::from_str(&answer).unwrap(),
            serde_json::from_str(&want).unwrap(),
        );
        for field in ["error", "statusCode", "message", "error_codes"] {
            assert_eq!(got.get(field), want.get(field), "{name}: {field}");
        }
    }
    broker.stop().await;
}

#[tokio::test]
async fn the_broker_is_not_an_open_proxy() {
    let mock = MockServer::start().await.unwrap();
    let broker = Served::before(mock.base_url()).await;
    let http = http();
    for (method, path) in [
        ("GET", "/accesstoken/get"),
        ("POST", "/"),
        ("POST", "/epayment/v1/payments"),
        ("PUT", "/miami/v1/token"),
        ("DELETE", "/healthz"),
        ("POST", "/accesstoken/get/../../admin"),
    ] {
        let request = http.request(method.parse().unwrap(), broker.url(path));
        let (status, content_type, body) = read(request).await;
        assert_eq!(status, 404, "{method} {path}");
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path}"
        );
        assert!(
            serde_json::from_str::<Value>(&body).is_ok(),
            "{method} {path}: {body}"
        );
    }

    // An absolute-form target (a proxy request), over a raw connection.
    let answer = raw_exchange(
        &broker.base_url,
        "POST http://example.com/accesstoken/get HTTP/1.1\r\nHost: example.com\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("not a proxy"), "{answer}");

    // A body past the cap.
    let big = "grant_type=client_credentials&scope=".to_owned() + &"x".repeat(64 * 1024);
    let (status, _, body) = read(partner(&http, broker.url("/miami/v1/token")).body(big)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(mock.request_count(), 0, "nothing went upstream");
    broker.stop().await;
}

/// Sends `request` as is and reads the whole answer (the server closes the connection).
async fn raw_exchange(base_url: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(base_url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn a_hundred_cold_requests_make_one_upstream_request() {
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_millis(50));
    let broker = Served::before(mock.base_url()).await;
    let http = http();
    let answers = join_all((0..100).map(|_| {
        read(standard(
            &http,
            broker.url("/accesstoken/get"),
            DEFAULT_CLIENT_SECRET,
        ))
    }))
    .await;
    let mut tokens: Vec<String> = answers
        .iter()
        .map(|(status, _, body)| {
            assert_eq!(*status, 200, "{body}");
            let value: Value = serde_json::from_str(body).unwrap();
            value["access_token"].as_str().unwrap().to_owned()
        })
        .collect();
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "one token for all");
    assert_eq!(mock.request_count(), 1);
    broker.stop().await;
}

#[tokio::test]
async fn a_refusal_goes_back_byte_for_byte_is_remembered_and_never_reaches_the_right_keys() {
    let mock = MockServer::start().await.unwrap();
    let broker = Served::before(mock.base_url()).await;
    let http = http();
    let right = || standard(&http, broker.url("/accesstoken/get"), DEFAULT_CLIENT_SECRET);
    let wrong = || standard(&http, broker.url("/accesstoken/get"), "not-the-secret");

    let (_, _, body) = read(right()).await;
    let token: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(mock.request_count(), 1);

    // The upstream's refusal, as it sent it.
    let refusal = "{\"error\":\"invalid_client\",\n \"error_description\":\"AADSTS7000215: Invalid client secret provided.\"}";
    mock.fail_next(1, 401, refusal);
    let (status, content_type, body) = read(wrong()).await;
    assert_eq!(status, 401);
    assert_eq!(content_type, "application/json; charset=utf-8");
    assert_eq!(body, refusal, "byte for byte");
    assert_eq!(mock.request_count(), 2);

    // Remembered: twenty more wrong requests ask the API at most once more.
    for _ in 0..20 {
        let (status, _, body) = read(wrong()).await;
        assert_eq!(status, 401);
        assert_eq!(body, refusal);
    }
    assert!(
        mock.request_count() <= 3,
        "{} requests",
        mock.request_count()
    );

    // The right keys keep their token, without asking.
    let before = mock.request_count();
    let (status, _, body) = read(right()).await;
    assert_eq!(status, 200);
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(again["access_token"], token["access_token"]);
    assert_eq!(mock.request_count(), before);
    broker.stop().await;
}

#[tokio::test]
async fn two_merchants_and_a_scope_get_tokens_of_their_own() {
    let mock = MockServer::start().await.unwrap();
    let broker = Served::before(mock.base_url()).await;
    let http = http();
    let mut tokens = Vec::new();
    for _ in 0..2 {
        for msn in ["123456", "654321"] {
            let request = standard(&http, broker.url("/accesstoken/get"), DEFAULT_CLIENT_SECRET)
                .header("Merchant-Serial-Number", msn);
            let (status, _, body) = read(request).await;
            assert_eq!(status, 200, "{body}");
            let value: Value = serde_json::from_str(&body).unwrap();
            tokens.push(value["access_token"].as_str().unwrap().to_owned());
        }
    }
    assert_ne!(tokens[0], tokens[1], "a token per merchant");
    assert_eq!(tokens[0..2], tokens[2..4], "each kept");
    assert_eq!(mock.request_count(), 2);

    let scoped =
        partner(&http, broker.url("/miami/v1/token")).body("grant_type=client_credentials&scope=a");
    let plain = partner(&http, broker.url("/miami/v1/token"));
    let (_, _, scoped) = read(scoped).await;
    let (_, _, plain) = read(plain).await;
    assert_ne!(scoped, plain);
    assert_eq!(mock.request_count(), 4);
    broker.stop().await;
}

#[tokio::test]
async fn failures_without_an_answer_say_what_happened_and_name_no_secret() {
    // An upstream that refuses connections: a port that was free a moment ago.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (logs, _guard) = captured_logs::CapturedLogs::start();
    let broker = Served::before(&format!("http://127.0.0.1:{port}")).await;
    let (status, content_type, body) = read(standard(
        &http(),
        broker.url("/accesstoken/get"),
        DEFAULT_CLIENT_SECRET,
    ))
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(content_type.starts_with("application/json"));
    let value: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["error"], "upstream_failed");
    for secret in [DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY] {
        assert!(!body.contains(secret));
        assert!(!logs.text().contains(secret), "{}", logs.text());
    }
    broker.stop().await;
}

#[tokio::test]
async fn an_upstream_redirect_is_not_followed_nor_passed_on() {
    let upstream = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            wiremock::ResponseTemplate::new(302)
                .insert_header("Location", "http://127.0.0.1:9/steal"),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let broker = Served::before(&upstream.uri()).await;
    let (status, _, body) = read(standard(
        &http(),
        broker.url("/accesstoken/get"),
        DEFAULT_CLIENT_SECRET,
    ))
    .await;
    assert_eq!(status, 502, "{body}");
    broker.stop().await;
}

#[tokio::test]
async fn a_gateway_html_page_goes_back_as_it_was_sent() {
    let upstream = wiremock::MockServer::start().await;
    let page = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>";
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(503).set_body_raw(page, "text/html"))
        .mount(&upstream)
        .await;
    let client = ClientBuilder::with_base_url(upstream.uri())
        .retry_policy(vipps_access_token::RetryPolicy::none())
        .build()
        .unwrap();
    let broker = Broker::builder(client).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(serve(
        listener,
        broker.router(),
        ServeOptions::default(),
        std::future::pending(),
    ));
    let (status, content_type, body) = read(standard(
        &http(),
        format!("{base}/accesstoken/get"),
        DEFAULT_CLIENT_SECRET,
    ))
    .await;
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (503, "text/html", page)
    );
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_client_that_sends_no_headers_is_closed_after_the_header_timeout() {
    let mock = MockServer::start().await.unwrap();
    let mut options = ServeOptions::default();
    options.header_read_timeout = Duration::from_secs(5);
    let broker = Served::start(mock.base_url(), options).await;
    let mut stream = TcpStream::connect(broker.base_url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(b"POST /accesstoken/get HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // The paused clock runs ahead to the timeout, which closes the connection.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "closed before the test's own bound");
    assert_eq!(mock.request_count(), 0);
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn past_the_connection_limit_a_client_waits_for_a_free_connection() {
    let mock = MockServer::start().await.unwrap();
    let mut options = ServeOptions::default();
    options.max_connections = 1;
    options.header_read_timeout = Duration::from_secs(600);
    let broker = Served::start(mock.base_url(), options).await;
    let addr = broker.base_url.trim_start_matches("http://").to_owned();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

    let mut first = TcpStream::connect(&addr).await.unwrap();
    first.write_all(request).await.unwrap();
    let mut buffer = [0u8; 512];
    let n = first.read(&mut buffer).await.unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));

    // The first connection stays open (kept alive): the second is not served meanwhile.
    let mut second = TcpStream::connect(&addr).await.unwrap();
    second.write_all(request).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(30), second.read(&mut buffer)).await;
    assert!(waited.is_err(), "served past the limit");

    drop(first);
    let n = second.read(&mut buffer).await.unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    broker.stop().await;
}

#[tokio::test]
async fn stopping_finishes_the_requests_in_flight() {
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_millis(300));
    let broker = Served::before(mock.base_url()).await;
    let http = http();
    let in_flight = tokio::spawn(read(standard(
        &http,
        broker.url("/accesstoken/get"),
        DEFAULT_CLIENT_SECRET,
    )));
    while mock.request_count() == 0 {
        tokio::task::yield_now().await;
    }
    broker.stop().await;
    let (status, _, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_broker_debug_shows_no_key() {
    let client = ClientBuilder::with_base_url("https://apitest.vipps.no")
        .build()
        .unwrap();
    let broker = Broker::builder(client).build().unwrap();
    let text = format!("{broker:?}");
    assert!(text.contains("apitest.vipps.no"), "{text}");
    let _ = Arc::new(broker);
}

#[tokio::test]
async fn the_js_sdks_request_as_it_sends_it_gets_the_same_token() {
    let mock = MockServer::start().await.unwrap();
    let broker = Served::before(mock.base_url()).await;
    let http = http();
    let (_, _, plain) = read(standard(
        &http,
        broker.url("/accesstoken/get"),
        DEFAULT_CLIENT_SECRET,
    ))
    .await;
    // What @vippsmobilepay/sdk 2.4.2 sends without an MSN or system names configured.
    let sdk = standard(&http, broker.url("/accesstoken/get"), DEFAULT_CLIENT_SECRET)
        .header("Content-Type", "application/json")
        .header("Authorization", "Bearer ")
        .header("Merchant-Serial-Number", "undefined")
        .header("Vipps-System-Name", "")
        .header("Vipps-System-Version", "")
        .header("Idempotency-Key", "0b9c1c8e-4a42-4a1e-9c57-5a0f3f1f2d6e");
    let (status, _, body) = read(sdk).await;
    assert_eq!(status, 200, "{body}");
    let (plain, sdk): (Value, Value) = (
        serde_json::from_str(&plain).unwrap(),
        serde_json::from_str(&body).unwrap(),
    );
    assert_eq!(
        plain["access_token"], sdk["access_token"],
        "an MSN the API ignores, ignored"
    );
    assert_eq!(mock.request_count(), 1);
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_body_that_never_arrives_is_answered_408_after_the_body_timeout() {
    let mock = MockServer::start().await.unwrap();
    let broker = Served::before(mock.base_url()).await;
    let mut stream = TcpStream::connect(broker.base_url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /miami/v1/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\r\ngrant_type",
        )
        .await
        .unwrap();
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut answer)).await;
    let n = read.expect("answered before the test's own bound").unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    assert_eq!(mock.request_count(), 0);
    broker.stop().await;
}

#[tokio::test]
async fn a_wrong_secret_for_many_merchants_asks_the_api_once() {
    let mock = MockServer::start().await.unwrap();
    let broker = Served::before(mock.base_url()).await;
    let http = http();
    for n in 0..20 {
        let request = standard(&http, broker.url("/accesstoken/get"), "not-the-secret")
            .header("Merchant-Serial-Number", format!("{}", 100_000 + n));
        let (status, _, _) = read(request).await;
        assert_eq!(status, 401);
    }
    // The keys' wait after a refusal is the keys', whatever the merchant.
    assert_eq!(mock.request_count(), 1);
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_refusal_the_store_shares_still_goes_back_as_the_upstream_sent_it() {
    use vipps_access_token::store::{FileTokenStore, SealingKeys, StoreConfig};
    let mock = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = FileTokenStore::new(
        dir.path(),
        StoreConfig::new(SealingKeys::new([7; 32], None)),
    )
    .unwrap();
    let client = ClientBuilder::with_base_url(mock.base_url())
        .without_timeouts()
        .build()
        .unwrap();
    let broker = Broker::builder(client)
        .store(Arc::new(store))
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(serve(
        listener,
        broker.router(),
        ServeOptions::default(),
        std::future::pending(),
    ));
    let http = http();
    let refusal = "{\"error\":\"invalid_client\", \"error_description\":\"AADSTS7000215: Invalid client secret provided.\"}";
    mock.fail_next(1, 401, refusal);
    let (status, _, first) =
        read(standard(&http, format!("{base}/accesstoken/get"), "wrong")).await;
    assert_eq!((status, first.as_str()), (401, refusal));
    // Past the provider's own wait (1 s), within the store's failure marker (4 s): the
    // marker keeps the status, the broker the bytes.
    tokio::time::advance(Duration::from_millis(1500)).await;
    let (status, content_type, again) =
        read(standard(&http, format!("{base}/accesstoken/get"), "wrong")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (401, "application/json; charset=utf-8")
    );
    assert_eq!(again, refusal);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_closed_and_does_not_hold_up_a_stop() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mock = MockServer::start().await.unwrap();
    let broker = Served::before(mock.base_url()).await;
    let stream = TcpStream::connect(broker.base_url.trim_start_matches("http://"))
        .await
        .unwrap();
    let (_reader, mut writer) = stream.into_split();
    // Pipelined requests, their answers never read: the broker's writes stall once the
    // socket buffers are full, and then it stops reading too.
    let written = Arc::new(AtomicUsize::new(0));
    let flood = tokio::spawn({
        let written = written.clone();
        async move {
            let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
            while writer.write_all(&request).await.is_ok() {
                written.fetch_add(request.len(), Ordering::Relaxed);
            }
        }
    });
    // Stalled: nothing more goes through while every task on this runtime has its turn.
    let mut last = usize::MAX;
    loop {
        for _ in 0..200 {
            tokio::task::yield_now().await;
        }
        let now = written.load(Ordering::Relaxed);
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    let stopped = tokio::time::timeout(Duration::from_secs(120), broker.stop()).await;
    assert!(
        stopped.is_ok(),
        "the stop waited on a client that reads nothing"
    );
    flood.abort();
}

#[tokio::test]
async fn a_caller_header_the_library_cannot_send_is_that_callers_problem_alone() {
    let mock = MockServer::start().await.unwrap();
    let broker = Served::before(mock.base_url()).await;
    let http = http();
    // 31 characters: over the spec's 30. The first caller's headers go with the keys'
    // fetches; an over-long one must not break the keys for everyone.
    let long = standard(&http, broker.url("/accesstoken/get"), DEFAULT_CLIENT_SECRET).header(
        "Vipps-System-Plugin-Name",
        "woocommerce-vipps-recurring-pay",
    );
    let (status, _, body) = read(long).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = read(standard(
        &http,
        broker.url("/accesstoken/get"),
        DEFAULT_CLIENT_SECRET,
    ))
    .await;
    assert_eq!(status, 200, "{body}");

    // A client_id the library refuses to send: a 400 naming the field, nothing upstream.
    let before = mock.request_count();
    let tab = http
        .post(broker.url("/accesstoken/get"))
        .header("client_id", "fb492b5e\t7907")
        .header("client_secret", DEFAULT_CLIENT_SECRET)
        .header("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY);
    let (status, _, body) = read(tab).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("client_id"), "{body}");
    assert!(!body.contains(DEFAULT_CLIENT_SECRET));
    assert_eq!(mock.request_count(), before);
    broker.stop().await;
}
