//! [`RocketMqConfig`]: the `[rocketmq]` section of the broker's TOML file.

use std::time::Duration;

use mqgate_rocketmq::{BridgeRules, InflowRule, OutflowRule, PropertyStyle, RuleSet, StatusRule};
use serde::Deserialize;

use crate::BrokerError;

/// When a QoS 1 or 2 message that an outflow rule covers is acknowledged to its publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckAfter {
    /// Once mqgate's own subscribers took it; the copy for RocketMQ waits in the bridge's
    /// buffer (lost if the broker stops before RocketMQ took it).
    Broker,
    /// Once RocketMQ accepted it as well: nothing acknowledged is lost while RocketMQ is
    /// down, and a publisher waits (backpressure) until RocketMQ is back. The default.
    #[default]
    Rocketmq,
}

/// Where a consumer group that RocketMQ has never seen starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsumeFrom {
    /// Only messages produced after the group first subscribed. The default.
    #[default]
    Last,
    /// Everything the topic still holds.
    First,
}

/// The RocketMQ bridge: where RocketMQ is, the groups this node uses, and
/// the outflow / inflow / status rules. Present in the configuration means enabled.
///
/// ```
/// use mqgate_broker::{AckAfter, BrokerConfig};
/// let config = BrokerConfig::from_toml_str(r#"
///     [rocketmq]
///     name_server = "127.0.0.1:9876"
///     consumer_group = "GID_mqgate_node1"
///     ack_after = "rocketmq"
///     [[rocketmq.outflow]]
///     mqtt_parent_topic = "sensors"
///     [[rocketmq.inflow]]
///     rocketmq_topic = "commands"
///     [[rocketmq.status]]
///     group_id = "GID_devices"
///     rocketmq_topic = "device_status"
/// "#)?;
/// let rocketmq = config.rocketmq.unwrap();
/// assert_eq!(rocketmq.ack_after, AckAfter::Rocketmq);
/// assert_eq!(rocketmq.rules()?.outflow_for("sensors"), Some("sensors"));
/// # Ok::<(), mqgate_broker::BrokerError>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RocketMqConfig {
    /// The name server, `host:port` (several separated by `;`).
    pub name_server: String,
    /// The producer group of outflow and status messages.
    pub producer_group: String,
    /// This node's consumer group. Each inflow rule consumes in its own group
    /// `{consumer_group}_{rocketmq_topic}`, so every node sees every inflow message and
    /// delivers it to the clients connected to it.
    pub consumer_group: String,
    /// When outflow QoS 1/2 messages are acknowledged to their publisher.
    pub ack_after: AckAfter,
    /// Where a new consumer group starts.
    pub consume_from: ConsumeFrom,
    /// Most outflow and status messages waiting for RocketMQ; past it publishers wait.
    pub buffer: usize,
    /// Most outflow sends to RocketMQ under way at once: the outflow's lanes, each keeping
    /// the copies of the publishers it serves in order (one send at a time per lane).
    pub max_in_flight: usize,
    /// First retry delay after a failed send, in milliseconds; doubles up to `retry_max_ms`.
    #[serde(with = "crate::config::millis")]
    pub retry_min_ms: Duration,
    /// Longest retry delay, in milliseconds.
    #[serde(with = "crate::config::millis")]
    pub retry_max_ms: Duration,
    /// How long one send may take before it counts as failed, in milliseconds.
    #[serde(with = "crate::config::millis")]
    pub send_timeout_ms: Duration,
    /// Outflow rules: MQTT parent topic -> RocketMQ topic.
    pub outflow: Vec<OutflowRule>,
    /// Inflow rules: RocketMQ topic -> MQTT parent topic.
    pub inflow: Vec<InflowRule>,
    /// Status rules: group id -> RocketMQ topic of its status events.
    pub status: Vec<StatusRule>,
    /// Which spelling of `qoslevel` / `cleansessionflag` outflow writes.
    pub property_style: PropertyStyle,
}

impl Default for RocketMqConfig {
    fn default() -> Self {
        RocketMqConfig {
            name_server: "127.0.0.1:9876".to_owned(),
            producer_group: "GID_mqgate_producer".to_owned(),
            consumer_group: "GID_mqgate".to_owned(),
            ack_after: AckAfter::default(),
            consume_from: ConsumeFrom::default(),
            buffer: 10_000,
            max_in_flight: 64,
            retry_min_ms: Duration::from_millis(100),
            retry_max_ms: Duration::from_secs(5),
            send_timeout_ms: Duration::from_secs(3),
            outflow: Vec::new(),
            inflow: Vec::new(),
            status: Vec::new(),
            property_style: PropertyStyle::default(),
        }
    }
}

impl RocketMqConfig {
    /// The rules, validated and compiled.
    ///
    /// # Errors
    /// [`BrokerError::Config`] naming the rule and field at fault.
    pub fn rules(&self) -> Result<RuleSet, BrokerError> {
        BridgeRules {
            outflow: self.outflow.clone(),
            inflow: self.inflow.clone(),
            status: self.status.clone(),
            property_style: self.property_style,
        }
        .compile()
        .map_err(|e| BrokerError::Config(format!("[rocketmq] {e}")))
    }

    /// The consumer group an inflow rule for `rocketmq_topic` consumes in.
    pub fn inflow_group(&self, rocketmq_topic: &str) -> String {
        format!("{}_{rocketmq_topic}", self.consumer_group)
    }

    pub(crate) fn check(&self) -> Result<(), BrokerError> {
        let bad = |what: &str| Err(BrokerError::Config(format!("[rocketmq] {what}")));
        if self.name_server.trim().is_empty() {
            return bad("name_server is empty");
        }
        if self.producer_group.is_empty() || self.consumer_group.is_empty() {
            return bad("producer_group and consumer_group must not be empty");
        }
        if self.buffer == 0 || self.max_in_flight == 0 {
            return bad("buffer and max_in_flight must be at least 1");
        }
        if self.retry_min_ms.is_zero() || self.retry_max_ms < self.retry_min_ms {
            return bad("retry_min_ms must be positive and at most retry_max_ms");
        }
        self.rules().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use crate::BrokerConfig;

    #[test]
    fn defaults_and_validation() {
        let config = BrokerConfig::from_toml_str("[rocketmq]\n").unwrap();
        let rocketmq = config.rocketmq.unwrap();
        assert_eq!(rocketmq.buffer, 10_000);
        assert!(rocketmq.check().is_ok());
        assert_eq!(rocketmq.inflow_group("cmd"), "GID_mqgate_cmd");
        for bad in [
            "[rocketmq]\nbuffer = 0",
            "[rocketmq]\nretry_min_ms = 10\nretry_max_ms = 5",
            "[rocketmq]\nname_server = \"\"",
            "[rocketmq]\n[[rocketmq.outflow]]\nmqtt_parent_topic = \"a/b\"",
        ] {
            let config = BrokerConfig::from_toml_str(bad).unwrap();
            assert!(config.rocketmq.unwrap().check().is_err(), "{bad}");
        }
        assert!(BrokerConfig::from_toml_str("[rocketmq]\nack_after = \"never\"").is_err());
        assert!(BrokerConfig::from_toml_str("[rocketmq]\ntypo = 1").is_err());
    }

    #[test]
    fn the_example_files_commented_section_is_valid() {
        let section = crate::config::example_section("rocketmq");
        let config = BrokerConfig::from_toml_str(&section).unwrap();
        let rocketmq = config.rocketmq.unwrap();
        rocketmq.check().unwrap();
        let rules = rocketmq.rules().unwrap();
        assert_eq!(rules.outflow_for("sensors"), Some("SensorReports"));
        assert_eq!(rules.inflow_for("Commands"), Some("cmd"));
        assert_eq!(rules.status_for("GID_devices"), Some("DeviceStatus"));
    }
}
