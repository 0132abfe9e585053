//! An MCP server (streamable HTTP) as upstream: the gateway is its MCP client (`rmcp`). Its tools
//! are the agent's skills (learnt from `tools/list` at start when the manifest names none), and
//! each call is one `tools/call`: progress notifications become `skill.progress` (their own
//! numbers carried along for MCP callers), non-text content becomes artifacts, `isError` fails
//! the run, a JSON-RPC error fails it with its code, and a cancel is sent on as
//! `notifications/cancelled`. The result (or the error) itself is kept in the outcome, so an MCP
//! caller of the gateway gets it as the server gave it.
//!
//! One connection per upstream serves every call. It speaks 2026-07-28 (stateless) when the
//! server does and falls back to the 2025-11-25 handshake otherwise; a connection that closed
//! (the server restarted, the session expired) is replaced on the next call.
//!
//! A `stdio` upstream is the same client over a child process's stdin and stdout: the gateway
//! starts the command with only the manifest's environment, forwards each line of its stderr to
//! its own (prefixed with the command, the last lines kept for error messages), and starts it
//! again when it exits (at once when a call needs it, else by a supervisor with a growing pause).
//!
//! The run's grant reaches the tool in the request's `_meta` (`a2a-ledger/run`,
//! `a2a-ledger/grant`, `a2a-ledger/workspace`, `a2a-ledger/scope`), the same names the `a2a`
//! upstream puts in message metadata. The caller's credentials are never sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use a2a::{Artifact, Part};
use base64::Engine as _;
// Sampling and roots are deprecated by SEP-2577, but 2025-11-25 servers still ask for them and a
// relay must answer.
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ClientRequest, ElicitRequestParams,
    ElicitResult, Implementation, InputRequest, JsonObject, MetaObject, ProgressNotificationParam, ProgressToken,
    ProtocolVersion, Request, RequestMetaObject, ServerResult,
};
#[allow(deprecated)]
use rmcp::model::{CreateMessageRequestParams, CreateMessageResult, ListRootsResult};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestContext, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt as _, ErrorData as McpError, RoleClient};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{Call, McpAnswer, Outcome, Update, Upstream};

mod rounds;
use crate::base::BoxFuture;
use crate::engine::manifest::SkillSpec;
pub use rounds::{needs, responses};

mod catalog;
pub use catalog::{Listed, Watch, relayed, template_matches};

/// Routes progress notifications to the call whose token they carry. rmcp picks a request's
/// progress token when the request is sent, so a call can only subscribe after that; a quick
/// server's first notifications may arrive before, and wait here (briefly, boundedly) for it.
#[derive(Clone, Default)]
struct Progress(Arc<std::sync::Mutex<ProgressRoutes>>);

#[derive(Default)]
struct ProgressRoutes {
    calls: HashMap<ProgressToken, tokio::sync::mpsc::UnboundedSender<ProgressNotificationParam>>,
    early: std::collections::VecDeque<(std::time::Instant, ProgressNotificationParam)>,
}

/// Notifications kept for a call that has not subscribed yet, and for how long.
const EARLY_MAX: usize = 256;
const EARLY_FOR: Duration = Duration::from_secs(30);

impl Progress {
    fn routes(&self) -> std::sync::MutexGuard<'_, ProgressRoutes> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(&self, p: ProgressNotificationParam) {
        let mut r = self.routes();
        if let Some(tx) = r.calls.get(&p.progress_token) {
            let _ = tx.send(p);
            return;
        }
        while r.early.len() >= EARLY_MAX || r.early.front().is_some_and(|(at, _)| at.elapsed() > EARLY_FOR) {
            r.early.pop_front();
        }
        r.early.push_back((std::time::Instant::now(), p));
    }

    /// The call's notifications, including any that came before it asked.
    fn subscribe(&self, token: ProgressToken) -> ProgressSubscription {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut r = self.routes();
        r.early.retain(|(_, p)| {
            let mine = p.progress_token == token;
            if mine {
                let _ = tx.send(p.clone());
            }
            !mine
        });
        r.calls.insert(token.clone(), tx);
        ProgressSubscription { rx, token, progress: self.clone() }
    }
}

struct ProgressSubscription {
    rx: tokio::sync::mpsc::UnboundedReceiver<ProgressNotificationParam>,
    token: ProgressToken,
    progress: Progress,
}

impl Drop for ProgressSubscription {
    fn drop(&mut self) {
        self.progress.routes().calls.remove(&self.token);
    }
}

/// The client side of one upstream connection: it routes progress notifications, and the
/// server's own requests (sampling, elicitation, roots), to the call that they belong to.
#[derive(Clone, Default)]
struct Client {
    progress: Progress,
    back: rounds::BackChannel,
    /// What the connection declares: a caller's own capabilities for a session mirroring that
    /// caller's (`None`: the shared connection, which declares none and puts whatever the
    /// server asks to the run's caller).
    capabilities: Option<ClientCapabilities>,
    /// The server's catalog, which its announcements update.
    catalog: catalog::Catalog,
    /// How the server is named in messages.
    server: Arc<str>,
}

impl Client {
    /// Puts the server's `request` to its call's caller, unless this session's caller did not
    /// declare it can answer it.
    async fn ask(&self, cx: &RequestContext<RoleClient>, request: InputRequest) -> Result<Value, McpError> {
        if let Some(refused) = self.capabilities.as_ref().and_then(|c| rounds::undeclared(&request, c)) {
            return Err(refused);
        }
        self.back.ask(cx, request).await
    }
}

// Sampling and roots: deprecated by SEP-2577, still asked by 2025-11-25 servers.
#[allow(deprecated)]
impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            self.capabilities.clone().unwrap_or_default(),
            Implementation::new("a2a-ledger-gateway", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_progress(&self, p: ProgressNotificationParam, _cx: NotificationContext<RoleClient>) {
        self.progress.deliver(p);
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        cx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        let params = serde_json::to_value(params).ok();
        let asked = rounds::input_request("sampling/createMessage", params)?;
        answered(self.ask(&cx, asked).await?)
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        cx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let params = serde_json::to_value(params).ok();
        let asked = rounds::input_request("elicitation/create", params)?;
        answered(self.ask(&cx, asked).await?)
    }

    async fn list_roots(&self, cx: RequestContext<RoleClient>) -> Result<ListRootsResult, McpError> {
        answered(self.ask(&cx, rounds::input_request("roots/list", None)?).await?)
    }

    async fn on_resource_list_changed(&self, _cx: NotificationContext<RoleClient>) {
        self.catalog.resources_changed();
    }

    // Deprecated by SEP-2577 for a later protocol version; both generations served have it.
    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        p: rmcp::model::LoggingMessageNotificationParam,
        _cx: NotificationContext<RoleClient>,
    ) {
        self.catalog.log(p, &self.server).await;
    }

    async fn on_resource_updated(
        &self,
        p: rmcp::model::ResourceUpdatedNotificationParam,
        _cx: NotificationContext<RoleClient>,
    ) {
        self.catalog.updated(&p.uri);
    }
}

/// The caller's answer to a server's request, as the result the server expects.
fn answered<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, McpError> {
    serde_json::from_value(v)
        .map_err(|e| McpError::invalid_params(format!("the caller's answer does not fit: {e}"), None))
}

type Connection = RunningService<RoleClient, Client>;

/// A server's answer to one request: its result or JSON-RPC error, or the connection closed first.
type Answer = Result<Result<ServerResult, ServiceError>, tokio::sync::oneshot::error::RecvError>;

/// An upstream MCP server.
#[derive(Clone)]
pub struct McpServer(Arc<Inner>);

/// Where the server is.
enum Endpoint {
    /// Streamable HTTP at a URL, with extra headers.
    Http { url: String, headers: BTreeMap<String, String> },
    /// A local process over stdio, with its whole environment.
    Stdio { command: Vec<String>, env: BTreeMap<String, String> },
}

/// A session of the server mirroring a 2025-11-25 caller's session.
struct Mirror {
    conn: Arc<Connection>,
    /// When the caller last called through it.
    used: std::time::Instant,
}

/// A mirrored session unused this long is closed.
const MIRROR_IDLE: Duration = Duration::from_secs(600);

/// Most mirrored sessions per server (the least recently used is closed first).
const MIRRORS_MAX: usize = 256;

/// Lines of a stdio server's stderr kept for error messages.
const STDERR_TAIL: usize = 20;

struct Inner {
    /// How the server is named in messages: its URL, or its command.
    url: String,
    endpoint: Endpoint,
    /// The last lines a stdio server wrote to stderr.
    stderr: Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
    timeout: Duration,
    prefix: String,
    conn: Mutex<Option<Arc<Connection>>>,
    /// Sessions mirroring 2025-11-25 callers' sessions, by the caller's `Mcp-Session-Id`.
    sessions: Mutex<HashMap<String, Mirror>>,
    /// The last failed connection attempt, and why.
    failed: std::sync::Mutex<Option<(std::time::Instant, String)>>,
    /// Its capabilities and the resources it serves, shared with its connections' handlers.
    catalog: catalog::Catalog,
}

/// Longest the gateway waits to tell a server a call is abandoned.
const CANCEL_NOTICE: Duration = Duration::from_secs(5);

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers and the environment may hold credentials: only their names are shown.
        let names: Vec<&String> = match &self.0.endpoint {
            Endpoint::Http { headers, .. } => headers.keys().collect(),
            Endpoint::Stdio { env, .. } => env.keys().collect(),
        };
        f.debug_struct("McpServer")
            .field("server", &self.0.url)
            .field("headers_or_env", &names)
            .field("prefix", &self.0.prefix)
            .finish_non_exhaustive()
    }
}

impl McpServer {
    /// The server whose MCP endpoint is `url`; skill ids are `prefix` + tool name.
    pub fn new(url: String, headers: BTreeMap<String, String>, timeout_secs: u64, prefix: String) -> McpServer {
        McpServer::with(url.clone(), Endpoint::Http { url, headers }, timeout_secs, prefix)
    }

    /// The local server started as `command` with exactly the environment `env`, over stdio;
    /// skill ids are `prefix` + tool name. Supervised from now on when a tokio runtime runs: a
    /// server that exits is started again.
    pub fn stdio(command: Vec<String>, env: BTreeMap<String, String>, timeout_secs: u64, prefix: String) -> McpServer {
        let label = format!("the stdio MCP server `{}`", command.join(" "));
        let server = McpServer::with(label, Endpoint::Stdio { command, env }, timeout_secs, prefix);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&server.0);
            rt.spawn(Inner::supervise(weak));
        }
        server
    }

    fn with(url: String, endpoint: Endpoint, timeout_secs: u64, prefix: String) -> McpServer {
        McpServer(Arc::new(Inner {
            url,
            endpoint,
            stderr: Arc::default(),
            timeout: Duration::from_secs(timeout_secs),
            prefix,
            conn: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            failed: std::sync::Mutex::new(None),
            catalog: catalog::Catalog::default(),
        }))
    }
}

impl Inner {
    /// The open connection, or a new one when there is none or it closed.
    async fn connection(&self) -> Result<Arc<Connection>, String> {
        let asked = std::time::Instant::now();
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        // Calls that queued behind an attempt that failed meanwhile fail with it, instead of
        // each trying again in turn.
        if let Some((at, why)) = self.failed.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && *at >= asked
        {
            return Err(why.clone());
        }
        let made = self.connect().await;
        if let Ok(c) = &made {
            self.connected(c).await;
        }
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        match made {
            Ok(c) => {
                *failed = None;
                let c = Arc::new(c);
                *slot = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                *failed = Some((std::time::Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// Keeps a stdio server running while the upstream exists: a connection that closed (the
    /// process exited) is replaced, after 1 s, then a pause doubling to at most 30 s while
    /// starting it fails. Nothing is started before the first call or skills listing.
    async fn supervise(me: std::sync::Weak<Inner>) {
        let mut pause = Duration::from_secs(1);
        loop {
            tokio::time::sleep(pause).await;
            let Some(inner) = me.upgrade() else { return };
            let closed = inner.conn.lock().await.as_ref().is_some_and(|c| c.is_closed());
            if !closed {
                pause = Duration::from_secs(1);
                continue;
            }
            eprintln!("runtime-gateway: {} exited{}; starting it again", inner.url, inner.stderr_tail());
            match inner.connection().await {
                Ok(_) => pause = Duration::from_secs(1),
                Err(e) => {
                    eprintln!("runtime-gateway: {e}");
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// `: <last stderr lines>` of a stdio server, or nothing.
    fn stderr_tail(&self) -> String {
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        if tail.is_empty() {
            String::new()
        } else {
            format!(" (stderr: {})", tail.iter().cloned().collect::<Vec<_>>().join(" | "))
        }
    }

    async fn connect(&self) -> Result<Connection, String> {
        let lifecycle = ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        };
        self.connect_as(self.client(), lifecycle).await
    }

    /// The connection a call goes over: for a 2025-11-25 caller with a session, a session of its
    /// own at the server (its generation, its capabilities, so the server's requests back reach
    /// that caller), opened on its first call; else the shared one. A server that refuses the
    /// 2025-11-25 handshake is spoken to over the shared connection.
    async fn connection_for(&self, caller: Option<&super::McpCaller>) -> Result<Arc<Connection>, String> {
        let mirrored = caller.filter(|c| c.protocol.as_deref().is_some_and(|p| p < "2026-07-28"));
        let (Some(caller), Some(key), Endpoint::Http { .. }) =
            (mirrored, mirrored.and_then(|c| c.session.clone()), &self.endpoint)
        else {
            return self.connection().await;
        };
        let mut sessions = self.sessions.lock().await;
        if let Some(m) = sessions.get_mut(&key)
            && !m.conn.is_closed()
        {
            m.used = std::time::Instant::now();
            return Ok(m.conn.clone());
        }
        // Sessions whose caller has been quiet for long are closed (dropping a connection
        // closes it), and there are never more than MIRRORS_MAX.
        sessions.retain(|_, m| !m.conn.is_closed() && m.used.elapsed() < MIRROR_IDLE);
        while sessions.len() >= MIRRORS_MAX {
            let Some(oldest) = sessions.iter().min_by_key(|(_, m)| m.used).map(|(k, _)| k.clone()) else { break };
            sessions.remove(&oldest);
        }
        let client = Client { capabilities: Some(caller.capabilities.clone()), ..self.client() };
        match self.connect_as(client, ClientLifecycleMode::Initialize).await {
            Ok(c) => {
                self.connected(&c).await;
                let conn = Arc::new(c);
                sessions.insert(key, Mirror { conn: conn.clone(), used: std::time::Instant::now() });
                Ok(conn)
            }
            Err(e) => {
                drop(sessions);
                eprintln!("runtime-gateway: {e}; the caller's calls go over the shared connection");
                self.connection().await
            }
        }
    }

    async fn connect_as(&self, client: Client, lifecycle: ClientLifecycleMode) -> Result<Connection, String> {
        let limit = self.timeout.min(Duration::from_secs(30));
        let (url, headers) = match &self.endpoint {
            Endpoint::Http { url, headers } => (url, headers),
            Endpoint::Stdio { command, env } => {
                // Security rule: the process gets the manifest's environment and nothing else
                // (no gateway secrets, tokens or keys), and is killed with its transport.
                let mut cmd = tokio::process::Command::new(&command[0]);
                cmd.args(&command[1..]).env_clear().envs(env).kill_on_drop(true);
                let (transport, stderr) = rmcp::transport::TokioChildProcess::builder(cmd)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("starting {}: {e}", self.url))?;
                if let Some(stderr) = stderr {
                    let (tail, label) = (self.stderr.clone(), self.url.clone());
                    tokio::spawn(async move {
                        use tokio::io::AsyncBufReadExt as _;
                        let mut lines = tokio::io::BufReader::new(stderr).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            eprintln!("[{label}] {line}");
                            let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                            if t.len() == STDERR_TAIL {
                                t.pop_front();
                            }
                            t.push_back(line);
                        }
                    });
                }
                let c = tokio::time::timeout(limit, client.clone().serve_with_lifecycle(transport, lifecycle))
                    .await
                    .map_err(|_| format!("connecting to {}: no answer in time{}", self.url, self.stderr_tail()))?
                    .map_err(|e| format!("connecting to {}: {e}{}", self.url, self.stderr_tail()))?;
                return Ok(c);
            }
        };
        let mut cfg = StreamableHttpClientTransportConfig::with_uri(url.as_str()).reinit_on_expired_session(true);
        let mut custom = HashMap::new();
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("authorization")
                && let Some(token) = v.strip_prefix("Bearer ")
            {
                cfg = cfg.auth_header(token.to_string());
                continue;
            }
            let name = http::HeaderName::try_from(k.as_str()).map_err(|e| format!("upstream header {k:?}: {e}"))?;
            let value = http::HeaderValue::try_from(v.as_str()).map_err(|e| format!("upstream header {k:?}: {e}"))?;
            custom.insert(name, value);
        }
        let cfg = cfg.custom_headers(custom);
        let transport = StreamableHttpClientTransport::from_config(cfg);
        let c = tokio::time::timeout(limit, client.clone().serve_with_lifecycle(transport, lifecycle))
            .await
            .map_err(|_| format!("connecting to the MCP server {}: no answer in time", self.url))?
            .map_err(|e| format!("connecting to the MCP server {}: {e}", self.url))?;
        Ok(c)
    }

    /// The handler of a new connection.
    fn client(&self) -> Client {
        Client { catalog: self.catalog.clone(), server: self.url.as_str().into(), ..Client::default() }
    }

    /// Forgets a connection that failed, so that the next call opens a new one.
    async fn drop_connection(&self, failed: &Arc<Connection>) {
        let mut slot = self.conn.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
            *slot = None;
        }
    }

    /// Tells the server a call is abandoned, for a few seconds at most: a server that does not
    /// take the notice in time loses its connection instead of holding the run open.
    async fn send_cancel(&self, conn: &Arc<Connection>, handle: rmcp::service::RequestHandle<RoleClient>, why: &str) {
        let sent = tokio::time::timeout(CANCEL_NOTICE, handle.cancel(Some(why.into()))).await;
        if !matches!(sent, Ok(Ok(()))) {
            self.drop_connection(conn).await;
        }
    }

    fn tool_name<'a>(&self, skill: &'a str) -> &'a str {
        skill.strip_prefix(self.prefix.as_str()).unwrap_or(skill)
    }

    async fn call(&self, call: &mut Call) -> Outcome {
        let Value::Object(arguments) = call.input.clone() else {
            return Outcome::Rejected(format!(
                "an MCP tool takes a JSON object as input, not {}",
                match &call.input {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::String(_) => "a string",
                    Value::Array(_) => "an array",
                    Value::Object(_) => "an object",
                }
            ));
        };
        let tool = self.tool_name(&call.skill).to_string();
        let mut meta = JsonObject::new();
        meta.insert("a2a-ledger/run".into(), json!(call.run));
        if let Some(tp) = &call.traceparent {
            meta.insert("traceparent".into(), json!(tp));
        }
        if let Some(g) = &call.grant {
            // The run's workspace grant, meant for this tool.
            meta.insert("a2a-ledger/grant".into(), json!(g.token));
            meta.insert("a2a-ledger/workspace".into(), json!(g.workspace));
            meta.insert("a2a-ledger/scope".into(), json!(g.scope));
        }
        caller_meta(&mut meta, call.mcp_caller.as_ref());
        // A server that declares logging is asked for every level, over the caller's: the run
        // records all the tool logged, and the edge passes on what each caller's level admits.
        if let Some(level) = self.catalog.log_level() {
            meta.insert("io.modelcontextprotocol/logLevel".into(), json!(level));
        }
        let mut params = CallToolRequestParams::new(tool.clone()).with_arguments(arguments);
        let mut round = 0;
        loop {
            // The connection of each round: a round may wait for a person long enough for the
            // first to close, and a 2026-07-28 round carries all its state in the request.
            let conn = match self.connection_for(call.mcp_caller.as_ref()).await {
                Ok(c) => c,
                Err(e) => return Outcome::Failed(e),
            };
            let answer = match self.exchange(&conn, call, &tool, params.clone(), &meta).await {
                Ok(a) => a,
                Err(ended) => return ended,
            };
            // An input_required round (SEP-2322): the run asks its caller, and the answer goes
            // back with the server's requestState echoed as it gave it.
            let Ok(Ok(ServerResult::InputRequiredResult(r))) = answer else {
                return self.ended(call, &conn, &tool, answer).await;
            };
            match rounds::next_round(call, &mut round, r, &format!("tool {tool:?}")).await {
                Ok((given, state)) => (params.input_responses, params.request_state) = (given, state),
                Err(ended) => return ended,
            }
        }
    }

    /// Sends one `tools/call` and waits for its answer, relaying progress; `Err` is how the call
    /// ended meanwhile (canceled, timed out, not sent).
    async fn exchange(
        &self,
        conn: &Arc<Connection>,
        call: &mut Call,
        tool: &str,
        params: CallToolRequestParams,
        meta: &JsonObject,
    ) -> Result<Answer, Outcome> {
        let request = ClientRequest::CallToolRequest(Request::new(params));
        let options = PeerRequestOptions::no_options().with_meta(RequestMetaObject(MetaObject(meta.clone())));
        let _in_flight = self.catalog.in_flight(call.updates.clone());
        let mut handle = match conn.send_request_with_option(request, options).await {
            Ok(h) => h,
            Err(e) => {
                self.drop_connection(conn).await;
                return Err(Outcome::Failed(format!("calling tool {tool:?} on {}: {e}", self.url)));
            }
        };
        let mut progress = conn.service().progress.subscribe(handle.progress_token.clone());
        let mut back = conn.service().back.subscribe(handle.id.clone());
        let mut cancel = call.cancel.clone();
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = &mut handle.rx => return Ok(r),
                Some(p) = progress.rx.recv() => {
                    let pct = match p.total {
                        Some(t) if t > 0.0 => (p.progress / t * 100.0).clamp(0.0, 100.0) as u8,
                        _ => 0,
                    };
                    let message = p.message.unwrap_or_else(|| match p.total {
                        Some(t) => format!("{} of {}", p.progress, t),
                        None => format!("{}", p.progress),
                    });
                    let raw = Some((p.progress, p.total));
                    call.send(Update::Progress { stage: tool.to_string(), pct, message, raw }).await;
                }
                // The server asks the caller something on this call's stream (2025-11-25): a
                // round of the run; the caller's time to answer does not count against the tool.
                Some(asked) = back.rx.recv() => {
                    if let Err(ended) = rounds::answer_back(call, asked).await {
                        self.send_cancel(conn, handle, "canceled by the caller").await;
                        return Err(ended);
                    }
                    deadline.as_mut().reset(tokio::time::Instant::now() + self.timeout);
                }
                _ = super::canceled(&mut cancel) => {
                    self.send_cancel(conn, handle, "canceled by the caller").await;
                    return Err(Outcome::Canceled);
                }
                _ = &mut deadline => {
                    self.send_cancel(conn, handle, "timed out at the gateway").await;
                    return Err(Outcome::Failed(format!("tool {tool:?} gave no answer in {} s", self.timeout.as_secs())));
                }
            }
        }
    }

    /// How a call ends with the server's last answer.
    async fn ended(&self, call: &Call, conn: &Arc<Connection>, tool: &str, answer: Answer) -> Outcome {
        match answer {
            Ok(Ok(ServerResult::CallToolResult(r))) => self.outcome(call, tool, r).await,
            Ok(Ok(other)) => Outcome::Failed(format!(
                "tool {tool:?} answered with a result the gateway cannot relay: {}",
                serde_json::to_string(&other).unwrap_or_default().chars().take(200).collect::<String>()
            )),
            // The server's own JSON-RPC error (not one of the transport's): relayed to MCP callers
            // with its code and data, recorded with the code in `error`.
            Ok(Err(ServiceError::McpError(e))) => Outcome::McpFailed {
                error: format!("{}: {}", e.code.0, e.message),
                answer: McpAnswer::Error { code: e.code.0, message: e.message.to_string(), data: e.data },
            },
            Ok(Err(e)) => Outcome::Failed(format!("tool {tool:?}: {e}")),
            Err(_) => {
                self.drop_connection(conn).await;
                Outcome::Failed(format!(
                    "the connection to {} closed during the call of {tool:?}{}",
                    self.url,
                    self.stderr_tail()
                ))
            }
        }
    }

    /// Relays a tool result: non-text content as artifacts, then the outcome, which keeps the
    /// result itself for MCP callers.
    async fn outcome(&self, call: &Call, tool: &str, r: CallToolResult) -> Outcome {
        let answer = answer_json(&r);
        let mut texts = Vec::new();
        for (i, block) in r.content.iter().enumerate() {
            let block = serde_json::to_value(block).unwrap_or(Value::Null);
            match content_part(&block) {
                Content::Text(t) => texts.push(t),
                Content::Part(part) => {
                    let artifact = Artifact {
                        artifact_id: a2a::new_artifact_id(),
                        name: Some(format!("{tool}-{i}")),
                        description: None,
                        parts: vec![part],
                        metadata: None,
                        extensions: None,
                    };
                    call.send(Update::Artifact { artifact, append: false, last_chunk: true }).await;
                }
                Content::Unknown(kind) => texts.push(format!("[content of type {kind:?} not relayed]")),
            }
        }
        let text = texts.join("\n");
        if r.is_error == Some(true) {
            let error = if text.is_empty() { format!("tool {tool:?} reported an error") } else { text };
            return Outcome::McpFailed { error, answer: McpAnswer::Result(answer) };
        }
        // The structured result when the tool gives one, else its text; a tool that answered
        // only with artifacts has no result.
        let result = match r.structured_content {
            Some(v) => Some(v),
            None if !text.is_empty() => Some(json!({ "text": text })),
            None => None,
        };
        Outcome::Completed { result, message: (!text.is_empty()).then_some(text), mcp: Some(answer) }
    }
}

/// The caller's declarations in a request's `_meta` (2026-07-28, SEP-2575): rmcp writes the
/// connection's own `clientCapabilities` first and extends with these, so the caller's win and
/// the upstream checks the capabilities of whoever called (an A2A or REST caller declares
/// none). Its log level goes along only when it asked for one.
fn caller_meta(meta: &mut JsonObject, caller: Option<&super::McpCaller>) {
    let capabilities = caller.map(|c| c.capabilities.clone()).unwrap_or_default();
    meta.insert(
        "io.modelcontextprotocol/clientCapabilities".into(),
        serde_json::to_value(capabilities).unwrap_or_else(|_| json!({})),
    );
    if let Some(level) = caller.and_then(|c| c.log_level.as_ref()) {
        meta.insert("io.modelcontextprotocol/logLevel".into(), json!(level));
    }
}

/// A tool result as the outcome keeps it: as the server sent it, except the gateway's own
/// `a2a-ledger/*` keys in `_meta` (the gateway's namespace, which its answer to its caller fills;
/// a server echoing the run's grant there must not have it stored), and `_meta` left out when
/// nothing else is in it.
fn answer_json(r: &CallToolResult) -> Value {
    without_own_meta(serde_json::to_value(r).unwrap_or(Value::Null))
}

/// An MCP result (JSON) without the gateway's own `a2a-ledger/*` keys in its `_meta`, and
/// `_meta` left out when nothing else is in it.
fn without_own_meta(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        let empty = match o.get_mut("_meta") {
            Some(Value::Object(m)) => {
                m.retain(|k, _| !k.starts_with("a2a-ledger/"));
                m.is_empty()
            }
            _ => false,
        };
        if empty {
            o.remove("_meta");
        }
    }
    v
}

enum Content {
    Text(String),
    Part(Part),
    Unknown(String),
}

/// One MCP content block as text or an A2A part.
fn content_part(block: &Value) -> Content {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or_default();
    let media = |v: &Value| v.get("mimeType").and_then(Value::as_str).map(String::from);
    let with_media = |p: Part, m: Option<String>| match m {
        Some(m) => p.with_media_type(m),
        None => p,
    };
    let blob = |b64: &str| base64::engine::general_purpose::STANDARD.decode(b64).ok();
    match kind {
        "text" => Content::Text(block.get("text").and_then(Value::as_str).unwrap_or_default().to_string()),
        "image" | "audio" => match block.get("data").and_then(Value::as_str).and_then(blob) {
            Some(bytes) => Content::Part(with_media(Part::raw(bytes), media(block))),
            None => Content::Unknown(format!("{kind} without base64 data")),
        },
        "resource" => {
            let r = &block["resource"];
            if let Some(t) = r.get("text").and_then(Value::as_str) {
                Content::Part(with_media(Part::text(t), media(r)))
            } else if let Some(bytes) = r.get("blob").and_then(Value::as_str).and_then(blob) {
                Content::Part(with_media(Part::raw(bytes), media(r)))
            } else {
                Content::Unknown("resource without text or blob".into())
            }
        }
        "resource_link" => match block.get("uri").and_then(Value::as_str) {
            Some(uri) => Content::Part(with_media(Part::url(uri), media(block))),
            None => Content::Unknown("resource_link without uri".into()),
        },
        other => Content::Unknown(other.to_string()),
    }
}

/// A tool name usable as a skill id: 1..64 characters of `[A-Za-z0-9._-]` with the prefix.
fn valid_skill_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Upstream for McpServer {
    fn run(&self, mut call: Call) -> BoxFuture<'static, ()> {
        let this = self.0.clone();
        Box::pin(async move {
            let outcome = this.call(&mut call).await;
            call.send(Update::Done(outcome)).await;
        })
    }

    fn skills(&self) -> BoxFuture<'_, Result<Vec<SkillSpec>, String>> {
        let this = &self.0;
        Box::pin(async move {
            let conn = this.connection().await?;
            let tools = conn.list_all_tools().await.map_err(|e| format!("listing the tools of {}: {e}", this.url))?;
            let mut skills = Vec::new();
            for t in tools {
                let id = format!("{}{}", this.prefix, t.name);
                if !valid_skill_id(&id) {
                    eprintln!(
                        "mcp upstream {}: tool {:?} is left out: {id:?} is not a valid skill id",
                        this.url, t.name
                    );
                    continue;
                }
                let title = t.title.clone().or_else(|| t.annotations.as_ref().and_then(|a| a.title.clone()));
                skills.push(SkillSpec {
                    id,
                    name: title.unwrap_or_else(|| t.name.to_string()),
                    description: t.description.as_deref().unwrap_or_default().to_string(),
                    tags: vec!["mcp".into()],
                    examples: Vec::new(),
                    input_schema: Some(Value::Object((*t.input_schema).clone())),
                    output_schema: t.output_schema.as_ref().map(|o| Value::Object((**o).clone())),
                    workspace: None,
                });
            }
            Ok(skills)
        })
    }

    fn mcp(&self) -> Option<&McpServer> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(token: i64, progress: f64) -> ProgressNotificationParam {
        serde_json::from_value(json!({ "progressToken": token, "progress": progress, "total": 3.0 })).unwrap()
    }

    #[test]
    fn progress_that_comes_before_its_call_subscribes_is_kept_for_it() {
        let p = Progress::default();
        p.deliver(note(1, 1.0));
        p.deliver(note(2, 1.0));
        let mut sub = p.subscribe(note(1, 0.0).progress_token);
        p.deliver(note(1, 2.0));
        assert_eq!(sub.rx.try_recv().unwrap().progress, 1.0);
        assert_eq!(sub.rx.try_recv().unwrap().progress, 2.0);
        assert!(sub.rx.try_recv().is_err());
        drop(sub);
        assert!(p.routes().calls.is_empty(), "a finished call unsubscribes");
        assert_eq!(p.routes().early.len(), 1, "token 2's note waits for its call");
        for i in 0..2 * EARLY_MAX {
            p.deliver(note(100 + i as i64, 0.0));
        }
        assert_eq!(p.routes().early.len(), EARLY_MAX, "the early buffer is bounded");
    }

    #[test]
    fn the_callers_declarations_go_in_the_requests_meta() {
        let mut meta = JsonObject::new();
        caller_meta(&mut meta, None);
        assert_eq!(Value::Object(meta), json!({ "io.modelcontextprotocol/clientCapabilities": {} }));
        let caller = super::super::McpCaller {
            capabilities: serde_json::from_value(json!({ "sampling": {}, "elicitation": { "form": {} } })).unwrap(),
            log_level: Some("debug".into()),
            protocol: Some("2026-07-28".into()),
            session: None,
        };
        let mut meta = JsonObject::new();
        caller_meta(&mut meta, Some(&caller));
        assert_eq!(
            Value::Object(meta),
            json!({ "io.modelcontextprotocol/clientCapabilities": { "sampling": {}, "elicitation": { "form": {} } },
                    "io.modelcontextprotocol/logLevel": "debug" })
        );
    }

    #[test]
    fn a_result_is_kept_as_given_without_the_gateways_own_meta_keys() {
        let given = json!({ "content": [{ "type": "text", "text": "hi" }], "structuredContent": { "a": 1 },
            "_meta": { "a2a-ledger/grant": "secret", "trace": "t1" } });
        let r: CallToolResult = serde_json::from_value(given).unwrap();
        let kept = answer_json(&r);
        assert_eq!(kept["content"], json!([{ "type": "text", "text": "hi" }]));
        assert_eq!(kept["structuredContent"], json!({ "a": 1 }));
        assert_eq!(kept["_meta"], json!({ "trace": "t1" }));
        let r: CallToolResult =
            serde_json::from_value(json!({ "content": [], "_meta": { "a2a-ledger/run": "r" } })).unwrap();
        assert!(answer_json(&r).get("_meta").is_none(), "nothing else in _meta: left out");
    }
}
