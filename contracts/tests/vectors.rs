//! Encoding test vectors: docs/encoding-vectors.json must match what this code produces, so
//! another language can check its encoder against the same bytes. Regenerate with
//! UPDATE_VECTORS=1 after a deliberate format change (and bump the format version).
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use tpw_contracts::ops::{
    AcceptExchange, AddKey, ApproveEscrow, ApproveProposal, ApproveTransfer, Burn, CloseCycle,
    CreateEscrow, IssuanceFields, Mint, OfferExchange, OpenAccount, OpenCycle, PostPending,
    Propose, ReleaseEscrow, Reverse, RevokeKey, SetApprovalPolicy, SetCreditLimit, SetCreditLine,
    SetHold, SetOutflowCap, SetTransferMax, SetWebhook, SubmitObligation, Transfer, VoidPending,
};
use tpw_contracts::view::TransactionView;
use tpw_contracts::{transaction_id, Body, Operation, Transaction, TransferKind, Validity};

fn vectors() -> Value {
    let network_id = *blake3::hash(b"tpwalletoec test vectors network").as_bytes();
    let seed = [0x42u8; 32];
    let key = SigningKey::from_bytes(&seed);
    let bodies = vec![
        (
            "posted transfer",
            Body::single(Operation::Transfer(Transfer {
                id: 1,
                debit_account: 301,
                credit_account: 501,
                asset: 1,
                amount: 1_250_000,
                kind: TransferKind::Posted,
                reference: 4711,
            })),
        ),
        (
            "pending transfer",
            Body::single(Operation::Transfer(Transfer {
                id: 2,
                debit_account: 301,
                credit_account: 501,
                asset: 1,
                amount: u128::MAX,
                kind: TransferKind::Pending { timeout_ms: 60_000 },
                reference: 0,
            })),
        ),
        (
            "post pending",
            Body::single(Operation::PostPending(PostPending {
                id: 3,
                pending_id: 2,
                amount: 5,
            })),
        ),
        (
            "void pending",
            Body::single(Operation::VoidPending(VoidPending {
                id: 4,
                pending_id: 2,
            })),
        ),
        (
            "open account",
            Body::single(Operation::OpenAccount(OpenAccount {
                account: 9001,
                owner: 3,
                asset: 2,
                flags: 1,
            })),
        ),
        (
            "regulator hold",
            Body::single(Operation::SetHold(SetHold {
                account: 401,
                frozen: true,
                reason: 12,
            })),
        ),
        (
            "escrow with every condition",
            Body::single(Operation::CreateEscrow(CreateEscrow {
                id: 20,
                debit_account: 301,
                credit_account: 501,
                asset: 1,
                amount: 125_000,
                timeout_ms: 86_400_000,
                terms: tpw_contracts::tx::EscrowTerms {
                    hashlock: Some(*blake3::hash(&[7; 32]).as_bytes()),
                    release_after_ms: 1_761_900_000_000,
                    approvers: vec![1, 7],
                    approvals_required: 2,
                },
            })),
        ),
        (
            "escrow approval",
            Body::single(Operation::ApproveEscrow(ApproveEscrow {
                owner: 3,
                escrow_id: 20,
            })),
        ),
        (
            "escrow release",
            Body::single(Operation::ReleaseEscrow(ReleaseEscrow {
                id: 21,
                owner: 3,
                escrow_id: 20,
                preimage: Some([7; 32]),
            })),
        ),
        (
            "delivery versus payment offer",
            Body::single(Operation::OfferExchange(OfferExchange {
                id: 30,
                debit_account: 301,
                credit_account: 401,
                asset: 1,
                amount: 1_000_000,
                counter_debit_account: 402,
                counter_credit_account: 302,
                counter_asset: 2,
                counter_amount: 1_085_000,
                timeout_ms: 3_600_000,
            })),
        ),
        (
            "exchange acceptance",
            Body::single(Operation::AcceptExchange(AcceptExchange {
                id: 31,
                owner: 3,
                exchange_id: 30,
            })),
        ),
        (
            "netting cycle opened",
            Body::single(Operation::OpenCycle(OpenCycle {
                cycle: 40,
                asset: 1,
                closes_at_ms: 1_761_900_000_000,
                members: vec![3, 5, 7],
            })),
        ),
        (
            "webhook endpoint",
            Body::single(Operation::SetWebhook(SetWebhook {
                endpoint: 0,
                url: "https://acme.example/tpw/events".into(),
            })),
        ),
        (
            "bilateral credit limit",
            Body::single(Operation::SetCreditLimit(SetCreditLimit {
                debtor: 3,
                asset: 1,
                limit: Some(250_000),
            })),
        ),
        (
            "netting obligation",
            Body::single(Operation::SubmitObligation(SubmitObligation {
                id: 41,
                cycle: 40,
                debit_account: 301,
                credit_account: 501,
                amount: 75_000,
            })),
        ),
        (
            "netting cycle closed",
            Body::single(Operation::CloseCycle(CloseCycle {
                cycle: 40,
                carry_to: 42,
            })),
        ),
        (
            "reversal",
            Body::single(Operation::Reverse(Reverse {
                id: 50,
                original_owner: 3,
                original_id: 1,
                amount: 1_250,
            })),
        ),
        (
            "per-transfer maximum",
            Body::single(Operation::SetTransferMax(SetTransferMax {
                asset: 1,
                amount_max: 10_000_000,
            })),
        ),
        (
            "governance proposal: add a voting node",
            Body::single(Operation::Propose(Propose {
                proposal: 7,
                expires_at_ms: 1_700_003_600_000,
                action: tpw_contracts::governance::GovernanceAction::AddNode {
                    node: 4,
                    name: "bank-4".into(),
                    public_key: [0x44; 32],
                    role: tpw_contracts::genesis::NodeRole::Voter,
                    address: "10.0.0.4:7000".into(),
                },
            })),
        ),
        (
            "governance proposal: rotate a participant key",
            Body::single(Operation::Propose(Propose {
                proposal: 8,
                expires_at_ms: 1_700_003_600_000,
                action: tpw_contracts::governance::GovernanceAction::RotateKey {
                    participant: 3,
                    new_key: [0x33; 32],
                    old_key: [0x31; 32],
                    overlap_ms: 86_400_000,
                },
            })),
        ),
        (
            "governance approval",
            Body::single(Operation::ApproveProposal(ApproveProposal { proposal: 7 })),
        ),
        (
            "key revocation",
            Body::single(Operation::RevokeKey(RevokeKey {
                participant: 3,
                key: [0x31; 32],
            })),
        ),
        (
            "daily outflow cap",
            Body::single(Operation::SetOutflowCap(SetOutflowCap {
                participant: 3,
                asset: 1,
                cap: 50_000_000,
            })),
        ),
        (
            "maker-checker threshold",
            Body::single(Operation::SetApprovalPolicy(SetApprovalPolicy {
                account: 301,
                threshold: 1_000_000,
            })),
        ),
        (
            "extra key",
            Body::single(Operation::AddKey(AddKey {
                participant: 3,
                key: [9; 32],
            })),
        ),
        (
            "checker approval",
            Body::single(Operation::ApproveTransfer(ApproveTransfer { id: 2 })),
        ),
        (
            "mint",
            Body::single(Operation::Mint(Mint(IssuanceFields {
                id: 60,
                account: 301,
                asset: 1,
                amount: 5_000_000,
            }))),
        ),
        (
            "burn",
            Body::single(Operation::Burn(Burn(IssuanceFields {
                id: 61,
                account: 101,
                asset: 1,
                amount: 2_500,
            }))),
        ),
        (
            "credit line",
            Body::single(Operation::SetCreditLine(SetCreditLine {
                account: 301,
                line: 100_000,
            })),
        ),
        (
            "linked batch",
            Body::linked(vec![
                Operation::Transfer(Transfer {
                    id: 5,
                    debit_account: 301,
                    credit_account: 501,
                    asset: 1,
                    amount: 10,
                    kind: TransferKind::Posted,
                    reference: 0,
                }),
                Operation::Transfer(Transfer {
                    id: 6,
                    debit_account: 302,
                    credit_account: 502,
                    asset: 2,
                    amount: 20,
                    kind: TransferKind::Posted,
                    reference: 0,
                }),
            ]),
        ),
    ];
    let cases: Vec<Value> = bodies
        .into_iter()
        .enumerate()
        .map(|(index, (name, body))| {
            // Each case its own nonce; every window ends at 2027-01-01T00:00:00Z.
            let validity = Validity::new(0x0102_0304_0506_0700 + index as u64, 1_798_761_600_000);
            let transaction = Transaction::sign(network_id, &key, validity, body);
            let envelope = transaction.to_bytes();
            json!({
                "name": name,
                "transaction": TransactionView::from(&transaction),
                "signed_message_hex": hex::encode(transaction.signed_message()),
                "envelope_hex": hex::encode(&envelope),
                "tx_id_hex": hex::encode(transaction_id(&envelope)),
            })
        })
        .collect();
    json!({
        "format_version": 2,
        "network_id_hex": hex::encode(network_id),
        "signer_seed_hex": hex::encode(seed),
        "signer_public_key_hex": hex::encode(key.verifying_key().to_bytes()),
        "cases": cases,
    })
}

#[test]
fn encoding_matches_the_published_vectors() {
    // Proves the documented vectors are exactly what the encoder and signer produce today.
    // The folder is read when the test runs (cargo sets it), not when it is built: a build
    // cache shared between clones may reuse a binary built in another clone.
    let path = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../docs/encoding-vectors.json");
    let expected = vectors();
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&expected).unwrap() + "\n",
        )
        .unwrap();
    }
    let published: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        published, expected,
        "docs/encoding-vectors.json differs from the encoder"
    );
    let network_id: [u8; 32] = hex::decode(published["network_id_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    for case in published["cases"].as_array().unwrap() {
        let bytes = hex::decode(case["envelope_hex"].as_str().unwrap()).unwrap();
        let decoded = Transaction::from_bytes(&bytes, &network_id).unwrap();
        assert_eq!(
            decoded.to_bytes(),
            bytes,
            "decode-then-encode reproduces {}",
            case["name"]
        );
    }
}
