//! Limits: the consortium's per-transfer maximum per asset and a bank member's daily outflow cap
//! for its partner, by UTC day of block time; who may set them, and that every debit path counts.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tpw_contracts::ops::{
    ApproveProposal, CreateEscrow, Propose, SetOutflowCap, SetTransferMax, Transfer,
};
use tpw_contracts::{Body, Operation, ResultCode, TransferKind};

fn pay(id: u128, amount: u128) -> Operation {
    Operation::posted(id, X_EUR, Y_EUR, EUR, amount)
}

fn one(ledger: &mut Ledger, signer: u64, operation: Operation) -> ResultCode {
    let bytes = ledger.sign(signer, Body::single(operation));
    ledger.block(10, vec![bytes]).receipts[0].code
}

/// Sets a per-transfer maximum the only way there is: a proposal both bank members approve.
fn set_transfer_max(ledger: &mut Ledger, proposal: u64, amount_max: u128) {
    let expires_at_ms = ledger.time_ms + 60_000;
    let propose = Operation::Propose(Propose {
        proposal,
        expires_at_ms,
        action: tpw_contracts::governance::GovernanceAction::SetAssetTransferMax {
            asset: EUR,
            amount_max,
        },
    });
    assert_eq!(one(ledger, BANK_A, propose), ResultCode::Ok);
    let approve = Operation::ApproveProposal(ApproveProposal { proposal });
    assert_eq!(one(ledger, BANK_B, approve), ResultCode::Ok);
}

#[test]
fn the_consortium_caps_one_transfer_per_asset() {
    // Proves no single key sets the maximum, that it refuses larger transfers in that asset
    // only, and that 0 removes it.
    let mut ledger = Ledger::new();
    let set = |amount_max| {
        Operation::SetTransferMax(SetTransferMax {
            asset: EUR,
            amount_max,
        })
    };
    assert_eq!(
        one(&mut ledger, BANK_A, set(100)),
        ResultCode::GovernanceRequired
    );
    assert_eq!(
        one(&mut ledger, OPERATOR, set(100)),
        ResultCode::GovernanceRequired
    );
    set_transfer_max(&mut ledger, 1, 100);
    assert_eq!(
        one(&mut ledger, PARTNER_X, pay(1, 101)),
        ResultCode::ExceedsTransferMax
    );
    assert_eq!(one(&mut ledger, PARTNER_X, pay(2, 100)), ResultCode::Ok);
    let usd = Operation::posted(3, X_USD, Y_USD, USD, 50);
    assert_eq!(
        one(&mut ledger, PARTNER_X, usd),
        ResultCode::Ok,
        "another asset is not capped"
    );
    set_transfer_max(&mut ledger, 2, 0);
    assert_eq!(one(&mut ledger, PARTNER_X, pay(4, 101)), ResultCode::Ok);
}

#[test]
fn a_bank_caps_its_partners_daily_outflow_by_block_time() {
    // Proves only the partner's own bank member sets the cap, that transfers, pending
    // reservations and escrows all count toward it, that a refused debit counts nothing, and
    // that the next UTC day of block time starts from zero.
    let mut ledger = Ledger::new();
    let cap = |cap| {
        Operation::SetOutflowCap(SetOutflowCap {
            participant: PARTNER_X,
            asset: EUR,
            cap,
        })
    };
    assert_eq!(
        one(&mut ledger, BANK_B, cap(1_000)),
        ResultCode::NotSponsoringBank
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, cap(1_000)),
        ResultCode::NotSponsoringBank
    );
    assert_eq!(one(&mut ledger, BANK_A, cap(1_000)), ResultCode::Ok);
    assert_eq!(one(&mut ledger, PARTNER_X, pay(1, 600)), ResultCode::Ok);
    let reserve = Operation::Transfer(Transfer {
        id: 2,
        debit_account: X_EUR,
        credit_account: Y_EUR,
        asset: EUR,
        amount: 300,
        kind: TransferKind::Pending { timeout_ms: 60_000 },
        reference: 0,
    });
    assert_eq!(one(&mut ledger, PARTNER_X, reserve), ResultCode::Ok);
    assert_eq!(
        one(&mut ledger, PARTNER_X, pay(3, 101)),
        ResultCode::ExceedsDailyCap
    );
    let escrow = Operation::CreateEscrow(CreateEscrow {
        id: 4,
        debit_account: X_EUR,
        credit_account: Y_EUR,
        asset: EUR,
        amount: 100,
        timeout_ms: 60_000,
        terms: tpw_contracts::tx::EscrowTerms {
            hashlock: Some([1; 32]),
            release_after_ms: 0,
            approvers: Vec::new(),
            approvals_required: 0,
        },
    });
    assert_eq!(
        one(&mut ledger, PARTNER_X, escrow),
        ResultCode::Ok,
        "exactly reaches the cap"
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, pay(5, 1)),
        ResultCode::ExceedsDailyCap
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_Y,
            Operation::posted(6, Y_EUR, X_EUR, EUR, 5)
        ),
        ResultCode::Ok,
        "another participant is not capped"
    );
    let to_next_day = 86_400_000 - ledger.time_ms % 86_400_000;
    ledger.block(to_next_day, Vec::new());
    assert_eq!(one(&mut ledger, PARTNER_X, pay(7, 1_000)), ResultCode::Ok);
    assert_eq!(one(&mut ledger, BANK_A, cap(0)), ResultCode::Ok);
    assert_eq!(one(&mut ledger, PARTNER_X, pay(8, 5_000)), ResultCode::Ok);
}
