//! Where the parts meet, counted in upstream requests: what a provider costs the token
//! endpoint when the endpoint refuses, fails or answers nonsense, what one stray 401 does to
//! the other callers, and whether a connection pooled on an idle runtime stalls another
//! runtime's fetch. Each scenario runs against the embedded mock on loopback for a bounded
//! time and prints one line. Figures and the command are in BENCHMARKS.md:
//! `cargo bench --bench joins --features mock`.

use std::time::{Duration, Instant};

use vipps_access_token::{
    ClientBuilder, ClientSecret, RetryPolicy, StandardCredentials, TokenProvider, TokenSource,
    mock::MockServer,
};

/// Tasks calling the provider at once, as a busy service does.
const CALLERS: usize = 8;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn client(mock: &MockServer, retry: RetryPolicy) -> ClientBuilder {
    mock.client_builder()
        .timeout(Duration::from_secs(2))
        .retry_policy(retry)
}

/// The mock's keys, with `secret` instead of its client secret when given.
fn credentials(mock: &MockServer, secret: Option<&str>) -> StandardCredentials {
    let mut keys = mock.standard_credentials();
    if let Some(secret) = secret {
        keys.client_secret = ClientSecret::new(secret);
    }
    keys
}

fn provider(mock: &MockServer, secret: Option<&str>, retry: RetryPolicy) -> TokenProvider {
    let credentials = credentials(mock, secret);
    let client = client(mock, retry).build().expect("a client");
    TokenProvider::new(client, TokenSource::Standard(credentials))
}

/// `CALLERS` tasks calling `token()` in a loop for `run`; how many calls got a token.
async fn hammer(provider: &TokenProvider, run: Duration) -> usize {
    let until = Instant::now() + run;
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move {
                let mut tokens = 0;
                while Instant::now() < until {
                    if provider.token().await.is_ok() {
                        tokens += 1;
                    }
                    tokio::task::yield_now().await;
                }
                tokens
            })
        })
        .collect();
    let mut tokens = 0;
    for task in tasks {
        tokens += task.await.expect("a caller task");
    }
    tokens
}

fn report(scenario: &str, requests: u64, run: Duration, detail: &str) {
    println!(
        "{scenario:<44} {requests:>6} token requests in {:.1} s  {detail}",
        run.as_secs_f64()
    );
}

/// Rejected keys, a failing endpoint, and a 200 whose token has no life: what the endpoint
/// sees while `CALLERS` tasks keep asking.
async fn failures() {
    let run = Duration::from_secs(1);

    let mock = MockServer::start().await.expect("the mock");
    let rejected = provider(&mock, Some("a-wrong-secret"), RetryPolicy::default());
    let tokens = hammer(&rejected, run).await;
    report(
        "rejected keys",
        mock.request_count(),
        run,
        &format!("({tokens} tokens)"),
    );

    let mock = MockServer::start().await.expect("the mock");
    mock.fail_all(503, "");
    let failing = provider(&mock, None, RetryPolicy::none());
    let tokens = hammer(&failing, run).await;
    report(
        "503, no retries",
        mock.request_count(),
        run,
        &format!("({tokens} tokens)"),
    );

    let run = Duration::from_millis(500);
    let mock = MockServer::start().await.expect("the mock");
    let lifeless = r#"{"token_type":"Bearer","expires_in":"0","ext_expires_in":"0","expires_on":"0","not_before":"0","resource":"r","access_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"}"#;
    mock.fail_all(200, lifeless);
    let zero = provider(&mock, None, RetryPolicy::none());
    let tokens = hammer(&zero, run).await;
    report(
        "200 with expires_in 0",
        mock.request_count(),
        run,
        &format!("({tokens} tokens handed out)"),
    );
}

/// One stray 401 while the token endpoint answers 503: do the other callers keep the
/// token that still has an hour left?
async fn stray_unauthorized() {
    let mock = MockServer::start().await.expect("the mock");
    let provider = provider(&mock, None, RetryPolicy::none());
    let token = provider.token().await.expect("a first token");
    mock.fail_all(503, "");
    let before = mock.request_count();
    let refused = provider.token_after_rejection(&token).await;
    let mut served = 0;
    for _ in 0..3 {
        served += usize::from(provider.token().await.is_ok());
    }
    let detail = format!(
        "(the refused caller: {}; then {served} of 3 calls got a token)",
        match refused {
            Some(_) => "a token",
            None => "its own 401",
        }
    );
    report(
        "a stray 401, token endpoint at 503",
        mock.request_count() - before,
        Duration::ZERO,
        &detail,
    );
}

/// Runtime A fetches and goes idle (its `block_on` returned); runtime B then fetches with
/// the same client. Prints how long B's fetch took and whether it got a token.
fn idle_runtime_pool() {
    let helper = runtime();
    let mock = helper.block_on(MockServer::start()).expect("the mock");
    let client = client(&mock, RetryPolicy::none())
        .build()
        .expect("a client");
    let credentials = credentials(&mock, None);
    let idle = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime A");
    idle.block_on(client.standard_token(&credentials))
        .expect("runtime A's token");
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime B");
    let started = Instant::now();
    let outcome = other.block_on(client.standard_token(&credentials));
    let took = started.elapsed();
    println!(
        "{:<44} {} after {:.1} ms (request timeout 2 s)",
        "runtime B's fetch, runtime A idle",
        if outcome.is_ok() { "a token" } else { "failed" },
        took.as_secs_f64() * 1e3
    );
    drop(idle);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it too: both run it once.
    let runtime = runtime();
    runtime.block_on(failures());
    runtime.block_on(stray_unauthorized());
    idle_runtime_pool();
}
