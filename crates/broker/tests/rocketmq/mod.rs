//! A real RocketMQ for the bridge and cluster tests: the Rust name server and broker as
//! child processes (killed on drop), each test in its own temporary folder, and a RocketMQ
//! producer and consumer written directly on `rocketmq-client-rust` (not through the
//! bridge's adapter).
//!
//! The servers must run in a network namespace with only loopback (outside one they reach for
//! the host's external address): `scripts/test.sh` creates one and runs this test binary in
//! it. Elsewhere the tests say why they skip; with `MQGATE_REQUIRE_INTEROP=1` inside the
//! namespace, missing servers are a failure.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cheetah_string::CheetahString;
use mqgate_broker::{BrokerHandle, ListenerKind};
use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ClientRuntimeConfig, ConsumeConcurrentlyContext,
    ConsumeConcurrentlyStatus, DefaultMQProducer, DefaultMQPushConsumer, MQPushConsumer,
    MessageListenerConcurrently, TelemetryHandle,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};
use tokio::sync::mpsc;

/// Serialises the tests: each starts its own servers on the same ports.
pub static SERVERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const NS_PORT: u16 = 19876;
const BROKER_PORT: u16 = 20911;
const HA_PORT: u16 = 20912;
/// How long the servers may take to start or stop.
const SERVER_WAIT: Duration = Duration::from_secs(30);

fn bin_dir() -> PathBuf {
    std::env::var_os("MQGATE_ROCKETMQ_BIN").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/mqgate/rocketmq/bin")
        },
        PathBuf::from,
    )
}

/// The servers' folder: in memory (`/dev/shm`) when there is one. The 1.0.0 broker refuses
/// to start (its store "not writable") when the file system holding its store is over 90 %
/// used, which a shared build machine's disk can be; the test store needs under 100 MB.
fn server_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let in_memory = shm
        .is_dir()
        .then(|| tempfile::tempdir_in(shm).ok())
        .flatten();
    in_memory.unwrap_or_else(|| tempfile::tempdir().expect("temp dir"))
}

/// Whether this process sees only the loopback interface.
fn loopback_only() -> bool {
    std::fs::read_dir("/sys/class/net").is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .all(|entry| entry.file_name() == "lo")
    })
}

/// A server process, stopped (SIGTERM, then SIGKILL) on drop.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A name server and a broker in a temporary folder.
pub struct RocketMq {
    dir: tempfile::TempDir,
    bin: PathBuf,
    broker: Option<Server>,
    name_server: Option<Server>,
}

impl RocketMq {
    /// Starts both servers; `None` (with the reason on stderr) when the tests cannot run here.
    pub async fn start(test: &str) -> Option<RocketMq> {
        let required = std::env::var("MQGATE_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
        if !loopback_only() {
            eprintln!(
                "SKIPPED {test}: the tests against a real RocketMQ run inside a loopback-only network \
                 namespace (scripts/test.sh runs them with `ip netns exec`); this process \
                 sees other interfaces"
            );
            return None;
        }
        let bin = bin_dir();
        if !bin.join("rocketmq-broker-rust").exists() || !bin.join("rocketmq-namesrv-rust").exists()
        {
            let why = format!(
                "RocketMQ servers not found in {} (set MQGATE_ROCKETMQ_BIN; scripts/test.sh \
                 installs them)",
                bin.display()
            );
            assert!(!required, "{test}: {why}");
            eprintln!("SKIPPED {test}: {why}");
            return None;
        }
        let dir = server_dir();
        std::fs::create_dir_all(dir.path().join("home")).expect("home dir");
        let template = |name: &str| {
            let text = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/rocketmq")
                    .join(name),
            )
            .expect("config template");
            let text = text
                .replace("@DIR@", &dir.path().display().to_string())
                .replace("@NSPORT@", &NS_PORT.to_string())
                .replace("@PORT@", &BROKER_PORT.to_string())
                .replace("@HAPORT@", &HA_PORT.to_string());
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("config written");
            path
        };
        let namesrv_toml = template("namesrv.toml");
        template("broker.toml");
        let mut rocketmq = RocketMq {
            bin,
            broker: None,
            name_server: None,
            dir,
        };
        let port = NS_PORT.to_string();
        let ns = rocketmq.spawn(
            "rocketmq-namesrv-rust",
            &[
                "-c",
                &namesrv_toml.display().to_string(),
                "--bindAddress",
                "127.0.0.1",
                "--listenPort",
                &port,
            ],
            "namesrv.log",
        );
        rocketmq.name_server = Some(ns);
        wait_for_port(NS_PORT).await;
        rocketmq.start_broker().await;
        Some(rocketmq)
    }

    fn spawn(&self, program: &str, args: &[&str], log: &str) -> Server {
        let log = self.dir.path().join(log);
        // Appended, so a restarted server's log follows the first one's.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(self.bin.join(program))
            .args(args)
            .current_dir(self.dir.path())
            .env("ROCKETMQ_HOME", self.dir.path().join("home"))
            .env("ROCKETMQ_SECURITY_PROFILE", "development-insecure-loopback")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("server starts");
        Server { child, log }
    }

    /// Starts (or restarts) the broker and waits until it registered with the name server and
    /// finished starting. On a loaded machine the 1.0.0 broker sometimes rolls its start-up
    /// back ("core.service.failed") after registering; it is then started again (three tries).
    pub async fn start_broker(&mut self) {
        let config = self.dir.path().join("broker.toml").display().to_string();
        let ns = self.name_server_addr();
        for _ in 0..3 {
            let started = Instant::now();
            let mut broker = self.spawn(
                "rocketmq-broker-rust",
                &["-c", &config, "-n", &ns],
                "broker.log",
            );
            let log = broker.log.clone();
            let before = (count(&log, REGISTERED), count(&log, STARTED));
            loop {
                if count(&log, REGISTERED) > before.0 && count(&log, STARTED) > before.1 {
                    self.broker = Some(broker);
                    return;
                }
                if let Ok(Some(status)) = broker.child.try_wait() {
                    eprintln!("RocketMQ broker exited during start-up ({status}); starting again");
                    break;
                }
                assert!(
                    started.elapsed() < SERVER_WAIT,
                    "broker did not start within {SERVER_WAIT:?}; log: {}",
                    log.display()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("the RocketMQ broker failed to start three times");
    }

    /// Kills the broker (SIGKILL: a crash, no chance to tidy up).
    pub async fn kill_broker(&mut self) {
        if let Some(mut broker) = self.broker.take() {
            let _ = broker.child.kill();
            let _ = broker.child.wait();
        }
    }

    /// Stops the broker (SIGTERM, bounded wait).
    pub async fn stop_broker(&mut self) {
        if let Some(broker) = self.broker.take() {
            tokio::task::spawn_blocking(move || drop(broker))
                .await
                .expect("stopped");
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn name_server_addr(&self) -> String {
        format!("127.0.0.1:{NS_PORT}")
    }
}

impl Drop for RocketMq {
    fn drop(&mut self) {
        self.broker.take();
        self.name_server.take();
    }
}

/// The broker's log line once it registered with the name server.
const REGISTERED: &str = "Register broker to name remoting_server success";
/// The broker's log line once its start-up completed.
const STARTED: &str = "RocketMQ Broker(broker-a) started successfully";

fn count(log: &Path, line: &str) -> usize {
    std::fs::read_to_string(log)
        .map(|text| text.matches(line).count())
        .unwrap_or(0)
}

async fn wait_for_port(port: u16) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(started.elapsed() < SERVER_WAIT, "port {port} never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The client crate's runtime, as its README says to build it.
pub struct ClientSide {
    owner: Option<RuntimeOwner>,
    pub runtime: Arc<ClientRuntime>,
}

impl ClientSide {
    pub fn new() -> ClientSide {
        let mut config = RuntimeConfig::for_parallelism("test-rocketmq", 2);
        config.blocking_lane_policies.metadata_io.max_queue_depth = 4096;
        let owner = RuntimeOwner::plan(config)
            .expect("runtime config")
            .build()
            .expect("runtime");
        let runtime = ClientRuntime::try_new(
            owner.root_context().component("test"),
            ClientRuntimeConfig::default(),
            TelemetryHandle::noop(),
        )
        .expect("client runtime");
        ClientSide {
            owner: Some(owner),
            runtime,
        }
    }

    pub async fn producer(&self, ns: &str) -> DefaultMQProducer {
        let mut producer = DefaultMQProducer::builder(self.runtime.clone())
            .producer_group("GID_test_producer")
            .name_server_addr(ns)
            .build();
        producer.start().await.expect("producer starts");
        producer
    }

    /// A push consumer of `topic` in its own group, from the first offset.
    pub async fn consumer(&self, ns: &str, topic: &str, group: &str) -> Received {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut consumer = DefaultMQPushConsumer::builder(self.runtime.clone())
            .consumer_group(group)
            .name_server_addr(ns)
            .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
            .build();
        consumer.subscribe(topic, "*").await.expect("subscribe");
        consumer.register_message_listener_concurrently(Collect(tx));
        consumer.start().await.expect("consumer starts");
        Received {
            consumer,
            messages: rx,
        }
    }
}

impl Drop for ClientSide {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            let _ = owner.shutdown_background();
        }
    }
}

/// A message as a RocketMQ consumer sees it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub topic: String,
    pub tags: Option<String>,
    pub keys: Option<String>,
    pub properties: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// Where RocketMQ stored it: the topic's queue and the offset in that queue.
    pub queue_id: i32,
    pub queue_offset: i64,
}

impl Seen {
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }
}

struct Collect(mpsc::UnboundedSender<Seen>);

impl MessageListenerConcurrently for Collect {
    fn consume_message(
        &self,
        messages: &[&MessageExt],
        _context: &ConsumeConcurrentlyContext,
    ) -> ClientResult<ConsumeConcurrentlyStatus> {
        for message in messages {
            let properties = message
                .properties()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>();
            let _ = self.0.send(Seen {
                topic: message.topic().to_string(),
                tags: message.get_tags().map(|t| t.to_string()),
                keys: properties.get("KEYS").cloned(),
                body: message.body().map(|b| b.to_vec()).unwrap_or_default(),
                properties,
                queue_id: message.queue_id(),
                queue_offset: message.queue_offset(),
            });
        }
        Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
    }
}

/// A consumer and what it received.
pub struct Received {
    consumer: DefaultMQPushConsumer,
    pub messages: mpsc::UnboundedReceiver<Seen>,
}

impl Received {
    /// The next message, within `limit`.
    pub async fn next(&mut self, limit: Duration) -> Option<Seen> {
        tokio::time::timeout(limit, self.messages.recv())
            .await
            .ok()
            .flatten()
    }

    pub async fn stop(mut self) {
        self.consumer.shutdown().await;
    }
}

/// Sends one message with user properties, retrying (bounded) while the new topic's route
/// is being created.
pub async fn send(
    producer: &DefaultMQProducer,
    topic: &str,
    properties: &[(&str, &str)],
    body: &[u8],
) {
    let started = Instant::now();
    loop {
        let mut builder = Message::builder().topic(topic).body_slice(body);
        for (key, value) in properties {
            builder = builder
                .raw_property(
                    CheetahString::from_slice(key),
                    CheetahString::from_slice(value),
                )
                .expect("user property");
        }
        let message = builder.build().expect("message");
        match producer.send_with_timeout(message, 3000).await {
            Ok(Some(_)) => return,
            other => {
                assert!(
                    started.elapsed() < SERVER_WAIT,
                    "send of {} B to {topic} kept failing: {other:?}",
                    body.len()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// `GET /healthz`: the status code and the body.
pub async fn healthz(broker: &BrokerHandle) -> (u16, String) {
    http_get(broker, "/healthz").await
}

/// `GET {path}` on the broker's HTTP listener: the status code and the body.
pub async fn http_get(broker: &BrokerHandle, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = broker
        .local_addr(ListenerKind::Http)
        .expect("HTTP listener");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: mqgate\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("answer in time")
        .expect("answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}
