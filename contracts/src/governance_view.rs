//! JSON views of governance: proposed actions, proposals and the node set, shared by the API,
//! the CLI and the clients (the encoding is in `governance.rs`).

use crate::governance::{GovernanceAction, NodeRecord, ProposalRecord, ProposalStatus};
use crate::model::{parse_hash32, AssetId, NodeRole, ParticipantId, Role};
use serde::{Deserialize, Serialize};

/// A governance action, tagged by `action`. Keys are hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum GovernanceActionView {
    /// Adds a voter or an observer.
    AddNode {
        /// Raft id, never used before.
        node: u64,
        /// Name.
        name: String,
        /// Node key, hex.
        public_key: String,
        /// `voter` or `observer`.
        role: NodeRole,
        /// Peer address `host:port`.
        address: String,
    },
    /// Removes a node.
    RemoveNode {
        /// Raft id.
        node: u64,
    },
    /// Replaces a node's key (the node then restarts with it).
    RotateNodeKey {
        /// Raft id.
        node: u64,
        /// New key, hex.
        public_key: String,
    },
    /// Registers a participant.
    Onboard {
        /// Participant id.
        participant: ParticipantId,
        /// Name.
        name: String,
        /// Role.
        role: Role,
        /// Sponsoring bank member (settlement partners only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bank: Option<ParticipantId>,
        /// Keys, hex.
        keys: Vec<String>,
    },
    /// Ends a participant's membership.
    Offboard {
        /// Participant id.
        participant: ParticipantId,
    },
    /// Adds a key and retires another after an overlap window.
    RotateKey {
        /// Participant id.
        participant: ParticipantId,
        /// Key added, hex.
        new_key: String,
        /// Key retired, hex.
        old_key: String,
        /// Milliseconds of block time during which both sign (0: the old key stops at once).
        overlap_ms: u64,
    },
    /// Removes a key at once.
    #[serde(rename = "revoke_key")]
    RevokeParticipantKey {
        /// Participant id.
        participant: ParticipantId,
        /// Key, hex.
        key: String,
    },
    /// Sets an asset's per-transfer maximum ("0" removes it).
    #[serde(rename = "set_transfer_max")]
    SetAssetTransferMax {
        /// Asset.
        asset: AssetId,
        /// Largest amount of one transfer.
        #[serde(with = "crate::decimal")]
        amount_max: u128,
    },
    /// Sets the approvals a proposal needs.
    SetApprovalsRequired {
        /// M.
        approvals: u8,
    },
    /// Sets an asset's outstanding-supply cap.
    SetSupplyCap {
        /// Asset.
        asset: AssetId,
        /// The cap.
        #[serde(with = "crate::decimal")]
        cap: u128,
    },
    /// Sets ("0" removes) the most a partner's bank may grant one of its accounts as a line.
    SetCreditLineCap {
        /// Participant id.
        participant: ParticipantId,
        /// Asset.
        asset: AssetId,
        /// The cap.
        #[serde(with = "crate::decimal")]
        cap: u128,
    },
    /// Grants an account a credit line ("0" removes it).
    GrantCreditLine {
        /// Account id.
        #[serde(with = "crate::decimal")]
        account: u128,
        /// The line.
        #[serde(with = "crate::decimal")]
        line: u128,
    },
}

impl From<&GovernanceAction> for GovernanceActionView {
    fn from(action: &GovernanceAction) -> Self {
        use GovernanceAction as A;
        match action {
            A::AddNode {
                node,
                name,
                public_key,
                role,
                address,
            } => Self::AddNode {
                node: *node,
                name: name.clone(),
                public_key: hex::encode(public_key),
                role: *role,
                address: address.clone(),
            },
            A::RemoveNode { node } => Self::RemoveNode { node: *node },
            A::RotateNodeKey { node, public_key } => Self::RotateNodeKey {
                node: *node,
                public_key: hex::encode(public_key),
            },
            A::Onboard {
                participant,
                name,
                role,
                bank,
                keys,
            } => Self::Onboard {
                participant: *participant,
                name: name.clone(),
                role: *role,
                bank: *bank,
                keys: keys.iter().map(hex::encode).collect(),
            },
            A::Offboard { participant } => Self::Offboard {
                participant: *participant,
            },
            A::RotateKey {
                participant,
                new_key,
                old_key,
                overlap_ms,
            } => Self::RotateKey {
                participant: *participant,
                new_key: hex::encode(new_key),
                old_key: hex::encode(old_key),
                overlap_ms: *overlap_ms,
            },
            A::RevokeParticipantKey { participant, key } => Self::RevokeParticipantKey {
                participant: *participant,
                key: hex::encode(key),
            },
            A::SetAssetTransferMax { asset, amount_max } => Self::SetAssetTransferMax {
                asset: *asset,
                amount_max: *amount_max,
            },
            A::SetApprovalsRequired { approvals } => Self::SetApprovalsRequired {
                approvals: *approvals,
            },
            A::SetSupplyCap { asset, cap } => Self::SetSupplyCap {
                asset: *asset,
                cap: *cap,
            },
            A::SetCreditLineCap {
                participant,
                asset,
                cap,
            } => Self::SetCreditLineCap {
                participant: *participant,
                asset: *asset,
                cap: *cap,
            },
            A::GrantCreditLine { account, line } => Self::GrantCreditLine {
                account: *account,
                line: *line,
            },
        }
    }
}

impl GovernanceActionView {
    /// The action it describes; the error says which field is wrong.
    pub fn to_action(&self) -> Result<GovernanceAction, String> {
        use GovernanceAction as A;
        Ok(match self {
            Self::AddNode {
                node,
                name,
                public_key,
                role,
                address,
            } => add_node_action(*node, name, public_key, *role, address)?,
            Self::RemoveNode { node } => A::RemoveNode { node: *node },
            Self::RotateNodeKey { node, public_key } => A::RotateNodeKey {
                node: *node,
                public_key: parse_hash32(public_key)?,
            },
            Self::Onboard {
                participant,
                name,
                role,
                bank,
                keys,
            } => onboard_action(*participant, name, *role, *bank, keys)?,
            Self::Offboard { participant } => A::Offboard {
                participant: *participant,
            },
            Self::RotateKey {
                participant,
                new_key,
                old_key,
                overlap_ms,
            } => A::RotateKey {
                participant: *participant,
                new_key: parse_hash32(new_key)?,
                old_key: parse_hash32(old_key)?,
                overlap_ms: *overlap_ms,
            },
            Self::RevokeParticipantKey { participant, key } => A::RevokeParticipantKey {
                participant: *participant,
                key: parse_hash32(key)?,
            },
            Self::SetAssetTransferMax { asset, amount_max } => A::SetAssetTransferMax {
                asset: *asset,
                amount_max: *amount_max,
            },
            Self::SetApprovalsRequired { approvals } => A::SetApprovalsRequired {
                approvals: *approvals,
            },
            Self::SetSupplyCap { asset, cap } => A::SetSupplyCap {
                asset: *asset,
                cap: *cap,
            },
            Self::SetCreditLineCap {
                participant,
                asset,
                cap,
            } => A::SetCreditLineCap {
                participant: *participant,
                asset: *asset,
                cap: *cap,
            },
            Self::GrantCreditLine { account, line } => A::GrantCreditLine {
                account: *account,
                line: *line,
            },
        })
    }
}

/// Refuses a text over `limit` bytes, naming the field: the encoding could not hold it.
fn check_text_size(field: &str, text: &str, limit: usize) -> Result<(), String> {
    if text.len() > limit {
        Err(format!("{field} has {} bytes, over {limit}", text.len()))
    } else {
        Ok(())
    }
}

/// An `add_node` action: its name and address within their sizes, then its key parsed.
fn add_node_action(
    node: u64,
    name: &str,
    public_key: &str,
    role: NodeRole,
    address: &str,
) -> Result<GovernanceAction, String> {
    check_text_size("name", name, crate::limits::NAME_SIZE_MAX)?;
    check_text_size("address", address, crate::governance::NODE_ADDRESS_SIZE_MAX)?;
    Ok(GovernanceAction::AddNode {
        node,
        name: name.to_string(),
        public_key: parse_hash32(public_key)?,
        role,
        address: address.to_string(),
    })
}

/// An `onboard` action: its name within its size and at most the keys a participant holds,
/// then its keys parsed.
fn onboard_action(
    participant: ParticipantId,
    name: &str,
    role: Role,
    bank: Option<ParticipantId>,
    keys: &[String],
) -> Result<GovernanceAction, String> {
    check_text_size("name", name, crate::limits::NAME_SIZE_MAX)?;
    if keys.len() > crate::limits::PARTICIPANT_KEYS_MAX {
        return Err(format!(
            "at most {} keys",
            crate::limits::PARTICIPANT_KEYS_MAX
        ));
    }
    Ok(GovernanceAction::Onboard {
        participant,
        name: name.to_string(),
        role,
        bank,
        keys: keys
            .iter()
            .map(|key| parse_hash32(key))
            .collect::<Result<_, _>>()?,
    })
}

/// A proposal as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalView {
    /// Its id.
    pub id: u64,
    /// Who proposed it.
    pub proposer: ParticipantId,
    /// The block that recorded it.
    pub proposed_height: u64,
    /// Block time after which it can no longer be approved.
    pub expires_at_ms: u64,
    /// The change (named `change`, as in the `propose` operation).
    #[serde(rename = "change")]
    pub action: GovernanceActionView,
    /// Bank members that approved it.
    pub approvals: Vec<ParticipantId>,
    /// `open`, `executed` or `failed` (`expired` once the head's time passed an open one's
    /// expiry).
    pub status: String,
    /// The deciding block, once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_height: Option<u64>,
    /// Why a decided change was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl ProposalView {
    /// The view of a record, as of block time `now_ms`.
    pub fn of(record: &ProposalRecord, now_ms: u64) -> Self {
        let (status, decided_height, failure) = match record.status {
            ProposalStatus::Open if record.expires_at_ms <= now_ms => ("expired", None, None),
            ProposalStatus::Open => ("open", None, None),
            ProposalStatus::Executed { height } => ("executed", Some(height), None),
            ProposalStatus::Failed { height, code } => {
                ("failed", Some(height), Some(code.name().to_string()))
            }
        };
        Self {
            id: record.id,
            proposer: record.proposer,
            proposed_height: record.proposed_height,
            expires_at_ms: record.expires_at_ms,
            action: GovernanceActionView::from(&record.action),
            approvals: record.approvals.clone(),
            status: status.to_string(),
            decided_height,
            failure,
        }
    }
}

/// A member of the node set as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// Raft id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Key, hex.
    pub public_key: String,
    /// `voter` or `observer`.
    pub role: NodeRole,
    /// Peer address given when it was added (empty for genesis nodes).
    pub address: String,
    /// Whether it is still a member.
    pub active: bool,
    /// The block that removed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at_height: Option<u64>,
}

impl From<&NodeRecord> for NodeView {
    fn from(record: &NodeRecord) -> Self {
        Self {
            id: record.id,
            name: record.name.clone(),
            public_key: hex::encode(record.public_key),
            role: record.role,
            address: record.address.clone(),
            active: record.active(),
            removed_at_height: record.removed_at_height,
        }
    }
}
