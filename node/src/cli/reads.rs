//! The client commands that read a node: an account, a transaction, a transfer, an account
//! statement and the event stream. Reads signed with a key show what that key's participant
//! may see.

use super::common::{print_json, ClientArgs};
use anyhow::bail;

/// What `tpw account` was asked.
#[derive(clap::Args)]
pub(crate) struct AccountArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Account id.
    id: u128,
}

/// What `tpw tx` was asked.
#[derive(clap::Args)]
pub(crate) struct TxArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Transaction id, hex.
    tx_id: String,
}

/// What `tpw transfer-status` was asked.
#[derive(clap::Args)]
pub(crate) struct TransferStatusArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Submitting participant.
    #[arg(long)]
    participant: u64,
    /// The transfer's id, as its submitter chose it.
    #[arg(long)]
    id: u128,
}

/// What `tpw statement` was asked.
#[derive(clap::Args)]
pub(crate) struct StatementArgs {
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
}

/// What `tpw events` was asked.
#[derive(clap::Args)]
pub(crate) struct EventsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Resume after this cursor (height or height.sequence; 0: from the first block).
    #[arg(long)]
    after: Option<String>,
    /// Stop after this many events (default: follow until interrupted).
    #[arg(long)]
    count: Option<u64>,
}

/// Runs `tpw account`.
pub(crate) async fn account(args: AccountArgs) -> anyhow::Result<()> {
    let AccountArgs { client, id } = args;
    match client.connect()?.account(id).await? {
        Some(response) => print_json(&response),
        None => bail!("account {id} not found"),
    }
}

/// Runs `tpw tx`.
pub(crate) async fn tx(args: TxArgs) -> anyhow::Result<()> {
    let TxArgs { client, tx_id } = args;
    match client.connect()?.transaction(&tx_id).await? {
        Some(response) => print_json(&response),
        None => bail!("transaction {tx_id} not found"),
    }
}

/// Runs `tpw transfer-status`.
pub(crate) async fn transfer_status(args: TransferStatusArgs) -> anyhow::Result<()> {
    let TransferStatusArgs {
        client,
        participant,
        id,
    } = args;
    match client.connect()?.transfer(participant, id).await? {
        Some(response) => print_json(&response),
        None => bail!("transfer {participant}/{id} not found"),
    }
}

/// Runs `tpw statement`: follows the statement's pages to the end, printing each entry.
pub(crate) async fn statement(args: StatementArgs) -> anyhow::Result<()> {
    let client = args.client.connect()?;
    let account = args.account;
    let base = statement_query(&args);
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
        if args.csv && first {
            println!("height,cursor,block_time_ms,kind,transfer_owner,transfer_id,counterparty_account,direction,amount,balance");
        }
        first = false;
        for entry in &entries {
            if args.csv {
                print_csv_row(entry);
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

/// The query parameters every page of the statement is asked with.
fn statement_query(args: &StatementArgs) -> Vec<String> {
    let mut base = vec!["limit=1000".to_string()];
    for (name, value) in [
        ("from_height", args.from_height),
        ("to_height", args.to_height),
        ("from_time_ms", args.from_time_ms),
        ("to_time_ms", args.to_time_ms),
    ] {
        if let Some(value) = value {
            base.push(format!("{name}={value}"));
        }
    }
    base
}

/// One statement entry as a CSV row, in the header's column order.
fn print_csv_row(entry: &serde_json::Value) {
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
}

/// Runs `tpw events`.
pub(crate) async fn events(args: EventsArgs) -> anyhow::Result<()> {
    let EventsArgs {
        client,
        after,
        count,
    } = args;
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
