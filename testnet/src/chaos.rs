//! `tpw-testnet chaos`: real `tpw run` processes on loopback under faults, with the client
//! history checked afterwards.
//!
//! It builds its own local network (3 to 5 voters and an observer), runs a workload of tracked
//! transfers (single and linked pairs, each retried with the same envelope until it commits)
//! while it SIGKILLs and restarts nodes, pauses them (SIGSTOP, SIGCONT), cuts them off from
//! their peers and heals them, and sends bad input to the API and garbage to the peer port.
//! Then it heals everything, lets every client finish, waits for one head on every node and
//! checks the recorded history: no acknowledged transfer lost, none applied twice (each tracked
//! account's balance is its funding plus the transfers present, each once), every asset
//! conserved, every node at the same head. It prints the evidence as one JSON record and tears
//! the network down.

use crate::limits::CHAOS_FINISH_TIMEOUT;
use crate::network::{
    partner_id, partner_key, partner_tracked_account, LocalNetwork, LOAD_ASSET, PARTNER_FUNDING,
};
use crate::sim::rng::SimRng;
use anyhow::{bail, Context};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tpw_contracts::ops::Transfer;
use tpw_contracts::{Body, Operation, Transaction, TransferKind};
use tpw_node::client::Client;

/// Partners submitting, one client task each.
const PARTNERS: usize = 8;

/// One tracked transfer a client submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Submitted {
    partner: usize,
    id: u128,
    to: usize,
    amount: u128,
}

/// How a submission ended, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Committed and settled: acknowledged.
    Settled,
    /// Committed and rejected by the ledger.
    Rejected,
    /// No answer by the end: it may or may not have committed.
    Unknown,
}

#[derive(Default)]
struct History {
    entries: Vec<(Vec<Submitted>, Outcome)>,
}

/// Client submissions by outcome.
#[derive(Debug, Default, Serialize)]
pub struct Operations {
    /// Transactions submitted (one or two tracked transfers each).
    pub submitted: u64,
    /// Transfers acknowledged as settled.
    pub acknowledged: u64,
    /// Transfers the ledger rejected.
    pub rejected: u64,
    /// Transfers whose outcome the client never learned (checked like the others: present
    /// at most once).
    pub unknown: u64,
    /// Submissions sent again after an error or silence.
    pub retries: u64,
    /// Linked (all-or-nothing) pairs among the submissions.
    pub linked: u64,
}

/// Faults injected, by kind.
#[derive(Debug, Default, Serialize)]
pub struct Faults {
    /// SIGKILLs (each followed by a restart on the same data).
    pub kill: u64,
    /// SIGSTOPs (each followed by a SIGCONT).
    pub pause: u64,
    /// Nodes cut off from all peers (each healed later).
    pub partition: u64,
}

/// Bad input sent, and how the nodes answered.
#[derive(Debug, Default, Serialize)]
pub struct BadInputs {
    /// Requests and connections tried.
    pub tried: u64,
    /// Answered with a 4xx and a stable error code.
    pub refused_cleanly: u64,
    /// Not answered (the node was down or paused at the time).
    pub unanswered: u64,
    /// Answered otherwise (a 2xx or 5xx): must be 0.
    pub mishandled: u64,
    /// Garbage connections to peer ports that the nodes survived.
    pub peer_garbage: u64,
}

/// The evidence record `tpw-testnet chaos` prints.
#[derive(Debug, Serialize)]
pub struct ChaosReport {
    /// Seed of the fault schedule and workload choices.
    pub seed: u64,
    /// Seconds of faults.
    pub seconds: u64,
    /// Voting nodes.
    pub voters: usize,
    /// Observer nodes.
    pub observers: usize,
    /// The client history.
    pub operations: Operations,
    /// Faults by kind.
    pub faults: Faults,
    /// All faults.
    pub faults_injected: u64,
    /// Bad input tried.
    pub bad_inputs: BadInputs,
    /// Acknowledged transfers missing from some node (must be 0).
    pub lost: u64,
    /// Transfers counted more than once, or tracked accounts whose balance disagrees with the
    /// transfers present (must be 0).
    pub duplicated: u64,
    /// Every asset's debits equal its credits on every node.
    pub conserved: bool,
    /// Every node on one head and state root.
    pub nodes_agree: bool,
    /// The common height.
    pub height: u64,
    /// The common head hash.
    pub head_hash: String,
    /// Wall-clock seconds of the whole run.
    pub elapsed_s: f64,
}

/// Runs the chaos command.
pub async fn run(
    seconds: u64,
    voters: usize,
    observers: usize,
    seed: u64,
) -> anyhow::Result<ChaosReport> {
    if !(3..=5).contains(&voters) {
        bail!("--voters must be 3, 4 or 5");
    }
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("tpw-chaos-").tempdir()?;
    let (mut network, _) = LocalNetwork::create(dir.path(), voters, observers, PARTNERS)?;
    network.start().await?;
    let nodes = voters + observers;
    let network_id = network.genesis.compute_network_id()?;
    let mut rng = SimRng::new(seed);
    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(History::default()));
    let retries = Arc::new(AtomicU64::new(0));
    let clients = spawn_clients(
        &network.apis[..voters],
        network_id,
        &mut rng,
        &stop,
        &history,
        &retries,
    );
    let schedule = FaultSchedule {
        seconds,
        voters,
        nodes,
        network_id,
    };
    let (faults, bad) = schedule.run(&mut network, &mut rng).await?;
    eprintln!("chaos: faults ended after {seconds} s; letting every client finish");
    stop.store(true, Ordering::Relaxed);
    for task in clients {
        task.await.context("a client task failed")?;
    }
    let (nodes_agree, height, head_hash) = agreement(&network, nodes).await;
    let history = std::mem::take(
        &mut *history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    let operations = count_operations(&history, retries.load(Ordering::Relaxed));
    let (lost, duplicated, conserved) = check_history(&network, &history).await?;
    network.stop();
    Ok(ChaosReport {
        seed,
        seconds,
        voters,
        observers,
        operations,
        faults_injected: faults.kill + faults.pause + faults.partition,
        faults,
        bad_inputs: bad,
        lost,
        duplicated,
        conserved,
        nodes_agree,
        height,
        head_hash,
        elapsed_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    })
}

/// Starts one client task per partner, each with its own fork of `rng`, submitting to the
/// voters until `stop` and recording into `history`.
fn spawn_clients(
    voter_apis: &[String],
    network_id: [u8; 32],
    rng: &mut SimRng,
    stop: &Arc<AtomicBool>,
    history: &Arc<Mutex<History>>,
    retries: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut clients = Vec::new();
    for partner in 0..PARTNERS {
        let (stop, history, retries) = (Arc::clone(stop), Arc::clone(history), Arc::clone(retries));
        let apis = voter_apis.to_vec();
        let mut rng = rng.fork();
        clients.push(tokio::spawn(async move {
            client(partner, network_id, apis, &mut rng, stop, history, retries).await
        }));
    }
    clients
}

/// Whether every node reaches one head and state root, with that head's height and hash.
async fn agreement(network: &LocalNetwork, nodes: usize) -> (bool, u64, String) {
    let status = crate::drills::converge(network, &(0..nodes).collect::<Vec<_>>(), 1).await;
    match &status {
        Ok(status) => (true, status.height, status.head_hash.clone()),
        Err(error) => {
            eprintln!("chaos: {error:#}");
            (false, 0, String::new())
        }
    }
}

/// The clients' submissions by outcome, from their history.
fn count_operations(history: &History, retries: u64) -> Operations {
    let mut operations = Operations {
        submitted: history.entries.len() as u64,
        retries,
        ..Operations::default()
    };
    for (transfers, outcome) in &history.entries {
        let count = transfers.len() as u64;
        if transfers.len() > 1 {
            operations.linked += 1;
        }
        match outcome {
            Outcome::Settled => operations.acknowledged += count,
            Outcome::Rejected => operations.rejected += count,
            Outcome::Unknown => operations.unknown += count,
        }
    }
    operations
}

/// The faults' schedule: for `seconds`, at most a minority of voters faulted at once
/// (observers count apart), each undone after 1-4 s, and bad input sent to random nodes.
struct FaultSchedule {
    seconds: u64,
    voters: usize,
    nodes: usize,
    network_id: [u8; 32],
}

impl FaultSchedule {
    /// Runs the schedule, then undoes every fault still active; the faults and bad input sent.
    async fn run(
        &self,
        network: &mut LocalNetwork,
        rng: &mut SimRng,
    ) -> anyhow::Result<(Faults, BadInputs)> {
        let mut faults = Faults::default();
        let mut bad = BadInputs::default();
        let mut active: BTreeMap<usize, (FaultKind, Instant)> = BTreeMap::new();
        let end = Instant::now() + Duration::from_secs(self.seconds);
        let mut next_fault = Instant::now() + Duration::from_millis(rng.between(500, 1_500));
        let mut next_bad = Instant::now();
        while Instant::now() < end {
            let now = Instant::now();
            let due: Vec<usize> = active
                .iter()
                .filter(|(_, (_, until))| *until <= now)
                .map(|(index, _)| *index)
                .collect();
            for index in due {
                if let Some((kind, _)) = active.remove(&index) {
                    undo(network, index, kind).await?;
                }
            }
            if now >= next_fault {
                self.inject_one(network, rng, &mut active, &mut faults, now)
                    .await?;
                next_fault = now + Duration::from_millis(rng.between(700, 2_500));
            }
            if now >= next_bad {
                let index = rng.below(self.nodes as u64) as usize;
                bad_input(network, index, self.network_id, rng, &mut bad).await;
                next_bad = now + Duration::from_millis(rng.between(100, 400));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for (index, (kind, _)) in std::mem::take(&mut active) {
            undo(network, index, kind).await?;
        }
        Ok((faults, bad))
    }

    /// Faults one node that may be faulted now (none when every candidate is), until 1-4 s
    /// from `now`.
    async fn inject_one(
        &self,
        network: &mut LocalNetwork,
        rng: &mut SimRng,
        active: &mut BTreeMap<usize, (FaultKind, Instant)>,
        faults: &mut Faults,
        now: Instant,
    ) -> anyhow::Result<()> {
        let voters = self.voters;
        let faulted_voters = active.keys().filter(|index| **index < voters).count();
        let candidates: Vec<usize> = (0..self.nodes)
            .filter(|index| !active.contains_key(index))
            .filter(|index| *index >= voters || faulted_voters < (voters - 1) / 2)
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let index = candidates[rng.below(candidates.len() as u64) as usize];
        let kind = match rng.below(3) {
            0 => FaultKind::Kill,
            1 => FaultKind::Pause,
            _ => FaultKind::Partition,
        };
        inject(network, index, kind).await?;
        match kind {
            FaultKind::Kill => faults.kill += 1,
            FaultKind::Pause => faults.pause += 1,
            FaultKind::Partition => faults.partition += 1,
        }
        let until = now + Duration::from_millis(rng.between(1_000, 4_000));
        active.insert(index, (kind, until));
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultKind {
    Kill,
    Pause,
    Partition,
}

fn signal(network: &LocalNetwork, index: usize, signal: &str) -> anyhow::Result<()> {
    let pid = network
        .pid(index)
        .with_context(|| format!("node {} is not running", index + 1))?;
    let status = std::process::Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()?;
    anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
    Ok(())
}

async fn inject(network: &mut LocalNetwork, index: usize, kind: FaultKind) -> anyhow::Result<()> {
    eprintln!("chaos: {kind:?} node {}", index + 1);
    match kind {
        FaultKind::Kill => {
            network.kill(index);
            Ok(())
        }
        FaultKind::Pause => signal(network, index, "-STOP"),
        FaultKind::Partition => network.partition(index, true).await,
    }
}

async fn undo(network: &mut LocalNetwork, index: usize, kind: FaultKind) -> anyhow::Result<()> {
    match kind {
        FaultKind::Kill => network.restart(index).await,
        FaultKind::Pause => signal(network, index, "-CONT"),
        FaultKind::Partition => network.partition(index, false).await,
    }
}

/// One partner's client: tracked transfers to the other partners, one submission at a time,
/// each retried with the same envelope until it commits (or the finish timeout passes).
async fn client(
    partner: usize,
    network_id: [u8; 32],
    apis: Vec<String>,
    rng: &mut SimRng,
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<History>>,
    retries: Arc<AtomicU64>,
) {
    let key = partner_key(partner);
    let mut next_id: u128 = 1 << 80;
    let mut stopped_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let count = if rng.below(8) == 0 { 2 } else { 1 };
        let transfers: Vec<Submitted> = (0..count)
            .map(|_| {
                next_id += 1;
                let to = (partner + 1 + rng.below(PARTNERS as u64 - 1) as usize) % PARTNERS;
                Submitted {
                    partner,
                    id: next_id,
                    to,
                    amount: u128::from(rng.between(1, 1_000)),
                }
            })
            .collect();
        let operations: Vec<Operation> = transfers
            .iter()
            .map(|transfer| {
                Operation::Transfer(Transfer {
                    id: transfer.id,
                    debit_account: partner_tracked_account(partner),
                    credit_account: partner_tracked_account(transfer.to),
                    asset: LOAD_ASSET,
                    amount: transfer.amount,
                    kind: TransferKind::Posted,
                    reference: 0,
                })
            })
            .collect();
        let body = if operations.len() == 1 {
            Body::single(operations[0].clone())
        } else {
            Body::linked(operations)
        };
        let envelope =
            Transaction::sign(network_id, &key, tpw_node::client::fresh_validity(), body)
                .to_bytes();
        let mut outcome = Outcome::Unknown;
        let mut attempt = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) {
                let since = *stopped_at.get_or_insert_with(Instant::now);
                if since.elapsed() > CHAOS_FINISH_TIMEOUT {
                    break;
                }
            }
            let api = &apis[rng.below(apis.len() as u64) as usize];
            if attempt > 0 {
                retries.fetch_add(1, Ordering::Relaxed);
            }
            attempt += 1;
            let answer = Client::new(api)
                .submit(std::slice::from_ref(&envelope), true, Some(5_000))
                .await;
            if let Ok((_, response)) = &answer {
                if let Some(result) = response.results.first() {
                    if result.status == "committed" {
                        outcome = if result.code == Some(tpw_contracts::ResultCode::Ok) {
                            Outcome::Settled
                        } else {
                            Outcome::Rejected
                        };
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entries
            .push((transfers, outcome));
        if outcome == Outcome::Unknown {
            return;
        }
    }
}

/// Sends one bad input to node `index`: malformed API requests of several kinds, or garbage to
/// its peer port.
async fn bad_input(
    network: &LocalNetwork,
    index: usize,
    network_id: [u8; 32],
    rng: &mut SimRng,
    bad: &mut BadInputs,
) {
    let api = &network.apis[index];
    let http = tpw_node::tls::client::http_builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let valid = || {
        let operation = Operation::Transfer(Transfer {
            id: 7,
            debit_account: partner_tracked_account(0),
            credit_account: partner_tracked_account(1),
            asset: LOAD_ASSET,
            amount: 1,
            kind: TransferKind::Posted,
            reference: 0,
        });
        Transaction::sign(
            network_id,
            &partner_key(0),
            tpw_node::client::fresh_validity(),
            Body::single(operation),
        )
        .to_bytes()
    };
    let submit_body = |envelope: &[u8]| {
        serde_json::json!({ "transactions": [hex::encode(envelope)], "wait": false }).to_string()
    };
    bad.tried += 1;
    let request = match rng.below(8) {
        0 => http
            .post(format!("{api}/v1/transactions"))
            .body("{not json"),
        1 => http
            .post(format!("{api}/v1/transactions"))
            .body(r#"{"transactions":["zz"],"wait":false}"#),
        2 => {
            let mut envelope = valid();
            let last = envelope.len() - 1;
            envelope[last] ^= 0x40;
            http.post(format!("{api}/v1/transactions"))
                .body(submit_body(&envelope))
        }
        3 => {
            let envelope = valid();
            http.post(format!("{api}/v1/transactions"))
                .body(submit_body(&envelope[..envelope.len() / 2]))
        }
        4 => {
            let operation = Operation::Transfer(Transfer {
                id: 8,
                // Admission refuses a debit account the signer does not own; the account
                // credited is only looked at when the block applies.
                debit_account: 999_999_999,
                credit_account: partner_tracked_account(1),
                asset: LOAD_ASSET,
                amount: 1,
                kind: TransferKind::Posted,
                reference: 0,
            });
            let envelope = Transaction::sign(
                network_id,
                &partner_key(0),
                tpw_node::client::fresh_validity(),
                Body::single(operation),
            )
            .to_bytes();
            http.post(format!("{api}/v1/transactions"))
                .body(submit_body(&envelope))
        }
        5 => http.get(format!("{api}/v1/accounts/not-a-number")),
        6 => http
            .get(format!("{api}/v1/accounts/{}", partner_tracked_account(0)))
            .header("tpw-key", "00")
            .header("tpw-timestamp", "1")
            .header("tpw-nonce", "x")
            .header("tpw-signature", "00"),
        _ => {
            peer_garbage(network, index, rng, bad).await;
            return;
        }
    };
    match request
        .header("content-type", "application/json")
        .send()
        .await
    {
        Ok(response) if response.status().is_client_error() => {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            if body["error"]["code"].is_string() {
                bad.refused_cleanly += 1;
            } else {
                bad.mishandled += 1;
            }
        }
        // A paused node's listener accepts but never answers; a killed one refuses.
        Ok(response) if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
            bad.unanswered += 1;
        }
        Ok(response) => {
            eprintln!(
                "chaos: node {} answered bad input with {}",
                index + 1,
                response.status()
            );
            bad.mishandled += 1;
        }
        Err(_) => bad.unanswered += 1,
    }
}

/// Random bytes to a node's peer port, where a Noise handshake is expected.
async fn peer_garbage(network: &LocalNetwork, index: usize, rng: &mut SimRng, bad: &mut BadInputs) {
    let Some(address) = network.p2p_address(index) else {
        bad.unanswered += 1;
        return;
    };
    let garbage: Vec<u8> = (0..rng.between(1, 4_096))
        .map(|_| rng.next_u64() as u8)
        .collect();
    let sent = async {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(&address).await?;
        stream.write_all(&garbage).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(Duration::from_secs(2), sent).await {
        Ok(Ok(())) => bad.peer_garbage += 1,
        _ => bad.unanswered += 1,
    }
}

/// Reads every submitted transfer and every tracked account from every node: acknowledged
/// transfers missing (lost), balances that count a transfer other than once (duplicated), and
/// whether the tracked asset is conserved.
async fn check_history(
    network: &LocalNetwork,
    history: &History,
) -> anyhow::Result<(u64, u64, bool)> {
    let regulator = crate::network::regulator_key(&network.dir)?;
    let mut lost = BTreeSet::new();
    let mut duplicated = 0u64;
    let mut conserved = true;
    for (node, api) in network.apis.iter().enumerate() {
        let client = Client::new(api).with_key(&regulator);
        let mut moved: BTreeMap<usize, i128> = BTreeMap::new();
        for (transfers, outcome) in &history.entries {
            for transfer in transfers {
                let found = client
                    .transfer(partner_id(transfer.partner), transfer.id)
                    .await
                    .with_context(|| format!("node {} did not answer a read", node + 1))?;
                let posted = found.as_ref().is_some_and(|found| {
                    found.transfer.state == tpw_contracts::model::TransferState::Posted
                        && found.transfer.amount == transfer.amount
                });
                if posted && *outcome == Outcome::Rejected {
                    eprintln!(
                        "chaos: transfer {}/{} was answered rejected but is posted on node {}",
                        partner_id(transfer.partner),
                        transfer.id,
                        node + 1
                    );
                    duplicated += 1;
                }
                if posted {
                    *moved.entry(transfer.partner).or_default() -= transfer.amount as i128;
                    *moved.entry(transfer.to).or_default() += transfer.amount as i128;
                } else if *outcome == Outcome::Settled && lost.insert(*transfer) {
                    eprintln!(
                        "chaos: acknowledged transfer {}/{} missing on node {}",
                        partner_id(transfer.partner),
                        transfer.id,
                        node + 1
                    );
                }
            }
        }
        for partner in 0..PARTNERS {
            let account = client
                .account(partner_tracked_account(partner))
                .await?
                .context("a tracked account is missing")?
                .account;
            let balance = account.credits_posted as i128 - account.debits_posted as i128;
            let expected = PARTNER_FUNDING as i128 + moved.get(&partner).copied().unwrap_or(0);
            if balance != expected {
                eprintln!(
                    "chaos: node {}: tracked account of partner {partner} holds {balance}, its transfers give {expected}",
                    node + 1
                );
                duplicated += 1;
            }
        }
        for (asset, what) in crate::commands::unconserved_assets(&client, &network.genesis).await? {
            eprintln!(
                "chaos: node {}: asset {asset} not conserved: {what}",
                node + 1
            );
            conserved = false;
        }
    }
    Ok((lost.len() as u64, duplicated, conserved))
}
