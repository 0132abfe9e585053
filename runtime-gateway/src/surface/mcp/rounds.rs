//! `input_required` rounds at the MCP edge: a run that waits for its caller (`input_required`)
//! is put to an MCP caller in its own generation.
//!
//! - A 2026-07-28 caller gets an `InputRequiredResult` (SEP-2322): the upstream's requests (or,
//!   for an upstream that asked in words, one `elicitation/create` made of its prompt) and a
//!   `requestState` the gateway sealed over `{run, round}` for that caller. Its retry with
//!   `inputResponses` and that state continues the run.
//! - A 2025-11-25 caller is asked on the call's own stream (`elicitation/create`,
//!   `sampling/createMessage`, `roots/list`), one request at a time, and the answers go to the
//!   run together.
//!
//! Either way the answer reaches the run as a message with the DataPart `{"mcp":
//! {"inputResponses": …}}`, recorded as the round's `working` entry like any follow-up.
//!
//! Security rules kept here: the state is authenticated (HMAC, rmcp's `RequestStateCodec`) with
//! the caller's name as associated data and a time to live, so a state that was altered, has
//! expired, or was issued to another caller is refused (-32602) before any run is touched; a
//! state opens only the round it was issued for, once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use a2a::{Message, Part, PartContent, Role, TaskState};
use rmcp::model::{
    ClientCapabilities, InputRequest, InputRequests, InputResponses, ProtocolVersion, RequestStateCodec, SealOptions,
    ServerRequest,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use serde_json::{Value, json};

use crate::engine::buffer::Snapshot;
use crate::engine::upstream::message_text;

/// How long a sealed `requestState` opens: a round not answered over MCP by then can still be
/// answered over A2A or REST.
pub const ROUND_TTL: Duration = Duration::from_secs(3600);

/// The key of the one request a prompt asked in words becomes.
pub const IN_WORDS: &str = "answer";

/// The gateway's `requestState` seals, and the rounds answered through them.
pub struct Seals {
    codec: RequestStateCodec,
    /// Run → the last round answered with a state, so a state answers its round once.
    answered: Mutex<HashMap<String, usize>>,
}

impl std::fmt::Debug for Seals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seals").finish_non_exhaustive()
    }
}

/// What a sealed state stands for.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Round {
    /// The run waiting.
    pub run: String,
    /// Its round: how many messages its history held when the state was issued.
    pub round: usize,
}

/// Most runs remembered as answered before those that ended are forgotten.
const ANSWERED_MAX: usize = 1024;

impl Seals {
    /// Seals under a key drawn now: a run waiting for input does not outlive the process (a
    /// restart ends it), so neither need its states.
    pub fn new() -> Seals {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source");
        let codec = RequestStateCodec::try_new(key.to_vec()).expect("a 32-byte key");
        Seals { codec, answered: Mutex::new(HashMap::new()) }
    }

    /// The state standing for `round` of `run`, for `caller` only.
    pub fn seal(&self, caller: &str, round: &Round) -> String {
        let options = SealOptions::new().associated_data(caller.as_bytes()).ttl(ROUND_TTL);
        self.codec.seal_json_with(round, &options).expect("a round serialises")
    }

    /// Opens a state `caller` sent back; anything else than one this gateway sealed for that
    /// caller, still fresh, is invalid params.
    pub fn open(&self, caller: &str, sealed: &str) -> Result<Round, McpError> {
        // One answer for every way a state fails to open (altered, expired, another caller's,
        // never issued), as rmcp's codec asks: the caller learns nothing of which.
        self.codec.open_json_with(sealed, caller.as_bytes()).map_err(|_| {
            McpError::invalid_params(
                "requestState refused: not one this gateway issued to this caller, or expired; no run was touched",
                None,
            )
        })
    }

    /// Marks `round` answered; false when it already was. `live` says whether a run still runs,
    /// to forget those that ended when the map is full.
    pub fn claim(&self, round: &Round, live: impl Fn(&str) -> bool) -> bool {
        let mut answered = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        if answered.get(&round.run).is_some_and(|r| *r >= round.round) {
            return false;
        }
        if answered.len() >= ANSWERED_MAX {
            answered.retain(|run, _| live(run));
        }
        answered.insert(round.run.clone(), round.round);
        true
    }
}

/// True for a caller of the stateless generation (2026-07-28 and later), which is answered with
/// an `InputRequiredResult`; an older caller is asked on the call's stream.
pub fn stateless(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version().is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
}

/// What a run waiting for input asks, as MCP input requests: its upstream's own (an MCP server
/// asked), or one `elicitation/create` of a `text` made of its prompt (the upstream asked in
/// words; then `true`). `None` when the run is not waiting for input.
pub fn waiting(snap: &Snapshot) -> Option<(InputRequests, bool)> {
    if snap.task.status.state != TaskState::InputRequired {
        return None;
    }
    let message = snap.task.status.message.as_ref();
    let asked = message.into_iter().flat_map(|m| &m.parts).find_map(|p| match &p.content {
        PartContent::Data(v) => {
            serde_json::from_value::<InputRequests>(v.get("mcp")?.get("inputRequests")?.clone()).ok()
        }
        _ => None,
    });
    if let Some(asked) = asked {
        return Some((asked, false));
    }
    let prompt = message.map(message_text).filter(|t| !t.is_empty()).unwrap_or_else(|| "Input is required.".into());
    let request = json!({ "method": "elicitation/create", "params": { "message": prompt, "requestedSchema": {
        "type": "object", "properties": { "text": { "type": "string", "description": "Your answer" } },
        "required": ["text"] } } });
    let request: InputRequest = serde_json::from_value(request).expect("an elicitation request");
    Some((InputRequests::from([(IN_WORDS.to_string(), request)]), true))
}

/// The round a run is at: how many messages its history holds (its input, then one per answer).
pub fn round_of(snap: &Snapshot) -> usize {
    snap.task.history.as_ref().map_or(0, Vec::len)
}

/// The caller's answer as the run takes it: the DataPart `{"mcp": {"inputResponses": …}}`, and
/// for a prompt asked in words, the answer's text first (what such an upstream reads).
pub fn answer_message(responses: &InputResponses, in_words: bool) -> Message {
    let mut parts = Vec::new();
    if in_words && let Some(answer) = responses.get(IN_WORDS) {
        let text = match answer["action"].as_str() {
            Some("accept") => answer["content"]["text"].as_str().unwrap_or_default().to_string(),
            other => format!("(the caller answered: {})", other.unwrap_or("nothing")),
        };
        parts.push(Part::text(text));
    }
    parts.push(Part::data(json!({ "mcp": { "inputResponses": responses } })).with_media_type("application/json"));
    Message::new(Role::User, parts)
}

/// The capabilities `requests` need that `caller` did not declare (`None`: all declared).
pub fn missing(requests: &InputRequests, caller: &ClientCapabilities) -> Option<Value> {
    let mut lacking = serde_json::Map::new();
    for r in requests.values() {
        let (name, has) = crate::engine::upstream::mcp::needs(r);
        if !has(caller) {
            lacking.insert(name.to_string(), json!({}));
        }
    }
    (!lacking.is_empty()).then_some(Value::Object(lacking))
}

/// Asks a 2025-11-25 caller each request on the call's stream, in key order; its answers as
/// input responses. The caller must have declared what they need ([`missing`]).
pub async fn ask_on_stream(
    ctx: &RequestContext<RoleServer>,
    requests: InputRequests,
) -> Result<InputResponses, McpError> {
    let mut answers = InputResponses::new();
    for (key, request) in requests {
        let request = match request {
            InputRequest::CreateMessage(r) => ServerRequest::CreateMessageRequest(r),
            InputRequest::ListRoots(r) => ServerRequest::ListRootsRequest(r),
            InputRequest::Elicitation(r) => ServerRequest::ElicitRequest(r),
            other => {
                return Err(McpError::internal_error(
                    format!("an input request the gateway cannot ask: {other:?}"),
                    None,
                ));
            }
        };
        let answer = ctx.peer.send_request(request).await.map_err(|e| match e {
            rmcp::service::ServiceError::McpError(e) => e,
            e => McpError::internal_error(format!("asking the caller for input {key:?}: {e}"), None),
        })?;
        answers.insert(key, serde_json::to_value(answer).unwrap_or(Value::Null));
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting_with(parts: Vec<Part>) -> Snapshot {
        let mut m = Message::new(Role::Agent, parts);
        m.task_id = Some("t".into());
        let task = a2a::Task {
            id: "t".into(),
            context_id: "c".into(),
            status: a2a::TaskStatus { state: TaskState::InputRequired, message: Some(m), timestamp: None },
            artifacts: None,
            history: Some(vec![Message::new(Role::User, vec![Part::text("go")])]),
            metadata: None,
        };
        Snapshot { task, result: None, mcp: None, error: None, reply: None, closed: false, recording_error: None }
    }

    #[test]
    fn a_state_opens_only_as_sealed_for_its_caller_and_only_once_per_round() {
        let seals = Seals::new();
        let round = Round { run: "r1".into(), round: 1 };
        let sealed = seals.seal("alice", &round);
        assert_eq!(seals.open("alice", &sealed).unwrap(), round);
        let invalid = |r: Result<Round, McpError>| r.unwrap_err().code == rmcp::model::ErrorCode::INVALID_PARAMS;
        assert!(invalid(seals.open("bob", &sealed)), "another caller's state");
        let mut tampered = sealed.clone().into_bytes();
        let i = tampered.len() / 2;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert!(invalid(seals.open("alice", &String::from_utf8(tampered).unwrap())), "an altered state");
        assert!(invalid(Seals::new().open("alice", &sealed)), "another process's state");
        assert!(invalid(seals.open("alice", "round-1")), "a state the gateway never issued");
        assert!(seals.claim(&round, |_| true));
        assert!(!seals.claim(&round, |_| true), "a round is answered once");
        assert!(seals.claim(&Round { run: "r1".into(), round: 2 }, |_| true), "the next round is its own");
    }

    #[test]
    fn an_mcp_servers_requests_are_offered_as_given_and_words_as_one_elicitation() {
        let asked = json!({ "q": { "method": "roots/list" } });
        let snap = waiting_with(vec![Part::text("roots?"), Part::data(json!({ "mcp": { "inputRequests": asked } }))]);
        let (requests, in_words) = waiting(&snap).unwrap();
        assert!(!in_words);
        assert_eq!(serde_json::to_value(&requests).unwrap(), asked);
        assert_eq!(round_of(&snap), 1);

        let (requests, in_words) = waiting(&waiting_with(vec![Part::text("What name should I greet?")])).unwrap();
        assert!(in_words);
        let v = serde_json::to_value(&requests).unwrap();
        assert_eq!(v[IN_WORDS]["method"], "elicitation/create");
        assert_eq!(v[IN_WORDS]["params"]["message"], "What name should I greet?");
        assert_eq!(v[IN_WORDS]["params"]["requestedSchema"]["required"], json!(["text"]));

        let mut done = waiting_with(vec![Part::text("x")]);
        done.task.status.state = TaskState::Completed;
        assert!(waiting(&done).is_none());
    }

    #[test]
    fn answers_reach_the_run_as_data_and_words_as_text() {
        let given: InputResponses =
            serde_json::from_value(json!({ IN_WORDS: { "action": "accept", "content": { "text": "Ada" } } })).unwrap();
        let m = answer_message(&given, true);
        assert_eq!(message_text(&m), "Ada");
        assert_eq!(
            serde_json::to_value(crate::engine::upstream::mcp::responses(&m).unwrap()).unwrap(),
            serde_json::to_value(&given).unwrap()
        );
        let declined: InputResponses = serde_json::from_value(json!({ IN_WORDS: { "action": "decline" } })).unwrap();
        assert_eq!(message_text(&answer_message(&declined, true)), "(the caller answered: decline)");
        assert_eq!(message_text(&answer_message(&given, false)), "", "an MCP server's answers are data only");
    }

    #[test]
    fn a_caller_is_asked_only_what_it_declared() {
        let requests: InputRequests = serde_json::from_value(json!({
            "a": { "method": "roots/list" },
            "b": { "method": "sampling/createMessage", "params": { "maxTokens": 5, "messages": [] } } }))
        .unwrap();
        let none = ClientCapabilities::default();
        assert_eq!(missing(&requests, &none), Some(json!({ "roots": {}, "sampling": {} })));
        let both: ClientCapabilities = serde_json::from_value(json!({ "roots": {}, "sampling": {} })).unwrap();
        assert_eq!(missing(&requests, &both), None);
    }
}
