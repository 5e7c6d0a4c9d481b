//! The subscription index: a trie of filter levels.

mod matches;
mod share;
mod subscribers;

use std::hash::Hash;

pub use matches::Matches;
pub use share::SharePolicy;

use crate::children::Children;
use crate::filter::{Level, Levels};
use crate::shared::validate_group;
use crate::{SubscriptionFilter, TopicError, TopicFilter};
use share::SharedGroup;
use subscribers::Subscribers;

/// Default deepest filter the trie accepts, in levels.
///
/// Trie operations recurse once per level, so depth is what bounds their stack
/// use; a peer subscribing to `+/+/.../+` thousands deep is refused instead.
pub const DEFAULT_MAX_LEVELS: usize = 256;

/// Settings of a [`SubscriptionTrie`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrieConfig {
    /// How shared groups pick a member.
    pub share_policy: SharePolicy,
    /// Deepest filter accepted, in levels.
    pub max_levels: usize,
}

impl Default for TrieConfig {
    fn default() -> Self {
        TrieConfig {
            share_policy: SharePolicy::default(),
            max_levels: DEFAULT_MAX_LEVELS,
        }
    }
}

/// A subscription index: which subscribers (`K`, with a value `V` such as the
/// granted QoS) a published topic reaches.
///
/// A match walks only the branches that can match the topic (the exact child,
/// `+`, `#` at each level), so its cost follows the topic's depth and the
/// number of matching filters, not the number of subscriptions.
///
/// Matching takes `&self` (shared-group cursors are atomic), so a broker can
/// keep the trie behind a read-write lock and match under the read lock.
///
/// ```
/// use mqgate_topic::{Matches, SubscriptionTrie, TopicFilter};
///
/// let mut trie = SubscriptionTrie::new();
/// let f = |s| TopicFilter::parse(s).unwrap();
/// trie.insert(&f("dev/42/cmd"), "phone", 1)?;
/// trie.insert(&f("dev/+/cmd"), "phone", 2)?;
/// trie.insert(&f("dev/#"), "logger", 0)?;
///
/// let mut out = Matches::new();
/// trie.match_topic("dev/42/cmd", &mut out);
/// let mut got: Vec<_> = out.plain().map(|(k, v)| (*k, *v)).collect();
/// got.sort();
/// assert_eq!(got, [("logger", 0), ("phone", 2)]);
/// # Ok::<(), mqgate_topic::TopicError>(())
/// ```
#[derive(Debug)]
pub struct SubscriptionTrie<K, V> {
    root: Node<K, V>,
    len: usize,
    node_count: usize,
    config: TrieConfig,
}

#[derive(Debug)]
struct Node<K, V> {
    children: Children<Node<K, V>>,
    plus: Option<Box<Node<K, V>>>,
    /// Subscribers of `{path}/#`.
    hash: Option<Box<Leaf<K, V>>>,
    /// Subscribers of exactly `{path}`.
    leaf: Option<Box<Leaf<K, V>>>,
}

#[derive(Debug)]
struct Leaf<K, V> {
    plain: Subscribers<K, V>,
    shared: Vec<SharedGroup<K, V>>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            children: Children::default(),
            plus: None,
            hash: None,
            leaf: None,
        }
    }
}

impl<K, V> Default for Leaf<K, V> {
    fn default() -> Self {
        Leaf {
            plain: Subscribers::default(),
            shared: Vec::new(),
        }
    }
}

impl<K: Eq + Hash, V> Leaf<K, V> {
    fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.shared.is_empty()
    }
}

impl<K, V> Node<K, V> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
            && self.leaf.is_none()
    }
}

impl<K: Eq + Hash + Clone, V: Ord + Clone> Default for SubscriptionTrie<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone, V: Ord + Clone> SubscriptionTrie<K, V> {
    /// An empty trie with the default [`TrieConfig`] (round-robin shared groups).
    pub fn new() -> Self {
        Self::with_config(TrieConfig::default())
    }

    /// An empty trie with `config`.
    pub fn with_config(config: TrieConfig) -> Self {
        SubscriptionTrie {
            root: Node::default(),
            len: 0,
            node_count: 0,
            config,
        }
    }

    /// The settings this trie was built with.
    pub fn config(&self) -> &TrieConfig {
        &self.config
    }

    /// Number of subscriptions: plain (filter, key) pairs plus shared-group memberships.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no subscription.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of trie nodes below the root: zero again once every subscription is removed.
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// Subscribes `key` to `filter` with `value`; returns the value it replaces
    /// if `key` was already subscribed to exactly this filter.
    pub fn insert(
        &mut self,
        filter: &TopicFilter,
        key: K,
        value: V,
    ) -> Result<Option<V>, TopicError> {
        let leaf = self.leaf_mut(filter)?;
        let old = leaf.plain.insert(key, value);
        self.len += usize::from(old.is_none());
        Ok(old)
    }

    /// Unsubscribes `key` from exactly `filter`; returns its value.
    pub fn remove(&mut self, filter: &TopicFilter, key: &K) -> Option<V> {
        self.remove_with(filter, |leaf| leaf.plain.remove(key))
    }

    /// Adds `key` to the shared group `$share/{group}/{filter}`; returns the
    /// value it replaces if `key` was already a member.
    pub fn insert_shared(
        &mut self,
        group: &str,
        filter: &TopicFilter,
        key: K,
        value: V,
    ) -> Result<Option<V>, TopicError> {
        validate_group(group)?;
        let policy = self.config.share_policy;
        let leaf = self.leaf_mut(filter)?;
        let old = match leaf.shared.iter_mut().find(|g| &*g.name == group) {
            Some(existing) => existing.insert(key, value),
            None => {
                let mut created = SharedGroup::new(group, policy);
                created.insert(key, value);
                leaf.shared.push(created);
                None
            }
        };
        self.len += usize::from(old.is_none());
        Ok(old)
    }

    /// Removes `key` from the shared group `$share/{group}/{filter}`; returns its value.
    pub fn remove_shared(&mut self, group: &str, filter: &TopicFilter, key: &K) -> Option<V> {
        self.remove_with(filter, |leaf| {
            let index = leaf.shared.iter().position(|g| &*g.name == group)?;
            let group = leaf.shared.get_mut(index)?;
            let value = group.remove(key)?;
            if group.members.is_empty() {
                leaf.shared.swap_remove(index);
            }
            Some(value)
        })
    }

    /// [`insert`](Self::insert) or [`insert_shared`](Self::insert_shared), as `filter` says.
    pub fn subscribe(
        &mut self,
        filter: &SubscriptionFilter,
        key: K,
        value: V,
    ) -> Result<Option<V>, TopicError> {
        match filter {
            SubscriptionFilter::Plain(filter) => self.insert(filter, key, value),
            SubscriptionFilter::Shared { group, filter } => {
                self.insert_shared(group, filter, key, value)
            }
        }
    }

    /// [`remove`](Self::remove) or [`remove_shared`](Self::remove_shared), as `filter` says.
    pub fn unsubscribe(&mut self, filter: &SubscriptionFilter, key: &K) -> Option<V> {
        match filter {
            SubscriptionFilter::Plain(filter) => self.remove(filter, key),
            SubscriptionFilter::Shared { group, filter } => self.remove_shared(group, filter, key),
        }
    }

    /// Fills `out` with who receives a message published to `topic`: every
    /// plain subscriber once, at its highest value, and one member of each
    /// matching shared group (all members considered available, no publisher).
    ///
    /// `topic` should be a valid topic name ([`crate::TopicName::validate`]).
    pub fn match_topic(&self, topic: &str, out: &mut Matches<K, V>) {
        self.match_topic_with(topic, None, |_| true, out);
    }

    /// Like [`match_topic`](Self::match_topic), with the publisher's identity
    /// (for [`SharePolicy::StickyByPublisher`]) and a predicate telling which
    /// shared-group members can take a message now (connected, window open):
    /// a group picks among those, or among all its members when none can.
    pub fn match_topic_with(
        &self,
        topic: &str,
        publisher: Option<&str>,
        available: impl Fn(&K) -> bool,
        out: &mut Matches<K, V>,
    ) {
        out.clear();
        let policy = self.config.share_policy;
        let mut visit = |leaf: &Leaf<K, V>| {
            leaf.plain.for_each(|k, v| out.add_plain(k, v));
            for group in &leaf.shared {
                if let Some((k, v)) = group.select(policy, publisher, &available) {
                    out.add_shared(k, v);
                }
            }
        };
        let (level, rest) = split_level(topic);
        // MQTT 3.1.1 section 4.7.2: leading wildcards skip `$` topics.
        if !topic.starts_with('$') {
            if let Some(hash) = &self.root.hash {
                visit(hash);
            }
            if let Some(plus) = &self.root.plus {
                plus.walk(rest, &mut visit);
            }
        }
        if let Some(child) = self.root.children.get(level) {
            child.walk(rest, &mut visit);
        }
    }

    /// The leaf of `filter`, created with its path.
    fn leaf_mut(&mut self, filter: &TopicFilter) -> Result<&mut Leaf<K, V>, TopicError> {
        let levels = filter.level_count();
        if levels > self.config.max_levels {
            return Err(TopicError::TooManyLevels {
                levels,
                max: self.config.max_levels,
            });
        }
        let created = &mut self.node_count;
        let mut node = &mut self.root;
        for level in filter.levels() {
            node = match level {
                Level::Normal(text) | Level::System(text) => {
                    node.children
                        .get_or_insert_with(text, created, Node::default)
                }
                Level::SingleWildcard => node.plus.get_or_insert_with(|| {
                    *created += 1;
                    Box::default()
                }),
                Level::MultiWildcard => {
                    return Ok(node.hash.get_or_insert_with(|| {
                        *created += 1;
                        Box::default()
                    }))
                }
            };
        }
        Ok(node.leaf.get_or_insert_with(Box::default))
    }

    /// Applies `op` to the leaf of `filter`, then frees what it left empty.
    fn remove_with(
        &mut self,
        filter: &TopicFilter,
        op: impl FnOnce(&mut Leaf<K, V>) -> Option<V>,
    ) -> Option<V> {
        let removed = self
            .root
            .remove_in(filter.levels(), &mut self.node_count, op);
        self.len -= usize::from(removed.is_some());
        removed
    }
}

impl<K: Eq + Hash, V> Node<K, V> {
    /// Visits the leaves under `self` that match the topic levels in `rest`
    /// (`None` once the topic is used up). Recursion depth is bounded by the
    /// trie's depth, which `max_levels` bounds.
    fn walk(&self, rest: Option<&str>, visit: &mut impl FnMut(&Leaf<K, V>)) {
        // `{path}/#` matches `{path}` itself and everything below it.
        if let Some(hash) = &self.hash {
            visit(hash);
        }
        let Some(rest) = rest else {
            if let Some(leaf) = &self.leaf {
                visit(leaf);
            }
            return;
        };
        let (level, rest) = split_level(rest);
        if let Some(child) = self.children.get(level) {
            child.walk(rest, visit);
        }
        if let Some(plus) = &self.plus {
            plus.walk(rest, visit);
        }
    }

    fn remove_in<R>(
        &mut self,
        mut levels: Levels<'_>,
        node_count: &mut usize,
        op: impl FnOnce(&mut Leaf<K, V>) -> Option<R>,
    ) -> Option<R> {
        match levels.next() {
            None => apply_to_leaf(&mut self.leaf, op).0,
            Some(Level::MultiWildcard) => {
                let (removed, freed) = apply_to_leaf(&mut self.hash, op);
                *node_count -= usize::from(freed);
                removed
            }
            Some(Level::SingleWildcard) => {
                let child = self.plus.as_mut()?;
                let removed = child.remove_in(levels, node_count, op);
                if child.is_empty() {
                    self.plus = None;
                    *node_count -= 1;
                }
                removed
            }
            Some(Level::Normal(text) | Level::System(text)) => {
                let child = self.children.get_mut(text)?;
                let removed = child.remove_in(levels, node_count, op);
                if child.is_empty() {
                    self.children.remove(text);
                    *node_count -= 1;
                }
                removed
            }
        }
    }
}

/// Applies `op` to the leaf in `slot`, freeing the leaf if `op` emptied it
/// (the `bool` says whether it did).
fn apply_to_leaf<K: Eq + Hash, V, R>(
    slot: &mut Option<Box<Leaf<K, V>>>,
    op: impl FnOnce(&mut Leaf<K, V>) -> Option<R>,
) -> (Option<R>, bool) {
    let Some(leaf) = slot.as_mut() else {
        return (None, false);
    };
    let removed = op(leaf);
    let freed = leaf.is_empty();
    if freed {
        *slot = None;
    }
    (removed, freed)
}

/// The first level of `topic` and what follows its `/`, if anything.
fn split_level(topic: &str) -> (&str, Option<&str>) {
    match topic.split_once('/') {
        Some((level, rest)) => (level, Some(rest)),
        None => (topic, None),
    }
}

#[cfg(test)]
mod tests;
