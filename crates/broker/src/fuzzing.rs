//! Entry points for fuzzing and property tests: drive a whole connection task (handshake,
//! session, router) with arbitrary bytes, in memory, with no socket.
//!
//! Not part of the stable API.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::auth::{Access, AllowAnonymous};
use crate::handshake::serve;
use crate::shared::Shared;
use crate::BrokerConfig;

/// A CONNECT for client id "fuzz" (clean session, keep-alive 30 s), to put before input
/// that should reach the session rather than the handshake.
pub const CONNECT: &[u8] = &[
    0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x1E, 0x00, 0x04, b'f', b'u',
    b'z', b'z',
];

/// Feeds `input` to a fresh broker's connection task over an in-memory stream, closes the
/// client's side and waits (at most 2 s) for the broker to close its side. Returns the bytes
/// the broker wrote. Panics only if the broker did (which is what a fuzzer looks for), or
/// the runtime or the store writer thread cannot start (this harness has nothing to return
/// such an error to).
pub fn drive_connection(input: &[u8]) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let (_shutdown_tx, shutdown) = watch::channel(false);
        let mut config = BrokerConfig::ephemeral();
        config.limits.max_packet_size = 64 * 1024;
        config.limits.connect_timeout = Duration::from_millis(200);
        let shared = Arc::new(
            Shared::new(
                config,
                Access::only(Box::new(AllowAnonymous)),
                Arc::new(mqgate_store::MemoryStore::new()),
                shutdown,
            )
            .expect("the store writer thread starts"),
        );
        let (mut client, server) = tokio::io::duplex(256 * 1024);
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
        let task = tokio::spawn(serve(server, peer, shared));
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
    })
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
    }
}
