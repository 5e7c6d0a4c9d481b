//! Golden tests of the status event's JSON form (`src/rules.md`, "The JSON body").

use mqgate_status::{ChannelId, EventType, StatusError, StatusEvent};

/// The model service's documented body, with its redacted characters
/// (`XXXX` in the channel id, `XX.XX` in the address) filled in.
const SEED_SHAPE: &str = r#"{"clientId":"GID_test@@@0001","time":1566356567883,"eventType":"tcpclean","channelId":"2b9b1281046046faafe5e0b458e4a1c7","clientIp":"192.168.10.20:57322"}"#;

/// The seed example's channel id as bytes, written out rather than parsed, so that a
/// broken parser cannot make the expected value agree with a wrong answer.
const SEED_CHANNEL_ID: [u8; 16] = [
    0x2b, 0x9b, 0x12, 0x81, 0x04, 0x60, 0x46, 0xfa, 0xaf, 0xe5, 0xe0, 0xb4, 0x58, 0xe4, 0xa1, 0xc7,
];

fn seed_event() -> StatusEvent {
    StatusEvent {
        client_id: "GID_test@@@0001".into(),
        time: 1_566_356_567_883,
        event_type: EventType::Tcpclean,
        channel_id: ChannelId::from_bytes(SEED_CHANNEL_ID),
        client_ip: "192.168.10.20:57322".into(),
        seq: 0,
    }
}

#[test]
fn parses_the_seed_channel_id() {
    let parsed = "2b9b1281046046faafe5e0b458e4a1c7".parse::<ChannelId>().ok();
    assert_eq!(parsed, Some(ChannelId::from_bytes(SEED_CHANNEL_ID)));
}

#[test]
fn decodes_the_seed_example_shape() {
    let decoded = StatusEvent::from_json(SEED_SHAPE.as_bytes());
    assert!(decoded.is_ok(), "{decoded:?}");
    assert_eq!(decoded.ok(), Some(seed_event()));
}

#[test]
fn encodes_with_the_same_keys_in_the_same_order_plus_seq() {
    let event = StatusEvent {
        seq: 42,
        ..seed_event()
    };
    let expected = SEED_SHAPE.replace('}', ",\"seq\":42}");
    assert_eq!(event.to_json(), expected);
}

#[test]
fn encodes_each_event_type() {
    let table = [
        (
            EventType::Connect,
            r#"{"clientId":"GID_a@@@1","time":0,"eventType":"connect","channelId":"00000000000000000000000000000000","clientIp":"[::1]:1883","seq":18446744073709551615}"#,
        ),
        (
            EventType::Disconnect,
            r#"{"clientId":"GID_a@@@1","time":0,"eventType":"disconnect","channelId":"00000000000000000000000000000000","clientIp":"[::1]:1883","seq":18446744073709551615}"#,
        ),
        (
            EventType::Tcpclean,
            r#"{"clientId":"GID_a@@@1","time":0,"eventType":"tcpclean","channelId":"00000000000000000000000000000000","clientIp":"[::1]:1883","seq":18446744073709551615}"#,
        ),
    ];
    for (event_type, golden) in table {
        let event = StatusEvent {
            client_id: "GID_a@@@1".into(),
            time: 0,
            event_type,
            channel_id: ChannelId::from_bytes([0; 16]),
            client_ip: "[::1]:1883".into(),
            seq: u64::MAX,
        };
        assert_eq!(event.to_json(), golden);
        assert_eq!(StatusEvent::from_json(golden.as_bytes()).ok(), Some(event));
    }
}

#[test]
fn tolerates_unknown_keys_and_any_key_order() {
    let json = r#"{"seq":9,"future":{"nested":[1,2]},"clientIp":"1.2.3.4:5","channelId":"2b9b1281046046faafe5e0b458e4a1c7","eventType":"connect","time":7,"clientId":"GID_x@@@y","extra":null}"#;
    let event = StatusEvent::from_json(json.as_bytes()).ok();
    assert_eq!(
        event.as_ref().map(|e| (e.seq, e.time, e.event_type)),
        Some((9, 7, EventType::Connect))
    );
}

/// What a refusal must say.
#[derive(Debug)]
enum Refusal {
    NotAnObject,
    Missing(&'static str),
    Invalid(&'static str),
}

/// Each row: a body that must be refused, and how: an operator reading the
/// error must learn which key was wrong.
#[test]
fn rejects_invalid_bodies_naming_the_key() {
    use Refusal::{Invalid, Missing, NotAnObject};
    let valid = SEED_SHAPE;
    let table: Vec<(String, Refusal)> = vec![
        // The seed example exactly as documented: its channel id is redacted.
        (valid.replace("e4a1c7", "e4XXXX"), Invalid("channelId")),
        (
            valid.replace(
                "2b9b1281046046faafe5e0b458e4a1c7",
                "2B9B1281046046FAAFE5E0B458E4A1C7",
            ),
            Invalid("channelId"),
        ),
        (
            valid.replace("2b9b1281046046faafe5e0b458e4a1c7", "2b9b"),
            Invalid("channelId"),
        ),
        (
            valid.replace("\"2b9b1281046046faafe5e0b458e4a1c7\"", "null"),
            Invalid("channelId"),
        ),
        (
            valid.replace("\"tcpclean\"", "\"online\""),
            Invalid("eventType"),
        ),
        (
            valid.replace("\"tcpclean\"", "\"TCPCLEAN\""),
            Invalid("eventType"),
        ),
        (valid.replace("1566356567883", "-1"), Invalid("time")),
        (valid.replace("1566356567883", "1.5"), Invalid("time")),
        (
            valid.replace("1566356567883", "\"1566356567883\""),
            Invalid("time"),
        ),
        (
            valid.replace("1566356567883", "18446744073709551616"),
            Invalid("time"),
        ),
        (
            valid.replace("\"clientId\":\"GID_test@@@0001\"", "\"clientId\":7"),
            Invalid("clientId"),
        ),
        (valid.replace('}', ",\"seq\":-3}"), Invalid("seq")),
        (valid.replace('}', ",\"seq\":null}"), Invalid("seq")),
        (
            valid.replace("\"clientId\":\"GID_test@@@0001\",", ""),
            Missing("clientId"),
        ),
        (
            valid.replace(",\"clientIp\":\"192.168.10.20:57322\"", ""),
            Missing("clientIp"),
        ),
        (
            valid.replace("\"time\":1566356567883,", ""),
            Missing("time"),
        ),
        (
            valid.replace("\"eventType\":\"tcpclean\",", ""),
            Missing("eventType"),
        ),
        (valid.replace('}', ""), NotAnObject),
        ("[]".to_owned(), NotAnObject),
        ("\"connect\"".to_owned(), NotAnObject),
        (String::new(), NotAnObject),
    ];
    for (body, expected) in table {
        let error = StatusEvent::from_json(body.as_bytes()).err();
        let matched = match (&expected, &error) {
            (NotAnObject, Some(StatusError::NotAnObject(_))) => true,
            (Missing(key), Some(StatusError::MissingKey(found))) => key == found,
            (Invalid(key), Some(StatusError::InvalidValue { key: found, .. })) => key == found,
            _ => false,
        };
        assert!(matched, "{body}: expected {expected:?}, got {error:?}");
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        if let Missing(key) | Invalid(key) = expected {
            assert!(message.contains(key), "{message:?} does not name {key}");
        }
    }
}

#[test]
fn invalid_channel_id_message_says_what_is_expected() {
    let body = SEED_SHAPE.replace("e4a1c7", "e4XXXX");
    let message = StatusEvent::from_json(body.as_bytes())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        message.as_deref(),
        Some("status event key `channelId`: channel id must be 32 lowercase hex characters, found 'X' at position 28")
    );
}
