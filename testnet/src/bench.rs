//! The load generator: pre-signed transfers driven over HTTP by concurrent clients, closed loop
//! by default or open loop at a fixed offered rate, reporting throughput and per-transfer
//! submit-to-commit latency.

use crate::network::{partner_account, LocalNetwork, LOAD_ASSET};
use anyhow::bail;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tpw_contracts::ops::Transfer;
use tpw_contracts::{Body, Operation, ResultCode, Transaction, TransferKind};
use tpw_node::client::Client;

/// Bench settings.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// Voting nodes.
    pub nodes: usize,
    /// Observer nodes.
    pub observers: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Transfers in total.
    pub transfers: usize,
    /// Transfers per request.
    pub batch: usize,
    /// Offered transfers per second (open loop), or closed loop when absent.
    pub rate: Option<f64>,
    /// Settlement partners (accounts) the load spreads over.
    pub partners: usize,
    /// The nodes serve TLS (a throwaway CA) instead of plain HTTP.
    pub tls: bool,
}

/// The one-line JSON report (a stable interface).
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Voting nodes.
    pub nodes: usize,
    /// Observer nodes.
    pub observers: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Transfers per request.
    pub batch: usize,
    /// Offered rate (0 for closed loop).
    pub rate: f64,
    /// Transfers sent.
    pub transfers: usize,
    /// Transfers not committed with code ok.
    pub rejected: usize,
    /// Committed transfers per second.
    pub transfers_per_s: f64,
    /// Median submit-to-commit latency.
    pub latency_p50_ms: f64,
    /// 99th percentile submit-to-commit latency.
    pub latency_p99_ms: f64,
    /// Peak resident memory of the node processes, MiB (sum).
    pub node_peak_rss_mib: u64,
}

/// Signs `transfers` posted transfers among the partners (ids from 0), on all cores.
pub fn presign(network_id: [u8; 32], keys: &[SigningKey], transfers: usize) -> Vec<Vec<u8>> {
    let partners = keys.len();
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let chunk = transfers.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    let start = thread * chunk;
                    let end = ((thread + 1) * chunk).min(transfers);
                    (start..end)
                        .map(|index| {
                            let from = index % partners;
                            let to = (from + 1 + (index / partners) % (partners - 1)) % partners;
                            let operation = Operation::Transfer(Transfer {
                                id: index as u128,
                                debit_account: partner_account(from),
                                credit_account: partner_account(to),
                                asset: LOAD_ASSET,
                                amount: 1,
                                kind: TransferKind::Posted,
                                reference: 0,
                            });
                            Transaction::sign(
                                network_id,
                                &keys[from],
                                tpw_node::client::fresh_validity(),
                                Body::single(operation),
                            )
                            .to_bytes()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("signing threads do not panic"))
            .collect()
    })
}

struct RequestOutcome {
    latency: Duration,
    transfers: usize,
    rejected: usize,
}

async fn send_batch(client: &Client, batch: &[Vec<u8>], scheduled: Instant) -> RequestOutcome {
    let rejected = match client.submit(batch, true, Some(60_000)).await {
        Ok((_, response)) => response
            .results
            .iter()
            .filter(|result| result.status != "committed" || result.code != Some(ResultCode::Ok))
            .count(),
        Err(error) => {
            eprintln!("request failed: {error}");
            batch.len()
        }
    };
    RequestOutcome {
        latency: scheduled.elapsed(),
        transfers: batch.len(),
        rejected,
    }
}

fn percentile_ms(sorted_micros: &[u64], fraction: f64) -> f64 {
    if sorted_micros.is_empty() {
        return 0.0;
    }
    let rank =
        ((sorted_micros.len() as f64 * fraction).ceil() as usize).clamp(1, sorted_micros.len());
    (sorted_micros[rank - 1] as f64 / 1000.0 * 100.0).round() / 100.0
}

impl BenchSettings {
    /// Refuses settings that cannot make a run.
    fn check(&self) -> anyhow::Result<()> {
        if self.clients == 0 || self.batch == 0 || self.transfers == 0 || self.partners < 2 {
            bail!("--clients, --batch and --transfers must be positive and --partners at least 2");
        }
        if self.batch > tpw_node::limits::SUBMIT_TRANSACTIONS_MAX {
            bail!(
                "--batch must be at most {}",
                tpw_node::limits::SUBMIT_TRANSACTIONS_MAX
            );
        }
        Ok(())
    }
}

/// Every transfer's latency (its request's), sorted, and the transfers not committed with
/// code ok.
fn latencies_of(outcomes: &[RequestOutcome], transfers: usize) -> (Vec<u64>, usize) {
    let mut latencies: Vec<u64> = Vec::with_capacity(transfers);
    let mut rejected = 0;
    for outcome in outcomes {
        rejected += outcome.rejected;
        latencies.extend(std::iter::repeat_n(
            outcome.latency.as_micros() as u64,
            outcome.transfers,
        ));
    }
    latencies.sort_unstable();
    (latencies, rejected)
}

/// Builds a throwaway network, runs the load, tears the network down, and reports.
pub async fn run(settings: &BenchSettings) -> anyhow::Result<BenchReport> {
    settings.check()?;
    let dir = tempfile::Builder::new().prefix("tpw-bench-").tempdir()?;
    let options = crate::network::NetworkOptions {
        tls: settings.tls,
        ..crate::network::NetworkOptions::default()
    };
    let (mut network, parties) = LocalNetwork::create_with(
        dir.path(),
        settings.nodes,
        settings.observers,
        settings.partners,
        &options,
    )?;
    network.start().await?;
    let network_id = network.genesis.compute_network_id()?;
    eprintln!("signing {} transfers...", settings.transfers);
    let envelopes = presign(network_id, &parties.keys, settings.transfers);
    let batches: Vec<Vec<Vec<u8>>> = envelopes
        .chunks(settings.batch)
        .map(<[Vec<u8>]>::to_vec)
        .collect();
    let leader = network
        .leader()
        .await
        .ok_or_else(|| anyhow::anyhow!("the nodes do not agree on a leader"))?;
    let client = Client::new(&leader);
    eprintln!(
        "driving {} requests with {} clients...",
        batches.len(),
        settings.clients
    );
    let started = Instant::now();
    let outcomes = match settings.rate {
        None => closed_loop(&client, batches, settings.clients).await,
        Some(rate) => open_loop(&client, batches, settings.clients, rate, settings.batch).await,
    };
    let elapsed = started.elapsed();
    let peak_rss = network
        .pids()
        .into_iter()
        .map(crate::network::rss_mib)
        .sum();
    network.stop();
    let (latencies, rejected) = latencies_of(&outcomes, settings.transfers);
    let committed = settings.transfers - rejected;
    Ok(BenchReport {
        nodes: settings.nodes,
        observers: settings.observers,
        clients: settings.clients,
        batch: settings.batch,
        rate: settings.rate.unwrap_or(0.0),
        transfers: settings.transfers,
        rejected,
        transfers_per_s: (committed as f64 / elapsed.as_secs_f64()).round(),
        latency_p50_ms: percentile_ms(&latencies, 0.50),
        latency_p99_ms: percentile_ms(&latencies, 0.99),
        node_peak_rss_mib: peak_rss,
    })
}

/// Drives pre-signed envelopes at one node with `clients` concurrent clients, `batch` per
/// request, each waiting for commit; returns how many were not committed with code ok.
pub async fn drive(client: &Client, envelopes: &[Vec<u8>], batch: usize, clients: usize) -> usize {
    let batches: Vec<Vec<Vec<u8>>> = envelopes
        .chunks(batch.max(1))
        .map(<[Vec<u8>]>::to_vec)
        .collect();
    closed_loop(client, batches, clients)
        .await
        .iter()
        .map(|outcome| outcome.rejected)
        .sum()
}

async fn closed_loop(
    client: &Client,
    batches: Vec<Vec<Vec<u8>>>,
    clients: usize,
) -> Vec<RequestOutcome> {
    let batches = Arc::new(batches);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, batches, next) = (client.clone(), Arc::clone(&batches), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(batch) = batches.get(index) else {
                    break;
                };
                outcomes.push(send_batch(&client, batch, Instant::now()).await);
            }
            outcomes
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap_or_default());
    }
    outcomes
}

/// Offers `rate` transfers/s: request k is due at start + k * batch / rate, whether or not
/// earlier ones finished; latency counts from the due time, so queueing is not hidden.
async fn open_loop(
    client: &Client,
    batches: Vec<Vec<Vec<u8>>>,
    clients: usize,
    rate: f64,
    batch: usize,
) -> Vec<RequestOutcome> {
    let interval = Duration::from_secs_f64(batch as f64 / rate.max(1.0));
    let permits = Arc::new(tokio::sync::Semaphore::new(clients.max(1) * 4));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(batches.len());
    for (index, batch) in batches.into_iter().enumerate() {
        let due = start + interval.mul_f64(index as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, permits) = (client.clone(), Arc::clone(&permits));
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            send_batch(&client, &batch, due).await
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(outcome) = task.await {
            outcomes.push(outcome);
        }
    }
    outcomes
}
