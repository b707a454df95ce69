//! One simulated node: the node's own replica engine (`tpw_consensus::Replica`, with the real
//! Raft driver and the real ledger engine) over a modelled disk ([`super::disk`]), executed
//! the way the node's raft loop, peer transport, snapshot receiver and backfill execute it.
//! Nothing here decides what the engine decides: this file carries out its effects (messages
//! onto the simulated network, answers to clients, events for the checkers), applies the
//! same shared rules the node applies around it (admission, which snapshot to offer, what to
//! do with a snapshot message, how backfilled blocks are checked), and feeds it input.

use super::disk::{reopen, Disk, OfferSlot, SharedDisk, SharedOffers, SimLedger, SimLog};
use super::net::{Answer, Endpoint, Envelope, Payload};
use super::rng::SimRng;
use crate::limits::{
    SIM_BACKFILL_BLOCKS_MAX, SIM_BLOCK_TRANSACTIONS_MAX, SIM_LOG_RETENTION_ENTRIES,
    SIM_NODE_SET_ASK_INTERVAL_MS, SIM_PEER_REQUEST_TIMEOUT_MS,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use tpw_consensus::limits::{ELECTION_TICKS_DEFAULT, HEARTBEAT_TICKS_DEFAULT, TICK_MS_DEFAULT};
use tpw_consensus::raft_types::{Message, MessageType};
use tpw_consensus::replica::admission::{precheck, StateFacts};
use tpw_consensus::replica::snapshot::{
    check_chain, check_descriptor, check_snapshot_head, snapshot_arrival, SnapshotArrival,
    SnapshotOffer,
};
use tpw_consensus::replica::{admitted_peers, AdmittedPeer, StagedState};
use tpw_consensus::wire::snapshot::SnapshotDescriptor;
use tpw_consensus::{
    Alarm, Batcher, BlockLimits, Driver, DriverConfig, Effect, Executor, MemLedger, Membership,
    Now, Replica, ReplicaConfig, ReplicaLedger, Storage, SubmitError,
};
use tpw_contracts::governance::NodeRecord;
use tpw_contracts::model::{from_bytes, Account, Hash, PublicKey};
use tpw_contracts::sig::{verify_all, SignatureItem};
use tpw_contracts::state::{prefix, Commitment};
use tpw_contracts::{
    BlockRecord, ChainHead, GenesisState, MemStore, ResultCode, StateDiff, StateStore, Transaction,
};

/// A deliberate bug, to show the checkers catch what they are for. Runs use `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// The node as built.
    None,
    /// Raft log writes are not synced, so a crash may lose votes and entries the node
    /// acknowledged.
    UnsyncedRaftLog,
    /// The leader tells a client its transaction committed as soon as it queues it.
    AckBeforeCommit,
    /// A restarted node's ledger counts one posted transfer a second time.
    RestartAppliesATransferTwice,
    /// A configuration change is recorded in the ledger store but not in Raft's: a restarted
    /// node runs Raft under the configuration before it.
    ConfChangeLostAtRestart,
    /// The node measures elapsed time on its wall clock, so a jump of that clock moves the
    /// ledger time it stamps as leader.
    WallClockAsMonotonic,
}

/// What a node reports to the checkers.
#[derive(Debug)]
pub enum NodeEvent {
    /// A committed Raft entry was applied.
    Applied {
        node: u64,
        index: u64,
        term: u64,
        /// blake3 of the entry's data.
        data_hash: Hash,
        /// The block's height and header hash, if the entry is a block.
        block: Option<(u64, Hash)>,
        /// The time its leader stamped on it, if the entry is a block.
        stamp_ms: Option<u64>,
    },
    /// A configuration change was applied at `index`.
    ConfChanged { node: u64, index: u64 },
    /// A snapshot was installed.
    SnapshotInstalled { node: u64 },
    /// This node's own key rotation applied at `index`.
    Rekeyed { node: u64, index: u64 },
    /// Something that must never happen.
    Violation(String),
}

type SimReplica = Replica<SimLog, SimLedger>;

/// A snapshot message held while its records are fetched.
struct Fetch {
    message: Message,
    asked_ms: u64,
}

/// Running state, gone while the node is down.
struct Live {
    replica: SimReplica,
    /// Clients waiting for each queued or proposed transaction.
    waiters: BTreeMap<Hash, BTreeSet<usize>>,
    offers: SharedOffers,
    /// The peers the transport admits: id and key.
    admitted: BTreeSet<(u64, PublicKey)>,
    /// When this node next asks a peer for its node set.
    next_nodes_ask_ms: u64,
    fetching: Option<Fetch>,
    /// When the outstanding backfill request was sent.
    backfill_asked_ms: Option<u64>,
    /// Rotates backfill requests over the peers.
    backfill_turn: u64,
}

/// A simulated node.
pub struct SimNode {
    pub id: u64,
    /// Whether the node set records (or will record) it as a voter.
    pub voter: bool,
    /// Stopped by a pause (SIGSTOP): keeps its memory, does nothing.
    pub paused: bool,
    /// Removed by governance and stopped for good.
    pub retired: bool,
    /// The key generation its process runs with (a rotation restarts it on the next).
    pub key_generation: u64,
    disk: SharedDisk,
    live: Option<Live>,
    genesis_conf: (Vec<u64>, Vec<u64>),
    /// This node's clock minus simulated time.
    pub clock_skew_ms: i64,
    sabotage: Sabotage,
}

/// The key of node `id` in key generation `generation`.
pub fn node_key(id: u64, generation: u64) -> ed25519_dalek::SigningKey {
    super::client::named_key(1_000 + id + 100_000 * generation)
}

/// The (id, key) pairs a node's transport admits, from the engine's admitted peers.
fn admitted_set(peers: &[AdmittedPeer]) -> BTreeSet<(u64, PublicKey)> {
    peers
        .iter()
        .map(|peer| (peer.id, peer.public_key))
        .collect()
}

/// Carries out one poll's effects: the node's executor, in simulation.
struct SimExecutor<'a> {
    id: u64,
    waiters: &'a mut BTreeMap<Hash, BTreeSet<usize>>,
    admitted: &'a mut BTreeSet<(u64, PublicKey)>,
    out: &'a mut Vec<Envelope>,
    events: &'a mut Vec<NodeEvent>,
    released: Option<u64>,
}

impl SimExecutor<'_> {
    fn answer(&mut self, client: usize, tx_id: Hash, answer: Answer) {
        self.out.push(Envelope {
            from: Endpoint::Node(self.id),
            to: Endpoint::Client(client),
            payload: Payload::Answer { tx_id, answer },
        });
    }
}

impl Executor for SimExecutor<'_> {
    fn effect(&mut self, effect: Effect<'_>) {
        let id = self.id;
        match effect {
            Effect::Send(messages) => {
                for message in messages {
                    self.out.push(Envelope {
                        from: Endpoint::Node(id),
                        to: Endpoint::Node(message.to),
                        payload: Payload::Raft(message),
                    });
                }
            }
            Effect::Committed { height, receipts } => {
                for receipt in receipts {
                    let clients = self.waiters.remove(&receipt.tx_id).unwrap_or_default();
                    for client in clients {
                        let answer = Answer::Committed {
                            height,
                            code: receipt.code,
                        };
                        self.answer(client, receipt.tx_id, answer);
                    }
                }
            }
            Effect::EntryApplied { entry, block } => self.events.push(NodeEvent::Applied {
                node: id,
                index: entry.index,
                term: entry.term,
                data_hash: *blake3::hash(&entry.data).as_bytes(),
                block,
                stamp_ms: match tpw_consensus::entry::classify(entry) {
                    tpw_consensus::entry::EntryKind::Block(proposal) => {
                        Some(proposal.proposer_time_ms)
                    }
                    _ => None,
                },
            }),
            Effect::Forget { tx_ids, .. } => {
                for tx_id in tx_ids {
                    for client in self.waiters.remove(&tx_id).unwrap_or_default() {
                        self.answer(client, tx_id, Answer::Retry);
                    }
                }
            }
            Effect::NodeSet { peers } => *self.admitted = admitted_set(&peers),
            Effect::ConfChanged { index } => {
                self.events.push(NodeEvent::ConfChanged { node: id, index })
            }
            Effect::SnapshotInstalled { .. } => {
                self.events.push(NodeEvent::SnapshotInstalled { node: id })
            }
            Effect::SnapshotReleased { index } => self.released = Some(index),
            Effect::Alarm(Alarm::Divergence { height, .. }) => self.events.push(
                NodeEvent::Violation(format!("node {id}: divergence alarm at height {height}")),
            ),
            Effect::Alarm(alarm) => self
                .events
                .push(NodeEvent::Violation(format!("node {id}: {alarm:?}"))),
            Effect::Persisting
            | Effect::Persisted { .. }
            | Effect::CommitRecorded
            | Effect::Applying { .. }
            | Effect::SignersChanged
            | Effect::Compacted { .. }
            | Effect::HandedOver { .. } => {}
        }
    }
}

/// How a node is brought into a run.
pub struct NodeSetup<'a> {
    pub id: u64,
    /// Recorded (or to be recorded) as a voter.
    pub voter: bool,
    /// Raft's configuration at genesis.
    pub genesis_conf: (&'a [u64], &'a [u64]),
    pub clock_skew_ms: i64,
    pub sabotage: Sabotage,
}

impl SimNode {
    /// A node with an empty data folder, started at `now_ms`.
    pub fn new(
        setup: NodeSetup<'_>,
        genesis: &GenesisState,
        rng: &mut SimRng,
        now_ms: u64,
    ) -> Result<Self, String> {
        let mut node = Self {
            id: setup.id,
            voter: setup.voter,
            paused: false,
            retired: false,
            key_generation: 0,
            disk: Disk::new(setup.sabotage),
            live: None,
            genesis_conf: (setup.genesis_conf.0.to_vec(), setup.genesis_conf.1.to_vec()),
            clock_skew_ms: setup.clock_skew_ms,
            sabotage: setup.sabotage,
        };
        node.start(genesis, rng, now_ms)?;
        Ok(node)
    }

    /// Whether the process runs (possibly paused).
    pub fn is_up(&self) -> bool {
        self.live.is_some()
    }

    /// Whether the node runs and is not paused.
    pub fn is_active(&self) -> bool {
        self.live.is_some() && !self.paused
    }

    /// Rebuilds the running node from the disk, as the node starts on its data folder.
    pub fn start(
        &mut self,
        genesis: &GenesisState,
        rng: &mut SimRng,
        now_ms: u64,
    ) -> Result<(), String> {
        let id = self.id;
        let who = |error: String| format!("node {id}: {error}");
        let offers: SharedOffers = Rc::new(RefCell::new(OfferSlot::default()));
        let conf = (
            self.genesis_conf.0.as_slice(),
            self.genesis_conf.1.as_slice(),
        );
        let (log, mut ledger) =
            reopen(&self.disk, genesis, conf, Rc::clone(&offers)).map_err(who)?;
        if self.sabotage == Sabotage::RestartAppliesATransferTwice {
            count_a_transfer_twice(&mut ledger);
        }
        let joining = self.joining(&ledger).map_err(who)?;
        let replica = self.new_replica(log, ledger, joining, rng, now_ms)?;
        let admitted = admitted_set(&admitted_peers(
            replica.nodes(),
            &[],
            &replica.driver().membership(),
        ));
        self.live = Some(Live {
            replica,
            waiters: BTreeMap::new(),
            offers,
            admitted,
            fetching: None,
            backfill_asked_ms: None,
            backfill_turn: rng.next_u64() % 16,
            next_nodes_ask_ms: now_ms + rng.below(SIM_NODE_SET_ASK_INTERVAL_MS),
        });
        self.paused = false;
        Ok(())
    }

    /// As the node decides at start: joining when its folder was empty and its ledger does
    /// not record it.
    fn joining(&mut self, ledger: &SimLedger) -> Result<bool, String> {
        let recorded = tpw_contracts::governance::node_records(ledger)
            .map_err(|error| error.to_string())?
            .iter()
            .any(|node| node.id == self.id);
        let fresh = !std::mem::replace(&mut self.disk.borrow_mut().started, true);
        Ok(fresh && !recorded)
    }

    /// The replica engine on the reopened log and ledger, with the simulator's small blocks
    /// and log retention, its election timeout and tick phase drawn from `rng`.
    fn new_replica(
        &self,
        log: SimLog,
        ledger: SimLedger,
        joining: bool,
        rng: &mut SimRng,
        now_ms: u64,
    ) -> Result<SimReplica, String> {
        let who = |error: String| format!("node {}: {error}", self.id);
        let applied_index = ReplicaLedger::<SimLog>::applied_index(&ledger);
        let config = DriverConfig {
            id: self.id,
            election_ticks: ELECTION_TICKS_DEFAULT,
            heartbeat_ticks: HEARTBEAT_TICKS_DEFAULT,
            applied_index,
            fixed_election_ticks: Some(
                ELECTION_TICKS_DEFAULT + rng.below(ELECTION_TICKS_DEFAULT as u64) as usize,
            ),
        };
        let driver = Driver::new(&config, log).map_err(|error| who(format!("driver: {error}")))?;
        let batcher = Batcher::new(BlockLimits {
            transactions_max: SIM_BLOCK_TRANSACTIONS_MAX,
            ..BlockLimits::default()
        });
        let replica_config = ReplicaConfig {
            report_entries: true,
            clock_first_step_max_ms: crate::limits::SIM_CLOCK_FIRST_STEP_MAX_MS,
            log_retention_entries: SIM_LOG_RETENTION_ENTRIES,
            joining,
            ..ReplicaConfig::default()
        };
        // Each node's ticks fall at its own phase, so nodes do not tick in lockstep.
        let phase = rng.below(TICK_MS_DEFAULT);
        Replica::new(
            replica_config,
            driver,
            ledger,
            batcher,
            now_ms.saturating_sub(phase),
        )
        .map_err(|error| who(error.to_string()))
    }

    /// Kills the process: memory is gone, and unsynced writes may be lost. Returns how many
    /// writes were lost.
    pub fn crash(&mut self, rng: &mut SimRng) -> usize {
        self.live = None;
        self.paused = false;
        self.disk.borrow_mut().crash(rng)
    }

    /// Stops the process cleanly (an operator's restart): every write made is kept.
    pub fn stop(&mut self) {
        self.live = None;
        self.paused = false;
    }

    /// Loses the data folder (the process must be down): the node starts again empty.
    pub fn wipe(&mut self) {
        self.disk.borrow_mut().wipe();
    }

    fn now(&self, now_ms: u64) -> Now {
        let clock_ms = now_ms.saturating_add_signed(self.clock_skew_ms);
        Now {
            monotonic_ms: if self.sabotage == Sabotage::WallClockAsMonotonic {
                clock_ms
            } else {
                now_ms
            },
            clock_ms,
        }
    }

    /// The key this node's process presents.
    pub fn public_key(&self) -> PublicKey {
        node_key(self.id, self.key_generation)
            .verifying_key()
            .to_bytes()
    }

    /// A line on this node's state, for a failure report.
    pub fn describe(&self) -> String {
        let Some(live) = self.live.as_ref() else {
            return format!("node {}: down (retired {})", self.id, self.retired);
        };
        let status = live.replica.status();
        let admitted: Vec<String> = live
            .admitted
            .iter()
            .map(|(id, key)| format!("{id}:{}", hex::encode(&key[..2])))
            .collect();
        format!(
            "node {} key {} ({}): {} term {} leader {:?} commit {} applied {} raft {:?} admits [{}] gaps {:?} fetching {}",
            self.id,
            self.key_generation,
            hex::encode(&self.public_key()[..2]),
            status.role,
            status.term,
            status.leader_id,
            status.commit_index,
            status.applied_index,
            status.membership,
            admitted.join(" "),
            live.replica.ledger().inner().gaps(),
            live.fetching.is_some()
        )
    }

    /// Whether this node's transport admits `peer` presenting `key`.
    pub fn admits(&self, peer: u64, key: &PublicKey) -> bool {
        self.live
            .as_ref()
            .is_some_and(|live| live.admitted.contains(&(peer, *key)))
    }

    /// Whether this node is the leader, and of which term.
    pub fn leadership(&self) -> Option<u64> {
        let driver = self.live.as_ref()?.replica.driver();
        driver.is_leader().then(|| driver.term())
    }

    /// Raft's configuration as applied here, and the commit index.
    pub fn raft(&self) -> Option<(Membership, u64)> {
        let replica = &self.live.as_ref()?.replica;
        Some((
            replica.driver().membership(),
            replica.driver().commit_index(),
        ))
    }

    /// The configuration the ledger store records as in force at its applied index (the
    /// latest change at or below it, or the genesis configuration).
    pub fn recorded_conf(&self) -> Option<Membership> {
        let ledger = self.ledger()?;
        let applied = ReplicaLedger::<SimLog>::applied_index(self.live.as_ref()?.replica.ledger());
        Some(match ledger.conf_history().range(..=applied).next_back() {
            Some((_, conf_state)) => Membership::of(conf_state),
            None => Membership {
                voters: self.genesis_conf.0.iter().copied().collect(),
                learners: self.genesis_conf.1.iter().copied().collect(),
            },
        })
    }

    /// The node records of this node's ledger.
    pub fn node_records(&self) -> Vec<NodeRecord> {
        self.live
            .as_ref()
            .map(|live| live.replica.nodes().to_vec())
            .unwrap_or_default()
    }

    fn ledger(&self) -> Option<&MemLedger> {
        Some(self.live.as_ref()?.replica.ledger().inner())
    }

    /// Applied chain: header hashes by height (blocks below a snapshot not yet backfilled are
    /// missing).
    pub fn chain(&self) -> Vec<Hash> {
        self.ledger()
            .map(|ledger| ledger.hashes().values().copied().collect())
            .unwrap_or_default()
    }

    /// Whether blocks below a snapshot are still missing.
    pub fn has_gaps(&self) -> bool {
        self.ledger()
            .is_some_and(|ledger| !ledger.gaps().is_empty())
    }

    /// The ledger state, while up.
    pub fn state(&self) -> Option<&MemStore> {
        self.ledger().map(MemLedger::state)
    }

    /// The head, while up.
    pub fn head(&self) -> Option<&ChainHead> {
        let ledger = self.live.as_ref()?.replica.ledger();
        Some(ReplicaLedger::<SimLog>::head(ledger))
    }

    /// Commit index, last index of the Raft log and applied index, while up.
    pub fn raft_indexes(&self) -> Option<(u64, u64, u64)> {
        let replica = &self.live.as_ref()?.replica;
        let status = replica.status();
        Some((
            status.commit_index,
            replica.driver().last_index(),
            status.applied_index,
        ))
    }

    /// (index, term, blake3 of data) of every entry in this node's Raft log.
    pub fn log_terms(&self) -> Vec<(u64, u64, Hash)> {
        let Some(live) = self.live.as_ref() else {
            return Vec::new();
        };
        let store = live.replica.driver().store();
        let (Ok(first), Ok(last)) = (store.first_index(), store.last_index()) else {
            return Vec::new();
        };
        if last < first {
            return Vec::new();
        }
        let context = tpw_consensus::GetEntriesContext::empty(false);
        store
            .entries(first, last + 1, None, context)
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                (
                    entry.index,
                    entry.term,
                    *blake3::hash(&entry.data).as_bytes(),
                )
            })
            .collect()
    }

    /// Hands a delivered message to the node.
    pub fn receive(
        &mut self,
        envelope: Envelope,
        now_ms: u64,
        out: &mut Vec<Envelope>,
        events: &mut Vec<NodeEvent>,
    ) {
        let id = self.id;
        let voter = self.voter;
        let sabotage = self.sabotage;
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let reply = |to: Endpoint, payload: Payload| Envelope {
            from: Endpoint::Node(id),
            to,
            payload,
        };
        let from = envelope.from;
        match envelope.payload {
            Payload::Raft(message) if message.get_msg_type() == MessageType::MsgSnapshot => {
                if let Some(fetch) = snapshot_message(live, message, now_ms) {
                    out.push(reply(from, fetch));
                }
            }
            Payload::Raft(message) => live.replica.handle_message(message),
            Payload::Submit {
                envelope: bytes,
                tx_id,
            } => {
                let Endpoint::Client(client) = from else {
                    return;
                };
                let answer = submit(live, (voter, sabotage), client, tx_id, bytes);
                if let Some(answer) = answer {
                    out.push(reply(from, Payload::Answer { tx_id, answer }));
                }
            }
            Payload::SnapshotFetch { index } => {
                out.push(reply(from, offered_snapshot(live, index)))
            }
            Payload::SnapshotData { index, staged } => {
                if let Err(error) = snapshot_data(live, index, staged) {
                    events.push(NodeEvent::Violation(format!(
                        "node {id}: a peer's snapshot failed its checks: {error}"
                    )));
                }
            }
            Payload::SnapshotStatus { peer, delivered } => {
                live.replica.handle_snapshot_status(peer, delivered)
            }
            Payload::BlocksRequest { top, count } => {
                out.push(reply(from, blocks_below(live, top, count)))
            }
            Payload::Blocks { top, records } => {
                live.backfill_asked_ms = None;
                if let Err(error) = backfill(live, top, records) {
                    events.push(NodeEvent::Violation(format!("node {id}: {error}")));
                }
            }
            Payload::NodesRequest => out.push(reply(from, node_set(live))),
            Payload::Nodes { height, records } => {
                live.replica.handle_vouched_nodes(height, records);
            }
            Payload::Answer { .. } => {}
        }
    }

    /// Polls the engine at `now_ms` (ticks, proposals, membership, ready, apply), then does
    /// what the node's other threads would: makes a wanted snapshot offer, asks a peer for
    /// blocks below a snapshot.
    pub fn poll(
        &mut self,
        now_ms: u64,
        out: &mut Vec<Envelope>,
        events: &mut Vec<NodeEvent>,
    ) -> Result<(), String> {
        let now = self.now(now_ms);
        let id = self.id;
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        live.offers.borrow_mut().now_ms = now_ms;
        let mut executor = SimExecutor {
            id,
            waiters: &mut live.waiters,
            admitted: &mut live.admitted,
            out,
            events,
            released: None,
        };
        let result = live.replica.poll(now, &mut executor);
        let released = executor.released;
        let ledger = live.replica.ledger_mut();
        if let Some(index) = released {
            if ledger.inner().staged_index() == Some(index) {
                ledger.release_staged();
            }
        }
        for violation in std::mem::take(&mut ledger.violations) {
            events.push(NodeEvent::Violation(format!("node {id}: {violation}")));
        }
        for index in std::mem::take(&mut ledger.rekeyed) {
            events.push(NodeEvent::Rekeyed { node: id, index });
        }
        if let Err(error) = result {
            // A failed engine stops the node, as the raft loop's error stops the process.
            self.live = None;
            return Err(format!("node {id}: {error}"));
        }
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        make_offer(live, now_ms)?;
        ask_for_blocks(live, id, now_ms, out);
        ask_for_nodes(live, id, now_ms, out);
        if live.fetching.as_ref().is_some_and(|fetch| {
            now_ms.saturating_sub(fetch.asked_ms) > SIM_PEER_REQUEST_TIMEOUT_MS
        }) {
            // The fetch went unanswered: wait for the leader to send the snapshot again.
            live.fetching = None;
        }
        Ok(())
    }
}

/// The snapshot this node offers, if it is the one at `index` a peer asks for.
fn offered_snapshot(live: &Live, index: u64) -> Payload {
    let staged = live
        .offers
        .borrow()
        .offer
        .as_ref()
        .and_then(|(offer, staged, _)| (offer.index == index).then(|| Box::new(staged.clone())));
    Payload::SnapshotData { index, staged }
}

/// Up to `count` block records from `top` down, for a peer's backfill.
fn blocks_below(live: &Live, top: u64, count: u64) -> Payload {
    let ledger = live.replica.ledger().inner();
    let records = (0..count)
        .map_while(|offset| {
            let height = top.checked_sub(offset)?;
            ledger.block(height).map(<[u8]>::to_vec)
        })
        .collect();
    Payload::Blocks { top, records }
}

/// The node set as this node's ledger records it, with the height it holds.
fn node_set(live: &Live) -> Payload {
    let head = ReplicaLedger::<SimLog>::head(live.replica.ledger());
    let records = live.replica.nodes().to_vec();
    let height = head.height;
    Payload::Nodes { height, records }
}

/// A snapshot message from a peer: step it, drop it, or fetch its records first (returns the
/// fetch request to send to its sender).
fn snapshot_message(live: &mut Live, message: Message, now_ms: u64) -> Option<Payload> {
    let index = message.get_snapshot().get_metadata().index;
    let commit = live.replica.driver().commit_index();
    let staged = live.replica.ledger().inner().staged_index();
    match snapshot_arrival(index, commit, staged) {
        SnapshotArrival::Step => {
            live.replica.handle_message(message);
            None
        }
        SnapshotArrival::Ignore => None,
        SnapshotArrival::Fetch if live.fetching.is_some() => None,
        SnapshotArrival::Fetch => {
            live.fetching = Some(Fetch {
                message,
                asked_ms: now_ms,
            });
            Some(Payload::SnapshotFetch { index })
        }
    }
}

/// A peer's answer to a snapshot fetch: the records are checked as the node's receiver checks
/// them (descriptor, key order, state root, head block), staged, and the held message is
/// handed to the engine.
fn snapshot_data(
    live: &mut Live,
    index: u64,
    staged: Option<Box<StagedState>>,
) -> Result<(), String> {
    let Some(fetch) = live
        .fetching
        .take_if(|fetch| fetch.message.get_snapshot().get_metadata().index == index)
    else {
        return Ok(());
    };
    // The peer no longer keeps it: the leader sends a newer one.
    let Some(staged) = staged else {
        return Ok(());
    };
    let network_id = ReplicaLedger::<SimLog>::head(live.replica.ledger()).network_id;
    let descriptor = check_descriptor(&network_id, fetch.message.get_snapshot())?;
    let mut commitment = Commitment::default();
    let mut previous: Option<&[u8]> = None;
    for (key, value) in &staged.records {
        if previous.is_some_and(|previous| key.as_slice() <= previous) {
            return Err("the peer sent records out of order".into());
        }
        previous = Some(key);
        commitment.insert(key, value);
    }
    let head = check_snapshot_head(&descriptor, &staged.block, commitment)?;
    live.replica.ledger_mut().stage(StagedState {
        descriptor: descriptor.to_bytes(),
        applied_index: descriptor.applied_index,
        records: staged.records,
        head,
        block: staged.block,
    });
    live.replica.handle_message(fetch.message);
    Ok(())
}

/// Makes the snapshot raft asked for, from the ledger as applied now (the node's snapshot
/// maker takes a checkpoint on its own thread; here it is immediate).
fn make_offer(live: &mut Live, now_ms: u64) -> Result<(), String> {
    if !std::mem::take(&mut live.offers.borrow_mut().wanted) {
        return Ok(());
    }
    let replica = &live.replica;
    let ledger = replica.ledger();
    let applied_index = ReplicaLedger::<SimLog>::applied_index(ledger);
    let store = replica.driver().store();
    let Ok(term) = store.term(applied_index) else {
        return Ok(());
    };
    let head = ReplicaLedger::<SimLog>::head(ledger).clone();
    let Some(block) = ledger.inner().block(head.height).map(<[u8]>::to_vec) else {
        return Err(format!("the head block {} is missing", head.height));
    };
    let descriptor = SnapshotDescriptor {
        network_id: head.network_id,
        height: head.height,
        head_hash: head.hash,
        state_root: head.commitment.root(),
        applied_index,
    };
    let staged = StagedState {
        descriptor: descriptor.to_bytes(),
        applied_index,
        records: ledger
            .inner()
            .state()
            .records()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        head,
        block,
    };
    let offer = SnapshotOffer {
        index: applied_index,
        term,
        conf_state: store.conf_state(),
        data: staged.descriptor.clone(),
    };
    live.offers.borrow_mut().offer = Some((offer, staged, now_ms));
    Ok(())
}

/// Asks a peer for the top of the highest gap below a snapshot, one request at a time.
fn ask_for_blocks(live: &mut Live, id: u64, now_ms: u64, out: &mut Vec<Envelope>) {
    let Some(&(low, high)) = live.replica.ledger().inner().gaps().last() else {
        return;
    };
    if live
        .backfill_asked_ms
        .is_some_and(|asked| now_ms.saturating_sub(asked) < SIM_PEER_REQUEST_TIMEOUT_MS)
    {
        return;
    }
    let mut peers: Vec<u64> = live.admitted.iter().map(|(peer, _)| *peer).collect();
    peers.dedup();
    peers.retain(|peer| *peer != id);
    if peers.is_empty() {
        return;
    }
    live.backfill_turn += 1;
    let peer = peers[(live.backfill_turn % peers.len() as u64) as usize];
    live.backfill_asked_ms = Some(now_ms);
    out.push(Envelope {
        from: Endpoint::Node(id),
        to: Endpoint::Node(peer),
        payload: Payload::BlocksRequest {
            top: high,
            count: (high - low + 1).min(SIM_BACKFILL_BLOCKS_MAX),
        },
    });
}

/// Asks a peer of Raft's configuration for its node set, every few seconds (the node's
/// `snapshot::nodes` task).
fn ask_for_nodes(live: &mut Live, id: u64, now_ms: u64, out: &mut Vec<Envelope>) {
    if now_ms < live.next_nodes_ask_ms {
        return;
    }
    live.next_nodes_ask_ms = now_ms + SIM_NODE_SET_ASK_INTERVAL_MS;
    let membership = live.replica.driver().membership();
    let peers: Vec<u64> = membership
        .voters
        .iter()
        .chain(&membership.learners)
        .copied()
        .filter(|peer| *peer != id)
        .collect();
    if peers.is_empty() {
        return;
    }
    live.backfill_turn += 1;
    let peer = peers[(live.backfill_turn % peers.len() as u64) as usize];
    out.push(Envelope {
        from: Endpoint::Node(id),
        to: Endpoint::Node(peer),
        payload: Payload::NodesRequest,
    });
}

/// Blocks from a peer for the gap whose top is `top`: checked like the node's backfill checks
/// them, then stored; the lowest must link to this node's own block below the gap.
fn backfill(live: &mut Live, top: u64, records: Vec<Vec<u8>>) -> Result<(), String> {
    let ledger = live.replica.ledger().inner();
    let Some(&(low, high)) = ledger.gaps().iter().find(|(_, high)| *high == top) else {
        return Ok(());
    };
    let Some(above) = ledger.block(high + 1) else {
        return Err(format!("block {} above a gap is missing", high + 1));
    };
    let above = BlockRecord::from_bytes(above).map_err(|error| error.to_string())?;
    let network_id = ReplicaLedger::<SimLog>::head(live.replica.ledger()).network_id;
    let Ok((checked, lowest_hash)) =
        check_chain(&network_id, above.header.previous_hash, high, low, records)
    else {
        // A peer that cannot serve the blocks is asked again later (another peer).
        return Ok(());
    };
    let reached_low = checked.last().is_some_and(|block| block.height == low);
    for block in checked {
        live.replica
            .ledger_mut()
            .backfill(block.height, block.record)?;
    }
    if reached_low {
        let below = live
            .replica
            .ledger()
            .inner()
            .hashes()
            .get(&(low - 1))
            .copied();
        if below != Some(lowest_hash) {
            return Err(format!(
                "divergence: the chain below a snapshot does not link to block {}",
                low - 1
            ));
        }
    }
    Ok(())
}

/// A client's submission reaching a node: the node's admission (decode, signature, the
/// ledger's pre-checks), then the engine's queue. Returns the answer to send now, if any (a
/// queued transaction is answered at commit).
fn submit(
    live: &mut Live,
    (voter, sabotage): (bool, Sabotage),
    client: usize,
    tx_id: Hash,
    bytes: Vec<u8>,
) -> Option<Answer> {
    let ledger = live.replica.ledger().inner();
    if let Some(place) = ledger.transaction(&tx_id) {
        return Some(Answer::Committed {
            height: place.height,
            code: place.code,
        });
    }
    if !voter {
        return Some(Answer::NotLeader(live.replica.driver().leader_id()));
    }
    if let Some(waiting) = live.waiters.get_mut(&tx_id) {
        waiting.insert(client);
        return None;
    }
    let head = ReplicaLedger::<SimLog>::head(live.replica.ledger());
    let Ok(transaction) = Transaction::from_bytes(&bytes, &head.network_id) else {
        return Some(Answer::Refused);
    };
    let message = transaction.signed_message();
    let valid = verify_all(&[SignatureItem {
        key: &transaction.signer,
        signature: &transaction.signature,
        message: &message,
    }]);
    if valid != [true] {
        return Some(Answer::Refused);
    }
    let facts = StateFacts {
        state: live.replica.ledger(),
        head_time_ms: head.time_ms,
    };
    if precheck(&facts, std::slice::from_ref(&transaction)).is_err() {
        return Some(Answer::Refused);
    }
    let head_height = head.height;
    match live.replica.handle_submit(vec![(tx_id, bytes)]) {
        Err(SubmitError::NotLeader { leader }) => Some(Answer::NotLeader(leader)),
        Err(_) => Some(Answer::Retry),
        Ok(()) if sabotage == Sabotage::AckBeforeCommit => Some(Answer::Committed {
            height: head_height + 1,
            code: ResultCode::Ok,
        }),
        Ok(()) => {
            live.waiters.entry(tx_id).or_default().insert(client);
            None
        }
    }
}

/// [`Sabotage::RestartAppliesATransferTwice`]: moves the amount of the first posted transfer
/// once more, on both its accounts (so assets stay conserved and only the accounting by
/// transfer can tell).
fn count_a_transfer_twice(ledger: &mut SimLedger) {
    let state = ledger.inner().state();
    let mut diff = StateDiff::new();
    for (key, value) in state.records() {
        if key.first() != Some(&prefix::TRANSFER) {
            continue;
        }
        let Ok(record) = from_bytes(value, tpw_contracts::model::TransferRecord::decode) else {
            continue;
        };
        if record.state != tpw_contracts::model::TransferState::Posted || record.height == 0 {
            continue;
        }
        for (account, debit) in [(record.debit_account, true), (record.credit_account, false)] {
            let key = tpw_contracts::state::account_key(account);
            let Some(bytes) = state.get(&key).ok().flatten() else {
                return;
            };
            let Ok(mut account) = from_bytes(&bytes, Account::decode) else {
                return;
            };
            if debit {
                account.debits_posted += record.amount;
            } else {
                account.credits_posted += record.amount;
            }
            let bytes = tpw_contracts::model::to_bytes(|writer| account.encode(writer));
            diff.insert(key, Some(bytes));
        }
        break;
    }
    ledger.tamper(&diff);
}
