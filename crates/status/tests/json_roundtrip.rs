//! Random inputs through the functions the `status_*` fuzz targets call
//! (`mqgate_status::fuzzing`), so `cargo test` exercises them too.

use mqgate_status::fuzzing::{channel_id as check_channel_id, event_json as check_decode};
use mqgate_status::{ChannelId, EventType, StatusEvent};
use proptest::prelude::*;

fn arb_event() -> impl Strategy<Value = StatusEvent> {
    let kind = prop_oneof![
        Just(EventType::Connect),
        Just(EventType::Disconnect),
        Just(EventType::Tcpclean)
    ];
    (
        any::<String>(),
        any::<u64>(),
        kind,
        any::<[u8; 16]>(),
        any::<String>(),
        any::<u64>(),
    )
        .prop_map(
            |(client_id, time, event_type, channel, client_ip, seq)| StatusEvent {
                client_id,
                time,
                event_type,
                channel_id: ChannelId::from_bytes(channel),
                client_ip,
                seq,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_event_round_trips_and_matches_serde(event in arb_event()) {
        let json = event.to_json();
        prop_assert_eq!(Some(json.clone()), serde_json::to_string(&event).ok());
        prop_assert_eq!(StatusEvent::from_json(json.as_bytes()).ok(), Some(event));
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_decode(&data);
    }

    /// Valid bodies with one byte changed: most are near misses, the inputs
    /// most likely to reach deep into the decoder.
    #[test]
    fn mutated_bodies_never_panic(event in arb_event(), position in any::<usize>(), byte in any::<u8>()) {
        let mut data = event.to_json().into_bytes();
        let len = data.len();
        if let Some(slot) = data.get_mut(position % len.max(1)) {
            *slot = byte;
        }
        check_decode(&data);
    }

    #[test]
    fn channel_id_parse_never_panics_and_round_trips(text in "[0-9a-fA-FxX-]{0,40}|\\PC{0,40}") {
        check_channel_id(text.as_bytes());
    }

    #[test]
    fn channel_id_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
        check_channel_id(&data);
    }
}
