//! The ledger store boundary of the replica engine: what the engine reads and writes of the
//! ledger as it applies committed entries. The node implements it over RocksDB, the simulator
//! over [`super::MemLedger`] and a modelled disk; both must behave alike, which the storage
//! conformance test in node/tests/ checks on the same operation sequences.

use crate::log_store::LogStore;
use raft::prelude::{ConfState, Snapshot};
use tpw_contracts::block::WebhookProgress;
use tpw_contracts::model::Hash;
use tpw_contracts::{BlockOutcome, ChainHead, StateStore};

/// A failure to read or write the ledger: fatal, the node must stop.
#[derive(Debug, thiserror::Error)]
pub enum LedgerStoreError {
    /// The store failed or holds a damaged record.
    #[error("ledger store failure: {0}")]
    Failed(String),
    /// The store refuses to go on for a reason an operator must act on (the message says
    /// what to do).
    #[error("{0}")]
    Unusable(String),
}

/// A Raft log position: the index of an entry and its term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    /// Raft index.
    pub index: u64,
    /// Its term.
    pub term: u64,
}

/// The ledger as the replica engine applies to it. Reads come through [`StateStore`]; every
/// write below is atomic: after a crash the store holds it whole or not at all, and it records
/// the applied Raft index with the change, so a restart neither loses nor repeats an entry.
/// Writes need not be synced: the Raft log is the write-ahead log, and a restart replays it
/// from the applied index the store kept.
pub trait ReplicaLedger<L: LogStore>: StateStore {
    /// The chain head after the last applied block.
    fn head(&self) -> &ChainHead;
    /// The Raft index of the last applied entry.
    fn applied_index(&self) -> u64;
    /// The header hash of an applied block, if this store holds it (a node restored from a
    /// snapshot lacks the blocks below it until backfill brings them).
    fn header_hash(&self, height: u64) -> Result<Option<Hash>, LedgerStoreError>;
    /// Writes an applied block at `position`: its state changes, the block record, the head,
    /// the applied index and the operational webhook progress it carries.
    fn commit_block(
        &mut self,
        position: LogPosition,
        proposal_bytes: &[u8],
        outcome: &BlockOutcome,
        webhooks: &[WebhookProgress],
    ) -> Result<(), LedgerStoreError>;
    /// Records that the entry at `index` applied without a block (a leader's no-op, or an
    /// entry every node skips alike).
    fn skip_entry(&mut self, index: u64) -> Result<(), LedgerStoreError>;
    /// Records a configuration change applied at `index`: the new configuration (in `log`
    /// too, so Raft restarts from it) and the applied index, in one write.
    fn record_conf_change(
        &mut self,
        index: u64,
        log: &L,
        conf_state: &ConfState,
    ) -> Result<(), LedgerStoreError>;
    /// Installs the snapshot Raft accepted, from the records staged for it: state, head and
    /// the Raft log's start are replaced together, and the blocks between the old head and
    /// the snapshot are left for backfill.
    fn install_snapshot(&mut self, log: &L, snapshot: &Snapshot) -> Result<(), LedgerStoreError>;
    /// The Raft index of the block that last rotated this node's own key, if recorded.
    fn own_rekey_index(&self) -> Result<Option<u64>, LedgerStoreError>;
    /// Records (synced) that the block at `index` rotated this node's key, or (none) that
    /// every member replicated that rotation.
    fn record_own_rekey(&mut self, index: Option<u64>) -> Result<(), LedgerStoreError>;
}
