//! libFuzzer entry point of the `api_bodies` property (fuzz/src/api_bodies.rs).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tpw_fuzz::api_bodies::run(data));
