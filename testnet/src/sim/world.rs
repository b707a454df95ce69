//! The simulated world of one run: nodes, clients, the operators, the network between them,
//! the faults, and the checks made as the run goes (one leader per term, one entry per index,
//! one block per height, commits only on a quorum of the leader's configuration, and every
//! configuration the one the ledger records).

use super::check;
use super::client::{named_key, Client};
use super::net::{Endpoint, Envelope, Network, Payload, Weather};
use super::node::{node_key, NodeEvent, NodeSetup, Sabotage, SimNode};
use super::operator::{Chore, Observed, Operators};
use super::rng::SimRng;
use super::{CLIENTS, GENESIS_TIME_MS, PARTNERS};
use crate::limits::{
    SIM_CLOCK_JUMP_MAX_MS, SIM_LEDGER_TIME_AHEAD_MAX_MS, SIM_OPERATORS_CHECK_INTERVAL_MS,
    SIM_OPERATOR_RESTART_MS,
};
use std::collections::{BTreeMap, BTreeSet};
use tpw_consensus::raft_types::MessageType;
use tpw_contracts::genesis::{GenesisNode, NodeRole};

/// The simulated network's genesis: the load genesis of the local networks, over these
/// voters and learners, with every key derived from its id.
fn simulated_genesis(
    voters: &[u64],
    learners: &[u64],
) -> Result<tpw_contracts::GenesisState, String> {
    let nodes_genesis: Vec<GenesisNode> = voters
        .iter()
        .chain(learners)
        .map(|id| GenesisNode {
            id: *id,
            name: format!("node-{id}"),
            public_key: hex::encode(node_key(*id, 0).verifying_key().to_bytes()),
            role: if voters.contains(id) {
                NodeRole::Voter
            } else {
                NodeRole::Observer
            },
        })
        .collect();
    let keys = crate::network::ParticipantKeys {
        named: [
            crate::network::BANKS[0],
            crate::network::BANKS[1],
            crate::network::REGULATOR,
            crate::network::OPERATOR,
        ]
        .iter()
        .map(|id| (*id, named_key(*id).verifying_key().to_bytes()))
        .collect(),
        partners: (0..PARTNERS)
            .map(|index| {
                crate::network::partner_key(index)
                    .verifying_key()
                    .to_bytes()
            })
            .collect(),
    };
    crate::network::load_genesis(&keys, nodes_genesis, GENESIS_TIME_MS)
        .map_err(|error| error.to_string())?
        .build()
        .map_err(|error| error.to_string())
}

/// The simulated world of one run.
pub(super) struct World {
    pub now_ms: u64,
    pub rng: SimRng,
    pub network: Network,
    pub nodes: Vec<SimNode>,
    pub clients: Vec<Client>,
    pub operators: Operators,
    pub genesis: tpw_contracts::GenesisState,
    pub genesis_conf: (Vec<u64>, Vec<u64>),
    pub online: check::Online,
    digest: blake3::Hasher,
    pub faults: u64,
    sabotage: Sabotage,
    /// Node index -> when a crashed node restarts.
    restart_at: BTreeMap<usize, u64>,
    /// Node index -> when a paused node resumes.
    resume_at: BTreeMap<usize, u64>,
    /// Node index -> when a node's jumped wall clock is set right.
    clock_restore_at: BTreeMap<usize, u64>,
    /// Messages that reached a paused node, delivered when it resumes.
    held: BTreeMap<usize, Vec<Envelope>>,
    pub failure: Option<String>,
    /// Acknowledged appends: (leader, term, follower) -> highest index acknowledged.
    acks: BTreeMap<(u64, u64, u64), u64>,
    /// Highest commit index seen per (leader, term).
    commits: BTreeMap<(u64, u64), u64>,
    /// Raft indexes of the configuration changes applied.
    pub conf_changes: BTreeSet<u64>,
    /// (node, index) of own-key rotations applied.
    pub rekeys: BTreeSet<(u64, u64)>,
    /// Snapshots installed, over every node.
    pub snapshots_installed: u64,
    /// Jumps of a node's wall clock injected.
    pub clock_jumps: u64,
}

impl World {
    pub fn new(seed: u64, sabotage: Sabotage) -> Result<Self, String> {
        let mut rng = SimRng::new(seed);
        let voter_count = if rng.below(3) == 0 { 5 } else { 3 };
        let observer_count = rng.below(2);
        let voters: Vec<u64> = (1..=voter_count).collect();
        let learners: Vec<u64> = (voter_count + 1..=voter_count + observer_count).collect();
        let genesis = simulated_genesis(&voters, &learners)?;
        let start_ms = GENESIS_TIME_MS + 1_000;
        let mut nodes = Vec::new();
        for id in voters.iter().chain(&learners) {
            let setup = NodeSetup {
                id: *id,
                voter: voters.contains(id),
                genesis_conf: (&voters, &learners),
                clock_skew_ms: rng.below(401) as i64 - 200,
                sabotage,
            };
            nodes.push(SimNode::new(setup, &genesis, &mut rng, start_ms)?);
        }
        let network_id = genesis.head.network_id;
        let clients = (0..CLIENTS)
            .map(|index| Client::new(index, PARTNERS, network_id, &mut rng))
            .collect();
        let next_node_id = voter_count + observer_count + 1;
        let operators = Operators::new(
            CLIENTS,
            network_id,
            voters.len(),
            next_node_id,
            start_ms,
            &mut rng,
        );
        Ok(Self {
            now_ms: start_ms,
            rng,
            network: Network::new(),
            nodes,
            clients,
            operators,
            genesis,
            genesis_conf: (voters, learners),
            online: check::Online::default(),
            digest: blake3::Hasher::new(),
            faults: 0,
            sabotage,
            restart_at: BTreeMap::new(),
            resume_at: BTreeMap::new(),
            clock_restore_at: BTreeMap::new(),
            held: BTreeMap::new(),
            failure: None,
            acks: BTreeMap::new(),
            commits: BTreeMap::new(),
            conf_changes: BTreeSet::new(),
            rekeys: BTreeSet::new(),
            snapshots_installed: 0,
            clock_jumps: 0,
        })
    }

    pub fn fail(&mut self, reason: String) {
        if self.failure.is_none() {
            self.failure = Some(reason);
        }
    }

    /// Whether the run already failed: an error, or a violation seen as it went.
    pub fn failed(&self) -> bool {
        self.failure.is_some() || !self.online.violations.is_empty()
    }

    pub fn note(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.digest.update(part);
        }
    }

    pub fn digest(&self) -> String {
        self.digest.finalize().to_hex().to_string()
    }

    /// The nodes clients submit to: voters that were not retired.
    pub fn voters(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|node| node.voter && !node.retired)
            .map(|node| node.id)
            .collect()
    }

    fn send_all(&mut self, out: Vec<Envelope>) {
        for envelope in out {
            let snapshot_to = match (&envelope.payload, envelope.from, envelope.to) {
                (Payload::Raft(message), Endpoint::Node(from), Endpoint::Node(to))
                    if message.get_msg_type() == MessageType::MsgSnapshot =>
                {
                    Some((from, to))
                }
                _ => None,
            };
            let sent = self.network.send(&mut self.rng, self.now_ms, envelope);
            if let (false, Some((from, to))) = (sent, snapshot_to) {
                // The transport's request fails: its sender hears so.
                self.snapshot_status(from, to, false);
            }
        }
    }

    /// Tells node `from` (locally, as its transport would) whether its snapshot message
    /// reached `to`.
    fn snapshot_status(&mut self, from: u64, to: u64, delivered: bool) {
        let envelope = Envelope {
            from: Endpoint::Node(from),
            to: Endpoint::Node(from),
            payload: Payload::SnapshotStatus {
                peer: to,
                delivered,
            },
        };
        self.network.send(&mut self.rng, self.now_ms, envelope);
    }

    fn take_events(&mut self, events: Vec<NodeEvent>) {
        for event in events {
            match event {
                NodeEvent::Applied {
                    node,
                    index,
                    term,
                    data_hash,
                    block,
                    stamp_ms,
                } => {
                    // Ledger time never runs ahead of real time by more than the bound, whatever
                    // a leader's clock does: no time rule fires earlier than that.
                    if let Some(stamp_ms) = stamp_ms {
                        if stamp_ms > self.now_ms + SIM_LEDGER_TIME_AHEAD_MAX_MS {
                            self.online.record(format!(
                                "block at index {index} stamped {stamp_ms} ms, {} ms ahead of real time (bound {SIM_LEDGER_TIME_AHEAD_MAX_MS} ms)",
                                stamp_ms - self.now_ms
                            ));
                        }
                    }
                    let (height, hash) = block.unwrap_or((0, [0; 32]));
                    self.note(&[
                        b"applied",
                        &node.to_le_bytes(),
                        &index.to_le_bytes(),
                        &term.to_le_bytes(),
                        &data_hash,
                        &height.to_le_bytes(),
                        &hash,
                    ]);
                    self.online.applied(node, index, term, data_hash, block);
                }
                NodeEvent::ConfChanged { node, index } => {
                    self.note(&[b"conf", &node.to_le_bytes(), &index.to_le_bytes()]);
                    self.conf_changes.insert(index);
                    self.check_conf_change(node);
                }
                NodeEvent::SnapshotInstalled { node } => {
                    self.note(&[b"snapshot", &node.to_le_bytes()]);
                    self.snapshots_installed += 1;
                }
                NodeEvent::Rekeyed { node, index } => {
                    self.rekeys.insert((node, index));
                }
                NodeEvent::Violation(text) => self.online.record(text),
            }
        }
    }

    fn position(&self, id: u64) -> Option<usize> {
        self.nodes.iter().position(|node| node.id == id)
    }

    /// Whether two nodes' transports let a message through: each admits the other's key.
    fn linked(&self, from: usize, to: usize) -> bool {
        let (sender, receiver) = (&self.nodes[from], &self.nodes[to]);
        receiver.admits(sender.id, &sender.public_key())
            && sender.admits(receiver.id, &receiver.public_key())
    }

    /// Delivers one message.
    pub fn deliver(&mut self, envelope: Envelope) {
        match envelope.to {
            Endpoint::Client(index) => {
                if let Payload::Answer { tx_id, answer } = envelope.payload {
                    let from = envelope.from;
                    self.note(&[
                        b"answer",
                        &(index as u64).to_le_bytes(),
                        &tx_id,
                        format!("{answer:?}").as_bytes(),
                    ]);
                    if index == self.operators.endpoint {
                        self.operators.answer(self.now_ms, from, tx_id, answer);
                    } else {
                        self.clients[index].answer(self.now_ms, from, tx_id, answer);
                    }
                }
            }
            Endpoint::Node(id) => self.deliver_to_node(id, envelope),
        }
    }

    fn deliver_to_node(&mut self, id: u64, envelope: Envelope) {
        let Some(position) = self.position(id) else {
            return;
        };
        if !self.nodes[position].is_up() {
            return;
        }
        if self.nodes[position].paused {
            self.held.entry(position).or_default().push(envelope);
            return;
        }
        if let Endpoint::Node(from) = envelope.from {
            let sender = self.position(from);
            let snapshot = matches!(&envelope.payload, Payload::Raft(message) if message.get_msg_type() == MessageType::MsgSnapshot);
            if from != id && !sender.is_some_and(|sender| self.linked(sender, position)) {
                self.network.dropped += 1;
                if snapshot {
                    self.snapshot_status(from, id, false);
                }
                return;
            }
            if snapshot {
                self.snapshot_status(from, id, true);
            }
            if let Payload::Raft(message) = &envelope.payload {
                if message.get_msg_type() == MessageType::MsgAppendResponse && !message.reject {
                    let ack = self.acks.entry((id, message.term, from)).or_default();
                    *ack = (*ack).max(message.index);
                }
            }
        }
        let mut out = Vec::new();
        let mut events = Vec::new();
        let now_ms = self.now_ms;
        let node = &mut self.nodes[position];
        node.receive(envelope, now_ms, &mut out, &mut events);
        self.check_quorum(position);
        let result = self.nodes[position].poll(now_ms, &mut out, &mut events);
        if let Err(error) = result {
            self.fail(error);
        }
        self.after_poll(position);
        self.take_events(events);
        self.send_all(out);
    }

    /// The checks after a node's poll: quorum of its commits, its configuration against its
    /// ledger's, leadership per term.
    fn after_poll(&mut self, position: usize) {
        self.check_quorum(position);
        let node = &self.nodes[position];
        if let (Some((raft, _)), Some(recorded)) = (node.raft(), node.recorded_conf()) {
            if raft != recorded {
                let text = format!(
                    "node {}: Raft runs under {raft:?}, but its ledger records {recorded:?} at its applied index",
                    node.id
                );
                self.online.record(text);
            }
        }
        if let Some(term) = self.nodes[position].leadership() {
            let id = self.nodes[position].id;
            self.online.leader(id, term);
        }
    }

    /// A leader's commit index may only pass entries a majority of its configuration's voters
    /// acknowledged in its term: a node outside the configuration (a removed one) never counts.
    fn check_quorum(&mut self, position: usize) {
        let node = &self.nodes[position];
        let (Some(term), Some((membership, commit))) = (node.leadership(), node.raft()) else {
            return;
        };
        let id = node.id;
        let seen = *self.commits.entry((id, term)).or_insert(commit);
        if commit <= seen {
            return;
        }
        self.commits.insert((id, term), commit);
        let acknowledged: Vec<u64> = membership
            .voters
            .iter()
            .copied()
            .filter(|voter| {
                *voter == id
                    || self
                        .acks
                        .get(&(id, term, *voter))
                        .is_some_and(|index| *index >= commit)
            })
            .collect();
        if acknowledged.len() * 2 <= membership.voters.len() {
            self.online.record(format!(
                "node {id} committed index {commit} in term {term} with acknowledgements from {acknowledged:?} of the voters {:?}",
                membership.voters
            ));
        }
    }

    /// A configuration change applied on `node` moves toward the ledger's node set: every node
    /// it names is one the ledger records as active, or was in the configuration before.
    fn check_conf_change(&mut self, node: u64) {
        let Some(position) = self.position(node) else {
            return;
        };
        let node = &self.nodes[position];
        let Some((raft, _)) = node.raft() else {
            return;
        };
        let records = node.node_records();
        for id in raft.voters.iter().chain(&raft.learners) {
            let recorded = records.iter().any(|record| record.id == *id);
            let genesis = self.genesis_conf.0.contains(id) || self.genesis_conf.1.contains(id);
            if !recorded && !genesis {
                let text = format!(
                    "node {}: the configuration {raft:?} names node {id}, which its ledger never recorded",
                    node.id
                );
                self.online.record(text);
            }
        }
    }

    /// One simulated millisecond; clients and operators submit only while `generate`.
    pub fn step(&mut self, generate: bool) {
        while let Some(envelope) = self.network.next_due(self.now_ms) {
            self.deliver(envelope);
        }
        for position in 0..self.nodes.len() {
            if !self.nodes[position].is_active() {
                continue;
            }
            let mut out = Vec::new();
            let mut events = Vec::new();
            let now_ms = self.now_ms;
            if let Err(error) = self.nodes[position].poll(now_ms, &mut out, &mut events) {
                self.fail(error);
            }
            self.after_poll(position);
            self.take_events(events);
            self.send_all(out);
        }
        let voters = self.voters();
        let mut out = Vec::new();
        for client in &mut self.clients {
            client.act(self.now_ms, generate, &voters, &mut out);
        }
        self.operators.act(self.now_ms, &voters, &mut out);
        self.send_all(out);
        if self.now_ms % SIM_OPERATORS_CHECK_INTERVAL_MS == 0 {
            self.operate(generate);
        }
        self.restarts_and_resumes();
        self.now_ms += 1;
    }

    /// The operators look at the node set and do their part.
    fn operate(&mut self, generate: bool) {
        let mut chores = Vec::new();
        let leader = self
            .nodes
            .iter()
            .filter(|node| !node.retired)
            .find(|node| node.leadership().is_some())
            .map(|node| node.id);
        let voters: Vec<(u64, u64)> = self
            .nodes
            .iter()
            .filter(|node| node.voter && !node.retired)
            .map(|node| (node.id, node.key_generation))
            .collect();
        self.operators
            .start_next(self.now_ms, generate, &voters, leader, &mut chores);
        if let Some(observed) = self.observe() {
            self.operators.check(self.now_ms, &observed, &mut chores);
        }
        for chore in chores {
            self.chore(chore);
        }
    }

    /// The node set as the most advanced running node reads it, and whether every node that
    /// is not retired shows the same for the change's node, for the operators.
    fn observe(&self) -> Option<Observed> {
        let (target, generation) = self.operators.target()?;
        let new_key = node_key(target, generation).verifying_key().to_bytes();
        let view = |node: &SimNode| {
            let records = node.node_records();
            let record = records.iter().find(|record| record.id == target);
            (
                record.map(|record| record.public_key == new_key),
                record.map(|record| record.active()),
            )
        };
        let reader = self
            .nodes
            .iter()
            .filter(|node| node.is_up() && !node.retired)
            .max_by_key(|node| node.raft_indexes().map_or(0, |(_, _, applied)| applied))?;
        let (key_is, target_active) = view(reader);
        let everywhere = self
            .nodes
            .iter()
            .filter(|node| !node.retired && node.id != target)
            .all(|node| node.is_up() && view(node) == (key_is, target_active));
        let target_in_raft = self
            .nodes
            .iter()
            .filter(|node| !node.retired)
            .filter_map(|node| node.leadership().and(node.raft()))
            .map(|(membership, _)| {
                membership.voters.contains(&target) || membership.learners.contains(&target)
            })
            .next()
            .unwrap_or(true);
        Some(Observed {
            key_is,
            target_active,
            target_in_raft,
            everywhere,
        })
    }

    fn chore(&mut self, chore: Chore) {
        let now_ms = self.now_ms;
        match chore {
            Chore::StartNode { id, voter } => {
                self.note(&[b"start-node", &id.to_le_bytes()]);
                let setup = NodeSetup {
                    id,
                    voter,
                    genesis_conf: (&self.genesis_conf.0, &self.genesis_conf.1),
                    clock_skew_ms: self.rng.below(401) as i64 - 200,
                    sabotage: self.sabotage,
                };
                match SimNode::new(setup, &self.genesis, &mut self.rng, now_ms) {
                    Ok(node) => self.nodes.push(node),
                    Err(error) => self.fail(error),
                }
            }
            Chore::RestartOnNewKey { node } => {
                let Some(position) = self.position(node) else {
                    return;
                };
                self.note(&[b"rekey-restart", &node.to_le_bytes()]);
                let target = &mut self.nodes[position];
                target.stop();
                target.key_generation += 1;
                self.held.remove(&position);
                self.resume_at.remove(&position);
                self.restart_at
                    .insert(position, now_ms + SIM_OPERATOR_RESTART_MS);
            }
            Chore::Retire { node } => {
                let Some(position) = self.position(node) else {
                    return;
                };
                self.note(&[b"retire", &node.to_le_bytes()]);
                let target = &mut self.nodes[position];
                target.stop();
                target.retired = true;
                self.held.remove(&position);
                self.resume_at.remove(&position);
                self.restart_at.remove(&position);
            }
        }
    }

    fn restarts_and_resumes(&mut self) {
        let now_ms = self.now_ms;
        let due: Vec<usize> = self
            .restart_at
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(position, _)| *position)
            .collect();
        for position in due {
            self.restart_at.remove(&position);
            self.restart(position);
        }
        let due: Vec<usize> = self
            .resume_at
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(position, _)| *position)
            .collect();
        for position in due {
            self.resume_at.remove(&position);
            self.resume(position);
        }
        let due: Vec<usize> = self
            .clock_restore_at
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(position, _)| *position)
            .collect();
        for position in due {
            self.clock_restore_at.remove(&position);
            self.nodes[position].clock_skew_ms = self.rng.below(401) as i64 - 200;
        }
    }

    fn restart(&mut self, position: usize) {
        if self.nodes[position].is_up() || self.nodes[position].retired {
            return;
        }
        let id = self.nodes[position].id;
        self.note(&[b"restart", &id.to_le_bytes(), &self.now_ms.to_le_bytes()]);
        let now_ms = self.now_ms;
        if let Err(error) = self.nodes[position].start(&self.genesis, &mut self.rng, now_ms) {
            self.fail(error);
        }
    }

    fn resume(&mut self, position: usize) {
        if !self.nodes[position].paused {
            return;
        }
        self.nodes[position].paused = false;
        for envelope in self.held.remove(&position).unwrap_or_default() {
            self.deliver(envelope);
        }
    }

    /// Injects one random fault.
    pub fn inject(&mut self) {
        let count = self.nodes.len() as u64;
        let position = self.rng.below(count) as usize;
        let id = self.nodes[position].id;
        let kind = self.rng.below(10);
        let now_ms = self.now_ms;
        match kind {
            0 | 1 => {
                // Partition: every node to one of two sides, both sides non-empty.
                let mut groups = BTreeMap::new();
                for node in &self.nodes {
                    groups.insert(node.id, self.rng.below(2) as u8);
                }
                groups.insert(id, 1);
                let other = self.nodes[(position + 1) % self.nodes.len()].id;
                groups.insert(other, 0);
                self.network.partition(groups);
            }
            2 => self.network.heal(),
            3 | 4 => {
                // Crash a node, or the leader when there is one.
                let target = if kind == 4 {
                    self.nodes
                        .iter()
                        .position(|node| node.leadership().is_some())
                        .unwrap_or(position)
                } else {
                    position
                };
                self.crash(target, 100, 3_000);
            }
            5 => {
                if self.nodes[position].is_active() {
                    self.nodes[position].paused = true;
                    let at = now_ms + self.rng.between(100, 2_000);
                    self.resume_at.insert(position, at);
                }
            }
            6 => {
                self.network.weather = Weather {
                    drop_ppm: self.rng.below(200_000),
                    duplicate_ppm: self.rng.below(100_000),
                    delay_min_ms: 1,
                    delay_max_ms: self.rng.between(5, 300),
                };
            }
            7 => self.wipe_an_observer(),
            8 => self.jump_a_clock(position),
            _ => self.network.weather = Weather::CALM,
        }
        self.faults += 1;
        self.note(&[
            b"fault",
            &kind.to_le_bytes(),
            &id.to_le_bytes(),
            &now_ms.to_le_bytes(),
        ]);
    }

    /// The wall clock of the leader (or of `position` when none leads) jumps an hour or a day,
    /// forward or back, for up to ten seconds; then it is set right again.
    fn jump_a_clock(&mut self, position: usize) {
        let target = self
            .nodes
            .iter()
            .position(|node| node.leadership().is_some())
            .unwrap_or(position);
        let jumps = [3_600_000i64, -3_600_000, 86_400_000, -86_400_000];
        let jump = jumps[self.rng.below(jumps.len() as u64) as usize];
        self.nodes[target].clock_skew_ms = jump;
        let until = self.now_ms + self.rng.between(1_000, SIM_CLOCK_JUMP_MAX_MS);
        self.clock_restore_at.insert(target, until);
        self.clock_jumps += 1;
        let id = self.nodes[target].id;
        self.note(&[b"clock", &id.to_le_bytes(), &jump.to_le_bytes()]);
    }

    fn crash(&mut self, target: usize, down_min_ms: u64, down_max_ms: u64) {
        if !self.nodes[target].is_up() {
            return;
        }
        let lost = self.nodes[target].crash(&mut self.rng);
        self.held.remove(&target);
        self.resume_at.remove(&target);
        let at = self.now_ms + self.rng.between(down_min_ms, down_max_ms);
        self.restart_at.insert(target, at);
        let id = self.nodes[target].id;
        self.note(&[b"crash", &id.to_le_bytes(), &(lost as u64).to_le_bytes()]);
    }

    /// An observer loses its data folder and starts again empty: it comes back through a
    /// snapshot and backfills the blocks below it. (A voter never restarts empty under its
    /// id; it is rebuilt as a new node.)
    fn wipe_an_observer(&mut self) {
        let observers: Vec<usize> = (0..self.nodes.len())
            .filter(|position| {
                let node = &self.nodes[*position];
                !node.voter && !node.retired && node.is_up()
            })
            .collect();
        if observers.is_empty() {
            return;
        }
        let target = observers[self.rng.below(observers.len() as u64) as usize];
        self.crash(target, 500, 2_000);
        self.nodes[target].wipe();
        let id = self.nodes[target].id;
        self.note(&[b"wipe", &id.to_le_bytes()]);
    }

    /// Ends every fault: partitions removed, the network calm, crashed nodes restarted,
    /// paused ones resumed.
    pub fn heal(&mut self) {
        self.network.heal();
        self.network.weather = Weather::CALM;
        let positions: Vec<usize> = self.restart_at.keys().copied().collect();
        for position in positions {
            self.restart_at.remove(&position);
            self.restart(position);
        }
        let positions: Vec<usize> = self.resume_at.keys().copied().collect();
        for position in positions {
            self.resume_at.remove(&position);
            self.resume(position);
        }
        self.note(&[b"heal", &self.now_ms.to_le_bytes()]);
    }

    /// Whether every client and the operators have their answers, every running replica
    /// applied everything committed on one head with no blocks missing, and Raft's
    /// configuration is the node set the ledger records.
    pub fn converged(&self) -> bool {
        if self.clients.iter().any(Client::busy)
            || self.operators.busy()
            || self.network.in_flight() > 0
            || !self.restart_at.is_empty()
        {
            return false;
        }
        let live: Vec<&SimNode> = self.nodes.iter().filter(|node| !node.retired).collect();
        let mut heads = BTreeSet::new();
        for node in &live {
            let Some((commit, _, applied)) = node.raft_indexes() else {
                return false;
            };
            if commit != applied || node.has_gaps() {
                return false;
            }
            if live.iter().any(|other| {
                other
                    .raft_indexes()
                    .is_some_and(|(other_commit, _, _)| other_commit > applied)
            }) {
                return false;
            }
            let wanted = tpw_consensus::replica::wanted_membership(&node.node_records());
            if node.raft().map(|(raft, _)| raft) != Some(wanted) {
                return false;
            }
            heads.insert(node.chain().last().copied());
        }
        heads.len() == 1
    }

    /// Bad submissions some node admitted.
    pub fn admitted_bad(&self) -> Option<String> {
        self.clients
            .iter()
            .flat_map(|client| client.admitted_bad.iter())
            .next()
            .cloned()
    }
}
