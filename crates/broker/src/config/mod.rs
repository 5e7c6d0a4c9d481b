//! [`BrokerConfig`]: every listener and limit, named, defaulted and read from TOML.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mqgate_session::{Pacing, SessionConfig};
use mqgate_topic::{ClientIdRules, ClientIdSyntax};
use serde::Deserialize;

use crate::BrokerError;

mod amqp;
mod auth;
mod cluster;
mod rocketmq;
mod store;
mod trace;

pub use amqp::AmqpSettings;
pub use auth::{AccessKeySettings, AuthSettings, HttpSettings};
pub use cluster::ClusterConfig;
pub use rocketmq::{AckAfter, ConsumeFrom, RocketMqConfig};
pub use store::StoreSettings;
pub use trace::TraceSettings;

/// Everything a broker needs to start. Every field has a default (see [`Default`]), so a
/// TOML file names only what it changes.
///
/// ```
/// use mqgate_broker::BrokerConfig;
/// let config = BrokerConfig::from_toml_str(r#"
///     allow_anonymous = true
///     [listeners]
///     tcp = "127.0.0.1:0"
///     [limits]
///     max_connections = 100
/// "#)?;
/// assert_eq!(config.limits.max_connections, Some(100));
/// assert_eq!(config.listeners.ws_path, "/mqtt");
/// # Ok::<(), mqgate_broker::BrokerError>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Where to listen.
    pub listeners: ListenerConfig,
    /// Connection and queue limits.
    pub limits: Limits,
    /// What the limits of each client's session are (in-flight window, offline queue).
    pub session: SessionLimits,
    /// Accept clients without checking credentials. Off unless configured; the binary's
    /// no-argument dev default turns it on, with a loud warning.
    pub allow_anonymous: bool,
    /// SUBSCRIBE filters refused (0x80 in the SUBACK) to every client, whatever its grants:
    /// a filter lying within one of these (the same filter, or a narrower one) is refused.
    /// A wider filter (`test/+`, `#`) is not, and receives those topics too: this refuses
    /// subscriptions, it does not hide topics (grants' subscribe lists do). Empty by
    /// default; `["test/nosubscribe"]` is what interoperability suites expect refused.
    pub refuse_subscribe: Vec<String>,
    /// What a second connection with a client id already online does.
    pub takeover: TakeoverPolicy,
    /// Where the durable store keeps its file (`mqgate.redb`) when `storage` is `redb`.
    pub data_dir: PathBuf,
    /// Which store keeps persistent sessions, offline queues, retained messages and the
    /// API's registries: the embedded redb file in `data_dir` (the default) or memory only.
    pub storage: StorageKind,
    /// How the redb store runs (the `[store]` section): its page cache and crash recovery.
    pub store: StoreSettings,
    /// Instance id, AccessKeys, groups and token options (the `[auth]` section); without
    /// it only anonymous access or an embedder's authenticator lets clients in.
    pub auth: Option<AuthSettings>,
    /// The HTTP API listener (the `[http]` section); on at `127.0.0.1:8090` by default.
    pub http: HttpSettings,
    /// The RocketMQ bridge; absent (the default) means no bridge.
    pub rocketmq: Option<RocketMqConfig>,
    /// This node's place in a cluster of nodes over RocketMQ (the `[cluster]` section);
    /// absent (the default) means a single node.
    pub cluster: Option<ClusterConfig>,
    /// Message trace (the `[trace]` section, or `trace = false`); on by default, kept in
    /// `data_dir`'s `trace` directory (in memory with `storage = "memory"`).
    pub trace: TraceSettings,
    /// The cloud SDK endpoint's queues (the `[amqp]` section): which exist from start-up,
    /// and their bounds.
    pub amqp: AmqpSettings,
    /// What the broker tells MQTT 5 clients in its CONNACK (the `[mqtt5]` section).
    pub mqtt5: Mqtt5Settings,
}

/// What the broker tells MQTT 5 clients in its CONNACK (the `[mqtt5]` section).
///
/// ```
/// use mqgate_broker::BrokerConfig;
/// let config = BrokerConfig::from_toml_str(
///     "[mqtt5]\nmax_keep_alive = 120\nresponse_information = \"reply/\"",
/// )?;
/// assert_eq!(config.mqtt5.max_keep_alive, 120);
/// assert_eq!(config.mqtt5.response_information.as_deref(), Some("reply/"));
/// assert_eq!(config.mqtt5.receive_maximum.get(), 1024);
/// // A Receive Maximum of 0 is a protocol error: refused when the file is read.
/// assert!(BrokerConfig::from_toml_str("[mqtt5]\nreceive_maximum = 0").is_err());
/// # Ok::<(), mqgate_broker::BrokerError>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mqtt5Settings {
    /// The Receive Maximum the CONNACK announces (1024 by default, 1 to 65 535): how many
    /// QoS 1 and 2 PUBLISHes an MQTT 5 client may have unacknowledged towards the broker at
    /// once; one more gets DISCONNECT 0x93. It bounds what a client sends, not what the
    /// broker sends it (that is `[session] inflight_window`, capped by the client's own
    /// Receive Maximum). 3.1.1 has no such bound: its clients are held back only by TCP.
    pub receive_maximum: std::num::NonZeroU16,
    /// The longest keep-alive, in seconds, an MQTT 5 client may use; 0 (the default): no
    /// maximum. A client asking for more, or for none (0), gets this one in the CONNACK's
    /// Server Keep Alive, and the broker holds it to it.
    pub max_keep_alive: u16,
    /// The prefix of the Response Information the CONNACK carries for a client that asks for
    /// it (Request Response Information 1): the prefix followed by the client id, a basis for
    /// the client's response topics. Unset (the default): none is given.
    pub response_information: Option<String>,
    /// Sends clients to another server instead of serving them, from the start (see
    /// [`Redirect`]); unset (the default): none. At run time:
    /// [`BrokerHandle::redirect`](crate::BrokerHandle::redirect).
    pub redirect: Option<Redirect>,
}

impl Default for Mqtt5Settings {
    fn default() -> Self {
        Mqtt5Settings {
            receive_maximum: std::num::NonZeroU16::MIN.saturating_add(1023),
            max_keep_alive: 0,
            response_information: None,
            redirect: None,
        }
    }
}

/// Server redirection: MQTT 5 clients are refused with CONNACK 0x9C (Use another server) or,
/// when `permanent`, 0x9D (Server moved), with `server_reference` as the Server Reference
/// property; 3.1.1 clients, which have no such code, get CONNACK 3 (server unavailable).
///
/// ```
/// use mqgate_broker::BrokerConfig;
/// let config = BrokerConfig::from_toml_str(
///     "[mqtt5.redirect]\nserver_reference = \"mqtt-2.example.com:1883\"\npermanent = true",
/// )?;
/// let redirect = config.mqtt5.redirect.expect("set");
/// assert_eq!(redirect.server_reference, "mqtt-2.example.com:1883");
/// assert!(redirect.permanent);
/// # Ok::<(), mqgate_broker::BrokerError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// Where the client should connect instead: the standard leaves its form to the
    /// deployment; `host:port`, or several separated by spaces, is what clients expect.
    pub server_reference: String,
    /// `true`: the server moved for good (0x9D), the client should not come back; `false`
    /// (the default): use the other server for now (0x9C).
    #[serde(default)]
    pub permanent: bool,
}

impl Redirect {
    /// The reason code MQTT 5 clients get.
    pub(crate) fn reason(&self) -> mqgate_codec::ReasonCode {
        if self.permanent {
            mqgate_codec::ReasonCode::ServerMoved
        } else {
            mqgate_codec::ReasonCode::UseAnotherServer
        }
    }
}

/// Which [`Store`](mqgate_store::Store) the broker opens at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// The embedded redb database `mqgate.redb` in `data_dir`: crash-safe, no server.
    #[default]
    Redb,
    /// Memory only: everything is gone when the process ends (tests, ephemeral brokers).
    Memory,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listeners: ListenerConfig::default(),
            limits: Limits::default(),
            session: SessionLimits::default(),
            allow_anonymous: false,
            refuse_subscribe: Vec::new(),
            takeover: TakeoverPolicy::default(),
            data_dir: PathBuf::from("./data"),
            storage: StorageKind::default(),
            store: StoreSettings::default(),
            auth: None,
            http: HttpSettings::default(),
            rocketmq: None,
            cluster: None,
            trace: TraceSettings::default(),
            amqp: AmqpSettings::default(),
            mqtt5: Mqtt5Settings::default(),
        }
    }
}

impl BrokerConfig {
    /// Parses a TOML document; unknown keys are an error, so a typo never silently becomes a
    /// default.
    ///
    /// # Errors
    /// [`BrokerError::Config`] with the parser's message (line and column).
    pub fn from_toml_str(text: &str) -> Result<Self, BrokerError> {
        toml::from_str(text).map_err(|e| BrokerError::Config(e.to_string()))
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// [`BrokerError::Io`] when the file cannot be read, [`BrokerError::Config`] when it does
    /// not parse.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, BrokerError> {
        let text = std::fs::read_to_string(path).map_err(BrokerError::Io)?;
        Self::from_toml_str(&text)
    }

    /// The rules every CONNECT's client id is checked against:
    /// [`limits.client_id_rules`](Limits::client_id_rules) when set; otherwise the managed
    /// service's when an `[auth]` section is configured (its devices' ids), and MQTT's
    /// (any UTF-8 id without control characters) when not, so a broker without `[auth]`
    /// serves any MQTT client. Both are bounded by
    /// [`limits.max_client_id_len`](Limits::max_client_id_len).
    ///
    /// ```
    /// use mqgate_broker::BrokerConfig;
    /// use mqgate_topic::ClientIdSyntax;
    /// assert_eq!(BrokerConfig::default().client_id_rules().syntax, ClientIdSyntax::Mqtt);
    /// let managed = BrokerConfig::from_toml_str("[auth]\ninstance_id = \"i\"")?;
    /// assert_eq!(managed.client_id_rules().syntax, ClientIdSyntax::Service);
    /// let both = BrokerConfig::from_toml_str(
    ///     "[limits]\nclient_id_rules = \"mqtt\"\n[auth]\ninstance_id = \"i\"",
    /// )?;
    /// assert_eq!(both.client_id_rules().syntax, ClientIdSyntax::Mqtt);
    /// # Ok::<(), mqgate_broker::BrokerError>(())
    /// ```
    pub fn client_id_rules(&self) -> ClientIdRules {
        let syntax = match self.limits.client_id_rules {
            Some(ClientIdRuleSet::Mqtt) => ClientIdSyntax::Mqtt,
            Some(ClientIdRuleSet::Service) => ClientIdSyntax::Service,
            None if self.auth.is_some() => ClientIdSyntax::Service,
            None => ClientIdSyntax::Mqtt,
        };
        ClientIdRules {
            max_len: self.limits.max_client_id_len,
            syntax,
            ..ClientIdRules::default()
        }
    }

    /// A configuration for tests and embedding: TCP on an ephemeral 127.0.0.1 port, no other
    /// listener (no HTTP API either), anonymous access allowed, state in memory only.
    pub fn ephemeral() -> Self {
        BrokerConfig {
            listeners: ListenerConfig {
                tcp: Some(loopback(0)),
                ws: None,
                amqp: Some(loopback(0)),
                amqps_addr: Some(loopback(0)),
                ..ListenerConfig::default()
            },
            allow_anonymous: true,
            storage: StorageKind::Memory,
            http: HttpSettings::disabled(),
            ..BrokerConfig::default()
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Listener addresses. Every default binds 127.0.0.1 only: exposing a broker to a network is
/// a decision, not an accident.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerConfig {
    /// Plain MQTT over TCP; default `127.0.0.1:1883`.
    pub tcp: Option<SocketAddr>,
    /// MQTT over WebSocket; default `127.0.0.1:8083`.
    pub ws: Option<SocketAddr>,
    /// MQTT over TLS; used only with [`tls`](Self::tls); default `127.0.0.1:8883`.
    pub tls_addr: Option<SocketAddr>,
    /// MQTT over WebSocket over TLS; used only with [`tls`](Self::tls); default `127.0.0.1:8084`.
    pub wss_addr: Option<SocketAddr>,
    /// The cloud SDK endpoint (AMQP 0-9-1); default `127.0.0.1:5672`. Served only when
    /// `[auth]` has an AccessKey allowed on the API.
    pub amqp: Option<SocketAddr>,
    /// The cloud SDK endpoint over TLS; used only with [`tls`](Self::tls) and when
    /// [`amqp`](Self::amqp)'s conditions hold; default `127.0.0.1:5671`.
    pub amqps_addr: Option<SocketAddr>,
    /// The HTTP path WebSocket clients must request; default `/mqtt`.
    pub ws_path: String,
    /// Certificate and key for the TLS, WSS and AMQPS listeners; none by default.
    pub tls: Option<TlsFiles>,
    /// Each listener's queue of connections the kernel completed and the broker has not
    /// accepted yet (`listen(2)`'s backlog, capped by `net.core.somaxconn`); default 1024.
    /// When it overflows, as in a storm of devices reconnecting at once, the kernel drops
    /// their SYNs and they retry only after a second, so the connect rate collapses; the
    /// usual default of 128 was too small for hundreds of clients connecting at once.
    pub backlog: u32,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            tcp: Some(loopback(1883)),
            ws: Some(loopback(8083)),
            tls_addr: Some(loopback(8883)),
            wss_addr: Some(loopback(8084)),
            amqp: Some(loopback(5672)),
            amqps_addr: Some(loopback(5671)),
            ws_path: "/mqtt".to_owned(),
            tls: None,
            backlog: 1024,
        }
    }
}

/// PEM files of a TLS listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert_pem: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: PathBuf,
}

/// What happens when a client connects with a client id that is already online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TakeoverPolicy {
    /// Close the old connection and serve the new one (MQTT-3.1.4-2).
    #[default]
    KickOld,
    /// Refuse the new connection (CONNACK 2, identifier rejected) and keep the old one.
    RefuseNew,
}

/// Which client ids a CONNECT may carry (`limits.client_id_rules`); see
/// [`BrokerConfig::client_id_rules`] for the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientIdRuleSet {
    /// `"mqtt"`: any UTF-8 id without control characters, as MQTT 3.1.1 allows
    /// (`clean retained`, `ünïcödé`, `a/b`); an id without a valid `GID_...@@@` prefix has
    /// no group. Ids containing `/` cannot be reached by P2P address.
    Mqtt,
    /// `"service"`: the managed service's ids: letters, digits and `-_.:@`, and a valid
    /// `GID_` group whenever the id contains `@@@`; others get CONNACK 2.
    Service,
}

/// Limits of the broker as a whole and of each connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most connections open at once, over all listeners; further ones are closed at accept.
    /// Unset (the default), it follows the process's open-file limit: the soft limit less a
    /// reserve of 128 descriptors (the store's files, listeners, RocketMQ sockets) and the HTTP
    /// API's connections, but at least half the limit; 10 000 where the limit cannot be read.
    /// The broker logs the value in force at start.
    pub max_connections: Option<usize>,
    /// Largest MQTT packet accepted, in bytes (fixed header included); a larger one closes
    /// the connection as soon as its header arrives.
    pub max_packet_size: usize,
    /// How long a new connection may take to send CONNECT.
    #[serde(with = "millis")]
    pub connect_timeout: Duration,
    /// Capacity of each connection's inbox of routed messages (messages, not bytes). It
    /// bounds how many messages a receiver takes, and writes, per wake-up: a small inbox
    /// makes a fast publisher stop at every full one and its receivers write only a few dozen
    /// messages per system call, which costs fan-out throughput. Slots are allocated only
    /// while messages wait, and given back once the inbox is empty; a slot holds a handle,
    /// not a copy (the messages themselves are shared).
    pub inbox_capacity: usize,
    /// How long a publisher may wait for a full receiver before it is disconnected.
    #[serde(with = "millis")]
    pub backpressure_timeout: Duration,
    /// How long a publisher waits for room in a full receiver's inbox for a QoS 0 message
    /// before that message is dropped (and counted) for that receiver. The wait is the flow
    /// control that keeps a fast publisher from overrunning a receiver that is only briefly
    /// behind; a receiver that made a publisher give up is then skipped without waiting (QoS 0
    /// dropped at once) by that publisher for a second, so a stuck client cannot slow
    /// everyone down.
    #[serde(with = "millis")]
    pub qos0_wait: Duration,
    /// Capacity of the status-event broadcast channel; a listener that lags further behind
    /// loses the oldest events (and is told how many).
    pub status_channel_capacity: usize,
    /// Longest client id accepted, in bytes.
    pub max_client_id_len: usize,
    /// Which client ids are accepted: `"mqtt"` or `"service"`. Unset (the default), it is
    /// `"service"` with an `[auth]` section and `"mqtt"` without (see
    /// [`BrokerConfig::client_id_rules`]).
    pub client_id_rules: Option<ClientIdRuleSet>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: None,
            max_packet_size: 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            inbox_capacity: 1024,
            backpressure_timeout: Duration::from_secs(30),
            qos0_wait: Duration::from_millis(100),
            status_channel_capacity: 1024,
            max_client_id_len: mqgate_topic::DEFAULT_MAX_CLIENT_ID_LEN,
            client_id_rules: None,
        }
    }
}

/// The session limits, as configured (mirrors [`SessionConfig`]).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionLimits {
    /// Most outbound QoS 1 and 2 messages unacknowledged at once.
    pub inflight_window: u16,
    /// Most messages waiting per client (online behind the window, or offline).
    pub max_queued_messages: usize,
    /// Most bytes (topic + payload) waiting per client.
    pub max_queued_bytes: usize,
    /// How long an offline message is kept, in milliseconds.
    pub message_ttl_ms: u64,
    /// Queued messages a persistent session holds in memory while its client is online, when
    /// queues are kept on disk (`storage = "redb"`, or a store given to the builder); the
    /// rest of its queue stays in the store and is read back a page at a time. An offline
    /// session holds none. At least 1.
    pub queue_window: usize,
    /// The managed service's offline pacing: a reconnecting client gets its queued messages
    /// in batches of 30, 5 s apart (never more than the in-flight window allows). Off: as
    /// fast as the in-flight window allows.
    pub offline_pacing: bool,
    /// Bytes of queued messages read back from the store that all the sessions draining a
    /// backlog hold together (in their windows and in flight), when queues are kept on disk.
    /// Each of the sessions that still have more in the store gets an equal share, in
    /// messages of the average size read so far, and at least one message. 64 MiB by
    /// default.
    pub backlog_memory_bytes: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        let base = SessionConfig::default();
        SessionLimits {
            inflight_window: base.inflight_window,
            max_queued_messages: base.max_queued_messages,
            max_queued_bytes: base.max_queued_bytes,
            message_ttl_ms: base.message_ttl_ms,
            queue_window: DEFAULT_QUEUE_WINDOW,
            offline_pacing: false,
            backlog_memory_bytes: DEFAULT_BACKLOG_MEMORY_BYTES,
        }
    }
}

/// The default of [`SessionLimits::backlog_memory_bytes`]: 64 MiB.
pub(crate) const DEFAULT_BACKLOG_MEMORY_BYTES: usize = 64 << 20;

/// The default of [`SessionLimits::queue_window`]: a page is read while half the window is
/// still there to send.
pub(crate) const DEFAULT_QUEUE_WINDOW: usize = 64;

impl SessionLimits {
    /// The session crate's configuration with these limits.
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            inflight_window: self.inflight_window,
            max_queued_messages: self.max_queued_messages,
            max_queued_bytes: self.max_queued_bytes,
            message_ttl_ms: self.message_ttl_ms,
            pacing: if self.offline_pacing {
                Pacing::MODEL_SERVICE
            } else {
                Pacing::Window
            },
            ..SessionConfig::default()
        }
    }
}

/// Durations in TOML are integers of milliseconds (`connect_timeout = 10000`).
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// The commented-out section of the example file that starts at the line `# [{name}]`, up
/// to the next blank line, uncommented: a configuration to parse.
#[cfg(test)]
pub(crate) fn example_section(name: &str) -> String {
    let example = include_str!("../../mqgate.example.toml");
    let marker = format!("# [{name}]");
    let start = example
        .find(&marker)
        .expect("the section in the example file");
    let end = example[start..]
        .find("\n\n")
        .map_or(example.len(), |n| start + n);
    example[start..end]
        .lines()
        .map(|line| line.strip_prefix("# ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let config = BrokerConfig::from_toml_str("").unwrap();
        assert_eq!(config.listeners.tcp, Some(loopback(1883)));
        assert_eq!(config.listeners.ws, Some(loopback(8083)));
        assert!(!config.allow_anonymous);
        assert_eq!(config.takeover, TakeoverPolicy::KickOld);
        assert!(config.auth.is_none());
        assert_eq!(config.http.listen, loopback(8090));
        assert_eq!(config.listeners.backlog, 1024);
        assert_eq!(config.limits.inbox_capacity, 1024);
        assert_eq!(config.limits.client_id_rules, None);
        assert_eq!(config.client_id_rules().syntax, ClientIdSyntax::Mqtt);
        assert_eq!(
            BrokerConfig::ephemeral().client_id_rules().syntax,
            ClientIdSyntax::Mqtt
        );
    }

    #[test]
    fn client_id_rules_follow_auth_unless_set() {
        let auth = "[auth]\ninstance_id = \"i\"\n";
        let cases = [
            ("", ClientIdSyntax::Mqtt),
            (auth, ClientIdSyntax::Service),
            (
                "[limits]\nclient_id_rules = \"service\"\n",
                ClientIdSyntax::Service,
            ),
            (
                "[limits]\nclient_id_rules = \"mqtt\"\n",
                ClientIdSyntax::Mqtt,
            ),
        ];
        for (text, syntax) in cases {
            let config = BrokerConfig::from_toml_str(text).unwrap();
            assert_eq!(config.client_id_rules().syntax, syntax, "{text}");
        }
        let text = format!("[limits]\nclient_id_rules = \"mqtt\"\nmax_client_id_len = 23\n{auth}");
        let rules = BrokerConfig::from_toml_str(&text)
            .unwrap()
            .client_id_rules();
        assert_eq!((rules.syntax, rules.max_len), (ClientIdSyntax::Mqtt, 23));
        assert!(BrokerConfig::from_toml_str("[limits]\nclient_id_rules = \"any\"").is_err());
    }

    #[test]
    fn durations_are_milliseconds_and_unknown_keys_fail() {
        let config = BrokerConfig::from_toml_str(
            "takeover = \"refuse_new\"\n[listeners]\nbacklog = 4096\n[limits]\nconnect_timeout = 250\n",
        )
        .unwrap();
        assert_eq!(config.listeners.backlog, 4096);
        assert_eq!(config.limits.connect_timeout, Duration::from_millis(250));
        assert_eq!(config.takeover, TakeoverPolicy::RefuseNew);
        for bad in [
            "typo = 1",
            "[limits]\nmax_conections = 1",
            "[listeners]\ntcp = \"nope\"",
        ] {
            assert!(BrokerConfig::from_toml_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../mqgate.example.toml");
        let config = BrokerConfig::from_toml_str(text).unwrap();
        assert_eq!(config.listeners.ws_path, "/mqtt");
        let auth = config.auth.expect("the example has [auth]");
        assert_eq!(auth.access_keys.len(), 1);
        assert!(auth.auth_config(config.allow_anonymous).is_ok());
        assert!(config.http.enabled);
        assert!(config.http.console && !config.http.tls);
        assert_eq!(config.http.console_session_ms, 1_800_000);
        assert_eq!(config.http.console_max_failures, 5);
        assert_eq!(config.trace, crate::TraceSettings::default());
    }

    #[test]
    fn arbitrary_text_never_panics() {
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&"[ -~\n]{0,80}", |text| {
                let _ = BrokerConfig::from_toml_str(&text);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn offline_pacing_and_the_queue_window_are_session_settings() {
        let default = BrokerConfig::from_toml_str("").unwrap().session;
        assert_eq!(default.queue_window, DEFAULT_QUEUE_WINDOW);
        assert_eq!(
            default.session_config().pacing,
            Pacing::Window,
            "off by default"
        );
        let config =
            BrokerConfig::from_toml_str("[session]\noffline_pacing = true\nqueue_window = 8\n")
                .unwrap();
        assert_eq!(config.session.queue_window, 8);
        assert_eq!(
            config.session.session_config().pacing,
            Pacing::Batches {
                size: 30,
                interval_ms: 5_000
            }
        );
    }
}
