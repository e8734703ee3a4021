//! The store on a real Redis Cluster (three masters on loopback, see
//! `support/redis_cluster.rs`): every key of a token shares a hash tag, so the store's
//! scripts run on one slot and the cluster client follows MOVED; a master killed mid-run
//! costs a direct fetch, never a missing token. Skipped without `redis-server`, unless
//! `VIPPS_REQUIRE_REDIS=1`.
#![cfg(all(feature = "redis", feature = "mock"))]

#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use std::{sync::Arc, time::Duration};

use redis_cluster::RedisCluster;
use vipps_access_token::{
    TokenProvider, TokenSource,
    mock::MockServer,
    store::{RedisTokenStore, SealingKeys, StoreConfig, TokenStore, settle},
};

/// Twelve merchants, as a platform serving many would have.
const MSNS: [&str; 12] = [
    "100001", "100002", "100003", "100004", "100005", "100006", "100007", "100008", "100009",
    "100010", "100011", "100012",
];

fn store(url: &str) -> Arc<dyn TokenStore> {
    let mut config = StoreConfig::new(SealingKeys::new([5; 32], None));
    config.operation_timeout = Duration::from_secs(2);
    Arc::new(RedisTokenStore::new(url, config).expect("a cluster URL"))
}

fn provider(mock: &MockServer, store: &Arc<dyn TokenStore>, msn: &str) -> TokenProvider {
    TokenProvider::builder(
        mock.client_builder()
            .merchant_serial_number(msn)
            .build()
            .unwrap(),
        TokenSource::Standard(mock.standard_credentials()),
    )
    .store(store.clone())
    .build()
}

/// Two cold processes (each with a store connection of its own) ask for twelve merchants'
/// tokens at once: twelve upstream requests, twelve records spread over the masters.
async fn two_cold_processes(mock: &MockServer, url: &str, msns: &[&str]) -> usize {
    let processes = [store(url), store(url)];
    let mut callers = Vec::new();
    for store in &processes {
        for msn in msns {
            let provider = provider(mock, store, msn);
            callers.push(tokio::spawn(async move { provider.token().await }));
        }
    }
    let mut ok = 0;
    for caller in callers {
        let token = caller.await.unwrap();
        assert!(token.is_ok(), "{token:?}");
        ok += 1;
    }
    assert!(settle(Duration::from_secs(5)).await);
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_merchants_two_cold_processes_make_twelve_requests_on_a_cluster() {
    let Some(cluster) = RedisCluster::start(
        "twelve_merchants_two_cold_processes_make_twelve_requests_on_a_cluster",
    ) else {
        return;
    };
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_millis(100));
    assert_eq!(two_cold_processes(&mock, &cluster.url(), &MSNS).await, 24);
    assert_eq!(
        mock.request_count(),
        12,
        "one upstream request per merchant"
    );
    let keys = cluster.keys_per_master();
    assert_eq!(
        keys.iter().sum::<usize>(),
        12,
        "twelve records, no lease left: {keys:?}"
    );
    assert!(
        keys.iter().filter(|n| **n > 0).count() >= 2,
        "spread over the masters: {keys:?}"
    );

    // Warm: a third process takes all twelve from the cluster.
    let third = store(&cluster.url());
    for msn in MSNS {
        provider(&mock, &third, msn).token().await.unwrap();
    }
    assert_eq!(mock.request_count(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_mid_run_still_leaves_every_caller_a_token() {
    let Some(mut cluster) =
        RedisCluster::start("a_master_killed_mid_run_still_leaves_every_caller_a_token")
    else {
        return;
    };
    let mock = Arc::new(MockServer::start().await.unwrap());
    mock.set_delay(Duration::from_millis(300));
    let url = cluster.url();
    let running = {
        let (url, mock) = (url.clone(), mock.clone());
        tokio::spawn(async move { two_cold_processes(&mock, &url, &MSNS).await })
    };
    // Mid-run: the fetches are out (their leases taken), the records not yet saved.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while mock.request_count() < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.masters[1].kill();
    assert_eq!(running.await.unwrap(), 24, "every caller got a token");
    // Its slots are down (no replica to promote): the store is bypassed, never in the way.
    let started = std::time::Instant::now();
    for msn in ["200001", "200002", "200003", "200004"] {
        provider(&mock, &store(&url), msn).token().await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
