//! The gateway's browser surface against the real binary: `/app` with its security headers,
//! `/app/config.json` (endpoints, skills and their schemas, the descriptor as a suggestion), and
//! `/auth/session`: the cookie's attributes, who am I and the roles of gateway.toml, the same
//! rules as bearer tokens (another caller's run stays unknown, erasure needs an admin), CSRF
//! refusals, logout.

mod common;

use common::*;
use runtime_gateway::base::config::token_hash_hex;
use serde_json::{Value, json};

const ADMIN: &str = "a2ag_browser_admin";
const OTHER: &str = "a2ag_browser_other";

fn start(dir: &std::path::Path) -> Gw {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("gateway.toml"),
        format!(
            "admins = [\"root\"]\n[[caller]]\nname = \"root\"\ntoken_sha256 = \"{}\"\n\
             [[caller]]\nname = \"other\"\ntoken_sha256 = \"{}\"\n",
            token_hash_hex(ADMIN),
            token_hash_hex(OTHER)
        ),
    )
    .unwrap();
    let mut gw = gateway(&data, &[]);
    gw.token = ADMIN.into();
    gw
}

struct Browser {
    cookie: String,
    csrf: String,
    who: Value,
    set_cookie: String,
}

async fn login(gw: &Gw, token: &str) -> Browser {
    let r = gw.http.post(format!("{}/auth/session", gw.base)).json(&json!({ "token": token })).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let who: Value = r.json().await.unwrap();
    Browser { cookie, csrf: who["csrf_token"].as_str().unwrap().to_string(), who, set_cookie }
}

async fn error_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_and_its_config_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    for path in ["/app", "/app/"] {
        let r = gw.http.get(format!("{}{path}", gw.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), ledger_dashboard::bundle::APP_HTML);
    }
    let config: Value = gw.http.get(format!("{}/app/config.json", gw.base)).send().await.unwrap().json().await.unwrap();
    let skills = config["skills"].as_array().unwrap();
    let slow = skills.iter().find(|s| s["id"] == "slow").expect("the demo's skills are listed");
    assert_eq!(slow["input_schema"]["type"], "object", "{slow}");
    assert_eq!(config["endpoints"]["receipt"], "/runs/{id}/receipt");
    let descriptor = &config["suggested_log_descriptors"][0];
    assert_eq!(descriptor["origin"].as_str().map(|o| !o.is_empty()), Some(true), "{config}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_acts_as_its_caller_with_csrf_on_every_state_change() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let url = |p: &str| format!("{}{p}", gw.base);

    // Refusals: an unknown token, an empty one, and who am I without a session.
    let r = gw.http.post(url("/auth/session")).json(&json!({ "token": "nope" })).send().await.unwrap();
    assert_eq!(r.status(), 401, "the gateway's 401 is AIP-193's shape");
    let r = gw.http.post(url("/auth/session")).json(&json!({ "token": " " })).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = gw.http.post(url("/auth/session")).body("token=x").send().await.unwrap();
    assert_eq!(error_code(r).await, (400, "unsupported_media_type".into()));
    assert_eq!(error_code(gw.http.get(url("/auth/session")).send().await.unwrap()).await.0, 401);

    let root = login(&gw, ADMIN).await;
    let attrs: Vec<&str> = root.set_cookie.split("; ").skip(1).collect();
    assert_eq!(attrs, ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"], "{}", root.set_cookie);
    assert_eq!(root.who["user"], "root");
    assert_eq!(root.who["roles"], json!(["caller", "admin"]));
    let other = login(&gw, OTHER).await;
    assert_eq!(other.who["roles"], json!(["caller"]));
    let me: Value =
        gw.http.get(url("/auth/session")).header("cookie", &root.cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["csrf_token"], root.who["csrf_token"]);

    // A state change with the cookie: refused without the CSRF token or with a wrong one.
    let invoke = |b: &Browser, csrf: Option<&str>| {
        let mut r = gw.http.post(url("/invoke/echo")).header("cookie", &b.cookie).json(&json!({ "text": "hi" }));
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.send()
    };
    assert_eq!(error_code(invoke(&root, None).await.unwrap()).await, (403, "csrf_required".into()));
    assert_eq!(error_code(invoke(&root, Some(&other.csrf)).await.unwrap()).await, (403, "csrf_mismatch".into()));
    let r = invoke(&root, Some(&root.csrf)).await.unwrap();
    assert_eq!(r.status(), 200);
    let run = r.json::<Value>().await.unwrap()["run"].as_str().unwrap().to_string();

    // The session reads as its caller: root's run is root's, not other's.
    let get = |b: &Browser, p: &str| gw.http.get(url(p)).header("cookie", &b.cookie).send();
    assert_eq!(get(&root, &format!("/runs/{run}")).await.unwrap().status(), 200);
    assert_eq!(get(&other, &format!("/runs/{run}")).await.unwrap().status(), 404);
    // Erasure needs an admin, as with a bearer token.
    let zeros = "0".repeat(64);
    let r = gw
        .http
        .post(url(&format!("/v1/payloads/{zeros}/erase")))
        .header("cookie", &other.cookie)
        .header("x-csrf-token", &other.csrf)
        .json(&json!({ "reason": "test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Bearer requests are unchanged (no CSRF token needed, a stale cookie ignored).
    let r = gw
        .post("/invoke/echo")
        .header("cookie", "a2a_session=stale")
        .json(&json!({ "text": "bearer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Logout: needs the CSRF token, then the cookie opens nothing.
    let r = gw.http.delete(url("/auth/session")).header("cookie", &root.cookie).send().await.unwrap();
    assert_eq!(error_code(r).await, (403, "csrf_required".into()));
    let r = gw
        .http
        .delete(url("/auth/session"))
        .header("cookie", &root.cookie)
        .header("x-csrf-token", &root.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["set-cookie"], "a2a_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    assert_eq!(error_code(get(&root, "/auth/session").await.unwrap()).await.0, 401);
    assert_eq!(error_code(get(&root, &format!("/runs/{run}")).await.unwrap()).await.0, 401);
    assert_eq!(error_code(invoke(&root, Some(&root.csrf)).await.unwrap()).await.0, 401);
}

/// `GET /v1/runs`, the run search the dashboard pages with: by skill, status and accepted time,
/// every run for an admin, a caller's own runs only, and `bad_query` naming the parameter.
#[tokio::test(flavor = "multi_thread")]
async fn the_run_search_finds_runs_by_skill_status_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path());
    let mut runs = Vec::new();
    for (skill, input) in [
        ("echo", json!({ "text": "a" })),
        ("fail", json!({})),
        ("echo", json!({ "text": "b" })),
        ("report", json!({ "title": "Q3" })),
    ] {
        let (_, body) = gw.invoke(skill, input).await;
        runs.push(body["run"].as_str().unwrap().to_string());
    }
    gw.token = OTHER.into();
    let (_, body) = gw.invoke("echo", json!({ "text": "other's" })).await;
    let others = body["run"].as_str().unwrap().to_string();
    gw.token = ADMIN.into();
    let search = |query: &str, token: &str| {
        let r = gw.http.get(format!("{}/v1/runs?{query}", gw.base)).bearer_auth(token).send();
        async move {
            let r = r.await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let names = |v: &Value| -> Vec<String> {
        v["runs"].as_array().unwrap().iter().map(|r| r["run"].as_str().unwrap().to_string()).collect()
    };

    // The admin: every run, newest first, with summaries.
    let (status, all) = search("all=true&summary=true", ADMIN).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(names(&all), vec![others.clone(), runs[3].clone(), runs[2].clone(), runs[1].clone(), runs[0].clone()]);
    let failed = &all["runs"][3];
    assert_eq!((failed["skill"].as_str(), failed["status"].as_str()), (Some("fail"), Some("failed")), "{failed}");
    assert_eq!((failed["caller"].as_str(), failed["agent"].as_str()), (Some("root"), Some("gateway")));
    assert!(failed["entries"].as_u64().unwrap() >= 3 && failed["sealed"]["index"].is_u64(), "{failed}");
    let (_, echo) = search("skill=echo", ADMIN).await;
    assert_eq!(
        (names(&echo), echo["scan"].as_str()),
        (vec![others.clone(), runs[2].clone(), runs[0].clone()], Some("skill"))
    );
    let (_, failed) = search("status=failed", ADMIN).await;
    assert_eq!(names(&failed), vec![runs[1].clone()]);
    // From the report's accepted time on: the report and the other caller's run.
    let from = all["runs"][1]["ts"].as_str().unwrap();
    let (_, late) = search(&format!("from={from}&limit=1"), ADMIN).await;
    assert_eq!(names(&late), vec![others.clone()]);
    let cursor = late["cursor"].as_str().expect("one more page").to_string();
    let (_, rest) = search(&format!("from={from}&limit=1&cursor={cursor}"), ADMIN).await;
    assert_eq!((names(&rest), rest["cursor"].clone()), (vec![runs[3].clone()], Value::Null));

    // A caller finds its own runs only; naming another caller is 403.
    let (_, mine) = search("skill=echo", OTHER).await;
    assert_eq!(names(&mine), vec![others]);
    assert_eq!(search("all=true", OTHER).await.1["runs"].as_array().unwrap().len(), 1);
    let (status, body) = search("all=true&caller=root", OTHER).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("not_your_runs")));
    for (query, says) in [
        ("", "name what to search"),
        ("all=false", "all=false"),
        ("all=true&skill=echo", "all=true lists every run"),
        ("status=done", "status"),
        ("from=soon", "from"),
        ("skill=echo&cursor=agent.0000000000000001", "does not name"),
        ("all=true&limit=0", "limit=0"),
        ("all=true&page=2", "page"),
    ] {
        let (status, body) = search(query, ADMIN).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_query")), "{query}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(says), "{query}: {body}");
    }
    assert_eq!(gw.http.get(format!("{}/v1/runs?all=true", gw.base)).send().await.unwrap().status(), 401);
}

/// With the ledger embedded, the gateway serves what the dashboard's log and packs pages read:
/// the checkpoint and consistency proofs to every caller, entries and packs to admins only; the
/// pack verifies under the log's descriptor.
#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_log_is_served_for_the_log_and_packs_pages() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let (_, body) = gw.invoke("echo", json!({ "text": "for the log page" })).await;
    let run = body["run"].as_str().unwrap().to_string();
    gw.verified_receipt(&run).await;
    let get = |path: &str, token: &str| gw.http.get(format!("{}{path}", gw.base)).bearer_auth(token).send();
    let config: Value = gw.http.get(format!("{}/app/config.json", gw.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (config["endpoints"]["checkpoint"].as_str(), config["endpoints"]["pack"].as_str()),
        (Some("/v1/checkpoint"), Some("/v1/pack"))
    );

    let note = get("/v1/checkpoint", OTHER).await.unwrap().text().await.unwrap();
    let descriptor: ledger_core::LogDescriptor =
        serde_json::from_slice(&std::fs::read(gw.data.join("log.json")).unwrap()).unwrap();
    let cp = ledger_core::Checkpoint::open(&note, &descriptor.verifier_key().unwrap()).expect("the note verifies");
    assert!(cp.size >= 5, "{note}");
    let r = get("/v1/proof/consistency?from=2", OTHER).await.unwrap();
    assert_eq!(r.status(), 200);
    let proof: Value = r.json().await.unwrap();
    assert_eq!((proof["from"].as_u64(), proof["to"].as_u64()), (Some(2), Some(cp.size)));
    assert!(!proof["proof"].as_array().unwrap().is_empty());
    let r = get(&format!("/v1/proof/consistency?from={}", cp.size + 1), OTHER).await.unwrap();
    assert_eq!(error_code(r).await, (400, "out_of_range".into()));
    let r = get("/v1/proof/consistency?from=x", OTHER).await.unwrap();
    assert_eq!(error_code(r).await, (400, "bad_query".into()));
    assert_eq!(gw.http.get(format!("{}/v1/checkpoint", gw.base)).send().await.unwrap().status(), 401);

    // Entries and packs hold every caller's runs: admins only.
    assert_eq!(error_code(get("/v1/entries?start=0&end=2", OTHER).await.unwrap()).await, (403, "not_an_admin".into()));
    assert_eq!(error_code(get("/v1/pack", OTHER).await.unwrap()).await, (403, "not_an_admin".into()));
    let entries: Value = get("/v1/entries?start=0&end=2", ADMIN).await.unwrap().json().await.unwrap();
    assert_eq!(entries["entries"].as_array().unwrap().len(), 2);
    let r = get(&format!("/v1/entries?start=0&end={}", cp.size + 100), ADMIN).await.unwrap();
    assert_eq!(error_code(r).await, (400, "out_of_range".into()));
    let r = get("/v1/pack?payloads=true", ADMIN).await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "application/x-tar"));
    let tar_bytes = r.bytes().await.unwrap();
    let unpacked = dir.path().join("pack");
    tar::Archive::new(&tar_bytes[..]).unpack(&unpacked).unwrap();
    let report = ledger_core::pack::verify_dir(&unpacked, &descriptor).expect("the pack verifies");
    assert_eq!((report.start, report.end), (0, cp.size));
    assert!(report.payloads_included >= 1, "the echo's input and artifact travel with it");
    let r = get(&format!("/v1/pack?start=3&end={}", cp.size + 1), ADMIN).await.unwrap();
    assert_eq!(error_code(r).await, (400, "out_of_range".into()));
}
