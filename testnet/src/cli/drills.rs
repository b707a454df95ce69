//! The drills' commands: failover, catch-up, disaster recovery, key compromise and chaos; each
//! prints one JSON evidence line and fails when an acknowledged transfer was lost or a check
//! did not hold.

use super::{block_on, print_line};
use tpw_testnet::drills;

/// What `tpw-testnet chaos` was asked.
#[derive(clap::Args)]
pub(crate) struct ChaosArgs {
    /// Seconds of faults.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Voting nodes (3 to 5).
    #[arg(long, default_value_t = 3)]
    voters: usize,
    /// Observer nodes.
    #[arg(long, default_value_t = 1)]
    observers: usize,
    /// Seed of the fault schedule and workload (random when absent; printed).
    #[arg(long)]
    seed: Option<u64>,
}

/// Runs `tpw-testnet failover`.
pub(crate) fn failover(rounds: usize) -> anyhow::Result<()> {
    block_on(async move {
        let report = drills::failover(rounds).await?;
        print_line(&report)?;
        if report.lost > 0 {
            anyhow::bail!("{} acknowledged transfers were lost", report.lost);
        }
        Ok(())
    })
}

/// Runs `tpw-testnet catch-up`.
pub(crate) fn catch_up(transfers: usize, log_retention_entries: u64) -> anyhow::Result<()> {
    block_on(async move {
        let report = drills::catch_up(transfers, log_retention_entries).await?;
        print_line(&report)
    })
}

/// Runs `tpw-testnet dr`.
pub(crate) fn dr(transfers: usize, log_retention_entries: u64) -> anyhow::Result<()> {
    block_on(async move {
        let report = tpw_testnet::dr::dr(transfers, log_retention_entries).await?;
        print_line(&report)?;
        if report.lost > 0 {
            anyhow::bail!("{} acknowledged transfers were lost", report.lost);
        }
        Ok(())
    })
}

/// Runs `tpw-testnet key-drill`.
pub(crate) fn key_drill() -> anyhow::Result<()> {
    block_on(async move {
        let report = tpw_testnet::keydrill::key_drill().await?;
        print_line(&report)?;
        let held = report.old_key_signed_during_overlap
            && report.old_key_refused_after_overlap
            && report.new_key_signed
            && report.leaked_key_refused
            && report.spare_key_signed;
        if report.lost > 0 || !held {
            anyhow::bail!("the key drill failed: {report:?}");
        }
        Ok(())
    })
}

/// Runs `tpw-testnet chaos`, printing the seed first so the schedule can be run again.
/// Runs `tpw-testnet hostile`.
pub(crate) fn hostile() -> anyhow::Result<()> {
    block_on(async move {
        let dir = tempfile::tempdir()?;
        let report = tpw_testnet::hostile::run(dir.path()).await?;
        print_line(&report)?;
        anyhow::ensure!(
            report.server_errors == 0
                && report.hangs == 0
                && report.failed.is_empty()
                && report.serving
                && report.ledger_unchanged_by_refusals,
            "hostile requests mishandled: {} 5xx, {} hangs, failed {:?}, serving {}, ledger unchanged {}",
            report.server_errors,
            report.hangs,
            report.failed,
            report.serving,
            report.ledger_unchanged_by_refusals
        );
        Ok(())
    })
}

pub(crate) fn chaos(args: ChaosArgs) -> anyhow::Result<()> {
    let ChaosArgs {
        seconds,
        voters,
        observers,
        seed,
    } = args;
    block_on(async move {
        let seed = seed.unwrap_or_else(super::sim::clock_seed);
        eprintln!("chaos seed {seed} (same schedule again: --seed {seed})");
        let report = tpw_testnet::chaos::run(seconds, voters, observers, seed).await?;
        print_line(&report)?;
        anyhow::ensure!(
            report.lost == 0
                && report.duplicated == 0
                && report.conserved
                && report.nodes_agree
                && report.bad_inputs.mishandled == 0,
            "the history check failed: lost {}, duplicated {}, conserved {}, nodes agree {}, bad input mishandled {}",
            report.lost,
            report.duplicated,
            report.conserved,
            report.nodes_agree,
            report.bad_inputs.mishandled
        );
        Ok(())
    })
}
