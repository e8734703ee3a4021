//! `FileTokenStore::fresh_token`: the record a provider saved, read at once with no
//! runtime, lease or HTTP request, under exactly the provider's rules: the same token for
//! the same keys, client and flow; nothing for another MSN, other keys, a record within
//! the margin, or a file that is not a record.
#![cfg(all(feature = "store", feature = "mock", unix))]

use std::{sync::Arc, time::Duration};

use vipps_access_token::{
    Client, RefreshPolicy, StandardCredentials, TokenProvider, TokenSource,
    mock::MockServer,
    store::{FileTokenStore, SealingKeys, StoreConfig},
};

/// A store in `dir` sealed with a key derived from the mock's client secret.
fn store_in(dir: &std::path::Path, credentials: &StandardCredentials) -> FileTokenStore {
    let keys = SealingKeys::from_client_secret(&credentials.client_secret);
    FileTokenStore::new(dir, StoreConfig::new(keys)).unwrap()
}

/// The mock's token, fetched once through a provider with `store`, which saves it.
async fn saved_by_a_provider(mock: &MockServer, client: &Client, store: FileTokenStore) -> String {
    let source = TokenSource::Standard(mock.standard_credentials());
    let provider = TokenProvider::builder(client.clone(), source)
        .store(Arc::new(store))
        .build();
    let token = provider.token().await.unwrap();
    // The record is written after the token is handed out.
    assert!(vipps_access_token::store::settle(Duration::from_secs(5)).await);
    token.secret().expose_secret().to_owned()
}

fn margin() -> Duration {
    RefreshPolicy::default().expiry_margin
}

#[tokio::test]
async fn the_saved_token_is_read_at_once_without_a_request() {
    let mock = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = mock.standard_credentials();
    let client = mock.client_builder().build().unwrap();
    let saved = saved_by_a_provider(&mock, &client, store_in(dir.path(), &credentials)).await;
    assert_eq!(mock.request_count(), 1);

    // Another store on the same directory, as the next process opens it.
    let store = store_in(dir.path(), &credentials);
    let source = TokenSource::Standard(credentials.clone());
    let read = store
        .fresh_token(&client, &source, margin())
        .expect("the saved record");
    assert_eq!(read.secret().expose_secret(), saved);
    assert!(read.expires_in() > margin(), "{:?}", read.expires_in());
    assert_eq!(mock.request_count(), 1, "read, not fetched");

    // Asked for more life than the token has: a miss, as the provider would judge it.
    assert!(
        store
            .fresh_token(&client, &source, Duration::from_secs(2 * 3600))
            .is_none()
    );
    // Another merchant, or other keys: never this token.
    let other_msn = client.with_merchant_serial_number("123456").unwrap();
    assert!(store.fresh_token(&other_msn, &source, margin()).is_none());
    let mut other_keys = credentials.clone();
    other_keys.subscription_key = vipps_access_token::SubscriptionKey::new("another-key");
    assert!(
        store
            .fresh_token(&client, &TokenSource::Standard(other_keys), margin())
            .is_none()
    );
    // Another flow with the same keys: its own record, none yet.
    let partner = TokenSource::Partner {
        credentials: mock.partner_credentials(),
        scope: None,
    };
    assert!(store.fresh_token(&client, &partner, margin()).is_none());
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_token_within_the_margin_is_a_miss() {
    // Tokens of 20 s: inside the default margin of 30 s from the start.
    let mock = MockServer::builder()
        .token_lifetime(Duration::from_secs(20))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = mock.standard_credentials();
    let client = mock.client_builder().build().unwrap();
    let store = store_in(dir.path(), &credentials);
    let source = TokenSource::Standard(credentials.clone());
    // Written as a provider with a small margin would write it.
    let provider = TokenProvider::builder(client.clone(), source.clone())
        .refresh_policy(RefreshPolicy {
            expiry_margin: Duration::from_secs(1),
            ..RefreshPolicy::default()
        })
        .unwrap()
        .store(Arc::new(store_in(dir.path(), &credentials)))
        .build();
    provider.token().await.unwrap();
    assert!(vipps_access_token::store::settle(Duration::from_secs(5)).await);

    assert!(store.fresh_token(&client, &source, margin()).is_none());
    assert!(
        store
            .fresh_token(&client, &source, Duration::from_secs(1))
            .is_some(),
        "with the writer's own margin it is served"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_record_or_no_file_is_a_quiet_miss() {
    let mock = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = mock.standard_credentials();
    let client = mock.client_builder().build().unwrap();
    let store = store_in(dir.path(), &credentials);
    let source = TokenSource::Standard(credentials.clone());
    assert!(
        store.fresh_token(&client, &source, margin()).is_none(),
        "empty"
    );

    saved_by_a_provider(&mock, &client, store_in(dir.path(), &credentials)).await;
    let record = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            !name.starts_with('.') && !name.ends_with(":lease") && !name.ends_with(":failed")
        })
        .expect("a record file");
    for garbage in [&b""[..], b"not a record", &[0xff; 300]] {
        std::fs::write(&record, garbage).unwrap();
        assert!(store.fresh_token(&client, &source, margin()).is_none());
    }
    // Sealed under another key (another client secret): opens nothing.
    let other = FileTokenStore::new(
        dir.path(),
        StoreConfig::new(SealingKeys::new([7; 32], None)),
    )
    .unwrap();
    assert!(other.fresh_token(&client, &source, margin()).is_none());
}
