//! The store URL forms, read into what to connect to:
//!
//! - `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS: one server;
//! - `redis+cluster://[user:password@]host:port,host:port,...`, `rediss+cluster://`: a
//!   Redis Cluster, any of its nodes as seeds;
//! - `redis+sentinel://[user:password@]host:port,host:port/SERVICE[/db]`,
//!   `rediss+sentinel://`: the master of `SERVICE`, as the sentinels name it (the
//!   credentials and TLS are the master's; the sentinels are asked without them).
//!
//! A URL never turns certificate verification off: `#insecure` is refused.

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

use super::StoreError;

/// What a store URL points at.
pub(super) enum Topology {
    /// One server.
    Node(ConnectionInfo),
    /// The seeds of a Redis Cluster.
    Cluster(Vec<ConnectionInfo>),
    /// Sentinels, and the service whose master they name.
    Sentinel {
        sentinels: Vec<ConnectionAddr>,
        service: String,
        master: RedisConnectionInfo,
    },
}

/// A parsed store URL.
pub(super) struct Target {
    pub(super) topology: Topology,
    /// `rediss` schemes: TLS to every server.
    pub(super) tls: bool,
    /// The hosts and ports, for `Debug` and messages: never the credentials.
    pub(super) address: String,
}

/// The forms, for error messages.
const FORMS: &str = "redis://[user:password@]host[:port][/db], rediss://..., \
                     redis+cluster://host:port,host:port,..., \
                     redis+sentinel://host:port,host:port/SERVICE (and rediss+ forms for TLS)";

/// Reads `url`. The error names the forms, never the URL (it may hold a password).
pub(super) fn parse(url: &str) -> Result<Target, StoreError> {
    let misconfigured =
        |why: &str| StoreError::Config(format!("{why}; the store URL forms are {FORMS}"));
    if url.contains('#') {
        return Err(misconfigured(
            "the store URL has a #fragment: certificate checks cannot be turned off \
             (give the CA in VIPPS_TOKEN_STORE_CA instead)",
        ));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| misconfigured("the store URL has no scheme"))?;
    let (tls, kind) = match scheme {
        "redis" | "valkey" => (false, Kind::Node),
        "rediss" | "valkeys" => (true, Kind::Node),
        "redis+cluster" => (false, Kind::Cluster),
        "rediss+cluster" => (true, Kind::Cluster),
        "redis+sentinel" => (false, Kind::Sentinel),
        "rediss+sentinel" => (true, Kind::Sentinel),
        _ => return Err(misconfigured("the store URL's scheme is not one of them")),
    };
    let node_scheme = if tls { "rediss" } else { "redis" };
    let bad = |_| misconfigured("the store URL does not parse");
    match kind {
        Kind::Node => {
            let info = url.into_connection_info().map_err(bad)?;
            let address = info.addr().to_string();
            Ok(Target {
                topology: Topology::Node(info),
                tls,
                address,
            })
        }
        Kind::Cluster | Kind::Sentinel => {
            let (credentials, rest) = match rest.rsplit_once('@') {
                Some((credentials, rest)) => (Some(credentials), rest),
                None => (None, rest),
            };
            let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
            let hosts: Vec<&str> = hosts.split(',').filter(|h| !h.is_empty()).collect();
            if hosts.is_empty() {
                return Err(misconfigured("the store URL names no host"));
            }
            let node = |host: &str, path: &str| {
                let credentials = credentials.map(|c| format!("{c}@")).unwrap_or_default();
                format!("{node_scheme}://{credentials}{host}/{path}").into_connection_info()
            };
            let address = hosts.join(",");
            if kind == Kind::Cluster {
                if !path.is_empty() {
                    return Err(misconfigured(
                        "a cluster URL has no path: a cluster has only db 0",
                    ));
                }
                let seeds = hosts
                    .iter()
                    .map(|host| node(host, ""))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(bad)?;
                return Ok(Target {
                    topology: Topology::Cluster(seeds),
                    tls,
                    address,
                });
            }
            let (service, db) = path.split_once('/').unwrap_or((path, ""));
            if service.is_empty() {
                return Err(misconfigured(
                    "a sentinel URL names its service after the hosts: /SERVICE",
                ));
            }
            let master = node(hosts[0], db).map_err(bad)?.redis_settings().clone();
            let sentinels = hosts
                .iter()
                .map(|host| {
                    Ok(format!("redis://{host}")
                        .into_connection_info()?
                        .addr()
                        .clone())
                })
                .collect::<Result<Vec<_>, redis::RedisError>>()
                .map_err(bad)?;
            Ok(Target {
                topology: Topology::Sentinel {
                    sentinels,
                    service: service.to_owned(),
                    master,
                },
                tls,
                address: format!("{address}/{service}"),
            })
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Node,
    Cluster,
    Sentinel,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_the_address_never_holds_the_password() {
        let node = parse("rediss://:example-password@127.0.0.1:6380/2").unwrap();
        assert!(node.tls);
        assert!(matches!(node.topology, Topology::Node(_)));
        let cluster =
            parse("redis+cluster://:example-password@127.0.0.1:7000,127.0.0.1:7001").unwrap();
        assert_eq!(cluster.address, "127.0.0.1:7000,127.0.0.1:7001");
        let Topology::Cluster(seeds) = &cluster.topology else {
            panic!("a cluster")
        };
        assert_eq!(seeds.len(), 2);
        assert_eq!(
            seeds[1].redis_settings().password(),
            Some("example-password")
        );
        let sentinel =
            parse("rediss+sentinel://:example-password@127.0.0.1:26379,127.0.0.1:26380/tokens/3")
                .unwrap();
        assert!(sentinel.tls);
        let Topology::Sentinel {
            sentinels,
            service,
            master,
        } = &sentinel.topology
        else {
            panic!("a sentinel")
        };
        assert_eq!(
            (sentinels.len(), service.as_str(), master.db()),
            (2, "tokens", 3)
        );
        assert_eq!(master.password(), Some("example-password"));
        for target in [&node, &cluster, &sentinel] {
            assert!(
                !target.address.contains("example-password"),
                "{}",
                target.address
            );
        }
    }

    #[test]
    fn verification_cannot_be_turned_off_and_errors_hide_the_url() {
        for url in [
            "rediss://:example-password@127.0.0.1:6380/#insecure",
            "memcached://:example-password@127.0.0.1",
            "redis+sentinel://:example-password@127.0.0.1:26379",
            "redis+cluster://",
        ] {
            let Err(StoreError::Config(message)) = parse(url) else {
                panic!("{url} refused")
            };
            assert!(!message.contains("example-password"), "{message}");
        }
    }
}
