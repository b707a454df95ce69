//! The key-compromise drill (`tpw-testnet key-drill`): under a tracked load on 3 voters and an
//! observer, a partner's key is rotated with an overlap window (both keys sign during it, the
//! old one is refused after it), another partner's leaked key is revoked at once (refused from
//! the next block, its spare key keeps paying), and the leader's own node key is rotated the
//! runbook's way: the leader steps down (`POST /admin/v1/step-down`), the rotation is decided
//! by governance and the node restarted on its data with the new key, while the observer is
//! down: it comes back knowing only the old key and must still catch up. It measures the
//! longest time without a new block (downtime) and checks that no acknowledged transfer is
//! lost.

use crate::drills::{converge, count_lost_on, Load};
use crate::network::{bank_of, partner_account, partner_id, LocalNetwork, LOAD_ASSET};
use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tpw_contracts::governance::GovernanceAction;
use tpw_contracts::ops::{AddKey, RevokeKey, Transfer};
use tpw_contracts::{Body, Operation, ResultCode, Transaction, TransferKind};
use tpw_node::client::Client;

/// What `tpw-testnet key-drill` prints.
#[derive(Debug, Serialize)]
pub struct KeyDrillReport {
    /// The rotated partner's old key signed during the overlap.
    pub old_key_signed_during_overlap: bool,
    /// ... and was refused after it.
    pub old_key_refused_after_overlap: bool,
    /// The new key signed.
    pub new_key_signed: bool,
    /// The leaked key was refused right after its revocation committed.
    pub leaked_key_refused: bool,
    /// The partner's spare key kept paying.
    pub spare_key_signed: bool,
    /// The leader's key rotation: decision to every node at one head again, the rotated node
    /// serving on its new key.
    pub node_rotation_ms: u64,
    /// The leader's step-down before its key rotation: request to another node leading.
    pub step_down_ms: u64,
    /// Times a re-keyed leader handed leadership over because a member (the observer, down
    /// during the rotation) had not replicated it (from the nodes' logs).
    pub rekey_handovers: usize,
    /// Longest interval without a new block while the drill ran.
    pub longest_commit_gap_ms: u64,
    /// Transfers acknowledged to the load.
    pub acknowledged: usize,
    /// Acknowledged transfers missing from a node (must be 0).
    pub lost: usize,
}

/// Submits one transfer of `partner` signed by `key` to `first` (the node that committed the
/// key change: another may not have applied it yet), then the voters; true when committed
/// with code ok.
async fn pays(
    network: &LocalNetwork,
    first: &str,
    key: &SigningKey,
    partner: usize,
    id: u128,
) -> bool {
    let Ok(network_id) = network.genesis.compute_network_id() else {
        return false;
    };
    let operation = Operation::Transfer(Transfer {
        id,
        debit_account: partner_account(partner),
        credit_account: partner_account(partner + 2),
        asset: LOAD_ASSET,
        amount: 1,
        kind: TransferKind::Posted,
        reference: 0,
    });
    let envelope = Transaction::sign(
        network_id,
        key,
        tpw_node::client::fresh_validity(),
        Body::single(operation),
    )
    .to_bytes();
    let apis = std::iter::once(first).chain(network.apis.iter().take(3).map(String::as_str));
    for api in apis {
        match Client::new(api)
            .submit(std::slice::from_ref(&envelope), true, None)
            .await
        {
            Ok((200, response)) => {
                return response.results[0].code == Some(ResultCode::Ok)
                    && response.results[0].status == "committed"
            }
            Ok(_) => return false,
            Err(tpw_node::client::ClientError::Api { status, .. }) if status < 500 => return false,
            Err(_) => continue,
        }
    }
    false
}

/// Samples the highest height among `apis` (those that answer) every 20 ms and records the
/// longest time between two observed increases (so the figure includes the sampling
/// interval).
fn watch_gaps(
    apis: Vec<String>,
    stop: Arc<AtomicBool>,
) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let longest = Arc::new(AtomicU64::new(0));
    let record = Arc::clone(&longest);
    let task = tokio::spawn(async move {
        let clients: Vec<Client> = apis.iter().map(|api| Client::new(api)).collect();
        let mut last_height = 0;
        let mut last_change = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let mut highest = None;
            for client in &clients {
                if let Ok(status) = client.status().await {
                    if highest
                        .as_ref()
                        .is_none_or(|best: &tpw_node::api_types::StatusResponse| {
                            status.height > best.height
                        })
                    {
                        highest = Some(status);
                    }
                }
            }
            if let Some(status) = highest {
                if status.height > last_height {
                    let gap = last_change.elapsed();
                    if last_height > 0 {
                        record.fetch_max(gap.as_millis() as u64, Ordering::Relaxed);
                    }
                    if last_height > 0 && gap > Duration::from_millis(500) {
                        eprintln!(
                            "no block for {} ms before height {} (leader {:?})",
                            gap.as_millis(),
                            status.height,
                            status.leader_id
                        );
                    }
                    last_height = status.height;
                    last_change = Instant::now();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (longest, task)
}

/// Runs the drill.
pub async fn key_drill() -> anyhow::Result<KeyDrillReport> {
    let dir = tempfile::Builder::new()
        .prefix("tpw-key-drill-")
        .tempdir()?;
    let partners = 16;
    let (mut network, parties) = LocalNetwork::create(dir.path(), 3, 1, partners)?;
    network.start().await?;
    // Partners 0 and 1 are the drill's; the load pays among partners 2.. (it never signs
    // with the drill's keys).
    let load = Load::start_range(&network, &parties.keys, 2..partners, 1 << 64)?;
    let stop_watch = Arc::new(AtomicBool::new(false));
    let (longest_gap, watcher) = watch_gaps(network.apis[..3].to_vec(), Arc::clone(&stop_watch));
    let leader = network
        .leader_among(&[0, 1, 2])
        .await
        .context("no leader")?;
    let rotation = rotate_partner_key(&network, &leader, &parties.keys[0]).await?;
    let (leaked_key_refused, spare_key_signed) =
        revoke_leaked_key(&network, &leader, &parties.keys[1]).await?;
    let (step_down_ms, node_rotation_ms) = rotate_leader_node_key(&mut network).await?;

    // The watcher stops first: stopping the load waits for submissions in flight, a quiet
    // time that is not downtime.
    stop_watch.store(true, Ordering::Relaxed);
    let _ = watcher.await;
    let acknowledged = load.stop().await;
    let lost = count_lost_on(&network, &[0, 1, 2, 3], &acknowledged).await?;
    network.stop();
    let rekey_handovers = (1..=4)
        .filter_map(|node| {
            std::fs::read_to_string(dir.path().join(format!("node-{node}.log"))).ok()
        })
        .map(|log| {
            log.matches("leadership handed over so that it can catch up")
                .count()
        })
        .sum();
    Ok(KeyDrillReport {
        old_key_signed_during_overlap: rotation.old_key_signed_during_overlap,
        old_key_refused_after_overlap: rotation.old_key_refused_after_overlap,
        new_key_signed: rotation.new_key_signed,
        leaked_key_refused,
        spare_key_signed,
        node_rotation_ms,
        step_down_ms,
        rekey_handovers,
        longest_commit_gap_ms: longest_gap.load(Ordering::Relaxed),
        acknowledged: acknowledged.len(),
        lost,
    })
}

/// Which keys of the rotated partner signed when.
struct PartnerRotation {
    new_key_signed: bool,
    old_key_signed_during_overlap: bool,
    old_key_refused_after_overlap: bool,
}

/// A planned rotation of partner 0's key (`old_key`), with a 3 s overlap of block time.
async fn rotate_partner_key(
    network: &LocalNetwork,
    leader: &str,
    old_key: &SigningKey,
) -> anyhow::Result<PartnerRotation> {
    let new_key = tpw_node::keys::generate()?;
    network
        .decide(
            leader,
            1,
            GovernanceAction::RotateKey {
                participant: partner_id(0),
                new_key: new_key.verifying_key().to_bytes(),
                old_key: old_key.verifying_key().to_bytes(),
                overlap_ms: 3_000,
            },
        )
        .await?;
    let rotated_at = Instant::now();
    eprintln!("partner key rotated");
    let new_key_signed = pays(network, leader, &new_key, 0, 1).await;
    let old_key_signed_during_overlap = pays(network, leader, old_key, 0, 2).await;
    tokio::time::sleep(Duration::from_millis(3_000).saturating_sub(rotated_at.elapsed())).await;
    // Block time moves with blocks; the load keeps cutting them. Allow a few for the head's
    // time to pass the overlap's end.
    let mut old_key_refused_after_overlap = false;
    for attempt in 0..50u128 {
        if !pays(network, leader, old_key, 0, 10 + attempt).await {
            old_key_refused_after_overlap = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    Ok(PartnerRotation {
        new_key_signed,
        old_key_signed_during_overlap,
        old_key_refused_after_overlap,
    })
}

/// Partner 1's key (`leaked`) leaks: its bank registers a spare key, then the leaked key
/// revokes itself (its owner still holds it); from that block it signs nothing. Whether the
/// leaked key was refused, and whether the spare key paid.
async fn revoke_leaked_key(
    network: &LocalNetwork,
    leader: &str,
    leaked: &SigningKey,
) -> anyhow::Result<(bool, bool)> {
    let spare = tpw_node::keys::generate()?;
    let bank = tpw_node::keys::load(
        &network
            .dir
            .join("keys")
            .join(format!("bank-{}.json", bank_of(1))),
    )?;
    let add = Operation::AddKey(AddKey {
        participant: partner_id(1),
        key: spare.verifying_key().to_bytes(),
    });
    let (status, response) = Client::new(leader)
        .sign_and_submit(&bank, Body::single(add), true)
        .await?;
    if status != 200 || response.results[0].code != Some(ResultCode::Ok) {
        bail!("the spare key was not registered: {response:?}");
    }
    let revoke = Operation::RevokeKey(RevokeKey {
        participant: partner_id(1),
        key: leaked.verifying_key().to_bytes(),
    });
    let (status, response) = Client::new(leader)
        .sign_and_submit(leaked, Body::single(revoke), true)
        .await?;
    if status != 200 || response.results[0].code != Some(ResultCode::Ok) {
        bail!("the leaked key was not revoked: {response:?}");
    }
    eprintln!("leaked key revoked");
    let leaked_key_refused = !pays(network, leader, leaked, 1, 1).await;
    let spare_key_signed = pays(network, leader, &spare, 1, 2).await;

    Ok((leaked_key_refused, spare_key_signed))
}

/// The leader's own key is rotated; it restarts on its data with the new key. The observer
/// is down meanwhile and comes back knowing only the old key. Returns the step-down's time
/// and the rotation's, from the decision to every node at one head again.
async fn rotate_leader_node_key(network: &mut LocalNetwork) -> anyhow::Result<(u64, u64)> {
    network.kill(3);
    let leader = network
        .leader_among(&[0, 1, 2])
        .await
        .context("no leader")?;
    let rotated_index = network
        .apis
        .iter()
        .position(|api| *api == leader)
        .context("leader index")?;
    // As the runbook says: the leader is drained first (its peers would stop admitting its
    // old key at the deciding block, costing an election), so the rotation lands on a follower.
    let drained = Instant::now();
    let new_leader = network.step_down(rotated_index).await?;
    let step_down_ms = drained.elapsed().as_millis() as u64;
    let leader = network.apis[new_leader as usize - 1].clone();
    let rotated = network.rotate_node_key(rotated_index)?;
    let decided = Instant::now();
    network
        .decide(
            &leader,
            2,
            GovernanceAction::RotateNodeKey {
                node: rotated_index as u64 + 1,
                public_key: rotated,
            },
        )
        .await?;
    eprintln!(
        "the former leader's key (node {}) rotated after it stepped down in {step_down_ms} ms; \
         restarting it",
        rotated_index + 1
    );
    network.restart(rotated_index).await?;
    network.restart(3).await?;
    // Any voter may lead afterwards, the re-keyed one included.
    let leader = loop {
        if let Some(api) = network.leader_among(&[0, 1, 2]).await {
            break api;
        }
        if decided.elapsed() > Duration::from_secs(60) {
            bail!("no leader after the key rotation");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let height = Client::new(&leader).status().await?.height;
    converge(network, &[0, 1, 2, 3], height).await?;
    let node_rotation_ms = decided.elapsed().as_millis() as u64;

    Ok((step_down_ms, node_rotation_ms))
}
