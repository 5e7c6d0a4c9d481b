//! Channel ids in text form: parsing must never panic, and what parses prints
//! back as the same text (the canonical form is the only accepted one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqgate_status::ChannelId;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok(id) = text.parse::<ChannelId>() {
            assert_eq!(id.to_string(), text);
        }
    }
});
