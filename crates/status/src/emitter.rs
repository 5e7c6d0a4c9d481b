//! The per-connection event emitter and the sequence numbers it stamps.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{ChannelId, EventType, StatusEvent};

/// A shared, monotone source of sequence numbers for [`StatusEvent::seq`].
///
/// One source per broker process is enough: numbers from a single counter
/// grow for every client, so they are monotone per client too, across all of
/// that client's connections. Share it with an [`Arc`].
///
/// Sequence numbers only break ties between events of one client in the same
/// millisecond, so restarting at 0 after a broker restart is harmless: the
/// time has moved on. A broker that wants them to grow across restarts too can
/// start the source from the current time, [`SequenceSource::starting_at`].
///
/// ```
/// use mqgate_status::SequenceSource;
///
/// let source = SequenceSource::starting_at(41);
/// assert_eq!(source.next(), 41);
/// assert_eq!(source.next(), 42);
/// ```
#[derive(Debug, Default)]
pub struct SequenceSource(AtomicU64);

impl SequenceSource {
    /// A source whose first number is 0.
    #[must_use]
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// A source whose first number is `first`.
    #[must_use]
    pub const fn starting_at(first: u64) -> Self {
        Self(AtomicU64::new(first))
    }

    /// Takes the next number. Saturates at `u64::MAX` instead of wrapping, so
    /// it can never go backwards.
    #[must_use]
    pub fn next(&self) -> u64 {
        let bump = |n: u64| Some(n.saturating_add(1));
        match self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, bump)
        {
            Ok(previous) | Err(previous) => previous,
        }
    }
}

/// The status events of one connection, with the life-cycle rule built
/// in: exactly one `connect`, at most one `disconnect`, exactly one
/// `tcpclean`, in that order.
///
/// - `connect` is emitted by the constructor, [`ConnectionEvents::connect`],
///   so there is no connection without one. Build it when the CONNECT packet
///   has been accepted (authenticated, CONNACK 0 about to be sent).
/// - [`on_disconnect_packet`](Self::on_disconnect_packet) gives `disconnect`
///   the first time the client sends DISCONNECT, and nothing after.
/// - [`finish`](Self::finish) (alias [`on_tcp_closed`](Self::on_tcp_closed))
///   gives `tcpclean` the first time, and nothing after: call it on every
///   path that ends the connection, including `Drop`.
///
/// Times passed in are clamped so they never go backwards, and every event
/// takes a fresh number from the shared [`SequenceSource`]: the events of a
/// connection sort by `(time, seq)` in the order they were emitted.
///
/// A driver guarantees `tcpclean` whatever way its task ends (error, panic
/// unwinding, takeover, shutdown) by finishing from `Drop`:
///
/// ```
/// use std::sync::Arc;
/// use mqgate_status::{ChannelId, ConnectionEvents, EventType, SequenceSource, StatusEvent};
///
/// struct Connection<'a> {
///     events: ConnectionEvents,
///     sink: &'a mut Vec<StatusEvent>,
///     clock: fn() -> u64,
/// }
///
/// impl Drop for Connection<'_> {
///     fn drop(&mut self) {
///         // Idempotent: a no-op when the normal close path already finished.
///         if let Some(tcpclean) = self.events.finish((self.clock)()) {
///             self.sink.push(tcpclean);
///         }
///     }
/// }
///
/// let sequence = Arc::new(SequenceSource::new());
/// let mut sink = Vec::new();
/// {
///     let (events, connect) = ConnectionEvents::connect(
///         "GID_shop@@@tag-0042", ChannelId::from_bytes([1; 16]), "10.0.0.5:40000".parse().unwrap(),
///         sequence, 1_000,
///     );
///     let mut connection = Connection { events, sink: &mut sink, clock: || 2_000 };
///     connection.sink.push(connect);
///     // ... the task returns early with an error: no explicit close ...
/// }
/// let kinds: Vec<EventType> = sink.iter().map(|e| e.event_type).collect();
/// assert_eq!(kinds, [EventType::Connect, EventType::Tcpclean]);
/// ```
///
/// It holds no copy of its own: the client id is shared with the caller's [`Arc`], and the
/// address is formatted only into the events (a broker keeps one of these per connection).
#[derive(Debug)]
pub struct ConnectionEvents {
    client_id: Arc<str>,
    channel_id: ChannelId,
    client_ip: SocketAddr,
    sequence: Arc<SequenceSource>,
    latest_time: u64,
    disconnect_emitted: bool,
    finished: bool,
}

impl ConnectionEvents {
    /// Starts the events of a connection whose CONNECT was accepted at
    /// `now_ms`, and returns them with its `connect` event. The events' `clientIp` is
    /// `client_ip` as `ip:port`.
    #[must_use]
    pub fn connect(
        client_id: impl Into<Arc<str>>,
        channel_id: ChannelId,
        client_ip: SocketAddr,
        sequence: Arc<SequenceSource>,
        now_ms: u64,
    ) -> (Self, StatusEvent) {
        let mut events = Self {
            client_id: client_id.into(),
            channel_id,
            client_ip,
            sequence,
            latest_time: now_ms,
            disconnect_emitted: false,
            finished: false,
        };
        let connect = events.event(EventType::Connect, now_ms);
        (events, connect)
    }

    /// The client sent an MQTT DISCONNECT at `now_ms`: returns the
    /// `disconnect` event the first time, `None` after that or once the
    /// connection is finished.
    #[must_use]
    pub fn on_disconnect_packet(&mut self, now_ms: u64) -> Option<StatusEvent> {
        if self.disconnect_emitted || self.finished {
            return None;
        }
        self.disconnect_emitted = true;
        Some(self.event(EventType::Disconnect, now_ms))
    }

    /// The TCP connection closed at `now_ms`. The same as [`finish`](Self::finish).
    #[must_use]
    pub fn on_tcp_closed(&mut self, now_ms: u64) -> Option<StatusEvent> {
        self.finish(now_ms)
    }

    /// Ends the connection at `now_ms`: returns the `tcpclean` event the first
    /// time, `None` after that. Safe to call from every exit path and `Drop`.
    #[must_use]
    pub fn finish(&mut self, now_ms: u64) -> Option<StatusEvent> {
        if self.finished {
            return None;
        }
        self.finished = true;
        Some(self.event(EventType::Tcpclean, now_ms))
    }

    /// Whether `tcpclean` has been emitted.
    #[must_use]
    pub const fn is_finished(&self) -> bool {
        self.finished
    }

    /// The connection's channel id.
    #[must_use]
    pub const fn channel_id(&self) -> ChannelId {
        self.channel_id
    }

    /// The connection's client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The connection's client id, shared: the owner of these events need not keep a copy.
    #[must_use]
    pub const fn shared_client_id(&self) -> &Arc<str> {
        &self.client_id
    }

    /// The client's address.
    #[must_use]
    pub const fn client_ip(&self) -> SocketAddr {
        self.client_ip
    }

    fn event(&mut self, event_type: EventType, now_ms: u64) -> StatusEvent {
        // A clock that steps back must not reorder this connection's events.
        self.latest_time = self.latest_time.max(now_ms);
        StatusEvent {
            client_id: self.client_id.as_ref().to_owned(),
            time: self.latest_time,
            event_type,
            channel_id: self.channel_id,
            client_ip: self.client_ip.to_string(),
            seq: self.sequence.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    const ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)), 5);

    /// One step a driver may take, in any order, any number of times.
    #[derive(Clone, Copy, Debug)]
    enum Step {
        DisconnectPacket(u64),
        TcpClosed(u64),
        Finish(u64),
    }

    fn run(steps: &[Step]) -> Vec<StatusEvent> {
        let sequence = Arc::new(SequenceSource::new());
        let channel = ChannelId::from_bytes([9; 16]);
        let (mut events, connect) =
            ConnectionEvents::connect("GID_a@@@1", channel, ADDR, sequence, 100);
        assert_eq!(connect.client_ip, "1.2.3.4:5");
        let mut out = vec![connect];
        for step in steps {
            out.extend(match *step {
                Step::DisconnectPacket(now) => events.on_disconnect_packet(now),
                Step::TcpClosed(now) => events.on_tcp_closed(now),
                Step::Finish(now) => events.finish(now),
            });
        }
        out.extend(events.finish(10_000));
        out
    }

    #[test]
    fn every_path_gives_connect_optional_disconnect_tcpclean() {
        use EventType::{Connect, Disconnect, Tcpclean};
        use Step::{DisconnectPacket as D, Finish as F, TcpClosed as T};
        let table: &[(&[Step], &[EventType])] = &[
            (&[], &[Connect, Tcpclean]),
            (&[T(200)], &[Connect, Tcpclean]),
            (&[D(150), T(200)], &[Connect, Disconnect, Tcpclean]),
            (
                &[D(150), D(160), F(200), T(300)],
                &[Connect, Disconnect, Tcpclean],
            ),
            (&[F(200), D(250)], &[Connect, Tcpclean]),
            (&[D(150)], &[Connect, Disconnect, Tcpclean]),
            (&[T(200), F(200), T(201)], &[Connect, Tcpclean]),
        ];
        for (steps, expected) in table {
            let kinds: Vec<EventType> = run(steps).iter().map(|e| e.event_type).collect();
            assert_eq!(&kinds, expected, "{steps:?}");
        }
    }

    #[test]
    fn stamps_grow_even_when_the_clock_steps_back() {
        let events = run(&[Step::DisconnectPacket(50), Step::TcpClosed(20)]);
        let stamps: Vec<(u64, u64)> = events.iter().map(StatusEvent::stamp).collect();
        assert_eq!(stamps, [(100, 0), (100, 1), (100, 2)]);
    }

    #[test]
    fn sequence_is_monotone_across_connections_of_one_client() {
        let sequence = Arc::new(SequenceSource::starting_at(7));
        let first = ChannelId::from_bytes([1; 16]);
        let second = ChannelId::from_bytes([2; 16]);
        let (mut old, a) = ConnectionEvents::connect("c", first, ADDR, Arc::clone(&sequence), 5);
        let (mut new, b) = ConnectionEvents::connect("c", second, ADDR, Arc::clone(&sequence), 5);
        let c = old.finish(5);
        let d = new.finish(5);
        let seqs: Vec<u64> = [Some(a), Some(b), c, d]
            .into_iter()
            .flatten()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, [7, 8, 9, 10]);
    }

    #[test]
    fn sequence_saturates_instead_of_wrapping() {
        let source = SequenceSource::starting_at(u64::MAX - 1);
        assert_eq!(
            [source.next(), source.next(), source.next()],
            [u64::MAX - 1, u64::MAX, u64::MAX]
        );
    }
}
