//! Crash test: the real `mqgate` binary, killed with SIGKILL at random points while
//! publishers send numbered QoS 1 and QoS 2 messages to offline persistent sessions.
//!
//! Each round: the broker starts on the same data directory; the persistent subscribers
//! reconnect (cleanSession = 0) and take everything the publishers were told is safe, then
//! leave; the publishers send as fast as their window allows; after a random delay the
//! broker is SIGKILLed. At the end every message whose PUBACK / PUBCOMP a publisher got has
//! arrived at every subscriber, in order per publisher, and a QoS 2 message at most once.
//!
//! Publishers and subscribers speak MQTT through our codec over TCP, so the test sees
//! exactly which acknowledgements arrived and which PUBLISHes came twice.

mod support;

use support::process::BrokerProcess;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use mqgate_codec::{
    ByteStr, Connect, ConnectReturnCode, Packet, PacketId, Publish, QoS, Subscribe, SubscribeFilter,
};
use support::Raw;
use tokio::time::{timeout, Instant};

const PUBLISHERS: usize = 2;
const ROUNDS: usize = 4;
/// PUBLISHes a publisher keeps unacknowledged at once.
const WINDOW: usize = 32;
/// Most messages one publisher sends in one round (it is normally killed long before).
const MAX_PER_ROUND: u64 = 40_000;
/// Messages an offline session keeps: far more than a round sends, so no limit drops what
/// the publishers were told is safe (limits are tested with the store).
const QUEUE_LIMIT: u64 = 1_000_000;
/// How long a subscriber may take to receive what it is owed.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// The subscribers: client id and the QoS of their subscription to `crash/#`.
const SUBSCRIBERS: [(&str, QoS); 2] = [
    ("crash-sub-qos2", QoS::ExactlyOnce),
    ("crash-sub-qos1", QoS::AtLeastOnce),
];

/// A `mqgate` child process on `dir`'s data, SIGKILLed (and reaped) when dropped.
fn start_broker(dir: &Path) -> BrokerProcess {
    let data = dir.join("data");
    BrokerProcess::start(
            dir,
            &format!(
                "allow_anonymous = true\nstorage = \"redb\"\ndata_dir = {:?}\n\n[listeners]\ntcp = \"127.0.0.1:0\"\nws = \"127.0.0.1:0\"\n\n[http]\nenabled = false\n\n[session]\nmax_queued_messages = {QUEUE_LIMIT}\nmax_queued_bytes = {}\n",
                data.display().to_string(),
                QUEUE_LIMIT * 64,
            ),
            &["tcp"],
        )
}

fn qos_of(seq: u64) -> QoS {
    if seq % 2 == 0 {
        QoS::AtLeastOnce
    } else {
        QoS::ExactlyOnce
    }
}

async fn connect(addr: SocketAddr, id: &str, clean: bool) -> Option<Raw> {
    let mut raw = Raw::open_at(addr).await?;
    raw.send(Packet::Connect(Box::new(Connect {
        client_id: ByteStr::try_from(id).expect("id"),
        keep_alive: 60,
        clean_session: clean,
        ..Connect::default()
    })))
    .await;
    match raw.recv_within(Duration::from_secs(10)).await {
        Ok(Some(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Accepted => Some(raw),
        _ => None,
    }
}

/// One publisher's share of a round: sends `p:seq` messages from `next` on until the broker
/// goes away; returns the sequence numbers acknowledged (PUBACK, or PUBCOMP) and the next
/// sequence number to use (unacknowledged ones are not sent again: they may or may not
/// arrive, but never twice at QoS 2).
async fn publish_until_killed(addr: SocketAddr, p: usize, mut next: u64) -> (Vec<u64>, u64) {
    let mut acked = Vec::new();
    let Some(mut raw) = connect(addr, &format!("crash-pub-{p}"), true).await else {
        return (acked, next);
    };
    let end = next + MAX_PER_ROUND;
    let mut inflight: HashMap<u16, u64> = HashMap::new();
    loop {
        while inflight.len() < WINDOW && next < end {
            let id = u16::try_from(next % 60_000 + 1).expect("below 60001");
            inflight.insert(id, next);
            raw.send(Packet::Publish(Publish::new(
                qos_of(next),
                PacketId::new(id),
                ByteStr::try_from(format!("crash/{p}")).expect("topic"),
                Bytes::from(format!("{p}:{next}")),
            )))
            .await;
            next += 1;
        }
        if inflight.is_empty() {
            break;
        }
        match raw.recv_within(Duration::from_secs(10)).await {
            Ok(Some(Packet::PubAck(id) | Packet::PubComp(id))) => {
                if let Some(seq) = inflight.remove(&id.get()) {
                    acked.push(seq);
                }
            }
            Ok(Some(Packet::PubRec(id))) => raw.send(Packet::PubRel(id)).await,
            Ok(Some(_)) => {}
            // The broker was killed (or hangs, which the final check will show).
            Ok(None) | Err(()) => break,
        }
    }
    (acked, next)
}

/// What one subscriber received over all rounds.
#[derive(Default)]
struct Received {
    /// (publisher, seq) in arrival order, repeats included.
    arrivals: Vec<(usize, u64)>,
    /// Every message that arrived at least once.
    seen: BTreeSet<(usize, u64)>,
    /// Times each message arrived at QoS 2 as a new message.
    qos2: BTreeMap<(usize, u64), u32>,
    /// The client's QoS 2 receive state, kept across connections as MQTT asks of a client
    /// with a persistent session: packet ids answered with PUBREC and not yet released. A
    /// PUBLISH reusing one of them is the broker resending, not a new message.
    awaiting_pubrel: BTreeSet<PacketId>,
}

/// Reconnects a persistent subscriber and takes messages: with `owed`, until it has every
/// one of them and completed every QoS 2 flow, then disconnects cleanly; without, until the
/// broker goes away.
async fn drain(
    addr: SocketAddr,
    (id, qos): (&str, QoS),
    first: bool,
    owed: Option<&BTreeSet<(usize, u64)>>,
    got: &mut Received,
) {
    let Some(mut raw) = connect(addr, id, false).await else {
        // Mid-round the broker may be killed before this subscriber is even connected (the
        // kill comes 50 ms after the round starts at the earliest, and a loaded machine can
        // take longer to answer); the final drain, which is owed messages, must connect.
        assert!(owed.is_none(), "{id}: the subscriber could not connect");
        return;
    };
    if first {
        subscribe(&mut raw, "crash/#", qos).await;
    }
    let deadline = Instant::now() + DRAIN_LIMIT;
    let mut missing: BTreeSet<(usize, u64)> = owed
        .map(|owed| owed.difference(&got.seen).copied().collect())
        .unwrap_or_default();
    loop {
        if owed.is_some() && missing.is_empty() && got.awaiting_pubrel.is_empty() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let packet = match raw.recv_within(left).await {
            Ok(Some(packet)) => packet,
            // The broker was killed under this online subscriber.
            _ if owed.is_none() => return,
            other => panic!(
                "{id}: {} acknowledged messages missing (first {:?}), the broker gave {other:?}",
                missing.len(),
                missing.first()
            ),
        };
        match packet {
            Packet::Publish(publish) => {
                let text = std::str::from_utf8(publish.payload()).expect("utf-8 payload");
                let (p, seq) = text.split_once(':').expect("p:seq");
                let key: (usize, u64) = (p.parse().expect("p"), seq.parse().expect("seq"));
                match (publish.qos, publish.packet_id) {
                    (QoS::AtLeastOnce, Some(pid)) => raw.send(Packet::PubAck(pid)).await,
                    (QoS::ExactlyOnce, Some(pid)) => {
                        raw.send(Packet::PubRec(pid)).await;
                        if !got.awaiting_pubrel.insert(pid) {
                            continue; // a resend of a message this client already has
                        }
                        *got.qos2.entry(key).or_default() += 1;
                    }
                    _ => {}
                }
                got.arrivals.push(key);
                got.seen.insert(key);
                missing.remove(&key);
            }
            Packet::PubRel(pid) => {
                got.awaiting_pubrel.remove(&pid);
                raw.send(Packet::PubComp(pid)).await;
            }
            _ => {}
        }
    }
    raw.send(Packet::Disconnect).await;
    // The broker closes after DISCONNECT; every packet before it was handled.
    let _ = timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = raw.recv_within(Duration::from_secs(10)).await {}
    })
    .await;
}

fn random_below(n: u64) -> u64 {
    getrandom::u64().expect("OS randomness") % n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_exactly_once_at_qos2_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked: BTreeSet<(usize, u64)> = BTreeSet::new();
    let mut next = [0u64; PUBLISHERS];
    let mut received: Vec<Received> = SUBSCRIBERS.iter().map(|_| Received::default()).collect();
    let mut kills = 0;
    for round in 0..=ROUNDS {
        let broker = start_broker(dir.path());
        for (sub, got) in SUBSCRIBERS.iter().zip(received.iter_mut()) {
            drain(broker.addr, *sub, round == 0, Some(&acked), got).await;
        }
        if round == ROUNDS {
            broker.kill();
            break;
        }
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|p| tokio::spawn(publish_until_killed(broker.addr, p, next[p])))
            .collect();
        // The point of this sleep: a kill at a random point, early in the stream or well
        // into it.
        tokio::time::sleep(Duration::from_millis(50 + random_below(600))).await;
        broker.kill();
        kills += 1;
        for (p, task) in publishers.into_iter().enumerate() {
            let (seqs, after) = task.await.expect("publisher task");
            next[p] = after;
            acked.extend(seqs.into_iter().map(|seq| (p, seq)));
        }
    }
    assert_eq!(kills, ROUNDS);
    assert!(
        acked.len() > 100,
        "the publishers got few acknowledgements ({}): the test proves little",
        acked.len()
    );
    for (sub, got) in SUBSCRIBERS.iter().zip(&received) {
        check_delivery(*sub, got, &acked);
    }
    eprintln!(
        "crash test: {kills} SIGKILLs, {} acknowledged messages, all delivered",
        acked.len()
    );
}

/// Every acknowledged message arrived; at QoS 2 exactly once (and nothing at QoS 2 twice);
/// first arrivals in order per publisher.
fn check_delivery((id, qos): (&str, QoS), got: &Received, acked: &BTreeSet<(usize, u64)>) {
    for key in acked {
        assert!(
            got.seen.contains(key),
            "{id}: acknowledged message {key:?} lost"
        );
    }
    // At QoS 2 never twice, acknowledged to its publisher or not.
    if qos == QoS::ExactlyOnce {
        for (key, times) in &got.qos2 {
            assert_eq!(
                *times, 1,
                "{id}: QoS 2 message {key:?} arrived {times} times"
            );
        }
        let qos2_acked = acked.iter().filter(|(_, s)| qos_of(*s) == QoS::ExactlyOnce);
        for key in qos2_acked {
            assert_eq!(got.qos2.get(key), Some(&1), "{id}: {key:?} not at QoS 2");
        }
    }
    // In order per publisher: each first arrival comes after the ones before it.
    let mut last: [Option<u64>; PUBLISHERS] = [None; PUBLISHERS];
    let mut seen = BTreeSet::new();
    for &(p, seq) in &got.arrivals {
        if seen.insert((p, seq)) {
            assert!(
                last[p].is_none_or(|l| seq > l),
                "{id}: publisher {p}'s {seq} arrived after {:?}",
                last[p]
            );
            last[p] = Some(seq);
        }
    }
}

/// Subscribes `raw` to `filter` and waits for the SUBACK.
async fn subscribe(raw: &mut Raw, filter: &'static str, qos: QoS) {
    raw.send(Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(1).expect("non-zero"),
        filters: vec![SubscribeFilter {
            filter: ByteStr::from_static(filter),
            qos,
        }],
    }))
    .await;
    assert!(matches!(
        expect_packet(raw, "SUBACK").await,
        Packet::SubAck(_)
    ));
}

/// Starts the broker on `dir` with a persistent client subscribed to `filter` at QoS 2.
async fn start_with_subscriber(dir: &Path, id: &str, filter: &'static str) -> (BrokerProcess, Raw) {
    let broker = start_broker(dir);
    let mut sub = connect(broker.addr, id, false)
        .await
        .expect("subscriber connects");
    subscribe(&mut sub, filter, QoS::ExactlyOnce).await;
    (broker, sub)
}

/// Starts the broker on `dir` and reconnects a persistent client.
async fn restart_and_reconnect(dir: &Path, id: &str) -> (BrokerProcess, Raw) {
    let broker = start_broker(dir);
    let raw = connect(broker.addr, id, false)
        .await
        .expect("client reconnects");
    (broker, raw)
}

/// Publishes `payload` to `topic` at QoS 1 with packet id `id` and waits for its PUBACK.
async fn publish_qos1(raw: &mut Raw, id: u16, topic: &'static str, payload: Bytes) {
    raw.send(Packet::Publish(Publish::new(
        QoS::AtLeastOnce,
        PacketId::new(id),
        ByteStr::from_static(topic),
        payload,
    )))
    .await;
    assert!(matches!(
        expect_packet(raw, "PUBACK").await,
        Packet::PubAck(acked) if acked.get() == id
    ));
}

/// The next packet within 10 s; panics on silence or a closed connection.
async fn expect_packet(raw: &mut Raw, what: &str) -> Packet {
    match raw.recv_within(Duration::from_secs(10)).await {
        Ok(Some(packet)) => packet,
        other => panic!("expected {what}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_flight_state_of_an_online_subscriber_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (broker, mut sub) = start_with_subscriber(dir.path(), "flight-sub", "flight/#").await;
    let mut publisher = connect(broker.addr, "flight-pub", true)
        .await
        .expect("publisher");
    for (n, text) in [(1, "first"), (2, "second")] {
        publisher
            .send(Packet::Publish(Publish::new(
                QoS::ExactlyOnce,
                PacketId::new(n),
                ByteStr::from_static("flight/a"),
                Bytes::from_static(text.as_bytes()),
            )))
            .await;
        let Packet::PubRec(id) = expect_packet(&mut publisher, "PUBREC").await else {
            panic!("expected PUBREC");
        };
        publisher.send(Packet::PubRel(id)).await;
        assert!(matches!(
            expect_packet(&mut publisher, "PUBCOMP").await,
            Packet::PubComp(_)
        ));
    }
    // The subscriber got both; it acknowledges the first only as far as PUBREC -> PUBREL,
    // and the second not at all. Then the broker dies.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let Packet::Publish(p) = expect_packet(&mut sub, "PUBLISH").await else {
            panic!("expected PUBLISH");
        };
        ids.push((p.packet_id.expect("QoS 2 has an id"), p.shared_payload()));
    }
    sub.send(Packet::PubRec(ids[0].0)).await;
    assert_eq!(
        expect_packet(&mut sub, "PUBREL").await,
        Packet::PubRel(ids[0].0)
    );
    broker.kill();

    // After the restart: PUBREL for the first (never its PUBLISH again), the second again
    // with DUP and the same packet id.
    let (broker, mut sub) = restart_and_reconnect(dir.path(), "flight-sub").await;
    assert_eq!(
        expect_packet(&mut sub, "PUBREL").await,
        Packet::PubRel(ids[0].0)
    );
    let Packet::Publish(again) = expect_packet(&mut sub, "the second PUBLISH again").await else {
        panic!("expected PUBLISH");
    };
    assert!(again.dup, "a resend carries DUP");
    assert_eq!(
        (again.packet_id, again.payload()),
        (Some(ids[1].0), &ids[1].1[..])
    );
    sub.send(Packet::PubComp(ids[0].0)).await;
    sub.send(Packet::PubRec(ids[1].0)).await;
    assert_eq!(
        expect_packet(&mut sub, "PUBREL").await,
        Packet::PubRel(ids[1].0)
    );
    sub.send(Packet::PubComp(ids[1].0)).await;
    sub.send(Packet::Disconnect).await;
    let _ = sub.recv_within(Duration::from_secs(10)).await;
    broker.kill();

    // Both flows are complete: a third life sends nothing but the CONNACK.
    let (broker, mut sub) = restart_and_reconnect(dir.path(), "flight-sub").await;
    assert_eq!(
        sub.recv_within(Duration::from_millis(500)).await,
        Err(()),
        "nothing is resent once acknowledged"
    );
    broker.kill();
}

/// A QoS 1 message sent from a persistent session's queue stays in the stored queue until
/// the client acknowledges it (sending it writes nothing): one in flight when the broker is
/// SIGKILLed comes again after the restart, in order, and one acknowledged before does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_messages_in_flight_at_sigkill_come_again_in_order_acknowledged_ones_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (broker, mut sub) = start_with_subscriber(dir.path(), "q1-sub", "q1/#").await;
    let mut publisher = connect(broker.addr, "q1-pub", true)
        .await
        .expect("publisher");
    let receive = async |sub: &mut Raw| match expect_packet(sub, "PUBLISH").await {
        Packet::Publish(p) => (p.packet_id.expect("QoS 1"), p.shared_payload()),
        other => panic!("expected PUBLISH, got {other:?}"),
    };
    // The session is saved once at connect: these are sent after that first save.
    for (id, text) in [(1, "one"), (2, "two"), (3, "three")] {
        publish_qos1(
            &mut publisher,
            id,
            "q1/a",
            Bytes::from_static(text.as_bytes()),
        )
        .await;
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(receive(&mut sub).await);
    }
    assert_eq!(got[0].1, &b"one"[..]);
    // "one" is acknowledged. Its removal from the queue is submitted before the PINGRESP
    // and commits before "four", whose PUBACK the publisher waits for (commits are ordered).
    sub.send(Packet::PubAck(got[0].0)).await;
    sub.send(Packet::PingReq).await;
    assert_eq!(expect_packet(&mut sub, "PINGRESP").await, Packet::PingResp);
    publish_qos1(&mut publisher, 4, "q1/a", Bytes::from_static(b"four")).await;
    assert_eq!(receive(&mut sub).await.1, &b"four"[..]);
    broker.kill();

    let (broker, mut sub) = restart_and_reconnect(dir.path(), "q1-sub").await;
    let mut again = Vec::new();
    for _ in 0..3 {
        let (id, payload) = receive(&mut sub).await;
        sub.send(Packet::PubAck(id)).await;
        again.push(payload);
    }
    assert_eq!(again, [&b"two"[..], b"three", b"four"]);
    assert_eq!(
        sub.recv_within(Duration::from_millis(300)).await,
        Err(()),
        "the acknowledged message does not come again"
    );
    broker.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_publishers_qos2_id_awaiting_pubrel_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A persistent subscriber, offline while the publisher works.
    let (broker, mut sub) = start_with_subscriber(dir.path(), "rel-sub", "rel/#").await;
    sub.send(Packet::Disconnect).await;
    let _ = sub.recv_within(Duration::from_secs(10)).await;

    let publish = |dup| {
        Packet::Publish({
            let mut p = Publish::new(
                QoS::ExactlyOnce,
                PacketId::new(7),
                ByteStr::from_static("rel/a"),
                Bytes::from_static(b"once"),
            );
            p.dup = dup;
            p
        })
    };
    let mut publisher = connect(broker.addr, "rel-pub", false)
        .await
        .expect("publisher");
    publisher.send(publish(false)).await;
    let id = PacketId::new(7).expect("non-zero");
    assert_eq!(
        expect_packet(&mut publisher, "PUBREC").await,
        Packet::PubRec(id)
    );
    broker.kill();

    // The publisher did not see the PUBREC (as far as it knows) and sends the PUBLISH again:
    // the restarted broker knows the id and answers PUBREC without routing it twice.
    let (broker, mut publisher) = restart_and_reconnect(dir.path(), "rel-pub").await;
    publisher.send(publish(true)).await;
    assert_eq!(
        expect_packet(&mut publisher, "PUBREC").await,
        Packet::PubRec(id)
    );
    publisher.send(Packet::PubRel(id)).await;
    assert_eq!(
        expect_packet(&mut publisher, "PUBCOMP").await,
        Packet::PubComp(id)
    );

    let mut sub = connect(broker.addr, "rel-sub", false)
        .await
        .expect("subscriber");
    let Packet::Publish(first) = expect_packet(&mut sub, "the message").await else {
        panic!("expected PUBLISH");
    };
    assert_eq!(first.payload(), b"once");
    let pid = first.packet_id.expect("QoS 2");
    sub.send(Packet::PubRec(pid)).await;
    assert_eq!(expect_packet(&mut sub, "PUBREL").await, Packet::PubRel(pid));
    sub.send(Packet::PubComp(pid)).await;
    assert_eq!(
        sub.recv_within(Duration::from_millis(500)).await,
        Err(()),
        "the message arrives once"
    );
    broker.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_subscriber_gets_acknowledged_messages_across_sigkills_qos2_once() {
    const LIVE: (&str, QoS) = ("crash-live-sub", QoS::ExactlyOnce);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked: BTreeSet<(usize, u64)> = BTreeSet::new();
    let mut next = [0u64; PUBLISHERS];
    let mut got = Received::default();
    for round in 0..=ROUNDS {
        let broker = start_broker(dir.path());
        if round == 0 {
            // Subscribe (persistent), owing nothing yet.
            drain(broker.addr, LIVE, true, Some(&BTreeSet::new()), &mut got).await;
        }
        if round == ROUNDS {
            drain(broker.addr, LIVE, false, Some(&acked), &mut got).await;
            broker.kill();
            break;
        }
        // The subscriber reads while the publishers send, until the broker dies under both.
        let addr = broker.addr;
        let subscriber = tokio::spawn(async move {
            drain(addr, LIVE, false, None, &mut got).await;
            got
        });
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|p| tokio::spawn(publish_until_killed(addr, p, next[p])))
            .collect();
        // The point of this sleep: a kill at a random point of the stream.
        tokio::time::sleep(Duration::from_millis(50 + random_below(600))).await;
        broker.kill();
        for (p, task) in publishers.into_iter().enumerate() {
            let (seqs, after) = task.await.expect("publisher task");
            next[p] = after;
            acked.extend(seqs.into_iter().map(|seq| (p, seq)));
        }
        got = subscriber.await.expect("subscriber task");
    }
    assert!(acked.len() > 100, "few acknowledgements ({})", acked.len());
    check_delivery(LIVE, &got, &acked);
    eprintln!(
        "live crash test: {ROUNDS} SIGKILLs, {} acknowledged messages, {} deliveries",
        acked.len(),
        got.arrivals.len()
    );
}

/// A broker stopped gently deletes what it delivered: the bodies of acknowledged messages
/// wait in memory to be deleted with their neighbours (`[store] deferred_deletes`), and the
/// shutdown deletes those still waiting, so none is left in the file for the expiry sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stopped_with_sigterm_leaves_no_delivered_message_in_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (broker, mut sub) = start_with_subscriber(dir.path(), "tidy-sub", "tidy/#").await;
    let mut publisher = connect(broker.addr, "tidy-pub", true)
        .await
        .expect("publisher connects");
    const MESSAGES: u16 = 5;
    for n in 1..=MESSAGES {
        publish_qos1(
            &mut publisher,
            n,
            "tidy/a",
            Bytes::from(format!("message {n}")),
        )
        .await;
    }
    for _ in 0..MESSAGES {
        match expect_packet(&mut sub, "PUBLISH").await {
            Packet::Publish(publish) => {
                let id = publish.packet_id.expect("QoS 1 has a packet id");
                sub.send(Packet::PubAck(id)).await;
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    // A PINGRESP comes after the broker took every PUBACK before the PINGREQ.
    sub.send(Packet::PingReq).await;
    assert!(matches!(
        expect_packet(&mut sub, "PINGRESP").await,
        Packet::PingResp
    ));
    assert!(
        broker.terminate(Duration::from_secs(20)),
        "mqgate exits after SIGTERM"
    );

    let store = mqgate_store::RedbStore::open(dir.path().join("data"), Default::default())
        .expect("the store opens");
    let stats = mqgate_store::Store::stats(&store).expect("stats");
    assert_eq!(stats.sessions, 1, "the persistent session stays");
    assert_eq!(
        (stats.queued, stats.messages),
        (0, 0),
        "no queued entry and no body of a delivered message left in the file"
    );
}
