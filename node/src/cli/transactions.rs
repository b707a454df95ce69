//! The client commands that sign and submit one transaction of the core ledger: transfers and
//! their pending steps, reversals, holds, account opening, and linked batches.

use super::common::{submit, SignArgs};
use anyhow::Context;
use std::path::PathBuf;
use tpw_contracts::ops::{OpenAccount, PostPending, Reverse, SetHold, Transfer, VoidPending};
use tpw_contracts::view::OperationView;
use tpw_contracts::{Body, Operation, TransferKind};

/// What `tpw transfer` was asked.
/// The commands that move money: a transfer, and posting or voiding a pending one.
#[derive(clap::Subcommand)]
pub(crate) enum PaymentCommand {
    /// Signs and submits a transfer (posted, or pending with --pending-timeout-ms).
    Transfer(TransferArgs),
    /// Posts (completes) a pending transfer of the signer.
    Post(PostArgs),
    /// Voids a pending transfer of the signer.
    Void(VoidArgs),
}

/// The commands on settled transfers and accounts, and linked batches of any operations.
#[derive(clap::Subcommand)]
pub(crate) enum AdjustmentCommand {
    /// Moves money back along a settled transfer (signed by its beneficiary, or a regulator's
    /// reversal order).
    Reverse(ReverseArgs),
    /// Places a regulator's hold on an account (signed by a regulator key).
    Hold(HoldArgs),
    /// Lifts a regulator's hold on an account (signed by a regulator key).
    ReleaseHold(ReleaseHoldArgs),
    /// Opens an account (signed by the owner or its bank member).
    OpenAccount(OpenAccountArgs),
    /// Signs and submits a linked (all-or-nothing) batch read from a JSON file of operations.
    Linked(LinkedArgs),
}

/// Runs a payment command.
pub(crate) async fn payment(command: PaymentCommand) -> anyhow::Result<()> {
    match command {
        PaymentCommand::Transfer(args) => transfer(args).await,
        PaymentCommand::Post(args) => post(args).await,
        PaymentCommand::Void(args) => void(args).await,
    }
}

/// Runs a command on a settled transfer or an account, or a linked batch.
pub(crate) async fn adjustment(command: AdjustmentCommand) -> anyhow::Result<()> {
    match command {
        AdjustmentCommand::Reverse(args) => reverse(args).await,
        AdjustmentCommand::Hold(args) => hold(args).await,
        AdjustmentCommand::ReleaseHold(args) => release_hold(args).await,
        AdjustmentCommand::OpenAccount(args) => open_account(args).await,
        AdjustmentCommand::Linked(args) => linked(args).await,
    }
}

#[derive(clap::Args)]
pub(crate) struct TransferArgs {
    #[command(flatten)]
    sign: SignArgs,
    /// Client transfer id (unique per signer).
    #[arg(long)]
    id: u128,
    /// Debited account (owned by the signer).
    #[arg(long)]
    debit: u128,
    /// Credited account.
    #[arg(long)]
    credit: u128,
    /// Asset id.
    #[arg(long)]
    asset: u32,
    /// Amount in minor units.
    #[arg(long)]
    amount: u128,
    /// Reserve instead of posting, for this many ms of block time.
    #[arg(long)]
    pending_timeout_ms: Option<u64>,
    /// Free client reference.
    #[arg(long, default_value_t = 0)]
    reference: u128,
}

/// What `tpw post` was asked.
#[derive(clap::Args)]
pub(crate) struct PostArgs {
    #[command(flatten)]
    sign: SignArgs,
    /// This operation's transfer id.
    #[arg(long)]
    id: u128,
    /// The pending transfer's id.
    #[arg(long)]
    pending_id: u128,
    /// Amount to post, at most the reserved amount.
    #[arg(long)]
    amount: u128,
}

/// What `tpw void` was asked.
#[derive(clap::Args)]
pub(crate) struct VoidArgs {
    #[command(flatten)]
    sign: SignArgs,
    /// This operation's transfer id.
    #[arg(long)]
    id: u128,
    /// The pending transfer's id.
    #[arg(long)]
    pending_id: u128,
}

/// What `tpw reverse` was asked.
#[derive(clap::Args)]
pub(crate) struct ReverseArgs {
    #[command(flatten)]
    sign: SignArgs,
    /// This reversal's transfer id.
    #[arg(long)]
    id: u128,
    /// Who submitted the original transfer.
    #[arg(long)]
    original_owner: u64,
    /// The original transfer's id.
    #[arg(long)]
    original_id: u128,
    /// Amount to move back.
    #[arg(long)]
    amount: u128,
}

/// What `tpw hold` was asked.
#[derive(clap::Args)]
pub(crate) struct HoldArgs {
    #[command(flatten)]
    sign: SignArgs,
    /// The account.
    #[arg(long)]
    account: u128,
    /// The reason code (1..=65535).
    #[arg(long)]
    reason: u16,
}

/// What `tpw release-hold` was asked.
#[derive(clap::Args)]
pub(crate) struct ReleaseHoldArgs {
    #[command(flatten)]
    sign: SignArgs,
    /// The account.
    #[arg(long)]
    account: u128,
    /// The reason code for lifting it (recorded in the transaction).
    #[arg(long, default_value_t = 0)]
    reason: u16,
}

/// What `tpw open-account` was asked.
#[derive(clap::Args)]
pub(crate) struct OpenAccountArgs {
    #[command(flatten)]
    sign: SignArgs,
    /// New account id.
    #[arg(long)]
    account: u128,
    /// Owner participant id.
    #[arg(long)]
    owner: u64,
    /// Asset id.
    #[arg(long)]
    asset: u32,
    /// Flags: debits_must_not_exceed_credits, credits_must_not_exceed_debits.
    #[arg(long = "flag")]
    flags: Vec<String>,
}

/// What `tpw linked` was asked.
#[derive(clap::Args)]
pub(crate) struct LinkedArgs {
    #[command(flatten)]
    sign: SignArgs,
    /// JSON array of operations, as in docs/api.md.
    #[arg(long)]
    file: PathBuf,
}

/// Runs `tpw transfer`.
async fn transfer(args: TransferArgs) -> anyhow::Result<()> {
    let TransferArgs {
        sign,
        id,
        debit,
        credit,
        asset,
        amount,
        pending_timeout_ms,
        reference,
    } = args;
    let kind = pending_timeout_ms.map_or(TransferKind::Posted, |timeout_ms| {
        TransferKind::Pending { timeout_ms }
    });
    let operation = Operation::Transfer(Transfer {
        id,
        debit_account: debit,
        credit_account: credit,
        asset,
        amount,
        kind,
        reference,
    });
    submit(&sign, Body::single(operation)).await
}

/// Runs `tpw post`.
async fn post(args: PostArgs) -> anyhow::Result<()> {
    let PostArgs {
        sign,
        id,
        pending_id,
        amount,
    } = args;
    submit(
        &sign,
        Body::single(Operation::PostPending(PostPending {
            id,
            pending_id,
            amount,
        })),
    )
    .await
}

/// Runs `tpw void`.
async fn void(args: VoidArgs) -> anyhow::Result<()> {
    let VoidArgs {
        sign,
        id,
        pending_id,
    } = args;
    submit(
        &sign,
        Body::single(Operation::VoidPending(VoidPending { id, pending_id })),
    )
    .await
}

/// Runs `tpw reverse`.
async fn reverse(args: ReverseArgs) -> anyhow::Result<()> {
    let ReverseArgs {
        sign,
        id,
        original_owner,
        original_id,
        amount,
    } = args;
    let operation = Operation::Reverse(Reverse {
        id,
        original_owner,
        original_id,
        amount,
    });
    submit(&sign, Body::single(operation)).await
}

/// Runs `tpw hold`.
async fn hold(args: HoldArgs) -> anyhow::Result<()> {
    let HoldArgs {
        sign,
        account,
        reason,
    } = args;
    let operation = Operation::SetHold(SetHold {
        account,
        frozen: true,
        reason,
    });
    submit(&sign, Body::single(operation)).await
}

/// Runs `tpw release-hold`.
async fn release_hold(args: ReleaseHoldArgs) -> anyhow::Result<()> {
    let ReleaseHoldArgs {
        sign,
        account,
        reason,
    } = args;
    let operation = Operation::SetHold(SetHold {
        account,
        frozen: false,
        reason,
    });
    submit(&sign, Body::single(operation)).await
}

/// Runs `tpw open-account`.
async fn open_account(args: OpenAccountArgs) -> anyhow::Result<()> {
    let OpenAccountArgs {
        sign,
        account,
        owner,
        asset,
        flags,
    } = args;
    let flags = tpw_contracts::genesis::parse_flags(&flags).map_err(anyhow::Error::msg)?;
    submit(
        &sign,
        Body::single(Operation::OpenAccount(OpenAccount {
            account,
            owner,
            asset,
            flags,
        })),
    )
    .await
}

/// Runs `tpw linked`: the file's operations as one all-or-nothing batch.
async fn linked(args: LinkedArgs) -> anyhow::Result<()> {
    let LinkedArgs { sign, file } = args;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let views: Vec<OperationView> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON array of operations", file.display()))?;
    let operations = views
        .iter()
        .map(OperationView::to_operation)
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let body = Body::linked(operations);
    body.check_shape()
        .map_err(|error| anyhow::anyhow!("a linked batch needs 2 to 64 operations: {error}"))?;
    submit(&sign, body).await
}
