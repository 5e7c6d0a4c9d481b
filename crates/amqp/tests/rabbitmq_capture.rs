//! A conversation with a real RabbitMQ (3.10.8), recorded in both directions by
//! `tests/captures/capture.py`: pika speaking the cloud SDK's sequence (SDK credentials,
//! confirm mode, a publish with headers, a consumer with prefetch 2 that acks and nacks).
//!
//! - Every frame of both directions decodes, and encodes back to the recorded bytes: the
//!   codec reads and writes exactly what RabbitMQ and pika do (but for the reserved
//!   `insist` bit of pika's connection.open, which is dropped).
//! - The recorded client stream, replayed into our state machine (it logs in: the
//!   credentials are the SDK's), gets the same methods back, in the same order, on the same
//!   channels as RabbitMQ answered; the deliveries, header and body frames included, are
//!   byte for byte RabbitMQ's.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use mqgate_amqp::{
    Config, Connection, Event, FieldValue, Frame, FrameDecoder, Message, Method, SdkAuthenticator,
    SdkUser, PROTOCOL_HEADER,
};

const CLIENT: &[u8] = include_bytes!("captures/rabbitmq-client.bin");
const SERVER: &[u8] = include_bytes!("captures/rabbitmq-server.bin");

/// Splits a recorded stream into frames, each with its bytes.
fn frames(stream: &[u8]) -> Vec<(Frame, Bytes)> {
    let decoder = FrameDecoder::new(131_072);
    let mut buf = BytesMut::from(stream);
    let mut out = Vec::new();
    loop {
        let before = buf.clone();
        match decoder.decode(&mut buf).unwrap() {
            Some(f) => {
                let used = before.len() - buf.len();
                out.push((f, before.freeze().slice(..used)));
            }
            None => break,
        }
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    out
}

fn client_frames() -> Vec<(Frame, Bytes)> {
    assert_eq!(&CLIENT[..8], PROTOCOL_HEADER);
    frames(&CLIENT[8..])
}

#[test]
fn every_recorded_frame_decodes_and_encodes_back_to_its_bytes() {
    for (name, frames) in [("client", client_frames()), ("server", frames(SERVER))] {
        assert!(frames.len() > 15, "{name}: {} frames", frames.len());
        for (frame, bytes) in frames {
            let mut again = BytesMut::new();
            frame.encode(&mut again).unwrap();
            let mut want = bytes.to_vec();
            if matches!(
                frame,
                Frame::Method {
                    method: Method::ConnectionOpen { .. },
                    ..
                }
            ) {
                // The one reserved argument pika sets: connection.open's `insist` bit, which
                // the codec reads and drops (it writes 0). Every other byte must match.
                let bits = want.len() - 2;
                want[bits] = 0;
            }
            assert_eq!(&again[..], &want[..], "{name}: {frame:?}");
        }
    }
}

#[test]
fn the_recording_holds_what_the_sdk_sends_and_rabbitmq_answers() {
    let client = client_frames();
    let Frame::Method {
        method:
            Method::ConnectionStartOk {
                client_properties,
                mechanism,
                ..
            },
        ..
    } = &client[0].0
    else {
        panic!()
    };
    assert_eq!(mechanism, "PLAIN");
    assert_eq!(
        client_properties
            .get("signKey")
            .and_then(FieldValue::as_str),
        Some("1700000000123")
    );
    let server = frames(SERVER);
    let Frame::Method {
        method:
            Method::ConnectionStart {
                server_properties,
                mechanisms,
                ..
            },
        ..
    } = &server[0].0
    else {
        panic!()
    };
    assert!(std::str::from_utf8(mechanisms).unwrap().contains("PLAIN"));
    assert_eq!(
        server_properties
            .get("product")
            .and_then(FieldValue::as_str),
        Some("RabbitMQ")
    );
    let Some(FieldValue::Table(caps)) = server_properties.get("capabilities") else {
        panic!()
    };
    assert_eq!(
        caps.get("publisher_confirms"),
        Some(&FieldValue::Bool(true))
    );
    // Four deliveries: three device messages with the SDK's headers as long strings, and
    // the message published in the recording, its seqId a 64-bit integer.
    let headers: Vec<_> = server
        .iter()
        .filter_map(|(f, _)| match f {
            Frame::Header { header, .. } => header.properties.headers.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(headers.len(), 4);
    let parent = headers
        .iter()
        .filter(|h| h.get("mqttParentTopic").and_then(FieldValue::as_str) == Some("parent"))
        .count();
    assert_eq!(parent, 3);
    assert!(headers
        .iter()
        .any(|h| h.get("seqId") == Some(&FieldValue::I64(1 << 40))));
}

fn lookup(u: &SdkUser) -> Option<String> {
    (u.access_key_id == "AK-id").then(|| "SK-secret".to_owned())
}

/// The messages RabbitMQ delivered, in order.
fn recorded_deliveries(server: &[(Frame, Bytes)]) -> VecDeque<(Message, bool)> {
    let mut out = VecDeque::new();
    let mut iter = server.iter().map(|(f, _)| f);
    while let Some(f) = iter.next() {
        if let Frame::Method {
            method:
                Method::BasicDeliver {
                    exchange,
                    routing_key,
                    redelivered,
                    ..
                },
            ..
        } = f
        {
            let Some(Frame::Header { header, .. }) = iter.next() else {
                panic!()
            };
            let Some(Frame::Body { payload, .. }) = iter.next() else {
                panic!()
            };
            out.push_back((
                Message {
                    exchange: exchange.clone(),
                    routing_key: routing_key.clone(),
                    properties: header.properties.clone(),
                    body: payload.clone(),
                },
                *redelivered,
            ));
        }
    }
    out
}

#[test]
fn replayed_into_our_state_machine_the_client_gets_rabbitmqs_answers() {
    let server = frames(SERVER);
    let mut queue = recorded_deliveries(&server);
    let mut conn = Connection::new(Config::default(), SdkAuthenticator::new(lookup), 0);
    let mut out = BytesMut::new();
    let mut now = 0;
    conn.feed(PROTOCOL_HEADER.as_slice(), now);
    for (_, bytes) in client_frames() {
        now += 10;
        conn.feed(&bytes, now);
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Publish {
                    confirm: Some(tag), ..
                } => conn.confirm(tag, true, now),
                Event::Consume {
                    channel,
                    consumer_tag,
                    ..
                } => {
                    conn.accept_consume(channel, &consumer_tag, now);
                    deliver_while_room(&mut conn, &mut queue, channel, &consumer_tag, now);
                }
                Event::Ready {
                    channel,
                    consumer_tag,
                } => deliver_while_room(&mut conn, &mut queue, channel, &consumer_tag, now),
                _ => {}
            }
        }
        while let Some(chunk) = conn.poll_transmit() {
            out.extend_from_slice(&chunk);
        }
    }
    assert!(
        queue.is_empty(),
        "{} recorded deliveries not made",
        queue.len()
    );
    assert!(conn.is_closed());
    let ours = frames(&out);

    // The same frames on the same channels, in the same order.
    let shape = |fs: &[(Frame, Bytes)]| -> Vec<(u16, &'static str, (u16, u16))> {
        fs.iter()
            .map(|(f, _)| match f {
                Frame::Method { channel, method } => (*channel, "method", method.id()),
                Frame::Header { channel, .. } => (*channel, "header", (0, 0)),
                Frame::Body { channel, .. } => (*channel, "body", (0, 0)),
                Frame::Heartbeat => (0, "heartbeat", (0, 0)),
            })
            .filter(|s| s.1 != "heartbeat")
            .collect()
    };
    assert_eq!(shape(&ours), shape(&server));

    // The deliveries are RabbitMQ's, byte for byte: consumer tag, delivery tags, exchange,
    // routing key, properties and body.
    let delivery_bytes = |fs: &[(Frame, Bytes)]| -> Vec<Bytes> {
        let mut in_delivery = false;
        fs.iter()
            .filter(|(f, _)| {
                match f {
                    Frame::Method { method, .. } => {
                        in_delivery = matches!(method, Method::BasicDeliver { .. })
                    }
                    Frame::Heartbeat => return false,
                    _ => {}
                }
                in_delivery
            })
            .map(|(_, b)| b.clone())
            .collect()
    };
    let recorded = delivery_bytes(&server);
    assert_eq!(recorded.len(), 12);
    assert_eq!(delivery_bytes(&ours), recorded);
}

fn deliver_while_room<A: mqgate_amqp::Authenticator>(
    conn: &mut Connection<A>,
    queue: &mut VecDeque<(Message, bool)>,
    channel: u16,
    consumer_tag: &str,
    now: u64,
) {
    while let Some((m, redelivered)) = queue.front() {
        if conn
            .deliver(channel, consumer_tag, m, *redelivered, now)
            .is_err()
        {
            return;
        }
        queue.pop_front();
    }
}
