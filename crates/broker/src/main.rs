//! `mqgate`: run the reference broker.
//!
//! With no arguments it starts a local development broker: TCP on 127.0.0.1:1883,
//! WebSocket on 127.0.0.1:8083 at `/mqtt` and the HTTP API on 127.0.0.1:8090, anonymous
//! access allowed (and logged loudly).
//!
//! Built with the `bin` feature (on by default), which brings the command line parser, the
//! log subscriber and, on Unix with glibc, jemalloc as the allocator; the library needs none
//! of them (an embedder chooses its own allocator).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mqgate_broker::{Broker, BrokerConfig};

mod batched_log;

/// The mqgate MQTT broker (3.1.1 and 5).
/// jemalloc instead of glibc's allocator: message bodies are allocated by the threads that
/// read them (connections, page readers) and freed by others, and glibc's per-thread arenas
/// keep what was freed. In a drain of 10 000 sessions' backlogs (two runs each) jemalloc
/// peaked at 285-318 MB RSS against 362-386 MB, and ended it at 218 MB against 337-368 MB:
/// it returns unused pages to the system after a while.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(name = "mqgate", version, about)]
struct Args {
    /// TOML configuration file (see crates/broker/mqgate.example.toml). Without one, a local
    /// development broker starts with anonymous access allowed.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address of the MQTT/TCP listener (overrides the file).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Address of the MQTT/WebSocket listener (overrides the file).
    #[arg(long, value_name = "ADDR")]
    ws_listen: Option<SocketAddr>,
    /// Address of the HTTP API (overrides the file, and turns the API on).
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
    /// Data directory (overrides the file).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Allow clients without credentials (development only).
    #[arg(long)]
    allow_anonymous: bool,
}

fn main() -> ExitCode {
    // Log lines (a status event per connect and disconnect, at the default level) are written
    // in batches by a thread of their own (`batched_log`): a runtime worker appends a line to
    // a buffer and goes on; it never waits for stdout. The guard writes what is buffered when
    // `main` returns.
    let (writer, _flush_on_exit) = match batched_log::batched(std::io::stdout()) {
        Ok(log) => log,
        Err(error) => {
            eprintln!("mqgate: cannot start the log thread: {error}");
            return ExitCode::FAILURE;
        }
    };
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(writer)
        .with_ansi(colour)
        .init();
    let args = Args::parse();
    // Every connection is a file descriptor: take what the hard limit allows, as servers do.
    match mqgate_broker::raise_open_file_limit() {
        Ok((before, after)) if after > before => {
            tracing::info!(from = before, to = after, "open-file limit raised");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "open-file limit not raised"),
    }
    let mut config = match &args.config {
        Some(path) => match BrokerConfig::from_toml_file(path) {
            Ok(config) => config,
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "cannot load the configuration");
                return ExitCode::FAILURE;
            }
        },
        // The explicit development default: the only place anonymous access is on by itself.
        None => BrokerConfig {
            allow_anonymous: true,
            ..BrokerConfig::default()
        },
    };
    if let Some(addr) = args.listen {
        config.listeners.tcp = Some(addr);
    }
    if let Some(addr) = args.ws_listen {
        config.listeners.ws = Some(addr);
    }
    if let Some(addr) = args.http_listen {
        config.http.listen = addr;
        config.http.enabled = true;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    config.allow_anonymous |= args.allow_anonymous;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(Broker::builder().config(config).build().run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "broker stopped");
            ExitCode::FAILURE
        }
    }
}
