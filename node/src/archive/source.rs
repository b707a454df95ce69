//! Reading blocks back in height order (`tpw verify`, `tpw restore`) from a data or backup
//! folder's database or from an archive, whose order, Raft positions and end record are
//! checked on the way.

use super::{ArchiveError, ArchiveReader, ArchiveRecord};
use crate::storage::{LedgerReader, LogPosition, StorageError, StoredBlock};
use std::path::Path;
use tpw_consensus::raft_types::ConfState;
use tpw_contracts::model::Hash;

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
            Self::Folder { reader, next, head } => next_folder_block(reader, next, *head),
            Self::Archive {
                reader,
                conf_history,
                end,
                last,
                last_position,
            } => {
                let mut state = ArchiveState {
                    conf_history,
                    end,
                    last,
                    last_position,
                };
                state.next_block(reader)
            }
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

/// The next block of a folder, or `None` above its head.
fn next_folder_block(
    reader: &LedgerReader,
    next: &mut u64,
    head: u64,
) -> Result<Option<SourceBlock>, SourceError> {
    if *next > head {
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

/// What an archive source has read so far, which each next record must follow.
struct ArchiveState<'a> {
    conf_history: &'a mut Vec<(u64, ConfState)>,
    end: &'a mut Option<(u64, Hash, Vec<u64>)>,
    last: &'a mut u64,
    last_position: &'a mut Option<LogPosition>,
}

impl ArchiveState<'_> {
    /// Reads records up to the next block (or the end), checking each by its kind.
    fn next_block(
        &mut self,
        reader: &mut ArchiveReader,
    ) -> Result<Option<SourceBlock>, SourceError> {
        loop {
            let offset = reader.offset();
            let path = reader.path.clone();
            let malformed = |what: String| ArchiveError::Malformed {
                path: path.clone(),
                offset,
                what,
            };
            match reader.next_record()? {
                None if self.end.is_some() => return Ok(None),
                None => {
                    let last = *self.last;
                    return Err(malformed(format!(
                        "the archive ends after height {last} without its end record (an \
                         interrupted export: run it again)"
                    ))
                    .into());
                }
                Some(ArchiveRecord::Conf { index, conf_state }) => {
                    self.conf(index, conf_state).map_err(malformed)?
                }
                Some(ArchiveRecord::Block {
                    height,
                    position,
                    record,
                }) => {
                    let block = self.block(height, position, &record).map_err(malformed)?;
                    return Ok(Some(block));
                }
                Some(ArchiveRecord::End {
                    height,
                    head_hash,
                    node_ids,
                }) => self.end(height, head_hash, node_ids).map_err(malformed)?,
            }
        }
    }

    /// A configuration record: its index must follow the last one's.
    fn conf(&mut self, index: u64, conf_state: ConfState) -> Result<(), String> {
        if self
            .conf_history
            .last()
            .is_some_and(|(last, _)| *last >= index)
        {
            return Err(format!("configuration index {index} out of order"));
        }
        self.conf_history.push((index, conf_state));
        Ok(())
    }

    /// A block record: the next height, at a Raft position after the last one's, decoding.
    fn block(
        &mut self,
        height: u64,
        position: Option<LogPosition>,
        record: &[u8],
    ) -> Result<SourceBlock, String> {
        let last = *self.last;
        if height != last + 1 {
            return Err(format!("block {height} follows block {last}"));
        }
        if let (Some(before), Some(now)) = (*self.last_position, position) {
            if now.index <= before.index || now.term < before.term {
                return Err(format!(
                    "block {height}'s Raft position ({}, term {}) does not follow \
                     the one before ({}, term {})",
                    now.index, now.term, before.index, before.term
                ));
            }
        }
        if position.is_some() {
            *self.last_position = position;
        }
        let block = crate::storage::parse_block_record(record)
            .map_err(|error| format!("block {height} does not decode: {error}"))?;
        *self.last = height;
        Ok(SourceBlock {
            height,
            position,
            block,
        })
    }

    /// The end record: it must name the last block's height.
    fn end(&mut self, height: u64, head_hash: Hash, node_ids: Vec<u64>) -> Result<(), String> {
        let last = *self.last;
        if height != last {
            return Err(format!(
                "the end record names height {height}, the last block is {last}"
            ));
        }
        *self.end = Some((height, head_hash, node_ids));
        Ok(())
    }
}
