//! Publish/subscribe over real sockets with rumqttc: QoS 0/1/2, big payloads, overlapping
//! subscriptions, `$` topics, retained messages, shared groups, P2P, the embedding API.
// Test and benchmark code: an unwrap that fails is a failure to report (clippy.toml allows
// it inside #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use mqgate_codec::QoS as Q;
use rumqttc::{QoS, SubscribeReasonCode};
use support::{start, subscribe, Client};

#[tokio::test]
async fn qos_0_1_2_round_trips_deliver_at_the_lower_qos() {
    let broker = start().await;
    let mut sub = Client::connect(&broker, "sub", true).await;
    let publisher = Client::connect(&broker, "pub", true).await;
    for (filter, granted) in [
        ("q/0", QoS::AtMostOnce),
        ("q/1", QoS::AtLeastOnce),
        ("q/2", QoS::ExactlyOnce),
    ] {
        subscribe(&mut sub, filter, granted).await;
    }
    let cases = [
        ("q/0", QoS::ExactlyOnce, QoS::AtMostOnce),
        ("q/1", QoS::ExactlyOnce, QoS::AtLeastOnce),
        ("q/2", QoS::ExactlyOnce, QoS::ExactlyOnce),
        ("q/2", QoS::AtLeastOnce, QoS::AtLeastOnce),
    ];
    for (topic, sent, expected) in cases {
        publisher
            .client
            .publish(topic, sent, false, format!("{topic}:{sent:?}"))
            .await
            .unwrap();
        let got = sub.next().await;
        assert_eq!(got.topic, topic);
        assert_eq!(got.qos, expected, "{topic} sent at {sent:?}");
        assert_eq!(&got.payload[..], format!("{topic}:{sent:?}").as_bytes());
    }
    sub.expect_nothing(Duration::from_millis(200)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_256_kib_payload_arrives_intact() {
    let broker = start().await;
    let mut sub = Client::connect(&broker, "big-sub", true).await;
    let publisher = Client::connect(&broker, "big-pub", true).await;
    subscribe(&mut sub, "big", QoS::AtLeastOnce).await;
    let payload: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    publisher
        .client
        .publish("big", QoS::AtLeastOnce, false, payload.clone())
        .await
        .unwrap();
    let got = sub.next().await;
    assert_eq!(got.payload.len(), payload.len());
    assert!(got.payload[..] == payload[..]);
    broker.shutdown().await;
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_once_at_the_highest_qos() {
    let broker = start().await;
    let mut sub = Client::connect(&broker, "overlap", true).await;
    subscribe(&mut sub, "a/+", QoS::AtMostOnce).await;
    subscribe(&mut sub, "a/#", QoS::ExactlyOnce).await;
    subscribe(&mut sub, "a/b", QoS::AtLeastOnce).await;
    broker
        .publish("a/b", "x", Q::ExactlyOnce, false)
        .await
        .unwrap();
    let got = sub.next().await;
    assert_eq!(got.qos, QoS::ExactlyOnce);
    sub.expect_nothing(Duration::from_millis(300)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let broker = start().await;
    let mut wild = Client::connect(&broker, "wild", true).await;
    let mut sys = Client::connect(&broker, "sys", true).await;
    subscribe(&mut wild, "#", QoS::AtMostOnce).await;
    subscribe(&mut wild, "+/uptime", QoS::AtMostOnce).await;
    subscribe(&mut sys, "$SYS/#", QoS::AtMostOnce).await;
    broker
        .publish("$SYS/uptime", "1", Q::AtMostOnce, false)
        .await
        .unwrap();
    broker
        .publish("plain/uptime", "2", Q::AtMostOnce, false)
        .await
        .unwrap();
    assert_eq!(sys.next().await.topic, "$SYS/uptime");
    assert_eq!(wild.next().await.topic, "plain/uptime");
    wild.expect_nothing(Duration::from_millis(200)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn retained_messages_are_set_replaced_and_cleared() {
    let broker = start().await;
    let mut publisher = Client::connect(&broker, "retainer", true).await;
    publisher
        .client
        .publish("r/t", QoS::AtLeastOnce, true, "one")
        .await
        .unwrap();
    publisher
        .client
        .publish("r/t", QoS::AtLeastOnce, true, "two")
        .await
        .unwrap();
    publisher
        .client
        .publish("r/other", QoS::AtLeastOnce, false, "not kept")
        .await
        .unwrap();
    // The publisher's QoS 1 round trips end before the subscriber arrives.
    publisher.acked(3).await;

    let mut late = Client::connect(&broker, "late", true).await;
    subscribe(&mut late, "r/#", QoS::AtLeastOnce).await;
    let got = late.next().await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..], got.retain),
        ("r/t", &b"two"[..], true)
    );
    late.expect_nothing(Duration::from_millis(200)).await;

    // Live delivery to an existing subscriber has RETAIN=0.
    publisher
        .client
        .publish("r/t", QoS::AtLeastOnce, true, "three")
        .await
        .unwrap();
    let live = late.next().await;
    assert_eq!((&live.payload[..], live.retain), (&b"three"[..], false));

    // An empty retained payload clears the topic.
    publisher
        .client
        .publish("r/t", QoS::AtLeastOnce, true, "")
        .await
        .unwrap();
    assert!(late.next().await.payload.is_empty());
    let mut later = Client::connect(&broker, "later", true).await;
    subscribe(&mut later, "r/#", QoS::AtLeastOnce).await;
    later.expect_nothing(Duration::from_millis(300)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_shared_group_gives_each_message_to_exactly_one_member() {
    let broker = start().await;
    let mut members = Vec::new();
    for id in ["worker-1", "worker-2", "worker-3"] {
        let mut m = Client::connect(&broker, id, true).await;
        subscribe(&mut m, "$share/billing/orders/+", QoS::AtLeastOnce).await;
        members.push(m);
    }
    let mut watcher = Client::connect(&broker, "watcher", true).await;
    subscribe(&mut watcher, "orders/#", QoS::AtLeastOnce).await;
    let total = 30;
    for i in 0..total {
        broker
            .publish(&format!("orders/{i}"), i.to_string(), Q::AtLeastOnce, false)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..total {
        seen.push(watcher.next().await.topic);
    }
    let mut got = Vec::new();
    for m in &mut members {
        while let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_millis(300), m.publishes.recv()).await
        {
            got.push(p.topic);
        }
    }
    got.sort();
    seen.sort();
    assert_eq!(got, seen, "every message to exactly one member");
    broker.shutdown().await;
}

/// A group never drops a message for want of a connected member: while its persistent
/// members are all offline, each message waits in one member's session (in turn) and
/// arrives when that member is back, once; while one is online it gets them all.
#[tokio::test]
async fn a_shared_group_with_every_member_offline_keeps_the_messages_for_them() {
    let broker = start().await;
    let ids = ["GID_b@@@worker-1", "GID_b@@@worker-2"];
    for id in ids {
        let mut m = Client::connect(&broker, id, false).await;
        subscribe(&mut m, "$share/billing/jobs/+", QoS::AtLeastOnce).await;
        m.disconnect().await;
    }
    let mut publisher = Client::connect(&broker, "GID_b@@@shop", true).await;
    let sender = publisher.client.clone();
    let publish = |i: usize| {
        let client = sender.clone();
        async move {
            let topic = format!("jobs/{i}");
            client
                .publish(topic, QoS::AtLeastOnce, false, "x")
                .await
                .unwrap();
        }
    };
    for i in 0..10 {
        publish(i).await;
    }
    // Routed once the PUBACKs are in; a watcher subscribed after them sees only what
    // follows.
    publisher.acked(10).await;
    let mut watcher = Client::connect(&broker, "GID_b@@@watcher", true).await;
    subscribe(&mut watcher, "jobs/#", QoS::AtLeastOnce).await;
    publish(10).await;
    assert_eq!(watcher.next().await.topic, "jobs/10");
    let mut got = Vec::new();
    let mut members = Vec::new();
    for id in ids {
        let mut m = Client::connect(&broker, id, false).await;
        while let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_millis(300), m.publishes.recv()).await
        {
            got.push(p.topic);
        }
        members.push(m);
    }
    got.sort_by_key(|t| t.trim_start_matches("jobs/").parse::<usize>().unwrap());
    let expected: Vec<String> = (0..10).chain([10]).map(|i| format!("jobs/{i}")).collect();
    assert_eq!(got, expected, "every message once, to one of the members");

    // One member online, the other away: the online one takes them all.
    let away = members.pop().unwrap();
    away.disconnect().await;
    for i in 11..17 {
        publish(i).await;
    }
    let online = &mut members[0];
    let mut topics = Vec::new();
    for _ in 11..17 {
        topics.push(online.next().await.topic);
    }
    assert_eq!(
        topics,
        (11..17).map(|i| format!("jobs/{i}")).collect::<Vec<_>>()
    );
    let mut away = Client::connect(&broker, ids[1], false).await;
    away.expect_nothing(Duration::from_millis(300)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn p2p_reaches_an_unsubscribed_client_and_cannot_be_subscribed_to() {
    let broker = start().await;
    let mut target = Client::connect(&broker, "GID_app@@@phone-1", true).await;
    let mut snoop = Client::connect(&broker, "snoop", true).await;
    let codes = subscribe(&mut snoop, "chat/p2p/GID_app@@@phone-1", QoS::AtLeastOnce).await;
    assert_eq!(codes, [SubscribeReasonCode::Failure]);
    subscribe(&mut snoop, "chat/#", QoS::AtLeastOnce).await;
    let sender = Client::connect(&broker, "GID_app@@@phone-2", true).await;
    sender
        .client
        .publish("chat/p2p/GID_app@@@phone-1", QoS::AtLeastOnce, false, "hi")
        .await
        .unwrap();
    let got = target.next().await;
    assert_eq!(got.topic, "chat/p2p/GID_app@@@phone-1");
    assert_eq!(&got.payload[..], b"hi");
    snoop.expect_nothing(Duration::from_millis(300)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_backend_consumer_group_shares_messages_from_clients() {
    let broker = start().await;
    let mut a = broker
        .subscribe("$share/backend/report/#", Q::AtLeastOnce)
        .unwrap();
    let mut b = broker
        .subscribe("$share/backend/report/#", Q::AtLeastOnce)
        .unwrap();
    let device = Client::connect(&broker, "device", true).await;
    for i in 0..10 {
        device
            .client
            .publish(format!("report/{i}"), QoS::AtLeastOnce, false, "x")
            .await
            .unwrap();
    }
    let mut topics = Vec::new();
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while topics.len() < 10 {
        tokio::select! {
            Some(m) = a.recv() => topics.push(m.topic.to_string()),
            Some(m) = b.recv() => topics.push(m.topic.to_string()),
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    topics.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("report/{i}")).collect();
    expected.sort();
    assert_eq!(topics, expected);
    assert!(a.try_recv().is_none() && b.try_recv().is_none());
    assert!(broker.subscribe("bad/#/filter", Q::AtMostOnce).is_err());
    broker.shutdown().await;
}

/// QoS 0 deliveries go out as one frame encoded by the router and shared by every receiver,
/// interleaved with each receiver's own packets (QoS 1 deliveries with their packet ids, their
/// 2 KB payloads written from the message's own buffer) and written with vectored writes:
/// every receiver still gets every message, in order per QoS, and a 256 KiB frame written in
/// several partial writes arrives intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_qos0_frames_interleave_with_each_receivers_own_packets() {
    const ROUNDS: usize = 200;
    let broker = start().await;
    let mut subs = Vec::new();
    for i in 0..3 {
        let mut sub = Client::connect(&broker, &format!("fan-{i}"), true).await;
        subscribe(&mut sub, "fan/#", QoS::AtLeastOnce).await;
        subs.push(sub);
    }
    let publisher = Client::connect(&broker, "fan-pub", true).await;
    let big: Vec<u8> = (0..256 * 1024).map(|i| (i % 253) as u8).collect();
    for round in 0..ROUNDS {
        let (qos, payload) = match round % 3 {
            // QoS 1 payloads large enough to be written from their own buffer.
            0 => (
                QoS::AtLeastOnce,
                format!("1:{round}:{}", ".".repeat(2000)).into_bytes(),
            ),
            _ if round == ROUNDS / 2 => (QoS::AtMostOnce, big.clone()),
            _ => (QoS::AtMostOnce, format!("0:{round}").into_bytes()),
        };
        publisher
            .client
            .publish(format!("fan/{}", round % 7), qos, false, payload)
            .await
            .unwrap();
    }
    for sub in &mut subs {
        let (mut last0, mut last1) = (None, None);
        for _ in 0..ROUNDS {
            let p = sub.next().await;
            if p.payload.len() == big.len() {
                assert!(p.payload[..] == big[..], "the big frame arrived intact");
                assert_eq!(p.qos, QoS::AtMostOnce);
                continue;
            }
            let text = std::str::from_utf8(&p.payload).unwrap().to_owned();
            let mut fields = text.split(':');
            let kind = fields.next().unwrap();
            let n: usize = fields.next().unwrap().parse().unwrap();
            let (last, qos) = if kind == "0" {
                (&mut last0, QoS::AtMostOnce)
            } else {
                (&mut last1, QoS::AtLeastOnce)
            };
            assert_eq!(p.qos, qos, "{text}");
            assert!(last.is_none_or(|l| l < n), "{text} after {last:?}");
            *last = Some(n);
        }
        sub.expect_nothing(Duration::from_millis(100)).await;
    }
    assert_eq!(broker.metrics().qos0_dropped, 0);
    broker.shutdown().await;
}
