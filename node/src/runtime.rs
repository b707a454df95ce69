//! The raft loop: one OS thread that owns the Raft driver, the log store and the ledger store.
//!
//! Each iteration takes queued submissions, ticks Raft when a tick is due, cuts a block if it
//! leads, and carries out the driver's actions in order: synced persists, then applies, whose
//! outcomes wake the clients waiting for commit. Blocking RocksDB writes stay off the async
//! runtime, and while one block is being persisted the next one fills (group commit).

use crate::limits::{
    COMMANDS_PER_ITERATION_MAX, PROPOSALS_IN_FLIGHT_DEFAULT, WAITERS_PER_TRANSACTION_MAX,
};
use crate::limits::{PEER_INPUTS_PER_ITERATION_MAX, RECEIVED_AGE_MAX};
use crate::metrics::Metrics;
use crate::storage::{LedgerStore, RaftLogStore, StorageError};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tpw_consensus::{classify, persist_action, Action, Batcher, Driver, EntryKind};
use tpw_contracts::model::Hash;
use tpw_contracts::{apply_block, next_expiry_ms, Receipt, ResultCode};

mod membership;
pub(crate) use membership::NodeSet;

/// A transaction's commit, as told to a waiting client.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub position: u32,
    /// Its receipt.
    pub receipt: Receipt,
}

/// Why a submission was not queued; all are retryable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// This node does not lead; retry on the leader.
    #[error("this node is not the leader (leader: {leader:?}); retry on the leader")]
    NotLeader {
        /// The known leader.
        leader: Option<u64>,
    },
    /// Queues are full; retry after a short wait.
    #[error("the node is overloaded; retry shortly")]
    Overloaded,
    /// The node is stopping.
    #[error("the node is stopping; retry on another node")]
    Stopping,
}

/// One request from the API to the raft loop.
pub enum Command {
    /// Queue verified envelopes for the next block.
    Submit {
        /// (transaction id, envelope bytes), signatures already verified.
        envelopes: Vec<(Hash, Vec<u8>)>,
        /// Told whether they were queued.
        reply: tokio::sync::oneshot::Sender<Result<(), SubmitError>>,
    },
    /// A Raft message from a peer (already checked to come from the node it names).
    Step(Box<tpw_consensus::raft_types::Message>),
    /// A peer could not be reached.
    Unreachable(u64),
    /// Whether a snapshot message reached a peer.
    SnapshotStatus {
        /// The peer.
        node: u64,
        /// Delivered (true) or lost (false).
        delivered: bool,
    },
    /// Peer input is waiting in the raft inbox.
    Wake,
    /// The operator asks this leader to hand leadership over (`POST /admin/v1/step-down`).
    StepDown {
        /// Told the voter it hands over to, or why it cannot.
        reply: tokio::sync::oneshot::Sender<Result<u64, StepDownError>>,
    },
}

/// Why a step-down was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepDownError {
    /// This node does not lead.
    #[error("this node is not the leader (the leader is {0:?})")]
    NotLeader(Option<u64>),
    /// No other voter is up and answering, or a transfer is already under way.
    #[error("no other voter is answering this leader, or a transfer is already under way")]
    NoTarget,
}

/// Where the network hands peer input (Raft messages, unreachable reports) to the raft loop: a
/// bounded queue of its own, so a burst of client submissions can never crowd out heartbeats
/// and votes, plus a wake-up token on the command queue (dropped when that queue is full, since
/// the loop is then busy and drains the inbox on its next turn anyway).
#[derive(Clone)]
pub struct RaftInbox {
    peers: SyncSender<Command>,
    wake: SyncSender<Command>,
}

impl RaftInbox {
    /// An inbox over the peer queue, waking the loop through its command queue.
    pub fn new(peers: SyncSender<Command>, wake: SyncSender<Command>) -> Self {
        Self { peers, wake }
    }

    /// Queues peer input without blocking.
    pub fn try_send(&self, command: Command) -> Result<(), TrySendError<Command>> {
        self.peers.try_send(command)?;
        let _ = self.wake.try_send(Command::Wake);
        Ok(())
    }
}

/// Told the commit of one transaction, or why it will not be ordered by this node.
pub type Waiter = tokio::sync::oneshot::Sender<Result<Committed, SubmitError>>;

/// Transactions accepted by this node and not yet applied, and the clients waiting for them.
/// One lock guards both, so the API and the raft loop never wait on each other in two orders.
#[derive(Default)]
pub struct InFlight {
    /// When each transaction was received here, and its signer's key.
    received: HashMap<Hash, (Instant, [u8; 32])>,
    waiters: HashMap<Hash, Vec<Waiter>>,
    waiter_count: usize,
}

impl InFlight {
    /// The signer's key of a transaction queued or in flight here.
    pub fn received_signer(&self, tx_id: &Hash) -> Option<[u8; 32]> {
        self.received.get(tx_id).map(|(_, signer)| *signer)
    }
    /// Marks a transaction as received; false if it already was.
    pub fn receive(&mut self, tx_id: Hash, signer: [u8; 32]) -> bool {
        match self.received.entry(tx_id) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert((Instant::now(), signer));
                true
            }
        }
    }

    /// Forgets transactions received longer ago than `age_max` and still not applied here (a
    /// forwarded one the leader lost, say), telling their waiters to retry; a resubmission is
    /// then ordered again, which is safe because retries are idempotent. Returns how many.
    pub fn expire(&mut self, age_max: Duration) -> usize {
        let now = Instant::now();
        let stale: Vec<Hash> = self
            .received
            .iter()
            .filter(|(_, (received, _))| now.duration_since(*received) > age_max)
            .map(|(tx_id, _)| *tx_id)
            .collect();
        for tx_id in &stale {
            self.forget(tx_id, &SubmitError::Overloaded);
        }
        // Waiters of transactions handed to the leader stay until their commit; those whose
        // client gave up go, so a transaction the leader lost cannot hold places forever.
        let Self {
            received,
            waiters,
            waiter_count,
        } = self;
        waiters.retain(|tx_id, list| {
            let before = list.len();
            list.retain(|waiter| !waiter.is_closed());
            *waiter_count -= before - list.len();
            !list.is_empty() || received.contains_key(tx_id)
        });
        stale.len()
    }
    /// The leader queued these transactions for this node: it no longer holds them, so a
    /// client's retry here is forwarded again (the leader may lose them, and retries are
    /// idempotent). Their waiters stay, woken when this node applies the block.
    pub fn handed_off(&mut self, tx_ids: &[Hash]) {
        for tx_id in tx_ids {
            self.received.remove(tx_id);
        }
    }
    /// Clients waiting, over all transactions.
    pub fn waiter_count(&self) -> usize {
        self.waiter_count
    }
    /// Registers a waiter; refused (returns false) when this transaction already has the most
    /// waiters allowed, in which case the client polls instead.
    pub fn add_waiter(&mut self, tx_id: Hash, waiter: Waiter) -> bool {
        let list = self.waiters.entry(tx_id).or_default();
        // Clients whose wait timed out no longer listen: drop their places.
        let before = list.len();
        list.retain(|waiter| !waiter.is_closed());
        self.waiter_count -= before - list.len();
        if list.len() >= WAITERS_PER_TRANSACTION_MAX {
            return false;
        }
        list.push(waiter);
        self.waiter_count += 1;
        true
    }
    /// The transaction committed: wake its waiters.
    pub fn commit(&mut self, tx_id: &Hash, committed: &Committed) {
        self.received.remove(tx_id);
        for waiter in self.waiters.remove(tx_id).unwrap_or_default() {
            self.waiter_count -= 1;
            let _ = waiter.send(Ok(committed.clone()));
        }
    }
    /// The transaction will not be ordered through this node: tell its waiters why.
    pub fn forget(&mut self, tx_id: &Hash, error: &SubmitError) {
        self.received.remove(tx_id);
        for waiter in self.waiters.remove(tx_id).unwrap_or_default() {
            self.waiter_count -= 1;
            let _ = waiter.send(Err(error.clone()));
        }
    }
}

/// Raft and chain facts published by the loop for the API.
#[derive(Debug, Clone, Default)]
pub struct RuntimeStatus {
    /// leader, follower, candidate or pre_candidate.
    pub role: &'static str,
    /// Raft term.
    pub term: u64,
    /// Known leader.
    pub leader_id: Option<u64>,
    /// Raft commit index.
    pub commit_index: u64,
    /// Raft applied index.
    pub applied_index: u64,
    /// Block height.
    pub height: u64,
    /// Head hash.
    pub head_hash: Hash,
    /// State root of the head.
    pub state_root: Hash,
    /// Block time of the head.
    pub block_time_ms: u64,
    /// Transactions queued for a block.
    pub queue_depth: usize,
    /// Voting nodes in Raft's configuration as applied here.
    pub voters: Vec<u64>,
    /// Learners (observers, and voters still catching up) in Raft's configuration.
    pub learners: Vec<u64>,
    /// Whether the ledger records this node as a regulator's observer (or does not record it
    /// yet: a joining node serves as an observer until it has replicated its own record).
    pub observer: bool,
}

/// State shared by the raft loop and the API.
pub struct Shared {
    /// Transactions in flight and their waiting clients.
    pub in_flight: Mutex<InFlight>,
    /// Published status.
    pub status: RwLock<RuntimeStatus>,
    /// Metrics.
    pub metrics: Metrics,
    /// Set to stop the loop.
    pub stopping: AtomicBool,
    /// Told when a snapshot is installed (backfill then fetches the blocks below it).
    pub snapshot_installed: tokio::sync::Notify,
    /// The staged snapshot handed to Raft and not yet resolved.
    pub snapshot_gate: crate::snapshot::SnapshotGate,
    /// The height of the last applied block: event streams wait on it.
    pub head_height: tokio::sync::watch::Sender<u64>,
    /// Webhook delivery progress made as leader, for the next block proposal.
    pub webhook_checkpoint: Mutex<crate::webhooks::Checkpoint>,
    /// Counts applied blocks that changed signer records (a key added, rotated, revoked): the
    /// API's admission cache of signing keys is emptied when it moves.
    pub signer_generation: std::sync::atomic::AtomicU64,
    /// Blocks each webhook endpoint (participant, endpoint) still has to look through for
    /// events to deliver, as its worker last saw: the backlog gauges.
    pub webhook_backlog: Mutex<std::collections::BTreeMap<(u64, u16), u64>>,
}

impl Shared {
    /// Fresh shared state.
    pub fn new() -> Self {
        Self {
            in_flight: Mutex::new(InFlight::default()),
            status: RwLock::new(RuntimeStatus::default()),
            metrics: Metrics::default(),
            stopping: AtomicBool::new(false),
            snapshot_installed: tokio::sync::Notify::new(),
            snapshot_gate: crate::snapshot::SnapshotGate::default(),
            head_height: tokio::sync::watch::Sender::new(0),
            webhook_checkpoint: Mutex::new(crate::webhooks::Checkpoint::default()),
            webhook_backlog: Mutex::default(),
            signer_generation: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

/// A fatal runtime failure: the node stops.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Storage failed or is corrupt.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The Raft log store failed.
    #[error(transparent)]
    Log(#[from] tpw_consensus::LogStoreError),
    /// Applying a block hit a broken invariant or a store failure.
    #[error("apply failed: {0}")]
    Apply(#[from] tpw_contracts::ApplyError),
    /// Reading the expiry index failed.
    #[error("state read failed: {0}")]
    State(#[from] tpw_contracts::state::StoreError),
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Milliseconds since the Unix epoch by this machine's clock (the leader's block stamp).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// The raft loop's state.
pub struct Runtime {
    driver: Driver<RaftLogStore>,
    ledger: LedgerStore,
    batcher: Batcher,
    commands: Receiver<Command>,
    peer_input: Receiver<Command>,
    shared: Arc<Shared>,
    tick: Duration,
    preverified: HashSet<Hash>,
    next_expiry_ms: Option<u64>,
    /// Raft index and transaction ids of each block this node proposed and has not applied,
    /// with the term they were proposed in.
    proposed: VecDeque<(u64, Vec<Hash>)>,
    proposed_term: u64,
    network: Option<crate::network::NetworkHandle>,
    /// Raft entries kept behind the applied index when the log is compacted.
    log_retention_entries: u64,
    /// Blocks proposed and not yet applied before the next is cut.
    proposals_in_flight_max: u64,
    /// The index of a snapshot message stepped into Raft in this iteration.
    snapshot_stepped: Option<u64>,
    /// Peers this leader sent a snapshot message to, awaiting word on its delivery.
    snapshots_sent: HashMap<u64, Instant>,
    /// The ledger's node set.
    nodes: NodeSet,
    /// Started on an empty folder under an id its ledger did not know: until it is added as a
    /// learner, a snapshot that already counts it as a voter means it was a member before and
    /// lost its data, and it stops rather than vote again.
    joining: bool,
    /// The Raft index of the block that last rotated this node's key.
    rekeyed_at: Option<u64>,
    /// Since when this node leads (none while it does not).
    leader_since: Option<Instant>,
    /// When this node last handed leadership over after its key rotation.
    handed_over_at: Option<Instant>,
}

impl Runtime {
    /// Assembles the loop; `driver` must have been created with the ledger's applied index.
    pub fn new(
        driver: Driver<RaftLogStore>,
        ledger: LedgerStore,
        batcher: Batcher,
        commands: Receiver<Command>,
        peer_input: Receiver<Command>,
        shared: Arc<Shared>,
        tick: Duration,
    ) -> Result<Self, RuntimeError> {
        let next_expiry_ms = next_expiry_ms(&ledger)?;
        let runtime = Self {
            driver,
            ledger,
            batcher,
            commands,
            peer_input,
            shared,
            tick,
            preverified: HashSet::new(),
            next_expiry_ms,
            proposed: VecDeque::new(),
            proposed_term: 0,
            network: None,
            log_retention_entries: u64::MAX,
            proposals_in_flight_max: PROPOSALS_IN_FLIGHT_DEFAULT,
            snapshot_stepped: None,
            snapshots_sent: HashMap::new(),
            nodes: NodeSet::default(),
            joining: false,
            rekeyed_at: None,
            leader_since: None,
            handed_over_at: None,
        };
        let mut runtime = runtime;
        runtime.nodes.records = tpw_contracts::governance::node_records(&runtime.ledger)?;
        runtime.rekeyed_at = runtime.ledger.own_rekey_index()?;
        // Published before the API starts, so no reader ever sees an empty status.
        runtime.publish_status();
        Ok(runtime)
    }

    /// Sends Raft messages through this network (a one-node group needs none); peers are
    /// dialled at their `configured` addresses, else at the ones the ledger records.
    pub fn with_network(
        mut self,
        network: crate::network::NetworkHandle,
        configured: std::collections::BTreeMap<u64, std::net::SocketAddr>,
    ) -> Self {
        self.network = Some(network);
        self.nodes.configured = configured;
        self
    }

    /// Lets the leader have this many blocks proposed and not yet applied.
    pub fn with_proposals_in_flight(mut self, blocks: u64) -> Self {
        self.proposals_in_flight_max = blocks.max(1);
        self
    }

    /// Marks a node joining on an empty folder (see the `joining` field).
    pub fn joining(mut self, joining: bool) -> Self {
        self.joining = joining;
        self
    }

    /// Compacts the Raft log to keep this many entries behind the applied index.
    pub fn with_log_retention(mut self, entries: u64) -> Self {
        self.log_retention_entries = entries;
        self
    }

    /// Runs until [`Shared::stopping`] is set or the command channel closes.
    pub fn run(mut self) -> Result<(), RuntimeError> {
        let mut next_tick = Instant::now() + self.tick;
        let mut next_sweep = Instant::now() + RECEIVED_AGE_MAX / 4;
        self.refresh_nodes()?;
        self.publish_status();
        while !self.shared.stopping.load(Ordering::Relaxed) {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match self.commands.recv_timeout(wait) {
                Ok(command) => {
                    self.handle(command);
                    for _ in 1..COMMANDS_PER_ITERATION_MAX {
                        match self.commands.try_recv() {
                            Ok(command) => self.handle(command),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            for _ in 0..PEER_INPUTS_PER_ITERATION_MAX {
                match self.peer_input.try_recv() {
                    Ok(command) => self.handle(command),
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                self.driver.tick();
                self.expire_snapshot_sends(now);
                if now >= next_sweep {
                    let expired = lock(&self.shared.in_flight).expire(RECEIVED_AGE_MAX);
                    if expired > 0 {
                        tracing::warn!(
                            expired,
                            "transactions not applied in time were released for resubmission"
                        );
                    }
                    next_sweep = now + RECEIVED_AGE_MAX / 4;
                }
                next_tick = if now > next_tick + self.tick {
                    now + self.tick
                } else {
                    next_tick + self.tick
                };
            }
            self.propose();
            self.reconcile_membership();
            self.hand_over_after_rekey(now);
            self.sync_members();
            self.process_ready()?;
            self.resolve_snapshot_step()?;
            self.compact_log()?;
            self.publish_status();
        }
        self.fail_queued(SubmitError::Stopping);
        Ok(())
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Submit { envelopes, reply } => {
                let result = self.queue(envelopes);
                let _ = reply.send(result);
            }
            Command::Step(message) => {
                if message.get_msg_type() == tpw_consensus::raft_types::MessageType::MsgSnapshot {
                    self.snapshot_stepped = Some(message.get_snapshot().get_metadata().index);
                }
                if let Err(error) = self.driver.step(*message) {
                    tracing::debug!(%error, "raft message refused");
                }
            }
            Command::Unreachable(node) => self.driver.report_unreachable(node),
            Command::SnapshotStatus { node, delivered } => {
                self.snapshots_sent.remove(&node);
                self.driver.report_snapshot(node, delivered)
            }
            Command::Wake => {}
            Command::StepDown { reply } => {
                let answer = if !self.driver.is_leader() {
                    Err(StepDownError::NotLeader(self.driver.leader_id()))
                } else {
                    match self.driver.step_down() {
                        Some(target) => {
                            tracing::warn!(
                                target,
                                "leadership handed over at the operator's request"
                            );
                            Ok(target)
                        }
                        None => Err(StepDownError::NoTarget),
                    }
                };
                let _ = reply.send(answer);
            }
        }
    }

    fn queue(&mut self, envelopes: Vec<(Hash, Vec<u8>)>) -> Result<(), SubmitError> {
        if !self.driver.is_leader() {
            return Err(SubmitError::NotLeader {
                leader: self.driver.leader_id(),
            });
        }
        let size: usize = envelopes.iter().map(|(_, envelope)| envelope.len()).sum();
        if !self.batcher.has_room(envelopes.len(), size) {
            return Err(SubmitError::Overloaded);
        }
        let count = envelopes.len() as u64;
        for (tx_id, envelope) in envelopes {
            self.batcher
                .push(envelope)
                .expect("has_room checked the whole submission");
            self.preverified.insert(tx_id);
        }
        Metrics::add(&self.shared.metrics.transactions_submitted, count);
        Ok(())
    }

    fn propose(&mut self) {
        if !self.driver.is_leader() || self.driver.term() != self.proposed_term {
            // Blocks proposed in an earlier term may still commit or be overwritten; their
            // clients are told to retry, which is safe because retries are idempotent.
            let leader = self.driver.leader_id();
            let proposed: Vec<Hash> = self.proposed.drain(..).flat_map(|(_, ids)| ids).collect();
            self.forget(proposed, &SubmitError::NotLeader { leader });
            self.proposed_term = self.driver.term();
        }
        if !self.driver.is_leader() {
            if !self.batcher.is_empty() {
                self.fail_queued(SubmitError::NotLeader {
                    leader: self.driver.leader_id(),
                });
            }
            return;
        }
        let in_flight = |runtime: &Self| {
            runtime
                .driver
                .last_index()
                .saturating_sub(runtime.ledger.applied_index())
        };
        while in_flight(self) < self.proposals_in_flight_max {
            let mut proposal = match self.batcher.cut(now_ms()) {
                Some(proposal) => proposal,
                None if in_flight(self) == 0
                    && (tpw_consensus::timer_block_due(self.next_expiry_ms, now_ms())
                        || lock(&self.shared.webhook_checkpoint).due()) =>
                {
                    tpw_contracts::Proposal {
                        attestation: None,
                        proposer_time_ms: now_ms(),
                        transactions: Vec::new(),
                        webhooks: Vec::new(),
                    }
                }
                None => return,
            };
            let head = self.ledger.head();
            proposal.attestation = Some((head.height, head.hash));
            proposal.webhooks = lock(&self.shared.webhook_checkpoint).take();
            let ids: Vec<Hash> = proposal
                .transactions
                .iter()
                .map(|bytes| tpw_contracts::transaction_id(bytes))
                .collect();
            if let Err(error) = self.driver.propose(proposal.to_bytes()) {
                tracing::warn!(%error, "block proposal refused");
                lock(&self.shared.webhook_checkpoint)
                    .restore(std::mem::take(&mut proposal.webhooks));
                self.forget(ids, &SubmitError::Overloaded);
                return;
            }
            if ids.is_empty() {
                return;
            }
            self.proposed.push_back((self.driver.last_index(), ids));
        }
    }

    /// Fails every queued submission and its waiters (leadership lost or stopping).
    fn fail_queued(&mut self, error: SubmitError) {
        let dropped: Vec<Hash> = self
            .batcher
            .drain()
            .iter()
            .map(|envelope| tpw_contracts::transaction_id(envelope))
            .collect();
        self.forget(dropped, &error);
    }

    /// Tells the waiters of these transactions that this node will not order them.
    fn forget(&mut self, tx_ids: Vec<Hash>, error: &SubmitError) {
        if tx_ids.is_empty() {
            return;
        }
        let mut in_flight = lock(&self.shared.in_flight);
        for tx_id in tx_ids {
            self.preverified.remove(&tx_id);
            in_flight.forget(&tx_id, error);
        }
        Metrics::set(
            &self.shared.metrics.waiters,
            in_flight.waiter_count() as u64,
        );
    }

    fn process_ready(&mut self) -> Result<(), RuntimeError> {
        while let Some(actions) = self.driver.ready_actions() {
            self.execute(actions)?;
            let actions = self.driver.advance();
            self.execute(actions)?;
            self.driver.advance_apply();
        }
        Ok(())
    }

    /// A snapshot message stepped into Raft that Raft did not install (it was stale, or the
    /// log already held its entries) leaves the gate set: release the staging area.
    fn resolve_snapshot_step(&mut self) -> Result<(), RuntimeError> {
        let Some(index) = self.snapshot_stepped.take() else {
            return Ok(());
        };
        let gate = &self.shared.snapshot_gate;
        if gate.stepped() == Some(index) {
            tracing::info!(
                index,
                "staged snapshot not needed by Raft; staging released"
            );
            crate::storage::Staging::new(self.ledger.db().clone()).clear()?;
            gate.clear();
        }
        Ok(())
    }

    /// Reports as lost the snapshot messages whose delivery was never confirmed, so Raft does
    /// not keep a peer waiting for a snapshot forever (a report for a peer no longer waiting
    /// is ignored by Raft).
    fn expire_snapshot_sends(&mut self, now: Instant) {
        let overdue: Vec<u64> = self
            .snapshots_sent
            .iter()
            .filter(|(_, sent)| {
                now.duration_since(**sent) > crate::snapshot::SNAPSHOT_STATUS_TIMEOUT
            })
            .map(|(node, _)| *node)
            .collect();
        for node in overdue {
            self.snapshots_sent.remove(&node);
            tracing::warn!(
                node_id = node,
                "no word on a snapshot message; letting Raft retry"
            );
            self.driver.report_snapshot(node, false);
        }
    }

    /// Drops Raft entries more than the retention behind the applied index, in steps of a
    /// quarter of the retention so compaction stays rare. Compaction never passes a snapshot
    /// offered in the last [`crate::snapshot::OFFER_HOLD`], which a peer may be fetching.
    fn compact_log(&mut self) -> Result<(), RuntimeError> {
        let retention = self.log_retention_entries;
        let applied = self.ledger.applied_index();
        let compacted = self.driver.store().compacted_index();
        let step = (retention / 4).max(1);
        if applied.saturating_sub(compacted) >= retention.saturating_add(step) {
            let mut to = applied - retention;
            if let Some(held) = self
                .driver
                .store()
                .snapshots()
                .held_offer(crate::snapshot::OFFER_HOLD)
            {
                to = to.min(held);
            }
            if to <= compacted {
                return Ok(());
            }
            self.driver.store().compact(to)?;
            crate::failpoint::point("compact_after");
            Metrics::set(&self.shared.metrics.log_compacted_index, to);
            tracing::debug!(to, "raft log compacted");
        }
        Ok(())
    }

    /// Installs a snapshot Raft accepted: the receiver staged and verified its records.
    fn install_snapshot(
        &mut self,
        snapshot: &tpw_consensus::raft_types::Snapshot,
    ) -> Result<(), RuntimeError> {
        let started = Instant::now();
        let conf_state = snapshot.get_metadata().get_conf_state();
        let me = self.driver.id();
        if self.joining && conf_state.voters.contains(&me) {
            return Err(RuntimeError::Storage(StorageError::Unusable(format!(
                "node {me} started on an empty data folder, but the network already counts it as a \
                 voter: it was a member before and lost its data. It must not vote again under this \
                 id; add it as a new node with a new id and key (docs/operating.md)."
            ))));
        }
        if conf_state.learners.contains(&me) {
            self.joining = false;
        }
        let store = self.driver.store().clone();
        self.ledger.install_snapshot(&store, snapshot)?;
        self.next_expiry_ms = next_expiry_ms(&self.ledger)?;
        self.refresh_nodes()?;
        Metrics::add(&self.shared.metrics.snapshots_installed, 1);
        tracing::info!(
            index = snapshot.get_metadata().index,
            height = self.ledger.head().height,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot applied to the ledger"
        );
        self.shared.snapshot_gate.clear();
        self.shared.snapshot_installed.notify_one();
        Ok(())
    }

    fn execute(&mut self, actions: Vec<Action>) -> Result<(), RuntimeError> {
        for action in actions {
            if let Action::ApplySnapshot(snapshot) = &action {
                self.install_snapshot(snapshot)?;
                continue;
            }
            let started = Instant::now();
            if matches!(action, Action::Persist { .. }) {
                crate::failpoint::point("raft_persist_before");
            }
            persist_action(self.driver.store(), &action)?;
            match action {
                Action::Persist { .. } => {
                    crate::failpoint::point("raft_persist_after");
                    Metrics::add(&self.shared.metrics.persists, 1);
                    Metrics::add(
                        &self.shared.metrics.persist_micros,
                        started.elapsed().as_micros() as u64,
                    );
                }
                Action::PersistCommit(_) => crate::failpoint::point("raft_commit_after"),
                Action::Send(messages) => match &self.network {
                    Some(network) => {
                        let now = Instant::now();
                        for message in &messages {
                            if message.get_msg_type()
                                == tpw_consensus::raft_types::MessageType::MsgSnapshot
                            {
                                self.snapshots_sent.insert(message.to, now);
                            }
                        }
                        for node in network.send(messages) {
                            self.snapshots_sent.remove(&node);
                            self.driver.report_snapshot(node, false);
                        }
                    }
                    None => {
                        tracing::debug!(count = messages.len(), "no peers: raft messages dropped")
                    }
                },
                Action::Apply(entries) => {
                    for entry in entries {
                        self.apply_entry(&entry)?;
                    }
                }
                // Installed before persistence above, never through `persist_action`.
                Action::ApplySnapshot(_) => {}
            }
        }
        Ok(())
    }

    fn apply_entry(
        &mut self,
        entry: &tpw_consensus::raft_types::Entry,
    ) -> Result<(), RuntimeError> {
        if entry.index <= self.ledger.applied_index() {
            return Ok(());
        }
        let proposal = match classify(entry) {
            EntryKind::Block(proposal) => proposal,
            EntryKind::Skip => return Ok(self.ledger.skip_entry(entry.index)?),
            EntryKind::ConfChange(change) => return self.apply_conf_change(entry.index, &change),
            EntryKind::Malformed(error) => {
                tracing::error!(index = entry.index, %error, "committed entry is not a block; skipped on every node");
                return Ok(self.ledger.skip_entry(entry.index)?);
            }
        };
        self.check_attestation(&proposal)?;
        crate::failpoint::point("apply_before");
        let started = Instant::now();
        let preverified = &self.preverified;
        let outcome = apply_block(&self.ledger, self.ledger.head(), &proposal, &|tx_id| {
            preverified.contains(tx_id)
        })?;
        // Webhook progress replicated with the block (operational data, not ledger state),
        // written in the block's batch. A leader can only have delivered events of blocks
        // before this one: anything claimed beyond is refused, so a faulty leader cannot move
        // cursors past unseen events.
        let height = outcome.header.height;
        let plausible = plausible_webhooks(&proposal, height);
        // Recorded before the block, so a crash between the two cannot lose it (the block is
        // applied again at restart and finds the same rotation at the same index).
        if self.rotates_own_key(&outcome.diff)? {
            self.ledger.record_own_rekey(Some(entry.index))?;
            self.rekeyed_at = Some(entry.index);
            tracing::info!(index = entry.index, "this node's key was rotated");
        }
        if plausible.len() < proposal.webhooks.len() {
            tracing::warn!(
                refused = proposal.webhooks.len() - plausible.len(),
                "webhook progress beyond the chain refused"
            );
        }
        self.ledger.commit_block(
            Some(crate::storage::LogPosition {
                index: entry.index,
                term: entry.term,
            }),
            &entry.data,
            &outcome,
            &plausible,
        )?;
        crate::failpoint::point("apply_after");
        if membership::touches_prefix(&outcome.diff, tpw_contracts::state::prefix::NODE) {
            self.refresh_nodes()?;
        }
        if membership::touches_prefix(&outcome.diff, tpw_contracts::state::prefix::KEY) {
            self.shared
                .signer_generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        self.shared.head_height.send_replace(outcome.header.height);
        self.next_expiry_ms = next_expiry_ms(&self.ledger)?;
        let metrics = &self.shared.metrics;
        Metrics::add(&metrics.blocks_applied, 1);
        Metrics::add(&metrics.apply_micros, started.elapsed().as_micros() as u64);
        let rejected = outcome
            .receipts
            .iter()
            .filter(|receipt| receipt.code != ResultCode::Ok)
            .count() as u64;
        Metrics::add(&metrics.transactions_applied_rejected, rejected);
        Metrics::add(
            &metrics.transactions_applied_ok,
            outcome.receipts.len() as u64 - rejected,
        );
        let height = outcome.header.height;
        while self
            .proposed
            .front()
            .is_some_and(|(index, _)| *index <= entry.index)
        {
            self.proposed.pop_front();
        }
        let mut in_flight = lock(&self.shared.in_flight);
        for (position, receipt) in outcome.receipts.into_iter().enumerate() {
            self.preverified.remove(&receipt.tx_id);
            let tx_id = receipt.tx_id;
            in_flight.commit(
                &tx_id,
                &Committed {
                    height,
                    position: position as u32,
                    receipt,
                },
            );
        }
        Metrics::set(&metrics.waiters, in_flight.waiter_count() as u64);
        Ok(())
    }

    /// Compares the leader's attested head with this node's chain; a difference means the
    /// replicas diverged, which is logged as an error and counted (alarm), never ignored.
    fn check_attestation(
        &mut self,
        proposal: &tpw_contracts::Proposal,
    ) -> Result<(), RuntimeError> {
        let head = self.ledger.head();
        let stored = match proposal.attestation {
            Some((height, _)) if height != head.height && height < head.height => {
                self.ledger.header_hash(height)?
            }
            _ => None,
        };
        let check = tpw_contracts::check_attestation(proposal.attestation, |height| {
            if height == head.height {
                Some(head.hash)
            } else {
                stored
            }
        });
        match check {
            tpw_contracts::AttestationCheck::Agrees => {}
            tpw_contracts::AttestationCheck::Unknown => {
                tracing::warn!(attested = ?proposal.attestation.map(|(height, _)| height), height = head.height, "attested height not applied here");
            }
            tpw_contracts::AttestationCheck::Diverged {
                height,
                mine,
                theirs,
            } => {
                Metrics::add(&self.shared.metrics.divergence_alarms, 1);
                tracing::error!(
                    height,
                    mine = %hex::encode(mine),
                    leader = %hex::encode(theirs),
                    "ALARM: this node's chain differs from the leader's at this height"
                );
            }
        }
        Ok(())
    }

    fn publish_status(&self) {
        let head = self.ledger.head();
        let membership = self.driver.membership();
        let status = RuntimeStatus {
            role: self.driver.role_name(),
            term: self.driver.term(),
            leader_id: self.driver.leader_id(),
            commit_index: self.driver.commit_index(),
            applied_index: self.ledger.applied_index(),
            height: head.height,
            head_hash: head.hash,
            state_root: head.commitment.root(),
            block_time_ms: head.time_ms,
            queue_depth: self.batcher.len(),
            voters: membership.voters.iter().copied().collect(),
            learners: membership.learners.iter().copied().collect(),
            observer: self.nodes.observer(self.driver.id()),
        };
        self.shared.head_height.send_if_modified(|height| {
            let changed = *height != status.height;
            *height = status.height;
            changed
        });
        let metrics = &self.shared.metrics;
        Metrics::set(&metrics.height, status.height);
        Metrics::set(&metrics.term, status.term);
        Metrics::set(&metrics.is_leader, u64::from(self.driver.is_leader()));
        Metrics::set(
            &metrics.apply_lag,
            status.commit_index.saturating_sub(status.applied_index),
        );
        Metrics::set(&metrics.raft_voters, status.voters.len() as u64);
        Metrics::set(&metrics.raft_learners, status.learners.len() as u64);
        Metrics::set(&metrics.commit_index, status.commit_index);
        Metrics::set(&metrics.applied_index, status.applied_index);
        Metrics::set(&metrics.queue_depth, status.queue_depth as u64);
        *self
            .shared
            .status
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = status;
    }
}

/// The webhook progress a block at `height` carries that can be true: a leader can only have
/// delivered events of earlier blocks, so anything claimed beyond is refused.
pub(crate) fn plausible_webhooks(
    proposal: &tpw_contracts::Proposal,
    height: u64,
) -> Vec<tpw_contracts::block::WebhookProgress> {
    proposal
        .webhooks
        .iter()
        .filter(|entry| {
            entry.delivered_height < height
                && entry.dead.iter().all(|dead| dead.height < height)
                && entry.revived.iter().all(|(revived, _)| *revived < height)
        })
        .cloned()
        .collect()
}
