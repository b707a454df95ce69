//! libFuzzer entry point of the `block_decode` property (fuzz/src/block_decode.rs).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tpw_fuzz::block_decode::run(data));
