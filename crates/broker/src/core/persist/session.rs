//! What connection tasks write: the enqueues of durable deliveries, a persistent session's
//! record whenever it changed, and the acknowledgements that wait for a commit.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use mqgate_codec::{ByteStr, QoS};
use mqgate_session::{InFlightStage, InboundToken, Message, Session, SessionRecord};
use mqgate_store::Op;

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
#[derive(Debug, Default)]
pub(crate) struct Saved {
    record: Option<Box<SessionRecord>>,
}

impl Saved {
    /// Pushes the ops that save `session` if its persistent state changed since the last
    /// save. Entries newly in flight leave the stored queue in the same transaction, so a
    /// restore never has a message both queued and in flight.
    pub(crate) fn ops(&mut self, session: &Session, ops: &mut Vec<Op>) {
        if !session.is_persistent() {
            return;
        }
        let record = session.record_without_queue();
        if let Some(old) = &self.record {
            if old.subscriptions == record.subscriptions
                && old.inflight == record.inflight
                && old.awaiting_pubrel == record.awaiting_pubrel
                && old.expiry_interval_s == record.expiry_interval_s
                && old.offline_since_ms == record.offline_since_ms
                && old.protocol == record.protocol
                && old.configured == record.configured
            {
                return;
            }
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
    }

    /// Saves `session` if it changed and waits for the commit: call before writing to the
    /// client.
    ///
    /// # Errors
    /// The store refused the write.
    pub(crate) async fn sync(
        &mut self,
        session: &Session,
        persist: &Persist,
    ) -> Result<(), StoreFailed> {
        let ticket = self.submit(session, persist);
        committed(persist, ticket).await
    }

    /// Submits the ops that save `session` if it changed; the ticket is the commit to wait
    /// for (see [`committed`]) before the client hears of the change.
    pub(crate) fn submit(&mut self, session: &Session, persist: &Persist) -> Option<Ticket> {
        if !session.is_persistent() {
            return None;
        }
        let mut ops = Vec::new();
        self.ops(session, &mut ops);
        persist.submit(&mut ops)
    }
}

/// Inbound QoS 1 and 2 messages routed but not yet acknowledged because their store writes
/// have not committed, in the order they were routed (tickets never decrease). The
/// connection keeps reading and routing while commits are pending, so its next messages go
/// into the next commit instead of waiting for this one; each commit then acknowledges
/// everything it covered at once (commits are ordered: one covers all earlier tickets).
#[derive(Debug, Default)]
pub(crate) struct PendingAcks {
    waiting: VecDeque<(Ticket, InboundToken)>,
}

/// Most acknowledgements a connection holds back before it stops reading its socket: a
/// client that never waits for them cannot grow this without bound.
const MAX_PENDING_ACKS: usize = 4096;

impl PendingAcks {
    /// The message of `token` is routed; `ticket` is the commit it waits for, if any.
    /// Without one it is acknowledged at once (the session still sends acknowledgements in
    /// the order of the PUBLISHes).
    pub(crate) fn push(
        &mut self,
        token: Option<InboundToken>,
        ticket: Option<Ticket>,
        session: &mut Session,
    ) {
        let Some(token) = token else { return };
        // PUBACKs go out in the order the PUBLISHes came (MQTT-4.6.0-2): one that needs no
        // commit of its own still waits behind those that do.
        match ticket.or_else(|| self.waiting.back().map(|(t, _)| *t)) {
            None => session.inbound_done(token),
            Some(ticket) => self.waiting.push_back((ticket, token)),
        }
    }

    /// Whether acknowledgements wait for a commit.
    pub(crate) fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Whether the connection may read more PUBLISHes.
    pub(crate) fn has_room(&self) -> bool {
        self.waiting.len() < MAX_PENDING_ACKS
    }

    /// Resolves when the oldest waiting message's commit is done (cancel-safe).
    ///
    /// # Errors
    /// The store refused it.
    pub(crate) async fn next_commit(&self, persist: &Persist) -> Result<(), StoreFailed> {
        let ticket = self.waiting.front().map(|(t, _)| *t);
        committed(persist, ticket).await
    }

    /// Acknowledges every waiting message whose commit is done.
    ///
    /// # Errors
    /// The store refused one of those commits.
    pub(crate) fn take_committed(
        &mut self,
        session: &mut Session,
        persist: &Persist,
    ) -> Result<(), StoreFailed> {
        let done = persist.done();
        let mut checked = None;
        while let Some(&(ticket, token)) = self.waiting.front() {
            if ticket > done {
                break;
            }
            if checked != Some(ticket) {
                persist.check(ticket)?;
                checked = Some(ticket);
            }
            self.waiting.pop_front();
            session.inbound_done(token);
        }
        Ok(())
    }

    /// The connection is over: waits (at most `limit`) for the commits the waiting messages
    /// need, then tells the session about each. A committed message is done; one the store
    /// refused has failed (a QoS 2 id is released, so the resent PUBLISH is routed again); one
    /// still waiting at the limit counts as done, since any acknowledgement the client gets
    /// later follows a later commit (commits are ordered), and its QoS 2 id must not stay
    /// taken by a token that nobody holds any more.
    pub(crate) async fn settle(
        &mut self,
        session: &mut Session,
        persist: &Persist,
        limit: Duration,
    ) {
        if let Some(&(last, _)) = self.waiting.back() {
            let _ = tokio::time::timeout(limit, persist.wait(last)).await;
        }
        let done = persist.done();
        for (ticket, token) in self.waiting.drain(..) {
            if ticket <= done && persist.check(ticket).is_err() {
                session.inbound_failed(token);
            } else {
                session.inbound_done(token);
            }
        }
    }

    /// Waits for the commit every waiting message needs, then acknowledges them all.
    ///
    /// # Errors
    /// The store refused a write: nothing more is acknowledged.
    pub(crate) async fn release(
        &mut self,
        session: &mut Session,
        persist: &Persist,
    ) -> Result<(), StoreFailed> {
        let last = self.waiting.back().map(|(t, _)| *t);
        committed(persist, last).await?;
        for (_, token) in self.waiting.drain(..) {
            session.inbound_done(token);
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

    #[test]
    fn only_entries_newly_in_flight_leave_the_stored_queue() {
        let mut session = Session::new(ByteStr::from_static("c"), SessionConfig::default());
        let connect = Connect {
            keep_alive: 60,
            clean_session: false,
            ..Connect::default()
        };
        let _ = session.connect(&connect, 0).unwrap();
        let deliver = |session: &mut Session, id: u128| {
            let message = Arc::new(Message::new(
                MessageId(id),
                ByteStr::from_static("t"),
                bytes::Bytes::from_static(b"x"),
                QoS::AtLeastOnce,
                0,
            ));
            let _ = session.handle_delivery(message, QoS::AtLeastOnce, 0);
        };
        let mut saved = Saved::default();
        for id in 1..=3 {
            deliver(&mut session, id);
        }
        let mut ops = Vec::new();
        saved.ops(&session, &mut ops);
        assert_eq!(dequeued(&ops), [1, 2, 3]);
        // The second is acknowledged, two more are sent: only those two are new.
        while session.poll_transmit().is_some() {}
        let second = session.record().inflight[1].packet_id;
        session.handle_packet(Packet::PubAck(second), 0).unwrap();
        for id in 4..=5 {
            deliver(&mut session, id);
        }
        let mut ops = Vec::new();
        saved.ops(&session, &mut ops);
        assert_eq!(dequeued(&ops), [4, 5]);
        // Nothing changed: nothing to save.
        let mut ops = Vec::new();
        saved.ops(&session, &mut ops);
        assert!(ops.is_empty());
    }
}
