//! The core: who gets a message ([`router`]), where each client's messages go right now
//! ([`registry`]), the queue in front of each connection ([`inbox`]), handing a message to
//! one receiver and waiting for a full one ([`deliver`]), durable state ([`persist`]),
//! status events ([`status`]), message trace ([`trace`]) and MQTT 5 wills waiting for their
//! delay ([`wills`]).
//!
//! Nothing here knows connections, listeners or services: each part gets the few others it
//! uses when it is made, and [`Core`] holds one of each for the layers above.

pub(crate) mod deliver;
pub(crate) mod inbox;
pub(crate) mod paging;
pub(crate) mod persist;
pub(crate) mod readers;
pub(crate) mod registry;
pub(crate) mod router;
pub(crate) mod status;
pub(crate) mod trace;
pub(crate) mod wills;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use mqgate_codec::{ByteStr, QoS};
use mqgate_session::{Message, MessageId, QueuePage, QueueRead, SessionConfig};
use mqgate_store::{restore_sessions, restore_sessions_in_store, Store};
use mqgate_topic::{ClientIdRules, TopicName};
use mqgate_trace::{Action, Info};
use tokio::sync::watch;

use crate::clock::{monotonic_ms, unix_time_ms};
use crate::config::Limits;
use crate::{BrokerError, Metrics};
use deliver::Waits;
use persist::{Persist, StoreFailed};
use registry::Registry;
use router::{RouteScratch, Router};
use status::StatusHub;
use trace::Tracer;

/// A page of a stored queue on its way from the store: `None` when it could not be read.
pub(crate) type PageRead =
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<QueuePage>> + Send>>;

/// The threads that read pages of stored queues (see [`readers`]). Reads of a queue on disk
/// mostly come from the kernel's page cache; the store's single writer, not the reads, is
/// what limits a drain, and every reader thread is one more allocator arena.
const PAGE_READERS: usize = 4;

/// How long a session's driver waits before asking again for a page the store could not read.
const PAGE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The page being read, once it is there (polled only while one is).
pub(crate) async fn next_page(reading: &mut Option<PageRead>) -> Option<QueuePage> {
    match reading {
        Some(read) => read.await,
        None => std::future::pending().await,
    }
}

/// A boxed future of the [`Share`] seam: the completion to await before the message counts
/// as shared, if it must be waited for.
pub(crate) type ShareFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Option<tokio::sync::oneshot::Receiver<()>>> + Send + 'a>,
>;

/// Where a message that entered this broker goes besides its own receivers: the other nodes
/// of a cluster (implemented above the core, by the cluster service).
pub(crate) trait Share: Send + Sync + 'static {
    /// Hands `message` over (with the publish's RETAIN flag), waiting while the way out is
    /// full; a QoS 1 or 2 message's completion resolves once it is safely out.
    fn share<'a>(&'a self, message: &'a Message, retain: bool) -> ShareFuture<'a>;
}

/// The core parts of one broker, made once at start and shared by the connections, the
/// services and the embedding API.
pub(crate) struct Core {
    pub(crate) router: Router,
    pub(crate) registry: Arc<Registry>,
    pub(crate) persist: Arc<Persist>,
    pub(crate) status: StatusHub,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) store: Arc<dyn Store>,
    /// Queued messages a persistent session holds in memory, the rest staying in the store;
    /// `None`: queues are held whole in memory (an ephemeral broker).
    pub(crate) queue_window: Option<usize>,
    /// The memory budget the sessions draining stored backlogs share.
    pub(crate) paging: Arc<paging::Paging>,
    /// The threads reading pages of stored queues (see [`PAGE_READERS`]).
    page_readers: readers::Readers,
    /// How long a publisher with nothing else to serve waits for full receivers.
    pub(crate) waits: Waits,
    /// Becomes `true` once shutdown starts.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The message trace recorder; `None` when trace is off (then nothing is recorded and
    /// the paths that would record only test this).
    pub(crate) trace: Option<Arc<Tracer>>,
    /// MQTT 5 wills waiting for their Will Delay Interval.
    pub(crate) wills: wills::PendingWills,
    /// Where clients are sent instead of being served, when set.
    pub(crate) redirect: parking_lot::RwLock<Option<Arc<crate::config::Redirect>>>,
    /// The other nodes of the cluster, for what the broker publishes itself (the APIs);
    /// `None` for a single node.
    pub(crate) cluster: Option<Arc<dyn Share>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

/// Why a message routed by [`Core::settle`] is not safe with every receiver.
#[derive(Debug)]
pub(crate) enum Unsettled {
    /// Receivers stayed full longer than the backpressure timeout (the others have it).
    Full,
    /// The store refused the writes of its persistent receivers.
    Store(StoreFailed),
}

impl Core {
    /// Starts the store writer over `store` and makes the empty core. P2P addresses are read
    /// under `client_id_rules`, the rules CONNECTs are checked against.
    ///
    /// # Errors
    /// The writer thread could not start, or the system has no randomness for channel ids.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        limits: &Limits,
        session: &SessionConfig,
        client_id_rules: ClientIdRules,
        queue_window: Option<usize>,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let persist = Arc::new(Persist::start(store.clone(), metrics.clone())?);
        // A handover buffers at most what the session's queue would hold.
        let registry = Arc::new(Registry::new(session.max_queued_messages));
        Ok(Core {
            router: Router::new(
                registry.clone(),
                persist.clone(),
                metrics.clone(),
                client_id_rules,
            ),
            registry,
            persist,
            status: StatusHub::new(limits.status_channel_capacity)?,
            metrics,
            store,
            queue_window: queue_window.map(|w| w.max(1)),
            paging: paging::Paging::new(crate::config::DEFAULT_BACKLOG_MEMORY_BYTES),
            page_readers: readers::Readers::new(PAGE_READERS),
            waits: Waits::from(limits),
            shutdown,
            trace: None,
            wills: wills::PendingWills::default(),
            redirect: parking_lot::RwLock::new(None),
            cluster: None,
        })
    }

    /// Brings back what the store holds, before any listener opens: persistent sessions
    /// (offline, in the registry) with their subscriptions (in the trie) and queues, and the
    /// retained messages. A session whose record does not restore is logged and skipped.
    /// With queues kept on disk, no queued message is read: each session starts with its
    /// queue's counters and reads it once its client is back.
    ///
    /// # Errors
    /// The store could not be read.
    pub(crate) fn restore(&self, config: SessionConfig) -> Result<(), mqgate_store::StoreError> {
        let started = std::time::Instant::now();
        let (store, router, registry) = (self.store.as_ref(), &self.router, &self.registry);
        let sessions = match self.queue_window {
            Some(window) => restore_sessions_in_store(store, config, window, monotonic_ms())?,
            None => restore_sessions(store, config, monotonic_ms())?,
        };
        let (mut restored, mut skipped) = (0usize, 0usize);
        for session in sessions {
            match session {
                Ok(mut session) => {
                    if session.expiry_interval_s().is_some() && session.offline_since_ms().is_none()
                    {
                        // Stored while its client was online (the broker stopped without
                        // closing it): its offline time starts now.
                        session.set_offline_since_ms(Some(monotonic_ms()));
                    }
                    let client: Arc<str> = Arc::from(session.client_id().as_str());
                    for subscription in session.subscriptions() {
                        if router
                            .subscribe(&client, &subscription.filter, subscription.qos)
                            .is_none()
                        {
                            tracing::warn!(%client, filter = %subscription.filter, "stored subscription not restored");
                        }
                    }
                    registry.insert_offline(client, Box::new(session));
                    restored += 1;
                }
                Err(error) => {
                    tracing::warn!(%error, "stored session not restored");
                    skipped += 1;
                }
            }
        }
        let retained = store.load_retained()?;
        let retained_count = retained.len();
        for message in retained {
            router.restore_retained(message);
        }
        tracing::info!(
            sessions = restored,
            skipped,
            retained = retained_count,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "durable state restored"
        );
        Ok(())
    }

    /// Reads the page `read` of `client`'s stored queue (as its session's
    /// `poll_queue_read` asked). The read waits until everything submitted to the store so
    /// far has committed (so the page holds every entry the session counted), then runs on
    /// one of the [`PAGE_READERS`] reader threads: the store is never read on a runtime
    /// thread, and a session with a deep backlog waits for its page without holding up any
    /// other. A failed read is logged, counted and answered `None` after a pause, so the
    /// session asks again.
    pub(crate) fn read_queue_page(self: &Arc<Self>, client: Arc<str>, read: QueueRead) -> PageRead {
        let core = self.clone();
        let ticket = core.persist.submitted();
        Box::pin(async move {
            let _ = core.persist.wait(ticket).await;
            let store = core.store.clone();
            let reader = client.clone();
            let read = core
                .page_readers
                .run(move || store.read_page(&reader, &read))
                .await;
            match read {
                Some(Ok(page)) => {
                    core.metrics
                        .queue_pages_read
                        .fetch_add(1, Ordering::Relaxed);
                    Some(page)
                }
                Some(Err(error)) => {
                    tracing::warn!(%client, %error, "queued messages not read from the store; retrying");
                    core.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(PAGE_RETRY).await;
                    None
                }
                None => None,
            }
        })
    }

    /// Whether shutdown has started.
    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A new message with a fresh id, published now (wall clock: the time is stored) by the
    /// client `origin` (empty when the broker itself publishes).
    pub(crate) fn message(
        &self,
        origin: &ByteStr,
        topic: ByteStr,
        payload: Bytes,
        qos: QoS,
    ) -> Arc<Message> {
        self.message_with(origin, topic, payload, qos, Bytes::new(), None)
    }

    /// Ends every offline MQTT 5 session whose Session Expiry Interval has passed at `now`
    /// (the broker's clock, as [`monotonic_ms`] reads it: offline times are stamped with it,
    /// and it starts at the wall-clock time, so a stored stamp keeps its meaning across a
    /// restart): its subscriptions leave the trie and its record and queue the store.
    /// Returns how many ended.
    pub(crate) fn end_expired_sessions(&self, now: u64) -> usize {
        let expired = self.registry.take_expired(now);
        let mut ops = Vec::with_capacity(expired.len());
        for session in &expired {
            let client: Arc<str> = Arc::from(session.client_id().as_str());
            // A client that connected again since has a fresh session of its own (this one
            // left the registry first): its subscriptions are not this one's to remove.
            if !self.registry.is_online(&client) {
                self.router
                    .unsubscribe_all(&client, session.subscriptions());
            }
            ops.push(mqgate_store::Op::RemoveSession(session.client_id().clone()));
            tracing::debug!(%client, "session expired");
        }
        if !ops.is_empty() {
            let _ = self.persist.submit(&mut ops);
        }
        expired.len()
    }

    /// [`message`](Self::message) with an MQTT 5 PUBLISH's forwarded properties (their wire
    /// encoding, kept as received) and its Message Expiry Interval in seconds.
    pub(crate) fn message_with(
        &self,
        origin: &ByteStr,
        topic: ByteStr,
        payload: Bytes,
        qos: QoS,
        properties: Bytes,
        expiry_s: Option<u32>,
    ) -> Arc<Message> {
        let id = self.router.next_id();
        let now_ms = unix_time_ms();
        if let Some(trace) = &self.trace {
            // The moment the message enters the broker: from a device, or from the backend
            // side (no origin: the HTTP API, the embedding API, the cloud SDK endpoint,
            // RocketMQ).
            let (action, info) = if origin.is_empty() {
                (Action::PubMq, Info::PubFromMq)
            } else {
                (Action::PubMqtt, Info::PubFromMqttClient)
            };
            trace.message_at(action, info, origin, id, now_ms);
        }
        let mut message = Message::new(id, topic, payload, qos, now_ms).with_origin(origin.clone());
        message.properties = properties;
        message.expires_at_ms = expiry_s.map(|s| now_ms.saturating_add(u64::from(s) * 1000));
        Arc::new(message)
    }

    /// Publishes as the broker itself (the embedding API, the HTTP API's `SendMessage`):
    /// checks the topic, routes the message and waits until it is safe with every receiver.
    ///
    /// # Errors
    /// [`BrokerError::InvalidTopic`], [`BrokerError::Shutdown`],
    /// [`BrokerError::Backpressure`] when receivers stayed full (some may have received it),
    /// or [`BrokerError::Store`] when the store refused its persistent receivers' copies.
    pub(crate) async fn publish_topic(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Result<MessageId, BrokerError> {
        let (message, mut scratch) = self.route_topic(topic, payload, qos, retain)?;
        let shared = self.share(&message, retain).await;
        self.settle_topic(&mut scratch).await?;
        Self::shared(shared).await?;
        Ok(message.id)
    }

    /// Hands `message`, which entered this broker, to the other nodes of the cluster (none
    /// without one): the completion to await with [`shared`](Self::shared) before it counts
    /// as accepted.
    pub(crate) async fn share(
        &self,
        message: &Message,
        retain: bool,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        match &self.cluster {
            Some(cluster) => cluster.share(message, retain).await,
            None => None,
        }
    }

    /// Waits for what [`share`](Self::share) answered.
    ///
    /// # Errors
    /// [`BrokerError::Shutdown`] when the message never reached the other nodes (the
    /// cluster stopped first).
    pub(crate) async fn shared(
        completion: Option<tokio::sync::oneshot::Receiver<()>>,
    ) -> Result<(), BrokerError> {
        match completion {
            Some(done) => done.await.map_err(|_| BrokerError::Shutdown),
            None => Ok(()),
        }
    }

    /// The first half of [`publish_topic`](Self::publish_topic): checks the topic and routes
    /// the message, without waiting. A publisher with more to do meanwhile (the cloud SDK
    /// endpoint, whose backends pipeline their sends) routes in order here and waits for
    /// each with [`settle_topic`](Self::settle_topic) while it goes on.
    ///
    /// # Errors
    /// [`BrokerError::InvalidTopic`], [`BrokerError::Shutdown`].
    pub(crate) fn route_topic(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Result<(Arc<Message>, RouteScratch), BrokerError> {
        if self.is_shutting_down() {
            return Err(BrokerError::Shutdown);
        }
        TopicName::validate(topic).map_err(|e| BrokerError::InvalidTopic(e.to_string()))?;
        let topic =
            ByteStr::try_from(topic).map_err(|e| BrokerError::InvalidTopic(e.to_string()))?;
        let message = self.message(&ByteStr::from_static(""), topic, payload, qos);
        let mut scratch = RouteScratch::default();
        self.router
            .route(&message, retain, None, monotonic_ms(), &mut scratch);
        Ok((message, scratch))
    }

    /// The second half of [`publish_topic`](Self::publish_topic): waits until the message
    /// routed into `scratch` is safe with every receiver.
    ///
    /// # Errors
    /// [`BrokerError::Backpressure`] when receivers stayed full (some may have received it),
    /// or [`BrokerError::Store`] when the store refused its persistent receivers' copies.
    pub(crate) async fn settle_topic(&self, scratch: &mut RouteScratch) -> Result<(), BrokerError> {
        match self.settle(scratch).await {
            Ok(()) => Ok(()),
            Err(Unsettled::Full) => Err(BrokerError::Backpressure),
            Err(Unsettled::Store(error)) => Err(BrokerError::Store(error.to_string())),
        }
    }

    /// Routes `message` (setting the retained message of its topic with `retain`) for a
    /// publisher with nothing else to serve meanwhile (the embedding API, a will), and waits
    /// until it is safe: see [`settle`](Self::settle). With `skip_publisher`, the publisher's
    /// own session does not get it (MQTT 5 No Local on every subscription of its that
    /// matches).
    ///
    /// # Errors
    /// As [`settle`](Self::settle).
    pub(crate) async fn publish(
        &self,
        message: &Arc<Message>,
        retain: bool,
        publisher: Option<&str>,
        skip_publisher: bool,
    ) -> Result<(), Unsettled> {
        let mut scratch = RouteScratch::default();
        scratch.skip_publisher = skip_publisher;
        self.router
            .route(message, retain, publisher, monotonic_ms(), &mut scratch);
        self.settle(&mut scratch).await
    }

    /// Waits until the message the last route of `scratch` carried is with every receiver:
    /// in every full inbox it was left for (bounded by [`Waits`]), and on disk for the
    /// persistent receivers.
    ///
    /// # Errors
    /// [`Unsettled::Full`] when receivers stayed full; [`Unsettled::Store`] when the store
    /// refused the writes.
    pub(crate) async fn settle(&self, scratch: &mut RouteScratch) -> Result<(), Unsettled> {
        let blocked = std::mem::take(&mut scratch.blocked);
        let ticket = scratch.ticket.take();
        if !deliver::settle(&self.registry, &self.metrics, blocked, self.waits).await {
            return Err(Unsettled::Full);
        }
        persist::committed(&self.persist, ticket)
            .await
            .map_err(Unsettled::Store)
    }
}
