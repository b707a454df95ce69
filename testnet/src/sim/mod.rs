//! The deterministic simulator: voters and observers built from the real consensus driver and
//! the real ledger engine, on one thread, driven by one seed.
//!
//! Everything random (message delays, drops, duplicates, partitions, crashes, pauses, clock
//! skew, election timeouts, the workload) comes from the seed's generator, and nothing reads a
//! clock or iterates a hash map into the run, so a seed replays the same history: the run's
//! digest (over every applied entry, answer and fault) proves it.
//!
//! A run: a chaos phase with faults at random intervals while clients submit; the heal
//! (partitions removed, crashed nodes restarted, paused ones resumed, the network calm); a
//! calm phase in which a new block must commit soon; a drain until every client has its
//! answer and every replica the same head; then the checks in [`check`].

mod check;
mod client;
mod net;
mod node;
pub mod rng;

pub use node::Sabotage;

use client::{named_key, Client, TrackedTransfer};
use net::{Endpoint, Envelope, Network, Payload, Weather};
use node::{NodeEvent, SimNode};
use rng::SimRng;
use std::collections::{BTreeMap, BTreeSet};
use tpw_contracts::genesis::{GenesisNode, NodeRole};
use tpw_contracts::MemStore;

/// Milliseconds per Raft tick, as the node's default.
pub const TICK_MS: u64 = 100;
/// Simulated ms of the chaos phase.
const CHAOS_MS: u64 = 20_000;
/// Simulated ms clients go on submitting after the heal.
const CALM_MS: u64 = 5_000;
/// A new block must commit within this long after the heal.
const RECOVERY_MAX_MS: u64 = 10_000;
/// The drain must converge within this long.
const DRAIN_MAX_MS: u64 = 30_000;
/// Settlement partners in the simulated genesis.
const PARTNERS: usize = 4;
/// Clients submitting.
const CLIENTS: usize = 4;
/// Where simulated time starts.
const GENESIS_TIME_MS: u64 = 1_750_000_000_000;

/// The repository's fixed seed list (testnet/sim-seeds.txt): seeds that once failed first,
/// each with its fix, then the base list.
pub const FIXED_SEEDS: &str = include_str!("../../sim-seeds.txt");

/// The fixed seeds, in order.
pub fn fixed_seeds() -> Result<Vec<u64>, String> {
    FIXED_SEEDS
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.parse()
                .map_err(|_| format!("sim-seeds.txt: {line:?} is not a seed"))
        })
        .collect()
}

/// What one seed's run found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Voting nodes (3 or 5, drawn from the seed).
    pub voters: usize,
    /// Observer nodes (0 or 1).
    pub observers: usize,
    /// Why the run failed; `None` when every check held.
    pub failure: Option<String>,
    /// Tracked transfers acknowledged to clients as settled.
    pub transfers_acknowledged: u64,
    /// Faults injected (partitions, heals, crashes, pauses, network weather).
    pub faults_injected: u64,
    /// Acknowledged transfers missing on some replica after the heal.
    pub lost: u64,
    /// Tracked accounts counting some transfer other than once.
    pub duplicated: u64,
    /// Replicas or heights that disagree.
    pub divergent: u64,
    /// Blocks in the final chain.
    pub height: u64,
    /// Simulated ms from the heal to the first new block.
    pub recovery_ms: Option<u64>,
    /// Messages lost to drops and partitions.
    pub messages_dropped: u64,
    /// Messages delivered twice.
    pub messages_duplicated: u64,
    /// Submissions sent again after silence, a redirect or a retry answer.
    pub client_retries: u64,
    /// blake3 over the run's history: equal for two runs of one seed.
    pub digest: String,
}

/// The simulated world of one run.
struct World {
    now_ms: u64,
    rng: SimRng,
    network: Network,
    nodes: Vec<SimNode>,
    voters: Vec<u64>,
    clients: Vec<Client>,
    genesis: tpw_contracts::GenesisState,
    online: check::Online,
    digest: blake3::Hasher,
    faults: u64,
    /// Node index -> when a crashed node restarts.
    restart_at: BTreeMap<usize, u64>,
    /// Node index -> when a paused node resumes.
    resume_at: BTreeMap<usize, u64>,
    /// Messages that reached a paused node, delivered when it resumes.
    held: BTreeMap<usize, Vec<Envelope>>,
    failure: Option<String>,
}

impl World {
    fn new(seed: u64, sabotage: Sabotage) -> Result<Self, String> {
        let mut rng = SimRng::new(seed);
        let voter_count = if rng.below(3) == 0 { 5 } else { 3 };
        let observer_count = rng.below(2) as usize;
        let voters: Vec<u64> = (1..=voter_count).collect();
        let learners: Vec<u64> = (voter_count + 1..=voter_count + observer_count as u64).collect();
        let nodes_genesis: Vec<GenesisNode> = voters
            .iter()
            .chain(&learners)
            .map(|id| GenesisNode {
                id: *id,
                name: format!("node-{id}"),
                public_key: hex::encode(named_key(1_000 + id).verifying_key().to_bytes()),
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
        let genesis = crate::network::load_genesis(&keys, nodes_genesis, GENESIS_TIME_MS)
            .map_err(|error| error.to_string())?
            .build()
            .map_err(|error| error.to_string())?;
        let mut nodes = Vec::new();
        for id in voters.iter().chain(&learners) {
            let skew = rng.below(401) as i64 - 200;
            nodes.push(SimNode::new(
                *id, &voters, &learners, skew, &genesis, &mut rng, sabotage,
            )?);
        }
        let network_id = genesis.head.network_id;
        let clients = (0..CLIENTS)
            .map(|index| Client::new(index, PARTNERS, network_id, &mut rng))
            .collect();
        Ok(Self {
            now_ms: GENESIS_TIME_MS + 1_000,
            rng,
            network: Network::new(),
            nodes,
            voters,
            clients,
            genesis,
            online: check::Online::default(),
            digest: blake3::Hasher::new(),
            faults: 0,
            restart_at: BTreeMap::new(),
            resume_at: BTreeMap::new(),
            held: BTreeMap::new(),
            failure: None,
        })
    }

    fn fail(&mut self, reason: String) {
        if self.failure.is_none() {
            self.failure = Some(reason);
        }
    }

    fn note(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.digest.update(part);
        }
    }

    fn send_all(&mut self, out: Vec<Envelope>) {
        for envelope in out {
            self.network.send(&mut self.rng, self.now_ms, envelope);
        }
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
                } => {
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
                NodeEvent::Violation(text) => self.online.record(text),
            }
        }
    }

    /// Delivers one message.
    fn deliver(&mut self, envelope: Envelope) {
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
                    self.clients[index].answer(self.now_ms, from, tx_id, answer);
                }
            }
            Endpoint::Node(id) => {
                let Some(position) = self.nodes.iter().position(|node| node.id == id) else {
                    return;
                };
                if self.nodes[position].paused {
                    self.held.entry(position).or_default().push(envelope);
                    return;
                }
                let mut out = Vec::new();
                let mut events = Vec::new();
                let node = &mut self.nodes[position];
                let result = node
                    .receive(envelope, &mut out)
                    .and_then(|()| node.process(&mut out, &mut events));
                if let Err(error) = result {
                    self.fail(error);
                }
                self.take_events(events);
                self.send_all(out);
            }
        }
    }

    /// One simulated millisecond.
    fn step(&mut self, generate: bool) {
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
            let node = &mut self.nodes[position];
            if node.ticks_at(now_ms) {
                node.tick();
            }
            node.propose(now_ms, &mut out);
            if let Err(error) = node.process(&mut out, &mut events) {
                self.fail(error);
            }
            if let Some(term) = self.nodes[position].leadership() {
                let id = self.nodes[position].id;
                self.online.leader(id, term);
            }
            self.take_events(events);
            self.send_all(out);
        }
        let mut out = Vec::new();
        for client in &mut self.clients {
            client.act(self.now_ms, generate, &self.voters, &mut out);
        }
        self.send_all(out);
        self.restarts_and_resumes();
        self.now_ms += 1;
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
    }

    fn restart(&mut self, position: usize) {
        if self.nodes[position].is_up() {
            return;
        }
        let id = self.nodes[position].id;
        self.note(&[b"restart", &id.to_le_bytes(), &self.now_ms.to_le_bytes()]);
        if let Err(error) = self.nodes[position].start(&self.genesis, &mut self.rng) {
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
    fn inject(&mut self) {
        let count = self.nodes.len() as u64;
        let position = self.rng.below(count) as usize;
        let id = self.nodes[position].id;
        let kind = self.rng.below(8);
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
                if self.nodes[target].is_up() {
                    let lost = self.nodes[target].crash(&mut self.rng);
                    self.held.remove(&target);
                    self.resume_at.remove(&target);
                    let at = now_ms + self.rng.between(100, 3_000);
                    self.restart_at.insert(target, at);
                    let id = self.nodes[target].id;
                    self.note(&[b"crash", &id.to_le_bytes(), &(lost as u64).to_le_bytes()]);
                }
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

    /// Ends every fault: partitions removed, the network calm, crashed nodes restarted,
    /// paused ones resumed.
    fn heal(&mut self) {
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

    /// Whether every client has its answer and every replica applied everything committed,
    /// on one head.
    fn converged(&self) -> bool {
        if self.clients.iter().any(Client::busy) || self.network.in_flight() > 0 {
            return false;
        }
        let mut heads = BTreeSet::new();
        for node in &self.nodes {
            let Some((commit, _, applied)) = node.raft_indexes() else {
                return false;
            };
            if commit != applied
                || self.nodes.iter().any(|other| {
                    other
                        .raft_indexes()
                        .is_some_and(|(other_commit, _, _)| other_commit > applied)
                })
            {
                return false;
            }
            heads.insert(node.chain().last().copied());
        }
        heads.len() == 1
    }
}

/// Runs one seed to its report.
pub fn run_seed(seed: u64) -> SeedReport {
    run_sabotaged(seed, Sabotage::None)
}

/// A report of a run that ended before its checks (setup error or a node's panic).
fn stopped_report(seed: u64, failure: String) -> SeedReport {
    SeedReport {
        seed,
        voters: 0,
        observers: 0,
        failure: Some(failure),
        transfers_acknowledged: 0,
        faults_injected: 0,
        lost: 0,
        duplicated: 0,
        divergent: 0,
        height: 0,
        recovery_ms: None,
        messages_dropped: 0,
        messages_duplicated: 0,
        client_retries: 0,
        digest: String::new(),
    }
}

/// Runs one seed with a deliberate bug in the nodes, to show the checkers catch it. A panic
/// inside a node (raft-rs panics when a voter's log contradicts what it acknowledged) ends the
/// run as a failure of that seed, so the seed is reported instead of lost in a crash.
pub fn run_sabotaged(seed: u64, sabotage: Sabotage) -> SeedReport {
    let run = std::panic::AssertUnwindSafe(|| run_world(seed, sabotage));
    match std::panic::catch_unwind(run) {
        Ok(report) => report,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            stopped_report(seed, format!("a node panicked: {message}"))
        }
    }
}

fn run_world(seed: u64, sabotage: Sabotage) -> SeedReport {
    let mut world = match World::new(seed, sabotage) {
        Ok(world) => world,
        Err(error) => return stopped_report(seed, format!("setup: {error}")),
    };
    let start = world.now_ms;
    let mut next_fault = start + world.rng.between(500, 2_000);
    while world.now_ms < start + CHAOS_MS && world.failure.is_none() {
        if world.now_ms >= next_fault {
            world.inject();
            next_fault = world.now_ms + world.rng.between(200, 1_500);
        }
        world.step(true);
    }
    world.heal();
    let heal_ms = world.now_ms;
    let height_at_heal = world.online.height();
    let mut recovery_ms = None;
    while world.now_ms < heal_ms + CALM_MS.max(RECOVERY_MAX_MS) && world.failure.is_none() {
        world.step(world.now_ms < heal_ms + CALM_MS);
        if recovery_ms.is_none() && world.online.height() > height_at_heal {
            recovery_ms = Some(world.now_ms - heal_ms);
        }
        if recovery_ms.is_some() && world.now_ms >= heal_ms + CALM_MS {
            break;
        }
    }
    if recovery_ms.is_none() {
        world.fail(format!(
            "no new block within {RECOVERY_MAX_MS} ms after the heal (height {height_at_heal})"
        ));
    }
    let drain_start = world.now_ms;
    while world.failure.is_none() {
        world.step(false);
        if world.now_ms % 50 == 0 && world.converged() {
            break;
        }
        if world.now_ms > drain_start + DRAIN_MAX_MS {
            let heights: Vec<_> = world
                .nodes
                .iter()
                .map(|node| (node.id, node.chain().len(), node.raft_indexes()))
                .collect();
            world.fail(format!(
                "no convergence {DRAIN_MAX_MS} ms into the drain: (node, blocks, (commit, last, applied)) {heights:?}"
            ));
        }
    }
    let acknowledged: BTreeSet<TrackedTransfer> = world
        .clients
        .iter()
        .flat_map(|client| client.acknowledged.iter().copied())
        .collect();
    let rejected: BTreeSet<TrackedTransfer> = world
        .clients
        .iter()
        .flat_map(|client| client.rejected.iter().copied())
        .collect();
    let tracked: Vec<u128> = (0..PARTNERS)
        .map(crate::network::partner_tracked_account)
        .collect();
    let mut genesis_state = MemStore::default();
    genesis_state.apply_diff(&world.genesis.diff);
    let found = if world.failure.is_none() {
        check::after_heal(
            &world.nodes,
            &acknowledged,
            &rejected,
            &tracked,
            &genesis_state,
        )
    } else {
        check::Final::default()
    };
    let mut failure = world.failure.clone();
    if failure.is_none() {
        if let Some(violation) = world.online.violations.first() {
            failure = Some(violation.clone());
        } else if let Some(problem) = found.problems.first() {
            failure = Some(problem.clone());
        }
    }
    let client_retries = world
        .clients
        .iter()
        .map(|client| client.sends - client.committed - client.refused)
        .sum();
    SeedReport {
        seed,
        voters: world.voters.len(),
        observers: world.nodes.len() - world.voters.len(),
        failure,
        transfers_acknowledged: acknowledged.len() as u64,
        faults_injected: world.faults,
        lost: found.lost,
        duplicated: found.duplicated,
        divergent: found.divergent + world.online.divergent,
        height: world.nodes[0].chain().len().saturating_sub(1) as u64,
        recovery_ms,
        messages_dropped: world.network.dropped,
        messages_duplicated: world.network.duplicated,
        client_retries,
        digest: world.digest.finalize().to_hex().to_string(),
    }
}

/// The summary line of `tpw-testnet sim`.
#[derive(Debug, serde::Serialize)]
pub struct SimSummary {
    /// Seeds run.
    pub seeds: usize,
    /// Seeds whose run failed a check or did not replay identically.
    pub failed_seeds: Vec<u64>,
    /// Over all seeds: tracked transfers acknowledged as settled.
    pub transfers_acknowledged: u64,
    /// Over all seeds: faults injected.
    pub faults_injected: u64,
    /// Over all seeds: acknowledged transfers lost.
    pub lost: u64,
    /// Over all seeds: accounts counting a transfer other than once.
    pub duplicated: u64,
    /// Over all seeds: replica disagreements.
    pub divergent: u64,
    /// Seeds run twice to check that they replay identically.
    pub replayed: usize,
    /// Of those, how many did not.
    pub replay_mismatches: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Runs `seeds` on `threads` threads (each seed on one thread, so threads change nothing
/// but wall time); runs every `replay_every`-th seed a second time and compares digests.
/// `progress` hears each seed's report as it ends.
pub fn run_seeds(
    seeds: &[u64],
    threads: usize,
    replay_every: usize,
    progress: &(dyn Fn(&SeedReport, Option<bool>) + Sync),
) -> SimSummary {
    let started = std::time::Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<(usize, SeedReport, Option<bool>)>> =
        std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let position = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(seed) = seeds.get(position).copied() else {
                    return;
                };
                let report = run_seed(seed);
                let replay = (replay_every > 0 && position % replay_every == 0)
                    .then(|| run_seed(seed).digest == report.digest);
                progress(&report, replay);
                results
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push((position, report, replay));
            });
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    results.sort_by_key(|(position, _, _)| *position);
    let mut summary = SimSummary {
        seeds: results.len(),
        failed_seeds: Vec::new(),
        transfers_acknowledged: 0,
        faults_injected: 0,
        lost: 0,
        duplicated: 0,
        divergent: 0,
        replayed: 0,
        replay_mismatches: 0,
        seconds: 0.0,
    };
    for (_, report, replay) in &results {
        let replay_failed = replay == &Some(false);
        if report.failure.is_some() || replay_failed {
            summary.failed_seeds.push(report.seed);
        }
        summary.transfers_acknowledged += report.transfers_acknowledged;
        summary.faults_injected += report.faults_injected;
        summary.lost += report.lost;
        summary.duplicated += report.duplicated;
        summary.divergent += report.divergent;
        if replay.is_some() {
            summary.replayed += 1;
        }
        if replay_failed {
            summary.replay_mismatches += 1;
        }
    }
    summary.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    summary
}
