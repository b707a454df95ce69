//! libFuzzer entry point of the `transaction_decode` property (fuzz/src/transaction_decode.rs).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tpw_fuzz::transaction_decode::run(data));
