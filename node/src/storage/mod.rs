//! Durable storage in RocksDB: one database, a column family per kind of record, and every
//! value wrapped with a format version and a checksum so corruption is detected, not served.

mod db;
pub mod governance;
mod ledger;
mod raft_log;
mod record;
mod snapshot;
pub mod statement;
pub mod webhooks;

pub use db::{
    corruption_detected, note_corruption, verify_integrity, Db, IntegrityReport, StorageError,
    CF_AUDIT, CF_BLOCKS, CF_INDEX, CF_META, CF_STATE,
};
pub use ledger::{
    parse_block_record, AppliedBlock, LedgerReader, LedgerStore, LogPosition, StoredBlock,
    TxLocation,
};
pub use raft_log::{RaftLogStore, SnapshotOffer, SnapshotSlot};
pub use record::{open_record, seal_record};
pub use snapshot::{
    block_gaps, block_records_down, store_backfill, Checkpoint, RecordChunk, SnapshotDescriptor,
    StagedSnapshot, Staging,
};
