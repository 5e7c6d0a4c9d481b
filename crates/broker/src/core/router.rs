//! The router: who gets a message. P2P addresses go straight to their client; everything
//! else is matched in the shared subscription trie; retained messages are kept by topic.
//!
//! Locks: the trie and the retained index sit behind `parking_lot::RwLock`s taken for the
//! length of one match or one update, never across an `.await`; the registry's shard locks
//! likewise. A delivery that must wait for a full inbox is handed back to the caller, which
//! waits without holding anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;

use mqgate_codec::QoS;
use mqgate_session::{Message, MessageId, Subscription};
use mqgate_store::Op;
use mqgate_topic::{
    ClientIdRules, Matches, P2pAddress, RetainedIndex, SubscriptionFilter, SubscriptionTrie,
};
use parking_lot::RwLock;

use super::deliver::{self, Blocked, Stalls};
use super::persist::{enqueue_op, Persist, Ticket};
use super::registry::{Delivery, Offer, Registry, SharedFrames, AMQP_LINK_PREFIX};
use crate::Metrics;

/// Per-task scratch space, reused so that routing allocates nothing in the steady state.
#[derive(Debug, Default)]
pub(crate) struct RouteScratch {
    matches: Matches<Arc<str>, QoS>,
    /// The receivers of the message being routed, with their registry shard and whether the
    /// delivery is a shared subscription's.
    targets: Vec<(usize, Arc<str>, QoS, bool)>,
    pub(crate) blocked: Vec<Blocked>,
    /// Store writes of the next route (a caller may add its own first; they commit with the
    /// route's in one transaction).
    pub(crate) ops: Vec<Op>,
    /// The commit the last routed message's acknowledgement waits for, if it had to be durable.
    pub(crate) ticket: Option<Ticket>,
    /// Receivers this publisher gave up waiting for at QoS 0.
    pub(crate) stalls: Stalls,
    /// Whether the last routed message had a receiver: a P2P target, or a subscription
    /// that matched (an MQTT 5 publisher hears of none, PUBACK 0x10).
    pub(crate) matched: bool,
    /// Set by the caller for the next route only: the publisher's own session is not among
    /// the receivers (MQTT 5 No Local on all its subscriptions that match the topic), online
    /// or offline, so no store write queues it there either.
    pub(crate) skip_publisher: bool,
    /// Receivers to wake: after each registry shard's lock is let go, or, when the caller
    /// defers wakes ([`RouteScratch::deferring`]), once it is done routing.
    wakers: Vec<Waker>,
    defer_wakes: bool,
}

impl RouteScratch {
    /// A scratch space whose routes leave the receivers' wakers in it until
    /// [`wake`](Self::wake): a connection routing a batch of PUBLISHes wakes each receiver
    /// once for the batch, not once per message (a fan-out receiver that keeps up would
    /// otherwise be woken, and take one message, for every message). The caller must call
    /// `wake` before it waits for anything, and when it is done.
    pub(crate) fn deferring() -> Self {
        RouteScratch {
            defer_wakes: true,
            ..RouteScratch::default()
        }
    }

    /// Wakes the receivers routes left to wake.
    pub(crate) fn wake(&mut self) -> bool {
        let woke = !self.wakers.is_empty();
        self.wakers.drain(..).for_each(Waker::wake);
        woke
    }

    /// Keeps a blocked delivery for waiting, or drops it (counted) when it is QoS 0 and its
    /// receiver stalled this publisher recently.
    fn keep_blocked(&mut self, blocked: Blocked, now: u64, metrics: &Metrics) {
        if blocked.delivery.is_qos0() && self.stalls.skips(&blocked.client, now) {
            metrics.qos0_dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            self.blocked.push(blocked);
        }
    }
}

/// Message ids: a random 64-bit node prefix and a counter, so ids are unique across restarts
/// and nodes without coordination.
#[derive(Debug)]
struct MessageIds {
    prefix: u64,
    counter: AtomicU64,
}

impl MessageIds {
    fn next(&self) -> MessageId {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        MessageId((u128::from(self.prefix) << 64) | u128::from(n))
    }
}

/// Subscriptions and retained messages, and the routing of each message to its receivers
/// through the registry.
#[derive(Debug)]
pub(crate) struct Router {
    trie: RwLock<SubscriptionTrie<Arc<str>, QoS>>,
    retained: RwLock<RetainedIndex<Arc<Message>>>,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    ids: MessageIds,
    /// The store writer: the enqueues of durable deliveries and retained changes are
    /// submitted to it before any receiver gets the message.
    persist: Arc<Persist>,
    /// The client id rules CONNECTs are checked against: a P2P address's target is read
    /// under the same ones, so every id that can connect can be addressed.
    client_id_rules: ClientIdRules,
}

impl Router {
    pub(crate) fn new(
        registry: Arc<Registry>,
        persist: Arc<Persist>,
        metrics: Arc<Metrics>,
        client_id_rules: ClientIdRules,
    ) -> Self {
        // Without OS randomness the counter alone still keeps ids unique for this process.
        let prefix = getrandom::u64().unwrap_or(0);
        Router {
            trie: RwLock::new(SubscriptionTrie::new()),
            retained: RwLock::new(RetainedIndex::new()),
            registry,
            metrics,
            ids: MessageIds {
                prefix,
                counter: AtomicU64::new(0),
            },
            persist,
            client_id_rules,
        }
    }

    /// A fresh message id.
    pub(crate) fn next_id(&self) -> MessageId {
        self.ids.next()
    }

    /// Routes `message` (its `retain` flag already false, as existing subscribers see it).
    /// With `retain`, it also sets (or, with an empty payload, clears) the retained message of
    /// its topic. Deliveries that must wait for inbox room are left in `scratch.blocked`.
    ///
    /// Durability: the `Enqueue` of every QoS 1 or 2 delivery to a persistent session, the
    /// retained change and whatever the caller put in `scratch.ops` are submitted to the store
    /// as one transaction *before* any receiver gets the message; `scratch.ticket` is then
    /// the commit an acknowledgement must wait for. Nothing is submitted for a message no
    /// persistent session receives.
    pub(crate) fn route(
        &self,
        message: &Arc<Message>,
        retain: bool,
        publisher: Option<&str>,
        now: u64,
        scratch: &mut RouteScratch,
    ) {
        self.begin_route(scratch);
        let skip = std::mem::take(&mut scratch.skip_publisher);
        match P2pAddress::parse_with(&message.topic, &self.client_id_rules) {
            Ok(Some(address)) => {
                scratch.matched = true;
                // P2P: no trie lookup, no retained message whatever the flag says, and the
                // target id is borrowed from the topic (no allocation unless it must wait).
                self.deliver_p2p(address.target_client_id, message, now, scratch);
            }
            Ok(None) => {
                if retain {
                    self.set_retained(message, &mut scratch.ops);
                }
                self.match_subscribers(&message.topic, publisher, scratch);
                not_for_cloud_queues(message, scratch);
                if let (true, Some(publisher)) = (skip, publisher) {
                    scratch
                        .targets
                        .retain(|(_, client, _, _)| **client != *publisher);
                }
                scratch.matched = !scratch.targets.is_empty();
                let first = scratch.ops.len();
                self.durable_matched(message, scratch);
                let owned = detach_durable(message, &mut scratch.ops[first..]);
                self.submit(scratch);
                self.deliver_matched(owned.as_ref().unwrap_or(message), retain, now, scratch);
            }
            Err(error) => {
                tracing::debug!(topic = %message.topic, %error, "P2P address with an invalid target");
                self.metrics.p2p_no_target.fetch_add(1, Ordering::Relaxed);
                self.submit(scratch);
            }
        }
    }

    /// Routes `message` to the subscribers of `match_topic`, which may differ from the topic
    /// the receivers see (the RocketMQ bridge's `mqttRealTopic`). Never P2P, never retained.
    /// Like [`route`](Self::route), store writes for persistent receivers are submitted first
    /// and `scratch.ticket` is the commit to wait for before the message counts as safe.
    pub(crate) fn route_subscribers(
        &self,
        match_topic: &str,
        message: &Arc<Message>,
        now: u64,
        scratch: &mut RouteScratch,
    ) {
        self.begin_route(scratch);
        self.match_subscribers(match_topic, None, scratch);
        not_for_cloud_queues(message, scratch);
        let first = scratch.ops.len();
        self.durable_matched(message, scratch);
        let owned = detach_durable(message, &mut scratch.ops[first..]);
        self.submit(scratch);
        self.deliver_matched(owned.as_ref().unwrap_or(message), false, now, scratch);
    }

    /// Delivers `message` to the one client `target` (a P2P message), whether or not it
    /// subscribed: its store write first if it is a persistent session (`scratch.ticket` is
    /// then the commit to wait for), then its inbox or offline queue.
    pub(crate) fn deliver_p2p(
        &self,
        target: &str,
        message: &Arc<Message>,
        now: u64,
        scratch: &mut RouteScratch,
    ) {
        let first = scratch.ops.len();
        self.durable(target, message, QoS::ExactlyOnce, scratch);
        let owned = detach_durable(message, &mut scratch.ops[first..]);
        let message = owned.as_ref().unwrap_or(message);
        let mut delivery = Delivery {
            message: message.clone(),
            granted: QoS::ExactlyOnce,
            // One receiver: it encodes the message itself.
            frame: None,
            published_retained: false,
            shared: false,
            direct: true,
            stored: 0,
        };
        self.submit(scratch);
        delivery.stored = scratch.ticket.unwrap_or(0);
        if let Some(blocked) = deliver::offer(&self.registry, &self.metrics, target, delivery, now)
        {
            scratch.keep_blocked(blocked, now, &self.metrics);
        }
    }

    fn begin_route(&self, scratch: &mut RouteScratch) {
        self.metrics
            .messages_received
            .fetch_add(1, Ordering::Relaxed);
        scratch.targets.clear();
        scratch.ticket = None;
        scratch.matched = false;
    }

    fn match_subscribers(&self, topic: &str, publisher: Option<&str>, scratch: &mut RouteScratch) {
        self.trie.read().match_topic_with(
            topic,
            publisher,
            |client| self.registry.is_online(client),
            &mut scratch.matches,
        );
        let registry = &self.registry;
        let plain = scratch.matches.plain().map(|m| (m, false));
        let shared = scratch.matches.shared().iter().map(|(c, q)| ((c, q), true));
        scratch
            .targets
            .extend(plain.chain(shared).map(|((client, qos), shared)| {
                (registry.shard_index(client), client.clone(), *qos, shared)
            }));
    }

    /// Queues the store writes for the matched receivers that are persistent sessions.
    fn durable_matched(&self, message: &Arc<Message>, scratch: &mut RouteScratch) {
        if message.qos != QoS::AtMostOnce {
            for (_, client, granted, shared) in &scratch.targets {
                if let Some(op) = self.durable_op(client, message, *granted, *shared) {
                    scratch.ops.push(op);
                }
            }
        }
    }

    /// Delivers to every matched receiver, shard by shard: one registry lock per shard
    /// touched, the receivers woken once it is let go. `retain`: the PUBLISH had RETAIN set.
    fn deliver_matched(
        &self,
        message: &Arc<Message>,
        retain: bool,
        now: u64,
        scratch: &mut RouteScratch,
    ) {
        let mut targets = std::mem::take(&mut scratch.targets);
        targets.sort_unstable_by_key(|(shard, _, _, _)| *shard);
        // Encoded at the first QoS 0 receiver, then shared by all of them; a single QoS 0
        // receiver encodes it into its own send buffer instead (no frame allocated and
        // copied for one reader: 1 KiB frames are past the allocator's per-thread cache).
        let qos0 = |granted: QoS| message.qos.min(granted) == QoS::AtMostOnce;
        let shared = targets
            .iter()
            .filter(|(_, _, g, _)| qos0(*g))
            .nth(1)
            .is_some();
        let mut frame: Option<Arc<SharedFrames>> = None;
        let mut delivered = 0;
        let mut closed = Vec::new();
        let mut rest = &targets[..];
        while let Some(&(shard, _, _, _)) = rest.first() {
            let run = rest.iter().take_while(|(s, _, _, _)| *s == shard).count();
            let (this, next) = rest.split_at(run);
            rest = next;
            let mut guard = self.registry.lock_shard(shard);
            for (_, client, granted, by_share) in this {
                let frame = (shared && qos0(*granted))
                    .then(|| frame.get_or_insert_with(Arc::default).clone());
                let delivery = Delivery {
                    message: message.clone(),
                    granted: *granted,
                    frame,
                    published_retained: retain,
                    shared: *by_share,
                    direct: false,
                    stored: scratch.ticket.unwrap_or(0),
                };
                match guard.offer(client, delivery, now) {
                    Offer::Sent(waker) => {
                        delivered += 1;
                        scratch.wakers.extend(waker);
                    }
                    Offer::Full(inbox, delivery) => {
                        let blocked = Blocked {
                            client: client.clone(),
                            inbox,
                            delivery,
                        };
                        scratch.keep_blocked(blocked, now, &self.metrics);
                    }
                    Offer::Closed(delivery) => closed.push((client.clone(), delivery)),
                    other => deliver::count_offer(&self.metrics, client, other),
                }
            }
            drop(guard);
            if !scratch.defer_wakes {
                scratch.wake();
            }
        }
        self.metrics
            .messages_delivered
            .fetch_add(delivered, Ordering::Relaxed);
        for (client, delivery) in closed {
            if let Some(blocked) =
                deliver::offer(&self.registry, &self.metrics, &client, delivery, now)
            {
                scratch.keep_blocked(blocked, now, &self.metrics);
            }
        }
        targets.clear();
        scratch.targets = targets;
    }

    fn durable_op(
        &self,
        client: &str,
        message: &Arc<Message>,
        granted: QoS,
        shared: bool,
    ) -> Option<Op> {
        if self.registry.is_persistent(client) {
            enqueue_op(client, message, granted, shared)
        } else {
            None
        }
    }

    fn durable(
        &self,
        client: &str,
        message: &Arc<Message>,
        granted: QoS,
        scratch: &mut RouteScratch,
    ) {
        if message.qos != QoS::AtMostOnce {
            if let Some(op) = self.durable_op(client, message, granted, false) {
                scratch.ops.push(op);
            }
        }
    }

    /// Submits `scratch.ops` (if any) and keeps the latest ticket.
    fn submit(&self, scratch: &mut RouteScratch) {
        if let Some(ticket) = self.persist.submit(&mut scratch.ops) {
            scratch.ticket = Some(ticket);
        }
    }

    /// Adds a subscription; `None` when the filter is invalid, deeper than the trie allows,
    /// or names a P2P address (a client never subscribes to another's P2P messages).
    pub(crate) fn subscribe(&self, client: &Arc<str>, filter: &str, qos: QoS) -> Option<QoS> {
        let parsed = SubscriptionFilter::parse(filter).ok()?;
        if !matches!(P2pAddress::parse(parsed.filter().as_str()), Ok(None)) {
            return None;
        }
        self.trie
            .write()
            .subscribe(&parsed, client.clone(), qos)
            .ok()?;
        Some(qos)
    }

    /// Removes a subscription (unknown filters are ignored, as MQTT requires).
    pub(crate) fn unsubscribe(&self, client: &Arc<str>, filter: &str) {
        if let Ok(parsed) = SubscriptionFilter::parse(filter) {
            self.trie.write().unsubscribe(&parsed, client);
        }
    }

    /// Removes every subscription of a session that ends with its connection.
    pub(crate) fn unsubscribe_all(&self, client: &Arc<str>, subscriptions: &[Subscription]) {
        if subscriptions.is_empty() {
            return;
        }
        let mut trie = self.trie.write();
        for subscription in subscriptions {
            if let Ok(parsed) = SubscriptionFilter::parse(&subscription.filter) {
                trie.unsubscribe(&parsed, client);
            }
        }
    }

    /// The retained messages a new subscription to `filter` receives at `now` (RETAIN set).
    /// One whose own Message Expiry Interval has passed is not among them: it is no longer
    /// retained, and leaves the index and the store.
    pub(crate) fn retained_for(&self, filter: &str, now: u64) -> Vec<Arc<Message>> {
        let mut found = Vec::new();
        let mut expired = Vec::new();
        if let Ok(parsed) = SubscriptionFilter::parse(filter) {
            self.retained
                .read()
                .matching(parsed.filter(), |_, message| {
                    // (No age limit: a retained message keeps only its own expiry.)
                    if message.is_expired(now, u64::MAX) {
                        expired.push(message.clone());
                    } else {
                        found.push(message.clone());
                    }
                });
        }
        if !expired.is_empty() {
            self.clear_expired(&expired);
        }
        found
    }

    /// Removes retained messages that expired (each only if it is still its topic's).
    fn clear_expired(&self, expired: &[Arc<Message>]) {
        let mut ops = Vec::new();
        let mut retained = self.retained.write();
        for message in expired {
            if retained
                .get(&message.topic)
                .is_some_and(|kept| Arc::ptr_eq(kept, message))
            {
                retained.remove(&message.topic);
                ops.push(Op::ClearRetained(message.topic.clone()));
            }
        }
        // Submitted under the index's lock: a newer retained message of the topic, set once
        // it is let go, reaches the store after this removal.
        let _ = self.persist.submit(&mut ops);
        drop(retained);
    }

    fn set_retained(&self, message: &Message, ops: &mut Vec<Op>) {
        let mut retained = self.retained.write();
        if message.payload.is_empty() {
            if retained.remove(&message.topic).is_some() {
                ops.push(Op::ClearRetained(message.topic.clone()));
            }
        } else {
            // Kept for as long as the topic's retained message: it owns its bytes rather than
            // pinning the buffer of the packet it came in.
            let kept = Arc::new(Message {
                retain: true,
                ..message.detached()
            });
            // A topic deeper than the index allows is simply not retained.
            if retained.set(&message.topic, kept.clone()).is_ok() {
                ops.push(Op::SetRetained(kept));
            }
        }
    }

    /// Every retained message not expired at `now`, except those of topics that begin with
    /// `$` (no filter matches them all): what a joining cluster node is sent.
    pub(crate) fn retained_all(&self, now: u64) -> Vec<Arc<Message>> {
        let mut found = Vec::new();
        if let Ok(filter) = mqgate_topic::TopicFilter::parse("#") {
            self.retained.read().matching(&filter, |_, message| {
                if !message.is_expired(now, u64::MAX) {
                    found.push(message.clone());
                }
            });
        }
        found
    }

    /// Takes in a retained message another node had (a snapshot for a joining node): it
    /// becomes its topic's retained message, in the index and the store, unless the topic
    /// has one published at the same time or later. `true` when taken.
    pub(crate) fn adopt_retained(&self, message: &Message) -> bool {
        if message.payload.is_empty() {
            return false;
        }
        let mut retained = self.retained.write();
        if retained
            .get(&message.topic)
            .is_some_and(|kept| kept.published_at_ms >= message.published_at_ms)
        {
            return false;
        }
        let kept = Arc::new(Message {
            retain: true,
            ..message.detached()
        });
        if retained.set(&message.topic, kept.clone()).is_err() {
            return false;
        }
        let mut ops = vec![Op::SetRetained(kept)];
        // Submitted under the index's lock, as a retained change routed here.
        let _ = self.persist.submit(&mut ops);
        drop(retained);
        true
    }

    /// Puts back a retained message read from the store at start-up.
    pub(crate) fn restore_retained(&self, message: Arc<Message>) {
        let topic = message.topic.clone();
        if self.retained.write().set(&topic, message).is_err() {
            tracing::warn!(%topic, "stored retained message not restored: topic too deep");
        }
    }
}

/// Takes the cloud SDK endpoint's queues out of `scratch`'s targets when `message` is one the
/// broker itself published (no origin: a cloud producer, the HTTP or embedding API, a
/// RocketMQ producer): those queues hold device messages only, so such a message takes no
/// place in them, in memory or in the store.
fn not_for_cloud_queues(message: &Message, scratch: &mut RouteScratch) {
    if message.origin.is_empty() {
        scratch
            .targets
            .retain(|(_, client, _, _)| !client.starts_with(AMQP_LINK_PREFIX));
    }
}

/// When `ops` (the store writes one route just made) queue `message` for persistent
/// sessions, a copy of it that owns its bytes takes its place in them, and is returned for
/// the route to deliver: a message that waits in a queue outliving the connection must not
/// keep alive the larger read buffer its topic and payload were sliced from. One copy per
/// message, made only when some persistent session receives it; a message for online clean
/// sessions alone is never copied.
fn detach_durable(message: &Arc<Message>, ops: &mut [Op]) -> Option<Arc<Message>> {
    let mut owned: Option<Arc<Message>> = None;
    for op in ops {
        if let Op::Enqueue { message: m, .. } = op {
            if Arc::ptr_eq(m, message) {
                *m = owned
                    .get_or_insert_with(|| Arc::new(message.detached()))
                    .clone();
            }
        }
    }
    owned
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mqgate_codec::ByteStr;
    use mqgate_session::MessageId;

    /// A message whose topic and payload are slices of one larger read buffer.
    fn sliced() -> Arc<Message> {
        let chunk = Bytes::from(vec![b'a'; 16 * 1024]);
        let topic = ByteStr::try_from(chunk.slice(..5)).expect("utf-8");
        Arc::new(Message::new(
            MessageId(1),
            topic,
            chunk.slice(5..105),
            QoS::AtLeastOnce,
            0,
        ))
    }

    fn within(outer: &Bytes, inner: &[u8]) -> bool {
        let range = outer.as_ptr_range();
        range.contains(&inner.as_ptr())
    }

    #[test]
    fn a_message_queued_for_a_persistent_session_owns_its_bytes() {
        let message = sliced();
        let mut ops = vec![
            Op::RemoveSession(ByteStr::from_static("other")),
            enqueue_op("a", &message, QoS::AtLeastOnce, false).expect("durable"),
            enqueue_op("b", &message, QoS::ExactlyOnce, true).expect("durable"),
        ];
        let owned = detach_durable(&message, &mut ops).expect("copied");
        assert_eq!(*owned, *message, "the same message");
        assert!(!within(&message.payload, &owned.payload));
        assert_ne!(
            owned.topic.as_bytes().as_ptr(),
            message.topic.as_bytes().as_ptr()
        );
        for op in &ops[1..] {
            let Op::Enqueue { message: m, .. } = op else {
                panic!("{op:?}")
            };
            assert!(Arc::ptr_eq(m, &owned), "one copy for every queue");
        }
    }

    #[test]
    fn a_message_for_no_persistent_session_is_not_copied() {
        let message = sliced();
        let mut ops = vec![Op::RemoveSession(ByteStr::from_static("other"))];
        assert!(detach_durable(&message, &mut ops).is_none());
    }
}
