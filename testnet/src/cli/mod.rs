//! The `tpw-testnet` command line: the list of commands, their help, and which module runs
//! each. Local networks, drills, benchmarks and the simulator each have their own module.

mod bench;
mod drills;
mod network;
mod sim;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tpw_testnet::commands;

#[derive(Parser)]
#[command(
    name = "tpw-testnet",
    version,
    about = "Local tpwalletoec networks, load and benchmarks"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Builds a throwaway network, drives signed transfers at it, prints one JSON line.
    Bench(bench::BenchArgs),
    /// Creates a local network in a folder (or restarts the one there) and leaves it running;
    /// prints one JSON line with every node's name, role and API.
    Up(network::UpArgs),
    /// Prints shell lines that set TPW_NODE (the first node's API), TPW_CA_FILE (with TLS)
    /// and TPW_KEY (the regulator's key, which reads every account) for the network in a
    /// folder, for `eval "$(tpw-testnet env --dir DIR)"` before `tpw` commands.
    Env {
        /// The network's folder.
        #[arg(long)]
        dir: PathBuf,
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
    BenchEvents(bench::BenchEventsArgs),
    /// Runs the deterministic simulator: real consensus and ledger code under simulated
    /// network and disk faults. Prints each seed's outcome on stderr and ends with one JSON
    /// line; exits non-zero if any seed failed. Give one of --seeds, --random, --seed.
    Sim(sim::SimArgs),
    /// Builds a local network of real node processes, runs a tracked workload while it
    /// SIGKILLs, pauses and partitions nodes and sends bad input, then heals, checks the client
    /// history and prints one JSON evidence record; exits non-zero if anything was lost,
    /// duplicated, not conserved or divergent.
    Chaos(drills::ChaosArgs),
    /// Sends a corpus of hostile requests (malformed HTTP, slow and oversized requests, bad
    /// paths and cursors, replayed reads and operations, overdrafts, unbounded accounts,
    /// mints by a partner, expired and old-format envelopes, too many streams) to a real node
    /// on loopback; prints one JSON record and exits non-zero on any 5xx, hang, unexpected
    /// answer, crash, or ledger change by a refused request.
    Hostile,
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

/// Runs the command `tpw-testnet` was given.
pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Bench(args) => bench::bench(args),
        Command::Up(args) => network::up(args),
        Command::Env { dir } => network::env(&dir),
        Command::Status { dir } => network::status(dir),
        Command::Down { dir } => network::down(&dir),
        Command::Demo { dir } => network::demo(dir),
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
        } => drills::dr(transfers, log_retention_entries),
        Command::KeyDrill => drills::key_drill(),
        Command::Failover { rounds } => drills::failover(rounds),
        Command::CatchUp {
            transfers,
            log_retention_entries,
        } => drills::catch_up(transfers, log_retention_entries),
        Command::BenchNetting {
            obligations,
            participants,
        } => bench::bench_netting(obligations, participants),
        Command::BenchEvents(args) => bench::bench_events(args),
        Command::Sim(args) => sim::sim(args),
        Command::Chaos(args) => drills::chaos(args),
        Command::Hostile => drills::hostile(),
        Command::BenchSignatures { signatures, keys } => bench::bench_signatures(signatures, keys),
    }
}

/// Runs `work` on a multi-threaded async runtime.
fn block_on(work: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

/// Prints `report` as one JSON line.
fn print_line(report: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(report)?);
    Ok(())
}
