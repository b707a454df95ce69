//! Delivery versus payment and payment versus payment: both legs settle or neither, only the
//! named counterparty can accept, the offerer can withdraw but never post its leg alone, and an
//! offer not accepted in time is refunded.

mod common;

use common::*;
use tpw_contracts::model::TransferState;
use tpw_contracts::ops::{AcceptExchange, OfferExchange, PostPending, SetHold, VoidPending};
use tpw_contracts::{Body, Operation, ResultCode};

/// X offers `eur` EUR (X_EUR -> Y_EUR) against `usd` USD (Y_USD -> X_USD).
fn offer(id: u128, eur: u128, usd: u128, timeout_ms: u64) -> Operation {
    Operation::OfferExchange(OfferExchange {
        id,
        debit_account: X_EUR,
        credit_account: Y_EUR,
        asset: EUR,
        amount: eur,
        counter_debit_account: Y_USD,
        counter_credit_account: X_USD,
        counter_asset: USD,
        counter_amount: usd,
        timeout_ms,
    })
}

fn accept(id: u128, exchange_id: u128) -> Operation {
    Operation::AcceptExchange(AcceptExchange {
        id,
        owner: PARTNER_X,
        exchange_id,
    })
}

fn one(ledger: &mut Ledger, signer: u64, operation: Operation) -> ResultCode {
    let bytes = ledger.sign(signer, Body::single(operation));
    ledger.block(10, vec![bytes]).receipts[0].code
}

fn balances(ledger: &Ledger) -> Vec<(u128, u128, u128, u128)> {
    [X_EUR, X_USD, Y_EUR, Y_USD]
        .iter()
        .map(|id| {
            let account = ledger.account(*id);
            (
                account.debits_posted,
                account.credits_posted,
                account.debits_pending,
                account.credits_pending,
            )
        })
        .collect()
}

#[test]
fn an_accepted_offer_settles_both_legs_at_the_agreed_rate() {
    // Proves the offerer's leg is reserved at once, and that acceptance moves both legs in one
    // step: EUR to the counterparty, USD to the offerer, at the amounts of the offer.
    let mut ledger = Ledger::new();
    assert_eq!(
        one(&mut ledger, PARTNER_X, offer(1, 9_000, 800, 60_000)),
        ResultCode::Ok
    );
    assert_eq!(ledger.account(X_EUR).debits_pending, 9_000);
    assert_eq!(one(&mut ledger, PARTNER_Y, accept(1, 1)), ResultCode::Ok);
    assert_eq!(ledger.account(X_EUR).debits_posted, 9_000);
    assert_eq!(ledger.account(X_EUR).debits_pending, 0);
    assert_eq!(ledger.account(Y_EUR).credits_posted, 500_000 + 9_000);
    assert_eq!(ledger.account(Y_USD).debits_posted, 800);
    assert_eq!(ledger.account(X_USD).credits_posted, 100 + 800);
    assert_eq!(
        ledger.transfer(PARTNER_X, 1).unwrap().state,
        TransferState::PendingPosted
    );
    assert_eq!(
        ledger.transfer(PARTNER_Y, 1).unwrap().state,
        TransferState::Posted
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, accept(2, 1)),
        ResultCode::PendingAlreadyPosted
    );
}

#[test]
fn when_one_leg_cannot_settle_neither_does() {
    // Proves that a counterparty without the funds, or a leg blocked by a hold, leaves every
    // balance exactly as before acceptance and the offer still open.
    let mut ledger = Ledger::new();
    assert_eq!(
        one(&mut ledger, PARTNER_X, offer(1, 9_000, 5_000, 60_000)),
        ResultCode::Ok
    );
    let before = balances(&ledger);
    assert_eq!(
        one(&mut ledger, PARTNER_Y, accept(1, 1)),
        ResultCode::ExceedsCredits,
        "Y has 1,000 USD, the offer asks 5,000"
    );
    assert_eq!(balances(&ledger), before);
    assert_eq!(
        ledger.transfer(PARTNER_X, 1).unwrap().state,
        TransferState::Pending
    );

    assert_eq!(
        one(&mut ledger, PARTNER_X, offer(2, 100, 10, 60_000)),
        ResultCode::Ok
    );
    let hold = Operation::SetHold(SetHold {
        account: Y_EUR,
        frozen: true,
        reason: 3,
    });
    assert_eq!(one(&mut ledger, REGULATOR, hold), ResultCode::Ok);
    let before = balances(&ledger);
    assert_eq!(
        one(&mut ledger, PARTNER_Y, accept(3, 2)),
        ResultCode::AccountFrozen,
        "the cash leg would move but the delivery leg cannot"
    );
    assert_eq!(balances(&ledger), before, "the cash leg was rolled back");
    assert!(ledger.transfer(PARTNER_Y, 3).unwrap().state == TransferState::Rejected);
}

#[test]
fn only_the_counterparty_accepts_and_the_offerer_can_only_withdraw() {
    // Proves a third party cannot accept, the offerer cannot post its own leg alone, a
    // withdrawn offer cannot be accepted, and an expired one is refunded.
    let mut ledger = Ledger::new();
    assert_eq!(
        one(&mut ledger, PARTNER_X, offer(1, 50, 5, 60_000)),
        ResultCode::Ok
    );
    assert_eq!(
        one(&mut ledger, BANK_A, accept(1, 1)),
        ResultCode::NotCounterparty
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, accept(2, 1)),
        ResultCode::NotCounterparty
    );
    let post = Operation::PostPending(PostPending {
        id: 3,
        pending_id: 1,
        amount: 50,
    });
    assert_eq!(
        one(&mut ledger, PARTNER_X, post),
        ResultCode::ExchangeLegLocked
    );
    let withdraw = Operation::VoidPending(VoidPending {
        id: 4,
        pending_id: 1,
    });
    assert_eq!(one(&mut ledger, PARTNER_X, withdraw), ResultCode::Ok);
    assert_eq!(
        one(&mut ledger, PARTNER_Y, accept(5, 1)),
        ResultCode::PendingAlreadyVoided
    );

    let before = balances(&ledger);
    assert_eq!(
        one(&mut ledger, PARTNER_X, offer(6, 70, 7, 1_000)),
        ResultCode::Ok
    );
    ledger.block(5_000, Vec::new());
    assert_eq!(
        ledger.transfer(PARTNER_X, 6).unwrap().state,
        TransferState::PendingExpired
    );
    assert_eq!(balances(&ledger), before, "refunded at expiry");
    assert_eq!(
        one(&mut ledger, PARTNER_Y, accept(7, 6)),
        ResultCode::PendingExpired
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, accept(8, 99)),
        ResultCode::NotExchange
    );
}

#[test]
fn offers_must_name_two_parties_and_matching_assets() {
    // Proves offers whose accounts do not belong to exactly two parties, or whose counter leg
    // names accounts of another asset, are refused and move nothing.
    let mut ledger = Ledger::new();
    let before = balances(&ledger);
    let mut to_self = offer(1, 10, 1, 60_000);
    if let Operation::OfferExchange(OfferExchange {
        credit_account,
        counter_debit_account,
        ..
    }) = &mut to_self
    {
        *credit_account = X_EUR;
        *counter_debit_account = X_USD;
    }
    assert_eq!(
        one(&mut ledger, PARTNER_X, to_self),
        ResultCode::CounterpartyMismatch
    );
    let mut wrong_asset = offer(2, 10, 1, 60_000);
    if let Operation::OfferExchange(OfferExchange { counter_asset, .. }) = &mut wrong_asset {
        *counter_asset = EUR;
    }
    assert_eq!(
        one(&mut ledger, PARTNER_X, wrong_asset),
        ResultCode::AssetMismatch
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, offer(3, 10, 0, 60_000)),
        ResultCode::ZeroAmount
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, offer(4, 10, 1, 60_000)),
        ResultCode::CounterpartyMismatch,
        "Y does not own the offerer's side"
    );
    assert_eq!(balances(&ledger), before);
}
