//! The replica engine: raft-rs driven sans-IO ([`driver`]) and every decision a replica makes
//! above it ([`replica`]): the leader's block batching and proposal window, membership moved
//! toward the ledger's node set, key-rotation hand-over, compaction, snapshots and admission's
//! ledger pre-checks. The node and the simulator run this same engine and only execute its
//! effects.
//!
//! Nothing here does IO, reads a clock or spawns: time arrives as `now` arguments, peer
//! messages arrive as values, stores are traits the executor implements, and every other
//! effect leaves as a value carried out in order. [`wire`] holds the codecs of what nodes send
//! each other, so that everything decoded from a peer is pure and fuzzed apart from IO.

pub mod batcher;
pub mod driver;
pub mod entry;
pub mod ledger_clock;
pub mod limits;
pub mod log_store;
mod logger;
pub mod membership;
pub mod replica;
pub mod wire;

pub use batcher::{timer_block_due, Batcher, BlockLimits, QueueFull};
pub use driver::{persist_action, Action, Driver, DriverConfig, DriverError, ProposeError};
pub use entry::{classify, EntryKind};
pub use log_store::{LogStore, LogStoreError, MemLogStore};
pub use membership::{Membership, MembershipChange};
/// Raft's message and entry types, re-exported so the node and tools name one version.
pub use raft::prelude as raft_types;
/// raft-rs' storage trait and error types, for log store implementations.
pub use raft::{Error as RaftError, GetEntriesContext, RaftState, Storage, StorageError};
pub use replica::{
    Alarm, Effect, Executor, LedgerStoreError, LogPosition, MemLedger, Now, Replica, ReplicaConfig,
    ReplicaError, ReplicaLedger, ReplicaStatus, StepDownError, SubmitError,
};
