//! The tree the committer builds: the compact range of every sequenced leaf, the full tiles its
//! completed nodes fill (written once each, with the group that completes them), and the partial
//! tiles at its right edge, which stay in memory ([`Edge`]).
//!
//! Stores hold full tiles only. Rewriting each partial tile in every group was a large share of
//! the bytes a group wrote (figure in `BENCHMARKS.md`); instead, [`TreeBuilder::open`] rebuilds the edge from what the store
//! has: the level-0 edge tile from at most 255 entries, each higher one from the tops of at most
//! 255 full tiles one level down.

use crate::merkle::{CompactRange, NodeSource};
use crate::store::{Edge, Store, TILE_HEIGHT, TILE_WIDTH, encode_tile, tile_node};
use crate::{Error, Hash, Result, TreeHash};

/// Tile levels a 64-bit tree size can reach.
const TILE_LEVELS: u32 = 64u32.div_ceil(TILE_HEIGHT as u32);

/// See the module docs. Owned by the committer thread: nothing else touches it.
#[derive(Debug)]
pub(crate) struct TreeBuilder {
    hash: TreeHash,
    range: CompactRange,
    /// The edge tile of each tile level, lowest first.
    bufs: Vec<TileBuf>,
}

/// One edge tile: row `r` holds the complete nodes of level `8t + r` under it, left to right.
#[derive(Debug)]
struct TileBuf {
    index: u64,
    rows: Vec<Vec<Hash>>,
}

impl TileBuf {
    fn empty(index: u64) -> TileBuf {
        TileBuf { index, rows: (0..TILE_HEIGHT).map(|r| Vec::with_capacity(256 >> r)).collect() }
    }
}

impl TreeBuilder {
    /// The tree of the `size` stored entries, its right edge rebuilt from the store's entries and
    /// full tiles. A missing entry or tile, or a tile that is not full, is [`Error::Corrupt`].
    pub(crate) fn open(store: &dyn Store, hash: TreeHash, size: u64) -> Result<TreeBuilder> {
        let mut bufs = Vec::new();
        for t in 0..TILE_LEVELS {
            let complete = size >> (t * u32::from(TILE_HEIGHT)); // nodes of level 8t
            if complete == 0 {
                break;
            }
            let (index, width) = (complete >> TILE_HEIGHT, complete % TILE_WIDTH);
            let first = index * TILE_WIDTH;
            let mut row0 = Vec::with_capacity(width as usize);
            if t == 0 {
                let mut next = first;
                store.scan_entries(first, first + width, &mut |i, e| {
                    if i != next {
                        return Err(Error::Corrupt(format!("entry {next} is missing")));
                    }
                    next += 1;
                    row0.push(hash.leaf(e));
                    Ok(())
                })?;
                if next != first + width {
                    return Err(Error::Corrupt(format!("entry {next} is missing")));
                }
            } else {
                // Each node of level 8t is the top of a full tile one level down.
                let below = (t - 1) as u8;
                for child in first..first + width {
                    let tile = store
                        .tile(below, child)?
                        .ok_or_else(|| Error::Corrupt(format!("missing full tile {below}/{child}")))?;
                    let top = TILE_HEIGHT - 1;
                    match (tile_node(&tile, top, 0)?, tile_node(&tile, top, 1)?) {
                        (Some(l), Some(r)) => row0.push(hash.node(&l, &r)),
                        _ => return Err(Error::Corrupt(format!("tile {below}/{child} should be full and is not"))),
                    }
                }
            }
            let mut rows = vec![row0];
            for r in 1..usize::from(TILE_HEIGHT) {
                let row = rows[r - 1].chunks_exact(2).map(|p| hash.node(&p[0], &p[1])).collect();
                rows.push(row);
            }
            bufs.push(TileBuf { index, rows });
        }
        // Every root of the compact range lies in an edge tile: the node of level `l` at the end
        // of a tree whose size has bit `l` set is in the tile that is partial on its tile level.
        let range = CompactRange::load(&EdgeNodes(&bufs), size)?;
        Ok(TreeBuilder { hash, range, bufs })
    }

    pub(super) fn size(&self) -> u64 {
        self.range.size()
    }

    pub(crate) fn root(&self) -> Hash {
        self.range.root(self.hash)
    }

    /// Appends one leaf hash; a tile it completes goes to `full`.
    #[inline]
    pub(super) fn push(&mut self, leaf: Hash, full: &mut Vec<(u8, u64, Vec<u8>)>) {
        let bufs = &mut self.bufs;
        self.range.push(self.hash, leaf, |level, index, node| add(bufs, level, index, node, full));
    }

    /// The partial tiles, encoded for readers.
    pub(super) fn edge(&self) -> Edge {
        let tiles = self.bufs.iter().map(|b| (b.index, (!b.rows[0].is_empty()).then(|| encode_tile(&b.rows).into())));
        Edge::new(tiles.collect())
    }
}

#[inline]
fn add(bufs: &mut Vec<TileBuf>, level: u8, index: u64, node: &Hash, full: &mut Vec<(u8, u64, Vec<u8>)>) {
    let (t, row) = (usize::from(level / TILE_HEIGHT), usize::from(level % TILE_HEIGHT));
    if bufs.len() <= t {
        bufs.push(TileBuf::empty(0));
    }
    let buf = &mut bufs[t];
    debug_assert_eq!(index >> (TILE_HEIGHT as usize - row), buf.index, "node {level}/{index} outside tile");
    buf.rows[row].push(*node);
    if row == usize::from(TILE_HEIGHT) - 1 && buf.rows[row].len() == 2 {
        // The tile is full: written once, for good, with this group; the next one starts.
        full.push((t as u8, buf.index, encode_tile(&buf.rows)));
        *buf = TileBuf::empty(buf.index + 1);
    }
}

/// The nodes of the edge tiles being rebuilt.
struct EdgeNodes<'a>(&'a [TileBuf]);

impl NodeSource for EdgeNodes<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash> {
        let (t, row) = (usize::from(level / TILE_HEIGHT), level % TILE_HEIGHT);
        let per_row = TILE_WIDTH >> row;
        let (tile, pos) = (index / per_row, index % per_row);
        self.0
            .get(t)
            .filter(|b| b.index == tile)
            .and_then(|b| b.rows[usize::from(row)].get(pos as usize))
            .copied()
            .ok_or_else(|| Error::Corrupt(format!("node {level}/{index} is not at the right edge of the tree")))
    }
}
