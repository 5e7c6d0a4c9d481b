//! [`ByteStr`]: a UTF-8 string that shares the receive buffer instead of copying out of it,
//! and [`TopicFrame`]: a decoded PUBLISH whose topic was checked in place.
//!
//! The crate's one `unsafe` operation, reading checked bytes as `str` without validating
//! them again, lives in this module and is sound by this module alone: the bytes of a
//! [`ByteStr`] and the topic of a [`TopicFrame`] are private fields, and every constructor
//! (all of them in this file) checks them first. Holding one of these values is the proof
//! that the check was done; nothing outside this module can build one unchecked.
#![allow(unsafe_code)]

use bytes::Bytes;
use core::{fmt, ops::Deref};

use crate::DecodeError;

/// An immutable UTF-8 string backed by [`Bytes`].
///
/// Decoding slices topic names, client ids and filters out of the receive buffer as
/// `ByteStr`s, so they cost a reference count, not an allocation and a copy. Cloning is
/// cheap for the same reason.
///
/// The contents are valid UTF-8 and contain no U+0000, as MQTT-1.5.3 requires of every
/// string on the wire; every constructor checks that.
///
/// ```
/// use mqgate_codec::ByteStr;
/// let topic = ByteStr::from_static("dev/42/cmd");
/// assert_eq!(&*topic, "dev/42/cmd");
/// assert!(ByteStr::try_from(bytes::Bytes::from_static(b"bad\0")).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteStr(Bytes);

impl ByteStr {
    /// Wraps a static string.
    ///
    /// # Panics
    /// If `s` contains U+0000; a static string is the program's own text, not peer data.
    pub const fn from_static(s: &'static str) -> Self {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            assert!(b[i] != 0, "ByteStr::from_static: string contains U+0000");
            i += 1;
        }
        ByteStr(Bytes::from_static(b))
    }

    /// A topic name (non-empty, no wildcards, valid UTF-8, no U+0000), checked and wrapped
    /// without copying.
    pub(crate) fn topic_name(raw: Bytes) -> Result<Self, DecodeError> {
        check_topic_name(&raw)?;
        Ok(ByteStr(raw))
    }

    /// A copy in a buffer of its own. A decoded string is a view into its packet and keeps
    /// the whole packet alive: copy a short string that is kept long (a session's client
    /// id) to let the packet go.
    ///
    /// ```
    /// use mqgate_codec::ByteStr;
    /// let packet = bytes::Bytes::from(b"GID_a@@@1 and the rest of a packet".to_vec());
    /// let id = ByteStr::try_from(packet.slice(..9))?.detached();
    /// assert_eq!(id, "GID_a@@@1");
    /// assert_eq!(id.as_bytes().len(), 9);
    /// # Ok::<(), mqgate_codec::DecodeError>(())
    /// ```
    #[must_use]
    pub fn detached(&self) -> Self {
        ByteStr(Bytes::copy_from_slice(&self.0))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // SAFETY: `self.0` is private and every constructor of `ByteStr` (all in this
        // module) checked it to be valid UTF-8; `Bytes` is immutable.
        unsafe { str_unchecked(&self.0) }
    }

    /// The underlying bytes (shared, not copied).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Gives up the wrapper and returns the underlying [`Bytes`].
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A decoded PUBLISH from its topic on: the topic is the first `topic_len` bytes of `frame`,
/// checked as a topic name when this value was built, so that [`TopicFrame::topic`] reads
/// it as `str` without a second UTF-8 validation (the PUBLISH decode's hot path).
#[derive(Clone)]
pub(crate) struct TopicFrame {
    frame: Bytes,
    topic_len: u16,
}

impl TopicFrame {
    /// Checks the first `topic_len` bytes of `frame` as a topic name.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] when `frame` is shorter than `topic_len`, and every
    /// error of the topic name rules.
    #[inline(always)]
    pub(crate) fn check(frame: Bytes, topic_len: u16) -> Result<Self, DecodeError> {
        let topic = frame
            .get(..usize::from(topic_len))
            .ok_or(DecodeError::UnexpectedEnd)?;
        check_topic_name(topic)?;
        Ok(TopicFrame { frame, topic_len })
    }

    /// The whole frame, topic included.
    pub(crate) fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The frame, given up.
    pub(crate) fn into_frame(self) -> Bytes {
        self.frame
    }

    /// The topic's bytes.
    pub(crate) fn topic_bytes(&self) -> &[u8] {
        // `check` proved `topic_len <= frame.len()`; `get` keeps this free of a panic path.
        self.frame
            .get(..usize::from(self.topic_len))
            .unwrap_or_default()
    }

    /// The topic.
    pub(crate) fn topic(&self) -> &str {
        // SAFETY: the fields are private and `check`, the only constructor, checked the
        // first `topic_len` bytes of the immutable `frame` to be valid UTF-8; an empty
        // slice (the fallback of `topic_bytes`) is valid UTF-8 too.
        unsafe { str_unchecked(self.topic_bytes()) }
    }

    /// The topic as a shared [`ByteStr`] (a reference count, not a copy).
    pub(crate) fn shared_topic(&self) -> ByteStr {
        // The same bytes `check` validated, so the `ByteStr` invariant holds.
        ByteStr(self.frame.slice(..usize::from(self.topic_len)))
    }
}

/// Reads `b` as `str` without validating it.
///
/// # Safety
/// `b` must be valid UTF-8. Only this module calls it, on the bytes of a [`ByteStr`] or the
/// topic of a [`TopicFrame`], which their constructors checked.
#[inline(always)]
unsafe fn str_unchecked(b: &[u8]) -> &str {
    debug_assert!(core::str::from_utf8(b).is_ok());
    // SAFETY: the caller guarantees `b` is valid UTF-8.
    unsafe { core::str::from_utf8_unchecked(b) }
}

/// Every rule of a topic name checked in one pass over the bytes, with the UTF-8 validation
/// only for the rare non-ASCII topic. This is the PUBLISH hot path.
#[inline(always)]
fn check_topic_name(raw: &[u8]) -> Result<(), DecodeError> {
    if raw.is_empty() {
        return Err(DecodeError::EmptyTopicName);
    }
    let (forbidden, non_ascii) = scan_topic_bytes(raw);
    if forbidden {
        return Err(if raw.contains(&0) {
            DecodeError::NullCharacter
        } else {
            DecodeError::WildcardInTopicName
        });
    }
    // No byte with the high bit set: ASCII, hence valid UTF-8.
    if non_ascii {
        core::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
    }
    Ok(())
}

/// Checks the MQTT string rules (MQTT-1.5.3-1, -2) on a byte slice.
pub(crate) fn check_mqtt_str(b: &[u8]) -> Result<(), DecodeError> {
    if b.contains(&0) {
        return Err(DecodeError::NullCharacter);
    }
    core::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8)?;
    Ok(())
}

impl TryFrom<Bytes> for ByteStr {
    type Error = DecodeError;
    /// Checks UTF-8 and the absence of U+0000, then wraps without copying.
    fn try_from(b: Bytes) -> Result<Self, DecodeError> {
        check_mqtt_str(&b)?;
        Ok(ByteStr(b))
    }
}

impl TryFrom<String> for ByteStr {
    type Error = DecodeError;
    fn try_from(s: String) -> Result<Self, DecodeError> {
        if s.as_bytes().contains(&0) {
            return Err(DecodeError::NullCharacter);
        }
        Ok(ByteStr(Bytes::from(s)))
    }
}

impl TryFrom<&str> for ByteStr {
    type Error = DecodeError;
    fn try_from(s: &str) -> Result<Self, DecodeError> {
        if s.as_bytes().contains(&0) {
            return Err(DecodeError::NullCharacter);
        }
        Ok(ByteStr(Bytes::copy_from_slice(s.as_bytes())))
    }
}

// Hashes as `str` does, so that `Borrow<str>` lookups in hash maps agree.
impl core::hash::Hash for ByteStr {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl Deref for ByteStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ByteStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl core::borrow::Borrow<str> for ByteStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for ByteStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ByteStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for ByteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ByteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

/// Whether `b` holds U+0000, `+` or `#` (first), and whether it holds any non-ASCII byte
/// (second). Eight bytes at a time with the classic "has a zero byte" word trick (exact for
/// "any"), which takes a fraction of the instructions per byte a byte-by-byte check does.
/// The tail is one more word: the last eight bytes again (overlap is harmless for "any"), or
/// for a topic shorter than a word, the bytes padded with `a`, which matches nothing (padded
/// by a loop of at most 7 bytes: `copy_from_slice` of a variable length calls `memcpy`).
/// Plain 16-byte per-lane loops were tried: the compiler vectorised them across blocks into a
/// large function that took several times the instructions for a short topic. (The counts
/// are in `benches/README.md`.)
pub(crate) fn scan_topic_bytes(b: &[u8]) -> (bool, bool) {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    #[inline(always)]
    fn word(chunk: &[u8]) -> u64 {
        let mut w = [b'a'; 8];
        for (d, &c) in w.iter_mut().zip(chunk) {
            *d = c;
        }
        u64::from_le_bytes(w)
    }
    #[inline(always)]
    fn check(v: u64) -> (u64, u64) {
        let has_zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
        let forbidden = has_zero(v)
            | has_zero(v ^ (LO * u64::from(b'+')))
            | has_zero(v ^ (LO * u64::from(b'#')));
        (forbidden, v & HI)
    }
    let (mut forbidden, mut high) = (0u64, 0u64);
    let last = match b.last_chunk::<8>() {
        Some(last) => {
            let mut rest = b;
            while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
                let (f, h) = check(u64::from_le_bytes(*chunk));
                forbidden |= f;
                high |= h;
                rest = tail;
            }
            u64::from_le_bytes(*last)
        }
        None => word(b),
    };
    let (f, h) = check(last);
    ((forbidden | f) != 0, (high | h) != 0)
}
