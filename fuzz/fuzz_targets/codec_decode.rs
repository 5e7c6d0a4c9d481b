//! Decoder fuzz target: arbitrary bytes as a stream, split in two reads; invariants in
//! `mqgate_codec::fuzzing`. Findings go to crates/codec/tests/fuzz-regressions/*.bin.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_codec::fuzzing::decode_stream_invariants(data);
});
