//! The binary's log output: lines are appended to a shared buffer and written out in batches
//! by a thread of their own.
//!
//! A runtime worker that logs (a status event per connect and disconnect, at the default
//! level) never waits for stdout (a slow pipe, a terminal, journald), and it does not wake
//! the writing thread per line either: only the first line into an empty buffer does, and
//! the thread then lets lines gather for up to [`GATHER`] before it writes them all with
//! one call. A warning or an error is written at once. Handing each line over through a
//! channel, as `tracing-appender` does, woke the writing thread per line, and that thread
//! spun (`sched_yield`) before it slept: in a burst of 10 000 connects that was about a
//! fifth of the broker's CPU on 2 cores.
//!
//! When the buffer holds [`CAPACITY`] bytes not yet written (stdout blocked), further lines
//! are dropped, counted, and the count is written once stdout takes lines again.

use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long the writing thread lets lines gather after the first one.
pub(crate) const GATHER: Duration = Duration::from_millis(10);

/// Bytes of log lines the buffer holds before further lines are dropped.
pub(crate) const CAPACITY: usize = 16 * 1024 * 1024;

/// A batch this large is written without waiting for the rest of [`GATHER`].
const BATCH: usize = 64 * 1024;

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    /// A line that must not wait (a warning or an error) is in `lines`.
    urgent: bool,
    /// Lines dropped since the last write, because the buffer was full.
    dropped: u64,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// Where the log subscriber writes: [`MakeWriter`] for `tracing_subscriber::fmt`.
#[derive(Clone)]
pub(crate) struct BatchedLog {
    shared: Arc<Shared>,
}

/// Stops the writing thread when dropped, after it wrote every line buffered.
pub(crate) struct FlushOnDrop {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A log that `out` receives in batches, from a thread named `mqgate-log`.
pub(crate) fn batched<W: Write + Send + 'static>(
    out: W,
) -> std::io::Result<(BatchedLog, FlushOnDrop)> {
    let shared = Arc::new(Shared::default());
    let thread = std::thread::Builder::new()
        .name("mqgate-log".into())
        .spawn({
            let shared = shared.clone();
            move || write_out(&shared, out)
        })?;
    Ok((
        BatchedLog {
            shared: shared.clone(),
        },
        FlushOnDrop {
            shared,
            thread: Some(thread),
        },
    ))
}

/// The writing thread: waits for a first line, lets more gather, writes them all.
fn write_out<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::new();
    loop {
        let mut state = shared.state.lock();
        while state.lines.is_empty() && state.dropped == 0 && !state.closed {
            shared.wake.wait(&mut state);
        }
        if !state.urgent && !state.closed && state.lines.len() < BATCH {
            // Wakes early for a warning, a full batch, or the end.
            let _ = shared.wake.wait_for(&mut state, GATHER);
        }
        let closed = state.closed;
        let dropped = std::mem::take(&mut state.dropped);
        state.urgent = false;
        std::mem::swap(&mut state.lines, &mut spare);
        drop(state);
        // Nowhere to report a failing stdout but stdout: the lines are lost, the broker goes on.
        let _ = out.write_all(&spare);
        if dropped > 0 {
            let _ = writeln!(out, "mqgate: {dropped} log lines dropped (output blocked)");
        }
        let _ = out.flush();
        spare.clear();
        if spare.capacity() > BATCH * 4 {
            spare = Vec::new();
        }
        if closed {
            return;
        }
    }
}

impl BatchedLog {
    fn append(&self, line: &[u8], urgent: bool) {
        let mut state = self.shared.state.lock();
        if state.closed {
            return;
        }
        if state.lines.len() + line.len() > CAPACITY {
            state.dropped += 1;
            return;
        }
        let first = state.lines.is_empty();
        state.lines.extend_from_slice(line);
        state.urgent |= urgent;
        let full = state.lines.len() >= BATCH && state.lines.len() - line.len() < BATCH;
        drop(state);
        if first || urgent || full {
            self.shared.wake.notify_one();
        }
    }
}

/// One event's line, as `tracing_subscriber::fmt` writes it (one `write_all` per event).
pub(crate) struct Line<'a> {
    log: &'a BatchedLog,
    urgent: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.log.append(buf, self.urgent);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedLog {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            log: self,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line {
            log: self,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.shared.state.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// What the writing thread wrote, and how many times it was called to write.
    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Out {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut out = self.0.lock();
            out.0.extend_from_slice(buf);
            out.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn wait_for(out: &Out, bytes: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.0.lock().0.len() < bytes && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        out.0.lock().0.clone()
    }

    #[test]
    fn lines_logged_together_are_written_together_in_order() {
        let out = Out::default();
        let (log, guard) = batched(out.clone()).expect("thread");
        let mut expected = Vec::new();
        for i in 0..1000 {
            let line = format!("line {i}\n");
            log.make_writer().write_all(line.as_bytes()).expect("write");
            expected.extend_from_slice(line.as_bytes());
        }
        assert_eq!(wait_for(&out, expected.len()), expected);
        let writes = out.0.lock().1;
        assert!(writes < 10, "1 000 lines took {writes} writes");
        drop(guard);
    }

    /// Lines that trickle in (as connects do) gather for a while instead of being written one
    /// by one as they come.
    #[test]
    fn lines_that_trickle_in_gather() {
        let out = Out::default();
        let (log, guard) = batched(out.clone()).expect("thread");
        for i in 0..200 {
            log.make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .expect("write");
            std::thread::sleep(Duration::from_micros(20));
        }
        drop(guard);
        let (written, writes) = out.0.lock().clone();
        assert_eq!(String::from_utf8_lossy(&written).lines().count(), 200);
        assert!(writes < 50, "200 lines took {writes} writes");
    }

    #[test]
    fn a_warning_does_not_wait_and_the_end_writes_everything() {
        let out = Out::default();
        let (log, guard) = batched(out.clone()).expect("thread");
        let warn = Line {
            log: &log,
            urgent: true,
        };
        let mut warn = warn;
        warn.write_all(b"warning\n").expect("write");
        assert_eq!(wait_for(&out, 8), b"warning\n");
        log.make_writer().write_all(b"last\n").expect("write");
        drop(guard);
        assert_eq!(out.0.lock().0, b"warning\nlast\n");
        // Nothing is taken after the end, and nothing panics.
        log.make_writer().write_all(b"late\n").expect("write");
        assert_eq!(out.0.lock().0, b"warning\nlast\n");
    }

    /// A stdout that takes nothing until it is let go.
    #[derive(Clone)]
    struct Blocked(Arc<(Mutex<bool>, Condvar)>, Out);

    impl Write for Blocked {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, opened) = &*self.0;
            let mut open_now = open.lock();
            while !*open_now {
                opened.wait(&mut open_now);
            }
            drop(open_now);
            self.1.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_blocked_output_drops_lines_beyond_the_capacity_and_says_how_many() {
        let out = Out::default();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (log, guard) = batched(Blocked(gate.clone(), out.clone())).expect("thread");
        // The first line goes out alone and blocks the thread; the rest fill the buffer.
        log.make_writer().write_all(b"first\n").expect("write");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !log.shared.state.lock().lines.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let line = vec![b'x'; 1023];
        let line = [line.as_slice(), b"\n"].concat();
        let fits = CAPACITY / line.len();
        for _ in 0..fits + 7 {
            log.make_writer().write_all(&line).expect("write");
        }
        *gate.0.lock() = true;
        gate.1.notify_all();
        drop(guard);
        let written = out.0.lock().0.clone();
        let text = String::from_utf8_lossy(&written);
        assert!(text.starts_with("first\n"));
        assert_eq!(text.matches('x').count(), fits * 1023);
        assert!(
            text.ends_with("mqgate: 7 log lines dropped (output blocked)\n"),
            "{}",
            &text[text.len().saturating_sub(100)..]
        );
    }
}
