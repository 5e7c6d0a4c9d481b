//! The endpoint's queues: one per parent topic (device messages) and one per group (status
//! notices), shared by every consumer of the instance. Each message goes to one consumer; a
//! delivery not acknowledged when its channel closes comes back to the head of its queue,
//! marked redelivered.
//!
//! A parent topic's queue is a persistent session of the broker's own, client id
//! `$amqp/{parent}` ([`AMQP_LINK_PREFIX`]), subscribed to `{parent}/#` at QoS 1: the router
//! stores and queues messages for it as for any persistent session, so what waits in it is
//! in the store (read back a page at a time), survives a restart, and a device's QoS 1 or 2
//! PUBLISH is acknowledged once the queue holds it. One task per queue drives the session
//! ([`SessionTask`]) as a connection task drives a client's: what the session sends
//! becomes entries for the consumers, and a consumer's `basic.ack` is the session's PUBACK
//! (only then does the message leave the store). Its bounds are `[amqp]`'s; past them the
//! oldest is dropped, counted and logged.
//!
//! A group's status queue is a session of the same kind, `$amqp/STATUS/{group}`, subscribed
//! to nothing: a feed delivers each status event of the group to it by name (as a P2P
//! message is delivered), stored before the next.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashMap;
use mqgate_amqp::{BasicProperties, FieldTable, FieldValue, Message as AmqpMessage};
use mqgate_codec::{ByteStr, Connect, Packet, PacketId, QoS};
use mqgate_rocketmq::split_topic;
use mqgate_session::{DeliveryOutcome, Event, Message, Session, SessionConfig};
use mqgate_status::ChannelId;
use parking_lot::Mutex;
use smallvec::SmallVec;
use tokio::sync::{broadcast, oneshot, Notify};

use crate::clock::{monotonic_ms, unix_time_ms};
use crate::config::AmqpSettings;
use crate::core::inbox::{self, Signal};
use crate::core::persist::{self, Saved};
use crate::core::registry::{Attach, Delivery, Drops, OnlineLink, AMQP_LINK_PREFIX};
use crate::core::router::RouteScratch;
use crate::core::{deliver, next_page, Core, PageRead};
use crate::TakeoverPolicy;

/// The queue of group status notices.
pub(crate) const STATUS_QUEUE: &str = "STATUS";

/// Most inbox deliveries a queue's task takes in one go before it hands them on.
const INBOX_BATCH: usize = 256;

/// Most messages a queue has handed to consumers before the commit that records them in
/// flight is done; past it, what the session sends waits for commits. After a restart the
/// first this many messages handed out carry the redelivered flag: the ones handed out just
/// before a crash are among them.
const UNSAVED_HANDOUTS: usize = 4096;

/// One entry waiting in a queue.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// What the consumer gets.
    pub(crate) message: Arc<AmqpMessage>,
    /// It was delivered before and not acknowledged.
    pub(crate) redelivered: bool,
    /// The packet id the message is in flight under in the queue's session, which the
    /// consumer's acknowledgement settles.
    pub(crate) token: PacketId,
}

/// The side of a queue its session's task reads.
#[derive(Debug, Default)]
struct SessionSide {
    /// Packet ids consumers settled (acknowledged, or rejected without requeue), for the
    /// task to acknowledge in the session.
    settled: Mutex<Vec<PacketId>>,
    /// Wakes the task.
    task: Notify,
    /// Messages waiting in the session (in memory and in the store), as the task last saw.
    stored: AtomicUsize,
    /// A consumer attached once: from then on the session is online and hands messages
    /// out (up to its in-flight window). Until then it is offline and everything waits in
    /// its stored queue, so a restart finds nothing handed out (nothing redelivered).
    consumed: AtomicBool,
    /// The queue is being removed: the task ends, deleting its session, then answers here
    /// with how many messages went with it.
    removed: Mutex<Option<oneshot::Sender<usize>>>,
    /// `[amqp] queues` declared it (at this start or an earlier one): saved with its
    /// session, so a start whose configuration no longer names it removes it.
    configured: AtomicBool,
    /// The queue was removed: its status feed (if any) ends.
    deleted: AtomicBool,
}

/// A queue shared by the consumers of the instance.
#[derive(Debug)]
pub(crate) struct Queue {
    /// The parent topic, or `STATUS/{group}`.
    pub(crate) name: String,
    ready: Mutex<VecDeque<Entry>>,
    /// Connections with a consumer on this queue, woken when an entry arrives.
    waiters: Mutex<Vec<Arc<Notify>>>,
    /// Entries dropped: the queue was full, they were too old, or (a status notice) the
    /// store did not take them.
    pub(crate) dropped: AtomicU64,
    /// What its session's task reads.
    session: SessionSide,
}

impl Queue {
    fn new(name: String) -> Self {
        Queue {
            name,
            ready: Mutex::new(VecDeque::new()),
            waiters: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            session: SessionSide::default(),
        }
    }

    /// Appends entries the session sent (already in flight there, so already within its
    /// bounds).
    fn extend(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        self.ready.lock().extend(entries);
        self.wake();
    }

    /// Puts an unacknowledged delivery back at the head, marked redelivered.
    pub(crate) fn requeue(&self, mut entry: Entry) {
        entry.redelivered = true;
        self.ready.lock().push_front(entry);
        self.wake();
    }

    /// Puts back an entry a consumer could not take, as it was.
    pub(crate) fn unpop(&self, entry: Entry) {
        self.ready.lock().push_front(entry);
    }

    /// The next entry for a consumer.
    pub(crate) fn pop(&self) -> Option<Entry> {
        self.ready.lock().pop_front()
    }

    /// The consumer is done with `entry` (acknowledged it, or rejected it without requeue):
    /// a parent topic's queue acknowledges it in its session, which removes it from the
    /// store.
    pub(crate) fn settle(&self, entry: &Entry) {
        self.session.settled.lock().push(entry.token);
        self.session.task.notify_one();
    }

    /// A consumer attached: the queue starts handing out what it holds.
    pub(crate) fn consumer_attached(&self) {
        if !self.session.consumed.swap(true, Ordering::Relaxed) {
            self.session.task.notify_one();
        }
    }

    /// Entries waiting: handed to no consumer yet, here and in the session.
    pub(crate) fn depth(&self) -> usize {
        let stored = self.session.stored.load(Ordering::Relaxed);
        self.ready.lock().len() + stored
    }

    /// Wakes `waiter` whenever an entry arrives, until [`forget`](Self::forget).
    pub(crate) fn watch(&self, waiter: &Arc<Notify>) {
        let mut waiters = self.waiters.lock();
        if !waiters.iter().any(|w| Arc::ptr_eq(w, waiter)) {
            waiters.push(waiter.clone());
        }
    }

    /// Stops waking `waiter`.
    pub(crate) fn forget(&self, waiter: &Arc<Notify>) {
        self.waiters.lock().retain(|w| !Arc::ptr_eq(w, waiter));
    }

    fn wake(&self) {
        for waiter in self.waiters.lock().iter() {
            waiter.notify_one();
        }
    }
}

/// Every queue of the endpoint.
#[derive(Debug)]
pub(crate) struct Queues {
    core: Arc<Core>,
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    inbox_capacity: usize,
    /// The queues' sessions: `[amqp]`'s bounds and window.
    session_config: SessionConfig,
    /// The queues' session tasks, for shutdown to wait for their last save.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Queues {
    /// The endpoint's queues, with their settings; none is made yet (see
    /// [`open`](Self::open)).
    pub(crate) fn new(
        core: Arc<Core>,
        settings: &AmqpSettings,
        base: SessionConfig,
        inbox_capacity: usize,
    ) -> Self {
        Queues {
            core,
            queues: Mutex::new(HashMap::new()),
            inbox_capacity,
            session_config: session_config(settings, base),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Makes the queues that exist from start-up: those `[amqp] queues` names (marked as
    /// declared by configuration, in their stored sessions too), and those the store brought
    /// back (made by a consume, or declared, before the restart). A queue the store brought
    /// back that an earlier configuration declared and this one no longer names is removed
    /// as [`remove`](Self::remove) removes it. Call once the store is restored and before
    /// devices can connect, so they collect from the start.
    pub(crate) async fn open(&self, configured: &[String]) {
        let (restored, _) = self
            .core
            .registry
            .clients(|id| id.starts_with(AMQP_LINK_PREFIX), usize::MAX);
        let restored: Vec<String> = restored
            .iter()
            .filter_map(|view| view.client_id.strip_prefix(AMQP_LINK_PREFIX))
            .filter(|name| !configured.iter().any(|c| c == name))
            .map(str::to_owned)
            .collect();
        for name in configured {
            if self.make(name, true).is_none() {
                tracing::warn!(queue = %name, "AMQP queue not made: not a valid parent topic or group");
            }
        }
        for name in &restored {
            match self.make(name, false) {
                Some(queue) if queue.session.configured.load(Ordering::Relaxed) => {
                    // Declared by an earlier configuration, not by this one.
                    let dropped = self.remove_counted(name).await;
                    tracing::info!(queue = %name, dropped = dropped.unwrap_or(0), "AMQP queue removed: no longer in [amqp] queues");
                }
                Some(_) => {}
                None => {
                    tracing::warn!(queue = %name, "AMQP queue not made: not a valid parent topic or group");
                }
            }
        }
    }

    /// The queue `name` (a parent topic, or `STATUS/{group}`), made on first use; with
    /// `configured`, marked as declared by configuration.
    fn make(&self, name: &str, configured: bool) -> Option<Arc<Queue>> {
        match name
            .strip_prefix(STATUS_QUEUE)
            .and_then(|g| g.strip_prefix('/'))
        {
            Some(group) => self.status_declared(group, configured),
            None => self.parent_declared(name, configured),
        }
    }

    /// Removes the queue `name` (a parent topic, or `STATUS/{group}`): its session leaves
    /// the registry, the subscription trie and the store, with every message it held. A
    /// consumer still attached keeps what it was handed, and gets nothing more; a later
    /// consume on the name makes a new, empty queue. `false` when no such queue exists (or
    /// its task had already ended).
    pub(crate) async fn remove(&self, name: &str) -> bool {
        self.remove_counted(name).await.is_some()
    }

    /// [`remove`](Self::remove), with how many messages went with the queue (waiting in it
    /// or handed out and not acknowledged); `None` when no such queue exists.
    async fn remove_counted(&self, name: &str) -> Option<usize> {
        let queue = self.queues.lock().remove(name)?;
        let (done, removed) = oneshot::channel();
        *queue.session.removed.lock() = Some(done);
        queue.session.task.notify_one();
        removed.await.ok()
    }

    /// Resolves once every queue's task has ended (the broker shuts down: each saves its
    /// session's last state, the consumers' last acknowledgements included, and hands it
    /// back to the registry).
    pub(crate) async fn stopped(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Every queue with its depth and drop count, by name: for `/metrics`.
    pub(crate) fn depths(&self) -> Vec<(String, usize, u64)> {
        let mut all: Vec<_> = self
            .queues
            .lock()
            .values()
            .map(|q| (q.name.clone(), q.depth(), q.dropped.load(Ordering::Relaxed)))
            .collect();
        all.sort();
        all
    }

    /// The queue of device messages under `parent`, made (its session resumed or made, and
    /// its task started) on first use. `None` when `parent` is not a valid one-level topic.
    pub(crate) fn parent(&self, parent: &str) -> Option<Arc<Queue>> {
        self.parent_declared(parent, false)
    }

    /// [`parent`](Self::parent); with `configured`, the queue is marked as declared by
    /// configuration.
    fn parent_declared(&self, parent: &str, configured: bool) -> Option<Arc<Queue>> {
        if parent.is_empty() || parent.contains(['/', '+', '#']) || parent.starts_with('$') {
            return None;
        }
        let mut queues = self.queues.lock();
        if let Some(queue) = queues.get(parent) {
            return Some(queue.clone());
        }
        let (queue, _) = self.start(&mut queues, parent.to_owned(), Kind::Devices, configured)?;
        Some(queue)
    }

    /// The queue of status notices of `group`, made (its session resumed or made, its task
    /// and its feed started) on first use.
    pub(crate) fn status(&self, group: &str) -> Option<Arc<Queue>> {
        self.status_declared(group, false)
    }

    /// [`status`](Self::status); with `configured`, the queue is marked as declared by
    /// configuration.
    fn status_declared(&self, group: &str, configured: bool) -> Option<Arc<Queue>> {
        if !group.starts_with("GID_") || group.contains(['/', '+', '#']) {
            return None;
        }
        let name = format!("{STATUS_QUEUE}/{group}");
        let mut queues = self.queues.lock();
        if let Some(queue) = queues.get(&name) {
            return Some(queue.clone());
        }
        let (queue, target) = self.start(&mut queues, name, Kind::Status, configured)?;
        tokio::spawn(pump_status(
            self.core.clone(),
            self.core.status.subscribe(),
            group.to_owned(),
            target,
            queue.clone(),
        ));
        Some(queue)
    }

    /// Makes the queue `name` (with `configured`, declared by configuration), starts its
    /// session's task and keeps it in `queues`; the queue and its session's client id.
    fn start(
        &self,
        queues: &mut HashMap<String, Arc<Queue>>,
        name: String,
        kind: Kind,
        configured: bool,
    ) -> Option<(Arc<Queue>, Arc<str>)> {
        let queue = Arc::new(Queue::new(name.clone()));
        queue
            .session
            .configured
            .store(configured, Ordering::Relaxed);
        let config = self.session_config;
        let task =
            SessionTask::start(&self.core, kind, config, self.inbox_capacity, queue.clone())?;
        let client = task.client.clone();
        self.tasks.lock().push(tokio::spawn(task.run()));
        queues.insert(name, queue.clone());
        Some((queue, client))
    }
}

/// The session configuration of a parent topic's queue: `[amqp]`'s bounds and window, the
/// rest (message age) as `[session]` has it, paced by the window only.
fn session_config(settings: &AmqpSettings, base: SessionConfig) -> SessionConfig {
    SessionConfig {
        inflight_window: settings.inflight_window.max(1),
        max_queued_messages: settings.max_queued_messages,
        max_queued_bytes: settings.max_queued_bytes,
        pacing: mqgate_session::Pacing::Window,
        full_policy: mqgate_session::FullPolicy::DropOldest,
        ..base
    }
}

/// Drives the persistent session of one queue, as a connection task drives
/// a client's: deliveries to its registry link go into the session; what the session
/// sends (in flight under a packet id) is handed to the consumers while its save commits;
/// consumers' acknowledgements are the session's PUBACKs.
///
/// At least once, as the queue's QoS 1 promises: a message stays in the store until the
/// commit after its acknowledgement. A crash before the commit that moved a message in
/// flight, or before the one after its acknowledgement, delivers it again after the
/// restart (in the first case without the redelivered flag: the store still had it queued).
struct SessionTask {
    core: Arc<Core>,
    client: Arc<str>,
    channel: ChannelId,
    session: Box<Session>,
    inbox: inbox::Receiver<Delivery>,
    saved: Saved,
    reading: Option<PageRead>,
    /// Held while the stored queue has more than was read (see [`crate::core::paging`]).
    draining: Option<crate::core::paging::Draining>,
    queue: Arc<Queue>,
    /// The CONNECT the session is brought online with once a consumer attached.
    connect: Connect,
    online: bool,
    kind: Kind,
    /// What the session sent that waits, in order: `(stored, saved, entries)`, for the
    /// commit `stored` (the messages' own enqueues: a delivery from the inbox may not be
    /// durable yet) and then for `saved` (its save) or room in [`UNSAVED_HANDOUTS`].
    unsaved: VecDeque<(persist::Ticket, persist::Ticket, Vec<Entry>)>,
    /// The commit of each message without a publisher to send it again (a status notice)
    /// taken from the inbox before its enqueue committed (by message id): a consumer gets
    /// it only once that is done.
    not_stored: HashMap<u128, persist::Ticket>,
    /// Handed out before the commit of their save: (that save, how many), and the sum.
    uncommitted: VecDeque<(persist::Ticket, usize)>,
    uncommitted_total: usize,
    /// Messages still to hand out with the redelivered flag after a restart.
    flag_redelivered: usize,
}

/// What a queue's session holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Device messages under a parent topic.
    Devices,
    /// A group's status notices.
    Status,
}

impl SessionTask {
    /// Puts the queue's link in the registry and takes its session (the stored one, or a
    /// new one subscribed to `{parent}/#`). `None` when the id is held (it cannot be: the
    /// queues map is locked) or the subscription is refused.
    fn start(
        core: &Arc<Core>,
        kind: Kind,
        config: SessionConfig,
        inbox_capacity: usize,
        queue: Arc<Queue>,
    ) -> Option<SessionTask> {
        // A client id MQTT clients cannot take.
        let id = format!("{AMQP_LINK_PREFIX}{}", queue.name);
        let client_id = ByteStr::try_from(id.as_str()).ok()?;
        let client: Arc<str> = Arc::from(id);
        // A status queue subscribes to nothing: its notices are delivered to it by name.
        let filter = match kind {
            Kind::Devices => format!("{}/#", queue.name),
            Kind::Status => String::new(),
        };
        let (sender, inbox) = inbox::channel(inbox_capacity.max(1));
        let channel = core.status.channels.next();
        let link = OnlineLink {
            channel,
            inbox: sender,
            kickable: false,
            persistent: true,
            card: None,
        };
        let stored = match core
            .registry
            .attach(&client, link, TakeoverPolicy::RefuseNew)
        {
            Attach::Fresh => None,
            Attach::Resumed(session) => Some(session),
            Attach::Wait(_) | Attach::Refused => return None,
        };
        let mut session =
            stored.unwrap_or_else(|| Box::new(Session::new(client_id.clone(), config)));
        session.set_config(config);
        // Declared by configuration now, or by an earlier one (the stored session says so).
        let configured = &queue.session.configured;
        if configured.load(Ordering::Relaxed) {
            session.set_configured(true);
        }
        configured.store(session.is_configured(), Ordering::Relaxed);
        let connect = Connect {
            clean_session: false,
            client_id,
            ..Connect::default()
        };
        let subscribed = filter.is_empty()
            || session
                .subscriptions()
                .iter()
                .any(|s| s.filter.as_str() == filter);
        let now = monotonic_ms();
        let ready = session.connect(&connect, now).is_ok()
            && (subscribed
                || core
                    .router
                    .subscribe(&client, &filter, QoS::AtLeastOnce)
                    .is_some());
        if !ready {
            tracing::error!(%client, "AMQP queue session not started");
            if !filter.is_empty() {
                core.router.unsubscribe(&client, &filter);
            }
            core.registry.remove(&client);
            return None;
        }
        if !subscribed {
            let filter = ByteStr::try_from(filter).ok()?;
            let first = PacketId::MIN;
            session.subscribed(first, [(filter, Some(QoS::AtLeastOnce))]);
        }
        if let Some(window) = core.queue_window {
            // Its queue stays in the store; the task reads it back a page at a time.
            session.keep_queue_in_store(window);
        }
        // Restored with messages, by a session that handed out messages before (it used
        // packet ids): the first ones it hands out now may have been handed out then. (A
        // session whose ids wrapped to exactly 1 again is taken for one that never did.)
        let record = session.record_without_queue();
        let handed_out = !record.inflight.is_empty() || record.next_packet_id != 1;
        let flag_redelivered = if handed_out && session.queued_len() > 0 {
            UNSAVED_HANDOUTS
        } else {
            0
        };
        // Persistent (and subscribed) now; offline until a consumer attaches. No will.
        let _ = session.connection_lost(now);
        tracing::info!(queue = %queue.name, queued = session.queued_len(), "AMQP queue open");
        Some(SessionTask {
            core: core.clone(),
            client,
            channel,
            session,
            inbox,
            // A consumer's `redelivered` flag needs every hand-out in the record.
            saved: Saved::recording_every_message(),
            reading: None,
            draining: None,
            queue,
            connect,
            online: false,
            kind,
            unsaved: VecDeque::new(),
            not_stored: HashMap::new(),
            uncommitted: VecDeque::new(),
            uncommitted_total: 0,
            flag_redelivered,
        })
    }

    async fn run(mut self) {
        let mut shutdown = self.core.shutdown.clone();
        while !self.core.is_shutting_down() {
            let removed = self.queue.session.removed.lock().take();
            if let Some(done) = removed {
                let dropped = self.delete().await;
                let _ = done.send(dropped);
                return;
            }
            self.go_online();
            self.process();
            // What the session sent goes to the consumers before the commit that saves it
            // (out of the stored queue, in flight) is done, up to [`UNSAVED_HANDOUTS`]: the
            // queue is QoS 1, so a crash before that commit only delivers it again (see
            // `Self`). Waiting for every commit held a queue to one commit at a time.
            let ticket = self.saved.submit(&self.session, &self.core.persist);
            self.hand_on(ticket);
            self.session.release_idle_memory();
            self.inbox
                .set_timer(self.session.poll_timeout(), &self.core.registry.timers);
            self.start_read();
            let queue = self.queue.clone();
            let settled = queue.session.task.notified();
            let waiting = [
                self.uncommitted.front().map(|(ticket, _)| *ticket),
                self.unsaved.front().map(|(stored, saved, _)| {
                    if *stored > self.core.persist.done() {
                        *stored
                    } else {
                        *saved
                    }
                }),
            ]
            .into_iter()
            .flatten()
            .min();
            let core = self.core.clone();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                saved = persist::committed(&core.persist, waiting), if waiting.is_some() => {
                    if let Err(error) = saved {
                        tracing::warn!(client = %self.client, %error, "AMQP queue state not saved");
                    }
                    self.release_saved(waiting);
                }
                signal = self.inbox.signal(monotonic_ms) => match signal {
                    Signal::Kick(_) => break,
                    Signal::Timer => self.session.handle_timeout(monotonic_ms()),
                },
                () = settled => {}
                page = next_page(&mut self.reading), if self.reading.is_some() => {
                    self.reading = None;
                    match page {
                        Some(page) => {
                            self.core.paging.paged(&page);
                            self.session.refill(page, monotonic_ms());
                        }
                        None => self.session.queue_read_failed(),
                    }
                }
                delivery = self.inbox.recv() => match delivery {
                    Some(delivery) => {
                        self.take(delivery);
                        self.take_more();
                    }
                    None => break,
                },
            }
        }
        self.finish().await;
    }

    /// Brings the session online once a consumer attached: what was in flight is sent again
    /// (redelivered), then what is queued, as the window allows.
    fn go_online(&mut self) {
        let consumed = self.queue.session.consumed.load(Ordering::Relaxed);
        if consumed && !self.online {
            self.online = self.session.connect(&self.connect, monotonic_ms()).is_ok();
        }
    }

    /// Acknowledges in the session what consumers settled, and counts what it dropped.
    fn process(&mut self) {
        let settled = std::mem::take(&mut *self.queue.session.settled.lock());
        let now = monotonic_ms();
        for token in settled {
            // An id settled twice (a consumer's duplicate ack) is not in flight any more.
            let _ = self.session.handle_packet(Packet::PubAck(token), now);
        }
        self.drain_events();
    }

    fn drain_events(&mut self) {
        let mut drops = Drops::default();
        while let Some(event) = self.session.poll_event() {
            if let Event::Dropped { reason, .. } | Event::DroppedUnread { reason } = event {
                drops.add(reason);
            }
        }
        if drops.total > 0 {
            self.queue.dropped.fetch_add(drops.total, Ordering::Relaxed);
            deliver::count_drops(&self.core.metrics, &self.client, drops);
        }
    }

    /// Takes what the session sent for the consumers (saved by `ticket`, not necessarily
    /// committed yet). Messages the broker itself published (cloud producers, the HTTP and
    /// embedding APIs) are not for the cloud consumers: the router keeps them out of the
    /// queue, and one that still reaches it (a retained one sent at the queue's subscribe, or
    /// one a store kept from an older version) has no origin and is acknowledged at once.
    fn hand_on(&mut self, mut ticket: Option<persist::Ticket>) {
        loop {
            let mut entries = Vec::new();
            let mut skipped = Vec::new();
            // The latest commit of these messages' own enqueues.
            let mut stored = 0;
            while let Some(packet) = self.session.poll_transmit() {
                let Packet::Publish(publish) = packet else {
                    continue;
                };
                let Some(token) = publish.packet_id else {
                    continue;
                };
                let (message, message_id) = match (self.session.inflight_message(token), self.kind)
                {
                    (Some(message), Kind::Devices) if !message.origin.is_empty() => {
                        (device_message(message), message.id.0)
                    }
                    (Some(message), Kind::Status) => {
                        (status_message(message.payload.clone()), message.id.0)
                    }
                    _ => {
                        skipped.push(token);
                        continue;
                    }
                };
                if let Some(ticket) = self.not_stored.remove(&message_id) {
                    stored = stored.max(ticket);
                }
                let flagged = !publish.dup && self.flag_redelivered > 0;
                self.flag_redelivered -= usize::from(flagged);
                entries.push(Entry {
                    message: Arc::new(message),
                    redelivered: publish.dup || flagged,
                    token,
                });
            }
            self.hand_on_after(stored, ticket, entries);
            if skipped.is_empty() {
                break;
            }
            let now = monotonic_ms();
            for token in skipped {
                let _ = self.session.handle_packet(Packet::PubAck(token), now);
            }
            self.drain_events();
            // What those acknowledgements let the session send is saved by a save of its own.
            ticket = self.saved.submit(&self.session, &self.core.persist);
        }
        let stored = &self.queue.session.stored;
        stored.store(self.session.queued_len(), Ordering::Relaxed);
    }

    /// Hands `entries` (saved by `ticket`) to the consumers now if the messages' enqueues
    /// committed and either their save committed or the uncommitted hand-outs stay within
    /// [`UNSAVED_HANDOUTS`]; otherwise they wait, in order, behind what already waits.
    fn hand_on_after(
        &mut self,
        stored: persist::Ticket,
        ticket: Option<persist::Ticket>,
        entries: Vec<Entry>,
    ) {
        if entries.is_empty() {
            return;
        }
        let saved = ticket.unwrap_or(0);
        // In order: a later batch waits at least for what an earlier one waits for.
        let stored = stored.max(self.unsaved.back().map_or(0, |(s, _, _)| *s));
        match self.unsaved.back_mut() {
            Some((last_stored, last, waiting)) if *last_stored == stored && *last == saved => {
                waiting.extend(entries);
            }
            _ => self.unsaved.push_back((stored, saved, entries)),
        }
        self.release_saved(None);
    }

    /// Hands out `entries` before `ticket`, their save, committed.
    fn hand_out_uncommitted(&mut self, ticket: persist::Ticket, entries: Vec<Entry>) {
        self.uncommitted_total += entries.len();
        match self.uncommitted.back_mut() {
            Some((t, n)) if *t == ticket => *n += entries.len(),
            _ => self.uncommitted.push_back((ticket, entries.len())),
        }
        self.queue.extend(entries);
    }

    /// Commits up to `through` are done (or `through` failed: the state is in memory all
    /// the same, as the store's other writers assume): what they cover leaves the count of
    /// uncommitted hand-outs, and what waited goes out as far as its enqueues committed
    /// and the count allows.
    fn release_saved(&mut self, through: Option<persist::Ticket>) {
        let done = self.core.persist.done().max(through.unwrap_or(0));
        // Messages dropped before they were handed out leave no entry behind.
        if self.not_stored.len() > UNSAVED_HANDOUTS {
            self.not_stored.retain(|_, ticket| *ticket > done);
        }
        while let Some(&(ticket, n)) = self.uncommitted.front() {
            if ticket > done {
                break;
            }
            self.uncommitted.pop_front();
            self.uncommitted_total -= n;
        }
        while let Some((stored, saved, entries)) = self.unsaved.front() {
            let committed = *saved <= done;
            if *stored > done
                || (!committed && self.uncommitted_total + entries.len() > UNSAVED_HANDOUTS)
            {
                break;
            }
            let Some((_, saved, entries)) = self.unsaved.pop_front() else {
                break;
            };
            if committed {
                self.queue.extend(entries);
            } else {
                self.hand_out_uncommitted(saved, entries);
            }
        }
    }

    fn take(&mut self, delivery: Delivery) {
        // A device's message that is not stored yet needs no wait: its publisher has no
        // acknowledgement until it is, and sends it again if the broker dies first (one
        // without a publisher never reaches the consumers of a device queue). A status
        // notice has no publisher to send it again: a consumer gets it once stored.
        if self.kind == Kind::Status && delivery.stored > self.core.persist.done() {
            self.not_stored
                .insert(delivery.message.id.0, delivery.stored);
        }
        let outcome = delivery.hand_to(&mut self.session, monotonic_ms());
        if matches!(
            outcome,
            DeliveryOutcome::Dropped(_) | DeliveryOutcome::Refused
        ) {
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            deliver::count_outcome(&self.core.metrics, &self.client, outcome);
        }
    }

    /// Takes up to [`INBOX_BATCH`] more deliveries without waiting.
    fn take_more(&mut self) {
        let mut taken = 0;
        while taken < INBOX_BATCH {
            let mut batch = SmallVec::<[Delivery; 32]>::new();
            let n = self.inbox.try_recv_many(&mut batch, |_| true);
            if n == 0 {
                return;
            }
            taken += n;
            for delivery in batch {
                self.take(delivery);
            }
        }
    }

    /// Starts reading the page of the stored queue the session asks for, if it asks and no
    /// read is under way.
    fn start_read(&mut self) {
        if self.reading.is_some() {
            return;
        }
        let paging = &self.core.paging;
        if let Some(read) = paging.poll_read(&mut self.session, &mut self.draining) {
            self.reading = Some(self.core.read_queue_page(self.client.clone(), read));
        }
    }

    /// The queue is removed: its session leaves the trie, the registry and the store (its
    /// record and every message it held); what its inbox held is dropped. How many messages
    /// went (waiting, or handed out and not acknowledged), counted as dropped.
    async fn delete(mut self) -> usize {
        self.take_more();
        let dropped = self.session.queued_len() + self.session.inflight_len();
        let subscriptions = self.session.subscriptions().to_vec();
        self.core
            .router
            .unsubscribe_all(&self.client, &subscriptions);
        self.inbox.close();
        self.core.registry.remove(&self.client);
        let mut ops = vec![mqgate_store::Op::RemoveSession(
            self.session.client_id().clone(),
        )];
        let ticket = self.core.persist.submit(&mut ops);
        if let Err(error) = persist::committed(&self.core.persist, ticket).await {
            tracing::warn!(client = %self.client, %error, "removed AMQP queue not deleted from the store");
        }
        self.queue.session.deleted.store(true, Ordering::Relaxed);
        let drops = Drops {
            total: u64::try_from(dropped).unwrap_or(u64::MAX),
            ..Drops::default()
        };
        deliver::count_drops(&self.core.metrics, &self.client, drops);
        self.queue.dropped.fetch_add(drops.total, Ordering::Relaxed);
        tracing::info!(queue = %self.queue.name, dropped, "AMQP queue removed");
        dropped
    }

    /// The broker stops: the session's state is saved, and it goes back to the registry,
    /// offline, with whatever its inbox still held. What consumers hold unacknowledged is
    /// in flight in the stored session, so it is delivered again (redelivered) after a
    /// restart.
    async fn finish(mut self) {
        let limit = self.core.waits.backpressure;
        // No will: the queue has none.
        let _ = self.session.connection_lost(monotonic_ms());
        self.reading = None;
        let persist = &self.core.persist;
        let _ = tokio::time::timeout(limit, self.saved.sync(&self.session, persist)).await;
        let mut inbox = self.inbox;
        let mut dropped = Drops::default();
        self.core
            .registry
            .detach(&self.client, self.channel, self.session, |session| {
                inbox.close();
                let waiting = std::iter::from_fn(|| inbox.try_recv().ok());
                deliver::replay(session, waiting);
                dropped = crate::core::registry::drain_drops(session);
            });
        deliver::count_drops(&self.core.metrics, &self.client, dropped);
    }
}

/// Delivers the status events of `group` to its queue's session, in order, each stored
/// before the next (as a P2P message to the session, so nothing else receives it). A
/// notice the store refused, or that waited too long for the session, is counted and
/// logged as dropped.
async fn pump_status(
    core: Arc<Core>,
    mut events: broadcast::Receiver<mqgate_status::StatusEvent>,
    group: String,
    target: Arc<str>,
    queue: Arc<Queue>,
) {
    let mut shutdown = core.shutdown.clone();
    let topic = ByteStr::from_static(STATUS_QUEUE);
    let mut scratch = RouteScratch::default();
    loop {
        let event = tokio::select! {
            _ = shutdown.changed() => return,
            event = events.recv() => event,
        };
        if queue.session.deleted.load(Ordering::Relaxed) {
            return;
        }
        match event {
            Ok(event) if event.group_id() == Some(group.as_str()) => {
                // Not `Core::message`: a notice is no message the trace should show.
                let origin = ByteStr::try_from(event.client_id.as_str()).unwrap_or_default();
                let payload = Bytes::from(event.to_json());
                let message = Message::new(
                    core.router.next_id(),
                    topic.clone(),
                    payload,
                    QoS::AtLeastOnce,
                    unix_time_ms(),
                )
                .with_origin(origin);
                core.router
                    .deliver_p2p(&target, &Arc::new(message), monotonic_ms(), &mut scratch);
                if core.settle(&mut scratch).await.is_err() {
                    let n = queue.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(queue = %queue.name, dropped = n, "status notice not kept: the store or the queue did not take it in time");
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                queue.dropped.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(queue = %queue.name, lost = n, "status notices lost: the queue's feed lagged");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The AMQP form of a status notice: exchange and routing key `STATUS`, the event's JSON
/// as the body.
fn status_message(body: Bytes) -> AmqpMessage {
    AmqpMessage {
        exchange: STATUS_QUEUE.to_owned(),
        routing_key: STATUS_QUEUE.to_owned(),
        properties: BasicProperties::default(),
        body,
    }
}

/// The AMQP form of a device message: message id (the broker's 32 hex digits), headers
/// `mqttParentTopic`, `mqttSecondTopic` (the rest from its `/`, as the RocketMQ mapping
/// writes it) and `clientId`; the body is the payload itself, not a copy.
pub(crate) fn device_message(message: &Message) -> AmqpMessage {
    let topic = message.topic.as_str();
    let (parent, second) = split_topic(topic);
    let headers = FieldTable::new()
        .with("mqttParentTopic", FieldValue::long_str(parent))
        .with("mqttSecondTopic", FieldValue::long_str(second))
        .with("clientId", FieldValue::long_str(message.origin.as_str()));
    AmqpMessage {
        exchange: topic.to_owned(),
        routing_key: topic.to_owned(),
        properties: BasicProperties {
            message_id: Some(message.id.to_string()),
            headers: Some(headers),
            ..BasicProperties::default()
        },
        body: message.payload.clone(),
    }
}
