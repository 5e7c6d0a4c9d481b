//! Status event bodies from the outside (RocketMQ, sinks): decoding must never
//! panic, and whatever decodes must re-encode to a body that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqgate_status::fuzzing::event_json(data));
