//! Watches the broker process while a run lasts: CPU time used and the highest RSS seen.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::procstat::{sample_process, ProcessSample};

/// How often the broker's RSS is sampled for its peak during a run.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// What the broker used during a run.
#[derive(Debug, Clone, Copy)]
pub struct BrokerUsage {
    /// CPU seconds (user + system) between start and finish.
    pub cpu_s: f64,
    /// Highest RSS sampled, KiB.
    pub peak_rss_kb: u64,
    /// The reading at the finish.
    pub end: ProcessSample,
}

/// A running sampler of one broker PID (or nothing, without a PID).
#[derive(Debug)]
pub struct BrokerWatch {
    start: Option<ProcessSample>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<u64>>,
    pid: Option<u32>,
}

impl BrokerWatch {
    /// Takes the first reading and starts sampling RSS in the background.
    pub fn start(pid: Option<u32>) -> Self {
        let start = pid.and_then(|p| sample_process(Some(p)));
        let (stop, mut stopped) = watch::channel(false);
        let task = start.map(|first| {
            tokio::spawn(async move {
                let mut peak = first.rss_kb;
                loop {
                    tokio::select! {
                        _ = stopped.changed() => return peak,
                        _ = tokio::time::sleep(SAMPLE_EVERY) => {}
                    }
                    if let Some(now) = sample_process(pid) {
                        peak = peak.max(now.rss_kb);
                    }
                }
            })
        });
        BrokerWatch {
            start,
            stop,
            task,
            pid,
        }
    }

    /// The last reading now, without stopping.
    pub fn now(&self) -> Option<ProcessSample> {
        self.pid.and_then(|p| sample_process(Some(p)))
    }

    /// Stops sampling; `None` without a PID or when the broker is gone.
    pub async fn finish(mut self) -> Option<BrokerUsage> {
        let _ = self.stop.send(true);
        let peak = match self.task.take() {
            Some(task) => task.await.ok()?,
            None => return None,
        };
        let end = self.now()?;
        let start = self.start?;
        Some(BrokerUsage {
            cpu_s: end.cpu_seconds - start.cpu_seconds,
            peak_rss_kb: peak.max(end.rss_kb),
            end,
        })
    }
}
