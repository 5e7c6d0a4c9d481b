//! The embedding API: [`Broker::builder`], [`Broker::start`] / [`Broker::run`], and the
//! [`BrokerHandle`] a program keeps to publish, consume, watch status and shut down.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqgate_codec::QoS;
use mqgate_session::{Message, MessageId, QueueBounds, SessionConfig};
use mqgate_status::StatusEvent;
use tokio::sync::{broadcast, watch, Semaphore};

use crate::amqp::queue::Queues;
use crate::amqp::AmqpCtx;
use crate::auth::{Access, Authenticator, EnhancedAuth, EnhancedMethods};
use crate::background;
use crate::bridge::{Bridge, BridgeHealth, RocketMqClient};
use crate::cluster::{Cluster, ClusterHealth};
use crate::connection::{ConnCtx, Outflow, Outflows};
use crate::core::inbox::{self, Kick};
use crate::core::registry::OfflineQueues;
use crate::core::registry::{Attach, Delivery, OnlineLink, AMQP_LINK_PREFIX};
use crate::core::trace::Tracer;
use crate::core::Core;
use crate::fd_limit::FdLimit;
use crate::http::HttpCtx;
use crate::transport::listener::{accept_loop, bind_all, bind_amqp, ListenerKind};
use crate::{BrokerConfig, BrokerError, MetricsSnapshot, StorageKind};
use mqgate_store::{MemoryStore, RedbStore, Store, StoreLimits, DEFAULT_FILE_NAME};

/// How long [`BrokerHandle::shutdown`] waits for connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A configured broker, not yet listening. Build one with [`Broker::builder`].
pub struct Broker {
    config: BrokerConfig,
    auth: Option<Box<dyn Authenticator>>,
    store: Option<Arc<dyn Store>>,
    rocketmq: Option<Arc<dyn RocketMqClient>>,
    cluster: Option<Arc<dyn RocketMqClient>>,
    enhanced: EnhancedMethods,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Broker`].
#[derive(Default)]
pub struct BrokerBuilder {
    config: BrokerConfig,
    auth: Option<Box<dyn Authenticator>>,
    store: Option<Arc<dyn Store>>,
    rocketmq: Option<Arc<dyn RocketMqClient>>,
    cluster: Option<Arc<dyn RocketMqClient>>,
    enhanced: EnhancedMethods,
}

impl std::fmt::Debug for BrokerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BrokerBuilder {
    /// Uses `config` (listeners, limits, anonymous access, takeover policy).
    pub fn config(mut self, config: BrokerConfig) -> Self {
        self.config = config;
        self
    }

    /// Checks every CONNECT with `auth` (overrides `allow_anonymous`).
    pub fn authenticator(mut self, auth: impl Authenticator) -> Self {
        self.auth = Some(Box::new(auth));
        self
    }

    /// Keeps durable state in `store` instead of the one `storage` and `data_dir` name
    /// (an embedder's own store, or one shared with other parts of its program).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Bridges to RocketMQ through `client` instead of the built-in one (cargo feature
    /// `rocketmq`); the `[rocketmq]` configuration still gives the rules and limits.
    pub fn rocketmq_client(mut self, client: Arc<dyn RocketMqClient>) -> Self {
        self.rocketmq = Some(client);
        self
    }

    /// Joins the cluster through `client` instead of the built-in one (cargo feature
    /// `rocketmq`); the `[cluster]` configuration still gives the names and bounds. The
    /// client must consume in order ([`RocketMqClient::consume_ordered`]).
    pub fn cluster_client(mut self, client: Arc<dyn RocketMqClient>) -> Self {
        self.cluster = Some(client);
        self
    }

    /// Serves MQTT 5 enhanced authentication with `method` for the clients whose CONNECT
    /// names it (on top of the broker's authentication: see [`EnhancedAuth`]). Several
    /// methods may be registered; one with the same name replaces the earlier one.
    pub fn enhanced_auth(mut self, method: impl EnhancedAuth) -> Self {
        self.enhanced.add(Arc::new(method));
        self
    }

    /// The broker, ready to [`start`](Broker::start).
    pub fn build(self) -> Broker {
        Broker {
            config: self.config,
            auth: self.auth,
            store: self.store,
            rocketmq: self.rocketmq,
            cluster: self.cluster,
            enhanced: self.enhanced,
        }
    }
}

impl Broker {
    /// A builder with the default configuration.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// Binds every listener and starts accepting; returns once the broker is serving.
    ///
    /// # Errors
    /// A listener could not bind, the TLS files could not be loaded, or the store could not
    /// be opened ([`BrokerError::Store`] names the file).
    pub async fn start(self) -> Result<BrokerHandle, BrokerError> {
        let config = self.config;
        // Queues stay on disk with a durable store; an ephemeral broker holds them in memory.
        let queue_window = (self.store.is_some() || config.storage == StorageKind::Redb)
            .then_some(config.session.queue_window);
        let store = match self.store {
            Some(store) => store,
            None => open_store(&config)?,
        };
        let access = Arc::new(Access::build(&config, self.auth, &store)?);
        let (shutdown_tx, shutdown) = watch::channel(false);
        let max_connections = max_connections(&config);
        let session_config = config.session.session_config();
        let rules = config.client_id_rules();
        let mut core = Core::start(
            store,
            &config.limits,
            &session_config,
            rules,
            queue_window,
            shutdown.clone(),
        )
        .map_err(BrokerError::Io)?;
        core.paging = crate::core::paging::Paging::new(config.session.backlog_memory_bytes);
        let memory = config.storage == StorageKind::Memory;
        core.trace = Tracer::start(
            &config.trace,
            &config.data_dir,
            memory,
            core.metrics.clone(),
        )?
        .map(Arc::new);
        *core.redirect.get_mut() = config.mqtt5.redirect.clone().map(Arc::new);
        let cluster = match config.cluster.clone() {
            Some(settings) => {
                let data_dir = (config.storage == StorageKind::Redb).then_some(&*config.data_dir);
                let cluster = Cluster::start(
                    settings,
                    self.cluster,
                    core.metrics.clone(),
                    core.registry.clone(),
                    config.client_id_rules(),
                    config.takeover,
                    data_dir,
                    Some(access.clone()),
                )
                .await?;
                core.cluster = Some(cluster.clone());
                core.status.presence = Some(cluster.clone());
                Some(cluster)
            }
            None => None,
        };
        let core = Arc::new(core);
        let bridge = match config.rocketmq.clone() {
            Some(rocketmq) => {
                Some(Bridge::start(rocketmq, self.rocketmq, core.metrics.clone()).await?)
            }
            None => None,
        };
        // Sessions, subscriptions and retained messages are back before anyone can connect
        // and before the RocketMQ inflow delivers anything.
        core.restore(session_config)
            .map_err(|e| BrokerError::Store(e.to_string()))?;
        tokio::spawn(background::expiry_sweep(
            core.store.clone(),
            core.metrics.clone(),
            background::sweep_interval(session_config.message_ttl_ms),
            shutdown.clone(),
        ));
        tokio::spawn(background::timers(core.registry.clone(), shutdown.clone()));
        tokio::spawn(background::session_expiry(
            core.clone(),
            background::SESSION_EXPIRY_TICK,
            shutdown.clone(),
        ));
        if let Some(trace) = &core.trace {
            tokio::spawn(background::trace_sweep(
                trace.clone(),
                background::sweep_interval(trace.retention_ms()),
                shutdown.clone(),
            ));
        }
        if access.tokens.enabled() {
            let every = config
                .auth
                .as_ref()
                .map_or(1000, |auth| auth.token_check_interval_ms);
            tokio::spawn(background::token_watch(
                access.clone(),
                core.registry.clone(),
                Duration::from_millis(every.max(10)),
                shutdown.clone(),
            ));
        }
        if let Some(bridge) = &bridge {
            bridge.attach(&core).await?;
        }
        if let Some(cluster) = &cluster {
            cluster.attach(&core).await?;
        }
        let outflow: Option<Arc<dyn Outflow>> = match (bridge.clone(), cluster.clone()) {
            (Some(bridge), Some(cluster)) => Some(Arc::new(Outflows(bridge, cluster))),
            (Some(bridge), None) => Some(bridge),
            (None, Some(cluster)) => Some(cluster),
            (None, None) => None,
        };
        let mut connections_ctx = ConnCtx::new(&config, core.clone(), access.clone(), outflow);
        connections_ctx.enhanced = self.enhanced;
        let connections_ctx = Arc::new(connections_ctx);
        // Wills that waited for their delay when the broker stopped wait again (or go now).
        let wills = crate::connection::online::restore_wills(&connections_ctx)
            .map_err(|e| BrokerError::Store(e.to_string()))?;
        if wills > 0 {
            tracing::info!(wills, "delayed wills restored");
        }
        // The cloud SDK endpoint's queues that exist from start-up collect from before
        // the first device can connect.
        let amqp = amqp_ctx(&config, &core, &access, session_config);
        if let Some(amqp) = &amqp {
            amqp.queues.open(&config.amqp.queues).await;
        }
        let bound = bind_all(&config.listeners)?;
        let http = crate::http::bind(&config).await?;
        let connections = Arc::new(Semaphore::new(max_connections));
        let mut addrs = Vec::new();
        for listener in bound {
            let addr = listener.listener.local_addr().map_err(BrokerError::Io)?;
            tracing::info!(kind = %listener.kind, %addr, "listening");
            addrs.push((listener.kind, addr));
            tokio::spawn(accept_loop(
                listener,
                connections_ctx.clone(),
                connections.clone(),
            ));
        }
        let tcp = addrs.iter().find(|(kind, _)| *kind == ListenerKind::Tcp);
        if let (Some(cluster), Some((_, addr))) = (&cluster, tcp) {
            cluster.set_address(*addr);
        }
        let mut amqp_queues = None;
        if let Some(amqp) = amqp {
            amqp_queues = Some(amqp.queues.clone());
            let amqp = Arc::new(amqp);
            for bound in bind_amqp(&config.listeners)? {
                let addr = bound.listener.local_addr().map_err(BrokerError::Io)?;
                tracing::info!(kind = %bound.kind, %addr, "listening");
                addrs.push((bound.kind, addr));
                tokio::spawn(accept_loop(bound, amqp.clone(), connections.clone()));
            }
        }
        if let Some(http) = http {
            addrs.push((
                ListenerKind::Http,
                http.listener.local_addr().map_err(BrokerError::Io)?,
            ));
            let ctx = Arc::new(HttpCtx {
                core: core.clone(),
                access,
                bridge: bridge.clone(),
                cluster: cluster.clone(),
                settings: config.http.clone(),
                auth: config.auth.clone(),
                https: http.tls.is_some(),
                amqp_queues: amqp_queues.clone(),
            });
            let mut app = crate::http::routes(ctx.clone());
            if let Some(console) = crate::console::start(&ctx) {
                app = app.merge(console);
            }
            tokio::spawn(crate::http::serve(http, app, ctx));
        }
        Ok(BrokerHandle {
            inner: Arc::new(HandleInner {
                core,
                bridge,
                cluster,
                inbox_capacity: config.limits.inbox_capacity,
                addrs,
                shutdown: shutdown_tx,
                connections,
                max_connections,
                consumers: AtomicU64::new(0),
                amqp_queues,
            }),
        })
    }

    /// Starts, then serves until ctrl-c or SIGTERM, then shuts down gracefully.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn run(self) -> Result<(), BrokerError> {
        // Signals are hooked before the listeners open, so a SIGTERM that comes right after
        // the broker starts serving is a graceful shutdown too.
        let signal = shutdown_signal()?;
        let handle = self.start().await?;
        signal.await;
        tracing::info!("shutdown signal received");
        handle.shutdown().await;
        Ok(())
    }
}

/// The cloud SDK endpoint's context, when `[auth]` has an AccessKey allowed on the API.
fn amqp_ctx(
    config: &BrokerConfig,
    core: &Arc<Core>,
    access: &Arc<Access>,
    session: SessionConfig,
) -> Option<AmqpCtx> {
    let settings = config.auth.clone()?;
    let keys = access.core.clone()?;
    if !settings.access_keys.iter().any(|key| key.api) {
        return None;
    }
    let amqp = mqgate_amqp::Config {
        max_message_size: u64::try_from(config.limits.max_packet_size).unwrap_or(u64::MAX),
        ..mqgate_amqp::Config::default()
    };
    Some(AmqpCtx {
        core: core.clone(),
        keys,
        settings,
        queues: Arc::new(Queues::new(
            core.clone(),
            &config.amqp,
            session,
            config.limits.inbox_capacity,
        )),
        config: amqp,
    })
}

/// Opens the store the configuration names. A data directory that cannot be read fails
/// start-up with the file's name; it never silently becomes an empty store.
/// The connection limit in force: the configured one, or the open-file limit's budget
/// (logged either way, with where it came from).
fn max_connections(config: &BrokerConfig) -> usize {
    let limit = FdLimit::current();
    let (value, from) = match config.limits.max_connections {
        Some(configured) => (configured, "configuration"),
        None => {
            let http = if config.http.enabled {
                config.http.max_connections
            } else {
                0
            };
            (
                limit.max_connections(http, DEFAULT_MAX_CONNECTIONS),
                "open-file limit",
            )
        }
    };
    let value = value.clamp(1, Semaphore::MAX_PERMITS);
    match limit.soft {
        Some(soft) if soft != u64::MAX && value as u64 > soft => tracing::warn!(
            max_connections = value,
            open_file_limit = soft,
            "max_connections is above the open-file limit: accepts will fail before it is reached"
        ),
        soft => tracing::info!(
            max_connections = value,
            from,
            open_file_limit = soft.filter(|&s| s != u64::MAX),
            "connection limit"
        ),
    }
    value
}

/// The connection limit where the open-file limit cannot be read.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

fn open_store(config: &BrokerConfig) -> Result<Arc<dyn Store>, BrokerError> {
    // The cloud SDK endpoint's queues are stored under their own, wider bounds.
    let amqp = QueueBounds {
        max_messages: u64::try_from(config.amqp.max_queued_messages).unwrap_or(u64::MAX),
        max_bytes: u64::try_from(config.amqp.max_queued_bytes).unwrap_or(u64::MAX),
    };
    let limits = StoreLimits {
        prefixed: Some((AMQP_LINK_PREFIX, amqp)),
        ..StoreLimits::from(&config.session.session_config())
    };
    match config.storage {
        StorageKind::Memory => Ok(Arc::new(MemoryStore::with_limits(limits))),
        StorageKind::Redb => {
            let options = config.store.redb_options();
            let store = RedbStore::open_with(&config.data_dir, limits, options).map_err(|e| {
                BrokerError::Store(format!(
                    "{}: {e}",
                    config.data_dir.join(DEFAULT_FILE_NAME).display()
                ))
            })?;
            tracing::info!(
                path = %store.path().display(),
                cache_bytes = options.cache_bytes,
                quick_repair = options.quick_repair,
                "store opened"
            );
            if let Some(c) = store.compaction() {
                tracing::info!(before = c.before, after = c.after, "store file compacted");
            }
            Ok(Arc::new(store))
        }
    }
}

/// Resolves on ctrl-c, or SIGTERM on Unix.
///
/// # Errors
/// The signal handlers could not be installed.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, BrokerError> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(BrokerError::Io)?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}

struct HandleInner {
    core: Arc<Core>,
    bridge: Option<Arc<Bridge>>,
    cluster: Option<Arc<Cluster>>,
    /// Capacity of a backend consumer's inbox.
    inbox_capacity: usize,
    addrs: Vec<(ListenerKind, SocketAddr)>,
    shutdown: watch::Sender<bool>,
    connections: Arc<Semaphore>,
    max_connections: usize,
    consumers: AtomicU64,
    /// The cloud SDK endpoint's queues, when it is served.
    amqp_queues: Option<Arc<Queues>>,
}

/// A running broker. Cheap to clone; every clone controls the same broker.
#[derive(Clone)]
pub struct BrokerHandle {
    inner: Arc<HandleInner>,
}

impl std::fmt::Debug for BrokerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerHandle")
            .field("addrs", &self.inner.addrs)
            .finish_non_exhaustive()
    }
}

impl BrokerHandle {
    /// The address each listener is bound to (the real port when 0 was configured).
    pub fn local_addrs(&self) -> &[(ListenerKind, SocketAddr)] {
        &self.inner.addrs
    }

    /// The address of the first listener of `kind`, if one is bound.
    pub fn local_addr(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.inner
            .addrs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
    }

    /// Publishes a message as the broker itself (a backend's system announcement, a command to
    /// a device through its P2P address). Waits while receivers are full, at most the
    /// backpressure timeout.
    ///
    /// # Errors
    /// [`BrokerError::InvalidTopic`], [`BrokerError::Shutdown`], or
    /// [`BrokerError::Backpressure`] when receivers stayed full (some may have received it).
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<MessageId, BrokerError> {
        self.inner
            .core
            .publish_topic(topic, payload.into(), qos, retain)
            .await
    }

    /// A backend consumer of `filter` (plain, or `$share/{group}/{filter}` to consume in a
    /// group: each message goes to one member). Messages arrive on the returned
    /// [`Consumer`]; a slow consumer slows the publishers, like any receiver.
    ///
    /// # Errors
    /// [`BrokerError::InvalidFilter`] or [`BrokerError::Shutdown`].
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Result<Consumer, BrokerError> {
        let core = &self.inner.core;
        let n = self.inner.consumers.fetch_add(1, Ordering::Relaxed);
        let id: Arc<str> = Arc::from(format!("$backend-{n}"));
        let channel = core.status.channels.next();
        let (inbox, receiver) = inbox::channel(self.inner.inbox_capacity.max(1));
        let link = OnlineLink {
            channel,
            inbox,
            kickable: false,
            persistent: false,
            card: None,
        };
        if !matches!(
            core.registry
                .attach(&id, link, crate::TakeoverPolicy::RefuseNew),
            Attach::Fresh
        ) {
            return Err(BrokerError::Shutdown);
        }
        if core.router.subscribe(&id, filter, qos).is_none() {
            core.registry.remove(&id);
            return Err(BrokerError::InvalidFilter(filter.to_owned()));
        }
        Ok(Consumer {
            core: core.clone(),
            id,
            filter: filter.to_owned(),
            receiver,
        })
    }

    /// Status events (connect / disconnect / tcpclean) emitted from now on: this node's and,
    /// in a cluster, every other node's (each once, as the presence topic brings them).
    pub fn status_events(&self) -> broadcast::Receiver<StatusEvent> {
        self.inner.core.status.subscribe()
    }

    /// Whether `client_id` has a connection open right now (the live registry, not events):
    /// at this node; in a cluster the HTTP API's session queries also answer for the
    /// others.
    pub fn is_online(&self, client_id: &str) -> bool {
        self.inner.core.registry.is_online(client_id)
    }

    /// [`is_online`](Self::is_online) for each id, in order.
    pub fn are_online<'a>(
        &self,
        client_ids: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(&'a str, bool)> {
        client_ids
            .into_iter()
            .map(|id| (id, self.is_online(id)))
            .collect()
    }

    /// Number of clients online.
    pub fn online_count(&self) -> usize {
        self.inner.core.registry.online_count()
    }

    /// What the queues of the offline persistent sessions hold, in all and in memory: with
    /// queues kept on disk, an offline session holds none of its queue in memory however
    /// deep it is. Locks the registry's shards one at a time.
    pub fn offline_queues(&self) -> OfflineQueues {
        self.inner.core.registry.offline_queues()
    }

    /// The counters so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.core.metrics.snapshot()
    }

    /// Server redirection: with `Some`, every new CONNECT is refused with the redirect
    /// (MQTT 5 clients get CONNACK 0x9C or 0x9D and the Server Reference, 3.1.1 clients
    /// CONNACK 3), and with `disconnect_connected` every client online now is closed (MQTT 5
    /// clients get DISCONNECT 0x9C or 0x9D with the Server Reference; no will is
    /// published: the client is moving, not gone). Persistent sessions stay, offline. `None`
    /// serves clients again. The `[mqtt5] redirect` setting is the same from the start.
    ///
    /// ```no_run
    /// # async fn drain(broker: mqgate_broker::BrokerHandle) {
    /// use mqgate_broker::Redirect;
    /// let to = Redirect { server_reference: "mqtt-2.example.com:1883".into(), permanent: false };
    /// broker.redirect(Some(to), true);
    /// # }
    /// ```
    pub fn redirect(&self, redirect: Option<crate::config::Redirect>, disconnect_connected: bool) {
        let core = &self.inner.core;
        let kick = disconnect_connected && redirect.is_some();
        *core.redirect.write() = redirect.map(Arc::new);
        if kick {
            core.registry.kick_all(Kick::Redirect);
        }
    }

    /// Closes `client_id`'s connection, as the HTTP API's `CloseConnection` does. The client
    /// did not ask for it, so its will is published. `false` when it is not online.
    pub fn disconnect(&self, client_id: &str) -> bool {
        self.inner.core.registry.kick(client_id, None, Kick::Closed)
    }

    /// Removes the cloud SDK endpoint's queue `name` (a parent topic, or `STATUS/{group}`
    /// for a group's status queue) with every message it held, from memory and from the
    /// store: it is not brought back at the next start (unless `[amqp] queues` names it). A
    /// consumer still attached keeps what it was handed and gets nothing more; the next
    /// consume on the name makes a new, empty queue. `false` when the endpoint is not
    /// served or no such queue exists.
    pub async fn remove_amqp_queue(&self, name: &str) -> bool {
        match &self.inner.amqp_queues {
            Some(queues) => queues.remove(name).await,
            None => false,
        }
    }

    /// The RocketMQ bridge's state (for `/healthz`); `None` when no bridge is configured.
    pub fn rocketmq_health(&self) -> Option<BridgeHealth> {
        self.inner.bridge.as_ref().map(|bridge| bridge.health())
    }

    /// This node's view of the cluster (for `/healthz` and `ListClusterNodes`): RocketMQ's
    /// state and the nodes alive; `None` without `[cluster]`.
    pub fn cluster(&self) -> Option<ClusterHealth> {
        self.inner.cluster.as_ref().map(|cluster| cluster.health())
    }

    /// Stops accepting, closes every connection (persistent sessions stay in memory and in
    /// the store), waits for the connection tasks and the cloud SDK queues' tasks to end (at
    /// most 5 s each), then for the store writes they made (at most 5 s more), and deletes
    /// the bodies of delivered messages that waited for deletion; then gives the RocketMQ
    /// bridge at most 5 s to send what it buffered, and stops it; then the cluster likewise
    /// (its route messages), telling the other nodes it leaves.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        self.inner.core.registry.kick_all(Kick::Shutdown);
        let all = u32::try_from(self.inner.max_connections).unwrap_or(u32::MAX);
        let wait = self.inner.connections.acquire_many(all);
        if tokio::time::timeout(SHUTDOWN_GRACE, wait).await.is_err() {
            tracing::warn!("connections still open after the shutdown grace period");
        }
        // The cloud SDK endpoint's queues save their last state (acknowledgements included).
        if let Some(queues) = &self.inner.amqp_queues {
            if tokio::time::timeout(SHUTDOWN_GRACE, queues.stopped())
                .await
                .is_err()
            {
                tracing::warn!("AMQP queues still saving after the shutdown grace period");
            }
        }
        // What the closing connections saved is on disk before this returns.
        self.inner.core.persist.flush(SHUTDOWN_GRACE).await;
        // And the bodies of delivered messages that waited for deletion are gone from it.
        let store = self.inner.core.store.clone();
        let deleted = tokio::task::spawn_blocking(move || store.delete_unreferenced()).await;
        if let Ok(Err(error)) = deleted {
            tracing::warn!(%error, "delivered messages not deleted from the store at shutdown");
        }
        // So are the trace records of the connections' ends.
        if let Some(trace) = self.inner.core.trace.clone() {
            let _ = tokio::task::spawn_blocking(move || trace.flush()).await;
        }
        if let Some(bridge) = &self.inner.bridge {
            bridge.shutdown(SHUTDOWN_GRACE).await;
        }
        if let Some(cluster) = &self.inner.cluster {
            cluster.shutdown().await;
        }
    }
}

/// A backend consumer created by [`BrokerHandle::subscribe`]. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Consumer {
    core: Arc<Core>,
    id: Arc<str>,
    filter: String,
    receiver: inbox::Receiver<Delivery>,
}

impl Consumer {
    /// The next message; `None` once the broker is gone.
    pub async fn recv(&mut self) -> Option<Arc<Message>> {
        self.receiver.recv().await.map(|d| d.message)
    }

    /// The next message if one is waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Message>> {
        self.receiver.try_recv().ok().map(|d| d.message)
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.core.router.unsubscribe(&self.id, &self.filter);
        self.core.registry.remove(&self.id);
    }
}
