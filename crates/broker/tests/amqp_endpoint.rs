//! The cloud SDK endpoint served by the broker, over real sockets on 127.0.0.1, driven by
//! pika (a Python AMQP 0-9-1 client others wrote) speaking the SDK's calls
//! (`tests/amqp/sdk_client.py`), with rumqttc devices on the MQTT side, and the HTTP API's
//! message trace for what a send recorded. A missing pika makes
//! a test print SKIPPED, and fail under `MQGATE_REQUIRE_INTEROP=1`.

#![allow(clippy::unwrap_used)]

mod auth_support;
mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use bytes::BytesMut;
use mqgate_amqp::{Frame, Method, PROTOCOL_HEADER};
use mqgate_broker::{BrokerConfig, BrokerHandle, ListenerKind};
use rumqttc::QoS;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::timeout;

use support::process::BrokerProcess;
use support::{start_with, subscribe, Client, WAIT};

const INSTANCE: &str = "post-cn-amqp";
const AK: &str = "LTAI_AMQP";
const SECRET: &str = "amqp-secret";
/// A key that may publish only under `shop/#`.
const LIMITED_AK: &str = "LTAI_LIMITED";
const LIMITED_SECRET: &str = "limited-secret";
/// How long a pika conversation may take.
const CLIENT_WAIT: Duration = Duration::from_secs(40);

fn config() -> BrokerConfig {
    let text = format!(
        r#"
        storage = "memory"
        allow_anonymous = true
        [listeners]
        tcp = "127.0.0.1:0"
        amqp = "127.0.0.1:0"
        [http]
        listen = "127.0.0.1:0"
        [auth]
        instance_id = "{INSTANCE}"
        groups = ["GID_a", "GID_b"]
        [[auth.access_keys]]
        id = "{AK}"
        secret = "{SECRET}"
        [[auth.access_keys]]
        id = "{LIMITED_AK}"
        secret = "{LIMITED_SECRET}"
        publish = ["shop/#"]
        "#
    );
    let mut config = BrokerConfig::from_toml_str(&text).expect("test config parses");
    config.listeners.ws = None;
    config
}

fn pika_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import pika"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn skipped() -> bool {
    if pika_available() {
        return false;
    }
    assert!(
        std::env::var_os("MQGATE_REQUIRE_INTEROP").is_none(),
        "python3 with pika missing under MQGATE_REQUIRE_INTEROP"
    );
    eprintln!("SKIPPED: python3 with pika not installed");
    true
}

/// A running pika client and its output lines.
struct Pika {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Pika {
    fn spawn(broker: &BrokerHandle, key: (&str, &str), args: &[&str]) -> Pika {
        Pika::spawn_on(broker, ListenerKind::Amqp, None, key, args)
    }

    /// On the listener `kind`; with `ca`, over TLS checked against that CA certificate.
    fn spawn_on(
        broker: &BrokerHandle,
        kind: ListenerKind,
        ca: Option<&std::path::Path>,
        key: (&str, &str),
        args: &[&str],
    ) -> Pika {
        let port = broker.local_addr(kind).expect("amqp listener").port();
        Pika::spawn_at(port, ca, key, args)
    }

    /// On `port` of 127.0.0.1; with `ca`, over TLS checked against that CA certificate.
    fn spawn_at(port: u16, ca: Option<&std::path::Path>, key: (&str, &str), args: &[&str]) -> Pika {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/amqp/sdk_client.py");
        let mut command = Command::new("python3");
        if let Some(ca) = ca {
            command.env("MQGATE_AMQP_CA", ca);
        }
        let mut child = command
            .arg(script)
            .arg(port.to_string())
            .args([INSTANCE, key.0, key.1])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 starts");
        let stdout = child.stdout.take().expect("piped stdout");
        Pika {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next line, within [`CLIENT_WAIT`]; `None` at the end of its output.
    async fn line(&mut self) -> Option<String> {
        timeout(CLIENT_WAIT, self.lines.next_line())
            .await
            .expect("a line from pika in time")
            .expect("pika's output reads")
    }

    /// Lines until one starts with `prefix` (returned), failing at the end of output.
    async fn until(&mut self, prefix: &str) -> String {
        loop {
            match self.line().await {
                Some(line) if line.starts_with(prefix) => return line,
                Some(_) => {}
                None => panic!("pika ended before a line starting with {prefix:?}"),
            }
        }
    }

    /// Every remaining line, and waits for the process to end.
    async fn rest(mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.line().await {
            lines.push(line);
        }
        let _ = timeout(CLIENT_WAIT, self.child.wait()).await;
        lines
    }

    async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The fields of a `msg` line: redelivered, message id, parent, second topic, client id,
/// body.
fn fields(line: &str) -> Vec<String> {
    line.splitn(7, ' ').skip(1).map(str::to_owned).collect()
}

async fn run(broker: &BrokerHandle, key: (&str, &str), args: &[&str]) -> Vec<String> {
    Pika::spawn(broker, key, args).rest().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_instance_or_vhost_are_refused() {
    if skipped() {
        return;
    }
    let broker = start_with(config()).await;
    let ok = run(&broker, (AK, SECRET), &["login"]).await;
    assert_eq!(ok, ["accepted"]);
    for key in [(AK, "wrong-secret"), ("LTAI_UNKNOWN", SECRET)] {
        let lines = run(&broker, key, &["login"]).await;
        assert!(
            lines.len() == 1 && lines[0].starts_with("refused 403"),
            "{key:?}: {lines:?}"
        );
    }
    // The instance is part of the user name the script builds: a wrong one is refused.
    let port = broker.local_addr(ListenerKind::Amqp).unwrap().port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/amqp/sdk_client.py");
    let out = timeout(
        CLIENT_WAIT,
        Command::new("python3")
            .args([
                script,
                &port.to_string(),
                "post-cn-other",
                AK,
                SECRET,
                "login",
            ])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("refused 403"), "{text}");
    // Another virtual host: refused (530 NOT_ALLOWED, as docs/amqp.md says).
    let lines = run(&broker, (AK, SECRET), &["login", "other"]).await;
    assert!(
        lines.len() == 1 && lines[0].starts_with("refused"),
        "{lines:?}"
    );
    assert!(broker.metrics().amqp_connections >= 5);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_reaches_subscribers_and_p2p_targets_and_refusals_are_nacked() {
    if skipped() {
        return;
    }
    let mut config = config();
    config.listeners.ws = Some("127.0.0.1:0".parse().unwrap());
    let broker = start_with(config).await;
    let mut device = Client::connect(&broker, "GID_a@@@dev1", true).await;
    subscribe(&mut device, "parent/#", QoS::AtLeastOnce).await;
    let mut target = Client::connect(&broker, "GID_a@@@dev2", true).await;
    // A device on MQTT over WebSocket.
    let ws = broker.local_addr(ListenerKind::Ws).unwrap();
    let mut options =
        rumqttc::MqttOptions::new("GID_a@@@web", format!("ws://{ws}/mqtt"), ws.port());
    options.set_transport(rumqttc::Transport::Ws);
    let mut web = Client::with_options(options).await;
    subscribe(&mut web, "parent/sub/#", QoS::AtLeastOnce).await;
    let lines = run(
        &broker,
        (AK, SECRET),
        &["send", "parent/sub/x", "one", "two"],
    )
    .await;
    assert_eq!(lines, ["connected", "ack one", "ack two"]);
    for body in ["one", "two"] {
        for receiver in [&mut device, &mut web] {
            let p = receiver.next().await;
            assert_eq!(
                (p.topic.as_str(), &p.payload[..]),
                ("parent/sub/x", body.as_bytes())
            );
        }
    }
    let lines = run(
        &broker,
        (AK, SECRET),
        &["send", "parent/p2p/GID_a@@@dev2", "direct"],
    )
    .await;
    assert_eq!(lines, ["connected", "ack direct"]);
    let p = target.next().await;
    assert_eq!(&p.payload[..], b"direct");
    // The limited key may publish only under shop/#; an invalid topic is refused too.
    let lines = run(
        &broker,
        (LIMITED_AK, LIMITED_SECRET),
        &["send", "parent/x", "no"],
    )
    .await;
    assert_eq!(lines, ["connected", "nack no"]);
    let lines = run(&broker, (AK, SECRET), &["send", "bad/+/topic", "no"]).await;
    assert_eq!(lines, ["connected", "nack no"]);
    device.expect_nothing(Duration::from_millis(300)).await;
    let m = broker.metrics();
    assert_eq!((m.amqp_confirmed, m.amqp_publish_nacked), (3, 2));
    broker.shutdown().await;
}

/// A CA and a certificate for `127.0.0.1` and `localhost` it signed, as PEM files in `dir`:
/// (CA certificate, the broker's certificate and key).
fn test_pki(dir: &std::path::Path) -> (std::path::PathBuf, mqgate_broker::TlsFiles) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: with rcgen's default name on both, OpenSSL (under pika) takes the
    // leaf, whose issuer would equal its subject, for a self-signed certificate.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mqgate test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "mqgate test broker");
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    let files = mqgate_broker::TlsFiles {
        cert_pem: dir.join("cert.pem"),
        key_pem: dir.join("key.pem"),
    };
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    std::fs::write(&files.cert_pem, leaf.pem()).unwrap();
    std::fs::write(&files.key_pem, leaf_key.serialize_pem()).unwrap();
    (ca_pem, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_over_tls_logs_in_sends_and_refuses_plain_amqp() {
    if skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca, files) = test_pki(dir.path());
    let mut config = config();
    config.listeners.tls = Some(files);
    config.listeners.tls_addr = None;
    config.listeners.wss_addr = None;
    config.listeners.amqps_addr = Some("127.0.0.1:0".parse().unwrap());
    let broker = start_with(config).await;
    let amqps = broker
        .local_addr(ListenerKind::Amqps)
        .expect("an AMQPS listener");
    assert_ne!(Some(amqps), broker.local_addr(ListenerKind::Amqp));

    let mut device = Client::connect(&broker, "GID_a@@@tls-dev", true).await;
    subscribe(&mut device, "parent/#", QoS::AtLeastOnce).await;
    let lines = Pika::spawn_on(
        &broker,
        ListenerKind::Amqps,
        Some(&ca),
        (AK, SECRET),
        &["send", "parent/tls", "sealed"],
    )
    .rest()
    .await;
    assert_eq!(lines, ["connected", "ack sealed"]);
    let p = device.next().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("parent/tls", &b"sealed"[..])
    );
    // A wrong secret is refused over TLS as over plain TCP.
    let lines = Pika::spawn_on(
        &broker,
        ListenerKind::Amqps,
        Some(&ca),
        (AK, "wrong"),
        &["login"],
    )
    .rest()
    .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("refused"), "{lines:?}");

    // Plain AMQP on the TLS port gets no Connection.Start: the TLS handshake fails and the
    // broker closes the socket.
    let mut plain = TcpStream::connect(amqps).await.unwrap();
    plain.write_all(&PROTOCOL_HEADER).await.unwrap();
    let answer = read_to_close(&mut plain, WAIT).await;
    assert!(
        answer.first() != Some(&1) && !answer.windows(5).any(|w| w == b"PLAIN"),
        "a plain AMQP client got a Connection.Start from the TLS listener: {answer:?}"
    );
    broker.shutdown().await;
}

/// The configuration of the real binary on a redb store in `data`, with `extra` appended.
fn durable_process_config(data: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
        allow_anonymous = true
        storage = "redb"
        data_dir = {data:?}
        [listeners]
        tcp = "127.0.0.1:0"
        ws = "127.0.0.1:0"
        amqp = "127.0.0.1:0"
        [http]
        enabled = false
        [auth]
        instance_id = "{INSTANCE}"
        groups = ["GID_a"]
        [[auth.access_keys]]
        id = "{AK}"
        secret = "{SECRET}"
        {extra}
        "#,
        data = data.display().to_string()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_sends_to_a_persistent_session_survive_a_sigkill() {
    if skipped() {
        return;
    }
    // The real binary on a redb store, SIGKILLed while a backend sends: every send confirmed
    // before the kill reaches the offline persistent session after the restart, so a confirm
    // comes only once the message is stored for it.
    let dir = tempfile::tempdir().unwrap();
    let config = durable_process_config(&dir.path().join("data"), "");
    let broker = BrokerProcess::start(dir.path(), &config, &["tcp", "amqp"]);
    let keeper = |addr: std::net::SocketAddr| {
        let mut options = rumqttc::MqttOptions::new("GID_a@@@keeper", "127.0.0.1", addr.port());
        options.set_clean_session(false);
        options.set_keep_alive(Duration::from_secs(30));
        options
    };
    let mut sub = Client::with_options(keeper(broker.addr)).await;
    subscribe(&mut sub, "parent/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;

    let payloads: Vec<String> = (0..2000).map(|i| format!("k{i}")).collect();
    let mut args = vec!["send", "parent/kept"];
    args.extend(payloads.iter().map(String::as_str));
    let mut sender = Pika::spawn_at(broker.addrs["amqp"].port(), None, (AK, SECRET), &args);
    sender.until("connected").await;
    // Kill the broker after some confirms, while the backend is still sending.
    let mut confirmed = Vec::new();
    while confirmed.len() < 50 {
        let line = sender.line().await.expect("pika keeps sending");
        let body = line
            .strip_prefix("ack ")
            .expect("only confirms before the kill");
        confirmed.push(body.to_owned());
    }
    broker.kill();
    // Confirms that were on their way when the broker died count too.
    for line in sender.rest().await {
        if let Some(body) = line.strip_prefix("ack ") {
            confirmed.push(body.to_owned());
        }
    }

    let broker = BrokerProcess::start(dir.path(), &config, &["tcp", "amqp"]);
    let mut sub = Client::with_options(keeper(broker.addr)).await;
    assert!(sub.session_present);
    let mut got = Vec::new();
    while got.len() < confirmed.len() {
        let p = sub.next().await;
        got.push(String::from_utf8(p.payload.to_vec()).unwrap());
    }
    // In order, each confirmed one (more may follow: sent, stored, not confirmed in time).
    assert_eq!(got[..confirmed.len()], confirmed[..]);
    eprintln!(
        "{} of {} sends confirmed before the kill",
        confirmed.len(),
        payloads.len()
    );
    broker.kill();
}

/// A message trace query over the whole time range, answered 200.
async fn trace(broker: &BrokerHandle, action: &str, params: &[(&str, &str)]) -> serde_json::Value {
    let end = (mqgate_broker::clock::unix_time_ms() + 60_000).to_string();
    let mut all = vec![
        ("InstanceId", INSTANCE),
        ("MqttRegionId", "local"),
        ("BeginTime", "0"),
        ("EndTime", end.as_str()),
    ];
    all.extend_from_slice(params);
    auth_support::ok(&auth_support::api_get(broker, AK, SECRET, action, &all).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_is_traced_as_pub_mq_under_the_id_its_receiver_got() {
    if skipped() {
        return;
    }
    let broker = start_with(config()).await;
    let mut device = Client::connect(&broker, "GID_a@@@traced", true).await;
    subscribe(&mut device, "parent/#", QoS::AtLeastOnce).await;
    let lines = run(&broker, (AK, SECRET), &["send", "parent/t", "traced"]).await;
    assert_eq!(lines, ["connected", "ack traced"]);
    assert_eq!(&device.next().await.payload[..], b"traced");
    let page = [
        ("ClientId", "GID_a@@@traced"),
        ("CurrentPage", "1"),
        ("PageSize", "10"),
    ];
    let received = trace(&broker, "QueryMqttTraceMessageOfClient", &page).await;
    let list = received["MessageOfClientList"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{received}");
    assert_eq!(list[0]["Action"], "sub");
    let id = list[0]["MsgId"].as_str().unwrap().to_string();
    let how = trace(&broker, "QueryMqttTraceMessagePublish", &[("MsgId", &id)]).await;
    let entries = how["MessageTraceLists"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{how}");
    assert_eq!(entries[0]["Action"], "pub_mq");
    assert_eq!(entries[0]["MsgId"], id.as_str());
    drop(device);
    broker.shutdown().await;
}

/// Publishes `n` QoS 1 device messages `m0..` from `GID_a@@@dev1` to `parent/dev/x`, each
/// acknowledged by the broker.
async fn publish_devices(broker: &BrokerHandle, prefix: &str, n: usize) {
    publish_devices_at(support::tcp_addr(broker), prefix, n).await;
}

/// Publishes `n` QoS 1 messages `{prefix}0..` from `GID_a@@@dev1` to `parent/dev/x` on the
/// broker process at `addr`, each acknowledged.
async fn publish_devices_at(addr: std::net::SocketAddr, prefix: &str, n: usize) {
    publish_devices_to(addr, "parent/dev/x", prefix, n).await;
}

/// Publishes `n` QoS 1 messages `{prefix}0..` from `GID_a@@@dev1` to `topic` on the broker
/// at `addr`, each acknowledged.
async fn publish_devices_to(addr: std::net::SocketAddr, topic: &str, prefix: &str, n: usize) {
    let mut options = rumqttc::MqttOptions::new("GID_a@@@dev1", "127.0.0.1", addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(100);
    let mut device = Client::with_options(options).await;
    for i in 0..n {
        device
            .client
            .publish(topic, QoS::AtLeastOnce, false, format!("{prefix}{i}"))
            .await
            .unwrap();
    }
    device.acked(n).await;
    device.disconnect().await;
}

fn bodies(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("msg "))
        .map(|l| fields(l)[5].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_messages_go_to_each_consumer_once_with_their_headers() {
    if skipped() {
        return;
    }
    let broker = start_with(config()).await;
    let mut a = Pika::spawn(&broker, (AK, SECRET), &["consume", "parent", "10", "ack"]);
    let mut b = Pika::spawn(&broker, (AK, SECRET), &["consume", "parent", "10", "ack"]);
    a.until("consuming").await;
    b.until("consuming").await;
    // A cloud producer's message does not come back to the cloud consumers.
    let sent = run(
        &broker,
        (AK, SECRET),
        &["send", "parent/cloud", "from-cloud"],
    )
    .await;
    assert_eq!(sent, ["connected", "ack from-cloud"]);
    publish_devices(&broker, "m", 10).await;
    let (la, lb) = (a.rest().await, b.rest().await);
    let all: Vec<String> = bodies(&la).into_iter().chain(bodies(&lb)).collect();
    let unique: BTreeSet<_> = all.iter().cloned().collect();
    let expected: BTreeSet<_> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(all.len(), 10, "{la:?} {lb:?}");
    assert_eq!(unique, expected);
    for line in la.iter().chain(&lb).filter(|l| l.starts_with("msg ")) {
        let f = fields(line);
        assert_eq!(f[0], "false");
        assert!(
            f[1].len() == 32 && f[1].bytes().all(|c| c.is_ascii_hexdigit()),
            "{line}"
        );
        assert_eq!(
            (f[2].as_str(), f[3].as_str(), f[4].as_str()),
            ("parent", "/dev/x", "GID_a@@@dev1")
        );
    }
    let m = broker.metrics();
    assert_eq!((m.amqp_delivered, m.amqp_acked), (10, 10));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_deliveries_of_a_killed_consumer_go_to_another_redelivered() {
    if skipped() {
        return;
    }
    let broker = start_with(config()).await;
    let mut holder = Pika::spawn(&broker, (AK, SECRET), &["consume", "parent", "3", "hold"]);
    holder.until("consuming").await;
    publish_devices(&broker, "h", 3).await;
    holder.until("received 3").await;
    let mut other = Pika::spawn(&broker, (AK, SECRET), &["consume", "parent", "3", "ack"]);
    other.until("consuming").await;
    // Two consumers, each on a connection with one channel: the gauges say so.
    let m = broker.metrics();
    let open = |m: &mqgate_broker::MetricsSnapshot| {
        (
            m.amqp_connections_open,
            m.amqp_channels_open,
            m.amqp_consumers_open,
        )
    };
    assert_eq!(open(&m), (2, 2, 2));
    holder.kill().await;
    let lines = other.rest().await;
    let msgs: Vec<_> = lines.iter().filter(|l| l.starts_with("msg ")).collect();
    assert_eq!(msgs.len(), 3, "{lines:?}");
    assert!(msgs.iter().all(|l| fields(l)[0] == "true"), "{lines:?}");
    let got: BTreeSet<_> = bodies(&lines).into_iter().collect();
    assert_eq!(got, ["h0", "h1", "h2"].map(String::from).into());
    assert_eq!(broker.metrics().amqp_redelivered, 3);
    // Both connections ended: the gauges come back to 0 (within a bounded wait).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let m = broker.metrics();
        if open(&m) == (0, 0, 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gauges still at {:?} connections, channels, consumers",
            open(&m)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_wait_in_the_queue_until_a_consumer_attaches() {
    if skipped() {
        return;
    }
    let broker = start_with(config()).await;
    // The first consume makes the queue; it then outlives its consumers.
    let first = run(&broker, (AK, SECRET), &["consume", "parent", "0", "ack"]).await;
    assert!(first.contains(&"consuming".to_owned()), "{first:?}");
    publish_devices(&broker, "w", 4).await;
    let lines = run(&broker, (AK, SECRET), &["consume", "parent", "4", "ack"]).await;
    assert_eq!(bodies(&lines), ["w0", "w1", "w2", "w3"], "{lines:?}");
    broker.shutdown().await;
}

/// Consumes up to `n` messages of the queue `parent` on the broker process, acknowledging
/// each; pika's lines.
async fn consume_at(broker: &BrokerProcess, n: usize) -> Vec<String> {
    let port = broker.addrs["amqp"].port();
    let n = n.to_string();
    Pika::spawn_at(port, None, (AK, SECRET), &["consume", "parent", &n, "ack"])
        .rest()
        .await
}

/// The binary on a new redb store in `dir`, with a pika consumer (`consume` with `args`)
/// that is consuming; the configuration to restart it with.
async fn holding(dir: &std::path::Path, args: &[&str]) -> (String, BrokerProcess, Pika) {
    let config = durable_process_config(&dir.join("data"), "");
    let broker = BrokerProcess::start(dir, &config, &["tcp", "amqp"]);
    let port = broker.addrs["amqp"].port();
    let mut consume = vec!["consume"];
    consume.extend_from_slice(args);
    let mut holder = Pika::spawn_at(port, None, (AK, SECRET), &consume);
    holder.until("consuming").await;
    (config, broker, holder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_queue_keeps_device_messages_across_a_sigkill() {
    if skipped() {
        return;
    }
    // The queue exists from start-up (configuration), no consumer ever attached before the
    // broker is SIGKILLed: every message a device got its PUBACK for is consumed after the
    // restart, in order, none twice. A device's queue would hold only 100; the endpoint's
    // queue has its own bound, in the store too.
    let dir = tempfile::tempdir().unwrap();
    let extra = "[session]\nmax_queued_messages = 100\n[amqp]\nqueues = [\"parent\"]";
    let config = durable_process_config(&dir.path().join("data"), extra);
    let broker = BrokerProcess::start(dir.path(), &config, &["tcp", "amqp"]);
    publish_devices_at(broker.addr, "d", 300).await;
    broker.kill();

    let broker = BrokerProcess::start(dir.path(), &config, &["tcp", "amqp"]);
    let lines = consume_at(&broker, 300).await;
    let expected: Vec<String> = (0..300).map(|i| format!("d{i}")).collect();
    assert_eq!(bodies(&lines), expected, "{lines:?}");
    for line in lines.iter().filter(|l| l.starts_with("msg ")) {
        let f = fields(line);
        assert_eq!(
            (f[0].as_str(), f[2].as_str(), f[4].as_str()),
            ("false", "parent", "GID_a@@@dev1"),
            "{line}"
        );
    }
    // Acknowledged: gone from the store, so the next restart brings back at most the few
    // whose acknowledgement the broker had not saved yet when it was killed (right after the
    // consumer's last ack), each marked redelivered, and then only what came since.
    broker.kill();
    let broker = BrokerProcess::start(dir.path(), &config, &["tcp", "amqp"]);
    publish_devices_at(broker.addr, "after", 1).await;
    let lines = consume_at(&broker, 301).await;
    let got = bodies(&lines);
    assert_eq!(got.last().map(String::as_str), Some("after0"), "{lines:?}");
    for line in lines.iter().filter(|l| l.starts_with("msg ")) {
        let f = fields(line);
        assert!(f[5] == "after0" || f[0] == "true", "{line}");
    }
    assert!(got.len() < 300, "acknowledged ones kept: {lines:?}");
    broker.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_made_by_a_consume_and_its_unacked_deliveries_survive_a_restart() {
    if skipped() {
        return;
    }
    // No `[amqp] queues`: the first consume makes the queue, which the store brings back.
    // Deliveries held unacknowledged when the broker dies come again, marked redelivered,
    // in order, none lost.
    let dir = tempfile::tempdir().unwrap();
    let (config, broker, mut holder) = holding(dir.path(), &["parent", "3", "hold"]).await;
    publish_devices_at(broker.addr, "u", 10).await;
    holder.until("received 3").await;
    broker.kill();
    holder.kill().await;

    let broker = BrokerProcess::start(dir.path(), &config, &["tcp", "amqp"]);
    let lines = consume_at(&broker, 10).await;
    let expected: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    assert_eq!(bodies(&lines), expected, "{lines:?}");
    let flags: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("msg "))
        .map(|l| fields(l)[0].clone())
        .collect();
    // The three the dead consumer held at least; the rest were handed out too (in flight
    // in the queue's session, waiting for a consumer with room), so may be marked as well.
    assert_eq!(flags[..3], ["true", "true", "true"], "{lines:?}");
    broker.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_keeps_everything_up_to_its_bound_and_counts_the_overflow() {
    if skipped() {
        return;
    }
    // A window of 10 handed out and 50 waiting: 60 in all.
    let mut config = config();
    config.amqp.inflight_window = 10;
    config.amqp.max_queued_messages = 50;
    let broker = start_with(config).await;
    let first = run(&broker, (AK, SECRET), &["consume", "parent", "0", "ack"]).await;
    assert!(first.contains(&"consuming".to_owned()), "{first:?}");
    // Published faster than anyone consumes (nobody does): up to the bound, nothing is lost.
    publish_devices(&broker, "a", 60).await;
    let lines = run(&broker, (AK, SECRET), &["consume", "parent", "60", "ack"]).await;
    let expected: Vec<String> = (0..60).map(|i| format!("a{i}")).collect();
    assert_eq!(bodies(&lines), expected, "{lines:?}");
    assert_eq!(broker.metrics().queue_full_dropped, 0);

    // 70 more: the 10 handed out stay, the oldest 10 of those waiting are dropped, counted.
    publish_devices(&broker, "b", 70).await;
    // The queue's task takes them from its inbox a moment after the PUBACKs: a bounded wait.
    let wanted = [
        "mqgate_amqp_queue_dropped_total{queue=\"parent\"} 10\n",
        "mqgate_amqp_queue_depth{queue=\"parent\"} 60\n",
    ];
    metrics_with(&broker, &wanted).await;
    assert_eq!(broker.metrics().queue_full_dropped, 10);
    let lines = run(&broker, (AK, SECRET), &["consume", "parent", "60", "ack"]).await;
    let expected: Vec<String> = (0..10).chain(20..70).map(|i| format!("b{i}")).collect();
    assert_eq!(bodies(&lines), expected, "{lines:?}");
    broker.shutdown().await;
}

/// What cloud producers send (here through this endpoint, to a topic under the queue's
/// parent topic) is not for the cloud consumers, and takes no place in their queue, also
/// while it waits in the store for a consumer after a restart: a full bound of device
/// messages published after it is all kept, nothing dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_through_the_endpoint_take_no_place_in_a_queue() {
    if skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let durable = || {
        let mut config = durable_config(dir.path());
        config.amqp.inflight_window = 10;
        config.amqp.max_queued_messages = 50;
        config
    };
    let broker = auth_support::start_retrying(durable).await;
    let first = run(&broker, (AK, SECRET), &["consume", "parent", "0", "ack"]).await;
    assert!(first.contains(&"consuming".to_owned()), "{first:?}");
    broker.shutdown().await;
    drop(broker);
    let broker = auth_support::start_retrying(durable).await;
    let bodies_sent: Vec<String> = (0..70).map(|i| format!("s{i}")).collect();
    let mut args = vec!["send", "parent/x"];
    args.extend(bodies_sent.iter().map(String::as_str));
    let lines = run(&broker, (AK, SECRET), &args).await;
    assert_eq!(lines.len(), 71, "{lines:?}");
    assert!(
        lines[1..].iter().all(|l| l.starts_with("ack ")),
        "{lines:?}"
    );
    publish_devices(&broker, "d", 50).await;
    let lines = run(&broker, (AK, SECRET), &["consume", "parent", "50", "ack"]).await;
    let expected: Vec<String> = (0..50).map(|i| format!("d{i}")).collect();
    assert_eq!(bodies(&lines), expected, "{lines:?}");
    assert_eq!(broker.metrics().queue_full_dropped, 0);
    broker.shutdown().await;
}

/// [`config`] on a redb store in `dir`, for an in-process restart.
fn durable_config(dir: &std::path::Path) -> BrokerConfig {
    let mut config = config();
    config.storage = mqgate_broker::StorageKind::Redb;
    config.data_dir = dir.to_path_buf();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_queue_is_gone_with_what_it_held_also_after_a_restart() {
    if skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let durable = || durable_config(dir.path());
    let broker = auth_support::start_retrying(durable).await;
    let first = run(&broker, (AK, SECRET), &["consume", "parent", "0", "ack"]).await;
    assert!(first.contains(&"consuming".to_owned()), "{first:?}");
    publish_devices(&broker, "old", 3).await;
    assert!(broker.remove_amqp_queue("parent").await);
    assert!(!broker.remove_amqp_queue("parent").await);
    assert!(!broker.remove_amqp_queue("never").await);
    // No queue collects for the parent topic now.
    publish_devices(&broker, "between", 2).await;
    broker.shutdown().await;
    drop(broker);

    // Not brought back by the restart: the next consume makes a new, empty queue.
    let broker = auth_support::start_retrying(durable).await;
    a_consume_makes_a_new_empty_queue(&broker).await;
    broker.shutdown().await;
}

/// A consume on `parent` (a queue that does not exist) gets only what is published after it.
async fn a_consume_makes_a_new_empty_queue(broker: &BrokerHandle) {
    let mut consumer = Pika::spawn(broker, (AK, SECRET), &["consume", "parent", "1", "ack"]);
    consumer.until("consuming").await;
    publish_devices(broker, "new", 1).await;
    let lines = consumer.rest().await;
    assert_eq!(bodies(&lines), ["new0"], "{lines:?}");
}

/// Waits (bounded) until the broker's `/metrics` has every line of `wanted`; the text.
async fn metrics_with(broker: &BrokerHandle, wanted: &[&str]) -> String {
    let addr = broker
        .local_addr(ListenerKind::Http)
        .expect("http listener");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let metrics = auth_support::http(addr, "GET", "/metrics", &[], b"")
            .await
            .body;
        if wanted.iter().all(|line| metrics.contains(line)) {
            return metrics;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_taken_out_of_the_configuration_is_removed_at_the_next_start() {
    if skipped() {
        return;
    }
    // A queue `[amqp] queues` declared lasts until the configuration no longer names it: the
    // next start removes it with what it held (dropped and counted). A queue a consume made
    // is not the configuration's to remove: it stays.
    let dir = tempfile::tempdir().unwrap();
    let with_queues = |queues: &[&str]| {
        let mut config = durable_config(dir.path());
        config.amqp.queues = queues.iter().map(|q| (*q).to_owned()).collect();
        config
    };
    let broker = auth_support::start_retrying(|| with_queues(&["parent"])).await;
    let made = run(&broker, (AK, SECRET), &["consume", "made", "0", "ack"]).await;
    assert!(made.contains(&"consuming".to_owned()), "{made:?}");
    publish_devices(&broker, "d", 3).await;
    publish_devices_to(support::tcp_addr(&broker), "made/dev/x", "m", 2).await;
    metrics_with(
        &broker,
        &[
            "mqgate_amqp_queue_depth{queue=\"parent\"} 3\n",
            "mqgate_amqp_queue_depth{queue=\"made\"} 2\n",
        ],
    )
    .await;
    broker.shutdown().await;
    drop(broker);

    // Still declared: the restart keeps it, with what waits in it.
    let broker = auth_support::start_retrying(|| with_queues(&["parent"])).await;
    metrics_with(&broker, &["mqgate_amqp_queue_depth{queue=\"parent\"} 3\n"]).await;
    broker.shutdown().await;
    drop(broker);

    // Taken out of the list: gone at start, its three messages counted as dropped.
    let broker = auth_support::start_retrying(|| with_queues(&[])).await;
    // (What "made" holds was handed out to its consumer-less session before: in flight
    // there, not waiting, so its depth is 0 until a consumer attaches.)
    let metrics = metrics_with(&broker, &["mqgate_amqp_queue_depth{queue=\"made\"}"]).await;
    assert!(!metrics.contains("queue=\"parent\""), "{metrics}");
    assert_eq!(broker.metrics().session_dropped, 3);
    // The consume-made queue kept its messages; a consume on the removed one makes a new,
    // empty queue.
    let lines = run(&broker, (AK, SECRET), &["consume", "made", "2", "ack"]).await;
    assert_eq!(bodies(&lines), ["m0", "m1"], "{lines:?}");
    a_consume_makes_a_new_empty_queue(&broker).await;
    broker.shutdown().await;
    drop(broker);

    // Made by that consume now, not declared: a start without it in the list keeps it.
    let broker = auth_support::start_retrying(|| with_queues(&[])).await;
    publish_devices(&broker, "kept", 1).await;
    let lines = run(&broker, (AK, SECRET), &["consume", "parent", "1", "ack"]).await;
    assert_eq!(bodies(&lines), ["kept0"], "{lines:?}");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_graceful_restart_acknowledged_messages_do_not_come_again() {
    if skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let durable = || durable_config(dir.path());
    let broker = auth_support::start_retrying(durable).await;
    let mut consumer = Pika::spawn(&broker, (AK, SECRET), &["consume", "parent", "20", "ack"]);
    consumer.until("consuming").await;
    publish_devices(&broker, "g", 20).await;
    assert_eq!(bodies(&consumer.rest().await).len(), 20);
    publish_devices(&broker, "h", 2).await;
    broker.shutdown().await;
    drop(broker);

    // The queue is back (made by the consume before), with the two not yet consumed only
    // (marked redelivered: the queue had handed them out, to no consumer, when it stopped).
    let broker = auth_support::start_retrying(durable).await;
    let lines = run(&broker, (AK, SECRET), &["consume", "parent", "3", "ack"]).await;
    assert_eq!(bodies(&lines), ["h0", "h1"], "{lines:?}");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_notices_of_one_group_arrive_in_order() {
    if skipped() {
        return;
    }
    let broker = start_with(config()).await;
    let mut status = Pika::spawn(
        &broker,
        (AK, SECRET),
        &["consume", "STATUS", "3", "ack", "GID_a"],
    );
    status.until("consuming").await;
    let other = Client::connect(&broker, "GID_b@@@x", true).await;
    let device = Client::connect(&broker, "GID_a@@@dev7", true).await;
    device.disconnect().await;
    other.disconnect().await;
    let lines = status.rest().await;
    let events: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l.starts_with("msg "))
        .map(|l| serde_json::from_str(&fields(l)[5]).unwrap())
        .collect();
    // dev7's connect, disconnect and tcpclean, in order; nothing of GID_b's client, whose
    // connect came first.
    let kinds: Vec<_> = events.iter().map(|e| e["eventType"].clone()).collect();
    assert_eq!(kinds, ["connect", "disconnect", "tcpclean"], "{lines:?}");
    for event in &events {
        assert_eq!(event["clientId"], "GID_a@@@dev7");
        assert!(event["channelId"].as_str().is_some_and(|c| !c.is_empty()));
        assert_eq!(event["channelId"], events[0]["channelId"]);
    }
    broker.shutdown().await;
}

/// The event types of the status notices in pika's `msg` lines, and their redelivered flags.
fn notices(lines: &[String]) -> (Vec<serde_json::Value>, Vec<String>) {
    lines
        .iter()
        .filter(|l| l.starts_with("msg "))
        .map(|l| {
            let f = fields(l);
            let event: serde_json::Value = serde_json::from_str(&f[5]).unwrap();
            (event["eventType"].clone(), f[0].clone())
        })
        .unzip()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_notices_held_unacked_survive_a_sigkill() {
    if skipped() {
        return;
    }
    // A group's status queue is stored like a parent topic's: notices a consumer held
    // unacknowledged when the broker died come again after the restart, in order.
    let dir = tempfile::tempdir().unwrap();
    let status = ["STATUS", "3", "hold", "GID_a"];
    let (config, broker, mut holder) = holding(dir.path(), &status).await;
    let options = rumqttc::MqttOptions::new("GID_a@@@dev7", "127.0.0.1", broker.addr.port());
    Client::with_options(options).await.disconnect().await;
    holder.until("received 3").await;
    broker.kill();
    holder.kill().await;

    let broker = BrokerProcess::start(dir.path(), &config, &["tcp", "amqp"]);
    let port = broker.addrs["amqp"].port();
    let status = ["consume", "STATUS", "3", "ack", "GID_a"];
    let lines = Pika::spawn_at(port, None, (AK, SECRET), &status)
        .rest()
        .await;
    let (kinds, flags) = notices(&lines);
    assert_eq!(kinds, ["connect", "disconnect", "tcpclean"], "{lines:?}");
    assert_eq!(flags, ["true", "true", "true"], "{lines:?}");
    broker.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_an_idle_connection_open() {
    if skipped() {
        return;
    }
    let broker = start_with(config()).await;
    // Heartbeat 1 s, idle 3.5 s: pika's heartbeats keep it open past two intervals.
    let lines = run(&broker, (AK, SECRET), &["idle", "1", "3.5"]).await;
    assert_eq!(lines, ["connected", "still open True"]);
    broker.shutdown().await;
}

/// A raw AMQP socket that logs in with `heartbeat` and then says nothing more.
async fn raw_login(broker: &BrokerHandle, heartbeat: u16) -> TcpStream {
    let addr = broker.local_addr(ListenerKind::Amqp).unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let ts = "1700000000000";
    let user = mqgate_amqp::SdkUser {
        instance_id: INSTANCE.into(),
        access_key_id: AK.into(),
        security_token: None,
    };
    let response = format!(
        "\0{}\0{}",
        user.username(),
        mqgate_amqp::sdk_password(SECRET, ts)
    );
    let mut wire = BytesMut::from(&PROTOCOL_HEADER[..]);
    for method in [
        Method::ConnectionStartOk {
            client_properties: mqgate_amqp::FieldTable::new()
                .with("signKey", mqgate_amqp::FieldValue::long_str(ts)),
            mechanism: "PLAIN".into(),
            response: response.into(),
            locale: "en_US".into(),
        },
        Method::ConnectionTuneOk {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat,
        },
        Method::ConnectionOpen {
            virtual_host: "MQTT".into(),
        },
    ] {
        Frame::Method { channel: 0, method }
            .encode(&mut wire)
            .unwrap();
    }
    stream.write_all(&wire).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sends_are_routed_in_order_and_each_confirmed() {
    // A backend that does not wait for each confirm (RabbitMQ clients may stream publishes):
    // the endpoint keeps reading while earlier sends settle, routes them in the order sent,
    // and confirms every one.
    const N: u64 = 300;
    let broker = start_with(config()).await;
    let mut device = Client::connect(&broker, "GID_a@@@pipe", true).await;
    subscribe(&mut device, "parent/pipe", QoS::AtLeastOnce).await;
    let mut stream = raw_login(&broker, 0).await;
    let mut wire = BytesMut::new();
    let mut frames = vec![
        Frame::Method {
            channel: 1,
            method: Method::ChannelOpen,
        },
        Frame::Method {
            channel: 1,
            method: Method::ConfirmSelect { nowait: false },
        },
    ];
    for i in 0..N {
        let body = bytes::Bytes::from(format!("p{i}"));
        frames.push(Frame::Method {
            channel: 1,
            method: Method::BasicPublish {
                exchange: "parent/pipe".into(),
                routing_key: "parent/pipe".into(),
                mandatory: false,
                immediate: false,
            },
        });
        frames.push(Frame::Header {
            channel: 1,
            header: mqgate_amqp::ContentHeader {
                body_size: body.len() as u64,
                properties: mqgate_amqp::BasicProperties::default(),
            },
        });
        frames.push(Frame::Body {
            channel: 1,
            payload: body,
        });
    }
    for frame in frames {
        frame.encode(&mut wire).unwrap();
    }
    stream.write_all(&wire).await.unwrap();

    // Every delivery tag 1..=N acknowledged (singly or by `multiple`), none refused.
    let decoder = mqgate_amqp::FrameDecoder::new(131_072);
    let mut buf = BytesMut::new();
    let mut confirmed = 0u64;
    while confirmed < N {
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            if let Frame::Method { channel: 1, method } = frame {
                match method {
                    Method::BasicAck {
                        delivery_tag,
                        multiple,
                    } => {
                        assert!(
                            multiple && delivery_tag > confirmed || delivery_tag == confirmed + 1,
                            "confirm {delivery_tag} (multiple {multiple}) after {confirmed}"
                        );
                        confirmed = delivery_tag;
                    }
                    Method::BasicNack { .. } => panic!("a send was refused: {method:?}"),
                    _ => {}
                }
            }
        }
        if confirmed >= N {
            break;
        }
        let n = timeout(WAIT, stream.read_buf(&mut buf))
            .await
            .expect("confirms in time")
            .unwrap();
        assert!(n > 0, "the endpoint closed the connection");
    }
    for i in 0..N {
        assert_eq!(device.next().await.payload, format!("p{i}").as_bytes());
    }
    assert_eq!(broker.metrics().amqp_confirmed, N);
    broker.shutdown().await;
}

/// Reads until the server closes the socket, within `limit`; what it sent.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut all = Vec::new();
    timeout(limit, stream.read_to_end(&mut all))
        .await
        .expect("the server closes the connection in time")
        .ok();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_two_heartbeat_intervals() {
    let broker = start_with(config()).await;
    let mut stream = raw_login(&broker, 1).await;
    let sent = read_to_close(&mut stream, Duration::from_secs(10)).await;
    // start, tune, open-ok, then heartbeats (type 8) before the close.
    assert!(sent.windows(8).any(|w| w == [8, 0, 0, 0, 0, 0, 0, 0xCE]));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_connection() {
    let broker = start_with(config()).await;
    let mut bystander = Client::connect(&broker, "GID_a@@@watch", true).await;
    subscribe(&mut bystander, "parent/#", QoS::AtLeastOnce).await;
    let mut steady = raw_login(&broker, 0).await;
    // An unknown frame type; a frame over the negotiated size; a method on a channel
    // never opened.
    let mut unknown = raw_login(&broker, 0).await;
    unknown
        .write_all(&[9, 0, 0, 0, 0, 0, 1, 0, 0xCE])
        .await
        .unwrap();
    let mut oversized = raw_login(&broker, 0).await;
    oversized
        .write_all(&[3, 0, 1, 0x01, 0, 0, 0, 0])
        .await
        .unwrap();
    let mut unopened = raw_login(&broker, 0).await;
    let mut wire = BytesMut::new();
    Frame::Method {
        channel: 7,
        method: Method::BasicQos {
            prefetch_size: 0,
            prefetch_count: 1,
            global: false,
        },
    }
    .encode(&mut wire)
    .unwrap();
    unopened.write_all(&wire).await.unwrap();
    for stream in [&mut unknown, &mut oversized, &mut unopened] {
        read_to_close(stream, WAIT).await;
    }
    // The others are unaffected: the raw client's socket is still open, and MQTT routing
    // goes on.
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        match timeout(Duration::from_millis(300), steady.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) => panic!("the steady connection was closed"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("the steady connection failed: {e}"),
        }
    }
    broker
        .publish("parent/after", "ok", mqgate_codec::QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(&bystander.next().await.payload[..], b"ok");
    broker.shutdown().await;
}
