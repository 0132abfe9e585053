//! The agents behind the gateway. An [`Upstream`] runs one call: it reads the input and any
//! follow-up messages, and reports [`Update`]s, ending with exactly one [`Update::Done`]. The
//! task engine turns each update into a ledger entry and an A2A event.
//!
//! Security rule kept here: an upstream is handed the skill input and messages only, never the
//! caller's request headers or credentials; what it sends upstream is its own configuration.

pub mod a2a_agent;
pub mod card_signature;
pub mod demo;
pub mod http;
pub mod mcp;

use std::sync::Arc;

use ::a2a::Artifact;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::base::BoxFuture;
use crate::engine::manifest::{CardSignature, SkillSpec, UpstreamSpec};

/// One report from a running call.
#[derive(Clone, Debug)]
pub enum Update {
    /// The task is working (again), with an optional message.
    Working(Option<String>),
    /// Progress of a step.
    Progress {
        /// Stage name.
        stage: String,
        /// Percent done, 0..=100.
        pct: u8,
        /// Message.
        message: String,
        /// The upstream's own numbers, when it reports them (an MCP server's `progress` and
        /// `total`): relayed to MCP callers as given. Not recorded (`pct` is).
        raw: Option<(f64, Option<f64>)>,
    },
    /// A log message of the agent (an MCP server's `notifications/message` during the call):
    /// recorded as `skill.progress` with `stage` = `log.<level>` (docs/FORMATS.md §9).
    Log {
        /// Its syslog level (`debug` … `emergency`).
        level: String,
        /// Its logger, if named.
        logger: Option<String>,
        /// Its data, any JSON.
        data: Value,
        /// The run's last progress percentage (the engine fills it in).
        pct: u8,
    },
    /// The agent needs more input; the next follow-up message answers it.
    InputRequired {
        /// What it asks, in words.
        prompt: String,
        /// What it asks as MCP requests, when it is an MCP server's (SEP-2322):
        /// `{"inputRequests": {key: {"method", "params"}}}` with its `requestState` when it gave
        /// one. Kept as the `input_required` entry's payload; the status message carries the
        /// requests as a DataPart `{"mcp": {"inputRequests": …}}` for the caller to answer.
        requests: Option<Value>,
    },
    /// The agent needs further authorisation.
    AuthRequired(String),
    /// An artifact (whole, or a chunk when `append` is set).
    Artifact {
        /// The artifact.
        artifact: Artifact,
        /// This chunk appends to an earlier one with the same id.
        append: bool,
        /// The last chunk of this artifact.
        last_chunk: bool,
    },
    /// The upstream's own task for this call, once it is known (an `a2a` upstream): the engine
    /// keeps it so the run can be resumed after the gateway restarts. No entry, no event.
    UpstreamTask {
        /// The upstream's task id.
        task: String,
        /// The upstream's context id.
        context: String,
    },
    /// The call ended.
    Done(Outcome),
}

/// Where a run left in flight by a gateway that died stands: its upstream task as kept, and what
/// the ledger already records of it, so a resumed call relays only what is new.
#[derive(Clone, Debug)]
pub struct Resume {
    /// The upstream's task id.
    pub task: String,
    /// The upstream's context id.
    pub context: String,
    /// The run's last recorded state and status message.
    pub state: (::a2a::TaskState, Option<String>),
    /// The artifacts the run's entries already hold, as `artifact.added` names them: (name, BLAKE3
    /// of the canonical parts), so an artifact is known even when its payload was erased.
    pub artifacts: Vec<(String, [u8; 32])>,
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Done, with an optional JSON result and a closing message.
    Completed {
        /// The result (for `/invoke`), if the agent gives one.
        result: Option<Value>,
        /// The agent's closing message text.
        message: Option<String>,
        /// An MCP upstream's `CallToolResult` as it answered it (JSON; `_meta` without the
        /// gateway's own `a2a-ledger/*` keys), relayed as given to MCP callers.
        mcp: Option<Value>,
    },
    /// Failed, with why.
    Failed(String),
    /// Failed with an answer of an MCP upstream that MCP callers get as it was given (a tool
    /// result with `isError`, or a JSON-RPC error); everyone else sees `error`, as for
    /// [`Outcome::Failed`].
    McpFailed {
        /// Why, as `task.failed` records it.
        error: String,
        /// What the upstream answered.
        answer: McpAnswer,
    },
    /// Done, answered with a direct message rather than a task (A2A `SendMessageResponse.message`);
    /// the run is recorded and sealed as completed all the same.
    Message(String),
    /// Canceled on request.
    Canceled,
    /// Refused by the agent, with why.
    Rejected(String),
}

/// What an MCP upstream answered a failed `tools/call` with.
#[derive(Clone, Debug, PartialEq)]
pub enum McpAnswer {
    /// A `CallToolResult` with `isError` (JSON, as in [`Outcome::Completed`]'s `mcp`).
    Result(Value),
    /// A JSON-RPC error.
    Error {
        /// Its code (such as -32021, a client capability the caller did not declare).
        code: i32,
        /// Its message.
        message: String,
        /// Its data, as given.
        data: Option<Value>,
    },
}

impl McpAnswer {
    /// As the outcome payload keeps it: `{"result": CallToolResult}` or `{"error": {"code",
    /// "message", "data"}}`, the two shapes of a JSON-RPC response.
    pub fn to_json(&self) -> Value {
        match self {
            McpAnswer::Result(r) => serde_json::json!({ "result": r }),
            McpAnswer::Error { code, message, data } => {
                let mut e = serde_json::json!({ "code": code, "message": message });
                if let Some(d) = data {
                    e["data"] = d.clone();
                }
                serde_json::json!({ "error": e })
            }
        }
    }

    /// Read back from [`McpAnswer::to_json`]'s shape.
    pub fn from_json(v: &Value) -> Option<McpAnswer> {
        if let Some(r) = v.get("result") {
            return Some(McpAnswer::Result(r.clone()));
        }
        let e = v.get("error")?;
        Some(McpAnswer::Error {
            code: i32::try_from(e.get("code")?.as_i64()?).ok()?,
            message: e.get("message")?.as_str()?.to_string(),
            data: e.get("data").cloned(),
        })
    }
}

/// One call of a skill.
#[derive(Debug)]
pub struct Call {
    /// The run (A2A task) id.
    pub run: String,
    /// The context id.
    pub context_id: String,
    /// The skill.
    pub skill: String,
    /// The skill input (JSON).
    pub input: Value,
    /// The message that started the call.
    pub message: ::a2a::Message,
    /// Where to report.
    pub updates: mpsc::Sender<Update>,
    /// Further messages of the caller (answers to input_required).
    pub follow_ups: mpsc::Receiver<::a2a::Message>,
    /// Becomes true when the caller asks to cancel.
    pub cancel: watch::Receiver<bool>,
    /// The run's workspace grant, for the agent.
    pub grant: Option<CallGrant>,
    /// W3C `traceparent` of the gateway's span of this call, when traces are exported; the
    /// upstream passes it on so the agent's spans join the run's trace.
    pub traceparent: Option<String>,
    /// What an MCP caller declared for the request that started the run (`None` for A2A and
    /// REST callers): an `mcp` upstream is told the same, so it checks the caller's
    /// capabilities as if it were called directly.
    pub mcp_caller: Option<McpCaller>,
}

/// An MCP caller's declarations for one request: its client capabilities, the log level it
/// asked for, and the protocol generation it speaks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct McpCaller {
    /// Its client capabilities (`sampling`, `elicitation`, `roots` …), as it declared them.
    pub capabilities: rmcp::model::ClientCapabilities,
    /// The log level it asked for, if any (2026-07-28: the request's
    /// `io.modelcontextprotocol/logLevel`, such as `"debug"`).
    pub log_level: Option<String>,
    /// The protocol version it speaks (`2025-11-25`, `2026-07-28`), when known.
    pub protocol: Option<String>,
    /// A key of its 2025-11-25 session (its name and `Mcp-Session-Id`): an `mcp` upstream
    /// gives the session one of its own, so the server's requests back reach this caller.
    pub session: Option<String>,
}

/// What an agent needs to reach its run's workspace.
#[derive(Clone)]
pub struct CallGrant {
    /// The grant's id.
    pub id: String,
    /// The grant (a JWT): `Authorization: Bearer <token>` on workspace calls.
    pub token: String,
    /// The workspace's base URL (`…/workspace/{run}`).
    pub workspace: String,
    /// Where the agent asks for more scope (`…/scope/{run}`).
    pub scope: String,
}

impl std::fmt::Debug for CallGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never in logs.
        f.debug_struct("CallGrant").field("id", &self.id).field("workspace", &self.workspace).finish_non_exhaustive()
    }
}

impl Call {
    /// Reports an update; false when the task is gone.
    pub async fn send(&self, u: Update) -> bool {
        self.updates.send(u).await.is_ok()
    }

    /// Waits for the next follow-up message, or `None` when canceled or gone.
    pub async fn next_message(&mut self) -> Option<::a2a::Message> {
        let mut cancel = self.cancel.clone();
        tokio::select! {
            m = self.follow_ups.recv() => m,
            _ = canceled(&mut cancel) => None,
        }
    }

    /// True once cancel was asked for.
    pub fn canceled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Sleeps, or returns false early when canceled.
    pub async fn sleep(&self, d: std::time::Duration) -> bool {
        let mut cancel = self.cancel.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = canceled(&mut cancel) => false,
        }
    }
}

/// Resolves once cancel is asked for (or the task is gone).
pub async fn canceled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|c| *c).await;
}

/// Runs calls of one agent.
pub trait Upstream: Send + Sync + std::fmt::Debug {
    /// Runs `call` to its end; must report exactly one [`Update::Done`] (the engine fails the
    /// run when the future ends without one).
    fn run(&self, call: Call) -> BoxFuture<'static, ()>;

    /// Follows the upstream task a call of a gateway that died started ([`Resume`]) to its end,
    /// relaying only what the ledger does not hold yet; reports exactly one [`Update::Done`]. An
    /// upstream that cannot resume ends the call as failed with [`RESTARTED`].
    fn resume(&self, call: Call, from: Resume) -> BoxFuture<'static, ()> {
        let _ = from;
        Box::pin(async move {
            call.send(Update::Done(Outcome::Failed(RESTARTED.into()))).await;
        })
    }

    /// True when [`Upstream::resume`] can follow a call of an earlier process.
    fn resumes(&self) -> bool {
        false
    }

    /// The skills the upstream itself declares (an A2A agent's card, an MCP server's tools),
    /// read at start for an agent whose manifest lists none. Upstreams that declare nothing
    /// answer an empty list.
    fn skills(&self) -> BoxFuture<'_, Result<Vec<SkillSpec>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// For an upstream that publishes a signed description of itself (an A2A agent's card):
    /// reads and checks it now (the agent's registration), and answers the verdict, or why it
    /// could not be read. `None` for upstreams without one.
    fn register(&self) -> BoxFuture<'_, Option<Result<String, String>>> {
        Box::pin(async { None })
    }

    /// The last verdict on the upstream's signed description ([`Upstream::register`]), if any.
    fn verdict(&self) -> Option<String> {
        None
    }

    /// The MCP server this upstream is (`mcp` and `stdio` agents), for what MCP offers beside
    /// tools: resources, prompts, completion.
    fn mcp(&self) -> Option<&mcp::McpServer> {
        None
    }
}

/// The error a run that was in flight when its gateway died ends with, when it cannot be resumed.
pub const RESTARTED: &str = "the gateway restarted while the run was in flight";

/// Builds the upstream of an agent.
pub fn build(spec: &UpstreamSpec, http: &reqwest::Client) -> Arc<dyn Upstream> {
    match spec {
        UpstreamSpec::Demo => Arc::new(demo::Demo),
        UpstreamSpec::Http { url, headers, timeout_secs } => {
            Arc::new(http::Webhook::new(http.clone(), url.clone(), headers.clone(), *timeout_secs))
        }
        UpstreamSpec::A2a { url, headers, timeout_secs, card_key, card_jwks, card_signature } => {
            let trust = card_signature::CardTrust {
                key: card_key.as_deref().cloned(),
                jwks: card_jwks.clone(),
                required: *card_signature == CardSignature::Required,
            };
            Arc::new(
                a2a_agent::A2aAgent::new(http.clone(), url.clone(), headers.clone(), *timeout_secs).trusting(trust),
            )
        }
        UpstreamSpec::Mcp { url, headers, timeout_secs, prefix } => {
            Arc::new(mcp::McpServer::new(url.clone(), headers.clone(), *timeout_secs, prefix.clone()))
        }
        UpstreamSpec::Stdio { command, env, timeout_secs, prefix } => {
            Arc::new(mcp::McpServer::stdio(command.clone(), env.clone(), *timeout_secs, prefix.clone()))
        }
    }
}

/// The text of a message's parts, joined by newlines.
pub fn message_text(m: &::a2a::Message) -> String {
    m.parts.iter().filter_map(|p| p.as_text()).collect::<Vec<_>>().join("\n")
}
