//! A slow consumer: four fast QoS 1 publishers, one subscriber that reads slowly. Every
//! PUBACKed message must arrive; the broker slows the publishers instead of dropping.
// Test and benchmark code: an unwrap that fails is a failure to report (clippy.toml allows
// it inside #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use mqgate_broker::BrokerConfig;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use support::{start_with, tcp_addr};
use tokio::time::timeout;

const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 150;

fn options(broker: &mqgate_broker::BrokerHandle, id: &str) -> MqttOptions {
    let addr = tcp_addr(broker);
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(true);
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_reaches_a_slow_subscriber() {
    let mut config = BrokerConfig::ephemeral();
    // Small bounds so that backpressure engages quickly.
    config.limits.inbox_capacity = 4;
    config.session.max_queued_messages = 16;
    config.session.inflight_window = 4;
    let broker = start_with(config).await;

    // The slow subscriber: it sleeps after each message, so its socket fills up.
    let (mut got_rx, subscriber) = support::slow_subscriber(
        &broker,
        "slow",
        "load/#",
        QoS::AtLeastOnce,
        Duration::from_millis(2),
    )
    .await;

    // Four publishers, each counting the PUBACKs it receives.
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let (client, mut eventloop) =
            AsyncClient::new(options(&broker, &format!("fast-{p}")), 1024);
        publishers.push(tokio::spawn(async move {
            for i in 0..PER_PUBLISHER {
                client
                    .publish(
                        format!("load/{p}"),
                        QoS::AtLeastOnce,
                        false,
                        format!("{p}:{i}"),
                    )
                    .await
                    .unwrap();
            }
            let mut acked = 0;
            while acked < PER_PUBLISHER {
                match timeout(Duration::from_secs(20), eventloop.poll()).await {
                    Ok(Ok(Event::Incoming(Incoming::PubAck(_)))) => acked += 1,
                    Ok(Ok(_)) => {}
                    other => panic!("publisher {p} stopped after {acked} PUBACKs: {other:?}"),
                }
            }
            acked
        }));
    }
    let mut acked = 0;
    for publisher in publishers {
        acked += timeout(Duration::from_secs(30), publisher)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(acked, PUBLISHERS * PER_PUBLISHER);

    let mut seen = HashSet::new();
    while seen.len() < PUBLISHERS * PER_PUBLISHER {
        let payload = timeout(support::WAIT, got_rx.recv())
            .await
            .unwrap()
            .unwrap();
        seen.insert(payload);
    }
    for p in 0..PUBLISHERS {
        for i in 0..PER_PUBLISHER {
            assert!(seen.contains(format!("{p}:{i}").as_bytes()), "{p}:{i} lost");
        }
    }
    let metrics = broker.metrics();
    assert_eq!(metrics.session_dropped, 0, "{metrics:?}");
    assert_eq!(metrics.backpressure_timeouts, 0, "{metrics:?}");
    assert!(
        metrics.backpressure_waits > 0,
        "publishers were slowed down: {metrics:?}"
    );
    eprintln!("{metrics:?}");
    subscriber.abort();
    broker.shutdown().await;
}
