//! Support for the authentication tests: a broker with an `[auth]` section over a store the
//! test can seed, and CONNECTs whose refusal code is observed with rumqttc.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use mqgate_auth::Registry as _;
use mqgate_broker::{Broker, BrokerConfig, BrokerHandle, ListenerKind};
use mqgate_store::{DurableRegistry, MemoryStore, Store};
use rumqttc::{AsyncClient, ConnectionError, Event, Incoming, MqttOptions};
use tokio::time::timeout;

pub const INSTANCE: &str = "mqtt-test";
/// A key allowed everything.
pub const AK: &str = "LTAI_TEST_AK";
pub const SECRET: &str = "test-secret-123";
/// A key limited to publishing under `shop/#` and subscribing to `shop/+/cmd`.
pub const LIMITED_AK: &str = "LTAI_LIMITED";
pub const LIMITED_SECRET: &str = "limited-secret";
pub const GROUP: &str = "GID_a";
pub const WAIT: Duration = Duration::from_secs(5);

/// `[auth]` with both keys and group `GID_a`, plus `extra` lines inside `[auth]`; TCP on an
/// ephemeral port, no HTTP listener, memory storage.
pub fn config(extra: &str) -> BrokerConfig {
    let text = format!(
        r#"
        storage = "memory"
        [listeners]
        tcp = "127.0.0.1:0"
        [http]
        enabled = false
        [auth]
        instance_id = "{INSTANCE}"
        groups = ["{GROUP}"]
        {extra}
        [[auth.access_keys]]
        id = "{AK}"
        secret = "{SECRET}"
        [[auth.access_keys]]
        id = "{LIMITED_AK}"
        secret = "{LIMITED_SECRET}"
        publish = ["shop/#"]
        subscribe = ["shop/+/cmd"]
        "#
    );
    let mut config = BrokerConfig::from_toml_str(&text).expect("test config parses");
    config.listeners.ws = None;
    // Not the cloud SDK endpoint's default port: tests run side by side.
    config.listeners.amqp = None;
    config
}

/// `[auth]` with key [`AK`] and the HTTP API on an ephemeral port, TCP on another;
/// `top` goes before the sections (storage), `http_extra` inside `[http]`, `auth_extra`
/// right after `instance_id` (options, then more `[[auth.access_keys]]`).
pub fn api_config(top: &str, http_extra: &str, auth_extra: &str) -> BrokerConfig {
    let text = format!(
        r#"
        {top}
        [listeners]
        tcp = "127.0.0.1:0"
        [http]
        listen = "127.0.0.1:0"
        {http_extra}
        [auth]
        instance_id = "{INSTANCE}"
        {auth_extra}
        [[auth.access_keys]]
        id = "{AK}"
        secret = "{SECRET}"
        "#
    );
    let mut config = BrokerConfig::from_toml_str(&text).expect("test config parses");
    config.listeners.ws = None;
    // Not the cloud SDK endpoint's default port: tests run side by side.
    config.listeners.amqp = None;
    config
}

/// A store the test seeds before the broker loads it, and the registry view of it.
pub fn seeded_store() -> (Arc<dyn Store>, DurableRegistry) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let registry = DurableRegistry::load(store.clone()).expect("loads");
    (store, registry)
}

pub async fn start(config: BrokerConfig, store: Option<Arc<dyn Store>>) -> BrokerHandle {
    let mut builder = Broker::builder().config(config);
    if let Some(store) = store {
        builder = builder.store(store);
    }
    builder.build().start().await.expect("broker starts")
}

pub fn options(broker: &BrokerHandle, client_id: &str) -> MqttOptions {
    let addr = broker.local_addr(ListenerKind::Tcp).expect("tcp listener");
    let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    options
}

pub fn signed(broker: &BrokerHandle, client_id: &str, ak: &str, secret: &str) -> MqttOptions {
    let mut options = options(broker, client_id);
    options.set_credentials(
        format!("Signature|{ak}|{INSTANCE}"),
        mqgate_auth::sign_client_id(secret, client_id),
    );
    options
}

/// Connects with `options` and returns the CONNACK code (`Success` or the refusal).
pub async fn connack_code(options: MqttOptions) -> rumqttc::ConnectReturnCode {
    let (_client, mut eventloop) = AsyncClient::new(options, 10);
    let answer = timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => return ack.code,
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => return code,
                Err(other) => panic!("connection failed without a CONNACK: {other:?}"),
            }
        }
    })
    .await;
    answer.expect("CONNACK in time")
}

/// Stores a token issued to [`AK`]; the broker sees it only if written before it starts
/// (it loads the registry from the store once).
pub fn put_token(
    registry: &DurableRegistry,
    token: &str,
    resources: &[&str],
    actions: &str,
    expire_ms: u64,
) {
    registry
        .put_token(mqgate_auth::TokenRecord {
            token: token.into(),
            access_key_id: AK.into(),
            instance_id: INSTANCE.into(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
            actions: mqgate_auth::TokenActions::parse(actions).expect("actions"),
            create_time_ms: 0,
            expire_time_ms: expire_ms,
            revoked: false,
        })
        .expect("token stored");
}

pub fn now_ms() -> u64 {
    mqgate_broker::clock::unix_time_ms()
}

/// An HTTP response as a raw client sees it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request over a fresh TCP connection (`Connection: close`), read to the end.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    stream.write_all(body).await.expect("writes body");
    let mut raw = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("answer in time")
        .expect("reads");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The RPC (HMAC-SHA1) parameters of `action` with `params`, signed with `secret` for
/// `method`, as an encoded `k=v&...` string.
pub fn rpc_signed(
    method: &str,
    ak: &str,
    secret: &str,
    action: &str,
    params: &[(&str, &str)],
) -> String {
    use mqgate_auth::openapi::{percent_encode, rpc};
    static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nonce = format!(
        "n-{}-{}",
        std::process::id(),
        NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let timestamp = iso8601(now_ms());
    let mut all: Vec<(String, String)> = vec![
        ("Action".into(), action.into()),
        ("Version".into(), "2020-04-20".into()),
        ("Format".into(), "JSON".into()),
        ("AccessKeyId".into(), ak.into()),
        ("SignatureMethod".into(), "HMAC-SHA1".into()),
        ("SignatureVersion".into(), "1.0".into()),
        ("SignatureNonce".into(), nonce),
        ("Timestamp".into(), timestamp),
    ];
    all.retain(|(k, _)| !params.iter().any(|(p, _)| p == k));
    all.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let to_sign = rpc::string_to_sign(method, &rpc::canonicalized_query(&all));
    all.push(("Signature".into(), rpc::sign(secret, &to_sign)));
    all.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encode(k.as_bytes()),
                percent_encode(v.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `YYYY-MM-DDTHH:MM:SSZ` for ms since the epoch (days to civil date, Howard Hinnant's
/// algorithm).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The JSON of a 200 answer (panics on any other status).
pub fn ok(response: &HttpResponse) -> serde_json::Value {
    assert_eq!(response.status, 200, "{response:?}");
    response.json()
}

/// A signed GET of `action` on the HTTP API.
pub async fn api_get(
    broker: &BrokerHandle,
    ak: &str,
    secret: &str,
    action: &str,
    params: &[(&str, &str)],
) -> HttpResponse {
    api_call(broker, "GET", ak, secret, action, params).await
}

/// A signed POST of `action` on the HTTP API, every parameter in the form body, as the SDKs
/// send the write actions.
pub async fn api_post(
    broker: &BrokerHandle,
    ak: &str,
    secret: &str,
    action: &str,
    params: &[(&str, &str)],
) -> HttpResponse {
    api_call(broker, "POST", ak, secret, action, params).await
}

/// `action` signed for `method`: a GET carries the parameters in its query, a POST in its
/// form body.
async fn api_call(
    broker: &BrokerHandle,
    method: &str,
    ak: &str,
    secret: &str,
    action: &str,
    params: &[(&str, &str)],
) -> HttpResponse {
    let addr = broker
        .local_addr(ListenerKind::Http)
        .expect("http listener");
    let signed = rpc_signed(method, ak, secret, action, params);
    if method == "GET" {
        return http(addr, method, &format!("/?{signed}"), &[], b"").await;
    }
    let form = [("content-type", "application/x-www-form-urlencoded")];
    http(addr, method, "/", &form, signed.as_bytes()).await
}

/// Starts a broker on `config()` (a redb store, say), retrying while a previous broker's
/// tasks are still letting go of the file after its shutdown (bounded).
pub async fn start_retrying(config: impl Fn() -> BrokerConfig) -> BrokerHandle {
    for _ in 0..50 {
        match Broker::builder().config(config()).build().start().await {
            Ok(broker) => return broker,
            Err(mqgate_broker::BrokerError::Store(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(other) => panic!("broker does not start: {other}"),
        }
    }
    panic!("the store stayed locked after the first broker shut down");
}
