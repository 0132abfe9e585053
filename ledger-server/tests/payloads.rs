//! Payloads over HTTP and gRPC against the real binary: every status and code, streaming both
//! ways, limits and quota, erasure (410 with the erasure entry's index), and a PUT that survives
//! a SIGKILL right after its answer.

mod common;

use common::*;
use ledger_core::{Entry, Event, RunId};
use ledger_server::auth::token_hash_hex;
use ledger_wire::{ErasePayloadRequest, ErrorCode, GetPayloadRequest, PayloadChunk};
use tokio_stream::StreamExt as _;

const MIB: usize = 1 << 20;

fn hash(b: &[u8]) -> [u8; 32] {
    *blake3::hash(b).as_bytes()
}

fn hex_of(b: &[u8]) -> String {
    hex::encode(hash(b))
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed).wrapping_add((i >> 16) as u8)).collect()
}

/// Ingest, auditor, owner and admin tokens; payloads limited to 3 MiB each, 5 MiB in all.
fn server(dir: &std::path::Path) -> (Server, [String; 4]) {
    let tokens = ["ingest", "auditor", "owner", "admin"].map(|t| format!("{t}-payload-token-{}", std::process::id()));
    let config = format!(
        r#"
checkpoint_interval_ms = 50

[payloads]
max_bytes = {}
quota_bytes = {}
actor = "eraser"

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
name = "dpo"
role = "admin"
token_sha256 = "{}"
"#,
        3 * MIB,
        5 * MIB,
        token_hash_hex(&tokens[0]),
        token_hash_hex(&tokens[1]),
        token_hash_hex(&tokens[2]),
        token_hash_hex(&tokens[3]),
    );
    let path = dir.join("server.toml");
    std::fs::write(&path, config).unwrap();
    let srv = Server::start(&dir.join("data"), &["--config", path.to_str().unwrap()]);
    (srv, tokens)
}

async fn put(srv: &Server, hex: &str, body: Vec<u8>, token: Option<&str>) -> reqwest::Response {
    let mut r = srv.http_client.put(srv.url(&format!("/v1/payloads/{hex}"))).body(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

/// A PUT with a chunked body (no Content-Length), in pieces of `piece` bytes.
async fn put_streamed(srv: &Server, hex: &str, body: Vec<u8>, piece: usize, token: &str) -> reqwest::Response {
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(piece).map(|c| Ok(c.to_vec())).collect();
    let stream = futures_util::stream::iter(pieces);
    srv.http_client
        .put(srv.url(&format!("/v1/payloads/{hex}")))
        .bearer_auth(token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap()
}

/// A PUT that declares `len` bytes and sends none: a refusal on the declared length comes before
/// the body is read (a client sending a large body would see the connection close under it).
fn put_declared(srv: &Server, hex: &str, len: usize, token: &str) -> (u16, serde_json::Value) {
    use std::io::{Read as _, Write as _};
    let addr = srv.http.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let head = format!(
        "PUT /v1/payloads/{hex} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: {len}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains("}}") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{text}"));
    let body = &text[text.find("\r\n\r\n").unwrap_or_else(|| panic!("{text}")) + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, v["error"].clone())
}

async fn erase(srv: &Server, hex: &str, body: serde_json::Value, token: &str) -> reqwest::Response {
    srv.http_client
        .post(srv.url(&format!("/v1/payloads/{hex}/erase")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn error_of(r: reqwest::Response) -> (u16, serde_json::Value) {
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_else(|e| panic!("status {status}: body is not JSON: {e}"));
    (status, body["error"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_payloads_every_status() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, [ingest, auditor, owner, admin]) = server(dir.path());
    let small = b"the input message".to_vec();
    let hx = hex_of(&small);

    // Stored: 201, then 200 (stored once).
    let r = put(&srv, &hx, small.clone(), Some(&ingest)).await;
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!((v["created"].as_bool(), v["length"].as_u64()), (Some(true), Some(small.len() as u64)));
    assert_eq!(put(&srv, &hx, small.clone(), Some(&ingest)).await.status(), 200);

    // Read back by auditor and admin; for ingest and owner principals a payload no run of theirs
    // names does not exist.
    for t in [&auditor, &admin] {
        let r = srv.get(&format!("/v1/payloads/{hx}"), Some(t)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert_eq!(r.bytes().await.unwrap().to_vec(), small);
    }
    for t in [&ingest, &owner] {
        let (status, e) = error_of(srv.get(&format!("/v1/payloads/{hx}"), Some(t)).await).await;
        assert_eq!((status, e["code"].as_str()), (404, Some("payload_missing")), "{e}");
    }
    // Once a run of alice's, opened by the gateway's identity, names it, both read it.
    let key = common::gateway_key();
    assert_eq!(srv.post_json(&[common::identity_entry(&key)], &ingest).await.status(), 200);
    let run = ledger_core::RunId::new("names-the-input").unwrap();
    let accepted = ledger_core::Event::TaskAccepted {
        protocol: ledger_core::Protocol::Https,
        skill: "s".into(),
        caller: "alice".into(),
        input_hash: *blake3::hash(&small).as_bytes(),
        context: None,
        parent: None,
    };
    assert_eq!(srv.post_json(&[common::entry(&run, 0, "gateway", accepted)], &ingest).await.status(), 200);
    for t in [&ingest, &owner] {
        let r = srv.get(&format!("/v1/payloads/{hx}"), Some(t)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().to_vec(), small);
    }

    // Who may store: ingest only; no token is 401.
    for t in [&auditor, &owner, &admin] {
        let (status, e) = error_of(put(&srv, &hx, small.clone(), Some(t)).await).await;
        assert_eq!((status, e["code"].as_str()), (403, Some("forbidden")), "{e}");
    }
    let (status, e) = error_of(put(&srv, &hx, small.clone(), None).await).await;
    assert_eq!((status, e["code"].as_str()), (401, Some("unauthenticated")));

    // Bytes that are not the named payload: 400, nothing stored.
    let other = b"other bytes".to_vec();
    let (status, e) = error_of(put(&srv, &hex_of(&other), small.clone(), Some(&ingest)).await).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("payload_mismatch")), "{e}");
    assert!(e["message"].as_str().unwrap().contains(&hex_of(&other)), "{e}");
    let (status, e) = error_of(srv.get(&format!("/v1/payloads/{}", hex_of(&other)), Some(&auditor)).await).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("payload_missing")));

    // A malformed name.
    for bad in ["abc", &hx.to_uppercase(), &format!("{}zz", &hx[..62])] {
        let (status, e) = error_of(srv.get(&format!("/v1/payloads/{bad}"), Some(&auditor)).await).await;
        assert_eq!((status, e["code"].as_str()), (400, Some("bad_query")), "{bad}");
    }

    // Several chunks, streamed in (no Content-Length) and out.
    let big = bytes(2 * MIB + 12_345, 1);
    let r = put_streamed(&srv, &hex_of(&big), big.clone(), 100_000, &ingest).await;
    assert_eq!(r.status(), 201);
    let r = srv.get(&format!("/v1/payloads/{}", hex_of(&big)), Some(&auditor)).await;
    assert_eq!(r.headers()["content-length"], big.len().to_string().as_str());
    assert_eq!(r.bytes().await.unwrap().to_vec(), big);

    // Over the size limit: declared, and streamed without a length.
    let huge = bytes(3 * MIB + 1, 2);
    let (status, e) = put_declared(&srv, &hex_of(&huge), huge.len(), &ingest);
    assert_eq!((status, e["code"].as_str()), (413, Some("payload_too_large")), "{e}");
    let (status, e) = error_of(put_streamed(&srv, &hex_of(&huge), huge.clone(), MIB / 2, &ingest).await).await;
    assert_eq!((status, e["code"].as_str()), (413, Some("payload_too_large")), "{e}");

    // Over the quota: 2 MiB + a little is stored, 3 MiB more would pass 5 MiB.
    let more = bytes(3 * MIB, 3);
    let (status, e) = put_declared(&srv, &hex_of(&more), more.len(), &ingest);
    assert_eq!((status, e["code"].as_str()), (507, Some("payload_quota")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("quota"), "{e}");
    // Streamed without a length: refused when the bytes are all in.
    let (status, e) = error_of(put_streamed(&srv, &hex_of(&more), more.clone(), MIB / 2, &ingest).await).await;
    assert_eq!((status, e["code"].as_str()), (507, Some("payload_quota")), "{e}");

    // Erasure: admin only, with a reason.
    let (status, e) = error_of(erase(&srv, &hx, serde_json::json!({"reason": "r"}), &auditor).await).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("forbidden")));
    let (status, e) = error_of(erase(&srv, &hx, serde_json::json!({"why": "r"}), &admin).await).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("malformed_body")));
    let (status, e) = error_of(erase(&srv, &hx, serde_json::json!({"reason": " "}), &admin).await).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("malformed_body")));
    let long = "x".repeat(4097);
    let (status, e) = error_of(erase(&srv, &hx, serde_json::json!({"reason": long}), &admin).await).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("malformed_body")));
    assert!(e["message"].as_str().unwrap().contains("4096"), "{e}");
    let r = erase(&srv, &hx, serde_json::json!({"reason": "gdpr art. 17"}), &admin).await;
    assert_eq!(r.status(), 200);
    let index = r.json::<serde_json::Value>().await.unwrap()["index"].as_u64().unwrap();
    // Idempotent: the first erasure's index.
    let r = erase(&srv, &hx, serde_json::json!({"reason": "again"}), &admin).await;
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["index"].as_u64(), Some(index));

    // 410 with the index, for reads and for stores.
    let (status, e) = error_of(srv.get(&format!("/v1/payloads/{hx}"), Some(&auditor)).await).await;
    assert_eq!((status, e["code"].as_str(), e["index"].as_u64()), (410, Some("payload_erased"), Some(index)), "{e}");
    let (status, e) = error_of(put(&srv, &hx, small.clone(), Some(&ingest)).await).await;
    assert_eq!((status, e["code"].as_str(), e["index"].as_u64()), (410, Some("payload_erased"), Some(index)), "{e}");

    // The entry records what, why, who, and the configured actor.
    let r = srv.get(&format!("/v1/entries?start={index}&end={}", index + 1), Some(&auditor)).await;
    let v: serde_json::Value = r.json().await.unwrap();
    let e = Entry::decode(&B64.decode(v["entries"][0].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(e.run, RunId::erasure(&hash(&small)));
    assert_eq!(e.actor, "eraser");
    assert_eq!(
        e.event,
        Event::PayloadErased { hash: hash(&small), reason: "gdpr art. 17".into(), approver: "dpo".into() }
    );

    // Metrics.
    let text = srv.get("/metrics", Some(&auditor)).await.text().await.unwrap();
    assert!(text.contains(&format!("ledger_payload_bytes {}", big.len())), "{text}");
    assert!(text.contains("ledger_payload_erasures_total 2"), "two erasure requests answered: {text}");
    assert!(text.contains("ledger_payload_puts_total 3"), "{text}");
}

/// The answer to a PUT means durable: kill the server right after it, and the payload is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_put_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, [ingest, auditor, _, _]) = server(dir.path());
    let b = bytes(MIB + 77, 9);
    assert_eq!(put(&srv, &hex_of(&b), b.clone(), Some(&ingest)).await.status(), 201);
    srv.kill();
    let srv = Server::start(&dir.path().join("data"), &["--config", dir.path().join("server.toml").to_str().unwrap()]);
    let r = srv.get(&format!("/v1/payloads/{}", hex_of(&b)), Some(&auditor)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, [ingest, auditor, owner, admin]) = server(dir.path());
    let mut c = srv.grpc_client().await;
    let b = bytes(2 * MIB + 5, 4);
    let h = hash(&b);
    let msgs = |data: &[u8], h: [u8; 32], len: Option<u64>| -> Vec<PayloadChunk> {
        let mut out: Vec<PayloadChunk> =
            data.chunks(300_000).map(|c| PayloadChunk { hash: vec![], length: None, data: c.to_vec() }).collect();
        if out.is_empty() {
            out.push(PayloadChunk::default());
        }
        out[0].hash = h.to_vec();
        out[0].length = len;
        out
    };
    let put = |msgs: Vec<PayloadChunk>, token: &str| authorized(tokio_stream::iter(msgs), token);

    let r = c.put_payload(put(msgs(&b, h, Some(b.len() as u64)), &ingest)).await.unwrap().into_inner();
    assert!(r.created);
    assert_eq!(r.length, b.len() as u64);
    let r = c.put_payload(put(msgs(&b, h, None), &ingest)).await.unwrap().into_inner();
    assert!(!r.created, "stored once");

    // Read back in chunks; the first names the hash and length.
    let mut s = c.get_payload(authorized(GetPayloadRequest { hash: h.to_vec() }, &auditor)).await.unwrap().into_inner();
    let mut got = Vec::new();
    let mut first = true;
    while let Some(m) = s.next().await {
        let m = m.unwrap();
        if first {
            assert_eq!((m.hash.as_slice(), m.length), (&h[..], Some(b.len() as u64)));
            first = false;
        }
        got.extend_from_slice(&m.data);
    }
    assert_eq!(got, b);

    let code = |s: tonic::Status| (s.code(), ErrorCode::of(&s), ledger_wire::Detail::of(&s).index);
    // Refusals, typed.
    let s = c.put_payload(put(msgs(&b, h, None), &auditor)).await.unwrap_err();
    assert_eq!(code(s).1, Some(ErrorCode::Forbidden));
    let s = c.put_payload(put(msgs(b"wrong", h, None), &ingest)).await.unwrap_err();
    assert_eq!(code(s).1, Some(ErrorCode::PayloadMismatch));
    // A declared length the bytes do not match; a second hash; no message at all.
    let small = b"small".to_vec();
    let s = c.put_payload(put(msgs(&small, hash(&small), Some(6)), &ingest)).await.unwrap_err();
    assert_eq!(code(s).1, Some(ErrorCode::MalformedBody));
    let mut two = msgs(&b, h, None);
    two[1].hash = vec![7; 32];
    let s = c.put_payload(put(two, &ingest)).await.unwrap_err();
    assert_eq!(code(s).1, Some(ErrorCode::MalformedBody));
    let s = c.put_payload(put(vec![], &ingest)).await.unwrap_err();
    assert_eq!(code(s).1, Some(ErrorCode::MalformedBody));
    let s = c.put_payload(put(vec![PayloadChunk { hash: vec![1; 5], length: None, data: vec![] }], &ingest)).await;
    assert_eq!(code(s.unwrap_err()).1, Some(ErrorCode::MalformedBody));
    assert_eq!(
        c.get_payload(authorized(GetPayloadRequest { hash: hash(&small).to_vec() }, &auditor))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound,
        "nothing was stored"
    );
    let huge = bytes(3 * MIB + 1, 1);
    let s = c.put_payload(put(msgs(&huge, hash(&huge), Some(huge.len() as u64)), &ingest)).await.unwrap_err();
    assert_eq!(code(s).0, tonic::Code::ResourceExhausted);
    assert_eq!(
        ErrorCode::of(&c.put_payload(put(msgs(&huge, hash(&huge), None), &ingest)).await.unwrap_err()),
        Some(ErrorCode::PayloadTooLarge)
    );
    let more = bytes(3 * MIB, 2);
    let s = c.put_payload(put(msgs(&more, hash(&more), None), &ingest)).await.unwrap_err();
    assert_eq!(code(s).1, Some(ErrorCode::PayloadQuota));
    let s = c.get_payload(authorized(GetPayloadRequest { hash: vec![1; 32] }, &auditor)).await.unwrap_err();
    assert_eq!(code(s).1, Some(ErrorCode::PayloadMissing));
    let s = c.get_payload(authorized(GetPayloadRequest { hash: vec![1; 31] }, &auditor)).await.unwrap_err();
    assert_eq!(code(s).1, Some(ErrorCode::MalformedBody));
    let s = c.get_payload(authorized(GetPayloadRequest { hash: h.to_vec() }, &owner)).await.unwrap_err();
    assert_eq!(code(s).1, Some(ErrorCode::PayloadMissing), "no run of the owner's names it");

    // Erasure: admin only; idempotent; then erased everywhere, with the index.
    let req = |token: &str| authorized(ErasePayloadRequest { hash: h.to_vec(), reason: "retention".into() }, token);
    let s = c.erase_payload(req(&ingest)).await.unwrap_err();
    assert_eq!(code(s).1, Some(ErrorCode::Forbidden));
    let index = c.erase_payload(req(&admin)).await.unwrap().into_inner().index;
    assert_eq!(c.erase_payload(req(&admin)).await.unwrap().into_inner().index, index);
    let s = c.get_payload(authorized(GetPayloadRequest { hash: h.to_vec() }, &auditor)).await.unwrap_err();
    assert_eq!(code(s), (tonic::Code::NotFound, Some(ErrorCode::PayloadErased), Some(index)));
    let s = c.put_payload(put(msgs(&b, h, None), &ingest)).await.unwrap_err();
    assert_eq!(code(s).1, Some(ErrorCode::PayloadErased));
}

/// `GET /v1/pack?payloads=true` carries the stored payloads the range names; both verifiers
/// accept it and report the erased one; a changed payload byte fails, naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packs_with_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, [ingest, auditor, _, admin]) = server(dir.path());
    let key = gateway_key();
    assert_eq!(srv.post_json(&[identity_entry(&key)], &ingest).await.status(), 200);
    // Each run's task.accepted names BLAKE3(run id) as its input.
    for id in ["kept", "erased", "never-stored"] {
        assert_eq!(srv.post_json(&run(ledger_core::TreeHash::Blake3, id, &key, "c", 1), &ingest).await.status(), 200);
    }
    for b in [b"kept".to_vec(), b"erased".to_vec()] {
        assert_eq!(put(&srv, &hex_of(&b), b, Some(&ingest)).await.status(), 201);
    }
    let r = erase(&srv, &hex_of(b"erased"), serde_json::json!({"reason": "asked"}), &admin).await;
    let erased_at = r.json::<serde_json::Value>().await.unwrap()["index"].as_u64().unwrap();
    let size = srv.tree_size().await;
    srv.wait_checkpoint(size).await;

    let log = srv.descriptor().await;
    let log_file = dir.path().join("log.json");
    std::fs::write(&log_file, serde_json::to_vec(&log).unwrap()).unwrap();
    let r = srv.get("/v1/pack?payloads=true", Some(&auditor)).await;
    assert_eq!(r.status(), 200);
    let tar_bytes = r.bytes().await.unwrap();
    let tar_path = dir.path().join("pack.tar");
    std::fs::write(&tar_path, &tar_bytes).unwrap();
    let out = dir.path().join("pack");
    tar::Archive::new(&tar_bytes[..]).unpack(&out).unwrap();
    let kept = format!("payloads/{}", hex_of(b"kept"));
    assert_eq!(std::fs::read(out.join(&kept)).unwrap(), b"kept");
    assert!(!out.join(format!("payloads/{}", hex_of(b"erased"))).exists());

    let report = ledger_core::pack::verify_dir(&out, &log).unwrap();
    assert_eq!(report.payloads_included, 1);
    assert_eq!(report.payloads_absent, vec![hex_of(b"never-stored")]);
    assert_eq!(report.payloads_erased.len(), 1);
    assert_eq!((report.payloads_erased[0].index, report.payloads_erased[0].approver.as_str()), (erased_at, "dpo"));
    let (v, code) = python_verify(&["pack", tar_path.to_str().unwrap(), "--log", log_file.to_str().unwrap()]);
    assert_eq!(code, 0, "Python rejected the pack: {v}");

    // One changed byte of the payload: both verifiers refuse, naming the file.
    std::fs::write(out.join(&kept), b"kepT").unwrap();
    let err = ledger_core::pack::verify_dir(&out, &log).unwrap_err().to_string();
    assert!(err.contains(&kept), "{err}");
    let (v, code) = python_verify(&["pack", out.to_str().unwrap(), "--log", log_file.to_str().unwrap()]);
    assert_ne!(code, 0, "{v}");
    assert!(v.to_string().contains(&kept), "{v}");

    // Without the flag: no payload files.
    let tar_bytes = srv.get("/v1/pack", Some(&auditor)).await.bytes().await.unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let names: Vec<String> =
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["manifest.json", "checkpoint", "proof.json", "entries.bin"]);
}
