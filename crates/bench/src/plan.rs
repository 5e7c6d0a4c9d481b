//! What a scenario means in connections, subscriptions and topics.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::protocol::MqttVersion;
use crate::BenchError;

/// The load shapes the generator runs (described in the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// N publishers (default 4) to one subscriber on one topic.
    FanIn,
    /// One publisher to N subscribers (default 100) on one topic.
    FanOut,
    /// N subscribers (default 10 k) each on `dev/{i}/cmd`; publishes to random ones.
    ManyTopics,
    /// As many-topics, but addressed `bench/p2p/{clientId}` with no subscription (mqgate).
    P2p,
    /// N filters (default 10 k) mixing `+` and `#`; each publish matches exactly one.
    Wildcard,
    /// One publisher at a fixed rate to one subscriber; percentiles of the delay.
    Latency,
    /// N idle connections: connect rate and broker memory per connection.
    Connections,
    /// N persistent sessions (default 1 000) on `dev/{i}/cmd`, offline; QoS 1 publishes
    /// spread over them must be stored durably before their PUBACK (`mqgate-bench durable`).
    Durable,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::FanIn => "fan-in",
            Scenario::FanOut => "fan-out",
            Scenario::ManyTopics => "many-topics",
            Scenario::P2p => "p2p",
            Scenario::Wildcard => "wildcard",
            Scenario::Latency => "latency",
            Scenario::Connections => "connections",
            Scenario::Durable => "durable",
        })
    }
}

/// Everything one run needs; `mqgate-bench run` fills it from the command line.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Broker address (checked by [`crate::check_target`] before anything connects).
    pub target: SocketAddr,
    /// Where the publishers connect, when not to `target` (traffic scenarios): another node
    /// of a cluster, so every message crosses from one node to the other. Checked like
    /// `target`.
    pub publish_to: Option<SocketAddr>,
    /// Label for the report (`mqgate`, `mosquitto`, `rumqttd`).
    pub label: String,
    /// Broker process to read CPU and memory from.
    pub broker_pid: Option<u32>,
    /// The load shape.
    pub scenario: Scenario,
    /// QoS of publishes and subscriptions (0 or 1).
    pub qos: u8,
    /// Payload size in bytes (at least 16: the stamp).
    pub payload: usize,
    /// Messages to publish in total (connections: ignored).
    pub messages: u64,
    /// Hard bound on the run, setup included.
    pub seconds: f64,
    /// Publisher connections (0: the scenario's default).
    pub publishers: usize,
    /// Subscriber connections, filters for wildcard, or idle connections (0: default).
    pub clients: usize,
    /// Messages per second for the latency scenario.
    pub rate: u64,
    /// QoS 1 messages in flight per publisher.
    pub inflight: usize,
    /// Connections driven by one task.
    pub connections_per_task: usize,
    /// Connections scenario: handshakes in progress at once (0 counts as 1).
    pub handshakes: usize,
    /// Protocol of every connection (traffic and connections scenarios; durable runs on
    /// 3.1.1).
    pub mqtt: MqttVersion,
}

impl RunConfig {
    /// A configuration with the defaults of `mqgate-bench run` for `scenario` at `target`.
    pub fn new(target: SocketAddr, scenario: Scenario) -> Self {
        RunConfig {
            target,
            publish_to: None,
            label: "broker".into(),
            broker_pid: None,
            scenario,
            qos: 0,
            payload: 64,
            messages: 100_000,
            seconds: 10.0,
            publishers: 0,
            clients: 0,
            rate: 10_000,
            inflight: 256,
            connections_per_task: 64,
            handshakes: 128,
            mqtt: MqttVersion::V311,
        }
    }

    /// Where the publishers connect.
    pub fn publisher_target(&self) -> SocketAddr {
        self.publish_to.unwrap_or(self.target)
    }

    /// Publisher connections after defaults.
    pub fn publisher_count(&self) -> usize {
        match (self.publishers, self.scenario) {
            (0, Scenario::FanIn | Scenario::Durable) => 4,
            (0, _) => 1,
            (n, _) => n,
        }
    }

    /// Subscriber connections (filters for wildcard, idle clients for connections).
    pub fn client_count(&self) -> usize {
        match (self.clients, self.scenario) {
            (0, Scenario::FanIn | Scenario::Latency) => 1,
            (0, Scenario::FanOut) => 100,
            (0, Scenario::Durable) => 1_000,
            (0, _) => 10_000,
            (n, _) => n,
        }
    }
}

/// Filters per subscriber connection in the wildcard scenario.
pub const WILDCARD_FILTERS_PER_CONNECTION: usize = 100;

/// The connections, subscriptions and topic of every message of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Scenario it was built for.
    pub scenario: Scenario,
    /// Client id and filters of each subscriber connection.
    pub subscribers: Vec<(String, Vec<String>)>,
    /// How many receivers each message should reach.
    pub receivers_per_message: u64,
    targets: usize,
}

/// Client id of subscriber `i` (valid for mqgate's `GID_...@@@...` rule too).
pub fn subscriber_id(i: usize) -> String {
    format!("GID_bench@@@s{i}")
}

/// Client id of publisher `i`.
pub fn publisher_id(i: usize) -> String {
    format!("GID_bench@@@p{i}")
}

/// The single topic of fan-in, fan-out and latency.
pub const SHARED_TOPIC: &str = "bench/shared";

impl Plan {
    /// Lays out `config`'s scenario.
    pub fn new(config: &RunConfig) -> Result<Plan, BenchError> {
        let n = config.client_count();
        if n == 0 || config.publisher_count() == 0 || config.messages == 0 {
            return Err(BenchError::InvalidPlan(
                "needs publishers, clients and messages",
            ));
        }
        let one = |filters: fn(usize) -> Vec<String>| -> Vec<(String, Vec<String>)> {
            (0..n).map(|i| (subscriber_id(i), filters(i))).collect()
        };
        let (subscribers, receivers_per_message, targets) = match config.scenario {
            Scenario::FanIn | Scenario::Latency | Scenario::FanOut => {
                let subs = one(|_| vec![SHARED_TOPIC.to_owned()]);
                let fan = if config.scenario == Scenario::FanOut {
                    n
                } else {
                    1
                };
                (subs, fan as u64, 1)
            }
            Scenario::ManyTopics | Scenario::Durable => {
                (one(|i| vec![format!("dev/{i}/cmd")]), 1, n)
            }
            Scenario::P2p => (one(|_| Vec::new()), 1, n),
            Scenario::Wildcard => {
                let connections = n.div_ceil(WILDCARD_FILTERS_PER_CONNECTION);
                let mut subs: Vec<(String, Vec<String>)> = (0..connections)
                    .map(|c| (subscriber_id(c), Vec::new()))
                    .collect();
                for j in 0..n {
                    if let Some((_, filters)) = subs.get_mut(j % connections) {
                        filters.push(wildcard_filter(j));
                    }
                }
                (subs, 1, n)
            }
            Scenario::Connections => {
                return Err(BenchError::InvalidPlan("connections has no traffic plan"))
            }
        };
        Ok(Plan {
            scenario: config.scenario,
            subscribers,
            receivers_per_message,
            targets,
        })
    }

    /// The topic message `sequence` is published to, and which subscriber connection should
    /// get it (`None`: every one, fan-out).
    pub fn topic(&self, sequence: u64) -> (String, Option<usize>) {
        let pick = usize::try_from(mix(sequence) % self.targets.max(1) as u64).unwrap_or(0);
        match self.scenario {
            Scenario::ManyTopics | Scenario::Durable => (format!("dev/{pick}/cmd"), Some(pick)),
            Scenario::P2p => (format!("bench/p2p/{}", subscriber_id(pick)), Some(pick)),
            Scenario::Wildcard => {
                let connections = self.subscribers.len().max(1);
                (wildcard_topic(pick), Some(pick % connections))
            }
            Scenario::FanOut => (SHARED_TOPIC.to_owned(), None),
            _ => (SHARED_TOPIC.to_owned(), Some(0)),
        }
    }

    /// Whether every message goes to the one shared topic (so it is encoded once per run).
    pub fn single_topic(&self) -> bool {
        matches!(
            self.scenario,
            Scenario::FanIn | Scenario::FanOut | Scenario::Latency
        )
    }
}

/// Filter `j` of the wildcard scenario: three shapes, `+` in the middle, `#` at the end, `+`
/// first. Numbers never collide with the literal levels, so [`wildcard_topic`]`(j)` matches
/// filter `j` and no other.
pub fn wildcard_filter(j: usize) -> String {
    match j % 3 {
        0 => format!("wc/{j}/+/state"),
        1 => format!("wc/{j}/#"),
        _ => format!("wc/+/{j}/cmd"),
    }
}

/// A topic matching exactly [`wildcard_filter`]`(j)` among all filters of the scenario.
pub fn wildcard_topic(j: usize) -> String {
    match j % 3 {
        0 => format!("wc/{j}/x/state"),
        1 => format!("wc/{j}/x/y/z"),
        _ => format!("wc/n/{j}/cmd"),
    }
}

/// splitmix64: a fixed pseudo-random spread of sequence numbers over targets, the same for
/// every broker so runs are comparable.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A naive MQTT matcher, independent of the broker's trie.
    fn matches(filter: &str, topic: &str) -> bool {
        let (mut f, mut t) = (filter.split('/'), topic.split('/'));
        loop {
            match (f.next(), t.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => continue,
                (Some(a), Some(b)) if a == b => continue,
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    #[test]
    fn each_wildcard_topic_matches_exactly_its_filter() {
        let filters: Vec<String> = (0..300).map(wildcard_filter).collect();
        for j in 0..300 {
            let topic = wildcard_topic(j);
            let hits: Vec<usize> = (0..300).filter(|&k| matches(&filters[k], &topic)).collect();
            assert_eq!(hits, vec![j], "{topic}");
        }
        assert!(
            filters.iter().any(|f| f.contains('+')) && filters.iter().any(|f| f.ends_with('#'))
        );
    }

    #[test]
    fn plans_route_to_the_subscriber_that_holds_the_filter() {
        let target = "127.0.0.1:1883".parse().unwrap();
        for scenario in [Scenario::ManyTopics, Scenario::Wildcard, Scenario::FanIn] {
            let mut config = RunConfig::new(target, scenario);
            config.clients = 500;
            let plan = Plan::new(&config).unwrap();
            for m in 0..1000 {
                let (topic, who) = plan.topic(m);
                let (_, filters) = &plan.subscribers[who.unwrap()];
                assert!(
                    filters.iter().any(|f| matches(f, &topic)),
                    "{scenario} {topic}"
                );
            }
        }
    }

    #[test]
    fn defaults_match_the_documented_scenarios() {
        let target = "127.0.0.1:1883".parse().unwrap();
        let table = [
            (Scenario::FanIn, 4, 1),
            (Scenario::FanOut, 1, 100),
            (Scenario::ManyTopics, 1, 10_000),
            (Scenario::Wildcard, 1, 10_000),
            (Scenario::Latency, 1, 1),
        ];
        for (scenario, publishers, clients) in table {
            let c = RunConfig::new(target, scenario);
            assert_eq!(
                (c.publisher_count(), c.client_count()),
                (publishers, clients)
            );
        }
        let mut c = RunConfig::new(target, Scenario::Wildcard);
        c.clients = 10_000;
        assert_eq!(Plan::new(&c).unwrap().subscribers.len(), 100);
    }
}
