//! Ledger snapshots on disk: the descriptor that travels in a Raft snapshot message, reading a
//! checkpoint to serve a snapshot's records, staging received records apart from the ledger,
//! and the record of blocks still to fetch below an installed snapshot.
//!
//! A snapshot is a RocksDB checkpoint of the whole database (hard links, taken while the node
//! serves), so it is one consistent point: its chain head, applied index and state records
//! belong together. The receiver recomputes the state commitment from the records and accepts
//! them only if the root equals the one in the snapshot's block header.

use super::db::{Db, StorageError, CF_BLOCKS, CF_INDEX, CF_META, CF_STAGING, CF_STATE};
use super::ledger::{decode_head, parse_block_record, StoredBlock, KEY_HEAD};
use super::record::{open_record, seal_record};
use crate::limits::BLOCK_GAPS_MAX;
use rocksdb::{IteratorMode, WriteBatch, WriteOptions};
use std::path::{Path, PathBuf};
use tpw_contracts::codec::{DecodeError, Reader, Writer};
use tpw_contracts::model::Hash;
use tpw_contracts::ChainHead;

pub(super) const KEY_STAGED: &[u8] = b"staged_snapshot";
pub(super) const KEY_INSTALLING: &[u8] = b"installing_snapshot";
pub(super) const KEY_BLOCK_GAPS: &[u8] = b"block_gaps";

/// The descriptor a Raft snapshot message carries, and the record chunks of the snapshot
/// protocol: peer wire formats, defined with the other codecs in `tpw_consensus::wire`.
pub use tpw_consensus::wire::snapshot::{RecordChunk, SnapshotDescriptor};

/// A checkpoint opened to serve one snapshot; its folder is removed when it is dropped.
pub struct Checkpoint {
    db: Option<Db>,
    path: PathBuf,
    /// What it holds.
    pub descriptor: SnapshotDescriptor,
    /// Raft's configuration at its applied index.
    pub conf_state: tpw_consensus::raft_types::ConfState,
}

impl Checkpoint {
    /// Takes a checkpoint of `db` into `path` (which must not exist) and opens it.
    pub fn create(db: &Db, path: &Path) -> Result<Self, StorageError> {
        db.checkpoint(path)?;
        let opened = Db::open_read_only(path).and_then(|checkpoint| {
            let Some(bytes) = checkpoint
                .rocks()
                .get_cf(checkpoint.cf(CF_META), KEY_HEAD)?
            else {
                return Err(StorageError::Corrupt(
                    "the checkpoint has no chain head".into(),
                ));
            };
            let (head, applied_index) = decode_head(&bytes)?;
            let conf_state = super::raft_log::stored_conf_state(&checkpoint)?.ok_or_else(|| {
                StorageError::Corrupt("the checkpoint has no raft configuration".into())
            })?;
            Ok((checkpoint, head, applied_index, conf_state))
        });
        let (checkpoint, head, applied_index, conf_state) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                let _ = std::fs::remove_dir_all(path);
                return Err(error);
            }
        };
        Ok(Self {
            db: Some(checkpoint),
            path: path.to_path_buf(),
            descriptor: SnapshotDescriptor {
                network_id: head.network_id,
                height: head.height,
                head_hash: head.hash,
                state_root: head.commitment.root(),
                applied_index,
            },
            conf_state,
        })
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("open until dropped")
    }

    /// State records after `after` (from the first when `None`), about `size_max` bytes at
    /// most (at least one record), and whether they are the last.
    pub fn records(
        &self,
        after: Option<&[u8]>,
        size_max: usize,
    ) -> Result<(RecordChunk, bool), StorageError> {
        let db = self.db();
        let mode = match after {
            Some(key) => IteratorMode::From(key, rocksdb::Direction::Forward),
            None => IteratorMode::Start,
        };
        let mut records = Vec::new();
        let mut size = 0;
        for item in db.rocks().iterator_cf(db.cf(CF_STATE), mode) {
            let (key, value) = item?;
            if Some(&key[..]) == after {
                continue;
            }
            if size >= size_max && !records.is_empty() {
                return Ok((records, false));
            }
            let payload = open_record(&value, "state")?;
            size += key.len() + payload.len() + 8;
            records.push((key.to_vec(), payload.to_vec()));
        }
        Ok((records, true))
    }
}

impl Drop for Checkpoint {
    fn drop(&mut self) {
        drop(self.db.take());
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "snapshot checkpoint not removed");
        }
    }
}

/// Block records from `top` down, as many as are present in a row, up to `count_max` records
/// and about `size_max` bytes (at least one).
pub fn block_records_down(
    db: &Db,
    top: u64,
    count_max: u64,
    size_max: usize,
) -> Result<Vec<Vec<u8>>, StorageError> {
    let mut blocks = Vec::new();
    let mut size = 0;
    let mut height = top;
    while (blocks.len() as u64) < count_max && (size < size_max || blocks.is_empty()) {
        let Some(bytes) = db.rocks().get_cf(db.cf(CF_BLOCKS), height.to_be_bytes())? else {
            break;
        };
        let payload = open_record(&bytes, "block")?.to_vec();
        size += payload.len();
        blocks.push(payload);
        if height == 0 {
            break;
        }
        height -= 1;
    }
    Ok(blocks)
}

/// A snapshot received and verified, waiting for Raft to accept it.
#[derive(Debug, Clone)]
pub struct StagedSnapshot {
    /// The descriptor it was fetched for.
    pub descriptor: SnapshotDescriptor,
    /// The chain head it installs (with the commitment recomputed from the records).
    pub head: ChainHead,
    /// The head block's record.
    pub block: Vec<u8>,
}

impl StagedSnapshot {
    fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(self.block.len() + 2400);
        writer.bytes(&self.descriptor.to_bytes());
        self.head.encode(&mut writer);
        writer.bytes(&self.block);
        writer.finish()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StorageError> {
        let corrupt =
            |error: DecodeError| StorageError::Corrupt(format!("staged snapshot: {error}"));
        let mut reader = Reader::new(bytes);
        let descriptor =
            SnapshotDescriptor::from_bytes(reader.bytes("descriptor", 1024).map_err(corrupt)?)
                .map_err(corrupt)?;
        let head = ChainHead::decode(&mut reader).map_err(corrupt)?;
        let block = reader
            .bytes("block", 2 * tpw_contracts::limits::BLOCK_SIZE_MAX)
            .map_err(corrupt)?
            .to_vec();
        reader.finish().map_err(corrupt)?;
        Ok(Self {
            descriptor,
            head,
            block,
        })
    }
}

/// The receiver's side of the staging area.
#[derive(Clone)]
pub struct Staging {
    db: Db,
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

impl Staging {
    /// The staging area of this database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Forgets any staged snapshot and its records.
    pub fn clear(&self) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.db.cf(CF_META), KEY_STAGED);
        batch.delete_range_cf(
            self.db.cf(CF_STAGING),
            [0u8].as_slice(),
            [0xffu8; 64].as_slice(),
        );
        self.db.rocks().write_opt(batch, &synced())?;
        Ok(())
    }

    /// Adds received records (the checks on them are the caller's).
    pub fn write_records(&self, records: &RecordChunk) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        let cf = self.db.cf(CF_STAGING);
        for (key, value) in records {
            batch.put_cf(cf, key, seal_record(value));
        }
        self.db.rocks().write(batch)?;
        Ok(())
    }

    /// Marks the staged records complete and verified, durably.
    pub fn seal(&self, staged: &StagedSnapshot) -> Result<(), StorageError> {
        self.db.rocks().put_cf_opt(
            self.db.cf(CF_META),
            KEY_STAGED,
            seal_record(&staged.to_bytes()),
            &synced(),
        )?;
        Ok(())
    }
}

/// The staged snapshot, if one is complete.
pub(super) fn read_staged(db: &Db) -> Result<Option<StagedSnapshot>, StorageError> {
    match db.rocks().get_cf(db.cf(CF_META), KEY_STAGED)? {
        None => Ok(None),
        Some(bytes) => {
            StagedSnapshot::from_bytes(open_record(&bytes, "staged snapshot")?).map(Some)
        }
    }
}

/// The staged head block, checked to be the one the head names.
pub(super) fn staged_block(staged: &StagedSnapshot) -> Result<StoredBlock, StorageError> {
    let block = parse_block_record(&staged.block)?;
    if block.header.hash() != staged.head.hash {
        return Err(StorageError::Corrupt(
            "staged snapshot: the block is not the head block".into(),
        ));
    }
    Ok(block)
}

/// Ranges of block heights (inclusive) below an installed snapshot that are still to be
/// fetched from peers, lowest first.
pub fn block_gaps(db: &Db) -> Result<Vec<(u64, u64)>, StorageError> {
    let Some(bytes) = db.rocks().get_cf(db.cf(CF_META), KEY_BLOCK_GAPS)? else {
        return Ok(Vec::new());
    };
    let payload = open_record(&bytes, "block gaps")?;
    let corrupt = |error: DecodeError| StorageError::Corrupt(format!("block gaps: {error}"));
    let mut reader = Reader::new(payload);
    let count = reader.u32("count").map_err(corrupt)? as usize;
    if count > BLOCK_GAPS_MAX {
        return Err(StorageError::Corrupt("block gaps: too many".into()));
    }
    let mut gaps = Vec::with_capacity(count);
    for _ in 0..count {
        let low = reader.u64("low").map_err(corrupt)?;
        let high = reader.u64("high").map_err(corrupt)?;
        if low == 0 || low > high {
            return Err(StorageError::Corrupt("block gaps: bad range".into()));
        }
        gaps.push((low, high));
    }
    reader.finish().map_err(corrupt)?;
    Ok(gaps)
}

/// Writes the block gap list into `batch`.
pub(super) fn put_block_gaps(db: &Db, batch: &mut WriteBatch, gaps: &[(u64, u64)]) {
    if gaps.is_empty() {
        batch.delete_cf(db.cf(CF_META), KEY_BLOCK_GAPS);
        return;
    }
    let mut kept = gaps.to_vec();
    while kept.len() > BLOCK_GAPS_MAX {
        let high = kept[1].1;
        kept.remove(1);
        kept[0].1 = high;
    }
    let mut writer = Writer::with_capacity(4 + kept.len() * 16);
    writer.u32(kept.len() as u32);
    for (low, high) in kept {
        writer.u64(low);
        writer.u64(high);
    }
    batch.put_cf(
        db.cf(CF_META),
        KEY_BLOCK_GAPS,
        seal_record(&writer.finish()),
    );
}

/// Stores blocks fetched from peers below a snapshot (already checked, highest first, filling
/// the top of the gap that ends at `gap_high`) with their transaction index entries, and
/// shrinks that gap, in one write. The gap list is re-read under its lock, so a gap recorded
/// by an install meanwhile is kept. Earlier occurrences of a transaction id win in the index,
/// as when blocks are applied in order.
pub fn store_backfill(
    db: &Db,
    blocks: &[(u64, Vec<u8>, Vec<Hash>)],
    gap_high: u64,
) -> Result<(), StorageError> {
    let Some(lowest) = blocks.last().map(|(height, _, _)| *height) else {
        return Ok(());
    };
    let _guard = db.lock_gaps();
    let mut gaps = block_gaps(db)?;
    let Some(position) = gaps.iter().position(|(_, high)| *high == gap_high) else {
        return Err(StorageError::Corrupt(format!(
            "backfill filled a gap ending at {gap_high} that is not recorded"
        )));
    };
    let (low, _) = gaps[position];
    if lowest > low {
        gaps[position].1 = lowest - 1;
    } else {
        gaps.remove(position);
    }
    let mut batch = WriteBatch::default();
    let index_cf = db.cf(CF_INDEX);
    for (height, record, tx_ids) in blocks {
        batch.put_cf(db.cf(CF_BLOCKS), height.to_be_bytes(), seal_record(record));
        for (position, tx_id) in tx_ids.iter().enumerate().rev() {
            let mut location = height.to_le_bytes().to_vec();
            location.extend_from_slice(&(position as u32).to_le_bytes());
            batch.put_cf(index_cf, tx_id, seal_record(&location));
        }
    }
    put_block_gaps(db, &mut batch, &gaps);
    db.rocks().write(batch)?;
    Ok(())
}
