//! The log's signing keys over time: the keyring, and key rotation.
//!
//! The current key pair lives in `DATA/keys/` (`signer.key`, `verifier.key`, see
//! [`crate::note`]). Beside them, `keyring.json` lists **every** verifier key the log has
//! signed with, each with its status (`current` or `retired`) and validity period (`from`,
//! `until`; `from` is unknown for a key made before keyrings existed). It holds no secret, and is
//! what `GET /api/v1/keys` publishes and `censorwatch evidence verify --keyring` reads.
//!
//! # Rotation ([`rotate`])
//!
//! A new key pair is made under the same name (the name is the log's origin, so checkpoints keep
//! their first line; the key id, a hash of name and public key, tells the keys apart). Before the
//! old private key is given up, it signs two notes together with the new one:
//!
//! - the **rotation statement** (`censorwatch-key-rotation-v1`, the origin, the old and the new
//!   verifier key, the time): whoever trusted the old key can check that its holder handed over
//!   to the new one, and move their trust;
//! - the **transition checkpoint**: the current tree head, co-signed by both keys, so the
//!   checkpoint that follows the rotation verifies under either ([`crate::Ledger`] serves it as
//!   the signed head until the log grows).
//!
//! Both are kept in the retired key's keyring entry. The old key stays in the keyring (public
//! half only), so bundles and checkpoints signed before the rotation keep verifying.
//!
//! # What a crash leaves
//!
//! The steps are: write the new signer key beside the old (`signer.key.next`, 0600, synced);
//! write the new keyring (beside, synced, renamed); rename `signer.key.next` over `signer.key`
//! (the commit point; the old private key is gone with it); rewrite `verifier.key` (beside,
//! renamed). [`recover`] (run when the log is opened for writing) finishes or undoes an
//! interrupted rotation: a `signer.key.next` that the keyring names as current is renamed into
//! place, any other is deleted. Either way one complete key pair is in use, never none and never
//! a mix.

use crate::checkpoint::Checkpoint;
use crate::note::{KeyError, Keys, Note, NoteError, SIGNER_FILE, VERIFIER_FILE, VerifierKey, sign_note_with};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The keyring file in a keys directory.
pub const KEYRING_FILE: &str = "keyring.json";
/// The new signer key while a rotation is in progress.
pub const NEXT_SIGNER_FILE: &str = "signer.key.next";
/// The keyring's `format`.
pub const KEYRING_FORMAT: &str = "censorwatch-keyring-v1";
/// The first line of a rotation statement.
pub const ROTATION_FORMAT: &str = "censorwatch-key-rotation-v1";

/// A key's status in the keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// The key the log signs with now.
    Current,
    /// A key the log signed with before a rotation; its private half is gone.
    Retired,
}

/// One key of the keyring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyringEntry {
    /// The verifier key (C2SP vkey form, `NAME+KEYID+KEY`).
    pub key: String,
    /// Current or retired.
    pub status: KeyStatus,
    /// Since when it signs (RFC 3339), when known.
    pub from: Option<String>,
    /// Until when it signed (RFC 3339): set when it was retired.
    pub until: Option<String>,
    /// For a retired key: the rotation statement, signed by it and by its successor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<String>,
    /// For a retired key: the checkpoint made at the rotation, signed by its successor and by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_checkpoint: Option<String>,
}

/// Why a keyring was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid keyring: {0}")]
pub struct KeyringError(pub String);

/// Every verifier key a log has signed with (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyring {
    /// [`KEYRING_FORMAT`].
    pub format: String,
    /// The log's origin (every key's name).
    pub origin: String,
    /// The keys, oldest first; exactly one is current.
    pub keys: Vec<KeyringEntry>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

impl Keyring {
    /// A keyring holding only `current`, valid from `from` (when known).
    pub fn new(current: &VerifierKey, from: Option<DateTime<Utc>>) -> Keyring {
        Keyring {
            format: KEYRING_FORMAT.into(),
            origin: current.name().to_string(),
            keys: vec![KeyringEntry {
                key: current.to_string(),
                status: KeyStatus::Current,
                from: from.map(rfc3339),
                until: None,
                rotation: None,
                transition_checkpoint: None,
            }],
        }
    }

    /// Parses and checks a keyring: the format, every key (named after the origin, listed once),
    /// exactly one current key, retired keys with an end, and periods that read as times.
    pub fn parse(text: &str) -> Result<Keyring, KeyringError> {
        let bad = |m: String| KeyringError(m);
        let ring: Keyring = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if ring.format != KEYRING_FORMAT {
            return Err(bad(format!("format {:?} is not {KEYRING_FORMAT:?}", ring.format)));
        }
        let mut current = 0;
        let mut seen = std::collections::HashSet::new();
        for entry in &ring.keys {
            let key = VerifierKey::parse(&entry.key).map_err(|e| bad(e.to_string()))?;
            if key.name() != ring.origin {
                return Err(bad(format!(
                    "key {key} is not named after the origin {:?}",
                    ring.origin
                )));
            }
            if !seen.insert(entry.key.clone()) {
                return Err(bad(format!("key {key} is listed twice")));
            }
            for t in [&entry.from, &entry.until].into_iter().flatten() {
                parse_rfc3339(t).ok_or_else(|| bad(format!("{t:?} is not an RFC 3339 time")))?;
            }
            match entry.status {
                KeyStatus::Current => current += 1,
                KeyStatus::Retired if entry.until.is_none() => {
                    return Err(bad(format!("retired key {key} has no end (until)")));
                }
                KeyStatus::Retired => {}
            }
        }
        if current != 1 {
            return Err(bad(format!("{current} keys are current; exactly one must be")));
        }
        Ok(ring)
    }

    /// Reads `path`; `None` when there is no such file.
    pub fn read(path: &Path) -> Result<Option<Keyring>, KeyError> {
        match fs::read_to_string(path) {
            Ok(text) => Keyring::parse(&text).map(Some).map_err(|e| KeyError::Io {
                path: path.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeyError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The current key's entry.
    pub fn current(&self) -> &KeyringEntry {
        self.keys
            .iter()
            .find(|k| k.status == KeyStatus::Current)
            .expect("a parsed keyring has a current key")
    }

    /// Every verifier key, oldest first.
    pub fn verifier_keys(&self) -> Vec<VerifierKey> {
        self.keys
            .iter()
            .filter_map(|k| VerifierKey::parse(&k.key).ok())
            .collect()
    }

    /// The entry of `key`, if the keyring lists it.
    pub fn entry(&self, key: &VerifierKey) -> Option<&KeyringEntry> {
        let text = key.to_string();
        self.keys.iter().find(|k| k.key == text)
    }

    /// Whether `key` was in use at `at`: `None` when the keyring does not list it, else whether
    /// `at` lies within its period (an unknown start is open).
    pub fn valid_at(&self, key: &VerifierKey, at: DateTime<Utc>) -> Option<bool> {
        let entry = self.entry(key)?;
        let after_start = entry
            .from
            .as_deref()
            .and_then(parse_rfc3339)
            .is_none_or(|from| at >= from);
        let before_end = entry
            .until
            .as_deref()
            .and_then(parse_rfc3339)
            .is_none_or(|until| at <= until);
        Some(after_start && before_end)
    }

    /// The keyring as pretty JSON, ending in a newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a keyring serializes");
        s.push('\n');
        s
    }
}

/// Writes `bytes` to `path` atomically: beside it (mode `mode`, synced), renamed over it, and
/// the directory synced.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `ring` as `dir/keyring.json`, atomically (mode 0644: it holds no secret).
pub fn write_keyring(dir: &Path, ring: &Keyring) -> Result<(), KeyError> {
    let path = dir.join(KEYRING_FILE);
    write_atomically(&path, ring.to_json().as_bytes(), 0o644).map_err(io_err(&path))
}

/// What [`recover`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// Nothing was interrupted.
    Nothing,
    /// An interrupted rotation was finished: the new key is in use.
    Finished,
    /// An interrupted rotation was undone: the old key stays in use.
    Undone,
}

/// Finishes or undoes a rotation a crash interrupted (see the module documentation), rewrites a
/// `verifier.key` a crash left behind, and writes the keyring if there is none yet (listing the
/// current key, start unknown). Needs write access; a directory without a signer key is left
/// alone.
pub fn recover(dir: &Path) -> Result<Recovered, KeyError> {
    let signer_path = dir.join(SIGNER_FILE);
    let next_path = dir.join(NEXT_SIGNER_FILE);
    let ring_path = dir.join(KEYRING_FILE);
    if !signer_path.exists() {
        return Ok(Recovered::Nothing);
    }
    let ring = Keyring::read(&ring_path)?;
    let mut recovered = Recovered::Nothing;
    if next_path.exists() {
        let next = fs::read_to_string(&next_path)
            .ok()
            .and_then(|t| Keys::parse_signer_key(&t).ok());
        let committed = match (&next, &ring) {
            (Some(next), Some(ring)) => ring.current().key == next.verifier().to_string(),
            _ => false,
        };
        if committed {
            fs::rename(&next_path, &signer_path).map_err(io_err(&signer_path))?;
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
            recovered = Recovered::Finished;
        } else {
            fs::remove_file(&next_path).map_err(io_err(&next_path))?;
            recovered = Recovered::Undone;
        }
    }
    // The signer key decides; `verifier.key` follows it.
    let text = fs::read_to_string(&signer_path).map_err(io_err(&signer_path))?;
    let keys = Keys::parse_signer_key(&text).map_err(|source| KeyError::Bad {
        path: signer_path.clone(),
        source,
    })?;
    let verifier_path = dir.join(VERIFIER_FILE);
    let public = format!("{}\n", keys.verifier());
    if fs::read_to_string(&verifier_path).ok().as_deref() != Some(public.as_str()) {
        let stale_is_ours = match fs::read_to_string(&verifier_path) {
            Err(_) => true,
            Ok(old) => ring
                .as_ref()
                .is_some_and(|r| r.keys.iter().any(|k| k.key == old.trim())),
        };
        if stale_is_ours {
            write_atomically(&verifier_path, public.as_bytes(), 0o644).map_err(io_err(&verifier_path))?;
        }
    }
    match ring {
        None => write_keyring(dir, &Keyring::new(keys.verifier(), None))?,
        Some(ring) if ring.current().key != keys.verifier().to_string() => {
            return Err(KeyError::Io {
                path: ring_path,
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the keyring's current key {} is not the signer key's {} (was signer.key replaced by hand?); \
                         restore the matching signer.key, or rotate properly",
                        ring.current().key,
                        keys.verifier()
                    ),
                ),
            });
        }
        Some(_) => {}
    }
    Ok(recovered)
}

/// The text of a rotation statement.
pub fn rotation_text(origin: &str, old: &VerifierKey, new: &VerifierKey, at: DateTime<Utc>) -> String {
    format!(
        "{ROTATION_FORMAT}\norigin {origin}\nold {old}\nnew {new}\ntime {}\n",
        rfc3339(at)
    )
}

/// A checked rotation statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationStatement {
    /// The retired key.
    pub old: VerifierKey,
    /// Its successor.
    pub new: VerifierKey,
    /// When.
    pub time: DateTime<Utc>,
}

/// Checks a signed rotation statement: well formed, and signed by both the old and the new key
/// it names. `trusted_old` (when given) must be the old key: that is how trust moves from a key
/// one holds to its successor.
pub fn verify_rotation(note: &str, trusted_old: Option<&VerifierKey>) -> Result<RotationStatement, NoteError> {
    let parsed = Note::parse(note)?;
    let bad = |m: &str| NoteError::Malformed(format!("not a rotation statement: {m}"));
    let mut lines = parsed.text.lines();
    if lines.next() != Some(ROTATION_FORMAT) {
        return Err(bad(&format!("the first line is not {ROTATION_FORMAT}")));
    }
    let mut field = |name: &str| {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .map(str::to_string)
            .ok_or_else(|| bad(&format!("no {name} line")))
    };
    let origin = field("origin")?;
    let old = VerifierKey::parse(&field("old")?)?;
    let new = VerifierKey::parse(&field("new")?)?;
    let time = parse_rfc3339(&field("time")?).ok_or_else(|| bad("the time is not RFC 3339"))?;
    if old.name() != origin || new.name() != origin {
        return Err(bad("the keys are not named after the origin"));
    }
    if let Some(trusted) = trusted_old {
        if *trusted != old {
            return Err(bad(&format!("it retires {old}, not the trusted key {trusted}")));
        }
    }
    parsed.verify(&old)?;
    parsed.verify(&new)?;
    Ok(RotationStatement { old, new, time })
}

/// What [`rotate`] did.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The retired verifier key.
    pub old: VerifierKey,
    /// The new verifier key.
    pub new: VerifierKey,
    /// When.
    pub at: DateTime<Utc>,
    /// The rotation statement, signed by both.
    pub statement: String,
    /// `checkpoint`, signed by the new key and co-signed by the old one.
    pub transition_checkpoint: String,
    /// The keyring as written.
    pub keyring: Keyring,
}

/// Rotates the key pair in `dir` whose current keys are `current` (see the module
/// documentation): returns the new keys and what was signed. `checkpoint` is the tree head to
/// co-sign as the transition checkpoint. `fail_after` stops after that many steps (1: the new
/// key written, 2: the keyring written, 3: the commit) — for crash tests only; 0 runs them all.
pub fn rotate(
    dir: &Path,
    current: &Keys,
    checkpoint: &Checkpoint,
    at: DateTime<Utc>,
    fail_after: u8,
) -> Result<(Keys, Rotation), KeyError> {
    let signer_path = dir.join(SIGNER_FILE);
    // The keys on disk must be the ones in hand: a stale in-memory key must not retire another.
    let on_disk = Keys::load(dir)?;
    if on_disk.verifier() != current.verifier() {
        return Err(KeyError::VerifierMismatch {
            path: signer_path,
            expected: current.verifier().to_string(),
        });
    }
    let mut ring = Keyring::read(&dir.join(KEYRING_FILE))?.unwrap_or_else(|| Keyring::new(current.verifier(), None));
    let new = Keys::generate(current.name())?;
    let stopped = || KeyError::Random("rotation stopped for a test".into());

    // 1. The new signer key, beside the old one.
    let next_path = dir.join(NEXT_SIGNER_FILE);
    let _ = fs::remove_file(&next_path);
    new.write_signer_file(&next_path).map_err(io_err(&next_path))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    if fail_after == 1 {
        return Err(stopped());
    }

    // 2. The notes both keys sign, and the keyring that names the new key current.
    let statement = sign_note_with(
        &rotation_text(current.name(), current.verifier(), new.verifier(), at),
        &[&new, current],
    )
    .expect("a rotation statement is a valid note text");
    let transition_checkpoint =
        sign_note_with(&checkpoint.body(), &[&new, current]).expect("a checkpoint body is a valid note text");
    for entry in &mut ring.keys {
        if entry.status == KeyStatus::Current {
            entry.status = KeyStatus::Retired;
            entry.until = Some(rfc3339(at));
            entry.rotation = Some(statement.clone());
            entry.transition_checkpoint = Some(transition_checkpoint.clone());
        }
    }
    ring.keys.push(KeyringEntry {
        key: new.verifier().to_string(),
        status: KeyStatus::Current,
        from: Some(rfc3339(at)),
        until: None,
        rotation: None,
        transition_checkpoint: None,
    });
    write_keyring(dir, &ring)?;
    if fail_after == 2 {
        return Err(stopped());
    }

    // 3. The commit: the new signer key replaces the old, whose private half is gone.
    fs::rename(&next_path, &signer_path).map_err(io_err(&signer_path))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    if fail_after == 3 {
        return Err(stopped());
    }

    // 4. The published verifier key.
    let verifier_path = dir.join(VERIFIER_FILE);
    write_atomically(&verifier_path, format!("{}\n", new.verifier()).as_bytes(), 0o644)
        .map_err(io_err(&verifier_path))?;
    Ok((
        new.clone(),
        Rotation {
            old: current.verifier().clone(),
            new: new.verifier().clone(),
            at,
            statement,
            transition_checkpoint,
            keyring: ring,
        },
    ))
}

/// The keys directory's keyring path.
pub fn keyring_path(keys_dir: &Path) -> PathBuf {
    keys_dir.join(KEYRING_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::open_checkpoint;
    use std::os::unix::fs::PermissionsExt;

    fn t(s: &str) -> DateTime<Utc> {
        parse_rfc3339(s).unwrap()
    }

    fn fresh() -> (tempfile::TempDir, PathBuf, Keys) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let keys = Keys::load_or_create(&dir, "example.org/log").unwrap();
        assert_eq!(recover(&dir).unwrap(), Recovered::Nothing);
        (tmp, dir, keys)
    }

    #[test]
    fn a_rotation_hands_over_from_the_old_key_to_the_new() {
        let (_tmp, dir, old) = fresh();
        let cp = Checkpoint::new("example.org/log", 7, [3; 32]);
        let at = t("2026-12-03T18:00:00Z");
        let (new, rotation) = rotate(&dir, &old, &cp, at, 0).unwrap();
        assert_ne!(new.verifier(), old.verifier());
        assert_eq!(new.name(), old.name(), "the origin stays");
        // On disk: the new pair, 0600 signer, and the keyring.
        let loaded = Keys::load(&dir).unwrap();
        assert_eq!(loaded.verifier(), new.verifier());
        let mode = fs::metadata(dir.join(SIGNER_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.join(NEXT_SIGNER_FILE).exists());
        let ring = Keyring::read(&dir.join(KEYRING_FILE)).unwrap().unwrap();
        assert_eq!(ring, rotation.keyring);
        assert_eq!(ring.keys.len(), 2);
        assert_eq!(ring.keys[0].key, old.verifier().to_string());
        assert_eq!(ring.keys[0].status, KeyStatus::Retired);
        assert_eq!(ring.keys[0].until.as_deref(), Some("2026-12-03T18:00:00Z"));
        assert_eq!(ring.current().key, new.verifier().to_string());
        assert_eq!(ring.current().from.as_deref(), Some("2026-12-03T18:00:00Z"));
        // The transition checkpoint verifies under either key, and has two signatures.
        for key in [old.verifier(), new.verifier()] {
            assert_eq!(open_checkpoint(&rotation.transition_checkpoint, key).unwrap(), cp);
        }
        assert_eq!(
            Note::parse(&rotation.transition_checkpoint).unwrap().signatures.len(),
            2
        );
        // The statement moves trust from the old key to the new one.
        let st = verify_rotation(&rotation.statement, Some(old.verifier())).unwrap();
        assert_eq!(
            (st.old, st.new, st.time),
            (old.verifier().clone(), new.verifier().clone(), at)
        );
        assert!(verify_rotation(&rotation.statement, Some(new.verifier())).is_err());
        let forged = rotation.statement.replace("time 2026", "time 2025");
        assert!(verify_rotation(&forged, None).is_err());
        // Validity periods.
        assert_eq!(ring.valid_at(old.verifier(), t("2026-12-03T17:59:59Z")), Some(true));
        assert_eq!(ring.valid_at(old.verifier(), t("2026-12-03T18:00:01Z")), Some(false));
        assert_eq!(ring.valid_at(new.verifier(), t("2026-12-03T17:59:59Z")), Some(false));
        assert_eq!(ring.valid_at(new.verifier(), t("2030-01-01T00:00:00Z")), Some(true));
        let stranger = Keys::from_seed("example.org/log", &[9; 32]).unwrap();
        assert_eq!(ring.valid_at(stranger.verifier(), at), None);
        // A second rotation keeps both earlier keys.
        let (third, _) = rotate(&dir, &new, &cp, t("2026-12-04T00:00:00Z"), 0).unwrap();
        let ring = Keyring::read(&dir.join(KEYRING_FILE)).unwrap().unwrap();
        assert_eq!(
            ring.verifier_keys(),
            vec![old.verifier().clone(), new.verifier().clone(), third.verifier().clone()]
        );
        assert_eq!(recover(&dir).unwrap(), Recovered::Nothing);
        // A stale key in hand cannot rotate.
        assert!(rotate(&dir, &new, &cp, t("2026-12-05T00:00:00Z"), 0).is_err());
    }

    #[test]
    fn a_crash_at_any_step_leaves_one_whole_key_pair() {
        let cp = Checkpoint::new("example.org/log", 1, [1; 32]);
        for step in 1..=3u8 {
            let (_tmp, dir, old) = fresh();
            let err = rotate(&dir, &old, &cp, t("2026-12-03T18:00:00Z"), step);
            assert!(err.is_err(), "step {step}");
            let outcome = recover(&dir).unwrap();
            let keys = Keys::load(&dir).unwrap_or_else(|e| panic!("step {step}: {e}"));
            let ring = Keyring::read(&dir.join(KEYRING_FILE)).unwrap().unwrap();
            assert_eq!(ring.current().key, keys.verifier().to_string(), "step {step}");
            assert!(!dir.join(NEXT_SIGNER_FILE).exists(), "step {step}");
            let public = fs::read_to_string(dir.join(VERIFIER_FILE)).unwrap();
            assert_eq!(public.trim(), keys.verifier().to_string(), "step {step}");
            match step {
                1 => {
                    assert_eq!(outcome, Recovered::Undone);
                    assert_eq!(keys.verifier(), old.verifier(), "before the keyring: the old key stays");
                    assert_eq!(ring.keys.len(), 1);
                }
                2 => {
                    assert_eq!(outcome, Recovered::Finished);
                    assert_ne!(
                        keys.verifier(),
                        old.verifier(),
                        "after the keyring: the new key takes over"
                    );
                }
                _ => {
                    assert_eq!(outcome, Recovered::Nothing);
                    assert_ne!(keys.verifier(), old.verifier());
                }
            }
            // Signing still works with what is there.
            let note = keys.sign_note("ok\n").unwrap();
            assert!(Note::parse(&note).unwrap().verify(keys.verifier()).is_ok());
        }
    }

    #[test]
    fn keyrings_are_checked() {
        let a = Keys::from_seed("o", &[1; 32]).unwrap();
        let b = Keys::from_seed("o", &[2; 32]).unwrap();
        let other = Keys::from_seed("p", &[3; 32]).unwrap();
        let good = Keyring::new(a.verifier(), Some(t("2026-01-01T00:00:00Z")));
        assert_eq!(Keyring::parse(&good.to_json()).unwrap(), good);
        let mut two_current = good.clone();
        two_current.keys.push(Keyring::new(b.verifier(), None).keys[0].clone());
        let mut retired_open = good.clone();
        retired_open.keys[0].status = KeyStatus::Retired;
        let mut foreign = good.clone();
        foreign.keys[0].key = other.verifier().to_string();
        let mut bad_time = good.clone();
        bad_time.keys[0].from = Some("yesterday".into());
        let mut twice = good.clone();
        twice.keys.push(good.keys[0].clone());
        twice.keys[1].status = KeyStatus::Retired;
        twice.keys[1].until = Some("2026-01-02T00:00:00Z".into());
        for (what, ring) in [
            ("two current", two_current),
            ("retired without end", retired_open),
            ("foreign name", foreign),
            ("bad time", bad_time),
            ("listed twice", twice),
        ] {
            assert!(Keyring::parse(&ring.to_json()).is_err(), "{what}");
        }
        assert!(Keyring::parse("{}").is_err());
    }
}
