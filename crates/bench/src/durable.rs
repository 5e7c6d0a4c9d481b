//! The durable scenario, in two phases around a SIGKILL of the broker.
//!
//! - **fill**: N clients (default 1 000) connect with cleanSession = 0, subscribe to
//!   `dev/{i}/cmd` at QoS 1 and leave. Publishers then send QoS 1 messages spread over those
//!   offline sessions as fast as their in-flight window allows; every PUBACK is a promise
//!   that the message is stored. The acknowledged sequence numbers are written to a file.
//! - **drain** (after the broker was killed and started again on the same data): the same
//!   clients reconnect with cleanSession = 0 and take what the broker kept. Every
//!   acknowledged message that does not arrive is counted in `acked_lost`.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use mqgate_codec::QoS;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::clock::RunClock;
use crate::ledger::Ledger;
use crate::plan::{publisher_id, Plan, RunConfig};
use crate::protocol::{Hello, MqttVersion};
use crate::report::RunReport;
use crate::sampler::BrokerWatch;
use crate::traffic::{join_error, publish, read_all, usage};
use crate::{source_address, source_salt, wire, BenchError};

/// How long the drain waits with nothing arriving before it counts what is missing as lost:
/// thousands of sessions reading their backlogs from disk at once can pause a broker's
/// deliveries for seconds (a large commit), which is slow, not lost.
const DURABLE_DRAIN_IDLE: Duration = Duration::from_secs(10);

/// The persistent sessions' CONNECT (cleanSession = 0).
const PERSISTENT: Hello = Hello {
    version: MqttVersion::V311,
    clean: false,
    receive_maximum: None,
};

/// Sessions set up at once.
const SETUP_CONCURRENCY: usize = 64;

/// The plan, the run's clock and deadline, and an empty ledger (one receiver a message).
fn start(config: &RunConfig) -> Result<(Arc<Plan>, RunClock, Instant, Arc<Ledger>), BenchError> {
    if config.mqtt != MqttVersion::V311 {
        return Err(BenchError::InvalidPlan(
            "the durable scenario runs on MQTT 3.1.1",
        ));
    }
    let plan = Arc::new(Plan::new(config)?);
    let clock = RunClock::start_now();
    let deadline = clock.deadline(config.seconds);
    Ok((
        plan,
        clock,
        deadline,
        Arc::new(Ledger::new(config.messages, 1)),
    ))
}

/// Phase one: persistent sessions subscribe and leave, then publishers fill their queues.
/// `deliveries_per_s` is acknowledged messages per second here; the acknowledged sequence
/// numbers go to `acked_out`, one per line.
pub async fn run_durable_fill(
    config: &RunConfig,
    acked_out: &Path,
) -> Result<RunReport, BenchError> {
    let (plan, clock, deadline, ledger) = start(config)?;
    let salt = source_salt();
    let gate = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let sessions = plan
        .subscribers
        .iter()
        .enumerate()
        .map(|(i, (id, filters))| {
            let gate = gate.clone();
            let target = config.target;
            async move {
                let _permit = gate.acquire().await;
                let mut stream = wire::open_tcp(target, source_address(target, i, salt)).await?;
                let mut rx = wire::handshake(&mut stream, id, &PERSISTENT).await?.rx;
                wire::subscribe(
                    &mut stream,
                    &mut rx,
                    filters,
                    QoS::AtLeastOnce,
                    MqttVersion::V311,
                )
                .await?;
                wire::disconnect(stream).await;
                Ok::<(), BenchError>(())
            }
        });
    match tokio::time::timeout_at(deadline, join_all(sessions)).await {
        Ok(results) => results.into_iter().collect::<Result<(), _>>()?,
        Err(_) => return Err(BenchError::SetupTimeout),
    }
    // The brokers process DISCONNECT asynchronously: let the sessions go offline first.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let watch = BrokerWatch::start(config.broker_pid);
    let generator_before = crate::procstat::sample_process(None);
    let started_ns = clock.now_ns();
    let mut runs = Vec::new();
    for p in 0..config.publisher_count() {
        let source = source_address(config.target, plan.subscribers.len() + p, salt);
        let mut stream = wire::open_tcp(config.target, source).await?;
        let hello = Hello::clean(MqttVersion::V311);
        let connected = wire::handshake(&mut stream, &publisher_id(p), &hello).await?;
        let (plan, ledger, config) = (plan.clone(), ledger.clone(), config.clone());
        runs.push(tokio::spawn(async move {
            publish(
                stream, connected, p, &plan, &ledger, &config, clock, deadline,
            )
            .await
        }));
    }
    for run in runs {
        run.await.map_err(join_error)??;
    }
    let duration_s = (clock.now_ns().saturating_sub(started_ns)) as f64 / 1e9;
    let broker = watch.finish().await;
    let generator_after = crate::procstat::sample_process(None);
    let acked: Vec<u64> = (0..config.messages)
        .filter(|&m| ledger.acked.get(m))
        .collect();
    let mut text = String::with_capacity(acked.len() * 8);
    for m in &acked {
        text.push_str(&m.to_string());
        text.push('\n');
    }
    std::fs::write(acked_out, text)?;
    let count = acked.len() as u64;
    let sent = ledger.sent.load(Ordering::Relaxed);
    Ok(RunReport {
        scenario: format!("durable-fill qos1 {}B", config.payload),
        broker: config.label.clone(),
        sent,
        acked: count,
        deliveries_per_s: count as f64 / duration_s.max(1e-9),
        duration_s,
        timed_out: sent < config.messages,
        connections: (plan.subscribers.len() + config.publisher_count()) as u64,
        ..usage(broker, generator_before.zip(generator_after), count)
    })
}

/// Phase two: the sessions reconnect (cleanSession = 0) and take what the broker kept;
/// `acked_lost` counts the acknowledged messages of `acked_in` that never arrive.
pub async fn run_durable_drain(
    config: &RunConfig,
    acked_in: &Path,
) -> Result<RunReport, BenchError> {
    let (plan, clock, deadline, ledger) = start(config)?;
    let text = std::fs::read_to_string(acked_in)?;
    let mut acked = 0u64;
    for line in text.lines() {
        let m: u64 = line
            .trim()
            .parse()
            .map_err(|_| BenchError::InvalidPlan("acked file: not a sequence number"))?;
        if ledger.acked.set(m).is_some() {
            acked += 1;
        }
    }
    let salt = source_salt();
    let (stop_tx, stop_rx) = watch::channel(false);
    let per_task = config.connections_per_task.max(1);
    let mut groups = Vec::new();
    let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for (g, chunk) in plan.subscribers.chunks(per_task).enumerate() {
        let ids: Vec<(usize, String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (g * per_task + i, id.clone()))
            .collect();
        let (ledger, stop, target) = (ledger.clone(), stop_rx.clone(), config.target);
        let connected = connected.clone();
        groups.push(tokio::spawn(async move {
            let mut conns = Vec::with_capacity(ids.len());
            for (index, id) in ids {
                let mut stream =
                    wire::open_tcp(target, source_address(target, index, salt)).await?;
                let rx = wire::handshake(&mut stream, &id, &PERSISTENT).await?.rx;
                conns.push((index, stream, rx));
                connected.fetch_add(1, Ordering::Relaxed);
            }
            read_all(conns, &ledger, clock, stop, false, MqttVersion::V311).await;
            Ok::<(), BenchError>(())
        }));
    }
    // Until every acknowledged message arrived, nothing arrives for a while, or time is up.
    let watch = BrokerWatch::start(config.broker_pid);
    let started_ns = clock.now_ns();
    let mut last = u64::MAX;
    let mut idle_since = clock.now_ns();
    let timed_out = loop {
        let unique = ledger.unique();
        if unique >= acked {
            break false;
        }
        if tokio::time::Instant::now() >= deadline {
            break true;
        }
        if unique != last {
            last = unique;
            idle_since = clock.now_ns();
        } else if connected.load(Ordering::Relaxed) < plan.subscribers.len() {
            // Sessions still reconnecting (thousands take a while) are not an idle broker.
            idle_since = clock.now_ns();
        } else if clock.now_ns().saturating_sub(idle_since) > DURABLE_DRAIN_IDLE.as_nanos() as u64 {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = stop_tx.send(true);
    for group in groups {
        group.await.map_err(join_error)??;
    }
    let unique = ledger.unique();
    let received = ledger.received.load(Ordering::Relaxed);
    let broker = watch.finish().await;
    let end_ns = ledger
        .last_delivery_ns
        .load(Ordering::Relaxed)
        .max(started_ns + 1);
    let duration_s = (end_ns - started_ns) as f64 / 1e9;
    Ok(RunReport {
        scenario: format!("durable-drain qos1 {}B", config.payload),
        broker: config.label.clone(),
        acked,
        received,
        duplicated: ledger.duplicated(),
        acked_lost: ledger.acked_lost(),
        deliveries_per_s: unique as f64 / duration_s.max(1e-9),
        duration_s,
        timed_out,
        connections: plan.subscribers.len() as u64,
        ..usage(broker, None, unique)
    })
}
