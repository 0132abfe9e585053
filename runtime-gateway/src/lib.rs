//! `runtime-gateway`: the protocol edge in front of agents. Callers reach agents over A2A 1.0
//! (JSON-RPC and HTTP+JSON), the platform REST and `POST /invoke/{skill}`; every state
//! transition of every run becomes a ledger entry, every run ends with a seal signed by the
//! gateway's own service identity, and every response names the run's receipt.
//!
//! Layers, top to bottom; a module imports only from its own layer and the ones below
//! (`tests/layers.rs` checks it):
//!
//! - [`surface`] — what callers and agents reach: [`surface::router::app`] is the listener,
//!   merging the A2A bindings, the platform REST, `/invoke`, MCP, ops and the workspace and
//!   approvals routes; [`surface::error::GatewayError`] is every error they answer;
//! - [`engine`] — [`engine::tasks::Engine`] runs tasks and records them through a
//!   [`engine::recorder::RunRecorder`]; skills, grants, push, the agents behind the gateway
//!   ([`engine::upstream`]);
//! - [`ledger`] — the seam, [`ledger::LedgerSink`]: in-process [`ledger::EmbeddedLedger`] or a
//!   remote [`ledger::remote::RemoteLedger`] behind its spool;
//! - [`base`] — configuration (`gateway.toml`), callers' authentication, canonical JSON,
//!   telemetry.
//!
//! # Example
//!
//! Record and seal one run by hand, in memory:
//!
//! ```
//! use std::sync::Arc;
//! use ledger_core::{Event, Log, LogConfig, MemStore, NamedKey, Protocol, RunStatus};
//! use runtime_gateway::engine::recorder::{RunRecorder, RunStart};
//! use runtime_gateway::ledger::{EmbeddedLedger, LedgerSink};
//!
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! rt.block_on(async {
//!     let log = Log::open(Arc::new(MemStore::new()), NamedKey::from_seed("example/log", [1; 32])?, LogConfig::default())?;
//!     let sink: Arc<dyn LedgerSink> = Arc::new(EmbeddedLedger::new(Arc::new(log)));
//!     let me = Arc::new(NamedKey::from_seed("gateway", [2; 32])?);
//!     runtime_gateway::engine::identity::register_identity(&*sink, &me, 0).await?;
//!
//!     let start = RunStart { run: "task-1", protocol: Protocol::Https, skill: "echo", caller: "alice", input: b"{}", grant: None, context: None, parent: None };
//!     let (mut run, accepted) = RunRecorder::start(sink.clone(), me, start, 1)?;
//!     accepted.wait().await?;
//!     run.submit(Event::TaskStatus { state: "working".into(), message: None }, 2);
//!     run.finish(RunStatus::Completed, vec![], None, 3).wait().await?;
//!     let receipt = sink.receipt("task-1", std::time::Duration::from_secs(5)).await.unwrap();
//!     assert_eq!(ledger_core::Receipt::from_json(receipt.as_bytes())?.entries.len(), 4);
//!     Ok::<(), ledger_core::Error>(())
//! })?;
//! # Ok::<(), ledger_core::Error>(())
//! ```

pub mod base;
pub mod engine;
pub mod ledger;
pub mod surface;
