//! A task rebuilt from the ledger is the task that ran: the demo agent's runs on every path
//! (artifact, progress, several artifacts, failure, input asked and answered, a status message
//! too long to inline) are driven live through the engine on an in-memory log, then dropped from
//! memory and rebuilt from their entries and payloads; the rebuilt events and task must equal the
//! live ones (times and the ids of the agent's status messages aside, which are minted when
//! served).

use std::sync::Arc;
use std::time::Duration;

use a2a::{Message, Part, Role};
use ledger_core::{Log, LogConfig, MemStore, NamedKey, Protocol};
use runtime_gateway::engine::grants::Grants;
use runtime_gateway::engine::manifest::Manifest;
use runtime_gateway::engine::tasks::{Engine, NewTask};
use runtime_gateway::ledger::{EmbeddedLedger, LedgerSink};
use serde_json::{Value, json};

fn engine() -> Arc<Engine> {
    let log =
        Log::open(Arc::new(MemStore::new()), NamedKey::from_seed("test/log", [1; 32]).unwrap(), LogConfig::default())
            .unwrap();
    let sink: Arc<dyn LedgerSink> = Arc::new(EmbeddedLedger::new(Arc::new(log)));
    let key = Arc::new(NamedKey::from_seed("gateway", [2; 32]).unwrap());
    let grants = Arc::new(Grants::new(&[7; 32], Duration::from_secs(60)));
    let http = reqwest::Client::new();
    Arc::new(Engine::new(&Manifest::demo(), sink, key, &http, grants, "http://gw".into(), 100))
}

/// The JSON of `v` without what is minted when served: timestamps, and the ids of the agent's
/// messages.
fn normalized(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("timestamp");
                if m.get("role").and_then(Value::as_str) == Some("ROLE_AGENT") {
                    m.remove("messageId");
                }
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

fn user(text: &str) -> Message {
    Message::new(Role::User, vec![Part::text(text)])
}

async fn run(e: &Arc<Engine>, skill: &str, input: Value, protocol: Protocol) -> String {
    let message = match protocol {
        Protocol::A2a => user(input["text"].as_str().unwrap_or("")),
        _ => runtime_gateway::engine::updates::data_message(&input),
    };
    let input_bytes = match protocol {
        Protocol::A2a => serde_json::to_vec(&message).unwrap(),
        _ => serde_json::to_vec(&input).unwrap(),
    };
    let h = e
        .create(NewTask {
            caller: "alice".into(),
            protocol,
            skill: skill.into(),
            input,
            input_bytes,
            message,
            context_id: Some("ctx-1".into()),
            parent: None,
            mcp_caller: None,
        })
        .await
        .unwrap();
    h.id.clone()
}

async fn live_and_rebuilt(e: &Arc<Engine>, id: &str) -> (Value, Value) {
    let h = e.get(id, "alice").await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), h.wait_closed()).await.expect("the run ends");
    let (events, closed) = h.next_events(0).await;
    assert!(closed);
    let live = json!({ "events": events.iter().map(|e| serde_json::to_value(&**e).unwrap()).collect::<Vec<_>>(),
                       "task": h.snapshot().task, "result": h.snapshot().result });
    e.forget(id);
    let r = e.load(id).await.unwrap().expect("the ledger holds the task");
    assert!(!Arc::ptr_eq(&h, &r), "rebuilt, not the cached handle");
    let (events, closed) = r.next_events(0).await;
    assert!(closed);
    let rebuilt = json!({ "events": events.iter().map(|e| serde_json::to_value(&**e).unwrap()).collect::<Vec<_>>(),
                          "task": r.snapshot().task, "result": r.snapshot().result });
    (normalized(live), normalized(rebuilt))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_path_of_the_demo_agent_rebuilds_to_the_task_that_ran() {
    let e = engine();
    runtime_gateway::engine::identity::register_identity(&**e.sink(), e.key(), 0).await.unwrap();
    let cases = [
        ("echo", json!({ "text": "echo hi" }), Protocol::A2a),
        ("echo", json!({ "x": 1 }), Protocol::Https),
        ("slow", json!({ "steps": 3, "delay_ms": 0 }), Protocol::Https),
        ("report", json!({ "text": "report" }), Protocol::A2a),
        ("fail", json!({ "text": "fail" }), Protocol::A2a),
    ];
    for (skill, input, protocol) in cases {
        let id = run(&e, skill, input.clone(), protocol).await;
        let (live, rebuilt) = live_and_rebuilt(&e, &id).await;
        assert_eq!(rebuilt, live, "{skill} {input}");
    }

    // Input asked, answered: the answer is kept and comes back in the history.
    let id = run(&e, "ask", json!({ "text": "ask" }), Protocol::A2a).await;
    let h = e.get(&id, "alice").await.unwrap();
    h.wait_settled(0).await;
    let cursor = e.continue_task(&h, user("Grace")).await.unwrap();
    h.wait_settled(cursor).await;
    let (live, rebuilt) = live_and_rebuilt(&e, &id).await;
    assert_eq!(rebuilt, live, "ask, answered");
    assert_eq!(rebuilt["task"]["history"].as_array().unwrap().len(), 3, "{rebuilt}");

    // Another caller does not see it; an unknown id is not a task.
    assert!(e.get(&id, "mallory").await.is_err());
    assert!(e.load("no-such-run").await.unwrap().is_none());
    assert!(e.load("id/gateway").await.unwrap().is_none(), "an identity run is not a task");
}
