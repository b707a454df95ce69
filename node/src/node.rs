//! Starting and stopping a node: genesis and key checks, storage, the raft loop thread and the
//! HTTP server.

use crate::api::{router, ApiContext};
use crate::config::NodeConfig;
use crate::limits::COMMANDS_MAX;
use crate::mailbox::Shared;
use crate::network::SnapshotWiring;
use crate::runtime::{Runtime, RuntimeError};
use crate::snapshot::backfill::Backfill;
use crate::snapshot::maker::Snapshots;
use crate::snapshot::receiver::SnapshotReceiver;
use crate::storage::{Db, LedgerReader, LedgerStore, RaftLogStore, Staging};
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tpw_consensus::{Batcher, Driver, DriverConfig, LogStore};
use tpw_contracts::genesis::NodeRole;
use tpw_contracts::governance::NodeRecord;
use tpw_contracts::Genesis;

/// Reads and checks a genesis file.
pub fn load_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read genesis file {}", path.display()))?;
    let genesis: Genesis = serde_json::from_str(&text)
        .with_context(|| format!("genesis file {} is not valid genesis JSON", path.display()))?;
    genesis
        .build()
        .with_context(|| format!("genesis file {}", path.display()))?;
    Ok(genesis)
}

/// Who this node is in the node set the ledger records: the active node with its key, or the
/// id the configuration names (a node added by governance that has not yet replicated its own
/// record, or one restarted with a rotated key before it applied the rotation).
fn identify(
    node_set: &[NodeRecord],
    public_key: &[u8; 32],
    config: &NodeConfig,
    fresh: bool,
) -> anyhow::Result<Identity> {
    if let Some(node) = node_set
        .iter()
        .find(|node| node.active() && node.public_key == *public_key)
    {
        if config.node_id.is_some_and(|id| id != node.id) {
            bail!(
                "node_id {:?} is configured, but the ledger records this key as node {}",
                config.node_id,
                node.id
            );
        }
        return Ok(Identity { id: node.id });
    }
    let Some(id) = config.node_id else {
        bail!(
            "the node key {} (public key {}) belongs to no active node of the node set this ledger \
             records; a node added by governance starts with --node-id <its id> --new-node",
            config.node_key_file.display(),
            hex::encode(public_key)
        );
    };
    match node_set.iter().find(|node| node.id == id) {
        Some(_) if fresh => bail!(
            "node {id} is already in this ledger's node set, and the data folder is empty: a node \
             that lost its data must never start again under its old id (it could vote twice in \
             one term). Add it as a new node with a new id and key (docs/operating.md)."
        ),
        Some(node) if !node.active() => bail!(
            "node {id} was removed from the node set at height {:?}; a removed node never returns \
             (add a new node with a new id and key)",
            node.removed_at_height
        ),
        Some(_) => {
            tracing::warn!(
                node_id = id,
                "this key is not the one the local ledger records for this node: a key rotation \
                 this node has not applied yet; peers admit the new key once they have"
            );
            Ok(Identity { id })
        }
        None => {
            tracing::info!(
                node_id = id,
                "joining: the local ledger does not record this node yet; it replicates the \
                 ledger from the leader once governance added it"
            );
            Ok(Identity { id })
        }
    }
}

/// This node's id in the node set (its role is read from the ledger as it changes).
struct Identity {
    id: u64,
}

/// The configured peer addresses; a peer the ledger does not record yet is allowed (it may be
/// added by governance later) but named in the log.
fn configured_peers(
    config: &NodeConfig,
    node_set: &[NodeRecord],
) -> anyhow::Result<std::collections::BTreeMap<u64, SocketAddr>> {
    let mut configured = std::collections::BTreeMap::new();
    for peer in &config.peers {
        let address: SocketAddr = peer
            .address
            .parse()
            .with_context(|| format!("peer {} address", peer.id))?;
        if !node_set.iter().any(|node| node.id == peer.id) {
            tracing::warn!(
                node_id = peer.id,
                "configured peer is not in the node set the ledger records (yet)"
            );
        }
        configured.insert(peer.id, address);
    }
    Ok(configured)
}

/// A node that is running.
pub struct RunningNode {
    /// Where the API listens.
    pub api_address: SocketAddr,
    /// State shared with the raft loop.
    pub shared: Arc<Shared>,
    runtime: std::thread::JoinHandle<Result<(), RuntimeError>>,
    snapshot_maker: std::thread::JoinHandle<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_server: tokio::sync::oneshot::Sender<()>,
    webhooks: tokio::task::JoinHandle<()>,
    context: Arc<ApiContext>,
    /// The admin server and its stop signal, when configured.
    admin: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
    /// The audit log writer, which ends once every request holding the log is gone or the
    /// log is closed.
    audit_writer: std::thread::JoinHandle<()>,
    /// The handle that closes the audit log at stop.
    audit: crate::audit::AuditLog,
}

/// Opens storage and starts the raft loop and the API.
pub async fn start(config: &NodeConfig) -> anyhow::Result<RunningNode> {
    let genesis = load_genesis(&config.genesis_file)?;
    let network_id = genesis.compute_network_id()?;
    let node_key = crate::keys::load(&config.node_key_file)?;
    let public_key = node_key.verifying_key().to_bytes();
    let genesis_me = genesis
        .nodes
        .iter()
        .find(|node| node.public_key == hex::encode(public_key));
    let voters: Vec<u64> = genesis
        .nodes
        .iter()
        .filter(|node| node.role == NodeRole::Voter)
        .map(|node| node.id)
        .collect();
    let learners: Vec<u64> = genesis
        .nodes
        .iter()
        .filter(|node| node.role == NodeRole::Observer)
        .map(|node| node.id)
        .collect();
    let database = config.data_dir.join("db");
    let fresh = !database.join("CURRENT").exists();
    if fresh && !config.new_node {
        match genesis_me {
            Some(node) if node.role == NodeRole::Voter => bail!(
                "the data folder {} holds no ledger. A voter that lost its data must never vote again under \
                 its old identity: it could vote twice in one term. If this is the first start of node {}, \
                 start it with --new-node; to replace a lost node, give it a new key and add it through a \
                 governance add_node change (docs/operating.md, Rebuild a lost node).",
                config.data_dir.display(),
                node.name
            ),
            Some(_) => {}
            None => bail!(
                "the data folder {} holds no ledger and the node key {} is not in the genesis node set: \
                 a node added by governance starts with --node-id <its id> --new-node",
                config.data_dir.display(),
                config.node_key_file.display()
            ),
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let db = Db::open(&database).map_err(|error| corruption_message(&error, &config.data_dir))?;
    let scan_started = std::time::Instant::now();
    let integrity = crate::storage::verify_integrity(&db)
        .map_err(|error| corruption_message(&error, &config.data_dir))?;
    tracing::info!(
        records = integrity.records,
        elapsed_ms = scan_started.elapsed().as_millis() as u64,
        "every stored record passed its checksum"
    );
    let log = RaftLogStore::open(db.clone(), voters, learners)?;
    let mut ledger = LedgerStore::open(db.clone(), &genesis)?;
    ledger.resume_install(&log)?;
    ledger.ensure_conf_history(&log)?;
    let node_set = tpw_contracts::governance::node_records(&ledger)?;
    let me = identify(&node_set, &public_key, config, fresh)?;
    if crate::restore::restored_from(&db)? == Some(me.id) {
        bail!(
            "this data folder was restored from a backup of node {} itself: that node may have voted \
             and acknowledged entries after the backup, so it never runs again on it. Run the folder \
             as a new node (a new key and id added by governance, docs/operating.md).",
            me.id
        );
    }
    if crate::restore::restored_refused(&db)?.contains(&me.id) {
        bail!(
            "this data folder was restored (tpw restore), and its ledger records node {} at the \
             restored height: that node may have voted and acknowledged entries after it, so it \
             never runs on the folder. Run it as a new node (a new key and id added by \
             governance, docs/operating.md).",
            me.id
        );
    }
    // A node joining on an empty folder under an id its ledger does not know yet.
    let joining = fresh && !node_set.iter().any(|node| node.id == me.id);
    let applied_index = ledger.applied_index();
    let last_index = tpw_consensus::Storage::last_index(&log)
        .map_err(|error| anyhow::anyhow!("raft log: {error}"))?;
    if applied_index > last_index {
        bail!("the ledger is applied to Raft index {applied_index} but the Raft log ends at {last_index}: the data folder is damaged");
    }
    if log.hard_state().commit < applied_index {
        log.persist_commit(applied_index)?;
    }
    let driver_config = DriverConfig {
        id: me.id,
        election_ticks: config.raft.election_ticks,
        heartbeat_ticks: config.raft.heartbeat_ticks,
        applied_index,
        fixed_election_ticks: None,
    };
    let shared = Arc::new(Shared::new());
    let snapshots = Snapshots::new(
        db.clone(),
        log.clone(),
        config.data_dir.join("snapshots"),
        Arc::clone(&shared),
    )
    .context("cannot prepare the snapshots folder")?;
    let log_conf_state = log.conf_state();
    let alone = log_conf_state.voters == [me.id];
    let mut driver = Driver::new(&driver_config, log)?;
    if alone {
        driver.campaign()?;
    }
    let configured = configured_peers(config, &node_set)?;
    let members = crate::runtime::members_of(
        tpw_consensus::replica::admitted_peers(
            &node_set,
            &[],
            &tpw_consensus::Membership::of(&log_conf_state),
        ),
        &configured,
    );
    tracing::info!(
        node_id = me.id,
        network_id = %hex::encode(network_id),
        height = ledger.head().height,
        applied_index,
        "node starting"
    );
    let (commands, receiver) = std::sync::mpsc::sync_channel(COMMANDS_MAX);
    let (peer_sender, peer_receiver) =
        std::sync::mpsc::sync_channel(crate::limits::PEER_INPUTS_MAX);
    let started = std::time::Instant::now();
    let replica = tpw_consensus::Replica::new(
        tpw_consensus::ReplicaConfig {
            tick_ms: config.raft.tick_ms,
            proposals_in_flight_max: config.blocks.proposals_in_flight_max,
            log_retention_entries: config.raft.log_retention_entries,
            joining,
            report_entries: false,
        },
        driver,
        ledger,
        Batcher::new(config.block_limits()),
        0,
    )?;
    let runtime = Runtime::new(
        replica,
        receiver,
        peer_receiver,
        Arc::clone(&shared),
        started,
    );
    let network = if members.len() > 1 || !config.peers.is_empty() {
        Some(
            crate::network::start(
                &node_key,
                config.p2p_address(),
                me.id,
                &members,
                crate::mailbox::RaftInbox::new(peer_sender.clone(), commands.clone()),
            )
            .await
            .context("cannot start the peer transport")?,
        )
    } else {
        None
    };
    if let Some(network) = &network {
        let (messages, incoming) = tokio::sync::mpsc::channel(crate::limits::SNAPSHOT_MESSAGES_MAX);
        network.wire_snapshots(SnapshotWiring {
            server: Arc::clone(&snapshots),
            messages,
        });
        let receiver = SnapshotReceiver {
            network: network.clone(),
            staging: Staging::new(db.clone()),
            inbox: crate::mailbox::RaftInbox::new(peer_sender.clone(), commands.clone()),
            network_id,
            shared: Arc::clone(&shared),
        };
        tokio::spawn(receiver.run(incoming));
        let backfill = Backfill {
            db: db.clone(),
            network: network.clone(),
            network_id,
            shared: Arc::clone(&shared),
            peers: members
                .iter()
                .map(|member| member.id)
                .filter(|id| *id != me.id)
                .collect(),
        };
        tokio::spawn(backfill.run());
        let node_set = crate::snapshot::nodes::NodeSetSync {
            network: network.clone(),
            inbox: crate::mailbox::RaftInbox::new(peer_sender.clone(), commands.clone()),
            shared: Arc::clone(&shared),
            me: me.id,
        };
        tokio::spawn(node_set.run());
    }
    let snapshot_maker = snapshots
        .spawn_maker()
        .context("cannot start the snapshot thread")?;
    drop(snapshots);
    let runtime = match &network {
        Some(network) => runtime.with_network(network.clone(), configured),
        None => runtime,
    };
    let runtime = std::thread::Builder::new()
        .name("tpw-raft".into())
        .spawn(move || runtime.run())?;
    let (audit, audit_writer) = crate::audit::AuditLog::start(db.clone())?;
    let context = Arc::new(ApiContext {
        shared: Arc::clone(&shared),
        reader: LedgerReader::new(db.clone()),
        commands,
        network_id,
        node_id: me.id,
        network: network.clone(),
        admission_cache: Default::default(),
        replay: Default::default(),
        events: Default::default(),
        read_limits: crate::api::RateLimiter::new(
            config.api.requests_per_second,
            config.api.request_burst,
        ),
        submit_limits: crate::api::RateLimiter::new(
            config.api.transactions_per_second,
            config.api.transaction_burst,
        ),
        request_timeout: std::time::Duration::from_millis(config.api.request_timeout_ms),
        webhook_replays: Default::default(),
        audit: audit.clone(),
    });
    crate::api::serve_forwarded(&context);
    let webhooks = tokio::spawn(crate::webhooks::run(
        Arc::clone(&context),
        node_key.clone(),
        config.webhooks.clone(),
    ));
    let mut admin_server = None;
    if let Some(admin) = &config.admin_listen {
        let token_file = config
            .admin_token_file
            .as_ref()
            .context("admin_listen needs admin_token_file")?;
        let token = crate::keys::load_admin_token(token_file)?;
        let listener = tokio::net::TcpListener::bind(admin)
            .await
            .with_context(|| format!("cannot listen on admin_listen {admin}"))?;
        tracing::info!(admin = %admin, "admin interface serving");
        let control = crate::admin::RaftControl {
            commands: context.commands.clone(),
            shared: Arc::clone(&shared),
        };
        let routes = crate::admin::router(
            network,
            db.clone(),
            me.id,
            &token,
            audit.clone(),
            Some(control),
        );
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, routes)
                .with_graceful_shutdown(async move {
                    let _ = admin_stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "admin interface stopped");
            }
        });
        admin_server = Some((task, stop_admin));
    }
    let listener = tokio::net::TcpListener::bind(config.api_address())
        .await
        .with_context(|| format!("cannot listen on {}", config.api_listen))?;
    let api_address = listener.local_addr()?;
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(Arc::clone(&context));
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(api = %api_address, "serving");
    Ok(RunningNode {
        api_address,
        shared,
        runtime,
        snapshot_maker,
        server,
        stop_server,
        webhooks,
        context,
        admin: admin_server,
        audit_writer,
        audit,
    })
}

impl RunningNode {
    /// Whether the raft loop has stopped (on a fatal error, or after `stop`).
    pub fn runtime_finished(&self) -> bool {
        self.runtime.is_finished()
    }

    /// Stops the API and the raft loop, returning the loop's result.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop_server.send(());
        self.shared.stopping.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        if let Some((task, stop)) = self.admin {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.webhooks).await;
        // Event streams and deliveries hold the API context (and so the database): let them
        // notice the stop and let go, so a restart in this process can open the database.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.context) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(self.context);
        // Requests that still hold the log (waiting on a commit as the node stops) must not
        // keep the writer, and so the stop, waiting.
        self.audit.close().await;
        drop(self.audit);
        let runtime = self.runtime;
        let snapshot_maker = self.snapshot_maker;
        let audit_writer = self.audit_writer;
        let result = tokio::task::spawn_blocking(move || {
            let result = runtime.join();
            let _ = snapshot_maker.join();
            // Ends at the close above, once what was queued is written.
            let _ = audit_writer.join();
            result
        })
        .await?;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(anyhow::anyhow!(
                "the raft loop stopped on a fatal error: {error}"
            )),
            Err(_) => Err(anyhow::anyhow!("the raft loop panicked")),
        }
    }

    /// Runs until SIGINT or SIGTERM, or until the raft loop stops on its own (a fatal error).
    pub async fn serve_until_signal(self) -> anyhow::Result<()> {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if self.runtime_finished() || crate::storage::corruption_detected().is_some() {
                        break;
                    }
                }
            }
        }
        tracing::info!("stopping");
        let stopped = self.stop().await;
        if let Some(damage) = crate::storage::corruption_detected() {
            anyhow::bail!(
                "data corruption detected while serving ({damage}). This node stopped so that it \
                 neither serves nor applies damaged data. Move its data folder aside and rebuild \
                 it from its peers."
            );
        }
        stopped
    }
}

/// The message a node stops with when its database does not open or fails its checks.
fn corruption_message(error: &crate::storage::StorageError, data_dir: &Path) -> anyhow::Error {
    if error.is_corruption() {
        anyhow::anyhow!(
            "data corruption detected in {}: {error}. This node stops so that it neither serves \
             nor applies damaged data. Move the data folder aside and rebuild the node from its \
             peers.",
            data_dir.display()
        )
    } else {
        anyhow::anyhow!(
            "cannot open the database in {}: {error}",
            data_dir.display()
        )
    }
}
