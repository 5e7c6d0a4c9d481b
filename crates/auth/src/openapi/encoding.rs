//! RFC 3986 percent-encoding as both signature schemes use it, and
//! `application/x-www-form-urlencoded` parsing.
//!
//! Encoding and decoding are the `percent-encoding` crate's, with the schemes'
//! set (everything but the unreserved characters is escaped). Form parsing
//! stays here, strict where `form_urlencoded::parse` is lenient: a malformed
//! `%` escape and bytes that are not UTF-8 once decoded are errors, where that
//! crate passes the `%` through and replaces the bytes with U+FFFD, so that two
//! parties can never disagree about what was signed.

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, AsciiSet, NON_ALPHANUMERIC};

use super::SignatureError;

/// The bytes both schemes escape: every one outside the RFC 3986 unreserved set
/// (`A-Z a-z 0-9 - _ . ~`); non-ASCII bytes always are.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `bytes` the way both schemes canonicalise: every byte
/// outside the RFC 3986 unreserved set (`A-Z a-z 0-9 - _ . ~`) becomes `%XX`
/// with upper-case hex.
///
/// ```
/// use mqgate_auth::openapi::percent_encode;
/// assert_eq!(percent_encode(b"a b+*~/"), "a%20b%2B%2A~%2F");
/// assert_eq!(percent_encode("é".as_bytes()), "%C3%A9");
/// ```
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    out.extend(percent_encoding::percent_encode(bytes, NOT_UNRESERVED));
    out
}

/// Decodes one form-encoded component: `%XX` escapes and `+` as a space.
///
/// A `%` not followed by two hex digits is an error rather than being passed
/// through, so that two parties can never disagree about what was signed.
///
/// ```
/// use mqgate_auth::openapi::form_decode;
/// assert_eq!(form_decode("t1%2Fsub+1").unwrap(), b"t1/sub 1");
/// assert!(form_decode("100%").is_err());
/// ```
pub fn form_decode(component: &str) -> Result<Vec<u8>, SignatureError> {
    check_escapes(component)?;
    // `+` is a space; replaced before decoding so that an escaped `%2B` stays a `+`.
    let decoded = if component.contains('+') {
        percent_decode_str(&component.replace('+', "%20")).collect()
    } else {
        // Borrowed when there is no escape at all: one copy, no per-byte pushes.
        Cow::from(percent_decode_str(component)).into_owned()
    };
    Ok(decoded)
}

/// Every `%` must start an escape of two hex digits; `percent_decode` would
/// pass a malformed one through as it is.
fn check_escapes(component: &str) -> Result<(), SignatureError> {
    let bytes = component.as_bytes();
    for (at, _) in component.match_indices('%') {
        match bytes.get(at + 1..at + 3) {
            Some([high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {}
            _ => return Err(SignatureError::BadPercentEncoding),
        }
    }
    Ok(())
}

/// Splits a form-encoded string (`a=1&b=2`) into decoded `(name, value)`
/// pairs, in order. Empty segments (`a=1&&b=2`) are skipped; a segment without
/// `=` is a name with an empty value. Names and values must be UTF-8 once
/// decoded.
///
/// ```
/// use mqgate_auth::openapi::parse_form;
/// let pairs = parse_form("ClientId=GID_a%40%40%40d1&SignatureType=").unwrap();
/// assert_eq!(pairs[0], ("ClientId".to_string(), "GID_a@@@d1".to_string()));
/// assert_eq!(pairs[1], ("SignatureType".to_string(), String::new()));
/// ```
pub fn parse_form(form: &str) -> Result<Vec<(String, String)>, SignatureError> {
    form.split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            Ok((decode_utf8(name)?, decode_utf8(value)?))
        })
        .collect()
}

/// Each `(name, value)` percent-encoded, sorted, joined as `name=value&...`:
/// the canonical parameter string of both schemes.
pub(crate) fn encode_sorted<'p>(pairs: impl Iterator<Item = &'p (String, String)>) -> String {
    let mut encoded: Vec<String> = pairs
        .map(|(name, value)| {
            format!(
                "{}={}",
                percent_encode(name.as_bytes()),
                percent_encode(value.as_bytes())
            )
        })
        .collect();
    encoded.sort_unstable();
    encoded.join("&")
}

fn decode_utf8(component: &str) -> Result<String, SignatureError> {
    String::from_utf8(form_decode(component)?).map_err(|_| SignatureError::BadPercentEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_table() {
        let table: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"AZaz09-_.~", "AZaz09-_.~"),
            (b" ", "%20"),
            (b"*", "%2A"),
            (b"+", "%2B"),
            (b"@", "%40"),
            (b"=&", "%3D%26"),
            (&[0x00, 0xff], "%00%FF"),
        ];
        for (input, expected) in table {
            assert_eq!(percent_encode(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn decode_table() {
        let table: &[(&str, Option<&[u8]>)] = &[
            ("", Some(b"")),
            ("a+b", Some(b"a b")),
            ("%2a%2A", Some(b"**")),
            ("%C3%A9", Some("é".as_bytes())),
            ("%", None),
            ("%4", None),
            ("%zz", None),
            ("%%41", None),
        ];
        for (input, expected) in table {
            assert_eq!(
                form_decode(input).ok().as_deref(),
                *expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn parse_form_rejects_non_utf8() {
        assert_eq!(parse_form("a=%FF"), Err(SignatureError::BadPercentEncoding));
    }

    proptest::proptest! {
        #[test]
        fn decode_inverts_encode(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            proptest::prop_assert_eq!(form_decode(&percent_encode(&bytes)).ok(), Some(bytes));
        }
    }
}
