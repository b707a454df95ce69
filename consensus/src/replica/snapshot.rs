//! The snapshot rules both executors follow around the engine: which offered snapshot may
//! answer raft's request for one, what a node does with a snapshot message it receives (step
//! it, ignore it, or fetch its records first), and how blocks fetched below an installed
//! snapshot are checked before they are stored (backfill).

use raft::prelude::{ConfState, Snapshot};
use tpw_contracts::model::Hash;
use tpw_contracts::BlockRecord;

/// A snapshot a log store offers: the state at `index`, described by `data` (the descriptor of
/// `crate::wire::snapshot`), under the configuration in force there.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotOffer {
    /// Its Raft index (the applied index it was made at).
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The configuration at that index.
    pub conf_state: ConfState,
    /// The descriptor the Raft message carries.
    pub data: Vec<u8>,
}

impl SnapshotOffer {
    /// Whether this offer may answer raft's request for a snapshot at least as recent as
    /// `request_index`, for peer `to`, when the log is compacted to `compacted`: it must cover
    /// the compacted entries, and name `to` in its configuration (a node added after the offer
    /// was made would refuse it: a newer one is wanted then).
    pub fn serves(&self, request_index: u64, compacted: u64, to: u64) -> bool {
        self.index > 0
            && self.index >= request_index
            && self.index >= compacted
            && (self.conf_state.voters.contains(&to) || self.conf_state.learners.contains(&to))
    }

    /// The Raft snapshot message body for this offer.
    pub fn to_snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        snapshot.set_data(self.data.clone().into());
        let metadata = snapshot.mut_metadata();
        metadata.index = self.index;
        metadata.term = self.term;
        metadata.set_conf_state(self.conf_state.clone());
        snapshot
    }
}

/// What a node does with a snapshot message from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotArrival {
    /// Hand it to the engine now: it is at or below the commit index (raft answers with its
    /// progress, which moves the leader on), or it is the one already staged.
    Step,
    /// Drop it: another staged snapshot awaits raft, and staging is not this one's to touch.
    Ignore,
    /// Fetch and verify its records, stage them, then hand it to the engine.
    Fetch,
}

/// Decides what to do with a snapshot message at `index`, given the commit index and the
/// index of the snapshot staged and handed to the engine, if any.
pub fn snapshot_arrival(index: u64, commit_index: u64, staged: Option<u64>) -> SnapshotArrival {
    if index <= commit_index {
        return SnapshotArrival::Step;
    }
    match staged {
        Some(stepped) if stepped == index => SnapshotArrival::Step,
        Some(_) => SnapshotArrival::Ignore,
        None => SnapshotArrival::Fetch,
    }
}

/// A block fetched below a snapshot, checked and ready to store.
#[derive(Debug, Clone)]
pub struct CheckedBlock {
    /// Its height.
    pub height: u64,
    /// Its record as fetched.
    pub record: Vec<u8>,
    /// Its decoded form.
    pub block: BlockRecord,
}

/// Checks blocks fetched from `high` down for a gap `low..=high`: heights, hash links from
/// `expected` (the previous-block hash the block above the gap names), and each block's own
/// consistency. Returns them ready to store, and the previous-block hash the lowest names
/// (which must be this node's block below the gap once the gap closes).
pub fn check_chain(
    network_id: &Hash,
    mut expected: Hash,
    high: u64,
    low: u64,
    records: Vec<Vec<u8>>,
) -> Result<(Vec<CheckedBlock>, Hash), String> {
    let mut checked = Vec::with_capacity(records.len());
    for (offset, record) in records.into_iter().enumerate() {
        let Some(height) = high
            .checked_sub(offset as u64)
            .filter(|height| *height >= low)
        else {
            break;
        };
        let block = BlockRecord::from_bytes(&record).map_err(|error| error.to_string())?;
        if block.header.height != height {
            return Err(format!(
                "asked for block {height}, got {}",
                block.header.height
            ));
        }
        if block.header.hash() != expected {
            return Err(format!(
                "block {height} does not link to the block above it"
            ));
        }
        tpw_contracts::check_block_record(
            network_id,
            &block.header,
            &block.proposal,
            &block.receipts,
            &block.effects,
        )
        .map_err(|error| error.to_string())?;
        expected = block.header.previous_hash;
        checked.push(CheckedBlock {
            height,
            record,
            block,
        });
    }
    Ok((checked, expected))
}

/// Checks a snapshot message's descriptor before its records are fetched: it decodes, names
/// this network, and the same index as the Raft metadata.
pub fn check_descriptor(
    network_id: &Hash,
    snapshot: &Snapshot,
) -> Result<crate::wire::snapshot::SnapshotDescriptor, String> {
    let descriptor = crate::wire::snapshot::SnapshotDescriptor::from_bytes(snapshot.get_data())
        .map_err(|error| format!("malformed snapshot descriptor: {error}"))?;
    if descriptor.network_id != *network_id {
        return Err("the snapshot belongs to another network".into());
    }
    if descriptor.applied_index != snapshot.get_metadata().index {
        return Err("the descriptor and the Raft metadata name different indexes".into());
    }
    Ok(descriptor)
}

/// Checks a fetched snapshot's head block and the commitment recomputed from its records
/// against the descriptor: the block is the one named, consistent on its own, and its state
/// root is the records'. Returns the head the snapshot installs.
pub fn check_snapshot_head(
    descriptor: &crate::wire::snapshot::SnapshotDescriptor,
    block_record: &[u8],
    commitment: tpw_contracts::state::Commitment,
) -> Result<tpw_contracts::ChainHead, String> {
    let block = BlockRecord::from_bytes(block_record).map_err(|error| error.to_string())?;
    let header = &block.header;
    if header.hash() != descriptor.head_hash || header.height != descriptor.height {
        return Err("the head block is not the one the snapshot names".into());
    }
    tpw_contracts::check_block_record(
        &descriptor.network_id,
        header,
        &block.proposal,
        &block.receipts,
        &block.effects,
    )
    .map_err(|error| error.to_string())?;
    let root = commitment.root();
    if root != header.state_root || root != descriptor.state_root {
        return Err("the records' state root differs from the head block's".into());
    }
    Ok(tpw_contracts::ChainHead {
        network_id: descriptor.network_id,
        height: header.height,
        hash: descriptor.head_hash,
        time_ms: header.time_ms,
        commitment,
    })
}
