//! The client registry: client id -> where that client's messages go right now.
//!
//! A client is online (its connection task's inbox), offline with a persistent session kept
//! here, or in handover between two connections during a takeover. The map is sharded by
//! the client id's hash so that two publishers rarely contend, and no shard lock is held
//! across an `.await`: a lookup clones the inbox sender and lets the lock go.

use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashMap;
use mqgate_codec::QoS;
use mqgate_session::{DeliveryOutcome, DropReason, Event, Message, Session};
use mqgate_status::ChannelId;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::inbox as mpsc;

use crate::config::TakeoverPolicy;

const SHARDS: usize = 16;

/// A routed message on its way to one receiver, at the QoS its subscription granted.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) message: Arc<Message>,
    pub(crate) granted: QoS,
    /// The PUBLISH as a QoS 0 receiver gets it (no packet id, DUP and RETAIN clear), encoded
    /// once by the router and shared by every such receiver that is online; `None` when the
    /// delivery is not QoS 0.
    pub(crate) frame: Option<Arc<Bytes>>,
}

impl Delivery {
    /// Whether it travels at QoS 0 (the lower of the message's and the subscription's QoS).
    pub(crate) fn is_qos0(&self) -> bool {
        self.message.qos.min(self.granted) == QoS::AtMostOnce
    }
}

/// The session handed from a closing connection to its successor.
pub(crate) type Handoff = oneshot::Sender<Option<Box<Session>>>;

/// What the registry knows of one connected client.
#[derive(Debug)]
pub(crate) struct OnlineLink {
    pub(crate) channel: ChannelId,
    pub(crate) inbox: mpsc::Sender<Delivery>,
    /// Fired to close this connection: a newer one takes its client id over, the API closes
    /// it, or its token went bad.
    pub(crate) kick: Option<oneshot::Sender<Kick>>,
    /// cleanSession = 0: what is routed to it at QoS 1 or 2 is written to the store.
    pub(crate) persistent: bool,
}

/// Why a connection is told to close from outside its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kick {
    /// A newer connection took the client id over.
    Takeover,
    /// The HTTP API's `CloseConnection` (or the embedding API) asked for it.
    Closed,
    /// Its login token expired or was revoked (`auth.disconnect_on_token_invalid`).
    TokenInvalid,
}

#[derive(Debug)]
enum Slot {
    Online(OnlineLink),
    /// A persistent session whose client is away; deliveries are queued in it.
    Offline(Box<Session>),
    /// The old connection was kicked and has not handed its session over yet. Deliveries
    /// wait in `pending` (bounded) and are replayed by the new connection.
    Handover {
        next: OnlineLink,
        handoff: Option<Handoff>,
        pending: Vec<Delivery>,
    },
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

/// Where one delivery went.
#[derive(Debug)]
pub(crate) enum Target {
    /// The client is online: send the delivery (given back) into this inbox.
    Inbox(mpsc::Sender<Delivery>, Delivery),
    /// Handled here (offline session or handover buffer); dropped messages counted in the
    /// second field.
    Done(DeliveryOutcome, u64),
    /// No session exists for the client id.
    Unknown,
}

/// Client id -> slot, in shards.
#[derive(Debug)]
pub(crate) struct Registry {
    shards: [Mutex<HashMap<Arc<str>, Slot>>; SHARDS],
    hasher: hashbrown::DefaultHashBuilder,
    /// Most deliveries buffered per client during a handover.
    pending_limit: usize,
}

impl Registry {
    pub(crate) fn new(pending_limit: usize) -> Self {
        Registry {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            hasher: hashbrown::DefaultHashBuilder::default(),
            pending_limit,
        }
    }

    fn shard(&self, client_id: &str) -> &Mutex<HashMap<Arc<str>, Slot>> {
        // The remainder is below SHARDS, the array's length: the index is always in range.
        let index = (self.hasher.hash_one(client_id) % SHARDS as u64) as usize;
        &self.shards[index]
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
                if let Some(kick) = old.kick {
                    // An error means the old task is already ending; it hands off all the same.
                    let _ = kick.send(Kick::Takeover);
                }
                shard.insert(
                    client_id.clone(),
                    Slot::Handover {
                        next: link,
                        handoff: Some(handoff),
                        pending: Vec::new(),
                    },
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
            Slot::Handover { next, .. } if next.channel == channel => {}
            _ => return Vec::new(),
        }
        let Some(Slot::Handover { next, pending, .. }) = shard.remove(client_id) else {
            return Vec::new();
        };
        shard.insert(client_id.clone(), Slot::Online(next));
        pending
    }

    /// The connection on `channel` ended. Its session (if it must outlive the connection, or a
    /// successor waits for it) goes to the slot or to the successor; `drain` runs under the
    /// lock first, so deliveries still in the inbox land in the session.
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
            Some(Slot::Handover { handoff, .. }) => {
                if let Some(handoff) = handoff.take() {
                    let _ = handoff.send(Some(session));
                }
            }
            // Someone else owns the id now (a handover that timed out): nothing to hand back.
            _ => {}
        }
    }

    /// Routes one delivery to `client_id`'s current place.
    pub(crate) fn deliver_to(&self, client_id: &str, delivery: Delivery, now: u64) -> Target {
        let mut shard = self.shard(client_id).lock();
        match shard.get_mut(client_id) {
            None => Target::Unknown,
            Some(Slot::Online(link)) => Target::Inbox(link.inbox.clone(), delivery),
            Some(Slot::Offline(session)) => {
                let outcome = session.handle_delivery(delivery.message, delivery.granted, now);
                Target::Done(outcome, drain_drops(session))
            }
            Some(Slot::Handover { pending, .. }) => {
                let qos = delivery.message.qos.min(delivery.granted);
                if qos == QoS::AtMostOnce {
                    Target::Done(DeliveryOutcome::Dropped(DropReason::Offline), 0)
                } else if pending.len() >= self.pending_limit {
                    Target::Done(DeliveryOutcome::Refused, 0)
                } else {
                    pending.push(delivery);
                    Target::Done(DeliveryOutcome::Queued, 0)
                }
            }
        }
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
            Some(Slot::Online(link) | Slot::Handover { next: link, .. }) => link.persistent,
            Some(Slot::Offline(_)) => true,
            None => false,
        }
    }

    /// Forgets `client_id` whatever its state (a backend consumer going away).
    pub(crate) fn remove(&self, client_id: &str) {
        self.shard(client_id).lock().remove(client_id);
    }

    /// Whether a connection is open for `client_id` (or being taken over by a new one).
    pub(crate) fn is_online(&self, client_id: &str) -> bool {
        matches!(
            self.shard(client_id).lock().get(client_id),
            Some(Slot::Online(_) | Slot::Handover { .. })
        )
    }

    /// Tells `client_id`'s connection (only the one on `channel`, if given) to close. `true`
    /// when a connection was told; `false` when none is online or it is already closing.
    pub(crate) fn kick(&self, client_id: &str, channel: Option<ChannelId>, why: Kick) -> bool {
        let mut shard = self.shard(client_id).lock();
        let link = match shard.get_mut(client_id) {
            Some(Slot::Online(link) | Slot::Handover { next: link, .. }) => link,
            _ => return false,
        };
        if channel.is_some_and(|channel| channel != link.channel) {
            return false;
        }
        link.kick.take().is_some_and(|kick| kick.send(why).is_ok())
    }

    /// Whether `client_id` is online on exactly `channel`.
    pub(crate) fn holds(&self, client_id: &str, channel: ChannelId) -> bool {
        matches!(
            self.shard(client_id).lock().get(client_id),
            Some(Slot::Online(link) | Slot::Handover { next: link, .. }) if link.channel == channel
        )
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
}

/// Drains an offline session's events; returns how many messages it dropped. A PUBLISH its
/// connection read but never routed (it closed first) was not accepted: its QoS 2 packet id
/// is released, so the client's resend is routed then instead of waiting forever.
pub(crate) fn drain_drops(session: &mut Session) -> u64 {
    let mut dropped = 0;
    while let Some(event) = session.poll_event() {
        match event {
            Event::Dropped { .. } => dropped += 1,
            Event::Publish {
                token: Some(token), ..
            } => session.inbound_failed(token),
            _ => {}
        }
    }
    dropped
}
