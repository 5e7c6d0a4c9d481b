//! Decoding a PUBLISH allocates nothing beyond reference counts: measured with a counting
//! global allocator over a buffer holding many packets.

use bytes::{Bytes, BytesMut};
use mqgate_codec::{ByteStr, Decoder, Packet, PacketId, Publish, QoS};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn publish_decode_allocates_nothing_per_packet() {
    const N: usize = 10_000;
    let mut buf = BytesMut::new();
    for i in 0..N {
        let p = Publish::new(
            if i % 2 == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            },
            (i % 2 == 1).then(|| PacketId::new(1 + (i % 60_000) as u16).expect("non-zero")),
            ByteStr::from_static("dev/42/status"),
            Bytes::from(vec![0u8; 64]),
        );
        Packet::Publish(p).encode(&mut buf).expect("encode");
    }
    let decoder = Decoder::new(1 << 16);
    let mut decoded = 0;
    let before = allocations();
    while let Some(p) = decoder.decode(&mut buf).expect("valid") {
        if let Packet::Publish(p) = p {
            decoded += p.payload().len() / 64;
        }
    }
    let allocs = allocations() - before;
    assert_eq!(decoded, N);
    // `BytesMut::split_to` promotes the buffer to shared storage once (one allocation for the
    // shared header); every packet after that costs only reference counts.
    assert!(allocs <= 1, "{allocs} allocations for {N} PUBLISH decodes");
}
