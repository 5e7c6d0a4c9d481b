//! CONNECT authentication and per-message authorisation with `[auth]` configured, driven by
//! rumqttc (and our codec where the acknowledgement of a refused PUBLISH must be seen).
// Test and benchmark code: an unwrap that fails is a failure to report (clippy.toml allows
// it inside #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]

mod auth_support;
mod support;

use std::time::Duration;

use auth_support::*;
use bytes::Bytes;
use mqgate_auth::{DeviceCredential, Registry as _};
use mqgate_broker::BrokerConfig;
use mqgate_codec::{Connect, ConnectReturnCode, Packet, PacketId, Publish, QoS as CodecQoS};
use rumqttc::{ConnectReturnCode as Code, QoS, SubscribeReasonCode};
use support::{subscribe, subscribe_many, Client};

/// (what, client id, username and password, expected CONNACK).
type Case<'a> = (&'a str, &'a str, Option<(String, String)>, Code);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_gets_its_connack_code_and_is_counted() {
    let (store, registry) = seeded_store();
    let now = now_ms();
    put_token(&registry, "expired", &["a/#"], "R,W", now.saturating_sub(1));
    put_token(&registry, "valid", &["a/#"], "R", now + 3_600_000);
    let broker = start(config(""), Some(store)).await;
    let id = "GID_a@@@d1";
    let username = |mode: &str, key: &str, instance: &str| format!("{mode}|{key}|{instance}");
    let signature = mqgate_auth::sign_client_id(SECRET, id);
    let table: Vec<Case> = vec![
        (
            "bad signature",
            id,
            Some((username("Signature", AK, INSTANCE), "d3Jvbmc=".into())),
            Code::BadUserNamePassword,
        ),
        (
            "unknown AccessKey",
            id,
            Some((
                username("Signature", "LTAI_NOPE", INSTANCE),
                signature.clone(),
            )),
            Code::BadUserNamePassword,
        ),
        (
            "wrong instance",
            id,
            Some((
                username("Signature", AK, "other-instance"),
                signature.clone(),
            )),
            Code::BadUserNamePassword,
        ),
        (
            "bad username",
            id,
            Some(("Signature|only-two".into(), signature.clone())),
            Code::BadUserNamePassword,
        ),
        (
            "unregistered group",
            "GID_nope@@@d1",
            Some((
                username("Signature", AK, INSTANCE),
                mqgate_auth::sign_client_id(SECRET, "GID_nope@@@d1"),
            )),
            Code::NotAuthorized,
        ),
        (
            "expired token",
            id,
            Some((username("Token", AK, INSTANCE), "RW|expired".into())),
            Code::NotAuthorized,
        ),
        (
            "unknown token",
            id,
            Some((username("Token", AK, INSTANCE), "R|never-issued".into())),
            Code::BadUserNamePassword,
        ),
        (
            "token offered for more than it allows",
            id,
            Some((username("Token", AK, INSTANCE), "W|valid".into())),
            Code::NotAuthorized,
        ),
        ("no username, anonymous off", id, None, Code::NotAuthorized),
        (
            "client id without a group",
            "plain",
            Some((
                username("Signature", AK, INSTANCE),
                mqgate_auth::sign_client_id(SECRET, "plain"),
            )),
            Code::BadClientId,
        ),
    ];
    let count = table.len() as u64;
    for (case, client_id, credentials, expected) in table {
        let mut options = options(&broker, client_id);
        if let Some((user, password)) = credentials {
            options.set_credentials(user, password);
        }
        assert_eq!(connack_code(options).await, expected, "{case}");
    }
    let metrics = broker.metrics();
    assert_eq!(metrics.auth_failures, count);
    assert_eq!(metrics.connects_refused, count);
    assert_eq!(metrics.sessions_started, 0);
    // The same client with the right signature gets in.
    assert_eq!(
        connack_code(signed(&broker, id, AK, SECRET)).await,
        Code::Success
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_mode_grants_follow_the_access_key() {
    let broker = start(config(""), None).await;
    let mut watcher = Client::with_options(signed(&broker, "GID_a@@@watcher", AK, SECRET)).await;
    assert_eq!(
        subscribe(&mut watcher, "#", QoS::AtLeastOnce).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );

    let mut limited = Client::with_options(signed(
        &broker,
        "GID_a@@@shop-1",
        LIMITED_AK,
        LIMITED_SECRET,
    ))
    .await;
    assert_eq!(
        subscribe(&mut limited, "shop/+/cmd", QoS::AtLeastOnce).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    assert_eq!(
        subscribe(&mut limited, "shop/#", QoS::AtLeastOnce).await,
        [SubscribeReasonCode::Failure]
    );
    assert_eq!(
        subscribe(&mut limited, "other/#", QoS::AtLeastOnce).await,
        [SubscribeReasonCode::Failure]
    );
    // Nobody subscribes to another client's P2P address, whatever the key allows.
    assert_eq!(
        subscribe(&mut watcher, "shop/p2p/GID_a@@@shop-1", QoS::AtLeastOnce).await,
        [SubscribeReasonCode::Failure]
    );

    // Outside the grant: dropped, the connection stays; inside: delivered.
    limited
        .client
        .publish("other/x", QoS::AtLeastOnce, false, "denied")
        .await
        .unwrap();
    limited
        .client
        .publish("shop/s1/status", QoS::AtLeastOnce, false, "allowed")
        .await
        .unwrap();
    let got = watcher.next().await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("shop/s1/status", &b"allowed"[..])
    );
    watcher.expect_nothing(Duration::from_millis(300)).await;
    limited
        .client
        .publish("shop/s1/cmd", QoS::AtMostOnce, false, "to-self")
        .await
        .unwrap();
    assert_eq!(&limited.next().await.payload[..], b"to-self");

    let metrics = broker.metrics();
    assert_eq!(metrics.publish_denied, 1);
    assert_eq!(metrics.subscribe_denied, 3);
    broker.shutdown().await;
}

/// MQTT-3.9.3: one SUBSCRIBE, one filter the grant allows and one it does not: the SUBACK
/// answers each (the refused one 0x80), the connection stays and the allowed subscription
/// is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_with_one_denied_filter_gets_0x80_for_it_and_keeps_the_connection() {
    let broker = start(config(""), None).await;
    let mut limited = Client::with_options(signed(
        &broker,
        "GID_a@@@shop-2",
        LIMITED_AK,
        LIMITED_SECRET,
    ))
    .await;
    assert_eq!(
        subscribe_many(&mut limited, &["shop/+/cmd", "other/#"], QoS::AtLeastOnce).await,
        [
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
            SubscribeReasonCode::Failure
        ]
    );
    let backend = Client::with_options(signed(&broker, "GID_a@@@backend", AK, SECRET)).await;
    for topic in ["other/x", "shop/s2/cmd"] {
        backend
            .client
            .publish(topic, QoS::AtLeastOnce, false, topic)
            .await
            .unwrap();
    }
    let got = limited.next().await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("shop/s2/cmd", &b"shop/s2/cmd"[..])
    );
    assert!(broker.is_online("GID_a@@@shop-2"));
    let metrics = broker.metrics();
    assert_eq!(metrics.subscribe_denied, 1);
    assert_eq!(metrics.subscriptions_refused, 1);
    broker.shutdown().await;
}

/// `refuse_subscribe` refuses a filter within one of its filters to everyone, anonymous
/// clients and AccessKeys alike, while wider filters stay allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_subscribe_refuses_its_filters_whatever_the_grants() {
    let mut config = BrokerConfig::from_toml_str(
        r#"
        allow_anonymous = true
        refuse_subscribe = ["test/nosubscribe", "reserved/#"]
        storage = "memory"
        [listeners]
        tcp = "127.0.0.1:0"
        [http]
        enabled = false
        "#,
    )
    .expect("parses");
    config.listeners.ws = None;
    // Not the cloud SDK endpoint's default port: tests run side by side.
    config.listeners.amqp = None;
    let broker = start(config, None).await;
    let mut anonymous = Client::with_options(options(&broker, "anon")).await;
    assert_eq!(
        subscribe_many(
            &mut anonymous,
            &[
                "test/nosubscribe",
                "reserved/a/+",
                "$share/g/reserved/x",
                "test/+",
                "#"
            ],
            QoS::ExactlyOnce
        )
        .await,
        [
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Success(QoS::ExactlyOnce),
            SubscribeReasonCode::Success(QoS::ExactlyOnce),
        ]
    );
    assert_eq!(broker.metrics().subscribe_denied, 3);
    assert!(broker.is_online("anon"));
    broker.shutdown().await;

    // An invalid filter is a configuration error at start.
    let bad = BrokerConfig::from_toml_str("refuse_subscribe = [\"a/#/b\"]\nstorage = \"memory\"")
        .expect("parses");
    let refused = mqgate_broker::Broker::builder()
        .config(bad)
        .build()
        .start()
        .await;
    assert!(matches!(
        refused,
        Err(mqgate_broker::BrokerError::Config(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_qos1_publish_is_still_acknowledged() {
    let broker = start(config(""), None).await;
    let id = "GID_a@@@raw";
    let mut raw = support::Raw::open(&broker).await;
    raw.send(Packet::Connect(Box::new(Connect {
        client_id: id.try_into().unwrap(),
        keep_alive: 30,
        clean_session: true,
        username: Some(
            format!("Signature|{LIMITED_AK}|{INSTANCE}")
                .try_into()
                .unwrap(),
        ),
        password: Some(Bytes::from(mqgate_auth::sign_client_id(LIMITED_SECRET, id))),
        ..Connect::default()
    })))
    .await;
    match raw.recv().await {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.code, ConnectReturnCode::Accepted),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    for (id, qos) in [(7, CodecQoS::AtLeastOnce), (8, CodecQoS::ExactlyOnce)] {
        raw.send(Packet::Publish(Publish::new(
            qos,
            PacketId::new(id),
            "not/granted".try_into().unwrap(),
            Bytes::from_static(b"x"),
        )))
        .await;
        let answer = raw.recv().await.expect("an acknowledgement");
        match (qos, answer) {
            (CodecQoS::AtLeastOnce, Packet::PubAck(pid))
            | (CodecQoS::ExactlyOnce, Packet::PubRec(pid)) => {
                assert_eq!(Some(pid), PacketId::new(id))
            }
            (_, other) => panic!("expected an acknowledgement of {id}, got {other:?}"),
        }
    }
    assert_eq!(broker.metrics().publish_denied, 2);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_mode_grants_exactly_the_token() {
    let (store, registry) = seeded_store();
    put_token(&registry, "tok-rw", &["tok/#"], "R,W", now_ms() + 3_600_000);
    let broker = start(config(""), Some(store)).await;
    let mut options = options(&broker, "GID_a@@@tok");
    options.set_credentials(format!("Token|{AK}|{INSTANCE}"), "RW|tok-rw");
    let mut client = Client::with_options(options).await;
    assert_eq!(
        subscribe(&mut client, "tok/+", QoS::AtLeastOnce).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    assert_eq!(
        subscribe(&mut client, "other", QoS::AtLeastOnce).await,
        [SubscribeReasonCode::Failure]
    );
    client
        .client
        .publish("other", QoS::AtLeastOnce, false, "no")
        .await
        .unwrap();
    client
        .client
        .publish("tok/a", QoS::AtLeastOnce, false, "yes")
        .await
        .unwrap();
    let got = client.next().await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("tok/a", &b"yes"[..])
    );
    assert_eq!(broker.metrics().publish_denied, 1);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_credential_mode_connects_with_the_device_secret_only() {
    let (store, registry) = seeded_store();
    let id = "GID_a@@@dev-1";
    registry
        .put_device_credential(DeviceCredential {
            client_id: id.into(),
            instance_id: INSTANCE.into(),
            device_access_key_id: "DEVAK123".into(),
            device_access_key_secret: "DEVSECRET456".into(),
            create_time_ms: 0,
            update_time_ms: 0,
        })
        .unwrap();
    let broker = start(config(""), Some(store)).await;
    let with = |secret: &str, key: &str| {
        let mut options = options(&broker, id);
        options.set_credentials(
            format!("DeviceCredential|{key}|{INSTANCE}"),
            mqgate_auth::sign_client_id(secret, id),
        );
        options
    };
    assert_eq!(
        connack_code(with("wrong", "DEVAK123")).await,
        Code::BadUserNamePassword
    );
    assert_eq!(
        connack_code(with("DEVSECRET456", "OTHERKEY")).await,
        Code::BadUserNamePassword
    );
    assert_eq!(
        connack_code(with("DEVSECRET456", "DEVAK123")).await,
        Code::Success
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_connects_only_when_allowed() {
    let mut config = config("");
    config.allow_anonymous = true;
    let broker = start(config, None).await;
    assert_eq!(
        connack_code(options(&broker, "anyone")).await,
        Code::Success
    );
    // A username is still checked.
    let mut bad = options(&broker, "GID_a@@@x");
    bad.set_credentials(format!("Signature|{AK}|{INSTANCE}"), "bad");
    assert_eq!(connack_code(bad).await, Code::BadUserNamePassword);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_outside_the_grant_is_refused() {
    let broker = start(config(""), None).await;
    let mut options = signed(&broker, "GID_a@@@w", LIMITED_AK, LIMITED_SECRET);
    options.set_last_will(rumqttc::LastWill::new(
        "not/granted",
        "bye",
        QoS::AtLeastOnce,
        false,
    ));
    assert_eq!(connack_code(options).await, Code::NotAuthorized);
    let mut options = signed(&broker, "GID_a@@@w", LIMITED_AK, LIMITED_SECRET);
    options.set_last_will(rumqttc::LastWill::new(
        "shop/w/gone",
        "bye",
        QoS::AtLeastOnce,
        false,
    ));
    assert_eq!(connack_code(options).await, Code::Success);
    broker.shutdown().await;
}

/// A token that expires ends its live connection only when configured to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_closes_live_connections_only_when_configured() {
    for disconnect in [true, false] {
        let (store, registry) = seeded_store();
        let expiry = now_ms() + 1_500;
        put_token(&registry, "short", &["t/#"], "R,W", expiry);
        let extra =
            format!("disconnect_on_token_invalid = {disconnect}\ntoken_check_interval_ms = 100");
        let broker = start(config(&extra), Some(store)).await;
        let mut options = options(&broker, "GID_a@@@short");
        options.set_credentials(format!("Token|{AK}|{INSTANCE}"), "RW|short");
        let mut client = Client::with_options(options).await;
        assert!(broker.is_online("GID_a@@@short"));
        if disconnect {
            // Polls (bounded) until the token watch closed the connection.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
            while broker.is_online("GID_a@@@short") && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(!broker.is_online("GID_a@@@short"), "closed after expiry");
            assert_eq!(broker.metrics().token_disconnects, 1);
        } else {
            // The point of this wait: the token expires and the watch checks (every 100 ms)
            // several times, and the connection must still be there afterwards.
            let past = Duration::from_millis((expiry + 1_000).saturating_sub(now_ms()));
            tokio::time::sleep(past).await;
            assert!(
                broker.is_online("GID_a@@@short"),
                "still online after expiry"
            );
            subscribe(&mut client, "t/x", QoS::AtMostOnce).await;
            client
                .client
                .publish("t/x", QoS::AtMostOnce, false, "still")
                .await
                .unwrap();
            assert_eq!(&client.next().await.payload[..], b"still");
            assert_eq!(broker.metrics().token_disconnects, 0);
        }
        broker.shutdown().await;
    }
}

/// An embedder's own authenticator decides the grants; no `[auth]` needed.
struct TelemetryOnly;

impl mqgate_broker::Authenticator for TelemetryOnly {
    fn authenticate(
        &self,
        connect: &Connect,
        _: std::net::SocketAddr,
    ) -> Result<mqgate_broker::Authenticated, mqgate_broker::Refusal> {
        if connect.username.as_deref() != Some("device") {
            return Err(mqgate_broker::Refusal::new(
                ConnectReturnCode::BadUsernameOrPassword,
                "unknown user",
            ));
        }
        let policy = mqgate_auth::AccessPolicy {
            publish: mqgate_auth::TopicAccess::filters(["telemetry/#"]).unwrap(),
            subscribe: mqgate_auth::TopicAccess::All,
        };
        Ok(mqgate_broker::Authenticated {
            method: mqgate_auth::AuthMethod::Anonymous,
            grants: mqgate_auth::Grants::new(connect.client_id.as_str(), policy),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedders_authenticator_supplies_the_grants() {
    let broker = mqgate_broker::Broker::builder()
        .config(mqgate_broker::BrokerConfig::ephemeral())
        .authenticator(TelemetryOnly)
        .build()
        .start()
        .await
        .unwrap();
    let mut nobody = options(&broker, "x");
    nobody.set_credentials("someone", "pw");
    assert_eq!(connack_code(nobody).await, Code::BadUserNamePassword);
    let mut device = options(&broker, "dev-1");
    device.set_credentials("device", "pw");
    let mut device = Client::with_options(device).await;
    subscribe(&mut device, "#", QoS::AtMostOnce).await;
    device
        .client
        .publish("commands/x", QoS::AtMostOnce, false, "no")
        .await
        .unwrap();
    device
        .client
        .publish("telemetry/t", QoS::AtMostOnce, false, "yes")
        .await
        .unwrap();
    let got = device.next().await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("telemetry/t", &b"yes"[..])
    );
    assert_eq!(broker.metrics().publish_denied, 1);
    broker.shutdown().await;
}
