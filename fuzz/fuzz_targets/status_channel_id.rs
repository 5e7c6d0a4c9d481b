//! Channel ids in text form: parsing must never panic, and what parses prints
//! back as the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqgate_status::fuzzing::channel_id(data));
