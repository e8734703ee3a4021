//! Fleet figures for the Redis token store, with real processes: this binary starts a
//! `redis-server` on a free loopback port and the embedded mock, then runs copies of
//! itself as workers (`FLEET_ROLE`), each a process with a cache of its own.
//!
//! - cold: 8 processes x 100 callers ask at once -> upstream requests (goal: 1);
//! - warm: a fresh process's first token from the store vs a direct fetch from the mock;
//! - down: a fresh process with the store unreachable -> time to a token.
//!
//! `cargo bench --features redis,mock --bench fleet`

use std::{
    net::TcpListener,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use vipps_access_token::{
    ClientBuilder, StandardCredentials, TokenProvider, TokenSource,
    mock::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServer},
    store::{RedisTokenStore, SealingKeys, StoreConfig, TokenStore},
};

const PROCESSES: usize = 8;
const CALLERS: usize = 100;
const WARM_RUNS: usize = 20;

fn main() {
    match std::env::var("FLEET_ROLE").as_deref() {
        Ok(role) => worker(role),
        Err(_) => coordinator(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// One process of the fleet: prints the microseconds its first token took.
fn worker(role: &str) {
    let base_url = std::env::var("FLEET_BASE_URL").expect("FLEET_BASE_URL");
    let store_url = std::env::var("FLEET_STORE").expect("FLEET_STORE");
    runtime().block_on(async {
        let client = ClientBuilder::with_base_url(base_url)
            .build()
            .expect("a client");
        let credentials = StandardCredentials::new(
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            DEFAULT_SUBSCRIPTION_KEY,
        );
        let started = Instant::now();
        if role == "direct" {
            client.standard_token(&credentials).await.expect("a token");
        } else {
            let store: Arc<dyn TokenStore> = Arc::new(
                RedisTokenStore::new(
                    &store_url,
                    StoreConfig::new(SealingKeys::new([9; 32], None)),
                )
                .expect("a store URL"),
            );
            let provider = TokenProvider::builder(client, TokenSource::Standard(credentials))
                .store(store)
                .build();
            let callers = if role == "cold" { CALLERS } else { 1 };
            let tasks: Vec<_> = (0..callers)
                .map(|_| {
                    let provider = provider.clone();
                    tokio::spawn(async move { provider.token().await })
                })
                .collect();
            for task in tasks {
                task.await.expect("a caller").expect("a token");
            }
        }
        println!("{}", started.elapsed().as_micros());
    });
}

fn coordinator() {
    let binary = std::env::var("VIPPS_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Ok(mut redis) = Command::new(&binary)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
    else {
        println!("fleet: skipped, `{binary}` is not on PATH (apt-get install redis-server)");
        return;
    };
    let store_url = format!("redis://127.0.0.1:{port}");
    let runtime = runtime();
    let mock = runtime.block_on(MockServer::start()).expect("the mock");
    // Wait until redis answers: a worker must find it up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }

    // Cold: every process at once, the mock slowed like a real round trip.
    mock.set_delay(Duration::from_millis(50));
    let cold = run(PROCESSES, "cold", mock.base_url(), &store_url);
    println!(
        "cold: {PROCESSES} processes x {CALLERS} callers -> {} upstream request(s); slowest process {:.1} ms",
        mock.request_count(),
        max(&cold) / 1000.0
    );
    mock.set_delay(Duration::ZERO);

    let warm = run_each(WARM_RUNS, "warm", mock.base_url(), &store_url);
    let direct = run_each(WARM_RUNS, "direct", mock.base_url(), &store_url);
    println!(
        "warm: first token in a fresh process, median of {WARM_RUNS}: from the store {:.2} ms, direct fetch from the mock {:.2} ms",
        median(warm) / 1000.0,
        median(direct.clone()) / 1000.0
    );

    let dead = format!(
        "redis://127.0.0.1:{}",
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let down = run_each(WARM_RUNS, "down", mock.base_url(), &dead);
    let _ = redis.kill();
    let _ = redis.wait();
    println!(
        "down: store unreachable (refused), median of {WARM_RUNS}: {:.2} ms to a token (direct fetch {:.2} ms, store timeout {} ms)",
        median(down) / 1000.0,
        median(direct) / 1000.0,
        vipps_access_token::store::DEFAULT_OPERATION_TIMEOUT.as_millis()
    );
    println!("upstream requests in all: {}", mock.request_count());
}

/// Starts `count` workers at once; their timings in microseconds.
fn run(count: usize, role: &str, base_url: &str, store: &str) -> Vec<f64> {
    let children: Vec<_> = (0..count)
        .map(|_| {
            Command::new(std::env::current_exe().expect("this binary"))
                .env("FLEET_ROLE", role)
                .env("FLEET_BASE_URL", base_url)
                .env("FLEET_STORE", store)
                .stdout(Stdio::piped())
                .spawn()
                .expect("a worker")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("a worker's output");
            assert!(output.status.success(), "a worker failed");
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .expect("microseconds")
        })
        .collect()
}

/// Runs `count` workers one after another.
fn run_each(count: usize, role: &str, base_url: &str, store: &str) -> Vec<f64> {
    (0..count)
        .flat_map(|_| run(1, role, base_url, store))
        .collect()
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
