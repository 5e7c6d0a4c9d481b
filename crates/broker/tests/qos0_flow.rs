//! QoS 0 flow control: a full receiver slows a QoS 0 publisher down (briefly) instead of
//! losing its messages, and a receiver that stopped reading loses its QoS 0 messages without
//! stalling the publisher or the other receivers.
// Test and benchmark code: an unwrap that fails is a failure to report (clippy.toml allows
// it inside #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use mqgate_broker::BrokerConfig;
use mqgate_codec::{ByteStr, Packet, PacketId, QoS as CodecQoS, Subscribe, SubscribeFilter};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use support::{start_with, subscribe, tcp_addr, Client, Raw};
use tokio::time::timeout;

fn options(broker: &mqgate_broker::BrokerHandle, id: &str) -> MqttOptions {
    let addr = tcp_addr(broker);
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(64 * 1024, 64 * 1024);
    options
}

/// Publishes `count` QoS 0 messages of `size` bytes to `topic` as fast as rumqttc sends them,
/// then a QoS 1 marker, and waits for the marker's PUBACK (everything before it was read by
/// the broker by then).
async fn publish_burst(
    broker: &mqgate_broker::BrokerHandle,
    topic: &str,
    count: usize,
    size: usize,
) {
    let (client, mut eventloop) = AsyncClient::new(options(broker, "burst"), 4096);
    let driver = tokio::spawn(async move {
        loop {
            match timeout(Duration::from_secs(60), eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Incoming::PubAck(_)))) => return,
                Ok(Ok(_)) => {}
                other => panic!("publisher stopped: {other:?}"),
            }
        }
    });
    for i in 0..count {
        let mut payload = vec![b'.'; size];
        let label = i.to_string();
        payload[..label.len()].copy_from_slice(label.as_bytes());
        client
            .publish(topic, QoS::AtMostOnce, false, payload)
            .await
            .unwrap();
    }
    client
        .publish(topic, QoS::AtLeastOnce, false, "end")
        .await
        .unwrap();
    timeout(Duration::from_secs(60), driver)
        .await
        .expect("the publisher's burst was read in time")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_qos0_subscriber_slows_the_publisher_instead_of_losing_messages() {
    const COUNT: usize = 600;
    let mut config = BrokerConfig::ephemeral();
    config.limits.inbox_capacity = 4;
    // Long enough that only a stuck subscriber could exhaust it.
    config.limits.qos0_wait = Duration::from_secs(10);
    let broker = start_with(config).await;

    // A subscriber that reads slowly: its inbox of 4 is full most of the time.
    let (mut got_rx, subscriber) = support::slow_subscriber(
        &broker,
        "slow",
        "burst/#",
        QoS::AtMostOnce,
        Duration::from_millis(1),
    )
    .await;

    publish_burst(&broker, "burst/a", COUNT, 64).await;
    for i in 0..COUNT {
        let payload = timeout(support::WAIT, got_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("message {i} never arrived"))
            .unwrap();
        assert!(
            payload.starts_with(i.to_string().as_bytes()),
            "message {i} arrived in order"
        );
    }
    let metrics = broker.metrics();
    assert_eq!(metrics.qos0_dropped, 0, "{metrics:?}");
    assert!(metrics.backpressure_waits > 0, "{metrics:?}");
    subscriber.abort();
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_qos0_subscriber_loses_its_messages_and_stalls_nobody() {
    // 20 MiB in all: more than the loopback socket buffers hold for the stuck client.
    const COUNT: usize = 5_000;
    const SIZE: usize = 4 * 1024;
    let mut config = BrokerConfig::ephemeral();
    config.limits.inbox_capacity = 8;
    config.limits.qos0_wait = Duration::from_secs(2);
    let broker = start_with(config).await;

    // The stuck one subscribes and then never reads again.
    let mut stuck = Raw::connect(&broker, "stuck", 0).await;
    stuck
        .send(Packet::Subscribe(Subscribe {
            packet_id: PacketId::new(1).unwrap(),
            filters: vec![SubscribeFilter {
                filter: ByteStr::from_static("feed/#"),
                qos: CodecQoS::AtMostOnce,
            }],
        }))
        .await;
    assert!(matches!(stuck.recv().await, Some(Packet::SubAck(_))));

    let mut healthy = Client::connect(&broker, "healthy", true).await;
    subscribe(&mut healthy, "feed/#", QoS::AtMostOnce).await;

    let reader = tokio::spawn(async move {
        for i in 0..COUNT {
            let p = healthy.next().await;
            assert!(
                p.payload.starts_with(i.to_string().as_bytes()),
                "message {i} in order"
            );
        }
        healthy
    });
    publish_burst(&broker, "feed/x", COUNT, SIZE).await;
    let healthy = timeout(Duration::from_secs(60), reader)
        .await
        .expect("the healthy subscriber got every message")
        .unwrap();
    let metrics = broker.metrics();
    assert!(
        metrics.qos0_dropped > 0,
        "the stuck subscriber's messages were dropped: {metrics:?}"
    );
    assert_eq!(metrics.backpressure_timeouts, 0, "{metrics:?}");
    healthy.kill();
    drop(stuck);
    broker.shutdown().await;
}
