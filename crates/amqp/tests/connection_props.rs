//! Random client conversations: well-formed frames in random order on a few channels, cut
//! into random reads, fed to a logged-in connection whose driver answers every event
//! (`mqgate_amqp::fuzzing::connection_invariants`: no panic, `Closed` once and last, the
//! transmit side agrees, deliveries only within the window). Random bytes rarely get past
//! the frame decoder; these reach deep into the state machine.

#![allow(clippy::unwrap_used)]

mod support;

use bytes::{Bytes, BytesMut};
use mqgate_amqp::fuzzing::{connection_invariants, connection_script};
use mqgate_amqp::{
    BasicProperties, CloseArgs, ContentHeader, FieldTable, FieldValue, Frame, Method, ReplyCode,
};
use proptest::prelude::*;
use support::consume_method;

fn client_method() -> impl Strategy<Value = Method> {
    let tag = 0u64..8;
    let b = any::<bool>;
    let ctag = prop::sample::select(vec!["", "a", "b"]).prop_map(str::to_owned);
    prop_oneof![
        3 => Just(Method::ChannelOpen),
        1 => Just(Method::ChannelClose(CloseArgs::new(ReplyCode::ReplySuccess, "bye", (0, 0)))),
        1 => Just(Method::ChannelCloseOk),
        1 => b().prop_map(|active| Method::ChannelFlow { active }),
        1 => b().prop_map(|nowait| Method::ConfirmSelect { nowait }),
        1 => (0u16..4, b()).prop_map(|(prefetch_count, global)| Method::BasicQos {
            prefetch_size: 0,
            prefetch_count,
            global
        }),
        3 => (prop::sample::select(vec!["parent", "STATUS"]), ctag.clone(), b(), b()).prop_map(
            |(queue, consumer_tag, no_ack, nowait)| Method::BasicConsume {
                queue: queue.into(),
                consumer_tag,
                no_local: false,
                no_ack,
                exclusive: false,
                nowait,
                arguments: FieldTable::new().with("GROUP_ID", FieldValue::long_str("GID_x")),
            }
        ),
        1 => (ctag, b()).prop_map(|(consumer_tag, nowait)| Method::BasicCancel { consumer_tag, nowait }),
        3 => (tag.clone(), b()).prop_map(|(delivery_tag, multiple)| Method::BasicAck {
            delivery_tag,
            multiple
        }),
        1 => (tag.clone(), b(), b()).prop_map(|(delivery_tag, multiple, requeue)| Method::BasicNack {
            delivery_tag,
            multiple,
            requeue
        }),
        1 => (tag, b()).prop_map(|(delivery_tag, requeue)| Method::BasicReject { delivery_tag, requeue }),
        1 => b().prop_map(|requeue| Method::BasicRecover { requeue }),
        1 => Just(Method::Other { class_id: 50, method_id: 10, arguments: Bytes::new() }),
    ]
}

/// One step of a client: a method, or a whole publish (method, header, bodies), sometimes
/// cut short; on channels 1 to 3 (rarely 0).
fn step() -> impl Strategy<Value = Vec<Frame>> {
    let channel = prop_oneof![10 => 1u16..4, 1 => Just(0u16)];
    prop_oneof![
        3 => (channel.clone(), client_method()).prop_map(|(channel, method)| vec![Frame::Method { channel, method }]),
        2 => (channel, 0usize..9000, 1usize..5000, prop::option::of(0usize..3)).prop_map(
            |(channel, size, piece, cut)| {
                let mut frames = vec![
                    Frame::Method {
                        channel,
                        method: Method::BasicPublish {
                            exchange: "parent/x".into(),
                            routing_key: "parent/x".into(),
                            mandatory: true,
                            immediate: false,
                        },
                    },
                    Frame::Header {
                        channel,
                        header: ContentHeader {
                            body_size: size as u64,
                            properties: BasicProperties {
                                message_id: Some("0".repeat(32)),
                                ..BasicProperties::default()
                            },
                        },
                    },
                ];
                let body = vec![1u8; size];
                frames.extend(body.chunks(piece).map(|c| Frame::Body {
                    channel,
                    payload: Bytes::copy_from_slice(c),
                }));
                if let Some(cut) = cut {
                    frames.truncate(frames.len().saturating_sub(cut));
                }
                frames
            }
        ),
        1 => Just(vec![Frame::Heartbeat]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_client_conversations_keep_the_invariants(steps in prop::collection::vec(step(), 1..40)) {
        let mut wire = BytesMut::new();
        for f in steps.iter().flatten() {
            f.encode(&mut wire).unwrap();
        }
        connection_invariants(&wire);
    }
}

#[test]
fn a_plain_conversation_reaches_every_kind_of_event() {
    // A check on the driver the invariants run: a sensible conversation gets far.
    let frames = [
        Method::ChannelOpen,
        Method::ConfirmSelect { nowait: false },
        Method::BasicQos {
            prefetch_size: 0,
            prefetch_count: 1,
            global: false,
        },
        consume_method("parent", "", FieldTable::new()),
        Method::BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
        Method::BasicNack {
            delivery_tag: 2,
            multiple: false,
            requeue: true,
        },
        Method::BasicCancel {
            consumer_tag: "amq.ctag-1".into(),
            nowait: false,
        },
        Method::ChannelClose(CloseArgs::new(ReplyCode::ReplySuccess, "", (0, 0))),
    ];
    // One read per frame, 100 ms apart.
    let wires: Vec<BytesMut> = frames
        .into_iter()
        .map(|method| {
            let mut wire = BytesMut::new();
            Frame::Method { channel: 1, method }
                .encode(&mut wire)
                .unwrap();
            wire
        })
        .collect();
    let pieces: Vec<(u64, &[u8])> = wires.iter().map(|w| (100, &w[..])).collect();
    let events = connection_script(&pieces);
    assert_eq!(
        events,
        [
            "Opened",
            "Consume",
            "Ack",
            "Ready",
            "Nack",
            "Ready",
            "Cancel",
            "ChannelClosed"
        ],
    );
}
