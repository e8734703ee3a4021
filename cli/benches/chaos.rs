//! The chaos figure for the Redis token store (issue 18): 8 worker loops run the real CLI
//! (`vipps-token token --store redis://...`) back to back, as cron jobs would, for a few
//! MSNs, while a killer SIGKILLs a random running CLI every few hundred ms and restarts
//! `redis-server` (SHUTDOWN NOSAVE or SIGKILL, then again on the same port) a few times.
//!
//! It prints the runs, kills, restarts, upstream requests against the ideal (one per MSN
//! per token life, plus one per MSN per restart, which loses every record), the longest and
//! p99 wait from spawn to exit, and the invariants: no expired token served, no token
//! handed to two MSNs. The mock's tokens carry nothing MSN-specific (the MSN is a header,
//! not a claim), so "for the right MSN" is checked as "never the token of another MSN".
//!
//! `cargo bench -p vipps-token-cli --bench chaos`; `VIPPS_CHAOS_SECONDS` (120 by
//! default) shortens the run, `VIPPS_CHAOS_TOKEN_SECONDS` (45) sets the mock's token life:
//! the store serves a record while it has more than the 30 s expiry margin left, so a
//! 45 s token is served for 15 s, less than the 24 s between restarts: a 2-minute run sees
//! each MSN's token expire as well as lost.

use std::{
    collections::{BTreeMap, HashMap},
    net::TcpListener,
    os::unix::process::ExitStatusExt,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
    sync::Notify,
};
use vipps_access_token::mock::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServer,
};

const WORKERS: usize = 8;
/// The documented example MSN and three neighbours: every worker asks for each in turn.
const MSNS: [&str; 4] = ["123456", "123457", "123458", "123459"];
/// Redis restarts in a run, spread evenly; odd ones SIGKILL, even ones SHUTDOWN NOSAVE.
const REDIS_RESTARTS: u32 = 4;
/// How long Redis stays down at each restart: runs meanwhile bypass the store.
const REDIS_DOWN: Duration = Duration::from_millis(500);
/// The killer's pause between kills: uniformly between these, in ms.
const KILL_EVERY_MS: (u64, u64) = (200, 500);
/// The sealing key every run shares: base64 of 32 bytes of 7.
const STORE_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
/// The CLI's default expiry margin. The store serves no record with less life left than
/// this, whatever the token's life (the in-process cache clamps it to a tenth of the life,
/// the store does not): a token of 30 s or less is never served from the store.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

fn seconds_from_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(chaos());
}

/// One CLI run as seen from outside.
struct Run {
    msn: &'static str,
    wait: Duration,
    outcome: Outcome,
    /// The store was bypassed (a warning on stderr).
    bypassed: bool,
    /// When the CLI exited, Unix seconds: its token must outlive that.
    ended: u64,
}

enum Outcome {
    Killed,
    Exit(i32, String),
    Token(String),
}

async fn chaos() {
    let duration = Duration::from_secs(seconds_from_env("VIPPS_CHAOS_SECONDS", 120));
    let lifetime = Duration::from_secs(seconds_from_env("VIPPS_CHAOS_TOKEN_SECONDS", 45));
    let binary = std::env::var("VIPPS_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    if std::process::Command::new(&binary)
        .arg("--version")
        .output()
        .is_err()
    {
        println!("chaos: skipped, `{binary}` is not on PATH (apt-get install redis-server)");
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port();
    let mut redis = start_redis(&binary, port).await;
    let mock = MockServer::builder()
        .token_lifetime(lifetime)
        .start()
        .await
        .expect("the mock");
    let store_url = format!("redis://127.0.0.1:{port}");

    let started = Instant::now();
    let end = started + duration;
    let kill_switches: Vec<Arc<Notify>> = (0..WORKERS).map(|_| Arc::new(Notify::new())).collect();
    let runs = Arc::new(Mutex::new(Vec::<Run>::new()));
    let workers: Vec<_> = kill_switches
        .iter()
        .enumerate()
        .map(|(index, kill)| {
            let (kill, runs) = (kill.clone(), runs.clone());
            let (base_url, store_url) = (mock.base_url().to_owned(), store_url.clone());
            tokio::spawn(async move {
                let mut turn = index;
                while Instant::now() < end {
                    let msn = MSNS[turn % MSNS.len()];
                    turn += 1;
                    let run = run_cli(&base_url, &store_url, msn, &kill).await;
                    runs.lock().unwrap().push(run);
                }
            })
        })
        .collect();

    let killer = tokio::spawn(async move {
        while Instant::now() < end {
            let pause = fastrand::u64(KILL_EVERY_MS.0..=KILL_EVERY_MS.1);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            // Wakes the worker only while its CLI runs; a worker between runs misses it.
            kill_switches[fastrand::usize(..WORKERS)].notify_waiters();
        }
    });

    // Redis restarts, evenly spread; the times Redis came back, from the start.
    let mut restarts = Vec::new();
    for restart in 1..=REDIS_RESTARTS {
        let at = started + duration * restart / (REDIS_RESTARTS + 1);
        tokio::time::sleep_until(at.into()).await;
        if restart % 2 == 1 {
            let _ = redis.start_kill();
        } else {
            let _ = std::process::Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["SHUTDOWN", "NOSAVE"])
                .output();
        }
        let _ = redis.wait().await;
        tokio::time::sleep(REDIS_DOWN).await;
        redis = start_redis(&binary, port).await;
        restarts.push(started.elapsed());
    }

    for worker in workers {
        worker.await.expect("a worker");
    }
    killer.await.expect("the killer");
    let elapsed = started.elapsed();
    let _ = redis.start_kill();
    let _ = redis.wait().await;
    report(
        &mock,
        &runs.lock().unwrap(),
        elapsed,
        lifetime,
        &restarts,
        duration,
    );
}

/// Starts `redis-server` on `port` (no persistence) and waits until it is ready.
async fn start_redis(binary: &str, port: u16) -> Child {
    let mut child = Command::new(binary)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server starts");
    let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) if line.contains("Ready to accept connections") => break,
            Ok(Some(_)) => {}
            _ => panic!("redis-server exited before it was ready (port {port} taken?)"),
        }
    }
    // Keep draining its output so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// Runs the CLI once for `msn`, SIGKILLed if `kill` fires meanwhile.
async fn run_cli(base_url: &str, store_url: &str, msn: &'static str, kill: &Notify) -> Run {
    let killed = kill.notified();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vipps-token"))
        .args(["token", "--base-url", base_url, "--store", store_url])
        .args(["--msn", msn, "--output", "json"])
        .env("VIPPS_CLIENT_ID", DEFAULT_CLIENT_ID)
        .env("VIPPS_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .env("VIPPS_SUBSCRIPTION_KEY", DEFAULT_SUBSCRIPTION_KEY)
        .env("VIPPS_TOKEN_STORE_KEY", STORE_KEY)
        .env_remove("VIPPS_TOKEN_STORE_PREVIOUS_KEY")
        .env_remove("VIPPS_TOKEN_STORE_PREFIX")
        .env_remove("VIPPS_TOKEN_STORE_CA")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the CLI starts");
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let status = tokio::select! {
        status = child.wait() => status,
        () = killed => {
            let _ = child.start_kill();
            child.wait().await
        }
    }
    .expect("the CLI's status");
    let wait = started.elapsed();
    let ended = unix_now();
    let stdout = stdout.await.unwrap_or_default();
    let stderr = stderr.await.unwrap_or_default();
    let bypassed = stderr.contains("bypassed");
    let outcome = match (status.signal(), status.code()) {
        (Some(9), _) => Outcome::Killed,
        (_, Some(0)) => Outcome::Token(stdout),
        (_, code) => Outcome::Exit(code.unwrap_or(-1), stderr),
    };
    Run {
        msn,
        wait,
        outcome,
        bypassed,
        ended,
    }
}

fn read_all(
    pipe: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text).await;
        }
        text
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The fewest upstream requests one MSN needs: one at the start, one each time its
/// token's usable life ends, one after each restart (the records are lost).
fn ideal_per_msn(duration: Duration, usable: Duration, restarts: &[Duration]) -> u64 {
    let mut fetched_at = Duration::ZERO;
    let mut count = 1;
    loop {
        let next_restart = restarts.iter().copied().find(|&at| at > fetched_at);
        let next = next_restart.map_or(fetched_at + usable, |at| at.min(fetched_at + usable));
        if next >= duration {
            return count;
        }
        count += 1;
        fetched_at = next;
    }
}

fn report(
    mock: &MockServer,
    runs: &[Run],
    elapsed: Duration,
    lifetime: Duration,
    restarts: &[Duration],
    duration: Duration,
) {
    let mut killed = 0;
    let mut failures: BTreeMap<i32, (usize, String)> = BTreeMap::new();
    let mut expired = 0;
    let mut foreign = 0;
    let mut unreadable = 0;
    let mut least_life_left = u64::MAX;
    let mut msn_of: HashMap<String, &str> = HashMap::new();
    let mut waits: Vec<Duration> = Vec::new();
    let mut successes = 0;
    for run in runs {
        match &run.outcome {
            Outcome::Killed => {
                killed += 1;
                continue;
            }
            Outcome::Exit(code, stderr) => {
                let entry = failures.entry(*code).or_insert((0, stderr.clone()));
                entry.0 += 1;
            }
            Outcome::Token(json) => {
                successes += 1;
                let token = serde_json::from_str::<serde_json::Value>(json)
                    .ok()
                    .and_then(|value| Some(value.get("access_token")?.as_str()?.to_owned()));
                let claims = token.as_deref().and_then(|token| mock.verify_token(token));
                let (Some(token), Some(claims)) = (token, claims) else {
                    unreadable += 1;
                    continue;
                };
                // `exp` as the mock signed it, against when the run exited.
                let exp = claims.get("exp").and_then(|exp| exp.as_u64()).unwrap_or(0);
                if exp <= run.ended {
                    expired += 1;
                }
                least_life_left = least_life_left.min(exp.saturating_sub(run.ended));
                if *msn_of.entry(token).or_insert(run.msn) != run.msn {
                    foreign += 1;
                }
            }
        }
        waits.push(run.wait);
    }
    waits.sort();
    let p99 = waits
        .get((waits.len() * 99 / 100).min(waits.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    let longest = waits.last().copied().unwrap_or_default();
    let usable = lifetime
        .saturating_sub(EXPIRY_MARGIN)
        .max(Duration::from_secs(1));
    let ideal = ideal_per_msn(duration, usable, restarts) * MSNS.len() as u64;
    let bypassed = runs.iter().filter(|run| run.bypassed).count();
    // A run that bypassed the store and exited fetched directly: one request each.
    let direct = runs
        .iter()
        .filter(|run| run.bypassed && !matches!(run.outcome, Outcome::Killed))
        .count() as u64;
    println!(
        "chaos: {WORKERS} workers x CLI runs for {:.0} s, {} MSNs, token life {} s",
        elapsed.as_secs_f64(),
        MSNS.len(),
        lifetime.as_secs()
    );
    println!(
        "runs: {}, successes: {successes}, SIGKILLed: {killed}, redis restarts: {}, runs that bypassed the store: {bypassed}",
        runs.len(),
        restarts.len()
    );
    for (code, (count, stderr)) in &failures {
        println!(
            "failed with exit {code}: {count} (first: {})",
            stderr.trim().replace('\n', " / ")
        );
    }
    let upstream = mock.request_count();
    println!(
        "upstream requests: {upstream}; of which {direct} by runs that bypassed the store while Redis was down, {} through the store (ideal {ideal}: one per MSN per {} s of usable life, plus one per MSN per restart); distinct tokens served: {}",
        upstream.saturating_sub(direct),
        usable.as_secs(),
        msn_of.len()
    );
    println!(
        "wait, spawn to exit, runs not killed: p99 {:.1} ms, longest {:.1} ms, median {:.1} ms",
        p99.as_secs_f64() * 1000.0,
        longest.as_secs_f64() * 1000.0,
        waits
            .get(waits.len() / 2)
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0
    );
    println!(
        "invariants: expired tokens served: {expired}; tokens for another MSN: {foreign}; unreadable or foreign-signed tokens: {unreadable}; least life left on a served token: {} s",
        if least_life_left == u64::MAX {
            0
        } else {
            least_life_left
        }
    );
}
