//! Connection life cycle over real sockets: wills, keep-alive, takeover, offline queues,
//! QoS 2 duplicate suppression, status events and `is_online`.
// Test and benchmark code: an unwrap that fails is a failure to report (clippy.toml allows
// it inside #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use mqgate_codec::{ByteStr, Connect, LastWill, Packet, PacketId, Publish, QoS as Q};
use mqgate_status::EventType;
use rumqttc::{MqttOptions, QoS};
use support::{start, subscribe, tcp_addr, Client, Raw, WAIT};

fn will_options(broker: &mqgate_broker::BrokerHandle, id: &str) -> MqttOptions {
    let addr = tcp_addr(broker);
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_last_will(rumqttc::LastWill::new(
        "wills/x",
        "gone",
        QoS::AtLeastOnce,
        false,
    ));
    options
}

#[tokio::test]
async fn will_is_published_on_abnormal_close_and_not_after_disconnect() {
    let broker = start().await;
    let mut watcher = Client::connect(&broker, "watcher", true).await;
    subscribe(&mut watcher, "wills/#", QoS::AtLeastOnce).await;

    let dying = Client::with_options(will_options(&broker, "dying")).await;
    dying.kill();
    let will = watcher.next().await;
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("wills/x", &b"gone"[..])
    );

    let polite = Client::with_options(will_options(&broker, "polite")).await;
    polite.disconnect().await;
    watcher.expect_nothing(Duration::from_millis(400)).await;
    assert_eq!(broker.metrics().wills_published, 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_one_and_a_half_keep_alives() {
    let broker = start().await;
    let mut raw = Raw::connect(&broker, "silent", 1).await;
    let started = Instant::now();
    let closed = raw.recv_within(Duration::from_secs(4)).await;
    let elapsed = started.elapsed();
    assert_eq!(closed, Ok(None), "closed, not answered");
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_millis(2600),
        "closed after {elapsed:?}"
    );
    assert_eq!(broker.metrics().keep_alive_expired, 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn takeover_closes_the_old_connection_and_keeps_the_session() {
    let broker = start().await;
    let mut first = Raw::open(&broker).await;
    let connect = |clean| {
        Packet::Connect(Box::new(Connect {
            client_id: ByteStr::from_static("GID_t@@@dev"),
            clean_session: clean,
            keep_alive: 30,
            ..Connect::default()
        }))
    };
    first.send(connect(false)).await;
    assert!(matches!(first.recv().await, Some(Packet::ConnAck(a)) if !a.session_present));
    let mut second = Raw::open(&broker).await;
    second.send(connect(false)).await;
    match second.recv().await {
        Some(Packet::ConnAck(ack)) => assert!(ack.session_present, "the session moved over"),
        other => panic!("{other:?}"),
    }
    first.expect_closed().await;
    assert!(broker.is_online("GID_t@@@dev"));
    assert_eq!(broker.metrics().takeovers, 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn refuse_new_policy_keeps_the_old_connection() {
    let mut config = mqgate_broker::BrokerConfig::ephemeral();
    config.takeover = mqgate_broker::TakeoverPolicy::RefuseNew;
    let broker = support::start_with(config).await;
    let _first = Raw::connect(&broker, "only-one", 30).await;
    let mut second = Raw::open(&broker).await;
    second
        .send(Packet::Connect(Box::new(Connect {
            client_id: ByteStr::from_static("only-one"),
            ..Connect::default()
        })))
        .await;
    match second.recv().await {
        Some(Packet::ConnAck(ack)) => {
            assert_eq!(
                ack.code,
                mqgate_codec::ConnectReturnCode::IdentifierRejected
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(broker.is_online("only-one"));
    broker.shutdown().await;
}

#[tokio::test]
async fn offline_messages_arrive_in_order_after_reconnect() {
    let broker = start().await;
    let mut phone = Client::connect(&broker, "GID_app@@@phone", false).await;
    subscribe(&mut phone, "news/#", QoS::AtLeastOnce).await;
    phone.disconnect().await;
    assert!(!broker.is_online("GID_app@@@phone"));
    for i in 0..20 {
        broker
            .publish("news/today", i.to_string(), Q::AtLeastOnce, false)
            .await
            .unwrap();
    }
    // P2P to the offline persistent session is queued too.
    broker
        .publish("chat/p2p/GID_app@@@phone", "direct", Q::AtLeastOnce, false)
        .await
        .unwrap();
    let mut phone = Client::connect(&broker, "GID_app@@@phone", false).await;
    for i in 0..20 {
        let got = phone.next().await;
        assert_eq!(&got.payload[..], i.to_string().as_bytes(), "in order");
    }
    assert_eq!(&phone.next().await.payload[..], b"direct");
    broker.shutdown().await;
}

#[tokio::test]
async fn qos2_duplicates_are_delivered_once() {
    let broker = start().await;
    let mut sub = Client::connect(&broker, "q2-sub", true).await;
    subscribe(&mut sub, "q2", QoS::ExactlyOnce).await;
    let mut raw = Raw::connect(&broker, "q2-pub", 30).await;
    let id = PacketId::new(7).unwrap();
    let publish = |dup| {
        let mut p = Publish::new(
            Q::ExactlyOnce,
            Some(id),
            ByteStr::from_static("q2"),
            Bytes::from_static(b"once"),
        );
        p.dup = dup;
        Packet::Publish(p)
    };
    raw.send(publish(false)).await;
    assert_eq!(raw.recv().await, Some(Packet::PubRec(id)));
    raw.send(publish(true)).await;
    assert_eq!(raw.recv().await, Some(Packet::PubRec(id)));
    raw.send(Packet::PubRel(id)).await;
    assert_eq!(raw.recv().await, Some(Packet::PubComp(id)));
    assert_eq!(&sub.next().await.payload[..], b"once");
    sub.expect_nothing(Duration::from_millis(300)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn status_events_come_once_each_in_order() {
    let broker = start().await;
    let mut events = broker.status_events();
    let polite = Raw::connect(&broker, "GID_s@@@polite", 30).await;
    let mut polite = polite;
    polite.send(Packet::Disconnect).await;
    polite.expect_closed().await;
    let rude = Raw::connect(&broker, "GID_s@@@rude", 30).await;
    assert!(broker.is_online("GID_s@@@rude"));
    drop(rude);
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap();
        seen.push((event.client_id.clone(), event.event_type, event.channel_id));
    }
    let kinds: Vec<_> = seen.iter().map(|(c, k, _)| (c.as_str(), *k)).collect();
    assert_eq!(
        kinds,
        [
            ("GID_s@@@polite", EventType::Connect),
            ("GID_s@@@polite", EventType::Disconnect),
            ("GID_s@@@polite", EventType::Tcpclean),
            ("GID_s@@@rude", EventType::Connect),
            ("GID_s@@@rude", EventType::Tcpclean),
        ]
    );
    assert_eq!(seen[0].2, seen[2].2, "one channel id per connection");
    assert_ne!(seen[0].2, seen[3].2, "a new channel id per connection");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.recv())
            .await
            .is_err()
    );
    assert!(!broker.is_online("GID_s@@@rude"));
    broker.shutdown().await;
}

#[tokio::test]
async fn a_raw_will_with_retain_is_kept_for_later_subscribers() {
    let broker = start().await;
    let mut raw = Raw::open(&broker).await;
    raw.send(Packet::Connect(Box::new(Connect {
        client_id: ByteStr::from_static("lamp"),
        keep_alive: 30,
        will: Some(LastWill {
            topic: ByteStr::from_static("lamp/status"),
            payload: Bytes::from_static(b"offline"),
            qos: Q::AtLeastOnce,
            retain: true,
        }),
        ..Connect::default()
    })))
    .await;
    assert!(matches!(raw.recv().await, Some(Packet::ConnAck(_))));
    drop(raw);
    let mut later = Client::connect(&broker, "dashboard", true).await;
    // The will is published when the broker notices the close; poll briefly for it.
    let mut got = None;
    for _ in 0..20 {
        subscribe(&mut later, "lamp/status", QoS::AtLeastOnce).await;
        if let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_millis(100), later.publishes.recv()).await
        {
            got = Some(p);
            break;
        }
    }
    let got = got.expect("retained will");
    assert!(got.retain);
    assert_eq!(&got.payload[..], b"offline");
    broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections_and_stops_accepting() {
    let broker = start().await;
    let addr = tcp_addr(&broker);
    let mut raw = Raw::connect(&broker, "stay", 30).await;
    tokio::time::timeout(WAIT, broker.shutdown())
        .await
        .expect("shutdown in time");
    raw.expect_closed().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
    assert!(matches!(
        broker.publish("a", "b", Q::AtMostOnce, false).await,
        Err(mqgate_broker::BrokerError::Shutdown)
    ));
}
