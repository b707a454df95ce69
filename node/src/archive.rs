//! Ledger archives: one file holding a ledger's blocks from height 1 to a head, the Raft
//! position each block was applied at and the Raft configuration changes, closed by an end
//! record with the head and a checksum of everything before it (docs/encoding.md, Ledger
//! archive). `tpw export` writes one from a data folder or a backup; `tpw verify --archive`
//! replays it from genesis; `tpw restore --archive` builds a data folder from it, to its end or
//! to a chosen height.
//!
//! An export writes `<out>.partial` and renames it into place once complete and synced. An
//! interrupted export is resumed by running it again: the complete records of the partial
//! file are kept (checked against the source's blocks), a torn last record is cut off, and
//! the export goes on from the next block.

use crate::limits::ARCHIVE_RECORD_SIZE_MAX;
use crate::storage::{Db, LedgerReader, LogPosition, StorageError, StoredBlock, CF_BLOCKS};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tpw_consensus::raft_types::ConfState;
use tpw_contracts::model::Hash;

/// The first eight bytes of every archive (format version 1).
pub const MAGIC: &[u8; 8] = b"TPWARC01";
const HEADER_BYTES: u64 = 8 + 32;
const KIND_BLOCK: u8 = 1;
const KIND_CONF: u8 = 2;
const KIND_END: u8 = 3;

/// Why an archive could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading or writing a file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The file is not an archive, or is damaged; `offset` is where reading stopped.
    #[error("{path} at byte {offset}: {what}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Byte offset of the record that is wrong.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The archive or the partial file belongs to another ledger than expected.
    #[error("{0}")]
    Mismatch(String),
    /// The output exists already.
    #[error("{0} exists already; an archive is never overwritten")]
    Exists(PathBuf),
    /// The source folder could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One record of an archive.
#[derive(Debug, Clone, PartialEq)]
pub enum ArchiveRecord {
    /// A block: its height, the Raft position it was applied at (none for a block the
    /// exporting node backfilled from peers) and its block record (docs/encoding.md).
    Block {
        /// Height.
        height: u64,
        /// Raft position.
        position: Option<LogPosition>,
        /// The block record.
        record: Vec<u8>,
    },
    /// The Raft configuration from `index` on.
    Conf {
        /// Raft index.
        index: u64,
        /// The configuration.
        conf_state: ConfState,
    },
    /// The end: the head's height and hash and the ids of every node the ledger records at
    /// the head (the checksum was checked on reading).
    End {
        /// Head height.
        height: u64,
        /// Head hash.
        head_hash: Hash,
        /// Every node id recorded at the head, removed ones included.
        node_ids: Vec<u64>,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |error| ArchiveError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn encode_record(record: &ArchiveRecord, checksum: Option<&blake3::Hasher>) -> Vec<u8> {
    let mut payload = Vec::new();
    match record {
        ArchiveRecord::Block {
            height,
            position,
            record,
        } => {
            payload.push(KIND_BLOCK);
            payload.extend_from_slice(&height.to_be_bytes());
            let position = position.unwrap_or(LogPosition { index: 0, term: 0 });
            payload.extend_from_slice(&position.index.to_be_bytes());
            payload.extend_from_slice(&position.term.to_be_bytes());
            payload.extend_from_slice(record);
        }
        ArchiveRecord::Conf { index, conf_state } => {
            payload.push(KIND_CONF);
            payload.extend_from_slice(&index.to_be_bytes());
            payload.extend_from_slice(
                &protobuf::Message::write_to_bytes(conf_state).unwrap_or_default(),
            );
        }
        ArchiveRecord::End {
            height,
            head_hash,
            node_ids,
        } => {
            payload.push(KIND_END);
            payload.extend_from_slice(&height.to_be_bytes());
            payload.extend_from_slice(head_hash);
            payload.extend_from_slice(&(node_ids.len() as u32).to_be_bytes());
            for id in node_ids {
                payload.extend_from_slice(&id.to_be_bytes());
            }
            let digest = checksum.map(|hasher| *hasher.finalize().as_bytes());
            payload.extend_from_slice(&digest.unwrap_or([0; 32]));
        }
    }
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    bytes
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut buffer = [0; 8];
    buffer.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(buffer)
}

/// Reads an archive record by record, checking framing, kinds and the final checksum.
pub struct ArchiveReader {
    path: PathBuf,
    file: BufReader<std::fs::File>,
    hasher: blake3::Hasher,
    offset: u64,
    size: u64,
    network_id: Hash,
    ended: bool,
}

impl ArchiveReader {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self, ArchiveError> {
        let file = std::fs::File::open(path).map_err(io_error(path))?;
        let size = file.metadata().map_err(io_error(path))?.len();
        let mut reader = Self {
            path: path.to_path_buf(),
            file: BufReader::with_capacity(1 << 20, file),
            hasher: blake3::Hasher::new(),
            offset: 0,
            size,
            network_id: [0; 32],
            ended: false,
        };
        let mut header = [0u8; HEADER_BYTES as usize];
        if !reader.read_exact_or_end(&mut header)? || &header[..8] != MAGIC {
            return Err(reader.malformed(0, "not a ledger archive (no TPWARC01 header)"));
        }
        reader.network_id.copy_from_slice(&header[8..]);
        reader.hasher.update(&header);
        reader.offset = HEADER_BYTES;
        Ok(reader)
    }

    /// The network the archive belongs to.
    pub fn network_id(&self) -> Hash {
        self.network_id
    }

    /// Bytes read so far and the file's size, for progress.
    pub fn progress(&self) -> (u64, u64) {
        (self.offset, self.size)
    }

    /// Byte offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn malformed(&self, offset: u64, what: impl Into<String>) -> ArchiveError {
        ArchiveError::Malformed {
            path: self.path.clone(),
            offset,
            what: what.into(),
        }
    }

    /// Fills `buffer`; false if the file ended before the first byte, an error if it ended
    /// inside.
    fn read_exact_or_end(&mut self, buffer: &mut [u8]) -> Result<bool, ArchiveError> {
        let mut filled = 0;
        while filled < buffer.len() {
            match self.file.read(&mut buffer[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(self.malformed(self.offset, "the file ends inside a record")),
                Ok(read) => filled += read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(io_error(&self.path)(error)),
            }
        }
        Ok(true)
    }

    /// The next record; `None` where the file ends cleanly after a complete record. After the
    /// end record, only the end of the file may follow.
    pub fn next_record(&mut self) -> Result<Option<ArchiveRecord>, ArchiveError> {
        let start = self.offset;
        let mut length = [0u8; 4];
        if !self.read_exact_or_end(&mut length)? {
            return Ok(None);
        }
        if self.ended {
            return Err(self.malformed(start, "bytes after the end record"));
        }
        let length = u32::from_be_bytes(length);
        if length == 0
            || length > ARCHIVE_RECORD_SIZE_MAX
            || start + 4 + u64::from(length) > self.size
        {
            return Err(self.malformed(
                start,
                format!("a record of {length} bytes that the file does not hold"),
            ));
        }
        let mut payload = vec![0u8; length as usize];
        if !self.read_exact_or_end(&mut payload)? {
            return Err(self.malformed(start, "the file ends inside a record"));
        }
        let record = match payload[0] {
            KIND_BLOCK if payload.len() > 25 => {
                let (index, term) = (be_u64(&payload[9..]), be_u64(&payload[17..]));
                ArchiveRecord::Block {
                    height: be_u64(&payload[1..]),
                    position: (index > 0).then_some(LogPosition { index, term }),
                    record: payload[25..].to_vec(),
                }
            }
            KIND_CONF if payload.len() >= 9 => ArchiveRecord::Conf {
                index: be_u64(&payload[1..]),
                conf_state: protobuf::Message::parse_from_bytes(&payload[9..]).map_err(
                    |error| {
                        self.malformed(
                            start,
                            format!("a configuration that does not decode: {error}"),
                        )
                    },
                )?,
            },
            KIND_END
                if payload.len() >= 77
                    && payload.len()
                        == 77
                            + 8 * u32::from_be_bytes([
                                payload[41],
                                payload[42],
                                payload[43],
                                payload[44],
                            ]) as usize =>
            {
                let expected = self.hasher.finalize();
                if payload[payload.len() - 32..] != *expected.as_bytes() {
                    return Err(self.malformed(
                        start,
                        "the checksum does not match the bytes before it (the archive was altered or damaged)",
                    ));
                }
                let mut head_hash = [0; 32];
                head_hash.copy_from_slice(&payload[9..41]);
                self.ended = true;
                ArchiveRecord::End {
                    height: be_u64(&payload[1..]),
                    head_hash,
                    node_ids: payload[45..payload.len() - 32]
                        .chunks_exact(8)
                        .map(be_u64)
                        .collect(),
                }
            }
            kind => {
                return Err(
                    self.malformed(start, format!("a record of kind {kind} and {length} bytes"))
                )
            }
        };
        self.hasher.update(&(length).to_be_bytes());
        self.hasher.update(&payload);
        self.offset += 4 + u64::from(length);
        Ok(Some(record))
    }
}

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
    // Every complete record of a partial export is checked against the source, so that
    // the checksum written at the end vouches only for bytes that are the source's.
    let confs_checked = std::cell::Cell::new(0usize);
    let mut check = |record: &ArchiveRecord| -> Result<(), ArchiveError> {
        let differs = |what: String| {
            ArchiveError::Mismatch(format!(
                "{} holds {what} that differs from the source; remove it",
                partial.display()
            ))
        };
        match record {
            ArchiveRecord::Block {
                height,
                position,
                record,
            } => {
                if block_bytes(&db, *height)?.as_ref() != Some(record)
                    || reader.block_position(*height)? != *position
                {
                    return Err(differs(format!("block {height}")));
                }
            }
            ArchiveRecord::Conf { index, conf_state } => {
                // The configuration records are the source's history, in order, from its start.
                let position = confs_checked.get();
                if history.get(position) != Some(&(*index, conf_state.clone())) {
                    return Err(differs(format!("the configuration at index {index}")));
                }
                confs_checked.set(position + 1);
            }
            ArchiveRecord::End { .. } => {}
        }
        Ok(())
    };
    let resumed = if partial.exists() {
        read_partial(&partial, &head.network_id, &mut check)?
    } else {
        None
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&partial)
        .map_err(io_error(&partial))?;
    let (mut hasher, mut next_height, mut conf_changes) = match &resumed {
        Some(resumed) => {
            if resumed.last_height > head.height {
                return Err(ArchiveError::Mismatch(format!(
                    "{} already holds height {}, beyond the source's head {}; remove it",
                    partial.display(),
                    resumed.last_height,
                    head.height
                )));
            }
            file.set_len(resumed.valid_bytes)
                .map_err(io_error(&partial))?;
            file.seek(SeekFrom::Start(resumed.valid_bytes))
                .map_err(io_error(&partial))?;
            (
                resumed.hasher.clone(),
                resumed.last_height + 1,
                resumed.conf_changes,
            )
        }
        None => {
            file.set_len(0).map_err(io_error(&partial))?;
            let mut header = MAGIC.to_vec();
            header.extend_from_slice(&head.network_id);
            file.write_all(&header).map_err(io_error(&partial))?;
            let mut hasher = blake3::Hasher::new();
            hasher.update(&header);
            (hasher, 1, 0)
        }
    };
    let resumed_after_height = resumed.map(|resumed| resumed.last_height);
    let first_height = next_height;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let put = |record: &ArchiveRecord,
               hasher: &mut blake3::Hasher,
               writer: &mut BufWriter<std::fs::File>|
     -> Result<(), ArchiveError> {
        let bytes = encode_record(record, Some(hasher));
        writer.write_all(&bytes).map_err(io_error(&partial))?;
        hasher.update(&bytes);
        Ok(())
    };
    // Writes the history's changes not yet written that are in force from `upto` or before.
    let conf_upto = |upto: u64,
                     hasher: &mut blake3::Hasher,
                     writer: &mut BufWriter<std::fs::File>,
                     conf_changes: &mut u64|
     -> Result<(), ArchiveError> {
        for (index, conf_state) in history.iter().skip(*conf_changes as usize) {
            if *index > upto {
                break;
            }
            put(
                &ArchiveRecord::Conf {
                    index: *index,
                    conf_state: conf_state.clone(),
                },
                hasher,
                writer,
            )?;
            *conf_changes += 1;
        }
        Ok(())
    };
    while next_height <= head.height {
        let height = next_height;
        let record = block_bytes(&db, height)?.ok_or_else(|| {
            ArchiveError::Mismatch(format!(
                "block {height} is not stored in {} (a node restored from a snapshot keeps \
                 earlier blocks only once its backfill finished); export from a node that \
                 holds every block",
                source.display()
            ))
        })?;
        let position = reader.block_position(height)?;
        if let Some(position) = position {
            conf_upto(position.index, &mut hasher, &mut writer, &mut conf_changes)?;
        }
        put(
            &ArchiveRecord::Block {
                height,
                position,
                record,
            },
            &mut hasher,
            &mut writer,
        )?;
        progress(height, head.height);
        next_height += 1;
    }
    conf_upto(applied_index, &mut hasher, &mut writer, &mut conf_changes)?;
    let end = ArchiveRecord::End {
        height: head.height,
        head_hash: head.hash,
        node_ids: reader.nodes()?.iter().map(|node| node.id).collect(),
    };
    writer
        .write_all(&encode_record(&end, Some(&hasher)))
        .map_err(io_error(&partial))?;
    let file = writer
        .into_inner()
        .map_err(|error| io_error(&partial)(error.into_error()))?;
    file.sync_all().map_err(io_error(&partial))?;
    let bytes = file.metadata().map_err(io_error(&partial))?.len();
    drop(file);
    // Never replace an archive that appeared meanwhile.
    if out.exists() {
        return Err(ArchiveError::Exists(out.to_path_buf()));
    }
    std::fs::rename(&partial, out).map_err(io_error(out))?;
    if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|directory| directory.sync_all())
            .map_err(io_error(parent))?;
    }
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

/// A block read from a data folder or an archive, in height order.
pub struct SourceBlock {
    /// Height.
    pub height: u64,
    /// The Raft position it was applied at, if known.
    pub position: Option<LogPosition>,
    /// The block.
    pub block: StoredBlock,
}

/// Where blocks are replayed from (`tpw verify`, `tpw restore`): a data or backup folder's
/// database, or an archive.
pub enum BlockSource {
    /// A database, read-only.
    Folder {
        /// Its reader.
        reader: LedgerReader,
        /// The next height.
        next: u64,
        /// The head height.
        head: u64,
    },
    /// An archive.
    Archive {
        /// Its reader.
        reader: Box<ArchiveReader>,
        /// Configuration records read so far.
        conf_history: Vec<(u64, ConfState)>,
        /// The end record (height, head hash, node ids), once read.
        end: Option<(u64, Hash, Vec<u64>)>,
        /// The last height read.
        last: u64,
        /// The last Raft position read.
        last_position: Option<LogPosition>,
    },
}

/// Why the next block could not be read from a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A block below the head is not stored.
    #[error(
        "block {0} is not stored; a node restored from a snapshot keeps blocks only after backfill"
    )]
    MissingBlock(u64),
    /// The archive is damaged or out of order.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The folder could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl BlockSource {
    /// Opens an archive of network `network_id` as a source (an archive of another network
    /// is refused).
    pub fn archive(path: &Path, network_id: &Hash) -> Result<Self, ArchiveError> {
        let reader = ArchiveReader::open(path)?;
        if reader.network_id() != *network_id {
            return Err(ArchiveError::Mismatch(format!(
                "the archive belongs to network {}, the genesis to {}",
                hex::encode(reader.network_id()),
                hex::encode(network_id)
            )));
        }
        Ok(Self::Archive {
            reader: Box::new(reader),
            conf_history: Vec::new(),
            end: None,
            last: 0,
            last_position: None,
        })
    }

    /// Reads the rest of an archive without keeping its blocks: its order and its checksum
    /// are checked to the end record, whose head and node ids it returns (none for a folder).
    pub fn finish(&mut self) -> Result<Option<(u64, Hash, Vec<u64>)>, SourceError> {
        while self.next_block()?.is_some() {}
        Ok(match self {
            Self::Folder { .. } => None,
            Self::Archive { end, .. } => end.clone(),
        })
    }

    /// The next block, or `None` after the last one (for an archive, once its end record
    /// was read and checked; an archive without one is an error).
    pub fn next_block(&mut self) -> Result<Option<SourceBlock>, SourceError> {
        match self {
            Self::Folder { reader, next, head } => {
                if *next > *head {
                    return Ok(None);
                }
                let height = *next;
                let block = reader
                    .block(height)?
                    .ok_or(SourceError::MissingBlock(height))?;
                let position = reader.block_position(height)?;
                *next += 1;
                Ok(Some(SourceBlock {
                    height,
                    position,
                    block,
                }))
            }
            Self::Archive {
                reader,
                conf_history,
                end,
                last,
                last_position,
            } => loop {
                let offset = reader.offset();
                let path = reader.path.clone();
                let malformed = |what: String| ArchiveError::Malformed {
                    path: path.clone(),
                    offset,
                    what,
                };
                match reader.next_record()? {
                    None if end.is_some() => return Ok(None),
                    None => {
                        return Err(malformed(format!(
                            "the archive ends after height {last} without its end record (an \
                             interrupted export: run it again)"
                        ))
                        .into())
                    }
                    Some(ArchiveRecord::Conf { index, conf_state }) => {
                        if conf_history.last().is_some_and(|(last, _)| *last >= index) {
                            return Err(malformed(format!(
                                "configuration index {index} out of order"
                            ))
                            .into());
                        }
                        conf_history.push((index, conf_state));
                    }
                    Some(ArchiveRecord::Block {
                        height,
                        position,
                        record,
                    }) => {
                        if height != *last + 1 {
                            return Err(
                                malformed(format!("block {height} follows block {last}")).into()
                            );
                        }
                        if let (Some(before), Some(now)) = (*last_position, position) {
                            if now.index <= before.index || now.term < before.term {
                                return Err(malformed(format!(
                                    "block {height}'s Raft position ({}, term {}) does not follow \
                                     the one before ({}, term {})",
                                    now.index, now.term, before.index, before.term
                                ))
                                .into());
                            }
                        }
                        if position.is_some() {
                            *last_position = position;
                        }
                        let block =
                            crate::storage::parse_block_record(&record).map_err(|error| {
                                malformed(format!("block {height} does not decode: {error}"))
                            })?;
                        *last = height;
                        return Ok(Some(SourceBlock {
                            height,
                            position,
                            block,
                        }));
                    }
                    Some(ArchiveRecord::End {
                        height,
                        head_hash,
                        node_ids,
                    }) => {
                        if height != *last {
                            return Err(malformed(format!(
                                "the end record names height {height}, the last block is {last}"
                            ))
                            .into());
                        }
                        *end = Some((height, head_hash, node_ids));
                    }
                }
            },
        }
    }

    /// Every configuration change at or before `index`.
    pub fn conf_history_upto(&self, index: u64) -> Result<Vec<(u64, ConfState)>, StorageError> {
        let history = match self {
            Self::Folder { reader, .. } => reader.conf_history()?,
            Self::Archive { conf_history, .. } => conf_history.clone(),
        };
        Ok(history.into_iter().filter(|(at, _)| *at <= index).collect())
    }

    /// Progress: (done, all) in blocks for a folder, in bytes for an archive.
    pub fn progress(&self) -> (u64, u64) {
        match self {
            Self::Folder { next, head, .. } => (next.saturating_sub(1), *head),
            Self::Archive { reader, .. } => reader.progress(),
        }
    }
}
