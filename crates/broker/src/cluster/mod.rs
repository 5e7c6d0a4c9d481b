//! The cluster (`[cluster]`, `docs/cluster.md`): several nodes serve one instance, sharing
//! nothing but RocketMQ. Built: heartbeats and the alive peers, the route topic that carries
//! every application message entering a node to the others, and presence (every node's
//! status events to every node, the view of which client is on which node, the tcpclean of a
//! dead node's clients, takeover and CloseConnection across nodes), and the registries
//! (every node's changes to groups, tokens, device credentials and custom-auth records to
//! every node; a joining node's snapshot of the others' records and retained messages).
//!
//! ```text
//!  PUBLISH / API publish ─▶ local receivers, and ─▶ lane (by publisher id) ─▶ send, retry
//!                            (QoS 1/2: acknowledged once RocketMQ stored it)   mqgate_I_route
//!  mqgate_I_route ─▶ ordered consumer (group mqgate_I_node_{id}) ─▶ not our own, not older
//!                            than this node ─▶ router (retained set/clear too) ─▶ commit
//!  every heartbeat_ms ─▶ mqgate_I_nodes ─▶ every node's consumer ─▶ the alive peers
//!  status event ─▶ local listeners, and ─▶ lane (by client id) ─▶ mqgate_I_presence ─▶
//!        ordered consumer (every node) ─▶ the view; the other nodes' events ─▶ listeners;
//!        a newer connect elsewhere ─▶ takeover; a close request ─▶ the node holding it
//!  every heartbeat_ms: clients of nodes gone ─▶ tcpclean (by the lowest live node id)
//!  registry change (API) ─▶ stored here, stamped ─▶ lane (by record) ─▶ mqgate_I_registry
//!        ─▶ ordered consumer (every node) ─▶ applied when its stamp is newer
//!  start ─▶ hello on mqgate_I_registry ─▶ every other node ─▶ its records and retained
//!        messages, for this node only ─▶ taken in by the same rule
//! ```

mod peers;
mod presence;
mod records;
mod route;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqgate_codec::QoS;
use mqgate_rocketmq::RocketMessage;
use mqgate_session::Message;
use mqgate_status::{EventType, StatusEvent};
use mqgate_topic::{ClientIdRules, P2pAddress};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::auth::Access;
use crate::bridge::send::{Counters, Lanes, Outgoing, RetryBounds, Sender};
use crate::bridge::{built_in_client, ClientSettings, Consumed, RocketMqClient};
use crate::clock::unix_time_ms;
use crate::config::ClusterConfig;
use crate::connection::{Completion, Outflow, OutflowFuture};
use crate::core::inbox::Kick;
use crate::core::registry::Registry;
use crate::core::status::Presence;
use crate::core::wills::{WillSession, WillTicket};
use crate::core::{Core, Share, ShareFuture, Unsettled};
use crate::{BrokerError, Metrics, TakeoverPolicy};
pub use peers::ClusterNode;
use peers::{Heard, Heartbeat, Peers, HEARTBEAT, LEAVE};
use presence::{CarriedWill, Entry, Incoming, NodeRun, View};

/// Route lanes: one publisher's messages always take the same lane, and a lane sends one at
/// a time, so they reach the route topic (one queue per publisher) in the order published.
const ROUTE_LANES: usize = 8;
/// The first pause after a failed route send, and the longest.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Presence lanes: one client's events always take the same lane.
const PRESENCE_LANES: usize = 8;
/// How long a stopping node waits for its route messages to reach RocketMQ.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long after a node is found gone the lowest live node waits before it sends the
/// tcpclean of its clients: the tcpcleans a stopping node sent before its last word come
/// first, so a node that stopped cleanly gets none sent twice.
const CLEAN_GRACE_MS: u64 = 2_000;
/// Registry lanes: one record's changes always take the same lane.
const REGISTRY_LANES: usize = 4;
/// Snapshot lanes: what a joining node is sent, apart from the changes, so a large snapshot
/// never fills the lanes a change must find room in.
const SNAPSHOT_LANES: usize = 2;
/// The consumers a running node has: route, nodes, presence and registry.
const CONSUMERS: usize = 4;
/// The file in `data_dir` that remembers when this node first joined its instance.
pub(crate) const JOINED_FILE: &str = "cluster-node.json";

/// This node's view of the cluster, from [`BrokerHandle::cluster`](crate::BrokerHandle::cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterHealth {
    /// The instance.
    pub instance: String,
    /// This node's id.
    pub node_id: String,
    /// Whether RocketMQ takes this node's messages: `false` from a failed send (route
    /// message or heartbeat) until the next one that succeeds.
    pub rocketmq_up: bool,
    /// The error that took it down, while down.
    pub last_error: Option<String>,
    /// Consumers running (the route, nodes, presence and registry topics: 4 once started).
    pub consumers: usize,
    /// Route messages waiting for RocketMQ.
    pub buffered: u64,
    /// Every node alive now, this one included, by node id.
    pub nodes: Vec<ClusterNode>,
}

impl ClusterHealth {
    /// Healthy: RocketMQ takes what this node sends and both consumers run.
    pub fn is_healthy(&self) -> bool {
        self.rocketmq_up && self.consumers == CONSUMERS
    }

    /// The alive nodes other than this one.
    pub fn peers(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|node| !node.this_node)
    }
}

/// The running cluster part of one node.
pub(crate) struct Cluster {
    config: ClusterConfig,
    sender: Arc<Sender>,
    lanes: Lanes,
    peers: Peers,
    /// When this node started (ms since the epoch): its heartbeats carry it.
    started_ms: u64,
    /// Route messages published before this are skipped: when this node first joined.
    horizon_ms: u64,
    /// This node joins for the first time (or keeps nothing across restarts): its route
    /// group starts at the end of the topic, not at what RocketMQ gives a new group.
    fresh: bool,
    /// The MQTT address heartbeats announce, once the listeners are bound.
    address: Mutex<String>,
    /// When RocketMQ last took this node's heartbeat.
    last_beat_ms: std::sync::atomic::AtomicU64,
    consumers: std::sync::atomic::AtomicUsize,
    registry: Arc<Registry>,
    client_id_rules: ClientIdRules,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The presence messages' lanes (one client's in order).
    presence_lanes: Lanes,
    /// Which client is on which node, from the presence topic.
    view: Mutex<View>,
    /// The connect event (and will) of every client connected here now (what a joining node
    /// is told).
    local: Mutex<HashMap<String, Connected>>,
    /// Node runs the view still has clients of that are not alive, and since when.
    gone: Mutex<HashMap<NodeRun, u64>>,
    /// What a connect of a client online on another node does (the `takeover` setting).
    takeover: TakeoverPolicy,
    /// The registry changes' lanes (one record's changes in order).
    registry_lanes: Lanes,
    /// The lanes of the snapshots sent to joining nodes, and of this node's hello.
    snapshot_lanes: Lanes,
    /// The registries (with `[auth]`) and the token watch, which other nodes' changes go to.
    access: Option<Arc<Access>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A client connected to this node: its connect event and its will.
type Connected = (StatusEvent, Option<Arc<CarriedWill>>);

/// What `data_dir`'s [`JOINED_FILE`] holds.
#[derive(Debug, Serialize, Deserialize)]
struct Joined {
    instance: String,
    node_id: String,
    joined_ms: u64,
}

impl Cluster {
    /// Checks the configuration, connects to RocketMQ (the built-in client unless `client`
    /// is given) and waits until RocketMQ took this node's first heartbeat. `data_dir`:
    /// where the node keeps durable state (`None` with memory storage), where it remembers
    /// when it first joined.
    ///
    /// # Errors
    /// [`BrokerError::Config`] for a bad `[cluster]` or a data directory of another node;
    /// [`BrokerError::Cluster`] when the name server is not reachable, the client does not
    /// start, or RocketMQ does not take the first heartbeat within `start_timeout_ms`.
    // Each is a part of the broker the cluster works with; a struct of them would only be
    // taken apart here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start(
        config: ClusterConfig,
        client: Option<Arc<dyn RocketMqClient>>,
        metrics: Arc<Metrics>,
        registry: Arc<Registry>,
        client_id_rules: ClientIdRules,
        takeover: TakeoverPolicy,
        data_dir: Option<&Path>,
        access: Option<Arc<Access>>,
    ) -> Result<Arc<Cluster>, BrokerError> {
        config.check()?;
        let started_ms = unix_time_ms();
        let (horizon_ms, fresh) = match data_dir {
            Some(dir) => joined(dir, &config, started_ms)?,
            None => (started_ms, true),
        };
        let client = match client {
            Some(client) => client,
            None => {
                reachable(&config).await?;
                default_client(&config).await?
            }
        };
        let bounds = RetryBounds {
            send_timeout: config.send_timeout_ms,
            min: RETRY_MIN,
            max: RETRY_MAX,
        };
        let sender = Arc::new(Sender::new(client, metrics, Counters::Cluster, bounds));
        let capacity = (config.buffer / ROUTE_LANES).max(1);
        let (lanes, mut tasks) = Lanes::start(sender.clone(), ROUTE_LANES, capacity);
        let capacity = (config.buffer / PRESENCE_LANES).max(1);
        let (presence_lanes, more) = Lanes::start(sender.clone(), PRESENCE_LANES, capacity);
        tasks.extend(more);
        let capacity = (config.buffer / REGISTRY_LANES).max(1);
        let (registry_lanes, more) = Lanes::start(sender.clone(), REGISTRY_LANES, capacity);
        tasks.extend(more);
        let capacity = (config.buffer / SNAPSHOT_LANES).max(1);
        let (snapshot_lanes, more) = Lanes::start(sender.clone(), SNAPSHOT_LANES, capacity);
        tasks.extend(more);
        let cluster = Arc::new(Cluster {
            config,
            sender,
            lanes,
            peers: Peers::default(),
            started_ms,
            horizon_ms,
            fresh,
            address: Mutex::new(String::new()),
            last_beat_ms: 0.into(),
            consumers: 0.into(),
            registry,
            client_id_rules,
            tasks: Mutex::new(tasks),
            presence_lanes,
            view: Mutex::new(View::default()),
            local: Mutex::new(HashMap::new()),
            gone: Mutex::new(HashMap::new()),
            takeover,
            registry_lanes,
            snapshot_lanes,
            access,
        });
        if let Err(error) = cluster.first_heartbeat().await {
            for task in cluster.tasks.lock().drain(..) {
                task.abort();
            }
            cluster.stop_client().await;
            return Err(error);
        }
        tracing::info!(
            instance = %cluster.config.instance,
            node = %cluster.config.node_id,
            name_server = %cluster.config.name_server,
            "cluster: joined",
        );
        Ok(cluster)
    }

    /// Sends a join message on the route, presence and registry topics and a heartbeat until
    /// RocketMQ took all four, at most `start_timeout_ms` (the first send to a topic RocketMQ
    /// has not seen yet fails until its route exists): every topic exists before a consumer
    /// of it starts (a consumer that starts before its topic sees its queues only at its next
    /// route refresh) and before the first publish needs it.
    async fn first_heartbeat(&self) -> Result<(), BrokerError> {
        let deadline = Instant::now() + self.config.start_timeout_ms;
        let mut pause = RETRY_MIN;
        let joins = [
            route::join(&self.config.route_topic(), &self.config.node_id),
            presence::join_message(&self.config.presence_topic(), &self.run()),
            records::join_message(&self.config.registry_topic(), &self.config.node_id),
        ];
        let mut joined = [false; 3];
        loop {
            let mut error = None;
            for (join, done) in joins.iter().zip(joined.iter_mut()) {
                if *done {
                    continue;
                }
                let sent = tokio::time::timeout(
                    self.config.send_timeout_ms,
                    self.sender.client.send(join, Some(&self.config.node_id)),
                )
                .await;
                let failed = match sent {
                    Ok(Ok(())) => None,
                    Ok(Err(failure)) => Some(failure.0),
                    Err(_) => Some("send timed out".to_owned()),
                };
                match failed {
                    None => *done = true,
                    Some(failure) => {
                        error = Some(format!(
                            "the topic {} took no message: {failure}",
                            join.topic
                        ));
                    }
                }
            }
            let error = match (self.beat(HEARTBEAT).await, error) {
                (Ok(()), None) => return Ok(()),
                (Ok(()), Some(error)) | (Err(error), _) => error,
            };
            if Instant::now() + pause >= deadline {
                return Err(BrokerError::Cluster(format!(
                    "RocketMQ (name server {}) did not take this node's first heartbeat within \
                     {} ms: {error}",
                    self.config.name_server,
                    self.config.start_timeout_ms.as_millis()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Starts a consumer of `topic` in `group` (`ordered`: one queue's messages one at a
    /// time) and counts it; its messages come out of the receiver.
    ///
    /// # Errors
    /// [`BrokerError::Cluster`] when it does not start.
    async fn consume(
        &self,
        topic: &str,
        group: &str,
        ordered: bool,
    ) -> Result<mpsc::Receiver<Consumed>, BrokerError> {
        let (sink, consumed) = mpsc::channel(64);
        let client = &self.sender.client;
        let (topic, group) = (topic.to_owned(), group.to_owned());
        let started = if ordered {
            client
                .consume_ordered(topic.clone(), group.clone(), sink)
                .await
        } else {
            client.consume(topic.clone(), group.clone(), sink).await
        };
        started.map_err(|e| BrokerError::Cluster(format!("consumer of {topic} ({group}): {e}")))?;
        self.consumers.fetch_add(1, Ordering::Relaxed);
        Ok(consumed)
    }

    /// Starts the consumers (route, nodes, presence and registry topics), the heartbeats and
    /// the registry's feed, and asks the others for their snapshots, once the core restored
    /// its state.
    ///
    /// # Errors
    /// [`BrokerError::Cluster`] when a consumer does not start.
    pub(crate) async fn attach(self: &Arc<Self>, core: &Arc<Core>) -> Result<(), BrokerError> {
        let (topic, group) = (self.config.route_topic(), self.config.route_group());
        if self.fresh {
            self.start_at_end(&topic, &group).await;
        }
        // Heartbeats are never caught up on.
        self.start_at_end(&self.config.nodes_topic(), &self.config.nodes_group())
            .await;
        let consumed = self.consume(&topic, &group, true).await?;
        let route = tokio::spawn(route::run(core.clone(), self.clone(), consumed));
        let (topic, group) = (self.config.nodes_topic(), self.config.nodes_group());
        let consumed = self.consume(&topic, &group, false).await?;
        let nodes = tokio::spawn(self.clone().hear(consumed));
        let beats = tokio::spawn(self.clone().heartbeats());
        self.tasks.lock().extend([route, nodes, beats]);
        // Presence is never caught up on: a joining node learns who is online from the
        // others' answers to its hello.
        let (topic, group) = (self.config.presence_topic(), self.config.presence_group());
        self.start_at_end(&topic, &group).await;
        let consumed = self.consume(&topic, &group, true).await?;
        let presence = tokio::spawn(self.clone().take_presence(core.clone(), consumed));
        let sweep = tokio::spawn(self.clone().sweep_gone(core.clone()));
        self.tasks.lock().extend([presence, sweep]);
        let hello = presence::hello_message(&topic, &self.run());
        self.send_presence(&self.config.node_id, hello);
        // Registries: a restarted node catches up on the changes it missed; a new one starts
        // at the end. Both ask the others for what they hold (registries and retained
        // messages) once the consumer runs.
        let (topic, group) = (self.config.registry_topic(), self.config.registry_group());
        if self.fresh {
            self.start_at_end(&topic, &group).await;
        }
        let consumed = self.consume(&topic, &group, true).await?;
        let registry = tokio::spawn(self.clone().take_registry(core.clone(), consumed));
        self.tasks.lock().push(registry);
        if let Some(auth) = self.access.as_ref().and_then(|access| access.core.as_ref()) {
            let feed = Arc::new(records::Feed(Arc::downgrade(self)));
            auth.registry().set_feed(&self.config.node_id, feed);
        }
        let node = &self.config.node_id;
        let outgoing = Outgoing {
            message: records::hello_message(&topic, node, unix_time_ms()),
            order_key: Some(node.clone()),
            done: None,
        };
        if !self.snapshot_lanes.try_send(node, outgoing) {
            tracing::warn!("cluster: the request for the other nodes' registries was not sent");
        }
        Ok(())
    }

    /// This run of this node.
    fn run(&self) -> NodeRun {
        NodeRun {
            id: self.config.node_id.clone(),
            started_ms: self.started_ms,
        }
    }

    /// `dead_after_ms` in ms.
    fn dead_after(&self) -> u64 {
        u64::try_from(self.config.dead_after_ms.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether `node` is this run of this node.
    fn is_this(&self, node: &NodeRun) -> bool {
        node.id == self.config.node_id && node.started_ms == self.started_ms
    }

    /// Whether `node` is alive now: this run of this node, or a peer run heard from within
    /// `dead_after_ms`.
    fn is_alive(&self, node: &NodeRun) -> bool {
        self.is_this(node)
            || (node.id != self.config.node_id
                && self.peers.is_alive(
                    &node.id,
                    node.started_ms,
                    unix_time_ms(),
                    self.dead_after(),
                ))
    }

    /// Hands a presence message to its lane without waiting; a full lane loses it (logged
    /// and counted in `cluster_failed`).
    fn send_presence(&self, key: &str, message: RocketMessage) {
        let outgoing = Outgoing {
            message,
            order_key: Some(key.to_owned()),
            done: None,
        };
        if !self.presence_lanes.try_send(key, outgoing) {
            tracing::warn!(%key, "cluster: presence message not sent (its lane is full or stopped)");
        }
    }

    /// Takes in the presence topic until it stops: one message at a time, in the order of
    /// its queue (one client's messages in the order sent).
    async fn take_presence(
        self: Arc<Self>,
        core: Arc<Core>,
        mut consumed: mpsc::Receiver<Consumed>,
    ) {
        while let Some(Consumed { message, done }) = consumed.recv().await {
            match presence::decode(&message) {
                Ok(incoming) => self.presence(&core, incoming),
                Err(error) => {
                    tracing::warn!(%error, "cluster: presence message not readable; skipped");
                    let metrics = &self.sender.metrics;
                    metrics.cluster_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = done.send(true);
        }
    }

    /// Acts on one presence message.
    fn presence(self: &Arc<Self>, core: &Core, incoming: Incoming) {
        let now = unix_time_ms();
        match incoming {
            Incoming::Event { from, event, will } => {
                // Another node's event, for this node's listeners; this node gave its own to
                // them when it emitted it. Nothing older than this node (a history read
                // when its group could not be moved to the end), with dead_after_ms of room
                // for the nodes' clocks.
                if !self.is_this(&from)
                    && event.time.saturating_add(self.dead_after()) >= self.started_ms
                {
                    core.status.deliver(event.clone());
                }
                match event.event_type {
                    EventType::Connect => {
                        // The client is back: a will its earlier connection left here waits
                        // no longer (this node's own connects decided it already).
                        if !self.is_this(&from)
                            && core.wills.connected_elsewhere(&event.client_id, event.time)
                        {
                            tracing::info!(client = %event.client_id, node = %from.id, "cluster: the client connected on another node; its waiting will is dropped");
                        }
                        let will = will.map(Arc::new);
                        self.connected(core, from, &event, will, now);
                    }
                    EventType::Disconnect => {
                        // A DISCONNECT: the client's will is not published.
                        let mut view = self.view.lock();
                        view.disconnected(&event.client_id, event.channel_id);
                    }
                    EventType::Tcpclean => {
                        self.view
                            .lock()
                            .closed(&event.client_id, event.channel_id, now);
                    }
                }
            }
            Incoming::Present { from, event, will } => {
                let entry = Entry::new(from, &event, will.map(Arc::new), now);
                self.view.lock().present(&event.client_id, entry);
            }
            Incoming::Hello { from } => {
                if !self.is_this(&from) {
                    tracing::debug!(node = %from.id, "cluster: a node joined; telling it this node's clients");
                    let events: Vec<_> = self.local.lock().values().cloned().collect();
                    let topic = self.config.presence_topic();
                    let run = self.run();
                    let cluster = self.clone();
                    tokio::spawn(async move {
                        for (event, will) in events {
                            let will = will.as_deref();
                            let outgoing = Outgoing {
                                message: presence::event_message(&topic, &run, &event, true, will),
                                order_key: Some(event.client_id.clone()),
                                done: None,
                            };
                            if !cluster
                                .presence_lanes
                                .send(&event.client_id, outgoing)
                                .await
                            {
                                return;
                            }
                        }
                    });
                }
            }
            Incoming::Join => {}
            Incoming::Close {
                from,
                client_id,
                channel,
            } => {
                if core.registry.kick(&client_id, Some(channel), Kick::Closed) {
                    tracing::info!(client = %client_id, by = %from.id, "cluster: connection closed at another node's request (CloseConnection)");
                }
            }
        }
    }

    /// A connect of `event.client_id` on `from`, in the order of the client's queue: the
    /// view follows it, and when the client was online on another live connection, the
    /// `takeover` policy closes one of the two (this node closes its own only): with
    /// kick-old the earlier in the queue, with refuse-new the later.
    fn connected(
        &self,
        core: &Core,
        from: NodeRun,
        event: &StatusEvent,
        will: Option<Arc<CarriedWill>>,
        now: u64,
    ) {
        let client = event.client_id.as_str();
        let mut view = self.view.lock();
        if view.was_closed(event.channel_id) {
            return;
        }
        let previous = view
            .get(client)
            .filter(|previous| previous.channel != event.channel_id)
            .cloned();
        let new_is_here = self.is_this(&from);
        let entry = Entry::new(from, event, will, now);
        let Some(previous) = previous.filter(|previous| self.is_alive(&previous.node)) else {
            view.set(client, entry);
            return;
        };
        match self.takeover {
            TakeoverPolicy::KickOld => {
                let to = entry.node.id.clone();
                view.set(client, entry);
                drop(view);
                if self.is_this(&previous.node)
                    && core
                        .registry
                        .kick(client, Some(previous.channel), Kick::Takeover)
                {
                    tracing::info!(%client, node = %to, "cluster takeover: the client connected to another node; its connection here is closed");
                }
            }
            TakeoverPolicy::RefuseNew => {
                drop(view);
                if new_is_here
                    && core
                        .registry
                        .kick(client, Some(event.channel_id), Kick::Takeover)
                {
                    tracing::info!(%client, node = %previous.node.id, "cluster takeover refused: the client was online on another node first; its new connection here is closed");
                }
            }
        }
    }

    /// Every `heartbeat_ms`: the lowest live node sends a tcpclean for each client of a node
    /// gone (silent for `dead_after_ms`, left, or an earlier run of a restarted node) once
    /// the node has been gone for [`CLEAN_GRACE_MS`] and the view has had the client for
    /// `dead_after_ms`; again after `dead_after_ms` if the view still has it.
    async fn sweep_gone(self: Arc<Self>, core: Arc<Core>) {
        let mut every = tokio::time::interval(self.config.heartbeat_ms);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            for (mut event, will) in self.gone_clients(unix_time_ms()) {
                event.seq = event.seq.max(core.status.sequence.next());
                tracing::info!(client = %event.client_id, "cluster: the client's node is gone; tcpclean sent for it");
                let client = event.client_id.clone();
                core.status.emit(Some(event));
                match will {
                    Some(will) if will.delay_s > 0 => {
                        let client: Arc<str> = Arc::from(client);
                        let ticket = core.wills.wait(&client, WillSession::Gone);
                        let delay = Duration::from_secs(u64::from(will.delay_s));
                        tracing::info!(%client, delay_s = will.delay_s, "cluster: the will of a gone node's client waits for its delay");
                        let (cluster, core) = (self.clone(), core.clone());
                        tokio::spawn(async move {
                            cluster
                                .publish_will_later(&core, &client, &will, ticket, delay)
                                .await;
                        });
                    }
                    Some(will) => self.publish_will(&core, &client, &will).await,
                    None => {}
                }
            }
        }
    }

    /// Publishes the will of `client`, whose node is gone, once `delay` passed, unless the
    /// client connects again first, on any node (see [`WillSession::Gone`]); a will still
    /// waiting when this node stops is not published.
    async fn publish_will_later(
        &self,
        core: &Core,
        client: &Arc<str>,
        will: &CarriedWill,
        ticket: WillTicket,
        delay: Duration,
    ) {
        let mut shutdown = core.shutdown.clone();
        let wills = &core.wills;
        let Some(publish) = ticket.decided(wills, client, delay, &mut shutdown).await else {
            return;
        };
        if publish {
            self.publish_will(core, client, will).await;
        } else {
            tracing::info!(%client, "cluster: the client came back before its will's delay passed; the will is dropped");
        }
    }

    /// Publishes the will of `client`, whose node is gone: here and to the other nodes, as
    /// its node would have.
    async fn publish_will(&self, core: &Core, client: &str, will: &CarriedWill) {
        if mqgate_topic::TopicName::validate(&will.message.topic).is_err() {
            tracing::warn!(%client, "will of a gone node's client not valid; not published");
            return;
        }
        let now = unix_time_ms();
        let mut message = will.message.clone();
        message.id = core.router.next_id();
        // Its expiry counts from now, as it would have from the connection's end.
        message.expires_at_ms = message
            .expires_at_ms
            .map(|at| now.saturating_add(at.saturating_sub(message.published_at_ms)));
        message.published_at_ms = now;
        let message = Arc::new(message);
        core.metrics.wills_published.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%client, topic = %message.topic, "cluster: will of a gone node's client published");
        // Nobody waits for RocketMQ's acknowledgement; the route send is retried.
        let _ = self.send_route(&message, will.retain).await;
        let published = core.publish(&message, will.retain, Some(client), false);
        let limit = core.waits.backpressure.saturating_mul(2);
        match tokio::time::timeout(limit, published).await {
            Ok(Ok(())) => {}
            Ok(Err(Unsettled::Full)) | Err(_) => {
                tracing::warn!(%client, "will not delivered to every receiver here in time");
            }
            Ok(Err(Unsettled::Store(error))) => {
                tracing::warn!(%client, %error, "will not stored for its persistent receivers");
            }
        }
    }

    /// The tcpclean events this node sends at `now` for the clients of nodes gone, with the
    /// clients' wills.
    fn gone_clients(&self, now: u64) -> Vec<(StatusEvent, Option<Arc<CarriedWill>>)> {
        let dead_after = self.dead_after();
        let alive: HashSet<NodeRun> = self
            .peers
            .alive(now, dead_after)
            .into_iter()
            .map(|node| NodeRun {
                id: node.node_id,
                started_ms: node.started_ms,
            })
            .chain([self.run()])
            .collect();
        let lowest = alive.iter().map(|node| node.id.as_str()).min() == Some(&self.config.node_id);
        let mut gone = self.gone.lock();
        let mut view = self.view.lock();
        view.prune(now);
        if view.nodes().all(|node| alive.contains(node)) {
            // The usual case: no client of a gone node, nothing to walk.
            gone.clear();
            return Vec::new();
        }
        let mut still_gone = HashSet::new();
        let mut clean = Vec::new();
        for (client, entry) in view.entries_mut() {
            if alive.contains(&entry.node) {
                continue;
            }
            let since = *gone.entry(entry.node.clone()).or_insert(now);
            still_gone.insert(entry.node.clone());
            if !lowest
                || now.saturating_sub(since) < CLEAN_GRACE_MS
                || now.saturating_sub(entry.seen_ms) < dead_after
                || entry
                    .cleaning_ms
                    .is_some_and(|at| now.saturating_sub(at) < dead_after)
            {
                continue;
            }
            entry.cleaning_ms = Some(now);
            let event = StatusEvent {
                client_id: client.clone(),
                time: now.max(entry.time),
                event_type: EventType::Tcpclean,
                channel_id: entry.channel,
                client_ip: entry.client_ip.clone(),
                seq: entry.seq.saturating_add(1),
            };
            // Published once: a tcpclean sent again does not publish it again.
            clean.push((event, entry.will.take()));
        }
        gone.retain(|node, _| still_gone.contains(node));
        clean
    }

    /// The node other than this one that the view says holds `client_id` (alive or not yet
    /// cleaned), if one does.
    pub(crate) fn held_by_other(&self, client_id: &str) -> Option<String> {
        let view = self.view.lock();
        let entry = view.get(client_id)?;
        (!self.is_this(&entry.node)).then(|| entry.node.id.clone())
    }

    /// Asks the node that the view says holds `client_id` to close its connection. `Ok(None)`
    /// when no other node holds it; `Ok(Some(node))` once RocketMQ took the request.
    ///
    /// # Errors
    /// RocketMQ did not take the request within `send_timeout_ms` (it is still retried), or
    /// the node stops.
    pub(crate) async fn close_elsewhere(&self, client_id: &str) -> Result<Option<String>, String> {
        let (node, channel) = {
            let view = self.view.lock();
            match view.get(client_id) {
                Some(entry) if !self.is_this(&entry.node) => (entry.node.id.clone(), entry.channel),
                _ => return Ok(None),
            }
        };
        let message = presence::close_message(
            &self.config.presence_topic(),
            &self.run(),
            client_id,
            channel,
        );
        let (done, taken) = oneshot::channel();
        let outgoing = Outgoing {
            message,
            order_key: Some(client_id.to_owned()),
            done: Some(done),
        };
        if !self.presence_lanes.send(client_id, outgoing).await {
            return Err("the node is stopping".to_owned());
        }
        match tokio::time::timeout(self.config.send_timeout_ms, taken).await {
            Ok(Ok(())) => Ok(Some(node)),
            Ok(Err(_)) => Err("the node is stopping".to_owned()),
            Err(_) => Err(format!(
                "RocketMQ did not take the close request within {} ms",
                self.config.send_timeout_ms.as_millis()
            )),
        }
    }

    /// Moves `group`'s offsets on `topic` to its end before its consumer starts. When that
    /// fails the consumer reads what came before, and skips it (older than this node).
    async fn start_at_end(&self, topic: &str, group: &str) {
        let seek = self
            .sender
            .client
            .start_at_end(topic.to_owned(), group.to_owned());
        match tokio::time::timeout(self.config.start_timeout_ms, seek).await {
            Ok(Ok(())) => {
                tracing::debug!(%topic, %group, "cluster: consumer group starts at the end")
            }
            Ok(Err(error)) => {
                tracing::warn!(%topic, %group, %error, "cluster: consumer group not moved to the end; what came before is read and skipped")
            }
            Err(_) => {
                tracing::warn!(%topic, %group, "cluster: consumer group not moved to the end in time; what came before is read and skipped")
            }
        }
    }

    /// Announces `address` (the MQTT listener) in the heartbeats from now on.
    pub(crate) fn set_address(&self, address: SocketAddr) {
        *self.address.lock() = address.to_string();
    }

    /// This node's clients online now.
    fn online_clients(&self) -> u64 {
        u64::try_from(self.registry.online_count()).unwrap_or(u64::MAX)
    }

    /// One heartbeat (or, with [`LEAVE`], the last word), sent once.
    async fn beat(&self, tag: &str) -> Result<(), String> {
        let beat = Heartbeat {
            node_id: self.config.node_id.clone(),
            started_ms: self.started_ms,
            sent_ms: unix_time_ms(),
            address: self.address.lock().clone(),
            clients: self.online_clients(),
        };
        let body = serde_json::to_vec(&beat).map_err(|e| e.to_string())?;
        let message = RocketMessage {
            topic: self.config.nodes_topic(),
            tags: Some(tag.to_owned()),
            keys: vec![self.config.node_id.clone()],
            properties: Default::default(),
            body: body.into(),
        };
        let metrics = &self.sender.metrics;
        let sent = tokio::time::timeout(
            self.config.send_timeout_ms,
            self.sender
                .client
                .send(&message, Some(&self.config.node_id)),
        )
        .await;
        match sent {
            Ok(Ok(())) => {
                self.sender.health.sent();
                self.last_beat_ms.store(beat.sent_ms, Ordering::Relaxed);
                metrics.cluster_sent.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(error)) => Err(error.0),
            Err(_) => Err(format!(
                "heartbeat send timed out after {} ms",
                self.config.send_timeout_ms.as_millis()
            )),
        }
    }

    /// A heartbeat every `heartbeat_ms`, until stopped.
    async fn heartbeats(self: Arc<Self>) {
        let mut every = tokio::time::interval(self.config.heartbeat_ms);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(error) = self.beat(HEARTBEAT).await {
                self.sender.health.failed(&error);
                let metrics = &self.sender.metrics;
                metrics.cluster_failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%error, "cluster: heartbeat not sent");
            }
        }
    }

    /// Takes in the heartbeats of every node.
    async fn hear(self: Arc<Self>, mut consumed: mpsc::Receiver<Consumed>) {
        let dead_after = u64::try_from(self.config.dead_after_ms.as_millis()).unwrap_or(u64::MAX);
        let own = (self.config.node_id.as_str(), self.started_ms);
        while let Some(Consumed { message, done }) = consumed.recv().await {
            let leave = message.tags.as_deref() == Some(LEAVE);
            match serde_json::from_slice::<Heartbeat>(&message.body) {
                Ok(beat) => {
                    let node = beat.node_id.clone();
                    match self
                        .peers
                        .heard(beat, leave, unix_time_ms(), dead_after, own)
                    {
                        Heard::Left => tracing::info!(%node, "cluster: node left"),
                        Heard::Impostor => {
                            tracing::error!(%node, "cluster: another node runs with this node's node_id; node ids must be unique");
                            let metrics = &self.sender.metrics;
                            metrics.cluster_failed.fetch_add(1, Ordering::Relaxed);
                        }
                        Heard::Alive | Heard::Ignored => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cluster: heartbeat not readable; skipped");
                    let metrics = &self.sender.metrics;
                    metrics.cluster_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = done.send(true);
        }
    }

    /// Hands `message` (which entered this node) to the other nodes: once, on the lane of its
    /// publisher. With QoS 1 or 2, the completion resolves once RocketMQ stored it. A P2P
    /// message to a client online here has nothing to do elsewhere.
    async fn send_route(&self, message: &Message, retain: bool) -> Option<Completion> {
        if let Ok(Some(address)) = P2pAddress::parse_with(&message.topic, &self.client_id_rules) {
            if self.registry.is_online(address.target_client_id) {
                return None;
            }
        }
        let key = if message.origin.is_empty() {
            // The broker's own publishes (APIs): in order per node.
            format!("$node/{}", self.config.node_id)
        } else {
            message.origin.to_string()
        };
        let routed = route::encode(
            &self.config.route_topic(),
            &self.config.node_id,
            message,
            retain,
        );
        let (done, completion) = if message.qos == QoS::AtMostOnce {
            (None, None)
        } else {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        };
        let outgoing = Outgoing {
            message: routed,
            order_key: Some(key.clone()),
            done,
        };
        self.lanes.send(&key, outgoing).await;
        completion
    }

    /// The client ids the presence view has on node `node_id` (any run of it), sorted, from
    /// the first after `after`: at most `max`, and whether more follow.
    pub(crate) fn clients_of(
        &self,
        node_id: &str,
        after: Option<&str>,
        max: usize,
    ) -> (Vec<String>, bool) {
        let mut clients: Vec<String> = {
            let view = self.view.lock();
            view.entries()
                .filter(|(client, entry)| {
                    entry.node.id == node_id && after.is_none_or(|after| client.as_str() > after)
                })
                .map(|(client, _)| client.clone())
                .collect()
        };
        clients.sort_unstable();
        let more = clients.len() > max;
        clients.truncate(max);
        (clients, more)
    }

    /// This node's view now.
    pub(crate) fn health(&self) -> ClusterHealth {
        let now = unix_time_ms();
        let dead_after = u64::try_from(self.config.dead_after_ms.as_millis()).unwrap_or(u64::MAX);
        let mut nodes = self.peers.alive(now, dead_after);
        nodes.push(ClusterNode {
            node_id: self.config.node_id.clone(),
            started_ms: self.started_ms,
            last_heartbeat_ms: self.last_beat_ms.load(Ordering::Relaxed),
            address: self.address.lock().clone(),
            clients: self.online_clients(),
            this_node: true,
        });
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let state = self.sender.health.snapshot(0, 0);
        ClusterHealth {
            instance: self.config.instance.clone(),
            node_id: self.config.node_id.clone(),
            rocketmq_up: state.up,
            last_error: state.last_error,
            consumers: self.consumers.load(Ordering::Relaxed),
            buffered: self.sender.metrics.cluster_buffered.load(Ordering::Relaxed),
            nodes,
        }
    }

    /// Stops: waits (bounded) for the route messages still buffered, tells the others this
    /// node leaves, then stops the tasks and the client.
    pub(crate) async fn shutdown(&self) {
        self.sender.flush(STOP_GRACE, "cluster").await;
        if let Err(error) = self.beat(LEAVE).await {
            tracing::warn!(%error, "cluster: the other nodes were not told this node leaves; they see it silent");
        }
        let _ = self.sender.stopping.send(true);
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
        self.stop_client().await;
        tracing::info!(node = %self.config.node_id, "cluster: left");
    }

    async fn stop_client(&self) {
        let _ = self.sender.stopping.send(true);
        self.sender.client.shutdown().await;
    }
}

impl Outflow for Cluster {
    fn outflow<'a>(
        &'a self,
        message: &'a Message,
        retain: bool,
        _clean_session: bool,
    ) -> OutflowFuture<'a> {
        Box::pin(self.send_route(message, retain))
    }

    /// Any topic may have subscribers on another node.
    fn covers(&self, _topic: &str) -> bool {
        true
    }
}

impl Presence for Cluster {
    fn emitted(&self, event: &StatusEvent, will: Option<CarriedWill>) {
        let will = will.map(Arc::new);
        {
            let mut local = self.local.lock();
            match event.event_type {
                EventType::Connect => {
                    local.insert(event.client_id.clone(), (event.clone(), will.clone()));
                }
                EventType::Disconnect => {}
                EventType::Tcpclean => {
                    if local
                        .get(&event.client_id)
                        .is_some_and(|(connect, _)| connect.channel_id == event.channel_id)
                    {
                        local.remove(&event.client_id);
                    }
                }
            }
        }
        let message = presence::event_message(
            &self.config.presence_topic(),
            &self.run(),
            event,
            false,
            will.as_deref(),
        );
        self.send_presence(&event.client_id, message);
    }

    fn held_elsewhere(&self, client_id: &str) -> Option<String> {
        let view = self.view.lock();
        let entry = view.get(client_id)?;
        (!self.is_this(&entry.node) && self.is_alive(&entry.node)).then(|| entry.node.id.clone())
    }
}

impl Share for Cluster {
    fn share<'a>(&'a self, message: &'a Message, retain: bool) -> ShareFuture<'a> {
        Box::pin(self.send_route(message, retain))
    }
}

/// When this node first joined its instance, as `dir`'s [`JOINED_FILE`] remembers (written
/// now, as `now`, on the first start), and whether that is now. A node that restarts with
/// its data keeps its first time, so it catches up on what it missed; a new node starts
/// from now.
///
/// # Errors
/// The file belongs to another node or instance, or cannot be read or written.
fn joined(dir: &Path, config: &ClusterConfig, now: u64) -> Result<(u64, bool), BrokerError> {
    let path: PathBuf = dir.join(JOINED_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let joined: Joined = serde_json::from_slice(&bytes).map_err(|e| {
                BrokerError::Store(format!("{}: not readable: {e}", path.display()))
            })?;
            if joined.instance != config.instance || joined.node_id != config.node_id {
                return Err(BrokerError::Config(format!(
                    "[cluster] {} belongs to node {:?} of instance {:?}, not to node {:?} of \
                     instance {:?}: a node's data directory is its own",
                    path.display(),
                    joined.node_id,
                    joined.instance,
                    config.node_id,
                    config.instance
                )));
            }
            Ok((joined.joined_ms, false))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let joined = Joined {
                instance: config.instance.clone(),
                node_id: config.node_id.clone(),
                joined_ms: now,
            };
            let write = || -> std::io::Result<()> {
                std::fs::create_dir_all(dir)?;
                let text = serde_json::to_vec_pretty(&joined).map_err(std::io::Error::other)?;
                let temporary = dir.join(format!("{JOINED_FILE}.new"));
                std::fs::write(&temporary, text)?;
                std::fs::File::open(&temporary)?.sync_all()?;
                std::fs::rename(&temporary, &path)
            };
            write().map_err(|e| BrokerError::Store(format!("{}: {e}", path.display())))?;
            Ok((now, true))
        }
        Err(error) => Err(BrokerError::Store(format!("{}: {error}", path.display()))),
    }
}

/// Whether one of the name servers accepts a connection, so a wrong address fails start-up
/// at once with what is wrong.
async fn reachable(config: &ClusterConfig) -> Result<(), BrokerError> {
    let limit = config.start_timeout_ms.min(Duration::from_secs(5));
    let mut errors = Vec::new();
    for address in config.name_server.split(';').map(str::trim) {
        let resolved = tokio::net::lookup_host(address)
            .await
            .map(|mut all| all.next());
        let outcome = match resolved {
            Ok(Some(addr)) => {
                match tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr)).await {
                    Ok(Ok(_)) => return Ok(()),
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => format!("no answer within {} ms", limit.as_millis()),
                }
            }
            Ok(None) => "resolves to no address".to_owned(),
            Err(error) => error.to_string(),
        };
        errors.push(format!("{address}: {outcome}"));
    }
    Err(BrokerError::Cluster(format!(
        "no RocketMQ name server reachable ({})",
        errors.join("; ")
    )))
}

/// The built-in client, for this node's groups.
async fn default_client(config: &ClusterConfig) -> Result<Arc<dyn RocketMqClient>, BrokerError> {
    let settings = ClientSettings {
        name_server: config.name_server.clone(),
        producer_group: config.producer_group(),
        consume_from: crate::ConsumeFrom::Last,
        send_timeout: config.send_timeout_ms,
    };
    built_in_client(&settings)
        .await
        .map_err(|e| BrokerError::Cluster(format!("RocketMQ client start failed: {e}")))
}

/// Reads a message as this node's consumers read what other nodes send (a route message,
/// a presence message into a fresh view of the clients, a registry message into a fresh
/// registry, then a heartbeat into a fresh view of the peers), for the fuzz target: whatever
/// the tag, properties and body, nothing panics, and a route, presence or registry message
/// read once reads the same again when sent on.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_consumed(
    tags: Option<String>,
    properties: Vec<(String, String)>,
    body: Vec<u8>,
) {
    let message = RocketMessage {
        topic: "mqgate_fuzz_route".to_owned(),
        tags,
        keys: Vec::new(),
        properties: properties.into_iter().collect(),
        body: bytes::Bytes::from(body),
    };
    if let Ok(route::Incoming::Route {
        message: read,
        retain,
    }) = route::decode(&message, "fuzz")
    {
        let again = route::encode("mqgate_fuzz_route", "other", &read, retain);
        match route::decode(&again, "fuzz") {
            Ok(route::Incoming::Route { message, retain: r }) => {
                assert_eq!(
                    (message.id, r),
                    (read.id, retain),
                    "a route message reads back"
                )
            }
            other => panic!("a route message sent on reads as {other:?}"),
        }
    }
    // A presence message: what it reads as, taken into a fresh view, reads back the same
    // once sent on.
    let mut view = View::default();
    match presence::decode(&message) {
        Ok(Incoming::Event { from, event, will }) => {
            let again = presence::event_message(
                "mqgate_fuzz_presence",
                &from,
                &event,
                false,
                will.as_ref(),
            );
            let key = |will: &Option<CarriedWill>| {
                will.as_ref().map(|w| (w.message.id, w.retain, w.delay_s))
            };
            match presence::decode(&again) {
                Ok(Incoming::Event {
                    from: f,
                    event: e,
                    will: w,
                }) => assert_eq!(
                    (f, e, key(&w)),
                    (from.clone(), event.clone(), key(&will)),
                    "an event reads back"
                ),
                other => panic!("a presence event sent on reads as {other:?}"),
            }
            let will = will.map(Arc::new);
            match event.event_type {
                EventType::Connect => {
                    view.set(&event.client_id, Entry::new(from, &event, will, 1));
                }
                EventType::Disconnect => {}
                EventType::Tcpclean => view.closed(&event.client_id, event.channel_id, 1),
            }
        }
        Ok(Incoming::Present { from, event, will }) => {
            let again =
                presence::event_message("mqgate_fuzz_presence", &from, &event, true, will.as_ref());
            assert!(
                matches!(presence::decode(&again), Ok(Incoming::Present { event: e, .. }) if e == event),
                "a present reads back"
            );
            view.present(
                &event.client_id,
                Entry::new(from, &event, will.map(Arc::new), 1),
            );
        }
        Ok(Incoming::Close {
            from,
            client_id,
            channel,
        }) => {
            let again = presence::close_message("mqgate_fuzz_presence", &from, &client_id, channel);
            assert!(
                matches!(presence::decode(&again), Ok(Incoming::Close { client_id: c, channel: ch, .. }) if c == client_id && ch == channel),
                "a close request reads back"
            );
        }
        Ok(Incoming::Hello { .. } | Incoming::Join) | Err(_) => {}
    }
    view.prune(u64::MAX);
    // A registry message: a change reads back the same once sent on, and applies (or not)
    // to a fresh registry without panicking; a snapshot's retained message reads back.
    match records::decode(&message, "fuzz") {
        Ok(records::Incoming::Change { change, snapshot }) => {
            let again = records::change_message(
                "mqgate_fuzz_registry",
                "other",
                &change,
                snapshot.as_ref(),
            )
            .expect("a change read encodes");
            match records::decode(&again, "fuzz") {
                Ok(records::Incoming::Change {
                    change: c,
                    snapshot: s,
                }) => assert_eq!((c, s), (change.clone(), snapshot), "a change reads back"),
                other => panic!("a registry change sent on reads as {other:?}"),
            }
            let store: Arc<dyn mqgate_store::Store> = Arc::new(mqgate_store::MemoryStore::new());
            if let Ok(inner) = mqgate_store::DurableRegistry::load(store.clone()) {
                if let Ok(registry) = crate::auth::replicated::Replicated::new(inner, store) {
                    let _ = registry.apply_remote(&change, 1);
                    let _ = registry.snapshot();
                }
            }
        }
        Ok(records::Incoming::Retained {
            message: read,
            snapshot,
        }) => {
            let again =
                records::retained_message("mqgate_fuzz_registry", "other", &read, &snapshot);
            assert!(
                matches!(records::decode(&again, "fuzz"), Ok(records::Incoming::Retained { message: m, snapshot: s }) if m.id == read.id && s == snapshot),
                "a retained message reads back"
            );
        }
        Ok(records::Incoming::Hello { from, sent_ms }) => {
            let again = records::hello_message("mqgate_fuzz_registry", &from, sent_ms);
            assert!(
                matches!(records::decode(&again, "fuzz"), Ok(records::Incoming::Hello { sent_ms: t, .. }) if t == sent_ms),
                "a hello reads back"
            );
        }
        Ok(records::Incoming::Own) | Err(_) => {}
    }
    if let Ok(beat) = serde_json::from_slice::<Heartbeat>(&message.body) {
        let peers = Peers::default();
        let leave = message.tags.as_deref() == Some(LEAVE);
        let _ = peers.heard(beat, leave, 1_000, 10_000, ("fuzz", 1));
        let _ = peers.alive(2_000, 10_000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_join_is_remembered_and_the_directory_is_the_nodes_own() {
        let dir = tempfile::tempdir().unwrap();
        let config = ClusterConfig::new("i1", "127.0.0.1:9876", "n1");
        assert_eq!(joined(dir.path(), &config, 100).unwrap(), (100, true));
        let again = joined(dir.path(), &config, 200).unwrap();
        assert_eq!(again, (100, false), "a restart keeps it");
        let other = ClusterConfig::new("i1", "127.0.0.1:9876", "n2");
        let error = joined(dir.path(), &other, 300).unwrap_err().to_string();
        assert!(error.contains("belongs to node \"n1\""), "{error}");
    }
}
