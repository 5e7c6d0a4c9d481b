//! Client ids under MQTT's rules (the default without `[auth]`) and the managed service's
//! (the default with it): who may connect, and that group ids, P2P addressing and status
//! events work for ids of both kinds.
// Test and benchmark code: an unwrap that fails is a failure to report (clippy.toml allows
// it inside #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]

mod auth_support;
mod support;

use mqgate_broker::{BrokerConfig, BrokerHandle};
use mqgate_codec::{ConnectReturnCode, Packet};
use mqgate_status::{EventType, StatusEvent};
use rumqttc::QoS;
use support::{start_with, subscribe, Client, Raw, WAIT};

/// Ids a stock MQTT client may use that the managed service's rules refuse.
const MQTT_IDS: [&str; 3] = ["clean retained", "ünïcödé", "tenant/a/dev 1"];

/// The CONNACK code `broker` answers a CONNECT with client id `id` with.
async fn connack(broker: &BrokerHandle, id: &str) -> ConnectReturnCode {
    let mut raw = Raw::open(broker).await;
    raw.send(Packet::Connect(Box::new(mqgate_codec::Connect {
        client_id: id.try_into().expect("id"),
        keep_alive: 30,
        clean_session: true,
        ..mqgate_codec::Connect::default()
    })))
    .await;
    match raw.recv().await {
        Some(Packet::ConnAck(ack)) => ack.code,
        other => panic!("{id:?}: expected CONNACK, got {other:?}"),
    }
}

/// The next `connect` status event of `client`, skipping others, within [`WAIT`] each.
async fn connect_event(
    events: &mut tokio::sync::broadcast::Receiver<StatusEvent>,
    client: &str,
) -> StatusEvent {
    for _ in 0..100 {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("a status event in time")
            .expect("status channel open");
        if event.client_id == client && event.event_type == EventType::Connect {
            return event;
        }
    }
    panic!("no connect event for {client:?}");
}

#[tokio::test]
async fn any_utf8_id_connects_and_exchanges_messages_by_default() {
    let broker = start_with(BrokerConfig::ephemeral()).await;
    let mut events = broker.status_events();
    let mut clean = Client::connect(&broker, MQTT_IDS[0], true).await;
    let mut unicode = Client::connect(&broker, MQTT_IDS[1], true).await;
    let slashed = Client::connect(&broker, MQTT_IDS[2], true).await;
    for id in MQTT_IDS {
        assert!(broker.is_online(id), "{id:?}");
        let event = connect_event(&mut events, id).await;
        assert_eq!(event.group_id(), None, "{id:?}");
        let decoded = StatusEvent::from_json(event.to_json().as_bytes()).expect("JSON");
        assert_eq!(decoded, event);
    }

    // Through a subscription...
    assert_eq!(
        subscribe(&mut unicode, "TopicA/#", QoS::AtLeastOnce).await,
        [rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    clean
        .client
        .publish("TopicA/B", QoS::AtLeastOnce, false, "to ünïcödé")
        .await
        .unwrap();
    assert_eq!(&unicode.next().await.payload[..], "to ünïcödé".as_bytes());

    // ...and by P2P address, both ways.
    unicode
        .client
        .publish("chat/p2p/clean retained", QoS::AtLeastOnce, false, "p2p 1")
        .await
        .unwrap();
    let p2p = clean.next().await;
    assert_eq!(
        (p2p.topic.as_str(), &p2p.payload[..]),
        ("chat/p2p/clean retained", &b"p2p 1"[..])
    );
    clean
        .client
        .publish("chat/p2p/ünïcödé", QoS::AtMostOnce, false, "p2p 2")
        .await
        .unwrap();
    assert_eq!(&unicode.next().await.payload[..], b"p2p 2");
    assert_eq!(broker.metrics().p2p_no_target, 0);

    // A control character is refused even under MQTT's rules.
    assert_eq!(
        connack(&broker, "bell\u{7}").await,
        ConnectReturnCode::IdentifierRejected
    );
    for c in [clean, unicode, slashed] {
        c.disconnect().await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn group_ids_keep_working_under_mqtt_rules() {
    let broker = start_with(BrokerConfig::ephemeral()).await;
    let mut events = broker.status_events();
    let id = "GID_shop@@@tag ü/1";
    let mut device = Client::connect(&broker, id, true).await;
    assert_eq!(
        connect_event(&mut events, id).await.group_id(),
        Some("GID_shop")
    );
    // The id contains `/`, so it has no P2P address; its subscriptions reach it.
    subscribe(&mut device, "shop/cmd", QoS::AtMostOnce).await;
    broker
        .publish("shop/cmd", "open", mqgate_codec::QoS::AtMostOnce, false)
        .await
        .unwrap();
    assert_eq!(&device.next().await.payload[..], b"open");
    device.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn service_rules_refuse_them_with_code_2() {
    let mut config = BrokerConfig::from_toml_str(
        "allow_anonymous = true\nstorage = \"memory\"\n[limits]\nclient_id_rules = \"service\"\n[http]\nenabled = false",
    )
    .expect("parses");
    config.listeners.tcp = Some("127.0.0.1:0".parse().unwrap());
    config.listeners.ws = None;
    // Not the cloud SDK endpoint's default port: tests run side by side.
    config.listeners.amqp = None;
    let service = start_with(config).await;
    // `[auth]` without the key set means the service's rules too (refused before the
    // credentials are looked at).
    let managed = auth_support::start(auth_support::config(""), None).await;
    for broker in [&service, &managed] {
        for id in MQTT_IDS {
            assert_eq!(
                connack(broker, id).await,
                ConnectReturnCode::IdentifierRejected,
                "{id:?}"
            );
        }
    }
    assert_eq!(service.metrics().connects_refused, MQTT_IDS.len() as u64);
    // The service's own ids still connect.
    assert_eq!(
        connack(&service, "GID_shop@@@tag-0042").await,
        ConnectReturnCode::Accepted
    );
    service.shutdown().await;
    managed.shutdown().await;
}

#[tokio::test]
async fn ids_of_the_brokers_own_links_are_refused_under_mqtt_rules() {
    // The cloud SDK endpoint's queues are links named `$amqp/{parent}`: an MQTT client taking
    // such an id first would keep the queue from being made, or take its messages.
    let broker = start_with(BrokerConfig::ephemeral()).await;
    for id in ["$amqp/parent", "$amqp/"] {
        assert_eq!(
            connack(&broker, id).await,
            ConnectReturnCode::IdentifierRejected,
            "{id:?}"
        );
    }
    // Other `$` ids are ordinary ones under MQTT's rules.
    assert_eq!(connack(&broker, "$amq").await, ConnectReturnCode::Accepted);
    broker.shutdown().await;
}
