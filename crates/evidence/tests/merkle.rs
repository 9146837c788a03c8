//! RFC 6962 hashing and proofs against published known answers, and properties: every proof
//! for random sizes verifies, and any single-bit change to a proof, a leaf, a root or an index
//! makes it fail.
//!
//! Known answers: the leaf inputs, tree heads and proofs of transparency-dev/merkle
//! (`testonly/constants.go` and `proof/verify_test.go`, the RFC 6962 test vectors that
//! certificate-transparency-go also uses), restated here as data.

use censorwatch_evidence::merkle::{
    self, EMPTY_ROOT, Hash, ProofError, consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency,
    verify_inclusion,
};
use proptest::prelude::*;

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn leaf_inputs() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| hex::decode(s).unwrap())
    .collect()
}

/// Tree heads for sizes 1..=8 of the tree over `leaf_inputs()`.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn leaves() -> Vec<Hash> {
    leaf_inputs().iter().map(|d| leaf_hash(d)).collect()
}

#[test]
fn known_leaf_hashes_and_roots() {
    let l = leaves();
    assert_eq!(
        l[0],
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    assert_eq!(
        l[7],
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1")
    );
    assert_eq!(
        root(l.as_slice(), 0).unwrap(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(root(&l[..n + 1], n as u64 + 1).unwrap(), h(want), "size {}", n + 1);
    }
}

#[test]
fn known_inclusion_proofs() {
    let l = leaves();
    // (leaf index, tree size, proof)
    let cases: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, want) in cases {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        let got = inclusion_proof(l.as_slice(), index, size).unwrap();
        assert_eq!(got, want, "leaf {index} of {size}");
        let r = h(ROOTS[size as usize - 1]);
        verify_inclusion(index, size, &l[index as usize], &got, &r).unwrap();
    }
}

#[test]
fn known_consistency_proofs() {
    let l = leaves();
    let cases: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (old, new, want) in cases {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        let got = consistency_proof(l.as_slice(), old, new).unwrap();
        assert_eq!(got, want, "{old} -> {new}");
        let (r1, r2) = (h(ROOTS[old as usize - 1]), h(ROOTS[new as usize - 1]));
        verify_consistency(old, new, &r1, &r2, &got).unwrap();
        if !got.is_empty() {
            assert!(
                verify_consistency(old, new, &r2, &r1, &got).is_err(),
                "swapped roots {old} -> {new}"
            );
        }
    }
}

#[test]
fn degenerate_consistency_cases() {
    let a = [1u8; 32];
    let b = [2u8; 32];
    verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]).unwrap();
    verify_consistency(0, 5, &EMPTY_ROOT, &a, &[]).unwrap();
    verify_consistency(3, 3, &a, &a, &[]).unwrap();
    assert_eq!(
        verify_consistency(3, 3, &a, &b, &[]),
        Err(ProofError::SameSizeDifferentRoots { size: 3 })
    );
    assert_eq!(
        verify_consistency(4, 3, &a, &b, &[]),
        Err(ProofError::OldLarger {
            old_size: 4,
            new_size: 3
        })
    );
    assert_eq!(
        verify_consistency(1, 2, &a, &b, &[]),
        Err(ProofError::TooShort { got: 0 })
    );
    assert!(verify_consistency(3, 3, &a, &a, &[a]).is_err());
    assert!(verify_inclusion(0, 0, &a, &[], &EMPTY_ROOT).is_err());
    assert!(verify_inclusion(2, 1, &a, &[], &a).is_err());
}

fn random_leaves(n: u64, seed: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("leaf {seed} {i}").as_bytes()))
        .collect()
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut x = *h;
    x[bit / 8 % 32] ^= 1 << (bit % 8);
    x
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_inclusion_proof_verifies_and_any_bit_flip_fails(
        size in 1u64..300, pick in any::<u64>(), seed in any::<u64>(), bit in 0usize..256, which in any::<usize>(),
    ) {
        let l = random_leaves(size, seed);
        let r = root(l.as_slice(), size).unwrap();
        let index = pick % size;
        let proof = inclusion_proof(l.as_slice(), index, size).unwrap();
        prop_assert!(verify_inclusion(index, size, &l[index as usize], &proof, &r).is_ok());
        // A changed leaf, root, or proof element fails.
        prop_assert!(verify_inclusion(index, size, &flip(&l[index as usize], bit), &proof, &r).is_err());
        prop_assert!(verify_inclusion(index, size, &l[index as usize], &proof, &flip(&r, bit)).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let k = which % bad.len();
            bad[k] = flip(&bad[k], bit);
            prop_assert!(verify_inclusion(index, size, &l[index as usize], &bad, &r).is_err());
            let mut short = proof.clone();
            short.pop();
            prop_assert!(verify_inclusion(index, size, &l[index as usize], &short, &r).is_err());
        }
        let mut long = proof.clone();
        long.push(r);
        prop_assert!(verify_inclusion(index, size, &l[index as usize], &long, &r).is_err());
        // The same proof does not pass for another leaf index.
        for other in [index ^ 1, index + 1, index.wrapping_sub(1)] {
            if other != index && other < size && l[other as usize] != l[index as usize] {
                prop_assert!(verify_inclusion(other, size, &l[index as usize], &proof, &r).is_err());
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_any_bit_flip_fails(
        new in 1u64..300, pick in any::<u64>(), seed in any::<u64>(), bit in 0usize..256, which in any::<usize>(),
    ) {
        let l = random_leaves(new, seed);
        let old = 1 + pick % new;
        let r1 = root(l.as_slice(), old).unwrap();
        let r2 = root(l.as_slice(), new).unwrap();
        let proof = consistency_proof(l.as_slice(), old, new).unwrap();
        prop_assert!(verify_consistency(old, new, &r1, &r2, &proof).is_ok());
        prop_assert!(verify_consistency(old, new, &flip(&r1, bit), &r2, &proof).is_err());
        prop_assert!(verify_consistency(old, new, &r1, &flip(&r2, bit), &proof).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let k = which % bad.len();
            bad[k] = flip(&bad[k], bit);
            prop_assert!(verify_consistency(old, new, &r1, &r2, &bad).is_err());
            let mut short = proof.clone();
            short.pop();
            prop_assert!(verify_consistency(old, new, &r1, &r2, &short).is_err());
        }
        // The proof does not stretch to a larger tree. (Claiming size new + 1 for the same root
        // is not caught by the proof alone: for some shapes, such as old = 1, the path has the
        // same steps at both sizes. The signed checkpoint binds a size to its root.)
        let mut longer = l.clone();
        longer.push(leaf_hash(b"one more"));
        let r3 = root(longer.as_slice(), new + 1).unwrap();
        prop_assert!(verify_consistency(old, new + 1, &r1, &r3, &proof).is_err());
        // A log rewritten under the old tree (one old leaf changed) is not consistent.
        let mut rewritten = l.clone();
        let k = (which as u64 % old) as usize;
        rewritten[k] = flip(&rewritten[k], bit);
        let r2b = root(rewritten.as_slice(), new).unwrap();
        let proof_b = consistency_proof(rewritten.as_slice(), old, new).unwrap();
        prop_assert!(verify_consistency(old, new, &r1, &r2b, &proof_b).is_err());
    }
}

#[test]
fn merkle_module_is_pure() {
    // The in-memory store recomputes subtrees: its results match the root of every prefix.
    let l = random_leaves(37, 1);
    for n in 1..=37u64 {
        let mut acc: Vec<Hash> = l[..n as usize].to_vec();
        while acc.len() > 1 {
            // Level-by-level reduction, carrying an odd last node up unchanged (RFC 6962's shape).
            acc = acc
                .chunks(2)
                .map(|c| {
                    if c.len() == 2 {
                        merkle::node_hash(&c[0], &c[1])
                    } else {
                        c[0]
                    }
                })
                .collect();
        }
        assert_eq!(root(l.as_slice(), n).unwrap(), acc[0], "size {n}");
    }
}
