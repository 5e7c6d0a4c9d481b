//! The legacy RPC scheme: HMAC-SHA1 over the sorted parameters, signature
//! version 1.0, sent as the `Signature` parameter.
//!
//! ```text
//! canonicalized  = every param but Signature, percent-encoded, sorted, k=v joined by &
//! string to sign = METHOD & percentEncode("/") & percentEncode(canonicalized)
//! signature      = Base64(HMAC-SHA1(key = secret + "&", string to sign))
//! ```
//!
//! Parameters may come from the query, a form body, or both; an empty value
//! (`SignatureType=`) is still a parameter and is signed as `SignatureType=`.

use base64::Engine as _;

use super::encoding::encode_sorted;
use super::{percent_encode, signatures_match, SignatureChecked, SignatureError, SignatureScheme};

/// The sorted, encoded parameter string, leaving out `Signature`.
///
/// ```
/// use mqgate_auth::openapi::rpc::canonicalized_query;
/// let params = vec![
///     ("b".to_string(), "x y".to_string()),
///     ("Signature".to_string(), "ignored".to_string()),
///     ("a".to_string(), String::new()),
/// ];
/// assert_eq!(canonicalized_query(&params), "a=&b=x%20y");
/// ```
pub fn canonicalized_query(params: &[(String, String)]) -> String {
    encode_sorted(params.iter().filter(|(name, _)| name != "Signature"))
}

/// `METHOD&%2F&` + percentEncode(canonicalized).
pub fn string_to_sign(method: &str, canonicalized: &str) -> String {
    format!(
        "{method}&{}&{}",
        percent_encode(b"/"),
        percent_encode(canonicalized.as_bytes())
    )
}

/// Base64(HMAC-SHA1(secret + "&", string to sign)).
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    let key = format!("{secret}&");
    base64::engine::general_purpose::STANDARD.encode(crate::crypto::hmac_sha1(
        key.as_bytes(),
        string_to_sign.as_bytes(),
    ))
}

pub(super) fn verify<F>(
    method: &str,
    params: &[(String, String)],
    lookup_secret: &F,
) -> Result<SignatureChecked, SignatureError>
where
    F: Fn(&str) -> Option<String>,
{
    let param = |name: &'static str| {
        params
            .iter()
            .find(|(param, _)| param == name)
            .map(|(_, value)| value.as_str())
            .ok_or(SignatureError::MissingParameter(name))
    };
    let signature_method = param("SignatureMethod")?;
    if signature_method != "HMAC-SHA1" {
        return Err(SignatureError::UnsupportedMethod(
            signature_method.to_owned(),
        ));
    }
    let version = param("SignatureVersion")?;
    if version != "1.0" {
        return Err(SignatureError::UnsupportedMethod(format!(
            "SignatureVersion {version}"
        )));
    }
    let access_key_id = param("AccessKeyId")?;
    let received = param("Signature")?;
    let date = param("Timestamp")?;
    let nonce = param("SignatureNonce")?;
    let secret = lookup_secret(access_key_id)
        .ok_or_else(|| SignatureError::UnknownAccessKey(access_key_id.to_owned()))?;
    let expected = sign(
        &secret,
        &string_to_sign(method, &canonicalized_query(params)),
    );
    if !signatures_match(&expected, received) {
        return Err(SignatureError::SignatureMismatch);
    }
    Ok(SignatureChecked {
        access_key_id: access_key_id.to_owned(),
        scheme: SignatureScheme::RpcHmacSha1,
        date: date.to_owned(),
        nonce: nonce.to_owned(),
    })
}
