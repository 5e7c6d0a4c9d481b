//! The two HMACs the crate needs, in one place.

use hmac::{Hmac, Mac};

/// HMAC-SHA1 of `data` under `key`.
pub(crate) fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    mac::<Hmac<sha1::Sha1>>(key, data).into()
}

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    mac::<Hmac<sha2::Sha256>>(key, data).into()
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> hmac::digest::Output<M> {
    // HMAC hashes keys longer than a block and pads shorter ones, so every
    // key length is valid and `new_from_slice` never returns its error.
    let mut mac = match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2202_and_4231_vectors() {
        // RFC 2202 test case 2 and RFC 4231 test case 2 (key "Jefe").
        let data = b"what do ya want for nothing?";
        assert_eq!(
            hex::encode(hmac_sha1(b"Jefe", data)),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", data)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
