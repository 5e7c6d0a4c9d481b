//! Property tests: MQTT -> RocketMQ -> MQTT is the identity, random
//! RocketMQ messages never panic the mapping (through the function the
//! `rocketmq_inflow` fuzz target calls), and status events survive the trip.

use bytes::Bytes;
use mqgate_codec::{ByteStr, QoS};
use mqgate_rocketmq::{
    mqtt_to_rocketmq, rocketmq_to_mqtt, status_to_rocketmq, Delivery, MqttMessage, PropertyStyle,
};
use mqgate_status::{ChannelId, EventType, StatusEvent};
use proptest::prelude::*;

const PARENT: &str = "[A-Za-z0-9_%|-]{1,12}";
const LEVEL: &str = "[a-zA-Z0-9 _.$-]{0,6}";
const CLIENT_ID: &str = "(GID_[a-z0-9]{1,8}@@@)?[a-zA-Z0-9_.:-]{1,20}";

/// A valid MQTT topic with a RocketMQ-valid parent: pub/sub or P2P.
fn topic() -> impl Strategy<Value = String> {
    let pubsub = (PARENT, prop::collection::vec(LEVEL, 0..4)).prop_map(|(parent, levels)| {
        levels
            .iter()
            .fold(parent, |topic, level| format!("{topic}/{level}"))
    });
    let p2p = (PARENT, CLIENT_ID).prop_map(|(parent, target)| format!("{parent}/p2p/{target}"));
    prop_oneof![3 => pubsub, 1 => p2p]
        // A generated level may happen to be `p2p`; those topics are P2P
        // addresses the generator did not mean, and may be malformed ones.
        .prop_filter("accidental p2p level", |topic| {
            topic.split('/').nth(1) != Some("p2p") || topic.split('/').count() == 3
        })
}

fn style() -> impl Strategy<Value = PropertyStyle> {
    prop_oneof![
        Just(PropertyStyle::Lowercase),
        Just(PropertyStyle::CamelCase)
    ]
}

fn mqtt_message() -> impl Strategy<Value = MqttMessage> {
    (
        topic().prop_filter_map("a topic name", |topic| ByteStr::try_from(topic).ok()),
        prop_oneof![
            Just(QoS::AtMostOnce),
            Just(QoS::AtLeastOnce),
            Just(QoS::ExactlyOnce)
        ],
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::option::of(CLIENT_ID),
        prop::option::of(any::<bool>()),
        prop::collection::vec((user_property_name(), any::<String>()), 0..4),
    )
        .prop_map(
            |(
                topic,
                qos,
                retain,
                payload,
                sender_client_id,
                sender_clean_session,
                user_properties,
            )| {
                MqttMessage {
                    topic,
                    qos,
                    retain,
                    payload: Bytes::from(payload),
                    sender_client_id,
                    sender_clean_session,
                    user_properties,
                }
            },
        )
}

/// User property names, often ones that clash: the mapping's own, RocketMQ's, repeated.
fn user_property_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("clientId".to_owned()),
        Just("qoslevel".to_owned()),
        Just("mqttUserProperties".to_owned()),
        Just("KEYS".to_owned()),
        Just("unit".to_owned()),
        Just("sep\u{1}arated".to_owned()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mqtt_to_rocketmq_to_mqtt_is_the_identity(message in mqtt_message(), style in style()) {
        let parent = message.topic.split('/').next().unwrap_or_default().to_owned();
        let rocket = mqtt_to_rocketmq(&message, &parent, style);
        prop_assert!(rocket.is_ok(), "{:?}", rocket);
        let rocket = rocket.unwrap_or_default();
        prop_assert_eq!(rocket.body.as_ptr(), message.payload.as_ptr());
        let back = rocketmq_to_mqtt(&rocket, &parent);
        let levels: Vec<&str> = message.topic.split('/').collect();
        let target = match levels.as_slice() {
            [_, "p2p", target] => Some((*target).to_owned()),
            _ => None,
        };
        match (back, target) {
            (Ok(Delivery::Publish { topic, topic_seen_by_client, qos, payload, user_properties }), None) => {
                prop_assert_eq!(&user_properties, &message.user_properties);
                prop_assert_eq!(&topic, &message.topic);
                prop_assert_eq!(&topic_seen_by_client, &message.topic);
                prop_assert_eq!(qos, message.qos);
                prop_assert_eq!(payload.as_ptr(), message.payload.as_ptr());
            }
            (Ok(Delivery::P2p { target_client_id, topic_seen_by_client, qos, clean_session, payload, user_properties }), Some(target)) => {
                prop_assert_eq!(&user_properties, &message.user_properties);
                prop_assert_eq!(target_client_id, target);
                prop_assert_eq!(&topic_seen_by_client, &message.topic);
                prop_assert_eq!(qos, message.qos);
                prop_assert_eq!(clean_session, message.sender_clean_session.unwrap_or(true));
                prop_assert_eq!(payload.as_ptr(), message.payload.as_ptr());
            }
            (other, target) => prop_assert!(false, "{} came back as {:?} (target {:?})", message.topic, other, target),
        }
    }

    #[test]
    fn random_rocketmq_messages_never_panic(
        parent in prop_oneof![Just(String::new()), PARENT.prop_map(String::from), any::<String>()],
        properties in prop::collection::btree_map(
            prop_oneof![
                Just("mqttSecondTopic".to_owned()), Just("mqttRealTopic".to_owned()),
                Just("qoslevel".to_owned()), Just("qosLevel".to_owned()),
                Just("cleansessionflag".to_owned()), Just("cleanSessionFlag".to_owned()),
                Just("clientId".to_owned()), any::<String>(),
            ],
            prop_oneof![
                "/p2p/[a-zA-Z@_]{0,12}(/[a-z]{0,3})?", "(/[a-z0-9+#]{0,4}){0,3}",
                "[0-3]|-1| 1 |true|false|TRUE|yes", any::<String>(),
            ],
            0..6,
        ),
        body in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        mqgate_rocketmq::fuzzing::inflow(&parent, properties.into_iter().collect(), body);
    }

    #[test]
    fn status_events_cross_as_tagged_json(
        client_id in CLIENT_ID,
        time in any::<u64>(),
        kind in prop_oneof![Just(EventType::Connect), Just(EventType::Disconnect), Just(EventType::Tcpclean)],
        channel in any::<[u8; 16]>(),
        seq in any::<u64>(),
    ) {
        let event = StatusEvent {
            client_id, time, event_type: kind, channel_id: ChannelId::from_bytes(channel),
            client_ip: "192.0.2.1:1883".into(), seq,
        };
        let message = status_to_rocketmq(&event, "status_topic");
        prop_assert_eq!(message.tags.as_deref(), Some(kind.as_str()));
        prop_assert_eq!(&message.keys, &vec![event.client_id.clone()]);
        prop_assert_eq!(StatusEvent::from_json(&message.body).ok(), Some(event));
    }
}
