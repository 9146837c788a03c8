//! censorwatch's evidence: what makes a stored measurement hold up in public and in court.
//! Every stored measurement's hash goes into an append-only Merkle log (RFC 6962 shape,
//! [`log`]), whose tree head is signed by the server's Ed25519 key as a C2SP checkpoint
//! ([`checkpoint`], [`note`]); an evidence bundle ([`bundle`]) packs measurements, verdicts,
//! inclusion proofs, the checkpoint and a manifest of hashes into one archive that anyone can
//! check offline, and consistency proofs ([`consistency`]) show that today's log extends a
//! checkpoint published earlier.
//!
//! What it refuses to do: rewrite or shorten the log (there is no delete; a batch that was not
//! committed is dropped on recovery, a committed leaf that is gone is reported as corruption and
//! never papered over); sign anything that is not a well-formed note; write a bundle whose proofs
//! do not verify; trust a bundle's own key when the caller gives a trusted one; or reach the
//! network — verification needs nothing but the bundle (and, ideally, the log's published key).
//!
//! Measurements removed from the store (see `censorwatch_store::redaction`) keep their leaf: it
//! is a hash and reveals nothing, so every checkpoint, proof and earlier bundle stays valid. The
//! signing key can be rotated ([`keyring`]): the old public key stays in the keyring with its
//! validity period, and the rotation is vouched for by both keys.
//!
//! Modules: [`merkle`] (pure hashing and proofs), [`log`] (the file-backed log), [`leaf`] (what a
//! measurement's leaf commits to), [`ledger`] (the log of a store: appending what it stores,
//! reconciling after a crash), [`note`] (signed notes and keys), [`keyring`] (every key the log
//! has signed with, and rotation), [`checkpoint`],
//! [`consistency`], [`bundle`] and [`chart`] (the bundle's SVG chart).

pub mod bundle;
pub mod chart;
pub mod checkpoint;
pub mod consistency;
pub mod keyring;
pub mod leaf;
pub mod ledger;
pub mod log;
pub mod merkle;
pub mod note;
pub mod select;

pub use bundle::{BundleItem, BundleWriter, Report, Trusted, verify_bundle, verify_bundle_trusting};
pub use checkpoint::{Checkpoint, open_checkpoint};
pub use consistency::{prove_consistency, verify_consistency};
pub use keyring::{KeyStatus, Keyring, KeyringEntry, Rotation};
pub use leaf::{MeasurementLeaf, measurement_leaf_hash};
pub use ledger::{Ledger, LedgerError, record_leaf, verdict_bytes};
pub use log::Log;
pub use merkle::Hash;
pub use note::{Keys, VerifierKey};
pub use select::{Collected, SelectError, Selection, collect};

/// The log's directory under the data directory.
pub const LOG_DIR: &str = "log";
/// The keys' directory under the data directory.
pub const KEYS_DIR: &str = "keys";
/// The daily checkpoint files' directory under the data directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
