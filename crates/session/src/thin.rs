//! [`Thin`]: a `VecDeque` or `Vec` that costs one word of the session while it holds nothing.
//!
//! A broker keeps a session per connected client, and most clients are idle most of the
//! time: their session's queues are empty. A `VecDeque` is four words even when empty, and
//! a session has six of them. Boxed behind an `Option`, each is one word until something is
//! pushed, and [`Thin::release_if_empty`] gives the box back.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};

/// The session's events, in order.
pub(crate) type Events = Thin<VecDeque<crate::Event>>;

/// A collection in a box made at the first mutable use. Reads go through [`Deref`] (an
/// absent box reads as an empty collection); mutable uses through [`DerefMut`] make the
/// box, except the inherent methods here, which leave an absent box absent.
pub(crate) struct Thin<C>(Option<Box<C>>);

/// The collections a [`Thin`] can hold: what an absent one reads as.
pub(crate) trait Empty: Default + 'static {
    /// An empty collection, for reads of an absent box.
    const EMPTY: &'static Self;
}

impl<T: 'static> Empty for VecDeque<T> {
    const EMPTY: &'static Self = &VecDeque::new();
}

impl<T: 'static> Empty for Vec<T> {
    const EMPTY: &'static Self = &Vec::new();
}

impl<C> Default for Thin<C> {
    fn default() -> Self {
        Thin(None)
    }
}

impl<C: fmt::Debug + Empty> fmt::Debug for Thin<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<C: Empty> Deref for Thin<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.0.as_deref().unwrap_or(C::EMPTY)
    }
}

impl<C: Empty> DerefMut for Thin<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<C: Empty> From<C> for Thin<C> {
    fn from(collection: C) -> Self {
        Thin(Some(Box::new(collection)))
    }
}

impl<C: Empty> Thin<C> {
    /// Whether the box exists (for tests of what makes it).
    #[cfg(test)]
    pub(crate) fn is_boxed(&self) -> bool {
        self.0.is_some()
    }

    /// Gives the box back if the collection is empty (`is_empty` of the collection).
    pub(crate) fn release_if(&mut self, empty: impl FnOnce(&C) -> bool) {
        if self.0.as_deref().is_some_and(empty) {
            self.0 = None;
        }
    }
}

impl<T: 'static> Thin<VecDeque<T>> {
    /// Gives the box back if the queue is empty.
    pub(crate) fn release_if_empty(&mut self) {
        self.release_if(VecDeque::is_empty);
    }

    /// [`VecDeque::pop_front`], without making a box to find nothing in.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        self.0.as_mut()?.pop_front()
    }

    /// [`VecDeque::clear`], without making a box to clear.
    pub(crate) fn clear(&mut self) {
        if let Some(queue) = &mut self.0 {
            queue.clear();
        }
    }

    /// [`VecDeque::retain`], without making a box to look in.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        if let Some(queue) = &mut self.0 {
            queue.retain(keep);
        }
    }

    /// Every element, front first, and the box with them.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = T> {
        self.0
            .take()
            .into_iter()
            .flat_map(|queue| queue.into_iter())
    }
}

impl<T: 'static> Thin<Vec<T>> {
    /// Gives the box back if the vector is empty.
    pub(crate) fn release_if_empty(&mut self) {
        self.release_if(Vec::is_empty);
    }

    /// [`Vec::clear`], without making a box to clear.
    pub(crate) fn clear(&mut self) {
        if let Some(vec) = &mut self.0 {
            vec.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thin_queue_boxes_on_push_and_gives_the_box_back_when_empty() {
        let mut queue: Thin<VecDeque<u8>> = Thin::default();
        assert!(queue.is_empty());
        assert_eq!(queue.pop_front(), None);
        queue.clear();
        assert!(queue.0.is_none(), "reads, pops and clears make no box");
        queue.push_back(1);
        queue.push_back(2);
        assert_eq!(queue.len(), 2);
        queue.release_if_empty();
        assert!(queue.0.is_some(), "not empty: kept");
        assert_eq!(queue.take_all().collect::<Vec<_>>(), [1, 2]);
        assert!(queue.0.is_none(), "taking all takes the box");
        queue.push_back(3);
        assert_eq!(queue.pop_front(), Some(3));
        queue.release_if_empty();
        assert!(queue.0.is_none());
        assert_eq!(
            std::mem::size_of::<Thin<VecDeque<u8>>>(),
            std::mem::size_of::<usize>()
        );
    }

    /// An idle connection's session is allocated at this size: the figure is bytes of the
    /// struct, not a timing.
    #[test]
    fn an_idle_session_stays_small() {
        let size = std::mem::size_of::<crate::Session>();
        assert!(size <= 240, "Session is {size} bytes");
    }
}
