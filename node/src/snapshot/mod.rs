//! Snapshots and log compaction across the network.
//!
//! A node compacts its Raft log beyond a configured retention. When a peer needs entries
//! that are gone, Raft asks the log store for a snapshot; the [`maker`] takes a RocksDB
//! checkpoint on its own thread and offers it. The Raft message carries only a
//! descriptor; the receiving node's [`receiver`] fetches the state records in chunks on
//! `/tpw/snapshot/1` from the sender, recomputes the state root from them, checks it against
//! the head block's header, and only then hands the message to Raft, whose acceptance makes the
//! raft loop install the staged state. The blocks below the snapshot are then fetched by
//! [`backfill`], each checked on its own and by hash link, so every node keeps the chain from
//! genesis.

pub mod backfill;
pub mod maker;
pub mod nodes;
pub mod receiver;
pub use tpw_consensus::wire::snapshot::{
    SnapshotRequest, SnapshotResponse, SNAPSHOT_FRAME_SIZE_MAX,
};

pub use crate::mailbox::SnapshotGate;
