//! The disaster-recovery drill (`tpw-testnet dr`): on 3 voters and a regulator's observer with
//! a large ledger, under a tracked load, it SIGKILLs the leader (RTO: kill to first new
//! commit), then destroys a voter's disk and rebuilds it the way the runbook says (a new key
//! and id added by governance, the lost id removed), measuring how long the new node takes to
//! catch up with the whole ledger. RPO: acknowledged transfers missing from any surviving node
//! at the end (must be 0, since a majority survives throughout). Then, on the stopped network,
//! it exports an undisturbed voter's ledger to an archive, verifies the archive and restores it
//! to a height in the middle, timing each with the `tpw` commands an operator runs.

use crate::bench::{drive, presign};
use crate::drills::{converge, count_lost_on, Load};
use crate::limits::DR_STEP_TIMEOUT;
use crate::network::{LocalNetwork, NetworkOptions};
use anyhow::{bail, Context};
use serde::Serialize;
use std::time::{Duration, Instant};
use tpw_contracts::genesis::NodeRole;
use tpw_contracts::governance::GovernanceAction;
use tpw_node::client::Client;

/// What `tpw-testnet dr` prints.
#[derive(Debug, Serialize)]
pub struct DrReport {
    /// Transfers in the ledger before the disasters.
    pub ledger_transfers: usize,
    /// Seconds to commit them.
    pub ledger_seconds: f64,
    /// Raft log entries each node keeps (small, so a rebuilt node needs a snapshot).
    pub log_retention_entries: u64,
    /// Leader SIGKILL to the first block committed by the survivors.
    pub leader_loss_to_commit_ms: u64,
    /// Height when the rebuilt voter started.
    pub rebuild_height: u64,
    /// Rebuilt voter: start to the head it was started at (a snapshot, then the log).
    pub rebuild_catch_up_ms: u64,
    /// Rebuilt voter: start to every block from genesis present (backfill).
    pub rebuild_blocks_complete_ms: u64,
    /// Disk loss to the new voter counted in Raft's configuration and the lost one removed.
    pub disk_loss_to_replaced_ms: u64,
    /// Snapshots the rebuilt voter installed.
    pub snapshots_installed: u64,
    /// Transfers acknowledged to the load during the disasters.
    pub acknowledged: usize,
    /// Acknowledged transfers missing from a surviving node (RPO; must be 0).
    pub lost: usize,
    /// Final height.
    pub height: u64,
    /// The surviving nodes report one head and state root.
    pub nodes_agree: bool,
    /// The archive exported from an undisturbed voter's folder.
    pub archive: ArchiveFigures,
}

/// `tpw export`, `tpw verify --archive` and `tpw restore --archive --to-height` on the
/// drill's ledger.
#[derive(Debug, Serialize)]
pub struct ArchiveFigures {
    /// Blocks in the archive.
    pub blocks: u64,
    /// Its size.
    pub bytes: u64,
    /// `tpw export`.
    pub export_ms: u64,
    /// `tpw verify --archive`: every block replayed from genesis.
    pub verify_ms: u64,
    /// The height restored to (the middle block with a recorded Raft position).
    pub restored_height: u64,
    /// `tpw restore --archive --to-height`.
    pub restore_ms: u64,
    /// The archive verified and the restored head is the archive's block at that height.
    pub verified: bool,
}

/// Runs `tpw` with `args`; its JSON line and how long it took.
pub fn run_tpw(args: &[&std::ffi::OsStr]) -> anyhow::Result<(serde_json::Value, u64)> {
    let started = Instant::now();
    let output = std::process::Command::new(crate::network::tpw_binary()?)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let elapsed = started.elapsed().as_millis() as u64;
    if !output.status.success() {
        bail!(
            "tpw {args:?} failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    Ok((serde_json::from_slice(&output.stdout)?, elapsed))
}

/// The height and header hash of the archive's block nearest below `head / 2` that has a
/// recorded Raft position (blocks a node backfilled have none), to restore to.
pub fn middle_block(archive: &std::path::Path, head: u64) -> anyhow::Result<(u64, [u8; 32])> {
    let mut reader = tpw_node::archive::ArchiveReader::open(archive)?;
    let mut middle = None;
    while let Some(record) = reader.next_record()? {
        if let tpw_node::archive::ArchiveRecord::Block {
            height,
            position: Some(_),
            record,
        } = record
        {
            if middle.is_none() || height <= head / 2 {
                middle = Some((height, record));
            }
        }
    }
    let (height, record) = middle.context("no block with a Raft position")?;
    Ok((
        height,
        tpw_node::storage::parse_block_record(&record)?
            .header
            .hash(),
    ))
}

/// Exports `data_dir` to an archive in `dir`, verifies it and restores it to the middle.
fn archive_figures(
    dir: &std::path::Path,
    data_dir: &std::path::Path,
    genesis: &std::path::Path,
) -> anyhow::Result<ArchiveFigures> {
    let archive = dir.join("ledger.tpwa");
    let (exported, export_ms) = run_tpw(&[
        "export".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
        "--out".as_ref(),
        archive.as_os_str(),
    ])?;
    let (verified, verify_ms) = run_tpw(&[
        "verify".as_ref(),
        "--archive".as_ref(),
        archive.as_os_str(),
        "--genesis".as_ref(),
        genesis.as_os_str(),
    ])?;
    let head = exported["height"].as_u64().context("export height")?;
    let (restored_height, expected) = middle_block(&archive, head)?;
    let target = dir.join("restored");
    let (restored, restore_ms) = run_tpw(&[
        "restore".as_ref(),
        "--archive".as_ref(),
        archive.as_os_str(),
        "--to-height".as_ref(),
        restored_height.to_string().as_ref(),
        "--data-dir".as_ref(),
        target.as_os_str(),
        "--genesis".as_ref(),
        genesis.as_os_str(),
    ])?;
    Ok(ArchiveFigures {
        blocks: head,
        bytes: exported["bytes"].as_u64().unwrap_or_default(),
        export_ms,
        verify_ms,
        restored_height,
        restore_ms,
        verified: verified["verified"] == true
            && verified["head_hash"] == exported["head_hash"]
            && restored["height"] == restored_height
            && restored["head_hash"] == hex::encode(expected),
    })
}

/// The API of the leader all of `nodes` agree on, waiting for them to agree.
async fn leader_of(network: &LocalNetwork, nodes: &[usize]) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        if let Some(api) = network.leader_among(nodes).await {
            return Ok(api);
        }
        if started.elapsed() > DR_STEP_TIMEOUT {
            bail!("nodes {nodes:?} agree on no leader");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn height_of(api: &str) -> u64 {
    Client::new(api)
        .status()
        .await
        .map(|status| status.height)
        .unwrap_or(0)
}

/// Waits until `check` holds, polling; fails after [`DR_STEP_TIMEOUT`].
async fn wait_for<F, Fut>(what: &str, mut check: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        if started.elapsed() > DR_STEP_TIMEOUT {
            bail!("{what}: not within {DR_STEP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(started.elapsed())
}

/// Runs the drill with a ledger of `transfers` transfers.
pub async fn dr(transfers: usize, log_retention_entries: u64) -> anyhow::Result<DrReport> {
    let dir = tempfile::Builder::new().prefix("tpw-dr-").tempdir()?;
    let options = NetworkOptions {
        log_retention_entries: Some(log_retention_entries),
        ..NetworkOptions::default()
    };
    let (mut network, parties) = LocalNetwork::create_with(dir.path(), 3, 1, 64, &options)?;
    network.start().await?;
    let ledger_seconds = commit_ledger(&network, &parties.keys, transfers).await?;
    let load = Load::start(&network, &parties.keys[..16], 16, 1 << 64)?;
    let (leader, leader_loss) = lose_leader(&mut network).await?;
    let rebuild = rebuild_lost_voter(&mut network).await?;
    let acknowledged = load.stop().await;
    let surviving: Vec<usize> = (0..network.apis.len())
        .filter(|index| *index != rebuild.lost_voter)
        .collect();
    let height = height_of(&network.apis[rebuild.replacement]).await;
    let head = converge(&network, &surviving, height).await?;
    let lost = count_lost_on(&network, &surviving, &acknowledged).await?;
    network.stop();
    let undisturbed = (0..3)
        .find(|index| *index != rebuild.lost_voter && *index != leader)
        .context("an undisturbed voter")?;
    eprintln!("exporting node {}'s ledger", undisturbed + 1);
    let archive = archive_figures(
        dir.path(),
        &dir.path().join(format!("node-{}", undisturbed + 1)),
        &dir.path().join("genesis.json"),
    )?;
    Ok(DrReport {
        ledger_transfers: transfers,
        ledger_seconds: (ledger_seconds * 10.0).round() / 10.0,
        log_retention_entries,
        leader_loss_to_commit_ms: leader_loss.as_millis() as u64,
        rebuild_height: rebuild.height,
        rebuild_catch_up_ms: rebuild.catch_up.as_millis() as u64,
        rebuild_blocks_complete_ms: rebuild.blocks_complete_ms,
        disk_loss_to_replaced_ms: rebuild.disk_loss_to_replaced_ms,
        snapshots_installed: rebuild.snapshots_installed,
        acknowledged: acknowledged.len(),
        lost,
        height: head.height,
        nodes_agree: true,
        archive,
    })
}

/// Signs and commits the ledger's `transfers`; the seconds the commit took.
async fn commit_ledger(
    network: &LocalNetwork,
    keys: &[ed25519_dalek::SigningKey],
    transfers: usize,
) -> anyhow::Result<f64> {
    let network_id = network.genesis.compute_network_id()?;
    eprintln!("signing {transfers} transfers...");
    let envelopes = presign(network_id, keys, transfers);
    let leader = leader_of(network, &[0, 1, 2]).await?;
    eprintln!("committing them...");
    let started = Instant::now();
    let rejected = drive(&Client::new(&leader), &envelopes, 100, 32).await;
    let ledger_seconds = started.elapsed().as_secs_f64();
    if rejected > 0 {
        bail!("{rejected} transfers were not committed");
    }
    Ok(ledger_seconds)
}

/// Disaster 1: the leader's process dies. Returns its index and the time from the kill to the
/// survivors' first commit; the leader is started again afterwards.
async fn lose_leader(network: &mut LocalNetwork) -> anyhow::Result<(usize, Duration)> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader_api = leader_of(network, &[0, 1, 2]).await?;
    let leader = network
        .apis
        .iter()
        .position(|api| *api == leader_api)
        .context("leader index")?;
    let survivors: Vec<usize> = (0..3).filter(|index| *index != leader).collect();
    let height_at_kill = height_of(&leader_api).await;
    network.kill(leader);
    let survivor_apis: Vec<String> = survivors.iter().map(|i| network.apis[*i].clone()).collect();
    let leader_loss = wait_for("a commit after the leader's loss", || {
        let apis = survivor_apis.clone();
        async move {
            for api in &apis {
                if let Ok(status) = Client::new(api).status().await {
                    if status.role == "leader" && status.height > height_at_kill {
                        return true;
                    }
                }
            }
            false
        }
    })
    .await?;
    eprintln!(
        "leader lost: first commit after {} ms",
        leader_loss.as_millis()
    );
    network.restart(leader).await?;
    Ok((leader, leader_loss))
}

/// What rebuilding the voter that lost its disk took.
struct Rebuild {
    /// The index of the voter whose disk was destroyed.
    lost_voter: usize,
    /// The index of the new node that replaced it.
    replacement: usize,
    /// The height when the new node started.
    height: u64,
    /// Its start to the head it was started at.
    catch_up: Duration,
    /// The disk loss to the new voter counted and the lost one removed.
    disk_loss_to_replaced_ms: u64,
    /// Its start to every block from genesis present.
    blocks_complete_ms: u64,
    /// Snapshots it installed.
    snapshots_installed: u64,
}

/// Disaster 2: a voter's disk is destroyed. It must not vote again under its id: the
/// consortium adds a new node (new key, new id) and removes the lost one.
async fn rebuild_lost_voter(network: &mut LocalNetwork) -> anyhow::Result<Rebuild> {
    let leader_api = leader_of(network, &[0, 1, 2]).await?;
    let lost_voter = (0..3)
        .find(|index| network.apis[*index] != leader_api)
        .context("a follower")?;
    network.wipe(lost_voter)?;
    let disk_lost = Instant::now();
    eprintln!("voter {} lost its disk; rebuilding it", lost_voter + 1);
    let replacement = network.prepare_node()?;
    network
        .decide(
            &leader_api,
            1,
            GovernanceAction::AddNode {
                node: replacement.id,
                name: format!("bank-rebuilt-{}", replacement.id),
                public_key: replacement.public_key,
                role: NodeRole::Voter,
                address: replacement.p2p_address.clone(),
            },
        )
        .await?;
    network
        .decide(
            &leader_api,
            2,
            GovernanceAction::RemoveNode {
                node: lost_voter as u64 + 1,
            },
        )
        .await?;
    let height = height_of(&leader_api).await;
    let rebuild_started = Instant::now();
    network.start_node(replacement.index).await?;
    let new_api = network.apis[replacement.index].clone();
    let catch_up = wait_for("the rebuilt voter catching up", || {
        let api = new_api.clone();
        async move { height_of(&api).await >= height }
    })
    .await?;
    eprintln!(
        "rebuilt voter at height {height} after {} ms",
        catch_up.as_millis()
    );
    wait_for_replaced(network, lost_voter, &replacement).await?;
    let disk_loss_to_replaced_ms = disk_lost.elapsed().as_millis() as u64;
    let rebuilt = wait_for_backfill(network, &new_api).await?;
    let blocks_complete_ms = rebuild_started.elapsed().as_millis() as u64;
    let snapshots_installed = rebuilt.status().await?.snapshots_installed;
    Ok(Rebuild {
        lost_voter,
        replacement: replacement.index,
        height,
        catch_up,
        disk_loss_to_replaced_ms,
        blocks_complete_ms,
        snapshots_installed,
    })
}

/// Waits until the leader counts the new voter in Raft's configuration and the lost one out.
async fn wait_for_replaced(
    network: &LocalNetwork,
    lost_voter: usize,
    replacement: &crate::network::PreparedNode,
) -> anyhow::Result<()> {
    let mut wanted: Vec<u64> = (0..3)
        .filter(|index| *index != lost_voter)
        .map(|index| index as u64 + 1)
        .chain([replacement.id])
        .collect();
    wanted.sort_unstable();
    let staying: Vec<usize> = (0..3)
        .filter(|index| *index != lost_voter)
        .chain([replacement.index])
        .collect();
    let leader_api = leader_of(network, &staying).await?;
    wait_for("the new voter counted and the lost one removed", || {
        let (api, wanted) = (leader_api.clone(), wanted.clone());
        async move {
            Client::new(&api)
                .status()
                .await
                .is_ok_and(|status| status.voters == wanted)
        }
    })
    .await?;
    Ok(())
}

/// Waits until the rebuilt voter holds every block below its snapshot; a client of it that
/// reads as the regulator.
async fn wait_for_backfill(network: &LocalNetwork, new_api: &str) -> anyhow::Result<Client> {
    let regulator = crate::network::regulator_key(&network.dir)?;
    let rebuilt = Client::new(new_api).with_key(&regulator);
    wait_for("every block below the rebuilt voter's snapshot", || {
        let rebuilt = &rebuilt;
        async move {
            match rebuilt.status().await {
                Ok(status) => {
                    status.blocks_missing == 0 && rebuilt.block(1).await.ok().flatten().is_some()
                }
                Err(_) => false,
            }
        }
    })
    .await?;
    Ok(rebuilt)
}
