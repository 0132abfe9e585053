//! An A2A 1.0 agent as upstream: the gateway is its JSON-RPC client. It sends each call with
//! `SendStreamingMessage`, follows the stream and relays status and artifact updates, answers
//! `input_required` with the caller's next message on the same upstream task, and forwards a
//! cancel as `CancelTask`.

use std::collections::BTreeMap;
use std::time::Duration;

use a2a::{JsonRpcRequest, Message, Role, StreamResponse, TaskState};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{Call, Outcome, Update, Upstream, message_text};
use crate::base::BoxFuture;

/// An upstream A2A agent.
#[derive(Debug, Clone)]
pub struct A2aAgent {
    client: reqwest::Client,
    base: String,
    headers: BTreeMap<String, String>,
    timeout: Duration,
    endpoint: std::sync::Arc<OnceCell<String>>,
    /// The upstream's own context id for each of our context ids (the most recent ones), so a
    /// new task in a context continues the upstream's conversation.
    contexts: std::sync::Arc<std::sync::Mutex<lru::LruCache<String, String>>>,
}

/// Contexts remembered per upstream agent.
const CONTEXTS: usize = 4096;

/// Server-sent events parsed from a byte stream: each item is one event's `data`.
pub struct SseData<S> {
    inner: S,
    buf: Vec<u8>,
    data: Vec<u8>,
}

impl<S> std::fmt::Debug for SseData<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseData").finish_non_exhaustive()
    }
}

impl<S, E> SseData<S>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    /// Parses `inner`.
    pub fn new(inner: S) -> SseData<S> {
        SseData { inner, buf: Vec::new(), data: Vec::new() }
    }

    /// The next event's data, `Ok(None)` at the end of the stream.
    pub async fn next_data(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            while let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.is_empty() {
                    if !self.data.is_empty() {
                        let d = std::mem::take(&mut self.data);
                        return Ok(Some(d));
                    }
                    continue;
                }
                if let Some(rest) = line.strip_prefix(b"data:") {
                    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                    if !self.data.is_empty() {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(rest);
                }
                // Comments (":"), `event:`, `id:` and `retry:` lines carry nothing we need.
            }
            if self.buf.len() > 16 << 20 {
                return Err("an event of the stream is larger than 16 MiB".into());
            }
            match self.inner.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(format!("reading the stream: {e}")),
                None if self.data.is_empty() => return Ok(None),
                None => return Ok(Some(std::mem::take(&mut self.data))),
            }
        }
    }
}

impl A2aAgent {
    /// The agent whose card is under `base`.
    pub fn new(
        client: reqwest::Client,
        base: String,
        headers: BTreeMap<String, String>,
        timeout_secs: u64,
    ) -> A2aAgent {
        A2aAgent {
            client,
            base,
            headers,
            timeout: Duration::from_secs(timeout_secs),
            endpoint: std::sync::Arc::new(OnceCell::new()),
            contexts: std::sync::Arc::new(std::sync::Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(CONTEXTS).expect("not zero"),
            ))),
        }
    }

    fn request(&self, url: &str) -> reqwest::RequestBuilder {
        let mut r = self.client.post(url).header("A2A-Version", a2a::VERSION);
        for (k, v) in &self.headers {
            r = r.header(k, v);
        }
        r
    }

    /// Reads the upstream's card.
    pub async fn card(&self) -> Result<a2a::AgentCard, String> {
        let url = format!("{}/.well-known/agent-card.json", self.base.trim_end_matches('/'));
        let mut r = self.client.get(&url).timeout(Duration::from_secs(10));
        for (k, v) in &self.headers {
            r = r.header(k, v);
        }
        let resp = r.send().await.map_err(|e| format!("fetching the upstream card {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("the upstream card {url} answered {}", resp.status()));
        }
        resp.json().await.map_err(|e| format!("the upstream card {url} is not an A2A 1.0 Agent Card: {e}"))
    }

    /// The JSON-RPC URL of the upstream, read once from its card.
    async fn endpoint(&self) -> Result<String, String> {
        self.endpoint
            .get_or_try_init(|| async {
                let card = self.card().await?;
                card.supported_interfaces
                    .iter()
                    .find(|i| i.protocol_binding.eq_ignore_ascii_case(a2a::TRANSPORT_PROTOCOL_JSONRPC))
                    .map(|i| i.url.clone())
                    .ok_or_else(|| format!("the upstream agent {:?} offers no JSONRPC interface", card.name))
            })
            .await
            .cloned()
    }

    async fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let url = self.endpoint().await?;
        let req = JsonRpcRequest::new(a2a::JsonRpcId::String(a2a::new_message_id()), method, Some(params));
        let resp = self
            .request(&url)
            .timeout(Duration::from_secs(30))
            .json(&req)
            .send()
            .await
            .map_err(|e| format!("{method} to the upstream: {e}"))?;
        let body: a2a::JsonRpcResponse = resp.json().await.map_err(|e| format!("{method}: bad answer: {e}"))?;
        match (body.result, body.error) {
            (_, Some(e)) => Err(format!("{method}: upstream error {}: {}", e.code, e.message)),
            (Some(r), None) => Ok(r),
            (None, None) => Err(format!("{method}: upstream answered neither result nor error")),
        }
    }

    /// Sends `message` as a streaming call and relays the stream. Returns the outcome, or
    /// `Ok(None)` when the task is interrupted (input or auth required) and waits for the caller.
    async fn stream(
        &self,
        call: &Call,
        message: Message,
        upstream_task: &mut Option<(String, String)>,
    ) -> Result<Option<Outcome>, String> {
        let url = self.endpoint().await?;
        let req = JsonRpcRequest::new(
            a2a::JsonRpcId::String(a2a::new_message_id()),
            a2a::methods::SEND_STREAMING_MESSAGE,
            Some(json!({ "message": message })),
        );
        let mut r = self.request(&url).timeout(self.timeout).header("Accept", "text/event-stream").json(&req);
        if let Some(tp) = &call.traceparent {
            r = r.header("traceparent", tp);
        }
        let resp = r.send().await.map_err(|e| format!("calling the upstream agent: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("the upstream agent answered {}", resp.status()));
        }
        let mut events = SseData::new(resp.bytes_stream());
        let mut interrupted = false;
        while let Some(data) = events.next_data().await? {
            let rpc: a2a::JsonRpcResponse = serde_json::from_slice(&data)
                .map_err(|e| format!("the upstream sent an event that is not JSON-RPC: {e}"))?;
            if let Some(e) = rpc.error {
                return Ok(Some(Outcome::Failed(format!("upstream error {}: {}", e.code, e.message))));
            }
            let event: StreamResponse = serde_json::from_value(rpc.result.unwrap_or_default())
                .map_err(|e| format!("the upstream sent an event that is not an A2A StreamResponse: {e}"))?;
            let (state, status_message) = match event {
                StreamResponse::Task(t) => {
                    *upstream_task = Some((t.id.clone(), t.context_id.clone()));
                    (t.status.state, t.status.message)
                }
                StreamResponse::StatusUpdate(s) => {
                    *upstream_task = Some((s.task_id.clone(), s.context_id.clone()));
                    (s.status.state, s.status.message)
                }
                StreamResponse::ArtifactUpdate(a) => {
                    call.send(Update::Artifact {
                        artifact: a.artifact,
                        append: a.append.unwrap_or(false),
                        last_chunk: a.last_chunk.unwrap_or(true),
                    })
                    .await;
                    continue;
                }
                StreamResponse::Message(m) => {
                    return Ok(Some(Outcome::Completed { result: None, message: Some(message_text(&m)) }));
                }
            };
            let text = status_message.as_ref().map(message_text).filter(|t| !t.is_empty());
            match state {
                TaskState::Submitted | TaskState::Unspecified => {}
                TaskState::Working => {
                    call.send(Update::Working(text)).await;
                }
                TaskState::InputRequired => {
                    call.send(Update::InputRequired(text.unwrap_or_else(|| "input required".into()))).await;
                    interrupted = true;
                }
                TaskState::AuthRequired => {
                    call.send(Update::AuthRequired(text.unwrap_or_else(|| "authorization required".into()))).await;
                    interrupted = true;
                }
                TaskState::Completed => return Ok(Some(Outcome::Completed { result: None, message: text })),
                TaskState::Failed => {
                    return Ok(Some(Outcome::Failed(text.unwrap_or_else(|| "the upstream task failed".into()))));
                }
                TaskState::Canceled => return Ok(Some(Outcome::Canceled)),
                TaskState::Rejected => {
                    return Ok(Some(Outcome::Rejected(
                        text.unwrap_or_else(|| "the upstream agent rejected the task".into()),
                    )));
                }
            }
        }
        if interrupted {
            return Ok(None);
        }
        // The stream ended early: ask for the task's state.
        let Some((id, _)) = upstream_task.clone() else {
            return Err("the upstream stream ended before it named a task".into());
        };
        let t: a2a::Task = serde_json::from_value(self.rpc(a2a::methods::GET_TASK, json!({ "id": id })).await?)
            .map_err(|e| format!("GetTask: {e}"))?;
        Ok(match t.status.state {
            TaskState::Completed => Some(Outcome::Completed { result: None, message: None }),
            TaskState::Canceled => Some(Outcome::Canceled),
            TaskState::Rejected => Some(Outcome::Rejected("the upstream agent rejected the task".into())),
            TaskState::InputRequired | TaskState::AuthRequired => None,
            s => Some(Outcome::Failed(format!("the upstream stream ended with the task in state {s:?}"))),
        })
    }

    async fn drive(&self, call: &mut Call) -> Outcome {
        let mut upstream_task: Option<(String, String)> = None;
        // The upstream gets the caller's message content, under fresh ids of its own.
        let mut message = Message::new(Role::User, call.message.parts.clone());
        message.metadata = call.message.metadata.clone();
        message.context_id = self.contexts.lock().unwrap_or_else(|p| p.into_inner()).get(&call.context_id).cloned();
        if let Some(g) = &call.grant {
            // The run's workspace grant, meant for this agent.
            let meta = message.metadata.get_or_insert_with(Default::default);
            meta.insert("a2a-ledger/grant".into(), json!(g.token));
            meta.insert("a2a-ledger/workspace".into(), json!(g.workspace));
            meta.insert("a2a-ledger/scope".into(), json!(g.scope));
        }
        loop {
            let mut cancel = call.cancel.clone();
            let step = tokio::select! {
                r = self.stream(call, message, &mut upstream_task) => r,
                _ = super::canceled(&mut cancel) => {
                    if let Some((id, _)) = &upstream_task
                        && let Err(e) = self.rpc(a2a::methods::CANCEL_TASK, json!({ "id": id })).await
                    {
                        return Outcome::Failed(format!("canceling the upstream task: {e}"));
                    }
                    return Outcome::Canceled;
                }
            };
            if let Some((_, ctx)) = &upstream_task {
                self.contexts.lock().unwrap_or_else(|p| p.into_inner()).put(call.context_id.clone(), ctx.clone());
            }
            match step {
                Ok(Some(outcome)) => return outcome,
                Err(e) => return Outcome::Failed(e),
                Ok(None) => {
                    let Some(answer) = call.next_message().await else {
                        if let Some((id, _)) = &upstream_task {
                            let _ = self.rpc(a2a::methods::CANCEL_TASK, json!({ "id": id })).await;
                        }
                        return Outcome::Canceled;
                    };
                    let mut next = Message::new(Role::User, answer.parts);
                    if let Some((id, ctx)) = &upstream_task {
                        next.task_id = Some(id.clone());
                        next.context_id = Some(ctx.clone());
                    }
                    message = next;
                }
            }
        }
    }
}

impl Upstream for A2aAgent {
    fn run(&self, mut call: Call) -> BoxFuture<'static, ()> {
        let agent = self.clone();
        Box::pin(async move {
            let outcome = agent.drive(&mut call).await;
            call.send(Update::Done(outcome)).await;
        })
    }

    fn skills(&self) -> BoxFuture<'_, Result<Vec<crate::engine::manifest::SkillSpec>, String>> {
        Box::pin(async move {
            let card = self.card().await?;
            Ok(card
                .skills
                .into_iter()
                .map(|s| crate::engine::manifest::SkillSpec {
                    id: s.id,
                    name: s.name,
                    description: s.description,
                    tags: s.tags,
                    examples: s.examples.unwrap_or_default(),
                    input_schema: None,
                    output_schema: None,
                    workspace: None,
                })
                .collect())
        })
    }
}
