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

/// A group-registered registry write the broker will see: only before it starts.
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
