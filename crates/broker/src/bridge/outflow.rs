//! Toward RocketMQ: the outflow dispatcher (concurrent sends, retry with backoff) and the
//! status forwarder (in order per client).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mqgate_rocketmq::RocketMessage;
use mqgate_status::StatusEvent;
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};

use super::Bridge;

/// Status lanes: events of one client always take the same lane, and a lane sends one
/// message at a time, so a client's events reach RocketMQ in the order they happened.
const STATUS_LANES: usize = 4;

/// A message waiting for RocketMQ, and who waits for it (the publisher, with
/// `ack_after = "rocketmq"`).
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) message: RocketMessage,
    /// Messages with the same key keep their order in RocketMQ (one queue).
    pub(super) order_key: Option<String>,
    pub(super) done: Option<oneshot::Sender<()>>,
}

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
        let bridge = bridge.clone();
        tokio::spawn(async move {
            send_with_retry(&bridge, outgoing).await;
            drop(permit);
        });
    }
}

/// Sends until RocketMQ takes it, with exponential backoff between attempts; gives up only
/// when the bridge is stopping. Completes the publisher's wait on success.
pub(super) async fn send_with_retry(bridge: &Bridge, outgoing: Outgoing) {
    let metrics = &bridge.metrics;
    let mut stopping = bridge.stopping.subscribe();
    let mut backoff = bridge.config.retry_min_ms;
    loop {
        let attempt = tokio::time::timeout(
            bridge.config.send_timeout_ms,
            bridge
                .client
                .send(&outgoing.message, outgoing.order_key.as_deref()),
        )
        .await;
        let error = match attempt {
            Ok(Ok(())) => {
                bridge.health.sent();
                metrics.rocketmq_produced.fetch_add(1, Ordering::Relaxed);
                metrics.rocketmq_buffered.fetch_sub(1, Ordering::Relaxed);
                if let Some(done) = outgoing.done {
                    let _ = done.send(());
                }
                return;
            }
            Ok(Err(e)) => e.0,
            Err(_) => format!(
                "send timed out after {} ms",
                bridge.config.send_timeout_ms.as_millis()
            ),
        };
        bridge.health.failed(&error);
        tracing::debug!(topic = %outgoing.message.topic, %error, backoff_ms = backoff.as_millis() as u64, "RocketMQ send failed; retrying");
        if *stopping.borrow() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stopping.changed() => break,
        }
        metrics.rocketmq_retried.fetch_add(1, Ordering::Relaxed);
        backoff = (backoff * 2).min(bridge.config.retry_max_ms);
    }
    tracing::warn!(topic = %outgoing.message.topic, "RocketMQ bridge stopping: message not sent");
    metrics.rocketmq_failed.fetch_add(1, Ordering::Relaxed);
    metrics.rocketmq_buffered.fetch_sub(1, Ordering::Relaxed);
}

/// Sends the status events that a status rule covers, in order per client.
pub(super) async fn forward_status(
    bridge: Arc<Bridge>,
    mut events: broadcast::Receiver<StatusEvent>,
) {
    let capacity = (bridge.config.buffer / STATUS_LANES).max(1);
    let lanes: Vec<mpsc::Sender<Outgoing>> = (0..STATUS_LANES)
        .map(|_| {
            let (lane, mut queue) = mpsc::channel::<Outgoing>(capacity);
            let bridge = bridge.clone();
            tokio::spawn(async move {
                while let Some(outgoing) = queue.recv().await {
                    send_with_retry(&bridge, outgoing).await;
                }
            });
            lane
        })
        .collect();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(lost)) => {
                tracing::warn!(
                    lost,
                    "status events lost before reaching RocketMQ (forwarder lagged)"
                );
                bridge
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
        let mut hasher = DefaultHasher::new();
        event.client_id.hash(&mut hasher);
        let lane = (hasher.finish() % STATUS_LANES as u64) as usize;
        let Some(lane) = lanes.get(lane) else {
            continue;
        };
        let Ok(slot) = lane.reserve().await else {
            return;
        };
        bridge
            .metrics
            .rocketmq_buffered
            .fetch_add(1, Ordering::Relaxed);
        slot.send(Outgoing {
            message,
            order_key: Some(event.client_id),
            done: None,
        });
    }
}
