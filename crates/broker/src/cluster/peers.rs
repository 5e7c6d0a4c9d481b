//! Heartbeats and the peers they reveal: every node announces itself on the nodes topic
//! every `heartbeat_ms`; a peer is alive while its last heartbeat is younger than
//! `dead_after_ms`, and gone at once when it says it leaves.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The tag of a heartbeat.
pub(super) const HEARTBEAT: &str = "heartbeat";
/// The tag of a node's last word when it stops.
pub(super) const LEAVE: &str = "leave";

/// What a heartbeat carries (JSON, fields added with defaults only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Heartbeat {
    /// The sending node.
    pub(super) node_id: String,
    /// When it started (ms since the epoch): a restarted node has a newer one.
    pub(super) started_ms: u64,
    /// When this heartbeat was sent, by the sender's clock.
    pub(super) sent_ms: u64,
    /// Where its MQTT clients connect (its first TCP listener), empty if it has none.
    #[serde(default)]
    pub(super) address: String,
    /// Its clients online when it sent this heartbeat (0 from a node that does not say).
    #[serde(default)]
    pub(super) clients: u64,
}

/// A node of the cluster as this node sees it, from
/// [`BrokerHandle::cluster`](crate::BrokerHandle::cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Its `node_id`.
    pub node_id: String,
    /// When it started (ms since the epoch).
    pub started_ms: u64,
    /// When this node last heard from it (ms since the epoch, this node's clock); for this
    /// node itself, when it last sent a heartbeat RocketMQ took.
    pub last_heartbeat_ms: u64,
    /// Where its MQTT clients connect, as it says; empty if it has no TCP listener.
    pub address: String,
    /// Its clients online: as of its last heartbeat for a peer, now for this node.
    pub clients: u64,
    /// Whether this is the node answering.
    pub this_node: bool,
}

/// The peers heard from, by node id.
#[derive(Debug, Default)]
pub(super) struct Peers {
    seen: Mutex<BTreeMap<String, ClusterNode>>,
}

/// What a consumed heartbeat meant.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Heard {
    /// A peer is alive (or alive again).
    Alive,
    /// A peer left.
    Left,
    /// Too old to mean anything now (a replay of the topic's history), or this node's own.
    Ignored,
    /// Another node sends with this node's id.
    Impostor,
}

impl Peers {
    /// Takes in one heartbeat (`leave`: the sender's last word) received at `now` by the
    /// node `own` (its id and when it started).
    pub(super) fn heard(
        &self,
        beat: Heartbeat,
        leave: bool,
        now: u64,
        dead_after_ms: u64,
        own: (&str, u64),
    ) -> Heard {
        if beat.node_id == own.0 {
            // This node's own, or an earlier run of it (sent before this one started: a
            // restarted node reads what its last run sent and did not see); anything else
            // under this id comes from another node.
            return if beat.started_ms == own.1 || beat.sent_ms < own.1 {
                Heard::Ignored
            } else {
                Heard::Impostor
            };
        }
        let mut seen = self.seen.lock();
        if leave {
            // Only the incarnation that left: a newer start of the same id stays.
            if seen
                .get(&beat.node_id)
                .is_some_and(|peer| peer.started_ms <= beat.started_ms)
            {
                seen.remove(&beat.node_id);
            }
            return Heard::Left;
        }
        if now.saturating_sub(beat.sent_ms) >= dead_after_ms {
            return Heard::Ignored;
        }
        if seen
            .get(&beat.node_id)
            .is_some_and(|peer| peer.started_ms > beat.started_ms)
        {
            // A late heartbeat of an earlier incarnation.
            return Heard::Ignored;
        }
        seen.insert(
            beat.node_id.clone(),
            ClusterNode {
                node_id: beat.node_id,
                started_ms: beat.started_ms,
                last_heartbeat_ms: now,
                address: beat.address,
                clients: beat.clients,
                this_node: false,
            },
        );
        Heard::Alive
    }

    /// Whether the run of `node_id` that started at `started_ms` is alive at `now`.
    pub(super) fn is_alive(
        &self,
        node_id: &str,
        started_ms: u64,
        now: u64,
        dead_after_ms: u64,
    ) -> bool {
        self.seen.lock().get(node_id).is_some_and(|peer| {
            peer.started_ms == started_ms
                && now.saturating_sub(peer.last_heartbeat_ms) < dead_after_ms
        })
    }

    /// The peers alive at `now`, by node id; the silent ones are forgotten.
    pub(super) fn alive(&self, now: u64, dead_after_ms: u64) -> Vec<ClusterNode> {
        let mut seen = self.seen.lock();
        seen.retain(|_, peer| now.saturating_sub(peer.last_heartbeat_ms) < dead_after_ms);
        seen.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(node: &str, started: u64, sent: u64) -> Heartbeat {
        Heartbeat {
            node_id: node.into(),
            started_ms: started,
            sent_ms: sent,
            address: String::new(),
            clients: 0,
        }
    }

    #[test]
    fn alive_until_silent_or_gone() {
        let peers = Peers::default();
        let own = ("a", 5);
        assert_eq!(
            peers.heard(beat("a", 5, 100), false, 100, 50, own),
            Heard::Ignored
        );
        assert_eq!(
            peers.heard(beat("a", 6, 100), false, 100, 50, own),
            Heard::Impostor
        );
        assert_eq!(
            peers.heard(beat("b", 1, 100), false, 100, 50, own),
            Heard::Alive
        );
        // An earlier run of this node, read back after a restart.
        assert_eq!(
            peers.heard(beat("a", 1, 4), true, 100, 50, own),
            Heard::Ignored
        );
        // A heartbeat from the topic's history is too old to count.
        assert_eq!(
            peers.heard(beat("c", 1, 10), false, 100, 50, own),
            Heard::Ignored
        );
        let names = |v: Vec<ClusterNode>| v.into_iter().map(|n| n.node_id).collect::<Vec<_>>();
        assert_eq!(names(peers.alive(149, 50)), ["b"]);
        assert!(peers.is_alive("b", 1, 149, 50));
        assert!(!peers.is_alive("b", 2, 149, 50), "another run of b");
        assert!(!peers.is_alive("b", 1, 150, 50));
        assert!(peers.alive(150, 50).is_empty(), "silent for dead_after");
        assert_eq!(
            peers.heard(beat("b", 1, 200), false, 200, 50, own),
            Heard::Alive
        );
        // A restart: the newer incarnation replaces the older; the older one's leave and
        // late heartbeats do not take it away.
        assert_eq!(
            peers.heard(beat("b", 2, 201), false, 201, 50, own),
            Heard::Alive
        );
        assert_eq!(
            peers.heard(beat("b", 1, 202), false, 202, 50, own),
            Heard::Ignored
        );
        assert_eq!(
            peers.heard(beat("b", 1, 203), true, 203, 50, own),
            Heard::Left
        );
        assert_eq!(names(peers.alive(204, 50)), ["b"]);
        assert_eq!(
            peers.heard(beat("b", 2, 205), true, 205, 50, own),
            Heard::Left
        );
        assert!(peers.alive(205, 50).is_empty());
    }
}
