//! [`BridgeHealth`]: whether RocketMQ takes what the bridge sends, for `/healthz` and logs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::clock::unix_time_ms;

/// The RocketMQ bridge's state, from
/// [`BrokerHandle::rocketmq_health`](crate::BrokerHandle::rocketmq_health).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeHealth {
    /// `false` from the first failed send until the next successful one.
    pub up: bool,
    /// When `up` last changed (ms since the epoch).
    pub since_ms: u64,
    /// The error of the failure that took it down, while down.
    pub last_error: Option<String>,
    /// Outflow and status messages waiting for RocketMQ (in the buffer or being sent).
    pub buffered: u64,
    /// Inflow consumers started, of `inflow_rules` configured.
    pub consumers: usize,
    /// Inflow rules configured.
    pub inflow_rules: usize,
}

impl BridgeHealth {
    /// Healthy: sends succeed and every inflow consumer runs.
    pub fn is_healthy(&self) -> bool {
        self.up && self.consumers == self.inflow_rules
    }
}

/// The mutable state behind [`BridgeHealth`]: a flag read on every send, the details
/// written only on a transition.
#[derive(Debug)]
pub(crate) struct HealthState {
    up: AtomicBool,
    consumers: AtomicUsize,
    detail: Mutex<(u64, Option<String>)>,
}

impl HealthState {
    pub(crate) fn new() -> Self {
        HealthState {
            up: AtomicBool::new(true),
            consumers: AtomicUsize::new(0),
            detail: Mutex::new((unix_time_ms(), None)),
        }
    }

    /// A send succeeded.
    pub(crate) fn sent(&self) {
        if !self.up.load(Ordering::Relaxed) && !self.up.swap(true, Ordering::Relaxed) {
            let mut detail = self.detail.lock();
            let down_ms = unix_time_ms().saturating_sub(detail.0);
            *detail = (unix_time_ms(), None);
            drop(detail);
            tracing::info!(down_ms, "RocketMQ bridge is up again");
        }
    }

    /// A send failed with `error`.
    pub(crate) fn failed(&self, error: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            *self.detail.lock() = (unix_time_ms(), Some(error.to_owned()));
            tracing::warn!(%error, "RocketMQ bridge is DOWN: sends fail, messages are buffered and retried");
        }
    }

    pub(crate) fn consumer_started(&self) {
        self.consumers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, buffered: u64, inflow_rules: usize) -> BridgeHealth {
        let (since_ms, last_error) = self.detail.lock().clone();
        BridgeHealth {
            up: self.up.load(Ordering::Relaxed),
            since_ms,
            last_error,
            buffered,
            consumers: self.consumers.load(Ordering::Relaxed),
            inflow_rules,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_until_the_next_success() {
        let state = HealthState::new();
        assert!(state.snapshot(0, 0).is_healthy());
        state.failed("connection refused");
        let down = state.snapshot(3, 0);
        assert!(!down.up && !down.is_healthy());
        assert_eq!(down.last_error.as_deref(), Some("connection refused"));
        assert_eq!(down.buffered, 3);
        state.sent();
        assert!(state.snapshot(0, 1).up);
        assert!(!state.snapshot(0, 1).is_healthy(), "a consumer is missing");
        state.consumer_started();
        assert!(state.snapshot(0, 1).is_healthy());
    }
}
