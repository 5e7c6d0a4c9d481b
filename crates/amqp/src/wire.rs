//! The primitive types of AMQP 0-9-1: big-endian integers, short and long strings, packed
//! bits. A [`Reader`] walks a frame payload (a [`Bytes`], so long strings are zero-copy
//! slices of it) and never reads past its end; the `put_*` functions write.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{DecodeError, EncodeError};

/// A cursor over one frame payload. Every read checks the length first.
pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a Bytes) -> Self {
        Self { buf, pos: 0 }
    }

    /// Every byte was read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::UnexpectedEnd)?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::UnexpectedEnd)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A short string: one length octet, then UTF-8.
    pub(crate) fn short_str(&mut self) -> Result<String, DecodeError> {
        let n = usize::from(self.u8()?);
        let s = self.take(n)?;
        std::str::from_utf8(s)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8)
    }

    /// A long string: a 32-bit length, then bytes (any bytes), as a slice of the frame.
    pub(crate) fn long_bytes(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.u32()? as usize;
        self.slice(n)
    }

    /// The next `n` bytes as a slice of the frame.
    pub(crate) fn slice(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(n)?;
        Ok(self.buf.slice(start..self.pos))
    }

    /// The rest of the payload.
    pub(crate) fn rest(&mut self) -> Bytes {
        let start = self.pos;
        self.pos = self.buf.len();
        self.buf.slice(start..)
    }
}

pub(crate) fn put_short_str(out: &mut BytesMut, s: &str) -> Result<(), EncodeError> {
    let n = u8::try_from(s.len()).map_err(|_| EncodeError::ShortStrTooLong(s.len()))?;
    out.put_u8(n);
    out.put_slice(s.as_bytes());
    Ok(())
}

pub(crate) fn put_long_bytes(out: &mut BytesMut, b: &[u8]) -> Result<(), EncodeError> {
    let n = u32::try_from(b.len()).map_err(|_| EncodeError::TooLong(b.len()))?;
    out.put_u32(n);
    out.put_slice(b);
    Ok(())
}

/// Packs up to eight bits, the first in the lowest position (AMQP's rule for consecutive
/// bit arguments).
pub(crate) fn pack_bits(bits: &[bool]) -> u8 {
    bits.iter()
        .enumerate()
        .fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << i))
}

/// Bit `i` (0 = lowest) of a packed octet.
pub(crate) fn bit(octet: u8, i: u8) -> bool {
    octet & (1 << i) != 0
}
