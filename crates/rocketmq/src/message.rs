//! The message types on both sides of the bridge, and the property keys.

use std::collections::BTreeMap;

use bytes::Bytes;
use mqgate_codec::{ByteStr, QoS};
use serde::{Deserialize, Serialize};

/// The RocketMQ user-property keys of the MQTT mapping.
pub mod property {
    /// The MQTT subtopic: everything after the parent topic, from its `/`.
    pub const MQTT_SECOND_TOPIC: &str = "mqttSecondTopic";
    /// The topic the receiving MQTT client sees (mostly for P2P).
    pub const MQTT_REAL_TOPIC: &str = "mqttRealTopic";
    /// The QoS level, lower-case spelling.
    pub const QOS_LEVEL: &str = "qoslevel";
    /// The QoS level, camel-case spelling.
    pub const QOS_LEVEL_CAMEL: &str = "qosLevel";
    /// The clean-session flag, lower-case spelling.
    pub const CLEAN_SESSION_FLAG: &str = "cleansessionflag";
    /// The clean-session flag, camel-case spelling.
    pub const CLEAN_SESSION_FLAG_CAMEL: &str = "cleanSessionFlag";
    /// The MQTT client that sent the message. Read-only from RocketMQ.
    pub const CLIENT_ID: &str = "clientId";
    /// Every MQTT 5 User Property of the message, in order, duplicates included: a JSON
    /// array of `[name, value]` pairs. Set only when the message has user properties.
    pub const MQTT_USER_PROPERTIES: &str = "mqttUserProperties";

    /// The names the mapping itself writes or reads: a user property of one of these names
    /// travels in [`MQTT_USER_PROPERTIES`] only, never as a plain property, so it can never
    /// stand for the mapping's own value (a device cannot claim another `clientId`).
    pub const MAPPING: [&str; 8] = [
        MQTT_SECOND_TOPIC,
        MQTT_REAL_TOPIC,
        QOS_LEVEL,
        QOS_LEVEL_CAMEL,
        CLEAN_SESSION_FLAG,
        CLEAN_SESSION_FLAG_CAMEL,
        CLIENT_ID,
        MQTT_USER_PROPERTIES,
    ];
}

/// Which spelling of `qoslevel` and `cleansessionflag` the bridge writes.
/// Both spellings are always read.
///
/// In TOML: `property_style = "lowercase"` or `"camelCase"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PropertyStyle {
    /// `qoslevel`, `cleansessionflag`: the spelling of the model service's
    /// documentation. The default.
    #[default]
    #[serde(rename = "lowercase")]
    Lowercase,
    /// `qosLevel`, `cleanSessionFlag`: the spelling some SDK samples use.
    #[serde(rename = "camelCase")]
    CamelCase,
}

impl PropertyStyle {
    /// The key written for the QoS level.
    #[must_use]
    pub const fn qos_key(self) -> &'static str {
        match self {
            Self::Lowercase => property::QOS_LEVEL,
            Self::CamelCase => property::QOS_LEVEL_CAMEL,
        }
    }

    /// The key written for the clean-session flag.
    #[must_use]
    pub const fn clean_session_key(self) -> &'static str {
        match self {
            Self::Lowercase => property::CLEAN_SESSION_FLAG,
            Self::CamelCase => property::CLEAN_SESSION_FLAG_CAMEL,
        }
    }
}

/// A message on the RocketMQ side, as the broker's RocketMQ client adapter
/// produces and consumes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RocketMessage {
    /// The RocketMQ topic.
    pub topic: String,
    /// The message tag (RocketMQ allows one), used for filtering by consumers.
    pub tags: Option<String>,
    /// Message keys, indexed by RocketMQ for queries.
    pub keys: Vec<String>,
    /// User properties.
    pub properties: BTreeMap<String, String>,
    /// The body, shared with the MQTT payload it came from or goes to.
    pub body: Bytes,
}

/// A PUBLISH on the MQTT side, with what the bridge needs to know of its
/// sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttMessage {
    /// The topic name, e.g. `sensors/room1/temp` or `chat/p2p/GID_app@@@phone` (shared with
    /// the PUBLISH it came from, not copied; checked as a topic name when mapped).
    pub topic: ByteStr,
    /// The QoS of the PUBLISH.
    pub qos: QoS,
    /// The RETAIN flag. RocketMQ has no equivalent: it is not carried over.
    pub retain: bool,
    /// The payload, passed on without copying.
    pub payload: Bytes,
    /// The client that sent it, if it came from an MQTT client.
    pub sender_client_id: Option<String>,
    /// The sender's cleanSession flag, if known.
    pub sender_clean_session: Option<bool>,
    /// MQTT 5 User Properties (name, value), in order; empty for a 3.1.1 message.
    pub user_properties: Vec<(String, String)>,
}

/// What a RocketMQ message becomes on the MQTT side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// An ordinary publish: route `topic` through the subscriptions.
    Publish {
        /// The topic subscriptions are matched against: a valid topic name.
        topic: ByteStr,
        /// The topic the receiving clients see: `mqttRealTopic` when set,
        /// otherwise `topic` (shared, not copied). A valid topic name.
        topic_seen_by_client: ByteStr,
        /// The QoS level.
        qos: QoS,
        /// The payload, the RocketMQ body itself.
        payload: Bytes,
        /// MQTT 5 User Properties for the receivers (see
        /// [`rocketmq_to_mqtt`](crate::rocketmq_to_mqtt)); a 3.1.1 receiver gets none.
        user_properties: Vec<(String, String)>,
    },
    /// A P2P message for exactly one client, delivered without subscription.
    P2p {
        /// The client it is for.
        target_client_id: String,
        /// The topic the client sees: `mqttRealTopic` when set, otherwise
        /// the P2P topic `{parent}/p2p/{clientId}`. A valid topic name.
        topic_seen_by_client: ByteStr,
        /// The QoS level.
        qos: QoS,
        /// `cleansessionflag`: `false` asks for the message to be kept for a
        /// client that is offline with a persistent session.
        clean_session: bool,
        /// The payload, the RocketMQ body itself.
        payload: Bytes,
        /// MQTT 5 User Properties for the receiver, as for [`Delivery::Publish`].
        user_properties: Vec<(String, String)>,
    },
}

impl Delivery {
    /// The payload, whichever kind of delivery this is.
    #[must_use]
    pub const fn payload(&self) -> &Bytes {
        match self {
            Self::Publish { payload, .. } | Self::P2p { payload, .. } => payload,
        }
    }

    /// The QoS level, whichever kind of delivery this is.
    #[must_use]
    pub const fn qos(&self) -> QoS {
        match self {
            Self::Publish { qos, .. } | Self::P2p { qos, .. } => *qos,
        }
    }

    /// The MQTT 5 User Properties, whichever kind of delivery this is.
    #[must_use]
    pub fn user_properties(&self) -> &[(String, String)] {
        match self {
            Self::Publish {
                user_properties, ..
            }
            | Self::P2p {
                user_properties, ..
            } => user_properties,
        }
    }
}
