//! CONNECT authentication, table-driven over every rule of
//! `mqgate_auth::Authenticator`, plus the captured `mqtt_connect_vectors`.
// The helpers of this test binary unwrap too (clippy.toml allows it in tests only).
#![allow(clippy::unwrap_used)]

use mqgate_auth::*;
use serde_json::Value;

const INSTANCE: &str = "mqtt-test";
const AK: &str = "LTAI_TEST_AK";
const SECRET: &str = "test-secret-123";
const CLIENT: &str = "GID_a@@@d1";
const NOW: u64 = 1_800_000_000_000;
const VECTORS: &str = include_str!("data/openapi-signatures.json");

/// GID_a registered; two keys (LTAI_TEST_AK allowed everything, LIMITED only
/// `a/#`); the vector's device credential for GID_a@@@d1.
fn authenticator() -> Authenticator<InMemoryRegistry> {
    let registry = InMemoryRegistry::new();
    registry.put_group(GroupRecord::new("GID_a", 0)).unwrap();
    registry
        .put_device_credential(DeviceCredential {
            client_id: CLIENT.into(),
            instance_id: INSTANCE.into(),
            device_access_key_id: "DEVAK123".into(),
            device_access_key_secret: "DEVSECRET456".into(),
            create_time_ms: 0,
            update_time_ms: 0,
        })
        .unwrap();
    let limited_access = TopicAccess::filters(["a/#"]).unwrap();
    let limited = AccessKey {
        policy: AccessPolicy {
            publish: limited_access.clone(),
            subscribe: limited_access,
        },
        ..AccessKey::new("LIMITED", "limited-secret")
    };
    let config = AuthConfig::new(INSTANCE)
        .with_access_key(AccessKey::new(AK, SECRET))
        .with_access_key(limited);
    Authenticator::new(config, registry)
}

fn token(
    auth: &Authenticator<InMemoryRegistry>,
    ak: &str,
    resources: &[&str],
    actions: TokenActions,
) -> String {
    let request = TokenRequest {
        resources: resources.iter().map(|r| r.to_string()).collect(),
        actions,
        expire_time_ms: NOW + 3_600_000,
    };
    auth.issue_token(ak, request, NOW).unwrap().token
}

fn connect(
    auth: &Authenticator<InMemoryRegistry>,
    client: &str,
    username: Option<&str>,
    password: Option<&str>,
    now: u64,
) -> Result<Authenticated, AuthFailure> {
    auth.authenticate(client, username, password.map(str::as_bytes), now)
}

#[test]
fn captured_mqtt_connect_vectors_verify() {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    let auth = authenticator();
    for mode in ["signature_mode", "device_credential_mode"] {
        let vector = &all["mqtt_connect_vectors"][mode];
        let client = vector["client_id"].as_str().unwrap();
        let password = vector["password"].as_str().unwrap();
        let secret = vector["access_key_secret"]
            .as_str()
            .or(vector["device_access_key_secret"].as_str())
            .unwrap();
        assert_eq!(sign_client_id(secret, client), password, "{mode}");
        let outcome = connect(
            &auth,
            client,
            vector["username"].as_str(),
            Some(password),
            NOW,
        );
        assert!(outcome.is_ok(), "{mode}: {outcome:?}");
    }
    let examples = &all["mqtt_connect_vectors"]["token_mode"]["password_examples"];
    for example in examples.as_array().unwrap() {
        let example = example.as_str().unwrap().replace("<token>", "t");
        assert!(
            TokenPassword::parse(example.as_bytes()).is_ok(),
            "{example}"
        );
    }
}

#[test]
fn signature_and_device_rules() {
    use ConnackCode::*;
    let auth = authenticator();
    let good = sign_client_id(SECRET, CLIENT);
    let device = sign_client_id("DEVSECRET456", CLIENT);
    let other_group = sign_client_id(SECRET, "GID_b@@@d1");
    let plain_id = sign_client_id(SECRET, "plain");
    let sig_user = "Signature|LTAI_TEST_AK|mqtt-test";
    let dev_user = "DeviceCredential|DEVAK123|mqtt-test";
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Result<(), ConnackCode>,
    );
    let table: &[Case] = &[
        (CLIENT, Some(sig_user), Some(&good), Ok(())),
        (
            CLIENT,
            Some(sig_user),
            Some("uAPbUQftSJEDN7s5soo5uXrrCXN="),
            Err(BadUsernameOrPassword),
        ),
        (
            CLIENT,
            Some(sig_user),
            Some(&device),
            Err(BadUsernameOrPassword),
        ),
        (CLIENT, Some(sig_user), None, Err(BadUsernameOrPassword)),
        (
            CLIENT,
            Some("Signature|LTAI_TEST_AK|other"),
            Some(&good),
            Err(BadUsernameOrPassword),
        ),
        (
            CLIENT,
            Some("Signature|NOPE|mqtt-test"),
            Some(&good),
            Err(BadUsernameOrPassword),
        ),
        (
            CLIENT,
            Some("Signature|LTAI_TEST_AK"),
            Some(&good),
            Err(BadUsernameOrPassword),
        ),
        (
            CLIENT,
            Some("signature|LTAI_TEST_AK|mqtt-test"),
            Some(&good),
            Err(BadUsernameOrPassword),
        ),
        (CLIENT, None, None, Err(NotAuthorized)),
        (
            "GID_a@@@d2",
            Some(sig_user),
            Some(&good),
            Err(BadUsernameOrPassword),
        ),
        (
            "GID_b@@@d1",
            Some(sig_user),
            Some(&other_group),
            Err(NotAuthorized),
        ),
        (
            "plain",
            Some(sig_user),
            Some(&plain_id),
            Err(IdentifierRejected),
        ),
        (CLIENT, Some(dev_user), Some(&device), Ok(())),
        (
            CLIENT,
            Some(dev_user),
            Some(&good),
            Err(BadUsernameOrPassword),
        ),
        (
            CLIENT,
            Some("DeviceCredential|DEVAK999|mqtt-test"),
            Some(&device),
            Err(BadUsernameOrPassword),
        ),
        (
            "GID_a@@@d2",
            Some(dev_user),
            Some(&device),
            Err(BadUsernameOrPassword),
        ),
    ];
    for (client, username, password, expected) in table {
        let outcome = connect(&auth, client, *username, *password, NOW);
        assert_eq!(
            outcome.map(|_| ()).map_err(|f| f.code),
            *expected,
            "{client} {username:?} {password:?}"
        );
    }
}

#[test]
fn access_key_policy_becomes_the_grants() {
    let auth = authenticator();
    let password = sign_client_id("limited-secret", CLIENT);
    let session = connect(
        &auth,
        CLIENT,
        Some("Signature|LIMITED|mqtt-test"),
        Some(&password),
        NOW,
    )
    .unwrap();
    assert_eq!(
        session.method,
        AuthMethod::Signature {
            access_key_id: "LIMITED".into()
        }
    );
    assert!(session.grants.may_publish("a/b"));
    assert!(!session.grants.may_publish("b"));
    assert!(session.grants.may_subscribe("a/+"));
    assert!(!session.grants.may_subscribe("#"));
    assert_eq!(session.grants.client_id(), CLIENT);
}

#[test]
fn token_rules() {
    use ConnackCode::*;
    let auth = authenticator();
    let read = token(&auth, AK, &["a/#"], TokenActions::Read);
    let write = token(&auth, AK, &["a/b"], TokenActions::Write);
    let both = token(&auth, AK, &["c/+"], TokenActions::ReadWrite);
    let foreign = token(&auth, "LIMITED", &["a/b"], TokenActions::ReadWrite);
    let revoked = token(&auth, AK, &["a/b"], TokenActions::Read);
    auth.revoke_token(AK, &revoked).unwrap();
    let user = "Token|LTAI_TEST_AK|mqtt-test";
    let later = NOW + 3_600_000;
    let table: Vec<(String, u64, Result<(), ConnackCode>)> = vec![
        (format!("R|{read}"), NOW, Ok(())),
        (format!("R|{read}|W|{write}"), NOW, Ok(())),
        (format!("W|{write}|R|{read}"), NOW, Ok(())),
        (format!("RW|{both}"), NOW, Ok(())),
        (format!("R|{both}"), NOW, Ok(())),
        (format!("R|{read}"), later - 1, Ok(())),
        (format!("R|{read}"), later, Err(NotAuthorized)),
        (format!("R|{revoked}"), NOW, Err(NotAuthorized)),
        (format!("W|{read}"), NOW, Err(NotAuthorized)),
        (format!("RW|{read}"), NOW, Err(NotAuthorized)),
        (format!("R|{read}|W|{revoked}"), NOW, Err(NotAuthorized)),
        (format!("R|{foreign}"), NOW, Err(BadUsernameOrPassword)),
        ("R|no-such-token".into(), NOW, Err(BadUsernameOrPassword)),
        (
            format!("R|{read}|R|{read}"),
            NOW,
            Err(BadUsernameOrPassword),
        ),
        (format!("X|{read}"), NOW, Err(BadUsernameOrPassword)),
        (read.clone(), NOW, Err(BadUsernameOrPassword)),
    ];
    for (password, now, expected) in table {
        let outcome = connect(&auth, CLIENT, Some(user), Some(&password), now);
        assert_eq!(
            outcome.map(|_| ()).map_err(|f| f.code),
            expected,
            "{password} at {now}"
        );
    }
}

#[test]
fn tokens_grant_exactly_their_resources_and_actions() {
    let auth = authenticator();
    let read = token(&auth, AK, &["a/#"], TokenActions::Read);
    let write = token(&auth, AK, &["a/b", "x/+"], TokenActions::Write);
    let password = format!("R|{read}|W|{write}");
    let session = connect(
        &auth,
        CLIENT,
        Some("Token|LTAI_TEST_AK|mqtt-test"),
        Some(&password),
        NOW,
    )
    .unwrap();
    let grants = &session.grants;
    assert!(grants.may_subscribe("a/+/c") && grants.may_subscribe("a/#"));
    assert!(!grants.may_subscribe("x/y") && !grants.may_subscribe("#"));
    assert!(grants.may_publish("a/b") && grants.may_publish("x/y"));
    assert!(!grants.may_publish("a/c") && !grants.may_publish("x/y/z"));
    assert_eq!(
        session.method,
        AuthMethod::Token {
            access_key_id: AK.into(),
            tokens: vec![read.clone(), write]
        }
    );

    let read_only = connect(
        &auth,
        CLIENT,
        Some("Token|LTAI_TEST_AK|mqtt-test"),
        Some(&format!("R|{read}")),
        NOW,
    )
    .unwrap();
    assert!(!read_only.grants.may_publish("a/b"));
}

#[test]
fn anonymous_mode() {
    let mut config = AuthConfig::new(INSTANCE).with_anonymous(true);
    config.access_keys.push(AccessKey::new(AK, SECRET));
    let auth = Authenticator::new(config, InMemoryRegistry::new());
    let session = auth.authenticate("anything", None, None, NOW).unwrap();
    assert_eq!(session.method, AuthMethod::Anonymous);
    assert!(session.grants.may_publish("x") && session.grants.may_subscribe("#"));
    // Credentials that are sent are still checked.
    let refused = auth.authenticate(
        "anything",
        Some("Signature|LTAI_TEST_AK|mqtt-test"),
        Some(b"bad"),
        NOW,
    );
    assert_eq!(
        refused.unwrap_err().code,
        ConnackCode::BadUsernameOrPassword
    );
}

/// A registry whose storage is down.
struct BrokenRegistry;

fn down<T>() -> Result<T, RegistryError> {
    Err(RegistryError::Storage("disk on fire".into()))
}

impl Registry for BrokenRegistry {
    fn group(&self, _: &str) -> Result<Option<GroupRecord>, RegistryError> {
        down()
    }
    fn put_group(&self, _: GroupRecord) -> Result<(), RegistryError> {
        down()
    }
    fn remove_group(&self, _: &str) -> Result<Option<GroupRecord>, RegistryError> {
        down()
    }
    fn groups(&self) -> Result<Vec<GroupRecord>, RegistryError> {
        down()
    }
    fn token(&self, _: &str) -> Result<Option<TokenRecord>, RegistryError> {
        down()
    }
    fn put_token(&self, _: TokenRecord) -> Result<(), RegistryError> {
        down()
    }
    fn remove_token(&self, _: &str) -> Result<Option<TokenRecord>, RegistryError> {
        down()
    }
    fn device_credential(&self, _: &str) -> Result<Option<DeviceCredential>, RegistryError> {
        down()
    }
    fn put_device_credential(&self, _: DeviceCredential) -> Result<(), RegistryError> {
        down()
    }
    fn remove_device_credential(&self, _: &str) -> Result<Option<DeviceCredential>, RegistryError> {
        down()
    }
    fn device_client_ids(&self) -> Result<Vec<String>, RegistryError> {
        down()
    }
    fn custom_identities(&self) -> Result<Vec<CustomIdentity>, RegistryError> {
        down()
    }
    fn put_custom_identity(&self, _: CustomIdentity) -> Result<(), RegistryError> {
        down()
    }
    fn remove_custom_identity(
        &self,
        _: &IdentityKey,
    ) -> Result<Option<CustomIdentity>, RegistryError> {
        down()
    }
    fn custom_permissions(&self) -> Result<Vec<CustomPermission>, RegistryError> {
        down()
    }
    fn put_custom_permission(&self, _: CustomPermission) -> Result<(), RegistryError> {
        down()
    }
    fn remove_custom_permission(
        &self,
        _: &PermissionKey,
    ) -> Result<Option<CustomPermission>, RegistryError> {
        down()
    }
    fn connect_blacklist(&self) -> Result<Vec<ConnectBlack>, RegistryError> {
        down()
    }
    fn put_connect_black(&self, _: ConnectBlack) -> Result<(), RegistryError> {
        down()
    }
    fn remove_connect_black(&self, _: &str) -> Result<Option<ConnectBlack>, RegistryError> {
        down()
    }
}

#[test]
fn registry_failure_is_server_unavailable() {
    let auth = Authenticator::new(
        AuthConfig::new(INSTANCE).with_access_key(AccessKey::new(AK, SECRET)),
        BrokenRegistry,
    );
    let password = sign_client_id(SECRET, CLIENT);
    for (username, password) in [
        ("Signature|LTAI_TEST_AK|mqtt-test", password.as_str()),
        ("Token|LTAI_TEST_AK|mqtt-test", "R|t"),
        ("DeviceCredential|D|mqtt-test", password.as_str()),
    ] {
        let failure = auth
            .authenticate(CLIENT, Some(username), Some(password.as_bytes()), NOW)
            .unwrap_err();
        assert_eq!(failure.code, ConnackCode::ServerUnavailable, "{username}");
        assert!(matches!(failure.reason, FailureReason::Registry(_)));
    }
}
