//! TokenProvider under the churn a service and its test suite make: threads creating and
//! dropping runtimes of both flavours (dropped, shut down with a timeout, shut down in the
//! background) while fetches are in flight, callers that give up at random, invalidations,
//! several merchants on a cache smaller than their number, and tokens that expire within
//! the test. Nothing may hang, and every token handed out is unexpired and for the merchant
//! that asked.
//!
//! A watchdog bounds the whole: the test thread waits for the workers with a deadline and
//! fails when one is still running then, instead of hanging the suite.

#[path = "support/token_body.rs"]
mod token_body;

#[path = "support/example_keys.rs"]
mod example_keys;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};
use futures_util::FutureExt;
use token_body::standard_token_body;
use vipps_access_token::{
    ClientBuilder, RetryPolicy, StandardCredentials, TokenProvider, TokenSource,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate, matchers};

/// Merchants asking through one provider; the cache holds fewer slots than this.
const MERCHANTS: [&str; 4] = ["123456", "654321", "112233", "445566"];
const MAX_SLOTS: usize = 2;
const THREADS: u64 = 4;
const ROUNDS: usize = 40;
/// Callers per runtime.
const CALLERS: usize = 6;
/// Far beyond what the test takes (a few seconds); reached only when something hangs.
const WATCHDOG: Duration = Duration::from_secs(20);

/// A token endpoint (wiremock serves from a thread and runtime of its own, so it outlives
/// every runtime the test drops) whose tokens name the merchant they were issued for and
/// live one second, answering after up to 15 ms so that runtimes go while fetches are in
/// flight.
fn token_endpoint(issued: Arc<AtomicUsize>) -> MockServer {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        Mock::given(matchers::method("POST"))
            .and(matchers::path("/accesstoken/get"))
            .respond_with(move |request: &Request| {
                let msn = request
                    .headers
                    .get("merchant-serial-number")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                let n = issued.fetch_add(1, Ordering::SeqCst);
                let token = format!("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1Ni.msn-{msn}.{n}");
                ResponseTemplate::new(200)
                    .set_body_json(standard_token_body(&token, "1"))
                    .set_delay(Duration::from_millis(n as u64 % 16))
            })
            .mount(&server)
            .await;
        server
    })
}

fn merchants(server: &MockServer) -> Vec<(&'static str, TokenProvider)> {
    let client = ClientBuilder::with_base_url(server.uri())
        .retry_policy(RetryPolicy::none())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let credentials = StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY);
    let provider = TokenProvider::builder(client, TokenSource::Standard(credentials))
        .max_slots(MAX_SLOTS)
        .build();
    MERCHANTS
        .iter()
        .map(|msn| (*msn, provider.with_merchant_serial_number(msn).unwrap()))
        .collect()
}

/// What the callers saw: tokens served, and anything wrong with one.
#[derive(Default)]
struct Seen {
    served: AtomicUsize,
    violations: Mutex<Vec<String>>,
}

impl Seen {
    fn check(&self, msn: &str, token: &vipps_access_token::AccessToken) {
        let secret = token.secret().expose_secret();
        let mut violations = self.violations.lock().unwrap();
        if token.is_expired() {
            violations.push(format!("an expired token for {msn}"));
        }
        if !secret.contains(&format!(".msn-{msn}.")) {
            violations.push(format!(
                "{msn} was handed a token issued for another merchant"
            ));
        }
        self.served.fetch_add(1, Ordering::Relaxed);
    }
}

/// One thread's rounds: a runtime each, callers on it that invalidate and ask in a loop
/// (giving up at random), then the runtime goes, in one of the three ways a program lets
/// one go, while they are still at it.
fn churn(seed: u64, merchants: &[(&'static str, TokenProvider)], seen: &Arc<Seen>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    for _ in 0..ROUNDS {
        let runtime = if rng.bool() {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        };
        for _ in 0..CALLERS {
            let caller = keep_asking(rng.u64(..), merchants.to_vec(), seen.clone());
            runtime.spawn(caller);
        }
        let asks = rng.usize(1..6);
        runtime.block_on(async {
            for _ in 0..asks {
                let (msn, provider) = &merchants[rng.usize(..merchants.len())];
                let patience = Duration::from_millis(rng.u64(1..30));
                if let Ok(Ok(token)) = tokio::time::timeout(patience, provider.token()).await {
                    seen.check(msn, &token);
                }
            }
        });
        match rng.u8(..3) {
            0 => drop(runtime),
            1 => runtime.shutdown_timeout(Duration::from_millis(rng.u64(0..5))),
            _ => runtime.shutdown_background(),
        }
    }
}

/// A caller that asks until its runtime drops it: a merchant at random, invalidating first
/// one time in three, giving up after a random while.
async fn keep_asking(seed: u64, merchants: Vec<(&'static str, TokenProvider)>, seen: Arc<Seen>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    loop {
        let (msn, provider) = &merchants[rng.usize(..merchants.len())];
        if rng.u8(..3) == 0 {
            provider.invalidate();
        }
        let patience = Duration::from_millis(rng.u64(0..30));
        if let Ok(Ok(token)) = tokio::time::timeout(patience, provider.token()).await {
            seen.check(msn, &token);
        }
        tokio::task::yield_now().await;
    }
}

#[test]
fn runtimes_come_and_go_and_nothing_wedges() {
    let issued = Arc::new(AtomicUsize::new(0));
    let server = token_endpoint(issued.clone());
    let merchants = merchants(&server);
    let seen = Arc::new(Seen::default());

    let (finished, finishes) = mpsc::channel();
    for seed in 0..THREADS {
        let (merchants, seen, finished) = (merchants.clone(), seen.clone(), finished.clone());
        std::thread::spawn(move || {
            churn(seed, &merchants, &seen);
            finished.send(()).unwrap();
        });
    }
    let deadline = std::time::Instant::now() + WATCHDOG;
    for done in 0..THREADS {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            finishes.recv_timeout(left).is_ok(),
            "wedged: {} of {THREADS} threads still running after {WATCHDOG:?}",
            THREADS - done
        );
    }

    // And the provider still serves every merchant.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for (msn, provider) in &merchants {
            let token = tokio::time::timeout(WATCHDOG, provider.token())
                .await
                .expect("served after the churn")
                .expect("a token after the churn");
            seen.check(msn, &token);
        }
    });
    let violations = seen.violations.lock().unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(seen.served.load(Ordering::Relaxed) >= MERCHANTS.len());
    assert!(
        issued.load(Ordering::SeqCst) > MERCHANTS.len(),
        "tokens expired and were fetched again during the test"
    );
}

/// The deadlock in its plainest form: a fetch started from within a runtime that is
/// already shut down. Tokio drops the task inside `spawn`; the task's guard must not need
/// a lock the starter holds.
#[test]
fn a_fetch_started_on_a_shut_down_runtime_returns() {
    let issued = Arc::new(AtomicUsize::new(0));
    let server = token_endpoint(issued);
    let (_, provider) = merchants(&server).swap_remove(0);

    let (returned, returns) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        drop(runtime);
        let _inside = handle.enter();
        let outcome = provider.token().now_or_never();
        returned.send(outcome.map(|o| o.is_ok())).unwrap();
    });
    let outcome = returns
        .recv_timeout(WATCHDOG)
        .expect("token() returned instead of deadlocking");
    assert_eq!(
        outcome,
        Some(false),
        "no runtime to fetch on: an error, at once"
    );
}

/// A caller on a live runtime is never told its runtime shut down while other runtimes
/// start fetches and die mid-fetch: it replaces a dead fetch with one on its own runtime.
#[test]
#[allow(deprecated)] // ClientBuilder::http_client; ClientBuilder::http_client_builder replaces it
fn a_caller_on_a_live_runtime_is_never_interrupted_by_dying_runtimes() {
    let issued = Arc::new(AtomicUsize::new(0));
    let server = token_endpoint(issued);
    // No idle connections: a pooled connection's task lives on the runtime that opened
    // it, and dies with it (a transport error, not what this test counts).
    let http = vipps_access_token::http_client_builder()
        .unwrap()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let client = ClientBuilder::with_base_url(server.uri())
        .retry_policy(RetryPolicy::none())
        .http_client(http)
        .build()
        .unwrap();
    let credentials = StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY);
    let provider = TokenProvider::new(client, TokenSource::Standard(credentials));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let churners: Vec<_> = (0..THREADS)
        .map(|seed| {
            let (provider, stop) = (provider.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed);
                while !stop.load(Ordering::Relaxed) {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    // Starts a fetch (or joins one), then the runtime dies under it.
                    runtime.block_on(async {
                        let patience = Duration::from_millis(rng.u64(0..8));
                        let _ = tokio::time::timeout(patience, provider.refresh()).await;
                    });
                    drop(runtime);
                }
            })
        })
        .collect();

    let (done, finished) = mpsc::channel();
    let live_provider = provider.clone();
    std::thread::spawn(move || {
        let live = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (mut interrupted, mut other_errors) = (0, Vec::new());
        live.block_on(async {
            for _ in 0..300 {
                match live_provider.refresh().await {
                    Ok(_) => {}
                    Err(vipps_access_token::Error::Interrupted) => interrupted += 1,
                    Err(error) => other_errors.push(error.to_string()),
                }
            }
        });
        done.send((interrupted, other_errors)).unwrap();
    });
    let outcome = finished.recv_timeout(WATCHDOG * 3);
    stop.store(true, Ordering::Relaxed);
    for churner in churners {
        churner.join().unwrap();
    }
    let (interrupted, other_errors) = outcome.expect("the live caller finished in time");
    assert_eq!(
        interrupted, 0,
        "a caller on a live runtime was told its runtime shut down"
    );
    assert!(other_errors.is_empty(), "{other_errors:?}");
}
