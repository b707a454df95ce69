//! `tpw`: run a settlement node, manage keys and genesis, and act as a client of a node.
#![allow(clippy::print_stdout)]

mod contracts_cli;
mod governance_cli;
mod status_cli;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use tpw_contracts::ops::{OpenAccount, PostPending, Reverse, SetHold, Transfer, VoidPending};
use tpw_contracts::view::OperationView;
use tpw_contracts::{Body, Genesis, Operation, TransferKind};
use tpw_node::client::Client;
use tpw_node::config::{NodeConfig, Overrides};

#[derive(Parser)]
#[command(
    name = "tpw",
    version,
    about = "tpwalletoec settlement node, admin and client"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
pub(crate) struct ClientArgs {
    /// The node's API address.
    #[arg(long, env = "TPW_NODE", default_value = "http://127.0.0.1:7100")]
    pub(crate) node: String,
    /// Key file of a participant: signs transactions, and signs reads, which show only what
    /// that participant may see.
    #[arg(long, env = "TPW_KEY")]
    pub(crate) key: Option<PathBuf>,
}

impl ClientArgs {
    /// A client for the node, signing reads with the key when one is given.
    pub(crate) fn connect(&self) -> anyhow::Result<Client> {
        let client = Client::new(&self.node);
        Ok(match &self.key {
            Some(path) => client.with_key(&tpw_node::keys::load(path)?),
            None => client,
        })
    }
}

#[derive(clap::Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Return at once instead of waiting for commit.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Subcommand)]
enum GenesisCommand {
    /// Checks a genesis spec, computes its network id and writes the genesis file.
    Create {
        /// Genesis JSON without network_id.
        #[arg(long)]
        spec: PathBuf,
        /// Where to write the genesis.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walks the audit log of a stopped node's data folder (or a backup): every record's own
    /// hash, its link to the one before, and sequences without gaps. Prints one JSON line
    /// with the record count and the head hash (compare it with the `audit head` lines the
    /// node logged); exits 1 at the first break, naming it.
    Verify {
        /// The node's data folder (holding db/).
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ProofCommand {
    /// Fetches a transfer's inclusion proof (a signed read) and writes it to a file.
    Get {
        #[command(flatten)]
        client: ClientArgs,
        /// Submitting participant.
        #[arg(long)]
        participant: u64,
        /// Transfer id.
        #[arg(long)]
        id: u128,
        /// Height the proof's headers end at (default: the node's head).
        #[arg(long)]
        up_to: Option<u64>,
        /// Where to write the proof (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Checks a proof offline: the transaction's signature, its receipt, both Merkle paths and
    /// the hash links of the headers, optionally up to a head hash you trust. Needs no node.
    Verify {
        /// The proof file `tpw proof get` wrote.
        #[arg(long)]
        file: PathBuf,
        /// The network's genesis file (for the network id).
        #[arg(long)]
        genesis: PathBuf,
        /// A head header hash (hex) obtained elsewhere, say from another bank's node or a
        /// regulator: the proof's headers must end at it. Required: without an anchor, anyone
        /// holding a signed envelope could make up the headers.
        #[arg(long)]
        trusted_head: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Generates an ed25519 key file (mode 0600) and prints its public key.
    Keygen {
        /// Where to write it; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// Encrypts it under the passphrase in TPW_KEY_PASSPHRASE (or the file named by
        /// TPW_KEY_PASSPHRASE_FILE): Argon2id and XChaCha20-Poly1305.
        #[arg(long)]
        encrypt: bool,
    },
    /// Encrypts an existing key file in place under the passphrase in TPW_KEY_PASSPHRASE (or
    /// the file TPW_KEY_PASSPHRASE_FILE names); the plaintext file is replaced atomically.
    EncryptKey {
        /// The key file.
        #[arg(long)]
        file: PathBuf,
    },
    /// Writes a new admin interface token file (mode 0600) for `admin_token_file`.
    AdminToken {
        /// Where to write it; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Genesis tools.
    Genesis {
        #[command(subcommand)]
        command: GenesisCommand,
    },
    /// Replays a node's data folder from genesis: every signature, hash link, receipt and
    /// state root again, then the whole state. Prints progress on stderr and one JSON line;
    /// exits 1 at the first divergence, naming it. Read-only: safe beside a running node and
    /// safe to interrupt and run again.
    Verify {
        /// The node's data folder (holding db/).
        #[arg(long, required_unless_present = "archive", conflicts_with = "archive")]
        data_dir: Option<PathBuf>,
        /// A ledger archive written by `tpw export`, instead of a data folder.
        #[arg(long)]
        archive: Option<PathBuf>,
        /// The network's genesis file.
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Takes an online backup through a node's admin interface (a RocksDB checkpoint while the
    /// node serves) and prints its manifest; with --verify, then replays the backup from
    /// genesis with progress on stderr and checks it ends at the manifest's head. A failed or
    /// interrupted backup leaves no manifest: run it again to another path.
    Backup {
        /// The node's admin interface.
        #[arg(long, env = "TPW_ADMIN", default_value = "http://127.0.0.1:7200")]
        admin: String,
        /// The operator token file (admin_token_file).
        #[arg(long, env = "TPW_ADMIN_TOKEN_FILE")]
        token_file: PathBuf,
        /// Where the node writes the backup: an absolute path that does not exist yet, on the
        /// node's host.
        #[arg(long)]
        path: PathBuf,
        /// Replay the backup afterwards (needs the backup's folder on this host).
        #[arg(long, requires = "genesis")]
        verify: bool,
        /// The network's genesis file, for --verify.
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
    /// Exports the ledger of a data folder or a backup folder to one archive file (every
    /// block, its Raft position, the configuration changes, a checksum), readable by `tpw
    /// verify --archive` and `tpw restore --archive`. Read-only on the folder (safe beside a
    /// running node); progress on stderr; an interrupted export resumes when run again.
    /// Prints one JSON line.
    Export {
        /// The data folder or backup folder (holding db/).
        #[arg(long)]
        data_dir: PathBuf,
        /// The archive to write; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restores a ledger into an empty data folder, for a new node (a new key and id added by
    /// governance) or an auditor: a whole backup is copied and checked against its manifest;
    /// to a chosen height, or from an archive, the blocks are replayed from genesis and checked
    /// on the way. The Raft state is reset; no node the restored ledger records ever runs on
    /// it. Progress on stderr; interrupted, it is run again. Prints one JSON line.
    Restore {
        /// The backup folder (holding backup.json and db/).
        #[arg(long, required_unless_present = "archive", conflicts_with = "archive")]
        backup: Option<PathBuf>,
        /// A ledger archive written by `tpw export`.
        #[arg(long)]
        archive: Option<PathBuf>,
        /// Restore the ledger as it stood at this height (default: the source's head).
        #[arg(long)]
        to_height: Option<u64>,
        /// The new data folder (must hold no db/ yet).
        #[arg(long)]
        data_dir: PathBuf,
        /// The network's genesis file.
        #[arg(long)]
        genesis: PathBuf,
    },
    /// The node's hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Runs a node.
    Run {
        /// TOML configuration file.
        #[arg(long, env = "TPW_CONFIG")]
        config: Option<PathBuf>,
        /// Data folder.
        #[arg(long, env = "TPW_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Genesis file.
        #[arg(long, env = "TPW_GENESIS_FILE")]
        genesis: Option<PathBuf>,
        /// Node key file.
        #[arg(long, env = "TPW_NODE_KEY_FILE")]
        node_key: Option<PathBuf>,
        /// API listen address.
        #[arg(long, env = "TPW_API_LISTEN")]
        api_listen: Option<String>,
        /// Log format: text or json.
        #[arg(long, env = "TPW_LOG_FORMAT")]
        log_format: Option<String>,
        /// Log filter, such as info.
        #[arg(long, env = "TPW_LOG_LEVEL")]
        log_level: Option<String>,
        /// First start of this node: allow a voter to create its empty data folder.
        #[arg(long)]
        new_node: bool,
        /// This node's id, when the ledger does not record its key yet (a node added by
        /// governance, on its first start with --new-node).
        #[arg(long, env = "TPW_NODE_ID")]
        node_id: Option<u64>,
    },
    /// Signs and submits a transfer (posted, or pending with --pending-timeout-ms).
    Transfer {
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
    },
    /// Posts (completes) a pending transfer of the signer.
    Post {
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
    },
    /// Voids a pending transfer of the signer.
    Void {
        #[command(flatten)]
        sign: SignArgs,
        /// This operation's transfer id.
        #[arg(long)]
        id: u128,
        /// The pending transfer's id.
        #[arg(long)]
        pending_id: u128,
    },
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
        command: governance_cli::GovernanceCommand,
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
    /// Moves money back along a settled transfer (signed by its beneficiary, or a regulator's
    /// reversal order).
    Reverse {
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
    },
    /// Places a regulator's hold on an account (signed by a regulator key).
    Hold {
        #[command(flatten)]
        sign: SignArgs,
        /// The account.
        #[arg(long)]
        account: u128,
        /// The reason code (1..=65535).
        #[arg(long)]
        reason: u16,
    },
    /// Lifts a regulator's hold on an account (signed by a regulator key).
    ReleaseHold {
        #[command(flatten)]
        sign: SignArgs,
        /// The account.
        #[arg(long)]
        account: u128,
        /// The reason code for lifting it (recorded in the transaction).
        #[arg(long, default_value_t = 0)]
        reason: u16,
    },
    /// Opens an account (signed by the owner or its bank member).
    OpenAccount {
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
    },
    /// Signs and submits a linked (all-or-nothing) batch read from a JSON file of operations.
    Linked {
        #[command(flatten)]
        sign: SignArgs,
        /// JSON array of operations, as in docs/api.md.
        #[arg(long)]
        file: PathBuf,
    },
    /// Shows a node's status (one JSON line), or with --watch follows it on the terminal: its
    /// height against a reference node's, the rate, the time left, the blocks still to
    /// backfill. For a node catching up or being rebuilt; read-only, interrupt it at any time.
    Status {
        #[command(flatten)]
        client: ClientArgs,
        /// Follow the node, a line a second on stderr.
        #[arg(long)]
        watch: bool,
        /// An up-to-date node's API to measure against (the leader, say).
        #[arg(long)]
        reference: Option<String>,
        /// Follow until the node reaches the reference's height with every block backfilled,
        /// then print its status and exit 0.
        #[arg(long)]
        until_caught_up: bool,
        /// Give up (exit 1) after this many seconds of following.
        #[arg(long, default_value_t = 3600)]
        timeout_s: u64,
    },
    /// Shows an account.
    Account {
        #[command(flatten)]
        client: ClientArgs,
        /// Account id.
        id: u128,
    },
    /// Shows a transaction by id.
    Tx {
        #[command(flatten)]
        client: ClientArgs,
        /// Transaction id, hex.
        tx_id: String,
    },
    /// Shows a transfer by participant and client id.
    TransferStatus {
        #[command(flatten)]
        client: ClientArgs,
        /// Submitting participant.
        #[arg(long)]
        participant: u64,
        /// Transfer id.
        #[arg(long)]
        id: u128,
    },
    /// Inclusion proofs: fetch one for a transfer, or check one offline.
    Proof {
        #[command(subcommand)]
        command: ProofCommand,
    },
    /// Prints an account statement (JSON, or CSV with --csv), following pages to the end.
    Statement {
        #[command(flatten)]
        client: ClientArgs,
        /// Account id.
        account: u128,
        /// First block height.
        #[arg(long)]
        from_height: Option<u64>,
        /// Last block height.
        #[arg(long)]
        to_height: Option<u64>,
        /// First block time (ms since the epoch).
        #[arg(long)]
        from_time_ms: Option<u64>,
        /// Last block time (ms since the epoch).
        #[arg(long)]
        to_time_ms: Option<u64>,
        /// CSV instead of JSON lines.
        #[arg(long)]
        csv: bool,
    },
    /// Follows the key's participant's ledger events (one JSON line each), from a cursor or now.
    Events {
        #[command(flatten)]
        client: ClientArgs,
        /// Resume after this cursor (height or height.sequence; 0: from the first block).
        #[arg(long)]
        after: Option<String>,
        /// Stop after this many events (default: follow until interrupted).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Creates a demo network in a folder, starts its node, runs example settlements and serves.
    Demo {
        /// Folder for keys, genesis and data.
        #[arg(long, default_value = "demo-net")]
        dir: PathBuf,
        /// API listen address.
        #[arg(long, default_value = "127.0.0.1:7100")]
        api_listen: String,
        /// Exit after the scenario instead of serving.
        #[arg(long)]
        once: bool,
    },
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(crate) async fn submit(sign: &SignArgs, body: Body) -> anyhow::Result<()> {
    let Some(key_path) = &sign.client.key else {
        bail!("--key names the signer's key file");
    };
    let key = tpw_node::keys::load(key_path)?;
    let client = Client::new(&sign.client.node);
    let (status, response) = client.sign_and_submit(&key, body, !sign.no_wait).await?;
    print_json(&response)?;
    if status == 422 {
        bail!("the ledger rejected the transaction");
    }
    Ok(())
}

fn create_genesis(spec: &Path, out: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(spec).with_context(|| format!("cannot read {}", spec.display()))?;
    let genesis: Genesis = serde_json::from_str(&text)
        .with_context(|| format!("{} is not genesis JSON", spec.display()))?;
    let genesis = Genesis {
        network_id: None,
        ..genesis
    };
    genesis.build()?;
    let network_id = hex::encode(genesis.compute_network_id()?);
    let genesis = Genesis {
        network_id: Some(network_id.clone()),
        ..genesis
    };
    std::fs::write(out, serde_json::to_string_pretty(&genesis)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    print_json(&serde_json::json!({ "network_id": network_id, "genesis": out }))
}

async fn demo(dir: &Path, api_listen: &str, once: bool) -> anyhow::Result<()> {
    let config_path = tpw_node::demo::prepare(dir, api_listen)?;
    let mut config = NodeConfig::load(Some(&config_path), &Overrides::default())?;
    // The demo creates its own network, so its node is new on the first run.
    config.new_node = true;
    tpw_node::init_logging(&config.log.format, "warn");
    let node = tpw_node::node::start(&config).await?;
    // The regulator reads every account, to show all balances.
    let regulator = tpw_node::keys::load(&dir.join("keys").join("regulator.json"))?;
    let client = Client::new(&format!("http://{}", node.api_address)).with_key(&regulator);
    println!(
        "tpwalletoec demo node serving at http://{}",
        node.api_address
    );
    for report in tpw_node::demo::run_scenario(dir, &client).await? {
        println!(
            "{:<82} {:<30} height {}",
            report.step,
            report.code,
            report.height.map(|h| h.to_string()).unwrap_or_default()
        );
    }
    println!("\nBalances (minor units, credits - debits posted):");
    let mut totals = std::collections::BTreeMap::<u32, (u128, u128)>::new();
    for (id, asset) in tpw_node::demo::all_accounts() {
        if let Some(response) = client.account(id).await? {
            let account = response.account;
            let total = totals.entry(asset).or_default();
            total.0 += account.debits_posted;
            total.1 += account.credits_posted;
            let balance = account.credits_posted as i128 - account.debits_posted as i128;
            println!(
                "  account {id:>5} asset {asset} owner {}: {balance}",
                account.owner
            );
        }
    }
    for (asset, (debits, credits)) in totals {
        println!(
            "  asset {asset}: debits {debits} = credits {credits}: {}",
            if debits == credits {
                "conserved"
            } else {
                "NOT CONSERVED"
            }
        );
    }
    println!(
        "\nTry: cargo run --release --locked --bin tpw -- account --node http://{} 301",
        node.api_address
    );
    if once {
        return node.stop().await;
    }
    println!("Serving; press Ctrl-C to stop.");
    node.serve_until_signal().await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keygen { out, encrypt } => {
            let key = tpw_node::keys::generate()?;
            if encrypt {
                tpw_node::keys::write_encrypted(&out, &key, &passphrase_for_encryption()?)?;
            } else {
                tpw_node::keys::write(&out, &key)?;
            }
            print_json(&serde_json::json!({
                "public_key": hex::encode(key.verifying_key().to_bytes()),
                "file": out,
                "encrypted": encrypt,
            }))
        }
        Command::EncryptKey { file } => {
            let passphrase = passphrase_for_encryption()?;
            let key = tpw_node::keys::load_with(&file, None)
                .context("only a plaintext key file can be encrypted")?;
            let name = file
                .file_name()
                .context("the key file path names no file")?
                .to_string_lossy()
                .into_owned();
            let staged = file.with_file_name(format!(".{name}.encrypting"));
            let _ = std::fs::remove_file(&staged);
            tpw_node::keys::write_encrypted(&staged, &key, &passphrase)?;
            // The new file is complete and synced before it replaces the old one.
            std::fs::rename(&staged, &file)
                .with_context(|| format!("cannot replace {}", file.display()))?;
            print_json(&serde_json::json!({
                "public_key": hex::encode(key.verifying_key().to_bytes()),
                "file": file,
                "encrypted": true,
            }))
        }
        Command::AdminToken { out } => {
            tpw_node::keys::write_admin_token(&out)?;
            print_json(&serde_json::json!({ "file": out }))
        }
        Command::Genesis {
            command: GenesisCommand::Create { spec, out },
        } => create_genesis(&spec, &out),
        Command::Verify {
            data_dir,
            archive,
            genesis,
        } => verify(data_dir.as_deref(), archive.as_deref(), &genesis),
        Command::Backup {
            admin,
            token_file,
            path,
            verify,
            genesis,
        } => {
            backup(
                &admin,
                &token_file,
                &path,
                verify.then_some(genesis).flatten(),
            )
            .await
        }
        Command::Export { data_dir, out } => {
            let mut progress = tpw_node::restore::terminal_progress("exported", "blocks");
            let report = tpw_node::archive::export(&data_dir, &out, &mut progress)?;
            print_json(&report)
        }
        Command::Restore {
            backup,
            archive,
            to_height,
            data_dir,
            genesis,
        } => {
            use tpw_node::restore::{restore, restore_replay, terminal_progress, ReplaySource};
            let genesis = tpw_node::node::load_genesis(&genesis)?;
            let report = match (backup, archive) {
                (Some(backup), None) if to_height.is_none() => {
                    let mut progress = terminal_progress("copied", "MiB");
                    restore(&backup, &data_dir, &genesis, &mut progress)?
                }
                (Some(backup), None) => {
                    let mut progress = terminal_progress("replayed", "blocks");
                    let source = ReplaySource::Backup(&backup);
                    restore_replay(source, &data_dir, &genesis, to_height, &mut progress)?
                }
                (None, Some(archive)) => {
                    let mut progress = terminal_progress("replayed", "MiB");
                    let source = ReplaySource::Archive(&archive);
                    restore_replay(source, &data_dir, &genesis, to_height, &mut progress)?
                }
                _ => bail!("give --backup or --archive"),
            };
            print_json(&report)
        }
        Command::Audit {
            command: AuditCommand::Verify { data_dir },
        } => {
            let database = data_dir.join("db");
            if !database.join("CURRENT").exists() {
                bail!("{} holds no database (db/)", data_dir.display());
            }
            let db = tpw_node::storage::Db::open_read_only(&database)
                .with_context(|| format!("cannot open {}", database.display()))?;
            let report = tpw_node::audit::verify(&db)?;
            print_json(&report)?;
            if let Some(broken) = &report.broken {
                bail!("the audit log is broken: {broken}");
            }
            Ok(())
        }
        Command::Run {
            config,
            data_dir,
            genesis,
            node_key,
            api_listen,
            log_format,
            log_level,
            new_node,
            node_id,
        } => {
            let overrides = Overrides {
                data_dir,
                genesis_file: genesis,
                node_key_file: node_key,
                api_listen,
                log_format,
                log_level,
                new_node,
                node_id,
            };
            let config = NodeConfig::load(config.as_deref(), &overrides)?;
            tpw_node::init_logging(&config.log.format, &config.log.level);
            tpw_node::failpoint::init().map_err(anyhow::Error::msg)?;
            tracing::info!(config = %serde_json::to_string(&config)?, "effective configuration");
            let node = tpw_node::node::start(&config).await?;
            node.serve_until_signal().await
        }
        Command::Transfer {
            sign,
            id,
            debit,
            credit,
            asset,
            amount,
            pending_timeout_ms,
            reference,
        } => {
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
        Command::Post {
            sign,
            id,
            pending_id,
            amount,
        } => {
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
        Command::Void {
            sign,
            id,
            pending_id,
        } => {
            submit(
                &sign,
                Body::single(Operation::VoidPending(VoidPending { id, pending_id })),
            )
            .await
        }
        Command::Escrow { command } => contracts_cli::escrow(command).await,
        Command::Exchange { command } => contracts_cli::exchange(command).await,
        Command::Netting { command } => contracts_cli::netting(command).await,
        Command::Limits { command } => contracts_cli::limits(command).await,
        Command::Governance { command } => governance_cli::governance(command).await,
        Command::Webhook { command } => contracts_cli::webhook(command).await,
        Command::Approval { command } => contracts_cli::approval(command).await,
        Command::Reverse {
            sign,
            id,
            original_owner,
            original_id,
            amount,
        } => {
            let operation = Operation::Reverse(Reverse {
                id,
                original_owner,
                original_id,
                amount,
            });
            submit(&sign, Body::single(operation)).await
        }
        Command::Hold {
            sign,
            account,
            reason,
        } => {
            let operation = Operation::SetHold(SetHold {
                account,
                frozen: true,
                reason,
            });
            submit(&sign, Body::single(operation)).await
        }
        Command::ReleaseHold {
            sign,
            account,
            reason,
        } => {
            let operation = Operation::SetHold(SetHold {
                account,
                frozen: false,
                reason,
            });
            submit(&sign, Body::single(operation)).await
        }
        Command::OpenAccount {
            sign,
            account,
            owner,
            asset,
            flags,
        } => {
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
        Command::Linked { sign, file } => {
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
            body.check_shape().map_err(|error| {
                anyhow::anyhow!("a linked batch needs 2 to 64 operations: {error}")
            })?;
            submit(&sign, body).await
        }
        Command::Status {
            client,
            watch,
            reference,
            until_caught_up,
            timeout_s,
        } => {
            status_cli::status(status_cli::StatusArgs {
                client,
                watch,
                reference,
                until_caught_up,
                timeout_s,
            })
            .await
        }
        Command::Account { client, id } => match client.connect()?.account(id).await? {
            Some(response) => print_json(&response),
            None => bail!("account {id} not found"),
        },
        Command::Tx { client, tx_id } => match client.connect()?.transaction(&tx_id).await? {
            Some(response) => print_json(&response),
            None => bail!("transaction {tx_id} not found"),
        },
        Command::TransferStatus {
            client,
            participant,
            id,
        } => match client.connect()?.transfer(participant, id).await? {
            Some(response) => print_json(&response),
            None => bail!("transfer {participant}/{id} not found"),
        },
        Command::Proof {
            command:
                ProofCommand::Get {
                    client,
                    participant,
                    id,
                    up_to,
                    out,
                },
        } => match client.connect()?.proof(participant, id, up_to).await? {
            Some(response) => {
                let text = serde_json::to_string_pretty(&response)? + "\n";
                std::fs::write(&out, text)
                    .with_context(|| format!("cannot write {}", out.display()))?;
                print_json(&serde_json::json!({
                    "height": response.height,
                    "head_height": response.head_height,
                    "head_hash": response.head_hash,
                    "file": out,
                }))
            }
            None => bail!("transfer {participant}/{id} not found"),
        },
        Command::Proof {
            command:
                ProofCommand::Verify {
                    file,
                    genesis,
                    trusted_head,
                },
        } => verify_proof(&file, &genesis, &trusted_head),
        Command::Statement {
            client,
            account,
            from_height,
            to_height,
            from_time_ms,
            to_time_ms,
            csv,
        } => {
            let client = client.connect()?;
            let mut base = vec!["limit=1000".to_string()];
            for (name, value) in [
                ("from_height", from_height),
                ("to_height", to_height),
                ("from_time_ms", from_time_ms),
                ("to_time_ms", to_time_ms),
            ] {
                if let Some(value) = value {
                    base.push(format!("{name}={value}"));
                }
            }
            let mut after: Option<String> = None;
            let mut first = true;
            loop {
                let mut query = base.clone();
                if let Some(after) = &after {
                    query.push(format!("after={after}"));
                }
                // Pages come as JSON; CSV rows are written from them, one header.
                let Some(body) = client.statement(account, &query.join("&")).await? else {
                    bail!("account {account} not found");
                };
                let page: serde_json::Value = serde_json::from_str(&body)?;
                let entries = page["entries"].as_array().cloned().unwrap_or_default();
                if csv && first {
                    println!("height,cursor,block_time_ms,kind,transfer_owner,transfer_id,counterparty_account,direction,amount,balance");
                }
                first = false;
                for entry in &entries {
                    if csv {
                        let text = |field: &str| match &entry[field] {
                            serde_json::Value::String(text) => text.clone(),
                            serde_json::Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        println!(
                            "{},{},{},{},{},{},{},{},{},{}",
                            text("height"),
                            text("cursor"),
                            text("block_time_ms"),
                            text("kind"),
                            entry["transfer"]["owner"]
                                .as_u64()
                                .map(|owner| owner.to_string())
                                .unwrap_or_default(),
                            entry["transfer"]["id"].as_str().unwrap_or_default(),
                            text("counterparty_account"),
                            text("direction"),
                            text("amount"),
                            text("balance")
                        );
                    } else {
                        println!("{}", serde_json::to_string(entry)?);
                    }
                }
                match page["next"].as_str() {
                    Some(next) => after = Some(next.to_string()),
                    None => return Ok(()),
                }
            }
        }
        Command::Events {
            client,
            after,
            count,
        } => {
            let mut stream = client.connect()?.events(after.as_deref()).await?;
            let mut seen = 0;
            while count.is_none_or(|count| seen < count) {
                let Some(event) = stream.next().await? else {
                    bail!("the node closed the stream");
                };
                println!("{}", serde_json::to_string(&event)?);
                seen += 1;
            }
            Ok(())
        }
        Command::Demo {
            dir,
            api_listen,
            once,
        } => demo(&dir, &api_listen, once).await,
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `tpw verify`: replays a data folder and prints what it found.
/// `tpw backup`: asks the admin interface for a backup, then optionally replays it.
async fn backup(
    admin: &str,
    token_file: &Path,
    path: &Path,
    verify_with: Option<PathBuf>,
) -> anyhow::Result<()> {
    let token = tpw_node::keys::load_admin_token(token_file)?;
    let response = reqwest::Client::new()
        .post(format!("{}/admin/v1/backup", admin.trim_end_matches('/')))
        .bearer_auth(token)
        .json(&serde_json::json!({ "path": path }))
        .send()
        .await
        .with_context(|| format!("cannot reach the admin interface at {admin}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("the admin interface did not answer JSON")?;
    if !status.is_success() {
        bail!(
            "backup refused ({status}): {} {}",
            body["error"]["code"].as_str().unwrap_or("unknown"),
            body["error"]["message"].as_str().unwrap_or("")
        );
    }
    let manifest: tpw_node::admin::BackupManifest =
        serde_json::from_value(body).context("the answer is not a backup manifest")?;
    let Some(genesis) = verify_with else {
        return print_json(&manifest);
    };
    let genesis = tpw_node::node::load_genesis(&genesis)?;
    let mut progress = tpw_node::restore::terminal_progress("verified", "blocks");
    let report = tpw_node::verify::replay_with_progress(path, &genesis, &mut progress)
        .map_err(|error| anyhow::anyhow!("the backup does not verify: {error}"))?;
    if report.height != manifest.height || report.head_hash != manifest.head_hash {
        bail!(
            "the backup replays to height {} ({}), its manifest says {} ({})",
            report.height,
            report.head_hash,
            manifest.height,
            manifest.head_hash
        );
    }
    print_json(&serde_json::json!({ "manifest": manifest, "verified": report }))
}

fn verify(
    data_dir: Option<&std::path::Path>,
    archive: Option<&std::path::Path>,
    genesis: &std::path::Path,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let genesis = tpw_node::node::load_genesis(genesis)?;
    let started = std::time::Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let replayed = match (data_dir, archive) {
        (Some(data_dir), None) => {
            let mut progress = tpw_node::restore::terminal_progress("verified", "blocks");
            tpw_node::verify::replay_with_progress(data_dir, &genesis, &mut progress)
        }
        (None, Some(archive)) => {
            let mut progress = tpw_node::restore::terminal_progress("verified", "MiB");
            tpw_node::verify::replay_archive(archive, &genesis, &mut progress)
        }
        _ => bail!("give --data-dir or --archive"),
    };
    match replayed {
        Ok(report) => {
            let mut line = serde_json::to_value(&report)?;
            line["verified"] = true.into();
            line["seconds"] = ((started.elapsed().as_secs_f64() * 10.0).round() / 10.0).into();
            println!("{line}");
            Ok(())
        }
        Err(error) => {
            if terminal {
                eprintln!();
            }
            let height = match &error {
                tpw_node::verify::ReplayError::Diverged { height, .. }
                | tpw_node::verify::ReplayError::Apply { height, .. }
                | tpw_node::verify::ReplayError::MissingBlock { height } => Some(*height),
                _ => None,
            };
            println!(
                "{}",
                serde_json::json!({
                    "verified": false,
                    "first_divergence": { "height": height, "what": error.to_string() },
                })
            );
            anyhow::bail!("verification failed: {error}")
        }
    }
}

/// `tpw proof verify`: checks an inclusion proof offline and prints what it proves.
fn verify_proof(
    file: &std::path::Path,
    genesis: &std::path::Path,
    trusted_head: &str,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the proof file {}", file.display()))?;
    let response: tpw_node::api_types::ProofResponse =
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a proof written by `tpw proof get`",
                file.display()
            )
        })?;
    let bytes = hex::decode(&response.proof).context("the proof is not hex")?;
    let proof = tpw_contracts::proof::InclusionProof::from_bytes(&bytes)
        .map_err(|error| anyhow::anyhow!("the proof does not decode: {error}"))?;
    let network_id = tpw_node::node::load_genesis(genesis)?.compute_network_id()?;
    let trusted =
        <[u8; 32]>::try_from(hex::decode(trusted_head).context("--trusted-head is not hex")?)
            .map_err(|_| anyhow::anyhow!("--trusted-head must be 32 bytes of hex"))?;
    let proven = proof
        .verify(&network_id, Some(&trusted))
        .map_err(|error| anyhow::anyhow!("the proof does not hold: {error}"))?;
    let view = tpw_contracts::view::TransactionView::from(&proven.transaction);
    print_json(&serde_json::json!({
        "verified": true,
        "tx_id": hex::encode(proven.receipt.tx_id),
        "height": proven.height,
        "code": proven.receipt.code.name(),
        "head_height": proven.head.0,
        "head_hash": hex::encode(proven.head.1),
        "transaction": view,
    }))
}

/// The passphrase for encrypting a key file, from the environment.
fn passphrase_for_encryption() -> anyhow::Result<tpw_node::keys::Passphrase> {
    tpw_node::keys::Passphrase::from_environment()?.with_context(|| {
        format!(
            "set {} (or {} to a file of mode 0600 holding it) to the passphrase",
            tpw_node::keys::PASSPHRASE_VARIABLE,
            tpw_node::keys::PASSPHRASE_FILE_VARIABLE
        )
    })
}
