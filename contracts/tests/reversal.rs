//! Reversal: a compensating transfer back along a settled one, by its beneficiary or by a
//! regulator's order, never more than the original, with the link kept both ways.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tpw_contracts::model::{from_bytes, TransferState};
use tpw_contracts::ops::{Reverse, SetHold, Transfer};
use tpw_contracts::reversal::{reversal_key, ReversalRecord};
use tpw_contracts::{Body, Operation, ResultCode, StateStore, TransferKind};

fn pay(id: u128, amount: u128) -> Operation {
    Operation::posted(id, X_EUR, Y_EUR, EUR, amount)
}

fn reverse(id: u128, original_id: u128, amount: u128) -> Operation {
    Operation::Reverse(Reverse {
        id,
        original_owner: PARTNER_X,
        original_id,
        amount,
    })
}

fn one(ledger: &mut Ledger, signer: u64, operation: Operation) -> ResultCode {
    let bytes = ledger.sign(signer, Body::single(operation));
    ledger.block(10, vec![bytes]).receipts[0].code
}

fn reversals(ledger: &Ledger, original_id: u128) -> ReversalRecord {
    let bytes = ledger
        .store
        .get(&reversal_key(PARTNER_X, original_id))
        .unwrap()
        .expect("reversed");
    from_bytes(&bytes, ReversalRecord::decode).unwrap()
}

#[test]
fn the_beneficiary_reverses_part_then_the_rest_and_no_more() {
    // Proves a beneficiary moves money back along a settled transfer in parts, the original
    // lists its reversals and the total, and nothing beyond the original amount comes back.
    let mut ledger = Ledger::new();
    let x = ledger.account(X_EUR);
    assert_eq!(one(&mut ledger, PARTNER_X, pay(1, 500)), ResultCode::Ok);
    assert_eq!(
        one(&mut ledger, PARTNER_Y, reverse(10, 1, 200)),
        ResultCode::Ok
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, reverse(11, 1, 301)),
        ResultCode::ExceedsReversible
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, reverse(12, 1, 300)),
        ResultCode::Ok
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, reverse(13, 1, 1)),
        ResultCode::ExceedsReversible
    );
    let after = ledger.account(X_EUR);
    assert_eq!(
        after.credits_posted - after.debits_posted,
        x.credits_posted - x.debits_posted,
        "the payer is whole again"
    );
    let record = reversals(&ledger, 1);
    assert_eq!(record.reversed, 500);
    assert_eq!(record.reversals, vec![(PARTNER_Y, 10), (PARTNER_Y, 12)]);
    let reversal = ledger.transfer(PARTNER_Y, 10).unwrap();
    assert_eq!(
        (
            reversal.debit_account,
            reversal.credit_account,
            reversal.pending_id
        ),
        (Y_EUR, X_EUR, 1)
    );
}

#[test]
fn a_regulator_orders_a_reversal_even_from_a_held_account_and_others_cannot() {
    // Proves only the beneficiary or a regulator may reverse, that a hold stops the
    // beneficiary but not a regulator's order, and that unsettled transfers are not reversible.
    let mut ledger = Ledger::new();
    assert_eq!(one(&mut ledger, PARTNER_X, pay(1, 500)), ResultCode::Ok);
    assert_eq!(
        one(&mut ledger, PARTNER_X, reverse(10, 1, 5)),
        ResultCode::NotBeneficiary
    );
    assert_eq!(
        one(&mut ledger, BANK_A, reverse(11, 1, 5)),
        ResultCode::NotBeneficiary
    );
    let hold = Operation::SetHold(SetHold {
        account: Y_EUR,
        frozen: true,
        reason: 9,
    });
    assert_eq!(one(&mut ledger, REGULATOR, hold), ResultCode::Ok);
    assert_eq!(
        one(&mut ledger, PARTNER_Y, reverse(12, 1, 5)),
        ResultCode::AccountFrozen
    );
    assert_eq!(
        one(&mut ledger, REGULATOR, reverse(13, 1, 500)),
        ResultCode::Ok
    );
    assert_eq!(reversals(&ledger, 1).reversals, vec![(REGULATOR, 13)]);

    let release = Operation::SetHold(SetHold {
        account: Y_EUR,
        frozen: false,
        reason: 0,
    });
    assert_eq!(one(&mut ledger, REGULATOR, release), ResultCode::Ok);
    let pending = Operation::Transfer(Transfer {
        id: 2,
        debit_account: X_EUR,
        credit_account: Y_EUR,
        asset: EUR,
        amount: 50,
        kind: TransferKind::Pending { timeout_ms: 60_000 },
        reference: 0,
    });
    assert_eq!(one(&mut ledger, PARTNER_X, pending), ResultCode::Ok);
    assert_eq!(
        one(&mut ledger, REGULATOR, reverse(14, 2, 5)),
        ResultCode::NotReversible
    );
    assert_eq!(
        one(&mut ledger, REGULATOR, reverse(15, 99, 5)),
        ResultCode::NotReversible
    );
    assert_eq!(
        ledger.transfer(PARTNER_X, 2).unwrap().state,
        TransferState::Pending
    );
}

#[test]
fn a_beneficiary_cannot_use_up_the_reversals_a_regulator_needs() {
    // Proves the beneficiary's own reversals stop at 8 while a regulator can still order the
    // rest back.
    let mut ledger = Ledger::new();
    assert_eq!(one(&mut ledger, PARTNER_X, pay(1, 500)), ResultCode::Ok);
    for id in 0..8 {
        assert_eq!(
            one(&mut ledger, PARTNER_Y, reverse(100 + id, 1, 1)),
            ResultCode::Ok
        );
    }
    assert_eq!(
        one(&mut ledger, PARTNER_Y, reverse(200, 1, 1)),
        ResultCode::ReversalLimit
    );
    assert_eq!(
        one(&mut ledger, REGULATOR, reverse(201, 1, 492)),
        ResultCode::Ok
    );
    assert_eq!(reversals(&ledger, 1).reversed, 500);
}
