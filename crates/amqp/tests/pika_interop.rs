//! Wire compatibility with an AMQP client others wrote: Python's pika drives the cloud SDK's
//! sequence (`tests/pika/sdk_client.py`) against a small TCP loop around the state machine,
//! on 127.0.0.1. The loop is test-only; it plays a broker that confirms publishes, refuses
//! one, returns one, and delivers device messages and a status notice within the window.
//!
//! Needs `python3` with `pika` (`scripts/test.sh` installs it). Without them the test says
//! SKIPPED loudly, and fails under `MQGATE_REQUIRE_INTEROP=1`.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{HashMap, VecDeque};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqgate_amqp::{
    Authenticator, BasicProperties, Config, Connection, DeliverError, Event, FieldTable,
    FieldValue, Message, ReplyCode, SdkAuthenticator, SdkUser,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::device_message;

/// What the test server saw, for the assertions.
#[derive(Default, Debug)]
struct Seen {
    publishes: Vec<(Option<u64>, String, String, bool, BasicProperties, Bytes)>,
    acks: Vec<u64>,
    nacks: Vec<(u64, bool)>,
    consumes: Vec<(String, String, FieldTable)>,
    window_full: usize,
    max_outstanding: usize,
    heartbeat_secs: u64,
    principal: Option<SdkUser>,
    closed: Vec<String>,
}

fn lookup(u: &SdkUser) -> Option<String> {
    (u.instance_id == "post-cn-test" && u.access_key_id == "AK-id").then(|| "SK-secret".into())
}

/// One connection: socket bytes into the state machine, its frames back out, its events
/// answered as a broker would.
async fn serve(mut sock: TcpStream, seen: Arc<Mutex<Seen>>) {
    let start = Instant::now();
    let now = move || start.elapsed().as_millis() as u64;
    let mut conn = Connection::new(Config::default(), SdkAuthenticator::new(lookup), now());
    let mut queued: HashMap<(u16, String), VecDeque<Message>> = HashMap::new();
    let mut outstanding: HashMap<u16, usize> = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(ev) = conn.poll_event() {
            let t = now();
            let mut s = seen.lock().unwrap();
            // A consumer to deliver to once the event is handled.
            let mut wake = None;
            match ev {
                Event::Opened { .. } => {
                    s.heartbeat_secs = conn.heartbeat_secs();
                    s.principal = conn.principal().cloned();
                }
                Event::Publish {
                    channel,
                    delivery_tag,
                    exchange,
                    routing_key,
                    mandatory,
                    properties,
                    body,
                } => {
                    let msg = Message {
                        exchange: exchange.clone(),
                        routing_key: routing_key.clone(),
                        properties: properties.clone(),
                        body: body.clone(),
                    };
                    s.publishes.push((
                        delivery_tag,
                        exchange.clone(),
                        routing_key,
                        mandatory,
                        properties,
                        body,
                    ));
                    if exchange == "parent/unroutable" && mandatory {
                        conn.return_message(channel, ReplyCode::NoRoute, "NO_ROUTE", &msg, t)
                            .unwrap();
                    }
                    if let Some(tag) = delivery_tag {
                        conn.confirm(channel, tag, exchange != "parent/nack", t);
                    }
                }
                Event::Consume {
                    channel,
                    consumer_tag,
                    queue,
                    arguments,
                    ..
                } => {
                    conn.accept_consume(channel, &consumer_tag, t);
                    let q = if queue == "STATUS" {
                        let body = br#"{"channelId":"c1","clientId":"GID_a@@@dev1","clientIp":"127.0.0.1","eventType":"connect","time":1700000000000}"#;
                        VecDeque::from([Message {
                            exchange: "STATUS".into(),
                            routing_key: "STATUS".into(),
                            body: Bytes::from_static(body),
                            ..Message::default()
                        }])
                    } else {
                        (1..=5u32)
                            .map(|n| device_message(n, Bytes::from(format!("msg-{n}"))))
                            .collect()
                    };
                    queued.insert((channel, consumer_tag.clone()), q);
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
                    *outstanding.entry(channel).or_default() -= delivery_tags.len();
                    s.acks.extend(delivery_tags);
                }
                Event::Nack {
                    channel,
                    delivery_tags,
                    requeue,
                } => {
                    *outstanding.entry(channel).or_default() -= delivery_tags.len();
                    s.nacks
                        .extend(delivery_tags.into_iter().map(|d| (d, requeue)));
                }
                Event::ChannelClosed { channel, .. } => s.closed.push(format!("channel {channel}")),
                Event::Closed { reason } => s.closed.push(format!("{reason:?}")),
                _ => {}
            }
            drop(s);
            if let Some((channel, consumer_tag)) = wake {
                pump(
                    &mut conn,
                    &mut queued,
                    &mut outstanding,
                    channel,
                    &consumer_tag,
                    &seen,
                    t,
                );
            }
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

/// Delivers what is queued for a consumer while the window allows.
fn pump<A: Authenticator>(
    conn: &mut Connection<A>,
    queued: &mut HashMap<(u16, String), VecDeque<Message>>,
    outstanding: &mut HashMap<u16, usize>,
    channel: u16,
    consumer_tag: &str,
    seen: &Mutex<Seen>,
    now: u64,
) {
    let Some(q) = queued.get_mut(&(channel, consumer_tag.to_owned())) else {
        return;
    };
    while let Some(m) = q.front() {
        match conn.deliver(channel, consumer_tag, m, false, now) {
            Ok(_) => {
                q.pop_front();
                let o = outstanding.entry(channel).or_default();
                *o += 1;
                let mut s = seen.lock().unwrap();
                s.max_outstanding = s.max_outstanding.max(*o);
            }
            Err(DeliverError::WindowFull) => {
                seen.lock().unwrap().window_full += 1;
                return;
            }
            Err(e) => panic!("deliver: {e}"),
        }
    }
}

fn pika_available() -> bool {
    Command::new("python3")
        .args(["-c", "import pika"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Locally a missing client is a visible skip; under `MQGATE_REQUIRE_INTEROP=1` (set by
/// `scripts/test.sh`, which installs pika) it is a failure.
fn skipped(why: &str) {
    assert!(
        std::env::var_os("MQGATE_REQUIRE_INTEROP").is_none(),
        "interop client missing under MQGATE_REQUIRE_INTEROP: {why}"
    );
    eprintln!("SKIPPED: {why}");
}

/// Runs the script against a fresh server; its stdout lines and what the server saw.
async fn run_pika(mode: &str) -> (Vec<String>, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server_seen = seen.clone();
    let server = tokio::spawn(async move {
        // One connection per script run.
        let (sock, _) = listener.accept().await.unwrap();
        serve(sock, server_seen).await;
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pika/sdk_client.py");
    let mode = mode.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("python3")
            .args([script, &port.to_string(), &mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
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
        "pika script failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server loop ends with the connection")
        .unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (stdout.lines().map(str::to_owned).collect(), seen)
}

#[tokio::test(flavor = "current_thread")]
async fn pika_speaks_the_sdk_sequence_with_the_state_machine() {
    if !pika_available() {
        return skipped("python3 with pika not installed");
    }
    let (lines, seen) = run_pika("sdk").await;
    let text = lines.join("\n");

    // Login with the SDK's credentials, the client's heartbeat.
    assert_eq!(
        lines.first().map(String::as_str),
        Some("connected"),
        "{text}"
    );
    let p = seen.principal.as_ref().unwrap();
    assert_eq!(
        (p.instance_id.as_str(), p.access_key_id.as_str()),
        ("post-cn-test", "AK-id")
    );
    assert_eq!(seen.heartbeat_secs, 10);

    // Publishing with confirms: ack, nack, basic.return, a multi-frame body.
    for want in [
        "confirm ack",
        "confirm nack",
        "confirm returned",
        "confirm big",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "missing {want:?} in\n{text}"
        );
    }
    let (tag, exchange, routing_key, mandatory, props, body) = &seen.publishes[0];
    assert_eq!(*tag, Some(1));
    assert_eq!(
        (exchange.as_str(), routing_key.as_str(), *mandatory),
        ("parent/sub/x", "parent/sub/x", true)
    );
    assert_eq!(&body[..], b"hello");
    let id = props.message_id.as_deref().unwrap();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
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
    let tags: Vec<_> = seen.publishes.iter().map(|p| p.0).collect();
    assert_eq!(tags, [Some(1), Some(2), Some(3), Some(4), Some(5)]);
    let big = &seen.publishes[3].5;
    assert_eq!(big.len(), 256 * 1200);
    assert!(big.iter().enumerate().all(|(i, &b)| b == i as u8));
    assert_eq!(seen.publishes[4].1, "parent/after");

    // Consuming: the client's tag, prefetch 2 honoured, every message with its headers,
    // acks for four and a nack (requeue = false) for msg-3.
    let (queue, ctag, args) = &seen.consumes[0];
    assert_eq!(queue, "parent");
    assert!(
        ctag.len() == 32 && ctag.bytes().all(|b| b.is_ascii_hexdigit()),
        "{ctag}"
    );
    assert!(args.is_empty());
    for n in 1..=5 {
        let want = format!("msg {n} False {n:032x} parent /sub/dev GID_a@@@dev1 msg-{n}");
        assert!(lines.contains(&want), "missing {want:?} in\n{text}");
    }
    assert_eq!(
        seen.max_outstanding, 2,
        "the window was not filled to the prefetch"
    );
    assert!(seen.window_full > 0, "the window never closed");
    let mut acks = seen.acks.clone();
    acks.sort_unstable();
    // Tag 1 on the status channel, 1, 2, 4, 5 on the device channel.
    assert_eq!(acks, [1, 1, 2, 4, 5]);
    assert_eq!(seen.nacks, [(3, false)]);

    // Status notices: queue STATUS, GROUP_ID as argument, the JSON body.
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
    assert!(lines.contains(&"received 5 1".to_owned()), "{text}");

    // queue.declare refused with 403 on its channel; the connection went on; a clean close.
    assert!(lines.contains(&"declare refused 403".to_owned()), "{text}");
    assert!(lines.contains(&"still open".to_owned()), "{text}");
    assert_eq!(lines.last().map(String::as_str), Some("closed"), "{text}");
    assert!(
        seen.closed.last().unwrap().contains("reply_code: 200"),
        "{:?}",
        seen.closed
    );
}

#[tokio::test(flavor = "current_thread")]
async fn pika_sees_a_wrong_secret_as_an_authentication_failure() {
    if !pika_available() {
        return skipped("python3 with pika not installed");
    }
    let (lines, seen) = run_pika("badpass").await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("login refused") && lines[0].contains("Authentication"),
        "{lines:?}"
    );
    assert!(seen.principal.is_none());
    assert!(
        seen.closed.last().unwrap().contains("AccessRefused"),
        "{:?}",
        seen.closed
    );
}
