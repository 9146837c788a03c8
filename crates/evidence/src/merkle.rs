//! RFC 6962 Merkle tree hashing and proofs, with no I/O: leaf and node hashes, the tree head of
//! any size, and inclusion and consistency proofs, generated over any store of complete subtrees
//! ([`Subtrees`]) and verified with the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.
//!
//! Hashes: a leaf is `SHA-256(0x00 || data)`, an interior node `SHA-256(0x01 || left || right)`,
//! the empty tree `SHA-256("")`. A tree of `n` leaves is split at the largest power of two below
//! `n`, so every subtree that a proof names starts at a multiple of its own (rounded-up) size.

use sha2::{Digest, Sha256};
use std::convert::Infallible;

/// A SHA-256 hash: a leaf hash, an interior node or a tree head.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The hash of a leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A store of the tree's complete subtrees, from which heads and proofs are computed.
pub trait Subtrees {
    /// What reading the store can fail with.
    type Error;
    /// The hash of the complete subtree of `2^level` leaves that starts at leaf `index << level`.
    /// Only asked for subtrees that lie wholly inside the tree.
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// Leaf hashes in memory: every subtree is recomputed when asked for (fine for tests and small
/// trees; the file-backed [`crate::log::Log`] stores them).
impl Subtrees for [Hash] {
    type Error = Infallible;
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, Infallible> {
        if level == 0 {
            return Ok(self[usize::try_from(index).expect("index fits in memory")]);
        }
        let left = self.perfect(level - 1, 2 * index)?;
        let right = self.perfect(level - 1, 2 * index + 1)?;
        Ok(node_hash(&left, &right))
    }
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The Merkle tree hash of leaves `[start, start + len)`, where `start` is a multiple of the
/// power of two at or above `len` (every range that RFC 6962's recursion names is).
fn range_hash<S: Subtrees + ?Sized>(s: &S, start: u64, len: u64) -> Result<Hash, S::Error> {
    if len == 0 {
        return Ok(EMPTY_ROOT);
    }
    // The range is its complete subtrees, largest first (the bits of len), folded from the right.
    let mut parts = Vec::with_capacity(len.count_ones() as usize);
    let mut offset = start;
    for level in (0..64u32).rev() {
        if len & (1 << level) != 0 {
            parts.push(s.perfect(level, offset >> level)?);
            offset += 1 << level;
        }
    }
    let mut acc = parts.pop().expect("len > 0");
    while let Some(left) = parts.pop() {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// The tree head (root hash) of the first `size` leaves.
pub fn root<S: Subtrees + ?Sized>(s: &S, size: u64) -> Result<Hash, S::Error> {
    range_hash(s, 0, size)
}

/// The inclusion proof (audit path, RFC 6962 §2.1.1) of leaf `index` in the tree of the first
/// `size` leaves, nearest the leaf first.
///
/// # Panics
/// If `index >= size`.
pub fn inclusion_proof<S: Subtrees + ?Sized>(s: &S, index: u64, size: u64) -> Result<Vec<Hash>, S::Error> {
    assert!(index < size, "leaf {index} is not in a tree of {size} leaves");
    let mut out = Vec::with_capacity(64);
    path(s, index, 0, size, &mut out)?;
    Ok(out)
}

/// PATH(m, D[start..start + n]) of RFC 6962 §2.1.1.
fn path<S: Subtrees + ?Sized>(s: &S, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) -> Result<(), S::Error> {
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(s, m, start, k, out)?;
        out.push(range_hash(s, start + k, n - k)?);
    } else {
        path(s, m - k, start + k, n - k, out)?;
        out.push(range_hash(s, start, k)?);
    }
    Ok(())
}

/// The consistency proof (RFC 6962 §2.1.2) that the tree of the first `old_size` leaves is a
/// prefix of the tree of the first `new_size`. Empty when `old_size` is 0 or equals `new_size`.
///
/// # Panics
/// If `old_size > new_size`.
pub fn consistency_proof<S: Subtrees + ?Sized>(s: &S, old_size: u64, new_size: u64) -> Result<Vec<Hash>, S::Error> {
    assert!(
        old_size <= new_size,
        "a tree of {old_size} leaves cannot be a prefix of one of {new_size}"
    );
    let mut out = Vec::with_capacity(64);
    if old_size > 0 && old_size < new_size {
        subproof(s, old_size, 0, new_size, true, &mut out)?;
    }
    Ok(out)
}

/// SUBPROOF(m, D[start..start + n], whole) of RFC 6962 §2.1.2.
fn subproof<S: Subtrees + ?Sized>(
    s: &S,
    m: u64,
    start: u64,
    n: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if m == n {
        if !whole {
            out.push(range_hash(s, start, n)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(s, m, start, k, whole, out)?;
        out.push(range_hash(s, start + k, n - k)?);
    } else {
        subproof(s, m - k, start + k, n - k, false, out)?;
        out.push(range_hash(s, start, k)?);
    }
    Ok(())
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof has more hashes than a tree of that shape needs.
    #[error("the proof has too many hashes ({got}) for this tree")]
    TooLong {
        /// How many hashes it has.
        got: usize,
    },
    /// The proof has fewer hashes than a tree of that shape needs.
    #[error("the proof has too few hashes ({got}) for this tree")]
    TooShort {
        /// How many hashes it has.
        got: usize,
    },
    /// The hashes lead to another root.
    #[error(
        "the proof leads to root {} instead of {}",
        hex::encode(computed),
        hex::encode(expected)
    )]
    RootMismatch {
        /// The root the proof leads to.
        computed: Hash,
        /// The root it was to lead to.
        expected: Hash,
    },
    /// The proof leads to the new root but not from the old one.
    #[error(
        "the proof does not start from the old root {}: it leads from {}",
        hex::encode(expected),
        hex::encode(computed)
    )]
    OldRootMismatch {
        /// The old root the proof leads from.
        computed: Hash,
        /// The old root it was to lead from.
        expected: Hash,
    },
    /// The old tree is larger than the new.
    #[error("a tree of {old_size} leaves cannot be a prefix of one of {new_size}")]
    OldLarger {
        /// The old size.
        old_size: u64,
        /// The new size.
        new_size: u64,
    },
    /// Trees of the same size with different roots.
    #[error("two trees of the same size {size} have different roots")]
    SameSizeDifferentRoots {
        /// The size of both.
        size: u64,
    },
    /// A proof where none is needed.
    #[error("the proof should be empty but has {got} hashes")]
    NotEmpty {
        /// How many hashes it has.
        got: usize,
    },
}

/// The root that an inclusion proof leads to from `leaf` at `index` in a tree of `size` leaves
/// (RFC 9162 §2.1.3.2, steps 1–5 without the final comparison).
pub fn root_from_inclusion_proof(index: u64, size: u64, leaf: &Hash, proof: &[Hash]) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::TooLong { got: proof.len() });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::TooShort { got: proof.len() });
    }
    Ok(r)
}

/// Verifies that `leaf` is leaf `index` of the tree of `size` leaves whose head is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(index, size, leaf, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch {
            computed,
            expected: *root,
        });
    }
    Ok(())
}

/// Verifies that the tree of `old_size` leaves with head `old_root` is a prefix of the tree of
/// `new_size` leaves with head `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldLarger { old_size, new_size });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::NotEmpty { got: proof.len() });
        }
        if old_root != new_root {
            return Err(ProofError::SameSizeDifferentRoots { size: old_size });
        }
        return Ok(());
    }
    if old_size == 0 {
        // The empty tree is a prefix of every tree.
        if !proof.is_empty() {
            return Err(ProofError::NotEmpty { got: proof.len() });
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(ProofError::TooShort { got: 0 });
    }
    // When the old tree is a complete subtree, its root is the proof's implicit first hash.
    let (first, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (&proof[0], &proof[1..])
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::TooLong { got: proof.len() });
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::TooShort { got: proof.len() });
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch {
            computed: sr,
            expected: *new_root,
        });
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch {
            computed: fr,
            expected: *old_root,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        let none: &[Hash] = &[];
        assert_eq!(root(none, 0).unwrap(), EMPTY_ROOT);
    }

    #[test]
    fn split_points() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(1 << 40), 1 << 39);
        assert_eq!(split_point((1 << 40) + 1), 1 << 40);
    }
}
