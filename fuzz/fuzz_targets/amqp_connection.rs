//! AMQP connection state machine fuzz target: a logged-in server connection fed arbitrary
//! client bytes in pieces, with a broker answering its events; invariants in
//! `mqgate_amqp::fuzzing`. Findings go to crates/amqp/tests/fuzz-regressions/connection/*.bin.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_amqp::fuzzing::connection_invariants(data);
});
