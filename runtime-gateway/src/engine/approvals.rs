//! Scope requests and the approvers' inbox: an agent asks for more paths, the task waits in
//! `auth_required`, an approver (a caller listed in gateway.toml `approvers`) decides; the agent
//! learns the decision (and, when approved, its new grant) from the request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// How a scope request was decided.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Approved: the grant was rotated to `grant_id`.
    Approved {
        /// The new grant's id.
        grant_id: String,
        /// The new grant (for the agent only).
        token: String,
        /// Who approved.
        approver: String,
    },
    /// Denied.
    Denied {
        /// Who denied.
        approver: String,
        /// Why.
        reason: String,
    },
}

/// One request for more scope.
#[derive(Debug)]
pub struct ScopeRequest {
    /// Its id (`sr-…`).
    pub id: String,
    /// The run asking.
    pub run: String,
    /// The run's agent.
    pub agent: String,
    /// The run's skill.
    pub skill: String,
    /// The path globs asked for.
    pub paths: Vec<String>,
    /// Why, in the agent's words.
    pub reason: String,
    /// When (RFC 3339).
    pub requested_at: String,
    decision: watch::Sender<Option<Decision>>,
}

impl ScopeRequest {
    /// The decision, once there is one.
    pub fn decision(&self) -> Option<Decision> {
        self.decision.borrow().clone()
    }

    /// Records the decision and wakes whoever waits for it.
    pub fn decide(&self, d: Decision) {
        self.decision.send_replace(Some(d));
    }

    /// The decision, waiting up to `wait` for one.
    pub async fn wait_decision(&self, wait: Duration) -> Option<Decision> {
        let mut rx = self.decision.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        self.decision()
    }
}

/// What an agent asks for.
#[derive(Debug)]
pub struct Asked {
    /// The run asking.
    pub run: String,
    /// The run's agent.
    pub agent: String,
    /// The run's skill.
    pub skill: String,
    /// The path globs asked for.
    pub paths: Vec<String>,
    /// Why.
    pub reason: String,
}

/// The approvers and the scope requests they decide.
#[derive(Debug)]
pub struct Inbox {
    approvers: HashSet<String>,
    requests: Mutex<HashMap<String, Arc<ScopeRequest>>>,
}

impl Inbox {
    /// An empty inbox; `approvers` are caller names.
    pub fn new(approvers: impl IntoIterator<Item = String>) -> Inbox {
        Inbox { approvers: approvers.into_iter().collect(), requests: Mutex::new(HashMap::new()) }
    }

    /// Is the caller `name` an approver?
    pub fn is_approver(&self, name: &str) -> bool {
        self.approvers.contains(name)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ScopeRequest>>> {
        self.requests.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Files a new, undecided request under a fresh id.
    pub fn file(&self, asked: Asked) -> Arc<ScopeRequest> {
        let mut id = [0u8; 8];
        let _ = getrandom::fill(&mut id);
        let sr = Arc::new(ScopeRequest {
            id: format!("sr-{}", hex::encode(id)),
            run: asked.run,
            agent: asked.agent,
            skill: asked.skill,
            paths: asked.paths,
            reason: asked.reason,
            requested_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            decision: watch::channel(None).0,
        });
        self.lock().insert(sr.id.clone(), sr.clone());
        sr
    }

    /// The request `id`.
    pub fn get(&self, id: &str) -> Option<Arc<ScopeRequest>> {
        self.lock().get(id).cloned()
    }

    /// The undecided requests, oldest first.
    pub fn pending(&self) -> Vec<Arc<ScopeRequest>> {
        let mut pending: Vec<_> = self.lock().values().filter(|r| r.decision.borrow().is_none()).cloned().collect();
        pending.sort_by(|a, b| a.requested_at.cmp(&b.requested_at));
        pending
    }
}
