//! Peer transport: libp2p over TCP with Noise and Yamux, the node's ed25519 key as its identity,
//! connections admitted only from and to the members of the node set, and Raft messages on a
//! request-response protocol (each message acknowledged on its own stream, so a slow or dead
//! peer delays only its own messages).

mod codec;
mod forward;

pub use forward::{ForwardHandler, ForwardRefusal, ForwardReply};

use crate::limits::{
    CONNECTIONS_PER_PEER_MAX, FORWARDS_IN_FLIGHT_MAX, FORWARD_FRAME_SIZE_MAX,
    FORWARD_RESPONSES_MAX, OUTBOUND_BATCHES_MAX, PEER_REQUEST_TIMEOUT, PENDING_CONNECTIONS_MAX,
    RAFT_FRAME_SIZE_MAX, SNAPSHOT_REQUEST_TIMEOUT,
};
use crate::mailbox::{Command, RaftInbox};
use codec::FrameCodec;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{allow_block_list, connection_limits, identity, Multiaddr, PeerId, StreamProtocol};
use protobuf::Message as _;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::mpsc::TrySendError as StdTrySendError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tpw_consensus::raft_types::{Message, MessageType};
use tpw_consensus::wire::{admit_raft_message, RaftAdmissionError};

const RAFT_PROTOCOL: StreamProtocol = StreamProtocol::new("/tpw/raft/1");
const FORWARD_PROTOCOL: StreamProtocol = StreamProtocol::new("/tpw/forward/1");
const SNAPSHOT_PROTOCOL: StreamProtocol = StreamProtocol::new("/tpw/snapshot/1");

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A key or address is unusable.
    #[error("network configuration: {0}")]
    Config(String),
    /// libp2p refused to build or listen.
    #[error("network: {0}")]
    Transport(String),
}

/// One member of the node set, as the network needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Raft id.
    pub id: u64,
    /// Node public key (32 bytes).
    pub public_key: [u8; 32],
    /// Where it listens, if this node should dial it.
    pub address: Option<SocketAddr>,
    /// Whether it votes (false for a regulator's observer, a Raft learner).
    pub voter: bool,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    allowed: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    limits: connection_limits::Behaviour,
    raft: request_response::Behaviour<FrameCodec>,
    forward: request_response::Behaviour<FrameCodec>,
    snapshot: request_response::Behaviour<FrameCodec>,
}

/// Work for the network task.
enum Outbound {
    /// Raft messages to their peers.
    Raft(Vec<Message>),
    /// A submission for the leader.
    Forward {
        to: u64,
        envelopes: Vec<Vec<u8>>,
        reply: tokio::sync::oneshot::Sender<ForwardReply>,
    },
    /// A snapshot request for a peer.
    Snapshot {
        to: u64,
        request: Vec<u8>,
        reply: tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>,
    },
    /// Cut this node off from these peers (connections closed and refused); the others, and
    /// all of them when the list is empty, are admitted again.
    Partition(Vec<u64>),
    /// The node set changed (governance): admit exactly these peers from now on.
    Members(Vec<Member>),
}

/// Handle on the network task, for the raft loop (messages) and the API (forwarding).
#[derive(Clone)]
pub struct NetworkHandle {
    outbound: tokio::sync::mpsc::Sender<Outbound>,
    handler: Arc<OnceLock<ForwardHandler>>,
    snapshots: Arc<OnceLock<SnapshotWiring>>,
}

/// Where snapshot traffic goes: incoming Raft snapshot messages to the receiver, incoming
/// `/tpw/snapshot/1` requests to the server.
#[derive(Clone)]
pub struct SnapshotWiring {
    /// Serves peers' requests.
    pub server: Arc<crate::snapshot::maker::Snapshots>,
    /// Takes Raft snapshot messages before Raft sees them.
    pub messages: tokio::sync::mpsc::Sender<Message>,
}

impl NetworkHandle {
    /// Replaces the admitted peers with the ledger's node set: a removed node or a rotated-out
    /// key is disconnected and refused, a new node or key admitted. False when the network's
    /// queue was full: the caller tries again.
    pub fn set_members(&self, members: Vec<Member>) -> bool {
        match self.outbound.try_send(Outbound::Members(members)) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "node set update for the network deferred: queue full");
                false
            }
        }
    }

    /// Queues messages for their peers without blocking; when the queue is full they are
    /// dropped and Raft's retransmission covers the loss. Returns the peers whose snapshot
    /// message was dropped, which Raft must be told about (it does not resend those by itself).
    pub fn send(&self, messages: Vec<Message>) -> Vec<u64> {
        match self.outbound.try_send(Outbound::Raft(messages)) {
            Ok(()) => Vec::new(),
            Err(error) => {
                tracing::warn!(%error, "raft messages dropped: network queue full");
                let (TrySendError::Full(Outbound::Raft(messages))
                | TrySendError::Closed(Outbound::Raft(messages))) = error
                else {
                    return Vec::new();
                };
                messages
                    .iter()
                    .filter(|message| message.get_msg_type() == MessageType::MsgSnapshot)
                    .map(|message| message.to)
                    .collect()
            }
        }
    }

    /// Forwards verified envelopes to the leader, which queues them for its next block.
    pub async fn forward(&self, to: u64, envelopes: Vec<Vec<u8>>) -> ForwardReply {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        if self
            .outbound
            .try_send(Outbound::Forward {
                to,
                envelopes,
                reply,
            })
            .is_err()
        {
            return Err(ForwardRefusal::Overloaded);
        }
        outcome.await.unwrap_or(Err(ForwardRefusal::Unreachable))
    }

    /// Isolates this node from the listed peers and admits the others again; an empty list
    /// heals every partition.
    pub async fn partition(&self, isolate_from: Vec<u64>) -> Result<(), NetworkError> {
        self.outbound
            .send(Outbound::Partition(isolate_from))
            .await
            .map_err(|_| NetworkError::Transport("the network task has stopped".into()))
    }

    /// Asks a peer for snapshot records or blocks.
    pub async fn snapshot_request(
        &self,
        to: u64,
        request: crate::snapshot::SnapshotRequest,
    ) -> Result<crate::snapshot::SnapshotResponse, String> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.outbound
            .send(Outbound::Snapshot {
                to,
                request: request.to_bytes(),
                reply,
            })
            .await
            .map_err(|_| "the network task has stopped".to_string())?;
        let bytes = outcome
            .await
            .map_err(|_| "the network task has stopped".to_string())??;
        crate::snapshot::SnapshotResponse::from_bytes(&bytes)
            .map_err(|error| format!("malformed snapshot response: {error}"))
    }

    /// Sets where snapshot traffic goes (once; later calls are ignored).
    pub fn wire_snapshots(&self, wiring: SnapshotWiring) {
        let _ = self.snapshots.set(wiring);
    }

    /// Sets how this node serves submissions forwarded to it (once; later calls are ignored).
    pub fn serve_forwarded(&self, handler: ForwardHandler) {
        let _ = self.handler.set(handler);
    }
}

/// The libp2p peer id of an ed25519 node key.
pub fn peer_id_of(public_key: &[u8; 32]) -> Result<PeerId, NetworkError> {
    let key = identity::ed25519::PublicKey::try_from_bytes(public_key).map_err(|error| {
        NetworkError::Config(format!("node key {}: {error}", hex::encode(public_key)))
    })?;
    Ok(PeerId::from_public_key(&identity::PublicKey::from(key)))
}

fn multiaddr(address: SocketAddr) -> Multiaddr {
    let mut multiaddr = Multiaddr::from(address.ip());
    multiaddr.push(libp2p::multiaddr::Protocol::Tcp(address.port()));
    multiaddr
}

/// Starts the network task; returns the handle and the address it listens on.
pub async fn start(
    key: &SigningKey,
    listen: SocketAddr,
    me: u64,
    members: &[Member],
    commands: RaftInbox,
) -> Result<NetworkHandle, NetworkError> {
    let mut secret = key.to_bytes();
    let keypair = identity::Keypair::ed25519_from_bytes(&mut secret)
        .map_err(|error| NetworkError::Config(format!("node key: {error}")))?;
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
        .with_max_pending_incoming(Some(PENDING_CONNECTIONS_MAX))
        .with_max_pending_outgoing(Some(PENDING_CONNECTIONS_MAX))
        .with_max_established(Some(
            CONNECTIONS_PER_PEER_MAX * tpw_contracts::governance::NODES_MAX as u32,
        ));
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .map_err(|error| NetworkError::Transport(error.to_string()))?
        .with_behaviour(|_| Behaviour {
            allowed: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(limits),
            raft: request_response::Behaviour::with_codec(
                FrameCodec::new(RAFT_FRAME_SIZE_MAX),
                [(RAFT_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(PEER_REQUEST_TIMEOUT),
            ),
            forward: request_response::Behaviour::with_codec(
                FrameCodec::new(FORWARD_FRAME_SIZE_MAX),
                [(FORWARD_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(PEER_REQUEST_TIMEOUT),
            ),
            snapshot: request_response::Behaviour::with_codec(
                FrameCodec::new(crate::snapshot::SNAPSHOT_FRAME_SIZE_MAX),
                [(SNAPSHOT_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(SNAPSHOT_REQUEST_TIMEOUT),
            ),
        })
        .map_err(|error| NetworkError::Transport(error.to_string()))?
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    let peers = PeerDirectory::of(members, me)?;
    for peer in peers.by_peer.keys() {
        swarm.behaviour_mut().allowed.allow_peer(*peer);
    }
    swarm
        .listen_on(multiaddr(listen))
        .map_err(|error| NetworkError::Transport(format!("listen on {listen}: {error}")))?;
    let (outbound, receiver) = tokio::sync::mpsc::channel(OUTBOUND_BATCHES_MAX);
    let handler = Arc::new(OnceLock::new());
    let snapshots = Arc::new(OnceLock::new());
    let task = NetworkTask {
        swarm,
        peers,
        commands,
        handler: Arc::clone(&handler),
        snapshots: Arc::clone(&snapshots),
        forward_permits: Arc::new(tokio::sync::Semaphore::new(FORWARDS_IN_FLIGHT_MAX)),
        pending_forwards: HashMap::new(),
        pending_snapshots: HashMap::new(),
        snapshot_sends: HashMap::new(),
        partitioned: std::collections::BTreeSet::new(),
    };
    tokio::spawn(task.run(receiver));
    Ok(NetworkHandle {
        outbound,
        handler,
        snapshots,
    })
}

#[derive(Default)]
struct PeerDirectory {
    by_peer: HashMap<PeerId, u64>,
    /// Members that never vote: they may only answer the leader.
    observers: std::collections::BTreeSet<u64>,
    /// Peer id and configured addresses of each node. The addresses go with every request, since
    /// libp2p forgets an address after a failed dial and peers start in any order.
    by_node: BTreeMap<u64, (PeerId, Vec<Multiaddr>)>,
    /// This node's own id (never a peer).
    me: u64,
}

impl PeerDirectory {
    fn of(members: &[Member], me: u64) -> Result<Self, NetworkError> {
        let mut peers = PeerDirectory {
            me,
            ..PeerDirectory::default()
        };
        for member in members.iter().filter(|member| member.id != me) {
            let peer = peer_id_of(&member.public_key)?;
            peers.by_peer.insert(peer, member.id);
            if !member.voter {
                peers.observers.insert(member.id);
            }
            peers.by_node.insert(
                member.id,
                (peer, member.address.map(multiaddr).into_iter().collect()),
            );
        }
        Ok(peers)
    }
}

struct NetworkTask {
    swarm: libp2p::Swarm<Behaviour>,
    peers: PeerDirectory,
    commands: RaftInbox,
    handler: Arc<OnceLock<ForwardHandler>>,
    snapshots: Arc<OnceLock<SnapshotWiring>>,
    forward_permits: Arc<tokio::sync::Semaphore>,
    pending_forwards:
        HashMap<request_response::OutboundRequestId, tokio::sync::oneshot::Sender<ForwardReply>>,
    pending_snapshots: HashMap<
        request_response::OutboundRequestId,
        tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>,
    >,
    /// Raft snapshot messages on their way, by request, with the node they go to.
    snapshot_sends: HashMap<request_response::OutboundRequestId, u64>,
    /// Nodes the operator cut this node off from (admin partition).
    partitioned: std::collections::BTreeSet<u64>,
}

/// A response computed off the network task, for the protocol it answers.
enum Answer {
    Forward(request_response::ResponseChannel<Vec<u8>>, Vec<u8>),
    Snapshot(request_response::ResponseChannel<Vec<u8>>, Vec<u8>),
}

impl NetworkTask {
    async fn run(mut self, mut outbound: tokio::sync::mpsc::Receiver<Outbound>) {
        let (answers, mut answered) = tokio::sync::mpsc::channel::<Answer>(FORWARD_RESPONSES_MAX);
        loop {
            tokio::select! {
                work = outbound.recv() => match work {
                    Some(work) => self.send(work),
                    None => return,
                },
                Some(answer) = answered.recv() => {
                    let behaviour = self.swarm.behaviour_mut();
                    let _ = match answer {
                        Answer::Forward(channel, bytes) => behaviour.forward.send_response(channel, bytes),
                        Answer::Snapshot(channel, bytes) => behaviour.snapshot.send_response(channel, bytes),
                    };
                }
                event = self.swarm.select_next_some() => self.handle_event(event, &answers),
            }
        }
    }

    fn send(&mut self, work: Outbound) {
        match work {
            Outbound::Raft(batch) => {
                for message in batch {
                    let snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
                    let Some((peer, addresses)) = self.peers.by_node.get(&message.to) else {
                        tracing::warn!(
                            to = message.to,
                            "raft message for a node outside the node set dropped"
                        );
                        continue;
                    };
                    match message.write_to_bytes() {
                        Ok(bytes) => {
                            let id = self.swarm.behaviour_mut().raft.send_request_with_addresses(
                                peer,
                                bytes,
                                addresses.clone(),
                            );
                            if snapshot {
                                self.snapshot_sends.insert(id, message.to);
                            }
                        }
                        Err(error) => tracing::error!(%error, "raft message could not be encoded"),
                    }
                }
            }
            Outbound::Partition(isolate_from) => {
                self.partitioned = isolate_from.iter().copied().collect();
                let members: Vec<(u64, PeerId)> = self
                    .peers
                    .by_node
                    .iter()
                    .map(|(node, (peer, _))| (*node, *peer))
                    .collect();
                for (node, peer) in members {
                    if isolate_from.contains(&node) {
                        self.swarm.behaviour_mut().allowed.disallow_peer(peer);
                        tracing::warn!(node_id = node, "partitioned from peer by the operator");
                    } else {
                        self.swarm.behaviour_mut().allowed.allow_peer(peer);
                    }
                }
            }
            Outbound::Members(members) => self.set_members(&members),
            Outbound::Snapshot { to, request, reply } => match self.peers.by_node.get(&to) {
                Some((peer, addresses)) => {
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .snapshot
                        .send_request_with_addresses(peer, request, addresses.clone());
                    self.pending_snapshots.insert(id, reply);
                }
                None => {
                    let _ = reply.send(Err(format!("node {to} is not in the node set")));
                }
            },
            Outbound::Forward {
                to,
                envelopes,
                reply,
            } => match self.peers.by_node.get(&to) {
                Some((peer, addresses)) => {
                    let request = forward::encode_request(&envelopes);
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .forward
                        .send_request_with_addresses(peer, request, addresses.clone());
                    self.pending_forwards.insert(id, reply);
                }
                None => {
                    let _ = reply.send(Err(ForwardRefusal::Unreachable));
                }
            },
        }
    }

    /// Admits the new node set's peer ids, and refuses and disconnects those no longer in it.
    fn set_members(&mut self, members: &[Member]) {
        let directory = match PeerDirectory::of(members, self.peers.me) {
            Ok(directory) => directory,
            Err(error) => {
                tracing::error!(%error, "node set update refused: a key is not a peer identity");
                return;
            }
        };
        let gone: Vec<PeerId> = self
            .peers
            .by_peer
            .keys()
            .filter(|peer| !directory.by_peer.contains_key(peer))
            .copied()
            .collect();
        for peer in gone {
            self.swarm.behaviour_mut().allowed.disallow_peer(peer);
            let _ = self.swarm.disconnect_peer_id(peer);
            tracing::warn!(%peer, "peer left the node set (removed, or its key rotated): disconnected");
        }
        for (peer, node) in &directory.by_peer {
            if !self.peers.by_peer.contains_key(peer) {
                tracing::info!(%peer, node_id = node, "peer joined the node set");
            }
            // An operator's partition outlives node set changes.
            if self.partitioned.contains(node) {
                self.swarm.behaviour_mut().allowed.disallow_peer(*peer);
            } else {
                self.swarm.behaviour_mut().allowed.allow_peer(*peer);
            }
        }
        self.peers = directory;
    }

    fn handle_event(
        &mut self,
        event: SwarmEvent<BehaviourEvent>,
        answers: &tokio::sync::mpsc::Sender<Answer>,
    ) {
        use request_response::{Event, Message as Wire};
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Raft(Event::Message {
                peer,
                message: Wire::Request {
                    request, channel, ..
                },
                ..
            })) => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .raft
                    .send_response(channel, Vec::new());
                deliver(
                    &self.peers,
                    &self.commands,
                    self.snapshots.get(),
                    &peer,
                    &request,
                );
            }
            SwarmEvent::Behaviour(BehaviourEvent::Raft(Event::Message {
                message: Wire::Response { request_id, .. },
                ..
            })) => {
                if let Some(node) = self.snapshot_sends.remove(&request_id) {
                    let _ = self.commands.try_send(Command::SnapshotStatus {
                        node,
                        delivered: true,
                    });
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Raft(Event::OutboundFailure {
                peer,
                error,
                request_id,
                ..
            })) => {
                tracing::debug!(%peer, %error, "raft message not delivered");
                if let Some(node) = self.snapshot_sends.remove(&request_id) {
                    let _ = self.commands.try_send(Command::SnapshotStatus {
                        node,
                        delivered: false,
                    });
                }
                if let Some(node) = self.peers.by_peer.get(&peer) {
                    let _ = self.commands.try_send(Command::Unreachable(*node));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Snapshot(Event::Message {
                peer,
                message: Wire::Request {
                    request, channel, ..
                },
                ..
            })) => self.serve_snapshot(peer, request, channel, answers),
            SwarmEvent::Behaviour(BehaviourEvent::Snapshot(Event::Message {
                message:
                    Wire::Response {
                        request_id,
                        response,
                    },
                ..
            })) => {
                if let Some(reply) = self.pending_snapshots.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Snapshot(Event::OutboundFailure {
                request_id,
                error,
                ..
            })) => {
                if let Some(reply) = self.pending_snapshots.remove(&request_id) {
                    let _ = reply.send(Err(format!("snapshot request failed: {error}")));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Forward(Event::Message {
                peer,
                message: Wire::Request {
                    request, channel, ..
                },
                ..
            })) => self.serve_forward(peer, request, channel, answers),
            SwarmEvent::Behaviour(BehaviourEvent::Forward(Event::Message {
                message:
                    Wire::Response {
                        request_id,
                        response,
                    },
                ..
            })) => {
                if let Some(reply) = self.pending_forwards.remove(&request_id) {
                    let _ = reply.send(forward::decode_reply(&response));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Forward(Event::OutboundFailure {
                request_id,
                error,
                ..
            })) => {
                tracing::warn!(%error, "forwarding to the leader failed");
                if let Some(reply) = self.pending_forwards.remove(&request_id) {
                    let _ = reply.send(Err(ForwardRefusal::Unreachable));
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::warn!(address = %send_back_addr, %error, "incoming connection refused");
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                tracing::info!(peer = %peer_id, node_id = ?self.peers.by_peer.get(&peer_id), "peer connected");
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                tracing::info!(peer = %peer_id, cause = ?cause.map(|cause| cause.to_string()), "peer disconnected");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "peer transport listening")
            }
            _ => {}
        }
    }

    /// Answers a forwarded submission through the handler the API installed.
    fn serve_forward(
        &mut self,
        peer: PeerId,
        request: Vec<u8>,
        channel: request_response::ResponseChannel<Vec<u8>>,
        answers: &tokio::sync::mpsc::Sender<Answer>,
    ) {
        let envelopes = match forward::decode_request(&request) {
            Ok(envelopes) => envelopes,
            Err(error) => {
                tracing::warn!(%peer, %error, "malformed forwarded submission");
                let refusal = ForwardRefusal::Refused {
                    code: "malformed_forward".into(),
                    message: error,
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .forward
                    .send_response(channel, forward::encode_reply(&Err(refusal)));
                return;
            }
        };
        let Some(handler) = self.handler.get().cloned() else {
            let _ = self.swarm.behaviour_mut().forward.send_response(
                channel,
                forward::encode_reply(&Err(ForwardRefusal::Stopping)),
            );
            return;
        };
        let Ok(permit) = Arc::clone(&self.forward_permits).try_acquire_owned() else {
            let busy = forward::encode_reply(&Err(ForwardRefusal::Overloaded));
            let _ = self
                .swarm
                .behaviour_mut()
                .forward
                .send_response(channel, busy);
            return;
        };
        let answers = answers.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let reply = handler(envelopes).await;
            let _ = answers
                .send(Answer::Forward(channel, forward::encode_reply(&reply)))
                .await;
        });
    }

    /// Answers a snapshot request off the network task (it reads RocksDB).
    fn serve_snapshot(
        &mut self,
        peer: PeerId,
        request: Vec<u8>,
        channel: request_response::ResponseChannel<Vec<u8>>,
        answers: &tokio::sync::mpsc::Sender<Answer>,
    ) {
        let Some(wiring) = self.snapshots.get().cloned() else {
            let refusal = crate::snapshot::SnapshotResponse::Unavailable("starting".into());
            let _ = self
                .swarm
                .behaviour_mut()
                .snapshot
                .send_response(channel, refusal.to_bytes());
            return;
        };
        tracing::debug!(%peer, "serving a snapshot request");
        let answers = answers.clone();
        tokio::spawn(async move {
            let response = tokio::task::spawn_blocking(move || wiring.server.serve(&request))
                .await
                .unwrap_or_else(|_| {
                    crate::snapshot::SnapshotResponse::Unavailable("serving failed".into())
                        .to_bytes()
                });
            let _ = answers.send(Answer::Snapshot(channel, response)).await;
        });
    }
}

/// Hands a peer's Raft message to the raft loop, after [`admit_raft_message`]: it decodes, it
/// claims to come from the node that sent it, and that node's role may send its kind.
fn deliver(
    peers: &PeerDirectory,
    commands: &RaftInbox,
    snapshots: Option<&SnapshotWiring>,
    peer: &PeerId,
    bytes: &[u8],
) {
    let Some(node) = peers.by_peer.get(peer) else {
        tracing::warn!(%peer, "raft message from a peer outside the node set dropped");
        return;
    };
    let message = match admit_raft_message(bytes, *node, peers.observers.contains(node)) {
        Ok(message) => message,
        Err(RaftAdmissionError::Malformed(error)) => {
            tracing::warn!(node_id = node, %error, "malformed raft message dropped");
            return;
        }
        Err(RaftAdmissionError::WrongSender { claimed }) => {
            tracing::warn!(
                node_id = node,
                claimed,
                "raft message claiming another sender dropped"
            );
            return;
        }
        Err(RaftAdmissionError::KindNotAllowed(kind)) => {
            tracing::warn!(node_id = node, kind = ?kind, "raft message of a kind this peer may not send dropped");
            return;
        }
    };
    if message.get_msg_type() == MessageType::MsgSnapshot {
        // Raft sees a snapshot message only once its records are fetched and verified.
        match snapshots {
            Some(wiring) => {
                if wiring.messages.try_send(message).is_err() {
                    tracing::debug!(node_id = node, "snapshot receiver busy: message dropped");
                }
            }
            None => tracing::warn!(
                node_id = node,
                "snapshot message before snapshots are wired: dropped"
            ),
        }
        return;
    }
    match commands.try_send(Command::Step(Box::new(message))) {
        Ok(()) => {}
        Err(StdTrySendError::Full(_)) => {
            tracing::warn!(node_id = node, "raft loop busy: message dropped")
        }
        Err(StdTrySendError::Disconnected(_)) => {}
    }
}
