//! The AMQP 0-9-1 client side of the generator, on `mqgate-amqp`'s frame codec: a minimal
//! pipelined client that logs in (the cloud SDK's PLAIN login or a plain user), opens a
//! channel, publishes in confirm mode and consumes with acknowledgements. The same client
//! drives every broker, so a comparison measures the brokers and not two client libraries.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use mqgate_amqp::{
    sdk_password, BasicProperties, ContentHeader, FieldTable, FieldValue, Frame, FrameDecoder,
    Method, SdkUser, FRAME_MIN_SIZE, FRAME_OVERHEAD, PROTOCOL_HEADER,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::BenchError;

/// The largest frame the generator proposes (the cloud SDK endpoint's and RabbitMQ's default).
pub const CLIENT_FRAME_MAX: u32 = 131_072;

/// Who the client logs in as: SASL PLAIN credentials, the `signKey` client property the
/// cloud SDKs send, and the virtual host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpLogin {
    /// PLAIN user name.
    pub username: String,
    /// PLAIN password.
    pub password: String,
    /// The `signKey` client property (the SDK login), if any.
    pub sign_key: Option<String>,
    /// Virtual host.
    pub vhost: String,
}

impl AmqpLogin {
    /// The cloud SDK's login: user Base64("0:" + instance + ":" + AccessKey), password the
    /// HMAC of `ts` under the secret, `signKey` = `ts`, virtual host `MQTT`.
    pub fn sdk(instance_id: &str, access_key_id: &str, secret: &str, ts: &str) -> Self {
        let user = SdkUser {
            instance_id: instance_id.into(),
            access_key_id: access_key_id.into(),
            security_token: None,
        };
        AmqpLogin {
            username: user.username(),
            password: sdk_password(secret, ts),
            sign_key: Some(ts.into()),
            vhost: "MQTT".into(),
        }
    }

    /// A plain user on a virtual host (RabbitMQ as shipped: `guest`/`guest` on `/`).
    pub fn plain(username: &str, password: &str, vhost: &str) -> Self {
        AmqpLogin {
            username: username.into(),
            password: password.into(),
            sign_key: None,
            vhost: vhost.into(),
        }
    }

    /// The `connection.start-ok` this login sends.
    pub fn start_ok(&self) -> Method {
        let mut properties = FieldTable::new()
            .with("product", FieldValue::long_str("mqgate-bench"))
            .with(
                "capabilities",
                FieldValue::Table(
                    FieldTable::new()
                        .with("publisher_confirms", FieldValue::Bool(true))
                        .with("basic.nack", FieldValue::Bool(true)),
                ),
            );
        if let Some(ts) = &self.sign_key {
            properties.insert("signKey", FieldValue::long_str(ts.as_str()));
        }
        Method::ConnectionStartOk {
            client_properties: properties,
            mechanism: "PLAIN".into(),
            response: Bytes::from(format!("\0{}\0{}", self.username, self.password)),
            locale: "en_US".into(),
        }
    }
}

/// A message id as the SDKs make them: 32 hex digits, here from a connection salt and a
/// sequence number so that every message of a run has its own.
///
/// ```
/// let id = mqgate_bench::amqp_message_id(1, 255);
/// assert_eq!(id, "000000000000000100000000000000ff");
/// ```
pub fn amqp_message_id(salt: u64, sequence: u64) -> String {
    format!("{salt:016x}{sequence:016x}")
}

/// The properties the Java SDK's `sendMessage` sets: message id, delivery mode 2 and the
/// `seqId` header (a long).
pub fn sdk_properties(message_id: String, seq_id: i64) -> BasicProperties {
    BasicProperties {
        message_id: Some(message_id),
        delivery_mode: Some(2),
        headers: Some(FieldTable::new().with("seqId", FieldValue::I64(seq_id))),
        ..BasicProperties::default()
    }
}

/// Appends one `basic.publish` (exchange = routing key = `topic`, mandatory) with its content
/// header and its body, split in body frames of at most `frame_max` bytes.
pub fn encode_publish(
    out: &mut BytesMut,
    channel: u16,
    topic: &str,
    properties: BasicProperties,
    body: &Bytes,
    frame_max: u32,
) -> Result<(), BenchError> {
    Frame::Method {
        channel,
        method: Method::BasicPublish {
            exchange: topic.into(),
            routing_key: topic.into(),
            mandatory: true,
            immediate: false,
        },
    }
    .encode(out)?;
    Frame::Header {
        channel,
        header: ContentHeader {
            body_size: body.len() as u64,
            properties,
        },
    }
    .encode(out)?;
    let chunk = usize::try_from(frame_max.max(FRAME_MIN_SIZE) - FRAME_OVERHEAD)
        .unwrap_or(usize::MAX)
        .max(1);
    let mut start = 0;
    while start < body.len() {
        let end = (start + chunk).min(body.len());
        Frame::Body {
            channel,
            payload: body.slice(start..end),
        }
        .encode(out)?;
        start = end;
    }
    Ok(())
}

/// Appends one method frame.
pub fn encode_method(out: &mut BytesMut, channel: u16, method: Method) -> Result<(), BenchError> {
    Frame::Method { channel, method }.encode(out)?;
    Ok(())
}

/// What a frame (or the last frame of a content) from the broker means to the generator.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A publisher confirm: `basic.ack` (`nack` false) or `basic.nack` of a publish tag.
    Confirm {
        /// The publish's tag on its channel.
        tag: u64,
        /// Every outstanding tag up to `tag`.
        multiple: bool,
        /// `basic.nack`: the broker refused it.
        nack: bool,
    },
    /// A whole delivery (method, header and every body frame).
    Delivery {
        /// The delivery tag to acknowledge.
        tag: u64,
        /// The body.
        body: Bytes,
    },
    /// A whole `basic.return` (a mandatory message that reached no queue).
    Returned,
    /// A heartbeat, or a part of a content that is not finished yet.
    Nothing,
    /// Any other method.
    Method(Method),
}

/// Reassembles contents (`basic.deliver` or `basic.return`, then a header, then body frames)
/// and turns confirms into [`Incoming`]s. Channel or connection closes from the broker are
/// errors: the generator never expects them.
#[derive(Debug, Default)]
pub struct Inbound {
    content: Option<Content>,
}

#[derive(Debug)]
struct Content {
    /// `Some(tag)` for a delivery, `None` for a return.
    delivery: Option<u64>,
    /// Body size from the header, once it came.
    size: Option<u64>,
    body: BytesMut,
}

impl Inbound {
    /// Takes the next frame.
    pub fn on_frame(&mut self, frame: Frame) -> Result<Incoming, BenchError> {
        match frame {
            Frame::Heartbeat => Ok(Incoming::Nothing),
            Frame::Method { method, .. } => self.on_method(method),
            Frame::Header { header, .. } => {
                let content = self.content.as_mut().ok_or_else(|| {
                    BenchError::Protocol("content header without a method".into())
                })?;
                if content.size.is_some() {
                    return Err(BenchError::Protocol("second content header".into()));
                }
                content.size = Some(header.body_size);
                self.finish_if_whole()
            }
            Frame::Body { payload, .. } => {
                let content = self
                    .content
                    .as_mut()
                    .filter(|c| c.size.is_some())
                    .ok_or_else(|| BenchError::Protocol("body without a header".into()))?;
                content.body.extend_from_slice(&payload);
                if content.body.len() as u64 > content.size.unwrap_or(0) {
                    return Err(BenchError::Protocol(
                        "body longer than its header says".into(),
                    ));
                }
                self.finish_if_whole()
            }
        }
    }

    fn on_method(&mut self, method: Method) -> Result<Incoming, BenchError> {
        if self.content.is_some() {
            return Err(BenchError::Protocol(format!(
                "method {:?} in the middle of a content",
                method.id()
            )));
        }
        match method {
            Method::BasicAck {
                delivery_tag,
                multiple,
            } => Ok(Incoming::Confirm {
                tag: delivery_tag,
                multiple,
                nack: false,
            }),
            Method::BasicNack {
                delivery_tag,
                multiple,
                ..
            } => Ok(Incoming::Confirm {
                tag: delivery_tag,
                multiple,
                nack: true,
            }),
            Method::BasicDeliver { delivery_tag, .. } => {
                self.content = Some(Content {
                    delivery: Some(delivery_tag),
                    size: None,
                    body: BytesMut::new(),
                });
                Ok(Incoming::Nothing)
            }
            Method::BasicReturn { .. } => {
                self.content = Some(Content {
                    delivery: None,
                    size: None,
                    body: BytesMut::new(),
                });
                Ok(Incoming::Nothing)
            }
            Method::ConnectionClose(c) | Method::ChannelClose(c) => Err(BenchError::Protocol(
                format!("closed by the broker: {} {}", c.reply_code, c.reply_text),
            )),
            other => Ok(Incoming::Method(other)),
        }
    }

    fn finish_if_whole(&mut self) -> Result<Incoming, BenchError> {
        let whole = self
            .content
            .as_ref()
            .is_some_and(|c| c.size == Some(c.body.len() as u64));
        if !whole {
            return Ok(Incoming::Nothing);
        }
        Ok(match self.content.take() {
            Some(Content {
                delivery: Some(tag),
                body,
                ..
            }) => Incoming::Delivery {
                tag,
                body: body.freeze(),
            },
            _ => Incoming::Returned,
        })
    }
}

/// The publish tags of a confirm-mode channel that await their `basic.ack` or `basic.nack`.
#[derive(Debug, Default)]
pub struct Confirms {
    next: u64,
    outstanding: BTreeSet<u64>,
}

impl Confirms {
    /// Records one more publish and returns its tag (from 1).
    pub fn published(&mut self) -> u64 {
        self.next += 1;
        self.outstanding.insert(self.next);
        self.next
    }

    /// Settles `tag` (and with `multiple` every outstanding tag up to it); returns how many
    /// outstanding publishes that settled.
    pub fn settle(&mut self, tag: u64, multiple: bool) -> u64 {
        if multiple {
            let rest = self.outstanding.split_off(&tag.saturating_add(1));
            let settled = std::mem::replace(&mut self.outstanding, rest);
            settled.len() as u64
        } else {
            u64::from(self.outstanding.remove(&tag))
        }
    }

    /// Publishes not settled yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }
}

/// One AMQP connection of the generator.
#[derive(Debug)]
pub struct AmqpConn {
    stream: TcpStream,
    rx: BytesMut,
    decoder: FrameDecoder,
    /// The frame size both sides settled on.
    pub frame_max: u32,
    /// Content reassembly of what the broker sends.
    pub inbound: Inbound,
}

impl AmqpConn {
    /// Opens the connection: protocol header, start-ok with `login`, tune-ok (the broker's
    /// channel-max, the lower frame-max, no heartbeats), open; waits for `open-ok`.
    pub async fn connect(target: SocketAddr, login: &AmqpLogin) -> Result<Self, BenchError> {
        let stream = crate::wire::open_tcp(target, None).await?;
        let mut conn = AmqpConn {
            stream,
            rx: BytesMut::with_capacity(64 * 1024),
            decoder: FrameDecoder::new(CLIENT_FRAME_MAX),
            frame_max: CLIENT_FRAME_MAX,
            inbound: Inbound::default(),
        };
        conn.stream.write_all(&PROTOCOL_HEADER).await?;
        conn.expect(0, (10, 10)).await?;
        conn.send(0, login.start_ok()).await?;
        let tune = conn.expect(0, (10, 30)).await?;
        let Method::ConnectionTune {
            channel_max,
            frame_max,
            ..
        } = tune
        else {
            return Err(BenchError::Protocol("connection.tune expected".into()));
        };
        let frame_max = match frame_max {
            0 => CLIENT_FRAME_MAX,
            n => n.min(CLIENT_FRAME_MAX),
        };
        conn.frame_max = frame_max;
        conn.send(
            0,
            Method::ConnectionTuneOk {
                channel_max,
                frame_max,
                heartbeat: 0,
            },
        )
        .await?;
        conn.send(
            0,
            Method::ConnectionOpen {
                virtual_host: login.vhost.clone(),
            },
        )
        .await?;
        conn.expect(0, (10, 41)).await?;
        Ok(conn)
    }

    /// Writes one method frame.
    pub async fn send(&mut self, channel: u16, method: Method) -> Result<(), BenchError> {
        let mut out = BytesMut::new();
        encode_method(&mut out, channel, method)?;
        self.write(&out).await
    }

    /// Writes bytes already framed.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BenchError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Sends `method` on `channel` and waits for the reply with ids `reply`.
    pub async fn call(
        &mut self,
        channel: u16,
        method: Method,
        reply: (u16, u16),
    ) -> Result<Method, BenchError> {
        self.send(channel, method).await?;
        self.expect(channel, reply).await
    }

    /// Reads until the method with ids `id` arrives on `channel`; heartbeats and other
    /// methods are passed over, a close is an error.
    pub async fn expect(&mut self, channel: u16, id: (u16, u16)) -> Result<Method, BenchError> {
        loop {
            let frame = self.next_frame().await?;
            let on = frame.channel();
            match self.inbound.on_frame(frame)? {
                Incoming::Method(m) if on == channel && m.id() == id => return Ok(m),
                _ => continue,
            }
        }
    }

    /// Reads until one whole frame is decoded.
    pub async fn next_frame(&mut self) -> Result<Frame, BenchError> {
        loop {
            if let Some(frame) = self.try_frame()? {
                return Ok(frame);
            }
            self.read_more().await?;
        }
    }

    /// A frame already buffered, if any (no read).
    pub fn try_frame(&mut self) -> Result<Option<Frame>, BenchError> {
        Ok(self.decoder.decode(&mut self.rx)?)
    }

    /// Reads what the socket has into the buffer; the broker closing is an error.
    pub async fn read_more(&mut self) -> Result<(), BenchError> {
        if self.stream.read_buf(&mut self.rx).await? == 0 {
            return Err(BenchError::Handshake(
                "connection closed by the broker".into(),
            ));
        }
        Ok(())
    }

    /// Sends `connection.close` and waits briefly for `close-ok`; errors are ignored because
    /// the run is over either way.
    pub async fn close(mut self) {
        let close = Method::ConnectionClose(mqgate_amqp::CloseArgs {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        });
        if self.send(0, close).await.is_ok() {
            let wait = std::time::Duration::from_secs(1);
            let _ = tokio::time::timeout(wait, async {
                loop {
                    match self.next_frame().await {
                        Ok(Frame::Method {
                            method: Method::ConnectionCloseOk,
                            ..
                        })
                        | Err(_) => break,
                        Ok(_) => continue,
                    }
                }
            })
            .await;
        }
        let _ = self.stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(mut buf: BytesMut) -> Vec<Frame> {
        let decoder = FrameDecoder::new(CLIENT_FRAME_MAX);
        let mut frames = Vec::new();
        while let Some(f) = decoder.decode(&mut buf).unwrap() {
            frames.push(f);
        }
        assert!(buf.is_empty());
        frames
    }

    #[test]
    fn a_publish_is_split_in_body_frames_of_the_frame_size() {
        let body = Bytes::from(vec![7u8; 10_000]);
        let mut out = BytesMut::new();
        let props = sdk_properties(amqp_message_id(3, 9), 9);
        encode_publish(&mut out, 5, "parent/bench", props.clone(), &body, 4096).unwrap();
        let frames = decode_all(out);
        assert_eq!(frames.len(), 2 + 3, "{frames:?}");
        assert_eq!(
            frames[0],
            Frame::Method {
                channel: 5,
                method: Method::BasicPublish {
                    exchange: "parent/bench".into(),
                    routing_key: "parent/bench".into(),
                    mandatory: true,
                    immediate: false,
                }
            }
        );
        let Frame::Header { header, .. } = &frames[1] else {
            panic!("{:?}", frames[1])
        };
        assert_eq!(header.body_size, 10_000);
        assert_eq!(header.properties, props);
        let sizes: Vec<usize> = frames[2..]
            .iter()
            .map(|f| match f {
                Frame::Body { payload, .. } => payload.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, [4088, 4088, 1824]);
    }

    #[test]
    fn an_empty_body_has_no_body_frame() {
        let mut out = BytesMut::new();
        encode_publish(
            &mut out,
            1,
            "t",
            BasicProperties::default(),
            &Bytes::new(),
            CLIENT_FRAME_MAX,
        )
        .unwrap();
        assert_eq!(decode_all(out).len(), 2);
    }

    #[test]
    fn sdk_properties_carry_the_message_id_and_seq_id() {
        let p = sdk_properties(amqp_message_id(u64::MAX, 1), 42);
        let id = p.message_id.unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(p.delivery_mode, Some(2));
        assert_eq!(p.headers.unwrap().get("seqId"), Some(&FieldValue::I64(42)));
    }

    #[test]
    fn the_sdk_login_sends_sign_key_and_a_verifiable_password() {
        let login = AmqpLogin::sdk("post-cn-1", "AK", "SK", "1700000000000");
        assert_eq!(login.vhost, "MQTT");
        let Method::ConnectionStartOk {
            client_properties,
            response,
            mechanism,
            ..
        } = login.start_ok()
        else {
            panic!()
        };
        assert_eq!(mechanism, "PLAIN");
        assert_eq!(
            mqgate_amqp::sign_key(&client_properties),
            Some("1700000000000")
        );
        let text = String::from_utf8(response.to_vec()).unwrap();
        let parts: Vec<&str> = text.split('\0').collect();
        assert_eq!(parts[0], "");
        let user = SdkUser::parse(parts[1]).unwrap();
        assert_eq!(
            (user.instance_id.as_str(), user.access_key_id.as_str()),
            ("post-cn-1", "AK")
        );
        assert!(mqgate_amqp::verify_sdk_password(
            "SK",
            "1700000000000",
            parts[2]
        ));
        let Method::ConnectionStartOk {
            client_properties, ..
        } = AmqpLogin::plain("guest", "guest", "/").start_ok()
        else {
            panic!()
        };
        assert_eq!(mqgate_amqp::sign_key(&client_properties), None);
    }

    fn deliver(tag: u64) -> Frame {
        Frame::Method {
            channel: 1,
            method: Method::BasicDeliver {
                consumer_tag: "c".into(),
                delivery_tag: tag,
                redelivered: false,
                exchange: "parent/dev/x".into(),
                routing_key: "parent/dev/x".into(),
            },
        }
    }

    fn header(size: u64) -> Frame {
        Frame::Header {
            channel: 1,
            header: ContentHeader {
                body_size: size,
                properties: BasicProperties::default(),
            },
        }
    }

    fn body(b: &'static [u8]) -> Frame {
        Frame::Body {
            channel: 1,
            payload: Bytes::from_static(b),
        }
    }

    #[test]
    fn a_delivery_is_whole_after_its_last_body_frame() {
        let mut inbound = Inbound::default();
        assert_eq!(inbound.on_frame(deliver(4)).unwrap(), Incoming::Nothing);
        assert_eq!(inbound.on_frame(header(5)).unwrap(), Incoming::Nothing);
        assert_eq!(inbound.on_frame(body(b"he")).unwrap(), Incoming::Nothing);
        assert_eq!(
            inbound.on_frame(body(b"llo")).unwrap(),
            Incoming::Delivery {
                tag: 4,
                body: Bytes::from_static(b"hello")
            }
        );
        // An empty body is whole at its header.
        inbound.on_frame(deliver(5)).unwrap();
        assert_eq!(
            inbound.on_frame(header(0)).unwrap(),
            Incoming::Delivery {
                tag: 5,
                body: Bytes::new()
            }
        );
    }

    #[test]
    fn returns_are_swallowed_and_confirms_pass() {
        let mut inbound = Inbound::default();
        let ret = Frame::Method {
            channel: 1,
            method: Method::BasicReturn {
                reply_code: 312,
                reply_text: "NO_ROUTE".into(),
                exchange: "parent/bench".into(),
                routing_key: "parent/bench".into(),
            },
        };
        inbound.on_frame(ret).unwrap();
        inbound.on_frame(header(2)).unwrap();
        assert_eq!(inbound.on_frame(body(b"hi")).unwrap(), Incoming::Returned);
        let nack = Frame::Method {
            channel: 1,
            method: Method::BasicNack {
                delivery_tag: 3,
                multiple: true,
                requeue: false,
            },
        };
        assert_eq!(
            inbound.on_frame(nack).unwrap(),
            Incoming::Confirm {
                tag: 3,
                multiple: true,
                nack: true
            }
        );
        assert_eq!(
            inbound.on_frame(Frame::Heartbeat).unwrap(),
            Incoming::Nothing
        );
    }

    #[test]
    fn out_of_order_or_oversized_content_is_an_error() {
        assert!(Inbound::default().on_frame(header(1)).is_err());
        assert!(Inbound::default().on_frame(body(b"x")).is_err());
        let mut inbound = Inbound::default();
        inbound.on_frame(deliver(1)).unwrap();
        assert!(inbound.on_frame(deliver(2)).is_err());
        let mut inbound = Inbound::default();
        inbound.on_frame(deliver(1)).unwrap();
        inbound.on_frame(header(1)).unwrap();
        assert!(inbound.on_frame(body(b"xy")).is_err());
        let close = Frame::Method {
            channel: 1,
            method: Method::ChannelClose(mqgate_amqp::CloseArgs {
                reply_code: 404,
                reply_text: "NOT_FOUND".into(),
                class_id: 60,
                method_id: 20,
            }),
        };
        let err = Inbound::default().on_frame(close).unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
    }

    #[test]
    fn confirms_settle_single_and_multiple_tags_once() {
        let mut c = Confirms::default();
        for expected in 1..=6 {
            assert_eq!(c.published(), expected);
        }
        assert_eq!(c.settle(2, false), 1);
        assert_eq!(c.settle(2, false), 0);
        assert_eq!(c.settle(4, true), 3); // 1, 3 and 4
        assert_eq!(c.outstanding(), 2);
        assert_eq!(c.settle(9, true), 2);
        assert_eq!(c.outstanding(), 0);
    }
}
