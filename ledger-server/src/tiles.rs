//! The C2SP tlog-tiles layout over the log's own tree hash, for cacheable static reads:
//! `/tile/<L>/<N>[.p/<W>]` (hash tiles) and `/tile/entries/<N>[.p/<W>]` (entry bundles).
//!
//! A tile is served only when the newest checkpoint covers it, so every tile a client derives
//! from a checkpoint it holds exists, and every tile served is immutable (full tiles and each
//! partial width alike): responses are cacheable forever.

use ledger_core::store::{TILE_WIDTH, tile_row0};
use ledger_core::{Error, Log};

use crate::error::{ApiError, ErrorCode};

/// A parsed tile path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TilePath {
    /// `None` for an entry bundle, else the tile level.
    pub level: Option<u8>,
    /// Tile index.
    pub index: u64,
    /// Width: 256 for a full tile, else the partial width 1..=255.
    pub width: u64,
}

/// Parses the part after `/tile/`.
pub fn parse(path: &str) -> Result<TilePath, ApiError> {
    let bad = || {
        ApiError::new(
            ErrorCode::BadTilePath,
            format!("{path:?} is not a tlog-tiles path (<L>/<N>[.p/<W>] or entries/<N>[.p/<W>])"),
        )
    };
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() < 2 {
        return Err(bad());
    }
    let level = match parts.remove(0) {
        "entries" => None,
        l => {
            let v: u8 = l.parse().map_err(|_| bad())?;
            // 256^8 leaves exceed any u64 tree size: levels 0..=7 are all a log can have.
            if v > 7 || l != v.to_string() {
                return Err(bad());
            }
            Some(v)
        }
    };
    let mut width = TILE_WIDTH;
    if parts.len() >= 2 && parts[parts.len() - 2].ends_with(".p") {
        let w = parts.pop().expect("two parts");
        let wv: u64 = w.parse().map_err(|_| bad())?;
        if !(1..TILE_WIDTH).contains(&wv) || w != wv.to_string() {
            return Err(bad());
        }
        width = wv;
        let last = parts.last_mut().expect("one part");
        *last = last.strip_suffix(".p").expect("checked");
    }
    // N: groups of three digits, all but the last prefixed with 'x'.
    let mut index = 0u64;
    for (i, p) in parts.iter().enumerate() {
        let digits = if i + 1 < parts.len() { p.strip_prefix('x').ok_or_else(bad)? } else { p };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        index = index.checked_mul(1000).and_then(|x| x.checked_add(digits.parse().expect("digits"))).ok_or_else(bad)?;
    }
    if parts.len() > 1 && parts[0] == "x000" {
        return Err(bad()); // not the shortest form
    }
    Ok(TilePath { level, index, width })
}

/// Formats an index the tlog-tiles way (`x001/x234/067`).
pub fn format_index(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// The bytes of tile `t`, if the tree of `size` entries (the newest checkpoint's) covers it.
pub fn read(log: &Log, t: TilePath, size: u64) -> Result<Vec<u8>, ApiError> {
    let missing = || {
        ApiError::new(ErrorCode::NoSuchTile, format!("the newest checkpoint (size {size}) does not cover this tile"))
    };
    let level = u32::from(t.level.unwrap_or(0));
    // Leaves covered by the tile's first `width` hashes: hashes of level 8L cover 256^L leaves each.
    let per_hash = 1u128 << (8 * level);
    let covered = u128::from(t.index)
        .checked_mul(u128::from(TILE_WIDTH))
        .and_then(|x| x.checked_add(u128::from(t.width)))
        .and_then(|x| x.checked_mul(per_hash));
    if covered.is_none_or(|c| c > u128::from(size)) {
        return Err(missing());
    }
    match t.level {
        Some(l) => {
            let tile = log.tile(l, t.index, t.width)?.ok_or_else(missing)?;
            let row = tile_row0(&tile)?;
            let want = 32 * t.width as usize;
            if row.len() < want {
                return Err(ApiError::from(Error::Corrupt(format!(
                    "tile {l}/{} has {} hashes, fewer than a checkpoint covers",
                    t.index,
                    row.len() / 32
                ))));
            }
            Ok(row[..want].to_vec())
        }
        None => {
            let start = t.index * TILE_WIDTH;
            let mut out = Vec::new();
            let mut too_big = None;
            log.scan(start, start + t.width, &mut |i, e| {
                match u16::try_from(e.len()) {
                    Ok(len) => {
                        out.extend_from_slice(&len.to_be_bytes());
                        out.extend_from_slice(e);
                    }
                    Err(_) => too_big = Some(i),
                }
                Ok(())
            })?;
            if let Some(i) = too_big {
                return Err(ApiError::new(
                    ErrorCode::EntryTooLargeForBundle,
                    format!(
                        "entry {i} is 65536 bytes, one more than a tlog-tiles bundle can frame; read it from /v1/entries"
                    ),
                ));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for n in [0u64, 7, 999, 1000, 1234067, 5_000_000_000] {
            let p = format_index(n);
            assert_eq!(parse(&format!("0/{p}")).unwrap(), TilePath { level: Some(0), index: n, width: 256 });
            assert_eq!(parse(&format!("entries/{p}.p/17")).unwrap(), TilePath { level: None, index: n, width: 17 });
        }
        assert_eq!(format_index(1234067), "x001/x234/067");
    }

    #[test]
    fn bad_paths() {
        for p in [
            "",
            "0",
            "0/67",
            "0/0067",
            "0/x1/067",
            "01/000",
            "64/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/08",
            "0/x000/001",
            "x/000",
            "0/001/002",
        ] {
            assert!(parse(p).is_err(), "{p:?} parsed");
        }
    }
}
