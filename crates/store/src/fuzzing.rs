//! Entry points shared by the fuzz targets and the plain tests that run them.

/// Decodes `bytes` as a stored message and, when that works, checks that encoding it again
/// gives a record that decodes to the same message. Panics only on a bug.
pub fn decode_stored_message(bytes: &[u8]) {
    if let Ok(message) = crate::codec::decode_message(bytes) {
        let again = crate::codec::decode_message(&crate::codec::encode_message(&message));
        assert_eq!(again.ok().as_ref(), Some(&message));
    }
}
