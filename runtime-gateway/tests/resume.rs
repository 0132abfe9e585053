//! Runs of an `a2a` upstream survive a gateway's crash, through the real binary: four runs are in
//! flight on an A2A agent served here when the gateway is SIGKILLed (three working, one waiting
//! for input); while it is down the agent finishes one and forgets another. Started again on the
//! same data (and killed and started once more), the gateway resumes the run still working
//! upstream (GetTask, then SubscribeToTask, relaying only what the ledger does not hold) so it
//! completes with the agent's artifact and a streaming caller sees it continue; the run waiting
//! for input takes the caller's answer on to the agent; the run finished meanwhile gets the
//! agent's end; the forgotten one is ended failed with the restart error. Every receipt verifies
//! (ledger-core and the independent Python verifier), no entry is recorded twice, and the kept
//! upstream tasks are gone once the runs end.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::{Gw, gateway, kinds, poll};
use ledger_core::{Event, RunStatus};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

const RESTARTED: &str = "the gateway restarted while the run was in flight";

/// An upstream task: its context, whether it waits for the caller's name, and whether the agent
/// has finished it.
#[derive(Clone, Debug)]
struct UpTask {
    context: String,
    asking: bool,
    done: bool,
}

/// The A2A agent: its tasks (`up-<text of the first message>`), a watch bumped at every change,
/// and the tasks `SubscribeToTask` was asked for.
#[derive(Default)]
struct Agent {
    tasks: Mutex<HashMap<String, UpTask>>,
    changed: watch::Sender<u64>,
    subscribed: Mutex<Vec<String>>,
}

impl Agent {
    fn finish(&self, id: &str) {
        self.tasks.lock().unwrap().get_mut(id).unwrap().done = true;
        self.changed.send_modify(|n| *n += 1);
    }

    fn forget(&self, id: &str) {
        self.tasks.lock().unwrap().remove(id);
        self.changed.send_modify(|n| *n += 1);
    }

    fn get(&self, id: &str) -> Option<UpTask> {
        self.tasks.lock().unwrap().get(id).cloned()
    }
}

fn text_message(id: &str, text: &str) -> Value {
    json!({ "messageId": id, "role": "ROLE_AGENT", "parts": [{ "text": text }] })
}

fn artifact(id: &str) -> Value {
    json!({ "artifactId": format!("art-{id}"), "name": "result", "parts": [{ "text": format!("result of {id}") }] })
}

/// The task as the agent reports it: working ("started") or waiting for a name until finished,
/// then completed ("done") with its artifact.
fn task_json(id: &str, t: &UpTask) -> Value {
    if t.done {
        json!({ "id": id, "contextId": t.context, "artifacts": [artifact(id)],
                "status": { "state": "TASK_STATE_COMPLETED", "message": text_message("m-done", "done") } })
    } else if t.asking {
        json!({ "id": id, "contextId": t.context,
                "status": { "state": "TASK_STATE_INPUT_REQUIRED", "message": text_message("m-ask", "your name?") } })
    } else {
        json!({ "id": id, "contextId": t.context,
                "status": { "state": "TASK_STATE_WORKING", "message": text_message("m-started", "started") } })
    }
}

/// A stream of JSON-RPC results: `first`, then, unless the task waits for input (the stream
/// ends), once the task is finished, its artifact and its end.
fn stream(agent: Arc<Agent>, rpc_id: Value, id: String, first: Vec<Value>) -> Response {
    let (tx, rx) = mpsc::channel::<String>(16);
    tokio::spawn(async move {
        let event =
            |result: Value| format!("data: {}\n\n", json!({ "jsonrpc": "2.0", "id": rpc_id, "result": result }));
        for e in first {
            if tx.send(event(e)).await.is_err() {
                return;
            }
        }
        let mut changed = agent.changed.subscribe();
        loop {
            match agent.get(&id) {
                None => return,
                Some(t) if t.asking => return,
                Some(t) if t.done => {
                    let ctx = t.context.clone();
                    let _ = tx
                        .send(event(
                            json!({ "artifactUpdate": { "taskId": id, "contextId": ctx, "artifact": artifact(&id) } }),
                        ))
                        .await;
                    let status = json!({ "state": "TASK_STATE_COMPLETED", "message": text_message("m-done", "done") });
                    let _ = tx
                        .send(event(json!({ "statusUpdate": { "taskId": id, "contextId": ctx, "status": status } })))
                        .await;
                    return;
                }
                Some(_) => {}
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                () = tx.closed() => return,
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|s| (Ok::<_, Infallible>(bytes::Bytes::from(s)), rx))
    });
    ([("content-type", "text/event-stream")], axum::body::Body::from_stream(body)).into_response()
}

async fn serve_agent() -> (String, Arc<Agent>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let card = json!({
        "name": "slow agent", "description": "works until told to finish", "version": "1.0.0",
        "supportedInterfaces": [{ "url": base, "protocolBinding": "JSONRPC", "protocolVersion": "1.0" }],
        "capabilities": { "streaming": true }, "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
        "skills": [{ "id": "work", "name": "work", "description": "works", "tags": [] }]
    });
    let agent = Arc::new(Agent::default());
    let a = agent.clone();
    let rpc = move |body: axum::Json<Value>| {
        let agent = a.clone();
        async move {
            let rpc_id = body["id"].clone();
            let error = |code: i64, message: &str| {
                axum::Json(json!({ "jsonrpc": "2.0", "id": rpc_id, "error": { "code": code, "message": message } }))
                    .into_response()
            };
            match body["method"].as_str().unwrap_or("") {
                "SendStreamingMessage" => {
                    let message = &body["params"]["message"];
                    if let Some(id) = message["taskId"].as_str() {
                        // The caller's answer: the task finishes.
                        let Some(mut t) = agent.get(id) else { return error(-32001, "task not found") };
                        t.asking = false;
                        t.done = true;
                        agent.tasks.lock().unwrap().insert(id.to_string(), t);
                        return stream(agent.clone(), rpc_id, id.to_string(), Vec::new());
                    }
                    let text = message["parts"][0]["text"].as_str().unwrap_or("").to_string();
                    let (id, context) = (format!("up-{text}"), format!("ctx-{text}"));
                    let t = UpTask { context: context.clone(), asking: text == "ask", done: false };
                    agent.tasks.lock().unwrap().insert(id.clone(), t.clone());
                    let submitted =
                        json!({ "id": id, "contextId": context, "status": { "state": "TASK_STATE_SUBMITTED" } });
                    let working = json!({ "taskId": id, "contextId": context, "status": task_json(&id, &t)["status"] });
                    stream(
                        agent.clone(),
                        rpc_id,
                        id,
                        vec![json!({ "task": submitted }), json!({ "statusUpdate": working })],
                    )
                }
                "GetTask" => {
                    let id = body["params"]["id"].as_str().unwrap_or("").to_string();
                    match agent.get(&id) {
                        Some(t) => axum::Json(json!({ "jsonrpc": "2.0", "id": rpc_id, "result": task_json(&id, &t) }))
                            .into_response(),
                        None => error(-32001, "task not found"),
                    }
                }
                "SubscribeToTask" => {
                    let id = body["params"]["id"].as_str().unwrap_or("").to_string();
                    agent.subscribed.lock().unwrap().push(id.clone());
                    match agent.get(&id) {
                        // A2A: the first event of a subscription is the task as it stands.
                        Some(t) if !t.done => {
                            stream(agent.clone(), rpc_id, id.clone(), vec![json!({ "task": task_json(&id, &t) })])
                        }
                        Some(_) => error(-32004, "the task has ended"),
                        None => error(-32001, "task not found"),
                    }
                }
                other => error(-32601, &format!("no method {other}")),
            }
        }
    };
    let app = Router::new()
        .route("/.well-known/agent-card.json", get(move || async move { axum::Json(card) }))
        .route("/", post(rpc));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, agent)
}

fn start(data: &Path, manifest: &Path) -> Gw {
    gateway(data, &["--manifest", manifest.to_str().unwrap()])
}

async fn send(gw: &Gw, text: &str) -> String {
    let msg = json!({ "messageId": format!("m-{text}"), "role": "ROLE_USER", "parts": [{ "text": text }] });
    let r = gw.rpc("SendMessage", json!({ "message": msg, "configuration": { "returnImmediately": true } })).await;
    r["result"]["task"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string()
}

fn kept_file(data: &Path, run: &str) -> std::path::PathBuf {
    data.join("upstream-tasks").join(format!("{}.json", hex::encode(run)))
}

/// The messages of the run's `task.status` entries whose state is `state`.
fn statuses(v: &ledger_core::VerifiedReceipt<'_>, state: &str) -> Vec<Option<String>> {
    v.views()
        .filter_map(|(_, e)| match e.event() {
            Event::TaskStatus { state: s, message } if s == state => Some(message),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_gateway_resumes_the_runs_of_an_a2a_upstream() {
    let (up, agent) = serve_agent().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("agents.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[agent]]\nname = \"relay\"\nupstream = {{ kind = \"a2a\", url = \"{up}\" }}\n[[agent.skill]]\nid = \"work\"\nname = \"work\"\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let gw = start(&data, &manifest);

    // Three runs working upstream, one waiting for input; each one's upstream task is kept as
    // soon as it is known.
    let mut runs = HashMap::new();
    for name in ["a", "b", "c", "ask"] {
        let run = send(&gw, name).await;
        let file = kept_file(&data, &run);
        let kept: Value = poll("the upstream task is kept", Duration::from_secs(20), Duration::from_millis(20), || {
            let file = file.clone();
            async move { std::fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok()) }
        })
        .await;
        assert_eq!(kept, json!({ "agent": "relay", "task": format!("up-{name}"), "context": format!("ctx-{name}") }));
        runs.insert(name, run);
    }
    poll("the runs are working or asking", Duration::from_secs(20), Duration::from_millis(20), || async {
        for (name, run) in &runs {
            let r = gw.rpc("GetTask", json!({ "id": run })).await;
            let text = if *name == "ask" { "your name?" } else { "started" };
            if r["result"]["status"]["message"]["parts"][0]["text"] != text {
                return None;
            }
        }
        Some(())
    })
    .await;

    // SIGKILL; meanwhile the agent finishes b and forgets c.
    let mut proc = gw.proc;
    proc.child.kill().unwrap();
    proc.child.wait().unwrap();
    drop(proc);
    agent.finish("up-b");
    agent.forget("up-c");

    // Resumed runs are resumed again by the next start (their upstream task is still kept), and
    // record nothing twice.
    let mut gw = start(&data, &manifest);
    for times in [1, 2] {
        let what = format!("the gateway follows a's upstream task again ({times})");
        poll(&what, Duration::from_secs(20), Duration::from_millis(20), || async {
            let n = agent.subscribed.lock().unwrap().iter().filter(|t| *t == "up-a").count();
            (n >= times).then_some(())
        })
        .await;
        assert!(kept_file(&data, &runs["a"]).exists(), "a's upstream task stays kept while it runs");
        if times == 1 {
            let mut proc = gw.proc;
            proc.child.kill().unwrap();
            proc.child.wait().unwrap();
            drop(proc);
            gw = start(&data, &manifest);
        }
    }
    let r = gw.rpc("GetTask", json!({ "id": runs["a"] })).await;
    assert_eq!(r["result"]["status"]["state"], "TASK_STATE_WORKING", "a is live again: {r}");

    // A caller following a sees it continue to its end when the agent finishes.
    let follow = gw.follow_sse(&runs["a"], Duration::from_secs(20), |v| v.to_string().contains("TASK_STATE_COMPLETED"));
    let (seen, ()) = tokio::join!(follow, async { agent.finish("up-a") });
    assert!(seen.is_some(), "the caller sees a complete");

    for name in ["a", "b"] {
        let run = &runs[name];
        let v = gw.verified_receipt(run).await;
        assert_eq!(v.status, RunStatus::Completed, "{name}: {:?}", kinds(&v));
        let k = kinds(&v);
        assert_eq!(k.iter().filter(|k| *k == "artifact.added").count(), 1, "{name}: the artifact once: {k:?}");
        assert_eq!(k.iter().filter(|k| *k == "task.accepted").count(), 1, "{name}: {k:?}");
        assert_eq!(k.last().map(String::as_str), Some("receipt.sealed"), "{name}: {k:?}");
        assert_eq!(k[k.len() - 2], "task.completed", "{name}: {k:?}");
        let started = statuses(&v, "working").into_iter().filter(|m| m.as_deref() == Some("started")).count();
        assert_eq!(started, 1, "{name}: the upstream's working status is recorded once: {k:?}");
        let r = gw.rpc("GetTask", json!({ "id": run })).await;
        assert_eq!(r["result"]["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
        assert_eq!(r["result"]["status"]["message"]["parts"][0]["text"], "done", "{r}");
        let artifacts = r["result"]["artifacts"].as_array().unwrap_or_else(|| panic!("{r}"));
        assert_eq!(artifacts.len(), 1, "{r}");
        assert_eq!(artifacts[0]["parts"][0]["text"], format!("result of up-{name}"), "{r}");
        assert!(!kept_file(&data, run).exists(), "{name}: the kept upstream task is dropped at the end");
    }
    assert!(!agent.subscribed.lock().unwrap().contains(&"up-b".to_string()), "b had ended: no subscription");

    // ask: still waiting for input, the caller's answer goes on to the agent's task.
    let run = &runs["ask"];
    let r = gw.rpc("GetTask", json!({ "id": run })).await;
    assert_eq!(r["result"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED", "{r}");
    let answer = json!({ "messageId": "m-bob", "role": "ROLE_USER", "parts": [{ "text": "bob" }], "taskId": run });
    let r = gw.rpc("SendMessage", json!({ "message": answer })).await;
    assert_eq!(r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    assert_eq!(r["result"]["task"]["artifacts"][0]["parts"][0]["text"], "result of up-ask", "{r}");
    let v = gw.verified_receipt(run).await;
    assert_eq!(v.status, RunStatus::Completed);
    assert_eq!(statuses(&v, "input_required"), vec![Some("your name?".to_string())], "asked once: {:?}", kinds(&v));
    assert_eq!(kinds(&v).iter().filter(|k| *k == "artifact.added").count(), 1);
    assert!(!agent.subscribed.lock().unwrap().contains(&"up-ask".to_string()), "a task waiting is not subscribed");

    // c: the agent does not know its task any more.
    let run = &runs["c"];
    let v = gw.verified_receipt(run).await;
    assert_eq!(v.status, RunStatus::Failed);
    let ended = v.views().map(|(_, e)| e.event()).find(|e| matches!(e, Event::TaskEnded { .. })).unwrap();
    assert!(matches!(&ended, Event::TaskEnded { error: Some(e), .. } if e == RESTARTED), "{ended:?}");
    let r = gw.rpc("GetTask", json!({ "id": run })).await;
    assert_eq!(r["result"]["status"]["state"], "TASK_STATE_FAILED", "{r}");
    assert!(!kept_file(&data, run).exists());
}
