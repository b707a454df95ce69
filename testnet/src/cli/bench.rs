//! The benchmarks' commands: transfer load, netting, event and webhook latency, and signature
//! verification; each prints its figures as JSON lines.

use super::{block_on, print_line};
use tpw_testnet::{bench, eventbench, netbench, sigbench};

/// What `tpw-testnet bench` was asked.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
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
    /// Serve and load the nodes over TLS (a throwaway CA) instead of plain HTTP.
    #[arg(long)]
    tls: bool,
}

/// What `tpw-testnet bench-events` was asked.
#[derive(clap::Args)]
pub(crate) struct BenchEventsArgs {
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
}

/// Runs `tpw-testnet bench`.
pub(crate) fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let BenchArgs {
        nodes,
        observers,
        clients,
        transfers,
        batch,
        rate,
        partners,
        tls,
    } = args;
    let settings = bench::BenchSettings {
        nodes,
        observers,
        clients,
        transfers,
        batch,
        rate,
        partners,
        tls,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(bench::run(&settings)))
        .and_then(|report| print_line(&report))
}

/// Runs `tpw-testnet bench-netting`.
pub(crate) fn bench_netting(obligations: usize, participants: usize) -> anyhow::Result<()> {
    block_on(async move { print_line(&netbench::run(obligations, participants).await?) })
}

/// Runs `tpw-testnet bench-events`.
pub(crate) fn bench_events(args: BenchEventsArgs) -> anyhow::Result<()> {
    let BenchEventsArgs {
        nodes,
        observers,
        partners,
        transfers,
        batch,
    } = args;
    block_on(async move {
        let report = eventbench::run(nodes, observers, partners, transfers, batch).await?;
        print_line(&report)
    })
}

/// Runs `tpw-testnet bench-signatures`: one line per verifier.
pub(crate) fn bench_signatures(signatures: usize, keys: usize) -> anyhow::Result<()> {
    sigbench::run(signatures, keys).map(|reports| {
        for report in reports {
            println!("{report}");
        }
    })
}
