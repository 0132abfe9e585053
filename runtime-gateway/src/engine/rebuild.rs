//! A task as the ledger remembers it: rebuilt from its run's entries and the payloads they name,
//! so a task answers GetTask, ListTasks, SubscribeToTask and SSE replay after any restart, on any
//! gateway of the log.
//!
//! The rebuilt events are the ones the task published live, in the same order, because they come
//! from the same mapping ([`map_update`]) applied to what each entry records: `task.accepted` is
//! the task with its input message, each `task.status`, `skill.progress` and `artifact.added` one
//! event, the terminal entry the final status. Two things cannot be rebuilt and are said so:
//! artifact chunks before an artifact's last are one event (the whole artifact, as recorded), and
//! a payload that was erased or is missing becomes a part that names the erasure or the hash.

use std::collections::HashMap;

use a2a::{Artifact, Message, Part, Role, StreamResponse, Task, TaskState, TaskStatus};
use chrono::{DateTime, Utc};
use ledger_core::{Entry, Event, Protocol, RunStatus};
use serde_json::{Value, json};

use crate::engine::updates::{Step, TaskIds, agent_message, data_message, input_message_id, map_update, status_event};
use crate::engine::upstream::{McpAnswer, Update};
use crate::ledger::Payload;

/// A task rebuilt from the ledger.
#[derive(Clone, Debug)]
pub struct Rebuilt {
    /// The task, as its last event left it.
    pub task: Task,
    /// Its events, in the order they were published.
    pub events: Vec<StreamResponse>,
    /// The caller `task.accepted` names.
    pub owner: String,
    /// The skill.
    pub skill: String,
    /// The surface it came in over.
    pub protocol: Protocol,
    /// The run it was started for, if any.
    pub parent: Option<String>,
    /// The grant its last entry ran under.
    pub grant: Option<String>,
    /// The result, for a completed run that returned one.
    pub result: Option<Value>,
    /// An MCP upstream's answer, as its outcome payload keeps it.
    pub mcp: Option<McpAnswer>,
    /// The error of a failed or rejected run.
    pub error: Option<String>,
    /// A direct-message answer.
    pub reply: Option<Message>,
    /// The terminal entry is recorded.
    pub ended: bool,
    /// A seal covers the run.
    pub sealed: bool,
    /// The seq the run's next entry gets.
    pub next_seq: u64,
}

/// Why a run cannot be rebuilt as a task.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RebuildError {
    /// The run has no entry.
    #[error("the ledger has no entry of run {0:?}")]
    Unknown(String),
    /// The run is not a task (an identity or erasure run), or its entries are not in seq order.
    #[error("run {0:?} is not a task run: {1}")]
    NotATask(String, String),
}

/// The hashes of the payloads a rebuild of `entries` reads.
pub fn wanted(entries: &[Entry]) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for e in entries {
        if let Event::TaskAccepted { input_hash, .. } = &e.event {
            out.push(*input_hash);
        }
        match (&e.event, e.payload) {
            (Event::ArtifactAdded { hash, .. }, None) => out.push(*hash),
            (_, Some(p)) => out.push(p),
            _ => {}
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn time(ts: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ts)
}

/// What stands in for bytes the ledger no longer holds.
fn absent_note(what: &str, hash: &[u8; 32], p: Option<&Payload>) -> (String, Value) {
    match p {
        Some(Payload::Erased { index }) => (
            format!("({what} erased: see the payload.erased entry at index {index})"),
            json!({ "erased": { "hash": hex::encode(hash), "index": index } }),
        ),
        _ => (
            format!("({what} not held by the ledger: blake3 {})", hex::encode(hash)),
            json!({ "missing": { "hash": hex::encode(hash) } }),
        ),
    }
}

fn present<'a>(payloads: &'a HashMap<[u8; 32], Payload>, hash: &[u8; 32]) -> Option<&'a [u8]> {
    match payloads.get(hash) {
        Some(Payload::Present(b)) => Some(b),
        _ => None,
    }
}

fn noted_message(role: Role, text: String, note: Value) -> Message {
    let mut m = Message::new(role, vec![Part::text(text)]);
    m.metadata = Some(HashMap::from([("a2aLedger".to_string(), note)]));
    m
}

/// The input message of a run: the A2A message as received, or the JSON input of the other
/// surfaces as the data message they made of it.
fn input_message(run: &str, protocol: Protocol, hash: &[u8; 32], payloads: &HashMap<[u8; 32], Payload>) -> Message {
    let parsed = present(payloads, hash).and_then(|b| match protocol {
        Protocol::A2a => serde_json::from_slice::<Message>(b).ok(),
        _ => serde_json::from_slice::<Value>(b).ok().map(|v| data_message(&v)),
    });
    let parsed = parsed.map(|mut m| {
        if protocol != Protocol::A2a {
            m.message_id = input_message_id(run);
        }
        m
    });
    parsed.unwrap_or_else(|| {
        let (text, note) = absent_note("input", hash, payloads.get(hash));
        noted_message(Role::User, text, note)
    })
}

fn artifact_of(
    name: &str,
    hash: &[u8; 32],
    payload: Option<[u8; 32]>,
    payloads: &HashMap<[u8; 32], Payload>,
) -> Artifact {
    if let Some(a) =
        payload.and_then(|p| present(payloads, &p)).and_then(|b| serde_json::from_slice::<Artifact>(b).ok())
    {
        return a;
    }
    let parts = present(payloads, hash).and_then(|b| serde_json::from_slice::<Vec<Part>>(b).ok());
    let (parts, metadata) = match parts {
        Some(p) => (p, None),
        None => {
            let (text, note) = absent_note("artifact", hash, payloads.get(hash));
            (vec![Part::text(text)], Some(HashMap::from([("a2aLedger".to_string(), note)])))
        }
    };
    Artifact {
        artifact_id: name.to_string(),
        name: Some(name.to_string()),
        description: None,
        parts,
        metadata,
        extensions: None,
    }
}

fn state_of(name: &str) -> TaskState {
    serde_json::from_value(json!(format!("TASK_STATE_{}", name.to_ascii_uppercase()))).unwrap_or(TaskState::Unspecified)
}

/// Rebuilds run `run` from its entries (in seq order) and the payloads they name (see
/// [`wanted`]); `receipt_url` is the run's receipt link, as the live task carried it.
pub fn rebuild(
    run: &str,
    entries: &[Entry],
    payloads: &HashMap<[u8; 32], Payload>,
    receipt_url: &str,
) -> Result<Rebuilt, RebuildError> {
    let not_task = |why: String| RebuildError::NotATask(run.to_string(), why);
    let first = entries.first().ok_or_else(|| RebuildError::Unknown(run.to_string()))?;
    let Event::TaskAccepted { protocol, skill, caller, input_hash, context, parent } = &first.event else {
        return Err(not_task(format!("its first entry is {}", first.event.kind().as_str())));
    };
    let context = context.clone().unwrap_or_else(|| run.to_string());
    let ids = TaskIds { task: run, context: &context };
    let receipt = HashMap::from([("receipt".to_string(), json!(receipt_url))]);
    let mut message = input_message(run, *protocol, input_hash, payloads);
    message.task_id = Some(run.to_string());
    message.context_id = Some(context.clone());
    let task = Task {
        id: run.to_string(),
        context_id: context.clone(),
        status: TaskStatus { state: TaskState::Submitted, message: None, timestamp: Some(time(first.ts)) },
        artifacts: None,
        history: Some(vec![message]),
        metadata: Some(receipt.clone()),
    };
    let mut out = Rebuilt {
        task: task.clone(),
        events: vec![StreamResponse::Task(task)],
        owner: caller.clone(),
        skill: skill.clone(),
        protocol: *protocol,
        parent: parent.as_ref().map(|p| p.as_str().to_string()),
        grant: first.grant.clone(),
        result: None,
        mcp: None,
        error: None,
        reply: None,
        ended: false,
        sealed: false,
        next_seq: 1,
    };
    for (i, e) in entries.iter().enumerate().skip(1) {
        if e.seq != i as u64 || e.run.as_str() != run {
            return Err(not_task(format!("entry {i} is ({:?}, {})", e.run.as_str(), e.seq)));
        }
        out.next_seq = e.seq + 1;
        if e.grant.is_some() {
            out.grant = e.grant.clone();
        }
        let now = time(e.ts);
        let update = match &e.event {
            Event::TaskStatus { state, message } => {
                // A status that names a payload: the caller's follow-up message (role user, into
                // the history) or the agent's status message too long to inline (role agent).
                let full = e
                    .payload
                    .and_then(|p| present(payloads, &p))
                    .and_then(|b| serde_json::from_slice::<Message>(b).ok());
                match full {
                    Some(mut m) if m.role == Role::User => {
                        m.task_id = Some(run.to_string());
                        m.context_id = Some(context.clone());
                        out.task.history.get_or_insert_with(Vec::new).push(m);
                        Some(Update::Working(None))
                    }
                    full => {
                        let text = full.map(|m| crate::engine::upstream::message_text(&m)).or_else(|| message.clone());
                        match state.as_str() {
                            "working" => Some(Update::Working(text)),
                            "input_required" => {
                                // An MCP server's requests, kept as the payload, are offered again.
                                let requests = e
                                    .payload
                                    .and_then(|p| present(payloads, &p))
                                    .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                                    .filter(|v| v.get("inputRequests").is_some());
                                Some(Update::InputRequired { prompt: text.unwrap_or_default(), requests })
                            }
                            "auth_required" => Some(Update::AuthRequired(text.unwrap_or_default())),
                            other => {
                                apply(&mut out, status_event(ids, state_of(other), text, now));
                                None
                            }
                        }
                    }
                }
            }
            Event::SkillProgress { stage, pct, message } => {
                Some(Update::Progress { stage: stage.clone(), pct: *pct, message: message.clone(), raw: None })
            }
            Event::ArtifactAdded { name, hash, .. } => Some(Update::Artifact {
                artifact: artifact_of(name, hash, e.payload, payloads),
                append: false,
                last_chunk: true,
            }),
            Event::TaskEnded { status, error, .. } => {
                out.ended = true;
                out.error = error.clone();
                let outcome =
                    e.payload.and_then(|p| present(payloads, &p)).and_then(|b| serde_json::from_slice::<Value>(b).ok());
                let text = outcome.as_ref().and_then(|o| o["message"].as_str()).map(str::to_string);
                out.result = outcome.as_ref().map(|o| o["result"].clone()).filter(|r| !r.is_null());
                out.mcp = outcome.as_ref().and_then(|o| o.get("mcp")).and_then(McpAnswer::from_json);
                let direct = outcome.as_ref().and_then(|o| o["direct"].as_bool()).unwrap_or(false);
                let state = match status {
                    RunStatus::Completed => TaskState::Completed,
                    RunStatus::Failed => TaskState::Failed,
                    RunStatus::Canceled => TaskState::Canceled,
                    RunStatus::Rejected => TaskState::Rejected,
                };
                let text = text.or_else(|| match status {
                    RunStatus::Canceled => Some("canceled by request".into()),
                    _ => error.clone(),
                });
                if direct {
                    let mut m = agent_message(ids, text.clone().unwrap_or_default());
                    m.metadata = Some(receipt.clone());
                    out.reply = Some(m);
                }
                let mut ev = status_event(ids, state, text, now);
                if let StreamResponse::StatusUpdate(s) = &mut ev {
                    s.metadata = Some(receipt.clone());
                }
                apply(&mut out, ev);
                None
            }
            Event::ReceiptSealed { .. } => {
                out.sealed = true;
                None
            }
            _ => None,
        };
        if let Some(u) = update
            && let Step::Publish { event, .. } = map_update(ids, u, None, now)
        {
            apply(&mut out, event);
        }
    }
    Ok(out)
}

/// Applies an event to the task as the live buffer does ([`crate::engine::buffer`]): a status
/// replaces the status (an interrupted state's prompt moving into the history), an artifact is
/// added or replaces the one with its id.
fn apply(out: &mut Rebuilt, ev: StreamResponse) {
    let t = &mut out.task;
    match &ev {
        StreamResponse::StatusUpdate(s) => {
            if let Some(m) = &t.status.message
                && matches!(t.status.state, TaskState::InputRequired | TaskState::AuthRequired)
            {
                t.history.get_or_insert_with(Vec::new).push(m.clone());
            }
            t.status = s.status.clone();
        }
        StreamResponse::ArtifactUpdate(a) => {
            let list = t.artifacts.get_or_insert_with(Vec::new);
            match list.iter_mut().find(|x| x.artifact_id == a.artifact.artifact_id) {
                Some(existing) => *existing = a.artifact.clone(),
                None => list.push(a.artifact.clone()),
            }
        }
        StreamResponse::Task(_) | StreamResponse::Message(_) => {}
    }
    out.events.push(ev);
}

#[cfg(test)]
mod tests {
    use ledger_core::RunId;

    use super::*;

    fn entry(seq: u64, event: Event, payload: Option<[u8; 32]>) -> Entry {
        Entry {
            ts: 1_700_000_000_000_000_000 + seq as i64,
            run: RunId::new("t-1").unwrap(),
            seq,
            actor: "gateway".into(),
            event,
            grant: None,
            payload,
        }
    }

    fn accepted(input_hash: [u8; 32]) -> Event {
        Event::TaskAccepted {
            protocol: Protocol::Https,
            skill: "echo".into(),
            caller: "alice".into(),
            input_hash,
            context: Some("ctx".into()),
            parent: Some(RunId::new("p-1").unwrap()),
        }
    }

    #[test]
    fn erased_and_missing_payloads_are_named_not_invented() {
        let (input, art) = ([1; 32], [2; 32]);
        let entries = vec![
            entry(0, accepted(input), None),
            entry(1, Event::TaskStatus { state: "working".into(), message: None }, None),
            entry(
                2,
                Event::ArtifactAdded { name: "out".into(), media_type: "text/plain".into(), bytes: 3, hash: art },
                None,
            ),
        ];
        assert_eq!(wanted(&entries), vec![input, art]);
        let payloads = HashMap::from([(input, Payload::Erased { index: 42 }), (art, Payload::Missing)]);
        let r = rebuild("t-1", &entries, &payloads, "http://gw/runs/t-1/receipt").unwrap();
        assert_eq!((r.owner.as_str(), r.parent.as_deref(), r.ended), ("alice", Some("p-1"), false));
        assert_eq!(r.task.context_id, "ctx");
        let input = serde_json::to_string(&r.task.history.as_ref().unwrap()[0]).unwrap();
        assert!(input.contains("index 42") && input.contains("erased"), "{input}");
        let a = &r.task.artifacts.as_ref().unwrap()[0];
        assert_eq!(a.name.as_deref(), Some("out"));
        assert!(serde_json::to_string(a).unwrap().contains(&hex::encode(art)), "{a:?}");
        assert_eq!(r.events.len(), 3, "task, working, artifact");
    }

    #[test]
    fn the_outcome_payload_gives_the_final_message_and_result() {
        let input = br#"{"x":1}"#;
        let ih = *blake3::hash(input).as_bytes();
        let outcome = br#"{"direct":false,"message":"done!","result":{"y":2}}"#;
        let oh = *blake3::hash(outcome).as_bytes();
        let end = Event::TaskEnded { status: RunStatus::Completed, elapsed_ms: 1, artifacts: vec![], error: None };
        let entries = vec![entry(0, accepted(ih), None), entry(1, end, Some(oh))];
        let payloads = HashMap::from([
            (ih, Payload::Present(bytes::Bytes::from_static(input))),
            (oh, Payload::Present(bytes::Bytes::from_static(outcome))),
        ]);
        let r = rebuild("t-1", &entries, &payloads, "u").unwrap();
        assert!(r.ended);
        assert_eq!(r.result, Some(json!({ "y": 2 })));
        assert_eq!(r.task.status.state, TaskState::Completed);
        let text = crate::engine::upstream::message_text(r.task.status.message.as_ref().unwrap());
        assert_eq!(text, "done!");
        let first = &r.task.history.as_ref().unwrap()[0];
        assert_eq!(first.parts[0].content, a2a::PartContent::Data(json!({ "x": 1 })));
        assert_eq!(r.mcp, None);
    }

    #[test]
    fn the_outcome_payload_gives_an_mcp_upstreams_answer_back() {
        let input = br#"{}"#;
        let ih = *blake3::hash(input).as_bytes();
        let outcome =
            br#"{"direct":false,"mcp":{"error":{"code":-32021,"message":"m"}},"message":"-32021: m","result":null}"#;
        let oh = *blake3::hash(outcome).as_bytes();
        let end = Event::TaskEnded {
            status: RunStatus::Failed,
            elapsed_ms: 1,
            artifacts: vec![],
            error: Some("-32021: m".into()),
        };
        let entries = vec![entry(0, accepted(ih), None), entry(1, end, Some(oh))];
        let payloads = HashMap::from([
            (ih, Payload::Present(bytes::Bytes::from_static(input))),
            (oh, Payload::Present(bytes::Bytes::from_static(outcome))),
        ]);
        let r = rebuild("t-1", &entries, &payloads, "u").unwrap();
        assert_eq!(r.mcp, Some(McpAnswer::Error { code: -32021, message: "m".into(), data: None }));
        assert_eq!(r.error.as_deref(), Some("-32021: m"));
    }

    #[test]
    fn an_mcp_servers_requests_are_offered_again_from_their_payload() {
        let input = br#"{}"#;
        let ih = *blake3::hash(input).as_bytes();
        let asked = br#"{"inputRequests":{"q":{"method":"roots/list"}},"requestState":"s"}"#;
        let ah = *blake3::hash(asked).as_bytes();
        let waiting = Event::TaskStatus { state: "input_required".into(), message: Some("roots?".into()) };
        let entries = vec![entry(0, accepted(ih), None), entry(1, waiting, Some(ah))];
        let mut payloads = HashMap::from([
            (ih, Payload::Present(bytes::Bytes::from_static(input))),
            (ah, Payload::Present(bytes::Bytes::from_static(asked))),
        ]);
        let r = rebuild("t-1", &entries, &payloads, "u").unwrap();
        assert_eq!(r.task.status.state, TaskState::InputRequired);
        let m = r.task.status.message.unwrap();
        assert_eq!(crate::engine::upstream::message_text(&m), "roots?");
        assert_eq!(
            m.parts[1].content,
            a2a::PartContent::Data(json!({ "mcp": { "inputRequests": { "q": { "method": "roots/list" } } } })),
            "the requests as the live task offered them, without the upstream's state"
        );
        // Erased: the words stay, nothing structured is invented.
        payloads.insert(ah, Payload::Erased { index: 9 });
        let m = rebuild("t-1", &entries, &payloads, "u").unwrap().task.status.message.unwrap();
        assert_eq!(m.parts.len(), 1);
        assert_eq!(crate::engine::upstream::message_text(&m), "roots?");
    }

    #[test]
    fn a_run_that_is_not_a_task_is_refused() {
        let e = entry(0, Event::TaskStatus { state: "working".into(), message: None }, None);
        assert!(matches!(rebuild("t-1", &[e], &HashMap::new(), "u"), Err(RebuildError::NotATask(..))));
        assert!(matches!(rebuild("t-1", &[], &HashMap::new(), "u"), Err(RebuildError::Unknown(_))));
    }
}
