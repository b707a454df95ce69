//! Uncommitted changes layered over the store while a block applies, with typed accessors and
//! nested layers (a linked batch, an exchange's two legs inside it) each kept or dropped as a
//! whole.

use crate::codec::{DecodeError, Reader};
use crate::context::ApplyError;
use crate::model::{
    from_bytes, to_bytes, Account, AccountId, Asset, AssetId, HoldRecord, Participant,
    ParticipantId, PublicKey, TransferId, TransferRecord,
};
use crate::state::{
    account_key, asset_key, participant_key, signer_key, transfer_key, StateDiff, StateStore,
};

use crate::limits::LAYERS_MAX;

pub(crate) struct Overlay<'s> {
    store: &'s dyn StateStore,
    block: StateDiff,
    /// Open all-or-nothing layers, innermost last.
    layers: Vec<StateDiff>,
    /// Obligations settled by netting in this block (its work bound).
    netting_work: usize,
}

fn corrupt(key: &[u8], source: DecodeError) -> ApplyError {
    ApplyError::Corrupt {
        key: hex::encode(key),
        source,
    }
}

impl<'s> Overlay<'s> {
    pub(crate) fn new(store: &'s dyn StateStore) -> Self {
        Self {
            store,
            block: StateDiff::new(),
            layers: Vec::with_capacity(LAYERS_MAX),
            netting_work: 0,
        }
    }

    pub(crate) fn into_diff(self) -> StateDiff {
        assert!(
            self.layers.is_empty(),
            "every all-or-nothing layer is closed before the block ends"
        );
        self.block
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ApplyError> {
        for layer in self.layers.iter().rev() {
            if let Some(value) = layer.get(key) {
                return Ok(value.clone());
            }
        }
        if let Some(value) = self.block.get(key) {
            return Ok(value.clone());
        }
        Ok(self.store.get(key)?)
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        match self.layers.last_mut() {
            Some(layer) => layer.insert(key, value),
            None => self.block.insert(key, value),
        };
    }

    /// Records in `start..end`, in key order, as this block sees them: the store's with this
    /// block's changes laid over. At most `limit`, taken from the store's first `limit` (so
    /// a range whose records this block deletes may come back shorter: used only on ranges
    /// that are appended to, never deleted from).
    pub(crate) fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<crate::state::Records, ApplyError> {
        let mut merged: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> = self
            .store
            .scan(start, end, limit)?
            .into_iter()
            .map(|(key, value)| (key, Some(value)))
            .collect();
        for diff in std::iter::once(&self.block).chain(self.layers.iter()) {
            for (key, value) in diff.range(start.to_vec()..end.to_vec()) {
                merged.insert(key.clone(), value.clone());
            }
        }
        Ok(merged
            .into_iter()
            .filter_map(|(key, value)| value.map(|value| (key, value)))
            .take(limit)
            .collect())
    }

    /// Obligations settled by netting so far in this block.
    pub(crate) fn netting_work(&self) -> usize {
        self.netting_work
    }

    /// Counts obligations settled by netting.
    pub(crate) fn add_netting_work(&mut self, obligations: usize) {
        self.netting_work += obligations;
    }

    /// Opens an all-or-nothing layer: what is written until [`Overlay::end_batch`] is kept or
    /// dropped as a whole.
    pub(crate) fn begin_batch(&mut self) {
        assert!(
            self.layers.len() < LAYERS_MAX,
            "layers nest at most {LAYERS_MAX} deep"
        );
        self.layers.push(StateDiff::new());
    }

    /// Closes the innermost layer, keeping its writes in the layer below (or the block).
    pub(crate) fn end_batch(&mut self, keep: bool) {
        let layer = self.layers.pop().expect("end_batch follows begin_batch");
        if keep {
            match self.layers.last_mut() {
                Some(below) => below.extend(layer),
                None => self.block.extend(layer),
            }
        }
    }

    /// A record decoded with `decode`; a record that does not decode is corruption.
    pub(crate) fn typed<T>(
        &self,
        key: &[u8],
        decode: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, ApplyError> {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => from_bytes(&bytes, decode)
                .map(Some)
                .map_err(|source| corrupt(key, source)),
        }
    }

    pub(crate) fn participant(&self, id: ParticipantId) -> Result<Option<Participant>, ApplyError> {
        self.typed(&participant_key(id), Participant::decode)
    }

    pub(crate) fn participant_by_key(
        &self,
        public_key: &PublicKey,
    ) -> Result<Option<ParticipantId>, ApplyError> {
        Ok(self.signer(public_key)?.map(|record| record.participant))
    }

    /// The signer index record of a key.
    pub(crate) fn signer(
        &self,
        public_key: &PublicKey,
    ) -> Result<Option<crate::state::SignerRecord>, ApplyError> {
        self.typed(&signer_key(public_key), crate::state::SignerRecord::decode)
    }

    pub(crate) fn asset(&self, id: AssetId) -> Result<Option<Asset>, ApplyError> {
        self.typed(&asset_key(id), Asset::decode)
    }

    pub(crate) fn account(&self, id: AccountId) -> Result<Option<Account>, ApplyError> {
        self.typed(&account_key(id), Account::decode)
    }

    pub(crate) fn put_account(&mut self, account: &Account) {
        self.put(
            account_key(account.id),
            Some(to_bytes(|writer| account.encode(writer))),
        );
    }

    pub(crate) fn transfer(
        &self,
        owner: ParticipantId,
        id: TransferId,
    ) -> Result<Option<TransferRecord>, ApplyError> {
        self.typed(&transfer_key(owner, id), TransferRecord::decode)
    }

    pub(crate) fn put_transfer(&mut self, record: &TransferRecord) {
        self.put(
            transfer_key(record.owner, record.id),
            Some(to_bytes(|writer| record.encode(writer))),
        );
    }

    pub(crate) fn put_hold(&mut self, account: AccountId, record: Option<&HoldRecord>) {
        self.put(
            crate::state::hold_key(account),
            record.map(|record| to_bytes(|writer| record.encode(writer))),
        );
    }
}
