//! The file-backed append-only Merkle log: leaf hashes and enough interior nodes on disk that a
//! tree head or a proof for a log of tens of millions of entries costs a few hundred small reads.
//!
//! # Files (in the log's directory, e.g. `DATA/log/`)
//!
//! - `leaves` — every leaf hash, 32 bytes each, in order: the log itself. Leaf `i` is at byte
//!   `32 * i`.
//! - `level-04`, `level-08`, … `level-60` — the hashes of the complete subtrees of `2^L` leaves,
//!   for every fourth level `L`: entry `j` of `level-L` is the root of leaves
//!   `[j * 2^L, (j + 1) * 2^L)`. Any other complete subtree (level `L = 4q + r`) is computed from
//!   at most 8 consecutive entries of level `4q` (or of `leaves`), so a proof never reads more than
//!   8 hashes per subtree it names, and the derived files add only 1/15 to the leaves' size. They
//!   hold nothing that the leaves do not determine: missing or damaged entries are recomputed
//!   from the leaves when the log is opened.
//! - `head` — the committed state, 56 bytes: the magic `cwlog\0v1`, the size (u64 little-endian),
//!   the root (32 bytes) and the first 8 bytes of the SHA-256 of those 48 bytes.
//! - `lock` — held (`flock`, exclusive) by the one process that may append.
//!
//! # Appends and crashes
//!
//! [`Log::append_batch`] writes the batch's leaves and new level entries, `fdatasync`s them, then
//! rewrites `head` and `fdatasync`s it; only then does it return the batch's index range. A batch
//! is therefore all-or-nothing: [`Log::open`] after a crash (kill -9, power loss) at any point
//! cuts `leaves` and the level files back to the committed size, then reads every committed leaf
//! once to check that they still hash to the committed root (a changed or rewritten leaf is
//! [`LogError::Corrupt`], never repaired) and to rewrite level entries that are missing or
//! differ. That pass is linear in the log's size (see the benchmark for its speed).
//! [`Log::open_read_only`] trusts the level files instead and reads only what a root needs. Leaves
//! of a batch that never returned are dropped — its caller never learned their indices.
//!
//! # Measurement ids
//!
//! The log stores leaf hashes only; mapping a measurement id to its leaf index is the caller's
//! job (the store keeps the index that [`Log::append_batch`] returned beside the measurement).
//! After a crash between the log's commit and the caller's own, [`Log::find_leaf`] finds where a
//! leaf already went, so that it is not appended twice.

use crate::checkpoint::Checkpoint;
use crate::merkle::{self, EMPTY_ROOT, Hash, Subtrees, node_hash};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Levels stored on disk: 0 (`leaves`), 4, 8, …
const STRIDE: u32 = 4;
/// The highest level that can be stored (a tree of `2^63` leaves is out of reach anyway).
const MAX_LEVEL: u32 = 60;
const HEAD_MAGIC: &[u8; 8] = b"cwlog\0v1";
const HEAD_LEN: usize = 56;
/// Hashes read at once when rebuilding or scanning.
const CHUNK: usize = 4096;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// Another process holds the log open for appending.
    #[error("{}: the log is open for appending in another process", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The files contradict each other or the committed head.
    #[error("{}: {detail}", path.display())]
    Corrupt {
        /// The log's directory.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A leaf index or tree size beyond the log.
    #[error("{what} {value} is beyond the log's size {size}")]
    OutOfRange {
        /// What was asked for (`leaf index`, `tree size`).
        what: &'static str,
        /// The value asked for.
        value: u64,
        /// The log's size.
        size: u64,
    },
    /// An earlier append failed part-way; the log must be reopened (which recovers it).
    #[error("an earlier append failed; reopen the log to recover it")]
    Poisoned,
    /// The log was opened read-only.
    #[error("the log is open read-only")]
    ReadOnly,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`Log::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The log's size after opening.
    pub size: u64,
    /// Leaves of an unfinished batch that were cut off (written but never committed).
    pub dropped_leaves: u64,
    /// Bytes of partial trailing records cut off (all files).
    pub partial_bytes: u64,
    /// Level entries recomputed from the level below.
    pub rebuilt_nodes: u64,
    /// The `head` file was missing or unreadable, so the leaves were trusted as they are.
    pub head_rebuilt: bool,
}

/// The append-only Merkle log in one directory (see the module documentation for the files).
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    /// Held for its `flock` while the log is open for appending.
    _lock: Option<File>,
    leaves: File,
    /// `levels[j]` is the file of level `STRIDE * (j + 1)`, once it exists.
    levels: Vec<Option<File>>,
    head: Option<File>,
    size: u64,
    /// The complete subtrees of `[0, size)`, largest first: (level, hash).
    frontier: Vec<(u32, Hash)>,
    poisoned: bool,
    recovery: Recovery,
}

fn level_name(level: u32) -> String {
    format!("level-{level:02}")
}

fn file_len(file: &File, path: &Path) -> Result<u64, LogError> {
    Ok(file.metadata().map_err(io_err(path))?.len())
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

fn encode_head(size: u64, root: &Hash) -> [u8; HEAD_LEN] {
    let mut b = [0u8; HEAD_LEN];
    b[..8].copy_from_slice(HEAD_MAGIC);
    b[8..16].copy_from_slice(&size.to_le_bytes());
    b[16..48].copy_from_slice(root);
    let check = Sha256::digest(&b[..48]);
    b[48..].copy_from_slice(&check[..8]);
    b
}

fn decode_head(b: &[u8]) -> Option<(u64, Hash)> {
    if b.len() < HEAD_LEN || &b[..8] != HEAD_MAGIC || Sha256::digest(&b[..48])[..8] != b[48..HEAD_LEN] {
        return None;
    }
    let size = u64::from_le_bytes(b[8..16].try_into().ok()?);
    Some((size, b[16..48].try_into().ok()?))
}

impl Log {
    /// Opens the log in `dir` for appending, creating it if needed, and recovers it after a
    /// crash (see the module documentation). Fails with [`LogError::Locked`] if another process
    /// has it open for appending, and with [`LogError::Corrupt`] if committed leaves are missing
    /// or no longer hash to the committed root.
    pub fn open(dir: &Path) -> Result<Log, LogError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => return Err(LogError::Locked { path: lock_path }),
            Err(e) => return Err(io_err(&lock_path)(e.into())),
        }
        let leaves_path = dir.join("leaves");
        let fresh = !leaves_path.exists();
        let leaves = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&leaves_path)
            .map_err(io_err(&leaves_path))?;
        let head_path = dir.join("head");
        let head = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&head_path)
            .map_err(io_err(&head_path))?;
        if fresh {
            sync_dir(dir)?;
        }
        let mut log = Log {
            dir: dir.to_path_buf(),
            _lock: Some(lock),
            leaves,
            levels: Vec::new(),
            head: Some(head),
            size: 0,
            frontier: Vec::new(),
            poisoned: false,
            recovery: Recovery::default(),
        };
        log.open_existing_levels(true)?;
        log.recover()?;
        Ok(log)
    }

    /// Opens the log in `dir` for reading only, at its committed size, without taking the lock
    /// or repairing anything: safe beside a running appender. Fails if the log has no valid
    /// `head` (open it once with [`Log::open`]) or if its files disagree with the head.
    pub fn open_read_only(dir: &Path) -> Result<Log, LogError> {
        let leaves_path = dir.join("leaves");
        let leaves = File::open(&leaves_path).map_err(io_err(&leaves_path))?;
        let head_path = dir.join("head");
        let head = File::open(&head_path).map_err(io_err(&head_path))?;
        // A head rewritten while it is read shows a bad checksum: read again.
        let mut committed = None;
        for _ in 0..5 {
            let mut b = [0u8; HEAD_LEN];
            if head.read_exact_at(&mut b, 0).is_ok() {
                committed = decode_head(&b);
            }
            if committed.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let Some((size, root)) = committed else {
            return Err(LogError::Corrupt {
                path: dir.to_path_buf(),
                detail: "the head file is missing or damaged; open the log for appending once to recover it".into(),
            });
        };
        let mut log = Log {
            dir: dir.to_path_buf(),
            _lock: None,
            leaves,
            levels: Vec::new(),
            head: None,
            size,
            frontier: Vec::new(),
            poisoned: false,
            recovery: Recovery {
                size,
                ..Recovery::default()
            },
        };
        log.open_existing_levels(false)?;
        let leaf_count = file_len(&log.leaves, &leaves_path)? / 32;
        if leaf_count < size {
            return Err(log.corrupt(format!(
                "the leaves file holds {leaf_count} leaves but {size} are committed"
            )));
        }
        for level in (STRIDE..=MAX_LEVEL).step_by(STRIDE as usize) {
            let want = size >> level;
            let have = match log.level_file(level) {
                Some(f) => file_len(f, &dir.join(level_name(level)))? / 32,
                None => 0,
            };
            if have < want {
                return Err(log.corrupt(format!(
                    "{} holds {have} entries but the committed size needs {want}",
                    level_name(level)
                )));
            }
        }
        log.frontier = log.compute_frontier(size)?;
        let computed = frontier_root(&log.frontier);
        if computed != root {
            return Err(log.corrupt(format!(
                "the leaves hash to {} but the committed root at size {size} is {}",
                hex::encode(computed),
                hex::encode(root)
            )));
        }
        Ok(log)
    }

    fn corrupt(&self, detail: String) -> LogError {
        LogError::Corrupt {
            path: self.dir.clone(),
            detail,
        }
    }

    fn open_existing_levels(&mut self, write: bool) -> Result<(), LogError> {
        for level in (STRIDE..=MAX_LEVEL).step_by(STRIDE as usize) {
            let path = self.dir.join(level_name(level));
            let file = match OpenOptions::new().read(true).write(write).open(&path) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err(&path)(e)),
            };
            self.levels.push(file);
        }
        Ok(())
    }

    fn level_file(&self, level: u32) -> Option<&File> {
        debug_assert!(level > 0 && level % STRIDE == 0);
        self.levels.get((level / STRIDE - 1) as usize).and_then(Option::as_ref)
    }

    /// The file of a stored level, created if needed (appending only).
    fn level_file_mut(&mut self, level: u32) -> Result<&File, LogError> {
        let j = (level / STRIDE - 1) as usize;
        if self.levels[j].is_none() {
            let path = self.dir.join(level_name(level));
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            sync_dir(&self.dir)?;
            self.levels[j] = Some(f);
        }
        Ok(self.levels[j].as_ref().expect("just opened"))
    }

    /// The file and path that hold level `level` (0 or a multiple of `STRIDE`).
    fn stored(&self, level: u32) -> Result<(&File, PathBuf), LogError> {
        if level == 0 {
            return Ok((&self.leaves, self.dir.join("leaves")));
        }
        let path = self.dir.join(level_name(level));
        match self.level_file(level) {
            Some(f) => Ok((f, path)),
            None => Err(self.corrupt(format!("{} is missing", level_name(level)))),
        }
    }

    /// Reads `out.len() / 32` hashes of stored level `level` from entry `first`.
    fn read_stored(&self, level: u32, first: u64, out: &mut [u8]) -> Result<(), LogError> {
        let (file, path) = self.stored(level)?;
        file.read_exact_at(out, first * 32).map_err(io_err(&path))
    }

    /// The subtree of `2^(base + span)` leaves with index `index`, computed from `2^span`
    /// entries of stored level `base` (`span <= STRIDE`).
    fn subtree_from(&self, base: u32, span: u32, index: u64) -> Result<Hash, LogError> {
        let n = 1usize << span;
        let mut buf = [0u8; 32 << STRIDE];
        let buf = &mut buf[..32 * n];
        self.read_stored(base, index << span, buf)?;
        let mut row: Vec<Hash> = buf.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect();
        while row.len() > 1 {
            row = row.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
        }
        Ok(row[0])
    }

    fn compute_frontier(&self, size: u64) -> Result<Vec<(u32, Hash)>, LogError> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                out.push((level, self.perfect(level, offset >> level)?));
                offset += 1 << level;
            }
        }
        Ok(out)
    }

    /// Brings the files to the committed size and checks them (see the module documentation):
    /// one streaming pass over the committed leaves recomputes the root and every stored level
    /// entry; the root must be the committed one, and only then are level entries that are
    /// missing or differ rewritten (so damaged leaves never overwrite good derived files).
    fn recover(&mut self) -> Result<(), LogError> {
        let leaves_path = self.dir.join("leaves");
        let head = self.head.as_ref().expect("open for appending");
        let mut hb = [0u8; HEAD_LEN];
        let head_len = file_len(head, &self.dir.join("head"))?;
        let committed = if head_len >= HEAD_LEN as u64 {
            head.read_exact_at(&mut hb, 0).map_err(io_err(&self.dir.join("head")))?;
            decode_head(&hb)
        } else {
            None
        };
        let leaves_len = file_len(&self.leaves, &leaves_path)?;
        let leaf_count = leaves_len / 32;
        let mut recovery = Recovery {
            partial_bytes: leaves_len % 32,
            ..Recovery::default()
        };
        let size = match committed {
            Some((size, _)) => {
                if leaf_count < size {
                    return Err(self.corrupt(format!(
                        "the leaves file holds {leaf_count} leaves but {size} were committed: committed leaves were lost"
                    )));
                }
                recovery.dropped_leaves = leaf_count - size;
                size
            }
            None => {
                // A fresh log (no leaves) or a lost head: the leaves are all there is.
                recovery.head_rebuilt = leaf_count > 0 || head_len > 0;
                leaf_count
            }
        };
        if leaves_len != size * 32 {
            self.leaves.set_len(size * 32).map_err(io_err(&leaves_path))?;
        }
        // Level files: cut to the committed size (entries of an unfinished batch go).
        let mut have = Vec::new();
        for level in (STRIDE..=MAX_LEVEL).step_by(STRIDE as usize) {
            let want = size >> level;
            let path = self.dir.join(level_name(level));
            let have_bytes = match self.level_file(level) {
                Some(f) => file_len(f, &path)?,
                None => 0,
            };
            let entries = have_bytes / 32;
            recovery.partial_bytes += have_bytes % 32;
            if have_bytes != entries.min(want) * 32 {
                self.level_file_mut(level)?
                    .set_len(entries.min(want) * 32)
                    .map_err(io_err(&path))?;
            }
            have.push(entries.min(want));
        }
        let (root, repairs) = self.scan(size, &have)?;
        if let Some((_, committed_root)) = committed {
            if root != committed_root {
                return Err(self.corrupt(format!(
                    "the leaves hash to {} but the committed root at size {size} is {}: the leaves file was damaged or rewritten",
                    hex::encode(root),
                    hex::encode(committed_root)
                )));
            }
        }
        recovery.rebuilt_nodes = repairs.len() as u64;
        self.apply_repairs(&repairs)?;
        self.size = size;
        self.frontier = self.compute_frontier(size)?;
        debug_assert_eq!(frontier_root(&self.frontier), root);
        self.sync_all()?;
        if committed != Some((size, root)) {
            self.write_head(size, &root)?;
        }
        recovery.size = size;
        self.recovery = recovery;
        Ok(())
    }

    /// One pass over leaves `[0, size)`: their root, and the stored level entries that are
    /// missing (beyond `have[j]` entries of level `STRIDE * (j + 1)`) or differ, as
    /// (level, index, hash). Costs one node hash per leaf and a read of every file.
    #[allow(clippy::type_complexity)]
    fn scan(&self, size: u64, have: &[u64]) -> Result<(Hash, Vec<(u32, u64, Hash)>), LogError> {
        let levels = (MAX_LEVEL / STRIDE) as usize;
        let mut frontier: Vec<(u32, Hash)> = Vec::new();
        // Per stored level: entries computed in this chunk, and the index of the first.
        let mut pending: Vec<Vec<Hash>> = vec![Vec::new(); levels];
        let mut next_index = vec![0u64; levels];
        let mut repairs = Vec::new();
        let mut buf = vec![0u8; 32 * CHUNK];
        let mut stored = Vec::new();
        let mut i = 0u64;
        while i < size {
            let n = ((size - i) as usize).min(CHUNK);
            self.read_stored(0, i, &mut buf[..32 * n])?;
            for leaf in buf[..32 * n].chunks_exact(32) {
                let (mut level, mut h): (u32, Hash) = (0, leaf.try_into().expect("32 bytes"));
                while frontier.last().is_some_and(|&(l, _)| l == level) {
                    let (_, left) = frontier.pop().expect("checked");
                    h = node_hash(&left, &h);
                    level += 1;
                    if level % STRIDE == 0 && level <= MAX_LEVEL {
                        pending[(level / STRIDE - 1) as usize].push(h);
                    }
                }
                frontier.push((level, h));
            }
            i += n as u64;
            for (j, entries) in pending.iter_mut().enumerate() {
                if entries.is_empty() {
                    continue;
                }
                let level = STRIDE * (j as u32 + 1);
                let first = next_index[j];
                let on_disk = have[j].saturating_sub(first).min(entries.len() as u64) as usize;
                stored.resize(32 * on_disk, 0);
                if on_disk > 0 {
                    self.read_stored(level, first, &mut stored)?;
                }
                for (k, h) in entries.iter().enumerate() {
                    if k >= on_disk || stored[32 * k..32 * k + 32] != h[..] {
                        repairs.push((level, first + k as u64, *h));
                    }
                }
                next_index[j] += entries.len() as u64;
                entries.clear();
            }
        }
        Ok((frontier_root(&frontier), repairs))
    }

    /// Writes level entries (level, index, hash), coalescing consecutive ones.
    fn apply_repairs(&mut self, repairs: &[(u32, u64, Hash)]) -> Result<(), LogError> {
        let mut k = 0;
        while k < repairs.len() {
            let (level, first, _) = repairs[k];
            let mut bytes = Vec::new();
            let mut end = k;
            while end < repairs.len() && repairs[end].0 == level && repairs[end].1 == first + (end - k) as u64 {
                bytes.extend_from_slice(&repairs[end].2);
                end += 1;
            }
            let path = self.dir.join(level_name(level));
            self.level_file_mut(level)?
                .write_all_at(&bytes, first * 32)
                .map_err(io_err(&path))?;
            k = end;
        }
        Ok(())
    }

    fn sync_all(&self) -> Result<(), LogError> {
        self.leaves.sync_data().map_err(io_err(&self.dir.join("leaves")))?;
        for (j, f) in self.levels.iter().enumerate() {
            if let Some(f) = f {
                let level = STRIDE * (j as u32 + 1);
                f.sync_data().map_err(io_err(&self.dir.join(level_name(level))))?;
            }
        }
        Ok(())
    }

    fn write_head(&self, size: u64, root: &Hash) -> Result<(), LogError> {
        let path = self.dir.join("head");
        let head = self.head.as_ref().ok_or(LogError::ReadOnly)?;
        head.write_all_at(&encode_head(size, root), 0).map_err(io_err(&path))?;
        head.sync_data().map_err(io_err(&path))
    }

    /// What opening the log found and repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree head of the whole log.
    pub fn root(&self) -> Hash {
        frontier_root(&self.frontier)
    }

    /// The tree head of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, LogError> {
        self.check_size(size)?;
        if size == self.size {
            return Ok(self.root());
        }
        merkle::root(self, size)
    }

    /// The checkpoint (unsigned) of the whole log under `origin`.
    pub fn checkpoint(&self, origin: &str) -> Checkpoint {
        Checkpoint::new(origin, self.size, self.root())
    }

    fn check_size(&self, size: u64) -> Result<(), LogError> {
        if size > self.size {
            return Err(LogError::OutOfRange {
                what: "tree size",
                value: size,
                size: self.size,
            });
        }
        Ok(())
    }

    /// Leaf `index`'s hash.
    pub fn leaf(&self, index: u64) -> Result<Hash, LogError> {
        if index >= self.size {
            return Err(LogError::OutOfRange {
                what: "leaf index",
                value: index,
                size: self.size,
            });
        }
        let mut b = [0u8; 32];
        self.read_stored(0, index, &mut b)?;
        Ok(b)
    }

    /// The hashes of leaves `range`.
    pub fn leaves(&self, range: Range<u64>) -> Result<Vec<Hash>, LogError> {
        self.check_size(range.end)?;
        if range.start >= range.end {
            return Ok(Vec::new());
        }
        let mut b = vec![0u8; 32 * (range.end - range.start) as usize];
        self.read_stored(0, range.start, &mut b)?;
        Ok(b.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect())
    }

    /// The index of the first leaf at or after `from` whose hash is `leaf`, if any: how a
    /// caller that crashed between the log's commit and its own finds where its leaf went. Reads
    /// the leaves from `from` on, so keep `from` near the end.
    pub fn find_leaf(&self, leaf: &Hash, from: u64) -> Result<Option<u64>, LogError> {
        let mut i = from;
        let mut buf = vec![0u8; 32 * CHUNK];
        while i < self.size {
            let n = ((self.size - i) as usize).min(CHUNK);
            self.read_stored(0, i, &mut buf[..32 * n])?;
            if let Some(k) = buf[..32 * n].chunks_exact(32).position(|c| c == leaf) {
                return Ok(Some(i + k as u64));
            }
            i += n as u64;
        }
        Ok(None)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(size)?;
        if index >= size {
            return Err(LogError::OutOfRange {
                what: "leaf index",
                value: index,
                size,
            });
        }
        merkle::inclusion_proof(self, index, size)
    }

    /// The consistency proof from the tree of the first `old_size` leaves to that of the first
    /// `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(LogError::OutOfRange {
                what: "old tree size",
                value: old_size,
                size: new_size,
            });
        }
        merkle::consistency_proof(self, old_size, new_size)
    }

    /// Appends leaf hashes as one batch, durably: when it returns, the leaves (and the new head)
    /// are on disk. Returns their index range. After an error the log refuses further appends
    /// ([`LogError::Poisoned`]) until reopened, which drops the failed batch.
    pub fn append_batch(&mut self, leaves: &[Hash]) -> Result<Range<u64>, LogError> {
        if self.head.is_none() {
            return Err(LogError::ReadOnly);
        }
        if self.poisoned {
            return Err(LogError::Poisoned);
        }
        let start = self.size;
        if leaves.is_empty() {
            return Ok(start..start);
        }
        let mut frontier = self.frontier.clone();
        let mut new_nodes: Vec<Vec<u8>> = vec![Vec::new(); (MAX_LEVEL / STRIDE) as usize];
        for leaf in leaves {
            let (mut level, mut h) = (0u32, *leaf);
            while frontier.last().is_some_and(|&(l, _)| l == level) {
                let (_, left) = frontier.pop().expect("checked");
                h = node_hash(&left, &h);
                level += 1;
                if level % STRIDE == 0 && level <= MAX_LEVEL {
                    new_nodes[(level / STRIDE - 1) as usize].extend_from_slice(&h);
                }
            }
            frontier.push((level, h));
        }
        let end = start + leaves.len() as u64;
        let root = frontier_root(&frontier);
        match self.write_batch(start, leaves, &new_nodes, end, &root) {
            Ok(()) => {
                self.size = end;
                self.frontier = frontier;
                Ok(start..end)
            }
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    fn write_batch(
        &mut self,
        start: u64,
        leaves: &[Hash],
        new_nodes: &[Vec<u8>],
        end: u64,
        root: &Hash,
    ) -> Result<(), LogError> {
        let leaves_path = self.dir.join("leaves");
        self.leaves
            .write_all_at(leaves.as_flattened(), start * 32)
            .map_err(io_err(&leaves_path))?;
        let mut touched = Vec::new();
        for (j, bytes) in new_nodes.iter().enumerate() {
            if bytes.is_empty() {
                continue;
            }
            let level = STRIDE * (j as u32 + 1);
            let path = self.dir.join(level_name(level));
            let f = self.level_file_mut(level)?;
            f.write_all_at(bytes, (start >> level) * 32).map_err(io_err(&path))?;
            touched.push(level);
        }
        self.leaves.sync_data().map_err(io_err(&leaves_path))?;
        for level in touched {
            let path = self.dir.join(level_name(level));
            self.level_file(level)
                .expect("written above")
                .sync_data()
                .map_err(io_err(&path))?;
        }
        self.write_head(end, root)
    }
}

fn frontier_root(frontier: &[(u32, Hash)]) -> Hash {
    let mut it = frontier.iter().rev();
    let Some(&(_, mut acc)) = it.next() else {
        return EMPTY_ROOT;
    };
    for (_, left) in it {
        acc = node_hash(left, &acc);
    }
    acc
}

impl Subtrees for Log {
    type Error = LogError;

    fn perfect(&self, level: u32, index: u64) -> Result<Hash, LogError> {
        if level >= 64 || (u128::from(index) + 1) << level > u128::from(self.size) {
            return Err(self.corrupt(format!(
                "asked for the subtree at level {level}, index {index}, beyond the size {}",
                self.size
            )));
        }
        let base = level - level % STRIDE;
        self.subtree_from(base, level - base, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trips_and_rejects_damage() {
        let root = [7u8; 32];
        let b = encode_head(1234, &root);
        assert_eq!(decode_head(&b), Some((1234, root)));
        for i in 0..HEAD_LEN {
            let mut d = b;
            d[i] ^= 1;
            assert_eq!(decode_head(&d), None, "byte {i}");
        }
    }
}
