//! Seeded operation mixes: every contract type, signed by every role, as a function of a seed.
//! The cluster tests and the simulator draw from the same generator.

use crate::network::{
    bank_of, partner_account, partner_id, partner_second_account, BANKS, LOAD_ASSET, OPERATOR,
    REGULATOR, SECOND_ASSET,
};
use tpw_contracts::ops::{
    AcceptExchange, AddKey, ApproveEscrow, ApproveProposal, ApproveTransfer, CloseCycle,
    CreateEscrow, IssuanceFields, Mint, OfferExchange, OpenCycle, PostPending, Propose,
    ReleaseEscrow, Reverse, SetApprovalPolicy, SetCreditLimit, SetCreditLine, SetHold,
    SetOutflowCap, SetTransferMax, SubmitObligation, Transfer, VoidPending,
};
use tpw_contracts::{Body, Operation, TransferKind};

/// A small seeded generator: the operation mix of one run is a function of its seed.
pub struct Stream(pub u64);

impl Stream {
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value below `bound` (which must be non-zero).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
    /// One of `items` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The latest escrow and exchange offer made, so follow-ups often find them.
#[derive(Default)]
pub struct Recent {
    /// (payer, escrow id, payee, approvers)
    pub escrow: Option<(u64, u128, u64, Vec<u64>)>,
    /// (offerer, exchange id, counterparty)
    pub offer: Option<(u64, u128, u64)>,
    /// The last governance proposal: (id, proposer).
    pub proposal: Option<(u64, u64)>,
}

/// One generated step: its kind (for the summary), who signs (a participant id, or a partner's
/// checker key by partner index), and the body.
pub fn contract_step(
    stream: &mut Stream,
    recent: &mut Recent,
    now_ms: u64,
    partners: usize,
) -> (&'static str, u64, Option<usize>, Body) {
    use tpw_contracts::tx::EscrowTerms;
    let partner = stream.below(partners as u64) as usize;
    let other = (partner + 1 + stream.below(partners as u64 - 1) as usize) % partners;
    let id = stream.below(10) as u128;
    let amount = stream.pick(&[1u128, 250, 10_000, 3_000_000]);
    let in_eur = stream.below(2) == 0;
    let (asset, own, theirs) = if in_eur {
        (LOAD_ASSET, partner_account(partner), partner_account(other))
    } else {
        (
            SECOND_ASSET,
            partner_second_account(partner),
            partner_second_account(other),
        )
    };
    let me = partner_id(partner);
    let secret = [stream.below(2) as u8; 32];
    match stream.below(22) {
        0..=2 => (
            "transfer",
            me,
            None,
            Body::single(Operation::Transfer(Transfer {
                id,
                debit_account: own,
                credit_account: theirs,
                asset,
                amount,
                kind: if stream.below(2) == 0 {
                    TransferKind::Posted
                } else {
                    TransferKind::Pending {
                        timeout_ms: 1 + stream.below(4_000),
                    }
                },
                reference: 0,
            })),
        ),
        3 => (
            "post_or_void",
            me,
            None,
            Body::single(if stream.below(2) == 0 {
                Operation::PostPending(PostPending {
                    id: 100 + id,
                    pending_id: stream.below(10) as u128,
                    amount: stream.pick(&[1u128, 250, 10_000]),
                })
            } else {
                Operation::VoidPending(VoidPending {
                    id: 100 + id,
                    pending_id: stream.below(10) as u128,
                })
            }),
        ),
        4 => {
            let approvers: Vec<u64> = BANKS
                .iter()
                .copied()
                .filter(|_| stream.below(2) == 0)
                .collect();
            let approvals_required = approvers.len() as u8;
            recent.escrow = Some((me, 200 + id, partner_id(other), approvers.clone()));
            (
                "escrow",
                me,
                None,
                Body::single(Operation::CreateEscrow(CreateEscrow {
                    id: 200 + id,
                    debit_account: own,
                    credit_account: theirs,
                    asset,
                    amount,
                    timeout_ms: 1 + stream.below(5_000),
                    terms: EscrowTerms {
                        hashlock: Some(*blake3::hash(&[0u8; 32]).as_bytes()),
                        release_after_ms: 0,
                        approvers,
                        approvals_required,
                    },
                })),
            )
        }
        5 => {
            let (owner, escrow_id, payee, approvers) =
                recent
                    .escrow
                    .clone()
                    .unwrap_or((me, 200 + id, partner_id(other), Vec::new()));
            let approver = approvers
                .first()
                .copied()
                .unwrap_or_else(|| stream.pick(&BANKS));
            (
                "escrow_approve_or_release",
                if stream.below(2) == 0 {
                    approver
                } else {
                    payee
                },
                None,
                Body::single(if stream.below(2) == 0 {
                    Operation::ApproveEscrow(ApproveEscrow { owner, escrow_id })
                } else {
                    Operation::ReleaseEscrow(ReleaseEscrow {
                        id: 300 + id,
                        owner,
                        escrow_id,
                        preimage: Some(secret),
                    })
                }),
            )
        }
        6 => {
            recent.offer = Some((me, 400 + id, partner_id(other)));
            (
                "exchange_offer",
                me,
                None,
                Body::single(Operation::OfferExchange(OfferExchange {
                    id: 400 + id,
                    debit_account: partner_account(partner),
                    credit_account: partner_account(other),
                    asset: LOAD_ASSET,
                    amount,
                    counter_debit_account: partner_second_account(other),
                    counter_credit_account: partner_second_account(partner),
                    counter_asset: SECOND_ASSET,
                    counter_amount: amount * 11 / 10 + 1,
                    timeout_ms: 1 + stream.below(5_000),
                })),
            )
        }
        7 => {
            let (owner, exchange_id, counterparty) =
                recent.offer.unwrap_or((me, 400 + id, partner_id(other)));
            (
                "exchange_accept",
                counterparty,
                None,
                Body::single(Operation::AcceptExchange(AcceptExchange {
                    id: 500 + id,
                    owner,
                    exchange_id,
                })),
            )
        }
        8 => {
            let members: Vec<u64> = (0..partners)
                .filter(|_| stream.below(4) != 0)
                .map(partner_id)
                .collect();
            (
                "cycle_open",
                stream.pick(&BANKS),
                None,
                Body::single(Operation::OpenCycle(OpenCycle {
                    cycle: 1 + stream.below(4) as u128,
                    asset,
                    closes_at_ms: now_ms + 500 + stream.below(8_000),
                    members,
                })),
            )
        }
        9 | 10 => (
            "obligation",
            me,
            None,
            Body::single(Operation::SubmitObligation(SubmitObligation {
                id: 600 + id,
                cycle: 1 + stream.below(4) as u128,
                debit_account: own,
                credit_account: theirs,
                amount,
            })),
        ),
        11 => (
            "cycle_close",
            stream.pick(&BANKS),
            None,
            Body::single(Operation::CloseCycle(CloseCycle {
                cycle: 1 + stream.below(4) as u128,
                carry_to: stream.below(5) as u128,
            })),
        ),
        12 => (
            "credit_limit",
            me,
            None,
            Body::single(Operation::SetCreditLimit(SetCreditLimit {
                debtor: partner_id(other),
                asset,
                limit: if stream.below(3) == 0 {
                    None
                } else {
                    Some(stream.pick(&[0u128, 5_000, 1_000_000]))
                },
            })),
        ),
        13 => (
            "reverse",
            if stream.below(3) == 0 {
                REGULATOR
            } else {
                partner_id(other)
            },
            None,
            Body::single(Operation::Reverse(Reverse {
                id: 700 + id,
                original_owner: me,
                original_id: stream.below(10) as u128,
                amount: stream.pick(&[1u128, 100, 1_000_000]),
            })),
        ),
        14 => match stream.below(4) {
            // Per-transfer maximums are network parameters: a bank proposes, another approves
            // (M is a majority of the banks); the operator's direct attempt is refused.
            0 => {
                let proposal = 1 + stream.below(1 << 40);
                let proposer = stream.pick(&BANKS);
                recent.proposal = Some((proposal, proposer));
                (
                    "governance_propose",
                    proposer,
                    None,
                    Body::single(Operation::Propose(Propose {
                        proposal,
                        expires_at_ms: now_ms + 60_000,
                        action: tpw_contracts::governance::GovernanceAction::SetAssetTransferMax {
                            asset,
                            amount_max: stream.pick(&[0u128, 2_000_000, 1 << 60]),
                        },
                    })),
                )
            }
            1 => {
                let (proposal, proposer) = recent.proposal.unwrap_or((1, BANKS[0]));
                let approver = BANKS
                    .iter()
                    .copied()
                    .find(|bank| *bank != proposer)
                    .unwrap_or(proposer);
                (
                    "governance_approve",
                    approver,
                    None,
                    Body::single(Operation::ApproveProposal(ApproveProposal { proposal })),
                )
            }
            2 => (
                "limits",
                OPERATOR,
                None,
                Body::single(Operation::SetTransferMax(SetTransferMax {
                    asset,
                    amount_max: 1 << 60,
                })),
            ),
            _ => (
                "limits",
                bank_of(partner),
                None,
                Body::single(Operation::SetOutflowCap(SetOutflowCap {
                    participant: me,
                    asset,
                    cap: stream.pick(&[0u128, 4_000_000, 1 << 60]),
                })),
            ),
        },
        15 => (
            "approval_policy",
            me,
            None,
            Body::single(Operation::SetApprovalPolicy(SetApprovalPolicy {
                account: own,
                threshold: stream.pick(&[0u128, 5_000]),
            })),
        ),
        16 => (
            "add_key",
            bank_of(partner),
            None,
            Body::single(Operation::AddKey(AddKey {
                participant: me,
                key: checker_key(partner).verifying_key().to_bytes(),
            })),
        ),
        17 => (
            "approve_transfer",
            me,
            Some(partner),
            Body::single(Operation::ApproveTransfer(ApproveTransfer { id })),
        ),
        18 => (
            "hold",
            REGULATOR,
            None,
            Body::single(Operation::SetHold(SetHold {
                account: own,
                frozen: stream.below(3) == 0,
                reason: 1 + stream.below(9) as u16,
            })),
        ),
        19 => (
            "mint",
            if in_eur { BANKS[0] } else { BANKS[1] },
            None,
            Body::single(Operation::Mint(Mint(IssuanceFields {
                id: 700 + id,
                account: own,
                asset,
                amount,
            }))),
        ),
        20 => (
            "credit_line",
            bank_of(partner),
            None,
            Body::single(Operation::SetCreditLine(SetCreditLine {
                account: own,
                line: stream.pick(&[0u128, 5_000]),
            })),
        ),
        _ => (
            "linked",
            me,
            None,
            Body::linked(vec![
                Operation::Transfer(Transfer {
                    id: 800 + id,
                    debit_account: own,
                    credit_account: theirs,
                    asset,
                    amount,
                    kind: TransferKind::Posted,
                    reference: 0,
                }),
                Operation::SubmitObligation(SubmitObligation {
                    id: 900 + id,
                    cycle: 1 + stream.below(4) as u128,
                    debit_account: own,
                    credit_account: theirs,
                    amount,
                }),
            ]),
        ),
    }
}

/// A partner's second (checker) key, registered by its bank in the run.
pub fn checker_key(partner: usize) -> ed25519_dalek::SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(partner as u64).to_le_bytes());
    seed[8..15].copy_from_slice(b"checker");
    ed25519_dalek::SigningKey::from_bytes(&seed)
}
