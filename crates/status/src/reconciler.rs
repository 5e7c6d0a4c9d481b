//! [`Reconciler`]: online/offline from an unordered stream of status events.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use crate::event::group_of;
use crate::{ChannelId, EventType, StatusEvent};

/// How the [`Reconciler`] bounds its memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconcilerConfig {
    /// How long, in milliseconds, a closed channel is remembered after its
    /// last event. It must exceed the longest delay with which an event can
    /// still arrive: an event older than the horizon for a channel already
    /// forgotten is refused ([`Applied::TooLate`]). Default: one hour.
    pub horizon_ms: u64,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            horizon_ms: 60 * 60 * 1000,
        }
    }
}

/// What applying one event changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The client was offline and is now online.
    BecameOnline,
    /// The client was online and is now offline.
    BecameOffline,
    /// The client's online state did not change (a duplicate, a `disconnect`,
    /// a second channel of a client already online, ...).
    NoChange,
    /// The event is older than the forgetting horizon and names a channel
    /// the reconciler no longer (or never) knew: it was ignored, because its
    /// channel may have been closed and forgotten already.
    TooLate,
}

/// `(time, seq)`: the order of events of one client.
type Stamp = (u64, u64);

/// Everything known about one channel. Each field keeps the earliest stamp
/// seen, so merging events is commutative and idempotent: any arrival order,
/// with any duplicates, leaves the same state.
#[derive(Clone, Debug)]
struct ChannelRecord {
    id: ChannelId,
    connected: Option<Stamp>,
    disconnected: Option<Stamp>,
    closed: Option<Stamp>,
    last_time: u64,
}

impl ChannelRecord {
    fn new(id: ChannelId) -> Self {
        Self {
            id,
            connected: None,
            disconnected: None,
            closed: None,
            last_time: 0,
        }
    }

    fn merge(&mut self, event: &StatusEvent) {
        let slot = match event.event_type {
            EventType::Connect => &mut self.connected,
            EventType::Disconnect => &mut self.disconnected,
            EventType::Tcpclean => &mut self.closed,
        };
        let stamp = event.stamp();
        *slot = Some(slot.map_or(stamp, |seen| seen.min(stamp)));
        self.last_time = self.last_time.max(event.time);
    }

    /// The rule: a channel counts while it has a connect and no tcpclean. A
    /// `disconnect` alone proves nothing: the TCP connection may live on.
    fn is_open(&self) -> bool {
        self.connected.is_some() && self.closed.is_none()
    }
}

/// Decides which clients are online from status events that arrive late, out
/// of order, or more than once (see the [crate documentation](crate)).
///
/// ```
/// use mqgate_status::{Applied, ChannelId, EventType, Reconciler, StatusEvent};
///
/// let event = |kind, channel: u8, time| StatusEvent {
///     client_id: "GID_app@@@phone".into(), time, event_type: kind,
///     channel_id: ChannelId::from_bytes([channel; 16]), client_ip: "10.0.0.9:4000".into(), seq: 0,
/// };
/// let mut reconciler = Reconciler::default();
/// // The phone flaps: channel 2 connects before channel 1's tcpclean arrives.
/// assert_eq!(reconciler.apply(&event(EventType::Connect, 1, 1_000)), Applied::BecameOnline);
/// assert_eq!(reconciler.apply(&event(EventType::Connect, 2, 5_000)), Applied::NoChange);
/// assert_eq!(reconciler.apply(&event(EventType::Tcpclean, 1, 5_100)), Applied::NoChange);
/// assert!(reconciler.is_online("GID_app@@@phone"));
/// assert_eq!(reconciler.online_since("GID_app@@@phone"), Some(5_000));
/// ```
#[derive(Debug, Default)]
pub struct Reconciler {
    config: ReconcilerConfig,
    clients: HashMap<String, Vec<ChannelRecord>>,
    /// Events older than this, for channels not remembered, are refused.
    watermark: u64,
}

impl Reconciler {
    /// An empty reconciler with the given memory bound.
    #[must_use]
    pub fn new(config: ReconcilerConfig) -> Self {
        Self {
            config,
            clients: HashMap::new(),
            watermark: 0,
        }
    }

    /// Takes one event into account, whenever it arrives. Duplicates are
    /// harmless. Returns how the client's online state changed.
    #[must_use = "`Applied` says whether the client came online or went offline"]
    pub fn apply(&mut self, event: &StatusEvent) -> Applied {
        let known = self
            .clients
            .get(event.client_id.as_str())
            .is_some_and(|channels| channels.iter().any(|c| c.id == event.channel_id));
        if !known && event.time < self.watermark {
            return Applied::TooLate;
        }
        let channels = self
            .clients
            .entry_ref(event.client_id.as_str())
            .or_default();
        let was_online = channels.iter().any(ChannelRecord::is_open);
        match channels.iter_mut().find(|c| c.id == event.channel_id) {
            Some(record) => record.merge(event),
            None => {
                let mut record = ChannelRecord::new(event.channel_id);
                record.merge(event);
                channels.push(record);
            }
        }
        match (was_online, channels.iter().any(ChannelRecord::is_open)) {
            (false, true) => Applied::BecameOnline,
            (true, false) => Applied::BecameOffline,
            _ => Applied::NoChange,
        }
    }

    /// Whether some channel of the client has a `connect` and no `tcpclean`.
    #[must_use]
    pub fn is_online(&self, client_id: &str) -> bool {
        self.online_channels(client_id).next().is_some()
    }

    /// The channels through which the client is online, in no set order.
    /// More than one while the client flaps or is being taken over.
    pub fn online_channels(&self, client_id: &str) -> impl Iterator<Item = ChannelId> + '_ {
        self.open_records(client_id).map(|record| record.id)
    }

    /// The `connect` time of the client's oldest open channel, or `None` when
    /// it is offline. Closed channels do not count: after a flap it is the
    /// time of the connection that is still up.
    #[must_use]
    pub fn online_since(&self, client_id: &str) -> Option<u64> {
        self.open_records(client_id)
            .filter_map(|record| record.connected.map(|(time, _)| time))
            .min()
    }

    /// How many clients are online.
    #[must_use]
    pub fn online_count(&self) -> usize {
        self.online_clients().count()
    }

    /// The ids of the clients that are online, in no set order.
    pub fn online_clients(&self) -> impl Iterator<Item = &str> + '_ {
        self.clients
            .iter()
            .filter(|(_, channels)| channels.iter().any(ChannelRecord::is_open))
            .map(|(client_id, _)| client_id.as_str())
    }

    /// How many clients are online in each group (the part of the client id
    /// before `@@@`). Clients whose id has no `@@@` count under `""`. Groups
    /// with nobody online are absent.
    #[must_use]
    pub fn online_count_by_group(&self) -> BTreeMap<String, usize> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for client_id in self.online_clients() {
            let group = group_of(client_id).unwrap_or("");
            match counts.get_mut(group) {
                Some(count) => *count = count.saturating_add(1),
                None => {
                    counts.insert(group.to_owned(), 1);
                }
            }
        }
        counts
    }

    /// Forgets channels that are not open and whose last event is older than
    /// `now_ms` minus the horizon, and from then on refuses events that old
    /// for unknown channels. Open channels are never forgotten: they are the
    /// online state. Call it periodically, e.g. once a minute.
    pub fn forget_before(&mut self, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(self.config.horizon_ms);
        self.watermark = self.watermark.max(cutoff);
        self.clients.retain(|_, channels| {
            channels.retain(|record| record.is_open() || record.last_time >= cutoff);
            !channels.is_empty()
        });
    }

    /// How many channels are remembered, open or closed: the memory in use.
    #[must_use]
    pub fn remembered_channels(&self) -> usize {
        self.clients.values().map(Vec::len).sum()
    }

    fn open_records(&self, client_id: &str) -> impl Iterator<Item = &ChannelRecord> + '_ {
        self.clients
            .get(client_id)
            .into_iter()
            .flatten()
            .filter(|record| record.is_open())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::{Connect as C, Disconnect as D, Tcpclean as T};

    const CLIENT: &str = "GID_app@@@phone";

    fn event(kind: EventType, channel: u8, time: u64) -> StatusEvent {
        StatusEvent {
            client_id: CLIENT.into(),
            time,
            event_type: kind,
            channel_id: ChannelId::from_bytes([channel; 16]),
            client_ip: String::new(),
            seq: 0,
        }
    }

    /// Each row: events in arrival order (kind, channel, time), then the
    /// expected online state, open channels and online-since.
    #[test]
    fn spec_rules_table() {
        type Row = (
            &'static str,
            &'static [(EventType, u8, u64)],
            bool,
            &'static [u8],
            Option<u64>,
        );
        let table: &[Row] = &[
            ("nothing", &[], false, &[], None),
            ("connect", &[(C, 1, 10)], true, &[1], Some(10)),
            (
                "connect then tcpclean",
                &[(C, 1, 10), (T, 1, 20)],
                false,
                &[],
                None,
            ),
            (
                "tcpclean before its connect",
                &[(T, 1, 20), (C, 1, 10)],
                false,
                &[],
                None,
            ),
            (
                "disconnect is not offline",
                &[(C, 1, 10), (D, 1, 15)],
                true,
                &[1],
                Some(10),
            ),
            (
                "disconnect alone is not online",
                &[(D, 1, 15)],
                false,
                &[],
                None,
            ),
            (
                "full life",
                &[(C, 1, 10), (D, 1, 15), (T, 1, 16)],
                false,
                &[],
                None,
            ),
            (
                "flap: old tcpclean after new connect",
                &[(C, 1, 10), (C, 2, 50), (T, 1, 60)],
                true,
                &[2],
                Some(50),
            ),
            (
                "flap: events reversed",
                &[(T, 1, 60), (C, 2, 50), (C, 1, 10)],
                true,
                &[2],
                Some(50),
            ),
            (
                "offline event of another channel",
                &[(C, 2, 50), (T, 1, 60)],
                true,
                &[2],
                Some(50),
            ),
            (
                "two open channels",
                &[(C, 1, 10), (C, 2, 50)],
                true,
                &[1, 2],
                Some(10),
            ),
            (
                "duplicates",
                &[(C, 1, 10), (C, 1, 10), (T, 1, 20), (T, 1, 20)],
                false,
                &[],
                None,
            ),
        ];
        for (name, events, online, channels, since) in table {
            let mut reconciler = Reconciler::default();
            for &(kind, channel, time) in *events {
                let _ = reconciler.apply(&event(kind, channel, time));
            }
            let mut open: Vec<u8> = reconciler
                .online_channels(CLIENT)
                .map(|id| id.as_bytes()[0])
                .collect();
            open.sort_unstable();
            assert_eq!(reconciler.is_online(CLIENT), *online, "{name}");
            assert_eq!(&open, channels, "{name}");
            assert_eq!(reconciler.online_since(CLIENT), *since, "{name}");
        }
    }

    #[test]
    fn apply_reports_transitions() {
        let mut reconciler = Reconciler::default();
        let steps = [
            ((C, 1, 10), Applied::BecameOnline),
            ((C, 1, 10), Applied::NoChange),
            ((C, 2, 20), Applied::NoChange),
            ((T, 1, 30), Applied::NoChange),
            ((D, 2, 35), Applied::NoChange),
            ((T, 2, 40), Applied::BecameOffline),
            ((T, 2, 40), Applied::NoChange),
        ];
        for ((kind, channel, time), expected) in steps {
            assert_eq!(
                reconciler.apply(&event(kind, channel, time)),
                expected,
                "{kind} {channel} {time}"
            );
        }
    }

    #[test]
    fn forgetting_drops_closed_channels_and_refuses_their_late_events() {
        let mut reconciler = Reconciler::new(ReconcilerConfig { horizon_ms: 100 });
        for step in [(C, 1, 10), (T, 1, 20), (C, 2, 30), (T, 3, 40)] {
            let _ = reconciler.apply(&event(step.0, step.1, step.2));
        }
        assert_eq!(reconciler.remembered_channels(), 3);
        reconciler.forget_before(135);
        // Channel 2 is open and stays; channel 3's tombstone (40) is within the horizon.
        assert_eq!(reconciler.remembered_channels(), 2);
        // A late duplicate connect of forgotten channel 1 must not resurrect it.
        assert_eq!(reconciler.apply(&event(C, 1, 10)), Applied::TooLate);
        // A late connect of still-remembered channel 3 is matched to its tombstone.
        assert_eq!(reconciler.apply(&event(C, 3, 34)), Applied::NoChange);
        assert_eq!(reconciler.online_channels(CLIENT).count(), 1);
        reconciler.forget_before(1_000);
        assert_eq!(
            reconciler.remembered_channels(),
            1,
            "the open channel is never forgotten"
        );
        assert_eq!(reconciler.apply(&event(T, 2, 900)), Applied::BecameOffline);
        reconciler.forget_before(2_000);
        assert_eq!(reconciler.remembered_channels(), 0);
    }

    #[test]
    fn counts_online_clients_per_group() {
        let mut reconciler = Reconciler::default();
        let clients = [
            ("GID_a@@@1", true),
            ("GID_a@@@2", true),
            ("GID_a@@@3", false),
            ("GID_b@@@1", true),
            ("loose", true),
        ];
        for (index, (client_id, stays_online)) in (0u8..).zip(clients) {
            let mut connect = event(C, index, 10);
            connect.client_id = client_id.into();
            let _ = reconciler.apply(&connect);
            if !stays_online {
                connect.event_type = T;
                let _ = reconciler.apply(&connect);
            }
        }
        let counts = reconciler.online_count_by_group();
        let expected: BTreeMap<String, usize> = [
            ("GID_a".to_owned(), 2),
            ("GID_b".to_owned(), 1),
            (String::new(), 1),
        ]
        .into();
        assert_eq!(counts, expected);
        assert_eq!(reconciler.online_count(), 4);
    }
}
