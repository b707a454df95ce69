//! Maker-checker: above an account's threshold a transfer waits, reserved, for a second key of
//! the same participant; the maker cannot post it alone; it settles on approval or returns at
//! expiry. Extra keys come from the participant's bank member.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use tpw_contracts::model::TransferState;
use tpw_contracts::ops::{
    AddKey, ApproveTransfer, CreateEscrow, PostPending, Reverse, SetApprovalPolicy,
};
use tpw_contracts::{Body, Operation, ResultCode};

fn one(ledger: &mut Ledger, signer: u64, operation: Operation) -> ResultCode {
    let bytes = ledger.sign(signer, Body::single(operation));
    ledger.block(10, vec![bytes]).receipts[0].code
}

fn with_key(ledger: &mut Ledger, key: &SigningKey, operation: Operation) -> ResultCode {
    let bytes = ledger.sign_with(key, Body::single(operation));
    ledger.block(10, vec![bytes]).receipts[0].code
}

fn checker() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

/// X gets a second key from its bank, and its EUR account requires a checker above 1,000.
fn ledger_with_policy() -> Ledger {
    let mut ledger = Ledger::new();
    let add = Operation::AddKey(AddKey {
        participant: PARTNER_X,
        key: checker().verifying_key().to_bytes(),
    });
    assert_eq!(one(&mut ledger, BANK_A, add), ResultCode::Ok);
    let policy = Operation::SetApprovalPolicy(SetApprovalPolicy {
        account: X_EUR,
        threshold: 1_000,
    });
    assert_eq!(one(&mut ledger, PARTNER_X, policy), ResultCode::Ok);
    ledger
}

#[test]
fn above_the_threshold_a_second_key_settles_the_transfer() {
    // Proves a transfer above the threshold is reserved and waits, the maker's own key can
    // neither approve nor post it, and the checker's key settles it; below the threshold a
    // transfer settles at once.
    let mut ledger = ledger_with_policy();
    let x = ledger.account(X_EUR);
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::posted(1, X_EUR, Y_EUR, EUR, 1_000)
        ),
        ResultCode::Ok
    );
    assert_eq!(
        ledger.transfer(PARTNER_X, 1).unwrap().state,
        TransferState::Posted
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::posted(2, X_EUR, Y_EUR, EUR, 5_000)
        ),
        ResultCode::Ok
    );
    assert_eq!(
        ledger.transfer(PARTNER_X, 2).unwrap().state,
        TransferState::Pending
    );
    assert_eq!(ledger.account(X_EUR).debits_pending, 5_000);
    let post = Operation::PostPending(PostPending {
        id: 3,
        pending_id: 2,
        amount: 5_000,
    });
    assert_eq!(
        one(&mut ledger, PARTNER_X, post),
        ResultCode::ApprovalRequired
    );
    let approve = Operation::ApproveTransfer(ApproveTransfer { id: 2 });
    assert_eq!(
        one(&mut ledger, PARTNER_X, approve.clone()),
        ResultCode::SameKey
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, approve.clone()),
        ResultCode::NotAwaitingApproval
    );
    assert_eq!(
        with_key(&mut ledger, &checker(), approve.clone()),
        ResultCode::Ok
    );
    assert_eq!(
        ledger.transfer(PARTNER_X, 2).unwrap().state,
        TransferState::PendingPosted
    );
    assert_eq!(ledger.account(X_EUR).debits_posted, x.debits_posted + 6_000);
    assert_eq!(
        with_key(&mut ledger, &checker(), approve),
        ResultCode::NotAwaitingApproval
    );
}

#[test]
fn an_unapproved_transfer_returns_at_expiry_and_keys_come_only_from_the_bank() {
    // Proves a waiting transfer expires back to the payer, and that only the participant's
    // own bank registers keys, never one that belongs to someone else.
    let mut ledger = ledger_with_policy();
    let x = ledger.account(X_EUR);
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::posted(1, X_EUR, Y_EUR, EUR, 5_000)
        ),
        ResultCode::Ok
    );
    ledger.block(tpw_contracts::approval::APPROVAL_TIMEOUT_MS + 1, Vec::new());
    assert_eq!(
        ledger.transfer(PARTNER_X, 1).unwrap().state,
        TransferState::PendingExpired
    );
    assert_eq!(ledger.account(X_EUR), x);
    let approve = Operation::ApproveTransfer(ApproveTransfer { id: 1 });
    assert_eq!(
        with_key(&mut ledger, &checker(), approve),
        ResultCode::PendingExpired
    );

    let other = SigningKey::from_bytes(&[43; 32]).verifying_key().to_bytes();
    let add = |participant| {
        Operation::AddKey(AddKey {
            participant,
            key: other,
        })
    };
    assert_eq!(
        one(&mut ledger, BANK_B, add(PARTNER_X)),
        ResultCode::NotSponsoringBank
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, add(PARTNER_X)),
        ResultCode::NotSponsoringBank
    );
    let taken = Operation::AddKey(AddKey {
        participant: PARTNER_X,
        key: key(PARTNER_Y).verifying_key().to_bytes(),
    });
    assert_eq!(one(&mut ledger, BANK_A, taken), ResultCode::KeyInUse);
    // The y coordinate 2 is not on the curve: no point decompresses from these bytes.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    let invalid = Operation::AddKey(AddKey {
        participant: PARTNER_X,
        key: not_a_point,
    });
    assert_eq!(one(&mut ledger, BANK_A, invalid), ResultCode::InvalidKey);
    let policy = Operation::SetApprovalPolicy(SetApprovalPolicy {
        account: X_EUR,
        threshold: 1,
    });
    assert_eq!(
        one(&mut ledger, PARTNER_Y, policy),
        ResultCode::NotAuthorized
    );
}

#[test]
fn a_single_key_cannot_loosen_the_rule_or_route_around_it() {
    // Proves the owner may tighten but not raise or remove its threshold (its bank may), that
    // contract legs above the threshold are refused rather than settled without a checker, and
    // that a checker-approved transfer can be reversed.
    let mut ledger = ledger_with_policy();
    let policy = |threshold| {
        Operation::SetApprovalPolicy(SetApprovalPolicy {
            account: X_EUR,
            threshold,
        })
    };
    assert_eq!(
        one(&mut ledger, PARTNER_X, policy(0)),
        ResultCode::NotSponsoringBank
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, policy(5_000)),
        ResultCode::NotSponsoringBank
    );
    assert_eq!(one(&mut ledger, PARTNER_X, policy(900)), ResultCode::Ok);
    let escrow = Operation::CreateEscrow(CreateEscrow {
        id: 1,
        debit_account: X_EUR,
        credit_account: Y_EUR,
        asset: EUR,
        amount: 5_000,
        timeout_ms: 60_000,
        terms: tpw_contracts::tx::EscrowTerms {
            hashlock: None,
            release_after_ms: ledger.time_ms + 100,
            approvers: Vec::new(),
            approvals_required: 0,
        },
    });
    assert_eq!(
        one(&mut ledger, PARTNER_X, escrow),
        ResultCode::ApprovalRequired
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::posted(2, X_EUR, Y_EUR, EUR, 5_000)
        ),
        ResultCode::Ok
    );
    let approve = Operation::ApproveTransfer(ApproveTransfer { id: 2 });
    assert_eq!(with_key(&mut ledger, &checker(), approve), ResultCode::Ok);
    let order = Operation::Reverse(Reverse {
        id: 3,
        original_owner: PARTNER_X,
        original_id: 2,
        amount: 5_000,
    });
    assert_eq!(one(&mut ledger, REGULATOR, order), ResultCode::Ok);
    assert_eq!(one(&mut ledger, BANK_A, policy(0)), ResultCode::Ok);
}

#[test]
fn a_retried_linked_batch_reports_what_it_did() {
    // Proves a linked batch that applied is not applied again when its bytes come back
    // (replayed), and that signed again with a new nonce it reports ok for every operation:
    // the transfer's id answers the original, the policy, which has no id, is set again.
    let mut ledger = Ledger::new();
    let batch = || {
        Body::linked(vec![
            Operation::posted(9, X_EUR, Y_EUR, EUR, 10),
            Operation::SetApprovalPolicy(SetApprovalPolicy {
                account: X_EUR,
                threshold: 1_000_000,
            }),
        ])
    };
    let bytes = ledger.sign(PARTNER_X, batch());
    let first = ledger.block(10, vec![bytes.clone()]).receipts[0].clone();
    let retry = ledger.block(10, vec![bytes]).receipts[0].clone();
    assert_eq!(first.operations, vec![ResultCode::Ok, ResultCode::Ok]);
    assert_eq!(retry.code, ResultCode::Replayed);
    assert!(retry.operations.is_empty());
    let signed_again = ledger.sign(PARTNER_X, batch());
    let again = ledger.block(10, vec![signed_again]).receipts[0].clone();
    assert_eq!(again.operations, first.operations);
    assert_eq!(ledger.account(X_EUR).debits_posted, 10, "paid once");
}
