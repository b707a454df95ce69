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

mod export;
mod source;

pub use export::{export, ExportReport};
pub use source::{BlockSource, SourceBlock, SourceError};

use crate::limits::ARCHIVE_RECORD_SIZE_MAX;
use crate::storage::{LogPosition, StorageError};
use std::io::{BufReader, Read};
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
            KIND_BLOCK if payload.len() > 25 => decode_block(&payload),
            KIND_CONF if payload.len() >= 9 => self.decode_conf(start, &payload)?,
            KIND_END if end_record_fits(&payload) => self.decode_end(start, &payload)?,
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

    /// A configuration record's payload: the Raft index it is in force from and the
    /// configuration.
    fn decode_conf(&self, start: u64, payload: &[u8]) -> Result<ArchiveRecord, ArchiveError> {
        Ok(ArchiveRecord::Conf {
            index: be_u64(&payload[1..]),
            conf_state: protobuf::Message::parse_from_bytes(&payload[9..]).map_err(|error| {
                self.malformed(
                    start,
                    format!("a configuration that does not decode: {error}"),
                )
            })?,
        })
    }

    /// The end record's payload, whose checksum must match every byte read before it.
    fn decode_end(&mut self, start: u64, payload: &[u8]) -> Result<ArchiveRecord, ArchiveError> {
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
        Ok(ArchiveRecord::End {
            height: be_u64(&payload[1..]),
            head_hash,
            node_ids: payload[45..payload.len() - 32]
                .chunks_exact(8)
                .map(be_u64)
                .collect(),
        })
    }
}

/// A block record's payload: height, Raft position (index 0 for none) and the block record.
fn decode_block(payload: &[u8]) -> ArchiveRecord {
    let (index, term) = (be_u64(&payload[9..]), be_u64(&payload[17..]));
    ArchiveRecord::Block {
        height: be_u64(&payload[1..]),
        position: (index > 0).then_some(LogPosition { index, term }),
        record: payload[25..].to_vec(),
    }
}

/// Whether an end record's payload is exactly as long as the node ids it counts make it.
fn end_record_fits(payload: &[u8]) -> bool {
    payload.len() >= 77
        && payload.len()
            == 77
                + 8 * u32::from_be_bytes([payload[41], payload[42], payload[43], payload[44]])
                    as usize
}
