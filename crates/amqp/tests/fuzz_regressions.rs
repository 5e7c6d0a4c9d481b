//! Every input the fuzz targets found worth keeping is replayed here under plain
//! `cargo test`: `tests/fuzz-regressions/frame/*.bin` (target `amqp_frame`) and
//! `tests/fuzz-regressions/connection/*.bin` (target `amqp_connection`), plus inline seeds.

use mqgate_amqp::fuzzing::{connection_invariants, frame_invariants};

fn replay<T>(folder: &str, check: fn(&[u8]) -> T) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(folder);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regression folder exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "bin") {
            check(&std::fs::read(&path).expect("readable file"));
            n += 1;
        }
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn replay_saved_frame_inputs() {
    replay("frame", frame_invariants);
}

#[test]
fn replay_saved_connection_inputs() {
    replay("connection", connection_invariants);
}

#[test]
fn seeds() {
    for seed in [
        &[][..],
        &[8, 0, 0, 0, 0, 0, 0, 0xCE],
        &[0xff; 16],
        &[1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 51, 0xCE],
        b"AMQP\x00\x00\x09\x01",
    ] {
        frame_invariants(seed);
        connection_invariants(seed);
    }
}

#[test]
fn the_sdk_seed_reaches_publish_consume_and_settlement() {
    // The saved SDK sequence goes all the way: a confirmed publish, a consumer that gets a
    // delivery, its ack, a nack of the rest (none), the channel closed by the client.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let seed = std::fs::read(dir.join("connection/sdk-publish-consume.bin")).expect("seed");
    let events = connection_invariants(&seed);
    assert_eq!(
        events,
        ["Opened", "Publish", "Consume", "Ack", "ChannelClosed"],
        "{events:?}"
    );
}
