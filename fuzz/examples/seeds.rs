//! Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/): valid inputs of every
//! kind each target decodes, so the fuzzer starts deep inside the formats instead of guessing
//! them. Run `cargo run --release --locked -p tpw-fuzz --example seeds`. The envelopes of
//! docs/encoding-vectors.json are included as they are; the rest is built with the crates'
//! own encoders, so the seeds follow the formats as they change.

use ed25519_dalek::SigningKey;
use protobuf::Message as _;
use std::path::Path;
use tpw_consensus::raft_types::{Entry, EntryType, Message, MessageType, Snapshot};
use tpw_consensus::wire::forward::{encode_reply, encode_request, ForwardRefusal};
use tpw_consensus::wire::{SnapshotDescriptor, SnapshotRequest, SnapshotResponse};
use tpw_contracts::block::{merkle_root, DeadLetter, WebhookProgress};
use tpw_contracts::ops::{
    AcceptExchange, AddKey, ApproveEscrow, ApproveTransfer, CloseCycle, CreateEscrow,
    OfferExchange, OpenAccount, OpenCycle, PostPending, ReleaseEscrow, Reverse, SetApprovalPolicy,
    SetCreditLimit, SetHold, SetOutflowCap, SetTransferMax, SetWebhook, SubmitObligation, Transfer,
    VoidPending,
};
use tpw_contracts::tx::EscrowTerms;
use tpw_contracts::{
    transaction_id, BlockEffect, BlockHeader, BlockRecord, Body, Operation, Proposal, Receipt,
    ResultCode, Transaction, TransferKind,
};

type Seeds = Vec<(String, Vec<u8>)>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vectors: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("../docs/encoding-vectors.json"),
    )?)?;
    let network_id: [u8; 32] = hex::decode(
        vectors["network_id_hex"]
            .as_str()
            .ok_or("network_id_hex is missing")?,
    )?
    .try_into()
    .map_err(|_| "network_id_hex is not 32 bytes")?;
    let mut envelopes = Vec::new();
    for case in vectors["cases"].as_array().ok_or("cases is missing")? {
        let name = case["name"].as_str().ok_or("a case has no name")?;
        let envelope = case["envelope_hex"]
            .as_str()
            .ok_or("a case has no envelope")?;
        envelopes.push((
            format!("vector-{}", name.replace(' ', "-")),
            hex::decode(envelope)?,
        ));
    }
    let key = SigningKey::from_bytes(&[7; 32]);
    for (name, body) in bodies() {
        let envelope = Transaction::sign(
            network_id,
            &key,
            tpw_contracts::Validity::new(7, 1_000_000),
            body,
        )
        .to_bytes();
        envelopes.push((format!("signed-{name}"), envelope));
    }
    let record = block_record(network_id, &envelopes);
    write(root, "transaction_decode", &envelopes)?;
    write(root, "block_decode", &block_seeds(&envelopes, &record))?;
    write(
        root,
        "peer_messages",
        &peer_seeds(network_id, &envelopes, &record),
    )?;
    write(root, "api_bodies", &api_seeds(&envelopes)?)?;
    Ok(())
}

fn write(root: &Path, target: &str, seeds: &Seeds) -> std::io::Result<()> {
    let folder = root.join("corpus").join(target);
    std::fs::create_dir_all(&folder)?;
    for (name, bytes) in seeds {
        std::fs::write(folder.join(format!("seed-{name}")), bytes)?;
    }
    eprintln!("{target}: {} seeds", seeds.len());
    Ok(())
}

/// One body per operation kind, and a linked batch.
fn bodies() -> Vec<(&'static str, Body)> {
    let transfer = |id| {
        Operation::Transfer(Transfer {
            id,
            debit_account: 301,
            credit_account: 501,
            asset: 1,
            amount: 1_250_000,
            kind: TransferKind::Posted,
            reference: 4711,
        })
    };
    let operations = vec![
        (
            "open-account",
            Operation::OpenAccount(OpenAccount {
                account: 302,
                owner: 3,
                asset: 1,
                flags: 1,
            }),
        ),
        ("transfer", transfer(1)),
        (
            "mint",
            Operation::Mint(tpw_contracts::ops::Mint(
                tpw_contracts::ops::IssuanceFields {
                    id: 60,
                    account: 301,
                    asset: 1,
                    amount: 1_000,
                },
            )),
        ),
        (
            "burn",
            Operation::Burn(tpw_contracts::ops::Burn(
                tpw_contracts::ops::IssuanceFields {
                    id: 61,
                    account: 101,
                    asset: 1,
                    amount: 1_000,
                },
            )),
        ),
        (
            "credit-line",
            Operation::SetCreditLine(tpw_contracts::ops::SetCreditLine {
                account: 301,
                line: 5_000,
            }),
        ),
        (
            "pending",
            Operation::Transfer(Transfer {
                id: 2,
                debit_account: 301,
                credit_account: 501,
                asset: 1,
                amount: 5,
                kind: TransferKind::Pending { timeout_ms: 60_000 },
                reference: 0,
            }),
        ),
        (
            "post-pending",
            Operation::PostPending(PostPending {
                id: 3,
                pending_id: 2,
                amount: 5,
            }),
        ),
        (
            "void-pending",
            Operation::VoidPending(VoidPending {
                id: 4,
                pending_id: 2,
            }),
        ),
        (
            "escrow",
            Operation::CreateEscrow(CreateEscrow {
                id: 5,
                debit_account: 301,
                credit_account: 501,
                asset: 1,
                amount: 10,
                timeout_ms: 86_400_000,
                terms: EscrowTerms {
                    hashlock: Some([9; 32]),
                    release_after_ms: 1_700_000_000_000,
                    approvers: vec![7, 8, 9],
                    approvals_required: 2,
                },
            }),
        ),
        (
            "approve-escrow",
            Operation::ApproveEscrow(ApproveEscrow {
                owner: 3,
                escrow_id: 5,
            }),
        ),
        (
            "release-escrow",
            Operation::ReleaseEscrow(ReleaseEscrow {
                id: 6,
                owner: 3,
                escrow_id: 5,
                preimage: Some([1; 32]),
            }),
        ),
        (
            "offer-exchange",
            Operation::OfferExchange(OfferExchange {
                id: 7,
                debit_account: 301,
                credit_account: 502,
                asset: 1,
                amount: 100,
                counter_debit_account: 601,
                counter_credit_account: 303,
                counter_asset: 2,
                counter_amount: 90,
                timeout_ms: 60_000,
            }),
        ),
        (
            "accept-exchange",
            Operation::AcceptExchange(AcceptExchange {
                id: 8,
                owner: 3,
                exchange_id: 7,
            }),
        ),
        (
            "open-cycle",
            Operation::OpenCycle(OpenCycle {
                cycle: 1,
                asset: 1,
                closes_at_ms: 1_700_000_000_000,
                members: vec![3, 4, 5],
            }),
        ),
        (
            "obligation",
            Operation::SubmitObligation(SubmitObligation {
                id: 9,
                cycle: 1,
                debit_account: 301,
                credit_account: 401,
                amount: 50,
            }),
        ),
        (
            "close-cycle",
            Operation::CloseCycle(CloseCycle {
                cycle: 1,
                carry_to: 2,
            }),
        ),
        (
            "reverse",
            Operation::Reverse(Reverse {
                id: 10,
                original_owner: 3,
                original_id: 1,
                amount: 5,
            }),
        ),
        (
            "transfer-max",
            Operation::SetTransferMax(SetTransferMax {
                asset: 1,
                amount_max: 1_000_000,
            }),
        ),
        (
            "credit-limit",
            Operation::SetCreditLimit(SetCreditLimit {
                debtor: 4,
                asset: 1,
                limit: Some(500),
            }),
        ),
        (
            "webhook",
            Operation::SetWebhook(SetWebhook {
                endpoint: 1,
                url: "https://example.com/hook".into(),
            }),
        ),
        (
            "outflow-cap",
            Operation::SetOutflowCap(SetOutflowCap {
                participant: 3,
                asset: 1,
                cap: 1000,
            }),
        ),
        (
            "approval-policy",
            Operation::SetApprovalPolicy(SetApprovalPolicy {
                account: 301,
                threshold: 100,
            }),
        ),
        (
            "add-key",
            Operation::AddKey(AddKey {
                participant: 3,
                key: [5; 32],
            }),
        ),
        (
            "approve-transfer",
            Operation::ApproveTransfer(ApproveTransfer { id: 11 }),
        ),
        (
            "hold",
            Operation::SetHold(SetHold {
                account: 301,
                frozen: true,
                reason: 7,
            }),
        ),
    ];
    let mut bodies: Vec<(&'static str, Body)> = operations
        .into_iter()
        .map(|(name, operation)| (name, Body::single(operation)))
        .collect();
    bodies.push(("linked", Body::linked(vec![transfer(12), transfer(13)])));
    bodies
}

/// A block record that passes `check_block_record`: two valid transactions, one with a broken
/// signature and one malformed envelope, with receipts, effects and roots to match.
fn block_record(network_id: [u8; 32], envelopes: &Seeds) -> BlockRecord {
    let mut transactions: Vec<Vec<u8>> = envelopes
        .iter()
        .take(2)
        .map(|(_, bytes)| bytes.clone())
        .collect();
    let mut forged = envelopes[0].1.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    transactions.push(forged);
    transactions.push(vec![2, 2, 3]);
    let codes = [
        ResultCode::Ok,
        ResultCode::Ok,
        ResultCode::BadSignature,
        ResultCode::MalformedTransaction,
    ];
    let receipts: Vec<Receipt> = transactions
        .iter()
        .zip(codes)
        .map(|(bytes, code)| Receipt {
            tx_id: transaction_id(bytes),
            code,
            operations: if code == ResultCode::Ok {
                vec![ResultCode::Ok]
            } else {
                Vec::new()
            },
        })
        .collect();
    let effects = vec![
        BlockEffect::PendingExpired { owner: 3, id: 2 },
        BlockEffect::CycleSettled { cycle: 1 },
    ];
    let proposal = Proposal {
        proposer_time_ms: 1_700_000_000_000,
        attestation: Some((4, [6; 32])),
        transactions,
        webhooks: vec![WebhookProgress {
            participant: 3,
            endpoint: 1,
            delivered_height: 4,
            delivered_sequence: 2,
            dead: vec![DeadLetter {
                height: 3,
                sequence: 1,
                attempts: 8,
                error: "connection refused".into(),
            }],
            revived: vec![(2, 0)],
        }],
    };
    let header = BlockHeader {
        network_id,
        height: 5,
        previous_hash: [6; 32],
        time_ms: 1_700_000_000_000,
        proposer_time_ms: proposal.proposer_time_ms,
        transaction_count: proposal.transactions.len() as u32,
        transactions_root: merkle_root(
            &proposal
                .transactions
                .iter()
                .map(|bytes| transaction_id(bytes))
                .collect::<Vec<_>>(),
        ),
        receipts_root: merkle_root(&receipts.iter().map(Receipt::hash).collect::<Vec<_>>()),
        effects_root: merkle_root(&effects.iter().map(BlockEffect::hash).collect::<Vec<_>>()),
        state_root: [8; 32],
    };
    let record = BlockRecord {
        header,
        proposal,
        receipts,
        effects,
    };
    assert_eq!(
        tpw_contracts::check_block_record(
            &network_id,
            &record.header,
            &record.proposal,
            &record.receipts,
            &record.effects,
        ),
        Ok(()),
        "the seed record is consistent"
    );
    record
}

fn block_seeds(envelopes: &Seeds, record: &BlockRecord) -> Seeds {
    let empty = Proposal::default();
    let few = Proposal {
        proposer_time_ms: 42,
        attestation: None,
        transactions: envelopes.iter().map(|(_, bytes)| bytes.clone()).collect(),
        webhooks: Vec::new(),
    };
    vec![
        ("proposal-empty".into(), empty.to_bytes()),
        ("proposal-all-operations".into(), few.to_bytes()),
        ("proposal-webhooks".into(), record.proposal.to_bytes()),
        ("header".into(), record.header.to_bytes()),
        ("record".into(), record.to_bytes()),
    ]
}

fn raft_message(kind: MessageType, from: u64) -> Message {
    let mut message = Message::default();
    message.set_msg_type(kind);
    message.from = from;
    message.to = 1;
    message.term = 3;
    message.index = 7;
    message.log_term = 3;
    message.commit = 6;
    message
}

fn peer_seeds(network_id: [u8; 32], envelopes: &Seeds, record: &BlockRecord) -> Seeds {
    let mut seeds = Seeds::new();
    let mut append = raft_message(MessageType::MsgAppend, 2);
    let mut block = Entry::default();
    block.set_entry_type(EntryType::EntryNormal);
    block.term = 3;
    block.index = 8;
    block.data = record.proposal.to_bytes().into();
    let empty = Entry {
        term: 3,
        index: 9,
        ..Default::default()
    };
    append.mut_entries().push(block);
    append.mut_entries().push(empty);
    let descriptor = SnapshotDescriptor {
        network_id,
        height: 5,
        head_hash: record.header.hash(),
        state_root: record.header.state_root,
        applied_index: 9,
    };
    let mut snapshot = raft_message(MessageType::MsgSnapshot, 2);
    let mut content = Snapshot {
        data: descriptor.to_bytes().into(),
        ..Default::default()
    };
    content.mut_metadata().index = 9;
    content.mut_metadata().term = 3;
    snapshot.set_snapshot(content);
    let messages = [
        ("raft-append", append),
        ("raft-snapshot", snapshot),
        ("raft-heartbeat", raft_message(MessageType::MsgHeartbeat, 2)),
        ("raft-vote", raft_message(MessageType::MsgRequestVote, 3)),
        (
            "raft-append-response",
            raft_message(MessageType::MsgAppendResponse, 4),
        ),
    ];
    for (name, message) in messages {
        let bytes = message.write_to_bytes().expect("a raft message encodes");
        seeds.push((name.into(), bytes));
    }
    let some: Vec<Vec<u8>> = envelopes
        .iter()
        .take(3)
        .map(|(_, bytes)| bytes.clone())
        .collect();
    seeds.push(("forward-request".into(), encode_request(&some)));
    let replies = [
        ("queued", Ok(())),
        ("not-leader", Err(ForwardRefusal::NotLeader(Some(2)))),
        ("overloaded", Err(ForwardRefusal::Overloaded)),
        (
            "refused",
            Err(ForwardRefusal::Refused {
                code: "bad_signature".into(),
                message: "the signature does not verify".into(),
            }),
        ),
    ];
    for (name, reply) in replies {
        seeds.push((format!("forward-reply-{name}"), encode_reply(&reply)));
    }
    let requests = [
        (
            "records",
            SnapshotRequest::Records {
                index: 9,
                after: Some(b"A\x00\x00\x01".to_vec()),
            },
        ),
        (
            "blocks",
            SnapshotRequest::Blocks {
                top: 5,
                count_max: 16,
            },
        ),
    ];
    for (name, request) in requests {
        seeds.push((format!("snapshot-request-{name}"), request.to_bytes()));
    }
    let responses = [
        (
            "records",
            SnapshotResponse::Records {
                records: vec![
                    (b"A1".to_vec(), b"account".to_vec()),
                    (b"P3".to_vec(), b"participant".to_vec()),
                ],
                done: true,
            },
        ),
        ("blocks", SnapshotResponse::Blocks(vec![record.to_bytes()])),
        ("gone", SnapshotResponse::Gone),
        ("unavailable", SnapshotResponse::Unavailable("busy".into())),
    ];
    for (name, response) in responses {
        seeds.push((format!("snapshot-response-{name}"), response.to_bytes()));
    }
    seeds.push(("snapshot-descriptor".into(), descriptor.to_bytes()));
    seeds
}

fn api_seeds(envelopes: &Seeds) -> Result<Seeds, serde_json::Error> {
    let hexes: Vec<String> = envelopes
        .iter()
        .map(|(_, bytes)| hex::encode(bytes))
        .collect();
    let bodies = [
        (
            "submit-wait",
            serde_json::json!({ "transactions": hexes[..2], "wait": true, "timeout_ms": 5000 }),
        ),
        (
            "submit-one",
            serde_json::json!({ "transactions": [hexes[0]] }),
        ),
        (
            "submit-many",
            serde_json::json!({ "transactions": hexes, "wait": false }),
        ),
    ];
    let mut seeds = Seeds::new();
    for (name, body) in bodies {
        seeds.push((name.into(), serde_json::to_vec(&body)?));
    }
    seeds.push(("decimal-max".into(), u128::MAX.to_string().into_bytes()));
    seeds.push(("decimal-zeros".into(), b"000301".to_vec()));
    Ok(seeds)
}
