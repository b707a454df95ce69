//! Peer transport: libp2p over TCP with Noise and Yamux, the node's ed25519 key as its identity,
//! connections admitted only from and to the members of the node set, and Raft messages on a
//! request-response protocol (each message acknowledged on its own stream, so a slow or dead
//! peer delays only its own messages).

mod codec;

use crate::runtime::Command;
use codec::FrameCodec;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{allow_block_list, connection_limits, identity, Multiaddr, PeerId, StreamProtocol};
use protobuf::Message as _;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;
use tpw_consensus::raft_types::Message;

/// Bytes of one Raft message frame: the driver's append limit plus headroom.
pub const RAFT_FRAME_SIZE_MAX: usize = 2 * tpw_consensus::driver::limits::MESSAGE_SIZE_MAX as usize;
/// Raft message batches waiting for the network task; more are dropped (Raft resends).
pub const OUTBOUND_BATCHES_MAX: usize = 1024;
/// Established connections per peer.
pub const CONNECTIONS_PER_PEER_MAX: u32 = 2;
/// Connections being negotiated at once, each way.
pub const PENDING_CONNECTIONS_MAX: u32 = 16;
/// How long a Raft message may wait for its acknowledgement.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const RAFT_PROTOCOL: StreamProtocol = StreamProtocol::new("/tpw/raft/1");

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
#[derive(Debug, Clone)]
pub struct Member {
    /// Raft id.
    pub id: u64,
    /// Node public key (32 bytes).
    pub public_key: [u8; 32],
    /// Where it listens, if this node should dial it.
    pub address: Option<SocketAddr>,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    allowed: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    limits: connection_limits::Behaviour,
    raft: request_response::Behaviour<FrameCodec>,
}

/// The raft loop's handle for sending messages.
#[derive(Clone)]
pub struct NetworkHandle {
    outbound: tokio::sync::mpsc::Sender<Vec<Message>>,
}

impl NetworkHandle {
    /// Queues messages for their peers without blocking; when the queue is full they are
    /// dropped and Raft's retransmission covers the loss.
    pub fn send(&self, messages: Vec<Message>) {
        if let Err(error) = self.outbound.try_send(messages) {
            tracing::warn!(%error, "raft messages dropped: network queue full");
        }
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
    commands: SyncSender<Command>,
) -> Result<NetworkHandle, NetworkError> {
    let mut secret = key.to_bytes();
    let keypair = identity::Keypair::ed25519_from_bytes(&mut secret)
        .map_err(|error| NetworkError::Config(format!("node key: {error}")))?;
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
        .with_max_pending_incoming(Some(PENDING_CONNECTIONS_MAX))
        .with_max_pending_outgoing(Some(PENDING_CONNECTIONS_MAX))
        .with_max_established(Some(CONNECTIONS_PER_PEER_MAX * members.len().max(1) as u32));
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
                request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
            ),
        })
        .map_err(|error| NetworkError::Transport(error.to_string()))?
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    let mut peers = PeerDirectory::default();
    for member in members.iter().filter(|member| member.id != me) {
        let peer = peer_id_of(&member.public_key)?;
        swarm.behaviour_mut().allowed.allow_peer(peer);
        if let Some(address) = member.address {
            swarm.add_peer_address(peer, multiaddr(address));
        }
        peers.by_peer.insert(peer, member.id);
        peers.by_node.insert(member.id, peer);
    }
    swarm
        .listen_on(multiaddr(listen))
        .map_err(|error| NetworkError::Transport(format!("listen on {listen}: {error}")))?;
    let (outbound, receiver) = tokio::sync::mpsc::channel(OUTBOUND_BATCHES_MAX);
    tokio::spawn(run(swarm, peers, receiver, commands));
    Ok(NetworkHandle { outbound })
}

#[derive(Default)]
struct PeerDirectory {
    by_peer: HashMap<PeerId, u64>,
    by_node: BTreeMap<u64, PeerId>,
}

async fn run(
    mut swarm: libp2p::Swarm<Behaviour>,
    peers: PeerDirectory,
    mut outbound: tokio::sync::mpsc::Receiver<Vec<Message>>,
    commands: SyncSender<Command>,
) {
    loop {
        tokio::select! {
            batch = outbound.recv() => {
                let Some(batch) = batch else { return };
                for message in batch {
                    let Some(peer) = peers.by_node.get(&message.to) else {
                        tracing::warn!(to = message.to, "raft message for a node outside the node set dropped");
                        continue;
                    };
                    match message.write_to_bytes() {
                        Ok(bytes) => {
                            swarm.behaviour_mut().raft.send_request(peer, bytes);
                        }
                        Err(error) => tracing::error!(%error, "raft message could not be encoded"),
                    }
                }
            }
            event = swarm.select_next_some() => handle_event(&mut swarm, &peers, &commands, event),
        }
    }
}

fn handle_event(
    swarm: &mut libp2p::Swarm<Behaviour>,
    peers: &PeerDirectory,
    commands: &SyncSender<Command>,
    event: SwarmEvent<BehaviourEvent>,
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
            let _ = swarm
                .behaviour_mut()
                .raft
                .send_response(channel, Vec::new());
            deliver(peers, commands, &peer, &request);
        }
        SwarmEvent::Behaviour(BehaviourEvent::Raft(Event::OutboundFailure {
            peer, error, ..
        })) => {
            tracing::debug!(%peer, %error, "raft message not delivered");
            if let Some(node) = peers.by_peer.get(&peer) {
                let _ = commands.try_send(Command::Unreachable(*node));
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Raft(Event::InboundFailure {
            peer, error, ..
        })) => {
            tracing::debug!(%peer, %error, "inbound raft stream failed");
        }
        SwarmEvent::IncomingConnectionError {
            send_back_addr,
            error,
            ..
        } => {
            tracing::warn!(address = %send_back_addr, %error, "incoming connection refused");
        }
        SwarmEvent::ConnectionEstablished { peer_id, .. } => {
            tracing::info!(peer = %peer_id, node_id = ?peers.by_peer.get(&peer_id), "peer connected");
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

/// Hands a peer's Raft message to the raft loop, after checking that it decodes and that it
/// claims to come from the node that sent it.
fn deliver(peers: &PeerDirectory, commands: &SyncSender<Command>, peer: &PeerId, bytes: &[u8]) {
    let Some(node) = peers.by_peer.get(peer) else {
        tracing::warn!(%peer, "raft message from a peer outside the node set dropped");
        return;
    };
    let message = match Message::parse_from_bytes(bytes) {
        Ok(message) => message,
        Err(error) => {
            tracing::warn!(node_id = node, %error, "malformed raft message dropped");
            return;
        }
    };
    if message.from != *node {
        tracing::warn!(
            node_id = node,
            claimed = message.from,
            "raft message claiming another sender dropped"
        );
        return;
    }
    match commands.try_send(Command::Step(Box::new(message))) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            tracing::warn!(node_id = node, "raft loop busy: message dropped")
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}
