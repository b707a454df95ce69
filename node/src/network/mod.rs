//! Peer transport: libp2p over TCP with Noise and Yamux, the node's ed25519 key as its identity,
//! connections admitted only from and to the members of the node set, and Raft messages on a
//! request-response protocol (each message acknowledged on its own stream, so a slow or dead
//! peer delays only its own messages).

mod codec;
mod forward;
mod pending;
mod task;

pub use forward::{ForwardHandler, ForwardRefusal, ForwardReply};

use crate::limits::{
    CONNECTIONS_PER_PEER_MAX, FORWARDS_IN_FLIGHT_MAX, FORWARD_FRAME_SIZE_MAX, OUTBOUND_BATCHES_MAX,
    PEER_HANDSHAKE_TIMEOUT, PEER_IDLE_CONNECTION_TIMEOUT, PEER_REQUEST_TIMEOUT,
    PENDING_CONNECTIONS_MAX, RAFT_FRAME_SIZE_MAX, SNAPSHOT_REQUEST_TIMEOUT,
};
use crate::mailbox::RaftInbox;
use codec::FrameCodec;
use ed25519_dalek::SigningKey;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, connection_limits, identity, Multiaddr, PeerId, StreamProtocol};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use task::NetworkTask;
use tokio::sync::mpsc::error::TrySendError;
use tpw_consensus::raft_types::{Message, MessageType};

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
    pending: pending::PendingPerAddress,
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
    let mut swarm = build_swarm(key)?;
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
        refusals_logged: Default::default(),
    };
    tokio::spawn(task.run(receiver));
    Ok(NetworkHandle {
        outbound,
        handler,
        snapshots,
    })
}

/// The libp2p swarm: TCP with Noise and Yamux under the node key, the connection limits, and
/// the three request-response protocols (Raft, forwarded submissions, snapshots).
fn build_swarm(key: &SigningKey) -> Result<libp2p::Swarm<Behaviour>, NetworkError> {
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
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .map_err(|error| NetworkError::Transport(error.to_string()))?
        .with_behaviour(|_| Behaviour {
            allowed: allow_block_list::Behaviour::default(),
            pending: pending::PendingPerAddress::default(),
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
        .with_swarm_config(|config| {
            config.with_idle_connection_timeout(PEER_IDLE_CONNECTION_TIMEOUT)
        })
        .with_connection_timeout(PEER_HANDSHAKE_TIMEOUT)
        .build();
    Ok(swarm)
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
