//! The token broker mounted in a Rust service: `Broker::router()` nested under `/vipps`
//! beside the service's own routes, so that the PHP or Node code next to it shares the
//! service's tokens through `http://127.0.0.1:PORT/vipps` as its base URL.
//!
//! ```sh
//! cargo run --example broker_router --features broker
//! ```
//!
//! Here the upstream is the embedded mock and the "other language" is a plain HTTP
//! request; in production the upstream is `Client::new(Environment::Production)`.

use axum::{Router, routing::get};
use vipps_access_token::{
    ClientBuilder,
    broker::{Broker, ServeOptions, serve},
    http_client_builder,
    mock::MockServer,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token_api = MockServer::start().await?; // yours: Client::new(Environment::Production)
    let broker =
        Broker::builder(ClientBuilder::with_base_url(token_api.base_url()).build()?).build()?;
    let app = Router::new()
        .route("/", get(|| async { "the service's own routes" }))
        .nest("/vipps", broker.router());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}/vipps", listener.local_addr()?);
    // `broker::serve` rather than `axum::serve`: a connection limit and timeouts, so that
    // no client can hold the service's connections.
    tokio::spawn(serve(
        listener,
        app,
        ServeOptions::default(),
        std::future::pending(),
    ));

    // What a PHP plugin next to the service would send, with its own keys.
    let http = http_client_builder()?.no_proxy().build()?;
    let keys = token_api.standard_credentials();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let answer: serde_json::Value = http
            .post(format!("{base_url}/accesstoken/get"))
            .header("client_id", keys.client_id.as_str())
            .header("client_secret", keys.client_secret.expose_secret())
            .header(
                "Ocp-Apim-Subscription-Key",
                keys.subscription_key.expose_secret(),
            )
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        tokens.push(
            answer["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        println!("expires_in: {}", answer["expires_in"]);
    }
    assert!(
        tokens.windows(2).all(|pair| pair[0] == pair[1]),
        "one token"
    );
    println!(
        "3 requests through {base_url}: {} token request(s) upstream",
        token_api.request_count()
    );
    Ok(())
}
