//! What a log leaf commits to for one stored measurement, byte for byte, so that anyone can
//! recompute it from the measurement and its verdict.
//!
//! The leaf data (UTF-8, four lines, each ending in `\n`):
//!
//! ```text
//! censorwatch-measurement-v1
//! <measurement id>
//! <SHA-256 of the raw measurement bytes, 64 lowercase hex digits>
//! <SHA-256 of the verdict JSON bytes, 64 lowercase hex digits>
//! ```
//!
//! and the leaf hash is RFC 6962's `SHA-256(0x00 || leaf data)`. The raw measurement bytes are
//! the measurement exactly as stored (the submitted JSON, uncompressed); the verdict bytes are
//! the verdict JSON exactly as stored beside it. The id is non-empty, at most 1024 bytes, and
//! holds no control character, so the lines cannot be confused.

use crate::merkle::{Hash, leaf_hash};
use sha2::{Digest, Sha256};

/// The first line of every measurement leaf.
pub const LEAF_FORMAT: &str = "censorwatch-measurement-v1";
/// The longest measurement id accepted, in bytes.
pub const MAX_ID_LEN: usize = 1024;

/// A measurement id that cannot be put in a leaf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("measurement id {id:?} cannot be logged: it must be 1 to {MAX_ID_LEN} bytes without control characters")]
pub struct BadId {
    /// The id refused.
    pub id: String,
}

/// Checks that `id` may be put in a leaf.
pub fn check_id(id: &str) -> Result<(), BadId> {
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(BadId { id: id.to_string() });
    }
    Ok(())
}

/// The contents of one measurement's leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementLeaf {
    /// The measurement id.
    pub id: String,
    /// SHA-256 of the raw measurement bytes.
    pub measurement_sha256: Hash,
    /// SHA-256 of the verdict JSON bytes.
    pub verdict_sha256: Hash,
}

impl MeasurementLeaf {
    /// The leaf of a measurement and its verdict.
    pub fn new(id: &str, measurement: &[u8], verdict: &[u8]) -> Result<MeasurementLeaf, BadId> {
        check_id(id)?;
        Ok(MeasurementLeaf {
            id: id.to_string(),
            measurement_sha256: Sha256::digest(measurement).into(),
            verdict_sha256: Sha256::digest(verdict).into(),
        })
    }

    /// The leaf data (see the module documentation).
    pub fn data(&self) -> Vec<u8> {
        format!(
            "{LEAF_FORMAT}\n{}\n{}\n{}\n",
            self.id,
            hex::encode(self.measurement_sha256),
            hex::encode(self.verdict_sha256)
        )
        .into_bytes()
    }

    /// The leaf hash: `SHA-256(0x00 || data)`.
    pub fn hash(&self) -> Hash {
        leaf_hash(&self.data())
    }
}

/// The leaf hash of a measurement and its verdict: what [`crate::log::Log::append_batch`] takes.
pub fn measurement_leaf_hash(id: &str, measurement: &[u8], verdict: &[u8]) -> Result<Hash, BadId> {
    Ok(MeasurementLeaf::new(id, measurement, verdict)?.hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_data_is_exactly_the_documented_lines() {
        let leaf =
            MeasurementLeaf::new("20240217T000000Z_webconnectivity_IR_1", b"{}", b"{\"status\":\"ok\"}").unwrap();
        let data = String::from_utf8(leaf.data()).unwrap();
        let verdict_hex = hex::encode(Sha256::digest(b"{\"status\":\"ok\"}"));
        assert_eq!(
            data,
            format!(
                "censorwatch-measurement-v1\n20240217T000000Z_webconnectivity_IR_1\n\
                 44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\n{verdict_hex}\n"
            )
        );
        assert_eq!(leaf.hash(), leaf_hash(data.as_bytes()));
    }

    #[test]
    fn ids_with_newlines_are_refused() {
        assert!(check_id("a\nb").is_err());
        assert!(check_id("").is_err());
        assert!(check_id(&"x".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(check_id("ok-id_1.2").is_ok());
    }
}
