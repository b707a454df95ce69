//! Behaviour of apply(): every operation's success path and each rejection code.

mod common;

use common::*;
use tpw_contracts::model::{account_flags, TransferState};
use tpw_contracts::ops::{OpenAccount, PostPending, SetHold, SetWebhook, Transfer, VoidPending};
use tpw_contracts::{Body, Operation, ResultCode, StateStore, TransferKind};

fn transfer(id: u128, debit: u128, credit: u128, asset: u32, amount: u128) -> Operation {
    Operation::Transfer(Transfer {
        id,
        debit_account: debit,
        credit_account: credit,
        asset,
        amount,
        kind: TransferKind::Posted,
        reference: 0,
    })
}

fn pending(id: u128, debit: u128, credit: u128, amount: u128, timeout_ms: u64) -> Operation {
    Operation::Transfer(Transfer {
        id,
        debit_account: debit,
        credit_account: credit,
        asset: EUR,
        amount,
        kind: TransferKind::Pending { timeout_ms },
        reference: 0,
    })
}

fn one(ledger: &mut Ledger, signer: u64, operation: Operation) -> ResultCode {
    let bytes = ledger.sign(signer, Body::single(operation));
    ledger.block(10, vec![bytes]).receipts[0].code
}

#[test]
fn posted_transfer_moves_money_and_is_recorded() {
    // Proves a valid transfer debits and credits exactly the amount and records the id.
    let mut ledger = Ledger::new();
    assert_eq!(
        one(&mut ledger, PARTNER_X, transfer(1, X_EUR, Y_EUR, EUR, 250)),
        ResultCode::Ok
    );
    assert_eq!(ledger.account(X_EUR).debits_posted, 250);
    assert_eq!(ledger.account(Y_EUR).credits_posted, 500_250);
    let record = ledger.transfer(PARTNER_X, 1).unwrap();
    assert_eq!(
        (record.state, record.amount, record.height),
        (TransferState::Posted, 250, 1)
    );
}

#[test]
fn each_rejection_has_its_code_and_changes_no_balance() {
    // Proves every business rule refuses with its own stable code and leaves balances alone.
    let cases: Vec<(u64, Operation, ResultCode)> = vec![
        (
            PARTNER_X,
            transfer(10, X_EUR, Y_EUR, EUR, 1_000_001),
            ResultCode::ExceedsCredits,
        ),
        (
            PARTNER_X,
            transfer(11, X_EUR, 999, EUR, 1),
            ResultCode::UnknownAccount,
        ),
        (
            PARTNER_X,
            transfer(12, X_EUR, Y_USD, EUR, 1),
            ResultCode::AssetMismatch,
        ),
        (
            PARTNER_X,
            transfer(13, X_EUR, Y_EUR, USD, 1),
            ResultCode::AssetMismatch,
        ),
        (
            PARTNER_X,
            transfer(14, X_EUR, X_EUR, EUR, 1),
            ResultCode::SameAccount,
        ),
        (
            PARTNER_X,
            transfer(15, X_EUR, Y_EUR, EUR, 0),
            ResultCode::ZeroAmount,
        ),
        (
            PARTNER_X,
            transfer(16, X_EUR, Y_FROZEN, EUR, 1),
            ResultCode::AccountFrozen,
        ),
        (
            PARTNER_X,
            transfer(17, Y_EUR, X_EUR, EUR, 1),
            ResultCode::NotAuthorized,
        ),
        (
            REGULATOR,
            transfer(18, X_EUR, Y_EUR, EUR, 1),
            ResultCode::NotAuthorized,
        ),
        (
            BANK_A,
            Operation::Mint(tpw_contracts::ops::Mint(
                tpw_contracts::ops::IssuanceFields {
                    id: 19,
                    account: X_EUR,
                    asset: EUR,
                    amount: u128::MAX,
                },
            )),
            ResultCode::Overflow,
        ),
        (
            PARTNER_X,
            pending(20, X_EUR, Y_EUR, 1, 0),
            ResultCode::InvalidTimeout,
        ),
        (
            PARTNER_X,
            Operation::PostPending(PostPending {
                id: 21,
                pending_id: 999,
                amount: 1,
            }),
            ResultCode::PendingNotFound,
        ),
        (
            PARTNER_X,
            Operation::VoidPending(VoidPending {
                id: 22,
                pending_id: 999,
            }),
            ResultCode::PendingNotFound,
        ),
    ];
    for (signer, operation, expected) in cases {
        let mut ledger = Ledger::new();
        let before: Vec<_> = [X_EUR, Y_EUR, EUR_ISSUANCE, Y_FROZEN]
            .iter()
            .map(|id| ledger.account(*id))
            .collect();
        assert_eq!(
            one(&mut ledger, signer, operation.clone()),
            expected,
            "{operation:?}"
        );
        let after: Vec<_> = [X_EUR, Y_EUR, EUR_ISSUANCE, Y_FROZEN]
            .iter()
            .map(|id| ledger.account(*id))
            .collect();
        assert_eq!(before, after, "a rejected {operation:?} changed a balance");
    }
}

#[test]
fn an_inflow_bound_alone_is_no_bound() {
    // Proves credits_must_not_exceed_debits bounds inflows, not outflows: an account with only
    // it would be an overdraft, so it is refused, and with the outflow bound too it is invalid.
    let mut ledger = Ledger::new();
    let open = |account, flags| {
        Operation::OpenAccount(OpenAccount {
            account,
            owner: PARTNER_X,
            asset: EUR,
            flags,
        })
    };
    let inflow_only = open(3100, account_flags::CREDITS_MUST_NOT_EXCEED_DEBITS);
    assert_eq!(
        one(&mut ledger, PARTNER_X, inflow_only),
        ResultCode::UnboundedAccount
    );
    let both = open(
        3101,
        account_flags::CREDITS_MUST_NOT_EXCEED_DEBITS
            | account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS,
    );
    assert_eq!(one(&mut ledger, PARTNER_X, both), ResultCode::InvalidFlags);
}

#[test]
fn envelope_failures_are_receipts_not_errors() {
    // Proves malformed bytes, a foreign network, a bad signature and an unknown key each get a code.
    let mut ledger = Ledger::new();
    let good = ledger.sign(PARTNER_X, Body::single(transfer(1, X_EUR, Y_EUR, EUR, 1)));
    let mut bad_signature = good.clone();
    *bad_signature.last_mut().unwrap() ^= 1;
    let mut foreign = good.clone();
    foreign[1] ^= 1;
    let stranger = ledger.sign_with(&key(77), Body::single(transfer(1, X_EUR, Y_EUR, EUR, 1)));
    let outcome = ledger.block(
        10,
        vec![vec![2, 2, 3], foreign, bad_signature, stranger, good],
    );
    let codes: Vec<ResultCode> = outcome
        .receipts
        .iter()
        .map(|receipt| receipt.code)
        .collect();
    assert_eq!(
        codes,
        vec![
            ResultCode::MalformedTransaction,
            ResultCode::WrongNetwork,
            ResultCode::BadSignature,
            ResultCode::UnknownSigner,
            ResultCode::Ok
        ]
    );
    assert_eq!(ledger.account(X_EUR).debits_posted, 1);
}

#[test]
fn retries_are_idempotent_and_conflicting_reuse_is_refused() {
    // Proves the same id and body returns the original outcome once applied, and a new body is refused.
    let mut ledger = Ledger::new();
    assert_eq!(
        one(&mut ledger, PARTNER_X, transfer(1, X_EUR, Y_EUR, EUR, 100)),
        ResultCode::Ok
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, transfer(1, X_EUR, Y_EUR, EUR, 100)),
        ResultCode::Ok
    );
    assert_eq!(
        ledger.account(X_EUR).debits_posted,
        100,
        "a retry must not apply twice"
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, transfer(1, X_EUR, Y_EUR, EUR, 101)),
        ResultCode::IdExistsWithDifferentBody
    );
    // A rejection is an outcome too: the retry gets it again even after funds arrive.
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            transfer(2, X_EUR, Y_EUR, EUR, 1_200_000)
        ),
        ResultCode::ExceedsCredits
    );
    assert_eq!(
        one(
            &mut ledger,
            BANK_A,
            Operation::Mint(tpw_contracts::ops::Mint(
                tpw_contracts::ops::IssuanceFields {
                    id: 3,
                    account: X_EUR,
                    asset: EUR,
                    amount: 400_000,
                }
            ))
        ),
        ResultCode::Ok
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            transfer(2, X_EUR, Y_EUR, EUR, 1_200_000)
        ),
        ResultCode::ExceedsCredits
    );
    // Ids are per participant: another participant may use the same number.
    assert_eq!(
        one(&mut ledger, PARTNER_Y, transfer(1, Y_EUR, X_EUR, EUR, 7)),
        ResultCode::Ok
    );
}

#[test]
fn pending_transfers_post_void_and_expire() {
    // Proves the two-phase lifecycle: reserve, partial post, void, and expiry by block time.
    let mut ledger = Ledger::new();
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            pending(1, X_EUR, Y_EUR, 600_000, 1_000)
        ),
        ResultCode::Ok
    );
    assert_eq!(ledger.account(X_EUR).debits_pending, 600_000);
    // The reservation counts against the no-overdraft limit.
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            transfer(2, X_EUR, Y_EUR, EUR, 500_000)
        ),
        ResultCode::ExceedsCredits
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::PostPending(PostPending {
                id: 3,
                pending_id: 1,
                amount: 600_001
            })
        ),
        ResultCode::ExceedsPendingAmount
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::PostPending(PostPending {
                id: 4,
                pending_id: 1,
                amount: 400_000
            })
        ),
        ResultCode::Ok
    );
    let x = ledger.account(X_EUR);
    assert_eq!((x.debits_pending, x.debits_posted), (0, 400_000));
    assert_eq!(ledger.account(Y_EUR).credits_posted, 900_000);
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::PostPending(PostPending {
                id: 5,
                pending_id: 1,
                amount: 1
            })
        ),
        ResultCode::PendingAlreadyPosted
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::VoidPending(VoidPending {
                id: 6,
                pending_id: 1
            })
        ),
        ResultCode::PendingAlreadyPosted
    );

    assert_eq!(
        one(&mut ledger, PARTNER_X, pending(7, X_EUR, Y_EUR, 10, 1_000)),
        ResultCode::Ok
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::VoidPending(VoidPending {
                id: 8,
                pending_id: 7
            })
        ),
        ResultCode::Ok
    );
    assert_eq!(ledger.account(X_EUR).debits_pending, 0);
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::PostPending(PostPending {
                id: 9,
                pending_id: 7,
                amount: 10
            })
        ),
        ResultCode::PendingAlreadyVoided
    );

    assert_eq!(
        one(&mut ledger, PARTNER_X, pending(10, X_EUR, Y_EUR, 10, 100)),
        ResultCode::Ok
    );
    let outcome = ledger.block(100, vec![]);
    assert_eq!(
        outcome.expired,
        vec![(PARTNER_X, 10)],
        "expiry fires in the first block at or past the deadline"
    );
    assert_eq!(
        outcome.effects,
        vec![tpw_contracts::BlockEffect::PendingExpired {
            owner: PARTNER_X,
            id: 10
        }],
        "the block records the expiry as an effect"
    );
    assert_eq!(
        ledger.transfer(PARTNER_X, 10).unwrap().state,
        TransferState::PendingExpired
    );
    assert_eq!(ledger.account(X_EUR).debits_pending, 0);
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::PostPending(PostPending {
                id: 11,
                pending_id: 10,
                amount: 10
            })
        ),
        ResultCode::PendingExpired
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::PostPending(PostPending {
                id: 12,
                pending_id: 2,
                amount: 1
            })
        ),
        ResultCode::PendingNotFound
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, transfer(13, X_EUR, Y_EUR, EUR, 1)),
        ResultCode::Ok
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::VoidPending(VoidPending {
                id: 14,
                pending_id: 13
            })
        ),
        ResultCode::NotPending
    );
}

#[test]
fn linked_batches_apply_all_or_nothing() {
    // Proves a failing leg undoes the whole batch, the failing leg is named, and retries are idempotent.
    let mut ledger = Ledger::new();
    let legs = vec![
        transfer(1, X_EUR, Y_EUR, EUR, 10),
        transfer(2, X_USD, Y_USD, USD, 1_000),
    ];
    let outcome = ledger.block(10, vec![ledger.sign(PARTNER_X, Body::linked(legs))]);
    assert_eq!(
        outcome.receipts[0].operations,
        vec![ResultCode::LinkedBatchFailed, ResultCode::ExceedsCredits]
    );
    assert_eq!(
        ledger.account(X_EUR).debits_posted,
        0,
        "the first leg was rolled back"
    );

    let legs = vec![
        transfer(3, X_EUR, Y_EUR, EUR, 10),
        transfer(4, X_USD, Y_USD, USD, 100),
    ];
    let batch = ledger.sign(PARTNER_X, Body::linked(legs.clone()));
    assert_eq!(
        ledger.block(10, vec![batch.clone()]).receipts[0].code,
        ResultCode::Ok
    );
    assert_eq!(
        ledger.block(10, vec![batch]).receipts[0].code,
        ResultCode::Replayed
    );
    let signed_again = ledger.sign(PARTNER_X, Body::linked(legs.clone()));
    assert_eq!(
        ledger.block(10, vec![signed_again]).receipts[0].operations,
        vec![ResultCode::Ok, ResultCode::Ok]
    );
    assert_eq!(
        ledger.account(X_USD).debits_posted,
        100,
        "the retried batch applied once"
    );

    let reuse = vec![
        transfer(3, X_EUR, Y_EUR, EUR, 10),
        transfer(5, X_EUR, Y_EUR, EUR, 1),
    ];
    let outcome = ledger.block(10, vec![ledger.sign(PARTNER_X, Body::linked(reuse))]);
    assert_eq!(
        outcome.receipts[0].operations,
        vec![ResultCode::IdExists, ResultCode::LinkedBatchFailed]
    );
    let twice = vec![
        transfer(6, X_EUR, Y_EUR, EUR, 1),
        transfer(6, X_EUR, Y_EUR, EUR, 1),
    ];
    let outcome = ledger.block(10, vec![ledger.sign(PARTNER_X, Body::linked(twice))]);
    assert_eq!(
        outcome.receipts[0].operations,
        vec![ResultCode::LinkedBatchFailed, ResultCode::DuplicateInBatch]
    );

    // A batch may open an account and pay into it, and reserve then post within itself.
    let legs = vec![
        Operation::OpenAccount(OpenAccount {
            account: 3200,
            owner: PARTNER_X,
            asset: EUR,
            flags: account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS,
        }),
        pending(7, X_EUR, 3200, 50, 1_000),
        Operation::PostPending(PostPending {
            id: 8,
            pending_id: 7,
            amount: 50,
        }),
    ];
    assert_eq!(
        ledger
            .block(10, vec![ledger.sign(PARTNER_X, Body::linked(legs))])
            .receipts[0]
            .code,
        ResultCode::Ok
    );
    assert_eq!(ledger.account(3200).credits_posted, 50);
}

#[test]
fn accounts_open_by_owner_or_its_bank_only() {
    // Proves who may open accounts and that reopening is idempotent only with identical fields.
    let mut ledger = Ledger::new();
    let open = |account, owner, flags| {
        Operation::OpenAccount(OpenAccount {
            account,
            owner,
            asset: EUR,
            flags: flags | account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS,
        })
    };
    assert_eq!(
        one(&mut ledger, PARTNER_X, open(1, PARTNER_X, 0)),
        ResultCode::Ok
    );
    assert_eq!(
        one(&mut ledger, BANK_A, open(2, PARTNER_X, 0)),
        ResultCode::Ok
    );
    assert_eq!(
        one(&mut ledger, BANK_B, open(3, PARTNER_X, 0)),
        ResultCode::NotAuthorized
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, open(4, PARTNER_X, 0)),
        ResultCode::NotAuthorized
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, open(1, PARTNER_X, 0)),
        ResultCode::Ok
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            Operation::OpenAccount(OpenAccount {
                account: 1,
                owner: PARTNER_X,
                asset: USD,
                flags: account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            })
        ),
        ResultCode::AccountExists
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, open(5, 42, 0)),
        ResultCode::UnknownParticipant
    );
    assert_eq!(
        one(
            &mut ledger,
            PARTNER_X,
            open(6, PARTNER_X, account_flags::FROZEN)
        ),
        ResultCode::InvalidFlags
    );
    let unknown_asset = Operation::OpenAccount(OpenAccount {
        account: 7,
        owner: PARTNER_X,
        asset: 9,
        flags: account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS,
    });
    assert_eq!(
        one(&mut ledger, PARTNER_X, unknown_asset),
        ResultCode::UnknownAsset
    );
}

#[test]
fn block_time_never_goes_backwards() {
    // Proves a leader stamp earlier than the previous block still yields a later effective time.
    let mut ledger = Ledger::new();
    let first = ledger.block(1_000, vec![]).header.time_ms;
    ledger.time_ms -= 5_000;
    let second = ledger.block(0, vec![]).header.time_ms;
    assert_eq!(second, first + 1);
}

#[test]
fn a_retried_failed_batch_still_reports_failure() {
    // Proves a receipt never says ok when its operations did not apply, including retries of
    // failed linked batches and of their members alone.
    let mut ledger = Ledger::new();
    let legs = vec![
        transfer(1, X_EUR, Y_EUR, EUR, 10),
        transfer(2, X_USD, Y_USD, USD, 1_000),
    ];
    let batch = ledger.sign(PARTNER_X, Body::linked(legs.clone()));
    assert_eq!(
        ledger.block(10, vec![batch.clone()]).receipts[0].code,
        ResultCode::ExceedsCredits
    );
    let replayed = ledger.block(10, vec![batch]).receipts[0].clone();
    assert_eq!(replayed.code, ResultCode::Replayed);
    let retried = ledger.block(10, vec![ledger.sign(PARTNER_X, Body::linked(legs))]);
    assert_eq!(retried.receipts[0].code, ResultCode::ExceedsCredits);
    let member = one(&mut ledger, PARTNER_X, transfer(1, X_EUR, Y_EUR, EUR, 10));
    assert_eq!(
        member,
        ResultCode::LinkedBatchFailed,
        "the member alone keeps its recorded outcome"
    );

    let open_bad = Operation::OpenAccount(OpenAccount {
        account: 3300,
        owner: PARTNER_X,
        asset: 99,
        flags: 0,
    });
    let legs = vec![open_bad, transfer(3, X_EUR, Y_EUR, EUR, 1)];
    let outcome = ledger.block(10, vec![ledger.sign(PARTNER_X, Body::linked(legs))]);
    assert_eq!(outcome.receipts[0].code, ResultCode::UnknownAsset);
    let open_fixed = Operation::OpenAccount(OpenAccount {
        account: 3300,
        owner: PARTNER_X,
        asset: EUR,
        flags: 0,
    });
    let legs = vec![open_fixed, transfer(3, X_EUR, Y_EUR, EUR, 1)];
    let outcome = ledger.block(10, vec![ledger.sign(PARTNER_X, Body::linked(legs))]);
    assert_ne!(
        outcome.receipts[0].code,
        ResultCode::Ok,
        "a failed id cannot be made to look applied"
    );
}

#[test]
fn an_overdue_pending_transfer_cannot_be_posted_while_expiries_queue() {
    // Proves that when more pending transfers are due than one block expires, the ones still
    // waiting for their expiry are already refused as expired.
    let mut ledger = Ledger::new();
    let count = tpw_contracts::limits::EXPIRIES_PER_BLOCK_MAX as u128 + 4;
    let reservations: Vec<Vec<u8>> = (0..count)
        .map(|id| ledger.sign(PARTNER_X, Body::single(pending(id, X_EUR, Y_EUR, 1, 100))))
        .collect();
    let outcome = ledger.block(10, reservations);
    assert!(outcome
        .receipts
        .iter()
        .all(|receipt| receipt.code == ResultCode::Ok));
    let last = count - 1;
    let post = ledger.sign(
        PARTNER_X,
        Body::single(Operation::PostPending(PostPending {
            id: count,
            pending_id: last,
            amount: 1,
        })),
    );
    let outcome = ledger.block(200, vec![post]);
    assert_eq!(
        outcome.expired.len(),
        tpw_contracts::limits::EXPIRIES_PER_BLOCK_MAX
    );
    assert_eq!(outcome.receipts[0].code, ResultCode::PendingExpired);
    let outcome = ledger.block(10, vec![]);
    assert_eq!(
        outcome.expired.len(),
        4,
        "the remaining expiries run in the next block"
    );
    assert_eq!(ledger.account(X_EUR).debits_pending, 0);
}

#[test]
fn a_block_record_checks_on_its_own_and_tampering_is_found() {
    // Proves a fetched block passes the stand-alone check exactly as applied, and that a
    // changed transaction, a receipt whose verdict differs from the signature check, or a
    // foreign network is refused with its reason.
    let mut ledger = Ledger::new();
    let good = ledger.sign(PARTNER_X, Body::single(transfer(1, X_EUR, Y_EUR, EUR, 1)));
    let mut bad_signature = good.clone();
    *bad_signature.last_mut().unwrap() ^= 1;
    let transactions = vec![vec![9, 9], bad_signature, good];
    let outcome = ledger.block(10, transactions.clone());
    let proposal = tpw_contracts::Proposal {
        attestation: None,
        proposer_time_ms: outcome.header.proposer_time_ms,
        transactions,
        webhooks: Vec::new(),
    };
    let network = ledger.head.network_id;
    let check = tpw_contracts::check_block_record;
    assert_eq!(
        check(
            &network,
            &outcome.header,
            &proposal,
            &outcome.receipts,
            &outcome.effects
        ),
        Ok(())
    );

    let mut changed = proposal.clone();
    changed.transactions[0] = vec![9, 8];
    assert!(matches!(
        check(
            &network,
            &outcome.header,
            &changed,
            &outcome.receipts,
            &outcome.effects
        ),
        Err(tpw_contracts::BlockCheckError::RootMismatch {
            root: "transactions",
            ..
        })
    ));

    let mut receipts = outcome.receipts.clone();
    receipts[1].code = ResultCode::Ok;
    assert!(matches!(
        check(
            &network,
            &outcome.header,
            &proposal,
            &receipts,
            &outcome.effects
        ),
        Err(tpw_contracts::BlockCheckError::RootMismatch {
            root: "receipts",
            ..
        })
    ));
    let mut header = outcome.header.clone();
    header.receipts_root = tpw_contracts::block::merkle_root(
        &receipts
            .iter()
            .map(|receipt| receipt.hash())
            .collect::<Vec<_>>(),
    );
    assert!(matches!(
        check(&network, &header, &proposal, &receipts, &outcome.effects),
        Err(tpw_contracts::BlockCheckError::VerdictMismatch { position: 1, .. })
    ));
    let invented = [tpw_contracts::BlockEffect::CycleSettled { cycle: 1 }];
    assert!(matches!(
        check(
            &network,
            &outcome.header,
            &proposal,
            &outcome.receipts,
            &invented
        ),
        Err(tpw_contracts::BlockCheckError::RootMismatch {
            root: "effects",
            ..
        })
    ));
    assert!(matches!(
        check(
            &[7; 32],
            &outcome.header,
            &proposal,
            &outcome.receipts,
            &outcome.effects
        ),
        Err(tpw_contracts::BlockCheckError::WrongNetwork { .. })
    ));
}

#[test]
fn a_regulator_holds_and_releases_an_account_and_nobody_else_can() {
    // Proves only a regulator may place or lift a hold, that a hold needs a reason code, that a
    // held account can be neither debited nor credited while the hold record names who placed
    // it, why and when, and that lifting it restores payments.
    let mut ledger = Ledger::new();
    let hold = |frozen: bool, reason: u16| {
        Operation::SetHold(SetHold {
            account: X_EUR,
            frozen,
            reason,
        })
    };
    for signer in [PARTNER_X, BANK_A, OPERATOR] {
        assert_eq!(
            one(&mut ledger, signer, hold(true, 7)),
            ResultCode::RegulatorOnly
        );
    }
    assert_eq!(
        one(&mut ledger, REGULATOR, hold(true, 0)),
        ResultCode::InvalidHoldReason
    );
    assert_eq!(
        one(&mut ledger, REGULATOR, hold(false, 0)),
        ResultCode::NotHeld
    );
    let unknown = Operation::SetHold(SetHold {
        account: 999_999,
        frozen: true,
        reason: 7,
    });
    assert_eq!(
        one(&mut ledger, REGULATOR, unknown),
        ResultCode::UnknownAccount
    );

    assert_eq!(one(&mut ledger, REGULATOR, hold(true, 7)), ResultCode::Ok);
    assert!(ledger.account(X_EUR).has(account_flags::FROZEN));
    let record = ledger
        .store
        .get(&tpw_contracts::state::hold_key(X_EUR))
        .unwrap()
        .expect("the hold is recorded");
    let record =
        tpw_contracts::model::from_bytes(&record, tpw_contracts::model::HoldRecord::decode)
            .unwrap();
    assert_eq!(
        (record.reason, record.regulator, record.height),
        (7, REGULATOR, ledger.head.height)
    );
    let before = ledger.account(X_EUR);
    assert_eq!(
        one(&mut ledger, PARTNER_X, transfer(1, X_EUR, Y_EUR, EUR, 5)),
        ResultCode::AccountFrozen
    );
    assert_eq!(
        one(&mut ledger, PARTNER_Y, transfer(2, Y_EUR, X_EUR, EUR, 5)),
        ResultCode::AccountFrozen
    );
    assert_eq!(
        ledger.account(X_EUR),
        before,
        "a held account does not move"
    );

    assert_eq!(
        one(&mut ledger, PARTNER_X, hold(false, 1)),
        ResultCode::RegulatorOnly
    );
    assert_eq!(one(&mut ledger, REGULATOR, hold(false, 1)), ResultCode::Ok);
    assert!(!ledger.account(X_EUR).has(account_flags::FROZEN));
    assert!(ledger
        .store
        .get(&tpw_contracts::state::hold_key(X_EUR))
        .unwrap()
        .is_none());
    assert_eq!(
        one(&mut ledger, PARTNER_X, transfer(3, X_EUR, Y_EUR, EUR, 5)),
        ResultCode::Ok
    );
}

#[test]
fn a_webhook_registration_checks_its_endpoint_and_url() {
    // Proves an endpoint is 0 to 3 with an http(s) URL of printable bytes, that the record
    // keeps the registering height and the URL, and that an empty URL removes it.
    let mut ledger = Ledger::new();
    let set = |endpoint: u16, url: &str| {
        Operation::SetWebhook(SetWebhook {
            endpoint,
            url: url.into(),
        })
    };
    for (endpoint, url, expected) in [
        (4, "https://x.example/hook", ResultCode::InvalidWebhook),
        (0, "ftp://x.example/hook", ResultCode::InvalidWebhook),
        (0, "https://", ResultCode::InvalidWebhook),
        (0, "https://x.example/a b", ResultCode::InvalidWebhook),
        (0, "https://x.example/hook", ResultCode::Ok),
        (3, "http://127.0.0.1:9000/hook", ResultCode::Ok),
    ] {
        assert_eq!(
            one(&mut ledger, PARTNER_X, set(endpoint, url)),
            expected,
            "{endpoint} {url}"
        );
    }
    let key = tpw_contracts::webhook_key(PARTNER_X, 0);
    let value = ledger.store.get(&key).unwrap().expect("registered");
    assert_eq!(&value[8..], b"https://x.example/hook");
    assert_eq!(one(&mut ledger, PARTNER_X, set(0, "")), ResultCode::Ok);
    assert!(ledger.store.get(&key).unwrap().is_none(), "removed");
}
