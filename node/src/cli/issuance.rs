//! `tpw issuance`: the issuer's mint and burn, a bank's credit line for a partner's account,
//! and the asset's supply (docs/contracts.md, "Money only by the rules").

use super::common::{submit, SignArgs};
use tpw_contracts::ops::{Burn, IssuanceFields, Mint, SetCreditLine};
use tpw_contracts::{Body, Operation};

/// The commands of money entering and leaving, and of credit lines.
#[derive(clap::Subcommand)]
pub(crate) enum IssuanceCommand {
    /// Mints: the asset's issuer credits an account out of its issuance account, within the
    /// asset's supply cap (signed by the issuer's key).
    Mint(MovementArgs),
    /// Burns: the asset's issuer debits one of its own accounts into its issuance account
    /// (signed by the issuer's key).
    Burn(MovementArgs),
    /// Sets the credit line of an account of a partner the signing bank sponsors, within the
    /// cap governance set for that partner (0 removes it).
    CreditLine(CreditLineArgs),
    /// Shows an asset: its issuer, issuance account, supply cap and outstanding amount.
    Show(ShowArgs),
}

/// What `tpw issuance mint` and `burn` were asked.
#[derive(clap::Args)]
pub(crate) struct MovementArgs {
    #[command(flatten)]
    sign: SignArgs,
    /// Id of the mint or burn, chosen by the issuer, unique among its transfers (a retry
    /// with the same id and fields mints once).
    #[arg(long)]
    id: u128,
    /// The account credited (mint) or debited (burn: one of the issuer's own).
    #[arg(long)]
    account: u128,
    /// Asset id.
    #[arg(long)]
    asset: u32,
    /// Amount in minor units.
    #[arg(long)]
    amount: u128,
}

/// What `tpw issuance credit-line` was asked.
#[derive(clap::Args)]
pub(crate) struct CreditLineArgs {
    #[command(flatten)]
    sign: SignArgs,
    /// The partner's account.
    #[arg(long)]
    account: u128,
    /// How far its debits may exceed its credits, in minor units (0 removes the line).
    #[arg(long)]
    line: u128,
}

/// What `tpw issuance show` was asked.
#[derive(clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    client: super::common::ClientArgs,
    /// Asset id.
    asset: u32,
}

/// Runs an issuance command.
pub(crate) async fn issuance(command: IssuanceCommand) -> anyhow::Result<()> {
    let movement = |args: &MovementArgs| IssuanceFields {
        id: args.id,
        account: args.account,
        asset: args.asset,
        amount: args.amount,
    };
    match command {
        IssuanceCommand::Mint(args) => {
            let operation = Operation::Mint(Mint(movement(&args)));
            submit(&args.sign, Body::single(operation)).await
        }
        IssuanceCommand::Burn(args) => {
            let operation = Operation::Burn(Burn(movement(&args)));
            submit(&args.sign, Body::single(operation)).await
        }
        IssuanceCommand::CreditLine(args) => {
            let operation = Operation::SetCreditLine(SetCreditLine {
                account: args.account,
                line: args.line,
            });
            submit(&args.sign, Body::single(operation)).await
        }
        IssuanceCommand::Show(args) => match args.client.connect()?.asset(args.asset).await? {
            Some(asset) => super::common::print_json(&asset),
            None => anyhow::bail!("asset {} not found", args.asset),
        },
    }
}
