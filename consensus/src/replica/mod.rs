//! The replica engine: every decision a replica makes above raft-rs, sans IO, shared by the
//! node and the simulator.
//!
//! In the style of quinn-proto's `Connection` and raft-rs' `RawNode`: inputs go in as method
//! calls with the time passed as an argument ([`Replica::handle_submit`],
//! [`Replica::handle_message`], [`Replica::handle_unreachable`],
//! [`Replica::handle_snapshot_status`], [`Replica::handle_step_down`]), and
//! [`Replica::poll`] takes the due ticks, cuts and proposes blocks, moves membership, runs
//! raft's `Ready` and applies what committed, handing every effect to an [`Executor`] in the
//! order it must be carried out. The engine reads and writes its two stores through traits
//! ([`crate::LogStore`], [`ReplicaLedger`]) whose implementations are the executor's: RocksDB
//! in the node, a modelled disk in the simulator. It owns: when to cut and propose a block,
//! the proposal window, empty timer blocks, forgetting proposals across terms, the leader's
//! attestation check, which webhook progress a block may carry, the node set and Raft's
//! configuration, the key-rotation hand-over and its timing, log compaction, the snapshot gate,
//! and refusing a joining voter. The node and the simulator only execute.

pub mod admission;
mod apply;
mod mem_ledger;
mod members;
pub mod snapshot;
mod store;

pub use apply::plausible_webhooks;
pub use mem_ledger::{MemLedger, StagedState, TxPlace};
pub use members::{admitted_peers, serves_as_observer, wanted_membership, AdmittedPeer};
pub use store::{LedgerStoreError, LogPosition, ReplicaLedger};

use crate::batcher::Batcher;
use crate::driver::{Action, Driver};
use crate::limits::{PROPOSALS_IN_FLIGHT_MAX, SNAPSHOT_STATUS_TIMEOUT_MS};
use crate::log_store::{LogStore, LogStoreError};
use crate::membership::Membership;
use raft::prelude::{Entry, Message, MessageType};
use std::collections::{BTreeMap, HashSet, VecDeque};
use tpw_contracts::block::WebhookProgress;
use tpw_contracts::governance::NodeRecord;
use tpw_contracts::model::Hash;
use tpw_contracts::{Proposal, Receipt};

/// The time an input arrives at, as two clocks: `monotonic_ms` never goes back and paces the
/// engine's timers (ticks, hand-overs, snapshot waits); `clock_ms` is the machine's wall clock,
/// read only for the stamp a leader puts on the blocks it proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Milliseconds on a clock that never goes back (from any origin).
    pub monotonic_ms: u64,
    /// Milliseconds since the Unix epoch by this machine's clock.
    pub clock_ms: u64,
}

/// How a replica runs, beyond Raft's own configuration.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// Milliseconds per Raft tick.
    pub tick_ms: u64,
    /// Blocks the leader keeps proposed and not yet applied before it cuts the next.
    pub proposals_in_flight_max: u64,
    /// Raft entries kept behind the applied index when the log is compacted (`u64::MAX`:
    /// never compact).
    pub log_retention_entries: u64,
    /// Started on an empty folder under an id its ledger did not know: until it is added as a
    /// learner, a snapshot that already counts it as a voter means it was a member before and
    /// lost its data, and it stops rather than vote again.
    pub joining: bool,
    /// Hand every applied entry to the executor ([`Effect::EntryApplied`]): the simulator's
    /// checkers compare them across replicas; the node does not need them.
    pub report_entries: bool,
    /// The most a leader that has no ledger-time estimate yet (it applied no block since it
    /// started) steps its first stamp from the head's time toward its wall clock
    /// ([`crate::ledger_clock`]).
    pub clock_first_step_max_ms: u64,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self {
            tick_ms: crate::limits::TICK_MS_DEFAULT,
            proposals_in_flight_max: crate::limits::PROPOSALS_IN_FLIGHT_DEFAULT,
            log_retention_entries: u64::MAX,
            joining: false,
            report_entries: false,
            clock_first_step_max_ms: crate::limits::CLOCK_FIRST_STEP_MAX_MS_DEFAULT,
        }
    }
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

/// A fatal engine failure: the node stops.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The Raft log store failed.
    #[error(transparent)]
    Log(#[from] LogStoreError),
    /// The ledger store failed, or refuses to go on.
    #[error(transparent)]
    Ledger(#[from] LedgerStoreError),
    /// Applying a block hit a broken invariant or a store failure.
    #[error("apply failed: {0}")]
    Apply(#[from] tpw_contracts::ApplyError),
    /// Reading ledger state failed.
    #[error("state read failed: {0}")]
    State(#[from] tpw_contracts::state::StoreError),
}

/// Something an operator must see: logged by the engine and counted by the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alarm {
    /// This node's header at `height` differs from the one the leader attested: the replicas
    /// diverged.
    Divergence {
        /// The attested height.
        height: u64,
        /// This node's header hash there.
        mine: Hash,
        /// The leader's.
        theirs: Hash,
    },
    /// A committed entry is neither a block nor a configuration change; every node skips it.
    MalformedEntry {
        /// Its Raft index.
        index: u64,
    },
    /// A block carried webhook progress beyond the chain, which was refused.
    WebhookProgressRefused {
        /// Entries refused.
        count: usize,
    },
}

/// One effect for the executor to carry out, in the order given.
#[derive(Debug)]
pub enum Effect<'a> {
    /// Send these Raft messages to their `to` peers. A snapshot message that cannot be sent
    /// is reported back through [`Replica::handle_snapshot_status`].
    Send(Vec<Message>),
    /// The Raft log store is about to persist entries or hard state (a crash point).
    Persisting,
    /// That write is durable.
    Persisted {
        /// Entries written.
        entries: usize,
    },
    /// The new commit index is recorded (a crash point).
    CommitRecorded,
    /// The committed block at this Raft index is about to be applied (a crash point).
    Applying {
        /// Its Raft index.
        index: u64,
    },
    /// A block was applied and written: answer the clients waiting for its transactions.
    Committed {
        /// Its height.
        height: u64,
        /// One receipt per transaction, in block order.
        receipts: Vec<Receipt>,
    },
    /// Any committed entry was applied ([`ReplicaConfig::report_entries`] only).
    EntryApplied {
        /// The entry.
        entry: &'a Entry,
        /// Height and header hash when it was a block.
        block: Option<(u64, Hash)>,
    },
    /// These transactions will not be ordered through this node: tell their waiters why.
    Forget {
        /// Their ids.
        tx_ids: Vec<Hash>,
        /// Why.
        reason: SubmitError,
    },
    /// The node set the ledger records, a peer's vouched node set, or Raft's configuration
    /// changed: admit these peers.
    NodeSet {
        /// The peers to admit ([`admitted_peers`]).
        peers: Vec<AdmittedPeer>,
    },
    /// A block changed signer records (a key added, rotated or revoked).
    SignersChanged,
    /// A configuration change was applied at `index`.
    ConfChanged {
        /// Its Raft index.
        index: u64,
    },
    /// A snapshot was installed; blocks below it are left for backfill.
    SnapshotInstalled {
        /// Its Raft index.
        index: u64,
        /// Its height.
        height: u64,
    },
    /// A snapshot stepped into Raft was not installed (stale, or the log already had its
    /// entries): release its staged records.
    SnapshotReleased {
        /// Its Raft index.
        index: u64,
    },
    /// The Raft log was compacted up to `to` (a crash point).
    Compacted {
        /// The new compacted index.
        to: u64,
    },
    /// Leadership was handed over to `target`.
    HandedOver {
        /// The voter that takes over.
        target: u64,
    },
    /// Something an operator must see.
    Alarm(Alarm),
}

/// Carries out effects, and holds the leader's webhook delivery progress that proposals
/// carry (operational data made outside the engine by the delivery workers).
pub trait Executor {
    /// Carries out one effect.
    fn effect(&mut self, effect: Effect<'_>);
    /// Whether webhook progress has waited long enough to deserve a block of its own.
    fn webhook_progress_due(&mut self, _now: Now) -> bool {
        false
    }
    /// Takes the webhook progress for the proposal being made.
    fn take_webhook_progress(&mut self) -> Vec<WebhookProgress> {
        Vec::new()
    }
    /// Puts back progress taken for a proposal that raft refused.
    fn restore_webhook_progress(&mut self, _progress: Vec<WebhookProgress>) {}
}

/// Raft and chain facts for status reports.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
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
    /// Transactions queued for a block.
    pub queue_depth: usize,
    /// Raft's configuration as applied here.
    pub membership: Membership,
    /// Whether the ledger records this node as an observer (or does not record it yet: a
    /// joining node serves as an observer until it has replicated its own record).
    pub observer: bool,
}

/// One replica: the Raft driver, the block queue and the ledger, with every decision above
/// raft-rs.
pub struct Replica<L: LogStore, S: ReplicaLedger<L>> {
    driver: Driver<L>,
    ledger: S,
    batcher: Batcher,
    config: ReplicaConfig,
    /// Transactions whose signatures admission verified on this node (apply skips them).
    preverified: HashSet<Hash>,
    next_expiry_ms: Option<u64>,
    /// Raft index and transaction ids of each block this node proposed and has not applied,
    /// all proposed in `proposed_term`.
    proposed: VecDeque<(u64, Vec<Hash>)>,
    proposed_term: u64,
    next_tick_ms: u64,
    /// The index of a snapshot message stepped into Raft since the last poll.
    snapshot_stepped: Option<u64>,
    /// Peers this leader sent a snapshot message to, and when.
    snapshots_sent: BTreeMap<u64, u64>,
    /// The ledger's node records.
    nodes: Vec<NodeRecord>,
    /// A peer's node records from a ledger ahead of this one.
    vouched: Vec<NodeRecord>,
    /// The node set or Raft's configuration changed since the executor was last told.
    nodes_changed: bool,
    /// The Raft index of the block that last rotated this node's key (kept: a node that
    /// joins later from an older ledger knows only the key before it).
    rekeyed_at: Option<u64>,
    /// As leader: since when each member behind that rotation has been silent.
    lagging_since_ms: BTreeMap<u64, u64>,
    /// When this node last handed leadership over for each such member.
    handed_over_for_ms: BTreeMap<u64, u64>,
    /// This node's estimate of ledger time, and the stamps it puts on blocks as leader.
    ledger_clock: crate::ledger_clock::LedgerClock,
    /// The monotonic time of the current poll (when applied blocks are observed).
    poll_ms: u64,
}

impl<L: LogStore, S: ReplicaLedger<L>> Replica<L, S> {
    /// Assembles a replica at `now_ms` (monotonic); `driver` must have been created with the
    /// ledger's applied index.
    pub fn new(
        config: ReplicaConfig,
        driver: Driver<L>,
        ledger: S,
        batcher: Batcher,
        now_ms: u64,
    ) -> Result<Self, ReplicaError> {
        assert!(config.tick_ms > 0, "a tick lasts at least one millisecond");
        let next_expiry_ms = tpw_contracts::next_expiry_ms(&ledger)?;
        let nodes = tpw_contracts::governance::node_records(&ledger)?;
        let rekeyed_at = ledger.own_rekey_index()?;
        let config = ReplicaConfig {
            proposals_in_flight_max: config
                .proposals_in_flight_max
                .clamp(1, PROPOSALS_IN_FLIGHT_MAX),
            ..config
        };
        Ok(Self {
            next_tick_ms: now_ms.saturating_add(config.tick_ms),
            driver,
            ledger,
            batcher,
            config,
            preverified: HashSet::new(),
            next_expiry_ms,
            proposed: VecDeque::new(),
            proposed_term: 0,
            snapshot_stepped: None,
            snapshots_sent: BTreeMap::new(),
            nodes,
            vouched: Vec::new(),
            nodes_changed: true,
            rekeyed_at,
            lagging_since_ms: BTreeMap::new(),
            handed_over_for_ms: BTreeMap::new(),
            ledger_clock: crate::ledger_clock::LedgerClock::default(),
            poll_ms: now_ms,
        })
    }

    /// Ledger time at monotonic `now_ms` as this node estimates it (the latest block's time
    /// plus the monotonic time since), once it applied or stamped a block since it started.
    pub fn ledger_time_ms(&self, now_ms: u64) -> Option<u64> {
        self.ledger_clock.estimate(now_ms)
    }

    /// Queues admitted envelopes (`(transaction id, bytes)`, signatures verified) for the
    /// next block; only the leader queues.
    pub fn handle_submit(&mut self, envelopes: Vec<(Hash, Vec<u8>)>) -> Result<(), SubmitError> {
        if !self.driver.is_leader() {
            return Err(SubmitError::NotLeader {
                leader: self.driver.leader_id(),
            });
        }
        let size: usize = envelopes.iter().map(|(_, envelope)| envelope.len()).sum();
        if !self.batcher.has_room(envelopes.len(), size) {
            return Err(SubmitError::Overloaded);
        }
        for (tx_id, envelope) in envelopes {
            self.batcher
                .push(envelope)
                .expect("has_room checked the whole submission");
            self.preverified.insert(tx_id);
        }
        Ok(())
    }

    /// Hands a peer's Raft message (already checked to come from the node it names) to Raft.
    /// A snapshot message arrives only once its records are staged and verified; if Raft does
    /// not install it, the next poll releases them.
    pub fn handle_message(&mut self, message: Message) {
        if message.get_msg_type() == MessageType::MsgSnapshot {
            self.snapshot_stepped = Some(message.get_snapshot().get_metadata().index);
        }
        if let Err(error) = self.driver.step(message) {
            tracing::debug!(%error, "raft message refused");
        }
    }

    /// A peer could not be reached.
    pub fn handle_unreachable(&mut self, node: u64) {
        self.driver.report_unreachable(node);
    }

    /// Whether a snapshot message reached `node`.
    pub fn handle_snapshot_status(&mut self, node: u64, delivered: bool) {
        self.snapshots_sent.remove(&node);
        self.driver.report_snapshot(node, delivered);
    }

    /// The operator asks this leader to hand leadership over; answers the voter taking over.
    pub fn handle_step_down(&mut self) -> Result<u64, StepDownError> {
        if !self.driver.is_leader() {
            return Err(StepDownError::NotLeader(self.driver.leader_id()));
        }
        let target = self.driver.step_down().ok_or(StepDownError::NoTarget)?;
        tracing::warn!(target, "leadership handed over at the operator's request");
        Ok(target)
    }

    /// When (monotonic ms) the next poll is due even without input: the next tick.
    pub fn next_timeout_ms(&self) -> u64 {
        self.next_tick_ms
    }

    /// Does everything due at `now`: a tick if its time came, proposals, membership steps,
    /// raft's ready (persist, send, apply), snapshot release and log compaction. Effects go
    /// to `executor` in order, as they happen.
    pub fn poll(&mut self, now: Now, executor: &mut dyn Executor) -> Result<(), ReplicaError> {
        self.poll_ms = now.monotonic_ms;
        if now.monotonic_ms >= self.next_tick_ms {
            self.driver.tick();
            self.expire_snapshot_sends(now.monotonic_ms);
            self.next_tick_ms = if now.monotonic_ms > self.next_tick_ms + self.config.tick_ms {
                now.monotonic_ms + self.config.tick_ms
            } else {
                self.next_tick_ms + self.config.tick_ms
            };
        }
        self.propose(now, executor);
        self.reconcile_membership();
        self.hand_over_after_rekey(now.monotonic_ms, executor)?;
        self.process_ready(now.monotonic_ms, executor)?;
        self.resolve_snapshot_step(executor);
        self.compact_log(executor)?;
        if self.nodes_changed {
            self.nodes_changed = false;
            let peers = admitted_peers(&self.nodes, &self.vouched, &self.driver.membership());
            executor.effect(Effect::NodeSet { peers });
        }
        Ok(())
    }

    /// Fails everything queued (the node stops): tells the executor which transactions.
    pub fn stop(&mut self, executor: &mut dyn Executor) {
        self.fail_queued(SubmitError::Stopping, executor);
        let proposed: Vec<Hash> = self.proposed.drain(..).flat_map(|(_, ids)| ids).collect();
        self.forget(proposed, SubmitError::Stopping, executor);
    }

    /// Status facts.
    pub fn status(&self) -> ReplicaStatus {
        ReplicaStatus {
            role: self.driver.role_name(),
            term: self.driver.term(),
            leader_id: self.driver.leader_id(),
            commit_index: self.driver.commit_index(),
            applied_index: self.ledger.applied_index(),
            queue_depth: self.batcher.len(),
            membership: self.driver.membership(),
            observer: members::serves_as_observer(&self.nodes, self.driver.id()),
        }
    }

    /// The ledger, for reads.
    pub fn ledger(&self) -> &S {
        &self.ledger
    }

    /// The ledger store, for the executor's own records beside what the engine writes (a
    /// snapshot staged for Raft, blocks backfilled below one); never to change what the engine
    /// applied.
    pub fn ledger_mut(&mut self) -> &mut S {
        &mut self.ledger
    }

    /// The Raft driver, for reads.
    pub fn driver(&self) -> &Driver<L> {
        &self.driver
    }

    /// The ledger's node records.
    pub fn nodes(&self) -> &[NodeRecord] {
        &self.nodes
    }

    /// Takes the replica apart (a simulated crash keeps only what the stores wrote).
    pub fn into_parts(self) -> (Driver<L>, S) {
        (self.driver, self.ledger)
    }

    /// Cuts and proposes blocks as leader: up to the proposal window, and an empty block when
    /// a timer (expiry, netting close) or waiting webhook progress falls due. Proposals of an
    /// earlier term are forgotten (they may still commit; their clients retry, which is safe
    /// because retries are idempotent).
    fn propose(&mut self, now: Now, executor: &mut dyn Executor) {
        if !self.driver.is_leader() || self.driver.term() != self.proposed_term {
            let leader = self.driver.leader_id();
            let proposed: Vec<Hash> = self.proposed.drain(..).flat_map(|(_, ids)| ids).collect();
            self.forget(proposed, SubmitError::NotLeader { leader }, executor);
            self.proposed_term = self.driver.term();
        }
        if !self.driver.is_leader() {
            if !self.batcher.is_empty() {
                let leader = self.driver.leader_id();
                self.fail_queued(SubmitError::NotLeader { leader }, executor);
            }
            return;
        }
        while self.in_flight() < self.config.proposals_in_flight_max {
            let Some(mut proposal) = self.next_proposal(now, executor) else {
                return;
            };
            let head = self.ledger.head();
            proposal.attestation = Some((head.height, head.hash));
            proposal.webhooks = executor.take_webhook_progress();
            let ids: Vec<Hash> = proposal
                .transactions
                .iter()
                .map(|bytes| tpw_contracts::transaction_id(bytes))
                .collect();
            if let Err(error) = self.driver.propose(proposal.to_bytes()) {
                tracing::warn!(%error, "block proposal refused");
                executor.restore_webhook_progress(std::mem::take(&mut proposal.webhooks));
                self.forget(ids, SubmitError::Overloaded, executor);
                return;
            }
            if ids.is_empty() {
                return;
            }
            self.proposed.push_back((self.driver.last_index(), ids));
        }
    }

    /// The next block to propose: queued transactions, or an empty block when nothing is in
    /// flight and a timer or webhook progress is due.
    fn next_proposal(&mut self, now: Now, executor: &mut dyn Executor) -> Option<Proposal> {
        if !self.batcher.is_empty() {
            let stamp = self.stamp(now);
            return self.batcher.cut(stamp);
        }
        // A timer falls due by ledger time, never by this machine's clock alone.
        let ledger_now = self
            .ledger_clock
            .estimate(now.monotonic_ms)
            .unwrap_or(self.ledger.head().time_ms);
        let due = crate::batcher::timer_block_due(self.next_expiry_ms, ledger_now)
            || executor.webhook_progress_due(now);
        (self.in_flight() == 0 && due).then(|| Proposal {
            attestation: None,
            proposer_time_ms: self.stamp(now),
            transactions: Vec::new(),
            webhooks: Vec::new(),
        })
    }

    /// The time this leader stamps on the block it proposes now ([`crate::ledger_clock`]).
    fn stamp(&mut self, now: Now) -> u64 {
        self.ledger_clock.stamp(
            now.monotonic_ms,
            now.clock_ms,
            self.ledger.head().time_ms,
            self.config.clock_first_step_max_ms,
        )
    }

    /// Entries proposed (or appended) and not yet applied.
    fn in_flight(&self) -> u64 {
        self.driver
            .last_index()
            .saturating_sub(self.ledger.applied_index())
    }

    fn fail_queued(&mut self, reason: SubmitError, executor: &mut dyn Executor) {
        let dropped: Vec<Hash> = self
            .batcher
            .drain()
            .iter()
            .map(|envelope| tpw_contracts::transaction_id(envelope))
            .collect();
        self.forget(dropped, reason, executor);
    }

    fn forget(&mut self, tx_ids: Vec<Hash>, reason: SubmitError, executor: &mut dyn Executor) {
        if tx_ids.is_empty() {
            return;
        }
        for tx_id in &tx_ids {
            self.preverified.remove(tx_id);
        }
        executor.effect(Effect::Forget { tx_ids, reason });
    }

    /// Runs every ready raft has, in raft-rs' documented order: the first phase is durable
    /// before `advance`, because raft reads the new entries back from the store.
    fn process_ready(
        &mut self,
        now_ms: u64,
        executor: &mut dyn Executor,
    ) -> Result<(), ReplicaError> {
        while let Some(actions) = self.driver.ready_actions() {
            self.execute(actions, now_ms, executor)?;
            let actions = self.driver.advance();
            self.execute(actions, now_ms, executor)?;
            self.driver.advance_apply();
        }
        Ok(())
    }

    fn execute(
        &mut self,
        actions: Vec<Action>,
        now_ms: u64,
        executor: &mut dyn Executor,
    ) -> Result<(), ReplicaError> {
        for action in actions {
            match action {
                Action::ApplySnapshot(snapshot) => self.install_snapshot(&snapshot, executor)?,
                Action::Persist {
                    entries,
                    hard_state,
                } => {
                    executor.effect(Effect::Persisting);
                    self.driver.store().persist(&entries, hard_state.as_ref())?;
                    executor.effect(Effect::Persisted {
                        entries: entries.len(),
                    });
                }
                Action::PersistCommit(commit) => {
                    self.driver.store().persist_commit(commit)?;
                    executor.effect(Effect::CommitRecorded);
                }
                Action::Send(messages) => {
                    for message in &messages {
                        if message.get_msg_type() == MessageType::MsgSnapshot {
                            self.snapshots_sent.insert(message.to, now_ms);
                        }
                    }
                    executor.effect(Effect::Send(messages));
                }
                Action::Apply(entries) => {
                    for entry in &entries {
                        self.apply_entry(entry, executor)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reports as lost the snapshot messages whose delivery was never confirmed, so Raft does
    /// not keep a peer waiting for a snapshot forever.
    fn expire_snapshot_sends(&mut self, now_ms: u64) {
        let overdue: Vec<u64> = self
            .snapshots_sent
            .iter()
            .filter(|(_, sent)| now_ms.saturating_sub(**sent) > SNAPSHOT_STATUS_TIMEOUT_MS)
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

    /// A snapshot stepped into Raft that Raft did not install leaves its staging: release it.
    fn resolve_snapshot_step(&mut self, executor: &mut dyn Executor) {
        if let Some(index) = self.snapshot_stepped.take() {
            executor.effect(Effect::SnapshotReleased { index });
        }
    }

    /// Drops Raft entries more than the retention behind the applied index, in steps of a
    /// quarter of the retention so compaction stays rare; never past a snapshot the log store
    /// still offers to a peer that may be fetching it.
    fn compact_log(&mut self, executor: &mut dyn Executor) -> Result<(), ReplicaError> {
        let retention = self.config.log_retention_entries;
        let applied = self.ledger.applied_index();
        let store = self.driver.store();
        let compacted = store.compacted_index();
        let step = (retention / 4).max(1);
        if applied.saturating_sub(compacted) < retention.saturating_add(step) {
            return Ok(());
        }
        let mut to = applied - retention;
        if let Some(held) = store.snapshot_hold() {
            to = to.min(held);
        }
        if to <= compacted {
            return Ok(());
        }
        store.compact(to)?;
        tracing::debug!(to, "raft log compacted");
        executor.effect(Effect::Compacted { to });
        Ok(())
    }
}
