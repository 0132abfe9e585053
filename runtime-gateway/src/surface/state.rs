//! [`Gateway`]: what every caller surface shares — the engine under them, the Agent Card, the
//! callers' authentication, the workspaces' and approvals' state, push, and the `/metrics`
//! registry. The router hands it to every handler; no surface reaches into another for it.

use std::sync::Arc;

use ledger_core::{Entry, Event};

use crate::base::auth::{Authenticator, Caller};
use crate::base::config::ServerConfig;
use crate::engine::approvals::Inbox;
use crate::engine::files::Files;
use crate::engine::push::Pusher;
use crate::engine::reseal::Reseals;
use crate::engine::tasks::Engine;
use crate::surface::a2a::card::CardDoc;
use crate::surface::error::GatewayError;
use crate::surface::ops::Metrics;

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 << 20;

/// Everything the handlers share.
#[derive(Debug)]
pub struct Gateway {
    /// The task engine.
    pub engine: Arc<Engine>,
    /// The Agent Card.
    pub card: CardDoc,
    /// Caller authentication.
    pub auth: Authenticator,
    /// The runs' workspace files.
    pub files: Files,
    /// Callers who may erase payloads and read any (gateway.toml `admins`).
    pub admins: Vec<String>,
    /// A2A extensions every A2A request must activate (gateway.toml `required_extensions`).
    pub required_extensions: Vec<String>,
    /// Scope requests and the approvers who decide them.
    pub inbox: Inbox,
    /// Evals and reviews appended to ended runs.
    pub reseals: Reseals,
    /// Push notification configs and delivery.
    pub push: Arc<Pusher>,
    /// The `/metrics` registry.
    pub metrics: Metrics,
    /// The listener's limits.
    pub server: ServerConfig,
    /// Cancelled at shutdown: ends MCP sessions and streams.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Browser sessions (`surface::browser`): in memory, bounded, each made from a caller's
    /// credential and ending no later than it.
    pub sessions: ledger_dashboard::session::Sessions<Caller>,
}

impl Gateway {
    /// May `caller` read run `id`? Its task when still in memory, otherwise the run's
    /// `task.accepted` in the ledger, names the owner.
    pub async fn may_read(&self, caller: &Caller, id: &str) -> Result<(), GatewayError> {
        if self.engine.task(id).is_some_and(|h| h.owner == caller.name) {
            return Ok(());
        }
        let not_found = || GatewayError::not_found("unknown_run", format!("no run {id:?} of yours is known here"));
        let entries = self.engine.sink().run_entries(id).await.map_err(|e| {
            GatewayError::unavailable("ledger_unavailable", format!("reading run {id:?} from the ledger: {e}"))
        })?;
        let first = entries.first().ok_or_else(not_found)?;
        match Entry::decode(&first.1) {
            Ok(Entry { event: Event::TaskAccepted { caller: owner, .. }, actor, .. })
                if owner == caller.name && actor == self.engine.key().name() =>
            {
                Ok(())
            }
            _ => Err(not_found()),
        }
    }
}
