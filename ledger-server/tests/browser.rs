//! The browser surface against the real binary: `/app` with its security headers, the
//! suggestions of `/app/config.json`, and `/auth/session` — the cookie's attributes, who am I,
//! the same role rules as bearer tokens, CSRF refusals, logout. (A session's expiry and the
//! bound on their number are unit tests of `ledger_dashboard::session`, with a clock passed in.)

mod common;

use common::*;
use ledger_core::TreeHash;
use ledger_server::auth::token_hash_hex;

struct Tokens {
    gw: String,
    alice: String,
    auditor: String,
}

fn server(dir: &std::path::Path) -> (Server, Tokens) {
    let t = |name: &str| format!("{name}-token-{}", std::process::id());
    let tokens = Tokens { gw: t("gw"), alice: t("alice"), auditor: t("audit") };
    let config = format!(
        r#"
checkpoint_interval_ms = 50

[[principal]]
name = "gw"
role = "ingest"
token_sha256 = "{}"
identities = ["gateway"]

[[principal]]
name = "alice"
role = "owner"
token_sha256 = "{}"
callers = ["alice"]

[[principal]]
name = "audit"
role = "auditor"
token_sha256 = "{}"
"#,
        token_hash_hex(&tokens.gw),
        token_hash_hex(&tokens.alice),
        token_hash_hex(&tokens.auditor),
    );
    let path = dir.join("server.toml");
    std::fs::write(&path, config).unwrap();
    (Server::start(&dir.join("data"), &["--config", path.to_str().unwrap()]), tokens)
}

/// A logged-in browser: its cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
    who: serde_json::Value,
    set_cookie: String,
}

async fn login(srv: &Server, token: &str, tls: bool) -> Browser {
    let mut r = srv.http_client.post(srv.url("/auth/session")).json(&serde_json::json!({"token": token}));
    if tls {
        r = r.header("x-forwarded-proto", "https");
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none(), "no other origin reads a session");
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let who: serde_json::Value = r.json().await.unwrap();
    Browser { cookie, csrf: who["csrf_token"].as_str().unwrap().to_string(), who, set_cookie }
}

async fn error_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_served_with_a_strict_policy_and_config_only_suggests() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, _) = server(dir.path());
    for path in ["/app", "/app/"] {
        let r = srv.get(path, None).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
        assert!(!csp.contains("http") && !csp.contains("unsafe"), "{csp}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), ledger_dashboard::bundle::APP_HTML);
    }
    let config: serde_json::Value = srv.get("/app/config.json", None).await.json().await.unwrap();
    let descriptor = serde_json::to_value(srv.descriptor().await).unwrap();
    assert_eq!(config["suggested_log_descriptors"], serde_json::json!([descriptor]));
    assert_eq!(config["endpoints"]["receipt"], "/runs/{id}/receipt");
    assert_eq!(config["bundle_integrity"], ledger_dashboard::bundle::integrity());
    assert_eq!(srv.get("/app/nothing", None).await.status(), 404);

    // Opened from disk, the dashboard reads the API across origins with a bearer token: a GET's
    // preflight is consented to, any other method's is not, and errors are readable too.
    let preflight = |method: &'static str| {
        srv.http_client
            .request(reqwest::Method::OPTIONS, srv.url("/v1/runs"))
            .header("origin", "null")
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let r = preflight("GET").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["access-control-allow-headers"], "authorization");
    assert_eq!(r.headers()["access-control-allow-methods"], "GET");
    assert!(r.headers().get("access-control-allow-credentials").is_none());
    let r = preflight("POST").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none(), "no consent to a cross-origin write");
    let r = srv.get("/v1/runs?caller=x", Some("wrong")).await;
    assert_eq!(
        (r.status().as_u16(), r.headers().get("access-control-allow-origin").cloned()),
        (401, Some("*".parse().unwrap()))
    );
    let r = srv.get("/auth/session", None).await;
    assert!(r.headers().get("access-control-allow-origin").is_none(), "sessions are the page's own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_made_from_a_token_and_reads_what_the_token_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, t) = server(dir.path());
    let gw = gateway_key();
    assert_eq!(srv.post_json(&[identity_entry(&gw)], &t.gw).await.status(), 200);
    for (id, caller) in [("run-alice", "alice"), ("run-bob", "bob")] {
        assert_eq!(srv.post_json(&run(TreeHash::Blake3, id, &gw, caller, 1), &t.gw).await.status(), 200);
    }

    // Refusals: not JSON (415), an unknown token (401), no session (401).
    let r = srv.http_client.post(srv.url("/auth/session")).body(format!("token={}", t.alice)).send().await.unwrap();
    assert_eq!(error_code(r).await, (415, "unsupported_media_type".into()));
    let r = srv.http_client.post(srv.url("/auth/session")).json(&serde_json::json!({"token": "nope"})).send();
    assert_eq!(error_code(r.await.unwrap()).await, (401, "unauthenticated".into()));
    assert_eq!(error_code(srv.get("/auth/session", None).await).await, (401, "unauthenticated".into()));

    // The cookie's attributes; Secure only when a proxy says the request came over TLS.
    let alice = login(&srv, &t.alice, false).await;
    let attrs: Vec<&str> = alice.set_cookie.split("; ").skip(1).collect();
    assert_eq!(attrs, ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"], "{}", alice.set_cookie);
    assert!(alice.cookie.starts_with("a2a_session=") && alice.cookie.len() > 50);
    assert_eq!(alice.who["user"], "alice");
    assert_eq!(alice.who["roles"], serde_json::json!(["owner"]));
    assert_eq!(alice.who["scopes"]["callers"], serde_json::json!(["alice"]));
    assert_eq!(alice.who["scopes"]["reads_all"], false);
    assert!(login(&srv, &t.alice, true).await.set_cookie.ends_with("; Secure"));

    // Who am I, with the cookie.
    let r = srv.http_client.get(srv.url("/auth/session")).header("cookie", &alice.cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (me["user"].clone(), me["csrf_token"].clone()),
        (alice.who["user"].clone(), alice.who["csrf_token"].clone())
    );

    // Roles decide as on the API: alice lists her runs only, reads no pack and not bob's run.
    let get = |path: &str, cookie: &str| srv.http_client.get(srv.url(path)).header("cookie", cookie).send();
    let mine: serde_json::Value = get("/v1/runs?caller=alice", &alice.cookie).await.unwrap().json().await.unwrap();
    assert_eq!(mine["runs"][0]["run"], "run-alice");
    assert_eq!(error_code(get("/v1/runs?caller=bob", &alice.cookie).await.unwrap()).await, (403, "forbidden".into()));
    assert_eq!(error_code(get("/v1/pack", &alice.cookie).await.unwrap()).await, (403, "forbidden".into()));
    assert_eq!(get("/runs/run-alice", &alice.cookie).await.unwrap().status(), 200);
    assert_ne!(get("/runs/run-bob", &alice.cookie).await.unwrap().status(), 200);
    let auditor = login(&srv, &t.auditor, false).await;
    assert_eq!(get("/runs/run-bob", &auditor.cookie).await.unwrap().status(), 200);
    assert_eq!(get("/v1/pack", &auditor.cookie).await.unwrap().status(), 200);
    let r = get("/v1/runs?caller=alice", "a2a_session=forged").await.unwrap();
    assert_eq!(error_code(r).await, (401, "unauthenticated".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_with_the_cookie_need_the_csrf_token_and_logout_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, t) = server(dir.path());
    let gw = gateway_key();
    let ingest = login(&srv, &t.gw, false).await;
    let body = serde_json::json!({"entries": [B64.encode(identity_entry(&gw))]});
    let post = |csrf: Option<&str>| {
        let mut r = srv.http_client.post(srv.url("/v1/entries")).header("cookie", &ingest.cookie).json(&body);
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.send()
    };
    assert_eq!(error_code(post(None).await.unwrap()).await, (403, "csrf_required".into()));
    assert_eq!(error_code(post(Some("guess")).await.unwrap()).await, (403, "csrf_mismatch".into()));
    assert_eq!(srv.tree_size().await, 0, "nothing refused was appended");
    assert_eq!(post(Some(&ingest.csrf)).await.unwrap().status(), 200);
    // Bearer requests are unchanged, a stale cookie beside the token plays no part.
    let r = srv
        .http_client
        .post(srv.url("/v1/entries"))
        .bearer_auth(&t.gw)
        .header("cookie", "a2a_session=stale")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Logout needs the CSRF token too, then the session is gone everywhere.
    let delete = |csrf: Option<&str>| {
        let mut r = srv.http_client.delete(srv.url("/auth/session")).header("cookie", &ingest.cookie);
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.send()
    };
    assert_eq!(error_code(delete(None).await.unwrap()).await, (403, "csrf_required".into()));
    let r = delete(Some(&ingest.csrf)).await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["set-cookie"], "a2a_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let r = srv.http_client.get(srv.url("/auth/session")).header("cookie", &ingest.cookie).send().await.unwrap();
    assert_eq!(error_code(r).await, (401, "unauthenticated".into()));
    assert_eq!(error_code(post(Some(&ingest.csrf)).await.unwrap()).await, (401, "unauthenticated".into()));
    assert_eq!(error_code(delete(Some(&ingest.csrf)).await.unwrap()).await, (401, "unauthenticated".into()));
}
