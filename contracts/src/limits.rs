//! Every bound of the ledger engine in one place, with the relations between them asserted.
//!
//! A limit keeps a malicious or buggy client (or leader) from making any node do unbounded work.

/// Format version carried by every envelope, proposal, header and state record.
pub const FORMAT_VERSION: u8 = 1;
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

// The largest operation (an escrow with every condition: 184 bytes) encodes in under 192
// bytes, so a full linked batch fits an envelope.
const _: () = assert!(LINKED_OPERATIONS_MAX * 192 + 256 <= ENVELOPE_SIZE_MAX);
const _: () = assert!(ENVELOPE_SIZE_MAX * 16 <= BLOCK_SIZE_MAX);
// A cycle opening with every member allowed (8 bytes each) fits one envelope.
const _: () = assert!(CYCLE_MEMBERS_MAX * 8 + 512 <= ENVELOPE_SIZE_MAX);
const _: () = assert!(CYCLE_MEMBERS_MAX <= u16::MAX as usize);
const _: () = assert!(BLOCK_TRANSACTIONS_MAX <= u32::MAX as usize);
