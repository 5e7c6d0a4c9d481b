//! [`StatusEvent`] and its JSON form.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::{ChannelId, StatusError};

/// What happened to a connection.
///
/// Serialised in lower case (`"connect"`, `"disconnect"`, `"tcpclean"`), the
/// spelling consumers of the model service already parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The client connected and passed authentication: it is online.
    Connect,
    /// The client sent an MQTT DISCONNECT packet. It does **not** prove the
    /// client is offline: only the channel's [`EventType::Tcpclean`] does.
    Disconnect,
    /// The TCP connection closed, whatever the reason, with or without a
    /// DISCONNECT before it.
    Tcpclean,
}

impl EventType {
    /// The wire spelling, also used as the RocketMQ message tag.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Disconnect => "disconnect",
            Self::Tcpclean => "tcpclean",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One life-cycle event of one connection.
///
/// Events of one client are ordered by [`time`](Self::time), then by
/// [`seq`](Self::seq): the broker stamps `seq` from a
/// [`SequenceSource`](crate::SequenceSource), so two events of the same client
/// in the same millisecond still have an order.
///
/// The JSON form has exactly the keys `clientId`, `time`, `eventType`,
/// `channelId`, `clientIp` and `seq`:
///
/// ```
/// use mqgate_status::{ChannelId, EventType, StatusEvent};
///
/// let event = StatusEvent {
///     client_id: "GID_test@@@0001".into(),
///     time: 1566356567883,
///     event_type: EventType::Tcpclean,
///     channel_id: ChannelId::from_bytes([0x2b; 16]),
///     client_ip: "192.168.0.7:57322".into(),
///     seq: 3,
/// };
/// let json = event.to_json();
/// assert_eq!(
///     json,
///     r#"{"clientId":"GID_test@@@0001","time":1566356567883,"eventType":"tcpclean","channelId":"2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b","clientIp":"192.168.0.7:57322","seq":3}"#
/// );
/// assert_eq!(StatusEvent::from_json(json.as_bytes())?, event);
/// # Ok::<(), mqgate_status::StatusError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEvent {
    /// The client id, `{GroupId}@@@{DeviceId}`. Not validated here: an event
    /// reports what the broker accepted.
    pub client_id: String,
    /// When it happened, in milliseconds since the Unix epoch.
    pub time: u64,
    /// What happened.
    pub event_type: EventType,
    /// The connection it happened to.
    pub channel_id: ChannelId,
    /// The client's address, `ip:port`, as the broker saw it. Kept as text:
    /// consumers only display it, and producers behind proxies write forms a
    /// strict socket-address parser would refuse.
    pub client_ip: String,
    /// Per-client sequence number (our addition to the model service's
    /// format). Decoding an event without it gives 0.
    #[serde(default)]
    pub seq: u64,
}

impl StatusEvent {
    /// The ordering key of events of one client: time, then sequence number.
    #[must_use]
    pub const fn stamp(&self) -> (u64, u64) {
        (self.time, self.seq)
    }

    /// The group id: the part of the client id before `@@@`, if it has one.
    ///
    /// ```
    /// # use mqgate_status::{ChannelId, EventType, StatusEvent};
    /// # let mut event = StatusEvent { client_id: String::new(), time: 0,
    /// #     event_type: EventType::Connect, channel_id: ChannelId::from_bytes([0; 16]),
    /// #     client_ip: String::new(), seq: 0 };
    /// event.client_id = "GID_shop@@@tag-0042".into();
    /// assert_eq!(event.group_id(), Some("GID_shop"));
    /// ```
    #[must_use]
    pub fn group_id(&self) -> Option<&str> {
        group_of(&self.client_id)
    }

    /// Encodes the event as compact JSON, keys in the documented order.
    /// Cannot fail.
    #[must_use]
    pub fn to_json(&self) -> String {
        crate::json::encode(self)
    }

    /// Decodes an event from JSON.
    ///
    /// A missing `seq` reads as 0 and unknown keys are ignored, so bodies from
    /// the model service and from newer versions of mqgate both decode.
    ///
    /// # Errors
    ///
    /// Anything else is refused, naming the key at fault:
    /// [`StatusError::NotAnObject`] for malformed JSON or a non-object,
    /// [`StatusError::MissingKey`] for a missing required key,
    /// [`StatusError::InvalidValue`] for an unknown `eventType`, a `time` or
    /// `seq` that is not a non-negative integer, a `channelId` that is not 32
    /// lowercase hex characters, a `clientId` or `clientIp` that is not a
    /// string.
    pub fn from_json(json: &[u8]) -> Result<Self, StatusError> {
        crate::json::decode(json)
    }
}

/// The group id of a client id `{GroupId}@@@{DeviceId}`, if it has that form.
pub(crate) fn group_of(client_id: &str) -> Option<&str> {
    client_id.split_once("@@@").map(|(group, _)| group)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(client_id: &str, client_ip: &str) -> StatusEvent {
        StatusEvent {
            client_id: client_id.into(),
            time: 1,
            event_type: EventType::Connect,
            channel_id: ChannelId::from_bytes([7; 16]),
            client_ip: client_ip.into(),
            seq: 0,
        }
    }

    /// The escapes of awkward strings, byte for byte as consumers have seen them.
    #[test]
    fn awkward_strings_are_escaped_and_read_back() {
        let table = [
            ("", r#""""#),
            ("\"", r#""\"""#),
            ("\\", r#""\\""#),
            ("a\nb\r\t", r#""a\nb\r\t""#),
            (
                "\u{0}\u{8}\u{c}\u{1f}\u{7f}",
                "\"\\u0000\\b\\f\\u001f\u{7f}\"",
            ),
            ("é中🦀", "\"é中🦀\""),
            ("GID_x@@@y", "\"GID_x@@@y\""),
            // Client ids MQTT's rules accept.
            ("clean retained", "\"clean retained\""),
            ("ünïcödé", "\"ünïcödé\""),
            ("a/b/#", "\"a/b/#\""),
        ];
        for (text, quoted) in table {
            let value = event(text, text);
            let expected = format!(
                "{{\"clientId\":{quoted},\"time\":1,\"eventType\":\"connect\",\
                 \"channelId\":\"07070707070707070707070707070707\",\"clientIp\":{quoted},\"seq\":0}}"
            );
            assert_eq!(value.to_json(), expected, "{text:?}");
            assert_eq!(
                StatusEvent::from_json(expected.as_bytes()).ok(),
                Some(value)
            );
        }
    }

    #[test]
    fn event_type_spellings() {
        let table = [
            (EventType::Connect, "\"connect\""),
            (EventType::Disconnect, "\"disconnect\""),
            (EventType::Tcpclean, "\"tcpclean\""),
        ];
        for (kind, json) in table {
            assert_eq!(serde_json::to_string(&kind).ok().as_deref(), Some(json));
            assert_eq!(serde_json::from_str::<EventType>(json).ok(), Some(kind));
            assert_eq!(format!("\"{kind}\""), json);
        }
    }

    #[test]
    fn group_id_needs_the_separator() {
        let table = [
            ("GID_a@@@b", Some("GID_a")),
            ("GID_a@@@b@@@c", Some("GID_a")),
            ("@@@b", Some("")),
            ("GID_a", None),
            ("GID_a@@b", None),
            ("clean retained", None),
            ("ünïcödé", None),
            ("a/b", None),
            ("GID_ü@@@a/b", Some("GID_ü")),
        ];
        for (client_id, group) in table {
            assert_eq!(event(client_id, "").group_id(), group, "{client_id}");
        }
    }
}
