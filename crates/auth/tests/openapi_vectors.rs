//! Every captured SDK request in `tests/data/openapi-signatures.json` must
//! verify (or fail) exactly as the real service decided, with the same
//! intermediate canonical strings.

use mqgate_auth::openapi::{self, acs3, rpc, HttpRequestParts, NonceGuard, SignatureError};
use serde_json::Value;

const VECTORS: &str = include_str!("data/openapi-signatures.json");
const SHARED_VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/openapi-signatures.json"
);

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
fn local_copy_matches_shared_vectors_when_present() {
    if let Ok(shared) = std::fs::read_to_string(SHARED_VECTORS) {
        assert_eq!(
            shared.trim(),
            VECTORS.trim(),
            "tests/data copy drifted from shared/"
        );
    }
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
