//! Pacing presets, the in-flight window, queue limits and their policies, message age.

mod support;

use mqgate_codec::QoS;
use mqgate_session::{
    DeliveryOutcome, DropReason, Event, FullPolicy, Pacing, Session, SessionConfig,
};
use support::*;

/// A persistent session that went offline and has `n` QoS 1 messages queued (ids 1..=n).
fn offline_with_backlog(config: SessionConfig, n: u128) -> Session {
    let mut s = session(config);
    connect(&mut s, false, 0);
    let _ = s.connection_lost(0);
    for id in 1..=n {
        assert_eq!(
            s.handle_delivery(message(id, QoS::AtLeastOnce, 0), QoS::AtLeastOnce, 0),
            DeliveryOutcome::Queued
        );
    }
    s
}

fn sent_ids(s: &mut Session) -> Vec<u128> {
    sent(&transmits(s))
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

#[test]
fn window_pacing_releases_one_queued_message_per_ack() {
    let mut s = offline_with_backlog(
        SessionConfig {
            inflight_window: 2,
            ..SessionConfig::default()
        },
        5,
    );
    connect(&mut s, false, 10);
    let out = transmits(&mut s);
    assert_eq!(sent(&out).iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2]);
    assert_eq!((s.inflight_len(), s.queued_len()), (2, 3));
    ack_all(&mut s, &out[..1], 11);
    assert_eq!(sent_ids(&mut s), [3]);
    assert_eq!(s.poll_timeout(), None, "window pacing needs no timer");
}

#[test]
fn model_service_preset_sends_30_then_waits_5_seconds() {
    let config = SessionConfig {
        inflight_window: 100,
        pacing: Pacing::MODEL_SERVICE,
        ..SessionConfig::default()
    };
    let mut s = offline_with_backlog(config, 70);
    connect(&mut s, false, 1_000);
    let out = transmits(&mut s);
    assert_eq!(sent(&out).len(), 30);
    ack_all(&mut s, &out, 1_100);
    assert_eq!(
        sent_ids(&mut s),
        [],
        "acks do not start the next batch early"
    );
    assert_eq!(s.poll_timeout(), Some(6_000));
    s.handle_timeout(5_999);
    assert_eq!(sent_ids(&mut s), []);
    s.handle_timeout(6_000);
    assert_eq!(sent_ids(&mut s), (31..=60).collect::<Vec<_>>());
    s.handle_timeout(11_000);
    assert_eq!(sent_ids(&mut s), (61..=70).collect::<Vec<_>>());
    assert_eq!(s.poll_timeout(), None, "nothing left to pace");
}

#[test]
fn batches_never_exceed_the_window() {
    let config = SessionConfig {
        inflight_window: 4,
        pacing: Pacing::Batches {
            size: 10,
            interval_ms: 100,
        },
        ..SessionConfig::default()
    };
    let mut s = offline_with_backlog(config, 12);
    connect(&mut s, false, 0);
    let out = transmits(&mut s);
    assert_eq!(sent(&out).len(), 4);
    ack_all(&mut s, &out, 1);
    assert_eq!(
        sent_ids(&mut s),
        [5, 6, 7, 8],
        "same batch, window room again"
    );
}

#[test]
fn queue_limits_and_policies_on_a_live_session() {
    // (policy, outcomes of messages 1..=4 with room for 2 queued, kept, dropped by eviction)
    #[rustfmt::skip]
    let table = [
        (FullPolicy::DropOldest, [DeliveryOutcome::Queued; 4], vec![3, 4], vec![1, 2]),
        (FullPolicy::RefuseNew, [DeliveryOutcome::Queued, DeliveryOutcome::Queued, DeliveryOutcome::Refused, DeliveryOutcome::Refused], vec![1, 2], vec![]),
    ];
    for (policy, outcomes, kept, evicted) in table {
        let config = SessionConfig {
            max_queued_messages: 2,
            full_policy: policy,
            ..SessionConfig::default()
        };
        let mut s = session(config);
        connect(&mut s, false, 0);
        let _ = s.connection_lost(0);
        let got: Vec<_> = (1..=4)
            .map(|id| s.handle_delivery(message(id, QoS::AtLeastOnce, 0), QoS::AtLeastOnce, 0))
            .collect();
        assert_eq!(got, outcomes, "{policy:?}");
        let dropped: Vec<u128> = events(&mut s)
            .into_iter()
            .filter_map(|e| match e {
                Event::Dropped {
                    message,
                    reason: DropReason::QueueFull,
                } => Some(message.0),
                _ => None,
            })
            .collect();
        assert_eq!(dropped, evicted, "{policy:?}");
        connect(&mut s, false, 1);
        assert_eq!(sent_ids(&mut s), kept, "{policy:?}");
    }
}

#[test]
fn byte_limit_counts_topic_and_payload() {
    // Each test message is 10 bytes of topic + 16 of payload.
    let config = SessionConfig {
        max_queued_bytes: 60,
        ..SessionConfig::default()
    };
    let s = offline_with_backlog(config, 5);
    assert_eq!((s.queued_len(), s.queued_bytes()), (2, 52));
}

#[test]
fn messages_older_than_the_ttl_are_dropped_on_resume() {
    const DAY: u64 = 24 * 60 * 60 * 1000;
    let mut s = session(SessionConfig::default());
    connect(&mut s, false, 0);
    let _ = s.connection_lost(0);
    let _ = s.handle_delivery(message(1, QoS::AtLeastOnce, 0), QoS::AtLeastOnce, 0);
    let _ = s.handle_delivery(message(2, QoS::ExactlyOnce, DAY), QoS::ExactlyOnce, DAY);
    let _ = events(&mut s);
    connect(&mut s, false, 3 * DAY + 1);
    assert_eq!(
        events(&mut s),
        [Event::Dropped {
            message: mqgate_session::MessageId(1),
            reason: DropReason::Expired
        }]
    );
    assert_eq!(sent_ids(&mut s), [2]);
}

#[test]
fn online_qos1_beyond_the_window_waits_in_order_and_qos0_does_not() {
    let mut s = windowed(1);
    connect(&mut s, true, 0);
    let outcomes = deliver(
        &mut s,
        &[
            (1, QoS::AtLeastOnce),
            (2, QoS::AtLeastOnce),
            (3, QoS::AtMostOnce),
            (4, QoS::ExactlyOnce),
        ],
        0,
    );
    use DeliveryOutcome::*;
    assert_eq!(outcomes, [Sent, Queued, Sent, Queued]);
    let out = transmits(&mut s);
    assert_eq!(sent(&out).iter().map(|x| x.0).collect::<Vec<_>>(), [1, 3]);
    ack_all(&mut s, &out, 1);
    let out = transmits(&mut s);
    assert_eq!(sent(&out).iter().map(|x| x.0).collect::<Vec<_>>(), [2]);
    ack_all(&mut s, &out, 2);
    assert_eq!(sent_ids(&mut s), [4]);
}

#[test]
fn clean_session_end_reports_what_is_lost() {
    let mut s = windowed(1);
    connect(&mut s, true, 0);
    let _ = deliver(&mut s, &[(1, QoS::AtLeastOnce), (2, QoS::AtLeastOnce)], 0);
    let _ = s.connection_lost(1);
    let lost: Vec<_> = events(&mut s)
        .into_iter()
        .map(|e| match e {
            Event::Dropped {
                message,
                reason: DropReason::SessionDiscarded,
            } => message.0,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(lost, [1, 2]);
    assert_eq!((s.inflight_len(), s.queued_len()), (0, 0));
}
