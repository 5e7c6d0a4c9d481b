//! The crate's single error type.

/// Everything that can go wrong in this crate: parsing a channel id, reading
/// the operating system's randomness, or decoding a status event.
///
/// Errors carry no input bytes beyond what is needed to find the mistake, so
/// they are cheap to log even when the input was hostile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// A channel id in text form did not have exactly 32 characters.
    #[error("channel id must be 32 lowercase hex characters, found {found} characters")]
    ChannelIdLength {
        /// How many characters the text had.
        found: usize,
    },
    /// A channel id in text form had a character outside `0-9a-f`
    /// (upper case is refused too: the canonical form is lower case).
    #[error(
        "channel id must be 32 lowercase hex characters, found {found:?} at position {position}"
    )]
    ChannelIdCharacter {
        /// The offending character.
        found: char,
        /// Its character position, counted from 0.
        position: usize,
    },
    /// The operating system could not provide random bytes for a new channel id.
    #[error("operating system randomness unavailable: {0}")]
    Randomness(getrandom::Error),
    /// A status event body was not a JSON object (malformed JSON, or another
    /// kind of value). The message is serde_json's, with line and column.
    #[error("status event is not a JSON object: {0}")]
    NotAnObject(String),
    /// A status event lacked a required key (every key but `seq` is required).
    #[error("status event lacks the key `{0}`")]
    MissingKey(&'static str),
    /// A status event had a key whose value has the wrong type or is out of
    /// range: a `time` that is not a non-negative integer, an unknown
    /// `eventType`, a `channelId` that is not 32 lowercase hex characters.
    #[error("status event key `{key}`: {reason}")]
    InvalidValue {
        /// The key whose value was refused.
        key: &'static str,
        /// What was expected, and what was found.
        reason: String,
    },
}
