//! The exact-level children of a trie node, sized for the common case.
//!
//! Most nodes have one to a few children (`dev/{id}` has `cmd`, `status`);
//! a few have very many (`dev` has one per device). A short vector serves the
//! first kind in a single exact-sized allocation; a hash map of boxed nodes
//! serves the second, keeping its empty buckets pointer-sized.

use hashbrown::HashMap;

/// Above this many children a node switches from a vector to a hash map.
const FEW_MAX: usize = 8;

/// Children keyed by level text.
#[derive(Debug)]
pub(crate) enum Children<N> {
    /// Up to [`FEW_MAX`] children, searched linearly.
    Few(Vec<(Box<str>, N)>),
    /// More children, hashed.
    Many(Box<HashMap<Box<str>, Box<N>>>),
}

impl<N> Default for Children<N> {
    fn default() -> Self {
        Children::Few(Vec::new())
    }
}

impl<N> Children<N> {
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Children::Few(few) => few.is_empty(),
            Children::Many(many) => many.is_empty(),
        }
    }

    pub(crate) fn get(&self, level: &str) -> Option<&N> {
        match self {
            Children::Few(few) => few.iter().find(|(k, _)| &**k == level).map(|(_, n)| n),
            Children::Many(many) => many.get(level).map(|n| &**n),
        }
    }

    pub(crate) fn get_mut(&mut self, level: &str) -> Option<&mut N> {
        match self {
            Children::Few(few) => few.iter_mut().find(|(k, _)| &**k == level).map(|(_, n)| n),
            Children::Many(many) => many.get_mut(level).map(|n| &mut **n),
        }
    }

    /// The child at `level`, created with `make` (and counted) when absent.
    pub(crate) fn get_or_insert_with(
        &mut self,
        level: &str,
        created: &mut usize,
        make: impl FnOnce() -> N,
    ) -> &mut N {
        if let Children::Few(few) = self {
            if few.len() >= FEW_MAX && !few.iter().any(|(k, _)| &**k == level) {
                let map = std::mem::take(few)
                    .into_iter()
                    .map(|(k, n)| (k, Box::new(n)))
                    .collect();
                *self = Children::Many(Box::new(map));
            }
        }
        match self {
            Children::Few(few) => {
                let index = match few.iter().position(|(k, _)| &**k == level) {
                    Some(index) => index,
                    None => {
                        *created += 1;
                        // Exact growth: most vectors hold one child for good.
                        few.reserve_exact(1);
                        few.push((level.into(), make()));
                        few.len() - 1
                    }
                };
                &mut few[index].1
            }
            Children::Many(many) => many.entry(level.into()).or_insert_with(|| {
                *created += 1;
                Box::new(make())
            }),
        }
    }

    /// Removes the child at `level`, shrinking storage that churn left oversized.
    pub(crate) fn remove(&mut self, level: &str) -> Option<N> {
        match self {
            Children::Few(few) => {
                let index = few.iter().position(|(k, _)| &**k == level)?;
                let (_, node) = few.swap_remove(index);
                if few.is_empty() {
                    *few = Vec::new();
                }
                Some(node)
            }
            Children::Many(many) => {
                let node = *many.remove(level)?;
                if many.len() <= FEW_MAX / 2 {
                    let mut few = Vec::with_capacity(many.len());
                    few.extend(many.drain().map(|(k, n)| (k, *n)));
                    *self = Children::Few(few);
                } else if many.len() * 4 < many.capacity() {
                    many.shrink_to_fit();
                }
                Some(node)
            }
        }
    }

    pub(crate) fn iter(&self) -> Iter<'_, N> {
        match self {
            Children::Few(few) => Iter::Few(few.iter()),
            Children::Many(many) => Iter::Many(many.iter()),
        }
    }
}

/// Iterator over `(level, child)` pairs.
pub(crate) enum Iter<'a, N> {
    Few(std::slice::Iter<'a, (Box<str>, N)>),
    Many(hashbrown::hash_map::Iter<'a, Box<str>, Box<N>>),
}

impl<'a, N> Iterator for Iter<'a, N> {
    type Item = (&'a str, &'a N);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Few(few) => few.next().map(|(k, n)| (&**k, n)),
            Iter::Many(many) => many.next().map(|(k, n)| (&**k, &**n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_into_a_map_and_shrinks_back() {
        let mut children: Children<usize> = Children::default();
        let mut created = 0;
        for i in 0..100 {
            *children.get_or_insert_with(&i.to_string(), &mut created, || i) += 1000;
        }
        assert!(matches!(children, Children::Many(_)));
        assert_eq!(created, 100);
        assert_eq!(children.get("42"), Some(&1042));
        *children.get_or_insert_with("42", &mut created, || 0) += 1;
        assert_eq!(created, 100);
        assert_eq!(children.iter().count(), 100);
        for i in 0..100 {
            assert_eq!(
                children.remove(&i.to_string()),
                Some(i + 1000 + usize::from(i == 42))
            );
        }
        assert!(children.is_empty());
        assert!(matches!(&children, Children::Few(v) if v.capacity() == 0));
        assert_eq!(children.remove("x"), None);
    }
}
