//! TokenProvider and client benchmarks, each beside a baseline measured in the same run.
//! Figures and the command are in BENCHMARKS.md: `cargo bench --bench provider`.
//!
//! - `cached_token`: a cached `token()` against a bare `ArcSwap::load_full`, alone and with
//!   a second thread doing the same.
//! - `cached_token_in_tasks`: the same awaited in tasks on a multi-thread runtime, as a
//!   service calls it, on 1 and on 2 worker threads at once.
//! - `cold_start`: 1000 concurrent callers on an empty cache against one fetch; the number
//!   of upstream requests per cold start is printed and must be 1.
//! - `fetch`: one `standard_token` against a raw reqwest POST of the same request.
//! - `many_merchants`: 100,000 merchant serial numbers through one provider; the number of
//!   cached keys and the resident memory are printed.
//!
//! Everything runs against a wiremock server on loopback.

#[path = "../tests/support/token_body.rs"]
mod token_body;

use std::{
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};
use token_body::standard_token_body;

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use vipps_access_token::{Client, ClientBuilder, StandardCredentials, TokenProvider, TokenSource};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

#[path = "../tests/support/example_keys.rs"]
mod example_keys;
use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};

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
    let baseline = ArcSwap::new(token);

    let mut group = c.benchmark_group("cached_token");
    group.bench_function("baseline: ArcSwap::load_full", |b| {
        b.iter(|| black_box(baseline.load_full()))
    });
    group.bench_function("TokenProvider::token (cache hit)", |b| {
        // A hit completes without waiting, so it is polled once, without an executor.
        b.iter(|| black_box(provider.token().now_or_never().expect("a hit never waits")))
    });
    group.bench_function("TokenProvider::cached_token (synchronous hit)", |b| {
        b.iter(|| black_box(provider.cached_token().expect("a fresh token")))
    });
    // As async code uses it: awaited in a loop on a current-thread runtime, beside the
    // same loop around the baseline.
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    group.bench_function("awaited: baseline: ArcSwap::load_full", |b| {
        b.to_async(&local).iter(|| async { baseline.load_full() })
    });
    group.bench_function("awaited: TokenProvider::token (cache hit)", |b| {
        b.to_async(&local).iter(|| provider.token())
    });
    // The same with a second thread doing the same thing all along.
    group.bench_function("2 threads: baseline: ArcSwap::load_full", |b| {
        with_contention(
            || drop(black_box(baseline.load_full())),
            || b.iter(|| black_box(baseline.load_full())),
        )
    });
    group.bench_function("2 threads: TokenProvider::token (cache hit)", |b| {
        let hit = || provider.token().now_or_never().expect("a hit never waits");
        with_contention(|| drop(black_box(hit())), || b.iter(|| black_box(hit())))
    });
    group.bench_function("2 threads: TokenProvider::cached_token", |b| {
        let hit = || provider.cached_token().expect("a fresh token");
        with_contention(|| drop(black_box(hit())), || b.iter(|| black_box(hit())))
    });
    group.finish();
    assert_eq!(answered.load(Ordering::Relaxed), 1, "every call was a hit");
}

/// What a task awaits in a loop: the baseline or the provider's hit.
#[derive(Clone)]
enum Subject {
    Baseline(Arc<ArcSwap<vipps_access_token::AccessToken>>),
    Provider(Box<TokenProvider>),
}

impl Subject {
    async fn hits(&self, iters: u64) {
        match self {
            Self::Baseline(baseline) => {
                for _ in 0..iters {
                    black_box(async { baseline.load_full() }.await);
                }
            }
            Self::Provider(provider) => {
                for _ in 0..iters {
                    black_box(provider.token().await.expect("a hit"));
                }
            }
        }
    }
}

/// A cached `token().await` in tasks on a multi-thread runtime (2 workers), as a service
/// calls it, beside the same loop around the baseline: one task, then two at once (one per
/// worker). The time per call is the slowest task's.
fn cached_token_in_tasks(c: &mut Criterion) {
    let rt = runtime();
    let answered = Arc::new(AtomicUsize::new(0));
    let server = rt.block_on(token_server(answered.clone()));
    let provider = TokenProvider::new(client(&server), TokenSource::Standard(credentials()));
    let token = rt.block_on(provider.token()).expect("a token");
    let subjects = [
        (
            "baseline: ArcSwap::load_full",
            Subject::Baseline(Arc::new(ArcSwap::new(token))),
        ),
        (
            "TokenProvider::token (cache hit)",
            Subject::Provider(Box::new(provider)),
        ),
    ];

    let mut group = c.benchmark_group("cached_token_in_tasks");
    for tasks in [1, 2] {
        for (name, subject) in &subjects {
            group.bench_function(format!("{tasks} threads: {name}"), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Arc::new(tokio::sync::Barrier::new(tasks));
                        let running: Vec<_> = (0..tasks)
                            .map(|_| {
                                let (subject, start) = (subject.clone(), start.clone());
                                tokio::spawn(async move {
                                    start.wait().await;
                                    let began = std::time::Instant::now();
                                    subject.hits(iters).await;
                                    began.elapsed()
                                })
                            })
                            .collect();
                        let mut slowest = Duration::ZERO;
                        for task in running {
                            slowest = slowest.max(task.await.expect("the task ran"));
                        }
                        slowest
                    })
                })
            });
        }
    }
    group.finish();
    assert_eq!(answered.load(Ordering::Relaxed), 1, "every call was a hit");
}

/// Runs `measure` while another thread runs `contend` in a loop.
fn with_contention(contend: impl Fn() + Sync, measure: impl FnOnce()) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                contend();
            }
        });
        measure();
        stop.store(true, Ordering::Relaxed);
    });
}

/// 100,000 merchants through one provider with the default bound, against the embedded
/// mock: the cache stays within the bound, and the resident memory stays flat once it is
/// full. Run once and printed, not sampled: one pass is 100,000 fetches.
#[cfg(feature = "mock")]
fn many_merchants(_: &mut Criterion) {
    use vipps_access_token::{DEFAULT_MAX_SLOTS, mock::MockServer};

    let rt = runtime();
    let mock = rt.block_on(MockServer::start()).expect("the embedded mock");
    let provider = TokenProvider::new(
        mock.client_builder().build().expect("a client"),
        TokenSource::Standard(mock.standard_credentials()),
    );
    let started = std::time::Instant::now();
    let mut most_keys = 0;
    let mut resident = Vec::new();
    rt.block_on(async {
        for n in 0..100_000u32 {
            let msn = (100_000 + n).to_string();
            let merchant = provider
                .with_merchant_serial_number(&msn)
                .expect("a valid MSN");
            black_box(merchant.token().await.expect("a token"));
            drop(merchant);
            most_keys = most_keys.max(provider.cached_keys());
            if n % 25_000 == 0 {
                resident.push(resident_kib());
            }
        }
    });
    resident.push(resident_kib());
    eprintln!(
        "many_merchants: 100,000 MSNs in {:.1} s, {} upstream requests; at most {most_keys} \
         keys cached (bound {DEFAULT_MAX_SLOTS}, the provider's own key pinned on top); \
         resident KiB at 0, 25k, 50k, 75k, 100k MSNs: {resident:?}",
        started.elapsed().as_secs_f64(),
        mock.request_count(),
    );
    assert!(most_keys <= DEFAULT_MAX_SLOTS + 1);
}

/// Needs the embedded mock: wiremock keeps memory per request even with recording off,
/// which would hide the provider's own.
#[cfg(not(feature = "mock"))]
fn many_merchants(_: &mut Criterion) {
    eprintln!("many_merchants: skipped; run with `--features mock`");
}

/// The process's resident set, from /proc (0 where there is none).
#[cfg(feature = "mock")]
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
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
    let raw = vipps_access_token::http_client_builder()
        .expect("TLS set up")
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
    targets = cached_token, cached_token_in_tasks, cold_start, fetch, many_merchants
}
criterion_main!(benches);
