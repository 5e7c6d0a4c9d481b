//! Entry points of the fuzz targets (`fuzz/fuzz_targets/status_*.rs`).
//!
//! Each function feeds arbitrary bytes to a parser and panics only if an
//! invariant breaks; the parsers themselves never panic. The crate's own
//! tests run the same functions over random inputs.

use crate::{ChannelId, StatusEvent};

/// Status event bodies: whatever decodes re-encodes to a body that decodes
/// to the same event.
pub fn event_json(data: &[u8]) {
    if let Ok(event) = StatusEvent::from_json(data) {
        let again = StatusEvent::from_json(event.to_json().as_bytes()).ok();
        assert_eq!(again.as_ref(), Some(&event));
    }
}

/// Channel ids in text form: what parses prints back as the same text (the
/// canonical form is the only one accepted).
pub fn channel_id(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<ChannelId>() {
        assert_eq!(id.to_string(), text);
    }
}
