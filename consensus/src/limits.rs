//! Every bound of the consensus crate, kept together with the relations between them: Raft's
//! message and memory limits, the leader's block queue, the proposal window, the replica
//! engine's timers, and the sizes of what peers send each other.

use tpw_contracts::limits::{BLOCK_SIZE_MAX, BLOCK_TRANSACTIONS_MAX};

/// Bytes of entries in one append message.
pub const MESSAGE_SIZE_MAX: u64 = 16 * 1024 * 1024;
/// Append messages in flight to one follower.
pub const INFLIGHT_MESSAGES_MAX: usize = 64;
/// Bytes of committed entries handed out by one ready.
pub const COMMITTED_SIZE_PER_READY_MAX: u64 = 64 * 1024 * 1024;
/// Bytes of proposed but uncommitted entries the leader accepts.
pub const UNCOMMITTED_SIZE_MAX: u64 = 256 * 1024 * 1024;

/// Envelopes waiting for a block.
pub const QUEUE_TRANSACTIONS_MAX: usize = 131_072;
/// Bytes waiting for a block.
pub const QUEUE_SIZE_MAX: usize = 128 * 1024 * 1024;

/// Default proposal window: blocks the leader has proposed and not yet applied before it cuts
/// the next. One lets the next block fill while the current one commits (group commit);
/// measured on the 2-core machine with 3 voters and an observer, one gave p99 48.7 ms at 8,500
/// transfers/s where four gave 207.5 ms (docs/benchmarks.md). Links with long round trips gain
/// from more. The node and the simulator both take it from here.
pub const PROPOSALS_IN_FLIGHT_DEFAULT: u64 = 1;
/// Largest proposal window.
pub const PROPOSALS_IN_FLIGHT_MAX: u64 = 64;
/// Default milliseconds per Raft tick.
pub const TICK_MS_DEFAULT: u64 = 100;
/// Default ticks without a leader before an election.
pub const ELECTION_TICKS_DEFAULT: usize = 10;
/// Default ticks between leader heartbeats.
pub const HEARTBEAT_TICKS_DEFAULT: usize = 2;

/// A learner is promoted to voter once its log is at most this many entries behind the
/// leader's commit index.
pub const PROMOTION_LAG_MAX: u64 = 64;
/// How long a re-keyed leader leads before it checks that every member replicated its key
/// rotation: long enough for every reachable member to have answered its appends.
pub const REKEY_HANDOVER_AFTER_MS: u64 = 2_000;
/// At most one such hand-over per this long: a member that is down (which cannot be told
/// from one refusing the new key) costs at most one leadership transfer a minute, and two
/// re-keyed voters cannot pass leadership back and forth.
pub const REKEY_HANDOVER_BACKOFF_MS: u64 = 60_000;
/// How long a leader waits for word on a snapshot message before letting Raft send another.
pub const SNAPSHOT_STATUS_TIMEOUT_MS: u64 = 30_000;

/// Bytes of one `/tpw/snapshot/1` frame: a chunk plus one block of the largest size (the node
/// asserts that its chunk sizes fit).
pub const SNAPSHOT_FRAME_SIZE_MAX: usize = 24 * 1024 * 1024;
/// Bytes of a state record's key in a snapshot chunk.
pub const SNAPSHOT_KEY_SIZE_MAX: usize = 1024;
/// Bytes of a state record's value in a snapshot chunk.
pub const SNAPSHOT_VALUE_SIZE_MAX: usize = 1024 * 1024;
/// Bytes of an "unavailable" message or a forwarding refusal's text.
pub const PEER_TEXT_SIZE_MAX: usize = 4096;
/// Records reserved for ahead of decoding them: a count is only a claim until the bytes arrive.
pub const RECORDS_RESERVED_MAX: usize = 65_536;
/// Block records reserved for ahead of decoding them.
pub const BLOCKS_RESERVED_MAX: usize = 1024;

const _: () = assert!(QUEUE_TRANSACTIONS_MAX >= BLOCK_TRANSACTIONS_MAX);
const _: () = assert!(QUEUE_SIZE_MAX >= BLOCK_SIZE_MAX);
const _: () = assert!(MESSAGE_SIZE_MAX as usize >= BLOCK_SIZE_MAX);
const _: () = assert!(UNCOMMITTED_SIZE_MAX >= MESSAGE_SIZE_MAX);
const _: () = assert!(SNAPSHOT_FRAME_SIZE_MAX >= 2 * BLOCK_SIZE_MAX);
const _: () = assert!(PROPOSALS_IN_FLIGHT_DEFAULT >= 1);
const _: () = assert!(PROPOSALS_IN_FLIGHT_DEFAULT <= PROPOSALS_IN_FLIGHT_MAX);
const _: () = assert!(HEARTBEAT_TICKS_DEFAULT < ELECTION_TICKS_DEFAULT);
const _: () = assert!(REKEY_HANDOVER_AFTER_MS < REKEY_HANDOVER_BACKOFF_MS);

/// Default of the most a leader without a ledger-time estimate (it applied no block since it
/// started) steps its first stamp from the head's time toward its wall clock: one minute.
pub const CLOCK_FIRST_STEP_MAX_MS_DEFAULT: u64 = 60_000;
