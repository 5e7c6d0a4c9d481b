//! MQTT 5 wills that wait for their Will Delay Interval: one per client id at most, in
//! memory. A new connection for the client decides early: resuming the session cancels the
//! will (MQTT-3.1.3-9), a Clean Start ends the session, which publishes it at once.
//!
//! The waiting task and a new connection race only through [`PendingWills`]' lock: whoever
//! takes the entry out of the map decides, the other side does nothing (the task, having lost
//! its entry, waits for the decision the connection sends it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hashbrown::HashMap;
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The wills waiting for their delay, by client id.
#[derive(Debug, Default)]
pub(crate) struct PendingWills {
    waiting: Mutex<HashMap<Arc<str>, Waiting>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Waiting {
    id: u64,
    /// `true`: publish it now (the session ended); `false`: drop it (the session resumed).
    decide: oneshot::Sender<bool>,
}

/// A will registered by [`PendingWills::wait`]: what its task needs to know it is still its
/// own, and where a new connection's decision arrives.
#[derive(Debug)]
pub(crate) struct WillTicket {
    pub(crate) id: u64,
    pub(crate) decision: oneshot::Receiver<bool>,
}

impl PendingWills {
    /// Registers the will of `client` as waiting. A will still waiting from an earlier
    /// connection is published now: the session it belonged to ended (the caller's will
    /// replaces it only once that session was handed over, which decided it already).
    pub(crate) fn wait(&self, client: &Arc<str>) -> WillTicket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (decide, decision) = oneshot::channel();
        let old = self
            .waiting
            .lock()
            .insert(client.clone(), Waiting { id, decide });
        if let Some(old) = old {
            let _ = old.decide.send(true);
        }
        WillTicket { id, decision }
    }

    /// A new connection for `client` took its session: a waiting will is dropped when the
    /// session resumes, published at once when it does not (`session_ended`).
    pub(crate) fn connected(&self, client: &str, session_ended: bool) {
        if let Some(waiting) = self.waiting.lock().remove(client) {
            let _ = waiting.decide.send(session_ended);
        }
    }

    /// The delay of will `id` passed: `true` if it is still waiting (it is taken out, and is
    /// the caller's to publish), `false` if a connection took it first (and decides).
    pub(crate) fn take_due(&self, client: &str, id: u64) -> bool {
        let mut waiting = self.waiting.lock();
        if waiting.get(client).is_some_and(|w| w.id == id) {
            waiting.remove(client);
            return true;
        }
        false
    }

    /// How many wills wait (for the tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.waiting.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resuming_cancels_and_a_clean_start_publishes() {
        let wills = PendingWills::default();
        let client: Arc<str> = Arc::from("c");
        let mut ticket = wills.wait(&client);
        wills.connected("c", false);
        assert_eq!(ticket.decision.try_recv(), Ok(false));
        assert!(!wills.take_due("c", ticket.id), "decided already");
        let mut ticket = wills.wait(&client);
        wills.connected("c", true);
        assert_eq!(ticket.decision.try_recv(), Ok(true));
        assert_eq!(wills.len(), 0);
    }

    #[test]
    fn a_due_will_is_taken_once_and_only_by_its_own_ticket() {
        let wills = PendingWills::default();
        let client: Arc<str> = Arc::from("c");
        let mut first = wills.wait(&client);
        let second = wills.wait(&client);
        assert_eq!(
            first.decision.try_recv(),
            Ok(true),
            "the older will is published"
        );
        assert!(!wills.take_due("c", first.id));
        assert!(wills.take_due("c", second.id));
        assert!(!wills.take_due("c", second.id));
        wills.connected("c", false);
        assert_eq!(wills.len(), 0);
    }
}
