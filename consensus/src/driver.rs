//! The sans-IO Raft driver: inputs in (tick, peer message, proposal), ordered actions out.
//!
//! One raft-rs `Ready` is handled in two phases, in the order raft-rs documents.
//! [`Driver::ready_actions`]: send the leader's messages, apply a snapshot, apply
//! already-committed entries, persist new entries and hard state, send the messages that must
//! follow persistence. The caller executes them in order; persistence must be durable before
//! [`Driver::advance`], because raft then reads the new entries back from the store. `advance`
//! returns the `LightReady` actions: persist the new commit index, send, and apply what became
//! committed. After executing those, the caller calls [`Driver::advance_apply`].

use crate::log_store::{LogStore, LogStoreError};
use crate::logger::raft_logger;
use crate::membership::{plan, Membership, MembershipChange};
use raft::prelude::{
    ConfChange, ConfChangeType, ConfState, Entry, HardState, Message, MessageType, Snapshot,
};
use raft::{Config, ProgressState, RawNode, StateRole};

/// How a node runs Raft.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// This node's Raft id (non-zero).
    pub id: u64,
    /// Ticks without a leader before campaigning.
    pub election_ticks: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// The last log index already applied to durable state.
    pub applied_index: u64,
    /// When set, the election timeout is exactly this many ticks instead of raft's random
    /// choice (the simulator derives it from its seed, since raft draws from a thread RNG).
    pub fixed_election_ticks: Option<usize>,
}

/// One effect for the caller to carry out, in order.
#[derive(Debug)]
pub enum Action {
    /// Send these messages to their `to` peers.
    Send(Vec<Message>),
    /// Install this snapshot in the log store and the state machine.
    ApplySnapshot(Snapshot),
    /// Durably append entries and set the hard state, in one synced write.
    Persist {
        /// New entries (may overwrite a conflicting suffix).
        entries: Vec<Entry>,
        /// New hard state, if it changed.
        hard_state: Option<HardState>,
    },
    /// Durably record the commit index.
    PersistCommit(u64),
    /// Apply these committed entries to the state machine, in order.
    Apply(Vec<Entry>),
}

/// Why a proposal was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader; `leader` is the known leader, if any.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader's id, if known.
        leader: Option<u64>,
    },
    /// Raft refused the proposal (for example while a leader transfer is under way).
    #[error("proposal dropped by raft: {0}")]
    Dropped(String),
}

/// A fatal driver failure.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// raft-rs refused the configuration or the stored state.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// The log store failed.
    #[error(transparent)]
    Store(#[from] LogStoreError),
}

/// Wraps raft-rs' RawNode.
pub struct Driver<S: LogStore> {
    node: RawNode<S>,
    in_progress: Option<raft::Ready>,
}

impl<S: LogStore> Driver<S> {
    /// Starts a driver over a store that holds the genesis conf state or a persisted log.
    pub fn new(config: &DriverConfig, store: S) -> Result<Self, DriverError> {
        let mut raft_config = Config {
            id: config.id,
            election_tick: config.election_ticks,
            heartbeat_tick: config.heartbeat_ticks,
            applied: config.applied_index,
            max_size_per_msg: crate::limits::MESSAGE_SIZE_MAX,
            max_inflight_msgs: crate::limits::INFLIGHT_MESSAGES_MAX,
            max_committed_size_per_ready: crate::limits::COMMITTED_SIZE_PER_READY_MAX,
            max_uncommitted_size: crate::limits::UNCOMMITTED_SIZE_MAX,
            check_quorum: true,
            pre_vote: true,
            ..Config::default()
        };
        if let Some(ticks) = config.fixed_election_ticks {
            raft_config.election_tick = ticks;
            raft_config.min_election_tick = ticks;
            raft_config.max_election_tick = ticks + 1;
        }
        raft_config.validate()?;
        let node = RawNode::new(&raft_config, store, &raft_logger(config.id))?;
        Ok(Self {
            node,
            in_progress: None,
        })
    }

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.node.tick();
    }

    /// Hands a message from a peer to raft. Messages from unknown peers or stale terms are
    /// ignored by raft itself; an error here means the message was malformed for raft.
    pub fn step(&mut self, mut message: Message) -> Result<(), raft::Error> {
        match message.get_msg_type() {
            MessageType::MsgHeartbeat
                if message.commit > self.last_index() && !self.is_voter(self.node.raft.id) =>
            {
                // A leader that still counts entries this observer lost (it was wiped) names a
                // commit beyond its log, which raft treats as fatal. The commit advances
                // through appends instead, where log matching makes it safe. A node its own
                // configuration does not name at all (an observer added by governance and
                // wiped: it restarts from the genesis configuration) is in the same case; the
                // simulator found it. A voter that lost entries it acknowledged stays fatal:
                // it may have voted on them.
                message.commit = self.commit_index();
            }
            MessageType::MsgAppendResponse if message.reject && self.is_leader() => {
                self.forget_lost_progress(&message);
            }
            _ => {}
        }
        self.node.step(message)
    }

    /// An observer (learner) that lost its data answers with a last index below what the
    /// leader recorded as replicated to it; raft would take that answer for a stale one and
    /// never replicate to it again. Observers do not count toward commit, so the leader can
    /// safely believe the observer and replicate to it from there (or send a snapshot).
    fn forget_lost_progress(&mut self, message: &Message) {
        if !self.is_learner(message.from) {
            return;
        }
        if let Some(progress) = self.node.raft.mut_prs().get_mut(message.from) {
            // Only an answer to the latest probe counts; a late one from before is stale.
            let current = message.index + 1 == progress.next_idx;
            if current && message.reject_hint < progress.matched {
                tracing::warn!(
                    node_id = message.from,
                    recorded = progress.matched,
                    reported = message.reject_hint,
                    "observer lost replicated entries (wiped?); replicating to it anew"
                );
                progress.matched = message.reject_hint;
                progress.become_probe();
            }
        }
    }

    fn is_voter(&self, id: u64) -> bool {
        self.node.raft.prs().conf().voters().contains(id)
    }

    fn is_learner(&self, id: u64) -> bool {
        self.node.raft.prs().conf().learners().contains(&id)
    }

    /// Raft's current configuration.
    pub fn membership(&self) -> Membership {
        Membership::of(&self.node.raft.prs().conf().to_conf_state())
    }

    /// As leader, takes the next single step from Raft's configuration toward `wanted` (the
    /// ledger's node set): proposes one configuration change, or hands leadership over when
    /// this leader must leave. Nothing while a change is still in flight (proposed and not
    /// applied), a leadership transfer is under way, or `wanted` has no voter.
    pub fn reconcile_membership(&mut self, wanted: &Membership) -> Option<MembershipChange> {
        let raft = &self.node.raft;
        if raft.state != StateRole::Leader
            || wanted.voters.is_empty()
            || raft.pending_conf_index > raft.raft_log.applied
            || raft.lead_transferee.is_some()
        {
            return None;
        }
        let current = self.membership();
        let progress = raft.prs();
        let step = plan(wanted, &current, raft.id, raft.raft_log.committed, &|id| {
            progress.get(id).map(|found| found.matched)
        })?;
        let (change_type, node_id) = match step {
            MembershipChange::AddLearner(id) => (ConfChangeType::AddLearnerNode, id),
            MembershipChange::Promote(id) => (ConfChangeType::AddNode, id),
            MembershipChange::Remove(id) => (ConfChangeType::RemoveNode, id),
            MembershipChange::TransferLeadership(id) => {
                self.node.transfer_leader(id);
                return Some(step);
            }
        };
        let change = ConfChange {
            change_type,
            node_id,
            ..Default::default()
        };
        match self.node.propose_conf_change(Vec::new(), change) {
            Ok(()) => Some(step),
            Err(error) => {
                tracing::warn!(%error, ?step, "configuration change not proposed");
                None
            }
        }
    }

    /// As leader, the members that have not replicated the entry at `index` and have not
    /// answered this leader lately (one being sent a snapshot, or that answered, is not
    /// refusing it). For a leader whose key that entry rotated, these are the members that may
    /// still refuse its new key.
    pub fn members_behind_and_silent(&self, index: u64) -> Vec<u64> {
        let raft = &self.node.raft;
        if raft.state != StateRole::Leader {
            return Vec::new();
        }
        raft.prs()
            .iter()
            .filter(|(id, peer)| {
                **id != raft.id
                    && peer.matched < index
                    && !peer.recent_active
                    && peer.state != ProgressState::Snapshot
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// As leader whose own key was rotated by the entry at Raft index `rekeyed_at`: when some
    /// member has not replicated that entry and has not answered this leader (a member still
    /// on the old key refuses this node's connections; one being sent a snapshot, or that
    /// answered, is not refusing it), hands leadership to a voter that has the entry and
    /// answered, and returns [`RekeyHandover::HandedTo`] it. As only the leader sends entries,
    /// such a member would never learn the rotation while this node leads; under another
    /// leader it catches up, applies it and admits this node again. `None` when not leader, a
    /// transfer is under way, no member is in that case, or no voter qualifies.
    pub fn hand_over_after_rekey(&mut self, rekeyed_at: u64) -> Option<u64> {
        let raft = &self.node.raft;
        if raft.state != StateRole::Leader || raft.lead_transferee.is_some() {
            return None;
        }
        if self.members_behind_and_silent(rekeyed_at).is_empty() {
            return None;
        }
        let raft = &self.node.raft;
        let progress = raft.prs();
        let me = raft.id;
        let voters = progress.conf().voters().ids();
        let target = progress
            .iter()
            .filter(|(id, peer)| {
                **id != me
                    && voters.contains(**id)
                    && peer.matched >= rekeyed_at
                    && peer.recent_active
            })
            .max_by_key(|(id, peer)| (peer.matched, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id)?;
        self.node.transfer_leader(target);
        Some(target)
    }

    /// As leader, hands leadership to the voter that has replicated the most of the log and
    /// answered recently (an operator draining this node before maintenance, such as its own
    /// key rotation), and returns it; `None` when not leader, a transfer is under way, or no
    /// other voter qualifies.
    pub fn step_down(&mut self) -> Option<u64> {
        let raft = &self.node.raft;
        if raft.state != StateRole::Leader || raft.lead_transferee.is_some() {
            return None;
        }
        let progress = raft.prs();
        let voters = progress.conf().voters().ids();
        let target = progress
            .iter()
            .filter(|(id, peer)| **id != raft.id && voters.contains(**id) && peer.recent_active)
            .max_by_key(|(id, peer)| (peer.matched, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id)?;
        self.node.transfer_leader(target);
        Some(target)
    }

    /// Whether, as leader, every member has replicated the entry at `index`.
    pub fn all_members_have(&self, index: u64) -> bool {
        let raft = &self.node.raft;
        raft.state == StateRole::Leader
            && raft
                .prs()
                .iter()
                .all(|(id, peer)| *id == raft.id || peer.matched >= index)
    }

    /// Applies a committed configuration change to raft; the caller persists the returned
    /// configuration with the applied index.
    pub fn apply_conf_change(&mut self, change: &ConfChange) -> Result<ConfState, raft::Error> {
        self.node.apply_conf_change(change)
    }

    /// Proposes an encoded block; only the leader accepts proposals.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), ProposeError> {
        if self.node.raft.state != StateRole::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader_id(),
            });
        }
        self.node
            .propose(Vec::new(), data)
            .map_err(|error| ProposeError::Dropped(error.to_string()))
    }

    /// Starts an election at once (used by a single-node network at start-up).
    pub fn campaign(&mut self) -> Result<(), raft::Error> {
        self.node.campaign()
    }

    /// This node's Raft id.
    pub fn id(&self) -> u64 {
        self.node.raft.id
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    /// The known leader's id.
    pub fn leader_id(&self) -> Option<u64> {
        match self.node.raft.leader_id {
            0 => None,
            id => Some(id),
        }
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.node.raft.term
    }

    /// The highest committed log index.
    pub fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    /// The last log index.
    pub fn last_index(&self) -> u64 {
        self.node.raft.raft_log.last_index()
    }

    /// This node's role as a word, for status and metrics.
    pub fn role_name(&self) -> &'static str {
        match self.node.raft.state {
            StateRole::Leader => "leader",
            StateRole::Follower => "follower",
            StateRole::Candidate => "candidate",
            StateRole::PreCandidate => "pre_candidate",
        }
    }

    /// Access to the log store (shared with the node through clones or interior mutability).
    pub fn store(&self) -> &S {
        self.node.store()
    }

    /// The first-phase actions of the next Ready, or `None` when raft has nothing to do.
    /// Call [`Driver::advance`] once they are carried out.
    pub fn ready_actions(&mut self) -> Option<Vec<Action>> {
        assert!(
            self.in_progress.is_none(),
            "advance() must follow ready_actions() before the next ready"
        );
        if !self.node.has_ready() {
            return None;
        }
        let mut ready = self.node.ready();
        let mut actions = Vec::new();
        if !ready.messages().is_empty() {
            actions.push(Action::Send(ready.take_messages()));
        }
        if !ready.snapshot().is_empty() {
            actions.push(Action::ApplySnapshot(ready.snapshot().clone()));
        }
        let committed = ready.take_committed_entries();
        if !committed.is_empty() {
            actions.push(Action::Apply(committed));
        }
        let entries = ready.take_entries();
        let hard_state = ready.hs().cloned();
        if !entries.is_empty() || hard_state.is_some() {
            actions.push(Action::Persist {
                entries,
                hard_state,
            });
        }
        if !ready.persisted_messages().is_empty() {
            actions.push(Action::Send(ready.take_persisted_messages()));
        }
        self.in_progress = Some(ready);
        Some(actions)
    }

    /// Second phase, after the first phase's actions are durable: the actions of the LightReady.
    pub fn advance(&mut self) -> Vec<Action> {
        let ready = self
            .in_progress
            .take()
            .expect("advance() follows ready_actions()");
        let mut light = self.node.advance(ready);
        let mut actions = Vec::new();
        if let Some(commit) = light.commit_index() {
            actions.push(Action::PersistCommit(commit));
        }
        if !light.messages().is_empty() {
            actions.push(Action::Send(light.take_messages()));
        }
        let committed = light.take_committed_entries();
        if !committed.is_empty() {
            actions.push(Action::Apply(committed));
        }
        actions
    }

    /// Tells raft that every `Apply` action handed out so far has been applied.
    pub fn advance_apply(&mut self) {
        self.node.advance_apply();
    }

    /// Tells raft whether a snapshot message reached a peer, so it resumes replication to it
    /// (after a failure, from a fresh probe).
    pub fn report_snapshot(&mut self, peer: u64, delivered: bool) {
        let status = if delivered {
            raft::SnapshotStatus::Finish
        } else {
            raft::SnapshotStatus::Failure
        };
        self.node.report_snapshot(peer, status);
    }

    /// Tells raft a peer could not be reached, so it stops pipelining to it.
    pub fn report_unreachable(&mut self, peer: u64) {
        self.node.report_unreachable(peer);
    }
}

/// Carries out the persistence actions against a log store; other actions are the caller's.
pub fn persist_action<S: LogStore>(store: &S, action: &Action) -> Result<(), LogStoreError> {
    match action {
        Action::Persist {
            entries,
            hard_state,
        } => store.persist(entries, hard_state.as_ref()),
        Action::PersistCommit(commit) => store.persist_commit(*commit),
        Action::ApplySnapshot(snapshot) => store.apply_snapshot(snapshot.clone()),
        Action::Send(_) | Action::Apply(_) => Ok(()),
    }
}
