//! The A2A gRPC binding through the real binary, driven by the official Python client (a2a-sdk,
//! its gRPC transport, `tests/python/grpc_client.py`): every method of `lf.a2a.v1.A2AService`,
//! its errors as `google.rpc.Status` with an `ErrorInfo`, the caller's bearer token as metadata,
//! and every task's receipt verified by the independent verifier. Needs the test venv of
//! ./scripts/test (`A2A_LEDGER_PYTHON`).

mod common;

use std::path::Path;
use std::process::Command;

use common::gateway_with;
use runtime_gateway::base::config::token_hash_hex;

#[test]
fn the_official_client_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let key = "a2ag_grpc_test_key";
    std::fs::write(
        data.join("gateway.toml"),
        format!(
            "[[caller]]\nname = \"local-user\"\ntoken_sha256 = \"{}\"\n[push]\nallow_networks = [\"127.0.0.0/8\"]\n",
            token_hash_hex(key)
        ),
    )
    .unwrap();
    let gw = gateway_with(&data, &["--embedded", data.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    let python = std::env::var("A2A_LEDGER_PYTHON")
        .unwrap_or_else(|_| panic!("A2A_LEDGER_PYTHON is not set: run the suite through ./scripts/test"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/grpc_client.py");
    let out = Command::new(python)
        .arg(script)
        .args([&gw.base, key, data.join("log.json").to_str().unwrap(), "http://127.0.0.1:9/hook"])
        .output()
        .unwrap();
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "grpc_client.py:\n{o}{e}");
    assert!(!o.lines().any(|l| l.starts_with("  FAIL ")), "{o}");
}
