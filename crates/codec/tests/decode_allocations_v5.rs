//! Decoding an MQTT 5 PUBLISH with properties allocates nothing beyond reference counts when
//! its forwardable properties are contiguous: the topic, the forwardable block and the
//! payload are slices of the receive buffer. (Its own test binary: the counting allocator
//! sees every thread.)

use bytes::{Bytes, BytesMut};
use mqgate_codec::v5::{Packet, Publish, PublishProperties};
use mqgate_codec::{ByteStr, Decoder, PacketId, Properties, Property, PropertyId, QoS};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn v5_publish_decode_allocates_nothing_per_packet() {
    const N: usize = 10_000;
    let forward = Properties::build([
        Property::Utf8(PropertyId::ContentType, "application/json"),
        Property::UserProperty("site", "berlin"),
    ])
    .expect("valid")
    .forwardable();
    let mut buf = BytesMut::new();
    for i in 0..N {
        let mut p = Publish::new(
            QoS::AtLeastOnce,
            PacketId::new(1 + (i % 60_000) as u16),
            ByteStr::from_static("dev/42/status"),
            Bytes::from(vec![0u8; 64]),
        );
        p.properties = PublishProperties {
            forward: forward.clone(),
            message_expiry_interval: Some(60),
            ..PublishProperties::default()
        };
        Packet::Publish(p).encode(&mut buf).expect("encode");
    }
    let decoder = Decoder::new(1 << 16);
    let (mut decoded, mut forwarded) = (0, 0);
    let before = allocations();
    while let Some(p) = decoder.decode_v5(&mut buf).expect("valid") {
        if let Packet::Publish(p) = p {
            decoded += p.payload.len() / 64;
            forwarded += usize::from(p.properties.forward == forward);
        }
    }
    let allocs = allocations() - before;
    assert_eq!((decoded, forwarded), (N, N));
    // The buffer becomes shared storage once; every packet after that costs only
    // reference counts.
    assert!(allocs <= 1, "{allocs} allocations for {N} PUBLISH decodes");
}
