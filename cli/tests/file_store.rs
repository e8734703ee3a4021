//! The file token store, the CLI's default cache: real files in a temporary directory, real
//! `vipps-token` processes where processes matter, upstream requests counted by the
//! embedded mock. One fetch for many runs, a lock the kernel releases when its holder is
//! killed, nothing readable at rest, and every bad file or disk fault a miss.
#![cfg(unix)]

#[path = "../../tests/support/example_keys.rs"]
mod example_keys;

use std::{
    collections::HashSet,
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Output,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::Engine as _;
use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};
use serde_json::Value;
use vipps_access_token::{
    Client, ClientSecret, RefreshPolicy, TokenProvider, TokenSource,
    mock::MockServer,
    store::{FileTokenStore, SealingKeys, StoreConfig, StoreError},
};

const BIN: &str = env!("CARGO_BIN_EXE_vipps-token");
/// The documented example Merchant-Serial-Number.
const MSN: &str = "123456";
/// A sealing key given explicitly, base64 of 32 bytes.
const STORE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// `vipps-token SUBCOMMAND --base-url MOCK` with the example keys, nothing else from this
/// environment, and `cache` as `XDG_CACHE_HOME`: the store is `cache/vipps-token`.
fn cli(mock: &MockServer, cache: &Path, subcommand: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BIN);
    command
        .env_clear()
        .env("XDG_CACHE_HOME", cache)
        .env("VIPPS_CLIENT_ID", CLIENT_ID)
        .env("VIPPS_CLIENT_SECRET", CLIENT_SECRET)
        .env("VIPPS_SUBSCRIPTION_KEY", SUBSCRIPTION_KEY)
        .env("VIPPS_PARTNER_CLIENT_ID", CLIENT_ID)
        .env("VIPPS_PARTNER_CLIENT_SECRET", CLIENT_SECRET)
        .args([subcommand, "--base-url", mock.base_url()])
        .kill_on_drop(true);
    command
}

/// The store directory of a cache.
fn store_dir(cache: &Path) -> PathBuf {
    cache.join("vipps-token")
}

/// The token a successful run printed; panics with its stderr otherwise.
fn token_of(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let token = String::from_utf8(output.stdout.clone()).expect("UTF-8");
    token.trim_end().to_owned()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The record files of a store directory (lease locks and dot files left out).
fn record_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("the store directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            !name.starts_with('.') && !name.ends_with(":lease")
        })
        .collect();
    files.sort();
    files
}

/// The one record file of a store directory.
fn the_record(dir: &Path) -> PathBuf {
    let files = record_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// Waits for `condition`, checking often, for at most 10 s: a wait for an event, not a
/// sleep for timing.
async fn until(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "the condition never held");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn config_from_secret() -> StoreConfig {
    StoreConfig::new(SealingKeys::from_client_secret(&ClientSecret::new(
        CLIENT_SECRET,
    )))
}

/// A provider with a cache of its own over a store opened afresh (keys derived again):
/// what a new process has, but for the HTTP client, shared to keep the test quick.
fn fresh_process(mock: &MockServer, client: &Client, dir: &Path) -> TokenProvider {
    let store = FileTokenStore::new(dir, config_from_secret()).expect("a private directory");
    TokenProvider::builder(
        client.clone(),
        TokenSource::Standard(mock.standard_credentials()),
    )
    .store(Arc::new(store))
    .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_cold_processes_at_once_make_one_upstream_request() {
    let mock = MockServer::start().await.unwrap();
    // Slow enough that the other seven start while the first holds the lock.
    mock.set_delay(Duration::from_millis(300));
    let cache = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..8)
        .map(|_| cli(&mock, cache.path(), "token").output())
        .collect();
    let outputs = futures_util::future::join_all(runs).await;
    let tokens: HashSet<String> = outputs
        .iter()
        .map(|o| token_of(o.as_ref().unwrap()))
        .collect();
    assert_eq!(
        mock.request_count(),
        1,
        "one upstream request for 8 processes"
    );
    assert_eq!(tokens.len(), 1, "every process printed the same token");
    for output in &outputs {
        let stderr = stderr_of(output.as_ref().unwrap());
        assert!(!stderr.contains("warning"), "{stderr}");
    }
}

/// 1000 sequential runs of the CLI, each a cold process (about 10 ms each on a debug
/// build), then 1000 fresh stores and providers in this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sequential_runs_make_one_upstream_request() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let first = token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    for _ in 1..1000 {
        let output = cli(&mock, cache.path(), "token").output().await.unwrap();
        assert_eq!(token_of(&output), first);
    }
    assert_eq!(mock.request_count(), 1, "one request for 1000 runs");
    let dir = store_dir(cache.path());
    let client = mock.client_builder().build().unwrap();
    for _ in 0..1000 {
        let token = fresh_process(&mock, &client, &dir).token().await.unwrap();
        assert_eq!(token.secret().expose_secret(), first);
    }
    assert_eq!(
        mock.request_count(),
        1,
        "and none for 1000 opens in process"
    );
}

/// The holder waits on a slow token endpoint with the lock held; SIGKILL ends it. The
/// kernel drops its lock at once: the lock is free before anyone waits, and the next run
/// takes it without the wait that ends in a direct fetch (which warns).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_holder_killed_with_sigkill_does_not_hold_up_the_next_run() {
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_secs(3600));
    let cache = tempfile::tempdir().unwrap();
    let dir = store_dir(cache.path());
    let mut holder = cli(&mock, cache.path(), "token").spawn().unwrap();
    // It takes the lock before it asks for a token: its request arriving means it holds it.
    until(|| mock.request_count() == 1).await;
    let lease = lease_file(&dir);
    let file = fs::File::open(&lease).unwrap();
    assert!(
        matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock)),
        "the holder holds the lock"
    );
    holder.kill().await.unwrap();
    assert!(
        file.try_lock().is_ok(),
        "the kernel released the dead holder's lock"
    );
    drop(file);
    mock.clear_faults();

    let output = cli(&mock, cache.path(), "token").output().await.unwrap();
    let token = token_of(&output);
    assert!(mock.verify_token(&token).is_some());
    assert!(
        !stderr_of(&output).contains("bypassed"),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(
        mock.request_count(),
        2,
        "the dead holder's request, then one"
    );
    let again = cli(&mock, cache.path(), "token").output().await.unwrap();
    assert_eq!(token_of(&again), token, "and the next run takes its record");
    assert_eq!(mock.request_count(), 2);
}

fn lease_file(dir: &Path) -> PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(":lease"))
        .expect("a lease file")
}

/// Every form a secret could take in the file: the token, the client id, the MSN, the
/// client secret and the subscription key, as they are and in base64.
#[tokio::test]
async fn the_files_hold_no_token_client_id_msn_or_secret_and_are_private() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let output = cli(&mock, cache.path(), "token")
        .args(["--msn", MSN])
        .output()
        .await
        .unwrap();
    let token = token_of(&output);
    let dir = store_dir(cache.path());
    let base64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let needles = [
        token.as_str(),
        CLIENT_ID,
        MSN,
        CLIENT_SECRET,
        SUBSCRIPTION_KEY,
    ];
    let mut seen = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for needle in needles {
            for form in [needle.to_owned(), base64(needle)] {
                assert!(!contains(&bytes, form.as_bytes()), "{name} holds a secret");
                assert!(!name.contains(&form), "{name} names a secret");
            }
        }
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
        seen += 1;
    }
    assert!(seen >= 2, "a record and its lease file at least");
    let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test]
async fn a_directory_others_can_write_is_refused_with_what_to_do() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = store_dir(cache.path());
    fs::create_dir(&dir).unwrap();
    for mode in [0o777, 0o770, 0o702] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
        let refused = FileTokenStore::new(&dir, config_from_secret()).unwrap_err();
        assert!(matches!(refused, StoreError::Config(_)), "{refused:?}");
        let output = cli(&mock, cache.path(), "token").output().await.unwrap();
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("chmod 700"), "{stderr}");
        assert!(stderr.contains("--no-cache"), "{stderr}");
    }
    assert_eq!(mock.request_count(), 0, "refused before any request");
    let output = cli(&mock, cache.path(), "token")
        .arg("--no-cache")
        .output()
        .await
        .unwrap();
    token_of(&output);
    let file = tempfile::NamedTempFile::new().unwrap();
    let not_a_dir = FileTokenStore::new(file.path(), config_from_secret()).unwrap_err();
    assert!(
        not_a_dir.to_string().contains("not a directory"),
        "{not_a_dir}"
    );
}

/// Each damaged record: the run warns, fetches, and replaces it with a good one, which the
/// run after it takes without a request.
#[tokio::test]
async fn corrupt_truncated_and_foreign_files_are_misses_with_a_warning_then_replaced() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = store_dir(cache.path());
    token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    let record = the_record(&dir);
    let good = fs::read(&record).unwrap();
    // A record sealed under another key, at this record's name: foreign.
    let other = tempfile::tempdir().unwrap();
    token_of(
        &cli(&mock, other.path(), "token")
            .env("VIPPS_TOKEN_STORE_KEY", STORE_KEY)
            .output()
            .await
            .unwrap(),
    );
    let foreign = fs::read(the_record(&store_dir(other.path()))).unwrap();
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let mut future_format = good.clone();
    future_format[4] = 99;
    let damaged: [(&str, Vec<u8>); 6] = [
        ("garbage", b"not a cache file at all".to_vec()),
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("flipped", flipped),
        ("foreign key", foreign),
        ("future format", future_format),
    ];
    let mut requests = mock.request_count();
    for (what, bytes) in damaged {
        fs::write(&record, &bytes).unwrap();
        let output = cli(&mock, cache.path(), "token").output().await.unwrap();
        token_of(&output);
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains("WARN vipps token store bypassed"),
            "{what}: {stderr}"
        );
        assert!(!stderr.contains(CLIENT_SECRET), "{what}: {stderr}");
        requests += 1;
        assert_eq!(mock.request_count(), requests, "{what}: a miss, one fetch");
        assert_ne!(fs::read(&record).unwrap(), bytes, "{what}: replaced");
        let next = cli(&mock, cache.path(), "token").output().await.unwrap();
        token_of(&next);
        assert!(stderr_of(&next).is_empty(), "{what}: {}", stderr_of(&next));
        assert_eq!(
            mock.request_count(),
            requests,
            "{what}: the replacement is read"
        );
    }
}

/// A damaged file is warned about once per run, as the docs promise ("a miss with a
/// warning"): the warm read is quiet, and the command's look at the store says it once,
/// not once for its look and again for its look after taking the lease.
#[tokio::test]
async fn a_damaged_file_is_warned_about_once_per_run() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = store_dir(cache.path());
    token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    let record = the_record(&dir);
    let good = fs::read(&record).unwrap();
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let mut counts = Vec::new();
    for (what, bytes) in [
        ("garbage", b"not a cache file at all".to_vec()),
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("flipped", flipped),
    ] {
        fs::write(&record, &bytes).unwrap();
        let output = cli(&mock, cache.path(), "token").output().await.unwrap();
        token_of(&output);
        counts.push((what, stderr_of(&output).matches("WARN").count()));
    }
    assert!(counts.iter().all(|&(_, n)| n == 1), "{counts:?}");
}

/// An expired file is the normal end of a cached token: a miss, then replaced. A token
/// with less than the expiry margin left is never served, whatever its file says.
#[tokio::test]
async fn expired_files_and_tokens_within_the_margin_are_never_served() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = store_dir(cache.path());
    let first = token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    let record = the_record(&dir);
    let mut expired = fs::read(&record).unwrap();
    // The header's expiry (Unix milliseconds, after magic and version): 1970.
    expired[5..13].copy_from_slice(&1u64.to_be_bytes());
    fs::write(&record, &expired).unwrap();
    let second = token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    assert_eq!(mock.request_count(), 2, "expired: fetched again");
    assert_ne!(first, second);
    assert_ne!(fs::read(&record).unwrap(), expired, "replaced");

    // The mock's tokens live an hour: with a margin of two, none in the store will do.
    let strict = RefreshPolicy {
        expiry_margin: Duration::from_secs(7200),
        ..RefreshPolicy::default()
    };
    let store = FileTokenStore::new(&dir, config_from_secret()).unwrap();
    let provider = TokenProvider::builder(
        mock.client_builder().build().unwrap(),
        TokenSource::Standard(mock.standard_credentials()),
    )
    .refresh_policy(strict)
    .expect("a valid policy")
    .store(Arc::new(store))
    .build();
    let _ = provider.token().await;
    assert_eq!(
        mock.request_count(),
        3,
        "a stored token inside the margin is a miss"
    );
}

/// A directory this user cannot write: a chmod 0500 directory, or for root (which writes
/// anywhere) one of sysfs. Every run fetches directly and says why; nothing breaks.
#[tokio::test]
async fn an_unwritable_directory_degrades_to_a_direct_fetch_with_a_warning() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = store_dir(cache.path());
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o500)).unwrap();
    let unwritable = if fs::write(dir.join("probe"), b"x").is_ok() {
        PathBuf::from("/sys/kernel") // this user ignores modes: sysfs refuses new files
    } else {
        dir.clone()
    };
    for run in 1..=2 {
        let output = cli(&mock, cache.path(), "token")
            .arg("--store")
            .arg(format!("file:{}", unwritable.display()))
            .output()
            .await
            .unwrap();
        let token = token_of(&output);
        assert!(mock.verify_token(&token).is_some());
        let stderr = stderr_of(&output);
        assert!(stderr.contains("WARN"), "{stderr}");
        assert!(stderr.contains("fetching directly"), "{stderr}");
        assert_eq!(mock.request_count(), run, "each run fetches directly");
    }
    // The default cache under a parent where nothing can be created: a warning, a token.
    let output = cli(&mock, Path::new("/proc/self/no-such-dir"), "token")
        .output()
        .await
        .unwrap();
    token_of(&output);
    assert!(
        stderr_of(&output).contains("without the cache"),
        "{}",
        stderr_of(&output)
    );
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
}

/// Key names cover the MSN and the sealing keys: a token for one is never served for the
/// other, and each is still found again by its own.
#[tokio::test]
async fn another_msn_or_another_key_set_never_gets_the_token() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let plain = token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    let with_msn = token_of(
        &cli(&mock, cache.path(), "token")
            .args(["--msn", MSN])
            .output()
            .await
            .unwrap(),
    );
    let with_key = token_of(
        &cli(&mock, cache.path(), "token")
            .env("VIPPS_TOKEN_STORE_KEY", STORE_KEY)
            .output()
            .await
            .unwrap(),
    );
    assert_eq!(mock.request_count(), 3, "three identities, three fetches");
    let distinct: HashSet<&String> = [&plain, &with_msn, &with_key].into_iter().collect();
    assert_eq!(distinct.len(), 3);
    let again = token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    let again_msn = token_of(
        &cli(&mock, cache.path(), "token")
            .args(["--msn", MSN])
            .output()
            .await
            .unwrap(),
    );
    assert_eq!((again, again_msn), (plain, with_msn));
    assert_eq!(mock.request_count(), 3, "each found again by its own");
    assert_eq!(record_files(&store_dir(cache.path())).len(), 3);
}

#[tokio::test]
async fn every_token_command_caches_and_cache_list_and_clear_show_and_remove() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        for (subcommand, extra) in [
            ("token", None),
            ("partner-token", None),
            ("legacy-token", Some(["--resource", "recurring"])),
        ] {
            let mut command = cli(&mock, cache.path(), subcommand);
            command.args(extra.iter().flatten());
            token_of(&command.output().await.unwrap());
        }
    }
    assert_eq!(
        mock.request_count(),
        3,
        "one fetch per flow for two runs each"
    );

    let list = cli_cache(cache.path(), "list").await;
    let text = token_of(&list);
    for flow in ["standard", "partner", "legacy"] {
        assert_eq!(text.matches(&format!("  {flow} ")).count(), 1, "{text}");
    }
    assert_eq!(text.matches("vipps-access-token:").count(), 3, "{text}");
    assert_eq!(text.matches("expires 20").count(), 3, "{text}");
    for secret in [CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY] {
        assert!(!text.contains(secret), "{text}");
    }

    let clear = token_of(&cli_cache(cache.path(), "clear").await);
    assert!(clear.starts_with("removed 3 cached tokens"), "{clear}");
    let empty = token_of(&cli_cache(cache.path(), "list").await);
    assert!(empty.starts_with("no cached tokens"), "{empty}");
    token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    assert_eq!(mock.request_count(), 4, "cleared: the next run fetches");
}

/// `vipps-token cache SUBCOMMAND` with only `XDG_CACHE_HOME`: listing needs no keys.
async fn cli_cache(cache: &Path, subcommand: &str) -> Output {
    tokio::process::Command::new(BIN)
        .env_clear()
        .env("XDG_CACHE_HOME", cache)
        .args(["cache", subcommand])
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn doctor_reports_the_cache_path_and_health() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = store_dir(cache.path());
    let output = cli(&mock, cache.path(), "doctor").output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains(" cache "))
        .expect(&stdout);
    assert!(line.starts_with("ok"), "{line}");
    assert!(line.contains(&dir.display().to_string()), "{line}");
    assert!(record_files(&dir).is_empty(), "the probe record is removed");

    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let output = cli(&mock, cache.path(), "doctor").output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_ne!(output.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains(" cache "))
        .expect(&stdout);
    assert!(
        line.starts_with("fail") && line.contains("chmod 700"),
        "{line}"
    );
}

/// The store's `Debug` and its errors show the directory and the keys' public ids, never
/// a key; a probe record is written, read back and removed.
#[tokio::test]
async fn the_store_shows_no_key_and_passes_its_probe() {
    let cache = tempfile::tempdir().unwrap();
    let store = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let shown = format!("{store:?}");
    assert!(
        shown.contains(&cache.path().display().to_string()),
        "{shown}"
    );
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    vipps_access_token::store::probe(&store).await.unwrap();
    assert!(
        store.entries().unwrap().is_empty(),
        "the probe record is removed"
    );
}

/// A fetch slower than the lease's TTL (2 s): the holder renews its lease in place, so it
/// keeps its lock for the whole fetch and the seven others wait for its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_cold_processes_behind_a_three_second_upstream_make_one_request() {
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_secs(3));
    let cache = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..8)
        .map(|_| cli(&mock, cache.path(), "token").output())
        .collect();
    let outputs = futures_util::future::join_all(runs).await;
    let tokens: HashSet<String> = outputs
        .iter()
        .map(|o| token_of(o.as_ref().unwrap()))
        .collect();
    assert_eq!(mock.request_count(), 1, "one request for 8 processes");
    assert_eq!(tokens.len(), 1, "every process printed the same token");
}

/// Six processes facing a 503: the waiters know whom they wait for (the lease file names
/// its holder), so the holder's failure is theirs: one fetch with its retries, and every
/// process fails with the 503. Needs both halves: the lease file naming its holder (here)
/// and waiters returning the holder's error (`shared_fetch.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_processes_facing_a_503_share_the_holders_failure() {
    let mock = MockServer::start().await.unwrap();
    mock.fail_all(503, "Service Unavailable");
    mock.set_delay(Duration::from_millis(300));
    let cache = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..6)
        .map(|_| cli(&mock, cache.path(), "token").output())
        .collect();
    for output in futures_util::future::join_all(runs).await {
        let output = output.unwrap();
        let stderr = stderr_of(&output);
        assert_ne!(output.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("503"), "{stderr}");
    }
    assert_eq!(
        mock.request_count(),
        3,
        "one fetch (3 attempts) for 6 processes"
    );
}

/// A file of our name shape (prefix, hash tag, 64 hex digits), as a file name.
fn our_name(suffix: &str) -> String {
    format!("vipps-access-token:%7B0a1b%7D{}{suffix}", "0".repeat(64))
}

/// A file header saying "expired in 1970", then `body`: an expired record of ours.
fn expired_record(body: &[u8]) -> Vec<u8> {
    let mut bytes = b"vatf\x01".to_vec();
    bytes.extend_from_slice(&1u64.to_be_bytes());
    bytes.push(0);
    bytes.extend_from_slice(body);
    bytes
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `cache clear` removes only what is provably ours: our name shape and (for records) our
/// header, lease files nobody holds, temporary files of our shape that no writer is still
/// writing. An empty key prefix, which would make every name look like ours, is refused;
/// a short one matches nothing that is not ours.
#[tokio::test]
async fn cache_clear_removes_only_files_that_are_provably_ours() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = store_dir(cache.path());
    token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    let temp_in_progress = format!(".tmp-{}", "a".repeat(32));
    let temp_left_over = format!(".tmp-{}", "b".repeat(32));
    let foreign = [
        "notes.txt".to_owned(),
        "vendor.json".to_owned(),
        "vipps-access-token:not-ours".to_owned(),
        our_name(""),         // our shape, not our header
        our_name(":unknown"), // a suffix we do not write
        ".tmp-notes".to_owned(),
        temp_in_progress.clone(),
    ];
    for name in &foreign {
        fs::write(dir.join(name), b"someone else's").unwrap();
    }
    let before = names_in(&dir);

    for prefix in ["", "v"] {
        let output = tokio::process::Command::new(BIN)
            .env_clear()
            .env("XDG_CACHE_HOME", cache.path())
            .env("VIPPS_TOKEN_STORE_PREFIX", prefix)
            .args(["cache", "clear"])
            .output()
            .await
            .unwrap();
        if prefix.is_empty() {
            assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
            assert!(
                stderr_of(&output).contains("VIPPS_TOKEN_STORE_PREFIX"),
                "{}",
                stderr_of(&output)
            );
        } else {
            token_of(&output);
        }
        assert_eq!(names_in(&dir), before, "prefix {prefix:?}: nothing removed");
    }

    // Left by a writer that died an hour ago: ours to remove, whatever the prefix.
    fs::write(dir.join(&temp_left_over), b"half").unwrap();
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(dir.join(&temp_left_over))
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    let cleared = token_of(&cli_cache(cache.path(), "clear").await);
    assert!(cleared.starts_with("removed 1 cached token "), "{cleared}");
    let mut left: Vec<String> = foreign.to_vec();
    left.push(".lock".to_owned());
    left.sort();
    assert_eq!(names_in(&dir), left, "ours gone, every other file kept");
    for name in &foreign {
        assert_eq!(fs::read(dir.join(name)).unwrap(), b"someone else's");
    }
}

/// `cache list` looks, it does not create; a failure marker is listed as one, not as a
/// token.
#[tokio::test]
async fn cache_list_creates_nothing_and_shows_failure_markers_as_such() {
    let cache = tempfile::tempdir().unwrap();
    let dir = store_dir(cache.path());
    let empty = token_of(&cli_cache(cache.path(), "list").await);
    assert!(empty.starts_with("no cached tokens"), "{empty}");
    assert!(!dir.exists(), "cache list created {}", dir.display());

    let store = FileTokenStore::new(&dir, config_from_secret()).unwrap();
    let marker = format!("vipps-access-token:{{0a1b}}{}:failed", "0".repeat(64));
    use vipps_access_token::store::TokenStore as _;
    store
        .put(
            &marker,
            b"0123456789abcdef0000000000000001".to_vec(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let list = token_of(&cli_cache(cache.path(), "list").await);
    let line = list.lines().find(|l| l.contains(":failed")).expect(&list);
    assert!(line.contains("failure marker"), "{line}");
}

/// The directory must be ours and not a symbolic link, or the cache is bypassed with a
/// warning that says why; the token still comes.
#[tokio::test]
async fn a_directory_of_another_user_or_a_symlink_is_bypassed_with_a_warning() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = store_dir(cache.path());
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("tests run as root");
    let refused = FileTokenStore::new(&dir, config_from_secret()).unwrap_err();
    assert!(refused.to_string().contains("owned by"), "{refused}");
    let output = cli(&mock, cache.path(), "token").output().await.unwrap();
    token_of(&output);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("owned by") && stderr.contains("without the cache"),
        "{stderr}"
    );
    assert!(names_in(&dir).is_empty(), "nothing written there");

    fs::remove_dir(&dir).unwrap();
    let target = cache.path().join("elsewhere");
    fs::create_dir(&target).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&target, &dir).unwrap();
    let refused = FileTokenStore::new(&dir, config_from_secret()).unwrap_err();
    assert!(refused.to_string().contains("symbolic link"), "{refused}");
    let output = cli(&mock, cache.path(), "token").output().await.unwrap();
    token_of(&output);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("symbolic link") && stderr.contains("without the cache"),
        "{stderr}"
    );
    assert!(
        names_in(&target).is_empty(),
        "nothing written through the link"
    );
}

/// The directory swapped for a symbolic link after the store opened it: every write and
/// removal still goes to the directory the store opened, never through the link.
#[tokio::test]
async fn a_directory_swapped_for_a_symlink_after_opening_is_never_written_through() {
    let mock = MockServer::start().await.unwrap();
    let client = mock.client_builder().build().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("cache");
    let store = FileTokenStore::new(&dir, config_from_secret()).unwrap();
    let store: Arc<FileTokenStore> = Arc::new(store);
    let moved = parent.path().join("moved");
    fs::rename(&dir, &moved).unwrap();
    let target = parent.path().join("target");
    fs::create_dir(&target).unwrap();
    let victim = target.join(our_name(""));
    fs::write(&victim, expired_record(b"not yours")).unwrap();
    fs::write(target.join("notes.txt"), b"keep").unwrap();
    std::os::unix::fs::symlink(&target, &dir).unwrap();
    let before: Vec<(String, Vec<u8>)> = names_in(&target)
        .into_iter()
        .map(|name| (name.clone(), fs::read(target.join(&name)).unwrap()))
        .collect();

    let provider = TokenProvider::builder(
        client.clone(),
        TokenSource::Standard(mock.standard_credentials()),
    )
    .store(store.clone())
    .build();
    provider.token().await.unwrap();
    vipps_access_token::store::settle(Duration::from_secs(5)).await;
    assert_eq!(
        store.entries().unwrap().len(),
        1,
        "the record, in the opened directory"
    );
    assert_eq!(
        record_files(&moved).len(),
        1,
        "written where the store was opened"
    );
    store.clear().unwrap();

    let after: Vec<(String, Vec<u8>)> = names_in(&target)
        .into_iter()
        .map(|name| (name.clone(), fs::read(target.join(&name)).unwrap()))
        .collect();
    assert_eq!(after, before, "the link's target is untouched");
    assert!(
        record_files(&moved).is_empty(),
        "cleared where it was opened"
    );
}

/// Sends `signal` (`-STOP`, `-CONT`, `-KILL`) to the process `pid`.
fn send_signal(pid: u32, signal: &str) -> bool {
    std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .is_ok_and(|status| status.success())
}

/// A process this test stopped: resumed and killed when dropped, whatever the outcome, so
/// that nothing is left behind.
struct StoppedProcess(u32);

impl Drop for StoppedProcess {
    fn drop(&mut self) {
        send_signal(self.0, "-CONT");
        send_signal(self.0, "-KILL");
    }
}

/// A lock holder that is alive but stopped (SIGSTOP: a debugger, a suspended job, a paused
/// VM) keeps its kernel lock for as long as it lives, but no longer renews its heartbeat
/// (the lease file's mtime). Once that is two lease TTLs old (4 s), one waiter takes the
/// lease over and fetches, as a Redis lease would expire: three runs with `--timeout 10`
/// all print the same token, for one request after the stopped holder's. On main all three
/// waited on the lock and exited 5 at their timeout, with no request of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_holder_stopped_with_sigstop_is_taken_over_by_one_waiter() {
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_secs(3600));
    let cache = tempfile::tempdir().unwrap();
    let holder = cli(&mock, cache.path(), "token").spawn().unwrap();
    let stopped = StoppedProcess(holder.id().expect("a running holder"));
    // It takes the lock before it asks for a token: its request arriving means it holds it.
    until(|| mock.request_count() == 1).await;
    assert!(send_signal(stopped.0, "-STOP"), "the holder stopped");
    mock.clear_faults();

    let runs: Vec<_> = (0..3)
        .map(|_| {
            cli(&mock, cache.path(), "token")
                .args(["--timeout", "10"])
                .output()
        })
        .collect();
    let outputs = futures_util::future::join_all(runs).await;
    let tokens: HashSet<String> = outputs
        .iter()
        .map(|output| token_of(output.as_ref().unwrap()))
        .collect();
    assert_eq!(tokens.len(), 1, "every run printed the same token");
    assert_eq!(
        mock.request_count(),
        2,
        "the stopped holder's request, then one for the three runs"
    );
    let again = cli(&mock, cache.path(), "token").output().await.unwrap();
    assert!(
        tokens.contains(&token_of(&again)),
        "the next run reads the record"
    );
    assert_eq!(mock.request_count(), 2);
    drop(stopped);
    drop(holder);
}

/// The lease file's path of a record's.
fn lease_of(record: &Path) -> PathBuf {
    let mut name = record.as_os_str().to_owned();
    name.push(":lease");
    PathBuf::from(name)
}

/// What a test puts where a file of the store should be.
#[derive(Clone, Copy, Debug)]
enum Odd {
    Symlink,
    Fifo,
    Directory,
}

/// Puts `odd` at `path`; a link points at `target`.
fn put_odd(odd: Odd, path: &Path, target: &Path) {
    match odd {
        Odd::Symlink => std::os::unix::fs::symlink(target, path).unwrap(),
        Odd::Fifo => {
            let made = std::process::Command::new("mkfifo").arg(path).status();
            assert!(made.unwrap().success(), "mkfifo");
        }
        Odd::Directory => fs::create_dir(path).unwrap(),
    }
}

/// A symbolic link, a FIFO or an empty directory where a record, a lease or the directory
/// lock should be is removed (a link never followed) and replaced by a regular file, with a
/// warning saying what was found: three runs make one request between them, the file at
/// that name is regular again, and the link's target is untouched. On main each of the
/// three runs warned "a read-only or full disk, or no permission?" and fetched (3 requests),
/// and the cache never came back (a FIFO or a link at a record's name was a plain miss, then
/// replaced: those two passed).
#[tokio::test]
async fn a_link_fifo_or_directory_at_one_of_our_names_is_replaced_with_a_warning() {
    let mock = MockServer::start().await.unwrap();
    let mut failures = Vec::new();
    for place in ["record", "lease", ".lock"] {
        for odd in [Odd::Symlink, Odd::Fifo, Odd::Directory] {
            let cache = tempfile::tempdir().unwrap();
            let outside = cache.path().join("outside.txt");
            fs::write(&outside, b"outside").unwrap();
            token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
            let dir = store_dir(cache.path());
            let record = the_record(&dir);
            let path = match place {
                "record" => record.clone(),
                "lease" => lease_of(&record),
                _ => dir.join(".lock"),
            };
            let _ = fs::remove_file(&path);
            if place != "record" {
                // A cold cache, so that the runs need the lease and the directory lock.
                fs::remove_file(&record).unwrap();
            }
            put_odd(odd, &path, &outside);
            let before = mock.request_count();
            let mut stderr = String::new();
            for _ in 0..3 {
                let run = cli(&mock, cache.path(), "token").output().await.unwrap();
                token_of(&run);
                stderr.push_str(&stderr_of(&run));
            }
            let requests = mock.request_count() - before;
            let regular = fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_file());
            let said = match odd {
                Odd::Symlink => "symbolic link",
                Odd::Fifo => "FIFO",
                Odd::Directory => "directory",
            };
            let label = format!("{odd:?} at {place}");
            if requests != 1 {
                failures.push(format!("{label}: {requests} requests for 3 runs"));
            }
            if place != "record" && !regular {
                failures.push(format!("{label}: not replaced by a regular file"));
            }
            if stderr.contains("read-only") {
                failures.push(format!("{label}: guessed a read-only disk: {stderr}"));
            }
            if fs::read(&outside).unwrap() != b"outside" {
                failures.push(format!("{label}: the link's target was written"));
            }
            let repaired = !matches!((odd, place), (Odd::Symlink | Odd::Fifo, "record"));
            if repaired && !stderr.contains(said) {
                failures.push(format!("{label}: the warning does not say what: {stderr}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A directory with files in it at the lease's name is never emptied: every run still gets
/// a token (a direct fetch), and the warning names the directory and says what to do
/// instead of guessing at the disk.
#[tokio::test]
async fn a_directory_with_files_at_the_lease_name_is_left_and_named() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    let dir = store_dir(cache.path());
    let record = the_record(&dir);
    let lease = lease_of(&record);
    fs::remove_file(&record).unwrap();
    let _ = fs::remove_file(&lease);
    fs::create_dir(&lease).unwrap();
    fs::write(lease.join("notes.txt"), b"mine").unwrap();
    let run = cli(&mock, cache.path(), "token").output().await.unwrap();
    token_of(&run);
    let stderr = stderr_of(&run);
    assert!(stderr.contains(&*lease.to_string_lossy()), "{stderr}");
    assert!(stderr.contains("move it"), "{stderr}");
    assert!(!stderr.contains("read-only"), "{stderr}");
    assert_eq!(fs::read(lease.join("notes.txt")).unwrap(), b"mine");
}

/// A warm run (the token read from the file cache before any runtime or HTTP client
/// exists) prints what a cold run printed, in every form and for every flow, and asks the
/// upstream nothing.
#[tokio::test]
async fn a_warm_run_prints_what_the_cold_run_printed_in_every_form() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    for (subcommand, extra) in [
        ("token", &[][..]),
        ("partner-token", &[][..]),
        ("legacy-token", &["--resource", "recurring"][..]),
    ] {
        let run = |form: &str| {
            let mut command = cli(&mock, cache.path(), subcommand);
            command.args(extra).args(["--output", form]);
            command
        };
        let before = mock.request_count();
        let cold = token_of(&run("json").output().await.unwrap());
        let warm = token_of(&run("json").output().await.unwrap());
        let (cold, warm): (Value, Value) = (
            serde_json::from_str(&cold).unwrap(),
            serde_json::from_str(&warm).unwrap(),
        );
        let secret = cold["access_token"].as_str().expect("a token").to_owned();
        assert_eq!(warm["access_token"], cold["access_token"], "{subcommand}");
        let fields = |json: &Value| {
            json.as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(&warm), fields(&cold), "{subcommand}");
        assert_eq!(
            token_of(&run("header").output().await.unwrap()),
            format!("Authorization: Bearer {secret}")
        );
        assert_eq!(token_of(&run("token").output().await.unwrap()), secret);
        assert_eq!(
            mock.request_count(),
            before + 1,
            "{subcommand}: one fetch, then warm"
        );
    }
}

/// The warm read asks of a stored token what the provider asks: more than its margin of
/// life left. Tokens that live less than the margin are fetched by every run.
#[tokio::test]
async fn a_warm_run_never_serves_a_token_within_the_margin() {
    let mock = MockServer::builder()
        .token_lifetime(Duration::from_secs(20))
        .start()
        .await
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let first = token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    let second = token_of(&cli(&mock, cache.path(), "token").output().await.unwrap());
    assert_ne!(first, second);
    assert_eq!(
        mock.request_count(),
        2,
        "a 20 s token is inside the 30 s margin"
    );
}

/// Keys read from stdin (`--client-secret-stdin`, `--subscription-key-stdin`) are read
/// once: the warm read must not consume the lines the command then needs. Every token
/// command, on a cold cache, on a warm one and with `--no-cache`.
#[tokio::test]
async fn keys_from_stdin_work_on_a_cold_cache_a_warm_one_and_without_one() {
    use tokio::io::AsyncWriteExt as _;
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (subcommand, extra, stdin) in [
        (
            "token",
            &["--client-secret-stdin", "--subscription-key-stdin"][..],
            format!("{CLIENT_SECRET}\n{SUBSCRIPTION_KEY}\n"),
        ),
        (
            "legacy-token",
            &[
                "--resource",
                "recurring",
                "--client-secret-stdin",
                "--subscription-key-stdin",
            ][..],
            format!("{CLIENT_SECRET}\n{SUBSCRIPTION_KEY}\n"),
        ),
        (
            "partner-token",
            &["--client-secret-stdin"][..],
            format!("{CLIENT_SECRET}\n"),
        ),
    ] {
        for (run, cache_flag) in [
            ("cold", None),
            ("warm", None),
            ("no-cache", Some("--no-cache")),
        ] {
            let mut command = cli(&mock, cache.path(), subcommand);
            command
                .env_remove("VIPPS_CLIENT_SECRET")
                .env_remove("VIPPS_PARTNER_CLIENT_SECRET")
                .env_remove("VIPPS_SUBSCRIPTION_KEY")
                .args(extra)
                .args(cache_flag)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = command.spawn().unwrap();
            let mut input = child.stdin.take().unwrap();
            // The binary may exit without reading stdin.
            let _ = input.write_all(stdin.as_bytes()).await;
            drop(input);
            let output = child.wait_with_output().await.unwrap();
            if output.status.code() != Some(0) {
                failures.push(format!(
                    "{subcommand} {run}: exit {:?}: {}",
                    output.status.code(),
                    stderr_of(&output).trim_end()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A run refused for its input before anything is asked (a malformed MSN, a plain-http
/// base URL to another machine, a base URL that is no URL) leaves the disk as it was: no
/// cache directory created, at the default place or at `--store file:DIR`.
#[tokio::test]
async fn a_run_refused_for_its_input_creates_no_cache_directory() {
    let mock = MockServer::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let elsewhere = cache.path().join("elsewhere");
    let store = format!("file:{}", elsewhere.display());
    let mut failures = Vec::new();
    let base_url = mock.base_url();
    for (what, args) in [
        (
            "a malformed MSN",
            &["--base-url", base_url, "--msn", "12"][..],
        ),
        (
            "a malformed MSN, --store file:DIR",
            &["--base-url", base_url, "--msn", "12", "--store", &store][..],
        ),
        (
            "plain http elsewhere",
            &["--base-url", "http://example.com"][..],
        ),
        ("no URL", &["--base-url", "not a url"][..]),
        ("a query", &["--base-url", "https://example.com/?x=1"][..]),
    ] {
        let output = tokio::process::Command::new(BIN)
            .env_clear()
            .env("XDG_CACHE_HOME", cache.path())
            .env("VIPPS_CLIENT_ID", CLIENT_ID)
            .env("VIPPS_CLIENT_SECRET", CLIENT_SECRET)
            .env("VIPPS_SUBSCRIPTION_KEY", SUBSCRIPTION_KEY)
            .arg("token")
            .args(args)
            .output()
            .await
            .unwrap();
        if output.status.code() != Some(2) {
            failures.push(format!("{what}: exit {:?}", output.status.code()));
        }
        for dir in [store_dir(cache.path()), elsewhere.clone()] {
            if dir.exists() {
                failures.push(format!("{what}: created {}", dir.display()));
                let _ = fs::remove_dir_all(&dir);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(mock.request_count(), 0);
}
