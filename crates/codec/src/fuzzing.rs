//! Invariant checks over arbitrary input, shared by the fuzz targets (`fuzz/fuzz_targets/
//! codec_decode.rs` for MQTT 3.1.1, `codec_decode_v5.rs` for MQTT 5) and the regression
//! tests that replay their findings under `cargo test`.

use bytes::BytesMut;

use crate::{v5, ConnectionDecoder, DecodeError, Decoder, Packet, Properties};

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
    decode_stream_with(data, split, Decoder::decode)
}

fn decode_stream_v5(data: &[u8], split: usize) -> Vec<v5::Packet> {
    decode_stream_with(data, split, Decoder::decode_v5)
}

/// The packets `decode` finds in `data` read in two pieces split at `split`, up to the
/// first error.
fn decode_stream_with<P>(
    data: &[u8],
    split: usize,
    decode: impl Fn(&Decoder, &mut BytesMut) -> Result<Option<P>, DecodeError>,
) -> Vec<P> {
    let decoder = Decoder::new(1 << 16);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in [&data[..split], &data[split..]] {
        buf.extend_from_slice(chunk);
        loop {
            match decode(&decoder, &mut buf) {
                Ok(Some(p)) => out.push(p),
                Ok(None) => break,
                Err(_) => return out,
            }
        }
    }
    out
}

/// The MQTT 5 decoder's invariants over arbitrary input, decoded as a v5 stream split in two
/// reads (as [`decode_stream_invariants`]) and through a [`ConnectionDecoder`] that picks the
/// protocol from the first packet. Every decoded packet encodes to exactly
/// `encoded_len` bytes that decode to the same packet and encode to the same bytes again
/// (acks, DISCONNECT and AUTH take their shortest form, so the first encoding may be shorter
/// than the input); every property block reads back to the properties it holds.
pub fn decode_stream_invariants_v5(data: &[u8]) {
    first_frame_decodes_as_its_body(data);
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let whole = decode_stream_v5(data, data.len());
    assert_eq!(
        whole,
        decode_stream_v5(data, split),
        "how the bytes were split changed the result"
    );
    let decoder = Decoder::new(1 << 16);
    for packet in &whole {
        let mut re = BytesMut::new();
        packet.encode(&mut re).expect("a decoded packet encodes");
        assert_eq!(
            re.len(),
            packet.encoded_len().expect("length"),
            "encoded_len is exact"
        );
        let wire = re.clone();
        let again = decoder
            .decode_v5(&mut re)
            .expect("our encoding decodes")
            .expect("our encoding is complete");
        assert!(re.is_empty(), "one packet consumed");
        assert_eq!(&again, packet, "decode(encode(p)) == p");
        let mut twice = BytesMut::new();
        again.encode(&mut twice).expect("encodes");
        assert_eq!(twice, wire, "the encoding is stable");
        for props in property_blocks(packet) {
            let rebuilt = Properties::build(props.iter()).expect("a checked block rebuilds");
            assert_eq!(
                rebuilt.as_bytes(),
                props.as_bytes(),
                "iteration is lossless"
            );
        }
        if let v5::Packet::Publish(p) = packet {
            v5::PublishProperties::check_forward(&p.properties.forward)
                .expect("the forwardable block holds forwardable properties only");
        }
    }
    let mut conn = ConnectionDecoder::new(1 << 16);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = conn.decode(&mut buf) {}
}

fn property_blocks(p: &v5::Packet) -> Vec<&Properties> {
    use v5::Packet as P;
    match p {
        P::Connect(c) => {
            let mut v = vec![&c.properties];
            v.extend(c.will.as_ref().map(|w| &w.properties));
            v
        }
        P::ConnAck(c) => vec![&c.properties],
        P::PubAck(a) | P::PubRec(a) | P::PubRel(a) | P::PubComp(a) => vec![&a.properties],
        P::Subscribe(s) => vec![&s.properties],
        P::SubAck(s) => vec![&s.properties],
        P::Unsubscribe(u) => vec![&u.properties],
        P::UnsubAck(u) => vec![&u.properties],
        P::Disconnect(d) | P::Auth(d) => vec![&d.properties],
        P::Publish(_) | P::PingReq | P::PingResp => vec![],
    }
}

/// The decoder's shortcuts (a PUBLISH decoded straight, an ack, ping, DISCONNECT or AUTH
/// without properties parsed in place) give for the first complete frame of `data` what
/// the general path, [`v5::decode_body`], gives its body: the same packet or the same error.
fn first_frame_decodes_as_its_body(data: &[u8]) {
    let Ok(Some(header)) = crate::read_fixed_header(data) else {
        return;
    };
    let Some(frame) = data.get(..header.frame_len()) else {
        return;
    };
    let Some(body) = frame.get(header.header_len..) else {
        return;
    };
    let general = v5::decode_body(header.byte1, bytes::Bytes::copy_from_slice(body));
    let mut buf = BytesMut::from(frame);
    let got = Decoder::new(usize::MAX).decode_v5(&mut buf);
    // A whole frame: the shortcut gives a packet (`Some`) or the general path's error.
    assert_eq!(got, general.map(Some), "shortcut and general path");
    if got.is_ok() {
        assert!(buf.is_empty(), "the frame consumed");
    }
}
