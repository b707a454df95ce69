//! A throwaway local network: keys, genesis and configs in a folder, `tpw run` processes on
//! loopback, and their clean shutdown.

use crate::limits::{NODE_START_TIMEOUT, PORT_RANGE_LOW, PORT_RANGE_SIZE};
use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tpw_contracts::genesis::{
    GenesisAccount, GenesisAsset, GenesisFunding, GenesisNode, GenesisParticipant, NodeRole,
};
use tpw_contracts::model::Role;
use tpw_contracts::Genesis;
use tpw_node::client::Client;

mod growth;
pub use growth::PreparedNode;

/// Participants and accounts for load: one bank and `partners` settlement partners, each with
/// one funded EUR account.
pub struct LoadParties {
    /// Signing key of each partner, by index.
    pub keys: Vec<SigningKey>,
}

/// The two bank members of a local network.
pub const BANKS: [u64; 2] = [1, 2];

/// The bank member sponsoring partner `index`: partners alternate between the two banks.
pub fn bank_of(index: usize) -> u64 {
    BANKS[index % BANKS.len()]
}

/// Participant id of partner `index`.
pub fn partner_id(index: usize) -> u64 {
    10 + index as u64
}

/// Account id of partner `index`.
pub fn partner_account(index: usize) -> u128 {
    10_000 + index as u128
}

/// The issuance account of the load asset.
pub const ISSUANCE_ACCOUNT: u128 = 1_000;
/// Most of each asset that may be outstanding in a local network: room for the issuers' mints
/// in the contract mix on top of any partner count's funding.
pub const SUPPLY_CAP: u128 = 1 << 100;

/// The asset used by the load.
pub const LOAD_ASSET: u32 = 1;

/// A second asset (USD, issued by bank 2), for exchanges between two assets.
pub const SECOND_ASSET: u32 = 2;

/// The issuance account of the second asset.
pub const SECOND_ISSUANCE_ACCOUNT: u128 = 2_000;

/// The regulator participant (key file keys/regulator.json).
pub const REGULATOR: u64 = 3;

/// The network operator participant (key file keys/operator.json).
pub const OPERATOR: u64 = 4;

/// Account id of partner `index` in the second asset.
pub fn partner_second_account(index: usize) -> u128 {
    50_000_000 + index as u128
}

/// Deterministic key for a partner: load runs need no secrecy and this keeps them repeatable.
/// The key of partner `index`: derived from the index, so tools can sign for a local network
/// without key files. Test keys only.
pub fn partner_key(index: usize) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(index as u64).to_le_bytes());
    seed[8..16].copy_from_slice(b"tpwbench");
    SigningKey::from_bytes(&seed)
}

/// Account id of partner `index`'s tracked account (load asset): only transfers whose every
/// acknowledgement a checker records touch it, so its balance must equal its funding plus the
/// transfers the ledger holds, each counted once.
pub fn partner_tracked_account(index: usize) -> u128 {
    70_000_000 + index as u128
}

/// What each participant of a load genesis gets in each account.
pub const PARTNER_FUNDING: u128 = 1_000_000_000_000;

/// Public keys of a load genesis' participants: the banks, the regulator and the operator by
/// participant id, and the partners by index.
pub struct ParticipantKeys {
    /// (participant id, public key) for [`BANKS`], [`REGULATOR`] and [`OPERATOR`].
    pub named: Vec<(u64, [u8; 32])>,
    /// Partner public keys, by index.
    pub partners: Vec<[u8; 32]>,
}

/// Writes the key files of the banks, the regulator and the operator; their ids and public
/// keys.
fn write_named_keys(dir: &Path) -> anyhow::Result<Vec<(u64, [u8; 32])>> {
    let mut named = Vec::new();
    for (name, id) in [
        ("bank-1", BANKS[0]),
        ("bank-2", BANKS[1]),
        ("regulator", REGULATOR),
        ("operator", OPERATOR),
    ] {
        let key = tpw_node::keys::generate()?;
        tpw_node::keys::write(&dir.join("keys").join(format!("{name}.json")), &key)?;
        named.push((id, key.verifying_key().to_bytes()));
    }
    Ok(named)
}

/// A new network's nodes: their genesis records, APIs, admin interfaces, and (node, key
/// file, API port, peer port) for their configurations.
struct NodePlan {
    nodes: Vec<GenesisNode>,
    apis: Vec<String>,
    admins: Vec<String>,
    configs: Vec<(usize, PathBuf, u16, u16)>,
}

impl NodePlan {
    /// Writes each node's key (voters first, then observers) and picks its ports.
    fn write_keys(
        dir: &Path,
        voters: usize,
        observers: usize,
        scheme: &str,
    ) -> anyhow::Result<Self> {
        let mut nodes = Vec::new();
        let mut apis = Vec::new();
        let mut configs = Vec::new();
        let mut admins = Vec::new();
        for node in 1..=voters + observers {
            let key = tpw_node::keys::generate()?;
            let key_path = dir.join("keys").join(format!("node-{node}.json"));
            tpw_node::keys::write(&key_path, &key)?;
            let (name, role) = if node <= voters {
                (format!("bank-{node}"), NodeRole::Voter)
            } else {
                (format!("regulator-{}", node - voters), NodeRole::Observer)
            };
            nodes.push(GenesisNode {
                id: node as u64,
                name,
                public_key: hex::encode(key.verifying_key().to_bytes()),
                role,
            });
            let port = free_port()?;
            apis.push(format!("{scheme}://127.0.0.1:{port}"));
            let admin = free_port()?;
            admins.push(format!("{scheme}://127.0.0.1:{admin}"));
            configs.push((node, key_path, port, free_port()?));
        }
        Ok(Self {
            nodes,
            apis,
            admins,
            configs,
        })
    }
}

/// Writes each node's configuration (every other node as a peer) and admin token.
fn write_node_configs(
    dir: &Path,
    genesis_path: &Path,
    configs: &[(usize, PathBuf, u16, u16)],
    admins: &[String],
    options: &NetworkOptions,
) -> anyhow::Result<()> {
    let peer_list: Vec<(usize, u16)> = configs
        .iter()
        .map(|(node, _, _, p2p)| (*node, *p2p))
        .collect();
    for (node, key_path, port, p2p) in configs {
        let (top, tls_sections) = tls_fragments(dir, *node, options.tls)?;
        let admin = admins[node - 1]
            .split_once("://")
            .map_or("", |(_, address)| address);
        let mut config = format!(
            "data_dir = \"{}\"\ngenesis_file = \"{}\"\nnode_key_file = \"{}\"\napi_listen = \"127.0.0.1:{port}\"\np2p_listen = \"127.0.0.1:{p2p}\"\nadmin_listen = \"{admin}\"\nadmin_token_file = \"{}\"\n{top}",
            dir.join(format!("node-{node}")).display(),
            genesis_path.display(),
            key_path.display(),
            admin_token_path(dir, *node).display()
        );
        tpw_node::keys::write_admin_token(&admin_token_path(dir, *node))?;
        for (peer, peer_port) in peer_list.iter().filter(|(peer, _)| peer != node) {
            config.push_str(&format!(
                "[[peers]]\nid = {peer}\naddress = \"127.0.0.1:{peer_port}\"\n"
            ));
        }
        if let Some(entries) = options.log_retention_entries {
            config.push_str(&format!("[raft]\nlog_retention_entries = {entries}\n"));
        }
        // The drills' webhook receivers listen on loopback.
        config.push_str("[webhooks]\nallow_private_networks = true\nallow_plain_http = true\n");
        config.push_str("[log]\nlevel = \"warn\"\n");
        config.push_str(&tls_sections);
        std::fs::write(dir.join(format!("node-{node}.toml")), config)?;
    }
    Ok(())
}

/// The folder of a network's throwaway CA and node certificates.
pub fn tls_dir(dir: &Path) -> PathBuf {
    dir.join("tls")
}

/// The CA certificate clients of a network with TLS trust.
pub fn ca_file(dir: &Path) -> PathBuf {
    tls_dir(dir).join("ca.crt")
}

/// Node `node`'s TLS in its configuration: a top-level line, and sections to append. With TLS,
/// a certificate for loopback issued by the network's CA serves both its API and its admin
/// interface; without, plain HTTP is asked for explicitly.
fn tls_fragments(dir: &Path, node: usize, tls: bool) -> anyhow::Result<(String, String)> {
    if !tls {
        return Ok(("plain_http = true\n".into(), String::new()));
    }
    let folder = tls_dir(dir);
    let ca = tpw_node::tls::dev::DevCa::load(&folder)?;
    let (certificate, key) = ca
        .issue_server(&tpw_node::tls::dev::LOOPBACK_NAMES, node as u64, 365)?
        .save(&folder, &format!("node-{node}"))?;
    let section = |name: &str| {
        format!(
            "[{name}]\ncertificate_file = \"{}\"\nkey_file = \"{}\"\n",
            certificate.display(),
            key.display()
        )
    };
    Ok((String::new(), section("api_tls") + &section("admin_tls")))
}

/// The banks, the regulator and the operator as genesis participants.
fn named_participants(named: &[(u64, [u8; 32])]) -> anyhow::Result<Vec<GenesisParticipant>> {
    let mut participants = Vec::new();
    for (id, key) in named {
        let (name, role) = match *id {
            REGULATOR => ("regulator".to_string(), Role::Regulator),
            OPERATOR => ("operator".to_string(), Role::Operator),
            bank if BANKS.contains(&bank) => (format!("Bank {bank}"), Role::BankMember),
            other => bail!("participant {other} is not one of the load genesis' named parties"),
        };
        participants.push(GenesisParticipant {
            id: *id,
            name,
            role,
            bank: None,
            keys: vec![hex::encode(key)],
        });
    }
    Ok(participants)
}

/// Each partner as a participant of its bank, with a funded account in both assets and a
/// funded tracked account; the accounts and their funding.
fn add_partners(
    partners: &[[u8; 32]],
    participants: &mut Vec<GenesisParticipant>,
) -> (Vec<GenesisAccount>, Vec<GenesisFunding>) {
    let mut accounts = Vec::new();
    let mut funding = Vec::new();
    for (index, key) in partners.iter().enumerate() {
        participants.push(GenesisParticipant {
            id: partner_id(index),
            name: format!("Partner {index}"),
            role: Role::SettlementPartner,
            bank: Some(bank_of(index)),
            keys: vec![hex::encode(key)],
        });
        for (account, asset) in [
            (partner_account(index), LOAD_ASSET),
            (partner_second_account(index), SECOND_ASSET),
            (partner_tracked_account(index), LOAD_ASSET),
        ] {
            accounts.push(GenesisAccount {
                id: account,
                owner: partner_id(index),
                asset,
                flags: vec!["debits_must_not_exceed_credits".into()],
            });
            funding.push(GenesisFunding {
                account,
                amount: PARTNER_FUNDING,
            });
        }
    }
    (accounts, funding)
}

/// The genesis of a local network (and of the simulator): two banks issuing EUR and USD, a
/// regulator, an operator, and partners alternating between the banks, each with a funded
/// account in both assets and a funded tracked account.
pub fn load_genesis(
    keys: &ParticipantKeys,
    nodes: Vec<GenesisNode>,
    genesis_time_ms: u64,
) -> anyhow::Result<Genesis> {
    let mut participants = named_participants(&keys.named)?;
    let (accounts, funding) = add_partners(&keys.partners, &mut participants);
    let genesis = Genesis {
        network_name: "tpw-local".into(),
        genesis_time_ms,
        participants,
        assets: vec![
            GenesisAsset {
                id: LOAD_ASSET,
                code: "EUR".into(),
                scale: 2,
                issuer: BANKS[0],
                issuance_account: ISSUANCE_ACCOUNT,
                supply_cap: Some(SUPPLY_CAP),
            },
            GenesisAsset {
                id: SECOND_ASSET,
                code: "USD".into(),
                scale: 2,
                issuer: BANKS[1],
                issuance_account: SECOND_ISSUANCE_ACCOUNT,
                supply_cap: Some(SUPPLY_CAP),
            },
        ],
        accounts,
        funding,
        nodes,
        network_id: None,
    };
    Ok(Genesis {
        network_id: Some(hex::encode(genesis.compute_network_id()?)),
        ..genesis
    })
}

/// A running local network.
pub struct LocalNetwork {
    /// Root folder.
    pub dir: PathBuf,
    /// API base URLs of the nodes, in node order.
    pub apis: Vec<String>,
    /// Admin interface base URLs of the nodes, in node order.
    pub admins: Vec<String>,
    /// Which nodes have never been started (created by this handle).
    new_nodes: Vec<bool>,
    children: Vec<Option<Child>>,
    /// The genesis.
    pub genesis: Genesis,
    /// Whether the nodes serve TLS (certificates from the CA in [`tls_dir`]).
    pub tls: bool,
}

/// The regulator's key of the network in `dir`: it may read every record, so the tools use it
/// for checks across all accounts.
pub fn regulator_key(dir: &Path) -> anyhow::Result<SigningKey> {
    Ok(tpw_node::keys::load(
        &dir.join("keys").join("regulator.json"),
    )?)
}

/// One node as `tpw-testnet up` prints it and network.json records it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NodeEntry {
    /// Name from the genesis, such as bank-1.
    pub name: String,
    /// "voter" or "observer".
    pub role: String,
    /// API base URL.
    pub api: String,
}

/// What network.json in a local network's folder records.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NetworkFile {
    /// Nodes, in node order.
    pub nodes: Vec<NodeEntry>,
    /// Partners of the load genesis.
    pub partners: usize,
    /// Process ids of nodes started by `up` (absent once stopped).
    #[serde(default)]
    pub pids: Vec<Option<u32>>,
    /// Admin interface base URLs, in node order.
    #[serde(default)]
    pub admins: Vec<String>,
    /// The CA certificate of a network serving TLS (absent: plain HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

static NEXT_PORT_OFFSET: std::sync::OnceLock<std::sync::atomic::AtomicU32> =
    std::sync::OnceLock::new();

/// A loopback port for a node to listen on. Ports come from below the kernel's ephemeral
/// range, so no outgoing connection (a node dialing a peer) can take one between this probe
/// and the node's bind, which asking the kernel for port 0 allowed. A counter shared by the
/// process never hands a port out twice, and its start depends on the process id and the time,
/// so concurrent processes start far apart; each port is probed before it is handed out.
pub fn free_port() -> anyhow::Result<u16> {
    let offsets = NEXT_PORT_OFFSET.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let start = (std::process::id().wrapping_mul(7919) ^ nanos) % u32::from(PORT_RANGE_SIZE);
        std::sync::atomic::AtomicU32::new(start)
    });
    for _ in 0..PORT_RANGE_SIZE {
        let offset =
            offsets.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % u32::from(PORT_RANGE_SIZE);
        let port = PORT_RANGE_LOW + offset as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!(
        "no free loopback port in {PORT_RANGE_LOW}..{}",
        PORT_RANGE_LOW + PORT_RANGE_SIZE
    )
}

/// Where node `node` (from 1) keeps its admin interface token.
pub fn admin_token_path(dir: &Path, node: usize) -> PathBuf {
    dir.join("keys").join(format!("admin-token-{node}"))
}

/// Choices for a new local network beyond its size.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// Raft log entries each node keeps behind its applied index (the node's default when
    /// absent); small values make lagging nodes catch up through snapshots.
    pub log_retention_entries: Option<u64>,
    /// Serve the APIs and admin interfaces over TLS with a throwaway CA (the default), or
    /// plain HTTP.
    pub tls: bool,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        Self {
            log_retention_entries: None,
            tls: true,
        }
    }
}

/// The `tpw` binary next to this executable.
pub fn tpw_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no folder")?;
    for candidate in [dir.join("tpw"), dir.join("../tpw")] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!("the tpw binary was not found next to {}; build the workspace first (cargo build --release --locked)", exe.display())
}

impl LocalNetwork {
    /// Writes keys, genesis and configs for `voters` voting nodes, `observers` regulator
    /// observers (numbered after the voters) and `partners` load partners.
    pub fn create(
        dir: &Path,
        voters: usize,
        observers: usize,
        partners: usize,
    ) -> anyhow::Result<(Self, LoadParties)> {
        Self::create_with(dir, voters, observers, partners, &NetworkOptions::default())
    }

    /// As [`LocalNetwork::create`], with options.
    pub fn create_with(
        dir: &Path,
        voters: usize,
        observers: usize,
        partners: usize,
        options: &NetworkOptions,
    ) -> anyhow::Result<(Self, LoadParties)> {
        if voters == 0 {
            bail!("a network needs at least one voting node");
        }
        std::fs::create_dir_all(dir.join("keys"))?;
        if options.tls {
            tpw_node::tls::dev::DevCa::generate("tpwalletoec local network CA")?
                .save(&tls_dir(dir))?;
            tpw_node::tls::client::trust_ca_file(ca_file(dir))?;
        }
        let named = write_named_keys(dir)?;
        let keys: Vec<SigningKey> = (0..partners).map(partner_key).collect();
        let participant_keys = ParticipantKeys {
            named,
            partners: keys
                .iter()
                .map(|key| key.verifying_key().to_bytes())
                .collect(),
        };
        let scheme = if options.tls { "https" } else { "http" };
        let plan = NodePlan::write_keys(dir, voters, observers, scheme)?;
        let genesis = load_genesis(&participant_keys, plan.nodes, tpw_node::runtime::now_ms())?;
        let apis_count = plan.apis.len();
        let genesis_path = dir.join("genesis.json");
        std::fs::write(&genesis_path, serde_json::to_string_pretty(&genesis)?)?;
        write_node_configs(dir, &genesis_path, &plan.configs, &plan.admins, options)?;
        Ok((
            Self {
                dir: dir.to_path_buf(),
                apis: plan.apis,
                admins: plan.admins,
                new_nodes: vec![true; apis_count],
                children: (0..apis_count).map(|_| None).collect(),
                genesis,
                tls: options.tls,
            },
            LoadParties { keys },
        ))
    }

    /// Reopens a network created earlier in `dir` (from network.json and genesis.json).
    pub fn open(dir: &Path) -> anyhow::Result<(Self, NetworkFile)> {
        let file: NetworkFile = serde_json::from_str(
            &std::fs::read_to_string(dir.join("network.json"))
                .with_context(|| format!("no local network in {}", dir.display()))?,
        )
        .context("network.json is not valid")?;
        let genesis = tpw_node::node::load_genesis(&dir.join("genesis.json"))?;
        let apis = file.nodes.iter().map(|node| node.api.clone()).collect();
        let children = file.nodes.iter().map(|_| None).collect();
        let admins = file.admins.clone();
        if let Some(ca) = &file.ca {
            tpw_node::tls::client::trust_ca_file(ca)?;
        }
        Ok((
            Self {
                dir: dir.to_path_buf(),
                apis,
                new_nodes: vec![false; file.nodes.len()],
                admins,
                children,
                genesis,
                tls: file.ca.is_some(),
            },
            file,
        ))
    }

    /// The CA certificate clients trust, when the network serves TLS (absolute).
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.then(|| {
            let ca = ca_file(&self.dir);
            std::path::absolute(&ca).unwrap_or(ca)
        })
    }

    /// The nodes as `up` prints them.
    pub fn describe(&self) -> Vec<NodeEntry> {
        self.genesis
            .nodes
            .iter()
            .zip(&self.apis)
            .map(|(node, api)| NodeEntry {
                name: node.name.clone(),
                role: match node.role {
                    NodeRole::Voter => "voter".into(),
                    NodeRole::Observer => "observer".into(),
                },
                api: api.clone(),
            })
            .collect()
    }

    /// Records the network in network.json, with the pids of running nodes.
    pub fn write_file(&self, partners: usize, pids: Vec<Option<u32>>) -> anyhow::Result<()> {
        let file = NetworkFile {
            nodes: self.describe(),
            partners,
            pids,
            admins: self.admins.clone(),
            ca: self.ca_file(),
        };
        std::fs::write(
            self.dir.join("network.json"),
            serde_json::to_string_pretty(&file)? + "\n",
        )?;
        Ok(())
    }

    /// Asks node `index`, the leader, to hand leadership over (its admin interface); returns
    /// the new leader's id.
    pub async fn step_down(&self, index: usize) -> anyhow::Result<u64> {
        let body = self.admin_post(index, "step-down", None).await?;
        body["leader"]
            .as_u64()
            .context("step-down answer names no leader")
    }

    /// POSTs to node `index`'s admin interface at `/admin/v1/<route>` with the operator's
    /// token; the JSON answer, or an error naming the refusal.
    async fn admin_post(
        &self,
        index: usize,
        route: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let admin = self
            .admins
            .get(index)
            .context("the node has no admin interface")?;
        let token = tpw_node::keys::load_admin_token(&admin_token_path(&self.dir, index + 1))?;
        let mut request = tpw_node::tls::client::http_builder()
            .timeout(Duration::from_secs(10))
            .build()?
            .post(format!("{admin}/admin/v1/{route}"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "{route} refused ({status}): {text}");
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Cuts node `index` off from every other node (`isolate`), or reconnects it, through the
    /// node's admin interface.
    pub async fn partition(&self, index: usize, isolate: bool) -> anyhow::Result<()> {
        let me = self.genesis.nodes.get(index).context("no such node")?.id;
        let others: Vec<u64> = if isolate {
            self.genesis
                .nodes
                .iter()
                .map(|node| node.id)
                .filter(|id| *id != me)
                .collect()
        } else {
            Vec::new()
        };
        self.admin_post(
            index,
            "partition",
            Some(serde_json::json!({ "isolate_from": others })),
        )
        .await?;
        Ok(())
    }

    /// Lets the node processes outlive this handle; returns their pids.
    pub fn detach(&mut self) -> Vec<Option<u32>> {
        self.children
            .iter_mut()
            .map(|child| child.take().map(|child| child.id()))
            .collect()
    }

    /// Starts every node process (with `--new-node` where its data folder does not exist yet)
    /// and waits until each serves and a leader is elected.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        for index in 0..self.apis.len() {
            self.spawn(index)?;
        }
        for index in 0..self.apis.len() {
            self.wait_serving(index).await?;
        }
        self.wait_leader().await
    }

    async fn wait_leader(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.leader().await.is_none() {
            if started.elapsed() > NODE_START_TIMEOUT {
                bail!(
                    "no leader was elected within {NODE_START_TIMEOUT:?}; see the logs in {}",
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Starts node `index`, with `--new-node` only on the first start of a network this handle
    /// created (never inferred from a missing data folder: a wiped voter must stay refused).
    fn spawn(&mut self, index: usize) -> anyhow::Result<()> {
        let new_node = std::mem::replace(&mut self.new_nodes[index], false);
        let binary = tpw_binary()?;
        let node = index + 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{node}.log")))?;
        let child = Command::new(&binary)
            .arg("run")
            .arg("--config")
            .arg(self.dir.join(format!("node-{node}.toml")))
            .args(new_node.then_some("--new-node"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        self.children[index] = Some(child);
        Ok(())
    }

    async fn wait_serving(&mut self, index: usize) -> anyhow::Result<()> {
        let client = Client::new(&self.apis[index]);
        let started = Instant::now();
        while !client.healthy().await {
            if started.elapsed() > NODE_START_TIMEOUT {
                bail!(
                    "node {} did not serve within {NODE_START_TIMEOUT:?}; see its log in {}",
                    index + 1,
                    self.dir.display()
                );
            }
            if let Some(child) = self.children[index].as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "node {} exited with {status}; see {}/node-{}.log",
                        index + 1,
                        self.dir.display(),
                        index + 1
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// SIGKILLs node `index` (from 0).
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.children.get_mut(index).and_then(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `index` again on its data and waits until it serves.
    pub async fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        self.kill(index);
        self.spawn(index)?;
        self.wait_serving(index).await
    }

    /// Kills node `index` and deletes its data folder (an observer may then start again and
    /// catch up; a voter must refuse).
    pub fn wipe(&mut self, index: usize) -> anyhow::Result<()> {
        self.kill(index);
        let data = self.dir.join(format!("node-{}", index + 1));
        if data.exists() {
            std::fs::remove_dir_all(&data)?;
        }
        Ok(())
    }

    /// Kills node `index`, deletes its data folder, and starts it again as an existing node
    /// (without `--new-node`); returns how it ended and what it logged. A voter must refuse.
    pub async fn restart_wiped(
        &mut self,
        index: usize,
    ) -> anyhow::Result<(std::process::ExitStatus, String)> {
        self.kill(index);
        let data = self.dir.join(format!("node-{}", index + 1));
        if data.exists() {
            std::fs::remove_dir_all(&data)?;
        }
        self.spawn(index)?;
        let started = Instant::now();
        loop {
            if let Some(child) = self.children[index].as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.children[index] = None;
                    let log =
                        std::fs::read_to_string(self.dir.join(format!("node-{}.log", index + 1)))?;
                    return Ok((status, log));
                }
            }
            if started.elapsed() > NODE_START_TIMEOUT {
                bail!("node {} kept running on a wiped data folder", index + 1);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The API of the node that every node names as leader, if they agree on one.
    pub async fn leader(&self) -> Option<String> {
        let all: Vec<usize> = (0..self.apis.len()).collect();
        self.leader_among(&all).await
    }

    /// The API of the node that the listed nodes all name as leader, if they agree and it is
    /// one of them.
    pub async fn leader_among(&self, nodes: &[usize]) -> Option<String> {
        let mut leader = None;
        for api in nodes.iter().filter_map(|index| self.apis.get(*index)) {
            let status = Client::new(api).status().await.ok()?;
            let named = status.leader_id?;
            if leader.is_some_and(|known| known != named) {
                return None;
            }
            leader = Some(named);
        }
        let index = usize::try_from(leader?).ok()?.checked_sub(1)?;
        if !nodes.contains(&index) {
            return None;
        }
        self.apis.get(index).cloned()
    }

    /// Process id of node `index` (from 0), if this handle started it and it runs.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.children.get(index)?.as_ref().map(Child::id)
    }

    /// The peer (p2p) listen address of node `index` (from 0), from its config file.
    pub fn p2p_address(&self, index: usize) -> Option<String> {
        let config =
            std::fs::read_to_string(self.dir.join(format!("node-{}.toml", index + 1))).ok()?;
        config.lines().find_map(|line| {
            let value = line.strip_prefix("p2p_listen = ")?;
            Some(value.trim_matches('"').to_string())
        })
    }

    /// Process ids of the running nodes.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().flatten().map(Child::id).collect()
    }

    /// Stops every node (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            // A child already reaped may have had its pid reused: never signal it.
            if !matches!(child.try_wait(), Ok(None)) {
                continue;
            }
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for child in self.children.iter_mut().flatten() {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for LocalNetwork {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Resident memory of a process in MiB, from /proc (0 if unknown).
pub fn rss_mib(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}
