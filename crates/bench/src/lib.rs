//! # mqgate-bench
//!
//! A load generator for any MQTT 3.1.1 or 5 broker, built on tokio and `mqgate-codec`, and the
//! instrument behind `benches/compare.sh` (mqgate side by side with Mosquitto and rumqttd,
//! and its cloud SDK endpoint beside RabbitMQ: the AMQP 0-9-1 scenarios [`run_amqp`], with a
//! client of its own on `mqgate-amqp`'s frame codec, [`AmqpConn`]).
//!
//! ## The contract
//!
//! - It only connects to the address it is given, and refuses anything outside 127.0.0.0/8
//!   and `::1` unless `allow_non_loopback` is set ([`check_target`]).
//! - Every run is bounded by a message count and by seconds ([`RunConfig::messages`],
//!   [`RunConfig::seconds`]); when either runs out the clients send DISCONNECT and the run
//!   returns a [`RunReport`].
//! - It tries hard not to be the bottleneck: several connections per task, many PUBLISHes
//!   per write, and it reports its own CPU seconds next to the broker's so a reader can
//!   check.
//! - It speaks MQTT 3.1.1, or MQTT 5 when [`RunConfig::mqtt`] is [`MqttVersion::V5`], on one
//!   code path ([`MqttVersion`] picks the codec's packet types, [`FromBroker`] is what was read),
//!   and every report says which ([`RunReport::mqtt`]).
//! - Counting is exact: every payload carries its sequence number and send time, and a
//!   bitmap per expected delivery tells lost from duplicated; a second bitmap of PUBACKs
//!   tells whether the broker lost a message it had acknowledged.
//!
//! ```text
//!  publishers ──batched PUBLISH──▶ broker ──PUBLISH──▶ subscribers ──▶ Ledger (bits)
//!      ▲                                                  │
//!      └──────────────── PUBACK (QoS 1) ◀─────────────────┘ PUBACK to the broker
//!  /proc/PID/{stat,status} of the broker and /proc/self ──▶ RunReport (one JSON line)
//! ```
//!
//! ```no_run
//! use mqgate_bench::{run, RunConfig, Scenario};
//! # async fn example() -> Result<(), mqgate_bench::BenchError> {
//! let mut config = RunConfig::new("127.0.0.1:1883".parse().unwrap(), Scenario::FanIn);
//! config.qos = 1;
//! config.messages = 20_000;
//! let report = run(&config, false).await?;
//! assert_eq!(report.acked_lost, 0);
//! println!("{}", serde_json::to_string(&report).unwrap());
//! # Ok(()) }
//! ```
//!
//! What each scenario does and how each number is computed follows.
//!
#![doc = include_str!("rules.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod amqp;
mod amqp_load;
mod chart;
mod clock;
mod connections;
mod durable;
mod error;
mod ledger;
mod plan;
mod procstat;
mod protocol;
mod report;
mod safety;
mod sampler;
mod traffic;
mod wire;

pub use amqp::{
    amqp_message_id, encode_method, encode_publish, sdk_properties, AmqpConn, AmqpLogin, Confirms,
    Inbound, Incoming, CLIENT_FRAME_MAX,
};
pub use amqp_load::{
    declare, run_amqp, share, AmqpFeed, AmqpRunConfig, AmqpScenario, AMQP_FEED_TOPIC,
    AMQP_PUBLISH_TOPIC, AMQP_QUEUE,
};
pub use chart::charts;
pub use clock::RunClock;
pub use connections::run_connections;
pub use durable::{run_durable_drain, run_durable_fill};
pub use error::BenchError;
pub use ledger::{quantile, AtomicBits, Ledger};
pub use plan::{
    publisher_id, subscriber_id, wildcard_filter, wildcard_topic, Plan, RunConfig, Scenario,
};
pub use procstat::{
    parse_proc_texts, parse_stat_cpu_seconds, parse_status_kb, sample_process, ProcessSample,
};
pub use protocol::{code_name, AckKind, FromBroker, Hello, MqttVersion, KEEP_ALIVE_S};
pub use report::{parse_reports, summarize, RunReport};
pub use safety::{check_target, source_address, source_salt, CONNECTIONS_PER_SOURCE};
pub use sampler::{BrokerUsage, BrokerWatch};
pub use traffic::run_traffic;
pub use wire::{handshake, read_stamp, stamp_payload, subscribe, Connected, STAMP_LEN};

/// Feeds bytes from outside (a `/proc` file, a results file) to every parser the generator
/// has; the fuzz target `bench_parsers` and a proptest call it. It must never panic.
///
/// ```
/// mqgate_bench::parse_untrusted(b"1 (x) S 0 0 0 0 0 0 0 0 0 0 1 1\nVmRSS: 9 kB");
/// ```
pub fn parse_untrusted(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (stat, status) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = parse_proc_texts(stat, status);
    let _ = parse_status_kb(&text, "VmHWM");
    let _ = parse_reports(&text);
}

/// Checks the target, then runs `config`'s scenario.
pub async fn run(config: &RunConfig, allow_non_loopback: bool) -> Result<RunReport, BenchError> {
    check_target(config.target, allow_non_loopback)?;
    check_target(config.publisher_target(), allow_non_loopback)?;
    match config.scenario {
        Scenario::Connections => run_connections(config).await,
        Scenario::Durable => Err(BenchError::InvalidPlan(
            "durable runs in two phases: run_durable_fill, then run_durable_drain",
        )),
        _ => run_traffic(config).await,
    }
}

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
