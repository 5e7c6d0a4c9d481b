//! Every input the decoder fuzz target ever found interesting enough to keep is replayed here
//! under plain `cargo test`: files in `tests/fuzz-regressions/`, plus seeds written inline.

use mqgate_codec::fuzzing::{decode_stream_invariants, decode_stream_invariants_v5};

#[test]
fn replay_saved_fuzz_inputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regression folder exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "bin") {
            let data = std::fs::read(&path).expect("readable file");
            // Every saved input goes through both decoders: a finding of one is a good
            // input for the other.
            decode_stream_invariants(&data);
            decode_stream_invariants_v5(&data);
            n += 1;
        }
    }
    assert!(n > 0, "no regression inputs found in {}", dir.display());
}

#[test]
fn seeds() {
    for seed in [
        &[][..],
        &[0x30],
        &[0x03, 0x30, 0x03, 0x00, 0x01, b'a', 0xc0, 0x00],
        &[0xff, 0xff, 0xff, 0xff, 0xff],
        &[
            0x02, 0x10, 0x0c, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0,
        ],
    ] {
        decode_stream_invariants(seed);
    }
}

#[test]
fn seeds_v5() {
    for seed in [
        &[][..],
        // CONNECT level 5 with no properties, then a PUBLISH with a topic alias only.
        &[
            0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0, 0, 0x30, 7, 0, 0, 3, 0x23,
            0, 5, b'x',
        ],
        // A PUBACK in its long form (re-encoded short), a DISCONNECT with a reason.
        &[0x40, 4, 0, 7, 0x10, 0, 0xe0, 1, 0x8e],
        // A property length that never ends.
        &[0xe0, 6, 0, 0x80, 0x80, 0x80, 0x80, 0x01],
        // Two subscription identifiers, interleaved with a forwardable property.
        &[
            0x30, 12, 0, 1, b't', 7, 0x0b, 1, 0x01, 1, 0x0b, 0xac, 0x02, b'!',
        ],
    ] {
        decode_stream_invariants_v5(seed);
    }
}
