//! The `/tpw/snapshot/1` messages, and the descriptor a Raft snapshot message carries.
//!
//! Request: tag 1 records (u64 snapshot index, bool has-after, then the key), tag 2 blocks
//! (u64 top height, u32 count), tag 3 nodes. Response: tag 1 records (bool done, u32 count,
//! key/value pairs), tag 2 blocks (u32 count, block records from the top down), tag 3 gone
//! (the snapshot is no longer kept), tag 4 unavailable (message), tag 5 nodes (u64 head height, u32
//! count, node records in their ledger encoding).

use tpw_contracts::codec::{DecodeError, Reader, Writer};
use tpw_contracts::governance::{NodeRecord, NODES_MAX};
use tpw_contracts::model::Hash;

pub use crate::limits::SNAPSHOT_FRAME_SIZE_MAX;
use crate::limits::{
    BLOCKS_RESERVED_MAX, PEER_TEXT_SIZE_MAX as MESSAGE_SIZE_MAX, RECORDS_RESERVED_MAX,
    SNAPSHOT_KEY_SIZE_MAX as KEY_SIZE_MAX, SNAPSHOT_VALUE_SIZE_MAX as VALUE_SIZE_MAX,
};
/// Format version of the snapshot descriptor.
const DESCRIPTOR_VERSION: u8 = 1;

/// State records in key order: (key, value without the storage seal).
pub type RecordChunk = Vec<(Vec<u8>, Vec<u8>)>;

/// What a node asks a peer for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotRequest {
    /// State records of the snapshot at this Raft index, after a key.
    Records {
        /// The snapshot's Raft index.
        index: u64,
        /// Continue after this key (from the first record when absent).
        after: Option<Vec<u8>>,
    },
    /// Block records from `top` down.
    Blocks {
        /// The highest height wanted.
        top: u64,
        /// How many at most.
        count_max: u32,
    },
    /// The node set the peer's ledger records (a node whose ledger is behind learns from a
    /// peer it admits which keys the current members present).
    Nodes,
}

/// A peer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotResponse {
    /// A chunk of records in key order.
    Records {
        /// The records.
        records: RecordChunk,
        /// Whether they are the last.
        done: bool,
    },
    /// Block records from the requested top down, as many as the peer has in a row.
    Blocks(Vec<Vec<u8>>),
    /// The peer's node records, from its ledger at `height`.
    Nodes {
        /// The peer's head height.
        height: u64,
        /// Its node records.
        records: Vec<NodeRecord>,
    },
    /// The snapshot is no longer kept; wait for a newer one.
    Gone,
    /// The peer cannot serve now.
    Unavailable(String),
}

impl SnapshotRequest {
    /// Encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(64);
        match self {
            Self::Records { index, after } => {
                writer.u8(1);
                writer.u64(*index);
                writer.u8(u8::from(after.is_some()));
                writer.bytes(after.as_deref().unwrap_or_default());
            }
            Self::Nodes => writer.u8(3),
            Self::Blocks { top, count_max } => {
                writer.u8(2);
                writer.u64(*top);
                writer.u32(*count_max);
            }
        }
        writer.finish()
    }

    /// Decodes untrusted bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let request = match reader.u8("request.tag")? {
            1 => {
                let index = reader.u64("request.index")?;
                let has_after = reader.bool("request.has_after")?;
                let key = reader.bytes("request.after", KEY_SIZE_MAX)?;
                Self::Records {
                    index,
                    after: has_after.then(|| key.to_vec()),
                }
            }
            2 => Self::Blocks {
                top: reader.u64("request.top")?,
                count_max: reader.u32("request.count_max")?,
            },
            3 => Self::Nodes,
            tag => {
                return Err(DecodeError::InvalidValue {
                    field: "request.tag",
                    value: tag.into(),
                })
            }
        };
        reader.finish()?;
        Ok(request)
    }
}

impl SnapshotResponse {
    /// Encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(1024);
        match self {
            Self::Records { records, done } => {
                writer.u8(1);
                writer.u8(u8::from(*done));
                writer.u32(records.len() as u32);
                for (key, value) in records {
                    writer.bytes(key);
                    writer.bytes(value);
                }
            }
            Self::Blocks(blocks) => {
                writer.u8(2);
                writer.u32(blocks.len() as u32);
                for block in blocks {
                    writer.bytes(block);
                }
            }
            Self::Gone => writer.u8(3),
            Self::Nodes { height, records } => {
                writer.u8(5);
                writer.u64(*height);
                writer.u32(records.len() as u32);
                for record in records {
                    record.encode(&mut writer);
                }
            }
            Self::Unavailable(message) => {
                writer.u8(4);
                writer.string(message);
            }
        }
        writer.finish()
    }

    /// Decodes untrusted bytes (the frame size already bounds the whole).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let response = match reader.u8("response.tag")? {
            1 => {
                let done = reader.bool("response.done")?;
                let count = reader.u32("response.count")? as usize;
                let mut records = Vec::with_capacity(count.min(RECORDS_RESERVED_MAX));
                for _ in 0..count {
                    let key = reader.bytes("response.key", KEY_SIZE_MAX)?.to_vec();
                    let value = reader.bytes("response.value", VALUE_SIZE_MAX)?.to_vec();
                    records.push((key, value));
                }
                Self::Records { records, done }
            }
            2 => {
                let count = reader.u32("response.count")? as usize;
                let mut blocks = Vec::with_capacity(count.min(BLOCKS_RESERVED_MAX));
                for _ in 0..count {
                    blocks.push(
                        reader
                            .bytes("response.block", SNAPSHOT_FRAME_SIZE_MAX)?
                            .to_vec(),
                    );
                }
                Self::Blocks(blocks)
            }
            3 => Self::Gone,
            4 => Self::Unavailable(reader.string("response.message", MESSAGE_SIZE_MAX)?),
            5 => {
                let height = reader.u64("response.height")?;
                let count = reader.u32("response.count")? as usize;
                if count > NODES_MAX {
                    return Err(DecodeError::TooLong {
                        field: "response.nodes",
                        length: count,
                        limit: NODES_MAX,
                    });
                }
                let mut records = Vec::with_capacity(count);
                for _ in 0..count {
                    records.push(NodeRecord::decode(&mut reader)?);
                }
                Self::Nodes { height, records }
            }
            tag => {
                return Err(DecodeError::InvalidValue {
                    field: "response.tag",
                    value: tag.into(),
                })
            }
        };
        reader.finish()?;
        Ok(response)
    }
}

/// What a Raft snapshot message carries: which chain point the state belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDescriptor {
    /// The network.
    pub network_id: Hash,
    /// Height of the head block the state belongs to.
    pub height: u64,
    /// That block's header hash.
    pub head_hash: Hash,
    /// Its state root.
    pub state_root: Hash,
    /// The last Raft index applied to the state.
    pub applied_index: u64,
}

impl SnapshotDescriptor {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(120);
        writer.u8(DESCRIPTOR_VERSION);
        writer.fixed(&self.network_id);
        writer.u64(self.height);
        writer.fixed(&self.head_hash);
        writer.fixed(&self.state_root);
        writer.u64(self.applied_index);
        writer.finish()
    }

    /// Decodes untrusted bytes from a peer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8("snapshot.version")?;
        if version != DESCRIPTOR_VERSION {
            return Err(DecodeError::InvalidValue {
                field: "snapshot.version",
                value: version.into(),
            });
        }
        let descriptor = Self {
            network_id: reader.array("snapshot.network_id")?,
            height: reader.u64("snapshot.height")?,
            head_hash: reader.array("snapshot.head_hash")?,
            state_root: reader.array("snapshot.state_root")?,
            applied_index: reader.u64("snapshot.applied_index")?,
        };
        reader.finish()?;
        Ok(descriptor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        // Proves every message kind survives encoding and that truncated or unknown input
        // is an error, never a panic.
        let requests = [
            SnapshotRequest::Records {
                index: 7,
                after: None,
            },
            SnapshotRequest::Records {
                index: 7,
                after: Some(b"T123".to_vec()),
            },
            SnapshotRequest::Blocks {
                top: 9,
                count_max: 3,
            },
        ];
        for request in requests {
            let bytes = request.to_bytes();
            assert_eq!(SnapshotRequest::from_bytes(&bytes).unwrap(), request);
            assert!(SnapshotRequest::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        }
        let responses = [
            SnapshotResponse::Records {
                records: vec![(b"A1".to_vec(), b"x".to_vec())],
                done: true,
            },
            SnapshotResponse::Blocks(vec![vec![1, 2, 3], vec![]]),
            SnapshotResponse::Gone,
            SnapshotResponse::Unavailable("busy".into()),
        ];
        for response in responses {
            let bytes = response.to_bytes();
            assert_eq!(SnapshotResponse::from_bytes(&bytes).unwrap(), response);
            assert!(SnapshotResponse::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        }
        assert!(SnapshotRequest::from_bytes(&[9]).is_err());
        assert!(SnapshotResponse::from_bytes(&[0xff, 0, 0]).is_err());
    }

    #[test]
    fn a_descriptor_round_trips_and_other_versions_are_refused() {
        // Proves the descriptor decodes to what was encoded, and that a cut, extended or
        // differently versioned descriptor is an error.
        let descriptor = SnapshotDescriptor {
            network_id: [1; 32],
            height: 2,
            head_hash: [3; 32],
            state_root: [4; 32],
            applied_index: 5,
        };
        let bytes = descriptor.to_bytes();
        assert_eq!(SnapshotDescriptor::from_bytes(&bytes).unwrap(), descriptor);
        assert!(SnapshotDescriptor::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(SnapshotDescriptor::from_bytes(&longer).is_err());
        let mut versioned = bytes;
        versioned[0] = 2;
        assert!(SnapshotDescriptor::from_bytes(&versioned).is_err());
    }
}
