//! The server state machine driven frame by frame, as the cloud SDKs and misbehaving
//! clients would.

// The shared helpers in support/ unwrap: a broken helper should fail the test loudly.
#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use mqgate_amqp::{
    sdk_password, BasicProperties, CloseArgs, CloseReason, Config, DeliverError, Event, FieldTable,
    FieldValue, Frame, Message, Method, ReplyCode, PROTOCOL_HEADER,
};
use support::{close_code, consume_method, device_message, Harness, SECRET, TS};

fn cfg() -> Config {
    Config::default()
}

fn consume(h: &mut Harness, channel: u16, queue: &str, tag: &str, args: FieldTable) -> String {
    h.send(channel, consume_method(queue, tag, args.clone()));
    let Some(Event::Consume {
        channel: c,
        consumer_tag,
        queue: q,
        arguments,
        no_ack: false,
        ..
    }) = h.event()
    else {
        panic!("no Consume event")
    };
    assert_eq!((c, q.as_str(), &arguments), (channel, queue, &args));
    // Nothing is sent before the broker accepts.
    assert!(h.methods().is_empty());
    h.conn.accept_consume(channel, &consumer_tag, h.now);
    assert_eq!(
        h.methods(),
        [(
            channel,
            Method::BasicConsumeOk {
                consumer_tag: consumer_tag.clone()
            }
        )]
    );
    consumer_tag
}

#[test]
fn sdk_login_opens_and_names_the_principal() {
    let h = Harness::open(cfg(), 10);
    let p = h.conn.principal().unwrap();
    assert_eq!(p.instance_id, "post-cn-test");
    assert_eq!(p.access_key_id, "AK-id");
    assert_eq!(h.conn.heartbeat_secs(), 10);
    assert_eq!(h.conn.frame_max(), 4096);
}

#[test]
fn start_advertises_plain_and_the_capabilities_clients_check() {
    let mut h = Harness::new(cfg());
    h.send_raw(&PROTOCOL_HEADER);
    let m = h.methods();
    let [(
        0,
        Method::ConnectionStart {
            server_properties,
            mechanisms,
            locales,
        },
    )] = &m[..]
    else {
        panic!("{m:?}")
    };
    assert_eq!(&mechanisms[..], b"PLAIN");
    assert_eq!(&locales[..], b"en_US");
    let Some(FieldValue::Table(caps)) = server_properties.get("capabilities") else {
        panic!()
    };
    for c in [
        "publisher_confirms",
        "basic.nack",
        "consumer_cancel_notify",
        "authentication_failure_close",
    ] {
        assert_eq!(caps.get(c), Some(&FieldValue::Bool(true)), "{c}");
    }
}

#[test]
fn wrong_password_is_refused_with_403_then_closed() {
    let mut h = Harness::new(cfg());
    h.send_raw(&PROTOCOL_HEADER);
    h.login(&sdk_password("not-the-secret", TS), TS);
    let m = h.methods();
    assert_eq!(close_code(&m[1].1), Some(403), "{m:?}");
    assert!(h.conn.principal().is_none());
    h.send(0, Method::ConnectionCloseOk);
    let Some(Event::Closed {
        reason: CloseReason::Refused { code, .. },
    }) = h.event()
    else {
        panic!()
    };
    assert_eq!(code, ReplyCode::AccessRefused);
    assert!(h.conn.is_closed());
}

#[test]
fn a_password_for_another_sign_key_is_refused() {
    // The HMAC must cover the signKey the client sent.
    let mut h = Harness::new(cfg());
    h.send_raw(&PROTOCOL_HEADER);
    h.login(&sdk_password(SECRET, "1700000000999"), TS);
    assert_eq!(close_code(&h.methods()[1].1), Some(403));
}

#[test]
fn refused_login_closes_by_itself_when_the_client_never_answers() {
    let mut h = Harness::new(cfg());
    h.send_raw(&PROTOCOL_HEADER);
    h.login("garbage", TS);
    let deadline = h.conn.poll_timeout().unwrap();
    assert_eq!(deadline, cfg().close_timeout_ms);
    h.conn.on_timeout(deadline);
    assert!(matches!(h.event(), Some(Event::Closed { .. })));
    assert!(h.conn.is_closed());
}

#[test]
fn unknown_virtual_host_is_530() {
    let mut h = Harness::new(cfg());
    h.send_raw(&PROTOCOL_HEADER);
    h.login(&sdk_password(SECRET, TS), TS);
    h.tune_and_open(16, 8192, 0, "/");
    let m = h.methods();
    assert_eq!(close_code(&m.last().unwrap().1), Some(530), "{m:?}");
    assert!(!h.conn.is_open());
}

#[test]
fn tune_ok_above_the_servers_frame_max_is_530() {
    let mut h = Harness::new(cfg());
    h.send_raw(&PROTOCOL_HEADER);
    h.login(&sdk_password(SECRET, TS), TS);
    h.send(
        0,
        Method::ConnectionTuneOk {
            channel_max: 0,
            frame_max: cfg().frame_max + 1,
            heartbeat: 0,
        },
    );
    assert_eq!(close_code(&h.methods().last().unwrap().1), Some(530));
}

#[test]
fn a_foreign_protocol_header_gets_ours_and_the_connection_ends() {
    let mut h = Harness::new(cfg());
    h.send_raw(b"AMQP\x01\x01\x00\x0a");
    while let Some(c) = h.conn.poll_transmit() {
        h.raw_out.extend_from_slice(&c);
    }
    assert_eq!(h.raw_out, PROTOCOL_HEADER);
    assert_eq!(
        h.event(),
        Some(Event::Closed {
            reason: CloseReason::BadProtocolHeader
        })
    );
}

#[test]
fn handshake_must_finish_in_time() {
    let mut h = Harness::new(cfg());
    h.send_raw(&PROTOCOL_HEADER[..4]);
    assert_eq!(h.conn.poll_timeout(), Some(10_000));
    h.conn.on_timeout(9_999);
    assert!(h.event().is_none());
    h.conn.on_timeout(10_000);
    assert_eq!(
        h.event(),
        Some(Event::Closed {
            reason: CloseReason::HandshakeTimeout
        })
    );
}

#[test]
fn confirmed_publish_carries_tag_headers_and_body() {
    let mut h = Harness::open(cfg(), 10);
    h.open_channel(1);
    h.send(1, Method::ConfirmSelect { nowait: false });
    assert_eq!(h.methods(), [(1, Method::ConfirmSelectOk)]);
    let mut tags = Vec::new();
    for seq in 1..=3i64 {
        let props = BasicProperties {
            message_id: Some(format!("{seq:032X}")),
            delivery_mode: Some(2),
            headers: Some(FieldTable::new().with("seqId", FieldValue::I64(seq))),
            ..BasicProperties::default()
        };
        // The third body spans three frames.
        let body = vec![seq as u8; if seq == 3 { 10_000 } else { 100 }];
        h.publish(1, "parent/sub/x", props.clone(), &body, 4088);
        let Some(Event::Publish {
            channel: 1,
            confirm: Some(tag),
            exchange,
            routing_key,
            mandatory: true,
            properties,
            body: got,
        }) = h.event()
        else {
            panic!()
        };
        assert_eq!((tag.channel(), tag.delivery_tag()), (1, seq as u64));
        tags.push(tag);
        assert_eq!(
            (exchange.as_str(), routing_key.as_str()),
            ("parent/sub/x", "parent/sub/x")
        );
        assert_eq!(properties, props);
        assert_eq!(&got[..], &body[..]);
    }
    h.conn.confirm(tags[1], true, 0);
    h.conn.confirm(tags[0], true, 0);
    h.conn.confirm(tags[2], false, 0);
    assert_eq!(
        h.methods(),
        [
            (
                1,
                Method::BasicAck {
                    delivery_tag: 2,
                    multiple: false
                }
            ),
            (
                1,
                Method::BasicAck {
                    delivery_tag: 1,
                    multiple: false
                }
            ),
            (
                1,
                Method::BasicNack {
                    delivery_tag: 3,
                    multiple: false,
                    requeue: false
                }
            ),
        ]
    );
}

#[test]
fn publish_without_confirm_mode_has_no_tag_and_empty_bodies_complete_on_the_header() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(3);
    h.publish(3, "t", BasicProperties::default(), b"", 10);
    assert!(matches!(
        h.event(),
        Some(Event::Publish { confirm: None, ref body, .. }) if body.is_empty()
    ));
}

#[test]
fn a_message_over_the_size_limit_closes_its_channel_with_406() {
    let mut h = Harness::open(
        Config {
            max_message_size: 1000,
            ..cfg()
        },
        0,
    );
    h.open_channel(1);
    h.open_channel(2);
    h.publish(1, "t", BasicProperties::default(), &[0; 1001], 4000);
    let m = h.methods();
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!((m[0].0, close_code(&m[0].1)), (1, Some(406)));
    assert!(matches!(
        h.event(),
        Some(Event::ChannelClosed { channel: 1, .. })
    ));
    assert!(
        h.event().is_none(),
        "the body frame on the closing channel is dropped"
    );
    // The other channel and the connection go on.
    h.publish(2, "t", BasicProperties::default(), b"ok", 10);
    assert!(matches!(h.event(), Some(Event::Publish { channel: 2, .. })));
    // The client's close-ok frees the channel number.
    h.send(1, Method::ChannelCloseOk);
    h.open_channel(1);
}

#[test]
fn server_chooses_consumer_tags_when_asked_and_refuses_a_reused_one() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    let t1 = consume(&mut h, 1, "parent", "", FieldTable::new());
    let t2 = consume(&mut h, 1, "parent", "", FieldTable::new());
    assert!(t1.starts_with("amq.ctag-") && t2.starts_with("amq.ctag-") && t1 != t2);
    let go_tag = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        consume(&mut h, 1, "parent", go_tag, FieldTable::new()),
        go_tag
    );
    h.send(1, consume_method("parent", go_tag, FieldTable::new()));
    assert_eq!(close_code(&h.methods()[0].1), Some(530));
}

#[test]
fn status_consumer_arguments_reach_the_broker() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    let args = FieldTable::new().with("GROUP_ID", FieldValue::long_str("GID_backend"));
    let tag = consume(&mut h, 1, "STATUS", "", args);
    let status = Message {
        exchange: "STATUS".into(),
        routing_key: "STATUS".into(),
        body: Bytes::from_static(br#"{"clientId":"GID_a@@@1","eventType":"connect"}"#),
        ..Message::default()
    };
    assert_eq!(h.conn.deliver(1, &tag, &status, false, 0), Ok(1));
    h.send(
        1,
        Method::BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    assert_eq!(
        h.event(),
        Some(Event::Ack {
            channel: 1,
            delivery_tags: vec![1]
        })
    );
}

#[test]
fn refused_consumer_closes_its_channel() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    h.send(1, consume_method("nope", "", FieldTable::new()));
    let Some(Event::Consume { consumer_tag, .. }) = h.event() else {
        panic!()
    };
    h.conn
        .refuse_consume(1, &consumer_tag, ReplyCode::NotFound, "no queue 'nope'", 0);
    let m = h.methods();
    assert_eq!((m[0].0, close_code(&m[0].1)), (1, Some(404)));
    assert!(matches!(
        h.event(),
        Some(Event::ChannelClosed { channel: 1, .. })
    ));
    assert!(h.conn.is_open());
}

#[test]
fn deliveries_carry_headers_and_split_into_frames_of_the_negotiated_size() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    let tag = consume(&mut h, 1, "parent", "", FieldTable::new());
    let body = Bytes::from((0..10_000u32).map(|i| i as u8).collect::<Vec<_>>());
    let msg = device_message(7, body.clone());
    assert_eq!(h.conn.deliver(1, &tag, &msg, false, 0), Ok(1));
    let frames = h.frames();
    let [Frame::Method {
        method:
            Method::BasicDeliver {
                delivery_tag: 1,
                redelivered: false,
                ref exchange,
                ..
            },
        ..
    }, Frame::Header { ref header, .. }, ref bodies @ ..] = frames[..]
    else {
        panic!("{frames:?}")
    };
    assert_eq!(exchange, "parent/sub/dev");
    assert_eq!(header.body_size, 10_000);
    assert_eq!(header.properties, msg.properties);
    let mut joined = Vec::new();
    for f in bodies {
        let Frame::Body {
            channel: 1,
            payload,
        } = f
        else {
            panic!()
        };
        assert!(payload.len() <= 4096 - 8);
        joined.extend_from_slice(payload);
    }
    assert_eq!(bodies.len(), 3);
    assert_eq!(joined, body);
}

#[test]
fn per_consumer_prefetch_is_honoured_and_acks_reopen_the_window() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    h.send(
        1,
        Method::BasicQos {
            prefetch_size: 0,
            prefetch_count: 2,
            global: false,
        },
    );
    assert_eq!(h.methods(), [(1, Method::BasicQosOk)]);
    let tag = consume(&mut h, 1, "parent", "", FieldTable::new());
    let msg = device_message(1, Bytes::from_static(b"x"));
    assert_eq!(h.conn.deliver(1, &tag, &msg, false, 0), Ok(1));
    assert_eq!(h.conn.deliver(1, &tag, &msg, false, 0), Ok(2));
    assert!(!h.conn.can_deliver(1, &tag));
    assert_eq!(
        h.conn.deliver(1, &tag, &msg, false, 0),
        Err(DeliverError::WindowFull)
    );
    h.send(
        1,
        Method::BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    assert_eq!(
        h.events(),
        [
            Event::Ack {
                channel: 1,
                delivery_tags: vec![1]
            },
            Event::Ready {
                channel: 1,
                consumer_tag: tag.clone()
            },
        ]
    );
    assert_eq!(h.conn.deliver(1, &tag, &msg, false, 0), Ok(3));
    assert!(!h.conn.can_deliver(1, &tag));
    // nack (requeue = false, as the SDKs do), then reject.
    h.send(
        1,
        Method::BasicNack {
            delivery_tag: 2,
            multiple: false,
            requeue: false,
        },
    );
    // Delivery 3 filled the window again, so its opening is announced even though no
    // delivery was refused (a driver may check can_deliver instead of trying).
    assert_eq!(
        h.events(),
        [
            Event::Nack {
                channel: 1,
                delivery_tags: vec![2],
                requeue: false
            },
            Event::Ready {
                channel: 1,
                consumer_tag: tag.clone()
            },
        ]
    );
    assert_eq!(h.conn.deliver(1, &tag, &msg, false, 0), Ok(4));
    h.send(
        1,
        Method::BasicReject {
            delivery_tag: 4,
            requeue: true,
        },
    );
    assert_eq!(
        h.event(),
        Some(Event::Nack {
            channel: 1,
            delivery_tags: vec![4],
            requeue: true
        })
    );
}

#[test]
fn multiple_acks_expand_and_unknown_tags_close_the_channel_with_406() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    let tag = consume(&mut h, 1, "parent", "", FieldTable::new());
    let msg = device_message(1, Bytes::from_static(b"x"));
    for _ in 0..5 {
        h.conn.deliver(1, &tag, &msg, false, 0).unwrap();
    }
    h.send(
        1,
        Method::BasicAck {
            delivery_tag: 3,
            multiple: true,
        },
    );
    assert_eq!(
        h.event(),
        Some(Event::Ack {
            channel: 1,
            delivery_tags: vec![1, 2, 3]
        })
    );
    h.send(
        1,
        Method::BasicNack {
            delivery_tag: 0,
            multiple: true,
            requeue: true,
        },
    );
    assert_eq!(
        h.event(),
        Some(Event::Nack {
            channel: 1,
            delivery_tags: vec![4, 5],
            requeue: true
        })
    );
    h.conn.deliver(1, &tag, &msg, false, 0).unwrap();
    h.methods();
    // Tag 2 was acknowledged already.
    h.send(
        1,
        Method::BasicAck {
            delivery_tag: 2,
            multiple: false,
        },
    );
    let m = h.methods();
    assert_eq!((m[0].0, close_code(&m[0].1)), (1, Some(406)));
    assert_eq!(
        h.event(),
        Some(Event::ChannelClosed {
            channel: 1,
            consumers: vec![tag],
            unacked: vec![6]
        })
    );
}

#[test]
fn global_prefetch_bounds_the_whole_channel() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    h.send(
        1,
        Method::BasicQos {
            prefetch_size: 0,
            prefetch_count: 3,
            global: true,
        },
    );
    h.methods();
    let a = consume(&mut h, 1, "p1", "", FieldTable::new());
    let b = consume(&mut h, 1, "p2", "", FieldTable::new());
    let msg = device_message(1, Bytes::from_static(b"x"));
    assert!(h.conn.deliver(1, &a, &msg, false, 0).is_ok());
    assert!(h.conn.deliver(1, &a, &msg, false, 0).is_ok());
    assert!(h.conn.deliver(1, &b, &msg, false, 0).is_ok());
    assert_eq!(
        h.conn.deliver(1, &b, &msg, false, 0),
        Err(DeliverError::WindowFull)
    );
    assert_eq!(
        h.conn.deliver(1, &a, &msg, false, 0),
        Err(DeliverError::WindowFull)
    );
    h.send(
        1,
        Method::BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    let mut ready: Vec<String> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Ready { consumer_tag, .. } => Some(consumer_tag),
            _ => None,
        })
        .collect();
    ready.sort();
    let mut both = vec![a, b];
    both.sort();
    assert_eq!(ready, both);
}

#[test]
fn prefetch_size_is_not_implemented() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    h.send(
        1,
        Method::BasicQos {
            prefetch_size: 1024,
            prefetch_count: 0,
            global: false,
        },
    );
    assert_eq!(close_code(&h.methods()[0].1), Some(540));
}

#[test]
fn flow_pauses_and_resumes_deliveries() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    let tag = consume(&mut h, 1, "parent", "", FieldTable::new());
    h.send(1, Method::ChannelFlow { active: false });
    assert_eq!(h.methods(), [(1, Method::ChannelFlowOk { active: false })]);
    let msg = device_message(1, Bytes::from_static(b"x"));
    assert_eq!(
        h.conn.deliver(1, &tag, &msg, false, 0),
        Err(DeliverError::WindowFull)
    );
    h.send(1, Method::ChannelFlow { active: true });
    assert_eq!(
        h.events(),
        [Event::Ready {
            channel: 1,
            consumer_tag: tag.clone()
        }]
    );
    assert_eq!(h.conn.deliver(1, &tag, &msg, false, 0), Ok(1));
}

#[test]
fn cancel_and_recover() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    let tag = consume(&mut h, 1, "parent", "", FieldTable::new());
    let msg = device_message(1, Bytes::from_static(b"x"));
    h.conn.deliver(1, &tag, &msg, false, 0).unwrap();
    h.conn.deliver(1, &tag, &msg, false, 0).unwrap();
    h.methods();
    h.send(
        1,
        Method::BasicCancel {
            consumer_tag: tag.clone(),
            nowait: false,
        },
    );
    assert_eq!(
        h.methods(),
        [(
            1,
            Method::BasicCancelOk {
                consumer_tag: tag.clone()
            }
        )]
    );
    assert_eq!(
        h.event(),
        Some(Event::Cancel {
            channel: 1,
            consumer_tag: tag.clone()
        })
    );
    assert_eq!(
        h.conn.deliver(1, &tag, &msg, false, 0),
        Err(DeliverError::NoConsumer)
    );
    // The cancelled consumer's deliveries are still outstanding: recover requeues them.
    h.send(1, Method::BasicRecover { requeue: true });
    assert_eq!(h.methods(), [(1, Method::BasicRecoverOk)]);
    assert_eq!(
        h.event(),
        Some(Event::Nack {
            channel: 1,
            delivery_tags: vec![1, 2],
            requeue: true
        })
    );
}

#[test]
fn client_channel_close_releases_unacked_and_answers_close_ok() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(5);
    let tag = consume(&mut h, 5, "parent", "", FieldTable::new());
    let msg = device_message(1, Bytes::from_static(b"x"));
    h.conn.deliver(5, &tag, &msg, false, 0).unwrap();
    h.methods();
    h.send(
        5,
        Method::ChannelClose(CloseArgs::new(ReplyCode::ReplySuccess, "bye", (0, 0))),
    );
    assert_eq!(h.methods(), [(5, Method::ChannelCloseOk)]);
    assert_eq!(
        h.event(),
        Some(Event::ChannelClosed {
            channel: 5,
            consumers: vec![tag.clone()],
            unacked: vec![1]
        })
    );
    assert_eq!(
        h.conn.deliver(5, &tag, &msg, false, 0),
        Err(DeliverError::ChannelClosed)
    );
    h.open_channel(5);
}

#[test]
fn client_connection_close_releases_every_channel_then_closes() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    h.open_channel(2);
    h.send(
        0,
        Method::ConnectionClose(CloseArgs::new(ReplyCode::ReplySuccess, "OK", (0, 0))),
    );
    assert_eq!(h.methods(), [(0, Method::ConnectionCloseOk)]);
    let ev = h.events();
    assert!(matches!(ev[0], Event::ChannelClosed { channel: 1, .. }));
    assert!(matches!(ev[1], Event::ChannelClosed { channel: 2, .. }));
    assert!(matches!(
        ev[2],
        Event::Closed {
            reason: CloseReason::Client {
                reply_code: 200,
                ..
            }
        }
    ));
    assert!(h.conn.is_closed());
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn server_close_waits_for_close_ok() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    h.conn
        .close(ReplyCode::ConnectionForced, "shutting down", 0);
    assert_eq!(close_code(&h.methods()[0].1), Some(320));
    assert!(matches!(
        h.event(),
        Some(Event::ChannelClosed { channel: 1, .. })
    ));
    assert!(h.event().is_none());
    // A publish in flight is dropped; close-ok ends it.
    h.publish(1, "t", BasicProperties::default(), b"late", 10);
    h.send(0, Method::ConnectionCloseOk);
    assert!(matches!(
        h.event(),
        Some(Event::Closed {
            reason: CloseReason::Server {
                code: ReplyCode::ConnectionForced,
                ..
            }
        })
    ));
}

#[test]
fn heartbeats_are_sent_when_idle_and_silence_kills_the_connection() {
    let mut h = Harness::open(cfg(), 10);
    h.open_channel(1);
    // Sent at half the interval of idleness, expected within two intervals.
    assert_eq!(h.conn.poll_timeout(), Some(5_000));
    h.now = 5_000;
    h.conn.on_timeout(5_000);
    assert_eq!(h.frames(), [Frame::Heartbeat]);
    // The client's heartbeat keeps it alive.
    h.now = 15_000;
    h.send_raw(&[8, 0, 0, 0, 0, 0, 0, 0xCE]);
    h.conn.on_timeout(15_000);
    assert_eq!(h.frames(), [Frame::Heartbeat]);
    assert!(h.conn.is_open());
    let deadline = 15_000 + 20_000;
    let mut t = 15_000;
    while !h.conn.is_closed() {
        t = h.conn.poll_timeout().unwrap();
        assert!(t <= deadline);
        h.conn.on_timeout(t);
    }
    assert_eq!(t, deadline);
    let ev = h.events();
    assert!(matches!(ev[0], Event::ChannelClosed { channel: 1, .. }));
    assert_eq!(
        ev[1],
        Event::Closed {
            reason: CloseReason::HeartbeatTimeout
        }
    );
}

#[test]
fn exchange_and_queue_management_is_refused_on_the_channel_only() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    // queue.declare, as a generic client would send it.
    let mut args = bytes::BytesMut::new();
    args.extend_from_slice(&[0, 0, 5, b'q', b'u', b'e', b'u', b'e', 0, 0, 0, 0, 0]);
    h.send(
        1,
        Method::Other {
            class_id: 50,
            method_id: 10,
            arguments: args.freeze(),
        },
    );
    let m = h.methods();
    assert_eq!((m[0].0, close_code(&m[0].1)), (1, Some(403)), "{m:?}");
    assert!(h.conn.is_open());
    h.send(1, Method::ChannelCloseOk);
    h.open_channel(1);
    // basic.get is not implemented: a connection error.
    h.send(
        1,
        Method::Other {
            class_id: 60,
            method_id: 70,
            arguments: Bytes::from_static(&[0, 0, 1, b'q', 0]),
        },
    );
    let m = h.methods();
    assert_eq!((m[0].0, close_code(&m[0].1)), (0, Some(540)));
}

/// Raw frames a broken client might send, and the reply code each earns.
#[test]
fn protocol_violations_get_their_reply_codes() {
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unknown method", method_frame(1, &[0, 60, 0, 99]), 540),
        (
            "method on a channel never opened",
            method_frame(9, &[0, 85, 0, 10, 0]),
            504,
        ),
        (
            "body without a publish",
            vec![3, 0, 1, 0, 0, 0, 1, b'x', 0xCE],
            505,
        ),
        ("header without a publish", header_frame(1), 505),
        (
            "arguments cut short",
            method_frame(1, &[0, 60, 0, 80, 0, 0]),
            502,
        ),
        (
            "trailing bytes",
            method_frame(1, &[0, 85, 0, 10, 0, 0]),
            502,
        ),
        (
            "connection method on a channel",
            method_frame(1, &[0, 10, 0, 51]),
            503,
        ),
        (
            "server method from a client",
            method_frame(1, &[0, 60, 0, 11]),
            503,
        ),
        ("bad frame end", vec![8, 0, 0, 0, 0, 0, 0, 0xCD], 501),
        ("unknown frame type", vec![4, 0, 0, 0, 0, 0, 0, 0xCE], 501),
        ("frame over frame_max", vec![3, 0, 1, 0, 0, 0x20, 0, 0], 501),
        (
            "heartbeat on a channel",
            vec![8, 0, 1, 0, 0, 0, 0, 0xCE],
            501,
        ),
        (
            "immediate publish",
            method_frame(1, &[0, 60, 0, 40, 0, 0, 0, 1, b't', 2]),
            540,
        ),
    ];
    for (what, bytes, code) in cases {
        let mut h = Harness::open(cfg(), 0);
        h.open_channel(1);
        h.send_raw(&bytes);
        let m = h.methods();
        assert_eq!(m.len(), 1, "{what}: {m:?}");
        assert_eq!(
            (m[0].0, close_code(&m[0].1)),
            (0, Some(code)),
            "{what}: {m:?}"
        );
        let ev = h.events();
        assert!(
            matches!(ev[0], Event::ChannelClosed { channel: 1, .. }),
            "{what}"
        );
        if code == 501 {
            // The stream cannot be read past a malformed frame: it ends at once.
            assert!(h.conn.is_closed(), "{what}");
        } else {
            assert!(!h.conn.is_closed(), "{what}");
            h.send(0, Method::ConnectionCloseOk);
            assert!(h.conn.is_closed(), "{what}");
        }
    }
}

#[test]
fn a_method_in_the_middle_of_content_is_unexpected() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    // A publish whose content never comes: the next method is out of place.
    start_message(&mut h, 1, 10, 0);
    h.send(
        1,
        Method::BasicQos {
            prefetch_size: 0,
            prefetch_count: 1,
            global: false,
        },
    );
    assert_eq!(close_code(&h.methods()[0].1), Some(505));
}

#[test]
fn channel_numbers_above_channel_max_and_reopened_channels_are_504() {
    let mut h = Harness::open(
        Config {
            channel_max: 4,
            ..cfg()
        },
        0,
    );
    h.send(5, Method::ChannelOpen);
    assert_eq!(close_code(&h.methods()[0].1), Some(504));
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    h.send(1, Method::ChannelOpen);
    assert_eq!(close_code(&h.methods()[0].1), Some(504));
}

fn method_frame(channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![1];
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(0xCE);
    v
}

fn header_frame(channel: u16) -> Vec<u8> {
    let mut payload = vec![0, 60, 0, 0];
    payload.extend_from_slice(&1u64.to_be_bytes());
    payload.extend_from_slice(&[0, 0]);
    let mut v = vec![2];
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(&payload);
    v.push(0xCE);
    v
}

#[test]
fn a_lost_socket_releases_every_channel() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    let tag = consume(&mut h, 1, "parent", "", FieldTable::new());
    let msg = device_message(1, Bytes::from_static(b"x"));
    h.conn.deliver(1, &tag, &msg, false, 0).unwrap();
    h.conn.connection_lost();
    assert_eq!(
        h.events(),
        [
            Event::ChannelClosed {
                channel: 1,
                consumers: vec![tag],
                unacked: vec![1]
            },
            Event::Closed {
                reason: CloseReason::ConnectionLost
            },
        ]
    );
    h.conn.connection_lost();
    assert!(h.event().is_none(), "Closed comes once");
}

#[test]
fn a_socket_lost_after_a_refused_login_keeps_the_refusal_as_reason() {
    // Clients may drop the socket on connection.close instead of answering close-ok.
    let mut h = Harness::new(cfg());
    h.send_raw(&PROTOCOL_HEADER);
    h.login("wrong", TS);
    h.conn.connection_lost();
    assert!(matches!(
        h.event(),
        Some(Event::Closed {
            reason: CloseReason::Refused {
                code: ReplyCode::AccessRefused,
                ..
            }
        })
    ));
}

/// publish + header announcing `size`, and `sent` bytes of body (no body frame for 0).
fn start_message(h: &mut Harness, channel: u16, size: u64, sent: usize) {
    let mut b = bytes::BytesMut::new();
    Frame::Method {
        channel,
        method: Method::BasicPublish {
            exchange: "t".into(),
            routing_key: "t".into(),
            mandatory: false,
            immediate: false,
        },
    }
    .encode(&mut b)
    .unwrap();
    Frame::Header {
        channel,
        header: mqgate_amqp::ContentHeader {
            body_size: size,
            properties: BasicProperties::default(),
        },
    }
    .encode(&mut b)
    .unwrap();
    if sent > 0 {
        Frame::Body {
            channel,
            payload: Bytes::from(vec![0u8; sent]),
        }
        .encode(&mut b)
        .unwrap();
    }
    h.send_raw(&b);
}

#[test]
fn unfinished_messages_over_all_channels_are_bounded() {
    let config = Config {
        max_message_size: 10_000,
        max_pending_content: 5_000,
        ..cfg()
    };
    let mut h = Harness::open(config.clone(), 0);
    for c in 1..=3 {
        h.open_channel(c);
    }
    start_message(&mut h, 1, 10_000, 2_000);
    start_message(&mut h, 2, 10_000, 2_000);
    assert!(h.methods().is_empty());
    start_message(&mut h, 3, 10_000, 2_000);
    assert_eq!(close_code(&h.methods()[0].1), Some(506));

    // A channel closed mid-message (by the server: a client may not send a method in the
    // middle of content) gives its bytes back.
    let mut h = Harness::open(config, 0);
    h.open_channel(1);
    h.open_channel(2);
    start_message(&mut h, 1, 10_000, 4_000);
    h.conn
        .close_channel(1, ReplyCode::PreconditionFailed, "enough", 0);
    assert_eq!(close_code(&h.methods()[0].1), Some(406));
    h.publish(2, "t", BasicProperties::default(), &[0; 4_500], 4_000);
    let m = h.methods();
    assert!(m.is_empty(), "{m:?}");
    assert!(matches!(
        h.events().last(),
        Some(Event::Publish { channel: 2, body, .. }) if body.len() == 4_500
    ));
}

#[test]
fn a_single_frame_body_is_a_slice_of_the_receive_buffer() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    let mut wire = bytes::BytesMut::new();
    for f in [
        Frame::Method {
            channel: 1,
            method: Method::BasicPublish {
                exchange: "t".into(),
                routing_key: "t".into(),
                mandatory: false,
                immediate: false,
            },
        },
        Frame::Header {
            channel: 1,
            header: mqgate_amqp::ContentHeader {
                body_size: 3000,
                properties: BasicProperties::default(),
            },
        },
        Frame::Body {
            channel: 1,
            payload: Bytes::from(vec![9u8; 3000]),
        },
    ] {
        f.encode(&mut wire).unwrap();
    }
    // Read straight into the connection's buffer, as a driver using receive_buffer does.
    let rx = h.conn.receive_buffer();
    rx.reserve(wire.len());
    let start = rx.as_ptr() as usize + rx.len();
    rx.extend_from_slice(&wire);
    let end = start + wire.len();
    h.conn.process(1);
    let Some(Event::Publish { body, .. }) = h.event() else {
        panic!()
    };
    let at = body.as_ptr() as usize;
    assert!(at >= start && at + body.len() <= end, "the body was copied");
    assert_eq!(&body[..], &[9u8; 3000][..]);
}

#[test]
fn a_delivered_body_goes_out_as_slices_of_the_message() {
    let mut h = Harness::open(cfg(), 0);
    h.open_channel(1);
    let tag = consume(&mut h, 1, "parent", "", FieldTable::new());
    let body = Bytes::from(vec![5u8; 10_000]);
    h.conn
        .deliver(1, &tag, &device_message(1, body.clone()), false, 0)
        .unwrap();
    let (lo, hi) = (body.as_ptr() as usize, body.as_ptr() as usize + body.len());
    let mut from_body = 0;
    while let Some(chunk) = h.conn.poll_transmit() {
        let at = chunk.as_ptr() as usize;
        if at >= lo && at < hi {
            from_body += chunk.len();
        }
    }
    // Three body frames of at most 4088 bytes, all three sent from the message's buffer.
    assert_eq!(from_body, 10_000);
}

#[test]
fn a_late_confirm_does_not_acknowledge_a_message_of_a_reopened_channel() {
    // The Go SDK reopens a closed send channel, and gets the same number back; a confirm the
    // broker sends for a publish of the old channel must not ack the new channel's tag 1.
    let mut h = Harness::open(cfg(), 0);
    let publish_one = |h: &mut Harness| {
        h.open_channel(1);
        h.send(1, Method::ConfirmSelect { nowait: false });
        h.methods();
        h.publish(1, "parent/x", BasicProperties::default(), b"m", 10);
        let Some(Event::Publish {
            confirm: Some(tag), ..
        }) = h.event()
        else {
            panic!()
        };
        tag
    };
    let old = publish_one(&mut h);
    h.send(
        1,
        Method::ChannelClose(CloseArgs::new(ReplyCode::ReplySuccess, "", (0, 0))),
    );
    h.methods();
    h.events();
    let new = publish_one(&mut h);
    assert_eq!(
        (old.channel(), old.delivery_tag()),
        (new.channel(), new.delivery_tag())
    );
    h.conn.confirm(old, true, 0);
    assert!(
        h.methods().is_empty(),
        "the old channel's confirm reached the new channel"
    );
    h.conn.confirm(new, true, 0);
    assert_eq!(
        h.methods(),
        [(
            1,
            Method::BasicAck {
                delivery_tag: 1,
                multiple: false
            }
        )]
    );
}
