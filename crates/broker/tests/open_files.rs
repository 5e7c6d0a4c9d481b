//! The connection limit follows the open-file limit when the configuration does not set it:
//! the `mqgate` binary run under a small limit (a shell's `ulimit`) holds exactly the budget it
//! logs, and under a soft limit below the hard one it raises the soft limit first.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mqgate_codec::{Connect, Packet};
use support::Raw;

/// The binary under `ulimit`, with its TCP and WebSocket listeners on port 0 and no
/// HTTP API (so the reserve is the fixed 128 descriptors).
struct Mqgate {
    child: Child,
    addr: SocketAddr,
    /// The log line that states the connection limit.
    limit_line: String,
    /// Every log line up to the TCP listener's.
    log: String,
}

impl Mqgate {
    fn start(dir: &Path, ulimit: &str) -> Mqgate {
        let config = dir.join("mqgate.toml");
        std::fs::write(
            &config,
            "allow_anonymous = true\nstorage = \"memory\"\n\n[listeners]\ntcp = \"127.0.0.1:0\"\nws = \"127.0.0.1:0\"\n\n[http]\nenabled = false\n",
        )
        .expect("write config");
        let script = format!("ulimit {ulimit} && exec \"$0\" --config \"$1\"");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_mqgate"))
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        // Reads the log until the process ends, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut log = String::new();
        let mut limit_line = String::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("mqgate did not log its TCP listener; log so far:\n{log}")
            });
            log.push_str(&line);
            log.push('\n');
            if line.contains("connection limit") || line.contains("above the open-file limit") {
                limit_line = line.clone();
            }
            if line.contains("listening") && line.contains("kind=tcp") {
                let addr = line
                    .split("addr=")
                    .nth(1)
                    .and_then(|a| a.split_whitespace().next());
                break addr.and_then(|a| a.parse().ok()).expect("an address");
            }
        };
        Mqgate {
            child,
            addr,
            limit_line,
            log,
        }
    }
}

impl Drop for Mqgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens a connection and sends CONNECT; `true` when CONNACK came back.
async fn admitted(addr: SocketAddr, id: &str) -> Option<Raw> {
    let mut raw = Raw::open_at(addr).await?;
    raw.send(Packet::Connect(Box::new(Connect {
        client_id: id.try_into().expect("id"),
        keep_alive: 60,
        ..Connect::default()
    })))
    .await;
    match raw.recv().await {
        Some(Packet::ConnAck(_)) => Some(raw),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_setting_the_limit_is_the_open_file_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Soft and hard 300: nothing to raise. The budget is 300 - 128 = 172.
    let broker = Mqgate::start(dir.path(), "-n 300");
    assert!(
        broker.limit_line.contains("max_connections=172")
            && broker.limit_line.contains("open-file limit")
            && broker.limit_line.contains("open_file_limit=300"),
        "{}",
        broker.log
    );
    let mut held = Vec::new();
    for n in 0..172 {
        let raw = admitted(broker.addr, &format!("c{n}"))
            .await
            .unwrap_or_else(|| panic!("connection {n} of 172 refused"));
        held.push(raw);
    }
    assert!(
        admitted(broker.addr, "one-too-many").await.is_none(),
        "connection 173 admitted"
    );
    // A slot comes back when a client leaves.
    drop(held.pop());
    let mut back = false;
    for _ in 0..100 {
        if admitted(broker.addr, "back").await.is_some() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back, "no slot came back after a client left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_raises_a_soft_limit_below_the_hard_one() {
    let hard = Command::new("sh")
        .args(["-c", "ulimit -H -n"])
        .output()
        .expect("sh runs");
    let hard: u64 = match String::from_utf8_lossy(&hard.stdout).trim().parse() {
        Ok(hard) if hard > 1024 => hard,
        // "unlimited", or too low to tell a raise from the default budget.
        other => {
            eprintln!("SKIPPED: hard open-file limit {other:?} gives nothing to raise");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Mqgate::start(dir.path(), "-S -n 300");
    assert!(
        broker.log.contains("open-file limit raised") && broker.log.contains("from=300"),
        "{}",
        broker.log
    );
    let expected = format!("max_connections={}", (hard - 128).max(hard / 2));
    assert!(
        broker.limit_line.contains(&expected),
        "{expected}:\n{}",
        broker.log
    );
    // More than the 172 a limit of 300 would allow.
    let mut held = Vec::new();
    for n in 0..200 {
        held.push(
            admitted(broker.addr, &format!("c{n}"))
                .await
                .unwrap_or_else(|| panic!("connection {n} refused")),
        );
    }
}
