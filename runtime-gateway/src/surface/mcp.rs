//! MCP at `/mcp`: every skill is also an MCP tool, one source of truth with the Agent Card.
//!
//! Served with the official `rmcp` over streamable HTTP: clients of protocol 2025-11-25
//! (`initialize`, `Mcp-Session-Id` sessions) and of 2026-07-28 (stateless, `server/discover`) on
//! the same endpoint. A tool call is a run like any other (`task.accepted` with protocol `mcp`),
//! sealed when it ends; skill progress becomes `notifications/progress`; a failed skill is a
//! result with `isError`; every result's `_meta` names the run and its receipt.
//!
//! With an `mcp` upstream behind, the edge relays it as given: the upstream's `CallToolResult`
//! (every content block, `structuredContent`, `isError`, its `_meta` with the gateway's keys
//! added), its JSON-RPC errors with their code and data, and its progress numbers.
//!
//! Security rules kept here: callers authenticate as on every other surface (the bearer token,
//! checked by the router's middleware before rmcp sees the request); `Host` must be one of the
//! gateway's names and a browser's `Origin` one of its origins (else 403), against DNS
//! rebinding.

use std::sync::Arc;

use a2a::{StreamResponse, TaskState};
use futures_util::StreamExt as _;
use ledger_core::Protocol;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode, Implementation,
    InputRequiredResult, InputResponses, JsonObject, ListToolsResult, MetaObject, PaginatedRequestParams,
    ProgressNotificationParam, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::base::auth::Caller;
use crate::engine::buffer::{Snapshot, TaskHandle, follow, state_name};
use crate::engine::manifest::{SkillSpec, UpstreamSpec};
use crate::engine::tasks::{NewTask, TaskError};
use crate::engine::upstream::{McpAnswer, McpCaller, message_text};
use crate::surface::a2a::data_message;
use crate::surface::state::Gateway;

mod catalog;
mod rounds;

/// `/mcp`, rmcp's service; `shutdown` ends its sessions.
pub fn router(gw: Arc<Gateway>, shutdown: tokio_util::sync::CancellationToken) -> axum::Router<Arc<Gateway>> {
    let (hosts, origins) = hosts_and_origins(gw.engine.public_url());
    axum::Router::new().nest_service("/mcp", service(gw, hosts, origins, shutdown))
}

/// The MCP side of the gateway (cheap to clone: rmcp makes one per session and per stateless
/// request).
#[derive(Clone, Debug)]
pub struct McpGateway {
    gw: Arc<Gateway>,
    /// The `requestState` seals of input_required rounds (one for the service: a retry may
    /// come on another session or none).
    seals: Arc<rounds::Seals>,
    /// The caller's session (a 2025-11-25 session; each 2026-07-28 request has its own).
    session: Arc<catalog::Session>,
}

/// The `/mcp` service. `hosts` and `origins` are what `Host` and `Origin` may say.
pub fn service(
    gw: Arc<Gateway>,
    hosts: Vec<String>,
    origins: Vec<String>,
    shutdown: tokio_util::sync::CancellationToken,
) -> StreamableHttpService<McpGateway, LocalSessionManager> {
    let cfg = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .with_json_response(true)
        .with_cancellation_token(shutdown);
    let seals = Arc::new(rounds::Seals::new());
    StreamableHttpService::new(
        move || Ok(McpGateway { gw: gw.clone(), seals: seals.clone(), session: Arc::default() }),
        Arc::new(LocalSessionManager::default()),
        cfg,
    )
}

/// The `Host` values and `Origin`s the gateway answers MCP on: its public URL's, and loopback's.
pub fn hosts_and_origins(public_url: &str) -> (Vec<String>, Vec<String>) {
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let mut origins = vec!["http://localhost:*".to_string(), "http://127.0.0.1:*".to_string()];
    if let Ok(u) = reqwest::Url::parse(public_url) {
        if let Some(h) = u.host_str() {
            hosts.push(h.to_string());
            if let Some(p) = u.port() {
                hosts.push(format!("{h}:{p}"));
            }
        }
        origins.push(u.origin().ascii_serialization());
    }
    (hosts, origins)
}

fn object(v: Option<Value>) -> Option<JsonObject> {
    match v {
        Some(Value::Object(o)) => Some(o),
        _ => None,
    }
}

fn tool(agent: &str, s: &SkillSpec) -> Tool {
    let input = object(s.input_schema_json()).unwrap_or_else(|| {
        let mut o = JsonObject::new();
        o.insert("type".into(), json!("object"));
        o
    });
    let mut t = Tool::new(s.id.clone(), s.description.clone(), Arc::new(input));
    t.title = Some(s.name.clone());
    if let Some(out) = object(s.output_schema_json()).filter(|o| o.get("type") == Some(&json!("object"))) {
        t = t.with_raw_output_schema(Arc::new(out));
    }
    let mut meta = MetaObject::new();
    meta.0.insert("a2a-ledger/agent".into(), json!(agent));
    t.with_meta(meta)
}

/// Where following a run left an MCP request.
enum Followed {
    /// The run waits for a 2026-07-28 caller's answer: the round to answer with, its state sealed.
    Asked(InputRequiredResult),
    /// The run ended, or waits for what only an A2A or REST caller can give: as it stands.
    Stopped(Box<Snapshot>),
}

impl McpGateway {
    fn tools(&self) -> Vec<Tool> {
        self.gw.engine.agents().iter().flat_map(|a| a.spec.skills.iter().map(|s| tool(&a.spec.name, s))).collect()
    }

    /// The name the skill's upstream knows it by: an `mcp` upstream's tool name (the skill id
    /// without the agent's prefix), else the skill id.
    fn own_name<'a>(&self, skill: &'a str) -> &'a str {
        let agent = self.gw.engine.skill(skill).and_then(|r| self.gw.engine.agents().get(r.agent));
        match agent.map(|a| &a.spec.upstream) {
            Some(UpstreamSpec::Mcp { prefix, .. } | UpstreamSpec::Stdio { prefix, .. }) => {
                skill.strip_prefix(prefix.as_str()).unwrap_or(skill)
            }
            _ => skill,
        }
    }
}

/// What one progress event of the run becomes for an MCP caller: the upstream's own numbers
/// when it gave them, else the percentage out of 100; the message without `"stage: "` when the
/// stage is only the tool's own name (an `mcp` upstream's progress).
fn progress_note(p: &Value, own_name: &str) -> (f64, Option<f64>, String) {
    let (value, total) = match p.get("raw") {
        Some(raw) => (raw["progress"].as_f64().unwrap_or(0.0), raw["total"].as_f64()),
        None => (p["pct"].as_f64().unwrap_or(0.0), Some(100.0)),
    };
    let stage = p["stage"].as_str().unwrap_or("");
    let message = p["message"].as_str().unwrap_or("");
    let message =
        if stage.is_empty() || stage == own_name { message.to_string() } else { format!("{stage}: {message}") };
    (value, total, message)
}

/// Which progress notifications go out: the first whatever its value, then each whose value is
/// above the last sent (MCP: "the progress value MUST increase with each notification").
#[derive(Default)]
struct ProgressGate(Option<f64>);

impl ProgressGate {
    fn admits(&mut self, value: f64) -> bool {
        if self.0.is_some_and(|last| value <= last) {
            return false;
        }
        self.0 = Some(value);
        true
    }
}

/// An upstream's tool result as the caller gets it: as the upstream gave it, its `_meta` with the
/// gateway's keys added (they win over the upstream's of the same name).
fn relayed_result(answer: &Value, meta: MetaObject) -> Result<CallToolResult, McpError> {
    let mut r: CallToolResult = serde_json::from_value(answer.clone())
        .map_err(|e| McpError::internal_error(format!("the upstream's tool result could not be relayed: {e}"), None))?;
    let mut merged = r.meta.take().unwrap_or_default();
    merged.0.extend(meta.0);
    Ok(r.with_meta(Some(merged)))
}

/// An upstream's JSON-RPC error as the caller gets it: its code, message and data, with the run
/// and receipt added to an object `data` (or as `data` when it gave none), like a result's `_meta`.
fn relayed_error(code: i32, message: &str, data: Option<&Value>, meta: MetaObject) -> McpError {
    let data = match data {
        None => Some(Value::Object(meta.0)),
        Some(Value::Object(o)) => {
            let mut o = o.clone();
            o.extend(meta.0);
            Some(Value::Object(o))
        }
        Some(other) => Some(other.clone()),
    };
    McpError::new(ErrorCode(code), message.to_string(), data)
}

fn caller_of(ctx: &RequestContext<RoleServer>) -> Option<Caller> {
    ctx.extensions.get::<http::request::Parts>()?.extensions.get::<Caller>().cloned()
}

/// What the caller declared for this request: its capabilities (2026-07-28: the request's
/// `_meta`; a 2025-11-25 session: its `initialize`), log level and protocol version, which an
/// `mcp` upstream is told in turn; and for a 2025-11-25 session, a key of it (the caller's name
/// and its `Mcp-Session-Id`), which the upstream mirrors with a session of its own.
fn mcp_caller(ctx: &RequestContext<RoleServer>, caller: &str) -> McpCaller {
    McpCaller {
        capabilities: ctx.client_capabilities().unwrap_or_default(),
        log_level: ctx.meta.0.get("io.modelcontextprotocol/logLevel").and_then(Value::as_str).map(String::from),
        protocol: ctx.protocol_version().map(|v| v.to_string()),
        session: ctx
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok())
            .map(|session| format!("{caller}\n{session}")),
    }
}

fn result_meta(gw: &Gateway, run: &str) -> MetaObject {
    let mut meta = MetaObject::new();
    meta.0.insert("a2a-ledger/run".into(), json!(run));
    meta.0.insert("a2a-ledger/receipt".into(), json!(gw.engine.receipt_url(run)));
    meta
}

impl ServerHandler for McpGateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(catalog::capabilities(&self.gw))
            .with_server_info(Implementation::new(self.gw.card.card.name.clone(), env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Every tool is a skill of an agent behind the a2a-ledger gateway. Each call is recorded in a \
                 signed, append-only ledger and sealed; the result's _meta names its receipt.",
            )
    }

    async fn list_tools(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        req: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let gw = &self.gw;
        let caller =
            caller_of(&ctx).ok_or_else(|| McpError::invalid_request("the caller is not authenticated", None))?;
        if let Some(sealed) = req.request_state.clone() {
            let same = |h: &TaskHandle, _: &Snapshot| {
                (h.skill != req.name)
                    .then(|| format!("it continues a run of {:?}, not a call of {:?}", h.skill, req.name))
            };
            let followed = self.retry(&sealed, req.input_responses.clone(), same, &ctx, &caller.name).await?;
            return self.tool_answer(followed);
        }
        let skill = req.name.to_string();
        if gw.engine.skill(&skill).is_none() {
            return Err(McpError::invalid_params(format!("unknown tool {skill:?}; tools/list names them"), None));
        }
        let args = Value::Object(req.arguments.unwrap_or_default());
        let input_bytes = serde_json::to_vec(&args).expect("serialise");
        let created = gw
            .engine
            .create(NewTask {
                caller: caller.name.clone(),
                protocol: Protocol::Mcp,
                skill,
                input: args.clone(),
                input_bytes,
                message: data_message(&args),
                context_id: None,
                parent: caller.parent.clone(),
                mcp_caller: Some(mcp_caller(&ctx, &caller.name)),
            })
            .await;
        let handle = match created {
            Ok(h) => h,
            // A tool execution error, so the model can correct its arguments (MCP SEP-1303).
            Err(TaskError::InvalidInput(m)) => return Ok(CallToolResult::error(vec![ContentBlock::text(m)]).into()),
            Err(TaskError::RecordingUnavailable(m)) => {
                return Err(McpError::internal_error(
                    format!("the call could not be recorded, so it was not made: {m}"),
                    None,
                ));
            }
            Err(other) => return Err(McpError::invalid_params(other.to_string(), None)),
        };
        let followed = self.follow_rounds(&handle, 0, &ctx, &caller.name).await?;
        self.tool_answer(followed)
    }

    async fn list_resources(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, McpError> {
        Ok(catalog::list_resources(&self.gw).await)
    }

    async fn list_resource_templates(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, McpError> {
        Ok(catalog::list_resource_templates(&self.gw).await)
    }

    async fn read_resource(
        &self,
        req: rmcp::model::ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, McpError> {
        catalog::read_resource(self, req, ctx).await
    }

    async fn list_prompts(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, McpError> {
        Ok(catalog::list_prompts(&self.gw).await)
    }

    async fn get_prompt(
        &self,
        req: rmcp::model::GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, McpError> {
        catalog::get_prompt(self, req, ctx).await
    }

    async fn complete(
        &self,
        req: rmcp::model::CompleteRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CompleteResult, McpError> {
        catalog::complete(&self.gw, req).await
    }

    #[allow(deprecated)] // logging: deprecated by SEP-2577 for a later protocol version
    async fn set_level(
        &self,
        req: rmcp::model::SetLevelRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.session.set_level(req.level);
        Ok(())
    }

    async fn subscribe(
        &self,
        req: rmcp::model::SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        catalog::subscribe(&self.gw, &self.session, &req.uri, &ctx).await
    }

    async fn unsubscribe(
        &self,
        req: rmcp::model::UnsubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        catalog::unsubscribe(&self.session, &req.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        catalog::accepted_filter(requested)
    }

    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        catalog::listen(&self.gw, context).await
    }
}

impl McpGateway {
    /// A 2026-07-28 caller's retry of a round (SEP-2322), of a tool call, a prompt get or a
    /// resource read alike: its `requestState` must be one the gateway sealed for it, for a run
    /// still waiting at that round, which `same` finds is of what the retry names (else why
    /// not); then its `inputResponses` go to the run, which is followed on. A retry without
    /// responses is asked the same again. Every refusal is -32602, before any run is touched.
    async fn retry(
        &self,
        sealed: &str,
        responses: Option<InputResponses>,
        same: impl FnOnce(&TaskHandle, &Snapshot) -> Option<String>,
        ctx: &RequestContext<RoleServer>,
        caller: &str,
    ) -> Result<Followed, McpError> {
        let gw = &self.gw;
        let round = self.seals.open(caller, sealed)?;
        let refused = |why: String| McpError::invalid_params(format!("requestState refused: {why}"), None);
        let handle = gw.engine.get(&round.run, caller).await.map_err(|e| refused(e.to_string()))?;
        let snap = handle.snapshot();
        if let Some(other) = same(&handle, &snap) {
            return Err(refused(other));
        }
        let asked = rounds::waiting(&snap).filter(|_| rounds::round_of(&snap) == round.round);
        let Some((requests, in_words)) = asked else {
            return Err(refused(format!(
                "run {} no longer waits for this round (it is {})",
                handle.id,
                state_name(&snap.task.status.state)
            )));
        };
        let Some(responses) = responses.filter(|r| !r.is_empty()) else {
            let state = self.seals.seal(caller, &round);
            let again = InputRequiredResult::new(Some(requests), Some(state));
            return Ok(Followed::Asked(again.with_meta(result_meta(gw, &handle.id))));
        };
        if !self.seals.claim(&round, |run| gw.engine.task(run).is_some_and(|h| !h.is_ended())) {
            return Err(refused(format!("this round of run {} was answered already", handle.id)));
        }
        let cursor = gw
            .engine
            .continue_task(&handle, rounds::answer_message(&responses, in_words))
            .await
            .map_err(|e| refused(e.to_string()))?;
        self.follow_rounds(&handle, cursor, ctx, caller).await
    }

    /// Follows run `handle` from event `from` for an MCP request (a tool call, a prompt get, a
    /// resource read): progress and log messages on the way; while the run waits for input, the
    /// round put to the caller in its generation ([`rounds`]): answered on the request's stream
    /// by a 2025-11-25 caller (and followed on), returned to a 2026-07-28 one with a sealed
    /// state. Else the run as it stopped.
    async fn follow_rounds(
        &self,
        handle: &Arc<TaskHandle>,
        mut from: usize,
        ctx: &RequestContext<RoleServer>,
        caller: &str,
    ) -> Result<Followed, McpError> {
        let gw = &self.gw;
        let meta = result_meta(gw, &handle.id);
        let token = ctx.meta.get_progress_token();
        let own_name = self.own_name(&handle.skill).to_string();
        let mut gate = ProgressGate::default();
        loop {
            let mut events = Box::pin(follow(handle.clone(), from, true));
            loop {
                let ev = tokio::select! {
                    ev = events.next() => ev,
                    () = ctx.ct.cancelled() => {
                        // The client went away or cancelled: so does the run (it ends sealed as canceled).
                        let _ = gw.engine.cancel(handle).await;
                        return Err(McpError::internal_error("cancelled", None));
                    }
                };
                let Some((_, ev)) = ev else { break };
                if let (Some(token), StreamResponse::StatusUpdate(s)) = (&token, &*ev)
                    && let Some(p) = s.metadata.as_ref().and_then(|m| m.get("progress"))
                {
                    let (value, total, message) = progress_note(p, &own_name);
                    if gate.admits(value) {
                        let mut n = ProgressNotificationParam::new(token.clone(), value);
                        if !message.is_empty() {
                            n = n.with_message(message);
                        }
                        if let Some(t) = total {
                            n = n.with_total(t);
                        }
                        let _ = ctx.peer.notify_progress(n).await;
                    }
                }
                if let StreamResponse::StatusUpdate(s) = &*ev {
                    catalog::relay_log(&self.session, ctx, s).await;
                }
            }
            let snap = handle.snapshot();
            if let Some((requests, in_words)) = rounds::waiting(&snap) {
                if rounds::stateless(ctx) {
                    let state = self
                        .seals
                        .seal(caller, &rounds::Round { run: handle.id.clone(), round: rounds::round_of(&snap) });
                    let asked = InputRequiredResult::new(Some(requests), Some(state));
                    return Ok(Followed::Asked(asked.with_meta(meta)));
                }
                let declared = ctx.client_capabilities().unwrap_or_default();
                match rounds::missing(&requests, &declared) {
                    // Asked on the call's stream, then the run goes on.
                    None => {
                        let responses = rounds::ask_on_stream(ctx, requests).await?;
                        from = gw
                            .engine
                            .continue_task(handle, rounds::answer_message(&responses, in_words))
                            .await
                            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
                        continue;
                    }
                    // The upstream asks what the caller cannot give: said so, with what is lacking;
                    // the run keeps waiting for an A2A or REST answer.
                    Some(lacking) if !in_words => {
                        let mut data = meta.0.clone();
                        data.insert("requiredCapabilities".into(), lacking);
                        let message = "the upstream asks the caller for input it did not declare it can give";
                        return Err(McpError::new(ErrorCode(-32021), message, Some(Value::Object(data))));
                    }
                    Some(_) => {}
                }
            }
            return Ok(Followed::Stopped(Box::new(snap)));
        }
    }

    /// A tool call's answer where following its run left it: the round to answer, the
    /// upstream's own answer, or the run's.
    fn tool_answer(&self, followed: Followed) -> Result<CallToolResponse, McpError> {
        let snap = match followed {
            Followed::Asked(r) => return Ok(r.into()),
            Followed::Stopped(snap) => *snap,
        };
        let meta = result_meta(&self.gw, &snap.task.id);
        match &snap.mcp {
            Some(McpAnswer::Result(answer)) => return Ok(relayed_result(answer, meta)?.into()),
            Some(McpAnswer::Error { code, message, data }) => {
                return Err(relayed_error(*code, message, data.as_ref(), meta));
            }
            None => {}
        }
        let state = &snap.task.status.state;
        let text = snap.task.status.message.as_ref().map(message_text).unwrap_or_default();
        let result = match state {
            TaskState::Completed => match snap.result {
                Some(Value::Object(o)) => CallToolResult::structured(Value::Object(o)),
                Some(other) => CallToolResult::structured(json!({ "result": other })),
                None => CallToolResult::success(vec![ContentBlock::text(if text.is_empty() {
                    "done".into()
                } else {
                    text
                })]),
            },
            TaskState::InputRequired | TaskState::AuthRequired => {
                // MCP has no way to answer here: the task stays open for A2A or the platform REST.
                let how = format!(
                    "the skill is waiting ({}): {text}. Continue the task {} over A2A (SendMessage with its taskId).",
                    state_name(state),
                    snap.task.id
                );
                CallToolResult::error(vec![ContentBlock::text(how)])
            }
            _ => {
                let why = snap.error.clone().unwrap_or(text);
                CallToolResult::error(vec![ContentBlock::text(format!("{}: {why}", state_name(state)))])
            }
        };
        Ok(result.with_meta(Some(meta)).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_goes_out_first_whatever_its_value_then_only_when_it_increases() {
        let mut gate = ProgressGate::default();
        let sent: Vec<f64> = [0.0, 0.0, 50.0, 40.0, 50.0, 100.0].into_iter().filter(|v| gate.admits(*v)).collect();
        assert_eq!(sent, [0.0, 50.0, 100.0]);
    }

    #[test]
    fn progress_carries_the_upstreams_numbers_and_names_only_other_stages() {
        let mcp = json!({ "stage": "count", "pct": 33, "message": "step 1", "raw": { "progress": 1.0, "total": 3.0 } });
        assert_eq!(progress_note(&mcp, "count"), (1.0, Some(3.0), "step 1".to_string()));
        let open = json!({ "stage": "count", "pct": 0, "message": "m", "raw": { "progress": 7.0 } });
        assert_eq!(progress_note(&open, "count"), (7.0, None, "m".to_string()));
        let demo = json!({ "stage": "step-1", "pct": 33, "message": "step 1 of 3 done" });
        assert_eq!(progress_note(&demo, "slow"), (33.0, Some(100.0), "step-1: step 1 of 3 done".to_string()));
    }

    fn ours() -> MetaObject {
        let mut m = MetaObject::new();
        m.0.insert("a2a-ledger/run".into(), json!("r1"));
        m
    }

    #[test]
    fn an_upstream_result_is_relayed_with_its_meta_and_ours_winning() {
        let answer = json!({ "content": [{ "type": "audio", "data": "AAEC", "mimeType": "audio/wav" }],
            "isError": true, "_meta": { "theirs": 1, "a2a-ledger/run": "forged" } });
        let r = relayed_result(&answer, ours()).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["content"], answer["content"]);
        assert_eq!(v["isError"], true);
        assert_eq!(v["_meta"], json!({ "theirs": 1, "a2a-ledger/run": "r1" }));
        let e = relayed_result(&json!({ "content": 3 }), ours()).unwrap_err();
        assert_eq!(e.code, ErrorCode::INTERNAL_ERROR);
    }

    #[test]
    fn an_upstream_error_keeps_its_code_and_data() {
        let data = json!({ "requiredCapabilities": { "sampling": {} } });
        let e = relayed_error(-32021, "needs sampling", Some(&data), ours());
        assert_eq!((e.code.0, e.message.as_ref()), (-32021, "needs sampling"));
        assert_eq!(e.data, Some(json!({ "requiredCapabilities": { "sampling": {} }, "a2a-ledger/run": "r1" })));
        assert_eq!(relayed_error(-1, "m", None, ours()).data, Some(json!({ "a2a-ledger/run": "r1" })));
        let e = relayed_error(-1, "m", Some(&json!("text")), ours());
        assert_eq!(e.data, Some(json!("text")), "data that is no object is left as it is");
    }
}
