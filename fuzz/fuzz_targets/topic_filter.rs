//! Fuzzes the topic filter and shared subscription parsers of mqgate-topic; the invariants checked are in
//! `mqgate_topic::fuzzing::topic_filter`, which the crate's tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqgate_topic::fuzzing::topic_filter(data));
