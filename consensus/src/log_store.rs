//! The Raft log store boundary: what the driver needs persisted, and an in-memory store.
//!
//! The node implements [`LogStore`] over RocksDB with synced writes; tests and the simulator
//! use [`MemLogStore`]. Both must behave alike, which the conformance checks in the tests
//! exercise.

use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage};

/// A failure to persist Raft state: fatal, the node must stop.
#[derive(Debug, thiserror::Error)]
#[error("raft log store failure: {0}")]
pub struct LogStoreError(pub String);

/// Durable Raft log and hard state. Reads come through [`raft::Storage`]; the writes below
/// must be durable (synced) before they return.
pub trait LogStore: Storage {
    /// Appends entries (replacing any conflicting suffix) and sets the hard state, atomically.
    fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<(), LogStoreError>;
    /// Records a new commit index.
    fn persist_commit(&self, commit: u64) -> Result<(), LogStoreError>;
    /// Replaces the log with a snapshot's metadata.
    fn apply_snapshot(&self, snapshot: Snapshot) -> Result<(), LogStoreError>;
    /// Records the configuration after an applied configuration change, so a restart (and a
    /// snapshot) starts from it.
    fn set_conf_state(&self, conf_state: ConfState) -> Result<(), LogStoreError>;
    /// The index of the last entry dropped by compaction (or replaced by a snapshot).
    fn compacted_index(&self) -> u64 {
        self.first_index()
            .map_or(0, |first| first.saturating_sub(1))
    }
    /// Drops every entry up to `to` (at most the applied index).
    fn compact(&self, to: u64) -> Result<(), LogStoreError>;
    /// The index of a snapshot this store offered to a peer that may still be fetching it:
    /// compaction must not pass it.
    fn snapshot_hold(&self) -> Option<u64> {
        None
    }
}

/// raft-rs' in-memory storage, shared by clones.
#[derive(Clone, Default)]
pub struct MemLogStore {
    storage: MemStorage,
}

impl MemLogStore {
    /// A store initialised with the genesis node set.
    pub fn new(voters: Vec<u64>, learners: Vec<u64>) -> Self {
        Self {
            storage: MemStorage::new_with_conf_state(ConfState::from((voters, learners))),
        }
    }
}

impl Storage for MemLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.storage.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.storage.entries(low, high, max_size, context)
    }
    fn term(&self, index: u64) -> raft::Result<u64> {
        self.storage.term(index)
    }
    fn first_index(&self) -> raft::Result<u64> {
        self.storage.first_index()
    }
    fn last_index(&self) -> raft::Result<u64> {
        self.storage.last_index()
    }
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        self.storage.snapshot(request_index, to)
    }
}

impl LogStore for MemLogStore {
    fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<(), LogStoreError> {
        let mut core = self.storage.wl();
        core.append(entries)
            .map_err(|error| LogStoreError(error.to_string()))?;
        if let Some(hard_state) = hard_state {
            core.set_hardstate(hard_state.clone());
        }
        Ok(())
    }
    fn persist_commit(&self, commit: u64) -> Result<(), LogStoreError> {
        self.storage.wl().mut_hard_state().set_commit(commit);
        Ok(())
    }
    fn apply_snapshot(&self, snapshot: Snapshot) -> Result<(), LogStoreError> {
        self.storage
            .wl()
            .apply_snapshot(snapshot)
            .map_err(|error| LogStoreError(error.to_string()))
    }
    fn set_conf_state(&self, conf_state: ConfState) -> Result<(), LogStoreError> {
        self.storage.wl().set_conf_state(conf_state);
        Ok(())
    }
    fn compact(&self, to: u64) -> Result<(), LogStoreError> {
        self.storage
            .wl()
            .compact(to + 1)
            .map_err(|error| LogStoreError(error.to_string()))
    }
}
