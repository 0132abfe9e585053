//! [`Shards`]: several logs behind one [`LedgerSink`] (issue 20's sharded logs, for write scale:
//! each log has its own stream, sequencer and key, so logs append in parallel).
//!
//! Each run lives in exactly one log: the one its `task.accepted` is routed to (the first
//! [`Route`] naming the run's agent or caller, else the default log, shard 0). Every later entry
//! of the run (its end, seal, reviews and reseals) follows it there, so a run's receipt is whole
//! in one log and names that log (its descriptor's origin). Identity runs (`id/<name>`) and
//! anything that is not a task go to the default log; the gateway registers its identity in
//! every log at start, since a receipt's signer must be registered in the receipt's own log.
//!
//! Rules kept here:
//! - Acknowledgements are given in `append` order across all logs ([`InOrder`]), as the trait
//!   promises.
//! - A run's batches reach its log in the order they were appended. Its log is known when its
//!   first batch is appended (routed then), or, for a run this process did not open (a review
//!   or reseal after a restart), looked up in every log while its later batches wait behind
//!   the lookup, in order. A run is forgotten once its seal is acknowledged (the map stays as
//!   large as the runs in flight); a later reseal looks it up again.
//! - A run found in no log is never guessed into one: its batches fail, saying so.
//! - Listings across logs go log by log (the default log first, then the others as
//!   configured), newest first within each: the indices of two logs are unrelated, so a
//!   listing's position carries the log's rank above the index ([`ListKey`]); a search's cursor
//!   carries it as a prefix.
//! - Every log has the same tree hash (checked in [`Shards::new`]): the run recorder hashes
//!   leaves for the seal with the sink's one [`LedgerSink::tree_hash`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::future::join_all;
use ledger_core::{Entry, Error, Event, LogDescriptor, Result, RunSearch, SearchPage, TreeHash};

use super::in_order::InOrder;
use super::{AppendDone, Batch, BoxFuture, LedgerSink, Payload, ReceiptError, RunEntries, RunPage, RunRef, RunsBy};

/// One log behind the router.
#[derive(Debug)]
pub struct Shard {
    /// The log's name (as the bus and the gateway's config call it).
    pub name: String,
    /// Where its entries go and its reads come from.
    pub sink: Arc<dyn LedgerSink>,
}

/// Which runs go to a log: those of an agent in `agents` or a caller in `callers` (a pattern is
/// a name, or a prefix followed by `*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Route {
    /// The log's name (one of the shards').
    pub log: String,
    /// Agent names (the manifest's).
    pub agents: Vec<String>,
    /// Caller names (tenants).
    pub callers: Vec<String>,
}

/// Whether `pattern` (a name, or a prefix followed by `*`) matches `name`.
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// A batch waiting for its run's log to be found.
struct Waiting {
    n: u64,
    batch: Batch,
    done: AppendDone,
    seals: bool,
}

/// Where a run's batches go.
enum Place {
    /// To this shard.
    Log(usize),
    /// Its log is being looked up; these batches wait, in order.
    Finding(VecDeque<Waiting>),
}

struct Inner {
    shards: Vec<Shard>,
    /// Routes by shard rank, in the order they are tried.
    routes: Vec<(usize, Route)>,
    /// Skill id → the agent that serves it (told by whoever knows the manifest).
    agents: RwLock<HashMap<String, String>>,
    /// Runs with batches in flight, and where they go.
    runs: Mutex<HashMap<String, Place>>,
    order: InOrder,
    runtime: tokio::runtime::Handle,
}

/// Several logs behind one sink.
#[derive(Clone)]
pub struct Shards(Arc<Inner>);

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards").field("logs", &self.0.shards.iter().map(|s| &s.name).collect::<Vec<_>>()).finish()
    }
}

/// Bits of a listing position that hold the index; the log's rank is above them.
const INDEX_BITS: u32 = 48;

/// A listing position across `k` logs: `(k - rank) << 48 | index`, so the default log's runs
/// (rank 0) come first in a newest-first listing, each log's newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ListKey {
    k: usize,
}

impl ListKey {
    fn encode(self, rank: usize, index: u64) -> Result<u64> {
        if index >> INDEX_BITS != 0 {
            return Err(Error::Storage(format!(
                "index {index} is too large for a listing across {} logs (at most 2^{INDEX_BITS})",
                self.k
            )));
        }
        Ok(((self.k - rank) as u64) << INDEX_BITS | index)
    }

    /// Where a listing below `before` starts: `None` when nothing is below it, else the first
    /// rank to read and the bound within it (later ranks are read whole).
    fn start(self, before: Option<u64>) -> Option<(usize, Option<u64>)> {
        let Some(b) = before else { return Some((0, None)) };
        let high = (b >> INDEX_BITS) as usize;
        match high {
            0 => None,
            h if h > self.k => Some((0, None)),
            h => Some((self.k - h, Some(b & ((1 << INDEX_BITS) - 1)))),
        }
    }
}

impl Shards {
    /// The router over `shards` (the first is the default log) with `routes`, tried in order.
    /// Refuses a route to a log that is not among the shards, and logs of different tree hashes.
    /// Needs a tokio runtime.
    pub fn new(shards: Vec<Shard>, routes: Vec<Route>) -> Result<Shards> {
        let Some(first) = shards.first() else {
            return Err(Error::Storage("a router over no logs".into()));
        };
        let hash = first.sink.tree_hash();
        for s in &shards[1..] {
            if s.sink.tree_hash() != hash {
                return Err(Error::Storage(format!(
                    "log {:?} hashes its tree with {} and log {:?} with {}: one gateway's logs must share one tree hash",
                    first.name,
                    hash,
                    s.name,
                    s.sink.tree_hash()
                )));
            }
        }
        let mut ranked = Vec::new();
        for r in routes {
            let rank = shards.iter().position(|s| s.name == r.log).ok_or_else(|| {
                Error::Storage(format!("a route names log {:?}, which is not one of the gateway's logs", r.log))
            })?;
            ranked.push((rank, r));
        }
        Ok(Shards(Arc::new(Inner {
            shards,
            routes: ranked,
            agents: RwLock::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
            order: InOrder::default(),
            runtime: tokio::runtime::Handle::current(),
        })))
    }

    /// Tells which agent serves each skill (skill id → agent name), for routes by agent. Runs
    /// accepted before are routed by caller only.
    pub fn know_agents(&self, agents: HashMap<String, String>) {
        *self.0.agents.write().unwrap_or_else(|p| p.into_inner()) = agents;
    }

    /// The logs, default first.
    pub fn shards(&self) -> &[Shard] {
        &self.0.shards
    }

    /// The log a run's first entry goes to.
    fn route(&self, first: &Entry) -> usize {
        let Event::TaskAccepted { skill, caller, .. } = &first.event else { return 0 };
        let agent = self.0.agents.read().unwrap_or_else(|p| p.into_inner()).get(skill).cloned();
        self.0
            .routes
            .iter()
            .find(|(_, r)| {
                agent.as_deref().is_some_and(|a| r.agents.iter().any(|p| matches(p, a)))
                    || r.callers.iter().any(|p| matches(p, caller))
            })
            .map_or(0, |(rank, _)| *rank)
    }

    /// The log `run` is known to be in (its batches in flight here).
    fn placed(&self, run: &str) -> Option<usize> {
        match self.0.runs.lock().unwrap_or_else(|p| p.into_inner()).get(run) {
            Some(Place::Log(rank)) => Some(*rank),
            _ => None,
        }
    }

    fn key(&self) -> ListKey {
        ListKey { k: self.0.shards.len() }
    }
}

impl Inner {
    /// Sends batch `n` to shard `rank`; once a batch holding the run's seal is acknowledged,
    /// the run is forgotten (a later reseal looks it up).
    fn forward(self: &Arc<Self>, rank: usize, run: String, w: Waiting) {
        let inner = self.clone();
        let Waiting { n, batch, done, seals } = w;
        self.shards[rank].sink.append(
            batch,
            Box::new(move |r| {
                if seals && r.is_ok() {
                    let mut runs = inner.runs.lock().unwrap_or_else(|p| p.into_inner());
                    if matches!(runs.get(&run), Some(Place::Log(at)) if *at == rank) {
                        runs.remove(&run);
                    }
                }
                inner.order.finish(n, done, r);
            }),
        );
    }

    /// The shard holding `run`, with the run's entries there, asked of every log at once.
    async fn find(&self, run: &str) -> Result<Option<(usize, RunEntries)>> {
        let found = join_all(self.shards.iter().map(|s| s.sink.run_entries(run))).await;
        let mut failed = None;
        for (rank, r) in found.into_iter().enumerate() {
            match r {
                Ok(entries) if !entries.is_empty() => return Ok(Some((rank, entries))),
                Ok(_) => {}
                Err(e) => failed = Some(Error::Storage(format!("log {:?}: {e}", self.shards[rank].name))),
            }
        }
        failed.map_or(Ok(None), Err)
    }

    /// Looks `run` up and sends what waits for it there, in order (batches appended meanwhile
    /// join the queue behind), or fails every waiting batch.
    async fn settle(self: Arc<Self>, run: String) {
        let found = self.find(&run).await.map(|f| f.map(|(rank, _)| rank));
        loop {
            let next = {
                let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
                let Some(Place::Finding(queue)) = runs.get_mut(&run) else { return };
                match queue.pop_front() {
                    Some(w) => w,
                    None => {
                        match &found {
                            Ok(Some(rank)) => runs.insert(run.clone(), Place::Log(*rank)),
                            _ => runs.remove(&run),
                        };
                        return;
                    }
                }
            };
            match &found {
                Ok(Some(rank)) => self.forward(*rank, run.clone(), next),
                Ok(None) => {
                    let e = Error::Storage(format!(
                        "run {run:?} is in none of the gateway's {} logs: its entries cannot be appended",
                        self.shards.len()
                    ));
                    self.order.finish(next.n, next.done, Err(e));
                }
                Err(e) => {
                    let e = Error::Storage(format!("finding the log of run {run:?}: {e}"));
                    self.order.finish(next.n, next.done, Err(e));
                }
            }
        }
    }
}

impl LedgerSink for Shards {
    fn append(&self, batch: Batch, done: AppendDone) {
        let inner = &self.0;
        let n = inner.order.issue();
        // Batches are one run's (the run recorder's): the first entry names the run and, for a
        // new run, its route; the last says whether the batch seals it.
        let decoded = batch.entries.first().map(|b| Entry::decode(b)).transpose().and_then(|first| {
            let last = match batch.entries.len() {
                0 | 1 => None,
                _ => Some(Entry::decode(batch.entries.last().expect("two or more"))?),
            };
            Ok((first, last))
        });
        let (first, last) = match decoded {
            Ok((Some(first), last)) => (first, last),
            Ok((None, _)) => return inner.order.finish(n, done, Err(Error::Storage("an empty batch".into()))),
            Err(e) => return inner.order.finish(n, done, Err(e)),
        };
        let run = first.run.as_str().to_string();
        if let Some(last) = &last
            && last.run != first.run
        {
            let e = Error::Storage(format!(
                "a batch holds entries of runs {run:?} and {:?}: with several logs, a batch must be one run's",
                last.run.as_str()
            ));
            return inner.order.finish(n, done, Err(e));
        }
        let seals = matches!(last.as_ref().unwrap_or(&first).event, Event::ReceiptSealed { .. });
        let w = Waiting { n, batch, done, seals };
        let mut runs = inner.runs.lock().unwrap_or_else(|p| p.into_inner());
        match runs.get_mut(&run) {
            Some(Place::Log(rank)) => {
                let rank = *rank;
                drop(runs);
                inner.forward(rank, run, w);
            }
            Some(Place::Finding(queue)) => queue.push_back(w),
            None if first.seq == 0 => {
                let rank = self.route(&first);
                runs.insert(run.clone(), Place::Log(rank));
                drop(runs);
                inner.forward(rank, run, w);
            }
            None => {
                runs.insert(run.clone(), Place::Finding(VecDeque::from([w])));
                drop(runs);
                inner.runtime.spawn(inner.clone().settle(run));
            }
        }
    }

    fn tree_hash(&self) -> TreeHash {
        self.0.shards[0].sink.tree_hash()
    }

    fn descriptor(&self) -> LogDescriptor {
        self.0.shards[0].sink.descriptor()
    }

    fn descriptors(&self) -> Vec<LogDescriptor> {
        self.0.shards.iter().map(|s| s.sink.descriptor()).collect()
    }

    fn run_entries(&self, run: &str) -> BoxFuture<'_, Result<RunEntries>> {
        let run = run.to_string();
        Box::pin(async move {
            // Identity runs are in every log; the default log's is the one the gateway reads.
            let at =
                self.placed(&run).or_else(|| run.starts_with(ledger_core::entry::IDENTITY_RUN_PREFIX).then_some(0));
            match at {
                Some(rank) => self.0.shards[rank].sink.run_entries(&run).await,
                None => Ok(self.0.find(&run).await?.map(|(_, entries)| entries).unwrap_or_default()),
            }
        })
    }

    fn receipt(&self, run: &str, wait: Duration) -> BoxFuture<'_, std::result::Result<String, ReceiptError>> {
        let run = run.to_string();
        Box::pin(async move {
            if let Some(rank) = self.placed(&run) {
                return self.0.shards[rank].sink.receipt(&run, wait).await;
            }
            // Every log is asked at once; the ones without the run say so at once, and the
            // run's own log answers (after waiting for a checkpoint, if it must).
            let answers = join_all(self.0.shards.iter().map(|s| s.sink.receipt(&run, wait))).await;
            let mut unavailable = None;
            for a in answers {
                match a {
                    Err(ReceiptError::UnknownRun(_)) => {}
                    Err(ReceiptError::Unavailable(e)) => unavailable = Some(ReceiptError::Unavailable(e)),
                    other => return other,
                }
            }
            Err(unavailable.unwrap_or(ReceiptError::UnknownRun(run)))
        })
    }

    fn put_payload(&self, hash: [u8; 32], bytes: bytes::Bytes) -> BoxFuture<'_, Result<()>> {
        // A payload does not name its run: it is kept in every log, so the entry naming it finds
        // it in whichever log the run went to (the ordering rule then holds in each).
        Box::pin(async move {
            for r in join_all(self.0.shards.iter().map(|s| s.sink.put_payload(hash, bytes.clone()))).await {
                r?;
            }
            Ok(())
        })
    }

    fn payload(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<Payload>> {
        Box::pin(async move {
            let mut out = Payload::Missing;
            for p in join_all(self.0.shards.iter().map(|s| s.sink.payload(hash))).await {
                match p? {
                    Payload::Present(b) => return Ok(Payload::Present(b)),
                    e @ Payload::Erased { .. } => out = e,
                    Payload::Missing => {}
                }
            }
            Ok(out)
        })
    }

    fn erase_payload(&self, hash: [u8; 32], reason: String, approver: String) -> BoxFuture<'_, Result<u64>> {
        // Erased in every log that holds (or held) the bytes, each recording its own
        // `payload.erased`; the first such log's index is the answer. When no log holds them,
        // the default log answers (its refusal says what is missing).
        Box::pin(async move {
            let held = join_all(self.0.shards.iter().map(|s| s.sink.payload(hash))).await;
            let mut holders = Vec::new();
            for (rank, p) in held.into_iter().enumerate() {
                if !matches!(p?, Payload::Missing) {
                    holders.push(rank);
                }
            }
            if holders.is_empty() {
                return self.0.shards[0].sink.erase_payload(hash, reason, approver).await;
            }
            let mut first = None;
            for rank in holders {
                let i = self.0.shards[rank].sink.erase_payload(hash, reason.clone(), approver.clone()).await?;
                first.get_or_insert(i);
            }
            Ok(first.expect("one log or more held the payload"))
        })
    }

    fn runs(&self, by: RunsBy, before: Option<u64>, limit: usize) -> BoxFuture<'_, Result<RunPage>> {
        Box::pin(async move {
            let key = self.key();
            let start = key.start(before);
            let mut page = RunPage::default();
            for (rank, s) in self.0.shards.iter().enumerate() {
                // Every log is asked for its total; a log before the start, or after a full page,
                // for one run only.
                let (bound, take) = match start {
                    Some((from, bound)) if rank == from => (bound, limit.saturating_sub(page.runs.len())),
                    Some((from, _)) if rank > from => (None, limit.saturating_sub(page.runs.len())),
                    _ => (None, 0),
                };
                let got = s.sink.runs(by.clone(), bound, take.max(1)).await?;
                page.total += got.total;
                if take == 0 {
                    continue;
                }
                for r in got.runs.into_iter().take(take) {
                    page.runs.push(RunRef { index: key.encode(rank, r.index)?, run: r.run });
                }
            }
            Ok(page)
        })
    }

    fn search_runs(&self, q: RunSearch, cursor: Option<String>, limit: usize) -> BoxFuture<'_, Result<SearchPage>> {
        Box::pin(async move {
            // The cursor is `<rank>:<the log's own cursor>`, empty after the colon at a log's start.
            let (mut rank, mut inner) = match &cursor {
                None => (0, None),
                Some(c) => {
                    let bad = || Error::BadSearch(format!("{c:?}: not a cursor of this search"));
                    let (r, rest) = c.split_once(':').ok_or_else(bad)?;
                    let r: usize = r.parse().map_err(|_| bad())?;
                    if r >= self.0.shards.len() {
                        return Err(bad());
                    }
                    (r, (!rest.is_empty()).then(|| rest.to_string()))
                }
            };
            let k = self.0.shards.len();
            let mut page: Option<SearchPage> = None;
            loop {
                let want = limit.saturating_sub(page.as_ref().map_or(0, |p| p.runs.len())).max(1);
                let got = self.0.shards[rank].sink.search_runs(q.clone(), inner.take(), want).await?;
                let mut p = match page.take() {
                    None => SearchPage { runs: got.runs, cursor: None, scan: got.scan, examined: got.examined },
                    Some(mut p) => {
                        p.runs.extend(got.runs);
                        p.examined += got.examined;
                        p
                    }
                };
                // This log's scan goes on: the page ends here (a log's page may be short).
                if let Some(c) = got.cursor {
                    p.cursor = Some(format!("{rank}:{c}"));
                    return Ok(p);
                }
                if rank + 1 == k {
                    return Ok(p);
                }
                // This log is done; the next is read into the same page while room is left.
                if p.runs.len() >= limit || p.examined >= super::MAX_EXAMINED_PER_PAGE {
                    p.cursor = Some(format!("{}:", rank + 1));
                    return Ok(p);
                }
                rank += 1;
                page = Some(p);
            }
        })
    }

    fn open_runs(&self) -> BoxFuture<'_, Result<Vec<RunRef>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for (rank, s) in self.0.shards.iter().enumerate() {
                let open = s.sink.open_runs().await.map_err(|e| Error::Storage(format!("log {:?}: {e}", s.name)))?;
                // Their later entries (the end and seal a recovery appends) go where they are.
                let mut runs = self.0.runs.lock().unwrap_or_else(|p| p.into_inner());
                for r in &open {
                    runs.entry(r.run.clone()).or_insert(Place::Log(rank));
                }
                drop(runs);
                out.extend(open);
            }
            Ok(out)
        })
    }

    fn payload_runs(&self, hash: [u8; 32], limit: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for s in &self.0.shards {
                if out.len() >= limit {
                    break;
                }
                out.extend(s.sink.payload_runs(hash, limit - out.len()).await?);
            }
            Ok(out)
        })
    }

    fn backlog(&self) -> u64 {
        self.0.shards.iter().map(|s| s.sink.backlog()).sum()
    }

    fn refused_batches(&self) -> u64 {
        self.0.shards.iter().map(|s| s.sink.refused_batches()).sum()
    }

    fn lag(&self) -> Duration {
        self.0.shards.iter().map(|s| s.sink.lag()).max().unwrap_or_default()
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut first_err = None;
            for r in join_all(self.0.shards.iter().map(|s| s.sink.close())).await {
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                }
            }
            first_err.map_or(Ok(()), Err)
        })
    }
}

#[cfg(test)]
mod tests {
    use ledger_core::seal::seal_event_from_leaves;
    use ledger_core::{Log, LogConfig, MemStore, NamedKey, Protocol, RunId, RunStatus};

    use super::*;
    use crate::ledger::{Durable, EmbeddedLedger, append};

    /// A log holding the gateway's identity (as the gateway registers it in every log).
    fn log(origin: &str, seed: u8) -> Arc<Log> {
        let key = NamedKey::from_seed(origin, [seed; 32]).unwrap();
        let log = Arc::new(Log::open(Arc::new(MemStore::new()), key, LogConfig::default()).unwrap());
        let id = entry("id/gw", 0, Event::IdentityRegistered { public_key: gateway().public_key() });
        log.append(vec![id]).unwrap();
        log
    }

    /// A router over logs `a` (default) and `b`; runs of agent `billing` or callers `acme-*` go
    /// to `b`.
    fn router(a: &Arc<Log>, b: &Arc<Log>) -> Shards {
        let shard =
            |name: &str, l: &Arc<Log>| Shard { name: name.into(), sink: Arc::new(EmbeddedLedger::new(l.clone())) };
        let route = Route { log: "b".into(), agents: vec!["billing".into()], callers: vec!["acme-*".into()] };
        let s = Shards::new(vec![shard("a", a), shard("b", b)], vec![route]).unwrap();
        s.know_agents(HashMap::from([("pay".into(), "billing".into()), ("echo".into(), "demo".into())]));
        s
    }

    fn gateway() -> NamedKey {
        NamedKey::from_seed("gw", [9; 32]).unwrap()
    }

    fn entry(run: &str, seq: u64, event: Event) -> Vec<u8> {
        Entry { ts: 1, run: RunId::new(run).unwrap(), seq, actor: "gw".into(), event, grant: None, payload: None }
            .encode()
    }

    fn accepted(run: &str, skill: &str, caller: &str) -> Vec<u8> {
        let event = Event::TaskAccepted {
            protocol: Protocol::A2a,
            skill: skill.into(),
            caller: caller.into(),
            input_hash: [0; 32],
            context: None,
            parent: None,
        };
        entry(run, 0, event)
    }

    fn progress(run: &str, seq: u64) -> Vec<u8> {
        entry(run, seq, Event::SkillProgress { stage: format!("step {seq}"), pct: 0, message: String::new() })
    }

    /// The seal over `run`'s entries in `log` plus `before` (appended with it).
    fn seal(log: &Log, run: &str, before: &[Vec<u8>]) -> Vec<u8> {
        let h = log.hash();
        let mut leaves: Vec<_> = log.run_entries(run).unwrap().iter().map(|(_, b)| h.leaf(b)).collect();
        leaves.extend(before.iter().map(|b| h.leaf(b)));
        let n = leaves.len() as u64;
        entry(run, n, seal_event_from_leaves(run, &leaves, RunStatus::Completed, &gateway()))
    }

    async fn put(s: &Shards, entries: Vec<Vec<u8>>) -> Result<Durable> {
        let opens = Entry::decode(&entries[0]).unwrap().seq == 0;
        append(s, Batch::new(entries, opens)).await
    }

    fn runs_of(log: &Log) -> Vec<String> {
        let mut v: Vec<String> = (0..log.durable_size())
            .map(|i| Entry::decode(&log.entry(i).unwrap()).unwrap().run.into_string())
            .filter(|r| !r.starts_with("id/"))
            .collect();
        v.dedup();
        v
    }

    #[tokio::test]
    async fn a_run_goes_where_its_agent_or_caller_is_routed_and_every_later_entry_follows() {
        let (a, b) = (log("test/a", 1), log("test/b", 2));
        let s = router(&a, &b);
        put(&s, vec![accepted("r-billing", "pay", "bob")]).await.unwrap();
        put(&s, vec![accepted("r-acme", "echo", "acme-7")]).await.unwrap();
        put(&s, vec![accepted("r-plain", "echo", "bob")]).await.unwrap();
        // An unknown skill has no agent: its caller alone decides.
        put(&s, vec![accepted("r-unknown", "nope", "carol")]).await.unwrap();
        for run in ["r-billing", "r-acme", "r-plain", "r-unknown"] {
            put(&s, vec![progress(run, 1)]).await.unwrap();
        }
        let sealing = [progress("r-billing", 2)];
        let sealed = seal(&b, "r-billing", &sealing);
        put(&s, vec![sealing[0].clone(), sealed]).await.unwrap();
        assert_eq!(b.run_entries("r-billing").unwrap().len(), 4);
        assert_eq!(b.run_entries("r-acme").unwrap().len(), 2);
        assert_eq!(a.run_entries("r-plain").unwrap().len(), 2);
        assert_eq!(a.run_entries("r-unknown").unwrap().len(), 2);
        assert!(a.run_entries("r-billing").unwrap().is_empty() && b.run_entries("r-plain").unwrap().is_empty());
        // Reads find each run in its own log; the receipt names the log it is in.
        assert_eq!(s.run_entries("r-billing").await.unwrap().len(), 4);
        let receipt = s.receipt("r-billing", Duration::from_secs(5)).await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&receipt).unwrap();
        assert_eq!(v["log"]["origin"], "test/b", "{receipt}");
        assert!(matches!(s.receipt("r-none", Duration::ZERO).await, Err(ReceiptError::UnknownRun(_))));
        assert_eq!(s.descriptors().iter().map(|d| d.origin.as_str()).collect::<Vec<_>>(), ["test/a", "test/b"]);
    }

    #[tokio::test]
    async fn a_run_this_router_did_not_open_is_found_in_its_log_and_its_batches_keep_their_order() {
        let (a, b) = (log("test/a", 1), log("test/b", 2));
        put(&router(&a, &b), vec![accepted("r-1", "pay", "bob")]).await.unwrap();
        // A new process: its router knows nothing of r-1. Three batches appended at once wait
        // behind the lookup, and reach log b in order.
        let s = router(&a, &b);
        let mut waits = Vec::new();
        for seq in 1..4 {
            let (tx, rx) = tokio::sync::oneshot::channel();
            s.append(Batch::new(vec![progress("r-1", seq)], false), Box::new(move |r| drop(tx.send(r))));
            waits.push(rx);
        }
        for w in waits {
            w.await.unwrap().unwrap();
        }
        let seqs: Vec<u64> = b.run_entries("r-1").unwrap().iter().map(|(_, e)| Entry::decode(e).unwrap().seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        // A run in no log is never guessed into one.
        let e = put(&s, vec![progress("r-ghost", 1)]).await.unwrap_err();
        assert!(e.to_string().contains("run \"r-ghost\" is in none of the gateway's 2 logs"), "{e}");
        assert!(runs_of(&a).is_empty());
        // A batch of two runs is refused, naming both.
        let e = put(&s, vec![accepted("r-2", "echo", "bob"), progress("r-1", 4)]).await.unwrap_err();
        assert!(e.to_string().contains("runs \"r-2\" and \"r-1\""), "{e}");
    }

    #[tokio::test]
    async fn open_runs_come_from_every_log_and_a_sealed_run_is_forgotten_then_found_again() {
        let (a, b) = (log("test/a", 1), log("test/b", 2));
        let s = router(&a, &b);
        put(&s, vec![accepted("r-a", "echo", "bob")]).await.unwrap();
        put(&s, vec![accepted("r-b", "pay", "bob")]).await.unwrap();
        let fresh = router(&a, &b);
        let mut open: Vec<String> = fresh.open_runs().await.unwrap().into_iter().map(|r| r.run).collect();
        open.sort();
        assert_eq!(open, ["r-a", "r-b"]);
        // Recovery appends straight away: the map filled by open_runs sends each to its log.
        let sealed = seal(&b, "r-b", &[]);
        put(&fresh, vec![sealed]).await.unwrap();
        assert!(!fresh.0.runs.lock().unwrap().contains_key("r-b"), "forgotten once sealed");
        // A reseal after that is looked up, and lands in b.
        let more = [progress("r-b", 2)];
        let resealed = seal(&b, "r-b", &more);
        put(&fresh, vec![more[0].clone(), resealed]).await.unwrap();
        assert_eq!(b.run_entries("r-b").unwrap().len(), 4);
        assert!(a.run_entries("r-b").unwrap().is_empty());
    }

    #[tokio::test]
    async fn listings_and_searches_page_through_every_log_once() {
        let (a, b) = (log("test/a", 1), log("test/b", 2));
        let s = router(&a, &b);
        let mut all = Vec::new();
        for i in 0..7 {
            let (run, skill) = (format!("r-{i}"), if i % 3 == 0 { "pay" } else { "echo" });
            put(&s, vec![accepted(&run, skill, "bob")]).await.unwrap();
            all.push(run);
        }
        // Listing: pages of 2, each run once; the default log first, newest first in each.
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = s.runs(RunsBy::Caller("bob".into()), before, 2).await.unwrap();
            assert_eq!(page.total, 7);
            if page.runs.is_empty() {
                break;
            }
            assert!(page.runs.windows(2).all(|w| w[0].index > w[1].index), "keys descend");
            before = page.runs.last().map(|r| r.index);
            seen.extend(page.runs.into_iter().map(|r| r.run));
        }
        assert_eq!(seen, ["r-5", "r-4", "r-2", "r-1", "r-6", "r-3", "r-0"]);
        // A position below every key lists nothing; one above all, everything.
        assert!(s.runs(RunsBy::Caller("bob".into()), Some(0), 10).await.unwrap().runs.is_empty());
        assert_eq!(s.runs(RunsBy::Caller("bob".into()), Some(u64::MAX), 10).await.unwrap().runs.len(), 7);

        // Search: pages of 3 through both logs, each run once.
        let mut found = Vec::new();
        let mut cursor = None;
        for _ in 0..10 {
            let page = s.search_runs(RunSearch::default(), cursor.take(), 3).await.unwrap();
            found.extend(page.runs.into_iter().map(|r| r.run));
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        found.sort();
        all.sort();
        assert_eq!(found, all);
        let e = s.search_runs(RunSearch::default(), Some("7:".into()), 3).await.unwrap_err();
        assert!(e.to_string().contains("not a cursor of this search"), "{e}");
    }

    #[tokio::test]
    async fn acknowledgements_across_logs_come_in_append_order() {
        let (a, b) = (log("test/a", 1), log("test/b", 2));
        let s = router(&a, &b);
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waits = Vec::new();
        for (i, (run, skill)) in
            [("r-1", "pay"), ("r-2", "echo"), ("r-3", "pay"), ("r-4", "echo")].into_iter().enumerate()
        {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let order = order.clone();
            s.append(
                Batch::new(vec![accepted(run, skill, "bob")], true),
                Box::new(move |r| {
                    order.lock().unwrap().push(i);
                    drop(tx.send(r));
                }),
            );
            waits.push(rx);
        }
        for w in waits {
            w.await.unwrap().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
    }

    #[test]
    fn routes_must_name_a_log_and_logs_must_share_a_tree_hash() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let _in = rt.enter();
        let a = Shard { name: "a".into(), sink: Arc::new(EmbeddedLedger::new(log("test/a", 1))) };
        let route = Route { log: "c".into(), agents: vec!["x".into()], callers: vec![] };
        let e = Shards::new(vec![a], vec![route]).unwrap_err();
        assert!(e.to_string().contains("a route names log \"c\", which is not one of the gateway's logs"), "{e}");
        let sha = LogConfig { hash: TreeHash::Sha256, ..LogConfig::default() };
        let key = NamedKey::from_seed("test/s", [3; 32]).unwrap();
        let s = Arc::new(Log::open(Arc::new(MemStore::new()), key, sha).unwrap());
        let a = Shard { name: "a".into(), sink: Arc::new(EmbeddedLedger::new(log("test/a", 1))) };
        let s = Shard { name: "s".into(), sink: Arc::new(EmbeddedLedger::new(s)) };
        let e = Shards::new(vec![a, s], vec![]).unwrap_err();
        assert!(e.to_string().contains("one gateway's logs must share one tree hash"), "{e}");
        assert!(matches("acme-*", "acme-1") && matches("acme", "acme") && !matches("acme", "acme-1"));
    }
}
