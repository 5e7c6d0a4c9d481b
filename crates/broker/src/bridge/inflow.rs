//! From RocketMQ: each consumed message is mapped by the inflow rules and handed to the
//! router; the consumer commits its offset only once every receiver took it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use mqgate_codec::{ByteStr, Property};
use mqgate_rocketmq::{Delivery, RocketMessage};
use tokio::sync::mpsc;

use super::{Bridge, Consumed};
use crate::clock::monotonic_ms;
use crate::core::router::RouteScratch;
use crate::core::{Core, Unsettled};

/// Serves one inflow consumer until it stops.
pub(super) async fn run(
    core: Arc<Core>,
    bridge: Arc<Bridge>,
    mut consumed: mpsc::Receiver<Consumed>,
) {
    let mut scratch = RouteScratch::default();
    while let Some(Consumed { message, done }) = consumed.recv().await {
        let safe = deliver(&core, &bridge, &message, &mut scratch).await;
        let _ = done.send(safe);
    }
}

/// Delivers one RocketMQ message to MQTT. `true` when its offset may be committed: every
/// receiver took it, or it can never be delivered (unmappable: logged and counted);
/// `false` when receivers stayed full, so it comes again.
async fn deliver(
    core: &Core,
    bridge: &Bridge,
    message: &RocketMessage,
    scratch: &mut RouteScratch,
) -> bool {
    let metrics = &core.metrics;
    metrics.rocketmq_consumed.fetch_add(1, Ordering::Relaxed);
    let delivery = match bridge.rules.inflow(message) {
        Ok(Some(delivery)) => delivery,
        Ok(None) => return true,
        Err(error) => {
            tracing::warn!(topic = %message.topic, %error, "RocketMQ message not deliverable to MQTT; skipped");
            metrics.rocketmq_failed.fetch_add(1, Ordering::Relaxed);
            return true;
        }
    };
    let now = monotonic_ms();
    let qos = delivery.qos();
    let properties = match user_properties(delivery.user_properties()) {
        Ok(properties) => properties,
        Err(error) => {
            tracing::warn!(topic = %message.topic, %error, "RocketMQ message's user properties not valid for MQTT 5; skipped");
            metrics.rocketmq_failed.fetch_add(1, Ordering::Relaxed);
            return true;
        }
    };
    let (match_topic, seen, p2p) = match delivery {
        Delivery::Publish {
            topic,
            topic_seen_by_client,
            ..
        } => (topic, topic_seen_by_client, None),
        Delivery::P2p {
            target_client_id,
            topic_seen_by_client,
            clean_session,
            ..
        } => (
            ByteStr::default(),
            topic_seen_by_client,
            Some((target_client_id, clean_session)),
        ),
    };
    let routed = core.message_with(
        &ByteStr::from_static(""),
        seen,
        message.body.clone(),
        qos,
        properties,
        None,
    );
    match p2p {
        None => core
            .router
            .route_subscribers(&match_topic, &routed, now, scratch),
        Some((target, clean_session)) => {
            metrics.messages_received.fetch_add(1, Ordering::Relaxed);
            // cleansessionflag = true: only a client online now gets it; false: a persistent
            // session that is offline keeps it (the session applies the QoS table).
            if clean_session && !core.registry.is_online(&target) {
                metrics.p2p_no_target.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            scratch.ticket = None;
            core.router.deliver_p2p(&target, &routed, now, scratch);
        }
    }
    match core.settle(scratch).await {
        Ok(()) => true,
        Err(Unsettled::Full) => {
            tracing::warn!(topic = %message.topic, "MQTT receivers stayed full; RocketMQ will redeliver");
            false
        }
        // Safe only once persistent receivers' copies are on disk: the offset may advance then.
        Err(Unsettled::Store(error)) => {
            tracing::warn!(topic = %message.topic, %error, "store write failed; RocketMQ will redeliver");
            false
        }
    }
}

/// The wire encoding of `user` as MQTT 5 User Properties (empty for none).
fn user_properties(user: &[(String, String)]) -> Result<Bytes, mqgate_codec::EncodeError> {
    if user.is_empty() {
        return Ok(Bytes::new());
    }
    let properties = mqgate_codec::Properties::build(
        user.iter()
            .map(|(name, value)| Property::UserProperty(name, value)),
    )?;
    Ok(properties.as_bytes().clone())
}
