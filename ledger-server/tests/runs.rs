//! Run listings (`GET /v1/runs`, gRPC `ListRuns`) and the call tree in `GET /runs/{id}`, against
//! the real binary: paging newest first, each principal seeing exactly the runs it may read,
//! and a clear 400 for each bad query.

mod common;

use common::*;
use ledger_core::entry::Protocol;
use ledger_core::seal::seal_event;
use ledger_core::{Event, NamedKey, RunId, RunStatus, TreeHash};
use ledger_server::auth::token_hash_hex;
use ledger_wire::list_runs_request::Key;
use ledger_wire::{ErrorCode, ListRunsRequest};

/// Tokens of the principals: ingest `gateway`, ingest `gateway-2`, auditor, owner of caller
/// `alice`, admin.
struct Tokens {
    gw: String,
    gw2: String,
    auditor: String,
    alice: String,
    admin: String,
}

fn server(dir: &std::path::Path) -> (Server, Tokens) {
    let t = |name: &str| format!("{name}-token-{}", std::process::id());
    let tokens = Tokens { gw: t("gw"), gw2: t("gw2"), auditor: t("audit"), alice: t("alice"), admin: t("root") };
    let config = format!(
        r#"
checkpoint_interval_ms = 50

[[principal]]
name = "gw"
role = "ingest"
token_sha256 = "{}"
identities = ["gateway"]

[[principal]]
name = "gw2"
role = "ingest"
token_sha256 = "{}"
identities = ["gateway-2"]

[[principal]]
name = "audit"
role = "auditor"
token_sha256 = "{}"

[[principal]]
name = "alice"
role = "owner"
token_sha256 = "{}"
callers = ["alice"]

[[principal]]
name = "root"
role = "admin"
token_sha256 = "{}"
"#,
        token_hash_hex(&tokens.gw),
        token_hash_hex(&tokens.gw2),
        token_hash_hex(&tokens.auditor),
        token_hash_hex(&tokens.alice),
        token_hash_hex(&tokens.admin),
    );
    let path = dir.join("server.toml");
    std::fs::write(&path, config).unwrap();
    (Server::start(&dir.join("data"), &["--config", path.to_str().unwrap()]), tokens)
}

fn accepted(run: &str, key: &NamedKey, caller: &str, context: Option<&str>, parent: Option<&str>) -> Vec<u8> {
    let event = Event::TaskAccepted {
        protocol: Protocol::A2a,
        skill: "demo.echo".into(),
        caller: caller.into(),
        input_hash: *blake3::hash(run.as_bytes()).as_bytes(),
        context: context.map(Into::into),
        parent: parent.map(|p| RunId::new(p).unwrap()),
    };
    entry(&RunId::new(run).unwrap(), 0, key.name(), event)
}

/// `accepted` and its seal by `key`.
fn sealed(accepted: Vec<u8>, run: &str, key: &NamedKey) -> Vec<Vec<u8>> {
    let seal = seal_event(TreeHash::Blake3, run, std::slice::from_ref(&accepted), RunStatus::Completed, key);
    vec![accepted, entry(&RunId::new(run).unwrap(), 1, key.name(), seal)]
}

/// The log of every test: 120 sealed runs of caller `bulk`, then the job `job` (alice, context
/// `ctx`, open) and its children `job-a` (alice, sealed), `job-b` (bob, open) by `gateway` and
/// `job-c` (alice, open) by `gateway-2`.
async fn fill(srv: &Server, t: &Tokens) -> Vec<u64> {
    let (gw, gw2) = (gateway_key(), NamedKey::from_seed("gateway-2", [8; 32]).unwrap());
    assert_eq!(srv.post_json(&[identity_entry(&gw)], &t.gw).await.status(), 200);
    assert_eq!(srv.post_json(&[identity_entry(&gw2)], &t.gw2).await.status(), 200);
    let mut bulk = Vec::new();
    for i in 0..120 {
        let r = srv.post_json(&run(TreeHash::Blake3, &format!("bulk-{i}"), &gw, "bulk", 0), &t.gw).await;
        let body: serde_json::Value = r.json().await.unwrap();
        bulk.push(body["indices"][0].as_u64().unwrap());
    }
    let post = |entries: Vec<Vec<u8>>, token: &str| {
        let token = token.to_string();
        async move { assert_eq!(srv.post_json(&entries, &token).await.status(), 200) }
    };
    post(vec![accepted("job", &gw, "alice", Some("ctx"), None)], &t.gw).await;
    post(sealed(accepted("job-a", &gw, "alice", Some("ctx"), Some("job")), "job-a", &gw), &t.gw).await;
    post(vec![accepted("job-b", &gw, "bob", Some("ctx"), Some("job"))], &t.gw).await;
    post(vec![accepted("job-c", &gw2, "alice", Some("ctx"), Some("job"))], &t.gw2).await;
    bulk
}

async fn list(srv: &Server, query: &str, token: &str) -> serde_json::Value {
    let r = srv.get(&format!("/v1/runs?{query}"), Some(token)).await;
    assert_eq!(r.status(), 200, "{query}");
    r.json().await.unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn names(page: &serde_json::Value) -> Vec<String> {
    page["runs"].as_array().unwrap().iter().map(|r| r["run"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_page_newest_first_and_show_each_principal_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, t) = server(dir.path());
    let bulk = fill(&srv, &t).await;

    // Paging: 120 runs of `bulk` in pages of 50, 50, 20, newest first.
    let mut seen = Vec::new();
    let mut query = "caller=bulk".to_string();
    let mut pages = 0;
    loop {
        let page = list(&srv, &query, &t.auditor).await;
        assert_eq!(page["total"], 120);
        pages += 1;
        seen.extend(page["runs"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()));
        match page["next"].as_u64() {
            Some(next) => {
                assert_eq!(Some(next), seen.last().copied(), "next is the last run's index");
                query = format!("caller=bulk&before={next}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut newest_first = bulk.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let page = list(&srv, "caller=bulk&limit=2", &t.admin).await;
    assert_eq!(names(&page), vec!["bulk-119", "bulk-118"]);
    assert_eq!(page["runs"][0]["index"], bulk[119]);
    assert_eq!(page["next"], bulk[118]);

    // By context and parent: auditors see every run, owners their callers' runs, ingest
    // tokens the runs their identities opened; `total` counts what the principal sees.
    let page = list(&srv, "context=ctx", &t.auditor).await;
    assert_eq!((names(&page), page["total"].as_u64()), (strings(&["job-c", "job-b", "job-a", "job"]), Some(4)));
    let page = list(&srv, "context=ctx", &t.alice).await;
    assert_eq!((names(&page), page["total"].as_u64()), (strings(&["job-c", "job-a", "job"]), Some(3)));
    let page = list(&srv, "context=ctx&limit=2", &t.alice).await;
    assert_eq!((names(&page), page["total"].as_u64()), (strings(&["job-c", "job-a"]), Some(3)));
    let next = page["next"].as_u64().unwrap();
    let page = list(&srv, &format!("context=ctx&limit=2&before={next}"), &t.alice).await;
    assert_eq!((names(&page), page["next"].clone()), (vec!["job".to_string()], serde_json::Value::Null));
    let page = list(&srv, "parent=job", &t.gw).await;
    assert_eq!((names(&page), page["total"].as_u64()), (strings(&["job-b", "job-a"]), Some(2)));
    let page = list(&srv, "parent=job", &t.gw2).await;
    assert_eq!((names(&page), page["total"].as_u64()), (vec!["job-c".to_string()], Some(1)));
    assert_eq!(list(&srv, "parent=nobody", &t.auditor).await["total"], 0);

    // By caller: an owner lists its own callers, and no other (403); ingest tokens filtered.
    assert_eq!(names(&list(&srv, "caller=alice", &t.alice).await), vec!["job-c", "job-a", "job"]);
    let r = srv.get("/v1/runs?caller=bob", Some(&t.alice)).await;
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(names(&list(&srv, "caller=alice", &t.gw2).await), vec!["job-c"]);
    assert_eq!(list(&srv, "caller=bulk", &t.gw2).await["total"], 0);

    // Open runs: accepted, not sealed.
    let page = list(&srv, "open=true", &t.auditor).await;
    assert_eq!((names(&page), page["total"].as_u64()), (strings(&["job-c", "job-b", "job"]), Some(3)));
    assert_eq!(names(&list(&srv, "open=true", &t.alice).await), vec!["job-c", "job"]);
    assert_eq!(names(&list(&srv, "open=true&limit=1", &t.gw).await), vec!["job-b"]);

    // No token.
    assert_eq!(srv.get("/v1/runs?open=true", None).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_shows_its_parent_and_children() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, t) = server(dir.path());
    fill(&srv, &t).await;
    let get = |path: &'static str, token: String| {
        let srv = &srv;
        async move {
            let r = srv.get(path, Some(&token)).await;
            assert_eq!(r.status(), 200, "{path}");
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let job = get("/runs/job", t.auditor.clone()).await;
    assert_eq!(job["parent"], serde_json::Value::Null);
    let children: Vec<&str> = job["children"].as_array().unwrap().iter().map(|c| c["run"].as_str().unwrap()).collect();
    assert_eq!(children, vec!["job-a", "job-b", "job-c"], "oldest first");
    let a_index = job["children"][0]["index"].as_u64().unwrap();
    let a = get("/runs/job-a", t.auditor.clone()).await;
    assert_eq!(a["entries"][0]["index"].as_u64(), Some(a_index), "a child's index is its task.accepted's");
    assert_eq!((a["parent"].as_str(), a["children"].as_array().map(Vec::len)), (Some("job"), Some(0)));
    // The owner sees only the children it may read.
    let job = get("/runs/job", t.alice.clone()).await;
    let children: Vec<&str> = job["children"].as_array().unwrap().iter().map(|c| c["run"].as_str().unwrap()).collect();
    assert_eq!(children, vec!["job-a", "job-c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_listing_queries_are_400_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, t) = server(dir.path());
    fill(&srv, &t).await;
    for (query, code, says) in [
        ("", "bad_query", "name what to list"),
        ("before=3", "bad_query", "name what to list"),
        ("caller=a&context=b", "bad_query", "not caller and context"),
        ("parent=a&open=true", "bad_query", "not parent and open"),
        ("open=false", "bad_query", "open=false lists nothing"),
        ("open=yes", "bad_query", "open"),
        ("caller=a&before=x", "bad_query", "before"),
        ("caller=a&before=-1", "bad_query", "before"),
        ("caller=a&limit=0", "bad_query", "limit=0"),
        ("caller=a&limit=1001", "bad_query", "1 to 1000"),
        ("caller=a&caler=b", "bad_query", "caler"),
        ("caller=", "bad_query", "empty"),
        ("parent=a%00b", "bad_run_id", "parent"),
    ] {
        let r = srv.get(&format!("/v1/runs?{query}"), Some(&t.auditor)).await;
        assert_eq!(r.status(), 400, "{query}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_runs_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, t) = server(dir.path());
    let bulk = fill(&srv, &t).await;
    let mut client = srv.grpc_client().await;
    let req = |key, before, limit| ListRunsRequest { key: Some(key), before, limit, ..Default::default() };

    let page =
        client.list_runs(authorized(req(Key::Caller("bulk".into()), None, 0), &t.auditor)).await.unwrap().into_inner();
    assert_eq!((page.runs.len(), page.total), (50, 120), "limit 0 is the default, 50");
    assert_eq!((page.runs[0].run.as_str(), page.runs[0].index), ("bulk-119", bulk[119]));
    assert_eq!(page.next, Some(bulk[70]));
    let last = client
        .list_runs(authorized(req(Key::Caller("bulk".into()), Some(bulk[2]), 10), &t.auditor))
        .await
        .unwrap()
        .into_inner();
    let runs: Vec<&str> = last.runs.iter().map(|r| r.run.as_str()).collect();
    assert_eq!((runs, last.next), (vec!["bulk-1", "bulk-0"], None));

    let open = client.list_runs(authorized(req(Key::Open(true), None, 10), &t.alice)).await.unwrap().into_inner();
    let runs: Vec<&str> = open.runs.iter().map(|r| r.run.as_str()).collect();
    assert_eq!((runs, open.total), (vec!["job-c", "job"], 2));

    let s = client.list_runs(authorized(req(Key::Caller("bob".into()), None, 0), &t.alice)).await.unwrap_err();
    assert_eq!((s.code(), ErrorCode::of(&s)), (tonic::Code::PermissionDenied, Some(ErrorCode::Forbidden)));
    let s = client
        .list_runs(authorized(ListRunsRequest { key: None, before: None, limit: 0, ..Default::default() }, &t.auditor))
        .await
        .unwrap_err();
    assert_eq!((s.code(), ErrorCode::of(&s)), (tonic::Code::InvalidArgument, Some(ErrorCode::BadQuery)));
    let s = client.list_runs(authorized(req(Key::Open(false), None, 0), &t.auditor)).await.unwrap_err();
    assert_eq!(ErrorCode::of(&s), Some(ErrorCode::BadQuery));
    let s = client.list_runs(authorized(req(Key::Context("ctx".into()), None, 1001), &t.auditor)).await.unwrap_err();
    assert_eq!(ErrorCode::of(&s), Some(ErrorCode::BadQuery));
    let s = client.list_runs(tonic::Request::new(req(Key::Open(true), None, 0))).await.unwrap_err();
    assert_eq!(s.code(), tonic::Code::Unauthenticated);
}

/// The payload `PAYLOAD` named by four runs and the indices of their first entries naming it:
/// `p-a` (alice, by `gateway`: an artifact, then a workspace read of it), `p-b` (bob, by
/// `gateway`: its task's input, then a read by `gateway-2`, which did not open it), `p-c`
/// (alice, by `gateway-2`: an artifact) and `p-d` (opened by `gateway` with an artifact, no
/// `task.accepted`).
const PAYLOAD: [u8; 32] = [0x5a; 32];

async fn fill_payload_runs(srv: &Server, t: &Tokens) -> [u64; 4] {
    let (gw, gw2) = (gateway_key(), NamedKey::from_seed("gateway-2", [8; 32]).unwrap());
    assert_eq!(srv.post_json(&[identity_entry(&gw)], &t.gw).await.status(), 200);
    assert_eq!(srv.post_json(&[identity_entry(&gw2)], &t.gw2).await.status(), 200);
    let post = |entries: Vec<Vec<u8>>, token: &str| {
        let token = token.to_string();
        async move {
            let r = srv.post_json(&entries, &token).await;
            assert_eq!(r.status(), 200);
            let body: serde_json::Value = r.json().await.unwrap();
            body["indices"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap()).collect::<Vec<u64>>()
        }
    };
    let id = |run: &str| RunId::new(run).unwrap();
    let artifact = |run: &str, seq, key: &NamedKey| {
        let event =
            Event::ArtifactAdded { name: "out".into(), media_type: "text/plain".into(), bytes: 1, hash: PAYLOAD };
        entry(&id(run), seq, key.name(), event)
    };
    let read = |run: &str, seq, key: &NamedKey| {
        entry(&id(run), seq, key.name(), Event::WorkspaceRead { path: "in".into(), bytes: 1, hash: PAYLOAD })
    };
    let a = post(vec![accepted("p-a", &gw, "alice", None, None), artifact("p-a", 1, &gw), read("p-a", 2, &gw)], &t.gw)
        .await;
    let b_accepted = Event::TaskAccepted {
        protocol: Protocol::A2a,
        skill: "demo.echo".into(),
        caller: "bob".into(),
        input_hash: PAYLOAD,
        context: None,
        parent: None,
    };
    let b = post(vec![entry(&id("p-b"), 0, gw.name(), b_accepted)], &t.gw).await;
    let c = post(vec![accepted("p-c", &gw2, "alice", None, None), artifact("p-c", 1, &gw2)], &t.gw2).await;
    let d = post(vec![artifact("p-d", 0, &gw)], &t.gw).await;
    post(vec![read("p-b", 1, &gw2)], &t.gw2).await;
    [a[1], b[0], c[1], d[0]]
}

fn refs(page: &serde_json::Value) -> Vec<(String, u64)> {
    page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["run"].as_str().unwrap().to_string(), r["index"].as_u64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_naming_a_payload_are_listed_for_those_who_may_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, t) = server(dir.path());
    let [a, b, c, d] = fill_payload_runs(&srv, &t).await;
    let hex = hex::encode(PAYLOAD);
    let r = |run: &str, index: u64| (run.to_string(), index);

    // Newest first, each run once at its first entry naming the payload.
    let page = list(&srv, &format!("payload={hex}"), &t.auditor).await;
    assert_eq!(refs(&page), vec![r("p-d", d), r("p-c", c), r("p-b", b), r("p-a", a)]);
    assert_eq!((page["total"].as_u64(), page["next"].clone()), (Some(4), serde_json::Value::Null));

    // Paged by that index.
    let page = list(&srv, &format!("payload={hex}&limit=1"), &t.admin).await;
    assert_eq!((refs(&page), page["next"].as_u64(), page["total"].as_u64()), (vec![r("p-d", d)], Some(d), Some(4)));
    let page = list(&srv, &format!("payload={hex}&limit=2&before={d}"), &t.admin).await;
    assert_eq!((refs(&page), page["next"].as_u64()), (vec![r("p-c", c), r("p-b", b)], Some(b)));
    let page = list(&srv, &format!("payload={hex}&limit=2&before={b}"), &t.admin).await;
    assert_eq!((refs(&page), page["next"].clone()), (vec![r("p-a", a)], serde_json::Value::Null));

    // The rule of GET /runs/{id}: an owner reads its callers' runs (not p-b, bob's, nor p-d,
    // which no task.accepted opened); an ingest token the runs its identities opened (not p-b
    // for gateway-2, though it named the payload there).
    let page = list(&srv, &format!("payload={hex}"), &t.alice).await;
    assert_eq!((refs(&page), page["total"].as_u64()), (vec![r("p-c", c), r("p-a", a)], Some(2)));
    let page = list(&srv, &format!("payload={hex}&limit=1&before={c}"), &t.alice).await;
    assert_eq!(
        (refs(&page), page["total"].as_u64(), page["next"].clone()),
        (vec![r("p-a", a)], Some(2), serde_json::Value::Null)
    );
    let page = list(&srv, &format!("payload={hex}"), &t.gw).await;
    assert_eq!((refs(&page), page["total"].as_u64()), (vec![r("p-d", d), r("p-b", b), r("p-a", a)], Some(3)));
    let page = list(&srv, &format!("payload={hex}"), &t.gw2).await;
    assert_eq!((refs(&page), page["total"].as_u64()), (vec![r("p-c", c)], Some(1)));
    for (run, token) in [("p-b", &t.alice), ("p-d", &t.alice), ("p-b", &t.gw2)] {
        assert_eq!(srv.get(&format!("/runs/{run}"), Some(token)).await.status(), 403, "{run}");
    }

    // A hash no entry names; a task's input hash.
    let page = list(&srv, &format!("payload={}", "0".repeat(64)), &t.auditor).await;
    assert_eq!((refs(&page), page["total"].as_u64()), (vec![], Some(0)));
    let input = hex::encode(blake3::hash(b"p-c").as_bytes());
    assert_eq!(refs(&list(&srv, &format!("payload={input}"), &t.gw2).await), vec![r("p-c", c - 1)]);
    assert_eq!(srv.get(&format!("/v1/runs?payload={hex}"), None).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_listing_needs_a_blake3() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, t) = server(dir.path());
    let [a, ..] = fill_payload_runs(&srv, &t).await;
    let hex = hex::encode(PAYLOAD);
    for query in [
        "payload=".to_string(),
        "payload=abc".to_string(),
        format!("payload={}", hex.to_uppercase()),
        format!("payload={hex}00"),
        format!("payload={}", "g".repeat(64)),
    ] {
        let r = srv.get(&format!("/v1/runs?{query}"), Some(&t.auditor)).await;
        assert_eq!(r.status(), 400, "{query}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_query", "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("64 lowercase hex digits"), "{query}: {message}");
    }
    let r = srv.get(&format!("/v1/runs?payload={hex}&caller=alice"), Some(&t.auditor)).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("not caller and payload"), "{body}");

    // gRPC: the 32 bytes, and INVALID_ARGUMENT for another length.
    let mut client = srv.grpc_client().await;
    let req = |hash: Vec<u8>, before| ListRunsRequest {
        key: Some(Key::Payload(hash)),
        before,
        limit: 0,
        ..Default::default()
    };
    let page = client.list_runs(authorized(req(PAYLOAD.to_vec(), None), &t.gw)).await.unwrap().into_inner();
    let runs: Vec<&str> = page.runs.iter().map(|r| r.run.as_str()).collect();
    assert_eq!((runs, page.total, page.next), (vec!["p-d", "p-b", "p-a"], 3, None));
    let page = client.list_runs(authorized(req(PAYLOAD.to_vec(), Some(a + 1)), &t.alice)).await.unwrap().into_inner();
    assert_eq!((page.runs.len(), page.runs[0].index, page.total), (1, a, 2));
    for bad in [vec![], vec![0x5a; 31], vec![0x5a; 33], hex.clone().into_bytes()] {
        let n = bad.len();
        let s = client.list_runs(authorized(req(bad, None), &t.auditor)).await.unwrap_err();
        assert_eq!((s.code(), ErrorCode::of(&s)), (tonic::Code::InvalidArgument, Some(ErrorCode::BadQuery)), "{n}");
        assert!(s.message().contains(&format!("32 bytes, not {n} bytes")), "{}", s.message());
    }
}

// ---- run searches ------------------------------------------------------------------------------

/// 2026-01-01T00:00:00Z in Unix ns.
const JAN1: i64 = 1_767_225_600_000_000_000;

/// Twelve runs `s-0`..`s-11` for the searches: skill `sum` for even `i`, `tr` for odd; opened by
/// `gateway-2` when `i % 3 == 0`, else `gateway`; caller `alice` below 6, else `bob`; accepted at
/// `JAN1 + i` seconds; sealed failed when `i % 4 == 0`, `s-11` left open, the others completed.
/// Returns each run's accepted index.
async fn fill_search(srv: &Server, t: &Tokens) -> Vec<u64> {
    let (gw, gw2) = (gateway_key(), NamedKey::from_seed("gateway-2", [8; 32]).unwrap());
    assert_eq!(srv.post_json(&[identity_entry(&gw)], &t.gw).await.status(), 200);
    assert_eq!(srv.post_json(&[identity_entry(&gw2)], &t.gw2).await.status(), 200);
    let mut indices = Vec::new();
    for i in 0..12i64 {
        let id = format!("s-{i}");
        let run = RunId::new(&id).unwrap();
        let (key, token) = if i % 3 == 0 { (&gw2, &t.gw2) } else { (&gw, &t.gw) };
        let event = Event::TaskAccepted {
            protocol: Protocol::A2a,
            skill: if i % 2 == 0 { "sum" } else { "tr" }.into(),
            caller: if i < 6 { "alice" } else { "bob" }.into(),
            input_hash: *blake3::hash(id.as_bytes()).as_bytes(),
            context: None,
            parent: None,
        };
        let ts = JAN1 + i * 1_000_000_000;
        let at = |seq, event| {
            ledger_core::Entry {
                ts: ts + seq as i64,
                run: run.clone(),
                seq,
                actor: key.name().into(),
                event,
                grant: None,
                payload: None,
            }
            .encode()
        };
        let mut entries = vec![at(0, event)];
        if i != 11 {
            let status = if i % 4 == 0 { RunStatus::Failed } else { RunStatus::Completed };
            let seal = seal_event(TreeHash::Blake3, &id, &entries, status, key);
            entries.push(at(1, seal));
        }
        let r = srv.post_json(&entries, token).await;
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        indices.push(body["indices"][0].as_u64().unwrap());
    }
    indices
}

fn s(v: &[i64]) -> Vec<String> {
    v.iter().map(|i| format!("s-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_find_runs_by_skill_agent_status_and_time_with_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, t) = server(dir.path());
    let at = fill_search(&srv, &t).await;

    // Every run, newest first, with its summary.
    let all = list(&srv, "all=true&summary=true", &t.auditor).await;
    assert_eq!(names(&all), s(&(0..12).rev().collect::<Vec<_>>()));
    assert_eq!((all["cursor"].clone(), all["scan"].as_str()), (serde_json::Value::Null, Some("all")));
    let row = |page: &serde_json::Value, run: &str| {
        page["runs"].as_array().unwrap().iter().find(|r| r["run"] == run).unwrap().clone()
    };
    assert_eq!(
        row(&all, "s-4"),
        serde_json::json!({
            "run": "s-4", "index": at[4], "skill": "sum", "caller": "alice", "agent": "gateway",
            "ts": (JAN1 + 4_000_000_000).to_string(), "entries": 2, "status": "failed",
            "sealed": {"index": at[4] + 1, "ts": (JAN1 + 4_000_000_001).to_string()}
        })
    );
    assert_eq!((row(&all, "s-11")["status"].as_str(), row(&all, "s-11")["sealed"].is_null()), (Some("open"), true));
    // Without `summary`, the run and its index only.
    let plain = list(&srv, "all=true&limit=1", &t.auditor).await;
    assert_eq!(plain["runs"], serde_json::json!([{"run": "s-11", "index": at[11]}]));

    for (query, runs, scan) in [
        ("skill=sum", s(&[10, 8, 6, 4, 2, 0]), "skill"),
        ("agent=gateway-2", s(&[9, 6, 3, 0]), "agent"),
        ("status=failed", s(&[8, 4, 0]), "status"),
        ("status=open", s(&[11]), "open"),
        ("from=2026-01-01T00:00:03Z&until=2026-01-01T00:00:06Z", s(&[5, 4, 3]), "time"),
        (&format!("from={}", JAN1 + 9_000_000_000) as &str, s(&[11, 10, 9]), "time"),
        ("caller=bob&skill=tr", s(&[11, 9, 7]), "caller"),
        // The fewest keys: skill `sum` (6) over completed seals (8) and the time range (7).
        ("skill=sum&status=completed&until=2026-01-01T00:00:07Z", s(&[6, 2]), "skill"),
        ("agent=gateway&status=completed&caller=alice", s(&[5, 2, 1]), "caller"),
        ("skill=none", vec![], "skill"),
    ] {
        let page = list(&srv, query, &t.auditor).await;
        assert_eq!(names(&page), runs, "{query}");
        assert_eq!(page["scan"].as_str(), Some(scan), "{query}");
    }

    // Pages follow the cursor.
    let mut seen = Vec::new();
    let mut query = "all=true&limit=5".to_string();
    for pages in 1.. {
        let page = list(&srv, &query, &t.auditor).await;
        seen.extend(names(&page));
        match page["cursor"].as_str() {
            Some(c) => query = format!("all=true&limit=5&cursor={c}"),
            None => {
                assert_eq!(pages, 3);
                break;
            }
        }
    }
    assert_eq!(seen, s(&(0..12).rev().collect::<Vec<_>>()));

    // Each principal finds only what it may read: the owner its callers' runs (another caller
    // is 403), an ingest token the runs its identities opened.
    assert_eq!(names(&list(&srv, "all=true", &t.alice).await), s(&[5, 4, 3, 2, 1, 0]));
    assert_eq!(names(&list(&srv, "status=failed", &t.alice).await), s(&[4, 0]));
    assert_eq!(names(&list(&srv, "skill=sum", &t.gw2).await), s(&[6, 0]));
    let r = srv.get("/v1/runs?caller=bob&skill=sum", Some(&t.alice)).await;
    assert_eq!(r.status(), 403);
    assert_eq!(srv.get("/v1/runs?all=true", None).await.status(), 401);

    // A listing gives summaries too.
    let mine = list(&srv, "caller=alice&summary=true&limit=1", &t.alice).await;
    assert_eq!((mine["runs"][0]["run"].as_str(), mine["runs"][0]["skill"].as_str()), (Some("s-5"), Some("tr")));
    assert_eq!((mine["total"].as_u64(), mine["runs"][0]["status"].as_str()), (Some(6), Some("completed")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_searches_are_400_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, t) = server(dir.path());
    fill_search(&srv, &t).await;
    let cursor = list(&srv, "skill=sum&limit=1", &t.auditor).await["cursor"].as_str().unwrap().to_string();
    for (query, says) in [
        ("all=false".to_string(), "all=false lists nothing"),
        ("all=true&skill=sum".into(), "all=true lists every run"),
        ("skill=".into(), "skill= is empty"),
        ("agent=".into(), "agent= is empty"),
        ("status=done".into(), "status=\"done\""),
        ("from=yesterday".into(), "from=\"yesterday\""),
        ("until=2026-13-01T00:00:00Z".into(), "until="),
        ("from=5&until=5".into(), "from (5) is not before until (5)"),
        ("skill=sum&context=c".into(), "context= lists by itself"),
        ("status=failed&open=true".into(), "search with status=open"),
        ("agent=gw&payload=00".into(), "payload= lists by itself"),
        ("skill=sum&before=3".into(), "before= pages a listing"),
        ("caller=alice&cursor=x".into(), "cursor= pages a search"),
        (format!("agent=gateway&cursor={cursor}"), "which this search does not name"),
        ("skill=sum&cursor=skill.zz".into(), "not a cursor"),
        ("all=true&limit=0".into(), "limit=0"),
        ("all=true&sumary=true".into(), "sumary"),
        ("all=true&summary=maybe".into(), "summary"),
        ("".into(), "all=true for every run"),
    ] {
        let r = srv.get(&format!("/v1/runs?{query}"), Some(&t.auditor)).await;
        assert_eq!(r.status(), 400, "{query}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_query", "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, t) = server(dir.path());
    let at = fill_search(&srv, &t).await;
    let mut client = srv.grpc_client().await;
    let search = |f: fn(&mut ListRunsRequest)| {
        let mut r = ListRunsRequest::default();
        f(&mut r);
        r
    };
    let page = client
        .list_runs(authorized(search(|r| (r.skill, r.summary) = ("sum".into(), true)), &t.auditor))
        .await
        .unwrap()
        .into_inner();
    let runs: Vec<&str> = page.runs.iter().map(|r| r.run.as_str()).collect();
    assert_eq!(
        (runs, page.scan.as_str(), page.cursor),
        (vec!["s-10", "s-8", "s-6", "s-4", "s-2", "s-0"], "skill", None)
    );
    let s4 = page.runs[3].summary.clone().unwrap();
    assert_eq!(
        s4,
        ledger_wire::RunSummary {
            skill: "sum".into(),
            caller: "alice".into(),
            agent: "gateway".into(),
            ts: JAN1 + 4_000_000_000,
            status: "failed".into(),
            sealed_index: Some(at[4] + 1),
            sealed_ts: Some(JAN1 + 4_000_000_001),
            entries: 2,
        }
    );
    // All runs, paged by cursor; a time range.
    let first = client
        .list_runs(authorized(search(|r| (r.key, r.limit) = (Some(Key::All(true)), 7)), &t.auditor))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.runs.len(), first.runs[0].summary.is_none()), (7, true));
    let mut next = search(|r| r.key = Some(Key::All(true)));
    next.cursor = first.cursor.unwrap();
    let rest = client.list_runs(authorized(next, &t.auditor)).await.unwrap().into_inner();
    let runs: Vec<&str> = rest.runs.iter().map(|r| r.run.as_str()).collect();
    assert_eq!((runs, rest.cursor), (vec!["s-4", "s-3", "s-2", "s-1", "s-0"], None));
    let range =
        search(|r| (r.from, r.until, r.status) = (Some(JAN1 + 1), Some(JAN1 + 5_000_000_000), "completed".into()));
    let page = client.list_runs(authorized(range, &t.alice)).await.unwrap().into_inner();
    let runs: Vec<&str> = page.runs.iter().map(|r| r.run.as_str()).collect();
    assert_eq!(runs, vec!["s-3", "s-2", "s-1"]);
    // Refusals: INVALID_ARGUMENT bad_query.
    for bad in [
        search(|r| r.status = "done".into()),
        search(|r| r.key = Some(Key::All(false))),
        search(|r| (r.key, r.skill) = (Some(Key::All(true)), "sum".into())),
        search(|r| (r.key, r.skill) = (Some(Key::Open(true)), "sum".into())),
        search(|r| (r.skill, r.before) = ("sum".into(), Some(3))),
        search(|r| (r.key, r.cursor) = (Some(Key::Caller("alice".into())), "all.0000000000000003".into())),
        search(|r| (r.skill, r.cursor) = ("sum".into(), "all.0000000000000003".into())),
    ] {
        let s = client.list_runs(authorized(bad.clone(), &t.auditor)).await.unwrap_err();
        assert_eq!((s.code(), ErrorCode::of(&s)), (tonic::Code::InvalidArgument, Some(ErrorCode::BadQuery)), "{bad:?}");
    }
    let s = client.list_runs(authorized(search(|r| r.key = Some(Key::Caller("bob".into()))), &t.alice)).await;
    assert_eq!(s.unwrap_err().code(), tonic::Code::PermissionDenied);
}
