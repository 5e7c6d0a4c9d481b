//! MQTT 5 clients for the tests: [`Raw5`], our codec over TCP for exact checks, and
//! [`Client5`], rumqttc's v5 client driven by a background task.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqgate_broker::BrokerHandle;
use mqgate_codec::v5::{self, Packet, Publish, Subscribe, Subscription, SubscriptionOptions};
use mqgate_codec::{ByteStr, Decoder, PacketId, Properties, Property, PropertyId, QoS, ReasonCode};
use rumqttc::v5::mqttbytes::v5::{ConnAck, Packet as RPacket};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::{recv_in_time, tcp_addr, Raw, WAIT};

/// An MQTT 5 client over TCP speaking through our codec, for exact checks: a [`Raw`]
/// connection whose packets are read and written as MQTT 5.
pub struct Raw5 {
    pub raw: Raw,
}

impl Raw5 {
    pub async fn open(broker: &BrokerHandle) -> Raw5 {
        Raw5 {
            raw: Raw::open(broker).await,
        }
    }

    /// Opens, sends `connect` and returns the CONNACK.
    pub async fn connect_with(broker: &BrokerHandle, connect: v5::Connect) -> (Raw5, v5::ConnAck) {
        let mut raw = Raw5::open(broker).await;
        raw.send(Packet::Connect(Box::new(connect))).await;
        match raw.recv().await {
            Some(Packet::ConnAck(ack)) => (raw, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects as `id` with Clean Start and the Session Expiry Interval `expiry` (none
    /// when 0); expects success.
    pub async fn connect(
        broker: &BrokerHandle,
        id: &str,
        clean: bool,
        expiry: u32,
    ) -> (Raw5, bool) {
        let properties = if expiry == 0 {
            Properties::new()
        } else {
            Properties::build([Property::FourByteInt(
                PropertyId::SessionExpiryInterval,
                expiry,
            )])
            .expect("properties")
        };
        let connect = v5::Connect {
            clean_start: clean,
            keep_alive: 30,
            client_id: ByteStr::try_from(id).expect("id"),
            properties,
            ..v5::Connect::default()
        };
        let (raw, ack) = Raw5::connect_with(broker, connect).await;
        assert_eq!(ack.reason, ReasonCode::Success);
        (raw, ack.session_present)
    }

    pub async fn send(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        packet.encode(&mut buf).expect("encodes");
        self.raw.send_bytes(&buf).await;
    }

    /// The next packet; `None` when the broker closed the connection.
    pub async fn recv(&mut self) -> Option<Packet> {
        let next = self.raw.recv_with(WAIT, decode_v5).await;
        next.expect("answer or close in time")
    }

    /// The next packet within `limit` (`Err(())` if none came); `None` when the broker closed
    /// the connection.
    pub async fn recv_within(&mut self, limit: Duration) -> Result<Option<Packet>, ()> {
        self.raw.recv_with(limit, decode_v5).await
    }

    /// The next PUBLISH (skipping nothing: anything else fails the test).
    pub async fn publish_in(&mut self) -> Publish {
        match self.recv().await {
            Some(Packet::Publish(p)) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    pub async fn subscribe(
        &mut self,
        id: u16,
        filters: &[(&str, SubscriptionOptions)],
        identifier: Option<u32>,
    ) -> Vec<ReasonCode> {
        let properties = match identifier {
            Some(n) => Properties::build([Property::VarInt(PropertyId::SubscriptionIdentifier, n)])
                .expect("properties"),
            None => Properties::new(),
        };
        self.send(Packet::Subscribe(Subscribe {
            packet_id: pid(id),
            properties,
            filters: filters
                .iter()
                .map(|(f, options)| Subscription {
                    filter: ByteStr::try_from(*f).expect("filter"),
                    options: *options,
                })
                .collect(),
        }))
        .await;
        match self.recv().await {
            Some(Packet::SubAck(ack)) => {
                assert_eq!(ack.packet_id, pid(id));
                ack.reasons
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// A QoS 0 PUBLISH with a Topic Alias (and `topic`, empty to use the alias).
    pub async fn publish_aliased(&mut self, topic: &str, alias: u16, payload: &'static [u8]) {
        let mut p = Publish::new(
            QoS::AtMostOnce,
            None,
            ByteStr::try_from(topic).expect("topic"),
            Bytes::from_static(payload),
        );
        p.properties.topic_alias = Some(alias.try_into().expect("non-zero"));
        self.send(Packet::Publish(p)).await;
    }

    pub async fn publish(&mut self, topic: &str, payload: &'static [u8], retain: bool) {
        let mut p = Publish::new(
            QoS::AtMostOnce,
            None,
            ByteStr::try_from(topic).expect("topic"),
            Bytes::from_static(payload),
        );
        p.retain = retain;
        self.send(Packet::Publish(p)).await;
    }

    /// Expects a DISCONNECT with `reason`, then the end of the connection.
    pub async fn expect_disconnect(&mut self, reason: ReasonCode) {
        match self.recv().await {
            Some(Packet::Disconnect(d)) => assert_eq!(d.reason, reason),
            other => panic!("expected DISCONNECT {reason:?}, got {other:?}"),
        }
        assert_eq!(self.recv().await, None, "closed after the DISCONNECT");
    }

    /// Asserts nothing arrives within `quiet`.
    pub async fn expect_nothing(&mut self, quiet: Duration) {
        if let Ok(p) = self.recv_within(quiet).await {
            panic!("unexpected packet: {p:?}");
        }
    }

    /// Sends PINGREQ and waits for PINGRESP, skipping nothing: everything the broker sent
    /// before it must have been read.
    pub async fn ping(&mut self) {
        self.send(Packet::PingReq).await;
        match self.recv().await {
            Some(Packet::PingResp) => {}
            other => panic!("expected PINGRESP, got {other:?}"),
        }
    }
}

/// A clean-start CONNECT as `id` with keep-alive 30 and `properties`.
pub fn with_properties<const N: usize>(
    id: &'static str,
    properties: [Property<'_>; N],
) -> v5::Connect {
    v5::Connect {
        clean_start: true,
        keep_alive: 30,
        client_id: ByteStr::from_static(id),
        properties: Properties::build(properties).expect("properties"),
        ..v5::Connect::default()
    }
}

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

pub fn qos(q: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: q,
        ..SubscriptionOptions::default()
    }
}

/// Takes an MQTT 5 packet out of `rx`; a packet the broker should not have sent fails the
/// test.
fn decode_v5(decoder: &mut Decoder, rx: &mut BytesMut) -> Option<Packet> {
    match decoder.decode_v5(rx) {
        Ok(p) => p,
        Err(e) => panic!("broker sent a bad packet: {e}"),
    }
}

// ------------------------------------------------------------------ rumqttc's v5 client

/// A rumqttc v5 client driven by a background task: incoming PUBLISHes, the broker's
/// acknowledgements and its DISCONNECT on channels.
pub struct Client5 {
    pub client: AsyncClient,
    pub publishes: mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Publish>,
    /// CONNACK (after the first), SUBACK, UNSUBACK and DISCONNECT, in order.
    pub acks: mpsc::UnboundedReceiver<RPacket>,
    /// PUBACK and PUBCOMP: the client's own QoS 1 and 2 PUBLISHes done, in order.
    pub done: mpsc::UnboundedReceiver<RPacket>,
    /// The CONNACK of the connection (Success: anything else fails the test).
    pub connack: ConnAck,
    pub task: tokio::task::JoinHandle<()>,
}

impl Client5 {
    /// Connects as `id` over TCP with a keep-alive of 30 s (Clean Start 1, no expiry).
    pub async fn connect(broker: &BrokerHandle, id: &str) -> Client5 {
        Client5::with_options(Client5::options(broker, id)).await
    }

    /// Options to connect to `broker`'s TCP listener as `id`, keep-alive 30 s.
    pub fn options(broker: &BrokerHandle, id: &str) -> MqttOptions {
        let addr = tcp_addr(broker);
        let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(30));
        options
    }

    /// Connects with `options`; expects a CONNACK with reason Success.
    pub async fn with_options(options: MqttOptions) -> Client5 {
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        // The CONNACK first, so that it is not mistaken for a later acknowledgement.
        let connack = timeout(WAIT, async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(RPacket::ConnAck(ack))) => return ack,
                    Ok(_) => {}
                    Err(e) => panic!("connection failed: {e:?}"),
                }
            }
        })
        .await
        .expect("CONNACK in time");
        assert_eq!(
            connack.code,
            rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success
        );
        Client5::drive(client, eventloop, connack)
    }

    fn drive(client: AsyncClient, mut eventloop: EventLoop, connack: ConnAck) -> Client5 {
        let (ptx, publishes) = mpsc::unbounded_channel();
        let (atx, acks) = mpsc::unbounded_channel();
        let (dtx, done) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                let Event::Incoming(packet) = event else {
                    continue;
                };
                let to = match packet {
                    RPacket::Publish(p) => {
                        let _ = ptx.send(p);
                        continue;
                    }
                    RPacket::PubAck(_) | RPacket::PubComp(_) => &dtx,
                    RPacket::ConnAck(_)
                    | RPacket::SubAck(_)
                    | RPacket::UnsubAck(_)
                    | RPacket::Disconnect(_) => &atx,
                    _ => continue,
                };
                let _ = to.send(packet);
            }
        });
        Client5 {
            client,
            publishes,
            acks,
            done,
            connack,
            task,
        }
    }

    /// The next acknowledgement on `acks` (SUBACK, UNSUBACK ...), within [`WAIT`].
    pub async fn ack(&mut self) -> RPacket {
        recv_in_time(&mut self.acks, "an acknowledgement").await
    }

    /// Subscribes and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: rumqttc::v5::mqttbytes::QoS) {
        self.client.subscribe(filter, qos).await.expect("queued");
        match self.ack().await {
            RPacket::SubAck(_) => {}
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Waits until `n` more of this client's QoS 1 or 2 PUBLISHes were acknowledged (PUBACK
    /// or PUBCOMP), each within [`WAIT`].
    pub async fn acked(&mut self, n: usize) {
        for _ in 0..n {
            recv_in_time(&mut self.done, "a PUBACK or PUBCOMP").await;
        }
    }

    /// The next incoming PUBLISH, within [`WAIT`].
    pub async fn next(&mut self) -> rumqttc::v5::mqttbytes::v5::Publish {
        recv_in_time(&mut self.publishes, "a PUBLISH").await
    }

    /// Asserts no PUBLISH arrives within `quiet`.
    pub async fn expect_nothing(&mut self, quiet: Duration) {
        if let Ok(Some(p)) = timeout(quiet, self.publishes.recv()).await {
            panic!("unexpected PUBLISH: {p:?}");
        }
    }

    /// Sends DISCONNECT (reason 0x00) and waits for the connection to end.
    pub async fn disconnect(mut self) {
        let _ = self.client.disconnect().await;
        let _ = timeout(WAIT, &mut self.task).await;
    }
}

impl Drop for Client5 {
    /// Ends the connection without DISCONNECT (an abnormal close) if it is still open.
    fn drop(&mut self) {
        self.task.abort();
    }
}
