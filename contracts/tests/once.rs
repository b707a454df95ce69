//! Every intended submission applies once: an operation repeated on purpose (signed again, so a
//! new nonce) applies each time, and a retry (the same envelope bytes) never applies twice.

mod common;

use common::*;
use tpw_contracts::approval::policy_key;
use tpw_contracts::limits_rules::{credit_limit_key, outflow_cap_key};
use tpw_contracts::ops::{
    AddKey, RevokeKey, SetApprovalPolicy, SetCreditLimit, SetHold, SetOutflowCap, SetWebhook,
};
use tpw_contracts::state::{hold_key, signer_key};
use tpw_contracts::{webhook_key, Body, Operation, ResultCode, StateStore};

/// One kind of operation without a client-chosen id: who signs it, the operation, the one that
/// undoes it, and the state record both change.
struct Case {
    name: &'static str,
    signer: u64,
    apply: Operation,
    undo: Operation,
    record: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let hold = |frozen: bool| {
        Operation::SetHold(SetHold {
            account: X_EUR,
            frozen,
            reason: u16::from(frozen),
        })
    };
    let webhook = |url: &str| {
        Operation::SetWebhook(SetWebhook {
            endpoint: 0,
            url: url.into(),
        })
    };
    let cap = |cap| {
        Operation::SetOutflowCap(SetOutflowCap {
            participant: PARTNER_X,
            asset: EUR,
            cap,
        })
    };
    let policy = |threshold| {
        Operation::SetApprovalPolicy(SetApprovalPolicy {
            account: X_EUR,
            threshold,
        })
    };
    let limit = |limit| {
        Operation::SetCreditLimit(SetCreditLimit {
            debtor: PARTNER_Y,
            asset: EUR,
            limit,
        })
    };
    vec![
        Case {
            name: "set hold: hold, lift, hold again",
            signer: REGULATOR,
            apply: hold(true),
            undo: hold(false),
            record: hold_key(X_EUR),
        },
        Case {
            name: "set webhook: remove, set, remove again",
            signer: PARTNER_X,
            apply: webhook(""),
            undo: webhook("https://hooks.example.com/x"),
            record: webhook_key(PARTNER_X, 0),
        },
        Case {
            name: "set outflow cap",
            signer: BANK_A,
            apply: cap(500),
            undo: cap(0),
            record: outflow_cap_key(PARTNER_X, EUR),
        },
        Case {
            name: "set approval policy",
            signer: BANK_A,
            apply: policy(1_000),
            undo: policy(0),
            record: policy_key(X_EUR),
        },
        Case {
            name: "set credit limit",
            signer: PARTNER_X,
            apply: limit(Some(10_000)),
            undo: limit(None),
            record: credit_limit_key(PARTNER_X, PARTNER_Y, EUR),
        },
    ]
}

fn run(ledger: &mut Ledger, bytes: Vec<u8>) -> ResultCode {
    ledger.block(10, vec![bytes]).receipts[0].code
}

#[test]
fn an_operation_repeated_on_purpose_applies_each_time_and_a_retry_once() {
    // Proves, for each operation kind without a client-chosen id, that apply, undo, apply
    // again (each signed anew) leaves the state of the first apply (the review's hold, lift,
    // hold again that left the account unfrozen), and that the same envelope bytes sent again
    // are refused as replayed and change no state record at all.
    for case in cases() {
        let mut ledger = Ledger::new();
        // Whether the record is there: a hold records when it was placed, so the bytes differ.
        let record = |ledger: &Ledger| ledger.store.get(&case.record).unwrap().is_some();
        if case.name.starts_with("set webhook") {
            // Removing needs something to remove.
            let set = ledger.sign(case.signer, Body::single(case.undo.clone()));
            assert_eq!(run(&mut ledger, set), ResultCode::Ok, "{}", case.name);
        }
        let first = ledger.sign(case.signer, Body::single(case.apply.clone()));
        assert_eq!(run(&mut ledger, first), ResultCode::Ok, "{}", case.name);
        let applied = record(&ledger);
        let undo = ledger.sign(case.signer, Body::single(case.undo.clone()));
        assert_eq!(run(&mut ledger, undo), ResultCode::Ok, "{}", case.name);
        assert_ne!(
            record(&ledger),
            applied,
            "{}: the undo changed it",
            case.name
        );
        let again = ledger.sign(case.signer, Body::single(case.apply.clone()));
        assert_eq!(
            run(&mut ledger, again.clone()),
            ResultCode::Ok,
            "{}",
            case.name
        );
        assert_eq!(record(&ledger), applied, "{}: applied again", case.name);

        let undo = ledger.sign(case.signer, Body::single(case.undo.clone()));
        assert_eq!(run(&mut ledger, undo), ResultCode::Ok, "{}", case.name);
        let undone = record(&ledger);
        let root = ledger.head.commitment.root();
        assert_eq!(
            run(&mut ledger, again),
            ResultCode::Replayed,
            "{}: a retry of the third submission",
            case.name
        );
        assert_eq!(record(&ledger), undone, "{}: not applied twice", case.name);
        assert_eq!(ledger.head.commitment.root(), root, "{}", case.name);
    }
}

#[test]
fn key_operations_apply_once_per_submission() {
    // Proves adding and revoking a key: a retry of either is replayed with no change, and the
    // key once revoked is never registered again (the rule answers, not a silent replay).
    let mut ledger = Ledger::new();
    let new_key = key(40).verifying_key().to_bytes();
    let add = Operation::AddKey(AddKey {
        participant: PARTNER_X,
        key: new_key,
    });
    let revoke = Operation::RevokeKey(RevokeKey {
        participant: PARTNER_X,
        key: new_key,
    });
    let added = ledger.sign(BANK_A, Body::single(add.clone()));
    assert_eq!(run(&mut ledger, added.clone()), ResultCode::Ok);
    assert!(ledger.store.get(&signer_key(&new_key)).unwrap().is_some());
    assert_eq!(run(&mut ledger, added), ResultCode::Replayed);
    let revoked = ledger.sign(BANK_A, Body::single(revoke));
    assert_eq!(run(&mut ledger, revoked.clone()), ResultCode::Ok);
    assert!(ledger.store.get(&signer_key(&new_key)).unwrap().is_none());
    let root = ledger.head.commitment.root();
    assert_eq!(run(&mut ledger, revoked), ResultCode::Replayed);
    assert_eq!(ledger.head.commitment.root(), root);
    let add_again = ledger.sign(BANK_A, Body::single(add));
    assert_ne!(run(&mut ledger, add_again), ResultCode::Replayed);
    assert!(ledger.store.get(&signer_key(&new_key)).unwrap().is_none());
}

#[test]
fn a_transfer_id_answers_its_original_when_signed_again() {
    // Proves the rule of operations keyed by a client-chosen id: the same transfer signed
    // again with a new nonce (a gateway that restarted) answers ok and pays once; the same id
    // with another body is refused; and the same bytes again are replayed.
    let mut ledger = Ledger::new();
    let pay = |amount| Body::single(Operation::posted(70, X_EUR, Y_EUR, EUR, amount));
    let first = ledger.sign(PARTNER_X, pay(25));
    assert_eq!(run(&mut ledger, first.clone()), ResultCode::Ok);
    let resigned = ledger.sign(PARTNER_X, pay(25));
    assert_eq!(run(&mut ledger, resigned), ResultCode::Ok);
    let other = ledger.sign(PARTNER_X, pay(26));
    assert_eq!(
        run(&mut ledger, other),
        ResultCode::IdExistsWithDifferentBody
    );
    assert_eq!(run(&mut ledger, first), ResultCode::Replayed);
    assert_eq!(ledger.account(X_EUR).debits_posted, 25, "paid once");
}

#[test]
fn the_window_bounds_what_the_ledger_remembers() {
    // Proves an envelope applies only inside its window, that the ledger's record of it goes
    // once the window has passed (the state holds no replay record), and that a retry after
    // that is refused as expired rather than applied again.
    let mut ledger = Ledger::new();
    let body = || Body::single(Operation::posted(71, X_EUR, Y_EUR, EUR, 5));
    let until = ledger.time_ms + 1_000;
    let envelope = |ledger: &Ledger, nonce, until| {
        tpw_contracts::Transaction::sign(
            ledger.head.network_id,
            &key(PARTNER_X),
            tpw_contracts::Validity::new(nonce, until),
            body(),
        )
        .to_bytes()
    };
    let too_long = envelope(&ledger, 1, ledger.time_ms + 3_600_011);
    assert_eq!(run(&mut ledger, too_long), ResultCode::ValidityTooLong);
    let bytes = envelope(&ledger, 2, until);
    assert_eq!(run(&mut ledger, bytes.clone()), ResultCode::Ok);
    let replays = |ledger: &Ledger| ledger.store.scan(b"r", b"s", usize::MAX).unwrap().len();
    assert_eq!(replays(&ledger), 1);
    ledger.block(2_000, vec![]);
    assert_eq!(replays(&ledger), 0, "pruned once the window passed");
    assert_eq!(run(&mut ledger, bytes), ResultCode::Expired);
    assert_eq!(ledger.account(X_EUR).debits_posted, 5);
}
