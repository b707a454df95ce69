//! Operational drills on a throwaway local network, each ending in one JSON report:
//! `failover` SIGKILLs the leader under load and measures the time to the first block committed
//! after the kill; `catch_up` wipes the regulator's observer on a large ledger and measures its
//! return through a snapshot. Both check that every node ends on one head and that no
//! acknowledged transfer is lost.

use crate::bench::{drive, presign};
use crate::limits::{DRILL_CONVERGE_TIMEOUT, DRILL_FAILOVER_TIMEOUT};
use crate::network::{partner_account, partner_id, LocalNetwork, NetworkOptions, LOAD_ASSET};
use anyhow::{bail, Context};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tpw_contracts::ops::Transfer;
use tpw_contracts::{Body, Operation, Transaction, TransferKind};
use tpw_node::api_types::StatusResponse;
use tpw_node::client::{Client, ClientError};

async fn statuses(network: &LocalNetwork, nodes: &[usize]) -> Vec<Option<StatusResponse>> {
    let mut all = Vec::with_capacity(nodes.len());
    for index in nodes {
        all.push(Client::new(&network.apis[*index]).status().await.ok());
    }
    all
}

/// Waits until the listed nodes report one height (at least `height_min`), head hash and
/// state root, and no divergence alarm; returns their common status.
pub async fn converge(
    network: &LocalNetwork,
    nodes: &[usize],
    height_min: u64,
) -> anyhow::Result<StatusResponse> {
    let deadline = Instant::now() + DRILL_CONVERGE_TIMEOUT;
    loop {
        let all = statuses(network, nodes).await;
        if let Some(alarmed) = all
            .iter()
            .flatten()
            .find(|status| status.divergence_alarms > 0)
        {
            bail!("node {} raised a divergence alarm", alarmed.node_id);
        }
        let heads: Vec<_> = all
            .iter()
            .flatten()
            .map(|status| {
                (
                    status.height,
                    status.head_hash.clone(),
                    status.state_root.clone(),
                )
            })
            .collect();
        if heads.len() == nodes.len()
            && heads[0].0 >= height_min
            && heads.iter().all(|head| *head == heads[0])
        {
            return all.into_iter().flatten().next().context("no node answered");
        }
        if Instant::now() > deadline {
            bail!("nodes {nodes:?} did not reach one head within {DRILL_CONVERGE_TIMEOUT:?}: {heads:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn leader_index(network: &LocalNetwork, api: &str) -> anyhow::Result<usize> {
    network
        .apis
        .iter()
        .position(|candidate| candidate == api)
        .context("the leader is not a node of this network")
}

struct CaughtUp {
    height: u64,
    lost: usize,
    acknowledged: usize,
}

/// Waits until the observer reaches `height`, stops the load, then waits for all four nodes to
/// agree and checks the load's acknowledged transfers on every node.
async fn converge_while(
    network: &LocalNetwork,
    height: u64,
    load: Load,
) -> anyhow::Result<CaughtUp> {
    let deadline = Instant::now() + DRILL_CONVERGE_TIMEOUT;
    let observer = Client::new(&network.apis[3]);
    loop {
        if observer
            .status()
            .await
            .is_ok_and(|status| status.height >= height)
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the observer did not reach height {height} within {DRILL_CONVERGE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let acknowledged = load.stop().await;
    let head = converge(network, &[0, 1, 2, 3], height).await?;
    let lost = count_lost(network, &acknowledged).await?;
    Ok(CaughtUp {
        height: head.height,
        lost,
        acknowledged: acknowledged.len(),
    })
}

/// What `tpw-testnet catch-up` prints.
#[derive(Debug, Serialize)]
pub struct CatchUpReport {
    /// Transfers committed before the observer was wiped.
    pub transfers: usize,
    /// Transfers acknowledged by the load that ran while the observer caught up.
    pub transfers_during_catch_up: usize,
    /// Raft log entries each node kept.
    pub log_retention_entries: u64,
    /// Chain height the observer caught up to.
    pub height: u64,
    /// Snapshots the observer installed.
    pub snapshots_installed: u64,
    /// From the wiped observer's start until it reached the voters' height at its start.
    pub catch_up_ms: u64,
    /// From its start until every block from genesis was fetched too.
    pub blocks_complete_ms: u64,
    /// Head hash every node reports.
    pub head_hash: String,
    /// State root every node reports.
    pub state_root: String,
    /// Every node reports the same head and state root.
    pub nodes_agree: bool,
}

/// Commits `transfers` transfers on 3 voters and an observer, wipes the observer, starts it
/// again and measures how it catches up (through a snapshot: the voters compacted their logs).
pub async fn catch_up(
    transfers: usize,
    log_retention_entries: u64,
) -> anyhow::Result<CatchUpReport> {
    let dir = tempfile::Builder::new().prefix("tpw-catch-up-").tempdir()?;
    let options = NetworkOptions {
        log_retention_entries: Some(log_retention_entries),
        ..NetworkOptions::default()
    };
    let (mut network, parties) = LocalNetwork::create_with(dir.path(), 3, 1, 64, &options)?;
    network.start().await?;
    let observer = 3;
    network.wipe(observer)?;
    let leader = network
        .leader_among(&[0, 1, 2])
        .await
        .context("no leader")?;
    commit_without_observer(&network, &parties.keys, &leader, transfers).await?;
    let regulator = crate::network::regulator_key(&network.dir)?;
    let leader_client = Client::new(&leader).with_key(&regulator);
    ensure_compacted(&network, &parties.keys, &leader_client).await?;
    let voters = converge(&network, &[0, 1, 2], 1).await?;
    eprintln!(
        "ledger at height {}; starting the wiped observer...",
        voters.height
    );
    // Load keeps running while the observer returns, so the voters keep compacting and the
    // observer catches up with a moving target.
    let load = Load::start(&network, &parties.keys[..16], 16, 2 << 64)?;
    let started = Instant::now();
    network.restart(observer).await?;
    let head = match converge_while(&network, voters.height, load).await {
        Ok(head) => head,
        Err(error) => {
            let log = std::fs::read_to_string(dir.path().join("node-4.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            bail!(
                "{error}; the observer's log ends with:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    };
    let catch_up_ms = started.elapsed().as_millis() as u64;
    let observer_client = Client::new(&network.apis[observer]).with_key(&regulator);
    wait_for_backfill(&observer_client).await?;
    let blocks_complete_ms = started.elapsed().as_millis() as u64;
    compare_blocks(&leader_client, &observer_client, voters.height).await?;
    let status = observer_client.status().await?;
    let final_head = converge(&network, &[0, 1, 2, 3], head.height).await?;
    if head.lost > 0 {
        bail!(
            "{} acknowledged transfers are missing from some node",
            head.lost
        );
    }
    network.stop();
    Ok(CatchUpReport {
        transfers,
        transfers_during_catch_up: head.acknowledged,
        log_retention_entries,
        height: head.height,
        snapshots_installed: status.snapshots_installed,
        catch_up_ms,
        blocks_complete_ms,
        head_hash: final_head.head_hash,
        state_root: final_head.state_root,
        nodes_agree: true,
    })
}

/// Signs `transfers` transfers and commits them through the leader while the observer is
/// down.
async fn commit_without_observer(
    network: &LocalNetwork,
    keys: &[ed25519_dalek::SigningKey],
    leader: &str,
    transfers: usize,
) -> anyhow::Result<()> {
    let network_id = network.genesis.compute_network_id()?;
    eprintln!("signing {transfers} transfers...");
    let envelopes = presign(network_id, keys, transfers);
    eprintln!("committing them while the observer is down...");
    let rejected = drive(&Client::new(leader), &envelopes, 100, 32).await;
    if rejected > 0 {
        bail!("{rejected} transfers were not committed");
    }
    Ok(())
}

/// Blocks grow with the load, so a fast machine may cut fewer blocks than the retention:
/// then single transfers follow until the voters have compacted.
async fn ensure_compacted(
    network: &LocalNetwork,
    keys: &[ed25519_dalek::SigningKey],
    leader_client: &Client,
) -> anyhow::Result<()> {
    if leader_client.status().await?.log_compacted_index == 0 {
        let load = Load::start(network, &keys[..16], 16, 1 << 64)?;
        let deadline = Instant::now() + DRILL_CONVERGE_TIMEOUT;
        while leader_client.status().await?.log_compacted_index == 0 {
            if Instant::now() > deadline {
                bail!("the voters did not compact their logs within {DRILL_CONVERGE_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        load.stop().await;
    }
    Ok(())
}

/// Waits until the observer fetched every block below its snapshot.
async fn wait_for_backfill(observer_client: &Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + DRILL_CONVERGE_TIMEOUT;
    loop {
        let status = observer_client.status().await?;
        if status.blocks_missing == 0 && observer_client.block(1).await?.is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the observer did not fetch the blocks below its snapshot in time");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first, middle and last block of the voters' ledger are the same on the observer.
async fn compare_blocks(
    leader_client: &Client,
    observer_client: &Client,
    height: u64,
) -> anyhow::Result<()> {
    for height in [1, height / 2, height] {
        let theirs = leader_client.block(height).await?.context("leader block")?;
        let mine = observer_client
            .block(height)
            .await?
            .context("observer block")?;
        if theirs.header.hash != mine.header.hash {
            bail!("block {height} differs between the observer and the leader");
        }
    }
    Ok(())
}

/// Single transfers from every partner to the voters in turn, each waiting for commit and
/// retried on failure, until stopped; records what was acknowledged.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<(usize, u128)>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts the load; transfer ids count up from `id_base` for each partner.
    pub(crate) fn start(
        network: &LocalNetwork,
        keys: &[ed25519_dalek::SigningKey],
        partners: usize,
        id_base: u128,
    ) -> anyhow::Result<Self> {
        Self::start_range(network, keys, 0..partners, id_base)
    }

    /// As [`Load::start`], for the partners in `range` only (each pays the next in the range).
    pub(crate) fn start_range(
        network: &LocalNetwork,
        keys: &[ed25519_dalek::SigningKey],
        range: std::ops::Range<usize>,
        id_base: u128,
    ) -> anyhow::Result<Self> {
        let (first, partners) = (range.start, range.len());
        let network_id = network.genesis.compute_network_id()?;
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let voters = network
            .genesis
            .nodes
            .iter()
            .filter(|node| node.role == tpw_contracts::genesis::NodeRole::Voter)
            .count();
        let mut tasks = Vec::new();
        for from in range {
            let next = first + (from - first + 1) % partners;
            let (stop, acknowledged) = (Arc::clone(&stop), Arc::clone(&acknowledged));
            let (apis, key) = (network.apis[..voters].to_vec(), keys[from].clone());
            tasks.push(tokio::spawn(async move {
                let mut id = id_base;
                let mut attempts = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let operation = Operation::Transfer(Transfer {
                        id,
                        debit_account: partner_account(from),
                        credit_account: partner_account(next),
                        asset: LOAD_ASSET,
                        amount: 1,
                        kind: TransferKind::Posted,
                        reference: 0,
                    });
                    let envelope = Transaction::sign(
                        network_id,
                        &key,
                        tpw_node::client::fresh_validity(),
                        Body::single(operation),
                    )
                    .to_bytes();
                    // Any voter: followers forward to the leader; retry elsewhere on failure.
                    let client = Client::new(&apis[(id as usize + from + attempts) % apis.len()]);
                    match client
                        .submit(std::slice::from_ref(&envelope), true, Some(10_000))
                        .await
                    {
                        Ok((200, response)) if response.results[0].status == "committed" => {
                            acknowledged
                                .lock()
                                .unwrap_or_else(|poisoned| poisoned.into_inner())
                                .push((from, id));
                            id += 1;
                        }
                        Ok(_) | Err(ClientError::Api { .. }) | Err(_) => {
                            attempts += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }));
        }
        Ok(Self {
            stop,
            acknowledged,
            tasks,
        })
    }

    /// Stops the load and returns the acknowledged (partner, transfer id) pairs.
    pub(crate) async fn stop(self) -> Vec<(usize, u128)> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let acknowledged = self
            .acknowledged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        acknowledged
    }
}

/// How many (node, acknowledged transfer) pairs are missing: each node must hold each one.
async fn count_lost(
    network: &LocalNetwork,
    acknowledged: &[(usize, u128)],
) -> anyhow::Result<usize> {
    let all: Vec<usize> = (0..network.apis.len()).collect();
    count_lost_on(network, &all, acknowledged).await
}

/// As [`count_lost`], on the listed nodes only.
pub(crate) async fn count_lost_on(
    network: &LocalNetwork,
    nodes: &[usize],
    acknowledged: &[(usize, u128)],
) -> anyhow::Result<usize> {
    let mut lost = 0;
    let regulator = crate::network::regulator_key(&network.dir)?;
    for api in nodes.iter().filter_map(|index| network.apis.get(*index)) {
        let client = Client::new(api).with_key(&regulator);
        for (from, id) in acknowledged {
            if client.transfer(partner_id(*from), *id).await?.is_none() {
                lost += 1;
            }
        }
    }
    Ok(lost)
}

/// What `tpw-testnet failover` prints.
#[derive(Debug, Serialize)]
pub struct FailoverReport {
    /// Leader kills.
    pub rounds: usize,
    /// Milliseconds from each SIGKILL to the first block committed after it, in order.
    pub kill_to_commit_ms: Vec<u64>,
    /// Median of those.
    pub kill_to_commit_p50_ms: u64,
    /// Largest of those.
    pub kill_to_commit_max_ms: u64,
    /// Transfers acknowledged to the load's clients.
    pub acknowledged: usize,
    /// Acknowledged transfers missing from some node at the end (must be 0).
    pub lost: usize,
}

/// Runs load against 3 voters and an observer, SIGKILLs the leader `rounds` times (restarting
/// it each time), and measures how soon a new block commits.
pub async fn failover(rounds: usize) -> anyhow::Result<FailoverReport> {
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let dir = tempfile::Builder::new().prefix("tpw-failover-").tempdir()?;
    let partners = 16;
    let (mut network, parties) = LocalNetwork::create(dir.path(), 3, 1, partners)?;
    network.start().await?;
    let load = Load::start(&network, &parties.keys, partners, 1 << 64)?;
    let mut kill_to_commit_ms = Vec::with_capacity(rounds);
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let leader_api = network
            .leader_among(&[0, 1, 2])
            .await
            .context("no leader")?;
        let leader = leader_index(&network, &leader_api)?;
        let survivors: Vec<usize> = (0..3).filter(|index| *index != leader).collect();
        let before = statuses(&network, &[0, 1, 2]).await;
        let height_at_kill = before
            .iter()
            .flatten()
            .map(|status| status.height)
            .max()
            .unwrap_or(0);
        network.kill(leader);
        let killed = Instant::now();
        loop {
            let after = statuses(&network, &survivors).await;
            if after
                .iter()
                .flatten()
                .any(|status| status.height > height_at_kill && status.role == "leader")
            {
                break;
            }
            if killed.elapsed() > DRILL_FAILOVER_TIMEOUT {
                bail!("round {round}: no commit within {DRILL_FAILOVER_TIMEOUT:?} of the kill");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = killed.elapsed().as_millis() as u64;
        eprintln!("round {round}: first commit {elapsed} ms after the leader's SIGKILL");
        kill_to_commit_ms.push(elapsed);
        network.restart(leader).await?;
    }
    let acknowledged = load.stop().await;
    let head = converge(&network, &[0, 1, 2, 3], 1).await?;
    let lost = count_lost(&network, &acknowledged).await?;
    network.stop();
    eprintln!("all nodes at height {}", head.height);
    let mut sorted = kill_to_commit_ms.clone();
    sorted.sort_unstable();
    Ok(FailoverReport {
        rounds,
        kill_to_commit_p50_ms: sorted[(sorted.len() - 1) / 2],
        kill_to_commit_max_ms: sorted[sorted.len() - 1],
        kill_to_commit_ms,
        acknowledged: acknowledged.len(),
        lost,
    })
}
