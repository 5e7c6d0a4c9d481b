//! Custom authentication over the HTTP API with real MQTT clients (rumqttc, and our codec
//! where a close must be seen): identities, live permissions, the connect blacklist, a
//! restart on the redb store, and the error codes of bad requests.
#![allow(clippy::unwrap_used)]

mod auth_support;
mod support;

use std::path::Path;
use std::time::Duration;

use auth_support::*;
use bytes::Bytes;
use mqgate_broker::{BrokerConfig, BrokerHandle};
use mqgate_codec::{Connect, ConnectReturnCode, Packet};
use rumqttc::{ConnectReturnCode as Code, MqttOptions, QoS, SubscribeReasonCode};
use support::{subscribe, Client};

const I: (&str, &str) = ("InstanceId", INSTANCE);

fn broker_config(top: &str) -> BrokerConfig {
    api_config(top, "", "groups = [\"GID_a\"]")
}

/// A write action that must succeed, with the answer's fixed fields checked.
async fn write(broker: &BrokerHandle, action: &str, params: &[(&str, &str)]) {
    let mut all = vec![I];
    all.extend_from_slice(params);
    let answer = ok(&api_post(broker, AK, SECRET, action, &all).await);
    assert_eq!(answer["Code"], 200, "{action}: {answer}");
    assert_eq!(answer["Success"], true, "{action}: {answer}");
    assert!(answer["Message"].is_string() && answer["RequestId"].is_string());
}

/// A query action's `Data`.
async fn query(broker: &BrokerHandle, action: &str, params: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec![I];
    all.extend_from_slice(params);
    let answer = ok(&api_get(broker, AK, SECRET, action, &all).await);
    assert_eq!(
        (answer["Code"].clone(), answer["Success"].clone()),
        (200.into(), true.into())
    );
    answer["Data"].clone()
}

fn user(broker: &BrokerHandle, client_id: &str, username: &str, password: &str) -> MqttOptions {
    let mut options = options(broker, client_id);
    options.set_credentials(username, password);
    options
}

async fn add_user(broker: &BrokerHandle, username: &str, secret: &str, mode: &str) {
    let params = [
        ("IdentityType", "USER"),
        ("Username", username),
        ("Secret", secret),
        ("SignMode", mode),
    ];
    write(broker, "AddCustomAuthIdentity", &params).await;
}

async fn permission(
    broker: &BrokerHandle,
    action: &str,
    who: &str,
    topic: &str,
    what: &str,
    effect: &str,
) {
    let params = [
        ("IdentityType", "USER"),
        ("Identity", who),
        ("Topic", topic),
        ("PermitAction", what),
        ("Effect", effect),
    ];
    write(broker, action, &params).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_apply_to_live_connections_deny_over_allow() {
    let broker = start(broker_config("storage = \"memory\""), None).await;
    add_user(&broker, "dev-user", "dev-secret", "ORIGIN").await;
    permission(
        &broker,
        "AddCustomAuthPermission",
        "dev-user",
        "cmd/#",
        "PUB_SUB",
        "ALLOW",
    )
    .await;
    permission(
        &broker,
        "AddCustomAuthPermission",
        "dev-user",
        "cmd/secret",
        "PUB_SUB",
        "DENY",
    )
    .await;

    let mut watcher = Client::with_options(signed(&broker, "GID_a@@@watcher", AK, SECRET)).await;
    assert_eq!(
        subscribe(&mut watcher, "#", QoS::AtLeastOnce).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let mut dev =
        Client::with_options(user(&broker, "GID_a@@@dev", "dev-user", "dev-secret")).await;
    for (filter, allowed) in [
        ("cmd/open", true),
        ("cmd/+/x", true),
        ("cmd/+", false),
        ("cmd/secret", false),
        ("other", false),
    ] {
        let expected = if allowed {
            SubscribeReasonCode::Success(QoS::AtLeastOnce)
        } else {
            SubscribeReasonCode::Failure
        };
        assert_eq!(
            subscribe(&mut dev, filter, QoS::AtLeastOnce).await,
            [expected],
            "{filter}"
        );
    }
    for topic in ["cmd/secret", "other/x", "cmd/a"] {
        dev.client
            .publish(topic, QoS::AtLeastOnce, false, topic)
            .await
            .unwrap();
    }
    dev.acked(3).await;
    let got = watcher.next().await;
    assert_eq!(
        got.topic, "cmd/a",
        "DENY and no-permission publishes are dropped"
    );
    assert_eq!(broker.metrics().publish_denied, 2);

    // The ALLOW goes: the live connection's next PUBLISH and SUBSCRIBE are refused.
    let params = [
        ("IdentityType", "USER"),
        ("Identity", "dev-user"),
        ("Topic", "cmd/#"),
    ];
    write(&broker, "DeleteCustomAuthPermission", &params).await;
    dev.client
        .publish("cmd/b", QoS::AtLeastOnce, false, "after")
        .await
        .unwrap();
    dev.acked(1).await;
    assert_eq!(
        subscribe(&mut dev, "cmd/open2", QoS::AtLeastOnce).await,
        [SubscribeReasonCode::Failure]
    );
    watcher.expect_nothing(Duration::from_millis(300)).await;
    assert!(
        broker.is_online("GID_a@@@dev"),
        "refusals keep the connection"
    );

    // Given back, narrowed to PUB by an update: publishing works again, subscribing does not.
    permission(
        &broker,
        "AddCustomAuthPermission",
        "dev-user",
        "cmd/#",
        "PUB_SUB",
        "ALLOW",
    )
    .await;
    permission(
        &broker,
        "UpdateCustomAuthPermission",
        "dev-user",
        "cmd/#",
        "PUB",
        "ALLOW",
    )
    .await;
    dev.client
        .publish("cmd/c", QoS::AtLeastOnce, false, "again")
        .await
        .unwrap();
    assert_eq!(watcher.next().await.topic, "cmd/c");
    assert_eq!(
        subscribe(&mut dev, "cmd/open3", QoS::AtLeastOnce).await,
        [SubscribeReasonCode::Failure]
    );
    let listed = query(
        &broker,
        "QueryCustomAuthPermission",
        &[("Size", "10"), ("Identity", "dev-user")],
    )
    .await;
    let results = listed["Results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{listed}");
    assert_eq!(results[0]["Topic"], "cmd/#");
    assert_eq!(results[0]["PermitAction"], "PUB");
    assert_eq!(results[1]["Effect"], "DENY");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_identities_are_bound_and_signed_mode_wants_the_signature() {
    let broker = start(broker_config("storage = \"memory\""), None).await;
    let params = [
        ("IdentityType", "CLIENT"),
        ("Username", "meter"),
        ("ClientId", "GID_a@@@meter-1"),
        ("Secret", "meter-secret"),
        ("SignMode", "SIGNED"),
    ];
    write(&broker, "AddCustomAuthIdentity", &params).await;
    let signature = |id| mqgate_auth::sign_client_id("meter-secret", id);
    let cases = [
        (
            "GID_a@@@meter-1",
            signature("GID_a@@@meter-1"),
            Code::Success,
        ),
        (
            "GID_a@@@meter-1",
            "meter-secret".to_owned(),
            Code::BadUserNamePassword,
        ),
        (
            "GID_a@@@meter-2",
            signature("GID_a@@@meter-2"),
            Code::BadUserNamePassword,
        ),
        (
            "GID_a@@@meter-2",
            signature("GID_a@@@meter-1"),
            Code::BadUserNamePassword,
        ),
    ];
    for (client_id, password, code) in cases {
        let got = connack_code(user(&broker, client_id, "meter", &password)).await;
        assert_eq!(got, code, "{client_id} with {password}");
    }
    // A username that is no custom identity keeps the other modes.
    assert_eq!(
        connack_code(signed(&broker, "GID_a@@@sig", AK, SECRET)).await,
        Code::Success
    );
    let found = query(
        &broker,
        "QueryCustomAuthIdentity",
        &[("Size", "5"), ("IdentityType", "CLIENT")],
    )
    .await;
    assert_eq!(
        found["Results"][0]["ClientId"], "GID_a@@@meter-1",
        "{found}"
    );
    assert_eq!(found["Results"][0]["SignMode"], "SIGNED");

    // Deleted: the username no longer logs in.
    let params = [
        ("IdentityType", "CLIENT"),
        ("Username", "meter"),
        ("ClientId", "GID_a@@@meter-1"),
    ];
    write(&broker, "DeleteCustomAuthIdentity", &params).await;
    let got = connack_code(user(
        &broker,
        "GID_a@@@meter-1",
        "meter",
        &signature("GID_a@@@meter-1"),
    ))
    .await;
    assert_eq!(got, Code::BadUserNamePassword);
    broker.shutdown().await;
}

/// Opens a connection with `username`/`password` through our codec; expects CONNACK 0.
async fn raw_login(
    broker: &BrokerHandle,
    client_id: &str,
    username: &str,
    password: &str,
) -> support::Raw {
    let mut raw = support::Raw::open(broker).await;
    raw.send(Packet::Connect(Box::new(Connect {
        client_id: client_id.try_into().unwrap(),
        keep_alive: 30,
        clean_session: true,
        username: Some(username.try_into().unwrap()),
        password: Some(Bytes::from(password.to_owned())),
        ..Connect::default()
    })))
    .await;
    match raw.recv().await {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.code, ConnectReturnCode::Accepted),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blacklisted_client_is_closed_at_once_and_refused_until_removed() {
    let broker = start(broker_config("storage = \"memory\""), None).await;
    add_user(&broker, "u", "p", "ORIGIN").await;
    let mut online = raw_login(&broker, "GID_a@@@bad", "u", "p").await;
    let mut bystander = raw_login(&broker, "GID_a@@@good", "u", "p").await;

    write(
        &broker,
        "AddCustomAuthConnectBlack",
        &[("ClientId", "GID_a@@@bad")],
    )
    .await;
    online.expect_closed().await;
    assert!(!broker.is_online("GID_a@@@bad"));
    assert!(broker.is_online("GID_a@@@good"));
    assert!(
        bystander
            .recv_within(Duration::from_millis(200))
            .await
            .is_err(),
        "left alone"
    );

    // Refused whatever the login mode; the bystander's id still connects.
    assert_eq!(
        connack_code(user(&broker, "GID_a@@@bad", "u", "p")).await,
        Code::NotAuthorized
    );
    assert_eq!(
        connack_code(signed(&broker, "GID_a@@@bad", AK, SECRET)).await,
        Code::NotAuthorized
    );
    let listed = query(&broker, "QueryCustomAuthConnectBlack", &[("Size", "100")]).await;
    assert_eq!(listed["Results"][0]["ClientId"], "GID_a@@@bad", "{listed}");
    assert!(listed.get("NextToken").is_none());

    write(
        &broker,
        "DeleteCustomAuthConnectBlack",
        &[("ClientId", "GID_a@@@bad")],
    )
    .await;
    assert_eq!(
        connack_code(user(&broker, "GID_a@@@bad", "u", "p")).await,
        Code::Success
    );
    assert!(broker.metrics().api_disconnects >= 1);
    broker.shutdown().await;
}

/// Starts on a redb store in `data_dir`, once the previous broker let go of it.
async fn start_on(data_dir: &Path) -> BrokerHandle {
    let top = format!("storage = \"redb\"\ndata_dir = \"{}\"", data_dir.display());
    start_retrying(|| broker_config(&top)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_rules_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = start_on(dir.path()).await;
    add_user(&first, "kept", "kept-secret", "ORIGIN").await;
    permission(
        &first,
        "AddCustomAuthPermission",
        "kept",
        "keep/#",
        "PUB_SUB",
        "ALLOW",
    )
    .await;
    permission(
        &first,
        "AddCustomAuthPermission",
        "kept",
        "keep/no",
        "SUB",
        "DENY",
    )
    .await;
    write(
        &first,
        "AddCustomAuthConnectBlack",
        &[("ClientId", "GID_a@@@banned")],
    )
    .await;
    first.shutdown().await;
    drop(first);

    let second = start_on(dir.path()).await;
    let mut kept = Client::with_options(user(&second, "GID_a@@@k", "kept", "kept-secret")).await;
    assert_eq!(
        subscribe(&mut kept, "keep/+", QoS::AtMostOnce).await,
        [SubscribeReasonCode::Failure],
        "the DENY came back too"
    );
    assert_eq!(
        subscribe(&mut kept, "keep/yes", QoS::AtMostOnce).await,
        [SubscribeReasonCode::Success(QoS::AtMostOnce)]
    );
    kept.client
        .publish("keep/yes", QoS::AtMostOnce, false, "hi")
        .await
        .unwrap();
    assert_eq!(&kept.next().await.payload[..], b"hi");
    assert_eq!(
        connack_code(user(&second, "GID_a@@@banned", "kept", "kept-secret")).await,
        Code::NotAuthorized
    );
    let identities = query(&second, "QueryCustomAuthIdentity", &[("Size", "10")]).await;
    assert_eq!(identities["Results"][0]["Username"], "kept", "{identities}");
    second.shutdown().await;
}

/// (action, parameters, HTTP status, error code).
type BadCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_error_codes() {
    let broker = start(broker_config("storage = \"memory\""), None).await;
    add_user(&broker, "taken", "s", "ORIGIN").await;
    let identity = |kind, name, mode| {
        vec![
            I,
            ("IdentityType", kind),
            ("Username", name),
            ("Secret", "s"),
            ("SignMode", mode),
        ]
    };
    let perm = |topic, what, effect| {
        vec![
            I,
            ("IdentityType", "USER"),
            ("Identity", "taken"),
            ("Topic", topic),
            ("PermitAction", what),
            ("Effect", effect),
        ]
    };
    let cases: Vec<BadCase> = vec![
        (
            "AddCustomAuthIdentity",
            vec![I, ("Username", "x"), ("Secret", "s")],
            400,
            "MissingParameter.IdentityType",
        ),
        (
            "AddCustomAuthIdentity",
            identity("GROUP", "x", "ORIGIN"),
            400,
            "InvalidParameter.IdentityType",
        ),
        (
            "AddCustomAuthIdentity",
            identity("USER", "x", "PLAIN"),
            400,
            "InvalidParameter.SignMode",
        ),
        (
            "AddCustomAuthIdentity",
            identity("USER", "Signature|a|b", "ORIGIN"),
            400,
            "InvalidParameter.Username",
        ),
        (
            "AddCustomAuthIdentity",
            identity("CLIENT", "x", "ORIGIN"),
            400,
            "MissingParameter.ClientId",
        ),
        (
            "AddCustomAuthIdentity",
            identity("USER", "taken", "ORIGIN"),
            409,
            "CustomAuthIdentity.AlreadyExists",
        ),
        (
            "UpdateCustomAuthIdentity",
            identity("USER", "nobody", "ORIGIN"),
            404,
            "CustomAuthIdentity.NotFound",
        ),
        (
            "DeleteCustomAuthIdentity",
            vec![I, ("IdentityType", "USER"), ("Username", "nobody")],
            404,
            "CustomAuthIdentity.NotFound",
        ),
        (
            "AddCustomAuthPermission",
            perm("a/#/b", "PUB", "ALLOW"),
            400,
            "InvalidParameter.Topic",
        ),
        (
            "AddCustomAuthPermission",
            perm("a", "WRITE", "ALLOW"),
            400,
            "InvalidParameter.PermitAction",
        ),
        (
            "AddCustomAuthPermission",
            perm("a", "PUB", "PERMIT"),
            400,
            "InvalidParameter.Effect",
        ),
        (
            "UpdateCustomAuthPermission",
            perm("a", "PUB", "ALLOW"),
            404,
            "CustomAuthPermission.NotFound",
        ),
        (
            "DeleteCustomAuthPermission",
            vec![I, ("IdentityType", "USER"), ("Identity", "taken")],
            400,
            "MissingParameter.Topic",
        ),
        (
            "QueryCustomAuthIdentity",
            vec![I],
            400,
            "MissingParameter.Size",
        ),
        (
            "QueryCustomAuthIdentity",
            vec![I, ("Size", "101")],
            400,
            "InvalidParameter.Size",
        ),
        (
            "QueryCustomAuthPermission",
            vec![I, ("Size", "ten")],
            400,
            "InvalidParameter.Size",
        ),
        (
            "QueryCustomAuthConnectBlack",
            vec![I, ("Size", "5"), ("NextToken", "!!")],
            400,
            "InvalidParameter.NextToken",
        ),
        (
            "AddCustomAuthConnectBlack",
            vec![I],
            400,
            "MissingParameter.ClientId",
        ),
        (
            "DeleteCustomAuthConnectBlack",
            vec![I, ("ClientId", "GID_a@@@x")],
            404,
            "CustomAuthConnectBlack.NotFound",
        ),
    ];
    for (action, params, status, code) in cases {
        let answer = api_post(&broker, AK, SECRET, action, &params).await;
        assert_eq!(answer.status, status, "{action} {params:?}: {answer:?}");
        assert_eq!(
            answer.json()["Code"],
            code,
            "{action} {params:?}: {answer:?}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_page_with_next_tokens() {
    let broker = start(broker_config("storage = \"memory\""), None).await;
    let names: Vec<String> = (0..5).map(|i| format!("user-{i}")).collect();
    for name in &names {
        add_user(&broker, name, "s", "SIGNED").await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..5 {
        let mut params = vec![("Size", "2")];
        if let Some(token) = &token {
            params.push(("NextToken", token.as_str()));
        }
        let data = query(&broker, "QueryCustomAuthIdentity", &params).await;
        for result in data["Results"].as_array().unwrap() {
            seen.push(result["Username"].as_str().unwrap().to_owned());
        }
        token = data["NextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, names);
    broker.shutdown().await;
}
