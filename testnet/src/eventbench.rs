//! `tpw-testnet bench-events`: how fast settlement reaches partners. A local network takes a
//! load of transfers among partners, each of which registered a webhook endpoint on a local
//! receiver; a regulator's event stream follows every event. Reports the time from a block's
//! cut (its block time, on the same machine's clock) to each event on the stream and to each
//! webhook delivery (p50/p99: an upper bound of commit-to-event, since it includes the commit
//! itself), and the webhook deliveries per second.

use crate::limits::EVENTBENCH_DRAIN_TIMEOUT;
use crate::network::{partner_account, LocalNetwork, LOAD_ASSET};
use crate::receiver::WebhookReceiver;
use anyhow::{bail, Context};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tpw_contracts::ops::{SetWebhook, Transfer};
use tpw_contracts::{Body, Operation, Transaction, TransferKind};
use tpw_node::client::Client;

/// The benchmark's JSON line.
#[derive(Debug, serde::Serialize)]
pub struct EventBenchReport {
    /// Voting nodes.
    pub nodes: usize,
    /// Observers.
    pub observers: usize,
    /// Partners (each with one webhook endpoint).
    pub partners: usize,
    /// Transfers committed.
    pub transfers: usize,
    /// Transfers per second of the load.
    pub transfers_per_second: f64,
    /// Events on the regulator's stream.
    pub stream_events: usize,
    /// Block cut to event on the stream, median.
    pub stream_p50_ms: f64,
    /// Block cut to event on the stream, 99th percentile.
    pub stream_p99_ms: f64,
    /// Webhook deliveries received (two per transfer: payer and payee).
    pub webhook_deliveries: usize,
    /// Deliveries per second, first to last.
    pub webhook_deliveries_per_second: f64,
    /// Block cut to delivery, median.
    pub webhook_p50_ms: f64,
    /// Block cut to delivery, 99th percentile.
    pub webhook_p99_ms: f64,
}

fn percentile(sorted: &[u64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)] as f64
}

/// Runs the benchmark.
pub async fn run(
    nodes: usize,
    observers: usize,
    partners: usize,
    transfers: usize,
    batch: usize,
) -> anyhow::Result<EventBenchReport> {
    if partners < 2 || batch == 0 {
        bail!("--partners must be at least 2 and --batch at least 1");
    }
    let dir = tempfile::Builder::new().prefix("tpw-events-").tempdir()?;
    let (mut network, parties) = LocalNetwork::create(dir.path(), nodes, observers, partners)?;
    network.start().await?;
    let network_id = network.genesis.compute_network_id()?;
    let leader = Client::new(&network.leader().await.context("no leader")?);
    let receiver = WebhookReceiver::start(crate::network::free_port()?).await?;
    register_webhooks(network_id, &parties.keys, &leader, &receiver).await?;
    let (follower, stream_latencies) = follow_stream(&network, dir.path(), transfers).await?;
    eprintln!("submitting {transfers} transfers among {partners} partners, {batch} per request...");
    let envelopes = sign_transfers(network_id, &parties.keys, transfers, partners);
    let load_seconds = submit_load(&network, nodes, &envelopes, batch).await?;
    eprintln!("load committed in {load_seconds:.1} s; waiting for every event and delivery...");
    let deadline = Instant::now() + EVENTBENCH_DRAIN_TIMEOUT;
    while !follower.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected = transfers * 2;
    receiver
        .wait_for(expected, deadline.saturating_duration_since(Instant::now()))
        .await;
    let deliveries = receiver.deliveries();
    let mut stream: Vec<u64> = stream_latencies
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    stream.sort_unstable();
    let (webhook, unique) = webhook_latencies(&deliveries)?;
    let span = match (deliveries.first(), deliveries.last()) {
        (Some(first), Some(last)) => last.at.duration_since(first.at).as_secs_f64(),
        _ => 0.0,
    };
    network.stop();
    if stream.len() < transfers {
        bail!("the stream showed {} of {transfers} events", stream.len());
    }
    if webhook.len() < expected {
        bail!(
            "{} of {expected} transfer deliveries arrived",
            webhook.len()
        );
    }
    Ok(EventBenchReport {
        nodes,
        observers,
        partners,
        transfers,
        transfers_per_second: (transfers as f64 / load_seconds).round(),
        stream_events: stream.len(),
        stream_p50_ms: percentile(&stream, 0.50),
        stream_p99_ms: percentile(&stream, 0.99),
        webhook_deliveries: unique,
        webhook_deliveries_per_second: if span > 0.0 {
            (deliveries.len() as f64 / span).round()
        } else {
            0.0
        },
        webhook_p50_ms: percentile(&webhook, 0.50),
        webhook_p99_ms: percentile(&webhook, 0.99),
    })
}

/// Every partner registers a webhook endpoint on the local receiver.
async fn register_webhooks(
    network_id: [u8; 32],
    keys: &[ed25519_dalek::SigningKey],
    leader: &Client,
    receiver: &WebhookReceiver,
) -> anyhow::Result<()> {
    let registrations: Vec<Vec<u8>> = keys
        .iter()
        .map(|key| {
            let operation = Operation::SetWebhook(SetWebhook {
                endpoint: 0,
                url: receiver.url(),
            });
            Transaction::sign(
                network_id,
                key,
                tpw_node::client::fresh_validity(),
                Body::single(operation),
            )
            .to_bytes()
        })
        .collect();
    let (status, _) = leader.submit(&registrations, true, None).await?;
    if status != 200 {
        bail!("webhook registration failed with HTTP {status}");
    }
    Ok(())
}

/// Follows a regulator's event stream on the last node (an observer when there is one, which
/// sees every event) from the head, recording each transfer event's latency from its block's
/// cut, until `transfers` were seen.
async fn follow_stream(
    network: &LocalNetwork,
    dir: &std::path::Path,
    transfers: usize,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, Arc<Mutex<Vec<u64>>>)> {
    let regulator = crate::network::regulator_key(dir)?;
    let reader = Client::new(network.apis.last().context("no node")?).with_key(&regulator);
    let head = reader.status().await?.height;
    let mut stream = reader.events(Some(&head.to_string())).await?;
    let stream_latencies = Arc::new(Mutex::new(Vec::with_capacity(transfers)));
    let latencies = Arc::clone(&stream_latencies);
    let follower = tokio::spawn(async move {
        let mut seen = 0;
        while seen < transfers {
            let Ok(Some(event)) = stream.next().await else {
                return;
            };
            if event.kind == "operation" {
                let now = tpw_node::runtime::now_ms();
                latencies
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(now.saturating_sub(event.block_time_ms));
                seen += 1;
            }
        }
    });
    Ok((follower, stream_latencies))
}

/// The load: transfer `index` goes from partner `index % partners` to the next one.
fn sign_transfers(
    network_id: [u8; 32],
    keys: &[ed25519_dalek::SigningKey],
    transfers: usize,
    partners: usize,
) -> Vec<Vec<u8>> {
    (0..transfers)
        .map(|index| {
            let from = index % partners;
            let operation = Operation::Transfer(Transfer {
                id: index as u128 + 1,
                debit_account: partner_account(from),
                credit_account: partner_account((from + 1) % partners),
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
        .collect()
}

/// Submits the envelopes in batches from 16 clients spread over the voting nodes, each batch
/// waiting for its commit; the seconds the load took.
async fn submit_load(
    network: &LocalNetwork,
    nodes: usize,
    envelopes: &[Vec<u8>],
    batch: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let clients = 16usize;
    let chunks: Vec<Vec<Vec<u8>>> = envelopes.chunks(batch).map(<[_]>::to_vec).collect();
    let chunks = Arc::new(chunks);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (chunks, next) = (Arc::clone(&chunks), Arc::clone(&next));
        let node = Client::new(&network.apis[client % nodes]);
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(chunk) = chunks.get(index) else {
                    return Ok::<(), anyhow::Error>(());
                };
                submit_until_committed(&node, chunk).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Submits one batch until it commits, retrying for a while.
async fn submit_until_committed(node: &Client, chunk: &[Vec<u8>]) -> anyhow::Result<()> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match node.submit(chunk, true, Some(30_000)).await {
            Ok((200, _)) => return Ok(()),
            Ok((status, response)) if attempts > 20 => {
                bail!(
                    "a batch did not commit: HTTP {status}: {:?}",
                    response.error
                )
            }
            Err(error) if attempts > 20 => return Err(error.into()),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Each transfer delivery's latency from its block's cut, sorted, and the distinct
/// deliveries received.
fn webhook_latencies(
    deliveries: &[crate::receiver::Delivery],
) -> anyhow::Result<(Vec<u64>, usize)> {
    let mut webhook: Vec<u64> = Vec::with_capacity(deliveries.len());
    let mut unique = std::collections::HashSet::new();
    for delivery in deliveries {
        unique.insert(delivery.delivery_id.clone());
        let body: serde_json::Value = serde_json::from_slice(&delivery.body)?;
        let block_time = body["event"]["block_time_ms"].as_u64().unwrap_or(0);
        if body["event"]["kind"] == "operation" && body["event"]["operation"]["type"] == "transfer"
        {
            webhook.push(delivery.at_ms.saturating_sub(block_time));
        }
    }
    webhook.sort_unstable();
    Ok((webhook, unique.len()))
}
