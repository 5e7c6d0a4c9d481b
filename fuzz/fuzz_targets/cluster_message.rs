//! Messages from a cluster's RocketMQ topics (route, presence and registry messages, heartbeats):
//! whatever another node, or anything else writing to those topics, sends, reading it must
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Option<String>, Vec<(String, String)>, Vec<u8>)| {
    let (tags, properties, body) = input;
    mqgate_broker::fuzzing::cluster_message(tags, properties, body);
});
