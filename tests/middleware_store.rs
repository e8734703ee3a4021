//! VippsAuthMiddleware with a fleet token store (a real `redis-server`): a 401 that is not
//! about the token leaves the fleet's record alone, so other processes keep using it.
#![cfg(all(feature = "middleware", feature = "redis", feature = "mock"))]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;

use redis::AsyncCommands;
use redis_server::RedisServer;
use vipps_access_token::{
    TokenProvider, TokenSource, VippsAuthMiddleware,
    mock::MockServer,
    store::{RedisTokenStore, SealingKeys, StoreConfig, TokenStore},
};
use wiremock::{Mock, ResponseTemplate, matchers};

const PREFIX: &str = "vipps-access-token:";
const API_PATH: &str = "/epayment/v1/payments/order-1";

fn process(mock: &MockServer, store: &Arc<dyn TokenStore>) -> TokenProvider {
    TokenProvider::builder(
        mock.client_builder().build().expect("a client"),
        TokenSource::Standard(mock.standard_credentials()),
    )
    .store(store.clone())
    .build()
}

async fn record_names(server: &RedisServer) -> Vec<String> {
    let mut raw = redis::Client::open(server.url())
        .expect("a redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a raw connection");
    let mut names: Vec<String> = raw.keys(format!("{PREFIX}*")).await.unwrap();
    names.retain(|name| !name.ends_with(":lease"));
    names
}

#[tokio::test]
async fn a_subscription_key_401_keeps_the_fleets_record() {
    let Some(server) = RedisServer::start("a_subscription_key_401_keeps_the_fleets_record") else {
        return;
    };
    let mock = MockServer::start().await.unwrap();
    let api = wiremock::MockServer::start().await;
    Mock::given(matchers::path(API_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "statusCode": 401,
            "message": "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."
        })))
        .mount(&api)
        .await;
    let mut config = StoreConfig::new(SealingKeys::new([1; 32], None));
    config.lease_ttl = std::time::Duration::from_secs(5);
    let store: Arc<dyn TokenStore> =
        Arc::new(RedisTokenStore::new(&server.url(), config).expect("a redis URL"));

    let http = VippsAuthMiddleware::new(process(&mock, &store))
        .with_origin(&api.uri())
        .unwrap()
        .client()
        .unwrap();
    for _ in 0..3 {
        let response = http
            .get(format!("{}{API_PATH}", api.uri()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    assert_eq!(mock.request_count(), 1, "no token fetched for the 401s");
    assert_eq!(record_names(&server).await.len(), 1, "the record stays");

    let other = process(&mock, &store).token().await.unwrap();
    assert!(mock.verify_token(other.secret().expose_secret()).is_some());
    assert_eq!(
        mock.request_count(),
        1,
        "another process takes the fleet's token"
    );
}
