//! Starting and stopping a node: genesis and key checks, storage, the raft loop thread and the
//! HTTP server.

mod identity;
mod servers;

use crate::api::ApiContext;
use crate::config::NodeConfig;
use crate::limits::{COMMANDS_MAX, NODE_STOP_CHECK, NODE_STOP_POLL_INTERVAL, NODE_STOP_WAIT};
use crate::mailbox::Shared;
use crate::network::{NetworkHandle, SnapshotWiring};
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
    admin: Option<servers::AdminServer>,
    /// The audit log writer, which ends once every request holding the log is gone or the
    /// log is closed.
    audit_writer: std::thread::JoinHandle<()>,
    /// The handle that closes the audit log at stop.
    audit: crate::audit::AuditLog,
}

/// Opens storage and starts the raft loop and the API.
pub async fn start(config: &NodeConfig) -> anyhow::Result<RunningNode> {
    let genesis = load_genesis(&config.genesis_file)?;
    let transport = crate::webhooks::Transport::new(&config.webhooks)
        .map_err(|error| anyhow::anyhow!("webhooks.ca_files: {error}"))?;
    let network_id = genesis.compute_network_id()?;
    let node_key = crate::keys::load(&config.node_key_file)?;
    let public_key = node_key.verifying_key().to_bytes();
    let storage = open_storage(config, &genesis, &public_key)?;
    let node_set = tpw_contracts::governance::node_records(&storage.ledger)?;
    let me = identity::identify(&node_set, &public_key, config, storage.fresh)?;
    identity::check_restored(&storage.db, &me)?;
    let db = storage.db.clone();
    let (engine, raft_loop) = build_engine(config, storage, &node_set, &me, network_id)?;
    let network = start_network(config, &node_key, &db, &engine, &raft_loop).await?;
    let (runtime, snapshot_maker) = raft_loop.spawn(network.as_ref())?;
    let (audit, audit_writer) = crate::audit::AuditLog::start(db.clone())?;
    let context = api_context(config, &engine, &db, &network, &audit);
    crate::api::serve_forwarded(&context);
    let webhooks = tokio::spawn(crate::webhooks::run(
        Arc::clone(&context),
        Arc::new(crate::signer::KeySigner::new(
            node_key.clone(),
            "the node key file",
        )),
        config.webhooks.clone(),
        transport,
    ));
    let admin = servers::start_admin(config, &context, network, db, me.id, &audit).await?;
    let api = servers::start_api(config, &context).await?;
    Ok(RunningNode {
        api_address: api.address,
        shared: engine.shared,
        runtime,
        snapshot_maker,
        server: api.server,
        stop_server: api.stop,
        webhooks,
        context,
        admin,
        audit_writer,
        audit,
    })
}

/// The data folder's database, opened and checked, with the Raft log and the ledger on it.
struct Storage {
    db: Db,
    log: RaftLogStore,
    ledger: LedgerStore,
    /// Whether the folder held no database before (a node's first start).
    fresh: bool,
}

/// Opens the data folder (creating it on a first start), checks every stored record, and opens
/// the Raft log and the ledger, finishing a snapshot install that was interrupted.
fn open_storage(
    config: &NodeConfig,
    genesis: &Genesis,
    public_key: &[u8; 32],
) -> anyhow::Result<Storage> {
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
        identity::check_empty_folder(config, genesis, public_key)?;
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
    let mut ledger = LedgerStore::open(db.clone(), genesis)?;
    ledger.resume_install(&log)?;
    ledger.ensure_conf_history(&log)?;
    Ok(Storage {
        db,
        log,
        ledger,
        fresh,
    })
}

/// What the network and the API reach the raft loop through.
struct Engine {
    node_id: u64,
    network_id: [u8; 32],
    shared: Arc<Shared>,
    commands: std::sync::mpsc::SyncSender<crate::mailbox::Command>,
    peer_sender: std::sync::mpsc::SyncSender<crate::mailbox::Command>,
    members: Vec<crate::network::Member>,
}

/// The raft loop (the replica engine it runs) and the snapshot maker, before their threads
/// start.
struct RaftLoop {
    runtime: Runtime,
    snapshots: Arc<Snapshots>,
    configured: std::collections::BTreeMap<u64, SocketAddr>,
}

impl RaftLoop {
    /// Starts the snapshot maker's thread and the raft loop's, connected to the network if
    /// there is one.
    fn spawn(self, network: Option<&NetworkHandle>) -> anyhow::Result<RaftThreads> {
        let snapshot_maker = self
            .snapshots
            .spawn_maker()
            .context("cannot start the snapshot thread")?;
        drop(self.snapshots);
        let runtime = match network {
            Some(network) => self.runtime.with_network(network.clone(), self.configured),
            None => self.runtime,
        };
        let runtime = std::thread::Builder::new()
            .name("tpw-raft".into())
            .spawn(move || runtime.run())?;
        Ok((runtime, snapshot_maker))
    }
}

/// The raft loop's thread and the snapshot maker's.
type RaftThreads = (
    std::thread::JoinHandle<Result<(), RuntimeError>>,
    std::thread::JoinHandle<()>,
);

/// Builds the Raft driver on the stored log, the replica engine on the ledger, and the raft
/// loop around them; a node alone in its configuration campaigns at once.
fn build_engine(
    config: &NodeConfig,
    storage: Storage,
    node_set: &[NodeRecord],
    me: &identity::Identity,
    network_id: [u8; 32],
) -> anyhow::Result<(Engine, RaftLoop)> {
    let Storage {
        db,
        log,
        ledger,
        fresh,
    } = storage;
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
    let configured = identity::configured_peers(config, node_set)?;
    let members = crate::runtime::members_of(
        tpw_consensus::replica::admitted_peers(
            node_set,
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
            clock_first_step_max_ms: config.clock.first_step_max_ms,
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
    )
    .with_skew_alarm_ms(config.clock.skew_alarm_ms);
    let engine = Engine {
        node_id: me.id,
        network_id,
        shared,
        commands,
        peer_sender,
        members,
    };
    let raft_loop = RaftLoop {
        runtime,
        snapshots,
        configured,
    };
    Ok((engine, raft_loop))
}

/// Starts the peer transport when the node has peers, with the tasks that use it: the snapshot
/// receiver, backfill below an installed snapshot, and the node set's sync from peers.
async fn start_network(
    config: &NodeConfig,
    node_key: &ed25519_dalek::SigningKey,
    db: &Db,
    engine: &Engine,
    raft_loop: &RaftLoop,
) -> anyhow::Result<Option<NetworkHandle>> {
    if engine.members.len() <= 1 && config.peers.is_empty() {
        return Ok(None);
    }
    let inbox =
        || crate::mailbox::RaftInbox::new(engine.peer_sender.clone(), engine.commands.clone());
    let network = crate::network::start(
        node_key,
        config.p2p_address(),
        engine.node_id,
        &engine.members,
        inbox(),
    )
    .await
    .context("cannot start the peer transport")?;
    let (messages, incoming) = tokio::sync::mpsc::channel(crate::limits::SNAPSHOT_MESSAGES_MAX);
    network.wire_snapshots(SnapshotWiring {
        server: Arc::clone(&raft_loop.snapshots),
        messages,
    });
    let receiver = SnapshotReceiver {
        network: network.clone(),
        staging: Staging::new(db.clone()),
        inbox: inbox(),
        network_id: engine.network_id,
        shared: Arc::clone(&engine.shared),
    };
    tokio::spawn(receiver.run(incoming));
    let backfill = Backfill {
        db: db.clone(),
        network: network.clone(),
        network_id: engine.network_id,
        shared: Arc::clone(&engine.shared),
        peers: engine
            .members
            .iter()
            .map(|member| member.id)
            .filter(|id| *id != engine.node_id)
            .collect(),
    };
    tokio::spawn(backfill.run());
    let node_set = crate::snapshot::nodes::NodeSetSync {
        network: network.clone(),
        inbox: inbox(),
        shared: Arc::clone(&engine.shared),
        me: engine.node_id,
    };
    tokio::spawn(node_set.run());
    Ok(Some(network))
}

/// What the API's handlers share.
fn api_context(
    config: &NodeConfig,
    engine: &Engine,
    db: &Db,
    network: &Option<NetworkHandle>,
    audit: &crate::audit::AuditLog,
) -> Arc<ApiContext> {
    Arc::new(ApiContext {
        shared: Arc::clone(&engine.shared),
        reader: LedgerReader::new(db.clone()),
        commands: engine.commands.clone(),
        network_id: engine.network_id,
        node_id: engine.node_id,
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
        address_requests: crate::api::Concurrency::new(
            usize::try_from(config.api.requests_in_flight_per_address).unwrap_or(usize::MAX),
        ),
        key_requests: crate::api::Concurrency::new(
            usize::try_from(config.api.requests_in_flight_per_key).unwrap_or(usize::MAX),
        ),
        participant_streams: crate::api::Concurrency::new(
            usize::try_from(config.api.event_streams_per_participant).unwrap_or(usize::MAX),
        ),
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
        let _ = tokio::time::timeout(NODE_STOP_WAIT, self.server).await;
        if let Some((task, stop)) = self.admin {
            let _ = stop.send(());
            let _ = tokio::time::timeout(NODE_STOP_WAIT, task).await;
        }
        let _ = tokio::time::timeout(NODE_STOP_WAIT, self.webhooks).await;
        // Event streams and deliveries hold the API context (and so the database): let them
        // notice the stop and let go, so a restart in this process can open the database.
        let deadline = tokio::time::Instant::now() + NODE_STOP_WAIT;
        while Arc::strong_count(&self.context) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(NODE_STOP_POLL_INTERVAL).await;
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
                _ = tokio::time::sleep(NODE_STOP_CHECK) => {
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
