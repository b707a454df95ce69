//! Genesis validation: every malformed founding document is refused with a reason, never a
//! panic, and the network id commits to the content.
#![allow(clippy::unwrap_used)]

mod common;

use tpw_contracts::genesis::NodeRole;

#[test]
fn malformed_genesis_documents_are_refused_with_a_reason() {
    // Proves each broken rule of a genesis yields an error naming it.
    type Breaker = fn(&mut tpw_contracts::Genesis);
    let breakers: Vec<(&str, Breaker)> = vec![
        ("duplicate participant", |genesis| {
            genesis.participants[1].id = genesis.participants[0].id
        }),
        ("partner without bank", |genesis| {
            genesis.participants[2].bank = None
        }),
        ("partner sponsored by a partner", |genesis| {
            genesis.participants[2].bank = Some(4)
        }),
        ("no keys", |genesis| genesis.participants[0].keys.clear()),
        ("too many keys", |genesis| {
            genesis.participants[0].keys = vec![genesis.participants[0].keys[0].clone(); 300]
        }),
        ("key not hex", |genesis| {
            genesis.participants[0].keys[0] = "zz".into()
        }),
        ("key reused", |genesis| {
            genesis.participants[1].keys = genesis.participants[0].keys.clone()
        }),
        ("unknown issuer", |genesis| genesis.assets[0].issuer = 77),
        ("scale too large", |genesis| genesis.assets[0].scale = 40),
        ("unknown account owner", |genesis| {
            genesis.accounts[0].owner = 77
        }),
        ("unknown flag", |genesis| {
            genesis.accounts[0].flags = vec!["overdraft".into()]
        }),
        ("both limits", |genesis| {
            genesis.accounts[0].flags = vec![
                "debits_must_not_exceed_credits".into(),
                "credits_must_not_exceed_debits".into(),
            ]
        }),
        ("an account without an outflow bound", |genesis| {
            genesis.accounts[0].flags.clear()
        }),
        ("an account flagged issuance", |genesis| {
            genesis.accounts[0].flags.push("issuance".into())
        }),
        ("funding over the supply cap", |genesis| {
            genesis.assets[0].supply_cap = Some(1)
        }),
        ("account id reused", |genesis| {
            genesis.accounts[1].id = genesis.accounts[0].id
        }),
        ("funding unknown account", |genesis| {
            genesis.funding[0].account = 1
        }),
        ("zero funding", |genesis| genesis.funding[0].amount = 0),
        ("funding overflow", |genesis| {
            genesis.funding[1].amount = u128::MAX
        }),
        ("no voter", |genesis| {
            genesis.nodes[0].role = NodeRole::Observer
        }),
        ("node id zero", |genesis| genesis.nodes[0].id = 0),
        ("empty name", |genesis| genesis.network_name.clear()),
        ("wrong network id", |genesis| {
            genesis.network_id = Some("00".repeat(32))
        }),
    ];
    for (name, breaker) in breakers {
        let mut genesis = common::genesis();
        breaker(&mut genesis);
        let error = genesis.build().expect_err(name);
        assert!(
            error.to_string().starts_with("invalid genesis:"),
            "{name}: {error}"
        );
    }
}

#[test]
fn the_network_id_commits_to_the_content() {
    // Proves any change to the genesis changes the network id, and a matching stated id passes.
    let genesis = common::genesis();
    let id = genesis.compute_network_id().unwrap();
    let mut changed = genesis.clone();
    changed.funding[0].amount += 1;
    assert_ne!(changed.compute_network_id().unwrap(), id);
    let stated = tpw_contracts::Genesis {
        network_id: Some(hex::encode(id)),
        ..genesis
    };
    assert_eq!(stated.build().unwrap().head.network_id, id);
}
