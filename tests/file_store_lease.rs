//! The file store's lease in one process's terms, on tokio's paused clock. In a binary of
//! its own: an OS file lock is held by every copy of its descriptor, and a test beside it
//! that spawns processes (as `tests/file_store.rs` does, by the thousand) holds a copy in
//! each child between its fork and its exec; the paused clock makes this test's waits for
//! the lock take no real time, so such a moment would fail it.
#![cfg(all(feature = "store", unix))]

#[path = "support/example_keys.rs"]
mod example_keys;

use std::time::{Duration, SystemTime};

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

/// The lease file's identity on disk: renewing a lease must keep this very file.
fn inode(path: &std::path::Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
}

/// A holder id of the shape `lease.rs` makes: 32 hex digits.
const HOLDER_A: &[u8] = b"0123456789abcdef0000000000000001";
const HOLDER_B: &[u8] = b"fedcba98765432100000000000000002";
const HOLDER_C: &[u8] = b"00112233445566770000000000000003";

/// Renewing is a lock's business, not the file's: the lease file stays the same file (so
/// the lock on it stays the one every process sees), and a renewed lease outlives its
/// first TTL. Only its holder renews it, and `put` never replaces a lease file.
#[tokio::test(start_paused = true)]
async fn renewing_a_lease_keeps_its_file_and_its_lock_past_the_first_ttl() {
    let cache = tempfile::tempdir().unwrap();
    let a = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let b = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let ttl = Duration::from_secs(2);
    let lease = "vipps-access-token:test:lease";
    let path = cache.path().join(lease);
    assert!(a.put_if_absent(lease, HOLDER_A, ttl).await.unwrap());
    let held = inode(&path);
    for _ in 0..6 {
        tokio::time::advance(ttl / 3).await;
        assert!(a.extend_if_equal(lease, HOLDER_A, ttl).await.unwrap());
        assert!(
            !a.extend_if_equal(lease, HOLDER_B, ttl).await.unwrap(),
            "only its holder renews it"
        );
        assert_eq!(inode(&path), held, "the lease file is never replaced");
    }
    assert!(
        !b.put_if_absent(lease, HOLDER_B, ttl).await.unwrap(),
        "renewed past its first TTL: still held"
    );
    assert!(
        a.put(lease, HOLDER_B.to_vec(), ttl).await.is_err(),
        "a lease file is a lock, never a record"
    );
    assert_eq!(inode(&path), held);
    assert!(a.delete_if_equal(lease, HOLDER_A).await.unwrap());
    assert!(b.put_if_absent(lease, HOLDER_B, ttl).await.unwrap());
}

/// Another process (here another store: a lock belongs to an open file) learns who holds
/// a lease from its file, so that it can match the holder's failure marker; a free lease
/// has no holder, whatever its file still says.
#[tokio::test(start_paused = true)]
async fn a_lease_held_elsewhere_is_named_by_its_holder_id() {
    let cache = tempfile::tempdir().unwrap();
    let a = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let b = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let ttl = Duration::from_secs(10);
    let lease = "vipps-access-token:test:lease";
    assert_eq!(b.get(lease).await.unwrap(), None, "no lease file yet");
    assert!(a.put_if_absent(lease, HOLDER_A, ttl).await.unwrap());
    assert_eq!(b.get(lease).await.unwrap().as_deref(), Some(HOLDER_A));
    assert_eq!(a.get(lease).await.unwrap().as_deref(), Some(HOLDER_A));
    assert!(a.delete_if_equal(lease, HOLDER_A).await.unwrap());
    assert_eq!(
        b.get(lease).await.unwrap(),
        None,
        "released: nobody holds it"
    );
    assert!(b.put_if_absent(lease, HOLDER_B, ttl).await.unwrap());
    assert_eq!(a.get(lease).await.unwrap().as_deref(), Some(HOLDER_B));
}

/// A key name of our shape: prefix, hash tag, 64 hex digits, then `suffix`.
fn our_key(tag: &str, suffix: &str) -> String {
    format!("vipps-access-token:{{{tag}}}{}{suffix}", "0".repeat(64))
}

/// The file name of a key name of ours (`{` and `}` escaped).
fn file_of(key: &str) -> String {
    key.replace('{', "%7B").replace('}', "%7D")
}

/// A header saying "expired in 1970": an expired record of ours.
fn expired_record() -> Vec<u8> {
    let mut bytes = b"vatf\x01".to_vec();
    bytes.extend_from_slice(&1u64.to_be_bytes());
    bytes.push(0);
    bytes.extend_from_slice(b"sealed");
    bytes
}

/// Housekeeping is cheap and complete: a save prunes at most once a minute (not every
/// file on every save), and pruning removes expired records and lease files nobody holds,
/// but never a lease someone holds.
#[tokio::test(start_paused = true)]
async fn saves_prune_at_most_once_a_minute_and_prune_free_lease_files() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path();
    let store = FileTokenStore::new(dir, config_from_secret()).unwrap();
    let other = FileTokenStore::new(dir, config_from_secret()).unwrap();
    let ttl = Duration::from_secs(60);
    let (free, held) = (our_key("0a1b", ":lease"), our_key("0a1c", ":lease"));
    assert!(store.put_if_absent(&free, HOLDER_A, ttl).await.unwrap());
    assert!(store.delete_if_equal(&free, HOLDER_A).await.unwrap());
    assert!(other.put_if_absent(&held, HOLDER_B, ttl).await.unwrap());
    let expired = dir.join(file_of(&our_key("0a1d", "")));
    std::fs::write(&expired, expired_record()).unwrap();

    store
        .put(&our_key("0a1e", ""), b"sealed".to_vec(), ttl)
        .await
        .unwrap();
    assert!(!expired.exists(), "an expired record is pruned");
    assert!(
        !dir.join(file_of(&free)).exists(),
        "a free lease file is pruned"
    );
    assert!(dir.join(file_of(&held)).exists(), "a held one is not");
    assert_eq!(other.get(&held).await.unwrap().as_deref(), Some(HOLDER_B));

    std::fs::write(&expired, expired_record()).unwrap();
    store
        .put(&our_key("0a1e", ""), b"sealed".to_vec(), ttl)
        .await
        .unwrap();
    assert!(expired.exists(), "not pruned again within the minute");
    tokio::time::advance(Duration::from_secs(61)).await;
    store
        .put(&our_key("0a1e", ""), b"sealed".to_vec(), ttl)
        .await
        .unwrap();
    assert!(!expired.exists(), "pruned again after a minute");
}

/// The lease file's heartbeat: its mtime, on the wall clock.
fn heartbeat(path: &std::path::Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// Makes the lease file's heartbeat `age` old, as if its holder had stopped renewing.
fn age_heartbeat(path: &std::path::Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

/// True when `at` is within a few seconds of now: a heartbeat just beaten.
fn just_now(at: SystemTime) -> bool {
    SystemTime::now()
        .duration_since(at)
        .is_ok_and(|age| age < Duration::from_secs(3))
}

/// A holder that still holds the lock but has stopped renewing (a stopped process: here a
/// store whose heartbeat the test makes old) is taken over once its heartbeat is older
/// than two TTLs, as a Redis lease would expire: the taker holds the lease without the
/// lock, names itself in the file and beats the heartbeat, so a third waiter is refused;
/// the stalled holder learns at its next renewal that it lost the lease; once it lets go,
/// the taker's next renewal takes the lock. A heartbeat younger than two TTLs is never
/// taken over. On main no waiter ever got the lease while the lock was held.
#[tokio::test(start_paused = true)]
async fn a_stalled_holder_is_taken_over_once_its_heartbeat_is_two_ttls_old() {
    let cache = tempfile::tempdir().unwrap();
    let a = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let b = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let c = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let ttl = Duration::from_secs(2);
    let lease = "vipps-access-token:test:lease";
    let path = cache.path().join(lease);
    assert!(a.put_if_absent(lease, HOLDER_A, ttl).await.unwrap());
    let held = inode(&path);

    age_heartbeat(&path, Duration::from_secs(10));
    assert!(a.extend_if_equal(lease, HOLDER_A, ttl).await.unwrap());
    assert!(just_now(heartbeat(&path)), "a renewal beats the heartbeat");
    assert_eq!(inode(&path), held, "in place");

    age_heartbeat(&path, Duration::from_secs(3));
    assert!(
        !b.put_if_absent(lease, HOLDER_B, ttl).await.unwrap(),
        "a heartbeat younger than two TTLs: still held"
    );
    age_heartbeat(&path, Duration::from_secs(5));
    assert!(
        b.put_if_absent(lease, HOLDER_B, ttl).await.unwrap(),
        "older than two TTLs: taken over"
    );
    assert_eq!(inode(&path), held, "the lease file is never replaced");
    assert!(just_now(heartbeat(&path)), "the taker beats the heartbeat");
    assert_eq!(c.get(lease).await.unwrap().as_deref(), Some(HOLDER_B));
    assert!(
        !c.put_if_absent(lease, HOLDER_C, ttl).await.unwrap(),
        "one taker: the others wait for it"
    );
    assert!(
        !a.extend_if_equal(lease, HOLDER_A, ttl).await.unwrap(),
        "the stalled holder lost its lease, as on Redis"
    );
    assert!(b.extend_if_equal(lease, HOLDER_B, ttl).await.unwrap());

    // The stalled holder lets go of its lock; the taker's next renewal takes it.
    assert!(a.delete_if_equal(lease, HOLDER_A).await.unwrap());
    assert!(b.extend_if_equal(lease, HOLDER_B, ttl).await.unwrap());
    let file = std::fs::File::open(&path).unwrap();
    assert!(
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        "the taker holds the lock now"
    );
    drop(file);
    assert!(!c.put_if_absent(lease, HOLDER_C, ttl).await.unwrap());
    assert!(b.delete_if_equal(lease, HOLDER_B).await.unwrap());
    assert!(
        c.put_if_absent(lease, HOLDER_C, ttl).await.unwrap(),
        "free at once"
    );
}

/// A taker that gives the lease back (its fetch was dropped) leaves no heartbeat: the next
/// waiter takes over at once, rather than two more TTLs later, as a released Redis lease
/// is free at once.
#[tokio::test(start_paused = true)]
async fn a_taken_over_lease_given_back_is_free_for_the_next_waiter_at_once() {
    let cache = tempfile::tempdir().unwrap();
    let a = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let b = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let c = FileTokenStore::new(cache.path(), config_from_secret()).unwrap();
    let ttl = Duration::from_secs(2);
    let lease = "vipps-access-token:test:lease";
    let path = cache.path().join(lease);
    assert!(a.put_if_absent(lease, HOLDER_A, ttl).await.unwrap());
    age_heartbeat(&path, Duration::from_secs(5));
    assert!(b.put_if_absent(lease, HOLDER_B, ttl).await.unwrap());
    assert!(b.delete_if_equal(lease, HOLDER_B).await.unwrap());
    assert_eq!(c.get(lease).await.unwrap(), None, "nobody named");
    assert!(c.put_if_absent(lease, HOLDER_C, ttl).await.unwrap());
    assert_eq!(b.get(lease).await.unwrap().as_deref(), Some(HOLDER_C));
}
