//! What the `mcp` upstreams offer beside tools, at the edge: resources (listed, templates, read),
//! prompts (listed, got) and completion, merged across the manifest's MCP agents in manifest
//! order.
//!
//! Lists and completion are relayed unrecorded: discovery, like the card and `tools/list`, and
//! completion is advisory, asked per keystroke. A read or a prompt get is a run
//! (`Engine::create_one_shot`): `task.accepted` with protocol `mcp` and skill
//! `<agent>.resources.read` or the prompt's prefixed name, input payload the request's params
//! (without `_meta`), one `artifact.added` per content, the end, the seal; the answer goes back
//! as the upstream gave it with the run and receipt in its `_meta`, as for `tools/call`.
//!
//! Logging: an upstream's log messages during a run are recorded in it (`skill.progress` with
//! stage `log.<level>`) and passed on to the caller when its level admits them: the level of a
//! 2026-07-28 request's `_meta`, else the one its 2025-11-25 session set with
//! `logging/setLevel`; never to a caller that set none (SEP-2575).
//!
//! Subscriptions: a 2025-11-25 session's `resources/subscribe` and a 2026-07-28
//! `subscriptions/listen` stream's resource URIs are watches of the upstream that serves each URI
//! (one upstream subscription per URI, shared: `McpServer::watch`); updates go to the sessions and
//! streams that watch the URI, and a session's watches end with it.

// Logging is deprecated by SEP-2577 (for a later protocol version); both generations served here
// still have it, and the gateway relays it.
#![allow(deprecated)]

use a2a::TaskStatusUpdateEvent;
use ledger_core::Protocol;
use rmcp::model::{
    CacheScope, CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResponse, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, LoggingLevel, LoggingMessageNotificationParam, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, Reference, ResourceUpdatedNotificationParam, ServerCapabilities,
    SubscriptionFilter,
};
use rmcp::service::SubscriptionContext;
use serde_json::{Value, json};
use std::collections::HashMap;

use super::{Followed, McpError, McpGateway, RequestContext, RoleServer, caller_of, relayed_error, result_meta};
use crate::engine::buffer::{Snapshot, TaskHandle, state_name};
use crate::engine::tasks::{NewTask, OneShot, TaskError};
use crate::engine::upstream::mcp::{Listed, McpServer, Watch};
use crate::engine::upstream::{McpAnswer, message_text};
use crate::surface::a2a::data_message;
use crate::surface::state::Gateway;

/// What one caller session holds: the level it asked logs at, and the URIs it watches (dropped
/// with the session, which ends the watches).
#[derive(Debug, Default)]
pub struct Session {
    level: std::sync::Mutex<Option<LoggingLevel>>,
    watches: std::sync::Mutex<HashMap<String, Watch>>,
    /// Where the upstreams' updates for this session go: a task sends them on to the caller.
    updates: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl Session {
    /// The sender of this session's updates, with its task started on first use; the task
    /// ends when the session and its watches are gone.
    fn updates(&self, peer: &rmcp::Peer<RoleServer>) -> tokio::sync::mpsc::UnboundedSender<String> {
        self.updates
            .get_or_init(|| {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
                let peer = peer.clone();
                tokio::spawn(async move {
                    while let Some(uri) = rx.recv().await {
                        let _ = peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri)).await;
                    }
                });
                tx
            })
            .clone()
    }

    pub(super) fn set_level(&self, level: LoggingLevel) {
        *self.level.lock().unwrap_or_else(|p| p.into_inner()) = Some(level);
    }

    fn level(&self) -> Option<LoggingLevel> {
        *self.level.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Syslog severity, lowest first.
fn severity(l: LoggingLevel) -> u8 {
    match l {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// The log message a run's status event carries (`metadata.log`), if the caller's level admits
/// it: the request's own level, else its session's; none when neither is set.
fn admitted(s: &TaskStatusUpdateEvent, wanted: Option<LoggingLevel>) -> Option<LoggingMessageNotificationParam> {
    let log = s.metadata.as_ref()?.get("log")?;
    let level: LoggingLevel = serde_json::from_value(log["level"].clone()).ok()?;
    if severity(level) < severity(wanted?) {
        return None;
    }
    let mut n = LoggingMessageNotificationParam::new(level, log["data"].clone());
    n.logger = log["logger"].as_str().map(String::from);
    Some(n)
}

/// Passes a run's log message on to the caller, when its level admits it.
pub(super) async fn relay_log(session: &Session, ctx: &RequestContext<RoleServer>, s: &TaskStatusUpdateEvent) {
    if let Some(n) = admitted(s, ctx.meta.log_level().or_else(|| session.level())) {
        let _ = ctx.peer.notify_logging_message(n).await;
    }
}

/// The manifest's MCP agents in order: (agent index, agent name, server).
fn servers(gw: &Gateway) -> impl Iterator<Item = (usize, &str, &McpServer)> {
    gw.engine.agents().iter().enumerate().filter_map(|(i, a)| a.upstream.mcp().map(|m| (i, a.spec.name.as_str(), m)))
}

/// What the edge declares: tools always, and resources, prompts and completions when at least
/// one MCP upstream declared them (as known from its last connection).
pub(super) fn capabilities(gw: &Gateway) -> ServerCapabilities {
    let mut caps = ServerCapabilities::builder().enable_tools().build();
    for (_, _, server) in servers(gw) {
        let Some(theirs) = server.capabilities() else { continue };
        if let Some(r) = &theirs.resources {
            let ours = caps.resources.get_or_insert_with(Default::default);
            if r.subscribe == Some(true) {
                ours.subscribe = Some(true);
            }
        }
        if theirs.prompts.is_some() {
            caps.prompts.get_or_insert_with(Default::default);
        }
        if theirs.completions.is_some() {
            caps.completions.get_or_insert_with(Default::default);
        }
        if theirs.logging.is_some() {
            caps.logging.get_or_insert_with(Default::default);
        }
    }
    caps
}

/// Merges the servers' lists: items in manifest order, the smallest `ttlMs` (none when a server
/// gave none) and the narrowest `cacheScope` (`private` when any is, none when a server gave
/// none). A server that cannot be listed is left out, and said so on stderr.
async fn merged<T, F, Fut>(gw: &Gateway, what: &str, list: F) -> Listed<T>
where
    F: Fn(McpServer) -> Fut,
    Fut: Future<Output = Result<Listed<T>, McpError>>,
{
    let mut all = Listed::empty();
    let mut first = true;
    for (_, agent, server) in servers(gw) {
        let l = match list(server.clone()).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("runtime-gateway: agent {agent:?}: {what} of {}: {}", server.label(), e.message);
                continue;
            }
        };
        let hints = (l.ttl_ms, l.cache_scope);
        (all.ttl_ms, all.cache_scope) = if first { hints } else { merge_hints((all.ttl_ms, all.cache_scope), hints) };
        first = false;
        all.items.extend(l.items);
    }
    all
}

/// The cache hints of two lists merged into one: the smallest `ttlMs` and the narrowest
/// `cacheScope` (`private` over `public`); a list without a hint leaves the merged one without
/// it (its freshness, or who may cache it, is unknown), except that `private` always stands.
fn merge_hints(
    a: (Option<u64>, Option<CacheScope>),
    b: (Option<u64>, Option<CacheScope>),
) -> (Option<u64>, Option<CacheScope>) {
    let ttl = a.0.zip(b.0).map(|(x, y)| x.min(y));
    let scope = match (a.1, b.1) {
        (Some(CacheScope::Private), _) | (_, Some(CacheScope::Private)) => Some(CacheScope::Private),
        (Some(x), Some(_)) => Some(x),
        _ => None,
    };
    (ttl, scope)
}

pub(super) async fn list_resources(gw: &Gateway) -> ListResourcesResult {
    let l = merged(gw, "resources/list", |s| async move { s.resources().await }).await;
    let mut r = ListResourcesResult::with_all_items(l.items);
    (r.ttl_ms, r.cache_scope) = (l.ttl_ms, l.cache_scope);
    r
}

pub(super) async fn list_resource_templates(gw: &Gateway) -> ListResourceTemplatesResult {
    let l = merged(gw, "resources/templates/list", |s| async move { s.resource_templates().await }).await;
    let mut r = ListResourceTemplatesResult::with_all_items(l.items);
    (r.ttl_ms, r.cache_scope) = (l.ttl_ms, l.cache_scope);
    r
}

pub(super) async fn list_prompts(gw: &Gateway) -> ListPromptsResult {
    let l = merged(gw, "prompts/list", |s| async move { s.prompts().await }).await;
    let mut r = ListPromptsResult::with_all_items(l.items);
    (r.ttl_ms, r.cache_scope) = (l.ttl_ms, l.cache_scope);
    r
}

/// The error for a URI no upstream serves: -32002 (`resource not found`) to a 2025-11-25 caller,
/// -32602 (`invalid params`, SEP-2164) to a 2026-07-28 one; `data.uri` names it either way.
fn resource_not_found(uri: &str, ctx: &RequestContext<RoleServer>) -> McpError {
    let message = format!("Resource not found: {uri}");
    let data = Some(json!({ "uri": uri }));
    if ctx.protocol_version().is_some_and(|v| v < ProtocolVersion::V_2026_07_28) {
        McpError::resource_not_found(message, data)
    } else {
        McpError::invalid_params(message, data)
    }
}

/// The first MCP upstream, in manifest order, that serves `uri`.
async fn server_of(gw: &Gateway, uri: &str) -> Option<(usize, String, McpServer)> {
    for (i, agent, server) in servers(gw) {
        if server.serves(uri).await {
            return Some((i, agent.to_string(), server.clone()));
        }
    }
    None
}

/// `resources/subscribe` of a 2025-11-25 session: the session watches `uri` (again: no change).
pub(super) async fn subscribe(
    gw: &Gateway,
    session: &Session,
    uri: &str,
    ctx: &RequestContext<RoleServer>,
) -> Result<(), McpError> {
    if session.watches.lock().unwrap_or_else(|p| p.into_inner()).contains_key(uri) {
        return Ok(());
    }
    let Some((_, _, server)) = server_of(gw, uri).await else { return Err(resource_not_found(uri, ctx)) };
    let watch = server.watch(uri, session.updates(&ctx.peer)).await?;
    session.watches.lock().unwrap_or_else(|p| p.into_inner()).insert(uri.to_string(), watch);
    Ok(())
}

/// `resources/unsubscribe`: the session's watch of `uri` ends (none: nothing to do).
pub(super) fn unsubscribe(session: &Session, uri: &str) {
    let gone = session.watches.lock().unwrap_or_else(|p| p.into_inner()).remove(uri);
    drop(gone);
}

/// What `subscriptions/listen` accepts: resource updates of the URIs asked for (those no upstream
/// serves get none); the list-change categories are not relayed.
pub(super) fn accepted_filter(requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
    let uris = requested.resource_subscriptions.clone().unwrap_or_default();
    Some(SubscriptionFilter::builder().resource_subscriptions(uris).build())
}

/// One `subscriptions/listen` stream: watches its URIs until the caller ends it.
pub(super) async fn listen(gw: &Gateway, context: SubscriptionContext) -> Result<(), McpError> {
    let uris = context.sink().accepted().resource_subscriptions.clone().unwrap_or_default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut watches = Vec::new();
    for uri in &uris {
        if let Some((_, _, server)) = server_of(gw, uri).await {
            watches.push(server.watch(uri, tx.clone()).await?);
        }
    }
    drop(tx);
    loop {
        tokio::select! {
            uri = rx.recv() => match uri {
                Some(uri) => {
                    if context.sink().notify_resource_updated(uri).await.is_err() {
                        break;
                    }
                }
                None => {
                    // Nothing watched: the stream stays open, quiet, until the caller ends it.
                    context.cancelled().await;
                    break;
                }
            },
            () = context.cancelled() => break,
        }
    }
    drop(watches);
    Ok(())
}

/// The data of a run's input message: what the request that started it asked.
fn run_input(snap: &Snapshot) -> Option<&Value> {
    snap.task.history.as_ref()?.first()?.parts.iter().find_map(|p| match &p.content {
        a2a::PartContent::Data(v) => Some(v),
        _ => None,
    })
}

pub(super) async fn read_resource(
    mcp: &McpGateway,
    req: ReadResourceRequestParams,
    ctx: RequestContext<RoleServer>,
) -> Result<ReadResourceResponse, McpError> {
    let gw = &mcp.gw;
    let followed = if let Some(sealed) = req.request_state.clone() {
        // A retry of a round: the run it continues must be a read of this URI.
        let same = |h: &TaskHandle, snap: &Snapshot| {
            let uri = run_input(snap).and_then(|v| v["uri"].as_str());
            (!h.skill.ends_with(".resources.read") || uri != Some(req.uri.as_str()))
                .then(|| format!("it continues a run of {:?}, not a read of {:?}", h.skill, req.uri))
        };
        mcp.retry(&sealed, req.input_responses.clone(), same, &ctx, &caller(&ctx)?).await?
    } else {
        let Some((agent_index, agent, server)) = server_of(gw, &req.uri).await else {
            return Err(resource_not_found(&req.uri, &ctx));
        };
        let params = ReadResourceRequestParams::new(req.uri.clone());
        let input = json!({ "uri": req.uri });
        let call = OneShot { agent: agent_index, upstream: server.read_call(params) };
        run(mcp, format!("{agent}.resources.read"), input, call, &ctx).await?
    };
    match followed {
        Followed::Asked(r) => Ok(r.into()),
        Followed::Stopped(snap) => Ok(ReadResourceResponse::Complete(relayed_answer(stopped(gw, *snap)?)?)),
    }
}

pub(super) async fn get_prompt(
    mcp: &McpGateway,
    req: GetPromptRequestParams,
    ctx: RequestContext<RoleServer>,
) -> Result<GetPromptResponse, McpError> {
    let gw = &mcp.gw;
    let followed = if let Some(sealed) = req.request_state.clone() {
        // A retry of a round: the run it continues must be a get of this prompt.
        let same = |h: &TaskHandle, _: &Snapshot| {
            (h.skill != req.name).then(|| format!("it continues a run of {:?}, not a get of {:?}", h.skill, req.name))
        };
        mcp.retry(&sealed, req.input_responses.clone(), same, &ctx, &caller(&ctx)?).await?
    } else {
        let mut found = None;
        for (i, _, server) in servers(gw) {
            let Some(own) = server.prompt_own_name(&req.name) else { continue };
            if server.prompts().await.is_ok_and(|l| l.items.iter().any(|p| p.name == req.name)) {
                found = Some((i, server.clone(), own.to_string()));
                break;
            }
        }
        let Some((agent_index, server, own)) = found else {
            return Err(McpError::invalid_params(
                format!("unknown prompt {:?}; prompts/list names them", req.name),
                Some(json!({ "name": req.name })),
            ));
        };
        let mut input = json!({ "name": req.name });
        if let Some(args) = &req.arguments {
            input["arguments"] = Value::Object(args.clone());
        }
        let mut params = GetPromptRequestParams::new(own);
        params.arguments = req.arguments.clone();
        let call = OneShot { agent: agent_index, upstream: server.prompt_call(params) };
        run(mcp, req.name.clone(), input, call, &ctx).await?
    };
    match followed {
        Followed::Asked(r) => Ok(r.into()),
        Followed::Stopped(snap) => Ok(GetPromptResponse::Complete(relayed_answer(stopped(gw, *snap)?)?)),
    }
}

/// `completion/complete`, to the server of the prompt (named as the server knows it) or of the
/// resource template. Not recorded: completion is advisory and asked per keystroke.
pub(super) async fn complete(gw: &Gateway, mut req: CompleteRequestParams) -> Result<CompleteResult, McpError> {
    for (_, _, server) in servers(gw) {
        let ours = match &mut req.r#ref {
            Reference::Prompt(p) => match server.prompt_own_name(&p.name) {
                Some(own) if server.prompts().await.is_ok_and(|l| l.items.iter().any(|q| q.name == p.name)) => {
                    p.name = own.to_string();
                    true
                }
                _ => false,
            },
            Reference::Resource(r) => {
                server.resource_templates().await.is_ok_and(|l| l.items.iter().any(|t| t.uri_template == r.uri))
                    || server.serves(&r.uri).await
            }
            _ => false,
        };
        if ours {
            let mut req = req;
            req.meta = None;
            return server.complete(req).await;
        }
    }
    Err(McpError::invalid_params("no upstream offers what the completion refers to", None))
}

fn caller(ctx: &RequestContext<RoleServer>) -> Result<String, McpError> {
    caller_of(ctx).map(|c| c.name).ok_or_else(|| McpError::invalid_request("the caller is not authenticated", None))
}

/// A read or prompt get as a run: created, then followed as a tool call's run is (progress,
/// logs, input rounds; canceled when the caller cancels).
async fn run(
    mcp: &McpGateway,
    skill: String,
    input: Value,
    call: OneShot,
    ctx: &RequestContext<RoleServer>,
) -> Result<Followed, McpError> {
    let caller = caller_of(ctx).ok_or_else(|| McpError::invalid_request("the caller is not authenticated", None))?;
    let input_bytes = serde_json::to_vec(&input).expect("serialise");
    let mcp_caller = Some(super::mcp_caller(ctx, &caller.name));
    let name = caller.name.clone();
    let req = NewTask {
        caller: caller.name,
        protocol: Protocol::Mcp,
        skill,
        message: data_message(&input),
        input,
        input_bytes,
        context_id: None,
        parent: caller.parent.clone(),
        mcp_caller,
    };
    let handle = match mcp.gw.engine.create_one_shot(req, call).await {
        Ok(h) => h,
        Err(TaskError::RecordingUnavailable(m)) => {
            return Err(McpError::internal_error(
                format!("the request could not be recorded, so it was not made: {m}"),
                None,
            ));
        }
        Err(other) => return Err(McpError::invalid_params(other.to_string(), None)),
    };
    mcp.follow_rounds(&handle, 0, ctx, &name).await
}

/// What the upstream gave, with the run and receipt in `_meta`, for a run that stopped.
fn stopped(gw: &Gateway, snap: Snapshot) -> Result<Value, McpError> {
    let meta = result_meta(gw, &snap.task.id);
    match &snap.mcp {
        Some(McpAnswer::Result(answer)) => {
            let mut answer = answer.clone();
            let mut merged = answer.get("_meta").and_then(Value::as_object).cloned().unwrap_or_default();
            merged.extend(meta.0);
            answer["_meta"] = Value::Object(merged);
            Ok(answer)
        }
        Some(McpAnswer::Error { code, message, data }) => Err(relayed_error(*code, message, data.as_ref(), meta)),
        None => {
            let text = snap.task.status.message.as_ref().map(message_text).unwrap_or_default();
            let why = snap.error.clone().unwrap_or(text);
            let state = state_name(&snap.task.status.state);
            Err(McpError::internal_error(format!("{state}: {why}"), Some(Value::Object(meta.0))))
        }
    }
}

fn relayed_answer<T: serde::de::DeserializeOwned>(answer: Value) -> Result<T, McpError> {
    serde_json::from_value(answer)
        .map_err(|e| McpError::internal_error(format!("the upstream's answer could not be relayed: {e}"), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_lists_keep_the_smallest_ttl_and_the_narrowest_scope() {
        use CacheScope::{Private, Public};
        assert_eq!(merge_hints((Some(60_000), Some(Public)), (Some(5_000), Some(Public))), (Some(5_000), Some(Public)));
        assert_eq!(merge_hints((Some(1), Some(Public)), (Some(9), Some(Private))), (Some(1), Some(Private)));
        assert_eq!(merge_hints((Some(1), Some(Private)), (None, None)), (None, Some(Private)), "private stands");
        assert_eq!(merge_hints((Some(1), Some(Public)), (None, None)), (None, None), "unknown is not public");
    }

    #[test]
    fn a_log_message_goes_only_to_a_caller_whose_level_admits_it() {
        let ev = |level: &str| TaskStatusUpdateEvent {
            task_id: "t".into(),
            context_id: "c".into(),
            status: a2a::TaskStatus { state: a2a::TaskState::Working, message: None, timestamp: None },
            metadata: Some(
                [("log".to_string(), json!({ "level": level, "logger": "tool", "data": { "step": 1 } }))].into(),
            ),
        };
        let n = admitted(&ev("warning"), Some(LoggingLevel::Info)).expect("warning is above info");
        assert_eq!(
            (n.level, n.logger.as_deref(), &n.data),
            (LoggingLevel::Warning, Some("tool"), &json!({ "step": 1 }))
        );
        assert!(admitted(&ev("debug"), Some(LoggingLevel::Info)).is_none(), "below the level");
        assert!(admitted(&ev("info"), Some(LoggingLevel::Info)).is_some(), "at the level");
        assert!(admitted(&ev("emergency"), None).is_none(), "never without a level");
        let mut progress = ev("info");
        progress.metadata = Some([("progress".to_string(), json!({ "pct": 1 }))].into());
        assert!(admitted(&progress, Some(LoggingLevel::Debug)).is_none(), "only log events");
    }

    #[test]
    fn protocol_generations_order_by_date() {
        // resource_not_found relies on it; the codes are checked end to end in tests/mcp.rs.
        assert!(ProtocolVersion::V_2025_11_25 < ProtocolVersion::V_2026_07_28, "versions order by date");
    }
}
