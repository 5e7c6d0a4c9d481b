//! Decodes arbitrary bytes as trace log records (what a damaged segment file could hold):
//! never panics, whatever decodes re-encodes to the same record, and a log holding them
//! answers queries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_trace::fuzzing::decode_records(data);
});
