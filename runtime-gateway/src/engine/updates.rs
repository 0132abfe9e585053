//! What an upstream's [`Update`] becomes: the ledger entry to record (if any) and the A2A event to
//! publish, as a pure function of the update, the task's ids, the artifact published so far and
//! the time. The task driver ([`crate::engine::tasks`]) records the entry first, then publishes
//! the event; nothing here touches the ledger or the buffer.

use std::collections::HashMap;

use a2a::{
    Artifact, Message, Part, Role, StreamResponse, TaskArtifactUpdateEvent, TaskState, TaskStatus,
    TaskStatusUpdateEvent,
};
use chrono::{DateTime, Utc};
use ledger_core::{Event, RunStatus};
use serde_json::{Value, json};

use crate::base::jcs::jcs;
use crate::engine::upstream::{McpAnswer, Outcome, Update};

/// The task an event belongs to.
#[derive(Clone, Copy, Debug)]
pub struct TaskIds<'a> {
    /// The task (= run) id.
    pub task: &'a str,
    /// Its context id.
    pub context: &'a str,
}

/// What one update becomes.
// One at a time, consumed at once: boxing the event would only add an allocation per update.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Record `entry` (when there is one), then publish `event`.
    Publish {
        /// The transition to record; `None` for an artifact chunk before its last (the whole
        /// artifact is recorded at its last chunk).
        entry: Option<Event>,
        /// Submit at once, with what is held back, instead of lingering: the caller is about to
        /// be told the task waits for it.
        flush: bool,
        /// The A2A event.
        event: StreamResponse,
        /// Payloads to store (BLAKE3, bytes) before the entry is submitted: an artifact's
        /// canonical parts (its `hash`) and the artifact as served (the entry's `payload`), or
        /// a status message too long to inline.
        keep: Vec<([u8; 32], Vec<u8>)>,
        /// The entry's `payload` field: the BLAKE3 of one of `keep`.
        payload: Option<[u8; 32]>,
    },
    /// The upstream's own task, to keep (no entry, no event).
    Upstream {
        /// Its id.
        task: String,
        /// Its context id.
        context: String,
    },
    /// The call ended.
    Done(Outcome),
}

/// A message of the agent in a task.
pub fn agent_message(ids: TaskIds<'_>, text: String) -> Message {
    let mut m = Message::new(Role::Agent, vec![Part::text(text)]);
    m.task_id = Some(ids.task.to_string());
    m.context_id = Some(ids.context.to_string());
    m
}

/// A user message with one data part, for surfaces that take plain JSON input.
pub fn data_message(input: &Value) -> Message {
    Message::new(Role::User, vec![Part::data(input.clone()).with_media_type("application/json")])
}

/// The message id of the data message a surface without messages (`/invoke`, the platform REST,
/// MCP) makes of a run's input: fixed by the run, so a task rebuilt from the ledger shows the
/// same message.
pub fn input_message_id(run: &str) -> String {
    format!("{run}-input")
}

/// The payload a run's terminal entry names (docs/FORMATS.md §9): the final message, the result
/// and whether the agent answered with a direct message, and an MCP upstream's answer as MCP
/// callers get it (`mcp`, only when there is one), as canonical JSON; `None` when there is
/// nothing to keep.
pub fn outcome_payload(e: &Ending) -> Option<Vec<u8>> {
    if e.text.is_none() && e.result.is_none() && e.mcp.is_none() {
        return None;
    }
    let mut v = json!({ "direct": e.direct, "message": e.text, "result": e.result });
    if let Some(m) = &e.mcp {
        v["mcp"] = m.to_json();
    }
    Some(jcs(&v).into_bytes())
}

/// A status event of the task.
pub fn status_event(ids: TaskIds<'_>, state: TaskState, text: Option<String>, now: DateTime<Utc>) -> StreamResponse {
    StreamResponse::StatusUpdate(TaskStatusUpdateEvent {
        task_id: ids.task.to_string(),
        context_id: ids.context.to_string(),
        status: TaskStatus { state, message: text.map(|t| agent_message(ids, t)), timestamp: Some(now) },
        metadata: None,
    })
}

/// BLAKE3 and length of an artifact's content, as `artifact.added` records them: over the
/// canonical JSON (RFC 8785) of its `parts` array as A2A serves it (docs/FORMATS.md §9), so
/// anyone holding the artifact recomputes them whatever their JSON library's key order.
pub fn artifact_digest(a: &Artifact) -> (u64, [u8; 32]) {
    let bytes = jcs(&serde_json::to_value(&a.parts).expect("parts serialise")).into_bytes();
    (bytes.len() as u64, *blake3::hash(&bytes).as_bytes())
}

/// The media type `artifact.added` records: the first part's, or what its content is.
fn media_type(a: &Artifact) -> String {
    a.parts.first().and_then(|p| p.media_type.clone()).unwrap_or_else(|| match a.parts.first().map(|p| &p.content) {
        Some(a2a::PartContent::Text(_)) => "text/plain".into(),
        Some(a2a::PartContent::Data(_)) => "application/json".into(),
        _ => "application/octet-stream".into(),
    })
}

/// Longest `message` of a log entry, in bytes.
pub const LOG_MESSAGE_MAX: usize = 1024;

/// A log message's data as its entry records it: the compact JSON text cut to at most
/// [`LOG_MESSAGE_MAX`] bytes (at a character boundary), and the whole compact JSON, whose BLAKE3
/// is the entry's payload.
pub fn log_message(data: &Value) -> (String, Vec<u8>) {
    let whole = serde_json::to_string(data).expect("JSON serialises");
    let mut end = whole.len().min(LOG_MESSAGE_MAX);
    while !whole.is_char_boundary(end) {
        end -= 1;
    }
    (whole[..end].to_string(), whole.into_bytes())
}

/// Maps `update` of task `ids`. `prior` is the task's artifact with the update's artifact id as
/// published so far (for a chunk that appends to it); `now` stamps status events.
pub fn map_update(ids: TaskIds<'_>, update: Update, prior: Option<&Artifact>, now: DateTime<Utc>) -> Step {
    let publish = |entry, flush, event| Step::Publish { entry, flush, event, keep: Vec::new(), payload: None };
    // A status whose message is too long to inline names the whole message as a payload.
    let status = |state: &str, text: Option<String>, flush: bool, event| match text.as_deref().map(|t| inlined(ids, t))
    {
        Some(Some((short, hash, bytes))) => Step::Publish {
            entry: Some(Event::TaskStatus { state: state.into(), message: Some(short) }),
            flush,
            event,
            keep: vec![(hash, bytes)],
            payload: Some(hash),
        },
        _ => publish(Some(Event::TaskStatus { state: state.into(), message: text }), flush, event),
    };
    match update {
        Update::Done(o) => Step::Done(o),
        Update::UpstreamTask { task, context } => Step::Upstream { task, context },
        Update::Working(text) => {
            status("working", text.clone(), false, status_event(ids, TaskState::Working, text, now))
        }
        Update::Progress { stage, pct, message, raw } => {
            let pct = pct.min(100);
            let entry = Event::SkillProgress { stage: stage.clone(), pct, message: message.clone() };
            let mut ev = status_event(ids, TaskState::Working, Some(format!("{stage}: {message} ({pct}%)")), now);
            if let StreamResponse::StatusUpdate(s) = &mut ev {
                let mut progress = json!({ "stage": stage, "pct": pct, "message": message });
                // The upstream's own numbers, for MCP callers (only when it gave them).
                if let Some((p, total)) = raw {
                    progress["raw"] = match total {
                        Some(t) => json!({ "progress": p, "total": t }),
                        None => json!({ "progress": p }),
                    };
                }
                s.metadata = Some(HashMap::from([("progress".to_string(), progress)]));
            }
            publish(Some(entry), false, ev)
        }
        Update::Log { level, logger, data, pct } => {
            let (message, bytes) = log_message(&data);
            let hash = *blake3::hash(&bytes).as_bytes();
            let stage = format!("log.{level}");
            let entry = Event::SkillProgress { stage: stage.clone(), pct: pct.min(100), message: message.clone() };
            let mut ev = status_event(ids, TaskState::Working, Some(format!("{stage}: {message}")), now);
            if let StreamResponse::StatusUpdate(s) = &mut ev {
                let log = json!({ "level": level, "logger": logger, "data": data });
                s.metadata = Some(HashMap::from([("log".to_string(), log)]));
            }
            Step::Publish {
                entry: Some(entry),
                flush: false,
                event: ev,
                keep: vec![(hash, bytes)],
                payload: Some(hash),
            }
        }
        Update::InputRequired { prompt, requests: None } => status(
            "input_required",
            Some(prompt.clone()),
            true,
            status_event(ids, TaskState::InputRequired, Some(prompt), now),
        ),
        Update::InputRequired { prompt, requests: Some(requests) } => {
            // What an MCP server asked, as it asked it, is kept and named by the entry's payload,
            // so a receipt proves what the caller was asked; the caller gets the requests beside
            // the words, to answer them.
            let bytes = jcs(&requests).into_bytes();
            let hash = *blake3::hash(&bytes).as_bytes();
            let mut event = status_event(ids, TaskState::InputRequired, Some(prompt.clone()), now);
            if let StreamResponse::StatusUpdate(s) = &mut event
                && let Some(m) = &mut s.status.message
            {
                let asked =
                    json!({ "mcp": { "inputRequests": requests.get("inputRequests").cloned().unwrap_or(json!({})) } });
                m.parts.push(Part::data(asked).with_media_type("application/json"));
            }
            let entry = Event::TaskStatus { state: "input_required".into(), message: Some(shortened(&prompt)) };
            Step::Publish { entry: Some(entry), flush: true, event, keep: vec![(hash, bytes)], payload: Some(hash) }
        }
        Update::AuthRequired(prompt) => status(
            "auth_required",
            Some(prompt.clone()),
            true,
            status_event(ids, TaskState::AuthRequired, Some(prompt), now),
        ),
        Update::Artifact { artifact, append, last_chunk } => {
            // The whole artifact (chunks merged) is recorded at its last chunk, with its canonical
            // parts (`hash`) and the artifact as served (`payload`) kept.
            let mut keep = Vec::new();
            let mut payload = None;
            let entry = last_chunk.then(|| {
                let merged = match prior {
                    Some(p) if append => {
                        let mut p = p.clone();
                        p.parts.extend(artifact.parts.iter().cloned());
                        p
                    }
                    _ => artifact.clone(),
                };
                let name = merged.name.clone().unwrap_or_else(|| merged.artifact_id.clone());
                let parts = jcs(&serde_json::to_value(&merged.parts).expect("parts serialise")).into_bytes();
                let hash = *blake3::hash(&parts).as_bytes();
                let whole = jcs(&serde_json::to_value(&merged).expect("artifact serialises")).into_bytes();
                let whole_hash = *blake3::hash(&whole).as_bytes();
                let bytes = parts.len() as u64;
                keep = vec![(hash, parts), (whole_hash, whole)];
                payload = Some(whole_hash);
                Event::ArtifactAdded { name, media_type: media_type(&merged), bytes, hash }
            });
            let event = StreamResponse::ArtifactUpdate(TaskArtifactUpdateEvent {
                task_id: ids.task.to_string(),
                context_id: ids.context.to_string(),
                artifact,
                append: append.then_some(true),
                last_chunk: (append || !last_chunk).then_some(last_chunk),
                metadata: None,
            });
            Step::Publish { entry, flush: false, event, keep, payload }
        }
    }
}

/// Longest status message recorded inline; a longer one is kept as a payload.
pub const INLINE_MESSAGE: usize = 4096;

/// A status message as an entry records it inline: whole up to [`INLINE_MESSAGE`] bytes, else
/// its start (cut at a character boundary) with how long the whole is.
fn shortened(text: &str) -> String {
    if text.len() <= INLINE_MESSAGE {
        return text.to_string();
    }
    let mut cut = INLINE_MESSAGE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..cut], text.len())
}

/// For a status message longer than [`INLINE_MESSAGE`]: what the entry records inline (its start,
/// cut at a character boundary, with how long the whole is), and the whole as an agent message
/// (JSON, its BLAKE3 and bytes) to keep as the entry's payload.
fn inlined(ids: TaskIds<'_>, text: &str) -> Option<(String, [u8; 32], Vec<u8>)> {
    if text.len() <= INLINE_MESSAGE {
        return None;
    }
    let mut cut = INLINE_MESSAGE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let short = format!("{}… ({} bytes in all; the whole message is the entry's payload)", &text[..cut], text.len());
    let bytes = serde_json::to_vec(&agent_message(ids, text.to_string())).expect("message serialises");
    Some((short, *blake3::hash(&bytes).as_bytes(), bytes))
}

/// How a run ends, from its outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Ending {
    /// The run's status in its seal.
    pub run_status: RunStatus,
    /// The task's final state.
    pub state: TaskState,
    /// The final status message.
    pub text: Option<String>,
    /// The result (for `/invoke`), if any.
    pub result: Option<Value>,
    /// The error, for a failed or rejected run.
    pub error: Option<String>,
    /// The agent answered with a direct message, not a task.
    pub direct: bool,
    /// An MCP upstream's answer, for MCP callers.
    pub mcp: Option<McpAnswer>,
}

/// The ending of a run that ended with `outcome`.
pub fn ending(outcome: Outcome) -> Ending {
    let direct = matches!(outcome, Outcome::Message(_));
    let mut mcp = None;
    let (run_status, state, text, result, error) = match outcome {
        Outcome::Completed { result, message, mcp: answer } => {
            mcp = answer.map(McpAnswer::Result);
            (RunStatus::Completed, TaskState::Completed, message, result, None)
        }
        Outcome::Message(text) => (RunStatus::Completed, TaskState::Completed, Some(text), None, None),
        Outcome::Failed(e) => (RunStatus::Failed, TaskState::Failed, Some(e.clone()), None, Some(e)),
        Outcome::McpFailed { error, answer } => {
            mcp = Some(answer);
            (RunStatus::Failed, TaskState::Failed, Some(error.clone()), None, Some(error))
        }
        Outcome::Canceled => (RunStatus::Canceled, TaskState::Canceled, Some("canceled by request".into()), None, None),
        Outcome::Rejected(e) => (RunStatus::Rejected, TaskState::Rejected, Some(e.clone()), None, Some(e)),
    };
    Ending { run_status, state, text, result, error, direct, mcp }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: TaskIds<'static> = TaskIds { task: "t-1", context: "c-1" };

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn publish(step: Step) -> (Option<Event>, bool, StreamResponse) {
        match step {
            Step::Publish { entry, flush, event, .. } => (entry, flush, event),
            other => panic!("not a publication: {other:?}"),
        }
    }

    fn status(ev: &StreamResponse) -> &TaskStatusUpdateEvent {
        match ev {
            StreamResponse::StatusUpdate(s) => s,
            other => panic!("not a status: {other:?}"),
        }
    }

    fn text_of(s: &TaskStatusUpdateEvent) -> Option<String> {
        s.status.message.as_ref().map(crate::engine::upstream::message_text)
    }

    #[test]
    fn a_log_message_is_a_progress_entry_at_the_runs_pct_with_its_whole_data_kept() {
        let data = json!({ "step": "é".repeat(1000) });
        let u = Update::Log { level: "info".into(), logger: Some("tool".into()), data: data.clone(), pct: 40 };
        let Step::Publish { entry, keep, payload, event, .. } = map_update(IDS, u, None, now()) else { panic!() };
        let Some(Event::SkillProgress { stage, pct, message }) = entry else { panic!("{entry:?}") };
        assert_eq!((stage.as_str(), pct), ("log.info", 40));
        let whole = serde_json::to_vec(&data).unwrap();
        assert!(message.len() <= LOG_MESSAGE_MAX && whole.starts_with(message.as_bytes()), "cut at a character");
        assert_eq!(keep, vec![(*blake3::hash(&whole).as_bytes(), whole.clone())]);
        assert_eq!(payload, Some(*blake3::hash(&whole).as_bytes()));
        let meta = status(&event).metadata.clone().unwrap();
        assert_eq!(meta["log"], json!({ "level": "info", "logger": "tool", "data": data }));
        assert_eq!(log_message(&json!("short")), ("\"short\"".to_string(), b"\"short\"".to_vec()));
    }

    #[test]
    fn a_status_message_too_long_to_inline_is_kept_whole_as_the_payload() {
        let long = "é".repeat(3000); // 6000 bytes, a cut inside a character would be wrong
        let Step::Publish { entry, keep, payload, event, .. } =
            map_update(IDS, Update::InputRequired { prompt: long.clone(), requests: None }, None, now())
        else {
            panic!("not a publication")
        };
        let Some(Event::TaskStatus { message: Some(inline), .. }) = entry else { panic!("{entry:?}") };
        assert!(inline.len() < INLINE_MESSAGE + 100 && inline.contains("6000 bytes in all"), "{inline}");
        let (hash, bytes) = &keep[0];
        assert_eq!(payload, Some(*hash));
        assert_eq!(*blake3::hash(bytes).as_bytes(), *hash);
        let kept: Message = serde_json::from_slice(bytes).unwrap();
        assert_eq!(crate::engine::upstream::message_text(&kept), long);
        assert_eq!(text_of(status(&event)).as_deref(), Some(long.as_str()), "the caller sees the whole message");
        // A short one is inline, with nothing kept.
        let Step::Publish { keep, payload, .. } = map_update(IDS, Update::Working(Some("short".into())), None, now())
        else {
            panic!("not a publication")
        };
        assert!(keep.is_empty() && payload.is_none());
    }

    #[test]
    fn an_artifact_keeps_its_canonical_parts_and_itself() {
        let a = Artifact {
            artifact_id: "a-1".into(),
            name: Some("out.txt".into()),
            description: None,
            parts: vec![Part::text("hello")],
            metadata: None,
            extensions: None,
        };
        let Step::Publish { entry, keep, payload, .. } =
            map_update(IDS, Update::Artifact { artifact: a.clone(), append: false, last_chunk: true }, None, now())
        else {
            panic!("not a publication")
        };
        let Some(Event::ArtifactAdded { hash, bytes, .. }) = entry else { panic!("{entry:?}") };
        assert_eq!((bytes, hash), artifact_digest(&a), "the recorded digest is the documented one");
        assert_eq!(keep.len(), 2);
        assert_eq!(keep[0].0, hash);
        assert_eq!(payload, Some(keep[1].0));
        let whole: Artifact = serde_json::from_slice(&keep[1].1).unwrap();
        assert_eq!(whole, a);
    }

    #[test]
    fn working_is_a_status_entry_and_a_working_event() {
        let (entry, flush, ev) = publish(map_update(IDS, Update::Working(Some("busy".into())), None, now()));
        assert_eq!(entry, Some(Event::TaskStatus { state: "working".into(), message: Some("busy".into()) }));
        assert!(!flush, "working lingers with what follows");
        let s = status(&ev);
        assert_eq!((s.task_id.as_str(), s.context_id.as_str()), ("t-1", "c-1"));
        assert_eq!((s.status.state.clone(), s.status.timestamp), (TaskState::Working, Some(now())));
        assert_eq!(text_of(s).as_deref(), Some("busy"));
        let m = s.status.message.as_ref().unwrap();
        assert_eq!(
            (m.role.clone(), m.task_id.as_deref(), m.context_id.as_deref()),
            (Role::Agent, Some("t-1"), Some("c-1"))
        );

        let (entry, _, ev) = publish(map_update(IDS, Update::Working(None), None, now()));
        assert_eq!(entry, Some(Event::TaskStatus { state: "working".into(), message: None }));
        assert!(status(&ev).status.message.is_none());
    }

    #[test]
    fn progress_is_clamped_recorded_and_carried_in_metadata() {
        let u = Update::Progress { stage: "fetch".into(), pct: 140, message: "page 3".into(), raw: None };
        let (entry, flush, ev) = publish(map_update(IDS, u, None, now()));
        assert_eq!(entry, Some(Event::SkillProgress { stage: "fetch".into(), pct: 100, message: "page 3".into() }));
        assert!(!flush);
        let s = status(&ev);
        assert_eq!(s.status.state, TaskState::Working);
        assert_eq!(text_of(s).as_deref(), Some("fetch: page 3 (100%)"));
        let meta = s.metadata.as_ref().unwrap();
        assert_eq!(meta["progress"], json!({ "stage": "fetch", "pct": 100, "message": "page 3" }));

        // An upstream's own numbers ride along for MCP callers; the entry records only pct.
        let u = Update::Progress { stage: "t".into(), pct: 0, message: "m".into(), raw: Some((0.0, Some(100.0))) };
        let (entry, _, ev) = publish(map_update(IDS, u, None, now()));
        assert_eq!(entry, Some(Event::SkillProgress { stage: "t".into(), pct: 0, message: "m".into() }));
        let p = &status(&ev).metadata.as_ref().unwrap()["progress"];
        assert_eq!(p["raw"], json!({ "progress": 0.0, "total": 100.0 }));
        let u = Update::Progress { stage: "t".into(), pct: 0, message: "m".into(), raw: Some((7.5, None)) };
        let (_, _, ev) = publish(map_update(IDS, u, None, now()));
        assert_eq!(status(&ev).metadata.as_ref().unwrap()["progress"]["raw"], json!({ "progress": 7.5 }));
    }

    #[test]
    fn waiting_for_the_caller_is_recorded_at_once() {
        for (u, state, name) in [
            (
                Update::InputRequired { prompt: "your name?".into(), requests: None },
                TaskState::InputRequired,
                "input_required",
            ),
            (Update::AuthRequired("sign in".into()), TaskState::AuthRequired, "auth_required"),
        ] {
            let prompt = match &u {
                Update::InputRequired { prompt: p, .. } | Update::AuthRequired(p) => p.clone(),
                _ => unreachable!(),
            };
            let (entry, flush, ev) = publish(map_update(IDS, u, None, now()));
            assert_eq!(entry, Some(Event::TaskStatus { state: name.into(), message: Some(prompt.clone()) }));
            assert!(flush, "{name}: the caller is told at once, so it is submitted at once");
            let s = status(&ev);
            assert_eq!(s.status.state, state);
            assert_eq!(text_of(s), Some(prompt));
        }
    }

    fn artifact(id: &str, name: Option<&str>, parts: Vec<Part>) -> Artifact {
        Artifact {
            artifact_id: id.into(),
            name: name.map(String::from),
            description: None,
            parts,
            metadata: None,
            extensions: None,
        }
    }

    #[test]
    fn a_whole_artifact_is_recorded_with_its_digest() {
        let a = artifact("a-1", Some("report.md"), vec![Part::text("# hi")]);
        let u = Update::Artifact { artifact: a.clone(), append: false, last_chunk: true };
        let (entry, flush, ev) = publish(map_update(IDS, u, None, now()));
        let (bytes, hash) = artifact_digest(&a);
        assert_eq!(
            entry,
            Some(Event::ArtifactAdded { name: "report.md".into(), media_type: "text/plain".into(), bytes, hash })
        );
        assert!(!flush);
        let StreamResponse::ArtifactUpdate(e) = ev else { panic!("not an artifact event") };
        assert_eq!((e.append, e.last_chunk), (None, None), "a whole artifact says neither");
        assert_eq!(e.artifact, a);
        // The digest is over the JCS of the parts as served.
        let served = jcs(&serde_json::to_value(&a.parts).unwrap());
        assert_eq!((bytes, hash), (served.len() as u64, *blake3::hash(served.as_bytes()).as_bytes()));
    }

    #[test]
    fn chunks_are_recorded_once_merged_at_the_last() {
        let first = artifact("a-2", None, vec![Part::data(json!({ "n": 1 }))]);
        let u = Update::Artifact { artifact: first.clone(), append: false, last_chunk: false };
        let (entry, _, ev) = publish(map_update(IDS, u, None, now()));
        assert_eq!(entry, None, "a chunk before the last is not recorded");
        let StreamResponse::ArtifactUpdate(e) = ev else { panic!("not an artifact event") };
        assert_eq!((e.append, e.last_chunk), (None, Some(false)));

        let second = artifact("a-2", None, vec![Part::data(json!({ "n": 2 }))]);
        let u = Update::Artifact { artifact: second.clone(), append: true, last_chunk: true };
        let (entry, _, ev) = publish(map_update(IDS, u, Some(&first), now()));
        let merged = artifact("a-2", None, vec![Part::data(json!({ "n": 1 })), Part::data(json!({ "n": 2 }))]);
        let (bytes, hash) = artifact_digest(&merged);
        assert_eq!(
            entry,
            Some(Event::ArtifactAdded { name: "a-2".into(), media_type: "application/json".into(), bytes, hash }),
            "recorded whole, named by its id when it has no name"
        );
        let StreamResponse::ArtifactUpdate(e) = ev else { panic!("not an artifact event") };
        assert_eq!((e.append, e.last_chunk), (Some(true), Some(true)));
        assert_eq!(e.artifact, second, "the event carries the chunk, not the merge");
    }

    #[test]
    fn an_mcp_servers_requests_are_kept_as_the_payload_and_offered_to_the_caller() {
        let asked = json!({ "method": "elicitation/create", "params": { "message": "Your name?",
            "requestedSchema": { "type": "object", "properties": { "name": { "type": "string" } } } } });
        let requests = json!({ "inputRequests": { "user_name": asked }, "requestState": "opaque" });
        let u = Update::InputRequired { prompt: "Your name?".into(), requests: Some(requests.clone()) };
        let Step::Publish { entry, flush, event, keep, payload } = map_update(IDS, u, None, now()) else {
            panic!("not a publication")
        };
        assert_eq!(
            entry,
            Some(Event::TaskStatus { state: "input_required".into(), message: Some("Your name?".into()) })
        );
        assert!(flush, "the caller is told at once");
        let (hash, bytes) = &keep[0];
        assert_eq!(payload, Some(*hash));
        assert_eq!(*blake3::hash(bytes).as_bytes(), *hash);
        assert_eq!(bytes, jcs(&requests).as_bytes(), "the payload is the canonical requests, state and all");
        let s = status(&event);
        assert_eq!(s.status.state, TaskState::InputRequired);
        let m = s.status.message.as_ref().unwrap();
        assert_eq!(crate::engine::upstream::message_text(m), "Your name?");
        let data = m.parts.iter().find_map(|p| match &p.content {
            a2a::PartContent::Data(v) => Some(v),
            _ => None,
        });
        let data = data.expect("a data part");
        assert_eq!(*data, json!({ "mcp": { "inputRequests": { "user_name": asked } } }), "the state is not shown");

        // A prompt too long to inline is cut in the entry; the payload stays the requests.
        let u = Update::InputRequired { prompt: "x".repeat(INLINE_MESSAGE + 10), requests: Some(requests.clone()) };
        let Step::Publish { entry: Some(Event::TaskStatus { message: Some(inline), .. }), keep, .. } =
            map_update(IDS, u, None, now())
        else {
            panic!("not a status")
        };
        assert!(inline.ends_with(&format!("({} bytes in all)", INLINE_MESSAGE + 10)), "{inline}");
        assert_eq!(keep[0].1, jcs(&requests).into_bytes());
    }

    #[test]
    fn done_ends_the_call() {
        let o = Outcome::Failed("boom".into());
        assert_eq!(map_update(IDS, Update::Done(o.clone()), None, now()), Step::Done(o));
    }

    #[test]
    fn endings() {
        let e = ending(Outcome::Completed { result: Some(json!(3)), message: None, mcp: None });
        assert_eq!(
            (e.run_status, e.state, e.result, e.error, e.direct),
            (RunStatus::Completed, TaskState::Completed, Some(json!(3)), None, false)
        );
        let e = ending(Outcome::Message("hi".into()));
        assert_eq!((e.run_status, e.text.as_deref(), e.direct), (RunStatus::Completed, Some("hi"), true));
        let e = ending(Outcome::Failed("boom".into()));
        assert_eq!((e.run_status, e.state, e.error.as_deref()), (RunStatus::Failed, TaskState::Failed, Some("boom")));
        let e = ending(Outcome::Canceled);
        assert_eq!((e.run_status, e.text.as_deref()), (RunStatus::Canceled, Some("canceled by request")));
        let e = ending(Outcome::Rejected("no".into()));
        assert_eq!((e.run_status, e.state, e.error.as_deref()), (RunStatus::Rejected, TaskState::Rejected, Some("no")));
    }

    #[test]
    fn an_mcp_answer_is_kept_in_the_outcome_and_the_rest_stay_as_they_were() {
        let mcp = json!({ "content": [{ "type": "image", "data": "AAEC", "mimeType": "image/png" }] });
        let e = ending(Outcome::Completed { result: None, message: None, mcp: Some(mcp.clone()) });
        assert_eq!(e.mcp, Some(McpAnswer::Result(mcp.clone())));
        let payload: Value = serde_json::from_slice(&outcome_payload(&e).expect("an answer is kept")).unwrap();
        assert_eq!(payload, json!({ "direct": false, "message": null, "result": null, "mcp": { "result": mcp } }));

        let answer = McpAnswer::Error { code: -32021, message: "needs sampling".into(), data: Some(json!({ "x": 1 })) };
        let e = ending(Outcome::McpFailed { error: "-32021: needs sampling".into(), answer: answer.clone() });
        assert_eq!((e.run_status, e.error.as_deref()), (RunStatus::Failed, Some("-32021: needs sampling")));
        let payload: Value = serde_json::from_slice(&outcome_payload(&e).unwrap()).unwrap();
        assert_eq!(
            payload["mcp"],
            json!({ "error": { "code": -32021, "message": "needs sampling", "data": { "x": 1 } } })
        );
        assert_eq!(McpAnswer::from_json(&payload["mcp"]), Some(answer));

        // Runs of other upstreams keep the payload they always had, byte for byte.
        let e = ending(Outcome::Completed { result: Some(json!(3)), message: None, mcp: None });
        assert_eq!(outcome_payload(&e).unwrap(), br#"{"direct":false,"message":null,"result":3}"#);
        assert_eq!(outcome_payload(&ending(Outcome::Completed { result: None, message: None, mcp: None })), None);
    }
}
