//! The genesis: the network's founding document and the state it creates.
//!
//! The network id is blake3 of the genesis' canonical encoding, so every signature on the
//! network is bound to exactly this founding state. Genesis opens accounts and funds them by
//! transfers out of each asset's issuance account, so conservation holds from height 0.

use crate::block::{merkle_root, BlockHeader};
use crate::codec::Writer;
use crate::limits::{
    ASSET_SCALE_MAX, FORMAT_VERSION, GENESIS_ITEMS_MAX, NAME_SIZE_MAX, PARTICIPANT_KEYS_MAX,
};
pub use crate::model::NodeRole;
use crate::model::{
    account_flags, to_bytes, Account, AccountId, Asset, AssetId, Hash, Participant, ParticipantId,
    Role,
};
use crate::state::{
    account_key, asset_key, participant_key, signer_key, ChainHead, Commitment, StateDiff,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A participant as listed in the genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisParticipant {
    /// Its id.
    pub id: ParticipantId,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Sponsoring bank member, for settlement partners.
    #[serde(default)]
    pub bank: Option<ParticipantId>,
    /// Public keys, hex.
    pub keys: Vec<String>,
}

/// An asset as listed in the genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAsset {
    /// Its id.
    pub id: AssetId,
    /// Its code.
    pub code: String,
    /// Digits after the decimal point.
    pub scale: u8,
    /// Issuing participant.
    pub issuer: ParticipantId,
    /// The issuer's issuance account id (created by genesis with the `issuance` flag: the
    /// one account with no outflow bound, moved only by mint and burn).
    #[serde(with = "crate::decimal")]
    pub issuance_account: AccountId,
    /// Most of the asset that may be outstanding (decimal string); absent: what the genesis
    /// funds, so that any further mint needs a governance change.
    #[serde(
        default,
        with = "crate::decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub supply_cap: Option<u128>,
}

/// An account opened by the genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Its id.
    #[serde(with = "crate::decimal")]
    pub id: AccountId,
    /// Owner.
    pub owner: ParticipantId,
    /// Asset.
    pub asset: AssetId,
    /// Flag names: debits_must_not_exceed_credits (required: every account that can be debited
    /// is bounded), frozen.
    #[serde(default)]
    pub flags: Vec<String>,
}

/// A deposit made by the genesis: a transfer from the asset's issuance account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFunding {
    /// Credited account.
    #[serde(with = "crate::decimal")]
    pub account: AccountId,
    /// Amount in minor units.
    #[serde(with = "crate::decimal")]
    pub amount: u128,
}

/// A node of the initial node set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisNode {
    /// Raft id (non-zero).
    pub id: u64,
    /// Name, such as bank-1.
    pub name: String,
    /// Node public key, hex.
    pub public_key: String,
    /// Voter or observer.
    pub role: NodeRole,
}

/// The genesis document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Human name of the network.
    pub network_name: String,
    /// Time of the genesis block, ms since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Participants.
    pub participants: Vec<GenesisParticipant>,
    /// Assets.
    pub assets: Vec<GenesisAsset>,
    /// Accounts.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Deposits.
    #[serde(default)]
    pub funding: Vec<GenesisFunding>,
    /// Initial node set.
    pub nodes: Vec<GenesisNode>,
    /// The network id (hex); written by `tpw genesis create`, checked when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
}

/// Why a genesis is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid genesis: {0}")]
pub struct GenesisError(pub String);

/// The state a genesis creates.
#[derive(Debug, Clone)]
pub struct GenesisState {
    /// Every record.
    pub diff: StateDiff,
    /// Header of block 0.
    pub header: BlockHeader,
    /// Chain head at block 0.
    pub head: ChainHead,
}

fn fail<T>(message: String) -> Result<T, GenesisError> {
    Err(GenesisError(message))
}

/// Parses a 32-byte hex public key.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text).map_err(|error| format!("key {text:?} is not hex: {error}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("key {text:?} is not 32 bytes"))
}

/// Parses account flag names into bits.
pub fn parse_flags(names: &[String]) -> Result<u16, String> {
    let mut bits = 0;
    for name in names {
        bits |= match name.as_str() {
            "debits_must_not_exceed_credits" => account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            "credits_must_not_exceed_debits" => account_flags::CREDITS_MUST_NOT_EXCEED_DEBITS,
            "frozen" => account_flags::FROZEN,
            "issuance" => account_flags::ISSUANCE,
            other => return Err(format!("unknown account flag {other:?}")),
        };
    }
    Ok(bits)
}

/// Names of the bits set in `flags`.
pub fn flag_names(flags: u16) -> Vec<&'static str> {
    let mut names = Vec::new();
    if flags & account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS != 0 {
        names.push("debits_must_not_exceed_credits");
    }
    if flags & account_flags::CREDITS_MUST_NOT_EXCEED_DEBITS != 0 {
        names.push("credits_must_not_exceed_debits");
    }
    if flags & account_flags::FROZEN != 0 {
        names.push("frozen");
    }
    if flags & account_flags::ISSUANCE != 0 {
        names.push("issuance");
    }
    names
}

impl Genesis {
    /// Canonical encoding of every field except `network_id`.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, GenesisError> {
        self.check_sizes()?;
        let mut writer = Writer::with_capacity(4096);
        writer.u8(FORMAT_VERSION);
        writer.string(&self.network_name);
        writer.u64(self.genesis_time_ms);
        writer.u32(self.participants.len() as u32);
        for participant in &self.participants {
            self.participant(participant)?.encode(&mut writer);
        }
        writer.u32(self.assets.len() as u32);
        for asset in &self.assets {
            self.asset(asset).encode(&mut writer);
            match asset.supply_cap {
                None => writer.u8(0),
                Some(cap) => {
                    writer.u8(1);
                    writer.u128(cap);
                }
            }
        }
        writer.u32(self.accounts.len() as u32);
        for account in &self.accounts {
            writer.u128(account.id);
            writer.u64(account.owner);
            writer.u32(account.asset);
            writer.u16(parse_flags(&account.flags).map_err(GenesisError)?);
        }
        writer.u32(self.funding.len() as u32);
        for funding in &self.funding {
            writer.u128(funding.account);
            writer.u128(funding.amount);
        }
        writer.u32(self.nodes.len() as u32);
        for node in &self.nodes {
            writer.u64(node.id);
            writer.string(&node.name);
            writer.fixed(&parse_public_key(&node.public_key).map_err(GenesisError)?);
            writer.u8(match node.role {
                NodeRole::Voter => 1,
                NodeRole::Observer => 2,
            });
        }
        Ok(writer.finish())
    }

    /// The network id: blake3 (derive-key mode) of the canonical encoding.
    pub fn compute_network_id(&self) -> Result<Hash, GenesisError> {
        Ok(blake3::derive_key(
            "tpwalletoec genesis v1",
            &self.canonical_bytes()?,
        ))
    }

    fn participant(&self, participant: &GenesisParticipant) -> Result<Participant, GenesisError> {
        let mut keys = Vec::with_capacity(participant.keys.len());
        for key in &participant.keys {
            keys.push(parse_public_key(key).map_err(GenesisError)?);
        }
        Ok(Participant {
            id: participant.id,
            name: participant.name.clone(),
            role: participant.role,
            bank: participant.bank,
            keys,
        })
    }

    fn asset(&self, asset: &GenesisAsset) -> Asset {
        Asset {
            id: asset.id,
            code: asset.code.clone(),
            scale: asset.scale,
            issuer: asset.issuer,
            issuance_account: asset.issuance_account,
        }
    }

    /// Checks every rule and builds the genesis state.
    pub fn build(&self) -> Result<GenesisState, GenesisError> {
        self.check_sizes()?;
        let network_id = self.compute_network_id()?;
        if let Some(stated) = &self.network_id {
            if stated != &hex::encode(network_id) {
                return fail(format!(
                    "network_id {stated} does not match the genesis content, which hashes to {}",
                    hex::encode(network_id)
                ));
            }
        }
        let mut diff = StateDiff::new();
        let participants = self.build_participants(&mut diff)?;
        let mut accounts = self.build_assets(&participants, &mut diff)?;
        self.build_accounts(&participants, &mut accounts)?;
        self.build_funding(&mut accounts)?;
        self.supply_records(&accounts, &mut diff)?;
        for account in accounts.values() {
            diff.insert(
                account_key(account.id),
                Some(to_bytes(|writer| account.encode(writer))),
            );
        }
        for (key, value) in self.governance_records()? {
            diff.insert(key, Some(value));
        }
        let commitment = Commitment::of_records(diff.iter().filter_map(|(key, value)| {
            value
                .as_ref()
                .map(|value| (key.as_slice(), value.as_slice()))
        }));
        let header = BlockHeader {
            network_id,
            height: 0,
            previous_hash: [0; 32],
            time_ms: self.genesis_time_ms,
            proposer_time_ms: self.genesis_time_ms,
            transaction_count: 0,
            transactions_root: merkle_root(&[]),
            receipts_root: merkle_root(&[]),
            effects_root: merkle_root(&[]),
            state_root: commitment.root(),
        };
        let head = ChainHead {
            network_id,
            height: 0,
            hash: header.hash(),
            time_ms: self.genesis_time_ms,
            commitment,
        };
        Ok(GenesisState { diff, header, head })
    }

    fn check_sizes(&self) -> Result<(), GenesisError> {
        let items = self.participants.len()
            + self.assets.len()
            + self.accounts.len()
            + self.funding.len()
            + self.nodes.len();
        if items > GENESIS_ITEMS_MAX {
            return fail(format!("{items} items, over the limit {GENESIS_ITEMS_MAX}"));
        }
        if let Some(participant) = self.participants.iter().find(|participant| {
            participant.keys.is_empty() || participant.keys.len() > PARTICIPANT_KEYS_MAX
        }) {
            return fail(format!(
                "participant {} needs 1 to {PARTICIPANT_KEYS_MAX} keys",
                participant.id
            ));
        }
        let names = std::iter::once(&self.network_name)
            .chain(
                self.participants
                    .iter()
                    .map(|participant| &participant.name),
            )
            .chain(self.assets.iter().map(|asset| &asset.code))
            .chain(self.nodes.iter().map(|node| &node.name));
        for name in names {
            if name.is_empty() || name.len() > NAME_SIZE_MAX {
                return fail(format!(
                    "name {name:?} must have 1 to {NAME_SIZE_MAX} bytes"
                ));
            }
        }
        Ok(())
    }

    fn build_participants(
        &self,
        diff: &mut StateDiff,
    ) -> Result<BTreeMap<ParticipantId, Role>, GenesisError> {
        let roles: BTreeMap<ParticipantId, Role> = self
            .participants
            .iter()
            .map(|participant| (participant.id, participant.role))
            .collect();
        if roles.len() != self.participants.len() {
            return fail("participant ids must be unique".into());
        }
        let mut keys = BTreeSet::new();
        for listed in &self.participants {
            let participant = self.participant(listed)?;
            if participant.keys.is_empty() || participant.keys.len() > PARTICIPANT_KEYS_MAX {
                return fail(format!(
                    "participant {} needs 1 to {PARTICIPANT_KEYS_MAX} keys",
                    listed.id
                ));
            }
            match (participant.role, participant.bank) {
                (Role::SettlementPartner, Some(bank))
                    if roles.get(&bank) == Some(&Role::BankMember) => {}
                (Role::SettlementPartner, _) => {
                    return fail(format!(
                        "settlement partner {} must name a bank member as its bank",
                        listed.id
                    ))
                }
                (_, None) => {}
                (_, Some(_)) => {
                    return fail(format!(
                        "only settlement partners name a bank (participant {})",
                        listed.id
                    ))
                }
            }
            for key in &participant.keys {
                if !keys.insert(*key) {
                    return fail(format!("key {} is registered twice", hex::encode(key)));
                }
                diff.insert(signer_key(key), Some(participant.id.to_le_bytes().to_vec()));
                diff.insert(
                    crate::state::key_owner_key(key),
                    Some(participant.id.to_le_bytes().to_vec()),
                );
            }
            diff.insert(
                participant_key(participant.id),
                Some(to_bytes(|writer| participant.encode(writer))),
            );
        }
        Ok(roles)
    }

    fn build_assets(
        &self,
        participants: &BTreeMap<ParticipantId, Role>,
        diff: &mut StateDiff,
    ) -> Result<BTreeMap<AccountId, Account>, GenesisError> {
        let mut accounts = BTreeMap::new();
        let mut ids = BTreeSet::new();
        for listed in &self.assets {
            if !ids.insert(listed.id) {
                return fail(format!("asset id {} is listed twice", listed.id));
            }
            if listed.scale > ASSET_SCALE_MAX {
                return fail(format!(
                    "asset {} has scale {}, over {ASSET_SCALE_MAX}",
                    listed.id, listed.scale
                ));
            }
            if !participants.contains_key(&listed.issuer) {
                return fail(format!(
                    "asset {} names unknown issuer {}",
                    listed.id, listed.issuer
                ));
            }
            let account = Account::new(
                listed.issuance_account,
                listed.issuer,
                listed.id,
                account_flags::ISSUANCE,
            );
            if accounts.insert(account.id, account).is_some() {
                return fail(format!(
                    "account id {} is used twice",
                    listed.issuance_account
                ));
            }
            let asset = self.asset(listed);
            diff.insert(
                asset_key(asset.id),
                Some(to_bytes(|writer| asset.encode(writer))),
            );
        }
        Ok(accounts)
    }

    fn build_accounts(
        &self,
        participants: &BTreeMap<ParticipantId, Role>,
        accounts: &mut BTreeMap<AccountId, Account>,
    ) -> Result<(), GenesisError> {
        for listed in &self.accounts {
            if !participants.contains_key(&listed.owner) {
                return fail(format!(
                    "account {} names unknown owner {}",
                    listed.id, listed.owner
                ));
            }
            if !self.assets.iter().any(|asset| asset.id == listed.asset) {
                return fail(format!(
                    "account {} names unknown asset {}",
                    listed.id, listed.asset
                ));
            }
            let flags = parse_flags(&listed.flags).map_err(GenesisError)?;
            let both = account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS
                | account_flags::CREDITS_MUST_NOT_EXCEED_DEBITS;
            if flags & both == both {
                return fail(format!("account {} sets both balance limits", listed.id));
            }
            if flags & account_flags::ISSUANCE != 0 {
                return fail(format!(
                    "account {} may not be flagged issuance: each asset's issuance account is the one its asset names",
                    listed.id
                ));
            }
            if flags & account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS == 0 {
                return fail(format!(
                    "account {} must be flagged debits_must_not_exceed_credits: every account but an asset's issuance account is bounded",
                    listed.id
                ));
            }
            if accounts
                .insert(
                    listed.id,
                    Account::new(listed.id, listed.owner, listed.asset, flags),
                )
                .is_some()
            {
                return fail(format!("account id {} is used twice", listed.id));
            }
        }
        Ok(())
    }

    /// Each asset's supply record: what the genesis funded is outstanding; the cap is the
    /// listed one, or that amount.
    fn supply_records(
        &self,
        accounts: &BTreeMap<AccountId, Account>,
        diff: &mut StateDiff,
    ) -> Result<(), GenesisError> {
        for listed in &self.assets {
            let outstanding = accounts
                .get(&listed.issuance_account)
                .map_or(0, |issuance| issuance.debits_posted);
            let cap = listed.supply_cap.unwrap_or(outstanding);
            if cap < outstanding {
                return fail(format!(
                    "asset {} funds {outstanding}, over its supply_cap {cap}",
                    listed.id
                ));
            }
            let record = crate::supply::SupplyRecord { cap, outstanding };
            diff.insert(
                crate::supply::supply_key(listed.id),
                Some(to_bytes(|writer| record.encode(writer))),
            );
        }
        Ok(())
    }

    fn build_funding(
        &self,
        accounts: &mut BTreeMap<AccountId, Account>,
    ) -> Result<(), GenesisError> {
        for funding in &self.funding {
            let Some(credit) = accounts.get(&funding.account).cloned() else {
                return fail(format!("funding names unknown account {}", funding.account));
            };
            let Some(asset) = self.assets.iter().find(|asset| asset.id == credit.asset) else {
                return fail(format!("account {} has no asset", credit.id));
            };
            if funding.amount == 0 || funding.account == asset.issuance_account {
                return fail(format!(
                    "funding of account {} must be positive and not an issuance account",
                    funding.account
                ));
            }
            let mut credit = credit;
            credit.credits_posted = credit
                .credits_posted
                .checked_add(funding.amount)
                .ok_or_else(|| {
                    GenesisError(format!("funding of account {} overflows", credit.id))
                })?;
            if credit.has(account_flags::CREDITS_MUST_NOT_EXCEED_DEBITS) {
                return fail(format!(
                    "account {} may not be credited beyond its debits",
                    credit.id
                ));
            }
            let issuance = accounts
                .get_mut(&asset.issuance_account)
                .expect("issuance accounts are created with assets");
            issuance.debits_posted = issuance
                .debits_posted
                .checked_add(funding.amount)
                .ok_or_else(|| GenesisError(format!("issuance of asset {} overflows", asset.id)))?;
            accounts.insert(credit.id, credit);
        }
        Ok(())
    }

    /// The node set and the electorate (the bank members) as ledger records, so that
    /// governance changes them from here on.
    fn governance_records(&self) -> Result<crate::state::Records, GenesisError> {
        use crate::governance::{genesis_records, NodeRecord, BANK_MEMBERS_MAX, VOTERS_MAX};
        self.check_nodes()?;
        let voters = self
            .nodes
            .iter()
            .filter(|node| node.role == NodeRole::Voter)
            .count();
        if voters > VOTERS_MAX {
            return fail(format!(
                "{voters} voting nodes, over the limit {VOTERS_MAX}"
            ));
        }
        let members: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|participant| participant.role == Role::BankMember)
            .map(|participant| participant.id)
            .collect();
        if members.len() > BANK_MEMBERS_MAX {
            return fail(format!(
                "{} bank members, over the limit {BANK_MEMBERS_MAX}",
                members.len()
            ));
        }
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            nodes.push(NodeRecord {
                id: node.id,
                name: node.name.clone(),
                public_key: parse_public_key(&node.public_key).map_err(GenesisError)?,
                role: node.role,
                address: String::new(),
                removed_at_height: None,
            });
        }
        Ok(genesis_records(&nodes, &members))
    }

    fn check_nodes(&self) -> Result<(), GenesisError> {
        let mut ids = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for node in &self.nodes {
            let key = parse_public_key(&node.public_key).map_err(GenesisError)?;
            if node.id == 0 || !ids.insert(node.id) || !keys.insert(key) {
                return fail(format!(
                    "node {} needs a unique non-zero id and a unique key",
                    node.name
                ));
            }
        }
        if !self.nodes.iter().any(|node| node.role == NodeRole::Voter) {
            return fail("the genesis needs at least one voting node".into());
        }
        Ok(())
    }
}
