//! The route topic: an application message that entered one node crosses to the others as
//! its message record (layout 2 of `docs/records.md`, `mqgate_store::codec`) with its
//! delivery rule in the tag, and each other node routes it to its own receivers.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use mqgate_rocketmq::RocketMessage;
use mqgate_session::Message;
use tokio::sync::mpsc;

use super::Cluster;
use crate::bridge::Consumed;
use crate::clock::monotonic_ms;
use crate::core::router::RouteScratch;
use crate::core::{Core, Unsettled};

/// The tag of a message routed as published (not retained).
const PUBLISH: &str = "publish";
/// The tag of a message that also sets (or, empty, clears) its topic's retained message.
const RETAIN: &str = "retain";
/// The tag of the message a node sends when it joins, so the route topic exists before its
/// first publish; nothing to route.
pub(super) const JOIN: &str = "join";
/// The user property naming the node a route message entered.
pub(super) const NODE: &str = "mqgateNode";

/// The route message of `message`, as `node` sends it.
pub(super) fn encode(topic: &str, node: &str, message: &Message, retain: bool) -> RocketMessage {
    let mut properties = BTreeMap::new();
    properties.insert(NODE.to_owned(), node.to_owned());
    RocketMessage {
        topic: topic.to_owned(),
        tags: Some(if retain { RETAIN } else { PUBLISH }.to_owned()),
        keys: vec![message.id.to_string()],
        properties,
        body: Bytes::from(mqgate_store::codec::encode_message(message)),
    }
}

/// The message a node sends on the route topic when it joins.
pub(super) fn join(topic: &str, node: &str) -> RocketMessage {
    let mut properties = BTreeMap::new();
    properties.insert(NODE.to_owned(), node.to_owned());
    RocketMessage {
        topic: topic.to_owned(),
        tags: Some(JOIN.to_owned()),
        keys: vec![node.to_owned()],
        properties,
        // RocketMQ refuses an empty body.
        body: Bytes::copy_from_slice(node.as_bytes()),
    }
}

/// What a consumed route message asks of this node.
#[derive(Debug)]
pub(super) enum Incoming {
    /// This node sent it, or it carries nothing to route (a join): nothing to do.
    Own,
    /// Route `message` here; `retain`: it sets its topic's retained message too.
    Route { message: Message, retain: bool },
}

/// Reads a consumed route message for node `own`.
///
/// # Errors
/// What makes it unreadable (no node, an unknown tag, a record that does not decode).
pub(super) fn decode(message: &RocketMessage, own: &str) -> Result<Incoming, String> {
    let node = message
        .properties
        .get(NODE)
        .ok_or_else(|| format!("no {NODE} property"))?;
    if node == own || message.tags.as_deref() == Some(JOIN) {
        return Ok(Incoming::Own);
    }
    let retain = match message.tags.as_deref() {
        Some(PUBLISH) => false,
        Some(RETAIN) => true,
        other => return Err(format!("unknown tag {other:?}")),
    };
    let message = mqgate_store::codec::decode_message(&message.body)
        .map_err(|error| format!("message record: {error}"))?;
    Ok(Incoming::Route { message, retain })
}

/// Serves the route consumer until it stops: one message at a time, in the order of its
/// queue, each committed once it is safe here.
pub(super) async fn run(
    core: Arc<Core>,
    cluster: Arc<Cluster>,
    mut consumed: mpsc::Receiver<Consumed>,
) {
    let mut scratch = RouteScratch::default();
    while let Some(Consumed { message, done }) = consumed.recv().await {
        let safe = deliver(&core, &cluster, &message, &mut scratch).await;
        let _ = done.send(safe);
    }
}

/// Routes one route message here. `true` when its offset may be committed: it is with every
/// receiver (on disk for the persistent ones), or it is this node's own, older than this
/// node, or unreadable (logged and counted); `false` when the store refused the persistent
/// receivers' copies, so it comes again.
async fn deliver(
    core: &Core,
    cluster: &Cluster,
    message: &RocketMessage,
    scratch: &mut RouteScratch,
) -> bool {
    let metrics = &core.metrics;
    let (message, retain) = match decode(message, &cluster.config.node_id) {
        Ok(Incoming::Own) => return true,
        Ok(Incoming::Route { message, retain }) => (message, retain),
        Err(error) => {
            tracing::warn!(%error, "route message not readable; skipped");
            metrics.cluster_failed.fetch_add(1, Ordering::Relaxed);
            return true;
        }
    };
    if message.published_at_ms < cluster.horizon_ms {
        metrics.cluster_skipped_old.fetch_add(1, Ordering::Relaxed);
        return true;
    }
    metrics.cluster_received.fetch_add(1, Ordering::Relaxed);
    let message = Arc::new(message);
    scratch.skip_publisher = false;
    core.router
        .route(&message, retain, None, monotonic_ms(), scratch);
    match core.settle(scratch).await {
        Ok(()) => true,
        // Every other receiver has it, as a local publisher's message would; consuming it
        // again would give them a second copy.
        Err(Unsettled::Full) => {
            tracing::warn!(topic = %message.topic, "receivers stayed full; a message from another node did not reach them");
            true
        }
        Err(Unsettled::Store(error)) => {
            tracing::warn!(topic = %message.topic, %error, "store write failed; the route message will come again");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use mqgate_codec::{ByteStr, QoS};
    use mqgate_session::MessageId;

    use super::*;

    #[test]
    fn a_record_crosses_whole_and_own_messages_are_recognised() {
        let mut message = Message::new(
            MessageId(0xABCD_0000_0000_0000_0000_0000_0000_0001),
            ByteStr::from_static("a/b"),
            Bytes::from_static(b"\x00payload\xff"),
            QoS::AtLeastOnce,
            1234,
        )
        .with_origin(ByteStr::from_static("GID_x@@@1"));
        message.expires_at_ms = Some(99_999);
        message.properties = Bytes::from_static(&[0x01, 0x01]);
        let routed = encode("mqgate_i_route", "n1", &message, true);
        assert_eq!(routed.keys, ["ABCD0000000000000000000000000001"]);
        assert!(matches!(decode(&routed, "n1"), Ok(Incoming::Own)));
        match decode(&routed, "n2") {
            Ok(Incoming::Route {
                message: back,
                retain,
            }) => {
                assert!(retain);
                assert_eq!(back, message);
            }
            other => panic!("{other:?}"),
        }
        let mut bad = routed.clone();
        bad.body = Bytes::from_static(b"\x07junk");
        assert!(decode(&bad, "n2").unwrap_err().contains("message record"));
        bad.tags = Some("other".into());
        assert!(decode(&bad, "n2").unwrap_err().contains("tag"));
        bad.properties.clear();
        assert!(decode(&bad, "n2").unwrap_err().contains(NODE));
    }
}
