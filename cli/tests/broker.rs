//! `vipps-token serve`, black-box: the broker runs as a real process, its clients are `curl`
//! processes (where a separate process is the point) and reqwest, and its upstream is the
//! embedded mock in this test process. Each test stops every process it starts; a panic
//! leaves none behind (`kill_on_drop`).
//!
//! Without `curl` on PATH the curl tests are skipped with a message, unless
//! `VIPPS_REQUIRE_CURL=1` makes that a failure; the Redis tests likewise with
//! `VIPPS_REQUIRE_REDIS=1`.

#[path = "../../tests/support/cli_binary.rs"]
mod cli_binary;
#[path = "../../tests/support/eventually.rs"]
mod eventually;
#[path = "../../tests/support/redis_server.rs"]
#[macro_use]
mod redis_server;

use std::{
    collections::BTreeSet,
    future::Future,
    io::Write as _,
    path::Path,
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use eventually::until;
use redis_server::RedisServer;
use serde_json::Value;
use tempfile::TempDir;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader},
    process::{Child, Command},
    task::JoinHandle,
};
use vipps_access_token::mock::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServer,
};

/// The bound on every wait: a process starting, answering or exiting.
const BOUND: Duration = Duration::from_secs(10);

/// A sealing key for the Redis store (base64 of 32 bytes).
const STORE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A client secret the mock does not accept, distinctive enough to search logs for.
const WRONG_SECRET: &str = "wrong-secret-Zq7Xv2Lp9Rt4Wm8K";

/// The legacy endpoint's resource, as the docs show it.
const RESOURCE: &str = "https://testapivipps.no/vippsas/recurring-payment-service";

const STANDARD_PATH: &str = "/accesstoken/get";
const PARTNER_PATH: &str = "/miami/v1/token";
const RENAMED_PARTNER_PATH: &str = "/authentication/v1/token";
const LEGACY_PATH: &str = "/api/v2/accesstoken/jwt";

// ---------------------------------------------------------------------------------------
// The broker process.

/// A `vipps-token serve` about to start: on `127.0.0.1:0`, fetching from the mock, with a
/// cache directory of its own (never the real home cache) and no inherited environment.
struct Serve {
    command: Command,
    cache: TempDir,
}

impl Serve {
    fn new(mock: &MockServer) -> Self {
        let cache = tempfile::tempdir().expect("a temp dir for the cache");
        let mut command = Command::new(cli_binary::bin());
        command
            .env_clear()
            .env("XDG_CACHE_HOME", cache.path())
            .env("HOME", cache.path())
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--upstream",
                mock.base_url(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Self { command, cache }
    }

    /// Shares tokens through `redis` with the sealing key every broker of the test uses.
    fn redis(mut self, redis: &RedisServer) -> Self {
        self.command
            .args(["--store", &redis.url()])
            .env("VIPPS_TOKEN_STORE_KEY", STORE_KEY);
        self
    }

    /// Keeps tokens in the file cache in `dir`.
    fn file_store(mut self, dir: &Path) -> Self {
        self.command
            .arg("--store")
            .arg(format!("file:{}", dir.display()));
        self
    }

    /// Starts it and waits (bounded) for the base URL on the first line of its stdout.
    async fn start(mut self) -> Broker {
        let mut child = self.command.spawn().expect("vipps-token serve starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut drains = vec![drain(
            child.stderr.take().expect("serve's stderr"),
            Arc::clone(&stderr),
        )];
        let mut stdout = BufReader::new(child.stdout.take().expect("serve's stdout"));
        let mut first = String::new();
        let read = tokio::time::timeout(BOUND, stdout.read_line(&mut first)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(BOUND, child.wait()).await;
            for task in drains {
                let _ = tokio::time::timeout(BOUND, task).await;
            }
            panic!(
                "serve printed no base URL ({read:?}); stderr:\n{}",
                String::from_utf8_lossy(&stderr.lock().unwrap())
            );
        }
        // Anything it prints later, kept with stderr so that a failure message shows it.
        drains.push(drain(stdout, Arc::clone(&stderr)));
        let url = first.trim_end().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Broker {
            url,
            child,
            stderr,
            drains,
            _cache: self.cache,
        }
    }
}

/// Reads `from` to its end into `into`, so that the process never blocks on a full pipe.
fn drain(
    mut from: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = from.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buffer[..n]);
        }
    })
}

/// A running broker.
struct Broker {
    /// The base URL it printed, such as `http://127.0.0.1:41234`.
    url: String,
    child: Child,
    /// Its stderr, and anything on stdout after the base URL (so a check for secrets
    /// in its output covers both).
    stderr: Arc<Mutex<Vec<u8>>>,
    drains: Vec<JoinHandle<()>>,
    _cache: TempDir,
}

impl Broker {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Its stderr so far (with any later stdout).
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Sends SIGTERM and waits (bounded) for it to exit: its exit status and all of its
    /// stderr.
    async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().expect("the broker still runs");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid}");
        let status = bounded("the broker's exit after SIGTERM", self.child.wait())
            .await
            .expect("the broker's exit status");
        (status, self.finish().await)
    }

    /// Sends SIGKILL, as a crash would, and waits (bounded) for it to die.
    async fn sigkill(mut self) -> ExitStatus {
        self.child.start_kill().expect("SIGKILL is sent");
        bounded("the broker's death after SIGKILL", self.child.wait())
            .await
            .expect("the broker's exit status")
    }

    /// All of its output, once it has exited.
    async fn finish(&mut self) -> String {
        for task in self.drains.drain(..) {
            bounded("the broker's output to close", task)
                .await
                .expect("the drain task");
        }
        self.stderr()
    }

    /// Stops it with SIGTERM and asserts that it exits 0.
    async fn stop(self) -> String {
        let (status, stderr) = self.terminate().await;
        assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
        stderr
    }
}

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not within {BOUND:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Answers and clients.

/// An HTTP answer as a client sees it.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The token of a 200 answer.
    fn access_token(&self) -> String {
        assert_eq!(self.status, 200, "{}", self.text());
        self.json()["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token: {}", self.text()))
            .to_owned()
    }

    /// The names of the body's JSON members, sorted.
    fn keys(&self) -> BTreeSet<String> {
        self.json()
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {}", self.text()))
            .keys()
            .cloned()
            .collect()
    }
}

/// The test's HTTP client: no proxy, a bound on every request.
fn http() -> reqwest::Client {
    vipps_access_token::http_client_builder()
        .expect("a client builder")
        .no_proxy()
        .timeout(BOUND)
        .build()
        .expect("a client")
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|value| value.to_str().expect("a text content type").to_owned())
        .unwrap_or_default();
    let body = response.bytes().await.expect("a body").to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}

/// `POST /accesstoken/get` at `base` with the example keys but `secret`, and an MSN.
fn standard(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    msn: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = http
        .post(format!("{base}{STANDARD_PATH}"))
        .header("client_id", DEFAULT_CLIENT_ID)
        .header("client_secret", secret)
        .header("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY);
    match msn {
        Some(msn) => request.header("Merchant-Serial-Number", msn),
        None => request,
    }
}

/// `POST /miami/v1/token` at `base` with the example id and `secret` as Basic credentials.
fn partner(http: &reqwest::Client, base: &str, secret: &str) -> reqwest::RequestBuilder {
    http.post(format!("{base}{PARTNER_PATH}"))
        .header("Authorization", basic(secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
}

/// `POST /api/v2/accesstoken/jwt` at `base` with the example keys but `secret`.
fn legacy(http: &reqwest::Client, base: &str, secret: &str) -> reqwest::RequestBuilder {
    http.post(format!("{base}{LEGACY_PATH}"))
        .header("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY)
        .header("Content-Type", "application/json")
        .body(legacy_body(secret))
}

fn legacy_body(secret: &str) -> String {
    serde_json::json!({
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": secret,
        "resource": RESOURCE,
    })
    .to_string()
}

/// `Basic base64(client_id:secret)`.
fn basic(secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{DEFAULT_CLIENT_ID}:{secret}"))
    )
}

/// Whether `curl` runs here; if not, says that `test` is skipped, or fails it when
/// `VIPPS_REQUIRE_CURL=1`.
fn curl_available(test: &str) -> bool {
    let runs = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !runs {
        let required = std::env::var("VIPPS_REQUIRE_CURL").is_ok_and(|v| v == "1");
        assert!(!required, "VIPPS_REQUIRE_CURL=1 but `curl` is not on PATH");
        // Straight to stderr, past the test harness's capture: a skip must show.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: `curl` is not on PATH; set VIPPS_REQUIRE_CURL=1 to make this a failure"
        );
    }
    runs
}

macro_rules! curl_or_skip {
    ($name:literal) => {
        if !curl_available($name) {
            return;
        }
    };
}

/// `curl` with the options every run here needs: silent but for errors, no proxy, bounded.
fn curl_command() -> Command {
    let mut command = Command::new("curl");
    command
        .args([
            "--silent",
            "--show-error",
            "--noproxy",
            "*",
            "--max-time",
            "10",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// One curl run with `args`: the body, status and content type it got.
async fn curl(args: &[String]) -> Reply {
    let output = bounded(
        "curl",
        curl_command()
            .args(args)
            .args(["--write-out", "\n%{http_code}\n%{content_type}"])
            .output(),
    )
    .await
    .expect("curl runs");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut parts = output.stdout.rsplitn(3, |b| *b == b'\n');
    let content_type = String::from_utf8(parts.next().unwrap().to_vec()).unwrap();
    let status = std::str::from_utf8(parts.next().expect("curl's status line"))
        .unwrap()
        .parse()
        .expect("a status code");
    let body = parts.next().expect("curl's body").to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}

/// The request to `path` at `base` as the Access Token API's docs show it with curl.
fn documented_request(base: &str, path: &str) -> Vec<String> {
    let url = format!("{base}{path}");
    let args: Vec<String> = match path {
        STANDARD_PATH => vec![
            url,
            "-H".into(),
            format!("client_id: {DEFAULT_CLIENT_ID}"),
            "-H".into(),
            format!("client_secret: {DEFAULT_CLIENT_SECRET}"),
            "-H".into(),
            format!("Ocp-Apim-Subscription-Key: {DEFAULT_SUBSCRIPTION_KEY}"),
            "-H".into(),
            "Merchant-Serial-Number: 123456".into(),
            "-H".into(),
            "Vipps-System-Name: acme".into(),
            "-H".into(),
            "Vipps-System-Version: 3.1.2".into(),
            "-H".into(),
            "Vipps-System-Plugin-Name: acme-webshop".into(),
            "-H".into(),
            "Vipps-System-Plugin-Version: 4.5.6".into(),
            "-X".into(),
            "POST".into(),
            "--data".into(),
            String::new(),
        ],
        PARTNER_PATH | RENAMED_PARTNER_PATH => vec![
            "-X".into(),
            "POST".into(),
            url,
            "-H".into(),
            format!("Authorization: {}", basic(DEFAULT_CLIENT_SECRET)),
            "-H".into(),
            "Content-Type: application/x-www-form-urlencoded".into(),
            "-d".into(),
            "grant_type=client_credentials".into(),
        ],
        LEGACY_PATH => vec![
            "-X".into(),
            "POST".into(),
            url,
            "-H".into(),
            "Content-Type: application/json".into(),
            "-H".into(),
            format!("Ocp-Apim-Subscription-Key: {DEFAULT_SUBSCRIPTION_KEY}"),
            "-d".into(),
            legacy_body(DEFAULT_CLIENT_SECRET),
        ],
        other => panic!("no documented request for {other}"),
    };
    args
}

/// The names of the token records in `redis` (not leases nor failure markers).
async fn record_names(redis: &RedisServer) -> Vec<String> {
    let mut connection = redis::Client::open(redis.url())
        .expect("a redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a connection to redis");
    let mut names: Vec<String> =
        redis::AsyncCommands::keys(&mut connection, "vipps-access-token:*")
            .await
            .expect("KEYS");
    names.retain(|name| !name.ends_with(":lease") && !name.ends_with(":failed"));
    names
}

/// True for a JSON string of digits only, as the real API sends its numbers.
fn is_digit_string(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_the_standard_partner_and_legacy_tokens_through_the_broker() {
    curl_or_skip!("curl_gets_the_standard_partner_and_legacy_tokens_through_the_broker");
    let mock = MockServer::start().await.unwrap();
    let broker = Serve::new(&mock).start().await;
    for (path, lifetime) in [
        (STANDARD_PATH, 3600),
        (PARTNER_PATH, 900),
        (RENAMED_PARTNER_PATH, 900),
        (LEGACY_PATH, 3600),
    ] {
        // What the mock itself answers to the same request, for the shape to compare with.
        let direct = curl(&documented_request(mock.base_url(), path)).await;
        assert_eq!(direct.status, 200, "{path} at the mock: {}", direct.text());

        let before = mock.requests_to(path);
        let brokered = curl(&documented_request(&broker.url, path)).await;
        assert_eq!(
            brokered.status,
            200,
            "{path}: {}\nstderr:\n{}",
            brokered.text(),
            broker.stderr()
        );
        assert_eq!(brokered.content_type, direct.content_type, "{path}");
        assert_eq!(brokered.keys(), direct.keys(), "{path}: the same members");
        assert_eq!(mock.requests_to(path), before + 1, "{path}: one fetch");
        let token = brokered.access_token();
        assert!(
            mock.verify_token(&token).is_some(),
            "{path}: a token the mock signed"
        );
        let body = brokered.json();
        let expires_in = &body["expires_in"];
        let seconds = if path == PARTNER_PATH || path == RENAMED_PARTNER_PATH {
            assert!(expires_in.is_u64(), "{path}: a number: {body}");
            expires_in.as_u64().unwrap()
        } else {
            assert!(
                is_digit_string(expires_in),
                "{path}: a digit string: {body}"
            );
            expires_in.as_str().unwrap().parse().unwrap()
        };
        assert!(
            (lifetime - 60..=lifetime).contains(&seconds),
            "{path}: the seconds left of a {lifetime} s token: {body}"
        );

        // Asked again: the same token, from the broker's cache.
        let again = curl(&documented_request(&broker.url, path)).await;
        assert_eq!(again.access_token(), token, "{path}");
        assert_eq!(
            mock.requests_to(path),
            before + 1,
            "{path}: no second fetch"
        );
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_of_25_concurrent_requests_cold_make_one_upstream_request() {
    curl_or_skip!("four_processes_of_25_concurrent_requests_cold_make_one_upstream_request");
    let mock = MockServer::start().await.unwrap();
    // A slow upstream: the requests that arrive while the one fetch is out must wait for it.
    mock.set_delay(Duration::from_millis(300));
    let broker = Serve::new(&mock).start().await;
    let bodies = tempfile::tempdir().unwrap();
    let url = broker.url(STANDARD_PATH);
    let processes: Vec<Child> = (0..4)
        .map(|process| {
            let mut command = curl_command();
            command
                .args(["--parallel", "--parallel-immediate", "--parallel-max", "25"])
                .args(["-X", "POST", "--data", ""])
                .args(["-H", &format!("client_id: {DEFAULT_CLIENT_ID}")])
                .args(["-H", &format!("client_secret: {DEFAULT_CLIENT_SECRET}")])
                .args([
                    "-H",
                    &format!("Ocp-Apim-Subscription-Key: {DEFAULT_SUBSCRIPTION_KEY}"),
                ])
                .args(["--write-out", "%{http_code} %{num_connects}\n"]);
            for request in 0..25 {
                command
                    .arg("-o")
                    .arg(bodies.path().join(format!("{process}-{request}.json")))
                    .arg(&url);
            }
            command.spawn().expect("curl starts")
        })
        .collect();
    for (process, child) in processes.into_iter().enumerate() {
        let output = bounded("a curl process", child.wait_with_output())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "curl {process}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // `200 1` each: a 200, on a connection of its own (curl reuses an idle one when
        // it can, so 25 new connections are 25 requests in flight at once).
        let answers: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            answers,
            ["200 1"; 25],
            "curl {process}:\n{}",
            broker.stderr()
        );
    }
    let mut tokens = BTreeSet::new();
    for process in 0..4 {
        for request in 0..25 {
            let body = std::fs::read(bodies.path().join(format!("{process}-{request}.json")))
                .expect("each request's body");
            let body: Value = serde_json::from_slice(&body).expect("a JSON body");
            tokens.insert(body["access_token"].as_str().expect("a token").to_owned());
        }
    }
    assert_eq!(tokens.len(), 1, "one token for all 100: {tokens:?}");
    assert!(mock.verify_token(tokens.first().unwrap()).is_some());
    assert_eq!(mock.requests_to(STANDARD_PATH), 1, "one upstream request");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_gets_the_upstream_401_byte_for_byte_and_the_right_keys_keep_their_token() {
    let mock = MockServer::start().await.unwrap();
    let broker = Serve::new(&mock).start().await;
    let http = http();

    let right = send(standard(&http, &broker.url, DEFAULT_CLIENT_SECRET, None)).await;
    let token = right.access_token();
    assert_eq!(mock.requests_to(STANDARD_PATH), 1);

    // The mock's own refusal, asked directly, and the broker's for the same request.
    let direct = send(standard(&http, mock.base_url(), WRONG_SECRET, None)).await;
    assert_eq!(direct.status, 401, "{}", direct.text());
    let before = mock.requests_to(STANDARD_PATH);
    let refused = send(standard(&http, &broker.url, WRONG_SECRET, None)).await;
    assert_eq!(
        mock.requests_to(STANDARD_PATH),
        before + 1,
        "asked upstream once"
    );
    assert_eq!(refused.status, direct.status, "{}", refused.text());
    assert_eq!(refused.content_type, direct.content_type);
    assert_eq!(refused.keys(), direct.keys(), "{}", refused.text());
    let (ours, theirs) = (refused.json(), direct.json());
    assert_eq!(ours["error"], theirs["error"]);
    assert_eq!(ours["error_codes"], theirs["error_codes"]);
    assert_eq!(ours["error"], "invalid_client");

    // Remembered: 20 more cost at most one more upstream request (should the backoff end
    // among them), and each is the refusal as an upstream sent it.
    let before = mock.requests_to(STANDARD_PATH);
    let mut bodies = BTreeSet::from([refused.body.clone()]);
    for _ in 0..20 {
        let again = send(standard(&http, &broker.url, WRONG_SECRET, None)).await;
        assert_eq!(again.status, 401, "{}", again.text());
        assert_eq!(again.content_type, refused.content_type);
        assert_eq!(again.json()["error_codes"], theirs["error_codes"]);
        bodies.insert(again.body);
    }
    let more = mock.requests_to(STANDARD_PATH) - before;
    assert!(
        more <= 1,
        "{more} upstream requests for 20 remembered refusals"
    );
    assert!(
        bodies.len() as u64 <= 1 + more,
        "{} different bodies from {more} more upstream answers: a refusal was rewritten",
        bodies.len()
    );

    // Another wrong secret, never seen, 20 times at once: one upstream request for all.
    let other_wrong = format!("{WRONG_SECRET}-at-once");
    let before = mock.requests_to(STANDARD_PATH);
    let replies = futures_util::future::join_all(
        (0..20).map(|_| send(standard(&http, &broker.url, &other_wrong, None))),
    )
    .await;
    for reply in &replies {
        assert_eq!(reply.status, 401, "{}", reply.text());
    }
    assert_eq!(
        mock.requests_to(STANDARD_PATH),
        before + 1,
        "20 concurrent wrong-secret requests, one upstream request"
    );

    // The right keys still have their token, without asking.
    let before = mock.requests_to(STANDARD_PATH);
    let right = send(standard(&http, &broker.url, DEFAULT_CLIENT_SECRET, None)).await;
    assert_eq!(right.access_token(), token);
    assert_eq!(mock.requests_to(STANDARD_PATH), before);
    broker.stop().await;
}

/// Test 3's second variant: a fixed refusal (odd spacing and all), the first request a
/// fresh broker sends upstream for the keys, comes back byte for byte, and again from
/// memory without a second upstream request. The same for a 400 and a 403, and for a
/// plain-text body; each set of wrong keys has its own refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canned_refusal_is_passed_back_byte_for_byte() {
    const CANNED: &str = "{ \"error\" : \"invalid_client\",  \"error_description\": \
                          \"AADSTS7000215: Invalid client secret provided.\",\n \
                          \"error_codes\": [ 7000215 ], \"trace_id\": \
                          \"00000000-0000-4000-8000-000000000000\" }";
    const JSON: &str = "application/json; charset=utf-8";
    let mock = MockServer::start().await.unwrap();
    let broker = Serve::new(&mock).start().await;
    let http = http();
    for (upstream, status, body, content_type) in [
        (1, 401, CANNED, JSON),
        (
            2,
            400,
            "{\"error\":\"invalid_request\" , \"error_codes\":[900144]}",
            JSON,
        ),
        (
            3,
            403,
            "Forbidden: this key may not call this API\n",
            "text/plain; charset=utf-8",
        ),
    ] {
        let secret = format!("{WRONG_SECRET}-{status}");
        mock.fail_next(1, status, body);
        for _ in 0..2 {
            let refused = send(standard(&http, &broker.url, &secret, None)).await;
            assert_eq!(refused.status, status, "{}", refused.text());
            assert_eq!(refused.content_type, content_type, "{status}");
            assert_eq!(refused.text(), body, "{status}");
            assert_eq!(
                mock.request_count(),
                upstream,
                "{status}: remembered, not asked again"
            );
        }
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_merchant_serial_numbers_get_two_tokens() {
    let mock = MockServer::start().await.unwrap();
    let broker = Serve::new(&mock).start().await;
    let http = http();
    let token = async |msn| {
        send(standard(
            &http,
            &broker.url,
            DEFAULT_CLIENT_SECRET,
            Some(msn),
        ))
        .await
        .access_token()
    };
    let (first, second) = (token("123456").await, token("654321").await);
    assert_ne!(first, second, "one token per merchant");
    assert!(mock.verify_token(&first).is_some() && mock.verify_token(&second).is_some());
    assert_eq!(mock.requests_to(STANDARD_PATH), 2);
    assert_eq!(token("123456").await, first);
    assert_eq!(token("654321").await, second);
    assert_eq!(mock.requests_to(STANDARD_PATH), 2, "both cached");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_brokers_on_one_redis_fetch_once() {
    let redis = redis_or_skip!("two_brokers_on_one_redis_fetch_once");
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_millis(300));
    let (a, b) = tokio::join!(
        Serve::new(&mock).redis(&redis).start(),
        Serve::new(&mock).redis(&redis).start()
    );
    let http = http();
    let replies = futures_util::future::join_all((0..40).map(|i| {
        let base = if i % 2 == 0 { &a.url } else { &b.url };
        send(standard(&http, base, DEFAULT_CLIENT_SECRET, None))
    }))
    .await;
    let tokens: BTreeSet<String> = replies.iter().map(Reply::access_token).collect();
    assert_eq!(
        tokens.len(),
        1,
        "{tokens:?}\nA:\n{}\nB:\n{}",
        a.stderr(),
        b.stderr()
    );
    assert_eq!(mock.requests_to(STANDARD_PATH), 1, "one fetch for both");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_with_sigkill_leaves_its_twin_serving() {
    let redis = redis_or_skip!("a_broker_killed_with_sigkill_leaves_its_twin_serving");
    let mock = MockServer::start().await.unwrap();
    let first = Serve::new(&mock).redis(&redis).start().await;
    let twin = Serve::new(&mock).redis(&redis).start().await;
    let http = http();
    let token = send(standard(&http, &first.url, DEFAULT_CLIENT_SECRET, None))
        .await
        .access_token();
    assert_eq!(mock.requests_to(STANDARD_PATH), 1);
    // The record is saved just after the token is handed out: a crash before that loses
    // it (by design), so the kill waits for it to be in the store.
    until(async || !record_names(&redis).await.is_empty()).await;
    let status = first.sigkill().await;
    assert_eq!(status.code(), None, "killed by a signal: {status}");

    let served = send(standard(&http, &twin.url, DEFAULT_CLIENT_SECRET, None)).await;
    assert_eq!(served.access_token(), token, "{}", twin.stderr());
    assert_eq!(
        mock.requests_to(STANDARD_PATH),
        1,
        "the twin read the store"
    );
    let other = send(standard(
        &http,
        &twin.url,
        DEFAULT_CLIENT_SECRET,
        Some("654321"),
    ))
    .await
    .access_token();
    assert_ne!(other, token);
    assert_eq!(mock.requests_to(STANDARD_PATH), 2, "one fetch for new keys");
    twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_on_the_file_cache_makes_no_upstream_request() {
    let mock = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let http = http();

    let first = Serve::new(&mock).file_store(dir.path()).start().await;
    let token = send(standard(&http, &first.url, DEFAULT_CLIENT_SECRET, None))
        .await
        .access_token();
    assert_eq!(mock.requests_to(STANDARD_PATH), 1);
    first.stop().await;

    let second = Serve::new(&mock).file_store(dir.path()).start().await;
    let again = send(standard(&http, &second.url, DEFAULT_CLIENT_SECRET, None)).await;
    assert_eq!(again.access_token(), token, "{}", second.stderr());
    assert_eq!(
        mock.requests_to(STANDARD_PATH),
        1,
        "read from the file cache"
    );
    second.stop().await;

    let signature = token.rsplit('.').next().unwrap();
    let mut files = 0;
    let mut pending = vec![dir.path().to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        let name = path.to_string_lossy();
        for (what, clear) in [
            ("the client secret", DEFAULT_CLIENT_SECRET),
            ("the subscription key", DEFAULT_SUBSCRIPTION_KEY),
            ("the access token", token.as_str()),
            ("the token's signature", signature),
        ] {
            assert!(
                !bytes.windows(clear.len()).any(|w| w == clear.as_bytes()),
                "{name} holds {what} in the clear"
            );
            assert!(!name.contains(clear), "{name} names {what}");
        }
    }
    assert!(files > 0, "the token was kept in {}", dir.path().display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_exits_0() {
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_millis(500));
    let broker = Serve::new(&mock).start().await;
    let http = http();
    let request = tokio::spawn(send(standard(
        &http,
        &broker.url,
        DEFAULT_CLIENT_SECRET,
        None,
    )));
    // In flight: the broker's fetch for it has reached the (slow) upstream.
    until(async || mock.request_count() == 1).await;
    let (status, stderr) = broker.terminate().await;
    let reply = bounded("the in-flight request", request).await.unwrap();
    assert_eq!(reply.status, 200, "{}\nstderr:\n{stderr}", reply.text());
    assert!(mock.verify_token(&reply.access_token()).is_some());
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_beyond_loopback_without_tls_is_refused() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let run = async |args: &[&str]| {
        bounded(
            "serve to refuse",
            Command::new(cli_binary::bin())
                .env_clear()
                .env("XDG_CACHE_HOME", cache.path())
                .env("HOME", cache.path())
                .arg("serve")
                .args(args)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("serve runs")
    };

    let output = run(&["--addr", "0.0.0.0:0", "--upstream", mock.base_url()]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--tls-cert"), "{stderr}");
    assert!(output.stdout.is_empty(), "no base URL is printed");

    let output = run(&["--addr", "127.0.0.1:0", "--upstream", "http://example.com"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--upstream"), "{stderr}");
    assert!(output.stdout.is_empty(), "no base URL is printed");
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_healthz() {
    const MSN: &str = "731942";
    let mock = MockServer::start().await.unwrap();
    let broker = Serve::new(&mock).start().await;
    let http = http();

    let health = send(http.get(broker.url("/healthz"))).await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(
        health.content_type.starts_with("application/json"),
        "{health:?}"
    );
    assert_eq!(health.json()["status"], "ok");

    for _ in 0..2 {
        let token = send(standard(
            &http,
            &broker.url,
            DEFAULT_CLIENT_SECRET,
            Some(MSN),
        ))
        .await;
        token.access_token();
    }
    let refused = send(standard(&http, &broker.url, WRONG_SECRET, Some(MSN))).await;
    assert_eq!(refused.status, 401);
    let missing = send(http.post(broker.url("/no/such/path"))).await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.content_type.starts_with("application/json"),
        "{missing:?}"
    );
    missing.json();

    let page = send(http.get(broker.url("/metrics"))).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.content_type.starts_with("text/plain"), "{page:?}");
    let text = page.text();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample line: {line}");
    }
    assert!(
        text.lines()
            .any(|l| l == "# TYPE vipps_token_broker_requests_total counter"),
        "{text}"
    );
    let count = |path: &str, outcome: &str| -> Option<f64> {
        text.lines()
            .find(|l| {
                l.starts_with("vipps_token_broker_requests_total{")
                    && l.contains(&format!("path=\"{path}\""))
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
    };
    assert_eq!(count(STANDARD_PATH, "token"), Some(2.0), "{text}");
    assert_eq!(count(STANDARD_PATH, "rejected"), Some(1.0), "{text}");
    assert_eq!(count("other", "not_found"), Some(1.0), "{text}");
    for secret in [
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        WRONG_SECRET,
        DEFAULT_SUBSCRIPTION_KEY,
        MSN,
    ] {
        assert!(!text.contains(secret), "/metrics shows {secret}:\n{text}");
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_logs_no_secret() {
    let mock = MockServer::start().await.unwrap();
    let broker = Serve::new(&mock).start().await;
    let http = http();
    let base = broker.url.clone();

    let mut tokens = Vec::new();
    for msn in ["123456", "654321"] {
        let reply = send(standard(&http, &base, DEFAULT_CLIENT_SECRET, Some(msn))).await;
        tokens.push(reply.access_token());
    }
    tokens.push(
        send(partner(&http, &base, DEFAULT_CLIENT_SECRET))
            .await
            .access_token(),
    );
    tokens.push(
        send(legacy(&http, &base, DEFAULT_CLIENT_SECRET))
            .await
            .access_token(),
    );
    for _ in 0..3 {
        let refused = send(standard(&http, &base, WRONG_SECRET, Some("123456"))).await;
        assert_eq!(refused.status, 401, "{}", refused.text());
    }
    let refused = send(partner(&http, &base, WRONG_SECRET)).await;
    assert!(matches!(refused.status, 400 | 401), "{}", refused.text());
    let refused = send(legacy(&http, &base, WRONG_SECRET)).await;
    assert_eq!(refused.status, 401, "{}", refused.text());

    let stderr = broker.stop().await;
    // The log was captured, refusals included: its silence below means something.
    assert!(stderr.contains("brokering tokens"), "{stderr}");
    assert!(stderr.contains("could not get a token"), "{stderr}");
    let mut secrets = vec![
        DEFAULT_CLIENT_SECRET.to_owned(),
        WRONG_SECRET.to_owned(),
        DEFAULT_SUBSCRIPTION_KEY.to_owned(),
        basic(DEFAULT_CLIENT_SECRET),
        basic(WRONG_SECRET),
    ];
    for token in &tokens {
        secrets.push(token.clone());
        secrets.push(token.rsplit('.').next().unwrap().to_owned());
    }
    for secret in &secrets {
        assert!(
            !stderr.contains(secret.as_str()),
            "stderr shows {secret}:\n{stderr}"
        );
    }
}

/// The broker's open file descriptors, from /proc.
fn open_fds(broker: &Broker) -> usize {
    let pid = broker.child.id().expect("the broker runs");
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

/// Each caller's records are sealed under its own secret, yet every caller's store shares
/// the cache directory's one open handle: 300 distinct wrong secrets do not take 300 file
/// descriptors (at the default `ulimit -n` of 1024, a few hundred more keys would have
/// turned every caller's store, the right keys' too, into "Too many open files").
#[cfg(target_os = "linux")]
#[tokio::test]
async fn many_callers_on_the_file_cache_share_one_directory_handle() {
    let mock = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    let broker = Serve::new(&mock).file_store(dir.path()).start().await;
    let right = send(standard(&http, &broker.url, DEFAULT_CLIENT_SECRET, None)).await;
    assert_eq!(right.status, 200);
    let before = open_fds(&broker);
    for n in 0..300 {
        let wrong = send(standard(&http, &broker.url, &format!("wrong-{n}"), None)).await;
        assert_eq!(wrong.status, 401, "{}", wrong.text());
    }
    let after = open_fds(&broker);
    assert!(
        after < before + 30,
        "{before} open files before, {after} after"
    );
    let again = send(standard(&http, &broker.url, DEFAULT_CLIENT_SECRET, None)).await;
    assert_eq!(
        again.access_token(),
        right.access_token(),
        "{}",
        broker.stderr()
    );
    assert!(
        !broker.stderr().contains("Too many open files"),
        "{}",
        broker.stderr()
    );
    broker.stop().await;
}
