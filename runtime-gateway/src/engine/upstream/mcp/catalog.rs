//! What an MCP upstream offers beside its tools: resources (listed, read, templates), prompts
//! (listed, got) and completion, and the server's capabilities as it declared them.
//!
//! Lists and completion are relayed and not recorded (discovery, like the Agent Card and
//! `tools/list`). A resource read or a prompt get is a run ([`McpServer::read_call`],
//! [`McpServer::prompt_call`], driven by `Engine::create_one_shot`): each returned content (each
//! resource's contents, each prompt message) is an artifact, and the answer is kept in the
//! outcome for MCP callers, as a tool result is.
//!
//! Routing: resource URIs are not prefixed (a relay keeps `test://static-text` as it is), so the
//! gateway learns which URIs a server serves from its `resources/list` and
//! `resources/templates/list` (templates matched as RFC 6570 expansions), kept until the server
//! announces `notifications/resources/list_changed` and learnt again when a URI is not among them.
//!
//! Logging: a server that declares `logging` is asked for every message (`debug`: per request in
//! `_meta["io.modelcontextprotocol/logLevel"]` over 2026-07-28, by `logging/setLevel` once per
//! connection over 2025-11-25), so the record of a call holds all it logged; the edge passes on
//! to each caller only what its own level admits. A `notifications/message` is the call's that
//! is in flight on the connection when it is the only one. rmcp 3.11 tags the server's requests
//! with the request whose stream carried them, but not its notifications, so with several calls
//! in flight nothing says whose a message is: it is then recorded nowhere and relayed to no one
//! (said on stderr), rather than put in a run it may not belong to. Routing by the carrying
//! request's id, as progress is routed by its token, needs that tag in rmcp.
//!
//! Subscriptions: callers watch URIs through [`McpServer::watch`]; the server is asked once per
//! URI however many callers watch it (`resources/subscribe` over a 2025-11-25 connection, one
//! `subscriptions/listen` stream naming every watched URI over 2026-07-28, opened again when the
//! set changes), and each `notifications/resources/updated` goes to the callers watching that URI
//! and to no one else. A watch ends when its guard is dropped (the caller unsubscribed, its
//! session closed, its listen stream ended); the last one for a URI asks the server to stop.

// Logging is deprecated by SEP-2577 (for a later protocol version); both generations served here
// still have it, and the gateway relays it.
#![allow(deprecated)]

use rmcp::model::{
    CompleteRequestParams, CompleteResult, GetPromptRequestParams, LoggingLevel, LoggingMessageNotificationParam,
    Prompt, ReadResourceRequestParams, Resource, ResourceTemplate, ServerCapabilities, ServerNotification,
    SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::MergedList;

use super::*;

/// A list of every page, with the cache hints of the pages merged (rmcp's `MergedList`, which
/// cannot be built outside rmcp).
#[derive(Debug)]
pub struct Listed<T> {
    /// The items, in the server's order.
    pub items: Vec<T>,
    /// Milliseconds until the earliest page expires; `None` when a page gave none.
    pub ttl_ms: Option<u64>,
    /// `private` when a page is; `None` when a page gave none.
    pub cache_scope: Option<rmcp::model::CacheScope>,
}

impl<T> Listed<T> {
    /// No items and no hints.
    pub fn empty() -> Listed<T> {
        Listed { items: Vec::new(), ttl_ms: None, cache_scope: None }
    }
}

impl<T> From<MergedList<T>> for Listed<T> {
    fn from(l: MergedList<T>) -> Listed<T> {
        Listed { items: l.items, ttl_ms: l.ttl_ms, cache_scope: l.cache_scope }
    }
}

/// What the gateway knows of one server's catalog, shared by its connections' handlers.
#[derive(Clone, Default)]
pub(super) struct Catalog(Arc<CatalogState>);

#[derive(Default)]
struct CatalogState {
    /// The server's capabilities, as its last connection declared them.
    capabilities: std::sync::Mutex<Option<ServerCapabilities>>,
    /// The URIs and URI templates it serves; `None` until learnt, and again once it announced a
    /// change.
    routes: std::sync::Mutex<Routes>,
    /// The calls in flight to the server, by a number of their own: where each one's updates go.
    in_flight: std::sync::Mutex<HashMap<u64, tokio::sync::mpsc::Sender<Update>>>,
    next_call: std::sync::atomic::AtomicU64,
    /// Who watches which URI: each watch's sender of updated URIs, by its number.
    watchers: std::sync::Mutex<HashMap<String, HashMap<u64, tokio::sync::mpsc::UnboundedSender<String>>>>,
    /// Over 2026-07-28, the task reading the one `subscriptions/listen` stream; a lock held
    /// while it is replaced, so the last stream opened names the latest set.
    listen: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A caller's watch of one URI, until dropped.
#[derive(Debug)]
pub struct Watch {
    server: McpServer,
    uri: String,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let last = {
            let mut w = Catalog::lock(&self.server.0.catalog.0.watchers);
            let left = w.get_mut(&self.uri).map(|m| {
                m.remove(&self.id);
                m.len()
            });
            if left == Some(0) {
                w.remove(&self.uri);
            }
            left == Some(0)
        };
        if !last {
            return;
        }
        // The server is told in the background: a dropped guard cannot wait.
        let (server, uri) = (self.server.clone(), self.uri.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = server.unwatch(&uri).await {
                    eprintln!("runtime-gateway: {}: ending the subscription to {uri}: {}", server.0.url, e.message);
                }
            });
        }
    }
}

/// A call in flight, until dropped.
pub(super) struct InFlight {
    catalog: Catalog,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        Catalog::lock(&self.catalog.0.in_flight).remove(&self.id);
    }
}

#[derive(Default)]
struct Routes {
    uris: Option<Vec<String>>,
    templates: Option<Vec<String>>,
}

impl Catalog {
    fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection opened: its server's declared capabilities.
    pub(super) fn connected(&self, c: &Connection) {
        if let Some(info) = c.peer_info() {
            *Self::lock(&self.0.capabilities) = Some(info.capabilities.clone());
        }
    }

    /// A call is in flight from now until the guard is dropped; `updates` is where its log
    /// messages go.
    pub(super) fn in_flight(&self, updates: tokio::sync::mpsc::Sender<Update>) -> InFlight {
        let id = self.0.next_call.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Catalog::lock(&self.0.in_flight).insert(id, updates);
        InFlight { catalog: self.clone(), id }
    }

    /// The level a call asks the server to log at, in its `_meta`: everything, when the server
    /// declares logging.
    pub(super) fn log_level(&self) -> Option<&'static str> {
        Self::lock(&self.0.capabilities).as_ref().and_then(|c| c.logging.as_ref()).map(|_| "debug")
    }

    /// A `notifications/message`: to the one call in flight, else to none (module doc).
    pub(super) async fn log(&self, p: LoggingMessageNotificationParam, server: &str) {
        let (to, in_flight) = {
            let calls = Self::lock(&self.0.in_flight);
            (if calls.len() == 1 { calls.values().next().cloned() } else { None }, calls.len())
        };
        let level = serde_json::to_value(p.level).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        match to {
            Some(tx) => {
                let _ = tx.send(Update::Log { level, logger: p.logger, data: p.data, pct: 0 }).await;
            }
            None => eprintln!(
                "runtime-gateway: {server}: a log message ({level}) came with {in_flight} calls in flight; \
                 not recorded, since nothing says which call it belongs to"
            ),
        }
    }

    /// `notifications/resources/updated`: to every watcher of the URI.
    pub(super) fn updated(&self, uri: &str) {
        if let Some(m) = Self::lock(&self.0.watchers).get(uri) {
            for tx in m.values() {
                let _ = tx.send(uri.to_string());
            }
        }
    }

    /// `notifications/resources/list_changed`: what was learnt is stale.
    pub(super) fn resources_changed(&self) {
        *Self::lock(&self.0.routes) = Routes::default();
    }

    fn serves(&self, uri: &str) -> Option<bool> {
        let r = Self::lock(&self.0.routes);
        let (uris, templates) = (r.uris.as_ref()?, r.templates.as_ref()?);
        Some(uris.iter().any(|u| u == uri) || templates.iter().any(|t| template_matches(t, uri)))
    }
}

/// A `ServiceError` as the caller's error: the server's own JSON-RPC error as it gave it, a
/// transport failure as an internal error naming the server.
pub fn relayed(server: &str, e: ServiceError) -> rmcp::ErrorData {
    match e {
        ServiceError::McpError(e) => e,
        other => rmcp::ErrorData::internal_error(format!("the MCP server {server}: {other}"), None),
    }
}

/// True for a connection of the 2025-11-25 generation (sessions, `resources/subscribe`).
fn legacy(c: &Connection) -> bool {
    c.peer_info().is_some_and(|i| i.protocol_version < ProtocolVersion::V_2026_07_28)
}

impl Inner {
    /// A connection opened: its server's capabilities kept, and a 2025-11-25 server that
    /// declares logging asked for every message (a 2026-07-28 one is asked per request).
    pub(super) async fn connected(&self, c: &Connection) {
        self.catalog.connected(c);
        if legacy(c) && self.catalog.log_level().is_some() {
            let asked = c.set_level(SetLevelRequestParams::new(LoggingLevel::Debug)).await;
            if let Err(e) = asked {
                eprintln!("runtime-gateway: {}: logging/setLevel: {e}", self.url);
            }
        }
    }
}

impl McpServer {
    /// The server's capabilities, once a connection to it opened.
    pub fn capabilities(&self) -> Option<ServerCapabilities> {
        Catalog::lock(&self.0.catalog.0.capabilities).clone()
    }

    /// Opens the connection if none is open, so that the server's capabilities are known.
    pub async fn open(&self) -> Result<(), String> {
        self.0.connection().await.map(|_| ())
    }

    /// How the server is named in messages.
    pub fn label(&self) -> &str {
        &self.0.url
    }

    /// The name a prompt of this server has at the gateway: the manifest's prefix and its own.
    pub fn prompt_id(&self, own: &str) -> String {
        format!("{}{own}", self.0.prefix)
    }

    /// The server's own name of the prompt the gateway calls `id`, if `id` carries the prefix.
    pub fn prompt_own_name<'a>(&self, id: &'a str) -> Option<&'a str> {
        id.strip_prefix(self.0.prefix.as_str())
    }

    fn declares(&self, pick: impl Fn(&ServerCapabilities) -> bool) -> bool {
        self.capabilities().as_ref().is_some_and(pick)
    }

    async fn peer(&self) -> Result<Arc<Connection>, rmcp::ErrorData> {
        self.0.connection().await.map_err(|e| rmcp::ErrorData::internal_error(e, None))
    }

    /// `resources/list`, every page; also what routes reads. Empty when the server declares no
    /// resources.
    pub async fn resources(&self) -> Result<Listed<Resource>, rmcp::ErrorData> {
        let conn = self.peer().await?;
        if !self.declares(|c| c.resources.is_some()) {
            return Ok(Listed::empty());
        }
        let list = conn.list_all_resources_with_cache_hint().await.map_err(|e| relayed(&self.0.url, e))?;
        Catalog::lock(&self.0.catalog.0.routes).uris = Some(list.items.iter().map(|r| r.uri.clone()).collect());
        Ok(list.into())
    }

    /// `resources/templates/list`, every page; also what routes reads.
    pub async fn resource_templates(&self) -> Result<Listed<ResourceTemplate>, rmcp::ErrorData> {
        let conn = self.peer().await?;
        if !self.declares(|c| c.resources.is_some()) {
            return Ok(Listed::empty());
        }
        let list = conn.list_all_resource_templates_with_cache_hint().await.map_err(|e| relayed(&self.0.url, e))?;
        Catalog::lock(&self.0.catalog.0.routes).templates =
            Some(list.items.iter().map(|t| t.uri_template.clone()).collect());
        Ok(list.into())
    }

    /// True when the server serves `uri`: one of its resources, or an expansion of one of its
    /// templates. Learns both lists when they are not known, or not known to hold `uri`.
    pub async fn serves(&self, uri: &str) -> bool {
        if self.0.catalog.serves(uri) == Some(true) {
            return true;
        }
        if self.resources().await.is_err() || self.resource_templates().await.is_err() {
            return false;
        }
        self.0.catalog.serves(uri) == Some(true)
    }

    /// `prompts/list`, every page, each prompt named as the gateway offers it (prefixed like
    /// tools); prompts whose prefixed name is no valid skill id are left out, as tools are.
    pub async fn prompts(&self) -> Result<Listed<Prompt>, rmcp::ErrorData> {
        let conn = self.peer().await?;
        if !self.declares(|c| c.prompts.is_some()) {
            return Ok(Listed::empty());
        }
        let mut list: Listed<Prompt> =
            conn.list_all_prompts_with_cache_hint().await.map_err(|e| relayed(&self.0.url, e))?.into();
        list.items.retain_mut(|p| {
            p.name = self.prompt_id(&p.name);
            valid_skill_id(&p.name)
        });
        Ok(list)
    }

    /// `completion/complete` as given (a prompt reference already named as the server knows it).
    pub async fn complete(&self, params: CompleteRequestParams) -> Result<CompleteResult, rmcp::ErrorData> {
        let conn = self.peer().await?;
        conn.complete(params).await.map_err(|e| relayed(&self.0.url, e))
    }

    /// Watches `uri` for the caller whose updates go to `updates`, asking the server for them
    /// when nobody watched it yet; answers once the server takes the subscription.
    pub async fn watch(
        &self,
        uri: &str,
        updates: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Result<Watch, rmcp::ErrorData> {
        let conn = self.peer().await?;
        if !self.declares(|c| c.resources.as_ref().is_some_and(|r| r.subscribe == Some(true))) {
            return Err(rmcp::ErrorData::invalid_request(
                format!("the MCP server {} offers no resource subscriptions", self.0.url),
                None,
            ));
        }
        let catalog = &self.0.catalog;
        let id = catalog.0.next_call.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let first = {
            let mut w = Catalog::lock(&catalog.0.watchers);
            let m = w.entry(uri.to_string()).or_default();
            m.insert(id, updates);
            m.len() == 1
        };
        let watch = Watch { server: self.clone(), uri: uri.to_string(), id };
        if first {
            // On failure the guard's drop takes the watch back.
            if legacy(&conn) {
                conn.subscribe(SubscribeRequestParams::new(uri)).await.map_err(|e| relayed(&self.0.url, e))?;
            } else {
                self.relisten(&conn).await?;
            }
        }
        Ok(watch)
    }

    /// The last watch of `uri` ended: the server is asked to stop.
    async fn unwatch(&self, uri: &str) -> Result<(), rmcp::ErrorData> {
        let conn = self.peer().await?;
        if legacy(&conn) {
            conn.unsubscribe(UnsubscribeRequestParams::new(uri)).await.map_err(|e| relayed(&self.0.url, e))
        } else {
            self.relisten(&conn).await
        }
    }

    /// Replaces the `subscriptions/listen` stream with one naming every watched URI (none when
    /// nothing is watched), once the server acknowledged it.
    async fn relisten(&self, conn: &Connection) -> Result<(), rmcp::ErrorData> {
        let mut slot = self.0.catalog.0.listen.lock().await;
        let uris: Vec<String> = Catalog::lock(&self.0.catalog.0.watchers).keys().cloned().collect();
        let next = if uris.is_empty() {
            None
        } else {
            let filter = SubscriptionFilter::builder().resource_subscriptions(uris).build();
            let mut sub = conn.listen(filter).await.map_err(|e| relayed(&self.0.url, e))?;
            let catalog = self.0.catalog.clone();
            Some(tokio::spawn(async move {
                while let Ok(Some(n)) = sub.next().await {
                    if let ServerNotification::ResourceUpdatedNotification(n) = n {
                        catalog.updated(&n.params.uri);
                    }
                }
            }))
        };
        if let Some(old) = std::mem::replace(&mut *slot, next) {
            old.abort();
        }
        Ok(())
    }

    /// The run of one `resources/read`.
    pub fn read_call(&self, params: ReadResourceRequestParams) -> Arc<dyn Upstream> {
        Arc::new(OneShotCall { server: self.0.clone(), request: OneShotRequest::Read(params) })
    }

    /// The run of one `prompts/get` (`params.name` as the server knows it).
    pub fn prompt_call(&self, params: GetPromptRequestParams) -> Arc<dyn Upstream> {
        Arc::new(OneShotCall { server: self.0.clone(), request: OneShotRequest::Prompt(params) })
    }
}

/// True when `uri` is an expansion of the RFC 6570 template `template`. A simple `{var}` expands
/// to unreserved characters and percent-escapes (level 1: no `/`, `?` or `#` in a value); an
/// operator expression (`{+var}`, `{#var}`, `{/var}`, `{?var}` …) to any characters.
pub fn template_matches(template: &str, uri: &str) -> bool {
    #[derive(Debug)]
    enum Piece<'a> {
        Literal(&'a str),
        Simple,
        Any,
    }
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Literal(&rest[..open]));
        }
        let Some(close) = rest[open..].find('}') else { return template == uri };
        let expr = &rest[open + 1..open + close];
        pieces.push(if expr.starts_with(|c: char| "+#./;?&".contains(c)) { Piece::Any } else { Piece::Simple });
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest));
    }
    fn unreserved(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"-._~%".contains(&b)
    }
    fn go(pieces: &[Piece<'_>], uri: &[u8]) -> bool {
        match pieces.split_first() {
            None => uri.is_empty(),
            Some((Piece::Literal(l), more)) => uri.starts_with(l.as_bytes()) && go(more, &uri[l.len()..]),
            Some((Piece::Simple, more)) => {
                let longest = uri.iter().take_while(|b| unreserved(**b)).count();
                (0..=longest).any(|n| go(more, &uri[n..]))
            }
            Some((Piece::Any, more)) => (0..=uri.len()).any(|n| go(more, &uri[n..])),
        }
    }
    go(&pieces, uri.as_bytes())
}

/// A `resources/read` or `prompts/get` as a run.
#[derive(Clone, Debug)]
enum OneShotRequest {
    Read(ReadResourceRequestParams),
    Prompt(GetPromptRequestParams),
}

struct OneShotCall {
    server: Arc<Inner>,
    request: OneShotRequest,
}

impl std::fmt::Debug for OneShotCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneShotCall").field("server", &self.server.url).field("request", &self.request).finish()
    }
}

impl Upstream for OneShotCall {
    fn run(&self, call: Call) -> BoxFuture<'static, ()> {
        let (server, request) = (self.server.clone(), self.request.clone());
        Box::pin(async move {
            let mut call = call;
            let outcome = server.one_shot(&mut call, request).await;
            call.send(Update::Done(outcome)).await;
        })
    }
}

impl Inner {
    /// Sends one read or prompt get, with the run in `_meta`, for at most the upstream's
    /// timeout; relays each content as an artifact and keeps the answer in the outcome. A server
    /// that answers `InputRequiredResult` is answered by the run's caller and asked again, round
    /// by round, as for a tool call (`rounds::next_round`).
    async fn one_shot(&self, call: &mut Call, mut request: OneShotRequest) -> Outcome {
        let what = match &request {
            OneShotRequest::Read(p) => format!("resource {:?}", p.uri),
            OneShotRequest::Prompt(p) => format!("prompt {:?}", p.name),
        };
        let mut meta = JsonObject::new();
        meta.insert("a2a-ledger/run".into(), json!(call.run));
        if let Some(tp) = &call.traceparent {
            meta.insert("traceparent".into(), json!(tp));
        }
        if let Some(level) = self.catalog.log_level() {
            meta.insert("io.modelcontextprotocol/logLevel".into(), json!(level));
        }
        let mut round = 0;
        let answer = loop {
            // The connection of each round, as for a tool call: a round may wait for a person
            // long enough for the first to close.
            let conn = match self.connection().await {
                Ok(c) => c,
                Err(e) => return Outcome::Failed(e),
            };
            let answer = match self.exchange_one(&conn, call, &request, &meta, &what).await {
                Ok(a) => a,
                Err(ended) => return ended,
            };
            let answer = match answer {
                Ok(Ok(r)) => r,
                Ok(Err(ServiceError::McpError(e))) => {
                    return Outcome::McpFailed {
                        error: format!("{}: {}", e.code.0, e.message),
                        answer: McpAnswer::Error { code: e.code.0, message: e.message.to_string(), data: e.data },
                    };
                }
                Ok(Err(e)) => return Outcome::Failed(format!("{what}: {e}")),
                Err(_) => {
                    self.drop_connection(&conn).await;
                    return Outcome::Failed(format!("the connection to {} closed while asking for {what}", self.url));
                }
            };
            // An input_required round (SEP-2322): asked of the run's caller, the answer and the
            // server's requestState (echoed unread) go in the next request.
            let ServerResult::InputRequiredResult(r) = answer else { break answer };
            let (given, state) = match super::rounds::next_round(call, &mut round, r, &what).await {
                Ok(next) => next,
                Err(ended) => return ended,
            };
            match &mut request {
                OneShotRequest::Read(p) => (p.input_responses, p.request_state) = (given, state),
                OneShotRequest::Prompt(p) => (p.input_responses, p.request_state) = (given, state),
            }
        };
        let artifacts: Vec<(String, Part, Option<Value>)> = match &answer {
            ServerResult::ReadResourceResult(r) => r
                .contents
                .iter()
                .map(|c| {
                    let v = serde_json::to_value(c).unwrap_or(Value::Null);
                    (v["uri"].as_str().unwrap_or_default().to_string(), resource_part(&v), None)
                })
                .collect(),
            ServerResult::GetPromptResult(r) => r
                .messages
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let block = serde_json::to_value(&m.content).unwrap_or(Value::Null);
                    let part = match content_part(&block) {
                        Content::Text(t) => Part::text(t).with_media_type("text/plain"),
                        Content::Part(p) => p,
                        // Kept whole, so nothing of the message is lost from the record.
                        Content::Unknown(_) => Part::data(block).with_media_type("application/json"),
                    };
                    (format!("message-{i}"), part, Some(json!(m.role)))
                })
                .collect(),
            other => {
                return Outcome::Failed(format!(
                    "{what}: answered with a result the gateway cannot relay: {}",
                    serde_json::to_string(other).unwrap_or_default().chars().take(200).collect::<String>()
                ));
            }
        };
        for (name, part, role) in artifacts {
            let artifact = Artifact {
                artifact_id: a2a::new_artifact_id(),
                name: Some(name),
                description: None,
                parts: vec![part],
                metadata: role.map(|r| [("role".to_string(), r)].into_iter().collect()),
                extensions: None,
            };
            call.send(Update::Artifact { artifact, append: false, last_chunk: true }).await;
        }
        let kept = without_own_meta(serde_json::to_value(&answer).unwrap_or(Value::Null));
        Outcome::Completed { result: None, message: None, mcp: Some(kept) }
    }

    /// Sends one read or prompt get and waits for the answer; `Err` is how the call ended
    /// meanwhile (canceled, timed out, not sent).
    async fn exchange_one(
        &self,
        conn: &Arc<Connection>,
        call: &Call,
        request: &OneShotRequest,
        meta: &JsonObject,
        what: &str,
    ) -> Result<super::Answer, Outcome> {
        let request = match request.clone() {
            OneShotRequest::Read(p) => ClientRequest::ReadResourceRequest(Request::new(p)),
            OneShotRequest::Prompt(p) => ClientRequest::GetPromptRequest(Request::new(p)),
        };
        let options = PeerRequestOptions::no_options().with_meta(RequestMetaObject(MetaObject(meta.clone())));
        let _in_flight = self.catalog.in_flight(call.updates.clone());
        let mut handle = match conn.send_request_with_option(request, options).await {
            Ok(h) => h,
            Err(e) => {
                self.drop_connection(conn).await;
                return Err(Outcome::Failed(format!("asking {} for {what}: {e}", self.url)));
            }
        };
        let mut cancel = call.cancel.clone();
        tokio::select! {
            r = &mut handle.rx => Ok(r),
            _ = super::super::canceled(&mut cancel) => {
                self.send_cancel(conn, handle, "canceled by the caller").await;
                Err(Outcome::Canceled)
            }
            _ = tokio::time::sleep(self.timeout) => {
                self.send_cancel(conn, handle, "timed out at the gateway").await;
                Err(Outcome::Failed(format!("{what} gave no answer in {} s", self.timeout.as_secs())))
            }
        }
    }
}

/// One resource contents (JSON) as an A2A part: its text, or its blob's bytes, with its type.
fn resource_part(v: &Value) -> Part {
    let media = v.get("mimeType").and_then(Value::as_str);
    let part = if let Some(t) = v.get("text").and_then(Value::as_str) {
        Part::text(t)
    } else if let Some(bytes) =
        v.get("blob").and_then(Value::as_str).and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
    {
        Part::raw(bytes)
    } else {
        return Part::data(v.clone()).with_media_type("application/json");
    };
    match media {
        Some(m) => part.with_media_type(m),
        None => part,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_update_goes_to_each_watch_of_its_uri_until_the_watch_is_dropped() {
        let server = McpServer::new("http://127.0.0.1:9/mcp".into(), BTreeMap::new(), 1, String::new());
        let catalog = server.0.catalog.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (other_tx, mut other_rx) = tokio::sync::mpsc::unbounded_channel();
        let watch = |uri: &str, id: u64, tx: &tokio::sync::mpsc::UnboundedSender<String>| {
            Catalog::lock(&catalog.0.watchers).entry(uri.to_string()).or_default().insert(id, tx.clone());
            Watch { server: server.clone(), uri: uri.to_string(), id }
        };
        let (first, second, other) = (watch("u", 1, &tx), watch("u", 2, &tx), watch("v", 3, &other_tx));
        catalog.updated("u");
        assert_eq!((rx.try_recv().ok(), rx.try_recv().ok()), (Some("u".into()), Some("u".into())), "one per watch");
        assert!(other_rx.try_recv().is_err(), "no update of a URI not watched");
        drop(first);
        catalog.updated("u");
        assert_eq!(rx.try_recv().ok(), Some("u".into()));
        assert!(rx.try_recv().is_err(), "the dropped watch gets nothing");
        drop(second);
        assert!(!Catalog::lock(&catalog.0.watchers).contains_key("u"), "the last watch of a URI takes it away");
        catalog.updated("v");
        assert_eq!(other_rx.try_recv().ok(), Some("v".into()));
        drop(other);
    }

    #[test]
    fn templates_match_their_expansions_only() {
        let t = "test://template/{id}/data";
        assert!(template_matches(t, "test://template/42/data"));
        assert!(template_matches(t, "test://template/a%2Fb/data"), "a percent-escaped slash is one value");
        assert!(!template_matches(t, "test://template/4/2/data"), "a simple value holds no slash");
        assert!(!template_matches(t, "test://template/42/data/more"));
        assert!(!template_matches(t, "test://other/42/data"));
        assert!(template_matches("file:///{+path}", "file:///a/b/c.txt"), "reserved expansion takes slashes");
        assert!(template_matches("test://x/{a}-{b}", "test://x/1-2"));
        assert!(template_matches("test://plain", "test://plain"));
        assert!(!template_matches("test://broken/{id", "test://broken/1"));
    }

    #[test]
    fn resource_contents_become_parts_with_their_bytes_and_type() {
        let text = resource_part(&json!({ "uri": "u", "mimeType": "text/plain", "text": "hi" }));
        assert_eq!(serde_json::to_value(&text).unwrap(), json!({ "text": "hi", "mediaType": "text/plain" }));
        let blob = resource_part(&json!({ "uri": "u", "mimeType": "image/png", "blob": "AAEC" }));
        assert_eq!(serde_json::to_value(&blob).unwrap()["mediaType"], "image/png");
        assert_eq!(serde_json::to_value(&blob).unwrap()["raw"], "AAEC");
        let odd = resource_part(&json!({ "uri": "u" }));
        assert_eq!(serde_json::to_value(&odd).unwrap()["data"], json!({ "uri": "u" }), "kept whole");
    }
}
