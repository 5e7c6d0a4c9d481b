//! Issuing tokens and device credentials (the rules on `mqgate_auth::TokenRequest`).
// The helpers of this test binary unwrap too (clippy.toml allows it in tests only).
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use mqgate_auth::*;

const NOW: u64 = 1_800_000_000_000;
const MINUTE: u64 = 60_000;

fn authenticator() -> Authenticator<InMemoryRegistry> {
    let registry = InMemoryRegistry::new();
    registry.put_group(GroupRecord::new("GID_a", 0)).unwrap();
    let reader = AccessKey {
        policy: AccessPolicy {
            publish: TopicAccess::none(),
            subscribe: TopicAccess::filters(["a/#"]).unwrap(),
        },
        ..AccessKey::new("READER", "r")
    };
    let config = AuthConfig::new("inst")
        .with_access_key(AccessKey::new("AK", "s"))
        .with_access_key(reader);
    Authenticator::new(config, registry)
}

fn request(resources: &[&str], actions: TokenActions, expire_time_ms: u64) -> TokenRequest {
    TokenRequest {
        resources: resources.iter().map(|r| r.to_string()).collect(),
        actions,
        expire_time_ms,
    }
}

#[test]
fn token_request_rules() {
    use TokenActions::*;
    let auth = authenticator();
    let hour = NOW + 60 * MINUTE;
    let many: Vec<String> = (0..=MAX_TOKEN_RESOURCES)
        .map(|i| format!("t/{i}"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let table: Vec<(&str, TokenRequest, Result<(), &str>)> = vec![
        ("AK", request(&["a/#", "b/+/c"], ReadWrite, hour), Ok(())),
        (
            "AK",
            request(&many[..MAX_TOKEN_RESOURCES], Read, hour),
            Ok(()),
        ),
        ("AK", request(&many, Read, hour), Err("TooManyResources")),
        ("AK", request(&[], Read, hour), Err("NoResources")),
        ("AK", request(&["a/#/b"], Read, hour), Err("BadResource")),
        ("AK", request(&[""], Read, hour), Err("BadResource")),
        ("AK", request(&["a"], Read, NOW + MINUTE), Ok(())),
        (
            "AK",
            request(&["a"], Read, NOW + MINUTE - 1),
            Err("ExpiryTooSoon"),
        ),
        ("AK", request(&["a"], Read, NOW - 1), Err("ExpiryTooSoon")),
        ("NOPE", request(&["a"], Read, hour), Err("UnknownAccessKey")),
        ("READER", request(&["a/+"], Read, hour), Ok(())),
        (
            "READER",
            request(&["a/+"], Write, hour),
            Err("ResourceNotGranted"),
        ),
        (
            "READER",
            request(&["#"], Read, hour),
            Err("ResourceNotGranted"),
        ),
    ];
    for (ak, request, expected) in table {
        let label = format!("{ak} {request:?}");
        let outcome = auth
            .issue_token(ak, request, NOW)
            .map(|_| ())
            .map_err(|error| {
                let debug = format!("{error:?}");
                debug
                    .split(['(', ' '])
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            });
        assert_eq!(outcome, expected.map_err(str::to_owned), "{label}");
    }
}

#[test]
fn expiry_is_capped_at_thirty_days() {
    let auth = authenticator();
    let far = NOW + 365 * 24 * 60 * MINUTE;
    let record = auth
        .issue_token("AK", request(&["a"], TokenActions::Read, far), NOW)
        .unwrap();
    assert_eq!(record.expire_time_ms, NOW + MAX_TOKEN_LIFETIME_MS);
    assert_eq!(record.create_time_ms, NOW);
    assert_eq!(record.instance_id, "inst");
}

#[test]
fn tokens_are_unguessable_and_distinct() {
    let auth = authenticator();
    let tokens: HashSet<String> = (0..200)
        .map(|_| {
            auth.issue_token("AK", request(&["a"], TokenActions::Read, NOW + MINUTE), NOW)
                .unwrap()
                .token
        })
        .collect();
    assert_eq!(tokens.len(), 200);
    // At least 128 bits of Base64 (6 bits per character).
    assert!(tokens
        .iter()
        .all(|t| t.len() * 6 >= 128 && !t.contains('|')));
}

#[test]
fn query_and_revoke_are_scoped_to_the_issuer() {
    let auth = authenticator();
    let token = auth
        .issue_token("AK", request(&["a"], TokenActions::Read, NOW + MINUTE), NOW)
        .unwrap()
        .token;
    assert_eq!(
        auth.query_token("READER", &token),
        Err(ManageError::UnknownToken)
    );
    assert_eq!(
        auth.revoke_token("READER", &token),
        Err(ManageError::UnknownToken)
    );
    assert!(auth.query_token("AK", &token).unwrap().is_valid(NOW));
    assert!(!auth
        .query_token("AK", &token)
        .unwrap()
        .is_valid(NOW + MINUTE));
    assert!(auth.revoke_token("AK", &token).unwrap().revoked);
    assert!(auth.revoke_token("AK", &token).unwrap().revoked);
    let queried = auth.query_token("AK", &token).unwrap();
    assert!(queried.revoked && !queried.is_valid(NOW));
    assert_eq!(
        auth.query_token("AK", "nope"),
        Err(ManageError::UnknownToken)
    );
}

fn connects(
    auth: &Authenticator<InMemoryRegistry>,
    credential: &DeviceCredential,
    secret: &str,
) -> bool {
    let username = format!("DeviceCredential|{}|inst", credential.device_access_key_id);
    let password = sign_client_id(secret, &credential.client_id);
    auth.authenticate(
        &credential.client_id,
        Some(&username),
        Some(password.as_bytes()),
        NOW,
    )
    .is_ok()
}

#[test]
fn device_credential_lifecycle() {
    let auth = authenticator();
    let first = auth.register_device_credential("GID_a@@@d1", NOW).unwrap();
    assert_eq!(
        (first.client_id.as_str(), first.instance_id.as_str()),
        ("GID_a@@@d1", "inst")
    );
    assert!(first.device_access_key_secret.len() * 6 >= 256);
    assert!(connects(&auth, &first, &first.device_access_key_secret));
    assert_eq!(
        auth.register_device_credential("GID_a@@@d1", NOW + 1)
            .unwrap(),
        first
    );
    assert_eq!(auth.device_credential("GID_a@@@d1").unwrap(), first);

    let refreshed = auth
        .refresh_device_credential("GID_a@@@d1", NOW + 5)
        .unwrap();
    assert_eq!(refreshed.device_access_key_id, first.device_access_key_id);
    assert_ne!(
        refreshed.device_access_key_secret,
        first.device_access_key_secret
    );
    assert_eq!(
        (refreshed.create_time_ms, refreshed.update_time_ms),
        (NOW, NOW + 5)
    );
    assert!(!connects(
        &auth,
        &refreshed,
        &first.device_access_key_secret
    ));
    assert!(connects(
        &auth,
        &refreshed,
        &refreshed.device_access_key_secret
    ));

    auth.register_device_credential("GID_a@@@d0", NOW).unwrap();
    assert_eq!(
        auth.device_credential_client_ids().unwrap(),
        ["GID_a@@@d0", "GID_a@@@d1"]
    );

    assert_eq!(
        auth.unregister_device_credential("GID_a@@@d1").unwrap(),
        refreshed
    );
    assert!(!connects(
        &auth,
        &refreshed,
        &refreshed.device_access_key_secret
    ));
    let gone = Err(ManageError::UnknownDeviceCredential("GID_a@@@d1".into()));
    assert_eq!(auth.device_credential("GID_a@@@d1"), gone);
    assert_eq!(auth.refresh_device_credential("GID_a@@@d1", NOW), gone);
    assert_eq!(auth.unregister_device_credential("GID_a@@@d1"), gone);
    assert_eq!(auth.device_credential_client_ids().unwrap(), ["GID_a@@@d0"]);
}

#[test]
fn device_credentials_need_a_registered_group() {
    let auth = authenticator();
    assert_eq!(
        auth.register_device_credential("GID_b@@@d1", NOW),
        Err(ManageError::GroupNotRegistered("GID_b".into()))
    );
    assert!(matches!(
        auth.register_device_credential("plain", NOW),
        Err(ManageError::BadClientId(_))
    ));
    assert!(auth.device_credential_client_ids().unwrap().is_empty());
}
