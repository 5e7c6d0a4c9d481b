//! The connections scenario: open N idle clients as fast as the broker accepts them, with a
//! bounded number of handshakes in flight from several loopback source addresses; report the
//! rate, the distribution of the time each handshake took (TCP connect to CONNACK), and what
//! each idle client costs the broker in resident memory.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::net::TcpStream;

use crate::clock::RunClock;
use crate::ledger::quantile;
use crate::plan::{subscriber_id, RunConfig};
use crate::protocol::Hello;
use crate::report::RunReport;
use crate::sampler::BrokerWatch;
use crate::{source_address, wire, BenchError};

/// How long the broker gets to settle (free handshake buffers) before its RSS is read.
const SETTLE: Duration = Duration::from_millis(1000);

/// Tasks the handshakes are spread over, so every thread of the generator's runtime can
/// work: in one task, the generator was as busy as a fast broker and set the pace.
const TASKS: usize = 4;

/// Opens `config.client_count()` clients, holds them idle, reads the broker's RSS, then
/// disconnects them all.
pub async fn run_connections(config: &RunConfig) -> Result<RunReport, BenchError> {
    let total = config.client_count();
    let clock = RunClock::start_now();
    let deadline = clock.deadline(config.seconds);
    let watch = BrokerWatch::start(config.broker_pid);
    let generator_before = crate::procstat::sample_process(None);
    let before = watch.now();
    let target = config.target;
    let salt = crate::source_salt();
    let version = config.mqtt;
    // Each lane opens every `lanes`-th client in turn: a bounded number of handshakes in
    // flight (`config.handshakes`), the lanes spread over TASKS tasks.
    let lanes = config.handshakes.clamp(1, total.max(1));
    let tasks: Vec<_> = (0..TASKS.min(lanes))
        .map(|task| {
            tokio::spawn(async move {
                let opening = (task..lanes).step_by(TASKS).map(|lane| async move {
                    let mut held: Vec<TcpStream> = Vec::new();
                    let mut took_ns: Vec<u64> = Vec::new();
                    for index in (lane..total).step_by(lanes) {
                        let source = source_address(target, index, salt);
                        // From the TCP connect to the CONNACK: what a device waits for.
                        let started = Instant::now();
                        let mut stream = wire::open_tcp(target, source).await?;
                        wire::handshake(&mut stream, &subscriber_id(index), &Hello::clean(version))
                            .await?;
                        took_ns
                            .push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
                        held.push(stream);
                    }
                    Ok::<_, BenchError>((held, took_ns))
                });
                let mut held = Vec::new();
                let mut took_ns = Vec::new();
                for lane in join_all(opening).await {
                    let (streams, times) = lane?;
                    held.extend(streams);
                    took_ns.extend(times);
                }
                Ok::<_, BenchError>((held, took_ns))
            })
        })
        .collect();
    let aborts: Vec<_> = tasks.iter().map(|task| task.abort_handle()).collect();
    let Ok(opened) = tokio::time::timeout_at(deadline, join_all(tasks)).await else {
        aborts.iter().for_each(tokio::task::AbortHandle::abort);
        return Err(BenchError::SetupTimeout);
    };
    let connect_s = clock.now_ns() as f64 / 1e9;
    let mut streams = Vec::with_capacity(total);
    let mut took_ns = Vec::with_capacity(total);
    for task in opened {
        let (held, times) = task.map_err(crate::traffic::join_error)??;
        streams.extend(held);
        took_ns.extend(times);
    }
    took_ns.sort_unstable();
    let us = |q: f64| quantile(&took_ns, q).map(|ns| ns as f64 / 1e3);
    tokio::time::sleep(SETTLE).await;
    let after = watch.now();
    join_all(streams.into_iter().map(wire::disconnect)).await;
    let usage = watch.finish().await;
    let generator_after = crate::procstat::sample_process(None);
    let per_connection = before
        .zip(after)
        .map(|(b, a)| (a.rss_kb as f64 - b.rss_kb as f64) * 1024.0 / total.max(1) as f64);
    Ok(RunReport {
        scenario: format!(
            "connections {total}, {lanes} handshakes at once{}",
            version.scenario_suffix()
        ),
        broker: config.label.clone(),
        mqtt: version,
        duration_s: connect_s,
        broker_cpu_s: usage.map(|u| u.cpu_s),
        broker_rss_peak_kb: usage.map(|u| u.peak_rss_kb),
        broker_hwm_kb: usage.map(|u| u.end.hwm_kb),
        broker_rss_kb: after.map(|a| a.rss_kb),
        generator_cpu_s: generator_before
            .zip(generator_after)
            .map(|(a, b)| b.cpu_seconds - a.cpu_seconds),
        connections: total as u64,
        connect_per_s: Some(total as f64 / connect_s.max(1e-9)),
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        broker_bytes_per_connection: per_connection,
        ..RunReport::default()
    })
}
