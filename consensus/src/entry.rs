//! Which Raft entries are blocks: normal entries with data. Empty entries (a new leader's
//! no-op) and configuration changes are not, so block heights count proposals only.

use protobuf::Message as _;
use raft::prelude::{ConfChange, Entry, EntryType};
use tpw_contracts::codec::DecodeError;
use tpw_contracts::Proposal;

/// What a committed entry means to the ledger.
#[derive(Debug)]
pub enum EntryKind {
    /// A block proposal.
    Block(Proposal),
    /// A change of Raft's configuration: every node applies it to raft at this index.
    ConfChange(ConfChange),
    /// Not a block; nothing to apply to the ledger.
    Skip,
    /// A normal entry whose payload does not decode: every node skips it alike.
    Malformed(DecodeError),
}

/// Classifies a committed entry.
pub fn classify(entry: &Entry) -> EntryKind {
    if entry.get_entry_type() == EntryType::EntryConfChange {
        // Only the leader's membership planner proposes these, from the ledger's node set.
        return match ConfChange::parse_from_bytes(&entry.data) {
            Ok(change) => EntryKind::ConfChange(change),
            Err(error) => EntryKind::Malformed(DecodeError::InvalidValue {
                field: "conf_change",
                value: error.to_string().len() as u128,
            }),
        };
    }
    if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
        return EntryKind::Skip;
    }
    match Proposal::from_bytes(&entry.data) {
        Ok(proposal) => EntryKind::Block(proposal),
        Err(error) => EntryKind::Malformed(error),
    }
}
