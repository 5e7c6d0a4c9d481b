//! Message trace recording ([`Tracer`]): connections and the message paths hand small
//! events to a bounded buffer and go on; a writer thread appends them to the trace log
//! (`mqgate-trace`) in batches. Nothing on a connection's path touches the disk or waits: a
//! full buffer drops the record and counts it (`trace_dropped`).
//!
//! ```text
//!  CONNECT answered, connection ended, message created (pub_mqtt | pub_mq),
//!  delivery taken by an online client (sub), offline queue resumed (push_offline)
//!     ──push──▶ pending (Vec, bounded) ──writer thread, every batch window──▶ TraceLog
//!  QueryMqttTrace* ──▶ drains pending first, then queries the log (what was recorded is seen)
//!  sweep timer ──▶ TraceLog::sweep(now): retention, then the size bound
//! ```

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mqgate_codec::ByteStr;
use mqgate_session::MessageId;
use mqgate_status::ChannelId;
use mqgate_trace::{Action, Info, Page, Paging, Query, RecordRef, TraceError, TraceLog};
use parking_lot::{Condvar, Mutex};

use crate::clock::unix_time_ms;
use crate::config::TraceSettings;
use crate::{BrokerError, Metrics};

/// How long the writer lets records gather after the first one of a batch arrives (unless the
/// batch fills first: half the buffer, at most [`KEPT_CAPACITY`] records): a batch is one
/// write.
const BATCH_WINDOW: Duration = Duration::from_millis(20);

/// Records' room a drained buffer keeps for the next batch; a larger one (after a burst, when
/// the writer fell behind) is shrunk to this, so the memory of a burst is given back. The
/// writer takes a batch once this many are pending, so a busy broker's recorders do not
/// regrow the buffer under its lock; the two buffers (the recorders' and the writer's) keep
/// about 320 KB each.
const KEPT_CAPACITY: usize = 4096;

/// What a record is about besides its client.
#[derive(Clone, Copy)]
enum Subject {
    Message(u128),
    Channel(ChannelId),
}

/// One thing that happened, as small as it can be made on the path that records it: the
/// client id is shared, the texts are made by the writer.
struct Event {
    time_ms: u64,
    action: Action,
    info: Info,
    client: ByteStr,
    subject: Subject,
}

#[derive(Default)]
struct Pending {
    events: Vec<Event>,
    closed: bool,
}

struct Inner {
    pending: Mutex<Pending>,
    wake: Condvar,
    log: Mutex<TraceLog>,
    capacity: usize,
    /// Pending records at which the writer takes a batch without waiting out the window.
    batch_at: usize,
    metrics: Arc<Metrics>,
}

/// The broker's trace recorder (one per broker, shared behind an `Arc`); its writer thread
/// ends once it is dropped and what was pending is written.
pub(crate) struct Tracer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer").finish_non_exhaustive()
    }
}

impl Tracer {
    /// Opens the trace log `settings` describe (in `data_dir`, or in memory when `memory`)
    /// and starts its writer thread; `None` when trace is disabled.
    ///
    /// # Errors
    /// [`BrokerError::Store`] when the trace directory cannot be opened, [`BrokerError::Io`]
    /// when the writer thread cannot start.
    pub(crate) fn start(
        settings: &TraceSettings,
        data_dir: &Path,
        memory: bool,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Tracer>, BrokerError> {
        if !settings.enabled {
            return Ok(None);
        }
        let config = settings.log_config();
        let log = if memory {
            TraceLog::in_memory(config)
        } else {
            let dir = data_dir.join(&settings.dir);
            let log = TraceLog::open_dir(&dir, config)
                .map_err(|e| BrokerError::Store(format!("trace log: {e}")))?;
            let stats = log.stats();
            tracing::info!(dir = %dir.display(), segments = stats.segments, bytes = stats.bytes, damaged = stats.damaged_segments, "trace log opened");
            log
        };
        let inner = Arc::new(Inner {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            log: Mutex::new(log),
            capacity: settings.buffer.max(1),
            batch_at: (settings.buffer / 2).clamp(1, KEPT_CAPACITY),
            metrics,
        });
        let writer = inner.clone();
        std::thread::Builder::new()
            .name("mqgate-trace".into())
            .spawn(move || write_loop(&writer))
            .map_err(BrokerError::Io)?;
        Ok(Some(Tracer { inner }))
    }

    /// Records a connect, close or disconnect of `client` on `channel`, now.
    pub(crate) fn device(&self, action: Action, info: Info, client: &ByteStr, channel: ChannelId) {
        self.push(action, info, client, Subject::Channel(channel));
    }

    /// Records what happened to message `id` with `client`, now.
    pub(crate) fn message(&self, action: Action, info: Info, client: &ByteStr, id: MessageId) {
        self.message_at(action, info, client, id, unix_time_ms());
    }

    /// Records what happened to message `id` with `client` at `time_ms` (wall clock), a time
    /// the caller has just read anyway: a busy broker records hundreds of thousands of
    /// events a second, and each saves a clock read.
    pub(crate) fn message_at(
        &self,
        action: Action,
        info: Info,
        client: &ByteStr,
        id: MessageId,
        time_ms: u64,
    ) {
        self.push_at(action, info, client, Subject::Message(id.0), time_ms);
    }

    fn push(&self, action: Action, info: Info, client: &ByteStr, subject: Subject) {
        self.push_at(action, info, client, subject, unix_time_ms());
    }

    fn push_at(
        &self,
        action: Action,
        info: Info,
        client: &ByteStr,
        subject: Subject,
        time_ms: u64,
    ) {
        let event = Event {
            time_ms,
            action,
            info,
            client: client.clone(),
            subject,
        };
        let inner = &*self.inner;
        let mut pending = inner.pending.lock();
        let len = pending.events.len();
        if len >= inner.capacity {
            drop(pending);
            inner.metrics.trace_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.events.push(event);
        drop(pending);
        // The writer sleeps until a batch starts, then gathers it for a window unless the
        // batch fills first.
        if len == 0 || len + 1 == inner.batch_at {
            inner.wake.notify_one();
        }
    }

    /// The page of records `query` selects between `begin_ms` and `end_ms`, after writing
    /// what is still pending (so an answer includes everything recorded before it). Blocks
    /// on the log's files: call it off the runtime's workers.
    ///
    /// # Errors
    /// The log could not be read.
    pub(crate) fn query(
        &self,
        query: &Query,
        begin_ms: u64,
        end_ms: u64,
        paging: Paging,
    ) -> Result<Page, TraceError> {
        self.flush();
        self.inner.log.lock().query(query, begin_ms, end_ms, paging)
    }

    /// Writes what is pending now. Blocks on the log's files.
    pub(crate) fn flush(&self) {
        self.inner.write_pending(&mut Vec::new());
    }

    /// Removes what is older than the retention at `now_ms`, then the oldest while over the
    /// size bound. Blocks on the log's files.
    pub(crate) fn sweep(&self, now_ms: u64) -> usize {
        match self.inner.log.lock().sweep(now_ms) {
            Ok(removed) => removed,
            Err(error) => {
                tracing::warn!(%error, "trace sweep failed");
                self.inner
                    .metrics
                    .trace_errors
                    .fetch_add(1, Ordering::Relaxed);
                0
            }
        }
    }

    /// How long records are kept.
    pub(crate) fn retention_ms(&self) -> u64 {
        self.inner.log.lock().config().retention_ms
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.inner.pending.lock().closed = true;
        self.inner.wake.notify_one();
    }
}

impl Inner {
    /// Takes what is pending (swapped with `batch`, an empty buffer to reuse) and appends it
    /// to the log; sweeps at once when that took the log over its size bound (a busy broker
    /// may write it faster than the sweep timer comes round).
    ///
    /// The log is locked before the pending records are taken, by the writer thread and by a
    /// query's flush alike, so batches reach the log in the order they were recorded.
    fn write_pending(&self, batch: &mut Vec<Event>) {
        let mut log = self.log.lock();
        std::mem::swap(&mut self.pending.lock().events, batch);
        if batch.is_empty() {
            return;
        }
        // Device events name their channel, which is written as text; message events, the
        // bulk, borrow their client id and copy nothing.
        let channels: Vec<Option<String>> = batch
            .iter()
            .map(|event| match event.subject {
                Subject::Channel(channel) => Some(channel.to_string()),
                Subject::Message(_) => None,
            })
            .collect();
        let records = batch
            .iter()
            .zip(&channels)
            .map(|(event, channel)| RecordRef {
                time_ms: event.time_ms,
                action: event.action,
                info: event.info,
                client_id: event.client.as_str(),
                message: match event.subject {
                    Subject::Message(id) => Some(id),
                    Subject::Channel(_) => None,
                },
                channel_id: channel.as_deref(),
            });
        let appended = log.append_refs(records);
        let written = batch.len();
        batch.clear();
        // A burst's buffer is not kept: it goes back to the recorders at the next swap.
        batch.shrink_to(KEPT_CAPACITY);
        if log.stats().bytes > log.config().max_bytes {
            if let Err(error) = log.sweep(unix_time_ms()) {
                tracing::warn!(%error, "trace sweep failed");
                self.metrics.trace_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(log);
        match appended {
            Ok(()) => {
                self.metrics
                    .trace_written
                    .fetch_add(written as u64, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::warn!(%error, records = written, "trace records not written");
                self.metrics.trace_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The writer thread: sleeps until a record arrives, lets a batch gather, appends it; ends
/// once closed and drained.
fn write_loop(inner: &Inner) {
    let mut batch = Vec::new();
    loop {
        {
            let mut pending = inner.pending.lock();
            while pending.events.is_empty() && !pending.closed {
                inner.wake.wait(&mut pending);
            }
            if pending.events.is_empty() {
                return;
            }
            if !pending.closed && pending.events.len() < inner.batch_at {
                let _ = inner.wake.wait_for(&mut pending, BATCH_WINDOW);
            }
        }
        // The pending lock is let go first: the log is always locked before it.
        inner.write_pending(&mut batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracer(buffer: usize) -> (Tracer, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let settings = TraceSettings {
            buffer,
            ..TraceSettings::default()
        };
        let tracer = Tracer::start(&settings, Path::new("."), true, metrics.clone())
            .unwrap()
            .unwrap();
        (tracer, metrics)
    }

    #[test]
    fn a_full_buffer_drops_and_counts_instead_of_waiting() {
        let (tracer, metrics) = tracer(4);
        let client = ByteStr::from_static("GID_a@@@1");
        {
            // The log is busy (a long query, a slow disk): the writer waits for it, the
            // buffer fills, and recording goes on without waiting.
            let _busy = tracer.inner.log.lock();
            for n in 0..20 {
                tracer.message(Action::Sub, Info::PushToMqttClient, &client, MessageId(n));
            }
        }
        assert_eq!(metrics.trace_dropped.load(Ordering::Relaxed), 16);
        let all = Query::MessagesOfClient {
            client_id: client.to_string(),
        };
        // The writer's batch, or the query's own flush: the four kept, in order.
        let page = tracer.query(&all, 0, u64::MAX, Paging::first(100)).unwrap();
        let ids: Vec<Option<u128>> = page.records.iter().map(|r| r.message).collect();
        assert_eq!(ids, [Some(0), Some(1), Some(2), Some(3)]);
        assert_eq!(metrics.trace_written.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn writes_keep_the_log_within_its_size_bound_between_sweeps() {
        let metrics = Arc::new(Metrics::default());
        let settings = TraceSettings {
            max_bytes: 2_000,
            segment_bytes: 500,
            ..TraceSettings::default()
        };
        let tracer = Tracer::start(&settings, Path::new("."), true, metrics)
            .unwrap()
            .unwrap();
        let client = ByteStr::from_static("GID_a@@@3");
        for n in 0..1_000 {
            tracer.message(Action::Sub, Info::PushToMqttClient, &client, MessageId(n));
            if n % 50 == 0 {
                tracer.flush();
            }
        }
        tracer.flush();
        let stats = tracer.inner.log.lock().stats();
        assert!(stats.bytes <= 2_000, "{stats:?}");
        assert!(stats.removed_segments > 0, "{stats:?}");
    }

    #[test]
    fn a_query_sees_what_was_recorded_before_it() {
        let (tracer, _) = tracer(1024);
        let client = ByteStr::from_static("GID_a@@@2");
        let channel = mqgate_status::ChannelId::from_bytes([7; 16]);
        tracer.device(Action::Connect, Info::Accepted, &client, channel);
        tracer.device(Action::Close, Info::NoHeart, &client, channel);
        let device = Query::Device {
            client_id: client.to_string(),
        };
        let page = tracer
            .query(&device, 0, u64::MAX, Paging::first(10))
            .unwrap();
        let infos: Vec<Info> = page.records.iter().map(|r| r.info).collect();
        assert_eq!(infos, [Info::Accepted, Info::NoHeart]);
        assert_eq!(
            page.records[0].channel_id.as_deref(),
            Some(channel.to_string().as_str())
        );
    }
}
