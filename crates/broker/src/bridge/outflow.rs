//! Toward RocketMQ: the status forwarder (in order per client), over the bridge's
//! [`Sender`](super::send::Sender); the outflow copies take the bridge's own lanes (in order
//! per publisher, see [`Bridge::send_copy`](super::Bridge::send_copy)).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use mqgate_status::StatusEvent;
use tokio::sync::broadcast;

use super::send::{Lanes, Outgoing};
use super::Bridge;

/// Status lanes: events of one client always take the same lane, and a lane has one send
/// under way at a time, so a client's events reach RocketMQ in the order they happened.
const STATUS_LANES: usize = 4;

/// Sends the status events that a status rule covers, in order per client.
pub(super) async fn forward_status(
    bridge: Arc<Bridge>,
    mut events: broadcast::Receiver<StatusEvent>,
) {
    let capacity = (bridge.config.buffer / STATUS_LANES).max(1);
    let (lanes, tasks) = Lanes::start(bridge.sender.clone(), STATUS_LANES, capacity);
    bridge.tasks.lock().extend(tasks);
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(lost)) => {
                tracing::warn!(
                    lost,
                    "status events lost before reaching RocketMQ (forwarder lagged)"
                );
                bridge
                    .sender
                    .metrics
                    .rocketmq_failed
                    .fetch_add(lost, Ordering::Relaxed);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(message) = bridge.rules.status(&event) else {
            continue;
        };
        let outgoing = Outgoing {
            message,
            order_key: Some(event.client_id.clone()),
            done: None,
        };
        if !lanes.send(&event.client_id, outgoing).await {
            return;
        }
    }
}
