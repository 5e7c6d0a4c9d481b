//! The trace log's rules: what queries select, paging both ways, restart, a torn tail,
//! retention and the size bound, in memory and on disk.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is the test failing

use std::io::Write;

use mqgate_trace::{
    Action, Info, Page, Paging, Query, TraceConfig, TraceLog, TraceRecord, TraceStats,
};
use proptest::prelude::*;

const C: &str = "GID_dev@@@1";

fn connect(t: u64, channel: &str) -> TraceRecord {
    TraceRecord::device(Action::Connect, Info::Accepted, t, C, channel)
}

fn ids(page: &Page) -> Vec<u64> {
    page.records.iter().map(|r| r.time_ms).collect()
}

fn small() -> TraceConfig {
    TraceConfig {
        retention_ms: 1_000,
        max_bytes: 10_000,
        segment_bytes: 500,
    }
}

#[test]
fn each_query_selects_its_actions() {
    let mut log = TraceLog::in_memory(TraceConfig::default());
    log.append(&[
        connect(1, "ch1"),
        TraceRecord::message(Action::PubMqtt, Info::PubFromMqttClient, 2, C, 7),
        TraceRecord::message(Action::Sub, Info::PushToMqttClient, 3, "GID_dev@@@2", 7),
        TraceRecord::message(
            Action::PushOffline,
            Info::PushOfflineMsgToMqttClient,
            4,
            "GID_dev@@@3",
            7,
        ),
        TraceRecord::message(Action::PubMq, Info::PubFromMq, 5, "", 8),
        TraceRecord::message(Action::Sub, Info::PushToMqttClient, 6, C, 8),
        TraceRecord::device(Action::Close, Info::NoHeart, 7, C, "ch1"),
    ])
    .unwrap();
    let all = Paging::first(100);
    let q = |query: Query| log.query(&query, 0, 100, all).unwrap();
    assert_eq!(
        ids(&q(Query::Device {
            client_id: C.into()
        })),
        [1, 7]
    );
    assert_eq!(
        ids(&q(Query::MessagesOfClient {
            client_id: C.into()
        })),
        [2, 6]
    );
    assert_eq!(ids(&q(Query::MessagePublish { message: 7 })), [2]);
    assert_eq!(ids(&q(Query::MessagePublish { message: 8 })), [5]);
    assert_eq!(
        ids(&q(Query::MessageSubscribe {
            message: 7,
            client_id: None
        })),
        [3, 4]
    );
    assert_eq!(
        ids(&q(Query::MessageSubscribe {
            message: 7,
            client_id: Some("GID_dev@@@3".into())
        })),
        [4]
    );
    // The time range is inclusive at both ends.
    let device = Query::Device {
        client_id: C.into(),
    };
    assert_eq!(ids(&log.query(&device, 2, 7, all).unwrap()), [7]);
    assert_eq!(ids(&log.query(&device, 1, 6, all).unwrap()), [1]);
}

#[test]
fn pages_both_ways() {
    let mut log = TraceLog::in_memory(small());
    let records: Vec<_> = (1..=25).map(|t| connect(t, "ch")).collect();
    log.append(&records).unwrap();
    let device = Query::Device {
        client_id: C.into(),
    };
    let page = |current_page, reverse| {
        log.query(
            &device,
            0,
            100,
            Paging {
                current_page,
                page_size: 10,
                reverse,
            },
        )
        .unwrap()
    };
    assert_eq!(page(1, false).total, 25);
    assert_eq!(ids(&page(1, false)), (1..=10).collect::<Vec<_>>());
    assert_eq!(ids(&page(3, false)), (21..=25).collect::<Vec<_>>());
    assert_eq!(ids(&page(1, true)), (16..=25).rev().collect::<Vec<_>>());
    assert_eq!(ids(&page(3, true)), (1..=5).rev().collect::<Vec<_>>());
    assert!(page(4, false).records.is_empty());
    assert_eq!(page(4, false).total, 25);
    // Page size is clamped to 1..=100.
    let huge = Paging {
        current_page: 1,
        page_size: 1_000,
        reverse: false,
    };
    assert_eq!(log.query(&device, 0, 100, huge).unwrap().records.len(), 25);
}

#[test]
fn equal_times_keep_the_order_they_were_appended_in() {
    let mut log = TraceLog::in_memory(TraceConfig::default());
    log.append(&[connect(5, "a"), connect(5, "b"), connect(4, "c")])
        .unwrap();
    let page = log
        .query(
            &Query::Device {
                client_id: C.into(),
            },
            0,
            10,
            Paging::first(10),
        )
        .unwrap();
    let channels: Vec<_> = page
        .records
        .iter()
        .map(|r| r.channel_id.clone().unwrap())
        .collect();
    assert_eq!(channels, ["c", "a", "b"]);
}

#[test]
fn a_log_on_disk_survives_a_restart_and_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = TraceLog::open_dir(dir.path(), small()).unwrap();
        let records: Vec<_> = (1..=30).map(|t| connect(t, "ch")).collect();
        log.append(&records).unwrap();
        assert!(log.stats().segments > 1, "{:?}", log.stats());
    }
    // A crash in the middle of a write: half a record at the end of the newest segment.
    let newest = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let half = connect(31, "torn").encode();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap()
        .write_all(&half[..half.len() / 2])
        .unwrap();

    let mut log = TraceLog::open_dir(dir.path(), small()).unwrap();
    assert_eq!(log.stats().damaged_segments, 1);
    let device = Query::Device {
        client_id: C.into(),
    };
    let all = Paging::first(100);
    assert_eq!(
        ids(&log.query(&device, 0, 100, all).unwrap()),
        (1..=30).collect::<Vec<_>>()
    );
    // What comes after the restart is readable: it is not written behind the torn record.
    log.append(&[connect(32, "after")]).unwrap();
    let again = TraceLog::open_dir(dir.path(), small()).unwrap();
    let page = again.query(&device, 0, 100, all).unwrap();
    assert_eq!(page.total, 31);
    assert_eq!(
        page.records.last().unwrap().channel_id.as_deref(),
        Some("after")
    );
}

fn bounded(log: &mut TraceLog) -> TraceStats {
    let records: Vec<_> = (0..400).map(|t| connect(10_000 + t, "ch")).collect();
    for chunk in records.chunks(10) {
        log.append(chunk).unwrap();
    }
    log.sweep(10_400).unwrap();
    log.stats()
}

#[test]
fn the_size_bound_removes_the_oldest_segments() {
    let dir = tempfile::tempdir().unwrap();
    for (name, mut log) in [
        ("memory", TraceLog::in_memory(small())),
        ("disk", TraceLog::open_dir(dir.path(), small()).unwrap()),
    ] {
        let stats = bounded(&mut log);
        assert!(stats.bytes <= 10_000, "{name}: {stats:?}");
        assert!(stats.removed_segments > 0, "{name}: {stats:?}");
        // What is left is the newest, without a gap.
        let page = log
            .query(
                &Query::Device {
                    client_id: C.into(),
                },
                0,
                u64::MAX,
                Paging {
                    current_page: 1,
                    page_size: 100,
                    reverse: true,
                },
            )
            .unwrap();
        assert_eq!(page.records[0].time_ms, 10_399, "{name}");
        let kept = ids(&page);
        assert!(
            kept.windows(2).all(|w| w[0] == w[1] + 1),
            "{name}: {kept:?}"
        );
    }
}

#[test]
fn retention_removes_segments_whose_newest_record_is_old() {
    let mut log = TraceLog::in_memory(small());
    let old: Vec<_> = (0..40).map(|t| connect(t, "old")).collect();
    log.append(&old).unwrap();
    let new: Vec<_> = (0..40).map(|t| connect(5_000 + t, "new")).collect();
    log.append(&new).unwrap();
    log.sweep(5_500).unwrap();
    let page = log
        .query(
            &Query::Device {
                client_id: C.into(),
            },
            0,
            u64::MAX,
            Paging::first(100),
        )
        .unwrap();
    assert!(
        page.records.iter().all(|r| r.time_ms >= 4_500),
        "{:?}",
        ids(&page)
    );
    assert!(page.records.iter().any(|r| r.time_ms >= 5_000));
    // Nothing younger than the retention is removed.
    assert_eq!(log.sweep(5_500).unwrap(), 0);
}

fn arb_record() -> impl Strategy<Value = TraceRecord> {
    (
        any::<u64>(),
        0usize..7,
        "[A-Za-z0-9_@ é]{0,30}",
        any::<u128>(),
        "[a-f0-9]{0,32}",
    )
        .prop_map(|(t, a, client, id, channel)| {
            let actions = [
                (Action::Connect, Info::Accepted),
                (Action::Close, Info::SocketError),
                (Action::Disconnect, Info::DisconnectedByClient),
                (Action::PubMqtt, Info::PubFromMqttClient),
                (Action::PubMq, Info::PubFromMq),
                (Action::Sub, Info::PushToMqttClient),
                (Action::PushOffline, Info::PushOfflineMsgToMqttClient),
            ];
            let (action, info) = actions[a];
            if action.is_device() {
                TraceRecord::device(action, info, t, &client, &channel)
            } else {
                TraceRecord::message(action, info, t, &client, id)
            }
        })
}

proptest! {
    #[test]
    fn records_round_trip(record in arb_record()) {
        let bytes = record.encode();
        let (back, used) = TraceRecord::decode(&bytes).unwrap();
        prop_assert_eq!(back, record);
        prop_assert_eq!(used, bytes.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        mqgate_trace::fuzzing::decode_records(&bytes);
    }

    /// Whatever is appended, every query over the whole time range finds exactly the records
    /// it selects, in time order.
    #[test]
    fn queries_match_a_filter_over_everything(records in proptest::collection::vec(arb_record(), 0..60)) {
        let mut log = TraceLog::in_memory(TraceConfig { segment_bytes: 256, ..TraceConfig::default() });
        log.append(&records).unwrap();
        for record in &records {
            let query = Query::MessagesOfClient { client_id: record.client_id.clone() };
            let mut want: Vec<_> = records.iter().filter(|r| query.selects(r)).cloned().collect();
            want.sort_by_key(|r| r.time_ms);
            let got = log.query(&query, 0, u64::MAX, Paging { current_page: 1, page_size: 100, reverse: false }).unwrap();
            prop_assert_eq!(got.total as usize, want.len());
            want.truncate(100);
            prop_assert_eq!(got.records, want);
        }
    }
}
