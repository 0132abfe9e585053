//! Authentication, roles and a table of bad inputs against the real binary: each gets the right
//! status and `{"error": {"code", "message", "index"?}}`, and nothing of a refused batch is
//! appended.

mod common;

use common::*;
use ledger_core::{Entry, Event, NamedKey, RunId, TreeHash};
use ledger_server::auth::token_hash_hex;
use ledger_wire::AppendRequest;
use tokio_stream::StreamExt as _;

async fn error_of(r: reqwest::Response) -> (u16, serde_json::Value) {
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_else(|e| panic!("status {status}: body is not JSON: {e}"));
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{body}");
    (status, body["error"].clone())
}

/// A server with a configuration naming an owner and an admin besides the defaults.
fn configured_server(dir: &std::path::Path, max_body: usize) -> (Server, [String; 4]) {
    let tokens =
        ["ingest-token", "auditor-token", "owner-token", "admin-token"].map(|t| format!("{t}-{}", std::process::id()));
    let config = format!(
        r#"
checkpoint_interval_ms = 50
max_body_bytes = {max_body}

[[principal]]
name = "gw"
role = "ingest"
token_sha256 = "{}"
identities = ["gateway"]

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

[[principal]]
name = "gw2"
role = "ingest"
token_sha256 = "{}"
identities = ["gateway-2"]
"#,
        token_hash_hex(&tokens[0]),
        token_hash_hex(&tokens[1]),
        token_hash_hex(&tokens[2]),
        token_hash_hex(&tokens[3]),
        token_hash_hex(&format!("{}-2", tokens[0])),
    );
    let path = dir.join("server.toml");
    std::fs::write(&path, config).unwrap();
    let srv = Server::start(&dir.join("data"), &["--config", path.to_str().unwrap()]);
    (srv, tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, [ingest, auditor, owner, admin]) = configured_server(dir.path(), 1 << 20);
    assert!(!dir.path().join("data/tokens.json").exists(), "a configured server writes no tokens");
    let key = gateway_key();
    assert_eq!(srv.post_json(&[identity_entry(&key)], &ingest).await.status(), 200);
    assert_eq!(srv.post_json(&run(TreeHash::Blake3, "alices-run", &key, "alice", 2), &ingest).await.status(), 200);
    assert_eq!(srv.post_json(&run(TreeHash::Blake3, "bobs-run", &key, "bob", 2), &ingest).await.status(), 200);
    let size = srv.tree_size().await;

    // Appends: no token, wrong token, wrong role, actor not bound to the token.
    let other = NamedKey::from_seed("intruder", [9; 32]).unwrap();
    type Case<'a> = (Option<&'a str>, Vec<Vec<u8>>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (None, vec![identity_entry(&key)], 401, "unauthenticated"),
        (Some("not-a-token"), vec![identity_entry(&key)], 401, "unauthenticated"),
        (Some(&auditor), vec![identity_entry(&key)], 403, "forbidden"),
        (Some(&admin), vec![identity_entry(&key)], 403, "forbidden"),
        (Some(&ingest), vec![identity_entry(&other)], 403, "actor_not_permitted"),
        (Some(&ingest), run(TreeHash::Blake3, "intruded", &other, "x", 1), 403, "actor_not_permitted"),
    ];
    for (token, batch, status, code) in cases {
        let mut req = srv
            .http_client
            .post(srv.url("/v1/entries"))
            .json(&serde_json::json!({"entries": batch.iter().map(|e| B64.encode(e)).collect::<Vec<_>>()}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let (got, err) = error_of(req.send().await.unwrap()).await;
        assert_eq!((got, err["code"].as_str().unwrap()), (status, code), "{token:?}: {err}");
    }
    // A batch whose second entry is by an unbound actor appends nothing, and names the entry.
    let mixed = vec![run(TreeHash::Blake3, "half", &key, "x", 1)[0].clone(), identity_entry(&other)];
    let (status, err) = error_of(srv.post_json(&mixed, &ingest).await).await;
    assert_eq!((status, err["index"].as_u64()), (403, Some(1)), "{err}");
    assert_eq!(srv.tree_size().await, size, "nothing of a refused batch is appended");

    // Another gateway's token that appends an entry to a run (allowed: runs are not bound at
    // append) still cannot read it: a run belongs to the identity that opened it.
    let gw2 = format!("{ingest}-2");
    let k2 = NamedKey::from_seed("gateway-2", [10; 32]).unwrap();
    assert_eq!(srv.post_json(&[identity_entry(&k2)], &gw2).await.status(), 200);
    let alices = RunId::new("alices-run").unwrap();
    let next = run(TreeHash::Blake3, "alices-run", &key, "alice", 2).len() as u64;
    let nosy = Entry {
        ts: 9,
        run: alices,
        seq: next,
        actor: "gateway-2".into(),
        event: Event::TaskStatus { state: "working".into(), message: None },
        grant: None,
        payload: None,
    };
    assert_eq!(srv.post_json(&[nosy.encode()], &gw2).await.status(), 200);
    assert_eq!(srv.get("/runs/alices-run", Some(&gw2)).await.status(), 403);
    assert_eq!(srv.get("/runs/alices-run/receipt", Some(&gw2)).await.status(), 403);
    assert_eq!(srv.get("/runs/alices-run", Some(&ingest)).await.status(), 200);

    // gRPC: no token is refused at the call.
    let mut client = srv.grpc_client().await;
    let req = tonic::Request::new(tokio_stream::iter(vec![AppendRequest::of(0, [identity_entry(&key)])]));
    assert_eq!(client.append(req).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    // ... and an unbound actor is refused in-band, with the batch's position.
    let mut req = tonic::Request::new(tokio_stream::iter(vec![AppendRequest::of(5, [identity_entry(&other)])]));
    req.metadata_mut().insert("authorization", format!("Bearer {ingest}").parse().unwrap());
    let ack = client.append(req).await.unwrap().into_inner().next().await.unwrap().unwrap();
    let e = ack.error.expect("refused");
    assert_eq!((ack.batch, e.code.as_str(), e.index), (5, "actor_not_permitted", Some(0)));

    // Reads: public, role-bound and owner-bound.
    assert_eq!(srv.get("/v1/log", None).await.status(), 200);
    assert_eq!(srv.get("/v1/checkpoint", None).await.status(), 200);
    assert_eq!(srv.get("/healthz", None).await.status(), 200);
    srv.wait_checkpoint(1).await;
    assert_eq!(srv.get("/tile/entries/000.p/1", None).await.status(), 200);
    let nope = "nope".to_string();
    let reads = [
        ("/v1/entries?start=0&end=1", None, 401),
        ("/v1/entries?start=0&end=1", Some(&ingest), 403),
        ("/v1/entries?start=0&end=1", Some(&owner), 403),
        ("/v1/entries?start=0&end=1", Some(&auditor), 200),
        ("/v1/entries?start=0&end=1", Some(&admin), 200),
        ("/v1/proof/inclusion?index=0", Some(&owner), 403),
        ("/v1/proof/consistency?from=1", Some(&ingest), 403),
        ("/v1/pack", Some(&owner), 403),
        ("/metrics", None, 401),
        ("/metrics", Some(&ingest), 403),
        ("/metrics", Some(&admin), 200),
        ("/runs/alices-run/receipt?wait=5", Some(&owner), 200),
        ("/runs/bobs-run/receipt?wait=5", Some(&owner), 403),
        ("/runs/bobs-run", Some(&owner), 403),
        ("/runs/alices-run", Some(&owner), 200),
        ("/runs/bobs-run/receipt?wait=5", Some(&ingest), 200),
        ("/runs/bobs-run/receipt", Some(&nope), 401),
    ];
    for (path, token, status) in reads {
        let r = srv.get(path, token.map(String::as_str)).await;
        assert_eq!(r.status().as_u16(), status, "{path} with {token:?}");
        if status >= 400 {
            error_of(r).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_and_append_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, [ingest, auditor, ..]) = configured_server(dir.path(), 64 << 10);
    let key = gateway_key();
    assert_eq!(srv.post_json(&[identity_entry(&key)], &ingest).await.status(), 200);
    let good = run(TreeHash::Blake3, "r1", &key, "c", 2);
    assert_eq!(srv.post_json(&good[..2], &ingest).await.status(), 200);
    let size = srv.tree_size().await;

    // The same map with its header in a longer form than needed.
    let non_canonical = [vec![0xb9, 0x00, good[2][0] & 0x1f], good[2][1..].to_vec()].concat();
    let conflicting = {
        let mut e = Entry::decode(&good[1]).unwrap();
        e.ts += 1;
        e.encode()
    };
    let gap = good[3].clone(); // seq 3 while the run expects 2
    let wrong_type = {
        // An entry whose run id is not valid.
        let e = Entry {
            ts: 1,
            run: RunId::new("ok").unwrap(),
            seq: 0,
            actor: "gateway".into(),
            event: Event::TaskStatus { state: "working".into(), message: None },
            grant: None,
            payload: None,
        };
        let mut b = e.encode();
        let at = b.windows(3).position(|w| w == b"bok").map(|p| p + 1).unwrap();
        b[at] = b' ';
        b
    };
    let cbor_array = |items: &[&[u8]]| {
        let mut out = Vec::new();
        let mut enc = minicbor::Encoder::new(&mut out);
        enc.array(items.len() as u64).unwrap();
        for i in items {
            enc.bytes(i).unwrap();
        }
        out
    };
    let big = vec![0u8; 70 << 10];

    struct Case {
        name: &'static str,
        body: Vec<u8>,
        content_type: &'static str,
        status: u16,
        code: &'static str,
        index: Option<u64>,
    }
    let json = |v: serde_json::Value| serde_json::to_vec(&v).unwrap();
    let cases = vec![
        Case {
            name: "wrong media type",
            body: b"x".to_vec(),
            content_type: "text/plain",
            status: 415,
            code: "unsupported_media_type",
            index: None,
        },
        Case {
            name: "CBOR not an array",
            body: vec![0x01],
            content_type: "application/cbor",
            status: 400,
            code: "malformed_body",
            index: None,
        },
        Case {
            name: "CBOR array of ints",
            body: vec![0x81, 0x01],
            content_type: "application/cbor",
            status: 400,
            code: "malformed_body",
            index: None,
        },
        Case {
            name: "CBOR trailing bytes",
            body: [cbor_array(&[&good[2]]), vec![0]].concat(),
            content_type: "application/cbor",
            status: 400,
            code: "malformed_body",
            index: None,
        },
        Case {
            name: "JSON not an object",
            body: b"[1]".to_vec(),
            content_type: "application/json",
            status: 400,
            code: "malformed_body",
            index: None,
        },
        Case {
            name: "JSON bad base64",
            body: json(serde_json::json!({"entries": [B64.encode(&good[2]), "%%%"]})),
            content_type: "application/json",
            status: 400,
            code: "malformed_body",
            index: Some(1),
        },
        Case {
            name: "empty batch",
            body: json(serde_json::json!({"entries": []})),
            content_type: "application/json",
            status: 400,
            code: "empty_batch",
            index: None,
        },
        Case {
            name: "non-canonical entry",
            body: cbor_array(&[&good[2], &non_canonical]),
            content_type: "application/cbor",
            status: 400,
            code: "invalid_entry",
            index: Some(1),
        },
        Case {
            name: "garbage entry",
            body: cbor_array(&[&good[2], b"\xa1\x61v\x01"]),
            content_type: "application/cbor",
            status: 400,
            code: "invalid_entry",
            index: Some(1),
        },
        Case {
            name: "bad run id",
            body: cbor_array(&[&wrong_type]),
            content_type: "application/cbor",
            status: 400,
            code: "invalid_entry",
            index: Some(0),
        },
        Case {
            name: "seq gap",
            body: cbor_array(&[&gap]),
            content_type: "application/cbor",
            status: 409,
            code: "seq_gap",
            index: Some(0),
        },
        Case {
            name: "seq gap after a good entry",
            body: cbor_array(&[&good[2], &good[4]]),
            content_type: "application/cbor",
            status: 409,
            code: "seq_gap",
            index: Some(1),
        },
        Case {
            name: "conflicting duplicate",
            body: cbor_array(&[&conflicting]),
            content_type: "application/cbor",
            status: 409,
            code: "conflict",
            index: Some(0),
        },
    ];
    for c in cases {
        let r = srv.post_raw(c.body, c.content_type, &ingest).await;
        let (status, err) = error_of(r).await;
        assert_eq!(
            (status, err["code"].as_str().unwrap(), err["index"].as_u64()),
            (c.status, c.code, c.index),
            "{}: {err}",
            c.name
        );
        assert_eq!(srv.tree_size().await, size, "{}: nothing appended", c.name);
    }

    // A body over the limit is refused: with a Content-Length, before any of it is sent; a
    // chunked one as soon as it passes the limit.
    let addr = srv.http.trim_start_matches("http://").to_string();
    let head = |extra: &str| {
        format!(
            "POST /v1/entries HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ingest}\r\ncontent-type: application/cbor\r\n{extra}\r\n"
        )
    };
    let declared = raw_exchange(&addr, head(&format!("content-length: {}\r\n", big.len())).into_bytes(), Vec::new());
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert!(declared.contains("body_too_large") && declared.contains("over the 65536-byte limit"), "{declared}");
    let mut chunks = Vec::new();
    for _ in 0..40 {
        chunks.extend_from_slice(format!("{:x}\r\n", 4096).as_bytes());
        chunks.extend_from_slice(&[0u8; 4096]);
        chunks.extend_from_slice(b"\r\n");
    }
    chunks.extend_from_slice(b"0\r\n\r\n");
    let chunked = raw_exchange(&addr, head("transfer-encoding: chunked\r\n").into_bytes(), chunks);
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert_eq!(srv.tree_size().await, size);

    // Bad reads.
    let reads = [
        ("/v1/entries?start=0", 400, "bad_query"),
        ("/v1/entries?start=x&end=1", 400, "bad_query"),
        ("/v1/entries?start=2&end=1", 400, "out_of_range"),
        ("/v1/entries?start=0&end=999", 400, "out_of_range"),
        ("/v1/proof/inclusion?index=999", 400, "out_of_range"),
        ("/v1/proof/consistency?from=5&to=2", 400, "out_of_range"),
        ("/runs/nope/receipt", 404, "unknown_run"),
        ("/runs/r1/receipt", 409, "run_unsealed"),
        ("/runs/bad%20id/receipt", 400, "bad_run_id"),
        ("/runs/r1/receipt?wait=-1", 400, "bad_query"),
        ("/v1/pack?start=5&end=1", 400, "out_of_range"),
        ("/tile/0/1", 404, "bad_tile_path"),
        ("/tile/0/000", 404, "no_such_tile"),
        ("/nowhere", 404, "no_such_endpoint"),
    ];
    for (path, status, code) in reads {
        let (got, err) = error_of(srv.get(path, Some(&auditor)).await).await;
        assert_eq!((got, err["code"].as_str().unwrap()), (status, code), "{path}: {err}");
    }

    // The good rest of the run still goes in after all that.
    let r = srv.post_cbor(&good[2..], &ingest).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(srv.get("/runs/r1/receipt?wait=5", Some(&auditor)).await.status(), 200);
}

/// Sends `head`, then `body` (ignoring a peer that stops reading), and returns the response.
fn raw_exchange(addr: &str, head: Vec<u8>, body: Vec<u8>) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.write_all(&head).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&body);
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&out).contains("}}") {
                    break;
                }
            }
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    String::from_utf8_lossy(&out).into_owned()
}
