//! Fuzz target for the auth crate's authorization_header parser; invariants in
//! `mqgate_auth::fuzzing::authorization_header`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_auth::fuzzing::authorization_header(data);
});
