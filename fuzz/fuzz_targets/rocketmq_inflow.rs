//! RocketMQ messages from backends: mapping one to an MQTT delivery must
//! never panic, whatever its topic and properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, Vec<(String, String)>, Vec<u8>)| {
    let (parent, properties, body) = input;
    mqgate_rocketmq::fuzzing::inflow(&parent, properties, body);
});
