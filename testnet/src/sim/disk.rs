//! A simulated node's disk: the engine's two stores ([`SimLog`] over raft-rs' in-memory log,
//! [`SimLedger`] over the engine's [`MemLedger`]) record every write they make, in order, as
//! RocksDB's write-ahead log would. Raft log writes, snapshot installs and own-key rotation
//! marks are synced, as the node syncs them; commit indexes, applied blocks, configuration
//! records and compaction are not. A crash keeps every write up to the last synced one and a
//! random prefix of the rest, and a restart replays what was kept into fresh stores, the way
//! the node reopens its database.

use super::rng::SimRng;
use super::Sabotage;
use crate::limits::SIM_OFFER_HOLD_MS;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use tpw_consensus::raft_types::{ConfState, Entry, HardState, Snapshot};
use tpw_consensus::replica::snapshot::SnapshotOffer;
use tpw_consensus::replica::StagedState;
use tpw_consensus::{
    GetEntriesContext, LedgerStoreError, LogPosition, LogStore, LogStoreError, MemLedger,
    MemLogStore, RaftState, ReplicaLedger, Storage,
};
use tpw_contracts::block::WebhookProgress;
use tpw_contracts::issuance::SupplyRecord;
use tpw_contracts::model::{account_flags, from_bytes, Account, Hash};
use tpw_contracts::state::{prefix, Records, StoreError};
use tpw_contracts::{BlockOutcome, ChainHead, GenesisState, StateStore};

/// One write, in the order the node makes them.
#[derive(Clone)]
enum Write {
    Log {
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
    },
    Commit(u64),
    Compact(u64),
    Block {
        position: LogPosition,
        proposal: Vec<u8>,
        outcome: Box<BlockOutcome>,
        webhooks: Vec<WebhookProgress>,
    },
    Skip(u64),
    Conf {
        index: u64,
        conf_state: ConfState,
    },
    Snapshot {
        snapshot: Box<Snapshot>,
        staged: Box<StagedState>,
    },
    Rekey(Option<u64>),
    Backfill {
        height: u64,
        record: Vec<u8>,
    },
}

/// The writes a node made, and how many of them are surely durable.
#[derive(Default)]
pub struct Disk {
    writes: Vec<Write>,
    durable: usize,
    unsynced_log: bool,
    forget_conf: bool,
    /// A node started on this disk before (the node's database exists): only a node's first
    /// start on an empty folder can be a joining one.
    pub started: bool,
}

/// A disk shared by a node's two stores.
pub type SharedDisk = Rc<RefCell<Disk>>;

impl Disk {
    /// A disk; with [`Sabotage::UnsyncedRaftLog`] Raft log writes are not synced.
    pub fn new(sabotage: Sabotage) -> SharedDisk {
        Rc::new(RefCell::new(Self {
            unsynced_log: sabotage == Sabotage::UnsyncedRaftLog,
            forget_conf: sabotage == Sabotage::ConfChangeLostAtRestart,
            ..Self::default()
        }))
    }

    fn write(&mut self, write: Write, synced: bool) {
        self.writes.push(write);
        if synced {
            self.durable = self.writes.len();
        }
    }

    /// A crash: keeps the durable writes and a random prefix of the rest. Returns how many
    /// writes were lost.
    pub fn crash(&mut self, rng: &mut SimRng) -> usize {
        let pending = (self.writes.len() - self.durable) as u64;
        let kept = self.durable + rng.below(pending + 1) as usize;
        let lost = self.writes.len() - kept;
        self.writes.truncate(kept);
        self.durable = kept;
        lost
    }

    /// Loses everything (a wiped data folder).
    pub fn wipe(&mut self) {
        self.writes.clear();
        self.durable = 0;
        self.started = false;
    }
}

/// Per-asset sums of posted and pending debits and credits over every account, what the
/// issuance account let out, and the supply record's outstanding amount.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct AssetSums {
    debits_posted: u128,
    credits_posted: u128,
    debits_pending: u128,
    credits_pending: u128,
    issuance_debits: u128,
    issuance_credits: u128,
    outstanding: u128,
}

impl AssetSums {
    // Sums wrap (exact modulo 2^128, which is all an equality check needs), so a ledger whose
    // records changed behind the sums (a sabotage) is reported, not a panic.
    fn add(&mut self, account: &Account) {
        self.debits_posted = self.debits_posted.wrapping_add(account.debits_posted);
        self.credits_posted = self.credits_posted.wrapping_add(account.credits_posted);
        self.debits_pending = self.debits_pending.wrapping_add(account.debits_pending);
        self.credits_pending = self.credits_pending.wrapping_add(account.credits_pending);
        if account.has(account_flags::ISSUANCE) {
            self.issuance_debits = self.issuance_debits.wrapping_add(account.debits_posted);
            self.issuance_credits = self.issuance_credits.wrapping_add(account.credits_posted);
        }
    }
    fn remove(&mut self, account: &Account) {
        self.debits_posted = self.debits_posted.wrapping_sub(account.debits_posted);
        self.credits_posted = self.credits_posted.wrapping_sub(account.credits_posted);
        self.debits_pending = self.debits_pending.wrapping_sub(account.debits_pending);
        self.credits_pending = self.credits_pending.wrapping_sub(account.credits_pending);
        if account.has(account_flags::ISSUANCE) {
            self.issuance_debits = self.issuance_debits.wrapping_sub(account.debits_posted);
            self.issuance_credits = self.issuance_credits.wrapping_sub(account.credits_posted);
        }
    }
    /// Debits equal credits, and money entered only by mint: the supply record is what the
    /// issuance account let out (so what every other account holds).
    fn conserved(&self) -> bool {
        self.debits_posted == self.credits_posted
            && self.debits_pending == self.credits_pending
            && self.issuance_debits.wrapping_sub(self.issuance_credits) == self.outstanding
    }
}

fn supply(key: &[u8], bytes: &[u8]) -> Result<(u32, u128), String> {
    let asset = tpw_contracts::supply::supply_asset(key).ok_or("malformed supply key")?;
    let record = from_bytes(bytes, SupplyRecord::decode)
        .map_err(|error| format!("supply record: {error}"))?;
    Ok((asset, record.outstanding))
}

fn account(bytes: &[u8]) -> Result<Account, String> {
    from_bytes(bytes, Account::decode).map_err(|error| format!("account record: {error}"))
}

/// The snapshot a live node offers, and whether raft asked for a newer one (the node's
/// snapshot maker thread, in simulation: the node makes the offer after its poll).
#[derive(Default)]
pub struct OfferSlot {
    /// The offer, its records, and when it was made.
    pub offer: Option<(SnapshotOffer, StagedState, u64)>,
    /// Raft asked for a snapshot the offer does not serve.
    pub wanted: bool,
    /// The node's time, for the hold.
    pub now_ms: u64,
}

/// A live node's offer slot, shared by its log store and its executor.
pub type SharedOffers = Rc<RefCell<OfferSlot>>;

/// The Raft log store of a simulated node.
#[derive(Clone)]
pub struct SimLog {
    inner: MemLogStore,
    disk: SharedDisk,
    offers: SharedOffers,
}

impl SimLog {
    fn new(voters: &[u64], learners: &[u64], disk: SharedDisk, offers: SharedOffers) -> Self {
        Self {
            inner: MemLogStore::new(voters.to_vec(), learners.to_vec()),
            disk,
            offers,
        }
    }

    /// The configuration raft restarts from.
    pub fn conf_state(&self) -> ConfState {
        self.inner
            .initial_state()
            .map(|state| state.conf_state)
            .unwrap_or_default()
    }
}

impl Storage for SimLog {
    fn initial_state(&self) -> Result<RaftState, tpw_consensus::RaftError> {
        self.inner.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> Result<Vec<Entry>, tpw_consensus::RaftError> {
        self.inner.entries(low, high, max_size, context)
    }
    fn term(&self, index: u64) -> Result<u64, tpw_consensus::RaftError> {
        self.inner.term(index)
    }
    fn first_index(&self) -> Result<u64, tpw_consensus::RaftError> {
        self.inner.first_index()
    }
    fn last_index(&self) -> Result<u64, tpw_consensus::RaftError> {
        self.inner.last_index()
    }
    fn snapshot(&self, request_index: u64, to: u64) -> Result<Snapshot, tpw_consensus::RaftError> {
        let compacted = self.compacted_index();
        let mut slot = self.offers.borrow_mut();
        match &slot.offer {
            Some((offer, _, _)) if offer.serves(request_index, compacted, to) => {
                Ok(offer.to_snapshot())
            }
            _ => {
                slot.wanted = true;
                Err(tpw_consensus::RaftError::Store(
                    tpw_consensus::StorageError::SnapshotTemporarilyUnavailable,
                ))
            }
        }
    }
}

impl LogStore for SimLog {
    fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<(), LogStoreError> {
        self.inner.persist(entries, hard_state)?;
        let mut disk = self.disk.borrow_mut();
        let synced = !disk.unsynced_log;
        disk.write(
            Write::Log {
                entries: entries.to_vec(),
                hard_state: hard_state.cloned(),
            },
            synced,
        );
        Ok(())
    }
    fn persist_commit(&self, commit: u64) -> Result<(), LogStoreError> {
        self.inner.persist_commit(commit)?;
        self.disk.borrow_mut().write(Write::Commit(commit), false);
        Ok(())
    }
    fn apply_snapshot(&self, snapshot: Snapshot) -> Result<(), LogStoreError> {
        // Only ever through the ledger's install, which records the whole install as one write.
        self.inner.apply_snapshot(snapshot)
    }
    fn set_conf_state(&self, conf_state: ConfState) -> Result<(), LogStoreError> {
        // Only ever through the ledger's configuration record, one write with it.
        self.inner.set_conf_state(conf_state)
    }
    fn compact(&self, to: u64) -> Result<(), LogStoreError> {
        self.inner.compact(to)?;
        self.disk.borrow_mut().write(Write::Compact(to), false);
        Ok(())
    }
    fn snapshot_hold(&self) -> Option<u64> {
        let slot = self.offers.borrow();
        let (offer, _, made_ms) = slot.offer.as_ref()?;
        (slot.now_ms.saturating_sub(*made_ms) < SIM_OFFER_HOLD_MS).then_some(offer.index)
    }
}

/// The ledger store of a simulated node, checking conservation after every block it writes.
pub struct SimLedger {
    inner: MemLedger,
    disk: SharedDisk,
    sums: BTreeMap<u32, AssetSums>,
    /// Conservation failures found, for the node to report.
    pub violations: Vec<String>,
    /// Raft indexes of this node's own key rotations recorded since last taken.
    pub rekeyed: Vec<u64>,
}

impl SimLedger {
    fn new(inner: MemLedger, disk: SharedDisk) -> Result<Self, String> {
        let mut ledger = Self {
            inner,
            disk,
            sums: BTreeMap::new(),
            violations: Vec::new(),
            rekeyed: Vec::new(),
        };
        ledger.recount()?;
        Ok(ledger)
    }

    /// The ledger.
    pub fn inner(&self) -> &MemLedger {
        &self.inner
    }

    fn recount(&mut self) -> Result<(), String> {
        self.sums.clear();
        for (key, value) in self.inner.state().records() {
            if key.first() == Some(&prefix::ACCOUNT) {
                let account = account(value)?;
                self.sums.entry(account.asset).or_default().add(&account);
            } else if key.first() == Some(&prefix::SUPPLY) {
                let (asset, outstanding) = supply(key, value)?;
                self.sums.entry(asset).or_default().outstanding = outstanding;
            }
        }
        Ok(())
    }

    /// Conservation: per asset, posted and pending debits equal credits after every block.
    fn check_conservation(&mut self, outcome: &BlockOutcome) -> Result<(), String> {
        let mut sums = self.sums.clone();
        for (key, value) in &outcome.diff {
            if key.first() == Some(&prefix::SUPPLY) {
                if let Some(value) = value {
                    let (asset, outstanding) = supply(key, value)?;
                    sums.entry(asset).or_default().outstanding = outstanding;
                }
                continue;
            }
            if key.first() != Some(&prefix::ACCOUNT) {
                continue;
            }
            if let Some(old) = self.inner.state().get(key).map_err(|error| error.0)? {
                let old = account(&old)?;
                sums.entry(old.asset).or_default().remove(&old);
            }
            if let Some(new) = value {
                let new = account(new)?;
                sums.entry(new.asset).or_default().add(&new);
            }
        }
        for (asset, sum) in &sums {
            if !sum.conserved() {
                self.violations.push(format!(
                    "asset {asset} not conserved after height {}: {sum:?}",
                    outcome.header.height
                ));
            }
        }
        self.sums = sums;
        Ok(())
    }

    /// Stages a verified snapshot for Raft to accept.
    pub fn stage(&mut self, staged: StagedState) {
        self.inner.stage(staged);
    }

    /// Releases the staged snapshot.
    pub fn release_staged(&mut self) {
        self.inner.release_staged();
    }

    /// Stores a block fetched from a peer into a gap below a snapshot.
    pub fn backfill(&mut self, height: u64, record: Vec<u8>) -> Result<bool, String> {
        let stored = self
            .inner
            .backfill(height, record.clone())
            .map_err(|error| error.to_string())?;
        if stored {
            self.disk
                .borrow_mut()
                .write(Write::Backfill { height, record }, false);
        }
        Ok(stored)
    }

    /// [`Sabotage::RestartAppliesATransferTwice`]: changes records behind the ledger's back.
    pub fn tamper(&mut self, diff: &tpw_contracts::StateDiff) {
        self.inner.tamper(diff);
    }
}

fn failed(error: impl std::fmt::Display) -> LedgerStoreError {
    LedgerStoreError::Failed(error.to_string())
}

impl StateStore for SimLedger {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Records, StoreError> {
        self.inner.scan(start, end, limit)
    }
}

impl ReplicaLedger<SimLog> for SimLedger {
    fn head(&self) -> &ChainHead {
        ReplicaLedger::<MemLogStore>::head(&self.inner)
    }
    fn applied_index(&self) -> u64 {
        ReplicaLedger::<MemLogStore>::applied_index(&self.inner)
    }
    fn header_hash(&self, height: u64) -> Result<Option<Hash>, LedgerStoreError> {
        ReplicaLedger::<MemLogStore>::header_hash(&self.inner, height)
    }
    fn commit_block(
        &mut self,
        position: LogPosition,
        proposal_bytes: &[u8],
        outcome: &BlockOutcome,
        webhooks: &[WebhookProgress],
    ) -> Result<(), LedgerStoreError> {
        self.check_conservation(outcome).map_err(failed)?;
        ReplicaLedger::<MemLogStore>::commit_block(
            &mut self.inner,
            position,
            proposal_bytes,
            outcome,
            webhooks,
        )?;
        self.disk.borrow_mut().write(
            Write::Block {
                position,
                proposal: proposal_bytes.to_vec(),
                outcome: Box::new(outcome.clone()),
                webhooks: webhooks.to_vec(),
            },
            false,
        );
        Ok(())
    }
    fn skip_entry(&mut self, index: u64) -> Result<(), LedgerStoreError> {
        ReplicaLedger::<MemLogStore>::skip_entry(&mut self.inner, index)?;
        self.disk.borrow_mut().write(Write::Skip(index), false);
        Ok(())
    }
    fn record_conf_change(
        &mut self,
        index: u64,
        log: &SimLog,
        conf_state: &ConfState,
    ) -> Result<(), LedgerStoreError> {
        self.inner
            .record_conf_change(index, &log.inner, conf_state)?;
        self.disk.borrow_mut().write(
            Write::Conf {
                index,
                conf_state: conf_state.clone(),
            },
            false,
        );
        Ok(())
    }
    fn install_snapshot(
        &mut self,
        log: &SimLog,
        snapshot: &Snapshot,
    ) -> Result<(), LedgerStoreError> {
        let staged = self.inner.staged().cloned();
        self.inner.install_snapshot(&log.inner, snapshot)?;
        let staged = staged.ok_or_else(|| failed("installed a snapshot that was not staged"))?;
        self.disk.borrow_mut().write(
            Write::Snapshot {
                snapshot: Box::new(snapshot.clone()),
                staged: Box::new(staged),
            },
            true,
        );
        self.recount().map_err(failed)
    }
    fn own_rekey_index(&self) -> Result<Option<u64>, LedgerStoreError> {
        ReplicaLedger::<MemLogStore>::own_rekey_index(&self.inner)
    }
    fn record_own_rekey(&mut self, index: Option<u64>) -> Result<(), LedgerStoreError> {
        ReplicaLedger::<MemLogStore>::record_own_rekey(&mut self.inner, index)?;
        self.disk.borrow_mut().write(Write::Rekey(index), true);
        self.rekeyed.extend(index);
        Ok(())
    }
}

/// Applies one write the disk kept to the reopened log store and ledger.
fn replay_write(
    inner: &MemLogStore,
    ledger: &mut MemLedger,
    write: Write,
    forget_conf: bool,
) -> Result<(), String> {
    let replay = |error: &dyn std::fmt::Display| format!("replay: {error}");
    match write {
        Write::Log {
            entries,
            hard_state,
        } => inner
            .persist(&entries, hard_state.as_ref())
            .map_err(|error| replay(&error))?,
        Write::Commit(commit) => inner
            .persist_commit(commit)
            .map_err(|error| replay(&error))?,
        Write::Compact(to) => inner.compact(to).map_err(|error| replay(&error))?,
        Write::Block {
            position,
            proposal,
            outcome,
            webhooks,
        } => ReplicaLedger::<MemLogStore>::commit_block(
            ledger, position, &proposal, &outcome, &webhooks,
        )
        .map_err(|error| replay(&error))?,
        Write::Skip(index) => ReplicaLedger::<MemLogStore>::skip_entry(ledger, index)
            .map_err(|error| replay(&error))?,
        Write::Conf { index, conf_state } => {
            // The planted bug: the ledger records the change, raft restarts without it.
            let raft = if forget_conf {
                &MemLogStore::default()
            } else {
                inner
            };
            ledger
                .record_conf_change(index, raft, &conf_state)
                .map_err(|error| replay(&error))?
        }
        Write::Snapshot { snapshot, staged } => {
            ledger.stage(*staged);
            ledger
                .install_snapshot(inner, &snapshot)
                .map_err(|error| replay(&error))?;
        }
        Write::Rekey(index) => ReplicaLedger::<MemLogStore>::record_own_rekey(ledger, index)
            .map_err(|error| replay(&error))?,
        Write::Backfill { height, record } => {
            ledger
                .backfill(height, record)
                .map_err(|error| replay(&error))?;
        }
    }
    Ok(())
}

/// Rebuilds a node's stores from what its disk kept, as the node reopens its database: the
/// ledger at its applied index, the Raft log and hard state as persisted, the commit raised to
/// the applied index if it was lost.
pub fn reopen(
    disk: &SharedDisk,
    genesis: &GenesisState,
    (voters, learners): (&[u64], &[u64]),
    offers: SharedOffers,
) -> Result<(SimLog, SimLedger), String> {
    let log = SimLog::new(voters, learners, Rc::clone(disk), offers);
    let mut ledger = MemLedger::genesis(genesis);
    let writes = disk.borrow().writes.clone();
    let forget_conf = disk.borrow().forget_conf;
    for write in writes {
        replay_write(&log.inner, &mut ledger, write, forget_conf)?;
    }
    let ledger = SimLedger::new(ledger, Rc::clone(disk))?;
    let applied = ReplicaLedger::<MemLogStore>::applied_index(&ledger.inner);
    let last_index = log.last_index().map_err(|error| error.to_string())?;
    if applied > last_index {
        return Err(format!(
            "ledger applied to {applied} beyond the Raft log's end {last_index}"
        ));
    }
    let commit = log
        .initial_state()
        .map_err(|error| error.to_string())?
        .hard_state
        .commit;
    if commit < applied {
        log.persist_commit(applied)
            .map_err(|error| error.to_string())?;
    }
    Ok((log, ledger))
}
