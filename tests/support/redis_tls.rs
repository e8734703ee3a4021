//! A `redis-server` serving TLS only, with a CA and a certificate for 127.0.0.1 made by
//! `openssl` in a temp dir of its own; a second, unrelated CA for the certificate that
//! does not verify. Needs `redis_server.rs` beside it.

use std::{path::PathBuf, process::Command};

use super::redis_server::RedisServer;

/// The server and the PEM files.
pub struct TlsRedis {
    pub server: RedisServer,
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// A CA that signed nothing here.
    pub other_ca: PathBuf,
    dir: PathBuf,
}

fn openssl(dir: &PathBuf, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A self-signed CA in `name.crt` / `name.key`.
fn make_ca(dir: &PathBuf, name: &str) {
    let (key, crt, subject) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={name}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "1",
            "-subj",
            &subject,
        ],
    );
}

impl TlsRedis {
    /// Starts it; None when redis-server is missing (see `RedisServer::start`).
    pub fn start(test: &str) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!(
            "vipps-redis-tls-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        make_ca(&dir, "ca");
        make_ca(&dir, "other-ca");
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "1",
                "-extfile",
                "san.ext",
            ],
        );
        let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let server = RedisServer::start_tls(
            test,
            &[
                "--tls-cert-file",
                &file("server.crt"),
                "--tls-key-file",
                &file("server.key"),
                "--tls-ca-cert-file",
                &file("ca.crt"),
                "--tls-auth-clients",
                "no",
            ],
        )?;
        Some(Self {
            server,
            ca: dir.join("ca.crt"),
            other_ca: dir.join("other-ca.crt"),
            dir,
        })
    }

    /// `rediss://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.server.port())
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
