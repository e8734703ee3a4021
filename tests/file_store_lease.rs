//! The file store's lease in one process's terms, on tokio's paused clock. In a binary of
//! its own: an OS file lock is held by every copy of its descriptor, and a test beside it
//! that spawns processes (as `tests/file_store.rs` does, by the thousand) holds a copy in
//! each child between its fork and its exec; the paused clock makes this test's waits for
//! the lock take no real time, so such a moment would fail it.
#![cfg(all(feature = "store", unix))]

#[path = "support/example_keys.rs"]
mod example_keys;

use std::time::Duration;

use example_keys::CLIENT_SECRET;
use vipps_access_token::{
    ClientSecret,
    store::{FileTokenStore, SealingKeys, StoreConfig, TokenStore},
};

fn config_from_secret() -> StoreConfig {
    StoreConfig::new(SealingKeys::from_client_secret(&ClientSecret::new(
        CLIENT_SECRET,
    )))
}

/// The lease in one process's terms: one holder at a time, released at once by its
/// holder's value only, and a lease its holder forgot (a cancelled task) ends with its TTL,
/// as in Redis. On tokio's paused clock: waiting on the lock costs no real time.
#[tokio::test(start_paused = true)]
async fn a_lease_has_one_holder_and_a_forgotten_one_ends_with_its_ttl() {
    let cache = tempfile::tempdir().unwrap();
    let a = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let b = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let ttl = Duration::from_secs(10);
    let lease = "vipps-access-token:test:lease";
    assert!(a.put_if_absent(lease, b"a", ttl).await.unwrap());
    assert!(
        !b.put_if_absent(lease, b"b", ttl).await.unwrap(),
        "held by a"
    );
    assert!(
        !a.delete_if_equal(lease, b"b").await.unwrap(),
        "not b's to release"
    );
    assert!(a.delete_if_equal(lease, b"a").await.unwrap());
    assert!(
        b.put_if_absent(lease, b"b", ttl).await.unwrap(),
        "free at once"
    );
    tokio::time::advance(ttl + Duration::from_secs(1)).await;
    assert!(
        a.put_if_absent(lease, b"a", ttl).await.unwrap(),
        "b forgot it: free after its TTL"
    );
    assert!(
        !b.delete_if_equal(lease, b"b").await.unwrap(),
        "b's lease is gone"
    );
}
