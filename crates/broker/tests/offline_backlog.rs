//! Offline backlogs far deeper than what a session holds in memory: the queues live in the
//! store, an offline session holds none of its queue in memory (an online one at most
//! `[session] queue_window` messages), and every message reaches its client in order after a reconnect and after a restart of
//! the broker on the same data directory (real sockets, rumqttc clients, redb on disk).

mod support;

use std::path::Path;
use std::time::Duration;

use mqgate_broker::{Broker, BrokerConfig, BrokerHandle, SessionLimits, StorageKind};
use rumqttc::QoS;
use support::{subscribe, Client};

/// The memory bound under test: queued messages one online session holds in memory (an
/// offline one holds none).
const WINDOW: usize = 16;
/// Messages queued per offline session: far beyond the window.
const DEPTH: usize = 600;
/// Persistent subscribers with a backlog.
const SUBSCRIBERS: usize = 3;

fn config(dir: &Path) -> BrokerConfig {
    BrokerConfig {
        storage: StorageKind::Redb,
        data_dir: dir.to_path_buf(),
        session: SessionLimits {
            inflight_window: 8,
            max_queued_messages: 10_000,
            queue_window: WINDOW,
            ..SessionLimits::default()
        },
        ..BrokerConfig::ephemeral()
    }
}

/// Starts a broker on `dir`; the previous one's store file closes a moment after its
/// shutdown returned: a bounded number of retries.
async fn start_on(dir: &Path) -> BrokerHandle {
    let mut last = None;
    for _ in 0..50 {
        match Broker::builder().config(config(dir)).build().start().await {
            Ok(handle) => return handle,
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("broker did not start on {}: {last:?}", dir.display());
}

async fn stop(broker: BrokerHandle) {
    broker.shutdown().await;
    drop(broker);
}

fn subscriber(n: usize) -> String {
    format!("backlog-sub-{n}")
}

/// Receives `count` messages and checks they are `from..from + count` in order (a message
/// resent with DUP after a reconnect may repeat the last one before it).
async fn expect_in_order(sub: &mut Client, from: usize, count: usize) {
    let mut next = from;
    let mut received = 0;
    while next < from + count {
        let p = sub.next().await;
        let n: usize = std::str::from_utf8(&p.payload)
            .expect("utf-8")
            .parse()
            .expect("a number");
        if p.dup && n < next {
            continue;
        }
        assert_eq!(n, next, "message {received} after {from}");
        next += 1;
        received += 1;
    }
}

/// Publishes `count` QoS 1 messages, `{prefix}/{n}` with payload `n`, and waits for every
/// PUBACK.
async fn publish_numbered(publisher: &mut Client, prefix: &str, count: usize) {
    for n in 0..count {
        publisher
            .client
            .publish(
                format!("{prefix}/{n}"),
                QoS::AtLeastOnce,
                false,
                n.to_string(),
            )
            .await
            .expect("queued");
    }
    publisher.acked(count).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_offline_backlogs_stay_on_disk_and_arrive_in_order_after_reconnect_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start_on(dir.path()).await;
    for n in 0..SUBSCRIBERS {
        let mut sub = Client::connect(&broker, &subscriber(n), false).await;
        subscribe(&mut sub, "backlog/#", QoS::AtLeastOnce).await;
        sub.disconnect().await;
    }
    let mut publisher = Client::connect(&broker, "backlog-pub", true).await;
    // Every PUBACK: each message is in the store for every subscriber.
    publish_numbered(&mut publisher, "backlog", DEPTH).await;

    let queues = broker.offline_queues();
    assert_eq!(queues.sessions, SUBSCRIBERS);
    assert_eq!(queues.queued, (SUBSCRIBERS * DEPTH) as u64);
    assert_eq!(
        (queues.in_memory, queues.most_in_memory),
        (0, 0),
        "an offline session holds none of its backlog in memory: {queues:?}"
    );

    // A reconnect streams the whole backlog from disk, in order, while another client's
    // messages keep flowing.
    let mut live = Client::connect(&broker, "backlog-live", true).await;
    subscribe(&mut live, "live/#", QoS::AtLeastOnce).await;
    let mut sub = Client::connect(&broker, &subscriber(0), false).await;
    assert!(sub.session_present);
    publisher
        .client
        .publish("live/1", QoS::AtLeastOnce, false, "not stalled")
        .await
        .expect("queued");
    assert_eq!(&live.next().await.payload[..], b"not stalled");
    expect_in_order(&mut sub, 0, DEPTH).await;
    assert!(broker.metrics().queue_pages_read >= (DEPTH / WINDOW) as u64);
    sub.expect_nothing(Duration::from_millis(300)).await;
    sub.disconnect().await;
    live.disconnect().await;
    publisher.disconnect().await;
    stop(broker).await;

    // After a restart on the same data directory: nothing queued was read at start-up, the
    // counters are back, and the backlog streams in order.
    let broker = start_on(dir.path()).await;
    let queues = broker.offline_queues();
    assert_eq!(queues.sessions, SUBSCRIBERS);
    assert_eq!(queues.queued, ((SUBSCRIBERS - 1) * DEPTH) as u64);
    assert_eq!(queues.in_memory, 0, "start-up reads no queued message");
    let mut sub = Client::connect(&broker, &subscriber(1), false).await;
    assert!(sub.session_present);
    expect_in_order(&mut sub, 0, DEPTH).await;
    sub.disconnect().await;

    // Half of the last backlog, then the client goes and the broker restarts: the rest
    // follows in order.
    let mut sub = Client::connect(&broker, &subscriber(2), false).await;
    expect_in_order(&mut sub, 0, DEPTH / 2).await;
    sub.disconnect().await;
    stop(broker).await;
    let broker = start_on(dir.path()).await;
    let queues = broker.offline_queues();
    assert!(queues.queued <= (DEPTH / 2) as u64, "{queues:?}");
    let mut sub = Client::connect(&broker, &subscriber(2), false).await;
    let rest = queues.queued as usize;
    expect_in_order(&mut sub, DEPTH - rest, rest).await;
    sub.expect_nothing(Duration::from_millis(300)).await;
    sub.disconnect().await;
    stop(broker).await;
}

/// A full offline queue drops its oldest messages, counted by reason in the metrics, and the
/// client gets the newest ones in order: queues on disk and queues in memory alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_offline_queue_drops_the_oldest_and_counts_it_by_reason() {
    const LIMIT: usize = 5;
    const SENT: usize = 12;
    let dir = tempfile::tempdir().expect("tempdir");
    for storage in [StorageKind::Redb, StorageKind::Memory] {
        let mut config = config(dir.path());
        config.storage = storage;
        config.session.max_queued_messages = LIMIT;
        let broker = Broker::builder()
            .config(config)
            .build()
            .start()
            .await
            .expect("broker starts");
        let id = format!("full-{storage:?}");
        let mut sub = Client::connect(&broker, &id, false).await;
        subscribe(&mut sub, "full/#", QoS::AtLeastOnce).await;
        sub.disconnect().await;
        let mut publisher = Client::connect(&broker, "full-pub", true).await;
        publish_numbered(&mut publisher, "full", SENT).await;
        let metrics = broker.metrics();
        assert_eq!(
            metrics.queue_full_dropped,
            (SENT - LIMIT) as u64,
            "{storage:?}: evictions counted by reason"
        );
        assert!(metrics.session_dropped >= (SENT - LIMIT) as u64);
        assert_eq!(broker.offline_queues().queued, LIMIT as u64);
        let mut sub = Client::connect(&broker, &id, false).await;
        expect_in_order(&mut sub, SENT - LIMIT, LIMIT).await;
        sub.expect_nothing(Duration::from_millis(300)).await;
        sub.disconnect().await;
        publisher.disconnect().await;
        stop(broker).await;
    }
}

/// Sessions draining backlogs at once share one memory budget
/// (`[session] backlog_memory_bytes`): each reads its queue in pages no larger than its
/// share (here two or four messages of about 210 bytes, instead of half the window), as its
/// client's acknowledgements free room, and gets every message in order all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_draining_at_once_share_the_backlog_memory_budget() {
    const DEPTH: usize = 120;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(dir.path());
    config.session.backlog_memory_bytes = 900;
    let broker = Broker::builder()
        .config(config)
        .build()
        .start()
        .await
        .expect("broker starts");
    for n in 0..2 {
        let mut sub = Client::connect(&broker, &format!("capped-{n}"), false).await;
        subscribe(&mut sub, "capped/#", QoS::AtLeastOnce).await;
        sub.disconnect().await;
    }
    let mut publisher = Client::connect(&broker, "capped-pub", true).await;
    for n in 0..DEPTH {
        // 200 digits: a number `expect_in_order` reads, and a message of about 210 bytes.
        let payload = format!("{n:0200}");
        publisher
            .client
            .publish(format!("capped/{n}"), QoS::AtLeastOnce, false, payload)
            .await
            .expect("queued");
    }
    publisher.acked(DEPTH).await;
    let pages_before = broker.metrics().queue_pages_read;

    let mut first = Client::connect(&broker, "capped-0", false).await;
    let mut second = Client::connect(&broker, "capped-1", false).await;
    tokio::join!(
        expect_in_order(&mut first, 0, DEPTH),
        expect_in_order(&mut second, 0, DEPTH)
    );
    let pages = broker.metrics().queue_pages_read - pages_before;
    // At most four messages a page (two sessions share 900 bytes: 2 each; one alone: 4);
    // without the budget a page refills half the window of 16.
    assert!(
        pages >= (2 * DEPTH / 4) as u64,
        "{pages} pages for {} messages",
        2 * DEPTH
    );
    first.disconnect().await;
    second.disconnect().await;
    publisher.disconnect().await;
    stop(broker).await;
}
