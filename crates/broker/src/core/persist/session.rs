//! What connection tasks write: the enqueues of durable deliveries, a persistent session's
//! record whenever it changed, and the acknowledgements that wait for a commit.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use mqgate_codec::{ByteStr, QoS};
use mqgate_session::{
    InFlightRef, InFlightStage, InboundToken, Message, MessageId, Session, SessionRecord,
};
use mqgate_store::Op;
use tokio::sync::oneshot;

use super::{Persist, StoreFailed, Ticket};

/// The `Enqueue` of one routed message for one receiver, if it must be durable: a QoS 1 or 2
/// delivery to a persistent session. `shared`: the copy a shared subscription picked it for.
pub(crate) fn enqueue_op(
    client: &str,
    message: &Arc<Message>,
    granted: QoS,
    shared: bool,
) -> Option<Op> {
    let qos = message.qos.min(granted);
    if qos == QoS::AtMostOnce {
        return None;
    }
    let client_id = ByteStr::try_from(client).ok()?;
    Some(Op::Enqueue {
        client_id,
        message: message.clone(),
        qos,
        shared,
    })
}

/// Makes the retained messages a new subscription of a persistent session receives as
/// durable as routed ones: enqueued in the store (and committed) before the session takes
/// them, so one that waits in the session's queue survives a crash too.
///
/// # Errors
/// The store refused the write.
pub(crate) async fn enqueue_retained(
    persist: &Persist,
    session: &Session,
    retained: &[(Arc<Message>, QoS)],
) -> Result<(), StoreFailed> {
    if !session.is_persistent() {
        return Ok(());
    }
    let client = session.client_id();
    let mut ops: Vec<Op> = retained
        .iter()
        .filter_map(|(message, granted)| enqueue_op(client, message, *granted, false))
        .collect();
    committed(persist, persist.submit(&mut ops)).await
}

/// What a persistent session last saved, to save again only what changed.
///
/// The record's `awaiting_pubrel` includes the inbound QoS 2 ids whose PUBLISH events the
/// connection took from the session, even before their message is safe: the connection
/// saves the record in the same submission as the message's enqueues (see
/// `Online::process_events`), so a stored id never stands for a message that was not kept.
/// That state lives in the session, not here, so it moves with the session when the client
/// reconnects: the new connection's first save cannot drop an id still being routed.
///
/// **QoS 1 messages in flight stay in the stored queue.** A QoS 1 message the session sends
/// after this connection's first save is neither taken out of the stored queue nor written
/// into the stored record: it leaves the queue (a `Dequeue`, which nobody waits for) once it
/// is no longer in flight, acknowledged or dropped. Sending it needs no write at all, and its
/// acknowledgement one small one. After a crash it is still queued and is delivered again,
/// as QoS 1 allows (at least once). What does need a durable record before the client hears
/// of it still gets one: QoS 2 messages in flight (their packet ids and stages: exactly
/// once), the entries the first save found in flight (they were taken out of the queue
/// before, or were carried over from an earlier connection), subscriptions and the rest.
#[derive(Debug, Default)]
pub(crate) struct Saved {
    record: Option<Box<SessionRecord>>,
    /// The QoS 1 messages in flight that are still in the stored queue (by message and
    /// copy), in the order they were sent.
    in_queue: Vec<(MessageId, bool)>,
    /// The latest commit of the enqueues of the deliveries the session took since the last
    /// [`submit`](Self::submit) (0: none): a message reaches the client only once it is
    /// stored, even when sending it writes nothing.
    stored: Ticket,
    /// What the store was last told is in flight (`None`: nothing yet, by this connection).
    reported: Option<(u64, u64)>,
    /// Every message in flight is recorded, QoS 1 too (see
    /// [`recording_every_message`](Self::recording_every_message)).
    record_all: bool,
}

impl Saved {
    /// A `Saved` that records every message in flight before the client hears of it, QoS 1
    /// too, as a record-backed window: for a session whose resends must be told apart after
    /// a restart (a cloud SDK queue marks them `redelivered`).
    pub(crate) fn recording_every_message() -> Self {
        Saved {
            record_all: true,
            ..Saved::default()
        }
    }

    /// Pushes the ops that save `session` if its persistent state changed since the last
    /// save. Entries newly in flight that the record keeps leave the stored queue in the same
    /// transaction, so a restore never has a message both queued and in flight. Returns
    /// whether the client must wait for these ops' commit before it hears of the change
    /// (`false` when they only take acknowledged QoS 1 messages out of the queue).
    pub(crate) fn ops(&mut self, session: &Session, ops: &mut Vec<Op>) -> bool {
        if !session.is_persistent() {
            return false;
        }
        let mut record = session.record_without_queue();
        let unchanged = match &self.record {
            Some(old) => {
                leave_queue(&mut self.in_queue, &record, ops);
                if self.record_all {
                    // Every entry still in flight is recorded (and leaves the queue below).
                    self.in_queue.clear();
                } else {
                    let inflight = std::mem::take(&mut record.inflight);
                    record.inflight = kept_in_record(&mut self.in_queue, old, inflight);
                }
                old.subscriptions == record.subscriptions
                    && old.inflight == record.inflight
                    && old.awaiting_pubrel == record.awaiting_pubrel
                    && old.expiry_interval_s == record.expiry_interval_s
                    && old.offline_since_ms == record.offline_since_ms
                    && old.protocol == record.protocol
                    && old.configured == record.configured
            }
            None => false,
        };
        self.report_in_flight(session, &record.client_id, ops);
        if unchanged {
            return false;
        }
        // Both lists keep the order messages were first sent in, new ones last: one walk
        // finds them (an entry out of that order is taken for new, and its `Dequeue` of an
        // entry already gone changes nothing).
        let old = self.record.as_deref().map_or(&[][..], |r| &r.inflight[..]);
        let mut from = 0;
        for entry in &record.inflight {
            let found = old[from..].iter().position(|o| o.message == entry.message);
            let new = match found {
                Some(at) => {
                    from += at + 1;
                    false
                }
                None => true,
            };
            if new && entry.stage == InFlightStage::Published {
                ops.push(Op::Dequeue {
                    client_id: record.client_id.clone(),
                    message: entry.message,
                    shared: entry.shared,
                });
            }
        }
        ops.push(Op::SaveSession {
            record: record.clone(),
            messages: session.inflight_messages().cloned().collect(),
        });
        self.record = Some(Box::new(record));
        true
    }

    /// Tells the store how much of the queue is in flight when that changed (and at the
    /// first save, which takes every entry in flight out of the queue): the queue-backed
    /// entries are the last ones of the window, each with its message.
    fn report_in_flight(&mut self, session: &Session, client_id: &ByteStr, ops: &mut Vec<Op>) {
        let messages = self.in_queue.len();
        let bytes: usize = match messages {
            0 => 0,
            n => {
                let all = session.inflight_messages().count();
                session
                    .inflight_messages()
                    .skip(all.saturating_sub(n))
                    .map(|m| m.size())
                    .sum()
            }
        };
        let now = (
            u64::try_from(messages).unwrap_or(u64::MAX),
            u64::try_from(bytes).unwrap_or(u64::MAX),
        );
        if self.reported != Some(now) {
            self.reported = Some(now);
            ops.push(Op::InFlight {
                client_id: client_id.clone(),
                messages: now.0,
                bytes: now.1,
            });
        }
    }

    /// The session took a delivery whose enqueues are the commit `stored`.
    pub(crate) fn delivered(&mut self, stored: Ticket) {
        self.stored = self.stored.max(stored);
    }

    /// Saves `session` if it changed and waits for the commit of everything that submits,
    /// `Dequeue`s of acknowledged messages included: call before writing to the client, or
    /// when the connection ends (a later connection reads the queue again from its head).
    ///
    /// # Errors
    /// The store refused the write.
    pub(crate) async fn sync(
        &mut self,
        session: &Session,
        persist: &Persist,
    ) -> Result<(), StoreFailed> {
        let mut ops = Vec::new();
        self.ops(session, &mut ops);
        let ticket = persist.submit(&mut ops);
        committed(persist, ticket).await
    }

    /// The connection ends: records every message still in flight (taking them out of the
    /// queue), so the queue of an offline session is what it has not sent yet, and a
    /// restart resends them with DUP and their packet ids; then waits for the commit.
    ///
    /// # Errors
    /// The store refused the write.
    pub(crate) async fn close(
        &mut self,
        session: &Session,
        persist: &Persist,
    ) -> Result<(), StoreFailed> {
        self.record_all = true;
        self.sync(session, persist).await
    }

    /// Submits the ops that save `session` if it changed; the ticket is the commit to wait
    /// for (see [`committed`]) before the client hears of the change, `None` when there is
    /// none to wait for.
    pub(crate) fn submit(&mut self, session: &Session, persist: &Persist) -> Option<Ticket> {
        if !session.is_persistent() {
            return None;
        }
        let mut ops = Vec::new();
        let wait = self.ops(session, &mut ops);
        let ticket = persist.submit(&mut ops).filter(|_| wait);
        // Commits are ordered: a new ticket covers the deliveries' enqueues too.
        let stored = std::mem::take(&mut self.stored);
        ticket.or((stored > 0).then_some(stored))
    }
}

/// Takes the QoS 1 messages that left the window out of the stored queue (`in_queue`: see
/// [`Saved`]). Both lists
/// keep the order of sending, so one walk finds those still in flight.
fn leave_queue(in_queue: &mut Vec<(MessageId, bool)>, record: &SessionRecord, ops: &mut Vec<Op>) {
    let mut from = 0;
    in_queue.retain(|&(message, shared)| {
        let found = record.inflight[from..]
            .iter()
            .position(|e| e.message == message && e.shared == shared);
        match found {
            Some(at) => {
                from += at + 1;
                true
            }
            None => {
                ops.push(Op::Dequeue {
                    client_id: record.client_id.clone(),
                    message,
                    shared,
                });
                false
            }
        }
    });
}

/// The in-flight entries the stored record keeps, and the QoS 1 entries that stay in the
/// queue instead (`in_queue`, rebuilt). The record keeps the entries it has already (`old`),
/// the QoS 2 ones and every entry sent before one of those: after a restart the record's
/// entries are sent again first, then the queue, so the queue's entries must be the last
/// ones sent (a QoS 1 message sent before a QoS 2 one would otherwise come after it). An
/// entry that moves from the queue to the record is taken out of the queue by the save.
fn kept_in_record(
    in_queue: &mut Vec<(MessageId, bool)>,
    old: &SessionRecord,
    mut inflight: Vec<InFlightRef>,
) -> Vec<InFlightRef> {
    let (mut from, mut kept) = (0, 0);
    for (at, entry) in inflight.iter().enumerate() {
        let key = (entry.message, entry.shared);
        let found = old.inflight[from..]
            .iter()
            .position(|o| (o.message, o.shared) == key);
        if let Some(found) = found {
            from += found + 1;
            kept = at + 1;
        } else if entry.qos == QoS::ExactlyOnce {
            kept = at + 1;
        }
    }
    in_queue.clear();
    in_queue.extend(inflight[kept..].iter().map(|e| (e.message, e.shared)));
    inflight.truncate(kept);
    inflight
}

/// Inbound QoS 1 and 2 messages routed but not yet acknowledged because their store writes
/// have not committed, or RocketMQ has not yet taken their copy (an outflow to the bridge
/// or the cluster that the acknowledgement waits for), in the order they were routed
/// (tickets never decrease). The connection keeps reading and routing meanwhile, so its
/// next messages go into the next commit and the next RocketMQ batch instead of waiting
/// for this one; each commit then acknowledges everything it covered at once (commits are
/// ordered: one covers all earlier tickets), in the order of the PUBLISHes.
#[derive(Debug, Default)]
pub(crate) struct PendingAcks {
    waiting: VecDeque<Waiting>,
}

#[derive(Debug)]
struct Waiting {
    /// The commit it waits for, if any.
    ticket: Option<Ticket>,
    token: InboundToken,
    /// Resolves once RocketMQ took its copy; `None` when it waits for none (or did).
    sent: Option<oneshot::Receiver<()>>,
}

/// Why waiting acknowledgements cannot be given.
#[derive(Debug)]
pub(crate) enum AckFailed {
    /// The store refused a write.
    Store(StoreFailed),
    /// A copy for RocketMQ will never be taken (the sender stopped).
    Outflow,
}

impl From<StoreFailed> for AckFailed {
    fn from(failed: StoreFailed) -> Self {
        AckFailed::Store(failed)
    }
}

/// Most acknowledgements a connection holds back before it stops reading its socket: a
/// client that never waits for them cannot grow this without bound.
const MAX_PENDING_ACKS: usize = 4096;

impl PendingAcks {
    /// The message of `token` is routed; `ticket` is the commit it waits for, if any, and
    /// `sent` resolves once RocketMQ took its copy, when the acknowledgement waits for that.
    /// Without either it is acknowledged at once (the session still sends acknowledgements
    /// in the order of the PUBLISHes).
    pub(crate) fn push(
        &mut self,
        token: Option<InboundToken>,
        ticket: Option<Ticket>,
        sent: Option<oneshot::Receiver<()>>,
        session: &mut Session,
    ) {
        let Some(token) = token else { return };
        // PUBACKs go out in the order the PUBLISHes came (MQTT-4.6.0-2): one that needs no
        // commit of its own still waits behind those that do.
        if ticket.is_none() && sent.is_none() && self.waiting.is_empty() {
            session.inbound_done(token);
            return;
        }
        self.waiting.push_back(Waiting {
            ticket,
            token,
            sent,
        });
    }

    /// Whether acknowledgements wait for a commit or for RocketMQ.
    pub(crate) fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Whether the connection may read more PUBLISHes.
    pub(crate) fn has_room(&self) -> bool {
        self.waiting.len() < MAX_PENDING_ACKS
    }

    /// Resolves when the oldest waiting message's commit is done and RocketMQ took its copy
    /// (cancel-safe).
    ///
    /// # Errors
    /// The store refused the commit, or the copy will never be taken.
    pub(crate) async fn next_settled(&mut self, persist: &Persist) -> Result<(), AckFailed> {
        let Some(front) = self.waiting.front_mut() else {
            return Ok(());
        };
        committed(persist, front.ticket).await?;
        if let Some(sent) = &mut front.sent {
            sent.await.map_err(|_| AckFailed::Outflow)?;
            front.sent = None;
        }
        Ok(())
    }

    /// Acknowledges every waiting message whose commit is done and whose copy RocketMQ took.
    ///
    /// # Errors
    /// The store refused one of those commits, or one of those copies will never be taken.
    pub(crate) fn take_settled(
        &mut self,
        session: &mut Session,
        persist: &Persist,
    ) -> Result<(), AckFailed> {
        let done = persist.done();
        let mut checked = None;
        while let Some(front) = self.waiting.front_mut() {
            if let Some(ticket) = front.ticket {
                if ticket > done {
                    break;
                }
                if checked != Some(ticket) {
                    persist.check(ticket)?;
                    checked = Some(ticket);
                }
            }
            if let Some(sent) = &mut front.sent {
                match sent.try_recv() {
                    Ok(()) => {}
                    Err(oneshot::error::TryRecvError::Empty) => break,
                    Err(oneshot::error::TryRecvError::Closed) => return Err(AckFailed::Outflow),
                }
            }
            let token = front.token;
            self.waiting.pop_front();
            session.inbound_done(token);
        }
        Ok(())
    }

    /// The connection is over: waits (at most `limit`) for the commits the waiting messages
    /// need and for RocketMQ to take their copies, then tells the session about each. A
    /// committed message is done; one the store refused has failed (a QoS 2 id is released,
    /// so the resent PUBLISH is routed again); one still waiting at the limit counts as done,
    /// since any acknowledgement the client gets later follows a later commit (commits are
    /// ordered), and its QoS 2 id must not stay taken by a token that nobody holds any more.
    pub(crate) async fn settle(
        &mut self,
        session: &mut Session,
        persist: &Persist,
        limit: Duration,
    ) {
        let last = self.waiting.iter().rev().find_map(|w| w.ticket);
        let waiting = &mut self.waiting;
        let _ = tokio::time::timeout(limit, async {
            if let Some(last) = last {
                let _ = persist.wait(last).await;
            }
            for entry in waiting.iter_mut() {
                if let Some(sent) = entry.sent.take() {
                    let _ = sent.await;
                }
            }
        })
        .await;
        let done = persist.done();
        for entry in self.waiting.drain(..) {
            let refused = entry
                .ticket
                .is_some_and(|ticket| ticket <= done && persist.check(ticket).is_err());
            if refused {
                session.inbound_failed(entry.token);
            } else {
                session.inbound_done(entry.token);
            }
        }
    }

    /// Waits for the commit every waiting message needs and for RocketMQ to take every
    /// copy, then acknowledges them all.
    ///
    /// # Errors
    /// The store refused a write, or a copy will never be taken: nothing more is
    /// acknowledged.
    pub(crate) async fn release(
        &mut self,
        session: &mut Session,
        persist: &Persist,
    ) -> Result<(), AckFailed> {
        let last = self.waiting.iter().rev().find_map(|w| w.ticket);
        committed(persist, last).await?;
        for entry in &mut self.waiting {
            if let Some(sent) = entry.sent.take() {
                sent.await.map_err(|_| AckFailed::Outflow)?;
            }
        }
        for entry in self.waiting.drain(..) {
            session.inbound_done(entry.token);
        }
        Ok(())
    }
}

/// Waits for `ticket`'s commit, if there is one.
///
/// # Errors
/// The store refused the write.
pub(crate) async fn committed(
    persist: &Persist,
    ticket: Option<Ticket>,
) -> Result<(), StoreFailed> {
    match ticket {
        None => Ok(()),
        Some(ticket) if persist.done() >= ticket => persist.check(ticket),
        // Boxed: the wait's state would otherwise be part of every connection's future.
        Some(ticket) => Box::pin(persist.wait(ticket)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqgate_codec::{Connect, Packet};
    use mqgate_session::{MessageId, SessionConfig};

    fn dequeued(ops: &[Op]) -> Vec<u128> {
        ops.iter()
            .filter_map(|op| match op {
                Op::Dequeue { message, .. } => Some(message.0),
                _ => None,
            })
            .collect()
    }

    fn saved_inflight(ops: &[Op]) -> Option<Vec<u128>> {
        ops.iter().find_map(|op| match op {
            Op::SaveSession { record, .. } => {
                Some(record.inflight.iter().map(|e| e.message.0).collect())
            }
            _ => None,
        })
    }

    #[test]
    fn qos1_messages_sent_after_the_first_save_stay_queued_until_acknowledged() {
        let mut session = Session::new(ByteStr::from_static("c"), SessionConfig::default());
        let connect = Connect {
            keep_alive: 60,
            clean_session: false,
            ..Connect::default()
        };
        let _ = session.connect(&connect, 0).unwrap();
        let deliver = |session: &mut Session, id: u128, qos: QoS| {
            let message = Arc::new(Message::new(
                MessageId(id),
                ByteStr::from_static("t"),
                bytes::Bytes::from_static(b"x"),
                qos,
                0,
            ));
            let _ = session.handle_delivery(message, qos, 0);
            while session.poll_transmit().is_some() {}
        };
        let ack = |session: &mut Session, id: u128| {
            let entry = session.record().inflight.into_iter();
            let packet_id = entry
                .filter(|e| e.message.0 == id)
                .map(|e| e.packet_id)
                .next()
                .expect("in flight");
            session.handle_packet(Packet::PubAck(packet_id), 0).unwrap();
        };
        let mut saved = Saved::default();
        // (dequeued, the saved record's in flight, wait, in flight from the queue as told)
        let save = |saved: &mut Saved, session: &Session| {
            let mut ops = Vec::new();
            let wait = saved.ops(session, &mut ops);
            let told = ops.iter().find_map(|op| match op {
                Op::InFlight { messages, .. } => Some(*messages),
                _ => None,
            });
            (dequeued(&ops), saved_inflight(&ops), wait, told)
        };
        for id in 1..=3 {
            deliver(&mut session, id, QoS::AtLeastOnce);
        }
        // The first save records everything in flight, taken out of the queue.
        assert_eq!(
            save(&mut saved, &session),
            (vec![1, 2, 3], Some(vec![1, 2, 3]), true, Some(0))
        );
        // The second is acknowledged, two more are sent: they stay in the queue, and the
        // record only loses the acknowledged one.
        ack(&mut session, 2);
        for id in 4..=5 {
            deliver(&mut session, id, QoS::AtLeastOnce);
        }
        assert_eq!(
            save(&mut saved, &session),
            (vec![], Some(vec![1, 3]), true, Some(2))
        );
        // An acknowledged QoS 1 message from the queue: one Dequeue, no record, no wait.
        ack(&mut session, 4);
        assert_eq!(save(&mut saved, &session), (vec![4], None, false, Some(1)));
        assert_eq!(save(&mut saved, &session), (vec![], None, false, None));
        // QoS 2 is recorded (with its packet id) before the client gets it, and so is every
        // message sent before it (after a restart the record's messages go first).
        deliver(&mut session, 6, QoS::ExactlyOnce);
        assert_eq!(
            save(&mut saved, &session),
            (vec![5, 6], Some(vec![1, 3, 5, 6]), true, Some(0))
        );
        deliver(&mut session, 7, QoS::AtLeastOnce);
        ack(&mut session, 5);
        ack(&mut session, 1);
        assert_eq!(
            save(&mut saved, &session),
            (vec![], Some(vec![3, 6]), true, Some(1))
        );
        ack(&mut session, 7);
        assert_eq!(save(&mut saved, &session), (vec![7], None, false, Some(0)));
        // A new connection's first save records the QoS 1 entries carried over.
        deliver(&mut session, 8, QoS::AtLeastOnce);
        let mut next = Saved::default();
        assert_eq!(
            save(&mut next, &session),
            (vec![3, 6, 8], Some(vec![3, 6, 8]), true, Some(0))
        );
        // The end of a connection records what is still in flight from the queue.
        deliver(&mut session, 9, QoS::AtLeastOnce);
        deliver(&mut session, 10, QoS::AtLeastOnce);
        assert_eq!(save(&mut next, &session), (vec![], None, false, Some(2)));
        ack(&mut session, 9);
        next.record_all = true;
        assert_eq!(
            save(&mut next, &session),
            (vec![9, 10], Some(vec![3, 6, 8, 10]), true, Some(0))
        );
        // A cloud SDK queue's session records every message in flight, QoS 1 too.
        let mut every = Saved::recording_every_message();
        let _ = save(&mut every, &session);
        deliver(&mut session, 11, QoS::AtLeastOnce);
        assert_eq!(
            save(&mut every, &session),
            (vec![11], Some(vec![3, 6, 8, 10, 11]), true, None)
        );
    }
}
