//! The engine, under the caller surfaces and over the ledger seam: runs tasks and records them.
//! It imports [`crate::ledger`] and [`crate::base`], never [`crate::surface`].
//!
//! - [`tasks`] — the [`tasks::Engine`]: creates a task once its `task.accepted` is durable; one
//!   driver per task relays its upstream's updates into the recorder and the task's buffer;
//! - [`buffer`] — a task and its event buffer, which every subscriber reads from its own cursor;
//! - [`updates`] — what an upstream update becomes (ledger entry, A2A event), a pure function;
//! - [`skills`] — skill routes; [`schema`] — JSON Schema compilation; [`manifest`] — the
//!   agents and skills served (TOML), its schemas checked when it loads;
//! - [`recorder`] — a run's entries, in order, sealed at the end;
//! - [`grants`] — a run's workspace grant; [`files`] — where workspace files are;
//!   [`approvals`] — scope requests and the approvers' inbox; [`reseal`] — evals and reviews
//!   appended to ended runs;
//! - [`push`] — push configs and their delivery, with its webhook address [`push::policy`];
//! - [`upstream`] — the agents behind the gateway;
//! - [`identity`] — the gateway's key and its registration entry.

pub mod approvals;
pub mod buffer;
pub mod files;
pub mod grants;
pub mod identity;
pub mod manifest;
pub mod push;
pub mod rebuild;
pub mod recorder;
pub mod reseal;
pub mod schema;
pub mod skills;
pub mod tasks;
pub mod updates;
pub mod upstream;
