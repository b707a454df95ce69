//! Governance: proposals signed by bank members take effect when M of the N active bank members
//! approve before expiry; onboarding, offboarding, key rotation with overlap, revocation, the
//! node set and network parameters all change through it.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use tpw_contracts::genesis::NodeRole;
use tpw_contracts::governance::{
    node_records, proposal_key, GovernanceAction, ProposalRecord, ProposalStatus,
};
use tpw_contracts::model::{from_bytes, Role};
use tpw_contracts::ops::{AddKey, ApproveProposal, Propose, RevokeKey, SetTransferMax, SetWebhook};
use tpw_contracts::{Body, Operation, ResultCode, StateStore};

const HOUR_MS: u64 = 3_600_000;

fn one(ledger: &mut Ledger, signer: u64, operation: Operation) -> ResultCode {
    let bytes = ledger.sign(signer, Body::single(operation));
    ledger.block(10, vec![bytes]).receipts[0].code
}

fn signed_by(ledger: &mut Ledger, key: &SigningKey, operation: Operation) -> ResultCode {
    let bytes = ledger.sign_with(key, Body::single(operation));
    ledger.block(10, vec![bytes]).receipts[0].code
}

fn propose(ledger: &mut Ledger, signer: u64, id: u64, action: GovernanceAction) -> ResultCode {
    let expires_at_ms = ledger.time_ms + HOUR_MS;
    one(
        ledger,
        signer,
        Operation::Propose(Propose {
            proposal: id,
            expires_at_ms,
            action,
        }),
    )
}

fn approve(ledger: &mut Ledger, signer: u64, id: u64) -> ResultCode {
    one(
        ledger,
        signer,
        Operation::ApproveProposal(ApproveProposal { proposal: id }),
    )
}

/// Proposed by bank A and approved by bank B: with two bank members, M is 2.
fn decide(ledger: &mut Ledger, id: u64, action: GovernanceAction) -> ProposalStatus {
    assert_eq!(propose(ledger, BANK_A, id, action), ResultCode::Ok);
    assert_eq!(approve(ledger, BANK_B, id), ResultCode::Ok);
    proposal(ledger, id).status
}

fn proposal(ledger: &Ledger, id: u64) -> ProposalRecord {
    let bytes = ledger.store.get(&proposal_key(id)).unwrap().unwrap();
    from_bytes(&bytes, ProposalRecord::decode).unwrap()
}

fn pay(id: u128, amount: u128) -> Operation {
    Operation::posted(id, X_EUR, Y_EUR, EUR, amount)
}

fn public(seed: u64) -> [u8; 32] {
    key(seed).verifying_key().to_bytes()
}

#[test]
fn a_parameter_changes_only_when_m_of_n_bank_members_approve_in_time() {
    // Proves the operator key no longer sets limits, only bank members propose and approve,
    // the change applies in the block of the M-th approval (not before), retries are idempotent,
    // and an expired or decided proposal takes no more approvals.
    let mut ledger = Ledger::new();
    let cap = |amount_max| GovernanceAction::SetAssetTransferMax {
        asset: EUR,
        amount_max,
    };
    let direct = Operation::SetTransferMax(SetTransferMax {
        asset: EUR,
        amount_max: 100,
    });
    assert_eq!(
        one(&mut ledger, OPERATOR, direct),
        ResultCode::GovernanceRequired
    );
    assert_eq!(
        propose(&mut ledger, PARTNER_X, 1, cap(100)),
        ResultCode::BankMembersOnly
    );
    assert_eq!(
        propose(&mut ledger, OPERATOR, 1, cap(100)),
        ResultCode::BankMembersOnly
    );
    assert_eq!(propose(&mut ledger, BANK_A, 1, cap(100)), ResultCode::Ok);
    assert_eq!(proposal(&ledger, 1).status, ProposalStatus::Open);
    assert_eq!(one(&mut ledger, PARTNER_X, pay(1, 101)), ResultCode::Ok);
    assert_eq!(
        approve(&mut ledger, BANK_A, 1),
        ResultCode::Ok,
        "a repeat counts once"
    );
    assert_eq!(proposal(&ledger, 1).approvals, vec![BANK_A]);
    assert_eq!(approve(&mut ledger, BANK_B, 1), ResultCode::Ok);
    let decided = proposal(&ledger, 1);
    assert_eq!(decided.approvals, vec![BANK_A, BANK_B]);
    assert!(
        matches!(decided.status, ProposalStatus::Executed { height } if height == ledger.head.height)
    );
    assert_eq!(
        one(&mut ledger, PARTNER_X, pay(2, 101)),
        ResultCode::ExceedsTransferMax
    );
    assert_eq!(approve(&mut ledger, BANK_B, 1), ResultCode::Ok, "a retry");
    assert_eq!(
        propose(&mut ledger, BANK_B, 1, cap(5)),
        ResultCode::ProposalExists
    );
    assert_eq!(
        approve(&mut ledger, BANK_A, 77),
        ResultCode::UnknownProposal
    );

    let soon = ledger.time_ms + 15;
    let expiring = Operation::Propose(Propose {
        proposal: 2,
        expires_at_ms: soon,
        action: cap(0),
    });
    assert_eq!(one(&mut ledger, BANK_A, expiring), ResultCode::Ok);
    ledger.block(10, Vec::new());
    assert_eq!(approve(&mut ledger, BANK_B, 2), ResultCode::ProposalExpired);
    let too_late = Operation::Propose(Propose {
        proposal: 3,
        expires_at_ms: ledger.time_ms,
        action: cap(0),
    });
    assert_eq!(
        one(&mut ledger, BANK_A, too_late),
        ResultCode::InvalidProposalExpiry
    );
    let too_far = Operation::Propose(Propose {
        proposal: 3,
        expires_at_ms: ledger.time_ms + 31 * 24 * HOUR_MS,
        action: cap(0),
    });
    assert_eq!(
        one(&mut ledger, BANK_A, too_far),
        ResultCode::InvalidProposalExpiry
    );
    assert_eq!(
        propose(
            &mut ledger,
            BANK_A,
            3,
            GovernanceAction::SetAssetTransferMax {
                asset: 99,
                amount_max: 1
            }
        ),
        ResultCode::UnknownAsset,
        "a change the ledger would refuse is refused at proposal"
    );
}

#[test]
fn onboarding_offboarding_and_the_electorate() {
    // Proves an onboarded participant signs from the deciding block on, an onboarded bank
    // member votes, M follows the electorate (a majority unless set), an offboarded
    // participant's keys stop at once and its approvals stop counting, and a change the ledger
    // refuses at the deciding block fails without effect.
    let mut ledger = Ledger::new();
    let webhook = || {
        Operation::SetWebhook(SetWebhook {
            endpoint: 0,
            url: "https://example.com/hook".into(),
        })
    };
    assert_eq!(one(&mut ledger, 7, webhook()), ResultCode::UnknownSigner);
    let onboard_partner = GovernanceAction::Onboard {
        participant: 7,
        name: "Partner Z".into(),
        role: Role::SettlementPartner,
        bank: Some(BANK_A),
        keys: vec![public(7)],
    };
    assert!(matches!(
        decide(&mut ledger, 1, onboard_partner.clone()),
        ProposalStatus::Executed { .. }
    ));
    assert_eq!(one(&mut ledger, 7, webhook()), ResultCode::Ok);
    assert_eq!(
        propose(&mut ledger, BANK_A, 2, onboard_partner),
        ResultCode::ParticipantExists
    );
    let bad_partner = GovernanceAction::Onboard {
        participant: 8,
        name: "No bank".into(),
        role: Role::SettlementPartner,
        bank: None,
        keys: vec![public(8)],
    };
    assert_eq!(
        propose(&mut ledger, BANK_A, 2, bad_partner),
        ResultCode::InvalidParticipant
    );
    let taken_key = GovernanceAction::Onboard {
        participant: 8,
        name: "Copycat".into(),
        role: Role::Regulator,
        bank: None,
        keys: vec![public(PARTNER_X)],
    };
    assert_eq!(
        propose(&mut ledger, BANK_A, 2, taken_key),
        ResultCode::KeyInUse
    );

    // A third bank member: M stays a majority, 2 of 3.
    let onboard_bank = GovernanceAction::Onboard {
        participant: 9,
        name: "Bank C".into(),
        role: Role::BankMember,
        bank: None,
        keys: vec![public(9)],
    };
    assert!(matches!(
        decide(&mut ledger, 3, onboard_bank),
        ProposalStatus::Executed { .. }
    ));
    let offboard_z = GovernanceAction::Offboard { participant: 7 };
    assert_eq!(propose(&mut ledger, 9, 4, offboard_z), ResultCode::Ok);
    assert_eq!(proposal(&ledger, 4).status, ProposalStatus::Open);
    assert_eq!(approve(&mut ledger, BANK_B, 4), ResultCode::Ok);
    assert!(matches!(
        proposal(&ledger, 4).status,
        ProposalStatus::Executed { .. }
    ));
    assert_eq!(one(&mut ledger, 7, webhook()), ResultCode::UnknownSigner);
    let add_key_back = Operation::AddKey(AddKey {
        participant: 7,
        key: public(70),
    });
    assert_eq!(
        one(&mut ledger, BANK_A, add_key_back),
        ResultCode::ParticipantOffboarded
    );

    // Bank B approves a proposal, then leaves: its approval no longer counts.
    let raise = GovernanceAction::SetApprovalsRequired { approvals: 3 };
    assert_eq!(propose(&mut ledger, BANK_B, 5, raise), ResultCode::Ok);
    let offboard_b = GovernanceAction::Offboard {
        participant: BANK_B,
    };
    assert_eq!(propose(&mut ledger, BANK_A, 6, offboard_b), ResultCode::Ok);
    assert_eq!(approve(&mut ledger, 9, 6), ResultCode::Ok);
    assert!(matches!(
        proposal(&ledger, 6).status,
        ProposalStatus::Executed { .. }
    ));
    assert_eq!(
        approve(&mut ledger, BANK_B, 5),
        ResultCode::UnknownSigner,
        "its keys are gone"
    );
    assert_eq!(approve(&mut ledger, BANK_A, 5), ResultCode::Ok);
    assert_eq!(
        proposal(&ledger, 5).status,
        ProposalStatus::Open,
        "B's approval no longer counts: A alone is 1 of the 2 needed"
    );
    // C's approval decides it, but M = 3 is more than the 2 members left: the change fails
    // at the deciding block and nothing changes.
    assert_eq!(approve(&mut ledger, 9, 5), ResultCode::Ok);
    assert!(matches!(
        proposal(&ledger, 5).status,
        ProposalStatus::Failed {
            code: ResultCode::InvalidApprovalsRequired,
            ..
        }
    ));
}

#[test]
fn a_key_rotates_with_an_overlap_and_a_leaked_key_is_revoked_at_once() {
    // Proves both keys sign during the overlap, the old one is refused from its end by block
    // time, a key revokes itself and a bank revokes its partner's keys at once without the
    // consortium, and a participant always keeps one key that still signs.
    let mut ledger = Ledger::new();
    let new_key = key(30);
    let rotate = GovernanceAction::RotateKey {
        participant: PARTNER_X,
        new_key: public(30),
        old_key: public(PARTNER_X),
        overlap_ms: 1_000,
    };
    assert!(matches!(
        decide(&mut ledger, 1, rotate),
        ProposalStatus::Executed { .. }
    ));
    assert_eq!(one(&mut ledger, PARTNER_X, pay(1, 1)), ResultCode::Ok);
    assert_eq!(signed_by(&mut ledger, &new_key, pay(2, 1)), ResultCode::Ok);
    ledger.block(1_000, Vec::new());
    assert_eq!(
        one(&mut ledger, PARTNER_X, pay(3, 1)),
        ResultCode::KeyRetired
    );
    assert_eq!(signed_by(&mut ledger, &new_key, pay(4, 1)), ResultCode::Ok);

    // A leaked key: the partner's bank revokes it at once; another bank may not.
    let spare = GovernanceAction::RotateKey {
        participant: PARTNER_X,
        new_key: public(31),
        old_key: public(30),
        overlap_ms: 10 * HOUR_MS,
    };
    assert!(matches!(
        decide(&mut ledger, 2, spare),
        ProposalStatus::Executed { .. }
    ));
    let revoke = |key_seed| {
        Operation::RevokeKey(RevokeKey {
            participant: PARTNER_X,
            key: public(key_seed),
        })
    };
    assert_eq!(
        one(&mut ledger, BANK_B, revoke(30)),
        ResultCode::NotSponsoringBank
    );
    assert_eq!(one(&mut ledger, BANK_A, revoke(30)), ResultCode::Ok);
    assert_eq!(
        signed_by(&mut ledger, &new_key, pay(5, 1)),
        ResultCode::UnknownSigner
    );
    assert_eq!(signed_by(&mut ledger, &key(31), pay(6, 1)), ResultCode::Ok);
    assert_eq!(
        signed_by(&mut ledger, &key(31), revoke(31)),
        ResultCode::LastKey
    );
    // A key revokes itself; it may not revoke the participant's other keys (a leaked key
    // could otherwise lock its owner out), and a revoked key is never registered again.
    let add = |seed| {
        Operation::AddKey(AddKey {
            participant: PARTNER_X,
            key: public(seed),
        })
    };
    assert_eq!(one(&mut ledger, BANK_A, add(30)), ResultCode::KeyInUse);
    assert_eq!(one(&mut ledger, BANK_A, add(32)), ResultCode::Ok);
    assert_eq!(
        signed_by(&mut ledger, &key(32), revoke(31)),
        ResultCode::NotAuthorized
    );
    assert_eq!(signed_by(&mut ledger, &key(32), revoke(32)), ResultCode::Ok);
    assert_eq!(
        signed_by(&mut ledger, &key(32), pay(7, 1)),
        ResultCode::UnknownSigner
    );
    assert_eq!(signed_by(&mut ledger, &key(31), pay(8, 1)), ResultCode::Ok);
}

#[test]
fn the_node_set_changes_by_proposal_and_ids_and_keys_are_never_reused() {
    // Proves voters and observers are added, rotated and removed through proposals, that the
    // last voter stays, and that a removed node's id and key cannot come back.
    let mut ledger = Ledger::new();
    let add = |node, seed, role| GovernanceAction::AddNode {
        node,
        name: format!("node-{node}"),
        public_key: public(seed),
        role,
        address: format!("127.0.0.1:{}", 7000 + node),
    };
    assert_eq!(
        propose(
            &mut ledger,
            BANK_A,
            1,
            GovernanceAction::RemoveNode { node: 1 }
        ),
        ResultCode::LastVoter
    );
    assert!(matches!(
        decide(&mut ledger, 2, add(2, 92, NodeRole::Voter)),
        ProposalStatus::Executed { .. }
    ));
    assert!(matches!(
        decide(&mut ledger, 3, add(3, 93, NodeRole::Observer)),
        ProposalStatus::Executed { .. }
    ));
    assert_eq!(
        propose(&mut ledger, BANK_A, 4, add(2, 94, NodeRole::Voter)),
        ResultCode::NodeExists
    );
    assert_eq!(
        propose(&mut ledger, BANK_A, 4, add(4, 93, NodeRole::Voter)),
        ResultCode::KeyInUse
    );
    let mut bad = add(4, 94, NodeRole::Voter);
    if let GovernanceAction::AddNode { address, .. } = &mut bad {
        *address = "no-port".into();
    }
    assert_eq!(
        propose(&mut ledger, BANK_A, 4, bad),
        ResultCode::InvalidNode
    );
    let rotate = GovernanceAction::RotateNodeKey {
        node: 2,
        public_key: public(95),
    };
    assert!(matches!(
        decide(&mut ledger, 5, rotate),
        ProposalStatus::Executed { .. }
    ));
    assert!(matches!(
        decide(&mut ledger, 6, GovernanceAction::RemoveNode { node: 1 }),
        ProposalStatus::Executed { .. }
    ));
    let nodes = node_records(&ledger.store).unwrap();
    let summary: Vec<(u64, bool, NodeRole)> = nodes
        .iter()
        .map(|node| (node.id, node.active(), node.role))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, false, NodeRole::Voter),
            (2, true, NodeRole::Voter),
            (3, true, NodeRole::Observer)
        ]
    );
    assert_eq!(nodes[1].public_key, public(95));
    assert_eq!(nodes[1].address, "127.0.0.1:7002");
    assert_eq!(
        propose(&mut ledger, BANK_A, 7, add(1, 96, NodeRole::Voter)),
        ResultCode::NodeExists
    );
    assert_eq!(
        propose(&mut ledger, BANK_A, 7, add(7, 99, NodeRole::Voter)),
        ResultCode::KeyInUse,
        "the removed node's key"
    );
}
