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

use bytes::BytesMut;
use mqgate_codec::{Decoder, Packet, QoS};
use mqgate_session::{DeliveryOutcome, Event, Message, Session};
use mqgate_status::{ChannelId, ConnectionEvents};
use mqgate_topic::TopicName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::unix_time_ms;
use crate::close::CloseReason;
use crate::registry::{drain_drops, Delivery};
use crate::router::{Blocked, RouteScratch};
use crate::shared::Shared;

/// Bytes reserved in the read buffer before each read.
const READ_CHUNK: usize = 16 * 1024;
/// A buffer grown past this by a large packet is given back once empty, so a connection's
/// memory returns to its idle size after a spike.
const KEEP_BUFFER: usize = 64 * 1024;
/// Most inbox messages taken in one go before the task writes and looks at its socket again.
const INBOX_BATCH: usize = 256;

/// A byte stream with its buffers and the packet decoder.
pub(crate) struct Io<S> {
    pub(crate) stream: S,
    rx: BytesMut,
    tx: BytesMut,
    decoder: Decoder,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    pub(crate) fn new(stream: S, max_packet_size: usize) -> Self {
        Io {
            stream,
            rx: BytesMut::new(),
            tx: BytesMut::new(),
            decoder: Decoder::new(max_packet_size),
        }
    }

    /// The next whole packet; `None` when the peer closed.
    pub(crate) async fn read_packet(&mut self) -> Result<Option<Packet>, CloseReason> {
        loop {
            if let Some(packet) = self.decode()? {
                return Ok(Some(packet));
            }
            if self.read_more().await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Reads what the socket has (cancel-safe: nothing is lost if the future is dropped).
    async fn read_more(&mut self) -> Result<usize, CloseReason> {
        self.rx.reserve(READ_CHUNK);
        self.stream
            .read_buf(&mut self.rx)
            .await
            .map_err(CloseReason::Io)
    }

    fn decode(&mut self) -> Result<Option<Packet>, CloseReason> {
        let packet = self
            .decoder
            .decode(&mut self.rx)
            .map_err(CloseReason::from)?;
        if self.rx.is_empty() && self.rx.capacity() > KEEP_BUFFER {
            self.rx = BytesMut::new();
        }
        Ok(packet)
    }

    /// Encodes `packets` into the send buffer and writes it in one go.
    pub(crate) async fn write_all(
        &mut self,
        packets: impl IntoIterator<Item = Packet>,
        limit: Duration,
    ) -> Result<(), CloseReason> {
        for packet in packets {
            packet.encode(&mut self.tx).map_err(CloseReason::Encode)?;
        }
        if self.tx.is_empty() {
            return Ok(());
        }
        let write = async {
            self.stream.write_all(&self.tx).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Ok(Ok(())) => {
                self.tx.clear();
                if self.tx.capacity() > KEEP_BUFFER {
                    self.tx = BytesMut::new();
                }
                Ok(())
            }
            Ok(Err(e)) => Err(CloseReason::Io(e)),
            Err(_) => Err(CloseReason::WriteTimeout),
        }
    }
}

/// A connection whose CONNECT was accepted, with everything it owns while online.
pub(crate) struct Online<S> {
    pub(crate) io: Io<S>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) client: Arc<str>,
    pub(crate) channel: ChannelId,
    pub(crate) session: Box<Session>,
    pub(crate) inbox: mpsc::Receiver<Delivery>,
    pub(crate) kick: oneshot::Receiver<()>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) events: ConnectionEvents,
    /// A delivery taken from the inbox that the session's queue has no room for yet.
    pub(crate) held: Option<Delivery>,
    pub(crate) scratch: RouteScratch,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Online<S> {
    /// Drives the connection until it ends, then hands the session back and reports.
    pub(crate) async fn run(mut self) {
        let reason = self.drive().await;
        self.finish(reason).await;
    }

    async fn drive(&mut self) -> CloseReason {
        // Packets that came in the same read as CONNECT are already buffered; they are
        // handled once the CONNACK is out.
        let mut buffered = true;
        loop {
            if let Err(reason) = self.process_events().await {
                return reason;
            }
            self.release_held();
            if let Err(reason) = self.flush().await {
                return reason;
            }
            if std::mem::take(&mut buffered) {
                if let Err(reason) = self.handle_received() {
                    return reason;
                }
                continue;
            }
            let timer = self.session.poll_timeout();
            let sleep = tokio::time::sleep(Duration::from_millis(
                timer.map_or(u64::MAX / 4, |at| at.saturating_sub(unix_time_ms())),
            ));
            let can_take = self.can_take();
            tokio::select! {
                biased;
                _ = &mut self.kick => return CloseReason::Takeover,
                _ = self.shutdown.changed() => return CloseReason::Shutdown,
                read = self.io.read_more() => match read {
                    Ok(0) => return CloseReason::PeerClosed,
                    Ok(_) => {
                        if let Err(reason) = self.handle_received() {
                            return reason;
                        }
                    }
                    Err(reason) => return reason,
                },
                delivery = self.inbox.recv(), if can_take => {
                    if let Some(delivery) = delivery {
                        self.take(delivery);
                        self.take_more();
                    }
                }
                () = sleep, if timer.is_some() => self.session.handle_timeout(unix_time_ms()),
            }
        }
    }

    /// Hands every whole packet in the read buffer to the session.
    fn handle_received(&mut self) -> Result<(), CloseReason> {
        let now = unix_time_ms();
        while let Some(packet) = self.io.decode()? {
            self.session
                .handle_packet(packet, now)
                .map_err(CloseReason::Protocol)?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), CloseReason> {
        let limit = self.shared.config.limits.backpressure_timeout;
        let session = &mut self.session;
        self.io
            .write_all(std::iter::from_fn(|| session.poll_transmit()), limit)
            .await
    }

    /// Whether the session can take another delivery without its queue overflowing.
    fn can_take(&self) -> bool {
        self.held.is_none() && self.has_room_for(0)
    }

    fn has_room_for(&self, size: usize) -> bool {
        let config = self.session.config();
        let queued = self.session.queued_len();
        queued == 0
            || (queued < config.max_queued_messages
                && self.session.queued_bytes().saturating_add(size) <= config.max_queued_bytes)
    }

    fn take(&mut self, delivery: Delivery) {
        let qos = delivery.message.qos.min(delivery.granted);
        if qos != QoS::AtMostOnce && !self.has_room_for(delivery.message.size()) {
            self.held = Some(delivery);
            return;
        }
        let outcome =
            self.session
                .handle_delivery(delivery.message, delivery.granted, unix_time_ms());
        self.count(outcome);
    }

    fn take_more(&mut self) {
        for _ in 0..INBOX_BATCH {
            if self.held.is_some() {
                return;
            }
            match self.inbox.try_recv() {
                Ok(delivery) => self.take(delivery),
                Err(_) => return,
            }
        }
    }

    fn release_held(&mut self) {
        if let Some(delivery) = self.held.take() {
            self.take(delivery);
            if self.held.is_none() {
                self.take_more();
            }
        }
    }

    fn count(&self, outcome: DeliveryOutcome) {
        if matches!(
            outcome,
            DeliveryOutcome::Dropped(_) | DeliveryOutcome::Refused
        ) {
            self.shared
                .metrics
                .session_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Acts on everything the session reported.
    async fn process_events(&mut self) -> Result<(), CloseReason> {
        while let Some(event) = self.session.poll_event() {
            let now = unix_time_ms();
            match event {
                Event::Publish { publish, token } => {
                    if let Err(error) = TopicName::validate(&publish.topic) {
                        return Err(CloseReason::InvalidTopic(error));
                    }
                    let message = Arc::new(Message {
                        id: self.shared.router.next_id(),
                        topic: publish.topic,
                        payload: publish.payload,
                        qos: publish.qos,
                        retain: false,
                        published_at_ms: now,
                    });
                    let bridged = match &self.shared.bridge {
                        Some(bridge) => {
                            let clean = !self.session.is_persistent();
                            bridge.outflow(&message, &self.client, clean).await
                        }
                        None => None,
                    };
                    self.shared.router.route(
                        &message,
                        publish.retain,
                        Some(&self.client),
                        now,
                        &mut self.scratch,
                    );
                    self.wait_blocked().await?;
                    if let Some(done) = bridged {
                        // ack_after = "rocketmq": acknowledged only once RocketMQ took it.
                        self.serve_until(done)
                            .await?
                            .map_err(|_| CloseReason::Shutdown)?;
                    }
                    if let Some(token) = token {
                        self.session.inbound_done(token);
                    }
                }
                Event::Subscribe { packet_id, filters } => {
                    let router = &self.shared.router;
                    let mut granted = Vec::with_capacity(filters.len());
                    let mut retained = Vec::new();
                    for entry in filters {
                        let qos = router.subscribe(&self.client, &entry.filter, entry.qos);
                        match qos {
                            Some(qos) => retained.extend(
                                router
                                    .retained_for(&entry.filter)
                                    .into_iter()
                                    .map(|m| (m, qos)),
                            ),
                            None => {
                                tracing::info!(client = %self.client, filter = %entry.filter, "subscription refused");
                                self.shared
                                    .metrics
                                    .subscriptions_refused
                                    .fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        granted.push((entry.filter, qos));
                    }
                    self.session.subscribed(packet_id, granted);
                    for (message, qos) in retained {
                        let outcome = self.session.handle_delivery(message, qos, now);
                        self.count(outcome);
                    }
                }
                Event::Unsubscribe { packet_id, filters } => {
                    for filter in &filters {
                        self.shared.router.unsubscribe(&self.client, filter);
                    }
                    self.session.unsubscribed(packet_id, filters);
                }
                Event::Disconnect => {
                    self.shared
                        .status
                        .emit(self.events.on_disconnect_packet(now));
                    return Err(CloseReason::Disconnect);
                }
                Event::KeepAliveExpired => return Err(CloseReason::KeepAlive),
                Event::Acknowledged { .. } => {}
                Event::Dropped { .. } => {
                    self.shared
                        .metrics
                        .session_dropped
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    /// Waits until every blocked delivery of the last routed message is in its receiver's
    /// inbox, serving this connection's own inbox and writes meanwhile, but not its socket.
    async fn wait_blocked(&mut self) -> Result<(), CloseReason> {
        if self.scratch.blocked.is_empty() {
            return Ok(());
        }
        self.shared
            .metrics
            .backpressure_waits
            .fetch_add(1, Ordering::Relaxed);
        let give_up = tokio::time::Instant::now() + self.shared.config.limits.backpressure_timeout;
        while let Some(Blocked {
            client,
            inbox,
            delivery,
        }) = self.scratch.blocked.pop()
        {
            let reserve = tokio::time::timeout_at(give_up, inbox.reserve_owned());
            match self.serve_until(reserve).await? {
                Ok(Ok(permit)) => {
                    permit.send(delivery);
                    self.shared
                        .metrics
                        .messages_delivered
                        .fetch_add(1, Ordering::Relaxed);
                }
                // The receiver closed meanwhile: its session is in the registry now.
                Ok(Err(_)) => {
                    let again = self
                        .shared
                        .router
                        .deliver(&client, delivery, unix_time_ms());
                    self.scratch.blocked.extend(again);
                }
                Err(_) => {
                    self.scratch.blocked.clear();
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
                _ = &mut self.kick => return Err(CloseReason::Takeover),
                _ = self.shutdown.changed() => return Err(CloseReason::Shutdown),
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
        let shared = self.shared.clone();
        let now = unix_time_ms();
        reason.report(&self.client, &shared.metrics);
        let subscriptions = if self.session.is_persistent() {
            Vec::new()
        } else {
            self.session.subscriptions().to_vec()
        };
        let will = self.session.connection_lost(now);
        shared.router.unsubscribe_all(&self.client, &subscriptions);
        // Nothing new enters the inbox; what is in it goes into the session before it is
        // handed over, so a persistent session keeps every message promised to it.
        self.inbox.close();
        let mut inbox = self.inbox;
        let held = self.held.take();
        let mut dropped = 0;
        shared
            .router
            .registry
            .detach(&self.client, self.channel, self.session, |session| {
                for delivery in held
                    .into_iter()
                    .chain(std::iter::from_fn(|| inbox.try_recv().ok()))
                {
                    let _ = session.handle_delivery(delivery.message, delivery.granted, now);
                }
                dropped = drain_drops(session);
            });
        shared
            .metrics
            .session_dropped
            .fetch_add(dropped, Ordering::Relaxed);
        shared.status.emit(self.events.finish(now));
        if let (Some(will), true) = (will, reason.publishes_will()) {
            publish_will(&shared, &self.client, will, now).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.io.stream.shutdown()).await;
    }
}

/// Publishes a will like any other message, waiting (bounded) for full receivers.
async fn publish_will(shared: &Shared, client: &Arc<str>, will: mqgate_codec::LastWill, now: u64) {
    if TopicName::validate(&will.topic).is_err() {
        return;
    }
    shared
        .metrics
        .wills_published
        .fetch_add(1, Ordering::Relaxed);
    let message = Arc::new(Message {
        id: shared.router.next_id(),
        topic: will.topic,
        payload: will.payload,
        qos: will.qos,
        retain: false,
        published_at_ms: now,
    });
    let mut scratch = RouteScratch::default();
    shared
        .router
        .route(&message, will.retain, Some(client), now, &mut scratch);
    let limit = shared.config.limits.backpressure_timeout;
    if !shared.router.settle(scratch.blocked, limit).await {
        tracing::warn!(%client, "will not delivered to every receiver: receivers stayed full");
    }
}
