//! # mqgate-amqp
//!
//! The server side of the AMQP 0-9-1 subset that the managed MQTT service's cloud SDKs
//! speak (the Java and Go "server SDKs", thin wrappers over RabbitMQ's Java client and Go's
//! amqp package): a frame codec and a connection state machine, with no I/O, no clock and
//! no async runtime.
//!
//! ## The contract
//!
//! ```text
//!   feed(bytes, now) ────────────┐            ┌─▶ poll_transmit() -> Bytes    (write, in order)
//!   on_timeout(now) ─────────────┤            ├─▶ poll_event()    -> Event    (route, consume, ack)
//!   accept_consume / confirm /   ├─▶ Connection┤
//!   deliver(channel, tag, msg) ──┘            └─▶ poll_timeout()  -> Option<u64 ms>
//! ```
//!
//! - A driver (one task per connection) feeds socket bytes with [`Connection::feed`], then
//!   drains [`Connection::poll_transmit`] and [`Connection::poll_event`], and re-arms its
//!   timer from [`Connection::poll_timeout`]. Time is a monotonic millisecond count.
//! - The login is decided by an [`Authenticator`] the driver supplies;
//!   [`SdkAuthenticator`] checks the SDKs' credentials (a Base64 user name naming the
//!   instance and AccessKey, an HMAC-SHA1 password over the `signKey` client property).
//! - Publishes arrive as [`Event::Publish`] with their confirm tag; the driver answers with
//!   [`Connection::confirm`]. Consumers arrive as [`Event::Consume`]; the driver accepts
//!   them and then calls [`Connection::deliver`] within the prefetch window, and gets
//!   [`Event::Ack`] / [`Event::Nack`] back, and [`Event::ChannelClosed`] with the
//!   unacknowledged tags to requeue when a channel or the connection goes.
//! - Message bodies are [`bytes::Bytes`]: a body that came in one frame is a slice of the
//!   receive buffer, and a delivered body is sent as slices of the caller's buffer.
//! - Nothing a client sends makes the crate panic: malformed input is a [`DecodeError`], and
//!   the connection closes with the reply code AMQP 0-9-1 names for it.
//!
//! ```
//! use mqgate_amqp::{
//!     sdk_password, BasicProperties, Config, Connection, Event, FieldTable, FieldValue, Frame,
//!     FrameDecoder, Message, Method, SdkAuthenticator, SdkUser, PROTOCOL_HEADER,
//! };
//! use bytes::BytesMut;
//!
//! // The broker's secret lookup: one AccessKey for one instance.
//! let auth = SdkAuthenticator::new(|u: &SdkUser| {
//!     (u.instance_id == "post-cn-1" && u.access_key_id == "AK").then(|| "SK".to_owned())
//! });
//! let mut conn = Connection::new(Config::default(), auth, 0);
//!
//! // What a cloud SDK sends, frame by frame (written here with the crate's own encoder).
//! let mut wire = BytesMut::from(&PROTOCOL_HEADER[..]);
//! let ts = "1700000000000";
//! let user = SdkUser { instance_id: "post-cn-1".into(), access_key_id: "AK".into(), security_token: None };
//! let response = format!("\0{}\0{}", user.username(), sdk_password("SK", ts));
//! for (channel, method) in [
//!     (0, Method::ConnectionStartOk {
//!         client_properties: FieldTable::new().with("signKey", FieldValue::long_str(ts)),
//!         mechanism: "PLAIN".into(),
//!         response: response.into(),
//!         locale: "en_US".into(),
//!     }),
//!     (0, Method::ConnectionTuneOk { channel_max: 2047, frame_max: 131_072, heartbeat: 10 }),
//!     (0, Method::ConnectionOpen { virtual_host: "MQTT".into() }),
//!     (1, Method::ChannelOpen),
//!     (1, Method::BasicConsume {
//!         queue: "parent".into(), consumer_tag: String::new(), no_local: false,
//!         no_ack: false, exclusive: false, nowait: false, arguments: FieldTable::new(),
//!     }),
//! ] {
//!     Frame::Method { channel, method }.encode(&mut wire)?;
//! }
//! conn.feed(&wire, 5);
//!
//! assert!(matches!(conn.poll_event(), Some(Event::Opened { .. })));
//! let Some(Event::Consume { channel, consumer_tag, queue, .. }) = conn.poll_event() else { panic!() };
//! assert_eq!((channel, queue.as_str(), consumer_tag.as_str()), (1, "parent", "amq.ctag-1"));
//! conn.accept_consume(channel, &consumer_tag, 6);
//!
//! // The broker has a device message for that consumer.
//! let message = Message {
//!     exchange: "parent/sub".into(),
//!     routing_key: "parent/sub".into(),
//!     properties: BasicProperties { message_id: Some("0123456789abcdef0123456789abcdef".into()), ..Default::default() },
//!     body: bytes::Bytes::from_static(b"hello"),
//! };
//! let tag = conn.deliver(channel, &consumer_tag, &message, false, 7)?;
//! assert_eq!(tag, 1);
//!
//! // The server's side of the conversation, as the client would read it.
//! let mut out = BytesMut::new();
//! while let Some(chunk) = conn.poll_transmit() { out.extend_from_slice(&chunk); }
//! let decoder = FrameDecoder::new(131_072);
//! let mut methods = Vec::new();
//! while let Some(frame) = decoder.decode(&mut out)? {
//!     if let Frame::Method { method, .. } = frame { methods.push(method.id()); }
//! }
//! // start, tune, open-ok, channel.open-ok, consume-ok, deliver
//! assert_eq!(methods, [(10, 10), (10, 30), (10, 41), (20, 11), (60, 21), (60, 60)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod channel;
mod connection;
mod error;
mod event;
mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod method;
mod props;
mod table;
mod wire;

pub use auth::{
    sdk_password, sign_key, verify_sdk_password, Authenticator, Login, Refusal, SdkAuthError,
    SdkAuthenticator, SdkUser,
};
pub use connection::{Config, Connection};
pub use error::{DecodeError, EncodeError, ReplyCode};
pub use event::{CloseReason, ConfirmTag, DeliverError, Event, Message};
pub use frame::{
    write_body_head, Frame, FrameDecoder, FRAME_END, FRAME_MIN_SIZE, FRAME_OVERHEAD,
    PROTOCOL_HEADER,
};
pub use method::{class, CloseArgs, Method};
pub use props::{BasicProperties, ContentHeader, BASIC_CLASS};
pub use table::{FieldTable, FieldValue, MAX_TABLE_DEPTH};

// The README's example runs as a doctest, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
