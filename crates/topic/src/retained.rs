//! Retained messages, indexed by topic, found by filter without a full scan.

use crate::children::Children;
use crate::filter::{Level, Levels};
use crate::trie::DEFAULT_MAX_LEVELS;
use crate::{TopicError, TopicFilter, TopicName};

/// Retained values keyed by topic name, in a trie of topic levels.
///
/// [`matching`](Self::matching) follows the filter down the trie: an exact
/// level visits one child, `+` the children of one node, `#` one subtree.
///
/// ```
/// use mqgate_topic::{RetainedIndex, TopicFilter};
///
/// let mut retained = RetainedIndex::new();
/// retained.set("dev/1/status", "online")?;
/// retained.set("dev/2/status", "offline")?;
/// retained.set("$SYS/uptime", "3d")?;
///
/// let mut seen = Vec::new();
/// retained.matching(&TopicFilter::parse("+/+/status")?, |topic, v| seen.push((topic.to_owned(), *v)));
/// seen.sort();
/// assert_eq!(seen, [("dev/1/status".to_owned(), "online"), ("dev/2/status".to_owned(), "offline")]);
///
/// let mut all = 0;
/// retained.matching(&TopicFilter::parse("#")?, |_, _| all += 1);
/// assert_eq!(all, 2, "`#` skips `$SYS`");
/// # Ok::<(), mqgate_topic::TopicError>(())
/// ```
#[derive(Debug)]
pub struct RetainedIndex<V> {
    root: Node<V>,
    len: usize,
    node_count: usize,
    max_levels: usize,
}

#[derive(Debug)]
struct Node<V> {
    children: Children<Node<V>>,
    /// The retained value of exactly this topic, with the topic text for callers.
    entry: Option<Box<(Box<str>, V)>>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            children: Children::default(),
            entry: None,
        }
    }
}

impl<V> Default for RetainedIndex<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> RetainedIndex<V> {
    /// An empty index accepting topics of up to [`DEFAULT_MAX_LEVELS`] levels.
    pub fn new() -> Self {
        Self::with_max_levels(DEFAULT_MAX_LEVELS)
    }

    /// An empty index accepting topics of up to `max_levels` levels.
    pub fn with_max_levels(max_levels: usize) -> Self {
        RetainedIndex {
            root: Node::default(),
            len: 0,
            node_count: 0,
            max_levels,
        }
    }

    /// Number of retained topics.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of trie nodes below the root: zero again once everything is removed.
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// Retains `value` for `topic` (a topic name, validated here); returns the
    /// value it replaces.
    pub fn set(&mut self, topic: &str, value: V) -> Result<Option<V>, TopicError> {
        TopicName::validate(topic)?;
        let levels = topic.split('/').count();
        if levels > self.max_levels {
            return Err(TopicError::TooManyLevels {
                levels,
                max: self.max_levels,
            });
        }
        let mut node = &mut self.root;
        for level in topic.split('/') {
            node = node
                .children
                .get_or_insert_with(level, &mut self.node_count, Node::default);
        }
        match &mut node.entry {
            Some(entry) => Ok(Some(std::mem::replace(&mut entry.1, value))),
            None => {
                node.entry = Some(Box::new((topic.into(), value)));
                self.len += 1;
                Ok(None)
            }
        }
    }

    /// The value retained for `topic`.
    pub fn get(&self, topic: &str) -> Option<&V> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.entry.as_deref().map(|(_, v)| v)
    }

    /// Forgets `topic`; returns its value. Nodes left empty are freed.
    pub fn remove(&mut self, topic: &str) -> Option<V> {
        let removed = self
            .root
            .remove_in(topic.split('/'), &mut self.node_count)?;
        self.len -= 1;
        Some(removed)
    }

    /// Calls `visit(topic, value)` for every retained topic `filter` matches,
    /// honouring the `$` rule (a leading wildcard skips `$` topics).
    pub fn matching(&self, filter: &TopicFilter, mut visit: impl FnMut(&str, &V)) {
        self.root.walk(filter.levels(), true, &mut visit);
    }
}

impl<V> Node<V> {
    fn walk(&self, mut levels: Levels<'_>, at_root: bool, visit: &mut impl FnMut(&str, &V)) {
        let system = |name: &str| at_root && name.starts_with('$');
        match levels.next() {
            None => {
                if let Some((topic, value)) = self.entry.as_deref() {
                    visit(topic, value);
                }
            }
            Some(Level::MultiWildcard) => {
                // The parent level: `a/#` matches `a`.
                if let Some((topic, value)) = self.entry.as_deref() {
                    visit(topic, value);
                }
                for (name, child) in self.children.iter() {
                    if !system(name) {
                        child.walk_all(visit);
                    }
                }
            }
            Some(Level::SingleWildcard) => {
                for (name, child) in self.children.iter() {
                    if !system(name) {
                        child.walk(levels.clone(), false, visit);
                    }
                }
            }
            Some(Level::Normal(text) | Level::System(text)) => {
                if let Some(child) = self.children.get(text) {
                    child.walk(levels, false, visit);
                }
            }
        }
    }

    fn walk_all(&self, visit: &mut impl FnMut(&str, &V)) {
        if let Some((topic, value)) = self.entry.as_deref() {
            visit(topic, value);
        }
        for (_, child) in self.children.iter() {
            child.walk_all(visit);
        }
    }

    fn remove_in<'a>(
        &mut self,
        mut levels: impl Iterator<Item = &'a str>,
        node_count: &mut usize,
    ) -> Option<V> {
        let Some(level) = levels.next() else {
            return self.entry.take().map(|entry| entry.1);
        };
        let child = self.children.get_mut(level)?;
        let removed = child.remove_in(levels, node_count);
        if child.entry.is_none() && child.children.is_empty() {
            self.children.remove(level);
            *node_count -= 1;
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naive::{naive_matches, strategy};
    use proptest::prelude::*;

    fn matching(index: &RetainedIndex<u32>, filter: &str) -> Vec<(String, u32)> {
        let mut seen = Vec::new();
        index.matching(&TopicFilter::parse(filter).unwrap(), |t, v| {
            seen.push((t.to_owned(), *v))
        });
        seen.sort();
        seen
    }

    #[test]
    fn matching_table() {
        let mut index = RetainedIndex::new();
        let topics = ["a", "a/b", "a/b/c", "a//b", "/a", "a/", "$SYS/x", "b/$x"];
        for (i, topic) in topics.iter().enumerate() {
            assert_eq!(index.set(topic, i as u32), Ok(None));
        }
        assert_eq!(index.set("a", 100), Ok(Some(0)));
        assert_eq!(index.set("a/+", 0), Err(TopicError::WildcardInName));
        let cases: &[(&str, &[usize])] = &[
            ("a/#", &[0, 1, 2, 3, 5]),
            ("#", &[0, 1, 2, 3, 4, 5, 7]),
            ("+", &[0]),
            ("+/+", &[1, 4, 5, 7]),
            ("$SYS/#", &[6]),
            ("+/x", &[]),
            ("a/+/b", &[3]),
            ("b/+", &[7]),
        ];
        for (filter, expected) in cases {
            let got: Vec<String> = matching(&index, filter)
                .into_iter()
                .map(|(t, _)| t)
                .collect();
            let mut want: Vec<String> = expected.iter().map(|&i| topics[i].to_owned()).collect();
            want.sort();
            assert_eq!(got, want, "{filter}");
        }
        assert_eq!(index.get("a"), Some(&100));
        assert_eq!(index.get("a/b/c/d"), None);
    }

    proptest! {
        #[test]
        fn agrees_with_a_scan_and_frees_everything(
            topics in prop::collection::vec(strategy::topic(), 1..30),
            filters in prop::collection::vec(strategy::filter(), 1..10),
        ) {
            let mut index = RetainedIndex::new();
            for (i, topic) in topics.iter().enumerate() {
                index.set(topic, i as u32).unwrap();
            }
            let mut stored: std::collections::BTreeMap<&str, u32> = Default::default();
            for (i, topic) in topics.iter().enumerate() {
                stored.insert(topic, i as u32);
            }
            prop_assert_eq!(index.len(), stored.len());
            for filter in &filters {
                let want: Vec<(String, u32)> = stored
                    .iter()
                    .filter(|(t, _)| naive_matches(filter, t))
                    .map(|(t, v)| (t.to_string(), *v))
                    .collect();
                prop_assert_eq!(matching(&index, filter), want);
            }
            for (topic, value) in &stored {
                prop_assert_eq!(index.remove(topic), Some(*value));
                prop_assert_eq!(index.remove(topic), None);
            }
            prop_assert!(index.is_empty());
            prop_assert_eq!(index.node_count(), 0);
        }
    }
}
