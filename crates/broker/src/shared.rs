//! [`Shared`]: what every task of one broker reaches through an `Arc`.

use std::sync::Arc;

use mqgate_session::SessionConfig;
use mqgate_store::Store;
use mqgate_topic::ClientIdRules;
use tokio::sync::watch;
use tokio::time::{Duration, Interval, MissedTickBehavior};

use crate::auth::Access;
use crate::bridge::Bridge;
use crate::persist::Persist;
use crate::router::Router;
use crate::status::StatusHub;
use crate::{BrokerConfig, Metrics};

/// The broker's shared state: configuration, router, status hub, counters, shutdown signal.
pub(crate) struct Shared {
    pub(crate) config: BrokerConfig,
    pub(crate) session_config: SessionConfig,
    pub(crate) client_id_rules: ClientIdRules,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) router: Router,
    pub(crate) status: StatusHub,
    /// Who may connect and do what: the authenticator, `[auth]`'s registries, token watch.
    pub(crate) access: Access,
    /// Durable state: persistent sessions, offline queues, retained messages, registries.
    pub(crate) store: Arc<dyn Store>,
    /// The RocketMQ bridge, when configured (set by `Broker::start` before sharing).
    pub(crate) bridge: Option<Arc<Bridge>>,
    /// Becomes `true` once shutdown starts; every task watches it.
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        config: BrokerConfig,
        access: Access,
        store: Arc<dyn Store>,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let session_config = config.session.session_config();
        let persist = Persist::start(store.clone(), metrics.clone())?;
        Ok(Shared {
            client_id_rules: config.client_id_rules(),
            router: Router::new(
                metrics.clone(),
                session_config.max_queued_messages,
                persist,
                config.client_id_rules(),
            ),
            status: StatusHub::new(config.limits.status_channel_capacity)?,
            session_config,
            metrics,
            access,
            store,
            bridge: None,
            shutdown,
            config,
        })
    }
}

/// The clock of a periodic background loop: a tick every period (a late tick is delayed,
/// not bunched up) until the broker shuts down.
pub(crate) struct Ticker {
    tick: Interval,
    shutdown: watch::Receiver<bool>,
}

impl Ticker {
    pub(crate) fn new(shared: &Shared, every: Duration) -> Self {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ticker {
            tick,
            shutdown: shared.shutdown.clone(),
        }
    }

    /// Waits for the next tick: `false` once the broker shuts down.
    pub(crate) async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.shutdown.changed() => false,
            _ = self.tick.tick() => true,
        }
    }
}
