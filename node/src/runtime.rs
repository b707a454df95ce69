//! The raft loop: one OS thread that executes the replica engine (`tpw_consensus::Replica`)
//! over RocksDB, libp2p and the API's waiting clients.
//!
//! Each iteration takes queued commands and peer input, hands them to the engine, and polls
//! it; the engine decides everything (ticks, blocks, membership, hand-overs, compaction,
//! snapshots) and hands its effects to [`NodeExecutor`] in order: messages go to the network
//! queue as they come (so a leader's appends leave before its own synced write), crash points
//! sit at each persist/apply boundary, and commits wake the clients waiting for them. Blocking
//! RocksDB writes stay off the async runtime, and while one block is being persisted the next
//! one fills (group commit).

mod membership;

use crate::limits::{COMMANDS_PER_ITERATION_MAX, PEER_INPUTS_PER_ITERATION_MAX, RECEIVED_AGE_MAX};
use crate::metrics::Metrics;
use crate::storage::{LedgerStore, RaftLogStore, StorageError};
use membership::MemberSync;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tpw_consensus::{Alarm, Effect, Executor, Now, Replica, ReplicaError};

pub use crate::mailbox::{
    Command, Committed, InFlight, RaftInbox, RuntimeStatus, Shared, StepDownError, SubmitError,
    Waiter,
};
pub(crate) use membership::members_of;

/// A fatal runtime failure: the node stops.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Storage failed or is corrupt.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The replica engine failed (a store, or a broken invariant).
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub use crate::clock::now_ms;

/// The engine as the node runs it.
pub type NodeReplica = Replica<RaftLogStore, LedgerStore>;

/// Carries out the engine's effects over the node's shared state and network.
pub struct NodeExecutor {
    shared: Arc<Shared>,
    members: MemberSync,
    /// Snapshot messages the network could not send, reported back to the engine.
    unsent_snapshots: Vec<u64>,
    persist_started: Option<Instant>,
    apply_started: Option<Instant>,
    db: crate::storage::Db,
}

impl NodeExecutor {
    fn wake(&mut self, height: u64, receipts: Vec<tpw_contracts::Receipt>) {
        let metrics = &self.shared.metrics;
        Metrics::add(&metrics.blocks_applied, 1);
        if let Some(started) = self.apply_started.take() {
            Metrics::add(&metrics.apply_micros, started.elapsed().as_micros() as u64);
        }
        let rejected = receipts
            .iter()
            .filter(|receipt| receipt.code != tpw_contracts::ResultCode::Ok)
            .count() as u64;
        Metrics::add(&metrics.transactions_applied_rejected, rejected);
        Metrics::add(
            &metrics.transactions_applied_ok,
            receipts.len() as u64 - rejected,
        );
        self.shared.head_height.send_replace(height);
        let mut in_flight = lock(&self.shared.in_flight);
        for (position, receipt) in receipts.into_iter().enumerate() {
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
    }

    fn forget(&mut self, tx_ids: Vec<tpw_contracts::model::Hash>, reason: &SubmitError) {
        let mut in_flight = lock(&self.shared.in_flight);
        for tx_id in tx_ids {
            in_flight.forget(&tx_id, reason);
        }
        Metrics::set(
            &self.shared.metrics.waiters,
            in_flight.waiter_count() as u64,
        );
    }

    fn release_snapshot(&mut self, index: u64) {
        let gate = &self.shared.snapshot_gate;
        if gate.stepped() != Some(index) {
            return;
        }
        tracing::info!(
            index,
            "staged snapshot not needed by Raft; staging released"
        );
        if let Err(error) = crate::storage::Staging::new(self.db.clone()).clear() {
            tracing::error!(%error, "could not release the snapshot staging area");
            return;
        }
        gate.clear();
    }
}

impl Executor for NodeExecutor {
    fn effect(&mut self, effect: Effect<'_>) {
        let metrics = &self.shared.metrics;
        match effect {
            Effect::Send(messages) => self.members.send(messages, &mut self.unsent_snapshots),
            Effect::Persisting => {
                crate::failpoint::point("raft_persist_before");
                self.persist_started = Some(Instant::now());
            }
            Effect::Persisted { .. } => {
                crate::failpoint::point("raft_persist_after");
                Metrics::add(&metrics.persists, 1);
                if let Some(started) = self.persist_started.take() {
                    Metrics::add(
                        &metrics.persist_micros,
                        started.elapsed().as_micros() as u64,
                    );
                }
            }
            Effect::CommitRecorded => crate::failpoint::point("raft_commit_after"),
            Effect::Applying { .. } => {
                crate::failpoint::point("apply_before");
                self.apply_started = Some(Instant::now());
            }
            Effect::Committed { height, receipts } => {
                crate::failpoint::point("apply_after");
                self.wake(height, receipts);
            }
            Effect::EntryApplied { .. } => {}
            Effect::Forget { tx_ids, reason } => self.forget(tx_ids, &reason),
            Effect::NodeSet { peers } => self.members.update(peers),
            Effect::SignersChanged => {
                self.shared
                    .signer_generation
                    .fetch_add(1, Ordering::Release);
            }
            Effect::ConfChanged { .. } => Metrics::add(&metrics.conf_changes_applied, 1),
            Effect::SnapshotInstalled { .. } => {
                Metrics::add(&metrics.snapshots_installed, 1);
                self.shared.snapshot_gate.clear();
                self.shared.snapshot_installed.notify_one();
            }
            Effect::SnapshotReleased { index } => self.release_snapshot(index),
            Effect::Compacted { to } => {
                crate::failpoint::point("compact_after");
                Metrics::set(&metrics.log_compacted_index, to);
            }
            Effect::HandedOver { .. } => {}
            Effect::Alarm(Alarm::Divergence { .. }) => Metrics::add(&metrics.divergence_alarms, 1),
            Effect::Alarm(_) => {}
        }
    }

    fn webhook_progress_due(&mut self, _now: Now) -> bool {
        lock(&self.shared.webhook_checkpoint).due()
    }

    fn take_webhook_progress(&mut self) -> Vec<tpw_contracts::block::WebhookProgress> {
        lock(&self.shared.webhook_checkpoint).take()
    }

    fn restore_webhook_progress(&mut self, progress: Vec<tpw_contracts::block::WebhookProgress>) {
        lock(&self.shared.webhook_checkpoint).restore(progress);
    }
}

/// The raft loop's state.
pub struct Runtime {
    replica: NodeReplica,
    executor: NodeExecutor,
    commands: Receiver<Command>,
    peer_input: Receiver<Command>,
    started: Instant,
    /// Alarm when this machine's clock and ledger time differ by more than this.
    skew_alarm_ms: u64,
    /// Whether the clock alarm is raised (it logs when it changes).
    skew_alarmed: std::cell::Cell<bool>,
}

impl Runtime {
    /// Assembles the loop around an engine built over the node's stores.
    pub fn new(
        replica: NodeReplica,
        commands: Receiver<Command>,
        peer_input: Receiver<Command>,
        shared: Arc<Shared>,
        started: Instant,
    ) -> Self {
        let db = replica.ledger().db().clone();
        let runtime = Self {
            replica,
            executor: NodeExecutor {
                shared,
                members: MemberSync::default(),
                unsent_snapshots: Vec::new(),
                persist_started: None,
                apply_started: None,
                db,
            },
            commands,
            peer_input,
            started,
            skew_alarm_ms: crate::config::ClockConfig::default().skew_alarm_ms,
            skew_alarmed: std::cell::Cell::new(false),
        };
        // Published before the API starts, so no reader ever sees an empty status.
        runtime.publish_status();
        runtime
    }

    /// Raises the clock alarm past `skew_alarm_ms` (`clock.skew_alarm_ms`).
    pub fn with_skew_alarm_ms(mut self, skew_alarm_ms: u64) -> Self {
        self.skew_alarm_ms = skew_alarm_ms;
        self
    }

    /// Compares this machine's clock with ledger time: the metrics, and a log line when the
    /// alarm is raised or cleared. Returns wall clock minus ledger time, once known.
    fn check_clock(&self) -> Option<i64> {
        let now = self.now();
        let ledger_ms = self.replica.ledger_time_ms(now.monotonic_ms)?;
        let offset = now.clock_ms as i64 - ledger_ms as i64;
        let skew = offset.unsigned_abs();
        let alarmed = skew > self.skew_alarm_ms;
        let metrics = &self.executor.shared.metrics;
        Metrics::set(&metrics.clock_skew_ms, skew);
        Metrics::set(&metrics.clock_skew_alarm, u64::from(alarmed));
        if alarmed != self.skew_alarmed.replace(alarmed) {
            if alarmed {
                tracing::warn!(
                    offset_ms = offset,
                    bound_ms = self.skew_alarm_ms,
                    "this machine's clock and ledger time differ by more than clock.skew_alarm_ms; blocks this node stamps move toward its clock by at most 5% of the time that passes"
                );
            } else {
                tracing::info!(
                    offset_ms = offset,
                    "this machine's clock is within clock.skew_alarm_ms of ledger time again"
                );
            }
        }
        Some(offset)
    }

    /// Sends Raft messages through this network (a one-node group needs none); peers are
    /// dialled at their `configured` addresses, else at the ones the ledger records.
    pub fn with_network(
        mut self,
        network: crate::network::NetworkHandle,
        configured: std::collections::BTreeMap<u64, std::net::SocketAddr>,
    ) -> Self {
        self.executor.members.connect(network, configured);
        self
    }

    fn now(&self) -> Now {
        Now {
            monotonic_ms: self.started.elapsed().as_millis() as u64,
            clock_ms: now_ms(),
        }
    }

    /// Runs until [`Shared::stopping`] is set or the command channel closes.
    pub fn run(mut self) -> Result<(), RuntimeError> {
        let mut next_sweep = Instant::now() + RECEIVED_AGE_MAX / 4;
        while !self.executor.shared.stopping.load(Ordering::Relaxed) {
            let due_ms = self.replica.next_timeout_ms();
            let wait = Duration::from_millis(due_ms.saturating_sub(self.now().monotonic_ms));
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
            if Instant::now() >= next_sweep {
                let expired = lock(&self.executor.shared.in_flight).expire(RECEIVED_AGE_MAX);
                if expired > 0 {
                    tracing::warn!(
                        expired,
                        "transactions not applied in time were released for resubmission"
                    );
                }
                next_sweep = Instant::now() + RECEIVED_AGE_MAX / 4;
            }
            let now = self.now();
            self.replica.poll(now, &mut self.executor)?;
            for node in std::mem::take(&mut self.executor.unsent_snapshots) {
                self.replica.handle_snapshot_status(node, false);
            }
            self.executor.members.retry();
            self.publish_status();
        }
        self.replica.stop(&mut self.executor);
        Ok(())
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Submit { envelopes, reply } => {
                let count = envelopes.len() as u64;
                let result = self.replica.handle_submit(envelopes);
                if result.is_ok() {
                    Metrics::add(&self.executor.shared.metrics.transactions_submitted, count);
                }
                let _ = reply.send(result);
            }
            Command::Step(message) => self.replica.handle_message(*message),
            Command::Unreachable(node) => self.replica.handle_unreachable(node),
            Command::SnapshotStatus { node, delivered } => {
                self.replica.handle_snapshot_status(node, delivered)
            }
            Command::Vouched { height, records } => {
                self.replica.handle_vouched_nodes(height, records)
            }
            Command::Wake => {}
            Command::StepDown { reply } => {
                let _ = reply.send(self.replica.handle_step_down());
            }
        }
    }

    fn publish_status(&self) {
        let engine = self.replica.status();
        let head = tpw_consensus::ReplicaLedger::<RaftLogStore>::head(self.replica.ledger());
        let status = RuntimeStatus {
            role: engine.role,
            term: engine.term,
            leader_id: engine.leader_id,
            commit_index: engine.commit_index,
            applied_index: engine.applied_index,
            height: head.height,
            head_hash: head.hash,
            state_root: head.commitment.root(),
            block_time_ms: head.time_ms,
            queue_depth: engine.queue_depth,
            voters: engine.membership.voters.iter().copied().collect(),
            learners: engine.membership.learners.iter().copied().collect(),
            observer: engine.observer,
            clock_offset_ms: self.check_clock(),
            clock_skew_alarm_ms: self.skew_alarm_ms,
        };
        let shared = &self.executor.shared;
        shared.head_height.send_if_modified(|height| {
            let changed = *height != status.height;
            *height = status.height;
            changed
        });
        let metrics = &shared.metrics;
        Metrics::set(&metrics.height, status.height);
        Metrics::set(&metrics.term, status.term);
        Metrics::set(&metrics.is_leader, u64::from(status.role == "leader"));
        Metrics::set(
            &metrics.apply_lag,
            status.commit_index.saturating_sub(status.applied_index),
        );
        Metrics::set(&metrics.raft_voters, status.voters.len() as u64);
        Metrics::set(&metrics.raft_learners, status.learners.len() as u64);
        Metrics::set(&metrics.commit_index, status.commit_index);
        Metrics::set(&metrics.applied_index, status.applied_index);
        Metrics::set(&metrics.queue_depth, status.queue_depth as u64);
        *shared
            .status
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = status;
    }
}
