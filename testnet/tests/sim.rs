//! The simulator's own checks: a seed replays identically, and each checker catches the bug it
//! exists for when the simulated nodes are deliberately broken.

use tpw_testnet::sim::{run_sabotaged, run_seed, Sabotage};

#[test]
fn a_seed_replays_identically_and_passes() {
    // Proves determinism: two runs of one seed give one digest over every applied entry,
    // answer and fault, and the run passes every check.
    let first = run_seed(7);
    let second = run_seed(7);
    assert_eq!(first.failure, None, "{first:?}");
    assert_eq!(first.digest, second.digest);
    assert!(first.transfers_acknowledged > 50, "{first:?}");
    assert!(first.faults_injected > 5, "{first:?}");
    assert_ne!(
        run_seed(8).digest,
        first.digest,
        "another seed, another history"
    );
}

/// Runs seeds 1.. with `sabotage` until one fails; returns the failure.
fn first_failure(sabotage: Sabotage) -> (u64, tpw_testnet::sim::SeedReport) {
    for seed in 1..=64 {
        let report = run_sabotaged(seed, sabotage);
        if report.failure.is_some() {
            return (seed, report);
        }
    }
    panic!("no seed of 64 caught {sabotage:?}");
}

#[test]
fn acknowledging_before_commit_is_caught_as_lost_transfers() {
    // Proves the "no acknowledged transfer lost" checker: a leader that acknowledges when
    // it queues loses acknowledged transfers when it crashes or is cut off before commit.
    let (seed, report) = first_failure(Sabotage::AckBeforeCommit);
    assert!(report.lost > 0, "seed {seed}: {report:?}");
}

#[test]
fn an_unsynced_raft_log_is_caught() {
    // Proves the Raft safety and replica checkers: a node that loses votes and entries it
    // acknowledged breaks election safety, log matching, acknowledged transfers or the chains.
    let (seed, report) = first_failure(Sabotage::UnsyncedRaftLog);
    let failure = report.failure.unwrap_or_default();
    eprintln!("seed {seed}: {failure}");
    assert!(!failure.starts_with("setup"), "{failure}");
}

#[test]
fn a_transfer_counted_twice_is_caught_as_duplicated() {
    // Proves the "applied once" checker: a ledger that counts a posted transfer twice (both
    // sides, so assets stay conserved) is found by the accounting per transfer.
    let (seed, report) = first_failure(Sabotage::RestartAppliesATransferTwice);
    assert!(
        report.duplicated > 0 || report.divergent > 0,
        "seed {seed}: {report:?}"
    );
}

#[test]
fn a_configuration_change_lost_at_restart_is_caught() {
    // Proves the membership checkers: a node whose ledger records a configuration change that
    // its Raft state lost at a restart runs Raft under another configuration than the one its
    // ledger records at that index, and counts (or misses) voters by it.
    let (seed, report) = first_failure(Sabotage::ConfChangeLostAtRestart);
    let failure = report.failure.unwrap_or_default();
    eprintln!("seed {seed}: {failure}");
    assert!(
        failure.contains("Raft runs under") || failure.contains("acknowledgements from"),
        "seed {seed}: {failure}"
    );
}

#[test]
fn a_leader_whose_clock_jump_moves_ledger_time_is_caught() {
    // Proves the ledger-time checker: a node that measures elapsed time on its wall clock
    // stamps blocks as far ahead as its clock jumped, and the checker finds a block stamped
    // ahead of real time by more than the bound (so a time rule would fire early).
    let (seed, report) = first_failure(Sabotage::WallClockAsMonotonic);
    let failure = report.failure.unwrap_or_default();
    eprintln!("seed {seed}: {failure}");
    assert!(
        failure.contains("ahead of real time"),
        "seed {seed}: {failure}"
    );
}

#[test]
fn the_simulator_exercises_membership_keys_snapshots_and_admission() {
    // Proves the new paths run at all: one seed changes Raft's configuration through
    // governance, rotates a node key, installs snapshots (log compaction leaves new and wiped
    // nodes behind), refuses bad submissions at admission and jumps a leader's clock, and
    // passes every check.
    let report = run_seed(7);
    assert_eq!(report.failure, None, "{report:?}");
    assert!(report.membership_changes > 0, "{report:?}");
    assert!(report.key_rotations > 0, "{report:?}");
    assert!(report.snapshots_installed > 0, "{report:?}");
    assert!(report.admission_refusals > 0, "{report:?}");
    assert!(report.clock_jumps > 0, "{report:?}");
}
