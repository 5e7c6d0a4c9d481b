//! [`ByteStr`]: a UTF-8 string that shares the receive buffer instead of copying out of it.

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

    /// Wraps bytes the caller has already checked (valid UTF-8, no U+0000).
    pub(crate) fn from_checked(b: Bytes) -> Self {
        debug_assert!(check_mqtt_str(&b).is_ok());
        ByteStr(b)
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
        checked_str(&self.0)
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

/// The string of bytes the decoder (or a constructor of [`ByteStr`]) has checked to be
/// valid UTF-8, without checking again.
pub(crate) fn checked_str(b: &[u8]) -> &str {
    debug_assert!(core::str::from_utf8(b).is_ok());
    // SAFETY: only called on bytes checked to be valid UTF-8 (every `ByteStr` constructor,
    // and the topic of a decoded PUBLISH), which are immutable afterwards.
    #[allow(unsafe_code)]
    unsafe {
        core::str::from_utf8_unchecked(b)
    }
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
