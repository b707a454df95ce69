//! Durable storage in RocksDB: one database, a column family per kind of record, and every
//! value wrapped with a format version and a checksum so corruption is detected, not served.

mod db;
mod ledger;
mod raft_log;
mod record;

pub use db::{Db, StorageError};
pub use ledger::{AppliedBlock, LedgerReader, LedgerStore, StoredBlock, TxLocation};
pub use raft_log::RaftLogStore;
pub use record::{open_record, seal_record};
