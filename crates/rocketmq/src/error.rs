//! Why a message could not be mapped from one side to the other.

use mqgate_topic::{P2pError, TopicError};

/// Why a message could not cross the bridge. Every variant is something a
/// producer on either side can cause, so it is reported, never a panic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// The MQTT topic (given, or built from parent topic and
    /// `mqttSecondTopic`) is not a valid topic name.
    #[error("invalid MQTT topic: {0}")]
    InvalidTopic(TopicError),
    /// The MQTT topic starts with `/`: its first level, the parent topic that
    /// names the RocketMQ topic, is empty.
    #[error("MQTT topic {topic:?} has an empty first level, so no parent topic")]
    EmptyParentTopic {
        /// The topic.
        topic: String,
    },
    /// `mqttSecondTopic` is not empty and does not start with `/`.
    #[error("mqttSecondTopic {subtopic:?} must start with `/`")]
    SubtopicWithoutSlash {
        /// The property's value.
        subtopic: String,
    },
    /// The topic is a P2P address (`{parent}/p2p/...`) but not a valid one.
    #[error("invalid P2P address: {0}")]
    InvalidP2p(P2pError),
    /// `mqttRealTopic` is not a valid topic name.
    #[error("invalid mqttRealTopic {topic:?}: {error}")]
    InvalidRealTopic {
        /// The property's value.
        topic: String,
        /// What is wrong with it.
        error: TopicError,
    },
    /// The `qoslevel` property is not 0, 1 or 2.
    #[error("QoS level must be 0, 1 or 2, found {value:?}")]
    InvalidQos {
        /// The value found.
        value: String,
    },
    /// `cleansessionflag` is not `true` or `false`.
    #[error("cleansessionflag must be true or false, found {value:?}")]
    InvalidCleanSession {
        /// The value found.
        value: String,
    },
    /// Both spellings of a property are present with different values.
    #[error("properties {lower:?} and {camel:?} disagree: {lower_value:?} vs {camel_value:?}")]
    ConflictingProperty {
        /// The lower-case key.
        lower: &'static str,
        /// The camel-case key.
        camel: &'static str,
        /// The lower-case key's value.
        lower_value: String,
        /// The camel-case key's value.
        camel_value: String,
    },
    /// `mqttUserProperties` is not a JSON array of `[name, value]` string pairs.
    #[error("mqttUserProperties is not a JSON array of [name, value] pairs: {reason}")]
    InvalidUserProperties {
        /// What is wrong with it.
        reason: String,
    },
}
