//! MQTT 5 decoder fuzz target: arbitrary bytes as a v5 stream split in two reads, and through
//! the per-connection decoder; invariants in `mqgate_codec::fuzzing`. Findings go to
//! crates/codec/tests/fuzz-regressions/v5-*.bin.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_codec::fuzzing::decode_stream_invariants_v5(data);
});
