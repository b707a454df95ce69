//! Three replicas of the real driver and ledger in one process, with an in-memory network:
//! they commit identical chains, and losing the leader loses nothing committed.
#![allow(clippy::unwrap_used)] // Test helpers outside #[test] functions may unwrap too.

use ed25519_dalek::SigningKey;
use std::collections::VecDeque;
use tpw_consensus::raft_types::Message;
use tpw_consensus::{
    classify, persist_action, Action, Driver, DriverConfig, EntryKind, MemLogStore,
};
use tpw_contracts::genesis::{
    GenesisAccount, GenesisAsset, GenesisFunding, GenesisNode, GenesisParticipant, NodeRole,
};
use tpw_contracts::model::Role;
use tpw_contracts::ops::Transfer;
use tpw_contracts::{
    apply_block, BlockHeader, Body, ChainHead, Genesis, MemStore, Operation, Proposal, ResultCode,
    Transaction, TransferKind,
};

struct Replica {
    driver: Driver<MemLogStore>,
    ledger: MemStore,
    head: ChainHead,
    chain: Vec<BlockHeader>,
    codes: Vec<ResultCode>,
    alive: bool,
}

struct Cluster {
    replicas: Vec<Replica>,
    network: VecDeque<Message>,
    /// Node pairs that cannot reach each other (either way).
    cut: Vec<(u64, u64)>,
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn genesis() -> Genesis {
    let participant = |id: u64, role, bank| GenesisParticipant {
        id,
        name: format!("p{id}"),
        role,
        bank,
        keys: vec![hex::encode(key(id as u8).verifying_key().to_bytes())],
    };
    Genesis {
        network_name: "cluster-test".into(),
        genesis_time_ms: 1_000,
        participants: vec![
            participant(1, Role::BankMember, None),
            participant(2, Role::SettlementPartner, Some(1)),
            participant(3, Role::SettlementPartner, Some(1)),
        ],
        assets: vec![GenesisAsset {
            id: 1,
            code: "EUR".into(),
            scale: 2,
            issuer: 1,
            issuance_account: 100,
            supply_cap: None,
        }],
        accounts: vec![
            GenesisAccount {
                id: 200,
                owner: 2,
                asset: 1,
                flags: vec!["debits_must_not_exceed_credits".into()],
            },
            GenesisAccount {
                id: 300,
                owner: 3,
                asset: 1,
                flags: vec!["debits_must_not_exceed_credits".into()],
            },
        ],
        funding: vec![GenesisFunding {
            account: 200,
            amount: 1_000_000,
        }],
        nodes: (1..=3)
            .map(|id| GenesisNode {
                id,
                name: format!("bank-{id}"),
                public_key: hex::encode(key(100 + id as u8).verifying_key().to_bytes()),
                role: NodeRole::Voter,
            })
            .collect(),
        network_id: None,
    }
}

impl Cluster {
    fn new() -> Self {
        let state = genesis().build().unwrap();
        let replicas = (1..=3u64)
            .map(|id| {
                let config = DriverConfig {
                    id,
                    election_ticks: 10,
                    heartbeat_ticks: 2,
                    applied_index: 0,
                    fixed_election_ticks: Some(10 + 3 * id as usize),
                };
                let mut ledger = MemStore::default();
                ledger.apply_diff(&state.diff);
                Replica {
                    driver: Driver::new(&config, MemLogStore::new(vec![1, 2, 3], vec![])).unwrap(),
                    ledger,
                    head: state.head.clone(),
                    chain: Vec::new(),
                    codes: Vec::new(),
                    alive: true,
                }
            })
            .collect();
        Self {
            replicas,
            network: VecDeque::new(),
            cut: Vec::new(),
        }
    }

    fn process(&mut self, index: usize) {
        while let Some(actions) = self.replicas[index].driver.ready_actions() {
            self.execute(index, actions);
            let actions = self.replicas[index].driver.advance();
            self.execute(index, actions);
            self.replicas[index].driver.advance_apply();
        }
    }

    fn execute(&mut self, index: usize, actions: Vec<Action>) {
        let replica = &mut self.replicas[index];
        for action in actions {
            persist_action(replica.driver.store(), &action).unwrap();
            match action {
                Action::Send(messages) => self.network.extend(messages),
                Action::Apply(entries) => {
                    for entry in entries {
                        if let EntryKind::Block(proposal) = classify(&entry) {
                            let outcome =
                                apply_block(&replica.ledger, &replica.head, &proposal, &|_| false)
                                    .unwrap();
                            replica.ledger.apply_diff(&outcome.diff);
                            replica.head = outcome.head;
                            replica.chain.push(outcome.header);
                            replica
                                .codes
                                .extend(outcome.receipts.iter().map(|receipt| receipt.code));
                        }
                    }
                }
                Action::ApplySnapshot(_) => panic!("no snapshots without compaction"),
                Action::Persist { .. } | Action::PersistCommit(_) => {}
            }
        }
    }

    /// One round: every live replica ticks and works, then every message in flight is delivered.
    fn round(&mut self) {
        for index in 0..self.replicas.len() {
            if self.replicas[index].alive {
                self.replicas[index].driver.tick();
                self.process(index);
            }
        }
        let messages: Vec<Message> = self.network.drain(..).collect();
        for message in messages {
            let target = (message.to - 1) as usize;
            let source = (message.from - 1) as usize;
            let cut = self.cut.iter().any(|(a, b)| {
                (*a, *b) == (message.from, message.to) || (*b, *a) == (message.from, message.to)
            });
            if self.replicas[target].alive && self.replicas[source].alive && !cut {
                self.replicas[target].driver.step(message).unwrap();
                self.process(target);
            }
        }
    }

    fn leader(&self) -> Option<usize> {
        self.replicas
            .iter()
            .position(|replica| replica.alive && replica.driver.is_leader())
    }

    fn run_until(&mut self, rounds_max: usize, mut done: impl FnMut(&Cluster) -> bool) {
        for _ in 0..rounds_max {
            if done(self) {
                return;
            }
            self.round();
        }
        let lengths: Vec<(usize, u64, u64)> = self
            .replicas
            .iter()
            .map(|r| {
                (
                    r.chain.len(),
                    r.driver.commit_index(),
                    r.driver.last_index(),
                )
            })
            .collect();
        panic!("condition not reached in {rounds_max} rounds: {lengths:?}");
    }

    fn propose(&mut self, proposal: &Proposal) {
        let leader = self.leader().expect("a leader exists");
        self.replicas[leader]
            .driver
            .propose(proposal.to_bytes())
            .unwrap();
        self.process(leader);
    }
}

fn payment(network_id: [u8; 32], id: u128) -> Vec<u8> {
    let operation = Operation::Transfer(Transfer {
        id,
        debit_account: 200,
        credit_account: 300,
        asset: 1,
        amount: 10,
        kind: TransferKind::Posted,
        reference: 0,
    });
    Transaction::sign(
        network_id,
        &key(2),
        tpw_contracts::Validity::new(id as u64, 3_600_000),
        Body::single(operation),
    )
    .to_bytes()
}

#[test]
fn replicas_commit_identical_chains() {
    // Proves three drivers elect one leader and apply the same blocks to the same state.
    let mut cluster = Cluster::new();
    cluster.run_until(200, |cluster| cluster.leader().is_some());
    let network_id = cluster.replicas[0].head.network_id;
    for block in 0..20u64 {
        let transactions = (0..5)
            .map(|index| payment(network_id, u128::from(block * 5 + index)))
            .collect();
        cluster.propose(&Proposal {
            attestation: None,
            proposer_time_ms: 2_000 + block,
            transactions,
            webhooks: Vec::new(),
        });
        cluster.round();
    }
    cluster.run_until(100, |cluster| {
        cluster
            .replicas
            .iter()
            .all(|replica| replica.chain.len() == 20)
    });
    let first = &cluster.replicas[0];
    for replica in &cluster.replicas[1..] {
        assert_eq!(replica.chain, first.chain);
        assert_eq!(replica.ledger, first.ledger);
    }
    assert!(first.codes.iter().all(|code| *code == ResultCode::Ok));
    assert_eq!(first.codes.len(), 100);
}

#[test]
fn losing_the_leader_loses_nothing_committed() {
    // Proves a new leader is elected after the old one dies and every committed block survives.
    let mut cluster = Cluster::new();
    cluster.run_until(200, |cluster| cluster.leader().is_some());
    let network_id = cluster.replicas[0].head.network_id;
    for block in 0..10u64 {
        cluster.propose(&Proposal {
            attestation: None,
            proposer_time_ms: 2_000 + block,
            transactions: vec![payment(network_id, block.into())],
            webhooks: Vec::new(),
        });
        cluster.round();
    }
    cluster.run_until(100, |cluster| {
        cluster
            .replicas
            .iter()
            .all(|replica| replica.chain.len() == 10)
    });
    let old_leader = cluster.leader().unwrap();
    let committed = cluster.replicas[old_leader].chain.clone();
    cluster.replicas[old_leader].alive = false;
    cluster.run_until(300, |cluster| {
        cluster.leader().is_some_and(|leader| leader != old_leader)
    });
    for block in 10..15u64 {
        cluster.propose(&Proposal {
            attestation: None,
            proposer_time_ms: 1_500 + block,
            transactions: vec![payment(network_id, block.into())],
            webhooks: Vec::new(),
        });
        cluster.round();
    }
    let survivors: Vec<usize> = (0..3).filter(|index| *index != old_leader).collect();
    cluster.run_until(100, |cluster| {
        survivors
            .iter()
            .all(|index| cluster.replicas[*index].chain.len() == 15)
    });
    let (a, b) = (
        &cluster.replicas[survivors[0]],
        &cluster.replicas[survivors[1]],
    );
    assert_eq!(a.chain, b.chain);
    assert_eq!(
        &a.chain[..10],
        &committed[..],
        "every block committed under the old leader is kept"
    );
    // The new leader's clock was behind, yet block time kept increasing.
    assert!(a
        .chain
        .windows(2)
        .all(|pair| pair[1].time_ms > pair[0].time_ms));
}

#[test]
fn a_rekeyed_leader_hands_over_while_a_member_lags_behind_its_rotation() {
    // Proves a leader whose key rotated at index r, with a member cut off from it (that member
    // still refuses its new key), hands leadership to a voter that has r, under which the
    // member catches up; and that nothing is handed over once every member has r.
    let mut cluster = Cluster::new();
    cluster.run_until(200, |cluster| cluster.leader().is_some());
    let network_id = cluster.replicas[0].head.network_id;
    let leader = cluster.leader().unwrap();
    let leader_id = leader as u64 + 1;
    let lagging = (leader + 1) % 3;
    let lagging_id = lagging as u64 + 1;
    let other = (leader + 2) % 3;
    let block = |height: u64| Proposal {
        attestation: None,
        proposer_time_ms: 2_000 + height,
        transactions: vec![payment(network_id, height.into())],
        webhooks: Vec::new(),
    };
    cluster.propose(&block(0));
    cluster.run_until(100, |cluster| {
        cluster
            .replicas
            .iter()
            .all(|replica| replica.chain.len() == 1)
    });
    // Every member has the leader's last entry: nothing to hand over.
    let replicated = cluster.replicas[leader].driver.last_index();
    assert!(cluster.replicas[leader].driver.all_members_have(replicated));
    assert_eq!(
        cluster.replicas[leader]
            .driver
            .hand_over_after_rekey(replicated),
        None
    );

    // The leader and the lagging member can no longer talk; the "rotation" commits without it.
    cluster.cut.push((leader_id, lagging_id));
    cluster.propose(&block(1));
    cluster.run_until(100, |cluster| cluster.replicas[other].chain.len() == 2);
    let rekeyed_at = cluster.replicas[leader].driver.last_index();
    assert_eq!(cluster.replicas[lagging].chain.len(), 1);
    // A member that answered recently is not refusing the leader; after an election timeout
    // the leader's quorum check has marked the cut one silent.
    assert!(!cluster.replicas[leader].driver.all_members_have(rekeyed_at));
    for _ in 0..30 {
        cluster.round();
    }
    assert!(cluster.replicas[leader].driver.is_leader());
    let target = cluster.replicas[leader]
        .driver
        .hand_over_after_rekey(rekeyed_at);
    assert_eq!(target, Some(other as u64 + 1));
    cluster.run_until(100, |cluster| cluster.leader() == Some(other));
    cluster.run_until(100, |cluster| cluster.replicas[lagging].chain.len() == 2);
    assert_eq!(
        cluster.replicas[lagging].chain,
        cluster.replicas[other].chain
    );
    // The re-keyed node, no longer leader, hands over nothing.
    assert_eq!(
        cluster.replicas[leader]
            .driver
            .hand_over_after_rekey(rekeyed_at),
        None
    );
}
