//! One test suite, run against every [`Store`] implementation.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use mqgate_auth::{
    ConnectBlack, CustomIdentity, CustomPermission, DeviceCredential, Effect, GroupRecord,
    IdentityType, PermitAction, SignMode, TokenActions, TokenRecord,
};
use mqgate_codec::{ByteStr, PacketId, QoS};
use mqgate_session::{
    InFlightRef, InFlightStage, Message, MessageId, SessionConfig, SessionRecord, Subscription,
};
use proptest::prelude::*;

use crate::{
    restore_sessions, restore_sessions_in_store, MemoryStore, Op, QueueStats, RedbStore, Store,
    StoreError, StoreLimits,
};
use mqgate_session::{QueueBounds, QueueRead};

/// A store, and the directory that must outlive it.
pub(crate) struct Fixture {
    store: Box<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

impl Deref for Fixture {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

pub(crate) fn memory(limits: StoreLimits) -> Fixture {
    Fixture {
        store: Box::new(MemoryStore::with_limits(limits)),
        _dir: None,
    }
}

pub(crate) fn redb(limits: StoreLimits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    Fixture {
        store: Box::new(RedbStore::open(dir.path(), limits).unwrap()),
        _dir: Some(dir),
    }
}

/// A redb store that keeps only two unreferenced bodies before deleting the oldest, two
/// at a time: every rule of the suite holds while deletions lag behind.
pub(crate) fn redb_late_deletes(limits: StoreLimits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let options = crate::RedbOptions {
        deferred_deletes: 2,
        ..crate::RedbOptions::default()
    };
    Fixture {
        store: Box::new(RedbStore::open_with(dir.path(), limits, options).unwrap()),
        _dir: Some(dir),
    }
}

pub(crate) fn message(id: u128, published_at_ms: u64) -> Arc<Message> {
    Arc::new(Message::new(
        MessageId(id),
        ByteStr::from_static("shop/tag/price"),
        Bytes::from(format!("payload {id}")),
        QoS::AtLeastOnce,
        published_at_ms,
    ))
}

pub(crate) fn enqueue(client: &str, message: &Arc<Message>) -> Op {
    Op::Enqueue {
        client_id: ByteStr::try_from(client).unwrap(),
        message: Arc::clone(message),
        qos: QoS::AtLeastOnce,
        shared: false,
    }
}

fn ack(client: &str, through_seq: u64) -> Op {
    Op::Ack {
        client_id: ByteStr::try_from(client).unwrap(),
        through_seq,
    }
}

fn queued_ids(store: &dyn Store, client: &str) -> Vec<u128> {
    let entries = store.read_queue(client, 0, usize::MAX).unwrap();
    entries.iter().map(|e| e.message.id.0).collect()
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// A QoS 2 session mid-flight: one message sent (no PUBREC yet), one released (PUBREC
/// received), two inbound ids awaiting PUBREL.
pub(crate) fn qos2_record(client: &str, sent: MessageId) -> SessionRecord {
    SessionRecord {
        client_id: ByteStr::try_from(client).unwrap(),
        subscriptions: vec![Subscription::new(
            ByteStr::from_static("shop/+/price"),
            QoS::ExactlyOnce,
        )],
        queue: Vec::new(),
        inflight: vec![
            InFlightRef {
                packet_id: pid(1),
                message: sent,
                qos: QoS::ExactlyOnce,
                stage: InFlightStage::Published,
                shared: false,
            },
            InFlightRef {
                packet_id: pid(2),
                message: MessageId(999),
                qos: QoS::ExactlyOnce,
                stage: InFlightStage::Released,
                shared: false,
            },
        ],
        awaiting_pubrel: vec![pid(7), pid(9)],
        next_packet_id: 3,
        protocol: 4,
        expiry_interval_s: None,
        offline_since_ms: None,
        configured: false,
    }
}

pub(crate) fn registry_ops() -> Vec<Op> {
    vec![
        Op::PutGroup(GroupRecord::new("GID_shop", 5)),
        Op::PutToken(TokenRecord {
            token: "tok".into(),
            access_key_id: "AK".into(),
            instance_id: "i".into(),
            resources: vec!["shop/#".into()],
            actions: TokenActions::ReadWrite,
            create_time_ms: 1,
            expire_time_ms: 2,
            revoked: false,
        }),
        Op::PutDeviceCredential(DeviceCredential {
            client_id: "GID_shop@@@1".into(),
            instance_id: "i".into(),
            device_access_key_id: "dk".into(),
            device_access_key_secret: "ds".into(),
            create_time_ms: 3,
            update_time_ms: 4,
        }),
        Op::PutCustomIdentity(custom_identity()),
        Op::PutCustomPermission(custom_permission()),
        Op::PutConnectBlack(ConnectBlack {
            client_id: "GID_shop@@@bad".into(),
            create_time_ms: 7,
        }),
    ]
}

/// A `CLIENT` identity of `GID_shop@@@1`.
pub(crate) fn custom_identity() -> CustomIdentity {
    CustomIdentity {
        identity_type: IdentityType::Client,
        username: "user".into(),
        client_id: Some("GID_shop@@@1".into()),
        secret: "sec".into(),
        sign_mode: SignMode::Signed,
        create_time_ms: 5,
        update_time_ms: 6,
    }
}

/// A `USER` permission of `user` on `shop/#`.
pub(crate) fn custom_permission() -> CustomPermission {
    CustomPermission {
        identity_type: IdentityType::User,
        identity: "user".into(),
        topic: "shop/#".into(),
        permit_action: PermitAction::PubSub,
        effect: Effect::Deny,
        create_time_ms: 8,
        update_time_ms: 9,
    }
}

fn no_limits() -> StoreLimits {
    StoreLimits {
        max_queued_messages: u64::MAX,
        max_queued_bytes: u64::MAX,
        message_ttl_ms: u64::MAX,
        prefixed: None,
    }
}

type Make = fn(StoreLimits) -> Fixture;

fn queue_reads_in_order_from_a_cursor(make: Make) {
    let store = make(no_limits());
    let ops: Vec<Op> = (0..5).map(|i| enqueue("c", &message(i, 0))).collect();
    store.apply(&ops).unwrap();
    let first = store.read_queue("c", 0, 3).unwrap();
    let seqs: Vec<u64> = first.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [0, 1, 2]);
    let rest = store.read_queue("c", seqs[2] + 1, 10).unwrap();
    assert_eq!(
        rest.iter().map(|e| e.message.id.0).collect::<Vec<_>>(),
        [3, 4]
    );
    assert!(store.read_queue("other", 0, 10).unwrap().is_empty());

    store.apply(&[ack("c", 2)]).unwrap();
    assert_eq!(queued_ids(&*store, "c"), [3, 4]);
    let stats = store.queue_stats("c").unwrap();
    assert_eq!(stats.messages, 2);
    assert_eq!(stats.bytes, 2 * message(3, 0).size() as u64);
    assert_eq!(store.stats().unwrap().messages, 2, "acked bodies are gone");
    // Sequence numbers keep increasing after acks.
    store.apply(&[enqueue("c", &message(5, 0))]).unwrap();
    assert_eq!(store.read_queue("c", 0, 10).unwrap().last().unwrap().seq, 5);
}

fn fan_out_stores_one_body_until_every_queue_acked(make: Make) {
    let store = make(no_limits());
    let shared = message(1, 0);
    let clients = ["a", "b", "c"];
    let ops: Vec<Op> = clients.iter().map(|c| enqueue(c, &shared)).collect();
    store.apply(&ops).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.messages, stats.queued), (1, 3));
    for (i, client) in clients.iter().enumerate() {
        assert!(
            store.get_message(MessageId(1)).unwrap().is_some(),
            "{i} acked"
        );
        let seq = store.read_queue(client, 0, 1).unwrap()[0].seq;
        store.apply(&[ack(client, seq)]).unwrap();
    }
    assert_eq!(store.get_message(MessageId(1)).unwrap(), None);
    assert_eq!(store.stats().unwrap().messages, 0);
}

fn dequeue_removes_one_entry_anywhere(make: Make) {
    let store = make(no_limits());
    let shared = message(1, 0);
    store
        .apply(&[
            enqueue("a", &shared),
            enqueue("a", &message(2, 0)),
            enqueue("a", &message(3, 0)),
            enqueue("b", &shared),
        ])
        .unwrap();
    let dequeue = |client: &'static str, id| Op::Dequeue {
        client_id: ByteStr::from_static(client),
        message: MessageId(id),
        shared: false,
    };
    // The middle entry, then one that is not there (idempotent), then the shared body's.
    store
        .apply(&[dequeue("a", 2), dequeue("a", 2), dequeue("a", 1)])
        .unwrap();
    assert_eq!(queued_ids(&*store, "a"), [3]);
    assert_eq!(queued_ids(&*store, "b"), [1], "only a's entry went");
    assert!(store.get_message(MessageId(1)).unwrap().is_some());
    store.apply(&[dequeue("b", 1)]).unwrap();
    assert_eq!(
        store.get_message(MessageId(1)).unwrap(),
        None,
        "last ref gone"
    );
    assert_eq!(store.queue_stats("a").unwrap().messages, 1);
}

/// A plain and a shared subscription's copy of one message are two entries that keep their
/// mark through every read; a `Dequeue` takes the copy it names, and a page skips a held
/// message by message and mark.
fn copies_keep_their_mark(make: Make) {
    let store = make(no_limits());
    let body = message(1, 0);
    let copy = |shared| Op::Enqueue {
        client_id: ByteStr::from_static("a"),
        message: Arc::clone(&body),
        qos: QoS::AtLeastOnce,
        shared,
    };
    store
        .apply(&[copy(false), copy(true), enqueue("a", &message(2, 0))])
        .unwrap();
    let marks = |store: &dyn Store| -> Vec<(u128, bool)> {
        let entries = store.read_queue("a", 0, usize::MAX).unwrap();
        entries.iter().map(|e| (e.message.id.0, e.shared)).collect()
    };
    assert_eq!(marks(&*store), [(1, false), (1, true), (2, false)]);
    let record = store.load_sessions().unwrap();
    assert!(record.is_empty(), "no session saved, only a queue");
    let read = QueueRead {
        after_seq: None,
        skip: vec![(MessageId(1), false)],
        max: 10,
        epoch: 0,
    };
    let page = store.read_page("a", &read).unwrap();
    let paged: Vec<(u128, bool)> = page
        .entries
        .iter()
        .map(|e| (e.message.id.0, e.shared))
        .collect();
    assert_eq!(paged, [(1, true), (2, false)], "only the held copy skipped");
    let dequeue_shared = Op::Dequeue {
        client_id: ByteStr::from_static("a"),
        message: MessageId(1),
        shared: true,
    };
    store.apply(std::slice::from_ref(&dequeue_shared)).unwrap();
    let left = [(1, false), (2, false)];
    assert_eq!(marks(&*store), left, "the shared copy went");
    store.apply(&[dequeue_shared]).unwrap();
    assert_eq!(marks(&*store), left, "no shared copy left: no change");
}

fn limits_drop_the_oldest(make: Make) {
    let size = message(0, 0).size() as u64;
    // (limits, messages enqueued, ids left)
    let cases: [(u64, u64, usize, &[u128]); 4] = [
        (3, u64::MAX, 5, &[2, 3, 4]),
        (u64::MAX, 2 * size, 5, &[3, 4]),
        (0, u64::MAX, 2, &[]),
        (10, 10 * size, 4, &[0, 1, 2, 3]),
    ];
    for (max_messages, max_bytes, count, left) in cases {
        let store = make(StoreLimits {
            max_queued_messages: max_messages,
            max_queued_bytes: max_bytes,
            message_ttl_ms: u64::MAX,
            prefixed: None,
        });
        let ops: Vec<Op> = (0..count as u128)
            .map(|i| enqueue("c", &message(i, 0)))
            .collect();
        store.apply(&ops).unwrap();
        assert_eq!(
            queued_ids(&*store, "c"),
            left,
            "{max_messages} msgs, {max_bytes} B"
        );
        assert_eq!(store.stats().unwrap().messages, left.len() as u64);
        assert_eq!(
            store.queue_stats("c").unwrap().bytes,
            left.len() as u64 * size
        );
    }
}

/// The QoS 1 messages a session has in flight from its queue stay there until acknowledged:
/// they do not count against the queue's bounds, and trimming skips them.
fn entries_in_flight_neither_count_nor_go(make: Make) {
    let size = message(0, 0).size() as u64;
    let store = make(StoreLimits {
        max_queued_messages: 3,
        ..no_limits()
    });
    let in_flight = |messages: u64| Op::InFlight {
        client_id: ByteStr::from_static("c"),
        messages,
        bytes: messages * size,
    };
    store
        .apply(&[enqueue("c", &message(1, 0)), enqueue("c", &message(2, 0))])
        .unwrap();
    store.apply(&[in_flight(2)]).unwrap();
    let ops: Vec<Op> = (3..=5u128).map(|i| enqueue("c", &message(i, 0))).collect();
    store.apply(&ops).unwrap();
    assert_eq!(
        queued_ids(&*store, "c"),
        [1, 2, 3, 4, 5],
        "two in flight, three queued"
    );
    store.apply(&[enqueue("c", &message(6, 0))]).unwrap();
    assert_eq!(
        queued_ids(&*store, "c"),
        [1, 2, 4, 5, 6],
        "the oldest queued entry goes, not one in flight"
    );
    // Acknowledged: nothing is in flight any more, and the bounds hold for every entry.
    store
        .apply(&[in_flight(0), enqueue("c", &message(7, 0))])
        .unwrap();
    assert_eq!(queued_ids(&*store, "c"), [5, 6, 7]);
    // A removed session forgets what it had in flight.
    store
        .apply(&[in_flight(3), Op::RemoveSession(ByteStr::from_static("c"))])
        .unwrap();
    let ops: Vec<Op> = (8..=12u128).map(|i| enqueue("c", &message(i, 0))).collect();
    store.apply(&ops).unwrap();
    assert_eq!(queued_ids(&*store, "c"), [10, 11, 12]);
}

fn prefixed_queues_have_their_own_bounds(make: Make) {
    let wide = QueueBounds {
        max_messages: 6,
        max_bytes: u64::MAX,
    };
    let store = make(StoreLimits {
        max_queued_messages: 2,
        prefixed: Some(("$own/", wide)),
        ..no_limits()
    });
    let ops: Vec<Op> = (0..8u128)
        .flat_map(|i| ["c", "$own/q"].map(|c| enqueue(c, &message(i, 0))))
        .collect();
    store.apply(&ops).unwrap();
    assert_eq!(queued_ids(&*store, "c"), [6, 7]);
    assert_eq!(queued_ids(&*store, "$own/q"), [2, 3, 4, 5, 6, 7]);
}

fn sweep_expires_in_bounded_batches(make: Make) {
    let store = make(StoreLimits {
        message_ttl_ms: 1_000,
        ..no_limits()
    });
    let ops: Vec<Op> = (0..10u128)
        .flat_map(|i| ["a", "b"].map(|c| enqueue(c, &message(i, i as u64 * 100))))
        .collect();
    store.apply(&ops).unwrap();
    assert_eq!(
        store.sweep_expired(999, 100).unwrap(),
        0,
        "nothing 1 s old yet"
    );
    // At 1 550 ms, messages published at 0..=500 (six of them) are due.
    assert_eq!(store.sweep_expired(1_550, 4).unwrap(), 4);
    assert_eq!(queued_ids(&*store, "a"), [4, 5, 6, 7, 8, 9]);
    assert_eq!(store.sweep_expired(1_550, 4).unwrap(), 2);
    assert_eq!(store.sweep_expired(1_550, 4).unwrap(), 0);
    for client in ["a", "b"] {
        assert_eq!(queued_ids(&*store, client), [6, 7, 8, 9]);
        assert_eq!(store.queue_stats(client).unwrap().messages, 4);
    }
    assert_eq!(store.stats().unwrap().messages, 4);
    assert_eq!(store.sweep_expired(u64::MAX, 100).unwrap(), 4);
    assert_eq!(store.stats().unwrap().queued, 0);
}

fn sessions_round_trip_and_restore(make: Make) {
    let store = make(StoreLimits::default());
    let sent = message(10, 0);
    let record = qos2_record("GID_a@@@1", sent.id);
    let queued = message(11, 0);
    store
        .apply(&[
            Op::SaveSession {
                record: record.clone(),
                messages: vec![Arc::clone(&sent)],
            },
            enqueue("GID_a@@@1", &queued),
        ])
        .unwrap();
    let loaded = store.load_sessions().unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].queue.len(), 1);
    assert_eq!(loaded[0].queue[0].message, queued.id);
    assert_eq!(
        SessionRecord {
            queue: vec![],
            ..loaded[0].clone()
        },
        record
    );

    let sessions = restore_sessions(&*store, SessionConfig::default(), 0).unwrap();
    let session = sessions.into_iter().next().unwrap().unwrap();
    assert_eq!(session.record().inflight, record.inflight);
    assert_eq!(session.record().awaiting_pubrel, record.awaiting_pubrel);
    assert_eq!(session.record().queue, loaded[0].queue);

    // The flight ends: saving the record without it frees the body.
    let done = SessionRecord {
        inflight: vec![],
        ..record
    };
    store
        .apply(&[Op::SaveSession {
            record: done,
            messages: vec![],
        }])
        .unwrap();
    assert_eq!(store.get_message(sent.id).unwrap(), None);
    assert!(store.get_message(queued.id).unwrap().is_some());

    store
        .apply(&[Op::RemoveSession(ByteStr::from_static("GID_a@@@1"))])
        .unwrap();
    assert_eq!(store.stats().unwrap(), crate::StoreStats::default());
}

/// Start-up reads records, counters and in-flight bodies only; the queue comes back a page
/// at a time, after a cursor, leaving out what the session holds.
fn session_heads_and_pages(make: Make) {
    let store = make(no_limits());
    let client = "GID_a@@@1";
    let sent = message(10, 0);
    let record = qos2_record(client, sent.id);
    let mut ops = vec![Op::SaveSession {
        record: record.clone(),
        messages: vec![Arc::clone(&sent)],
    }];
    let queued: Vec<_> = (20..30).map(|id| message(id, 0)).collect();
    ops.extend(queued.iter().map(|m| enqueue(client, m)));
    // Another client's entries interleave with this one's.
    ops.push(enqueue("GID_a@@@2", &message(40, 0)));
    store.apply(&ops).unwrap();

    let heads = store.load_session_heads().unwrap();
    assert_eq!(heads.len(), 1);
    assert_eq!(heads[0].record, record);
    let bytes = queued.iter().map(|m| m.size() as u64).sum();
    assert_eq!(
        heads[0].queue,
        QueueStats {
            messages: 10,
            bytes
        }
    );
    assert_eq!(heads[0].inflight, vec![Arc::clone(&sent)]);

    let read = |after_seq, skip: &[u128], max| {
        let read = QueueRead {
            after_seq,
            skip: skip.iter().map(|&id| (MessageId(id), false)).collect(),
            max,
            epoch: 7,
        };
        let page = store.read_page(client, &read).unwrap();
        assert_eq!(page.epoch, 7);
        let ids: Vec<u128> = page.entries.iter().map(|e| e.message.id.0).collect();
        (ids, page.entries.last().map(|e| e.seq), page.more)
    };
    let (ids, last, more) = read(None, &[20, 22], 3);
    assert_eq!((ids, more), (vec![21, 23, 24], true));
    let (ids, last, more) = read(last, &[], 4);
    assert_eq!((ids, more), (vec![25, 26, 27, 28], true));
    let (ids, last, more) = read(last, &[], 4);
    assert_eq!((ids, more), (vec![29], false));
    assert_eq!(read(last, &[], 4), (vec![], None, false));
    assert_eq!(
        read(None, &[], 0),
        (vec![], None, true),
        "nothing asked, more there"
    );

    let sessions = restore_sessions_in_store(&*store, SessionConfig::default(), 8, 0).unwrap();
    let session = sessions.into_iter().next().unwrap().unwrap();
    assert_eq!(session.queued_len(), 10);
    assert_eq!(session.queued_bytes() as u64, bytes);
    assert_eq!(
        session.queued_in_memory(),
        (0, 0),
        "nothing queued read at start"
    );
    assert_eq!(session.record().inflight, record.inflight);
}

fn a_failed_batch_changes_nothing(make: Make) {
    let store = make(StoreLimits::default());
    let record = qos2_record("GID_a@@@1", MessageId(10));
    let err = store
        .apply(&[
            enqueue("x", &message(1, 0)),
            Op::SaveSession {
                record,
                messages: vec![],
            },
        ])
        .unwrap_err();
    assert!(
        matches!(err, StoreError::MissingMessage { message: 10, .. }),
        "{err}"
    );
    assert_eq!(store.stats().unwrap(), crate::StoreStats::default());
}

fn expired_bodies_in_flight_stay_until_released(make: Make) {
    let store = make(StoreLimits {
        message_ttl_ms: 10,
        ..no_limits()
    });
    let sent = message(10, 0);
    let record = qos2_record("s", sent.id);
    let save = Op::SaveSession {
        record,
        messages: vec![Arc::clone(&sent)],
    };
    store.apply(&[save, enqueue("q", &sent)]).unwrap();
    assert_eq!(store.sweep_expired(100, 10).unwrap(), 1);
    assert!(queued_ids(&*store, "q").is_empty());
    assert!(
        store.get_message(sent.id).unwrap().is_some(),
        "still in flight"
    );
    store
        .apply(&[Op::RemoveSession(ByteStr::from_static("s"))])
        .unwrap();
    assert_eq!(store.get_message(sent.id).unwrap(), None);
}

/// Saves of a sliding in-flight window: entries that stay keep their bodies, entries that
/// leave (acknowledged, or sent again under another packet id) drop their refs, new ones
/// store theirs; the last save frees everything.
fn saves_move_the_inflight_window(make: Make) {
    let store = make(no_limits());
    let client = "GID_a@@@1";
    let bodies: Vec<_> = (1..=5).map(|id| message(id, 0)).collect();
    let entry = |packet: u16, body: &Arc<Message>| InFlightRef {
        packet_id: pid(packet),
        message: body.id,
        qos: QoS::AtLeastOnce,
        stage: InFlightStage::Published,
        shared: false,
    };
    let save = |inflight: Vec<InFlightRef>| {
        let messages = inflight
            .iter()
            .filter_map(|e| bodies.iter().find(|b| b.id == e.message).cloned())
            .collect();
        Op::SaveSession {
            record: SessionRecord {
                inflight,
                ..qos2_record(client, MessageId(0))
            },
            messages,
        }
    };
    let stored = |store: &dyn Store| -> Vec<u128> {
        (1..=5)
            .filter(|&id| store.get_message(MessageId(id)).unwrap().is_some())
            .collect()
    };
    let (a, b, c, d) = (&bodies[0], &bodies[1], &bodies[2], &bodies[3]);
    store
        .apply(&[save(vec![entry(1, a), entry(2, b), entry(3, c)])])
        .unwrap();
    assert_eq!(stored(&*store), [1, 2, 3]);
    // b acknowledged, a sent again under packet id 4, d new.
    store
        .apply(&[save(vec![entry(4, a), entry(3, c), entry(5, d)])])
        .unwrap();
    assert_eq!(stored(&*store), [1, 3, 4]);
    // A save that changes nothing in flight keeps every body.
    store
        .apply(&[save(vec![entry(4, a), entry(3, c), entry(5, d)])])
        .unwrap();
    assert_eq!(stored(&*store), [1, 3, 4]);
    // c now awaits its PUBCOMP only: its body is no longer needed.
    let mut released = entry(3, c);
    released.stage = InFlightStage::Released;
    store
        .apply(&[save(vec![entry(4, a), released, entry(5, d)])])
        .unwrap();
    assert_eq!(stored(&*store), [1, 4]);
    store.apply(&[save(vec![])]).unwrap();
    assert!(stored(&*store).is_empty());
    let restored = restore_sessions(&*store, SessionConfig::default(), 0).unwrap();
    assert!(restored[0].as_ref().unwrap().record().inflight.is_empty());
}

fn retained_messages_set_replace_clear(make: Make) {
    let store = make(StoreLimits::default());
    let topic = |t: &'static str, id| {
        let mut m = Message::clone(&message(id, 0));
        m.topic = ByteStr::from_static(t);
        Arc::new(m)
    };
    store
        .apply(&[
            Op::SetRetained(topic("a", 1)),
            Op::SetRetained(topic("b", 2)),
            Op::SetRetained(topic("a", 3)),
            Op::ClearRetained(ByteStr::from_static("b")),
        ])
        .unwrap();
    assert_eq!(store.load_retained().unwrap(), [topic("a", 3)]);
}

fn registries_put_remove_load(make: Make) {
    let store = make(StoreLimits::default());
    store.apply(&registry_ops()).unwrap();
    assert_eq!(store.load_groups().unwrap()[0].group_id, "GID_shop");
    assert_eq!(store.load_tokens().unwrap()[0].token, "tok");
    assert_eq!(
        store.load_device_credentials().unwrap()[0].client_id,
        "GID_shop@@@1"
    );
    assert_eq!(store.load_custom_identities().unwrap(), [custom_identity()]);
    assert_eq!(
        store.load_custom_permissions().unwrap(),
        [custom_permission()]
    );
    assert_eq!(
        store.load_connect_blacklist().unwrap()[0].client_id,
        "GID_shop@@@bad"
    );
    store
        .apply(&[
            Op::RemoveGroup("GID_shop".into()),
            Op::RemoveToken("tok".into()),
            Op::RemoveDeviceCredential("GID_shop@@@1".into()),
            Op::RemoveCustomIdentity(custom_identity().key().to_store_key()),
            Op::RemoveCustomPermission(custom_permission().key().to_store_key()),
            Op::RemoveConnectBlack("GID_shop@@@bad".into()),
        ])
        .unwrap();
    assert!(store.load_groups().unwrap().is_empty());
    assert!(store.load_tokens().unwrap().is_empty());
    assert!(store.load_device_credentials().unwrap().is_empty());
    assert!(store.load_custom_identities().unwrap().is_empty());
    assert!(store.load_custom_permissions().unwrap().is_empty());
    assert!(store.load_connect_blacklist().unwrap().is_empty());
    assert_eq!(
        store.stats().unwrap().sessions,
        0,
        "registries are not sessions"
    );
}

/// A waiting will of `client`, due at `due_at_ms`.
pub(crate) fn will(client: &str, id: u128, due_at_ms: u64) -> crate::StoredWill {
    crate::StoredWill {
        client_id: client.into(),
        id: MessageId(id),
        topic: "dev/status".into(),
        payload: Bytes::from_static(b"\x00gone\xff"),
        qos: 2,
        retain: true,
        // A User Property ("k", "v") in its wire encoding.
        properties: Bytes::from_static(&[0x26, 0, 1, b'k', 0, 1, b'v']),
        expiry_s: Some(60),
        due_at_ms,
        not_for_origin: true,
    }
}

fn delayed_wills_replace_and_remove_by_id(make: Make) {
    let store = make(StoreLimits::default());
    store
        .apply(&[Op::PutWill(will("a", 1, 10)), Op::PutWill(will("b", 2, 20))])
        .unwrap();
    // A newer will of `a` replaces the first; the first one's late removal leaves it.
    store.apply(&[Op::PutWill(will("a", 3, 30))]).unwrap();
    store
        .apply(&[Op::RemoveWill {
            client_id: "a".into(),
            id: MessageId(1),
        }])
        .unwrap();
    let mut wills = store.load_wills().unwrap();
    wills.sort_by(|x, y| x.client_id.cmp(&y.client_id));
    assert_eq!(wills, [will("a", 3, 30), will("b", 2, 20)]);
    store
        .apply(&[
            Op::RemoveWill {
                client_id: "a".into(),
                id: MessageId(3),
            },
            Op::RemoveWill {
                client_id: "nobody".into(),
                id: MessageId(3),
            },
        ])
        .unwrap();
    assert_eq!(store.load_wills().unwrap(), [will("b", 2, 20)]);
    assert_eq!(store.stats().unwrap().sessions, 0, "wills are not sessions");
}

/// Random enqueues (often fanned out) and acks against a plain model of the queues.
fn matches_a_model(make: Make, cases: u32) {
    let clients = ["a", "b", "c"];
    let step = (0usize..3, any::<bool>(), 0u64..4, any::<bool>());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    let strategy = proptest::collection::vec(proptest::collection::vec(step, 1..6), 1..8);
    runner
        .run(&strategy, |batches| {
            let store = make(StoreLimits {
                max_queued_messages: 4,
                ..no_limits()
            });
            let mut model: [VecDeque<(u64, u128)>; 3] = Default::default();
            // Sequence numbers are store-wide: increasing in every queue, never reused.
            let mut next_seq = 0u64;
            let mut next_id = 0u128;
            for batch in batches {
                let mut ops = Vec::new();
                for (client, fan_out, ack_count, is_ack) in batch {
                    if is_ack {
                        let Some(&(front, _)) = model[client].front() else {
                            continue;
                        };
                        let through = front + ack_count;
                        model[client].retain(|(seq, _)| *seq > through);
                        ops.push(ack(clients[client], through));
                        continue;
                    }
                    let m = message(next_id, 0);
                    next_id += 1;
                    let targets = if fan_out { vec![0, 1, 2] } else { vec![client] };
                    for t in targets {
                        ops.push(enqueue(clients[t], &m));
                        model[t].push_back((next_seq, m.id.0));
                        next_seq += 1;
                        if model[t].len() > 4 {
                            model[t].pop_front();
                        }
                    }
                }
                store.apply(&ops).unwrap();
            }
            let mut live = BTreeSet::new();
            for (i, client) in clients.iter().enumerate() {
                let got: Vec<(u64, u128)> = store
                    .read_queue(client, 0, usize::MAX)
                    .unwrap()
                    .iter()
                    .map(|e| (e.seq, e.message.id.0))
                    .collect();
                prop_assert_eq!(&got, &Vec::from(model[i].clone()));
                live.extend(got.iter().map(|(_, id)| *id));
            }
            prop_assert_eq!(store.stats().unwrap().messages, live.len() as u64);
            Ok(())
        })
        .unwrap();
}

macro_rules! suite {
    ($backend:ident, $model_cases:expr) => {
        mod $backend {
            use super::*;
            #[test]
            fn queue_reads_in_order_from_a_cursor() {
                super::queue_reads_in_order_from_a_cursor($backend);
            }
            #[test]
            fn fan_out_stores_one_body_until_every_queue_acked() {
                super::fan_out_stores_one_body_until_every_queue_acked($backend);
            }
            #[test]
            fn dequeue_removes_one_entry_anywhere() {
                super::dequeue_removes_one_entry_anywhere($backend);
            }
            #[test]
            fn copies_keep_their_mark() {
                super::copies_keep_their_mark($backend);
            }
            #[test]
            fn limits_drop_the_oldest() {
                super::limits_drop_the_oldest($backend);
            }
            #[test]
            fn entries_in_flight_neither_count_nor_go() {
                super::entries_in_flight_neither_count_nor_go($backend);
            }
            #[test]
            fn prefixed_queues_have_their_own_bounds() {
                super::prefixed_queues_have_their_own_bounds($backend);
            }
            #[test]
            fn sweep_expires_in_bounded_batches() {
                super::sweep_expires_in_bounded_batches($backend);
            }
            #[test]
            fn sessions_round_trip_and_restore() {
                super::sessions_round_trip_and_restore($backend);
            }
            #[test]
            fn session_heads_and_pages() {
                super::session_heads_and_pages($backend);
            }
            #[test]
            fn a_failed_batch_changes_nothing() {
                super::a_failed_batch_changes_nothing($backend);
            }
            #[test]
            fn expired_bodies_in_flight_stay_until_released() {
                super::expired_bodies_in_flight_stay_until_released($backend);
            }
            #[test]
            fn saves_move_the_inflight_window() {
                super::saves_move_the_inflight_window($backend);
            }
            #[test]
            fn retained_messages_set_replace_clear() {
                super::retained_messages_set_replace_clear($backend);
            }
            #[test]
            fn registries_put_remove_load() {
                super::registries_put_remove_load($backend);
            }
            #[test]
            fn delayed_wills_replace_and_remove_by_id() {
                super::delayed_wills_replace_and_remove_by_id($backend);
            }
            #[test]
            fn matches_a_model() {
                super::matches_a_model($backend, $model_cases);
            }
        }
    };
}

suite!(memory, 256);
// Every apply is an fsync here: fewer cases keep the suite quick.
suite!(redb, 24);
suite!(redb_late_deletes, 24);
