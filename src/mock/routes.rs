//! The router: the four token paths, and what every request goes through first
//! (counting, canned answers, delays).

use std::{sync::Arc, time::Duration};

use axum::{
    Router, body::Bytes, extract::State, http::HeaderMap, response::Response, routing::post,
};

use super::{endpoint::Endpoint, gateway, legacy, partner, reply, standard, state::Shared};

/// Every path with its handler; anything else gets the gateway's 404.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    for endpoint in Endpoint::ALL {
        router = router.route(
            endpoint.path(),
            post(
                move |State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes| {
                    serve(shared, endpoint, headers, body)
                },
            ),
        );
    }
    router
        .fallback(|State(shared): State<Arc<Shared>>| async move {
            shared.faults.count(None);
            gateway::not_found()
        })
        .with_state(shared)
}

/// Counts the request, then answers it (or with the canned answer), after any delay.
async fn serve(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.faults.count(Some(endpoint));
    let (fault, delay) = shared.faults.next();
    if !delay.is_zero() {
        wait(&shared, delay).await;
    }
    if let Some(fault) = fault {
        return reply::canned(fault.status, fault.body);
    }
    match endpoint {
        Endpoint::Standard => standard::answer(&shared, &headers),
        Endpoint::Partner | Endpoint::RenamedPartner => partner::answer(&shared, &headers, &body),
        Endpoint::Legacy => legacy::answer(&shared, &headers, &body),
    }
}

/// Waits `delay`, or until the server is asked to stop, so that stopping never waits on
/// a delayed answer.
async fn wait(shared: &Shared, delay: Duration) {
    let mut stopping = shared.stopping.clone();
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        _ = stopping.wait_for(|stopping| *stopping) => {}
    }
}
