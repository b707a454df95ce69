//! Governance changes the running network's node set, as real processes on loopback under
//! steady load: a voter and an observer join (the voter as a learner first), a node's key is
//! rotated through a proposal and a restart of that node, and the leader itself is removed
//! (it hands leadership over first). Every acknowledged transfer is on every remaining node, and no restart of
//! the other nodes is needed. The nodes run the `tpw` binary of the same build.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tpw_contracts::genesis::NodeRole;
use tpw_contracts::governance::GovernanceAction;
use tpw_contracts::ops::Transfer;
use tpw_contracts::{Body, Operation, Transaction, TransferKind};
use tpw_node::client::Client;
use tpw_testnet::drills::converge;
use tpw_testnet::network::{partner_account, partner_id, LocalNetwork, LOAD_ASSET};

/// Longest wait for one membership step to show.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until `api` reports this Raft configuration.
async fn wait_configuration(api: &str, voters: &[u64], learners: &[u64]) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Ok(status) = Client::new(api).status().await {
            if status.voters == voters && status.learners == learners {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "configuration stayed voters {:?} learners {:?}, wanted {voters:?} {learners:?}",
                status.voters,
                status.learners
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The API of the leader among `nodes`.
async fn leader_of(network: &LocalNetwork, nodes: &[usize]) -> String {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(api) = network.leader_among(nodes).await {
            return api;
        }
        assert!(Instant::now() < deadline, "no leader among {nodes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Steady load: posted transfers through whichever API `target` names, one at a time, each
/// retried until committed; bounded in count and time. Returns (partner, id) acknowledged.
fn start_load(
    network: &LocalNetwork,
    keys: Vec<ed25519_dalek::SigningKey>,
    target: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(usize, u128)>> {
    let network_id = network.genesis.compute_network_id().unwrap();
    tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        let started = Instant::now();
        let mut id = 0u128;
        while !stop.load(Ordering::Relaxed)
            && acknowledged.len() < 20_000
            && started.elapsed() < Duration::from_secs(600)
        {
            id += 1;
            let from = (id % keys.len() as u128) as usize;
            let operation = Operation::Transfer(Transfer {
                id,
                debit_account: partner_account(from),
                credit_account: partner_account((from + 1) % keys.len()),
                asset: LOAD_ASSET,
                amount: 1,
                kind: TransferKind::Posted,
                reference: 0,
            });
            let envelope = Transaction::sign(
                network_id,
                &keys[from],
                tpw_node::client::fresh_validity(),
                Body::single(operation),
            )
            .to_bytes();
            for _ in 0..200 {
                let api = target.lock().unwrap().clone();
                match Client::new(&api)
                    .submit(std::slice::from_ref(&envelope), true, None)
                    .await
                {
                    Ok((200, response)) if response.results[0].status == "committed" => {
                        acknowledged.push((from, id));
                        break;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        acknowledged
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_grows_rekeys_and_shrinks_the_running_network() {
    // Proves add voter, add observer, node key rotation and voter removal through approved
    // proposals, under load, with no acknowledged transfer lost and one chain on every node.
    let folder = tempfile::tempdir().unwrap();
    let (mut network, parties) = LocalNetwork::create(folder.path(), 3, 0, 4).unwrap();
    network.start().await.unwrap();
    let target = Arc::new(Mutex::new(network.apis[2].clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(
        &network,
        parties.keys.clone(),
        Arc::clone(&target),
        Arc::clone(&stop),
    );

    // A fourth voter joins: a learner first, promoted once caught up.
    let fourth = network.prepare_node().unwrap();
    let api = leader_of(&network, &[0, 1, 2]).await;
    network
        .decide(
            &api,
            1,
            GovernanceAction::AddNode {
                node: fourth.id,
                name: "bank-4".into(),
                public_key: fourth.public_key,
                role: NodeRole::Voter,
                address: fourth.p2p_address.clone(),
            },
        )
        .await
        .unwrap();
    network.start_node(fourth.index).await.unwrap();
    wait_configuration(&api, &[1, 2, 3, 4], &[]).await;
    wait_configuration(&network.apis[fourth.index], &[1, 2, 3, 4], &[]).await;
    let nodes = Client::new(&api).nodes().await.unwrap();
    assert_eq!(nodes.nodes.len(), 4);
    assert!(nodes.nodes[3].active);

    // A regulator's observer joins as a learner.
    let observer = network.prepare_node().unwrap();
    // It will start from node 1's ledger as it stood at a chosen height, exported from the
    // running node and restored from the archive before the node is added (a restored folder
    // refuses every node its source records): it fetches only what came after, through
    // the Raft log from the position recorded for that height (no snapshot).
    let archive = folder.path().join("ledger.tpwa");
    let (exported, _) = tpw_testnet::dr::run_tpw(&[
        "export".as_ref(),
        "--data-dir".as_ref(),
        folder.path().join("node-1").as_os_str(),
        "--out".as_ref(),
        archive.as_os_str(),
    ])
    .unwrap();
    let head = exported["height"].as_u64().unwrap();
    let (chosen, chosen_hash) = tpw_testnet::dr::middle_block(&archive, head).unwrap();
    let (restored, _) = tpw_testnet::dr::run_tpw(&[
        "restore".as_ref(),
        "--archive".as_ref(),
        archive.as_os_str(),
        "--to-height".as_ref(),
        chosen.to_string().as_ref(),
        "--data-dir".as_ref(),
        folder
            .path()
            .join(format!("node-{}", observer.id))
            .as_os_str(),
        "--genesis".as_ref(),
        folder.path().join("genesis.json").as_os_str(),
    ])
    .unwrap();
    assert_eq!(restored["height"].as_u64().unwrap(), chosen);
    assert_eq!(restored["head_hash"], hex::encode(chosen_hash));
    let api = leader_of(&network, &[0, 1, 2, 3]).await;
    network
        .decide(
            &api,
            2,
            GovernanceAction::AddNode {
                node: observer.id,
                name: "regulator-obs".into(),
                public_key: observer.public_key,
                role: NodeRole::Observer,
                address: observer.p2p_address.clone(),
            },
        )
        .await
        .unwrap();
    network.start_node(observer.index).await.unwrap();
    wait_configuration(&api, &[1, 2, 3, 4], &[observer.id]).await;
    let observed = Client::new(&network.apis[observer.index]);
    let leader_height = Client::new(&api).status().await.unwrap().height;
    let started = Instant::now();
    while observed.status().await.unwrap().height < leader_height {
        assert!(
            started.elapsed() < STEP_TIMEOUT,
            "the restored observer did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = observed.status().await.unwrap();
    assert_eq!(status.snapshots_installed, 0);
    assert_eq!(status.blocks_missing, 0);

    // The operator drains the leader: another voter leads, and a follower refuses to step
    // down.
    let api = leader_of(&network, &[0, 1, 2, 3]).await;
    let leading = network.apis.iter().position(|a| *a == api).unwrap();
    let follower = (0..4).find(|index| *index != leading).unwrap();
    let refused = network.step_down(follower).await.unwrap_err().to_string();
    assert!(refused.contains("not_leader"), "{refused}");
    let successor = network.step_down(leading).await.unwrap();
    assert_ne!(successor, leading as u64 + 1);
    let status = Client::new(&network.apis[successor as usize - 1])
        .status()
        .await
        .unwrap();
    assert_eq!(status.role, "leader");

    // Node 2's key is rotated: peers admit only the new key from the deciding block; node 2
    // restarts with it on its own data.
    let rotated = network.rotate_node_key(1).unwrap();
    let api = leader_of(&network, &[0, 1, 2, 3]).await;
    network
        .decide(
            &api,
            3,
            GovernanceAction::RotateNodeKey {
                node: 2,
                public_key: rotated,
            },
        )
        .await
        .unwrap();
    // Until it restarts, node 2 runs on its old key, which its peers no longer admit: it falls
    // behind while the others commit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stuck_at = Client::new(&network.apis[1]).status().await.unwrap().height;
    let deadline = Instant::now() + STEP_TIMEOUT;
    // Node 3 is never the rotated node (node 2 may have been the leader that decided it).
    while Client::new(&network.apis[2]).status().await.unwrap().height < stuck_at + 5 {
        assert!(Instant::now() < deadline, "the others stopped committing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        Client::new(&network.apis[1]).status().await.unwrap().height,
        stuck_at,
        "a node on a rotated-out key still receives blocks"
    );
    network.restart(1).await.unwrap();
    let height = Client::new(&api).status().await.unwrap().height;
    converge(&network, &[0, 1, 2, 3, 4], height).await.unwrap();
    let nodes = Client::new(&network.apis[1]).nodes().await.unwrap();
    assert_eq!(nodes.nodes[1].public_key, hex::encode(rotated));

    // The leader itself leaves: it hands leadership to a staying voter, which removes it; the
    // rest keep committing.
    let api = leader_of(&network, &[0, 1, 2, 3]).await;
    let leaving = network.apis.iter().position(|known| *known == api).unwrap();
    let staying: Vec<usize> = (0..4).filter(|index| *index != leaving).collect();
    *target.lock().unwrap() = network.apis[staying[0]].clone();
    network
        .decide(
            &api,
            4,
            GovernanceAction::RemoveNode {
                node: leaving as u64 + 1,
            },
        )
        .await
        .unwrap();
    let api = leader_of(&network, &staying).await;
    let voters: Vec<u64> = staying.iter().map(|index| *index as u64 + 1).collect();
    wait_configuration(&api, &voters, &[observer.id]).await;
    network.kill(leaving);
    let height = Client::new(&api).status().await.unwrap().height;
    let deadline = Instant::now() + STEP_TIMEOUT;
    while Client::new(&api).status().await.unwrap().height < height + 3 {
        assert!(
            Instant::now() < deadline,
            "no commits without the removed node (height {height})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let acknowledged = load.await.unwrap();
    let remaining: Vec<usize> = staying.iter().copied().chain([observer.index]).collect();
    let status = converge(&network, &remaining, height + 3).await.unwrap();
    assert!(acknowledged.len() > 20, "{} transfers", acknowledged.len());

    // Every acknowledged transfer is on every remaining node, the observer included.
    let regulator = tpw_testnet::network::regulator_key(&network.dir).unwrap();
    for index in remaining {
        let reader = Client::new(&network.apis[index]).with_key(&regulator);
        for (from, id) in &acknowledged {
            let found = reader.transfer(partner_id(*from), *id).await.unwrap();
            assert!(found.is_some(), "node {} lacks transfer {id}", index + 1);
        }
    }
    eprintln!(
        "{} transfers acknowledged across the changes, final height {}",
        acknowledged.len(),
        status.height
    );
}
