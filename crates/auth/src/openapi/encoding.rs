//! RFC 3986 percent-encoding as both signature schemes use it, and
//! `application/x-www-form-urlencoded` parsing.
//!
//! Written here rather than pulled from a crate because the rules are the
//! schemes' own (exactly the unreserved set is left alone, `+` in a raw query
//! is a space) and the whole thing is a few dozen lines.

use super::SignatureError;

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
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
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
    let mut out = Vec::with_capacity(component.len());
    let mut bytes = component.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let high = bytes.next().and_then(hex_value);
                let low = bytes.next().and_then(hex_value);
                match (high, low) {
                    (Some(high), Some(low)) => out.push(high << 4 | low),
                    _ => return Err(SignatureError::BadPercentEncoding),
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
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
