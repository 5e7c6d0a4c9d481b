//! The mapping itself: MQTT -> RocketMQ, RocketMQ -> MQTT, status -> RocketMQ.

use std::collections::BTreeMap;

use mqgate_codec::{ByteStr, QoS};
use mqgate_status::StatusEvent;
use mqgate_topic::{P2pAddress, TopicError, TopicName};

use crate::message::property;
use crate::{Delivery, MappingError, MqttMessage, PropertyStyle, RocketMessage};

/// Splits an MQTT topic into its parent topic (first level) and subtopic
/// (the rest, from its `/`; empty for a one-level topic).
///
/// ```
/// use mqgate_rocketmq::split_topic;
/// assert_eq!(split_topic("A/B/C"), ("A", "/B/C"));
/// assert_eq!(split_topic("A"), ("A", ""));
/// assert_eq!(split_topic("A/"), ("A", "/"));
/// ```
#[must_use]
pub fn split_topic(topic: &str) -> (&str, &str) {
    match topic.find('/') {
        Some(slash) => topic.split_at(slash),
        None => (topic, ""),
    }
}

/// Maps an MQTT publish to the RocketMQ message sent to `rocketmq_topic`
/// (usually the parent topic itself, or the one an outflow rule names).
///
/// Sets `mqttSecondTopic` (when the topic has more than one level), the QoS
/// level, and, when the sender is known, `clientId` and the clean-session
/// flag, the two last in the spelling `style` chooses. The body is the
/// payload itself, not a copy.
///
/// MQTT 5 User Properties: all of them, in order and with repeated names, go
/// into `mqttUserProperties` (a JSON array of `[name, value]` pairs), which
/// [`rocketmq_to_mqtt`] reads back exactly. Each one is also set as a plain
/// RocketMQ property of its own name, for RocketMQ consumers and SQL filters,
/// unless that name clashes: it is one of the mapping's own names
/// ([`property::MAPPING`]: a device cannot pass for another `clientId`), an
/// earlier user property had it (the first value stands), or the name or
/// value holds U+0001 or U+0002 (RocketMQ's property separators). The client
/// adapter also leaves out plain copies whose names RocketMQ reserves for
/// itself (`KEYS`, `TAGS`, `UNIQ_KEY`, ...). None of these is lost: they are
/// all in `mqttUserProperties`.
///
/// ```
/// use bytes::Bytes;
/// use mqgate_rocketmq::{mqtt_to_rocketmq, MqttMessage, PropertyStyle};
///
/// use mqgate_codec::{ByteStr, QoS};
///
/// let publish = MqttMessage {
///     topic: ByteStr::from_static("sensors/room1/temp"), qos: QoS::AtLeastOnce, retain: false,
///     payload: Bytes::from_static(b"21.5"),
///     sender_client_id: Some("GID_dev@@@t-1".into()), sender_clean_session: Some(true),
///     user_properties: vec![("unit".into(), "C".into()), ("clientId".into(), "forged".into())],
/// };
/// let message = mqtt_to_rocketmq(&publish, "sensors", PropertyStyle::Lowercase)?;
/// assert_eq!(message.topic, "sensors");
/// assert_eq!(message.properties["mqttSecondTopic"], "/room1/temp");
/// assert_eq!(message.properties["qoslevel"], "1");
/// assert_eq!(message.properties["clientId"], "GID_dev@@@t-1");
/// assert_eq!(message.properties["unit"], "C");
/// assert_eq!(message.properties["mqttUserProperties"], r#"[["unit","C"],["clientId","forged"]]"#);
/// assert_eq!(message.body.as_ptr(), publish.payload.as_ptr());
/// # Ok::<(), mqgate_rocketmq::MappingError>(())
/// ```
///
/// # Errors
///
/// [`MappingError::InvalidTopic`], [`MappingError::EmptyParentTopic`],
/// [`MappingError::InvalidP2p`] for a topic the MQTT side would not accept
/// either.
pub fn mqtt_to_rocketmq(
    message: &MqttMessage,
    rocketmq_topic: &str,
    style: PropertyStyle,
) -> Result<RocketMessage, MappingError> {
    let topic = message.topic.as_str();
    check_mqtt_topic(topic)?;
    let qos = qos_text(message.qos);
    let (_, subtopic) = split_topic(topic);
    let mut properties = BTreeMap::new();
    if !subtopic.is_empty() {
        properties.insert(property::MQTT_SECOND_TOPIC.to_owned(), subtopic.to_owned());
    }
    properties.insert(style.qos_key().to_owned(), qos.to_owned());
    if let Some(clean_session) = message.sender_clean_session {
        properties.insert(
            style.clean_session_key().to_owned(),
            clean_session.to_string(),
        );
    }
    if let Some(sender) = &message.sender_client_id {
        properties.insert(property::CLIENT_ID.to_owned(), sender.clone());
    }
    put_user_properties(&message.user_properties, &mut properties);
    Ok(RocketMessage {
        topic: rocketmq_topic.to_owned(),
        tags: None,
        keys: Vec::new(),
        properties,
        body: message.payload.clone(),
    })
}

/// Maps a RocketMQ message to what the MQTT side delivers, under
/// `mqtt_parent_topic` (usually the RocketMQ topic's own name, or the one an
/// inflow rule names).
///
/// The MQTT topic is the parent topic followed by `mqttSecondTopic`. A topic
/// `{parent}/p2p/{clientId}` becomes a [`Delivery::P2p`]; anything else a
/// [`Delivery::Publish`]. Defaults: QoS 1, clean session `true`.
/// `mqttRealTopic`, when set, is the topic the receiving client sees. The
/// `clientId` property is ignored: it names an MQTT sender, and a RocketMQ
/// producer is not one.
///
/// User Properties for MQTT 5 receivers: those of `mqttUserProperties` when it
/// is set (what [`mqtt_to_rocketmq`] wrote, in order); otherwise every property
/// that is not one of the mapping's own ([`property::MAPPING`]), by name, so
/// what a RocketMQ producer attaches reaches the devices.
///
/// ```
/// use bytes::Bytes;
/// use mqgate_codec::QoS;
/// use mqgate_rocketmq::{rocketmq_to_mqtt, Delivery, RocketMessage};
///
/// let mut message = RocketMessage { topic: "chat".into(), body: Bytes::from_static(b"hi"), ..Default::default() };
/// message.properties.insert("mqttSecondTopic".into(), "/p2p/GID_app@@@phone".into());
/// match rocketmq_to_mqtt(&message, "chat")? {
///     Delivery::P2p { target_client_id, topic_seen_by_client, qos, clean_session, .. } => {
///         assert_eq!(target_client_id, "GID_app@@@phone");
///         assert_eq!(topic_seen_by_client, "chat/p2p/GID_app@@@phone");
///         assert_eq!((qos, clean_session), (QoS::AtLeastOnce, true));
///     }
///     other => panic!("expected P2P, got {other:?}"),
/// }
/// # Ok::<(), mqgate_rocketmq::MappingError>(())
/// ```
///
/// # Errors
///
/// [`MappingError::SubtopicWithoutSlash`], [`MappingError::InvalidTopic`],
/// [`MappingError::EmptyParentTopic`], [`MappingError::InvalidP2p`],
/// [`MappingError::InvalidRealTopic`], [`MappingError::InvalidQos`],
/// [`MappingError::InvalidCleanSession`], and
/// [`MappingError::ConflictingProperty`] when both spellings of a key are
/// present with different values.
pub fn rocketmq_to_mqtt(
    message: &RocketMessage,
    mqtt_parent_topic: &str,
) -> Result<Delivery, MappingError> {
    let properties = &message.properties;
    let subtopic = properties
        .get(property::MQTT_SECOND_TOPIC)
        .map_or("", String::as_str);
    if !subtopic.is_empty() && !subtopic.starts_with('/') {
        return Err(MappingError::SubtopicWithoutSlash {
            subtopic: subtopic.to_owned(),
        });
    }
    let topic = format!("{mqtt_parent_topic}{subtopic}");
    let p2p = check_mqtt_topic(&topic)?;
    let topic = topic_name(topic).map_err(MappingError::InvalidTopic)?;
    let qos = match either_spelling(properties, property::QOS_LEVEL, property::QOS_LEVEL_CAMEL)? {
        None => QoS::AtLeastOnce,
        Some(text) => parse_qos(text)?,
    };
    let real_topic = match properties.get(property::MQTT_REAL_TOPIC) {
        None => None,
        Some(real) => {
            Some(
                topic_name(real.clone()).map_err(|error| MappingError::InvalidRealTopic {
                    topic: real.clone(),
                    error,
                })?,
            )
        }
    };
    let payload = message.body.clone();
    let user_properties = user_properties(properties)?;
    Ok(match p2p {
        Some(target_client_id) => {
            let flag = either_spelling(
                properties,
                property::CLEAN_SESSION_FLAG,
                property::CLEAN_SESSION_FLAG_CAMEL,
            )?;
            Delivery::P2p {
                target_client_id,
                topic_seen_by_client: real_topic.unwrap_or(topic),
                qos,
                clean_session: flag.map_or(Ok(true), parse_clean_session)?,
                payload,
                user_properties,
            }
        }
        None => Delivery::Publish {
            topic_seen_by_client: real_topic.unwrap_or_else(|| topic.clone()),
            topic,
            qos,
            payload,
            user_properties,
        },
    })
}

/// Writes `mqttUserProperties` and the plain copies that do not clash (see
/// [`mqtt_to_rocketmq`]).
fn put_user_properties(user: &[(String, String)], properties: &mut BTreeMap<String, String>) {
    if user.is_empty() {
        return;
    }
    let separator = |text: &str| text.contains(['\u{1}', '\u{2}']);
    for (name, value) in user {
        if property::MAPPING.contains(&name.as_str())
            || properties.contains_key(name)
            || separator(name)
            || separator(value)
        {
            continue;
        }
        properties.insert(name.clone(), value.clone());
    }
    // Serializing a slice of string pairs cannot fail.
    let list = serde_json::to_string(user).unwrap_or_default();
    properties.insert(property::MQTT_USER_PROPERTIES.to_owned(), list);
}

/// The User Properties a RocketMQ message carries for MQTT (see [`rocketmq_to_mqtt`]).
fn user_properties(
    properties: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, MappingError> {
    match properties.get(property::MQTT_USER_PROPERTIES) {
        Some(list) => serde_json::from_str(list).map_err(|e| MappingError::InvalidUserProperties {
            reason: e.to_string(),
        }),
        None => Ok(properties
            .iter()
            .filter(|(name, _)| !property::MAPPING.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()),
    }
}

/// Maps a status event to the RocketMQ message for `rocketmq_topic` (the one
/// the client's group's status rule names): tag = event type, body = the
/// event's JSON, key = the client id (so RocketMQ's console finds a client's
/// events), property `clientId`.
///
/// ```
/// use mqgate_rocketmq::status_to_rocketmq;
/// use mqgate_status::{ChannelId, EventType, StatusEvent};
///
/// let event = StatusEvent {
///     client_id: "GID_a@@@1".into(), time: 5, event_type: EventType::Connect,
///     channel_id: ChannelId::from_bytes([0; 16]), client_ip: "1.2.3.4:5".into(), seq: 0,
/// };
/// let message = status_to_rocketmq(&event, "status_topic");
/// assert_eq!(message.tags.as_deref(), Some("connect"));
/// assert_eq!(message.body, event.to_json());
/// ```
#[must_use]
pub fn status_to_rocketmq(event: &StatusEvent, rocketmq_topic: &str) -> RocketMessage {
    let mut properties = BTreeMap::new();
    properties.insert(property::CLIENT_ID.to_owned(), event.client_id.clone());
    RocketMessage {
        topic: rocketmq_topic.to_owned(),
        tags: Some(event.event_type.as_str().to_owned()),
        keys: vec![event.client_id.clone()],
        properties,
        body: event.to_json().into(),
    }
}

/// A valid topic name as a [`ByteStr`], without copying it.
fn topic_name(topic: String) -> Result<ByteStr, TopicError> {
    TopicName::validate(&topic)?;
    // A valid topic name holds no U+0000, the one thing `ByteStr` refuses.
    ByteStr::try_from(topic).map_err(|_| TopicError::NullChar)
}

/// Checks a full MQTT topic as the MQTT side would, and returns the P2P
/// target when it is a P2P address.
fn check_mqtt_topic(topic: &str) -> Result<Option<String>, MappingError> {
    TopicName::validate(topic).map_err(MappingError::InvalidTopic)?;
    if split_topic(topic).0.is_empty() {
        return Err(MappingError::EmptyParentTopic {
            topic: topic.to_owned(),
        });
    }
    let address = P2pAddress::parse(topic).map_err(MappingError::InvalidP2p)?;
    Ok(address.map(|address| address.target_client_id.to_owned()))
}

/// The value of a property that has two spellings; both present must agree.
fn either_spelling<'a>(
    properties: &'a BTreeMap<String, String>,
    lower: &'static str,
    camel: &'static str,
) -> Result<Option<&'a str>, MappingError> {
    match (properties.get(lower), properties.get(camel)) {
        (Some(lower_value), Some(camel_value)) if lower_value != camel_value => {
            Err(MappingError::ConflictingProperty {
                lower,
                camel,
                lower_value: lower_value.clone(),
                camel_value: camel_value.clone(),
            })
        }
        (Some(value), _) | (None, Some(value)) => Ok(Some(value)),
        (None, None) => Ok(None),
    }
}

const fn qos_text(qos: QoS) -> &'static str {
    match qos {
        QoS::AtMostOnce => "0",
        QoS::AtLeastOnce => "1",
        QoS::ExactlyOnce => "2",
    }
}

fn parse_qos(text: &str) -> Result<QoS, MappingError> {
    match text.trim() {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        "2" => Ok(QoS::ExactlyOnce),
        _ => Err(MappingError::InvalidQos {
            value: text.to_owned(),
        }),
    }
}

/// `true`/`false` in any case, as Java's `Boolean.toString` writes them and
/// hand-written producers vary; anything else is refused rather than read as
/// `false` the way `Boolean.parseBoolean` would.
fn parse_clean_session(text: &str) -> Result<bool, MappingError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if trimmed.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(MappingError::InvalidCleanSession {
            value: text.to_owned(),
        })
    }
}
