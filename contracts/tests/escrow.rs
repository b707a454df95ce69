//! Escrow and conditional payment: every release path (hashlock, release time, M-of-N
//! approvals), the refund at expiry, the payer's inability to take the money back early, and
//! each rejection code.

mod common;

use common::*;
use tpw_contracts::codec::{Reader, Writer};
use tpw_contracts::model::TransferState;
use tpw_contracts::ops::{ApproveEscrow, CreateEscrow, PostPending, ReleaseEscrow, VoidPending};
use tpw_contracts::tx::EscrowTerms;
use tpw_contracts::{Body, Operation, ResultCode};

const SECRET: [u8; 32] = [7; 32];

fn terms(hashlock: bool, release_after_ms: u64, approvers: &[u64], required: u8) -> EscrowTerms {
    EscrowTerms {
        hashlock: hashlock.then(|| *blake3::hash(&SECRET).as_bytes()),
        release_after_ms,
        approvers: approvers.to_vec(),
        approvals_required: required,
    }
}

fn create(id: u128, amount: u128, timeout_ms: u64, terms: EscrowTerms) -> Operation {
    Operation::CreateEscrow(CreateEscrow {
        id,
        debit_account: X_EUR,
        credit_account: Y_EUR,
        asset: EUR,
        amount,
        timeout_ms,
        terms,
    })
}

fn approve(escrow_id: u128) -> Operation {
    Operation::ApproveEscrow(ApproveEscrow {
        owner: PARTNER_X,
        escrow_id,
    })
}

fn release(id: u128, escrow_id: u128, preimage: Option<[u8; 32]>) -> Operation {
    Operation::ReleaseEscrow(ReleaseEscrow {
        id,
        owner: PARTNER_X,
        escrow_id,
        preimage,
    })
}

fn one(ledger: &mut Ledger, signer: u64, operation: Operation) -> ResultCode {
    let bytes = ledger.sign(signer, Body::single(operation));
    ledger.block(10, vec![bytes]).receipts[0].code
}

#[test]
fn a_hashlocked_escrow_releases_only_for_its_secret_and_only_to_entitled_signers() {
    // Proves the amount is reserved at creation, that a missing or wrong secret and an
    // unrelated signer are refused, and that the payee with the secret receives the whole amount.
    let mut ledger = Ledger::new();
    let before_y = ledger.account(Y_EUR).credits_posted;
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            create(1, 400, 60_000, terms(true, 0, &[], 0))
        ),
        ResultCode::Ok
    );
    assert_eq!(ledger.account(X_EUR).debits_pending, 400);
    assert_eq!(
        one(&mut ledger, PARTNER_Y, release(50, 1, None)),
        ResultCode::EscrowWrongPreimage
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, release(51, 1, Some([8; 32]))),
        ResultCode::EscrowWrongPreimage
    );
    assert_eq!(
        one(&mut ledger, BANK_B, release(52, 1, Some(SECRET))),
        ResultCode::NotAuthorized
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, release(53, 1, Some(SECRET))),
        ResultCode::Ok
    );
    assert_eq!(ledger.account(X_EUR).debits_pending, 0);
    assert_eq!(ledger.account(X_EUR).debits_posted, 400);
    assert_eq!(ledger.account(Y_EUR).credits_posted, before_y + 400);
    assert_eq!(
        ledger.transfer(PARTNER_X, 1).unwrap().state,
        TransferState::PendingPosted
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, release(54, 1, Some(SECRET))),
        ResultCode::PendingAlreadyPosted
    );
}

#[test]
fn a_timed_escrow_needs_its_time_and_m_of_n_approvals() {
    // Proves release waits for the block time and for M of the N named approvers, that only
    // named approvers count, and that approving twice counts once.
    let mut ledger = Ledger::new();
    let release_after = ledger.time_ms + 1_000;
    let escrow = create(
        2,
        300,
        60_000,
        terms(false, release_after, &[BANK_A, BANK_B, OPERATOR], 2),
    );
    assert_eq!(one(&mut ledger, PARTNER_X, escrow), ResultCode::Ok);
    assert_eq!(
        one(&mut ledger, PARTNER_Y, approve(2)),
        ResultCode::NotAnApprover
    );
    assert_eq!(one(&mut ledger, BANK_A, approve(2)), ResultCode::Ok);
    assert_eq!(one(&mut ledger, BANK_A, approve(2)), ResultCode::Ok);
    assert_eq!(
        one(&mut ledger, PARTNER_Y, release(60, 2, None)),
        ResultCode::EscrowTooEarly
    );
    ledger.block(2_000, Vec::new());
    assert_eq!(
        one(&mut ledger, PARTNER_Y, release(61, 2, None)),
        ResultCode::EscrowApprovalsMissing,
        "one approval of two, the repeat does not count"
    );
    assert_eq!(one(&mut ledger, OPERATOR, approve(2)), ResultCode::Ok);
    assert_eq!(
        one(&mut ledger, BANK_A, release(62, 2, None)),
        ResultCode::Ok,
        "an approver may release"
    );
    assert_eq!(ledger.account(X_EUR).debits_posted, 300);
}

#[test]
fn an_escrow_is_refunded_at_expiry_and_never_posted_or_voided_by_hand() {
    // Proves the payer cannot post or void its own escrow, and that at expiry the reservation
    // returns to the payer, after which neither approval nor release is possible.
    let mut ledger = Ledger::new();
    let before_x = ledger.account(X_EUR).clone();
    let before_y = ledger.account(Y_EUR).credits_posted;
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            create(3, 200, 5_000, terms(false, 0, &[BANK_A], 1))
        ),
        ResultCode::Ok
    );
    let void = Operation::VoidPending(VoidPending {
        id: 70,
        pending_id: 3,
    });
    assert_eq!(one(&mut ledger, PARTNER_X, void), ResultCode::EscrowLocked);
    let post = Operation::PostPending(PostPending {
        id: 71,
        pending_id: 3,
        amount: 200,
    });
    assert_eq!(one(&mut ledger, PARTNER_X, post), ResultCode::EscrowLocked);
    ledger.block(10_000, Vec::new());
    assert_eq!(
        ledger.transfer(PARTNER_X, 3).unwrap().state,
        TransferState::PendingExpired
    );
    assert_eq!(ledger.account(X_EUR).debits_pending, 0);
    assert_eq!(ledger.account(X_EUR).debits_posted, before_x.debits_posted);
    assert_eq!(ledger.account(Y_EUR).credits_posted, before_y);
    assert_eq!(
        one(&mut ledger, BANK_A, approve(3)),
        ResultCode::PendingExpired
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, release(72, 3, None)),
        ResultCode::PendingExpired
    );
}

#[test]
fn impossible_or_unknown_escrows_are_refused_with_their_codes() {
    // Proves each malformed set of terms has its own code and moves nothing.
    let mut ledger = Ledger::new();
    let far = ledger.time_ms + 1_000_000;
    let cases = [
        (
            create(10, 5, 60_000, terms(false, 0, &[], 0)),
            ResultCode::EscrowNeedsCondition,
        ),
        (
            create(11, 5, 60_000, terms(false, 0, &[BANK_A], 2)),
            ResultCode::InvalidEscrowTerms,
        ),
        (
            create(12, 5, 60_000, terms(false, 0, &[BANK_A], 0)),
            ResultCode::InvalidEscrowTerms,
        ),
        (
            create(13, 5, 60_000, terms(false, far, &[], 0)),
            ResultCode::InvalidEscrowTerms,
        ),
        (
            create(14, 5, 60_000, terms(false, 0, &[999], 1)),
            ResultCode::UnknownParticipant,
        ),
        (
            create(15, 5, 0, terms(true, 0, &[], 0)),
            ResultCode::InvalidTimeout,
        ),
        (
            create(16, 0, 60_000, terms(true, 0, &[], 0)),
            ResultCode::ZeroAmount,
        ),
        (release(17, 99, None), ResultCode::NotEscrow),
        (approve(99), ResultCode::NotEscrow),
    ];
    let before = ledger.account(X_EUR).clone();
    for (operation, expected) in cases {
        let signer = if matches!(operation, Operation::ApproveEscrow(ApproveEscrow { .. })) {
            BANK_A
        } else {
            PARTNER_X
        };
        assert_eq!(
            one(&mut ledger, signer, operation.clone()),
            expected,
            "{operation:?}"
        );
    }
    assert_eq!(ledger.account(X_EUR), before);
    // A payer who is not the debit account's owner cannot escrow its money.
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_Y,
            create(18, 5, 60_000, terms(true, 0, &[], 0))
        ),
        ResultCode::NotAuthorized
    );
}

#[test]
fn escrow_terms_have_one_encoding() {
    // Proves approvers must be strictly ascending on the wire, so equal terms always encode
    // alike (ids and idempotency depend on it).
    let unsorted = terms(true, 5, &[3, 1], 1);
    let mut writer = Writer::default();
    unsorted.encode(&mut writer);
    let bytes = writer.finish();
    assert!(EscrowTerms::decode(&mut Reader::new(&bytes)).is_err());
    let sorted = terms(true, 5, &[1, 3], 1);
    let mut writer = Writer::default();
    sorted.encode(&mut writer);
    let bytes = writer.finish();
    assert_eq!(
        EscrowTerms::decode(&mut Reader::new(&bytes)).unwrap(),
        sorted
    );
}
