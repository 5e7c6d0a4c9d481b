//! Field tables and arrays: the typed maps of `connection.start` properties, consumer
//! arguments and message headers.
//!
//! The value types are those RabbitMQ and its clients (the Java client, Go's amqp packages,
//! pika) put on the wire. Where AMQP 0-9-1's own grammar disagrees with them, the clients
//! win, because they are the peers: `s` is a signed 16-bit integer (not a short string) and
//! `l` a signed 64-bit integer. The grammar's other spellings are read too: `U` (signed
//! 16-bit) as [`FieldValue::I16`] and `L` (signed 64-bit) as [`FieldValue::I64`]; they are
//! written back with the clients' tags.

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::{put_long_bytes, put_short_str, Reader};
use crate::{DecodeError, EncodeError};

/// How deep tables and arrays may nest inside each other (a table at top level is depth 1).
/// Deeper input is refused with [`DecodeError::TooDeep`], so a hostile frame cannot
/// exhaust the stack.
pub const MAX_TABLE_DEPTH: usize = 32;

/// One value of a field table or array.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `t`: a boolean octet (any non-zero octet reads as true).
    Bool(bool),
    /// `b`: signed 8-bit.
    I8(i8),
    /// `B`: unsigned 8-bit.
    U8(u8),
    /// `s` (and the grammar's `U`): signed 16-bit.
    I16(i16),
    /// `u`: unsigned 16-bit.
    U16(u16),
    /// `I`: signed 32-bit.
    I32(i32),
    /// `i`: unsigned 32-bit.
    U32(u32),
    /// `l` (and the grammar's `L`): signed 64-bit. The Java client writes a `long` so.
    I64(i64),
    /// `f`: IEEE-754 single.
    F32(f32),
    /// `d`: IEEE-754 double.
    F64(f64),
    /// `D`: a decimal, `value` × 10^-`scale`.
    Decimal {
        /// Decimal places.
        scale: u8,
        /// The unscaled value (signed, as RabbitMQ and its clients read it).
        value: i32,
    },
    /// `S`: a long string, any bytes (usually UTF-8 text).
    LongStr(Bytes),
    /// `x`: a byte array (RabbitMQ's extension).
    Bytes(Bytes),
    /// `T`: a timestamp, seconds since the epoch.
    Timestamp(u64),
    /// `F`: a nested table.
    Table(FieldTable),
    /// `A`: an array of values.
    Array(Vec<FieldValue>),
    /// `V`: no value.
    Void,
}

impl FieldValue {
    /// A long string holding `s`.
    pub fn long_str(s: impl Into<String>) -> Self {
        Self::LongStr(Bytes::from(s.into()))
    }

    /// The text of a long string (`S`) value when it is UTF-8, else `None`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::LongStr(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    fn tag(&self) -> u8 {
        match self {
            Self::Bool(_) => b't',
            Self::I8(_) => b'b',
            Self::U8(_) => b'B',
            Self::I16(_) => b's',
            Self::U16(_) => b'u',
            Self::I32(_) => b'I',
            Self::U32(_) => b'i',
            Self::I64(_) => b'l',
            Self::F32(_) => b'f',
            Self::F64(_) => b'd',
            Self::Decimal { .. } => b'D',
            Self::LongStr(_) => b'S',
            Self::Bytes(_) => b'x',
            Self::Timestamp(_) => b'T',
            Self::Table(_) => b'F',
            Self::Array(_) => b'A',
            Self::Void => b'V',
        }
    }

    fn encode(&self, out: &mut BytesMut, depth: usize) -> Result<(), EncodeError> {
        out.put_u8(self.tag());
        match self {
            Self::Bool(v) => out.put_u8(u8::from(*v)),
            Self::I8(v) => out.put_i8(*v),
            Self::U8(v) => out.put_u8(*v),
            Self::I16(v) => out.put_i16(*v),
            Self::U16(v) => out.put_u16(*v),
            Self::I32(v) => out.put_i32(*v),
            Self::U32(v) => out.put_u32(*v),
            Self::I64(v) => out.put_i64(*v),
            Self::F32(v) => out.put_f32(*v),
            Self::F64(v) => out.put_f64(*v),
            Self::Decimal { scale, value } => {
                out.put_u8(*scale);
                out.put_i32(*value);
            }
            Self::LongStr(b) | Self::Bytes(b) => put_long_bytes(out, b)?,
            Self::Timestamp(v) => out.put_u64(*v),
            Self::Table(t) => t.encode_at(out, depth + 1)?,
            Self::Array(a) => encode_array(a, out, depth + 1)?,
            Self::Void => {}
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>, depth: usize) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            b't' => Self::Bool(r.u8()? != 0),
            b'b' => Self::I8(i8::from_be_bytes([r.u8()?])),
            b'B' => Self::U8(r.u8()?),
            b's' | b'U' => Self::I16(i16::from_be_bytes(r.u16()?.to_be_bytes())),
            b'u' => Self::U16(r.u16()?),
            b'I' => Self::I32(i32::from_be_bytes(r.u32()?.to_be_bytes())),
            b'i' => Self::U32(r.u32()?),
            b'l' | b'L' => Self::I64(i64::from_be_bytes(r.u64()?.to_be_bytes())),
            b'f' => Self::F32(f32::from_bits(r.u32()?)),
            b'd' => Self::F64(f64::from_bits(r.u64()?)),
            b'D' => Self::Decimal {
                scale: r.u8()?,
                value: i32::from_be_bytes(r.u32()?.to_be_bytes()),
            },
            b'S' => Self::LongStr(r.long_bytes()?),
            b'x' => Self::Bytes(r.long_bytes()?),
            b'T' => Self::Timestamp(r.u64()?),
            b'F' => Self::Table(FieldTable::decode_at(r, depth + 1)?),
            b'A' => Self::Array(decode_array(r, depth + 1)?),
            b'V' => Self::Void,
            other => return Err(DecodeError::UnknownFieldType(other)),
        })
    }
}

/// A field table: named values in the order they came. Keys are short strings; a repeated
/// key is kept as sent (lookups find the first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldTable {
    entries: Vec<(String, FieldValue)>,
}

impl FieldTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `key` = `value` (a builder: `FieldTable::new().with("a", v)`).
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: FieldValue) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets `key` to `value`: replaces the first entry of that name, or appends one.
    pub fn insert(&mut self, key: impl Into<String>, value: FieldValue) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// The first value named `key`.
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the table: its 32-bit byte length, then each key and value.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_at(out, 1)
    }

    fn encode_at(&self, out: &mut BytesMut, depth: usize) -> Result<(), EncodeError> {
        if depth > MAX_TABLE_DEPTH {
            return Err(EncodeError::TooDeep);
        }
        with_length_prefix(out, |out| {
            for (k, v) in &self.entries {
                put_short_str(out, k)?;
                v.encode(out, depth)?;
            }
            Ok(())
        })
    }

    /// Reads a table from the start of `payload`; fails on trailing bytes.
    pub fn decode(payload: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let t = Self::read(&mut r)?;
        r.finish()?;
        Ok(t)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::decode_at(r, 1)
    }

    fn decode_at(r: &mut Reader<'_>, depth: usize) -> Result<Self, DecodeError> {
        if depth > MAX_TABLE_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let body = r.long_bytes()?;
        let mut inner = Reader::new(&body);
        let mut entries = Vec::new();
        while !inner.at_end() {
            let key = inner.short_str()?;
            let value = FieldValue::decode(&mut inner, depth)?;
            entries.push((key, value));
        }
        Ok(Self { entries })
    }
}

impl<K: Into<String>> FromIterator<(K, FieldValue)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (K, FieldValue)>>(iter: I) -> Self {
        let mut t = Self::new();
        for (k, v) in iter {
            t.entries.push((k.into(), v));
        }
        t
    }
}

fn encode_array(a: &[FieldValue], out: &mut BytesMut, depth: usize) -> Result<(), EncodeError> {
    if depth > MAX_TABLE_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    with_length_prefix(out, |out| a.iter().try_for_each(|v| v.encode(out, depth)))
}

fn decode_array(r: &mut Reader<'_>, depth: usize) -> Result<Vec<FieldValue>, DecodeError> {
    if depth > MAX_TABLE_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let body = r.long_bytes()?;
    let mut inner = Reader::new(&body);
    let mut values = Vec::new();
    while !inner.at_end() {
        values.push(FieldValue::decode(&mut inner, depth)?);
    }
    Ok(values)
}

/// Writes a 32-bit length placeholder, then `f`'s output, then patches the length in.
fn with_length_prefix(
    out: &mut BytesMut,
    f: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let at = out.len();
    out.put_u32(0);
    f(out)?;
    let n = out.len() - at - 4;
    let n32 = u32::try_from(n).map_err(|_| EncodeError::TooLong(n))?;
    out[at..at + 4].copy_from_slice(&n32.to_be_bytes());
    Ok(())
}
