//! The built-in demo agent: one skill for each path a run can take (quick, slow with progress,
//! input_required, artifacts, failure), for the quickstart, the tests and the A2A conformance kit.

use std::time::Duration;

use a2a::{Artifact, Part};
use serde_json::{Value, json};

use super::{Call, Outcome, Update, Upstream, message_text};
use crate::base::BoxFuture;

/// The demo agent.
#[derive(Debug, Clone, Copy)]
pub struct Demo;

/// Picks the demo skill for an A2A message that names none: the conformance kit's scenarios key
/// on `messageId` prefixes; otherwise the first word of the text, when it is a skill id.
pub fn skill_for_message(m: &a2a::Message) -> Option<&'static str> {
    let id = m.message_id.as_str();
    if id.starts_with("tck-") || id.starts_with("test-resubscribe") {
        return Some("conformance");
    }
    let text = message_text(m);
    let first = text.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
    ["echo", "slow", "ask", "report", "fail"].into_iter().find(|s| *s == first)
}

fn text_artifact(name: &str, text: String) -> Artifact {
    Artifact {
        artifact_id: a2a::new_artifact_id(),
        name: Some(name.into()),
        description: None,
        parts: vec![Part::text(text).with_media_type("text/plain")],
        metadata: None,
        extensions: None,
    }
}

async fn run(mut call: Call) {
    let done = |o| Update::Done(o);
    match call.skill.as_str() {
        "echo" => {
            let text = message_text(&call.message);
            let echo =
                if call.input.as_object().is_some_and(|o| !o.is_empty()) { call.input.clone() } else { json!(text) };
            let reply = if text.is_empty() { format!("echo: {}", call.input) } else { format!("echo: {text}") };
            call.send(Update::Artifact {
                artifact: text_artifact("echo.txt", reply.clone()),
                append: false,
                last_chunk: true,
            })
            .await;
            call.send(done(Outcome::Completed {
                result: Some(json!({ "echo": echo })),
                message: Some(reply),
                mcp: None,
            }))
            .await;
        }
        "slow" => {
            let steps = call.input.get("steps").and_then(Value::as_u64).unwrap_or(4).clamp(1, 20);
            let delay = call.input.get("delay_ms").and_then(Value::as_u64).unwrap_or(250).min(10_000);
            call.send(Update::Working(Some(format!("working in {steps} steps")))).await;
            for step in 1..=steps {
                if !call.sleep(Duration::from_millis(delay)).await {
                    call.send(done(Outcome::Canceled)).await;
                    return;
                }
                let pct = (step * 100 / steps) as u8;
                call.send(Update::Progress {
                    stage: format!("step-{step}"),
                    pct,
                    message: format!("step {step} of {steps} done"),
                    raw: None,
                })
                .await;
            }
            call.send(done(Outcome::Completed {
                result: Some(json!({ "steps": steps })),
                message: Some(format!("finished {steps} steps")),
                mcp: None,
            }))
            .await;
        }
        "ask" => {
            call.send(Update::InputRequired { prompt: "What name should I greet?".into(), requests: None }).await;
            let Some(answer) = call.next_message().await else {
                call.send(done(Outcome::Canceled)).await;
                return;
            };
            let name = message_text(&answer);
            let name = if name.trim().is_empty() { "stranger".to_string() } else { name.trim().to_string() };
            call.send(Update::Working(Some("greeting".into()))).await;
            let greeting = format!("Hello, {name}!");
            call.send(done(Outcome::Completed {
                result: Some(json!({ "greeting": greeting })),
                message: Some(greeting),
                mcp: None,
            }))
            .await;
        }
        "report" => {
            let title = call.input.get("title").and_then(Value::as_str).unwrap_or("Demo report").to_string();
            call.send(Update::Progress {
                stage: "draft".into(),
                pct: 50,
                message: "drafting the report".into(),
                raw: None,
            })
            .await;
            let md = format!("# {title}\n\nEvery transition of this run is a ledger entry; its receipt proves it.\n");
            call.send(Update::Artifact { artifact: text_artifact("report.md", md), append: false, last_chunk: true })
                .await;
            let data = Artifact {
                artifact_id: a2a::new_artifact_id(),
                name: Some("data.json".into()),
                description: Some("figures behind the report".into()),
                parts: vec![Part::data(json!({ "title": title, "entries": 7 })).with_media_type("application/json")],
                metadata: None,
                extensions: None,
            };
            call.send(Update::Artifact { artifact: data, append: false, last_chunk: true }).await;
            call.send(done(Outcome::Completed {
                result: Some(json!({ "artifacts": ["report.md", "data.json"] })),
                message: Some("two artifacts written".into()),
                mcp: None,
            }))
            .await;
        }
        "conformance" => conformance(call).await,
        "fail" => {
            call.send(Update::Working(Some("about to fail".into()))).await;
            call.send(done(Outcome::Failed("the demo skill 'fail' always fails".into()))).await;
        }
        other => {
            call.send(done(Outcome::Rejected(format!("the demo agent has no skill {other:?}")))).await;
        }
    }
}

fn part_artifact(name: &str, part: Part) -> Artifact {
    Artifact {
        artifact_id: a2a::new_artifact_id(),
        name: Some(name.into()),
        description: None,
        parts: vec![part],
        metadata: None,
        extensions: None,
    }
}

/// The conformance kit's scenarios, chosen per message by its `messageId` prefix (longer
/// prefixes first), as the kit's reference agents behave.
async fn conformance(mut call: Call) {
    let mut message = call.message.clone();
    loop {
        let id = message.message_id.clone();
        let has = |p: &str| id.starts_with(p);
        let artifact = |a: Artifact| Update::Artifact { artifact: a, append: false, last_chunk: true };
        let complete =
            |text: &str| Update::Done(Outcome::Completed { result: None, message: Some(text.to_string()), mcp: None });
        let file = || Part::raw(b"tck".to_vec()).with_filename("output.txt").with_media_type("text/plain");
        let streamed =
            |text: &str| vec![Update::Working(None), artifact(text_part_artifact(text)), complete("Hello from TCK")];
        let script: Vec<Update> = if has("tck-input-required") {
            call.send(Update::InputRequired { prompt: "Please provide input".into(), requests: None }).await;
            match call.next_message().await {
                Some(next) => {
                    message = next;
                    continue;
                }
                None => vec![Update::Done(Outcome::Canceled)],
            }
        } else if has("tck-message-response") {
            vec![Update::Done(Outcome::Message("Direct message response".into()))]
        } else if has("tck-artifact-file-url") {
            let part =
                Part::url("https://example.com/output.txt").with_filename("output.txt").with_media_type("text/plain");
            vec![artifact(part_artifact("output.txt", part)), complete("Hello from TCK")]
        } else if has("tck-artifact-file") {
            vec![artifact(part_artifact("output.txt", file())), complete("Hello from TCK")]
        } else if has("tck-artifact-text") {
            vec![artifact(text_part_artifact("Generated text content")), complete("Hello from TCK")]
        } else if has("tck-artifact-data") {
            let part = Part::data(json!({ "key": "value", "count": 42 }));
            vec![artifact(part_artifact("data", part)), complete("Hello from TCK")]
        } else if has("tck-stream-artifact-chunked") {
            let mut first = text_part_artifact("chunk-1 ");
            first.parts = vec![Part::text("chunk-1 ")];
            let mut second = first.clone();
            second.parts = vec![Part::text("chunk-2")];
            vec![
                Update::Working(None),
                Update::Artifact { artifact: first, append: false, last_chunk: false },
                Update::Artifact { artifact: second, append: true, last_chunk: true },
                complete("Hello from TCK"),
            ]
        } else if has("tck-stream-artifact-file") {
            vec![Update::Working(None), artifact(part_artifact("output.txt", file())), complete("Hello from TCK")]
        } else if has("tck-stream-artifact-text") {
            streamed("Streamed text content")
        } else if has("tck-stream-ordering-001") {
            streamed("Ordered output")
        } else if has("tck-stream-001") {
            streamed("Stream hello from TCK")
        } else if has("tck-stream-003") {
            streamed("Stream task lifecycle")
        } else if has("tck-reject-task") {
            vec![Update::Done(Outcome::Rejected("rejected".into()))]
        } else if has("test-resubscribe-message-id") {
            call.send(Update::Working(None)).await;
            if !call.sleep(Duration::from_secs(4)).await {
                vec![Update::Done(Outcome::Canceled)]
            } else {
                vec![complete("Hello from TCK")]
            }
        } else if has("tck-complete-task") || has("tck-stream-002") {
            vec![complete("Hello from TCK")]
        } else {
            vec![complete(&format!("Unhandled messageId prefix: {id}"))]
        };
        for u in script {
            call.send(u).await;
        }
        return;
    }
}

fn text_part_artifact(text: &str) -> Artifact {
    part_artifact("output", Part::text(text))
}

impl Upstream for Demo {
    fn run(&self, call: Call) -> BoxFuture<'static, ()> {
        Box::pin(run(call))
    }
}
