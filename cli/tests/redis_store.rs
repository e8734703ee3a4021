//! The CLI with the Redis token store: processes that share one fetch, a lease holder
//! killed mid-fetch, a refused sealing key, a dead store said on stderr, `doctor`.

#[path = "../../tests/support/eventually.rs"]
mod eventually;
#[path = "../../tests/support/redis_server.rs"]
#[macro_use]
mod redis_server;

use std::time::{Duration, Instant};

use eventually::until;
use redis::AsyncCommands;
use redis_server::RedisServer;
use vipps_access_token::mock::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServer,
};

const PREFIX: &str = "vipps-access-token:";

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("a redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a raw connection")
}

/// The names of the token records (not leases nor failure markers) in the store.
async fn record_names(server: &RedisServer) -> Vec<String> {
    let mut names: Vec<String> = raw(server).await.keys(format!("{PREFIX}*")).await.unwrap();
    names.retain(|name| !name.ends_with(":lease") && !name.ends_with(":failed"));
    names.sort();
    names
}

/// The CLI, with the documented example keys and a sealing key in the environment.
fn cli(mock: &MockServer, subcommand: &str, store_key: Option<&str>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_vipps-token"));
    command
        .env_clear()
        .env("VIPPS_CLIENT_ID", DEFAULT_CLIENT_ID)
        .env("VIPPS_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .env("VIPPS_SUBSCRIPTION_KEY", DEFAULT_SUBSCRIPTION_KEY);
    command.args([subcommand, "--base-url", mock.base_url()]);
    if let Some(key) = store_key {
        command.env("VIPPS_TOKEN_STORE_KEY", key);
    }
    command
}

const STORE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[tokio::test]
async fn the_cli_with_a_store_fetches_once_across_runs() {
    let server = redis_or_skip!("the_cli_with_a_store_fetches_once_across_runs");
    let mock = MockServer::start().await.unwrap();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let output = cli(&mock, "token", Some(STORE_KEY))
            .args(["--store", &server.url()])
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        tokens.push(String::from_utf8(output.stdout).unwrap());
    }
    assert_eq!(mock.request_count(), 1, "one fetch for three runs");
    assert!(tokens.iter().all(|t| *t == tokens[0]));
}

/// The lease holder is a real process, killed with SIGKILL while it holds the lease and
/// waits on a slow token endpoint. Its short lease (2 s, renewed only while it lives)
/// expires, then exactly one of the two processes started after it fetches; the other
/// takes that record. A cold call gets its token within 3 s of the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_process_killed_mid_fetch_is_replaced_by_exactly_one_process() {
    let server = redis_or_skip!(
        "a_lease_holder_process_killed_mid_fetch_is_replaced_by_exactly_one_process"
    );
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_secs(3600));
    let mut holder = cli(&mock, "token", Some(STORE_KEY))
        .args(["--store", &server.url()])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // It takes the lease before it asks for a token: its request arriving means it holds it.
    until(async || mock.request_count() == 1).await;
    let leases: Vec<String> = raw(&server)
        .await
        .keys(format!("{PREFIX}*:lease"))
        .await
        .unwrap();
    assert_eq!(leases.len(), 1, "the holder's lease: {leases:?}");
    holder.kill().await.unwrap();
    let killed = Instant::now();
    mock.clear_faults();

    let run = || {
        cli(&mock, "token", Some(STORE_KEY))
            .args(["--store", &server.url()])
            .output()
    };
    let (first, second) = tokio::join!(run(), run());
    let waited = killed.elapsed();
    let (first, second) = (first.unwrap(), second.unwrap());
    for output in [&first, &second] {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(first.stdout, second.stdout, "one token for both");
    assert_eq!(
        mock.request_count(),
        2,
        "the dead holder's request, then one for the fleet"
    );
    assert!(
        waited < Duration::from_secs(3),
        "a dead holder's lease stalled the fleet for {waited:?}"
    );
}

#[tokio::test]
async fn the_cli_refuses_a_store_without_a_good_key_before_any_request() {
    let mock = MockServer::start().await.unwrap();
    for key in [None, Some("c2hvcnQ=")] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_vipps-token"))
            .env_clear()
            .env("VIPPS_TOKEN_STORE", "redis://127.0.0.1:1")
            .envs(key.map(|k| ("VIPPS_TOKEN_STORE_KEY", k)))
            .args(["token", "--base-url", mock.base_url()])
            .args([
                "--client-id",
                DEFAULT_CLIENT_ID,
                "--client-secret",
                DEFAULT_CLIENT_SECRET,
            ])
            .args(["--subscription-key", DEFAULT_SUBSCRIPTION_KEY])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("VIPPS_TOKEN_STORE_KEY"), "{stderr}");
        assert!(!stderr.contains("c2hvcnQ="), "{stderr}");
    }
    assert_eq!(
        mock.request_count(),
        0,
        "no request before the key is checked"
    );
}

/// A dead Redis used to be silent: every run fetched and nothing said so. Now each run
/// says it on stderr, one line, and still prints its token.
#[tokio::test]
async fn the_cli_says_on_stderr_that_a_dead_store_was_bypassed() {
    let mock = MockServer::start().await.unwrap();
    let output = cli(&mock, "token", Some(STORE_KEY))
        .args(["--store", "redis://:example-password@127.0.0.1:1"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!output.stdout.is_empty(), "the token is printed");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("vipps token store bypassed"))
        .collect();
    assert_eq!(warnings.len(), 1, "one line: {stderr}");
    for secret in [
        DEFAULT_CLIENT_SECRET,
        DEFAULT_SUBSCRIPTION_KEY,
        STORE_KEY,
        "example-password",
    ] {
        assert!(!stderr.contains(secret), "{stderr}");
    }
}

#[tokio::test]
async fn doctor_passes_against_the_mock_and_a_real_store() {
    let server = redis_or_skip!("doctor_passes_against_the_mock_and_a_real_store");
    let mock = MockServer::start().await.unwrap();
    let output = cli(&mock, "doctor", Some(STORE_KEY))
        .args(["--store", &server.url()])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for check in ["credentials", "token", "clock", "store"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "{check}: {stdout}"
        );
    }
    assert!(
        record_names(&server).await.is_empty(),
        "the probe record is removed"
    );
    for secret in [DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, STORE_KEY] {
        assert!(!stdout.contains(secret));
    }
}

#[tokio::test]
async fn doctor_fails_on_rejected_keys_and_an_unreachable_store() {
    let mock = MockServer::start().await.unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_vipps-token"))
        .env_clear()
        .env("VIPPS_CLIENT_ID", "not-a-uuid")
        .env("VIPPS_CLIENT_SECRET", "wrong")
        .env("VIPPS_SUBSCRIPTION_KEY", DEFAULT_SUBSCRIPTION_KEY)
        .env("VIPPS_TOKEN_STORE_KEY", STORE_KEY)
        .args([
            "doctor",
            "--base-url",
            mock.base_url(),
            "--store",
            "redis://127.0.0.1:1",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(8),
        "a doctor check failed: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("warn") && l.contains("not a UUID")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("fail") && l.contains("token")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("fail") && l.contains("store")),
        "{stdout}"
    );
}
