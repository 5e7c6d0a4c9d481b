//! Methods: the payload of a method frame, a class id, a method id and arguments.
//!
//! Every method the cloud SDKs send, and every method a server sends them, is modelled with
//! its arguments. Reserved arguments (tickets, `insist`, `known-hosts`, ...) are read and
//! dropped, and written as their zero values. The rest of AMQP 0-9-1 (exchange and queue
//! management, `basic.get`, transactions, `access`) is known by id and kept as
//! [`Method::Other`] with its raw arguments, so a server can refuse it by name.

use bytes::{BufMut, Bytes, BytesMut};

use crate::table::FieldTable;
use crate::wire::{bit, pack_bits, put_long_bytes, put_short_str, Reader};
use crate::{DecodeError, EncodeError, ReplyCode};

/// Class ids.
pub mod class {
    /// `connection`.
    pub const CONNECTION: u16 = 10;
    /// `channel`.
    pub const CHANNEL: u16 = 20;
    /// `access` (reserved in 0-9-1).
    pub const ACCESS: u16 = 30;
    /// `exchange`.
    pub const EXCHANGE: u16 = 40;
    /// `queue`.
    pub const QUEUE: u16 = 50;
    /// `basic`.
    pub const BASIC: u16 = 60;
    /// `confirm` (RabbitMQ's publisher confirms).
    pub const CONFIRM: u16 = 85;
    /// `tx`.
    pub const TX: u16 = 90;
}

/// The arguments of `connection.close` and `channel.close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseArgs {
    /// Why (200 for a normal close).
    pub reply_code: u16,
    /// Human-readable text.
    pub reply_text: String,
    /// The class of the method that caused the close (0 if none).
    pub class_id: u16,
    /// The method that caused the close (0 if none).
    pub method_id: u16,
}

impl CloseArgs {
    /// A close for `code` with `text`, naming the failing method (`(0, 0)` for none).
    pub fn new(code: ReplyCode, text: impl Into<String>, cause: (u16, u16)) -> Self {
        Self {
            reply_code: code.code(),
            reply_text: text.into(),
            class_id: cause.0,
            method_id: cause.1,
        }
    }
}

/// One AMQP 0-9-1 method with its arguments.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Method {
    /// `connection.start` (server): version 0-9, properties, mechanisms and locales.
    ConnectionStart {
        /// Server properties (product, version, capabilities, ...).
        server_properties: FieldTable,
        /// Space-separated SASL mechanisms.
        mechanisms: Bytes,
        /// Space-separated locales.
        locales: Bytes,
    },
    /// `connection.start-ok` (client).
    ConnectionStartOk {
        /// Client properties (the SDKs put `signKey` here).
        client_properties: FieldTable,
        /// The chosen SASL mechanism.
        mechanism: String,
        /// The SASL response (PLAIN: `\0user\0password`).
        response: Bytes,
        /// The chosen locale.
        locale: String,
    },
    /// `connection.secure` (server): a SASL challenge.
    ConnectionSecure {
        /// The challenge.
        challenge: Bytes,
    },
    /// `connection.secure-ok` (client).
    ConnectionSecureOk {
        /// The response.
        response: Bytes,
    },
    /// `connection.tune` (server) proposes limits.
    ConnectionTune {
        /// Highest channel number (0 = no limit).
        channel_max: u16,
        /// Largest frame in bytes (0 = no limit).
        frame_max: u32,
        /// Heartbeat interval in seconds (0 = none).
        heartbeat: u16,
    },
    /// `connection.tune-ok` (client) settles them.
    ConnectionTuneOk {
        /// Highest channel number.
        channel_max: u16,
        /// Largest frame in bytes.
        frame_max: u32,
        /// Heartbeat interval in seconds.
        heartbeat: u16,
    },
    /// `connection.open` (client) names the virtual host.
    ConnectionOpen {
        /// The virtual host (the SDKs: `MQTT`).
        virtual_host: String,
    },
    /// `connection.open-ok` (server).
    ConnectionOpenOk,
    /// `connection.close` (either side).
    ConnectionClose(CloseArgs),
    /// `connection.close-ok` (either side).
    ConnectionCloseOk,
    /// `connection.blocked` (server, RabbitMQ): publishing is paused.
    ConnectionBlocked {
        /// Why.
        reason: String,
    },
    /// `connection.unblocked` (server, RabbitMQ).
    ConnectionUnblocked,
    /// `channel.open` (client).
    ChannelOpen,
    /// `channel.open-ok` (server).
    ChannelOpenOk,
    /// `channel.flow` (either side): pause or resume deliveries.
    ChannelFlow {
        /// `true` = resume.
        active: bool,
    },
    /// `channel.flow-ok`.
    ChannelFlowOk {
        /// The state now in force.
        active: bool,
    },
    /// `channel.close` (either side).
    ChannelClose(CloseArgs),
    /// `channel.close-ok` (either side).
    ChannelCloseOk,
    /// `confirm.select` (client): publisher confirms on this channel.
    ConfirmSelect {
        /// No `select-ok` wanted.
        nowait: bool,
    },
    /// `confirm.select-ok` (server).
    ConfirmSelectOk,
    /// `basic.qos` (client): the prefetch window.
    BasicQos {
        /// Window in bytes (0 = no limit).
        prefetch_size: u32,
        /// Window in messages (0 = no limit).
        prefetch_count: u16,
        /// RabbitMQ: `true` = the whole channel, `false` = each consumer started afterwards.
        global: bool,
    },
    /// `basic.qos-ok` (server).
    BasicQosOk,
    /// `basic.consume` (client).
    BasicConsume {
        /// The queue (the SDKs: a parent topic, or `STATUS`).
        queue: String,
        /// The consumer tag ("" = the server chooses).
        consumer_tag: String,
        /// Do not deliver this connection's own messages.
        no_local: bool,
        /// Deliveries need no acknowledgement.
        no_ack: bool,
        /// The only consumer of the queue.
        exclusive: bool,
        /// No `consume-ok` wanted.
        nowait: bool,
        /// Arguments (the status consumer: `GROUP_ID`).
        arguments: FieldTable,
    },
    /// `basic.consume-ok` (server).
    BasicConsumeOk {
        /// The consumer tag in force.
        consumer_tag: String,
    },
    /// `basic.cancel` (either side: the server's needs `consumer_cancel_notify`).
    BasicCancel {
        /// The consumer.
        consumer_tag: String,
        /// No `cancel-ok` wanted.
        nowait: bool,
    },
    /// `basic.cancel-ok`.
    BasicCancelOk {
        /// The consumer.
        consumer_tag: String,
    },
    /// `basic.publish` (client), followed by content.
    BasicPublish {
        /// The exchange (the SDKs: the full MQTT topic).
        exchange: String,
        /// The routing key (the SDKs: the same topic).
        routing_key: String,
        /// Return the message if it reaches no queue.
        mandatory: bool,
        /// Return the message if no consumer takes it at once.
        immediate: bool,
    },
    /// `basic.return` (server), followed by content.
    BasicReturn {
        /// Why (312 no route, ...).
        reply_code: u16,
        /// Human-readable text.
        reply_text: String,
        /// The exchange it was published to.
        exchange: String,
        /// Its routing key.
        routing_key: String,
    },
    /// `basic.deliver` (server), followed by content.
    BasicDeliver {
        /// The consumer.
        consumer_tag: String,
        /// The channel's delivery tag (from 1).
        delivery_tag: u64,
        /// Delivered before and not acknowledged.
        redelivered: bool,
        /// The exchange it was published to.
        exchange: String,
        /// Its routing key.
        routing_key: String,
    },
    /// `basic.ack` (client for deliveries, server for confirms).
    BasicAck {
        /// The delivery tag (0 with `multiple` = everything outstanding).
        delivery_tag: u64,
        /// Up to and including the tag.
        multiple: bool,
    },
    /// `basic.reject` (client).
    BasicReject {
        /// The delivery tag.
        delivery_tag: u64,
        /// Deliver again.
        requeue: bool,
    },
    /// `basic.nack` (client for deliveries, server for confirms).
    BasicNack {
        /// The delivery tag.
        delivery_tag: u64,
        /// Up to and including the tag.
        multiple: bool,
        /// Deliver again.
        requeue: bool,
    },
    /// `basic.recover-async` (client, deprecated).
    BasicRecoverAsync {
        /// Requeue rather than redeliver to the same consumer.
        requeue: bool,
    },
    /// `basic.recover` (client): every unacknowledged delivery again.
    BasicRecover {
        /// Requeue rather than redeliver to the same consumer.
        requeue: bool,
    },
    /// `basic.recover-ok` (server).
    BasicRecoverOk,
    /// A method AMQP 0-9-1 defines that this crate does not model (exchange and queue
    /// management, `basic.get`, `tx`, `access`), with its raw arguments.
    Other {
        /// The class id.
        class_id: u16,
        /// The method id.
        method_id: u16,
        /// The arguments as received.
        arguments: Bytes,
    },
}

/// The (class, method) ids AMQP 0-9-1 and RabbitMQ define that [`Method::Other`] stands for.
const OTHER_KNOWN: &[(u16, &[u16])] = &[
    (class::CONNECTION, &[70, 71]), // update-secret (RabbitMQ)
    (class::ACCESS, &[10, 11]),
    (class::EXCHANGE, &[10, 11, 20, 21, 30, 31, 40, 51]),
    (class::QUEUE, &[10, 11, 20, 21, 30, 31, 40, 41, 50, 51]),
    (class::BASIC, &[70, 71, 72]), // get, get-ok, get-empty
    (class::TX, &[10, 11, 20, 21, 30, 31]),
];

impl Method {
    /// The (class id, method id) pair.
    pub fn id(&self) -> (u16, u16) {
        use class::*;
        match self {
            Self::ConnectionStart { .. } => (CONNECTION, 10),
            Self::ConnectionStartOk { .. } => (CONNECTION, 11),
            Self::ConnectionSecure { .. } => (CONNECTION, 20),
            Self::ConnectionSecureOk { .. } => (CONNECTION, 21),
            Self::ConnectionTune { .. } => (CONNECTION, 30),
            Self::ConnectionTuneOk { .. } => (CONNECTION, 31),
            Self::ConnectionOpen { .. } => (CONNECTION, 40),
            Self::ConnectionOpenOk => (CONNECTION, 41),
            Self::ConnectionClose(_) => (CONNECTION, 50),
            Self::ConnectionCloseOk => (CONNECTION, 51),
            Self::ConnectionBlocked { .. } => (CONNECTION, 60),
            Self::ConnectionUnblocked => (CONNECTION, 61),
            Self::ChannelOpen => (CHANNEL, 10),
            Self::ChannelOpenOk => (CHANNEL, 11),
            Self::ChannelFlow { .. } => (CHANNEL, 20),
            Self::ChannelFlowOk { .. } => (CHANNEL, 21),
            Self::ChannelClose(_) => (CHANNEL, 40),
            Self::ChannelCloseOk => (CHANNEL, 41),
            Self::ConfirmSelect { .. } => (CONFIRM, 10),
            Self::ConfirmSelectOk => (CONFIRM, 11),
            Self::BasicQos { .. } => (BASIC, 10),
            Self::BasicQosOk => (BASIC, 11),
            Self::BasicConsume { .. } => (BASIC, 20),
            Self::BasicConsumeOk { .. } => (BASIC, 21),
            Self::BasicCancel { .. } => (BASIC, 30),
            Self::BasicCancelOk { .. } => (BASIC, 31),
            Self::BasicPublish { .. } => (BASIC, 40),
            Self::BasicReturn { .. } => (BASIC, 50),
            Self::BasicDeliver { .. } => (BASIC, 60),
            Self::BasicAck { .. } => (BASIC, 80),
            Self::BasicReject { .. } => (BASIC, 90),
            Self::BasicRecoverAsync { .. } => (BASIC, 100),
            Self::BasicRecover { .. } => (BASIC, 110),
            Self::BasicRecoverOk => (BASIC, 111),
            Self::BasicNack { .. } => (BASIC, 120),
            Self::Other {
                class_id,
                method_id,
                ..
            } => (*class_id, *method_id),
        }
    }

    /// Content (a header frame and body frames) follows this method.
    pub fn has_content(&self) -> bool {
        matches!(
            self,
            Self::BasicPublish { .. } | Self::BasicReturn { .. } | Self::BasicDeliver { .. }
        ) || self.id() == (class::BASIC, 71)
    }

    /// Reads a method frame's payload.
    pub fn decode(payload: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let class_id = r.u16()?;
        let method_id = r.u16()?;
        let m = decode_args(&mut r, class_id, method_id)?;
        r.finish()?;
        Ok(m)
    }

    /// Writes the method frame's payload: the ids, then the arguments.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let (class_id, method_id) = self.id();
        out.put_u16(class_id);
        out.put_u16(method_id);
        match self {
            Self::ConnectionStart {
                server_properties,
                mechanisms,
                locales,
            } => {
                out.put_u8(0);
                out.put_u8(9);
                server_properties.encode(out)?;
                put_long_bytes(out, mechanisms)?;
                put_long_bytes(out, locales)?;
            }
            Self::ConnectionStartOk {
                client_properties,
                mechanism,
                response,
                locale,
            } => {
                client_properties.encode(out)?;
                put_short_str(out, mechanism)?;
                put_long_bytes(out, response)?;
                put_short_str(out, locale)?;
            }
            Self::ConnectionSecure { challenge: b } | Self::ConnectionSecureOk { response: b } => {
                put_long_bytes(out, b)?;
            }
            Self::ConnectionTune {
                channel_max,
                frame_max,
                heartbeat,
            }
            | Self::ConnectionTuneOk {
                channel_max,
                frame_max,
                heartbeat,
            } => {
                out.put_u16(*channel_max);
                out.put_u32(*frame_max);
                out.put_u16(*heartbeat);
            }
            Self::ConnectionOpen { virtual_host } => {
                put_short_str(out, virtual_host)?;
                put_short_str(out, "")?;
                out.put_u8(0);
            }
            Self::ConnectionOpenOk | Self::ChannelOpen => put_short_str(out, "")?,
            Self::ConnectionClose(c) | Self::ChannelClose(c) => {
                out.put_u16(c.reply_code);
                put_short_str(out, &c.reply_text)?;
                out.put_u16(c.class_id);
                out.put_u16(c.method_id);
            }
            Self::ConnectionBlocked { reason } => put_short_str(out, reason)?,
            Self::ChannelOpenOk => put_long_bytes(out, b"")?,
            Self::ChannelFlow { active } | Self::ChannelFlowOk { active } => {
                out.put_u8(pack_bits(&[*active]));
            }
            Self::ConfirmSelect { nowait } => out.put_u8(pack_bits(&[*nowait])),
            Self::BasicQos {
                prefetch_size,
                prefetch_count,
                global,
            } => {
                out.put_u32(*prefetch_size);
                out.put_u16(*prefetch_count);
                out.put_u8(pack_bits(&[*global]));
            }
            Self::BasicConsume {
                queue,
                consumer_tag,
                no_local,
                no_ack,
                exclusive,
                nowait,
                arguments,
            } => {
                out.put_u16(0);
                put_short_str(out, queue)?;
                put_short_str(out, consumer_tag)?;
                out.put_u8(pack_bits(&[*no_local, *no_ack, *exclusive, *nowait]));
                arguments.encode(out)?;
            }
            Self::BasicConsumeOk { consumer_tag } | Self::BasicCancelOk { consumer_tag } => {
                put_short_str(out, consumer_tag)?;
            }
            Self::BasicCancel {
                consumer_tag,
                nowait,
            } => {
                put_short_str(out, consumer_tag)?;
                out.put_u8(pack_bits(&[*nowait]));
            }
            Self::BasicPublish {
                exchange,
                routing_key,
                mandatory,
                immediate,
            } => {
                out.put_u16(0);
                put_short_str(out, exchange)?;
                put_short_str(out, routing_key)?;
                out.put_u8(pack_bits(&[*mandatory, *immediate]));
            }
            Self::BasicReturn {
                reply_code,
                reply_text,
                exchange,
                routing_key,
            } => {
                out.put_u16(*reply_code);
                put_short_str(out, reply_text)?;
                put_short_str(out, exchange)?;
                put_short_str(out, routing_key)?;
            }
            Self::BasicDeliver {
                consumer_tag,
                delivery_tag,
                redelivered,
                exchange,
                routing_key,
            } => {
                put_short_str(out, consumer_tag)?;
                out.put_u64(*delivery_tag);
                out.put_u8(pack_bits(&[*redelivered]));
                put_short_str(out, exchange)?;
                put_short_str(out, routing_key)?;
            }
            Self::BasicAck {
                delivery_tag,
                multiple: flag,
            }
            | Self::BasicReject {
                delivery_tag,
                requeue: flag,
            } => {
                out.put_u64(*delivery_tag);
                out.put_u8(pack_bits(&[*flag]));
            }
            Self::BasicNack {
                delivery_tag,
                multiple,
                requeue,
            } => {
                out.put_u64(*delivery_tag);
                out.put_u8(pack_bits(&[*multiple, *requeue]));
            }
            Self::BasicRecoverAsync { requeue } | Self::BasicRecover { requeue } => {
                out.put_u8(pack_bits(&[*requeue]));
            }
            Self::ConnectionCloseOk
            | Self::ConnectionUnblocked
            | Self::ChannelCloseOk
            | Self::ConfirmSelectOk
            | Self::BasicQosOk
            | Self::BasicRecoverOk => {}
            Self::Other { arguments, .. } => out.put_slice(arguments),
        }
        Ok(())
    }
}

/// Builders for the client side of exchange and queue management, which the endpoint refuses
/// but a client needs against a general AMQP 0-9-1 broker (a load generator setting up its
/// exchange and queue on RabbitMQ). They are [`Method::Other`] with the arguments written out,
/// no table arguments, and `no-wait` off so the broker answers with its `-ok`.
impl Method {
    /// `exchange.declare` of `exchange` of type `kind` (`direct`, `fanout`, `topic`, ...),
    /// not passive, not auto-deleted, not internal.
    pub fn exchange_declare(
        exchange: &str,
        kind: &str,
        durable: bool,
    ) -> Result<Self, EncodeError> {
        let mut out = BytesMut::new();
        out.put_u16(0);
        put_short_str(&mut out, exchange)?;
        put_short_str(&mut out, kind)?;
        // passive, durable, auto-delete, internal, no-wait
        out.put_u8(pack_bits(&[false, durable, false, false, false]));
        FieldTable::new().encode(&mut out)?;
        Ok(Self::other(class::EXCHANGE, 10, out))
    }

    /// `queue.declare` of `queue`: not passive, not exclusive, not auto-deleted.
    pub fn queue_declare(queue: &str, durable: bool) -> Result<Self, EncodeError> {
        let mut out = BytesMut::new();
        out.put_u16(0);
        put_short_str(&mut out, queue)?;
        // passive, durable, exclusive, auto-delete, no-wait
        out.put_u8(pack_bits(&[false, durable, false, false, false]));
        FieldTable::new().encode(&mut out)?;
        Ok(Self::other(class::QUEUE, 10, out))
    }

    /// `queue.bind` of `queue` to `exchange` with `routing_key`.
    pub fn queue_bind(queue: &str, exchange: &str, routing_key: &str) -> Result<Self, EncodeError> {
        let mut out = BytesMut::new();
        out.put_u16(0);
        put_short_str(&mut out, queue)?;
        put_short_str(&mut out, exchange)?;
        put_short_str(&mut out, routing_key)?;
        out.put_u8(pack_bits(&[false])); // no-wait
        FieldTable::new().encode(&mut out)?;
        Ok(Self::other(class::QUEUE, 20, out))
    }

    fn other(class_id: u16, method_id: u16, arguments: BytesMut) -> Self {
        Self::Other {
            class_id,
            method_id,
            arguments: arguments.freeze(),
        }
    }
}

fn close_args(r: &mut Reader<'_>) -> Result<CloseArgs, DecodeError> {
    Ok(CloseArgs {
        reply_code: r.u16()?,
        reply_text: r.short_str()?,
        class_id: r.u16()?,
        method_id: r.u16()?,
    })
}

fn decode_args(r: &mut Reader<'_>, class_id: u16, method_id: u16) -> Result<Method, DecodeError> {
    use class::*;
    Ok(match (class_id, method_id) {
        (CONNECTION, 10) => {
            let _major = r.u8()?;
            let _minor = r.u8()?;
            Method::ConnectionStart {
                server_properties: FieldTable::read(r)?,
                mechanisms: r.long_bytes()?,
                locales: r.long_bytes()?,
            }
        }
        (CONNECTION, 11) => Method::ConnectionStartOk {
            client_properties: FieldTable::read(r)?,
            mechanism: r.short_str()?,
            response: r.long_bytes()?,
            locale: r.short_str()?,
        },
        (CONNECTION, 20) => Method::ConnectionSecure {
            challenge: r.long_bytes()?,
        },
        (CONNECTION, 21) => Method::ConnectionSecureOk {
            response: r.long_bytes()?,
        },
        (CONNECTION, 30) => Method::ConnectionTune {
            channel_max: r.u16()?,
            frame_max: r.u32()?,
            heartbeat: r.u16()?,
        },
        (CONNECTION, 31) => Method::ConnectionTuneOk {
            channel_max: r.u16()?,
            frame_max: r.u32()?,
            heartbeat: r.u16()?,
        },
        (CONNECTION, 40) => {
            let virtual_host = r.short_str()?;
            let _capabilities = r.short_str()?;
            let _insist = r.u8()?;
            Method::ConnectionOpen { virtual_host }
        }
        (CONNECTION, 41) => {
            let _known_hosts = r.short_str()?;
            Method::ConnectionOpenOk
        }
        (CONNECTION, 50) => Method::ConnectionClose(close_args(r)?),
        (CONNECTION, 51) => Method::ConnectionCloseOk,
        (CONNECTION, 60) => Method::ConnectionBlocked {
            reason: r.short_str()?,
        },
        (CONNECTION, 61) => Method::ConnectionUnblocked,
        (CHANNEL, 10) => {
            let _out_of_band = r.short_str()?;
            Method::ChannelOpen
        }
        (CHANNEL, 11) => {
            let _channel_id = r.long_bytes()?;
            Method::ChannelOpenOk
        }
        (CHANNEL, 20) => Method::ChannelFlow {
            active: bit(r.u8()?, 0),
        },
        (CHANNEL, 21) => Method::ChannelFlowOk {
            active: bit(r.u8()?, 0),
        },
        (CHANNEL, 40) => Method::ChannelClose(close_args(r)?),
        (CHANNEL, 41) => Method::ChannelCloseOk,
        (CONFIRM, 10) => Method::ConfirmSelect {
            nowait: bit(r.u8()?, 0),
        },
        (CONFIRM, 11) => Method::ConfirmSelectOk,
        (BASIC, 10) => Method::BasicQos {
            prefetch_size: r.u32()?,
            prefetch_count: r.u16()?,
            global: bit(r.u8()?, 0),
        },
        (BASIC, 11) => Method::BasicQosOk,
        (BASIC, 20) => {
            let _ticket = r.u16()?;
            let queue = r.short_str()?;
            let consumer_tag = r.short_str()?;
            let bits = r.u8()?;
            Method::BasicConsume {
                queue,
                consumer_tag,
                no_local: bit(bits, 0),
                no_ack: bit(bits, 1),
                exclusive: bit(bits, 2),
                nowait: bit(bits, 3),
                arguments: FieldTable::read(r)?,
            }
        }
        (BASIC, 21) => Method::BasicConsumeOk {
            consumer_tag: r.short_str()?,
        },
        (BASIC, 30) => Method::BasicCancel {
            consumer_tag: r.short_str()?,
            nowait: bit(r.u8()?, 0),
        },
        (BASIC, 31) => Method::BasicCancelOk {
            consumer_tag: r.short_str()?,
        },
        (BASIC, 40) => {
            let _ticket = r.u16()?;
            let exchange = r.short_str()?;
            let routing_key = r.short_str()?;
            let bits = r.u8()?;
            Method::BasicPublish {
                exchange,
                routing_key,
                mandatory: bit(bits, 0),
                immediate: bit(bits, 1),
            }
        }
        (BASIC, 50) => Method::BasicReturn {
            reply_code: r.u16()?,
            reply_text: r.short_str()?,
            exchange: r.short_str()?,
            routing_key: r.short_str()?,
        },
        (BASIC, 60) => Method::BasicDeliver {
            consumer_tag: r.short_str()?,
            delivery_tag: r.u64()?,
            redelivered: bit(r.u8()?, 0),
            exchange: r.short_str()?,
            routing_key: r.short_str()?,
        },
        (BASIC, 80) => Method::BasicAck {
            delivery_tag: r.u64()?,
            multiple: bit(r.u8()?, 0),
        },
        (BASIC, 90) => Method::BasicReject {
            delivery_tag: r.u64()?,
            requeue: bit(r.u8()?, 0),
        },
        (BASIC, 100) => Method::BasicRecoverAsync {
            requeue: bit(r.u8()?, 0),
        },
        (BASIC, 110) => Method::BasicRecover {
            requeue: bit(r.u8()?, 0),
        },
        (BASIC, 111) => Method::BasicRecoverOk,
        (BASIC, 120) => {
            let delivery_tag = r.u64()?;
            let bits = r.u8()?;
            Method::BasicNack {
                delivery_tag,
                multiple: bit(bits, 0),
                requeue: bit(bits, 1),
            }
        }
        (c, m)
            if OTHER_KNOWN
                .iter()
                .any(|(kc, ms)| *kc == c && ms.contains(&m)) =>
        {
            Method::Other {
                class_id: c,
                method_id: m,
                arguments: r.rest(),
            }
        }
        (class_id, method_id) => {
            return Err(DecodeError::UnknownMethod {
                class_id,
                method_id,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `m`, decodes it back, and returns its ids and raw arguments.
    fn round_trip(m: &Method) -> (u16, u16, Vec<u8>) {
        let mut out = BytesMut::new();
        m.encode(&mut out).unwrap();
        match Method::decode(&out.freeze()).unwrap() {
            Method::Other {
                class_id,
                method_id,
                arguments,
            } => (class_id, method_id, arguments.to_vec()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn management_builders_write_the_0_9_1_argument_layout() {
        // reserved u16, "ex", "fanout", bits (durable = bit 1), empty table
        let m = Method::exchange_declare("ex", "fanout", true).unwrap();
        let mut want = vec![0, 0, 2, b'e', b'x', 6];
        want.extend_from_slice(b"fanout");
        want.extend_from_slice(&[0b10, 0, 0, 0, 0]);
        assert_eq!(round_trip(&m), (class::EXCHANGE, 10, want));

        let m = Method::queue_declare("q", false).unwrap();
        assert_eq!(
            round_trip(&m),
            (class::QUEUE, 10, vec![0, 0, 1, b'q', 0, 0, 0, 0, 0])
        );

        let m = Method::queue_bind("q", "e", "k").unwrap();
        assert_eq!(
            round_trip(&m),
            (
                class::QUEUE,
                20,
                vec![0, 0, 1, b'q', 1, b'e', 1, b'k', 0, 0, 0, 0, 0]
            )
        );
    }

    #[test]
    fn management_builders_refuse_names_over_255_bytes() {
        let long = "x".repeat(256);
        assert!(Method::queue_declare(&long, false).is_err());
        assert!(Method::queue_bind("q", &long, "k").is_err());
        assert!(Method::exchange_declare("e", &long, false).is_err());
    }
}
