//! The long-lived local network commands: `up` creates (or restarts) a network in a folder and
//! leaves it running, `status` reports every node, `down` stops it, and `demo` runs B2B payments
//! among partners of the different banks and checks that every node agrees.

use crate::limits::{DEMO_CONVERGE_TIMEOUT, DEMO_NETTING_PARTICIPANTS_MIN, UP_PARTNERS};
use crate::network::{bank_of, partner_account, partner_key, LocalNetwork, NodeEntry, LOAD_ASSET};
use anyhow::{bail, Context};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};
use tpw_contracts::ops::{CloseCycle, OpenCycle, SubmitObligation, Transfer};
use tpw_contracts::{Body, Operation, Transaction, TransferKind};
use tpw_node::client::{Client, ClientError};

/// Payments the demo makes.
const DEMO_PAYMENTS: usize = 60;

/// The line `up` prints.
#[derive(Debug, Serialize)]
pub struct UpReport {
    /// Every node.
    pub nodes: Vec<NodeEntry>,
    /// The CA certificate clients trust, when the nodes serve TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<std::path::PathBuf>,
}

/// Whether `pid` is still a `tpw run` of a node of the network in `dir` (a pid from
/// network.json may have been reused by another process since).
fn node_alive(dir: &Path, pid: u32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let cmdline = String::from_utf8_lossy(&cmdline);
    let folder = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    cmdline.contains("run")
        && (cmdline.contains(&*folder.to_string_lossy())
            || cmdline.contains(&*dir.to_string_lossy()))
}

/// Creates a network of `voters` and `observers` in `dir`, serving TLS when `tls` is set (or
/// restarts the one there, as it was created) and returns once every node serves and a leader
/// is elected; the nodes keep running.
pub async fn up(
    dir: &Path,
    voters: usize,
    observers: usize,
    tls: bool,
) -> anyhow::Result<UpReport> {
    let (mut network, partners) = if dir.join("network.json").exists() {
        let (network, file) = LocalNetwork::open(dir)?;
        if file.pids.iter().flatten().any(|pid| node_alive(dir, *pid)) {
            bail!(
                "the network in {} is already up; run `tpw-testnet down --dir {}` first",
                dir.display(),
                dir.display()
            );
        }
        (network, file.partners)
    } else {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let options = crate::network::NetworkOptions {
            tls,
            ..crate::network::NetworkOptions::default()
        };
        let (network, _) =
            LocalNetwork::create_with(dir, voters, observers, UP_PARTNERS, &options)?;
        network.write_file(UP_PARTNERS, Vec::new())?;
        (network, UP_PARTNERS)
    };
    let started = network.start().await;
    let pids = network.detach();
    network.write_file(partners, pids)?;
    started?;
    Ok(UpReport {
        nodes: network.describe(),
        ca: network.ca_file(),
    })
}

/// The environment the `tpw` CLI reads to reach the network in `dir`: the first node's API,
/// the CA file when it serves TLS, and the regulator's key (absolute paths).
pub fn env(dir: &Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    let (network, _) = LocalNetwork::open(dir)?;
    let api = network.apis.first().context("the network has no node")?;
    let mut variables = vec![("TPW_NODE", api.clone())];
    if let Some(ca) = network.ca_file() {
        variables.push(("TPW_CA_FILE", ca.display().to_string()));
    }
    let key = dir.join("keys").join("regulator.json");
    let key = std::path::absolute(&key).unwrap_or(key);
    variables.push(("TPW_KEY", key.display().to_string()));
    Ok(variables)
}

/// Stops the network in `dir`: SIGTERM, then SIGKILL after a grace period.
pub fn down(dir: &Path) -> anyhow::Result<usize> {
    let (network, file) = LocalNetwork::open(dir)?;
    let running: Vec<u32> = file
        .pids
        .iter()
        .flatten()
        .copied()
        .filter(|pid| node_alive(dir, *pid))
        .collect();
    for pid in &running {
        // A paused node must run again to hear the SIGTERM.
        let _ = std::process::Command::new("kill")
            .arg("-CONT")
            .arg(pid.to_string())
            .status();
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while running.iter().any(|pid| node_alive(dir, *pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in running.iter().filter(|pid| node_alive(dir, **pid)) {
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
    network.write_file(file.partners, Vec::new())?;
    Ok(running.len())
}

/// One node's view, as `status` prints it.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// Name.
    pub name: String,
    /// API.
    pub api: String,
    /// Whether it answered.
    pub serving: bool,
    /// Raft role.
    pub role: Option<String>,
    /// Block height.
    pub height: Option<u64>,
    /// Head hash.
    pub head_hash: Option<String>,
    /// State root.
    pub state_root: Option<String>,
}

/// Every node's status.
pub async fn status(dir: &Path) -> anyhow::Result<Vec<NodeStatus>> {
    let (network, _) = LocalNetwork::open(dir)?;
    let mut statuses = Vec::new();
    for node in network.describe() {
        let answer = Client::new(&node.api).status().await.ok();
        statuses.push(NodeStatus {
            name: node.name,
            api: node.api,
            serving: answer.is_some(),
            role: answer.as_ref().map(|status| status.role.clone()),
            height: answer.as_ref().map(|status| status.height),
            head_hash: answer.as_ref().map(|status| status.head_hash.clone()),
            state_root: answer.as_ref().map(|status| status.state_root.clone()),
        });
    }
    Ok(statuses)
}

/// What the demo checked.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    /// Payments acknowledged as committed.
    pub payments: usize,
    /// Nodes that agree on height, head hash and state root.
    pub nodes_agreeing: usize,
    /// Nodes in the network.
    pub nodes: usize,
    /// The common height.
    pub height: u64,
    /// Whether debits equal credits over the partners' and issuance accounts on every node.
    pub conserved: bool,
    /// The netting cycle among the partners, gross versus net.
    pub netting: Option<NettingSummary>,
}

/// The demo's netting cycle: what was owed gross and what moved net.
#[derive(Debug, Serialize)]
pub struct NettingSummary {
    /// Participants in the cycle.
    pub participants: usize,
    /// Obligations queued.
    pub obligations: usize,
    /// Obligations settled.
    pub settled: u32,
    /// Sum of the settled obligations, minor units.
    pub gross_minor: String,
    /// Sum of the net payments posted, minor units.
    pub net_minor: String,
    /// Gross minus net: the liquidity the cycle saved.
    pub liquidity_saved_minor: String,
}

/// Every partner owes three others an invoice amount in one cycle opened by the first bank;
/// the bank closes it and the cycle's report says gross and net.
async fn netting_cycle(
    dir: &Path,
    network_id: [u8; 32],
    partners: usize,
    voters: &[NodeEntry],
    cycle: u128,
) -> anyhow::Result<NettingSummary> {
    let bank = tpw_node::keys::load(&dir.join("keys").join("bank-1.json"))?;
    let sign = |key: &ed25519_dalek::SigningKey, operation: Operation| {
        Transaction::sign(
            network_id,
            key,
            tpw_node::client::fresh_validity(),
            Body::single(operation),
        )
        .to_bytes()
    };
    let leader = Client::new(&voters[0].api).with_key(&bank);
    let open = Operation::OpenCycle(OpenCycle {
        cycle,
        asset: LOAD_ASSET,
        closes_at_ms: tpw_node::runtime::now_ms() + 3_600_000,
        members: (0..partners).map(crate::network::partner_id).collect(),
    });
    submit_with_retries(&leader, sign(&bank, open)).await?;
    let mut obligations = 0;
    for from in 0..partners {
        for (step, invoice) in [(1usize, 12_000u128), (3, 7_500), (5, 4_200)] {
            let to = (from + step) % partners;
            let operation = Operation::SubmitObligation(SubmitObligation {
                id: cycle * 100 + (from * 10 + step) as u128,
                cycle,
                debit_account: partner_account(from),
                credit_account: partner_account(to),
                amount: invoice + 100 * from as u128,
            });
            let node = Client::new(&voters[obligations % voters.len()].api);
            if submit_with_retries(&node, sign(&partner_key(from), operation)).await? {
                obligations += 1;
            }
        }
    }
    let close = Operation::CloseCycle(CloseCycle { cycle, carry_to: 0 });
    submit_with_retries(&leader, sign(&bank, close)).await?;
    let report = leader
        .netting_cycle(cycle)
        .await?
        .context("the demo's netting cycle is not readable")?
        .cycle;
    let (gross, net) = (report.gross.unwrap_or(0), report.net.unwrap_or(0));
    Ok(NettingSummary {
        participants: partners,
        obligations,
        settled: report.settled.unwrap_or(0),
        gross_minor: gross.to_string(),
        net_minor: net.to_string(),
        liquidity_saved_minor: gross.saturating_sub(net).to_string(),
    })
}

/// Pays between partners sponsored by different banks through every voting node (followers
/// forward to the leader), then checks that all nodes agree on the chain and balances.
pub async fn demo(dir: &Path) -> anyhow::Result<DemoReport> {
    let (network, file) = LocalNetwork::open(dir)?;
    let network_id = network.genesis.compute_network_id()?;
    let voters: Vec<NodeEntry> = network
        .describe()
        .into_iter()
        .filter(|node| node.role == "voter")
        .collect();
    let started_ms = tpw_node::runtime::now_ms() as u128;
    let mut payments = 0;
    for index in 0..DEMO_PAYMENTS {
        let from = index % file.partners;
        // Pay a partner of the other bank: cross-bank B2B settlement.
        let to = (1..file.partners)
            .map(|step| (from + step) % file.partners)
            .find(|to| bank_of(*to) != bank_of(from));
        let Some(to) = to else {
            bail!("the network needs partners at two banks")
        };
        let operation = Operation::Transfer(Transfer {
            id: started_ms * 1000 + index as u128,
            debit_account: partner_account(from),
            credit_account: partner_account(to),
            asset: LOAD_ASSET,
            amount: 1_000 + index as u128,
            kind: TransferKind::Posted,
            reference: index as u128,
        });
        let envelope = Transaction::sign(
            network_id,
            &partner_key(from),
            tpw_node::client::fresh_validity(),
            Body::single(operation),
        )
        .to_bytes();
        let node = Client::new(&voters[index % voters.len()].api);
        if submit_with_retries(&node, envelope).await? {
            payments += 1;
        }
    }
    let netting = if file.partners >= DEMO_NETTING_PARTICIPANTS_MIN {
        Some(netting_cycle(dir, network_id, file.partners, &voters, started_ms).await?)
    } else {
        None
    };
    let (height, agreeing) = converge(&network).await;
    let mut conserved = true;
    let regulator = crate::network::regulator_key(dir)?;
    for node in network.describe() {
        let client = Client::new(&node.api).with_key(&regulator);
        let unbalanced = unconserved_assets(&client, &network.genesis)
            .await
            .with_context(|| format!("reading {}'s accounts", node.name))?;
        conserved &= unbalanced.is_empty();
    }
    Ok(DemoReport {
        payments,
        nodes_agreeing: agreeing,
        nodes: network.apis.len(),
        height,
        conserved,
        netting,
    })
}

async fn submit_with_retries(node: &Client, envelope: Vec<u8>) -> anyhow::Result<bool> {
    for _ in 0..50 {
        match node
            .submit(std::slice::from_ref(&envelope), true, None)
            .await
        {
            Ok((200, response)) => {
                return Ok(response
                    .results
                    .first()
                    .is_some_and(|result| result.status == "committed"))
            }
            Ok((status, response)) => bail!("payment refused ({status}): {:?}", response.error),
            Err(ClientError::Api { status: 503, .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(error) => return Err(error.into()),
        }
    }
    bail!("no commit after 50 retries")
}

/// Waits until every node reports the same height, head and state root; returns the height and
/// how many nodes agree with the most common head.
async fn converge(network: &LocalNetwork) -> (u64, usize) {
    let deadline = Instant::now() + DEMO_CONVERGE_TIMEOUT;
    loop {
        let mut heads = Vec::new();
        for api in &network.apis {
            if let Ok(status) = Client::new(api).status().await {
                heads.push((status.height, status.head_hash, status.state_root));
            }
        }
        let agreeing = heads
            .iter()
            .filter(|head| Some(*head) == heads.first())
            .count();
        let height = heads.first().map_or(0, |head| head.0);
        if agreeing == network.apis.len() || Instant::now() > deadline {
            return (height, agreeing);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fault to inject into one node of a running local network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL: the process dies at once, with whatever it had not synced.
    Kill,
    /// SIGSTOP: the process freezes (a stalled machine) until resumed.
    Pause,
    /// SIGCONT: a paused process runs again.
    Resume,
}

fn node_index(file: &crate::network::NetworkFile, name: &str) -> anyhow::Result<usize> {
    file.nodes
        .iter()
        .position(|node| node.name == name)
        .with_context(|| {
            format!(
                "no node named {name}; the nodes are {:?}",
                file.nodes.iter().map(|node| &node.name).collect::<Vec<_>>()
            )
        })
}

/// Sends a fault signal to one node.
pub fn inject(dir: &Path, name: &str, fault: Fault) -> anyhow::Result<()> {
    let (network, mut file) = LocalNetwork::open(dir)?;
    let index = node_index(&file, name)?;
    let Some(pid) = file
        .pids
        .get(index)
        .copied()
        .flatten()
        .filter(|pid| node_alive(dir, *pid))
    else {
        bail!("node {name} is not running");
    };
    let signal = match fault {
        Fault::Kill => "-KILL",
        Fault::Pause => "-STOP",
        Fault::Resume => "-CONT",
    };
    let status = std::process::Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()?;
    anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
    if fault == Fault::Kill {
        file.pids[index] = None;
        network.write_file(file.partners, file.pids)?;
    }
    Ok(())
}

/// Starts one stopped node again on its data and waits until it serves.
pub async fn restart(dir: &Path, name: &str) -> anyhow::Result<()> {
    let (mut network, mut file) = LocalNetwork::open(dir)?;
    let index = node_index(&file, name)?;
    if file
        .pids
        .get(index)
        .copied()
        .flatten()
        .is_some_and(|pid| node_alive(dir, pid))
    {
        bail!("node {name} is running; kill it first");
    }
    network.restart(index).await?;
    let pids = network.detach();
    file.pids.resize(file.nodes.len(), None);
    file.pids[index] = pids[index];
    network.write_file(file.partners, file.pids)?;
    Ok(())
}

/// Cuts one node off from all its peers (`isolate`), or reconnects it, through its admin
/// interface.
pub async fn partition(dir: &Path, name: &str, isolate: bool) -> anyhow::Result<()> {
    let (network, file) = LocalNetwork::open(dir)?;
    let index = node_index(&file, name)?;
    network.partition(index, isolate).await
}

/// Reads every account of the genesis (issuance accounts included) through `client`, which
/// must read as a regulator, and returns the assets whose money is wrong, with what is wrong:
/// posted or pending debits that differ from their credits (the four sums: debits and credits
/// posted, debits and credits pending), or a supply (`GET /v1/assets/{id}`) that is not what
/// the issuance account let out. Only the genesis' accounts are summed: a load that opens
/// accounts of its own must check those itself.
pub async fn unconserved_assets(
    client: &Client,
    genesis: &tpw_contracts::Genesis,
) -> anyhow::Result<Vec<(u32, String)>> {
    let mut wrong: Vec<(u32, String)> = unbalanced_sums(client, genesis)
        .await?
        .into_iter()
        .map(|(asset, sum)| (asset, format!("debits and credits differ: {sum:?}")))
        .collect();
    for listed in &genesis.assets {
        let supply = client
            .asset(listed.id)
            .await?
            .with_context(|| format!("asset {} is missing", listed.id))?;
        let issuance = client
            .account(listed.issuance_account)
            .await?
            .with_context(|| format!("account {} is missing", listed.issuance_account))?
            .account;
        let let_out = issuance.debits_posted.checked_sub(issuance.credits_posted);
        if let_out != Some(supply.outstanding) {
            wrong.push((
                listed.id,
                format!(
                    "supply says {} outstanding, the issuance account let out {let_out:?}",
                    supply.outstanding
                ),
            ));
        }
    }
    Ok(wrong)
}

async fn unbalanced_sums(
    client: &Client,
    genesis: &tpw_contracts::Genesis,
) -> anyhow::Result<Vec<(u32, [u128; 4])>> {
    let mut sums: std::collections::BTreeMap<u32, [u128; 4]> = std::collections::BTreeMap::new();
    let accounts = genesis
        .accounts
        .iter()
        .map(|account| account.id)
        .chain(genesis.assets.iter().map(|asset| asset.issuance_account));
    for id in accounts {
        let account = client
            .account(id)
            .await?
            .with_context(|| format!("account {id} is missing"))?
            .account;
        let sum = sums.entry(account.asset).or_default();
        for (total, amount) in sum.iter_mut().zip([
            account.debits_posted,
            account.credits_posted,
            account.debits_pending,
            account.credits_pending,
        ]) {
            *total = total
                .checked_add(amount)
                .context("account sums overflow u128")?;
        }
    }
    Ok(sums
        .into_iter()
        .filter(|(_, sum)| sum[0] != sum[1] || sum[2] != sum[3])
        .collect())
}
