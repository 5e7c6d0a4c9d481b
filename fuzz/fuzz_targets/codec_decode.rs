//! Decoder fuzz target: arbitrary bytes as a stream, split in two reads; invariants in
//! `mqgate_codec::check`. Findings go to crates/codec/tests/fuzz-regressions/*.bin.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_codec::check::decode_stream_invariants(data);
});
