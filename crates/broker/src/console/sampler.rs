//! The console's overview: once a second, a [`Sample`] of the broker (connections, rates,
//! queue depth, drops and refusals, the store, the RocketMQ bridge), the last
//! [`HISTORY`] of them kept for the charts and the newest sent to every open live feed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::clock::unix_time_ms;
use crate::http::HttpCtx;
use crate::MetricsSnapshot;

/// Samples kept: five minutes at one a second.
pub(crate) const HISTORY: usize = 300;

/// How often a sample is taken.
const EVERY: Duration = Duration::from_secs(1);

/// The broker at one instant, as the overview shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    /// When, ms since the Unix epoch.
    pub(crate) time_ms: u64,
    /// Clients online.
    pub(crate) online: u64,
    /// Accepted CONNECTs per second since the previous sample.
    pub(crate) connects_per_s: f64,
    /// Messages received from clients and the broker's own publishers, per second.
    pub(crate) in_per_s: f64,
    /// Messages handed to receivers, per second.
    pub(crate) out_per_s: f64,
    /// Messages waiting in inboxes and offline queues.
    pub(crate) queued: u64,
    /// Messages dropped so far (QoS 0 to full inboxes, and by sessions).
    pub(crate) dropped: u64,
    /// Connections and CONNECTs refused so far (the connection limit, CONNACK refusals).
    pub(crate) refused: u64,
    /// What the store holds: message bodies, queue entries, sessions, retained; `None` when
    /// the store did not answer.
    pub(crate) store: Option<[u64; 4]>,
    /// The RocketMQ bridge, when configured: healthy, messages buffered, last error.
    pub(crate) bridge: Option<(bool, u64, Option<String>)>,
    /// The cloud SDK endpoint, when the broker has it (an AccessKey allowed on the API).
    pub(crate) cloud: Option<Cloud>,
}

/// The cloud SDK endpoint in a [`Sample`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Cloud {
    /// Connections, channels and consumers open.
    open: [u64; 3],
    /// Each queue (by name) with the messages waiting in it.
    queues: Vec<(String, u64)>,
}

impl Sample {
    /// The sample as the console's JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "time": self.time_ms,
            "online": self.online,
            "connectsPerS": round(self.connects_per_s),
            "inPerS": round(self.in_per_s),
            "outPerS": round(self.out_per_s),
            "queued": self.queued,
            "dropped": self.dropped,
            "refused": self.refused,
            "store": self.store.map(|[messages, queued, sessions, retained]| json!({
                "messages": messages, "queued": queued, "sessions": sessions, "retained": retained,
            })),
            "bridge": self.bridge.as_ref().map(|(healthy, buffered, error)| json!({
                "healthy": healthy, "buffered": buffered, "error": error,
            })),
            "cloud": self.cloud.as_ref().map(|Cloud { open: [connections, channels, consumers], queues }| json!({
                "connections": connections, "channels": channels, "consumers": consumers,
                "queues": queues.iter().map(|(name, depth)| json!({ "name": name, "depth": depth }))
                    .collect::<Vec<_>>(),
            })),
        })
    }
}

fn round(rate: f64) -> f64 {
    (rate * 10.0).round() / 10.0
}

/// The sampler's output: the history and the newest sample.
#[derive(Debug)]
pub(crate) struct Overview {
    history: Mutex<VecDeque<Sample>>,
    latest: watch::Sender<Sample>,
}

impl Overview {
    pub(crate) fn new() -> Self {
        Overview {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            latest: watch::Sender::new(Sample::default()),
        }
    }

    /// The samples kept, oldest first.
    pub(crate) fn history(&self) -> Vec<Sample> {
        self.history.lock().iter().cloned().collect()
    }

    /// A receiver of each new sample.
    pub(crate) fn watch(&self) -> watch::Receiver<Sample> {
        self.latest.subscribe()
    }

    fn push(&self, sample: Sample) {
        {
            let mut history = self.history.lock();
            if history.len() >= HISTORY {
                history.pop_front();
            }
            history.push_back(sample.clone());
        }
        self.latest.send_replace(sample);
    }
}

/// Takes a sample every second until the broker shuts down.
pub(crate) async fn run(ctx: Arc<HttpCtx>, overview: Arc<Overview>) {
    let mut shutdown = ctx.core.shutdown.clone();
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<(u64, MetricsSnapshot)> = None;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
        let now = unix_time_ms();
        let metrics = ctx.core.metrics.snapshot();
        let sample = take(&ctx, now, &metrics, previous.as_ref());
        previous = Some((now, metrics));
        overview.push(sample);
    }
}

fn take(
    ctx: &HttpCtx,
    now: u64,
    metrics: &MetricsSnapshot,
    previous: Option<&(u64, MetricsSnapshot)>,
) -> Sample {
    let rate = |pick: fn(&MetricsSnapshot) -> u64| match previous {
        Some((then, before)) if now > *then => {
            pick(metrics).saturating_sub(pick(before)) as f64 * 1000.0 / (now - then) as f64
        }
        _ => 0.0,
    };
    let core = &ctx.core;
    Sample {
        time_ms: now,
        online: core.registry.online_count() as u64,
        connects_per_s: rate(|m| m.sessions_started),
        in_per_s: rate(|m| m.messages_received),
        out_per_s: rate(|m| m.messages_delivered),
        queued: core.registry.queued_total(),
        dropped: metrics.qos0_dropped + metrics.session_dropped,
        refused: metrics.connections_refused + metrics.connects_refused,
        store: core
            .store
            .stats()
            .ok()
            .map(|s| [s.messages, s.queued, s.sessions, s.retained]),
        bridge: ctx.bridge.as_ref().map(|bridge| {
            let health = bridge.health();
            (health.is_healthy(), health.buffered, health.last_error)
        }),
        cloud: ctx.amqp_queues.as_ref().map(|queues| {
            let open = [
                metrics.amqp_connections_open,
                metrics.amqp_channels_open,
                metrics.amqp_consumers_open,
            ];
            let depths = queues.depths().into_iter();
            let depths = depths.map(|(name, depth, _)| (name, depth as u64));
            Cloud {
                open,
                queues: depths.collect(),
            }
        }),
    }
}
