//! The traffic scenarios: subscribers connect and subscribe, publishers send a bounded
//! number of messages, the ledger counts what arrived.
//!
//! Several connections share one task (`futures_util::future::join_all` polls only the ones
//! that woke), publishers encode many PUBLISHes into one buffer and write it once, and
//! subscribers acknowledge everything one read brought in one write.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::future::join_all;
use mqgate_codec::{ByteStr, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify, Semaphore};

use crate::clock::RunClock;
use crate::ledger::{quantile, Ledger};
use crate::plan::{publisher_id, Plan, RunConfig};
use crate::protocol::{AckKind, FromBroker, Hello, MqttVersion};
use crate::report::RunReport;
use crate::sampler::BrokerWatch;
use crate::wire::{self, stamp_payload, Connected};
use crate::{source_address, BenchError};

/// PUBLISHes encoded into one buffer before a write.
const BATCH: usize = 64;

/// How long the run waits for more deliveries once publishing is over and none arrive.
pub(crate) const DRAIN_IDLE: Duration = Duration::from_millis(1500);

/// Runs one traffic scenario to completion (or to its time bound) and reports it.
pub async fn run_traffic(config: &RunConfig) -> Result<RunReport, BenchError> {
    let plan = Arc::new(Plan::new(config)?);
    let clock = RunClock::start_now();
    let deadline = clock.deadline(config.seconds);
    let qos = if config.qos >= 1 {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    };
    let ledger = Arc::new(Ledger::new(config.messages, plan.receivers_per_message));
    let (stop_tx, stop_rx) = watch::channel(false);

    // Subscribers: connect and subscribe every group, then let them read.
    let total = plan.subscribers.len() + config.publisher_count();
    let salt = crate::source_salt();
    let per_task = config.connections_per_task.max(1);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(1024);
    let mut groups = Vec::new();
    for (g, chunk) in plan.subscribers.chunks(per_task).enumerate() {
        let chunk: Vec<(usize, String, Vec<String>)> = chunk
            .iter()
            .enumerate()
            .map(|(i, (id, f))| (g * per_task + i, id.clone(), f.clone()))
            .collect();
        let (ledger, stop, ready, target) = (
            ledger.clone(),
            stop_rx.clone(),
            ready_tx.clone(),
            config.target,
        );
        let latency = config.scenario == crate::Scenario::Latency;
        let version = config.mqtt;
        groups.push(tokio::spawn(async move {
            let mut conns = Vec::with_capacity(chunk.len());
            // Subscribers have no window of their own: no Receive Maximum (65 535), as 3.1.1
            // has no such limit.
            let hello = Hello::clean(version);
            for (index, id, filters) in chunk {
                let mut stream =
                    wire::open_tcp(target, source_address(target, index, salt)).await?;
                let mut rx = wire::handshake(&mut stream, &id, &hello).await?.rx;
                wire::subscribe(&mut stream, &mut rx, &filters, qos, version).await?;
                conns.push((index, stream, rx));
            }
            let _ = ready.send(()).await;
            let samples = read_all(conns, &ledger, clock, stop, latency, version).await;
            Ok::<Vec<u64>, BenchError>(samples)
        }));
    }
    drop(ready_tx);
    for _ in 0..groups.len() {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(())) => {}
            // A group failed: its error comes out of its join handle below.
            Ok(None) => break,
            Err(_) => return Err(BenchError::SetupTimeout),
        }
    }
    if let Some(failed) = first_finished_with_error(&mut groups).await {
        return Err(failed);
    }

    // Publishers.
    let watch = BrokerWatch::start(config.broker_pid);
    let generator_before = crate::procstat::sample_process(None);
    let started_ns = clock.now_ns();
    let publishers = config.publisher_count();
    let mut pub_conns = Vec::with_capacity(publishers);
    let hello = Hello {
        receive_maximum: (config.qos >= 1).then(|| window_of(config.inflight)),
        ..Hello::clean(config.mqtt)
    };
    let mut broker_receive_maximum = None;
    for p in 0..publishers {
        let target = config.publisher_target();
        let source = source_address(target, plan.subscribers.len() + p, salt);
        let mut stream = wire::open_tcp(target, source).await?;
        let connected = wire::handshake(&mut stream, &publisher_id(p), &hello).await?;
        if config.qos >= 1 && usize::from(connected.receive_maximum) < config.inflight {
            broker_receive_maximum = broker_receive_maximum
                .min(Some(connected.receive_maximum))
                .or(Some(connected.receive_maximum));
        }
        pub_conns.push((p, stream, connected));
    }
    let publish_task = {
        let (plan, ledger, config) = (plan.clone(), ledger.clone(), config.clone());
        tokio::spawn(async move {
            let runs = pub_conns.into_iter().map(|(p, stream, connected)| {
                publish(
                    stream, connected, p, &plan, &ledger, &config, clock, deadline,
                )
            });
            for result in join_all(runs).await {
                result?;
            }
            Ok::<(), BenchError>(())
        })
    };
    let publish_result = publish_task.await.map_err(join_error)?;

    // Drain: until every expected delivery arrived, nothing arrives for a while, or time is up.
    let mut last_unique = u64::MAX;
    let mut idle_since = clock.now_ns();
    let timed_out = loop {
        let unique = ledger.unique();
        if unique >= ledger.expected() {
            break false;
        }
        // Publishing stops at the deadline; what the broker already took (and acknowledged)
        // gets a grace period to arrive, so `acked_lost` never counts messages in transit.
        if tokio::time::Instant::now() >= deadline + DRAIN_IDLE {
            break true;
        }
        if unique != last_unique {
            last_unique = unique;
            idle_since = clock.now_ns();
        } else if unique > 0
            && clock.now_ns().saturating_sub(idle_since) > DRAIN_IDLE.as_nanos() as u64
        {
            // Nothing at all yet is a slow broker, not an idle one: wait for the bound.
            break false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = stop_tx.send(true);
    let mut samples = Vec::new();
    for group in groups {
        samples.extend(group.await.map_err(join_error)??);
    }
    publish_result?;
    samples.sort_unstable();

    let end_ns = ledger
        .last_delivery_ns
        .load(Ordering::Relaxed)
        .max(started_ns + 1);
    let duration_s = (end_ns - started_ns) as f64 / 1e9;
    let timed_out = timed_out || ledger.sent.load(Ordering::Relaxed) < config.messages;
    let unique = ledger.unique();
    let sent = ledger.sent.load(Ordering::Relaxed);
    let received = ledger.received.load(Ordering::Relaxed);
    let broker = watch.finish().await;
    let generator_after = crate::procstat::sample_process(None);
    let us = |q: f64| quantile(&samples, q).map(|ns| ns as f64 / 1e3);
    let qos_label = if qos == QoS::AtLeastOnce { 1 } else { 0 };
    Ok(RunReport {
        scenario: scenario_label(config, qos_label),
        broker: config.label.clone(),
        mqtt: config.mqtt,
        sent,
        acked: ledger.acked.count(),
        refused: ledger.refused.load(Ordering::Relaxed),
        broker_receive_maximum,
        received,
        lost: ledger.expected().saturating_sub(unique),
        duplicated: ledger.duplicated(),
        acked_lost: ledger.acked_lost(),
        deliveries_per_s: unique as f64 / duration_s.max(1e-9),
        duration_s,
        timed_out,
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        connections: total as u64,
        ..usage(broker, generator_before.zip(generator_after), unique)
    })
}

/// The scenario's name in reports: the latency scenario names its rate, so runs at different
/// rates are never summarized together, and MQTT 5 runs end in ` mqtt5`.
fn scenario_label(config: &RunConfig, qos: u8) -> String {
    let suffix = config.mqtt.scenario_suffix();
    if config.scenario == crate::Scenario::Latency {
        format!(
            "{} {}/s qos{qos} {}B{suffix}",
            config.scenario,
            config.rate.max(1),
            config.payload
        )
    } else {
        format!("{} qos{qos} {}B{suffix}", config.scenario, config.payload)
    }
}

/// The generator's QoS 1 window as an MQTT 5 Receive Maximum (1 ..= 65 535).
fn window_of(inflight: usize) -> u16 {
    u16::try_from(inflight.max(1)).unwrap_or(u16::MAX)
}

/// A report holding only the broker's and the generator's resource use over a run that
/// counted `units` (deliveries, or acknowledged messages).
pub(crate) fn usage(
    broker: Option<crate::BrokerUsage>,
    generator: Option<(crate::ProcessSample, crate::ProcessSample)>,
    units: u64,
) -> RunReport {
    RunReport {
        broker_cpu_s: broker.map(|b| b.cpu_s),
        broker_cpu_s_per_million: broker.map(|b| b.cpu_s / (units.max(1) as f64 / 1e6)),
        broker_rss_peak_kb: broker.map(|b| b.peak_rss_kb),
        broker_hwm_kb: broker.map(|b| b.end.hwm_kb),
        broker_rss_kb: broker.map(|b| b.end.rss_kb),
        generator_cpu_s: generator.map(|(a, b)| b.cpu_seconds - a.cpu_seconds),
        ..RunReport::default()
    }
}

pub(crate) fn join_error(e: tokio::task::JoinError) -> BenchError {
    BenchError::Io(std::io::Error::other(e))
}

/// If a subscriber group already failed (it never said ready), its error.
async fn first_finished_with_error(
    groups: &mut [tokio::task::JoinHandle<Result<Vec<u64>, BenchError>>],
) -> Option<BenchError> {
    for group in groups.iter_mut() {
        if group.is_finished() {
            return match group.await {
                Ok(Err(e)) => Some(e),
                Err(e) => Some(join_error(e)),
                Ok(Ok(_)) => None,
            };
        }
    }
    None
}

/// Reads every connection of a group (index, stream, bytes after CONNACK) until told to
/// stop; returns their delay samples (ns) when `latency` is set.
pub(crate) async fn read_all(
    conns: Vec<(usize, TcpStream, BytesMut)>,
    ledger: &Ledger,
    clock: RunClock,
    stop: watch::Receiver<bool>,
    latency: bool,
    version: MqttVersion,
) -> Vec<u64> {
    let loops = conns.into_iter().map(|(index, stream, rx)| {
        read_deliveries(
            stream,
            rx,
            index as u64,
            ledger,
            clock,
            stop.clone(),
            latency,
            version,
        )
    });
    join_all(loops).await.into_iter().flatten().collect()
}

/// Reads one subscriber connection until told to stop, recording every delivery and
/// acknowledging QoS 1 (PUBACK) and QoS 2 (PUBREC, then PUBCOMP for the PUBREL) ones;
/// returns delay samples (ns) when `latency` is set. The broker's DISCONNECT ends it.
#[allow(clippy::too_many_arguments)]
async fn read_deliveries(
    mut stream: TcpStream,
    mut rx: BytesMut,
    receiver: u64,
    ledger: &Ledger,
    clock: RunClock,
    mut stop: watch::Receiver<bool>,
    latency: bool,
    version: MqttVersion,
) -> Vec<u64> {
    let mut samples = Vec::new();
    let mut acks = BytesMut::new();
    rx.reserve(16 * 1024);
    loop {
        while let Ok(Some(packet)) = version.decode(&mut rx) {
            let reply = match packet {
                FromBroker::Publish {
                    stamp,
                    qos,
                    packet_id,
                } => {
                    if let Some((sequence, sent_ns)) = stamp {
                        let now = clock.now_ns();
                        ledger.record_delivery(sequence, receiver, now);
                        if latency {
                            samples.push(now.saturating_sub(sent_ns));
                        }
                    }
                    let kind = match qos {
                        QoS::ExactlyOnce => AckKind::PubRec,
                        _ => AckKind::PubAck,
                    };
                    packet_id.map(|id| (kind, id))
                }
                FromBroker::PubRel(id) => Some((AckKind::PubComp, id)),
                FromBroker::Disconnect(_) => {
                    wire::disconnect(stream).await;
                    return samples;
                }
                _ => None,
            };
            if let Some((kind, id)) = reply {
                let _ = version.encode_ack(kind, id, &mut acks);
            }
        }
        if !acks.is_empty() {
            if stream.write_all(&acks).await.is_err() {
                break;
            }
            acks.clear();
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            read = stream.read_buf(&mut rx) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
        }
    }
    wire::disconnect(stream).await;
    samples
}

/// Publishes publisher `p`'s share of the messages (`p`, `p + P`, `p + 2P`, ...), at QoS 1
/// with at most `--inflight` unacknowledged, or fewer if the broker's MQTT 5 Receive Maximum
/// says so.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn publish(
    stream: TcpStream,
    connected: Connected,
    p: usize,
    plan: &Plan,
    ledger: &Ledger,
    config: &RunConfig,
    clock: RunClock,
    deadline: tokio::time::Instant,
) -> Result<(), BenchError> {
    let step = config.publisher_count() as u64;
    let sequences = (p as u64..config.messages).step_by(step as usize);
    let qos1 = config.qos >= 1;
    let window = Semaphore::new(if qos1 {
        config
            .inflight
            .max(1)
            .min(usize::from(connected.receive_maximum.max(1)))
    } else {
        Semaphore::MAX_PERMITS
    });
    let in_flight: Vec<AtomicU64> = (0..=u16::MAX).map(|_| AtomicU64::new(0)).collect();
    let (read, write) = stream.into_split();
    let done = Notify::new();
    let finished = AtomicBool::new(false);
    let my_sent = AtomicU64::new(0);
    let writer = write_publishes(
        write, sequences, plan, ledger, config, clock, deadline, &window, &in_flight, &my_sent,
    );
    let writer = async {
        let result = writer.await;
        finished.store(true, Ordering::Release);
        done.notify_one();
        result
    };
    let acks = AckReader {
        ledger,
        window: &window,
        in_flight: &in_flight,
        my_sent: &my_sent,
        finished: &finished,
        done: &done,
        deadline,
        qos1,
        version: config.mqtt,
    };
    let reader = acks.run(read, connected.rx);
    let (write, read) = tokio::join!(writer, reader);
    let mut write = write?;
    read?;
    // DISCONNECT after the last acknowledgement, so the broker sees a clean goodbye.
    let _ = write.write_all(&[0xe0, 0x00]).await;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn write_publishes(
    mut write: OwnedWriteHalf,
    sequences: impl Iterator<Item = u64>,
    plan: &Plan,
    ledger: &Ledger,
    config: &RunConfig,
    clock: RunClock,
    deadline: tokio::time::Instant,
    window: &Semaphore,
    in_flight: &[AtomicU64],
    my_sent: &AtomicU64,
) -> Result<OwnedWriteHalf, BenchError> {
    let shared_topic = ByteStr::from_static(crate::plan::SHARED_TOPIC);
    let rate = (config.scenario == crate::Scenario::Latency).then_some(config.rate.max(1));
    let qos1 = config.qos >= 1;
    let mut out = BytesMut::with_capacity(BATCH * (config.payload + 64));
    let mut sequences = sequences.peekable();
    let mut n: u64 = 0;
    while sequences.peek().is_some() {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let mut batch = BATCH;
        if let Some(rate) = rate {
            // Messages due by now at the fixed rate, sent as soon as they are due.
            let due = clock.now_ns().saturating_mul(rate) / 1_000_000_000;
            let behind = due.saturating_sub(ledger.sent.load(Ordering::Relaxed));
            if behind == 0 {
                tokio::time::sleep(Duration::from_nanos(1_000_000_000 / rate)).await;
                continue;
            }
            batch = batch.min(usize::try_from(behind).unwrap_or(BATCH));
        }
        if qos1 {
            let first = tokio::select! {
                permit = window.acquire() => permit,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            let Ok(first) = first else { break };
            first.forget();
            let extra = (1..batch)
                .take_while(|_| window.try_acquire().map(|p| p.forget()).is_ok())
                .count();
            batch = 1 + extra;
        }
        for _ in 0..batch {
            let Some(sequence) = sequences.next() else {
                if qos1 {
                    window.add_permits(1);
                }
                continue;
            };
            let topic = if plan.single_topic() {
                shared_topic.clone()
            } else {
                ByteStr::try_from(plan.topic(sequence).0)
                    .map_err(|_| BenchError::InvalidPlan("topic"))?
            };
            let packet_id = qos1.then(|| wire::packet_id_for(n));
            if let Some(slot) = packet_id.and_then(|id| in_flight.get(usize::from(id.get()))) {
                slot.store(sequence + 1, Ordering::Relaxed);
            }
            n += 1;
            config.mqtt.encode_publish(
                if qos1 {
                    QoS::AtLeastOnce
                } else {
                    QoS::AtMostOnce
                },
                packet_id,
                topic,
                stamp_payload(sequence, clock.now_ns(), config.payload),
                &mut out,
            )?;
        }
        write.write_all(&out).await?;
        out.clear();
        ledger
            .sent
            .fetch_add(n - my_sent.load(Ordering::Relaxed), Ordering::Relaxed);
        my_sent.store(n, Ordering::Relaxed);
    }
    Ok(write)
}

/// The publisher's reading side: acknowledgements free the window and mark messages acked.
struct AckReader<'a> {
    ledger: &'a Ledger,
    window: &'a Semaphore,
    in_flight: &'a [AtomicU64],
    my_sent: &'a AtomicU64,
    finished: &'a AtomicBool,
    done: &'a Notify,
    deadline: tokio::time::Instant,
    qos1: bool,
    version: MqttVersion,
}

impl AckReader<'_> {
    /// Reads until every message written is acknowledged (QoS 1), the writer is done (QoS 0),
    /// or the grace after the deadline ran out. `rx` holds what came after the CONNACK.
    async fn run(self, mut read: OwnedReadHalf, mut rx: BytesMut) -> Result<(), BenchError> {
        rx.reserve(16 * 1024);
        let mut acked: u64 = 0;
        loop {
            let mut freed = 0;
            while let Some(packet) = self.version.decode(&mut rx)? {
                match packet {
                    FromBroker::PubAck {
                        packet_id,
                        accepted,
                    } => {
                        let slot = self.in_flight.get(usize::from(packet_id.get()));
                        if let Some(sequence) = slot
                            .map(|s| s.swap(0, Ordering::Relaxed))
                            .filter(|&s| s > 0)
                        {
                            if accepted {
                                self.ledger.acked.set(sequence - 1);
                            } else {
                                self.ledger.refused.fetch_add(1, Ordering::Relaxed);
                            }
                            acked += 1;
                            freed += 1;
                        }
                    }
                    FromBroker::Disconnect(code) => {
                        return Err(BenchError::Disconnected(format!(
                            "{} to a publisher",
                            crate::protocol::code_name(self.version, code)
                        )))
                    }
                    _ => {}
                }
            }
            self.window.add_permits(freed);
            if self.finished.load(Ordering::Acquire)
                && (!self.qos1 || acked >= self.my_sent.load(Ordering::Relaxed))
            {
                return Ok(());
            }
            tokio::select! {
                read = read.read_buf(&mut rx) => if read? == 0 { return Ok(()) },
                _ = self.done.notified() => {},
                // The last acknowledgements get the same grace as the last deliveries.
                _ = tokio::time::sleep_until(self.deadline + DRAIN_IDLE) => return Ok(()),
            }
        }
    }
}
