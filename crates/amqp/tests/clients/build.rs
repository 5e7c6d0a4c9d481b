//! Builds the AMQP clients in this folder, written with the clients others wrote that the
//! cloud SDKs wrap: RabbitMQ's Java client (`SdkClient.java`) and Go's streadway/amqp
//! (`sdk_client.go`). Included by `mqgate-amqp`'s interop tests and by the broker's tests of
//! its endpoint (`#[path]`), so both run the same programs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// This folder (from either crate: both live beside `amqp` under `crates/`).
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../amqp/tests/clients")
}

/// Whether `program args` runs and succeeds.
pub fn available(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Locally a missing client is a visible skip; under `MQGATE_REQUIRE_INTEROP=1` (set by
/// `scripts/test.sh`, which installs the clients) it is a failure.
pub fn skipped(why: &str) {
    assert!(
        std::env::var_os("MQGATE_REQUIRE_INTEROP").is_none(),
        "interop client missing under MQGATE_REQUIRE_INTEROP: {why}"
    );
    eprintln!("SKIPPED: {why}");
}

pub const JAVA_CLIENT_JAR: &str = "/usr/share/java/amqp-client.jar";
pub const SLF4J_JAR: &str = "/usr/share/java/slf4j-api.jar";

/// Compiles SdkClient.java once per test process (the tests run in parallel: a second
/// compile into the same folder could hand a half-written class to a running client); the
/// command to run it.
pub fn java_client() -> Option<Command> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let classes = BUILT.get_or_init(|| {
        if !available("javac", &["-version"]) || !Path::new(JAVA_CLIENT_JAR).exists() {
            return None;
        }
        let out = std::env::temp_dir().join(format!("mqgate-amqp-java-{}", std::process::id()));
        let ok = Command::new("javac")
            .args(["-cp", JAVA_CLIENT_JAR, "-d"])
            .arg(&out)
            .arg(clients_dir().join("SdkClient.java"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "SdkClient.java does not compile");
        Some(out)
    });
    let classes = classes.as_ref()?;
    let mut c = Command::new("java");
    c.arg("-cp")
        .arg(format!(
            "{JAVA_CLIENT_JAR}:{SLF4J_JAR}:{}",
            classes.display()
        ))
        .arg("SdkClient");
    Some(c)
}

pub const GO_PATH: &str = "/usr/share/gocode";

/// Builds sdk_client.go (GOPATH mode, against the Debian package of streadway/amqp, no
/// network) once per test process; the command to run it.
pub fn go_client() -> Option<Command> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let bin = BUILT.get_or_init(|| {
        let lib = Path::new(GO_PATH).join("src/github.com/streadway/amqp");
        if !available("go", &["version"]) || !lib.exists() {
            return None;
        }
        let bin = std::env::temp_dir().join(format!("mqgate-amqp-go-{}", std::process::id()));
        let out = Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(clients_dir().join("sdk_client.go"))
            .env("GO111MODULE", "off")
            .env("GOPATH", GO_PATH)
            .env("GOFLAGS", "")
            .output()
            .expect("go runs");
        assert!(
            out.status.success(),
            "sdk_client.go does not build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(bin)
    });
    Some(Command::new(bin.as_ref()?))
}
