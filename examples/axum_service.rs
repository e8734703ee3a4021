//! An axum service that calls another Vipps MobilePay API (here: the ePayment API's
//! "get payment") with tokens from one shared `TokenProvider`, exposes its metrics on
//! `/metrics`, and shuts down gracefully on Ctrl-C.
//!
//! It runs without keys or network: the embedded mock stands in for the Access Token API,
//! and a small loopback server stands in for the ePayment API (it accepts only tokens the
//! mock signed). Run it with
//!
//! ```sh
//! cargo run --example axum_service --features middleware,mock,metrics           # demo, then exit
//! cargo run --example axum_service --features middleware,mock,metrics -- --serve # until Ctrl-C
//! ```
//!
//! In your service, replace the mock with `Client::builder(Environment::Production)` and
//! your keys (`StandardCredentials::new(client_id, client_secret, subscription_key)`).

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::get,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use reqwest_middleware::ClientWithMiddleware;
use tokio::{net::TcpListener, sync::oneshot};
use vipps_access_token::{TokenProvider, TokenSource, VippsAuthMiddleware, mock::MockServer};

/// What every request handler shares: one authenticated client (one token cache behind it).
#[derive(Clone)]
struct AppState {
    vipps: ClientWithMiddleware,
    epayment_url: String,
    metrics: Arc<Snapshotter>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serve_until_ctrl_c = std::env::args().any(|arg| arg == "--serve");

    // Metrics: any `metrics` recorder works (Prometheus, StatsD...). This example keeps them
    // in memory and renders them as text on /metrics.
    let recorder = DebuggingRecorder::new();
    let metrics = Arc::new(recorder.snapshotter());
    recorder.install()?;

    // The Access Token API (the embedded mock) and the API we call with its tokens.
    let token_api = Arc::new(MockServer::start().await?);
    let signer = token_api.clone();
    let epayment =
        start_epayment_stand_in(move |token| signer.verify_token(token).is_some()).await?;

    // One provider for the whole service: every handler shares its cached token.
    let client = token_api
        .client_builder()
        .merchant_serial_number("123456")
        .build()?;
    let provider = TokenProvider::new(
        client,
        TokenSource::Standard(token_api.standard_credentials()),
    );
    provider.refresh().await?; // fail fast at start-up on bad keys

    // The authenticated client, built the way docs/service.md says (`client()`, here
    // `client_from` to add a timeout): tokens and the subscription key go to the Vipps
    // origins only, and no redirect away from them is followed.
    let vipps = VippsAuthMiddleware::new(provider)
        .with_origin(&epayment)?
        .client_from(vipps_access_token::http_client_builder()?.timeout(Duration::from_secs(10)))?;

    let app = Router::new()
        .route("/orders/{reference}/payment-state", get(payment_state))
        .route("/metrics", get(render_metrics))
        .with_state(AppState {
            vipps,
            epayment_url: epayment,
            metrics,
        });
    let addr = if serve_until_ctrl_c {
        "127.0.0.1:3000"
    } else {
        "127.0.0.1:0"
    };
    let listener = TcpListener::bind(addr).await?;
    let service_url = format!("http://{}", listener.local_addr()?);
    println!("service listening on {service_url}");

    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // Ctrl-C, or the demo below when it is done.
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = stopped => {}
                }
            })
            .await
    });

    if serve_until_ctrl_c {
        println!("try: curl {service_url}/orders/order-1/payment-state ; Ctrl-C to stop");
        server.await??;
        drop(stop);
    } else {
        demo(&service_url).await?;
        let _ = stop.send(());
        server.await??;
    }
    println!(
        "shut down cleanly; the Access Token API was asked {} time(s)",
        token_api.request_count()
    );
    Ok(())
}

/// Calls the service a few times, as its users would, and prints what it answered.
async fn demo(service_url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let http = vipps_access_token::http_client_builder()?.build()?;
    for reference in ["order-1", "order-2", "order-3"] {
        let answer = http
            .get(format!("{service_url}/orders/{reference}/payment-state"))
            .send()
            .await?;
        println!(
            "GET /orders/{reference}/payment-state -> {} {}",
            answer.status(),
            answer.text().await?
        );
    }
    let metrics = http
        .get(format!("{service_url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    println!("GET /metrics ->\n{metrics}");
    Ok(())
}

/// Our handler: asks the ePayment API for the payment behind an order.
async fn payment_state(
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> (StatusCode, String) {
    let url = format!("{}/epayment/v1/payments/{reference}", state.epayment_url);
    match state.vipps.get(url).send().await {
        Ok(response) if response.status().is_success() => {
            (StatusCode::OK, response.text().await.unwrap_or_default())
        }
        Ok(response) => (
            StatusCode::BAD_GATEWAY,
            format!("the ePayment API answered {}", response.status()),
        ),
        // The error names what failed and never holds a token or key.
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()),
    }
}

/// The metrics as `name{labels} value` lines.
async fn render_metrics(State(state): State<AppState>) -> String {
    let mut lines: Vec<String> = state
        .metrics
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|label| format!("{}=\"{}\"", label.key(), label.value()))
                .collect();
            let value = match value {
                DebugValue::Counter(count) => count.to_string(),
                DebugValue::Gauge(gauge) => gauge.into_inner().to_string(),
                DebugValue::Histogram(samples) => format!("{} samples", samples.len()),
            };
            format!("{}{{{}}} {value}", key.key().name(), labels.join(","))
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

/// A loopback stand-in for the ePayment API: 200 for a request with a token the mock
/// signed and a subscription key, 401 otherwise.
async fn start_epayment_stand_in(
    verify: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> std::io::Result<String> {
    let verify = Arc::new(verify);
    let app = Router::new().route(
        "/epayment/v1/payments/{reference}",
        get(move |Path(reference): Path<String>, headers: HeaderMap| {
            let verify = verify.clone();
            async move {
                let token = headers
                    .get("authorization")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.strip_prefix("Bearer "));
                let keyed = headers.contains_key("ocp-apim-subscription-key");
                match token {
                    Some(token) if keyed && verify(token) => (
                        StatusCode::OK,
                        format!("{{\"reference\":\"{reference}\",\"state\":\"AUTHORIZED\"}}"),
                    ),
                    _ => (StatusCode::UNAUTHORIZED, String::new()),
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
