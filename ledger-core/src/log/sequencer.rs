//! Sequencing (step 2 of the commit path in the [module docs](super)): the run rules of SPEC §2
//! and the grouping of submissions into commit groups. A plain state machine: no threads, no
//! locks, and no store I/O beyond the reads of the [`Store`] each call is handed. The pipeline
//! calls it under its sequencing lock; the tests below drive it one step at a time.
//!
//! The rules, checked against this submission, the open group, the groups closed but not yet
//! durable, and then the store, in that order:
//! - a run starts at seq 0, and each entry of a run has the next seq: a gap is refused
//!   ([`Error::SeqGap`]);
//! - an entry repeating a seq the run already has is an idempotent success with the original
//!   index if it is identical (same leaf hash while unsettled, same bytes once stored), and a
//!   conflict otherwise ([`Error::Conflict`]);
//! - a submission is all or nothing: its entries are checked against a private overlay that is
//!   merged into the open group only if every one passes.
//!
//! Accepted entries get consecutive indices and their leaf hashes join the open group; a run's
//! consecutive entries in one submission become one run-index segment. No tree node is hashed
//! here: the committer does that, off the sequencing lock.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Arc;

use bytes::Bytes;

use crate::entry::{Entry, EntryView, Kind};
use crate::store::catalog::EntryFacts;
use crate::store::{CommitBatch, RunRecord, RunSegment, Store};
use crate::{Error, Hash, Result, TreeHash};

/// One entry checked and hashed, ready to sequence.
#[derive(Debug)]
pub(super) struct Prepared {
    bytes: Bytes,
    leaf: Hash,
    /// Shared by the consecutive entries of one run in a submission.
    run: Arc<str>,
    seq: u64,
    /// Its run-index flags ([`RunRecord::flags`]).
    flags: u8,
    /// What the run catalog records of it, if anything (most entries: nothing).
    facts: Option<Box<EntryFacts>>,
}

impl Prepared {
    /// The entry's size in bytes.
    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// A closed group on its way to the committer; `A` is how each submission is answered.
#[derive(Debug)]
pub(super) struct Group<A> {
    /// Entries and run segments; the committer adds the tiles.
    pub(super) batch: CommitBatch,
    /// The new entries' leaf hashes, in index order.
    pub(super) leaves: Vec<Hash>,
    /// Each submission's answer and indices, in sequence order.
    pub(super) acks: Vec<(A, Vec<u64>)>,
}

/// Decodes and hashes one entry in the appender's thread. `last_run` is the run of the entry
/// before it, whose `Arc` a run's next entry shares.
pub(super) fn prepare(
    h: TreeHash,
    bytes: Bytes,
    admit: &impl Fn(&EntryView<'_>) -> Result<()>,
    last_run: &mut Option<Arc<str>>,
) -> Result<Prepared> {
    // Every rule of SPEC §2, without materialising the entry.
    let e = Entry::check(&bytes)?;
    admit(&e)?;
    let kind = e.kind();
    let flags =
        RunRecord { index: 0, sealed: kind == Kind::ReceiptSealed, identity: kind == Kind::IdentityRegistered }.flags();
    let run = match last_run {
        Some(r) if **r == *e.run() => r.clone(),
        _ => last_run.insert(Arc::from(e.run())).clone(),
    };
    let seq = e.seq();
    // Taken from the checked view here, in the appender's thread; the keys need the index,
    // which sequencing gives.
    let facts = EntryFacts::of(&e).map(Box::new);
    let leaf = h.leaf(&bytes);
    Ok(Prepared { run, seq, flags, leaf, bytes, facts })
}

/// What one group (or one submission being checked) sequenced for one run: seqs
/// `first_seq..first_seq + entries.len()`, each as `(index, leaf hash)`. A run's new entries
/// always continue at its next seq, so they are contiguous.
#[derive(Debug)]
struct Touched {
    first_seq: u64,
    entries: Vec<(u64, Hash)>,
}

impl Touched {
    fn next(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    fn get(&self, seq: u64) -> Option<(u64, Hash)> {
        self.entries.get(usize::try_from(seq.checked_sub(self.first_seq)?).ok()?).copied()
    }
}

/// Runs touched by a group.
type RunMap = HashMap<Arc<str>, Touched>;

/// Run state for one submission being checked: it becomes visible only when all of it passes.
/// Consecutive entries of one run (the common case) find their run without hashing.
#[derive(Default)]
struct Overlay {
    runs: Vec<(Arc<str>, Touched)>,
    by_run: HashMap<Arc<str>, usize>,
    last: Option<usize>,
}

impl Overlay {
    fn find(&mut self, run: &Arc<str>) -> Option<usize> {
        if let Some(i) = self.last {
            let r = &self.runs[i].0;
            if Arc::ptr_eq(r, run) || r == run {
                return Some(i);
            }
        }
        let i = *self.by_run.get(&**run)?;
        self.last = Some(i);
        Some(i)
    }

    fn insert(&mut self, run: Arc<str>, next: u64) -> usize {
        let i = self.runs.len();
        self.by_run.insert(run.clone(), i);
        self.runs.push((run, Touched { first_seq: next, entries: Vec::new() }));
        self.last = Some(i);
        i
    }
}

/// The sequencer's maps hash run ids on every append: foldhash (hashbrown's default, through
/// `lru`) instead of SipHash. Keys come from authenticated ingest, and the maps live for one
/// group only.
type HashMap<K, V> = std::collections::HashMap<K, V, lru::DefaultHasher>;

/// The sequencer's state: everything sequenced so far, by tree size and by run.
#[derive(Debug)]
pub(super) struct Sequencer {
    /// The tree size after everything sequenced: the next entry's index.
    size: u64,
    /// Next seq of recently used runs: reflects every sequenced entry, durable or not.
    next_seq: lru::LruCache<Arc<str>, u64>,
    /// Groups not yet known durable: the tree size after each and the runs it touched.
    /// Consulted before the store, which does not have them yet.
    pending: VecDeque<(u64, RunMap)>,
    max_entries: usize,
    max_bytes: usize,
}

impl Sequencer {
    /// A sequencer over a log of `size` entries, remembering the next seq of up to `run_cache`
    /// runs, closing groups at `max_entries` entries or `max_bytes` bytes.
    pub(super) fn new(size: u64, run_cache: usize, max_entries: usize, max_bytes: usize) -> Sequencer {
        Sequencer {
            size,
            next_seq: lru::LruCache::new(NonZeroUsize::new(run_cache.max(1)).expect("non-zero")),
            pending: VecDeque::new(),
            max_entries: max_entries.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// The tree size after everything sequenced.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// Whether `open` is too full to take a submission of `size` = `(entries, bytes)` more: then
    /// it is closed first. A group with no submission takes any.
    pub(super) fn is_full<A>(&self, open: &OpenGroup<A>, size: (usize, usize)) -> bool {
        open.has_work() && (open.entries + size.0 > self.max_entries || open.bytes + size.1 > self.max_bytes)
    }

    /// Sequences one submission into the open group, all of it or none of it: each entry's index
    /// (an identical duplicate's is the original's), or the reason nothing of it was taken.
    /// `size` is the submission's `(entries, bytes)`, as the caller already measured it. The
    /// caller records the answer with [`OpenGroup::answer`].
    pub(super) fn sequence<A>(
        &mut self,
        store: &dyn Store,
        open: &mut OpenGroup<A>,
        entries: Vec<Prepared>,
        size: (usize, usize),
    ) -> Result<Vec<u64>> {
        let mut overlay = Overlay::default();
        let checked = self.check(store, &entries, &mut overlay, open, self.size)?;
        for (run, t) in overlay.runs {
            if t.entries.is_empty() {
                continue; // only duplicates: nothing changes
            }
            self.next_seq.put(run.clone(), t.next());
            match open.runs.entry(run) {
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    debug_assert_eq!(o.get().next(), t.first_seq);
                    o.get_mut().entries.extend(t.entries);
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(t);
                }
            }
        }
        let (n, bytes) = size;
        open.entries += n;
        open.bytes += bytes;
        let mut indices = Vec::with_capacity(checked.len());
        for (p, (index, new)) in entries.into_iter().zip(checked) {
            indices.push(index);
            if !new {
                continue; // an idempotent duplicate: nothing to write
            }
            debug_assert_eq!(index, self.size);
            self.size += 1;
            // The run catalog's changes go into the same batch as the entry, in index order. An
            // idempotent duplicate (above) never gets here: it is catalogued once.
            if let Some(facts) = &p.facts {
                facts.ops(&p.run, index, &mut open.batch.catalog);
            }
            // The committer hashes the tree's nodes, off this lock.
            open.leaves.push(p.leaf);
            // One run-index segment per run per submission: an entry that continues the last
            // segment (same run, next seq, next index) joins it.
            // (Entries are added in index order and a run's new entries in seq order, so the
            // last segment, if of the same run, always ends right before this entry.)
            match open.batch.runs.last_mut() {
                Some(seg) if Arc::ptr_eq(&seg.run, &p.run) || seg.run == p.run => {
                    debug_assert_eq!((seg.end_index(), seg.end_seq()), (index, p.seq));
                    seg.flags.push(p.flags);
                }
                _ => open.batch.runs.push(RunSegment {
                    run: p.run,
                    first_seq: p.seq,
                    first_index: index,
                    flags: vec![p.flags],
                }),
            }
            open.batch.entries.push((index, p.bytes));
        }
        Ok(indices)
    }

    /// Drops the records of groups that are durable (the store has them now).
    pub(super) fn prune(&mut self, durable: u64) {
        while self.pending.front().is_some_and(|(end, _)| *end <= durable) {
            self.pending.pop_front();
        }
    }

    /// Closes the open group into a commit batch up to the tree size as it now stands.
    pub(super) fn close<A>(&mut self, mut open: OpenGroup<A>) -> Group<A> {
        open.batch.tree_size = self.size;
        self.pending.push_back((open.batch.tree_size, open.runs));
        Group { batch: open.batch, leaves: open.leaves, acks: open.acks }
    }

    /// Checks one submission's run rules; fills `overlay` with what accepting it would change.
    /// Returns each entry's index, and whether it is new (not an idempotent duplicate).
    fn check<A>(
        &mut self,
        store: &dyn Store,
        entries: &[Prepared],
        overlay: &mut Overlay,
        open: &OpenGroup<A>,
        mut next_index: u64,
    ) -> Result<Vec<(u64, bool)>> {
        let mut out = Vec::with_capacity(entries.len());
        for (position, p) in entries.iter().enumerate() {
            let in_batch = |e: Error| Error::InBatch { position, source: Box::new(e) };
            let slot = match overlay.find(&p.run) {
                Some(i) => i,
                None => {
                    let next = self.next_seq_of(store, &p.run, open).map_err(in_batch)?;
                    overlay.insert(p.run.clone(), next)
                }
            };
            let touched = &mut overlay.runs[slot].1;
            let next = touched.next();
            if p.seq == next {
                touched.entries.push((next_index, p.leaf));
                out.push((next_index, true));
                next_index += 1;
            } else if p.seq < next {
                let touched = &overlay.runs[slot].1;
                let index = self.duplicate_of(store, p, touched, open).map_err(in_batch)?;
                out.push((index, false));
            } else {
                return Err(in_batch(Error::SeqGap { run: p.run.to_string(), expected: next, got: p.seq }));
            }
        }
        Ok(out)
    }

    /// The index of the entry `p` repeats (its run already has its seq), if `p` is identical to
    /// it: this submission first, then the open group, the groups being committed and the store.
    fn duplicate_of<A>(
        &self,
        store: &dyn Store,
        p: &Prepared,
        submission: &Touched,
        open: &OpenGroup<A>,
    ) -> Result<u64> {
        let conflict = |index| Error::Conflict { run: p.run.to_string(), seq: p.seq, index };
        let unsettled = submission
            .get(p.seq)
            .or_else(|| open.runs.get(&*p.run).and_then(|t| t.get(p.seq)))
            .or_else(|| self.pending.iter().rev().find_map(|(_, m)| m.get(&*p.run).and_then(|t| t.get(p.seq))));
        if let Some((index, leaf)) = unsettled {
            return if leaf == p.leaf { Ok(index) } else { Err(conflict(index)) };
        }
        // Durable: the run index has its index, and the entry itself settles identity.
        let missing = |what: &str| Error::Corrupt(format!("run {:?} seq {} is missing from {what}", p.run, p.seq));
        let index = store.run_record(&p.run, p.seq)?.ok_or_else(|| missing("the run index"))?.index;
        let stored = store.entry(index)?.ok_or_else(|| missing("the entries"))?;
        if stored[..] == p.bytes[..] { Ok(index) } else { Err(conflict(index)) }
    }

    fn next_seq_of<A>(&mut self, store: &dyn Store, run: &Arc<str>, open: &OpenGroup<A>) -> Result<u64> {
        if let Some(n) = self.next_seq.get(&**run) {
            return Ok(*n);
        }
        // Evicted from the cache, or never seen. The open group and the groups still being
        // committed come first: the store does not hold their entries yet.
        let unsettled = open.runs.get(&**run).or_else(|| self.pending.iter().rev().find_map(|(_, m)| m.get(&**run)));
        let next = match unsettled {
            Some(t) => t.next(),
            // All of the run's entries (if any) are durable: the store knows. Most such runs are
            // new, and a point lookup (bloom-filtered) settles that without a seek.
            None => {
                if store.run_started(run)? {
                    store.run_last(run)?.map_or(0, |(seq, _)| seq + 1)
                } else {
                    0
                }
            }
        };
        self.next_seq.put(run.clone(), next);
        Ok(next)
    }
}

/// The group being filled.
#[derive(Debug)]
pub(super) struct OpenGroup<A> {
    batch: CommitBatch,
    leaves: Vec<Hash>,
    /// Runs this group touched (for next seqs and duplicates within the group).
    runs: RunMap,
    /// Each submission's answer and indices, in sequence order.
    acks: Vec<(A, Vec<u64>)>,
    entries: usize,
    bytes: usize,
}

impl<A> OpenGroup<A> {
    pub(super) fn empty() -> OpenGroup<A> {
        OpenGroup {
            batch: CommitBatch::default(),
            leaves: Vec::new(),
            runs: HashMap::default(),
            acks: Vec::new(),
            entries: 0,
            bytes: 0,
        }
    }

    /// Whether it holds any submission (a submission of duplicates only still needs its answer,
    /// in order).
    pub(super) fn has_work(&self) -> bool {
        !self.acks.is_empty()
    }

    /// Records how a sequenced submission is answered once the group is durable.
    pub(super) fn answer(&mut self, reply: A, indices: Vec<u64>) {
        self.acks.push((reply, indices));
    }

    /// Records that this group takes the submission at source `position` (which only grows),
    /// so that the group stores it with its entries, and, when the submission appended entries
    /// (the tree reached `size` with them), which position made the tree reach that size.
    pub(super) fn advance(&mut self, position: u64, size: u64) {
        debug_assert!(self.batch.position.is_none_or(|p| p < position), "source positions only grow");
        self.batch.position = Some(position);
        let first = self.batch.entries.first().map(|(i, _)| *i);
        let reached = self.batch.positions.last().map(|(s, _)| *s).or(first);
        if reached.is_some_and(|r| size > r) {
            self.batch.positions.push((size, position));
        }
    }
}

#[cfg(test)]
mod tests {
    //! The run rules, one step at a time: submissions are sequenced, groups closed, and a closed
    //! group "made durable" by committing its batch to a `MemStore` and pruning, as the pipeline
    //! does from its threads.

    use super::*;
    use crate::entry::{Event, RunId};
    use crate::store::MemStore;

    const H: TreeHash = TreeHash::Blake3;

    fn entry(run: &str, seq: u64, state: &str) -> Bytes {
        let e = Entry {
            ts: 1_767_225_600_000_000_000 + seq as i64,
            run: RunId::new(run).unwrap(),
            seq,
            actor: "gateway".into(),
            event: Event::TaskStatus { state: state.into(), message: None },
            grant: None,
            payload: None,
        };
        e.encode().into()
    }

    fn working(run: &str, seq: u64) -> Bytes {
        entry(run, seq, "working")
    }

    /// A sequencer over an empty store, with an open group.
    struct Fixture {
        store: MemStore,
        seq: Sequencer,
        open: OpenGroup<()>,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture::with_cache(1024)
        }

        fn with_cache(run_cache: usize) -> Fixture {
            let store = MemStore::new();
            let params = crate::store::LogParams { hash: H, origin: "test".into() };
            store.commit(&CommitBatch { params: Some(params), ..CommitBatch::default() }).unwrap();
            Fixture { store, seq: Sequencer::new(0, run_cache, 8192, 8 << 20), open: OpenGroup::empty() }
        }

        /// Sequences `entries` as one submission into the open group.
        fn submit(&mut self, entries: &[Bytes]) -> Result<Vec<u64>> {
            let mut last_run = None;
            let prepared: Vec<Prepared> =
                entries.iter().map(|b| prepare(H, b.clone(), &|_| Ok(()), &mut last_run).unwrap()).collect();
            let size = (prepared.len(), prepared.iter().map(Prepared::len).sum());
            let r = self.seq.sequence(&self.store, &mut self.open, prepared, size);
            if let Ok(indices) = &r {
                self.open.answer((), indices.clone());
            }
            r
        }

        /// Closes the open group (now pending: sequenced, not durable).
        fn close(&mut self) -> Group<()> {
            self.seq.close(std::mem::replace(&mut self.open, OpenGroup::empty()))
        }

        /// Closes the open group, stores it and prunes: its entries are durable.
        fn settle(&mut self) -> Group<()> {
            let group = self.close();
            self.store_group(&group);
            group
        }

        /// Stores a closed group and prunes: its entries are durable.
        fn store_group(&mut self, group: &Group<()>) {
            self.store.commit(&group.batch).unwrap();
            self.seq.prune(group.batch.tree_size);
        }

        /// A sequencer starting afresh over the same store, as after a reopen: it knows nothing
        /// but what the store says.
        fn reopen(&mut self) {
            let size = self.store.load_meta().unwrap().map_or(0, |(_, s)| s);
            self.seq = Sequencer::new(size, 1024, 8192, 8 << 20);
            self.open = OpenGroup::empty();
        }
    }

    fn is_gap(e: &Error, position: usize, expected: u64, got: u64) -> bool {
        matches!(e, Error::InBatch { position: p, source } if *p == position
            && matches!(**source, Error::SeqGap { expected: x, got: g, .. } if x == expected && g == got))
    }

    fn is_conflict(e: &Error, position: usize, seq: u64, index: u64) -> bool {
        matches!(e, Error::InBatch { position: p, source } if *p == position
            && matches!(**source, Error::Conflict { seq: s, index: i, .. } if s == seq && i == index))
    }

    #[test]
    fn seq_zero_opens_a_run_and_seqs_follow() {
        let mut f = Fixture::new();
        assert_eq!(f.submit(&[working("a", 0)]).unwrap(), vec![0]);
        assert_eq!(f.submit(&[working("a", 1), working("a", 2)]).unwrap(), vec![1, 2]);
        assert_eq!(f.submit(&[working("b", 0)]).unwrap(), vec![3]);
        let g = f.close();
        assert_eq!(g.batch.tree_size, 4);
        assert_eq!(g.leaves.len(), 4);
        assert_eq!(g.leaves[0], H.leaf(&working("a", 0)));
        let indices: Vec<u64> = g.batch.entries.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, vec![0, 1, 2, 3]);
        // A run's consecutive entries at consecutive indices are one run-index segment, across
        // the submissions of a group too.
        let segs: Vec<(&str, u64, u64, u64)> =
            g.batch.runs.iter().map(|s| (&*s.run, s.first_seq, s.first_index, s.len())).collect();
        assert_eq!(segs, vec![("a", 0, 0, 3), ("b", 0, 3, 1)]);
    }

    #[test]
    fn a_new_run_must_start_at_seq_zero() {
        let mut f = Fixture::new();
        let e = f.submit(&[working("a", 1)]).unwrap_err();
        assert!(is_gap(&e, 0, 0, 1), "{e}");
    }

    #[test]
    fn gaps_are_refused_in_the_open_group_and_pending() {
        let mut f = Fixture::new();
        f.submit(&[working("a", 0), working("a", 1)]).unwrap();
        let e = f.submit(&[working("a", 3)]).unwrap_err();
        assert!(is_gap(&e, 0, 2, 3), "open group: {e}");
        f.close();
        let e = f.submit(&[working("a", 3)]).unwrap_err();
        assert!(is_gap(&e, 0, 2, 3), "pending: {e}");
    }

    #[test]
    fn gaps_are_refused_against_the_store() {
        let mut f = Fixture::new();
        f.submit(&[working("a", 0), working("a", 1)]).unwrap();
        f.settle();
        f.reopen();
        let e = f.submit(&[working("a", 5)]).unwrap_err();
        assert!(is_gap(&e, 0, 2, 5), "{e}");
        assert_eq!(f.submit(&[working("a", 2)]).unwrap(), vec![2]);
    }

    #[test]
    fn identical_resend_is_idempotent_within_a_submission_and_the_open_group() {
        let mut f = Fixture::new();
        // The same entry twice in one submission: one entry, one index.
        assert_eq!(f.submit(&[working("a", 0), working("a", 0)]).unwrap(), vec![0, 0]);
        // Again in a later submission of the same group, mixed with a new one.
        assert_eq!(f.submit(&[working("a", 0), working("a", 1)]).unwrap(), vec![0, 1]);
        let g = f.close();
        assert_eq!(g.batch.entries.len(), 2);
        assert_eq!(g.batch.tree_size, 2);
        // Every submission is answered, the duplicates with the original indices.
        let answers: Vec<Vec<u64>> = g.acks.into_iter().map(|(_, i)| i).collect();
        assert_eq!(answers, vec![vec![0, 0], vec![0, 1]]);
    }

    #[test]
    fn identical_resend_is_idempotent_against_pending_groups() {
        let mut f = Fixture::new();
        f.submit(&[working("a", 0), working("a", 1)]).unwrap();
        f.close();
        assert_eq!(f.submit(&[working("a", 1)]).unwrap(), vec![1]);
        let g = f.close();
        assert!(g.batch.entries.is_empty(), "a duplicate writes nothing");
        assert!(g.batch.runs.is_empty());
        assert_eq!(g.batch.tree_size, 2);
        assert_eq!(g.acks.len(), 1, "but its submission is still answered");
    }

    #[test]
    fn identical_resend_is_idempotent_against_the_store() {
        let mut f = Fixture::new();
        f.submit(&[working("x", 0), working("a", 0), working("a", 1)]).unwrap();
        f.settle();
        // With the next-seq cache warm, and after a reopen (the store alone decides).
        assert_eq!(f.submit(&[working("a", 1)]).unwrap(), vec![2]);
        f.reopen();
        assert_eq!(f.submit(&[working("a", 0), working("a", 1), working("a", 2)]).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn different_bytes_at_a_taken_seq_conflict_everywhere() {
        let mut f = Fixture::new();
        // Within one submission.
        let e = f.submit(&[working("s", 0), entry("s", 0, "failed")]).unwrap_err();
        assert!(is_conflict(&e, 1, 0, 0), "submission: {e}");
        // Against the open group.
        f.submit(&[working("a", 0)]).unwrap();
        let e = f.submit(&[entry("a", 0, "failed")]).unwrap_err();
        assert!(is_conflict(&e, 0, 0, 0), "open group: {e}");
        // Against a pending group.
        let g = f.close();
        let e = f.submit(&[entry("a", 0, "failed")]).unwrap_err();
        assert!(is_conflict(&e, 0, 0, 0), "pending: {e}");
        // Against the store, cache warm and after a reopen.
        f.store_group(&g);
        let e = f.submit(&[working("b", 0), entry("a", 0, "failed")]).unwrap_err();
        assert!(is_conflict(&e, 1, 0, 0), "stored: {e}");
        f.reopen();
        let e = f.submit(&[entry("a", 0, "failed")]).unwrap_err();
        assert!(is_conflict(&e, 0, 0, 0), "stored, after reopen: {e}");
    }

    #[test]
    fn several_runs_in_one_batch() {
        let mut f = Fixture::new();
        f.submit(&[working("b", 0)]).unwrap();
        let batch = [working("a", 0), working("a", 1), working("b", 1), working("c", 0), working("a", 2)];
        assert_eq!(f.submit(&batch).unwrap(), vec![1, 2, 3, 4, 5]);
        let g = f.close();
        let segs: Vec<(&str, u64, u64, u64)> =
            g.batch.runs.iter().map(|s| (&*s.run, s.first_seq, s.first_index, s.len())).collect();
        assert_eq!(segs, vec![("b", 0, 0, 1), ("a", 0, 1, 2), ("b", 1, 3, 1), ("c", 0, 4, 1), ("a", 2, 5, 1)]);
        // Each run continues where it stands.
        assert_eq!(f.submit(&[working("a", 3), working("b", 2), working("c", 1)]).unwrap(), vec![6, 7, 8]);
    }

    #[test]
    fn a_refused_batch_leaves_nothing() {
        let mut f = Fixture::new();
        f.submit(&[working("a", 0)]).unwrap();
        let before = (f.open.entries, f.open.bytes, f.open.batch.entries.len(), f.open.leaves.len());
        // Two runs advance, then the last entry has a gap: nothing of it stays.
        let e = f.submit(&[working("a", 1), working("b", 0), working("b", 1), working("c", 4)]).unwrap_err();
        assert!(is_gap(&e, 3, 0, 4), "{e}");
        assert_eq!((f.open.entries, f.open.bytes, f.open.batch.entries.len(), f.open.leaves.len()), before);
        assert_eq!(f.open.batch.runs.len(), 1);
        assert!(!f.open.runs.contains_key("b"));
        assert_eq!(f.open.acks.len(), 1);
        // The runs are where they were: a's next seq is still 1, b is still new, and the next
        // index is still 1.
        assert_eq!(f.submit(&[working("b", 0), working("a", 1)]).unwrap(), vec![1, 2]);
    }

    #[test]
    fn an_evicted_run_finds_its_next_seq_in_the_open_and_pending_groups() {
        let mut f = Fixture::with_cache(1);
        f.submit(&[working("a", 0)]).unwrap();
        f.submit(&[working("b", 0)]).unwrap(); // evicts a from the one-run cache
        assert_eq!(f.submit(&[working("a", 1)]).unwrap(), vec![2]);
        f.close();
        f.submit(&[working("b", 1)]).unwrap(); // evicts a again
        assert_eq!(f.submit(&[working("a", 2)]).unwrap(), vec![4]);
        let e = f.submit(&[working("a", 0), working("a", 9)]).unwrap_err();
        assert!(is_gap(&e, 1, 3, 9), "{e}");
    }

    #[test]
    fn prune_forgets_only_durable_groups() {
        let mut f = Fixture::with_cache(1);
        f.submit(&[working("a", 0)]).unwrap();
        let first = f.close();
        f.submit(&[working("b", 0)]).unwrap();
        let second = f.close();
        assert_eq!(f.seq.pending.len(), 2);
        f.store.commit(&first.batch).unwrap();
        f.seq.prune(first.batch.tree_size);
        assert_eq!(f.seq.pending.len(), 1);
        f.store.commit(&second.batch).unwrap();
        f.seq.prune(second.batch.tree_size);
        assert!(f.seq.pending.is_empty());
        // Evicted and pruned, run a is read back from the store.
        f.submit(&[working("c", 0)]).unwrap();
        assert_eq!(f.submit(&[working("a", 1)]).unwrap(), vec![3]);
    }

    #[test]
    fn a_group_is_full_at_its_entry_or_byte_limit() {
        let e = working("a", 0);
        let mut seq = Sequencer::new(0, 16, 2, 10 * e.len());
        let mut open: OpenGroup<()> = OpenGroup::empty();
        assert!(!seq.is_full(&open, (100, 1 << 30)), "an empty group takes any submission");
        let mut last_run = None;
        let p = prepare(H, e.clone(), &|_| Ok(()), &mut last_run).unwrap();
        let indices = seq.sequence(&MemStore::new(), &mut open, vec![p], (1, e.len())).unwrap();
        open.answer((), indices);
        assert!(!seq.is_full(&open, (1, e.len())));
        assert!(seq.is_full(&open, (2, e.len())), "entries");
        assert!(seq.is_full(&open, (1, 10 * e.len())), "bytes");
    }
}
