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

/// Starts the network, commits transfer 1 through the leader, and returns the leader's index
/// and API.
async fn start_with_one_commit(
    network: &mut LocalNetwork,
    keys: &[ed25519_dalek::SigningKey],
) -> (usize, String) {
    network.start().await.unwrap();
    let leader_api = network.leader().await.unwrap();
    let leader = network
        .apis
        .iter()
        .position(|api| *api == leader_api)
        .unwrap();
    submit_until_committed(&Client::new(&leader_api), payment(network, keys, 0, 1)).await;
    (leader, leader_api)
}

/// Waits until every listed node reports the same height of at least `height_min` and the same head.
async fn converge(network: &LocalNetwork, nodes: &[usize], height_min: u64) -> (u64, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut heads = Vec::new();
        for index in nodes {
            if let Ok(status) = Client::new(&network.apis[*index]).status().await {
                assert_eq!(
                    status.divergence_alarms, 0,
                    "node {index} saw its chain differ from the leader's"
                );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_never_counts_toward_a_quorum() {
    // Proves that with two voters and an observer, losing one voter stops commits: were the
    // observer's vote counted, the remaining voter and the observer would form a majority.
    let folder = tempfile::tempdir().unwrap();
    let (mut network, parties) = LocalNetwork::create(folder.path(), 2, 1, 4).unwrap();
    let (leader, _) = start_with_one_commit(&mut network, &parties.keys).await;
    let survivor = 1 - leader;
    network.kill(leader);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let client = Client::new(&network.apis[survivor]);
    let envelope = payment(&network, &parties.keys, 1, 2);
    match client
        .submit(std::slice::from_ref(&envelope), true, Some(3_000))
        .await
    {
        Ok((status, response)) => assert_ne!(
            response.results[0].status, "committed",
            "committed without a quorum ({status})"
        ),
        Err(ClientError::Api { status, .. }) => assert_eq!(status, 503, "refused as retryable"),
        Err(error) => panic!("unexpected failure: {error}"),
    }
    let status = client.status().await.unwrap();
    assert_ne!(status.role, "leader", "one voter of two cannot lead");
    let observer = Client::new(&network.apis[2]).status().await.unwrap();
    // Block 1 was committed before the loss (a follower may not have learned it yet); nothing after.
    assert!(
        status.height <= 1 && observer.height <= 1,
        "nothing committed after the voter was lost"
    );
    network.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_an_unknown_key_is_refused() {
    // Proves the allow-list: a node whose key is not in the genesis node set cannot connect, so
    // its Raft messages never reach the members, and the refusal is logged.
    let folder = tempfile::tempdir().unwrap();
    let (mut network, _) = LocalNetwork::create(folder.path(), 2, 0, 2).unwrap();
    network.start().await.unwrap();
    let before = Client::new(&network.apis[0]).status().await.unwrap();
    let target = &network.genesis.nodes[0];
    let config_path = folder.path().join("node-1.toml");
    let config =
        tpw_node::config::NodeConfig::load(Some(&config_path), &Default::default()).unwrap();
    let member = tpw_node::network::Member {
        id: target.id,
        public_key: tpw_contracts::genesis::parse_public_key(&target.public_key).unwrap(),
        address: Some(config.p2p_address()),
        voter: true,
    };
    let stranger_key = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
    let stranger = tpw_contracts::genesis::parse_public_key(&hex::encode(
        stranger_key.verifying_key().to_bytes(),
    ))
    .unwrap();
    let members = [
        member,
        tpw_node::network::Member {
            id: 99,
            public_key: stranger,
            address: None,
            voter: true,
        },
    ];
    let (commands, inbox) = std::sync::mpsc::sync_channel(16);
    let commands = tpw_node::runtime::RaftInbox::new(commands.clone(), commands);
    let intruder = tpw_node::network::start(
        &stranger_key,
        "127.0.0.1:0".parse().unwrap(),
        99,
        &members,
        commands,
    )
    .await
    .unwrap();
    for term in [before.term + 5, before.term + 6] {
        let mut vote = tpw_consensus::raft_types::Message::default();
        vote.set_msg_type(tpw_consensus::raft_types::MessageType::MsgRequestVote);
        vote.from = 99;
        vote.to = target.id;
        vote.term = term;
        intruder.send(vec![vote]);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after = Client::new(&network.apis[0]).status().await.unwrap();
    assert_eq!(
        after.term, before.term,
        "the stranger's vote requests never reached raft"
    );
    while let Ok(command) = inbox.try_recv() {
        let step = matches!(command, tpw_node::runtime::Command::Step(_));
        // Wake tokens and unreachable reports are the stranger's own failed sends.
        assert!(!step, "no raft message came back to the stranger");
    }
    let log = std::fs::read_to_string(folder.path().join("node-1.log")).unwrap();
    assert!(
        log.contains("incoming connection refused"),
        "the refusal is logged: {log}"
    );
    network.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_is_replaced_and_catches_up_after_healing() {
    // Proves the admin partition: the cut-off leader stops committing, the majority elects a
    // new leader and commits, and after healing every node reaches the same head.
    let folder = tempfile::tempdir().unwrap();
    let (mut network, parties) = LocalNetwork::create(folder.path(), 3, 0, 4).unwrap();
    let (leader, _) = start_with_one_commit(&mut network, &parties.keys).await;
    network.partition(leader, true).await.unwrap();
    let majority: Vec<usize> = (0..3).filter(|index| *index != leader).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_leader = loop {
        if let Some(api) = network.leader_among(&majority).await {
            break api;
        }
        assert!(Instant::now() < deadline, "the majority elected no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for id in 2..12u128 {
        submit_until_committed(
            &Client::new(&new_leader),
            payment(&network, &parties.keys, (id % 4) as usize, id),
        )
        .await;
    }
    let isolated = Client::new(&network.apis[leader]).status().await.unwrap();
    assert!(
        isolated.height < 11,
        "the isolated node committed nothing new"
    );
    network.partition(leader, false).await.unwrap();
    converge(&network, &[0, 1, 2], 11).await;
    network.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_observer_catches_up_through_a_snapshot_on_a_large_ledger() {
    // Proves that on a ledger of 100,000 transfers whose voters compacted their Raft logs, an
    // observer that lost its data installs a verified snapshot, fetches every block below it,
    // and then reports the same head hash and state root as every voter (the drill checks
    // the heads, blocks 1, middle and head against the leader, and no divergence alarm).
    let report = tpw_testnet::drills::catch_up(100_000, 16).await.unwrap();
    eprintln!("{report:?}");
    assert!(report.snapshots_installed >= 1, "{report:?}");
    assert!(report.nodes_agree);
    assert!(report.height > 0);
}
