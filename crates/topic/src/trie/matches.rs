//! The reusable buffer a match fills.

use std::hash::Hash;

use hashbrown::HashMap;

/// The subscribers a topic reaches, filled by
/// [`SubscriptionTrie::match_topic`](crate::SubscriptionTrie::match_topic).
///
/// Keep one per thread (or per connection task) and pass it to every match:
/// it is cleared, not freed, so after the first few messages matching
/// allocates nothing.
#[derive(Debug)]
pub struct Matches<K, V> {
    plain: HashMap<K, V>,
    shared: Vec<(K, V)>,
}

impl<K, V> Default for Matches<K, V> {
    fn default() -> Self {
        Matches {
            plain: HashMap::new(),
            shared: Vec::new(),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Ord + Clone> Matches<K, V> {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the buffer, keeping its capacity.
    pub fn clear(&mut self) {
        self.plain.clear();
        self.shared.clear();
    }

    /// Plain subscribers, each once, with the highest value among the filters
    /// of theirs that matched. Order is unspecified.
    pub fn plain(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.plain.iter()
    }

    /// The member chosen in each matching shared group, with its value.
    /// A client chosen by a group and also subscribed plainly appears in both
    /// lists: they are separate subscriptions.
    pub fn shared(&self) -> &[(K, V)] {
        &self.shared
    }

    /// Every delivery: plain subscribers, then shared-group picks.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.plain
            .iter()
            .chain(self.shared.iter().map(|(k, v)| (k, v)))
    }

    /// Number of deliveries ([`iter`](Self::iter)'s length).
    pub fn len(&self) -> usize {
        self.plain.len() + self.shared.len()
    }

    /// True when the topic reached nobody.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn add_plain(&mut self, key: &K, value: &V) {
        match self.plain.get_mut(key) {
            Some(best) if *best < *value => *best = value.clone(),
            Some(_) => {}
            None => {
                self.plain.insert(key.clone(), value.clone());
            }
        }
    }

    pub(crate) fn add_shared(&mut self, key: &K, value: &V) {
        self.shared.push((key.clone(), value.clone()));
    }
}
