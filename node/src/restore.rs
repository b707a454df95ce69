//! Restoring a ledger into a new data folder (`tpw restore`), from an online backup or a
//! ledger archive, to the source's head or to a chosen height.
//!
//! - A whole backup is copied (through a staging folder renamed into place, so an interrupted
//!   restore is simply run again) and checked against its manifest and the genesis.
//! - To a chosen height, or from an archive, the folder is rebuilt by replaying the source's
//!   blocks from genesis with the ledger engine (every signature, hash link, receipt and state
//!   root checked again on the way) up to that height, in a staging folder too.
//!
//! Either way the Raft state is reset to "applied up to the restored head, nothing voted", at
//! the Raft position the source recorded for that head: the folder can serve a new node (a
//! new id and key added by governance, which catches up from its peers from there instead of
//! from genesis) or an auditor. It never runs as a node the restored ledger records: such a
//! node may have voted and acknowledged entries after that height, and a rolled-back voter
//! could vote twice; a marker refuses them at start.

use crate::admin::BackupManifest;
use crate::limits::PROGRESS_INTERVAL;
use crate::storage::{Db, LedgerReader, LedgerStore, RaftLogStore, StorageError, CF_META};
use std::io::Write;
use std::path::{Path, PathBuf};
use tpw_contracts::Genesis;

/// The meta record naming the node a restored folder's backup was taken from (u64 BE).
pub const KEY_RESTORED_FROM: &[u8] = b"restored_from_node";
/// The meta record listing the nodes that never run on a restored folder (u64 BE each): every
/// node its ledger records at the restored height.
pub const KEY_RESTORED_REFUSED: &[u8] = b"restored_refused_nodes";

/// What `tpw restore` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    /// The node the backup was taken from (none for an archive).
    pub from_node: Option<u64>,
    /// The nodes that never run on this folder: every node recorded at the restored height.
    pub refused_nodes: Vec<u64>,
    /// Blocks replayed from genesis (a restore to a chosen height or from an archive).
    pub replayed_blocks: Option<u64>,
    /// The restored head.
    pub height: u64,
    /// Its hash, hex.
    pub head_hash: String,
    /// Its state root, hex.
    pub state_root: String,
    /// The Raft index it is applied to.
    pub applied_index: u64,
    /// Files and bytes copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// Why a restore was refused or failed; nothing is left in the target's `db/` then.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The backup folder is not one (`backup.json` and `db/` missing or unreadable).
    #[error("{0}")]
    NotABackup(String),
    /// The backup belongs to another network, or does not match its manifest.
    #[error("{0}")]
    Mismatch(String),
    /// The target already holds a ledger.
    #[error("{0} already holds a ledger; restore only into an empty data folder")]
    TargetInUse(PathBuf),
    /// Copying failed.
    #[error("copying the backup: {0}")]
    Io(#[from] std::io::Error),
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// A replayed block differs from the source, or does not apply.
    #[error(transparent)]
    Replay(#[from] crate::verify::ReplayError),
    /// The chosen height cannot be restored.
    #[error("{0}")]
    Height(String),
    /// The restored database could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn read_manifest(backup: &Path) -> Result<BackupManifest, RestoreError> {
    let path = backup.join("backup.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|error| RestoreError::NotABackup(format!("{}: {error}", path.display())))?;
    serde_json::from_str(&text).map_err(|_| {
        RestoreError::NotABackup(format!("{} is not a backup manifest", path.display()))
    })
}

/// Copies the backup's database files into `staging`, reporting (bytes done, bytes total).
fn copy_files(
    source: &Path,
    staging: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(u64, u64), RestoreError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push((entry.path(), entry.metadata()?.len()));
        }
    }
    files.sort();
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    std::fs::create_dir_all(staging)?;
    let mut done = 0;
    for (path, size) in &files {
        let name = path
            .file_name()
            .ok_or_else(|| RestoreError::NotABackup(format!("{} has no name", path.display())))?;
        let target = staging.join(name);
        std::fs::copy(path, &target)?;
        std::fs::File::open(&target)?.sync_all()?;
        done += size;
        progress(done, total);
    }
    std::fs::File::open(staging)?.sync_all()?;
    Ok((files.len() as u64, total))
}

/// Checks that `data_dir` holds no ledger, creates it (mode 0700) and clears the staging
/// folder an interrupted restore left; returns (the `db/` to rename into, the staging folder).
fn prepare_target(data_dir: &Path) -> Result<(PathBuf, PathBuf), RestoreError> {
    let target = data_dir.join("db");
    if target.exists() {
        return Err(RestoreError::TargetInUse(data_dir.to_path_buf()));
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)?;
    }
    let staging = data_dir.join("db.restoring");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    Ok((target, staging))
}

/// Restores the backup in `backup` into `data_dir` (which must hold no `db/` yet).
pub fn restore(
    backup: &Path,
    data_dir: &Path,
    genesis: &Genesis,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RestoreReport, RestoreError> {
    let manifest = read_manifest(backup)?;
    let network_id = genesis
        .compute_network_id()
        .map_err(|error| RestoreError::Mismatch(error.to_string()))?;
    if manifest.network_id != hex::encode(network_id) {
        return Err(RestoreError::Mismatch(format!(
            "the backup belongs to network {}, the genesis to {}",
            manifest.network_id,
            hex::encode(network_id)
        )));
    }
    let source = backup.join("db");
    if !source.join("CURRENT").exists() {
        return Err(RestoreError::NotABackup(format!(
            "{} holds no database",
            source.display()
        )));
    }
    let (target, staging) = prepare_target(data_dir)?;
    let (files, bytes) = copy_files(&source, &staging, progress)?;
    let report = reset_raft(&staging, &manifest, genesis, files, bytes)?;
    std::fs::rename(&staging, &target)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(report)
}

/// Checks the copy against the manifest and resets its Raft state (see the module comment).
fn reset_raft(
    folder: &Path,
    manifest: &BackupManifest,
    genesis: &Genesis,
    files: u64,
    bytes: u64,
) -> Result<RestoreReport, RestoreError> {
    let db = Db::open(folder)?;
    let (head, applied_index) = LedgerReader::new(db.clone()).head()?;
    if head.height != manifest.height
        || hex::encode(head.hash) != manifest.head_hash
        || applied_index != manifest.applied_index
    {
        return Err(RestoreError::Mismatch(format!(
            "the backup holds height {} (applied index {applied_index}), its manifest says {} ({})",
            head.height, manifest.height, manifest.applied_index
        )));
    }
    let log = open_log(&db, genesis)?;
    let term = tpw_consensus::Storage::term(&log, applied_index).map_err(|error| {
        StorageError::Corrupt(format!(
            "the backup's Raft log has no term for its applied index {applied_index}: {error}"
        ))
    })?;
    let mut batch = rocksdb::WriteBatch::default();
    log.restored_state_changes(applied_index, term, &mut batch)?;
    let ledger = LedgerStore::open(db.clone(), genesis)?;
    let refused_nodes = refuse_recorded_nodes(&ledger, Some(manifest.node_id), &[], &mut batch)?;
    write_synced(&db, batch)?;
    Ok(RestoreReport {
        from_node: Some(manifest.node_id),
        refused_nodes,
        replayed_blocks: None,
        height: head.height,
        head_hash: hex::encode(head.hash),
        state_root: hex::encode(head.commitment.root()),
        applied_index,
        files,
        bytes,
    })
}

fn open_log(db: &Db, genesis: &Genesis) -> Result<RaftLogStore, StorageError> {
    let voters = genesis_ids(genesis, tpw_contracts::genesis::NodeRole::Voter);
    let learners = genesis_ids(genesis, tpw_contracts::genesis::NodeRole::Observer);
    RaftLogStore::open(db.clone(), voters, learners)
}

fn write_synced(db: &Db, batch: rocksdb::WriteBatch) -> Result<(), StorageError> {
    let mut options = rocksdb::WriteOptions::default();
    options.set_sync(true);
    Ok(db.rocks().write_opt(batch, &options)?)
}

/// Adds the markers that refuse, at start, every node `ledger` records, the backup's own node
/// and the nodes `also` names (those the source recorded at its head); returns their ids.
fn refuse_recorded_nodes(
    ledger: &LedgerStore,
    from_node: Option<u64>,
    also: &[u64],
    batch: &mut rocksdb::WriteBatch,
) -> Result<Vec<u64>, StorageError> {
    let mut refused: Vec<u64> = tpw_contracts::governance::node_records(ledger)
        .map_err(|error| StorageError::Corrupt(error.to_string()))?
        .iter()
        .map(|node| node.id)
        .chain(from_node)
        .chain(also.iter().copied())
        .collect();
    refused.sort_unstable();
    refused.dedup();
    let bytes: Vec<u8> = refused.iter().flat_map(|id| id.to_be_bytes()).collect();
    let meta = ledger.db().cf(CF_META);
    batch.put_cf(
        meta,
        KEY_RESTORED_REFUSED,
        crate::storage::seal_record(&bytes),
    );
    if let Some(node) = from_node {
        batch.put_cf(
            meta,
            KEY_RESTORED_FROM,
            crate::storage::seal_record(&node.to_be_bytes()),
        );
    }
    Ok(refused)
}

/// The nodes that never run on a restored folder (empty for a folder that was not restored).
pub fn restored_refused(db: &Db) -> Result<Vec<u64>, StorageError> {
    match db.rocks().get_cf(db.cf(CF_META), KEY_RESTORED_REFUSED)? {
        None => Ok(Vec::new()),
        Some(bytes) => {
            let payload = crate::storage::open_record(&bytes, "meta")?;
            if payload.len() % 8 != 0 {
                return Err(StorageError::Corrupt(
                    "the restored-folder marker has the wrong size".into(),
                ));
            }
            Ok(payload
                .chunks_exact(8)
                .map(|id| u64::from_be_bytes(id.try_into().unwrap_or_default()))
                .collect())
        }
    }
}

/// Where a replayed restore reads its blocks.
#[derive(Debug, Clone, Copy)]
pub enum ReplaySource<'a> {
    /// A backup folder (holding backup.json and db/).
    Backup(&'a Path),
    /// A ledger archive (`tpw export`).
    Archive(&'a Path),
}

/// Rebuilds the ledger of `source` in `data_dir` (which must hold no `db/` yet) by replaying
/// its blocks from genesis up to `to_height` (the source's head if none), telling `progress`
/// (done, all): blocks for a backup, bytes for an archive.
pub fn restore_replay(
    source: ReplaySource<'_>,
    data_dir: &Path,
    genesis: &Genesis,
    to_height: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RestoreReport, RestoreError> {
    use crate::archive::BlockSource;
    let network_id = genesis
        .compute_network_id()
        .map_err(|error| RestoreError::Mismatch(error.to_string()))?;
    let (mut blocks, from_node) = match source {
        ReplaySource::Backup(backup) => backup_source(backup, &network_id, to_height)?,
        ReplaySource::Archive(archive) => {
            let blocks = BlockSource::archive(archive, &network_id)?;
            (blocks, None)
        }
    };
    let (target, staging) = prepare_target(data_dir)?;
    let report = match replay_into(
        &staging,
        &mut blocks,
        genesis,
        to_height,
        from_node,
        progress,
    ) {
        Ok(report) => report,
        Err(error) => {
            // Nothing half-restored stays behind (a run again would start over anyway).
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    std::fs::rename(&staging, &target)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(report)
}

/// A backup folder as a block source up to `to_height` (its head if none), with the node it
/// was taken from; the backup must be of this network and hold that height's Raft position.
fn backup_source(
    backup: &Path,
    network_id: &[u8; 32],
    to_height: Option<u64>,
) -> Result<(crate::archive::BlockSource, Option<u64>), RestoreError> {
    let manifest = read_manifest(backup)?;
    if manifest.network_id != hex::encode(network_id) {
        return Err(RestoreError::Mismatch(format!(
            "the backup belongs to network {}, the genesis to {}",
            manifest.network_id,
            hex::encode(network_id)
        )));
    }
    let database = backup.join("db");
    if !database.join("CURRENT").exists() {
        return Err(RestoreError::NotABackup(format!(
            "{} holds no database",
            database.display()
        )));
    }
    let reader = LedgerReader::new(Db::open_read_only(&database)?);
    let (head, _) = reader.head()?;
    if to_height.is_some_and(|height| height > head.height) {
        return Err(RestoreError::Height(format!(
            "the backup ends at height {}, below the chosen height",
            head.height
        )));
    }
    let last = to_height.unwrap_or(head.height);
    if reader.block_position(last)?.is_none() && last > 0 {
        return Err(no_position(last));
    }
    let blocks = crate::archive::BlockSource::Folder {
        reader,
        next: 1,
        head: last,
    };
    Ok((blocks, Some(manifest.node_id)))
}

/// Replays `blocks` into a new database at `staging` (see [`restore_replay`]).
fn replay_into(
    staging: &Path,
    blocks: &mut crate::archive::BlockSource,
    genesis: &Genesis,
    to_height: Option<u64>,
    from_node: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RestoreReport, RestoreError> {
    let db = Db::open(staging)?;
    let mut ledger = LedgerStore::open(db.clone(), genesis)?;
    let log = open_log(&db, genesis)?;
    let (replayed, position) = replay_blocks(&mut ledger, blocks, to_height, progress)?;
    let height = ledger.head().height;
    if let Some(chosen) = to_height.filter(|chosen| *chosen != height) {
        return Err(RestoreError::Height(format!(
            "the archive ends at height {height}, below the chosen height {chosen}"
        )));
    }
    let position = match position {
        Some(position) => position,
        None if height == 0 => crate::storage::LogPosition { index: 0, term: 0 },
        None => return Err(no_position(height)),
    };
    let history = blocks.conf_history_upto(position.index)?;
    if history.is_empty() && position.index > 0 {
        return Err(RestoreError::Height(format!(
            "the source does not record the Raft configuration in force at index {} (height \
             {height}): its node kept no configuration history then; choose a later height",
            position.index
        )));
    }
    let at_source_head = nodes_at_source_head(blocks)?;
    let mut batch = rocksdb::WriteBatch::default();
    ledger.reset_raft_after_replay(&log, position, &history, &mut batch)?;
    let refused_nodes = refuse_recorded_nodes(&ledger, from_node, &at_source_head, &mut batch)?;
    write_synced(&db, batch)?;
    let head = ledger.head();
    Ok(RestoreReport {
        from_node,
        refused_nodes,
        replayed_blocks: Some(replayed),
        height,
        head_hash: hex::encode(head.hash),
        state_root: hex::encode(head.commitment.root()),
        applied_index: position.index,
        files: 0,
        bytes: 0,
    })
}

/// Applies the source's blocks up to `to_height` again and commits each; returns how many it
/// replayed and the Raft position of the last one that has one.
fn replay_blocks(
    ledger: &mut LedgerStore,
    blocks: &mut crate::archive::BlockSource,
    to_height: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(u64, Option<crate::storage::LogPosition>), RestoreError> {
    let mut replayed = 0u64;
    let mut position = None;
    while let Some(block) = blocks
        .next_block()
        .map_err(crate::verify::ReplayError::from)?
    {
        if to_height.is_some_and(|height| block.height > height) {
            break;
        }
        let height = block.height;
        let outcome = crate::verify::replay_block(ledger, ledger.head(), height, &block.block)?;
        let webhooks = tpw_consensus::replica::plausible_webhooks(&block.block.proposal, height);
        ledger.commit_block(
            block.position,
            &block.block.proposal.to_bytes(),
            &outcome,
            &webhooks,
        )?;
        position = block.position;
        replayed += 1;
        let (done, all) = blocks.progress();
        progress(done, all);
    }
    Ok((replayed, position))
}

/// Nodes added after the restored height may have voted too: the source's head names them (an
/// archive is read to its end record, which also checks its checksum).
fn nodes_at_source_head(
    blocks: &mut crate::archive::BlockSource,
) -> Result<Vec<u64>, RestoreError> {
    Ok(match blocks {
        crate::archive::BlockSource::Folder { reader, .. } => {
            reader.nodes()?.iter().map(|node| node.id).collect()
        }
        crate::archive::BlockSource::Archive { .. } => blocks
            .finish()
            .map_err(crate::verify::ReplayError::from)?
            .map(|(_, _, node_ids)| node_ids)
            .unwrap_or_default(),
    })
}

fn no_position(height: u64) -> RestoreError {
    RestoreError::Height(format!(
        "block {height} has no recorded Raft position (the source node received it through a \
         snapshot's backfill, or applied it before positions were recorded), so a node could \
         not resume Raft from it; choose a later height"
    ))
}

fn genesis_ids(genesis: &Genesis, role: tpw_contracts::genesis::NodeRole) -> Vec<u64> {
    genesis
        .nodes
        .iter()
        .filter(|node| node.role == role)
        .map(|node| node.id)
        .collect()
}

/// The node a restored folder's backup came from, if the folder was restored.
pub fn restored_from(db: &Db) -> Result<Option<u64>, StorageError> {
    match db.rocks().get_cf(db.cf(CF_META), KEY_RESTORED_FROM)? {
        None => Ok(None),
        Some(bytes) => {
            let payload = crate::storage::open_record(&bytes, "meta")?;
            <[u8; 8]>::try_from(payload)
                .map(|id| Some(u64::from_be_bytes(id)))
                .map_err(|_| {
                    StorageError::Corrupt("restored-from marker has the wrong size".into())
                })
        }
    }
}

/// Progress on a terminal: one line rewritten in place, or a line per second elsewhere.
/// `unit` is "MiB" for byte counts (shown in MiB), anything else for plain counts.
pub fn terminal_progress(what: &'static str, unit: &'static str) -> impl FnMut(u64, u64) {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let mut last = std::time::Instant::now();
    move |done: u64, all: u64| {
        if done == all || last.elapsed() >= PROGRESS_INTERVAL {
            last = std::time::Instant::now();
            let line = if unit == "MiB" {
                format!("{what} {} of {} MiB", done >> 20, all >> 20)
            } else {
                format!("{what} {done} of {all} {unit}")
            };
            let mut stderr = std::io::stderr();
            if terminal {
                let _ = write!(stderr, "\r{line}");
                if done == all {
                    let _ = writeln!(stderr);
                }
            } else {
                let _ = writeln!(stderr, "{line}");
            }
        }
    }
}
