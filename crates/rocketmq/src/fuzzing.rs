//! Entry points of the fuzz targets (`fuzz/fuzz_targets/rocketmq_*.rs`).
//!
//! Each function feeds arbitrary input to the mapping and panics only if an
//! invariant breaks; the mapping itself never panics. The crate's own tests
//! run the same functions over random inputs.

use bytes::Bytes;

use crate::{property, rocketmq_to_mqtt, Delivery, RocketMessage};

/// A RocketMQ message from a backend, consumed under the MQTT parent topic
/// of the same name: a delivery shares the body, and a
/// pub/sub delivery's topic is exactly the parent topic followed by
/// `mqttSecondTopic`.
pub fn inflow(parent: &str, properties: Vec<(String, String)>, body: Vec<u8>) {
    let message = RocketMessage {
        topic: parent.to_owned(),
        tags: None,
        keys: Vec::new(),
        properties: properties.into_iter().collect(),
        body: Bytes::from(body),
    };
    let Ok(delivery) = rocketmq_to_mqtt(&message, parent) else {
        return;
    };
    assert_eq!(delivery.payload().as_ptr(), message.body.as_ptr());
    if let Delivery::Publish { topic, .. } = &delivery {
        let subtopic = message
            .properties
            .get(property::MQTT_SECOND_TOPIC)
            .map_or("", String::as_str);
        assert_eq!(topic.as_str(), format!("{parent}{subtopic}"));
    }
}
