//! The real `mqgate` binary as a child process, for tests that SIGKILL it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `mqgate` child process, SIGKILLed (and reaped) when dropped.
pub struct BrokerProcess {
    child: Child,
    /// The address of each listener it logged, by kind (`tcp`, `amqp`, ...).
    pub addrs: HashMap<String, SocketAddr>,
    /// The TCP listener's address.
    pub addr: SocketAddr,
}

impl BrokerProcess {
    /// Starts the binary with `config` (TOML) written to `dir/mqgate.toml`, and waits (at most
    /// 30 s) until it logged the address of every listener kind in `kinds`.
    pub fn start(dir: &Path, config: &str, kinds: &[&str]) -> BrokerProcess {
        let path = dir.join("mqgate.toml");
        std::fs::write(&path, config).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mqgate"))
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mqgate starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut process = BrokerProcess {
            child,
            addrs: HashMap::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the log until the pipe closes (the process died), so the child never blocks
        // on a full pipe; reports each listener's address.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(listening) = listening(&line) {
                    let _ = tx.send(listening);
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while !kinds.iter().all(|k| process.addrs.contains_key(*k)) {
            let left = deadline.saturating_duration_since(Instant::now());
            let (kind, addr) = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("mqgate logs the addresses of {kinds:?}"));
            process.addrs.insert(kind, addr);
        }
        if let Some(tcp) = process.addrs.get("tcp") {
            process.addr = *tcp;
        }
        process
    }

    /// SIGTERMs the process (a graceful shutdown) and waits at most `within` for it to
    /// exit; whether it did (if not, it is SIGKILLed when dropped).
    #[allow(dead_code)] // not every test binary that includes this module stops one gently
    pub fn terminate(mut self, within: Duration) -> bool {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        if !sent {
            return false;
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kind and address of a `listening kind=... addr=...` log line.
fn listening(line: &str) -> Option<(String, SocketAddr)> {
    let plain = strip_ansi(line);
    if !plain.contains("listening") {
        return None;
    }
    let kind = plain.split("kind=").nth(1)?.split_whitespace().next()?;
    let addr = plain.split("addr=").nth(1)?.split_whitespace().next()?;
    Some((kind.to_owned(), addr.parse().ok()?))
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
