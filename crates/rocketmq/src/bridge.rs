//! The rules applied: what crosses the bridge, where it goes.

use mqgate_status::StatusEvent;

use crate::{
    mqtt_to_rocketmq, rocketmq_to_mqtt, split_topic, status_to_rocketmq, Delivery, MappingError,
    MqttMessage, RocketMessage, RuleSet,
};

impl RuleSet {
    /// The RocketMQ message an MQTT publish also becomes, when an outflow
    /// rule covers its parent topic; `Ok(None)` when none does.
    ///
    /// # Errors
    ///
    /// As [`mqtt_to_rocketmq`].
    pub fn outflow(&self, message: &MqttMessage) -> Result<Option<RocketMessage>, MappingError> {
        let (parent, _) = split_topic(&message.topic);
        self.outflow_for(parent)
            .map(|rocketmq_topic| mqtt_to_rocketmq(message, rocketmq_topic, self.property_style))
            .transpose()
    }

    /// What a consumed RocketMQ message becomes on the MQTT side, when an
    /// inflow rule covers its topic; `Ok(None)` when none does.
    ///
    /// # Errors
    ///
    /// As [`rocketmq_to_mqtt`].
    pub fn inflow(&self, message: &RocketMessage) -> Result<Option<Delivery>, MappingError> {
        self.inflow_for(&message.topic)
            .map(|parent| rocketmq_to_mqtt(message, parent))
            .transpose()
    }

    /// The RocketMQ message a status event becomes, when a status rule covers
    /// the client's group; `None` when none does (or the client id has no
    /// group).
    #[must_use]
    pub fn status(&self, event: &StatusEvent) -> Option<RocketMessage> {
        let group_id = event.group_id()?;
        self.status_for(group_id)
            .map(|topic| status_to_rocketmq(event, topic))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use mqgate_codec::{ByteStr, QoS};
    use mqgate_status::{ChannelId, EventType};

    use crate::{BridgeRules, InflowRule, OutflowRule, PropertyStyle, StatusRule};

    use super::*;

    fn rules() -> RuleSet {
        let rules = BridgeRules {
            outflow: vec![OutflowRule {
                mqtt_parent_topic: "sensors".into(),
                rocketmq_topic: Some("reports".into()),
            }],
            inflow: vec![InflowRule {
                rocketmq_topic: "commands".into(),
                mqtt_parent_topic: Some("cmd".into()),
            }],
            status: vec![StatusRule {
                group_id: "GID_dev".into(),
                rocketmq_topic: "dev_status".into(),
            }],
            property_style: PropertyStyle::CamelCase,
        };
        rules.compile().unwrap_or_default()
    }

    #[test]
    fn outflow_follows_the_rule_and_its_style() {
        let rules = rules();
        let publish = |topic: &str| MqttMessage {
            topic: ByteStr::try_from(topic).unwrap(),
            qos: QoS::ExactlyOnce,
            retain: false,
            payload: Bytes::from_static(b"x"),
            sender_client_id: None,
            sender_clean_session: Some(false),
            user_properties: Vec::new(),
        };
        let sent = rules.outflow(&publish("sensors/a")).ok().flatten();
        assert_eq!(sent.as_ref().map(|m| m.topic.as_str()), Some("reports"));
        let properties = sent.map(|m| m.properties).unwrap_or_default();
        assert_eq!(properties.get("qosLevel").map(String::as_str), Some("2"));
        assert_eq!(
            properties.get("cleanSessionFlag").map(String::as_str),
            Some("false")
        );
        assert_eq!(properties.get("qoslevel"), None);
        assert_eq!(rules.outflow(&publish("other/a")), Ok(None));
        // A rule does not make an invalid topic acceptable.
        assert!(rules.outflow(&publish("sensors/+")).is_err());
    }

    #[test]
    fn inflow_follows_the_rule() {
        let rules = rules();
        let mut message = RocketMessage {
            topic: "commands".into(),
            ..RocketMessage::default()
        };
        message
            .properties
            .insert("mqttSecondTopic".into(), "/door/1".into());
        let topic = match rules.inflow(&message) {
            Ok(Some(Delivery::Publish { topic, .. })) => topic.to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(topic, "cmd/door/1");
        message.topic = "unmapped".into();
        assert_eq!(rules.inflow(&message), Ok(None));
    }

    #[test]
    fn status_goes_to_the_groups_topic() {
        let rules = rules();
        let mut event = StatusEvent {
            client_id: "GID_dev@@@7".into(),
            time: 1,
            event_type: EventType::Tcpclean,
            channel_id: ChannelId::from_bytes([3; 16]),
            client_ip: "1.1.1.1:1".into(),
            seq: 0,
        };
        let sent = rules.status(&event);
        assert_eq!(sent.as_ref().map(|m| m.topic.as_str()), Some("dev_status"));
        assert_eq!(sent.and_then(|m| m.tags).as_deref(), Some("tcpclean"));
        event.client_id = "GID_other@@@7".into();
        assert_eq!(rules.status(&event), None);
        event.client_id = "no-group".into();
        assert_eq!(rules.status(&event), None);
    }
}
