//! The bounds of an API request's shape, with the relations between them.

use tpw_contracts::limits::{BLOCK_TRANSACTIONS_MAX, ENVELOPE_SIZE_MAX};

/// Bytes of one HTTP request body.
pub const BODY_SIZE_MAX: usize = 16 * 1024 * 1024;
/// Transactions in one submission request.
pub const SUBMIT_TRANSACTIONS_MAX: usize = 4096;
/// Longest a submission may wait for commit.
pub const WAIT_TIMEOUT_MS_MAX: u64 = 60_000;
/// Default wait for commit when the client asks to wait without a timeout.
pub const WAIT_TIMEOUT_MS_DEFAULT: u64 = 10_000;

const _: () = assert!(SUBMIT_TRANSACTIONS_MAX <= BLOCK_TRANSACTIONS_MAX);
const _: () = assert!(SUBMIT_TRANSACTIONS_MAX * ENVELOPE_SIZE_MAX / 4 <= BODY_SIZE_MAX);
const _: () = assert!(WAIT_TIMEOUT_MS_DEFAULT <= WAIT_TIMEOUT_MS_MAX);
