//! The per-message cost of crossing the bridge, both ways.
//!
//! cargo bench -p mqgate-rocketmq --bench mapping -- --warm-up-time 1 --measurement-time 3
// `criterion_group!` defines a public function without documentation.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mqgate_codec::{ByteStr, QoS};
use mqgate_rocketmq::{
    mqtt_to_rocketmq, rocketmq_to_mqtt, MqttMessage, PropertyStyle, RocketMessage,
};

fn mapping(c: &mut Criterion) {
    let publish = MqttMessage {
        topic: ByteStr::from_static("sensors/building-7/floor-3/room-12/temperature"),
        qos: QoS::AtLeastOnce,
        retain: false,
        payload: Bytes::from(vec![0u8; 256]),
        sender_client_id: Some("GID_sensors@@@device-000042".into()),
        sender_clean_session: Some(false),
        user_properties: Vec::new(),
    };
    let mut p2p = RocketMessage {
        topic: "chat".into(),
        body: Bytes::from(vec![0u8; 256]),
        ..RocketMessage::default()
    };
    p2p.properties.insert(
        "mqttSecondTopic".into(),
        "/p2p/GID_app@@@phone-000042".into(),
    );
    p2p.properties.insert("qoslevel".into(), "1".into());
    p2p.properties
        .insert("cleansessionflag".into(), "false".into());
    let pubsub =
        mqtt_to_rocketmq(&publish, "sensors", PropertyStyle::Lowercase).unwrap_or_default();

    let mut group = c.benchmark_group("rocketmq_mapping");
    group.throughput(Throughput::Elements(1));
    group.bench_function("mqtt_to_rocketmq", |b| {
        b.iter(|| mqtt_to_rocketmq(black_box(&publish), "sensors", PropertyStyle::Lowercase))
    });
    group.bench_function("rocketmq_to_mqtt_pubsub", |b| {
        b.iter(|| rocketmq_to_mqtt(black_box(&pubsub), "sensors"))
    });
    group.bench_function("rocketmq_to_mqtt_p2p", |b| {
        b.iter(|| rocketmq_to_mqtt(black_box(&p2p), "chat"))
    });
    group.finish();
}

criterion_group!(benches, mapping);
criterion_main!(benches);
