//! The dispatcher: applies a transaction's operations, single or as a linked batch, answering
//! retries with the recorded outcome and recording rejected transfers. Each operation's own
//! rule is in its module under `crate::ops`.

use crate::context::{stored_code, ApplyError, BlockContext, OperationContext, Outcome};
use crate::model::{Hash, Participant, PublicKey};
use crate::ops::Operation;
use crate::overlay::Overlay;
use crate::result::ResultCode;
use std::collections::BTreeSet;

/// Applies one unlinked operation and returns its code.
pub(crate) fn apply_single(
    overlay: &mut Overlay<'_>,
    block: BlockContext,
    (signer, signer_key): (&Participant, PublicKey),
    tx_id: Hash,
    operation: &Operation,
) -> Result<ResultCode, ApplyError> {
    let context = OperationContext {
        block,
        signer,
        signer_key,
        tx_id,
    };
    Ok(match evaluate(overlay, &context, operation)? {
        Outcome::Applied => ResultCode::Ok,
        Outcome::Existing(code) => code,
        Outcome::Rejected(code) => {
            record_rejection(overlay, &context, operation, code);
            code
        }
    })
}

/// Applies a linked batch: every operation or none, returning one code per operation.
pub(crate) fn apply_linked(
    overlay: &mut Overlay<'_>,
    block: BlockContext,
    (signer, signer_key): (&Participant, PublicKey),
    tx_id: Hash,
    operations: &[Operation],
) -> Result<Vec<ResultCode>, ApplyError> {
    let context = OperationContext {
        block,
        signer,
        signer_key,
        tx_id,
    };
    let fail_at = |index: usize, code: ResultCode| -> Vec<ResultCode> {
        (0..operations.len())
            .map(|other| {
                if other == index {
                    code
                } else {
                    ResultCode::LinkedBatchFailed
                }
            })
            .collect()
    };
    let mut seen = BTreeSet::new();
    for (index, operation) in operations.iter().enumerate() {
        if let Some(id) = operation.transfer_id() {
            if !seen.insert(id) {
                return Ok(fail_at(index, ResultCode::DuplicateInBatch));
            }
        }
    }
    if let Some(codes) = retried_batch(overlay, &context, operations)? {
        return Ok(codes);
    }
    overlay.begin_batch();
    for (index, operation) in operations.iter().enumerate() {
        let code = match evaluate(overlay, &context, operation)? {
            Outcome::Applied | Outcome::Existing(ResultCode::Ok) => continue,
            Outcome::Rejected(code) | Outcome::Existing(code) => code,
        };
        overlay.end_batch(false);
        let codes = fail_at(index, code);
        for (operation, code) in operations.iter().zip(&codes) {
            record_rejection(overlay, &context, operation, *code);
        }
        return Ok(codes);
    }
    overlay.end_batch(true);
    Ok(vec![ResultCode::Ok; operations.len()])
}

/// A linked batch whose transfer ids were all used before with the same bodies is a retry and
/// gets the original outcomes; one that reuses only some ids fails at the first reused id.
fn retried_batch(
    overlay: &Overlay<'_>,
    context: &OperationContext<'_>,
    operations: &[Operation],
) -> Result<Option<Vec<ResultCode>>, ApplyError> {
    let mut existing = Vec::with_capacity(operations.len());
    for operation in operations {
        existing.push(match operation.transfer_id() {
            Some(id) => overlay.transfer(context.signer.id, id)?,
            None => None,
        });
    }
    let transfer_count = operations
        .iter()
        .filter(|operation| operation.transfer_id().is_some())
        .count();
    let same_body = |index: usize| {
        existing[index]
            .as_ref()
            .is_some_and(|record| record.body_hash == operations[index].body_hash())
    };
    let retried = (0..operations.len())
        .filter(|index| same_body(*index))
        .count();
    if transfer_count > 0 && retried == transfer_count {
        // The batch applied as a whole exactly when its recorded transfers all succeeded; the
        // operations without ids then succeeded with them.
        let mut applied = true;
        for record in existing.iter().flatten() {
            applied &= stored_code(record.result)? == ResultCode::Ok;
        }
        let without_id = if applied {
            ResultCode::Ok
        } else {
            ResultCode::LinkedBatchFailed
        };
        let mut codes = Vec::with_capacity(operations.len());
        for (index, operation) in operations.iter().enumerate() {
            codes.push(match &existing[index] {
                Some(record) => stored_code(record.result)?,
                None => operation.retried_code(overlay, without_id)?,
            });
        }
        return Ok(Some(codes));
    }
    for (index, record) in existing.iter().enumerate() {
        if record.is_some() {
            let code = if same_body(index) {
                ResultCode::IdExists
            } else {
                ResultCode::IdExistsWithDifferentBody
            };
            return Ok(Some(
                (0..operations.len())
                    .map(|other| {
                        if other == index {
                            code
                        } else {
                            ResultCode::LinkedBatchFailed
                        }
                    })
                    .collect(),
            ));
        }
    }
    Ok(None)
}

/// The operation's outcome: a transfer id used before answers with the recorded code (or
/// `id_exists_with_different_body`) before any rule runs.
fn evaluate(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    operation: &Operation,
) -> Result<Outcome, ApplyError> {
    if let Some(id) = operation.transfer_id() {
        if let Some(record) = overlay.transfer(context.signer.id, id)? {
            return Ok(if record.body_hash == operation.body_hash() {
                Outcome::Existing(stored_code(record.result)?)
            } else {
                Outcome::Existing(ResultCode::IdExistsWithDifferentBody)
            });
        }
    }
    operation.apply(overlay, context)
}

/// Records a rejected operation's transfer id (operations without one leave only the receipt).
fn record_rejection(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    operation: &Operation,
    code: ResultCode,
) {
    if let Some(id) = operation.transfer_id() {
        crate::posting::record_rejection(
            overlay,
            context,
            (id, operation.body_hash()),
            operation.rejected(),
            code,
        );
    }
}
