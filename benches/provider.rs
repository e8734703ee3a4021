//! TokenProvider and client benchmarks, each beside a baseline measured in the same run.
//! Figures and the command are in BENCHMARKS.md: `cargo bench --bench provider`.
//!
//! - `cached_token`: a cached `token()` against a bare `Arc` read behind the same kind of
//!   lock the provider uses (`std::sync::Mutex`).
//! - `cold_start`: 1000 concurrent callers on an empty cache against one fetch; the number
//!   of upstream requests per cold start is printed and must be 1.
//! - `fetch`: one `standard_token` against a raw reqwest POST of the same request.
//!
//! Everything runs against a wiremock server on loopback.

#[path = "../tests/common/token_body.rs"]
mod token_body;

use std::{
    hint::black_box,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use token_body::standard_token_body;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use vipps_access_token::{Client, ClientBuilder, StandardCredentials, TokenProvider, TokenSource};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

const CLIENT_ID: &str = "fb492b5e-7907-4d83-ba20-c7fb60ca35de";
const CLIENT_SECRET: &str = "Y8Kteew6GE2ZmeycEt6egg==";
const SUBSCRIPTION_KEY: &str = "0f14ebcab0ec4b29ae0cb90d91b4a84a";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A token endpoint on loopback that counts what it answers. It does not record requests,
/// so that it stays as fast on the ten-thousandth request as on the first.
async fn token_server(answered: Arc<AtomicUsize>) -> MockServer {
    let server = MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    let body = standard_token_body("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1Ni.bench", "3600");
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/accesstoken/get"))
        .respond_with(move |_: &wiremock::Request| {
            answered.fetch_add(1, Ordering::Relaxed);
            ResponseTemplate::new(200).set_body_json(body.clone())
        })
        .mount(&server)
        .await;
    server
}

fn credentials() -> StandardCredentials {
    StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY)
}

fn client(server: &MockServer) -> Client {
    ClientBuilder::with_base_url(server.uri())
        .build()
        .expect("a client")
}

fn cached_token(c: &mut Criterion) {
    let rt = runtime();
    let answered = Arc::new(AtomicUsize::new(0));
    let server = rt.block_on(token_server(answered.clone()));
    let provider = TokenProvider::new(client(&server), TokenSource::Standard(credentials()));
    let token = rt.block_on(provider.token()).expect("a token");
    let baseline = Mutex::new(token);

    let mut group = c.benchmark_group("cached_token");
    group.bench_function("baseline: Arc clone behind a std Mutex", |b| {
        b.iter(|| black_box(baseline.lock().unwrap().clone()))
    });
    // What a hit must pay on top of the baseline: reading the monotonic clock, to
    // never hand out a token past its usable life.
    group.bench_function("probe: tokio Instant::now", |b| {
        b.iter(|| black_box(tokio::time::Instant::now()))
    });
    group.bench_function("TokenProvider::token (cache hit)", |b| {
        // A hit completes without waiting, so it is polled once, without an executor.
        b.iter(|| black_box(provider.token().now_or_never().expect("a hit never waits")))
    });
    group.finish();
}

fn cold_start(c: &mut Criterion) {
    let rt = runtime();
    let answered = Arc::new(AtomicUsize::new(0));
    let server = rt.block_on(token_server(answered.clone()));
    let client = client(&server);
    let cold_starts = Arc::new(AtomicUsize::new(0));

    let mut group = c.benchmark_group("cold_start");
    group.sample_size(20);
    group.bench_function("one fetch", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                client
                    .standard_token(&credentials())
                    .await
                    .expect("a token"),
            )
        })
    });
    let before = answered.load(Ordering::Relaxed);
    group.bench_function("1000 concurrent callers, empty cache", |b| {
        b.to_async(&rt).iter(|| async {
            cold_starts.fetch_add(1, Ordering::Relaxed);
            let provider = TokenProvider::new(client.clone(), TokenSource::Standard(credentials()));
            let callers: Vec<_> = (0..1000)
                .map(|_| {
                    let provider = provider.clone();
                    tokio::spawn(async move { provider.token().await })
                })
                .collect();
            for caller in callers {
                black_box(caller.await.expect("caller task").expect("a token"));
            }
        })
    });
    group.finish();
    let requests = answered.load(Ordering::Relaxed) - before;
    let starts = cold_starts.load(Ordering::Relaxed);
    eprintln!("cold_start: {requests} upstream requests for {starts} cold starts of 1000 callers");
    assert_eq!(
        requests, starts,
        "each cold start must make exactly one upstream request"
    );
}

fn fetch(c: &mut Criterion) {
    let rt = runtime();
    let answered = Arc::new(AtomicUsize::new(0));
    let server = rt.block_on(token_server(answered.clone()));
    let client = client(&server);
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client");
    let url = format!("{}/accesstoken/get", server.uri());

    let mut group = c.benchmark_group("fetch");
    // Loopback round trips vary; many samples keep the two medians comparable.
    group
        .sample_size(100)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("baseline: raw reqwest POST", |b| {
        b.to_async(&rt).iter(|| async {
            let response = raw
                .post(&url)
                .header("accept", "application/json")
                .header("content-length", "0")
                .header("client_id", CLIENT_ID)
                .header("client_secret", CLIENT_SECRET)
                .header("ocp-apim-subscription-key", SUBSCRIPTION_KEY)
                .send()
                .await
                .expect("a response");
            black_box(response.bytes().await.expect("a body"))
        })
    });
    group.bench_function("Client::standard_token", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                client
                    .standard_token(&credentials())
                    .await
                    .expect("a token"),
            )
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = cached_token, cold_start, fetch
}
criterion_main!(benches);
