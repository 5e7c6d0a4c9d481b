//! Every input the decoder fuzz target ever found interesting enough to keep is replayed here
//! under plain `cargo test`: files in `tests/fuzz-regressions/`, plus seeds written inline.

use mqgate_codec::fuzzing::decode_stream_invariants;

#[test]
fn replay_saved_fuzz_inputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regression folder exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "bin") {
            decode_stream_invariants(&std::fs::read(&path).expect("readable file"));
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
