//! The fault matrix: how the client behaves when the network or the server misbehaves,
//! against `wiremock` servers and raw `tokio::net::TcpListener` servers on 127.0.0.1.
//! Each case checks its outcome *and* how many requests (wiremock) or connections (raw
//! listener) the server saw. Time is tokio's paused clock wherever time matters: no test
//! sleeps, and elapsed times are read from `tokio::time::Instant`.
//!
//! Unless a case says otherwise it runs on all three flows (standard, partner, legacy),
//! with the default [`RetryPolicy`] (3 attempts, 0.5 s doubling backoff with jitter in
//! the upper half, 5 s max backoff, 10 s budget).
//!
//! | case | server | expected outcome | requests / connections |
//! | --- | --- | --- | --- |
//! | connection refused, default policy | nothing listens on the port | `Transport` "could not connect", after two backoffs (0.75 s to 1.5 s paused) | 0 connections, 3 attempts |
//! | connection refused, `RetryPolicy::none()` | nothing listens on the port | `Transport` "could not connect", no wait | 0 connections, 1 attempt |
//! | reset mid-body | raw: `Content-Length: 1000`, 10 bytes, then close | `Transport` "broke off while reading", not retried | 1 connection |
//! | truncated JSON | `200`, body `{"token_type":"Bearer","expi` | `InvalidResponse` (status 200, reason "EOF ..."), not retried | 1 request |
//! | huge body with `Content-Length` | `200`, 1 MiB | `ResponseTooLarge { status: 200, limit: 65536 }`, not retried | 1 request |
//! | huge body, chunked | raw: `200`, 1 MiB in chunks | `ResponseTooLarge { status: 200 }` | 1 connection |
//! | huge body, close-delimited | raw: `200`, no length, 1 MiB, close | `ResponseTooLarge { status: 200 }` | 1 connection |
//! | huge error page | `502`, 1 MiB `text/html` | `ResponseTooLarge { status: 502 }`, not retried | 1 request |
//! | gateway HTML page | `502`, `text/html` | `Api` 502 with `ErrorBody::Text`, after two backoffs (0.75 s to 1.5 s) | 3 requests |
//! | `429` with `Retry-After: 2`, then `200` | wiremock | a token, the retry at least 2 s (paused) after the first attempt, not later than 2.5 s | 2 requests |
//! | `500` then `200` | wiremock | a token after one backoff (0.25 s to 0.5 s) | 2 requests |
//! | `400`, `401`, `403` | wiremock | `Api` with that status, not transient, no wait | 1 request each |
//! | headers never come, `RetryPolicy::none()` | raw: accepts, reads, never writes | `Transport` "timed out" after exactly the 2 s timeout | 1 connection |
//! | headers never come, default policy | raw: as above | `Transport` "timed out" after 3 × 2 s + two backoffs (6.75 s to 7.5 s), within budget + one timeout | 3 connections |
//! | body trickles | raw: headers, then 1 byte per 500 ms | `Transport` "timed out" at the 2 s timeout, a few bytes in | 1 connection |
//! | body trickles, standard flow: the URL named | as above | the message names the server's URL, not a made-up one | 1 connection |
//! | valid JSON as `text/plain` | `200`, `text/plain` token body | accepted: a token | 1 request |
//! | empty `200` | `200`, no body | `InvalidResponse`, no field, reason "the body is empty" | 1 request |
//! | redirect `302` / `307` to another port | `Location` on a second wiremock server | `Api` 302 / 307, redirect not followed | 1 request; 0 on the second server |
//! | `RetryPolicy::none()` on `503` | wiremock | `Api` 503 | 1 request |
//! | budget: `503` + `Retry-After: 4`, `max_total` 5 s | wiremock | `Api` 503 after exactly 4 s | 2 requests |
//! | `Retry-After: 120` capped at `max_backoff` 5 s | wiremock, `503` | `Api` 503 after exactly 10 s (5 s + 5 s, budget 10 s) | 3 requests |
//! | `Retry-After: 18446744073709551615` after 1.1 s, `max_backoff` `Duration::MAX` | raw: `503` | `Api` 503 at 1.1 s, no panic, no retry | 1 connection |
//! | `http://example.invalid` base URL | none | `build()` fails with `InvalidInput` on `base_url`, "https" | no network |
//! | `http://example.invalid` with `allow_insecure_http(true)`; `https://example.invalid`; `http://` on loopback | none | `build()` succeeds | no network |

#[path = "support/token_body.rs"]
mod token_body;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use token_body::standard_token_body;

use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::Instant,
};
use vipps_access_token::{
    AccessToken, ApiError, Client, ClientBuilder, Error, ErrorBody, Flow, LEGACY_TOKEN_PATH,
    LegacyResource, MAX_RESPONSE_BYTES, PARTNER_TOKEN_PATH, PartnerCredentials, RetryPolicy,
    StandardCredentials,
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{any, method, path},
};

// The documented example keys: the only keys these tests use.
#[path = "support/example_keys.rs"]
mod example_keys;
use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1Ni.fault-matrix";
const STANDARD_PATH: &str = "/accesstoken/get";

const FLOWS: [Flow; 3] = [Flow::Standard, Flow::Partner, Flow::Legacy];

/// One mebibyte: far past the 64 KiB limit.
const HUGE: usize = 1024 * 1024;

/// Connections a raw server accepts at most: every case here needs three or fewer.
const MAX_CONNECTIONS: usize = 8;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn flow_path(flow: Flow) -> &'static str {
    match flow {
        Flow::Standard => STANDARD_PATH,
        Flow::Partner => PARTNER_TOKEN_PATH,
        Flow::Legacy => LEGACY_TOKEN_PATH,
    }
}

/// A valid 200 body for `flow`.
fn token_body(flow: Flow) -> String {
    match flow {
        Flow::Partner => json!({
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 900,
        }),
        Flow::Standard | Flow::Legacy => standard_token_body(TOKEN, "3600"),
    }
    .to_string()
}

#[allow(deprecated)]
async fn request_token(client: &Client, flow: Flow) -> Result<AccessToken, Error> {
    let standard = StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY);
    match flow {
        Flow::Standard => client.standard_token(&standard).await,
        Flow::Partner => {
            let partner = PartnerCredentials::new(CLIENT_ID, CLIENT_SECRET);
            client.partner_token(&partner, None).await
        }
        Flow::Legacy => {
            client
                .legacy_token(&standard, &LegacyResource::Recurring)
                .await
        }
    }
}

/// A reqwest client with no timer at all (no timeouts, no pool reaper): under paused time
/// a pending timer would fire at once while the runtime waits on a socket. Redirects off,
/// as the library's own client has them.
fn untimed_http() -> reqwest::Client {
    vipps_access_token::http_client_builder()
        .expect("TLS set up")
        .pool_idle_timeout(None)
        .build()
        .expect("a reqwest client")
}

/// A client for `base_url` with `retry`, on [`untimed_http`].
#[allow(deprecated)] // ClientBuilder::http_client; ClientBuilder::without_timeouts replaces it
fn untimed_client(base_url: &str, retry: RetryPolicy) -> Client {
    ClientBuilder::with_base_url(base_url)
        .retry_policy(retry)
        .http_client(untimed_http())
        .build()
        .expect("a valid client")
}

/// A client with the library's own reqwest client, and a total timeout of `timeout`.
fn timed_client(base_url: &str, timeout: Duration, retry: RetryPolicy) -> Client {
    ClientBuilder::with_base_url(base_url)
        .timeout(timeout)
        .retry_policy(retry)
        .build()
        .expect("a valid client")
}

async fn requests(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .expect("request recording is on")
        .len()
}

/// Mounts `template` on every path of `server`.
async fn answer_always(server: &MockServer, template: ResponseTemplate) {
    Mock::given(method("POST"))
        .respond_with(template)
        .mount(server)
        .await;
}

fn api(error: &Error) -> &ApiError {
    match error {
        Error::Api(api) => api,
        other => panic!("expected Error::Api, got {other:?}"),
    }
}

/// The message of an `Error::Transport`, or a panic that shows what came instead.
fn transport_message(error: &Error) -> String {
    match error {
        Error::Transport(_) => error.to_string(),
        other => panic!("expected Error::Transport, got {other:?}"),
    }
}

fn expect_err(flow: Flow, result: Result<AccessToken, Error>) -> Error {
    match result {
        Ok(token) => panic!("{flow:?}: expected an error, got a token: {token:?}"),
        Err(error) => error,
    }
}

fn assert_between(flow: Flow, what: &str, elapsed: Duration, low: Duration, high: Duration) {
    assert!(
        elapsed >= low && elapsed <= high,
        "{flow:?}: {what}: {elapsed:?} is not within {low:?}..={high:?}"
    );
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A port that nothing listens on: bound, read, released.
fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
    let port = listener.local_addr().expect("a local address").port();
    drop(listener);
    port
}

/// A server on a raw socket, run as a task of the test's runtime: it accepts up to
/// [`MAX_CONNECTIONS`] connections, counts them, reads each request (head and
/// `Content-Length` body), then hands the socket to `serve`.
struct RawServer {
    url: String,
    connections: Arc<AtomicUsize>,
}

impl RawServer {
    async fn start<F, Fut>(serve: F) -> Self
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind on loopback");
        let url = format!("http://{}", listener.local_addr().expect("a local address"));
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let serve = Arc::new(serve);
        tokio::spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let serve = serve.clone();
                let reply = async move {
                    if read_request(&mut stream).await {
                        serve(stream).await;
                    }
                };
                tokio::spawn(reply);
            }
        });
        Self { url, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads one HTTP/1.1 request: the head, then as many body bytes as `Content-Length`
/// says. False when the peer went away first or the request is not one.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > 64 * 1024 {
            return false;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// A status line and headers, ending with the blank line.
fn head(status: &str, headers: &[&str]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// One mebibyte of JSON-looking filler, sent in 16 KiB pieces through `send`.
fn huge_pieces() -> impl Iterator<Item = Vec<u8>> {
    const PIECE: usize = 16 * 1024;
    (0..HUGE / PIECE).map(|i| {
        if i == 0 {
            let mut first = br#"{"token_type":"Bearer","padding":""#.to_vec();
            first.resize(PIECE, b'x');
            first
        } else {
            vec![b'x'; PIECE]
        }
    })
}

// ---------------------------------------------------------------------------------------
// Connection refused
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn connection_refused_is_retried_three_times_then_a_transport_error() {
    for flow in FLOWS {
        let client = untimed_client(
            &format!("http://127.0.0.1:{}", refused_port()),
            RetryPolicy::default(),
        );
        let started = Instant::now();
        let error = expect_err(flow, request_token(&client, flow).await);
        let elapsed = started.elapsed();

        let message = transport_message(&error);
        assert!(message.contains("could not connect"), "{flow:?}: {message}");
        assert!(
            error.is_transient(),
            "{flow:?}: a refused connection is transient"
        );
        assert_eq!(error.status(), None);
        // Two waits (0.25-0.5 s, then 0.5-1 s) mean exactly three attempts: one wait
        // would end by 0.5 s, a third would start no earlier than 1.75 s.
        assert_between(flow, "two backoffs", elapsed, secs(0.75), secs(1.5));
    }
}

#[tokio::test(start_paused = true)]
async fn connection_refused_without_retries_is_one_attempt_and_no_wait() {
    for flow in FLOWS {
        let client = untimed_client(
            &format!("http://127.0.0.1:{}", refused_port()),
            RetryPolicy::none(),
        );
        let started = Instant::now();
        let error = expect_err(flow, request_token(&client, flow).await);
        assert!(transport_message(&error).contains("could not connect"));
        assert_eq!(started.elapsed(), Duration::ZERO, "{flow:?}: no backoff");
    }
}

// ---------------------------------------------------------------------------------------
// Broken and oversized bodies
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_connection_closed_mid_body_is_a_transport_error_and_not_retried() {
    for flow in FLOWS {
        let server = RawServer::start(|mut stream| async move {
            let mut reply = head(
                "200 OK",
                &["Content-Type: application/json", "Content-Length: 1000"],
            );
            reply.extend_from_slice(br#"{"token_ty"#);
            let _ = stream.write_all(&reply).await;
            let _ = stream.shutdown().await;
        })
        .await;
        let client = untimed_client(&server.url, RetryPolicy::default());

        let error = expect_err(flow, request_token(&client, flow).await);
        let message = transport_message(&error);
        assert!(
            message.contains("broke off while reading"),
            "{flow:?}: {message}"
        );
        assert!(!error.is_transient(), "{flow:?}");
        assert_eq!(server.connections(), 1, "{flow:?}: not retried");
    }
}

#[tokio::test(start_paused = true)]
async fn truncated_json_is_an_invalid_response_and_not_retried() {
    for flow in FLOWS {
        let server = MockServer::start().await;
        answer_always(
            &server,
            ResponseTemplate::new(200)
                .set_body_raw(r#"{"token_type":"Bearer","expi"#, "application/json"),
        )
        .await;
        let client = untimed_client(&server.uri(), RetryPolicy::default());

        let error = expect_err(flow, request_token(&client, flow).await);
        match &error {
            Error::InvalidResponse(invalid) => {
                assert_eq!(invalid.status, 200, "{flow:?}");
                let reason = &invalid.reason;
                assert!(reason.contains("EOF"), "{flow:?}: {reason}");
            }
            other => panic!("{flow:?}: expected InvalidResponse, got {other:?}"),
        }
        assert!(!error.is_transient());
        assert_eq!(requests(&server).await, 1, "{flow:?}: not retried");
    }
}

fn assert_too_large(flow: Flow, error: &Error) {
    match error {
        Error::ResponseTooLarge { status, limit } => {
            assert_eq!(*status, 200, "{flow:?}");
            assert_eq!(*limit, MAX_RESPONSE_BYTES, "{flow:?}");
            assert_eq!(*limit, 64 * 1024);
        }
        other => panic!("{flow:?}: expected ResponseTooLarge, got {other:?}"),
    }
}

/// How the huge body is framed.
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// wiremock, with `Content-Length: 1048608`.
    ContentLength,
    /// A raw listener, `Transfer-Encoding: chunked`.
    Chunked,
    /// A raw listener, no length: the body ends when the connection closes.
    CloseDelimited,
}

const FRAMINGS: [Framing; 3] = [
    Framing::ContentLength,
    Framing::Chunked,
    Framing::CloseDelimited,
];

/// Serves a 1 MiB `200` framed as `framing` and asks for a token on `flow`: the error,
/// and the number of requests (wiremock) or connections (raw listener) the server saw.
async fn huge_body(flow: Flow, framing: Framing) -> (Error, usize) {
    match framing {
        Framing::ContentLength => {
            let server = MockServer::start().await;
            let body = format!(
                r#"{{"token_type":"Bearer","padding":"{}"}}"#,
                "x".repeat(HUGE)
            );
            answer_always(
                &server,
                ResponseTemplate::new(200).set_body_raw(body, "application/json"),
            )
            .await;
            let client = untimed_client(&server.uri(), RetryPolicy::default());
            let error = expect_err(flow, request_token(&client, flow).await);
            (error, requests(&server).await)
        }
        Framing::Chunked => {
            let server = RawServer::start(|mut stream| async move {
                let reply = head(
                    "200 OK",
                    &[
                        "Content-Type: application/json",
                        "Transfer-Encoding: chunked",
                    ],
                );
                if stream.write_all(&reply).await.is_err() {
                    return;
                }
                for piece in huge_pieces() {
                    let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
                    chunk.extend_from_slice(&piece);
                    chunk.extend_from_slice(b"\r\n");
                    if stream.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
            })
            .await;
            let client = untimed_client(&server.url, RetryPolicy::default());
            let error = expect_err(flow, request_token(&client, flow).await);
            (error, server.connections())
        }
        Framing::CloseDelimited => {
            let server = RawServer::start(|mut stream| async move {
                let reply = head(
                    "200 OK",
                    &["Content-Type: application/json", "Connection: close"],
                );
                if stream.write_all(&reply).await.is_err() {
                    return;
                }
                for piece in huge_pieces() {
                    if stream.write_all(&piece).await.is_err() {
                        return;
                    }
                }
                let _ = stream.shutdown().await;
            })
            .await;
            let client = untimed_client(&server.url, RetryPolicy::default());
            let error = expect_err(flow, request_token(&client, flow).await);
            (error, server.connections())
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_huge_body_is_response_too_large_on_the_partner_and_legacy_flows() {
    for flow in [Flow::Partner, Flow::Legacy] {
        for framing in FRAMINGS {
            let (error, seen) = huge_body(flow, framing).await;
            assert_too_large(flow, &error);
            assert!(!error.is_transient());
            assert_eq!(seen, 1, "{flow:?} {framing:?}: not retried");
        }
    }
}

/// The standard flow reads its 200 through the generated binding, whose body
/// `body::limit_body` cuts off with `io::Error::other(BodyLimitExceeded)`.
/// `body::is_limit_error` looks for `BodyLimitExceeded` by walking `source()`, but
/// `io::Error::source()` returns the *source of* its custom payload, not the payload, so
/// the marker is never found and the cut-off reads as `Error::Transport` ("broke off while
/// reading the response") instead. Reading does stop at the limit, and it is not retried.
#[tokio::test(start_paused = true)]

async fn a_huge_body_is_response_too_large_on_the_standard_flow() {
    for framing in FRAMINGS {
        let (error, seen) = huge_body(Flow::Standard, framing).await;
        assert_eq!(seen, 1, "{framing:?}: not retried");
        assert_too_large(Flow::Standard, &error);
    }
    // The same for a huge error page, read through the same limited body.
    let server = MockServer::start().await;
    answer_always(
        &server,
        ResponseTemplate::new(502).set_body_raw(huge_error_page(), "text/html"),
    )
    .await;
    let client = untimed_client(&server.uri(), RetryPolicy::default());
    let error = expect_err(Flow::Standard, request_token(&client, Flow::Standard).await);
    assert!(
        matches!(error, Error::ResponseTooLarge { status: 502, .. }),
        "{error:?}"
    );
}

/// A 1 MiB HTML error page.
fn huge_error_page() -> String {
    "<p>bad gateway</p>".repeat(HUGE / 16)
}

#[tokio::test(start_paused = true)]
async fn a_huge_error_page_is_response_too_large_with_its_status() {
    for flow in [Flow::Standard, Flow::Partner, Flow::Legacy] {
        let server = MockServer::start().await;
        answer_always(
            &server,
            ResponseTemplate::new(502)
                .set_body_raw("<p>bad gateway</p>".repeat(HUGE / 16), "text/html"),
        )
        .await;
        let client = untimed_client(&server.uri(), RetryPolicy::default());

        let error = expect_err(flow, request_token(&client, flow).await);
        match &error {
            Error::ResponseTooLarge { status, limit } => {
                assert_eq!(*status, 502, "{flow:?}");
                assert_eq!(*limit, MAX_RESPONSE_BYTES);
            }
            other => panic!("{flow:?}: expected ResponseTooLarge, got {other:?}"),
        }
        assert_eq!(error.status(), Some(502));
        assert_eq!(requests(&server).await, 1, "{flow:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Statuses and retries
// ---------------------------------------------------------------------------------------

const HTML_502: &str = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n\
    <body><h1>502 Bad Gateway</h1><p>The upstream server sent an invalid response.</p></body></html>\n";

#[tokio::test(start_paused = true)]
async fn a_gateway_html_page_is_retried_three_times_then_an_api_error_with_text() {
    for flow in FLOWS {
        let server = MockServer::start().await;
        answer_always(
            &server,
            ResponseTemplate::new(502).set_body_raw(HTML_502, "text/html"),
        )
        .await;
        let client = untimed_client(&server.uri(), RetryPolicy::default());

        let started = Instant::now();
        let error = expect_err(flow, request_token(&client, flow).await);
        let elapsed = started.elapsed();

        let api = api(&error);
        assert_eq!(api.status(), 502, "{flow:?}");
        assert_eq!(api.flow(), flow);
        match api.body() {
            ErrorBody::Text(text) => assert!(text.contains("502 Bad Gateway"), "{text}"),
            other => panic!("{flow:?}: expected ErrorBody::Text, got {other:?}"),
        }
        assert!(error.to_string().contains("502"), "{error}");
        assert!(error.is_transient());
        assert_eq!(requests(&server).await, 3, "{flow:?}: three attempts");
        assert_between(flow, "two backoffs", elapsed, secs(0.75), secs(1.5));
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_is_retried_after_the_wait() {
    for flow in FLOWS {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "2"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        answer_always(
            &server,
            ResponseTemplate::new(200).set_body_raw(token_body(flow), "application/json"),
        )
        .await;
        let client = untimed_client(&server.uri(), RetryPolicy::default());

        let started = Instant::now();
        let token = request_token(&client, flow)
            .await
            .unwrap_or_else(|e| panic!("{flow:?}: expected a token, got {e:?}"));
        let elapsed = started.elapsed();

        assert_eq!(token.secret().expose_secret(), TOKEN);
        assert_eq!(requests(&server).await, 2, "{flow:?}");
        // Retry-After replaces the jittered backoff (at most 0.5 s here): the clock
        // moved by the 2 s asked for, and not by more than a backoff on top.
        assert_between(flow, "Retry-After: 2", elapsed, secs(2.0), secs(2.5));
    }
}

#[tokio::test(start_paused = true)]
async fn a_500_then_a_200_is_one_retry_and_a_token() {
    for flow in FLOWS {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        answer_always(
            &server,
            ResponseTemplate::new(200).set_body_raw(token_body(flow), "application/json"),
        )
        .await;
        let client = untimed_client(&server.uri(), RetryPolicy::default());

        let started = Instant::now();
        let token = request_token(&client, flow)
            .await
            .unwrap_or_else(|e| panic!("{flow:?}: expected a token, got {e:?}"));
        let elapsed = started.elapsed();

        assert_eq!(token.secret().expose_secret(), TOKEN);
        assert_eq!(requests(&server).await, 2, "{flow:?}: one retry");
        assert_between(flow, "one backoff", elapsed, secs(0.25), secs(0.5));
    }
}

#[tokio::test(start_paused = true)]
async fn rejected_credentials_400_401_403_are_never_retried() {
    let bodies = [
        (
            400,
            r#"{"error":"unauthorized_client","error_description":"AADSTS700016: not found","error_codes":[700016],"trace_id":"t"}"#,
        ),
        (
            401,
            r#"{"statusCode":401,"message":"Access denied due to invalid subscription key."}"#,
        ),
        (
            403,
            r#"{"error":"access_denied","error_description":"The product is not active."}"#,
        ),
    ];
    for flow in FLOWS {
        for (status, body) in bodies {
            let server = MockServer::start().await;
            answer_always(
                &server,
                ResponseTemplate::new(status).set_body_raw(body, "application/json"),
            )
            .await;
            let client = untimed_client(&server.uri(), RetryPolicy::default());

            let started = Instant::now();
            let error = expect_err(flow, request_token(&client, flow).await);
            assert_eq!(api(&error).status(), status, "{flow:?}");
            assert_eq!(error.status(), Some(status));
            assert!(!error.is_transient(), "{flow:?} {status}");
            // All three reject the keys: 400 unauthorized_client is an unknown client id.
            assert!(error.is_credentials_rejected(), "{flow:?} {status}");
            assert_eq!(
                requests(&server).await,
                1,
                "{flow:?}: {status} must never be retried"
            );
            assert_eq!(started.elapsed(), Duration::ZERO, "{flow:?}: no backoff");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn retry_policy_none_makes_exactly_one_attempt() {
    for flow in FLOWS {
        let server = MockServer::start().await;
        answer_always(&server, ResponseTemplate::new(503)).await;
        let client = untimed_client(&server.uri(), RetryPolicy::none());

        let started = Instant::now();
        let error = expect_err(flow, request_token(&client, flow).await);
        assert_eq!(api(&error).status(), 503);
        assert!(error.is_transient(), "transient, and still not retried");
        assert_eq!(requests(&server).await, 1, "{flow:?}");
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}

#[tokio::test(start_paused = true)]
async fn the_total_budget_stops_retries() {
    let policy = RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(5),
        max_total: Duration::from_secs(5),
    };
    for flow in FLOWS {
        let server = MockServer::start().await;
        answer_always(
            &server,
            ResponseTemplate::new(503).insert_header("Retry-After", "4"),
        )
        .await;
        let client = untimed_client(&server.uri(), policy);

        let started = Instant::now();
        let error = expect_err(flow, request_token(&client, flow).await);
        let elapsed = started.elapsed();

        let api = api(&error);
        assert_eq!(api.status(), 503);
        assert_eq!(api.retry_after(), Some(Duration::from_secs(4)));
        // t = 0: attempt 1; t = 4 s: attempt 2; another 4 s would end past the 5 s budget.
        assert_eq!(requests(&server).await, 2, "{flow:?}");
        assert_eq!(elapsed, Duration::from_secs(4), "{flow:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped_at_max_backoff() {
    for flow in FLOWS {
        let server = MockServer::start().await;
        answer_always(
            &server,
            ResponseTemplate::new(503).insert_header("Retry-After", "120"),
        )
        .await;
        let client = untimed_client(&server.uri(), RetryPolicy::default());

        let started = Instant::now();
        let error = expect_err(flow, request_token(&client, flow).await);
        let elapsed = started.elapsed();

        assert_eq!(api(&error).status(), 503);
        // 120 s asked, 5 s (max_backoff) waited, twice: t = 0, 5 s, 10 s (budget 10 s).
        assert_eq!(requests(&server).await, 3, "{flow:?}");
        assert_eq!(elapsed, Duration::from_secs(10), "{flow:?}");
    }
}

/// `RetryPolicy`'s fields are public: `max_backoff: Duration::MAX` lets a server's
/// `Retry-After` through whole. A 503 that comes 1.1 s after the request with
/// `Retry-After: 18446744073709551615` (u64::MAX seconds) made the budget check
/// `elapsed + wait` overflow and panic the fetch; the wait is past any budget, so the 503
/// is the outcome, at once.
#[tokio::test(start_paused = true)]
async fn a_retry_after_of_u64_max_seconds_with_no_backoff_cap_ends_the_retries() {
    let policy = RetryPolicy {
        max_backoff: Duration::MAX,
        ..RetryPolicy::default()
    };
    for flow in FLOWS {
        let server = RawServer::start(|mut stream| async move {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let reply = head(
                "503 Service Unavailable",
                &["Retry-After: 18446744073709551615", "Content-Length: 0"],
            );
            let _ = stream.write_all(&reply).await;
        })
        .await;
        let client = untimed_client(&server.url, policy);

        let started = Instant::now();
        // In a task of its own, so that a panic is an outcome rather than the test's end.
        let outcome = tokio::spawn(async move { request_token(&client, flow).await }).await;
        let elapsed = started.elapsed();

        let result = outcome.unwrap_or_else(|e| panic!("{flow:?}: the fetch panicked: {e}"));
        let error = expect_err(flow, result);
        assert_eq!(api(&error).status(), 503, "{flow:?}");
        assert_eq!(
            api(&error).retry_after(),
            Some(Duration::from_secs(u64::MAX)),
            "{flow:?}"
        );
        assert_eq!(server.connections(), 1, "{flow:?}: no retry");
        assert_eq!(elapsed, Duration::from_millis(1100), "{flow:?}: no wait");
    }
}

// ---------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------

/// Reads the request, then holds the connection open without a byte in answer.
async fn never_answer(stream: TcpStream) {
    let _held = stream;
    std::future::pending::<()>().await;
}

#[tokio::test(start_paused = true)]
async fn headers_that_never_come_time_out_after_the_configured_timeout() {
    let timeout = Duration::from_secs(2);
    for flow in FLOWS {
        let server = RawServer::start(never_answer).await;
        let client = timed_client(&server.url, timeout, RetryPolicy::none());

        let started = Instant::now();
        let error = expect_err(flow, request_token(&client, flow).await);
        let elapsed = started.elapsed();

        let message = transport_message(&error);
        assert!(message.contains("timed out"), "{flow:?}: {message}");
        assert!(error.is_transient());
        assert_between(flow, "one timeout", elapsed, timeout, secs(2.01));
        assert_eq!(server.connections(), 1, "{flow:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn headers_that_never_come_are_retried_within_the_budget() {
    let timeout = Duration::from_secs(2);
    let policy = RetryPolicy::default();
    for flow in FLOWS {
        let server = RawServer::start(never_answer).await;
        let client = timed_client(&server.url, timeout, policy);

        let started = Instant::now();
        let error = expect_err(flow, request_token(&client, flow).await);
        let elapsed = started.elapsed();

        assert!(transport_message(&error).contains("timed out"));
        assert_eq!(server.connections(), 3, "{flow:?}: three attempts");
        // Three timeouts and two backoffs (0.25-0.5 s and 0.5-1 s).
        assert_between(
            flow,
            "3 timeouts + 2 backoffs",
            elapsed,
            secs(6.75),
            secs(7.5),
        );
        // No retry starts past the budget, so nothing ends later than budget + one attempt.
        assert!(elapsed <= policy.max_total + timeout, "{elapsed:?}");
    }
}

/// What a trickling body comes to on `flow`: the error, the paused time it took, the
/// bytes the server had sent by then, the connections it saw, and its URL.
struct Trickled {
    error: Error,
    elapsed: Duration,
    bytes_sent: usize,
    connections: usize,
    url: String,
}

/// Sends the headers of a token response, then its body one byte per 500 ms (paused),
/// to a client whose total timeout is `timeout`.
async fn trickle(flow: Flow, timeout: Duration) -> Trickled {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let server = RawServer::start(move |mut stream| {
        let counter = counter.clone();
        async move {
            let body = token_body(Flow::Standard);
            let length = format!("Content-Length: {}", body.len());
            let reply = head("200 OK", &["Content-Type: application/json", &length]);
            if stream.write_all(&reply).await.is_err() {
                return;
            }
            for byte in body.bytes() {
                if stream.write_all(&[byte]).await.is_err() {
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    })
    .await;
    let client = timed_client(&server.url, timeout, RetryPolicy::none());

    let started = Instant::now();
    let error = expect_err(flow, request_token(&client, flow).await);
    Trickled {
        error,
        elapsed: started.elapsed(),
        bytes_sent: sent.load(Ordering::SeqCst),
        connections: server.connections(),
        url: server.url,
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_that_trickles_slower_than_the_timeout_times_out() {
    let timeout = Duration::from_secs(2);
    for flow in FLOWS {
        let trickled = trickle(flow, timeout).await;

        let message = transport_message(&trickled.error);
        assert!(message.contains("timed out"), "{flow:?}: {message}");
        assert!(trickled.error.is_transient());
        assert_between(flow, "the timeout", trickled.elapsed, timeout, secs(2.01));
        assert!(
            (1..=5).contains(&trickled.bytes_sent),
            "{flow:?}: {} bytes trickled before the timeout",
            trickled.bytes_sent
        );
        assert_eq!(trickled.connections, 1, "{flow:?}");
    }
}

/// `body::limit_body` rebuilds the standard flow's response from an `http::Response`,
/// which has no URL, so reqwest's body errors carry its placeholder
/// `http://no.url.provided.local/`, and the message tells the user to "check the base URL"
/// while naming one that was never called.
#[tokio::test(start_paused = true)]

async fn a_body_timeout_on_the_standard_flow_names_no_made_up_url() {
    let trickled = trickle(Flow::Standard, Duration::from_secs(2)).await;
    let message = transport_message(&trickled.error);
    assert!(message.contains("timed out"), "{message}");
    assert!(
        !message.contains("no.url.provided"),
        "names a URL that was never called: {message}"
    );
    if message.contains("http://") {
        assert!(message.contains(&trickled.url), "{message}");
    }
}

// ---------------------------------------------------------------------------------------
// Odd but acceptable, and odd and refused
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn valid_json_under_a_text_plain_content_type_is_accepted() {
    for flow in FLOWS {
        let server = MockServer::start().await;
        answer_always(
            &server,
            ResponseTemplate::new(200).set_body_raw(token_body(flow), "text/plain"),
        )
        .await;
        let client = untimed_client(&server.uri(), RetryPolicy::default());

        let token = request_token(&client, flow)
            .await
            .unwrap_or_else(|e| panic!("{flow:?}: text/plain JSON must be accepted: {e:?}"));
        assert_eq!(token.secret().expose_secret(), TOKEN);
        assert_eq!(token.flow(), flow);
        assert_eq!(requests(&server).await, 1, "{flow:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_empty_200_is_an_invalid_response_saying_the_body_is_empty() {
    for flow in FLOWS {
        let server = MockServer::start().await;
        answer_always(&server, ResponseTemplate::new(200)).await;
        let client = untimed_client(&server.uri(), RetryPolicy::default());

        let error = expect_err(flow, request_token(&client, flow).await);
        match &error {
            Error::InvalidResponse(invalid) => {
                assert_eq!(invalid.status, 200);
                assert_eq!(invalid.field, None, "{flow:?}");
                let reason = &invalid.reason;
                assert!(reason.contains("the body is empty"), "{flow:?}: {reason}");
            }
            other => panic!("{flow:?}: expected InvalidResponse, got {other:?}"),
        }
        assert!(error.to_string().contains("the body is empty"), "{error}");
        assert_eq!(requests(&server).await, 1, "{flow:?}: not retried");
    }
}

#[tokio::test]
async fn a_redirect_to_another_port_is_not_followed() {
    for status in [302, 307] {
        for flow in FLOWS {
            let first = MockServer::start().await;
            let second = MockServer::start().await;
            Mock::given(any())
                .respond_with(ResponseTemplate::new(200))
                .expect(0)
                .mount(&second)
                .await;
            Mock::given(method("POST"))
                .and(path(flow_path(flow)))
                .respond_with(
                    ResponseTemplate::new(status)
                        .insert_header("Location", format!("{}{}", second.uri(), flow_path(flow))),
                )
                .expect(1)
                .mount(&first)
                .await;
            // The library's own reqwest client: the point is its redirect policy.
            let client = ClientBuilder::with_base_url(first.uri())
                .build()
                .expect("a valid client");

            let error = expect_err(flow, request_token(&client, flow).await);
            assert_eq!(api(&error).status(), status, "{flow:?}");
            assert_eq!(error.status(), Some(status));
            assert_eq!(requests(&first).await, 1, "{flow:?} {status}");
            assert_eq!(
                requests(&second).await,
                0,
                "{flow:?} {status}: the credentials reached the redirect target"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Base URL schemes: checked in build(), before any network use
// ---------------------------------------------------------------------------------------

#[test]
fn plain_http_off_loopback_is_rejected_by_build() {
    for url in [
        "http://example.invalid",
        "http://example.invalid:8080/",
        "http://10.0.0.1",
        "http://0.0.0.0",
        "http://localhost.example.invalid",
    ] {
        let error = ClientBuilder::with_base_url(url).build().expect_err(url);
        match &error {
            Error::InvalidInput(invalid) => {
                assert_eq!(invalid.field, "base_url", "{url}");
                let reason = &invalid.reason;
                assert!(reason.contains("https"), "{url}: {reason}");
            }
            other => panic!("{url}: expected InvalidInput, got {other:?}"),
        }
        assert!(error.to_string().contains("nothing was sent"), "{error}");
        assert_eq!(error.status(), None);
    }
}

#[test]
fn plain_http_off_loopback_is_accepted_when_allowed() {
    let client = ClientBuilder::with_base_url("http://example.invalid")
        .allow_insecure_http(true)
        .build()
        .expect("allowed");
    assert_eq!(client.base_url(), "http://example.invalid");
}

#[test]
fn https_and_loopback_http_are_accepted() {
    for (url, expected) in [
        ("https://example.invalid", "https://example.invalid"),
        ("https://example.invalid/", "https://example.invalid"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ] {
        let client = ClientBuilder::with_base_url(url)
            .build()
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(client.base_url(), expected);
    }
}
