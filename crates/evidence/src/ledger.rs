//! The log of a store: every stored measurement's leaf appended to the data directory's log
//! (`DATA/log`, signed with the key in `DATA/keys`, created on first use), its leaf index kept
//! beside it in the store, and the two reconciled after a crash.
//!
//! # Order of writes, and what a crash leaves
//!
//! A batch is first committed to the store, then its newly stored measurements' leaves are
//! appended to the log in one [`Log::append_batch`], then their indexes are recorded in the store
//! ([`Store::set_leaf_indexes`]). A crash (kill -9) can therefore leave
//!
//! - measurements stored without a leaf (killed before or during the append: the log drops a
//!   batch that did not finish), or
//! - leaves in the log whose measurements have no index yet (killed after the append).
//!
//! [`Ledger::reconcile`] (run by [`Ledger::open_for`]) repairs both: for every unlogged
//! measurement it looks for its leaf among the log's leaves after the store's highest recorded
//! index ([`Log::find_leaf`]'s case) and records that index, and appends the others. So after a
//! restart every stored measurement has exactly one leaf and the log's head verifies.
//!
//! # What a leaf commits to
//!
//! [`record_leaf`]: the measurement id, the SHA-256 of its raw bytes as stored, and the SHA-256
//! of [`verdict_bytes`] — the verdict serialized as the store serializes it (`serde_json`,
//! the exact text the store keeps in `verdict_json` and parses back), so anyone holding what the
//! store returns can recompute the leaf.

use crate::checkpoint::{self, Checkpoint};
use crate::keyring::{self, Keyring, Rotation};
use crate::leaf::{BadId, MeasurementLeaf};
use crate::log::{Log, LogError};
use crate::merkle::Hash;
use crate::note::{KeyError, Keys, SIGNER_FILE, VerifierKey};
use crate::{CHECKPOINTS_DIR, KEYS_DIR, LOG_DIR};
use censorwatch_model::Verdict;
use censorwatch_store::{Record, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Unlogged measurements read at once while reconciling.
const RECONCILE_PAGE: usize = 2_000;

/// Why the ledger could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The log failed.
    #[error("transparency log: {0}")]
    Log(#[from] LogError),
    /// The keys could not be loaded or created.
    #[error("signing key: {0}")]
    Keys(#[from] KeyError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The store and the log contradict each other in a way no crash explains.
    #[error("the store and the transparency log disagree: {0}")]
    Inconsistent(String),
    /// Writing a checkpoint file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The verdict's bytes as the store keeps them (`verdict_json`): what a leaf commits to.
pub fn verdict_bytes(verdict: &Verdict) -> Vec<u8> {
    serde_json::to_vec(verdict).expect("a verdict always serializes")
}

/// The leaf of a stored measurement (see the module documentation).
pub fn record_leaf(record: &Record) -> Result<MeasurementLeaf, BadId> {
    MeasurementLeaf::new(&record.id, &record.raw, &verdict_bytes(&record.verdict))
}

/// What [`Ledger::reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Unlogged measurements appended to the log.
    pub appended: u64,
    /// Unlogged measurements whose leaf was already in the log (a crash after the append).
    pub found_in_log: u64,
    /// Measurements whose id cannot be put in a leaf (left unlogged; see [`crate::leaf`]).
    pub unloggable: u64,
}

/// What logging one stored batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logged {
    /// Leaves appended.
    pub appended: u64,
    /// Records left out because their id cannot be put in a leaf.
    pub unloggable: u64,
}

/// The log, its signing key and where its checkpoints go, for one data directory.
#[derive(Debug)]
pub struct Ledger {
    data_dir: PathBuf,
    log: Log,
    keys: Keys,
    /// A failure between the log and the store left them out of step: reconcile before
    /// appending anything else.
    dirty: bool,
    /// The checkpoint co-signed at the last key rotation (see [`Ledger::signed_checkpoint`]).
    transition: Option<String>,
}

/// The transition checkpoint of the latest rotation recorded in the keys directory's keyring.
fn last_transition(keys_dir: &Path) -> Option<String> {
    let ring = Keyring::read(&keyring::keyring_path(keys_dir)).ok()??;
    ring.keys.iter().rev().find_map(|k| k.transition_checkpoint.clone())
}

/// The name a new log key gets: `censorwatch/log-` and 8 random hex digits, so two
/// installations never share an origin.
fn new_origin() -> Result<String, KeyError> {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(format!("censorwatch/log-{}", hex::encode(b)))
}

impl Ledger {
    /// Opens (or creates) the log and keys under `data_dir`, without looking at a store.
    pub fn open(data_dir: &Path) -> Result<Ledger, LedgerError> {
        let keys_dir = data_dir.join(KEYS_DIR);
        let keys = if keys_dir.join(SIGNER_FILE).exists() {
            // Finish or undo a key rotation a crash interrupted (see `crate::keyring`).
            let recovered = keyring::recover(&keys_dir)?;
            if recovered != keyring::Recovered::Nothing {
                eprintln!(
                    "censorwatch: an interrupted signing-key rotation in {} was {}",
                    keys_dir.display(),
                    if recovered == keyring::Recovered::Finished {
                        "finished: the new key is in use"
                    } else {
                        "undone: the old key stays in use"
                    }
                );
            }
            Keys::load(&keys_dir)?
        } else {
            let keys = Keys::load_or_create(&keys_dir, &new_origin()?)?;
            keyring::write_keyring(
                &keys_dir,
                &Keyring::new(
                    keys.verifier(),
                    Some(chrono::DateTime::<chrono::Utc>::from(SystemTime::now())),
                ),
            )?;
            keys
        };
        let log = Log::open(&data_dir.join(LOG_DIR))?;
        Ok(Ledger {
            data_dir: data_dir.to_path_buf(),
            log,
            keys,
            dirty: false,
            transition: last_transition(&keys_dir),
        })
    }

    /// Opens the log and keys under `data_dir` for reading only (beside a running `serve`, which
    /// holds the log for appending): proofs and checkpoints of what is committed, no appends.
    pub fn open_read_only(data_dir: &Path) -> Result<Ledger, LedgerError> {
        let keys = Keys::load(&data_dir.join(KEYS_DIR))?;
        let log = Log::open_read_only(&data_dir.join(LOG_DIR))?;
        Ok(Ledger {
            data_dir: data_dir.to_path_buf(),
            log,
            keys,
            dirty: false,
            transition: last_transition(&data_dir.join(KEYS_DIR)),
        })
    }

    /// Opens the ledger under `data_dir` and reconciles it with `store`.
    pub fn open_for(data_dir: &Path, store: &dyn Store) -> Result<(Ledger, Reconciled), LedgerError> {
        let mut ledger = Ledger::open(data_dir)?;
        let reconciled = ledger.reconcile(store)?;
        Ok((ledger, reconciled))
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The signing keys (the key's name is the log's origin).
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The verifier key, to publish.
    pub fn verifier(&self) -> &VerifierKey {
        self.keys.verifier()
    }

    /// The log's origin (the key's name).
    pub fn origin(&self) -> &str {
        self.keys.name()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Every key the log has signed with (`DATA/keys/keyring.json`; the current key alone, start
    /// unknown, when the file is missing, as before the first write-access open).
    pub fn keyring(&self) -> Result<Keyring, LedgerError> {
        let path = keyring::keyring_path(&self.data_dir.join(KEYS_DIR));
        Ok(Keyring::read(&path)?.unwrap_or_else(|| Keyring::new(self.keys.verifier(), None)))
    }

    /// Rotates the signing key (see [`crate::keyring`]): a new key pair under the same name
    /// (the origin), the old public key kept in the keyring, the current tree head signed by
    /// both as the transition checkpoint and published (`DATA/checkpoints/latest.txt` and
    /// `rotation-<time>.txt`); from then on checkpoints are signed by the new key.
    pub fn rotate_key(&mut self, now: SystemTime) -> Result<Rotation, LedgerError> {
        let at: chrono::DateTime<chrono::Utc> = now.into();
        let at = chrono::DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at);
        let (keys, rotation) = keyring::rotate(&self.data_dir.join(KEYS_DIR), &self.keys, &self.checkpoint(), at, 0)?;
        self.keys = keys;
        self.transition = Some(rotation.transition_checkpoint.clone());
        let dir = self.data_dir.join(CHECKPOINTS_DIR);
        let io = |path: PathBuf| move |source| LedgerError::Io { path, source };
        std::fs::create_dir_all(&dir).map_err(io(dir.clone()))?;
        let signed = &rotation.transition_checkpoint;
        let named = dir.join(format!("rotation-{}.txt", at.format("%Y%m%dT%H%M%SZ")));
        std::fs::write(&named, signed).map_err(io(named.clone()))?;
        checkpoint::write_daily_file(&dir, signed, now).map_err(io(dir.clone()))?;
        let latest = dir.join("latest.txt");
        let tmp = dir.join("latest.txt.tmp");
        std::fs::write(&tmp, signed).map_err(io(tmp.clone()))?;
        std::fs::rename(&tmp, &latest).map_err(io(latest))?;
        Ok(rotation)
    }

    /// The current tree head as a checkpoint (unsigned).
    pub fn checkpoint(&self) -> Checkpoint {
        self.log.checkpoint(self.origin())
    }

    /// The current tree head, signed. Until the log grows after a key rotation, this is the
    /// transition checkpoint, co-signed by the retired key, so a verifier that still trusts only
    /// the old key can check the head and the hand-over.
    pub fn signed_checkpoint(&self) -> String {
        let head = self.checkpoint();
        if let Some(note) = &self.transition {
            if checkpoint::parse_signed_checkpoint(note).is_ok_and(|(c, _)| c == head) {
                return note.clone();
            }
        }
        head.sign(&self.keys)
    }

    /// Signs the current head and writes it to `DATA/checkpoints/latest.txt`, and as the day's
    /// file (`YYYY-MM-DD.txt`, UTC) unless the day has one. Returns the signed checkpoint.
    pub fn publish_checkpoint(&self, now: SystemTime) -> Result<String, LedgerError> {
        let signed = self.signed_checkpoint();
        let dir = self.data_dir.join(CHECKPOINTS_DIR);
        let io = |path: PathBuf| move |source| LedgerError::Io { path, source };
        checkpoint::write_daily_file(&dir, &signed, now).map_err(io(dir.clone()))?;
        let latest = dir.join("latest.txt");
        let tmp = dir.join("latest.txt.tmp");
        std::fs::write(&tmp, &signed).map_err(io(tmp.clone()))?;
        std::fs::rename(&tmp, &latest).map_err(io(latest))?;
        Ok(signed)
    }

    /// A stored measurement (raw bytes loaded), its leaf index and its inclusion proof in the
    /// current tree; `None` when the id is not stored or not logged yet. Fails with
    /// [`LedgerError::Inconsistent`] when the measurement no longer hashes to its leaf (it was
    /// changed in the store after it was logged).
    pub fn prove(&self, store: &dyn Store, id: &str) -> Result<Option<(Record, u64, Vec<Hash>)>, LedgerError> {
        let Some(index) = store.leaf_index(id)? else {
            return Ok(None);
        };
        let Some(record) = store.get(id)? else {
            return Ok(None);
        };
        let size = self.log.size();
        if index >= size {
            return Err(LedgerError::Inconsistent(format!(
                "measurement {id} has leaf index {index} but the log has {size} leaves"
            )));
        }
        let leaf = record_leaf(&record).map_err(|e| LedgerError::Inconsistent(e.to_string()))?;
        if self.log.leaf(index)? != leaf.hash() {
            return Err(LedgerError::Inconsistent(format!(
                "measurement {id} as stored does not hash to log leaf {index}: the stored measurement or \
                 verdict changed after it was logged"
            )));
        }
        let proof = self.log.inclusion_proof(index, size)?;
        Ok(Some((record, index, proof)))
    }

    /// Logs what a store batch newly stored: call it after `store.insert(batch)` returned `Ok`.
    /// Asks the store which of the batch's ids have no leaf yet (the newly stored ones, and any
    /// left unlogged by a crash; duplicates already logged are skipped), appends their leaves in
    /// one batch and records the indexes. After a failure the ledger reconciles before it
    /// appends again.
    pub fn log_stored(&mut self, store: &dyn Store, batch: &[Record]) -> Result<Logged, LedgerError> {
        if self.dirty {
            self.reconcile(store)?;
        }
        let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
        let unlogged: HashSet<String> = store.unlogged_among(&ids)?.into_iter().collect();
        if unlogged.is_empty() {
            return Ok(Logged::default());
        }
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        let mut leaves = Vec::new();
        let mut logged = Logged::default();
        for record in batch {
            if !unlogged.contains(&record.id) || !seen.insert(record.id.as_str()) {
                continue;
            }
            match record_leaf(record) {
                Ok(leaf) => {
                    ids.push(record.id.as_str());
                    leaves.push(leaf.hash());
                }
                Err(_) => logged.unloggable += 1,
            }
        }
        self.append_and_record(store, &ids, &leaves)?;
        logged.appended = leaves.len() as u64;
        Ok(logged)
    }

    fn append_and_record(&mut self, store: &dyn Store, ids: &[&str], leaves: &[Hash]) -> Result<(), LedgerError> {
        if leaves.is_empty() {
            return Ok(());
        }
        self.dirty = true;
        let range = self.log.append_batch(leaves)?;
        let entries: Vec<(&str, u64)> = ids.iter().copied().zip(range).collect();
        store.set_leaf_indexes(&entries)?;
        self.dirty = false;
        Ok(())
    }

    /// Brings the log and the store into agreement (see the module documentation): every stored
    /// measurement without a leaf index gets one, from a leaf already in the log when a crash cut
    /// in after the append, else from a new leaf.
    pub fn reconcile(&mut self, store: &dyn Store) -> Result<Reconciled, LedgerError> {
        let size = self.log.size();
        let tail_start = match store.max_leaf_index()? {
            Some(max) if max >= size => {
                return Err(LedgerError::Inconsistent(format!(
                    "the store records leaf index {max} but the log in {} has only {size} leaves: the log \
                     directory was replaced or truncated; restore it from a backup (a log cannot be rebuilt \
                     without breaking every checkpoint published from it)",
                    self.log.dir().display()
                )));
            }
            Some(max) => max + 1,
            None => 0,
        };
        if store.unlogged_count()? == 0 {
            return Ok(Reconciled::default());
        }
        // Leaves appended after the store's last recorded index: a crash between the log's
        // commit and the store's. Normally none, at most a batch or two.
        let tail: HashMap<Hash, u64> = self
            .log
            .leaves(tail_start..size)?
            .into_iter()
            .zip(tail_start..)
            .collect();
        let mut reconciled = Reconciled::default();
        let mut after: Option<String> = None;
        loop {
            let page = store.unlogged(after.as_deref(), RECONCILE_PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let mut found: Vec<(&str, u64)> = Vec::new();
            let mut ids = Vec::new();
            let mut leaves = Vec::new();
            for record in &page {
                let Ok(leaf) = record_leaf(record) else {
                    reconciled.unloggable += 1;
                    continue;
                };
                let hash = leaf.hash();
                match tail.get(&hash) {
                    Some(&index) => found.push((record.id.as_str(), index)),
                    None => {
                        ids.push(record.id.as_str());
                        leaves.push(hash);
                    }
                }
            }
            self.dirty = true;
            store.set_leaf_indexes(&found)?;
            reconciled.found_in_log += found.len() as u64;
            self.append_and_record(store, &ids, &leaves)?;
            reconciled.appended += leaves.len() as u64;
            if page.len() < RECONCILE_PAGE {
                break;
            }
        }
        self.dirty = false;
        Ok(reconciled)
    }
}
