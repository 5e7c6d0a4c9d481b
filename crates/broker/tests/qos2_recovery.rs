//! A QoS 2 PUBLISH whose routing never finished: its receiver stayed full until the
//! backpressure timeout closed the publisher's connection, or the publisher reconnected (and
//! so kicked its own old connection) while it waited. Either way the packet id must not stay
//! stuck: the resent PUBLISH gets its PUBREC, is not routed a second time, and the id stays
//! in the stored session until PUBREL, whatever connection saves the session next.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqgate_broker::{BrokerConfig, BrokerHandle};
use mqgate_codec::{ByteStr, Packet, PacketId, Publish, QoS, Subscribe, SubscribeFilter};
use mqgate_store::{MemoryStore, Store};
use support::Raw;
use tokio::sync::mpsc;

const TOPIC: &str = "jam/line";

fn id(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

/// Receivers jam after one message in flight, one queued and one in the inbox.
async fn jammed_broker(backpressure: Duration) -> (BrokerHandle, Arc<dyn Store>) {
    let mut config = BrokerConfig::ephemeral();
    config.limits.inbox_capacity = 1;
    config.limits.backpressure_timeout = backpressure;
    config.session.max_queued_messages = 1;
    config.session.inflight_window = 1;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    (
        support::start_with_store(config, store.clone()).await,
        store,
    )
}

/// Opens a persistent (cleanSession=0) raw connection as `client`.
async fn connect_persistent(broker: &BrokerHandle, client: &str) -> Raw {
    Raw::connect_session(broker, client, 60, false).await
}

/// A subscriber to [`TOPIC`] at QoS 1 that reads nothing until `go` fires, then
/// acknowledges everything and reports each payload.
async fn jammed_subscriber(
    broker: &BrokerHandle,
) -> (
    tokio::sync::oneshot::Sender<()>,
    mpsc::UnboundedReceiver<Bytes>,
    tokio::task::JoinHandle<()>,
) {
    let mut sub = Raw::connect(broker, "jammed", 60).await;
    sub.send(Packet::Subscribe(Subscribe {
        packet_id: id(1),
        filters: vec![SubscribeFilter {
            filter: ByteStr::from_static(TOPIC),
            qos: QoS::AtLeastOnce,
        }],
    }))
    .await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));
    let (go, wait) = tokio::sync::oneshot::channel();
    let (got, payloads) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let _ = wait.await;
        for _ in 0..1000 {
            match sub.recv_within(Duration::from_secs(3)).await {
                Ok(Some(Packet::Publish(p))) => {
                    if let Some(packet_id) = p.packet_id {
                        sub.send(Packet::PubAck(packet_id)).await;
                    }
                    let _ = got.send(p.into_payload());
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(()) => return,
            }
        }
    });
    (go, payloads, task)
}

fn publish(n: u16, dup: bool) -> Packet {
    let mut publish = Publish::new(
        QoS::ExactlyOnce,
        Some(id(n)),
        ByteStr::from_static(TOPIC),
        Bytes::from(format!("m{n}")),
    );
    publish.dup = dup;
    Packet::Publish(publish)
}

/// Sends PUBLISH 1..=count and collects the PUBRECs until the broker closes the connection
/// (`closed`) or `quiet` passes without a packet.
async fn publish_until_stuck(raw: &mut Raw, count: u16, quiet: Duration) -> (Vec<u16>, bool) {
    for n in 1..=count {
        raw.send(publish(n, false)).await;
    }
    let mut recs = Vec::new();
    for _ in 0..100 {
        match raw.recv_within(quiet).await {
            Ok(Some(Packet::PubRec(p))) => recs.push(p.get()),
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            Ok(None) => return (recs, true),
            Err(()) => return (recs, false),
        }
    }
    panic!("too many packets");
}

/// Resends `ids` with DUP and completes each QoS 2 flow: PUBREC, PUBREL, PUBCOMP.
async fn resend_and_complete(raw: &mut Raw, ids: &[u16]) {
    for &n in ids {
        raw.send(publish(n, true)).await;
    }
    let mut open: Vec<u16> = ids.to_vec();
    for _ in 0..100 {
        if open.is_empty() {
            return;
        }
        match raw.recv().await {
            Some(Packet::PubRec(p)) => raw.send(Packet::PubRel(p)).await,
            Some(Packet::PubComp(p)) => open.retain(|n| *n != p.get()),
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!("closed with {open:?} not completed"),
        }
    }
    panic!("flows {open:?} never completed");
}

/// Every payload the subscriber got once `quiet` passed without more: none twice.
async fn received_once(payloads: &mut mpsc::UnboundedReceiver<Bytes>) -> Vec<Bytes> {
    let mut seen = Vec::new();
    for _ in 0..1000 {
        match tokio::time::timeout(Duration::from_millis(500), payloads.recv()).await {
            Ok(Some(p)) => {
                assert!(!seen.contains(&p), "{p:?} delivered twice");
                seen.push(p);
            }
            _ => return seen,
        }
    }
    panic!("too many deliveries");
}

fn awaiting_pubrel(store: &dyn Store, client: &str) -> Vec<u16> {
    let sessions = store.load_sessions().expect("load");
    let record = sessions
        .iter()
        .find(|s| s.client_id.as_str() == client)
        .expect("saved session");
    record.awaiting_pubrel.iter().map(|p| p.get()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos2_id_whose_route_timed_out_is_answered_after_reconnect() {
    let (broker, store) = jammed_broker(Duration::from_millis(300)).await;
    let (go, mut payloads, subscriber) = jammed_subscriber(&broker).await;

    let mut publisher = connect_persistent(&broker, "pub-timeout").await;
    let (recs, closed) = publish_until_stuck(&mut publisher, 6, support::WAIT).await;
    assert!(closed, "the backpressure timeout closed the publisher");
    assert!(recs.len() < 6, "a receiver was full: {recs:?}");
    let metrics = broker.metrics();
    assert!(metrics.backpressure_timeouts >= 1, "{metrics:?}");

    // The receiver catches up; the publisher comes back and resends what it has no PUBREC for.
    go.send(()).expect("subscriber waiting");
    let unanswered: Vec<u16> = (1..=6).filter(|n| !recs.contains(n)).collect();
    let mut publisher = connect_persistent(&broker, "pub-timeout").await;
    resend_and_complete(&mut publisher, &unanswered).await;
    // Only the ids PUBREC'd before the close still await their PUBREL.
    assert_eq!(awaiting_pubrel(&*store, "pub-timeout"), recs);

    let seen = received_once(&mut payloads).await;
    assert!(seen.len() >= 5, "{seen:?}");
    subscriber.abort();
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_while_a_qos2_route_waits_keeps_its_id_in_the_store() {
    // Long enough that the publisher is still waiting when it reconnects.
    let (broker, store) = jammed_broker(Duration::from_secs(20)).await;
    let (go, mut payloads, subscriber) = jammed_subscriber(&broker).await;

    // One in flight, one queued, one in the inbox: the fourth waits for room.
    let mut old = connect_persistent(&broker, "pub-race").await;
    let (recs, closed) = publish_until_stuck(&mut old, 4, Duration::from_millis(800)).await;
    assert!(!closed, "still waiting for the full receiver");
    assert!(!recs.contains(&4), "{recs:?}");
    let unanswered: Vec<u16> = (1..=4).filter(|n| !recs.contains(n)).collect();
    let waiting = 4;

    // The client reconnects (its old connection is kicked mid-route). By the time the new
    // CONNACK arrives, the new connection has saved the session: the id routed on the old
    // one is still there, awaiting PUBREL.
    let mut new = connect_persistent(&broker, "pub-race").await;
    let stored = awaiting_pubrel(&*store, "pub-race");
    assert!(
        stored.contains(&waiting),
        "{waiting} missing from {stored:?}"
    );

    go.send(()).expect("subscriber waiting");
    resend_and_complete(&mut new, &unanswered).await;
    assert_eq!(awaiting_pubrel(&*store, "pub-race"), recs);
    received_once(&mut payloads).await;
    drop(old);
    subscriber.abort();
    broker.shutdown().await;
}
