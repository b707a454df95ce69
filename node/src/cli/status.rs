//! `tpw status`: a node's status once, or followed on the terminal while it catches up or is
//! rebuilt (height against a reference node, rate, time left, blocks still to backfill).

use super::common::{print_json, ClientArgs};
use anyhow::bail;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use tpw_node::api_types::StatusResponse;
use tpw_node::client::Client;

/// What `tpw status` was asked.
#[derive(clap::Args)]
pub(crate) struct StatusArgs {
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
}

/// One progress line.
fn describe(
    status: &StatusResponse,
    reference: Option<&StatusResponse>,
    rate: Option<f64>,
) -> String {
    let mut line = format!(
        "node {} {} height {}",
        status.node_id, status.role, status.height
    );
    if let Some(reference) = reference {
        let target = reference.height.max(1);
        let behind = reference.height.saturating_sub(status.height);
        line.push_str(&format!(
            " of {} ({:.1}%, {behind} behind",
            reference.height,
            status.height.min(target) as f64 * 100.0 / target as f64
        ));
        if let Some(rate) = rate.filter(|rate| *rate > 0.0 && behind > 0) {
            line.push_str(&format!(", about {:.0} s left", behind as f64 / rate));
        }
        line.push(')');
    }
    if let Some(rate) = rate {
        line.push_str(&format!(", {rate:.0} blocks/s"));
    }
    line.push_str(&format!(
        ", apply lag {} entries, {} blocks to backfill, {} snapshots installed",
        status.commit_index.saturating_sub(status.applied_index),
        status.blocks_missing,
        status.snapshots_installed
    ));
    line
}

/// Runs `tpw status`.
pub(crate) async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let client = args.client.connect()?;
    if !args.watch && !args.until_caught_up {
        return print_json(&client.status().await?);
    }
    if args.until_caught_up && args.reference.is_none() {
        bail!("--until-caught-up needs --reference <the API of a node that is up to date>");
    }
    let reference = args.reference.as_deref().map(Client::new);
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_s);
    let mut first: Option<(Instant, u64)> = None;
    loop {
        let now = Instant::now();
        let line = match client.status().await {
            Ok(status) => {
                let reference_status = match &reference {
                    Some(reference) => reference.status().await.ok(),
                    None => None,
                };
                let (since, from) = *first.get_or_insert((now, status.height));
                let seconds = now.duration_since(since).as_secs_f64();
                let rate =
                    (seconds >= 1.0).then(|| status.height.saturating_sub(from) as f64 / seconds);
                let line = describe(&status, reference_status.as_ref(), rate);
                if args.until_caught_up {
                    if let Some(reference) = &reference_status {
                        if status.height >= reference.height && status.blocks_missing == 0 {
                            if terminal {
                                eprintln!("\r{line}");
                            }
                            return print_json(&status);
                        }
                    }
                }
                line
            }
            Err(error) => format!("node unreachable: {error}"),
        };
        let mut stderr = std::io::stderr();
        if terminal {
            // Rewritten in place; the padding clears what a longer line left.
            let _ = write!(stderr, "\r{line:<140}");
        } else {
            let _ = writeln!(stderr, "{line}");
        }
        if now >= deadline {
            if terminal {
                eprintln!();
            }
            bail!(
                "gave up after {} s (--timeout-s); interrupting or giving up changes nothing on the node",
                args.timeout_s
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
