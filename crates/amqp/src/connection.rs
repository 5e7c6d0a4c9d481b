//! The server side of one AMQP 0-9-1 connection, as a state machine with no I/O.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use hashbrown::HashMap;

use crate::auth::{Authenticator, Login};
use crate::channel::{Assembly, Channel, ChannelState, Consumer};
use crate::event::{CloseReason, ConfirmTag, DeliverError, Event, Message};
use crate::frame::{
    put_header_frame, put_method_frame, write_body_head, Frame, FrameDecoder, FRAME_END,
    FRAME_MIN_SIZE,
};
use crate::method::{class, CloseArgs, Method};
use crate::props::ContentHeader;
use crate::table::{FieldTable, FieldValue};
use crate::{DecodeError, EncodeError, ReplyCode};

/// The limits and names a connection works with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The only virtual host clients may open (the cloud SDKs: `MQTT`).
    pub virtual_host: String,
    /// The highest channel number proposed in `connection.tune`.
    pub channel_max: u16,
    /// The largest frame proposed in `connection.tune` (at least 4096).
    pub frame_max: u32,
    /// The heartbeat interval proposed, in seconds (0 = none); the client's answer is used.
    pub heartbeat: u16,
    /// The largest message body accepted; a larger one closes its channel (406).
    pub max_message_size: u64,
    /// Body bytes one connection may hold for messages still arriving, over all its
    /// channels; past it the connection is closed (506). Bounds what a client can make the
    /// server buffer by starting large messages on many channels.
    pub max_pending_content: u64,
    /// Consumers one channel may hold; one more closes the channel (406).
    pub max_consumers_per_channel: usize,
    /// Time from the first byte to `connection.open-ok`, in milliseconds.
    pub handshake_timeout_ms: u64,
    /// How long to wait for the client's `close-ok` after the server's `connection.close`.
    pub close_timeout_ms: u64,
    /// `product` in the server properties.
    pub product: String,
    /// `version` in the server properties.
    pub version: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            virtual_host: "MQTT".to_owned(),
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
            max_message_size: 1024 * 1024,
            max_pending_content: 8 * 1024 * 1024,
            max_consumers_per_channel: 1024,
            handshake_timeout_ms: 10_000,
            close_timeout_ms: 3_000,
            product: "mqgate".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the protocol header.
    Header,
    /// `connection.start` sent.
    StartOk,
    /// `connection.tune` sent.
    TuneOk,
    /// Tuned; waiting for `connection.open`.
    Open,
    Running,
    /// The server sent `connection.close`; waiting for `close-ok` until `deadline`.
    Closing {
        deadline: u64,
    },
    Closed,
}

/// A connection error: closes the connection with `code` (a channel exception closes
/// only the channel: see [`Connection::channel_error`]).
struct Fault {
    code: ReplyCode,
    text: String,
    cause: (u16, u16),
}

fn fault(code: ReplyCode, text: impl Into<String>, cause: (u16, u16)) -> Fault {
    Fault {
        code,
        text: text.into(),
        cause,
    }
}

/// The server side of one AMQP 0-9-1 connection.
///
/// Bytes from the socket go in with [`feed`](Self::feed); frames to write come out of
/// [`poll_transmit`](Self::poll_transmit), things for the broker out of
/// [`poll_event`](Self::poll_event). Time is a millisecond count the driver passes in
/// (monotonic); [`poll_timeout`](Self::poll_timeout) says when to call
/// [`on_timeout`](Self::on_timeout). Nothing a client sends makes it panic: a protocol
/// violation closes the channel or the connection with the reply code AMQP 0-9-1 names.
pub struct Connection<A: Authenticator> {
    config: Config,
    auth: A,
    principal: Option<A::Principal>,
    client_properties: FieldTable,
    phase: Phase,
    rx: BytesMut,
    decoder: FrameDecoder,
    out: Outbox,
    events: VecDeque<Event>,
    channels: HashMap<u16, Channel>,
    channel_max: u16,
    /// Negotiated heartbeat in milliseconds (0 = none).
    heartbeat_ms: u64,
    handshake_deadline: u64,
    last_rx: u64,
    last_tx: u64,
    close_reason: Option<CloseReason>,
    next_ctag: u64,
    /// Body bytes held for messages still arriving, over all channels.
    pending_content: u64,
    /// The last channel incarnation handed out.
    epoch: u64,
}

impl<A: Authenticator> Connection<A> {
    /// A connection accepted at `now`, that will log clients in with `auth`.
    pub fn new(config: Config, auth: A, now: u64) -> Self {
        let frame_max = config.frame_max.max(FRAME_MIN_SIZE);
        Self {
            handshake_deadline: now.saturating_add(config.handshake_timeout_ms),
            channel_max: config.channel_max,
            config: Config {
                frame_max,
                ..config
            },
            auth,
            principal: None,
            client_properties: FieldTable::new(),
            phase: Phase::Header,
            rx: BytesMut::new(),
            decoder: FrameDecoder::new(frame_max),
            out: Outbox::default(),
            events: VecDeque::new(),
            channels: HashMap::new(),
            heartbeat_ms: 0,
            last_rx: now,
            last_tx: now,
            close_reason: None,
            next_ctag: 0,
            pending_content: 0,
            epoch: 0,
        }
    }

    /// Who logged in, once the login was accepted.
    pub fn principal(&self) -> Option<&A::Principal> {
        self.principal.as_ref()
    }

    /// The client properties of `connection.start-ok` (empty before it).
    pub fn client_properties(&self) -> &FieldTable {
        &self.client_properties
    }

    /// The connection is open: the handshake finished and no close began.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Running
    }

    /// The connection is over ([`Event::Closed`] was emitted): write out what
    /// [`poll_transmit`](Self::poll_transmit) still has, then close the socket.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Channels open now (opened by the client and not closed yet).
    pub fn open_channels(&self) -> usize {
        self.channels.len()
    }

    /// The negotiated frame size limit.
    pub fn frame_max(&self) -> u32 {
        self.decoder.frame_max()
    }

    /// The negotiated heartbeat interval in seconds (0 = none).
    pub fn heartbeat_secs(&self) -> u64 {
        self.heartbeat_ms / 1000
    }

    /// The buffer the driver may read socket bytes into directly (then call
    /// [`process`](Self::process)), instead of [`feed`](Self::feed).
    pub fn receive_buffer(&mut self) -> &mut BytesMut {
        &mut self.rx
    }

    /// Takes in bytes read from the socket at `now` and processes them.
    pub fn feed(&mut self, data: &[u8], now: u64) {
        if self.phase == Phase::Closed {
            return;
        }
        self.rx.extend_from_slice(data);
        self.process(now);
    }

    /// Processes what is in the receive buffer (after reading into
    /// [`receive_buffer`](Self::receive_buffer)). Idempotent when nothing new arrived.
    pub fn process(&mut self, now: u64) {
        if self.phase == Phase::Closed {
            self.rx.clear();
            return;
        }
        if self.rx.is_empty() {
            return;
        }
        self.last_rx = now;
        if self.phase == Phase::Header {
            match FrameDecoder::decode_protocol_header(&mut self.rx) {
                Ok(None) => return,
                Ok(Some(())) => self.send_start(),
                Err(_) => {
                    self.push_raw(&crate::frame::PROTOCOL_HEADER);
                    self.finish(CloseReason::BadProtocolHeader);
                    return;
                }
            }
        }
        while !matches!(self.phase, Phase::Closed) {
            match self.decoder.decode(&mut self.rx) {
                Ok(None) => break,
                Ok(Some(frame)) => {
                    if let Err(f) = self.handle_frame(frame, now) {
                        self.connection_error(f, now);
                    }
                }
                Err(e) => {
                    self.decode_error(e, now);
                    break;
                }
            }
        }
    }

    /// The next bytes to write, in order: small frames batched, message bodies as slices of
    /// their buffers. Drain it after every input.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.poll()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`on_timeout`](Self::on_timeout) is due next (`None`: no timer).
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.phase {
            Phase::Closed => None,
            Phase::Closing { deadline } => Some(deadline),
            Phase::Running if self.heartbeat_ms > 0 => Some(
                self.last_tx
                    .saturating_add(self.heartbeat_ms / 2)
                    .min(self.last_rx.saturating_add(2 * self.heartbeat_ms)),
            ),
            Phase::Running => None,
            Phase::Open if self.heartbeat_ms > 0 => Some(
                self.handshake_deadline
                    .min(self.last_tx.saturating_add(self.heartbeat_ms / 2)),
            ),
            _ => Some(self.handshake_deadline),
        }
    }

    /// Runs the timers due at `now`: heartbeats sent and expected, the handshake and close
    /// deadlines.
    pub fn on_timeout(&mut self, now: u64) {
        match self.phase {
            Phase::Closed => {}
            Phase::Closing { deadline } => {
                if now >= deadline {
                    self.finish_pending();
                }
            }
            Phase::Running => {
                if self.heartbeat_ms > 0 {
                    if now >= self.last_rx.saturating_add(2 * self.heartbeat_ms) {
                        self.release_channels();
                        self.finish(CloseReason::HeartbeatTimeout);
                        return;
                    }
                    if now >= self.last_tx.saturating_add(self.heartbeat_ms / 2) {
                        self.push_raw(&[8, 0, 0, 0, 0, 0, 0, FRAME_END]);
                        self.last_tx = now;
                    }
                }
            }
            _ => {
                if now >= self.handshake_deadline {
                    self.finish(CloseReason::HandshakeTimeout);
                } else if self.phase == Phase::Open
                    && self.heartbeat_ms > 0
                    && now >= self.last_tx.saturating_add(self.heartbeat_ms / 2)
                {
                    self.push_raw(&[8, 0, 0, 0, 0, 0, 0, FRAME_END]);
                    self.last_tx = now;
                }
            }
        }
    }

    // ---- driver actions -----------------------------------------------------------------

    /// The socket is gone (end of stream or an I/O error): every channel is released and
    /// the connection ends with [`Event::Closed`]. A close the server had begun (a refused
    /// login, a protocol error) keeps its reason.
    pub fn connection_lost(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        self.release_channels();
        let reason = self
            .close_reason
            .take()
            .unwrap_or(CloseReason::ConnectionLost);
        self.finish(reason);
    }

    /// Accepts a consumer announced by [`Event::Consume`]: sends `consume-ok` (unless the
    /// client asked for no answer). Deliveries may follow. Decide while handling the event:
    /// a late call for a channel that closed meanwhile is ignored, but one for a channel
    /// whose number was reopened with a consumer of the same client-chosen tag would accept
    /// that new consumer.
    pub fn accept_consume(&mut self, channel: u16, consumer_tag: &str, now: u64) {
        let Some(ch) = self.open_channel(channel) else {
            return;
        };
        let Some(c) = ch.consumers.get_mut(consumer_tag) else {
            return;
        };
        if c.active {
            return;
        }
        c.active = true;
        self.send_method(
            channel,
            &Method::BasicConsumeOk {
                consumer_tag: consumer_tag.to_owned(),
            },
            now,
        );
    }

    /// Refuses a consumer announced by [`Event::Consume`]: closes its channel with `code`
    /// (404 for an unknown queue, 403 for no permission, ...). The channel's
    /// [`Event::ChannelClosed`] follows.
    pub fn refuse_consume(
        &mut self,
        channel: u16,
        consumer_tag: &str,
        code: ReplyCode,
        text: &str,
        now: u64,
    ) {
        let known = self
            .open_channel(channel)
            .is_some_and(|ch| ch.consumers.contains_key(consumer_tag));
        if known {
            self.channel_error(
                channel,
                code,
                format!("{} - {text}", code.name()),
                (class::BASIC, 20),
                now,
            );
        }
    }

    /// Answers a publish of a channel in confirm mode: `basic.ack` (the message is safe) or
    /// `basic.nack` (refused). Ignored if that channel is gone, even if its number was opened
    /// again since.
    pub fn confirm(&mut self, tag: ConfirmTag, ok: bool, now: u64) {
        let ConfirmTag {
            channel,
            delivery_tag,
            epoch,
        } = tag;
        if self
            .open_channel(channel)
            .is_none_or(|ch| ch.epoch != epoch)
        {
            return;
        }
        let m = if ok {
            Method::BasicAck {
                delivery_tag,
                multiple: false,
            }
        } else {
            Method::BasicNack {
                delivery_tag,
                multiple: false,
                requeue: false,
            }
        };
        self.send_method(channel, &m, now);
    }

    /// The consumer may take a delivery now.
    pub fn can_deliver(&self, channel: u16, consumer_tag: &str) -> bool {
        self.is_open()
            && self.channels.get(&channel).is_some_and(|ch| {
                ch.state == ChannelState::Open
                    && ch
                        .consumers
                        .get(consumer_tag)
                        .is_some_and(|c| ch.has_room(c))
            })
    }

    /// Sends `message` to a consumer: `basic.deliver`, the content header and the body in
    /// frames of the negotiated size (slices of `message.body`, not copies). Returns the
    /// delivery tag, which comes back in [`Event::Ack`] or [`Event::Nack`] (not for a
    /// no-ack consumer). When the window is full the message is not sent and the consumer
    /// gets an [`Event::Ready`] once it opens; so does a consumer whose window this delivery
    /// filled.
    pub fn deliver(
        &mut self,
        channel: u16,
        consumer_tag: &str,
        message: &Message,
        redelivered: bool,
        now: u64,
    ) -> Result<u64, DeliverError> {
        if !self.is_open() {
            return Err(DeliverError::ConnectionClosed);
        }
        let frame_max = self.decoder.frame_max();
        let ch = self
            .channels
            .get_mut(&channel)
            .filter(|ch| ch.state == ChannelState::Open)
            .ok_or(DeliverError::ChannelClosed)?;
        let room = match ch.consumers.get(consumer_tag) {
            Some(c) if c.active => ch.has_room(c),
            _ => return Err(DeliverError::NoConsumer),
        };
        if !room {
            if let Some(c) = ch.consumers.get_mut(consumer_tag) {
                c.waiting = true;
            }
            return Err(DeliverError::WindowFull);
        }
        let tag = ch.delivery_seq + 1;
        let method = Method::BasicDeliver {
            consumer_tag: consumer_tag.to_owned(),
            delivery_tag: tag,
            redelivered,
            exchange: message.exchange.clone(),
            routing_key: message.routing_key.clone(),
        };
        self.out.content(channel, &method, message, frame_max)?;
        ch.delivery_seq = tag;
        if let Some(c) = ch.consumers.get_mut(consumer_tag) {
            if !c.no_ack {
                c.unacked += 1;
                ch.unacked.insert(tag, consumer_tag.to_owned());
            }
        }
        // A driver that checks can_deliver instead of trying must hear when the window it
        // just filled opens again.
        let full = ch
            .consumers
            .get(consumer_tag)
            .is_some_and(|c| !ch.has_room(c));
        if let Some(c) = ch.consumers.get_mut(consumer_tag).filter(|_| full) {
            c.waiting = true;
        }
        self.last_tx = now;
        Ok(tag)
    }

    /// Returns a message to its publisher (`basic.return`, e.g. 312 NO_ROUTE for a
    /// mandatory message nobody took). With confirms, call [`confirm`](Self::confirm) after.
    pub fn return_message(
        &mut self,
        channel: u16,
        code: ReplyCode,
        text: &str,
        message: &Message,
        now: u64,
    ) -> Result<(), DeliverError> {
        if !self.is_open() {
            return Err(DeliverError::ConnectionClosed);
        }
        if self.open_channel(channel).is_none() {
            return Err(DeliverError::ChannelClosed);
        }
        let method = Method::BasicReturn {
            reply_code: code.code(),
            reply_text: text.to_owned(),
            exchange: message.exchange.clone(),
            routing_key: message.routing_key.clone(),
        };
        let frame_max = self.decoder.frame_max();
        self.out.content(channel, &method, message, frame_max)?;
        self.last_tx = now;
        Ok(())
    }

    /// Cancels a consumer from the server side (`basic.cancel`, when the client announced
    /// `consumer_cancel_notify`; otherwise its channel is closed with 404). Its unacknowledged
    /// deliveries stay outstanding.
    pub fn cancel_consumer(&mut self, channel: u16, consumer_tag: &str, now: u64) {
        let notify = self.client_capability("consumer_cancel_notify");
        let Some(ch) = self.open_channel(channel) else {
            return;
        };
        if ch.consumers.remove(consumer_tag).is_none() {
            return;
        }
        if notify {
            self.send_method(
                channel,
                &Method::BasicCancel {
                    consumer_tag: consumer_tag.to_owned(),
                    nowait: true,
                },
                now,
            );
        } else {
            self.channel_error(
                channel,
                ReplyCode::NotFound,
                "NOT_FOUND - consumer cancelled by the server".to_owned(),
                (0, 0),
                now,
            );
        }
    }

    /// Closes a channel from the server side with `code` (a channel exception).
    pub fn close_channel(&mut self, channel: u16, code: ReplyCode, text: &str, now: u64) {
        if self.open_channel(channel).is_some() {
            self.channel_error(channel, code, text.to_owned(), (0, 0), now);
        }
    }

    /// Closes the connection from the server side (320 CONNECTION_FORCED for a shutdown):
    /// every channel is released at once, then the client's `close-ok` is awaited.
    pub fn close(&mut self, code: ReplyCode, text: &str, now: u64) {
        match self.phase {
            Phase::Closed | Phase::Closing { .. } => {}
            Phase::Header => self.finish(CloseReason::Server {
                code,
                text: text.to_owned(),
            }),
            _ => self.begin_close(
                CloseArgs::new(code, text, (0, 0)),
                CloseReason::Server {
                    code,
                    text: text.to_owned(),
                },
                now,
            ),
        }
    }

    /// Tells the client that publishing is paused (`connection.blocked`, when it announced
    /// the capability) or resumed.
    pub fn set_blocked(&mut self, blocked: Option<&str>, now: u64) {
        if !self.is_open() || !self.client_capability("connection.blocked") {
            return;
        }
        let m = match blocked {
            Some(reason) => Method::ConnectionBlocked {
                reason: reason.to_owned(),
            },
            None => Method::ConnectionUnblocked,
        };
        self.send_method(0, &m, now);
    }

    // ---- frames in ----------------------------------------------------------------------

    fn handle_frame(&mut self, frame: Frame, now: u64) -> Result<(), Fault> {
        if let Phase::Closing { .. } = self.phase {
            return self.handle_while_closing(frame, now);
        }
        match frame {
            Frame::Heartbeat => Ok(()),
            Frame::Method { channel: 0, method } => self.handle_connection_method(method, now),
            _ if self.phase != Phase::Running => Err(fault(
                ReplyCode::CommandInvalid,
                "COMMAND_INVALID - the connection is not open yet",
                (0, 0),
            )),
            Frame::Method { channel, method } => self.handle_channel_method(channel, method, now),
            Frame::Header { channel, header } => self.handle_header(channel, header, now),
            Frame::Body { channel, payload } => self.handle_body(channel, payload),
        }
    }

    fn handle_while_closing(&mut self, frame: Frame, now: u64) -> Result<(), Fault> {
        match frame {
            Frame::Method {
                channel: 0,
                method: Method::ConnectionCloseOk,
            } => self.finish_pending(),
            Frame::Method {
                channel: 0,
                method: Method::ConnectionClose(_),
            } => {
                self.send_method(0, &Method::ConnectionCloseOk, now);
                self.finish_pending();
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_connection_method(&mut self, method: Method, now: u64) -> Result<(), Fault> {
        let id = method.id();
        match (self.phase, method) {
            (_, Method::ConnectionClose(args)) => {
                self.send_method(0, &Method::ConnectionCloseOk, now);
                self.release_channels();
                self.finish(CloseReason::Client {
                    reply_code: args.reply_code,
                    reply_text: args.reply_text,
                });
                Ok(())
            }
            (
                Phase::StartOk,
                Method::ConnectionStartOk {
                    client_properties,
                    mechanism,
                    response,
                    locale: _,
                },
            ) => {
                self.login(client_properties, &mechanism, &response, now);
                Ok(())
            }
            (
                Phase::TuneOk,
                Method::ConnectionTuneOk {
                    channel_max,
                    frame_max,
                    heartbeat,
                },
            ) => self.tune(channel_max, frame_max, heartbeat),
            (Phase::Open, Method::ConnectionOpen { virtual_host }) => {
                if virtual_host != self.config.virtual_host {
                    let text = format!("NOT_ALLOWED - access to vhost '{virtual_host}' refused");
                    self.begin_close(
                        CloseArgs::new(ReplyCode::NotAllowed, text.clone(), id),
                        CloseReason::Refused {
                            code: ReplyCode::NotAllowed,
                            text,
                        },
                        now,
                    );
                    return Ok(());
                }
                self.send_method(0, &Method::ConnectionOpenOk, now);
                self.phase = Phase::Running;
                self.events.push_back(Event::Opened { virtual_host });
                Ok(())
            }
            // Answers to server methods this connection does not send, or does not wait for.
            (Phase::Running, Method::ConnectionCloseOk) => Ok(()),
            (_, Method::Other { .. }) => Err(fault(
                ReplyCode::NotImplemented,
                format!(
                    "NOT_IMPLEMENTED - method {}.{} is not supported",
                    id.0, id.1
                ),
                id,
            )),
            (_, m) if m.id().0 != class::CONNECTION => Err(fault(
                ReplyCode::CommandInvalid,
                format!(
                    "COMMAND_INVALID - method {}.{} on channel 0 (only connection methods)",
                    id.0, id.1
                ),
                id,
            )),
            _ => Err(fault(
                ReplyCode::CommandInvalid,
                format!(
                    "COMMAND_INVALID - method {}.{} not expected now",
                    id.0, id.1
                ),
                id,
            )),
        }
    }

    fn login(&mut self, client_properties: FieldTable, mechanism: &str, response: &[u8], now: u64) {
        let cause = (class::CONNECTION, 11);
        // PLAIN: [authzid] NUL authcid NUL passwd.
        let mut parts = response.split(|&b| b == 0);
        let parsed = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(_), Some(user), Some(pass), None) if mechanism == "PLAIN" => {
                std::str::from_utf8(user)
                    .ok()
                    .zip(std::str::from_utf8(pass).ok())
            }
            _ => None,
        };
        let decision = match parsed {
            Some((username, password)) => self.auth.authenticate(&Login {
                mechanism,
                username,
                password,
                client_properties: &client_properties,
            }),
            None => Err(crate::auth::Refusal(format!(
                "Login was refused using authentication mechanism {mechanism}"
            ))),
        };
        self.client_properties = client_properties;
        match decision {
            Ok(principal) => {
                self.principal = Some(principal);
                self.phase = Phase::TuneOk;
                self.send_method(
                    0,
                    &Method::ConnectionTune {
                        channel_max: self.config.channel_max,
                        frame_max: self.config.frame_max,
                        heartbeat: self.config.heartbeat,
                    },
                    now,
                );
            }
            Err(refusal) => {
                let text = format!("ACCESS_REFUSED - {}", refusal.0);
                self.begin_close(
                    CloseArgs::new(ReplyCode::AccessRefused, text.clone(), cause),
                    CloseReason::Refused {
                        code: ReplyCode::AccessRefused,
                        text,
                    },
                    now,
                );
            }
        }
    }

    fn tune(&mut self, channel_max: u16, frame_max: u32, heartbeat: u16) -> Result<(), Fault> {
        let cause = (class::CONNECTION, 31);
        let ours = self.config.frame_max;
        let frame_max = if frame_max == 0 { ours } else { frame_max };
        if frame_max < FRAME_MIN_SIZE || frame_max > ours {
            return Err(fault(
                ReplyCode::NotAllowed,
                format!("NOT_ALLOWED - frame_max {frame_max} outside {FRAME_MIN_SIZE}..={ours}"),
                cause,
            ));
        }
        let channel_max = if channel_max == 0 {
            self.config.channel_max
        } else {
            channel_max
        };
        if channel_max > self.config.channel_max {
            return Err(fault(
                ReplyCode::NotAllowed,
                format!(
                    "NOT_ALLOWED - channel_max {channel_max} above {}",
                    self.config.channel_max
                ),
                cause,
            ));
        }
        self.channel_max = channel_max;
        self.decoder = FrameDecoder::new(frame_max);
        self.heartbeat_ms = u64::from(heartbeat) * 1000;
        self.phase = Phase::Open;
        Ok(())
    }

    fn handle_channel_method(
        &mut self,
        channel: u16,
        method: Method,
        now: u64,
    ) -> Result<(), Fault> {
        let id = method.id();
        if id.0 == class::CONNECTION {
            return Err(fault(
                ReplyCode::CommandInvalid,
                format!("COMMAND_INVALID - connection method on channel {channel}"),
                id,
            ));
        }
        if let Method::ChannelOpen = method {
            if channel > self.channel_max || self.channels.contains_key(&channel) {
                return Err(fault(
                    ReplyCode::ChannelError,
                    format!("CHANNEL_ERROR - channel {channel} cannot be opened"),
                    id,
                ));
            }
            self.epoch += 1;
            self.channels.insert(channel, Channel::new(self.epoch));
            self.send_method(channel, &Method::ChannelOpenOk, now);
            return Ok(());
        }
        let Some(ch) = self.channels.get_mut(&channel) else {
            return Err(fault(
                ReplyCode::ChannelError,
                format!("CHANNEL_ERROR - expected 'channel.open' on channel {channel}"),
                id,
            ));
        };
        if ch.state == ChannelState::Closing {
            match method {
                Method::ChannelCloseOk => {
                    self.channels.remove(&channel);
                }
                Method::ChannelClose(_) => self.send_method(channel, &Method::ChannelCloseOk, now),
                _ => {}
            }
            return Ok(());
        }
        if ch.content.is_some() {
            return Err(fault(
                ReplyCode::UnexpectedFrame,
                format!(
                    "UNEXPECTED_FRAME - method {}.{} while content was expected",
                    id.0, id.1
                ),
                id,
            ));
        }
        match method {
            Method::ChannelClose(_) => {
                self.send_method(channel, &Method::ChannelCloseOk, now);
                self.release_channel(channel);
            }
            Method::ChannelCloseOk
            | Method::ChannelFlowOk { .. }
            | Method::BasicCancelOk { .. } => {}
            Method::ChannelFlow { active } => {
                ch.flow = active;
                if !active {
                    // Every consumer hears when deliveries may resume.
                    for c in ch.consumers.values_mut() {
                        c.waiting = true;
                    }
                }
                let ready = ch.wake();
                self.send_method(channel, &Method::ChannelFlowOk { active }, now);
                self.push_ready(channel, ready);
            }
            Method::ConfirmSelect { nowait } => {
                ch.confirm = true;
                if !nowait {
                    self.send_method(channel, &Method::ConfirmSelectOk, now);
                }
            }
            Method::BasicQos {
                prefetch_size,
                prefetch_count,
                global,
            } => {
                if prefetch_size != 0 {
                    return Err(fault(
                        ReplyCode::NotImplemented,
                        format!("NOT_IMPLEMENTED - prefetch_size!=0 ({prefetch_size})"),
                        id,
                    ));
                }
                if global {
                    ch.channel_prefetch = prefetch_count;
                } else {
                    ch.consumer_prefetch = prefetch_count;
                }
                let ready = ch.wake();
                self.send_method(channel, &Method::BasicQosOk, now);
                self.push_ready(channel, ready);
            }
            Method::BasicConsume {
                queue,
                consumer_tag,
                no_local: _,
                no_ack,
                exclusive,
                nowait,
                arguments,
            } => {
                let consumer_tag = if consumer_tag.is_empty() {
                    loop {
                        self.next_ctag += 1;
                        let t = format!("amq.ctag-{}", self.next_ctag);
                        if !ch.consumers.contains_key(&t) {
                            break t;
                        }
                    }
                } else if ch.consumers.contains_key(&consumer_tag) {
                    return Err(fault(
                        ReplyCode::NotAllowed,
                        format!("NOT_ALLOWED - attempt to reuse consumer tag '{consumer_tag}'"),
                        id,
                    ));
                } else {
                    consumer_tag
                };
                if ch.consumers.len() >= self.config.max_consumers_per_channel {
                    let text = format!(
                        "PRECONDITION_FAILED - at most {} consumers per channel",
                        self.config.max_consumers_per_channel
                    );
                    self.channel_error(channel, ReplyCode::PreconditionFailed, text, id, now);
                    return Ok(());
                }
                ch.consumers.insert(
                    consumer_tag.clone(),
                    Consumer {
                        no_ack,
                        active: nowait,
                        prefetch: ch.consumer_prefetch,
                        unacked: 0,
                        waiting: false,
                    },
                );
                self.events.push_back(Event::Consume {
                    channel,
                    consumer_tag,
                    queue,
                    arguments,
                    no_ack,
                    exclusive,
                });
            }
            Method::BasicCancel {
                consumer_tag,
                nowait,
            } => {
                if ch.consumers.remove(&consumer_tag).is_some() {
                    self.events.push_back(Event::Cancel {
                        channel,
                        consumer_tag: consumer_tag.clone(),
                    });
                }
                if !nowait {
                    self.send_method(channel, &Method::BasicCancelOk { consumer_tag }, now);
                }
            }
            Method::BasicPublish {
                exchange,
                routing_key,
                mandatory,
                immediate,
            } => {
                if immediate {
                    return Err(fault(
                        ReplyCode::NotImplemented,
                        "NOT_IMPLEMENTED - immediate=true",
                        id,
                    ));
                }
                let delivery_tag = ch.confirm.then(|| {
                    ch.publish_seq += 1;
                    ch.publish_seq
                });
                ch.content = Some(Assembly {
                    delivery_tag,
                    exchange,
                    routing_key,
                    mandatory,
                    header: None,
                    first: None,
                    rest: None,
                    received: 0,
                });
            }
            Method::BasicAck {
                delivery_tag,
                multiple,
            } => self.settle(channel, delivery_tag, multiple, None, id, now),
            Method::BasicNack {
                delivery_tag,
                multiple,
                requeue,
            } => self.settle(channel, delivery_tag, multiple, Some(requeue), id, now),
            Method::BasicReject {
                delivery_tag,
                requeue,
            } => self.settle(channel, delivery_tag, false, Some(requeue), id, now),
            Method::BasicRecover { .. } | Method::BasicRecoverAsync { .. } => {
                // Everything outstanding goes back to the queue (redelivering to the same
                // consumer, requeue = false, is treated the same way, as RabbitMQ does).
                if !ch.unacked.is_empty() {
                    self.settle(channel, 0, true, Some(true), id, now);
                }
                if matches!(method, Method::BasicRecover { .. }) {
                    self.send_method(channel, &Method::BasicRecoverOk, now);
                }
            }
            Method::Other {
                class_id: class::EXCHANGE | class::QUEUE,
                method_id,
                ..
            } => {
                let what = if id.0 == class::EXCHANGE {
                    "exchange"
                } else {
                    "queue"
                };
                let text = format!(
                    "ACCESS_REFUSED - {what} method {}.{method_id} refused: exchanges are \
                     MQTT topics and queues are parent topics, none is declared or bound",
                    id.0
                );
                self.channel_error(channel, ReplyCode::AccessRefused, text, id, now);
            }
            Method::Other { .. } => {
                return Err(fault(
                    ReplyCode::NotImplemented,
                    format!(
                        "NOT_IMPLEMENTED - method {}.{} is not supported",
                        id.0, id.1
                    ),
                    id,
                ))
            }
            _ => {
                return Err(fault(
                    ReplyCode::CommandInvalid,
                    format!(
                        "COMMAND_INVALID - method {}.{} is not for a server",
                        id.0, id.1
                    ),
                    id,
                ))
            }
        }
        Ok(())
    }

    /// An acknowledgement (`requeue` = `None`) or a refusal of deliveries.
    fn settle(
        &mut self,
        channel: u16,
        tag: u64,
        multiple: bool,
        requeue: Option<bool>,
        cause: (u16, u16),
        now: u64,
    ) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        let Some(tags) = ch.resolve(tag, multiple) else {
            let text = format!("PRECONDITION_FAILED - unknown delivery tag {tag}");
            self.channel_error(channel, ReplyCode::PreconditionFailed, text, cause, now);
            return;
        };
        if tags.is_empty() {
            return;
        }
        let ready = ch.settle(&tags);
        self.events.push_back(match requeue {
            None => Event::Ack {
                channel,
                delivery_tags: tags,
            },
            Some(requeue) => Event::Nack {
                channel,
                delivery_tags: tags,
                requeue,
            },
        });
        self.push_ready(channel, ready);
    }

    fn handle_header(
        &mut self,
        channel: u16,
        header: ContentHeader,
        now: u64,
    ) -> Result<(), Fault> {
        let max = self.config.max_message_size;
        let Some(ch) = self.channels.get_mut(&channel) else {
            return Err(unexpected(channel, "a content header"));
        };
        if ch.state == ChannelState::Closing {
            return Ok(());
        }
        let Some(content) = ch.content.as_mut().filter(|c| c.header.is_none()) else {
            return Err(unexpected(channel, "a content header"));
        };
        if header.body_size > max {
            let text = format!(
                "PRECONDITION_FAILED - message size {} is larger than the maximum {max}",
                header.body_size
            );
            self.channel_error(
                channel,
                ReplyCode::PreconditionFailed,
                text,
                (class::BASIC, 40),
                now,
            );
            return Ok(());
        }
        content.header = Some((header.body_size, header.properties));
        if header.body_size == 0 {
            self.complete(channel);
        }
        Ok(())
    }

    fn handle_body(&mut self, channel: u16, payload: Bytes) -> Result<(), Fault> {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return Err(unexpected(channel, "a content body"));
        };
        if ch.state == ChannelState::Closing {
            return Ok(());
        }
        let Some(content) = ch.content.as_mut() else {
            return Err(unexpected(channel, "a content body"));
        };
        let Some((size, _)) = content.header else {
            return Err(unexpected(channel, "a content body before its header"));
        };
        let len = payload.len() as u64;
        if content.received + len > size {
            return Err(fault(
                ReplyCode::FrameError,
                format!("FRAME_ERROR - content body larger than the announced {size} bytes"),
                (class::BASIC, 40),
            ));
        }
        if self.pending_content + len > self.config.max_pending_content {
            return Err(fault(
                ReplyCode::ResourceError,
                format!(
                    "RESOURCE_ERROR - more than {} bytes of unfinished messages",
                    self.config.max_pending_content
                ),
                (class::BASIC, 40),
            ));
        }
        self.pending_content += len;
        content.push(payload);
        if content.received == size {
            self.complete(channel);
        }
        Ok(())
    }

    fn complete(&mut self, channel: u16) {
        let Some((epoch, mut content)) = self
            .channels
            .get_mut(&channel)
            .and_then(|ch| Some((ch.epoch, ch.content.take()?)))
        else {
            return;
        };
        self.pending_content = self.pending_content.saturating_sub(content.received);
        let body = content.take_body();
        let properties = content.header.take().map(|(_, p)| p).unwrap_or_default();
        self.events.push_back(Event::Publish {
            channel,
            confirm: content.delivery_tag.map(|delivery_tag| ConfirmTag {
                channel,
                delivery_tag,
                epoch,
            }),
            exchange: content.exchange,
            routing_key: content.routing_key,
            mandatory: content.mandatory,
            properties,
            body,
        });
    }

    // ---- errors and closing -------------------------------------------------------------

    /// A channel exception: `channel.close` with `code`, the channel's resources released
    /// at once; frames on it are dropped until the client's `close-ok`.
    fn channel_error(
        &mut self,
        channel: u16,
        code: ReplyCode,
        text: String,
        cause: (u16, u16),
        now: u64,
    ) {
        self.send_method(
            channel,
            &Method::ChannelClose(CloseArgs::new(code, text, cause)),
            now,
        );
        if self.release_channel(channel) {
            let mut closing = Channel::new(0);
            closing.state = ChannelState::Closing;
            self.channels.insert(channel, closing);
        }
    }

    fn connection_error(&mut self, f: Fault, now: u64) {
        let reason = CloseReason::Protocol {
            code: f.code,
            text: f.text.clone(),
        };
        self.begin_close(CloseArgs::new(f.code, f.text, f.cause), reason, now);
    }

    fn decode_error(&mut self, e: DecodeError, now: u64) {
        let code = e.reply_code();
        let text = format!("{} - {e}", code.name());
        if matches!(self.phase, Phase::Closing { .. }) {
            self.finish_pending();
            return;
        }
        self.send_method(
            0,
            &Method::ConnectionClose(CloseArgs::new(code, text.clone(), (0, 0))),
            now,
        );
        self.release_channels();
        self.rx.clear();
        // After a malformed frame the stream cannot be read further, so the connection ends
        // here; after a method that did not parse, the client's close-ok is awaited.
        let reason = CloseReason::Protocol { code, text };
        if code == ReplyCode::FrameError {
            self.finish(reason);
        } else {
            self.close_reason = Some(reason);
            self.phase = Phase::Closing {
                deadline: now.saturating_add(self.config.close_timeout_ms),
            };
        }
    }

    fn begin_close(&mut self, args: CloseArgs, reason: CloseReason, now: u64) {
        self.send_method(0, &Method::ConnectionClose(args), now);
        self.release_channels();
        self.close_reason = Some(reason);
        self.phase = Phase::Closing {
            deadline: now.saturating_add(self.config.close_timeout_ms),
        };
    }

    /// Every channel's [`Event::ChannelClosed`], in channel order.
    fn release_channels(&mut self) {
        let mut ids: Vec<u16> = self.channels.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.release_channel(id);
        }
    }

    /// Removes a channel; an open one gets its [`Event::ChannelClosed`] and the body bytes
    /// of a message it was receiving are let go. Whether the channel existed.
    fn release_channel(&mut self, channel: u16) -> bool {
        let Some(mut ch) = self.channels.remove(&channel) else {
            return false;
        };
        if let Some(content) = &ch.content {
            self.pending_content = self.pending_content.saturating_sub(content.received);
        }
        if ch.state == ChannelState::Open {
            self.events.push_back(Event::ChannelClosed {
                channel,
                consumers: ch.consumers.drain().map(|(t, _)| t).collect(),
                unacked: std::mem::take(&mut ch.unacked).into_keys().collect(),
            });
        }
        true
    }

    fn finish_pending(&mut self) {
        let reason = self.close_reason.take().unwrap_or(CloseReason::Protocol {
            code: ReplyCode::InternalError,
            text: String::new(),
        });
        self.finish(reason);
    }

    fn finish(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.rx.clear();
        self.events.push_back(Event::Closed { reason });
    }

    // ---- frames out ---------------------------------------------------------------------

    fn send_start(&mut self) {
        let capabilities = FieldTable::new()
            .with("publisher_confirms", FieldValue::Bool(true))
            .with("basic.nack", FieldValue::Bool(true))
            .with("consumer_cancel_notify", FieldValue::Bool(true))
            .with("connection.blocked", FieldValue::Bool(true))
            .with("authentication_failure_close", FieldValue::Bool(true))
            .with("per_consumer_qos", FieldValue::Bool(true));
        let server_properties = FieldTable::new()
            .with("product", FieldValue::long_str(self.config.product.clone()))
            .with("version", FieldValue::long_str(self.config.version.clone()))
            .with("platform", FieldValue::long_str("Rust"))
            .with("capabilities", FieldValue::Table(capabilities));
        self.phase = Phase::StartOk;
        let m = Method::ConnectionStart {
            server_properties,
            mechanisms: Bytes::from_static(b"PLAIN"),
            locales: Bytes::from_static(b"en_US"),
        };
        self.send_method(0, &m, self.last_rx);
    }

    fn send_method(&mut self, channel: u16, method: &Method, now: u64) {
        let mark = self.out.tx.len();
        if put_method_frame(&mut self.out.tx, channel, method).is_err() {
            // Only names the client sent come back in server methods, and those arrived as
            // short strings, so they fit; a reply text is cut to fit below.
            self.out.tx.truncate(mark);
            if let Method::ConnectionClose(a) | Method::ChannelClose(a) = method {
                let mut a = a.clone();
                a.reply_text = truncate_utf8(&a.reply_text, 255).to_owned();
                let m = match method {
                    Method::ChannelClose(_) => Method::ChannelClose(a),
                    _ => Method::ConnectionClose(a),
                };
                self.send_method(channel, &m, now);
            }
            return;
        }
        self.last_tx = now;
    }

    fn push_raw(&mut self, bytes: &[u8]) {
        self.out.tx.extend_from_slice(bytes);
    }

    fn push_ready(&mut self, channel: u16, ready: Vec<String>) {
        for consumer_tag in ready {
            self.events.push_back(Event::Ready {
                channel,
                consumer_tag,
            });
        }
    }

    fn open_channel(&mut self, channel: u16) -> Option<&mut Channel> {
        if self.phase != Phase::Running {
            return None;
        }
        self.channels
            .get_mut(&channel)
            .filter(|ch| ch.state == ChannelState::Open)
    }

    fn client_capability(&self, name: &str) -> bool {
        match self.client_properties.get("capabilities") {
            Some(FieldValue::Table(t)) => matches!(t.get(name), Some(FieldValue::Bool(true))),
            _ => false,
        }
    }
}

fn unexpected(channel: u16, what: &str) -> Fault {
    fault(
        ReplyCode::UnexpectedFrame,
        format!("UNEXPECTED_FRAME - {what} on channel {channel} without a method that carries it"),
        (0, 0),
    )
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// What is to be written, in order: small frames accumulate in `tx`; a large body slice
/// goes to `chunks` after what `tx` held before it.
#[derive(Default)]
struct Outbox {
    tx: BytesMut,
    chunks: VecDeque<Bytes>,
}

impl Outbox {
    fn poll(&mut self) -> Option<Bytes> {
        if let Some(c) = self.chunks.pop_front() {
            return Some(c);
        }
        (!self.tx.is_empty()).then(|| self.tx.split().freeze())
    }

    /// Writes a method with content: the method frame, the header frame, then the body in
    /// frames of at most `frame_max` (large pieces as slices of the body, not copies).
    fn content(
        &mut self,
        channel: u16,
        method: &Method,
        message: &Message,
        frame_max: u32,
    ) -> Result<(), EncodeError> {
        let (tx, body) = (&mut self.tx, &message.body);
        let mark = tx.len();
        let head = put_method_frame(tx, channel, method)
            .and_then(|()| put_header_frame(tx, channel, body.len() as u64, &message.properties));
        if let Err(e) = head {
            tx.truncate(mark);
            return Err(e);
        }
        let max_payload = (frame_max - crate::frame::FRAME_OVERHEAD) as usize;
        let mut at = 0;
        while at < body.len() {
            let end = (at + max_payload).min(body.len());
            write_body_head(tx, channel, end - at)?;
            if end - at < 512 {
                // Small pieces are cheaper to copy than to send as a buffer of their own.
                tx.put_slice(&body[at..end]);
            } else {
                self.chunks.push_back(tx.split().freeze());
                self.chunks.push_back(body.slice(at..end));
            }
            tx.put_u8(FRAME_END);
            at = end;
        }
        Ok(())
    }
}
