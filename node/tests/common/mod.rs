//! Helpers for the node's integration tests: a demo network folder and signing shortcuts.
#![allow(dead_code, unused_imports, missing_docs, clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use std::path::Path;
use tpw_contracts::{Body, Operation, Transaction};
use tpw_node::config::{NodeConfig, Overrides};

pub use tpw_node::demo::{account_of, issuance_of, EUR, USD};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Prepares a demo folder whose node listens on a free loopback port; returns its config.
pub fn prepare(dir: &Path) -> NodeConfig {
    let config_path = tpw_node::demo::prepare(
        dir,
        &format!("127.0.0.1:{}", free_port()),
        tpw_node::demo::Serve::PlainHttp,
    )
    .unwrap();
    let overrides = Overrides {
        new_node: true,
        ..Overrides::default()
    };
    NodeConfig::load(Some(&config_path), &overrides).unwrap()
}

/// As [`prepare`], with the admin interface on a free loopback port; returns the config, the
/// admin address and the operator's token.
pub fn prepare_with_admin(dir: &Path) -> (NodeConfig, String, String) {
    let mut config = prepare(dir);
    let admin = format!("127.0.0.1:{}", free_port());
    config.admin_listen = Some(admin.clone());
    let token_file = dir.join("admin-token");
    let token = tpw_node::keys::write_admin_token(&token_file).unwrap();
    config.admin_token_file = Some(token_file);
    (config, admin, token)
}

/// Runs this build's `tpw` binary with `args` and returns its output.
pub fn tpw(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tpw"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `tpw`, expecting success, and parses its JSON line.
pub fn tpw_json(args: &[&str]) -> serde_json::Value {
    let output = tpw(args);
    assert!(
        output.status.success(),
        "tpw {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

pub fn key(dir: &Path, stem: &str) -> SigningKey {
    tpw_node::keys::load(&dir.join("keys").join(format!("{stem}.json"))).unwrap()
}

pub fn network_id(config: &NodeConfig) -> [u8; 32] {
    tpw_node::node::load_genesis(&config.genesis_file)
        .unwrap()
        .compute_network_id()
        .unwrap()
}

pub fn payment(id: u128, from: u128, to: u128, asset: u32, amount: u128) -> Operation {
    Operation::posted(id, from, to, asset, amount)
}

pub fn sign(network_id: [u8; 32], key: &SigningKey, operation: Operation) -> Vec<u8> {
    Transaction::sign(
        network_id,
        key,
        tpw_node::client::fresh_validity(),
        Body::single(operation),
    )
    .to_bytes()
}

/// Starts the node of `config` and commits `count` one-transfer blocks of acme's (each waits
/// for its commit, so each is a block of its own).
pub async fn start_with_payments(
    config: &NodeConfig,
    dir: &Path,
    count: u128,
) -> tpw_node::node::RunningNode {
    let node = tpw_node::node::start(config).await.unwrap();
    let client = tpw_node::client::Client::new(&format!("http://{}", node.api_address));
    let acme = key(dir, "acme");
    let network = network_id(config);
    for id in 0..count {
        let envelope = sign(
            network,
            &acme,
            payment(id, account_of(3, EUR), account_of(4, EUR), EUR, 1),
        );
        let (status, _) = client.submit(&[envelope], true, None).await.unwrap();
        assert_eq!(status, 200);
    }
    node
}

/// Changes the prepared genesis of `config` with `change` and writes it back under its new
/// network id (before the node first starts).
pub fn rewrite_genesis(config: &NodeConfig, change: impl FnOnce(&mut tpw_contracts::Genesis)) {
    let mut genesis = tpw_node::node::load_genesis(&config.genesis_file).unwrap();
    change(&mut genesis);
    genesis.network_id = None;
    genesis.network_id = Some(hex::encode(genesis.compute_network_id().unwrap()));
    std::fs::write(
        &config.genesis_file,
        serde_json::to_string_pretty(&genesis).unwrap(),
    )
    .unwrap();
}
