//! The plain subscribers of one filter: key to granted value.

use std::hash::Hash;

use hashbrown::HashMap;
use smallvec::SmallVec;

/// Above this many subscribers a set switches from a vector to a hash map.
const SMALL_MAX: usize = 8;

/// A set of subscribers keyed by `K`, each with a value.
///
/// Nearly every filter has one subscriber (`dev/{id}/cmd`), which fits inline;
/// a filter every installed app subscribes to has millions, which need hashing.
#[derive(Debug)]
pub(crate) enum Subscribers<K, V> {
    Small(SmallVec<[(K, V); 1]>),
    Large(Box<HashMap<K, V>>),
}

impl<K, V> Default for Subscribers<K, V> {
    fn default() -> Self {
        Subscribers::Small(SmallVec::new())
    }
}

impl<K: Eq + Hash, V> Subscribers<K, V> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Subscribers::Small(small) => small.len(),
            Subscribers::Large(large) => large.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts or replaces; returns the replaced value.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Subscribers::Small(small) = self {
            if let Some((_, old)) = small.iter_mut().find(|(k, _)| *k == key) {
                return Some(std::mem::replace(old, value));
            }
            if small.len() < SMALL_MAX {
                small.push((key, value));
                return None;
            }
            let large = std::mem::take(small).into_iter().collect();
            *self = Subscribers::Large(Box::new(large));
        }
        match self {
            Subscribers::Small(_) => None,
            Subscribers::Large(large) => large.insert(key, value),
        }
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        match self {
            Subscribers::Small(small) => {
                let index = small.iter().position(|(k, _)| k == key)?;
                let (_, value) = small.swap_remove(index);
                if small.is_empty() {
                    small.shrink_to_fit();
                }
                Some(value)
            }
            Subscribers::Large(large) => {
                let value = large.remove(key)?;
                if large.len() <= SMALL_MAX / 2 {
                    *self = Subscribers::Small(large.drain().collect());
                } else if large.len() * 4 < large.capacity() {
                    large.shrink_to_fit();
                }
                Some(value)
            }
        }
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        match self {
            Subscribers::Small(small) => small.iter().for_each(|(k, v)| f(k, v)),
            Subscribers::Large(large) => large.iter().for_each(|(k, v)| f(k, v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replace_remove_across_the_switch() {
        let mut set = Subscribers::default();
        for i in 0..50u32 {
            assert_eq!(set.insert(i, i), None);
            assert_eq!(set.insert(i, i + 1), Some(i));
        }
        assert!(matches!(set, Subscribers::Large(_)));
        assert_eq!(set.len(), 50);
        let mut sum = 0;
        set.for_each(|_, v| sum += v);
        assert_eq!(sum, (1..=50).sum::<u32>());
        for i in 0..50u32 {
            assert_eq!(set.remove(&i), Some(i + 1));
            assert_eq!(set.remove(&i), None);
        }
        assert!(set.is_empty());
        assert!(matches!(set, Subscribers::Small(_)));
    }
}
