//! A plain webhook upstream. The gateway POSTs the skill input as JSON (header `X-Run-Id`
//! carries the run id) and reads either one JSON result, or NDJSON lines
//! (`application/x-ndjson`): `{"progress": {"stage", "pct", "message"}}`,
//! `{"artifact": {"name", "media_type"?, "text" | "data"}}`, then `{"result": …}` or
//! `{"error": "…"}` last. A non-2xx answer fails the run with the upstream's status and the
//! start of its body.

use std::collections::BTreeMap;
use std::time::Duration;

use a2a::{Artifact, Part};
use futures_util::StreamExt as _;
use serde_json::Value;

use super::{Call, Outcome, Update, Upstream};
use crate::base::BoxFuture;

/// Longest NDJSON line accepted from an upstream.
const MAX_LINE: usize = 4 << 20;

/// A webhook agent.
#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    headers: BTreeMap<String, String>,
    timeout: Duration,
}

impl Webhook {
    /// A webhook at `url`.
    pub fn new(client: reqwest::Client, url: String, headers: BTreeMap<String, String>, timeout_secs: u64) -> Webhook {
        Webhook { client, url, headers, timeout: Duration::from_secs(timeout_secs) }
    }
}

fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(300)]).to_string();
    if b.len() > 300 { format!("{s}…") } else { s }
}

/// Turns one NDJSON line into an update; `Err` says what is wrong with it.
fn line_update(line: &[u8]) -> Result<Option<Update>, String> {
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON ({e}): {}", excerpt(line)))?;
    let obj = v.as_object().ok_or_else(|| format!("not a JSON object: {}", excerpt(line)))?;
    if let Some(p) = obj.get("progress") {
        let pct = p.get("pct").and_then(Value::as_u64).unwrap_or(0).min(100) as u8;
        return Ok(Some(Update::Progress {
            stage: p.get("stage").and_then(Value::as_str).unwrap_or("progress").to_string(),
            pct,
            message: p.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
            raw: None,
        }));
    }
    if let Some(a) = obj.get("artifact") {
        let name = a.get("name").and_then(Value::as_str).ok_or("an artifact line needs a name")?.to_string();
        let part = if let Some(t) = a.get("text").and_then(Value::as_str) {
            Part::text(t)
        } else if let Some(d) = a.get("data") {
            Part::data(d.clone())
        } else {
            return Err(format!("artifact {name:?} needs text or data"));
        };
        let part = match a.get("media_type").and_then(Value::as_str) {
            Some(m) => part.with_media_type(m),
            None => part,
        };
        let artifact = Artifact {
            artifact_id: a2a::new_artifact_id(),
            name: Some(name),
            description: None,
            parts: vec![part],
            metadata: None,
            extensions: None,
        };
        return Ok(Some(Update::Artifact { artifact, append: false, last_chunk: true }));
    }
    if let Some(r) = obj.get("result") {
        return Ok(Some(Update::Done(Outcome::Completed { result: Some(r.clone()), message: None, mcp: None })));
    }
    if let Some(e) = obj.get("error") {
        let msg = e.as_str().map(String::from).unwrap_or_else(|| e.to_string());
        return Ok(Some(Update::Done(Outcome::Failed(msg))));
    }
    Ok(None)
}

async fn call_webhook(w: &Webhook, call: &Call) -> Outcome {
    let mut req = w
        .client
        .post(&w.url)
        .timeout(w.timeout)
        .header("X-Run-Id", &call.run)
        .header("Accept", "application/json, application/x-ndjson")
        .json(&call.input);
    if let Some(tp) = &call.traceparent {
        req = req.header("traceparent", tp);
    }
    if let Some(g) = &call.grant {
        // The run's workspace grant, meant for this agent: it reaches the run's files through
        // the gateway's workspace API with it.
        req = req.header("X-Grant", &g.token).header("X-Workspace", &g.workspace).header("X-Scope", &g.scope);
    }
    for (k, v) in &w.headers {
        req = req.header(k, v);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("upstream {} unreachable: {e}", w.url)),
    };
    let status = resp.status();
    let ndjson = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-ndjson") || ct.starts_with("application/jsonl"));
    if !status.is_success() {
        let body = resp.bytes().await.unwrap_or_default();
        return Outcome::Failed(format!("upstream answered {status}: {}", excerpt(&body)));
    }
    if !ndjson {
        return match resp.bytes().await {
            Ok(body) if body.is_empty() => Outcome::Completed { result: None, message: None, mcp: None },
            Ok(body) => match serde_json::from_slice::<Value>(&body) {
                Ok(v) => Outcome::Completed { result: Some(v), message: None, mcp: None },
                Err(e) => {
                    Outcome::Failed(format!("upstream answered a body that is not JSON ({e}): {}", excerpt(&body)))
                }
            },
            Err(e) => Outcome::Failed(format!("reading the upstream's answer: {e}")),
        };
    }
    let mut stream = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut line_no = 0usize;
    loop {
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = line.trim_ascii();
            line_no += 1;
            if line.is_empty() {
                continue;
            }
            match line_update(line) {
                Ok(Some(Update::Done(o))) => return o,
                Ok(Some(u)) => {
                    call.send(u).await;
                }
                Ok(None) => {}
                Err(e) => return Outcome::Failed(format!("upstream NDJSON line {line_no}: {e}")),
            }
        }
        if buf.len() > MAX_LINE {
            return Outcome::Failed(format!("upstream NDJSON line {} is longer than {MAX_LINE} bytes", line_no + 1));
        }
        match stream.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(e)) => return Outcome::Failed(format!("reading the upstream's NDJSON: {e}")),
            None => {
                let rest = buf.trim_ascii();
                if !rest.is_empty()
                    && let Ok(Some(Update::Done(o))) = line_update(rest)
                {
                    return o;
                }
                return Outcome::Failed("the upstream's NDJSON ended without a result or error line".into());
            }
        }
    }
}

impl Upstream for Webhook {
    fn run(&self, call: Call) -> BoxFuture<'static, ()> {
        let w = self.clone();
        Box::pin(async move {
            let mut cancel = call.cancel.clone();
            let outcome = tokio::select! {
                o = call_webhook(&w, &call) => o,
                // Dropping the request aborts it; a webhook has no cancel of its own.
                _ = super::canceled(&mut cancel) => Outcome::Canceled,
            };
            call.send(Update::Done(outcome)).await;
        })
    }
}
