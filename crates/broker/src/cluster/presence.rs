//! Presence: every connect / disconnect / tcpclean a node emits crosses to the others on the
//! presence topic (ordered send keyed by client id, so one client's events keep their order
//! in one queue), each node delivers the others' events to its own status listeners, and
//! every node keeps a view of which client is on which node from them. The same topic
//! carries what acts on a client wherever it is: a takeover is decided by the order of two
//! connects in the client's queue, and a `close` asks the node that holds a client to close
//! it. See `docs/cluster.md` (presence, dead nodes, takeover).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use mqgate_rocketmq::RocketMessage;
use mqgate_status::{ChannelId, EventType, StatusEvent};
use serde::{Deserialize, Serialize};

use super::route::NODE;

/// The user property carrying when the sending node started (which run of the node sent it).
pub(super) const STARTED: &str = "mqgateStarted";
/// The user property of a connect that carries its client's will: the length of the event's
/// JSON, which the will's message record (layout 2 of `docs/records.md`) follows in the body.
pub(super) const WILL: &str = "mqgateWill";
/// The user property saying the carried will is retained (`1`).
pub(super) const WILL_RETAIN: &str = "mqgateWillRetain";
/// The user property giving the carried will's delay in seconds, when it has one (MQTT 5).
pub(super) const WILL_DELAY: &str = "mqgateWillDelay";
/// The tag of a connect event sent again for a node that joined (it updates the view only).
pub(super) const PRESENT: &str = "present";
/// The tag of the message a node sends once its presence consumer runs: the others answer
/// with a [`PRESENT`] for each client they hold.
pub(super) const HELLO: &str = "hello";
/// The tag of the message a node sends when it starts, so the topic exists before its
/// consumer starts; nothing to do.
pub(super) const JOIN: &str = "join";
/// The tag of a request to the node holding a client to close its connection.
pub(super) const CLOSE: &str = "close";
/// How long a closed channel is remembered (so a late [`PRESENT`] of it is not taken in).
const CLOSED_KEEP_MS: u64 = 60_000;

/// One run of a node: its id and when it started.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct NodeRun {
    pub(super) id: String,
    pub(super) started_ms: u64,
}

pub(super) use crate::core::status::CarriedWill;

/// A consumed presence message.
#[derive(Debug)]
pub(super) enum Incoming {
    /// A status event, as the node it happened on (or a survivor of it) emitted it; a
    /// connect with its client's will, if it left one.
    Event {
        from: NodeRun,
        event: StatusEvent,
        will: Option<CarriedWill>,
    },
    /// A client `from` holds now (its connect event and will), for the view only.
    Present {
        from: NodeRun,
        event: StatusEvent,
        will: Option<CarriedWill>,
    },
    /// `from` joined: answer with what this node holds.
    Hello { from: NodeRun },
    /// A node starts (its consumer does not run yet): nothing to do.
    Join,
    /// Close `client_id`'s connection on `channel`, where it is.
    Close {
        from: NodeRun,
        client_id: String,
        channel: ChannelId,
    },
}

/// The body of a [`CLOSE`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloseBody {
    client_id: String,
    channel_id: String,
}

fn message(topic: &str, from: &NodeRun, tag: &str, key: &str, body: Bytes) -> RocketMessage {
    let mut properties = BTreeMap::new();
    properties.insert(NODE.to_owned(), from.id.clone());
    properties.insert(STARTED.to_owned(), from.started_ms.to_string());
    RocketMessage {
        topic: topic.to_owned(),
        tags: Some(tag.to_owned()),
        keys: vec![key.to_owned()],
        properties,
        body,
    }
}

/// The presence message of `event` (tagged with its type, or [`PRESENT`] when `present`),
/// with the client's will after the event in the body when it carries one.
pub(super) fn event_message(
    topic: &str,
    from: &NodeRun,
    event: &StatusEvent,
    present: bool,
    will: Option<&CarriedWill>,
) -> RocketMessage {
    let tag = if present {
        PRESENT
    } else {
        event.event_type.as_str()
    };
    let mut body = event.to_json().into_bytes();
    let json_len = body.len();
    if let Some(will) = will {
        body.extend_from_slice(&mqgate_store::codec::encode_message(&will.message));
    }
    let mut message = message(topic, from, tag, &event.client_id, Bytes::from(body));
    if let Some(will) = will {
        message
            .properties
            .insert(WILL.to_owned(), json_len.to_string());
        if will.retain {
            message
                .properties
                .insert(WILL_RETAIN.to_owned(), "1".to_owned());
        }
        if will.delay_s > 0 {
            message
                .properties
                .insert(WILL_DELAY.to_owned(), will.delay_s.to_string());
        }
    }
    message
}

/// The message a node sends once its presence consumer runs.
pub(super) fn hello_message(topic: &str, from: &NodeRun) -> RocketMessage {
    // RocketMQ refuses an empty body.
    let body = Bytes::copy_from_slice(from.id.as_bytes());
    message(topic, from, HELLO, &from.id, body)
}

/// The message a node sends when it starts, before its presence consumer runs.
pub(super) fn join_message(topic: &str, from: &NodeRun) -> RocketMessage {
    let body = Bytes::copy_from_slice(from.id.as_bytes());
    message(topic, from, JOIN, &from.id, body)
}

/// The request to close `client_id`'s connection on `channel`.
pub(super) fn close_message(
    topic: &str,
    from: &NodeRun,
    client_id: &str,
    channel: ChannelId,
) -> RocketMessage {
    let body = CloseBody {
        client_id: client_id.to_owned(),
        channel_id: channel.to_string(),
    };
    // Two strings: nothing in it can fail to serialize.
    let body = serde_json::to_vec(&body).unwrap_or_default();
    message(topic, from, CLOSE, client_id, Bytes::from(body))
}

/// Reads a consumed presence message.
///
/// # Errors
/// What makes it unreadable: no sending node or start time, an unknown tag, a body that is
/// not what the tag says.
pub(super) fn decode(message: &RocketMessage) -> Result<Incoming, String> {
    let id = message
        .properties
        .get(NODE)
        .ok_or_else(|| format!("no {NODE} property"))?;
    let started_ms = message
        .properties
        .get(STARTED)
        .ok_or_else(|| format!("no {STARTED} property"))?
        .parse::<u64>()
        .map_err(|e| format!("{STARTED}: {e}"))?;
    let from = NodeRun {
        id: id.clone(),
        started_ms,
    };
    // The event's JSON, and the will's record after it when the message carries one.
    let (json, will) = match message.properties.get(WILL) {
        None => (&message.body[..], None),
        Some(len) => {
            let len = len
                .parse::<usize>()
                .ok()
                .filter(|len| *len <= message.body.len())
                .ok_or_else(|| format!("{WILL} {len:?} is not a length within the body"))?;
            let (json, record) = message.body.split_at(len);
            let will = mqgate_store::codec::decode_message(record)
                .map_err(|error| format!("will: {error}"))?;
            let retain = message.properties.get(WILL_RETAIN).map(String::as_str) == Some("1");
            let delay_s = match message.properties.get(WILL_DELAY) {
                None => 0,
                Some(delay) => delay
                    .parse::<u32>()
                    .map_err(|error| format!("{WILL_DELAY} {delay:?}: {error}"))?,
            };
            let will = CarriedWill {
                message: will,
                retain,
                delay_s,
            };
            (json, Some(will))
        }
    };
    let event = || {
        let event =
            StatusEvent::from_json(json).map_err(|error| format!("status event: {error}"))?;
        if will.is_some() && event.event_type != EventType::Connect {
            return Err(format!("a will on a {} event", event.event_type));
        }
        Ok(event)
    };
    match message.tags.as_deref() {
        Some(HELLO) => Ok(Incoming::Hello { from }),
        Some(JOIN) => Ok(Incoming::Join),
        Some(PRESENT) => {
            let event = event()?;
            if event.event_type != EventType::Connect {
                return Err(format!("{PRESENT} of a {} event", event.event_type));
            }
            Ok(Incoming::Present { from, event, will })
        }
        Some(CLOSE) => {
            let body: CloseBody = serde_json::from_slice(&message.body)
                .map_err(|error| format!("close request: {error}"))?;
            let channel = body
                .channel_id
                .parse()
                .map_err(|error| format!("close request: channelId: {error}"))?;
            Ok(Incoming::Close {
                from,
                client_id: body.client_id,
                channel,
            })
        }
        Some(tag) => {
            let event = event()?;
            if event.event_type.as_str() != tag {
                return Err(format!("tag {tag:?} on a {} event", event.event_type));
            }
            Ok(Incoming::Event { from, event, will })
        }
        None => Err("no tag".to_owned()),
    }
}

/// Where the view says a client is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    /// The node (run) it is connected to.
    pub(super) node: NodeRun,
    /// Its connection there.
    pub(super) channel: ChannelId,
    /// Its connect event's stamp and address.
    pub(super) time: u64,
    pub(super) seq: u64,
    pub(super) client_ip: String,
    /// When this node took it in (this node's clock).
    pub(super) seen_ms: u64,
    /// When this node sent a tcpclean for it (its node gone), if it did.
    pub(super) cleaning_ms: Option<u64>,
    /// Its will, until it sent a DISCONNECT.
    pub(super) will: Option<Arc<CarriedWill>>,
}

impl Entry {
    /// The entry a connect event of `node` makes (with the client's will), taken in at `now`.
    pub(super) fn new(
        node: NodeRun,
        event: &StatusEvent,
        will: Option<Arc<CarriedWill>>,
        now: u64,
    ) -> Entry {
        Entry {
            will,
            node,
            channel: event.channel_id,
            time: event.time,
            seq: event.seq,
            client_ip: event.client_ip.clone(),
            seen_ms: now,
            cleaning_ms: None,
        }
    }
}

/// Which client is on which node, as this node learnt it from the presence topic.
#[derive(Debug, Default)]
pub(super) struct View {
    clients: HashMap<String, Entry>,
    /// How many clients each node run has in `clients` (so the dead-node check looks at the
    /// clients only when some node run in the view is not alive).
    per_node: HashMap<NodeRun, usize>,
    /// Channels whose tcpclean came, and when.
    closed: HashMap<ChannelId, u64>,
}

impl View {
    /// Where `client_id` is.
    pub(super) fn get(&self, client_id: &str) -> Option<&Entry> {
        self.clients.get(client_id)
    }

    /// Whether `channel`'s tcpclean came (within the last minute).
    pub(super) fn was_closed(&self, channel: ChannelId) -> bool {
        self.closed.contains_key(&channel)
    }

    /// `client_id` is at `entry` now.
    pub(super) fn set(&mut self, client_id: &str, entry: Entry) {
        *self.per_node.entry(entry.node.clone()).or_default() += 1;
        if let Some(old) = self.clients.insert(client_id.to_owned(), entry) {
            self.forget(&old.node);
        }
    }

    /// One client fewer at `node`.
    fn forget(&mut self, node: &NodeRun) {
        if let Some(count) = self.per_node.get_mut(node) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_node.remove(node);
            }
        }
    }

    /// The node runs that have clients in the view.
    pub(super) fn nodes(&self) -> impl Iterator<Item = &NodeRun> {
        self.per_node.keys()
    }

    /// `client_id` sent a DISCONNECT on `channel`: its will is gone.
    pub(super) fn disconnected(&mut self, client_id: &str, channel: ChannelId) {
        if let Some(entry) = self
            .clients
            .get_mut(client_id)
            .filter(|entry| entry.channel == channel)
        {
            entry.will = None;
        }
    }

    /// `channel` of `client_id` closed at `now`: the client leaves the view if that is the
    /// connection it has there.
    pub(super) fn closed(&mut self, client_id: &str, channel: ChannelId, now: u64) {
        if self
            .clients
            .get(client_id)
            .is_some_and(|entry| entry.channel == channel)
        {
            if let Some(entry) = self.clients.remove(client_id) {
                self.forget(&entry.node);
            }
        }
        self.closed.insert(channel, now);
    }

    /// A node says it holds `client_id` at `entry` (a [`PRESENT`]): taken in unless its
    /// channel closed already or the view has a newer connect of the client.
    pub(super) fn present(&mut self, client_id: &str, entry: Entry) {
        if self.was_closed(entry.channel) {
            return;
        }
        match self.clients.get(client_id) {
            Some(known) if (known.time, known.seq) >= (entry.time, entry.seq) => {}
            _ => self.set(client_id, entry),
        }
    }

    /// Every client and where it is.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.clients.iter()
    }

    /// Every client, to look at or mark.
    pub(super) fn entries_mut(&mut self) -> impl Iterator<Item = (&String, &mut Entry)> {
        self.clients.iter_mut()
    }

    /// Forgets closed channels older than a minute at `now`.
    pub(super) fn prune(&mut self, now: u64) {
        self.closed
            .retain(|_, at| now.saturating_sub(*at) < CLOSED_KEEP_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqgate_session::Message;

    fn run(id: &str) -> NodeRun {
        NodeRun {
            id: id.into(),
            started_ms: 7,
        }
    }

    fn event(kind: EventType, channel: u8, time: u64) -> StatusEvent {
        StatusEvent {
            client_id: "GID_a@@@1".into(),
            time,
            event_type: kind,
            channel_id: ChannelId::from_bytes([channel; 16]),
            client_ip: "127.0.0.1:1".into(),
            seq: 1,
        }
    }

    #[test]
    fn every_message_reads_back_and_bad_ones_say_why() {
        let topic = "mqgate_i_presence";
        let a = run("a");
        let tcpclean = event(EventType::Tcpclean, 3, 100);
        match decode(&event_message(topic, &a, &tcpclean, false, None)) {
            Ok(Incoming::Event { from, event, will }) => {
                assert_eq!((from, event, will), (a.clone(), tcpclean.clone(), None))
            }
            other => panic!("{other:?}"),
        }
        let connect = event(EventType::Connect, 3, 100);
        let present = event_message(topic, &a, &connect, true, None);
        assert_eq!(present.keys, ["GID_a@@@1"]);
        assert!(matches!(decode(&present), Ok(Incoming::Present { .. })));
        assert!(matches!(
            decode(&hello_message(topic, &a)),
            Ok(Incoming::Hello { from }) if from == a
        ));
        assert!(matches!(
            decode(&join_message(topic, &a)),
            Ok(Incoming::Join)
        ));
        let channel = ChannelId::from_bytes([9; 16]);
        match decode(&close_message(topic, &a, "GID_a@@@1", channel)) {
            Ok(Incoming::Close {
                client_id,
                channel: c,
                ..
            }) => assert_eq!((client_id.as_str(), c), ("GID_a@@@1", channel)),
            other => panic!("{other:?}"),
        }

        // A connect with its client's will: the will's record follows the event.
        let will = CarriedWill {
            message: Message::new(
                mqgate_session::MessageId(0),
                mqgate_codec::ByteStr::from_static("gone/a"),
                Bytes::from_static(b"\x00bye"),
                mqgate_codec::QoS::AtLeastOnce,
                100,
            ),
            retain: true,
            delay_s: 30,
        };
        let carried = event_message(topic, &a, &connect, false, Some(&will));
        let retained = carried.properties.get(WILL_RETAIN).map(String::as_str);
        assert_eq!(retained, Some("1"));
        let delay = carried.properties.get(WILL_DELAY).map(String::as_str);
        assert_eq!(delay, Some("30"));
        let undelayed = CarriedWill {
            delay_s: 0,
            ..will.clone()
        };
        let plain = event_message(topic, &a, &connect, false, Some(&undelayed));
        assert_eq!(
            plain.properties.get(WILL_DELAY),
            None,
            "no delay, no property"
        );
        assert!(matches!(
            decode(&plain),
            Ok(Incoming::Event { will: Some(back), .. }) if back == undelayed
        ));
        match decode(&carried) {
            Ok(Incoming::Event {
                event, will: back, ..
            }) => assert_eq!((event, back), (connect.clone(), Some(will.clone()))),
            other => panic!("{other:?}"),
        }
        let mut bad = carried.clone();
        bad.properties.insert(WILL.into(), "100000".into());
        assert!(decode(&bad).unwrap_err().contains("not a length"));
        bad.properties.insert(WILL.into(), "3".into());
        assert!(decode(&bad).unwrap_err().contains("will"));
        let mut bad = carried.clone();
        bad.properties.insert(WILL_DELAY.into(), "-1".into());
        assert!(decode(&bad).unwrap_err().contains(WILL_DELAY));
        let bad = event_message(topic, &a, &tcpclean, false, Some(&will));
        assert!(decode(&bad).unwrap_err().contains("a will on a tcpclean"));

        let mut bad = event_message(topic, &a, &connect, false, None);
        bad.tags = Some("tcpclean".into());
        assert!(decode(&bad).unwrap_err().contains("tag"));
        bad.tags = Some(PRESENT.into());
        bad.body = event_message(topic, &a, &event(EventType::Disconnect, 1, 1), false, None).body;
        assert!(decode(&bad)
            .unwrap_err()
            .contains("present of a disconnect"));
        bad.body = Bytes::from_static(b"{}");
        assert!(decode(&bad).unwrap_err().contains("status event"));
        bad.tags = Some(CLOSE.into());
        bad.body = Bytes::from_static(br#"{"clientId":"x","channelId":"nothex"}"#);
        assert!(decode(&bad).unwrap_err().contains("channelId"));
        bad.tags = None;
        assert!(decode(&bad).unwrap_err().contains("no tag"));
        bad.properties.insert(STARTED.into(), "soon".into());
        assert!(decode(&bad).unwrap_err().contains(STARTED));
        bad.properties.clear();
        assert!(decode(&bad).unwrap_err().contains(NODE));
    }

    #[test]
    fn the_view_follows_connects_and_closes_by_channel() {
        let mut view = View::default();
        let client = "GID_a@@@1";
        view.set(
            client,
            Entry::new(run("a"), &event(EventType::Connect, 1, 100), None, 5),
        );
        view.set(
            client,
            Entry::new(run("b"), &event(EventType::Connect, 2, 200), None, 6),
        );
        // The old channel's tcpclean does not take the new connection away.
        view.closed(client, ChannelId::from_bytes([1; 16]), 7);
        assert_eq!(view.get(client).map(|e| e.node.id.as_str()), Some("b"));
        // A present of a closed channel, or older than what the view has, is not taken in.
        view.present(
            client,
            Entry::new(run("a"), &event(EventType::Connect, 1, 300), None, 8),
        );
        view.present(
            client,
            Entry::new(run("c"), &event(EventType::Connect, 3, 150), None, 8),
        );
        assert_eq!(view.get(client).map(|e| e.node.id.as_str()), Some("b"));
        // A DISCONNECT takes the will away; one of another channel does not.
        let will = Arc::new(CarriedWill {
            message: Message::new(
                mqgate_session::MessageId(0),
                mqgate_codec::ByteStr::from_static("gone/a"),
                Bytes::from_static(b"bye"),
                mqgate_codec::QoS::AtMostOnce,
                100,
            ),
            retain: false,
            delay_s: 0,
        });
        let connect = event(EventType::Connect, 2, 200);
        view.set(client, Entry::new(run("b"), &connect, Some(will), 6));
        view.disconnected(client, ChannelId::from_bytes([1; 16]));
        assert!(view.get(client).is_some_and(|e| e.will.is_some()));
        view.disconnected(client, ChannelId::from_bytes([2; 16]));
        assert!(view.get(client).is_some_and(|e| e.will.is_none()));
        view.closed(client, ChannelId::from_bytes([2; 16]), 9);
        assert!(view.get(client).is_none());
        view.present(
            client,
            Entry::new(run("c"), &event(EventType::Connect, 3, 150), None, 10),
        );
        assert_eq!(view.get(client).map(|e| e.node.id.as_str()), Some("c"));
        assert_eq!(view.clients.len(), 1);
        let nodes: Vec<&str> = view.nodes().map(|n| n.id.as_str()).collect();
        assert_eq!(nodes, ["c"], "a and b have no client left in the view");
        view.prune(7 + CLOSED_KEEP_MS);
        assert!(!view.was_closed(ChannelId::from_bytes([1; 16])));
        assert!(view.was_closed(ChannelId::from_bytes([2; 16])));
    }
}
