//! The remote sink's local spool: batches accepted for the ledger, written and synced here before
//! they are forwarded, replayed in order after a restart.
//!
//! Segment format: frames of `len: u32 LE | check: 4 bytes (BLAKE3 of body, truncated) | body`,
//! body = `count: u32 LE` then per entry `len: u32 LE | bytes`. A torn frame at the tail of the
//! newest segment (a crash mid-write) is cut off on recovery; it was never acknowledged. A
//! segment is deleted only once every frame in it is acknowledged by the ledger.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use ledger_core::{Error, Result};

use super::AppendDone;

/// Bytes after which a new spool segment is started.
const SEGMENT_BYTES: u64 = 16 << 20;

pub(super) struct Frame {
    pub(super) id: u64,
    pub(super) segment: u64,
    /// Shared, so that each (re)send clones references, not bytes.
    pub(super) entries: Vec<Bytes>,
    pub(super) bytes: u64,
    /// The recorder's callback, until the batch is durable somewhere.
    pub(super) done: Option<AppendDone>,
    /// Written and synced to the spool.
    pub(super) synced: bool,
    /// When the gateway accepted it (or found it in the spool at start).
    pub(super) since: std::time::Instant,
}

pub(super) struct Segment {
    pub(super) path: PathBuf,
    pub(super) file: Arc<File>,
    pub(super) len: u64,
    /// Frames of this segment not yet acknowledged by the ledger.
    pub(super) unacked: u64,
}

pub(super) struct Spool {
    pub(super) dir: PathBuf,
    pub(super) queue: VecDeque<Frame>,
    /// Frames `queue[..sent]` are on the current stream.
    pub(super) sent: usize,
    pub(super) segments: BTreeMap<u64, Segment>,
    pub(super) next_frame: u64,
    pub(super) pending_bytes: u64,
    /// Files written since the last sync.
    pub(super) unsynced: Vec<Arc<File>>,
    pub(super) closed: bool,
    /// Why the ledger is unreachable, while it is.
    pub(super) outage: Option<String>,
}

pub(super) fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source }
}

pub(super) fn frame_body<E: AsRef<[u8]>>(entries: &[E]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + entries.iter().map(|e| e.as_ref().len() + 4).sum::<usize>());
    body.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        let e = e.as_ref();
        body.extend_from_slice(&(e.len() as u32).to_le_bytes());
        body.extend_from_slice(e);
    }
    body
}

pub(super) fn check(body: &[u8]) -> [u8; 4] {
    let h = blake3::hash(body);
    [h.as_bytes()[0], h.as_bytes()[1], h.as_bytes()[2], h.as_bytes()[3]]
}

/// Parses frames from a segment; returns them and the length of the valid prefix.
pub(super) fn parse_segment(bytes: &[u8]) -> (Vec<Vec<Vec<u8>>>, usize, Option<String>) {
    let mut frames = Vec::new();
    let mut at = 0usize;
    let u32_at = |b: &[u8], i: usize| b.get(i..i + 4).map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")));
    while at < bytes.len() {
        let Some(len) = u32_at(bytes, at) else { return (frames, at, Some("torn frame header".into())) };
        let body_at = at + 8;
        let Some(body) = bytes.get(body_at..body_at + len as usize) else {
            return (frames, at, Some("torn frame body".into()));
        };
        if bytes[at + 4..at + 8] != check(body) {
            return (frames, at, Some(format!("frame at byte {at} fails its check")));
        }
        let Some(n) = u32_at(body, 0) else { return (frames, at, Some("frame without a count".into())) };
        let mut entries = Vec::with_capacity(n as usize);
        let mut p = 4usize;
        for _ in 0..n {
            let Some(l) = u32_at(body, p) else { return (frames, at, Some("bad entry length".into())) };
            let Some(e) = body.get(p + 4..p + 4 + l as usize) else {
                return (frames, at, Some("entry past its frame".into()));
            };
            entries.push(e.to_vec());
            p += 4 + l as usize;
        }
        frames.push(entries);
        at = body_at + len as usize;
    }
    (frames, at, None)
}

impl Spool {
    fn segment_path(dir: &Path, n: u64) -> PathBuf {
        dir.join(format!("{n:016}.seg"))
    }

    fn open_segment(dir: &Path, n: u64) -> Result<Segment> {
        let path = Self::segment_path(dir, n);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io(&path, e))?;
        let len = file.metadata().map_err(|e| io(&path, e))?.len();
        Ok(Segment { path, file: Arc::new(file), len, unacked: 0 })
    }

    /// Reads the spool directory: every frame of every segment, in order.
    pub(super) fn recover(dir: &Path) -> Result<Spool> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut numbers = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(n) = name.strip_suffix(".seg").and_then(|n| n.parse::<u64>().ok()) {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            queue: VecDeque::new(),
            sent: 0,
            segments: BTreeMap::new(),
            next_frame: 0,
            pending_bytes: 0,
            unsynced: Vec::new(),
            closed: false,
            outage: None,
        };
        let last = numbers.last().copied();
        for n in &numbers {
            let path = Self::segment_path(dir, *n);
            let mut bytes = Vec::new();
            File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| io(&path, e))?;
            let (frames, valid, problem) = parse_segment(&bytes);
            if let Some(problem) = problem {
                if Some(*n) != last {
                    return Err(Error::Corrupt(format!(
                        "spool segment {} is damaged before its end ({problem}); move it aside to start",
                        path.display()
                    )));
                }
                // A torn tail: the frame was being written when the process died, and was
                // never acknowledged. Cut it off.
                let f = OpenOptions::new().write(true).open(&path).map_err(|e| io(&path, e))?;
                f.set_len(valid as u64).and_then(|_| f.sync_data()).map_err(|e| io(&path, e))?;
            }
            let mut seg = Self::open_segment(dir, *n)?;
            for entries in frames {
                let bytes = entries.iter().map(|e| e.len() as u64).sum();
                spool.pending_bytes += bytes;
                seg.unacked += 1;
                spool.queue.push_back(Frame {
                    id: spool.next_frame,
                    segment: *n,
                    entries: entries.into_iter().map(Bytes::from).collect(),
                    bytes,
                    done: None,
                    synced: true,
                    since: std::time::Instant::now(),
                });
                spool.next_frame += 1;
            }
            spool.segments.insert(*n, seg);
        }
        if spool.segments.is_empty() {
            spool.segments.insert(1, Self::open_segment(dir, 1)?);
        }
        Ok(spool)
    }

    /// Writes a frame to the newest segment (not yet synced).
    pub(super) fn write<E: AsRef<[u8]>>(&mut self, entries: &[E]) -> Result<u64> {
        let body = frame_body(entries);
        let (&n, seg) = self.segments.last_key_value().expect("a segment");
        let n = if seg.len >= SEGMENT_BYTES {
            let next = n + 1;
            self.segments.insert(next, Self::open_segment(&self.dir, next)?);
            next
        } else {
            n
        };
        let seg = self.segments.get_mut(&n).expect("just ensured");
        let mut frame = Vec::with_capacity(8 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&check(&body));
        frame.extend_from_slice(&body);
        (&*seg.file).write_all(&frame).map_err(|e| io(&seg.path, e))?;
        seg.len += frame.len() as u64;
        seg.unacked += 1;
        if !self.unsynced.iter().any(|f| Arc::ptr_eq(f, &seg.file)) {
            self.unsynced.push(seg.file.clone());
        }
        Ok(n)
    }

    /// The ledger acknowledged the front frame: drop it, and its segment once all of it is in.
    pub(super) fn pop_front(&mut self) -> Option<Frame> {
        let frame = self.queue.pop_front()?;
        self.sent = self.sent.saturating_sub(1);
        self.pending_bytes -= frame.bytes;
        let newest = *self.segments.keys().next_back().expect("a segment");
        if let Some(seg) = self.segments.get_mut(&frame.segment) {
            seg.unacked -= 1;
            if seg.unacked == 0 && frame.segment != newest {
                let seg = self.segments.remove(&frame.segment).expect("present");
                // Removing an acknowledged segment; a failure leaves a file that is replayed
                // (idempotently) on the next start, so it is only reported.
                if let Err(e) = std::fs::remove_file(&seg.path) {
                    eprintln!("spool: could not remove {}: {e}", seg.path.display());
                }
            } else if seg.unacked == 0 && self.queue.is_empty() && seg.len > 0 {
                // Everything is in the ledger: start the newest segment afresh.
                if let Ok(f) = OpenOptions::new().write(true).open(&seg.path)
                    && f.set_len(0).is_ok()
                {
                    seg.len = 0;
                }
            }
        }
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(entries: &[Vec<u8>]) -> Vec<u8> {
        let body = frame_body(entries);
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&check(&body));
        f.extend_from_slice(&body);
        f
    }

    #[test]
    fn frames_round_trip_and_a_torn_or_damaged_tail_is_found() {
        let a = vec![b"one".to_vec(), b"two".to_vec()];
        let b = vec![vec![7u8; 300]];
        let mut seg = frame(&a);
        let first = seg.len();
        seg.extend(frame(&b));
        let (frames, valid, problem) = parse_segment(&seg);
        assert_eq!((frames, valid, problem), (vec![a.clone(), b.clone()], seg.len(), None));
        // Every cut inside the second frame leaves exactly the first, and says why.
        for cut in first + 1..seg.len() {
            let (frames, valid, problem) = parse_segment(&seg[..cut]);
            assert_eq!((frames.len(), valid), (1, first), "cut at {cut}");
            assert!(problem.is_some());
        }
        // One flipped byte in the second frame's body fails its check.
        let mut bad = seg.clone();
        bad[first + 20] ^= 1;
        let (frames, valid, problem) = parse_segment(&bad);
        assert_eq!((frames.len(), valid), (1, first));
        assert!(problem.unwrap().contains("fails its check"));
    }

    #[test]
    fn recovery_cuts_a_torn_tail_and_refuses_damage_before_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let whole = frame(&[b"kept".to_vec()]);
        let mut torn = whole.clone();
        torn.extend_from_slice(&frame(&[b"lost".to_vec()])[..9]);
        std::fs::write(spool.join(format!("{:016}.seg", 1)), &torn).unwrap();
        let s = Spool::recover(&spool).unwrap();
        assert_eq!(s.queue.len(), 1);
        assert_eq!(s.queue[0].entries, vec![b"kept".to_vec()]);
        assert_eq!(std::fs::metadata(spool.join(format!("{:016}.seg", 1))).unwrap().len(), whole.len() as u64);
        drop(s);
        // Damage in a segment that is not the newest is not a torn write: refuse to guess.
        let mut damaged = whole.clone();
        damaged[10] ^= 1;
        std::fs::write(spool.join(format!("{:016}.seg", 1)), &damaged).unwrap();
        std::fs::write(spool.join(format!("{:016}.seg", 2)), &whole).unwrap();
        let Err(e) = Spool::recover(&spool) else { panic!("a damaged segment was accepted") };
        let e = e.to_string();
        assert!(e.contains("damaged before its end"), "{e}");
    }
}
