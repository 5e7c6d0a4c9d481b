//! [`Readers`]: a few threads of the broker's own that read pages of stored queues.
//!
//! Reads block (a page of a queue on disk is read from the store), so they do not run on
//! the runtime's workers. On tokio's blocking pool they did, bounded to a number at once by a
//! semaphore, but the pool starts a thread whenever none is idle at the instant a read is
//! handed over, and keeps it ten seconds: ten thousand sessions draining their backlogs grew
//! it to 66 threads. Each thread that allocates gets its own allocator arena in glibc, and
//! the message bodies a reader allocates are freed by the connection that sent them, on
//! another thread: memory freed into an arena stays with the process. With 66 threads the
//! broker held 700 MB during such a drain. A fixed set of threads bounds both.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

/// A read to run, with its own way of sending its result back.
type Job = Box<dyn FnOnce() + Send>;

/// The reader threads, started with the first read and stopped when this is dropped (the
/// threads end once the queue is closed and empty).
#[derive(Debug)]
pub(crate) struct Readers {
    threads: usize,
    queue: OnceLock<mpsc::Sender<Job>>,
}

impl Readers {
    /// `threads` readers (at least one), started on first use.
    pub(crate) fn new(threads: usize) -> Self {
        Readers {
            threads: threads.max(1),
            queue: OnceLock::new(),
        }
    }

    /// Runs `read` on a reader thread and resolves to its result; `None` if the readers are
    /// gone (they never stop while this exists, unless a thread could not be started).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        read: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The asking side may have gone away meanwhile: nothing to tell then.
            let _ = tx.send(read());
        });
        let queue = self.queue.get_or_init(|| self.start());
        if queue.send(job).is_err() {
            return None;
        }
        rx.await.ok()
    }

    fn start(&self) -> mpsc::Sender<Job> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..self.threads {
            let receiver = receiver.clone();
            let started = std::thread::Builder::new()
                .name(format!("mqgate-pages-{n}"))
                .spawn(move || loop {
                    // The lock is held only to take the next job, not while it runs.
                    let job = match receiver.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(error) = started {
                tracing::error!(%error, "a page reader thread could not be started");
            }
        }
        sender
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_run_on_the_readers_and_their_results_come_back() {
        let readers = Readers::new(2);
        let names = futures_util::future::join_all((0..8).map(|i| {
            readers.run(move || {
                let name = std::thread::current().name().map(str::to_owned);
                (i, name)
            })
        }))
        .await;
        for (i, got) in names.into_iter().enumerate() {
            let (n, name) = got.expect("read");
            assert_eq!(n, i);
            let name = name.expect("named thread");
            assert!(name.starts_with("mqgate-pages-"), "{name}");
        }
    }

    #[test]
    fn nothing_starts_before_the_first_read() {
        let readers = Readers::new(3);
        assert!(readers.queue.get().is_none());
    }
}
