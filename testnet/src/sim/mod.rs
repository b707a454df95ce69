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
mod disk;
mod net;
mod node;
mod operator;
pub mod rng;
mod world;

pub use node::Sabotage;

use crate::limits::{SIM_CALM_MS, SIM_CHAOS_MS, SIM_DRAIN_MS_MAX, SIM_RECOVERY_MS_MAX};
use client::TrackedTransfer;
use std::collections::BTreeSet;
use tpw_contracts::MemStore;
use world::World;

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
    /// Raft configuration changes applied (distinct Raft indexes).
    pub membership_changes: u64,
    /// Node key rotations applied by the rotated node.
    pub key_rotations: u64,
    /// Snapshots installed, over every node.
    pub snapshots_installed: u64,
    /// Submissions refused at admission.
    pub admission_refusals: u64,
    /// Jumps of a node's wall clock (an hour or a day, either way) injected.
    pub clock_jumps: u64,
    /// blake3 over the run's history: equal for two runs of one seed.
    pub digest: String,
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
        membership_changes: 0,
        key_rotations: 0,
        snapshots_installed: 0,
        admission_refusals: 0,
        clock_jumps: 0,
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

/// Runs one world by phase: chaos, the heal and recovery, the drain, then the final checks.
fn run_world(seed: u64, sabotage: Sabotage) -> SeedReport {
    let mut world = match World::new(seed, sabotage) {
        Ok(world) => world,
        Err(error) => return stopped_report(seed, format!("setup: {error}")),
    };
    run_chaos(&mut world);
    let recovery_ms = heal_and_recover(&mut world);
    drain(&mut world);
    let acknowledged: BTreeSet<TrackedTransfer> = world
        .clients
        .iter()
        .flat_map(|client| client.acknowledged.iter().copied())
        .collect();
    let running: Vec<&node::SimNode> = world.nodes.iter().filter(|node| !node.retired).collect();
    let found = if !world.failed() {
        final_checks(&world, &running, &acknowledged)
    } else {
        check::Final::default()
    };
    let failure = first_failure(&world, &found);
    let client_retries = world
        .clients
        .iter()
        .map(|client| client.sends - client.committed - client.refused)
        .sum();
    let admission_refusals = world.clients.iter().map(|client| client.refused).sum();
    let digest = world.digest();
    SeedReport {
        seed,
        voters: world.genesis_conf.0.len(),
        observers: world.genesis_conf.1.len(),
        failure,
        transfers_acknowledged: acknowledged.len() as u64,
        faults_injected: world.faults,
        lost: found.lost,
        duplicated: found.duplicated,
        divergent: found.divergent + world.online.divergent,
        height: running
            .first()
            .map_or(0, |node| node.chain().len().saturating_sub(1) as u64),
        recovery_ms,
        messages_dropped: world.network.dropped,
        messages_duplicated: world.network.duplicated,
        client_retries,
        membership_changes: world.conf_changes.len() as u64,
        key_rotations: world.rekeys.len() as u64,
        snapshots_installed: world.snapshots_installed,
        admission_refusals,
        clock_jumps: world.clock_jumps,
        digest,
    }
}

/// The chaos phase: faults injected at random intervals while the world steps.
fn run_chaos(world: &mut World) {
    let start = world.now_ms;
    let mut next_fault = start + world.rng.between(500, 2_000);
    while world.now_ms < start + SIM_CHAOS_MS && !world.failed() {
        if world.now_ms >= next_fault {
            world.inject();
            next_fault = world.now_ms + world.rng.between(200, 1_500);
        }
        world.step(true);
    }
}

/// Heals every fault and lets clients submit a while longer; a new block must commit within
/// [`SIM_RECOVERY_MS_MAX`]. The time from the heal to that block.
fn heal_and_recover(world: &mut World) -> Option<u64> {
    world.heal();
    let heal_ms = world.now_ms;
    let height_at_heal = world.online.height();
    let mut recovery_ms = None;
    while world.now_ms < heal_ms + SIM_CALM_MS.max(SIM_RECOVERY_MS_MAX) && !world.failed() {
        world.step(world.now_ms < heal_ms + SIM_CALM_MS);
        if recovery_ms.is_none() && world.online.height() > height_at_heal {
            recovery_ms = Some(world.now_ms - heal_ms);
        }
        if recovery_ms.is_some() && world.now_ms >= heal_ms + SIM_CALM_MS {
            break;
        }
    }
    if recovery_ms.is_none() {
        world.fail(format!(
            "no new block within {SIM_RECOVERY_MS_MAX} ms after the heal (height {height_at_heal})"
        ));
    }
    recovery_ms
}

/// The drain: no new submissions; the world must converge within [`SIM_DRAIN_MS_MAX`].
fn drain(world: &mut World) {
    let drain_start = world.now_ms;
    while !world.failed() {
        world.step(false);
        if world.now_ms % 50 == 0 && world.converged() {
            break;
        }
        if world.now_ms > drain_start + SIM_DRAIN_MS_MAX {
            let heights: Vec<_> = world
                .nodes
                .iter()
                .map(|node| (node.id, node.chain().len(), node.raft_indexes()))
                .collect();
            let states: Vec<String> = world.nodes.iter().map(node::SimNode::describe).collect();
            world.fail(format!(
                "no convergence {SIM_DRAIN_MS_MAX} ms into the drain: (node, blocks, (commit, last, applied)) {heights:?}; operators busy: {:?}; {}",
                world.operators.change_in_progress(),
                states.join("; ")
            ));
        }
    }
}

/// The final checks over the running nodes, against what the clients were told.
fn final_checks(
    world: &World,
    running: &[&node::SimNode],
    acknowledged: &BTreeSet<TrackedTransfer>,
) -> check::Final {
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
    check::after_heal(running, acknowledged, &rejected, &tracked, &genesis_state)
}

/// What went wrong first: a violation seen as the run went (which ends it), an error, a bad
/// submission admitted, then the final checks' first problem.
fn first_failure(world: &World, found: &check::Final) -> Option<String> {
    let mut failure = world.online.violations.first().cloned();
    if failure.is_none() {
        failure = world.failure.clone();
    }
    if failure.is_none() {
        if let Some(bad) = world.admitted_bad() {
            failure = Some(format!(
                "a node admitted a submission admission must refuse: {bad}"
            ));
        } else if let Some(problem) = found.problems.first() {
            failure = Some(problem.clone());
        }
    }
    failure
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
    /// Over all seeds: Raft configuration changes applied.
    pub membership_changes: u64,
    /// Over all seeds: node key rotations applied.
    pub key_rotations: u64,
    /// Over all seeds: snapshots installed.
    pub snapshots_installed: u64,
    /// Over all seeds: submissions refused at admission.
    pub admission_refusals: u64,
    /// Over all seeds: wall-clock jumps injected.
    pub clock_jumps: u64,
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
    let mut summary = summarize(&results);
    summary.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    summary
}

/// The totals over every seed's report (in seed order), with the seeds that failed.
fn summarize(results: &[(usize, SeedReport, Option<bool>)]) -> SimSummary {
    let mut summary = SimSummary {
        seeds: results.len(),
        failed_seeds: Vec::new(),
        transfers_acknowledged: 0,
        faults_injected: 0,
        lost: 0,
        duplicated: 0,
        divergent: 0,
        membership_changes: 0,
        key_rotations: 0,
        snapshots_installed: 0,
        admission_refusals: 0,
        clock_jumps: 0,
        replayed: 0,
        replay_mismatches: 0,
        seconds: 0.0,
    };
    for (_, report, replay) in results {
        let replay_failed = replay == &Some(false);
        if report.failure.is_some() || replay_failed {
            summary.failed_seeds.push(report.seed);
        }
        summary.transfers_acknowledged += report.transfers_acknowledged;
        summary.faults_injected += report.faults_injected;
        summary.lost += report.lost;
        summary.duplicated += report.duplicated;
        summary.divergent += report.divergent;
        summary.membership_changes += report.membership_changes;
        summary.key_rotations += report.key_rotations;
        summary.snapshots_installed += report.snapshots_installed;
        summary.admission_refusals += report.admission_refusals;
        summary.clock_jumps += report.clock_jumps;
        if replay.is_some() {
            summary.replayed += 1;
        }
        if replay_failed {
            summary.replay_mismatches += 1;
        }
    }
    summary
}
