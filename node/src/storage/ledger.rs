//! Ledger state, blocks and indexes in RocksDB.
//!
//! [`LedgerStore`] is the apply path's view (owned by the raft loop): it reads state through
//! the contracts' [`StateStore`] trait, with a cache of the small, hot records (participants,
//! keys, assets, accounts), and writes each applied block (state changes, block, indexes,
//! head and applied Raft index) in one atomic write batch. [`LedgerReader`] serves the API from
//! consistent RocksDB snapshots.

use super::db::{Db, StorageError, CF_BLOCKS, CF_INDEX, CF_META, CF_STAGING, CF_STATE};
use super::raft_log::RaftLogStore;
use super::record::{open_record, seal_record};
use super::snapshot::{
    block_gaps, put_block_gaps, read_staged, staged_block, StagedSnapshot, KEY_INSTALLING,
    KEY_STAGED,
};
use crate::limits::STATE_CACHE_ENTRIES_MAX;
use protobuf::Message as _;
use rocksdb::{ReadOptions, WriteBatch};
use std::cell::RefCell;
use std::collections::HashMap;
use tpw_consensus::raft_types::Snapshot;
use tpw_contracts::codec::{Reader, Writer};
use tpw_contracts::escrow::EscrowRecord;
use tpw_contracts::model::{from_bytes, Account, Hash, HoldRecord, TransferRecord};
use tpw_contracts::state::{account_key, prefix, transfer_key, StoreError};
use tpw_contracts::{
    encode_block_record, BlockHeader, BlockOutcome, ChainHead, Genesis, Proposal, Receipt,
    StateStore,
};

pub(super) const KEY_HEAD: &[u8] = b"head";
/// Meta records `bp` + height (u64 BE): the Raft position at which the ledger reached that
/// height (restore to a chosen height resumes Raft from there).
const BLOCK_POSITION_PREFIX: &[u8] = b"bp";
/// The meta record holding the Raft index of the block that last rotated this node's own key.
const KEY_OWN_REKEY: &[u8] = b"own_key_rotated_index";
/// Meta records `cc` + Raft index (u64 BE): the Raft configuration from that index on (the
/// configuration at a restored height).
const CONF_HISTORY_PREFIX: &[u8] = b"cc";

fn block_position_key(height: u64) -> Vec<u8> {
    let mut key = BLOCK_POSITION_PREFIX.to_vec();
    key.extend_from_slice(&height.to_be_bytes());
    key
}

fn conf_history_key(index: u64) -> Vec<u8> {
    let mut key = CONF_HISTORY_PREFIX.to_vec();
    key.extend_from_slice(&index.to_be_bytes());
    key
}

pub use tpw_consensus::LogPosition;

/// The stored form of a Raft position: index and term, big-endian.
fn position_bytes(position: LogPosition) -> [u8; 16] {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&position.index.to_be_bytes());
    bytes[8..].copy_from_slice(&position.term.to_be_bytes());
    bytes
}

/// Reads a stored Raft position.
fn position_from_record(sealed: &[u8]) -> Result<LogPosition, StorageError> {
    let payload = open_record(sealed, "block position")?;
    let bytes = <[u8; 16]>::try_from(payload)
        .map_err(|_| StorageError::Corrupt("a block position has the wrong size".into()))?;
    Ok(LogPosition {
        index: u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default()),
        term: u64::from_be_bytes(bytes[8..].try_into().unwrap_or_default()),
    })
}

fn cached_kind(key: &[u8]) -> bool {
    matches!(
        key.first(),
        Some(
            &prefix::PARTICIPANT
                | &prefix::KEY
                | &prefix::ASSET
                | &prefix::ACCOUNT
                | &prefix::TRANSFER_MAX
                | &prefix::OUTFLOW_CAP
                | &prefix::APPROVAL_POLICY
                | &prefix::CYCLE_MEMBER
                | &prefix::CREDIT_LIMIT
        )
    )
}

/// Where a transaction landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub position: u32,
}

/// A stored block: derived header, the proposal as replicated, the receipts and the effects
/// (the block record of docs/encoding.md, decoded by the contracts crate).
pub use tpw_contracts::BlockRecord as StoredBlock;

/// What the API needs to know about a block just applied.
#[derive(Debug, Clone)]
pub struct AppliedBlock {
    /// Its header.
    pub header: BlockHeader,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
}

fn encode_head(head: &ChainHead, applied_index: u64) -> Vec<u8> {
    let mut writer = Writer::with_capacity(2200);
    head.encode(&mut writer);
    writer.u64(applied_index);
    writer.finish()
}

pub(super) fn decode_head(bytes: &[u8]) -> Result<(ChainHead, u64), StorageError> {
    let payload = open_record(bytes, "chain head")?;
    let mut reader = Reader::new(payload);
    let head = ChainHead::decode(&mut reader)
        .map_err(|error| StorageError::Corrupt(format!("chain head: {error}")))?;
    let applied = reader
        .u64("applied_index")
        .map_err(|error| StorageError::Corrupt(format!("chain head: {error}")))?;
    reader
        .finish()
        .map_err(|error| StorageError::Corrupt(format!("chain head: {error}")))?;
    Ok((head, applied))
}

pub(super) fn decode_block(bytes: &[u8]) -> Result<StoredBlock, StorageError> {
    parse_block_record(open_record(bytes, "block")?)
}

/// Decodes a block record (a stored block without its storage seal, as peers exchange them).
pub fn parse_block_record(payload: &[u8]) -> Result<StoredBlock, StorageError> {
    StoredBlock::from_bytes(payload).map_err(|error| StorageError::Corrupt(error.to_string()))
}

/// A transfer record and what hangs on it.
#[derive(Debug, Clone)]
pub struct TransferDetails {
    /// The record.
    pub record: TransferRecord,
    /// Height the read reflects.
    pub height: u64,
    /// Its escrow terms and approvals, if it is an escrow.
    pub escrow: Option<EscrowRecord>,
    /// Its reversals, if it was reversed.
    pub reversal: Option<tpw_contracts::reversal::ReversalRecord>,
    /// The counter leg, if it is an exchange offer.
    pub exchange: Option<tpw_contracts::exchange::ExchangeRecord>,
    /// Whether it waits for a checker's approval (maker-checker).
    pub awaiting_approval: bool,
}

/// An asset and its supply, read at one height.
#[derive(Debug, Clone)]
pub struct AssetDetails {
    /// Height the read reflects.
    pub height: u64,
    /// The asset.
    pub asset: tpw_contracts::model::Asset,
    /// Its supply cap and what is outstanding.
    pub supply: tpw_contracts::issuance::SupplyRecord,
}

/// An asset's per-transfer maximum and a participant's outflow cap in it.
#[derive(Debug, Clone)]
pub struct LimitsDetails {
    /// Height the read reflects.
    pub height: u64,
    /// Block time of that height.
    pub time_ms: u64,
    /// The asset's per-transfer maximum, if set.
    pub transfer_max: Option<u128>,
    /// The participant's daily outflow cap in the asset, if set.
    pub outflow_cap: Option<tpw_contracts::limits_rules::OutflowCap>,
}

/// The apply path's ledger store.
pub struct LedgerStore {
    db: Db,
    cache: RefCell<HashMap<Vec<u8>, Option<Vec<u8>>>>,
    head: ChainHead,
    applied_index: u64,
}

impl LedgerStore {
    /// Opens the ledger, writing the genesis state on first start and otherwise checking that
    /// the data folder belongs to this genesis.
    pub fn open(db: Db, genesis: &Genesis) -> Result<Self, StorageError> {
        let state = genesis
            .build()
            .map_err(|error| StorageError::Unusable(error.to_string()))?;
        let meta_cf = db.cf(CF_META);
        let (head, applied_index) = match db.rocks().get_cf(meta_cf, KEY_HEAD)? {
            Some(bytes) => {
                let (head, applied_index) = decode_head(&bytes)?;
                if head.network_id != state.head.network_id {
                    return Err(StorageError::Unusable(format!(
                        "the data folder holds network {}, but the genesis file is network {}",
                        hex::encode(head.network_id),
                        hex::encode(state.head.network_id)
                    )));
                }
                (head, applied_index)
            }
            None => {
                let mut batch = WriteBatch::default();
                let state_cf = db.cf(CF_STATE);
                for (key, value) in &state.diff {
                    if let Some(value) = value {
                        batch.put_cf(state_cf, key, seal_record(value));
                    }
                }
                let block =
                    encode_block_record(&state.header, &Proposal::default().to_bytes(), &[], &[]);
                batch.put_cf(db.cf(CF_BLOCKS), 0u64.to_be_bytes(), seal_record(&block));
                batch.put_cf(meta_cf, KEY_HEAD, seal_record(&encode_head(&state.head, 0)));
                let mut options = rocksdb::WriteOptions::default();
                options.set_sync(true);
                db.rocks().write_opt(batch, &options)?;
                (state.head, 0)
            }
        };
        Ok(Self {
            db,
            cache: RefCell::new(HashMap::new()),
            head,
            applied_index,
        })
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The chain head after the last applied block.
    pub fn head(&self) -> &ChainHead {
        &self.head
    }

    /// The Raft index of the last applied entry.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The header hash of an applied block.
    pub fn header_hash(&self, height: u64) -> Result<Option<Hash>, StorageError> {
        match self
            .db
            .rocks()
            .get_pinned_cf(self.db.cf(CF_BLOCKS), height.to_be_bytes())?
        {
            None => Ok(None),
            Some(bytes) => Ok(Some(decode_block(&bytes)?.header.hash())),
        }
    }

    /// Whether a transaction id is already in a committed block.
    pub fn contains_tx(&self, tx_id: &Hash) -> Result<bool, StorageError> {
        Ok(self
            .db
            .rocks()
            .get_pinned_cf(self.db.cf(CF_INDEX), tx_id)?
            .is_some())
    }

    /// Persists an applied block atomically: state changes, block, tx index, statement lines,
    /// the webhook progress it carries, head, applied index and the block's Raft position.
    /// A block replayed without its position (`tpw restore` of a block a node backfilled)
    /// leaves the applied index as it was.
    pub fn commit_block(
        &mut self,
        position: Option<LogPosition>,
        proposal_bytes: &[u8],
        outcome: &BlockOutcome,
        webhooks: &[tpw_contracts::block::WebhookProgress],
    ) -> Result<(), StorageError> {
        assert_eq!(
            outcome.header.height,
            self.head.height + 1,
            "blocks apply in height order"
        );
        let mut batch = WriteBatch::default();
        let state_cf = self.db.cf(CF_STATE);
        for (key, value) in &outcome.diff {
            match value {
                Some(value) => batch.put_cf(state_cf, key, seal_record(value)),
                None => batch.delete_cf(state_cf, key),
            }
        }
        let height = outcome.header.height;
        batch.put_cf(
            self.db.cf(CF_BLOCKS),
            height.to_be_bytes(),
            seal_record(&encode_block_record(
                &outcome.header,
                proposal_bytes,
                &outcome.receipts,
                &outcome.effects,
            )),
        );
        for (key, value) in super::statement::block_entries(self, outcome)? {
            batch.put_cf(self.db.cf(CF_META), key, value);
        }
        self.index_new_transactions(&mut batch, height, &outcome.receipts)?;
        let raft_index = position.map_or(self.applied_index, |position| position.index);
        if let Some(position) = position {
            batch.put_cf(
                self.db.cf(CF_META),
                block_position_key(height),
                seal_record(&position_bytes(position)),
            );
        }
        batch.put_cf(
            self.db.cf(CF_META),
            KEY_HEAD,
            seal_record(&encode_head(&outcome.head, raft_index)),
        );
        let webhook_guard = (!webhooks.is_empty()).then(super::webhooks::write_guard);
        super::webhooks::stage(&self.db, &mut batch, webhooks)?;
        self.db.rocks().write(batch)?;
        drop(webhook_guard);
        self.cache_changes(&outcome.diff);
        self.head = outcome.head.clone();
        self.applied_index = raft_index;
        Ok(())
    }

    /// Indexes each transaction of the block by id (its first receipt, unless an earlier block
    /// holds it already: a duplicate's receipt keeps the original's place).
    fn index_new_transactions(
        &self,
        batch: &mut WriteBatch,
        height: u64,
        receipts: &[tpw_contracts::Receipt],
    ) -> Result<(), StorageError> {
        let index_cf = self.db.cf(CF_INDEX);
        let mut seen = std::collections::HashSet::with_capacity(receipts.len());
        for (position, receipt) in receipts.iter().enumerate() {
            if !seen.insert(receipt.tx_id) || self.contains_tx(&receipt.tx_id)? {
                continue;
            }
            let mut location = height.to_le_bytes().to_vec();
            location.extend_from_slice(&(position as u32).to_le_bytes());
            batch.put_cf(index_cf, receipt.tx_id, seal_record(&location));
        }
        Ok(())
    }

    /// Keeps the cached kinds of state records up to date with a committed diff (the cache is
    /// reset when it grows past its bound).
    fn cache_changes(&self, diff: &tpw_contracts::StateDiff) {
        let mut cache = self.cache.borrow_mut();
        if cache.len() > STATE_CACHE_ENTRIES_MAX {
            cache.clear();
        }
        for (key, value) in diff {
            if cached_kind(key) {
                cache.insert(key.clone(), value.clone());
            }
        }
    }

    /// Installs the staged snapshot that Raft accepted: the ledger state, head block and head
    /// are replaced and the Raft log starts after the snapshot, and the blocks between the
    /// old head and the snapshot are recorded as a gap for backfill. Crash-safe: a marker
    /// written first makes [`LedgerStore::resume_install`] finish the job on restart.
    pub fn install_snapshot(
        &mut self,
        log: &RaftLogStore,
        snapshot: &Snapshot,
    ) -> Result<(), StorageError> {
        let Some(staged) = read_staged(&self.db)? else {
            return Err(StorageError::Corrupt(
                "Raft accepted a snapshot that was never staged".into(),
            ));
        };
        if staged.descriptor.to_bytes() != snapshot.get_data()
            || staged.descriptor.applied_index != snapshot.get_metadata().index
        {
            return Err(StorageError::Corrupt(
                "Raft accepted another snapshot than the one staged".into(),
            ));
        }
        let bytes = snapshot
            .write_to_bytes()
            .map_err(|error| StorageError::Corrupt(format!("snapshot encode: {error}")))?;
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        self.db.rocks().put_cf_opt(
            self.db.cf(CF_META),
            KEY_INSTALLING,
            seal_record(&bytes),
            &options,
        )?;
        self.finish_install(log, snapshot, &staged)
    }

    /// Finishes a snapshot installation interrupted by a crash; true if there was one.
    pub fn resume_install(&mut self, log: &RaftLogStore) -> Result<bool, StorageError> {
        let Some(bytes) = self
            .db
            .rocks()
            .get_cf(self.db.cf(CF_META), KEY_INSTALLING)?
        else {
            return Ok(false);
        };
        let snapshot = Snapshot::parse_from_bytes(open_record(&bytes, "installing snapshot")?)
            .map_err(|error| StorageError::Corrupt(format!("installing snapshot: {error}")))?;
        let Some(staged) = read_staged(&self.db)? else {
            return Err(StorageError::Corrupt(
                "a snapshot installation was interrupted and its staged records are gone".into(),
            ));
        };
        if staged.descriptor.to_bytes() != snapshot.get_data() {
            return Err(StorageError::Corrupt(
                "an interrupted snapshot installation and the staged snapshot differ".into(),
            ));
        }
        tracing::warn!(
            index = snapshot.get_metadata().index,
            "finishing a snapshot installation interrupted by a stop"
        );
        self.finish_install(log, &snapshot, &staged)?;
        Ok(true)
    }

    fn finish_install(
        &mut self,
        log: &RaftLogStore,
        snapshot: &Snapshot,
        staged: &StagedSnapshot,
    ) -> Result<(), StorageError> {
        let block = staged_block(staged)?;
        // One batch, so readers see the old state or the new one, never a mix; the staged
        // records are checked once more against the commitment they were verified with.
        let mut batch = WriteBatch::default();
        self.replace_state_with_staged(&mut batch, staged)?;
        let index_cf = self.db.cf(CF_INDEX);
        for (position, receipt) in block.receipts.iter().enumerate().rev() {
            if !self.contains_tx(&receipt.tx_id)? {
                let mut location = staged.head.height.to_le_bytes().to_vec();
                location.extend_from_slice(&(position as u32).to_le_bytes());
                batch.put_cf(index_cf, receipt.tx_id, seal_record(&location));
            }
        }
        let metadata = snapshot.get_metadata();
        let height = staged.head.height;
        self.put_snapshot_head(&mut batch, staged, metadata)?;
        let old_height = self.head.height;
        let gaps_guard = self.db.lock_gaps();
        let mut gaps = block_gaps(&self.db)?;
        if old_height + 1 < height {
            gaps.push((old_height + 1, height - 1));
        }
        put_block_gaps(&self.db, &mut batch, &gaps);
        batch.delete_cf(self.db.cf(CF_META), KEY_INSTALLING);
        batch.delete_cf(self.db.cf(CF_META), KEY_STAGED);
        batch.delete_range_cf(
            self.db.cf(CF_STAGING),
            [0u8].as_slice(),
            [0xffu8; 64].as_slice(),
        );
        let hard_state = log.snapshot_changes(metadata, &mut batch)?;
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        self.db.rocks().write_opt(batch, &options)?;
        drop(gaps_guard);
        log.snapshot_installed(metadata, hard_state);
        self.cache.borrow_mut().clear();
        self.head = staged.head.clone();
        self.applied_index = metadata.index;
        tracing::info!(height, index = metadata.index, "snapshot installed");
        Ok(())
    }

    /// Replaces the whole state with the staged records, checking them once more against the
    /// commitment they were verified with.
    fn replace_state_with_staged(
        &self,
        batch: &mut WriteBatch,
        staged: &StagedSnapshot,
    ) -> Result<(), StorageError> {
        let state_cf = self.db.cf(CF_STATE);
        batch.delete_range_cf(state_cf, [0u8].as_slice(), [0xffu8; 64].as_slice());
        let staging_cf = self.db.cf(CF_STAGING);
        let mut commitment = tpw_contracts::state::Commitment::default();
        for item in self
            .db
            .rocks()
            .iterator_cf(staging_cf, rocksdb::IteratorMode::Start)
        {
            let (key, value) = item?;
            commitment.insert(&key, open_record(&value, "staged state")?);
            batch.put_cf(state_cf, key, value);
        }
        if commitment != staged.head.commitment {
            return Err(StorageError::Corrupt(
                "the staged records no longer match the snapshot's state root".into(),
            ));
        }
        Ok(())
    }

    /// The snapshot's head block, the head with the snapshot's Raft index, that block's Raft
    /// position, and the configuration in force there.
    fn put_snapshot_head(
        &self,
        batch: &mut WriteBatch,
        staged: &StagedSnapshot,
        metadata: &tpw_consensus::raft_types::SnapshotMetadata,
    ) -> Result<(), StorageError> {
        let height = staged.head.height;
        batch.put_cf(
            self.db.cf(CF_BLOCKS),
            height.to_be_bytes(),
            seal_record(&staged.block),
        );
        batch.put_cf(
            self.db.cf(CF_META),
            KEY_HEAD,
            seal_record(&encode_head(&staged.head, metadata.index)),
        );
        let position = LogPosition {
            index: metadata.index,
            term: metadata.term,
        };
        batch.put_cf(
            self.db.cf(CF_META),
            block_position_key(height),
            seal_record(&position_bytes(position)),
        );
        put_conf_history(&self.db, batch, metadata.index, metadata.get_conf_state())
    }

    /// Records an applied configuration change: the new configuration and the applied index
    /// in one write, so a restart neither loses nor repeats it.
    pub fn record_conf_change(
        &mut self,
        raft_index: u64,
        log: &crate::storage::RaftLogStore,
        conf_state: tpw_consensus::raft_types::ConfState,
    ) -> Result<(), StorageError> {
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(
            self.db.cf(CF_META),
            KEY_HEAD,
            seal_record(&encode_head(&self.head, raft_index)),
        );
        log.conf_state_change(&conf_state, &mut batch)?;
        put_conf_history(&self.db, &mut batch, raft_index, &conf_state)?;
        self.db.rocks().write(batch)?;
        log.conf_state_changed(conf_state);
        self.applied_index = raft_index;
        Ok(())
    }

    /// Resets the Raft state of a folder rebuilt by replaying blocks (`tpw restore
    /// --to-height`, `tpw restore --archive`) to "applied up to `position`, nothing voted":
    /// the configuration changes up to there are recorded, the last one in force, and the log
    /// starts after `position`. Written with one synced batch.
    pub fn reset_raft_after_replay(
        &mut self,
        log: &RaftLogStore,
        position: LogPosition,
        history: &[(u64, tpw_consensus::raft_types::ConfState)],
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        if self.applied_index != position.index {
            return Err(StorageError::Corrupt(format!(
                "the replayed ledger is applied to Raft index {}, not {}",
                self.applied_index, position.index
            )));
        }
        for (index, conf_state) in history {
            put_conf_history(&self.db, batch, *index, conf_state)?;
        }
        if let Some((_, conf_state)) = history.last() {
            log.conf_state_change(conf_state, batch)?;
            log.conf_state_changed(conf_state.clone());
        }
        log.restored_state_changes(position.index, position.term, batch)
    }

    /// Records the configuration in force at the applied index as the start of the
    /// configuration history, if the history is empty (a new folder, or one written before
    /// the history was kept): a restore to a height before it is refused.
    pub fn ensure_conf_history(&self, log: &RaftLogStore) -> Result<(), StorageError> {
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(b"cd".to_vec());
        let recorded = self
            .db
            .rocks()
            .iterator_cf_opt(
                self.db.cf(CF_META),
                options,
                rocksdb::IteratorMode::From(CONF_HISTORY_PREFIX, rocksdb::Direction::Forward),
            )
            .next()
            .is_some();
        if recorded {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        put_conf_history(&self.db, &mut batch, self.applied_index, &log.conf_state())?;
        Ok(self.db.rocks().write(batch)?)
    }

    /// The Raft index of the block that last rotated this node's own key, if one did.
    pub fn own_rekey_index(&self) -> Result<Option<u64>, StorageError> {
        match self.db.rocks().get_cf(self.db.cf(CF_META), KEY_OWN_REKEY)? {
            None => Ok(None),
            Some(sealed) => <[u8; 8]>::try_from(open_record(&sealed, "meta")?)
                .map(|index| Some(u64::from_be_bytes(index)))
                .map_err(|_| {
                    StorageError::Corrupt("the own-key rotation record has the wrong size".into())
                }),
        }
    }

    /// Records that the block at Raft index `index` rotated this node's own key, or (none)
    /// that every member has replicated that rotation.
    pub fn record_own_rekey(&self, index: Option<u64>) -> Result<(), StorageError> {
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        let meta = self.db.cf(CF_META);
        match index {
            Some(index) => self.db.rocks().put_cf_opt(
                meta,
                KEY_OWN_REKEY,
                seal_record(&index.to_be_bytes()),
                &options,
            )?,
            None => self
                .db
                .rocks()
                .delete_cf_opt(meta, KEY_OWN_REKEY, &options)?,
        }
        Ok(())
    }

    /// Records that a Raft entry without a block (a leader's no-op) was applied.
    pub fn skip_entry(&mut self, raft_index: u64) -> Result<(), StorageError> {
        self.db.rocks().put_cf(
            self.db.cf(CF_META),
            KEY_HEAD,
            seal_record(&encode_head(&self.head, raft_index)),
        )?;
        self.applied_index = raft_index;
        Ok(())
    }
}

fn ledger_error(error: StorageError) -> tpw_consensus::LedgerStoreError {
    match error {
        StorageError::Unusable(message) => tpw_consensus::LedgerStoreError::Unusable(message),
        other => tpw_consensus::LedgerStoreError::Failed(other.to_string()),
    }
}

/// The engine writes through the inherent methods above; each is one atomic RocksDB batch.
impl tpw_consensus::ReplicaLedger<RaftLogStore> for LedgerStore {
    fn head(&self) -> &ChainHead {
        LedgerStore::head(self)
    }

    fn applied_index(&self) -> u64 {
        LedgerStore::applied_index(self)
    }

    fn header_hash(&self, height: u64) -> Result<Option<Hash>, tpw_consensus::LedgerStoreError> {
        LedgerStore::header_hash(self, height).map_err(ledger_error)
    }

    fn commit_block(
        &mut self,
        position: LogPosition,
        proposal_bytes: &[u8],
        outcome: &BlockOutcome,
        webhooks: &[tpw_contracts::block::WebhookProgress],
    ) -> Result<(), tpw_consensus::LedgerStoreError> {
        LedgerStore::commit_block(self, Some(position), proposal_bytes, outcome, webhooks)
            .map_err(ledger_error)
    }

    fn skip_entry(&mut self, index: u64) -> Result<(), tpw_consensus::LedgerStoreError> {
        LedgerStore::skip_entry(self, index).map_err(ledger_error)
    }

    fn record_conf_change(
        &mut self,
        index: u64,
        log: &RaftLogStore,
        conf_state: &tpw_consensus::raft_types::ConfState,
    ) -> Result<(), tpw_consensus::LedgerStoreError> {
        LedgerStore::record_conf_change(self, index, log, conf_state.clone()).map_err(ledger_error)
    }

    fn install_snapshot(
        &mut self,
        log: &RaftLogStore,
        snapshot: &Snapshot,
    ) -> Result<(), tpw_consensus::LedgerStoreError> {
        LedgerStore::install_snapshot(self, log, snapshot).map_err(ledger_error)
    }

    fn own_rekey_index(&self) -> Result<Option<u64>, tpw_consensus::LedgerStoreError> {
        LedgerStore::own_rekey_index(self).map_err(ledger_error)
    }

    fn record_own_rekey(
        &mut self,
        index: Option<u64>,
    ) -> Result<(), tpw_consensus::LedgerStoreError> {
        LedgerStore::record_own_rekey(self, index).map_err(ledger_error)
    }
}

impl StateStore for LedgerStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let cacheable = cached_kind(key);
        if cacheable {
            if let Some(value) = self.cache.borrow().get(key) {
                return Ok(value.clone());
            }
        }
        let value = match self.db.rocks().get_pinned_cf(self.db.cf(CF_STATE), key) {
            Ok(None) => None,
            Ok(Some(bytes)) => Some(
                open_record(&bytes, "state")
                    .map_err(|error| StoreError(error.to_string()))?
                    .to_vec(),
            ),
            Err(error) => return Err(StoreError(error.to_string())),
        };
        if cacheable {
            self.cache.borrow_mut().insert(key.to_vec(), value.clone());
        }
        Ok(value)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<tpw_contracts::state::Records, StoreError> {
        scan_state(&self.db, start, end, limit).map_err(|error| StoreError(error.to_string()))
    }
}

/// Adds to `batch` the configuration in force from Raft index `index` on.
pub(super) fn put_conf_history(
    db: &Db,
    batch: &mut WriteBatch,
    index: u64,
    conf_state: &tpw_consensus::raft_types::ConfState,
) -> Result<(), StorageError> {
    let bytes = conf_state
        .write_to_bytes()
        .map_err(|error| StorageError::Corrupt(format!("configuration encode: {error}")))?;
    batch.put_cf(db.cf(CF_META), conf_history_key(index), seal_record(&bytes));
    Ok(())
}

/// The state records in `start..end`, at most `limit`, in key order, each checked.
fn scan_state(
    db: &Db,
    start: &[u8],
    end: &[u8],
    limit: usize,
) -> Result<tpw_contracts::state::Records, StorageError> {
    let mut options = ReadOptions::default();
    options.set_iterate_upper_bound(end.to_vec());
    let iterator = db.rocks().iterator_cf_opt(
        db.cf(CF_STATE),
        options,
        rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward),
    );
    let mut records = Vec::new();
    for item in iterator.take(limit) {
        let (key, sealed) = item?;
        records.push((key.to_vec(), open_record(&sealed, "state")?.to_vec()));
    }
    Ok(records)
}

/// Read access for the API, from consistent snapshots.
#[derive(Clone)]
pub struct LedgerReader {
    db: Db,
}

impl LedgerReader {
    /// A reader over the node's database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    fn read_head(
        &self,
        snapshot: &rocksdb::Snapshot<'_>,
    ) -> Result<(ChainHead, u64), StorageError> {
        match snapshot.get_cf(self.db.cf(CF_META), KEY_HEAD)? {
            Some(bytes) => decode_head(&bytes),
            None => Err(StorageError::Corrupt("the chain head is missing".into())),
        }
    }

    /// The chain head and applied Raft index.
    pub fn head(&self) -> Result<(ChainHead, u64), StorageError> {
        self.read_head(&self.db.rocks().snapshot())
    }

    /// A state record from a snapshot, decoded.
    fn snapshot_record<T>(
        &self,
        snapshot: &rocksdb::Snapshot<'_>,
        key: &[u8],
        decode: impl FnOnce(&mut Reader<'_>) -> Result<T, tpw_contracts::codec::DecodeError>,
    ) -> Result<Option<T>, StorageError> {
        let Some(bytes) = snapshot.get_cf(self.db.cf(CF_STATE), key)? else {
            return Ok(None);
        };
        let payload = open_record(&bytes, "state")?;
        from_bytes(payload, decode)
            .map(Some)
            .map_err(|error| StorageError::Corrupt(format!("state record: {error}")))
    }

    /// An account, the height the read reflects, and the regulator's hold on it if any (both
    /// from one consistent snapshot).
    #[allow(clippy::type_complexity)]
    pub fn account(
        &self,
        id: u128,
    ) -> Result<Option<(Account, u64, Option<HoldRecord>)>, StorageError> {
        let snapshot = self.db.rocks().snapshot();
        let (head, _) = self.read_head(&snapshot)?;
        let Some(account) = self.snapshot_record(&snapshot, &account_key(id), Account::decode)?
        else {
            return Ok(None);
        };
        let hold = self.snapshot_record(
            &snapshot,
            &tpw_contracts::state::hold_key(id),
            HoldRecord::decode,
        )?;
        Ok(Some((account, head.height, hold)))
    }

    /// A netting cycle, its members, and the height the read reflects.
    #[allow(clippy::type_complexity)]
    pub fn cycle(
        &self,
        id: u128,
    ) -> Result<Option<(tpw_contracts::netting::CycleRecord, Vec<u64>, u64)>, StorageError> {
        use tpw_contracts::netting::{member_key, CycleRecord};
        let snapshot = self.db.rocks().snapshot();
        let (head, _) = self.read_head(&snapshot)?;
        let Some(cycle) = self.snapshot_record(
            &snapshot,
            &tpw_contracts::netting::cycle_key(id),
            CycleRecord::decode,
        )?
        else {
            return Ok(None);
        };
        let start = member_key(id, 0);
        let mut options = ReadOptions::default();
        let mut end = member_key(id, u64::MAX);
        end.push(0);
        options.set_iterate_upper_bound(end);
        let iterator = snapshot.iterator_cf_opt(
            self.db.cf(CF_STATE),
            options,
            rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
        );
        let mut members = Vec::with_capacity(usize::from(cycle.members));
        for item in iterator.take(usize::from(cycle.members)) {
            let (key, _) = item?;
            let member = key
                .get(17..25)
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StorageError::Corrupt("a cycle member key is malformed".into()))?;
            members.push(member);
        }
        Ok(Some((cycle, members, head.height)))
    }

    /// The bilateral credit limit a creditor grants a debtor in an asset (`None`: no limit) and
    /// the height the read reflects.
    pub fn credit_limit(
        &self,
        creditor: u64,
        debtor: u64,
        asset: u32,
    ) -> Result<(Option<u128>, u64), StorageError> {
        let snapshot = self.db.rocks().snapshot();
        let (head, _) = self.read_head(&snapshot)?;
        let limit = self.snapshot_record(
            &snapshot,
            &tpw_contracts::limits_rules::credit_limit_key(creditor, debtor, asset),
            |reader| reader.u128("credit_limit.limit"),
        )?;
        Ok((limit, head.height))
    }

    /// A transfer record with what hangs on it, from one consistent snapshot.
    pub fn transfer(&self, owner: u64, id: u128) -> Result<Option<TransferDetails>, StorageError> {
        let snapshot = self.db.rocks().snapshot();
        let (head, _) = self.read_head(&snapshot)?;
        let Some(record) =
            self.snapshot_record(&snapshot, &transfer_key(owner, id), TransferRecord::decode)?
        else {
            return Ok(None);
        };
        let escrow = self.snapshot_record(
            &snapshot,
            &tpw_contracts::state::escrow_key(owner, id),
            EscrowRecord::decode,
        )?;
        let reversal = self.snapshot_record(
            &snapshot,
            &tpw_contracts::reversal::reversal_key(owner, id),
            tpw_contracts::reversal::ReversalRecord::decode,
        )?;
        let exchange = self.snapshot_record(
            &snapshot,
            &tpw_contracts::state::exchange_key(owner, id),
            tpw_contracts::exchange::ExchangeRecord::decode,
        )?;
        let awaiting_approval = snapshot
            .get_cf(
                self.db.cf(CF_STATE),
                tpw_contracts::approval::awaiting_key(owner, id),
            )?
            .is_some();
        Ok(Some(TransferDetails {
            record,
            height: head.height,
            escrow,
            reversal,
            exchange,
            awaiting_approval,
        }))
    }

    /// An asset's per-transfer maximum and a participant's outflow cap in it, from one
    /// consistent snapshot.
    pub fn limits(&self, participant: u64, asset: u32) -> Result<LimitsDetails, StorageError> {
        use tpw_contracts::limits_rules::{outflow_cap_key, transfer_max_key, OutflowCap};
        let snapshot = self.db.rocks().snapshot();
        let (head, _) = self.read_head(&snapshot)?;
        let transfer_max = self.snapshot_record(&snapshot, &transfer_max_key(asset), |reader| {
            reader.u128("transfer_max.amount_max")
        })?;
        let outflow_cap = self.snapshot_record(
            &snapshot,
            &outflow_cap_key(participant, asset),
            OutflowCap::decode,
        )?;
        Ok(LimitsDetails {
            height: head.height,
            time_ms: head.time_ms,
            transfer_max,
            outflow_cap,
        })
    }

    /// An asset with its supply record, both at the head (none if no such asset).
    pub fn asset(&self, id: u32) -> Result<Option<AssetDetails>, StorageError> {
        use tpw_contracts::issuance::{supply_key, SupplyRecord};
        use tpw_contracts::model::Asset;
        let snapshot = self.db.rocks().snapshot();
        let (head, _) = self.read_head(&snapshot)?;
        let asset_key = tpw_contracts::state::asset_key(id);
        let Some(asset) = self.snapshot_record(&snapshot, &asset_key, Asset::decode)? else {
            return Ok(None);
        };
        let supply = self
            .snapshot_record(&snapshot, &supply_key(id), SupplyRecord::decode)?
            .ok_or_else(|| StorageError::Corrupt(format!("asset {id} has no supply record")))?;
        Ok(Some(AssetDetails {
            height: head.height,
            asset,
            supply,
        }))
    }

    /// A participant's current record.
    pub fn participant(
        &self,
        id: u64,
    ) -> Result<Option<tpw_contracts::model::Participant>, StorageError> {
        self.state_now(&tpw_contracts::state::participant_key(id))?
            .map(|bytes| {
                from_bytes(&bytes, tpw_contracts::model::Participant::decode)
                    .map_err(|error| StorageError::Corrupt(format!("participant record: {error}")))
            })
            .transpose()
    }

    /// The participant a public key is registered to, with its record.
    pub fn participant_by_key(
        &self,
        key: &[u8; 32],
    ) -> Result<Option<tpw_contracts::model::Participant>, StorageError> {
        let Some(bytes) = self.state_now(&tpw_contracts::state::signer_key(key))? else {
            return Ok(None);
        };
        let record = from_bytes(&bytes, tpw_contracts::state::SignerRecord::decode)
            .map_err(|error| StorageError::Corrupt(format!("key record: {error}")))?;
        // A key rotated out signs until its overlap ends by the head's block time.
        if record.retire_at_ms.is_some() && !record.signs_at(self.head()?.0.time_ms) {
            return Ok(None);
        }
        self.participant(record.participant)
    }

    /// The participant a key was ever registered to (also after it was rotated out or revoked):
    /// who signed a past transaction.
    pub fn key_owner(
        &self,
        key: &[u8; 32],
    ) -> Result<Option<tpw_contracts::model::Participant>, StorageError> {
        let Some(bytes) = self.state_now(&tpw_contracts::state::key_owner_key(key))? else {
            return Ok(None);
        };
        let id = <[u8; 8]>::try_from(bytes.as_slice())
            .map(u64::from_le_bytes)
            .map_err(|_| {
                StorageError::Corrupt("key owner record is not a participant id".into())
            })?;
        self.participant(id)
    }

    /// The state records in `start..end`, at most `limit`, in key order.
    pub fn state_range(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<tpw_contracts::state::Records, StorageError> {
        scan_state(&self.db, start, end, limit)
    }

    /// Every registered webhook endpoint: (participant, endpoint, registered at height, URL).
    pub fn webhook_endpoints(&self) -> Result<Vec<(u64, u16, u64, String)>, StorageError> {
        let start = [tpw_contracts::state::prefix::WEBHOOK];
        let end = [tpw_contracts::state::prefix::WEBHOOK + 1];
        let mut endpoints = Vec::new();
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(end.to_vec());
        let iterator = self.db.rocks().iterator_cf_opt(
            self.db.cf(CF_STATE),
            options,
            rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
        );
        for item in iterator {
            let (key, sealed) = item?;
            let value = open_record(&sealed, "state")?;
            let corrupt = || StorageError::Corrupt("webhook record".into());
            let participant = key
                .get(1..9)
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(corrupt)?;
            let endpoint = key
                .get(9..11)
                .and_then(|bytes| <[u8; 2]>::try_from(bytes).ok())
                .map(u16::from_be_bytes)
                .ok_or_else(corrupt)?;
            let height = value
                .get(..8)
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(corrupt)?;
            let url = String::from_utf8(value[8..].to_vec()).map_err(|_| corrupt())?;
            endpoints.push((participant, endpoint, height, url));
        }
        Ok(endpoints)
    }

    /// The database, for the webhook progress records.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The owner of an account (accounts never change owner).
    pub fn account_owner(&self, id: u128) -> Result<Option<u64>, StorageError> {
        self.state_now(&account_key(id))?
            .map(|bytes| {
                from_bytes(&bytes, Account::decode)
                    .map(|account| account.owner)
                    .map_err(|error| StorageError::Corrupt(format!("account record: {error}")))
            })
            .transpose()
    }

    /// A transfer record as it stands now.
    pub fn transfer_record(
        &self,
        owner: u64,
        id: u128,
    ) -> Result<Option<TransferRecord>, StorageError> {
        self.state_now(&transfer_key(owner, id))?
            .map(|bytes| {
                from_bytes(&bytes, TransferRecord::decode)
                    .map_err(|error| StorageError::Corrupt(format!("transfer record: {error}")))
            })
            .transpose()
    }

    /// The current value of a state record, without a snapshot (admission checks).
    pub fn state_now(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match self.db.rocks().get_pinned_cf(self.db.cf(CF_STATE), key)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(open_record(&bytes, "state")?.to_vec())),
        }
    }

    /// Where a transaction landed, if committed.
    pub fn tx_location(&self, tx_id: &Hash) -> Result<Option<TxLocation>, StorageError> {
        let Some(bytes) = self.db.rocks().get_pinned_cf(self.db.cf(CF_INDEX), tx_id)? else {
            return Ok(None);
        };
        let payload = open_record(&bytes, "tx index")?;
        if payload.len() != 12 {
            return Err(StorageError::Corrupt(
                "tx index record has the wrong size".into(),
            ));
        }
        Ok(Some(TxLocation {
            height: u64::from_le_bytes(payload[..8].try_into().expect("8 bytes")),
            position: u32::from_le_bytes(payload[8..].try_into().expect("4 bytes")),
        }))
    }

    /// The Raft position at which the ledger reached `height`; none for a block this node
    /// backfilled (or applied before positions were recorded).
    pub fn block_position(&self, height: u64) -> Result<Option<LogPosition>, StorageError> {
        self.db
            .rocks()
            .get_cf(self.db.cf(CF_META), block_position_key(height))?
            .map(|sealed| position_from_record(&sealed))
            .transpose()
    }

    /// Every recorded configuration change in Raft index order: (index, configuration).
    pub fn conf_history(
        &self,
    ) -> Result<Vec<(u64, tpw_consensus::raft_types::ConfState)>, StorageError> {
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(b"cd".to_vec());
        let iterator = self.db.rocks().iterator_cf_opt(
            self.db.cf(CF_META),
            options,
            rocksdb::IteratorMode::From(CONF_HISTORY_PREFIX, rocksdb::Direction::Forward),
        );
        let mut history = Vec::new();
        for item in iterator {
            let (key, sealed) = item?;
            let index = <[u8; 8]>::try_from(&key[CONF_HISTORY_PREFIX.len()..]).map_err(|_| {
                StorageError::Corrupt("a configuration key has the wrong size".into())
            })?;
            let conf_state = tpw_consensus::raft_types::ConfState::parse_from_bytes(open_record(
                &sealed,
                "configuration",
            )?)
            .map_err(|error| StorageError::Corrupt(format!("configuration: {error}")))?;
            history.push((u64::from_be_bytes(index), conf_state));
        }
        Ok(history)
    }

    /// A block by height.
    pub fn block(&self, height: u64) -> Result<Option<StoredBlock>, StorageError> {
        match self
            .db
            .rocks()
            .get_cf(self.db.cf(CF_BLOCKS), height.to_be_bytes())?
        {
            None => Ok(None),
            Some(bytes) => decode_block(&bytes).map(Some),
        }
    }
}
