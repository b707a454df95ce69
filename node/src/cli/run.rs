//! `tpw run`: starts a node from its configuration, with flags and environment variables over
//! the file, and serves until a signal.

use std::path::PathBuf;
use tpw_node::config::{NodeConfig, Overrides};

/// What `tpw run` was asked.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
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
}

/// Runs `tpw run`.
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let RunArgs {
        config,
        data_dir,
        genesis,
        node_key,
        api_listen,
        log_format,
        log_level,
        new_node,
        node_id,
    } = args;
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
