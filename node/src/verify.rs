//! Offline replay of a node's data folder (`tpw verify`): every stored block is applied again
//! from genesis with the ledger engine, which checks every signature again, and each replayed
//! header (hash link, roots, times), receipt and effect must equal the stored one; at the end
//! the replayed state must equal the stored state record by record, and the replayed head the
//! stored head. The first difference is reported with its height and exactly what differs.
//! The folder is opened read-only, so a running node may keep serving from it.
//!
//! A ledger archive (`tpw export`) is replayed the same way (`tpw verify --archive`): its
//! checksum, each block against its replay, and its end record's head against the replayed
//! head.

use crate::archive::{ArchiveError, BlockSource, SourceBlock, SourceError};
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
    /// Each asset's outstanding supply, checked in the replayed state: debits equal credits,
    /// and the supply record equals what the issuance account let out (and so what every other
    /// account holds).
    pub assets: Vec<tpw_contracts::supply::AssetMoney>,
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
    /// The archive is damaged, out of order or of another network.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The ledger engine refused to apply a stored block.
    #[error("block {height} does not apply: {reason}")]
    Apply {
        /// Its height.
        height: u64,
        /// The engine's error.
        reason: String,
    },
    /// A replayed block differs from the stored one.
    #[error("block {height}: {what}")]
    Diverged {
        /// Its height.
        height: u64,
        /// What differs, precisely: the header field, or the receipt's position and both
        /// verdicts, or the effects.
        what: String,
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
    /// The replayed state breaks a money invariant (conservation or the supply record).
    #[error("money invariant broken at height {height}: {what}")]
    Money {
        /// The replayed head's height.
        height: u64,
        /// Which invariant, in which asset.
        what: String,
    },
    /// The stored head is not the replayed chain's head.
    #[error("the stored head (height {stored_height}) is not the replayed head")]
    Head {
        /// The stored head's height.
        stored_height: u64,
    },
}

impl From<SourceError> for ReplayError {
    fn from(error: SourceError) -> Self {
        match error {
            SourceError::MissingBlock(height) => Self::MissingBlock { height },
            SourceError::Archive(error) => Self::Archive(error),
            SourceError::Storage(error) => Self::Storage(error),
        }
    }
}

/// Replays the data folder `data_dir` (holding `db/`) of a stopped node against `genesis`.
pub fn replay_data_folder(data_dir: &Path, genesis: &Genesis) -> Result<ReplayReport, ReplayError> {
    replay_with_progress(data_dir, genesis, &mut |_, _| {})
}

/// The first difference between a stored block and its replay, described.
fn first_difference(
    stored: &tpw_contracts::BlockRecord,
    replayed: &tpw_contracts::BlockOutcome,
) -> Option<String> {
    let fields = header_fields(&stored.header, &replayed.header);
    let hex = |hash: &[u8; 32]| hex::encode(hash);
    for (position, (stored, replayed)) in stored.receipts.iter().zip(&replayed.receipts).enumerate()
    {
        if stored != replayed {
            return Some(format!(
                "receipt {position} (transaction {}): stored {} {:?}, replayed {} {:?}",
                hex(&stored.tx_id),
                stored.code.name(),
                stored.operations,
                replayed.code.name(),
                replayed.operations
            ));
        }
    }
    if stored.receipts.len() != replayed.receipts.len() {
        return Some(format!(
            "{} receipts stored, {} replayed",
            stored.receipts.len(),
            replayed.receipts.len()
        ));
    }
    if stored.effects != replayed.effects {
        return Some(format!(
            "effects: stored {:?}, replayed {:?}",
            stored.effects, replayed.effects
        ));
    }
    fields
        .into_iter()
        .find(|(_, stored, replayed)| stored != replayed)
        .map(|(field, stored, replayed)| {
            format!("header {field}: stored {stored}, replayed {replayed}")
        })
}

/// Each header field of the stored block and of its replay, named, in the order they are
/// compared.
fn header_fields(
    a: &tpw_contracts::BlockHeader,
    b: &tpw_contracts::BlockHeader,
) -> [(&'static str, String, String); 10] {
    let hex = |hash: &[u8; 32]| hex::encode(hash);
    [
        ("network id", hex(&a.network_id), hex(&b.network_id)),
        ("height", a.height.to_string(), b.height.to_string()),
        (
            "previous hash (hash link)",
            hex(&a.previous_hash),
            hex(&b.previous_hash),
        ),
        ("block time", a.time_ms.to_string(), b.time_ms.to_string()),
        (
            "proposer time",
            a.proposer_time_ms.to_string(),
            b.proposer_time_ms.to_string(),
        ),
        (
            "transaction count",
            a.transaction_count.to_string(),
            b.transaction_count.to_string(),
        ),
        (
            "transactions root",
            hex(&a.transactions_root),
            hex(&b.transactions_root),
        ),
        (
            "receipts root",
            hex(&a.receipts_root),
            hex(&b.receipts_root),
        ),
        ("effects root", hex(&a.effects_root), hex(&b.effects_root)),
        ("state root", hex(&a.state_root), hex(&b.state_root)),
    ]
}

/// Applies stored block `block` (at `height`) again on `state` after `head`, every signature
/// checked again, and checks the outcome against what was stored.
pub(crate) fn replay_block(
    state: &dyn tpw_contracts::StateStore,
    head: &tpw_contracts::ChainHead,
    height: u64,
    block: &tpw_contracts::BlockRecord,
) -> Result<tpw_contracts::BlockOutcome, ReplayError> {
    let outcome = apply_block(state, head, &block.proposal, &|_| false).map_err(|error| {
        ReplayError::Apply {
            height,
            reason: error.to_string(),
        }
    })?;
    match first_difference(block, &outcome) {
        Some(what) => Err(ReplayError::Diverged { height, what }),
        None => Ok(outcome),
    }
}

/// Replays every block of `source` from genesis, checking each against its replay; returns
/// the replayed state and head.
fn replay_source(
    source: &mut BlockSource,
    genesis: &Genesis,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(MemStore, tpw_contracts::ChainHead), ReplayError> {
    let built = genesis
        .build()
        .map_err(|error| ReplayError::Genesis(error.to_string()))?;
    let mut state = MemStore::default();
    state.apply_diff(&built.diff);
    let mut head = built.head;
    while let Some(SourceBlock { height, block, .. }) = source.next_block()? {
        let outcome = replay_block(&state, &head, height, &block)?;
        state.apply_diff(&outcome.diff);
        head = outcome.head;
        let (done, all) = source.progress();
        progress(done, all);
    }
    Ok((state, head))
}

/// The money invariants of a replayed state, per asset.
fn check_money(
    state: &MemStore,
    height: u64,
) -> Result<Vec<tpw_contracts::supply::AssetMoney>, ReplayError> {
    tpw_contracts::supply::check_money(
        state
            .records()
            .map(|(key, value)| (key.as_slice(), value.as_slice())),
    )
    .map_err(|what| ReplayError::Money { height, what })
}

/// Replays the ledger archive `path` against `genesis`, telling `progress` (bytes read, bytes
/// in all) as it goes.
pub fn replay_archive(
    path: &Path,
    genesis: &Genesis,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplayReport, ReplayError> {
    let network_id = genesis
        .compute_network_id()
        .map_err(|error| ReplayError::Genesis(error.to_string()))?;
    let mut source = BlockSource::archive(path, &network_id)?;
    let (state, head) = replay_source(&mut source, genesis, progress)?;
    let BlockSource::Archive {
        end: Some((height, head_hash, _)),
        ..
    } = source
    else {
        return Err(ReplayError::Head {
            stored_height: head.height,
        });
    };
    if height != head.height || head_hash != head.hash {
        return Err(ReplayError::Head {
            stored_height: height,
        });
    }
    Ok(ReplayReport {
        height: head.height,
        head_hash: hex::encode(head.hash),
        state_root: hex::encode(head.commitment.root()),
        state_records: state.records().count() as u64,
        assets: check_money(&state, head.height)?,
    })
}

/// As [`replay_data_folder`], telling `progress` (blocks done, blocks in all) as it goes.
pub fn replay_with_progress(
    data_dir: &Path,
    genesis: &Genesis,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplayReport, ReplayError> {
    let db = Db::open_read_only(&data_dir.join("db"))?;
    let reader = LedgerReader::new(db.clone());
    let (stored_head, _) = reader.head()?;
    let mut source = BlockSource::Folder {
        reader,
        next: 1,
        head: stored_head.height,
    };
    let (state, head) = replay_source(&mut source, genesis, progress)?;
    if head.hash != stored_head.hash {
        return Err(ReplayError::Head {
            stored_height: stored_head.height,
        });
    }
    let compared = compare_state(&db, &state)?;
    Ok(ReplayReport {
        height: head.height,
        head_hash: hex::encode(head.hash),
        state_root: hex::encode(head.commitment.root()),
        state_records: compared,
        assets: check_money(&state, head.height)?,
    })
}

/// Compares the stored state with the replayed one record by record: everything stored is
/// replayed, and nothing replayed is missing. Returns the records compared.
fn compare_state(db: &Db, state: &MemStore) -> Result<u64, ReplayError> {
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
    Ok(compared)
}
