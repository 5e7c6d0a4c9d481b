//! Durable state across a restart of an embedded broker (redb in a temporary directory):
//! persistent sessions with their subscriptions and offline queues, retained messages, and
//! a corrupt data file that must stop start-up instead of starting empty.

mod support;

use std::path::Path;
use std::time::Duration;

use mqgate_broker::{Broker, BrokerConfig, BrokerError, BrokerHandle, StorageKind};
use rumqttc::QoS;
use support::{subscribe, Client};

fn durable_config(dir: &Path) -> BrokerConfig {
    BrokerConfig {
        storage: StorageKind::Redb,
        data_dir: dir.to_path_buf(),
        ..BrokerConfig::ephemeral()
    }
}

/// Starts a broker on `dir` (see [`support::start_on_disk`]).
async fn start_on(dir: &Path) -> BrokerHandle {
    support::start_on_disk(dir).await
}

/// A broker on `dir` with a persistent client subscribed to `filter` at QoS 2.
async fn with_subscriber(dir: &Path, id: &str, filter: &str) -> (BrokerHandle, Client) {
    let broker = start_on(dir).await;
    let mut sub = Client::connect(&broker, id, false).await;
    subscribe(&mut sub, filter, QoS::ExactlyOnce).await;
    (broker, sub)
}

async fn stop(broker: BrokerHandle) {
    broker.shutdown().await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_sessions_queues_and_retained_messages_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");

    // First life: a persistent subscriber subscribes and leaves; messages arrive for it
    // while it is away; a retained message is set.
    let (broker, sub) = with_subscriber(dir.path(), "sub-1", "orders/#").await;
    sub.disconnect().await;
    let mut publisher = Client::connect(&broker, "pub-1", true).await;
    for (n, qos) in [
        (1, QoS::AtLeastOnce),
        (2, QoS::ExactlyOnce),
        (3, QoS::AtLeastOnce),
    ] {
        publisher
            .client
            .publish(format!("orders/{n}"), qos, false, format!("order {n}"))
            .await
            .expect("queued");
    }
    // A P2P message goes to the session without the trie; it is kept just the same.
    publisher
        .client
        .publish("orders/p2p/sub-1", QoS::AtLeastOnce, false, "direct")
        .await
        .expect("queued");
    publisher
        .client
        .publish("config/mode", QoS::AtLeastOnce, true, "eco")
        .await
        .expect("queued");
    // A round trip through the broker: everything before it was acknowledged.
    subscribe(&mut publisher, "nothing/here", QoS::AtMostOnce).await;
    publisher.disconnect().await;
    stop(broker).await;

    // Second life: the session is present, its queue arrives in order, its subscription
    // still routes new messages, and the retained message is replayed.
    let broker = start_on(dir.path()).await;
    let mut sub = Client::connect(&broker, "sub-1", false).await;
    assert!(sub.session_present, "session present");
    for n in 1..=3 {
        let p = sub.next().await;
        assert_eq!(p.topic, format!("orders/{n}"));
        assert_eq!(&p.payload[..], format!("order {n}").as_bytes());
    }
    let direct = sub.next().await;
    assert_eq!(
        (direct.topic.as_str(), &direct.payload[..]),
        ("orders/p2p/sub-1", &b"direct"[..])
    );
    let publisher = Client::connect(&broker, "pub-2", true).await;
    publisher
        .client
        .publish("orders/4", QoS::AtLeastOnce, false, "order 4")
        .await
        .expect("queued");
    assert_eq!(sub.next().await.topic, "orders/4", "subscription restored");
    subscribe(&mut sub, "config/#", QoS::AtLeastOnce).await;
    let retained = sub.next().await;
    assert_eq!(
        (retained.topic.as_str(), retained.retain),
        ("config/mode", true)
    );
    assert_eq!(&retained.payload[..], b"eco");
    sub.disconnect().await;
    publisher.disconnect().await;
    stop(broker).await;

    // Third life: what was delivered and acknowledged is gone; the retained message stays.
    let broker = start_on(dir.path()).await;
    let mut sub = Client::connect(&broker, "sub-1", false).await;
    assert!(sub.session_present, "session present");
    sub.expect_nothing(Duration::from_millis(500)).await;
    let mut fresh = Client::connect(&broker, "fresh", true).await;
    subscribe(&mut fresh, "config/#", QoS::AtLeastOnce).await;
    assert_eq!(&fresh.next().await.payload[..], b"eco");
    // A clean session drops the stored one for good.
    sub.disconnect().await;
    let sub = Client::connect(&broker, "sub-1", true).await;
    sub.disconnect().await;
    fresh.disconnect().await;
    stop(broker).await;

    let broker = start_on(dir.path()).await;
    let sub = Client::connect(&broker, "sub-1", false).await;
    assert!(!sub.session_present, "no session after a clean one");
    sub.disconnect().await;
    stop(broker).await;
}

#[tokio::test]
async fn a_corrupt_data_file_fails_start_up_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(mqgate_store::DEFAULT_FILE_NAME);
    std::fs::write(&file, b"this is not a redb database, it is a shopping list").expect("write");
    let error = Broker::builder()
        .config(durable_config(dir.path()))
        .build()
        .start()
        .await
        .expect_err("a corrupt store must not start");
    let BrokerError::Store(text) = &error else {
        panic!("expected a store error, got {error:?}");
    };
    assert!(
        text.contains(&file.display().to_string()),
        "the error names the file: {text}"
    );
    // The file is left as it was for the operator.
    assert_eq!(
        std::fs::read(&file).expect("read"),
        b"this is not a redb database, it is a shopping list"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_waiting_in_a_persistent_sessions_queue_survive_a_restart() {
    use mqgate_codec::{Connect, Packet, PacketId, Subscribe, SubscribeFilter};
    use support::Raw;

    // More retained messages than the in-flight window: the rest wait in the queue.
    let window = usize::from(mqgate_session::SessionConfig::default().inflight_window);
    let retained = window + 8;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start_on(dir.path()).await;
    for n in 0..retained {
        broker
            .publish(
                &format!("shelf/{n}"),
                format!("item {n}"),
                mqgate_codec::QoS::AtLeastOnce,
                true,
            )
            .await
            .expect("retained");
    }
    let connect = |broker: BrokerHandle| async move {
        let mut raw = Raw::open(&broker).await;
        raw.send(Packet::Connect(Box::new(Connect {
            client_id: "shelf-reader".try_into().expect("id"),
            keep_alive: 60,
            clean_session: false,
            ..Connect::default()
        })))
        .await;
        assert!(matches!(raw.recv().await, Some(Packet::ConnAck(_))));
        raw
    };
    let mut raw = connect(broker.clone()).await;
    raw.send(Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(1).expect("non-zero"),
        filters: vec![SubscribeFilter {
            filter: "shelf/#".try_into().expect("filter"),
            qos: mqgate_codec::QoS::AtLeastOnce,
        }],
    }))
    .await;
    // The window's worth arrives; none is acknowledged.
    let mut first = std::collections::BTreeSet::new();
    while first.len() < window {
        match raw.recv().await {
            Some(Packet::Publish(p)) => {
                first.insert(p.into_payload());
            }
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    raw.send(Packet::Disconnect).await;
    assert!(raw.recv().await.is_none(), "closed after DISCONNECT");
    stop(broker).await;

    // After the restart all come: the window's worth in flight again, and the 8 that waited.
    let broker = start_on(dir.path()).await;
    let mut raw = connect(broker.clone()).await;
    let mut again = std::collections::BTreeSet::new();
    while again.len() < retained {
        match raw.recv().await {
            Some(Packet::Publish(p)) => {
                if let Some(id) = p.packet_id {
                    raw.send(Packet::PubAck(id)).await;
                }
                again.insert(p.into_payload());
            }
            Some(_) => {}
            None => panic!("closed with {} of {retained}", again.len()),
        }
    }
    assert!(first.is_subset(&again));
    drop(raw);
    stop(broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_removes_expired_messages_from_the_store() {
    use std::sync::Arc;

    use mqgate_broker::SessionLimits;
    use mqgate_store::{RedbStore, Store, StoreLimits};

    const TTL_MS: u64 = 1_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = StoreLimits {
        message_ttl_ms: TTL_MS,
        ..StoreLimits::default()
    };
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path(), limits).expect("store"));
    let config = BrokerConfig {
        session: SessionLimits {
            message_ttl_ms: TTL_MS,
            ..SessionLimits::default()
        },
        ..BrokerConfig::ephemeral()
    };
    let broker = support::start_with_store(config, store.clone()).await;
    let mut sub = Client::connect(&broker, "sweep-sub", false).await;
    subscribe(&mut sub, "old/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    broker
        .publish(
            "old/news",
            "stale soon",
            mqgate_codec::QoS::AtLeastOnce,
            false,
        )
        .await
        .expect("published");
    let stored = store.stats().expect("stats");
    assert_eq!((stored.messages, stored.queued), (1, 1), "queued durably");
    // The sweep runs every TTL / 4: bounded polling, not a timing claim.
    let mut swept = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = store.stats().expect("stats");
        if (now.messages, now.queued) == (0, 0) {
            swept = true;
            break;
        }
    }
    assert!(swept, "the expired message left the store");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos2_publish_cut_off_before_its_pubrec_is_answered_when_resent() {
    use mqgate_codec::{Connect, Packet, PacketId, Publish};
    use support::Raw;

    let dir = tempfile::tempdir().expect("tempdir");
    let (broker, mut sub) = with_subscriber(dir.path(), "cut-sub", "cut/#").await;
    let id = PacketId::new(9).expect("non-zero");
    let publish = |dup| {
        Packet::Publish({
            let mut p = Publish::new(
                mqgate_codec::QoS::ExactlyOnce,
                Some(id),
                "cut/a".try_into().expect("topic"),
                bytes::Bytes::from_static(b"once"),
            );
            p.dup = dup;
            p
        })
    };
    let connect = Packet::Connect(Box::new(Connect {
        client_id: "cut-pub".try_into().expect("id"),
        keep_alive: 60,
        clean_session: false,
        ..Connect::default()
    }));
    // The publisher sends and goes away at once, before any PUBREC could come back.
    let mut raw = Raw::open(&broker).await;
    raw.send(connect.clone()).await;
    raw.send(publish(false)).await;
    drop(raw);
    assert_eq!(&sub.next().await.payload[..], b"once");
    // It comes back and sends the PUBLISH again: PUBREC, and no second delivery.
    let mut raw = Raw::open(&broker).await;
    raw.send(connect).await;
    assert!(matches!(raw.recv().await, Some(Packet::ConnAck(_))));
    raw.send(publish(true)).await;
    assert_eq!(raw.recv().await, Some(Packet::PubRec(id)));
    raw.send(Packet::PubRel(id)).await;
    assert_eq!(raw.recv().await, Some(Packet::PubComp(id)));
    sub.expect_nothing(Duration::from_millis(300)).await;
    stop(broker).await;
}
