//! `tpw-testnet`: local networks, load and benchmarks for tpwalletoec.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use tpw_testnet::{bench, commands, drills, eventbench, netbench, sigbench};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tpw-testnet",
    version,
    about = "Local tpwalletoec networks, load and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Builds a throwaway network, drives signed transfers at it, prints one JSON line.
    Bench {
        /// Voting nodes.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// Observer nodes.
        #[arg(long, default_value_t = 0)]
        observers: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Transfers in total.
        #[arg(long, default_value_t = 200_000)]
        transfers: usize,
        /// Transfers per request (1 = one per request).
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Offered transfers per second (open loop); closed loop when absent.
        #[arg(long)]
        rate: Option<f64>,
        /// Settlement partners the load spreads over.
        #[arg(long, default_value_t = 1000)]
        partners: usize,
    },
    /// Creates a local network in a folder (or restarts the one there) and leaves it running;
    /// prints one JSON line with every node's name, role and API.
    Up {
        /// The network's folder.
        #[arg(long)]
        dir: PathBuf,
        /// Voting nodes.
        #[arg(long, default_value_t = 3)]
        voters: usize,
        /// Regulator observer nodes.
        #[arg(long, default_value_t = 1)]
        observers: usize,
    },
    /// Prints every node's status as one JSON line.
    Status {
        /// The network's folder.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Stops the network in a folder.
    Down {
        /// The network's folder.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Runs B2B payments across banks through every voting node; exits 0 only if every node agrees.
    Demo {
        /// The network's folder.
        #[arg(long)]
        dir: PathBuf,
    },
    /// SIGKILLs one node of a running network.
    Kill {
        /// The network's folder.
        #[arg(long)]
        dir: PathBuf,
        /// The node's name, such as bank-2.
        #[arg(long)]
        node: String,
    },
    /// Starts a killed node again on its data.
    Restart {
        /// The network's folder.
        #[arg(long)]
        dir: PathBuf,
        /// The node's name.
        #[arg(long)]
        node: String,
    },
    /// Freezes one node (SIGSTOP) until `resume`.
    Pause {
        /// The network's folder.
        #[arg(long)]
        dir: PathBuf,
        /// The node's name.
        #[arg(long)]
        node: String,
    },
    /// Lets a paused node run again (SIGCONT).
    Resume {
        /// The network's folder.
        #[arg(long)]
        dir: PathBuf,
        /// The node's name.
        #[arg(long)]
        node: String,
    },
    /// Cuts one node off from all its peers through its admin interface.
    Partition {
        /// The network's folder.
        #[arg(long)]
        dir: PathBuf,
        /// The node's name.
        #[arg(long)]
        node: String,
    },
    /// Reconnects a partitioned node to its peers.
    Heal {
        /// The network's folder.
        #[arg(long)]
        dir: PathBuf,
        /// The node's name.
        #[arg(long)]
        node: String,
    },
    /// Builds a 3-voter + 1-observer network, SIGKILLs the leader under load `rounds` times
    /// and prints one JSON line with the time from each kill to the first new commit and the
    /// acknowledged transfers lost (0).
    Failover {
        /// Leader kills.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Builds a 3-voter + 1-observer network, commits `transfers` with the observer down,
    /// wipes it and measures its catch-up through a snapshot; prints one JSON line.
    CatchUp {
        /// Transfers committed before the observer returns.
        #[arg(long, default_value_t = 100_000)]
        transfers: usize,
        /// Raft log entries each node keeps (the smallest allowed, so the voters compact).
        #[arg(long, default_value_t = 16)]
        log_retention_entries: u64,
    },
    /// The disaster-recovery drill: builds 3 voters and an observer with a ledger of
    /// `transfers`, then under load SIGKILLs the leader (RTO) and destroys a voter's disk,
    /// rebuilding it as a new node through governance (catch-up time); checks that no
    /// acknowledged transfer is lost (RPO). Prints one JSON line.
    Dr {
        /// Transfers in the ledger before the disasters.
        #[arg(long, default_value_t = 1_000_000)]
        transfers: usize,
        /// Raft log entries each node keeps (small, so the rebuilt node needs a snapshot).
        #[arg(long, default_value_t = 16)]
        log_retention_entries: u64,
    },
    /// The key-compromise drill: under load, rotates a partner key with an overlap window,
    /// revokes a leaked partner key at once, and rotates a node key through governance and a
    /// restart; prints one JSON line (refusals, the longest time without a block, losses).
    KeyDrill,
    /// Builds a one-node network, queues a netting cycle of --obligations among --participants,
    /// closes it and prints one JSON line with gross, net and the settlement time.
    BenchNetting {
        /// Obligations in the cycle.
        #[arg(long, default_value_t = 100_000)]
        obligations: usize,
        /// Participants owing and owed.
        #[arg(long, default_value_t = 100)]
        participants: usize,
    },
    /// Measures how fast settlement reaches partners: block to event on a stream and to a
    /// webhook delivery (p50/p99), and webhook deliveries per second under a transfer load.
    BenchEvents {
        /// Voting nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Observers.
        #[arg(long, default_value_t = 1)]
        observers: usize,
        /// Partners, each with a webhook endpoint.
        #[arg(long, default_value_t = 16)]
        partners: usize,
        /// Transfers.
        #[arg(long, default_value_t = 20_000)]
        transfers: usize,
        /// Transfers per request.
        #[arg(long, default_value_t = 100)]
        batch: usize,
    },
    /// Runs the deterministic simulator: real consensus and ledger code under simulated
    /// network and disk faults. Prints each seed's outcome on stderr and ends with one JSON
    /// line; exits non-zero if any seed failed. Give one of --seeds, --random, --seed.
    Sim {
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
    },
    /// Builds a local network of real node processes, runs a tracked workload while it
    /// SIGKILLs, pauses and partitions nodes and sends bad input, then heals, checks the client
    /// history and prints one JSON evidence record; exits non-zero if anything was lost,
    /// duplicated, not conserved or divergent.
    Chaos {
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
    },
    /// Measures signature verification: ZIP-215 (ed25519-zebra) against ed25519-dalek.
    BenchSignatures {
        /// Signatures per run.
        #[arg(long, default_value_t = 65_536)]
        signatures: usize,
        /// Distinct signer keys (batch verification gains when keys repeat).
        #[arg(long, default_value_t = 65_536)]
        keys: usize,
    },
}

/// A seed from the clock and the process id: it only picks which runs to make, and every run
/// prints its seed for replay.
fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0);
    tpw_testnet::sim::rng::SimRng::new(now ^ u64::from(std::process::id())).next_u64()
}

fn run_sim(
    seeds: Option<usize>,
    random: Option<usize>,
    seed: Option<u64>,
    threads: usize,
    replay_every: usize,
) -> anyhow::Result<()> {
    let list: Vec<u64> = match (seeds, random, seed) {
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
    };
    // One seed replayed on its own is always run twice, to show it replays.
    let replay_every = if list.len() == 1 { 1 } else { replay_every };
    let summary = tpw_testnet::sim::run_seeds(&list, threads, replay_every, &|report, replay| {
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
    });
    println!("{}", serde_json::to_string(&summary)?);
    anyhow::ensure!(
        summary.failed_seeds.is_empty(),
        "{} seeds failed: {:?}",
        summary.failed_seeds.len(),
        summary.failed_seeds
    );
    Ok(())
}

fn block_on(work: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench {
            nodes,
            observers,
            clients,
            transfers,
            batch,
            rate,
            partners,
        } => {
            let settings = bench::BenchSettings {
                nodes,
                observers,
                clients,
                transfers,
                batch,
                rate,
                partners,
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(bench::run(&settings)))
                .and_then(|report| {
                    println!("{}", serde_json::to_string(&report)?);
                    Ok(())
                })
        }
        Command::Up {
            dir,
            voters,
            observers,
        } => block_on(async move {
            let report = commands::up(&dir, voters, observers).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }),
        Command::Status { dir } => block_on(async move {
            println!("{}", serde_json::to_string(&commands::status(&dir).await?)?);
            Ok(())
        }),
        Command::Down { dir } => commands::down(&dir).map(|stopped| {
            println!("{}", serde_json::json!({ "stopped": stopped }));
        }),
        Command::Demo { dir } => block_on(async move {
            let report = commands::demo(&dir).await?;
            println!("{}", serde_json::to_string(&report)?);
            anyhow::ensure!(
                report.conserved && report.nodes_agreeing == report.nodes,
                "the nodes do not agree: {} of {} on one head, conserved: {}",
                report.nodes_agreeing,
                report.nodes,
                report.conserved
            );
            Ok(())
        }),
        Command::Kill { dir, node } => commands::inject(&dir, &node, commands::Fault::Kill),
        Command::Pause { dir, node } => commands::inject(&dir, &node, commands::Fault::Pause),
        Command::Resume { dir, node } => commands::inject(&dir, &node, commands::Fault::Resume),
        Command::Restart { dir, node } => {
            block_on(async move { commands::restart(&dir, &node).await })
        }
        Command::Partition { dir, node } => {
            block_on(async move { commands::partition(&dir, &node, true).await })
        }
        Command::Heal { dir, node } => {
            block_on(async move { commands::partition(&dir, &node, false).await })
        }
        Command::Dr {
            transfers,
            log_retention_entries,
        } => block_on(async move {
            let report = tpw_testnet::dr::dr(transfers, log_retention_entries).await?;
            println!("{}", serde_json::to_string(&report)?);
            if report.lost > 0 {
                anyhow::bail!("{} acknowledged transfers were lost", report.lost);
            }
            Ok(())
        }),
        Command::KeyDrill => block_on(async move {
            let report = tpw_testnet::keydrill::key_drill().await?;
            println!("{}", serde_json::to_string(&report)?);
            let held = report.old_key_signed_during_overlap
                && report.old_key_refused_after_overlap
                && report.new_key_signed
                && report.leaked_key_refused
                && report.spare_key_signed;
            if report.lost > 0 || !held {
                anyhow::bail!("the key drill failed: {report:?}");
            }
            Ok(())
        }),
        Command::Failover { rounds } => block_on(async move {
            let report = drills::failover(rounds).await?;
            println!("{}", serde_json::to_string(&report)?);
            if report.lost > 0 {
                anyhow::bail!("{} acknowledged transfers were lost", report.lost);
            }
            Ok(())
        }),
        Command::CatchUp {
            transfers,
            log_retention_entries,
        } => block_on(async move {
            let report = drills::catch_up(transfers, log_retention_entries).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }),
        Command::BenchNetting {
            obligations,
            participants,
        } => block_on(async move {
            let report = netbench::run(obligations, participants).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }),
        Command::BenchEvents {
            nodes,
            observers,
            partners,
            transfers,
            batch,
        } => block_on(async move {
            let report = eventbench::run(nodes, observers, partners, transfers, batch).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }),
        Command::Sim {
            seeds,
            random,
            seed,
            threads,
            replay_every,
        } => run_sim(seeds, random, seed, threads, replay_every),
        Command::Chaos {
            seconds,
            voters,
            observers,
            seed,
        } => block_on(async move {
            let seed = seed.unwrap_or_else(clock_seed);
            eprintln!("chaos seed {seed} (same schedule again: --seed {seed})");
            let report = tpw_testnet::chaos::run(seconds, voters, observers, seed).await?;
            println!("{}", serde_json::to_string(&report)?);
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
        }),
        Command::BenchSignatures { signatures, keys } => {
            sigbench::run(signatures, keys).map(|reports| {
                for report in reports {
                    println!("{report}");
                }
            })
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
