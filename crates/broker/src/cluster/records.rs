//! The registry topic: every change a node makes to its groups, tokens, device credentials
//! and custom-auth records crosses to the others (stamped, see `auth::replicated` for the
//! rule), and a node that joins asks the others for everything they hold (the registries and
//! the retained messages), which they send it on the same topic.
//!
//! Messages, by tag (user property `mqgateNode`: the sending node):
//! - `join`: a node's first send at start, so the topic exists before its consumer; nothing.
//! - `hello`: a node's consumer runs; body `{"sent_ms": ..}`. Every other node answers with
//!   its snapshot.
//! - `change`: body the JSON of a stamped change (`{"stamp":{"ms","node"},"removed",
//!   "record":{"kind","record"}}`). In a snapshot: user properties `mqgateFor` (the node it
//!   is for) and `mqgateSent` (when it was sent, ms).
//! - `retained`: a retained message (layout 2 of `docs/records.md`), in a snapshot only.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use mqgate_rocketmq::RocketMessage;
use mqgate_session::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::route::NODE;
use super::Cluster;
use crate::auth::replicated::{Change, ChangeFeed, Record, TOMBSTONE_MS};
use crate::bridge::send::Outgoing;
use crate::bridge::Consumed;
use crate::clock::unix_time_ms;
use crate::core::inbox::Kick;
use crate::core::Core;

/// The tag of a node's first message on the topic.
pub(super) const JOIN: &str = "join";
/// The tag of a joining node's request for the others' snapshots.
const HELLO: &str = "hello";
/// The tag of a change (or a snapshot's record).
const CHANGE: &str = "change";
/// The tag of a snapshot's retained message.
const RETAINED: &str = "retained";
/// The user property naming the node a snapshot is for.
const FOR: &str = "mqgateFor";
/// The user property saying when a snapshot was sent.
const SENT: &str = "mqgateSent";

/// What a hello carries.
#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    sent_ms: u64,
}

/// Who a snapshot's message is for, and when it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub(super) for_node: String,
    pub(super) sent_ms: u64,
}

/// What a consumed registry message asks of this node.
#[derive(Debug)]
pub(super) enum Incoming {
    /// This node's own, or a join: nothing to do.
    Own,
    /// `from` joined and asks for a snapshot, at `sent_ms`.
    Hello { from: String, sent_ms: u64 },
    /// A change, or (with `snapshot`) a record of a snapshot.
    Change {
        change: Change,
        snapshot: Option<Snapshot>,
    },
    /// A retained message of a snapshot.
    Retained {
        message: Message,
        snapshot: Snapshot,
    },
}

fn properties(node: &str, snapshot: Option<&Snapshot>) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    properties.insert(NODE.to_owned(), node.to_owned());
    if let Some(snapshot) = snapshot {
        properties.insert(FOR.to_owned(), snapshot.for_node.clone());
        properties.insert(SENT.to_owned(), snapshot.sent_ms.to_string());
    }
    properties
}

/// The message a node sends on the registry topic when it joins.
pub(super) fn join_message(topic: &str, node: &str) -> RocketMessage {
    RocketMessage {
        topic: topic.to_owned(),
        tags: Some(JOIN.to_owned()),
        keys: vec![node.to_owned()],
        properties: properties(node, None),
        // RocketMQ refuses an empty body.
        body: Bytes::copy_from_slice(node.as_bytes()),
    }
}

/// A node's request for the others' snapshots.
pub(super) fn hello_message(topic: &str, node: &str, sent_ms: u64) -> RocketMessage {
    let body = serde_json::to_vec(&Hello { sent_ms }).unwrap_or_default();
    RocketMessage {
        topic: topic.to_owned(),
        tags: Some(HELLO.to_owned()),
        keys: vec![node.to_owned()],
        properties: properties(node, None),
        body: body.into(),
    }
}

/// The message of `change` made (or, with `snapshot`, held) by `node`. No key: a token is a
/// secret, and keys are shown by RocketMQ's tools.
pub(super) fn change_message(
    topic: &str,
    node: &str,
    change: &Change,
    snapshot: Option<&Snapshot>,
) -> Result<RocketMessage, String> {
    let body = serde_json::to_vec(change).map_err(|e| e.to_string())?;
    Ok(RocketMessage {
        topic: topic.to_owned(),
        tags: Some(CHANGE.to_owned()),
        keys: Vec::new(),
        properties: properties(node, snapshot),
        body: body.into(),
    })
}

/// A retained message of `node`'s snapshot.
pub(super) fn retained_message(
    topic: &str,
    node: &str,
    message: &Message,
    snapshot: &Snapshot,
) -> RocketMessage {
    RocketMessage {
        topic: topic.to_owned(),
        tags: Some(RETAINED.to_owned()),
        keys: vec![message.id.to_string()],
        properties: properties(node, Some(snapshot)),
        body: Bytes::from(mqgate_store::codec::encode_message(message)),
    }
}

/// Reads a consumed registry message for node `own`.
///
/// # Errors
/// What makes it unreadable (no node, an unknown tag, a body or property that does not
/// read).
pub(super) fn decode(message: &RocketMessage, own: &str) -> Result<Incoming, String> {
    let node = message
        .properties
        .get(NODE)
        .ok_or_else(|| format!("no {NODE} property"))?;
    if node == own || message.tags.as_deref() == Some(JOIN) {
        return Ok(Incoming::Own);
    }
    let snapshot = match (message.properties.get(FOR), message.properties.get(SENT)) {
        (None, None) => None,
        (Some(for_node), Some(sent)) => Some(Snapshot {
            for_node: for_node.clone(),
            sent_ms: sent
                .parse()
                .map_err(|_| format!("{SENT} is not a time: {sent:?}"))?,
        }),
        _ => return Err(format!("{FOR} and {SENT} go together")),
    };
    match message.tags.as_deref() {
        Some(HELLO) => {
            let hello: Hello =
                serde_json::from_slice(&message.body).map_err(|e| format!("hello: {e}"))?;
            Ok(Incoming::Hello {
                from: node.clone(),
                sent_ms: hello.sent_ms,
            })
        }
        Some(CHANGE) => {
            let change: Change =
                serde_json::from_slice(&message.body).map_err(|e| format!("change: {e}"))?;
            Ok(Incoming::Change { change, snapshot })
        }
        Some(RETAINED) => {
            let snapshot = snapshot.ok_or_else(|| format!("a retained message without {FOR}"))?;
            let message = mqgate_store::codec::decode_message(&message.body)
                .map_err(|error| format!("message record: {error}"))?;
            Ok(Incoming::Retained { message, snapshot })
        }
        other => Err(format!("unknown tag {other:?}")),
    }
}

/// Hands this node's registry changes to the cluster (which the registry must not keep
/// alive: the cluster holds the registry).
pub(super) struct Feed(pub(super) Weak<Cluster>);

impl ChangeFeed for Feed {
    fn changed(&self, change: Change) {
        if let Some(cluster) = self.0.upgrade() {
            cluster.send_change(&change);
        }
    }
}

impl Cluster {
    /// Sends a change this node made to the others without waiting; a full lane loses it
    /// (logged and counted in `cluster_failed`).
    fn send_change(&self, change: &Change) {
        let topic = self.config.registry_topic();
        let message = match change_message(&topic, &self.config.node_id, change, None) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "cluster: registry change not encoded; not sent");
                let metrics = &self.sender.metrics;
                metrics.cluster_failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let key = change.record.key();
        let outgoing = Outgoing {
            message,
            order_key: Some(key.clone()),
            done: None,
        };
        if !self.registry_lanes.try_send(&key, outgoing) {
            tracing::warn!(
                kind = change.record.kind(),
                "cluster: registry change not sent (its lane is full or stopped)"
            );
            let metrics = &self.sender.metrics;
            metrics.cluster_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes in the registry topic until it stops: one message at a time, in the order of
    /// its queue (one record's changes in the order sent).
    pub(super) async fn take_registry(
        self: Arc<Self>,
        core: Arc<Core>,
        mut consumed: mpsc::Receiver<Consumed>,
    ) {
        while let Some(Consumed { message, done }) = consumed.recv().await {
            match decode(&message, &self.config.node_id) {
                Ok(incoming) => self.registry_message(&core, incoming),
                Err(error) => {
                    tracing::warn!(%error, "cluster: registry message not readable; skipped");
                    let metrics = &self.sender.metrics;
                    metrics.cluster_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = done.send(true);
        }
    }

    /// Whether a snapshot's message is for this node and recent enough to be taken in (a
    /// snapshot older than the tombstones could bring a removed record back).
    fn takes(&self, snapshot: &Snapshot, now: u64) -> bool {
        snapshot.for_node == self.config.node_id
            && snapshot.sent_ms.saturating_add(TOMBSTONE_MS) > now
    }

    /// Acts on one registry message.
    fn registry_message(self: &Arc<Self>, core: &Core, incoming: Incoming) {
        let now = unix_time_ms();
        match incoming {
            Incoming::Own => {}
            Incoming::Hello { from, sent_ms } => {
                // A hello of a history read again (a restarted node catching up) is old.
                if sent_ms.saturating_add(self.dead_after()) >= now {
                    tracing::debug!(node = %from, "cluster: a node joined; sending it this node's registries and retained messages");
                    let cluster = self.clone();
                    let retained = core.router.retained_all(now);
                    tokio::spawn(async move { cluster.send_snapshot(from, retained).await });
                }
            }
            Incoming::Change { change, snapshot } => {
                if snapshot.is_some_and(|snapshot| !self.takes(&snapshot, now)) {
                    return;
                }
                self.apply_change(core, &change, now);
            }
            Incoming::Retained { message, snapshot } => {
                if self.takes(&snapshot, now) && core.router.adopt_retained(&message) {
                    tracing::debug!(topic = %message.topic, "cluster: retained message of another node taken in");
                }
            }
        }
    }

    /// Applies another node's change when it is newer than this node's (see
    /// `auth::replicated`); a revoked token or a blacklisted client id then acts here as it
    /// did there.
    fn apply_change(&self, core: &Core, change: &Change, now: u64) {
        let Some(auth) = self.access.as_ref().and_then(|access| access.core.as_ref()) else {
            // No `[auth]` here: no registry to keep.
            return;
        };
        let registry = auth.registry();
        let applied = if change.record.is_custom() {
            auth.reload_custom_rules_after(|registry| registry.apply_remote(change, now))
                .and_then(|applied| applied)
        } else {
            registry.apply_remote(change, now)
        };
        match applied {
            Ok(false) => {}
            Ok(true) => {
                tracing::debug!(kind = change.record.kind(), removed = change.removed, node = %change.stamp.node, "cluster: registry change of another node applied");
                match (&change.record, change.removed) {
                    (Record::Token(_), _) => {
                        if let Some(access) = &self.access {
                            access.tokens.recheck();
                        }
                    }
                    (Record::Black(black), false)
                        if core
                            .registry
                            .kick(&black.client_id, None, Kick::Blacklisted) =>
                    {
                        tracing::info!(client = %black.client_id, "client id blacklisted on another node: its connection here is closed");
                    }
                    _ => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, kind = change.record.kind(), "cluster: registry change of another node not stored");
                let metrics = &self.sender.metrics;
                metrics.cluster_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends node `to` every record of this node's registries and `retained`.
    async fn send_snapshot(&self, to: String, retained: Vec<Arc<Message>>) {
        let topic = self.config.registry_topic();
        let node = &self.config.node_id;
        let snapshot = Snapshot {
            for_node: to,
            sent_ms: unix_time_ms(),
        };
        let records = match self.access.as_ref().and_then(|access| access.core.as_ref()) {
            Some(auth) => match auth.registry().snapshot() {
                Ok(records) => records,
                Err(error) => {
                    tracing::warn!(%error, node = %snapshot.for_node, "cluster: registries not read; a joining node was sent none");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let (mut changes, mut messages) = (0_usize, 0_usize);
        for change in &records {
            let Ok(message) = change_message(&topic, node, change, Some(&snapshot)) else {
                continue;
            };
            let key = change.record.key();
            let outgoing = Outgoing {
                message,
                order_key: Some(key.clone()),
                done: None,
            };
            if !self.snapshot_lanes.send(&key, outgoing).await {
                return;
            }
            changes += 1;
        }
        for message in &retained {
            let key = message.topic.to_string();
            let outgoing = Outgoing {
                message: retained_message(&topic, node, message, &snapshot),
                order_key: Some(key.clone()),
                done: None,
            };
            if !self.snapshot_lanes.send(&key, outgoing).await {
                return;
            }
            messages += 1;
        }
        tracing::info!(node = %snapshot.for_node, records = changes, retained = messages, "cluster: snapshot sent to a joining node");
    }
}

#[cfg(test)]
mod tests {
    use mqgate_auth::{GroupRecord, TokenActions, TokenRecord};
    use mqgate_codec::{ByteStr, QoS};
    use mqgate_session::MessageId;

    use super::*;
    use crate::auth::replicated::Stamp;

    #[test]
    fn changes_hellos_and_retained_messages_read_back() {
        let change = Change {
            stamp: Stamp {
                ms: 5,
                node: "n1".into(),
            },
            removed: true,
            record: Record::Token(TokenRecord {
                token: "t".into(),
                access_key_id: "ak".into(),
                instance_id: "i".into(),
                resources: vec!["a/#".into()],
                actions: TokenActions::parse("R").unwrap(),
                create_time_ms: 1,
                expire_time_ms: 2,
                revoked: true,
            }),
        };
        let sent = change_message("mqgate_i_registry", "n1", &change, None).unwrap();
        assert!(sent.keys.is_empty(), "a token is not a key");
        assert!(matches!(decode(&sent, "n1"), Ok(Incoming::Own)));
        match decode(&sent, "n2") {
            Ok(Incoming::Change {
                change: back,
                snapshot: None,
            }) => assert_eq!(back, change),
            other => panic!("{other:?}"),
        }
        let snapshot = Snapshot {
            for_node: "n3".into(),
            sent_ms: 9,
        };
        let group = Change {
            stamp: Stamp::default(),
            removed: false,
            record: Record::Group(GroupRecord::new("GID_a", 3)),
        };
        let sent = change_message("t", "n1", &group, Some(&snapshot)).unwrap();
        match decode(&sent, "n3") {
            Ok(Incoming::Change {
                change,
                snapshot: Some(s),
            }) => assert_eq!((change, s), (group, snapshot.clone())),
            other => panic!("{other:?}"),
        }
        let message = Message::new(
            MessageId(7),
            ByteStr::from_static("a/b"),
            Bytes::from_static(b"kept"),
            QoS::AtLeastOnce,
            1234,
        );
        let sent = retained_message("t", "n1", &message, &snapshot);
        match decode(&sent, "n3") {
            Ok(Incoming::Retained {
                message: back,
                snapshot: s,
            }) => assert_eq!((back, s), (message, snapshot)),
            other => panic!("{other:?}"),
        }
        // The body as docs/cluster.md writes it down.
        let mut written = sent.clone();
        written.tags = Some(CHANGE.to_owned());
        written.body = Bytes::from_static(
            br#"{"stamp":{"ms":7,"node":"n1"},"removed":false,"record":{"kind":"black","record":{"client_id":"GID_a@@@1","create_time_ms":1}}}"#,
        );
        match decode(&written, "n3") {
            Ok(Incoming::Change { change, .. }) => {
                assert_eq!(
                    (change.stamp.ms, change.record.key()),
                    (7, "black/GID_a@@@1".to_owned())
                );
            }
            other => panic!("{other:?}"),
        }
        let hello = hello_message("t", "n3", 42);
        assert!(matches!(
            decode(&hello, "n1"),
            Ok(Incoming::Hello { from, sent_ms: 42 }) if from == "n3"
        ));
        let mut bad = sent.clone();
        bad.properties.remove(FOR);
        assert!(decode(&bad, "n3").unwrap_err().contains("together"));
        bad.properties.remove(SENT);
        assert!(decode(&bad, "n3").unwrap_err().contains("without"));
        bad.tags = Some("other".into());
        assert!(decode(&bad, "n3").unwrap_err().contains("tag"));
        bad.properties.clear();
        assert!(decode(&bad, "n3").unwrap_err().contains(NODE));
    }
}
