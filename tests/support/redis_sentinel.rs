//! Redis with Sentinel on loopback: a master, one replica, and one `redis-sentinel`
//! (quorum 1, a master is down after 300 ms) watching service `tokens`. Stopped when
//! dropped. Needs `redis_server.rs` and `redis_cluster.rs` (for free ports) beside it.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{redis_cluster::free_port, redis_server::RedisServer};

/// The service name the sentinel watches.
pub const SERVICE: &str = "tokens";

/// A master, its replica and a sentinel.
pub struct SentinelSetup {
    pub master: RedisServer,
    pub replica: RedisServer,
    sentinel: Child,
    pub sentinel_port: u16,
    dir: PathBuf,
}

impl SentinelSetup {
    /// Starts all three and waits until the sentinel knows the replica; None without
    /// redis-server (see `RedisServer::start`).
    pub fn start(test: &str) -> Option<Self> {
        let master = RedisServer::start(test)?;
        let master_port = master.port().to_string();
        let replica = RedisServer::start_with(test, &["--replicaof", "127.0.0.1", &master_port])?;
        let sentinel_port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "vipps-sentinel-{}-{sentinel_port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {sentinel_port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {SERVICE} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {SERVICE} 300\n\
                 sentinel failover-timeout {SERVICE} 2000\n",
                dir.display()
            ),
        )
        .unwrap();
        let mut sentinel = Command::new("redis-sentinel")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-sentinel runs (apt-get install redis-sentinel)");
        let stdout = sentinel.stdout.take().expect("its stdout");
        let mut lines = BufReader::new(stdout).lines();
        let watching = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("+monitor"));
        assert!(
            watching,
            "redis-sentinel exited before it watched the master"
        );
        std::thread::spawn(move || lines.for_each(drop));
        let setup = Self {
            master,
            replica,
            sentinel,
            sentinel_port,
            dir,
        };
        setup.until(|s| {
            s.ask(&["SENTINEL", "REPLICAS", SERVICE])
                .contains(&s.replica.port().to_string())
        });
        Some(setup)
    }

    /// `redis+sentinel://127.0.0.1:PORT/tokens`.
    pub fn url(&self) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}/{SERVICE}",
            self.sentinel_port
        )
    }

    /// Asks the sentinel; its answer as text.
    pub fn ask(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.sentinel_port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The port of the master the sentinel names now.
    pub fn master_port(&self) -> String {
        self.ask(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE])
            .lines()
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (at most 20 s) for `condition`: an event, not a timing.
    pub fn until(&self, condition: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !condition(self) {
            assert!(Instant::now() < deadline, "the sentinel never got there");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SentinelSetup {
    fn drop(&mut self) {
        let _ = self.sentinel.kill();
        let _ = self.sentinel.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
