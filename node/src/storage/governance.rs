//! Reads of the governance records for the API and the raft loop: the node set, proposals and
//! the electorate, decoded from the committed state.

use super::{LedgerReader, StorageError};
use crate::limits::PROPOSALS_PAGE_MAX;
use tpw_contracts::governance::{
    proposal_key, NodeRecord, ProposalRecord, BANK_MEMBERS_MAX, NODES_MAX,
};
use tpw_contracts::model::from_bytes;
use tpw_contracts::state::prefix;

fn corrupt(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{what} record: {error}"))
}

impl LedgerReader {
    /// Every node record, active and removed, in id order.
    pub fn nodes(&self) -> Result<Vec<NodeRecord>, StorageError> {
        self.state_range(&[prefix::NODE], &[prefix::NODE + 1], NODES_MAX)?
            .iter()
            .map(|(_, value)| from_bytes(value, NodeRecord::decode).map_err(|e| corrupt("node", e)))
            .collect()
    }

    /// One proposal.
    pub fn proposal(&self, id: u64) -> Result<Option<ProposalRecord>, StorageError> {
        self.state_now(&proposal_key(id))?
            .map(|bytes| {
                from_bytes(&bytes, ProposalRecord::decode).map_err(|e| corrupt("proposal", e))
            })
            .transpose()
    }

    /// Proposals with ids from `from`, ascending, at most `limit` (capped at
    /// [`PROPOSALS_PAGE_MAX`]).
    pub fn proposals(&self, from: u64, limit: usize) -> Result<Vec<ProposalRecord>, StorageError> {
        self.state_range(
            &proposal_key(from),
            &[prefix::PROPOSAL + 1],
            limit.min(PROPOSALS_PAGE_MAX),
        )?
        .iter()
        .map(|(_, value)| {
            from_bytes(value, ProposalRecord::decode).map_err(|e| corrupt("proposal", e))
        })
        .collect()
    }

    /// The active bank members (the electorate), ascending.
    pub fn bank_members(&self) -> Result<Vec<u64>, StorageError> {
        self.state_range(&[prefix::MEMBER], &[prefix::MEMBER + 1], BANK_MEMBERS_MAX)?
            .iter()
            .map(|(key, _)| {
                key.get(1..9)
                    .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| corrupt("bank member", "bad key"))
            })
            .collect()
    }
}
