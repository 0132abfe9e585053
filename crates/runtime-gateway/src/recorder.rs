//! Recording one run: every transition is an entry with the next seq; finishing appends the
//! terminal entry and the seal together, atomically.

use std::sync::Arc;

use ledger_core::seal::seal_event_from_leaves;
use ledger_core::{Entry, Event, Hash, NamedKey, Protocol, Result, RunId, RunStatus};

use crate::LedgerSink;

/// Records the transitions of one run and seals it with the gateway's identity.
#[derive(Debug)]
pub struct RunRecorder {
    sink: Arc<dyn LedgerSink>,
    key: Arc<NamedKey>,
    run: RunId,
    grant: Option<String>,
    /// Leaf hashes of the entries recorded so far (the seal's content hash is over them).
    leaves: Vec<Hash>,
    started_ns: i64,
}

impl RunRecorder {
    /// Records `task.accepted` for a new run. `input` is hashed (BLAKE3), never stored.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        sink: Arc<dyn LedgerSink>,
        key: Arc<NamedKey>,
        run: &str,
        protocol: Protocol,
        skill: &str,
        caller: &str,
        input: &[u8],
        now_ns: i64,
    ) -> Result<RunRecorder> {
        let mut r =
            RunRecorder { sink, key, run: RunId::new(run)?, grant: None, leaves: Vec::new(), started_ns: now_ns };
        let input_hash = *blake3::hash(input).as_bytes();
        r.record(Event::TaskAccepted { protocol, skill: skill.into(), caller: caller.into(), input_hash }, now_ns)?;
        Ok(r)
    }

    /// The run id.
    pub fn run(&self) -> &str {
        self.run.as_str()
    }

    /// Sets the grant id recorded on the following entries.
    pub fn set_grant(&mut self, grant: Option<String>) {
        self.grant = grant;
    }

    fn entry(&self, seq: u64, event: Event, ts: i64) -> Vec<u8> {
        Entry {
            ts,
            run: self.run.clone(),
            seq,
            actor: self.key.name().to_string(),
            event,
            grant: self.grant.clone(),
            payload: None,
        }
        .encode()
    }

    /// Records one transition and returns its index once durable.
    pub fn record(&mut self, event: Event, now_ns: i64) -> Result<u64> {
        let bytes = self.entry(self.leaves.len() as u64, event, now_ns);
        let leaf = self.sink.tree_hash().leaf(&bytes);
        let index = self.sink.append_blocking(vec![bytes])?[0];
        self.leaves.push(leaf);
        Ok(index)
    }

    /// Records the terminal entry and the seal over every entry before it, in one atomic
    /// append. Returns the seal's index.
    pub fn finish(
        &mut self,
        status: RunStatus,
        artifacts: Vec<String>,
        error: Option<String>,
        now_ns: i64,
    ) -> Result<u64> {
        let elapsed_ms = u64::try_from((now_ns - self.started_ns) / 1_000_000).unwrap_or(0);
        let error = if status == RunStatus::Failed { Some(error.unwrap_or_else(|| "failed".into())) } else { None };
        let end =
            self.entry(self.leaves.len() as u64, Event::TaskEnded { status, elapsed_ms, artifacts, error }, now_ns);
        let h = self.sink.tree_hash();
        let mut leaves = self.leaves.clone();
        leaves.push(h.leaf(&end));
        let seal = seal_event_from_leaves(self.run.as_str(), &leaves, status, &self.key);
        let seal_bytes = self.entry(leaves.len() as u64, seal, now_ns);
        let indices = self.sink.append_blocking(vec![end, seal_bytes.clone()])?;
        leaves.push(h.leaf(&seal_bytes));
        self.leaves = leaves;
        Ok(indices[1])
    }
}
