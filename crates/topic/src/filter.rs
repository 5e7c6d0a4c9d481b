//! Topic filters: what a SUBSCRIBE asks for, parsed once into typed levels.

use std::fmt;
use std::sync::Arc;

use crate::name::check_common;
use crate::TopicError;

/// One level of a topic filter, as [`TopicFilter::levels`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level<'a> {
    /// A level that matches exactly this text (possibly empty).
    Normal(&'a str),
    /// A first level starting with `$` (`$SYS`): matches only itself, and marks
    /// the topics that leading wildcards skip.
    System(&'a str),
    /// `+`: any single level.
    SingleWildcard,
    /// `#`: the parent level and any number of levels below; always last.
    MultiWildcard,
}

impl<'a> Level<'a> {
    /// The text this level matches exactly, if it is not a wildcard.
    pub fn as_exact(self) -> Option<&'a str> {
        match self {
            Level::Normal(text) | Level::System(text) => Some(text),
            Level::SingleWildcard | Level::MultiWildcard => None,
        }
    }
}

/// Iterator over the typed levels of a filter (see [`TopicFilter::levels`]).
#[derive(Debug, Clone)]
pub struct Levels<'a> {
    inner: std::str::Split<'a, char>,
    first: bool,
}

impl<'a> Levels<'a> {
    /// Types the levels of text already validated as a filter.
    pub(crate) fn new(text: &'a str) -> Self {
        Levels {
            inner: text.split('/'),
            first: true,
        }
    }
}

impl<'a> Iterator for Levels<'a> {
    type Item = Level<'a>;

    fn next(&mut self) -> Option<Level<'a>> {
        let text = self.inner.next()?;
        let first = std::mem::replace(&mut self.first, false);
        Some(match text {
            "+" => Level::SingleWildcard,
            "#" => Level::MultiWildcard,
            _ if first && text.starts_with('$') => Level::System(text),
            _ => Level::Normal(text),
        })
    }
}

/// A validated topic filter (MQTT 3.1.1 section 4.7): 1..=65535 bytes, no
/// U+0000, `+` and `#` only as whole levels, `#` only last.
///
/// ```
/// use mqgate_topic::TopicFilter;
///
/// let filter = TopicFilter::parse("sport/tennis/+/#")?;
/// assert!(filter.matches("sport/tennis/player1"));
/// assert!(filter.matches("sport/tennis/player1/ranking/2024"));
/// assert!(!filter.matches("sport/golf/player1"));
/// assert!(!TopicFilter::parse("#")?.matches("$SYS/uptime"));
/// # Ok::<(), mqgate_topic::TopicError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter {
    text: Arc<str>,
    has_wildcard: bool,
}

impl TopicFilter {
    /// Checks `filter` without allocating.
    pub fn validate(filter: &str) -> Result<(), TopicError> {
        check_common(filter)?;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            let wildcard = level.bytes().any(|b| b == b'+' || b == b'#');
            if wildcard && level.len() != 1 {
                return Err(TopicError::WildcardNotAlone);
            }
            if level == "#" && levels.peek().is_some() {
                return Err(TopicError::MultiWildcardNotLast);
            }
        }
        Ok(())
    }

    /// Validates `filter` and keeps an owned copy.
    pub fn parse(filter: &str) -> Result<Self, TopicError> {
        Self::validate(filter)?;
        Ok(TopicFilter {
            has_wildcard: filter.bytes().any(|b| b == b'+' || b == b'#'),
            text: Arc::from(filter),
        })
    }

    /// The filter as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The typed levels, first to last.
    pub fn levels(&self) -> Levels<'_> {
        Levels::new(&self.text)
    }

    /// Number of levels (one more than the number of `/`).
    pub fn level_count(&self) -> usize {
        self.text.bytes().filter(|&b| b == b'/').count() + 1
    }

    /// True when the filter contains `+` or `#`, so it can match more than one topic.
    pub fn has_wildcard(&self) -> bool {
        self.has_wildcard
    }

    /// True when the first level starts with `$`.
    pub fn is_system(&self) -> bool {
        self.text.starts_with('$')
    }

    /// Whether this filter matches the topic name `topic`, following section
    /// 4.7: `+` is one level, `#` is the parent level and everything below, and a
    /// leading wildcard never matches a topic whose first level starts with `$`.
    ///
    /// `topic` is assumed to be a valid topic name; wildcard characters in it
    /// are compared as plain text.
    pub fn matches(&self, topic: &str) -> bool {
        filter_matches(&self.text, topic)
    }

    /// True iff every topic that `other` can match is also matched by `self`.
    ///
    /// An authorisation layer uses this to allow a subscription only when all
    /// it could ever deliver is allowed.
    ///
    /// ```
    /// use mqgate_topic::TopicFilter;
    /// let f = |s| TopicFilter::parse(s).unwrap();
    /// assert!(f("dev/#").contains(&f("dev/+/cmd")));
    /// assert!(f("dev/#").contains(&f("dev")));
    /// assert!(!f("dev/+").contains(&f("dev/#")));
    /// assert!(!f("#").contains(&f("$SYS/#")));
    /// ```
    pub fn contains(&self, other: &TopicFilter) -> bool {
        let mut ours = self.levels();
        let mut theirs = other.levels();
        loop {
            match (ours.next(), theirs.next()) {
                (None, None) => return true,
                // A leading wildcard of ours never matches `$` topics, which a
                // `System` first level of theirs matches exclusively.
                (Some(Level::MultiWildcard), theirs) => {
                    return !matches!(theirs, Some(Level::System(_)))
                }
                (Some(Level::SingleWildcard), Some(Level::Normal(_) | Level::SingleWildcard)) => {}
                (Some(Level::Normal(a)), Some(Level::Normal(b)))
                | (Some(Level::System(a)), Some(Level::System(b)))
                    if a == b => {}
                _ => return false,
            }
        }
    }
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for TopicFilter {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl std::str::FromStr for TopicFilter {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;

/// Whether the filter text `filter`, already validated (as [`TopicFilter::parse`] does, or as
/// a session keeps the filters it accepted), matches the topic name `topic`: what
/// [`TopicFilter::matches`] does, without making an owned filter first.
///
/// ```
/// assert!(mqgate_topic::filter_matches("dev/+/cmd", "dev/7/cmd"));
/// assert!(!mqgate_topic::filter_matches("#", "$SYS/uptime"));
/// ```
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for level in Levels::new(filter) {
        match (level, topic_levels.next()) {
            (Level::MultiWildcard, _) => return true,
            (Level::SingleWildcard, Some(_)) => {}
            (Level::Normal(want) | Level::System(want), Some(got)) if want == got => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}
