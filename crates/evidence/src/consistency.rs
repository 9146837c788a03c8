//! Consistency between checkpoints: proof that the log a later checkpoint describes extends the
//! one an earlier checkpoint described, so that a published checkpoint (a witness's copy, a
//! newspaper's, a court filing's) can later be held against the log.

use crate::checkpoint::Checkpoint;
use crate::log::{Log, LogError};
use crate::merkle::{self, Hash, ProofError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// Why two checkpoints are not consistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsistencyError {
    /// They are checkpoints of different logs.
    #[error("the checkpoints are of different logs ({old:?} and {new:?})")]
    OriginDiffers {
        /// The old checkpoint's origin.
        old: String,
        /// The new checkpoint's origin.
        new: String,
    },
    /// The new checkpoint has fewer leaves than the old.
    #[error(
        "the new checkpoint (size {new_size}) is smaller than the old one (size {old_size}): the log was truncated or rewritten"
    )]
    Shrunk {
        /// The old size.
        old_size: u64,
        /// The new size.
        new_size: u64,
    },
    /// The proof does not connect the two tree heads.
    #[error(
        "the log at size {new_size} (root {new_root}) does not extend the checkpoint at size {old_size} (root {old_root}): {source}"
    )]
    NotExtended {
        /// The old size.
        old_size: u64,
        /// The old root, base64.
        old_root: String,
        /// The new size.
        new_size: u64,
        /// The new root, base64.
        new_root: String,
        /// Where the proof fails.
        source: ProofError,
    },
}

/// The consistency proof from the log's first `old_size` leaves to its whole current tree.
pub fn prove_consistency(log: &Log, old_size: u64) -> Result<Vec<Hash>, LogError> {
    log.consistency_proof(old_size, log.size())
}

/// Verifies that `new` extends `old`: same origin, no fewer leaves, and `proof` leads from
/// `old`'s root to `new`'s. The checkpoints' signatures are the caller's to check.
// The error carries both heads for its message; it is built once, on the failure path.
#[allow(clippy::result_large_err)]
pub fn verify_consistency(old: &Checkpoint, new: &Checkpoint, proof: &[Hash]) -> Result<(), ConsistencyError> {
    if old.origin != new.origin {
        return Err(ConsistencyError::OriginDiffers {
            old: old.origin.clone(),
            new: new.origin.clone(),
        });
    }
    if old.size > new.size {
        return Err(ConsistencyError::Shrunk {
            old_size: old.size,
            new_size: new.size,
        });
    }
    merkle::verify_consistency(old.size, new.size, &old.root, &new.root, proof).map_err(|source| {
        ConsistencyError::NotExtended {
            old_size: old.size,
            old_root: B64.encode(old.root),
            new_size: new.size,
            new_root: B64.encode(new.root),
            source,
        }
    })
}
