//! Offline replay of a stopped node's data folder: every stored block is applied again from
//! genesis with the ledger engine, and each replayed header, receipt and effect must equal the
//! stored one; at the end the replayed state must equal the stored state record by record, and
//! the replayed head the stored head. The first difference is reported with its height and
//! what differs.

use crate::storage::{open_record, Db, LedgerReader, StorageError};
use std::path::Path;
use tpw_contracts::{apply_block, Genesis, MemStore};

/// What a replay covered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    /// Blocks replayed (the stored head's height).
    pub height: u64,
    /// The head hash, stored and replayed alike.
    pub head_hash: String,
    /// The state root, stored and replayed alike.
    pub state_root: String,
    /// State records compared.
    pub state_records: u64,
}

/// Where a replay found the data folder differs from a replay of its own blocks.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The folder could not be read.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The genesis does not build.
    #[error("genesis: {0}")]
    Genesis(String),
    /// A block below the head is not stored (a node restored from a snapshot before its
    /// backfill finished).
    #[error("block {height} is not stored; a node restored from a snapshot keeps blocks only after backfill")]
    MissingBlock {
        /// Its height.
        height: u64,
    },
    /// The ledger engine refused to apply a stored block.
    #[error("block {height} does not apply: {reason}")]
    Apply {
        /// Its height.
        height: u64,
        /// The engine's error.
        reason: String,
    },
    /// A replayed block differs from the stored one.
    #[error("block {height}: the replayed {what} differs from the stored one")]
    Diverged {
        /// Its height.
        height: u64,
        /// "header", "state root", "receipts" or "effects".
        what: &'static str,
    },
    /// The stored state differs from the replayed state.
    #[error("state record {key} differs: stored {stored}, replayed {replayed}")]
    State {
        /// The record key, hex.
        key: String,
        /// "present", "absent" or "other bytes".
        stored: &'static str,
        /// "present", "absent" or "other bytes".
        replayed: &'static str,
    },
    /// The stored head is not the replayed chain's head.
    #[error("the stored head (height {stored_height}) is not the replayed head")]
    Head {
        /// The stored head's height.
        stored_height: u64,
    },
}

/// Replays the data folder `data_dir` (holding `db/`) of a stopped node against `genesis`.
pub fn replay_data_folder(data_dir: &Path, genesis: &Genesis) -> Result<ReplayReport, ReplayError> {
    let db = Db::open_read_only(&data_dir.join("db"))?;
    let reader = LedgerReader::new(db.clone());
    let (stored_head, _) = reader.head()?;
    let built = genesis
        .build()
        .map_err(|error| ReplayError::Genesis(error.to_string()))?;
    let mut state = MemStore::default();
    state.apply_diff(&built.diff);
    let mut head = built.head;
    for height in 1..=stored_head.height {
        let block = reader
            .block(height)?
            .ok_or(ReplayError::MissingBlock { height })?;
        let outcome = apply_block(&state, &head, &block.proposal, &|_| false).map_err(|error| {
            ReplayError::Apply {
                height,
                reason: error.to_string(),
            }
        })?;
        if outcome.header.state_root != block.header.state_root {
            return Err(ReplayError::Diverged {
                height,
                what: "state root",
            });
        }
        if outcome.receipts != block.receipts {
            return Err(ReplayError::Diverged {
                height,
                what: "receipts",
            });
        }
        if outcome.effects != block.effects {
            return Err(ReplayError::Diverged {
                height,
                what: "effects",
            });
        }
        if outcome.header != block.header {
            return Err(ReplayError::Diverged {
                height,
                what: "header",
            });
        }
        state.apply_diff(&outcome.diff);
        head = outcome.head;
    }
    if head.hash != stored_head.hash {
        return Err(ReplayError::Head {
            stored_height: stored_head.height,
        });
    }
    // Record by record: everything stored is replayed, and nothing replayed is missing.
    let mut replayed = state.records().peekable();
    let mut compared = 0u64;
    let iterator = db.rocks().iterator_cf(
        db.cf(crate::storage::CF_STATE),
        rocksdb::IteratorMode::Start,
    );
    for item in iterator {
        let (key, value) = item.map_err(StorageError::from)?;
        let value = open_record(&value, "state")?;
        if let Some((replayed_key, _)) = replayed.peek() {
            if replayed_key.as_slice() < &key[..] {
                return Err(ReplayError::State {
                    key: hex::encode(replayed_key),
                    stored: "absent",
                    replayed: "present",
                });
            }
        }
        match replayed.next() {
            Some((replayed_key, replayed_value)) if replayed_key.as_slice() == &key[..] => {
                if replayed_value.as_slice() != value {
                    return Err(ReplayError::State {
                        key: hex::encode(&key),
                        stored: "other bytes",
                        replayed: "other bytes",
                    });
                }
            }
            _ => {
                return Err(ReplayError::State {
                    key: hex::encode(&key),
                    stored: "present",
                    replayed: "absent",
                })
            }
        }
        compared += 1;
    }
    if let Some((key, _)) = replayed.next() {
        return Err(ReplayError::State {
            key: hex::encode(key),
            stored: "absent",
            replayed: "present",
        });
    }
    Ok(ReplayReport {
        height: head.height,
        head_hash: hex::encode(head.hash),
        state_root: hex::encode(head.commitment.root()),
        state_records: compared,
    })
}
