//! Our packets as rumqttc's `mqttbytes::v4` models them, shared by the interop test and the
//! codec bench (included with `#[path]`).

use mqgate_codec as ours;
use rumqttc::mqttbytes::{self as rq, v4};

pub fn q_to(q: ours::QoS) -> rq::QoS {
    match q {
        ours::QoS::AtMostOnce => rq::QoS::AtMostOnce,
        ours::QoS::AtLeastOnce => rq::QoS::AtLeastOnce,
        ours::QoS::ExactlyOnce => rq::QoS::ExactlyOnce,
    }
}

/// Our packet as rumqttc would model it (for the subset both can express).
pub fn to_rumqttc(p: &ours::Packet) -> v4::Packet {
    use ours::Packet as P;
    match p {
        P::Connect(c) => v4::Packet::Connect(v4::Connect {
            protocol: rq::Protocol::V4,
            keep_alive: c.keep_alive,
            client_id: c.client_id.to_string(),
            clean_session: c.clean_session,
            last_will: c.will.as_ref().map(|w| v4::LastWill {
                topic: w.topic.to_string(),
                message: w.payload.clone(),
                qos: q_to(w.qos),
                retain: w.retain,
            }),
            login: c.username.as_ref().map(|u| v4::Login {
                username: u.to_string(),
                password: String::from_utf8(c.password.clone().unwrap_or_default().to_vec())
                    .expect("utf-8 password"),
            }),
        }),
        P::ConnAck(a) => v4::Packet::ConnAck(v4::ConnAck {
            session_present: a.session_present,
            code: match a.code {
                ours::ConnectReturnCode::Accepted => v4::ConnectReturnCode::Success,
                ours::ConnectReturnCode::UnacceptableProtocolVersion => {
                    v4::ConnectReturnCode::RefusedProtocolVersion
                }
                ours::ConnectReturnCode::IdentifierRejected => v4::ConnectReturnCode::BadClientId,
                ours::ConnectReturnCode::ServerUnavailable => {
                    v4::ConnectReturnCode::ServiceUnavailable
                }
                ours::ConnectReturnCode::BadUsernameOrPassword => {
                    v4::ConnectReturnCode::BadUserNamePassword
                }
                ours::ConnectReturnCode::NotAuthorized => v4::ConnectReturnCode::NotAuthorized,
            },
        }),
        P::Publish(p) => v4::Packet::Publish(v4::Publish {
            dup: p.dup,
            qos: q_to(p.qos),
            retain: p.retain,
            topic: p.topic().to_string(),
            pkid: p.packet_id.map_or(0, |i| i.get()),
            payload: p.shared_payload(),
        }),
        P::PubAck(i) => v4::Packet::PubAck(v4::PubAck { pkid: i.get() }),
        P::PubRec(i) => v4::Packet::PubRec(v4::PubRec { pkid: i.get() }),
        P::PubRel(i) => v4::Packet::PubRel(v4::PubRel { pkid: i.get() }),
        P::PubComp(i) => v4::Packet::PubComp(v4::PubComp { pkid: i.get() }),
        P::Subscribe(s) => v4::Packet::Subscribe(v4::Subscribe {
            pkid: s.packet_id.get(),
            filters: s
                .filters
                .iter()
                .map(|f| v4::SubscribeFilter {
                    path: f.filter.to_string(),
                    qos: q_to(f.qos),
                })
                .collect(),
        }),
        P::SubAck(s) => v4::Packet::SubAck(v4::SubAck {
            pkid: s.packet_id.get(),
            return_codes: s
                .return_codes
                .iter()
                .map(|rc| match rc {
                    ours::SubscribeReturnCode::Success(q) => {
                        v4::SubscribeReasonCode::Success(q_to(*q))
                    }
                    ours::SubscribeReturnCode::Failure => v4::SubscribeReasonCode::Failure,
                })
                .collect(),
        }),
        P::Unsubscribe(u) => v4::Packet::Unsubscribe(v4::Unsubscribe {
            pkid: u.packet_id.get(),
            topics: u.filters.iter().map(|f| f.to_string()).collect(),
        }),
        P::UnsubAck(i) => v4::Packet::UnsubAck(v4::UnsubAck { pkid: i.get() }),
        P::PingReq => v4::Packet::PingReq,
        P::PingResp => v4::Packet::PingResp,
        P::Disconnect => v4::Packet::Disconnect,
    }
}
