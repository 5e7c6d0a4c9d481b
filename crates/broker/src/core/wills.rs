//! MQTT 5 wills that wait for their Will Delay Interval: one per client id at most, in
//! memory. A new connection for the client decides early: resuming the session cancels the
//! will (MQTT-3.1.3-9), a Clean Start ends the session, which publishes it at once.
//!
//! In a cluster a connection of the client on another node cancels it too, once that
//! connection is newer than the one that left the will ([`PendingWills::connected_elsewhere`]);
//! and a node publishing the will of a dead node's client waits for its delay the same way
//! ([`WillSession::Gone`]), any new connection of the client cancelling it.
//!
//! The waiting task and a new connection race only through [`PendingWills`]' lock: whoever
//! takes the entry out of the map decides, the other side does nothing (the task, having lost
//! its entry, waits for the decision the connection sends it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

/// The wills waiting for their delay, by client id.
#[derive(Debug, Default)]
pub(crate) struct PendingWills {
    waiting: Mutex<HashMap<Arc<str>, Waiting>>,
    next_id: AtomicU64,
}

/// Where the session a waiting will belongs to is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WillSession {
    /// On this node: its connection, made at `connected_at_ms` (ms since the Unix epoch),
    /// ended here. A connection on another node cancels the will only when it was made later
    /// (an earlier one is older news, read late; the nodes' clocks are taken to agree within
    /// the time a client takes to connect again).
    Here { connected_at_ms: u64 },
    /// On a node that died (cluster): the will is this node's to publish. Every connection of
    /// the client from now on, here or elsewhere, is newer than the lost one and cancels it:
    /// the session stayed with the dead node, so there is nothing to resume or to end here.
    Gone,
}

#[derive(Debug)]
struct Waiting {
    id: u64,
    session: WillSession,
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

impl WillTicket {
    /// Waits until the will of `client` is decided: `Some(true)` when it is to be published
    /// (its `delay` passed, or a connection ended its session), `Some(false)` when a
    /// connection cancelled it, `None` when `shutdown` came first (it stays undecided).
    pub(crate) async fn decided(
        self,
        wills: &PendingWills,
        client: &str,
        delay: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<bool> {
        let WillTicket { id, mut decision } = self;
        let decided = tokio::select! {
            () = tokio::time::sleep(delay) => None,
            decided = &mut decision => Some(decided.unwrap_or(false)),
            _ = shutdown.wait_for(|down| *down) => return None,
        };
        Some(match decided {
            Some(publish) => publish,
            // Due: the will is the ticket's unless a connection took it meanwhile, whose
            // decision then comes.
            None => wills.take_due(client, id) || decision.await.unwrap_or(false),
        })
    }
}

impl PendingWills {
    /// Registers the will of `client` as waiting. A will still waiting from an earlier
    /// connection is published now: the session it belonged to ended (the caller's will
    /// replaces it only once that session was handed over, which decided it already).
    pub(crate) fn wait(&self, client: &Arc<str>, session: WillSession) -> WillTicket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (decide, decision) = oneshot::channel();
        let old = self.waiting.lock().insert(
            client.clone(),
            Waiting {
                id,
                session,
                decide,
            },
        );
        if let Some(old) = old {
            let _ = old.decide.send(true);
        }
        WillTicket { id, decision }
    }

    /// A new connection for `client` took its session: a waiting will is dropped when the
    /// session resumes, published at once when it does not (`session_ended`).
    /// The will of a dead node's session ([`WillSession::Gone`]) is dropped either way.
    pub(crate) fn connected(&self, client: &str, session_ended: bool) {
        if let Some(waiting) = self.waiting.lock().remove(client) {
            let publish = session_ended && waiting.session != WillSession::Gone;
            let _ = waiting.decide.send(publish);
        }
    }

    /// Another node says `client` connected there at `at_ms` (its clock): a waiting will of
    /// an earlier connection is dropped, the client being back (see [`WillSession`]).
    /// Returns whether one was.
    pub(crate) fn connected_elsewhere(&self, client: &str, at_ms: u64) -> bool {
        let mut waiting = self.waiting.lock();
        let newer = waiting.get(client).is_some_and(|w| match w.session {
            WillSession::Here { connected_at_ms } => at_ms > connected_at_ms,
            WillSession::Gone => true,
        });
        if !newer {
            return false;
        }
        if let Some(w) = waiting.remove(client) {
            let _ = w.decide.send(false);
        }
        true
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

    const HERE: WillSession = WillSession::Here {
        connected_at_ms: 1_000,
    };

    #[test]
    fn resuming_cancels_and_a_clean_start_publishes() {
        let wills = PendingWills::default();
        let client: Arc<str> = Arc::from("c");
        let mut ticket = wills.wait(&client, HERE);
        wills.connected("c", false);
        assert_eq!(ticket.decision.try_recv(), Ok(false));
        assert!(!wills.take_due("c", ticket.id), "decided already");
        let mut ticket = wills.wait(&client, HERE);
        wills.connected("c", true);
        assert_eq!(ticket.decision.try_recv(), Ok(true));
        assert_eq!(wills.len(), 0);
    }

    #[test]
    fn a_due_will_is_taken_once_and_only_by_its_own_ticket() {
        let wills = PendingWills::default();
        let client: Arc<str> = Arc::from("c");
        let mut first = wills.wait(&client, HERE);
        let second = wills.wait(&client, HERE);
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

    #[test]
    fn a_newer_connection_elsewhere_cancels() {
        let wills = PendingWills::default();
        let client: Arc<str> = Arc::from("c");
        let mut ticket = wills.wait(&client, HERE);
        assert!(
            !wills.connected_elsewhere("c", 999),
            "a connection older than the one that left the will"
        );
        assert!(!wills.connected_elsewhere("c", 1_000));
        assert!(ticket.decision.try_recv().is_err(), "still waiting");
        assert!(wills.connected_elsewhere("c", 1_001));
        assert_eq!(ticket.decision.try_recv(), Ok(false));
        assert!(!wills.take_due("c", ticket.id));
        assert!(!wills.connected_elsewhere("c", 2_000), "nothing waits");
    }

    #[test]
    fn a_dead_nodes_will_is_dropped_by_any_connection() {
        let wills = PendingWills::default();
        let client: Arc<str> = Arc::from("c");
        let mut ticket = wills.wait(&client, WillSession::Gone);
        wills.connected("c", true);
        assert_eq!(
            ticket.decision.try_recv(),
            Ok(false),
            "a clean start here does not end the dead node's session"
        );
        let mut ticket = wills.wait(&client, WillSession::Gone);
        assert!(wills.connected_elsewhere("c", 0));
        assert_eq!(ticket.decision.try_recv(), Ok(false));
        assert_eq!(wills.len(), 0);
    }
}
