//! `ledger-core`: the Merkle-anchored, signed, append-only event log of a2a-ledger.
//!
//! Every state transition of an agent run is one [`Entry`] in canonical CBOR; entries are the
//! leaves of an RFC 9162 tree ([`merkle`]) over the log's [`TreeHash`]; [`checkpoint`]s are C2SP
//! signed notes, which witnesses cosign ([`witness`]) and auditors judge by a C2SP trust
//! [`policy`]; a finished run is sealed ([`seal`]) and proven by a [`Receipt`]. The byte-level
//! contract is `docs/FORMATS.md` (after the project's SPEC).
//!
//! This crate does no network I/O and knows nothing of async runtimes: clocks and randomness are
//! passed in. The durable store on RocksDB is behind the `rocksdb` feature; without it the crate
//! is pure Rust (an auditor's build).
//!
//! # Example
//!
//! Append a run to an in-memory log, seal it, and verify its receipt:
//!
//! ```
//! use std::sync::Arc;
//! use ledger_core::{Entry, Event, Log, LogConfig, MemStore, NamedKey, ReceiptVerifier, RunId, RunStatus};
//!
//! let log_key = NamedKey::from_seed("example.com/log", [1; 32])?;
//! let log = Log::open(Arc::new(MemStore::new()), log_key, LogConfig::default())?;
//!
//! // The service identity registers its key, then records a run and seals it.
//! let gateway = NamedKey::from_seed("gateway", [2; 32])?;
//! let entry = |run: &RunId, seq, event| Entry {
//!     ts: 1_700_000_000_000_000_000, run: run.clone(), seq, actor: "gateway".into(),
//!     event, grant: None, payload: None,
//! }.encode();
//! let id_run = RunId::identity("gateway")?;
//! log.append(vec![entry(&id_run, 0, Event::IdentityRegistered { public_key: gateway.public_key() })])?;
//!
//! let run = RunId::new("run-1")?;
//! let accepted = entry(&run, 0, Event::TaskStatus { state: "working".into(), message: None });
//! let seal = ledger_core::seal::seal_event(log.hash(), run.as_str(), &[&accepted], RunStatus::Completed, &gateway);
//! log.append(vec![accepted.clone(), entry(&run, 1, seal)])?;
//!
//! log.sign_checkpoint()?;
//! let receipt = log.receipt("run-1")?;
//! let verified = ReceiptVerifier::new(log.descriptor().clone())?.verify(&receipt)?;
//! assert_eq!(verified.status, RunStatus::Completed);
//! # Ok::<(), ledger_core::Error>(())
//! ```

pub mod bus;
pub mod checkpoint;
#[cfg(feature = "rocksdb")]
pub mod datadir;
pub mod entry;
mod error;
pub mod fsck;
mod hash;
pub mod keys;
pub mod log;
pub mod merkle;
pub mod pack;
pub mod payload;
pub mod policy;
pub mod receipt;
pub mod seal;
pub mod store;
pub mod witness;

pub use checkpoint::{Checkpoint, LogDescriptor, Note};
pub use entry::{AcceptedAttrs, Entry, EntryView, Event, Kind, Protocol, RunId, RunStatus, SealAttrs};
pub use error::{Error, ReceiptStep, Result};
pub use hash::{Hash, TreeHash};
pub use keys::{NamedKey, VerifierKey};
pub use log::{Extensions, Log, LogConfig, LogKey, LogStats, SignedCheckpoint, Witnessing};
pub use merkle::{CompactRange, MemTree};
pub use payload::{PayloadLimits, PayloadState, PayloadStore};
pub use policy::{Policy, QuorumReport};
pub use receipt::{ProvenEntry, Receipt, ReceiptVerifier, VerifiedReceipt};
pub use store::{MemStore, RunKey, RunRef, RunSearch, RunSummary, Scan, SealSummary, SearchPage, StatusFilter, Store};
pub use witness::{Cosignature, WitnessKey};
#[cfg(feature = "rocksdb")]
pub use {
    datadir::DataDir,
    store::{RocksConfig, RocksStore},
};
