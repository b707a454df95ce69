//! Consortium governance on the ledger. A bank member proposes a change; it takes effect in
//! the block where M of the N active bank members have approved it, before its expiry. The
//! changes: the node set (add or remove a voter or an observer, rotate a node key), the
//! participants (onboard, offboard, rotate a key with an overlap window, revoke a key) and the
//! network parameters (per-transfer maximums, M itself). Every node decides from ledger state
//! alone, so every node decides alike at the same height; the node crate then carries a node
//! set change into Raft's configuration.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::limits::{NAME_SIZE_MAX, PARTICIPANT_KEYS_MAX};
use crate::model::{
    to_bytes, AccountId, AssetId, NodeRole, Participant, ParticipantId, PublicKey, Role,
};
use crate::overlay::Overlay;
use crate::result::ResultCode;
use crate::state::{
    key_owner_key, participant_key, prefix, signer_key, SignerRecord, StateStore, StoreError,
};

pub use crate::limits::BANK_MEMBERS_MAX;
pub use crate::limits::KEY_OVERLAP_MS_MAX;
pub use crate::limits::NODES_MAX;
pub use crate::limits::NODE_ADDRESS_SIZE_MAX;
pub use crate::limits::PROPOSAL_LIFETIME_MS_MAX;
pub use crate::limits::VOTERS_MAX;

/// A record key of kind `kind` followed by a big-endian id.
fn id_key(kind: u8, id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(kind);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Key of a node record.
pub fn node_key(id: u64) -> Vec<u8> {
    id_key(prefix::NODE, id)
}

/// Key of a proposal record.
pub fn proposal_key(id: u64) -> Vec<u8> {
    id_key(prefix::PROPOSAL, id)
}

/// Key of an active bank member's electorate entry.
pub fn member_key(id: ParticipantId) -> Vec<u8> {
    id_key(prefix::MEMBER, id)
}

/// Key of an offboarded participant's marker (value: the height it was offboarded at).
pub fn offboarded_key(id: ParticipantId) -> Vec<u8> {
    id_key(prefix::OFFBOARDED, id)
}

/// Key of the approvals required (M); absent means a majority of the active bank members.
pub fn approvals_required_key() -> Vec<u8> {
    vec![prefix::GOVERNANCE, b'm']
}

fn role_code(role: NodeRole) -> u8 {
    match role {
        NodeRole::Voter => 1,
        NodeRole::Observer => 2,
    }
}

fn role_of(code: u8) -> Result<NodeRole, DecodeError> {
    match code {
        1 => Ok(NodeRole::Voter),
        2 => Ok(NodeRole::Observer),
        other => Err(DecodeError::InvalidValue {
            field: "node.role",
            value: other.into(),
        }),
    }
}

/// A member of the node set, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Raft id.
    pub id: u64,
    /// Name, such as bank-4.
    pub name: String,
    /// Its ed25519 key (its libp2p identity).
    pub public_key: PublicKey,
    /// Voter or observer.
    pub role: NodeRole,
    /// Peer address `host:port` given when it was added; empty for genesis nodes, whose
    /// addresses are in each node's configuration.
    pub address: String,
    /// The height of the block that removed it; removed nodes keep their record.
    pub removed_at_height: Option<u64>,
}

impl NodeRecord {
    /// Canonical encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u64(self.id);
        writer.string(&self.name);
        writer.fixed(&self.public_key);
        writer.u8(role_code(self.role));
        writer.string(&self.address);
        match self.removed_at_height {
            None => writer.u8(0),
            Some(height) => {
                writer.u8(1);
                writer.u64(height);
            }
        }
    }
    /// Reads a record written by [`NodeRecord::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u64("node.id")?,
            name: reader.string("node.name", NAME_SIZE_MAX)?,
            public_key: reader.array("node.public_key")?,
            role: role_of(reader.u8("node.role")?)?,
            address: reader.string("node.address", NODE_ADDRESS_SIZE_MAX)?,
            removed_at_height: if reader.bool("node.removed")? {
                Some(reader.u64("node.removed_at_height")?)
            } else {
                None
            },
        })
    }
    /// Whether it is still a member.
    pub fn active(&self) -> bool {
        self.removed_at_height.is_none()
    }
}

/// A change the consortium decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GovernanceAction {
    /// Adds a node: a voter joins Raft's configuration (first as a learner until it caught
    /// up), an observer joins as a learner.
    AddNode {
        /// Its Raft id (never used before).
        node: u64,
        /// Its name.
        name: String,
        /// Its key.
        public_key: PublicKey,
        /// Voter or observer.
        role: NodeRole,
        /// Where peers reach it, `host:port`.
        address: String,
    },
    /// Removes a node from the node set and Raft's configuration.
    RemoveNode {
        /// Its Raft id.
        node: u64,
    },
    /// Replaces a node's key; the node restarts with the new key and keeps its data.
    RotateNodeKey {
        /// Its Raft id.
        node: u64,
        /// The new key.
        public_key: PublicKey,
    },
    /// Registers a new participant.
    Onboard {
        /// Its id (never used before).
        participant: ParticipantId,
        /// Its name.
        name: String,
        /// What it may do.
        role: Role,
        /// Its sponsoring bank member (settlement partners only).
        bank: Option<ParticipantId>,
        /// Its signing keys (1 to 16).
        keys: Vec<PublicKey>,
    },
    /// Ends a participant's membership: its keys stop signing at once, and a bank member
    /// leaves the electorate. Its records stay readable.
    Offboard {
        /// The participant.
        participant: ParticipantId,
    },
    /// Adds a participant key now and retires an old one after an overlap window of block
    /// time (0: at once).
    RotateKey {
        /// The participant.
        participant: ParticipantId,
        /// The key that replaces it.
        new_key: PublicKey,
        /// The key rotated out.
        old_key: PublicKey,
        /// Block time during which both keys sign.
        overlap_ms: u64,
    },
    /// Removes one of a participant's keys at once.
    RevokeParticipantKey {
        /// The participant.
        participant: ParticipantId,
        /// The key.
        key: PublicKey,
    },
    /// Sets (or with 0 removes) an asset's per-transfer maximum.
    SetAssetTransferMax {
        /// The asset.
        asset: AssetId,
        /// Largest amount of one transfer.
        amount_max: u128,
    },
    /// Sets M, the approvals a proposal needs (1 to the number of active bank members).
    SetApprovalsRequired {
        /// M.
        approvals: u8,
    },
    /// Sets the most of an asset that may be outstanding (a cap below what is outstanding
    /// stops further mints and undoes nothing).
    SetSupplyCap {
        /// The asset.
        asset: AssetId,
        /// The cap.
        cap: u128,
    },
    /// Sets (0 removes) the most a participant's bank may grant one of its accounts in an asset
    /// as a credit line.
    SetCreditLineCap {
        /// The settlement partner.
        participant: ParticipantId,
        /// The asset.
        asset: AssetId,
        /// The cap.
        cap: u128,
    },
    /// Grants any account but an issuance account a credit line (a bank's own accounts get
    /// theirs this way); 0 removes it.
    GrantCreditLine {
        /// The account.
        account: AccountId,
        /// The line.
        line: u128,
    },
}

const ACTION_ADD_NODE: u8 = 1;
const ACTION_REMOVE_NODE: u8 = 2;
const ACTION_ROTATE_NODE_KEY: u8 = 3;
const ACTION_ONBOARD: u8 = 4;
const ACTION_OFFBOARD: u8 = 5;
const ACTION_ROTATE_KEY: u8 = 6;
const ACTION_REVOKE_KEY: u8 = 7;
const ACTION_SET_TRANSFER_MAX: u8 = 8;
const ACTION_SET_APPROVALS_REQUIRED: u8 = 9;
const ACTION_SET_SUPPLY_CAP: u8 = 10;
const ACTION_SET_CREDIT_LINE_CAP: u8 = 11;
const ACTION_GRANT_CREDIT_LINE: u8 = 12;

/// An asset and an amount, as several parameter changes carry them.
fn asset_amount(writer: &mut Writer, asset: AssetId, amount: u128) {
    writer.u32(asset);
    writer.u128(amount);
}

impl GovernanceAction {
    /// The participant the change is about, if any: it hears of the proposal and its votes.
    pub fn participant(&self) -> Option<ParticipantId> {
        match self {
            GovernanceAction::Onboard { participant, .. }
            | GovernanceAction::Offboard { participant }
            | GovernanceAction::RotateKey { participant, .. }
            | GovernanceAction::RevokeParticipantKey { participant, .. }
            | GovernanceAction::SetCreditLineCap { participant, .. } => Some(*participant),
            GovernanceAction::AddNode { .. }
            | GovernanceAction::RemoveNode { .. }
            | GovernanceAction::RotateNodeKey { .. }
            | GovernanceAction::SetAssetTransferMax { .. }
            | GovernanceAction::SetApprovalsRequired { .. }
            | GovernanceAction::SetSupplyCap { .. }
            | GovernanceAction::GrantCreditLine { .. } => None,
        }
    }

    /// Its tag byte in the canonical encoding.
    fn tag(&self) -> u8 {
        match self {
            GovernanceAction::AddNode { .. } => ACTION_ADD_NODE,
            GovernanceAction::RemoveNode { .. } => ACTION_REMOVE_NODE,
            GovernanceAction::RotateNodeKey { .. } => ACTION_ROTATE_NODE_KEY,
            GovernanceAction::Onboard { .. } => ACTION_ONBOARD,
            GovernanceAction::Offboard { .. } => ACTION_OFFBOARD,
            GovernanceAction::RotateKey { .. } => ACTION_ROTATE_KEY,
            GovernanceAction::RevokeParticipantKey { .. } => ACTION_REVOKE_KEY,
            GovernanceAction::SetAssetTransferMax { .. } => ACTION_SET_TRANSFER_MAX,
            GovernanceAction::SetApprovalsRequired { .. } => ACTION_SET_APPROVALS_REQUIRED,
            GovernanceAction::SetSupplyCap { .. } => ACTION_SET_SUPPLY_CAP,
            GovernanceAction::SetCreditLineCap { .. } => ACTION_SET_CREDIT_LINE_CAP,
            GovernanceAction::GrantCreditLine { .. } => ACTION_GRANT_CREDIT_LINE,
        }
    }

    /// Canonical encoding: a tag byte, then the fields in declaration order.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u8(self.tag());
        match self {
            GovernanceAction::AddNode {
                node,
                name,
                public_key,
                role,
                address,
            } => {
                writer.u64(*node);
                writer.string(name);
                writer.fixed(public_key);
                writer.u8(role_code(*role));
                writer.string(address);
            }
            GovernanceAction::RemoveNode { node } => writer.u64(*node),
            GovernanceAction::RotateNodeKey { node, public_key } => {
                writer.u64(*node);
                writer.fixed(public_key);
            }
            GovernanceAction::Onboard {
                participant,
                name,
                role,
                bank,
                keys,
            } => Participant {
                id: *participant,
                name: name.clone(),
                role: *role,
                bank: *bank,
                keys: keys.clone(),
            }
            .encode(writer),
            GovernanceAction::Offboard { participant } => writer.u64(*participant),
            GovernanceAction::RotateKey {
                participant,
                new_key,
                old_key,
                overlap_ms,
            } => {
                writer.u64(*participant);
                writer.fixed(new_key);
                writer.fixed(old_key);
                writer.u64(*overlap_ms);
            }
            GovernanceAction::RevokeParticipantKey { participant, key } => {
                writer.u64(*participant);
                writer.fixed(key);
            }
            GovernanceAction::SetAssetTransferMax { asset, amount_max } => {
                asset_amount(writer, *asset, *amount_max)
            }
            GovernanceAction::SetApprovalsRequired { approvals } => writer.u8(*approvals),
            GovernanceAction::SetSupplyCap { asset, cap } => asset_amount(writer, *asset, *cap),
            GovernanceAction::SetCreditLineCap {
                participant,
                asset,
                cap,
            } => {
                writer.u64(*participant);
                asset_amount(writer, *asset, *cap);
            }
            GovernanceAction::GrantCreditLine { account, line } => {
                writer.u128(*account);
                writer.u128(*line);
            }
        }
    }

    /// Reads an action written by [`GovernanceAction::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.u8("governance.action")? {
            ACTION_ADD_NODE => GovernanceAction::AddNode {
                node: reader.u64("add_node.node")?,
                name: reader.string("add_node.name", NAME_SIZE_MAX)?,
                public_key: reader.array("add_node.public_key")?,
                role: role_of(reader.u8("add_node.role")?)?,
                address: reader.string("add_node.address", NODE_ADDRESS_SIZE_MAX)?,
            },
            ACTION_REMOVE_NODE => GovernanceAction::RemoveNode {
                node: reader.u64("remove_node.node")?,
            },
            ACTION_ROTATE_NODE_KEY => GovernanceAction::RotateNodeKey {
                node: reader.u64("rotate_node_key.node")?,
                public_key: reader.array("rotate_node_key.public_key")?,
            },
            ACTION_ONBOARD => {
                let participant = Participant::decode(reader)?;
                GovernanceAction::Onboard {
                    participant: participant.id,
                    name: participant.name,
                    role: participant.role,
                    bank: participant.bank,
                    keys: participant.keys,
                }
            }
            ACTION_OFFBOARD => GovernanceAction::Offboard {
                participant: reader.u64("offboard.participant")?,
            },
            ACTION_ROTATE_KEY => GovernanceAction::RotateKey {
                participant: reader.u64("rotate_key.participant")?,
                new_key: reader.array("rotate_key.new_key")?,
                old_key: reader.array("rotate_key.old_key")?,
                overlap_ms: reader.u64("rotate_key.overlap_ms")?,
            },
            ACTION_REVOKE_KEY => GovernanceAction::RevokeParticipantKey {
                participant: reader.u64("revoke_key.participant")?,
                key: reader.array("revoke_key.key")?,
            },
            ACTION_SET_TRANSFER_MAX => GovernanceAction::SetAssetTransferMax {
                asset: reader.u32("set_transfer_max.asset")?,
                amount_max: reader.u128("set_transfer_max.amount_max")?,
            },
            ACTION_SET_APPROVALS_REQUIRED => GovernanceAction::SetApprovalsRequired {
                approvals: reader.u8("set_approvals_required.approvals")?,
            },
            ACTION_SET_SUPPLY_CAP => GovernanceAction::SetSupplyCap {
                asset: reader.u32("set_supply_cap.asset")?,
                cap: reader.u128("set_supply_cap.cap")?,
            },
            ACTION_SET_CREDIT_LINE_CAP => GovernanceAction::SetCreditLineCap {
                participant: reader.u64("set_credit_line_cap.participant")?,
                asset: reader.u32("set_credit_line_cap.asset")?,
                cap: reader.u128("set_credit_line_cap.cap")?,
            },
            ACTION_GRANT_CREDIT_LINE => GovernanceAction::GrantCreditLine {
                account: reader.u128("grant_credit_line.account")?,
                line: reader.u128("grant_credit_line.line")?,
            },
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "governance.action",
                    value: other.into(),
                })
            }
        })
    }

    /// Whether it changes the node set (and so Raft's configuration or the peers' identities).
    pub fn changes_nodes(&self) -> bool {
        matches!(
            self,
            GovernanceAction::AddNode { .. }
                | GovernanceAction::RemoveNode { .. }
                | GovernanceAction::RotateNodeKey { .. }
        )
    }
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalStatus {
    /// Collecting approvals.
    Open,
    /// Approved and carried out at this height.
    Executed {
        /// The block that carried it out.
        height: u64,
    },
    /// Approved at this height, but the ledger refused the change then (for example its key
    /// was registered meanwhile): nothing changed.
    Failed {
        /// The deciding block.
        height: u64,
        /// Why the change was refused.
        code: ResultCode,
    },
}

/// A proposal and its approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRecord {
    /// Its id, chosen by the proposer, unique on the network.
    pub id: u64,
    /// The bank member that proposed it.
    pub proposer: ParticipantId,
    /// The height of the block that recorded it.
    pub proposed_height: u64,
    /// Block time after which it can no longer be approved.
    pub expires_at_ms: u64,
    /// The change.
    pub action: GovernanceAction,
    /// The bank members that approved it, ascending (the proposer first approves).
    pub approvals: Vec<ParticipantId>,
    /// Where it stands.
    pub status: ProposalStatus,
}

impl ProposalRecord {
    /// Canonical encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u64(self.id);
        writer.u64(self.proposer);
        writer.u64(self.proposed_height);
        writer.u64(self.expires_at_ms);
        self.action.encode(writer);
        writer.u8(u8::try_from(self.approvals.len()).expect("bounded by BANK_MEMBERS_MAX"));
        for approval in &self.approvals {
            writer.u64(*approval);
        }
        match self.status {
            ProposalStatus::Open => writer.u8(0),
            ProposalStatus::Executed { height } => {
                writer.u8(1);
                writer.u64(height);
            }
            ProposalStatus::Failed { height, code } => {
                writer.u8(2);
                writer.u64(height);
                writer.u16(code.number());
            }
        }
    }

    /// Reads a record written by [`ProposalRecord::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = reader.u64("proposal.id")?;
        let proposer = reader.u64("proposal.proposer")?;
        let proposed_height = reader.u64("proposal.proposed_height")?;
        let expires_at_ms = reader.u64("proposal.expires_at_ms")?;
        let action = GovernanceAction::decode(reader)?;
        let count = reader.u8("proposal.approvals")? as usize;
        if count > BANK_MEMBERS_MAX {
            return Err(DecodeError::TooLong {
                field: "proposal.approvals",
                length: count,
                limit: BANK_MEMBERS_MAX,
            });
        }
        let mut approvals = Vec::with_capacity(count);
        for _ in 0..count {
            approvals.push(reader.u64("proposal.approval")?);
        }
        let status = match reader.u8("proposal.status")? {
            0 => ProposalStatus::Open,
            1 => ProposalStatus::Executed {
                height: reader.u64("proposal.height")?,
            },
            2 => {
                let height = reader.u64("proposal.height")?;
                let number = reader.u16("proposal.code")?;
                let code = ResultCode::from_number(number).ok_or(DecodeError::InvalidValue {
                    field: "proposal.code",
                    value: number.into(),
                })?;
                ProposalStatus::Failed { height, code }
            }
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "proposal.status",
                    value: other.into(),
                })
            }
        };
        Ok(Self {
            id,
            proposer,
            proposed_height,
            expires_at_ms,
            action,
            approvals,
            status,
        })
    }
}

/// The genesis records of the node set and the electorate.
pub(crate) fn genesis_records(
    nodes: &[NodeRecord],
    bank_members: &[ParticipantId],
) -> crate::state::Records {
    let mut records: crate::state::Records = nodes
        .iter()
        .map(|node| (node_key(node.id), to_bytes(|writer| node.encode(writer))))
        .collect();
    records.extend(
        bank_members
            .iter()
            .map(|member| (member_key(*member), Vec::new())),
    );
    records
}

/// Every node record, active and removed, in id order (for the node crate and the API).
pub fn node_records(store: &dyn StateStore) -> Result<Vec<NodeRecord>, StoreError> {
    let records = store.scan(&[prefix::NODE], &[prefix::NODE + 1], NODES_MAX)?;
    records
        .iter()
        .map(|(key, value)| {
            crate::model::from_bytes(value, NodeRecord::decode)
                .map_err(|source| StoreError(format!("node record {}: {source}", hex::encode(key))))
        })
        .collect()
}

fn nodes(overlay: &Overlay<'_>) -> Result<Vec<NodeRecord>, ApplyError> {
    overlay
        .scan(&[prefix::NODE], &[prefix::NODE + 1], NODES_MAX)?
        .iter()
        .map(|(key, value)| {
            crate::model::from_bytes(value, NodeRecord::decode).map_err(|source| {
                ApplyError::Corrupt {
                    key: hex::encode(key),
                    source,
                }
            })
        })
        .collect()
}

/// The active bank members, ascending.
fn electorate(overlay: &Overlay<'_>) -> Result<Vec<ParticipantId>, ApplyError> {
    let entries = overlay.scan(
        &[prefix::MEMBER],
        &[prefix::MEMBER + 1],
        BANK_MEMBERS_MAX + 1,
    )?;
    Ok(entries
        .iter()
        .filter_map(|(key, _)| <[u8; 8]>::try_from(&key[1..]).ok().map(u64::from_be_bytes))
        .collect())
}

/// M for an electorate of `members`: the set value (at most `members`) or a majority.
fn approvals_required(overlay: &Overlay<'_>, members: usize) -> Result<usize, ApplyError> {
    let set = overlay.typed(&approvals_required_key(), |reader| reader.u8("approvals"))?;
    Ok(match set {
        Some(approvals) => usize::from(approvals).min(members).max(1),
        None => members / 2 + 1,
    })
}

/// A bank member proposes a change; its own approval counts at once.
pub(crate) fn propose(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    id: u64,
    expires_at_ms: u64,
    action: &GovernanceAction,
) -> Result<Outcome, ApplyError> {
    let members = electorate(overlay)?;
    if !members.contains(&context.signer.id) {
        return Ok(Outcome::Rejected(ResultCode::BankMembersOnly));
    }
    if let Some(existing) = overlay.typed(&proposal_key(id), ProposalRecord::decode)? {
        // The same proposal submitted again is the one already recorded.
        let same = existing.proposer == context.signer.id
            && existing.action == *action
            && existing.expires_at_ms == expires_at_ms;
        return Ok(if same {
            Outcome::Existing(ResultCode::Ok)
        } else {
            Outcome::Rejected(ResultCode::ProposalExists)
        });
    }
    let now = context.block.time_ms;
    if expires_at_ms <= now || expires_at_ms - now > PROPOSAL_LIFETIME_MS_MAX {
        return Ok(Outcome::Rejected(ResultCode::InvalidProposalExpiry));
    }
    if let Some(code) = check(overlay, context, action)? {
        return Ok(Outcome::Rejected(code));
    }
    let record = ProposalRecord {
        id,
        proposer: context.signer.id,
        proposed_height: context.block.height,
        expires_at_ms,
        action: action.clone(),
        approvals: vec![context.signer.id],
        status: ProposalStatus::Open,
    };
    decide(overlay, context, record, &members)?;
    Ok(Outcome::Applied)
}

/// A bank member approves an open proposal; the approval that reaches M carries it out.
pub(crate) fn approve(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    id: u64,
) -> Result<Outcome, ApplyError> {
    let members = electorate(overlay)?;
    if !members.contains(&context.signer.id) {
        return Ok(Outcome::Rejected(ResultCode::BankMembersOnly));
    }
    let Some(mut record) = overlay.typed(&proposal_key(id), ProposalRecord::decode)? else {
        return Ok(Outcome::Rejected(ResultCode::UnknownProposal));
    };
    let again = record.approvals.contains(&context.signer.id);
    let open = record.status == ProposalStatus::Open;
    if again && !open {
        return Ok(Outcome::Existing(ResultCode::Ok));
    }
    if !open {
        return Ok(Outcome::Rejected(ResultCode::ProposalClosed));
    }
    if record.expires_at_ms <= context.block.time_ms {
        return Ok(Outcome::Rejected(ResultCode::ProposalExpired));
    }
    if again {
        // A repeat approval counts once, but decides again: offboarding may have lowered M
        // to what the proposal already has.
        decide(overlay, context, record, &members)?;
        return Ok(Outcome::Applied);
    }
    let position = record
        .approvals
        .binary_search(&context.signer.id)
        .unwrap_or_else(|position| position);
    record.approvals.insert(position, context.signer.id);
    decide(overlay, context, record, &members)?;
    Ok(Outcome::Applied)
}

/// Counts the approvals of active members; at M, carries the action out now.
fn decide(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    mut record: ProposalRecord,
    members: &[ParticipantId],
) -> Result<(), ApplyError> {
    // Only members active now count; the others' approvals are dropped (which also keeps the
    // list within BANK_MEMBERS_MAX over the proposal's life).
    record
        .approvals
        .retain(|approval| members.contains(approval));
    let counted = record.approvals.len();
    if counted >= approvals_required(overlay, members.len())? {
        let height = context.block.height;
        record.status = match execute(overlay, context, &record.action)? {
            None => ProposalStatus::Executed { height },
            Some(code) => ProposalStatus::Failed { height, code },
        };
    }
    overlay.put(
        proposal_key(record.id),
        Some(to_bytes(|writer| record.encode(writer))),
    );
    Ok(())
}

fn valid_key(key: &PublicKey) -> bool {
    ed25519_zebra::VerificationKey::try_from(*key).is_ok()
}

fn valid_address(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    !host.is_empty()
        && address.len() <= NODE_ADDRESS_SIZE_MAX
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b".-[]:".contains(&byte))
        && port.parse::<u16>().is_ok_and(|port| port > 0)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= NAME_SIZE_MAX
}

/// A participant that may still act: registered and not offboarded.
fn active_participant(
    overlay: &Overlay<'_>,
    id: ParticipantId,
) -> Result<Result<Participant, ResultCode>, ApplyError> {
    let Some(participant) = overlay.participant(id)? else {
        return Ok(Err(ResultCode::UnknownParticipant));
    };
    if overlay.get(&offboarded_key(id))?.is_some() {
        return Ok(Err(ResultCode::ParticipantOffboarded));
    }
    Ok(Ok(participant))
}

/// Why the ledger would refuse the change now, or `None` when it may be carried out.
fn check(
    overlay: &Overlay<'_>,
    context: &OperationContext<'_>,
    action: &GovernanceAction,
) -> Result<Option<ResultCode>, ApplyError> {
    use GovernanceAction as A;
    let now_ms = context.block.time_ms;
    match action {
        A::AddNode {
            node,
            name,
            public_key,
            role,
            address,
        } => check_add_node(overlay, *node, name, public_key, *role, address),
        A::RemoveNode { node } => check_remove_node(overlay, *node),
        A::RotateNodeKey { node, public_key } => check_rotate_node_key(overlay, *node, public_key),
        A::Onboard {
            participant,
            name,
            role,
            bank,
            keys,
        } => check_onboard(overlay, *participant, name, *role, *bank, keys),
        A::Offboard { participant } => check_offboard(overlay, *participant),
        A::RotateKey {
            participant,
            new_key,
            old_key,
            overlap_ms,
        } => check_rotate_key(
            overlay,
            *participant,
            (new_key, old_key),
            *overlap_ms,
            now_ms,
        ),
        A::RevokeParticipantKey { participant, key } => {
            revoke_check(overlay, *participant, key, now_ms)
        }
        A::SetAssetTransferMax { asset, .. } => check_asset_transfer_max(overlay, *asset),
        A::SetApprovalsRequired { approvals } => check_approvals_required(overlay, *approvals),
        A::SetSupplyCap { asset, .. } => check_asset_transfer_max(overlay, *asset),
        A::SetCreditLineCap {
            participant, asset, ..
        } => match check_asset_transfer_max(overlay, *asset)? {
            Some(code) => Ok(Some(code)),
            None => Ok(overlay
                .participant(*participant)?
                .is_none()
                .then_some(ResultCode::UnknownParticipant)),
        },
        A::GrantCreditLine { account, .. } => crate::supply::check_line(overlay, *account),
    }
}

/// The active voters among the node records.
fn active_voters(nodes: &[NodeRecord]) -> usize {
    nodes
        .iter()
        .filter(|record| record.active() && record.role == NodeRole::Voter)
        .count()
}

/// Why a node may not join: a malformed record or key, an id or key already used, or a full
/// node set (or voter set, for a voter).
fn check_add_node(
    overlay: &Overlay<'_>,
    node: u64,
    name: &str,
    public_key: &PublicKey,
    role: NodeRole,
    address: &str,
) -> Result<Option<ResultCode>, ApplyError> {
    let refuse = |code| Ok(Some(code));
    if node == 0 || !valid_name(name) || !valid_address(address) {
        return refuse(ResultCode::InvalidNode);
    }
    if !valid_key(public_key) {
        return refuse(ResultCode::InvalidKey);
    }
    let nodes = nodes(overlay)?;
    if nodes.iter().any(|record| record.id == node) {
        return refuse(ResultCode::NodeExists);
    }
    if nodes.iter().any(|record| record.public_key == *public_key) {
        return refuse(ResultCode::KeyInUse);
    }
    let voters = active_voters(&nodes);
    if nodes.len() >= NODES_MAX || (role == NodeRole::Voter && voters >= VOTERS_MAX) {
        return refuse(ResultCode::TooManyNodes);
    }
    Ok(None)
}

/// Why a node may not leave: it is not an active node, or it is the last voter.
fn check_remove_node(overlay: &Overlay<'_>, node: u64) -> Result<Option<ResultCode>, ApplyError> {
    let nodes = nodes(overlay)?;
    let Some(record) = nodes
        .iter()
        .find(|record| record.id == node && record.active())
    else {
        return Ok(Some(ResultCode::UnknownNode));
    };
    if record.role == NodeRole::Voter && active_voters(&nodes) <= 1 {
        return Ok(Some(ResultCode::LastVoter));
    }
    Ok(None)
}

/// Why a node's key may not be replaced: a malformed key, no such active node, or a key in use.
fn check_rotate_node_key(
    overlay: &Overlay<'_>,
    node: u64,
    public_key: &PublicKey,
) -> Result<Option<ResultCode>, ApplyError> {
    if !valid_key(public_key) {
        return Ok(Some(ResultCode::InvalidKey));
    }
    let nodes = nodes(overlay)?;
    if !nodes
        .iter()
        .any(|record| record.id == node && record.active())
    {
        return Ok(Some(ResultCode::UnknownNode));
    }
    if nodes.iter().any(|record| record.public_key == *public_key) {
        return Ok(Some(ResultCode::KeyInUse));
    }
    Ok(None)
}

/// Why a participant may not be registered: its id is taken, its record is malformed (a
/// partner without an active sponsoring bank member counts), the electorate is full, or one of
/// its keys is malformed or in use.
fn check_onboard(
    overlay: &Overlay<'_>,
    participant: ParticipantId,
    name: &str,
    role: Role,
    bank: Option<ParticipantId>,
    keys: &[PublicKey],
) -> Result<Option<ResultCode>, ApplyError> {
    let refuse = |code| Ok(Some(code));
    if overlay.get(&participant_key(participant))?.is_some() {
        return refuse(ResultCode::ParticipantExists);
    }
    let mut unique = keys.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let shape = valid_name(name)
        && !keys.is_empty()
        && keys.len() <= PARTICIPANT_KEYS_MAX
        && unique.len() == keys.len()
        && (role == Role::SettlementPartner) == bank.is_some();
    if !shape {
        return refuse(ResultCode::InvalidParticipant);
    }
    if let Some(bank) = bank {
        let members = electorate(overlay)?;
        if !members.contains(&bank) {
            return refuse(ResultCode::InvalidParticipant);
        }
    }
    if role == Role::BankMember && electorate(overlay)?.len() >= BANK_MEMBERS_MAX {
        return refuse(ResultCode::TooManyBankMembers);
    }
    for key in keys {
        if !valid_key(key) {
            return refuse(ResultCode::InvalidKey);
        }
        if overlay.get(&key_owner_key(key))?.is_some() {
            return refuse(ResultCode::KeyInUse);
        }
    }
    Ok(None)
}

/// Why a participant may not be offboarded: it is not active, or it is the last bank member.
fn check_offboard(
    overlay: &Overlay<'_>,
    participant: ParticipantId,
) -> Result<Option<ResultCode>, ApplyError> {
    let found = match active_participant(overlay, participant)? {
        Ok(found) => found,
        Err(code) => return Ok(Some(code)),
    };
    if found.role == Role::BankMember && electorate(overlay)?.len() <= 1 {
        return Ok(Some(ResultCode::LastBankMember));
    }
    Ok(None)
}

/// Why a participant's key may not be rotated: the participant is not active, the old key is
/// not its own, the overlap is too long, the new key is malformed or in use, or the
/// participant already has as many live keys as allowed.
fn check_rotate_key(
    overlay: &Overlay<'_>,
    participant: ParticipantId,
    (new_key, old_key): (&PublicKey, &PublicKey),
    overlap_ms: u64,
    now_ms: u64,
) -> Result<Option<ResultCode>, ApplyError> {
    let refuse = |code| Ok(Some(code));
    let found = match active_participant(overlay, participant)? {
        Ok(found) => found,
        Err(code) => return refuse(code),
    };
    if !found.keys.contains(old_key) {
        return refuse(ResultCode::KeyNotRegistered);
    }
    if overlap_ms > KEY_OVERLAP_MS_MAX {
        return refuse(ResultCode::InvalidOverlap);
    }
    if !valid_key(new_key) {
        return refuse(ResultCode::InvalidKey);
    }
    if overlay.get(&key_owner_key(new_key))?.is_some() {
        return refuse(ResultCode::KeyInUse);
    }
    let live = live_keys(overlay, &found, now_ms)?;
    if live.len() >= PARTICIPANT_KEYS_MAX {
        return refuse(ResultCode::TooManyKeys);
    }
    Ok(None)
}

/// Why an asset's per-transfer maximum may not be set: the asset is unknown.
fn check_asset_transfer_max(
    overlay: &Overlay<'_>,
    asset: AssetId,
) -> Result<Option<ResultCode>, ApplyError> {
    if overlay.asset(asset)?.is_none() {
        return Ok(Some(ResultCode::UnknownAsset));
    }
    Ok(None)
}

/// Why M may not be set: it is 0 or more than the active bank members.
fn check_approvals_required(
    overlay: &Overlay<'_>,
    approvals: u8,
) -> Result<Option<ResultCode>, ApplyError> {
    let members = electorate(overlay)?.len();
    if approvals == 0 || usize::from(approvals) > members {
        return Ok(Some(ResultCode::InvalidApprovalsRequired));
    }
    Ok(None)
}

fn revoke_check(
    overlay: &Overlay<'_>,
    participant: ParticipantId,
    key: &PublicKey,
    now_ms: u64,
) -> Result<Option<ResultCode>, ApplyError> {
    let found = match active_participant(overlay, participant)? {
        Ok(found) => found,
        Err(code) => return Ok(Some(code)),
    };
    if !found.keys.contains(key) {
        return Ok(Some(ResultCode::KeyNotRegistered));
    }
    // At least one key that still signs must remain (a retired key does not count).
    let live = live_keys(overlay, &found, now_ms)?;
    if live.iter().all(|live_key| live_key == key) {
        return Ok(Some(ResultCode::LastKey));
    }
    Ok(None)
}

/// The participant's keys not yet retired at block time `now_ms`.
fn live_keys(
    overlay: &Overlay<'_>,
    participant: &Participant,
    now_ms: u64,
) -> Result<Vec<PublicKey>, ApplyError> {
    let mut live = Vec::with_capacity(participant.keys.len());
    for key in &participant.keys {
        let retired = overlay
            .signer(key)?
            .is_some_and(|record| record.retire_at_ms.is_some_and(|at| at <= now_ms));
        if !retired {
            live.push(*key);
        }
    }
    Ok(live)
}

fn put_participant(overlay: &mut Overlay<'_>, participant: &Participant) {
    overlay.put(
        participant_key(participant.id),
        Some(to_bytes(|writer| participant.encode(writer))),
    );
}

fn put_signer(overlay: &mut Overlay<'_>, key: &PublicKey, record: SignerRecord) {
    overlay.put(
        signer_key(key),
        Some(to_bytes(|writer| record.encode(writer))),
    );
    overlay.put(
        key_owner_key(key),
        Some(record.participant.to_le_bytes().to_vec()),
    );
}

fn put_node(overlay: &mut Overlay<'_>, node: &NodeRecord) {
    overlay.put(
        node_key(node.id),
        Some(to_bytes(|writer| node.encode(writer))),
    );
}

/// Removes a key from its participant and the signer index.
fn drop_key(overlay: &mut Overlay<'_>, participant: &mut Participant, key: &PublicKey) {
    participant.keys.retain(|registered| registered != key);
    overlay.put(signer_key(key), None);
}

/// Carries the action out; `Some(code)` when the ledger refuses it now (nothing written).
fn execute(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    action: &GovernanceAction,
) -> Result<Option<ResultCode>, ApplyError> {
    if let Some(code) = check(overlay, context, action)? {
        return Ok(Some(code));
    }
    carry_out(overlay, context, action)?;
    Ok(None)
}

/// Writes the change of a checked action.
fn carry_out(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    action: &GovernanceAction,
) -> Result<(), ApplyError> {
    use GovernanceAction as A;
    let height = context.block.height;
    match action {
        A::AddNode {
            node,
            name,
            public_key,
            role,
            address,
        } => add_node(overlay, *node, name, public_key, *role, address),
        A::RemoveNode { node } => remove_node(overlay, *node, height)?,
        A::RotateNodeKey { node, public_key } => rotate_node_key(overlay, *node, public_key)?,
        A::Onboard {
            participant,
            name,
            role,
            bank,
            keys,
        } => onboard(overlay, *participant, name, *role, *bank, keys),
        A::Offboard { participant } => offboard(overlay, *participant, height)?,
        A::RotateKey {
            participant,
            new_key,
            old_key,
            overlap_ms,
        } => rotate_key(
            overlay,
            *participant,
            (new_key, old_key),
            *overlap_ms,
            context.block.time_ms,
        )?,
        A::RevokeParticipantKey { participant, key } => {
            revoke_participant_key(overlay, *participant, key)?
        }
        A::SetAssetTransferMax { asset, amount_max } => {
            crate::limits_rules::put_transfer_max(overlay, *asset, *amount_max)
        }
        A::SetApprovalsRequired { approvals } => overlay.put(
            approvals_required_key(),
            Some(to_bytes(|writer| writer.u8(*approvals))),
        ),
        A::SetSupplyCap { asset, cap } => crate::supply::set_supply_cap(overlay, *asset, *cap)?,
        A::SetCreditLineCap {
            participant,
            asset,
            cap,
        } => crate::supply::set_line_cap(overlay, *participant, *asset, *cap),
        A::GrantCreditLine { account, line } => {
            crate::supply::grant_line(overlay, *account, *line)?;
        }
    }
    Ok(())
}

/// Records a new active node.
fn add_node(
    overlay: &mut Overlay<'_>,
    node: u64,
    name: &str,
    public_key: &PublicKey,
    role: NodeRole,
    address: &str,
) {
    put_node(
        overlay,
        &NodeRecord {
            id: node,
            name: name.to_string(),
            public_key: *public_key,
            role,
            address: address.to_string(),
            removed_at_height: None,
        },
    );
}

/// Marks a node removed at `height`; its record stays.
fn remove_node(overlay: &mut Overlay<'_>, node: u64, height: u64) -> Result<(), ApplyError> {
    let mut record = checked_node(overlay, node)?;
    record.removed_at_height = Some(height);
    put_node(overlay, &record);
    Ok(())
}

/// Replaces a node's key.
fn rotate_node_key(
    overlay: &mut Overlay<'_>,
    node: u64,
    public_key: &PublicKey,
) -> Result<(), ApplyError> {
    let mut record = checked_node(overlay, node)?;
    record.public_key = *public_key;
    put_node(overlay, &record);
    Ok(())
}

/// The record of a node the action's check found active.
fn checked_node(overlay: &Overlay<'_>, node: u64) -> Result<NodeRecord, ApplyError> {
    overlay
        .typed(&node_key(node), NodeRecord::decode)?
        .ok_or_else(|| ApplyError::Invariant("a checked node has no record".into()))
}

/// The record of a participant the action's check found active.
fn checked_participant(
    overlay: &Overlay<'_>,
    participant: ParticipantId,
) -> Result<Participant, ApplyError> {
    overlay
        .participant(participant)?
        .ok_or_else(|| ApplyError::Invariant("a checked participant is gone".into()))
}

/// Registers a participant: its keys in the signer index, a bank member in the electorate,
/// then its record.
fn onboard(
    overlay: &mut Overlay<'_>,
    participant: ParticipantId,
    name: &str,
    role: Role,
    bank: Option<ParticipantId>,
    keys: &[PublicKey],
) {
    for key in keys {
        put_signer(
            overlay,
            key,
            SignerRecord {
                participant,
                retire_at_ms: None,
            },
        );
    }
    if role == Role::BankMember {
        overlay.put(member_key(participant), Some(Vec::new()));
    }
    let record = Participant {
        id: participant,
        name: name.to_string(),
        role,
        bank,
        keys: keys.to_vec(),
    };
    put_participant(overlay, &record);
}

/// Ends a participant's membership: drops every key, leaves the electorate, and marks it
/// offboarded at `height`.
fn offboard(
    overlay: &mut Overlay<'_>,
    participant: ParticipantId,
    height: u64,
) -> Result<(), ApplyError> {
    let mut found = checked_participant(overlay, participant)?;
    for key in found.keys.clone() {
        drop_key(overlay, &mut found, &key);
    }
    put_participant(overlay, &found);
    overlay.put(member_key(participant), None);
    overlay.put(
        offboarded_key(participant),
        Some(height.to_le_bytes().to_vec()),
    );
    Ok(())
}

/// Removes one of a participant's keys at once.
fn revoke_participant_key(
    overlay: &mut Overlay<'_>,
    participant: ParticipantId,
    key: &PublicKey,
) -> Result<(), ApplyError> {
    let mut found = checked_participant(overlay, participant)?;
    drop_key(overlay, &mut found, key);
    put_participant(overlay, &found);
    Ok(())
}

/// Adds `new_key` and retires `old_key` after the overlap (at once when it is 0), first
/// dropping the keys whose overlap already ended.
fn rotate_key(
    overlay: &mut Overlay<'_>,
    participant: ParticipantId,
    (new_key, old_key): (&PublicKey, &PublicKey),
    overlap_ms: u64,
    now_ms: u64,
) -> Result<(), ApplyError> {
    let mut found = checked_participant(overlay, participant)?;
    // Keys whose overlap already ended leave the record now.
    let live = live_keys(overlay, &found, now_ms)?;
    for key in found.keys.clone() {
        if !live.contains(&key) {
            drop_key(overlay, &mut found, &key);
        }
    }
    found.keys.push(*new_key);
    put_signer(
        overlay,
        new_key,
        SignerRecord {
            participant,
            retire_at_ms: None,
        },
    );
    if overlap_ms == 0 {
        drop_key(overlay, &mut found, old_key);
    } else if found.keys.contains(old_key) {
        put_signer(
            overlay,
            old_key,
            SignerRecord {
                participant,
                retire_at_ms: Some(now_ms.saturating_add(overlap_ms)),
            },
        );
    }
    put_participant(overlay, &found);
    Ok(())
}

/// A key revokes itself, or a sponsoring bank member revokes any key of its partner, at once,
/// without waiting for the consortium: the answer to a leaked key. A participant's key may not
/// revoke its other keys: whoever holds a leaked key could otherwise lock the owner out.
pub(crate) fn revoke_key(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    participant: ParticipantId,
    key: &PublicKey,
) -> Result<Outcome, ApplyError> {
    let Some(found) = overlay.participant(participant)? else {
        return Ok(Outcome::Rejected(ResultCode::UnknownParticipant));
    };
    let itself = found.id == context.signer.id && *key == context.signer_key;
    if !itself && found.bank != Some(context.signer.id) {
        return Ok(Outcome::Rejected(if found.id == context.signer.id {
            ResultCode::NotAuthorized
        } else {
            ResultCode::NotSponsoringBank
        }));
    }
    if let Some(code) = revoke_check(overlay, participant, key, context.block.time_ms)? {
        return Ok(Outcome::Rejected(code));
    }
    let mut found = found;
    drop_key(overlay, &mut found, key);
    put_participant(overlay, &found);
    Ok(Outcome::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::from_bytes;

    #[test]
    fn every_action_round_trips_and_unknown_tags_are_refused() {
        // Proves each action and a proposal record decode to what was encoded, byte for byte.
        let key = [7u8; 32];
        let actions = vec![
            GovernanceAction::AddNode {
                node: 4,
                name: "bank-4".into(),
                public_key: key,
                role: NodeRole::Voter,
                address: "127.0.0.1:7004".into(),
            },
            GovernanceAction::RemoveNode { node: 2 },
            GovernanceAction::RotateNodeKey {
                node: 3,
                public_key: key,
            },
            GovernanceAction::Onboard {
                participant: 9,
                name: "acme".into(),
                role: Role::SettlementPartner,
                bank: Some(1),
                keys: vec![key, [8; 32]],
            },
            GovernanceAction::Offboard { participant: 9 },
            GovernanceAction::RotateKey {
                participant: 9,
                new_key: key,
                old_key: [8; 32],
                overlap_ms: 60_000,
            },
            GovernanceAction::RevokeParticipantKey {
                participant: 9,
                key,
            },
            GovernanceAction::SetAssetTransferMax {
                asset: 1,
                amount_max: 10_000,
            },
            GovernanceAction::SetApprovalsRequired { approvals: 2 },
        ];
        for action in actions {
            let record = ProposalRecord {
                id: 5,
                proposer: 1,
                proposed_height: 10,
                expires_at_ms: 99,
                action: action.clone(),
                approvals: vec![1, 2],
                status: ProposalStatus::Failed {
                    height: 11,
                    code: ResultCode::KeyInUse,
                },
            };
            let bytes = to_bytes(|writer| record.encode(writer));
            assert_eq!(from_bytes(&bytes, ProposalRecord::decode).unwrap(), record);
        }
        assert!(from_bytes(&[0xEE], GovernanceAction::decode).is_err());
    }

    #[test]
    fn peer_addresses_need_a_host_and_a_port() {
        // Proves the address check accepts host:port forms and refuses the rest.
        for good in ["127.0.0.1:7001", "bank-4.example:7000", "[::1]:7001"] {
            assert!(valid_address(good), "{good}");
        }
        for bad in [
            "",
            "127.0.0.1",
            ":7001",
            "host:0",
            "host:70000",
            "a b:1",
            "h:p",
        ] {
            assert!(!valid_address(bad), "{bad}");
        }
    }
}
