//! Bridge rules: which traffic crosses to RocketMQ and back.

use core::fmt;

use std::collections::HashMap;

use mqgate_topic::{DEFAULT_MAX_GROUP_ID_LEN, GROUP_PREFIX};
use serde::{Deserialize, Serialize};

use crate::PropertyStyle;

/// Longest RocketMQ topic name, in characters (RocketMQ's own limit).
pub const MAX_ROCKETMQ_TOPIC_LEN: usize = 127;

/// Outflow: every message published under `mqtt_parent_topic` is also sent
/// to a RocketMQ topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutflowRule {
    /// The MQTT parent (first-level) topic, e.g. `sensors`.
    pub mqtt_parent_topic: String,
    /// The RocketMQ topic; absent means the parent topic's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rocketmq_topic: Option<String>,
}

impl OutflowRule {
    /// The RocketMQ topic messages go to.
    #[must_use]
    pub fn target(&self) -> &str {
        self.rocketmq_topic
            .as_deref()
            .unwrap_or(&self.mqtt_parent_topic)
    }
}

/// Inflow: messages produced to `rocketmq_topic` are pushed to MQTT clients
/// under an MQTT parent topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InflowRule {
    /// The RocketMQ topic consumed.
    pub rocketmq_topic: String,
    /// The MQTT parent topic; absent means the RocketMQ topic's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt_parent_topic: Option<String>,
}

impl InflowRule {
    /// The MQTT parent topic messages arrive under.
    #[must_use]
    pub fn target(&self) -> &str {
        self.mqtt_parent_topic
            .as_deref()
            .unwrap_or(&self.rocketmq_topic)
    }
}

/// Status notification: the connect / disconnect / tcpclean events of the
/// clients of `group_id` go to `rocketmq_topic`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRule {
    /// The group, `GID_...`.
    pub group_id: String,
    /// The RocketMQ topic the events go to.
    pub rocketmq_topic: String,
}

/// All the bridge's rules, as they come from configuration. Check them with
/// [`BridgeRules::validate`], or build the lookup tables with
/// [`BridgeRules::compile`], which validates first.
///
/// ```
/// use mqgate_rocketmq::BridgeRules;
///
/// let rules: BridgeRules = serde_json::from_str(r#"{
///     "outflow": [{ "mqtt_parent_topic": "sensors", "rocketmq_topic": "sensor_reports" }],
///     "inflow":  [{ "rocketmq_topic": "commands" }],
///     "status":  [{ "group_id": "GID_devices", "rocketmq_topic": "device_status" }]
/// }"#).unwrap();
/// let rules = rules.compile()?;
/// assert_eq!(rules.outflow_for("sensors"), Some("sensor_reports"));
/// assert_eq!(rules.inflow_for("commands"), Some("commands"));
/// assert_eq!(rules.status_for("GID_devices"), Some("device_status"));
/// assert_eq!(rules.outflow_for("other"), None);
/// # Ok::<(), mqgate_rocketmq::RuleError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeRules {
    /// MQTT parent topic -> RocketMQ topic.
    #[serde(default)]
    pub outflow: Vec<OutflowRule>,
    /// RocketMQ topic -> MQTT parent topic.
    #[serde(default)]
    pub inflow: Vec<InflowRule>,
    /// Group id -> RocketMQ topic for status events.
    #[serde(default)]
    pub status: Vec<StatusRule>,
    /// Which spelling of `qoslevel` / `cleansessionflag` is written.
    #[serde(default)]
    pub property_style: PropertyStyle,
}

/// Which list a rule is in, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// An [`OutflowRule`].
    Outflow,
    /// An [`InflowRule`].
    Inflow,
    /// A [`StatusRule`].
    Status,
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Outflow => "outflow",
            Self::Inflow => "inflow",
            Self::Status => "status",
        })
    }
}

/// Why the rules were refused. Each variant says which rule (its list and
/// its position, counted from 0) and which field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A name is empty.
    #[error("{kind} rule #{index}: `{field}` is empty")]
    Empty {
        /// The list.
        kind: RuleKind,
        /// The rule's position.
        index: usize,
        /// The field.
        field: &'static str,
    },
    /// A RocketMQ topic name has a character outside `[A-Za-z0-9_%|-]` or is
    /// longer than [`MAX_ROCKETMQ_TOPIC_LEN`].
    #[error("{kind} rule #{index}: `{field}` {name:?} is not a RocketMQ topic name ({reason})")]
    InvalidRocketMqTopic {
        /// The list.
        kind: RuleKind,
        /// The rule's position.
        index: usize,
        /// The field (an absent RocketMQ topic defaults to the MQTT one).
        field: &'static str,
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An MQTT parent topic is not a single topic level: it contains `/`,
    /// `+`, `#` or U+0000.
    #[error("{kind} rule #{index}: `{field}` {name:?} is not an MQTT parent topic ({reason})")]
    InvalidMqttParentTopic {
        /// The list.
        kind: RuleKind,
        /// The rule's position.
        index: usize,
        /// The field.
        field: &'static str,
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A group id does not start with `GID_`, has nothing after it, has a
    /// character outside `[A-Za-z0-9_.:-]`, or is longer than 64 bytes: the
    /// group part of a client id as `mqgate_topic` accepts it.
    #[error("status rule #{index}: group id {group_id:?} is invalid ({reason})")]
    InvalidGroupId {
        /// The rule's position.
        index: usize,
        /// The group id.
        group_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two rules of one list have the same key: the answer would be ambiguous.
    #[error("{kind} rules #{first} and #{second} both map {key:?}")]
    Duplicate {
        /// The list.
        kind: RuleKind,
        /// The first rule's position.
        first: usize,
        /// The second rule's position.
        second: usize,
        /// The shared key.
        key: String,
    },
}

impl BridgeRules {
    /// Checks every rule: names present and well-formed, group ids `GID_...`,
    /// no two rules of a list with the same key.
    ///
    /// # Errors
    ///
    /// The first [`RuleError`] found, in list order.
    pub fn validate(&self) -> Result<(), RuleError> {
        self.compile_ref().map(drop)
    }

    /// Validates, then builds the lookup tables.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    pub fn compile(self) -> Result<RuleSet, RuleError> {
        self.compile_ref()
    }

    fn compile_ref(&self) -> Result<RuleSet, RuleError> {
        let mut rules = RuleSet {
            property_style: self.property_style,
            ..RuleSet::default()
        };
        for (index, rule) in self.outflow.iter().enumerate() {
            let at = RuleAt {
                kind: RuleKind::Outflow,
                index,
            };
            at.mqtt_parent("mqtt_parent_topic", &rule.mqtt_parent_topic)?;
            let field = defaulted(&rule.rocketmq_topic, "rocketmq_topic", "mqtt_parent_topic");
            at.rocketmq_topic(field, rule.target())?;
            at.insert(&mut rules.outflow, &rule.mqtt_parent_topic, rule.target())?;
        }
        for (index, rule) in self.inflow.iter().enumerate() {
            let at = RuleAt {
                kind: RuleKind::Inflow,
                index,
            };
            at.rocketmq_topic("rocketmq_topic", &rule.rocketmq_topic)?;
            let field = defaulted(
                &rule.mqtt_parent_topic,
                "mqtt_parent_topic",
                "rocketmq_topic",
            );
            at.mqtt_parent(field, rule.target())?;
            at.insert(&mut rules.inflow, &rule.rocketmq_topic, rule.target())?;
        }
        for (index, rule) in self.status.iter().enumerate() {
            let at = RuleAt {
                kind: RuleKind::Status,
                index,
            };
            at.group_id(&rule.group_id)?;
            at.rocketmq_topic("rocketmq_topic", &rule.rocketmq_topic)?;
            at.insert(&mut rules.status, &rule.group_id, &rule.rocketmq_topic)?;
        }
        Ok(rules)
    }
}

/// Validated rules with constant-time lookups, built by
/// [`BridgeRules::compile`].
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    /// Which spelling of `qoslevel` / `cleansessionflag` is written.
    pub property_style: PropertyStyle,
    /// Key -> (target, rule position).
    outflow: HashMap<String, (String, usize)>,
    inflow: HashMap<String, (String, usize)>,
    status: HashMap<String, (String, usize)>,
}

impl RuleSet {
    /// The RocketMQ topic that messages under the MQTT parent topic
    /// `parent_topic` go to, if an outflow rule covers it.
    #[must_use]
    pub fn outflow_for(&self, parent_topic: &str) -> Option<&str> {
        self.outflow
            .get(parent_topic)
            .map(|(target, _)| target.as_str())
    }

    /// The MQTT parent topic that messages of `rocketmq_topic` arrive under,
    /// if an inflow rule covers it.
    #[must_use]
    pub fn inflow_for(&self, rocketmq_topic: &str) -> Option<&str> {
        self.inflow
            .get(rocketmq_topic)
            .map(|(target, _)| target.as_str())
    }

    /// The RocketMQ topic that status events of `group_id` go to, if a status
    /// rule covers it.
    #[must_use]
    pub fn status_for(&self, group_id: &str) -> Option<&str> {
        self.status.get(group_id).map(|(target, _)| target.as_str())
    }

    /// The RocketMQ topics the inflow rules consume: what the broker's
    /// RocketMQ consumer subscribes to.
    pub fn inflow_topics(&self) -> impl Iterator<Item = &str> + '_ {
        self.inflow.keys().map(String::as_str)
    }
}

/// The field an optional target is read from: its own, or the one it
/// defaults to, so an error names the field the user actually wrote.
fn defaulted(target: &Option<String>, own: &'static str, default: &'static str) -> &'static str {
    if target.is_some() {
        own
    } else {
        default
    }
}

/// The rule being checked, to locate errors.
struct RuleAt {
    kind: RuleKind,
    index: usize,
}

impl RuleAt {
    fn insert(
        &self,
        table: &mut HashMap<String, (String, usize)>,
        key: &str,
        target: &str,
    ) -> Result<(), RuleError> {
        if let Some((_, first)) = table.get(key) {
            let (kind, first, second, key) = (self.kind, *first, self.index, key.to_owned());
            return Err(RuleError::Duplicate {
                kind,
                first,
                second,
                key,
            });
        }
        table.insert(key.to_owned(), (target.to_owned(), self.index));
        Ok(())
    }

    fn empty(&self, field: &'static str) -> RuleError {
        RuleError::Empty {
            kind: self.kind,
            index: self.index,
            field,
        }
    }

    fn rocketmq_topic(&self, field: &'static str, name: &str) -> Result<(), RuleError> {
        let reason = if name.is_empty() {
            return Err(self.empty(field));
        } else if name.chars().count() > MAX_ROCKETMQ_TOPIC_LEN {
            "longer than 127 characters"
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'%' | b'|' | b'-'))
        {
            "characters outside [A-Za-z0-9_%|-]"
        } else {
            return Ok(());
        };
        let (kind, index, name) = (self.kind, self.index, name.to_owned());
        Err(RuleError::InvalidRocketMqTopic {
            kind,
            index,
            field,
            name,
            reason,
        })
    }

    fn mqtt_parent(&self, field: &'static str, name: &str) -> Result<(), RuleError> {
        let reason = if name.is_empty() {
            return Err(self.empty(field));
        } else if name.contains('/') {
            "contains `/`: a parent topic is one level"
        } else if name.contains(['+', '#']) {
            "contains a wildcard"
        } else if name.contains('\0') {
            "contains U+0000"
        } else {
            return Ok(());
        };
        let (kind, index, name) = (self.kind, self.index, name.to_owned());
        Err(RuleError::InvalidMqttParentTopic {
            kind,
            index,
            field,
            name,
            reason,
        })
    }

    fn group_id(&self, group_id: &str) -> Result<(), RuleError> {
        let reason = if group_id.is_empty() {
            return Err(self.empty("group_id"));
        } else if !group_id.starts_with(GROUP_PREFIX) {
            "must start with GID_"
        } else if group_id.len() == GROUP_PREFIX.len() {
            "nothing after GID_"
        } else if group_id.len() > DEFAULT_MAX_GROUP_ID_LEN {
            "longer than 64 bytes"
        } else if !group_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        {
            "characters outside [A-Za-z0-9_.:-]"
        } else {
            return Ok(());
        };
        Err(RuleError::InvalidGroupId {
            index: self.index,
            group_id: group_id.to_owned(),
            reason,
        })
    }
}
