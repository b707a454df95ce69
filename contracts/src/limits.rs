//! Every bound of the ledger engine in one place, with the relations between them asserted.
//!
//! A limit keeps a malicious or buggy client (or leader) from making any node do unbounded work.

/// Format version carried by every envelope, proposal, header and state record.
pub const FORMAT_VERSION: u8 = 2;
/// Longest validity window of an envelope: its `valid_until_ms` is at most this far after the
/// time of the block that applies it. Bounds how long the ledger keeps an applied envelope's id.
pub const VALIDITY_WINDOW_MAX_MS: u64 = 3600 * 1000;
/// Replay records (ids of applied envelopes whose window has passed) removed by one block; at
/// least twice what a block adds, so the record never grows past what the window holds.
pub const REPLAYS_PRUNED_PER_BLOCK_MAX: usize = 2 * BLOCK_TRANSACTIONS_MAX;
/// Operations in one linked batch.
pub const LINKED_OPERATIONS_MAX: usize = 64;
/// Bytes of one transaction envelope.
pub const ENVELOPE_SIZE_MAX: usize = 16 * 1024;
/// Transactions in one block.
pub const BLOCK_TRANSACTIONS_MAX: usize = 8192;
/// Bytes of one block proposal (the Raft entry payload).
pub const BLOCK_SIZE_MAX: usize = 8 * 1024 * 1024;
/// Longest timeout of a pending transfer: 30 days.
pub const PENDING_TIMEOUT_MS_MAX: u64 = 30 * 24 * 3600 * 1000;
/// Pending transfers expired by one block; the rest expire in the following blocks.
pub const EXPIRIES_PER_BLOCK_MAX: usize = 4096;
/// Bytes of a participant, asset or network name.
pub const NAME_SIZE_MAX: usize = 64;
/// Keys registered to one participant.
pub const PARTICIPANT_KEYS_MAX: usize = 16;
/// Participants, assets, accounts and funding transfers in a genesis.
pub const GENESIS_ITEMS_MAX: usize = 100_000;
/// Digits after the decimal point of an asset.
pub const ASSET_SCALE_MAX: u8 = 18;
/// Named approvers of one escrow.
pub const ESCROW_APPROVERS_MAX: usize = 8;
/// Webhook endpoints one participant may register (endpoint numbers 0 to this minus 1).
pub const WEBHOOK_ENDPOINTS_MAX: u16 = 4;
/// Bytes of a webhook endpoint's URL.
pub const WEBHOOK_URL_SIZE_MAX: usize = 512;
/// Members of one netting cycle.
pub const CYCLE_MEMBERS_MAX: usize = 1024;

/// Cycles closed by their close time at the start of one block; the rest close in the next.
pub const CYCLE_CLOSES_PER_BLOCK_MAX: usize = 2;

// Blocks: the webhook progress a proposal carries, and the effects a block records.
/// Progress entries one proposal may carry.
pub const WEBHOOK_PROGRESS_MAX: usize = 4096;
/// Dead-lettered or revived deliveries one progress entry may carry.
pub const WEBHOOK_DEAD_MAX: usize = 256;
/// Bytes of a dead letter's last error.
pub const WEBHOOK_ERROR_SIZE_MAX: usize = 160;
/// Effects one block may record: every expiry it may run and every cycle it may close by time.
pub const EFFECTS_PER_BLOCK_MAX: usize = EXPIRIES_PER_BLOCK_MAX + CYCLE_CLOSES_PER_BLOCK_MAX;

// Inclusion proofs.
/// Headers one proof may carry: a proof of an older block ends at an earlier head.
pub const PROOF_HEADERS_MAX: usize = 10_000;

// Reversals.
/// Reversals of one transfer.
pub const REVERSALS_PER_TRANSFER_MAX: usize = 16;
/// Of those, the beneficiary's own: the rest stay free for a regulator's orders.
pub const BENEFICIARY_REVERSALS_MAX: usize = 8;

// All-or-nothing layers (a linked batch, one contract operation).
/// Layers open at once: a linked batch and one all-or-nothing operation inside it.
pub const LAYERS_MAX: usize = 2;

// Netting.
/// Obligations one cycle may hold: the work bound of closing it in one block.
pub const OBLIGATIONS_PER_CYCLE_MAX: u32 = 131_072;
/// Obligations settled by all cycle closes of one block.
pub const OBLIGATIONS_PER_BLOCK_MAX: usize = 262_144;
/// Largest obligation amount (2^96): sums of a full cycle stay far inside i128.
pub const OBLIGATION_AMOUNT_MAX: u128 = 1 << 96;

// Governance: proposals, key overlaps and the node set.
/// Longest a proposal stays open, in block time.
pub const PROPOSAL_LIFETIME_MS_MAX: u64 = 30 * 24 * 3600 * 1000;
/// Longest a rotated-out key stays valid beside its successor, in block time.
pub const KEY_OVERLAP_MS_MAX: u64 = 30 * 24 * 3600 * 1000;
/// Node records ever made: removed nodes keep theirs, since Raft ids and node keys are never
/// reused.
pub const NODES_MAX: usize = 256;
/// Voting nodes at once (Raft's quorum cost grows with each).
pub const VOTERS_MAX: usize = 9;
/// Active bank members: the electorate.
pub const BANK_MEMBERS_MAX: usize = 64;
/// Bytes of a node's peer address (`host:port`).
pub const NODE_ADDRESS_SIZE_MAX: usize = 128;

// Block records.
/// Bytes of the header inside a block record (a header is 253 bytes).
pub const HEADER_SIZE_MAX: usize = 1024;

// Maker-checker.
/// How long a transfer that asked to post at once waits for its checker: one day of block time.
pub const APPROVAL_TIMEOUT_MS: u64 = 86_400_000;

// The largest operation (an escrow with every condition: 184 bytes) encodes in under 192
// bytes, so a full linked batch fits an envelope.
const _: () = assert!(LINKED_OPERATIONS_MAX * 192 + 256 <= ENVELOPE_SIZE_MAX);
const _: () = assert!(ENVELOPE_SIZE_MAX * 16 <= BLOCK_SIZE_MAX);
// A cycle opening with every member allowed (8 bytes each) fits one envelope.
const _: () = assert!(CYCLE_MEMBERS_MAX * 8 + 512 <= ENVELOPE_SIZE_MAX);
const _: () = assert!(CYCLE_MEMBERS_MAX <= u16::MAX as usize);
const _: () = assert!(BLOCK_TRANSACTIONS_MAX <= u32::MAX as usize);
const _: () = assert!(VOTERS_MAX <= NODES_MAX);
const _: () = assert!(KEY_OVERLAP_MS_MAX <= PROPOSAL_LIFETIME_MS_MAX);
const _: () = assert!(WEBHOOK_DEAD_MAX <= WEBHOOK_PROGRESS_MAX);
const _: () = assert!(APPROVAL_TIMEOUT_MS <= PENDING_TIMEOUT_MS_MAX);
const _: () = assert!(
    CYCLE_CLOSES_PER_BLOCK_MAX * OBLIGATIONS_PER_CYCLE_MAX as usize <= OBLIGATIONS_PER_BLOCK_MAX
);
// M of N is a byte.
const _: () = assert!(BANK_MEMBERS_MAX <= u8::MAX as usize);
