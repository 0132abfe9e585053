//! A task and its event buffer: every event of a task goes into its buffer, in one order; every
//! subscriber (A2A streams, SSE, blocking sends, push workers) reads that buffer from its own
//! cursor, so all see the same events in the same order, a reconnecting client replays from
//! `Last-Event-ID`, and a streaming client that disconnects stops nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use a2a::{Artifact, Message, StreamResponse, Task, TaskState};
use ledger_core::Event;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::engine::recorder::Pending;
use crate::engine::upstream::McpAnswer;

/// Messages from callers to a task's driver.
#[derive(Debug)]
pub(super) enum Control {
    Message(Message),
    /// Record `events` (after anything held back), then switch the recorder to `set_grant` and
    /// publish `status`; the reply resolves when the events are durable.
    Record {
        events: Vec<Event>,
        set_grant: Option<String>,
        status: Option<(TaskState, Option<String>)>,
        reply: tokio::sync::oneshot::Sender<Pending>,
    },
}

/// The grant a task's agent works under now.
#[derive(Clone, Debug)]
pub struct GrantState {
    /// Its id.
    pub id: String,
    /// The JWT (for the agent only; never recorded or logged).
    pub token: String,
    /// What it allows.
    pub scope: crate::engine::grants::Scope,
}

#[derive(Debug)]
pub(super) struct TaskInner {
    pub(super) task: Task,
    pub(super) events: Vec<Arc<StreamResponse>>,
    pub(super) result: Option<Value>,
    pub(super) mcp: Option<McpAnswer>,
    pub(super) error: Option<String>,
    /// A direct-message answer (A2A `SendMessageResponse.message`).
    pub(super) reply: Option<Message>,
    pub(super) control: Option<mpsc::Sender<Control>>,
    pub(super) cancel: watch::Sender<bool>,
    pub(super) grant: GrantState,
    /// The final event is published; nothing follows.
    pub(super) closed: bool,
    /// Why the run's recording failed, if it did.
    pub(super) recording_error: Option<String>,
}

/// One task.
#[derive(Debug)]
pub struct TaskHandle {
    /// Task (= run) id.
    pub id: String,
    /// Context id.
    pub context_id: String,
    /// The caller who created it.
    pub owner: String,
    /// Its skill.
    pub skill: String,
    /// The agent serving the skill.
    pub agent: String,
    /// The run's trace (spans of its workspace operations and push deliveries join it).
    pub trace: crate::base::telemetry::RunTrace,
    pub(super) inner: Mutex<TaskInner>,
    pub(super) published: watch::Sender<usize>,
}

/// A task's state as the REST surfaces report it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The A2A task.
    pub task: Task,
    /// The result, once completed.
    pub result: Option<Value>,
    /// An MCP upstream's answer, once ended, for MCP callers.
    pub mcp: Option<McpAnswer>,
    /// The error, once failed.
    pub error: Option<String>,
    /// A direct-message answer, if the agent gave one.
    pub reply: Option<Message>,
    /// All events are published.
    pub closed: bool,
    /// Why recording failed, if it did.
    pub recording_error: Option<String>,
}

/// The lower-snake-case name of an A2A state, as `task.status` records it.
pub fn state_name(s: &TaskState) -> &'static str {
    match s {
        TaskState::Unspecified => "unspecified",
        TaskState::Submitted => "submitted",
        TaskState::Working => "working",
        TaskState::Completed => "completed",
        TaskState::Failed => "failed",
        TaskState::Canceled => "canceled",
        TaskState::InputRequired => "input_required",
        TaskState::Rejected => "rejected",
        TaskState::AuthRequired => "auth_required",
    }
}

/// Terminal or interrupted: where a blocking send returns.
pub fn settled(s: &TaskState) -> bool {
    s.is_terminal() || matches!(s, TaskState::InputRequired | TaskState::AuthRequired)
}

impl TaskHandle {
    /// A task rebuilt from the ledger (served by `agent`): its events as recorded, closed (this
    /// process drives nothing of it).
    pub fn rebuilt(r: crate::engine::rebuild::Rebuilt, agent: String) -> TaskHandle {
        let grant = GrantState {
            id: r.grant.clone().unwrap_or_default(),
            token: String::new(),
            scope: crate::engine::grants::Scope::default(),
        };
        TaskHandle::from_ledger(r, agent, None, grant)
    }

    /// A run left in flight by a gateway that died, rebuilt from the ledger to be driven on here:
    /// its events as recorded, open, taking messages through `control`; its agent works under
    /// `grant` (the run's recorded grant; the token stays the agent's).
    pub(super) fn reopened(
        r: crate::engine::rebuild::Rebuilt,
        agent: String,
        control: mpsc::Sender<Control>,
        grant: GrantState,
    ) -> TaskHandle {
        TaskHandle::from_ledger(r, agent, Some(control), grant)
    }

    fn from_ledger(
        r: crate::engine::rebuild::Rebuilt,
        agent: String,
        control: Option<mpsc::Sender<Control>>,
        grant: GrantState,
    ) -> TaskHandle {
        let events: Vec<Arc<StreamResponse>> = r.events.into_iter().map(Arc::new).collect();
        let n = events.len();
        TaskHandle {
            id: r.task.id.clone(),
            context_id: r.task.context_id.clone(),
            owner: r.owner,
            skill: r.skill,
            agent,
            trace: crate::base::telemetry::RunTrace::detached(&r.task.id),
            inner: Mutex::new(TaskInner {
                task: r.task,
                events,
                result: r.result,
                mcp: r.mcp,
                error: r.error,
                reply: r.reply,
                closed: control.is_none(),
                control,
                cancel: watch::channel(false).0,
                grant,
                recording_error: None,
            }),
            published: watch::channel(n).0,
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, TaskInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies an event to the snapshot and appends it to the buffer.
    pub(super) fn publish(&self, ev: StreamResponse, close: bool) {
        let n = {
            let mut t = self.lock();
            match &ev {
                StreamResponse::StatusUpdate(s) => {
                    if let Some(m) = &t.task.status.message
                        && matches!(t.task.status.state, TaskState::InputRequired | TaskState::AuthRequired)
                    {
                        let m = m.clone();
                        t.task.history.get_or_insert_with(Vec::new).push(m);
                    }
                    t.task.status = s.status.clone();
                }
                StreamResponse::ArtifactUpdate(a) => {
                    let list = t.task.artifacts.get_or_insert_with(Vec::new);
                    match list.iter_mut().find(|x| x.artifact_id == a.artifact.artifact_id) {
                        Some(existing) if a.append.unwrap_or(false) => {
                            existing.parts.extend(a.artifact.parts.iter().cloned())
                        }
                        Some(existing) => *existing = a.artifact.clone(),
                        None => list.push(a.artifact.clone()),
                    }
                }
                StreamResponse::Task(_) | StreamResponse::Message(_) => {}
            }
            t.events.push(Arc::new(ev));
            t.closed |= close;
            t.events.len()
        };
        self.published.send_replace(n);
    }

    /// The task's artifact `id` as published so far (chunks merged).
    pub(super) fn artifact(&self, id: &str) -> Option<Artifact> {
        self.lock().task.artifacts.as_ref().and_then(|l| l.iter().find(|a| a.artifact_id == id)).cloned()
    }

    /// The current state.
    pub fn snapshot(&self) -> Snapshot {
        let t = self.lock();
        Snapshot {
            task: t.task.clone(),
            result: t.result.clone(),
            mcp: t.mcp.clone(),
            error: t.error.clone(),
            reply: t.reply.clone(),
            closed: t.closed,
            recording_error: t.recording_error.clone(),
        }
    }

    /// The grant the agent works under now.
    pub fn grant(&self) -> GrantState {
        self.lock().grant.clone()
    }

    /// Replaces the current grant.
    pub fn set_grant(&self, g: GrantState) {
        self.lock().grant = g;
    }

    /// The number of events published so far.
    pub fn cursor(&self) -> usize {
        self.lock().events.len()
    }

    /// Waits for events after `cursor`: returns the new events and whether the buffer is closed.
    pub async fn next_events(&self, cursor: usize) -> (Vec<Arc<StreamResponse>>, bool) {
        let mut rx = self.published.subscribe();
        loop {
            {
                let t = self.lock();
                if t.events.len() > cursor || t.closed {
                    return (t.events[cursor.min(t.events.len())..].to_vec(), t.closed);
                }
            }
            if rx.changed().await.is_err() {
                return (Vec::new(), true);
            }
        }
    }

    /// Waits until, after event `cursor`, the task is settled (terminal or interrupted).
    pub async fn wait_settled(&self, mut cursor: usize) -> Snapshot {
        loop {
            let (events, closed) = self.next_events(cursor).await;
            cursor += events.len();
            let hit = events.iter().any(|e| match &**e {
                StreamResponse::StatusUpdate(s) => settled(&s.status.state),
                StreamResponse::Message(_) => true,
                _ => false,
            });
            if hit || closed {
                return self.snapshot();
            }
        }
    }

    /// Waits until the task has ended and its last event is published (its seal is then durable).
    pub async fn wait_closed(&self) {
        let mut cursor = 0;
        loop {
            let (events, closed) = self.next_events(cursor).await;
            cursor += events.len();
            if closed {
                return;
            }
        }
    }

    /// Has the task reached a terminal state?
    pub fn is_ended(&self) -> bool {
        self.lock().task.status.state.is_terminal()
    }
}

/// A task's events from a cursor on, as a stream; ends when the buffer is closed, or (with
/// `stop_when_settled`) at the first terminal or interrupted status.
pub fn follow(
    handle: Arc<TaskHandle>,
    from: usize,
    stop_when_settled: bool,
) -> impl futures_util::Stream<Item = (usize, Arc<StreamResponse>)> + Send {
    futures_util::stream::unfold(
        (handle, from, VecDeque::new(), false),
        move |(h, mut cursor, mut queue, mut done)| async move {
            loop {
                if let Some(ev) = queue.pop_front() {
                    cursor += 1;
                    let ev: Arc<StreamResponse> = ev;
                    if stop_when_settled {
                        let end = match &*ev {
                            StreamResponse::StatusUpdate(s) => settled(&s.status.state),
                            StreamResponse::Message(_) => true,
                            _ => false,
                        };
                        if end {
                            queue.clear();
                            done = true;
                        }
                    }
                    return Some(((cursor, ev), (h, cursor, queue, done)));
                }
                if done {
                    return None;
                }
                let (events, closed) = h.next_events(cursor).await;
                queue.extend(events);
                if queue.is_empty() && closed {
                    return None;
                }
                done = closed && !stop_when_settled && queue.is_empty();
            }
        },
    )
}
