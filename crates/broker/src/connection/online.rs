//! One task per connection: it owns the client's [`Session`] while the client is online and
//! drives it (see the session crate's contract): read everything the socket has, hand every
//! packet to the session, act on its events (route, subscribe, close), then drain
//! `poll_transmit` into one buffer and write it once.
//!
//! Backpressure: a QoS 1 or 2 PUBLISH is acknowledged only after every receiver's inbox took
//! it. While a receiver is full this task stops reading its socket, but keeps taking its own
//! inbox and writing to its own client, so two connections publishing to each other cannot
//! deadlock on inboxes. A receiver is itself full when its session's queue is at its limit:
//! the task then leaves messages in its inbox, so the publishers slow down instead of the
//! session dropping what they were promised.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqgate_auth::Grants;
use mqgate_codec::{ByteStr, PacketId, QoS, ReasonCode, SubscribeFilter};
use mqgate_session::{
    DeliveryOutcome, Event, InboundToken, Message, MessageId, QueueBounds, Session,
};
use mqgate_status::ConnectionEvents;
use mqgate_store::{Op, StoredWill};
use mqgate_topic::TopicName;
use mqgate_trace::{Action, Info};
use smallvec::SmallVec;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::close::{check_filters, CloseReason};
use super::v5::{self, V5State};
use super::ConnCtx;
use crate::clock::{monotonic_ms, unix_time_ms};
use crate::core::deliver::{self, Blocked};
use crate::core::inbox::{self, Signal};
use crate::core::persist;
use crate::core::registry::{drain_drops, ClientCard, Delivery, Drops};
use crate::core::router::RouteScratch;
use crate::core::wills::{WillSession, WillTicket};
use crate::core::{next_page, PageRead, Unsettled};
use crate::transport::io::Io;

/// Most inbox messages taken in one go before the task writes and looks at its socket again.
const INBOX_BATCH: usize = 256;
/// Most inbox messages taken under one lock of the inbox.
const TAKE_BATCH: usize = 32;

/// At most this many packets in one read count as light load: publishers that send one
/// message at a time, or a few, as devices do. A saturated connection's reads bring dozens.
/// Measured with one QoS 1 publisher at 1 000 msg/s, yielding to the receivers after such a
/// read cut the delivery's p50 by about 10-20 us, at the price of waking the idle worker
/// (broker CPU 0.25 -> 0.35 s per 10 000 messages); fan-in and fan-out at full rate did not
/// change beyond noise.
const LIGHT_READ: usize = 8;

/// A connection's routing scratch space: its routes' wakes wait for the end of the batch.
fn new_scratch() -> Box<RouteScratch> {
    Box::new(RouteScratch::deferring())
}

/// What an event left to do that may have to wait.
enum Next {
    /// Nothing: it was handled.
    Done,
    /// A PUBLISH to route, then acknowledge.
    Route {
        message: Arc<Message>,
        retain: bool,
        token: Option<InboundToken>,
    },
    /// A SUBSCRIBE or UNSUBSCRIBE (boxed: rare, and this stays small).
    Wait(Box<Event>),
}

/// A connection whose CONNECT was accepted, with everything it owns while online.
pub(crate) struct Online<S> {
    pub(crate) io: Io<S>,
    pub(crate) ctx: Arc<ConnCtx>,
    pub(crate) session: Box<Session>,
    /// Deliveries, the request to close and the timer ([`inbox::Receiver::signal`]).
    pub(crate) inbox: inbox::Receiver<Delivery>,
    /// What the client may publish and subscribe to, fixed at CONNECT. Boxed: read once per
    /// PUBLISH or SUBSCRIBE, and this is part of every connection's task.
    pub(crate) grants: Box<Grants>,
    /// The status events; also where the client id and the channel id are kept.
    pub(crate) events: ConnectionEvents,
    /// A delivery taken from the inbox that the session's queue has no room for yet.
    /// Boxed: rare, and this is part of every connection's task.
    pub(crate) held: Option<Box<Delivery>>,
    /// Routing scratch space, made at the first PUBLISH (a connection that only receives
    /// never needs it).
    pub(crate) scratch: Option<Box<RouteScratch>>,
    /// What this persistent session last wrote to the store.
    /// Made once the session is persistent (a clean session never saves).
    pub(crate) saved: Option<Box<persist::Saved>>,
    /// Routed messages whose acknowledgement waits for a store commit.
    pub(crate) acks: persist::PendingAcks,
    /// What the operator's console shows of this connection.
    pub(crate) card: Arc<ClientCard>,
    /// The page of the session's stored queue being read (see [`Online::start_read`]).
    pub(crate) reading: Option<PageRead>,
    /// Held while the stored queue has more than was read: this session shares the
    /// backlog memory budget (see [`crate::core::paging`]).
    pub(crate) draining: Option<crate::core::paging::Draining>,
    /// What an MQTT 5 connection keeps beside its session; `None` for 3.1.1.
    pub(crate) v5: Option<Box<V5State>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Online<S> {
    /// Drives the connection until it ends, then hands the session back and reports.
    ///
    /// Not an `async fn`: that would keep `self` twice in the future (once as the argument,
    /// once as the body's local); the `async move` block holds it once.
    #[allow(clippy::manual_async_fn)] // deliberately not an async fn: see above
    pub(crate) fn run(mut self) -> impl std::future::Future<Output = ()> + Send {
        async move {
            let reason = self.drive().await;
            // Boxed: what runs once at the end need not make every idle task's future bigger.
            Box::pin(self.finish(reason)).await;
        }
    }

    async fn drive(&mut self) -> CloseReason {
        // Packets that came in the same read as CONNECT are already buffered; they are
        // handled once the CONNACK is out.
        let mut buffered = true;
        let mut light = false;
        loop {
            let processed = self.process_events().await;
            let woke = self.wake_routed();
            if let Err(reason) = processed {
                return reason;
            }
            // Receivers first: after a light read that woke receivers of what it routed, this
            // task lets them run before it writes its own acknowledgements. A woken receiver
            // waits in this worker's next slot, and the acknowledgement's write (a loopback
            // send is several microseconds) would otherwise come before every delivery; the
            // yield also lets an idle worker take this task, so both writes go at once. Under
            // load reads are large and nothing changes (see `LIGHT_READ`).
            if std::mem::take(&mut light) && woke && self.session.has_transmit() {
                tokio::task::yield_now().await;
            }
            self.release_held();
            if let Err(reason) = self.flush().await {
                return reason;
            }
            // About to wait: what the session no longer uses goes back to the allocator.
            self.session.release_idle_memory();
            if std::mem::take(&mut buffered) {
                if let Err(reason) = self.handle_received() {
                    return reason;
                }
                continue;
            }
            // The keep-alive deadline: the broker's timer loop wakes this task once it passed.
            self.inbox
                .set_timer(self.session.poll_timeout(), &self.ctx.core.registry.timers);
            self.start_read();
            let can_take = self.can_take();
            tokio::select! {
                biased;
                signal = self.inbox.signal(monotonic_ms) => match signal {
                    Signal::Kick(kick) => return CloseReason::kicked(kick),
                    Signal::Timer => self.session.handle_timeout(monotonic_ms()),
                },
                page = next_page(&mut self.reading), if self.reading.is_some() => {
                    self.reading = None;
                    match page {
                        Some(page) => {
                            self.ctx.core.paging.paged(&page);
                            if let Some(trace) = &self.ctx.core.trace {
                                // Read back from the offline queue on disk: pushed now.
                                for entry in &page.entries {
                                    let info = Info::PushOfflineMsgToMqttClient;
                                    trace.message(Action::PushOffline, info, self.session.client_id(), entry.message.id);
                                }
                            }
                            self.session.refill(page, monotonic_ms());
                        }
                        None => self.session.queue_read_failed(),
                    }
                }
                settled = next_settled(&mut self.acks, &self.ctx.core.persist), if self.acks.is_waiting() => {
                    if let Err(failed) = settled.and_then(|()| self.acks.take_settled(&mut self.session, &self.ctx.core.persist)) {
                        return failed.into();
                    }
                }
                read = self.io.read_more(), if self.acks.has_room() => match read {
                    Ok(0) => return CloseReason::PeerClosed,
                    Ok(_) => match self.handle_received() {
                        Ok(packets) => light = packets <= LIGHT_READ,
                        Err(reason) => return reason,
                    },
                    Err(error) => return error.into(),
                },
                delivery = self.inbox.recv(), if can_take => {
                    if let Some(delivery) = delivery {
                        self.take(delivery);
                        self.take_more();
                    }
                }
            }
        }
    }

    /// Starts reading the page of the stored queue the session asks for, if it asks and no
    /// read is under way (see [`Core::read_queue_page`](crate::core::Core::read_queue_page)).
    fn start_read(&mut self) {
        if self.reading.is_some() {
            return;
        }
        let paging = &self.ctx.core.paging;
        let Some(read) = paging.poll_read(&mut self.session, &mut self.draining) else {
            return;
        };
        let client = self.events.shared_client_id().clone();
        self.reading = Some(self.ctx.core.read_queue_page(client, read));
    }

    /// Hands every whole packet in the read buffer to the session; returns how many.
    fn handle_received(&mut self) -> Result<usize, CloseReason> {
        let now = monotonic_ms();
        let mut packets = 0;
        if let Some(state) = &mut self.v5 {
            while let Some(packet) = self.io.decode_v5()? {
                v5::inbound(state, &mut self.session, packet, now)?;
                packets += 1;
            }
            return Ok(packets);
        }
        while let Some(packet) = self.io.decode()? {
            self.session
                .handle_packet(packet, now)
                .map_err(CloseReason::Protocol)?;
            packets += 1;
        }
        Ok(packets)
    }

    async fn flush(&mut self) -> Result<(), CloseReason> {
        // A persistent session's changed state is durable before the client hears of it.
        let persist = &self.ctx.core.persist;
        let ticket = match &mut self.saved {
            Some(saved) => saved.submit(&self.session, persist),
            None if self.session.is_persistent() => self
                .saved
                .insert(Box::default())
                .submit(&self.session, persist),
            None => None,
        };
        persist::committed(persist, ticket).await?;
        let limit = self.ctx.core.waits.backpressure;
        if self.v5.is_some() {
            self.queue_v5()?;
            self.io.send(limit).await?;
            return Ok(());
        }
        let session = &mut self.session;
        self.io
            .write_all(std::iter::from_fn(|| session.poll_transmit()), limit)
            .await?;
        Ok(())
    }

    /// Queues what the session has to send, written as MQTT 5. A PUBLISH too large for the
    /// client is completed in the session instead, which may release more (bounded: each
    /// round completes at least one of the window's messages).
    fn queue_v5(&mut self) -> Result<(), CloseReason> {
        let Some(state) = &mut self.v5 else {
            return Ok(());
        };
        let now = monotonic_ms();
        // A re-authentication's AUTH answers the client's AUTH, before anything queued after.
        self.io.queue(std::mem::take(&mut state.auth_replies));
        loop {
            // Each packet is written as it is taken, without a buffer in between.
            while let Some((packet, message)) = self.session.poll_transmit_with_message() {
                let (subscriptions, client) =
                    (self.session.subscriptions(), self.session.client_id());
                v5::outbound(
                    state,
                    subscriptions,
                    client,
                    packet,
                    message,
                    now,
                    &mut self.io,
                );
            }
            if !v5::complete_unsent(state, &mut self.session, now)? {
                return Ok(());
            }
        }
    }

    /// Whether the session can take another delivery without its queue overflowing.
    fn can_take(&self) -> bool {
        self.held.is_none() && self.has_room_for(0)
    }

    fn has_room_for(&self, size: usize) -> bool {
        let bounds = self.session.config().queue_bounds();
        fits(
            &bounds,
            self.session.queued_len(),
            self.session.queued_bytes(),
            size,
        )
    }

    fn take(&mut self, mut delivery: Delivery) {
        if let Some(state) = &self.v5 {
            if delivery.frame.is_some() && !v5::shares_frames(state, self.session.subscriptions()) {
                // This client's PUBLISH carries something of its own: `flush` writes it.
                delivery.frame = None;
            }
            if !delivery.direct
                && *delivery.message.origin == **self.session.client_id()
                && !v5::delivered_to_self(self.session.subscriptions(), &delivery.message.topic)
            {
                // No Local on every subscription that matches (MQTT-3.8.3-3). A P2P
                // message matched none: it reaches its target whoever sent it.
                return;
            }
            if delivery.published_retained
                && !delivery.message.retain
                && v5::retains_as_published(self.session.subscriptions(), &delivery.message.topic)
            {
                // Retain As Published: this receiver's own copy with RETAIN set
                // (MQTT-3.3.1-13); every other receiver shares the message with it clear.
                let copy = Message {
                    retain: true,
                    ..Message::clone(&delivery.message)
                };
                delivery.message = Arc::new(copy);
                delivery.frame = None;
            }
        }
        if let Some(frame) = self.shared_frame(&mut delivery) {
            // QoS 0 to a connected client: the session would only pass it on, so the shared
            // frame goes out as it is, after whatever the session had queued before it.
            self.traced(&delivery.message);
            let session = &mut self.session;
            self.io
                .queue(std::iter::from_fn(|| session.poll_transmit()));
            self.io.queue_shared(frame);
            return;
        }
        let qos = delivery.message.qos.min(delivery.granted);
        if qos != QoS::AtMostOnce && !self.has_room_for(delivery.message.size()) {
            self.held = Some(Box::new(delivery));
            return;
        }
        if let Some(saved) = &mut self.saved {
            saved.delivered(delivery.stored);
        }
        self.traced(&delivery.message);
        let outcome = delivery.hand_to(&mut self.session, monotonic_ms());
        self.count(outcome);
    }

    /// The shared frame that `delivery` goes out as, if it has one this client can take as
    /// it is: QoS 0, encodable, and for an MQTT 5 client with nothing queued before it (the
    /// session's packets need `flush`'s MQTT 5 writing) and within its Maximum Packet Size.
    fn shared_frame(&mut self, delivery: &mut Delivery) -> Option<Bytes> {
        let frames = delivery.frame.take().filter(|_| delivery.is_qos0())?;
        let Some(state) = &self.v5 else {
            return frames.v3(&delivery.message);
        };
        if self.session.has_transmit() {
            return None;
        }
        if delivery.message.expires_at_ms.is_some() {
            return None;
        }
        let max = state
            .client_max_packet
            .map_or(usize::MAX, |max| usize::try_from(max).unwrap_or(usize::MAX));
        frames
            .v5(&delivery.message)
            .filter(|frame| frame.len() <= max)
    }

    /// Takes up to [`INBOX_BATCH`] more deliveries, a few dozen per inbox lock. A batch takes
    /// QoS 1 and 2 deliveries only while the session's queue would surely have room for them
    /// (as if each were queued); the one that might not fit is taken alone, and held if it
    /// does not.
    fn take_more(&mut self) {
        let mut taken = 0;
        while taken < INBOX_BATCH && self.held.is_none() {
            let mut batch = SmallVec::<[Delivery; TAKE_BATCH]>::new();
            let bounds = self.session.config().queue_bounds();
            let (mut messages, mut bytes) =
                (self.session.queued_len(), self.session.queued_bytes());
            let n = self.inbox.try_recv_many(&mut batch, |delivery| {
                if delivery.is_qos0() {
                    return true;
                }
                let size = delivery.message.size();
                let room = fits(&bounds, messages, bytes, size);
                (messages, bytes) = (messages + 1, bytes.saturating_add(size));
                room
            });
            if n == 0 {
                // Only when the session's queue has room at all (as the loop's own `recv`):
                // a full session leaves its messages in the inbox, not one more in `held`.
                if !self.can_take() {
                    return;
                }
                match self.inbox.try_recv() {
                    Ok(delivery) => {
                        taken += 1;
                        self.take(delivery);
                        continue;
                    }
                    Err(()) => return,
                }
            }
            taken += n;
            for delivery in batch {
                self.take(delivery);
            }
        }
    }

    fn release_held(&mut self) {
        if let Some(delivery) = self.held.take() {
            self.take(*delivery);
            if self.held.is_none() {
                self.take_more();
            }
        }
    }

    /// Records in the trace that `message` was pushed to this online client.
    fn traced(&self, message: &Message) {
        if let Some(trace) = &self.ctx.core.trace {
            let (action, info) = (Action::Sub, Info::PushToMqttClient);
            trace.message(action, info, self.session.client_id(), message.id);
        }
    }

    fn count(&self, outcome: DeliveryOutcome) {
        if matches!(
            outcome,
            DeliveryOutcome::Dropped(_) | DeliveryOutcome::Refused
        ) {
            let client = self.events.client_id();
            deliver::count_outcome(&self.ctx.core.metrics, client, outcome);
        }
    }

    /// Acts on everything the session reported. Most events are handled on the spot; what
    /// has to wait (receivers to make room, RocketMQ, a store commit) waits in a boxed
    /// future, so an idle connection's future does not carry the room for it.
    async fn process_events(&mut self) -> Result<(), CloseReason> {
        // Written so that no temporary (the polled `Option<Event>`, the `?`'s result) lives
        // across an await: each would be kept in every connection task's future.
        loop {
            let Some(event) = self.session.poll_event() else {
                return Ok(());
            };
            let next = self.on_event(event)?;
            match next {
                Next::Done => {}
                Next::Route {
                    message,
                    retain,
                    token,
                } => {
                    if self.ctx.outflow.is_some() {
                        self.wake_routed();
                        Box::pin(self.route_bridged(message, retain, token)).await?;
                    } else {
                        self.route(&message, retain);
                        if !self.scratch().matched {
                            // No outflow either: nobody receives it (PUBACK 0x10 for MQTT 5).
                            self.note_ack_reason(token, ReasonCode::NoMatchingSubscribers);
                        }
                        let waited = self.wait_blocked().await;
                        let ticket = self.routed(token, waited)?;
                        self.acks.push(token, ticket, None, &mut self.session);
                    }
                }
                Next::Wait(event) => {
                    self.wake_routed();
                    match *event {
                        Event::Subscribe { packet_id, filters } => {
                            Box::pin(self.subscribe(packet_id, filters)).await?;
                        }
                        Event::Unsubscribe { packet_id, filters } => {
                            Box::pin(self.unsubscribe(packet_id, filters)).await?;
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Handles one event as far as it can without waiting.
    fn on_event(&mut self, event: Event) -> Result<Next, CloseReason> {
        match event {
            Event::Publish { publish, token, v5 } => {
                if let Err(error) = TopicName::validate(publish.topic()) {
                    return Err(CloseReason::InvalidTopic(error));
                }
                if !crate::auth::may_publish(&self.ctx.core.metrics, &self.grants, publish.topic())
                {
                    // Acknowledged all the same, or the client would resend it forever;
                    // in order, after the acknowledgements still waiting for a commit. An
                    // MQTT 5 client is told why (PUBACK or PUBREC 0x87).
                    self.note_ack_reason(token, ReasonCode::NotAuthorized);
                    self.acks.push(token, None, None, &mut self.session);
                    return Ok(Next::Done);
                }
                // A QoS 2 id awaiting PUBREL commits with the message it guards.
                if publish.qos == QoS::ExactlyOnce && self.session.is_persistent() {
                    let scratch = self.scratch.get_or_insert_with(new_scratch);
                    self.saved
                        .get_or_insert_with(Box::default)
                        .ops(&self.session, &mut scratch.ops);
                }
                let (retain, qos) = (publish.retain, publish.qos);
                // One reference count for the topic; the payload keeps the frame's.
                let (topic, payload) = publish.into_parts();
                let origin = self.session.client_id();
                let message = match v5 {
                    None => self.ctx.core.message(origin, topic, payload, qos),
                    Some(props) => self.ctx.core.message_with(
                        origin,
                        topic,
                        payload,
                        qos,
                        props.forward,
                        props.message_expiry_interval,
                    ),
                };
                Ok(Next::Route {
                    message,
                    retain,
                    token,
                })
            }
            Event::Subscribe { ref filters, .. } => {
                check_filters(filters.iter().map(|e| e.filter.as_str()))?;
                Ok(Next::Wait(Box::new(event)))
            }
            Event::Unsubscribe { ref filters, .. } => {
                check_filters(filters.iter().map(|f| f.as_str()))?;
                Ok(Next::Wait(Box::new(event)))
            }
            Event::Disconnect => {
                self.ctx
                    .core
                    .status
                    .emit(self.events.on_disconnect_packet(unix_time_ms()));
                Err(CloseReason::Disconnect)
            }
            Event::KeepAliveExpired => Err(CloseReason::KeepAlive),
            Event::Acknowledged { .. } => Ok(Next::Done),
            Event::Dropped { reason, .. } | Event::DroppedUnread { reason } => {
                let mut drops = Drops::default();
                drops.add(reason);
                deliver::count_drops(&self.ctx.core.metrics, self.events.client_id(), drops);
                Ok(Next::Done)
            }
        }
    }

    /// Notes the reason code of the acknowledgement of an MQTT 5 client's QoS 1 or 2 PUBLISH
    /// (`token`), for when it is written.
    fn note_ack_reason(&mut self, token: Option<InboundToken>, reason: ReasonCode) {
        if let (Some(state), Some(token)) = (&mut self.v5, token) {
            state.ack_reasons.push((token.packet_id(), reason));
        }
    }

    /// This connection's routing scratch space, made at its first PUBLISH.
    fn scratch(&mut self) -> &mut RouteScratch {
        self.scratch.get_or_insert_with(new_scratch)
    }

    /// Wakes the receivers of what this connection routed since it last did (see
    /// [`RouteScratch::deferring`]): before it waits for anything, and after each batch.
    fn wake_routed(&mut self) -> bool {
        match &mut self.scratch {
            Some(scratch) => scratch.wake(),
            None => false,
        }
    }

    /// Routes `message` to its receivers; those whose inbox is full are left in the scratch.
    fn route(&mut self, message: &Arc<Message>, retain: bool) {
        let skip_self =
            self.v5.is_some() && v5::not_for_self(self.session.subscriptions(), &message.topic);
        let scratch = self.scratch.get_or_insert_with(new_scratch);
        // No Local: not even queued for this session (MQTT-3.8.3-3).
        scratch.skip_publisher = skip_self;
        let now = monotonic_ms();
        self.ctx.core.router.route(
            message,
            retain,
            Some(self.events.shared_client_id()),
            now,
            scratch,
        );
    }

    /// After the wait for the receivers the last route left blocked: the commit the
    /// acknowledgement waits for. When the wait failed, the message is delivered everywhere
    /// but to the receivers still full: it counts as accepted once its commit is done
    /// (`finish` settles it), so it is acknowledged here before the error, and a QoS 2 id is
    /// neither left routing nor a resend routed twice. Not async: nothing of it needs to be
    /// kept in the connection's future.
    fn routed(
        &mut self,
        token: Option<InboundToken>,
        waited: Result<(), CloseReason>,
    ) -> Result<Option<persist::Ticket>, CloseReason> {
        let ticket = self.scratch().ticket.take();
        if let Err(reason) = waited {
            self.acks.push(token, ticket, None, &mut self.session);
            return Err(reason);
        }
        Ok(ticket)
    }

    /// [`route`](Self::route) with an outflow to RocketMQ first; with `ack_after = "rocketmq"`
    /// the acknowledgement waits for RocketMQ's accept.
    async fn route_bridged(
        &mut self,
        message: Arc<Message>,
        retain: bool,
        token: Option<InboundToken>,
    ) -> Result<(), CloseReason> {
        let (bridged, covered) = match &self.ctx.outflow {
            Some(outflow) => {
                let clean = !self.session.is_persistent();
                let covered = outflow.covers(&message.topic);
                (outflow.outflow(&message, retain, clean).await, covered)
            }
            None => (None, false),
        };
        self.route(&message, retain);
        if !self.scratch().matched && !covered {
            // No subscriber and no outflow rule: nobody receives it (PUBACK 0x10 for MQTT 5).
            self.note_ack_reason(token, ReasonCode::NoMatchingSubscribers);
        }
        self.wake_routed();
        let waited = self.wait_blocked().await;
        let ticket = self.routed(token, waited)?;
        // The acknowledgement waits for RocketMQ's accept of the copy too, without holding up
        // the next PUBLISHes: they go into the same RocketMQ batch.
        self.acks.push(token, ticket, bridged, &mut self.session);
        Ok(())
    }

    async fn subscribe(
        &mut self,
        packet_id: PacketId,
        filters: Vec<SubscribeFilter>,
    ) -> Result<(), CloseReason> {
        self.acks
            .release(&mut self.session, &self.ctx.core.persist)
            .await?;
        let now = monotonic_ms();
        let core = &self.ctx.core;
        let router = &core.router;
        let mut granted = Vec::with_capacity(filters.len());
        let mut retained = Vec::new();
        // MQTT 5: each filter's options, and why a refused one was refused.
        let pending = self.v5.as_mut().and_then(|state| {
            let at = state
                .subscribes
                .iter()
                .position(|p| p.packet_id == packet_id)?;
            state.subscribes.remove(at)
        });
        let mut refusals = Vec::new();
        for (i, entry) in filters.into_iter().enumerate() {
            let options = pending.as_ref().and_then(|p| p.options.get(i));
            // MQTT 5: no retained messages on a shared subscription (4.8.2).
            let shared = options.is_some() && v5::is_shared(&entry.filter);
            let allowed = crate::auth::may_subscribe(
                &self.ctx.access,
                &core.metrics,
                &self.grants,
                &entry.filter,
            );
            refusals.push(if allowed {
                ReasonCode::UnspecifiedError
            } else {
                ReasonCode::NotAuthorized
            });
            let existed = self
                .session
                .subscriptions()
                .iter()
                .any(|s| s.filter == entry.filter);
            let qos = allowed
                .then(|| router.subscribe(self.events.shared_client_id(), &entry.filter, entry.qos))
                .flatten();
            match qos {
                Some(qos) if !shared && options.is_none_or(|o| v5::sends_retained(o, existed)) => {
                    retained.extend(
                        router
                            .retained_for(&entry.filter, now)
                            .into_iter()
                            .map(|m| (m, qos)),
                    )
                }
                Some(_) => {}
                None => {
                    tracing::info!(client = %self.events.client_id(), filter = %entry.filter, "subscription refused");
                    core.metrics
                        .subscriptions_refused
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            granted.push((entry.filter, qos));
        }
        if let Some(state) = &mut self.v5 {
            state.suback_refusals.push_back((packet_id, refusals));
        }
        // MQTT 5: the identifier the retained messages sent for this SUBSCRIBE carry.
        let replay_identifier = pending.as_ref().map(|p| p.identifier);
        let made: Vec<_> = match &pending {
            Some(_) => granted
                .iter()
                .enumerate()
                .filter(|(_, (_, qos))| qos.is_some())
                .map(|(i, (filter, _))| (i, filter.clone()))
                .collect(),
            None => Vec::new(),
        };
        self.session.subscribed(packet_id, granted);
        if let Some(pending) = pending {
            for (i, filter) in made {
                let (Some(opts), Some(sub)) = (
                    pending.options.get(i),
                    self.session.subscription_mut(&filter),
                ) else {
                    continue;
                };
                v5::set_options(sub, opts, pending.identifier);
            }
        }
        self.card.set_subscriptions(self.session.subscriptions());
        persist::enqueue_retained(&core.persist, &self.session, &retained).await?;
        for (message, qos) in retained {
            if let (Some(state), Some(identifier)) = (&mut self.v5, replay_identifier) {
                state.retained_replays.push_back((message.id, identifier));
            }
            self.traced(&message);
            let outcome = self.session.handle_delivery(message, qos, now);
            self.count(outcome);
        }
        Ok(())
    }

    async fn unsubscribe(
        &mut self,
        packet_id: PacketId,
        filters: Vec<ByteStr>,
    ) -> Result<(), CloseReason> {
        self.acks
            .release(&mut self.session, &self.ctx.core.persist)
            .await?;
        if let Some(state) = &mut self.v5 {
            let reasons = filters
                .iter()
                .map(|f| {
                    if self.session.subscriptions().iter().any(|s| s.filter == *f) {
                        ReasonCode::Success
                    } else {
                        ReasonCode::NoSubscriptionExisted
                    }
                })
                .collect();
            state.unsubscribes.push_back((packet_id, reasons));
        }
        for filter in &filters {
            self.ctx
                .core
                .router
                .unsubscribe(self.events.shared_client_id(), filter);
        }
        self.session.unsubscribed(packet_id, filters);
        self.card.set_subscriptions(self.session.subscriptions());
        Ok(())
    }

    /// Waits until every blocked delivery of the last routed message is in its receiver's
    /// inbox, serving this connection's own inbox and writes meanwhile, but not its socket.
    /// A QoS 0 delivery waits at most `qos0_wait`, then is dropped and its receiver skipped
    /// for a while (see [`Limits::qos0_wait`](crate::Limits::qos0_wait)); a QoS 1 or 2 one
    /// waits up to the backpressure timeout, then this connection closes.
    async fn wait_blocked(&mut self) -> Result<(), CloseReason> {
        if self.scratch.as_ref().is_none_or(|s| s.blocked.is_empty()) {
            return Ok(());
        }
        // The receivers this waits for, and the others, must be awake to make room.
        self.wake_routed();
        // Boxed: its timers would otherwise be part of every connection's future, idle or not.
        Box::pin(self.wait_for_receivers()).await
    }

    async fn wait_for_receivers(&mut self) -> Result<(), CloseReason> {
        let core = self.ctx.core.clone();
        core.metrics
            .backpressure_waits
            .fetch_add(1, Ordering::Relaxed);
        let give_up = tokio::time::Instant::now() + core.waits.backpressure;
        while let Some(Blocked {
            client,
            inbox,
            delivery,
        }) = self.scratch().blocked.pop()
        {
            let qos0 = delivery.is_qos0();
            let deadline = if qos0 {
                give_up.min(tokio::time::Instant::now() + core.waits.qos0)
            } else {
                give_up
            };
            let reserve = tokio::time::timeout_at(deadline, inbox.reserve_owned());
            match self.serve_until(reserve).await? {
                Ok(Ok(permit)) => {
                    permit.send(delivery);
                    core.metrics
                        .messages_delivered
                        .fetch_add(1, Ordering::Relaxed);
                }
                // The receiver closed meanwhile: its session is in the registry now.
                Ok(Err(_)) => {
                    let again = deliver::offer(
                        &core.registry,
                        &core.metrics,
                        &client,
                        delivery,
                        monotonic_ms(),
                    );
                    self.scratch().blocked.extend(again);
                }
                Err(_) if qos0 => {
                    core.metrics.qos0_dropped.fetch_add(1, Ordering::Relaxed);
                    self.scratch().stalls.mark(client, monotonic_ms());
                }
                Err(_) => {
                    self.scratch().blocked.clear();
                    return Err(CloseReason::Backpressure);
                }
            }
        }
        Ok(())
    }

    /// Waits for `completion` (a durable write, RocketMQ's accept) before the caller
    /// acknowledges, serving this connection's own inbox and writes meanwhile, not its socket.
    async fn serve_until<F: std::future::Future>(
        &mut self,
        completion: F,
    ) -> Result<F::Output, CloseReason> {
        tokio::pin!(completion);
        loop {
            let can_take = self.can_take();
            tokio::select! {
                biased;
                done = &mut completion => return Ok(done),
                signal = self.inbox.signal(monotonic_ms) => match signal {
                    Signal::Kick(kick) => return Err(CloseReason::kicked(kick)),
                    // Timed work waits for the main loop, which sets the timer again.
                    Signal::Timer => self.inbox.set_timer(None, &self.ctx.core.registry.timers),
                },
                own = self.inbox.recv(), if can_take => {
                    if let Some(own) = own {
                        self.take(own);
                        self.take_more();
                    }
                    self.flush().await?;
                }
            }
        }
    }

    /// The connection is over: give the session back, report, publish the will.
    async fn finish(mut self, reason: CloseReason) {
        let ctx = self.ctx.clone();
        let core = &ctx.core;
        reason.report(self.events.shared_client_id(), &core.metrics);
        if let Some(trace) = &core.trace {
            let (action, info) = reason.trace();
            trace.device(
                action,
                info,
                self.session.client_id(),
                self.events.channel_id(),
            );
        }
        let subscriptions = if self.session.is_persistent() {
            Vec::new()
        } else {
            self.session.subscriptions().to_vec()
        };
        // Messages routed but not yet acknowledged are safe once their commit is done: tell the
        // session, so a QoS 2 resend on the next connection is answered, not left hanging. A
        // stalled store holds the end of the connection at most the backpressure timeout.
        let limit = ctx.core.waits.backpressure;
        self.acks
            .settle(&mut self.session, &core.persist, limit)
            .await;
        if self.saved.is_some() && !self.session.is_persistent() {
            // MQTT 5: a DISCONNECT set the Session Expiry Interval to 0; the stored session
            // ends with this connection.
            let mut ops = vec![mqgate_store::Op::RemoveSession(
                self.session.client_id().clone(),
            )];
            let _ = core.persist.submit(&mut ops);
            self.saved = None;
        }
        if self.session.expiry_interval_s().is_some() {
            // MQTT 5: the Session Expiry Interval counts from now (stored with the record).
            self.session.set_offline_since_ms(Some(monotonic_ms()));
        }
        let will = self
            .session
            .connection_lost(monotonic_ms())
            .filter(|_| reason.publishes_will());
        let clean_session = !self.session.is_persistent();
        let origin = self.session.client_id().clone();
        let terms = self
            .v5
            .as_mut()
            .map(|state| std::mem::take(&mut state.will))
            .unwrap_or_default();
        // MQTT 5: a will with a delay waits for it, or for the end of its session if that is
        // sooner (MQTT-3.1.2-8); it is registered before the session is handed over, so a
        // connection that takes the session over finds it.
        let delay_s = match (self.session.expiry_interval_s(), will.is_some()) {
            (Some(expiry_s), true) if !clean_session => terms.delay_s.min(expiry_s),
            _ => 0,
        };
        let ticket = (delay_s > 0).then(|| {
            let session = WillSession::Here {
                connected_at_ms: self.card.connected_at_ms,
            };
            core.wills.wait(self.events.shared_client_id(), session)
        });
        let skip_origin = will
            .as_ref()
            .is_some_and(|w| v5::not_for_self(self.session.subscriptions(), &w.topic));
        // A will that waits is stored too, so a restart meanwhile publishes it when due.
        let stored_will = match (&ticket, &will) {
            (Some(_), Some(w)) => {
                let due_at_ms = unix_time_ms().saturating_add(u64::from(delay_s) * 1000);
                let stored = StoredWill {
                    client_id: origin.to_string(),
                    id: core.router.next_id(),
                    topic: w.topic.to_string(),
                    payload: w.payload.clone(),
                    qos: w.qos as u8,
                    retain: w.retain,
                    properties: terms.forward.clone(),
                    expiry_s: terms.expiry_s,
                    due_at_ms,
                    not_for_origin: skip_origin,
                };
                let id = stored.id;
                let put = core.persist.submit(&mut vec![Op::PutWill(stored)]);
                let _ = tokio::time::timeout(limit, persist::committed(&core.persist, put)).await;
                Some(id)
            }
            _ => None,
        };
        // Acknowledgements that came in last are saved, and what is still in flight is
        // recorded (a failure was logged and counted).
        if let Some(saved) = &mut self.saved {
            let _ = tokio::time::timeout(limit, saved.close(&self.session, &core.persist)).await;
        }
        core.router
            .unsubscribe_all(self.events.shared_client_id(), &subscriptions);
        // Nothing new enters the inbox; what is in it goes into the session before it is
        // handed over, so a persistent session keeps every message promised to it. The inbox
        // closes under the registry's lock, in the same step as the hand-over: a publisher
        // offering a delivery holds that lock too, so it finds either this open inbox or the
        // session in the registry, never a closed inbox still registered (which, on a busy
        // machine, it could retry past and drop).
        let mut inbox = self.inbox;
        let held = self.held.take();
        let mut dropped = Drops::default();
        core.registry.detach(
            self.events.shared_client_id(),
            self.events.channel_id(),
            self.session,
            |session| {
                inbox.close();
                let waiting = std::iter::from_fn(|| inbox.try_recv().ok());
                deliver::replay(session, held.map(|held| *held).into_iter().chain(waiting));
                dropped = drain_drops(session);
            },
        );
        deliver::count_drops(&core.metrics, self.events.client_id(), dropped);
        core.status.emit(self.events.finish(unix_time_ms()));
        if let Some(will) = will {
            let will = Will {
                will,
                terms,
                origin,
                clean_session,
                skip_origin,
            };
            let client = self.events.shared_client_id().clone();
            match ticket {
                Some(ticket) => {
                    let delay = Duration::from_secs(u64::from(delay_s));
                    tokio::spawn(publish_will_later(
                        ctx.clone(),
                        client,
                        ticket,
                        delay,
                        will,
                        stored_will,
                    ));
                }
                None => publish_will(&ctx, &client, will).await,
            }
        }
        let redirect = match reason {
            CloseReason::Redirect => core.redirect.read().clone(),
            _ => None,
        };
        let goodbye = match (&self.v5, redirect, reason.disconnect_reason()) {
            // MQTT 5 server redirection: 0x9C or 0x9D, and where to go (4.11).
            (Some(state), Some(redirect), _) => {
                Some(v5::redirect(state.client_max_packet, &redirect, false))
            }
            // MQTT 5: the broker says why it closes (MQTT-4.13.2-1), and in words.
            (Some(state), None, Some(code)) => {
                Some(v5::disconnect(state, code, &reason.reason_string()))
            }
            _ => None,
        };
        if let Some(goodbye) = goodbye {
            self.io.queue([goodbye]);
            let _ = self.io.send(Duration::from_secs(1)).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.io.stream.shutdown()).await;
    }
}

/// Whether a receiver whose session queue holds `messages` messages of `bytes` bytes takes a
/// delivery of `size` bytes now, or leaves it waiting (in its inbox, slowing the publishers)
/// until the queue drains: the queue's own bound, except that an empty queue always takes
/// one, however large (the session then drops one larger than a whole queue may be, rather
/// than it waiting forever).
fn fits(bounds: &QueueBounds, messages: usize, bytes: usize, size: usize) -> bool {
    messages == 0 || bounds.has_room(messages, bytes, size)
}

/// [`PendingAcks::next_settled`](persist::PendingAcks::next_settled), boxed when it is
/// polled: this wrapper is built on every turn of the loop, but polled only while
/// acknowledgements wait, so an idle connection's future does not carry the wait's state.
async fn next_settled(
    acks: &mut persist::PendingAcks,
    persist: &persist::Persist,
) -> Result<(), persist::AckFailed> {
    Box::pin(acks.next_settled(persist)).await
}

/// A will to publish: its 3.1.1 fields, what MQTT 5 adds, who left it.
struct Will {
    will: mqgate_codec::LastWill,
    terms: v5::WillTerms,
    /// The client id of the session that left it.
    origin: ByteStr,
    clean_session: bool,
    /// The session that left it does not get it: all its subscriptions that match the
    /// topic have No Local (MQTT-3.8.3-3).
    skip_origin: bool,
}

/// Publishes `will` once its delay passed, unless a connection resumes its session first
/// (then never) or ends it (then at once). `stored` is the id it has in the store, where
/// it is forgotten once decided; a will still waiting at shutdown stays there, for the next
/// start to publish when due.
async fn publish_will_later(
    ctx: Arc<ConnCtx>,
    client: Arc<str>,
    ticket: WillTicket,
    delay: Duration,
    will: Will,
    stored: Option<MessageId>,
) {
    let mut shutdown = ctx.core.shutdown.clone();
    let wills = &ctx.core.wills;
    let Some(publish) = ticket.decided(wills, &client, delay, &mut shutdown).await else {
        return;
    };
    if publish {
        publish_will(&ctx, &client, will).await;
    }
    if let Some(id) = stored {
        forget_will(&ctx.core, client.to_string(), id);
    }
}

/// Removes the stored will `id` of `client_id` (not a newer one of that client).
fn forget_will(core: &crate::core::Core, client_id: String, id: MessageId) {
    let _ = core
        .persist
        .submit(&mut vec![Op::RemoveWill { client_id, id }]);
}

/// Arms again the delayed wills a previous run stored (call once at start, after the
/// sessions are restored): each waits for what is left of its delay, and one that fell due
/// while the broker was down is published at once. A resuming session cancels it, as
/// before the restart. Returns how many there were.
///
/// # Errors
/// The store could not be read.
pub(crate) fn restore_wills(ctx: &Arc<ConnCtx>) -> Result<usize, mqgate_store::StoreError> {
    let core = &ctx.core;
    let stored = core.store.load_wills()?;
    let now = unix_time_ms();
    let count = stored.len();
    for stored in stored {
        let (Ok(topic), Ok(origin), Some(qos)) = (
            ByteStr::try_from(stored.topic),
            ByteStr::try_from(stored.client_id.as_str()),
            QoS::from_u8(stored.qos),
        ) else {
            tracing::warn!(client = %stored.client_id, "stored will not valid; dropped");
            forget_will(core, stored.client_id, stored.id);
            continue;
        };
        let client: Arc<str> = Arc::from(origin.as_str());
        let will = Will {
            will: mqgate_codec::LastWill {
                topic,
                payload: stored.payload,
                qos,
                retain: stored.retain,
            },
            terms: v5::WillTerms {
                forward: stored.properties,
                expiry_s: stored.expiry_s,
                delay_s: 0,
            },
            origin,
            clean_session: false,
            skip_origin: stored.not_for_origin,
        };
        let delay = Duration::from_millis(stored.due_at_ms.saturating_sub(now));
        // A connection elsewhere cancels it only if made after this start.
        let session = WillSession::Here {
            connected_at_ms: now,
        };
        let ticket = core.wills.wait(&client, session);
        tokio::spawn(publish_will_later(
            ctx.clone(),
            client,
            ticket,
            delay,
            will,
            Some(stored.id),
        ));
    }
    Ok(count)
}

/// Publishes a will like any other message (with the properties and expiry of an MQTT 5
/// one), waiting (bounded) for full receivers; an outflow rule covering its topic sends a
/// copy to RocketMQ too (nobody waits for its acknowledgement).
async fn publish_will(ctx: &ConnCtx, client: &Arc<str>, will: Will) {
    let Will {
        will,
        terms,
        origin,
        clean_session,
        skip_origin,
    } = will;
    if TopicName::validate(&will.topic).is_err() {
        return;
    }
    let core = &ctx.core;
    core.metrics.wills_published.fetch_add(1, Ordering::Relaxed);
    let message = core.message_with(
        &origin,
        will.topic,
        will.payload,
        will.qos,
        terms.forward,
        terms.expiry_s,
    );
    if let Some(outflow) = &ctx.outflow {
        // Without a publisher to acknowledge, the completion (if any) is not awaited; a full
        // buffer is waited for at most the backpressure timeout.
        let limit = ctx.core.waits.backpressure;
        let sent = outflow.outflow(&message, will.retain, clean_session);
        if tokio::time::timeout(limit, sent).await.is_err() {
            tracing::warn!(%client, "will not sent to RocketMQ (bridge or cluster): its buffer stayed full");
        }
    }
    // Bounded twice the backpressure timeout: once for full receivers, once for a stalled
    // store.
    let published = core.publish(&message, will.retain, Some(client), skip_origin);
    let limit = ctx.core.waits.backpressure.saturating_mul(2);
    match tokio::time::timeout(limit, published).await {
        Ok(Ok(())) => {}
        Err(_) => {
            tracing::warn!(%client, "will not stored for its persistent receivers in time");
        }
        Ok(Err(Unsettled::Full)) => {
            tracing::warn!(%client, "will not delivered to every receiver: receivers stayed full");
        }
        Ok(Err(Unsettled::Store(error))) => {
            tracing::warn!(%client, %error, "will not stored for its persistent receivers");
        }
    }
}
