//! What nodes send each other, as pure codecs: the admission check of a peer's Raft message
//! (`/tpw/raft/1`), forwarded submissions (`/tpw/forward/1`) and the snapshot protocol
//! (`/tpw/snapshot/1`, and the descriptor a Raft snapshot message carries).
//!
//! Every decoder here reads bytes from another machine: it refuses anything malformed with an
//! error and never panics, whatever the input (the fuzz targets in fuzz/ hold it to that). The
//! node owns the transport (framing, size limits per frame, who may connect); this module owns
//! the bytes inside the frames.

pub mod forward;
pub mod raft;
pub mod snapshot;

pub use forward::{ForwardRefusal, ForwardReply, ForwardRequestError};
pub use raft::{admit_raft_message, peer_may_send, RaftAdmissionError};
pub use snapshot::{RecordChunk, SnapshotDescriptor, SnapshotRequest, SnapshotResponse};
