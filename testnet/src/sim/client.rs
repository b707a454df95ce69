//! Simulated clients: each submits one signed transaction at a time to the node it believes
//! leads, retries the same envelope (so the same transaction id) on silence, redirects and
//! retry answers, and records every transfer acknowledged to it as settled.
//!
//! The mix: tracked transfers between partners' tracked accounts (posted, or two as a linked
//! batch), which the checkers account for one by one, and the seeded contract mix of every
//! operation kind (two-phase post and void, escrow, exchange, netting, limits, holds...),
//! which the conservation and replica checks cover.

use super::net::{Answer, Endpoint, Envelope, Payload};
use super::rng::SimRng;
use crate::limits::SIM_CLIENT_RETRY_AFTER_MS;
use crate::network::{
    partner_key, partner_tracked_account, BANKS, LOAD_ASSET, OPERATOR, REGULATOR, SECOND_ASSET,
};
use crate::workload::{checker_key, contract_step, Recent, Stream};
use ed25519_dalek::SigningKey;
use tpw_contracts::model::Hash;
use tpw_contracts::ops::{SetHold, Transfer};
use tpw_contracts::{
    transaction_id, Body, Operation, ResultCode, Transaction, TransferKind, Validity,
};

/// A transfer whose settlement a client was told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrackedTransfer {
    pub owner: u64,
    pub id: u128,
    pub debit_account: u128,
    pub credit_account: u128,
    pub amount: u128,
}

struct Request {
    envelope: Vec<u8>,
    tx_id: Hash,
    tracked: Vec<TrackedTransfer>,
    resend_at_ms: u64,
    target: Option<u64>,
    /// A submission every node's admission must refuse (what kind, for the report).
    bad: Option<&'static str>,
}

/// Keys of the named participants of the simulated genesis: fixed test keys.
pub fn named_key(participant: u64) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&participant.to_le_bytes());
    seed[8..15].copy_from_slice(b"tpw-sim");
    SigningKey::from_bytes(&seed)
}

/// One client.
pub struct Client {
    index: usize,
    partners: usize,
    rng: SimRng,
    stream: Stream,
    recent: Recent,
    sequence: u64,
    request: Option<Request>,
    leader_hint: Option<u64>,
    next_request_ms: u64,
    network_id: Hash,
    /// Transfers acknowledged as settled.
    pub acknowledged: Vec<TrackedTransfer>,
    /// Transfers answered as rejected: none may be posted anywhere.
    pub rejected: Vec<TrackedTransfer>,
    /// Submissions sent, first tries and retries.
    pub sends: u64,
    /// Transactions committed (whatever their result).
    pub committed: u64,
    /// Transactions refused at admission.
    pub refused: u64,
    /// Bad submissions a node did not refuse: (kind, answer).
    pub admitted_bad: Vec<String>,
}

impl Client {
    pub fn new(index: usize, partners: usize, network_id: Hash, rng: &mut SimRng) -> Self {
        let mut rng = rng.fork();
        let stream = Stream(rng.next_u64() | 1);
        Self {
            index,
            partners,
            rng,
            stream,
            recent: Recent::default(),
            sequence: 0,
            request: None,
            leader_hint: None,
            next_request_ms: 0,
            network_id,
            acknowledged: Vec::new(),
            rejected: Vec::new(),
            sends: 0,
            committed: 0,
            refused: 0,
            admitted_bad: Vec::new(),
        }
    }

    /// Whether a submission awaits its answer.
    pub fn busy(&self) -> bool {
        self.request.is_some()
    }

    /// Sends a new submission when due (if `generate`), or the outstanding one again after
    /// silence.
    pub fn act(&mut self, now_ms: u64, generate: bool, voters: &[u64], out: &mut Vec<Envelope>) {
        if self.request.is_none() && generate && now_ms >= self.next_request_ms {
            self.request = Some(self.next_request(now_ms));
        }
        let Some(request) = self.request.as_mut() else {
            return;
        };
        if now_ms < request.resend_at_ms {
            return;
        }
        let target = match request.target.or(self.leader_hint) {
            Some(node) if voters.contains(&node) => node,
            _ => voters[self.rng.below(voters.len() as u64) as usize],
        };
        request.target = None;
        request.resend_at_ms = now_ms + SIM_CLIENT_RETRY_AFTER_MS;
        self.sends += 1;
        out.push(Envelope {
            from: Endpoint::Client(self.index),
            to: Endpoint::Node(target),
            payload: Payload::Submit {
                envelope: request.envelope.clone(),
                tx_id: request.tx_id,
            },
        });
    }

    /// Takes a node's answer.
    pub fn answer(&mut self, now_ms: u64, from: Endpoint, tx_id: Hash, answer: Answer) {
        let Some(request) = self.request.as_mut() else {
            return;
        };
        if request.tx_id != tx_id {
            return;
        }
        if let Some(kind) = request.bad {
            if matches!(answer, Answer::Committed { .. }) {
                self.admitted_bad.push(format!("{kind}: {answer:?}"));
            }
        }
        match answer {
            Answer::Committed { code, .. } => {
                if code == ResultCode::Ok {
                    self.acknowledged.extend(request.tracked.iter().copied());
                } else {
                    self.rejected.extend(request.tracked.iter().copied());
                }
                self.committed += 1;
                if let Endpoint::Node(node) = from {
                    self.leader_hint.get_or_insert(node);
                }
                self.request = None;
                self.next_request_ms = now_ms + self.rng.between(1, 60);
            }
            Answer::NotLeader(hint) => {
                self.leader_hint = hint;
                request.target = hint;
                request.resend_at_ms = now_ms + 20;
            }
            Answer::Refused => {
                self.refused += 1;
                self.request = None;
                self.next_request_ms = now_ms + self.rng.between(1, 60);
            }
            Answer::Retry => {
                self.leader_hint = None;
                request.resend_at_ms = now_ms + 50;
            }
        }
    }

    /// A new nonce from this client's stream, valid for ten simulated minutes.
    fn validity(&mut self, now_ms: u64) -> Validity {
        Validity::new(self.rng.next_u64(), now_ms + 600_000)
    }

    fn next_request(&mut self, now_ms: u64) -> Request {
        let partner = self.rng.below(self.partners as u64) as usize;
        let other =
            (partner + 1 + self.rng.below(self.partners as u64 - 1) as usize) % self.partners;
        let owner = crate::network::partner_id(partner);
        let tracked_transfer = |client: &mut Self, to: usize| {
            client.sequence += 1;
            TrackedTransfer {
                owner,
                // Unique per client and beyond the ids the contract mix uses.
                id: 1_000_000_000 + ((client.index as u128) << 32) + client.sequence as u128,
                debit_account: partner_tracked_account(partner),
                credit_account: partner_tracked_account(to),
                amount: u128::from(client.rng.between(1, 1_000)),
            }
        };
        let as_operation = |transfer: &TrackedTransfer| {
            Operation::Transfer(Transfer {
                id: transfer.id,
                debit_account: transfer.debit_account,
                credit_account: transfer.credit_account,
                asset: LOAD_ASSET,
                amount: transfer.amount,
                kind: TransferKind::Posted,
                reference: 0,
            })
        };
        if self.rng.below(25) == 0 {
            return self.bad_request(now_ms, partner, other);
        }
        let (key, body, tracked) = match self.rng.below(10) {
            0..=4 => {
                let transfer = tracked_transfer(self, other);
                let body = Body::single(as_operation(&transfer));
                (partner_key(partner), body, vec![transfer])
            }
            5 => {
                let third = (other + 1) % self.partners;
                let first = tracked_transfer(self, other);
                let second = tracked_transfer(self, third);
                let body = Body::linked(vec![as_operation(&first), as_operation(&second)]);
                (partner_key(partner), body, vec![first, second])
            }
            _ => {
                let (_, signer, checker, body) =
                    contract_step(&mut self.stream, &mut self.recent, now_ms, self.partners);
                let key = match checker {
                    Some(partner) => checker_key(partner),
                    None if signer == REGULATOR
                        || signer == OPERATOR
                        || BANKS.contains(&signer) =>
                    {
                        named_key(signer)
                    }
                    None => partner_key((signer - crate::network::partner_id(0)) as usize),
                };
                (key, body, Vec::new())
            }
        };
        let validity = self.validity(now_ms);
        let envelope = Transaction::sign(self.network_id, &key, validity, body).to_bytes();
        Request {
            tx_id: transaction_id(&envelope),
            envelope,
            tracked,
            resend_at_ms: now_ms,
            target: None,
            bad: None,
        }
    }

    /// A submission that every node's admission refuses, of a kind drawn from the seed: a bad
    /// signature, an unknown signer, another network, a debit from another partner's account,
    /// an own account in the wrong asset, or a hold signed by a partner.
    fn bad_request(&mut self, now_ms: u64, partner: usize, other: usize) -> Request {
        self.sequence += 1;
        let id = 3_000_000_000 + ((self.index as u128) << 32) + self.sequence as u128;
        let transfer = |debit: u128, asset: u32| {
            Body::single(Operation::Transfer(Transfer {
                id,
                debit_account: debit,
                credit_account: partner_tracked_account(other),
                asset,
                amount: 1,
                kind: TransferKind::Posted,
                reference: 0,
            }))
        };
        let own = partner_tracked_account(partner);
        let key = partner_key(partner);
        let validity = self.validity(now_ms);
        let (kind, envelope) = match self.rng.below(6) {
            choice @ 0..=2 => self.bad_envelope(choice, &key, validity, transfer(own, LOAD_ASSET)),
            3 => {
                let body = transfer(partner_tracked_account(other), LOAD_ASSET);
                (
                    "unknown_account",
                    Transaction::sign(self.network_id, &key, validity, body).to_bytes(),
                )
            }
            4 => {
                let body = transfer(own, SECOND_ASSET);
                (
                    "asset_mismatch",
                    Transaction::sign(self.network_id, &key, validity, body).to_bytes(),
                )
            }
            _ => {
                let body = Body::single(Operation::SetHold(SetHold {
                    account: partner_tracked_account(other),
                    frozen: true,
                    reason: 1,
                }));
                (
                    "regulator_only",
                    Transaction::sign(self.network_id, &key, validity, body).to_bytes(),
                )
            }
        };
        Request {
            tx_id: transaction_id(&envelope),
            envelope,
            tracked: Vec::new(),
            resend_at_ms: now_ms,
            target: None,
            bad: Some(kind),
        }
    }

    /// A transfer whose envelope itself is bad: its signature broken, its signer unknown, or
    /// signed for another network.
    fn bad_envelope(
        &mut self,
        choice: u64,
        key: &ed25519_dalek::SigningKey,
        validity: Validity,
        body: Body,
    ) -> (&'static str, Vec<u8>) {
        match choice {
            0 => {
                let mut envelope =
                    Transaction::sign(self.network_id, key, validity, body).to_bytes();
                if let Some(last) = envelope.last_mut() {
                    *last ^= 1;
                }
                ("bad_signature", envelope)
            }
            1 => {
                let stranger = named_key(900_000 + self.rng.below(1_000));
                (
                    "unknown_signer",
                    Transaction::sign(self.network_id, &stranger, validity, body).to_bytes(),
                )
            }
            _ => {
                let mut network = self.network_id;
                network[0] ^= 1;
                (
                    "wrong_network",
                    Transaction::sign(network, key, validity, body).to_bytes(),
                )
            }
        }
    }
}
