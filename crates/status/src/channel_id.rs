//! [`ChannelId`]: the identity of one TCP connection.

use core::fmt;
use core::str::FromStr;
use core::sync::atomic::{AtomicU64, Ordering};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::StatusError;

/// How many random bytes a channel id has.
const CHANNEL_ID_BYTES: usize = 16;
/// Its length in text form: two hex digits per byte.
const CHANNEL_ID_CHARS: usize = CHANNEL_ID_BYTES * 2;

/// The identity of one TCP connection: 128 random bits, written as 32
/// lowercase hex characters (`2b9b1281046046faafe5e0b458e4a1c7`).
///
/// Random rather than counted, so ids stay unique across broker restarts and
/// across nodes without coordination: a counter would restart at zero and
/// collide with the ids a consumer still remembers from before the restart.
///
/// ```
/// use mqgate_status::ChannelId;
///
/// let id = ChannelId::from_bytes([0xab; 16]);
/// assert_eq!(id.to_string(), "abababababababababababababababab");
/// let parsed: ChannelId = "abababababababababababababababab".parse()?;
/// assert_eq!(parsed, id);
/// assert!("ABABABABABABABABABABABABABABABAB".parse::<ChannelId>().is_err());
/// # Ok::<(), mqgate_status::StatusError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId([u8; CHANNEL_ID_BYTES]);

impl ChannelId {
    /// Builds a channel id from 16 bytes the caller drew from a random source.
    ///
    /// Use this when the driver has its own generator (a deterministic
    /// simulation, a seeded test); otherwise use [`ChannelId::generate`].
    #[must_use]
    pub const fn from_bytes(bytes: [u8; CHANNEL_ID_BYTES]) -> Self {
        Self(bytes)
    }

    /// Draws a fresh channel id from the operating system's random generator.
    ///
    /// # Errors
    ///
    /// [`StatusError::Randomness`] when the operating system has no randomness
    /// to give (very early boot, a sandbox that forbids it). Never panics.
    ///
    /// ```
    /// let a = mqgate_status::ChannelId::generate()?;
    /// let b = mqgate_status::ChannelId::generate()?;
    /// assert_ne!(a, b);
    /// # Ok::<(), mqgate_status::StatusError>(())
    /// ```
    pub fn generate() -> Result<Self, StatusError> {
        let mut bytes = [0u8; CHANNEL_ID_BYTES];
        getrandom::fill(&mut bytes).map_err(StatusError::Randomness)?;
        Ok(Self(bytes))
    }

    /// The 16 raw bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; CHANNEL_ID_BYTES] {
        &self.0
    }
}

/// Channel ids for one process without a system call each: a random 64-bit prefix drawn
/// once, then a counter (which starts at a random value too).
///
/// The ids are unique for the source's life by the counter, and across restarts and nodes
/// by the prefix, as [`ChannelId::generate`]'s are by their 128 random bits (two sources
/// share a prefix with probability 2^-64). Unlike those, they are not unpredictable: an id
/// tells the next one. A broker draws one per connection, so this saves a `getrandom`
/// call on every connect.
///
/// ```
/// use mqgate_status::ChannelIdSource;
///
/// let source = ChannelIdSource::new()?;
/// let (a, b) = (source.next(), source.next());
/// assert_ne!(a, b);
/// assert_eq!(a.as_bytes()[..8], b.as_bytes()[..8]);
/// # Ok::<(), mqgate_status::StatusError>(())
/// ```
#[derive(Debug)]
pub struct ChannelIdSource {
    prefix: [u8; 8],
    counter: AtomicU64,
}

impl ChannelIdSource {
    /// A source with a fresh random prefix and counter.
    ///
    /// # Errors
    ///
    /// [`StatusError::Randomness`], as [`ChannelId::generate`].
    pub fn new() -> Result<Self, StatusError> {
        let mut bytes = [0u8; CHANNEL_ID_BYTES];
        getrandom::fill(&mut bytes).map_err(StatusError::Randomness)?;
        let (prefix, counter) = bytes.split_at(8);
        let mut start = [0u8; 8];
        start.copy_from_slice(counter);
        let mut fixed = [0u8; 8];
        fixed.copy_from_slice(prefix);
        Ok(Self {
            prefix: fixed,
            counter: AtomicU64::new(u64::from_be_bytes(start)),
        })
    }

    /// The next channel id (the counter wraps after 2^64 ids).
    #[must_use]
    pub fn next(&self) -> ChannelId {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; CHANNEL_ID_BYTES];
        bytes[..8].copy_from_slice(&self.prefix);
        bytes[8..].copy_from_slice(&n.to_be_bytes());
        ChannelId(bytes)
    }
}

impl FromStr for ChannelId {
    type Err = StatusError;

    /// Parses exactly 32 lowercase hex characters.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let found = text.chars().count();
        if text.len() != CHANNEL_ID_CHARS || found != CHANNEL_ID_CHARS {
            return Err(StatusError::ChannelIdLength { found });
        }
        // Lowercase only: the `hex` crate would take upper case too, and the text
        // form has exactly one spelling.
        let lowercase_hex = |digit: &u8| matches!(digit, b'0'..=b'9' | b'a'..=b'f');
        if let Some(position) = text.bytes().position(|digit| !lowercase_hex(&digit)) {
            return Err(StatusError::ChannelIdCharacter {
                // The length check above proved the text is ASCII, one byte per char.
                found: text
                    .as_bytes()
                    .get(position)
                    .map_or('?', |&b| char::from(b)),
                position,
            });
        }
        let mut bytes = [0u8; CHANNEL_ID_BYTES];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| StatusError::ChannelIdLength { found })?;
        Ok(Self(bytes))
    }
}

impl ChannelId {
    /// The text form in `buffer`; `None` only if `hex` broke its contract.
    fn text(self, buffer: &mut [u8; CHANNEL_ID_CHARS]) -> Option<&str> {
        hex::encode_to_slice(self.0, buffer).ok()?;
        // `hex` writes lowercase ASCII hex digits.
        core::str::from_utf8(buffer).ok()
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buffer = [0u8; CHANNEL_ID_CHARS];
        f.write_str(self.text(&mut buffer).ok_or(fmt::Error)?)
    }
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelId({self})")
    }
}

impl Serialize for ChannelId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A `str` rather than `collect_str`: serde_json escapes what `Display` writes piece
        // by piece, which made the whole event's encoding about 1.5 times slower.
        let mut buffer = [0u8; CHANNEL_ID_CHARS];
        let text = self
            .text(&mut buffer)
            .ok_or_else(|| serde::ser::Error::custom("channel id not hex-encodable"))?;
        serializer.serialize_str(text)
    }
}

impl<'de> Deserialize<'de> for ChannelId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChannelIdVisitor;
        impl Visitor<'_> for ChannelIdVisitor {
            type Value = ChannelId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a channel id of 32 lowercase hex characters")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ChannelId, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(ChannelIdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_every_byte_value() {
        for value in 0..=255u8 {
            let mut bytes = [0u8; 16];
            bytes[usize::from(value % 16)] = value;
            let id = ChannelId::from_bytes(bytes);
            let text = id.to_string();
            assert_eq!(text.len(), 32);
            assert_eq!(text.parse::<ChannelId>().ok(), Some(id));
        }
    }

    #[test]
    fn parse_rejects_malformed_text() {
        let cases: &[(&str, &str)] = &[
            ("", "length"),
            ("2b9b1281046046faafe5e0b458e4a1c", "length"),
            ("2b9b1281046046faafe5e0b458e4a1c77", "length"),
            ("2b9b1281046046faafe5e0b458e4XXXX", "character"),
            ("2B9B1281046046FAAFE5E0B458E4A1C7", "character"),
            ("2b9b1281046046faafe5e0b458e4a1c-", "character"),
            // 32 bytes but 31 characters: must not be mistaken for hex.
            ("2b9b1281046046faafe5e0b458e4a1é", "length"),
        ];
        for (text, kind) in cases {
            let error = text.parse::<ChannelId>().err();
            let matched = matches!(
                (kind, &error),
                (&"length", Some(StatusError::ChannelIdLength { .. }))
                    | (&"character", Some(StatusError::ChannelIdCharacter { .. }))
            );
            assert!(matched, "{text:?}: expected {kind} error, got {error:?}");
        }
    }

    #[test]
    fn character_error_points_at_the_first_bad_character() {
        let error = "2b9b1281046046faafe5e0b458e4XXXX"
            .parse::<ChannelId>()
            .err();
        assert!(matches!(
            error,
            Some(StatusError::ChannelIdCharacter {
                found: 'X',
                position: 28
            })
        ));
    }

    #[test]
    fn generated_ids_differ() {
        let ids: Vec<ChannelId> = (0..64).filter_map(|_| ChannelId::generate().ok()).collect();
        assert_eq!(ids.len(), 64);
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 64);
    }
}
