//! Entry points of the fuzz targets (`fuzz/fuzz_targets/auth_*.rs`).
//!
//! Each function feeds arbitrary bytes to a parser and panics only if an
//! invariant breaks; the parsers themselves never panic. The crate's own
//! tests run the same functions over random inputs.

use sha2::{Digest, Sha256};

use crate::openapi::{self, acs3, HttpRequestParts, NonceGuard};
use crate::{sign_client_id, verify_client_id_signature, AuthMode, TokenPassword, Username};

/// Username parser: a parsed username prints back to the same text.
pub fn username(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(user) = Username::parse(text) else {
        return;
    };
    let mode = match user.mode {
        AuthMode::Signature => "Signature",
        AuthMode::Token => "Token",
        AuthMode::DeviceCredential => "DeviceCredential",
    };
    assert_eq!(
        format!("{mode}|{}|{}", user.access_key_id, user.instance_id),
        text
    );
}

/// Password parsers: a parsed token password re-parses to the same tokens
/// from its canonical form, and a signature password verifies exactly when it
/// equals the computed one.
pub fn password(data: &[u8]) {
    if let Ok(tokens) = TokenPassword::parse(data) {
        let canonical: Vec<String> = [
            ("R", tokens.read),
            ("W", tokens.write),
            ("RW", tokens.read_write),
        ]
        .iter()
        .filter_map(|(kind, token)| token.map(|token| format!("{kind}|{token}")))
        .collect();
        let canonical = canonical.join("|");
        assert_eq!(TokenPassword::parse(canonical.as_bytes()), Ok(tokens));
        assert!(tokens.tokens().all(|(token, _, _)| !token.contains('|')));
    }
    let expected = sign_client_id("fuzz-secret", "GID_f@@@d");
    assert_eq!(
        verify_client_id_signature("fuzz-secret", "GID_f@@@d", data),
        data == expected.as_bytes()
    );
}

/// `Authorization` header parser and the ACS3 verifier behind it: a parsed
/// header has non-empty fields, and a full verification of a request
/// carrying the header (with the same bytes as its query) fails cleanly.
pub fn authorization_header(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(auth) = acs3::parse_authorization(text) {
        assert!(!auth.credential.is_empty() && !auth.signature.is_empty());
        assert!(auth.signed_headers.iter().all(|name| !name.is_empty()));
    }
    let _ = acs3::canonical_query(text);
    let _ = openapi::parse_iso8601_utc(text);
    let request = HttpRequestParts {
        method: "POST",
        path: text,
        raw_query: text,
        headers: vec![
            ("Authorization".into(), text.into()),
            ("host".into(), "h".into()),
            ("x-acs-date".into(), text.into()),
            ("x-acs-signature-nonce".into(), "n".into()),
            // The real hash, so verification gets past it to the signature.
            (
                "x-acs-content-sha256".into(),
                hex::encode(Sha256::digest(data)),
            ),
        ],
        body: data,
    };
    let guard = NonceGuard::default();
    // Any secret: the bytes cannot have been signed with it, except by a
    // collision the fuzzer will not find.
    let outcome = openapi::verify_request(&request, |_| Some("s".into()), 0, &guard);
    assert!(outcome.is_err());
    assert!(guard.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: &[&[u8]] = &[
        b"Signature|AK|inst",
        b"DeviceCredential|D|i",
        b"R|t1|W|t2",
        b"RW|x",
        b"ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date,Signature=00",
        b"ACS3-HMAC-SHA256 Credential=,Signature=,SignedHeaders=;;",
        b"a=%zz&b=+&c",
        b"2026-11-25T19:12:02Z",
    ];

    #[test]
    fn seeds_hold_the_invariants() {
        for seed in SEEDS {
            username(seed);
            password(seed);
            authorization_header(seed);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn random_bytes_hold_the_invariants(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..96),
        ) {
            username(&bytes);
            password(&bytes);
            authorization_header(&bytes);
        }

        #[test]
        fn structured_text_holds_the_invariants(
            text in "(Signature|Token|DeviceCredential|R|W|RW|ACS3-HMAC-SHA256 |Credential=|SignedHeaders=|Signature=|[|,;= a-z%0-9])*",
        ) {
            username(text.as_bytes());
            password(text.as_bytes());
            authorization_header(text.as_bytes());
        }
    }
}
