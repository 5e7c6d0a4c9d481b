//! What a connection tells its driver, and what the driver hands it.

use bytes::Bytes;

use crate::props::BasicProperties;
use crate::table::FieldTable;
use crate::ReplyCode;

/// A message the broker delivers to a consumer (or returns to a publisher).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// The exchange it was published to (the cloud SDKs: the MQTT topic).
    pub exchange: String,
    /// Its routing key (the cloud SDKs: the MQTT topic).
    pub routing_key: String,
    /// Its properties (the cloud SDKs read `message_id` and three headers).
    pub properties: BasicProperties,
    /// The body; sent as slices of this buffer, never copied.
    pub body: Bytes,
}

/// Names one publish of a channel in confirm mode, for
/// [`Connection::confirm`](crate::Connection::confirm). It also names the channel's
/// incarnation: a confirm that arrives after its channel was closed (and its number perhaps
/// opened again) is dropped, and cannot acknowledge a message of the new channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfirmTag {
    pub(crate) channel: u16,
    pub(crate) delivery_tag: u64,
    pub(crate) epoch: u64,
}

impl ConfirmTag {
    /// The channel.
    pub fn channel(&self) -> u16 {
        self.channel
    }

    /// The publish's number on its channel, counted from 1 after `confirm.select`.
    pub fn delivery_tag(&self) -> u64 {
        self.delivery_tag
    }
}

/// Something the driver must act on; drain them with
/// [`Connection::poll_event`](crate::Connection::poll_event) after every input.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// Publish, the largest variant, is also the most frequent: boxing its properties would cost
// an allocation per message to save queue space for the rare small events.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// The handshake finished: the client is logged in
    /// ([`Connection::principal`](crate::Connection::principal)) and opened `virtual_host`.
    Opened {
        /// The virtual host.
        virtual_host: String,
    },
    /// The client published a message. With `confirm` (a channel in confirm mode), answer
    /// it with [`Connection::confirm`](crate::Connection::confirm) once the message is safe,
    /// or refused.
    Publish {
        /// The channel.
        channel: u16,
        /// What to confirm, on a channel in confirm mode.
        confirm: Option<ConfirmTag>,
        /// The exchange (the cloud SDKs: the full MQTT topic).
        exchange: String,
        /// The routing key (the cloud SDKs: the same topic).
        routing_key: String,
        /// The client wants the message back (`basic.return`) if it reaches nobody:
        /// [`Connection::return_message`](crate::Connection::return_message).
        mandatory: bool,
        /// The properties.
        properties: BasicProperties,
        /// The body: a slice of the receive buffer when it came in one frame.
        body: Bytes,
    },
    /// The client wants to consume `queue`. Answer with
    /// [`Connection::accept_consume`](crate::Connection::accept_consume) (then deliver) or
    /// [`Connection::refuse_consume`](crate::Connection::refuse_consume).
    Consume {
        /// The channel.
        channel: u16,
        /// The consumer tag (chosen by the server when the client left it empty).
        consumer_tag: String,
        /// The queue (the cloud SDKs: a parent topic, or `STATUS`).
        queue: String,
        /// The arguments (the status consumer: `GROUP_ID`).
        arguments: FieldTable,
        /// Deliveries need no acknowledgement.
        no_ack: bool,
        /// The client asks to be the queue's only consumer.
        exclusive: bool,
    },
    /// The client cancelled a consumer: deliver nothing more to it. Its unacknowledged
    /// deliveries stay outstanding (they may still be acknowledged).
    Cancel {
        /// The channel.
        channel: u16,
        /// The consumer.
        consumer_tag: String,
    },
    /// The client acknowledged deliveries (`multiple` is already expanded).
    Ack {
        /// The channel.
        channel: u16,
        /// The delivery tags, ascending.
        delivery_tags: Vec<u64>,
    },
    /// The client refused deliveries (`basic.nack`, `basic.reject`, or `basic.recover`,
    /// which requeues everything outstanding).
    Nack {
        /// The channel.
        channel: u16,
        /// The delivery tags, ascending.
        delivery_tags: Vec<u64>,
        /// Deliver them again (to any consumer); `false` = drop or dead-letter.
        requeue: bool,
    },
    /// A consumer whose window was full (filled by a delivery, or found full by one) or
    /// whose channel was paused may take deliveries again.
    Ready {
        /// The channel.
        channel: u16,
        /// The consumer.
        consumer_tag: String,
    },
    /// A channel is gone (closed by the client, by an error, or with its connection): its
    /// consumers are cancelled and its unacknowledged deliveries are to be requeued.
    ChannelClosed {
        /// The channel.
        channel: u16,
        /// Its consumers at the time.
        consumers: Vec<String>,
        /// Its unacknowledged delivery tags, ascending.
        unacked: Vec<u64>,
    },
    /// The connection is over: write what [`Connection::poll_transmit`](crate::Connection::poll_transmit)
    /// still has, then close the socket. Every channel had its
    /// [`Event::ChannelClosed`] before this.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed it with `connection.close`.
    Client {
        /// Its reply code (200 = normal).
        reply_code: u16,
        /// Its reply text.
        reply_text: String,
    },
    /// The client broke the protocol; the server closed with this code.
    Protocol {
        /// The reply code sent.
        code: ReplyCode,
        /// The reply text sent.
        text: String,
    },
    /// The login was refused (403), or the virtual host (530).
    Refused {
        /// The reply code sent.
        code: ReplyCode,
        /// The reply text sent.
        text: String,
    },
    /// The driver closed it ([`Connection::close`](crate::Connection::close)).
    Server {
        /// The reply code sent.
        code: ReplyCode,
        /// The reply text sent.
        text: String,
    },
    /// The socket ended before the close handshake finished
    /// ([`Connection::connection_lost`](crate::Connection::connection_lost)); when the server
    /// had begun a close, the reason it gave is kept instead.
    ConnectionLost,
    /// Nothing came from the client for two heartbeat intervals.
    HeartbeatTimeout,
    /// The handshake did not finish in time.
    HandshakeTimeout,
    /// The client did not speak AMQP 0-9-1 (the server answered with its protocol header).
    BadProtocolHeader,
}

/// Why [`Connection::deliver`](crate::Connection::deliver) did not send a message; the
/// message is still the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliverError {
    /// The connection is not open (not yet, or no more).
    #[error("connection not open")]
    ConnectionClosed,
    /// No such open channel.
    #[error("channel not open")]
    ChannelClosed,
    /// No such consumer on the channel, or its `consume-ok` was not sent yet.
    #[error("no such consumer")]
    NoConsumer,
    /// The prefetch window is full or the client paused the channel: wait for
    /// [`Event::Ready`].
    #[error("prefetch window full or channel paused")]
    WindowFull,
    /// A name is longer than 255 bytes, or a header table does not encode.
    #[error("message does not encode: {0}")]
    Encode(#[from] crate::EncodeError),
}
