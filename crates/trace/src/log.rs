//! [`TraceLog`]: records appended to segments, queried by time range, swept by age and size.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::query::{Page, Paging, Query};
use crate::{RecordRef, TraceError, TraceRecord};

/// How much trace a log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceConfig {
    /// Records older than this are removed by [`TraceLog::sweep`] (a segment goes when its
    /// newest record is that old). Default: 3 days, as the managed service keeps them.
    pub retention_ms: u64,
    /// The most bytes of records kept; the oldest segments go first. Default: 256 MiB.
    pub max_bytes: u64,
    /// A segment is closed and a new one started once it holds this many bytes (default
    /// 4 MiB): the unit in which old records are removed and that a query reads whole.
    pub segment_bytes: u64,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            retention_ms: 3 * 24 * 3600 * 1000,
            max_bytes: 256 * 1024 * 1024,
            segment_bytes: 4 * 1024 * 1024,
        }
    }
}

/// What a log holds, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceStats {
    /// Segments, the one being written included.
    pub segments: usize,
    /// Bytes of records.
    pub bytes: u64,
    /// Records appended since the log was opened.
    pub appended: u64,
    /// Segments removed by age or size since the log was opened.
    pub removed_segments: u64,
    /// Segments found damaged or torn when the log was opened: their records up to the damage
    /// are kept, and nothing is appended to them again.
    pub damaged_segments: u64,
}

/// One segment's bounds, kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    bytes: u64,
    /// Earliest and latest record time; `None` while empty.
    times: Option<(u64, u64)>,
}

impl Segment {
    fn overlaps(&self, begin: u64, end: u64) -> bool {
        self.times
            .is_some_and(|(first, last)| first <= end && last >= begin)
    }

    fn note(&mut self, t: u64) {
        self.times = Some(match self.times {
            Some((first, last)) => (first.min(t), last.max(t)),
            None => (t, t),
        });
    }
}

/// The time range and number of the records in one write.
#[derive(Default)]
struct Times {
    range: Option<(u64, u64)>,
    count: u64,
}

impl Times {
    fn note(&mut self, t: u64) {
        self.range = Some(match self.range {
            Some((first, last)) => (first.min(t), last.max(t)),
            None => (t, t),
        });
        self.count += 1;
    }
}

/// Where segments are kept: a directory, or memory.
enum Backing {
    Dir {
        dir: PathBuf,
        /// The segment being appended to, open.
        active: Option<(u64, File)>,
    },
    Memory(BTreeMap<u64, Vec<u8>>),
}

/// An append-only log of trace records in numbered segments.
///
/// Appends go to the newest segment; a query reads the segments whose time range overlaps
/// its own and filters them; [`sweep`](Self::sweep) removes whole segments by age, then by
/// size, oldest first. Nothing is synced to disk: trace is for looking back, and a crash may
/// lose the last records written (a torn last record is found and skipped when the log is
/// opened again).
///
/// ```
/// use mqgate_trace::{Action, Info, Paging, Query, TraceConfig, TraceLog, TraceRecord};
///
/// let mut log = TraceLog::in_memory(TraceConfig::default());
/// log.append(&[
///     TraceRecord::device(Action::Connect, Info::Accepted, 1_000, "GID_a@@@1", "ch-1"),
///     TraceRecord::message(Action::PubMqtt, Info::PubFromMqttClient, 1_001, "GID_a@@@1", 42),
///     TraceRecord::message(Action::Sub, Info::PushToMqttClient, 1_002, "GID_a@@@2", 42),
/// ])?;
/// let device = log.query(&Query::Device { client_id: "GID_a@@@1".into() }, 0, 2_000, Paging::first(10))?;
/// assert_eq!(device.total, 1);
/// let delivered = log.query(&Query::MessageSubscribe { message: 42, client_id: None }, 0, 2_000, Paging::first(10))?;
/// assert_eq!(delivered.records[0].client_id, "GID_a@@@2");
/// # Ok::<(), mqgate_trace::TraceError>(())
/// ```
pub struct TraceLog {
    config: TraceConfig,
    backing: Backing,
    /// Every segment by number, the last one being written.
    segments: BTreeMap<u64, Segment>,
    /// Set when the log was opened on existing segments: the next append starts a new one,
    /// so nothing is ever written behind a torn record.
    fresh_segment: bool,
    stats: TraceStats,
    /// The encoding buffer of [`append_refs`](Self::append_refs), kept between batches (up
    /// to [`KEPT_SCRATCH`] bytes) so that a busy writer does not allocate and free one each
    /// time.
    scratch: Vec<u8>,
}

/// Bytes of encoding buffer a log keeps between batches, and the most it writes at once
/// (about 4 000 records).
const KEPT_SCRATCH: usize = 256 * 1024;

impl std::fmt::Debug for TraceLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceLog")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

const SUFFIX: &str = ".trace";

impl TraceLog {
    /// A log kept in memory (lost at exit), with the same bounds as on disk.
    pub fn in_memory(config: TraceConfig) -> Self {
        TraceLog {
            config,
            backing: Backing::Memory(BTreeMap::new()),
            segments: BTreeMap::new(),
            fresh_segment: false,
            stats: TraceStats::default(),
            scratch: Vec::new(),
        }
    }

    /// Opens (creating it if needed) a log in `dir`: reads every segment once to learn its
    /// time range, so opening takes time in proportion to the bytes kept (bounded by
    /// [`TraceConfig::max_bytes`]).
    ///
    /// # Errors
    /// [`TraceError::Io`] when the directory cannot be created or read.
    pub fn open_dir(dir: &Path, config: TraceConfig) -> Result<Self, TraceError> {
        std::fs::create_dir_all(dir).map_err(|e| TraceError::io(dir, e))?;
        let mut log = TraceLog {
            config,
            backing: Backing::Dir {
                dir: dir.to_owned(),
                active: None,
            },
            segments: BTreeMap::new(),
            fresh_segment: true,
            stats: TraceStats::default(),
            scratch: Vec::new(),
        };
        for entry in std::fs::read_dir(dir).map_err(|e| TraceError::io(dir, e))? {
            let entry = entry.map_err(|e| TraceError::io(dir, e))?;
            let name = entry.file_name();
            let Some(number) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let bytes = log.read_segment(number)?;
            let mut segment = Segment {
                bytes: bytes.len() as u64,
                times: None,
            };
            let (records, damaged) = scan(&bytes);
            for record in &records {
                segment.note(record.time_ms);
            }
            log.stats.damaged_segments += u64::from(damaged);
            log.segments.insert(number, segment);
        }
        Ok(log)
    }

    /// The bounds it keeps.
    pub fn config(&self) -> TraceConfig {
        self.config
    }

    /// Appends `records` to the newest segment, starting a new one when it is full.
    ///
    /// # Errors
    /// [`TraceError::Io`] when the segment cannot be written.
    pub fn append(&mut self, records: &[TraceRecord]) -> Result<(), TraceError> {
        self.append_refs(records.iter().map(TraceRecord::borrowed))
    }

    /// [`append`](Self::append) for records that borrow their texts ([`RecordRef`]): a
    /// recorder's batch is written without copying a client id.
    ///
    /// # Errors
    /// [`TraceError::Io`] when the segment cannot be written.
    pub fn append_refs<'a>(
        &mut self,
        records: impl IntoIterator<Item = RecordRef<'a>>,
    ) -> Result<(), TraceError> {
        let mut buffer = std::mem::take(&mut self.scratch);
        buffer.clear();
        // Room for a full piece and the record that passes it, once: no regrowth after.
        buffer.reserve(KEPT_SCRATCH + 4096);
        let written = self.encode_and_write(records, &mut buffer);
        buffer.clear();
        self.scratch = buffer;
        written
    }

    fn encode_and_write<'a>(
        &mut self,
        records: impl IntoIterator<Item = RecordRef<'a>>,
        buffer: &mut Vec<u8>,
    ) -> Result<(), TraceError> {
        let mut times = Times::default();
        for record in records {
            record.encode_into(buffer);
            times.note(record.time_ms);
            // A batch is written in pieces of at most a kept buffer, so the buffer never
            // grows past it (a large one would be unmapped and faulted in again each batch).
            if buffer.len() >= KEPT_SCRATCH || buffer.len() as u64 >= self.config.segment_bytes {
                self.write(buffer, &times)?;
                buffer.clear();
                times = Times::default();
            }
        }
        if !buffer.is_empty() {
            self.write(buffer, &times)?;
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8], times: &Times) -> Result<(), TraceError> {
        let number = match self.segments.last_key_value() {
            Some((&n, s)) if s.bytes < self.config.segment_bytes && !self.fresh_segment => n,
            Some((&n, _)) => n + 1,
            None => 0,
        };
        self.fresh_segment = false;
        match &mut self.backing {
            Backing::Memory(map) => map.entry(number).or_default().extend_from_slice(bytes),
            Backing::Dir { dir, active } => {
                if active.as_ref().is_none_or(|(n, _)| *n != number) {
                    let path = segment_path(dir, number);
                    let file = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .map_err(|e| TraceError::io(&path, e))?;
                    *active = Some((number, file));
                }
                if let Some((_, file)) = active {
                    file.write_all(bytes)
                        .map_err(|e| TraceError::io(&segment_path(dir, number), e))?;
                }
            }
        }
        let segment = self.segments.entry(number).or_insert(Segment {
            bytes: 0,
            times: None,
        });
        segment.bytes += bytes.len() as u64;
        if let Some((first, last)) = times.range {
            segment.note(first);
            segment.note(last);
        }
        self.stats.appended += times.count;
        Ok(())
    }

    fn read_segment(&self, number: u64) -> Result<Vec<u8>, TraceError> {
        match &self.backing {
            Backing::Memory(map) => Ok(map.get(&number).cloned().unwrap_or_default()),
            Backing::Dir { dir, .. } => {
                let path = segment_path(dir, number);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(bytes),
                    // Removed by a sweep since the list was made.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                    Err(e) => Err(TraceError::io(&path, e)),
                }
            }
        }
    }

    /// The records `query` selects between `begin_ms` and `end_ms` (both included), ordered by
    /// time (then by the order they were appended), newest first if `paging.reverse`, and the
    /// page of them `paging` asks for, with the total.
    ///
    /// # Errors
    /// [`TraceError::Io`] when a segment cannot be read.
    pub fn query(
        &self,
        query: &Query,
        begin_ms: u64,
        end_ms: u64,
        paging: Paging,
    ) -> Result<Page, TraceError> {
        let mut found = Vec::new();
        for (&number, segment) in &self.segments {
            if !segment.overlaps(begin_ms, end_ms) {
                continue;
            }
            let bytes = self.read_segment(number)?;
            found.extend(
                scan(&bytes)
                    .0
                    .into_iter()
                    .filter(|r| r.time_ms >= begin_ms && r.time_ms <= end_ms && query.selects(r)),
            );
        }
        // Stable: equal times keep the order they were appended in.
        found.sort_by_key(|r| r.time_ms);
        if paging.reverse {
            found.reverse();
        }
        Ok(paging.page(found))
    }

    /// Removes segments whose newest record is older than the retention at `now_ms`, then
    /// the oldest segments while more than [`TraceConfig::max_bytes`] are kept (the newest
    /// segment is closed first if it alone is over the bound). Returns the segments removed.
    ///
    /// # Errors
    /// [`TraceError::Io`] when a segment file cannot be removed.
    pub fn sweep(&mut self, now_ms: u64) -> Result<usize, TraceError> {
        let cutoff = now_ms.saturating_sub(self.config.retention_ms);
        let mut removed = 0;
        while let Some((&oldest, segment)) = self.segments.first_key_value() {
            let expired = segment.times.is_some_and(|(_, last)| last < cutoff);
            let total: u64 = self.segments.values().map(|s| s.bytes).sum();
            let over = total > self.config.max_bytes;
            if !expired && !over {
                break;
            }
            self.remove(oldest)?;
            removed += 1;
        }
        self.stats.removed_segments += removed as u64;
        Ok(removed)
    }

    fn remove(&mut self, number: u64) -> Result<(), TraceError> {
        self.segments.remove(&number);
        match &mut self.backing {
            Backing::Memory(map) => {
                map.remove(&number);
            }
            Backing::Dir { dir, active } => {
                if active.as_ref().is_some_and(|(n, _)| *n == number) {
                    *active = None;
                }
                let path = segment_path(dir, number);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(TraceError::io(&path, e)),
                }
            }
        }
        Ok(())
    }

    /// What the log holds now.
    pub fn stats(&self) -> TraceStats {
        TraceStats {
            segments: self.segments.len(),
            bytes: self.segments.values().map(|s| s.bytes).sum(),
            ..self.stats
        }
    }
}

/// The records of one segment's bytes up to the first damaged one, and whether there was one.
fn scan(mut bytes: &[u8]) -> (Vec<TraceRecord>, bool) {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        match TraceRecord::decode(bytes) {
            Ok((record, used)) => {
                records.push(record);
                bytes = &bytes[used..];
            }
            Err(_) => return (records, true),
        }
    }
    (records, false)
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016}{SUFFIX}"))
}
