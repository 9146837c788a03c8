//! C2SP signed notes with Ed25519, and the server's signing key.
//!
//! A signed note is a text (UTF-8, ending in a newline) followed by a blank line and one line per
//! signature: `— <key name> <base64(key id || signature)>`, where the key id is the first four
//! bytes of `SHA-256(key name || 0x0A || 0x01 || public key)` and the signature is Ed25519 over
//! the text. A verifier key is written `<name>+<8 hex digits of the key id>+<base64(0x01 ||
//! public key)>`, a signer key `PRIVATE+KEY+<name>+<key id>+<base64(0x01 || seed)>` (the forms
//! of golang.org/x/mod/sumdb/note, so the Go tools read our keys and notes).
//!
//! [`Keys::load_or_create`] keeps the key pair in a directory (`DATA/keys/`): `signer.key` (mode
//! 0600; refused if others can read it) and `verifier.key` (the verifier key, to publish).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The signature type byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;
/// The em dash and space that start a signature line.
const SIG_PREFIX: &str = "\u{2014} ";
/// The longest note parsed (checkpoints are a few hundred bytes).
const MAX_NOTE: usize = 1 << 20;
/// The most signature lines parsed.
const MAX_SIGNATURES: usize = 100;

/// The signer key file in a keys directory.
pub const SIGNER_FILE: &str = "signer.key";
/// The verifier key file in a keys directory.
pub const VERIFIER_FILE: &str = "verifier.key";

/// Why a note or a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not a well-formed key.
    #[error("not a valid {kind} key: {detail}")]
    BadKey {
        /// `verifier` or `signer`.
        kind: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Not a well-formed signed note.
    #[error("not a valid signed note: {0}")]
    Malformed(String),
    /// No signature line by the key's name and id.
    #[error("no signature by key {key} (signed by: {found})")]
    NoSignatureByKey {
        /// The verifier key looked for.
        key: String,
        /// The signers present (`name+keyid`), or `nobody`.
        found: String,
    },
    /// A signature by the key's name and id that does not verify.
    #[error("signature does not verify with key {key}")]
    BadSignature {
        /// The verifier key.
        key: String,
    },
}

/// Why the keys directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// A key file holds no valid key.
    #[error("{}: {source}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: NoteError,
    },
    /// Others may read the signer key.
    #[error("{}: the signing key is readable by others (mode {mode:o}); run chmod 600 on it", path.display())]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key on disk is for another name.
    #[error("{}: the key is named {found:?}, not {wanted:?} (a key's name is part of its id and cannot change)", path.display())]
    NameMismatch {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        wanted: String,
        /// The name on disk.
        found: String,
    },
    /// `verifier.key` is not the signer's verifier key.
    #[error("{}: does not match {SIGNER_FILE} (expected {expected})", path.display())]
    VerifierMismatch {
        /// The file.
        path: PathBuf,
        /// The verifier key of the signer key.
        expected: String,
    },
    /// The system random number generator failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// Whether `name` may name a key: non-empty, no `+`, no whitespace or control characters.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c == '+' || c.is_whitespace() || c.is_control())
}

fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A note verifier key: a name, a key id and an Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    public: VerifyingKey,
}

impl VerifierKey {
    /// The verifier key of an Ed25519 public key under `name`.
    pub fn new(name: &str, public: VerifyingKey) -> Result<VerifierKey, NoteError> {
        if !valid_key_name(name) {
            return Err(NoteError::BadKey {
                kind: "verifier",
                detail: format!("{name:?} is not a valid key name"),
            });
        }
        Ok(VerifierKey {
            name: name.to_string(),
            id: key_id(name, public.as_bytes()),
            public,
        })
    }

    /// Parses `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn parse(s: &str) -> Result<VerifierKey, NoteError> {
        let bad = |detail: &str| NoteError::BadKey {
            kind: "verifier",
            detail: detail.to_string(),
        };
        let s = s.trim();
        let (name, rest) = s.split_once('+').ok_or_else(|| bad("expected NAME+KEYID+KEY"))?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or_else(|| bad("expected NAME+KEYID+KEY"))?;
        if !valid_key_name(name) {
            return Err(bad("the name is empty or holds a space or a control character"));
        }
        let id = parse_key_id(id_hex).ok_or_else(|| bad("the key id is not 8 lowercase hex digits"))?;
        let raw = B64.decode(key_b64).map_err(|_| bad("the key is not base64"))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(bad("the key is not an Ed25519 key (type 0x01, 32 bytes)"));
        }
        let public = VerifyingKey::from_bytes(raw[1..].try_into().expect("32 bytes"))
            .map_err(|_| bad("the key is not a valid Ed25519 point"))?;
        let key = VerifierKey::new(name, public)?;
        if key.id != id {
            return Err(bad(&format!(
                "the key id {id:08x} is not the hash of the name and key ({:08x})",
                key.id
            )));
        }
        Ok(key)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id (the first four bytes of the hash of name, type and public key).
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public.to_bytes()
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.public
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

/// Parses the 8 lowercase hex digits of a key id. Uppercase is refused (Go's parser takes it):
/// a key has exactly one text form, so comparing keys as text (as bundles do) is sound.
fn parse_key_id(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(self.public.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl FromStr for VerifierKey {
    type Err = NoteError;
    fn from_str(s: &str) -> Result<Self, NoteError> {
        VerifierKey::parse(s)
    }
}

/// The server's key pair: signs notes (checkpoints, bundle manifests).
#[derive(Clone)]
pub struct Keys {
    signing: SigningKey,
    verifier: VerifierKey,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("Keys").field("verifier", &self.verifier).finish()
    }
}

impl Keys {
    /// A key pair from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Keys, NoteError> {
        let signing = SigningKey::from_bytes(seed);
        let verifier = VerifierKey::new(name, signing.verifying_key())?;
        Ok(Keys { signing, verifier })
    }

    /// A new random key pair (seed from the operating system).
    pub fn generate(name: &str) -> Result<Keys, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let keys = Keys::from_seed(name, &seed).map_err(|source| KeyError::Bad {
            path: PathBuf::from(name),
            source,
        });
        seed.fill(0);
        keys
    }

    /// Parses a signer key `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`.
    pub fn parse_signer_key(s: &str) -> Result<Keys, NoteError> {
        let bad = |detail: &str| NoteError::BadKey {
            kind: "signer",
            detail: detail.to_string(),
        };
        let rest = s
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("expected PRIVATE+KEY+NAME+KEYID+KEY"))?;
        let (name, rest) = rest.split_once('+').ok_or_else(|| bad("expected NAME+KEYID+KEY"))?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or_else(|| bad("expected NAME+KEYID+KEY"))?;
        let id = parse_key_id(id_hex).ok_or_else(|| bad("the key id is not 8 lowercase hex digits"))?;
        let raw = B64.decode(key_b64).map_err(|_| bad("the key is not base64"))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(bad("the key is not an Ed25519 seed (type 0x01, 32 bytes)"));
        }
        let keys = Keys::from_seed(name, raw[1..].try_into().expect("32 bytes")).map_err(|_| bad("bad name"))?;
        if keys.verifier.id != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(keys)
    }

    fn signer_key_string(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(self.signing.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.verifier.name,
            self.verifier.id,
            B64.encode(raw)
        )
    }

    /// Loads the key pair from `dir` (`signer.key`, `verifier.key`), or creates one named `name`
    /// if there is none yet (the directory mode 0700, `signer.key` 0600). A key already there
    /// must have that name: the name is part of the key id and of every checkpoint's signature.
    pub fn load_or_create(dir: &Path, name: &str) -> Result<Keys, KeyError> {
        let signer_path = dir.join(SIGNER_FILE);
        if signer_path.exists() {
            let keys = Keys::load(dir)?;
            if keys.name() != name {
                return Err(KeyError::NameMismatch {
                    path: signer_path,
                    wanted: name.to_string(),
                    found: keys.name().to_string(),
                });
            }
            return Ok(keys);
        }
        if !valid_key_name(name) {
            return Err(KeyError::Bad {
                path: signer_path,
                source: NoteError::BadKey {
                    kind: "signer",
                    detail: format!("{name:?} is not a valid key name"),
                },
            });
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| KeyError::Io { path, source }
        };
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io(dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        }
        let keys = Keys::generate(name)?;
        // Written beside, then renamed: a crash leaves no half-written key behind.
        let tmp = dir.join(format!("{SIGNER_FILE}.tmp"));
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(format!("{}\n", keys.signer_key_string()).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io(&tmp))?;
        drop(f);
        write_public(&dir.join(VERIFIER_FILE), &keys.verifier).map_err(io(&dir.join(VERIFIER_FILE)))?;
        fs::rename(&tmp, &signer_path).map_err(io(&signer_path))?;
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
        Ok(keys)
    }

    /// Loads the key pair from `dir`; rewrites `verifier.key` if it is missing.
    pub fn load(dir: &Path) -> Result<Keys, KeyError> {
        let signer_path = dir.join(SIGNER_FILE);
        let meta = fs::metadata(&signer_path).map_err(|source| KeyError::Io {
            path: signer_path.clone(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: signer_path,
                mode,
            });
        }
        let text = fs::read_to_string(&signer_path).map_err(|source| KeyError::Io {
            path: signer_path.clone(),
            source,
        })?;
        let keys = Keys::parse_signer_key(&text).map_err(|source| KeyError::Bad {
            path: signer_path.clone(),
            source,
        })?;
        let verifier_path = dir.join(VERIFIER_FILE);
        match fs::read_to_string(&verifier_path) {
            Ok(text) => {
                if text.trim() != keys.verifier.to_string() {
                    return Err(KeyError::VerifierMismatch {
                        path: verifier_path,
                        expected: keys.verifier.to_string(),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_public(&verifier_path, &keys.verifier).map_err(|source| KeyError::Io {
                    path: verifier_path,
                    source,
                })?;
            }
            Err(source) => {
                return Err(KeyError::Io {
                    path: verifier_path,
                    source,
                });
            }
        }
        Ok(keys)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.verifier.name
    }

    /// The verifier key, to publish.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// Signs `text` (UTF-8, ending in a newline) as a note: returns the text, a blank line and
    /// this key's signature line.
    pub fn sign_note(&self, text: &str) -> Result<String, NoteError> {
        sign_note_with(text, &[self])
    }

    fn signature_line(&self, text: &str) -> String {
        let sig = self.signing.sign(text.as_bytes()).to_bytes();
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&self.verifier.id.to_be_bytes());
        blob.extend_from_slice(&sig);
        format!("{SIG_PREFIX}{} {}\n", self.verifier.name, B64.encode(blob))
    }

    /// Writes the signer key to `path` (mode 0600, created anew: an existing file is an error)
    /// and syncs it.
    pub(crate) fn write_signer_file(&self, path: &Path) -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        f.write_all(format!("{}\n", self.signer_key_string()).as_bytes())?;
        f.sync_all()
    }
}

/// Signs `text` as one note carrying a signature line by each of `signers`, in order (a
/// co-signed note: C2SP signed notes may carry several signatures, and a verifier checks the
/// one by the key it trusts).
pub fn sign_note_with(text: &str, signers: &[&Keys]) -> Result<String, NoteError> {
    check_text(text)?;
    if signers.is_empty() {
        return Err(NoteError::Malformed("a note needs at least one signature".into()));
    }
    let mut note = format!("{text}\n");
    for keys in signers {
        note.push_str(&keys.signature_line(text));
    }
    Ok(note)
}

pub(crate) fn write_public(path: &Path, key: &VerifierKey) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)?;
    f.write_all(format!("{key}\n").as_bytes())?;
    f.sync_all()
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text must end with a newline".into()));
    }
    if text.chars().any(|c| c.is_ascii_control() && c != '\n') {
        return Err(NoteError::Malformed(
            "the text holds a control character other than newline".into(),
        ));
    }
    Ok(())
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id.
    pub key_id: u32,
    /// The signature bytes (64 for Ed25519; other types are kept but never verify here).
    pub signature: Vec<u8>,
}

/// A parsed (not yet verified) signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note.
    pub fn parse(note: &str) -> Result<Note, NoteError> {
        if note.len() > MAX_NOTE {
            return Err(NoteError::Malformed(format!("longer than {MAX_NOTE} bytes")));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let text = &note[..split + 1];
        check_text(text)?;
        let sigs = &note[split + 2..];
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "the last signature line does not end with a newline".into(),
            ));
        }
        let mut signatures = Vec::new();
        for (n, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
            if n >= MAX_SIGNATURES {
                return Err(NoteError::Malformed(format!("more than {MAX_SIGNATURES} signatures")));
            }
            let bad = |what: &str| NoteError::Malformed(format!("signature line {}: {what}", n + 1));
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or_else(|| bad("does not start with an em dash and a space"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| bad("no space between name and signature"))?;
            if !valid_key_name(name) {
                return Err(bad("the key name is not valid"));
            }
            let blob = B64.decode(b64).map_err(|_| bad("the signature is not base64"))?;
            if blob.len() < 5 {
                return Err(bad("the signature is too short"));
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id: u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]),
                signature: blob[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signature".into()));
        }
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }

    /// Checks that the note carries a valid signature by `key` (other signatures are ignored).
    pub fn verify(&self, key: &VerifierKey) -> Result<(), NoteError> {
        let mut matching = self
            .signatures
            .iter()
            .filter(|s| s.name == key.name && s.key_id == key.id)
            .peekable();
        if matching.peek().is_none() {
            let found: Vec<String> = self
                .signatures
                .iter()
                .map(|s| format!("{}+{:08x}", s.name, s.key_id))
                .collect();
            return Err(NoteError::NoSignatureByKey {
                key: key.to_string(),
                found: if found.is_empty() {
                    "nobody".into()
                } else {
                    found.join(", ")
                },
            });
        }
        let ok = matching.any(|s| {
            <&[u8; 64]>::try_from(s.signature.as_slice()).is_ok_and(|sig| key.verify(self.text.as_bytes(), sig))
        });
        if ok {
            Ok(())
        } else {
            Err(NoteError::BadSignature { key: key.to_string() })
        }
    }
}

/// Parses `note` and checks its signature by `key`; returns the signed text.
pub fn open_note(note: &str, key: &VerifierKey) -> Result<String, NoteError> {
    let parsed = Note::parse(note)?;
    parsed.verify(key)?;
    Ok(parsed.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example key pair and signed note of golang.org/x/mod/sumdb/note (package
    // documentation and note_test.go), used as a known answer for the wire format.
    const GO_SIGNER: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_SIG: &str = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";

    #[test]
    fn go_sumdb_note_known_answer() {
        let keys = Keys::parse_signer_key(GO_SIGNER).unwrap();
        assert_eq!(keys.verifier().to_string(), GO_VERIFIER);
        assert_eq!(keys.signer_key_string(), GO_SIGNER);
        let note = keys.sign_note(GO_TEXT).unwrap();
        assert_eq!(note, format!("{GO_TEXT}\n\u{2014} PeterNeumann {GO_SIG}\n"));
        let vk = VerifierKey::parse(GO_VERIFIER).unwrap();
        assert_eq!(open_note(&note, &vk).unwrap(), GO_TEXT);
        let forged = note.replace("cryptography", "cryptographY");
        assert_eq!(
            open_note(&forged, &vk),
            Err(NoteError::BadSignature {
                key: GO_VERIFIER.into()
            })
        );
    }

    #[test]
    fn verifier_key_manglings_are_refused() {
        let b = GO_VERIFIER.as_bytes();
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] = if m[i] == b'A' { b'B' } else { b'A' };
            if let Ok(s) = String::from_utf8(m) {
                if s != GO_VERIFIER {
                    assert!(VerifierKey::parse(&s).is_err(), "{s}");
                }
            }
        }
        assert!(VerifierKey::parse(&GO_VERIFIER[..GO_VERIFIER.len() - 4]).is_err());
    }

    #[test]
    fn other_signers_are_named() {
        let a = Keys::from_seed("a.example/log", &[1; 32]).unwrap();
        let b = Keys::from_seed("b.example/log", &[2; 32]).unwrap();
        let note = a.sign_note("hello\n").unwrap();
        let err = open_note(&note, b.verifier()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no signature by key {} (signed by: a.example/log+{:08x})",
                b.verifier(),
                a.verifier().key_id()
            )
        );
    }

    #[test]
    fn malformed_notes() {
        let a = Keys::from_seed("a", &[1; 32]).unwrap();
        assert!(a.sign_note("no newline").is_err());
        assert!(a.sign_note("bell\u{7}\n").is_err());
        for bad in ["hello\n", "hello\n\n", "hello\n\nx y\n", "hello\n\n\u{2014} a !!!\n"] {
            assert!(Note::parse(bad).is_err(), "{bad:?}");
        }
    }
}
