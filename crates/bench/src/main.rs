//! `mqgate-bench`: drive an MQTT 3.1.1 or 5 broker on this machine and report what it did.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mqgate_bench::{
    parse_reports, run, run_durable_drain, run_durable_fill, summarize, MqttVersion, RunConfig,
    Scenario,
};

/// Load generator for MQTT 3.1.1 and 5 brokers (loopback only unless told otherwise).
#[derive(Debug, Parser)]
#[command(name = "mqgate-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one scenario: one JSON line on stdout, a table row on stderr.
    Run(RunArgs),
    /// The durable scenario: `fill` persistent offline sessions with QoS 1 messages (the
    /// acknowledged ones are written to `--acked-file`), or, after the broker was killed and
    /// restarted, `drain` them and count acknowledged messages that were lost.
    Durable(DurableArgs),
    /// An AMQP 0-9-1 scenario of the cloud SDK's calls (confirmed publishes, or acknowledged
    /// deliveries from the parent topic's queue): one JSON line on stdout, a row on stderr.
    Amqp(AmqpArgs),
    /// Read JSON lines files and print medians and ratios as a markdown table.
    Summarize {
        /// Label of our broker, compared with the best of the others.
        #[arg(long, default_value = "mqgate")]
        ours: String,
        /// Results files (JSON lines).
        files: Vec<PathBuf>,
    },
    /// Read JSON lines files and write SVG charts: throughput.svg, connections.svg and
    /// latency.svg (those the results have data for).
    Chart {
        /// Directory the SVG files are written to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// What heads every chart: the run's date and name.
        #[arg(long, default_value = "")]
        label: String,
        /// Results files (JSON lines).
        files: Vec<PathBuf>,
    },
}

/// Which broker a run reports on.
#[derive(Debug, Clone, clap::Args)]
struct BrokerArgs {
    /// Label of the broker in the report.
    #[arg(long, default_value = "broker")]
    label: String,
    /// PID of the broker, for its CPU and memory from /proc.
    #[arg(long)]
    broker_pid: Option<u32>,
}

/// What every traffic run is given.
#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// Broker address.
    #[arg(long, default_value = "127.0.0.1:1883")]
    target: SocketAddr,
    #[command(flatten)]
    broker: BrokerArgs,
    /// Payload bytes (at least 16).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Messages to publish in total (durable drain: the same number as its fill).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Hard time bound in seconds, setup included.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Publisher connections (0: the scenario's default).
    #[arg(long, default_value_t = 0)]
    publishers: usize,
    /// Subscribers, wildcard filters, idle connections or persistent sessions (0: the
    /// scenario's default).
    #[arg(long, default_value_t = 0)]
    clients: usize,
    /// QoS 1 messages in flight per publisher.
    #[arg(long, default_value_t = 256)]
    inflight: usize,
    /// Connections scenario: handshakes in progress at once (a burst larger than a broker's
    /// listen backlog makes the kernel drop SYNs, which come back after 1 s).
    #[arg(long, default_value_t = 128)]
    handshakes: usize,
}

impl LoadArgs {
    fn config(self, scenario: Scenario, qos: u8) -> RunConfig {
        RunConfig {
            label: self.broker.label,
            broker_pid: self.broker.broker_pid,
            qos,
            payload: self.payload,
            messages: self.messages,
            seconds: self.seconds,
            publishers: self.publishers,
            clients: self.clients,
            inflight: self.inflight,
            handshakes: self.handshakes,
            ..RunConfig::new(self.target, scenario)
        }
    }
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// The scenario.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// QoS of publishes and subscriptions (0 or 1).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    qos: u8,
    /// Protocol of every connection: 3.1.1, or 5 (CONNECT at level 5 with Receive Maximum =
    /// --inflight for QoS 1 publishers, Session Expiry 0, Topic Alias Maximum 0; the QoS 1
    /// window shrinks to the broker's Receive Maximum). MQTT 5 scenario names end in " mqtt5".
    #[arg(long, value_enum, default_value_t = MqttVersion::V311)]
    mqtt: MqttVersion,
    /// Messages per second in the latency scenario.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Runtime worker threads of the generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Traffic scenarios: the publishers connect here instead of `--target` (another node
    /// of a cluster: every message crosses between the two).
    #[arg(long)]
    publish_to: Option<SocketAddr>,
    /// Allow a target outside 127.0.0.0/8 and ::1. Never needed for our benchmarks.
    #[arg(long)]
    allow_non_loopback: bool,
}

/// How the AMQP connections log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LoginKind {
    /// The cloud SDK's PLAIN login (instance, AccessKey, HMAC over `signKey`), vhost `MQTT`.
    Sdk,
    /// A plain user and password on `--vhost` (RabbitMQ: guest/guest on `/`).
    Plain,
}

#[derive(Debug, clap::Args)]
struct AmqpArgs {
    /// The broker's AMQP address.
    #[arg(long, default_value = "127.0.0.1:5672")]
    target: SocketAddr,
    #[command(flatten)]
    broker: BrokerArgs,
    /// What is measured.
    #[arg(long, value_enum)]
    scenario: mqgate_bench::AmqpScenario,
    /// How to log in.
    #[arg(long, value_enum, default_value_t = LoginKind::Sdk)]
    login: LoginKind,
    /// SDK login: the instance id.
    #[arg(long, default_value = "post-cn-bench")]
    instance: String,
    /// SDK login: the AccessKey id.
    #[arg(long, default_value = "LTAI_bench")]
    access_key: String,
    /// SDK login: the AccessKey secret.
    #[arg(long, default_value = "bench-secret")]
    secret: String,
    /// Plain login: user.
    #[arg(long, default_value = "guest")]
    user: String,
    /// Plain login: password.
    #[arg(long, default_value = "guest")]
    password: String,
    /// Plain login: virtual host.
    #[arg(long, default_value = "/")]
    vhost: String,
    /// Declare the exchanges `parent/bench` and `parent/dev/x` and the queue `parent`, bound
    /// to `parent/dev/x`, before the run (a general AMQP broker; mqgate refuses it).
    #[arg(long)]
    declare: bool,
    /// Consume scenario: who fills the queue (MQTT devices, or AMQP publishes).
    #[arg(long, value_enum, default_value_t = mqgate_bench::AmqpFeed::Mqtt)]
    feed: mqgate_bench::AmqpFeed,
    /// MQTT address of the broker for `--feed mqtt`.
    #[arg(long)]
    mqtt_target: Option<SocketAddr>,
    /// Publisher (feeder) connections.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Consumer connections (consume scenario).
    #[arg(long, default_value_t = 4)]
    consumers: usize,
    /// Unconfirmed publishes per publisher (1: the SDK's own pattern).
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// `basic.qos` prefetch count of each consumer.
    #[arg(long, default_value_t = 64)]
    prefetch: u16,
    /// Body bytes (at least 16).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Messages to publish in total.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Hard time bound in seconds, setup included.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Runtime worker threads of the generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Allow a target outside 127.0.0.0/8 and ::1.
    #[arg(long)]
    allow_non_loopback: bool,
}

impl AmqpArgs {
    fn config(&self) -> mqgate_bench::AmqpRunConfig {
        let login = match self.login {
            LoginKind::Sdk => {
                // The SDK signs its clock in epoch milliseconds.
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                mqgate_bench::AmqpLogin::sdk(
                    &self.instance,
                    &self.access_key,
                    &self.secret,
                    &ts.to_string(),
                )
            }
            LoginKind::Plain => {
                mqgate_bench::AmqpLogin::plain(&self.user, &self.password, &self.vhost)
            }
        };
        mqgate_bench::AmqpRunConfig {
            target: self.target,
            label: self.broker.label.clone(),
            broker_pid: self.broker.broker_pid,
            scenario: self.scenario,
            login,
            declare: self.declare,
            feed: self.feed,
            mqtt_target: self.mqtt_target,
            publishers: self.publishers,
            consumers: self.consumers,
            window: self.window,
            prefetch: self.prefetch,
            payload: self.payload,
            messages: self.messages,
            seconds: self.seconds,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    Fill,
    Drain,
}

#[derive(Debug, clap::Args)]
struct DurableArgs {
    /// `fill` (sessions subscribe and leave, publishers send) or `drain` (sessions return).
    #[arg(long, value_enum)]
    phase: Phase,
    /// Where `fill` writes the acknowledged sequence numbers and `drain` reads them.
    #[arg(long, value_name = "FILE")]
    acked_file: PathBuf,
    #[command(flatten)]
    load: LoadArgs,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => run_one(args),
        Command::Durable(args) => durable(args),
        Command::Amqp(args) => amqp(args),
        Command::Summarize { ours, files } => match read_reports(&files) {
            Ok(reports) => {
                print!("{}", summarize(&reports, &ours));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Chart { out, label, files } => match read_reports(&files) {
            Ok(reports) => chart(&reports, &out, &label),
            Err(code) => code,
        },
    }
}

/// Every report of `files`; a file that does not read or parse is reported and fails.
fn read_reports(files: &[PathBuf]) -> Result<Vec<mqgate_bench::RunReport>, ExitCode> {
    let mut reports = Vec::new();
    for file in files {
        let parsed = std::fs::read_to_string(file)
            .map_err(mqgate_bench::BenchError::from)
            .and_then(|text| parse_reports(&text));
        match parsed {
            Ok(r) => reports.extend(r),
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                return Err(ExitCode::FAILURE);
            }
        }
    }
    Ok(reports)
}

fn chart(reports: &[mqgate_bench::RunReport], out: &std::path::Path, label: &str) -> ExitCode {
    let charts = mqgate_bench::charts(reports, label);
    if charts.is_empty() {
        eprintln!("mqgate-bench chart: no results to draw");
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("{}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    for (name, svg) in charts {
        let path = out.join(name);
        if let Err(e) = std::fs::write(&path, svg) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

fn durable(args: DurableArgs) -> ExitCode {
    let config = args.load.config(Scenario::Durable, 1);
    if let Err(e) = mqgate_bench::check_target(config.target, false) {
        eprintln!("mqgate-bench: {e}");
        return ExitCode::FAILURE;
    }
    let file = args.acked_file;
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(mqgate_bench::BenchError::from)
        .and_then(|rt| {
            rt.block_on(async {
                match args.phase {
                    Phase::Fill => run_durable_fill(&config, &file).await,
                    Phase::Drain => run_durable_drain(&config, &file).await,
                }
            })
        });
    report(result, &config.scenario, config.target)
}

fn report(
    result: Result<mqgate_bench::RunReport, mqgate_bench::BenchError>,
    scenario: &dyn std::fmt::Display,
    target: SocketAddr,
) -> ExitCode {
    match result {
        Ok(report) => {
            match serde_json::to_string(&report) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("cannot serialise the report: {e}"),
            }
            eprintln!("{}", report.table_row());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mqgate-bench: {scenario} against {target}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_one(args: RunArgs) -> ExitCode {
    let config = RunConfig {
        rate: args.rate,
        mqtt: args.mqtt,
        publish_to: args.publish_to,
        ..args.load.config(args.scenario, args.qos)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(run(&config, args.allow_non_loopback)),
        Err(e) => Err(e.into()),
    };
    report(result, &config.scenario, config.target)
}

fn amqp(args: AmqpArgs) -> ExitCode {
    let config = args.config();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(mqgate_bench::run_amqp(&config, args.allow_non_loopback)),
        Err(e) => Err(e.into()),
    };
    report(result, &config.scenario, config.target)
}
