//! Topic names: what a PUBLISH is addressed to.

use std::fmt;
use std::sync::Arc;

use crate::TopicError;

/// Longest topic name or filter in bytes: an MQTT UTF-8 string has a 16-bit length.
pub const MAX_TOPIC_LEN: usize = 65_535;

/// A validated topic name (MQTT 3.1.1 section 4.7): 1..=65535 bytes, no `+`, `#`
/// or U+0000. Empty levels (`a//b`, `/a`, `a/`) are legal and significant.
///
/// Cloning is cheap (the text is shared).
///
/// ```
/// use mqgate_topic::{TopicName, TopicError};
///
/// let name = TopicName::parse("sport/tennis/player1")?;
/// assert_eq!(name.levels().count(), 3);
/// assert_eq!(TopicName::validate("sport/+"), Err(TopicError::WildcardInName));
/// # Ok::<(), TopicError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// Checks `topic` without allocating; the broker's hot path calls this on the
    /// borrowed topic of every PUBLISH.
    pub fn validate(topic: &str) -> Result<(), TopicError> {
        check_common(topic)?;
        if topic.bytes().any(|b| b == b'+' || b == b'#') {
            return Err(TopicError::WildcardInName);
        }
        Ok(())
    }

    /// Validates `topic` and keeps an owned copy.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        Self::validate(topic)?;
        Ok(Self(Arc::from(topic)))
    }

    /// The topic as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The levels between `/` separators; an empty level is an empty string.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// True when the first level starts with `$` (`$SYS/...`): such topics are
    /// not matched by a filter starting with `+` or `#`.
    pub fn is_system(&self) -> bool {
        self.0.starts_with('$')
    }
}

/// Checks shared by names and filters: length and U+0000.
pub(crate) fn check_common(text: &str) -> Result<(), TopicError> {
    if text.is_empty() {
        return Err(TopicError::Empty);
    }
    if text.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong {
            len: text.len(),
            max: MAX_TOPIC_LEN,
        });
    }
    if text.as_bytes().contains(&0) {
        return Err(TopicError::NullChar);
    }
    Ok(())
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for TopicName {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_table() {
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        let max = "a".repeat(MAX_TOPIC_LEN);
        let cases: &[(&str, Result<(), TopicError>)] = &[
            ("a", Ok(())),
            ("/", Ok(())),
            ("a//b", Ok(())),
            ("/a", Ok(())),
            ("a/", Ok(())),
            ("$SYS/uptime", Ok(())),
            ("sport/tennis player/ranking", Ok(())),
            ("", Err(TopicError::Empty)),
            ("a/+", Err(TopicError::WildcardInName)),
            ("#", Err(TopicError::WildcardInName)),
            ("a#b", Err(TopicError::WildcardInName)),
            ("a\0b", Err(TopicError::NullChar)),
            (&max, Ok(())),
            (
                &long,
                Err(TopicError::TooLong {
                    len: MAX_TOPIC_LEN + 1,
                    max: MAX_TOPIC_LEN,
                }),
            ),
        ];
        for (topic, expected) in cases {
            assert_eq!(TopicName::validate(topic), *expected, "{topic:?}");
            assert_eq!(TopicName::parse(topic).map(|_| ()), *expected);
        }
    }

    #[test]
    fn levels_keep_empty_levels() {
        let name = TopicName::parse("/a//b/").unwrap();
        assert_eq!(name.levels().collect::<Vec<_>>(), ["", "a", "", "b", ""]);
        assert!(!name.is_system());
        assert!(TopicName::parse("$SYS/x").unwrap().is_system());
    }
}
