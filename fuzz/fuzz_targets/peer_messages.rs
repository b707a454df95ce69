//! libFuzzer entry point of the `peer_messages` property (fuzz/src/peer_messages.rs).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tpw_fuzz::peer_messages::run(data));
