//! Checkpoints: the C2SP tlog-checkpoint text of a tree head, signed as a note, and the daily
//! checkpoint files to publish elsewhere.
//!
//! A checkpoint body is three lines — the log's origin, the tree size in decimal, the root hash
//! in standard base64 — optionally followed by extension lines; the signed checkpoint is that
//! body as a signed note (see [`crate::note`]). censorwatch signs with a key whose name is the
//! origin.

use crate::merkle::Hash;
use crate::note::{Keys, Note, NoteError, VerifierKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note is malformed or its signature does not verify.
    #[error("{0}")]
    Note(#[from] NoteError),
    /// The body is not a checkpoint.
    #[error("not a valid checkpoint: {0}")]
    Malformed(String),
}

/// A tree head under an origin: what a signed checkpoint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin (its name, a schema-less URL such as `censorwatch.example/log`).
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The tree head.
    pub root: Hash,
    /// Extension lines after the root (none written by censorwatch; kept when parsed).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root: Hash) -> Checkpoint {
        Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The root in base64, as the body writes it.
    pub fn root_base64(&self) -> String {
        B64.encode(self.root)
    }

    /// The checkpoint body: `<origin>\n<size>\n<base64 root>\n` and any extension lines.
    pub fn body(&self) -> String {
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, self.root_base64());
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a checkpoint body (the text of the signed note).
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |m: &str| CheckpointError::Malformed(m.to_string());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the body does not end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad("the origin line is empty"));
        }
        let size_line = lines.next().ok_or_else(|| bad("no tree size line"))?;
        if size_line.is_empty()
            || !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(bad(&format!("the tree size {size_line:?} is not a decimal number")));
        }
        let size = size_line
            .parse()
            .map_err(|_| bad(&format!("the tree size {size_line:?} is too large")))?;
        let root_line = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root: Hash = B64
            .decode(root_line)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad(&format!("the root {root_line:?} is not 32 bytes of base64")))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// Signs the checkpoint with `keys`: the signed note, ready to publish.
    pub fn sign(&self, keys: &Keys) -> String {
        keys.sign_note(&self.body())
            .expect("a checkpoint body is a valid note text")
    }
}

/// Parses a signed checkpoint without checking any signature.
pub fn parse_signed_checkpoint(note: &str) -> Result<(Checkpoint, Note), CheckpointError> {
    let parsed = Note::parse(note)?;
    Ok((Checkpoint::parse_body(&parsed.text)?, parsed))
}

/// Parses a signed checkpoint and checks its signature by `key`.
pub fn open_checkpoint(note: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
    let parsed = Note::parse(note)?;
    parsed.verify(key)?;
    Checkpoint::parse_body(&parsed.text)
}

/// The daily checkpoint file for the UTC day of `at`: `dir/YYYY-MM-DD.txt`.
pub fn daily_file_path(dir: &Path, at: SystemTime) -> PathBuf {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let day = chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), 0).unwrap_or_default();
    dir.join(format!("{}.txt", day.format("%Y-%m-%d")))
}

/// Writes `signed_checkpoint` as the daily checkpoint file of `at`'s UTC day, unless that day
/// has one already: the first checkpoint of a day is the one published, and it never changes
/// afterwards. Returns the path written, or `None` if the day's file was there. The file is
/// written beside and renamed, so a reader never sees half of it.
pub fn write_daily_file(dir: &Path, signed_checkpoint: &str, at: SystemTime) -> io::Result<Option<PathBuf>> {
    let path = daily_file_path(dir, at);
    if path.exists() {
        return Ok(None);
    }
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("txt.tmp");
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    f.write_all(signed_checkpoint.as_bytes())?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, &path)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips() {
        let mut c = Checkpoint::new("censorwatch.example/log", 42, [9; 32]);
        assert_eq!(Checkpoint::parse_body(&c.body()).unwrap(), c);
        c.extensions.push("ext one".into());
        assert_eq!(Checkpoint::parse_body(&c.body()).unwrap(), c);
    }

    #[test]
    fn bad_bodies() {
        let root = B64.encode([1u8; 32]);
        for bad in [
            format!("o\n01\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n1\n{root}"),
            format!("\n1\n{root}\n"),
            "o\n1\nAAAA\n".to_string(),
            "o\n1\n".to_string(),
            format!("o\n1\n{root}\n\n"),
            format!("o\n99999999999999999999999\n{root}\n"),
        ] {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn daily_paths() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_708_128_000 + 3600);
        assert_eq!(daily_file_path(Path::new("d"), at), Path::new("d/2024-02-17.txt"));
    }
}
