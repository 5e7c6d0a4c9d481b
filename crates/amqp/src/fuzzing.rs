//! Invariant checks over arbitrary input, shared by the fuzz targets (`fuzz/fuzz_targets/
//! amqp_frame.rs`, `amqp_connection.rs`) and the tests that replay their findings.

use bytes::BytesMut;

use crate::{
    sdk_password, Config, Connection, Event, FieldTable, FieldValue, Frame, FrameDecoder, Message,
    Method, SdkAuthenticator, SdkUser, PROTOCOL_HEADER,
};

/// Decodes `data` as a frame stream, whole and split in two at a position taken from its
/// first byte. Panics only when an invariant breaks: the split changes nothing, and every
/// decoded frame encodes, and decodes again to itself (compared as bytes, so NaN floats
/// compare equal).
pub fn frame_invariants(data: &[u8]) {
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let whole = decode_stream(data, data.len());
    let parts = decode_stream(data, split);
    assert_eq!(
        encode_all(&whole),
        encode_all(&parts),
        "the split changed the frames"
    );
    let decoder = FrameDecoder::new(1 << 20);
    for frame in &whole {
        let mut once = BytesMut::new();
        frame.encode(&mut once).expect("a decoded frame encodes");
        let mut buf = once.clone();
        let again = decoder
            .decode(&mut buf)
            .expect("re-encoded frame decodes")
            .expect("re-encoded frame is complete");
        assert!(buf.is_empty(), "re-encoded frame has trailing bytes");
        let mut twice = BytesMut::new();
        again.encode(&mut twice).expect("encodes again");
        assert_eq!(once, twice, "decode(encode(frame)) differs");
    }
}

fn decode_stream(data: &[u8], split: usize) -> Vec<Frame> {
    let decoder = FrameDecoder::new(FRAME_LIMIT);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in [&data[..split], &data[split..]] {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(_) => return out,
            }
        }
    }
    out
}

const FRAME_LIMIT: u32 = 1 << 16;

fn encode_all(frames: &[Frame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for f in frames {
        f.encode(&mut out).expect("a decoded frame encodes");
    }
    out.to_vec()
}

/// Drives a server connection through a valid login, then feeds `data` as the client's
/// further bytes in pieces (each piece's length taken from the data), acting as a broker
/// would on every event (accepting consumers, confirming publishes, delivering a message),
/// with time moving on. Panics only when an invariant breaks: the connection never panics,
/// `Closed` comes at most once and last, nothing is sent after the transmit side says the
/// connection is closed, and a delivery is only accepted within the window. Returns the
/// names of the events seen, in order, so a test can tell how far the input went.
pub fn connection_invariants(data: &[u8]) -> Vec<&'static str> {
    let mut conn = logged_in();
    let mut rest = data;
    let mut pieces = Vec::new();
    while !rest.is_empty() {
        let n = usize::from(rest[0] % 64).max(1).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        pieces.push((u64::from(piece[0] % 4) * 300, piece));
    }
    drive(&mut conn, &pieces)
}

/// [`connection_invariants`] with the reads given: each piece is fed after its delay in
/// milliseconds. For tests that need reads at frame boundaries.
pub fn connection_script(pieces: &[(u64, &[u8])]) -> Vec<&'static str> {
    let mut conn = logged_in();
    drive(&mut conn, pieces)
}

fn drive<A: crate::Authenticator>(
    conn: &mut Connection<A>,
    pieces: &[(u64, &[u8])],
) -> Vec<&'static str> {
    let mut now = 0;
    let mut closed = false;
    let mut seen = Vec::new();
    let message = Message {
        exchange: "t".into(),
        routing_key: "t".into(),
        body: bytes::Bytes::from(vec![7u8; 5000]),
        ..Message::default()
    };
    for &(delay, piece) in pieces {
        now += delay;
        conn.feed(piece, now);
        conn.on_timeout(now);
        while let Some(ev) = conn.poll_event() {
            assert!(!closed, "an event after Closed: {ev:?}");
            seen.push(event_name(&ev));
            match ev {
                Event::Consume {
                    channel,
                    consumer_tag,
                    ..
                } => {
                    conn.accept_consume(channel, &consumer_tag, now);
                    let room = conn.can_deliver(channel, &consumer_tag);
                    let sent = conn.deliver(channel, &consumer_tag, &message, false, now);
                    assert_eq!(room, sent.is_ok(), "can_deliver disagrees with deliver");
                }
                Event::Publish {
                    confirm: Some(tag), ..
                } => conn.confirm(tag, tag.delivery_tag() % 2 == 0, now),
                Event::Ready {
                    channel,
                    consumer_tag,
                } => {
                    let _ = conn.deliver(channel, &consumer_tag, &message, true, now);
                }
                Event::Closed { .. } => closed = true,
                _ => {}
            }
        }
        while conn.poll_transmit().is_some() {}
        assert_eq!(closed, conn.is_closed(), "Closed event and state disagree");
    }
    seen
}

type Lookup = fn(&SdkUser) -> Option<String>;

/// A connection through the SDK login, tuned to frame-max 4096 and a 1 s heartbeat.
fn logged_in() -> Connection<SdkAuthenticator<Lookup>> {
    let auth = SdkAuthenticator::new(secret as Lookup);
    let config = Config {
        frame_max: 4096,
        max_message_size: 1 << 16,
        ..Config::default()
    };
    let mut conn = Connection::new(config, auth, 0);
    let user = SdkUser {
        instance_id: "i".into(),
        access_key_id: "AK".into(),
        security_token: None,
    };
    let mut wire = BytesMut::from(&PROTOCOL_HEADER[..]);
    let response = format!("\0{}\0{}", user.username(), sdk_password("SK", "1"));
    for method in [
        Method::ConnectionStartOk {
            client_properties: FieldTable::new().with("signKey", FieldValue::long_str("1")),
            mechanism: "PLAIN".into(),
            response: response.into(),
            locale: "en_US".into(),
        },
        Method::ConnectionTuneOk {
            channel_max: 8,
            frame_max: 4096,
            heartbeat: 1,
        },
        Method::ConnectionOpen {
            virtual_host: "MQTT".into(),
        },
    ] {
        Frame::Method { channel: 0, method }
            .encode(&mut wire)
            .expect("encodes");
    }
    conn.feed(&wire, 0);
    conn
}

fn secret(_: &SdkUser) -> Option<String> {
    Some("SK".to_owned())
}

fn event_name(ev: &Event) -> &'static str {
    match ev {
        Event::Opened { .. } => "Opened",
        Event::Publish { .. } => "Publish",
        Event::Consume { .. } => "Consume",
        Event::Cancel { .. } => "Cancel",
        Event::Ack { .. } => "Ack",
        Event::Nack { .. } => "Nack",
        Event::Ready { .. } => "Ready",
        Event::ChannelClosed { .. } => "ChannelClosed",
        Event::Closed { .. } => "Closed",
    }
}
