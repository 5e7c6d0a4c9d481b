//! Verification of the model service's OpenAPI request signatures, so the
//! official SDKs can call the broker's HTTP API unchanged.
//!
//! Two schemes are accepted, chosen by what the request carries:
//!
//! * **ACS3-HMAC-SHA256**: an `Authorization: ACS3-HMAC-SHA256 Credential=..,
//!   SignedHeaders=..,Signature=..` header over a canonical request; see [`acs3`].
//! * **RPC HMAC-SHA1** (legacy, "signature version 1.0"): a `Signature`
//!   parameter over the sorted parameters; see [`rpc`].
//!
//! [`verify_request`] is a pure function: the broker turns its HTTP request
//! into [`HttpRequestParts`], passes a secret lookup, the current time and a
//! shared [`NonceGuard`], and gets back who signed and the merged parameters.
//!
//! ```
//! use mqgate_auth::openapi::{self, HttpRequestParts, NonceGuard, SignatureScheme};
//!
//! // Sign a request the way an RPC SDK would, then verify it.
//! let now_ms = openapi::parse_iso8601_utc("2026-11-25T19:12:08Z").unwrap();
//! let mut params = vec![
//!     ("Action".to_string(), "QuerySessionByClientId".to_string()),
//!     ("AccessKeyId".to_string(), "AK".to_string()),
//!     ("SignatureMethod".to_string(), "HMAC-SHA1".to_string()),
//!     ("SignatureVersion".to_string(), "1.0".to_string()),
//!     ("SignatureNonce".to_string(), "n-1".to_string()),
//!     ("Timestamp".to_string(), "2026-11-25T19:12:08Z".to_string()),
//! ];
//! let to_sign = openapi::rpc::string_to_sign("GET", &openapi::rpc::canonicalized_query(&params));
//! params.push(("Signature".to_string(), openapi::rpc::sign("secret", &to_sign)));
//! let raw_query = params
//!     .iter()
//!     .map(|(k, v)| format!("{}={}", openapi::percent_encode(k.as_bytes()), openapi::percent_encode(v.as_bytes())))
//!     .collect::<Vec<_>>()
//!     .join("&");
//! let request = HttpRequestParts { method: "GET", path: "/", raw_query: &raw_query, headers: vec![], body: b"" };
//!
//! let guard = NonceGuard::default();
//! let lookup = |ak: &str| (ak == "AK").then(|| "secret".to_string());
//! let verified = openapi::verify_request(&request, lookup, now_ms, &guard).unwrap();
//! assert_eq!(verified.access_key_id, "AK");
//! assert_eq!(verified.scheme, SignatureScheme::RpcHmacSha1);
//! assert_eq!(verified.param("Action"), Some("QuerySessionByClientId"));
//! // The same request again is a replay.
//! assert!(openapi::verify_request(&request, lookup, now_ms, &guard).is_err());
//! ```
//!
//! # The rules of both schemes
//!
//! The broker's HTTP API accepts the two schemes the model service's SDKs
//! use; [`verify_request`] picks one
//! by what the request carries.
//!
//! **ACS3-HMAC-SHA256** (header `Authorization: ACS3-HMAC-SHA256
//! Credential={AccessKeyId},SignedHeaders={a;b;c},Signature={hex}`). The
//! canonical request is the method, the path, the canonical query, the
//! signed headers as `name:value` lines (names lower case, sorted, values
//! trimmed), the signed header names joined by `;`, and the
//! `x-acs-content-sha256` value, joined by newlines. The canonical query
//! decodes each name and value of the raw query (`+` is a space) and
//! re-encodes them with RFC 3986 (only `A-Z a-z 0-9 - _ . ~` left alone, so a
//! space is `%20`), sorted. The string to sign is `ACS3-HMAC-SHA256\n` +
//! hex(SHA-256(canonical request)); the signature is hex(HMAC-SHA256(secret,
//! string to sign)). We also require: `host`, `x-acs-date`,
//! `x-acs-signature-nonce` and `x-acs-content-sha256` present; `host`,
//! `content-type` and every `x-acs-*` header signed; and
//! `x-acs-content-sha256` equal to the SHA-256 of the actual body.
//!
//! **RPC HMAC-SHA1** (signature version 1.0, the `Signature` parameter).
//! Parameters come from the query and, for
//! `application/x-www-form-urlencoded` bodies, the body. Every parameter but
//! `Signature` is RFC 3986 encoded, sorted and joined as `k=v&...`; an empty
//! value (`SignatureType=`) stays. The string to sign is `METHOD&%2F&` +
//! percentEncode(that); the signature is Base64(HMAC-SHA1(key = secret + `&`,
//! string to sign)). `SignatureMethod` must be `HMAC-SHA1` and
//! `SignatureVersion` `1.0`.
//!
//! In both schemes a parameter name that appears twice (across query and
//! body) is refused, a malformed `%` escape is refused, and the request's
//! date (`x-acs-date` or `Timestamp`, `YYYY-MM-DDTHH:MM:SSZ`) must be within
//! the window (15 minutes by default) of the broker's clock, either way. The
//! nonce (`x-acs-signature-nonce` or `SignatureNonce`) must not have been used
//! by an accepted request whose date is still within the window; it is
//! recorded only after the signature verified. The
//! [`NonceGuard`] remembers at most a configured
//! number of live nonces and refuses new requests rather than forget one.

pub mod acs3;
mod encoding;
mod nonce;
pub mod rpc;
mod timestamp;

pub use encoding::{form_decode, parse_form, percent_encode};
pub use nonce::{NonceGuard, DEFAULT_NONCE_CAPACITY, DEFAULT_WINDOW_MS, MAX_NONCE_LEN};
pub use timestamp::parse_iso8601_utc;

use subtle::ConstantTimeEq;

/// Why a signed HTTP request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The request carries neither an ACS3 `Authorization` header nor a
    /// `Signature` parameter.
    #[error("request is not signed")]
    NotSigned,
    /// A `%` escape in the query, body or path is not followed by two hex
    /// digits, or a decoded name or value is not UTF-8.
    #[error("bad percent-encoding")]
    BadPercentEncoding,
    /// The body is declared as a form but is not UTF-8.
    #[error("form body is not UTF-8")]
    BadFormBody,
    /// The same parameter name appears twice across query and form body;
    /// refused because the two sides could disagree about which one counts.
    #[error("parameter {0:?} appears more than once")]
    DuplicateParameter(String),
    /// A parameter the scheme requires is absent.
    #[error("missing parameter {0}")]
    MissingParameter(&'static str),
    /// A header the scheme requires is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The `Authorization` header is not a well-formed ACS3 header.
    #[error("malformed Authorization header: {0}")]
    BadAuthorization(&'static str),
    /// The scheme, signature method or version is not one we verify.
    #[error("unsupported signature method {0:?}")]
    UnsupportedMethod(String),
    /// A header that must be covered by the signature (host, content-type,
    /// any `x-acs-*`) is not listed in `SignedHeaders`, or a listed header is
    /// absent from the request.
    #[error("header {0:?} must be signed and present")]
    UnsignedHeader(String),
    /// `x-acs-content-sha256` does not match the SHA-256 of the body.
    #[error("x-acs-content-sha256 does not match the body")]
    ContentHashMismatch,
    /// The date is not `YYYY-MM-DDTHH:MM:SSZ` (the text is kept, cut to 40
    /// characters, for the log).
    #[error("bad timestamp {0:?}")]
    BadTimestamp(String),
    /// The request's date is too far from the broker's clock.
    #[error("request date {request_ms} is outside the window around {now_ms}")]
    DateOutOfWindow {
        /// The request's date, ms since the epoch.
        request_ms: u64,
        /// The broker's time, ms since the epoch.
        now_ms: u64,
    },
    /// The nonce is empty or longer than [`MAX_NONCE_LEN`].
    #[error("bad nonce")]
    BadNonce,
    /// The nonce was already used by a request still within the window.
    #[error("nonce already used")]
    NonceReplayed,
    /// The replay guard is full of live nonces; try again later.
    #[error("too many recent requests to remember their nonces")]
    NonceStoreFull,
    /// The AccessKeyId is not known to the lookup.
    #[error("unknown AccessKeyId {0:?}")]
    UnknownAccessKey(String),
    /// The signature does not match the request under the key's secret.
    #[error("signature does not match")]
    SignatureMismatch,
}

/// The parts of an HTTP request that signatures cover, as the broker's HTTP
/// layer sees them (no decoding applied yet).
#[derive(Debug, Clone)]
pub struct HttpRequestParts<'a> {
    /// The method, upper case (`GET`, `POST`).
    pub method: &'a str,
    /// The path as received, still percent-encoded (`/`).
    pub path: &'a str,
    /// The query string after `?`, still encoded; empty if none.
    pub raw_query: &'a str,
    /// Every header, in any case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: &'a [u8],
}

impl HttpRequestParts<'_> {
    /// Values of the headers named `name` (case-insensitively), in order.
    pub fn header_values<'s, 'n>(&'s self, name: &'n str) -> impl Iterator<Item = &'s str> + 'n
    where
        's: 'n,
    {
        self.headers
            .iter()
            .filter(move |(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The first value of header `name`, if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).next()
    }

    /// Query parameters followed by form-body parameters (only when the body
    /// is `application/x-www-form-urlencoded`), decoded. A name that appears
    /// twice is an error.
    pub fn merged_params(&self) -> Result<Vec<(String, String)>, SignatureError> {
        let mut params = parse_form(self.raw_query)?;
        if self.has_form_body() {
            let body = std::str::from_utf8(self.body).map_err(|_| SignatureError::BadFormBody)?;
            params.extend(parse_form(body)?);
        }
        let mut names: Vec<&str> = params.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair.first() == pair.get(1)) {
            let name = pair.first().copied().unwrap_or_default();
            return Err(SignatureError::DuplicateParameter(name.to_owned()));
        }
        Ok(params)
    }

    fn has_form_body(&self) -> bool {
        self.header("content-type").is_some_and(|value| {
            let media_type = value.split(';').next().unwrap_or_default().trim();
            media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    }
}

/// Which scheme a request was signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// `Authorization: ACS3-HMAC-SHA256 ...`.
    Acs3HmacSha256,
    /// The `Signature` parameter, HMAC-SHA1, signature version 1.0.
    RpcHmacSha1,
}

/// A request whose signature, date and nonce all checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// The AccessKeyId whose secret signed the request.
    pub access_key_id: String,
    /// The scheme it was signed with.
    pub scheme: SignatureScheme,
    /// Query and form-body parameters, decoded, in order received (the RPC
    /// `Signature` parameter included).
    pub params: Vec<(String, String)>,
}

impl VerifiedRequest {
    /// The value of parameter `name` (exact case), e.g. `Action`, `InstanceId`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(param, _)| param == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Verifies a signed OpenAPI request: scheme, signature under the secret that
/// `lookup_secret` returns for its AccessKeyId, date within the guard's
/// window of `now_ms`, and a nonce not seen before (recorded only once all
/// else passed).
///
/// An `Authorization` header starting with `ACS3-HMAC-SHA256` selects ACS3;
/// otherwise a `Signature` parameter selects RPC; otherwise the request is
/// [`SignatureError::NotSigned`].
pub fn verify_request<F>(
    request: &HttpRequestParts<'_>,
    lookup_secret: F,
    now_ms: u64,
    nonces: &NonceGuard,
) -> Result<VerifiedRequest, SignatureError>
where
    F: Fn(&str) -> Option<String>,
{
    let params = request.merged_params()?;
    let checked = match request.header("authorization") {
        Some(authorization) if authorization.trim_start().starts_with(acs3::ALGORITHM) => {
            acs3::verify(request, authorization, &lookup_secret)?
        }
        _ if params.iter().any(|(name, _)| name == "Signature") => {
            rpc::verify(request.method, &params, &lookup_secret)?
        }
        _ => return Err(SignatureError::NotSigned),
    };
    let request_ms = parse_iso8601_utc(&checked.date)?;
    nonces.admit(&checked.nonce, request_ms, now_ms)?;
    Ok(VerifiedRequest {
        access_key_id: checked.access_key_id,
        scheme: checked.scheme,
        params,
    })
}

/// What a scheme hands back once the signature matched: the date and nonce
/// still have to pass the guard.
struct SignatureChecked {
    access_key_id: String,
    scheme: SignatureScheme,
    date: String,
    nonce: String,
}

/// Constant-time equality of a computed and a received signature.
fn signatures_match(computed: &str, received: &str) -> bool {
    bool::from(computed.as_bytes().ct_eq(received.as_bytes()))
}
