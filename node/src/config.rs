//! Node configuration: defaults < TOML file < environment (TPW_*) < command-line flags,
//! validated before the node starts and logged once.

use crate::limits::{
    API_REQUEST_TIMEOUT_MS_MAX, API_REQUEST_TIMEOUT_MS_MIN, LOG_RETENTION_ENTRIES_MAX,
    LOG_RETENTION_ENTRIES_MIN, TICK_MS_MAX, WEBHOOK_ATTEMPTS_MAX, WEBHOOK_TIMEOUT_MS_MAX,
    WEBHOOK_TIMEOUT_MS_MIN,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use tpw_consensus::BlockLimits;

/// Raft timing and log retention.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    /// Milliseconds per Raft tick.
    pub tick_ms: u64,
    /// Ticks without a leader before an election.
    pub election_ticks: usize,
    /// Ticks between heartbeats.
    pub heartbeat_ticks: usize,
    /// Raft log entries (one per block) kept behind the applied index; older ones are
    /// compacted away and a peer that needs them gets a snapshot of the state instead.
    /// Committed blocks themselves are always kept from genesis.
    pub log_retention_entries: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            tick_ms: 100,
            election_ticks: 10,
            heartbeat_ticks: 2,
            log_retention_entries: 10_000,
        }
    }
}

/// Block limits chosen by this node when it leads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockConfig {
    /// Transactions per block.
    pub transactions_max: usize,
    /// Bytes of envelopes per block.
    pub size_max: usize,
    /// Blocks proposed and not yet applied before the leader cuts the next one.
    pub proposals_in_flight_max: u64,
}

impl Default for BlockConfig {
    fn default() -> Self {
        let limits = BlockLimits::default();
        Self {
            transactions_max: limits.transactions_max,
            size_max: limits.size_max,
            proposals_in_flight_max: crate::limits::PROPOSALS_IN_FLIGHT_DEFAULT,
        }
    }
}

/// Ledger time and this machine's clock (docs/operating.md, "Ledger time").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    /// Alarm (metric, log, a warning in /v1/ready) when this machine's wall clock and the
    /// ledger time differ by more than this.
    pub skew_alarm_ms: u64,
    /// As leader with no ledger-time estimate yet (no block applied since start), the most its
    /// first stamp steps from the head's time toward this machine's clock.
    pub first_step_max_ms: u64,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            skew_alarm_ms: 2_000,
            first_step_max_ms: tpw_consensus::limits::CLOCK_FIRST_STEP_MAX_MS_DEFAULT,
        }
    }
}

/// Per-principal limits of the HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Signed reads per second per participant (sustained).
    pub requests_per_second: u64,
    /// Signed reads a participant may make at once.
    pub request_burst: u64,
    /// Transactions per second per signing key (sustained), counted where they are submitted.
    pub transactions_per_second: u64,
    /// Transactions a signing key may submit at once.
    pub transaction_burst: u64,
    /// Longest a request may take before the node answers 503 `timeout` (waits for commit are
    /// bounded separately by the request's own `timeout_ms`; event streams are not bounded).
    pub request_timeout_ms: u64,
    /// Requests one source address may have in flight at once (partners behind one bank's
    /// address translation share it).
    pub requests_in_flight_per_address: u64,
    /// Requests one signing key may have in flight at once (signed reads, submissions).
    pub requests_in_flight_per_key: u64,
    /// Event streams one participant may hold open at once.
    pub event_streams_per_participant: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 2_000,
            request_burst: 4_000,
            transactions_per_second: 20_000,
            transaction_burst: 40_000,
            request_timeout_ms: 75_000,
            requests_in_flight_per_address: 1_024,
            requests_in_flight_per_key: 256,
            event_streams_per_participant: 16,
        }
    }
}

/// Webhook delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Attempts per delivery before it moves to the dead-letter list.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; it doubles with each further failure.
    pub backoff_initial_ms: u64,
    /// Longest wait between attempts.
    pub backoff_max_ms: u64,
    /// Longest a receiver may take to answer one delivery.
    pub timeout_ms: u64,
    /// Deliver to loopback, private and link-local addresses too (off: an endpoint that
    /// resolves to one fails with "destination not allowed"). For local networks and tests.
    pub allow_private_networks: bool,
    /// Deliver to http:// endpoints too (off: they fail with "plain http not allowed"). For
    /// local networks and tests.
    pub allow_plain_http: bool,
    /// CA files (PEM) trusted besides the system's roots for the endpoints of an origin, keyed
    /// by origin: `"https://hooks.acme.example:8443" = "/etc/tpw/acme-ca.pem"`. Every voter
    /// should carry the same, since the leader delivers.
    pub ca_files: std::collections::BTreeMap<String, PathBuf>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff_initial_ms: 250,
            backoff_max_ms: 60_000,
            timeout_ms: 5_000,
            allow_private_networks: false,
            allow_plain_http: false,
            ca_files: std::collections::BTreeMap::new(),
        }
    }
}

/// Log output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// "text" or "json".
    pub format: String,
    /// A tracing filter such as "info" or "tpw_node=debug,info".
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// Where another node of the node set listens for peers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerAddress {
    /// Its Raft id, as in the genesis.
    pub id: u64,
    /// Its peer address, such as 127.0.0.1:7201.
    pub address: String,
}

/// The whole node configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Folder of the node's database.
    pub data_dir: PathBuf,
    /// The genesis file.
    pub genesis_file: PathBuf,
    /// The node's key file (its public key must be in the genesis node set).
    pub node_key_file: PathBuf,
    /// Address of the HTTP API.
    pub api_listen: String,
    /// Address of the peer transport (libp2p over TCP).
    pub p2p_listen: String,
    /// Peer addresses of the other nodes of the node set.
    pub peers: Vec<PeerAddress>,
    /// Address of the operator's admin interface (fault injection for drills); off when absent.
    /// Bind it to loopback or an operations network.
    pub admin_listen: Option<String>,
    /// File with the admin interface's bearer token (`tpw admin-token --out FILE` makes one,
    /// mode 0600); required with `admin_listen`.
    pub admin_token_file: Option<PathBuf>,
    /// TLS of the API (`[api_tls]`); required unless `plain_http` is set.
    pub api_tls: Option<crate::tls::TlsSettings>,
    /// TLS of the admin interface (`[admin_tls]`); required with `admin_listen` unless
    /// `plain_http` is set. Set `client_ca_file` to require operators' client certificates.
    pub admin_tls: Option<crate::tls::TlsSettings>,
    /// Serve a listener that has no TLS section over plain HTTP (a warning at start). For a
    /// network on one machine or one closed segment only.
    pub plain_http: bool,
    /// Raft timing.
    pub raft: RaftConfig,
    /// Block limits.
    pub blocks: BlockConfig,
    /// API limits.
    pub api: ApiConfig,
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// Logging.
    pub log: LogConfig,
    /// Ledger time against this machine's clock.
    pub clock: ClockConfig,
    /// This node's Raft id, needed only when the ledger does not yet record this node's key:
    /// a node added by governance on its first start, or a node restarted with a rotated key
    /// before it applied the rotation. Otherwise the ledger's node set names it by its key.
    pub node_id: Option<u64>,
    /// This is the first start of this node (set by `--new-node`): a voter refuses to start on
    /// an empty data folder without it, since a voter that lost its data could vote twice.
    #[serde(skip)]
    pub new_node: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            genesis_file: PathBuf::from("genesis.json"),
            node_key_file: PathBuf::from("node-key.json"),
            api_listen: "127.0.0.1:7100".into(),
            p2p_listen: "127.0.0.1:7200".into(),
            admin_listen: None,
            admin_token_file: None,
            api_tls: None,
            admin_tls: None,
            plain_http: false,
            peers: Vec::new(),
            raft: RaftConfig::default(),
            blocks: BlockConfig::default(),
            api: ApiConfig::default(),
            webhooks: WebhookConfig::default(),
            log: LogConfig::default(),
            clock: ClockConfig::default(),
            node_id: None,
            new_node: false,
        }
    }
}

/// Overrides from flags (already merged with the environment by clap).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// data_dir.
    pub data_dir: Option<PathBuf>,
    /// genesis_file.
    pub genesis_file: Option<PathBuf>,
    /// node_key_file.
    pub node_key_file: Option<PathBuf>,
    /// api_listen.
    pub api_listen: Option<String>,
    /// log.format.
    pub log_format: Option<String>,
    /// log.level.
    pub log_level: Option<String>,
    /// First start of a new node.
    pub new_node: bool,
    /// node_id.
    pub node_id: Option<u64>,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl NodeConfig {
    /// Loads defaults, then the file (if any), then the overrides, then validates.
    pub fn load(
        file: Option<&std::path::Path>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut config = match file {
            None => NodeConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    ConfigError(format!("cannot read {}: {error}", path.display()))
                })?;
                toml::from_str(&text)
                    .map_err(|error| ConfigError(format!("{}: {error}", path.display())))?
            }
        };
        if let Some(value) = &overrides.data_dir {
            config.data_dir = value.clone();
        }
        if let Some(value) = &overrides.genesis_file {
            config.genesis_file = value.clone();
        }
        if let Some(value) = &overrides.node_key_file {
            config.node_key_file = value.clone();
        }
        if let Some(value) = &overrides.api_listen {
            config.api_listen = value.clone();
        }
        if let Some(value) = &overrides.log_format {
            config.log.format = value.clone();
        }
        if let Some(value) = &overrides.log_level {
            config.log.level = value.clone();
        }
        config.new_node = overrides.new_node;
        if overrides.node_id.is_some() {
            config.node_id = overrides.node_id;
        }
        if config.node_id == Some(0) {
            return Err(ConfigError("node_id must not be 0".into()));
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every field and the relations between them, section by section (the first
    /// error found is the one reported).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_addresses()?;
        self.validate_tls()?;
        self.validate_api_rates()?;
        self.validate_webhooks()?;
        if !(API_REQUEST_TIMEOUT_MS_MIN..=API_REQUEST_TIMEOUT_MS_MAX)
            .contains(&self.api.request_timeout_ms)
        {
            return Err(ConfigError(format!(
                "api.request_timeout_ms must be {API_REQUEST_TIMEOUT_MS_MIN}..={API_REQUEST_TIMEOUT_MS_MAX}"
            )));
        }
        self.validate_raft()?;
        self.validate_blocks()?;
        self.validate_log_and_paths()
    }

    /// Every listen and peer address parses; an admin interface has its token file.
    fn validate_addresses(&self) -> Result<(), ConfigError> {
        let fail = |message: String| Err(ConfigError(message));
        if self.api_listen.parse::<SocketAddr>().is_err() {
            return fail(format!(
                "api_listen {:?} is not an address such as 127.0.0.1:7100",
                self.api_listen
            ));
        }
        if self.p2p_listen.parse::<SocketAddr>().is_err() {
            return fail(format!(
                "p2p_listen {:?} is not an address such as 127.0.0.1:7200",
                self.p2p_listen
            ));
        }
        if let Some(admin) = &self.admin_listen {
            if admin.parse::<SocketAddr>().is_err() {
                return fail(format!(
                    "admin_listen {admin:?} is not an address such as 127.0.0.1:7300"
                ));
            }
            if self.admin_token_file.is_none() {
                return fail(
                    "admin_listen needs admin_token_file (make one with `tpw admin-token --out FILE`)"
                        .into(),
                );
            }
        }
        for peer in &self.peers {
            if peer.address.parse::<SocketAddr>().is_err() {
                return fail(format!(
                    "peer {} address {:?} is not an address such as 127.0.0.1:7201",
                    peer.id, peer.address
                ));
            }
        }
        Ok(())
    }

    /// Every listener has TLS or plain HTTP was asked for; each TLS section is consistent.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let mut listeners = vec![("api_listen", "api_tls", &self.api_tls)];
        if self.admin_listen.is_some() {
            listeners.push(("admin_listen", "admin_tls", &self.admin_tls));
        }
        for (listen, section, tls) in listeners {
            match tls {
                Some(tls) => tls.validate(section).map_err(ConfigError)?,
                None if self.plain_http => {}
                None => {
                    return Err(ConfigError(format!(
                        "{listen} has no [{section}] section: give it certificate_file and key_file, or set plain_http = true to serve plain HTTP on a closed network"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Every rate limit lets at least one request through.
    fn validate_api_rates(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("api.requests_per_second", self.api.requests_per_second),
            ("api.request_burst", self.api.request_burst),
            (
                "api.transactions_per_second",
                self.api.transactions_per_second,
            ),
            ("api.transaction_burst", self.api.transaction_burst),
            (
                "api.requests_in_flight_per_address",
                self.api.requests_in_flight_per_address,
            ),
            (
                "api.requests_in_flight_per_key",
                self.api.requests_in_flight_per_key,
            ),
            (
                "api.event_streams_per_participant",
                self.api.event_streams_per_participant,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        Ok(())
    }

    /// Webhook attempts, backoff and timeout within their bounds.
    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let fail = |message: String| Err(ConfigError(message));
        if !(1..=WEBHOOK_ATTEMPTS_MAX).contains(&self.webhooks.max_attempts) {
            return fail(format!(
                "webhooks.max_attempts must be 1..={WEBHOOK_ATTEMPTS_MAX}"
            ));
        }
        if self.webhooks.backoff_initial_ms == 0
            || self.webhooks.backoff_max_ms < self.webhooks.backoff_initial_ms
        {
            return fail(
                "webhooks.backoff_initial_ms must be at least 1 and at most webhooks.backoff_max_ms"
                    .into(),
            );
        }
        if !(WEBHOOK_TIMEOUT_MS_MIN..=WEBHOOK_TIMEOUT_MS_MAX).contains(&self.webhooks.timeout_ms) {
            return fail(format!(
                "webhooks.timeout_ms must be {WEBHOOK_TIMEOUT_MS_MIN}..={WEBHOOK_TIMEOUT_MS_MAX}"
            ));
        }
        for origin in self.webhooks.ca_files.keys() {
            let parsed = reqwest::Url::parse(origin).ok();
            let is_origin = parsed.as_ref().is_some_and(|url| {
                url.scheme() == "https"
                    && url.host_str().is_some()
                    && url.path() == "/"
                    && url.query().is_none()
            });
            if !is_origin {
                return fail(format!(
                    "webhooks.ca_files key {origin:?} must be an https origin such as \"https://hooks.example:8443\""
                ));
            }
        }
        Ok(())
    }

    /// Raft's tick, log retention, and election ticks above heartbeat ticks.
    fn validate_raft(&self) -> Result<(), ConfigError> {
        let fail = |message: String| Err(ConfigError(message));
        if !(1..=TICK_MS_MAX).contains(&self.raft.tick_ms) {
            return fail(format!("raft.tick_ms must be 1..={TICK_MS_MAX}"));
        }
        if !(LOG_RETENTION_ENTRIES_MIN..=LOG_RETENTION_ENTRIES_MAX)
            .contains(&self.raft.log_retention_entries)
        {
            return fail(format!(
                "raft.log_retention_entries must be {LOG_RETENTION_ENTRIES_MIN}..={LOG_RETENTION_ENTRIES_MAX}"
            ));
        }
        if self.raft.heartbeat_ticks == 0 || self.raft.election_ticks <= self.raft.heartbeat_ticks {
            return fail(
                "raft.election_ticks must exceed raft.heartbeat_ticks, which must be at least 1"
                    .into(),
            );
        }
        Ok(())
    }

    /// The block limits, and the proposals in flight.
    fn validate_blocks(&self) -> Result<(), ConfigError> {
        self.block_limits().validate().map_err(ConfigError)?;
        if !(1..=crate::limits::PROPOSALS_IN_FLIGHT_MAX)
            .contains(&self.blocks.proposals_in_flight_max)
        {
            return Err(ConfigError(format!(
                "blocks.proposals_in_flight_max must be 1..={}",
                crate::limits::PROPOSALS_IN_FLIGHT_MAX
            )));
        }
        Ok(())
    }

    /// The log format is known, and every required path is set.
    fn validate_log_and_paths(&self) -> Result<(), ConfigError> {
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError(format!(
                "log.format {:?} must be \"text\" or \"json\"",
                self.log.format
            )));
        }
        for (name, path) in [
            ("data_dir", &self.data_dir),
            ("genesis_file", &self.genesis_file),
            ("node_key_file", &self.node_key_file),
        ] {
            if path.as_os_str().is_empty() {
                return Err(ConfigError(format!("{name} must be set")));
            }
        }
        Ok(())
    }

    /// The block limits.
    pub fn block_limits(&self) -> BlockLimits {
        BlockLimits {
            transactions_max: self.blocks.transactions_max,
            size_max: self.blocks.size_max,
        }
    }

    /// The peer transport address (validated).
    pub fn p2p_address(&self) -> SocketAddr {
        self.p2p_listen
            .parse()
            .expect("validate() checked p2p_listen")
    }

    /// The API address (validated).
    pub fn api_address(&self) -> SocketAddr {
        self.api_listen
            .parse()
            .expect("validate() checked api_listen")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_overrides_then_validation() {
        // Proves precedence (flags over file over defaults) and that bad values are refused clearly.
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("node.toml");
        std::fs::write(
            &path,
            "data_dir = \"from-file\"\napi_listen = \"127.0.0.1:9000\"\nplain_http = true\n[raft]\ntick_ms = 50\n",
        )
        .unwrap();
        let overrides = Overrides {
            api_listen: Some("127.0.0.1:9001".into()),
            ..Overrides::default()
        };
        let config = NodeConfig::load(Some(&path), &overrides).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("from-file"));
        assert_eq!(config.api_listen, "127.0.0.1:9001");
        assert_eq!(config.raft.tick_ms, 50);
        for bad in [
            "api_listen = \"nowhere\"",
            "[raft]\nelection_ticks = 1",
            "unknown = 1",
            "[blocks]\ntransactions_max = 0",
        ] {
            std::fs::write(&path, bad).unwrap();
            let error = NodeConfig::load(Some(&path), &Overrides::default()).unwrap_err();
            assert!(!error.to_string().is_empty(), "{bad}");
        }
    }

    #[test]
    fn out_of_range_values_name_their_bounds() {
        // Proves that each range a value is checked against is named in the refusal, as
        // operators and docs/operating.md read it.
        // Each case spoils one value of a valid configuration.
        type Spoil = fn(&mut NodeConfig);
        let cases: [(Spoil, &str); 4] = [
            (
                |config| config.webhooks.max_attempts = 0,
                "webhooks.max_attempts must be 1..=100",
            ),
            (
                |config| config.webhooks.timeout_ms = 99,
                "webhooks.timeout_ms must be 100..=600000",
            ),
            (
                |config| config.api.request_timeout_ms = 3_600_001,
                "api.request_timeout_ms must be 1000..=3600000",
            ),
            (
                |config| config.raft.tick_ms = 10_001,
                "raft.tick_ms must be 1..=10000",
            ),
        ];
        for (spoil, message) in cases {
            let mut config = NodeConfig {
                plain_http: true,
                ..NodeConfig::default()
            };
            config.validate().unwrap();
            spoil(&mut config);
            assert_eq!(config.validate().unwrap_err().0, message);
        }
    }

    #[test]
    fn a_listener_serves_plain_http_only_when_asked() {
        // Proves that a listener without a TLS section is refused unless plain_http is set,
        // naming the way out, and that each TLS section is checked on its own.
        let mut config = NodeConfig::default();
        let refused = config.validate().unwrap_err().0;
        assert!(
            refused.starts_with("api_listen has no [api_tls] section")
                && refused.contains("plain_http = true"),
            "{refused}"
        );
        config.api_tls = Some(crate::tls::TlsSettings::new(
            "node.crt".into(),
            "node.key".into(),
        ));
        config.validate().unwrap();
        config.admin_listen = Some("127.0.0.1:7300".into());
        config.admin_token_file = Some("admin-token".into());
        assert!(config
            .validate()
            .unwrap_err()
            .0
            .starts_with("admin_listen has no [admin_tls] section"));
        config.plain_http = true;
        config.validate().unwrap();
        let tls = config.api_tls.as_mut().unwrap();
        tls.min_version = "1.1".into();
        assert_eq!(
            config.validate().unwrap_err().0,
            "api_tls.min_version \"1.1\" must be \"1.3\" or \"1.2\""
        );
        let tls = config.api_tls.as_mut().unwrap();
        tls.min_version = "1.2".into();
        tls.crl_file = Some("revoked.crl".into());
        assert_eq!(
            config.validate().unwrap_err().0,
            "api_tls.crl_file revokes client certificates: it needs api_tls.client_ca_file"
        );
    }
}
