//! Wire compatibility with AMQP clients others wrote, speaking the cloud SDKs' sequence
//! against a small TCP loop around the state machine on 127.0.0.1:
//!
//! - RabbitMQ's Java client (the client the Java SDK wraps), `tests/clients/SdkClient.java`;
//! - Go's streadway/amqp package (the package the Go SDK wraps),
//!   `tests/clients/sdk_client.go`;
//! - Python's pika, `tests/clients/sdk_client.py`.
//!
//! The loop is test-only; it plays a broker that confirms publishes, refuses one, returns
//! one, and delivers device messages and a status notice within the prefetch window. Each
//! client prints one line per finding in a shared format; the test checks the lines with
//! what the server saw. A missing client (`scripts/test.sh` installs them) makes its test
//! print SKIPPED loudly, and fail under `MQGATE_REQUIRE_INTEROP=1`.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "clients/build.rs"]
mod build;

use build::{available, clients_dir, go_client, java_client, skipped};

use std::collections::{HashMap, VecDeque};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqgate_amqp::{
    Authenticator, BasicProperties, CloseReason, Config, ConfirmTag, Connection, DeliverError,
    Event, FieldTable, FieldValue, Message, ReplyCode, SdkAuthenticator, SdkUser,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::device_message;

/// One publish as the server saw it.
#[derive(Debug, Clone)]
struct Published {
    channel: u16,
    tag: Option<ConfirmTag>,
    exchange: String,
    routing_key: String,
    mandatory: bool,
    properties: BasicProperties,
    body: Bytes,
}

/// What the test server saw, over all the client's connections.
#[derive(Default, Debug)]
struct Seen {
    publishes: Vec<Published>,
    consumes: Vec<(String, String, FieldTable)>,
    /// Bodies delivered, by (connection, channel, delivery tag).
    delivered: HashMap<(usize, u16, u64), Bytes>,
    acked: Vec<Bytes>,
    nacked: Vec<(Bytes, bool)>,
    window_full: usize,
    max_outstanding: usize,
    heartbeats: Vec<u64>,
    principals: Vec<SdkUser>,
    client_properties: Vec<FieldTable>,
    closes: Vec<CloseReason>,
    /// The device messages and the status notice go to the first consumer of each queue.
    parent_taken: bool,
    status_taken: bool,
}

fn lookup(u: &SdkUser) -> Option<String> {
    (u.instance_id == "post-cn-test" && u.access_key_id == "AK-id").then(|| "SK-secret".into())
}

fn status_message() -> Message {
    let body = br#"{"channelId":"c1","clientId":"GID_a@@@dev1","clientIp":"127.0.0.1","eventType":"connect","time":1700000000000}"#;
    Message {
        exchange: "STATUS".into(),
        routing_key: "STATUS".into(),
        body: Bytes::from_static(body),
        ..Message::default()
    }
}

/// The per-connection state of the test broker.
struct Broker {
    id: usize,
    seen: Arc<Mutex<Seen>>,
    queued: HashMap<(u16, String), VecDeque<Message>>,
    outstanding: HashMap<(u16, String), usize>,
    /// delivery tag -> consumer, per channel.
    owner: HashMap<(u16, u64), String>,
}

impl Broker {
    /// Handles one event; returns a consumer that may take deliveries now. The caller
    /// delivers only once every pending event is handled, so that the acknowledgements
    /// the state machine already counted are counted here too.
    fn on_event<A: Authenticator<Principal = SdkUser>>(
        &mut self,
        conn: &mut Connection<A>,
        ev: Event,
        now: u64,
    ) -> Option<(u16, String)> {
        let mut wake = None;
        {
            let seen = self.seen.clone();
            let mut s = seen.lock().unwrap();
            match ev {
                Event::Opened { .. } => {
                    s.heartbeats.push(conn.heartbeat_secs());
                    s.principals.push(conn.principal().cloned().unwrap());
                    s.client_properties.push(conn.client_properties().clone());
                }
                Event::Publish {
                    channel,
                    confirm,
                    exchange,
                    routing_key,
                    mandatory,
                    properties,
                    body,
                } => {
                    let p = Published {
                        channel,
                        tag: confirm,
                        exchange,
                        routing_key,
                        mandatory,
                        properties,
                        body,
                    };
                    if p.exchange == "parent/unroutable" && p.mandatory {
                        let m = Message {
                            exchange: p.exchange.clone(),
                            routing_key: p.routing_key.clone(),
                            properties: p.properties.clone(),
                            body: p.body.clone(),
                        };
                        conn.return_message(channel, ReplyCode::NoRoute, "NO_ROUTE", &m, now)
                            .unwrap();
                    }
                    if let Some(tag) = confirm {
                        conn.confirm(tag, p.exchange != "parent/nack", now);
                    }
                    s.publishes.push(p);
                }
                Event::Consume {
                    channel,
                    consumer_tag,
                    queue,
                    arguments,
                    ..
                } => {
                    conn.accept_consume(channel, &consumer_tag, now);
                    let q: VecDeque<Message> = match queue.as_str() {
                        "STATUS" if !s.status_taken => {
                            s.status_taken = true;
                            VecDeque::from([status_message()])
                        }
                        "parent" if !s.parent_taken => {
                            s.parent_taken = true;
                            (1..=5u32)
                                .map(|n| device_message(n, Bytes::from(format!("msg-{n}"))))
                                .collect()
                        }
                        _ => VecDeque::new(),
                    };
                    self.queued.insert((channel, consumer_tag.clone()), q);
                    s.consumes.push((queue, consumer_tag.clone(), arguments));
                    wake = Some((channel, consumer_tag));
                }
                Event::Ready {
                    channel,
                    consumer_tag,
                } => wake = Some((channel, consumer_tag)),
                Event::Ack {
                    channel,
                    delivery_tags,
                } => {
                    for t in delivery_tags {
                        let body = self.settled(&mut s, channel, t);
                        s.acked.push(body);
                    }
                }
                Event::Nack {
                    channel,
                    delivery_tags,
                    requeue,
                } => {
                    for t in delivery_tags {
                        let body = self.settled(&mut s, channel, t);
                        s.nacked.push((body, requeue));
                    }
                }
                Event::Closed { reason } => s.closes.push(reason),
                _ => {}
            }
        }
        wake
    }

    fn settled(&mut self, s: &mut Seen, channel: u16, tag: u64) -> Bytes {
        if let Some(consumer) = self.owner.remove(&(channel, tag)) {
            if let Some(o) = self.outstanding.get_mut(&(channel, consumer)) {
                *o -= 1;
            }
        }
        s.delivered[&(self.id, channel, tag)].clone()
    }

    /// Delivers what is queued for a consumer while its window allows.
    fn pump<A: Authenticator>(
        &mut self,
        conn: &mut Connection<A>,
        channel: u16,
        consumer_tag: &str,
        now: u64,
    ) {
        let key = (channel, consumer_tag.to_owned());
        let Some(q) = self.queued.get_mut(&key) else {
            return;
        };
        while let Some(m) = q.front() {
            match conn.deliver(channel, consumer_tag, m, false, now) {
                Ok(tag) => {
                    let m = q.pop_front().unwrap();
                    let o = self.outstanding.entry(key.clone()).or_default();
                    *o += 1;
                    self.owner.insert((channel, tag), consumer_tag.to_owned());
                    let mut s = self.seen.lock().unwrap();
                    s.max_outstanding = s.max_outstanding.max(*o);
                    s.delivered.insert((self.id, channel, tag), m.body);
                }
                Err(DeliverError::WindowFull) => {
                    self.seen.lock().unwrap().window_full += 1;
                    return;
                }
                Err(e) => panic!("deliver: {e}"),
            }
        }
    }
}

/// One connection: socket bytes into the state machine, its frames back out, its events
/// answered by the test broker.
async fn serve(mut sock: TcpStream, id: usize, seen: Arc<Mutex<Seen>>) {
    let start = Instant::now();
    let now = move || start.elapsed().as_millis() as u64;
    let mut conn = Connection::new(Config::default(), SdkAuthenticator::new(lookup), now());
    let mut broker = Broker {
        id,
        seen,
        queued: HashMap::new(),
        outstanding: HashMap::new(),
        owner: HashMap::new(),
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut wakes = Vec::new();
        while let Some(ev) = conn.poll_event() {
            wakes.extend(broker.on_event(&mut conn, ev, now()));
        }
        for (channel, consumer_tag) in wakes {
            broker.pump(&mut conn, channel, &consumer_tag, now());
        }
        while let Some(chunk) = conn.poll_transmit() {
            if sock.write_all(&chunk).await.is_err() {
                conn.connection_lost();
            }
        }
        if conn.is_closed() {
            return;
        }
        let wait = conn
            .poll_timeout()
            .map_or(60_000, |t| t.saturating_sub(now()));
        tokio::select! {
            r = sock.read(&mut buf) => match r {
                Ok(0) | Err(_) => conn.connection_lost(),
                Ok(n) => conn.feed(&buf[..n], now()),
            },
            () = tokio::time::sleep(Duration::from_millis(wait)) => conn.on_timeout(now()),
        }
    }
}

/// Runs a client program (`PROGRAM PORT MODE`) against a fresh server: its stdout lines and
/// what the server saw.
async fn run_client(mut command: Command, mode: &str) -> (Vec<String>, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server_seen = seen.clone();
    let server = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        let mut id = 0;
        loop {
            tokio::select! {
                a = listener.accept() => {
                    let (sock, _) = a.unwrap();
                    id += 1;
                    conns.spawn(serve(sock, id, server_seen.clone()));
                }
                // Ends with the client's last connection (and no new one within 2 s).
                () = tokio::time::sleep(Duration::from_secs(2)), if conns.is_empty() && id > 0 => break,
                Some(done) = conns.join_next() => done.unwrap(),
            }
        }
    });
    command.arg(port.to_string()).arg(mode);
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "client failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the server's connections end with the client")
        .unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (stdout.lines().map(str::to_owned).collect(), seen)
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What every client's SDK sequence must show, whatever the client.
fn check_sdk_sequence(lines: &[String], seen: &Seen) {
    let text = lines.join("\n");
    let has = |l: &str| lines.iter().any(|x| x == l);
    assert_eq!(
        lines.first().map(String::as_str),
        Some("connected"),
        "{text}"
    );
    for p in &seen.principals {
        assert_eq!(
            (p.instance_id.as_str(), p.access_key_id.as_str()),
            ("post-cn-test", "AK-id")
        );
    }
    for props in &seen.client_properties {
        assert!(
            props.get("signKey").and_then(FieldValue::as_str).is_some(),
            "{props:?}"
        );
    }

    // Sending with confirms: an ack, a nack, a basic.return before its ack, a body spread
    // over several frames.
    for want in [
        "confirm ack",
        "confirm nack",
        "confirm returned",
        "confirm big",
    ] {
        assert!(has(want), "missing {want:?} in\n{text}");
    }
    let topics: Vec<&str> = seen.publishes.iter().map(|p| p.exchange.as_str()).collect();
    assert_eq!(
        topics,
        [
            "parent/sub/x",
            "parent/nack",
            "parent/unroutable",
            "parent/big",
            "parent/after"
        ]
    );
    let mut last_tag: HashMap<u16, u64> = HashMap::new();
    for p in &seen.publishes {
        assert_eq!(p.routing_key, p.exchange);
        assert!(p.mandatory);
        assert!(
            is_hex32(p.properties.message_id.as_deref().unwrap_or("")),
            "{p:?}"
        );
        // Confirm tags count from 1 on each channel.
        let last = last_tag.entry(p.channel).or_default();
        assert_eq!(p.tag.map(|t| t.delivery_tag()), Some(*last + 1), "{p:?}");
        *last += 1;
    }
    assert_eq!(&seen.publishes[0].body[..], b"hello");
    let big = &seen.publishes[3].body;
    assert_eq!(big.len(), 256 * 1200);
    assert!(big.iter().enumerate().all(|(i, &b)| b == i as u8));

    // Consuming a parent topic: every message with its id and the three headers; four
    // acknowledged, msg-3 refused without requeue; the prefetch window of 2 honoured.
    let (queue, _, args) = &seen.consumes[0];
    assert_eq!(queue, "parent");
    assert!(args.is_empty());
    for n in 1..=5 {
        let tail = format!(" false {n:032x} parent /sub/dev GID_a@@@dev1 msg-{n}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("msg ") && l.ends_with(&tail)),
            "missing delivery {n} in\n{text}"
        );
    }
    assert_eq!(
        seen.max_outstanding, 2,
        "the window was not filled to the prefetch"
    );
    assert!(seen.window_full > 0, "the window never closed");
    let mut acked: Vec<&[u8]> = seen.acked.iter().map(|b| &b[..]).collect();
    acked.sort();
    assert_eq!(acked.len(), 5, "{acked:?}");
    assert_eq!(&acked[..4], [b"msg-1", b"msg-2", b"msg-4", b"msg-5"]);
    assert!(acked[4].starts_with(b"{\"channelId\""));
    assert_eq!(seen.nacked, [(Bytes::from_static(b"msg-3"), false)]);

    // Status notices: queue STATUS, GROUP_ID as an argument, the JSON body, acknowledged.
    let (queue, _, args) = &seen.consumes[1];
    assert_eq!(queue, "STATUS");
    assert_eq!(
        args.get("GROUP_ID").and_then(FieldValue::as_str),
        Some("GID_backend")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("status {") && l.contains("\"eventType\":\"connect\"")),
        "{text}"
    );
    assert!(has("received 5 1"), "{text}");

    // queue.declare refused with 403 on its channel only; then a clean close of everything.
    assert!(has("declare refused 403"), "{text}");
    assert!(has("still open"), "{text}");
    assert_eq!(lines.last().map(String::as_str), Some("closed"), "{text}");
    assert!(!seen.closes.is_empty());
    for c in &seen.closes {
        assert!(
            matches!(
                c,
                CloseReason::Client {
                    reply_code: 200,
                    ..
                }
            ),
            "{:?}",
            seen.closes
        );
    }
}

fn check_refused_login(lines: &[String], seen: &Seen, error: &str) {
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("login refused") && lines[0].contains(error),
        "{lines:?}"
    );
    assert!(seen.principals.is_empty());
    assert!(
        matches!(
            seen.closes[..],
            [CloseReason::Refused {
                code: ReplyCode::AccessRefused,
                ..
            }]
        ),
        "{:?}",
        seen.closes
    );
}

// ---- RabbitMQ's Java client ----------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn java_rabbitmq_client_speaks_the_sdk_sequence() {
    let Some(client) = java_client() else {
        return skipped("javac or RabbitMQ's Java client (librabbitmq-client-java) not installed");
    };
    let (lines, seen) = run_client(client, "sdk").await;
    check_sdk_sequence(&lines, &seen);
    // Java's own choices: its default heartbeat (60 s, the server's proposal), consumer tags
    // chosen by the server, the seqId header as a 64-bit integer equal to the publish
    // number, client properties with nothing but signKey (as the SDK sets them).
    assert!(
        seen.heartbeats.iter().all(|&h| h == 60),
        "{:?}",
        seen.heartbeats
    );
    assert_eq!(
        seen.heartbeats.len(),
        2,
        "a producer and a consumer connection"
    );
    assert!(
        seen.consumes.iter().all(|c| c.1.starts_with("amq.ctag-")),
        "{:?}",
        seen.consumes
    );
    for p in &seen.publishes {
        let h = p.properties.headers.as_ref().unwrap();
        assert_eq!(
            h.get("seqId"),
            Some(&FieldValue::I64(p.tag.unwrap().delivery_tag() as i64))
        );
    }
    for props in &seen.client_properties {
        assert_eq!(
            props.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["signKey"]
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn java_rabbitmq_client_sees_a_wrong_secret_as_an_authentication_failure() {
    let Some(client) = java_client() else {
        return skipped("javac or RabbitMQ's Java client (librabbitmq-client-java) not installed");
    };
    let (lines, seen) = run_client(client, "badpass").await;
    check_refused_login(&lines, &seen, "AuthenticationFailure");
}

// ---- Go's streadway/amqp package ---------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn go_streadway_client_speaks_the_sdk_sequence() {
    let Some(client) = go_client() else {
        return skipped(
            "go or Go's streadway/amqp package (golang-github-streadway-amqp-dev) not installed",
        );
    };
    let (lines, seen) = run_client(client, "sdk").await;
    check_sdk_sequence(&lines, &seen);
    // Go's own choices: heartbeat 10 s, 16 confirm channels used in turn (so each publish
    // is the first on its channel), 32-hex consumer tags, persistent messages whose empty
    // header table is left out.
    assert!(
        seen.heartbeats.iter().all(|&h| h == 10),
        "{:?}",
        seen.heartbeats
    );
    let channels: Vec<u16> = seen.publishes.iter().map(|p| p.channel).collect();
    assert_eq!(channels, [1, 2, 3, 4, 5]);
    assert!(
        seen.consumes.iter().all(|c| is_hex32(&c.1)),
        "{:?}",
        seen.consumes
    );
    for p in &seen.publishes {
        assert_eq!(p.properties.delivery_mode, Some(2));
        // An empty table is not sent at all (its property flag stays clear).
        assert_eq!(p.properties.headers, None);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn go_streadway_client_sees_a_wrong_secret_as_refused() {
    let Some(client) = go_client() else {
        return skipped(
            "go or Go's streadway/amqp package (golang-github-streadway-amqp-dev) not installed",
        );
    };
    let (lines, seen) = run_client(client, "badpass").await;
    check_refused_login(&lines, &seen, "403");
}

// ---- pika ---------------------------------------------------------------------------------

fn pika_client() -> Option<Command> {
    if !available("python3", &["-c", "import pika"]) {
        return None;
    }
    let mut c = Command::new("python3");
    c.arg(clients_dir().join("sdk_client.py"));
    Some(c)
}

#[tokio::test(flavor = "current_thread")]
async fn pika_speaks_the_sdk_sequence() {
    let Some(client) = pika_client() else {
        return skipped("python3 with pika not installed");
    };
    let (lines, seen) = run_client(client, "sdk").await;
    check_sdk_sequence(&lines, &seen);
    // pika's own choices: heartbeat 10 s as asked, a 32-hex consumer tag, and header values
    // of every type it writes.
    assert_eq!(seen.heartbeats, [10]);
    assert!(is_hex32(&seen.consumes[0].1), "{:?}", seen.consumes);
    let props = &seen.publishes[0].properties;
    assert_eq!(props.delivery_mode, Some(2));
    assert_eq!(
        props.content_type.as_deref(),
        Some("application/octet-stream")
    );
    let h = props.headers.as_ref().unwrap();
    assert_eq!(h.get("seqId"), Some(&FieldValue::I64(1 << 40)));
    assert_eq!(h.get("small"), Some(&FieldValue::I32(7)));
    assert_eq!(h.get("flag"), Some(&FieldValue::Bool(true)));
    assert_eq!(h.get("text").and_then(FieldValue::as_str), Some("ünïcödé"));
    assert_eq!(
        h.get("raw"),
        Some(&FieldValue::Bytes(Bytes::from_static(b"\x00\x01\xff")))
    );
    assert_eq!(
        h.get("dec"),
        Some(&FieldValue::Decimal {
            scale: 2,
            value: -125
        })
    );
    assert_eq!(h.get("when"), Some(&FieldValue::Timestamp(1_704_164_645)));
    let Some(FieldValue::Table(nested)) = h.get("nested") else {
        panic!("{h:?}")
    };
    assert_eq!(
        nested.get("list"),
        Some(&FieldValue::Array(vec![
            FieldValue::I32(1),
            FieldValue::long_str("two"),
            FieldValue::Void
        ]))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn pika_sees_a_wrong_secret_as_an_authentication_failure() {
    let Some(client) = pika_client() else {
        return skipped("python3 with pika not installed");
    };
    let (lines, seen) = run_client(client, "badpass").await;
    check_refused_login(&lines, &seen, "Authentication");
}
