//! A short-lived process (a cron job, a serverless function, a deploy script) that needs one
//! token: it takes it from the shared token store when one is configured, so the whole
//! fleet of runs fetches once, and fetches directly otherwise.
//!
//! ```sh
//! cargo run --example cron_job --features redis,mock                  # no store: direct
//! VIPPS_TOKEN_STORE=redis://127.0.0.1:6379 \
//! VIPPS_TOKEN_STORE_KEY=$(openssl rand -base64 32) \
//!   cargo run --example cron_job --features redis,mock                # through Redis
//! ```
//!
//! Without keys it runs against the embedded mock, and plays two runs of the job one after
//! the other (two providers, as two processes would have), to show what the store saves.

use std::sync::Arc;

use vipps_access_token::{
    Client, StandardCredentials, TokenProvider, TokenSource,
    mock::MockServer,
    store::{RedisTokenStore, SealingKeys, StoreConfig, TokenStore},
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token_api = MockServer::start().await?; // your job: Client::new(Environment::Production)
    let store = configured_store()?;
    match &store {
        Some(_) => println!("token store: configured (VIPPS_TOKEN_STORE)"),
        None => println!("token store: none configured; each run fetches its own token"),
    }

    for run in 1..=2 {
        let token = run_job(
            token_api.client_builder().build()?,
            token_api.standard_credentials(),
            store.clone(),
        )
        .await?;
        println!(
            "run {run}: got a token valid for {} s more; token requests so far: {}",
            token
                .expires_at()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                .as_secs(),
            token_api.request_count()
        );
    }
    Ok(())
}

/// One run of the job: one provider, one token, then the process would exit.
async fn run_job(
    client: Client,
    credentials: StandardCredentials,
    store: Option<Arc<dyn TokenStore>>,
) -> Result<Arc<vipps_access_token::AccessToken>, vipps_access_token::Error> {
    let mut provider = TokenProvider::builder(client, TokenSource::Standard(credentials));
    if let Some(store) = store {
        // A store that is down, slow or full is a warning and a direct fetch, never a failure.
        provider = provider.store(store);
    }
    provider.build().token().await
}

/// The Redis store named by `VIPPS_TOKEN_STORE`, sealed with `VIPPS_TOKEN_STORE_KEY`.
fn configured_store() -> Result<Option<Arc<dyn TokenStore>>, Box<dyn std::error::Error>> {
    let Ok(url) = std::env::var("VIPPS_TOKEN_STORE") else {
        return Ok(None);
    };
    let key = std::env::var("VIPPS_TOKEN_STORE_KEY").map_err(
        |_| "VIPPS_TOKEN_STORE is set: set VIPPS_TOKEN_STORE_KEY too (base64 of 32 bytes)",
    )?;
    let keys = SealingKeys::from_base64(&key, None, "VIPPS_TOKEN_STORE_KEY", "")?;
    Ok(Some(Arc::new(RedisTokenStore::new(
        &url,
        StoreConfig::new(keys),
    )?)))
}
