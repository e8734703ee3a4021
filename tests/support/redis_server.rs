//! A real `redis-server` (or `valkey-server`, `VIPPS_REDIS_SERVER=valkey-server`) started
//! by a test on a free loopback port, with no persistence, in a temp dir of its own.
//!
//! Without the binary the test is skipped with a message saying so, unless
//! `VIPPS_REQUIRE_REDIS=1` (set by `.ci/run`) makes that a failure.

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

/// A server for the test `$name`, or a return from the test (skipped, saying why) when
/// none is installed.
#[allow(unused_macros)]
macro_rules! redis_or_skip {
    ($name:literal) => {
        match RedisServer::start($name) {
            Some(server) => server,
            None => return,
        }
    };
}

/// A running server; killed when dropped.
pub struct RedisServer {
    binary: String,
    extra_args: Vec<String>,
    port: u16,
    /// The port serves TLS only (`--tls-port`).
    tls: bool,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server, or returns None (after saying why) when none is installed.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, &[])
    }

    /// [`Self::start`] with more arguments for `redis-server`, such as `--requirepass`.
    pub fn start_with(test: &str, extra_args: &[&str]) -> Option<Self> {
        Self::start_inner(test, extra_args, false)
    }

    /// A server whose port serves TLS only; `extra_args` name its certificate and key.
    #[allow(dead_code)]
    pub fn start_tls(test: &str, extra_args: &[&str]) -> Option<Self> {
        Self::start_inner(test, extra_args, true)
    }

    fn start_inner(test: &str, extra_args: &[&str], tls: bool) -> Option<Self> {
        let binary = std::env::var("VIPPS_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        if Command::new(&binary).arg("--version").output().is_err() {
            let required = std::env::var("VIPPS_REQUIRE_REDIS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "VIPPS_REQUIRE_REDIS=1 but `{binary}` is not on PATH: install redis-server"
            );
            // Straight to stderr, past the test harness's capture: a skip must show.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: `{binary}` is not on PATH (apt-get install redis-server); \
                 set VIPPS_REQUIRE_REDIS=1 to make this a failure"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = std::env::temp_dir().join(format!("vipps-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir for redis");
        let mut server = Self {
            binary,
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
            port,
            tls,
            dir,
            child: None,
        };
        server.restart();
        Some(server)
    }

    /// (Re)starts the server on the same port, empty, and waits until it says it is ready.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        let ports: [&str; 4] = if self.tls {
            ["--port", "0", "--tls-port", &port]
        } else {
            ["--port", &port, "--bind", "127.0.0.1"]
        };
        let mut child = Command::new(&self.binary)
            .args(ports)
            .args(["--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "yes",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let stdout = child.stdout.take().expect("redis-server's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("Ready to accept connections"));
        assert!(ready, "redis-server exited before it was ready");
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        self.child = Some(child);
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The loopback port.
    #[allow(dead_code)]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `redis-cli` against this server with `args`; its stdout.
    #[allow(dead_code)]
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs (apt-get install redis-tools)");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Whether the server still runs.
    #[allow(dead_code)]
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
