//! The HTTP API's bodies, as types: what a client sends (`POST /v1/transactions` and its
//! checks) and what a node answers, with the limits they obey. Pure: no IO, no clock, nothing
//! but serde and the ledger's views, so the node, its client libraries and the fuzzers
//! (fuzz/) share one definition.

pub mod limits;
pub mod types;
