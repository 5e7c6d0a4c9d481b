//! The operator console seen by a raw HTTP/1.1 client (no browser): sign-in, the session
//! cookie's flags and expiry, sign-out, throttling, CSRF, HTTPS, and that every console
//! endpoint refuses without a session.
// Test code: an unwrap that fails is a failure to report (clippy.toml allows it inside
// #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]

mod auth_support;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use auth_support::*;
use mqgate_broker::{BrokerConfig, BrokerHandle, ListenerKind};
use support::tls::{rustls_client, test_pki, TestPki};

/// `[auth]` with the full key, a limited key and a key barred from the API; HTTP on port 0;
/// `http_extra` added to `[http]`.
fn config(http_extra: &str) -> BrokerConfig {
    let keys = format!(
        r#"
        groups = ["{GROUP}"]
        [[auth.access_keys]]
        id = "{LIMITED_AK}"
        secret = "{LIMITED_SECRET}"
        publish = ["shop/#"]
        subscribe = ["shop/#"]
        [[auth.access_keys]]
        id = "LTAI_MQTT_ONLY"
        secret = "mqtt-only"
        api = false
        "#
    );
    api_config("storage = \"memory\"", http_extra, &keys)
}

/// A broker with [`config`]`(http_extra)`, and its HTTP address.
async fn broker_with(http_extra: &str) -> (BrokerHandle, SocketAddr) {
    let broker = start(config(http_extra), None).await;
    let addr = http_addr(&broker);
    (broker, addr)
}

fn http_addr(broker: &BrokerHandle) -> SocketAddr {
    broker
        .local_addr(ListenerKind::Http)
        .expect("http listener")
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                mqgate_auth::openapi::percent_encode(k.as_bytes()),
                mqgate_auth::openapi::percent_encode(v.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

async fn sign_in(addr: SocketAddr, id: &str, secret: &str) -> HttpResponse {
    let body = form(&[("id", id), ("secret", secret)]);
    http(addr, "POST", "/console/login", &[FORM], body.as_bytes()).await
}

/// The `name=value` of a Set-Cookie header, and its attributes in lower case.
fn cookie_of(response: &HttpResponse) -> (String, Vec<String>) {
    let header = response.header("set-cookie").expect("a Set-Cookie header");
    let mut parts = header.split(';').map(str::trim);
    let pair = parts.next().unwrap_or_default().to_owned();
    (pair, parts.map(str::to_lowercase).collect())
}

/// Signs in with the full key; the cookie header value and the page's CSRF token.
async fn session(addr: SocketAddr) -> (String, String) {
    let response = sign_in(addr, AK, SECRET).await;
    assert_eq!(response.status, 303, "{response:?}");
    let (cookie, _) = cookie_of(&response);
    let page = http(addr, "GET", "/console", &[("cookie", &cookie)], b"").await;
    assert_eq!(page.status, 200, "{page:?}");
    let marker = "name=\"csrf-token\" content=\"";
    let start = page
        .body
        .find(marker)
        .expect("the page carries its CSRF token")
        + marker.len();
    let csrf = page.body[start..]
        .split('"')
        .next()
        .expect("a closing quote")
        .to_owned();
    assert!(csrf.len() >= 32, "{csrf}");
    (cookie, csrf)
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_with_an_expiry() {
    let (broker, addr) = broker_with("console_session_ms = 600000").await;
    let page = http(addr, "GET", "/console/login", &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"secret\""), "{}", page.body);
    assert!(page
        .header("content-security-policy")
        .is_some_and(|csp| csp.contains("script-src 'self'")));

    let response = sign_in(addr, AK, SECRET).await;
    assert_eq!(response.status, 303, "{response:?}");
    assert_eq!(response.header("location"), Some("/console"));
    let (pair, attributes) = cookie_of(&response);
    assert!(pair.starts_with("mqgate_console="), "{pair}");
    for wanted in [
        "httponly",
        "samesite=strict",
        "path=/console",
        "max-age=600",
    ] {
        assert!(
            attributes.iter().any(|a| a == wanted),
            "{wanted} in {attributes:?}"
        );
    }
    assert!(
        !attributes.iter().any(|a| a == "secure"),
        "plain HTTP: no Secure flag {attributes:?}"
    );
    let page = http(addr, "GET", "/console", &[("cookie", &pair)], b"").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(AK), "the page names the key");
    broker.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_then_throttled() {
    let (broker, addr) = broker_with("console_max_failures = 3\nconsole_lockout_ms = 60000").await;
    for (id, secret) in [
        (AK, "wrong"),
        ("LTAI_NOBODY", SECRET),
        ("LTAI_MQTT_ONLY", "mqtt-only"),
    ] {
        let response = sign_in(addr, id, secret).await;
        assert_eq!(response.status, 401, "{id}: {response:?}");
        assert!(response.header("set-cookie").is_none());
        assert!(response.body.contains("login-error"));
    }
    // Three failures: the address is locked out, even with the right secret.
    let response = sign_in(addr, AK, SECRET).await;
    assert_eq!(response.status, 429, "{response:?}");
    assert!(response.header("set-cookie").is_none());
    broker.shutdown().await;
}

#[tokio::test]
async fn the_lockout_ends_with_its_window() {
    let (broker, addr) = broker_with("console_max_failures = 1\nconsole_lockout_ms = 300").await;
    assert_eq!(sign_in(addr, AK, "wrong").await.status, 401);
    assert_eq!(sign_in(addr, AK, SECRET).await.status, 429);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sign_in(addr, AK, SECRET).await.status, 303);
    broker.shutdown().await;
}

/// Every console path but the sign-in page and its stylesheet.
const GUARDED: &[(&str, &str)] = &[
    ("GET", "/console/app.js"),
    ("GET", "/console/api/overview"),
    ("GET", "/console/api/events"),
    ("GET", "/console/api/clients"),
    ("GET", "/console/api/clients?q=x&group=GID_a"),
    ("POST", "/console/api/action"),
    ("POST", "/console/logout"),
    ("GET", "/console/nothing-here"),
    ("POST", "/console/nothing-here"),
];

#[tokio::test]
async fn every_console_endpoint_refuses_without_a_session() {
    let (broker, addr) = broker_with("").await;
    let (good, csrf) = session(addr).await;
    let (id, _) = good.split_once('.').unwrap();
    let forged = format!("{id}.{}", "0".repeat(48));
    for cookie in [None, Some("mqgate_console=garbage"), Some(forged.as_str())] {
        let mut headers = vec![FORM, ("x-csrf-token", csrf.as_str())];
        if let Some(cookie) = cookie {
            headers.push(("cookie", cookie));
        }
        for (method, path) in GUARDED {
            let body = form(&[("Action", "ListGroupId"), ("csrf", &csrf)]);
            let response = http(addr, method, path, &headers, body.as_bytes()).await;
            assert_eq!(
                response.status, 401,
                "{method} {path} with {cookie:?}: {response:?}"
            );
            assert_eq!(response.json()["Code"], "Console.SignInRequired");
        }
        // The page itself sends the browser to the sign-in page.
        let page = http(addr, "GET", "/console", &headers, b"").await;
        assert_eq!(page.status, 303, "{page:?}");
        assert_eq!(page.header("location"), Some("/console/login"));
    }
    // With the session, the same endpoints answer.
    let with = [("cookie", good.as_str())];
    for path in [
        "/console/app.js",
        "/console/api/overview",
        "/console/api/clients",
    ] {
        let response = http(addr, "GET", path, &with, b"").await;
        assert_eq!(response.status, 200, "{path}: {response:?}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn writes_need_the_csrf_token_and_go_through_the_api_checks() {
    let (broker, addr) = broker_with("").await;
    let (cookie, csrf) = session(addr).await;
    let body = form(&[("Action", "CreateGroupId"), ("GroupId", "GID_console")]);
    // No token, a wrong token: refused, nothing created.
    for token in [None, Some("not-the-token")] {
        let mut headers = vec![FORM, ("cookie", cookie.as_str())];
        if let Some(token) = token {
            headers.push(("x-csrf-token", token));
        }
        let response = http(
            addr,
            "POST",
            "/console/api/action",
            &headers,
            body.as_bytes(),
        )
        .await;
        assert_eq!(response.status, 403, "{response:?}");
        assert_eq!(response.json()["Code"], "Console.CsrfToken");
    }
    let headers = [
        FORM,
        ("cookie", cookie.as_str()),
        ("x-csrf-token", csrf.as_str()),
    ];
    let list = form(&[("Action", "ListGroupId")]);
    let groups = http(
        addr,
        "POST",
        "/console/api/action",
        &headers,
        list.as_bytes(),
    )
    .await;
    assert_eq!(groups.status, 200, "{groups:?}");
    assert!(
        !groups.body.contains("GID_console"),
        "the refused writes created nothing"
    );
    // With the token (as a form field this time): done, and visible through the API.
    let with_field = form(&[
        ("Action", "CreateGroupId"),
        ("GroupId", "GID_console"),
        ("csrf", &csrf),
    ]);
    let headers_no_token = [FORM, ("cookie", cookie.as_str())];
    let created = http(
        addr,
        "POST",
        "/console/api/action",
        &headers_no_token,
        with_field.as_bytes(),
    )
    .await;
    assert_eq!(created.status, 200, "{created:?}");
    let listed = api_get(
        &broker,
        AK,
        SECRET,
        "ListGroupId",
        &[("InstanceId", INSTANCE)],
    )
    .await;
    assert!(listed.body.contains("GID_console"), "{listed:?}");
    // What the API refuses, the console refuses with the same code.
    let again = http(
        addr,
        "POST",
        "/console/api/action",
        &headers,
        body.as_bytes(),
    )
    .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(again.json()["Code"], "GroupId.AlreadyExists");
    let bad = form(&[("Action", "CreateGroupId"), ("GroupId", "nogid")]);
    let refused = http(
        addr,
        "POST",
        "/console/api/action",
        &headers,
        bad.as_bytes(),
    )
    .await;
    assert_eq!(refused.json()["Code"], "InvalidParameter.GroupId");
    broker.shutdown().await;
}

#[tokio::test]
async fn a_limited_key_signs_in_with_its_own_rights() {
    let (broker, addr) = broker_with("").await;
    let response = sign_in(addr, LIMITED_AK, LIMITED_SECRET).await;
    assert_eq!(response.status, 303);
    let (cookie, _) = cookie_of(&response);
    let page = http(addr, "GET", "/console", &[("cookie", &cookie)], b"").await;
    let marker = "name=\"csrf-token\" content=\"";
    let start = page.body.find(marker).unwrap() + marker.len();
    let csrf = page.body[start..].split('"').next().unwrap().to_owned();
    let headers = [
        FORM,
        ("cookie", cookie.as_str()),
        ("x-csrf-token", csrf.as_str()),
    ];
    let expire = (now_ms() + 3_600_000).to_string();
    let beyond = form(&[
        ("Action", "ApplyToken"),
        ("Resources", "other/#"),
        ("Actions", "R"),
        ("ExpireTime", &expire),
    ]);
    let refused = http(
        addr,
        "POST",
        "/console/api/action",
        &headers,
        beyond.as_bytes(),
    )
    .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.json()["Code"], "Forbidden.Resources");
    let within = form(&[
        ("Action", "ApplyToken"),
        ("Resources", "shop/#"),
        ("Actions", "R"),
        ("ExpireTime", &expire),
    ]);
    let issued = http(
        addr,
        "POST",
        "/console/api/action",
        &headers,
        within.as_bytes(),
    )
    .await;
    assert_eq!(issued.status, 200, "{issued:?}");
    assert!(issued.json()["Token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    broker.shutdown().await;
}

#[tokio::test]
async fn sessions_expire_and_sign_out_ends_them() {
    let (broker, addr) = broker_with("console_session_ms = 1000").await;
    let (cookie, _) = session(addr).await;
    let with = [("cookie", cookie.as_str())];
    assert_eq!(
        http(addr, "GET", "/console/api/overview", &with, b"")
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let expired = http(addr, "GET", "/console/api/overview", &with, b"").await;
    assert_eq!(expired.status, 401, "{expired:?}");

    let (cookie, csrf) = session(addr).await;
    let headers = [FORM, ("cookie", cookie.as_str())];
    // Sign-out is a write: without the token, the session stays.
    let refused = http(addr, "POST", "/console/logout", &headers, b"").await;
    assert_eq!(refused.status, 403);
    let body = form(&[("csrf", &csrf)]);
    let out = http(addr, "POST", "/console/logout", &headers, body.as_bytes()).await;
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(out.header("location"), Some("/console/login"));
    let (pair, attributes) = cookie_of(&out);
    assert_eq!(pair, "mqgate_console=");
    assert!(
        attributes.iter().any(|a| a == "max-age=0"),
        "{attributes:?}"
    );
    let after = http(
        addr,
        "GET",
        "/console/api/overview",
        &[("cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(after.status, 401, "the old cookie no longer works");
    broker.shutdown().await;
}

#[tokio::test]
async fn no_console_without_auth_or_when_switched_off() {
    // No [auth]: nobody could sign in, so there is no console.
    let mut plain = BrokerConfig::from_toml_str(
        "storage = \"memory\"\n[listeners]\ntcp = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"",
    )
    .unwrap();
    plain.listeners.ws = None;
    let broker = start(plain, None).await;
    let response = http(http_addr(&broker), "GET", "/console/login", &[], b"").await;
    assert_eq!(response.status, 404, "{response:?}");
    broker.shutdown().await;
    let broker = start(config("console = false"), None).await;
    let response = http(http_addr(&broker), "GET", "/console/login", &[], b"").await;
    assert_eq!(response.status, 404, "{response:?}");
    broker.shutdown().await;
}

/// One HTTPS request, read to the end: the status line and header block.
async fn https_head(addr: SocketAddr, pki: &TestPki, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::ServerName;
    let connector = tokio_rustls::TlsConnector::from(rustls_client(pki));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let name = ServerName::try_from("127.0.0.1").expect("a name");
    let mut stream = tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    // Until the server closes (connection: close); a close without TLS close_notify is an
    // error here, after the answer.
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut chunk)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&chunk[..n]),
            Ok(Err(error)) => {
                eprintln!("https read: {error}");
                break;
            }
            Err(_) => panic!("no answer in time"),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn over_https_the_cookie_is_secure_and_the_api_still_answers() {
    let pki = test_pki();
    let mut config = config("tls = true");
    config.listeners.tls = Some(pki.files.clone());
    config.listeners.tls_addr = Some("127.0.0.1:0".parse().unwrap());
    config.listeners.wss_addr = None;
    let broker = start(config, None).await;
    let addr = http_addr(&broker);
    let body = form(&[("id", AK), ("secret", SECRET)]);
    let request = format!(
        "POST /console/login HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let head = https_head(addr, &pki, &request).await;
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    let cookie = head
        .lines()
        .find(|line| line.to_lowercase().starts_with("set-cookie:"))
        .expect("a cookie")
        .to_lowercase();
    assert!(cookie.contains("; secure"), "{cookie}");
    assert!(cookie.contains("httponly") && cookie.contains("samesite=strict"));
    let health = format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    assert!(https_head(addr, &pki, &health)
        .await
        .starts_with("HTTP/1.1 200"));
    // Plain HTTP to the HTTPS listener gets no answer a browser could use.
    let plain = tokio::time::timeout(WAIT, http_raw(addr))
        .await
        .expect("in time");
    assert!(!plain.starts_with("HTTP/1.1 200"), "{plain}");
    broker.shutdown().await;
}

/// A plain-text request to `addr`, whatever comes back as text.
async fn http_raw(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test]
async fn http_tls_without_a_certificate_is_a_start_error() {
    let config = config("tls = true");
    let error = mqgate_broker::Broker::builder()
        .config(config)
        .build()
        .start()
        .await
        .expect_err("no certificate to serve HTTPS with");
    assert!(error.to_string().contains("listeners.tls"), "{error}");
}

/// The newest sample of the overview, waiting (bounded) for one that `done` accepts.
async fn overview_until(
    addr: SocketAddr,
    cookie: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let response = http(
            addr,
            "GET",
            "/console/api/overview",
            &[("cookie", cookie)],
            b"",
        )
        .await;
        assert_eq!(response.status, 200, "{response:?}");
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap_or_default();
        let latest = body["history"]
            .as_array()
            .and_then(|h| h.last())
            .cloned()
            .unwrap_or_default();
        if done(&latest) {
            return latest;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The overview shows the cloud SDK endpoint: the connections, channels and consumers open,
/// and each queue with what waits in it (here a device's message in a configured queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_the_cloud_sdk_endpoint_when_it_is_served() {
    let mut with = config("");
    with.listeners.amqp = Some("127.0.0.1:0".parse().unwrap());
    with.amqp.queues = vec!["orders".into()];
    let broker = start(with, None).await;
    let addr = http_addr(&broker);
    let (cookie, _) = session(addr).await;
    let options = signed(&broker, &format!("{GROUP}@@@dev"), AK, SECRET);
    let (device, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    let events = tokio::spawn(async move {
        for _ in 0..100 {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::PubAck(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    });
    device
        .publish("orders/o-1", rumqttc::QoS::AtLeastOnce, false, "waits")
        .await
        .unwrap();
    let acked = tokio::time::timeout(WAIT, events).await;
    assert!(matches!(acked, Ok(Ok(true))), "{acked:?}");
    let queues = serde_json::json!([{ "name": "orders", "depth": 1 }]);
    let sample = overview_until(addr, &cookie, |s| s["cloud"]["queues"] == queues).await;
    let cloud = &sample["cloud"];
    assert_eq!(
        (
            &cloud["connections"],
            &cloud["channels"],
            &cloud["consumers"]
        ),
        (&0.into(), &0.into(), &0.into()),
        "{sample}"
    );
    broker.shutdown().await;
}
