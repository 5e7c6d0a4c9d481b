//! One trace record, its binary form, and the time format the OpenAPI answers with.

use crate::TraceError;

/// What happened. The names and codes are the ones the managed service's OpenAPI answers
/// with (`Action` and `ActionCode` of its trace queries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A client's CONNECT was answered (accepted or refused).
    Connect,
    /// A connection ended without DISCONNECT (the network, keep-alive, the broker).
    Close,
    /// A client sent DISCONNECT.
    Disconnect,
    /// A device (an MQTT client) published the message.
    PubMqtt,
    /// The message came from the backend side: the HTTP API, the cloud SDK endpoint, RocketMQ.
    PubMq,
    /// The message was pushed to an online client.
    Sub,
    /// The message was delivered from a client's offline queue.
    PushOffline,
}

impl Action {
    const ALL: [Action; 7] = [
        Action::Connect,
        Action::Close,
        Action::Disconnect,
        Action::PubMqtt,
        Action::PubMq,
        Action::Sub,
        Action::PushOffline,
    ];

    /// The name the OpenAPI answers in `Action`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Connect => "connect",
            Action::Close => "close",
            Action::Disconnect => "disconnect",
            Action::PubMqtt => "pub_mqtt",
            Action::PubMq => "pub_mq",
            Action::Sub => "sub",
            Action::PushOffline => "push_offline",
        }
    }

    /// The code the OpenAPI answers in `ActionCode`.
    pub fn code(self) -> &'static str {
        match self {
            Action::Connect => "mqtt.trace.action.connect",
            Action::Close => "mqtt.trace.action.close",
            Action::Disconnect => "mqtt.trace.action.disconnect",
            Action::PubMqtt => "mqtt.trace.action.msg.pub.mqtt",
            Action::PubMq => "mqtt.trace.action.msg.pub.mq",
            Action::Sub => "mqtt.trace.action.msg.sub",
            Action::PushOffline => "mqtt.trace.action.msg.push.offline",
        }
    }

    /// Whether the action is about a connection (device trace) rather than a message.
    pub fn is_device(self) -> bool {
        matches!(self, Action::Connect | Action::Close | Action::Disconnect)
    }

    fn byte(self) -> u8 {
        self as u8
    }

    fn from_byte(byte: u8) -> Option<Action> {
        Action::ALL.get(usize::from(byte)).copied()
    }
}

/// Why it happened: the OpenAPI's `ActionInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Info {
    /// The CONNECT was accepted.
    Accepted,
    /// The credentials did not allow the connection.
    NotAuthorized,
    /// Another connection took the client id over.
    ClientIdConflict,
    /// A topic or group the client asked for was not allowed.
    ResourceAuthFailed,
    /// The keep-alive expired.
    NoHeart,
    /// The client closed the connection without DISCONNECT.
    ClosedByClient,
    /// The client sent DISCONNECT.
    DisconnectedByClient,
    /// The client sent something invalid (a malformed packet, a protocol violation).
    InvalidParam,
    /// The network failed (a read or write error).
    SocketError,
    /// The broker closed the connection (shutdown, an operator's CloseConnection, a full
    /// store).
    ClosedByServer,
    /// A device published the message.
    PubFromMqttClient,
    /// The backend side published the message.
    PubFromMq,
    /// The message was pushed to an online client.
    PushToMqttClient,
    /// The message was delivered from an offline queue.
    PushOfflineMsgToMqttClient,
}

impl Info {
    const ALL: [Info; 14] = [
        Info::Accepted,
        Info::NotAuthorized,
        Info::ClientIdConflict,
        Info::ResourceAuthFailed,
        Info::NoHeart,
        Info::ClosedByClient,
        Info::DisconnectedByClient,
        Info::InvalidParam,
        Info::SocketError,
        Info::ClosedByServer,
        Info::PubFromMqttClient,
        Info::PubFromMq,
        Info::PushToMqttClient,
        Info::PushOfflineMsgToMqttClient,
    ];

    /// The text the OpenAPI answers in `ActionInfo`.
    pub fn text(self) -> &'static str {
        match self {
            Info::Accepted => "accepted",
            Info::NotAuthorized => "not authorized",
            Info::ClientIdConflict => "clientId conflict",
            Info::ResourceAuthFailed => "resource auth failed",
            Info::NoHeart => "no heart",
            Info::ClosedByClient => "closed by client",
            Info::DisconnectedByClient => "disconnected by client",
            Info::InvalidParam => "invalid param",
            Info::SocketError => "Socket IOException",
            Info::ClosedByServer => "closed by server",
            Info::PubFromMqttClient => "Pub From Mqtt Client",
            Info::PubFromMq => "Pub From MQ",
            Info::PushToMqttClient => "Push To Mqtt Client",
            Info::PushOfflineMsgToMqttClient => "Push Offline Msg To Mqtt Client",
        }
    }

    fn byte(self) -> u8 {
        self as u8
    }

    fn from_byte(byte: u8) -> Option<Info> {
        Info::ALL.get(usize::from(byte)).copied()
    }
}

/// One thing that happened to a client or a message.
///
/// ```
/// use mqgate_trace::{Action, Info, TraceRecord};
///
/// let record = TraceRecord::message(Action::Sub, Info::PushToMqttClient, 1_700_000_000_000, "GID_a@@@1", 0xAB);
/// assert_eq!(record.message_hex().as_deref(), Some("000000000000000000000000000000AB"));
/// assert_eq!(TraceRecord::decode(&record.encode())?.0, record);
/// # Ok::<(), mqgate_trace::TraceError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRecord {
    /// When, in ms since the Unix epoch.
    pub time_ms: u64,
    /// What.
    pub action: Action,
    /// Why.
    pub info: Info,
    /// The client: the one that connected, published, or received.
    pub client_id: String,
    /// The message, for message actions.
    pub message: Option<u128>,
    /// The connection's channel id, for device actions.
    pub channel_id: Option<String>,
}

/// Bytes of a record before its client id: length (4), version (1), action (1), info (1),
/// time (8), message id (16), client id length (2).
const FIXED: usize = 4 + 1 + 1 + 1 + 8 + 16 + 2;
/// The version byte of the layout written; layout 1 (the same fields, an FNV-1a checksum) is
/// still read.
const VERSION: u8 = 2;
/// A record longer than this is damage, not a record (client ids are at most 65 535 bytes and
/// channel ids 255).
const MAX_RECORD: usize = FIXED + 65_535 + 1 + 255 + 4;

impl TraceRecord {
    /// A device record (connect, close, disconnect).
    pub fn device(
        action: Action,
        info: Info,
        time_ms: u64,
        client_id: &str,
        channel_id: &str,
    ) -> Self {
        TraceRecord {
            time_ms,
            action,
            info,
            client_id: client_id.to_owned(),
            message: None,
            channel_id: Some(channel_id.to_owned()),
        }
    }

    /// A message record (published, pushed, delivered from the offline queue).
    pub fn message(action: Action, info: Info, time_ms: u64, client_id: &str, id: u128) -> Self {
        TraceRecord {
            time_ms,
            action,
            info,
            client_id: client_id.to_owned(),
            message: Some(id),
            channel_id: None,
        }
    }

    /// The message id as the OpenAPI shows it: 32 uppercase hex digits.
    pub fn message_hex(&self) -> Option<String> {
        self.message.map(|id| format!("{id:032X}"))
    }

    /// The record's binary form: a length, the fields, a checksum of them.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + self.client_id.len() + 40);
        self.encode_into(&mut out);
        out
    }

    /// Appends the record's binary form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.borrowed().encode_into(out);
    }

    /// The record as a [`RecordRef`] borrowing its texts.
    pub fn borrowed(&self) -> RecordRef<'_> {
        RecordRef {
            time_ms: self.time_ms,
            action: self.action,
            info: self.info,
            client_id: &self.client_id,
            message: self.message,
            channel_id: self.channel_id.as_deref(),
        }
    }

    /// Decodes the record at the start of `bytes`; returns it and the bytes it took.
    ///
    /// # Errors
    /// [`TraceError::Damaged`] when the bytes are not a whole, intact record (a torn last
    /// write, a damaged file). Never panics.
    pub fn decode(bytes: &[u8]) -> Result<(TraceRecord, usize), TraceError> {
        let damaged = |why: &'static str| TraceError::Damaged(why);
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or(damaged("short"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_RECORD {
            return Err(damaged("length"));
        }
        let body = rest.get(..len).ok_or(damaged("torn"))?;
        let (fields, sum) = body.split_last_chunk::<4>().ok_or(damaged("too short"))?;
        let version = *fields.first().ok_or(damaged("too short"))?;
        if version != 1 && version != VERSION {
            return Err(damaged("version"));
        }
        if checksum(version, fields) != u32::from_be_bytes(*sum) {
            return Err(damaged("checksum"));
        }
        let mut r = Reader(&fields[1..]);
        let action = Action::from_byte(r.byte()?).ok_or(damaged("action"))?;
        let info = Info::from_byte(r.byte()?).ok_or(damaged("info"))?;
        let time_ms = u64::from_be_bytes(r.array()?);
        let id = u128::from_be_bytes(r.array()?);
        let has_message = r.byte()? == 1;
        let client_len = usize::from(u16::from_be_bytes(r.array()?));
        let client_id = r.text(client_len)?;
        let channel_len = usize::from(r.byte()?);
        let channel = r.text(channel_len)?;
        if !r.0.is_empty() {
            return Err(damaged("trailing bytes"));
        }
        let record = TraceRecord {
            time_ms,
            action,
            info,
            client_id,
            message: has_message.then_some(id),
            channel_id: (!channel.is_empty() || action.is_device()).then_some(channel),
        };
        Ok((record, 4 + len))
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, TraceError> {
        let (&b, rest) = self.0.split_first().ok_or(TraceError::Damaged("short"))?;
        self.0 = rest;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TraceError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(TraceError::Damaged("short"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn text(&mut self, len: usize) -> Result<String, TraceError> {
        let (head, rest) = self
            .0
            .split_at_checked(len)
            .ok_or(TraceError::Damaged("short"))?;
        self.0 = rest;
        String::from_utf8(head.to_vec()).map_err(|_| TraceError::Damaged("utf-8"))
    }
}

fn clamp(bytes: &[u8], max: usize) -> &[u8] {
    if bytes.len() <= max {
        return bytes;
    }
    // Cut at a character boundary so the stored text stays UTF-8.
    let mut end = max;
    while end > 0 && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    &bytes[..end]
}

/// A [`TraceRecord`] whose client id and channel id are borrowed from their owner: what a
/// recorder hands [`TraceLog::append_refs`](crate::TraceLog::append_refs) so that writing a
/// batch copies no text. It encodes exactly as the owned record does.
///
/// ```
/// use mqgate_trace::{Action, Info, RecordRef, TraceRecord};
///
/// let owned = TraceRecord::message(Action::Sub, Info::PushToMqttClient, 5, "GID_a@@@1", 7);
/// let borrowed = RecordRef {
///     time_ms: 5,
///     action: Action::Sub,
///     info: Info::PushToMqttClient,
///     client_id: "GID_a@@@1",
///     message: Some(7),
///     channel_id: None,
/// };
/// let mut bytes = Vec::new();
/// borrowed.encode_into(&mut bytes);
/// assert_eq!(bytes, owned.encode());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// When, in ms since the Unix epoch.
    pub time_ms: u64,
    /// What.
    pub action: Action,
    /// Why.
    pub info: Info,
    /// The client.
    pub client_id: &'a str,
    /// The message, for message actions.
    pub message: Option<u128>,
    /// The connection's channel id, for device actions.
    pub channel_id: Option<&'a str>,
}

impl RecordRef<'_> {
    /// Appends the record's binary form to `out`: a length, the fields, a checksum of them.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let client = clamp(self.client_id.as_bytes(), usize::from(u16::MAX));
        let channel = clamp(
            self.channel_id.unwrap_or("").as_bytes(),
            usize::from(u8::MAX),
        );
        let start = out.len();
        out.extend_from_slice(&[0; 4]); // the length, filled in below
        out.push(VERSION);
        out.push(self.action.byte());
        out.push(self.info.byte());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.extend_from_slice(&self.message.unwrap_or(0).to_be_bytes());
        out.push(u8::from(self.message.is_some()));
        out.extend_from_slice(&(client.len() as u16).to_be_bytes());
        out.extend_from_slice(client);
        out.push(channel.len() as u8);
        out.extend_from_slice(channel);
        let sum = checksum(VERSION, &out[start + 4..]);
        out.extend_from_slice(&sum.to_be_bytes());
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// The checksum of a record's fields as `version` writes it: CRC-32 (IEEE) from layout 2 on,
/// FNV-1a (32 bits) in layout 1. Either catches a torn or damaged record; neither is a defence
/// against tampering. Layout 2 changed only this: FNV-1a takes a multiply per byte, a cost a
/// busy broker's writer paid on every record, where the CRC runs several bytes per cycle.
fn checksum(version: u8, bytes: &[u8]) -> u32 {
    if version == 1 {
        return bytes.iter().fold(0x811c_9dc5_u32, |hash, &b| {
            (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
    }
    crc32fast::hash(bytes)
}

/// `yyyy-MM-dd HH:mm:ss.SSS` in UTC, the form the OpenAPI's trace answers give times in.
///
/// ```
/// assert_eq!(mqgate_trace::format_time(0), "1970-01-01 00:00:00.000");
/// assert_eq!(mqgate_trace::format_time(1_700_000_000_123), "2023-11-14 22:13:20.123");
/// ```
pub fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_and_info_survives_its_byte() {
        for action in Action::ALL {
            assert_eq!(Action::from_byte(action.byte()), Some(action));
        }
        for info in Info::ALL {
            assert_eq!(Info::from_byte(info.byte()), Some(info));
        }
        assert_eq!(Action::from_byte(7), None);
        assert_eq!(Info::from_byte(14), None);
    }

    /// Both layouts' bytes pinned as written by an independent encoder (Python's `struct`
    /// and `zlib.crc32`): a log written before the checksum changed still reads, and the
    /// bytes written now are exactly layout 2.
    #[test]
    fn layout_1_still_reads_and_layout_2_is_written_byte_for_byte() {
        let layout_1 = hex::decode(
            "000000320100000000018bcfe5687b000000000000000000000000000000000000094749445f61\
             40404031066368616e2d31ff09be01",
        )
        .unwrap();
        let (device, used) = TraceRecord::decode(&layout_1).unwrap();
        assert_eq!(used, layout_1.len());
        assert_eq!(
            device,
            TraceRecord::device(
                Action::Connect,
                Info::Accepted,
                1_700_000_000_123,
                "GID_a@@@1",
                "chan-1"
            )
        );

        let layout_2 = hex::decode(
            "0000002c02050c0000018bcfe5687b000000000000000000000000000000ab0100094749445f61\
             4040403100091cec6b",
        )
        .unwrap();
        let message = TraceRecord::message(
            Action::Sub,
            Info::PushToMqttClient,
            1_700_000_000_123,
            "GID_a@@@1",
            0xAB,
        );
        assert_eq!(message.encode(), layout_2);
        assert_eq!(
            TraceRecord::decode(&layout_2).unwrap(),
            (message, layout_2.len())
        );

        // A flipped byte fails either checksum; an unknown version is damage.
        for good in [&layout_1, &layout_2] {
            let mut bad = good.clone();
            bad[20] ^= 1;
            assert!(TraceRecord::decode(&bad).is_err());
            let mut future = good.clone();
            future[4] = 3;
            assert!(TraceRecord::decode(&future).is_err());
        }
    }

    #[test]
    fn times_format_across_leap_years_and_month_ends() {
        let cases = [
            (951_782_400_000, "2000-02-29 00:00:00.000"),
            (1_709_251_199_999, "2024-02-29 23:59:59.999"),
            (1_735_689_599_000, "2024-12-31 23:59:59.000"),
            (4_102_444_800_000, "2100-01-01 00:00:00.000"),
        ];
        for (ms, text) in cases {
            assert_eq!(format_time(ms), text, "{ms}");
        }
    }

    #[test]
    fn a_long_client_id_is_cut_at_a_character_boundary() {
        let id = "é".repeat(40_000); // 80 000 bytes
        let record = TraceRecord::message(Action::Sub, Info::PushToMqttClient, 1, &id, 1);
        let (back, _) = TraceRecord::decode(&record.encode()).unwrap();
        assert!(back.client_id.len() <= 65_535);
        assert!(id.starts_with(&back.client_id));
    }

    #[test]
    fn damage_is_an_error() {
        let bytes = TraceRecord::device(Action::Connect, Info::Accepted, 5, "c", "ch").encode();
        for cut in 0..bytes.len() {
            assert!(TraceRecord::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in 4..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x40;
            assert!(TraceRecord::decode(&flipped).is_err(), "flip at {at}");
        }
    }
}
