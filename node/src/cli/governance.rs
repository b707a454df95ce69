//! `tpw governance`: propose consortium changes, approve them, and read proposals and the
//! node set.

use crate::{print_json, submit, ClientArgs, SignArgs};
use anyhow::Context;
use clap::Subcommand;
use tpw_contracts::genesis::NodeRole;
use tpw_contracts::governance::GovernanceAction;
use tpw_contracts::model::Role;
use tpw_contracts::ops::{ApproveProposal, Propose};
use tpw_contracts::view::parse_hash32;
use tpw_contracts::{Body, Operation};

#[derive(Subcommand)]
pub(crate) enum GovernanceCommand {
    /// Proposes a change (signed by a bank member, whose approval counts at once).
    Propose {
        #[command(flatten)]
        sign: SignArgs,
        /// The proposal's id, unique on the network.
        #[arg(long)]
        proposal: u64,
        /// Hours (of block time, from now) during which it can be approved; at most 720.
        #[arg(long, default_value_t = 24)]
        expires_in_hours: u64,
        #[command(subcommand)]
        change: Change,
    },
    /// Approves a proposal (signed by a bank member).
    Approve {
        #[command(flatten)]
        sign: SignArgs,
        /// The proposal's id.
        #[arg(long)]
        proposal: u64,
    },
    /// Shows one proposal, or lists proposals from an id (a signed read by a bank member,
    /// regulator or operator).
    Show {
        #[command(flatten)]
        client: ClientArgs,
        /// The proposal's id; without it, proposals are listed.
        #[arg(long)]
        proposal: Option<u64>,
        /// List from this id.
        #[arg(long, default_value_t = 0)]
        from: u64,
    },
    /// The node set as the ledger records it.
    Nodes {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// What a proposal changes.
#[derive(Subcommand)]
pub(crate) enum Change {
    /// Adds a voting node or an observer.
    AddNode {
        /// Its Raft id, never used before.
        #[arg(long)]
        node: u64,
        /// Its name.
        #[arg(long)]
        name: String,
        /// Its public key, hex (`tpw keygen` prints one).
        #[arg(long)]
        public_key: String,
        /// `voter` or `observer`.
        #[arg(long, value_parser = parse_node_role)]
        role: NodeRole,
        /// Where peers reach it, host:port.
        #[arg(long)]
        address: String,
    },
    /// Removes a node.
    RemoveNode {
        /// Its Raft id.
        #[arg(long)]
        node: u64,
    },
    /// Replaces a node's key; restart that node with the new key file once decided.
    RotateNodeKey {
        /// Its Raft id.
        #[arg(long)]
        node: u64,
        /// The new public key, hex.
        #[arg(long)]
        public_key: String,
    },
    /// Registers a participant.
    Onboard {
        /// Its id, never used before.
        #[arg(long)]
        participant: u64,
        /// Its name.
        #[arg(long)]
        name: String,
        /// bank_member, settlement_partner, regulator or operator.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Its sponsoring bank member (settlement partners only).
        #[arg(long)]
        bank: Option<u64>,
        /// A public key, hex (repeat for more).
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<String>,
    },
    /// Ends a participant's membership: its keys stop at once.
    Offboard {
        /// The participant.
        #[arg(long)]
        participant: u64,
    },
    /// Adds a key and retires another after an overlap window.
    RotateKey {
        /// The participant.
        #[arg(long)]
        participant: u64,
        /// The key added, hex.
        #[arg(long)]
        new_key: String,
        /// The key retired, hex.
        #[arg(long)]
        old_key: String,
        /// Seconds of block time during which both sign (0: the old key stops at once).
        #[arg(long, default_value_t = 86_400)]
        overlap_seconds: u64,
    },
    /// Removes one of a participant's keys at once.
    RevokeKey {
        /// The participant.
        #[arg(long)]
        participant: u64,
        /// The key, hex.
        #[arg(long)]
        public_key: String,
    },
    /// Sets an asset's per-transfer maximum, 0 to remove it.
    TransferMax {
        /// The asset.
        #[arg(long)]
        asset: u32,
        /// Largest amount of one transfer, in minor units.
        #[arg(long)]
        amount_max: u128,
    },
    /// Sets the approvals a proposal needs (M).
    ApprovalsRequired {
        /// M, from 1 to the number of bank members.
        #[arg(long)]
        approvals: u8,
    },
    /// Sets the most of an asset that may be outstanding (its issuer mints up to it).
    SupplyCap {
        /// The asset.
        #[arg(long)]
        asset: u32,
        /// The cap, in minor units.
        #[arg(long)]
        cap: u128,
    },
    /// Sets the most a partner's bank may grant one of the partner's accounts in an asset as a
    /// credit line, 0 to allow none.
    CreditLineCap {
        /// The settlement partner.
        #[arg(long)]
        participant: u64,
        /// The asset.
        #[arg(long)]
        asset: u32,
        /// The cap, in minor units.
        #[arg(long)]
        cap: u128,
    },
    /// Grants an account (a bank's own, or any but an issuance account) a credit line, 0 to
    /// remove it.
    CreditLine {
        /// The account.
        #[arg(long)]
        account: u128,
        /// The line, in minor units.
        #[arg(long)]
        line: u128,
    },
}

fn parse_node_role(text: &str) -> Result<NodeRole, String> {
    match text {
        "voter" => Ok(NodeRole::Voter),
        "observer" => Ok(NodeRole::Observer),
        other => Err(format!("{other:?} is not voter or observer")),
    }
}

fn parse_role(text: &str) -> Result<Role, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
        format!("{text:?} is not bank_member, settlement_partner, regulator or operator")
    })
}

fn key(text: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    parse_hash32(text).map_err(|error| anyhow::anyhow!("{what}: {error}"))
}

impl Change {
    fn action(self) -> anyhow::Result<GovernanceAction> {
        Ok(match self {
            Change::AddNode {
                node,
                name,
                public_key,
                role,
                address,
            } => GovernanceAction::AddNode {
                node,
                name,
                public_key: key(&public_key, "--public-key")?,
                role,
                address,
            },
            Change::RemoveNode { node } => GovernanceAction::RemoveNode { node },
            Change::RotateNodeKey { node, public_key } => GovernanceAction::RotateNodeKey {
                node,
                public_key: key(&public_key, "--public-key")?,
            },
            Change::Onboard {
                participant,
                name,
                role,
                bank,
                public_keys,
            } => GovernanceAction::Onboard {
                participant,
                name,
                role,
                bank,
                keys: public_keys
                    .iter()
                    .map(|text| key(text, "--public-key"))
                    .collect::<anyhow::Result<_>>()?,
            },
            Change::Offboard { participant } => GovernanceAction::Offboard { participant },
            Change::RotateKey {
                participant,
                new_key,
                old_key,
                overlap_seconds,
            } => GovernanceAction::RotateKey {
                participant,
                new_key: key(&new_key, "--new-key")?,
                old_key: key(&old_key, "--old-key")?,
                overlap_ms: overlap_seconds
                    .checked_mul(1_000)
                    .context("--overlap-seconds is too large")?,
            },
            Change::RevokeKey {
                participant,
                public_key,
            } => GovernanceAction::RevokeParticipantKey {
                participant,
                key: key(&public_key, "--public-key")?,
            },
            Change::TransferMax { asset, amount_max } => {
                GovernanceAction::SetAssetTransferMax { asset, amount_max }
            }
            Change::ApprovalsRequired { approvals } => {
                GovernanceAction::SetApprovalsRequired { approvals }
            }
            Change::SupplyCap { asset, cap } => GovernanceAction::SetSupplyCap { asset, cap },
            Change::CreditLineCap {
                participant,
                asset,
                cap,
            } => GovernanceAction::SetCreditLineCap {
                participant,
                asset,
                cap,
            },
            Change::CreditLine { account, line } => {
                GovernanceAction::GrantCreditLine { account, line }
            }
        })
    }
}

pub(crate) async fn governance(command: GovernanceCommand) -> anyhow::Result<()> {
    match command {
        GovernanceCommand::Propose {
            sign,
            proposal,
            expires_in_hours,
            change,
        } => {
            let lifetime_ms = expires_in_hours
                .checked_mul(3_600_000)
                .filter(|ms| (1..=tpw_contracts::governance::PROPOSAL_LIFETIME_MS_MAX).contains(ms))
                .context("--expires-in-hours is 1 to 720")?;
            let expires_at_ms = tpw_node::runtime::now_ms() + lifetime_ms;
            let operation = Operation::Propose(Propose {
                proposal,
                expires_at_ms,
                action: change.action()?,
            });
            submit(&sign, Body::single(operation)).await
        }
        GovernanceCommand::Approve { sign, proposal } => {
            submit(
                &sign,
                Body::single(Operation::ApproveProposal(ApproveProposal { proposal })),
            )
            .await
        }
        GovernanceCommand::Show {
            client,
            proposal,
            from,
        } => {
            let client = client.connect()?;
            match proposal {
                Some(id) => match client.proposal(id).await? {
                    Some(view) => print_json(&view),
                    None => anyhow::bail!("proposal {id} not found (or not readable by this key)"),
                },
                None => match client.proposals(from).await? {
                    Some(list) => print_json(&list),
                    None => anyhow::bail!(
                        "proposals are read by bank members, regulators and operators"
                    ),
                },
            }
        }
        GovernanceCommand::Nodes { client } => print_json(&client.connect()?.nodes().await?),
    }
}
