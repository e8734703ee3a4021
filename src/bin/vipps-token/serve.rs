//! `mock`: the mock Access Token API in the foreground, until Ctrl-C.

use std::io::{self, Write};

use vipps_access_token::{
    Environment, LEGACY_TOKEN_PATH, PARTNER_TOKEN_PATH, RENAMED_PARTNER_TOKEN_PATH,
    mock::{MockServer, STANDARD_TOKEN_PATH},
};

use crate::{
    args::MockArgs,
    failure::{Failure, SERVER_OR_TRANSPORT},
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
        .map_err(|e| {
            Failure::new(
                SERVER_OR_TRANSPORT,
                format!("could not listen on {}: {e}", args.addr),
            )
        })?;
    if !args.addr.ip().is_loopback() {
        eprintln!(
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
         stop with Ctrl-C",
        url = mock.base_url(),
        id = keys.client_id.as_str(),
        secret = keys.client_secret.expose_secret(),
        key = keys.subscription_key.expose_secret(),
    );
    let mut stdout = io::stdout().lock();
    // Nothing to do if stdout is closed: the mock still serves.
    let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
    drop(stdout);
    tokio::signal::ctrl_c().await.map_err(|e| {
        Failure::new(
            SERVER_OR_TRANSPORT,
            format!("could not wait for Ctrl-C: {e}"),
        )
    })?;
    mock.shutdown()
        .await
        .map_err(|e| Failure::new(SERVER_OR_TRANSPORT, format!("the mock failed: {e}")))
}
