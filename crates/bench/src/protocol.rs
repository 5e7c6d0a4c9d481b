//! MQTT 3.1.1 or MQTT 5 on the generator's connections: one small enum picks the codec's
//! packet types, and everything the generator reads comes out as one protocol-neutral
//! [`FromBroker`], so the traffic loops are written once for both.
//!
//! The hot path stays as zero-copy as the codec is: a delivered PUBLISH is decoded in place
//! (its payload is a slice of the receive buffer), only its 16-byte stamp is read, and the
//! packet is dropped before the next one is decoded.

use std::fmt;

use bytes::{Bytes, BytesMut};
use mqgate_codec::{
    v5, ByteStr, ConnectReturnCode, DecodeError, EncodeError, Packet, PacketId, PropertyId, QoS,
    ReasonCode, SubscribeReturnCode,
};
use serde::{Deserialize, Serialize};

use crate::wire::{read_stamp, DECODER};

/// The protocol version a generator connection speaks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
pub enum MqttVersion {
    /// MQTT 3.1.1 (protocol level 4): the generator's default.
    #[default]
    #[value(name = "3.1.1")]
    #[serde(rename = "3.1.1")]
    V311,
    /// MQTT 5.0 (protocol level 5).
    #[value(name = "5")]
    #[serde(rename = "5")]
    V5,
}

impl fmt::Display for MqttVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MqttVersion::V311 => "3.1.1",
            MqttVersion::V5 => "5",
        })
    }
}

/// What the generator does with one packet from a broker, whichever protocol brought it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromBroker {
    /// CONNACK: whether it accepted the connection, its return or reason code, and (MQTT 5)
    /// the Receive Maximum the broker announced: QoS 1 and 2 PUBLISHes the client may have
    /// unacknowledged at once.
    ConnAck {
        /// Accepted (return code 0, reason code Success).
        accepted: bool,
        /// The code on the wire.
        code: u8,
        /// The broker's Receive Maximum (MQTT 5; `None`: absent, which means 65 535).
        receive_maximum: Option<u16>,
    },
    /// A delivery: the stamp its payload starts with (`None`: not a payload of ours), its
    /// QoS and packet id.
    Publish {
        /// `(sequence, sent_ns)` from [`read_stamp`].
        stamp: Option<(u64, u64)>,
        /// Delivery QoS.
        qos: QoS,
        /// Packet id (QoS 1 and 2).
        packet_id: Option<PacketId>,
    },
    /// PUBACK: `accepted` is false when an MQTT 5 reason code of 0x80 or more refused the
    /// message (No matching subscribers, 0x10, is an acceptance).
    PubAck {
        /// Packet id of the PUBLISH.
        packet_id: PacketId,
        /// Whether the broker took the message.
        accepted: bool,
    },
    /// PUBREC (QoS 2, first half).
    PubRec {
        /// Packet id of the PUBLISH.
        packet_id: PacketId,
        /// Whether the broker took the message.
        accepted: bool,
    },
    /// PUBREL: the broker releases a QoS 2 delivery; answered with PUBCOMP.
    PubRel(PacketId),
    /// PUBCOMP (QoS 2, second half).
    PubComp(PacketId),
    /// SUBACK: whether any filter of the SUBSCRIBE was refused.
    SubAck {
        /// Packet id of the SUBSCRIBE.
        packet_id: PacketId,
        /// Whether a return or reason code was a failure (0x80 or more).
        refused: bool,
    },
    /// The broker's MQTT 5 DISCONNECT, with its reason code (a 3.1.1 broker closes the
    /// connection without one).
    Disconnect(u8),
    /// Anything else (PINGRESP, UNSUBACK, AUTH).
    Other,
}

impl FromBroker {
    /// An MQTT 3.1.1 packet as the generator sees it.
    pub fn from_v311(packet: Packet) -> FromBroker {
        match packet {
            Packet::ConnAck(ack) => FromBroker::ConnAck {
                accepted: ack.code == ConnectReturnCode::Accepted,
                code: ack.code as u8,
                receive_maximum: None,
            },
            Packet::Publish(p) => FromBroker::Publish {
                stamp: read_stamp(p.payload()),
                qos: p.qos,
                packet_id: p.packet_id,
            },
            Packet::PubAck(packet_id) => FromBroker::PubAck {
                packet_id,
                accepted: true,
            },
            Packet::PubRec(packet_id) => FromBroker::PubRec {
                packet_id,
                accepted: true,
            },
            Packet::PubRel(id) => FromBroker::PubRel(id),
            Packet::PubComp(id) => FromBroker::PubComp(id),
            Packet::SubAck(ack) => FromBroker::SubAck {
                packet_id: ack.packet_id,
                refused: ack.return_codes.contains(&SubscribeReturnCode::Failure),
            },
            // A 3.1.1 server never sends DISCONNECT: a stray one changes nothing, as before.
            _ => FromBroker::Other,
        }
    }

    /// An MQTT 5 packet as the generator sees it: properties are not looked at, except the
    /// CONNACK's Receive Maximum (a PUBLISH's topic alias does not matter: only the payload's
    /// stamp is read).
    pub fn from_v5(packet: v5::Packet) -> FromBroker {
        match packet {
            v5::Packet::ConnAck(ack) => FromBroker::ConnAck {
                accepted: ack.reason == ReasonCode::Success,
                code: u8::from(ack.reason),
                receive_maximum: ack
                    .properties
                    .get(PropertyId::ReceiveMaximum)
                    .and_then(|p| p.as_u32())
                    .and_then(|n| u16::try_from(n).ok()),
            },
            v5::Packet::Publish(p) => FromBroker::Publish {
                stamp: read_stamp(&p.payload),
                qos: p.qos,
                packet_id: p.packet_id,
            },
            v5::Packet::PubAck(ack) => FromBroker::PubAck {
                packet_id: ack.packet_id,
                accepted: !ack.reason.is_error(),
            },
            v5::Packet::PubRec(ack) => FromBroker::PubRec {
                packet_id: ack.packet_id,
                accepted: !ack.reason.is_error(),
            },
            v5::Packet::PubRel(ack) => FromBroker::PubRel(ack.packet_id),
            v5::Packet::PubComp(ack) => FromBroker::PubComp(ack.packet_id),
            v5::Packet::SubAck(ack) => FromBroker::SubAck {
                packet_id: ack.packet_id,
                refused: ack.reasons.iter().any(|r| r.is_error()),
            },
            v5::Packet::Disconnect(d) => FromBroker::Disconnect(u8::from(d.reason)),
            _ => FromBroker::Other,
        }
    }
}

/// The acknowledgements the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    /// PUBACK (a QoS 1 delivery).
    PubAck,
    /// PUBREC (a QoS 2 delivery, first half).
    PubRec,
    /// PUBREL (after a PUBREC).
    PubRel,
    /// PUBCOMP (after a PUBREL).
    PubComp,
}

/// How a generator connection says hello: protocol, session, flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version of the CONNECT and of everything after it.
    pub version: MqttVersion,
    /// cleanSession (3.1.1) or Clean Start with Session Expiry Interval 0 (MQTT 5); `false`
    /// keeps the session (MQTT 5: a Session Expiry Interval of 0xFFFFFFFF, never).
    pub clean: bool,
    /// MQTT 5 Receive Maximum to announce: the generator's in-flight window, when the
    /// connection has one (`None`: absent, which means 65 535).
    pub receive_maximum: Option<u16>,
}

impl Hello {
    /// A clean session of `version` without a window.
    pub const fn clean(version: MqttVersion) -> Self {
        Hello {
            version,
            clean: true,
            receive_maximum: None,
        }
    }

    /// Appends this CONNECT for `client_id` (keep-alive [`KEEP_ALIVE_S`]). MQTT 5
    /// adds Session Expiry Interval, Receive Maximum (when given), Maximum Packet Size (what
    /// the generator's decoder accepts) and Topic Alias Maximum 0: the broker must not
    /// replace topics with aliases.
    pub fn encode_connect(
        &self,
        client_id: ByteStr,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        match self.version {
            MqttVersion::V311 => Packet::Connect(Box::new(mqgate_codec::Connect {
                clean_session: self.clean,
                keep_alive: KEEP_ALIVE_S,
                client_id,
                ..mqgate_codec::Connect::default()
            }))
            .encode(out),
            MqttVersion::V5 => {
                use mqgate_codec::Property;
                let expiry = if self.clean { 0 } else { u32::MAX };
                let max_packet = u32::try_from(crate::wire::MAX_PACKET).unwrap_or(u32::MAX);
                let mut props = vec![
                    Property::FourByteInt(PropertyId::SessionExpiryInterval, expiry),
                    Property::FourByteInt(PropertyId::MaximumPacketSize, max_packet),
                    Property::TwoByteInt(PropertyId::TopicAliasMaximum, 0),
                ];
                if let Some(n) = self.receive_maximum {
                    props.push(Property::TwoByteInt(PropertyId::ReceiveMaximum, n.max(1)));
                }
                v5::Packet::Connect(Box::new(v5::Connect {
                    clean_start: self.clean,
                    keep_alive: KEEP_ALIVE_S,
                    properties: mqgate_codec::Properties::build(props)?,
                    client_id,
                    ..v5::Connect::default()
                }))
                .encode(out)
            }
        }
    }
}

/// Keep-alive the generator asks for, seconds (longer than any run).
pub const KEEP_ALIVE_S: u16 = 120;

impl MqttVersion {
    /// What a scenario's name in reports ends with: nothing for 3.1.1 (the names results
    /// were always filed under), ` mqtt5` for MQTT 5, so the two are never summarized
    /// together.
    pub const fn scenario_suffix(self) -> &'static str {
        match self {
            MqttVersion::V311 => "",
            MqttVersion::V5 => " mqtt5",
        }
    }

    /// Decodes one packet from the front of `rx` (`Ok(None)` until a whole one is there).
    #[inline]
    pub fn decode(self, rx: &mut BytesMut) -> Result<Option<FromBroker>, DecodeError> {
        Ok(match self {
            MqttVersion::V311 => DECODER.decode(rx)?.map(FromBroker::from_v311),
            MqttVersion::V5 => DECODER.decode_v5(rx)?.map(FromBroker::from_v5),
        })
    }

    /// Appends a PUBLISH without properties (MQTT 5: an empty property block, so no topic
    /// alias is ever set).
    #[inline]
    pub fn encode_publish(
        self,
        qos: QoS,
        packet_id: Option<PacketId>,
        topic: ByteStr,
        payload: Bytes,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        match self {
            MqttVersion::V311 => {
                Packet::Publish(mqgate_codec::Publish::new(qos, packet_id, topic, payload))
                    .encode(out)
            }
            MqttVersion::V5 => {
                v5::Packet::Publish(v5::Publish::new(qos, packet_id, topic, payload)).encode(out)
            }
        }
    }

    /// Appends a successful PUBACK, PUBREC, PUBREL or PUBCOMP (MQTT 5 in its two-byte short
    /// form, reason Success without properties).
    #[inline]
    pub fn encode_ack(
        self,
        kind: AckKind,
        id: PacketId,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        match self {
            MqttVersion::V311 => match kind {
                AckKind::PubAck => Packet::PubAck(id),
                AckKind::PubRec => Packet::PubRec(id),
                AckKind::PubRel => Packet::PubRel(id),
                AckKind::PubComp => Packet::PubComp(id),
            }
            .encode(out),
            MqttVersion::V5 => {
                let ack = v5::Ack::success(id);
                match kind {
                    AckKind::PubAck => v5::Packet::PubAck(ack),
                    AckKind::PubRec => v5::Packet::PubRec(ack),
                    AckKind::PubRel => v5::Packet::PubRel(ack),
                    AckKind::PubComp => v5::Packet::PubComp(ack),
                }
                .encode(out)
            }
        }
    }

    /// Appends a SUBSCRIBE of `filters` at `qos` (MQTT 5: no options beyond the QoS, no
    /// properties).
    pub fn encode_subscribe(
        self,
        packet_id: PacketId,
        filters: Vec<ByteStr>,
        qos: QoS,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        match self {
            MqttVersion::V311 => Packet::Subscribe(mqgate_codec::Subscribe {
                packet_id,
                filters: filters
                    .into_iter()
                    .map(|filter| mqgate_codec::SubscribeFilter { filter, qos })
                    .collect(),
            })
            .encode(out),
            MqttVersion::V5 => v5::Packet::Subscribe(v5::Subscribe {
                packet_id,
                properties: mqgate_codec::Properties::new(),
                filters: filters
                    .into_iter()
                    .map(|filter| v5::Subscription {
                        filter,
                        options: v5::SubscriptionOptions {
                            qos,
                            ..v5::SubscriptionOptions::default()
                        },
                    })
                    .collect(),
            })
            .encode(out),
        }
    }
}

/// The name of an MQTT 5 reason code, or of a 3.1.1 CONNACK return code, for errors.
pub fn code_name(version: MqttVersion, code: u8) -> String {
    let name = match version {
        MqttVersion::V311 => ConnectReturnCode::from_u8(code).map(|c| format!("{c:?}")),
        MqttVersion::V5 => ReasonCode::from_u8(code).map(|c| c.name().to_owned()),
    };
    name.map_or_else(
        || format!("0x{code:02x}"),
        |n| format!("{n} (0x{code:02x})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{stamp_payload, MAX_PACKET};
    use mqgate_codec::{AnyPacket, ConnectionDecoder, Properties, Property};

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    fn qos1_delivery(stamp: (u64, u64), packet_id: u16) -> Option<FromBroker> {
        Some(FromBroker::Publish {
            stamp: Some(stamp),
            qos: QoS::AtLeastOnce,
            packet_id: Some(id(packet_id)),
        })
    }

    fn prop(props: &Properties, id: PropertyId) -> Option<u32> {
        props.get(id).and_then(|p| p.as_u32())
    }

    /// What a broker's decoder makes of the CONNECT: decided by its protocol level.
    fn as_broker_sees(hello: &Hello) -> AnyPacket {
        let mut out = BytesMut::new();
        hello
            .encode_connect(ByteStr::from_static("GID_bench@@@p0"), &mut out)
            .unwrap();
        let mut conn = ConnectionDecoder::new(1024);
        let packet = conn.decode(&mut out).unwrap().unwrap();
        assert!(out.is_empty(), "one whole packet");
        packet
    }

    #[test]
    fn v5_connect_announces_the_window_and_no_topic_aliases() {
        let hello = Hello {
            receive_maximum: Some(256),
            ..Hello::clean(MqttVersion::V5)
        };
        let AnyPacket::V5(v5::Packet::Connect(c)) = as_broker_sees(&hello) else {
            panic!("not an MQTT 5 CONNECT");
        };
        assert!(c.clean_start);
        assert_eq!(c.keep_alive, KEEP_ALIVE_S);
        assert_eq!(c.client_id.as_str(), "GID_bench@@@p0");
        let p = &c.properties;
        assert_eq!(prop(p, PropertyId::SessionExpiryInterval), Some(0));
        assert_eq!(prop(p, PropertyId::ReceiveMaximum), Some(256));
        assert_eq!(prop(p, PropertyId::TopicAliasMaximum), Some(0));
        assert_eq!(
            prop(p, PropertyId::MaximumPacketSize),
            Some(MAX_PACKET as u32)
        );
    }

    #[test]
    fn v5_connect_without_a_window_leaves_receive_maximum_out() {
        let persistent = Hello {
            clean: false,
            ..Hello::clean(MqttVersion::V5)
        };
        let AnyPacket::V5(v5::Packet::Connect(c)) = as_broker_sees(&persistent) else {
            panic!("not an MQTT 5 CONNECT");
        };
        assert!(!c.clean_start);
        assert_eq!(prop(&c.properties, PropertyId::ReceiveMaximum), None);
        assert_eq!(
            prop(&c.properties, PropertyId::SessionExpiryInterval),
            Some(u32::MAX)
        );
    }

    #[test]
    fn v311_connect_is_level_4_as_before() {
        let AnyPacket::V3(Packet::Connect(c)) = as_broker_sees(&Hello::clean(MqttVersion::V311))
        else {
            panic!("not a 3.1.1 CONNECT");
        };
        assert!(c.clean_session);
        assert_eq!(c.protocol.level(), 4);
        assert_eq!(c.keep_alive, KEEP_ALIVE_S);
    }

    #[test]
    fn v5_subscribe_and_publish_decode_in_the_codec() {
        let mut out = BytesMut::new();
        let filters = vec![
            ByteStr::from_static("bench/shared"),
            ByteStr::from_static("a/#"),
        ];
        MqttVersion::V5
            .encode_subscribe(id(3), filters, QoS::AtLeastOnce, &mut out)
            .unwrap();
        let Some(v5::Packet::Subscribe(sub)) = DECODER.decode_v5(&mut out).unwrap() else {
            panic!("not a SUBSCRIBE");
        };
        assert_eq!(sub.packet_id, id(3));
        assert!(sub.properties.is_empty());
        let got: Vec<_> = sub
            .filters
            .iter()
            .map(|f| (f.filter.as_str(), f.options.to_u8()))
            .collect();
        assert_eq!(got, [("bench/shared", 1), ("a/#", 1)]);

        let payload = stamp_payload(42, 7_000, 64);
        MqttVersion::V5
            .encode_publish(
                QoS::AtLeastOnce,
                Some(id(9)),
                ByteStr::from_static("bench/shared"),
                payload.clone(),
                &mut out,
            )
            .unwrap();
        let Some(v5::Packet::Publish(p)) = DECODER.decode_v5(&mut out.clone()).unwrap() else {
            panic!("not a PUBLISH");
        };
        assert_eq!(p.properties, v5::PublishProperties::default());
        assert_eq!((p.topic.as_str(), &p.payload), ("bench/shared", &payload));
        assert_eq!(
            MqttVersion::V5.decode(&mut out).unwrap(),
            qos1_delivery((42, 7_000), 9)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_v5_delivery_with_properties_and_a_topic_alias_still_counts() {
        let mut p = v5::Publish::new(
            QoS::AtLeastOnce,
            Some(id(5)),
            ByteStr::from_static(""),
            stamp_payload(8, 99, 32),
        );
        p.properties = v5::PublishProperties {
            forward: Properties::build([Property::UserProperty("k", "v")])
                .unwrap()
                .forwardable(),
            message_expiry_interval: Some(30),
            topic_alias: Some(1.try_into().unwrap()),
            subscription_identifiers: vec![7.try_into().unwrap()].into(),
        };
        let mut rx = BytesMut::new();
        v5::Packet::Publish(p).encode(&mut rx).unwrap();
        assert_eq!(
            MqttVersion::V5.decode(&mut rx).unwrap(),
            qos1_delivery((8, 99), 5)
        );
    }

    #[test]
    fn v5_acks_carry_their_verdict() {
        let ack = |reason| v5::Ack {
            packet_id: id(4),
            reason,
            properties: Properties::new(),
        };
        let cases = [
            (
                v5::Packet::PubAck(ack(ReasonCode::NoMatchingSubscribers)),
                FromBroker::PubAck {
                    packet_id: id(4),
                    accepted: true,
                },
            ),
            (
                v5::Packet::PubAck(ack(ReasonCode::QuotaExceeded)),
                FromBroker::PubAck {
                    packet_id: id(4),
                    accepted: false,
                },
            ),
            (
                v5::Packet::PubRec(ack(ReasonCode::Success)),
                FromBroker::PubRec {
                    packet_id: id(4),
                    accepted: true,
                },
            ),
            (
                v5::Packet::PubRel(ack(ReasonCode::Success)),
                FromBroker::PubRel(id(4)),
            ),
            (
                v5::Packet::PubComp(ack(ReasonCode::Success)),
                FromBroker::PubComp(id(4)),
            ),
            (
                v5::Packet::SubAck(v5::SubAck {
                    packet_id: id(4),
                    properties: Properties::new(),
                    reasons: vec![ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized],
                }),
                FromBroker::SubAck {
                    packet_id: id(4),
                    refused: true,
                },
            ),
            (
                v5::Packet::Disconnect(v5::ReasonAndProperties {
                    reason: ReasonCode::ReceiveMaximumExceeded,
                    properties: Properties::new(),
                }),
                FromBroker::Disconnect(0x93),
            ),
        ];
        for (packet, expected) in cases {
            let mut rx = BytesMut::new();
            packet.encode(&mut rx).unwrap();
            assert_eq!(MqttVersion::V5.decode(&mut rx).unwrap(), Some(expected));
        }
    }

    #[test]
    fn v5_connack_gives_the_brokers_receive_maximum() {
        let connack = |reason, props| {
            let mut rx = BytesMut::new();
            v5::Packet::ConnAck(v5::ConnAck {
                session_present: false,
                reason,
                properties: Properties::build(props).unwrap(),
            })
            .encode(&mut rx)
            .unwrap();
            MqttVersion::V5.decode(&mut rx).unwrap()
        };
        assert_eq!(
            connack(
                ReasonCode::Success,
                vec![
                    Property::TwoByteInt(PropertyId::ReceiveMaximum, 20),
                    Property::TwoByteInt(PropertyId::TopicAliasMaximum, 10),
                ]
            ),
            Some(FromBroker::ConnAck {
                accepted: true,
                code: 0,
                receive_maximum: Some(20),
            })
        );
        assert_eq!(
            connack(ReasonCode::NotAuthorized, vec![]),
            Some(FromBroker::ConnAck {
                accepted: false,
                code: 0x87,
                receive_maximum: None,
            })
        );
        assert_eq!(code_name(MqttVersion::V5, 0x87), "Not authorized (0x87)");
    }

    #[test]
    fn acks_of_both_protocols_round_trip() {
        for kind in [
            AckKind::PubAck,
            AckKind::PubRec,
            AckKind::PubRel,
            AckKind::PubComp,
        ] {
            let (mut v3, mut v5) = (BytesMut::new(), BytesMut::new());
            MqttVersion::V311
                .encode_ack(kind, id(300), &mut v3)
                .unwrap();
            MqttVersion::V5.encode_ack(kind, id(300), &mut v5).unwrap();
            // Success without properties: MQTT 5's short form is the 3.1.1 packet.
            assert_eq!(v3, v5, "{kind:?}");
            let a = MqttVersion::V311.decode(&mut v3).unwrap();
            let b = MqttVersion::V5.decode(&mut v5).unwrap();
            assert_eq!(a, b, "{kind:?}");
            assert!(!matches!(a, None | Some(FromBroker::Other)), "{kind:?}");
        }
    }

    #[test]
    fn the_version_parses_and_prints_as_on_the_command_line() {
        use clap::ValueEnum;
        for v in [MqttVersion::V311, MqttVersion::V5] {
            assert_eq!(MqttVersion::from_str(&v.to_string(), false), Ok(v));
        }
        assert_eq!(MqttVersion::V5.scenario_suffix(), " mqtt5");
        assert_eq!(MqttVersion::V311.scenario_suffix(), "");
    }
}
