//! ACS3-HMAC-SHA256: the `Authorization` header scheme of the current SDKs.
//!
//! ```text
//! canonical request = method \n canonical path \n canonical query \n
//!                     canonical headers (name:value\n each) \n signed headers \n
//!                     hashed payload (x-acs-content-sha256)
//! string to sign    = "ACS3-HMAC-SHA256\n" + hex(sha256(canonical request))
//! signature         = hex(hmac-sha256(secret, string to sign))
//! ```

use sha2::{Digest, Sha256};

use super::encoding::encode_sorted;
use super::{
    form_decode, parse_form, percent_encode, signatures_match, HttpRequestParts, SignatureChecked,
    SignatureError, SignatureScheme,
};

/// The algorithm name that starts the `Authorization` header and the string
/// to sign.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The AccessKeyId (`Credential=`).
    pub credential: String,
    /// The signed header names, lower case, as listed (`SignedHeaders=a;b`).
    pub signed_headers: Vec<String>,
    /// The hex signature (`Signature=`).
    pub signature: String,
}

/// Parses `ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex`.
/// Each of the three fields must appear exactly once, and nothing else.
///
/// ```
/// use mqgate_auth::openapi::acs3::parse_authorization;
/// let auth = parse_authorization(
///     "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date,Signature=00ff",
/// ).unwrap();
/// assert_eq!(auth.credential, "AK");
/// assert_eq!(auth.signed_headers, ["host", "x-acs-date"]);
/// assert!(parse_authorization("ACS3-HMAC-SHA256 Credential=AK").is_err());
/// ```
pub fn parse_authorization(header: &str) -> Result<Authorization, SignatureError> {
    let rest = header
        .trim()
        .strip_prefix(ALGORITHM)
        .ok_or_else(|| SignatureError::UnsupportedMethod(header.chars().take(40).collect()))?;
    if !rest.starts_with(' ') {
        return Err(SignatureError::BadAuthorization("no space after algorithm"));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let (name, value) = field
            .trim()
            .split_once('=')
            .ok_or(SignatureError::BadAuthorization("field without '='"))?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(SignatureError::BadAuthorization("unknown field")),
        };
        if slot.replace(value.trim()).is_some() {
            return Err(SignatureError::BadAuthorization("repeated field"));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(SignatureError::BadAuthorization("missing field"));
    };
    if credential.is_empty() || signature.is_empty() {
        return Err(SignatureError::BadAuthorization("empty field"));
    }
    Ok(Authorization {
        credential: credential.to_owned(),
        signed_headers: signed_headers
            .split(';')
            .filter(|name| !name.is_empty())
            .map(str::to_ascii_lowercase)
            .collect(),
        signature: signature.to_owned(),
    })
}

/// The canonical request for `request` over `signed_headers` (lower-case
/// names). Fails if a signed header is absent or the query is badly encoded.
pub fn canonical_request(
    request: &HttpRequestParts<'_>,
    signed_headers: &[String],
) -> Result<String, SignatureError> {
    let mut names: Vec<&str> = signed_headers.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let mut headers = String::new();
    for name in &names {
        let values: Vec<&str> = request.header_values(name).map(str::trim).collect();
        if values.is_empty() {
            return Err(SignatureError::UnsignedHeader((*name).to_owned()));
        }
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&values.join(","));
        headers.push('\n');
    }
    let hashed_payload = request
        .header("x-acs-content-sha256")
        .ok_or(SignatureError::MissingHeader("x-acs-content-sha256"))?;
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_path(request.path)?,
        canonical_query(request.raw_query)?,
        headers,
        names.join(";"),
        hashed_payload.trim(),
    ))
}

/// The query re-encoded: each name and value decoded (`+` is a space) and
/// percent-encoded again, pairs sorted, `name=value` joined by `&`.
///
/// ```
/// use mqgate_auth::openapi::acs3::canonical_query;
/// assert_eq!(canonical_query("b=t1%2Fsub+1&a=%7e").unwrap(), "a=~&b=t1%2Fsub%201");
/// ```
pub fn canonical_query(raw_query: &str) -> Result<String, SignatureError> {
    Ok(encode_sorted(parse_form(raw_query)?.iter()))
}

/// Each path segment decoded and re-encoded; an empty path is `/`. A `+` in a
/// path is a literal plus, unlike in a query.
fn canonical_path(path: &str) -> Result<String, SignatureError> {
    if path.is_empty() {
        return Ok("/".to_owned());
    }
    let segments = path
        .split('/')
        .map(|segment| Ok(percent_encode(&form_decode(&segment.replace('+', "%2B"))?)))
        .collect::<Result<Vec<_>, SignatureError>>()?;
    Ok(segments.join("/"))
}

/// `ACS3-HMAC-SHA256\n` + hex(sha256(canonical request)).
pub fn string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// hex(HMAC-SHA256(secret, string to sign)), lower case.
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    hex::encode(crate::crypto::hmac_sha256(
        secret.as_bytes(),
        string_to_sign.as_bytes(),
    ))
}

/// Headers that must be signed when present: without them an attacker could
/// move a signature to another host, body type or action.
fn must_be_signed(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "host" || name == "content-type" || name.starts_with("x-acs-")
}

pub(super) fn verify<F>(
    request: &HttpRequestParts<'_>,
    authorization: &str,
    lookup_secret: &F,
) -> Result<SignatureChecked, SignatureError>
where
    F: Fn(&str) -> Option<String>,
{
    let auth = parse_authorization(authorization)?;
    for required in [
        "host",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ] {
        if request.header(required).is_none() {
            return Err(SignatureError::UnsignedHeader(required.to_owned()));
        }
    }
    if let Some((name, _)) = request.headers.iter().find(|(name, _)| {
        must_be_signed(name)
            && !auth
                .signed_headers
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
    }) {
        return Err(SignatureError::UnsignedHeader(name.to_ascii_lowercase()));
    }
    let declared_hash = request
        .header("x-acs-content-sha256")
        .ok_or(SignatureError::MissingHeader("x-acs-content-sha256"))?;
    if !declared_hash
        .trim()
        .eq_ignore_ascii_case(&hex::encode(Sha256::digest(request.body)))
    {
        return Err(SignatureError::ContentHashMismatch);
    }
    let secret = lookup_secret(&auth.credential)
        .ok_or_else(|| SignatureError::UnknownAccessKey(auth.credential.clone()))?;
    let canonical = canonical_request(request, &auth.signed_headers)?;
    let expected = sign(&secret, &string_to_sign(&canonical));
    if !signatures_match(&expected, &auth.signature.to_ascii_lowercase()) {
        return Err(SignatureError::SignatureMismatch);
    }
    let header = |name: &'static str| {
        request
            .header(name)
            .map(|value| value.trim().to_owned())
            .ok_or(SignatureError::MissingHeader(name))
    };
    Ok(SignatureChecked {
        access_key_id: auth.credential,
        scheme: SignatureScheme::Acs3HmacSha256,
        date: header("x-acs-date")?,
        nonce: header("x-acs-signature-nonce")?,
    })
}
