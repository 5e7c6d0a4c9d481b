//! Status event bodies from the outside (RocketMQ, sinks): decoding must never
//! panic, and whatever decodes must re-encode to a body that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqgate_status::StatusEvent;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = StatusEvent::from_json(data) {
        let again = StatusEvent::from_json(event.to_json().as_bytes()).ok();
        assert_eq!(again.as_ref(), Some(&event));
    }
});
