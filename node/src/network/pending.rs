//! A cap on handshakes in progress per remote address. libp2p's connection limits count
//! pending connections only in total, so a few silent TCP connections from one address could
//! hold every slot and keep a restarted peer out until their handshakes time out. Here each
//! address holds at most a few of them; a peer coming back from another address gets in.

use crate::limits::PENDING_CONNECTIONS_PER_ADDRESS_MAX;
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use std::collections::HashMap;
use std::net::IpAddr;
use std::task::{Context, Poll};

/// Inbound handshakes in progress, per remote IP address.
#[derive(Default)]
pub(super) struct PendingPerAddress {
    by_connection: HashMap<ConnectionId, IpAddr>,
    per_address: HashMap<IpAddr, u32>,
}

/// The IP address of a multiaddr (its first `/ip4` or `/ip6`).
fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    address.iter().find_map(|protocol| match protocol {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl PendingPerAddress {
    fn release(&mut self, connection: ConnectionId) {
        let Some(address) = self.by_connection.remove(&connection) else {
            return;
        };
        if let Some(count) = self.per_address.get_mut(&address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_address.remove(&address);
            }
        }
    }
}

impl NetworkBehaviour for PendingPerAddress {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(address) = ip_of(remote) else {
            return Ok(());
        };
        let count = self.per_address.entry(address).or_insert(0);
        if *count >= PENDING_CONNECTIONS_PER_ADDRESS_MAX {
            return Err(ConnectionDenied::new(std::io::Error::other(format!(
                "{address} already has {PENDING_CONNECTIONS_PER_ADDRESS_MAX} handshakes in progress"
            ))));
        }
        *count += 1;
        self.by_connection.insert(connection, address);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _peer: PeerId,
        _local: &Multiaddr,
        _remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.release(connection);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection: ConnectionId,
        _peer: PeerId,
        _address: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) = event {
            self.release(connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_a_few_handshakes_and_gets_them_back() {
        let mut pending = PendingPerAddress::default();
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/7200".parse().unwrap();
        let silent: Multiaddr = "/ip4/127.0.0.2/tcp/50000".parse().unwrap();
        let peer: Multiaddr = "/ip4/127.0.0.3/tcp/50001".parse().unwrap();
        let ids: Vec<ConnectionId> = (0..=PENDING_CONNECTIONS_PER_ADDRESS_MAX as usize)
            .map(|_| ConnectionId::new_unchecked(rand_id()))
            .collect();
        for id in &ids[..PENDING_CONNECTIONS_PER_ADDRESS_MAX as usize] {
            assert!(pending
                .handle_pending_inbound_connection(*id, &local, &silent)
                .is_ok());
        }
        let last = ids[PENDING_CONNECTIONS_PER_ADDRESS_MAX as usize];
        assert!(pending
            .handle_pending_inbound_connection(last, &local, &silent)
            .is_err());
        let other = ConnectionId::new_unchecked(rand_id());
        assert!(
            pending
                .handle_pending_inbound_connection(other, &local, &peer)
                .is_ok(),
            "another address still gets in"
        );
        pending.release(ids[0]);
        assert!(pending
            .handle_pending_inbound_connection(last, &local, &silent)
            .is_ok());
    }

    fn rand_id() -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}
