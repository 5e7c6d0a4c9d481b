//! Every captured SDK request in `tests/data/openapi-signatures.json` must
//! verify (or fail) exactly as the real service decided, with the same
//! intermediate canonical strings.
// The helpers of this test binary unwrap too (clippy.toml allows it in tests only).
#![allow(clippy::unwrap_used)]

use mqgate_auth::openapi::{self, acs3, rpc, HttpRequestParts, NonceGuard, SignatureError};
use serde_json::Value;

const VECTORS: &str = include_str!("data/openapi-signatures.json");

fn vectors() -> Vec<Value> {
    let all: Value = serde_json::from_str(VECTORS).expect("vectors file is JSON");
    all["http_signature_vectors"]
        .as_array()
        .expect("http_signature_vectors is an array")
        .clone()
}

fn text<'v>(vector: &'v Value, key: &str) -> &'v str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing"))
}

fn request(vector: &Value) -> HttpRequestParts<'_> {
    let headers = vector["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    HttpRequestParts {
        method: text(vector, "method"),
        path: text(vector, "path"),
        raw_query: text(vector, "raw_query"),
        headers,
        body: text(vector, "body").as_bytes(),
    }
}

/// The request's own date, so the window check passes for past captures.
fn request_time(request: &HttpRequestParts<'_>) -> u64 {
    let params = request.merged_params().unwrap();
    let date = request
        .header("x-acs-date")
        .map(str::to_owned)
        .or_else(|| {
            params
                .iter()
                .find(|(n, _)| n == "Timestamp")
                .map(|(_, v)| v.clone())
        })
        .expect("request has a date");
    openapi::parse_iso8601_utc(&date).unwrap()
}

#[test]
fn every_vector_has_the_captured_verdict_and_intermediates() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 7);
    for vector in &vectors {
        let name = text(vector, "name");
        let secret = text(vector, "secret").to_owned();
        let access_key_id = text(vector, "access_key_id");
        let request = request(vector);

        // Intermediate strings and the signature the secret produces.
        match text(vector, "sigmode") {
            "ACS3-HMAC-SHA256" => {
                let auth =
                    acs3::parse_authorization(request.header("Authorization").unwrap()).unwrap();
                assert_eq!(auth.credential, access_key_id, "{name}");
                assert_eq!(auth.signature, text(vector, "sent_signature"), "{name}");
                let canonical = acs3::canonical_request(&request, &auth.signed_headers).unwrap();
                assert_eq!(canonical, text(vector, "canonical_request"), "{name}");
                let to_sign = acs3::string_to_sign(&canonical);
                assert_eq!(to_sign, text(vector, "string_to_sign"), "{name}");
                assert_eq!(
                    acs3::sign(&secret, &to_sign),
                    text(vector, "expected"),
                    "{name}"
                );
            }
            "RPC-HMAC-SHA1" => {
                let params = request.merged_params().unwrap();
                let canonical = rpc::canonicalized_query(&params);
                assert_eq!(canonical, text(vector, "canonicalized"), "{name}");
                let to_sign = rpc::string_to_sign(request.method, &canonical);
                assert_eq!(to_sign, text(vector, "string_to_sign"), "{name}");
                assert_eq!(
                    rpc::sign(&secret, &to_sign),
                    text(vector, "expected"),
                    "{name}"
                );
            }
            other => panic!("unknown sigmode {other}"),
        }

        // The verdict, through the one public entry point.
        let guard = NonceGuard::default();
        let lookup = |ak: &str| (ak == access_key_id).then(|| secret.clone());
        let now = request_time(&request) + 60_000;
        let outcome = openapi::verify_request(&request, lookup, now, &guard);
        let expected_ok = vector["server_verdict"].as_bool().unwrap();
        match outcome {
            Ok(verified) => {
                assert!(expected_ok, "{name} verified but must fail");
                assert_eq!(verified.access_key_id, access_key_id, "{name}");
                assert_eq!(verified.param("InstanceId"), Some("mqtt-test"), "{name}");
                assert_eq!(guard.len(), 1, "{name}: nonce recorded");
                // Replaying the identical request is refused.
                let again = openapi::verify_request(&request, lookup, now, &guard);
                assert_eq!(again, Err(SignatureError::NonceReplayed), "{name}");
            }
            Err(error) => {
                assert!(!expected_ok, "{name} failed: {error}");
                assert_eq!(error, SignatureError::SignatureMismatch, "{name}");
                assert!(
                    guard.is_empty(),
                    "{name}: failed request must not use up its nonce"
                );
            }
        }
    }
}

// ---- Rules beyond the captures: each mutates a captured request. ----

fn vector(name_prefix: &str) -> Value {
    vectors()
        .into_iter()
        .find(|v| text(v, "name").starts_with(name_prefix))
        .expect("vector exists")
}

fn verify_at(request: &HttpRequestParts<'_>, now: u64) -> Result<String, SignatureError> {
    let guard = NonceGuard::default();
    let lookup = |ak: &str| (ak == "LTAI_TEST_AK").then(|| "test-secret-123".to_owned());
    openapi::verify_request(request, lookup, now, &guard).map(|v| v.access_key_id)
}

fn verify(request: &HttpRequestParts<'_>) -> Result<String, SignatureError> {
    verify_at(request, request_time(request))
}

fn set_header(request: &mut HttpRequestParts<'_>, name: &str, value: &str) {
    request
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    request.headers.push((name.to_owned(), value.to_owned()));
}

#[test]
fn acs3_rules() {
    use SignatureError::*;
    let base = vector("acs3_query_session");
    let form = vector("acs3_form_body");
    let window = openapi::DEFAULT_WINDOW_MS;
    let at = request_time(&request(&base));
    assert_eq!(verify(&request(&base)).as_deref(), Ok("LTAI_TEST_AK"));
    assert_eq!(
        verify_at(&request(&base), at + window).as_deref(),
        Ok("LTAI_TEST_AK")
    );
    assert_eq!(
        verify_at(&request(&base), at - window).as_deref(),
        Ok("LTAI_TEST_AK")
    );

    type Mutation = fn(&mut HttpRequestParts<'_>);
    let table: &[(&str, &Value, Mutation, SignatureError)] = &[
        (
            "tampered query",
            &base,
            |r| r.raw_query = "ClientId=GID_a%40%40%40d2&InstanceId=mqtt-test",
            SignatureMismatch,
        ),
        (
            "tampered method",
            &base,
            |r| r.method = "GET",
            SignatureMismatch,
        ),
        (
            "tampered signed header",
            &base,
            |r| set_header(r, "x-acs-action", "SendMessage"),
            SignatureMismatch,
        ),
        (
            "body does not match hash",
            &form,
            |r| r.body = b"IdentityType=ADMIN",
            ContentHashMismatch,
        ),
        (
            "unsigned x-acs header",
            &base,
            |r| set_header(r, "x-acs-extra", "1"),
            UnsignedHeader("x-acs-extra".into()),
        ),
        (
            "unsigned content-type",
            &base,
            |r| set_header(r, "Content-Type", "text/plain"),
            UnsignedHeader("content-type".into()),
        ),
        (
            "signed header absent",
            &base,
            |r| r.headers.retain(|(n, _)| n != "user-agent"),
            UnsignedHeader("user-agent".into()),
        ),
        (
            "no nonce",
            &base,
            |r| r.headers.retain(|(n, _)| n != "x-acs-signature-nonce"),
            UnsignedHeader("x-acs-signature-nonce".into()),
        ),
        (
            "unknown key",
            &base,
            |r| {
                let auth = r
                    .header("Authorization")
                    .unwrap()
                    .replace("LTAI_TEST_AK", "OTHER");
                set_header(r, "Authorization", &auth);
            },
            UnknownAccessKey("OTHER".into()),
        ),
        (
            "malformed authorization",
            &base,
            |r| set_header(r, "Authorization", "ACS3-HMAC-SHA256 Credential=AK"),
            BadAuthorization("missing field"),
        ),
        (
            "repeated field",
            &base,
            |r| {
                set_header(
                    r,
                    "Authorization",
                    "ACS3-HMAC-SHA256 Credential=A,Credential=B,SignedHeaders=host,Signature=00",
                )
            },
            BadAuthorization("repeated field"),
        ),
        (
            "bad escape in query",
            &base,
            |r| r.raw_query = "ClientId=%G0",
            BadPercentEncoding,
        ),
        (
            "duplicate parameter",
            &form,
            |r| r.raw_query = "Username=u2",
            DuplicateParameter("Username".into()),
        ),
        (
            "no signature at all",
            &base,
            |r| r.headers.retain(|(n, _)| n != "Authorization"),
            NotSigned,
        ),
    ];
    for (label, vector, mutate, expected) in table {
        let mut request = request(vector);
        mutate(&mut request);
        assert_eq!(verify_at(&request, at), Err(expected.clone()), "{label}");
    }

    let outside = verify_at(&request(&base), at + window + 1);
    assert!(
        matches!(outside, Err(DateOutOfWindow { .. })),
        "{outside:?}"
    );
    let before = verify_at(&request(&base), at - window - 1);
    assert!(matches!(before, Err(DateOutOfWindow { .. })), "{before:?}");
}

#[test]
fn rpc_rules() {
    use SignatureError::*;
    let base = vector("rpc_v1_query_in_url");
    let in_body = vector("rpc_v1_params_in_form_body");
    let at = request_time(&request(&base));
    assert_eq!(verify(&request(&in_body)).as_deref(), Ok("LTAI_TEST_AK"));

    type Mutation = fn(&mut HttpRequestParts<'_>);
    let table: &[(&str, &Value, Mutation, SignatureError)] = &[
        (
            "tampered method",
            &base,
            |r| r.method = "GET",
            SignatureMismatch,
        ),
        (
            "parameter added",
            &base,
            |r| {
                r.raw_query = "Extra=1&Action=QuerySessionByClientId&Format=json&Version=2020-04-20&Timestamp=2026-11-25T19%3A12%3A08Z&SignatureNonce=5ca35e95168b287faaab52c9010f6b5a&ClientId=GID_a%40%40%40d1&InstanceId=mqtt-test&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAI_TEST_AK&Signature=%2BiJy5hJbE2xphUXE9I%2FDrBX0koQ%3D"
            },
            SignatureMismatch,
        ),
        (
            "body ignored unless form",
            &in_body,
            |r| r.headers.retain(|(n, _)| n != "content-type"),
            SignatureMismatch,
        ),
        (
            "body tampered",
            &in_body,
            |r| r.body = b"ClientId=GID_a%40%40%40d2&InstanceId=mqtt-test",
            SignatureMismatch,
        ),
        (
            "body repeats a query param",
            &in_body,
            |r| r.body = b"Action=x",
            DuplicateParameter("Action".into()),
        ),
        (
            "other method",
            &base,
            |r| r.raw_query = "SignatureMethod=HMAC-SHA256&Signature=x",
            UnsupportedMethod("HMAC-SHA256".into()),
        ),
        (
            "other version",
            &base,
            |r| r.raw_query = "SignatureMethod=HMAC-SHA1&SignatureVersion=2.0&Signature=x",
            UnsupportedMethod("SignatureVersion 2.0".into()),
        ),
        (
            "no timestamp",
            &base,
            |r| {
                r.raw_query = "SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAI_TEST_AK&Signature=x"
            },
            MissingParameter("Timestamp"),
        ),
        (
            "unknown key",
            &base,
            |r| {
                r.raw_query = "SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=X&Timestamp=t&SignatureNonce=n&Signature=x"
            },
            UnknownAccessKey("X".into()),
        ),
    ];
    for (label, vector, mutate, expected) in table {
        let mut request = request(vector);
        mutate(&mut request);
        assert_eq!(verify_at(&request, at), Err(expected.clone()), "{label}");
    }
}

#[test]
fn a_nonce_is_refused_once_used_even_by_another_scheme() {
    let guard = NonceGuard::default();
    let lookup = |ak: &str| (ak == "LTAI_TEST_AK").then(|| "test-secret-123".to_owned());
    let acs3 = vector("acs3_query_session");
    let rpc = vector("rpc_v1_query_in_url");
    let now = request_time(&request(&rpc));
    openapi::verify_request(&request(&acs3), lookup, now, &guard).unwrap();
    openapi::verify_request(&request(&rpc), lookup, now, &guard).unwrap();
    assert_eq!(guard.len(), 2);
    for vector in [&acs3, &rpc] {
        let again = openapi::verify_request(&request(vector), lookup, now, &guard);
        assert_eq!(again, Err(SignatureError::NonceReplayed));
    }
}
