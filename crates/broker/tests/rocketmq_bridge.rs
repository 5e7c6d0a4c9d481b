//! The RocketMQ bridge against a real RocketMQ (`docs/rocketmq.md`): rumqttc devices on
//! one side, RocketMQ producers and consumers of `rocketmq-client-rust` on the other, the
//! Rust RocketMQ name server and broker in between. See `rocketmq/mod.rs` for where they run.

mod rocketmq;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mqgate_broker::{AckAfter, BrokerConfig, BrokerHandle, ConsumeFrom, RocketMqConfig};
use mqgate_rocketmq::{InflowRule, OutflowRule, StatusRule};
use mqgate_status::{EventType, Reconciler, ReconcilerConfig, StatusEvent};
use rocketmq::{healthz, send, ClientSide, RocketMq, SERVERS};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use support::{start_with, subscribe, tcp_addr, Client};
use tokio::sync::mpsc;

/// The longest wait for one message to cross RocketMQ (a new consumer's first delivery takes
/// about 1.5 s; a restarted broker's route takes longer).
const CROSSING: Duration = Duration::from_secs(30);
/// The longest wait for the bridge's next acknowledged send once RocketMQ is back (the
/// client may need its next route refresh, every 30 s, to use the restarted broker).
const RECOVERY: Duration = Duration::from_secs(60);

fn bridge_config(ns: &str, node: &str) -> RocketMqConfig {
    RocketMqConfig {
        name_server: ns.to_owned(),
        producer_group: format!("GID_{node}_producer"),
        consumer_group: format!("GID_{node}"),
        consume_from: ConsumeFrom::First,
        retry_min_ms: Duration::from_millis(100),
        retry_max_ms: Duration::from_millis(1000),
        ..RocketMqConfig::default()
    }
}

async fn broker_with(rocketmq: RocketMqConfig) -> BrokerHandle {
    let mut config = BrokerConfig::ephemeral();
    config.rocketmq = Some(rocketmq);
    // The HTTP listener for /healthz, on an ephemeral port.
    config.http.enabled = true;
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    start_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outflow_reaches_a_rocketmq_consumer_exactly() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("outflow_reaches_a_rocketmq_consumer_exactly").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let side = ClientSide::new();
    // The topic exists before the consumer subscribes (the client rebalances slowly onto a
    // topic it could not route yet).
    let producer = side.producer(&ns).await;
    send(&producer, "SensorReports", &[], b"warm-up").await;
    let mut consumer = side
        .consumer(&ns, "SensorReports", "GID_test_reports")
        .await;

    let mut config = bridge_config(&ns, "outflow");
    config.outflow = vec![OutflowRule {
        mqtt_parent_topic: "sensors".into(),
        rocketmq_topic: Some("SensorReports".into()),
    }];
    let broker = broker_with(config).await;
    let device = Client::connect(&broker, "GID_dev@@@d1", true).await;
    let binary: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xc3]).collect();
    device
        .client
        .publish(
            "sensors/room1/temp",
            QoS::AtLeastOnce,
            false,
            binary.clone(),
        )
        .await
        .expect("queued");
    device
        .client
        .publish("sensors/hall", QoS::AtMostOnce, false, "qos0")
        .await
        .expect("queued");
    device
        .client
        .publish("other/x", QoS::AtLeastOnce, false, "not bridged")
        .await
        .expect("queued");
    // A will under a bridged parent topic goes to RocketMQ too when its client drops.
    let addr = tcp_addr(&broker);
    let mut options = MqttOptions::new("GID_dev@@@d2", addr.ip().to_string(), addr.port());
    options.set_last_will(rumqttc::LastWill::new(
        "sensors/will",
        "d2 gone",
        QoS::AtLeastOnce,
        false,
    ));
    Client::with_options(options).await.kill();

    let mut seen = BTreeMap::new();
    let deadline = Instant::now() + CROSSING;
    while seen.len() < 3 && Instant::now() < deadline {
        if let Some(message) = consumer.next(Duration::from_secs(1)).await {
            if message.body != b"warm-up" {
                seen.insert(
                    message.property("mqttSecondTopic").unwrap_or("").to_owned(),
                    message,
                );
            }
        }
    }
    let temp = seen
        .get("/room1/temp")
        .expect("the QoS 1 report reached RocketMQ");
    assert_eq!(temp.topic, "SensorReports");
    assert_eq!(temp.body, binary, "payload byte for byte");
    assert_eq!(temp.property("qoslevel"), Some("1"));
    assert_eq!(temp.property("cleansessionflag"), Some("true"));
    assert_eq!(temp.property("clientId"), Some("GID_dev@@@d1"));
    let hall = seen
        .get("/hall")
        .expect("the QoS 0 report reached RocketMQ");
    assert_eq!(
        (hall.body.as_slice(), hall.property("qoslevel")),
        (&b"qos0"[..], Some("0"))
    );
    let will = seen.get("/will").expect("the will reached RocketMQ");
    assert_eq!(will.body, b"d2 gone");
    assert_eq!(will.property("clientId"), Some("GID_dev@@@d2"));
    assert!(seen.values().all(|m| m.body != b"not bridged"));
    // Nothing else arrives (the unbridged topic stays on the MQTT side); RocketMQ delivers at
    // least once, so a repeat of a bridged message may.
    while let Some(late) = consumer.next(Duration::from_secs(2)).await {
        assert!(
            late.body == b"warm-up" || seen.values().any(|m| m.body == late.body),
            "unexpected message in RocketMQ: {late:?}"
        );
    }
    // A burst from one publisher (most of it waits while a send is under way, and goes in
    // batches) is stored in one queue, in the order it was published.
    const BURST: usize = 300;
    for i in 0..BURST {
        let qos = if i % 2 == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        device
            .client
            .publish("sensors/burst", qos, false, format!("burst-{i:03}"))
            .await
            .expect("queued");
    }
    let mut burst = BTreeMap::new();
    let deadline = Instant::now() + CROSSING;
    while burst.len() < BURST && Instant::now() < deadline {
        if let Some(message) = consumer.next(Duration::from_secs(1)).await {
            if message.body.starts_with(b"burst-") {
                burst.insert(message.body.clone(), message);
            }
        }
    }
    assert_eq!(
        burst.len(),
        BURST,
        "every message of the burst reached RocketMQ"
    );
    let stored: Vec<(i32, i64)> = burst
        .values()
        .map(|m| (m.queue_id, m.queue_offset))
        .collect();
    assert!(
        stored
            .windows(2)
            .all(|w| w[0].0 == w[1].0 && w[0].1 < w[1].1),
        "one queue, in publish order: {stored:?}"
    );
    let metrics = broker.metrics();
    assert!(metrics.rocketmq_produced >= 3 + BURST as u64, "{metrics:?}");
    assert_eq!(metrics.rocketmq_buffered, 0);
    assert!(broker
        .rocketmq_health()
        .expect("bridge configured")
        .is_healthy());

    device.disconnect().await;
    broker.shutdown().await;
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflow_reaches_subscribers_and_p2p_targets() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("inflow_reaches_subscribers_and_p2p_targets").await else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let side = ClientSide::new();
    let producer = side.producer(&ns).await;
    send(&producer, "Commands", &[], b"warm-up").await;

    let mut config = bridge_config(&ns, "inflow");
    config.inflow = vec![InflowRule {
        rocketmq_topic: "Commands".into(),
        mqtt_parent_topic: Some("cmd".into()),
    }];
    let broker = broker_with(config).await;
    let mut door = Client::connect(&broker, "GID_dev@@@door", true).await;
    subscribe(&mut door, "cmd/door/#", QoS::ExactlyOnce).await;
    subscribe(&mut door, "door/two", QoS::ExactlyOnce).await;
    let mut phone = Client::connect(&broker, "GID_app@@@phone", true).await;
    // A persistent session that is offline when its P2P messages come.
    Client::connect(&broker, "GID_app@@@tablet", false)
        .await
        .disconnect()
        .await;

    send(
        &producer,
        "Commands",
        &[("mqttSecondTopic", "/door/1"), ("qoslevel", "0")],
        b"open",
    )
    .await;
    send(
        &producer,
        "Commands",
        &[
            ("mqttSecondTopic", "/p2p/GID_app@@@phone"),
            ("qoslevel", "1"),
            ("mqttRealTopic", "phone/inbox"),
        ],
        b"\x00ring\xff",
    )
    .await;
    send(
        &producer,
        "Commands",
        &[
            ("mqttSecondTopic", "/door/2"),
            ("qoslevel", "2"),
            ("mqttRealTopic", "door/two"),
        ],
        b"close",
    )
    .await;

    let mut at_door = Vec::new();
    while at_door.len() < 2 {
        let publish = tokio::time::timeout(CROSSING, door.publishes.recv())
            .await
            .expect("door commands in time")
            .expect("client running");
        at_door.push((
            publish.topic.clone(),
            publish.qos as u8,
            publish.payload.to_vec(),
        ));
    }
    at_door.sort();
    assert_eq!(
        at_door,
        vec![
            ("cmd/door/1".to_owned(), 0, b"open".to_vec()),
            ("door/two".to_owned(), 2, b"close".to_vec()),
        ]
    );
    let ring = tokio::time::timeout(CROSSING, phone.publishes.recv())
        .await
        .expect("P2P command in time")
        .expect("client running");
    assert_eq!(ring.topic, "phone/inbox", "mqttRealTopic is the topic seen");
    assert_eq!(ring.qos, QoS::AtLeastOnce);
    assert_eq!(ring.payload.as_ref(), b"\x00ring\xff");
    door.expect_nothing(Duration::from_millis(500)).await;

    // cleansessionflag: "true" reaches only a client online now; "false" is kept for an
    // offline persistent session and delivered when it connects.
    let before = broker.metrics();
    for (flag, body) in [("true", "dropped"), ("false", "kept")] {
        send(
            &producer,
            "Commands",
            &[
                ("mqttSecondTopic", "/p2p/GID_app@@@tablet"),
                ("cleansessionflag", flag),
            ],
            body.as_bytes(),
        )
        .await;
    }
    // Both consumed: the first found no online target, the second was queued.
    let deadline = Instant::now() + CROSSING;
    loop {
        let now = broker.metrics();
        if now.p2p_no_target > before.p2p_no_target
            && now.messages_delivered > before.messages_delivered
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "P2P commands not consumed in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut tablet = Client::connect(&broker, "GID_app@@@tablet", false).await;
    let kept = tablet.next().await;
    assert_eq!(
        (kept.topic.as_str(), kept.payload.as_ref()),
        ("cmd/p2p/GID_app@@@tablet", &b"kept"[..])
    );
    tablet.expect_nothing(Duration::from_millis(500)).await;
    tablet.disconnect().await;
    assert!(broker.metrics().rocketmq_consumed >= 5);
    assert!(broker.rocketmq_health().expect("bridge").is_healthy());

    door.disconnect().await;
    phone.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_events_reach_rocketmq_and_reconcile_with_the_registry() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) =
        RocketMq::start("status_events_reach_rocketmq_and_reconcile_with_the_registry").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let side = ClientSide::new();
    let producer = side.producer(&ns).await;
    send(&producer, "DeviceStatus", &[], b"warm-up").await;
    let mut consumer = side.consumer(&ns, "DeviceStatus", "GID_test_status").await;

    let mut config = bridge_config(&ns, "status");
    config.status = vec![StatusRule {
        group_id: "GID_dev".into(),
        rocketmq_topic: "DeviceStatus".into(),
    }];
    let broker = broker_with(config).await;
    let dropped = Client::connect(&broker, "GID_dev@@@s1", true).await;
    dropped.kill();
    let polite = Client::connect(&broker, "GID_dev@@@s2", true).await;
    polite.disconnect().await;
    let stays = Client::connect(&broker, "GID_dev@@@s3", true).await;
    let other = Client::connect(&broker, "GID_other@@@x", true).await;

    // s1: connect, tcpclean; s2: connect, disconnect, tcpclean; s3: connect.
    // RocketMQ delivers at least once: events are told apart by client and sequence number.
    let mut distinct: BTreeMap<(String, u64), StatusEvent> = BTreeMap::new();
    let read_event = |distinct: &mut BTreeMap<(String, u64), StatusEvent>,
                      message: rocketmq::Seen| {
        if message.body == b"warm-up" {
            return;
        }
        let event = StatusEvent::from_json(&message.body).expect("a status event as JSON");
        assert_eq!(
            message.tags.as_deref(),
            Some(event.event_type.as_str()),
            "tag = event type"
        );
        assert_eq!(
            message.keys.as_deref(),
            Some(event.client_id.as_str()),
            "key = client id"
        );
        distinct.insert((event.client_id.clone(), event.seq), event);
    };
    let deadline = Instant::now() + CROSSING;
    while distinct.len() < 6 && Instant::now() < deadline {
        if let Some(message) = consumer.next(Duration::from_secs(1)).await {
            read_event(&mut distinct, message);
        }
    }
    // Anything later is a repeat (GID_other has no rule, so none of its events).
    while let Some(message) = consumer.next(Duration::from_secs(1)).await {
        read_event(&mut distinct, message);
    }
    let events: Vec<StatusEvent> = distinct.into_values().collect();
    assert_eq!(events.len(), 6, "{events:?}");
    assert!(events.iter().all(|e| e.client_id.starts_with("GID_dev@@@")));
    let kinds = |id: &str| {
        let mut of: Vec<&StatusEvent> = events.iter().filter(|e| e.client_id == id).collect();
        of.sort_by_key(|e| e.seq);
        of.iter().map(|e| e.event_type).collect::<Vec<_>>()
    };
    assert_eq!(
        kinds("GID_dev@@@s1"),
        [EventType::Connect, EventType::Tcpclean]
    );
    assert_eq!(
        kinds("GID_dev@@@s2"),
        [
            EventType::Connect,
            EventType::Disconnect,
            EventType::Tcpclean
        ]
    );
    assert_eq!(kinds("GID_dev@@@s3"), [EventType::Connect]);

    let mut reconciler = Reconciler::new(ReconcilerConfig::default());
    for event in &events {
        let _ = reconciler.apply(event);
    }
    for id in ["GID_dev@@@s1", "GID_dev@@@s2", "GID_dev@@@s3"] {
        assert_eq!(reconciler.is_online(id), broker.is_online(id), "{id}");
    }
    assert!(reconciler.is_online("GID_dev@@@s3"));

    stays.disconnect().await;
    other.disconnect().await;
    broker.shutdown().await;
    consumer.stop().await;
}

/// A rumqttc publisher that sends QoS 1 messages one at a time and reports each PUBACK.
async fn acknowledged_publisher(
    broker: &BrokerHandle,
    count: usize,
) -> (mpsc::UnboundedReceiver<usize>, tokio::task::JoinHandle<()>) {
    let addr = tcp_addr(broker);
    let mut options = MqttOptions::new("GID_dev@@@steady", addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(60));
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let (acked_tx, acked) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let (puback_tx, mut pubacks) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                if let Event::Incoming(Incoming::PubAck(_)) = event {
                    let _ = puback_tx.send(());
                }
            }
        });
        for n in 0..count {
            client
                .publish("sensors/steady", QoS::AtLeastOnce, false, n.to_string())
                .await
                .expect("queued");
            // Bounded: the fault test's outage is far shorter.
            match tokio::time::timeout(Duration::from_secs(60), pubacks.recv()).await {
                Ok(Some(())) => {
                    let _ = acked_tx.send(n);
                }
                _ => break,
            }
        }
        driver.abort();
    });
    (acked, task)
}

/// An outflow-only bridge for `sensors` (to the RocketMQ topic of the same name), with the
/// topic created first.
async fn sensors_bridge(
    side: &ClientSide,
    ns: &str,
    node: &str,
    tune: impl FnOnce(&mut RocketMqConfig),
) -> BrokerHandle {
    let producer = side.producer(ns).await;
    send(&producer, "sensors", &[], b"warm-up").await;
    let mut config = bridge_config(ns, node);
    config.outflow = vec![OutflowRule {
        mqtt_parent_topic: "sensors".into(),
        rocketmq_topic: None,
    }];
    tune(&mut config);
    broker_with(config).await
}

/// Collects PUBACKed message numbers until none comes for [`RECOVERY`] or the publisher ends.
async fn collect_acks(acked: &mut mpsc::UnboundedReceiver<usize>, into: &mut Vec<usize>) {
    while let Ok(Some(n)) = tokio::time::timeout(RECOVERY, acked.recv()).await {
        into.push(n);
    }
}

/// Waits (bounded) until the bridge reports RocketMQ down.
async fn until_down(broker: &BrokerHandle) {
    let deadline = Instant::now() + CROSSING;
    while broker.rocketmq_health().expect("bridge").up {
        assert!(
            Instant::now() < deadline,
            "the bridge never reported RocketMQ down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts that a consumer group starting now (from the topic's first offset) finds every
/// number of `acknowledged` in `sensors`.
async fn assert_all_in_rocketmq(side: &ClientSide, ns: &str, group: &str, acknowledged: &[usize]) {
    let mut consumer = side.consumer(ns, "sensors", group).await;
    let mut arrived = std::collections::BTreeSet::new();
    let deadline = Instant::now() + CROSSING;
    while !acknowledged.iter().all(|n| arrived.contains(n)) && Instant::now() < deadline {
        if let Some(message) = consumer.next(Duration::from_secs(1)).await {
            if let Ok(n) = std::str::from_utf8(&message.body)
                .unwrap_or("")
                .parse::<usize>()
            {
                arrived.insert(n);
            }
        }
    }
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|n| !arrived.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never in RocketMQ: {missing:?}"
    );
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_a_rocketmq_restart() {
    let _serial = SERVERS.lock().await;
    let Some(mut rocketmq) =
        RocketMq::start("acknowledged_messages_survive_a_rocketmq_restart").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let side = ClientSide::new();
    let broker = sensors_bridge(&side, &ns, "fault", |config| {
        config.ack_after = AckAfter::Rocketmq;
        config.send_timeout_ms = Duration::from_millis(1500);
    })
    .await;
    const COUNT: usize = 60;
    let (mut acked, publisher) = acknowledged_publisher(&broker, COUNT).await;
    let mut acknowledged = Vec::new();
    // Some messages before the outage.
    while acknowledged.len() < 10 {
        let n = tokio::time::timeout(CROSSING, acked.recv())
            .await
            .expect("PUBACKs before the outage")
            .expect("publisher running");
        acknowledged.push(n);
    }
    // SIGKILL, a crash. (A SIGTERM is no better a test of the bridge: the 1.0.0 Rust broker
    // then loses a message it stored but had not indexed yet, which a consumer never sees.)
    rocketmq.kill_broker().await;

    // While RocketMQ is down the bridge reports it and MQTT keeps serving other traffic.
    let mut listener = Client::connect(&broker, "GID_app@@@listener", true).await;
    subscribe(&mut listener, "chat/#", QoS::AtLeastOnce).await;
    let talker = Client::connect(&broker, "GID_app@@@talker", true).await;
    until_down(&broker).await;
    for n in 0..5 {
        talker
            .client
            .publish("chat/room", QoS::AtLeastOnce, false, format!("m{n}"))
            .await
            .expect("queued");
        assert_eq!(
            listener.next().await.payload.as_ref(),
            format!("m{n}").as_bytes()
        );
    }
    let down = broker.rocketmq_health().expect("bridge");
    assert!(!down.up && down.last_error.is_some(), "{down:?}");
    let (status, body) = healthz(&broker).await;
    assert_eq!(status, 503, "/healthz shows the bridge down: {body}");
    assert!(body.contains("rocketmq bridge down"), "{body}");

    rocketmq.start_broker().await;
    let restarted = Instant::now();
    collect_acks(&mut acked, &mut acknowledged).await;
    let _ = publisher.await;
    eprintln!(
        "{} acknowledged, all within {:?} of the restart",
        acknowledged.len(),
        restarted.elapsed()
    );
    assert_eq!(
        acknowledged.len(),
        COUNT,
        "every message acknowledged once RocketMQ is back"
    );
    assert_all_in_rocketmq(&side, &ns, "GID_test_steady", &acknowledged).await;
    let metrics = broker.metrics();
    assert!(metrics.rocketmq_retried > 0, "{metrics:?}");
    assert_eq!(metrics.rocketmq_buffered, 0);
    assert!(broker.rocketmq_health().expect("bridge").up);
    assert_eq!(healthz(&broker).await.0, 200, "/healthz healthy again");

    listener.disconnect().await;
    talker.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_slows_publishers_until_rocketmq_is_back() {
    let _serial = SERVERS.lock().await;
    let Some(mut rocketmq) =
        RocketMq::start("a_full_buffer_slows_publishers_until_rocketmq_is_back").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let side = ClientSide::new();
    let broker = sensors_bridge(&side, &ns, "buffer", |config| {
        config.ack_after = AckAfter::Broker;
        config.buffer = 10;
        config.max_in_flight = 2;
        config.send_timeout_ms = Duration::from_millis(1000);
    })
    .await;
    rocketmq.kill_broker().await;

    const COUNT: usize = 20;
    let (mut acked, publisher) = acknowledged_publisher(&broker, COUNT).await;
    // ack_after = "broker": acknowledged as soon as the copy is in its lane, until the lane
    // holds its share of the buffer (10 over 2 lanes: 5, waiting or being sent: one
    // publisher's copies all take one lane); then the publisher waits.
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 5 {
        let n = tokio::time::timeout(CROSSING, acked.recv())
            .await
            .expect("PUBACKs while the buffer has room")
            .expect("publisher running");
        acknowledged.push(n);
    }
    let stalled = tokio::time::timeout(Duration::from_secs(2), acked.recv()).await;
    assert!(
        stalled.is_err(),
        "a sixth PUBACK past the bound: {stalled:?}"
    );
    assert_eq!(broker.metrics().rocketmq_buffered, 5);
    until_down(&broker).await;

    rocketmq.start_broker().await;
    collect_acks(&mut acked, &mut acknowledged).await;
    let _ = publisher.await;
    assert_eq!(acknowledged.len(), COUNT);
    assert_all_in_rocketmq(&side, &ns, "GID_test_buffer", &acknowledged).await;
    let metrics = broker.metrics();
    assert!(
        metrics.rocketmq_retried > 0 && metrics.rocketmq_buffered == 0,
        "{metrics:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_bad_rule_fails_start_naming_it() {
    let rocketmq = RocketMqConfig {
        inflow: vec![InflowRule {
            rocketmq_topic: "Commands".into(),
            mqtt_parent_topic: Some("cmd/door".into()),
        }],
        ..RocketMqConfig::default()
    };
    let mut config = BrokerConfig::ephemeral();
    config.rocketmq = Some(rocketmq);
    let error = mqgate_broker::Broker::builder()
        .config(config)
        .build()
        .start()
        .await
        .expect_err("a parent topic with `/` is refused");
    let text = error.to_string();
    assert!(
        text.contains("inflow rule #0") && text.contains("cmd/door"),
        "{text}"
    );
}

/// A rumqttc MQTT 5 client's event loop, polled until `want` returns something (bounded).
async fn poll5<T>(
    eventloop: &mut rumqttc::v5::EventLoop,
    mut want: impl FnMut(rumqttc::v5::mqttbytes::v5::Packet) -> Option<T>,
) -> T {
    let deadline = Instant::now() + CROSSING;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, eventloop.poll()).await {
            Ok(Ok(rumqttc::v5::Event::Incoming(packet))) => {
                if let Some(found) = want(packet) {
                    return found;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => panic!("MQTT 5 client failed: {error}"),
            Err(_) => panic!("nothing in time"),
        }
    }
}

/// The user properties of a v5 PUBLISH, as owned pairs.
fn user_pairs(publish: &rumqttc::v5::mqttbytes::v5::Publish) -> Vec<(String, String)> {
    publish
        .properties
        .as_ref()
        .map(|p| p.user_properties.clone())
        .unwrap_or_default()
}

/// MQTT 5 User Properties become RocketMQ properties and come back: all of them in
/// `mqttUserProperties` (order and repeated names kept), each also as a plain property
/// unless its name clashes (the mapping's own `clientId`, RocketMQ's `KEYS`, a repeat); a
/// RocketMQ producer's own properties reach MQTT 5 subscribers as User Properties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_user_properties_cross_rocketmq_both_ways() {
    use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PublishProperties};
    use rumqttc::v5::mqttbytes::QoS as QoS5;

    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("mqtt5_user_properties_cross_rocketmq_both_ways").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let side = ClientSide::new();
    let producer = side.producer(&ns).await;
    send(&producer, "Telemetry", &[], b"warm-up").await;
    send(&producer, "Downlink", &[], b"warm-up").await;
    let mut consumer = side.consumer(&ns, "Telemetry", "GID_test_telemetry").await;

    let mut config = bridge_config(&ns, "userprops");
    config.outflow = vec![OutflowRule {
        mqtt_parent_topic: "telemetry".into(),
        rocketmq_topic: Some("Telemetry".into()),
    }];
    config.inflow = vec![InflowRule {
        rocketmq_topic: "Downlink".into(),
        mqtt_parent_topic: Some("down".into()),
    }];
    let broker = broker_with(config).await;
    let addr = tcp_addr(&broker);
    let options = rumqttc::v5::MqttOptions::new("GID_dev@@@v5", addr.ip().to_string(), addr.port());
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 16);
    poll5(&mut eventloop, |p| {
        matches!(p, Packet::ConnAck(_)).then_some(())
    })
    .await;
    client
        .subscribe("down/#", QoS5::AtLeastOnce)
        .await
        .expect("queued");
    poll5(&mut eventloop, |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await;

    let sent: Vec<(String, String)> = [
        ("unit", "C"),
        ("clientId", "GID_dev@@@forged"),
        ("KEYS", "k1"),
        ("unit", "F"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let properties = PublishProperties {
        user_properties: sent.clone(),
        ..PublishProperties::default()
    };
    client
        .publish_with_properties("telemetry/t1", QoS5::AtLeastOnce, false, "21.5", properties)
        .await
        .expect("queued");
    // No MQTT subscriber, but an outflow rule: someone receives it (PUBACK 0x00); no rule
    // and no subscriber: 0x10 (No matching subscribers).
    let reason = |p| match p {
        Packet::PubAck(ack) => Some(ack.reason),
        _ => None,
    };
    assert_eq!(poll5(&mut eventloop, reason).await, PubAckReason::Success);
    client
        .publish("unbridged/t1", QoS5::AtLeastOnce, false, "lost")
        .await
        .expect("queued");
    assert_eq!(
        poll5(&mut eventloop, reason).await,
        PubAckReason::NoMatchingSubscribers
    );

    let deadline = Instant::now() + CROSSING;
    let seen = loop {
        assert!(
            Instant::now() < deadline,
            "the report did not reach RocketMQ"
        );
        match consumer.next(Duration::from_secs(1)).await {
            Some(m) if m.body == b"21.5" => break m,
            _ => {}
        }
    };
    assert_eq!(seen.property("unit"), Some("C"), "the first value stands");
    assert_eq!(
        seen.property("clientId"),
        Some("GID_dev@@@v5"),
        "not forged"
    );
    assert_ne!(
        seen.keys.as_deref(),
        Some("k1"),
        "RocketMQ's KEYS stays its own"
    );
    let list = seen.property("mqttUserProperties").expect("the list");
    let listed: Vec<(String, String)> = serde_json::from_str(list).expect("JSON pairs");
    assert_eq!(listed, sent);

    // What RocketMQ received goes back in: the list gives the devices exactly what was sent.
    let mut back: Vec<(&str, &str)> = seen
        .properties
        .iter()
        .filter(|(k, _)| ["mqttUserProperties", "unit"].contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    back.push(("mqttSecondTopic", "/roundtrip"));
    send(&producer, "Downlink", &back, b"again").await;
    let again = poll5(&mut eventloop, |p| match p {
        Packet::Publish(p) if p.payload.as_ref() == b"again" => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(again.topic.as_ref(), b"down/roundtrip");
    assert_eq!(user_pairs(&again), sent);

    // A RocketMQ producer's own properties, without the list: User Properties by name.
    send(
        &producer,
        "Downlink",
        &[
            ("mqttSecondTopic", "/native"),
            ("zone", "eu"),
            ("batch", "7"),
        ],
        b"native",
    )
    .await;
    let native = poll5(&mut eventloop, |p| match p {
        Packet::Publish(p) if p.payload.as_ref() == b"native" => Some(p),
        _ => None,
    })
    .await;
    let expected = [("batch", "7"), ("zone", "eu")].map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(user_pairs(&native), expected);

    drop(client);
    broker.shutdown().await;
    consumer.stop().await;
}
