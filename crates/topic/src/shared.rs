//! Subscription filters: a plain filter, or a shared one `$share/{group}/{filter}`.

use std::fmt;

use crate::{TopicError, TopicFilter};

/// The prefix that marks a shared subscription.
pub const SHARE_PREFIX: &str = "$share/";

/// What a SUBSCRIBE entry asks for: a plain filter, where every subscriber gets
/// every matching message, or a shared one, where one member of the group gets
/// each message (the model service's "clustering" consumption).
///
/// ```
/// use mqgate_topic::SubscriptionFilter;
///
/// let shared = SubscriptionFilter::parse("$share/billing/orders/+")?;
/// assert_eq!(shared.share_group(), Some("billing"));
/// assert_eq!(shared.filter().as_str(), "orders/+");
///
/// let plain = SubscriptionFilter::parse("orders/+")?;
/// assert_eq!(plain.share_group(), None);
/// # Ok::<(), mqgate_topic::TopicError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SubscriptionFilter {
    /// Every subscriber of the filter gets each matching message.
    Plain(TopicFilter),
    /// One member of `group` gets each matching message.
    Shared {
        /// The group name: non-empty, without `/`, `+` or `#`.
        group: Box<str>,
        /// The filter the group subscribes to.
        filter: TopicFilter,
    },
}

impl SubscriptionFilter {
    /// Parses `$share/{group}/{filter}` as shared, anything else as a plain filter.
    pub fn parse(text: &str) -> Result<Self, TopicError> {
        let Some(rest) = text.strip_prefix(SHARE_PREFIX) else {
            return TopicFilter::parse(text).map(SubscriptionFilter::Plain);
        };
        let (group, filter) = rest.split_once('/').ok_or(TopicError::MissingShareFilter)?;
        validate_group(group)?;
        if filter.is_empty() {
            return Err(TopicError::MissingShareFilter);
        }
        Ok(SubscriptionFilter::Shared {
            group: group.into(),
            filter: TopicFilter::parse(filter)?,
        })
    }

    /// The topic filter, without any `$share/{group}/` prefix.
    pub fn filter(&self) -> &TopicFilter {
        match self {
            SubscriptionFilter::Plain(filter) | SubscriptionFilter::Shared { filter, .. } => filter,
        }
    }

    /// The share group, for a shared subscription.
    pub fn share_group(&self) -> Option<&str> {
        match self {
            SubscriptionFilter::Plain(_) => None,
            SubscriptionFilter::Shared { group, .. } => Some(group),
        }
    }
}

/// Checks a share group name: non-empty, no `/`, `+`, `#` or U+0000.
pub fn validate_group(group: &str) -> Result<(), TopicError> {
    if group.is_empty() || group.bytes().any(|b| matches!(b, b'/' | b'+' | b'#' | 0)) {
        return Err(TopicError::InvalidShareGroup);
    }
    Ok(())
}

impl fmt::Display for SubscriptionFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionFilter::Plain(filter) => write!(f, "{filter}"),
            SubscriptionFilter::Shared { group, filter } => {
                write!(f, "{SHARE_PREFIX}{group}/{filter}")
            }
        }
    }
}

impl fmt::Debug for SubscriptionFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        type Parts = Result<(Option<&'static str>, &'static str), TopicError>;
        let cases: &[(&str, Parts)] = &[
            ("a/b", Ok((None, "a/b"))),
            ("$share/g/a/+", Ok((Some("g"), "a/+"))),
            ("$share/g/#", Ok((Some("g"), "#"))),
            ("$share/g//", Ok((Some("g"), "/"))),
            ("$share/g", Err(TopicError::MissingShareFilter)),
            ("$share/g/", Err(TopicError::MissingShareFilter)),
            ("$share//a", Err(TopicError::InvalidShareGroup)),
            ("$share/g+/a", Err(TopicError::InvalidShareGroup)),
            ("$share/g/a#", Err(TopicError::WildcardNotAlone)),
            ("$shared/g/a", Ok((None, "$shared/g/a"))),
            ("$share", Ok((None, "$share"))),
        ];
        for (text, expected) in cases {
            let got = SubscriptionFilter::parse(text);
            let got = got
                .as_ref()
                .map(|s| (s.share_group(), s.filter().as_str()))
                .map_err(|e| *e);
            assert_eq!(got, expected.clone(), "{text:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["a/+", "$share/g/a/#", "$share/g//"] {
            assert_eq!(SubscriptionFilter::parse(text).unwrap().to_string(), text);
        }
    }
}
