//! The demo network: a genesis with two banks, four settlement partners, a regulator and an
//! operator in two assets, and a scenario of example settlements run against a live node.

use crate::client::Client;
use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use std::path::Path;
use tpw_contracts::genesis::{
    GenesisAccount, GenesisAsset, GenesisFunding, GenesisNode, GenesisParticipant, NodeRole,
};
use tpw_contracts::model::Role;
use tpw_contracts::ops::{PostPending, Transfer, VoidPending};
use tpw_contracts::{Body, Genesis, Operation, TransferKind};

/// Participants of the demo: (id, key file stem, name, role, sponsoring bank).
pub const PARTICIPANTS: [(u64, &str, &str, Role, Option<u64>); 8] = [
    (1, "bank-a", "Alpine Bank", Role::BankMember, None),
    (2, "bank-b", "Baltic Bank", Role::BankMember, None),
    (
        3,
        "acme",
        "Acme Manufacturing",
        Role::SettlementPartner,
        Some(1),
    ),
    (
        4,
        "globex",
        "Globex Logistics",
        Role::SettlementPartner,
        Some(1),
    ),
    (
        5,
        "initech",
        "Initech Software",
        Role::SettlementPartner,
        Some(2),
    ),
    (
        6,
        "umbrella",
        "Umbrella Payments",
        Role::SettlementPartner,
        Some(2),
    ),
    (7, "regulator", "Financial Regulator", Role::Regulator, None),
    (8, "operator", "Network Operator", Role::Operator, None),
];
/// Asset ids.
pub const EUR: u32 = 1;
/// Asset ids.
pub const USD: u32 = 2;

/// A partner's account in an asset: participant id * 100 + asset id.
pub fn account_of(participant: u64, asset: u32) -> u128 {
    u128::from(participant) * 100 + u128::from(asset)
}

/// Issuance account of an asset.
pub fn issuance_of(asset: u32) -> u128 {
    u128::from(asset) * 1000
}

fn key_path(dir: &Path, stem: &str) -> std::path::PathBuf {
    dir.join("keys").join(format!("{stem}.json"))
}

/// How a prepared node serves its API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Over TLS, with a throwaway CA in `dir/tls` (`ca.crt` is what clients trust).
    Tls,
    /// Plain HTTP (`plain_http = true`), for tests on loopback.
    PlainHttp,
}

/// The CA certificate clients of a node prepared with [`Serve::Tls`] trust.
pub fn ca_file(dir: &Path) -> std::path::PathBuf {
    dir.join("tls").join("ca.crt")
}

/// Creates keys, genesis and node config in `dir` unless they exist; returns the config path.
pub fn prepare(dir: &Path, api_listen: &str, serve: Serve) -> anyhow::Result<std::path::PathBuf> {
    let genesis_path = dir.join("genesis.json");
    let config_path = dir.join("node.toml");
    if genesis_path.exists() {
        return Ok(config_path);
    }
    std::fs::create_dir_all(dir.join("keys"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let participants = participant_keys(dir)?;
    let node_key = crate::keys::generate()?;
    crate::keys::write(&key_path(dir, "node-1"), &node_key)?;
    let genesis = demo_genesis(participants, &node_key);
    let genesis = Genesis {
        network_id: Some(hex::encode(genesis.compute_network_id()?)),
        ..genesis
    };
    std::fs::write(
        &genesis_path,
        serde_json::to_string_pretty(&genesis)? + "\n",
    )?;
    let mut config = format!(
        "data_dir = \"{}\"\ngenesis_file = \"{}\"\nnode_key_file = \"{}\"\napi_listen = \"{api_listen}\"\n",
        dir.join("data").display(),
        genesis_path.display(),
        key_path(dir, "node-1").display()
    );
    match serve {
        Serve::PlainHttp => config.push_str("plain_http = true\n"),
        Serve::Tls => {
            let folder = dir.join("tls");
            let ca = crate::tls::dev::DevCa::generate("tpwalletoec demo CA")?;
            ca.save(&folder)?;
            let (certificate, key) = ca
                .issue_server(&crate::tls::dev::LOOPBACK_NAMES, 1, 365)?
                .save(&folder, "node-1")?;
            config.push_str(&format!(
                "\n[api_tls]\ncertificate_file = \"{}\"\nkey_file = \"{}\"\n",
                certificate.display(),
                key.display()
            ));
        }
    }
    std::fs::write(&config_path, config)?;
    Ok(config_path)
}

/// Generates and writes each participant's key, and returns the participants with them.
fn participant_keys(dir: &Path) -> anyhow::Result<Vec<GenesisParticipant>> {
    let mut participants = Vec::new();
    for (id, stem, name, role, bank) in PARTICIPANTS {
        let key = crate::keys::generate()?;
        crate::keys::write(&key_path(dir, stem), &key)?;
        participants.push(GenesisParticipant {
            id,
            name: name.into(),
            role,
            bank,
            keys: vec![hex::encode(key.verifying_key().to_bytes())],
        });
    }
    Ok(participants)
}

/// Most of each demo asset that may be outstanding: the genesis funds 400,000,000 minor units,
/// so the issuer may mint 600,000,000 more before governance must raise it.
pub const SUPPLY_CAP: u128 = 1_000_000_000;

/// The demo's genesis (without its network id): two assets, each partner with a funded
/// account in each, and one voting node.
fn demo_genesis(participants: Vec<GenesisParticipant>, node_key: &SigningKey) -> Genesis {
    let no_overdraft = vec!["debits_must_not_exceed_credits".to_string()];
    let mut accounts = Vec::new();
    let mut funding = Vec::new();
    for partner in 3..=6u64 {
        for asset in [EUR, USD] {
            accounts.push(GenesisAccount {
                id: account_of(partner, asset),
                owner: partner,
                asset,
                flags: no_overdraft.clone(),
            });
            funding.push(GenesisFunding {
                account: account_of(partner, asset),
                amount: 100_000_000,
            });
        }
    }
    Genesis {
        network_name: "tpw-demo".into(),
        genesis_time_ms: crate::clock::now_ms(),
        participants,
        assets: vec![
            GenesisAsset {
                id: EUR,
                code: "EUR".into(),
                scale: 2,
                issuer: 1,
                issuance_account: issuance_of(EUR),
                supply_cap: Some(SUPPLY_CAP),
            },
            GenesisAsset {
                id: USD,
                code: "USD".into(),
                scale: 2,
                issuer: 2,
                issuance_account: issuance_of(USD),
                supply_cap: Some(SUPPLY_CAP),
            },
        ],
        accounts,
        funding,
        nodes: vec![GenesisNode {
            id: 1,
            name: "bank-1".into(),
            public_key: hex::encode(node_key.verifying_key().to_bytes()),
            role: NodeRole::Voter,
        }],
        network_id: None,
    }
}

fn load_key(dir: &Path, stem: &str) -> anyhow::Result<SigningKey> {
    Ok(crate::keys::load(&key_path(dir, stem))?)
}

/// One line of the scenario's report.
#[derive(Debug, serde::Serialize)]
pub struct StepReport {
    /// What the step does.
    pub step: String,
    /// Result code of the transaction.
    pub code: String,
    /// Per-operation codes.
    pub operations: Vec<String>,
    /// Block height.
    pub height: Option<u64>,
}

/// The keys of the participants that sign the scenario's steps.
struct DemoKeys {
    acme: SigningKey,
    globex: SigningKey,
    initech: SigningKey,
    umbrella: SigningKey,
    bank_a: SigningKey,
}

impl DemoKeys {
    fn load(dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            acme: load_key(dir, "acme")?,
            globex: load_key(dir, "globex")?,
            initech: load_key(dir, "initech")?,
            umbrella: load_key(dir, "umbrella")?,
            bank_a: load_key(dir, "bank-a")?,
        })
    }
}

/// One step of the scenario: what it does, who signs it, and the transaction's body.
type Step<'a> = (&'static str, &'a SigningKey, Body);

/// Runs the example settlements and returns one report per step. Idempotent: a second run
/// returns the same outcomes and moves no money.
pub async fn run_scenario(dir: &Path, client: &Client) -> anyhow::Result<Vec<StepReport>> {
    let keys = DemoKeys::load(dir)?;
    let mut steps = payment_steps(&keys);
    steps.extend(pending_steps(&keys));
    steps.extend(batch_steps(&keys));
    let mut reports = Vec::new();
    for (step, key, body) in steps {
        reports.push(run_step(client, step, key, body).await?);
    }
    Ok(reports)
}

/// Posted payments between partners, and a bank's deposit.
fn payment_steps(keys: &DemoKeys) -> Vec<Step<'_>> {
    vec![
        (
            "Acme pays Initech EUR 12,500.00 for software licences",
            &keys.acme,
            Body::single(Operation::posted(
                1,
                account_of(3, EUR),
                account_of(5, EUR),
                EUR,
                1_250_000,
            )),
        ),
        (
            "Alpine Bank deposits EUR 50,000.00 into Acme's account",
            &keys.bank_a,
            Body::single(Operation::posted(
                1,
                issuance_of(EUR),
                account_of(3, EUR),
                EUR,
                5_000_000,
            )),
        ),
    ]
}

/// Reservations (pending transfers): one posted in part, one voided.
fn pending_steps(keys: &DemoKeys) -> Vec<Step<'_>> {
    vec![
        (
            "Globex reserves EUR 5,000.00 for Umbrella (pending, 10 minutes)",
            &keys.globex,
            Body::single(Operation::Transfer(Transfer {
                id: 1,
                debit_account: account_of(4, EUR),
                credit_account: account_of(6, EUR),
                asset: EUR,
                amount: 500_000,
                kind: TransferKind::Pending {
                    timeout_ms: 600_000,
                },
                reference: 4711,
            })),
        ),
        (
            "Globex posts EUR 4,200.00 of the reservation; the rest is released",
            &keys.globex,
            Body::single(Operation::PostPending(PostPending {
                id: 2,
                pending_id: 1,
                amount: 420_000,
            })),
        ),
        (
            "Initech reserves USD 900.00 for Acme (pending)",
            &keys.initech,
            Body::single(Operation::Transfer(Transfer {
                id: 1,
                debit_account: account_of(5, USD),
                credit_account: account_of(3, USD),
                asset: USD,
                amount: 90_000,
                kind: TransferKind::Pending {
                    timeout_ms: 600_000,
                },
                reference: 0,
            })),
        ),
        (
            "Initech voids the USD reservation",
            &keys.initech,
            Body::single(Operation::VoidPending(VoidPending {
                id: 2,
                pending_id: 1,
            })),
        ),
    ]
}

/// Linked batches (one settles, one moves nothing), an idempotent retry and a refused reuse
/// of an id.
fn batch_steps(keys: &DemoKeys) -> Vec<Step<'_>> {
    vec![
        (
            "Umbrella pays Acme EUR 100.00 and Globex USD 200.00 as one linked batch",
            &keys.umbrella,
            Body::linked(vec![
                Operation::posted(1, account_of(6, EUR), account_of(3, EUR), EUR, 10_000),
                Operation::posted(2, account_of(6, USD), account_of(4, USD), USD, 20_000),
            ]),
        ),
        (
            "Umbrella tries a linked batch whose second leg exceeds its funds: nothing moves",
            &keys.umbrella,
            Body::linked(vec![
                Operation::posted(3, account_of(6, EUR), account_of(3, EUR), EUR, 10_000),
                Operation::posted(4, account_of(6, USD), account_of(4, USD), USD, 999_000_000),
            ]),
        ),
        (
            "Acme retries its first payment: idempotent, same outcome, no second debit",
            &keys.acme,
            Body::single(Operation::posted(
                1,
                account_of(3, EUR),
                account_of(5, EUR),
                EUR,
                1_250_000,
            )),
        ),
        (
            "Acme reuses id 1 with another amount: refused",
            &keys.acme,
            Body::single(Operation::posted(
                1,
                account_of(3, EUR),
                account_of(5, EUR),
                EUR,
                1,
            )),
        ),
    ]
}

/// Signs and submits one step, waiting for its commit, and reports its outcome.
async fn run_step(
    client: &Client,
    step: &str,
    key: &SigningKey,
    body: Body,
) -> anyhow::Result<StepReport> {
    let (_, response) = client.sign_and_submit(key, body, true).await?;
    let Some(result) = response.results.first() else {
        bail!("the node returned no result for: {step}");
    };
    Ok(StepReport {
        step: step.into(),
        code: result
            .code
            .map(|code| code.name().to_string())
            .unwrap_or_else(|| result.status.clone()),
        operations: result
            .operations
            .iter()
            .flatten()
            .map(|code| code.name().to_string())
            .collect(),
        height: result.height,
    })
}

/// Every demo account id with its asset, issuance accounts included.
pub fn all_accounts() -> Vec<(u128, u32)> {
    let mut accounts = vec![(issuance_of(EUR), EUR), (issuance_of(USD), USD)];
    for partner in 3..=6u64 {
        accounts.push((account_of(partner, EUR), EUR));
        accounts.push((account_of(partner, USD), USD));
    }
    accounts
}
