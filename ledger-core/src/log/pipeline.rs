//! The threads of the commit path (steps 3 to 5 in the [module docs](super)) and the
//! sequencing lock in front of them: appenders sequence into the open group under
//! `Shared::seq`; the **committer** writes each group as one `WriteBatch`; the **syncer** makes
//! every group written so far durable with one sync and only then publishes the durable tree; the
//! **acker** answers the groups' submissions in order; the **checkpointer** signs the published
//! durable tree on an interval. The order of the durability steps is commented where each
//! happens.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::sequencer::{self, OpenGroup, Prepared, Sequencer};
use super::tree::TreeBuilder;
use super::{Durable, Shared};
use crate::store::CommitBatch;
use crate::{Error, Result};

type Done = Box<dyn FnOnce(Result<Vec<u64>>) + Send>;

/// A batch of prepared entries and how to answer it.
pub(super) struct Submission {
    pub(super) entries: Vec<Prepared>,
    pub(super) done: Reply,
    /// Its source position ([`super::Log::append_at`]), if it has one.
    pub(super) position: Option<u64>,
}

/// A submission's callback, called exactly once: if the submission is dropped unanswered (the
/// log closed under it), it answers [`Error::Closed`].
pub(super) struct Reply(Option<Done>);

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Reply(pending)" } else { "Reply(sent)" })
    }
}

impl Reply {
    pub(super) fn new(done: impl FnOnce(Result<Vec<u64>>) + Send + 'static) -> Reply {
        Reply(Some(Box::new(done)))
    }

    /// A reply that answers `refusal` once the group it is in is durable (or the group's own
    /// failure, if it fails).
    pub(super) fn refusal(done: Reply, refusal: Error) -> Reply {
        Reply::new(move |r| done.send(r.and(Err(refusal))))
    }

    fn send(mut self, r: Result<Vec<u64>>) {
        if let Some(done) = self.0.take() {
            done(r);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            done(Err(Error::Closed));
        }
    }
}

type Group = sequencer::Group<Reply>;

/// What the sequencer needs, under `Shared::seq`.
#[derive(Debug)]
pub(super) struct SeqState {
    seq: Sequencer,
    /// The group being filled.
    open: OpenGroup<Reply>,
    /// A full group waiting for the committer.
    queued: Option<Group>,
    /// The committer waits on `work_cv`.
    committer_waiting: bool,
    /// The log is closing: no new submissions.
    closing: bool,
}

impl SeqState {
    pub(super) fn new(seq: Sequencer) -> SeqState {
        SeqState { seq, open: OpenGroup::empty(), queued: None, committer_waiting: false, closing: false }
    }
}

/// Starts the committer, syncer, acker and checkpointer threads, in the order
/// [`stop`] joins them.
pub(super) fn start(shared: &Arc<Shared>, tree: TreeBuilder, interval: Duration) -> Result<Vec<JoinHandle<()>>> {
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(|e| Error::Storage(format!("spawning {name}: {e}")))
    };
    let mut threads = Vec::with_capacity(4);
    let (to_syncer, written) = std::sync::mpsc::channel::<Written>();
    let (to_acker, acks) = std::sync::mpsc::channel::<(Acks, Vec<CommitBatch>)>();
    let s = shared.clone();
    threads.push(spawn("ledger-committer", Box::new(move || commit_loop(&s, tree, &to_syncer)))?);
    let s = shared.clone();
    threads.push(spawn("ledger-syncer", Box::new(move || sync_loop(&s, &written, &to_acker)))?);
    threads.push(spawn("ledger-acker", Box::new(move || ack_loop(&acks)))?);
    let s = shared.clone();
    threads.push(spawn("ledger-checkpointer", Box::new(move || checkpoint_loop(&s, interval)))?);
    Ok(threads)
}

/// Stops accepting submissions, lets the committer commit what was sequenced, and joins the
/// threads [`start`] started: the committer first; the syncer and then the acker end once what
/// it wrote is synced and answered; then the checkpointer signs a final checkpoint.
pub(super) fn stop(shared: &Shared, threads: Vec<JoinHandle<()>>) {
    shared.seq.lock().unwrap_or_else(|p| p.into_inner()).closing = true;
    shared.work_cv.notify_all();
    shared.room_cv.notify_all();
    let mut it = threads.into_iter();
    for t in it.by_ref().take(3) {
        let _ = t.join();
    }
    *shared.closing.lock().unwrap_or_else(|p| p.into_inner()) = true;
    shared.closing_cv.notify_all();
    for t in it {
        let _ = t.join();
    }
}

impl Shared {
    /// Sequences a submission into the open group, under the sequencing lock, in the caller's
    /// thread. Callbacks run outside the lock.
    pub(super) fn submit(&self, sub: Submission) {
        let size = (sub.entries.len(), sub.entries.iter().map(Prepared::len).sum());
        let mut st = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if st.closing {
                drop(st);
                return sub.done.send(Err(Error::Closed));
            }
            if let Err(e) = self.poisoned() {
                drop(st);
                return sub.done.send(Err(e));
            }
            let st_ref = &mut *st;
            if !st_ref.seq.is_full(&st_ref.open, size) {
                break;
            }
            if st_ref.queued.is_none() {
                // Queue the full group for the committer and open a new one.
                st_ref.queued = Some(self.take_open(st_ref));
                self.work_cv.notify_one();
                break;
            }
            // Backpressure: one full group already waits.
            st = self.room_cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        let st_ref = &mut *st;
        let rejected = match st_ref.seq.sequence(&*self.store, &mut st_ref.open, sub.entries, size) {
            Ok(indices) => {
                st_ref.open.answer(sub.done, indices);
                None
            }
            // A positioned submission's refusal is a fact of its source too: its position is
            // stored with the group, and the refusal answered only once that is durable, so a
            // log that restarts never takes the submission again (where, after later ones, it
            // might no longer be refused).
            Err(e) if sub.position.is_some() => {
                st_ref.open.answer(Reply::refusal(sub.done, e), Vec::new());
                None
            }
            Err(e) => Some((sub.done, e)),
        };
        if let Some(p) = sub.position {
            st_ref.open.advance(p, st_ref.seq.size());
        }
        let wake = st_ref.committer_waiting && st_ref.open.has_work();
        drop(st);
        if wake {
            self.work_cv.notify_one();
        }
        if let Some((reply, e)) = rejected {
            reply.send(Err(e));
        }
    }

    /// Closes the open group into a commit batch and opens the next.
    fn take_open(&self, st: &mut SeqState) -> Group {
        let open = std::mem::replace(&mut st.open, OpenGroup::empty());
        let group = st.seq.close(open);
        st.seq.prune(self.durable().size);
        group
    }
}

impl Error {
    fn clone_poison(&self) -> Error {
        match self {
            Error::Poisoned(r) => Error::Poisoned(r.clone()),
            other => Error::Poisoned(other.to_string()),
        }
    }
}

/// Answers for the acker to send, in order.
type Acks = Vec<(Reply, Result<Vec<u64>>)>;

/// A group the committer wrote (or, with no new entries, had nothing to write for), on its way
/// to the syncer.
struct Written {
    /// Its submissions' answers once it is durable; or, if writing failed, the error.
    acks: Vec<(Reply, Vec<u64>)>,
    failed: Option<Error>,
    /// The tree after it, if it wrote entries.
    tree: Option<Durable>,
    entries: u64,
    started: Instant,
    /// What it wrote: a group's many buffers are freed by the acker, after the answers, on
    /// neither the committer's nor the syncer's time.
    spent: CommitBatch,
}

/// The committer: takes the queued or open group the moment it is free, writes it as one
/// `WriteBatch` and hands it to the syncer. So a group is everything that was sequenced while
/// the previous group was being written, and the next group is written while the syncer makes
/// the previous ones durable.
fn commit_loop(shared: &Shared, mut tree: TreeBuilder, syncer: &Sender<Written>) {
    loop {
        let group = {
            let mut st = shared.seq.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(g) = st.queued.take() {
                    shared.room_cv.notify_all();
                    break g;
                }
                if st.open.has_work() {
                    break shared.take_open(&mut st);
                }
                if st.closing {
                    return;
                }
                st.committer_waiting = true;
                st = shared.work_cv.wait(st).unwrap_or_else(|p| p.into_inner());
                st.committer_waiting = false;
            }
        };
        let written = write_group(shared, &mut tree, group);
        // If the syncer is gone (it panicked), nothing can become durable: answer with errors.
        if let Err(std::sync::mpsc::SendError(w)) = syncer.send(written) {
            let e = Error::Poisoned("the log's syncer thread stopped".into());
            send_acks(w.acks.into_iter().map(|(r, _)| (r, Err(e.clone_poison()))).collect());
        }
    }
}

/// Hashes one group's leaves into the tree and writes its entries, run segments, the tiles it
/// completed and the new size as one `WriteBatch`.
fn write_group(shared: &Shared, tree: &mut TreeBuilder, group: Group) -> Written {
    let sequencer::Group { mut batch, leaves, acks } = group;
    let started = Instant::now();
    let entries = batch.entries.len() as u64;
    let mut w = Written { acks, failed: None, tree: None, entries, started, spent: CommitBatch::default() };
    if let Err(e) = shared.poisoned() {
        w.failed = Some(e);
    } else if !batch.entries.is_empty() || batch.position.is_some() {
        for leaf in leaves {
            tree.push(leaf, &mut batch.tiles);
        }
        debug_assert_eq!(tree.size(), batch.tree_size, "groups reach the committer in sequence order");
        let durable = Durable { size: tree.size(), root: tree.root(), edge: tree.edge() };
        match shared.store.write(&batch) {
            Ok(()) => {
                // Readers' cached identity registrations of every actor are stale from here.
                if batch.runs.iter().any(|seg| seg.run.starts_with(crate::entry::IDENTITY_RUN_PREFIX)) {
                    shared.identity_writes.fetch_add(1, Ordering::Release);
                }
                w.tree = Some(durable)
            }
            Err(e) => {
                // The store may now hold any part of this batch: stop writing.
                shared.poison(format!("writing entries up to tree size {}: {e}", batch.tree_size));
                w.failed = Some(shared.poisoned().expect_err("just poisoned"));
            }
        }
    }
    w.spent = batch;
    w
}

/// The syncer: takes every group written so far, makes them durable with one sync, publishes
/// the durable tree and hands their answers to the acker, groups in write order. Nothing is
/// answered `Ok` before the sync that covers it, and a group without new entries (only
/// duplicates) is answered after every group before it, so after the originals it repeats.
fn sync_loop(shared: &Shared, written: &Receiver<Written>, acker: &Sender<(Acks, Vec<CommitBatch>)>) {
    while let Ok(first) = written.recv() {
        let mut groups = vec![first];
        groups.extend(written.try_iter());
        let mut failed = groups.iter().find_map(|w| w.failed.as_ref().map(Error::clone_poison));
        let tree = groups.iter_mut().filter_map(|w| w.tree.take()).next_back();
        if let (None, Some(Durable { size, .. })) = (&failed, &tree) {
            // (1) Sync: every group above was written before this call.
            if let Err(e) = shared.store.sync() {
                shared.poison(format!("syncing entries up to tree size {size}: {e}"));
                failed = Some(shared.poisoned().expect_err("just poisoned"));
            }
        }
        let mut acks: Acks = Vec::new();
        let position = groups.iter().filter_map(|w| w.spent.position).next_back();
        let spent: Vec<CommitBatch> = groups.iter_mut().map(|w| std::mem::take(&mut w.spent)).collect();
        match failed {
            None => {
                let now = Instant::now();
                for w in &groups {
                    if w.entries > 0 {
                        shared.batches.fetch_add(1, Ordering::Relaxed);
                        shared.entries.fetch_add(w.entries, Ordering::Relaxed);
                        shared.commit_nanos.fetch_add((now - w.started).as_nanos() as u64, Ordering::Relaxed);
                    }
                }
                if let Some(tree) = tree {
                    shared.syncs.fetch_add(1, Ordering::Relaxed);
                    // (2) Publish: from here on a checkpoint may cover these entries.
                    *shared.durable.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(tree);
                }
                if position.is_some() {
                    *shared.position.lock().unwrap_or_else(|p| p.into_inner()) = position;
                }
                // (3) Acknowledge, in submission order.
                for w in groups {
                    acks.extend(w.acks.into_iter().map(|(r, indices)| (r, Ok(indices))));
                }
            }
            // A failed write or sync: none of these groups is known durable. (Groups before a
            // failed write in this set were written, but the log is poisoned: it cannot tell.)
            Some(e) => {
                for w in groups {
                    acks.extend(w.acks.into_iter().map(|(r, _)| (r, Err(e.clone_poison()))));
                }
            }
        }
        // Waking the appenders costs a few microseconds each and, on few cores, the CPU the
        // committer needs for the next group: the acker does it. If the acker is gone (it
        // panicked), answer here rather than never.
        if let Err(std::sync::mpsc::SendError((acks, _))) = acker.send((acks, spent)) {
            send_acks(acks);
        }
    }
}

/// The acker: answers each committed group's submissions, groups in commit order. Callbacks run
/// here, holding no log lock, so one may append again (and wait for room) without stopping the
/// committer. It ends when the committer does.
fn ack_loop(groups: &Receiver<(Acks, Vec<CommitBatch>)>) {
    while let Ok((acks, spent)) = groups.recv() {
        send_acks(acks);
        drop(spent);
    }
}

fn send_acks(acks: Acks) {
    for (reply, r) in acks {
        reply.send(r);
    }
}

/// The checkpointer: signs the durable tree every `interval` if it grew, and once more at close.
fn checkpoint_loop(shared: &Shared, interval: Duration) {
    let mut closing = shared.closing.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        // `open` signed the first checkpoint: wait an interval (or for close) before each next.
        if !*closing {
            closing = shared.closing_cv.wait_timeout(closing, interval).unwrap_or_else(|p| p.into_inner()).0;
        }
        let done = *closing;
        if shared.poisoned().is_err() {
            return;
        }
        // Errors poison the log inside `sign_checkpoint`; nothing more to do here.
        let _ = shared.sign_checkpoint();
        if done {
            return;
        }
    }
}
