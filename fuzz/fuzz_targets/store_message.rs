//! Decodes arbitrary bytes as a stored message record (what a damaged data file could hold):
//! never panics, and whatever decodes re-encodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_store::fuzzing::decode_stored_message(data);
});
