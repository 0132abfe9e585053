//! The RFC 9162 Merkle tree (SPEC §1): compact ranges, roots, and inclusion and consistency
//! proofs, produced from stored nodes and verified from hashes alone.
//!
//! Only *perfect* subtrees are ever stored: node `(level, index)` is the root of leaves
//! `[index << level, (index + 1) << level)`. Appending a leaf completes on average one new node
//! (amortised O(1) hashes and stored nodes, reported through [`CompactRange::push`]); any other
//! subtree root is folded from at most 64 stored nodes, so a proof reads O(log n) of them and
//! nothing ever recomputes from all leaves.

use crate::{Error, Hash, Result, TreeHash};

/// The largest power of two strictly below `n` (`n >= 2`): RFC 9162's split point `k`.
#[inline]
pub fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// A source of stored perfect-subtree roots.
pub trait NodeSource {
    /// The root of the perfect subtree at `(level, index)`; level 0 holds the leaf hashes.
    /// Callers only ask for nodes that are complete in the tree they were given.
    fn node(&self, level: u8, index: u64) -> Result<Hash>;

    /// The root of the non-perfect range `[start, end)` if the source remembers one. Such roots
    /// are never stored (they change as the tree grows) but never change for a given range, so
    /// a source may keep the ones it is told about (the right edge of a checkpoint is asked for
    /// by every proof against it).
    fn remembered_root(&self, _start: u64, _end: u64) -> Option<Hash> {
        None
    }

    /// Offers the computed root of the non-perfect range `[start, end)`.
    fn remember_root(&self, _start: u64, _end: u64, _root: &Hash) {}
}

impl<T: NodeSource + ?Sized> NodeSource for &T {
    fn node(&self, level: u8, index: u64) -> Result<Hash> {
        (**self).node(level, index)
    }

    fn remembered_root(&self, start: u64, end: u64) -> Option<Hash> {
        (**self).remembered_root(start, end)
    }

    fn remember_root(&self, start: u64, end: u64, root: &Hash) {
        (**self).remember_root(start, end, root)
    }
}

/// The root of leaves `[start, end)` (`start < end`), folded from stored perfect subtrees.
pub fn subtree_root(h: TreeHash, src: &impl NodeSource, start: u64, end: u64) -> Result<Hash> {
    debug_assert!(start < end);
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return src.node(n.trailing_zeros() as u8, start >> n.trailing_zeros());
    }
    if let Some(root) = src.remembered_root(start, end) {
        return Ok(root);
    }
    let k = split_point(n);
    let left = subtree_root(h, src, start, start + k)?;
    let right = subtree_root(h, src, start + k, end)?;
    let root = h.node(&left, &right);
    src.remember_root(start, end, &root);
    Ok(root)
}

/// The root of the tree of the first `size` leaves.
pub fn root(h: TreeHash, src: &impl NodeSource, size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(h.empty_root());
    }
    subtree_root(h, src, 0, size)
}

/// RFC 9162 §2.1.3.1: the inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof(h: TreeHash, src: &impl NodeSource, index: u64, size: u64) -> Result<Vec<Hash>> {
    if index >= size {
        return Err(Error::OutOfRange { what: "leaf index", value: index, size });
    }
    let mut proof = Vec::with_capacity(64);
    path(h, src, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path(h: TreeHash, src: &impl NodeSource, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<()> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m - start < k {
        path(h, src, m, start, start + k, out)?;
        out.push(subtree_root(h, src, start + k, end)?);
    } else {
        path(h, src, m, start + k, end, out)?;
        out.push(subtree_root(h, src, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.1: the consistency proof from the tree of `old` leaves to the one of `new`.
/// Empty when `old == new` or `old == 0`.
pub fn consistency_proof(h: TreeHash, src: &impl NodeSource, old: u64, new: u64) -> Result<Vec<Hash>> {
    if old > new {
        return Err(Error::OutOfRange { what: "old tree size", value: old, size: new });
    }
    let mut proof = Vec::with_capacity(64);
    if old > 0 && old < new {
        subproof(h, src, old, 0, new, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof(
    h: TreeHash,
    src: &impl NodeSource,
    m: u64,
    start: u64,
    end: u64,
    b: bool,
    out: &mut Vec<Hash>,
) -> Result<()> {
    let n = end - start;
    if m == n {
        if !b {
            out.push(subtree_root(h, src, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(h, src, m, start, start + k, b, out)?;
        out.push(subtree_root(h, src, start + k, end)?);
    } else {
        subproof(h, src, m - k, start + k, end, false, out)?;
        out.push(subtree_root(h, src, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.3.2: checks that `leaf_hash` is leaf `index` of the tree of `size` with `root`.
pub fn verify_inclusion(
    h: TreeHash,
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    let fail = |reason| Err(Error::BadInclusionProof { index, size, reason });
    if index >= size {
        return fail("index is not below the tree size");
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if snode == 0 {
            return fail("proof is longer than the tree is deep");
        }
        if fnode & 1 == 1 || fnode == snode {
            r = h.node(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = h.node(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return fail("proof is shorter than the tree is deep");
    }
    if r != *root {
        return fail("computed root differs from the expected root");
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: checks that the tree `(old, old_root)` is a prefix of `(new, new_root)`.
pub fn verify_consistency(
    h: TreeHash,
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    let fail = |reason| Err(Error::BadConsistencyProof { from: old, to: new, reason });
    if old > new {
        return fail("the old tree is larger than the new one");
    }
    if old == new {
        if !proof.is_empty() {
            return fail("a proof between equal sizes must be empty");
        }
        return if old_root == new_root { Ok(()) } else { fail("equal sizes with different roots") };
    }
    if old == 0 {
        if !proof.is_empty() {
            return fail("a proof from the empty tree must be empty");
        }
        return if *old_root == h.empty_root() { Ok(()) } else { fail("the empty tree has another root") };
    }
    if proof.is_empty() {
        return fail("empty proof");
    }
    let mut path = proof;
    let first = if old.is_power_of_two() {
        *old_root
    } else {
        let (f, rest) = path.split_first().expect("non-empty");
        path = rest;
        *f
    };
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in path {
        if snode == 0 {
            return fail("proof is longer than expected");
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = h.node(c, &fr);
            sr = h.node(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = h.node(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return fail("proof is shorter than expected");
    }
    if fr != *old_root {
        return fail("proof does not lead to the old root");
    }
    if sr != *new_root {
        return fail("proof does not lead to the new root");
    }
    Ok(())
}

/// The compact range of `[0, size)`: the roots of the perfect subtrees `size` decomposes into,
/// largest (leftmost) first. This is the right edge of the tree, all an appender needs, and the
/// `left` of a compliance pack (SPEC §6).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The empty range.
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    /// A range from its parts; `hashes` must hold one root per set bit of `size`.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<CompactRange> {
        if hashes.len() != size.count_ones() as usize {
            return Err(Error::Corrupt(format!(
                "a compact range of size {size} has {} hashes, not {}",
                size.count_ones(),
                hashes.len()
            )));
        }
        Ok(CompactRange { size, hashes })
    }

    /// Loads the compact range of `[0, size)` from stored nodes: one read per set bit of `size`.
    pub fn load(src: &impl NodeSource, size: u64) -> Result<CompactRange> {
        let mut hashes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1 << level) != 0 {
                hashes.push(src.node(level, start >> level)?);
                start += 1 << level;
            }
        }
        Ok(CompactRange { size, hashes })
    }

    /// Number of leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends one leaf hash. `completed(level, index, hash)` is called for the leaf itself
    /// (level 0) and for every perfect subtree the append completes, lowest level first.
    #[inline]
    pub fn push(&mut self, h: TreeHash, leaf: Hash, mut completed: impl FnMut(u8, u64, &Hash)) {
        let mut index = self.size;
        let mut level = 0u8;
        let mut node = leaf;
        completed(0, index, &node);
        // Each trailing one bit of the old size is a subtree that now has a right sibling.
        while index & 1 == 1 {
            let left = self.hashes.pop().expect("one hash per set bit");
            node = h.node(&left, &node);
            index >>= 1;
            level += 1;
            completed(level, index, &node);
        }
        self.hashes.push(node);
        self.size += 1;
    }

    /// Folds the range into the root of `[0, size)`.
    pub fn root(&self, h: TreeHash) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return h.empty_root();
        };
        it.fold(*last, |acc, left| h.node(left, &acc))
    }
}

/// An in-memory tree that keeps every perfect subtree root: for tests, benchmarks and tools.
/// The durable log keeps the same nodes in full tiles on disk and its right edge in memory.
#[derive(Clone, Debug)]
pub struct MemTree {
    h: TreeHash,
    range: CompactRange,
    levels: Vec<Vec<Hash>>,
}

impl MemTree {
    /// An empty tree.
    pub fn new(h: TreeHash) -> MemTree {
        MemTree { h, range: CompactRange::new(), levels: Vec::new() }
    }

    /// Appends a leaf hash.
    #[inline]
    pub fn push_leaf_hash(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.range.push(self.h, leaf, |level, _index, node| {
            let level = usize::from(level);
            if levels.len() <= level {
                levels.push(Vec::new());
            }
            levels[level].push(*node);
        });
    }

    /// Appends an entry (hashes it as a leaf).
    pub fn push_entry(&mut self, entry: &[u8]) {
        self.push_leaf_hash(self.h.leaf(entry));
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        self.range.root(self.h)
    }

    /// The root at an earlier size.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        root(self.h, self, size)
    }

    /// The compact range of the whole tree.
    pub fn compact_range(&self) -> &CompactRange {
        &self.range
    }

    /// Inclusion proof of `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        inclusion_proof(self.h, self, index, size)
    }

    /// Consistency proof from `old` to `new` leaves.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.check_size(new)?;
        consistency_proof(self.h, self, old, new)
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.size() {
            return Err(Error::OutOfRange { what: "tree size", value: size, size: self.size() });
        }
        Ok(())
    }
}

impl NodeSource for MemTree {
    fn node(&self, level: u8, index: u64) -> Result<Hash> {
        self.levels.get(usize::from(level)).and_then(|l| l.get(index as usize)).copied().ok_or(Error::OutOfRange {
            what: "node index",
            value: index,
            size: self.size(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(1 << 40), 1 << 39);
        assert_eq!(split_point((1 << 40) + 1), 1 << 40);
    }

    #[test]
    fn compact_range_load_matches_incremental() {
        let mut t = MemTree::new(TreeHash::Blake3);
        for i in 0..300u32 {
            t.push_entry(&i.to_be_bytes());
            let loaded = CompactRange::load(&t, t.size()).unwrap();
            assert_eq!(&loaded, t.compact_range());
            assert_eq!(loaded.root(TreeHash::Blake3), t.root_at(t.size()).unwrap());
        }
    }
}
