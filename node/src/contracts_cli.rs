//! `tpw escrow`, `tpw exchange` and `tpw netting`: the settlement contracts' commands.

use crate::{print_json, submit, ClientArgs, SignArgs};
use anyhow::bail;
use clap::Subcommand;
use tpw_contracts::ops::{
    AcceptExchange, AddKey, ApproveEscrow, ApproveTransfer, CloseCycle, CreateEscrow,
    OfferExchange, OpenCycle, ReleaseEscrow, RevokeKey, SetApprovalPolicy, SetCreditLimit,
    SetOutflowCap, SetWebhook, SubmitObligation,
};
use tpw_contracts::{Body, Operation};

#[derive(Subcommand)]
pub(crate) enum EscrowCommand {
    /// Locks an amount from the signer's account for a payee until the terms hold; refunded
    /// after --timeout-ms of block time.
    Create {
        #[command(flatten)]
        sign: SignArgs,
        /// Escrow id (a transfer id of the signer).
        #[arg(long)]
        id: u128,
        /// The payer's account (owned by the signer).
        #[arg(long)]
        debit: u128,
        /// The payee's account.
        #[arg(long)]
        credit: u128,
        /// Asset id.
        #[arg(long)]
        asset: u32,
        /// Amount in minor units.
        #[arg(long)]
        amount: u128,
        /// Milliseconds of block time before the escrow is refunded.
        #[arg(long)]
        timeout_ms: u64,
        /// blake3 of the secret that releases it, hex (see `tpw escrow hashlock`).
        #[arg(long)]
        hashlock: Option<String>,
        /// Block time (ms since the epoch) from which release is allowed.
        #[arg(long, default_value_t = 0)]
        release_after_ms: u64,
        /// A participant whose approval counts (repeat for each).
        #[arg(long = "approver")]
        approvers: Vec<u64>,
        /// Approvals needed of the approvers.
        #[arg(long, default_value_t = 0)]
        approvals_required: u8,
    },
    /// Approves an escrow (signed by one of its approvers).
    Approve {
        #[command(flatten)]
        sign: SignArgs,
        /// The escrow's payer.
        #[arg(long)]
        owner: u64,
        /// The escrow's id.
        #[arg(long)]
        escrow_id: u128,
    },
    /// Releases an escrow whose terms hold (signed by the payer, the payee or an approver).
    Release {
        #[command(flatten)]
        sign: SignArgs,
        /// This operation's transfer id.
        #[arg(long)]
        id: u128,
        /// The escrow's payer.
        #[arg(long)]
        owner: u64,
        /// The escrow's id.
        #[arg(long)]
        escrow_id: u128,
        /// The hashlock's secret, 32 bytes of hex.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Prints the hashlock (blake3) of a 32-byte secret given in hex; nothing is sent.
    Hashlock {
        /// The secret, 32 bytes of hex.
        #[arg(long)]
        secret: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum ExchangeCommand {
    /// Offers to deliver --amount of --asset from --debit to the counterparty's --credit,
    /// against --counter-amount of --counter-asset from its --counter-debit to --counter-credit;
    /// the signer's leg is reserved until accepted, withdrawn (tpw void) or refunded.
    Offer {
        #[command(flatten)]
        sign: SignArgs,
        /// Offer id (a transfer id of the signer).
        #[arg(long)]
        id: u128,
        /// The signer's account it delivers from.
        #[arg(long)]
        debit: u128,
        /// The counterparty's account it delivers into.
        #[arg(long)]
        credit: u128,
        /// The asset delivered.
        #[arg(long)]
        asset: u32,
        /// The amount delivered.
        #[arg(long)]
        amount: u128,
        /// The counterparty's account it pays from.
        #[arg(long)]
        counter_debit: u128,
        /// The signer's account it is paid into.
        #[arg(long)]
        counter_credit: u128,
        /// The asset paid.
        #[arg(long)]
        counter_asset: u32,
        /// The amount paid.
        #[arg(long)]
        counter_amount: u128,
        /// Milliseconds of block time before an unaccepted offer is refunded.
        #[arg(long)]
        timeout_ms: u64,
    },
    /// Accepts an offer (signed by its counterparty): both legs settle or neither.
    Accept {
        #[command(flatten)]
        sign: SignArgs,
        /// The signer's transfer id for its leg.
        #[arg(long)]
        id: u128,
        /// The offerer.
        #[arg(long)]
        owner: u64,
        /// The offer's id.
        #[arg(long)]
        exchange_id: u128,
    },
}

pub(crate) async fn exchange(command: ExchangeCommand) -> anyhow::Result<()> {
    let (sign, operation) = match command {
        ExchangeCommand::Offer {
            sign,
            id,
            debit,
            credit,
            asset,
            amount,
            counter_debit,
            counter_credit,
            counter_asset,
            counter_amount,
            timeout_ms,
        } => (
            sign,
            Operation::OfferExchange(OfferExchange {
                id,
                debit_account: debit,
                credit_account: credit,
                asset,
                amount,
                counter_debit_account: counter_debit,
                counter_credit_account: counter_credit,
                counter_asset,
                counter_amount,
                timeout_ms,
            }),
        ),
        ExchangeCommand::Accept {
            sign,
            id,
            owner,
            exchange_id,
        } => (
            sign,
            Operation::AcceptExchange(AcceptExchange {
                id,
                owner,
                exchange_id,
            }),
        ),
    };
    submit(&sign, Body::single(operation)).await
}

pub(crate) async fn escrow(command: EscrowCommand) -> anyhow::Result<()> {
    let parse = |text: &str| tpw_contracts::view::parse_hash32(text).map_err(anyhow::Error::msg);
    match command {
        EscrowCommand::Create {
            sign,
            id,
            debit,
            credit,
            asset,
            amount,
            timeout_ms,
            hashlock,
            release_after_ms,
            mut approvers,
            approvals_required,
        } => {
            approvers.sort_unstable();
            approvers.dedup();
            let terms = tpw_contracts::tx::EscrowTerms {
                hashlock: hashlock.as_deref().map(parse).transpose()?,
                release_after_ms,
                approvers,
                approvals_required,
            };
            let operation = Operation::CreateEscrow(CreateEscrow {
                id,
                debit_account: debit,
                credit_account: credit,
                asset,
                amount,
                timeout_ms,
                terms,
            });
            submit(&sign, Body::single(operation)).await
        }
        EscrowCommand::Approve {
            sign,
            owner,
            escrow_id,
        } => {
            submit(
                &sign,
                Body::single(Operation::ApproveEscrow(ApproveEscrow { owner, escrow_id })),
            )
            .await
        }
        EscrowCommand::Release {
            sign,
            id,
            owner,
            escrow_id,
            secret,
        } => {
            let operation = Operation::ReleaseEscrow(ReleaseEscrow {
                id,
                owner,
                escrow_id,
                preimage: secret.as_deref().map(parse).transpose()?,
            });
            submit(&sign, Body::single(operation)).await
        }
        EscrowCommand::Hashlock { secret } => {
            let secret = parse(&secret)?;
            print_json(
                &serde_json::json!({ "hashlock": hex::encode(blake3::hash(&secret).as_bytes()) }),
            )
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum ApprovalCommand {
    /// Sets the amount above which a transfer from the account waits for a second key of its
    /// owner, 0 to remove it (signed by the owner or its bank member).
    Policy {
        #[command(flatten)]
        sign: SignArgs,
        /// The account.
        #[arg(long)]
        account: u128,
        /// Transfers above this amount need a checker.
        #[arg(long)]
        threshold: u128,
    },
    /// Registers another signing key for a partner (signed by its bank member).
    AddKey {
        #[command(flatten)]
        sign: SignArgs,
        /// The partner.
        #[arg(long)]
        participant: u64,
        /// The new public key, hex (`tpw keygen` prints one).
        #[arg(long)]
        public_key: String,
    },
    /// Revokes one of a participant's keys at once, for a leaked key (signed by the
    /// participant with any of its keys, or by its bank member).
    RevokeKey {
        #[command(flatten)]
        sign: SignArgs,
        /// The participant.
        #[arg(long)]
        participant: u64,
        /// The key to revoke, hex.
        #[arg(long)]
        public_key: String,
    },
    /// Approves a transfer of the signer that waits for a checker (sign with another key).
    Approve {
        #[command(flatten)]
        sign: SignArgs,
        /// The waiting transfer's id.
        #[arg(long)]
        id: u128,
    },
}

pub(crate) async fn approval(command: ApprovalCommand) -> anyhow::Result<()> {
    let (sign, operation) = match command {
        ApprovalCommand::Policy {
            sign,
            account,
            threshold,
        } => (
            sign,
            Operation::SetApprovalPolicy(SetApprovalPolicy { account, threshold }),
        ),
        ApprovalCommand::AddKey {
            sign,
            participant,
            public_key,
        } => {
            let key = tpw_contracts::view::parse_hash32(&public_key).map_err(anyhow::Error::msg)?;
            (sign, Operation::AddKey(AddKey { participant, key }))
        }
        ApprovalCommand::Approve { sign, id } => {
            (sign, Operation::ApproveTransfer(ApproveTransfer { id }))
        }
        ApprovalCommand::RevokeKey {
            sign,
            participant,
            public_key,
        } => {
            let key = tpw_contracts::view::parse_hash32(&public_key).map_err(anyhow::Error::msg)?;
            (sign, Operation::RevokeKey(RevokeKey { participant, key }))
        }
    };
    submit(&sign, Body::single(operation)).await
}

#[derive(Subcommand)]
pub(crate) enum LimitsCommand {
    /// Sets a partner's daily outflow cap in an asset, 0 to remove it (signed by its bank).
    OutflowCap {
        #[command(flatten)]
        sign: SignArgs,
        /// The partner.
        #[arg(long)]
        participant: u64,
        /// The asset.
        #[arg(long)]
        asset: u32,
        /// Most it may send per UTC day of block time, in minor units.
        #[arg(long)]
        cap: u128,
    },
    /// Sets the bilateral credit limit the signer (the creditor) grants a debtor in an asset:
    /// the most the debtor may owe it net within one netting cycle.
    Credit {
        #[command(flatten)]
        sign: SignArgs,
        /// The debtor.
        #[arg(long)]
        debtor: u64,
        /// The asset.
        #[arg(long)]
        asset: u32,
        /// The limit in minor units (0: no credit at all).
        #[arg(long, conflicts_with = "remove", required_unless_present = "remove")]
        limit: Option<u128>,
        /// Removes the limit (no bilateral limit).
        #[arg(long)]
        remove: bool,
    },
    /// Shows an asset's per-transfer maximum and a participant's outflow cap and spending today.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        /// The participant.
        #[arg(long)]
        participant: u64,
        /// The asset.
        #[arg(long)]
        asset: u32,
    },
    /// Shows the bilateral credit limit a creditor grants a debtor in an asset.
    ShowCredit {
        #[command(flatten)]
        client: ClientArgs,
        /// The creditor.
        #[arg(long)]
        creditor: u64,
        /// The debtor.
        #[arg(long)]
        debtor: u64,
        /// The asset.
        #[arg(long)]
        asset: u32,
    },
}

pub(crate) async fn limits(command: LimitsCommand) -> anyhow::Result<()> {
    let (sign, operation) = match command {
        LimitsCommand::Show {
            client,
            participant,
            asset,
        } => {
            return match client.connect()?.limits(participant, asset).await? {
                Some(response) => print_json(&response),
                None => bail!("the node has no limits endpoint"),
            };
        }
        LimitsCommand::ShowCredit {
            client,
            creditor,
            debtor,
            asset,
        } => {
            return match client
                .connect()?
                .credit_limit(creditor, debtor, asset)
                .await?
            {
                Some(response) => print_json(&response),
                None => bail!("the node has no credit-limit endpoint"),
            };
        }
        LimitsCommand::OutflowCap {
            sign,
            participant,
            asset,
            cap,
        } => (
            sign,
            Operation::SetOutflowCap(SetOutflowCap {
                participant,
                asset,
                cap,
            }),
        ),
        LimitsCommand::Credit {
            sign,
            debtor,
            asset,
            limit,
            remove: _,
        } => (
            sign,
            Operation::SetCreditLimit(SetCreditLimit {
                debtor,
                asset,
                limit,
            }),
        ),
    };
    submit(&sign, Body::single(operation)).await
}

#[derive(Subcommand)]
pub(crate) enum NettingCommand {
    /// Opens a netting cycle (signed by a bank member or the operator).
    Open {
        #[command(flatten)]
        sign: SignArgs,
        /// Cycle id, unique on the network.
        #[arg(long)]
        cycle: u128,
        /// Its asset.
        #[arg(long)]
        asset: u32,
        /// Block time (ms since the epoch) at which it closes and settles by itself.
        #[arg(long)]
        closes_at_ms: u64,
        /// The participants that may queue obligations in it and be paid through it,
        /// comma-separated (2 to 1,024).
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<u64>,
    },
    /// Queues an obligation of the signer (the debtor) in an open cycle.
    Owe {
        #[command(flatten)]
        sign: SignArgs,
        /// Obligation id (unique per debtor).
        #[arg(long)]
        id: u128,
        /// The cycle.
        #[arg(long)]
        cycle: u128,
        /// The debtor's account.
        #[arg(long)]
        debit: u128,
        /// The creditor's account.
        #[arg(long)]
        credit: u128,
        /// Amount in minor units.
        #[arg(long)]
        amount: u128,
    },
    /// Closes and settles a cycle now (its opener or the operator).
    Close {
        #[command(flatten)]
        sign: SignArgs,
        /// The cycle.
        #[arg(long)]
        cycle: u128,
        /// An open cycle of the same asset that takes the unfunded obligations (else rejected).
        #[arg(long, default_value_t = 0)]
        carry_to: u128,
    },
    /// Shows a cycle and, once settled, its gross, net and liquidity saved.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        /// The cycle.
        #[arg(long)]
        cycle: u128,
    },
}

pub(crate) async fn netting(command: NettingCommand) -> anyhow::Result<()> {
    let (sign, operation) = match command {
        NettingCommand::Show { client, cycle } => {
            return match client.connect()?.netting_cycle(cycle).await? {
                Some(response) => print_json(&response),
                None => bail!("netting cycle {cycle} not found"),
            };
        }
        NettingCommand::Open {
            sign,
            cycle,
            asset,
            closes_at_ms,
            mut members,
        } => {
            let count = members.len();
            members.sort_unstable();
            members.dedup();
            if members.len() != count {
                bail!("--members must not repeat a participant");
            }
            if !(2..=tpw_contracts::limits::CYCLE_MEMBERS_MAX).contains(&count) {
                bail!(
                    "--members names 2 to {} participants",
                    tpw_contracts::limits::CYCLE_MEMBERS_MAX
                );
            }
            (
                sign,
                Operation::OpenCycle(OpenCycle {
                    cycle,
                    asset,
                    closes_at_ms,
                    members,
                }),
            )
        }
        NettingCommand::Owe {
            sign,
            id,
            cycle,
            debit,
            credit,
            amount,
        } => (
            sign,
            Operation::SubmitObligation(SubmitObligation {
                id,
                cycle,
                debit_account: debit,
                credit_account: credit,
                amount,
            }),
        ),
        NettingCommand::Close {
            sign,
            cycle,
            carry_to,
        } => (sign, Operation::CloseCycle(CloseCycle { cycle, carry_to })),
    };
    submit(&sign, Body::single(operation)).await
}

#[derive(Subcommand)]
pub(crate) enum WebhookCommand {
    /// Registers (or replaces) an endpoint: the leader POSTs the signer's events there.
    Set {
        #[command(flatten)]
        sign: SignArgs,
        /// Endpoint number, 0 to 3.
        #[arg(long, default_value_t = 0)]
        endpoint: u16,
        /// http:// or https:// URL.
        #[arg(long)]
        url: String,
    },
    /// Removes an endpoint.
    Remove {
        #[command(flatten)]
        sign: SignArgs,
        /// Endpoint number, 0 to 3.
        #[arg(long)]
        endpoint: u16,
    },
    /// Lists the signer's endpoints, their progress and dead letters.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delivers an endpoint's dead letters again (ask the leader).
    Replay {
        #[command(flatten)]
        client: ClientArgs,
        /// Endpoint number.
        #[arg(long)]
        endpoint: u16,
    },
}

pub(crate) async fn webhook(command: WebhookCommand) -> anyhow::Result<()> {
    let (sign, operation) = match command {
        WebhookCommand::List { client } => return print_json(&client.connect()?.webhooks().await?),
        WebhookCommand::Replay { client, endpoint } => {
            client.connect()?.replay_webhook(endpoint).await?;
            return print_json(&serde_json::json!({ "endpoint": endpoint, "replaying": true }));
        }
        WebhookCommand::Set {
            sign,
            endpoint,
            url,
        } => {
            if !tpw_contracts::webhook_url_valid(&url) {
                bail!("--url must be an http:// or https:// URL of at most 512 printable bytes");
            }
            (sign, Operation::SetWebhook(SetWebhook { endpoint, url }))
        }
        WebhookCommand::Remove { sign, endpoint } => (
            sign,
            Operation::SetWebhook(SetWebhook {
                endpoint,
                url: String::new(),
            }),
        ),
    };
    submit(&sign, Body::single(operation)).await
}
