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

/// How long the leader keeps its latest snapshot usable by holding log compaction at it, so a
/// peer still fetching it is not overtaken by compaction.
pub const OFFER_HOLD: std::time::Duration = std::time::Duration::from_secs(120);
/// Tries of one snapshot request while the peer answers "unavailable" (busy).
pub const REQUEST_TRIES_MAX: u32 = 5;

/// Bytes of state records per chunk.
pub const RECORDS_CHUNK_SIZE: usize = 4 * 1024 * 1024;
/// Bytes of block records per backfill response (at least one block is always sent).
pub const BLOCKS_CHUNK_SIZE: usize = 4 * 1024 * 1024;
/// Block records per backfill response.
pub const BLOCKS_PER_RESPONSE_MAX: u32 = 1024;
/// Checkpoints kept for peers still fetching from them.
pub const CHECKPOINTS_KEPT_MAX: usize = 2;
/// Snapshot requests served at once; more are answered "unavailable".
pub const SERVES_IN_FLIGHT_MAX: usize = 4;

const _: () = assert!(
    RECORDS_CHUNK_SIZE + 2 * tpw_contracts::limits::BLOCK_SIZE_MAX <= SNAPSHOT_FRAME_SIZE_MAX
);
const _: () = assert!(
    BLOCKS_CHUNK_SIZE + 2 * tpw_contracts::limits::BLOCK_SIZE_MAX <= SNAPSHOT_FRAME_SIZE_MAX
);
