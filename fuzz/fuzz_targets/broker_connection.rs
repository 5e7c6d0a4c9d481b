//! Fuzz target for a whole broker connection task (handshake, session, router) fed arbitrary
//! bytes over an in-memory stream. Odd first bytes put a valid CONNECT in front, so the input
//! reaches the session and the router instead of stopping at the handshake most of the time.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mqgate_broker::fuzzing::{drive_connection, CONNECT};

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((first, rest)) if first & 1 == 1 => {
            let mut input = CONNECT.to_vec();
            input.extend_from_slice(rest);
            let answer = drive_connection(&input);
            // A valid CONNECT is always answered with CONNACK 0 first.
            assert!(answer.starts_with(&[0x20, 0x02, 0x00, 0x00]), "{answer:?}");
        }
        _ => {
            let _ = drive_connection(data);
        }
    }
});
