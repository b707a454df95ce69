//! The simulated consortium operators: changes to the node set made through governance, the
//! way docs/operating.md tells operators to make them, under the same faults as everything
//! else. Each change is a proposal by one bank member and the approval of the other (M = 2 of
//! 2), submitted like any client's transactions (retried on silence and redirects); then the
//! operators' part: a new node is started on an empty folder before it is proposed, a node
//! whose key rotation was decided is restarted on its new key, and a removed node is stopped
//! once Raft no longer counts it.

use super::client::named_key;
use super::net::{Answer, Endpoint, Envelope, Payload};
use super::rng::SimRng;
use crate::limits::{SIM_CHANGE_TIMEOUT_MS, SIM_OPERATOR_RETRY_AFTER_MS};
use crate::network::BANKS;
use tpw_contracts::genesis::NodeRole;
use tpw_contracts::governance::GovernanceAction;
use tpw_contracts::model::Hash;
use tpw_contracts::ops::{ApproveProposal, Propose};
use tpw_contracts::{transaction_id, Body, Operation, Transaction, Validity};

/// Proposal ids from here on, apart from the workload's.
const PROPOSAL_BASE: u64 = 1 << 50;

/// A change to the node set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    AddVoter,
    AddObserver,
    RemoveVoter,
    RotateKey,
}

/// What the world must do for the operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chore {
    /// Start a new node on an empty folder (it joins once the change is decided).
    StartNode { id: u64, voter: bool },
    /// The rotation of `node`'s key was decided: restart it on its next key.
    RestartOnNewKey { node: u64 },
    /// `node` was removed and Raft no longer counts it: stop it for good.
    Retire { node: u64 },
}

/// The state of the node set as the operators read it from a node, each check.
pub struct Observed {
    /// Whether `target`'s record (if any) has the key of `generation`.
    pub key_is: Option<bool>,
    /// Whether the ledger records `target` as active.
    pub target_active: Option<bool>,
    /// Whether some leader's Raft configuration still names `target`.
    pub target_in_raft: bool,
    /// Whether every running node's ledger shows the change (as `key_is`/`target_active` say
    /// for the most advanced one).
    pub everywhere: bool,
}

struct Request {
    envelope: Vec<u8>,
    tx_id: Hash,
    resend_at_ms: u64,
    target: Option<u64>,
}

struct InProgress {
    kind: ChangeKind,
    node: u64,
    /// For a rotation: the key generation proposed.
    generation: u64,
    proposal: u64,
    /// Transactions still to commit: the proposal, then the approval.
    queue: Vec<Vec<u8>>,
    request: Option<Request>,
    started_ms: u64,
    /// The decision is on the ledger (the operators then do their part).
    decided: bool,
}

/// The operators of every bank.
pub struct Operators {
    /// The client index their answers come to.
    pub endpoint: usize,
    rng: SimRng,
    network_id: Hash,
    plan: Vec<ChangeKind>,
    next_at_ms: u64,
    current: Option<InProgress>,
    next_proposal: u64,
    /// The next id for a new node.
    pub next_node_id: u64,
    leader_hint: Option<u64>,
    /// Changes whose decision reached the ledger.
    pub decided: u64,
}

impl Operators {
    /// Operators that will make the changes the seed draws, starting after `start_ms`.
    pub fn new(
        endpoint: usize,
        network_id: Hash,
        voter_count: usize,
        next_node_id: u64,
        start_ms: u64,
        rng: &mut SimRng,
    ) -> Self {
        let mut rng = rng.fork();
        // Every run rotates a key and adds a voter; a run with 3 voters removes one only after
        // the add, so it keeps a majority the faults can work against.
        let mut plan = vec![ChangeKind::AddVoter, ChangeKind::RotateKey];
        if rng.below(2) == 0 {
            plan.push(ChangeKind::AddObserver);
        }
        plan.push(ChangeKind::RemoveVoter);
        for index in (1..plan.len()).rev() {
            let other = rng.below(index as u64 + 1) as usize;
            plan.swap(index, other);
        }
        if voter_count < 5 {
            let remove = plan
                .iter()
                .position(|kind| *kind == ChangeKind::RemoveVoter);
            let add = plan.iter().position(|kind| *kind == ChangeKind::AddVoter);
            if let (Some(remove), Some(add)) = (remove, add) {
                if remove < add {
                    plan.swap(remove, add);
                }
            }
        }
        plan.reverse();
        let next_at_ms = start_ms + rng.between(1_000, 4_000);
        Self {
            endpoint,
            rng,
            network_id,
            plan,
            next_at_ms,
            current: None,
            next_proposal: PROPOSAL_BASE,
            next_node_id,
            leader_hint: None,
            decided: 0,
        }
    }

    /// Whether a change is under way or waits to start.
    pub fn busy(&self) -> bool {
        self.current.is_some()
    }

    /// Whether a started change still waits for its operators' part.
    pub fn change_in_progress(&self) -> Option<(ChangeKind, u64)> {
        self.current
            .as_ref()
            .map(|change| (change.kind, change.node))
    }

    /// The node the current change is about and the key generation it proposes.
    pub fn target(&self) -> Option<(u64, u64)> {
        self.current
            .as_ref()
            .map(|change| (change.node, change.generation))
    }

    /// Starts the next change when due (if `generate`), choosing its node from `voters` (the
    /// active voters and, for a rotation, their current key generations) and `leader`.
    pub fn start_next(
        &mut self,
        now_ms: u64,
        generate: bool,
        voters: &[(u64, u64)],
        leader: Option<u64>,
        chores: &mut Vec<Chore>,
    ) {
        if self.current.is_some() || !generate || now_ms < self.next_at_ms {
            return;
        }
        let Some(kind) = self.plan.pop() else {
            return;
        };
        let Some((node, generation, action)) = self.choose(kind, voters, leader, chores) else {
            return;
        };
        let (proposal, queue) = self.sign_change(now_ms, action);
        self.current = Some(InProgress {
            kind,
            node,
            generation,
            proposal,
            queue,
            request: None,
            started_ms: now_ms,
            decided: false,
        });
    }

    /// The change of `kind` to make now: its node, the key generation it proposes, and the
    /// governance action; `None` when no node fits (too few voters to remove one).
    fn choose(
        &mut self,
        kind: ChangeKind,
        voters: &[(u64, u64)],
        leader: Option<u64>,
        chores: &mut Vec<Chore>,
    ) -> Option<(u64, u64, GovernanceAction)> {
        let pick = |rng: &mut SimRng| -> Option<(u64, u64)> {
            // Half the time the leader itself: the hard case for removal and re-keying.
            match leader.and_then(|leader| voters.iter().find(|(id, _)| *id == leader)) {
                Some(found) if rng.below(2) == 0 => Some(*found),
                _ if voters.is_empty() => None,
                _ => Some(voters[rng.below(voters.len() as u64) as usize]),
            }
        };
        let (node, generation, action) = match kind {
            ChangeKind::AddVoter | ChangeKind::AddObserver => {
                let id = self.next_node_id;
                self.next_node_id += 1;
                let voter = kind == ChangeKind::AddVoter;
                chores.push(Chore::StartNode { id, voter });
                let action = GovernanceAction::AddNode {
                    node: id,
                    name: format!("node-{id}"),
                    public_key: super::node::node_key(id, 0).verifying_key().to_bytes(),
                    role: if voter {
                        NodeRole::Voter
                    } else {
                        NodeRole::Observer
                    },
                    address: format!("10.0.0.{id}:7000"),
                };
                (id, 0, action)
            }
            ChangeKind::RemoveVoter if voters.len() < 3 => return None,
            ChangeKind::RemoveVoter => {
                let (node, _) = pick(&mut self.rng)?;
                (node, 0, GovernanceAction::RemoveNode { node })
            }
            ChangeKind::RotateKey => {
                let (node, generation) = pick(&mut self.rng)?;
                let public_key = super::node::node_key(node, generation + 1)
                    .verifying_key()
                    .to_bytes();
                let action = GovernanceAction::RotateNodeKey { node, public_key };
                (node, generation + 1, action)
            }
        };
        Some((node, generation, action))
    }

    /// The change's proposal id and its two envelopes, signed: the first bank proposes, the
    /// second approves (queued so that the proposal goes first).
    fn sign_change(&mut self, now_ms: u64, action: GovernanceAction) -> (u64, Vec<Vec<u8>>) {
        let proposal = self.next_proposal;
        self.next_proposal += 1;
        // The operator's changes are each its own: the proposal id makes the nonce.
        let validity = |role: u64| Validity::new(proposal * 2 + role, now_ms + 600_000);
        let propose = Transaction::sign(
            self.network_id,
            &named_key(BANKS[0]),
            validity(0),
            Body::single(Operation::Propose(Propose {
                proposal,
                expires_at_ms: now_ms + 3_600_000,
                action,
            })),
        )
        .to_bytes();
        let approve = Transaction::sign(
            self.network_id,
            &named_key(BANKS[1]),
            validity(1),
            Body::single(Operation::ApproveProposal(ApproveProposal { proposal })),
        )
        .to_bytes();
        (proposal, vec![approve, propose])
    }

    /// Sends the change's next transaction, or the outstanding one again after silence.
    pub fn act(&mut self, now_ms: u64, voters: &[u64], out: &mut Vec<Envelope>) {
        let Some(change) = self.current.as_mut() else {
            return;
        };
        if change.request.is_none() {
            let Some(envelope) = change.queue.pop() else {
                return;
            };
            change.request = Some(Request {
                tx_id: transaction_id(&envelope),
                envelope,
                resend_at_ms: now_ms,
                target: None,
            });
        }
        let Some(request) = change.request.as_mut() else {
            return;
        };
        if now_ms < request.resend_at_ms || voters.is_empty() {
            return;
        }
        let target = match request.target.or(self.leader_hint) {
            Some(node) if voters.contains(&node) => node,
            _ => voters[self.rng.below(voters.len() as u64) as usize],
        };
        request.target = None;
        request.resend_at_ms = now_ms + SIM_OPERATOR_RETRY_AFTER_MS;
        out.push(Envelope {
            from: Endpoint::Client(self.endpoint),
            to: Endpoint::Node(target),
            payload: Payload::Submit {
                envelope: request.envelope.clone(),
                tx_id: request.tx_id,
            },
        });
    }

    /// Takes a node's answer.
    pub fn answer(&mut self, now_ms: u64, from: Endpoint, tx_id: Hash, answer: Answer) {
        let Some(change) = self.current.as_mut() else {
            return;
        };
        let Some(request) = change.request.as_mut() else {
            return;
        };
        if request.tx_id != tx_id {
            return;
        }
        match answer {
            Answer::Committed { .. } | Answer::Refused => {
                if let Endpoint::Node(node) = from {
                    self.leader_hint = Some(node);
                }
                change.request = None;
            }
            Answer::NotLeader(hint) => {
                self.leader_hint = hint;
                request.target = hint;
                request.resend_at_ms = now_ms + 20;
            }
            Answer::Retry => {
                self.leader_hint = None;
                request.resend_at_ms = now_ms + 50;
            }
        }
    }

    /// Looks at the node set as a node reads it and does the operators' part of the change
    /// under way: its decision noted, the rotated node restarted, the removed one stopped.
    pub fn check(&mut self, now_ms: u64, observed: &Observed, chores: &mut Vec<Chore>) {
        let Some(change) = self.current.as_mut() else {
            return;
        };
        let decided = match change.kind {
            ChangeKind::AddVoter | ChangeKind::AddObserver => observed.target_active == Some(true),
            ChangeKind::RemoveVoter => observed.target_active == Some(false),
            ChangeKind::RotateKey => observed.key_is == Some(true),
        };
        if decided && !change.decided {
            change.decided = true;
            self.decided += 1;
            if change.kind == ChangeKind::RotateKey {
                chores.push(Chore::RestartOnNewKey { node: change.node });
            }
        }
        // As the runbook says: one change at a time, the next only once every node shows it,
        // so a node away across changes never misses every member it knows.
        let done = match change.kind {
            ChangeKind::RemoveVoter
                if change.decided
                    && !observed.target_in_raft
                    && (observed.everywhere
                        || now_ms.saturating_sub(change.started_ms) > SIM_CHANGE_TIMEOUT_MS) =>
            {
                chores.push(Chore::Retire { node: change.node });
                true
            }
            ChangeKind::RemoveVoter => false,
            _ => change.decided && observed.everywhere,
        };
        // A change that never got decided, or whose decision some node takes long to show,
        // is left after a while; a decided removal is not: its node must be stopped once Raft
        // no longer counts it, or it would run on, removed, forever.
        let decided_removal = change.decided && change.kind == ChangeKind::RemoveVoter;
        let gave_up = now_ms.saturating_sub(change.started_ms) > SIM_CHANGE_TIMEOUT_MS
            && change.request.is_none()
            && change.queue.is_empty()
            && !decided_removal
            && (!change.decided || !observed.everywhere);
        if done || gave_up {
            let _ = change.proposal;
            self.current = None;
            self.next_at_ms = now_ms + self.rng.between(1_000, 3_000);
        }
    }
}
