//! What only a durable store must do: keep everything across a close and reopen, and refuse
//! files it cannot trust.

use std::sync::Arc;

use mqgate_codec::{ByteStr, Connect, Packet, PacketId};
use mqgate_session::SessionConfig;
use redb::{Database, TableDefinition};

use crate::suite::{enqueue, message, qos2_record, registry_ops};
use crate::{
    restore_sessions, Op, RedbStore, Store, StoreError, StoreLimits, DEFAULT_FILE_NAME,
    FORMAT_VERSION,
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
        ];
        ops.extend(registry_ops());
        store.apply(&ops).unwrap();
    }
    let store = RedbStore::open(dir.path(), StoreLimits::default()).unwrap();
    assert_eq!(store.load_retained().unwrap(), [retained]);
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

#[test]
fn a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    drop(RedbStore::open(dir.path(), StoreLimits::default()).unwrap());
    let meta: TableDefinition<&str, u64> = TableDefinition::new("meta");
    write_raw(&path, |txn| {
        let mut table = txn.open_table(meta).unwrap();
        table.insert("format_version", FORMAT_VERSION + 1).unwrap();
    });
    let err = RedbStore::open(dir.path(), StoreLimits::default()).unwrap_err();
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
