//! The mapping between MQTT and Apache RocketMQ: topics,
//! message properties, P2P addresses, status events, and the bridge rules
//! that say what crosses.
//!
//! # Contract
//!
//! Pure data in, data out: no I/O, no clock, no RocketMQ client. The broker's
//! RocketMQ adapter converts [`RocketMessage`] to and from the real client's
//! message type; everything about the mapping itself lives here.
//!
//! ```text
//!  MQTT PUBLISH ──▶ MqttMessage ──▶ RuleSet::outflow ──▶ RocketMessage ──▶ RocketMQ producer
//!  RocketMQ consumer ──▶ RocketMessage ──▶ RuleSet::inflow ──▶ Delivery::{Publish, P2p} ──▶ router
//!  StatusEvent ──▶ RuleSet::status ──▶ RocketMessage (tag = event type, body = JSON)
//! ```
//!
//! Payloads are never copied: the RocketMQ body *is* the MQTT payload's
//! [`bytes::Bytes`], both ways. The property keys, their defaults and the P2P
//! form are described after the example below.
//!
//! ```
//! use bytes::Bytes;
//! use mqgate_codec::{ByteStr, QoS};
//! use mqgate_rocketmq::{mqtt_to_rocketmq, rocketmq_to_mqtt, Delivery, MqttMessage, PropertyStyle};
//!
//! let publish = MqttMessage {
//!     topic: ByteStr::from_static("A/B/C"), qos: QoS::AtMostOnce, retain: false,
//!     payload: Bytes::from_static(b"42"),
//!     sender_client_id: Some("GID_x@@@y".into()), sender_clean_session: Some(true),
//!     user_properties: Vec::new(),
//! };
//! let rocket = mqtt_to_rocketmq(&publish, "A", PropertyStyle::Lowercase)?;
//! assert_eq!(rocket.properties["mqttSecondTopic"], "/B/C");
//! let back = rocketmq_to_mqtt(&rocket, "A")?;
//! assert!(matches!(back, Delivery::Publish { ref topic, qos: QoS::AtMostOnce, .. } if topic == "A/B/C"));
//! assert_eq!(back.payload().as_ptr(), publish.payload.as_ptr());
//! # Ok::<(), mqgate_rocketmq::MappingError>(())
//! ```
//!
#![doc = include_str!("rules.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bridge;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod mapping;
#[cfg(test)]
mod mapping_tests;
mod message;
mod rules;
#[cfg(test)]
mod rules_tests;

pub use error::MappingError;
pub use mapping::{mqtt_to_rocketmq, rocketmq_to_mqtt, split_topic, status_to_rocketmq};
pub use message::{property, Delivery, MqttMessage, PropertyStyle, RocketMessage};
pub use rules::{
    BridgeRules, InflowRule, OutflowRule, RuleError, RuleKind, RuleSet, StatusRule,
    MAX_ROCKETMQ_TOPIC_LEN,
};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
