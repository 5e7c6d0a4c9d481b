//! Fuzz target for the auth crate's username parser; invariants in
//! `mqgate_auth::fuzzing::username`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_auth::fuzzing::username(data);
});
