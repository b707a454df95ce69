//! A small ledger fixture shared by the contracts integration tests.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use std::collections::BTreeMap;
use tpw_contracts::genesis::{
    GenesisAccount, GenesisAsset, GenesisFunding, GenesisNode, GenesisParticipant, NodeRole,
};
use tpw_contracts::model::{from_bytes, Account, Role, TransferRecord};
use tpw_contracts::state::{account_key, transfer_key, Commitment};
use tpw_contracts::{
    apply_block, BlockOutcome, Body, ChainHead, Genesis, MemStore, Proposal, StateStore,
    Transaction, Validity,
};

pub const BANK_A: u64 = 1;
pub const BANK_B: u64 = 2;
pub const PARTNER_X: u64 = 3;
pub const PARTNER_Y: u64 = 4;
pub const REGULATOR: u64 = 5;
pub const OPERATOR: u64 = 6;
pub const EUR: u32 = 1;
pub const USD: u32 = 2;
pub const EUR_ISSUANCE: u128 = 1000;
pub const USD_ISSUANCE: u128 = 2000;
/// What may be outstanding in EUR: the genesis funds 1,500,010 of it.
pub const EUR_SUPPLY_CAP: u128 = 2_000_000;
pub const X_EUR: u128 = 3001;
pub const X_USD: u128 = 3002;
pub const Y_EUR: u128 = 4001;
pub const Y_USD: u128 = 4002;
pub const Y_FROZEN: u128 = 4003;

pub fn key(participant: u64) -> SigningKey {
    SigningKey::from_bytes(&[participant as u8; 32])
}

pub fn genesis() -> Genesis {
    let participant = |id: u64, name: &str, role: Role, bank: Option<u64>| GenesisParticipant {
        id,
        name: name.into(),
        role,
        bank,
        keys: vec![hex::encode(key(id).verifying_key().to_bytes())],
    };
    let account = |id: u128, owner: u64, asset: u32, flags: &[&str]| GenesisAccount {
        id,
        owner,
        asset,
        flags: flags.iter().map(|flag| flag.to_string()).collect(),
    };
    let no_overdraft = &["debits_must_not_exceed_credits"][..];
    Genesis {
        network_name: "test".into(),
        genesis_time_ms: 1_000_000,
        participants: vec![
            participant(BANK_A, "Bank A", Role::BankMember, None),
            participant(BANK_B, "Bank B", Role::BankMember, None),
            participant(
                PARTNER_X,
                "Partner X",
                Role::SettlementPartner,
                Some(BANK_A),
            ),
            participant(
                PARTNER_Y,
                "Partner Y",
                Role::SettlementPartner,
                Some(BANK_B),
            ),
            participant(REGULATOR, "Regulator", Role::Regulator, None),
            participant(OPERATOR, "Operator", Role::Operator, None),
        ],
        assets: vec![
            GenesisAsset {
                id: EUR,
                code: "EUR".into(),
                scale: 2,
                issuer: BANK_A,
                issuance_account: EUR_ISSUANCE,
                supply_cap: Some(EUR_SUPPLY_CAP),
            },
            GenesisAsset {
                id: USD,
                code: "USD".into(),
                scale: 2,
                issuer: BANK_B,
                issuance_account: USD_ISSUANCE,
                supply_cap: None,
            },
        ],
        accounts: vec![
            account(X_EUR, PARTNER_X, EUR, no_overdraft),
            account(X_USD, PARTNER_X, USD, no_overdraft),
            account(Y_EUR, PARTNER_Y, EUR, no_overdraft),
            account(Y_USD, PARTNER_Y, USD, no_overdraft),
            account(
                Y_FROZEN,
                PARTNER_Y,
                EUR,
                &["debits_must_not_exceed_credits", "frozen"],
            ),
        ],
        funding: vec![
            GenesisFunding {
                account: X_EUR,
                amount: 1_000_000,
            },
            GenesisFunding {
                account: Y_EUR,
                amount: 500_000,
            },
            GenesisFunding {
                account: X_USD,
                amount: 100,
            },
            GenesisFunding {
                account: Y_USD,
                amount: 1_000,
            },
            GenesisFunding {
                account: Y_FROZEN,
                amount: 10,
            },
        ],
        nodes: vec![GenesisNode {
            id: 1,
            name: "bank-1".into(),
            public_key: hex::encode(key(99).verifying_key().to_bytes()),
            role: NodeRole::Voter,
        }],
        network_id: None,
    }
}

#[derive(Clone)]
pub struct Ledger {
    pub store: MemStore,
    pub head: ChainHead,
    pub time_ms: u64,
    /// The nonce of the next envelope signed here: each call signs a new submission.
    pub next_nonce: std::cell::Cell<u64>,
}

impl Ledger {
    pub fn new() -> Self {
        let state = genesis().build().expect("the fixture genesis is valid");
        let mut store = MemStore::default();
        store.apply_diff(&state.diff);
        Self {
            store,
            time_ms: state.head.time_ms,
            head: state.head,
            next_nonce: std::cell::Cell::new(1),
        }
    }

    /// A new nonce, valid for ten minutes of this ledger's time.
    pub fn validity(&self) -> Validity {
        let nonce = self.next_nonce.get();
        self.next_nonce.set(nonce + 1);
        Validity::new(nonce, self.time_ms + 600_000)
    }

    pub fn sign(&self, signer: u64, body: Body) -> Vec<u8> {
        self.sign_with(&key(signer), body)
    }

    pub fn sign_with(&self, key: &SigningKey, body: Body) -> Vec<u8> {
        Transaction::sign(self.head.network_id, key, self.validity(), body).to_bytes()
    }

    /// Applies a block of raw envelopes, stamping it `advance_ms` after the previous stamp.
    pub fn block(&mut self, advance_ms: u64, transactions: Vec<Vec<u8>>) -> BlockOutcome {
        self.time_ms += advance_ms;
        let proposal = Proposal {
            attestation: None,
            proposer_time_ms: self.time_ms,
            transactions,
            webhooks: Vec::new(),
        };
        let outcome = apply_block(&self.store, &self.head, &proposal, &|_| false)
            .expect("apply succeeds on a sound store");
        self.store.apply_diff(&outcome.diff);
        self.head = outcome.head.clone();
        self.check_invariants();
        outcome
    }

    pub fn account(&self, id: u128) -> Account {
        let bytes = self
            .store
            .get(&account_key(id))
            .unwrap()
            .expect("account exists");
        from_bytes(&bytes, Account::decode).unwrap()
    }

    pub fn transfer(&self, owner: u64, id: u128) -> Option<TransferRecord> {
        let bytes = self.store.get(&transfer_key(owner, id)).unwrap()?;
        Some(from_bytes(&bytes, TransferRecord::decode).unwrap())
    }

    /// Debits equal credits per asset, posted and pending, and the head commits to the records.
    pub fn check_invariants(&self) {
        // Sums over many accounts can exceed u128 even though every balance fits, so they are
        // kept as 256-bit (high, low) pairs.
        fn add(sum: &mut (u128, u128), value: u128) {
            let (low, carry) = sum.1.overflowing_add(value);
            sum.1 = low;
            sum.0 += u128::from(carry);
        }
        let mut sums: BTreeMap<u32, [(u128, u128); 4]> = BTreeMap::new();
        for (key, value) in self.store.records() {
            if key[0] == b'A' {
                let account = from_bytes(value, Account::decode).unwrap();
                let sum = sums.entry(account.asset).or_default();
                add(&mut sum[0], account.debits_posted);
                add(&mut sum[1], account.credits_posted);
                add(&mut sum[2], account.debits_pending);
                add(&mut sum[3], account.credits_pending);
            }
        }
        // Money only by mint and burn: each asset's supply record is what its issuance account
        // let out (and so, with conservation, what all other accounts hold).
        tpw_contracts::supply::check_money(
            self.store
                .records()
                .map(|(key, value)| (key.as_slice(), value.as_slice())),
        )
        .expect("the money invariants hold");
        for (asset, sum) in sums {
            assert_eq!(
                sum[0], sum[1],
                "posted debits equal posted credits in asset {asset}"
            );
            assert_eq!(
                sum[2], sum[3],
                "pending debits equal pending credits in asset {asset}"
            );
        }
        let recomputed = Commitment::of_records(
            self.store
                .records()
                .map(|(key, value)| (key.as_slice(), value.as_slice())),
        );
        assert_eq!(
            recomputed, self.head.commitment,
            "the head commits to exactly the stored records"
        );
    }
}
