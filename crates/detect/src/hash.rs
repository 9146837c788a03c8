//! A small, fast, non-cryptographic hasher for the detector's maps (keys are our own series
//! keys, not attacker-chosen table sizes, so collision resistance is not needed; speed is, with
//! one lookup per observation).

use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hashing of 8-byte words.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WordHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Spread the high bits down: hashbrown uses the top 7 bits as a tag.
        let h = self.0;
        h ^ (h >> 29)
    }
}

/// The map builder.
pub(crate) type BuildWordHasher = BuildHasherDefault<WordHasher>;

/// A `HashMap` with [`WordHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, BuildWordHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn different_keys_hash_differently() {
        let b = BuildWordHasher::default();
        let keys = ["", "a", "ab", "x.com", "x.con", "twitter.com", "twitter.co"];
        let hashes: std::collections::BTreeSet<u64> = keys.iter().map(|k| b.hash_one(k)).collect();
        assert_eq!(hashes.len(), keys.len());
        assert_eq!(b.hash_one(("x.com", 1u32)), b.hash_one(("x.com", 1u32)));
        assert_ne!(b.hash_one(("x.com", 1u32)), b.hash_one(("x.com", 2u32)));
    }
}
