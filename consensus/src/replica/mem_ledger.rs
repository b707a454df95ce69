//! The in-memory ledger store: what the simulator's replicas apply to, and the reference the
//! node's RocksDB store is checked against (node/tests/ledger_store.rs). It keeps what the
//! node keeps: state, block records by height, the transaction index, the head and applied
//! index, the configuration history, the own-key rotation mark, webhook progress, and the
//! gaps a snapshot leaves below it.

use super::{LedgerStoreError, LogPosition, ReplicaLedger};
use crate::log_store::LogStore;
use raft::prelude::{ConfState, Snapshot};
use std::collections::BTreeMap;
use tpw_contracts::block::WebhookProgress;
use tpw_contracts::model::Hash;
use tpw_contracts::state::{Commitment, Records, StoreError};
use tpw_contracts::{
    encode_block_record, BlockOutcome, BlockRecord, ChainHead, GenesisState, MemStore, Proposal,
    ResultCode, StateStore,
};

/// A verified snapshot waiting for Raft to accept it: its records and head, staged apart from
/// the live state.
#[derive(Debug, Clone)]
pub struct StagedState {
    /// The descriptor the Raft snapshot message carries.
    pub descriptor: Vec<u8>,
    /// The snapshot's Raft index.
    pub applied_index: u64,
    /// Every state record, in key order.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    /// The head at the snapshot.
    pub head: ChainHead,
    /// The head block's record.
    pub block: Vec<u8>,
}

/// Where a committed transaction landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxPlace {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub position: u32,
    /// Its result.
    pub code: ResultCode,
}

/// The ledger in memory.
#[derive(Debug, Clone)]
pub struct MemLedger {
    state: MemStore,
    head: ChainHead,
    applied_index: u64,
    blocks: BTreeMap<u64, Vec<u8>>,
    hashes: BTreeMap<u64, Hash>,
    positions: BTreeMap<u64, LogPosition>,
    transactions: BTreeMap<Hash, TxPlace>,
    conf_history: BTreeMap<u64, ConfState>,
    own_rekey: Option<u64>,
    webhooks: BTreeMap<(u64, u16), WebhookProgress>,
    gaps: Vec<(u64, u64)>,
    staged: Option<StagedState>,
}

impl MemLedger {
    /// A ledger at genesis.
    pub fn genesis(genesis: &GenesisState) -> Self {
        let mut state = MemStore::default();
        state.apply_diff(&genesis.diff);
        let block = encode_block_record(&genesis.header, &Proposal::default().to_bytes(), &[], &[]);
        Self {
            state,
            head: genesis.head.clone(),
            applied_index: 0,
            blocks: BTreeMap::from([(0, block)]),
            hashes: BTreeMap::from([(0, genesis.head.hash)]),
            positions: BTreeMap::new(),
            transactions: BTreeMap::new(),
            conf_history: BTreeMap::new(),
            own_rekey: None,
            webhooks: BTreeMap::new(),
            gaps: Vec::new(),
            staged: None,
        }
    }

    /// The state records.
    pub fn state(&self) -> &MemStore {
        &self.state
    }

    /// Where a committed transaction landed, if this ledger holds its block.
    pub fn transaction(&self, tx_id: &Hash) -> Option<TxPlace> {
        self.transactions.get(tx_id).copied()
    }

    /// A stored block record.
    pub fn block(&self, height: u64) -> Option<&[u8]> {
        self.blocks.get(&height).map(Vec::as_slice)
    }

    /// Header hashes by height, of the blocks held (gaps excluded).
    pub fn hashes(&self) -> &BTreeMap<u64, Hash> {
        &self.hashes
    }

    /// The Raft position a block was applied at.
    pub fn block_position(&self, height: u64) -> Option<LogPosition> {
        self.positions.get(&height).copied()
    }

    /// The configuration history: each change's Raft index and the configuration after it.
    pub fn conf_history(&self) -> &BTreeMap<u64, ConfState> {
        &self.conf_history
    }

    /// Webhook progress as replicated.
    pub fn webhooks(&self) -> &BTreeMap<(u64, u16), WebhookProgress> {
        &self.webhooks
    }

    /// Height ranges of blocks below a snapshot not held yet.
    pub fn gaps(&self) -> &[(u64, u64)] {
        &self.gaps
    }

    /// Stages a verified snapshot for Raft to accept (replacing any staged before).
    pub fn stage(&mut self, staged: StagedState) {
        self.staged = Some(staged);
    }

    /// Drops the staged snapshot.
    pub fn release_staged(&mut self) {
        self.staged = None;
    }

    /// The staged snapshot, if any.
    pub fn staged(&self) -> Option<&StagedState> {
        self.staged.as_ref()
    }

    /// Changes records behind the engine's back: only for the simulator's planted bugs, which
    /// show that its checkers catch a ledger that counts something twice.
    pub fn tamper(&mut self, diff: &tpw_contracts::StateDiff) {
        self.state.apply_diff(diff);
    }

    /// The staged snapshot's Raft index.
    pub fn staged_index(&self) -> Option<u64> {
        self.staged.as_ref().map(|staged| staged.applied_index)
    }

    /// Stores a block fetched from a peer into a gap (its chain was checked by the caller):
    /// returns false when no gap holds that height.
    pub fn backfill(&mut self, height: u64, record: Vec<u8>) -> Result<bool, LedgerStoreError> {
        let Some(slot) = self
            .gaps
            .iter()
            .position(|(low, high)| (*low..=*high).contains(&height))
        else {
            return Ok(false);
        };
        let block = BlockRecord::from_bytes(&record)
            .map_err(|error| LedgerStoreError::Failed(format!("backfilled block: {error}")))?;
        for (position, receipt) in block.receipts.iter().enumerate() {
            self.transactions.entry(receipt.tx_id).or_insert(TxPlace {
                height,
                position: position as u32,
                code: receipt.code,
            });
        }
        self.hashes.insert(height, block.header.hash());
        self.blocks.insert(height, record);
        let (low, high) = self.gaps.remove(slot);
        if low < height {
            self.gaps.push((low, height - 1));
        }
        if height < high {
            self.gaps.push((height + 1, high));
        }
        self.gaps.sort_unstable();
        Ok(true)
    }

    fn index_receipts(&mut self, height: u64, receipts: &[tpw_contracts::Receipt]) {
        for (position, receipt) in receipts.iter().enumerate() {
            self.transactions.entry(receipt.tx_id).or_insert(TxPlace {
                height,
                position: position as u32,
                code: receipt.code,
            });
        }
    }
}

impl StateStore for MemLedger {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.state.get(key)
    }
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Records, StoreError> {
        self.state.scan(start, end, limit)
    }
}

impl<L: LogStore> ReplicaLedger<L> for MemLedger {
    fn head(&self) -> &ChainHead {
        &self.head
    }

    fn applied_index(&self) -> u64 {
        self.applied_index
    }

    fn header_hash(&self, height: u64) -> Result<Option<Hash>, LedgerStoreError> {
        Ok(self.hashes.get(&height).copied())
    }

    fn commit_block(
        &mut self,
        position: LogPosition,
        proposal_bytes: &[u8],
        outcome: &BlockOutcome,
        webhooks: &[WebhookProgress],
    ) -> Result<(), LedgerStoreError> {
        assert_eq!(
            outcome.header.height,
            self.head.height + 1,
            "blocks apply in height order"
        );
        let height = outcome.header.height;
        self.state.apply_diff(&outcome.diff);
        self.blocks.insert(
            height,
            encode_block_record(
                &outcome.header,
                proposal_bytes,
                &outcome.receipts,
                &outcome.effects,
            ),
        );
        self.hashes.insert(height, outcome.head.hash);
        self.positions.insert(height, position);
        self.index_receipts(height, &outcome.receipts);
        for progress in webhooks {
            self.webhooks
                .insert((progress.participant, progress.endpoint), progress.clone());
        }
        self.head = outcome.head.clone();
        self.applied_index = position.index;
        Ok(())
    }

    fn skip_entry(&mut self, index: u64) -> Result<(), LedgerStoreError> {
        self.applied_index = index;
        Ok(())
    }

    fn record_conf_change(
        &mut self,
        index: u64,
        log: &L,
        conf_state: &ConfState,
    ) -> Result<(), LedgerStoreError> {
        log.set_conf_state(conf_state.clone())
            .map_err(|error| LedgerStoreError::Failed(error.to_string()))?;
        self.conf_history.insert(index, conf_state.clone());
        self.applied_index = index;
        Ok(())
    }

    fn install_snapshot(&mut self, log: &L, snapshot: &Snapshot) -> Result<(), LedgerStoreError> {
        let metadata = snapshot.get_metadata();
        let Some(staged) = self.staged.take() else {
            return Err(LedgerStoreError::Failed(
                "Raft accepted a snapshot that was never staged".into(),
            ));
        };
        if staged.descriptor != snapshot.get_data() || staged.applied_index != metadata.index {
            return Err(LedgerStoreError::Failed(
                "Raft accepted another snapshot than the one staged".into(),
            ));
        }
        let mut commitment = Commitment::default();
        let mut state = MemStore::default();
        let mut diff = tpw_contracts::StateDiff::new();
        for (key, value) in &staged.records {
            commitment.insert(key, value);
            diff.insert(key.clone(), Some(value.clone()));
        }
        if commitment != staged.head.commitment {
            return Err(LedgerStoreError::Failed(
                "the staged records do not match the snapshot's state root".into(),
            ));
        }
        state.apply_diff(&diff);
        let block = BlockRecord::from_bytes(&staged.block)
            .map_err(|error| LedgerStoreError::Failed(format!("staged head block: {error}")))?;
        let height = staged.head.height;
        let old_height = self.head.height;
        if old_height + 1 < height {
            self.gaps.push((old_height + 1, height - 1));
        }
        self.index_receipts(height, &block.receipts);
        self.hashes.insert(height, staged.head.hash);
        self.blocks.insert(height, staged.block);
        self.positions.insert(
            height,
            LogPosition {
                index: metadata.index,
                term: metadata.term,
            },
        );
        self.conf_history
            .insert(metadata.index, metadata.get_conf_state().clone());
        log.apply_snapshot(snapshot.clone())
            .map_err(|error| LedgerStoreError::Failed(error.to_string()))?;
        self.state = state;
        self.head = staged.head;
        self.applied_index = metadata.index;
        Ok(())
    }

    fn own_rekey_index(&self) -> Result<Option<u64>, LedgerStoreError> {
        Ok(self.own_rekey)
    }

    fn record_own_rekey(&mut self, index: Option<u64>) -> Result<(), LedgerStoreError> {
        self.own_rekey = index;
        Ok(())
    }
}
