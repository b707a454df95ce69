//! Writing an archive (`tpw export`): the source's blocks and configuration changes, record
//! by record, into `<out>.partial`, resumed from what a partial file already holds once it is
//! checked against the source, and renamed into place once complete and synced.

use super::{
    encode_record, io_error, ArchiveError, ArchiveReader, ArchiveRecord, HEADER_BYTES, MAGIC,
};
use crate::storage::{Db, LedgerReader, StorageError, CF_BLOCKS};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tpw_consensus::raft_types::ConfState;
use tpw_contracts::model::Hash;

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    /// The archive.
    pub file: PathBuf,
    /// Its head height.
    pub height: u64,
    /// Its head hash, hex.
    pub head_hash: String,
    /// Blocks written by this run.
    pub blocks_written: u64,
    /// Configuration records in the archive.
    pub conf_changes: u64,
    /// The archive's size.
    pub bytes: u64,
    /// The height an interrupted export was resumed after, if it was.
    pub resumed_after_height: Option<u64>,
}

/// What a partial archive already holds, read back to resume it.
struct Resumed {
    valid_bytes: u64,
    hasher: blake3::Hasher,
    last_height: u64,
    conf_changes: u64,
}

/// Reads back a partial archive, passing each complete record to `check` (which compares it
/// with the source); `None` if not even its header was written.
fn read_partial(
    partial: &Path,
    network_id: &Hash,
    check: &mut dyn FnMut(&ArchiveRecord) -> Result<(), ArchiveError>,
) -> Result<Option<Resumed>, ArchiveError> {
    let mut reader = match ArchiveReader::open(partial) {
        Ok(reader) => reader,
        Err(ArchiveError::Malformed { offset: 0, .. })
            if std::fs::metadata(partial).map_err(io_error(partial))?.len() < HEADER_BYTES =>
        {
            return Ok(None)
        }
        Err(error) => return Err(error),
    };
    if reader.network_id() != *network_id {
        return Err(ArchiveError::Mismatch(format!(
            "{} is a partial export of network {}, the source is network {}; remove it",
            partial.display(),
            hex::encode(reader.network_id()),
            hex::encode(network_id)
        )));
    }
    let mut resumed = Resumed {
        valid_bytes: reader.offset(),
        hasher: reader.hasher.clone(),
        last_height: 0,
        conf_changes: 0,
    };
    loop {
        // A torn or damaged tail (the export was interrupted mid-write) is cut off.
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) | Err(ArchiveError::Malformed { .. }) => break,
            Err(error) => return Err(error),
        };
        check(&record)?;
        match record {
            ArchiveRecord::Block { height, .. } => resumed.last_height = height,
            ArchiveRecord::Conf { .. } => resumed.conf_changes += 1,
            // The source may have grown since: the export goes on past the old end.
            ArchiveRecord::End { .. } => break,
        }
        resumed.valid_bytes = reader.offset();
        resumed.hasher = reader.hasher.clone();
    }
    Ok(Some(resumed))
}

/// The raw block record stored at `height`.
fn block_bytes(db: &Db, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
    match db.rocks().get_cf(db.cf(CF_BLOCKS), height.to_be_bytes())? {
        None => Ok(None),
        Some(sealed) => Ok(Some(
            crate::storage::open_record(&sealed, "block")?.to_vec(),
        )),
    }
}

/// Exports the ledger in the data folder (or backup folder) `source`, which holds `db/`, to
/// `out`, telling `progress` (blocks done, blocks in all). Read-only on the source: safe
/// beside a running node, which keeps applying blocks; the archive ends at the head the
/// export saw when it opened the folder.
pub fn export(
    source: &Path,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ExportReport, ArchiveError> {
    if out.exists() {
        return Err(ArchiveError::Exists(out.to_path_buf()));
    }
    let database = source.join("db");
    if !database.join("CURRENT").exists() {
        return Err(ArchiveError::Mismatch(format!(
            "{} holds no database (db/)",
            source.display()
        )));
    }
    let db = Db::open_read_only(&database)?;
    let reader = LedgerReader::new(db.clone());
    let (head, applied_index) = reader.head()?;
    let history = reader.conf_history()?;
    let mut partial_name = out.as_os_str().to_os_string();
    partial_name.push(".partial");
    let partial = PathBuf::from(partial_name);
    let resumed = if partial.exists() {
        let mut check = PartialCheck {
            db: &db,
            reader: &reader,
            history: &history,
            partial: &partial,
            confs_checked: 0,
        };
        read_partial(&partial, &head.network_id, &mut |record| {
            check.check(record)
        })?
    } else {
        None
    };
    let mut writer = ArchiveWriter::open(&partial, &head, &history, resumed.as_ref())?;
    let resumed_after_height = resumed.map(|resumed| resumed.last_height);
    let first_height = resumed_after_height.map_or(1, |height| height + 1);
    for height in first_height..=head.height {
        let record = block_bytes(&db, height)?.ok_or_else(|| {
            ArchiveError::Mismatch(format!(
                "block {height} is not stored in {} (a node restored from a snapshot keeps \
                 earlier blocks only once its backfill finished); export from a node that \
                 holds every block",
                source.display()
            ))
        })?;
        writer.put_block(height, reader.block_position(height)?, record)?;
        progress(height, head.height);
    }
    writer.put_confs_upto(applied_index)?;
    let conf_changes = writer.conf_changes;
    let bytes = writer.put_end(&ArchiveRecord::End {
        height: head.height,
        head_hash: head.hash,
        node_ids: reader.nodes()?.iter().map(|node| node.id).collect(),
    })?;
    publish(&partial, out)?;
    Ok(ExportReport {
        file: out.to_path_buf(),
        height: head.height,
        head_hash: hex::encode(head.hash),
        blocks_written: (head.height + 1).saturating_sub(first_height),
        conf_changes,
        bytes,
        resumed_after_height,
    })
}

/// Checks every complete record of a partial export against the source, so that the checksum
/// written at the end vouches only for bytes that are the source's.
struct PartialCheck<'a> {
    db: &'a Db,
    reader: &'a LedgerReader,
    history: &'a [(u64, ConfState)],
    partial: &'a Path,
    /// Configuration records checked so far: they are the source's history, in order, from
    /// its start.
    confs_checked: usize,
}

impl PartialCheck<'_> {
    fn check(&mut self, record: &ArchiveRecord) -> Result<(), ArchiveError> {
        let differs = |what: String| {
            ArchiveError::Mismatch(format!(
                "{} holds {what} that differs from the source; remove it",
                self.partial.display()
            ))
        };
        match record {
            ArchiveRecord::Block {
                height,
                position,
                record,
            } => {
                if block_bytes(self.db, *height)?.as_ref() != Some(record)
                    || self.reader.block_position(*height)? != *position
                {
                    return Err(differs(format!("block {height}")));
                }
            }
            ArchiveRecord::Conf { index, conf_state } => {
                if self.history.get(self.confs_checked) != Some(&(*index, conf_state.clone())) {
                    return Err(differs(format!("the configuration at index {index}")));
                }
                self.confs_checked += 1;
            }
            ArchiveRecord::End { .. } => {}
        }
        Ok(())
    }
}

/// The partial archive being written: its file, the checksum of everything written so far, and
/// how many of the source's configuration changes it holds.
struct ArchiveWriter<'a> {
    path: &'a Path,
    writer: BufWriter<std::fs::File>,
    hasher: blake3::Hasher,
    history: &'a [(u64, ConfState)],
    conf_changes: u64,
}

impl<'a> ArchiveWriter<'a> {
    /// Opens the partial file: cut to what `resumed` vouches for, or started anew with the
    /// header.
    fn open(
        path: &'a Path,
        head: &tpw_contracts::ChainHead,
        history: &'a [(u64, ConfState)],
        resumed: Option<&Resumed>,
    ) -> Result<Self, ArchiveError> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_error(path))?;
        let (hasher, conf_changes) = match resumed {
            Some(resumed) => {
                if resumed.last_height > head.height {
                    return Err(ArchiveError::Mismatch(format!(
                        "{} already holds height {}, beyond the source's head {}; remove it",
                        path.display(),
                        resumed.last_height,
                        head.height
                    )));
                }
                file.set_len(resumed.valid_bytes).map_err(io_error(path))?;
                file.seek(SeekFrom::Start(resumed.valid_bytes))
                    .map_err(io_error(path))?;
                (resumed.hasher.clone(), resumed.conf_changes)
            }
            None => {
                file.set_len(0).map_err(io_error(path))?;
                let mut header = MAGIC.to_vec();
                header.extend_from_slice(&head.network_id);
                file.write_all(&header).map_err(io_error(path))?;
                let mut hasher = blake3::Hasher::new();
                hasher.update(&header);
                (hasher, 0)
            }
        };
        Ok(Self {
            path,
            writer: BufWriter::with_capacity(1 << 20, file),
            hasher,
            history,
            conf_changes,
        })
    }

    fn put(&mut self, record: &ArchiveRecord) -> Result<(), ArchiveError> {
        let bytes = encode_record(record, Some(&self.hasher));
        self.writer.write_all(&bytes).map_err(io_error(self.path))?;
        self.hasher.update(&bytes);
        Ok(())
    }

    /// Writes a block, after the configuration changes in force at its Raft position.
    fn put_block(
        &mut self,
        height: u64,
        position: Option<crate::storage::LogPosition>,
        record: Vec<u8>,
    ) -> Result<(), ArchiveError> {
        if let Some(position) = position {
            self.put_confs_upto(position.index)?;
        }
        self.put(&ArchiveRecord::Block {
            height,
            position,
            record,
        })
    }

    /// Writes the history's changes not yet written that are in force from `upto` or before.
    fn put_confs_upto(&mut self, upto: u64) -> Result<(), ArchiveError> {
        let history = self.history;
        for (index, conf_state) in history.iter().skip(self.conf_changes as usize) {
            if *index > upto {
                break;
            }
            self.put(&ArchiveRecord::Conf {
                index: *index,
                conf_state: conf_state.clone(),
            })?;
            self.conf_changes += 1;
        }
        Ok(())
    }

    /// Writes the end record with the checksum and syncs the file; returns its size.
    fn put_end(self, end: &ArchiveRecord) -> Result<u64, ArchiveError> {
        let path = self.path;
        let mut writer = self.writer;
        writer
            .write_all(&encode_record(end, Some(&self.hasher)))
            .map_err(io_error(path))?;
        let file = writer
            .into_inner()
            .map_err(|error| io_error(path)(error.into_error()))?;
        file.sync_all().map_err(io_error(path))?;
        let bytes = file.metadata().map_err(io_error(path))?.len();
        Ok(bytes)
    }
}

/// Renames the complete partial file into place (never over an archive that appeared
/// meanwhile) and syncs the folder that holds it.
fn publish(partial: &Path, out: &Path) -> Result<(), ArchiveError> {
    if out.exists() {
        return Err(ArchiveError::Exists(out.to_path_buf()));
    }
    std::fs::rename(partial, out).map_err(io_error(out))?;
    if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|directory| directory.sync_all())
            .map_err(io_error(parent))?;
    }
    Ok(())
}
