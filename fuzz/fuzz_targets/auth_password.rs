//! Fuzz target for the auth crate's password parser; invariants in
//! `mqgate_auth::fuzzing::password`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_auth::fuzzing::password(data);
});
