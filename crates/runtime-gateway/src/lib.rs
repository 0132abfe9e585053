//! `runtime-gateway`: the protocol edge in front of agents. Every state transition of every run
//! becomes a ledger entry, and every run ends with a seal signed by the gateway's own service
//! identity, so every call can return a receipt.
//!
//! This crate holds the recording side: [`LedgerSink`], the seam between the gateway and the
//! ledger (in-process today through [`EmbeddedLedger`]; gRPC and a message bus attach here), the
//! gateway's service [`identity`], and the [`RunRecorder`] that turns a run's transitions into
//! entries and seals it. The protocol surfaces (A2A, MCP, `/invoke`) are built on top of it.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use ledger_core::{Event, Log, LogConfig, MemStore, NamedKey, Protocol, RunStatus};
//! use runtime_gateway::{EmbeddedLedger, LedgerSink, RunRecorder, register_identity};
//!
//! let log = Log::open(Arc::new(MemStore::new()), NamedKey::from_seed("example/log", [1; 32])?, LogConfig::default())?;
//! let sink: Arc<dyn LedgerSink> = Arc::new(EmbeddedLedger::new(Arc::new(log)));
//! let me = Arc::new(NamedKey::from_seed("gateway", [2; 32])?);
//! register_identity(&*sink, &me, 0)?;
//!
//! let mut run = RunRecorder::start(sink.clone(), me, "task-1", Protocol::Https, "echo", "alice", b"{}", 1)?;
//! run.record(Event::TaskStatus { state: "working".into(), message: None }, 2)?;
//! run.finish(RunStatus::Completed, vec![], None, 3)?;
//! let receipt = sink.receipt("task-1", std::time::Duration::from_secs(5))?;
//! assert_eq!(receipt.entries.len(), 4);
//! # Ok::<(), ledger_core::Error>(())
//! ```

pub mod identity;
mod recorder;
mod sink;

pub use identity::register_identity;
pub use recorder::RunRecorder;
pub use sink::{EmbeddedLedger, LedgerSink};
