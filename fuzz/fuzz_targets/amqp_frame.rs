//! AMQP frame decoder fuzz target: arbitrary bytes as a frame stream, split in two reads;
//! invariants in `mqgate_amqp::fuzzing`. Findings go to
//! crates/amqp/tests/fuzz-regressions/frame/*.bin.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_amqp::fuzzing::frame_invariants(data);
});
