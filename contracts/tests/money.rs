//! Money only by the rules: every account but the issuance account is bounded by its credits
//! plus a credit line; lines come from a partner's bank within a governed cap (or from
//! governance); money enters and leaves only by the issuer's mint and burn within the governed
//! supply cap. `Ledger::block` checks conservation and the supply record after every block.

mod common;

use common::*;
use tpw_contracts::governance::GovernanceAction;
use tpw_contracts::issuance::{supply_key, SupplyRecord};
use tpw_contracts::model::{account_flags, from_bytes};
use tpw_contracts::ops::{
    ApproveProposal, Burn, IssuanceFields, Mint, OpenAccount, Propose, SetCreditLine,
};
use tpw_contracts::{Body, Operation, ResultCode, StateStore};

fn one(ledger: &mut Ledger, signer: u64, operation: Operation) -> ResultCode {
    let bytes = ledger.sign(signer, Body::single(operation));
    ledger.block(10, vec![bytes]).receipts[0].code
}

fn supply(ledger: &Ledger, asset: u32) -> SupplyRecord {
    let bytes = ledger
        .store
        .get(&supply_key(asset))
        .expect("the store reads")
        .expect("every asset has a supply record");
    from_bytes(&bytes, SupplyRecord::decode).expect("a supply record decodes")
}

fn fields(id: u128, account: u128, amount: u128) -> IssuanceFields {
    IssuanceFields {
        id,
        account,
        asset: EUR,
        amount,
    }
}

/// Bank A opens EUR account 1001 of its own.
fn open_bank_a_account(ledger: &mut Ledger) {
    let open = Operation::OpenAccount(OpenAccount {
        account: 1001,
        owner: BANK_A,
        asset: EUR,
        flags: account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS,
    });
    assert_eq!(one(ledger, BANK_A, open), ResultCode::Ok);
}

/// Proposes a change as bank A and approves it as bank B (the fixture needs two approvals).
fn govern(ledger: &mut Ledger, proposal: u64, action: GovernanceAction) {
    let expires_at_ms = ledger.time_ms + 3_600_000;
    let propose = Operation::Propose(Propose {
        proposal,
        expires_at_ms,
        action,
    });
    assert_eq!(one(ledger, BANK_A, propose), ResultCode::Ok);
    let approve = Operation::ApproveProposal(ApproveProposal { proposal });
    assert_eq!(one(ledger, BANK_B, approve), ResultCode::Ok);
}

#[test]
fn a_partner_can_neither_overdraw_nor_open_an_unbounded_account_nor_mint() {
    // Proves the review's finding is closed: paying more than the account holds is refused,
    // opening an account without the no-overdraft flag (or with only the inflow bound) is
    // refused, touching the issuance account by transfer is refused, and a partner's mint is
    // refused, each with its stable code and nothing moved.
    let mut ledger = Ledger::new();
    let held = ledger.account(X_EUR).credits_posted;
    let overdraw = Operation::posted(1, X_EUR, Y_EUR, EUR, held + 1);
    assert_eq!(
        one(&mut ledger, PARTNER_X, overdraw),
        ResultCode::ExceedsCredits
    );
    let huge = Operation::posted(2, X_EUR, Y_EUR, EUR, 1_000_000_000_000_000);
    assert_eq!(
        one(&mut ledger, PARTNER_X, huge),
        ResultCode::ExceedsCredits
    );
    for flags in [0, account_flags::CREDITS_MUST_NOT_EXCEED_DEBITS] {
        let open = Operation::OpenAccount(OpenAccount {
            account: 3900 + u128::from(flags),
            owner: PARTNER_X,
            asset: EUR,
            flags,
        });
        assert_eq!(
            one(&mut ledger, PARTNER_X, open),
            ResultCode::UnboundedAccount
        );
    }
    let issuance_flag = Operation::OpenAccount(OpenAccount {
        account: 3910,
        owner: PARTNER_X,
        asset: EUR,
        flags: account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS | account_flags::ISSUANCE,
    });
    assert_eq!(
        one(&mut ledger, PARTNER_X, issuance_flag),
        ResultCode::InvalidFlags
    );
    let mint = Operation::Mint(Mint(fields(3, X_EUR, 10)));
    assert_eq!(one(&mut ledger, PARTNER_X, mint), ResultCode::IssuerOnly);
    // Even the issuer moves its issuance account only by mint and burn.
    let by_transfer = Operation::posted(4, EUR_ISSUANCE, X_EUR, EUR, 10);
    assert_eq!(
        one(&mut ledger, BANK_A, by_transfer),
        ResultCode::IssuanceAccount
    );
    let into_issuance = Operation::posted(5, X_EUR, EUR_ISSUANCE, EUR, 10);
    assert_eq!(
        one(&mut ledger, PARTNER_X, into_issuance),
        ResultCode::IssuanceAccount
    );
    assert_eq!(ledger.account(X_EUR).credits_posted, held);
    assert_eq!(ledger.account(X_EUR).debits_posted, 0);
}

#[test]
fn the_issuer_mints_and_burns_within_the_governed_cap() {
    // Proves mint and burn move the supply record with the issuance account, that a mint over
    // the cap is refused, that a retried mint (same id, signed again) mints once, and that
    // governance raising the cap lets the issuer mint more.
    let mut ledger = Ledger::new();
    let start = supply(&ledger, EUR);
    assert_eq!(start.cap, EUR_SUPPLY_CAP);
    assert_eq!(start.outstanding, 1_500_010);
    let room = start.cap - start.outstanding;
    let mint = |id, amount| Operation::Mint(Mint(fields(id, X_EUR, amount)));
    assert_eq!(
        one(&mut ledger, BANK_A, mint(1, room + 1)),
        ResultCode::ExceedsSupplyCap
    );
    assert_eq!(one(&mut ledger, BANK_A, mint(2, room)), ResultCode::Ok);
    assert_eq!(
        one(&mut ledger, BANK_A, mint(2, room)),
        ResultCode::Ok,
        "a retry"
    );
    assert_eq!(
        supply(&ledger, EUR).outstanding,
        EUR_SUPPLY_CAP,
        "minted once"
    );
    assert_eq!(ledger.account(X_EUR).credits_posted, 1_000_000 + room);
    assert_eq!(
        one(&mut ledger, BANK_A, mint(3, 1)),
        ResultCode::ExceedsSupplyCap
    );

    govern(
        &mut ledger,
        1,
        GovernanceAction::SetSupplyCap {
            asset: EUR,
            cap: EUR_SUPPLY_CAP + 500,
        },
    );
    assert_eq!(one(&mut ledger, BANK_A, mint(4, 500)), ResultCode::Ok);

    // Burning takes money from one of the issuer's own accounts: bank A has none in EUR yet,
    // so it opens one, is paid into it, and burns from it.
    open_bank_a_account(&mut ledger);
    let pay = Operation::posted(9, X_EUR, 1001, EUR, 700);
    assert_eq!(one(&mut ledger, PARTNER_X, pay), ResultCode::Ok);
    let burn = |id, amount| Operation::Burn(Burn(fields(id, 1001, amount)));
    assert_eq!(
        one(&mut ledger, BANK_A, burn(5, 701)),
        ResultCode::ExceedsCredits
    );
    assert_eq!(one(&mut ledger, BANK_A, burn(6, 700)), ResultCode::Ok);
    assert_eq!(supply(&ledger, EUR).outstanding, EUR_SUPPLY_CAP + 500 - 700);
    let partner_burn = Operation::Burn(Burn(fields(7, X_EUR, 1)));
    assert_eq!(
        one(&mut ledger, PARTNER_X, partner_burn),
        ResultCode::IssuerOnly
    );
}

#[test]
fn a_bank_grants_its_partner_a_line_within_the_governed_cap() {
    // Proves a credit line lets debits exceed credits by at most the line, that a bank grants
    // lines only to its own partners and within the cap governance set, that lowering a line
    // below its use blocks new debits but undoes nothing, and that a bank's own account gets
    // its line by governance.
    let mut ledger = Ledger::new();
    let line = |account, line| Operation::SetCreditLine(SetCreditLine { account, line });
    assert_eq!(
        one(&mut ledger, BANK_A, line(X_EUR, 1_000)),
        ResultCode::ExceedsCreditLineCap,
        "no cap set yet"
    );
    govern(
        &mut ledger,
        1,
        GovernanceAction::SetCreditLineCap {
            participant: PARTNER_X,
            asset: EUR,
            cap: 5_000,
        },
    );
    assert_eq!(
        one(&mut ledger, BANK_B, line(X_EUR, 1_000)),
        ResultCode::NotSponsoringBank
    );
    assert_eq!(
        one(&mut ledger, BANK_A, line(X_EUR, 5_001)),
        ResultCode::ExceedsCreditLineCap
    );
    assert_eq!(one(&mut ledger, BANK_A, line(X_EUR, 5_000)), ResultCode::Ok);
    assert_eq!(ledger.account(X_EUR).credit_line, 5_000);
    let held = ledger.account(X_EUR).credits_posted;
    let pay = |id, amount| Operation::posted(id, X_EUR, Y_EUR, EUR, amount);
    assert_eq!(
        one(&mut ledger, PARTNER_X, pay(1, held + 5_001)),
        ResultCode::ExceedsCredits
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, pay(2, held + 4_000)),
        ResultCode::Ok
    );
    // Lowered below its use: the posted transfer stands, the next debit is refused.
    assert_eq!(one(&mut ledger, BANK_A, line(X_EUR, 1_000)), ResultCode::Ok);
    assert_eq!(ledger.transfer(PARTNER_X, 2).unwrap().amount, held + 4_000);
    assert_eq!(
        one(&mut ledger, PARTNER_X, pay(3, 1)),
        ResultCode::ExceedsCredits
    );

    // A bank's own account: only governance grants it a line.
    open_bank_a_account(&mut ledger);
    assert_eq!(
        one(&mut ledger, BANK_A, line(1001, 10)),
        ResultCode::NotSponsoringBank
    );
    govern(
        &mut ledger,
        2,
        GovernanceAction::GrantCreditLine {
            account: 1001,
            line: 300,
        },
    );
    let bank_pays = Operation::posted(4, 1001, Y_EUR, EUR, 300);
    assert_eq!(one(&mut ledger, BANK_A, bank_pays), ResultCode::Ok);
    // The issuance account has no bound to widen: no one grants it a line.
    assert_eq!(
        one(&mut ledger, BANK_A, line(EUR_ISSUANCE, 1)),
        ResultCode::NotSponsoringBank
    );
    let expires_at_ms = ledger.time_ms + 3_600_000;
    let to_issuance = Operation::Propose(Propose {
        proposal: 3,
        expires_at_ms,
        action: GovernanceAction::GrantCreditLine {
            account: EUR_ISSUANCE,
            line: 1,
        },
    });
    assert_eq!(
        one(&mut ledger, BANK_A, to_issuance),
        ResultCode::IssuanceAccount
    );
}
