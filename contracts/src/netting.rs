//! Multilateral netting: participants queue payment obligations in a cycle for one asset; when
//! the cycle closes (by its opener or an operator, or at its close time by block time) every
//! account's net position is computed and only the net amounts are posted, in the same block.
//!
//! Gridlock rule (deterministic, documented in docs/contracts.md): obligations touching a held
//! (frozen) account are set aside first. Then, while some account cannot take its net position
//! (a net debtor short of funds under its no-overdraft flag, or a net creditor over its credit
//! limit), the account with the largest shortfall (ties: the lowest account id) loses its latest
//! obligation on the failing side (latest by submission order), which is set aside; positions
//! are recomputed and the check repeats. What remains settles; set-aside obligations move to the
//! cycle named by the closer (carried over) or are rejected with `netting_unfunded`. The final
//! balances equal those of settling the remaining obligations one by one (gross), because net
//! positions are sums of the same amounts.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{may_pay, ApplyError, BlockContext, OperationContext, Outcome};
use crate::model::{
    account_flags as flags, from_bytes, to_bytes, Account, AccountId, AssetId, Hash, ParticipantId,
    Role, TransferId,
};
use crate::overlay::Overlay;
use crate::result::ResultCode;
use crate::state::prefix;
use std::collections::BTreeMap;

pub use crate::limits::CYCLE_CLOSES_PER_BLOCK_MAX;
pub use crate::limits::OBLIGATIONS_PER_BLOCK_MAX;
pub use crate::limits::OBLIGATIONS_PER_CYCLE_MAX;
pub use crate::limits::OBLIGATION_AMOUNT_MAX;

/// Key of a cycle record.
pub fn cycle_key(cycle: u128) -> Vec<u8> {
    let mut key = vec![prefix::CYCLE];
    key.extend_from_slice(&cycle.to_be_bytes());
    key
}

/// Key of a queued obligation: the cycle and its position in submission order.
pub fn queue_key(cycle: u128, sequence: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(21);
    key.push(prefix::QUEUE);
    key.extend_from_slice(&cycle.to_be_bytes());
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

/// Key of an obligation's pointer by (debtor, obligation id).
pub fn obligation_key(debtor: ParticipantId, id: TransferId) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(prefix::OBLIGATION);
    key.extend_from_slice(&debtor.to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Key of a cycle's close-time index entry.
pub fn cycle_due_key(closes_at_ms: u64, cycle: u128) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(prefix::CYCLE_DUE);
    key.extend_from_slice(&closes_at_ms.to_be_bytes());
    key.extend_from_slice(&cycle.to_be_bytes());
    key
}

/// Key of a cycle member.
pub fn member_key(cycle: u128, participant: ParticipantId) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(prefix::CYCLE_MEMBER);
    key.extend_from_slice(&cycle.to_be_bytes());
    key.extend_from_slice(&participant.to_be_bytes());
    key
}

/// Key of the bilateral position between two participants in a cycle (lower id first).
pub fn position_key(cycle: u128, one: ParticipantId, other: ParticipantId) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(prefix::BILATERAL);
    key.extend_from_slice(&cycle.to_be_bytes());
    key.extend_from_slice(&one.min(other).to_be_bytes());
    key.extend_from_slice(&one.max(other).to_be_bytes());
    key
}

/// The outcome of a settled cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Height of the block that settled it.
    pub height: u64,
    /// Sum of the settled obligations.
    pub gross: u128,
    /// Sum of the net amounts posted (each net debtor's payment).
    pub net: u128,
    /// Obligations settled.
    pub settled: u32,
    /// Obligations moved to another cycle.
    pub carried_over: u32,
    /// Obligations rejected as unfunded.
    pub rejected: u32,
}

/// A netting cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleRecord {
    /// The cycle id.
    pub id: u128,
    /// Who opened it.
    pub opener: ParticipantId,
    /// Its asset.
    pub asset: AssetId,
    /// Block time at which it closes by itself.
    pub closes_at_ms: u64,
    /// Members (each has a member record).
    pub members: u16,
    /// Obligations queued (the next sequence number).
    pub count: u32,
    /// Set once settled.
    pub report: Option<CycleReport>,
}

impl CycleRecord {
    /// Canonical record encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u64(self.opener);
        writer.u32(self.asset);
        writer.u64(self.closes_at_ms);
        writer.u16(self.members);
        writer.u32(self.count);
        match &self.report {
            None => writer.u8(0),
            Some(report) => {
                writer.u8(1);
                writer.u64(report.height);
                writer.u128(report.gross);
                writer.u128(report.net);
                writer.u32(report.settled);
                writer.u32(report.carried_over);
                writer.u32(report.rejected);
            }
        }
    }
    /// Reads a record written by [`CycleRecord::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u128("cycle.id")?,
            opener: reader.u64("cycle.opener")?,
            asset: reader.u32("cycle.asset")?,
            closes_at_ms: reader.u64("cycle.closes_at_ms")?,
            members: reader.u16("cycle.members")?,
            count: reader.u32("cycle.count")?,
            report: if reader.bool("cycle.settled")? {
                Some(CycleReport {
                    height: reader.u64("cycle.height")?,
                    gross: reader.u128("cycle.gross")?,
                    net: reader.u128("cycle.net")?,
                    settled: reader.u32("cycle.settled")?,
                    carried_over: reader.u32("cycle.carried_over")?,
                    rejected: reader.u32("cycle.rejected")?,
                })
            } else {
                None
            },
        })
    }
}

/// A queued obligation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedObligation {
    /// The debtor (who signed it).
    pub debtor: ParticipantId,
    /// Its id, unique per debtor.
    pub id: TransferId,
    /// Account paid from.
    pub debit_account: AccountId,
    /// Account paid into.
    pub credit_account: AccountId,
    /// Amount.
    pub amount: u128,
}

impl QueuedObligation {
    fn encode(&self, writer: &mut Writer) {
        writer.u64(self.debtor);
        writer.u128(self.id);
        writer.u128(self.debit_account);
        writer.u128(self.credit_account);
        writer.u128(self.amount);
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            debtor: reader.u64("obligation.debtor")?,
            id: reader.u128("obligation.id")?,
            debit_account: reader.u128("obligation.debit_account")?,
            credit_account: reader.u128("obligation.credit_account")?,
            amount: reader.u128("obligation.amount")?,
        })
    }
}

/// Where an obligation stands: the cycle it is queued in, and whether it was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObligationPointer {
    /// The cycle it is (or was last) queued in.
    pub cycle: u128,
    /// Its position there.
    pub sequence: u32,
    /// Rejected as unfunded when its cycle settled.
    pub rejected: bool,
    /// Hash of the submitting operation (idempotent retries compare it).
    pub body_hash: Hash,
}

impl ObligationPointer {
    /// Canonical record encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u128(self.cycle);
        writer.u32(self.sequence);
        writer.u8(u8::from(self.rejected));
        writer.fixed(&self.body_hash);
    }
    /// Reads a record written by [`ObligationPointer::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            cycle: reader.u128("pointer.cycle")?,
            sequence: reader.u32("pointer.sequence")?,
            rejected: reader.bool("pointer.rejected")?,
            body_hash: reader.array("pointer.body_hash")?,
        })
    }
}

fn put_cycle(overlay: &mut Overlay<'_>, cycle: &CycleRecord) {
    overlay.put(
        cycle_key(cycle.id),
        Some(to_bytes(|writer| cycle.encode(writer))),
    );
}

/// Opens a cycle (bank members and operators).
pub(crate) fn open(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    cycle_id: u128,
    asset: AssetId,
    closes_at_ms: u64,
    members: &[ParticipantId],
) -> Result<Outcome, ApplyError> {
    if !matches!(context.signer.role, Role::BankMember | Role::Operator) {
        return Ok(Outcome::Rejected(ResultCode::NotAuthorized));
    }
    let member_count = u16::try_from(members.len())
        .map_err(|_| ApplyError::Invariant("a decoded cycle has too many members".into()))?;
    if let Some(found) = overlay.typed(&cycle_key(cycle_id), CycleRecord::decode)? {
        let mut same = found.opener == context.signer.id
            && found.asset == asset
            && found.closes_at_ms == closes_at_ms
            && found.members == member_count;
        for member in members {
            if !same {
                break;
            }
            same = overlay.get(&member_key(cycle_id, *member))?.is_some();
        }
        return Ok(if same {
            Outcome::Existing(ResultCode::Ok)
        } else {
            Outcome::Rejected(ResultCode::CycleExists)
        });
    }
    if overlay.asset(asset)?.is_none() {
        return Ok(Outcome::Rejected(ResultCode::UnknownAsset));
    }
    if closes_at_ms <= context.block.time_ms {
        return Ok(Outcome::Rejected(ResultCode::InvalidCloseTime));
    }
    for member in members {
        match overlay.participant(*member)? {
            Some(participant) if may_pay(&participant) => {}
            _ => return Ok(Outcome::Rejected(ResultCode::InvalidMember)),
        }
    }
    for member in members {
        overlay.put(member_key(cycle_id, *member), Some(Vec::new()));
    }
    put_cycle(
        overlay,
        &CycleRecord {
            id: cycle_id,
            opener: context.signer.id,
            asset,
            closes_at_ms,
            members: member_count,
            count: 0,
            report: None,
        },
    );
    overlay.put(cycle_due_key(closes_at_ms, cycle_id), Some(Vec::new()));
    Ok(Outcome::Applied)
}

/// The fields of a submitted obligation.
pub(crate) struct ObligationRequest {
    pub id: TransferId,
    pub cycle: u128,
    pub debit_account: AccountId,
    pub credit_account: AccountId,
    pub amount: u128,
    pub body_hash: Hash,
}

/// Queues an obligation of the signer (the debtor) in an open cycle.
pub(crate) fn submit(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    request: &ObligationRequest,
) -> Result<Outcome, ApplyError> {
    let debtor = context.signer.id;
    if let Some(found) = overlay.typed(
        &obligation_key(debtor, request.id),
        ObligationPointer::decode,
    )? {
        return Ok(Outcome::Existing(if found.body_hash == request.body_hash {
            ResultCode::Ok
        } else {
            ResultCode::IdExistsWithDifferentBody
        }));
    }
    let (mut cycle, creditor) = match check_obligation(overlay, context, request)? {
        Ok(checked) => checked,
        Err(code) => return Ok(Outcome::Rejected(code)),
    };
    if let Some(code) = take_credit(overlay, &cycle, debtor, creditor, request.amount)? {
        return Ok(Outcome::Rejected(code));
    }
    let obligation = QueuedObligation {
        debtor,
        id: request.id,
        debit_account: request.debit_account,
        credit_account: request.credit_account,
        amount: request.amount,
    };
    enqueue(overlay, &mut cycle, &obligation, request.body_hash);
    put_cycle(overlay, &cycle);
    Ok(Outcome::Applied)
}

/// The checks of a new obligation, in the protocol's order and before anything is written:
/// the open cycle and the creditor, or the first rejection.
fn check_obligation(
    overlay: &Overlay<'_>,
    context: &OperationContext<'_>,
    request: &ObligationRequest,
) -> Result<Result<(CycleRecord, ParticipantId), ResultCode>, ApplyError> {
    let reject = |code| Ok(Err(code));
    let debtor = context.signer.id;
    if !may_pay(context.signer) {
        return reject(ResultCode::NotAuthorized);
    }
    if request.amount == 0 {
        return reject(ResultCode::ZeroAmount);
    }
    if request.amount > OBLIGATION_AMOUNT_MAX {
        return reject(ResultCode::Overflow);
    }
    if request.debit_account == request.credit_account {
        return reject(ResultCode::SameAccount);
    }
    let Some(cycle) = overlay.typed(&cycle_key(request.cycle), CycleRecord::decode)? else {
        return reject(ResultCode::NotCycle);
    };
    if cycle.report.is_some() {
        return reject(ResultCode::CycleClosed);
    }
    if cycle.count >= OBLIGATIONS_PER_CYCLE_MAX {
        return reject(ResultCode::CycleFull);
    }
    let (Some(debit), Some(credit)) = (
        overlay.account(request.debit_account)?,
        overlay.account(request.credit_account)?,
    ) else {
        return reject(ResultCode::UnknownAccount);
    };
    if debit.owner != debtor {
        return reject(ResultCode::NotAuthorized);
    }
    if !is_member(overlay, cycle.id, debtor)? || !is_member(overlay, cycle.id, credit.owner)? {
        return reject(ResultCode::NotCycleMember);
    }
    if debit.asset != cycle.asset || credit.asset != cycle.asset {
        return reject(ResultCode::AssetMismatch);
    }
    if crate::limits_rules::above_transfer_max(overlay, cycle.asset, request.amount)? {
        return reject(ResultCode::ExceedsTransferMax);
    }
    if crate::approval::above_threshold(overlay, request.debit_account, request.amount)? {
        return reject(ResultCode::ApprovalRequired);
    }
    Ok(Ok((cycle, credit.owner)))
}

fn is_member(
    overlay: &Overlay<'_>,
    cycle: u128,
    participant: ParticipantId,
) -> Result<bool, ApplyError> {
    Ok(overlay.get(&member_key(cycle, participant))?.is_some())
}

/// Adds an obligation of `debtor` to `creditor` to their bilateral position in the cycle, or
/// returns `credit_limit_exceeded` (changing nothing) when what the debtor then owes the
/// creditor net in the cycle would exceed the limit the creditor grants it. A payment between
/// two accounts of one owner carries no credit.
fn take_credit(
    overlay: &mut Overlay<'_>,
    cycle: &CycleRecord,
    debtor: ParticipantId,
    creditor: ParticipantId,
    amount: u128,
) -> Result<Option<ResultCode>, ApplyError> {
    if debtor == creditor {
        return Ok(None);
    }
    let key = position_key(cycle.id, debtor, creditor);
    // Net owed by the lower id to the higher; obligations are at most 2^96 and a cycle holds
    // at most 2^17, so the sum stays far inside i128.
    let position = overlay
        .typed(&key, |reader| reader.u128("bilateral.position"))?
        .map_or(0, |bits| bits as i128);
    let signed = amount as i128;
    let updated = if debtor < creditor {
        position + signed
    } else {
        position - signed
    };
    let owed = if debtor < creditor { updated } else { -updated };
    if owed > 0 {
        let limit = crate::limits_rules::credit_limit(overlay, creditor, debtor, cycle.asset)?;
        if limit.is_some_and(|limit| owed as u128 > limit) {
            return Ok(Some(ResultCode::CreditLimitExceeded));
        }
    }
    overlay.put(key, Some(to_bytes(|writer| writer.u128(updated as u128))));
    Ok(None)
}

fn enqueue(
    overlay: &mut Overlay<'_>,
    cycle: &mut CycleRecord,
    obligation: &QueuedObligation,
    body_hash: Hash,
) {
    let sequence = cycle.count;
    cycle.count += 1;
    overlay.put(
        queue_key(cycle.id, sequence),
        Some(to_bytes(|writer| obligation.encode(writer))),
    );
    let pointer = ObligationPointer {
        cycle: cycle.id,
        sequence,
        rejected: false,
        body_hash,
    };
    overlay.put(
        obligation_key(obligation.debtor, obligation.id),
        Some(to_bytes(|writer| pointer.encode(writer))),
    );
}

/// Closes a cycle by transaction: its opener or an operator; unfunded obligations go to
/// `carry_to` (an open cycle of the same asset) or, when it is 0, are rejected.
pub(crate) fn close(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    cycle_id: u128,
    carry_to: u128,
) -> Result<Outcome, ApplyError> {
    let reject = |code| Ok(Outcome::Rejected(code));
    let Some(cycle) = overlay.typed(&cycle_key(cycle_id), CycleRecord::decode)? else {
        return reject(ResultCode::NotCycle);
    };
    if cycle.opener != context.signer.id && context.signer.role != Role::Operator {
        return reject(ResultCode::NotAuthorized);
    }
    if cycle.report.is_some() {
        return reject(ResultCode::CycleClosed);
    }
    let carry = if carry_to == 0 {
        None
    } else {
        match overlay.typed(&cycle_key(carry_to), CycleRecord::decode)? {
            None => return reject(ResultCode::NotCycle),
            Some(target)
                if target.report.is_some()
                    || target.asset != cycle.asset
                    || carry_to == cycle_id =>
            {
                return reject(ResultCode::InvalidCarryOver)
            }
            Some(target) => Some(target),
        }
    };
    if overlay.netting_work() + cycle.count as usize > OBLIGATIONS_PER_BLOCK_MAX {
        return reject(ResultCode::BlockWorkExceeded);
    }
    settle(overlay, context.block, cycle, carry)?;
    Ok(Outcome::Applied)
}

/// Closes the cycles whose close time has come, at the start of a block (unfunded obligations
/// are rejected). Returns the ids closed.
pub(crate) fn close_due(
    overlay: &mut Overlay<'_>,
    store: &dyn crate::state::StateStore,
    block: BlockContext,
) -> Result<Vec<u128>, ApplyError> {
    let start = cycle_due_key(0, 0);
    let mut end = cycle_due_key(block.time_ms, u128::MAX);
    end.push(0);
    let due = store.scan(&start, &end, CYCLE_CLOSES_PER_BLOCK_MAX)?;
    let mut closed = Vec::with_capacity(due.len());
    for (key, _) in due {
        let cycle_id = key
            .get(9..25)
            .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
            .map(u128::from_be_bytes)
            .ok_or_else(|| ApplyError::Corrupt {
                key: hex::encode(&key),
                source: DecodeError::InvalidValue {
                    field: "cycle_due.key",
                    value: key.len() as u128,
                },
            })?;
        let Some(cycle) = overlay.typed(&cycle_key(cycle_id), CycleRecord::decode)? else {
            return Err(ApplyError::Invariant(format!(
                "due entry for unknown cycle {cycle_id}"
            )));
        };
        settle(overlay, block, cycle, None)?;
        closed.push(cycle_id);
    }
    Ok(closed)
}

/// The earliest close time of an open cycle, if any: the leader proposes a block by then.
pub fn next_close_ms(
    store: &dyn crate::state::StateStore,
) -> Result<Option<u64>, crate::state::StoreError> {
    let first = store.scan(&cycle_due_key(0, 0), &[prefix::CYCLE_DUE + 1], 1)?;
    Ok(first.first().and_then(|(key, _)| {
        key.get(1..9)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            .map(u64::from_be_bytes)
    }))
}

/// Whether an account can take a net position: not held, and within its balance limits.
fn can_take(account: &Account, net: i128) -> bool {
    if account.has(flags::FROZEN) || account.has(flags::ISSUANCE) {
        return net == 0;
    }
    let amount = net.unsigned_abs();
    if net < 0 {
        let total = account
            .debits_posted
            .checked_add(account.debits_pending)
            .and_then(|debits| debits.checked_add(amount));
        match total {
            None => false,
            Some(total) => account.debits_within_bound(total),
        }
    } else {
        let total = account
            .credits_posted
            .checked_add(account.credits_pending)
            .and_then(|credits| credits.checked_add(amount));
        match total {
            None => false,
            Some(total) => {
                !account.has(flags::CREDITS_MUST_NOT_EXCEED_DEBITS)
                    || total <= account.debits_posted
            }
        }
    }
}

/// How far an account is from taking its net position (0 when it can), for choosing whom the
/// gridlock rule trims first.
fn shortfall(account: &Account, net: i128) -> u128 {
    if can_take(account, net) {
        return 0;
    }
    if account.has(flags::FROZEN) {
        return u128::MAX;
    }
    let amount = net.unsigned_abs();
    if net < 0 {
        let used = account.debits_posted.saturating_add(account.debits_pending);
        used.saturating_add(amount)
            .saturating_sub(account.credits_posted)
            .max(1)
    } else {
        let used = account
            .credits_posted
            .saturating_add(account.credits_pending);
        used.saturating_add(amount)
            .saturating_sub(account.debits_posted)
            .max(1)
    }
}

/// Settles a cycle: computes net positions, applies the gridlock rule, posts the nets, records
/// the report, and carries over or rejects what was set aside.
fn settle(
    overlay: &mut Overlay<'_>,
    block: BlockContext,
    mut cycle: CycleRecord,
    mut carry: Option<CycleRecord>,
) -> Result<(), ApplyError> {
    let obligations = queued_obligations(overlay, &cycle)?;
    let accounts = named_accounts(overlay, &obligations)?;
    let mut positions = Positions::of(&obligations, &accounts);
    positions.set_aside_unfunded(&obligations, &accounts)?;
    let mut report = CycleReport {
        height: block.height,
        ..CycleReport::default()
    };
    post_nets(overlay, &positions.nets, &accounts, &mut report)?;
    dispose(
        overlay,
        &obligations,
        &positions.included,
        &accounts,
        carry.as_mut(),
        &mut report,
    )?;
    finish(overlay, &mut cycle, report, carry)
}

/// The cycle's queued obligations in submission order, counted against the block's netting
/// work; a queue that disagrees with the cycle's count is a broken invariant.
fn queued_obligations(
    overlay: &mut Overlay<'_>,
    cycle: &CycleRecord,
) -> Result<Vec<QueuedObligation>, ApplyError> {
    let start = queue_key(cycle.id, 0);
    let mut end = queue_key(cycle.id, u32::MAX);
    end.push(0);
    let entries = overlay.scan(&start, &end, cycle.count as usize)?;
    if entries.len() != cycle.count as usize {
        return Err(ApplyError::Invariant(format!(
            "cycle {} counts {} obligations, {} are queued",
            cycle.id,
            cycle.count,
            entries.len()
        )));
    }
    overlay.add_netting_work(entries.len());
    let mut obligations = Vec::with_capacity(entries.len());
    for (key, value) in &entries {
        obligations.push(
            from_bytes(value, QueuedObligation::decode).map_err(|source| ApplyError::Corrupt {
                key: hex::encode(key),
                source,
            })?,
        );
    }
    Ok(obligations)
}

/// Every account the obligations name, read once each, by id.
fn named_accounts(
    overlay: &Overlay<'_>,
    obligations: &[QueuedObligation],
) -> Result<BTreeMap<AccountId, Account>, ApplyError> {
    let mut accounts: BTreeMap<AccountId, Account> = BTreeMap::new();
    for obligation in obligations {
        for id in [obligation.debit_account, obligation.credit_account] {
            if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(id) {
                let account = overlay.account(id)?.ok_or_else(|| {
                    ApplyError::Invariant(format!("obligation names missing account {id}"))
                })?;
                slot.insert(account);
            }
        }
    }
    Ok(accounts)
}

/// The net positions of a cycle's accounts and which obligations still settle.
struct Positions {
    /// Per obligation (by index): whether it still settles.
    included: Vec<bool>,
    /// Per account: credits minus debits of the included obligations.
    nets: BTreeMap<AccountId, i128>,
    /// Per account: the indexes of its included obligations as debtor, in submission order.
    debits_of: BTreeMap<AccountId, Vec<usize>>,
    /// Per account: the indexes of its included obligations as creditor, in submission order.
    credits_of: BTreeMap<AccountId, Vec<usize>>,
}

impl Positions {
    /// The positions with every obligation included except those through a held account.
    fn of(obligations: &[QueuedObligation], accounts: &BTreeMap<AccountId, Account>) -> Self {
        let mut positions = Positions {
            included: vec![true; obligations.len()],
            nets: accounts.keys().map(|id| (*id, 0)).collect(),
            debits_of: BTreeMap::new(),
            credits_of: BTreeMap::new(),
        };
        for (index, obligation) in obligations.iter().enumerate() {
            // Money through a held account must not move, so its obligations are set aside
            // first.
            let held = accounts[&obligation.debit_account].has(flags::FROZEN)
                || accounts[&obligation.credit_account].has(flags::FROZEN);
            if held {
                positions.included[index] = false;
                continue;
            }
            let amount = obligation.amount as i128;
            *positions.nets.entry(obligation.debit_account).or_default() -= amount;
            *positions.nets.entry(obligation.credit_account).or_default() += amount;
            positions
                .debits_of
                .entry(obligation.debit_account)
                .or_default()
                .push(index);
            positions
                .credits_of
                .entry(obligation.credit_account)
                .or_default()
                .push(index);
        }
        positions
    }

    /// The gridlock rule: while an account cannot take its position, sets aside its latest
    /// obligation on the failing side, largest shortfall first.
    fn set_aside_unfunded(
        &mut self,
        obligations: &[QueuedObligation],
        accounts: &BTreeMap<AccountId, Account>,
    ) -> Result<(), ApplyError> {
        // Accounts that cannot take their position, ordered so the last is the largest
        // shortfall (ties: the lowest id). Each round changes two accounts, so only they are
        // re-ranked, and set-aside obligations are skipped when popped (lazy deletion):
        // O(n log n) for a cycle. The second key is the id's complement, which orders ids
        // downwards: ties go to the lowest.
        let rank = |id: AccountId, net: i128| (shortfall(&accounts[&id], net), AccountId::MAX - id);
        let mut failing: std::collections::BTreeSet<(u128, AccountId)> = self
            .nets
            .iter()
            .map(|(id, net)| rank(*id, *net))
            .filter(|(short, _)| *short > 0)
            .collect();
        while let Some(&(_, complement)) = failing.last() {
            let account = AccountId::MAX - complement;
            let side = if self.nets[&account] < 0 {
                self.debits_of.get_mut(&account)
            } else {
                self.credits_of.get_mut(&account)
            };
            let Some(index) = side.and_then(|list| list.pop()) else {
                return Err(ApplyError::Invariant(format!(
                    "account {account} fails its net position with no obligation left to set aside"
                )));
            };
            if !self.included[index] {
                continue;
            }
            self.included[index] = false;
            let obligation = &obligations[index];
            let amount = obligation.amount as i128;
            for (id, change) in [
                (obligation.debit_account, amount),
                (obligation.credit_account, -amount),
            ] {
                let net = self.nets.entry(id).or_default();
                failing.remove(&rank(id, *net));
                *net += change;
                let entry = rank(id, *net);
                if entry.0 > 0 {
                    failing.insert(entry);
                }
            }
        }
        Ok(())
    }
}

/// Posts each account's net amount (in account id order) and sums the net debits into the
/// report.
fn post_nets(
    overlay: &mut Overlay<'_>,
    nets: &BTreeMap<AccountId, i128>,
    accounts: &BTreeMap<AccountId, Account>,
    report: &mut CycleReport,
) -> Result<(), ApplyError> {
    for (id, net) in nets {
        if *net == 0 {
            continue;
        }
        let mut account = accounts[id].clone();
        let amount = net.unsigned_abs();
        let updated = if *net < 0 {
            report.net = report
                .net
                .checked_add(amount)
                .ok_or_else(|| ApplyError::Invariant("net total overflows".into()))?;
            account
                .debits_posted
                .checked_add(amount)
                .map(|value| account.debits_posted = value)
        } else {
            account
                .credits_posted
                .checked_add(amount)
                .map(|value| account.credits_posted = value)
        };
        if updated.is_none() {
            return Err(ApplyError::Invariant(format!(
                "net posting overflows account {id}"
            )));
        }
        overlay.put_account(&account);
    }
    Ok(())
}

/// Counts the settled obligations into the report, and carries each set-aside one over to
/// `carry` or marks it rejected, in submission order.
fn dispose(
    overlay: &mut Overlay<'_>,
    obligations: &[QueuedObligation],
    included: &[bool],
    accounts: &BTreeMap<AccountId, Account>,
    mut carry: Option<&mut CycleRecord>,
    report: &mut CycleReport,
) -> Result<(), ApplyError> {
    for (index, obligation) in obligations.iter().enumerate() {
        if included[index] {
            report.settled += 1;
            report.gross = report
                .gross
                .checked_add(obligation.amount)
                .ok_or_else(|| ApplyError::Invariant("gross total overflows".into()))?;
            continue;
        }
        let key = obligation_key(obligation.debtor, obligation.id);
        let Some(mut pointer) = overlay.typed(&key, ObligationPointer::decode)? else {
            return Err(ApplyError::Invariant(
                "a queued obligation without its pointer".into(),
            ));
        };
        let creditor = accounts[&obligation.credit_account].owner;
        let carried = match carry.as_deref_mut() {
            Some(target) => carry_over(overlay, target, obligation, creditor, pointer.body_hash)?,
            None => false,
        };
        if carried {
            report.carried_over += 1;
        } else {
            pointer.rejected = true;
            overlay.put(key, Some(to_bytes(|writer| pointer.encode(writer))));
            report.rejected += 1;
        }
    }
    Ok(())
}

/// Queues a set-aside obligation in the target cycle if it meets that cycle's rules as if
/// submitted there: room in the cycle, both parties members, and within the creditor's
/// bilateral limit. Returns whether it was carried.
fn carry_over(
    overlay: &mut Overlay<'_>,
    target: &mut CycleRecord,
    obligation: &QueuedObligation,
    creditor: ParticipantId,
    body_hash: Hash,
) -> Result<bool, ApplyError> {
    if target.count >= OBLIGATIONS_PER_CYCLE_MAX {
        return Ok(false);
    }
    let admitted = is_member(overlay, target.id, obligation.debtor)?
        && is_member(overlay, target.id, creditor)?
        && take_credit(
            overlay,
            target,
            obligation.debtor,
            creditor,
            obligation.amount,
        )?
        .is_none();
    if admitted {
        enqueue(overlay, target, obligation, body_hash);
    }
    Ok(admitted)
}

/// Closes the settled cycle: drops its bilateral positions and close-time entry, records its
/// report, and writes the cycle that took the carried obligations.
fn finish(
    overlay: &mut Overlay<'_>,
    cycle: &mut CycleRecord,
    report: CycleReport,
    carry: Option<CycleRecord>,
) -> Result<(), ApplyError> {
    // Bilateral positions exist only while a cycle is open.
    let start = position_key(cycle.id, 0, 0);
    let mut end = position_key(cycle.id, u64::MAX, u64::MAX);
    end.push(0);
    for (key, _) in overlay.scan(&start, &end, cycle.count as usize)? {
        overlay.put(key, None);
    }
    overlay.put(cycle_due_key(cycle.closes_at_ms, cycle.id), None);
    cycle.report = Some(report);
    put_cycle(overlay, cycle);
    if let Some(target) = carry {
        put_cycle(overlay, &target);
    }
    Ok(())
}
