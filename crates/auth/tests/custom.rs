//! Custom authentication through the `Authenticator`: identities, permissions and the
//! connect blacklist, managed as the API does and checked as CONNECT, PUBLISH and SUBSCRIBE
//! do, over an in-memory registry.
#![allow(clippy::unwrap_used)]

use mqgate_auth::custom::{IdentitySpec, PageRequest, PermissionSpec};
use mqgate_auth::*;

const INSTANCE: &str = "mqtt-test";
const NOW: u64 = 1_800_000_000_000;
const ME: &str = "GID_a@@@d1";
const OTHER: &str = "GID_a@@@d2";

fn authenticator() -> Authenticator<InMemoryRegistry> {
    let registry = InMemoryRegistry::new();
    registry.put_group(GroupRecord::new("GID_a", 0)).unwrap();
    Authenticator::new(AuthConfig::new(INSTANCE), registry)
}

fn identity<'a>(
    kind: &'a str,
    username: &'a str,
    client: Option<&'a str>,
    mode: &'a str,
) -> IdentitySpec<'a> {
    IdentitySpec {
        identity_type: kind,
        username,
        client_id: client,
        secret: "s3cret",
        sign_mode: Some(mode),
    }
}

fn permission<'a>(
    kind: &'a str,
    who: &'a str,
    topic: &'a str,
    action: &'a str,
    effect: &'a str,
) -> PermissionSpec<'a> {
    PermissionSpec {
        identity_type: kind,
        identity: who,
        topic,
        permit_action: action,
        effect,
    }
}

fn code<R: Registry>(auth: &Authenticator<R>, client: &str, user: &str, password: &[u8]) -> u8 {
    match auth.authenticate(client, Some(user), Some(password), NOW) {
        Ok(_) => 0,
        Err(failure) => failure.code.as_u8(),
    }
}

#[test]
fn origin_and_signed_identities_log_in() {
    let auth = authenticator();
    auth.add_custom_identity(&identity("USER", "plain", None, "ORIGIN"), NOW)
        .unwrap();
    auth.add_custom_identity(&identity("USER", "signer", None, "SIGNED"), NOW)
        .unwrap();
    assert_eq!(code(&auth, ME, "plain", b"s3cret"), 0);
    assert_eq!(
        code(&auth, OTHER, "plain", b"s3cret"),
        0,
        "USER: any client id"
    );
    assert_eq!(code(&auth, ME, "plain", b"wrong"), 4);
    assert_eq!(
        auth.authenticate(ME, Some("plain"), None, NOW)
            .unwrap_err()
            .reason,
        FailureReason::MissingPassword
    );
    let signature = sign_client_id("s3cret", ME);
    assert_eq!(code(&auth, ME, "signer", signature.as_bytes()), 0);
    assert_eq!(
        code(&auth, OTHER, "signer", signature.as_bytes()),
        4,
        "signed for another id"
    );
    assert_eq!(
        code(&auth, ME, "signer", b"s3cret"),
        4,
        "the bare secret in SIGNED mode"
    );
    // The group rule still holds, after the credentials.
    assert_eq!(code(&auth, "GID_zz@@@1", "plain", b"s3cret"), 5);
    assert_eq!(code(&auth, "nogroup", "plain", b"s3cret"), 2);
    // A username that is no custom identity goes to the other modes.
    assert_eq!(code(&auth, ME, "nobody", b"s3cret"), 4);
    let method = auth
        .authenticate(ME, Some("plain"), Some(b"s3cret"), NOW)
        .unwrap()
        .method;
    assert_eq!(
        method,
        AuthMethod::Custom {
            identity_type: IdentityType::User,
            username: "plain".into()
        }
    );
}

#[test]
fn a_client_identity_works_only_from_its_client_id() {
    let auth = authenticator();
    auth.add_custom_identity(&identity("CLIENT", "bound", Some(ME), "ORIGIN"), NOW)
        .unwrap();
    assert_eq!(code(&auth, ME, "bound", b"s3cret"), 0);
    let refused = auth
        .authenticate(OTHER, Some("bound"), Some(b"s3cret"), NOW)
        .unwrap_err();
    assert_eq!(refused.reason, FailureReason::CustomIdentityOtherClient);
    assert_eq!(refused.code.as_u8(), 4);
    // Updated: the old secret stops working; deleted: the username is unknown.
    let mut update = identity("CLIENT", "bound", Some(ME), "ORIGIN");
    update.secret = "n3w";
    auth.update_custom_identity(&update, NOW + 1).unwrap();
    assert_eq!(code(&auth, ME, "bound", b"s3cret"), 4);
    assert_eq!(code(&auth, ME, "bound", b"n3w"), 0);
    auth.delete_custom_identity("CLIENT", "bound", Some(ME))
        .unwrap();
    assert!(matches!(
        auth.authenticate(ME, Some("bound"), Some(b"n3w"), NOW)
            .unwrap_err()
            .reason,
        FailureReason::BadUsername(_)
    ));
}

#[test]
fn the_blacklist_refuses_every_mode() {
    let registry = InMemoryRegistry::new();
    registry.put_group(GroupRecord::new("GID_a", 0)).unwrap();
    let auth = Authenticator::new(AuthConfig::new(INSTANCE).with_anonymous(true), registry);
    auth.add_custom_identity(&identity("USER", "plain", None, "ORIGIN"), NOW)
        .unwrap();
    auth.add_connect_black(ME, NOW).unwrap();
    assert!(auth.is_connect_blacklisted(ME));
    let refused = auth
        .authenticate(ME, Some("plain"), Some(b"s3cret"), NOW)
        .unwrap_err();
    assert_eq!(refused.reason, FailureReason::ConnectBlacklisted);
    assert_eq!(refused.code.as_u8(), 5);
    assert_eq!(
        auth.authenticate(ME, None, None, NOW)
            .unwrap_err()
            .code
            .as_u8(),
        5
    );
    assert_eq!(code(&auth, OTHER, "plain", b"s3cret"), 0);
    auth.delete_connect_black(ME).unwrap();
    assert_eq!(code(&auth, ME, "plain", b"s3cret"), 0);
    assert!(auth.delete_connect_black(ME).is_err());
}

#[test]
fn live_grants_follow_every_permission_change() {
    let auth = authenticator();
    auth.add_custom_identity(&identity("USER", "u", None, "ORIGIN"), NOW)
        .unwrap();
    let grants = auth
        .authenticate(ME, Some("u"), Some(b"s3cret"), NOW)
        .unwrap()
        .grants;
    assert_eq!(grants.custom_username(), Some("u"));
    assert!(!grants.may_publish("a/x"), "no permission, no right");
    assert!(!grants.may_subscribe("a/x"));

    auth.add_custom_permission(&permission("USER", "u", "a/#", "PUB_SUB", "ALLOW"), NOW)
        .unwrap();
    assert!(grants.may_publish("a/x"));
    assert!(grants.may_subscribe("a/+"));

    // DENY wins, for this client id only.
    auth.add_custom_permission(
        &permission("CLIENT", ME, "a/secret", "PUB_SUB", "DENY"),
        NOW,
    )
    .unwrap();
    assert!(!grants.may_publish("a/secret"));
    assert!(!grants.may_subscribe("a/+"), "could deliver a/secret");
    assert!(grants.may_subscribe("a/open"));
    let other = auth
        .authenticate(OTHER, Some("u"), Some(b"s3cret"), NOW)
        .unwrap()
        .grants;
    assert!(other.may_publish("a/secret"));

    // Narrowed to PUB, then removed.
    auth.update_custom_permission(&permission("USER", "u", "a/#", "PUB", "ALLOW"), NOW)
        .unwrap();
    assert!(grants.may_publish("a/x"));
    assert!(!grants.may_subscribe("a/open"));
    auth.delete_custom_permission("USER", "u", "a/#").unwrap();
    assert!(!grants.may_publish("a/x"));
    // The P2P rule still holds for custom identities.
    auth.add_custom_permission(&permission("USER", "u", "#", "SUB", "ALLOW"), NOW)
        .unwrap();
    assert!(grants.may_subscribe("x/p2p/GID_a@@@d1"));
    assert!(!grants.may_subscribe("x/p2p/GID_a@@@d2"));
    assert!(grants.allows_publish_topic("x") == grants.may_publish("x"));
}

#[test]
fn bad_parameters_name_the_parameter() {
    let auth = authenticator();
    let invalid = |error: CustomAuthError| match error {
        CustomAuthError::Invalid { parameter, .. } => parameter,
        CustomAuthError::Missing(parameter) => parameter,
        other => panic!("not a parameter error: {other:?}"),
    };
    let long = "x".repeat(65);
    let cases: Vec<(IdentitySpec<'_>, &str)> = vec![
        (identity("GROUP", "u", None, "ORIGIN"), "IdentityType"),
        (identity("USER", "a|b", None, "ORIGIN"), "Username"),
        (identity("USER", &long, None, "ORIGIN"), "Username"),
        (identity("USER", "u", Some(ME), "ORIGIN"), "ClientId"),
        (identity("CLIENT", "u", None, "ORIGIN"), "ClientId"),
        (
            identity("CLIENT", "u", Some("no-group"), "ORIGIN"),
            "ClientId",
        ),
        (identity("USER", "u", None, "PLAIN"), "SignMode"),
        (
            IdentitySpec {
                secret: "",
                ..identity("USER", "u", None, "ORIGIN")
            },
            "Secret",
        ),
    ];
    for (spec, parameter) in cases {
        assert_eq!(
            invalid(auth.add_custom_identity(&spec, NOW).unwrap_err()),
            parameter,
            "{spec:?}"
        );
    }
    let cases = [
        (permission("USER", "u", "a/#/b", "PUB", "ALLOW"), "Topic"),
        (
            permission("USER", "u", "$share/g/a", "PUB", "ALLOW"),
            "Topic",
        ),
        (
            permission("USER", "u", "a", "READ", "ALLOW"),
            "PermitAction",
        ),
        (permission("USER", "u", "a", "PUB", "MAYBE"), "Effect"),
        (permission("CLIENT", "u", "a", "PUB", "ALLOW"), "Identity"),
        (
            permission("NOBODY", "u", "a", "PUB", "ALLOW"),
            "IdentityType",
        ),
    ];
    for (spec, parameter) in cases {
        assert_eq!(
            invalid(auth.add_custom_permission(&spec, NOW).unwrap_err()),
            parameter,
            "{spec:?}"
        );
    }
    assert_eq!(invalid(PageRequest::new(0, None).unwrap_err()), "Size");
    assert_eq!(invalid(PageRequest::new(101, None).unwrap_err()), "Size");
    assert_eq!(
        invalid(PageRequest::new(10, Some("%%")).unwrap_err()),
        "NextToken"
    );

    // Conflicts and absences.
    let spec = identity("USER", "u", None, "ORIGIN");
    auth.add_custom_identity(&spec, NOW).unwrap();
    assert_eq!(
        auth.add_custom_identity(&spec, NOW).unwrap_err(),
        CustomAuthError::AlreadyExists(custom::CustomResource::Identity)
    );
    assert_eq!(
        auth.update_custom_identity(&identity("USER", "v", None, "ORIGIN"), NOW)
            .unwrap_err(),
        CustomAuthError::NotFound(custom::CustomResource::Identity)
    );
    assert_eq!(
        auth.delete_custom_permission("USER", "u", "a").unwrap_err(),
        CustomAuthError::NotFound(custom::CustomResource::Permission)
    );
    assert!(auth.add_connect_black("", NOW).is_err());
}

#[test]
fn queries_filter_and_page_with_next_tokens() {
    let auth = authenticator();
    let names: Vec<String> = (0..7).map(|i| format!("user{i}")).collect();
    for name in &names {
        auth.add_custom_identity(&identity("USER", name, None, "SIGNED"), NOW)
            .unwrap();
        auth.add_custom_permission(&permission("USER", name, "t/#", "SUB", "ALLOW"), NOW)
            .unwrap();
    }
    auth.add_custom_identity(&identity("CLIENT", "user0", Some(ME), "ORIGIN"), NOW)
        .unwrap();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let page = PageRequest::new(3, token.as_deref()).unwrap();
        let got = auth
            .query_custom_identities(Some("USER"), None, None, &page)
            .unwrap();
        assert!(got.results.len() <= 3);
        seen.extend(got.results.into_iter().map(|i| i.username));
        token = got.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, names, "every USER identity once, in order");
    let page = PageRequest::new(100, None).unwrap();
    let clients = auth
        .query_custom_identities(None, None, Some(ME), &page)
        .unwrap();
    assert_eq!(clients.results.len(), 1);
    assert_eq!(clients.results[0].identity_type, IdentityType::Client);
    assert!(clients.next_token.is_none());
    let by_user = auth
        .query_custom_identities(None, Some("user0"), None, &page)
        .unwrap();
    assert_eq!(by_user.results.len(), 2);
    let permissions = auth
        .query_custom_permissions(None, Some("user3"), None, &page)
        .unwrap();
    assert_eq!(permissions.results.len(), 1);
    assert_eq!(permissions.results[0].topic, "t/#");
    assert_eq!(
        auth.query_custom_permissions(None, None, Some("t/#"), &page)
            .unwrap()
            .results
            .len(),
        7
    );
    auth.add_connect_black(OTHER, NOW).unwrap();
    auth.add_connect_black(ME, NOW).unwrap();
    let black = auth.query_connect_blacklist(None, &page).unwrap().results;
    assert_eq!(
        black
            .iter()
            .map(|b| b.client_id.as_str())
            .collect::<Vec<_>>(),
        [ME, OTHER]
    );
}

#[test]
fn rules_come_back_from_the_registry() {
    let registry = std::sync::Arc::new(InMemoryRegistry::new());
    registry.put_group(GroupRecord::new("GID_a", 0)).unwrap();
    let first = Authenticator::new(AuthConfig::new(INSTANCE), registry.clone());
    first
        .add_custom_identity(&identity("USER", "u", None, "ORIGIN"), NOW)
        .unwrap();
    first
        .add_custom_permission(&permission("USER", "u", "a", "PUB", "ALLOW"), NOW)
        .unwrap();
    first.add_connect_black(OTHER, NOW).unwrap();
    // A second authenticator over the same registry (a restart) sees all of it.
    let second = Authenticator::new(AuthConfig::new(INSTANCE), registry);
    let grants = second
        .authenticate(ME, Some("u"), Some(b"s3cret"), NOW)
        .unwrap()
        .grants;
    assert!(grants.may_publish("a"));
    assert_eq!(code(&second, OTHER, "u", b"s3cret"), 5);
}

/// A change of the registry's custom records made outside the authenticator (another
/// cluster node's) counts once made through `reload_custom_rules_after`, not before; and a
/// change made through the authenticator afterwards keeps it.
#[test]
fn a_change_made_elsewhere_counts_after_a_reload() {
    let auth = authenticator();
    auth.registry()
        .put_connect_black(ConnectBlack {
            client_id: OTHER.into(),
            create_time_ms: NOW,
        })
        .unwrap();
    assert!(
        !auth.is_connect_blacklisted(OTHER),
        "the rules are the authenticator's snapshot"
    );
    let stored = auth
        .reload_custom_rules_after(|registry| {
            registry.put_connect_black(ConnectBlack {
                client_id: ME.into(),
                create_time_ms: NOW,
            })
        })
        .unwrap();
    assert!(stored.is_ok());
    assert!(auth.is_connect_blacklisted(ME) && auth.is_connect_blacklisted(OTHER));
    auth.delete_connect_black(OTHER).unwrap();
    assert!(auth.is_connect_blacklisted(ME) && !auth.is_connect_blacklisted(OTHER));
    let refused = auth.authenticate(ME, None, None, NOW).unwrap_err();
    assert_eq!(refused.code, ConnackCode::NotAuthorized);
}
