//! `mock`: the mock Access Token API in the foreground, until Ctrl-C or SIGTERM.

use std::io::Write;

use vipps_access_token::{
    Environment, LEGACY_TOKEN_PATH, PARTNER_TOKEN_PATH, RENAMED_PARTNER_TOKEN_PATH,
    mock::{MockServer, STANDARD_TOKEN_PATH},
};

use crate::{
    args::MockArgs,
    failure::{Failure, UNAVAILABLE, USAGE},
};

/// Runs the mock until Ctrl-C, after printing its base URL and the keys it accepts
/// (the documented example keys, which are public).
pub async fn run(args: MockArgs) -> Result<(), Failure> {
    let environment = if args.production {
        Environment::Production
    } else {
        Environment::Test
    };
    let mock = MockServer::builder()
        .addr(args.addr)
        .environment(environment)
        .start()
        .await
        .map_err(|e| Failure::new(USAGE, format!("could not listen on {}: {e}", args.addr)))?;
    if !args.addr.ip().is_loopback() {
        let _ = writeln!(
            std::io::stderr(),
            "warning: listening on {}, reachable from the network",
            mock.addr()
        );
    }
    let keys = mock.standard_credentials();
    let text = format!(
        "Vipps MobilePay Access Token API mock ({environment} token lifetimes) on {url}\n\
         client_id:                 {id}\n\
         client_secret:             {secret}\n\
         Ocp-Apim-Subscription-Key: {key}\n\
         serving POST {STANDARD_TOKEN_PATH}, {PARTNER_TOKEN_PATH}, \
         {RENAMED_PARTNER_TOKEN_PATH}, {LEGACY_TOKEN_PATH}\n\
         try: vipps-token token --base-url {url} --client-id {id} ...\n\
         stop with Ctrl-C or SIGTERM",
        url = mock.base_url(),
        id = keys.client_id.as_str(),
        secret = keys.client_secret.expose_secret(),
        key = keys.subscription_key.expose_secret(),
    );
    let stopped = stop_signal()?;
    crate::output::line(text);
    stopped.await;
    mock.shutdown()
        .await
        .map_err(|e| Failure::new(UNAVAILABLE, format!("the mock failed while stopping: {e}")))
}

/// Ctrl-C (SIGINT) or SIGTERM, as a container runtime sends to stop: both stop the mock
/// cleanly, with exit 0. Listening starts when this is called (before the mock says it is
/// ready), so a signal sent right after that is never missed.
pub fn stop_signal() -> Result<impl Future<Output = ()>, Failure> {
    let failed =
        |e: std::io::Error| Failure::new(USAGE, format!("could not wait for a stop signal: {e}"));
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).map_err(failed)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(failed)?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
