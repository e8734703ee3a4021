//! Fleet figures for the Redis token store, with real processes: this binary starts a
//! `redis-server` on a free loopback port and the embedded mock, then runs copies of
//! itself as workers (`FLEET_ROLE`), each a process with a cache of its own.
//!
//! - cold: 8 processes x 100 callers ask at once -> upstream requests (goal: 1);
//! - warm: a fresh process's first token from the store vs a direct fetch from the mock;
//! - down: a fresh process with the store unreachable -> time to a token;
//! - slow: Redis behind a loopback proxy that holds every reply 200 ms -> a fresh
//!   process's cold miss and warm hit (round trips show as multiples of 200 ms).
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
        let mut client = ClientBuilder::with_base_url(base_url);
        if let Ok(msn) = std::env::var("FLEET_MSN") {
            client = client.merchant_serial_number(msn);
        }
        let client = client.build().expect("a client");
        let credentials = StandardCredentials::new(
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            DEFAULT_SUBSCRIPTION_KEY,
        );
        let started = Instant::now();
        if role == "direct" {
            client.standard_token(&credentials).await.expect("a token");
        } else {
            let mut config = StoreConfig::new(SealingKeys::new([9; 32], None));
            if let Ok(ms) = std::env::var("FLEET_TIMEOUT_MS") {
                config.operation_timeout = Duration::from_millis(ms.parse().expect("ms"));
            }
            let store: Arc<dyn TokenStore> =
                Arc::new(RedisTokenStore::new(&store_url, config).expect("a store URL"));
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
        let elapsed = started.elapsed();
        // The record is saved after the token is handed out: let it land before exiting.
        vipps_access_token::store::settle(Duration::from_secs(5)).await;
        println!("{}", elapsed.as_micros());
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
    let slow = format!("redis://127.0.0.1:{}", slow_proxy(port, SLOW_REPLY));
    let mut slow_cold = Vec::new();
    let mut slow_warm = Vec::new();
    for run_number in 0..SLOW_RUNS {
        let msn = format!("{}", 300_000 + run_number);
        slow_cold.extend(run_with(1, "slow", mock.base_url(), &slow, &msn));
        slow_warm.extend(run_with(1, "slow", mock.base_url(), &slow, &msn));
    }
    let _ = redis.kill();
    let _ = redis.wait();
    println!(
        "slow: every Redis reply held {} ms (store timeout {} ms), median of {SLOW_RUNS}: cold miss {:.0} ms, warm hit {:.0} ms to the first token in a fresh process",
        SLOW_REPLY.as_millis(),
        SLOW_TIMEOUT_MS,
        median(slow_cold) / 1000.0,
        median(slow_warm) / 1000.0
    );
    println!(
        "down: store unreachable (refused), median of {WARM_RUNS}: {:.2} ms to a token (direct fetch {:.2} ms, store timeout {} ms)",
        median(down) / 1000.0,
        median(direct) / 1000.0,
        vipps_access_token::store::DEFAULT_OPERATION_TIMEOUT.as_millis()
    );
    println!("upstream requests in all: {}", mock.request_count());
}

/// How long the slow proxy holds each reply, and the store timeout the slow runs use (a
/// 250 ms default would give up on a 200 ms Redis at the first connection).
const SLOW_REPLY: Duration = Duration::from_millis(200);
const SLOW_TIMEOUT_MS: u64 = 1000;
const SLOW_RUNS: usize = 5;

/// A loopback proxy to Redis at `port` that holds every chunk Redis sends for `delay`
/// before passing it on; its port. Threads, one pair per connection, for the bench's life.
fn slow_proxy(port: u16, delay: Duration) -> u16 {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
            });
            let (mut server_in, mut client_out) = (server, client);
            std::thread::spawn(move || {
                let mut buffer = [0; 16 * 1024];
                while let Ok(read @ 1..) = server_in.read(&mut buffer) {
                    std::thread::sleep(delay);
                    if client_out.write_all(&buffer[..read]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    proxy_port
}

/// Starts `count` workers at once; their timings in microseconds.
fn run(count: usize, role: &str, base_url: &str, store: &str) -> Vec<f64> {
    run_with(count, role, base_url, store, "")
}

/// [`run`], the workers acting for merchant `msn` (none when empty), with the slow runs'
/// store timeout for role `slow`.
fn run_with(count: usize, role: &str, base_url: &str, store: &str, msn: &str) -> Vec<f64> {
    let children: Vec<_> = (0..count)
        .map(|_| {
            let mut command = Command::new(std::env::current_exe().expect("this binary"));
            if !msn.is_empty() {
                command.env("FLEET_MSN", msn);
            }
            if role == "slow" {
                command.env("FLEET_TIMEOUT_MS", SLOW_TIMEOUT_MS.to_string());
            }
            command
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
