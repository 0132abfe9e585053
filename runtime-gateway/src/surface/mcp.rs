//! MCP at `/mcp`: every skill is also an MCP tool, one source of truth with the Agent Card.
//!
//! Served with the official `rmcp` over streamable HTTP: clients of protocol 2025-11-25
//! (`initialize`, `Mcp-Session-Id` sessions) and of 2026-07-28 (stateless, `server/discover`) on
//! the same endpoint. A tool call is a run like any other (`task.accepted` with protocol `mcp`),
//! sealed when it ends; skill progress becomes `notifications/progress`; a failed skill is a
//! result with `isError`; every result's `_meta` names the run and its receipt.
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
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, JsonObject, ListToolsResult,
    MetaObject, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::base::auth::Caller;
use crate::engine::buffer::{follow, state_name};
use crate::engine::manifest::SkillSpec;
use crate::engine::tasks::{NewTask, TaskError};
use crate::engine::upstream::message_text;
use crate::surface::a2a::data_message;
use crate::surface::state::Gateway;

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
    StreamableHttpService::new(move || Ok(McpGateway { gw: gw.clone() }), Arc::new(LocalSessionManager::default()), cfg)
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

impl McpGateway {
    fn tools(&self) -> Vec<Tool> {
        self.gw.engine.agents().iter().flat_map(|a| a.spec.skills.iter().map(|s| tool(&a.spec.name, s))).collect()
    }
}

fn caller_of(ctx: &RequestContext<RoleServer>) -> Option<Caller> {
    ctx.extensions.get::<http::request::Parts>()?.extensions.get::<Caller>().cloned()
}

fn result_meta(gw: &Gateway, run: &str) -> MetaObject {
    let mut meta = MetaObject::new();
    meta.0.insert("a2a-ledger/run".into(), json!(run));
    meta.0.insert("a2a-ledger/receipt".into(), json!(gw.engine.receipt_url(run)));
    meta
}

impl ServerHandler for McpGateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
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
        let skill = req.name.to_string();
        if gw.engine.skill(&skill).is_none() {
            return Err(McpError::invalid_params(format!("unknown tool {skill:?}; tools/list names them"), None));
        }
        let args = Value::Object(req.arguments.unwrap_or_default());
        let input_bytes = serde_json::to_vec(&args).expect("serialise");
        let created = gw
            .engine
            .create(NewTask {
                caller: caller.name,
                protocol: Protocol::Mcp,
                skill,
                input: args.clone(),
                input_bytes,
                message: data_message(&args),
                context_id: None,
                parent: caller.parent.clone(),
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
        let meta = result_meta(gw, &handle.id);
        let token = ctx.meta.get_progress_token();
        let mut events = Box::pin(follow(handle.clone(), 0, true));
        let mut last_progress = 0.0f64;
        loop {
            let ev = tokio::select! {
                ev = events.next() => ev,
                () = ctx.ct.cancelled() => {
                    // The client went away or cancelled: so does the run (it ends sealed as canceled).
                    let _ = gw.engine.cancel(&handle).await;
                    return Err(McpError::internal_error("cancelled", None));
                }
            };
            let Some((_, ev)) = ev else { break };
            if let (Some(token), StreamResponse::StatusUpdate(s)) = (&token, &*ev)
                && let Some(p) = s.metadata.as_ref().and_then(|m| m.get("progress"))
            {
                let pct = p["pct"].as_f64().unwrap_or(0.0);
                if pct > last_progress {
                    last_progress = pct;
                    let message =
                        format!("{}: {}", p["stage"].as_str().unwrap_or(""), p["message"].as_str().unwrap_or(""));
                    let n = ProgressNotificationParam::new(token.clone(), pct).with_total(100.0).with_message(message);
                    let _ = ctx.peer.notify_progress(n).await;
                }
            }
        }
        let snap = handle.snapshot();
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
                    handle.id
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
