//! Serving a router on a listener the way a broker must face its clients: a connection
//! limit (a client past it waits in the listen queue), a timeout on reading each request's
//! headers (a slow or idle client is closed) and on writing an answer (a client that
//! stops reading is closed), TLS when configured, and a graceful stop that finishes the
//! requests in flight, within a bound.

use std::{future::Future, io, path::Path, sync::Arc, time::Duration};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_io_timeout::TimeoutStream;
use tokio_rustls::TlsAcceptor;

use crate::error::Error;

/// How a broker serves its connections.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Connections served at once; past it, clients wait in the listen queue.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (and the TLS handshake),
    /// and how long an idle kept-alive connection stays open.
    pub header_read_timeout: Duration,
    /// How long writing to a client may stall (it reads nothing) before it is closed.
    pub write_timeout: Duration,
    /// How long a stop waits for the requests in flight before it closes them.
    pub shutdown_timeout: Duration,
    /// TLS for every connection, from [`tls_config`]; `None`: plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            // Below the common limit of 1024 open files, with room for the upstream's
            // sockets and the store's files.
            max_connections: 512,
            header_read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(25),
            tls: None,
        }
    }
}

/// A TLS configuration from a PEM certificate chain and a PEM private key, with rustls
/// and `ring`. The error names the file at fault.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, Error> {
    let invalid = |path: &Path, reason: String| {
        Error::invalid_input("tls", format!("{}: {reason}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| invalid(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(invalid(cert, "holds no PEM certificate".to_owned()));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| invalid(key, format!("does not match the certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits
/// for the connections in flight to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let tls = options.tls.clone().map(TlsAcceptor::from);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.map_err(io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(%error, "the broker could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(options.write_timeout));
        let stream = Box::pin(stream);
        let service = TowerToHyperService::new(router.clone());
        let http = http.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = options.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => {
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                    let Ok(Ok(stream)) = handshake.await else {
                        return;
                    };
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(options.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout = ?options.shutdown_timeout,
            "the broker stopped with requests still in flight"
        );
    }
    Ok(())
}
