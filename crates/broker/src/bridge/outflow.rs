//! Toward RocketMQ: the outflow dispatcher (concurrent sends, retry with backoff) and the
//! status forwarder (in order per client), both over the bridge's [`Sender`](super::send::Sender).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use mqgate_status::StatusEvent;
use tokio::sync::{broadcast, mpsc, Semaphore};

use super::send::{Lanes, Outgoing};
use super::Bridge;

/// Status lanes: events of one client always take the same lane, and a lane sends one
/// message at a time, so a client's events reach RocketMQ in the order they happened.
const STATUS_LANES: usize = 4;

/// Takes outflow messages from the buffer and sends up to `max_in_flight` at once. A message
/// leaves the buffer only when a send slot is free, so at most `buffer + max_in_flight`
/// messages are held.
pub(super) async fn dispatch(bridge: Arc<Bridge>, mut queue: mpsc::Receiver<Outgoing>) {
    let in_flight = Arc::new(Semaphore::new(bridge.config.max_in_flight));
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(outgoing) = queue.recv().await else {
            return;
        };
        let sender = bridge.sender.clone();
        tokio::spawn(async move {
            sender.send_with_retry(outgoing).await;
            drop(permit);
        });
    }
}

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
