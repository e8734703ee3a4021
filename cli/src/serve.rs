//! `serve`: the token broker in the foreground, until SIGTERM or Ctrl-C. Any client of the
//! Access Token API (PHP, Node, Python, .NET) shares its tokens by pointing its base URL
//! here. The first line on stdout is the base URL served, so that `--addr 127.0.0.1:0`
//! works in scripts.

use std::{net::SocketAddr, sync::Arc};

use metrics_exporter_prometheus::PrometheusBuilder;
use vipps_access_token::{
    ClientBuilder, Environment, RetryPolicy, TokenSource,
    broker::{Broker, ServeOptions, serve, tls_config},
    store::{SealingKeys, TokenStore},
};

use crate::{
    args::{ServeArgs, UpstreamEnv},
    failure::{Failure, UNAVAILABLE, USAGE},
    output, store,
};

/// Runs the broker until a stop signal, then finishes the requests in flight.
pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    let upstream = match (&args.upstream, args.env) {
        (Some(url), _) => url.clone(),
        (None, UpstreamEnv::Test) => Environment::Test.base_url().to_owned(),
        (None, UpstreamEnv::Production) => Environment::Production.base_url().to_owned(),
    };
    crate::session::refuse_plain_http(&upstream, "--upstream")?;
    let client = ClientBuilder::with_base_url(upstream)
        .timeout(args.upstream_timeout)
        .retry_policy(RetryPolicy {
            max_total: args.upstream_timeout.min(RetryPolicy::default().max_total),
            ..RetryPolicy::default()
        })
        .build()
        .map_err(|e| Failure::usage(format!("--upstream: {e}")))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(tls_config(cert, key).map_err(|e| Failure::usage(e.to_string()))?)
        }
        (None, None) => None,
        _ => {
            return Err(Failure::usage(
                "--tls-cert and --tls-key go together: give both",
            ));
        }
    };
    if tls.is_none() && !args.addr.ip().is_loopback() {
        return Err(Failure::usage(format!(
            "--addr {}: serving beyond this machine needs TLS, as callers send their keys: \
             pass --tls-cert and --tls-key (PEM files), or listen on 127.0.0.1",
            args.addr
        )));
    }

    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Failure::new(USAGE, format!("could not set up metrics: {e}")))?;
    let mut broker = Broker::builder(client)
        .metrics(Arc::new(move || prometheus.render()))
        .max_keys(args.max_keys)
        .body_timeout(args.header_timeout);
    if let Some(store_for) = stores(&args)? {
        broker = broker.store_per_keys(store_for);
    }
    let broker = broker
        .build()
        .map_err(|e| Failure::new(USAGE, e.to_string()))?;

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| Failure::usage(format!("could not listen on {}: {e}", args.addr)))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| Failure::usage(format!("could not listen on {}: {e}", args.addr)))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let stopped = crate::mock::stop_signal()?;
    output::line(format_args!("{scheme}://{addr}"));
    output::note(format_args!(
        "vipps-token serve: brokering tokens from {} on {scheme}://{addr}; stop with Ctrl-C or SIGTERM",
        broker.upstream()
    ));
    let mut options = ServeOptions::default();
    options.max_connections = args.max_connections;
    options.header_read_timeout = args.header_timeout;
    options.write_timeout = args.header_timeout;
    options.tls = tls;
    let served = serve(listener, broker.router(), options, stopped).await;
    // Records are saved after their token is handed out; the next broker needs them.
    vipps_access_token::store::settle(SAVE_WAIT).await;
    served.map_err(|e| Failure::new(UNAVAILABLE, format!("the broker stopped: {e}")))
}

/// How long a stopping broker waits for the records still on their way to the store.
const SAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The store each caller's keys share their token through: the Redis of `--store`, one
/// for all; or the file cache (by default, or `--store file:DIR`), sealed with
/// `VIPPS_TOKEN_STORE_KEY` when set, else under a key derived from each caller's own
/// secret. `None` with `--no-cache`.
type StoreFor = Box<dyn Fn(&TokenSource) -> Option<Arc<dyn TokenStore>> + Send + Sync>;

fn stores(args: &ServeArgs) -> Result<Option<StoreFor>, Failure> {
    if args.store.no_cache {
        return Ok(None);
    }
    let dir = match &args.store.store {
        Some(url) => match url.strip_prefix("file:") {
            Some(dir) => std::path::PathBuf::from(dir),
            None => {
                let shared = store::try_open(url, None).map_err(Failure::usage)?;
                return Ok(Some(Box::new(move |_: &TokenSource| Some(shared.clone()))));
            }
        },
        None => match store::default_dir() {
            Some(dir) => dir,
            None => return Ok(None),
        },
    };
    // Opened once, so that a directory that cannot be used fails at the start, and every
    // caller's store shares its one open handle.
    let file = store::open_file(&dir, None)
        .map_err(|e| Failure::usage(format!("{e}; or pass --no-cache")))?;
    if std::env::var_os(store::KEY_VARIABLE).is_some() {
        let shared: Arc<dyn TokenStore> = Arc::new(file);
        return Ok(Some(Box::new(move |_: &TokenSource| Some(shared.clone()))));
    }
    Ok(Some(Box::new(move |source: &TokenSource| {
        let secret = match source {
            TokenSource::Standard(credentials) | TokenSource::Legacy { credentials, .. } => {
                &credentials.client_secret
            }
            TokenSource::Partner { credentials, .. } => &credentials.client_secret,
            _ => return None,
        };
        let sealed = file.with_sealing_keys(SealingKeys::from_client_secret(secret));
        Some(Arc::new(sealed) as Arc<dyn TokenStore>)
    })))
}
