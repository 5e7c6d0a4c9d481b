//! Runs one of the codec benchmark's measured loops many times, for a profiler: the same
//! streams and loops as `benches/codec.rs`, without criterion around them.
//!
//! ```text
//! cargo build --release -p mqgate-codec --example codec_profile
//! valgrind --tool=callgrind --toggle-collect='*decode_ours*' \
//!     target/release/examples/codec_profile decode mqgate publish-qos1-64B 100
//! ```
//!
//! Arguments: `decode|encode`, `mqgate|rumqttc`, a stream kind (`publish-qos0-64B`,
//! `publish-qos1-64B`, `publish-qos0-1KiB`, `publish-qos1-1KiB`, `mixed`) and how many times
//! to run the stream (default 100). It prints how many packets went through the loop, so
//! instructions per packet are the collected count divided by that number.

use std::process::ExitCode;

use bytes::BytesMut;
use mqgate_codec::Decoder;
use rumqttc::mqttbytes::v4;

#[path = "../tests/support/bench_stream.rs"]
mod bench_stream;
#[path = "../tests/support/rumqttc_map.rs"]
mod rumqttc_map;
use bench_stream::{decode_ours, decode_rumqttc, encode_ours, encode_rumqttc, stream, KINDS};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(op), Some(who), Some(kind)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!(
            "usage: codec_profile decode|encode mqgate|rumqttc KIND [REPS]; kinds: {KINDS:?}"
        );
        return ExitCode::FAILURE;
    };
    let reps: usize = match args.get(3).map(|r| r.parse()) {
        None => 100,
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            eprintln!("REPS: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !KINDS.contains(&kind.as_str()) {
        eprintln!("unknown stream kind {kind:?}; kinds: {KINDS:?}");
        return ExitCode::FAILURE;
    }
    let ours = stream(kind);
    let theirs: Vec<v4::Packet> = ours.iter().map(rumqttc_map::to_rumqttc).collect();
    let mut wire = BytesMut::new();
    for p in &ours {
        p.encode(&mut wire).expect("encode");
    }
    let decoder = Decoder::new(1 << 20);
    let mut out = BytesMut::with_capacity(wire.len());
    let mut packets = 0;
    for _ in 0..reps {
        packets += match (op.as_str(), who.as_str()) {
            ("decode", "mqgate") => decode_ours(&decoder, BytesMut::from(&wire[..])),
            ("decode", "rumqttc") => decode_rumqttc(BytesMut::from(&wire[..])),
            ("encode", "mqgate") => {
                encode_ours(&ours, &mut out);
                ours.len()
            }
            ("encode", "rumqttc") => {
                encode_rumqttc(&theirs, &mut out);
                theirs.len()
            }
            _ => {
                eprintln!("expected decode|encode and mqgate|rumqttc, got {op} {who}");
                return ExitCode::FAILURE;
            }
        };
    }
    println!("{packets} packets");
    ExitCode::SUCCESS
}
