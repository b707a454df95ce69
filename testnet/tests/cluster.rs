//! Three voting nodes and a regulator's observer as real processes on loopback: they replicate
//! identical chains, followers forward submissions to the leader, the observer refuses partner
//! submissions, the network survives a SIGKILL of the leader without losing an acknowledged
//! transfer, a restarted node catches up to the same head, and a wiped voter refuses to start. The nodes run the `tpw` binary
//! of the same build: run through the README's test command (`--workspace` builds it).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};
use tpw_contracts::ops::{SetWebhook, Transfer};
use tpw_contracts::{Body, Operation, Transaction, TransferKind};
use tpw_node::client::{Client, ClientError};
use tpw_testnet::network::{partner_account, partner_id, LocalNetwork, LOAD_ASSET};
use tpw_testnet::workload::{checker_key, contract_step, Recent, Stream};

fn payment(
    network: &LocalNetwork,
    keys: &[ed25519_dalek::SigningKey],
    from: usize,
    id: u128,
) -> Vec<u8> {
    let network_id = network.genesis.compute_network_id().unwrap();
    let to = (from + 1) % keys.len();
    let operation = Operation::Transfer(Transfer {
        id,
        debit_account: partner_account(from),
        credit_account: partner_account(to),
        asset: LOAD_ASSET,
        amount: 1,
        kind: TransferKind::Posted,
        reference: 0,
    });
    Transaction::sign(
        network_id,
        &keys[from],
        tpw_node::client::fresh_validity(),
        Body::single(operation),
    )
    .to_bytes()
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

/// The current leader's index and API.
async fn find_leader(network: &LocalNetwork) -> (usize, String) {
    let api = network.leader().await.unwrap();
    let index = network.apis.iter().position(|known| *known == api).unwrap();
    (index, api)
}

/// SIGKILLs voter `leader` (of three) and waits for another voter to lead; returns its API and
/// when the kill happened.
async fn kill_leader(network: &mut LocalNetwork, leader: usize) -> (String, Instant) {
    network.kill(leader);
    let voters_left: Vec<usize> = (0..3).filter(|index| *index != leader).collect();
    let killed_at = Instant::now();
    let deadline = killed_at + Duration::from_secs(30);
    loop {
        if let Some(api) = network.leader_among(&voters_left).await {
            return (api, killed_at);
        }
        assert!(Instant::now() < deadline, "no new leader after the kill");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_and_an_observer_replicate_forward_and_survive_losing_the_leader() {
    // Proves replication, forwarding, observer refusal, failover with no acknowledged loss, and catch-up after restart.
    let folder = tempfile::tempdir().unwrap();
    let (mut network, parties) = LocalNetwork::create(folder.path(), 3, 1, 8).unwrap();
    network.start().await.unwrap();
    let (leader, leader_api) = find_leader(&network).await;
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

    let (new_leader, killed_at) = kill_leader(&mut network, leader).await;
    let voters_left: Vec<usize> = (0..3).filter(|index| *index != leader).collect();
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
    let regulator = tpw_testnet::network::regulator_key(&network.dir).unwrap();
    for index in 0..4 {
        let node = Client::new(&network.apis[index]).with_key(&regulator);
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
    // Not ready without a leader: a load balancer sends its traffic elsewhere.
    let ready = tpw_node::tls::client::http_builder()
        .build()
        .unwrap()
        .get(format!("{}/v1/ready", network.apis[survivor]))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(
        body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|reason| reason == "no_leader"),
        "{body}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_contract_mixes_leave_every_replica_on_one_state_root() {
    // Proves determinism across replicas through the real network: a seeded random mix of every
    // contract type (transfers, two-phase, linked batches, escrow, exchange, netting with
    // members and credit limits, reversals, limits, maker-checker, holds), signed by every role
    // and submitted to all three voters, leaves the voters and the observer on one head hash
    // and one state root, with every ledger rejection recorded in a receipt.
    use std::collections::{BTreeMap, BTreeSet};
    use tpw_contracts::ResultCode;
    let seed = std::env::var("TPW_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0x5eed_c0de_u64);
    eprintln!("contract mix seed {seed} (replay with TPW_SEED={seed})");
    let folder = tempfile::tempdir().unwrap();
    let partners = 4;
    let (mut network, parties) = LocalNetwork::create(folder.path(), 3, 1, partners).unwrap();
    network.start().await.unwrap();
    network.leader().await.unwrap();
    let network_id = network.genesis.compute_network_id().unwrap();
    let mut signers = BTreeMap::new();
    for (id, file) in [
        (1u64, "bank-1"),
        (2, "bank-2"),
        (3, "regulator"),
        (4, "operator"),
    ] {
        let path = folder.path().join("keys").join(format!("{file}.json"));
        signers.insert(id, tpw_node::keys::load(&path).unwrap());
    }
    for (index, key) in parties.keys.iter().enumerate() {
        signers.insert(partner_id(index), key.clone());
    }
    let mut stream = Stream(seed | 1);
    let mut recent = Recent::default();
    let mut outcomes: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let steps = 800;
    for _ in 0..steps {
        let now_ms = tpw_node::runtime::now_ms();
        let (kind, signer, checker, body) =
            contract_step(&mut stream, &mut recent, now_ms, partners);
        let key = match checker {
            Some(partner) => checker_key(partner),
            None => signers[&signer].clone(),
        };
        let envelope =
            Transaction::sign(network_id, &key, tpw_node::client::fresh_validity(), body)
                .to_bytes();
        let voter = Client::new(&network.apis[stream.below(3) as usize]);
        let mut outcome = None;
        for _ in 0..50 {
            match voter
                .submit(std::slice::from_ref(&envelope), true, Some(10_000))
                .await
            {
                Ok((_, response)) if response.results[0].status == "committed" => {
                    let code = response.results[0].code.unwrap();
                    outcome = Some(code.name().to_string());
                    break;
                }
                Ok((status, response)) => panic!("unexpected answer {status}: {response:?}"),
                Err(ClientError::Api { status: 503, .. }) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // Refused at admission (say, an unregistered checker key or a partner's hold).
                Err(ClientError::Api { status, code, .. }) if (400..500).contains(&status) => {
                    outcome = Some(format!("admission:{code}"));
                    break;
                }
                Err(error) => panic!("submission failed: {error}"),
            }
        }
        let outcome = outcome.expect("no commit after 50 retries");
        outcomes.entry(kind).or_default().insert(outcome);
    }
    eprintln!("outcomes by kind: {outcomes:?}");
    let applied = outcomes
        .values()
        .filter(|codes| codes.contains(ResultCode::Ok.name()))
        .count();
    assert!(
        applied >= 15,
        "too few operation kinds applied for the mix to mean much: {outcomes:?}"
    );
    let distinct: BTreeSet<&String> = outcomes.values().flatten().collect();
    assert!(
        distinct.len() >= 20,
        "too few distinct outcomes: {distinct:?}"
    );
    let (height, _) = converge(&network, &[0, 1, 2, 3], 1).await;
    eprintln!("all four nodes at height {height} on one head and state root");

    // A partner's event stream is the same on every node: read it whole from the observer,
    // then read half from one voter and resume from the last cursor on another.
    let partner = Client::new(&network.apis[3]).with_key(&parties.keys[0]);
    let mut reference = Vec::new();
    let mut stream = partner.events(Some("0")).await.unwrap();
    while let Ok(next) = tokio::time::timeout(Duration::from_secs(3), stream.next()).await {
        reference.push(next.unwrap().expect("the stream stays open"));
    }
    drop(stream);
    assert!(
        reference.len() > 20,
        "partner 0 has {} events",
        reference.len()
    );
    let half = reference.len() / 2;
    let mut joined = Vec::new();
    let first = Client::new(&network.apis[0]).with_key(&parties.keys[0]);
    let mut stream = first.events(Some("0")).await.unwrap();
    while joined.len() < half {
        joined.push(stream.next().await.unwrap().unwrap());
    }
    drop(stream);
    let cursor = joined.last().unwrap().cursor.clone();
    let second = Client::new(&network.apis[1]).with_key(&parties.keys[0]);
    let mut stream = second.events(Some(&cursor)).await.unwrap();
    while joined.len() < reference.len() {
        joined.push(stream.next().await.unwrap().unwrap());
    }
    assert_eq!(
        joined, reference,
        "the same events, once each, across nodes"
    );
    network.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_deliveries_resume_on_a_new_leader() {
    // Proves one node (the leader) delivers a partner's events to its endpoint, and that after
    // the leader is SIGKILLed the new leader resumes from the replicated progress: the receiver
    // ends with a delivery for every one of the partner's events, repeats being only re-sent
    // deliveries with the same delivery id.
    use tpw_testnet::receiver::WebhookReceiver;
    let folder = tempfile::tempdir().unwrap();
    let (mut network, parties) = LocalNetwork::create(folder.path(), 3, 0, 4).unwrap();
    network.start().await.unwrap();
    let (leader, leader_api) = find_leader(&network).await;
    let network_id = network.genesis.compute_network_id().unwrap();
    let receiver = WebhookReceiver::start(tpw_testnet::network::free_port().unwrap())
        .await
        .unwrap();
    let register = Transaction::sign(
        network_id,
        &parties.keys[0],
        tpw_node::client::fresh_validity(),
        Body::single(Operation::SetWebhook(SetWebhook {
            endpoint: 0,
            url: receiver.url(),
        })),
    )
    .to_bytes();
    submit_until_committed(&Client::new(&leader_api), register).await;
    for id in 1..=20u128 {
        let envelope = payment(&network, &parties.keys, (id % 2) as usize, id);
        submit_until_committed(&Client::new(&leader_api), envelope).await;
    }
    // Partner 0 pays (even ids) and is paid by partner 3 (odd ids from partner 1 go to 2).
    assert!(receiver.wait_for(10, Duration::from_secs(20)).await >= 10);
    let (new_leader, _) = kill_leader(&mut network, leader).await;
    for id in 21..=40u128 {
        let envelope = payment(&network, &parties.keys, (id % 2) as usize, id);
        submit_until_committed(&Client::new(&new_leader), envelope).await;
    }
    // Every event of partner 0 after the registration, as its stream tells them.
    let partner = Client::new(&new_leader).with_key(&parties.keys[0]);
    let mut stream = partner.events(Some("0")).await.unwrap();
    let mut expected = std::collections::BTreeSet::new();
    let mut registered = false;
    while let Ok(next) = tokio::time::timeout(Duration::from_secs(3), stream.next()).await {
        let event = next.unwrap().unwrap();
        if registered {
            expected.insert(format!("{}.0.{}", partner_id(0), event.cursor));
        }
        if matches!(
            event.operation,
            Some(tpw_contracts::view::OperationView::SetWebhook(_))
        ) {
            registered = true;
        }
    }
    assert_eq!(expected.len(), 20, "partner 0 paid 20 times");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let received: std::collections::BTreeSet<String> = receiver
            .deliveries()
            .into_iter()
            .map(|delivery| delivery.delivery_id)
            .collect();
        if received == expected {
            break;
        }
        assert!(
            received.is_subset(&expected),
            "unexpected deliveries: {:?}",
            received.difference(&expected).collect::<Vec<_>>()
        );
        assert!(
            Instant::now() < deadline,
            "missing after the failover: {:?}",
            expected.difference(&received).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = receiver.deliveries().len();
    eprintln!("{total} deliveries for 20 events ({} repeated)", total - 20);
    network.stop();
}

/// Sends a signal (`-STOP`, `-CONT`) to a node process.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_a_resubmission_again_after_its_client_gave_up_on_a_frozen_leader() {
    // Proves, with a real frozen leader (SIGSTOP): a follower's forward ends within the
    // request's timeout_ms; a client that gives up during the forward leaves nothing behind, so
    // resubmitting the same envelope to the same follower gets it committed under the next
    // leader while the old one is still frozen; and it is ordered once.
    let folder = tempfile::tempdir().unwrap();
    let (mut network, parties) = LocalNetwork::create(folder.path(), 3, 0, 4).unwrap();
    let (leader, _) = start_with_one_commit(&mut network, &parties.keys).await;
    let follower_api = network.apis[(leader + 1) % 3].clone();
    let abandoned = payment(&network, &parties.keys, 1, 2);
    let bounded = payment(&network, &parties.keys, 2, 3);
    let body = |envelope: &[u8], timeout_ms: u64| {
        serde_json::json!({
            "transactions": [hex::encode(envelope)],
            "wait": true,
            "timeout_ms": timeout_ms,
        })
        .to_string()
    };
    let url = format!("{follower_api}/v1/transactions");
    let impatient = tpw_node::tls::client::http_builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let patient = tpw_node::tls::client::http_builder().build().unwrap();
    let pid = network.pid(leader).unwrap();
    signal(pid, "-STOP");
    let started = Instant::now();
    let give_up = impatient
        .post(&url)
        .header("content-type", "application/json")
        .body(body(&abandoned, 30_000))
        .send();
    let wait_bounded = async {
        let answer = patient
            .post(&url)
            .header("content-type", "application/json")
            .body(body(&bounded, 2_000))
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), started.elapsed())
    };
    let (gave_up, (status, took)) = tokio::join!(give_up, wait_bounded);
    assert!(
        gave_up.is_err(),
        "the impatient client gave up: {gave_up:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "a request with timeout_ms 2000 took {took:?} (answered {status})"
    );

    // The old leader stays frozen: the resubmission must go to the next one.
    let follower = Client::new(&follower_api);
    let deadline = Instant::now() + Duration::from_secs(40);
    let committed = loop {
        match follower
            .submit(std::slice::from_ref(&abandoned), true, Some(3_000))
            .await
        {
            Ok((200, response)) if response.results[0].status == "committed" => {
                break response.results[0].clone();
            }
            other => eprintln!("resubmitted: {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the resubmitted transfer never committed through the follower"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    submit_until_committed(&follower, bounded).await;
    signal(pid, "-CONT");
    let (height, _) = converge(&network, &[0, 1, 2], 3).await;
    // The transfer settled at the height the resubmission was told.
    let regulator = tpw_testnet::network::regulator_key(&network.dir).unwrap();
    let record = Client::new(&follower_api)
        .with_key(&regulator)
        .transfer(partner_id(1), 2)
        .await
        .unwrap()
        .expect("the transfer is recorded");
    assert_eq!(
        (record.transfer.height, record.transfer.result),
        (committed.height.unwrap(), tpw_contracts::ResultCode::Ok),
        "{record:?}"
    );
    assert!(height >= record.transfer.height);
    network.stop();
}
