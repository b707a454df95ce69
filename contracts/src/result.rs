//! Stable result codes: the outcome of every operation, as a number and a snake_case name.
//!
//! Codes are part of the public interface: numbers and names never change meaning; new
//! reasons get new numbers.

use serde::{Deserialize, Serialize};

macro_rules! result_codes {
    ($($variant:ident = $number:literal, $name:literal, $text:literal;)*) => {
        /// The outcome of an operation: `Ok` or the precise reason for rejection.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ResultCode {
            $(
                #[doc = $text]
                $variant,
            )*
        }

        impl ResultCode {
            /// Every code, in number order.
            pub const ALL: &'static [ResultCode] = &[$(ResultCode::$variant),*];
            /// Its stable number.
            pub fn number(self) -> u16 {
                match self { $(ResultCode::$variant => $number,)* }
            }
            /// Its stable snake_case name.
            pub fn name(self) -> &'static str {
                match self { $(ResultCode::$variant => $name,)* }
            }
            /// What it means, for people.
            pub fn describe(self) -> &'static str {
                match self { $(ResultCode::$variant => $text,)* }
            }
            /// The code with this number, if any.
            pub fn from_number(number: u16) -> Option<Self> {
                match number { $($number => Some(ResultCode::$variant),)* _ => None }
            }
        }
    };
}

result_codes! {
    Ok = 0, "ok", "applied";
    MalformedTransaction = 1, "malformed_transaction", "the transaction bytes are not a canonical envelope";
    UnsupportedVersion = 2, "unsupported_version", "the envelope's format version is not supported";
    WrongNetwork = 3, "wrong_network", "the envelope is signed for another network id";
    BadSignature = 4, "bad_signature", "the signature does not verify under the signer key";
    UnknownSigner = 5, "unknown_signer", "the signer key is not registered to any participant";
    NotAuthorized = 6, "not_authorized", "the signer may not perform this operation";
    UnknownParticipant = 7, "unknown_participant", "the named participant does not exist";
    UnknownAsset = 8, "unknown_asset", "the named asset does not exist";
    UnknownAccount = 9, "unknown_account", "a named account does not exist";
    AccountExists = 10, "account_exists", "an account with this id exists with other fields";
    InvalidFlags = 11, "invalid_flags", "the account flags are not allowed here";
    AssetMismatch = 12, "asset_mismatch", "the accounts and the transfer are not all in one asset";
    SameAccount = 13, "same_account", "the debit and credit accounts are the same";
    ZeroAmount = 14, "zero_amount", "the amount must be at least one minor unit";
    InvalidTimeout = 15, "invalid_timeout", "a pending timeout must be between 1 ms and the maximum";
    ExceedsCredits = 16, "exceeds_credits", "insufficient funds: debits would exceed credits on the debit account";
    ExceedsDebits = 17, "exceeds_debits", "credits would exceed debits on the credit account";
    Overflow = 18, "overflow", "a balance would overflow";
    AccountFrozen = 19, "account_frozen", "an account is frozen";
    PendingNotFound = 20, "pending_not_found", "no pending transfer with this id from this participant";
    PendingExpired = 21, "pending_expired", "the pending transfer's timeout has passed";
    PendingAlreadyPosted = 22, "pending_already_posted", "the pending transfer was already posted";
    PendingAlreadyVoided = 23, "pending_already_voided", "the pending transfer was already voided";
    NotPending = 24, "not_pending", "the referenced transfer is not a pending transfer";
    ExceedsPendingAmount = 25, "exceeds_pending_amount", "the post amount exceeds the pending amount";
    IdExistsWithDifferentBody = 26, "id_exists_with_different_body", "this transfer id was used before with a different body";
    IdExists = 27, "id_exists", "this transfer id was used before; a linked batch must be all new or all retried";
    LinkedBatchFailed = 28, "linked_batch_failed", "another operation of the linked batch failed, so none applied";
    DuplicateInBatch = 29, "duplicate_in_batch", "the linked batch uses this id twice";
    IssuerOnly = 30, "issuer_only", "only the asset's issuer may use its issuance account";
    RegulatorOnly = 31, "regulator_only", "only a regulator may place or lift a hold";
    InvalidHoldReason = 32, "invalid_hold_reason", "a hold needs a reason code from 1 to 65535";
    NotHeld = 33, "not_held", "the account has no hold to lift";
    EscrowNeedsCondition = 34, "escrow_needs_condition", "an escrow needs a hashlock, a release time or approvers";
    InvalidEscrowTerms = 35, "invalid_escrow_terms", "the escrow terms can never be met (approvals, release time after expiry)";
    NotEscrow = 36, "not_escrow", "no escrow with this id from this payer";
    NotAnApprover = 37, "not_an_approver", "the signer is not one of the escrow's approvers";
    EscrowTooEarly = 38, "escrow_too_early", "the escrow's release time has not come";
    EscrowApprovalsMissing = 39, "escrow_approvals_missing", "the escrow lacks required approvals";
    EscrowWrongPreimage = 40, "escrow_wrong_preimage", "the secret is missing or does not match the escrow's hashlock";
    EscrowLocked = 41, "escrow_locked", "an escrow is released by its terms or refunded at expiry, never posted or voided";
    NotExchange = 42, "not_exchange", "no exchange offer with this id from this offerer";
    NotCounterparty = 43, "not_counterparty", "only the offer's counterparty may accept it";
    ExchangeLegLocked = 44, "exchange_leg_locked", "an offered leg settles only with its counter leg (it may be withdrawn by voiding it)";
    CounterpartyMismatch = 45, "counterparty_mismatch", "the counterparty must own the account it receives into and pays from, and the offerer the account it is paid into";
    CycleExists = 46, "cycle_exists", "a netting cycle with this id exists with other fields";
    InvalidCloseTime = 47, "invalid_close_time", "a cycle's close time must be after the current block time";
    NotCycle = 48, "not_cycle", "no netting cycle with this id";
    CycleClosed = 49, "cycle_closed", "the netting cycle is already settled";
    CycleFull = 50, "cycle_full", "the netting cycle holds the most obligations one block may settle";
    InvalidCarryOver = 51, "invalid_carry_over", "unfunded obligations may move only to another open cycle of the same asset";
    BlockWorkExceeded = 52, "block_work_exceeded", "this block already settles the most obligations allowed; close the cycle in a later block";
    NettingUnfunded = 53, "netting_unfunded", "set aside by the gridlock rule: its debtor could not fund its net position";
    NotReversible = 54, "not_reversible", "only a settled (posted) transfer can be reversed";
    NotBeneficiary = 55, "not_beneficiary", "a reversal is signed by the original beneficiary or ordered by a regulator";
    ExceedsReversible = 56, "exceeds_reversible", "the reversal exceeds what remains of the original amount";
    ReversalLimit = 57, "reversal_limit", "the transfer has the most reversals allowed (16)";
    ExceedsTransferMax = 58, "exceeds_transfer_max", "the amount exceeds the asset's per-transfer maximum";
    ExceedsDailyCap = 59, "exceeds_daily_cap", "the payer's outflow in this asset today would exceed its daily cap";
    OperatorOnly = 60, "operator_only", "only the network operator may set network parameters";
    NotSponsoringBank = 61, "not_sponsoring_bank", "only the participant's own bank member may do this for it";
    ApprovalRequired = 62, "approval_required", "the transfer waits for a second key's approval; its maker cannot post it";
    SameKey = 63, "same_key", "the approval must be signed by another key of the same participant";
    NotAwaitingApproval = 64, "not_awaiting_approval", "no transfer of the signer with this id waits for approval";
    KeyInUse = 65, "key_in_use", "the key is registered to another participant";
    TooManyKeys = 66, "too_many_keys", "the participant has the most keys allowed (16)";
    InvalidKey = 67, "invalid_key", "the bytes are not an ed25519 public key";
    NotCycleMember = 68, "not_cycle_member", "the debtor and the creditor must both be members of the netting cycle";
    InvalidMember = 69, "invalid_member", "every cycle member must be a participant that may make payments";
    CreditLimitExceeded = 70, "credit_limit_exceeded", "the creditor's bilateral credit limit for this debtor would be exceeded in the cycle";
    InvalidCreditLimit = 71, "invalid_credit_limit", "a bilateral credit limit is set by a paying participant for another participant that may pay";
    InvalidWebhook = 72, "invalid_webhook", "a webhook endpoint is 0 to 3 with an http:// or https:// URL of at most 512 printable bytes (empty removes it)";
    BankMembersOnly = 73, "bank_members_only", "only an active bank member may propose or approve a governance change";
    ProposalExists = 74, "proposal_exists", "another governance proposal has this id";
    UnknownProposal = 75, "unknown_proposal", "no governance proposal has this id";
    ProposalExpired = 76, "proposal_expired", "the proposal expired before reaching its approvals";
    ProposalClosed = 77, "proposal_closed", "the proposal was already decided";
    InvalidProposalExpiry = 78, "invalid_proposal_expiry", "a proposal expires after the block time and within 30 days of it";
    NodeExists = 79, "node_exists", "the node id is taken (ids of removed nodes are never reused)";
    UnknownNode = 80, "unknown_node", "no active node has this id";
    InvalidNode = 81, "invalid_node", "a node needs a non-zero id, a name of 1 to 64 bytes and a peer address host:port";
    TooManyNodes = 82, "too_many_nodes", "the node set is full (at most 9 voters and 256 node records)";
    LastVoter = 83, "last_voter", "the network keeps at least one voting node";
    ParticipantExists = 84, "participant_exists", "the participant id is taken";
    InvalidParticipant = 85, "invalid_participant", "a participant needs a name of 1 to 64 bytes, 1 to 16 distinct keys, and an active bank member as bank exactly when it is a settlement partner";
    ParticipantOffboarded = 86, "participant_offboarded", "the participant was offboarded";
    KeyNotRegistered = 87, "key_not_registered", "the key is not one of the participant's keys";
    LastKey = 88, "last_key", "a participant keeps at least one key: rotate it instead";
    InvalidOverlap = 89, "invalid_overlap", "a key rotation's overlap is at most 30 days";
    KeyRetired = 90, "key_retired", "the signing key was rotated out and its overlap window has ended";
    GovernanceRequired = 91, "governance_required", "network parameters change only through an approved governance proposal";
    InvalidApprovalsRequired = 92, "invalid_approvals_required", "the approvals required are 1 to the number of active bank members";
    LastBankMember = 93, "last_bank_member", "the network keeps at least one bank member";
    TooManyBankMembers = 94, "too_many_bank_members", "the consortium has the most bank members allowed (64)";
    Expired = 95, "expired", "the envelope's validity window has passed (its valid_until_ms is before the block time); sign it again with a new nonce";
    ValidityTooLong = 96, "validity_too_long", "the envelope's valid_until_ms is more than one hour after the block time";
    Replayed = 97, "replayed", "these exact envelope bytes were applied already: a retry never applies twice (sign with a new nonce to apply again)";
    UnboundedAccount = 98, "unbounded_account", "every account that can be debited is flagged debits_must_not_exceed_credits (its debits may exceed its credits only by a credit line)";
    IssuanceAccount = 99, "issuance_account", "an asset's issuance account moves only by the issuer's mint and burn";
    ExceedsSupplyCap = 100, "exceeds_supply_cap", "the mint would take the asset's outstanding supply over the cap governance set";
    ExceedsCreditLineCap = 101, "exceeds_credit_line_cap", "the credit line is over the cap governance set for this partner in this asset";
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_are_unique_and_round_trip() {
        // Proves that no two codes share a number or a name, so clients can rely on either.
        let mut numbers: Vec<u16> = ResultCode::ALL.iter().map(|code| code.number()).collect();
        let mut names: Vec<&str> = ResultCode::ALL.iter().map(|code| code.name()).collect();
        numbers.sort_unstable();
        names.sort_unstable();
        numbers.dedup();
        names.dedup();
        assert_eq!(numbers.len(), ResultCode::ALL.len());
        assert_eq!(names.len(), ResultCode::ALL.len());
        for code in ResultCode::ALL {
            assert_eq!(ResultCode::from_number(code.number()), Some(*code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.name()));
        }
    }
}
