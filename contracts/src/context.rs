//! The types every rule of the engine shares: the fatal error, the block and operation
//! contexts, and an operation's outcome. A leaf: it imports only the model, the codec, the
//! store's error and the result codes, so every module above may use it and imports run one way.

use crate::codec::DecodeError;
use crate::model::{Hash, Participant, PublicKey, Role};
use crate::result::ResultCode;
use crate::state::StoreError;

/// A failure that must stop the node: the store failed or holds a corrupt record.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A ledger invariant does not hold on the stored state.
    #[error("ledger invariant broken: {0}")]
    Invariant(String),
    /// A stored record does not decode.
    #[error("corrupt state record {key}: {source}")]
    Corrupt {
        /// The record key, hex.
        key: String,
        /// Why it does not decode.
        source: DecodeError,
    },
}

/// The facts every operation of a block sees.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockContext {
    pub(crate) height: u64,
    pub(crate) time_ms: u64,
}

/// What evaluating one operation did.
pub(crate) enum Outcome {
    /// Applied; its records are written.
    Applied,
    /// Refused; the transfer id (if any) is recorded with this code.
    Rejected(ResultCode),
    /// The id was used before: nothing is written and this code is returned.
    Existing(ResultCode),
}

/// Who applies an operation, in which block and transaction.
pub(crate) struct OperationContext<'a> {
    pub(crate) block: BlockContext,
    pub(crate) signer: &'a Participant,
    /// The key that signed the transaction (one of the signer's registered keys).
    pub(crate) signer_key: PublicKey,
    pub(crate) tx_id: Hash,
}

/// Whether a participant may originate payments.
pub(crate) fn may_pay(participant: &Participant) -> bool {
    matches!(participant.role, Role::BankMember | Role::SettlementPartner)
}

/// An invariant of the stored state, as a fatal error when it does not hold.
pub(crate) fn invariant(holds: bool, what: &str) -> Result<(), ApplyError> {
    if holds {
        Ok(())
    } else {
        Err(ApplyError::Invariant(what.to_string()))
    }
}

/// A result code read back from a stored record; an unknown number is corruption.
pub(crate) fn stored_code(number: u16) -> Result<ResultCode, ApplyError> {
    ResultCode::from_number(number)
        .ok_or_else(|| ApplyError::Invariant(format!("unknown stored result code {number}")))
}
