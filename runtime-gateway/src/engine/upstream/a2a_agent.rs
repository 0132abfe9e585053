//! An A2A 1.0 agent as upstream: the gateway is its JSON-RPC client. It sends each call with
//! `SendStreamingMessage`, follows the stream and relays status and artifact updates, answers
//! `input_required` with the caller's next message on the same upstream task, and forwards a
//! cancel as `CancelTask`. It reports the upstream task's id when it learns it, so a run left in
//! flight by a gateway that died is resumed: `GetTask`, then `SubscribeToTask`, relaying only
//! what the ledger does not hold yet.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use a2a::{JsonRpcRequest, Message, Role, StreamResponse, TaskState};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::card_signature::{self, CardTrust, Verdict};
use super::{Call, Outcome, RESTARTED, Resume, Update, Upstream, message_text};
use crate::base::BoxFuture;
use crate::engine::updates::artifact_digest;

/// An upstream A2A agent.
#[derive(Debug, Clone)]
pub struct A2aAgent {
    client: reqwest::Client,
    base: String,
    headers: BTreeMap<String, String>,
    timeout: Duration,
    endpoint: std::sync::Arc<OnceCell<String>>,
    /// The keys its card must be signed with, and the last verdict on it.
    trust: CardTrust,
    verdict: std::sync::Arc<std::sync::Mutex<Option<String>>>,
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
            trust: CardTrust::default(),
            verdict: std::sync::Arc::default(),
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

    /// Checks its card's signature with `trust` (A2A §8.4) whenever the card is read.
    pub fn trusting(mut self, trust: CardTrust) -> A2aAgent {
        self.trust = trust;
        self
    }

    /// Reads the upstream's card and checks its signature. With `card_signature = "required"`
    /// a card whose signature does not verify under the manifest's keys is an error: no call
    /// goes to an agent that does not prove who it is.
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
        let raw: Value = resp.json().await.map_err(|e| format!("the upstream card {url} is not JSON: {e}"))?;
        let verdict = card_signature::check(&raw, &self.trust, &self.client).await;
        *self.verdict.lock().expect("verdict lock") = Some(verdict.to_string());
        if self.trust.required && !matches!(verdict, Verdict::Verified { .. }) {
            return Err(format!(
                "the upstream card {url}: {verdict}; refusing to call the agent (card_signature = \"required\")"
            ));
        }
        serde_json::from_value(raw).map_err(|e| format!("the upstream card {url} is not an A2A 1.0 Agent Card: {e}"))
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

    /// Makes the streaming request `method` and relays the stream. Returns the outcome, or
    /// `Ok(None)` when the task is interrupted (input or auth required) and waits for the caller.
    async fn stream(
        &self,
        call: &Call,
        (method, params): (&str, Value),
        upstream_task: &mut Option<(String, String)>,
        known: &mut Option<Known>,
    ) -> Result<Option<Outcome>, String> {
        let url = self.endpoint().await?;
        let req = JsonRpcRequest::new(a2a::JsonRpcId::String(a2a::new_message_id()), method, Some(params));
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
            let flow = match event {
                StreamResponse::Task(t) => {
                    learn(call, upstream_task, &t.id, &t.context_id).await;
                    relay_task(call, &t, known).await
                }
                StreamResponse::StatusUpdate(s) => {
                    learn(call, upstream_task, &s.task_id, &s.context_id).await;
                    relay_status(call, s.status.state, s.status.message.as_ref(), known).await
                }
                StreamResponse::ArtifactUpdate(a) => {
                    let (append, last_chunk) = (a.append.unwrap_or(false), a.last_chunk.unwrap_or(true));
                    if append || !last_chunk || is_new(known, &a.artifact) {
                        call.send(Update::Artifact { artifact: a.artifact, append, last_chunk }).await;
                    }
                    continue;
                }
                StreamResponse::Message(m) => {
                    return Ok(Some(Outcome::Completed { result: None, message: Some(message_text(&m)), mcp: None }));
                }
            };
            match flow {
                Flow::Go => {}
                Flow::Interrupted => interrupted = true,
                Flow::End(o) => return Ok(Some(o)),
            }
        }
        if interrupted {
            return Ok(None);
        }
        // The stream ended early: ask for the task's state.
        let Some((id, _)) = upstream_task.clone() else {
            return Err("the upstream stream ended before it named a task".into());
        };
        let t = self.task(&id).await?;
        Ok(match t.status.state {
            TaskState::Completed => Some(Outcome::Completed { result: None, message: None, mcp: None }),
            TaskState::Canceled => Some(Outcome::Canceled),
            TaskState::Rejected => Some(Outcome::Rejected("the upstream agent rejected the task".into())),
            TaskState::InputRequired | TaskState::AuthRequired => None,
            s => Some(Outcome::Failed(format!("the upstream stream ended with the task in state {s:?}"))),
        })
    }

    /// The upstream task `id` (`GetTask`).
    async fn task(&self, id: &str) -> Result<a2a::Task, String> {
        serde_json::from_value(self.rpc(a2a::methods::GET_TASK, json!({ "id": id })).await?)
            .map_err(|e| format!("GetTask: {e}"))
    }

    /// Runs a call from `next` on: streams each request, waits for the caller where the task is
    /// interrupted, forwards a cancel.
    async fn drive(
        &self,
        call: &mut Call,
        mut next: Next,
        mut upstream_task: Option<(String, String)>,
        mut known: Option<Known>,
    ) -> Outcome {
        loop {
            let request = match next {
                Next::Send(message) => Some((a2a::methods::SEND_STREAMING_MESSAGE, json!({ "message": message }))),
                Next::Subscribe(id) => Some((SUBSCRIBE_TO_TASK, json!({ "id": id }))),
                Next::Answer => None,
            };
            let step = match request {
                None => Ok(None),
                Some(request) => {
                    let mut cancel = call.cancel.clone();
                    tokio::select! {
                        r = self.stream(call, request, &mut upstream_task, &mut known) => r,
                        _ = super::canceled(&mut cancel) => {
                            if let Some((id, _)) = &upstream_task
                                && let Err(e) = self.rpc(a2a::methods::CANCEL_TASK, json!({ "id": id })).await
                            {
                                return Outcome::Failed(format!("canceling the upstream task: {e}"));
                            }
                            return Outcome::Canceled;
                        }
                    }
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
                    let mut message = Message::new(Role::User, answer.parts);
                    if let Some((id, ctx)) = &upstream_task {
                        message.task_id = Some(id.clone());
                        message.context_id = Some(ctx.clone());
                    }
                    next = Next::Send(message);
                }
            }
        }
    }

    /// A new call: the caller's message content, under fresh ids of the upstream's.
    async fn start(&self, call: &mut Call) -> Outcome {
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
        self.drive(call, Next::Send(message), None, None).await
    }

    /// A call of a gateway that died: the upstream task as it stands now (`GetTask`) is relayed
    /// where it differs from what the ledger holds; then, while it runs, it is followed
    /// (`SubscribeToTask`), or the caller's answer is awaited while it waits for input. An
    /// upstream that cannot be reached or does not know the task ends the call as failed with
    /// [`RESTARTED`].
    async fn resume_call(&self, call: &mut Call, from: Resume) -> Outcome {
        let artifacts = from.artifacts.iter().cloned().collect();
        let mut known = Some(Known { state: Some(from.state.clone()), artifacts });
        let t = match self.task(&from.task).await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("run {}: its upstream task {} cannot be resumed: {e}", call.run, from.task);
                return Outcome::Failed(RESTARTED.into());
            }
        };
        self.contexts.lock().unwrap_or_else(|p| p.into_inner()).put(call.context_id.clone(), from.context.clone());
        let next = match relay_task(call, &t, &mut known).await {
            Flow::End(o) => return o,
            Flow::Interrupted => Next::Answer,
            Flow::Go => Next::Subscribe(from.task.clone()),
        };
        self.drive(call, next, Some((from.task, from.context)), known).await
    }
}

/// The A2A 1.0 JSON-RPC method that follows an existing task.
const SUBSCRIBE_TO_TASK: &str = "SubscribeToTask";

/// What the gateway asks the upstream next.
#[derive(Debug)]
enum Next {
    /// Send this message, streaming.
    Send(Message),
    /// Follow this upstream task.
    Subscribe(String),
    /// Wait for the caller's answer: the task is interrupted.
    Answer,
}

/// What the ledger already holds of a resumed call: the upstream's snapshots repeat it, and only
/// what differs is relayed.
#[derive(Debug)]
struct Known {
    /// The last state and status message relayed or recorded.
    state: Option<(TaskState, Option<String>)>,
    /// (name, BLAKE3 of its canonical parts) of the artifacts recorded, as `artifact.added`
    /// records them.
    artifacts: HashSet<(String, [u8; 32])>,
}

/// What follows an event of the upstream task.
enum Flow {
    /// The task goes on.
    Go,
    /// It waits for the caller.
    Interrupted,
    /// It ended.
    End(Outcome),
}

/// Notes the upstream's task the first time it is named (and if it changes), reporting it so
/// the engine keeps it.
async fn learn(call: &Call, upstream_task: &mut Option<(String, String)>, id: &str, ctx: &str) {
    if upstream_task.as_ref().is_some_and(|(i, c)| i == id && c == ctx) {
        return;
    }
    *upstream_task = Some((id.to_string(), ctx.to_string()));
    call.send(Update::UpstreamTask { task: id.to_string(), context: ctx.to_string() }).await;
}

/// True unless the artifact, whole, is one a resumed call knows is recorded; a new one is then
/// known.
fn is_new(known: &mut Option<Known>, a: &a2a::Artifact) -> bool {
    match known {
        None => true,
        Some(k) => {
            let name = a.name.clone().unwrap_or_else(|| a.artifact_id.clone());
            k.artifacts.insert((name, artifact_digest(a).1))
        }
    }
}

/// Relays a snapshot of the upstream task: for a resumed call, its artifacts the ledger does not
/// hold; then its status.
async fn relay_task(call: &Call, t: &a2a::Task, known: &mut Option<Known>) -> Flow {
    if known.is_some() {
        for a in t.artifacts.iter().flatten() {
            if is_new(known, a) {
                call.send(Update::Artifact { artifact: a.clone(), append: false, last_chunk: true }).await;
            }
        }
    }
    relay_status(call, t.status.state.clone(), t.status.message.as_ref(), known).await
}

/// Relays a status of the upstream task (for a resumed call, only one that differs from the last
/// known) and says what follows.
async fn relay_status(call: &Call, state: TaskState, message: Option<&Message>, known: &mut Option<Known>) -> Flow {
    let text = message.map(message_text).filter(|t| !t.is_empty());
    let text = match state {
        TaskState::InputRequired => Some(text.unwrap_or_else(|| "input required".into())),
        TaskState::AuthRequired => Some(text.unwrap_or_else(|| "authorization required".into())),
        _ => text,
    };
    let repeated = match known {
        Some(k) => {
            let now = Some((state.clone(), text.clone()));
            std::mem::replace(&mut k.state, now.clone()) == now
        }
        None => false,
    };
    match state {
        TaskState::Submitted | TaskState::Unspecified => Flow::Go,
        TaskState::Working => {
            if !repeated {
                call.send(Update::Working(text)).await;
            }
            Flow::Go
        }
        TaskState::InputRequired | TaskState::AuthRequired => {
            if !repeated {
                let prompt = text.unwrap_or_default();
                let u = if state == TaskState::InputRequired {
                    Update::InputRequired { prompt, requests: None }
                } else {
                    Update::AuthRequired(prompt)
                };
                call.send(u).await;
            }
            Flow::Interrupted
        }
        TaskState::Completed => Flow::End(Outcome::Completed { result: None, message: text, mcp: None }),
        TaskState::Failed => Flow::End(Outcome::Failed(text.unwrap_or_else(|| "the upstream task failed".into()))),
        TaskState::Canceled => Flow::End(Outcome::Canceled),
        TaskState::Rejected => {
            Flow::End(Outcome::Rejected(text.unwrap_or_else(|| "the upstream agent rejected the task".into())))
        }
    }
}

impl Upstream for A2aAgent {
    fn run(&self, mut call: Call) -> BoxFuture<'static, ()> {
        let agent = self.clone();
        Box::pin(async move {
            let outcome = agent.start(&mut call).await;
            call.send(Update::Done(outcome)).await;
        })
    }

    fn resume(&self, mut call: Call, from: Resume) -> BoxFuture<'static, ()> {
        let agent = self.clone();
        Box::pin(async move {
            let outcome = agent.resume_call(&mut call, from).await;
            call.send(Update::Done(outcome)).await;
        })
    }

    fn resumes(&self) -> bool {
        true
    }

    fn register(&self) -> BoxFuture<'_, Option<Result<String, String>>> {
        Box::pin(async move {
            if !self.trust.checks() {
                return None;
            }
            Some(match self.card().await {
                Ok(_) => Ok(self.verdict().unwrap_or_default()),
                Err(e) => Err(e),
            })
        })
    }

    fn verdict(&self) -> Option<String> {
        self.verdict.lock().expect("verdict lock").clone()
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

#[cfg(test)]
mod tests {
    use a2a::{Artifact, Part, Task, TaskStatus};
    use tokio::sync::{mpsc, watch};

    use super::*;

    fn call() -> (Call, mpsc::Receiver<Update>) {
        let (updates, rx) = mpsc::channel(16);
        let (_, follow_ups) = mpsc::channel(1);
        let (_, cancel) = watch::channel(false);
        let message = Message::new(Role::User, Vec::new());
        let call = Call {
            run: "r".into(),
            context_id: "c".into(),
            skill: "s".into(),
            input: Value::Null,
            message,
            updates,
            follow_ups,
            cancel,
            grant: None,
            traceparent: None,
            mcp_caller: None,
        };
        (call, rx)
    }

    fn said(text: &str) -> Message {
        Message::new(Role::Agent, vec![Part::text(text)])
    }

    fn artifact(id: &str, text: &str) -> Artifact {
        Artifact {
            artifact_id: id.into(),
            name: Some(id.into()),
            description: None,
            parts: vec![Part::text(text)],
            metadata: None,
            extensions: None,
        }
    }

    fn snapshot(state: TaskState, message: Option<Message>, artifacts: Vec<Artifact>) -> Task {
        Task {
            id: "up-1".into(),
            context_id: "ctx".into(),
            status: TaskStatus { state, message, timestamp: None },
            artifacts: Some(artifacts),
            history: None,
            metadata: None,
        }
    }

    fn drain(rx: &mut mpsc::Receiver<Update>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(u) = rx.try_recv() {
            out.push(match u {
                Update::Working(t) => format!("working {t:?}"),
                Update::InputRequired { prompt, .. } => format!("input_required {prompt}"),
                Update::Artifact { artifact, .. } => format!("artifact {}", artifact.artifact_id),
                other => format!("{other:?}"),
            });
        }
        out
    }

    #[tokio::test]
    async fn a_resumed_call_relays_only_what_the_ledger_does_not_hold() {
        let (call, mut rx) = call();
        let recorded = artifact("a", "one");
        let mut known = Some(Known {
            state: Some((TaskState::Working, Some("started".into()))),
            artifacts: HashSet::from([("a".to_string(), artifact_digest(&recorded).1)]),
        });
        // The state the log ends with: nothing.
        let t = snapshot(TaskState::Working, Some(said("started")), vec![recorded.clone()]);
        assert!(matches!(relay_task(&call, &t, &mut known).await, Flow::Go));
        assert!(drain(&mut rx).is_empty());
        // A new artifact, an artifact changed under a known name, a new state.
        let t = snapshot(TaskState::InputRequired, None, vec![recorded, artifact("b", "two"), artifact("a", "1")]);
        assert!(matches!(relay_task(&call, &t, &mut known).await, Flow::Interrupted));
        assert_eq!(drain(&mut rx), ["artifact b", "artifact a", "input_required input required"]);
        // Asked again the same way (the default prompt is what was relayed): nothing.
        assert!(matches!(relay_status(&call, TaskState::InputRequired, None, &mut known).await, Flow::Interrupted));
        assert!(drain(&mut rx).is_empty());
        // The end is the outcome, not an update.
        let end = relay_status(&call, TaskState::Completed, Some(&said("done")), &mut known).await;
        assert!(matches!(end, Flow::End(Outcome::Completed { message: Some(m), .. }) if m == "done"));
        assert!(drain(&mut rx).is_empty());
    }

    #[tokio::test]
    async fn a_new_call_relays_every_status_and_no_snapshot_artifact() {
        let (call, mut rx) = call();
        let t = snapshot(TaskState::Working, Some(said("started")), vec![artifact("a", "one")]);
        assert!(matches!(relay_task(&call, &t, &mut None).await, Flow::Go));
        assert!(matches!(relay_status(&call, TaskState::Working, Some(&said("started")), &mut None).await, Flow::Go));
        assert_eq!(drain(&mut rx), ["working Some(\"started\")", "working Some(\"started\")"]);
    }
}
