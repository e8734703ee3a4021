//! A holder's failure is the fleet's: while one process's fetch for a token fails, the
//! processes waiting for it (and any that look while its failure marker lives) return that
//! failure instead of fetching again, on Redis and on the file store. Providers with
//! separate caches and separate store handles stand for separate processes; upstream
//! requests are counted by the embedded mock.
//! Without `redis-server` on PATH the Redis test says it is skipped and passes, unless
//! `VIPPS_REQUIRE_REDIS=1`.
#![cfg(all(feature = "store", feature = "mock"))]

#[cfg(feature = "redis")]
#[path = "support/redis_server.rs"]
mod redis_server;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use vipps_access_token::{
    Error, TokenProvider, TokenSource,
    mock::MockServer,
    store::{FileTokenStore, SealingKeys, StoreConfig, TokenStore},
};

/// How many processes ask at once.
const PROCESSES: usize = 6;
/// One fetch with the default retry policy: three attempts.
const ONE_FETCH: u64 = 3;

fn config() -> StoreConfig {
    let mut config = StoreConfig::new(SealingKeys::new([7; 32], None));
    // Generous for a loaded CI machine.
    config.operation_timeout = std::time::Duration::from_secs(2);
    config
}

/// A provider with a cache of its own and the default retry policy, as a process has.
fn process(mock: &MockServer, store: Arc<dyn TokenStore>) -> TokenProvider {
    TokenProvider::builder(
        mock.client_builder().build().expect("a client"),
        TokenSource::Standard(mock.standard_credentials()),
    )
    .store(store)
    .build()
}

/// Six processes ask at once while the upstream answers 503, then a seventh asks: one
/// fetch in all, and every one of them gets an error that says 503.
async fn one_fetch_for_the_fleet_and_every_process_gets_its_503(
    store: impl Fn() -> Arc<dyn TokenStore>,
) {
    let mock = MockServer::start().await.unwrap();
    mock.fail_all(503, r#"{"error":"temporarily_unavailable"}"#);
    let callers: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let provider = process(&mock, store());
            tokio::spawn(async move { provider.token().await })
        })
        .collect();
    for caller in callers {
        let error = caller.await.unwrap().expect_err("the upstream fails");
        says_503(&error);
    }
    assert_eq!(
        mock.request_count(),
        ONE_FETCH,
        "one fetch (with its retries) for the fleet"
    );
    // A process that looks while the marker lives gets the same failure, without a fetch.
    let late = process(&mock, store()).token().await;
    says_503(&late.expect_err("the failure is shared for the marker's life"));
    assert_eq!(mock.request_count(), ONE_FETCH, "the late process fetched");
}

fn says_503(error: &Error) {
    assert_eq!(error.status(), Some(503), "{error}");
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("503"), "{error}");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_processes_facing_a_503_on_redis_make_one_fetch_and_share_its_error() {
    use vipps_access_token::store::RedisTokenStore;
    let Some(server) = redis_server::RedisServer::start(
        "six_processes_facing_a_503_on_redis_make_one_fetch_and_share_its_error",
    ) else {
        return;
    };
    let url = server.url();
    one_fetch_for_the_fleet_and_every_process_gets_its_503(|| {
        Arc::new(RedisTokenStore::new(&url, config()).expect("a redis URL"))
    })
    .await;
    // The marker at rest is sealed: nothing of the error is readable in Redis.
    let markers = server.cli(&["--scan", "--pattern", "*:failed"]);
    let marker = markers.lines().next().expect("a failure marker");
    let raw = server.cli(&["GET", marker]);
    assert!(!raw.is_empty());
    for readable in ["503", "temporarily_unavailable", "Service Unavailable"] {
        assert!(!raw.contains(readable), "{readable} at rest: {raw}");
    }
}

/// Rejected credentials are shared as such (no retry helps), and the error the waiters
/// rebuild from the marker holds no secret even when the upstream echoed them.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_are_shared_as_rejected_and_without_secrets() {
    use vipps_access_token::{
        FailureKind,
        mock::{DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY},
        store::RedisTokenStore,
    };
    let Some(server) = redis_server::RedisServer::start(
        "rejected_credentials_are_shared_as_rejected_and_without_secrets",
    ) else {
        return;
    };
    let mock = MockServer::start().await.unwrap();
    mock.fail_all(
        401,
        format!(
            r#"{{"error":"invalid_client","error_description":"bad secret {DEFAULT_CLIENT_SECRET} for key {DEFAULT_SUBSCRIPTION_KEY}"}}"#
        ),
    );
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::new(RedisTokenStore::new(&server.url(), config()).unwrap());
            let provider = process(&mock, store);
            tokio::spawn(async move { provider.token().await })
        })
        .collect();
    let mut shared = 0;
    for caller in callers {
        let error = caller
            .await
            .unwrap()
            .expect_err("the credentials are rejected");
        assert!(error.is_credentials_rejected(), "{error}");
        assert_eq!(error.status(), Some(401), "{error}");
        if let Error::Shared(from_marker) = &error {
            assert_eq!(from_marker.kind, FailureKind::CredentialsRejected);
            shared += 1;
        }
        for secret in [DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY] {
            assert!(!error.to_string().contains(secret), "{error}");
            assert!(!format!("{error:?}").contains(secret), "{error:?}");
        }
    }
    assert_eq!(shared, 2, "the two waiters returned the holder's failure");
    assert_eq!(
        mock.request_count(),
        1,
        "a 401 is not retried, nor asked again"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_processes_facing_a_503_on_the_file_store_make_one_fetch_and_share_its_error() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_owned();
    one_fetch_for_the_fleet_and_every_process_gets_its_503(|| {
        Arc::new(FileTokenStore::new(&dir, config()).expect("a cache directory"))
    })
    .await;
}

/// What a store holds at `key`, put back to live an hour (a key set by hand, or by a build
/// whose marker lived longer).
async fn keep_for_an_hour(store: &Arc<dyn TokenStore>, key: &str, value: Vec<u8>) {
    store
        .put(key, value, Duration::from_secs(3600))
        .await
        .expect("the store takes a write");
}

/// Removes the token's record, so that the next process must fetch (or obey a marker).
async fn forget_record(store: &Arc<dyn TokenStore>, record: &str) {
    if let Some(sealed) = store.get(record).await.expect("the store answers") {
        store.delete_if_equal(record, &sealed).await.unwrap();
    }
}

/// A failure marker is honoured only when this build can read it, and only for this
/// build's marker life (twice the lease) from the time written inside it, whatever life
/// the store keeps the key for: a marker of another format, or one kept for an hour, once
/// stopped every process for that hour without a request.
async fn a_marker_stops_the_fleet_only_while_this_build_honours_it(
    store: impl Fn(StoreConfig) -> Arc<dyn TokenStore>,
    record_name: impl AsyncFn() -> String,
) {
    // A lease of 500 ms: a marker life of 1 s.
    let short_lease = || {
        let mut config = config();
        config.lease_ttl = Duration::from_millis(500);
        store(config)
    };
    let mock = MockServer::start().await.unwrap();
    let admin = short_lease();
    process(&mock, short_lease()).token().await.unwrap();
    assert!(vipps_access_token::store::settle(Duration::from_secs(5)).await);
    let record = record_name().await;
    let marker = format!("{record}:failed");
    for (label, foreign) in [
        ("a bare 1", b"1".to_vec()),
        (
            "an older format's JSON",
            br#"{"v":0,"holder":"h","kind":"unavailable"}"#.to_vec(),
        ),
    ] {
        forget_record(&admin, &record).await;
        keep_for_an_hour(&admin, &marker, foreign).await;
        let before = mock.request_count();
        for run in 0..3 {
            let token = process(&mock, short_lease()).token().await;
            assert!(token.is_ok(), "{label}, process {run}: {token:?}");
            assert!(vipps_access_token::store::settle(Duration::from_secs(5)).await);
        }
        assert_eq!(
            mock.request_count() - before,
            1,
            "{label}: one fetch for three processes, the marker ignored"
        );
        assert_eq!(admin.get(&marker).await.unwrap(), None, "{label}: removed");
    }

    // This build's own marker, kept for an hour: honoured for its life, then ignored.
    forget_record(&admin, &record).await;
    mock.fail_all(503, r#"{"error":"temporarily_unavailable"}"#);
    let failed = process(&mock, short_lease()).token().await;
    says_503(&failed.expect_err("the upstream fails"));
    let written = Instant::now();
    let sealed = admin
        .get(&marker)
        .await
        .unwrap()
        .expect("the holder's marker");
    keep_for_an_hour(&admin, &marker, sealed).await;
    let requests = mock.request_count();
    let shared = process(&mock, short_lease()).token().await;
    // (On a machine so loaded that the marker's 1 s passed already, skip this check.)
    if written.elapsed() < Duration::from_millis(800) {
        says_503(&shared.expect_err("honoured while young"));
        assert_eq!(mock.request_count(), requests, "no request while honoured");
    }
    mock.clear_faults();
    let requests = mock.request_count();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let looked = process(&mock, short_lease()).token().await;
        let Err(error) = looked else { break };
        says_503(&error);
        assert!(
            Instant::now() < deadline,
            "a marker kept for an hour still stops every process after 10 s"
        );
        // Polling for the event (the marker outliving its life), not timing it.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        mock.request_count() - requests,
        1,
        "one fetch once the marker outlived its life"
    );
    assert_eq!(
        admin.get(&marker).await.unwrap(),
        None,
        "the outlived marker removed"
    );
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_failure_marker_stops_the_fleet_only_while_this_build_honours_it() {
    use vipps_access_token::store::RedisTokenStore;
    let Some(server) = redis_server::RedisServer::start(
        "a_redis_failure_marker_stops_the_fleet_only_while_this_build_honours_it",
    ) else {
        return;
    };
    let url = server.url();
    a_marker_stops_the_fleet_only_while_this_build_honours_it(
        |config| Arc::new(RedisTokenStore::new(&url, config).expect("a redis URL")),
        async || {
            let keys = server.cli(&["--scan"]);
            keys.lines()
                .find(|key| !key.ends_with(":lease") && !key.ends_with(":failed"))
                .expect("a record")
                .to_owned()
        },
    )
    .await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_failure_marker_stops_the_fleet_only_while_this_build_honours_it() {
    use vipps_access_token::store::FileEntryKind;
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_owned();
    let open = |config| FileTokenStore::new(&dir, config).expect("a cache directory");
    a_marker_stops_the_fleet_only_while_this_build_honours_it(
        |config| Arc::new(open(config)),
        async || {
            open(config())
                .entries()
                .unwrap()
                .into_iter()
                .find(|entry| entry.kind == FileEntryKind::Token)
                .expect("a record")
                .name
        },
    )
    .await;
}
