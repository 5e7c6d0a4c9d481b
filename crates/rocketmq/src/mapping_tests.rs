//! Table tests of every property and default of the mapping (`src/rules.md`).

use bytes::Bytes;
use mqgate_codec::{ByteStr, QoS};
use mqgate_topic::{P2pError, TopicError};

use crate::{
    mqtt_to_rocketmq, property, rocketmq_to_mqtt, split_topic, Delivery, MappingError, MqttMessage,
    PropertyStyle, RocketMessage,
};

fn rocket(topic: &str, properties: &[(&str, &str)]) -> RocketMessage {
    RocketMessage {
        topic: topic.into(),
        properties: properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: Bytes::from_static(b"payload"),
        ..RocketMessage::default()
    }
}

fn publish(topic: &str, qos: u8) -> MqttMessage {
    MqttMessage {
        topic: ByteStr::try_from(topic).unwrap(),
        qos: QoS::from_u8(qos).unwrap(),
        retain: false,
        payload: Bytes::from(vec![1, 2, 3]),
        sender_client_id: None,
        sender_clean_session: None,
        user_properties: Vec::new(),
    }
}

/// What a RocketMQ message should become, compactly.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Publish {
        topic: &'static str,
        seen: &'static str,
        qos: u8,
    },
    P2p {
        target: &'static str,
        seen: &'static str,
        qos: u8,
        clean: bool,
    },
    Fails(MappingError),
}

fn summarise(result: Result<Delivery, MappingError>) -> String {
    match result {
        Ok(Delivery::Publish {
            topic,
            topic_seen_by_client,
            qos,
            ..
        }) => {
            format!("{:?}", (topic, topic_seen_by_client, qos as u8))
        }
        Ok(Delivery::P2p {
            target_client_id,
            topic_seen_by_client,
            qos,
            clean_session,
            ..
        }) => {
            format!(
                "{:?}",
                (
                    target_client_id,
                    topic_seen_by_client,
                    qos as u8,
                    clean_session
                )
            )
        }
        Err(error) => format!("{error:?}"),
    }
}

fn expected(expect: &Expect) -> String {
    match expect {
        Expect::Publish { topic, seen, qos } => format!("{:?}", (*topic, *seen, *qos)),
        Expect::P2p {
            target,
            seen,
            qos,
            clean,
        } => format!("{:?}", (*target, *seen, *qos, *clean)),
        Expect::Fails(error) => format!("{error:?}"),
    }
}

#[test]
fn rocketmq_to_mqtt_properties_and_defaults() {
    use Expect::{Fails, P2p, Publish};
    let owned = |s: &str| s.to_owned();
    type Row = (&'static str, Vec<(&'static str, &'static str)>, Expect);
    let table: Vec<Row> = vec![
        // Topic: parent + mqttSecondTopic.
        (
            "no subtopic",
            vec![],
            Publish {
                topic: "A",
                seen: "A",
                qos: 1,
            },
        ),
        (
            "subtopic",
            vec![("mqttSecondTopic", "/B/C")],
            Publish {
                topic: "A/B/C",
                seen: "A/B/C",
                qos: 1,
            },
        ),
        (
            "empty subtopic",
            vec![("mqttSecondTopic", "")],
            Publish {
                topic: "A",
                seen: "A",
                qos: 1,
            },
        ),
        (
            "trailing slash",
            vec![("mqttSecondTopic", "/")],
            Publish {
                topic: "A/",
                seen: "A/",
                qos: 1,
            },
        ),
        (
            "subtopic without /",
            vec![("mqttSecondTopic", "B/C")],
            Fails(MappingError::SubtopicWithoutSlash {
                subtopic: owned("B/C"),
            }),
        ),
        (
            "wildcard in subtopic",
            vec![("mqttSecondTopic", "/B/+")],
            Fails(MappingError::InvalidTopic(TopicError::WildcardInName)),
        ),
        // qoslevel: default 1, both spellings, invalid values.
        (
            "qos 0",
            vec![("qoslevel", "0")],
            Publish {
                topic: "A",
                seen: "A",
                qos: 0,
            },
        ),
        (
            "qos 2",
            vec![("qoslevel", "2")],
            Publish {
                topic: "A",
                seen: "A",
                qos: 2,
            },
        ),
        (
            "qosLevel 0",
            vec![("qosLevel", "0")],
            Publish {
                topic: "A",
                seen: "A",
                qos: 0,
            },
        ),
        (
            "both agree",
            vec![("qoslevel", "2"), ("qosLevel", "2")],
            Publish {
                topic: "A",
                seen: "A",
                qos: 2,
            },
        ),
        (
            "qos 7",
            vec![("qoslevel", "7")],
            Fails(MappingError::InvalidQos { value: owned("7") }),
        ),
        (
            "qosLevel 7",
            vec![("qosLevel", "7")],
            Fails(MappingError::InvalidQos { value: owned("7") }),
        ),
        (
            "qos empty",
            vec![("qoslevel", "")],
            Fails(MappingError::InvalidQos { value: owned("") }),
        ),
        (
            "qos -1",
            vec![("qoslevel", "-1")],
            Fails(MappingError::InvalidQos { value: owned("-1") }),
        ),
        (
            "spellings disagree",
            vec![("qoslevel", "0"), ("qosLevel", "2")],
            Fails(MappingError::ConflictingProperty {
                lower: "qoslevel",
                camel: "qosLevel",
                lower_value: owned("0"),
                camel_value: owned("2"),
            }),
        ),
        // mqttRealTopic: what the client sees.
        (
            "real topic on pub/sub",
            vec![("mqttSecondTopic", "/x"), ("mqttRealTopic", "shown/here")],
            Publish {
                topic: "A/x",
                seen: "shown/here",
                qos: 1,
            },
        ),
        (
            "invalid real topic",
            vec![("mqttRealTopic", "a/#")],
            Fails(MappingError::InvalidRealTopic {
                topic: owned("a/#"),
                error: TopicError::WildcardInName,
            }),
        ),
        // cleansessionflag only matters for P2P.
        (
            "clean flag ignored on pub/sub",
            vec![("cleansessionflag", "nonsense")],
            Publish {
                topic: "A",
                seen: "A",
                qos: 1,
            },
        ),
        // clientId is read-only from RocketMQ: ignored.
        (
            "clientId ignored",
            vec![("clientId", "GID_spoof@@@x")],
            Publish {
                topic: "A",
                seen: "A",
                qos: 1,
            },
        ),
        // P2P.
        (
            "p2p defaults",
            vec![("mqttSecondTopic", "/p2p/GID_a@@@d1")],
            P2p {
                target: "GID_a@@@d1",
                seen: "A/p2p/GID_a@@@d1",
                qos: 1,
                clean: true,
            },
        ),
        (
            "p2p clean false",
            vec![
                ("mqttSecondTopic", "/p2p/GID_a@@@d1"),
                ("cleansessionflag", "false"),
            ],
            P2p {
                target: "GID_a@@@d1",
                seen: "A/p2p/GID_a@@@d1",
                qos: 1,
                clean: false,
            },
        ),
        (
            "p2p cleanSessionFlag FALSE",
            vec![
                ("mqttSecondTopic", "/p2p/GID_a@@@d1"),
                ("cleanSessionFlag", "FALSE"),
            ],
            P2p {
                target: "GID_a@@@d1",
                seen: "A/p2p/GID_a@@@d1",
                qos: 1,
                clean: false,
            },
        ),
        (
            "p2p clean true, qos 0",
            vec![
                ("mqttSecondTopic", "/p2p/GID_a@@@d1"),
                ("cleansessionflag", "true"),
                ("qoslevel", "0"),
            ],
            P2p {
                target: "GID_a@@@d1",
                seen: "A/p2p/GID_a@@@d1",
                qos: 0,
                clean: true,
            },
        ),
        (
            "p2p real topic",
            vec![
                ("mqttSecondTopic", "/p2p/GID_a@@@d1"),
                ("mqttRealTopic", "inbox/news"),
            ],
            P2p {
                target: "GID_a@@@d1",
                seen: "inbox/news",
                qos: 1,
                clean: true,
            },
        ),
        (
            "p2p invalid clean flag",
            vec![
                ("mqttSecondTopic", "/p2p/GID_a@@@d1"),
                ("cleansessionflag", "yes"),
            ],
            Fails(MappingError::InvalidCleanSession {
                value: owned("yes"),
            }),
        ),
        (
            "p2p clean spellings disagree",
            vec![
                ("mqttSecondTopic", "/p2p/GID_a@@@d1"),
                ("cleansessionflag", "true"),
                ("cleanSessionFlag", "false"),
            ],
            Fails(MappingError::ConflictingProperty {
                lower: "cleansessionflag",
                camel: "cleanSessionFlag",
                lower_value: owned("true"),
                camel_value: owned("false"),
            }),
        ),
        (
            "p2p no target",
            vec![("mqttSecondTopic", "/p2p/")],
            Fails(MappingError::InvalidP2p(P2pError::MissingTarget)),
        ),
        (
            "p2p bare",
            vec![("mqttSecondTopic", "/p2p")],
            Fails(MappingError::InvalidP2p(P2pError::MissingTarget)),
        ),
        (
            "p2p trailing levels",
            vec![("mqttSecondTopic", "/p2p/GID_a@@@d1/x")],
            Fails(MappingError::InvalidP2p(P2pError::TrailingLevels)),
        ),
        (
            "p2p-like level",
            vec![("mqttSecondTopic", "/p2pX/y")],
            Publish {
                topic: "A/p2pX/y",
                seen: "A/p2pX/y",
                qos: 1,
            },
        ),
        (
            "p2p deeper",
            vec![("mqttSecondTopic", "/B/p2p/y")],
            Publish {
                topic: "A/B/p2p/y",
                seen: "A/B/p2p/y",
                qos: 1,
            },
        ),
    ];
    for (name, properties, expect) in &table {
        let message = rocket("A", properties);
        assert_eq!(
            summarise(rocketmq_to_mqtt(&message, "A")),
            expected(expect),
            "{name}"
        );
    }
}

#[test]
fn rocketmq_to_mqtt_uses_the_given_parent_and_shares_the_body() {
    let message = rocket("rocket_side", &[("mqttSecondTopic", "/x")]);
    let delivery = rocketmq_to_mqtt(&message, "mqtt_side");
    assert_eq!(
        summarise(delivery.clone()),
        expected(&Expect::Publish {
            topic: "mqtt_side/x",
            seen: "mqtt_side/x",
            qos: 1
        })
    );
    assert_eq!(
        delivery.map(|d| d.payload().as_ptr()),
        Ok(message.body.as_ptr())
    );
    let empty_parent = rocketmq_to_mqtt(&message, "");
    assert_eq!(
        empty_parent.err(),
        Some(MappingError::EmptyParentTopic { topic: "/x".into() })
    );
}

#[test]
fn mqtt_to_rocketmq_properties() {
    type Row = (
        &'static str,
        u8,
        Option<&'static str>,
        Option<bool>,
        PropertyStyle,
        &'static [(&'static str, &'static str)],
    );
    let table: &[Row] = &[
        (
            "A",
            0,
            None,
            None,
            PropertyStyle::Lowercase,
            &[("qoslevel", "0")],
        ),
        (
            "A/B/C",
            1,
            None,
            None,
            PropertyStyle::Lowercase,
            &[("mqttSecondTopic", "/B/C"), ("qoslevel", "1")],
        ),
        (
            "A/",
            2,
            None,
            None,
            PropertyStyle::CamelCase,
            &[("mqttSecondTopic", "/"), ("qosLevel", "2")],
        ),
        (
            "A/p2p/GID_t@@@x",
            1,
            Some("GID_s@@@y"),
            Some(false),
            PropertyStyle::Lowercase,
            &[
                ("mqttSecondTopic", "/p2p/GID_t@@@x"),
                ("qoslevel", "1"),
                ("cleansessionflag", "false"),
                ("clientId", "GID_s@@@y"),
            ],
        ),
        (
            "A/b",
            1,
            Some("GID_s@@@y"),
            Some(true),
            PropertyStyle::CamelCase,
            &[
                ("mqttSecondTopic", "/b"),
                ("qosLevel", "1"),
                ("cleanSessionFlag", "true"),
                ("clientId", "GID_s@@@y"),
            ],
        ),
    ];
    for (topic, qos, sender, clean, style, properties) in table {
        let mut message = publish(topic, *qos);
        message.sender_client_id = sender.map(str::to_owned);
        message.sender_clean_session = *clean;
        let result = mqtt_to_rocketmq(&message, "target", *style);
        let expected = properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(
            result.as_ref().map(|m| &m.properties),
            Ok(&expected),
            "{topic}"
        );
        assert_eq!(result.as_ref().map(|m| m.topic.as_str()), Ok("target"));
        assert_eq!(
            result.map(|m| m.body.as_ptr()),
            Ok(message.payload.as_ptr()),
            "payload copied"
        );
    }
}

#[test]
fn mqtt_to_rocketmq_refuses_what_mqtt_would_refuse() {
    let table = [
        (
            "A/#",
            1,
            MappingError::InvalidTopic(TopicError::WildcardInName),
        ),
        ("", 1, MappingError::InvalidTopic(TopicError::Empty)),
        (
            "/B",
            1,
            MappingError::EmptyParentTopic { topic: "/B".into() },
        ),
        (
            "A/p2p",
            1,
            MappingError::InvalidP2p(P2pError::MissingTarget),
        ),
        (
            "A/p2p/x/y",
            1,
            MappingError::InvalidP2p(P2pError::TrailingLevels),
        ),
    ];
    for (topic, qos, error) in table {
        assert_eq!(
            mqtt_to_rocketmq(&publish(topic, qos), "A", PropertyStyle::Lowercase).err(),
            Some(error),
            "{topic}"
        );
    }
}

#[test]
fn split_topic_table() {
    let table = [
        ("A/B/C", ("A", "/B/C")),
        ("A", ("A", "")),
        ("A/", ("A", "/")),
        ("/A", ("", "/A")),
        ("", ("", "")),
    ];
    for (topic, parts) in table {
        assert_eq!(split_topic(topic), parts, "{topic}");
    }
}

fn with_user_properties(user: &[(&str, &str)]) -> MqttMessage {
    let mut message = publish("sensors/a", 1);
    message.sender_client_id = Some("GID_dev@@@real".into());
    message.user_properties = user
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    message
}

#[test]
fn user_properties_go_plain_unless_their_name_clashes() {
    let message = with_user_properties(&[
        ("unit", "C"),
        ("clientId", "GID_dev@@@forged"),
        ("unit", "F"),
        ("qoslevel", "2"),
        ("bad\u{1}name", "x"),
        ("ok", "bad\u{2}value"),
    ]);
    let rocket = mqtt_to_rocketmq(&message, "sensors", PropertyStyle::Lowercase).unwrap();
    let plain = &rocket.properties;
    // The first of a repeated name stands; the mapping's own names keep their meaning.
    assert_eq!(plain["unit"], "C");
    assert_eq!(plain["clientId"], "GID_dev@@@real");
    assert_eq!(plain["qoslevel"], "1");
    assert!(!plain.contains_key("bad\u{1}name"));
    assert!(!plain.contains_key("ok"));
    // Nothing is lost: the list has them all, in order.
    let back = rocketmq_to_mqtt(&rocket, "sensors").unwrap();
    assert_eq!(back.user_properties(), &message.user_properties[..]);
}

#[test]
fn a_message_without_user_properties_gets_no_list() {
    let rocket = mqtt_to_rocketmq(
        &publish("sensors/a", 0),
        "sensors",
        PropertyStyle::CamelCase,
    )
    .unwrap();
    assert!(!rocket
        .properties
        .contains_key(property::MQTT_USER_PROPERTIES));
    let back = rocketmq_to_mqtt(&rocket, "sensors").unwrap();
    assert!(back.user_properties().is_empty());
}

#[test]
fn a_rocketmq_producers_own_properties_become_user_properties_by_name() {
    let message = rocket(
        "sensors",
        &[
            ("mqttSecondTopic", "/a"),
            ("zone", "eu"),
            ("qosLevel", "1"),
            ("clientId", "GID_x@@@y"),
            ("batch", "7"),
        ],
    );
    let back = rocketmq_to_mqtt(&message, "sensors").unwrap();
    let expected = [("batch", "7"), ("zone", "eu")].map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(back.user_properties(), &expected[..]);
}

#[test]
fn a_malformed_user_property_list_is_an_error() {
    for list in ["not json", r#"[["a"]]"#, r#"{"a":"b"}"#, r#"[["a",1]]"#] {
        let message = rocket("sensors", &[("mqttUserProperties", list)]);
        assert!(
            matches!(
                rocketmq_to_mqtt(&message, "sensors"),
                Err(MappingError::InvalidUserProperties { .. })
            ),
            "{list}"
        );
    }
}
