//! The settlement node: everything that touches the outside world.
//!
//! RocksDB storage, the raft loop thread that drives the consensus core, the HTTP API, the
//! CLI's building blocks, configuration, key files and metrics. The ledger rules live in
//! `tpw-contracts` and the Raft state machine in `tpw-consensus`; this crate executes their
//! decisions and makes none of its own.

pub mod admin;
pub mod api;
pub use tpw_api::types as api_types;
pub mod archive;
pub mod audit;
pub mod client;
pub mod clock;
pub mod config;
pub mod demo;
pub mod events;
pub mod failpoint;
pub mod http;
pub mod keys;
pub mod limits;
pub mod mailbox;
pub mod metrics;
pub mod network;
pub mod node;
pub mod request_auth;
pub mod restore;
pub mod runtime;
pub mod signer;
pub mod snapshot;
pub mod storage;
pub mod tls;
pub mod verify;
pub mod webhooks;

/// Sets up `tracing` output in the given format ("text" or "json") and filter.
pub fn init_logging(format: &str, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
