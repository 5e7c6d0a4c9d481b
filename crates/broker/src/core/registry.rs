//! The client registry: client id -> where that client's messages go right now.
//!
//! A client is online (its connection task's inbox), offline with a persistent session kept
//! here, or in handover between two connections during a takeover. The map is sharded by
//! the client id's hash so that two publishers rarely contend, and no shard lock is held
//! across an `.await`: a lookup clones the inbox sender and lets the lock go.

use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;
use mqgate_codec::{v5, EncodeError, Packet, Publish, QoS};
use mqgate_session::{DeliveryOutcome, DropReason, Event, Message, Session, Subscription};
use mqgate_status::ChannelId;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::oneshot;

use super::inbox::{self, Kick};

use crate::config::TakeoverPolicy;

/// The client ids of the cloud SDK endpoint's queues (persistent sessions of the broker's
/// own, in the registry and the store) start with this; MQTT clients may not take such an
/// id (it is refused at CONNECT under either client id rule set). The store keeps their
/// queues under the endpoint's own bounds (`[amqp]`).
pub(crate) const AMQP_LINK_PREFIX: &str = "$amqp/";

const SHARDS: usize = 16;

/// A routed message on its way to one receiver, at the QoS its subscription granted.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) message: Arc<Message>,
    pub(crate) granted: QoS,
    /// The PUBLISH as a QoS 0 receiver gets it, encoded once per protocol by the first such
    /// receiver that is online and shared by the others; `None` when the delivery is not
    /// QoS 0, or when it is the message's only QoS 0 delivery (its receiver encodes it).
    pub(crate) frame: Option<Arc<SharedFrames>>,
    /// The PUBLISH was sent with RETAIN set: an MQTT 5 subscription with Retain As
    /// Published gets it with RETAIN set (the message itself has it clear, as every other
    /// receiver sees it).
    pub(crate) published_retained: bool,
    /// The delivery results from a shared subscription (the receiver was its group's pick),
    /// not from the receiver's plain ones: an MQTT 5 PUBLISH of it carries the shared
    /// subscriptions' Subscription Identifiers only (MQTT-3.3.4-5).
    pub(crate) shared: bool,
    /// A P2P message: addressed to the receiver by its topic, not matched by a subscription,
    /// so No Local does not apply to it (a client may send P2P messages to itself).
    pub(crate) direct: bool,
    /// The commit of the message's store writes (its enqueues for persistent receivers),
    /// 0 for none: a receiver that hands it on before its own save commits waits for this.
    pub(crate) stored: crate::core::persist::Ticket,
}

impl Delivery {
    /// Whether it travels at QoS 0 (the lower of the message's and the subscription's QoS).
    pub(crate) fn is_qos0(&self) -> bool {
        self.message.qos.min(self.granted) == QoS::AtMostOnce
    }

    /// Hands it to its session as the copy it is: a shared subscription's or a plain one.
    pub(crate) fn hand_to(self, session: &mut Session, now: u64) -> DeliveryOutcome {
        if self.shared {
            session.handle_shared_delivery(self.message, self.granted, now)
        } else {
            session.handle_delivery(self.message, self.granted, now)
        }
    }
}

/// One message's QoS 0 PUBLISH (no packet id, DUP and RETAIN clear), as MQTT 3.1.1 and as
/// MQTT 5 with the message's own properties: identical for every receiver of that protocol
/// that gets it at QoS 0 with nothing of its own added (an MQTT 5 receiver: no subscription
/// identifier, topic alias or remaining expiry). Each is encoded by the first receiver that
/// asks for it, on that receiver's task, and shared by the rest.
#[derive(Debug, Default)]
pub(crate) struct SharedFrames {
    v3: OnceLock<Option<Bytes>>,
    v5: OnceLock<Option<Bytes>>,
}

impl SharedFrames {
    /// The MQTT 3.1.1 frame of `message`; `None` if it cannot be encoded (the receiver's
    /// session then encodes it, and fails, on its own).
    pub(crate) fn v3(&self, message: &Message) -> Option<Bytes> {
        self.v3
            .get_or_init(|| {
                let publish = Packet::Publish(Publish::at_most_once(
                    message.topic.clone(),
                    message.payload.clone(),
                ));
                encoded(|buf| publish.encode(buf), publish.encoded_len().ok()?)
            })
            .clone()
    }

    /// The MQTT 5 frame of `message`, with its forwarded properties as they were received
    /// and no expiry (a message with an expiry is written per receiver, with the seconds it
    /// has left); `None` if it cannot be encoded.
    pub(crate) fn v5(&self, message: &Message) -> Option<Bytes> {
        self.v5
            .get_or_init(|| {
                let mut publish = v5::Publish::new(
                    QoS::AtMostOnce,
                    None,
                    message.topic.clone(),
                    message.payload.clone(),
                );
                publish.properties.forward = message.properties.clone();
                let packet = v5::Packet::Publish(publish);
                encoded(|buf| packet.encode(buf), packet.encoded_len().ok()?)
            })
            .clone()
    }
}

/// What `encode` writes into a buffer of `len` bytes, frozen.
fn encoded(
    encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    len: usize,
) -> Option<Bytes> {
    let mut buf = BytesMut::with_capacity(len);
    encode(&mut buf).ok()?;
    Some(buf.freeze())
}

/// The session handed from a closing connection to its successor.
pub(crate) type Handoff = oneshot::Sender<Option<Box<Session>>>;

/// What the registry knows of one connected client.
#[derive(Debug)]
pub(crate) struct OnlineLink {
    pub(crate) channel: ChannelId,
    /// Also how the connection is told to close ([`inbox::Sender::kick`]): a newer one takes
    /// its client id over, the API closes it, or its token went bad.
    pub(crate) inbox: inbox::Sender<Delivery>,
    /// Whether [`kick`](Registry::kick) applies (a client connection; a backend consumer is
    /// never kicked).
    pub(crate) kickable: bool,
    /// cleanSession = 0: what is routed to it at QoS 1 or 2 is written to the store.
    pub(crate) persistent: bool,
    /// What an operator sees of the connection; `None` for a backend consumer.
    pub(crate) card: Option<Arc<ClientCard>>,
}

/// What the operator's console shows of one connection: fixed at CONNECT, but for the
/// subscriptions, which the connection's task updates after each SUBSCRIBE and UNSUBSCRIBE.
#[derive(Debug)]
pub(crate) struct ClientCard {
    /// The client's address, `ip:port`.
    pub(crate) address: String,
    /// How it logged in: `Signature`, `Token`, `DeviceCredential`, `anonymous` or `other`.
    pub(crate) login: &'static str,
    /// The keep-alive of its CONNECT, in seconds (0: none).
    pub(crate) keep_alive_s: u16,
    /// When it connected, ms since the Unix epoch.
    pub(crate) connected_at_ms: u64,
    subscriptions: Mutex<Vec<(String, u8)>>,
}

impl ClientCard {
    /// A card for a connection from `address` that sent `username` and `keep_alive_s`.
    pub(crate) fn new(
        address: String,
        username: Option<&str>,
        keep_alive_s: u16,
        connected_at_ms: u64,
    ) -> Self {
        let login = match username.map(|name| name.split('|').next().unwrap_or_default()) {
            None => "anonymous",
            Some("Signature") => "Signature",
            Some("Token") => "Token",
            Some("DeviceCredential") => "DeviceCredential",
            Some(_) => "other",
        };
        ClientCard {
            address,
            login,
            keep_alive_s,
            connected_at_ms,
            subscriptions: Mutex::new(Vec::new()),
        }
    }

    /// Records the session's subscriptions as they are now.
    pub(crate) fn set_subscriptions(&self, subscriptions: &[Subscription]) {
        *self.subscriptions.lock() = subscription_list(subscriptions);
    }

    /// The subscriptions last recorded: (filter, granted QoS).
    pub(crate) fn subscriptions(&self) -> Vec<(String, u8)> {
        self.subscriptions.lock().clone()
    }
}

fn subscription_list(subscriptions: &[Subscription]) -> Vec<(String, u8)> {
    subscriptions
        .iter()
        .map(|s| (s.filter.to_string(), s.qos as u8))
        .collect()
}

/// One client as [`Registry::clients`] lists it.
#[derive(Debug, Clone)]
pub(crate) struct ClientView {
    pub(crate) client_id: Arc<str>,
    /// A connection is open (or taking the id over).
    pub(crate) online: bool,
    /// A persistent session (cleanSession = 0).
    pub(crate) persistent: bool,
    /// The connection's channel id, while online.
    pub(crate) channel: Option<ChannelId>,
    /// The connection's card, while online (a backend consumer has none).
    pub(crate) card: Option<Arc<ClientCard>>,
    /// Messages waiting: in the connection's inbox while online, in the session's queue
    /// while offline.
    pub(crate) queued: usize,
    /// An offline session's subscriptions (an online one's are on its card).
    pub(crate) subscriptions: Vec<(String, u8)>,
}

#[derive(Debug)]
enum Slot {
    Online(OnlineLink),
    /// A persistent session whose client is away; deliveries are queued in it.
    Offline(Box<Session>),
    /// The old connection was kicked and has not handed its session over yet. Deliveries
    /// wait in `pending` (bounded) and are replayed by the new connection.
    /// Boxed: rare, and it would make every entry of the map larger.
    Handover(Box<Handover>),
}

#[derive(Debug)]
struct Handover {
    next: OnlineLink,
    handoff: Option<Handoff>,
    pending: Vec<Delivery>,
}

impl Slot {
    /// The connection this slot stands for, if one is open (or taking over).
    fn link_mut(&mut self) -> Option<&mut OnlineLink> {
        match self {
            Slot::Online(link) => Some(link),
            Slot::Handover(handover) => Some(&mut handover.next),
            Slot::Offline(_) => None,
        }
    }

    fn link(&self) -> Option<&OnlineLink> {
        match self {
            Slot::Online(link) => Some(link),
            Slot::Handover(handover) => Some(&handover.next),
            Slot::Offline(_) => None,
        }
    }
}

/// The outcome of [`Registry::attach`].
#[derive(Debug)]
pub(crate) enum Attach {
    /// No state was stored for this client id.
    Fresh,
    /// A persistent session was stored; it is the new connection's now.
    Resumed(Box<Session>),
    /// Another connection holds the id and was kicked: await its session, then call
    /// [`Registry::complete_handover`].
    Wait(oneshot::Receiver<Option<Box<Session>>>),
    /// Another connection holds the id and the policy keeps it.
    Refused,
}

/// What happened to one delivery offered to a client (see [`ShardGuard::offer`]).
#[derive(Debug)]
pub(crate) enum Offer {
    /// In the client's inbox. The waker, when the receiver was waiting, is to be woken once
    /// the shard lock is let go.
    Sent(Option<Waker>),
    /// The client is online but its inbox is full: wait for room in it, then send.
    Full(inbox::Sender<Delivery>, Delivery),
    /// The client's connection is closing (its session is on its way into the registry):
    /// offer again.
    Closed(Delivery),
    /// Handled here (offline session or handover buffer); what the session dropped to make
    /// room (or for age) in the second field.
    Done(DeliveryOutcome, Drops),
    /// No session exists for the client id.
    Unknown,
}

type Shard = HashMap<Arc<str>, Slot>;

/// One shard of the registry, locked: deliveries to several of its clients under one lock.
pub(crate) struct ShardGuard<'a> {
    map: MutexGuard<'a, Shard>,
    pending_limit: usize,
}

impl ShardGuard<'_> {
    /// Offers one delivery to `client_id` (which must belong to this shard): into its inbox
    /// if it is online and there is room, into its offline session, or into the handover
    /// buffer. Never waits.
    pub(crate) fn offer(&mut self, client_id: &str, delivery: Delivery, now: u64) -> Offer {
        match self.map.get_mut(client_id) {
            None => Offer::Unknown,
            Some(Slot::Online(link)) => match link.inbox.try_send_deferred(delivery) {
                Ok(waker) => Offer::Sent(waker),
                Err(inbox::TrySendError::Full(back)) => Offer::Full(link.inbox.clone(), back),
                Err(inbox::TrySendError::Closed(back)) => Offer::Closed(back),
            },
            Some(Slot::Offline(session)) => {
                let outcome = delivery.hand_to(session, now);
                Offer::Done(outcome, drain_drops(session))
            }
            Some(Slot::Handover(handover)) => {
                let pending = &mut handover.pending;
                let qos = delivery.message.qos.min(delivery.granted);
                if qos == QoS::AtMostOnce {
                    Offer::Done(
                        DeliveryOutcome::Dropped(DropReason::Offline),
                        Drops::default(),
                    )
                } else if pending.len() >= self.pending_limit {
                    Offer::Done(DeliveryOutcome::Refused, Drops::default())
                } else {
                    pending.push(delivery);
                    Offer::Done(DeliveryOutcome::Queued, Drops::default())
                }
            }
        }
    }
}

/// Client id -> slot, in shards.
#[derive(Debug)]
pub(crate) struct Registry {
    shards: [Mutex<Shard>; SHARDS],
    hasher: hashbrown::DefaultHashBuilder,
    /// Most deliveries buffered per client during a handover.
    pending_limit: usize,
    /// The earliest timer of the connections in it: the broker's timer loop sweeps only once it is due,
    /// and every connection sets its timer with it.
    pub(crate) timers: inbox::Timers,
}

impl Registry {
    pub(crate) fn new(pending_limit: usize) -> Self {
        Registry {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            hasher: hashbrown::DefaultHashBuilder::default(),
            pending_limit,
            timers: inbox::Timers::default(),
        }
    }

    fn shard(&self, client_id: &str) -> &Mutex<Shard> {
        &self.shards[self.shard_index(client_id)]
    }

    /// Makes `link` the client's connection, according to `policy` if one is open already.
    pub(crate) fn attach(
        &self,
        client_id: &Arc<str>,
        link: OnlineLink,
        policy: TakeoverPolicy,
    ) -> Attach {
        let mut shard = self.shard(client_id).lock();
        match shard.remove(client_id) {
            None => {
                shard.insert(client_id.clone(), Slot::Online(link));
                Attach::Fresh
            }
            Some(Slot::Offline(session)) => {
                shard.insert(client_id.clone(), Slot::Online(link));
                Attach::Resumed(session)
            }
            Some(Slot::Online(old)) if policy == TakeoverPolicy::KickOld => {
                let (handoff, wait) = oneshot::channel();
                if old.kickable {
                    // `false` means the old task is already ending; it hands off all the same.
                    let _ = old.inbox.kick(Kick::Takeover);
                }
                shard.insert(
                    client_id.clone(),
                    Slot::Handover(Box::new(Handover {
                        next: link,
                        handoff: Some(handoff),
                        pending: Vec::new(),
                    })),
                );
                Attach::Wait(wait)
            }
            Some(other) => {
                // Refused by policy, or a handover already running: keep what is there.
                shard.insert(client_id.clone(), other);
                Attach::Refused
            }
        }
    }

    /// Ends a handover: the new connection is online; returns the deliveries buffered meanwhile.
    pub(crate) fn complete_handover(
        &self,
        client_id: &Arc<str>,
        channel: ChannelId,
    ) -> Vec<Delivery> {
        let mut shard = self.shard(client_id).lock();
        let Some(slot) = shard.get_mut(client_id) else {
            return Vec::new();
        };
        match slot {
            Slot::Handover(handover) if handover.next.channel == channel => {}
            _ => return Vec::new(),
        }
        let Some(Slot::Handover(handover)) = shard.remove(client_id) else {
            return Vec::new();
        };
        let Handover { next, pending, .. } = *handover;
        shard.insert(client_id.clone(), Slot::Online(next));
        pending
    }

    /// The connection on `channel` ended. Its session (if it must outlive the connection, or a
    /// successor waits for it) goes to the slot or to the successor; `drain` runs under the
    /// lock first (it closes the inbox there), so deliveries still in the inbox land in the
    /// session and none can find the inbox closed while the connection is still registered.
    pub(crate) fn detach(
        &self,
        client_id: &Arc<str>,
        channel: ChannelId,
        mut session: Box<Session>,
        drain: impl FnOnce(&mut Session),
    ) {
        let mut shard = self.shard(client_id).lock();
        drain(&mut session);
        match shard.get_mut(client_id) {
            Some(Slot::Online(link)) if link.channel == channel => {
                if session.is_persistent() {
                    shard.insert(client_id.clone(), Slot::Offline(session));
                } else {
                    shard.remove(client_id);
                }
            }
            Some(Slot::Handover(handover)) => {
                if let Some(handoff) = handover.handoff.take() {
                    let _ = handoff.send(Some(session));
                }
            }
            // Someone else owns the id now (a handover that timed out): nothing to hand back.
            _ => {}
        }
    }

    /// The shard `client_id` lives in (for [`lock_shard`](Self::lock_shard)).
    pub(crate) fn shard_index(&self, client_id: &str) -> usize {
        // The remainder is below SHARDS, the array's length: the index is always in range.
        (self.hasher.hash_one(client_id) % SHARDS as u64) as usize
    }

    /// Locks shard `index` (as [`shard_index`](Self::shard_index) gave it; taken modulo the
    /// number of shards).
    pub(crate) fn lock_shard(&self, index: usize) -> ShardGuard<'_> {
        ShardGuard {
            map: self.shards[index % SHARDS].lock(),
            pending_limit: self.pending_limit,
        }
    }

    /// Offers one delivery to `client_id` (see [`ShardGuard::offer`]); the caller wakes the
    /// receiver if [`Offer::Sent`] carries its waker.
    pub(crate) fn deliver_to(&self, client_id: &str, delivery: Delivery, now: u64) -> Offer {
        self.lock_shard(self.shard_index(client_id))
            .offer(client_id, delivery, now)
    }

    /// Puts a restored persistent session in place, offline (start-up, before any connection).
    pub(crate) fn insert_offline(&self, client_id: Arc<str>, session: Box<Session>) {
        self.shard(&client_id)
            .lock()
            .insert(client_id, Slot::Offline(session));
    }

    /// Whether `client_id` has a persistent session (online, offline or being taken over).
    pub(crate) fn is_persistent(&self, client_id: &str) -> bool {
        match self.shard(client_id).lock().get(client_id) {
            Some(Slot::Offline(_)) => true,
            Some(slot) => slot.link().is_some_and(|link| link.persistent),
            None => false,
        }
    }

    /// Removes and returns the offline sessions whose MQTT 5 Session Expiry Interval has
    /// passed at `now` (see [`Session::is_expired_at`]); a session online or being taken
    /// over is never among them.
    pub(crate) fn take_expired(&self, now: u64) -> Vec<Session> {
        let mut expired = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock();
            let ids: Vec<Arc<str>> = shard
                .iter()
                .filter(|(_, slot)| {
                    matches!(slot, Slot::Offline(session) if session.is_expired_at(now))
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in ids {
                if let Some(Slot::Offline(session)) = shard.remove(&id) {
                    expired.push(*session);
                }
            }
        }
        expired
    }

    /// Forgets `client_id` whatever its state (a backend consumer going away).
    pub(crate) fn remove(&self, client_id: &str) {
        self.shard(client_id).lock().remove(client_id);
    }

    /// Whether a connection is open for `client_id` (or being taken over by a new one).
    pub(crate) fn is_online(&self, client_id: &str) -> bool {
        matches!(
            self.shard(client_id).lock().get(client_id),
            Some(Slot::Online(_) | Slot::Handover(_))
        )
    }

    /// Tells `client_id`'s connection (only the one on `channel`, if given) to close. `true`
    /// when a connection was told; `false` when none is online or it is already closing.
    pub(crate) fn kick(&self, client_id: &str, channel: Option<ChannelId>, why: Kick) -> bool {
        let mut shard = self.shard(client_id).lock();
        let Some(link) = shard.get_mut(client_id).and_then(Slot::link_mut) else {
            return false;
        };
        if channel.is_some_and(|channel| channel != link.channel) {
            return false;
        }
        link.kickable && link.inbox.kick(why)
    }

    /// Wakes every connection whose timer ([`inbox::Receiver::set_timer`]) is due at `now`
    /// (ms since the Unix epoch), and leaves in [`timers`](Self::timers) the earliest of the
    /// others. Wakers are woken after each shard's lock is let go.
    pub(crate) fn wake_due(&self, now: u64) {
        self.timers.begin_sweep();
        let mut pending = u64::MAX;
        let mut due: Vec<Waker> = Vec::new();
        for shard in &self.shards {
            for slot in shard.lock().values() {
                let Some(link) = slot.link() else { continue };
                match link.inbox.due_waker(now) {
                    Ok(waker) => due.extend(waker),
                    Err(at) => pending = pending.min(at),
                }
            }
            due.drain(..).for_each(Waker::wake);
        }
        self.timers.end_sweep(pending);
    }

    /// Tells every connection to close (the broker shuts down).
    pub(crate) fn kick_all(&self, why: Kick) {
        for shard in &self.shards {
            for slot in shard.lock().values_mut() {
                if let Some(link) = slot.link_mut().filter(|link| link.kickable) {
                    let _ = link.inbox.kick(why);
                }
            }
        }
    }

    /// Whether `client_id` is online on exactly `channel`.
    pub(crate) fn holds(&self, client_id: &str, channel: ChannelId) -> bool {
        self.shard(client_id)
            .lock()
            .get(client_id)
            .and_then(Slot::link)
            .is_some_and(|link| link.channel == channel)
    }

    /// Number of clients online.
    pub(crate) fn online_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .values()
                    .filter(|slot| !matches!(slot, Slot::Offline(_)))
                    .count()
            })
            .sum()
    }

    /// Up to `limit` clients whose id `wanted` accepts (backend consumers left out), sorted
    /// by client id, and how many matched in all. Locks one shard at a time.
    pub(crate) fn clients(
        &self,
        wanted: impl Fn(&str) -> bool,
        limit: usize,
    ) -> (Vec<ClientView>, usize) {
        let mut found = Vec::new();
        for shard in &self.shards {
            for (client_id, slot) in shard.lock().iter() {
                if !wanted(client_id) {
                    continue;
                }
                let view = match slot {
                    Slot::Offline(session) => ClientView {
                        client_id: client_id.clone(),
                        online: false,
                        persistent: true,
                        channel: None,
                        card: None,
                        queued: session.queued_len(),
                        subscriptions: subscription_list(session.subscriptions()),
                    },
                    Slot::Online(_) | Slot::Handover(_) => {
                        let Some(link) = slot.link().filter(|link| link.card.is_some()) else {
                            continue;
                        };
                        ClientView {
                            client_id: client_id.clone(),
                            online: true,
                            persistent: link.persistent,
                            channel: Some(link.channel),
                            card: link.card.clone(),
                            queued: link.inbox.len(),
                            subscriptions: Vec::new(),
                        }
                    }
                };
                found.push(view);
            }
        }
        let total = found.len();
        found.sort_unstable_by(|a, b| a.client_id.cmp(&b.client_id));
        found.truncate(limit);
        (found, total)
    }

    /// The queues of the offline persistent sessions: what they hold in all and in memory.
    /// Locks one shard at a time.
    pub(crate) fn offline_queues(&self) -> OfflineQueues {
        let mut total = OfflineQueues::default();
        for shard in &self.shards {
            for slot in shard.lock().values() {
                if let Slot::Offline(session) = slot {
                    let (held, bytes) = session.queued_in_memory();
                    total.sessions += 1;
                    total.queued += session.queued_len() as u64;
                    total.in_memory += held as u64;
                    total.in_memory_bytes += bytes as u64;
                    total.most_in_memory = total.most_in_memory.max(held);
                }
            }
        }
        total
    }

    /// Messages waiting over every client: in the inboxes of those online and the queues of
    /// the offline persistent sessions. Locks one shard at a time.
    pub(crate) fn queued_total(&self) -> u64 {
        let mut total = 0u64;
        for shard in &self.shards {
            for slot in shard.lock().values() {
                total += match slot {
                    Slot::Offline(session) => session.queued_len() as u64,
                    other => other.link().map_or(0, |link| link.inbox.len() as u64),
                };
            }
        }
        total
    }
}

/// What the offline sessions' queues hold, in all and in memory (see
/// `BrokerHandle::offline_queues`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OfflineQueues {
    /// Offline persistent sessions.
    pub sessions: usize,
    /// Messages queued for them, in memory or only in the store.
    pub queued: u64,
    /// Of those, the messages held in memory.
    pub in_memory: u64,
    /// Bytes (topic + payload) of the messages held in memory.
    pub in_memory_bytes: u64,
    /// The most messages one offline session holds in memory.
    pub most_in_memory: usize,
}

/// Messages a session dropped, counted by why.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Drops {
    /// All of them.
    pub(crate) total: u64,
    /// Evicted from a full queue.
    pub(crate) queue_full: u64,
    /// Too old.
    pub(crate) expired: u64,
}

impl Drops {
    /// Counts one drop.
    pub(crate) fn add(&mut self, reason: DropReason) {
        self.total += 1;
        match reason {
            DropReason::QueueFull => self.queue_full += 1,
            DropReason::Expired => self.expired += 1,
            _ => {}
        }
    }
}

/// Drains an offline session's events; returns what it dropped. A PUBLISH its connection
/// read but never routed (it closed first) was not accepted: its QoS 2 packet id is
/// released, so the client's resend is routed then instead of waiting forever.
pub(crate) fn drain_drops(session: &mut Session) -> Drops {
    let mut dropped = Drops::default();
    while let Some(event) = session.poll_event() {
        match event {
            Event::Dropped { reason, .. } | Event::DroppedUnread { reason } => dropped.add(reason),
            Event::Publish {
                token: Some(token), ..
            } => session.inbound_failed(token),
            _ => {}
        }
    }
    dropped
}
