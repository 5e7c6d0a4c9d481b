//! Invariant checks over arbitrary input, shared by the fuzz target (`fuzz/fuzz_targets/
//! codec_decode.rs`) and the regression tests that replay its findings under `cargo test`.

use bytes::BytesMut;

use crate::{Decoder, Packet};

/// Decodes `data` as a stream, split into two reads at a position taken from its first byte,
/// and checks the codec's invariants. Panics only when an invariant is broken (that is what
/// a fuzzer looks for): every decoded packet re-encodes to exactly the bytes it came from,
/// and the split does not change what is decoded.
pub fn decode_stream_invariants(data: &[u8]) {
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let whole = decode_stream(data, data.len());
    let split_up = decode_stream(data, split);
    assert_eq!(
        whole, split_up,
        "how the bytes were split changed the result"
    );
    let mut offset = 0;
    for packet in &whole {
        let mut re = BytesMut::new();
        packet.encode(&mut re).expect("a decoded packet encodes");
        assert_eq!(
            re.len(),
            packet.encoded_len().expect("length"),
            "encoded_len is exact"
        );
        let original = data
            .get(offset..offset + re.len())
            .expect("packet bytes in input");
        assert_eq!(
            &re[..],
            original,
            "re-encoding differs from the input bytes"
        );
        offset += re.len();
    }
}

fn decode_stream(data: &[u8], split: usize) -> Vec<Packet> {
    let decoder = Decoder::new(1 << 16);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in [&data[..split], &data[split..]] {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(p)) => out.push(p),
                Ok(None) => break,
                Err(_) => return out,
            }
        }
    }
    out
}
