//! The `tpw` command line: the list of commands, their help, and which module runs each.
//! Each command (or group of commands) lives in its own module; their names, flags, defaults,
//! environment variables, help texts and output are a stable interface (docs/api.md).

mod backup;
pub(crate) mod common;
mod demo;
mod genesis;
pub(crate) mod governance;
mod issuance;
mod keys;
mod proof;
mod reads;
mod run;
mod status;
mod transactions;
mod verify;

use crate::contracts_cli;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tpw",
    version,
    about = "tpwalletoec settlement node, admin and client"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    tls: common::TlsArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Generates an ed25519 key file (mode 0600) and prints its public key.
    Keygen(keys::KeygenArgs),
    /// Encrypts an existing key file in place under the passphrase in TPW_KEY_PASSPHRASE (or
    /// the file TPW_KEY_PASSPHRASE_FILE names); the plaintext file is replaced atomically.
    EncryptKey(keys::EncryptKeyArgs),
    /// Writes a new admin interface token file (mode 0600) for `admin_token_file`.
    AdminToken(keys::AdminTokenArgs),
    /// Genesis tools.
    Genesis {
        #[command(subcommand)]
        command: genesis::GenesisCommand,
    },
    /// Replays a node's data folder from genesis: every signature, hash link, receipt and
    /// state root again, then the whole state. Prints progress on stderr and one JSON line;
    /// exits 1 at the first divergence, naming it. Read-only: safe beside a running node and
    /// safe to interrupt and run again.
    Verify(verify::VerifyArgs),
    /// Takes an online backup through a node's admin interface (a RocksDB checkpoint while the
    /// node serves) and prints its manifest; with --verify, then replays the backup from
    /// genesis with progress on stderr and checks it ends at the manifest's head. A failed or
    /// interrupted backup leaves no manifest: run it again to another path.
    Backup(backup::BackupArgs),
    /// Exports the ledger of a data folder or a backup folder to one archive file (every
    /// block, its Raft position, the configuration changes, a checksum), readable by `tpw
    /// verify --archive` and `tpw restore --archive`. Read-only on the folder (safe beside a
    /// running node); progress on stderr; an interrupted export resumes when run again.
    /// Prints one JSON line.
    Export(backup::ExportArgs),
    /// Restores a ledger into an empty data folder, for a new node (a new key and id added by
    /// governance) or an auditor: a whole backup is copied and checked against its manifest;
    /// to a chosen height, or from an archive, the blocks are replayed from genesis and checked
    /// on the way. The Raft state is reset; no node the restored ledger records ever runs on
    /// it. Progress on stderr; interrupted, it is run again. Prints one JSON line.
    Restore(backup::RestoreArgs),
    /// The node's hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: verify::AuditCommand,
    },
    /// Runs a node.
    Run(run::RunArgs),
    #[command(flatten)]
    Payment(transactions::PaymentCommand),
    /// Escrow and conditional payment.
    Escrow {
        #[command(subcommand)]
        command: contracts_cli::EscrowCommand,
    },
    /// Delivery versus payment and payment versus payment: atomic exchanges of two assets.
    Exchange {
        #[command(subcommand)]
        command: contracts_cli::ExchangeCommand,
    },
    /// Multilateral netting cycles.
    Netting {
        #[command(subcommand)]
        command: contracts_cli::NettingCommand,
    },
    /// Maker-checker: thresholds, extra keys and approvals.
    Approval {
        #[command(subcommand)]
        command: contracts_cli::ApprovalCommand,
    },
    /// Consortium governance: propose and approve changes to the node set, the participants,
    /// their keys and the network parameters; read proposals and the node set.
    Governance {
        #[command(subcommand)]
        command: governance::GovernanceCommand,
    },
    /// Money in and out and credit lines: the issuer's mint and burn, a bank's credit line for
    /// its partner's account, an asset's supply.
    Issuance {
        #[command(subcommand)]
        command: issuance::IssuanceCommand,
    },
    /// Payment limits: daily outflow caps (per-transfer maximums are set by governance).
    Limits {
        #[command(subcommand)]
        command: contracts_cli::LimitsCommand,
    },
    /// Registers, lists and replays the signer's webhook endpoints.
    Webhook {
        #[command(subcommand)]
        command: contracts_cli::WebhookCommand,
    },
    #[command(flatten)]
    Adjustment(transactions::AdjustmentCommand),
    /// Shows a node's status (one JSON line), or with --watch follows it on the terminal: its
    /// height against a reference node's, the rate, the time left, the blocks still to
    /// backfill. For a node catching up or being rebuilt; read-only, interrupt it at any time.
    Status(status::StatusArgs),
    /// Shows an account.
    Account(reads::AccountArgs),
    /// Shows a transaction by id.
    Tx(reads::TxArgs),
    /// Shows a transfer by participant and client id.
    TransferStatus(reads::TransferStatusArgs),
    /// Inclusion proofs: fetch one for a transfer, or check one offline.
    Proof {
        #[command(subcommand)]
        command: proof::ProofCommand,
    },
    /// Prints an account statement (JSON, or CSV with --csv), following pages to the end.
    Statement(reads::StatementArgs),
    /// Follows the key's participant's ledger events (one JSON line each), from a cursor or now.
    Events(reads::EventsArgs),
    /// Creates a demo network in a folder, starts its node, runs example settlements and serves.
    Demo(demo::DemoArgs),
}

/// Runs the command `tpw` was given.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    cli.tls.apply()?;
    match cli.command {
        Command::Keygen(args) => keys::keygen(args),
        Command::EncryptKey(args) => keys::encrypt_key(args),
        Command::AdminToken(args) => keys::admin_token(args),
        Command::Genesis { command } => genesis::genesis(command),
        Command::Verify(args) => verify::verify(args),
        Command::Backup(args) => backup::backup(args).await,
        Command::Export(args) => backup::export(args),
        Command::Restore(args) => backup::restore(args),
        Command::Audit { command } => verify::audit(command),
        Command::Run(args) => run::run(args).await,
        Command::Payment(command) => transactions::payment(command).await,
        Command::Escrow { command } => contracts_cli::escrow(command).await,
        Command::Issuance { command } => issuance::issuance(command).await,
        Command::Exchange { command } => contracts_cli::exchange(command).await,
        Command::Netting { command } => contracts_cli::netting(command).await,
        Command::Limits { command } => contracts_cli::limits(command).await,
        Command::Governance { command } => governance::governance(command).await,
        Command::Webhook { command } => contracts_cli::webhook(command).await,
        Command::Approval { command } => contracts_cli::approval(command).await,
        Command::Adjustment(command) => transactions::adjustment(command).await,
        Command::Status(args) => status::status(args).await,
        Command::Account(args) => reads::account(args).await,
        Command::Tx(args) => reads::tx(args).await,
        Command::TransferStatus(args) => reads::transfer_status(args).await,
        Command::Proof { command } => proof::proof(command).await,
        Command::Statement(args) => reads::statement(args).await,
        Command::Events(args) => reads::events(args).await,
        Command::Demo(args) => demo::demo(args).await,
    }
}
