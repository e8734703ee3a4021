//! The store over TLS against a real `redis-server --tls-port`, with a CA and certificate
//! made by `openssl` (see `support/redis_tls.rs`), through the CLI as deployed:
//! `rediss://` and `VIPPS_TOKEN_STORE_CA`. A certificate that does not verify is a
//! bypass with a warning on stderr, never an unverified connection. Skipped without
//! `redis-server`, unless `VIPPS_REQUIRE_REDIS=1`.

#[path = "../../tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;
#[path = "../../tests/support/redis_tls.rs"]
mod redis_tls;

use std::path::Path;

use redis_tls::TlsRedis;
use vipps_access_token::mock::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServer,
};

const STORE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// `vipps-token token --store URL` with the CA in `VIPPS_TOKEN_STORE_CA`.
async fn run(mock: &MockServer, url: &str, ca: &Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_vipps-token"))
        .env_clear()
        .env("VIPPS_CLIENT_ID", DEFAULT_CLIENT_ID)
        .env("VIPPS_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .env("VIPPS_SUBSCRIPTION_KEY", DEFAULT_SUBSCRIPTION_KEY)
        .env("VIPPS_TOKEN_STORE_KEY", STORE_KEY)
        .env("VIPPS_TOKEN_STORE_CA", ca)
        .args(["token", "--base-url", mock.base_url(), "--store", url])
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cold_processes_over_tls_make_one_request() {
    let Some(redis) = TlsRedis::start("two_cold_processes_over_tls_make_one_request") else {
        return;
    };
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(std::time::Duration::from_millis(200));
    let url = redis.url();
    let (first, second) = tokio::join!(run(&mock, &url, &redis.ca), run(&mock, &url, &redis.ca));
    for output in [&first, &second] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(!stderr.contains("bypassed"), "{stderr}");
    }
    assert_eq!(first.stdout, second.stdout, "one token for both");
    assert_eq!(
        mock.request_count(),
        1,
        "one upstream request for both processes"
    );
}

#[tokio::test]
async fn a_certificate_that_does_not_verify_is_a_warned_direct_fetch() {
    let Some(redis) =
        TlsRedis::start("a_certificate_that_does_not_verify_is_a_warned_direct_fetch")
    else {
        return;
    };
    let mock = MockServer::start().await.unwrap();
    for _ in 0..2 {
        let output = run(&mock, &redis.url(), &redis.other_ca).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "a token all the same: {stderr}");
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("vipps token store bypassed"))
            .collect();
        assert!(!warnings.is_empty(), "the bypass is visible: {stderr}");
        for secret in [DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, STORE_KEY] {
            assert!(!stderr.contains(secret), "{stderr}");
        }
    }
    assert_eq!(
        mock.request_count(),
        2,
        "each run fetched directly: nothing was stored unverified"
    );
    assert_eq!(
        redis
            .server
            .cli(&["--tls", "--cacert", &redis.ca.to_string_lossy(), "DBSIZE"])
            .trim(),
        "0"
    );
}

#[tokio::test]
async fn a_ca_file_that_is_not_pem_is_a_usage_error() {
    let mock = MockServer::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("vipps-not-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("ca.txt");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    for ca in [not_pem.as_path(), Path::new("/nonexistent/ca.pem")] {
        let output = run(&mock, "rediss://127.0.0.1:1", ca).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("VIPPS_TOKEN_STORE_CA"), "{stderr}");
    }
    assert_eq!(mock.request_count(), 0);
    let _ = std::fs::remove_dir_all(dir);
}
