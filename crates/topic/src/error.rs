//! The error type of topic names, topic filters and shared subscription filters.

use thiserror::Error;

/// Why a topic name or a topic filter was refused.
///
/// Every variant is something a peer can send, so the broker turns it into a
/// refused SUBSCRIBE return code or a closed connection, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum TopicError {
    /// The string is empty; MQTT 3.1.1 section 4.7.3 requires at least one character.
    #[error("topic is empty")]
    Empty,
    /// The string is longer than the 65535 bytes an MQTT UTF-8 string can carry.
    #[error("topic is {len} bytes, longer than {max}")]
    TooLong {
        /// Length of the refused string, in bytes.
        len: usize,
        /// The limit that was exceeded.
        max: usize,
    },
    /// The string contains U+0000, which MQTT forbids in every UTF-8 string.
    #[error("topic contains U+0000")]
    NullChar,
    /// A topic name (what a PUBLISH carries) contains `+` or `#`.
    #[error("topic name contains a wildcard")]
    WildcardInName,
    /// A wildcard shares a level with other characters (`a+/b`, `sport#`).
    #[error("wildcard does not occupy a whole level")]
    WildcardNotAlone,
    /// `#` is not the last level of the filter (`a/#/b`).
    #[error("`#` is not the last level")]
    MultiWildcardNotLast,
    /// The filter or topic has more levels than the index accepts.
    #[error("{levels} levels, more than the limit of {max}")]
    TooManyLevels {
        /// Number of levels of the refused filter or topic.
        levels: usize,
        /// The configured limit.
        max: usize,
    },
    /// A `$share/{group}/{filter}` has an empty group name, or one containing `+`, `#` or `/`.
    #[error("shared subscription group name is empty or contains `+`, `#` or `/`")]
    InvalidShareGroup,
    /// A `$share/{group}` lacks the filter part.
    #[error("shared subscription has no filter after the group name")]
    MissingShareFilter,
}
