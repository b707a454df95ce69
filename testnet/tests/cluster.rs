//! Three voting nodes and a regulator's observer as real processes on loopback: they replicate
//! identical chains, followers forward submissions to the leader, the observer refuses partner
//! submissions, the network survives a SIGKILL of the leader without losing an acknowledged
//! transfer, a restarted node catches up to the same head, and a wiped voter refuses to start. The nodes run the `tpw` binary
//! of the same build: run through the README's test command (`--workspace` builds it).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};
use tpw_contracts::{Body, Operation, Transaction, TransferKind};
use tpw_node::client::{Client, ClientError};
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

/// Submits one envelope and waits for its commit, retrying what the API calls retryable (503),
/// as a client would; returns the number of retries.
async fn submit_until_committed(node: &Client, envelope: Vec<u8>) -> usize {
    for retries in 0..50 {
        match node
            .submit(std::slice::from_ref(&envelope), true, None)
            .await
        {
            Ok((200, response)) if response.results[0].status == "committed" => return retries,
            Ok((status, response)) => panic!("unexpected answer {status}: {response:?}"),
            Err(ClientError::Api {
                status: 503,
                message,
                ..
            }) => {
                eprintln!("retryable: {message}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("submission failed: {error}"),
        }
    }
    panic!("no commit after 50 retries");
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
async fn voters_and_an_observer_replicate_forward_and_survive_losing_the_leader() {
    // Proves replication, forwarding, observer refusal, failover with no acknowledged loss, and catch-up after restart.
    let folder = tempfile::tempdir().unwrap();
    let (mut network, parties) = LocalNetwork::create(folder.path(), 3, 1, 8).unwrap();
    network.start().await.unwrap();
    let leader_api = network.leader().await.unwrap();
    let leader = network
        .apis
        .iter()
        .position(|api| *api == leader_api)
        .unwrap();
    let client = Client::new(&leader_api);
    let follower = Client::new(&network.apis[(leader + 1) % 3]);
    let mut acknowledged = Vec::new();
    let mut retries = 0;
    for id in 0..40u128 {
        let from = (id % 8) as usize;
        // Half go to a follower, which forwards them to the leader and answers once it applied them.
        let node = if id % 2 == 0 { &client } else { &follower };
        retries += submit_until_committed(node, payment(&network, &parties.keys, from, id)).await;
        acknowledged.push((from, id));
    }
    let (height, _) = converge(&network, &[0, 1, 2, 3], 40).await;
    let observer = Client::new(&network.apis[3]);
    match observer
        .submit(&[payment(&network, &parties.keys, 0, 999)], true, None)
        .await
    {
        Err(ClientError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (403, "observer_regulators_only"))
        }
        other => panic!("the observer accepted a partner submission: {other:?}"),
    }

    network.kill(leader);
    let voters_left: Vec<usize> = (0..3).filter(|index| *index != leader).collect();
    let killed_at = Instant::now();
    let deadline = killed_at + Duration::from_secs(30);
    let new_leader = loop {
        if let Some(api) = network.leader_among(&voters_left).await {
            break api;
        }
        assert!(Instant::now() < deadline, "no new leader after the kill");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let client = Client::new(&new_leader);
    for id in 40..60u128 {
        let from = (id % 8) as usize;
        retries +=
            submit_until_committed(&client, payment(&network, &parties.keys, from, id)).await;
        acknowledged.push((from, id));
    }
    eprintln!(
        "first commit after the leader's SIGKILL: {:?}; retries {retries}",
        killed_at.elapsed()
    );
    let mut alive = voters_left.clone();
    alive.push(3);
    converge(&network, &alive, height + 20).await;

    network.restart(leader).await.unwrap();
    let (_, head) = converge(&network, &[0, 1, 2, 3], height + 20).await;
    for index in 0..4 {
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

    let wiped = (leader + 1) % 3;
    let (status, log) = network.restart_wiped(wiped).await.unwrap();
    assert!(
        !status.success(),
        "a wiped voter must not start under its old identity"
    );
    assert!(
        log.contains("--new-node"),
        "it says why and what to do: {log}"
    );
    network.stop();
}
