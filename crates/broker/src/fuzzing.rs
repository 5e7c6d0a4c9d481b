//! Entry points for fuzzing and property tests: drive a whole connection task (handshake,
//! session, router) with arbitrary bytes, in memory, with no socket.
//!
//! Not part of the stable API.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::auth::{Access, AllowAnonymous};
use crate::connection::{handshake::serve, ConnCtx};
use crate::core::Core;
use crate::BrokerConfig;

/// A CONNECT for client id "fuzz" (clean session, keep-alive 30 s), to put before input
/// that should reach the session rather than the handshake.
pub const CONNECT: &[u8] = &[
    0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x1E, 0x00, 0x04, b'f', b'u',
    b'z', b'z',
];

/// Inputs served by one broker before a fresh one replaces it, so that what persistent
/// sessions left behind cannot grow without bound over a long fuzzing run.
const INPUTS_PER_BROKER: u32 = 4096;

/// One broker's connection context on its own current-thread runtime, reused across inputs:
/// a runtime and a store writer thread per input would make the harness, not the broker, the
/// cost of every run.
struct Harness {
    runtime: Runtime,
    ctx: Arc<ConnCtx>,
    served: u32,
    _shutdown: watch::Sender<bool>,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        let (shutdown_tx, shutdown) = watch::channel(false);
        let mut config = BrokerConfig::ephemeral();
        config.limits.max_packet_size = 64 * 1024;
        config.limits.connect_timeout = Duration::from_millis(200);
        let session = config.session.session_config();
        let store = Arc::new(mqgate_store::MemoryStore::new());
        let rules = config.client_id_rules();
        let core = Core::start(store, &config.limits, &session, rules, None, shutdown)
            .expect("the store writer thread starts");
        let access = Access::only(Box::new(AllowAnonymous));
        let ctx = ConnCtx::new(&config, Arc::new(core), Arc::new(access), None);
        Harness {
            runtime,
            ctx: Arc::new(ctx),
            served: 0,
            _shutdown: shutdown_tx,
        }
    }
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

/// Feeds `input` to a broker's connection task over an in-memory stream, closes the client's
/// side and waits (at most 2 s) for the broker to close its side. Returns the bytes the
/// broker wrote. The broker, its runtime and its store writer are made once per thread and
/// reused (replaced every few thousand inputs). Panics only if the broker did (which is what
/// a fuzzer looks for), or the runtime or the store writer thread cannot start (this harness
/// has nothing to return such an error to).
pub fn drive_connection(input: &[u8]) -> Vec<u8> {
    HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_some_and(|h| h.served >= INPUTS_PER_BROKER) {
            *cell = None;
        }
        let harness = cell.get_or_insert_with(Harness::new);
        harness.served += 1;
        let ctx = harness.ctx.clone();
        harness.runtime.block_on(run(input, ctx))
    })
}

async fn run(input: &[u8], ctx: Arc<ConnCtx>) -> Vec<u8> {
    let (mut client, server) = tokio::io::duplex(256 * 1024);
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    let task = tokio::spawn(serve(server, peer, ctx));
    let _ = client.write_all(input).await;
    let _ = client.shutdown().await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), client.read_to_end(&mut answer)).await;
    drop(client);
    if let Ok(Err(error)) = tokio::time::timeout(Duration::from_secs(2), task).await {
        if error.is_panic() {
            std::panic::resume_unwind(error.into_panic());
        }
    }
    answer
}

/// A message from a cluster's RocketMQ topics (a route message, a presence message, a
/// registry message or a heartbeat), with any tag, properties and body, read as a node reads what the others
/// send: it must never panic, and a route or presence message must read back the same once
/// sent on.
pub fn cluster_message(tags: Option<String>, properties: Vec<(String, String)>, body: Vec<u8>) {
    crate::cluster::fuzz_consumed(tags, properties, body);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn connect_then_ping_is_answered() {
        let mut input = CONNECT.to_vec();
        input.extend_from_slice(&[0xC0, 0x00]);
        let answer = drive_connection(&input);
        assert_eq!(
            answer,
            [0x20, 0x02, 0x00, 0x00, 0xD0, 0x00],
            "CONNACK 0, PINGRESP"
        );
    }

    /// Packet-shaped noise: mostly valid fixed-header bytes followed by arbitrary bodies.
    fn noise() -> impl Strategy<Value = Vec<u8>> {
        let packet = (
            0u8..=15,
            0u8..=15,
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(kind, flags, body)| {
                let mut p = vec![(kind << 4) | flags, body.len() as u8];
                p.extend(body);
                p
            });
        proptest::collection::vec(packet, 0..8).prop_map(|ps| ps.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_after_connect_never_panic(body in noise()) {
            let mut input = CONNECT.to_vec();
            input.extend(body);
            let answer = drive_connection(&input);
            prop_assert!(answer.starts_with(&[0x20, 0x02, 0x00, 0x00]), "CONNACK first: {answer:?}");
        }

        #[test]
        fn arbitrary_bytes_as_a_first_packet_never_panic(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = drive_connection(&input);
        }

        /// Presence-shaped messages (a known tag, the sender's properties, a status event's
        /// JSON, perhaps followed by a will's message record with its length property near
        /// the JSON's, perhaps with bytes after, perhaps cut short): read as a node reads
        /// them, they never panic, and what reads back reads the same again.
        #[test]
        fn presence_shaped_messages_never_panic(
            tag in prop::sample::select(vec!["connect", "disconnect", "tcpclean", "present", "hello", "join", "close", "other"]),
            kind in prop::sample::select(vec!["connect", "disconnect", "tcpclean"]),
            will in proptest::option::of((proptest::collection::vec(any::<u8>(), 0..20), -2i64..=2)),
            retain in any::<bool>(),
            tail in proptest::collection::vec(any::<u8>(), 0..8),
            cut in proptest::option::of(0usize..300),
        ) {
            let json = format!(
                r#"{{"clientId":"GID_a@@@1","time":5,"eventType":"{kind}","channelId":"{}","clientIp":"127.0.0.1:1","seq":2}}"#,
                "ab".repeat(16)
            );
            let mut body = json.into_bytes();
            let mut properties = vec![
                ("mqgateNode".to_owned(), "n1".to_owned()),
                ("mqgateStarted".to_owned(), "7".to_owned()),
            ];
            if let Some((payload, shift)) = will {
                let at = i64::try_from(body.len()).unwrap_or(0) + shift;
                properties.push(("mqgateWill".to_owned(), at.to_string()));
                let message = mqgate_session::Message::new(
                    mqgate_session::MessageId(0),
                    mqgate_codec::ByteStr::from_static("gone/a"),
                    bytes::Bytes::from(payload),
                    mqgate_codec::QoS::AtLeastOnce,
                    5,
                );
                body.extend(mqgate_store::codec::encode_message(&message));
            }
            if retain {
                properties.push(("mqgateWillRetain".to_owned(), "1".to_owned()));
            }
            body.extend(tail);
            if let Some(cut) = cut {
                body.truncate(cut.max(1));
            }
            cluster_message(Some(tag.to_owned()), properties, body);
        }

        /// Registry-shaped messages (a known tag, the sender's properties with or without a
        /// snapshot's, a change's JSON of each record kind or a message record, perhaps with
        /// bytes after, perhaps cut short): read as a node reads them, they never panic, and
        /// what reads back reads the same again.
        #[test]
        fn registry_shaped_messages_never_panic(
            tag in prop::sample::select(vec!["change", "retained", "hello", "join", "other"]),
            kind in prop::sample::select(vec!["group", "token", "device", "identity", "permission", "black", "other"]),
            snapshot in proptest::option::of((any::<bool>(), "[0-9a-z]{0,3}")),
            removed in any::<bool>(),
            stamp in any::<u64>(),
            tail in proptest::collection::vec(any::<u8>(), 0..8),
            cut in proptest::option::of(0usize..300),
        ) {
            let record = match kind {
                "group" => r#"{"group_id":"GID_a","create_time_ms":1,"update_time_ms":1,"independent_naming":true,"tags":{}}"#.to_owned(),
                "token" => r#"{"token":"t","access_key_id":"ak","instance_id":"i","resources":["a/#"],"actions":"R","create_time_ms":1,"expire_time_ms":2,"revoked":true}"#.to_owned(),
                "black" => r#"{"client_id":"GID_a@@@1","create_time_ms":1}"#.to_owned(),
                _ => r#"{"client_id":"GID_a@@@1"}"#.to_owned(),
            };
            let mut body = if tag == "retained" {
                let message = mqgate_session::Message::new(
                    mqgate_session::MessageId(3),
                    mqgate_codec::ByteStr::from_static("kept/a"),
                    bytes::Bytes::from_static(b"x"),
                    mqgate_codec::QoS::AtLeastOnce,
                    5,
                );
                mqgate_store::codec::encode_message(&message).to_vec()
            } else if tag == "hello" {
                format!(r#"{{"sent_ms":{stamp}}}"#).into_bytes()
            } else {
                format!(
                    r#"{{"stamp":{{"ms":{stamp},"node":"n1"}},"removed":{removed},"record":{{"kind":"{kind}","record":{record}}}}}"#
                )
                .into_bytes()
            };
            let mut properties = vec![("mqgateNode".to_owned(), "n1".to_owned())];
            if let Some((for_fuzz, sent)) = snapshot {
                let to = if for_fuzz { "fuzz" } else { "n9" };
                properties.push(("mqgateFor".to_owned(), to.to_owned()));
                properties.push(("mqgateSent".to_owned(), sent));
            }
            body.extend(tail);
            if let Some(cut) = cut {
                body.truncate(cut.max(1));
            }
            cluster_message(Some(tag.to_owned()), properties, body);
        }
    }
}
