//! The cloud SDK endpoint served by the broker, spoken to by the AMQP clients the cloud SDKs
//! wrap: RabbitMQ's Java client (the Java SDK's) and Go's streadway/amqp (the Go SDK's),
//! each running the SDK's calls (`crates/amqp/tests/clients`, mode `broker`) against a broker
//! on 127.0.0.1 port 0, with rumqttc devices on the MQTT side: sends reach a device (a
//! 300 KB one split over many frames included), device messages reach the consumer with the
//! SDK's headers, and a group's status notice arrives.
//!
//! A missing JDK, Java client, Go or streadway/amqp makes a test print SKIPPED, and fail
//! under `MQGATE_REQUIRE_INTEROP=1` (`scripts/test.sh` installs them).

#![allow(clippy::unwrap_used)]

mod support;

#[path = "../../amqp/tests/clients/build.rs"]
#[allow(dead_code)]
mod build;

use std::process::Stdio;
use std::time::Duration;

use mqgate_broker::{BrokerConfig, BrokerHandle, ListenerKind};
use rumqttc::QoS;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::timeout;

use support::{start_with, subscribe, Client};

/// How long one client's whole conversation may take (a JVM starts slowly on a busy machine).
const CLIENT_WAIT: Duration = Duration::from_secs(60);

fn config() -> BrokerConfig {
    let text = r#"
        storage = "memory"
        allow_anonymous = true
        [listeners]
        tcp = "127.0.0.1:0"
        amqp = "127.0.0.1:0"
        [http]
        enabled = false
        [auth]
        instance_id = "post-cn-test"
        groups = ["GID_a", "GID_backend"]
        [[auth.access_keys]]
        id = "AK-id"
        secret = "SK-secret"
        "#;
    let mut config = BrokerConfig::from_toml_str(text).expect("test config parses");
    config.listeners.ws = None;
    config
}

/// The client's output lines, one by one, within [`CLIENT_WAIT`] in all.
struct Lines {
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    child: tokio::process::Child,
    deadline: tokio::time::Instant,
}

impl Lines {
    fn spawn(client: std::process::Command, broker: &BrokerHandle) -> Lines {
        let port = broker.local_addr(ListenerKind::Amqp).unwrap().port();
        let mut command = tokio::process::Command::from(client);
        let mut child = command
            .arg(port.to_string())
            .arg("broker")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the client starts");
        let stdout = child.stdout.take().unwrap();
        Lines {
            lines: BufReader::new(stdout).lines(),
            child,
            deadline: tokio::time::Instant::now() + CLIENT_WAIT,
        }
    }

    async fn next(&mut self) -> Option<String> {
        tokio::time::timeout_at(self.deadline, self.lines.next_line())
            .await
            .expect("the client's conversation ends in time")
            .unwrap()
    }

    /// Lines up to and including `last`.
    async fn until(&mut self, last: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = self.next().await;
            let Some(line) = line else {
                panic!("the client ended before {last:?}: {seen:?}");
            };
            let done = line == last;
            seen.push(line);
            if done {
                return seen;
            }
        }
    }
}

async fn conversation(client: std::process::Command, lang: &str) {
    let broker = start_with(config()).await;
    let mut device = Client::connect(&broker, "GID_a@@@receiver", true).await;
    subscribe(&mut device, "parent/#", QoS::AtLeastOnce).await;
    let mut lines = Lines::spawn(client, &broker);

    // Sends: confirmed, and at the device in order; the big one whole.
    let sent = lines.until("consuming").await;
    let one = format!("{lang}-one");
    let two = format!("{lang}-two");
    assert_eq!(
        sent,
        [
            "connected".to_owned(),
            format!("confirm ack {one}"),
            format!("confirm ack {two}"),
            "confirm big".to_owned(),
            "consuming".to_owned()
        ]
    );
    for body in [&one, &two] {
        let p = device.next().await;
        assert_eq!(
            (p.topic.as_str(), &p.payload[..]),
            ("parent/sub/x", body.as_bytes())
        );
    }
    let big = device.next().await;
    assert_eq!(big.topic, "parent/big");
    let expected: Vec<u8> = (0..256 * 1200).map(|i| i as u8).collect();
    assert!(
        big.payload[..] == expected[..],
        "the big send arrives whole"
    );

    // Device messages to the consumer, and a status notice of GID_backend.
    let mut publisher = Client::connect(&broker, "GID_a@@@dev1", true).await;
    for i in 0..3 {
        publisher
            .client
            .publish("parent/dev/x", QoS::AtLeastOnce, false, format!("d{i}"))
            .await
            .unwrap();
    }
    publisher.acked(3).await;
    let watched = Client::connect(&broker, "GID_backend@@@watched", true).await;
    let rest = lines.until("closed").await;
    let msgs: Vec<&String> = rest.iter().filter(|l| l.starts_with("msg ")).collect();
    assert_eq!(msgs.len(), 3, "{rest:?}");
    // `msg TAG REDELIVERED MESSAGE-ID PARENT SECOND CLIENT-ID BODY`
    for (i, line) in msgs.iter().enumerate() {
        let f: Vec<&str> = line.splitn(8, ' ').collect();
        assert_eq!(f[2], "false", "{line}");
        assert!(
            f[3].len() == 32 && f[3].bytes().all(|b| b.is_ascii_hexdigit()),
            "{line}"
        );
        assert_eq!(
            (f[4], f[5], f[6], f[7]),
            ("parent", "/dev/x", "GID_a@@@dev1", format!("d{i}").as_str()),
            "{line}"
        );
    }
    let status: Vec<&String> = rest.iter().filter(|l| l.starts_with("status ")).collect();
    assert!(!status.is_empty(), "{rest:?}");
    let event: serde_json::Value = serde_json::from_str(&status[0]["status ".len()..]).unwrap();
    assert_eq!(event["clientId"], "GID_backend@@@watched", "{event}");
    assert_eq!(event["eventType"], "connect", "{event}");
    assert!(rest.contains(&"received 3 1".to_owned()), "{rest:?}");
    let _ = timeout(CLIENT_WAIT, lines.child.wait()).await;
    let m = broker.metrics();
    assert_eq!((m.amqp_confirmed, m.amqp_acked), (3, 4));
    drop(watched);
    publisher.disconnect().await;
    device.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_rabbitmq_client_runs_the_sdk_calls_against_the_broker() {
    let Some(client) = build::java_client() else {
        return build::skipped("javac or RabbitMQ's Java client (librabbitmq-client-java)");
    };
    conversation(client, "java").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_streadway_client_runs_the_sdk_calls_against_the_broker() {
    let Some(client) = build::go_client() else {
        return build::skipped("go or streadway/amqp (golang-github-streadway-amqp-dev)");
    };
    conversation(client, "go").await;
}
