//! One simulated node: the real Raft driver and the real ledger engine over a modelled disk.
//!
//! The disk keeps what the node writes in order, as RocksDB's write-ahead log does. Raft log
//! writes are synced, as the node syncs them; commit indexes and applied blocks are not. A
//! crash keeps every write up to the last synced one and a random prefix of the rest, and a
//! restart rebuilds the node from what was kept, the way the node reopens its database:
//! ledger at its applied index, Raft log and hard state as persisted, commit raised to the
//! applied index if it was lost.

use super::net::{Answer, Endpoint, Envelope, Payload};
use super::rng::SimRng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tpw_consensus::raft_types::{Entry, HardState, Message};
use tpw_consensus::{
    classify, persist_action, Action, Batcher, BlockLimits, Driver, DriverConfig, EntryKind,
    LogStore, MemLogStore, Storage,
};
use tpw_contracts::model::{from_bytes, Account, Hash};
use tpw_contracts::sig::{verify_all, SignatureItem};
use tpw_contracts::state::prefix;
use tpw_contracts::{
    apply_block, check_attestation, next_expiry_ms, transaction_id, AttestationCheck, ChainHead,
    GenesisState, MemStore, Proposal, ResultCode, StateDiff, StateStore, Transaction,
};

/// Ticks without a leader before an election, as the node's default.
pub const ELECTION_TICKS: usize = 10;
/// Ticks between heartbeats, as the node's default.
pub const HEARTBEAT_TICKS: usize = 2;
/// Blocks a leader keeps proposed but not yet applied, as the node's default.
const PROPOSALS_IN_FLIGHT_MAX: u64 = 4;
/// Transactions per simulated block: small, so runs cut many blocks.
const BLOCK_TRANSACTIONS: usize = 16;

/// A deliberate bug, to show the checkers catch what they are for. Runs use `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// The node as built.
    None,
    /// Raft log writes are not synced, so a crash may lose votes and entries the node
    /// acknowledged.
    UnsyncedRaftLog,
    /// The leader tells a client its transaction committed as soon as it proposes it.
    AckOnPropose,
    /// A restarted node's ledger counts one posted transfer a second time.
    RestartAppliesATransferTwice,
}

/// One write to the modelled disk, in the order the node makes them.
#[derive(Clone)]
enum Write {
    /// Raft entries and hard state: synced before the node goes on.
    Log {
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
    },
    /// A new commit index: not synced.
    Commit(u64),
    /// The ledger applied the entry at `index`: not synced. `block` is `None` for entries
    /// that are not blocks.
    Applied {
        index: u64,
        block: Option<AppliedBlock>,
    },
}

/// What applying one block wrote.
#[derive(Clone)]
struct AppliedBlock {
    diff: StateDiff,
    head: ChainHead,
    /// (transaction id, result code), in block order.
    receipts: Vec<(Hash, ResultCode)>,
}

/// The writes a node made, and how many of them are surely durable.
#[derive(Default)]
struct Disk {
    writes: Vec<Write>,
    durable: usize,
}

impl Disk {
    fn write(&mut self, write: Write, synced: bool) {
        self.writes.push(write);
        if synced {
            self.durable = self.writes.len();
        }
    }

    /// A crash: keeps the durable writes and a random prefix of the rest. Returns how many
    /// writes were lost.
    fn crash(&mut self, rng: &mut SimRng) -> usize {
        let pending = (self.writes.len() - self.durable) as u64;
        let kept = self.durable + rng.below(pending + 1) as usize;
        let lost = self.writes.len() - kept;
        self.writes.truncate(kept);
        self.durable = kept;
        lost
    }
}

/// The ledger as the node holds it.
struct Ledger {
    state: MemStore,
    head: ChainHead,
    applied_index: u64,
    /// Header hash by height (index 0 is genesis).
    chain: Vec<Hash>,
    /// Committed transactions: height and result code, for answering retries.
    committed: BTreeMap<Hash, (u64, ResultCode)>,
}

impl Ledger {
    fn genesis(genesis: &GenesisState) -> Self {
        let mut state = MemStore::default();
        state.apply_diff(&genesis.diff);
        Self {
            state,
            head: genesis.head.clone(),
            applied_index: 0,
            chain: vec![genesis.head.hash],
            committed: BTreeMap::new(),
        }
    }

    fn apply(&mut self, index: u64, block: Option<&AppliedBlock>) {
        self.applied_index = index;
        if let Some(block) = block {
            self.state.apply_diff(&block.diff);
            self.head = block.head.clone();
            self.chain.push(block.head.hash);
            for (tx_id, code) in &block.receipts {
                // A retry committed again answers with the first commit.
                self.committed
                    .entry(*tx_id)
                    .or_insert((block.head.height, *code));
            }
        }
    }
}

/// Sums of one asset's balances over every account.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct AssetSums {
    debits_posted: u128,
    credits_posted: u128,
    debits_pending: u128,
    credits_pending: u128,
}

/// Per-asset sums over all accounts of a state.
fn asset_sums(state: &MemStore) -> Result<BTreeMap<u32, AssetSums>, String> {
    let mut sums: BTreeMap<u32, AssetSums> = BTreeMap::new();
    for (key, value) in state.records() {
        if key.first() != Some(&prefix::ACCOUNT) {
            continue;
        }
        let account = from_bytes(value, Account::decode)
            .map_err(|error| format!("account record does not decode: {error}"))?;
        let entry = sums.entry(account.asset).or_default();
        let add = |total: &mut u128, amount: u128| -> Result<(), String> {
            *total = total
                .checked_add(amount)
                .ok_or_else(|| format!("asset {} sums overflow", account.asset))?;
            Ok(())
        };
        add(&mut entry.debits_posted, account.debits_posted)?;
        add(&mut entry.credits_posted, account.credits_posted)?;
        add(&mut entry.debits_pending, account.debits_pending)?;
        add(&mut entry.credits_pending, account.credits_pending)?;
    }
    Ok(sums)
}

/// What a node reports to the checkers.
#[derive(Debug)]
pub enum NodeEvent {
    /// A committed Raft entry was applied.
    Applied {
        node: u64,
        index: u64,
        term: u64,
        /// blake3 of the entry's data.
        data_hash: Hash,
        /// The block's height and header hash, if the entry is a block.
        block: Option<(u64, Hash)>,
    },
    /// Something that must never happen.
    Violation(String),
}

/// Running state, gone while the node is down.
struct Live {
    driver: Driver<MemLogStore>,
    ledger: Ledger,
    batcher: Batcher,
    /// Raft index of each block proposed in the current term, with its transactions.
    proposed: VecDeque<(u64, Vec<Hash>)>,
    proposed_term: u64,
    /// Clients waiting for each queued or proposed transaction.
    waiters: BTreeMap<Hash, BTreeSet<usize>>,
    /// Transactions whose signature this node checked at admission.
    preverified: BTreeSet<Hash>,
    next_expiry_ms: Option<u64>,
    /// Tick phase in simulated ms, so nodes do not tick in lockstep.
    tick_offset_ms: u64,
    sums: BTreeMap<u32, AssetSums>,
}

/// A simulated node.
pub struct SimNode {
    pub id: u64,
    pub voter: bool,
    /// Stopped by a pause (SIGSTOP): keeps its memory, does nothing.
    pub paused: bool,
    disk: Disk,
    live: Option<Live>,
    voters: Vec<u64>,
    learners: Vec<u64>,
    /// This node's clock minus simulated time.
    pub clock_skew_ms: i64,
    sabotage: Sabotage,
}

impl SimNode {
    /// A node at genesis.
    pub fn new(
        id: u64,
        voters: &[u64],
        learners: &[u64],
        clock_skew_ms: i64,
        genesis: &GenesisState,
        rng: &mut SimRng,
        sabotage: Sabotage,
    ) -> Result<Self, String> {
        let mut node = Self {
            id,
            voter: voters.contains(&id),
            paused: false,
            disk: Disk::default(),
            live: None,
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            clock_skew_ms,
            sabotage,
        };
        node.start(genesis, rng)?;
        Ok(node)
    }

    /// Whether the process runs (possibly paused).
    pub fn is_up(&self) -> bool {
        self.live.is_some()
    }

    /// Whether the node runs and is not paused.
    pub fn is_active(&self) -> bool {
        self.live.is_some() && !self.paused
    }

    /// Rebuilds the running node from the disk.
    pub fn start(&mut self, genesis: &GenesisState, rng: &mut SimRng) -> Result<(), String> {
        let store = MemLogStore::new(self.voters.clone(), self.learners.clone());
        let mut ledger = Ledger::genesis(genesis);
        for write in &self.disk.writes {
            match write {
                Write::Log {
                    entries,
                    hard_state,
                } => store
                    .persist(entries, hard_state.as_ref())
                    .map_err(|error| format!("node {}: log replay: {error}", self.id))?,
                Write::Commit(commit) => store
                    .persist_commit(*commit)
                    .map_err(|error| format!("node {}: log replay: {error}", self.id))?,
                Write::Applied { index, block } => ledger.apply(*index, block.as_ref()),
            }
        }
        if self.sabotage == Sabotage::RestartAppliesATransferTwice {
            count_a_transfer_twice(&mut ledger.state);
        }
        let last_index = store.last_index().map_err(|error| error.to_string())?;
        if ledger.applied_index > last_index {
            return Err(format!(
                "node {}: ledger applied to {} beyond the Raft log's end {last_index}",
                self.id, ledger.applied_index
            ));
        }
        let commit = store
            .initial_state()
            .map_err(|error| error.to_string())?
            .hard_state
            .commit;
        if commit < ledger.applied_index {
            store
                .persist_commit(ledger.applied_index)
                .map_err(|error| error.to_string())?;
            self.disk.write(Write::Commit(ledger.applied_index), false);
        }
        let config = DriverConfig {
            id: self.id,
            election_ticks: ELECTION_TICKS,
            heartbeat_ticks: HEARTBEAT_TICKS,
            applied_index: ledger.applied_index,
            fixed_election_ticks: Some(ELECTION_TICKS + rng.below(ELECTION_TICKS as u64) as usize),
        };
        let driver = Driver::new(&config, store)
            .map_err(|error| format!("node {}: driver: {error}", self.id))?;
        let next_expiry_ms = next_expiry_ms(&ledger.state).map_err(|error| error.to_string())?;
        let sums = asset_sums(&ledger.state)?;
        self.live = Some(Live {
            driver,
            ledger,
            batcher: Batcher::new(BlockLimits {
                transactions_max: BLOCK_TRANSACTIONS,
                ..BlockLimits::default()
            }),
            proposed: VecDeque::new(),
            proposed_term: 0,
            waiters: BTreeMap::new(),
            preverified: BTreeSet::new(),
            next_expiry_ms,
            tick_offset_ms: rng.below(super::TICK_MS),
            sums,
        });
        self.paused = false;
        Ok(())
    }

    /// Kills the process: memory is gone, and unsynced writes may be lost. Returns how many
    /// writes were lost.
    pub fn crash(&mut self, rng: &mut SimRng) -> usize {
        self.live = None;
        self.paused = false;
        self.disk.crash(rng)
    }

    /// Whether this node's tick falls at `now_ms`.
    pub fn ticks_at(&self, now_ms: u64) -> bool {
        self.live
            .as_ref()
            .is_some_and(|live| now_ms % super::TICK_MS == live.tick_offset_ms)
    }

    fn clock_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add_signed(self.clock_skew_ms)
    }

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        if let Some(live) = self.live.as_mut() {
            live.driver.tick();
        }
    }

    /// Whether this node is the leader, and of which term.
    pub fn leadership(&self) -> Option<u64> {
        let live = self.live.as_ref()?;
        live.driver.is_leader().then(|| live.driver.term())
    }

    /// Applied chain: header hashes by height.
    pub fn chain(&self) -> &[Hash] {
        self.live.as_ref().map_or(&[], |live| &live.ledger.chain)
    }

    /// The ledger state, while up.
    pub fn state(&self) -> Option<&MemStore> {
        self.live.as_ref().map(|live| &live.ledger.state)
    }

    /// The head, while up.
    pub fn head(&self) -> Option<&ChainHead> {
        self.live.as_ref().map(|live| &live.ledger.head)
    }

    /// Commit index and last index of the Raft log, while up.
    pub fn raft_indexes(&self) -> Option<(u64, u64, u64)> {
        let live = self.live.as_ref()?;
        Some((
            live.driver.commit_index(),
            live.driver.last_index(),
            live.ledger.applied_index,
        ))
    }

    /// (term, blake3 of data) of every entry in this node's Raft log from `first`.
    pub fn log_terms(&self) -> Vec<(u64, u64, Hash)> {
        let Some(live) = self.live.as_ref() else {
            return Vec::new();
        };
        let store = live.driver.store();
        let (Ok(first), Ok(last)) = (store.first_index(), store.last_index()) else {
            return Vec::new();
        };
        if last < first {
            return Vec::new();
        }
        let context = tpw_consensus::GetEntriesContext::empty(false);
        store
            .entries(first, last + 1, None, context)
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                (
                    entry.index,
                    entry.term,
                    *blake3::hash(&entry.data).as_bytes(),
                )
            })
            .collect()
    }

    /// Hands a delivered message to the node.
    pub fn receive(&mut self, envelope: Envelope, out: &mut Vec<Envelope>) -> Result<(), String> {
        let id = self.id;
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        match envelope.payload {
            Payload::Raft(message) => step(live, id, message),
            Payload::Submit {
                envelope: bytes,
                tx_id,
            } => {
                let Endpoint::Client(client) = envelope.from else {
                    return Ok(());
                };
                let answer = |answer| Envelope {
                    from: Endpoint::Node(id),
                    to: Endpoint::Client(client),
                    payload: Payload::Answer { tx_id, answer },
                };
                if let Some((height, code)) = live.ledger.committed.get(&tx_id) {
                    out.push(answer(Answer::Committed {
                        height: *height,
                        code: *code,
                    }));
                    return Ok(());
                }
                if !live.driver.is_leader() || !self.voter {
                    out.push(answer(Answer::NotLeader(live.driver.leader_id())));
                    return Ok(());
                }
                if let Some(waiting) = live.waiters.get_mut(&tx_id) {
                    waiting.insert(client);
                    return Ok(());
                }
                let network_id = live.ledger.head.network_id;
                let Ok(transaction) = Transaction::from_bytes(&bytes, &network_id) else {
                    out.push(answer(Answer::Refused));
                    return Ok(());
                };
                let message = transaction.signed_message();
                let valid = verify_all(&[SignatureItem {
                    key: &transaction.signer,
                    signature: &transaction.signature,
                    message: &message,
                }]);
                if valid != [true] {
                    out.push(answer(Answer::Refused));
                    return Ok(());
                }
                if live.batcher.push(bytes).is_err() {
                    out.push(answer(Answer::Retry));
                    return Ok(());
                }
                live.preverified.insert(tx_id);
                live.waiters.entry(tx_id).or_default().insert(client);
                Ok(())
            }
            Payload::Answer { .. } => Ok(()),
        }
    }

    /// The leader cuts and proposes blocks, as the node's raft loop does: up to a few blocks
    /// in flight, an empty block when a timer falls due.
    pub fn propose(&mut self, now_ms: u64, out: &mut Vec<Envelope>) {
        let clock_ms = self.clock_ms(now_ms);
        let id = self.id;
        let Some(live) = self.live.as_mut() else {
            return;
        };
        if !live.driver.is_leader() || live.driver.term() != live.proposed_term {
            let dropped: Vec<Hash> = live.proposed.drain(..).flat_map(|(_, ids)| ids).collect();
            forget(live, id, dropped, out);
            live.proposed_term = live.driver.term();
        }
        if !live.driver.is_leader() {
            let queued: Vec<Hash> = live
                .batcher
                .drain()
                .iter()
                .map(|bytes| transaction_id(bytes))
                .collect();
            forget(live, id, queued, out);
            return;
        }
        loop {
            let in_flight = live
                .driver
                .last_index()
                .saturating_sub(live.ledger.applied_index);
            if in_flight >= PROPOSALS_IN_FLIGHT_MAX {
                return;
            }
            let mut proposal = match live.batcher.cut(clock_ms) {
                Some(proposal) => proposal,
                None if in_flight == 0
                    && tpw_consensus::timer_block_due(live.next_expiry_ms, clock_ms) =>
                {
                    Proposal {
                        attestation: None,
                        proposer_time_ms: clock_ms,
                        transactions: Vec::new(),
                        webhooks: Vec::new(),
                    }
                }
                None => return,
            };
            proposal.attestation = Some((live.ledger.head.height, live.ledger.head.hash));
            let ids: Vec<Hash> = proposal
                .transactions
                .iter()
                .map(|bytes| transaction_id(bytes))
                .collect();
            if live.driver.propose(proposal.to_bytes()).is_err() {
                forget(live, id, ids, out);
                return;
            }
            if ids.is_empty() {
                return;
            }
            if self.sabotage == Sabotage::AckOnPropose {
                for tx_id in &ids {
                    for client in live.waiters.remove(tx_id).unwrap_or_default() {
                        out.push(Envelope {
                            from: Endpoint::Node(id),
                            to: Endpoint::Client(client),
                            payload: Payload::Answer {
                                tx_id: *tx_id,
                                answer: Answer::Committed {
                                    height: live.ledger.head.height + 1,
                                    code: ResultCode::Ok,
                                },
                            },
                        });
                    }
                }
            }
            live.proposed.push_back((live.driver.last_index(), ids));
        }
    }

    /// Runs every ready Raft has, in the order the driver hands out its actions.
    pub fn process(
        &mut self,
        out: &mut Vec<Envelope>,
        events: &mut Vec<NodeEvent>,
    ) -> Result<(), String> {
        let id = self.id;
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        while let Some(actions) = live.driver.ready_actions() {
            let who = (id, self.sabotage);
            execute(live, &mut self.disk, who, actions, out, events)?;
            let actions = live.driver.advance();
            execute(live, &mut self.disk, who, actions, out, events)?;
            live.driver.advance_apply();
        }
        Ok(())
    }
}

fn step(live: &mut Live, id: u64, message: Message) -> Result<(), String> {
    // raft-rs refuses messages from peers it does not know and stale ones itself; an error
    // here is a malformed message, which a real node logs and drops.
    if let Err(error) = live.driver.step(message) {
        tracing::debug!(node = id, %error, "simulated node dropped a raft message");
    }
    Ok(())
}

/// Tells the waiters of these transactions to submit again.
fn forget(live: &mut Live, id: u64, tx_ids: Vec<Hash>, out: &mut Vec<Envelope>) {
    for tx_id in tx_ids {
        live.preverified.remove(&tx_id);
        for client in live.waiters.remove(&tx_id).unwrap_or_default() {
            out.push(Envelope {
                from: Endpoint::Node(id),
                to: Endpoint::Client(client),
                payload: Payload::Answer {
                    tx_id,
                    answer: Answer::Retry,
                },
            });
        }
    }
}

fn execute(
    live: &mut Live,
    disk: &mut Disk,
    (id, sabotage): (u64, Sabotage),
    actions: Vec<Action>,
    out: &mut Vec<Envelope>,
    events: &mut Vec<NodeEvent>,
) -> Result<(), String> {
    for action in actions {
        persist_action(live.driver.store(), &action)
            .map_err(|error| format!("node {id}: {error}"))?;
        match action {
            Action::Persist {
                entries,
                hard_state,
            } => disk.write(
                Write::Log {
                    entries,
                    hard_state,
                },
                sabotage != Sabotage::UnsyncedRaftLog,
            ),
            Action::PersistCommit(commit) => disk.write(Write::Commit(commit), false),
            Action::Send(messages) => {
                for message in messages {
                    out.push(Envelope {
                        from: Endpoint::Node(id),
                        to: Endpoint::Node(message.to),
                        payload: Payload::Raft(message),
                    });
                }
            }
            Action::Apply(entries) => {
                for entry in entries {
                    apply_entry(live, disk, id, &entry, out, events)?;
                }
            }
            Action::ApplySnapshot(_) => {
                return Err(format!(
                    "node {id}: raft sent a snapshot, but the simulator never compacts"
                ))
            }
        }
    }
    Ok(())
}

fn apply_entry(
    live: &mut Live,
    disk: &mut Disk,
    id: u64,
    entry: &Entry,
    out: &mut Vec<Envelope>,
    events: &mut Vec<NodeEvent>,
) -> Result<(), String> {
    if entry.index <= live.ledger.applied_index {
        return Ok(());
    }
    let data_hash = *blake3::hash(&entry.data).as_bytes();
    let proposal = match classify(entry) {
        EntryKind::Block(proposal) => proposal,
        EntryKind::ConfChange(_) => {
            return Err(format!(
                "node {id}: a configuration change at index {}, but the simulated node set never changes",
                entry.index
            ))
        }
        EntryKind::Skip | EntryKind::Malformed(_) => {
            disk.write(
                Write::Applied {
                    index: entry.index,
                    block: None,
                },
                false,
            );
            live.ledger.apply(entry.index, None);
            events.push(NodeEvent::Applied {
                node: id,
                index: entry.index,
                term: entry.term,
                data_hash,
                block: None,
            });
            return Ok(());
        }
    };
    let ledger = &live.ledger;
    let check = check_attestation(proposal.attestation, |height| {
        ledger.chain.get(height as usize).copied()
    });
    if let AttestationCheck::Diverged { height, .. } = check {
        events.push(NodeEvent::Violation(format!(
            "node {id}: divergence alarm at height {height}"
        )));
    }
    let preverified = &live.preverified;
    let outcome = apply_block(&ledger.state, &ledger.head, &proposal, &|tx_id| {
        preverified.contains(tx_id)
    })
    .map_err(|error| format!("node {id}: apply failed at index {}: {error}", entry.index))?;
    // Conservation: per asset, posted and pending debits equal credits after every block.
    let mut sums = live.sums.clone();
    for (key, value) in &outcome.diff {
        if key.first() != Some(&prefix::ACCOUNT) {
            continue;
        }
        let decode = |bytes: &[u8]| {
            from_bytes(bytes, Account::decode)
                .map_err(|error| format!("node {id}: account record: {error}"))
        };
        if let Some(old) = ledger.state.get(key).map_err(|error| error.to_string())? {
            let old = decode(&old)?;
            let entry = sums.entry(old.asset).or_default();
            entry.debits_posted -= old.debits_posted;
            entry.credits_posted -= old.credits_posted;
            entry.debits_pending -= old.debits_pending;
            entry.credits_pending -= old.credits_pending;
        }
        if let Some(new) = value {
            let new = decode(new)?;
            let entry = sums.entry(new.asset).or_default();
            entry.debits_posted += new.debits_posted;
            entry.credits_posted += new.credits_posted;
            entry.debits_pending += new.debits_pending;
            entry.credits_pending += new.credits_pending;
        }
    }
    for (asset, sum) in &sums {
        if sum.debits_posted != sum.credits_posted || sum.debits_pending != sum.credits_pending {
            events.push(NodeEvent::Violation(format!(
                "node {id}: asset {asset} not conserved after height {}: {sum:?}",
                outcome.header.height
            )));
        }
    }
    live.sums = sums;
    let block = AppliedBlock {
        diff: outcome.diff,
        head: outcome.head,
        receipts: outcome
            .receipts
            .iter()
            .map(|receipt| (receipt.tx_id, receipt.code))
            .collect(),
    };
    let height = block.head.height;
    let hash = block.head.hash;
    live.ledger.apply(entry.index, Some(&block));
    live.next_expiry_ms = next_expiry_ms(&live.ledger.state).map_err(|error| error.to_string())?;
    for (tx_id, _) in &block.receipts {
        live.preverified.remove(tx_id);
        let Some((height, code)) = live.ledger.committed.get(tx_id).copied() else {
            continue;
        };
        for client in live.waiters.remove(tx_id).unwrap_or_default() {
            out.push(Envelope {
                from: Endpoint::Node(id),
                to: Endpoint::Client(client),
                payload: Payload::Answer {
                    tx_id: *tx_id,
                    answer: Answer::Committed { height, code },
                },
            });
        }
    }
    disk.write(
        Write::Applied {
            index: entry.index,
            block: Some(block),
        },
        false,
    );
    while live
        .proposed
        .front()
        .is_some_and(|(index, _)| *index <= entry.index)
    {
        live.proposed.pop_front();
    }
    events.push(NodeEvent::Applied {
        node: id,
        index: entry.index,
        term: entry.term,
        data_hash,
        block: Some((height, hash)),
    });
    Ok(())
}

/// [`Sabotage::RestartAppliesATransferTwice`]: moves the amount of the first posted transfer
/// once more, on both its accounts (so assets stay conserved and only the accounting by
/// transfer can tell).
fn count_a_transfer_twice(state: &mut MemStore) {
    let mut diff = StateDiff::new();
    for (key, value) in state.records() {
        if key.first() != Some(&prefix::TRANSFER) {
            continue;
        }
        let Ok(record) = from_bytes(value, tpw_contracts::model::TransferRecord::decode) else {
            continue;
        };
        if record.state != tpw_contracts::model::TransferState::Posted || record.height == 0 {
            continue;
        }
        for (account, debit) in [(record.debit_account, true), (record.credit_account, false)] {
            let key = tpw_contracts::state::account_key(account);
            let Some(bytes) = state.get(&key).ok().flatten() else {
                return;
            };
            let Ok(mut account) = from_bytes(&bytes, Account::decode) else {
                return;
            };
            if debit {
                account.debits_posted += record.amount;
            } else {
                account.credits_posted += record.amount;
            }
            let bytes = tpw_contracts::model::to_bytes(|writer| account.encode(writer));
            diff.insert(key, Some(bytes));
        }
        break;
    }
    state.apply_diff(&diff);
}
