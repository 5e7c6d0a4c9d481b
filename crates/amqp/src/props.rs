//! The content header: body size and the fourteen basic properties behind a flags word.

use bytes::{BufMut, Bytes, BytesMut};

use crate::table::FieldTable;
use crate::wire::{put_short_str, Reader};
use crate::{DecodeError, EncodeError};

/// The class id of `basic`, the only class that carries content.
pub const BASIC_CLASS: u16 = 60;

/// The properties of a message (the `basic` class's content header). Absent ones are `None`
/// and cost nothing on the wire.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BasicProperties {
    /// MIME content type.
    pub content_type: Option<String>,
    /// MIME content encoding.
    pub content_encoding: Option<String>,
    /// Application headers. The cloud SDKs read `mqttParentTopic`, `mqttSecondTopic` and
    /// `clientId` from here; the Java SDK writes `seqId`.
    pub headers: Option<FieldTable>,
    /// 1 = transient, 2 = persistent.
    pub delivery_mode: Option<u8>,
    /// 0 to 9.
    pub priority: Option<u8>,
    /// Application correlation id.
    pub correlation_id: Option<String>,
    /// Address to reply to.
    pub reply_to: Option<String>,
    /// Expiration (RabbitMQ: milliseconds as decimal text).
    pub expiration: Option<String>,
    /// Message id (the SDKs: 32 hex digits).
    pub message_id: Option<String>,
    /// Seconds since the epoch.
    pub timestamp: Option<u64>,
    /// Message type name.
    pub kind: Option<String>,
    /// Creating user id.
    pub user_id: Option<String>,
    /// Creating application id.
    pub app_id: Option<String>,
    /// Reserved by AMQP 0-9-1 (kept as received).
    pub cluster_id: Option<String>,
}

// Property flag bits, highest first, in wire order.
const CONTENT_TYPE: u16 = 1 << 15;
const CONTENT_ENCODING: u16 = 1 << 14;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const PRIORITY: u16 = 1 << 11;
const CORRELATION_ID: u16 = 1 << 10;
const REPLY_TO: u16 = 1 << 9;
const EXPIRATION: u16 = 1 << 8;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
const TYPE: u16 = 1 << 5;
const USER_ID: u16 = 1 << 4;
const APP_ID: u16 = 1 << 3;
const CLUSTER_ID: u16 = 1 << 2;
/// Bits 1 and 0 (bit 0 would chain a second flags word): no basic property uses them.
const UNUSED: u16 = 0b11;

/// A content header frame's payload: which class, how large the body is, the properties.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentHeader {
    /// The body's total size in bytes, across all its body frames.
    pub body_size: u64,
    /// The properties.
    pub properties: BasicProperties,
}

impl ContentHeader {
    /// Reads a header frame's payload.
    pub fn decode(payload: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let class = r.u16()?;
        let weight = r.u16()?;
        if class != BASIC_CLASS || weight != 0 {
            return Err(DecodeError::BadContentClass(class));
        }
        let body_size = r.u64()?;
        let flags = r.u16()?;
        if flags & UNUSED != 0 {
            return Err(DecodeError::BadPropertyFlags(flags));
        }
        let s = |r: &mut Reader<'_>, bit: u16| -> Result<Option<String>, DecodeError> {
            if flags & bit != 0 {
                r.short_str().map(Some)
            } else {
                Ok(None)
            }
        };
        let properties = BasicProperties {
            content_type: s(&mut r, CONTENT_TYPE)?,
            content_encoding: s(&mut r, CONTENT_ENCODING)?,
            headers: if flags & HEADERS != 0 {
                Some(FieldTable::read(&mut r)?)
            } else {
                None
            },
            delivery_mode: if flags & DELIVERY_MODE != 0 {
                Some(r.u8()?)
            } else {
                None
            },
            priority: if flags & PRIORITY != 0 {
                Some(r.u8()?)
            } else {
                None
            },
            correlation_id: s(&mut r, CORRELATION_ID)?,
            reply_to: s(&mut r, REPLY_TO)?,
            expiration: s(&mut r, EXPIRATION)?,
            message_id: s(&mut r, MESSAGE_ID)?,
            timestamp: if flags & TIMESTAMP != 0 {
                Some(r.u64()?)
            } else {
                None
            },
            kind: s(&mut r, TYPE)?,
            user_id: s(&mut r, USER_ID)?,
            app_id: s(&mut r, APP_ID)?,
            cluster_id: s(&mut r, CLUSTER_ID)?,
        };
        r.finish()?;
        Ok(Self {
            body_size,
            properties,
        })
    }

    /// Writes the header frame's payload.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        Self::encode_parts(self.body_size, &self.properties, out)
    }

    /// [`encode`](Self::encode) from borrowed parts.
    pub(crate) fn encode_parts(
        body_size: u64,
        p: &BasicProperties,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let mut flags = 0u16;
        let mut flag = |present: bool, bit: u16| {
            if present {
                flags |= bit;
            }
        };
        flag(p.content_type.is_some(), CONTENT_TYPE);
        flag(p.content_encoding.is_some(), CONTENT_ENCODING);
        flag(p.headers.is_some(), HEADERS);
        flag(p.delivery_mode.is_some(), DELIVERY_MODE);
        flag(p.priority.is_some(), PRIORITY);
        flag(p.correlation_id.is_some(), CORRELATION_ID);
        flag(p.reply_to.is_some(), REPLY_TO);
        flag(p.expiration.is_some(), EXPIRATION);
        flag(p.message_id.is_some(), MESSAGE_ID);
        flag(p.timestamp.is_some(), TIMESTAMP);
        flag(p.kind.is_some(), TYPE);
        flag(p.user_id.is_some(), USER_ID);
        flag(p.app_id.is_some(), APP_ID);
        flag(p.cluster_id.is_some(), CLUSTER_ID);
        out.put_u16(BASIC_CLASS);
        out.put_u16(0);
        out.put_u64(body_size);
        out.put_u16(flags);
        let s = |out: &mut BytesMut, v: &Option<String>| match v {
            Some(v) => put_short_str(out, v),
            None => Ok(()),
        };
        s(out, &p.content_type)?;
        s(out, &p.content_encoding)?;
        if let Some(h) = &p.headers {
            h.encode(out)?;
        }
        if let Some(v) = p.delivery_mode {
            out.put_u8(v);
        }
        if let Some(v) = p.priority {
            out.put_u8(v);
        }
        s(out, &p.correlation_id)?;
        s(out, &p.reply_to)?;
        s(out, &p.expiration)?;
        s(out, &p.message_id)?;
        if let Some(v) = p.timestamp {
            out.put_u64(v);
        }
        s(out, &p.kind)?;
        s(out, &p.user_id)?;
        s(out, &p.app_id)?;
        s(out, &p.cluster_id)?;
        Ok(())
    }
}
