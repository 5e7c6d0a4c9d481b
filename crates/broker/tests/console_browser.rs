//! The operator console in real browsers: Debian's Chromium driven through chromedriver, and
//! Debian's Firefox ESR driven through geckodriver (Mozilla's WebDriver server, from
//! crates.io), both by fantoccini, each against a broker on port 0 with `[auth]`, through the
//! same steps. Screenshots go to `target/console-screenshots/`, named after the browser.
//!
//! Without a browser or its driver on the machine the test says so and passes; under
//! `MQGATE_REQUIRE_INTEROP=1` (set by `scripts/test.sh`, which installs them) it fails.
// Test code: an unwrap that fails is a failure to report (clippy.toml allows it inside
// #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]

mod auth_support;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use auth_support::*;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use mqgate_broker::{BrokerConfig, BrokerHandle, ListenerKind};
use rumqttc::{AsyncClient, Event, Incoming};
use serde_json::{json, Value};
use tokio::sync::watch;

/// The longest any one wait in this test lasts.
const BOUND: Duration = Duration::from_secs(10);

/// How long a browser may take to start: a cold Firefox on a busy machine takes a while.
const BROWSER_START: Duration = Duration::from_secs(60);

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

fn skipped(why: &str) {
    assert!(
        std::env::var_os("MQGATE_REQUIRE_INTEROP").is_none(),
        "browser test cannot run under MQGATE_REQUIRE_INTEROP: {why}"
    );
    eprintln!("SKIPPED: {why} (see scripts/test.sh for how it installs them)");
}

/// The two browsers the console is tested in.
#[derive(Clone, Copy, Debug)]
enum Engine {
    Chromium,
    Firefox,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "chromium",
            Engine::Firefox => "firefox",
        }
    }

    /// The browser and its WebDriver server, when both are installed.
    fn binaries(self) -> Option<(PathBuf, PathBuf)> {
        let (browsers, drivers): (&[&str], &[&str]) = match self {
            Engine::Chromium => (&["chromium", "chromium-browser"], &["chromedriver"]),
            Engine::Firefox => (&["firefox-esr", "firefox"], &["geckodriver"]),
        };
        Some((find(browsers)?, find(drivers)?))
    }

    /// The window width the phone-width step uses: a phone's 390 CSS pixels, except that
    /// Firefox makes no window narrower than 500 (still inside the console's narrow layout,
    /// which starts at 600).
    fn phone_width(self) -> u32 {
        match self {
            Engine::Chromium => 390,
            Engine::Firefox => 500,
        }
    }

    /// The driver's command line for `port`, reachable from loopback only; a Firefox profile
    /// is made (and removed) by geckodriver under `profile`.
    fn driver_args(self, port: u16, profile: &Path) -> Vec<String> {
        match self {
            Engine::Chromium => vec![format!("--port={port}"), "--allowed-ips=127.0.0.1".into()],
            Engine::Firefox => vec![
                format!("--port={port}"),
                "--host=127.0.0.1".into(),
                // Its WebDriver BiDi port defaults to a fixed one (9222): a free one instead,
                // so nothing else on the machine can be in the way.
                format!("--websocket-port={}", free_port()),
                format!("--profile-root={}", profile.display()),
            ],
        }
    }

    /// The capabilities that start the browser headless; Chromium keeps its profile in
    /// `profile`.
    fn capabilities(self, browser: &Path, profile: &Path) -> serde_json::Map<String, Value> {
        let mut capabilities = serde_json::Map::new();
        match self {
            Engine::Chromium => {
                capabilities.insert(
                    "goog:chromeOptions".into(),
                    json!({
                        "binary": browser.to_string_lossy(),
                        "args": [
                            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            "--disable-quic", "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                            format!("--user-data-dir={}", profile.display()),
                        ],
                    }),
                );
            }
            Engine::Firefox => {
                capabilities.insert(
                    "moz:firefoxOptions".into(),
                    json!({
                        "binary": browser.to_string_lossy(),
                        "args": [
                            "-headless", "-width=1280", "-height=1000",
                        ],
                        "prefs": {
                            "app.update.enabled": false,
                            "browser.shell.checkDefaultBrowser": false,
                            "datareporting.policy.dataSubmissionEnabled": false,
                            "toolkit.telemetry.enabled": false,
                            "network.captive-portal-service.enabled": false,
                            "browser.safebrowsing.malware.enabled": false,
                            "browser.safebrowsing.phishing.enabled": false,
                        },
                    }),
                );
            }
        }
        capabilities
    }
}

/// A WebDriver server in a process group of its own, which is killed whole (the browser it
/// started included) and reaped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

/// Starts the WebDriver server on a free port and waits until it listens. A server that exits
/// before it listens (its port taken in the meantime by another test's socket) is started
/// again on another port; the wait for one that runs is as long as a browser's start, since a
/// cold driver binary on a busy machine (the other browser starting beside it) can take a
/// while. A failure reports what the server printed.
async fn start_driver(engine: Engine, binary: &Path, profile: &Path) -> Driver {
    let log_path = profile.join(format!("{}-driver.log", engine.name()));
    let mut attempts = 0;
    loop {
        attempts += 1;
        let port = free_port();
        let log = std::fs::File::create(&log_path).expect("a driver log file");
        let child = Command::new(binary)
            .args(engine.driver_args(port, profile))
            .process_group(0)
            .stdout(log.try_clone().expect("a second handle on the driver log"))
            .stderr(log)
            .spawn()
            .expect("the WebDriver server starts");
        let mut driver = Driver { child, port };
        let deadline = Instant::now() + BROWSER_START;
        let exited = loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return driver;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let printed = std::fs::read_to_string(&log_path).unwrap_or_default();
        match exited {
            Some(status) if attempts < 3 => {
                eprintln!(
                    "{} exited ({status}) before it listened on {port}; starting it again: {printed}",
                    binary.display()
                );
            }
            Some(status) => panic!(
                "{} exited ({status}) before it listened, {attempts} times; it printed: {printed}",
                binary.display()
            ),
            None => panic!(
                "{} did not listen on {port} within {BROWSER_START:?}; it printed: {printed}",
                binary.display()
            ),
        }
    }
}

async fn browser(engine: Engine, driver: &Driver, browser: &Path, profile: &Path) -> Client {
    let capabilities = engine.capabilities(browser, profile);
    let url = format!("http://127.0.0.1:{}", driver.port);
    let connect = async {
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        builder.connect(&url).await
    };
    tokio::time::timeout(BROWSER_START, connect)
        .await
        .expect("a browser session in time")
        .expect("a browser session")
}

/// Runs `script` (a function body that returns a value) in the page.
async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.expect("script runs")
}

/// Waits until `script` returns true in the page, at most [`BOUND`].
async fn until(client: &Client, what: &str, script: &str) -> Duration {
    let started = Instant::now();
    loop {
        if js(client, script).await == Value::Bool(true) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < BOUND,
            "in the browser, {what} did not happen within {BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clears");
    field.send_keys(text).await.expect("types");
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("clicks");
}

async fn text_of(client: &Client, css: &str) -> String {
    let script = format!(
        "const e = document.querySelector({}); return e ? e.textContent : '';",
        json!(css)
    );
    js(client, &script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("a screenshot directory");
    dir
}

async fn screenshot(engine: Engine, client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(screenshots().join(format!("{}-{name}", engine.name())), png)
        .expect("writes the screenshot");
}

/// An MQTT client whose state (`true` once connected, `false` once the connection ended)
/// is watched; its event loop stops at the first error.
fn mqtt(options: rumqttc::MqttOptions) -> (AsyncClient, watch::Receiver<Option<bool>>) {
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    let _ = tx.send(Some(true));
                }
                Ok(_) => {}
                Err(_) => {
                    let _ = tx.send(Some(false));
                    return;
                }
            }
        }
    });
    (client, rx)
}

async fn state(rx: &mut watch::Receiver<Option<bool>>, wanted: bool) {
    tokio::time::timeout(BOUND, rx.wait_for(|s| *s == Some(wanted)))
        .await
        .expect("the MQTT client's state in time")
        .expect("the client task is alive");
}

fn config() -> BrokerConfig {
    api_config(
        "storage = \"memory\"",
        "",
        &format!("groups = [\"{GROUP}\"]"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium() {
    console_in(Engine::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_firefox() {
    console_in(Engine::Firefox).await;
}

async fn console_in(engine: Engine) {
    let Some((browser_binary, driver_binary)) = engine.binaries() else {
        skipped(&format!(
            "{} or its WebDriver server is not installed",
            engine.name()
        ));
        return;
    };
    let broker = start(config(), None).await;
    let profile = tempfile::tempdir().expect("a profile directory");
    let driver = start_driver(engine, &driver_binary, profile.path()).await;
    let client = browser(engine, &driver, &browser_binary, profile.path()).await;
    // The steps run in a task so that a failed one still closes the browser (which quits it)
    // and stops the driver before the failure is reported.
    let (steps_client, steps_broker) = (client.clone(), broker.clone());
    let outcome =
        tokio::spawn(async move { run(engine, &steps_client, &steps_broker).await }).await;
    let _ = tokio::time::timeout(BOUND, client.close()).await;
    drop(driver);
    broker.shutdown().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

async fn run(engine: Engine, client: &Client, broker: &BrokerHandle) {
    let http: SocketAddr = broker.local_addr(ListenerKind::Http).expect("http");
    let base = format!("http://{http}");

    // Not signed in: the console sends the browser to the sign-in page.
    client
        .goto(&format!("{base}/console"))
        .await
        .expect("loads");
    until(
        client,
        "the sign-in page",
        "return location.pathname === '/console/login' && !!document.getElementById('login-form');",
    )
    .await;

    // A wrong secret is refused.
    fill(client, "#id", AK).await;
    fill(client, "#secret", "not-the-secret").await;
    click(client, "#login-submit").await;
    until(
        client,
        "the refusal",
        "return !!document.getElementById('login-error');",
    )
    .await;
    assert!(text_of(client, "#login-error")
        .await
        .contains("wrong secret"));
    screenshot(engine, client, "sign-in-refused.png").await;

    // The right one signs in (keyboard only: Enter submits the form).
    fill(client, "#id", AK).await;
    fill(
        client,
        "#secret",
        &format!("{SECRET}{}", char::from(Key::Enter)),
    )
    .await;
    until(
        client,
        "the console",
        "return !!document.getElementById('who-key');",
    )
    .await;
    until(
        client,
        "the live feed",
        "return document.getElementById('live').textContent === 'live';",
    )
    .await;

    // A persistent client connects over MQTT: the live feed shows it, and the client list.
    let device = "GID_a@@@console-dev";
    let mut options = signed(broker, device, AK, SECRET);
    options.set_clean_session(false);
    let (mqtt_client, mut mqtt_state) = mqtt(options);
    state(&mut mqtt_state, true).await;
    let shown = until(
        client,
        "the connect event",
        &format!("return [...document.querySelectorAll('#event-list li.ev-connect')].some(li => li.textContent.includes({}));", json!(device)),
    )
    .await;
    eprintln!("the connect event was on the page {shown:?} after the CONNACK");
    let row = format!("#client-table tr[data-client={}]", json!(device));
    until(
        client,
        "the client row",
        &format!("const r = document.querySelector({}); return !!r && r.textContent.includes('online') && r.textContent.includes('Signature');", json!(row)),
    )
    .await;
    // The overview's next sample counts it.
    until(
        client,
        "the overview counting it",
        "return document.getElementById('m-online').textContent === '1';",
    )
    .await;
    screenshot(engine, client, "console-desktop.png").await;

    // Close it from the console: the client's connection ends and the row goes offline.
    click(client, &format!("{row} button.close")).await;
    state(&mut mqtt_state, false).await;
    until(
        client,
        "the row offline",
        &format!("const r = document.querySelector({}); return !!r && r.textContent.includes('offline (persistent)');", json!(row)),
    )
    .await;
    until(
        client,
        "the disconnect event",
        &format!("return [...document.querySelectorAll('#event-list li')].some(li => !li.classList.contains('ev-connect') && li.textContent.includes({}));", json!(device)),
    )
    .await;
    drop(mqtt_client);

    // Its timeline, from message trace: the connect, then the close, newest first.
    click(client, &format!("{row} button.timeline")).await;
    until(
        client,
        "the timeline",
        "const items = [...document.querySelectorAll('#timeline-list li')]; \
         return !document.getElementById('timeline').hidden && items.length >= 2 \
           && items[items.length - 1].className === 'tl-connect' \
           && items[0].className !== 'tl-connect';",
    )
    .await;
    assert!(text_of(client, "#h-timeline").await.contains(device));
    screenshot(engine, client, "console-timeline.png").await;

    // Tokens: apply, query, revoke, query again.
    fill(client, "#token-resources", "GID_a/#").await;
    click(client, "#token-apply button[type=submit]").await;
    until(
        client,
        "a token",
        "return document.getElementById('token-out').textContent.startsWith('Token: ');",
    )
    .await;
    let token = js(
        client,
        "return document.getElementById('token-value').value;",
    )
    .await;
    let token = token.as_str().unwrap_or_default().to_owned();
    assert!(!token.is_empty());
    click(client, "#token-query").await;
    until(
        client,
        "the token valid",
        "return document.getElementById('token-out').textContent === 'Token status: valid';",
    )
    .await;
    click(client, "#token-revoke").await;
    until(
        client,
        "the token revoked",
        "return document.getElementById('token-out').textContent === 'Token revoked';",
    )
    .await;
    let status = api_get(
        broker,
        AK,
        SECRET,
        "QueryToken",
        &[("InstanceId", INSTANCE), ("Token", &token)],
    )
    .await;
    assert_eq!(
        ok(&status)["TokenStatus"],
        false,
        "the API sees the revocation"
    );

    // Device credentials: register one, then connect over MQTT with it.
    let device2 = "GID_a@@@console-dev2";
    fill(client, "#device-client", device2).await;
    click(client, "#device-register").await;
    until(
        client,
        "the credential",
        "return !!document.getElementById('device-deviceaccesskeysecret');",
    )
    .await;
    let key_id = text_of(client, "#device-deviceaccesskeyid").await;
    let key_secret = text_of(client, "#device-deviceaccesskeysecret").await;
    let mut options = auth_support::options(broker, device2);
    options.set_credentials(
        format!("DeviceCredential|{key_id}|{INSTANCE}"),
        mqgate_auth::sign_client_id(&key_secret, device2),
    );
    assert_eq!(
        connack_code(options).await,
        rumqttc::ConnectReturnCode::Success
    );
    fill(client, "#device-group", GROUP).await;
    click(client, "#device-list-form button").await;
    until(
        client,
        "the listed credential",
        &format!(
            "return document.getElementById('device-list').textContent.includes({});",
            json!(device2)
        ),
    )
    .await;

    // A write without the CSRF token is refused, even from the signed-in page.
    let refused = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/console/api/action', {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'}, body: 'Action=CreateGroupId&GroupId=GID_nocsrf'})
               .then(r => done(r.status), () => done(0));",
            vec![],
        )
        .await
        .expect("the fetch runs");
    assert_eq!(refused, json!(403));

    // Phone width: the narrow layout, nothing wider than the screen.
    let width = engine.phone_width();
    client.set_window_size(width, 844).await.expect("resizes");
    until(
        client,
        "the narrow layout",
        &format!(
            "return window.innerWidth <= {} && matchMedia('(max-width: 600px)').matches;",
            width + 10
        ),
    )
    .await;
    let overflow = js(
        client,
        "return document.documentElement.scrollWidth - window.innerWidth;",
    )
    .await;
    assert!(
        overflow.as_i64().is_some_and(|o| o <= 1),
        "the page scrolls sideways by {overflow}"
    );
    screenshot(engine, client, "console-phone.png").await;

    // Sign out: back to the sign-in page, and the console refuses again.
    client.set_window_size(1280, 1000).await.expect("resizes");
    click(client, "#sign-out").await;
    until(
        client,
        "the sign-in page again",
        "return location.pathname === '/console/login';",
    )
    .await;
    let after = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/console/api/overview').then(r => done(r.status), () => done(0));",
            vec![],
        )
        .await
        .expect("the fetch runs");
    assert_eq!(after, json!(401));
}
