//! The testnet tools' bounds, kept together so that none is hard to find or easy to
//! contradict: the waits of the local networks, drills and benchmarks, and the timing and sizes
//! of the deterministic simulator, with the relations between them asserted at compile time.

use std::time::Duration;

// Local networks of `tpw run` processes.

/// Longest wait for a node to serve (and for a leader to be elected) after start.
pub const NODE_START_TIMEOUT: Duration = Duration::from_secs(60);
/// Lowest port handed to local networks.
pub const PORT_RANGE_LOW: u16 = 20_000;
/// Ports available above the low end: 20000..32000 lies below Linux's default ephemeral range
/// (32768-60999), from which the kernel picks the source ports of outgoing connections.
pub const PORT_RANGE_SIZE: u16 = 12_000;
/// Partners of a network made by `up`.
pub const UP_PARTNERS: usize = 12;
/// Partners needed for the demo's netting cycle.
pub const DEMO_NETTING_PARTICIPANTS_MIN: usize = 10;
/// Longest the demo waits for every node to reach the same head.
pub const DEMO_CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

// The ports handed out never collide with the kernel's choice of source ports.
const _: () = assert!(PORT_RANGE_LOW as u32 + PORT_RANGE_SIZE as u32 <= 32_768);
// The demo on a network made by `up` includes its netting cycle.
const _: () = assert!(UP_PARTNERS >= DEMO_NETTING_PARTICIPANTS_MIN);

// Drills and benchmarks.

/// Longest a drill waits for nodes to agree or catch up.
pub const DRILL_CONVERGE_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest a drill waits for a new commit after a kill.
pub const DRILL_FAILOVER_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest any one step of the disaster-recovery drill may take.
pub const DR_STEP_TIMEOUT: Duration = Duration::from_secs(600);
/// How long chaos clients may go on retrying their last submission after the faults end.
pub const CHAOS_FINISH_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest the event benchmark waits for every event and delivery once the load is in.
pub const EVENTBENCH_DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

// A new commit after a kill comes well before the nodes are given up on.
const _: () = assert!(DRILL_FAILOVER_TIMEOUT.as_millis() <= DRILL_CONVERGE_TIMEOUT.as_millis());

// The deterministic simulator (all times are simulated ms).

/// Simulated ms of the chaos phase.
pub const SIM_CHAOS_MS: u64 = 20_000;
/// Simulated ms clients go on submitting after the heal.
pub const SIM_CALM_MS: u64 = 5_000;
/// A new block must commit within this long after the heal.
pub const SIM_RECOVERY_MS_MAX: u64 = 10_000;
/// The drain must converge within this long.
pub const SIM_DRAIN_MS_MAX: u64 = 30_000;
/// Transactions per simulated block: small, so runs cut many blocks.
pub const SIM_BLOCK_TRANSACTIONS_MAX: usize = 16;
/// Raft entries a simulated node keeps behind its applied index: small, so lagging and new
/// nodes catch up through snapshots.
pub const SIM_LOG_RETENTION_ENTRIES: u64 = 48;
/// Blocks asked for in one simulated backfill request.
pub const SIM_BACKFILL_BLOCKS_MAX: u64 = 32;
/// Silence after which a simulated backfill request or snapshot fetch is given up.
pub const SIM_PEER_REQUEST_TIMEOUT_MS: u64 = 1_000;
/// How long an offered snapshot holds log compaction back, so a peer fetching it is not
/// overtaken (the node holds its offers longer; a simulated fetch is one round trip).
pub const SIM_OFFER_HOLD_MS: u64 = 5_000;
/// How often a simulated node asks a peer for its node set (as the node does).
pub const SIM_NODE_SET_ASK_INTERVAL_MS: u64 = 5_000;
/// Silence after which a simulated client submits the same envelope again.
pub const SIM_CLIENT_RETRY_AFTER_MS: u64 = 1_500;
/// Silence after which the simulated operators submit the same envelope again.
pub const SIM_OPERATOR_RETRY_AFTER_MS: u64 = 1_000;
/// How long a node set change may take before the simulated operators give up on it.
pub const SIM_CHANGE_TIMEOUT_MS: u64 = 20_000;
/// How often the simulated operators look at the node set.
pub const SIM_OPERATORS_CHECK_INTERVAL_MS: u64 = 100;
/// How long a node restarted by its operator (after a key rotation) stays down.
pub const SIM_OPERATOR_RESTART_MS: u64 = 300;
/// Longest a simulated wall-clock jump (an hour or a day, either way) lasts.
pub const SIM_CLOCK_JUMP_MAX_MS: u64 = 10_000;
/// The simulated nodes' `clock.first_step_max_ms`: how far a leader that applied no block since
/// it started steps its first stamp toward its (possibly jumped) clock.
pub const SIM_CLOCK_FIRST_STEP_MAX_MS: u64 = 500;
/// How far ahead of simulated real time a block may be stamped: the honest clocks' skew
/// (200 ms), the correction a leader saves up, 5% of the longest jump, and one first step of a
/// leader that applied nothing since it started.
pub const SIM_LEDGER_TIME_AHEAD_MAX_MS: u64 = 200
    + tpw_consensus::ledger_clock::CORRECTION_BURST_MS
    + SIM_CLOCK_JUMP_MAX_MS * tpw_consensus::ledger_clock::CORRECTION_PER_MILLE / 1_000
    + SIM_CLOCK_FIRST_STEP_MAX_MS;

// The simulated nodes run with settings a real node accepts, and as a real node does.
const _: () = assert!(SIM_BLOCK_TRANSACTIONS_MAX <= tpw_contracts::limits::BLOCK_TRANSACTIONS_MAX);
const _: () = assert!(
    tpw_node::limits::LOG_RETENTION_ENTRIES_MIN <= SIM_LOG_RETENTION_ENTRIES
        && SIM_LOG_RETENTION_ENTRIES <= tpw_node::limits::LOG_RETENTION_ENTRIES_MAX
);
const _: () =
    assert!(SIM_BACKFILL_BLOCKS_MAX <= tpw_node::limits::BACKFILL_BLOCKS_PER_RESPONSE_MAX as u64);
const _: () = assert!(
    SIM_NODE_SET_ASK_INTERVAL_MS as u128 == tpw_node::limits::NODE_SET_ASK_INTERVAL.as_millis()
);
// A snapshot fetch still within its timeout is not overtaken by compaction.
const _: () = assert!(SIM_OFFER_HOLD_MS > SIM_PEER_REQUEST_TIMEOUT_MS);
// The operators resend a change's envelope at least once before they give up on it.
const _: () = assert!(SIM_OPERATOR_RETRY_AFTER_MS < SIM_CHANGE_TIMEOUT_MS);
