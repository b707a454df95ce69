//! The node's bounds, kept together so that none is hard to find or easy to contradict: every
//! queue, batch, page, cache, frame, retry loop, timeout and interval of the node, grouped by
//! subsystem, with the relations between them asserted at compile time.

use std::time::Duration;

// API requests and reads.

pub use tpw_api::limits::{
    BODY_SIZE_MAX, SUBMIT_TRANSACTIONS_MAX, WAIT_TIMEOUT_MS_DEFAULT, WAIT_TIMEOUT_MS_MAX,
};
/// How far a signed request's timestamp may be from the node's clock.
pub const REQUEST_WINDOW_MS: u64 = 30_000;
/// Signed requests remembered inside the window (replay protection) before new ones are told
/// to retry.
pub const REPLAY_GUARD_MAX: usize = 1_000_000;
/// Blocks listed by one recent-blocks request.
pub const RECENT_BLOCKS_MAX: u64 = 100;
/// Entries of each admission cache (signer keys, account assets) before it is reset.
pub const ADMISSION_CACHE_MAX: usize = 1_000_000;
/// Submissions of at most this many transactions are admitted on the async worker itself
/// (about 40 microseconds of signature checking each); larger ones go to the blocking pool.
pub const ADMIT_INLINE_TRANSACTIONS_MAX: usize = 4;
/// Rate-limit buckets kept before idle ones (full again) are dropped.
pub const RATE_BUCKETS_MAX: usize = 100_000;
/// Shortest `api.request_timeout_ms`.
pub const API_REQUEST_TIMEOUT_MS_MIN: u64 = 1_000;
/// Longest `api.request_timeout_ms`.
pub const API_REQUEST_TIMEOUT_MS_MAX: u64 = 3_600_000;
/// Committed entries a node may have left to apply and still count as ready.
pub const READY_APPLY_LAG_MAX: u64 = 1_000;
/// Statement entries per page when the request names no limit.
pub const STATEMENT_PAGE_DEFAULT: usize = 100;
/// Statement entries per page at most.
pub const STATEMENT_PAGE_MAX: usize = 1000;
/// Statement entries read from storage per chunk while filtering by time.
pub const STATEMENT_CHUNK_ENTRIES: usize = 1000;
/// Dead letters listed per webhook endpoint.
pub const DEAD_LETTERS_LISTED_MAX: usize = 1000;
/// Most governance proposals one listing returns.
pub const PROPOSALS_PAGE_MAX: usize = 100;
/// Events buffered per event stream before the producer waits for the client.
pub const EVENT_STREAM_BUFFER_MAX: usize = 256;
/// Longest a client may take to send a request's headers; the connection is closed after.
/// The wait for the next request on a kept-alive connection counts too, so it is also the
/// longest an idle connection stays open.
pub const HTTP_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest read buffer of a connection, and so the largest request line and headers a
/// client may send (431 past it); bodies stream through it in pieces.
pub const HTTP_READ_BUFFER_MAX: usize = 64 * 1024;
/// Pause after a failed accept that is not the peer's doing (out of file descriptors, say).
pub const HTTP_ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);
/// After the server ends a connection (a refused oversized body, say) it closes its sending
/// side and keeps reading and discarding what the client still sends, so the client reads the
/// answer instead of a reset: at most this long in all...
pub const HTTP_LINGER_TIME: Duration = Duration::from_secs(5);
/// ...at most this long between two reads...
pub const HTTP_LINGER_IDLE: Duration = Duration::from_secs(1);
/// ...and at most this many bytes (a whole refused body and a little more).
pub const HTTP_LINGER_BYTES_MAX: u64 = BODY_SIZE_MAX as u64 + 64 * 1024;
/// How often a TLS listener checks its certificate, key, client CA and CRL files for a
/// change, by default, and the bounds of `reload_interval_ms`.
pub const TLS_RELOAD_INTERVAL_MS_DEFAULT: u64 = 1_000;
/// Shortest `reload_interval_ms`.
pub const TLS_RELOAD_INTERVAL_MS_MIN: u64 = 100;
/// Longest `reload_interval_ms`.
pub const TLS_RELOAD_INTERVAL_MS_MAX: u64 = 3_600_000;
/// Longest a client may take to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = HTTP_HEADER_READ_TIMEOUT;
/// Blocks whose derived events are kept for the streams that read them.
pub const EVENT_CACHED_BLOCKS_MAX: usize = 4096;
/// How often an idle event stream checks whether the node is stopping.
pub const EVENT_STREAM_STOP_CHECK: Duration = Duration::from_millis(250);
/// How long an event stream waits for a block this node does not hold yet (below a snapshot).
pub const EVENT_STREAM_MISSING_BLOCK_RETRY: Duration = Duration::from_millis(500);
/// Clients waiting for one transaction's commit; more are told to poll.
pub const WAITERS_PER_TRANSACTION_MAX: usize = 16;
/// Commit waiters registered at once.
pub const WAITERS_MAX: usize = 1_000_000;

const _: () = assert!(STATEMENT_PAGE_DEFAULT <= STATEMENT_PAGE_MAX);
const _: () = assert!(API_REQUEST_TIMEOUT_MS_MIN <= API_REQUEST_TIMEOUT_MS_MAX);
const _: () = assert!(WAITERS_PER_TRANSACTION_MAX <= WAITERS_MAX);
// A submission admitted inline is one the API accepts at all.
const _: () = assert!(ADMIT_INLINE_TRANSACTIONS_MAX <= SUBMIT_TRANSACTIONS_MAX);

// Starting and stopping.

/// How long a stopping node waits for each of its servers and tasks, and for requests to let
/// go of the database.
pub const NODE_STOP_WAIT: Duration = Duration::from_secs(5);
/// How often a stopping node looks whether requests let go of the database.
pub const NODE_STOP_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often a serving node looks whether its raft loop stopped or data corruption was found.
pub const NODE_STOP_CHECK: Duration = Duration::from_millis(200);
/// How often `tpw` commands that take long (restore, verify, export) report their progress
/// off a terminal.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

const _: () = assert!(NODE_STOP_POLL_INTERVAL.as_millis() < NODE_STOP_WAIT.as_millis());

// The admin interface.

/// Bytes of an admin request body.
pub const ADMIN_BODY_SIZE_MAX: usize = 64 * 1024;
/// Audit records one admin request reads when it names no limit.
pub const AUDIT_PAGE_DEFAULT: usize = 100;
/// Most audit records one admin request reads.
pub const AUDIT_PAGE_MAX: usize = 1000;
/// How long a step-down waits for the leadership to move.
pub const STEP_DOWN_WAIT: Duration = Duration::from_secs(5);
/// How often a step-down looks whether another node leads.
pub const STEP_DOWN_POLL_INTERVAL: Duration = Duration::from_millis(10);

const _: () = assert!(ADMIN_BODY_SIZE_MAX <= BODY_SIZE_MAX);
const _: () = assert!(AUDIT_PAGE_DEFAULT <= AUDIT_PAGE_MAX);
const _: () = assert!(STEP_DOWN_POLL_INTERVAL.as_millis() < STEP_DOWN_WAIT.as_millis());

// The raft loop.

/// Commands queued from the API to the raft loop.
pub const COMMANDS_MAX: usize = 4096;
/// Commands the raft loop takes per iteration before it works on Raft again.
pub const COMMANDS_PER_ITERATION_MAX: usize = 1024;
/// Peer inputs (Raft messages) queued for the raft loop, apart from client commands.
pub const PEER_INPUTS_MAX: usize = 16_384;
/// Peer inputs the raft loop takes per iteration.
pub const PEER_INPUTS_PER_ITERATION_MAX: usize = 4096;
/// Default for `blocks.proposals_in_flight_max`: the replica engine's (its reason is there).
pub use tpw_consensus::limits::PROPOSALS_IN_FLIGHT_DEFAULT;
/// Largest `blocks.proposals_in_flight_max`.
pub use tpw_consensus::limits::PROPOSALS_IN_FLIGHT_MAX;
/// Webhook progress entries one proposal carries; the rest wait for the next.
pub const WEBHOOK_CHECKPOINT_ENTRIES_PER_PROPOSAL: usize = 256;
/// Webhook progress older than this is carried by an otherwise empty block when there is no
/// traffic.
pub const WEBHOOK_CHECKPOINT_AGE_MAX: Duration = Duration::from_secs(1);
/// How long a received transaction may stay unapplied before this node forgets it and lets a
/// resubmission be ordered again (covers a forwarded transaction that the leader lost).
pub const RECEIVED_AGE_MAX: Duration = Duration::from_secs(2 * WAIT_TIMEOUT_MS_MAX / 1000);
/// How often a node asks a peer for its node set (see `snapshot::nodes`).
pub const NODE_SET_ASK_INTERVAL: Duration = Duration::from_secs(5);
/// Fewest Raft entries kept behind the applied index (a follower a few blocks behind should
/// not need a snapshot).
pub const LOG_RETENTION_ENTRIES_MIN: u64 = 16;
/// Most Raft entries kept behind the applied index.
pub const LOG_RETENTION_ENTRIES_MAX: u64 = 100_000_000;
/// Longest `raft.tick_ms`.
pub const TICK_MS_MAX: u64 = 10_000;

const _: () = assert!(COMMANDS_PER_ITERATION_MAX <= COMMANDS_MAX);
const _: () = assert!(PEER_INPUTS_PER_ITERATION_MAX <= PEER_INPUTS_MAX);
const _: () = assert!(LOG_RETENTION_ENTRIES_MIN <= LOG_RETENTION_ENTRIES_MAX);
// A client still waiting for its commit never sees its transaction forgotten.
const _: () = assert!(RECEIVED_AGE_MAX.as_millis() > WAIT_TIMEOUT_MS_MAX as u128);

// The peer network.

/// Bytes of one Raft message frame: the driver's append limit plus headroom.
pub const RAFT_FRAME_SIZE_MAX: usize = 2 * tpw_consensus::limits::MESSAGE_SIZE_MAX as usize;
/// Raft message batches waiting for the network task; more are dropped (Raft resends).
pub const OUTBOUND_BATCHES_MAX: usize = 1024;
/// Established connections per peer.
pub const CONNECTIONS_PER_PEER_MAX: u32 = 2;
/// Connections being negotiated at once, each way.
pub const PENDING_CONNECTIONS_MAX: u32 = 16;
/// Handshakes in progress from one remote IP address: silent connections from one address
/// cannot hold every pending slot.
pub const PENDING_CONNECTIONS_PER_ADDRESS_MAX: u32 = 4;
/// Longest a peer connection's TCP, Noise and Yamux set-up may take.
pub const PEER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one log line per this interval about refused incoming peer connections.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How long a Raft message (or a forwarded submission) may wait for its acknowledgement.
pub const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a snapshot chunk may take.
pub const SNAPSHOT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes of one forwarded submission: as much as one API request.
pub const FORWARD_FRAME_SIZE_MAX: usize = BODY_SIZE_MAX;
/// Forwarded submissions answered but not yet written back.
pub const FORWARD_RESPONSES_MAX: usize = 1024;
/// Forwarded submissions being admitted at once; more are answered "overloaded".
pub const FORWARDS_IN_FLIGHT_MAX: usize = 64;
/// How long an idle peer connection stays open (Raft's heartbeats keep a live one busy).
pub const PEER_IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);

const _: () = assert!(RAFT_FRAME_SIZE_MAX > tpw_consensus::limits::MESSAGE_SIZE_MAX as usize);
// One address leaves most pending slots to the others.
const _: () = assert!(PENDING_CONNECTIONS_PER_ADDRESS_MAX * 2 < PENDING_CONNECTIONS_MAX);
const _: () = assert!(PEER_HANDSHAKE_TIMEOUT.as_millis() < PEER_REQUEST_TIMEOUT.as_millis());
const _: () = assert!(FORWARD_FRAME_SIZE_MAX >= BODY_SIZE_MAX);
// Established connections in all fit libp2p's u32 limit for the largest node set.
const _: () = assert!(
    CONNECTIONS_PER_PEER_MAX as u64 * tpw_contracts::governance::NODES_MAX as u64
        <= u32::MAX as u64
);
// A snapshot chunk is larger than a Raft message, so it may take longer.
const _: () = assert!(SNAPSHOT_REQUEST_TIMEOUT.as_millis() >= PEER_REQUEST_TIMEOUT.as_millis());

// Snapshots and backfill.

/// How long the leader keeps its latest snapshot usable by holding log compaction at it, so a
/// peer still fetching it is not overtaken by compaction.
pub const SNAPSHOT_OFFER_HOLD: Duration = Duration::from_secs(120);
/// Tries of one snapshot request while the peer answers "unavailable" (busy).
pub const SNAPSHOT_REQUEST_TRIES_MAX: u32 = 5;
/// Bytes of state records per snapshot chunk.
pub const SNAPSHOT_RECORDS_CHUNK_SIZE: usize = 4 * 1024 * 1024;
/// Bytes of block records per backfill response (at least one block is always sent).
pub const BACKFILL_BLOCKS_CHUNK_SIZE: usize = 4 * 1024 * 1024;
/// Block records per backfill response.
pub const BACKFILL_BLOCKS_PER_RESPONSE_MAX: u32 = 1024;
/// Checkpoints kept for peers still fetching from them.
pub const CHECKPOINTS_KEPT_MAX: usize = 2;
/// Snapshot requests served at once; more are answered "unavailable".
pub const SNAPSHOT_SERVES_IN_FLIGHT_MAX: usize = 4;
/// Snapshot messages waiting for the receiver; more are dropped (the leader resends).
pub const SNAPSHOT_MESSAGES_MAX: usize = 16;
/// How often an idle snapshot receiver checks whether the node is stopping.
pub const SNAPSHOT_RECEIVER_STOP_CHECK: Duration = Duration::from_millis(500);
/// How often the snapshot maker, waiting for Raft to want a snapshot, checks whether the
/// node is stopping.
pub const SNAPSHOT_MAKER_STOP_CHECK: Duration = Duration::from_millis(500);
/// The pause before asking a busy peer for a snapshot chunk again grows by this much with
/// each try.
pub const SNAPSHOT_RETRY_PAUSE_STEP: Duration = Duration::from_millis(200);
/// Shortest time between two checkpoints, so a peer that keeps failing cannot make the node
/// checkpoint continuously.
pub const CHECKPOINT_INTERVAL_MIN: Duration = Duration::from_secs(1);
/// How long backfill waits before trying the peers again after all of them failed.
pub const BACKFILL_RETRY_PAUSE: Duration = Duration::from_secs(2);
/// How often an idle backfill looks for gaps (and whether the node stops) without being woken.
pub const BACKFILL_IDLE_CHECK: Duration = Duration::from_secs(1);
/// Block gaps recorded at once (one per snapshot installed before backfill finished); beyond
/// it the lowest two merge, and backfill fetches the blocks between them again (harmless).
pub const BLOCK_GAPS_MAX: usize = 1024;

// A chunk, with a block's worth of headroom on both sides, fits one snapshot frame.
const _: () = assert!(
    SNAPSHOT_RECORDS_CHUNK_SIZE + 2 * tpw_contracts::limits::BLOCK_SIZE_MAX
        <= tpw_consensus::wire::snapshot::SNAPSHOT_FRAME_SIZE_MAX
);
const _: () = assert!(
    BACKFILL_BLOCKS_CHUNK_SIZE + 2 * tpw_contracts::limits::BLOCK_SIZE_MAX
        <= tpw_consensus::wire::snapshot::SNAPSHOT_FRAME_SIZE_MAX
);
// A peer fetching a snapshot chunk by chunk is not overtaken by compaction within one chunk.
const _: () = assert!(SNAPSHOT_OFFER_HOLD.as_millis() > SNAPSHOT_REQUEST_TIMEOUT.as_millis());

// Storage, archives and the audit log.

/// Cached state records before the ledger store's cache is reset.
pub const STATE_CACHE_ENTRIES_MAX: usize = 1_000_000;
/// The largest record an archive may hold (a block record is far smaller).
pub const ARCHIVE_RECORD_SIZE_MAX: u32 = 256 << 20;
/// Audit entries queued for the writer before requests wait for it.
pub const AUDIT_QUEUE_MAX: usize = 4096;
/// Audit entries written in one batch.
pub const AUDIT_BATCH_MAX: usize = 512;
/// Bytes kept of an audit actor, action or target (longer text is cut at a character
/// boundary).
pub const AUDIT_TEXT_SIZE_MAX: usize = 512;
/// The audit log's head is logged every this many records.
pub const AUDIT_HEAD_LOG_INTERVAL_RECORDS: u64 = 10_000;

// Any block fits one archive record, with room for the record's own fields.
const _: () =
    assert!(ARCHIVE_RECORD_SIZE_MAX as usize >= 2 * tpw_contracts::limits::BLOCK_SIZE_MAX);
const _: () = assert!(AUDIT_BATCH_MAX <= AUDIT_QUEUE_MAX);
const _: () = assert!(WEBHOOK_TIMEOUT_MS_MIN <= WEBHOOK_TIMEOUT_MS_MAX);

// Webhook delivery and the client.

/// Dead letters one replay request delivers (ask again for more); live deliveries wait
/// meanwhile.
pub const WEBHOOK_REPLAY_BATCH_MAX: usize = 100;
/// How often the webhook deliverer looks for new endpoints and leadership changes.
pub const WEBHOOK_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Most `webhooks.max_attempts` of one delivery.
pub const WEBHOOK_ATTEMPTS_MAX: u32 = 100;
/// Shortest `webhooks.timeout_ms` of one delivery attempt.
pub const WEBHOOK_TIMEOUT_MS_MIN: u64 = 100;
/// Longest `webhooks.timeout_ms` of one delivery attempt.
pub const WEBHOOK_TIMEOUT_MS_MAX: u64 = 600_000;
/// Idle connections the webhook deliverer keeps open per receiver.
pub const WEBHOOK_IDLE_CONNECTIONS_MAX: usize = 4;
/// Times the client retries a rate-limited read before the 429 is returned.
pub const CLIENT_RATE_LIMIT_RETRIES_MAX: usize = 20;
/// The client's pause before retrying a rate-limited read.
pub const CLIENT_RATE_LIMIT_PAUSE: Duration = Duration::from_millis(500);
/// Longest the client waits for one request's answer.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest an event stream the client reads may stay open: a stream lives as long as its
/// reader reads it.
pub const CLIENT_EVENT_STREAM_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);
/// Idle connections the client keeps open per node.
pub const CLIENT_IDLE_CONNECTIONS_MAX: usize = 256;
/// How long the client keeps an idle connection for reuse: less than a node keeps it open, so
/// a request never goes out on a connection the node is closing.
pub const CLIENT_IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

// A submission waiting for its commit gets the node's answer before the client gives up.
const _: () = assert!(CLIENT_REQUEST_TIMEOUT.as_millis() > WAIT_TIMEOUT_MS_MAX as u128);

// Key files.

/// Argon2id memory cost of a new encrypted key file: 64 MiB (OWASP's recommended minimum is
/// 19 MiB).
pub const KDF_MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes of a new encrypted key file (OWASP's recommended minimum is 2).
pub const KDF_ITERATIONS: u32 = 3;
/// Argon2id lanes of a new encrypted key file.
pub const KDF_PARALLELISM: u32 = 1;
/// Most Argon2id lanes accepted on load.
pub const KDF_PARALLELISM_MAX: u32 = 16;
/// Largest Argon2id memory cost accepted on load, so a crafted file cannot demand unbounded
/// memory.
pub const KDF_MEMORY_KIB_MAX: u32 = 1024 * 1024;
/// Most Argon2id passes accepted on load, so a crafted file cannot demand unbounded time.
pub const KDF_ITERATIONS_MAX: u32 = 64;
/// Shortest passphrase accepted for a new encrypted key file.
pub const PASSPHRASE_LENGTH_MIN: usize = 12;

// The files this node writes are files it can load again.
const _: () = assert!(KDF_MEMORY_KIB <= KDF_MEMORY_KIB_MAX);
const _: () = assert!(KDF_ITERATIONS <= KDF_ITERATIONS_MAX);
const _: () = assert!(KDF_PARALLELISM <= KDF_PARALLELISM_MAX);

// The client lets an idle connection go before the node closes it.
const _: () =
    assert!(CLIENT_IDLE_CONNECTION_TIMEOUT.as_millis() < HTTP_HEADER_READ_TIMEOUT.as_millis());
