//! What authentication costs per CONNECT, per SUBSCRIBE check and per signed
//! HTTP request.
//!
//! cargo bench -p mqgate-auth --bench auth -- --warm-up-time 1 --measurement-time 3
// Set-up that fails should stop the run loudly: nothing here comes from outside.
#![allow(clippy::unwrap_used)]
// `criterion_group!` defines a public function without documentation.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mqgate_auth::openapi::{self, HttpRequestParts, NonceGuard};
use mqgate_auth::*;
use serde_json::Value;

const NOW: u64 = 1_800_000_000_000;

fn authenticator() -> Authenticator<InMemoryRegistry> {
    let registry = InMemoryRegistry::new();
    registry.put_group(GroupRecord::new("GID_a", 0)).unwrap();
    let config = AuthConfig::new("inst").with_access_key(AccessKey::new("AK", "secret"));
    Authenticator::new(config, registry)
}

fn connect(c: &mut Criterion) {
    let auth = authenticator();
    let password = sign_client_id("secret", "GID_a@@@d1");
    c.bench_function("authenticate/signature", |b| {
        b.iter(|| {
            auth.authenticate(
                black_box("GID_a@@@d1"),
                Some("Signature|AK|inst"),
                Some(password.as_bytes()),
                NOW,
            )
        })
    });
    let request = TokenRequest {
        resources: vec!["a/#".into(), "b/+/c".into()],
        actions: TokenActions::ReadWrite,
        expire_time_ms: NOW + 3_600_000,
    };
    let token = auth.issue_token("AK", request, NOW).unwrap().token;
    let password = format!("RW|{token}");
    c.bench_function("authenticate/token", |b| {
        b.iter(|| {
            auth.authenticate(
                black_box("GID_a@@@d1"),
                Some("Token|AK|inst"),
                Some(password.as_bytes()),
                NOW,
            )
        })
    });
}

fn grants(c: &mut Criterion) {
    let filters: Vec<String> = (0..MAX_TOKEN_RESOURCES)
        .map(|i| format!("site/{i}/+/#"))
        .collect();
    let access = TopicAccess::filters(&filters).unwrap();
    let grants = Grants::new(
        "GID_a@@@d1",
        AccessPolicy {
            publish: access.clone(),
            subscribe: access,
        },
    );
    c.bench_function("grants/may_subscribe_100_filters_last", |b| {
        b.iter(|| grants.may_subscribe(black_box("site/99/dev/+/status")))
    });
    c.bench_function("grants/may_publish_100_filters_last", |b| {
        b.iter(|| grants.may_publish(black_box("site/99/dev/7/status")))
    });
}

fn http_signature(c: &mut Criterion) {
    let all: Value =
        serde_json::from_str(include_str!("../tests/data/openapi-signatures.json")).unwrap();
    let vectors = all["http_signature_vectors"].as_array().unwrap();
    for (label, index) in [("acs3", 0), ("rpc", 4)] {
        let vector = &vectors[index];
        let headers = vector["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let request = HttpRequestParts {
            method: vector["method"].as_str().unwrap(),
            path: vector["path"].as_str().unwrap(),
            raw_query: vector["raw_query"].as_str().unwrap(),
            headers,
            body: vector["body"].as_str().unwrap().as_bytes(),
        };
        let now = openapi::parse_iso8601_utc("2026-11-25T19:12:30Z").unwrap();
        let lookup = |ak: &str| (ak == "LTAI_TEST_AK").then(|| "test-secret-123".to_owned());
        c.bench_function(&format!("openapi/verify_{label}"), |b| {
            b.iter(|| {
                // A fresh guard each time, or the nonce would be a replay.
                let guard = NonceGuard::new(openapi::DEFAULT_WINDOW_MS, 4);
                openapi::verify_request(black_box(&request), lookup, now, &guard).unwrap()
            })
        });
    }
}

criterion_group!(benches, connect, grants, http_signature);
criterion_main!(benches);
