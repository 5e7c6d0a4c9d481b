//! Fuzz target for the session state machine: the bytes are a script of connects, client
//! packets, deliveries, clock jumps, lost connections and restores; invariants in
//! `mqgate_session::fuzzing::run_script`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_session::fuzzing::run_script(data);
});
