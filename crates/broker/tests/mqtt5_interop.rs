//! The MQTT 5 interoperability checklist: the scenarios of the well-known MQTT 5 client
//! interoperability suite (connect and publish at each QoS, retained messages, the will,
//! client ids, offline queues, overlapping subscriptions, keep alive, redelivery, refused
//! subscriptions, `$` topics, unsubscribe, session and message expiry, properties,
//! subscription options and identifiers, request / response, topic aliases both ways,
//! Maximum Packet Size, Server Keep Alive, Receive Maximum, the Will Delay Interval and shared
//! subscriptions), then 3.1.1 and 5 clients side by side and MQTT 5 over TLS and WSS.
//!
//! Each scenario drives a real broker over real sockets with rumqttc's v5 client, a client
//! written elsewhere; where that client cannot say what a scenario needs (a topic alias
//! beyond the maximum, an invalid filter, a client that stays silent) our codec-based raw
//! client does. Each test quotes the normative statements of the MQTT 5.0 standard it checks.
//! Several scenarios are also covered, in more depth, by `mqtt5.rs`: here they are the
//! checklist, kept short.
//!
//! Run it alone with `cargo test -p mqgate-broker --test mqtt5_interop`.

mod support;

use std::time::Duration;

use bytes::Bytes;
use mqgate_broker::{BrokerHandle, ListenerKind};
use mqgate_codec::v5::{self, Packet};
use mqgate_codec::{ByteStr, Properties, Property, PropertyId, QoS, ReasonCode};
use rumqttc::v5::mqttbytes::v5::{
    Filter, LastWill, LastWillProperties, Packet as RPacket, PubAckReason, Publish as RPublish,
    PublishProperties, RetainForwardRule, SubscribeProperties, SubscribeReasonCode, UnsubAckReason,
};
use rumqttc::v5::mqttbytes::QoS::{AtLeastOnce as Q1, AtMostOnce as Q0, ExactlyOnce as Q2};
use rumqttc::v5::MqttOptions;
use rumqttc::Transport;
use support::mqtt5::{pid, qos, with_properties, Client5, Raw5};
use support::tls::{client_tls, test_pki};
use support::{recv_in_time, start, start_configured, subscribe, Client};

/// rumqttc's QoS (the codec's is `QoS`).
type RQoS = rumqttc::v5::mqttbytes::QoS;

/// How long a test waits to see that something does not arrive.
const QUIET: Duration = Duration::from_millis(300);

// ------------------------------------------------------------------ helpers

/// The topic name of a PUBLISH rumqttc received.
fn topic_of(p: &RPublish) -> String {
    String::from_utf8_lossy(&p.topic).into_owned()
}

/// Its properties (none: the defaults).
fn props_of(p: &RPublish) -> PublishProperties {
    p.properties.clone().unwrap_or_default()
}

/// Its Subscription Identifiers, sorted (their order is not significant).
fn ids_of(p: &RPublish) -> Vec<usize> {
    let mut ids = props_of(p).subscription_identifiers;
    ids.sort_unstable();
    ids
}

/// Options for `id` with Clean Start `clean` and the Session Expiry Interval `expiry`.
fn session(broker: &BrokerHandle, id: &str, clean: bool, expiry: u32) -> MqttOptions {
    let mut options = Client5::options(broker, id);
    options.set_clean_start(clean);
    options.set_session_expiry_interval(Some(expiry));
    options
}

/// Publishes `payload` to `topic` (not retained).
async fn publish(c: &Client5, topic: &str, qos: RQoS, payload: &str) {
    c.client
        .publish(topic, qos, false, payload.to_owned())
        .await
        .expect("queued");
}

/// Publishes `payload` to `topic` with `properties`.
async fn publish_props(
    c: &Client5,
    topic: &str,
    qos: RQoS,
    retain: bool,
    payload: impl Into<Bytes>,
    properties: PublishProperties,
) {
    c.client
        .publish_with_properties(topic, qos, retain, payload.into(), properties)
        .await
        .expect("queued");
}

/// Sends one SUBSCRIBE with `filters` and the Subscription Identifier `id`; returns the
/// SUBACK's reason codes.
async fn subscribe_with(
    c: &mut Client5,
    filters: Vec<Filter>,
    id: Option<usize>,
) -> Vec<SubscribeReasonCode> {
    let properties = SubscribeProperties {
        id,
        user_properties: Vec::new(),
    };
    c.client
        .subscribe_many_with_properties(filters, properties)
        .await
        .expect("queued");
    match c.ack().await {
        RPacket::SubAck(ack) => ack.return_codes,
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// Connects as `id` and makes one SUBSCRIBE for each filter, QoS and Subscription Identifier.
async fn subscriber(
    broker: &BrokerHandle,
    id: &str,
    subs: &[(&str, RQoS, Option<usize>)],
) -> Client5 {
    let mut c = Client5::connect(broker, id).await;
    for (filter, qos, identifier) in subs {
        subscribe_with(&mut c, vec![Filter::new(*filter, *qos)], *identifier).await;
    }
    c
}

/// Unsubscribes from `filter`; returns the UNSUBACK's reason codes.
async fn unsubscribe(c: &mut Client5, filter: &str) -> Vec<UnsubAckReason> {
    c.client.unsubscribe(filter).await.expect("queued");
    match c.ack().await {
        RPacket::UnsubAck(ack) => ack.reasons,
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}

/// The payloads of the next `n` PUBLISHes, as text.
async fn payloads(c: &mut Client5, n: usize) -> Vec<String> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(String::from_utf8_lossy(&c.next().await.payload).into_owned());
    }
    got
}

/// A will on `topic` (QoS 1, payload `gone`) with `properties`.
fn will(topic: &str, properties: Option<LastWillProperties>) -> LastWill {
    LastWill::new(topic, "gone", Q1, false, properties)
}

// ------------------------------------------------------------------ the scenarios

/// Basic: "The Server MUST send a CONNACK with a 0x00 (Success) Reason Code before sending
/// any Packet other than AUTH" [MQTT-3.2.0-1]; "When the Server receives a SUBSCRIBE packet
/// from a Client, the Server MUST respond with a SUBACK packet" [MQTT-3.8.4-1]; "The QoS of
/// Application Messages sent in response to a Subscription MUST be the minimum of the QoS of
/// the originally published message and the Maximum QoS granted by the Server"
/// [MQTT-3.8.4-8]. Messages at QoS 0, 1 and 2 arrive at QoS 2 and QoS 1 subscribers.
#[tokio::test]
async fn basic() {
    let broker = start().await;
    let mut sub = Client5::connect(&broker, "basic-sub").await;
    assert!(!sub.connack.session_present);
    let codes = subscribe_with(&mut sub, vec![Filter::new("basic/#", Q2)], None).await;
    assert_eq!(codes, [SubscribeReasonCode::Success(Q2)]);
    let mut low = Client5::connect(&broker, "basic-low").await;
    low.subscribe("basic/#", Q1).await;
    let mut publisher = Client5::connect(&broker, "basic-pub").await;
    for (n, qos) in [Q0, Q1, Q2].into_iter().enumerate() {
        publish(&publisher, &format!("basic/{n}"), qos, &format!("m{n}")).await;
    }
    publisher.acked(2).await;
    for (n, (high, capped)) in [(Q0, Q0), (Q1, Q1), (Q2, Q1)].into_iter().enumerate() {
        let got = sub.next().await;
        assert_eq!(
            (topic_of(&got), &got.payload[..], got.qos),
            (format!("basic/{n}"), format!("m{n}").as_bytes(), high)
        );
        let got = low.next().await;
        assert_eq!(
            (&got.payload[..], got.qos),
            (format!("m{n}").as_bytes(), capped)
        );
    }
    broker.shutdown().await;
}

/// Retained messages: "If the RETAIN flag is set to 1 in a PUBLISH packet sent by a Client
/// to a Server, the Server MUST replace any existing retained message for this topic and
/// store the Application Message" [MQTT-3.3.1-5]; "If the Payload contains zero bytes it is
/// processed normally by the Server but any retained message with the same topic name MUST
/// be removed and any future subscribers for the topic will not receive a retained message"
/// [MQTT-3.3.1-6]; "If Retain Handling is set to 0 the Server MUST send the retained messages
/// matching the Topic Filter of the subscription to the Client" [MQTT-3.3.1-9].
#[tokio::test]
async fn retained() {
    let broker = start().await;
    let mut publisher = Client5::connect(&broker, "ret-pub").await;
    let none = PublishProperties::default;
    publish_props(&publisher, "ret/a", Q0, true, "a1", none()).await;
    publish_props(&publisher, "ret/b", Q1, true, "b", none()).await;
    publish_props(&publisher, "ret/c", Q2, true, "c", none()).await;
    publish_props(&publisher, "ret/a", Q1, true, "a2", none()).await;
    publisher.acked(3).await;
    let mut first = Client5::connect(&broker, "ret-first").await;
    first.subscribe("ret/#", Q2).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let p = first.next().await;
        assert!(p.retain, "a retained message is sent with RETAIN 1");
        got.push((
            topic_of(&p),
            String::from_utf8_lossy(&p.payload).into_owned(),
        ));
    }
    got.sort();
    let want = [("ret/a", "a2"), ("ret/b", "b"), ("ret/c", "c")];
    let want: Vec<_> = want.map(|(t, p)| (t.to_owned(), p.to_owned())).into();
    assert_eq!(got, want, "one retained message per topic, the last one");
    first.expect_nothing(QUIET).await;
    // Cleared with an empty payload: still forwarded to the subscriber, then gone.
    publish_props(&publisher, "ret/a", Q1, true, Bytes::new(), none()).await;
    publish_props(&publisher, "ret/b", Q1, true, Bytes::new(), none()).await;
    publisher.acked(2).await;
    assert_eq!(payloads(&mut first, 2).await, ["", ""]);
    let mut late = Client5::connect(&broker, "ret-late").await;
    late.subscribe("ret/#", Q2).await;
    assert_eq!(topic_of(&late.next().await), "ret/c");
    late.expect_nothing(QUIET).await;
    broker.shutdown().await;
}

/// The will: "If the Will Flag is set to 1 this indicates that a Will Message MUST be
/// published after the Network Connection is subsequently closed and either the Will Delay
/// Interval has elapsed or the Session ends, unless the Will Message has been deleted by the
/// Server on receipt of a DISCONNECT packet with Reason Code 0x00 (Normal disconnection)"
/// [MQTT-3.1.2-8]; "On receipt of DISCONNECT with a Reason Code of 0x00 (Success) the Server
/// MUST discard any Will Message associated with the current Connection without publishing
/// it" [MQTT-3.14.4-3]; "If Will Retain is set to 1, the Server MUST publish the Will Message
/// as a retained message" [MQTT-3.1.2-15].
#[tokio::test]
async fn will_on_abnormal_disconnect_only() {
    let broker = start().await;
    let mut watcher = Client5::connect(&broker, "will-watcher").await;
    watcher.subscribe("will/#", Q1).await;
    let mut options = Client5::options(&broker, "will-dies");
    options.set_last_will(will("will/dies", None));
    drop(Client5::with_options(options).await); // the socket closes without DISCONNECT
    let got = watcher.next().await;
    assert_eq!(
        (topic_of(&got), &got.payload[..]),
        ("will/dies".into(), &b"gone"[..])
    );
    let mut options = Client5::options(&broker, "will-leaves");
    options.set_last_will(will("will/leaves", None));
    Client5::with_options(options).await.disconnect().await;
    // Anything the watcher gets next must be this marker, not the discarded will.
    publish(&watcher, "will/marker", Q1, "marker").await;
    assert_eq!(topic_of(&watcher.next().await), "will/marker");
    // A will with Will Retain 1 is published as a retained message (3.1.2.7).
    let mut options = Client5::options(&broker, "will-kept");
    options.set_last_will(LastWill::new("will/kept", "kept", Q1, true, None));
    drop(Client5::with_options(options).await);
    assert_eq!(topic_of(&watcher.next().await), "will/kept");
    let mut late = Client5::connect(&broker, "will-late").await;
    late.subscribe("will/#", Q1).await;
    let kept = late.next().await;
    assert_eq!((topic_of(&kept), kept.retain), ("will/kept".into(), true));
    late.expect_nothing(QUIET).await;
    broker.shutdown().await;
}

/// Zero-length client id: "A Server MAY allow a Client to supply a ClientID that has a length
/// of zero bytes, however if it does so the Server MUST treat this as a special case and
/// assign a unique ClientID to that Client" [MQTT-3.1.3-6]; "It MUST then process the CONNECT
/// packet as if the Client had provided that unique ClientID, and MUST return the Assigned
/// Client Identifier in the CONNACK packet" [MQTT-3.1.3-7]. Two such clients are two
/// sessions (neither takes the other over), whatever Clean Start says.
#[tokio::test]
async fn zero_length_client_id() {
    let broker = start().await;
    let mut sub = Client5::connect(&broker, "").await;
    let mut options = Client5::options(&broker, "");
    options.set_clean_start(false);
    let publisher = Client5::with_options(options).await;
    let assigned = |c: &Client5| {
        c.connack
            .properties
            .as_ref()
            .and_then(|p| p.assigned_client_identifier.clone())
            .expect("an Assigned Client Identifier")
    };
    let (a, b) = (assigned(&sub), assigned(&publisher));
    assert!(!a.is_empty() && !b.is_empty());
    assert_ne!(a, b, "unique");
    sub.subscribe("zl/t", Q1).await;
    publish(&publisher, "zl/t", Q1, "both online").await;
    assert_eq!(&sub.next().await.payload[..], b"both online");
    broker.shutdown().await;
}

/// Assigned client id: "If the Client connects using a zero length Client Identifier, the
/// Server MUST respond with a CONNACK containing an Assigned Client Identifier. The Assigned
/// Client Identifier MUST be a new Client Identifier not used by any other Session currently
/// in the Server" [MQTT-3.2.2-16]; the session it names is the client's: it resumes it under
/// that id (Session Present 1, [MQTT-3.2.2-3]) and gets what was queued for it.
#[tokio::test]
async fn assigned_client_id_names_the_session() {
    let broker = start().await;
    let mut anonymous = Client5::with_options(session(&broker, "", true, 60)).await;
    let id = anonymous
        .connack
        .properties
        .as_ref()
        .and_then(|p| p.assigned_client_identifier.clone())
        .expect("an Assigned Client Identifier");
    anonymous.subscribe("aci/t", Q1).await;
    anonymous.disconnect().await;
    let mut publisher = Client5::connect(&broker, "aci-pub").await;
    publish(&publisher, "aci/t", Q1, "kept for you").await;
    publisher.acked(1).await;
    let mut back = Client5::with_options(session(&broker, &id, false, 60)).await;
    assert!(back.connack.session_present);
    assert_eq!(&back.next().await.payload[..], b"kept for you");
    broker.shutdown().await;
}

/// Offline queueing: "The Client and Server MUST store the Session State after the Network
/// Connection is closed if the Session Expiry Interval is greater than 0" [MQTT-3.1.2-23];
/// the Server's Session State holds "QoS 1 and QoS 2 messages pending transmission to the
/// Client" (4.1). QoS 0 messages are not queued (the broker's documented choice; the
/// standard allows either).
#[tokio::test]
async fn offline_messages_are_queued() {
    let broker = start().await;
    let mut sub = Client5::with_options(session(&broker, "oq-sub", true, 60)).await;
    sub.subscribe("oq/#", Q2).await;
    sub.disconnect().await;
    let mut publisher = Client5::connect(&broker, "oq-pub").await;
    publish(&publisher, "oq/0", Q0, "zero").await;
    publish(&publisher, "oq/1", Q1, "one").await;
    publish(&publisher, "oq/2", Q2, "two").await;
    publisher.acked(2).await;
    let mut back = Client5::with_options(session(&broker, "oq-sub", false, 60)).await;
    assert!(back.connack.session_present);
    let (one, two) = (back.next().await, back.next().await);
    assert_eq!((&one.payload[..], one.qos), (&b"one"[..], Q1));
    assert_eq!((&two.payload[..], two.qos), (&b"two"[..], Q2));
    back.expect_nothing(QUIET).await;
    broker.shutdown().await;
}

/// Overlapping subscriptions: "When Clients make subscriptions with Topic Filters that
/// include wildcards, it is possible for a Client's subscriptions to overlap so that a
/// published message might match multiple filters. In this case the Server MUST deliver the
/// message to the Client respecting the maximum QoS of all the matching subscriptions"
/// [MQTT-3.3.4-2]; "If the Client specified a Subscription Identifier for any of the
/// overlapping subscriptions the Server MUST send those Subscription Identifiers in the
/// message which is published as the result of the subscriptions" [MQTT-3.3.4-3]; "If the
/// Server sends a single copy of the message it MUST include in the PUBLISH packet the
/// Subscription Identifiers for all matching subscriptions which have a Subscription
/// Identifiers, their order is not significant" [MQTT-3.3.4-4]. The broker sends one copy.
#[tokio::test]
async fn overlapping_subscriptions_give_one_copy_with_every_identifier() {
    let broker = start().await;
    let mut sub = subscriber(
        &broker,
        "ov-sub",
        &[("ov/#", Q2, Some(1)), ("ov/+", Q1, Some(2))],
    )
    .await;
    let publisher = Client5::connect(&broker, "ov-pub").await;
    publish(&publisher, "ov/t", Q2, "both").await;
    publish(&publisher, "ov/t/deep", Q1, "one").await;
    let both = sub.next().await;
    assert_eq!((&both.payload[..], both.qos), (&b"both"[..], Q2));
    assert_eq!(ids_of(&both), [1, 2]);
    let one = sub.next().await;
    assert_eq!(
        &one.payload[..],
        b"one",
        "no second copy of the first message"
    );
    assert_eq!(ids_of(&one), [1]);
    broker.shutdown().await;
}

/// Keep alive: "If the Keep Alive value is non-zero and the Server does not receive an MQTT
/// Control Packet from the Client within one and a half times the Keep Alive time period, it
/// MUST close the Network Connection to the Client as if the network had failed"
/// [MQTT-3.1.2-22], so the will goes out [MQTT-3.1.2-8]; "The Server MUST send a PINGRESP
/// packet in response to a PINGREQ packet" [MQTT-3.12.4-1], and a client that pings within
/// its keep-alive stays connected. (rumqttc's v5 client refuses a keep-alive under 5 s, and
/// will not stay silent: our raw client does both.)
#[tokio::test]
async fn keep_alive() {
    let broker = start().await;
    let mut watcher = Client5::connect(&broker, "ka-watcher").await;
    watcher.subscribe("ka/#", Q1).await;
    let mut silent = with_properties("ka-silent", []);
    silent.keep_alive = 1;
    silent.will = Some(v5::Will {
        topic: ByteStr::from_static("ka/silent"),
        payload: Bytes::from_static(b"timed out"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::new(),
    });
    let (mut silent, _) = Raw5::connect_with(&broker, silent).await;
    let mut pinger = with_properties("ka-pinger", []);
    pinger.keep_alive = 1;
    let (mut pinger, _) = Raw5::connect_with(&broker, pinger).await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        pinger.ping().await;
    }
    silent.expect_disconnect(ReasonCode::KeepAliveTimeout).await;
    let got = watcher.next().await;
    assert_eq!(
        (topic_of(&got), &got.payload[..]),
        ("ka/silent".into(), &b"timed out"[..])
    );
    pinger.ping().await;
    broker.shutdown().await;
}

/// Redelivery: "When a Client reconnects with Clean Start set to 0 and a session is present,
/// both the Client and Server MUST resend any unacknowledged PUBLISH packets (where QoS > 0)
/// and PUBREL packets using their original Packet Identifiers" [MQTT-4.4.0-1]; "The DUP flag
/// MUST be set to 1 by the Client or Server when it attempts to re-deliver a PUBLISH packet"
/// [MQTT-3.3.1-1]. Both QoS 1 and 2 PUBLISHes, and a PUBREL.
#[tokio::test]
async fn unacknowledged_messages_are_resent_with_dup() {
    let broker = start().await;
    let mut options = session(&broker, "rd-sub", true, 60);
    options.set_manual_acks(true);
    let mut sub = Client5::with_options(options).await;
    sub.subscribe("rd/#", Q2).await;
    let mut publisher = Client5::connect(&broker, "rd-pub").await;
    publish(&publisher, "rd/1", Q1, "one").await;
    publish(&publisher, "rd/2", Q2, "two").await;
    publisher.acked(2).await;
    let first = [sub.next().await, sub.next().await];
    assert!(first.iter().all(|p| !p.dup), "first delivery: DUP 0");
    drop(sub); // no PUBACK, no PUBREC, no DISCONNECT
    let mut back = Client5::with_options(session(&broker, "rd-sub", false, 60)).await;
    assert!(back.connack.session_present);
    for sent in first {
        let again = back.next().await;
        assert!(again.dup, "resent with DUP 1");
        assert_eq!(
            (again.pkid, again.qos, &again.payload),
            (sent.pkid, sent.qos, &sent.payload),
            "the same packet id"
        );
    }
    back.expect_nothing(QUIET).await;
    // A PUBREL without its PUBCOMP is resent too (rumqttc always completes the flow, so the
    // raw client stops between PUBREL and PUBCOMP).
    let (mut raw, _) = Raw5::connect(&broker, "rd-raw", true, 60).await;
    raw.subscribe(1, &[("rd/raw", qos(QoS::ExactlyOnce))], None)
        .await;
    publish(&publisher, "rd/raw", Q2, "three").await;
    let got = raw.publish_in().await;
    let id = got.packet_id.expect("QoS 2");
    raw.send(Packet::PubRec(v5::Ack::success(id))).await;
    match raw.recv().await {
        Some(Packet::PubRel(rel)) => assert_eq!(rel.packet_id, id),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    drop(raw);
    let (mut raw, present) = Raw5::connect(&broker, "rd-raw", false, 60).await;
    assert!(present);
    match raw.recv().await {
        Some(Packet::PubRel(rel)) => assert_eq!(rel.packet_id, id, "the PUBREL again"),
        other => panic!("expected the PUBREL again, got {other:?}"),
    }
    raw.send(Packet::PubComp(v5::Ack::success(id))).await;
    raw.ping().await;
    broker.shutdown().await;
}

/// Subscribe failure: "The SUBACK packet sent by the Server to the Client MUST contain a
/// Reason Code for each Topic Filter/Subscription Option pair" [MQTT-3.8.4-6], 0x87 (Not
/// authorized) for one the broker refuses (`refuse_subscribe`), "in the same order"
/// [MQTT-3.9.3-1], and the others are made. A filter with `#` not last "MUST" not be sent
/// [MQTT-4.7.1-1]: the broker closes with DISCONNECT 0x8F (Topic Filter invalid).
#[tokio::test]
async fn subscribe_failure() {
    let broker = start_configured(|c| c.refuse_subscribe = vec!["test/nosubscribe".into()]).await;
    let mut sub = Client5::connect(&broker, "sf-sub").await;
    let filters = vec![
        Filter::new("test/nosubscribe", Q1),
        Filter::new("sf/ok", Q1),
    ];
    let codes = subscribe_with(&mut sub, filters, None).await;
    assert_eq!(
        codes,
        [
            SubscribeReasonCode::NotAuthorized,
            SubscribeReasonCode::Success(Q1)
        ]
    );
    let publisher = Client5::connect(&broker, "sf-pub").await;
    publish(&publisher, "test/nosubscribe", Q1, "refused").await;
    publish(&publisher, "sf/ok", Q1, "made").await;
    assert_eq!(&sub.next().await.payload[..], b"made");
    let (mut raw, _) = Raw5::connect(&broker, "sf-raw", true, 0).await;
    raw.send(Packet::Subscribe(v5::Subscribe {
        packet_id: pid(1),
        properties: Properties::new(),
        filters: vec![v5::Subscription {
            filter: ByteStr::from_static("sf/#/x"),
            options: v5::SubscriptionOptions::default(),
        }],
    }))
    .await;
    raw.expect_disconnect(ReasonCode::TopicFilterInvalid).await;
    broker.shutdown().await;
}

/// `$` topics: "The Server MUST NOT match Topic Filters starting with a wildcard character
/// (# or +) with Topic Names beginning with a $ character" [MQTT-4.7.2-1]; a filter naming
/// the `$` level matches them.
#[tokio::test]
async fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let broker = start().await;
    let mut wild = Client5::connect(&broker, "dollar-wild").await;
    wild.subscribe("#", Q0).await;
    wild.subscribe("+/status", Q0).await;
    let mut named = Client5::connect(&broker, "dollar-named").await;
    named.subscribe("$interop/#", Q0).await;
    let publisher = Client5::connect(&broker, "dollar-pub").await;
    publish(&publisher, "$interop/status", Q0, "dollar").await;
    publish(&publisher, "plain/status", Q0, "plain").await;
    assert_eq!(topic_of(&named.next().await), "$interop/status");
    let got = wild.next().await;
    assert_eq!(
        topic_of(&got),
        "plain/status",
        "the $ topic was not matched"
    );
    wild.expect_nothing(QUIET).await;
    broker.shutdown().await;
}

/// Unsubscribe: "The Topic Filters ... supplied in an UNSUBSCRIBE packet MUST be compared
/// character-by-character with the current set of Topic Filters held by the Server for the
/// Client. If any filter matches exactly then its owning Subscription MUST be deleted"
/// [MQTT-3.10.4-1]; "The Server MUST respond to an UNSUBSCRIBE request by sending an
/// UNSUBACK packet" [MQTT-3.10.4-4], whose Reason Code is 0x00 (Success) or 0x11 (No
/// subscription existed) (3.11.3).
#[tokio::test]
async fn unsubscribe_stops_the_messages() {
    let broker = start().await;
    let mut sub = Client5::connect(&broker, "us-sub").await;
    let filters = ["us/a", "us/b", "us/c/#"]
        .map(|f| Filter::new(f, Q1))
        .into();
    subscribe_with(&mut sub, filters, None).await;
    use UnsubAckReason::{NoSubscriptionExisted as Gone, Success};
    assert_eq!(unsubscribe(&mut sub, "us/a").await, [Success]);
    assert_eq!(unsubscribe(&mut sub, "us/c/#").await, [Success]);
    assert_eq!(
        unsubscribe(&mut sub, "us/c/#").await,
        [Gone],
        "already gone"
    );
    assert_eq!(unsubscribe(&mut sub, "us/B").await, [Gone], "case matters");
    assert_eq!(
        unsubscribe(&mut sub, "us/+").await,
        [Gone],
        "no wildcard match"
    );
    let publisher = Client5::connect(&broker, "us-pub").await;
    for topic in ["us/a", "us/c/x", "us/b"] {
        publish(&publisher, topic, Q1, topic).await;
    }
    assert_eq!(topic_of(&sub.next().await), "us/b");
    sub.expect_nothing(QUIET).await;
    broker.shutdown().await;
}

/// Session expiry: "The Client and Server MUST store the Session State after the Network
/// Connection is closed if the Session Expiry Interval is greater than 0" [MQTT-3.1.2-23],
/// and the session ends when the interval has passed (3.1.2.11.2): its subscriptions go
/// (a QoS 1 PUBLISH to their topic is acknowledged with 0x10, No matching subscribers,
/// 3.4.2.1), and a connection with Clean Start 0 finds no session: "If the Server accepts a
/// connection with Clean Start set to 0 and the Server does not have Session State for the
/// ClientID, it MUST set Session Present to 0" (3.2.2.1.1). A longer interval still holds,
/// unless the DISCONNECT sets it to 0.
#[tokio::test]
async fn session_expiry() {
    let broker = start().await;
    let mut brief = Client5::with_options(session(&broker, "se-brief", true, 1)).await;
    brief.subscribe("se/brief", Q1).await;
    brief.disconnect().await;
    let mut long = Client5::with_options(session(&broker, "se-long", true, 60)).await;
    long.subscribe("se/long", Q1).await;
    long.disconnect().await;
    let mut publisher = Client5::connect(&broker, "se-pub").await;
    // Poll until the brief session is gone (bounded: 40 x 250 ms).
    let mut gone = false;
    for _ in 0..40 {
        publish(&publisher, "se/brief", Q1, "x").await;
        match recv_in_time(&mut publisher.done, "a PUBACK").await {
            RPacket::PubAck(ack) if ack.reason == PubAckReason::NoMatchingSubscribers => {
                gone = true;
                break;
            }
            RPacket::PubAck(ack) => assert_eq!(ack.reason, PubAckReason::Success),
            other => panic!("expected PUBACK, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(gone, "the session with the subscription ended");
    let brief = Client5::with_options(session(&broker, "se-brief", false, 1)).await;
    assert!(!brief.connack.session_present);
    let long = Client5::with_options(session(&broker, "se-long", false, 60)).await;
    assert!(long.connack.session_present);
    // The DISCONNECT may set a new interval (3.14.2.2.2): 0 ends the session with the
    // connection (rumqttc's DISCONNECT carries no properties: the raw client's does).
    let (mut raw, _) = Raw5::connect(&broker, "se-raw", true, 60).await;
    raw.send(Packet::Disconnect(v5::ReasonAndProperties {
        reason: ReasonCode::Success,
        properties: Properties::build([Property::FourByteInt(
            PropertyId::SessionExpiryInterval,
            0,
        )])
        .expect("properties"),
    }))
    .await;
    assert_eq!(raw.recv().await, None, "closed after DISCONNECT");
    let (_raw, present) = Raw5::connect(&broker, "se-raw", false, 60).await;
    assert!(!present, "ended by the DISCONNECT's interval 0");
    broker.shutdown().await;
}

/// User properties: "The Server MUST send all User Properties unaltered in a PUBLISH packet
/// when forwarding the Application Message to a Client" [MQTT-3.3.2-17]; "The Server MUST
/// maintain the order of User Properties when forwarding the Application Message"
/// [MQTT-3.3.2-18]. A key may come more than once (3.3.2.3.7); the retained copy keeps them.
#[tokio::test]
async fn user_properties_end_to_end_in_order() {
    let broker = start().await;
    let mut live = Client5::connect(&broker, "up-live").await;
    live.subscribe("up/t", Q2).await;
    let publisher = Client5::connect(&broker, "up-pub").await;
    let pairs = [
        ("b", "2"),
        ("a", "1"),
        ("b", "x"),
        ("ключ", "värde ✓"),
        ("", ""),
    ];
    let user: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let properties = PublishProperties {
        user_properties: user.clone(),
        ..PublishProperties::default()
    };
    publish_props(&publisher, "up/t", Q2, true, "p", properties).await;
    assert_eq!(props_of(&live.next().await).user_properties, user);
    let mut late = Client5::connect(&broker, "up-late").await;
    late.subscribe("up/t", Q1).await;
    let kept = late.next().await;
    assert!(kept.retain);
    assert_eq!(props_of(&kept).user_properties, user, "the retained copy");
    broker.shutdown().await;
}

/// Payload format indicator and content type: "A Server MUST send the Payload Format
/// Indicator unaltered to all subscribers receiving the Application Message" [MQTT-3.3.2-4];
/// "A Server MUST send the Content Type unaltered to all subscribers receiving the
/// Application Message" [MQTT-3.3.2-20]; so after a wait in an offline session's queue too.
#[tokio::test]
async fn payload_format_and_content_type_are_forwarded() {
    let broker = start().await;
    let mut sub = Client5::with_options(session(&broker, "pf-sub", true, 60)).await;
    sub.subscribe("pf/#", Q1).await;
    let mut publisher = Client5::connect(&broker, "pf-pub").await;
    let text = PublishProperties {
        payload_format_indicator: Some(1),
        content_type: Some("text/plain; charset=utf-8".into()),
        ..PublishProperties::default()
    };
    let binary = PublishProperties {
        payload_format_indicator: Some(0),
        content_type: Some("application/octet-stream".into()),
        ..PublishProperties::default()
    };
    publish_props(&publisher, "pf/text", Q1, false, "héllo", text.clone()).await;
    let got = sub.next().await;
    assert_eq!(&got.payload[..], "héllo".as_bytes());
    assert_eq!(props_of(&got), text);
    sub.disconnect().await;
    let raw_bytes = Bytes::from_static(&[0xff, 0x00, 0xfe]);
    publish_props(
        &publisher,
        "pf/bin",
        Q1,
        false,
        raw_bytes.clone(),
        binary.clone(),
    )
    .await;
    publisher.acked(2).await;
    let mut back = Client5::with_options(session(&broker, "pf-sub", false, 60)).await;
    let got = back.next().await;
    assert_eq!(got.payload, raw_bytes);
    assert_eq!(props_of(&got), binary, "kept while queued");
    broker.shutdown().await;
}

/// Publication expiry: "If the Message Expiry Interval has passed and the Server has not
/// managed to start onward delivery to a matching subscriber, then it MUST delete the copy
/// of the message for that subscriber" [MQTT-3.3.2-5]; "The PUBLISH packet sent to a Client
/// by the Server MUST contain a Message Expiry Interval set to the received value minus the
/// time that the message has been waiting in the Server" [MQTT-3.3.2-6].
#[tokio::test]
async fn message_expiry_counts_down_while_queued() {
    let broker = start().await;
    let mut sub = Client5::with_options(session(&broker, "me-sub", true, 60)).await;
    sub.subscribe("me/#", Q1).await;
    sub.disconnect().await;
    let mut publisher = Client5::connect(&broker, "me-pub").await;
    let expiring = |s| PublishProperties {
        message_expiry_interval: Some(s),
        ..PublishProperties::default()
    };
    publish_props(&publisher, "me/short", Q1, false, "short", expiring(1)).await;
    publish_props(&publisher, "me/long", Q1, false, "long", expiring(10)).await;
    publisher.acked(2).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let mut back = Client5::with_options(session(&broker, "me-sub", false, 60)).await;
    let got = back.next().await;
    assert_eq!(&got.payload[..], b"long", "the expired one is not sent");
    let left = props_of(&got).message_expiry_interval.expect("expiry sent");
    assert!(
        (1..=8).contains(&left),
        "{left} s left of 10 after 2 s queued"
    );
    back.expect_nothing(QUIET).await;
    broker.shutdown().await;
}

/// Message Expiry Interval 0: "If the Message Expiry Interval has passed and the Server has
/// not managed to start onward delivery to a matching subscriber, then it MUST delete the
/// copy of the message for that subscriber" [MQTT-3.3.2-5]. An interval of 0 has passed the
/// moment the message is published: a subscriber online then gets it (onward delivery
/// starts at publish, with the interval 0), an offline persistent session's copy is deleted
/// (it gets the message published beside it without an expiry only).
#[tokio::test]
async fn message_expiry_0_reaches_who_is_online_and_no_queue() {
    let broker = start().await;
    let mut away = Client5::with_options(session(&broker, "me0-away", true, 60)).await;
    away.subscribe("me0/#", Q1).await;
    away.disconnect().await;
    let mut online = Client5::connect(&broker, "me0-online").await;
    online.subscribe("me0/#", Q1).await;
    let mut publisher = Client5::connect(&broker, "me0-pub").await;
    let now_only = PublishProperties {
        message_expiry_interval: Some(0),
        ..PublishProperties::default()
    };
    publish_props(&publisher, "me0/now", Q1, false, "now", now_only).await;
    let lasting = PublishProperties::default();
    publish_props(&publisher, "me0/kept", Q1, false, "kept", lasting).await;
    publisher.acked(2).await;
    let got = online.next().await;
    assert_eq!(&got.payload[..], b"now");
    assert_eq!(props_of(&got).message_expiry_interval, Some(0));
    assert_eq!(&online.next().await.payload[..], b"kept");
    let mut back = Client5::with_options(session(&broker, "me0-away", false, 60)).await;
    let got = back.next().await;
    assert_eq!(&got.payload[..], b"kept", "the expiry 0 copy was not kept");
    back.expect_nothing(QUIET).await;
    broker.shutdown().await;
}

/// Subscribe options. No Local: "If the value is 1, Application Messages MUST NOT be
/// forwarded to a connection with a ClientID equal to the ClientID of the publishing
/// connection" [MQTT-3.8.3-3]. Retain As Published: "If the value of Retain As Published
/// subscription option is set to 0, the Server MUST set the RETAIN flag to 0 when forwarding
/// an Application Message regardless of how the RETAIN flag was set in the received PUBLISH
/// packet" [MQTT-3.3.1-12], "set to 1, the Server MUST set the RETAIN flag equal to the
/// RETAIN flag in the received PUBLISH packet" [MQTT-3.3.1-13]. Retain Handling: "If Retain
/// Handling is set to 0 the Server MUST send the retained messages matching the Topic Filter
/// of the subscription to the Client" [MQTT-3.3.1-9]; "If Retain Handling is set to 1 then if
/// the subscription did not already exist, the Server MUST send all retained message
/// matching the Topic Filter of the subscription to the Client, and if the subscription did
/// exist the Server MUST NOT send the retained messages" [MQTT-3.3.1-10]; "If Retain Handling
/// is set to 2, the Server MUST NOT send the retained messages" [MQTT-3.3.1-11].
#[tokio::test]
async fn subscribe_options() {
    let broker = start().await;
    let filter = |path: &str, no_local, as_published, rule| Filter {
        path: path.to_owned(),
        qos: Q1,
        nolocal: no_local,
        preserve_retain: as_published,
        retain_forward_rule: rule,
    };
    use RetainForwardRule::{Never, OnEverySubscribe, OnNewSubscribe};
    // No Local.
    let mut me = Client5::connect(&broker, "so-me").await;
    subscribe_with(
        &mut me,
        vec![filter("so/nl", true, false, OnEverySubscribe)],
        None,
    )
    .await;
    let other = Client5::connect(&broker, "so-other").await;
    publish(&me, "so/nl", Q1, "mine").await;
    me.acked(1).await; // routed (and not forwarded to itself) before "theirs" is sent
    publish(&other, "so/nl", Q1, "theirs").await;
    assert_eq!(payloads(&mut me, 1).await, ["theirs"]);
    // Retain As Published, on a live message.
    let mut kept = Client5::connect(&broker, "so-rap").await;
    subscribe_with(
        &mut kept,
        vec![filter("so/rap", false, true, OnEverySubscribe)],
        None,
    )
    .await;
    let mut plain = Client5::connect(&broker, "so-plain").await;
    plain.subscribe("so/rap", Q1).await;
    publish_props(
        &other,
        "so/rap",
        Q1,
        true,
        "r",
        PublishProperties::default(),
    )
    .await;
    assert!(kept.next().await.retain, "as published");
    assert!(!plain.next().await.retain, "RETAIN 0 without the option");
    // Retain Handling on the retained message just left on so/rap.
    let mut rh = Client5::connect(&broker, "so-rh").await;
    subscribe_with(&mut rh, vec![filter("so/rap", false, false, Never)], None).await;
    rh.expect_nothing(QUIET).await;
    subscribe_with(
        &mut rh,
        vec![filter("so/rap", false, false, OnNewSubscribe)],
        None,
    )
    .await;
    rh.expect_nothing(QUIET).await;
    subscribe_with(
        &mut rh,
        vec![filter("so/rap", false, false, OnEverySubscribe)],
        None,
    )
    .await;
    assert!(rh.next().await.retain, "0: sent at every subscribe");
    subscribe_with(
        &mut rh,
        vec![filter("so/+", false, false, OnNewSubscribe)],
        None,
    )
    .await;
    assert_eq!(
        topic_of(&rh.next().await),
        "so/rap",
        "1: sent for a new subscription"
    );
    rh.expect_nothing(QUIET).await;
    broker.shutdown().await;
}

/// Subscription identifiers: "The Subscription Identifier is associated with any
/// subscription created or modified as the result of this SUBSCRIBE packet. If there is a
/// Subscription Identifier, it is stored with the subscription. If this property is not
/// specified, then the absence of a Subscription Identifier is stored with the subscription"
/// (3.8.2.1.2); the PUBLISH carries those of the matching subscriptions [MQTT-3.3.4-3], a
/// retained message sent at subscribe that of the new subscription.
#[tokio::test]
async fn subscription_identifiers_follow_the_latest_subscribe() {
    let broker = start().await;
    let subs = [("sid/+", Q0, Some(3)), ("sid/a", Q0, Some(268_435_455))];
    let mut sub = subscriber(&broker, "sid-sub", &subs).await;
    let publisher = Client5::connect(&broker, "sid-pub").await;
    publish(&publisher, "sid/a", Q0, "1").await;
    assert_eq!(
        ids_of(&sub.next().await),
        [3, 268_435_455],
        "the largest id too"
    );
    // Modified: a new identifier replaces the old one, none removes it.
    subscribe_with(&mut sub, vec![Filter::new("sid/+", Q0)], Some(5)).await;
    subscribe_with(&mut sub, vec![Filter::new("sid/a", Q0)], None).await;
    publish(&publisher, "sid/a", Q0, "2").await;
    assert_eq!(ids_of(&sub.next().await), [5]);
    // A retained message sent because of a subscription carries that one's identifier.
    publish_props(
        &publisher,
        "sid/kept",
        Q1,
        true,
        "r",
        PublishProperties::default(),
    )
    .await;
    assert_eq!(ids_of(&sub.next().await), [5], "the live copy");
    subscribe_with(&mut sub, vec![Filter::new("sid/kept", Q1)], Some(11)).await;
    let kept = sub.next().await;
    assert!(kept.retain);
    assert_eq!(ids_of(&kept), [11], "the subscription that sent it");
    subscribe_with(&mut sub, vec![Filter::new("sid/#", Q0)], None).await;
    let kept = sub.next().await;
    assert_eq!(topic_of(&kept), "sid/kept");
    assert!(ids_of(&kept).is_empty(), "that SUBSCRIBE had none");
    broker.shutdown().await;
}

/// Request / response: "The Server MUST send the Response Topic unaltered to all subscribers
/// receiving the Application Message" [MQTT-3.3.2-15]; "The Server MUST send the Correlation
/// Data unaltered to all subscribers receiving the Application Message" [MQTT-3.3.2-16].
/// Response Information: "If the Request Response Information is 0, the Server MUST NOT
/// return Response Information" [MQTT-3.1.2-28]; asked with 1, the broker with
/// `[mqtt5] response_information` gives its prefix and the client id, a basis for response
/// topics (3.2.2.3.15); a broker without that key gives none.
#[tokio::test]
async fn request_response() {
    let broker = start_configured(|c| c.mqtt5.response_information = Some("reply/".into())).await;
    let info = |c: &Client5| {
        c.connack
            .properties
            .as_ref()
            .and_then(|p| p.response_information.clone())
    };
    let mut options = Client5::options(&broker, "rr-requester");
    options.set_request_response_info(Some(1));
    let mut requester = Client5::with_options(options).await;
    let base = info(&requester).expect("Response Information when asked");
    assert_eq!(base, "reply/rr-requester");
    let mut responder = Client5::connect(&broker, "rr-responder").await;
    assert_eq!(info(&responder), None, "not asked: none");
    responder.subscribe("rr/service", Q1).await;
    let response_topic = format!("{base}/answers");
    requester.subscribe(&response_topic, Q1).await;
    let request = PublishProperties {
        response_topic: Some(response_topic.clone()),
        correlation_data: Some(Bytes::from_static(b"\x00req-42\xff")),
        ..PublishProperties::default()
    };
    publish_props(&requester, "rr/service", Q1, false, "ping?", request).await;
    let got = responder.next().await;
    let asked = props_of(&got);
    assert_eq!(asked.response_topic.as_deref(), Some(&*response_topic));
    let answer = PublishProperties {
        correlation_data: asked.correlation_data.clone(),
        ..PublishProperties::default()
    };
    let to = asked.response_topic.expect("a response topic");
    publish_props(&responder, &to, Q1, false, "pong", answer).await;
    let reply = requester.next().await;
    assert_eq!(&reply.payload[..], b"pong");
    assert_eq!(
        props_of(&reply).correlation_data.as_deref(),
        Some(&b"\x00req-42\xff"[..])
    );
    broker.shutdown().await;
    // Not configured: asked, but none given.
    let broker = start().await;
    let mut options = Client5::options(&broker, "rr-unconfigured");
    options.set_request_response_info(Some(1));
    let c = Client5::with_options(options).await;
    assert_eq!(info(&c), None);
    broker.shutdown().await;
}

/// Client topic aliases: "A sender can modify the Topic Alias mapping by sending another
/// PUBLISH in the same Network Connection with the same Topic Alias value and a different
/// non-zero length Topic Name" (3.3.2.3.4), and one with a zero length Topic Name uses the
/// mapping; receivers get the topic name (the broker never forwards the client's aliases).
/// "A Topic Alias value of 0 or greater than the Maximum Topic Alias is a Protocol Error"
/// (3.3.2.3.4): DISCONNECT 0x94 (Topic Alias invalid). The broker's Topic Alias Maximum is 64.
#[tokio::test]
async fn client_topic_aliases() {
    let broker = start().await;
    let mut sub = Client5::connect(&broker, "cta-sub").await;
    sub.subscribe("cta/#", Q1).await;
    let publisher = Client5::connect(&broker, "cta-pub").await;
    let alias = |a| PublishProperties {
        topic_alias: Some(a),
        ..PublishProperties::default()
    };
    for (topic, payload) in [("cta/one", "1"), ("", "2"), ("cta/two", "3"), ("", "4")] {
        publish_props(&publisher, topic, Q1, false, payload, alias(7)).await;
    }
    let mut seen = async || {
        let p = sub.next().await;
        assert_eq!(props_of(&p).topic_alias, None, "not forwarded");
        format!("{}={}", topic_of(&p), String::from_utf8_lossy(&p.payload))
    };
    for want in ["cta/one=1", "cta/one=2", "cta/two=3", "cta/two=4"] {
        assert_eq!(seen().await, want);
    }
    // The largest alias, 64, is taken; 65 is not (rumqttc will not send it: the raw client
    // does).
    let (mut raw, _) = Raw5::connect(&broker, "cta-raw", true, 0).await;
    raw.publish_aliased("cta/max", 64, b"5").await;
    raw.publish_aliased("", 64, b"6").await;
    assert_eq!(seen().await, "cta/max=5");
    assert_eq!(seen().await, "cta/max=6");
    raw.publish_aliased("cta/x", 65, b"x").await;
    raw.expect_disconnect(ReasonCode::TopicAliasInvalid).await;
    sub.expect_nothing(QUIET).await; // cta/x was not routed
    broker.shutdown().await;
}

/// Server topic aliases: "The Server MUST NOT send a Topic Alias in a PUBLISH packet to the
/// Client greater than this value" [MQTT-3.1.2-26] (the client's Topic Alias Maximum), and
/// "Topic Alias mappings exist only within a Network Connection and last only for the
/// lifetime of that Network Connection. A receiver MUST NOT carry forward any Topic Alias
/// mappings from one Network Connection to another" [MQTT-3.3.2-7]: so a new connection gets
/// the topic name again. (rumqttc hands out the PUBLISH as it came: an alias alone has an empty topic.)
#[tokio::test]
async fn server_topic_aliases() {
    let broker = start().await;
    let publisher = Client5::connect(&broker, "sta-pub").await;
    for round in 0..2 {
        let mut options = Client5::options(&broker, "sta-sub");
        options.set_topic_alias_max(Some(2));
        let mut sub = Client5::with_options(options).await;
        sub.subscribe("sta/#", Q0).await;
        for topic in ["sta/x", "sta/x", "sta/y", "sta/z", "sta/y"] {
            publish(&publisher, topic, Q0, topic).await;
        }
        let mut seen = Vec::new();
        for _ in 0..5 {
            let p = sub.next().await;
            seen.push((topic_of(&p), props_of(&p).topic_alias));
        }
        let want = [
            ("sta/x", Some(1)),
            ("", Some(1)),
            ("sta/y", Some(2)),
            ("sta/z", None),
            ("", Some(2)),
        ];
        let want: Vec<_> = want.iter().map(|(t, a)| (t.to_string(), *a)).collect();
        assert_eq!(seen, want, "connection {round}");
        sub.disconnect().await;
    }
    broker.shutdown().await;
}

/// Maximum packet size: "The Server MUST NOT send packets exceeding Maximum Packet Size to
/// the Client" [MQTT-3.1.2-24]; "Where a Packet is too large to send, the Server MUST discard
/// it without sending it and then behave as if it had completed sending that Application
/// Message" [MQTT-3.1.2-25]: live and retained, a message too big for the client is dropped
/// for it (another client gets it), the next one arrives.
#[tokio::test]
async fn maximum_packet_size() {
    let broker = start().await;
    let mut options = Client5::options(&broker, "mps-small");
    options.set_max_packet_size(Some(128));
    let mut small = Client5::with_options(options).await;
    small.subscribe("mps/live", Q1).await;
    let mut big = Client5::connect(&broker, "mps-big").await;
    big.subscribe("mps/live", Q1).await;
    let mut publisher = Client5::connect(&broker, "mps-pub").await;
    let none = PublishProperties::default;
    publish_props(&publisher, "mps/live", Q1, false, vec![b'x'; 500], none()).await;
    publish_props(&publisher, "mps/live", Q1, false, "fits", none()).await;
    publisher.acked(2).await;
    assert_eq!(big.next().await.payload.len(), 500);
    assert_eq!(&small.next().await.payload[..], b"fits");
    publish_props(
        &publisher,
        "mps/kept/big",
        Q1,
        true,
        vec![b'y'; 500],
        none(),
    )
    .await;
    publish_props(&publisher, "mps/kept/small", Q1, true, "fits", none()).await;
    publisher.acked(2).await;
    small.subscribe("mps/kept/#", Q1).await;
    assert_eq!(topic_of(&small.next().await), "mps/kept/small");
    small.expect_nothing(QUIET).await;
    // Still connected: the skipped messages did not end the connection.
    publish(&publisher, "mps/live", Q1, "after").await;
    assert_eq!(&small.next().await.payload[..], b"after");
    broker.shutdown().await;
}

/// Server keep alive: "If the Server sends a Server Keep Alive on the CONNACK packet, the
/// Client MUST use this value instead of the Keep Alive value the Client sent on CONNECT"
/// [MQTT-3.2.2-21]: a broker capping keep-alives at 1 s (`[mqtt5] max_keep_alive`) tells
/// rumqttc (which asked for 30 s) so, and rumqttc, pinging at that pace, stays connected for
/// longer than 1.5 s of it.
#[tokio::test]
async fn server_keep_alive() {
    let broker = start_configured(|c| c.mqtt5.max_keep_alive = 1).await;
    let mut sub = Client5::connect(&broker, "ska-sub").await;
    let server = sub
        .connack
        .properties
        .as_ref()
        .and_then(|p| p.server_keep_alive);
    assert_eq!(server, Some(1));
    sub.subscribe("ska/t", Q1).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let publisher = Client5::connect(&broker, "ska-pub").await;
    publish(&publisher, "ska/t", Q1, "still here").await;
    assert_eq!(&sub.next().await.payload[..], b"still here");
    assert!(
        sub.acks.try_recv().is_err(),
        "no DISCONNECT from the broker"
    );
    broker.shutdown().await;
}

/// Flow control: "The Server MUST NOT send more than Receive Maximum QoS 1 and QoS 2 PUBLISH
/// packets for which it has not received PUBACK, PUBCOMP, or PUBREC with a Reason Code of 128
/// or greater from the Client" [MQTT-3.3.4-9]: rumqttc with Receive Maximum 2 and manual
/// acknowledgements gets two, the next one once it acknowledges one.
#[tokio::test]
async fn receive_maximum_is_honoured() {
    let broker = start().await;
    let mut options = Client5::options(&broker, "fc-sub");
    options.set_receive_maximum(Some(2));
    options.set_manual_acks(true);
    let mut sub = Client5::with_options(options).await;
    sub.subscribe("fc/t", Q2).await;
    let mut publisher = Client5::connect(&broker, "fc-pub").await;
    for (n, qos) in [Q1, Q2, Q1, Q2, Q1].into_iter().enumerate() {
        publish(&publisher, "fc/t", qos, &n.to_string()).await;
    }
    publisher.acked(5).await;
    let first = sub.next().await;
    let second = sub.next().await;
    assert_eq!(
        (&first.payload[..], &second.payload[..]),
        (&b"0"[..], &b"1"[..])
    );
    sub.expect_nothing(QUIET).await;
    sub.client.ack(&first).await.expect("PUBACK queued");
    let third = sub.next().await;
    assert_eq!(&third.payload[..], b"2");
    sub.expect_nothing(QUIET).await;
    // The QoS 2 one counts until its PUBCOMP: rumqttc's PUBREC, then PUBREL / PUBCOMP.
    sub.client.ack(&second).await.expect("PUBREC queued");
    assert_eq!(&sub.next().await.payload[..], b"3");
    sub.expect_nothing(QUIET).await;
    broker.shutdown().await;
}

/// Will delay: "The Server delays publishing the Client's Will Message until the Will Delay
/// Interval has passed or the Session ends, whichever happens first. If a new Network
/// Connection to this Session is made before the Will Delay Interval has passed, the Server
/// MUST NOT send the Will Message" [MQTT-3.1.3-9]: rumqttc's will with a delay of 1 s.
#[tokio::test]
async fn will_delay() {
    let broker = start().await;
    let mut watcher = Client5::connect(&broker, "wd-watcher").await;
    watcher.subscribe("wd/#", Q1).await;
    let delayed = |broker: &BrokerHandle, id: &str, clean: bool| {
        let mut options = session(broker, id, clean, 60);
        let properties = LastWillProperties {
            delay_interval: Some(1),
            payload_format_indicator: None,
            message_expiry_interval: None,
            content_type: None,
            response_topic: None,
            correlation_data: None,
            user_properties: Vec::new(),
        };
        options.set_last_will(will(&format!("wd/{id}"), Some(properties)));
        options
    };
    drop(Client5::with_options(delayed(&broker, "wd-late", true)).await);
    drop(Client5::with_options(delayed(&broker, "wd-back", true)).await);
    let back = Client5::with_options(delayed(&broker, "wd-back", false)).await;
    assert!(back.connack.session_present);
    watcher.expect_nothing(Duration::from_millis(600)).await;
    let got = watcher.next().await;
    assert_eq!(topic_of(&got), "wd/wd-late", "sent once the delay passed");
    watcher.expect_nothing(Duration::from_millis(1_000)).await;
    back.disconnect().await;
    broker.shutdown().await;
}

/// Shared subscriptions: "each message matching the Shared Subscription is sent to only one
/// of the Sessions that are subscribed" (4.8.2); a plain subscription to the same topics
/// still gets every message.
#[tokio::test]
async fn shared_subscriptions() {
    let broker = start().await;
    let mut members = Vec::new();
    for id in ["sh-a", "sh-b"] {
        let mut member = Client5::connect(&broker, id).await;
        member.subscribe("$share/grp/sh/#", Q1).await;
        members.push(member);
    }
    let mut plain = Client5::connect(&broker, "sh-plain").await;
    plain.subscribe("sh/#", Q1).await;
    let mut publisher = Client5::connect(&broker, "sh-pub").await;
    for n in 0..10 {
        publish(&publisher, &format!("sh/{n}"), Q1, &n.to_string()).await;
    }
    publisher.acked(10).await;
    let mut all = payloads(&mut plain, 10).await;
    all.sort();
    let mut shared = Vec::new();
    for member in &mut members {
        let mut got = Vec::new();
        while let Ok(Some(p)) = tokio::time::timeout(QUIET, member.publishes.recv()).await {
            got.push(String::from_utf8_lossy(&p.payload).into_owned());
        }
        assert!(!got.is_empty(), "every member gets a share");
        shared.extend(got);
    }
    shared.sort();
    assert_eq!(shared, all, "each message once, to one member");
    assert_eq!(all.len(), 10);
    broker.shutdown().await;
}

/// "If the Client specified a Subscription Identifier for any of the overlapping
/// subscriptions the Server MUST send those Subscription Identifiers in the message which is
/// published as the result of the subscriptions [MQTT-3.3.4-3]. If the Server sends a single
/// copy of the message it MUST include in the PUBLISH packet the Subscription Identifiers for
/// all matching subscriptions which have a Subscription Identifiers, their order is not
/// significant [MQTT-3.3.4-4]. If the Server sends multiple PUBLISH packets it MUST send, in
/// each of them, the Subscription Identifier of the matching subscription if it has a
/// Subscription Identifier [MQTT-3.3.4-5]." A client alone in a share group and also
/// subscribed plainly (twice, overlapping) gets two copies of each message: the shared copy
/// with the shared subscription's identifier only, the plain copy with the identifiers of the
/// plain subscriptions only.
#[tokio::test]
async fn a_shared_copy_and_a_plain_copy_carry_their_own_subscription_identifiers() {
    let broker = start().await;
    let subs = [
        ("$share/g/shid/#", Q1, Some(7)),
        ("shid/+", Q1, Some(3)),
        ("shid/a", Q1, Some(4)),
    ];
    let mut sub = subscriber(&broker, "shid-sub", &subs).await;
    let mut publisher = Client5::connect(&broker, "shid-pub").await;
    for qos in [Q0, Q1] {
        publish(&publisher, "shid/a", qos, "m").await;
        let mut got = vec![ids_of(&sub.next().await), ids_of(&sub.next().await)];
        got.sort();
        assert_eq!(got, [vec![3, 4], vec![7]], "at {qos:?}");
    }
    // Only the shared subscription matches: its identifier.
    publish(&publisher, "shid/b/c", Q1, "n").await;
    assert_eq!(ids_of(&sub.next().await), [7]);
    publisher.acked(2).await;
    sub.expect_nothing(QUIET).await;
    broker.shutdown().await;
}

/// The copies of [MQTT-3.3.4-5] keep their identifiers when they cannot go out at once. A
/// persistent client subscribed both ways accepts one message at a time (Receive Maximum 1),
/// so of the three copies two wait in its queue; it leaves without acknowledging; the broker
/// restarts from its store; the client comes back and gets them one by one, the first resent
/// (DUP 1) from its in-flight state; it leaves again with the shared copy unacknowledged and
/// gets that resent on the next connection. Every time the shared copy carries the shared
/// subscription's identifier and the plain copy the plain subscription's.
#[tokio::test]
async fn copies_keep_their_identifiers_through_the_queue_a_restart_and_a_resend() {
    let dir = tempfile::tempdir().expect("a data directory");
    let broker = support::start_on_disk(dir.path()).await;
    let one_at_a_time = |broker: &BrokerHandle, clean: bool| {
        let mut options = session(broker, "shq-sub", clean, 600);
        options.set_receive_maximum(Some(1));
        options.set_manual_acks(true);
        options
    };
    let copy = |p: &RPublish| {
        (
            String::from_utf8_lossy(&p.payload).into_owned(),
            ids_of(p),
            p.dup,
        )
    };
    let both = |ids: Vec<usize>, dup: bool| ("both".to_owned(), ids, dup);
    let mut sub = Client5::with_options(one_at_a_time(&broker, true)).await;
    for (filter, identifier) in [("$share/g/shq/#", 7), ("shq/+", 3)] {
        subscribe_with(&mut sub, vec![Filter::new(filter, Q1)], Some(identifier)).await;
    }
    let mut publisher = Client5::connect(&broker, "shq-pub").await;
    publish(&publisher, "shq/a", Q1, "both").await;
    publish(&publisher, "shq/b/c", Q1, "shared only").await;
    publisher.acked(2).await;
    // The plain copy is routed first; the other two wait behind it.
    assert_eq!(copy(&sub.next().await), both(vec![3], false));
    sub.expect_nothing(QUIET).await;
    drop(sub); // no PUBACK, no DISCONNECT
    drop(publisher);
    broker.shutdown().await;
    drop(broker); // its handle holds the store open

    let broker = support::start_on_disk(dir.path()).await;
    let mut back = Client5::with_options(one_at_a_time(&broker, false)).await;
    assert!(back.connack.session_present);
    let resent = back.next().await;
    assert_eq!(copy(&resent), both(vec![3], true), "resent from flight");
    back.client.ack(&resent).await.expect("PUBACK queued");
    assert_eq!(
        copy(&back.next().await),
        both(vec![7], false),
        "from the stored queue"
    );
    back.expect_nothing(QUIET).await;
    drop(back);

    let mut again = Client5::with_options(one_at_a_time(&broker, false)).await;
    let resent = again.next().await;
    assert_eq!(copy(&resent), both(vec![7], true), "the shared copy resent");
    again.client.ack(&resent).await.expect("PUBACK queued");
    let last = again.next().await;
    assert_eq!(copy(&last), ("shared only".to_owned(), vec![7], false));
    again.client.ack(&last).await.expect("PUBACK queued");
    again.expect_nothing(QUIET).await;
    broker.shutdown().await;
}

/// Mixed 3.1.1 and 5: a 3.1.1 client and an MQTT 5 one exchange messages both ways on one
/// broker. The 3.1.1 subscriber gets the v5 message without its properties and at the QoS
/// of its subscription [MQTT-3.8.4-8]; the v5 subscriber gets the 3.1.1 message with no
/// properties and RETAIN 0 on a live subscription [MQTT-3.3.1-12].
#[tokio::test]
async fn mixed_v311_and_v5_clients() {
    let broker = start().await;
    let mut old = Client::connect(&broker, "mix-v3", true).await;
    subscribe(&mut old, "mix/to3", rumqttc::QoS::AtLeastOnce).await;
    let mut new = Client5::connect(&broker, "mix-v5").await;
    new.subscribe("mix/to5", Q2).await;
    let properties = PublishProperties {
        user_properties: vec![("from".into(), "v5".into())],
        content_type: Some("text/plain".into()),
        ..PublishProperties::default()
    };
    publish_props(&new, "mix/to3", Q2, false, "hello v3", properties).await;
    let got = old.next().await;
    assert_eq!(&got.payload[..], b"hello v3");
    assert_eq!(got.qos, rumqttc::QoS::AtLeastOnce);
    old.client
        .publish("mix/to5", rumqttc::QoS::ExactlyOnce, true, "hello v5")
        .await
        .expect("queued");
    let got = new.next().await;
    assert_eq!(
        (&got.payload[..], got.qos, got.retain),
        (&b"hello v5"[..], Q2, false)
    );
    assert_eq!(props_of(&got), PublishProperties::default());
    broker.shutdown().await;
}

/// MQTT 5 over TLS and over secure WebSocket: the listeners share the connection code, so
/// the properties cross between them as on TCP ([MQTT-3.3.2-17]); each client sees the other's
/// message with its user properties and correlation data.
#[tokio::test]
async fn mqtt5_over_tls_and_wss() {
    let pki = test_pki();
    let any = Some("127.0.0.1:0".parse().expect("addr"));
    let broker = start_configured(|c| {
        c.listeners.tls_addr = any;
        c.listeners.wss_addr = any;
        c.listeners.tls = Some(pki.files.clone());
    })
    .await;
    let tls = broker.local_addr(ListenerKind::Tls).expect("tls listener");
    let mut options = MqttOptions::new("tls5", "127.0.0.1", tls.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_transport(Transport::Tls(client_tls(&pki)));
    let mut over_tls = Client5::with_options(options).await;
    let wss = broker.local_addr(ListenerKind::Wss).expect("wss listener");
    let url = format!("wss://127.0.0.1:{}/mqtt", wss.port());
    let mut options = MqttOptions::new("wss5", url, wss.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_transport(Transport::Wss(client_tls(&pki)));
    let mut over_wss = Client5::with_options(options).await;
    over_tls.subscribe("sec/to-tls", Q1).await;
    over_wss.subscribe("sec/to-wss", Q1).await;
    for (from, to, via) in [
        (&over_tls, "sec/to-wss", "tls"),
        (&over_wss, "sec/to-tls", "wss"),
    ] {
        let properties = PublishProperties {
            user_properties: vec![("via".into(), via.into())],
            correlation_data: Some(Bytes::from(via)),
            ..PublishProperties::default()
        };
        publish_props(from, to, Q1, false, via, properties).await;
    }
    for (c, via) in [(&mut over_wss, "tls"), (&mut over_tls, "wss")] {
        let got = c.next().await;
        assert_eq!(&got.payload[..], via.as_bytes());
        let p = props_of(&got);
        assert_eq!(
            p.user_properties,
            vec![("via".to_string(), via.to_string())]
        );
        assert_eq!(p.correlation_data.as_deref(), Some(via.as_bytes()));
    }
    broker.shutdown().await;
}
