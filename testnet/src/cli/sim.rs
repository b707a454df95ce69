//! `tpw-testnet sim`: picks the seeds (fixed list, random, or one), runs the deterministic
//! simulator on them, and reports each seed on stderr and the summary as one JSON line.

use tpw_testnet::sim::SeedReport;

/// What `tpw-testnet sim` was asked.
#[derive(clap::Args)]
pub(crate) struct SimArgs {
    /// Runs the first N seeds of the fixed list (testnet/sim-seeds.txt).
    #[arg(long, conflicts_with_all = ["random", "seed"])]
    seeds: Option<usize>,
    /// Runs N random seeds.
    #[arg(long, conflicts_with = "seed")]
    random: Option<usize>,
    /// Replays one seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Threads running seeds side by side (each seed stays on one thread).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Runs every Nth seed twice and checks the two runs' digests match (0: never).
    #[arg(long, default_value_t = 16)]
    replay_every: usize,
}

/// A seed from the clock and the process id: it only picks which runs to make, and every run
/// prints its seed for replay.
pub(super) fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0);
    tpw_testnet::sim::rng::SimRng::new(now ^ u64::from(std::process::id())).next_u64()
}

/// Runs `tpw-testnet sim`.
pub(crate) fn sim(args: SimArgs) -> anyhow::Result<()> {
    let SimArgs {
        seeds,
        random,
        seed,
        threads,
        replay_every,
    } = args;
    let list = seed_list(seeds, random, seed)?;
    // One seed replayed on its own is always run twice, to show it replays.
    let replay_every = if list.len() == 1 { 1 } else { replay_every };
    let summary = tpw_testnet::sim::run_seeds(&list, threads, replay_every, &report_seed);
    println!("{}", serde_json::to_string(&summary)?);
    anyhow::ensure!(
        summary.failed_seeds.is_empty(),
        "{} seeds failed: {:?}",
        summary.failed_seeds.len(),
        summary.failed_seeds
    );
    Ok(())
}

/// The seeds to run: the first `seeds` of the fixed list, `random` random ones, or `seed`.
fn seed_list(
    seeds: Option<usize>,
    random: Option<usize>,
    seed: Option<u64>,
) -> anyhow::Result<Vec<u64>> {
    Ok(match (seeds, random, seed) {
        (Some(count), None, None) => {
            let fixed = tpw_testnet::sim::fixed_seeds().map_err(anyhow::Error::msg)?;
            anyhow::ensure!(
                count <= fixed.len(),
                "the fixed list holds {} seeds; --seeds {count} asks for more",
                fixed.len()
            );
            fixed[..count].to_vec()
        }
        (None, Some(count), None) => {
            let mut rng = tpw_testnet::sim::rng::SimRng::new(clock_seed());
            (0..count).map(|_| rng.next_u64()).collect()
        }
        (None, None, Some(seed)) => vec![seed],
        _ => anyhow::bail!("give one of --seeds N, --random N or --seed S"),
    })
}

/// One seed's outcome on stderr, with the command that replays it.
fn report_seed(report: &SeedReport, replay: Option<bool>) {
    let verdict = match (&report.failure, replay) {
        (Some(reason), _) => format!("FAILED: {reason}"),
        (None, Some(false)) => "FAILED: a second run gave another digest".to_string(),
        (None, Some(true)) => "ok, replayed identically".to_string(),
        (None, None) => "ok".to_string(),
    };
    eprintln!(
        "seed {}: {verdict} ({} voters, {} observers, {} blocks, {} transfers acknowledged, {} faults, recovery {:?} ms, digest {}); replay: tpw-testnet sim --seed {}",
        report.seed,
        report.voters,
        report.observers,
        report.height,
        report.transfers_acknowledged,
        report.faults_injected,
        report.recovery_ms,
        &report.digest[..report.digest.len().min(16)],
        report.seed
    );
}
