//! The fuzzers' properties: for everything a node decodes from clients and peers, nothing may
//! panic and what decodes must re-encode as the formats promise. Each module's `run` is one
//! property over one input. libFuzzer drives them on the nightly toolchain
//! (fuzz/fuzz_targets/, `scripts/fuzz`), and `cargo test` replays every input of the checked-in
//! corpora (fuzz/corpus/<target>/) through them on the stable toolchain (tests/corpus.rs), so
//! a machine without nightly still checks them.

pub mod api_bodies;
pub mod block_decode;
pub mod peer_messages;
pub mod transaction_decode;

/// A property over one input: it panics when the input breaks it.
pub type Property = fn(&[u8]);

/// Every property, by the name of its fuzz target and corpus folder.
pub const TARGETS: &[(&str, Property)] = &[
    ("transaction_decode", transaction_decode::run),
    ("block_decode", block_decode::run),
    ("peer_messages", peer_messages::run),
    ("api_bodies", api_bodies::run),
];
