//! What only a durable store must do: keep everything across a close and reopen, and refuse
//! files it cannot trust.

use std::sync::Arc;

use mqgate_codec::{ByteStr, Connect, Packet, PacketId};
use mqgate_session::MessageId;
use mqgate_session::SessionConfig;
use redb::{Database, TableDefinition};

use crate::suite::{enqueue, message, qos2_record, registry_ops, will};
use crate::{
    restore_sessions, Op, RedbOptions, RedbStore, Store, StoreError, StoreLimits,
    DEFAULT_FILE_NAME, FORMAT_VERSION,
};

/// Writes to the file behind the store's back, as another program or a damaged disk would.
fn write_raw(path: &std::path::Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    f(&txn);
    txn.commit().unwrap();
}

#[test]
fn everything_survives_a_reopen_and_qos2_state_restores() {
    let dir = tempfile::tempdir().unwrap();
    let sent = message(10, 5);
    let queued = message(11, 6);
    let retained = message(12, 7);
    {
        let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
        let mut ops = vec![
            Op::SaveSession {
                record: qos2_record("GID_a@@@1", sent.id),
                messages: vec![Arc::clone(&sent)],
            },
            enqueue("GID_a@@@1", &queued),
            Op::SetRetained(Arc::clone(&retained)),
            Op::PutWill(will("GID_a@@@1", 13, 8)),
        ];
        ops.extend(registry_ops());
        store.apply(&ops).unwrap();
    }
    let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
    assert_eq!(store.load_retained().unwrap(), [retained]);
    assert_eq!(store.load_wills().unwrap(), [will("GID_a@@@1", 13, 8)]);
    assert_eq!(store.load_groups().unwrap().len(), 1);
    assert_eq!(store.load_tokens().unwrap().len(), 1);
    assert_eq!(store.load_device_credentials().unwrap().len(), 1);
    assert_eq!(
        store.read_queue("GID_a@@@1", 0, 10).unwrap()[0].message,
        queued
    );

    let mut sessions = restore_sessions(&store, SessionConfig::default(), 10).unwrap();
    let mut session = sessions.pop().unwrap().unwrap();
    assert!(sessions.is_empty());
    // The client resumes (cleanSession=0): the unacknowledged QoS 2 PUBLISH is resent with
    // DUP, the released one continues with PUBREL, then the queued message goes out.
    let outcome = session.connect(&Connect::default(), 20).unwrap();
    assert!(outcome.session_present);
    let sent_packets: Vec<Packet> = std::iter::from_fn(|| session.poll_transmit()).collect();
    let resent = sent_packets.iter().find_map(|p| match p {
        Packet::Publish(p) if p.packet_id == PacketId::new(1) => Some(p),
        _ => None,
    });
    assert!(
        resent.is_some_and(|p| p.dup && p.payload() == &sent.payload[..]),
        "{sent_packets:?}"
    );
    assert!(sent_packets.contains(&Packet::PubRel(PacketId::new(2).unwrap())));
    // Inbound ids 7 and 9 await PUBREL: a duplicate of message 7 is not delivered again.
    assert_eq!(
        session.record().awaiting_pubrel,
        qos2_record("x", sent.id).awaiting_pubrel
    );
}

#[test]
fn garbage_file_fails_naming_it_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = RedbStore::open(dir.path(), StoreLimits::default()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

/// Opens a store whose file claims format `version`: the error, and the file's path.
fn open_with_format(version: u64) -> (StoreError, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    drop(RedbStore::open(dir.path(), StoreLimits::default()).unwrap());
    let meta: TableDefinition<&str, u64> = TableDefinition::new("meta");
    write_raw(&path, |txn| {
        let mut table = txn.open_table(meta).unwrap();
        table.insert("format_version", version).unwrap();
    });
    let err = RedbStore::open(dir.path(), StoreLimits::default()).unwrap_err();
    (err, path.display().to_string())
}

#[test]
fn a_newer_format_is_refused() {
    let (err, _) = open_with_format(FORMAT_VERSION + 1);
    assert!(
        matches!(err, StoreError::NewerFormat { found, .. } if found == FORMAT_VERSION + 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade mqgate"), "{err}");
}

#[test]
fn a_foreign_redb_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    let table: TableDefinition<&str, &str> = TableDefinition::new("someone_elses");
    write_raw(&path, |txn| {
        txn.open_table(table).unwrap().insert("k", "v").unwrap();
    });
    let err = RedbStore::open_file(&path, StoreLimits::default()).unwrap_err();
    assert!(err.to_string().contains("no format version"), "{err}");
}

#[test]
fn an_empty_or_missing_file_starts_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir");
    let store = RedbStore::open(&path, StoreLimits::default()).unwrap();
    assert_eq!(store.path(), path.join(DEFAULT_FILE_NAME));
    store
        .apply(&[Op::RemoveSession(ByteStr::from_static("x"))])
        .unwrap();
    drop(store);
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    assert!(RedbStore::open_file(&empty, StoreLimits::default()).is_ok());
}

#[test]
fn a_batch_failing_half_way_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    drop(RedbStore::open(dir.path(), StoreLimits::default()).unwrap());
    // A session record damaged on disk: only found when the batch reaches it.
    let blobs: TableDefinition<(u8, &str), &[u8]> = TableDefinition::new("blobs");
    write_raw(&path, |txn| {
        let mut table = txn.open_table(blobs).unwrap();
        table.insert((0, "s"), b"{not json".as_slice()).unwrap();
    });
    let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
    let err = store
        .apply(&[
            enqueue("q", &message(1, 0)),
            Op::RemoveSession(ByteStr::from_static("s")),
        ])
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "sessions",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(store.read_queue("q", 0, 10).unwrap().is_empty());
    assert_eq!(store.stats().unwrap().messages, 0);
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
    std::thread::scope(|scope| {
        for writer in 0..4u128 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..25 {
                    let m = message(writer * 1000 + i, 0);
                    store.apply(&[enqueue(&format!("c{writer}"), &m)]).unwrap();
                }
            });
        }
    });
    for writer in 0..4 {
        let ids: Vec<u128> = store
            .read_queue(&format!("c{writer}"), 0, 100)
            .unwrap()
            .iter()
            .map(|e| e.message.id.0)
            .collect();
        assert_eq!(ids, (0..25).map(|i| writer * 1000 + i).collect::<Vec<_>>());
    }
}

#[test]
fn an_older_format_is_refused_naming_the_file() {
    // Version 1 kept one B-tree range per queue.
    let (err, path) = open_with_format(1);
    assert!(
        matches!(err, StoreError::OlderFormat { found: 1, supported, .. } if supported == FORMAT_VERSION),
        "{err:?}"
    );
    assert!(err.to_string().contains(&path), "{err}");
}

/// Ids of a client's queue, in order, and their sequence numbers.
fn queue_of(store: &dyn Store, client: &str) -> (Vec<u128>, Vec<u64>) {
    store
        .read_queue(client, 0, usize::MAX)
        .unwrap()
        .iter()
        .map(|e| (e.message.id.0, e.seq))
        .unzip()
}

/// 40 clients with 60 messages each, appended interleaved (as a group commit does), some
/// shared by every client: after a reopen each queue reads back in order, acks and dequeues
/// work on the rebuilt index, limits count the restored bytes, and sequence numbers keep
/// increasing even once every queue was emptied.
#[test]
fn queues_at_depth_survive_a_reopen_and_keep_working() {
    const CLIENTS: u128 = 40;
    const DEPTH: u128 = 60;
    let dir = tempfile::tempdir().unwrap();
    let clients: Vec<String> = (0..CLIENTS).map(|c| format!("GID_d@@@{c}")).collect();
    let limits = StoreLimits {
        max_queued_messages: 100,
        ..StoreLimits::default()
    };
    let mut expected: Vec<Vec<u128>> = vec![Vec::new(); clients.len()];
    let mut bytes = vec![0u64; clients.len()];
    {
        let store = RedbStore::open(dir.path(), limits).unwrap();
        for round in 0..DEPTH {
            let shared = message(1_000_000 + round, round as u64);
            let mut ops = Vec::new();
            for (c, client) in clients.iter().enumerate() {
                let own = message(round * CLIENTS + c as u128, round as u64);
                ops.push(enqueue(client, &own));
                expected[c].push(own.id.0);
                bytes[c] += own.size() as u64;
                if round % 10 == 0 {
                    ops.push(enqueue(client, &shared));
                    expected[c].push(shared.id.0);
                    bytes[c] += shared.size() as u64;
                }
            }
            store.apply(&ops).unwrap();
        }
    }
    let store = RedbStore::open(dir.path(), limits).unwrap();
    assert_eq!(store.compaction(), None, "nothing to compact");
    let mut last_seq = 0;
    for (c, client) in clients.iter().enumerate() {
        let (ids, seqs) = queue_of(&store, client);
        assert_eq!(ids, expected[c], "{client}");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{client}: {seqs:?}");
        last_seq = last_seq.max(*seqs.last().unwrap());
        let stats = store.queue_stats(client).unwrap();
        assert_eq!(stats.messages, expected[c].len() as u64);
        assert_eq!(stats.bytes, bytes[c]);
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.queued, (CLIENTS * (DEPTH + 6)) as u64);
    assert_eq!(stats.messages, (CLIENTS * DEPTH + 6) as u64);

    // Acks and dequeues after the restart: client 0 acks half its queue, client 1 takes its
    // fifth message in flight; a limit drops client 2's oldest from the restored counters.
    let (ids0, seqs0) = queue_of(&store, &clients[0]);
    let (ids1, _) = queue_of(&store, &clients[1]);
    let mut ops = vec![
        Op::Ack {
            client_id: ByteStr::try_from(clients[0].as_str()).unwrap(),
            through_seq: seqs0[32],
        },
        Op::Dequeue {
            client_id: ByteStr::try_from(clients[1].as_str()).unwrap(),
            message: MessageId(ids1[4]),
            shared: false,
        },
    ];
    let fresh: Vec<_> = (0..40).map(|i| message(5_000_000 + i, 100)).collect();
    ops.extend(fresh.iter().map(|m| enqueue(&clients[2], m)));
    store.apply(&ops).unwrap();
    assert_eq!(queue_of(&store, &clients[0]).0, &ids0[33..]);
    let (after1, _) = queue_of(&store, &clients[1]);
    assert_eq!(after1.len(), ids1.len() - 1);
    assert!(!after1.contains(&ids1[4]));
    let (ids2, seqs2) = queue_of(&store, &clients[2]);
    assert_eq!(ids2.len(), 100, "the limit counts what was restored");
    assert_eq!(
        ids2[60..],
        fresh.iter().map(|m| m.id.0).collect::<Vec<_>>()[..]
    );
    assert!(seqs2[60] > last_seq, "new entries after the old ones");
    assert_eq!(
        store.get_message(MessageId(ids0[0])).unwrap(),
        None,
        "acked body gone"
    );

    // Everything acknowledged, then reopened: new entries still get new sequence numbers.
    let ops: Vec<Op> = clients
        .iter()
        .map(|c| Op::RemoveSession(ByteStr::try_from(c.as_str()).unwrap()))
        .collect();
    store.apply(&ops).unwrap();
    assert_eq!(store.stats().unwrap(), crate::StoreStats::default());
    let highest = seqs2[99];
    drop(store);
    let store = RedbStore::open(dir.path(), limits).unwrap();
    store.apply(&[enqueue("late", &message(1, 0))]).unwrap();
    assert!(
        queue_of(&store, "late").1[0] > highest,
        "no sequence number reused"
    );
}

/// A file that held many messages, all acknowledged since, is mostly free pages: the next
/// open compacts it.
#[test]
fn a_mostly_free_file_is_compacted_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
    let keep = message(u128::MAX, 0);
    store.apply(&[enqueue("keeper", &keep)]).unwrap();
    let big = |id: u128| {
        let mut m = mqgate_session::Message::clone(&message(id, 0));
        m.payload = bytes::Bytes::from(vec![b'x'; 4096]);
        Arc::new(m)
    };
    for batch in 0..20u128 {
        let ops: Vec<Op> = (0..100)
            .map(|i| enqueue(&format!("c{}", i % 10), &big(batch * 100 + i)))
            .collect();
        store.apply(&ops).unwrap();
    }
    let ops: Vec<Op> = (0..10)
        .map(|i| Op::RemoveSession(ByteStr::try_from(format!("c{i}")).unwrap()))
        .collect();
    store.apply(&ops).unwrap();
    let full = std::fs::metadata(store.path()).unwrap().len();
    drop(store);
    assert!(full > 8 << 20, "the fill grew the file: {full}");

    let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
    let compaction = store.compaction().expect("compacted");
    assert!(compaction.before > 8 << 20, "{compaction:?}");
    let after = std::fs::metadata(store.path()).unwrap().len();
    assert_eq!(compaction.after, after);
    assert!(after < full / 4, "{full} -> {after}");
    assert_eq!(
        queue_of(&store, "keeper").0,
        [keep.id.0],
        "kept what was live"
    );
    drop(store);
    let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
    assert_eq!(store.compaction(), None, "once is enough");
}

/// The check for free space reads the whole file: a file larger than the configured bound
/// is opened without it, free space and all.
#[test]
fn a_file_over_the_check_bound_is_opened_without_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
    let big = |id: u128| {
        let mut m = mqgate_session::Message::clone(&message(id, 0));
        m.payload = bytes::Bytes::from(vec![b'x'; 4096]);
        Arc::new(m)
    };
    let ops: Vec<Op> = (0..1000u128).map(|i| enqueue("gone", &big(i))).collect();
    store.apply(&ops).unwrap();
    store
        .apply(&[Op::RemoveSession(ByteStr::from_static("gone"))])
        .unwrap();
    let full = std::fs::metadata(store.path()).unwrap().len();
    drop(store);
    assert!(full > 2 << 20, "the fill grew the file: {full}");

    let options = RedbOptions {
        compact_check_max_bytes: 1 << 20,
        ..RedbOptions::default()
    };
    let store = RedbStore::open_with(dir.path(), StoreLimits::default(), options).unwrap();
    assert_eq!(store.compaction(), None, "over the bound: not checked");
    drop(store);
    let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
    assert!(
        store.compaction().is_some(),
        "under the default bound: compacted"
    );
}

/// Start-up does not read queued bodies: with every queued body of a client damaged on disk,
/// its session still loads (record, counters, in-flight body), and only reading its queue
/// finds the damage.
#[test]
fn session_heads_load_without_reading_queued_bodies() {
    const MESSAGES: TableDefinition<u128, &[u8]> = TableDefinition::new("messages");
    let dir = tempfile::tempdir().unwrap();
    let client = "GID_a@@@1";
    let sent = message(10, 5);
    let queued: Vec<_> = (20..25).map(|id| message(id, 5)).collect();
    {
        let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
        let mut ops = vec![Op::SaveSession {
            record: qos2_record(client, sent.id),
            messages: vec![Arc::clone(&sent)],
        }];
        ops.extend(queued.iter().map(|m| enqueue(client, m)));
        store.apply(&ops).unwrap();
    }
    write_raw(&dir.path().join(DEFAULT_FILE_NAME), |txn| {
        let mut table = txn.open_table(MESSAGES).unwrap();
        for m in &queued {
            table.insert(m.id.0, &b"\xffnot a message"[..]).unwrap();
        }
    });
    let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
    let heads = store.load_session_heads().unwrap();
    assert_eq!(heads[0].queue.messages, 5);
    assert_eq!(heads[0].inflight, vec![sent]);
    let read = mqgate_session::QueueRead {
        after_seq: None,
        skip: Vec::new(),
        max: 1,
        epoch: 0,
    };
    assert!(
        store.read_page(client, &read).is_err(),
        "the damage is found when read"
    );
}

#[test]
fn unreferenced_bodies_go_oldest_first_past_the_bound_and_all_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let options = RedbOptions {
        deferred_deletes: 4,
        ..RedbOptions::default()
    };
    let store = RedbStore::open_with(dir.path(), StoreLimits::default(), options).unwrap();
    let ops: Vec<Op> = (0..10u64)
        .map(|i| enqueue("c", &message(u128::from(i), i)))
        .collect();
    store.apply(&ops).unwrap();
    let ack = |through_seq| Op::Ack {
        client_id: ByteStr::from_static("c"),
        through_seq,
    };
    for seq in 0..=3 {
        store.apply(&[ack(seq)]).unwrap();
    }
    assert_eq!(store.raw_message_ids().len(), 10, "four wait, as allowed");
    assert_eq!(
        store.stats().unwrap().messages,
        6,
        "waiting bodies are not counted"
    );
    assert_eq!(store.get_message(MessageId(0)).unwrap(), None, "nor read");
    store.apply(&[ack(4)]).unwrap();
    assert_eq!(
        store.raw_message_ids(),
        [4, 5, 6, 7, 8, 9],
        "past the bound, the oldest four went"
    );
    for seq in 5..=9 {
        store.apply(&[ack(seq)]).unwrap();
    }
    assert_eq!(store.raw_message_ids(), [8, 9]);
    assert_eq!(store.stats().unwrap().messages, 0);

    // A body that waits and is enqueued again (the same message routed once more) is kept.
    store.apply(&[enqueue("d", &message(9, 9))]).unwrap();
    assert_eq!(store.stats().unwrap().messages, 1);
    store.sweep_expired(0, 10).unwrap();
    assert_eq!(
        store.raw_message_ids(),
        [9],
        "the sweep deleted what waited"
    );
    assert_eq!(
        store.read_queue("d", 0, 10).unwrap()[0].message.id,
        MessageId(9)
    );

    store
        .apply(&[Op::RemoveSession(ByteStr::from_static("d"))])
        .unwrap();
    assert_eq!(store.raw_message_ids(), [9], "waits");
    drop(store);
    let store = RedbStore::open_with(dir.path(), StoreLimits::default(), options).unwrap();
    assert!(store.raw_message_ids().is_empty(), "closing deleted it");
}
