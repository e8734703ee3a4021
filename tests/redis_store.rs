//! The Redis token store against a real `redis-server` on loopback (one per test, see
//! `support/redis_server.rs`), with upstream requests counted by the embedded mock: fleet-wide single
//! flight, nothing readable at rest, and every fault degrading to a direct fetch.
//! Without `redis-server` on PATH each test says it is skipped and passes, unless
//! `VIPPS_REQUIRE_REDIS=1`.
#![cfg(all(feature = "redis", feature = "mock"))]

#[path = "support/captured_logs.rs"]
mod captured_logs;
#[path = "support/eventually.rs"]
mod eventually;
#[path = "support/redis_server.rs"]
#[macro_use]
mod redis_server;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use captured_logs::CapturedLogs;
use eventually::until;
use redis::AsyncCommands;
use redis_server::RedisServer;
use vipps_access_token::{
    RetryPolicy, TokenProvider, TokenSource,
    mock::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServer},
    store::{RedisTokenStore, SealingKeys, StoreConfig, TokenStore},
};

const PREFIX: &str = "vipps-access-token:";

fn config(key: u8, previous: Option<u8>) -> StoreConfig {
    let mut config = StoreConfig::new(SealingKeys::new([key; 32], previous.map(|p| [p; 32])));
    // Generous for a loaded CI machine; the slow-store test sets its own.
    config.operation_timeout = Duration::from_secs(2);
    config
}

fn store(server: &RedisServer, config: StoreConfig) -> Arc<dyn TokenStore> {
    Arc::new(RedisTokenStore::new(&server.url(), config).expect("a redis URL"))
}

/// A provider with a cache of its own, as a separate process would have.
fn process(mock: &MockServer, store: &Arc<dyn TokenStore>) -> TokenProvider {
    provider_for(mock, store, None)
}

fn provider_for(
    mock: &MockServer,
    store: &Arc<dyn TokenStore>,
    msn: Option<&str>,
) -> TokenProvider {
    let mut builder = mock.client_builder();
    if let Some(msn) = msn {
        builder = builder.merchant_serial_number(msn);
    }
    TokenProvider::builder(
        builder.build().expect("a client"),
        TokenSource::Standard(mock.standard_credentials()),
    )
    .store(store.clone())
    .build()
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("a redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a raw connection")
}

/// The names of the token records (not leases nor failure markers) in the store, once
/// this process's records saved in the background (after their token was handed out) are
/// written.
async fn record_names(server: &RedisServer) -> Vec<String> {
    saved().await;
    let mut names: Vec<String> = raw(server).await.keys(format!("{PREFIX}*")).await.unwrap();
    names.retain(|name| !name.ends_with(":lease") && !name.ends_with(":failed"));
    names.sort();
    names
}

/// Waits until the records this process saves in the background are written.
async fn saved() {
    assert!(
        vipps_access_token::store::settle(Duration::from_secs(5)).await,
        "background saves never finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_cold_processes_of_fifty_callers_make_one_upstream_request() {
    let server = redis_or_skip!("eight_cold_processes_of_fifty_callers_make_one_upstream_request");
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_millis(100));
    let store = store(&server, config(1, None));
    let mut callers = Vec::new();
    for _ in 0..8 {
        let provider = process(&mock, &store);
        for _ in 0..50 {
            let provider = provider.clone();
            callers.push(tokio::spawn(async move { provider.token().await }));
        }
    }
    let mut secrets = std::collections::HashSet::new();
    for caller in callers {
        let token = caller.await.unwrap().expect("a token");
        secrets.insert(token.secret().expose_secret().to_owned());
    }
    assert_eq!(
        mock.request_count(),
        1,
        "one upstream request for the fleet"
    );
    assert_eq!(secrets.len(), 1, "every caller holds the same token");
}

#[tokio::test]
async fn a_fresh_process_takes_the_stored_token_and_nothing_is_readable_at_rest() {
    let server =
        redis_or_skip!("a_fresh_process_takes_the_stored_token_and_nothing_is_readable_at_rest");
    let mock = MockServer::start().await.unwrap();
    let store = store(&server, config(1, None));
    let first = process(&mock, &store).token().await.unwrap();
    let second = process(&mock, &store).token().await.unwrap();
    assert_eq!(mock.request_count(), 1);
    assert_eq!(first.secret(), second.secret());
    // The rebuilt token carries this process's headers, and the same expiry.
    assert_eq!(
        second.headers().get("ocp-apim-subscription-key"),
        first.headers().get("ocp-apim-subscription-key")
    );
    let drift = first
        .expires_at()
        .duration_since(second.expires_at())
        .unwrap_or_else(|e| e.duration());
    assert!(drift < Duration::from_millis(5), "{drift:?}");

    let names = record_names(&server).await;
    assert_eq!(names.len(), 1, "{names:?}");
    let mut connection = raw(&server).await;
    let record: Vec<u8> = connection.get(&names[0]).await.unwrap();
    let ttl: i64 = connection.pttl(&names[0]).await.unwrap();
    assert!(
        ttl > 3_500_000 && ttl <= 3_600_000,
        "expires with the token: {ttl} ms"
    );
    let jwt = first.secret().expose_secret();
    let payload = jwt.split('.').nth(1).unwrap();
    for secret in [
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_SUBSCRIPTION_KEY,
        jwt,
        payload,
        "Bearer",
    ] {
        assert!(!names[0].contains(secret));
        assert!(
            !record.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} at rest"
        );
    }
}

#[tokio::test]
async fn auth_comes_from_the_url_and_a_wrong_password_is_a_miss() {
    let Some(server) = RedisServer::start_with(
        "auth_comes_from_the_url_and_a_wrong_password_is_a_miss",
        &["--requirepass", "example-password"],
    ) else {
        return;
    };
    let mock = MockServer::start().await.unwrap();
    let url = |password: &str| format!("redis://:{password}@127.0.0.1:{}", server.port());
    let good: Arc<dyn TokenStore> =
        Arc::new(RedisTokenStore::new(&url("example-password"), config(1, None)).unwrap());
    let wrong: Arc<dyn TokenStore> =
        Arc::new(RedisTokenStore::new(&url("wrong-password"), config(1, None)).unwrap());
    assert!(
        !format!("{good:?}").contains("example-password"),
        "{good:?}"
    );
    process(&mock, &good).token().await.unwrap();
    process(&mock, &good).token().await.unwrap();
    assert_eq!(
        mock.request_count(),
        1,
        "authenticated: the second process took the record"
    );
    let (logs, _guard) = CapturedLogs::start();
    process(&mock, &wrong).token().await.unwrap();
    assert_eq!(
        mock.request_count(),
        2,
        "refused AUTH is a miss and a direct fetch"
    );
    assert!(!logs.text().contains("wrong-password"), "{}", logs.text());
}

#[tokio::test]
async fn redis_down_is_a_miss_and_the_token_is_fetched_directly() {
    let mut server = redis_or_skip!("redis_down_is_a_miss_and_the_token_is_fetched_directly");
    let mock = MockServer::start().await.unwrap();
    let store = store(&server, config(1, None));
    server.kill();
    let (logs, _guard) = CapturedLogs::start();
    let token = process(&mock, &store).token().await;
    assert!(token.is_ok(), "{token:?}");
    assert_eq!(mock.request_count(), 1);
    let text = logs.text();
    assert!(text.contains("vipps token store bypassed"), "{text}");
    assert!(!text.contains(DEFAULT_CLIENT_SECRET) && !text.contains(DEFAULT_SUBSCRIPTION_KEY));
}

#[tokio::test]
async fn redis_killed_mid_fetch_still_hands_out_the_fetched_token() {
    let mut server = redis_or_skip!("redis_killed_mid_fetch_still_hands_out_the_fetched_token");
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_millis(300));
    let store = store(&server, config(1, None));
    let provider = process(&mock, &store);
    let fetching = tokio::spawn(async move { provider.token().await });
    until(async || mock.request_count() == 1).await;
    server.kill();
    let token = fetching.await.unwrap();
    assert!(token.is_ok(), "{token:?}");
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_restarted_redis_is_used_again_by_the_same_store() {
    let mut server = redis_or_skip!("a_restarted_redis_is_used_again_by_the_same_store");
    let mock = MockServer::start().await.unwrap();
    let store = store(&server, config(1, None));
    process(&mock, &store).token().await.unwrap();
    // Its record is saved after the token is handed out: let that land before the restart,
    // or it could land after the next save and the test would read the older token.
    assert!(vipps_access_token::store::settle(Duration::from_secs(5)).await);
    server.restart(); // empty: no persistence
    // The first command after the restart may find the old connection broken (a miss,
    // fetched directly); the connection manager reconnects by itself.
    let mut refetched = process(&mock, &store).token().await.unwrap();
    if record_names(&server).await.is_empty() {
        refetched = process(&mock, &store).token().await.unwrap();
    }
    assert_eq!(
        record_names(&server).await.len(),
        1,
        "saved again after one miss at most"
    );
    let requests = mock.request_count();
    assert!(requests <= 3, "{requests}");
    let taken = process(&mock, &store).token().await.unwrap();
    assert_eq!(
        mock.request_count(),
        requests,
        "the record saved after the restart is served"
    );
    assert_eq!(refetched.secret(), taken.secret());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_times_out_and_the_token_is_fetched_directly() {
    let server = redis_or_skip!("a_slow_redis_times_out_and_the_token_is_fetched_directly");
    let mock = MockServer::start().await.unwrap();
    let mut fast = config(1, None);
    fast.operation_timeout = Duration::from_millis(100);
    let store = store(&server, fast);
    // Connect first, so that the sleep below slows commands, not the connection.
    process(&mock, &store).token().await.unwrap();
    let mut connection = raw(&server).await;
    let sleeping = tokio::spawn(async move {
        let _: redis::RedisResult<()> = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(3)
            .query_async(&mut connection)
            .await;
    });
    until(async || {
        // Ask the store directly: it stops answering once the server sleeps.
        tokio::time::timeout(Duration::from_millis(50), raw(&server))
            .await
            .is_err()
    })
    .await;
    let started = Instant::now();
    let token = process(&mock, &store).token().await;
    let elapsed = started.elapsed();
    assert!(token.is_ok(), "{token:?}");
    assert_eq!(
        mock.request_count(),
        2,
        "fetched directly, past the sleeping store"
    );
    assert!(
        elapsed < Duration::from_millis(2500),
        "waited for the store: {elapsed:?}"
    );
    sleeping.await.unwrap();
}

#[tokio::test]
async fn a_corrupted_record_is_a_miss_and_is_replaced() {
    let server = redis_or_skip!("a_corrupted_record_is_a_miss_and_is_replaced");
    let mock = MockServer::start().await.unwrap();
    let store = store(&server, config(1, None));
    let original = process(&mock, &store).token().await.unwrap();
    let name = record_names(&server).await.remove(0);
    let mut connection = raw(&server).await;
    let mut record: Vec<u8> = connection.get(&name).await.unwrap();
    let middle = record.len() / 2;
    record[middle] ^= 0x40;
    let _: () = connection.set(&name, record).await.unwrap();

    let (logs, _guard) = CapturedLogs::start();
    let replacement = process(&mock, &store).token().await.unwrap();
    assert_eq!(mock.request_count(), 2);
    assert_ne!(original.secret(), replacement.secret());
    assert!(logs.text().contains("corrupt"), "{}", logs.text());
    let taken = process(&mock, &store).token().await.unwrap();
    assert_eq!(mock.request_count(), 2, "the store healed");
    assert_eq!(taken.secret(), replacement.secret());
}

#[tokio::test]
async fn a_record_sealed_under_another_key_is_not_served() {
    let server = redis_or_skip!("a_record_sealed_under_another_key_is_not_served");
    let mock = MockServer::start().await.unwrap();
    let ours = store(&server, config(1, None));
    let theirs = store(&server, config(2, None));
    let our_token = process(&mock, &ours).token().await.unwrap();
    let our_name = record_names(&server).await.remove(0);
    process(&mock, &theirs).token().await.unwrap();
    let their_name = record_names(&server)
        .await
        .into_iter()
        .find(|n| *n != our_name)
        .unwrap();
    let mut connection = raw(&server).await;
    let foreign: Vec<u8> = connection.get(&their_name).await.unwrap();
    let _: () = connection.set(&our_name, foreign).await.unwrap();

    let (logs, _guard) = CapturedLogs::start();
    let token = process(&mock, &ours).token().await.unwrap();
    assert_eq!(mock.request_count(), 3, "the foreign record was a miss");
    assert_ne!(token.secret(), our_token.secret());
    assert!(logs.text().contains("foreign"), "{}", logs.text());
}

#[tokio::test]
async fn a_record_moved_under_another_name_does_not_open() {
    let server = redis_or_skip!("a_record_moved_under_another_name_does_not_open");
    let mock = MockServer::start().await.unwrap();
    let store = store(&server, config(1, None));
    let merchant_token = provider_for(&mock, &store, Some("123456"))
        .token()
        .await
        .unwrap();
    let merchant_name = record_names(&server).await.remove(0);
    process(&mock, &store).token().await.unwrap();
    let plain_name = record_names(&server)
        .await
        .into_iter()
        .find(|n| *n != merchant_name)
        .unwrap();
    let mut connection = raw(&server).await;
    let moved: Vec<u8> = connection.get(&merchant_name).await.unwrap();
    let _: () = connection.set(&plain_name, moved).await.unwrap();

    let token = process(&mock, &store).token().await.unwrap();
    assert_eq!(
        mock.request_count(),
        3,
        "the associated data refused the moved record"
    );
    assert_ne!(token.secret(), merchant_token.secret());
}

#[test]
fn a_lease_holder_killed_mid_fetch_is_replaced_by_exactly_one_process() {
    let server =
        redis_or_skip!("a_lease_holder_killed_mid_fetch_is_replaced_by_exactly_one_process");
    let short = || {
        let mut short = config(1, None);
        short.lease_ttl = Duration::from_millis(400);
        short
    };
    let store = store(&server, short());
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mock = main.block_on(MockServer::start()).unwrap();
    mock.set_delay(Duration::from_secs(30));

    // The holder: its own runtime (a process), dropped mid-fetch with the lease held.
    let holder = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // A store of its own too: a store's connection lives on the runtime that made it.
    let holder_provider = process(&mock, &self::store(&server, short()));
    let holder_fetch = holder.spawn(async move { holder_provider.token().await });
    main.block_on(until(async || mock.request_count() == 1));
    drop(holder_fetch);
    holder.shutdown_background();
    mock.clear_faults();
    mock.set_delay(Duration::ZERO);

    let started = Instant::now();
    let tokens = main.block_on(async {
        let mut callers = Vec::new();
        for _ in 0..4 {
            let provider = process(&mock, &store);
            for _ in 0..10 {
                let provider = provider.clone();
                callers.push(tokio::spawn(async move { provider.token().await }));
            }
        }
        let mut secrets = std::collections::HashSet::new();
        for caller in callers {
            secrets.insert(
                caller
                    .await
                    .unwrap()
                    .unwrap()
                    .secret()
                    .expose_secret()
                    .to_owned(),
            );
        }
        secrets
    });
    assert_eq!(mock.request_count(), 2, "exactly one more upstream request");
    assert_eq!(tokens.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// A fetch dropped with its runtime (a serverless instance frozen, a test's runtime
/// ending) could not give its lease back. The same process's next call must not wait that
/// lease out: it knows the holder is its own dead fetch and takes the lease over at once.
#[test]
fn a_process_does_not_wait_for_the_lease_of_its_own_dropped_fetch() {
    let server = redis_or_skip!("a_process_does_not_wait_for_the_lease_of_its_own_dropped_fetch");
    let long = || {
        let mut long = config(1, None);
        long.lease_ttl = Duration::from_secs(6);
        long
    };
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mock = main.block_on(MockServer::start()).unwrap();
    mock.set_delay(Duration::from_secs(30));
    let dropped = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dropped_provider = process(&mock, &store(&server, long()));
    let fetching = dropped.spawn(async move { dropped_provider.token().await });
    main.block_on(until(async || mock.request_count() == 1));
    drop(fetching);
    dropped.shutdown_background();
    mock.clear_faults();
    let leases: Vec<String> = main.block_on(async {
        raw(&server)
            .await
            .keys(format!("{PREFIX}*:lease"))
            .await
            .unwrap()
    });
    assert_eq!(
        leases.len(),
        1,
        "the dropped fetch's lease is still there: {leases:?}"
    );

    let store = store(&server, long());
    let started = Instant::now();
    let token = main.block_on(process(&mock, &store).token());
    let waited = started.elapsed();
    assert!(token.is_ok(), "{token:?}");
    assert_eq!(mock.request_count(), 2);
    assert!(
        waited < Duration::from_secs(2),
        "waited {waited:?} for its own dead fetch's lease"
    );
}

/// Four processes ask while the upstream fails slowly (503 after 1 s). The holder's failure
/// is shared at once through the failure marker: the waiters return its error, instead of
/// taking the lease one after another (1 s, 2 s, 3 s, 4 s) or each fetching again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_learn_that_the_holder_failed_instead_of_queueing_behind_leases() {
    let server =
        redis_or_skip!("waiters_learn_that_the_holder_failed_instead_of_queueing_behind_leases");
    let mock = MockServer::start().await.unwrap();
    mock.fail_all(503, r#"{"error":"temporarily_unavailable"}"#);
    mock.set_delay(Duration::from_secs(1));
    let store = store(&server, config(1, None));
    let started = Instant::now();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let provider = TokenProvider::builder(
                mock.client_builder()
                    .retry_policy(RetryPolicy::none())
                    .build()
                    .unwrap(),
                TokenSource::Standard(mock.standard_credentials()),
            )
            .store(store.clone())
            .build();
            tokio::spawn(async move { provider.token().await })
        })
        .collect();
    for caller in callers {
        let error = caller.await.unwrap().expect_err("the upstream fails");
        assert_eq!(error.status(), Some(503), "{error}");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(3000),
        "the errors queued behind one lease after another: {elapsed:?}"
    );
    assert_eq!(mock.request_count(), 1, "one fetch for the fleet");
}

/// A number from Redis's `INFO` text (`name:value` lines).
async fn info_number(
    connection: &mut redis::aio::MultiplexedConnection,
    section: &str,
    name: &str,
) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(connection)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in INFO {section}: {info}"))
}

/// The scripts the store ran since the last `CONFIG RESETSTAT`, each one round trip.
/// (Redis counts a script's own `GET` and `SET` as commands too, so plain commands cannot
/// be told from them; the paths measured here send none.)
async fn store_round_trips(connection: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(connection)
        .await
        .unwrap();
    info.lines()
        .filter(|line| {
            ["cmdstat_evalsha:", "cmdstat_eval:", "cmdstat_script|load:"]
                .iter()
                .any(|name| line.starts_with(name))
        })
        .filter_map(|line| {
            line.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// A cold miss costs two round trips (read-or-lease, then save-and-release) and a warm
/// hit one, each a script; before, a cold miss made five sequential commands.
#[tokio::test]
async fn a_cold_miss_is_two_round_trips_and_a_warm_hit_one() {
    let server = redis_or_skip!("a_cold_miss_is_two_round_trips_and_a_warm_hit_one");
    let mock = MockServer::start().await.unwrap();
    let store = store(&server, config(1, None));
    // Connected, and the scripts loaded (a restarted Redis loads them again on NOSCRIPT).
    process(&mock, &store).token().await.unwrap();
    saved().await;
    let mut counting = raw(&server).await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut counting)
        .await
        .unwrap();

    provider_for(&mock, &store, Some("123456"))
        .token()
        .await
        .unwrap();
    saved().await;
    assert_eq!(store_round_trips(&mut counting).await, 2, "a cold miss");
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut counting)
        .await
        .unwrap();
    provider_for(&mock, &store, Some("123456"))
        .token()
        .await
        .unwrap();
    assert_eq!(store_round_trips(&mut counting).await, 1, "a warm hit");
    assert_eq!(mock.request_count(), 2);
}

/// An error reply (here OOM: Redis full, nothing evictable) is an answer, not a broken
/// connection: the token is fetched directly, and the store does not reconnect.
#[tokio::test]
async fn an_error_reply_is_a_miss_not_a_reconnect() {
    let server = redis_or_skip!("an_error_reply_is_a_miss_not_a_reconnect");
    let mock = MockServer::start().await.unwrap();
    let store = store(&server, config(1, None));
    process(&mock, &store).token().await.unwrap();
    saved().await;
    let mut admin = raw(&server).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query_async(&mut admin)
        .await
        .unwrap();
    let connections = info_number(&mut admin, "stats", "total_connections_received").await;

    let (logs, _guard) = CapturedLogs::start();
    let token = provider_for(&mock, &store, Some("123456")).token().await;
    assert!(token.is_ok(), "{token:?}");
    assert_eq!(mock.request_count(), 2, "fetched directly");
    assert!(logs.text().contains("OOM"), "{}", logs.text());
    assert_eq!(
        info_number(&mut admin, "stats", "total_connections_received").await,
        connections,
        "the store reconnected after an error reply"
    );
}

#[tokio::test]
async fn a_rotated_key_reads_the_old_records_and_writes_new_ones() {
    let server = redis_or_skip!("a_rotated_key_reads_the_old_records_and_writes_new_ones");
    let mock = MockServer::start().await.unwrap();
    let old = store(&server, config(1, None));
    let rotated = store(&server, config(2, Some(1)));
    let new_only = store(&server, config(2, None));
    let old_token = process(&mock, &old).token().await.unwrap();
    // The record is saved after the token is handed out; the rotated key's lease is
    // another name, so wait for the save rather than for a lease.
    assert!(vipps_access_token::store::settle(Duration::from_secs(5)).await);
    let read = process(&mock, &rotated).token().await.unwrap();
    assert_eq!(mock.request_count(), 1, "the previous key still reads");
    assert_eq!(read.secret(), old_token.secret());

    let new_token = process(&mock, &new_only).token().await.unwrap();
    assert_eq!(
        mock.request_count(),
        2,
        "a process with the new key alone writes its own record"
    );
    assert_eq!(record_names(&server).await.len(), 2);
    let preferred = process(&mock, &rotated).token().await.unwrap();
    assert_eq!(
        preferred.secret(),
        new_token.secret(),
        "the current key's record comes first"
    );
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn a_refused_token_is_removed_from_the_store_but_a_newer_one_stays() {
    let server = redis_or_skip!("a_refused_token_is_removed_from_the_store_but_a_newer_one_stays");
    let mock = MockServer::start().await.unwrap();
    let store = store(&server, config(1, None));
    let first = process(&mock, &store);
    let refused = first.token().await.unwrap();
    saved().await;
    first.invalidate_token(&refused);
    until(async || record_names(&server).await.is_empty()).await;

    let other = process(&mock, &store);
    let fresh = other.token().await.unwrap();
    assert_eq!(mock.request_count(), 2);
    assert_ne!(fresh.secret(), refused.secret());
    // A process still holding the old token refuses it: the newer record stays.
    let stale = process(&mock, &store);
    let taken = stale.token().await.unwrap();
    assert_eq!(taken.secret(), fresh.secret());
    let late = process(&mock, &store);
    let late_refused = Arc::new((*refused).clone());
    late.invalidate_token(&late_refused);
    tokio::task::yield_now().await;
    assert_eq!(
        record_names(&server).await.len(),
        1,
        "compare-and-delete kept the newer token"
    );
}

#[tokio::test]
async fn a_refresh_ahead_takes_a_record_another_process_already_refreshed() {
    let server = redis_or_skip!("a_refresh_ahead_takes_a_record_another_process_already_refreshed");
    let mock = MockServer::start().await.unwrap();
    let store = store(&server, config(1, None));
    let a = process(&mock, &store);
    let b = process(&mock, &store);
    let held = a.token().await.unwrap();
    assert_eq!(b.token().await.unwrap().secret(), held.secret());
    // A refreshes for the fleet: the record is not newer than what A holds, so it fetches.
    let refreshed = a.refresh().await.unwrap();
    assert_eq!(mock.request_count(), 2);
    assert_ne!(refreshed.secret(), held.secret());
    // B's refresh finds the newer record and takes it instead of fetching.
    let taken = b.refresh().await.unwrap();
    assert_eq!(mock.request_count(), 2);
    assert_eq!(taken.secret(), refreshed.secret());
}

/// Sixteen preflight probes at once (a fleet starting): each writes a record of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_probes_do_not_collide() {
    let server = redis_or_skip!("concurrent_probes_do_not_collide");
    let probes: Vec<_> = (0..16)
        .map(|_| {
            let store = store(&server, config(1, None));
            tokio::spawn(async move { vipps_access_token::store::probe(&*store).await })
        })
        .collect();
    for probe in probes {
        let outcome = probe.await.unwrap();
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    let left: Vec<String> = raw(&server).await.keys(format!("{PREFIX}*")).await.unwrap();
    assert!(left.is_empty(), "every probe removed its record: {left:?}");
}

/// A provider kept in a `static` and used from several `#[tokio::test]`s: each test has its
/// own runtime, and the store's connection belongs to the runtime that made it. After that
/// runtime shuts down, the store connects again from the next one and serves the fleet's
/// record.
#[test]
fn a_store_outlives_the_runtime_that_first_used_it() {
    let server = redis_or_skip!("a_store_outlives_the_runtime_that_first_used_it");
    let mock_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mock = mock_runtime.block_on(MockServer::start()).unwrap();
    let store = store(&server, config(1, None));
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };

    let first = runtime();
    // The record is saved after the token is handed out: a runtime that ends at once
    // would cancel that save (the next process then fetches again), so wait for it.
    let fetched = first.block_on(async {
        let token = process(&mock, &store).token().await.unwrap();
        saved().await;
        token
    });
    drop(first);
    assert_eq!(mock.request_count(), 1);

    let second = runtime();
    let read = second.block_on(async { process(&mock, &store).token().await.unwrap() });
    assert_eq!(
        read.secret().expose_secret(),
        fetched.secret().expose_secret(),
        "the record, read on a new connection from the second runtime"
    );
    assert_eq!(mock.request_count(), 1, "no fetch: the store served it");
}

/// A record, lease or failure marker key holding another type than a string (a list, a
/// hash: another application's key, or a hand-made mistake) makes every script answer
/// WRONGTYPE. The store deletes it and tries once more: the next fetch saves a record and
/// the one after is a hit, instead of the fleet bypassing the store for good.
#[tokio::test]
async fn a_key_of_the_wrong_type_is_repaired_and_the_store_used_again() {
    let server = redis_or_skip!("a_key_of_the_wrong_type_is_repaired_and_the_store_used_again");
    let mock = MockServer::start().await.unwrap();
    let store = store(&server, config(1, None));
    process(&mock, &store).token().await.unwrap();
    let record = record_names(&server).await.remove(0);
    let mut fetches = 1;
    for (suffix, wrong_type) in [("", "RPUSH"), (":lease", "HSET"), (":failed", "RPUSH")] {
        let key = format!("{record}{suffix}");
        server.cli(&["FLUSHALL"]);
        let set = match wrong_type {
            "RPUSH" => server.cli(&["RPUSH", &key, "not-a-record"]),
            _ => server.cli(&["HSET", &key, "field", "not-a-record"]),
        };
        assert_eq!(set.trim(), "1", "{wrong_type} {key}");

        process(&mock, &store).token().await.unwrap();
        fetches += 1;
        assert_eq!(mock.request_count(), fetches, "{key}: fetched once");
        assert_eq!(
            record_names(&server).await,
            std::slice::from_ref(&record),
            "{key}: saved"
        );
        assert_eq!(server.cli(&["TYPE", &record]).trim(), "string");
        process(&mock, &store).token().await.unwrap();
        assert_eq!(
            mock.request_count(),
            fetches,
            "{key}: the next one is a hit"
        );
    }
}

/// How a [`DelayingProxy`] delays what passes through it.
#[derive(Clone, Copy)]
enum Delay {
    /// The first bytes of each direction of each connection, as a Redis far away (or a
    /// slow TLS handshake) makes connecting slow; everything after passes at once.
    FirstBytes(Duration),
    /// Every chunk each way, in order: a Redis that far away on every packet.
    EveryChunk(Duration),
}

/// A loopback TCP proxy to `upstream` that delays traffic as `delay` says. Stops when
/// dropped.
struct DelayingProxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl DelayingProxy {
    async fn start(upstream: u16, delay: Delay) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        Self::pass(client_read, server_write, delay),
                        Self::pass(server_read, client_write, delay),
                    );
                });
            }
        });
        Self { port, task }
    }

    async fn pass(
        from: tokio::net::tcp::OwnedReadHalf,
        to: tokio::net::tcp::OwnedWriteHalf,
        delay: Delay,
    ) {
        match delay {
            Delay::FirstBytes(delay) => Self::pass_first_late(from, to, delay).await,
            Delay::EveryChunk(delay) => Self::pass_every_late(from, to, delay).await,
        }
    }

    /// Copies `from` to `to`, holding the first bytes for `delay`.
    async fn pass_first_late(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        delay: Duration,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buffer = vec![0; 16 * 1024];
        let mut first = true;
        loop {
            let read = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            if std::mem::take(&mut first) {
                tokio::time::sleep(delay).await;
            }
            if to.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }

    /// Copies `from` to `to`, each chunk `delay` after it was read.
    async fn pass_every_late(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        delay: Duration,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (chunks, mut due) =
            tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        let writer = tokio::spawn(async move {
            while let Some((at, bytes)) = due.recv().await {
                tokio::time::sleep_until(at).await;
                if to.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = to.shutdown().await;
        });
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(read @ 1..) = from.read(&mut buffer).await {
            let _ = chunks.send((tokio::time::Instant::now() + delay, buffer[..read].to_vec()));
        }
        drop(chunks);
        let _ = writer.await;
    }
}

impl Drop for DelayingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connecting to a Redis 150 ms away each way takes longer than one operation's 250 ms:
/// the connection has a timeout of its own, so two processes behind that distance still
/// share one fetch through the store instead of bypassing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_connection_does_not_count_against_the_first_operation() {
    let server = redis_or_skip!("a_slow_connection_does_not_count_against_the_first_operation");
    let proxy =
        DelayingProxy::start(server.port(), Delay::FirstBytes(Duration::from_millis(150))).await;
    let mock = MockServer::start().await.unwrap();
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    let far_store = || -> Arc<dyn TokenStore> {
        let mut config = config(1, None);
        config.operation_timeout = vipps_access_token::store::DEFAULT_OPERATION_TIMEOUT;
        Arc::new(RedisTokenStore::new(&url, config).expect("a redis URL"))
    };
    let (logs, _guard) = CapturedLogs::start();
    let first = process(&mock, &far_store()).token().await.unwrap();
    saved().await;
    let second = process(&mock, &far_store()).token().await.unwrap();
    assert_eq!(
        mock.request_count(),
        1,
        "one upstream request for both: {}",
        logs.text()
    );
    assert_eq!(first.secret(), second.secret());
    assert!(!logs.text().contains("bypassed"), "{}", logs.text());
}

/// A Redis 60 ms away on every packet (a round trip of 120 ms, within the default 250 ms
/// operation timeout) is used: the scripts are loaded while connecting, so each operation
/// is one round trip. Before, a script's first run cost three (`EVALSHA`, `NOSCRIPT`,
/// `SCRIPT LOAD`, `EVALSHA`): reads and saves timed out and every process bypassed the
/// store. (150 ms each way, a round trip longer than the operation timeout, is bypassed:
/// that is the operation timeout's job.)
#[tokio::test(flavor = "current_thread")]
async fn a_redis_60ms_away_on_every_packet_is_used() {
    let server = redis_or_skip!("a_redis_60ms_away_on_every_packet_is_used");
    let proxy =
        DelayingProxy::start(server.port(), Delay::EveryChunk(Duration::from_millis(60))).await;
    let mock = MockServer::start().await.unwrap();
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    let (logs, _guard) = CapturedLogs::start();
    for _ in 0..3 {
        // Default timings: what a service gets; a store of its own: a process.
        let config = StoreConfig::new(SealingKeys::new([1; 32], None));
        let far: Arc<dyn TokenStore> = Arc::new(RedisTokenStore::new(&url, config).unwrap());
        process(&mock, &far).token().await.unwrap();
        saved().await;
    }
    assert_eq!(
        mock.request_count(),
        1,
        "one request for three processes: {}",
        logs.text()
    );
    assert!(!logs.text().contains("bypassed"), "{}", logs.text());
}

/// A "Redis" that accepts connections and never answers: a store pays its connect timeout
/// once, then bypasses at once while the failed connect's backoff runs (1 s, growing),
/// instead of every token waiting the connect timeout again on a new connection.
#[tokio::test(flavor = "current_thread")]
async fn a_redis_that_never_answers_costs_one_connect_timeout_not_one_per_token() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counting = accepted.clone();
    let sink = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket); // read nothing, answer nothing
        }
    });
    let mock = MockServer::start().await.unwrap();
    let mut config = StoreConfig::new(SealingKeys::new([1; 32], None));
    config.connect_timeout = Duration::from_millis(700);
    let connect_timeout = config.connect_timeout;
    let store: Arc<dyn TokenStore> =
        Arc::new(RedisTokenStore::new(&format!("redis://127.0.0.1:{port}"), config).unwrap());
    let (logs, _guard) = CapturedLogs::start();
    // One store, five providers: a long-lived process asking for five tokens.
    process(&mock, &store).token().await.unwrap();
    let started = Instant::now();
    for msn in ["1001", "1002", "1003", "1004"] {
        provider_for(&mock, &store, Some(msn))
            .token()
            .await
            .unwrap();
    }
    let later = started.elapsed();
    sink.abort();
    assert_eq!(mock.request_count(), 5, "every token fetched directly");
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one connect attempt for five tokens"
    );
    assert!(
        later < connect_timeout,
        "four tokens after the failed connect took {later:?}"
    );
    assert!(logs.text().contains("not trying again"), "{}", logs.text());
}
