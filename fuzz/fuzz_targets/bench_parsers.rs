//! Fuzz target for the load generator's parsers of outside text (`/proc` files, results
//! files); see `mqgate_bench::parse_untrusted`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqgate_bench::parse_untrusted(data);
});
