//! A queue kept in a store behind a bounded window behaves like the queue held whole in
//! memory: random interleavings of publishes, client reads and acks, lost connections,
//! reconnects and late page reads, driven against two sessions, one of each kind, with the
//! same limits. When the driver answers every page read before the next input, checked after
//! every step: the same PUBLISHes written to the client in the same order, the same number of
//! messages dropped and the same queue counters. When reads come back late, checked: first
//! deliveries in publication order, each once, and every message delivered or reported
//! dropped. Always: the window's bound on what the store-backed session holds in memory.
//!
//! The store here is the driver's part, modelled as the broker keeps it: every QoS 1 or 2
//! delivery appended (sequence numbers store-wide, never reused) before the session gets it,
//! the oldest entries dropped past the limits, an entry removed once the session moved it in
//! flight, and pages read after a sequence number, skipping the messages the session holds.

mod support;

use std::collections::VecDeque;
use std::sync::Arc;

use mqgate_codec::{Packet, QoS};
use mqgate_session::{
    DeliveryOutcome, Event, FullPolicy, Message, MessageId, PageEntry, QueuePage, QueueRead,
    Session, SessionConfig,
};
use proptest::prelude::*;
use support::*;

#[derive(Debug, Clone)]
enum Op {
    Publish,
    ClientReads,
    ClientAcks(usize),
    ConnectionLost,
    Reconnect,
    /// Answers the page read asked for, if any (reads may come back late).
    AnswerRead,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::Publish),
        4 => Just(Op::ClientReads),
        4 => (0usize..6).prop_map(Op::ClientAcks),
        1 => Just(Op::ConnectionLost),
        2 => Just(Op::Reconnect),
        4 => Just(Op::AnswerRead),
    ]
}

/// The store's side of one client's queue.
#[derive(Default)]
struct Store {
    entries: VecDeque<(u64, Arc<Message>)>,
    next_seq: u64,
    pending: Option<QueueRead>,
}

impl Store {
    fn enqueue(&mut self, message: Arc<Message>, max: usize) {
        self.entries.push_back((self.next_seq, message));
        self.next_seq += 1;
        while self.entries.len() > max {
            self.entries.pop_front();
        }
    }

    fn dequeue(&mut self, id: MessageId) {
        self.entries.retain(|(_, m)| m.id != id);
    }

    fn read(&self, read: &QueueRead) -> QueuePage {
        let mut after = self.entries.iter().filter(|(seq, m)| {
            read.after_seq.is_none_or(|a| *seq > a) && !read.skip.contains(&(m.id, false))
        });
        let entries: Vec<PageEntry> = after
            .by_ref()
            .take(read.max)
            .map(|(seq, m)| PageEntry {
                seq: *seq,
                message: m.clone(),
                qos: QoS::AtLeastOnce,
                shared: false,
            })
            .collect();
        QueuePage {
            entries,
            more: after.next().is_some(),
            epoch: read.epoch,
        }
    }
}

struct Run {
    config: SessionConfig,
    whole: Session,
    windowed: Session,
    store: Store,
    window: usize,
    /// Page reads are answered before the next input.
    prompt: bool,
    published: u128,
    now: u64,
    /// PUBLISHes each session wrote: (message id, DUP).
    whole_out: Vec<(u128, bool)>,
    windowed_out: Vec<(u128, bool)>,
    whole_drops: usize,
    windowed_drops: usize,
    /// Deliveries the store-backed session refused (its publisher is told, nothing is lost).
    refused: usize,
    /// The driver's bound on what the store-backed session holds (queued and in flight)
    /// when it reads a page: `usize::MAX` for none.
    max_held: usize,
}

impl Run {
    fn new(config: SessionConfig, window: usize, prompt: bool) -> Self {
        let mut whole = session(config);
        let mut windowed = session(config);
        connect(&mut whole, false, 0);
        connect(&mut windowed, false, 0);
        windowed.keep_queue_in_store(window);
        Run {
            config,
            whole,
            windowed,
            store: Store::default(),
            window,
            prompt,
            published: 0,
            now: 0,
            whole_out: Vec::new(),
            windowed_out: Vec::new(),
            whole_drops: 0,
            windowed_drops: 0,
            refused: 0,
            max_held: usize::MAX,
        }
    }

    fn step(&mut self, op: &Op) {
        self.now += 1;
        let now = self.now;
        match op {
            Op::Publish => {
                let m = message(self.published, QoS::AtLeastOnce, now);
                self.published += 1;
                let a = self.whole.handle_delivery(m.clone(), QoS::AtLeastOnce, now);
                // The driver appends before the session takes it; a refusing one refuses before
                // it appends (the store itself always drops the oldest).
                let full = self.windowed.queued_len() >= self.config.max_queued_messages;
                let refusing = self.config.full_policy == FullPolicy::RefuseNew;
                if !(refusing && full) {
                    self.store
                        .enqueue(m.clone(), self.config.max_queued_messages);
                }
                let b = self
                    .windowed
                    .handle_delivery(m.clone(), QoS::AtLeastOnce, now);
                if self.prompt {
                    assert_eq!(a, b, "same outcome for message {}", m.id.0);
                }
                if b == DeliveryOutcome::Refused {
                    self.refused += 1;
                    self.store.dequeue(m.id);
                }
            }
            Op::ClientReads => {
                if self.whole.is_online() {
                    read_and_ack(&mut self.whole, &mut self.whole_out, 0, now, None);
                    let store = Some(&mut self.store);
                    read_and_ack(&mut self.windowed, &mut self.windowed_out, 0, now, store);
                }
            }
            Op::ClientAcks(n) => {
                if self.whole.is_online() {
                    read_and_ack(&mut self.whole, &mut self.whole_out, *n, now, None);
                    let store = Some(&mut self.store);
                    read_and_ack(&mut self.windowed, &mut self.windowed_out, *n, now, store);
                }
            }
            Op::ConnectionLost => {
                // A driver drops its page read with the connection.
                self.store.pending = None;
                let _ = self.whole.connection_lost(now);
                let _ = self.windowed.connection_lost(now);
            }
            Op::Reconnect => {
                if !self.whole.is_online() {
                    connect(&mut self.whole, false, now);
                    connect(&mut self.windowed, false, now);
                }
            }
            Op::AnswerRead => {
                if let Some(read) = self.store.pending.take() {
                    let page = self.store.read(&read);
                    self.windowed.refill(page, now);
                }
            }
        }
        self.drive();
        self.check();
    }

    /// Publishes a message whose delivery to the store-backed session is late: appended to
    /// the store (and given to the reference session) now, handed over by [`arrive`].
    fn publish_to_store_only(&mut self) -> Arc<Message> {
        self.now += 1;
        let m = message(self.published, QoS::AtLeastOnce, self.now);
        self.published += 1;
        let _ = self
            .whole
            .handle_delivery(m.clone(), QoS::AtLeastOnce, self.now);
        self.store
            .enqueue(m.clone(), self.config.max_queued_messages);
        self.drive();
        m
    }

    /// The late delivery of [`publish_to_store_only`] reaches the store-backed session.
    fn arrive(&mut self, m: Arc<Message>) {
        self.now += 1;
        let _ = self.windowed.handle_delivery(m, QoS::AtLeastOnce, self.now);
        self.drive();
    }

    /// What the driver does after every input: moves entries now in flight out of the
    /// store, takes the drops, and notes a page read asked for.
    fn drive(&mut self) {
        for e in events(&mut self.whole) {
            if matches!(e, Event::Dropped { .. }) {
                self.whole_drops += 1;
            }
        }
        self.take_drops();
        for id in self.windowed.record().inflight.iter().map(|e| e.message) {
            self.store.dequeue(id);
        }
        while let Some(read) = self.windowed.poll_queue_read_within(self.max_held) {
            assert!(self.store.pending.is_none(), "one read at a time");
            assert!(read.max <= self.window);
            if !self.prompt {
                self.store.pending = Some(read);
                break;
            }
            let page = self.store.read(&read);
            self.windowed.refill(page, self.now);
            self.take_drops();
        }
        // The client reads whatever either session wrote (a page can release messages).
        if self.whole.is_online() {
            read_and_ack(&mut self.whole, &mut self.whole_out, 0, self.now, None);
            let store = Some(&mut self.store);
            read_and_ack(
                &mut self.windowed,
                &mut self.windowed_out,
                0,
                self.now,
                store,
            );
        }
    }

    fn take_drops(&mut self) {
        for e in events(&mut self.windowed) {
            if matches!(e, Event::Dropped { .. } | Event::DroppedUnread { .. }) {
                self.windowed_drops += 1;
            }
        }
    }

    fn check(&self) {
        let (held, _) = self.windowed.queued_in_memory();
        assert!(held <= self.window, "{held} held, window {}", self.window);
        if !self.windowed.is_online() {
            assert_eq!(held, 0, "an offline session holds nothing queued");
        }
        if self.max_held != usize::MAX {
            let holding = held + self.windowed.inflight_len();
            assert!(
                holding <= self.max_held,
                "{holding} held, at most {}",
                self.max_held
            );
        }
        if !self.prompt {
            return;
        }
        assert_eq!(
            self.whole_out, self.windowed_out,
            "same PUBLISHes in the same order"
        );
        assert_eq!(self.whole_drops, self.windowed_drops, "same drops");
        assert_eq!(self.whole.queued_len(), self.windowed.queued_len());
        assert_eq!(self.whole.queued_bytes(), self.windowed.queued_bytes());
    }

    /// Answers reads until both sessions are idle; the client keeps acknowledging.
    fn drain(&mut self) {
        if !self.whole.is_online() {
            self.step(&Op::Reconnect);
        }
        for _ in 0..10_000 {
            self.step(&Op::AnswerRead);
            self.step(&Op::ClientAcks(usize::MAX));
            if self.whole.queued_len() == 0
                && self.whole.inflight_len() == 0
                && self.windowed.queued_len() == 0
                && self.windowed.inflight_len() == 0
            {
                return;
            }
        }
        panic!("the sessions never drained");
    }
}

/// Takes the session's PUBLISHes into `out` and acknowledges up to `n` of those in flight.
/// With a `store`, the driver's rule first: entries in flight leave the store before their
/// PUBLISH reaches the client.
fn read_and_ack(
    s: &mut Session,
    out: &mut Vec<(u128, bool)>,
    n: usize,
    now: u64,
    mut store: Option<&mut Store>,
) {
    let mut save = |s: &Session| {
        if let Some(store) = store.as_deref_mut() {
            for e in s.record().inflight {
                store.dequeue(e.message);
            }
        }
    };
    save(s);
    let packets = transmits(s);
    for p in publishes(&packets) {
        out.push((id_of(p), p.dup));
    }
    for e in s.record().inflight.into_iter().take(n) {
        s.handle_packet(Packet::PubAck(e.packet_id), now)
            .expect("in flight");
    }
    // What the acks released.
    save(s);
    let packets = transmits(s);
    for p in publishes(&packets) {
        out.push((id_of(p), p.dup));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_window_over_the_store_behaves_like_the_whole_queue(
        inflight_window in 1u16..4,
        max_queued_messages in 1usize..12,
        refuse in any::<bool>(),
        window in 1usize..5,
        prompt in any::<bool>(),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let config = SessionConfig {
            inflight_window,
            max_queued_messages,
            // Every test message counts the same: the byte limit never binds first.
            max_queued_bytes: 1 << 20,
            message_ttl_ms: u64::MAX / 4,
            full_policy: if refuse { FullPolicy::RefuseNew } else { FullPolicy::DropOldest },
            ..SessionConfig::default()
        };
        let mut run = Run::new(config, window, prompt);
        for op in &ops {
            run.step(op);
        }
        run.drain();
        // A PUBLISH the client never read before its connection was lost comes again with DUP.
        let mut firsts: Vec<u128> = Vec::new();
        for (id, _) in &run.windowed_out {
            if !firsts.contains(id) {
                firsts.push(*id);
            }
        }
        let mut sorted = firsts.clone();
        sorted.sort_unstable();
        prop_assert_eq!(&sorted, &firsts, "first deliveries in publication order");
        prop_assert_eq!(firsts.len() + run.windowed_drops + run.refused, run.published as usize, "every message delivered, dropped or refused");
        if prompt {
            prop_assert_eq!(&run.windowed_out, &run.whole_out);
        }
    }
}

#[test]
fn a_deep_backlog_is_held_a_window_at_a_time() {
    let config = SessionConfig {
        inflight_window: 4,
        max_queued_messages: 10_000,
        ..SessionConfig::default()
    };
    let mut run = Run::new(config, 8, true);
    run.step(&Op::ConnectionLost);
    for _ in 0..5_000 {
        run.step(&Op::Publish);
    }
    assert_eq!(run.windowed.queued_len(), 5_000);
    assert_eq!(
        run.windowed.queued_in_memory(),
        (0, 0),
        "an offline session holds none of its backlog"
    );
    run.step(&Op::Reconnect);
    let (held, _) = run.windowed.queued_in_memory();
    assert!(held > 0 && held <= 8, "online, the window: {held}");
    run.drain();
    assert_eq!(run.windowed_out.len(), 5_000);
    assert_eq!(run.windowed_out, run.whole_out);
}

/// A driver bounding what a draining session holds (many sessions drain at once and share
/// a memory budget) gets the backlog in order all the same, a little at a time: the cap
/// counts messages held in memory and in flight together, and the next read is asked for as
/// acknowledgements free room.
#[test]
fn a_capped_session_drains_its_backlog_in_order_within_the_cap() {
    let config = SessionConfig {
        inflight_window: 10,
        max_queued_messages: 10_000,
        ..SessionConfig::default()
    };
    let mut run = Run::new(config, 16, false);
    run.max_held = 3;
    run.step(&Op::ConnectionLost);
    for _ in 0..2_000 {
        run.step(&Op::Publish);
    }
    run.step(&Op::Reconnect);
    let read = run.store.pending.clone().expect("a read asked for");
    assert_eq!(read.max, 3, "the page is no larger than the cap");
    run.drain();
    let ids: Vec<u128> = run.windowed_out.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (0..2_000).collect::<Vec<u128>>());
}

/// A message's delivery can reach the session after a page read already returned its stored
/// entry: the router appends to the store, then hands the delivery to the connection's
/// inbox, and a page read by the connection meanwhile sees the entry. The late copy must not
/// be sent as a second new message (at QoS 2 that would be a duplicate, [MQTT-4.3.3-2]).
#[test]
fn a_delivery_arriving_after_its_page_is_not_sent_twice() {
    let config = SessionConfig {
        inflight_window: 1,
        max_queued_messages: 100,
        ..SessionConfig::default()
    };
    // Reads answered when the test says (the reference session's queue differs meanwhile).
    // One in flight, a window of 8 held, three more only in the store: a page will have
    // room for more entries than the session counts.
    let mut run = Run::new(config, 8, false);
    for _ in 0..12 {
        run.step(&Op::Publish);
    }
    // In transit: stored, given to the in-memory reference session, not yet to the
    // store-backed one.
    let late = run.publish_to_store_only();
    // The client acknowledges one at a time: the window runs low and pages are read, the
    // late message's entry among them.
    for _ in 0..20 {
        run.step(&Op::ClientAcks(1));
        run.step(&Op::AnswerRead);
    }
    assert!(
        run.windowed_out.iter().any(|(id, _)| *id == late.id.0),
        "the page delivered the late message first: {:?}",
        run.windowed_out
    );
    run.arrive(late.clone());
    run.drain();
    let new_sends = run
        .windowed_out
        .iter()
        .filter(|(id, dup)| *id == late.id.0 && !dup)
        .count();
    assert_eq!(new_sends, 1, "{:?}", run.windowed_out);
    assert_eq!(run.windowed.queued_len(), 0);
}
