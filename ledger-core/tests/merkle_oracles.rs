//! The tree against independent oracles: a naive recursive RFC 9162 implementation written from
//! the RFC's definitions, `ct-merkle` (BLAKE3 via `traits-preview`, and SHA-256), `rs_merkle`, and
//! the published RFC 6962 SHA-256 test vectors.

use ledger_core::merkle::{self, CompactRange, MemTree};
use ledger_core::{Hash, TreeHash};
use proptest::prelude::*;

// ---- the naive oracle: RFC 9162 §2.1 verbatim, over all leaves ----

fn mth(h: TreeHash, d: &[Vec<u8>]) -> Hash {
    match d.len() {
        0 => h.digest(b""),
        1 => h.leaf(&d[0]),
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            h.node(&mth(h, &d[..k]), &mth(h, &d[k..]))
        }
    }
}

fn naive_path(h: TreeHash, m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
    if m < k {
        let mut p = naive_path(h, m, &d[..k]);
        p.push(mth(h, &d[k..]));
        p
    } else {
        let mut p = naive_path(h, m - k, &d[k..]);
        p.push(mth(h, &d[..k]));
        p
    }
}

fn naive_subproof(h: TreeHash, m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(h, d)] };
    }
    let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
    if m <= k {
        let mut p = naive_subproof(h, m, &d[..k], b);
        p.push(mth(h, &d[k..]));
        p
    } else {
        let mut p = naive_subproof(h, m - k, &d[k..], false);
        p.push(mth(h, &d[..k]));
        p
    }
}

fn leaves(n: usize, salt: u64) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("entry {i} salt {salt}").into_bytes()).collect()
}

fn tree_of(h: TreeHash, d: &[Vec<u8>]) -> MemTree {
    let mut t = MemTree::new(h);
    for e in d {
        t.push_entry(e);
    }
    t
}

const HASHES: [TreeHash; 2] = [TreeHash::Blake3, TreeHash::Sha256];

// ---- RFC 6962 vectors ----

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn unhex32(s: &str) -> Hash {
    unhex(s).try_into().unwrap()
}

const VECTOR_LEAVES: [&str; 8] =
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
const VECTOR_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn rfc6962_sha256_vectors() {
    let h = TreeHash::Sha256;
    let d: Vec<Vec<u8>> = VECTOR_LEAVES.iter().map(|s| unhex(s)).collect();
    let t = tree_of(h, &d);
    for (size, want) in VECTOR_ROOTS.iter().enumerate() {
        assert_eq!(hex::encode(t.root_at(size as u64).unwrap()), *want, "root of size {size}");
    }
    let inclusion: [(u64, u64, [&str; 3]); 2] = [
        (
            0,
            8,
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (index, size, proof) in inclusion {
        let want: Vec<Hash> = proof.iter().map(|s| unhex32(s)).collect();
        assert_eq!(t.inclusion_proof(index, size).unwrap(), want);
        let root = unhex32(VECTOR_ROOTS[size as usize]);
        merkle::verify_inclusion(h, index, size, &h.leaf(&d[index as usize]), &want, &root).unwrap();
    }
    let consistency: [(u64, u64, &[&str]); 3] = [
        (
            2,
            8,
            &[
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
    ];
    for (old, new, proof) in consistency {
        let want: Vec<Hash> = proof.iter().map(|s| unhex32(s)).collect();
        assert_eq!(t.consistency_proof(old, new).unwrap(), want, "{old} -> {new}");
        let (r1, r2) = (unhex32(VECTOR_ROOTS[old as usize]), unhex32(VECTOR_ROOTS[new as usize]));
        merkle::verify_consistency(h, old, new, &r1, &r2, &want).unwrap();
    }
}

// ---- ct-merkle ----

fn ct_check<D: digest::Digest>(h: TreeHash, d: &[Vec<u8>], index: usize, old: usize) {
    let mut ct = ct_merkle::mem_backed_tree::MemoryBackedTree::<D, Vec<u8>>::new();
    let ours = tree_of(h, d);
    for e in d {
        ct.push(e.clone());
    }
    let n = d.len() as u64;
    assert_eq!(ct.root().as_bytes().as_slice(), ours.root().as_slice(), "root, size {n}");
    let proof: Vec<u8> = ours.inclusion_proof(index as u64, n).unwrap().concat();
    assert_eq!(ct.prove_inclusion(index).as_bytes(), proof.as_slice(), "inclusion {index}/{n}");
    ct.root().verify_inclusion(&d[index], index as u64, &ct_merkle::InclusionProof::<D>::from_bytes(proof)).unwrap();
    if old > 0 && old < d.len() {
        let proof: Vec<u8> = ours.consistency_proof(old as u64, n).unwrap().concat();
        assert_eq!(ct.prove_consistency(d.len() - old).as_bytes(), proof.as_slice(), "consistency {old}->{n}");
        let mut old_tree = ct_merkle::mem_backed_tree::MemoryBackedTree::<D, Vec<u8>>::new();
        for e in &d[..old] {
            old_tree.push(e.clone());
        }
        ct.root()
            .verify_consistency(&old_tree.root(), &ct_merkle::ConsistencyProof::<D>::try_from_bytes(proof).unwrap())
            .unwrap();
    }
}

// ---- rs_merkle, with RFC 9162 domain separation ----

macro_rules! rs_hasher {
    ($name:ident, $h:expr) => {
        #[derive(Clone)]
        struct $name;
        impl rs_merkle::Hasher for $name {
            type Hash = [u8; 32];
            fn hash(data: &[u8]) -> [u8; 32] {
                $h.digest(data)
            }
            fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
                match right {
                    Some(r) => $h.node(left, r),
                    None => *left,
                }
            }
        }
    };
}
rs_hasher!(RsBlake3, TreeHash::Blake3);
rs_hasher!(RsSha256, TreeHash::Sha256);

fn rs_check<R: rs_merkle::Hasher<Hash = [u8; 32]>>(h: TreeHash, d: &[Vec<u8>], index: usize) {
    let leaf_hashes: Vec<Hash> = d.iter().map(|e| h.leaf(e)).collect();
    let rs = rs_merkle::MerkleTree::<R>::from_leaves(&leaf_hashes);
    let ours = tree_of(h, d);
    assert_eq!(rs.root().unwrap(), ours.root(), "rs_merkle root, size {}", d.len());
    let rs_proof = rs.proof(&[index]);
    assert_eq!(rs_proof.proof_hashes(), ours.inclusion_proof(index as u64, d.len() as u64).unwrap().as_slice());
    assert!(rs_proof.verify(ours.root(), &[index], &[leaf_hashes[index]], d.len()));
}

// ---- properties ----

fn check_against_naive(h: TreeHash, d: &[Vec<u8>], index: usize, old: usize) {
    let t = tree_of(h, d);
    let n = d.len();
    assert_eq!(t.root(), mth(h, d));
    assert_eq!(t.root_at(old as u64).unwrap(), mth(h, &d[..old]));
    let proof = t.inclusion_proof(index as u64, n as u64).unwrap();
    assert_eq!(proof, naive_path(h, index, d));
    merkle::verify_inclusion(h, index as u64, n as u64, &h.leaf(&d[index]), &proof, &t.root()).unwrap();
    let cproof = t.consistency_proof(old as u64, n as u64).unwrap();
    if old > 0 && old < n {
        assert_eq!(cproof, naive_subproof(h, old, d, true));
    } else {
        assert!(cproof.is_empty());
    }
    merkle::verify_consistency(h, old as u64, n as u64, &mth(h, &d[..old]), &t.root(), &cproof).unwrap();
    // The compact range of any prefix folds to that prefix's root.
    let cr = CompactRange::load(&t, old as u64).unwrap();
    assert_eq!(cr.root(h), mth(h, &d[..old]));
}

fn check_rejections(h: TreeHash, d: &[Vec<u8>], index: usize, old: usize) {
    let t = tree_of(h, d);
    let n = d.len() as u64;
    let root = t.root();
    let leaf = h.leaf(&d[index]);
    let proof = t.inclusion_proof(index as u64, n).unwrap();
    // Wrong leaf, wrong index, any flipped proof hash, truncated or extended proofs. (A wrong
    // size alone can verify when the path has the same shape: RFC 9162 verification binds the
    // size only through the root, which is why checkpoints sign size and root together.)
    assert!(merkle::verify_inclusion(h, index as u64, n, &h.leaf(b"other"), &proof, &root).is_err());
    if n > 1 {
        let other = (index as u64 + 1) % n;
        assert!(merkle::verify_inclusion(h, other, n, &leaf, &proof, &root).is_err());
    }
    for i in 0..proof.len() {
        let mut bad = proof.clone();
        bad[i][i % 32] ^= 1;
        assert!(merkle::verify_inclusion(h, index as u64, n, &leaf, &bad, &root).is_err());
    }
    if !proof.is_empty() {
        assert!(merkle::verify_inclusion(h, index as u64, n, &leaf, &proof[1..], &root).is_err());
    }
    let mut longer = proof.clone();
    longer.push(root);
    assert!(merkle::verify_inclusion(h, index as u64, n, &leaf, &longer, &root).is_err());
    if old > 0 && (old as u64) < n {
        let cproof = t.consistency_proof(old as u64, n).unwrap();
        let old_root = t.root_at(old as u64).unwrap();
        for i in 0..cproof.len() {
            let mut bad = cproof.clone();
            bad[i][0] ^= 0x80;
            assert!(merkle::verify_consistency(h, old as u64, n, &old_root, &root, &bad).is_err());
        }
        assert!(merkle::verify_consistency(h, old as u64, n, &h.leaf(b"x"), &root, &cproof).is_err());
        assert!(merkle::verify_consistency(h, old as u64, n, &old_root, &h.leaf(b"x"), &cproof).is_err());
        assert!(merkle::verify_consistency(h, old as u64 + 1, n, &old_root, &root, &cproof).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn matches_naive_rfc9162(n in 1usize..3000, i in any::<prop::sample::Index>(), o in any::<prop::sample::Index>(), salt in any::<u64>()) {
        let d = leaves(n, salt);
        for h in HASHES {
            check_against_naive(h, &d, i.index(n), o.index(n + 1));
        }
    }

    #[test]
    fn matches_ct_merkle(n in 1usize..3000, i in any::<prop::sample::Index>(), o in any::<prop::sample::Index>(), salt in any::<u64>()) {
        let d = leaves(n, salt);
        ct_check::<blake3::Hasher>(TreeHash::Blake3, &d, i.index(n), o.index(n));
        ct_check::<sha2::Sha256>(TreeHash::Sha256, &d, i.index(n), o.index(n));
    }

    #[test]
    fn matches_rs_merkle(n in 1usize..3000, i in any::<prop::sample::Index>(), salt in any::<u64>()) {
        let d = leaves(n, salt);
        rs_check::<RsBlake3>(TreeHash::Blake3, &d, i.index(n));
        rs_check::<RsSha256>(TreeHash::Sha256, &d, i.index(n));
    }

    #[test]
    fn bad_proofs_are_rejected(n in 1usize..1500, i in any::<prop::sample::Index>(), o in any::<prop::sample::Index>()) {
        let d = leaves(n, 7);
        for h in HASHES {
            check_rejections(h, &d, i.index(n), o.index(n));
        }
    }
}

/// Every index and every old size of every small tree, exhaustively.
#[test]
fn exhaustive_small_trees() {
    for h in HASHES {
        for n in 1..=70 {
            let d = leaves(n, 1);
            for i in 0..n {
                check_against_naive(h, &d, i, i + 1);
            }
            for o in 0..=n {
                check_against_naive(h, &d, 0, o);
            }
        }
    }
}
