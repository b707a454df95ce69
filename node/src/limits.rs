//! The node's bounds, kept together: request sizes, queues, waits.

pub use tpw_api::limits::{
    BODY_SIZE_MAX, SUBMIT_TRANSACTIONS_MAX, WAIT_TIMEOUT_MS_DEFAULT, WAIT_TIMEOUT_MS_MAX,
};
/// How far a signed request's timestamp may be from the node's clock.
pub const REQUEST_WINDOW_MS: u64 = 30_000;
/// Signed requests remembered inside the window (replay protection) before new ones are told
/// to retry.
pub const REPLAY_GUARD_MAX: usize = 1_000_000;
/// Commands queued from the API to the raft loop.
pub const COMMANDS_MAX: usize = 4096;
/// Default for `blocks.proposals_in_flight_max`: the replica engine's (its reason is there).
pub use tpw_consensus::limits::PROPOSALS_IN_FLIGHT_DEFAULT;
/// Largest `blocks.proposals_in_flight_max`.
pub use tpw_consensus::limits::PROPOSALS_IN_FLIGHT_MAX;
/// Webhook progress entries one proposal carries; the rest wait for the next.
pub const WEBHOOK_CHECKPOINT_ENTRIES_PER_PROPOSAL: usize = 256;
/// Webhook progress older than this is carried by an otherwise empty block when there is no
/// traffic.
pub const WEBHOOK_CHECKPOINT_AGE_MAX: std::time::Duration = std::time::Duration::from_secs(1);
/// Peer inputs (Raft messages) queued for the raft loop, apart from client commands.
pub const PEER_INPUTS_MAX: usize = 16_384;
/// Peer inputs the raft loop takes per iteration.
pub const PEER_INPUTS_PER_ITERATION_MAX: usize = 4096;
/// Commands the raft loop takes per iteration before it works on Raft again.
pub const COMMANDS_PER_ITERATION_MAX: usize = 1024;
/// Blocks listed by one recent-blocks request.
pub const RECENT_BLOCKS_MAX: u64 = 100;
/// Entries of each admission cache (signer keys, account assets) before it is reset.
pub const ADMISSION_CACHE_MAX: usize = 1_000_000;
/// How long a received transaction may stay unapplied before this node forgets it and lets a
/// resubmission be ordered again (covers a forwarded transaction that the leader lost).
pub const RECEIVED_AGE_MAX: std::time::Duration =
    std::time::Duration::from_secs(2 * WAIT_TIMEOUT_MS_MAX / 1000);
/// How often a node asks a peer for its node set (see `snapshot::nodes`).
pub const NODE_SET_ASK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// Clients waiting for one transaction's commit; more are told to poll.
pub const WAITERS_PER_TRANSACTION_MAX: usize = 16;
/// Commit waiters registered at once.
pub const WAITERS_MAX: usize = 1_000_000;
