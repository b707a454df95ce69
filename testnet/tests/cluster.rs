//! Three voting nodes as real processes on loopback: they replicate identical chains, survive
//! a SIGKILL of the leader without losing an acknowledged transfer, and a restarted node
//! catches up to the same head.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};
use tpw_contracts::{Body, Operation, Transaction, TransferKind};
use tpw_node::client::Client;
use tpw_testnet::network::{partner_account, partner_id, LocalNetwork, LOAD_ASSET};

fn payment(
    network: &LocalNetwork,
    keys: &[ed25519_dalek::SigningKey],
    from: usize,
    id: u128,
) -> Vec<u8> {
    let network_id = network.genesis.compute_network_id().unwrap();
    let to = (from + 1) % keys.len();
    let operation = Operation::Transfer {
        id,
        debit_account: partner_account(from),
        credit_account: partner_account(to),
        asset: LOAD_ASSET,
        amount: 1,
        kind: TransferKind::Posted,
        reference: 0,
    };
    Transaction::sign(network_id, &keys[from], Body::single(operation)).to_bytes()
}

/// Waits until every listed node reports the same height of at least `height_min` and the same head.
async fn converge(network: &LocalNetwork, nodes: &[usize], height_min: u64) -> (u64, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut heads = Vec::new();
        for index in nodes {
            if let Ok(status) = Client::new(&network.apis[*index]).status().await {
                heads.push((status.height, status.head_hash, status.state_root));
            }
        }
        if heads.len() == nodes.len()
            && heads[0].0 >= height_min
            && heads.iter().all(|head| *head == heads[0])
        {
            return (heads[0].0, heads[0].1.clone());
        }
        assert!(
            Instant::now() < deadline,
            "nodes {nodes:?} did not converge: {heads:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_replicate_and_survive_losing_the_leader() {
    // Proves replication over the peer transport, leader failover with no acknowledged loss, and catch-up after restart.
    let folder = tempfile::tempdir().unwrap();
    let (mut network, parties) = LocalNetwork::create(folder.path(), 3, 8).unwrap();
    network.start().await.unwrap();
    let leader_api = network.leader().await.unwrap();
    let leader = network
        .apis
        .iter()
        .position(|api| *api == leader_api)
        .unwrap();
    let client = Client::new(&leader_api);
    let mut acknowledged = Vec::new();
    for id in 0..40u128 {
        let from = (id % 8) as usize;
        let (status, response) = client
            .submit(&[payment(&network, &parties.keys, from, id)], true, None)
            .await
            .unwrap();
        assert_eq!(
            (status, response.results[0].status.as_str()),
            (200, "committed")
        );
        acknowledged.push((from, id));
    }
    let (height, _) = converge(&network, &[0, 1, 2], 40).await;

    network.kill(leader);
    let survivors: Vec<usize> = (0..3).filter(|index| *index != leader).collect();
    let killed_at = Instant::now();
    let deadline = killed_at + Duration::from_secs(30);
    let new_leader = loop {
        if let Some(api) = network.leader_among(&survivors).await {
            break api;
        }
        assert!(Instant::now() < deadline, "no new leader after the kill");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let client = Client::new(&new_leader);
    for id in 40..60u128 {
        let from = (id % 8) as usize;
        let (status, _) = client
            .submit(&[payment(&network, &parties.keys, from, id)], true, None)
            .await
            .unwrap();
        assert_eq!(status, 200);
        acknowledged.push((from, id));
    }
    eprintln!(
        "first commit after the leader's SIGKILL: {:?}",
        killed_at.elapsed()
    );
    converge(&network, &survivors, height + 20).await;

    network.restart(leader).await.unwrap();
    let (_, head) = converge(&network, &[0, 1, 2], height + 20).await;
    for index in 0..3 {
        let node = Client::new(&network.apis[index]);
        for (from, id) in &acknowledged {
            let transfer = node.transfer(partner_id(*from), *id).await.unwrap();
            assert!(
                transfer.is_some(),
                "node {index} lacks acknowledged transfer {from}/{id}"
            );
        }
    }
    assert!(!head.is_empty());
    network.stop();
}
