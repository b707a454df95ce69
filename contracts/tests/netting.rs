//! Multilateral netting: net positions posted instead of gross payments, the gridlock rule's
//! set-aside obligations carried over or rejected, closing by transaction or by block time,
//! each rejection code, and (property) final balances equal to gross settlement of the
//! obligations that settled.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use proptest::prelude::*;
use tpw_contracts::model::{from_bytes, Account};
use tpw_contracts::netting::{cycle_key, obligation_key, CycleRecord, ObligationPointer};
use tpw_contracts::ops::{CloseCycle, OpenCycle, SetCreditLimit, SubmitObligation};
use tpw_contracts::{Body, Operation, ResultCode, StateStore};

fn open(cycle: u128, asset: u32, closes_at_ms: u64) -> Operation {
    open_among(
        cycle,
        asset,
        closes_at_ms,
        &[BANK_A, BANK_B, PARTNER_X, PARTNER_Y],
    )
}

fn open_among(cycle: u128, asset: u32, closes_at_ms: u64, members: &[u64]) -> Operation {
    Operation::OpenCycle(OpenCycle {
        cycle,
        asset,
        closes_at_ms,
        members: members.to_vec(),
    })
}

fn credit(debtor: u64, asset: u32, limit: Option<u128>) -> Operation {
    Operation::SetCreditLimit(SetCreditLimit {
        debtor,
        asset,
        limit,
    })
}

fn owe(id: u128, cycle: u128, debit: u128, credit: u128, amount: u128) -> Operation {
    Operation::SubmitObligation(SubmitObligation {
        id,
        cycle,
        debit_account: debit,
        credit_account: credit,
        amount,
    })
}

fn close(cycle: u128, carry_to: u128) -> Operation {
    Operation::CloseCycle(CloseCycle { cycle, carry_to })
}

fn one(ledger: &mut Ledger, signer: u64, operation: Operation) -> ResultCode {
    let bytes = ledger.sign(signer, Body::single(operation));
    ledger.block(10, vec![bytes]).receipts[0].code
}

fn cycle(ledger: &Ledger, id: u128) -> CycleRecord {
    let bytes = ledger
        .store
        .get(&cycle_key(id))
        .unwrap()
        .expect("cycle exists");
    from_bytes(&bytes, CycleRecord::decode).unwrap()
}

fn pointer(ledger: &Ledger, debtor: u64, id: u128) -> ObligationPointer {
    let bytes = ledger
        .store
        .get(&obligation_key(debtor, id))
        .unwrap()
        .expect("obligation exists");
    from_bytes(&bytes, ObligationPointer::decode).unwrap()
}

fn balance(account: &Account) -> i128 {
    account.credits_posted as i128 - account.debits_posted as i128
}

#[test]
fn only_net_positions_move_and_the_report_shows_the_saving() {
    // Proves X owing Y 100 and Y owing X 70 settles as one net payment of 30 from X to Y,
    // with gross 170, net 30 and liquidity saved 140 in the cycle's report.
    let mut ledger = Ledger::new();
    let closes = ledger.time_ms + 60_000;
    assert_eq!(
        one(&mut ledger, BANK_A, open(1, EUR, closes)),
        ResultCode::Ok
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, owe(1, 1, X_EUR, Y_EUR, 100)),
        ResultCode::Ok
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, owe(1, 1, Y_EUR, X_EUR, 70)),
        ResultCode::Ok
    );
    let (x, y) = (ledger.account(X_EUR), ledger.account(Y_EUR));
    assert_eq!(one(&mut ledger, BANK_A, close(1, 0)), ResultCode::Ok);
    assert_eq!(ledger.account(X_EUR).debits_posted, x.debits_posted + 30);
    assert_eq!(ledger.account(X_EUR).credits_posted, x.credits_posted);
    assert_eq!(ledger.account(Y_EUR).credits_posted, y.credits_posted + 30);
    let report = cycle(&ledger, 1).report.expect("settled");
    assert_eq!(
        (report.gross, report.net, report.settled, report.rejected),
        (170, 30, 2, 0)
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, owe(2, 1, X_EUR, Y_EUR, 1)),
        ResultCode::CycleClosed
    );
}

#[test]
fn the_gridlock_rule_sets_aside_the_short_debtors_latest_obligation() {
    // Proves that when X (100 USD) would owe a net 200 USD, its latest obligation is set
    // aside, the rest settles, and the set-aside obligation is carried to the named cycle (or
    // rejected when none is named).
    let mut ledger = Ledger::new();
    let closes = ledger.time_ms + 60_000;
    for id in [1, 2, 3] {
        assert_eq!(
            one(&mut ledger, BANK_B, open(id, USD, closes)),
            ResultCode::Ok
        );
    }
    assert_eq!(
        one(&mut ledger, PARTNER_X, owe(1, 1, X_USD, Y_USD, 500)),
        ResultCode::Ok
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, owe(1, 1, Y_USD, X_USD, 300)),
        ResultCode::Ok
    );
    assert_eq!(one(&mut ledger, BANK_B, close(1, 2)), ResultCode::Ok);
    let report = cycle(&ledger, 1).report.unwrap();
    assert_eq!(
        (
            report.settled,
            report.carried_over,
            report.gross,
            report.net
        ),
        (1, 1, 300, 300)
    );
    assert_eq!(ledger.account(X_USD).credits_posted, 100 + 300);
    assert_eq!(cycle(&ledger, 2).count, 1, "carried into cycle 2");
    assert_eq!(pointer(&ledger, PARTNER_X, 1).cycle, 2);

    // In cycle 2 X now has 400 and owes 500: nothing can settle, and nothing is carried.
    assert_eq!(one(&mut ledger, BANK_B, close(2, 0)), ResultCode::Ok);
    let report = cycle(&ledger, 2).report.unwrap();
    assert_eq!((report.settled, report.rejected), (0, 1));
    assert!(pointer(&ledger, PARTNER_X, 1).rejected);
    assert_eq!(ledger.account(X_USD).debits_posted, 0);
}

#[test]
fn a_cycle_closes_by_itself_at_its_close_time() {
    // Proves the block whose time passes the close time settles the cycle without any
    // transaction, and obligations touching a held account are set aside.
    let mut ledger = Ledger::new();
    let closes = ledger.time_ms + 1_000;
    assert_eq!(
        one(&mut ledger, BANK_A, open(7, EUR, closes)),
        ResultCode::Ok
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, owe(1, 7, X_EUR, Y_EUR, 40)),
        ResultCode::Ok
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, owe(2, 7, X_EUR, Y_FROZEN, 5)),
        ResultCode::Ok
    );
    let outcome = ledger.block(5_000, Vec::new());
    assert_eq!(
        outcome.effects,
        vec![tpw_contracts::BlockEffect::CycleSettled { cycle: 7 }]
    );
    let report = cycle(&ledger, 7).report.expect("closed by block time");
    assert_eq!((report.settled, report.rejected, report.gross), (1, 1, 40));
    assert_eq!(
        ledger.account(Y_FROZEN).credits_posted,
        10,
        "a held account never moves"
    );
}

#[test]
fn each_netting_rejection_has_its_code() {
    // Proves who may open and close, the cycle and obligation checks, and idempotent retries.
    let mut ledger = Ledger::new();
    let closes = ledger.time_ms + 60_000;
    let past = ledger.time_ms;
    let cases = [
        (PARTNER_X, open(1, EUR, closes), ResultCode::NotAuthorized),
        (BANK_A, open(1, 99, closes), ResultCode::UnknownAsset),
        (BANK_A, open(1, EUR, past), ResultCode::InvalidCloseTime),
        (BANK_A, open(1, EUR, closes), ResultCode::Ok),
        (BANK_A, open(1, EUR, closes), ResultCode::Ok),
        (BANK_B, open(1, EUR, closes), ResultCode::CycleExists),
        (OPERATOR, open(2, USD, closes), ResultCode::Ok),
        (PARTNER_X, owe(1, 9, X_EUR, Y_EUR, 5), ResultCode::NotCycle),
        (
            PARTNER_X,
            owe(1, 1, X_USD, Y_USD, 5),
            ResultCode::AssetMismatch,
        ),
        (
            PARTNER_X,
            owe(1, 1, Y_EUR, X_EUR, 5),
            ResultCode::NotAuthorized,
        ),
        (
            PARTNER_X,
            owe(1, 1, X_EUR, X_EUR, 5),
            ResultCode::SameAccount,
        ),
        (
            PARTNER_X,
            owe(1, 1, X_EUR, Y_EUR, 0),
            ResultCode::ZeroAmount,
        ),
        (
            PARTNER_X,
            owe(1, 1, X_EUR, Y_EUR, (1 << 96) + 1),
            ResultCode::Overflow,
        ),
        (PARTNER_X, owe(1, 1, X_EUR, Y_EUR, 5), ResultCode::Ok),
        (PARTNER_X, owe(1, 1, X_EUR, Y_EUR, 5), ResultCode::Ok),
        (
            PARTNER_X,
            owe(1, 1, X_EUR, Y_EUR, 6),
            ResultCode::IdExistsWithDifferentBody,
        ),
        (
            REGULATOR,
            owe(2, 1, X_EUR, Y_EUR, 5),
            ResultCode::NotAuthorized,
        ),
        (PARTNER_Y, close(1, 0), ResultCode::NotAuthorized),
        (BANK_A, close(1, 2), ResultCode::InvalidCarryOver),
        (BANK_A, close(1, 1), ResultCode::InvalidCarryOver),
        (BANK_A, close(1, 77), ResultCode::NotCycle),
        (OPERATOR, close(1, 0), ResultCode::Ok),
        (BANK_A, close(1, 0), ResultCode::CycleClosed),
    ];
    for (index, (signer, operation, expected)) in cases.into_iter().enumerate() {
        assert_eq!(
            one(&mut ledger, signer, operation),
            expected,
            "case {index}"
        );
    }
    assert_eq!(
        cycle(&ledger, 1).report.unwrap().settled,
        1,
        "the retry queued nothing twice"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn netting_ends_where_gross_settlement_of_the_settled_obligations_ends(
        obligations in proptest::collection::vec((0..3usize, 0..3usize, 1..400_000u128), 1..40)
    ) {
        // Proves the gridlock rule and net posting leave every balance exactly where posting
        // each settled obligation on its own would, and that debits equal credits throughout
        // (the fixture checks conservation after every block).
        let accounts = [(PARTNER_X, X_EUR), (PARTNER_Y, Y_EUR), (BANK_A, EUR_ISSUANCE)];
        let mut netted = Ledger::new();
        let closes = netted.time_ms + 600_000;
        prop_assert_eq!(one(&mut netted, BANK_A, open(1, EUR, closes)), ResultCode::Ok);
        let mut submitted = Vec::new();
        for (index, (from, to, amount)) in obligations.iter().enumerate() {
            if from == to {
                continue;
            }
            let (debtor, debit) = accounts[*from];
            let credit = accounts[*to].1;
            let id = index as u128;
            prop_assert_eq!(one(&mut netted, debtor, owe(id, 1, debit, credit, *amount)), ResultCode::Ok);
            submitted.push((debtor, id, debit, credit, *amount));
        }
        let before: Vec<i128> = accounts
            .iter()
            .map(|(_, account)| balance(&netted.account(*account)))
            .collect();
        prop_assert_eq!(one(&mut netted, BANK_A, close(1, 0)), ResultCode::Ok);
        let report = cycle(&netted, 1).report.unwrap();
        // Gross settlement of the settled obligations, one by one: each moves its amount from
        // its debtor's balance to its creditor's.
        let mut expected = before;
        let mut settled_sum = 0u128;
        let mut settled = 0u32;
        for (debtor, id, debit, credit, amount) in &submitted {
            if pointer(&netted, *debtor, *id).rejected {
                continue;
            }
            settled += 1;
            settled_sum += amount;
            let position = |account: u128| accounts.iter().position(|(_, id)| *id == account).unwrap();
            expected[position(*debit)] -= *amount as i128;
            expected[position(*credit)] += *amount as i128;
        }
        prop_assert_eq!(report.settled, settled);
        prop_assert_eq!(report.gross, settled_sum);
        for (index, (_, account)) in accounts.iter().enumerate() {
            prop_assert_eq!(balance(&netted.account(*account)), expected[index]);
        }
        // What settled is fundable: no account with the no-overdraft flag went below zero.
        prop_assert!(balance(&netted.account(X_EUR)) >= 0);
        prop_assert!(balance(&netted.account(Y_EUR)) >= 0);
    }
}

#[test]
fn a_cycle_of_thousands_of_unfunded_obligations_is_set_aside_whole() {
    // Proves the gridlock rule sets aside every obligation of a debtor with nothing to pay,
    // one by one from the latest, and still settles the funded rest (a cycle crafted to be
    // expensive to close stays cheap: each round re-ranks only the two accounts it changes).
    let mut ledger = Ledger::new();
    let closes = ledger.time_ms + 600_000;
    assert_eq!(
        one(&mut ledger, BANK_B, open(1, USD, closes)),
        ResultCode::Ok
    );
    let mut batch = Vec::new();
    for id in 0..3_000u128 {
        // X has 100 USD: the first 100 obligations of 1 could be funded, none of 10.
        let operation = owe(id, 1, X_USD, Y_USD, 10);
        batch.push(ledger.sign(PARTNER_X, Body::single(operation)));
    }
    batch.push(ledger.sign(PARTNER_Y, Body::single(owe(0, 1, Y_USD, X_USD, 25))));
    ledger.block(10, batch);
    assert_eq!(one(&mut ledger, BANK_B, close(1, 0)), ResultCode::Ok);
    let report = cycle(&ledger, 1).report.unwrap();
    assert_eq!(report.settled + report.rejected, 3_001);
    assert_eq!(
        report.settled, 13,
        "Y's 25 and twelve of X's tens: X ends at 100 + 25 - 120 = 5"
    );
    assert!(balance(&ledger.account(X_USD)) >= 0);
}

#[test]
fn only_members_queue_obligations_and_are_paid_through_a_cycle() {
    // Proves a cycle names who may use it: a non-member can neither queue an obligation in it
    // nor be paid through it (so nobody can fill someone else's cycle), members must be
    // participants that may pay, and a retry must name the same members.
    let mut ledger = Ledger::new();
    let closes = ledger.time_ms + 60_000;
    let cases = [
        (
            BANK_A,
            open_among(1, EUR, closes, &[BANK_A, REGULATOR]),
            ResultCode::InvalidMember,
        ),
        (
            BANK_A,
            open_among(1, EUR, closes, &[BANK_A, 77]),
            ResultCode::InvalidMember,
        ),
        (
            BANK_A,
            open_among(1, EUR, closes, &[BANK_A, PARTNER_X]),
            ResultCode::Ok,
        ),
        (
            BANK_A,
            open_among(1, EUR, closes, &[BANK_A, PARTNER_X]),
            ResultCode::Ok,
        ),
        (
            BANK_A,
            open_among(1, EUR, closes, &[BANK_A, PARTNER_Y]),
            ResultCode::CycleExists,
        ),
        (
            BANK_A,
            open_among(1, EUR, closes, &[BANK_A, PARTNER_X, PARTNER_Y]),
            ResultCode::CycleExists,
        ),
        (
            PARTNER_Y,
            owe(1, 1, Y_EUR, X_EUR, 5),
            ResultCode::NotCycleMember,
        ),
        (
            PARTNER_X,
            owe(1, 1, X_EUR, Y_EUR, 5),
            ResultCode::NotCycleMember,
        ),
        (PARTNER_X, owe(1, 1, X_EUR, EUR_ISSUANCE, 5), ResultCode::Ok),
    ];
    for (index, (signer, operation, expected)) in cases.into_iter().enumerate() {
        assert_eq!(
            one(&mut ledger, signer, operation),
            expected,
            "case {index}"
        );
    }
    assert_eq!(cycle(&ledger, 1).members, 2);
    assert_eq!(cycle(&ledger, 1).count, 1);
}

#[test]
fn a_creditor_caps_what_a_debtor_may_owe_it_net_in_a_cycle() {
    // Proves the bilateral credit limit Y grants X bounds X's net debt to Y within each cycle
    // (obligations Y owes X make room), that only paying participants set limits for others,
    // that removing the limit lifts it, and that positions vanish once the cycle settles.
    let mut ledger = Ledger::new();
    let closes = ledger.time_ms + 60_000;
    let cases = [
        (
            REGULATOR,
            credit(PARTNER_X, EUR, Some(100)),
            ResultCode::InvalidCreditLimit,
        ),
        (
            PARTNER_Y,
            credit(PARTNER_Y, EUR, Some(100)),
            ResultCode::InvalidCreditLimit,
        ),
        (
            PARTNER_Y,
            credit(REGULATOR, EUR, Some(100)),
            ResultCode::InvalidCreditLimit,
        ),
        (
            PARTNER_Y,
            credit(77, EUR, Some(100)),
            ResultCode::UnknownParticipant,
        ),
        (
            PARTNER_Y,
            credit(PARTNER_X, 99, Some(100)),
            ResultCode::UnknownAsset,
        ),
        (PARTNER_Y, credit(PARTNER_X, EUR, Some(100)), ResultCode::Ok),
        (BANK_A, open(1, EUR, closes), ResultCode::Ok),
        (BANK_A, open(2, EUR, closes), ResultCode::Ok),
        (PARTNER_X, owe(1, 1, X_EUR, Y_EUR, 60), ResultCode::Ok),
        (
            PARTNER_X,
            owe(2, 1, X_EUR, Y_EUR, 50),
            ResultCode::CreditLimitExceeded,
        ),
        (PARTNER_Y, owe(1, 1, Y_EUR, X_EUR, 30), ResultCode::Ok),
        (PARTNER_X, owe(2, 1, X_EUR, Y_EUR, 50), ResultCode::Ok),
        (
            PARTNER_X,
            owe(3, 1, X_EUR, Y_EUR, 21),
            ResultCode::CreditLimitExceeded,
        ),
        // Another cycle keeps its own position; Y owes X without limit (X granted none).
        (PARTNER_X, owe(4, 2, X_EUR, Y_EUR, 100), ResultCode::Ok),
        (PARTNER_Y, owe(2, 2, Y_EUR, X_EUR, 5_000), ResultCode::Ok),
        (PARTNER_Y, credit(PARTNER_X, EUR, None), ResultCode::Ok),
        (PARTNER_X, owe(5, 1, X_EUR, Y_EUR, 21), ResultCode::Ok),
        (PARTNER_Y, credit(PARTNER_X, EUR, Some(0)), ResultCode::Ok),
        (
            PARTNER_X,
            owe(6, 1, X_EUR, Y_EUR, 1),
            ResultCode::CreditLimitExceeded,
        ),
        (PARTNER_Y, owe(3, 1, Y_EUR, X_EUR, 1), ResultCode::Ok),
    ];
    for (index, (signer, operation, expected)) in cases.into_iter().enumerate() {
        assert_eq!(
            one(&mut ledger, signer, operation),
            expected,
            "case {index}"
        );
    }
    let positions = |ledger: &Ledger| ledger.store.scan(b"B", b"C", 100).unwrap().len();
    assert_eq!(positions(&ledger), 2, "one position per cycle for X and Y");
    assert_eq!(one(&mut ledger, BANK_A, close(1, 0)), ResultCode::Ok);
    assert_eq!(positions(&ledger), 1);
    assert_eq!(cycle(&ledger, 1).report.unwrap().settled, 5);
}

#[test]
fn carried_obligations_meet_the_target_cycles_members_and_limits() {
    // Proves unfunded obligations move to the named cycle only where their parties are members
    // and the creditor's limit holds there; the others are rejected as unfunded.
    let mut ledger = Ledger::new();
    let closes = ledger.time_ms + 60_000;
    let setup = [
        (BANK_B, open(1, USD, closes)),
        (BANK_B, open_among(2, USD, closes, &[BANK_B, PARTNER_X])),
        (BANK_B, open(3, USD, closes)),
        // X holds 100 USD: each of these is unfunded alone. Y's limit for X comes after the
        // first (a limit applies to obligations queued from then on).
        (PARTNER_X, owe(1, 1, X_USD, Y_USD, 500)),
        (PARTNER_Y, credit(PARTNER_X, USD, Some(400))),
        (PARTNER_X, owe(2, 1, X_USD, USD_ISSUANCE, 300)),
        (PARTNER_X, owe(3, 3, X_USD, Y_USD, 300)),
        (PARTNER_X, owe(4, 3, X_USD, USD_ISSUANCE, 200)),
    ];
    for (index, (signer, operation)) in setup.into_iter().enumerate() {
        assert_eq!(
            one(&mut ledger, signer, operation),
            ResultCode::Ok,
            "setup {index}"
        );
    }
    // Cycle 2 does not include Y: only the obligation to Bank B's account moves there.
    assert_eq!(one(&mut ledger, BANK_B, close(3, 2)), ResultCode::Ok);
    let report = cycle(&ledger, 3).report.unwrap();
    assert_eq!((report.carried_over, report.rejected), (1, 1));
    assert!(pointer(&ledger, PARTNER_X, 3).rejected);
    assert_eq!(pointer(&ledger, PARTNER_X, 4).cycle, 2);
    // Y's limit for X (400) refuses carrying 500 into a cycle where Y is a member.
    assert_eq!(
        one(&mut ledger, BANK_B, open(4, USD, closes)),
        ResultCode::Ok
    );
    assert_eq!(one(&mut ledger, BANK_B, close(1, 4)), ResultCode::Ok);
    let report = cycle(&ledger, 1).report.unwrap();
    assert_eq!((report.carried_over, report.rejected), (1, 1));
    assert!(pointer(&ledger, PARTNER_X, 1).rejected);
    assert_eq!(pointer(&ledger, PARTNER_X, 2).cycle, 4);
}
