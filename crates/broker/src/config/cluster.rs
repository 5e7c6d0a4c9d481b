//! [`ClusterConfig`]: the `[cluster]` section of the broker's TOML file.

use std::time::Duration;

use serde::Deserialize;

use crate::BrokerError;

/// Several nodes serving one instance over RocketMQ (`docs/cluster.md`). Present in the
/// configuration means this node is one of them; every node of an instance has the same
/// `instance` and `name_server`, and its own `node_id`.
///
/// ```
/// use mqgate_broker::BrokerConfig;
/// let config = BrokerConfig::from_toml_str(r#"
///     [cluster]
///     instance = "prod"
///     name_server = "10.0.0.5:9876"
///     node_id = "node-1"
/// "#)?;
/// let cluster = config.cluster.unwrap();
/// cluster.check()?;
/// assert_eq!(cluster.route_topic(), "mqgate_prod_route");
/// assert_eq!(cluster.heartbeat_ms.as_millis(), 2000);
/// # Ok::<(), mqgate_broker::BrokerError>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The instance every node of the cluster serves: the prefix of its RocketMQ topics and
    /// groups, so two instances can share one RocketMQ. Letters, digits, `-` and `_`.
    pub instance: String,
    /// The RocketMQ name server, `host:port` (several separated by `;`).
    pub name_server: String,
    /// This node's id: unique in the instance and the same across restarts (a restarted
    /// node finds its consumer offsets by it). Letters, digits, `-` and `_`.
    pub node_id: String,
    /// How often this node announces itself on the nodes topic, in milliseconds.
    #[serde(default = "default_heartbeat", with = "crate::config::millis")]
    pub heartbeat_ms: Duration,
    /// A peer silent this long (no heartbeat), in milliseconds, is no longer alive.
    #[serde(default = "default_dead_after", with = "crate::config::millis")]
    pub dead_after_ms: Duration,
    /// How long start-up may wait for RocketMQ to take this node's first heartbeat, in
    /// milliseconds; past it the node does not start.
    #[serde(default = "default_start_timeout", with = "crate::config::millis")]
    pub start_timeout_ms: Duration,
    /// How long one send to RocketMQ may take before it is retried, in milliseconds.
    #[serde(default = "default_send_timeout", with = "crate::config::millis")]
    pub send_timeout_ms: Duration,
    /// Most route messages waiting for RocketMQ; past it publishers wait.
    #[serde(default = "default_buffer")]
    pub buffer: usize,
}

fn default_heartbeat() -> Duration {
    Duration::from_millis(2000)
}

fn default_dead_after() -> Duration {
    Duration::from_millis(10_000)
}

fn default_start_timeout() -> Duration {
    Duration::from_millis(30_000)
}

fn default_send_timeout() -> Duration {
    Duration::from_millis(3000)
}

fn default_buffer() -> usize {
    10_000
}

/// The longest `instance` and `node_id`: RocketMQ names (topics, groups) stay under its
/// limit of 127 characters with the prefixes and suffixes they get.
const MAX_NAME: usize = 48;

impl ClusterConfig {
    /// A configuration with the defaults for everything but the three names.
    pub fn new(instance: &str, name_server: &str, node_id: &str) -> Self {
        ClusterConfig {
            instance: instance.to_owned(),
            name_server: name_server.to_owned(),
            node_id: node_id.to_owned(),
            heartbeat_ms: default_heartbeat(),
            dead_after_ms: default_dead_after(),
            start_timeout_ms: default_start_timeout(),
            send_timeout_ms: default_send_timeout(),
            buffer: default_buffer(),
        }
    }

    /// The topic every application message crosses nodes on.
    pub fn route_topic(&self) -> String {
        format!("mqgate_{}_route", self.instance)
    }

    /// The topic of the nodes' heartbeats.
    pub fn nodes_topic(&self) -> String {
        format!("mqgate_{}_nodes", self.instance)
    }

    /// The topic of the clients' presence (connect, disconnect, tcpclean, and the requests
    /// that act on a client wherever it is connected).
    pub fn presence_topic(&self) -> String {
        format!("mqgate_{}_presence", self.instance)
    }

    /// This node's consumer group on the route topic (its offsets there are where a
    /// restarted node resumes).
    pub fn route_group(&self) -> String {
        format!("mqgate_{}_node_{}", self.instance, self.node_id)
    }

    /// This node's consumer group on the nodes topic.
    pub fn nodes_group(&self) -> String {
        format!("mqgate_{}_node_{}_nodes", self.instance, self.node_id)
    }

    /// The topic of the registries' changes, and of the snapshots (registries and retained
    /// messages) a joining node is sent.
    pub fn registry_topic(&self) -> String {
        format!("mqgate_{}_registry", self.instance)
    }

    /// This node's consumer group on the registry topic.
    pub fn registry_group(&self) -> String {
        format!("mqgate_{}_node_{}_registry", self.instance, self.node_id)
    }

    /// This node's consumer group on the presence topic.
    pub fn presence_group(&self) -> String {
        format!("mqgate_{}_node_{}_presence", self.instance, self.node_id)
    }

    /// This node's producer group.
    pub fn producer_group(&self) -> String {
        format!("mqgate_{}_producer_{}", self.instance, self.node_id)
    }

    /// Checks every field, naming the one at fault.
    ///
    /// # Errors
    /// [`BrokerError::Config`] saying what is wrong and what is allowed.
    pub fn check(&self) -> Result<(), BrokerError> {
        let bad = |what: String| Err(BrokerError::Config(format!("[cluster] {what}")));
        for (field, value) in [("instance", &self.instance), ("node_id", &self.node_id)] {
            if value.is_empty() {
                return bad(format!("{field} is empty"));
            }
            if value.len() > MAX_NAME {
                return bad(format!(
                    "{field} {value:?} is longer than {MAX_NAME} characters"
                ));
            }
            if let Some(c) = value
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return bad(format!(
                    "{field} {value:?} has {c:?}: only letters, digits, '-' and '_' are allowed \
                     (it names RocketMQ topics and groups)"
                ));
            }
        }
        if self.name_server.trim().is_empty() {
            return bad("name_server is empty".to_owned());
        }
        if let Some(address) = self.name_server.split(';').map(str::trim).find(|a| {
            a.rsplit_once(':')
                .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        }) {
            return bad(format!(
                "name_server {address:?} is not host:port (several are separated by ';')"
            ));
        }
        if self.heartbeat_ms < Duration::from_millis(10) {
            return bad("heartbeat_ms must be at least 10".to_owned());
        }
        if self.dead_after_ms < self.heartbeat_ms * 2 {
            return bad(format!(
                "dead_after_ms ({}) must be at least twice heartbeat_ms ({}): one late heartbeat \
                 must not make a live node dead",
                self.dead_after_ms.as_millis(),
                self.heartbeat_ms.as_millis()
            ));
        }
        if self.start_timeout_ms.is_zero() || self.send_timeout_ms.is_zero() {
            return bad("start_timeout_ms and send_timeout_ms must be positive".to_owned());
        }
        if self.buffer == 0 {
            return bad("buffer must be at least 1".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::BrokerConfig;

    fn parse(extra: &str) -> Result<(), String> {
        let text = format!(
            "[cluster]\ninstance = \"i1\"\nname_server = \"127.0.0.1:9876\"\nnode_id = \"n1\"\n{extra}"
        );
        let config = BrokerConfig::from_toml_str(&text).map_err(|e| e.to_string())?;
        config
            .cluster
            .expect("section")
            .check()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_names() {
        let config = BrokerConfig::from_toml_str(
            "[cluster]\ninstance = \"i1\"\nname_server = \"ns:9876\"\nnode_id = \"n1\"",
        )
        .unwrap();
        let cluster = config.cluster.unwrap();
        cluster.check().unwrap();
        assert_eq!(cluster.heartbeat_ms.as_millis(), 2000);
        assert_eq!(cluster.dead_after_ms.as_millis(), 10_000);
        assert_eq!(cluster.route_topic(), "mqgate_i1_route");
        assert_eq!(cluster.nodes_topic(), "mqgate_i1_nodes");
        assert_eq!(cluster.route_group(), "mqgate_i1_node_n1");
        assert_eq!(cluster.nodes_group(), "mqgate_i1_node_n1_nodes");
        assert_eq!(cluster.presence_topic(), "mqgate_i1_presence");
        assert_eq!(cluster.presence_group(), "mqgate_i1_node_n1_presence");
        assert!(BrokerConfig::default().cluster.is_none());
    }

    #[test]
    fn the_example_files_commented_section_is_valid() {
        let section = crate::config::example_section("cluster");
        let config = BrokerConfig::from_toml_str(&section).unwrap();
        let cluster = config.cluster.unwrap();
        cluster.check().unwrap();
        assert_eq!(cluster.node_id, "node-1");
    }

    #[test]
    fn every_bad_field_is_named() {
        assert!(parse("").is_ok());
        for (extra, says) in [
            ("heartbeat_ms = 5", "heartbeat_ms"),
            (
                "heartbeat_ms = 2000\ndead_after_ms = 3000",
                "twice heartbeat_ms",
            ),
            ("buffer = 0", "buffer"),
            ("start_timeout_ms = 0", "start_timeout_ms"),
            ("typo = 1", "unknown field"),
        ] {
            let error = parse(extra).unwrap_err();
            assert!(error.contains(says), "{extra}: {error}");
        }
        for (text, says) in [
            (
                "instance = \"a b\"\nname_server = \"h:1\"\nnode_id = \"n\"",
                "instance \"a b\"",
            ),
            (
                "instance = \"i\"\nname_server = \"h:1\"\nnode_id = \"\"",
                "node_id is empty",
            ),
            (
                "instance = \"i\"\nname_server = \"h\"\nnode_id = \"n\"",
                "not host:port",
            ),
            (
                "instance = \"i\"\nname_server = \"h:1\"",
                "missing field `node_id`",
            ),
        ] {
            let error = match BrokerConfig::from_toml_str(&format!("[cluster]\n{text}")) {
                Ok(config) => config.cluster.unwrap().check().unwrap_err().to_string(),
                Err(error) => error.to_string(),
            };
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
