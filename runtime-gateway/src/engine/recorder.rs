//! Recording one run: every transition is an entry with the next seq; finishing appends the
//! terminal entry and the seal together, atomically.
//!
//! Entries are submitted without waiting (the sink keeps submission order), so a run's
//! transitions cost no round trip each; the driver waits where it matters: for `task.accepted`
//! before the agent is called, and for the seal before the caller is told the run is done.

use std::sync::Arc;

use ledger_core::seal::seal_event_from_leaves;
use ledger_core::{Entry, Error, Event, Hash, NamedKey, Protocol, Result, RunId, RunStatus};
use tokio::sync::oneshot;

use crate::ledger::{Batch, Durable, LedgerSink};

/// An append in flight: resolves once it is durable (or refused).
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Result<Durable>>);

impl Pending {
    /// Waits for the append.
    pub async fn wait(self) -> Result<Durable> {
        self.0.await.unwrap_or(Err(Error::Closed))
    }

    /// Waits for the append from a thread outside the async runtime.
    pub fn wait_blocking(self) -> Result<Durable> {
        self.0.blocking_recv().unwrap_or(Err(Error::Closed))
    }
}

/// One transition to record: the event, its time, and the BLAKE3 of the payload that goes with
/// it (the entry's `payload` field: a follow-up message, an artifact as served, the run's
/// outcome), which the caller has stored through the sink before submitting.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The event.
    pub event: Event,
    /// Its time, Unix nanoseconds.
    pub ts: i64,
    /// The BLAKE3 of its payload, already stored.
    pub payload: Option<[u8; 32]>,
}

impl Transition {
    /// A transition without a payload.
    pub fn new(event: Event, ts: i64) -> Transition {
        Transition { event, ts, payload: None }
    }
}

impl From<(Event, i64)> for Transition {
    fn from((event, ts): (Event, i64)) -> Transition {
        Transition::new(event, ts)
    }
}

/// Records the transitions of one run and seals it with the gateway's identity.
#[derive(Debug)]
pub struct RunRecorder {
    sink: Arc<dyn LedgerSink>,
    key: Arc<NamedKey>,
    run: RunId,
    grant: Option<String>,
    /// Leaf hashes of the entries submitted so far (the seal's content hash is over them).
    leaves: Vec<Hash>,
    started_ns: i64,
    /// The first append failure; every later submission fails with it.
    failed: Option<String>,
}

/// What a run's first entry says.
#[derive(Clone, Debug)]
pub struct RunStart<'a> {
    /// Run id (the A2A task id).
    pub run: &'a str,
    /// Protocol the task came in over.
    pub protocol: Protocol,
    /// Skill id.
    pub skill: &'a str,
    /// The authenticated caller.
    pub caller: &'a str,
    /// The task input: its BLAKE3 is `input_hash` (the caller stores the bytes as a payload
    /// before the run starts).
    pub input: &'a [u8],
    /// The id of the grant the run's agent works under, recorded on its entries.
    pub grant: Option<String>,
    /// The A2A context id (SPEC 1.1 `context`).
    pub context: Option<&'a str>,
    /// The run on whose behalf this one was started (SPEC 1.1 `parent`).
    pub parent: Option<&'a str>,
}

impl RunRecorder {
    /// Submits `task.accepted` for a new run; the returned [`Pending`] resolves when it is durable.
    pub fn start(
        sink: Arc<dyn LedgerSink>,
        key: Arc<NamedKey>,
        start: RunStart<'_>,
        now_ns: i64,
    ) -> Result<(RunRecorder, Pending)> {
        RunRecorder::start_with(sink, key, start, Vec::new(), now_ns)
    }

    /// Like [`RunRecorder::start`], with `then` appended in the same atomic batch right after
    /// `task.accepted` (one group commit for both).
    pub fn start_with(
        sink: Arc<dyn LedgerSink>,
        key: Arc<NamedKey>,
        start: RunStart<'_>,
        then: Vec<Event>,
        now_ns: i64,
    ) -> Result<(RunRecorder, Pending)> {
        let mut r = RunRecorder {
            sink,
            key,
            run: RunId::new(start.run)?,
            grant: start.grant.clone(),
            leaves: Vec::new(),
            started_ns: now_ns,
            failed: None,
        };
        let input_hash = *blake3::hash(start.input).as_bytes();
        let event = Event::TaskAccepted {
            protocol: start.protocol,
            skill: start.skill.into(),
            caller: start.caller.into(),
            input_hash,
            context: start.context.map(str::to_string),
            parent: start.parent.map(RunId::new).transpose()?,
        };
        let mut batch = vec![r.entry(0, Transition::new(event, now_ns))];
        for (i, e) in then.into_iter().enumerate() {
            batch.push(r.entry(1 + i as u64, Transition::new(e, now_ns)));
        }
        let pending = r.send(batch);
        Ok((r, pending))
    }

    /// The run id.
    pub fn run(&self) -> &str {
        self.run.as_str()
    }

    /// Entries submitted so far.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// True before the first entry.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// Sets the grant id recorded on the following entries.
    pub fn set_grant(&mut self, grant: Option<String>) {
        self.grant = grant;
    }

    fn entry(&self, seq: u64, t: Transition) -> Vec<u8> {
        Entry {
            ts: t.ts,
            run: self.run.clone(),
            seq,
            actor: self.key.name().to_string(),
            event: t.event,
            grant: self.grant.clone(),
            payload: t.payload,
        }
        .encode()
    }

    fn send(&mut self, batch: Vec<Vec<u8>>) -> Pending {
        let (tx, rx) = oneshot::channel();
        if let Some(reason) = &self.failed {
            let _ = tx.send(Err(Error::Storage(format!("an earlier entry of this run was not recorded: {reason}"))));
            return Pending(rx);
        }
        let h = self.sink.tree_hash();
        // The first batch of a run holds its seq 0 (`task.accepted`).
        let opens_run = self.leaves.is_empty();
        self.leaves.extend(batch.iter().map(|b| h.leaf(b)));
        self.sink.append(
            Batch::new(batch, opens_run),
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        Pending(rx)
    }

    /// Marks the recording failed (after a [`Pending`] of this run resolved with an error), so
    /// nothing further is submitted out of sequence.
    pub fn fail(&mut self, reason: &Error) {
        self.failed.get_or_insert_with(|| reason.to_string());
    }

    /// Resumes an ended run from its durable entries (in seq order, its latest seal last), to
    /// append after the seal and seal it again. Returns the run's sealed status.
    pub fn resume(
        sink: Arc<dyn LedgerSink>,
        key: Arc<NamedKey>,
        run: &str,
        entries: &[(u64, Vec<u8>)],
    ) -> Result<(RunRecorder, RunStatus)> {
        let (mut r, _, last) = RunRecorder::replay(sink, key, run, entries)?;
        let status = match last {
            Some(Event::ReceiptSealed { status, .. }) => status,
            _ => return Err(Error::Unsealed(run.to_string())),
        };
        r.grant = None;
        Ok((r, status))
    }

    /// A recorder after `entries` (a run's durable entries in seq order), on the grant of its
    /// last entry that names one; also the status of its terminal entry, if any, and its last
    /// event.
    fn replay(
        sink: Arc<dyn LedgerSink>,
        key: Arc<NamedKey>,
        run: &str,
        entries: &[(u64, Vec<u8>)],
    ) -> Result<(RunRecorder, Option<RunStatus>, Option<Event>)> {
        let h = sink.tree_hash();
        let mut leaves = Vec::with_capacity(entries.len());
        let (mut ended, mut grant, mut started_ns, mut last) = (None, None, 0, None);
        for (i, (_, bytes)) in entries.iter().enumerate() {
            let e = Entry::decode(bytes)?;
            if e.run.as_str() != run || e.seq != i as u64 {
                return Err(Error::Corrupt(format!("run {run:?}: entry {i} is ({:?}, {})", e.run.as_str(), e.seq)));
            }
            if i == 0 {
                started_ns = e.ts;
            }
            if e.grant.is_some() {
                grant = e.grant.clone();
            }
            if let Event::TaskEnded { status, .. } = &e.event {
                ended = Some(*status);
            }
            last = Some(e.event);
            leaves.push(h.leaf(bytes));
        }
        let r = RunRecorder { sink, key, run: RunId::new(run)?, grant, leaves, started_ns, failed: None };
        Ok((r, ended, last))
    }

    /// Reopens a run this gateway left unsealed (its process died) from its durable entries in
    /// seq order, to end and seal it. Returns the recorder (on the grant of the last entry) and
    /// the run's status if its terminal entry is already there (then only the seal is missing).
    pub fn reopen(
        sink: Arc<dyn LedgerSink>,
        key: Arc<NamedKey>,
        run: &str,
        entries: &[(u64, Vec<u8>)],
    ) -> Result<(RunRecorder, Option<RunStatus>)> {
        let (r, ended, last) = RunRecorder::replay(sink, key, run, entries)?;
        if matches!(last, Some(Event::ReceiptSealed { .. })) {
            return Err(Error::Corrupt(format!("run {run:?} is sealed")));
        }
        Ok((r, ended))
    }

    /// Appends `events` and a new seal over every entry of the run (SPEC §3: a run that gains
    /// entries after it ended is sealed again; the latest seal is its receipt), atomically.
    pub fn reseal(&mut self, events: Vec<Transition>, status: RunStatus, now_ns: i64) -> Pending {
        let batch = self.entries(events);
        self.send_sealed(batch, status, now_ns)
    }

    /// Sends `batch` (the entries after those submitted so far) with a seal over the whole run
    /// appended, atomically.
    fn send_sealed(&mut self, mut batch: Vec<Vec<u8>>, status: RunStatus, now_ns: i64) -> Pending {
        let h = self.sink.tree_hash();
        let mut leaves = self.leaves.clone();
        leaves.extend(batch.iter().map(|b| h.leaf(b)));
        let seal = seal_event_from_leaves(self.run.as_str(), &leaves, status, &self.key);
        batch.push(self.entry(leaves.len() as u64, Transition::new(seal, now_ns)));
        self.send(batch)
    }

    /// Submits one transition.
    pub fn submit(&mut self, event: Event, now_ns: i64) -> Pending {
        self.submit_all(vec![Transition::new(event, now_ns)])
    }

    /// Submits transitions as one atomic batch.
    pub fn submit_all(&mut self, events: Vec<Transition>) -> Pending {
        let batch = self.entries(events);
        self.send(batch)
    }

    fn entries(&self, events: Vec<Transition>) -> Vec<Vec<u8>> {
        let first = self.leaves.len() as u64;
        events.into_iter().enumerate().map(|(i, t)| self.entry(first + i as u64, t)).collect()
    }

    /// Submits the terminal entry and the seal over every entry before it, as one atomic batch.
    pub fn finish(&mut self, status: RunStatus, artifacts: Vec<String>, error: Option<String>, now_ns: i64) -> Pending {
        self.finish_after(Vec::new(), status, artifacts, error, None, now_ns)
    }

    /// Like [`RunRecorder::finish`], with transitions not yet submitted (`before`) in the same
    /// atomic batch ahead of the terminal entry, which names `outcome` (the stored payload of the
    /// run's final message and result) when there is one.
    pub fn finish_after(
        &mut self,
        before: Vec<Transition>,
        status: RunStatus,
        artifacts: Vec<String>,
        error: Option<String>,
        outcome: Option<[u8; 32]>,
        now_ns: i64,
    ) -> Pending {
        let elapsed_ms = u64::try_from((now_ns - self.started_ns) / 1_000_000).unwrap_or(0);
        let error = if status == RunStatus::Failed { Some(error.unwrap_or_else(|| "failed".into())) } else { None };
        let mut batch = self.entries(before);
        let end_seq = self.leaves.len() + batch.len();
        let end = Transition {
            event: Event::TaskEnded { status, elapsed_ms, artifacts, error },
            ts: now_ns,
            payload: outcome,
        };
        batch.push(self.entry(end_seq as u64, end));
        self.send_sealed(batch, status, now_ns)
    }
}

#[cfg(test)]
mod tests {
    use ledger_core::{Log, LogConfig, MemStore};

    use super::*;
    use crate::ledger::EmbeddedLedger;
    use crate::ledger::testing::Noting;

    #[tokio::test]
    async fn only_the_batch_with_seq_0_says_it_opens_the_run() {
        let log = Log::open(
            Arc::new(MemStore::new()),
            NamedKey::from_seed("test/log", [1; 32]).unwrap(),
            LogConfig::default(),
        )
        .unwrap();
        let sink = Arc::new(Noting::new(EmbeddedLedger::new(Arc::new(log))));
        let key = Arc::new(NamedKey::from_seed("gateway", [2; 32]).unwrap());
        crate::engine::identity::register_identity(&*sink, &key, 0).await.unwrap();
        let start = RunStart {
            run: "t-1",
            protocol: Protocol::Https,
            skill: "s",
            caller: "c",
            input: b"{}",
            grant: None,
            context: None,
            parent: None,
        };
        let working = vec![Event::TaskStatus { state: "working".into(), message: None }];
        let (mut run, accepted) = RunRecorder::start_with(sink.clone(), key, start, working, 1).unwrap();
        accepted.wait().await.unwrap();
        run.submit(Event::TaskStatus { state: "working".into(), message: Some("more".into()) }, 2)
            .wait()
            .await
            .unwrap();
        run.finish(RunStatus::Completed, vec![], None, 3).wait().await.unwrap();
        let seen = sink.seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [(vec![0], true), (vec![0, 1], true), (vec![2], false), (vec![3, 4], false)],
            "the identity registration and the run's first batch open runs; nothing else does"
        );
    }
}
