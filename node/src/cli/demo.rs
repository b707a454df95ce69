//! `tpw demo`: a one-node network in a folder, example settlements on it, and the balances
//! they leave, for a first look at the ledger.

use std::path::PathBuf;
use tpw_node::client::Client;
use tpw_node::config::{NodeConfig, Overrides};

/// What `tpw demo` was asked.
#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Folder for keys, genesis and data.
    #[arg(long, default_value = "demo-net")]
    dir: PathBuf,
    /// API listen address.
    #[arg(long, default_value = "127.0.0.1:7100")]
    api_listen: String,
    /// Exit after the scenario instead of serving.
    #[arg(long)]
    once: bool,
}

/// Runs `tpw demo`.
pub(crate) async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let DemoArgs {
        dir,
        api_listen,
        once,
    } = args;
    let config_path = tpw_node::demo::prepare(&dir, &api_listen, tpw_node::demo::Serve::Tls)?;
    let mut config = NodeConfig::load(Some(&config_path), &Overrides::default())?;
    // The demo creates its own network, so its node is new on the first run.
    config.new_node = true;
    tpw_node::init_logging(&config.log.format, "warn");
    let node = tpw_node::node::start(&config).await?;
    // The regulator reads every account, to show all balances.
    let regulator = tpw_node::keys::load(&dir.join("keys").join("regulator.json"))?;
    let ca_file = tpw_node::demo::ca_file(&dir);
    let url = format!("https://{}", node.api_address);
    let client = Client::with_tls(&url, &tpw_node::tls::ClientTls::with_ca_file(&ca_file))?
        .with_key(&regulator);
    println!(
        "tpwalletoec demo node serving at {url} (TLS; its CA certificate is {})",
        ca_file.display()
    );
    for report in tpw_node::demo::run_scenario(&dir, &client).await? {
        println!(
            "{:<82} {:<30} height {}",
            report.step,
            report.code,
            report.height.map(|h| h.to_string()).unwrap_or_default()
        );
    }
    print_balances(&client).await?;
    // Account reads are signed: the hint signs as the account's owner.
    println!(
        "\nTry: cargo run --release --locked --bin tpw -- account --node {url} --ca-file {} --key {} 301",
        ca_file.display(),
        dir.join("keys").join("acme.json").display()
    );
    if once {
        return node.stop().await;
    }
    println!("Serving; press Ctrl-C to stop.");
    node.serve_until_signal().await
}

/// Prints every demo account's balance, then each asset's debits against its credits.
async fn print_balances(client: &Client) -> anyhow::Result<()> {
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
    Ok(())
}
