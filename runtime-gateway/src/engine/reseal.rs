//! Evals and reviews of ended runs: the event is appended after the run's seal and the run is
//! sealed again, so its receipt is the newest seal. One resealing at a time per run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ledger_core::{Event, RunStatus};

use crate::base::now_ns;
use crate::engine::recorder::{RunRecorder, Transition};
use crate::engine::tasks::Engine;

/// Why an event could not be appended to an ended run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResealError {
    /// The run has not ended yet.
    #[error("run {0:?} is still running; evals and reviews come after it ends")]
    Running(String),
    /// The ledger has no entry of the run.
    #[error("the ledger has no run {0:?}")]
    UnknownRun(String),
    /// The run has no seal yet.
    #[error("run {0:?} has no seal yet")]
    Unsealed(String),
    /// The run's entries could not be read.
    #[error("{0}")]
    LedgerUnavailable(String),
    /// The run's entries do not make a run that can be resumed.
    #[error("{0}")]
    Invalid(String),
    /// The event and the new seal were not recorded.
    #[error("{kind} not recorded: {reason}")]
    NotRecorded {
        /// The event's kind.
        kind: &'static str,
        /// Why.
        reason: String,
    },
}

/// What was appended.
#[derive(Debug)]
pub struct Resealed {
    /// The event's kind.
    pub kind: &'static str,
    /// The run's entries now.
    pub events: usize,
}

/// One lock per run being resealed.
#[derive(Debug, Default)]
pub struct Reseals {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Reseals {
    /// Appends `event` to the ended run `run` and seals it again.
    pub async fn append(&self, engine: &Engine, run: &str, event: Event) -> Result<Resealed, ResealError> {
        if let Some(h) = engine.task(run)
            && !h.snapshot().closed
        {
            return Err(ResealError::Running(run.to_string()));
        }
        let lock = self.locks.lock().unwrap_or_else(|p| p.into_inner()).entry(run.to_string()).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        let sink = engine.sink().clone();
        let entries = sink.run_entries(run).await.map_err(|e| ResealError::LedgerUnavailable(e.to_string()))?;
        if entries.is_empty() {
            return Err(ResealError::UnknownRun(run.to_string()));
        }
        let (mut rec, status): (RunRecorder, RunStatus) =
            RunRecorder::resume(sink, engine.key().clone(), run, &entries).map_err(|e| match e {
                ledger_core::Error::Unsealed(_) => ResealError::Unsealed(run.to_string()),
                other => ResealError::Invalid(other.to_string()),
            })?;
        let kind = event.kind().as_str();
        rec.reseal(vec![Transition::new(event, now_ns())], status, now_ns())
            .wait()
            .await
            .map_err(|e| ResealError::NotRecorded { kind, reason: e.to_string() })?;
        Ok(Resealed { kind, events: entries.len() + 2 })
    }
}
