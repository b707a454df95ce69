//! What the raft loop shares with the API, the network and the webhook workers: the commands
//! and peer input it takes, the transactions in flight and their waiting clients, the status
//! it publishes, the snapshot gate and the webhook progress a leader's next block carries. A
//! leaf: it imports no other module of the node but metrics and limits, so every part of the
//! node can depend on it without a circle.

use crate::limits::WAITERS_PER_TRANSACTION_MAX;
use crate::metrics::Metrics;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};
pub use tpw_consensus::{StepDownError, SubmitError};
use tpw_contracts::block::WebhookProgress;
use tpw_contracts::model::Hash;
use tpw_contracts::Receipt;

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
    /// A peer's node records, from its ledger at `height` (see `Replica::handle_vouched_nodes`).
    Vouched {
        /// The peer's head height.
        height: u64,
        /// Its node records.
        records: Vec<tpw_contracts::governance::NodeRecord>,
    },
    /// The operator asks this leader to hand leadership over (`POST /admin/v1/step-down`).
    StepDown {
        /// Told the voter it hands over to, or why it cannot.
        reply: tokio::sync::oneshot::Sender<Result<u64, StepDownError>>,
    },
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
    /// This machine's wall clock minus its estimate of ledger time, once it has one.
    pub clock_offset_ms: Option<i64>,
    /// The bound past which that raises the clock alarm (`clock.skew_alarm_ms`).
    pub clock_skew_alarm_ms: u64,
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
    pub snapshot_gate: SnapshotGate,
    /// The height of the last applied block: event streams wait on it.
    pub head_height: tokio::sync::watch::Sender<u64>,
    /// Webhook delivery progress made as leader, for the next block proposal.
    pub webhook_checkpoint: Mutex<Checkpoint>,
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
            snapshot_gate: SnapshotGate::default(),
            head_height: tokio::sync::watch::Sender::new(0),
            webhook_checkpoint: Mutex::new(Checkpoint::default()),
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

/// The staged snapshot handed to Raft and not yet resolved. The receiver sets it just before
/// it queues the snapshot message and starts no other fetch while it is set; the raft loop
/// clears it once Raft installed the snapshot or refused it. So the staging area has one owner
/// at a time and an install never races a fetch.
#[derive(Debug, Default)]
pub struct SnapshotGate {
    stepped: Mutex<Option<u64>>,
}

impl SnapshotGate {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.stepped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    /// The Raft index of the snapshot handed to Raft, if unresolved.
    pub fn stepped(&self) -> Option<u64> {
        *self.lock()
    }
    /// Marks a staged snapshot as handed to Raft.
    pub fn set(&self, index: u64) {
        *self.lock() = Some(index);
    }
    /// Marks it resolved.
    pub fn clear(&self) {
        *self.lock() = None;
    }
}

/// Progress the leader made since its last proposal.
#[derive(Default)]
pub struct Checkpoint {
    entries: BTreeMap<(u64, u16), WebhookProgress>,
    since: Option<Instant>,
}

impl Checkpoint {
    pub(crate) fn entry(&mut self, participant: u64, endpoint: u16) -> &mut WebhookProgress {
        self.since.get_or_insert_with(Instant::now);
        self.entries
            .entry((participant, endpoint))
            .or_insert_with(|| WebhookProgress {
                participant,
                endpoint,
                delivered_height: 0,
                delivered_sequence: 0,
                dead: Vec::new(),
                revived: Vec::new(),
            })
    }

    pub(crate) fn delivered(&mut self, participant: u64, endpoint: u16, cursor: (u64, u32)) {
        let entry = self.entry(participant, endpoint);
        if cursor > (entry.delivered_height, entry.delivered_sequence) {
            entry.delivered_height = cursor.0;
            entry.delivered_sequence = cursor.1;
        }
    }

    /// Whether progress has waited longer than [`crate::limits::WEBHOOK_CHECKPOINT_AGE_MAX`] for a proposal.
    pub fn due(&self) -> bool {
        self.since
            .is_some_and(|since| since.elapsed() >= crate::limits::WEBHOOK_CHECKPOINT_AGE_MAX)
    }

    /// Puts back progress taken for a proposal that was not made.
    pub fn restore(&mut self, entries: Vec<WebhookProgress>) {
        for entry in entries {
            let slot = self.entry(entry.participant, entry.endpoint);
            if (entry.delivered_height, entry.delivered_sequence)
                > (slot.delivered_height, slot.delivered_sequence)
            {
                slot.delivered_height = entry.delivered_height;
                slot.delivered_sequence = entry.delivered_sequence;
            }
            slot.dead.extend(entry.dead);
            slot.revived.extend(entry.revived);
        }
    }

    /// Forgets progress this node made as a leader it no longer is: the new leader resumes
    /// from what was replicated (its deliveries may repeat; the delivery ids say so).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.since = None;
    }

    /// Takes the progress for a proposal (bounded; the rest waits for the next).
    pub fn take(&mut self) -> Vec<WebhookProgress> {
        let mut taken = Vec::new();
        while taken.len() < crate::limits::WEBHOOK_CHECKPOINT_ENTRIES_PER_PROPOSAL {
            let Some((_, mut entry)) = self.entries.pop_first() else {
                break;
            };
            if entry.dead.len() > tpw_contracts::block::WEBHOOK_DEAD_MAX
                || entry.revived.len() > tpw_contracts::block::WEBHOOK_DEAD_MAX
            {
                let rest = WebhookProgress {
                    dead: entry
                        .dead
                        .split_off(entry.dead.len().min(tpw_contracts::block::WEBHOOK_DEAD_MAX)),
                    revived: entry.revived.split_off(
                        entry
                            .revived
                            .len()
                            .min(tpw_contracts::block::WEBHOOK_DEAD_MAX),
                    ),
                    ..entry.clone()
                };
                self.entries.insert((rest.participant, rest.endpoint), rest);
            }
            taken.push(entry);
        }
        if self.entries.is_empty() {
            self.since = None;
        }
        taken
    }
}

/// Webhook replays asked for by participants, per endpoint, on this node (the API asks, the
/// delivery workers take).
#[derive(Default)]
pub struct Replays {
    asked: Mutex<std::collections::HashSet<(u64, u16)>>,
}

impl Replays {
    /// Asks for the endpoint's dead letters to be delivered again.
    pub fn ask(&self, participant: u64, endpoint: u16) {
        lock(&self.asked).insert((participant, endpoint));
    }
    /// Takes the endpoint's request, if there is one.
    pub(crate) fn take(&self, participant: u64, endpoint: u16) -> bool {
        lock(&self.asked).remove(&(participant, endpoint))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
