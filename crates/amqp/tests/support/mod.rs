//! A scripted AMQP client for the state machine tests: writes client frames with the
//! crate's encoder and reads everything the server sent back.

#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use mqgate_amqp::{
    sdk_password, BasicProperties, Config, Connection, ContentHeader, Event, FieldTable,
    FieldValue, Frame, FrameDecoder, Message, Method, SdkAuthenticator, SdkUser, PROTOCOL_HEADER,
};

pub type Auth = SdkAuthenticator<fn(&SdkUser) -> Option<String>>;

pub const SECRET: &str = "SK-secret";
pub const TS: &str = "1700000000123";

fn lookup(u: &SdkUser) -> Option<String> {
    (u.instance_id == "post-cn-test" && u.access_key_id == "AK-id").then(|| SECRET.to_owned())
}

pub fn user() -> SdkUser {
    SdkUser {
        instance_id: "post-cn-test".into(),
        access_key_id: "AK-id".into(),
        security_token: None,
    }
}

pub struct Harness {
    pub conn: Connection<Auth>,
    pub now: u64,
    rx: BytesMut,
    decoder: FrameDecoder,
    pub raw_out: Vec<u8>,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        Self {
            conn: Connection::new(
                config,
                SdkAuthenticator::new(lookup as fn(&SdkUser) -> _),
                0,
            ),
            now: 0,
            rx: BytesMut::new(),
            decoder: FrameDecoder::new(1 << 20),
            raw_out: Vec::new(),
        }
    }

    /// A connection through the SDK's handshake, with the heartbeat asked.
    pub fn open(config: Config, heartbeat: u16) -> Self {
        let mut h = Self::new(config);
        h.send_raw(&PROTOCOL_HEADER);
        h.login(&sdk_password(SECRET, TS), TS);
        h.tune_and_open(0, 4096, heartbeat, "MQTT");
        let frames = h.frames();
        assert_eq!(
            frames.iter().map(method_id).collect::<Vec<_>>(),
            [Some((10, 10)), Some((10, 30)), Some((10, 41))]
        );
        assert!(matches!(h.event(), Some(Event::Opened { .. })));
        assert!(h.conn.is_open());
        h
    }

    pub fn tune_and_open(&mut self, channel_max: u16, frame_max: u32, heartbeat: u16, vhost: &str) {
        self.send(
            0,
            Method::ConnectionTuneOk {
                channel_max,
                frame_max,
                heartbeat,
            },
        );
        self.send(
            0,
            Method::ConnectionOpen {
                virtual_host: vhost.into(),
            },
        );
    }

    pub fn login(&mut self, password: &str, sign_key: &str) {
        let response = format!("\0{}\0{}", user().username(), password);
        self.send(
            0,
            Method::ConnectionStartOk {
                client_properties: FieldTable::new()
                    .with("signKey", FieldValue::long_str(sign_key))
                    .with(
                        "capabilities",
                        FieldValue::Table(
                            FieldTable::new()
                                .with("consumer_cancel_notify", FieldValue::Bool(true)),
                        ),
                    ),
                mechanism: "PLAIN".into(),
                response: Bytes::from(response),
                locale: "en_US".into(),
            },
        );
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.conn.feed(bytes, self.now);
    }

    pub fn send(&mut self, channel: u16, method: Method) {
        let mut b = BytesMut::new();
        Frame::Method { channel, method }.encode(&mut b).unwrap();
        self.send_raw(&b);
    }

    /// publish + header + body in frames of at most `piece` bytes.
    pub fn publish(
        &mut self,
        channel: u16,
        topic: &str,
        props: BasicProperties,
        body: &[u8],
        piece: usize,
    ) {
        let mut b = BytesMut::new();
        Frame::Method {
            channel,
            method: Method::BasicPublish {
                exchange: topic.into(),
                routing_key: topic.into(),
                mandatory: true,
                immediate: false,
            },
        }
        .encode(&mut b)
        .unwrap();
        Frame::Header {
            channel,
            header: ContentHeader {
                body_size: body.len() as u64,
                properties: props,
            },
        }
        .encode(&mut b)
        .unwrap();
        for part in body.chunks(piece) {
            Frame::Body {
                channel,
                payload: Bytes::copy_from_slice(part),
            }
            .encode(&mut b)
            .unwrap();
        }
        self.send_raw(&b);
    }

    pub fn open_channel(&mut self, channel: u16) {
        self.send(channel, Method::ChannelOpen);
        assert_eq!(self.methods(), [(channel, Method::ChannelOpenOk)]);
    }

    /// Everything the server sent since the last call, decoded.
    pub fn frames(&mut self) -> Vec<Frame> {
        while let Some(chunk) = self.conn.poll_transmit() {
            self.raw_out.extend_from_slice(&chunk);
            self.rx.extend_from_slice(&chunk);
        }
        let mut out = Vec::new();
        while let Some(f) = self.decoder.decode(&mut self.rx).unwrap() {
            out.push(f);
        }
        out
    }

    /// The methods the server sent since the last call, with their channels.
    pub fn methods(&mut self) -> Vec<(u16, Method)> {
        self.frames()
            .into_iter()
            .filter_map(|f| match f {
                Frame::Method { channel, method } => Some((channel, method)),
                _ => None,
            })
            .collect()
    }

    pub fn event(&mut self) -> Option<Event> {
        self.conn.poll_event()
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }
}

/// A device message as the broker hands it to an SDK consumer: a 32-hex message id and the
/// three headers the SDKs read.
pub fn device_message(n: u32, body: Bytes) -> Message {
    Message {
        exchange: "parent/sub/dev".into(),
        routing_key: "parent/sub/dev".into(),
        properties: BasicProperties {
            message_id: Some(format!("{n:032x}")),
            headers: Some(
                FieldTable::new()
                    .with("mqttParentTopic", FieldValue::long_str("parent"))
                    .with("mqttSecondTopic", FieldValue::long_str("/sub/dev"))
                    .with("clientId", FieldValue::long_str("GID_a@@@dev1")),
            ),
            ..BasicProperties::default()
        },
        body,
    }
}

/// basic.consume as the SDKs send it: no-ack false, not exclusive, waiting for consume-ok.
pub fn consume_method(queue: &str, consumer_tag: &str, arguments: FieldTable) -> Method {
    Method::BasicConsume {
        queue: queue.into(),
        consumer_tag: consumer_tag.into(),
        no_local: false,
        no_ack: false,
        exclusive: false,
        nowait: false,
        arguments,
    }
}

pub fn method_id(f: &Frame) -> Option<(u16, u16)> {
    match f {
        Frame::Method { method, .. } => Some(method.id()),
        _ => None,
    }
}

/// The reply code of a connection.close or channel.close.
pub fn close_code(m: &Method) -> Option<u16> {
    match m {
        Method::ConnectionClose(a) | Method::ChannelClose(a) => Some(a.reply_code),
        _ => None,
    }
}
