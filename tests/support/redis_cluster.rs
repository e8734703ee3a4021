//! A real Redis Cluster on loopback: three `redis-server --cluster-enabled yes` masters
//! (no replicas) joined by `redis-cli --cluster create`, each on free ports of its own
//! (the cluster bus too). Stopped when dropped. Needs `redis_server.rs` beside it.

use std::{
    net::TcpListener,
    process::Command,
    time::{Duration, Instant},
};

use super::redis_server::RedisServer;

/// A running three-master cluster.
pub struct RedisCluster {
    pub masters: Vec<RedisServer>,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

impl RedisCluster {
    /// Starts the cluster and waits until every slot is served; None when redis-server or
    /// redis-cli is missing (after saying so, unless `VIPPS_REQUIRE_REDIS=1`).
    pub fn start(test: &str) -> Option<Self> {
        let mut masters = Vec::new();
        for _ in 0..3 {
            let bus = free_port().to_string();
            masters.push(RedisServer::start_with(
                test,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus,
                    "--cluster-node-timeout",
                    "1000",
                ],
            )?);
        }
        let nodes: Vec<String> = masters
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port()))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs (apt-get install redis-tools)");
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Self { masters };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cluster
            .masters
            .iter()
            .all(|m| m.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "the cluster never became ok");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(cluster)
    }

    /// `redis+cluster://127.0.0.1:A,127.0.0.1:B,127.0.0.1:C`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .masters
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port()))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// How many keys each master holds.
    pub fn keys_per_master(&self) -> Vec<usize> {
        self.masters
            .iter()
            .map(|m| m.cli(&["DBSIZE"]).trim().parse().unwrap_or(0))
            .collect()
    }
}
