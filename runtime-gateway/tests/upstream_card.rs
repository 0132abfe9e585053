//! An `a2a` upstream's Agent Card signature (A2A 1.0 §8.4) through two real gateways: the
//! upstream is a gateway, whose card is signed with its identity key. The relaying gateway's
//! manifest names that key: the verdict is reported at start and in /healthz, and calls go
//! through; with another key and `card_signature = "required"` every call fails with the
//! verdict (recorded in its run, whose receipt verifies); with `checked`, calls go ahead and the
//! verdict says the signature does not verify.

mod common;

use base64::Engine as _;
use common::gateway;
use serde_json::{Value, json};

/// The JWK of the key a gateway signs its card with, read from its card's protected header.
async fn card_jwk(gw: &common::Gw) -> Value {
    let card: Value = gw.get("/.well-known/agent-card.json").send().await.unwrap().json().await.unwrap();
    let protected = card["signatures"][0]["protected"].as_str().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(protected).unwrap()).unwrap();
    let mut jwk = header["jwk"].clone();
    jwk["kid"] = header["kid"].clone();
    jwk
}

fn toml_jwk(jwk: &Value) -> String {
    format!(
        "{{ kty = \"OKP\", crv = \"Ed25519\", x = \"{}\", kid = \"{}\" }}",
        jwk["x"].as_str().unwrap(),
        jwk["kid"].as_str().unwrap()
    )
}

fn relay(dir: &std::path::Path, name: &str, upstream: &str, extra: &str) -> common::Gw {
    let manifest = dir.join(format!("{name}.toml"));
    std::fs::write(
        &manifest,
        format!(
            "[[agent]]\nname = \"relay\"\nupstream = {{ kind = \"a2a\", url = \"{upstream}\"{extra} }}\n[[agent.skill]]\nid = \"echo\"\nname = \"echo\"\n"
        ),
    )
    .unwrap();
    gateway(&dir.join(name), &["--manifest", manifest.to_str().unwrap()])
}

async fn healthz_card(gw: &common::Gw) -> String {
    let h: Value = gw.get("/healthz").send().await.unwrap().json().await.unwrap();
    h["agents"][0]["card"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_upstream_card_is_checked_against_the_manifest_key() {
    let dir = tempfile::tempdir().unwrap();
    let up = gateway(&dir.path().join("up"), &["--anonymous"]);
    let jwk = card_jwk(&up).await;

    // The right key, required: verified, and calls go through.
    let good =
        relay(dir.path(), "good", &up.base, &format!(", card_signature = \"required\", card_key = {}", toml_jwk(&jwk)));
    assert!(healthz_card(&good).await.starts_with("signature verified (EdDSA"), "{}", healthz_card(&good).await);
    let (status, body) = good.invoke("echo", json!({ "text": "hi" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed", "{body}");

    // Another key, required: the call fails with the verdict, recorded and sealed.
    let mut other = jwk.clone();
    other["x"] = json!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(ledger_core::NamedKey::from_seed("other", [9; 32]).unwrap().public_key())
    );
    let bad = relay(
        dir.path(),
        "bad",
        &up.base,
        &format!(", card_signature = \"required\", card_key = {}", toml_jwk(&other)),
    );
    assert!(healthz_card(&bad).await.contains("signature does not verify"), "{}", healthz_card(&bad).await);
    let (_, body) = bad.invoke("echo", json!({ "text": "hi" })).await;
    assert_eq!(body["status"], "failed", "{body}");
    let error = body["error"].to_string();
    assert!(error.contains("signature does not verify") && error.contains("refusing to call"), "{body}");
    let v = bad.verified_receipt(body["run"].as_str().unwrap()).await;
    let last = v.entries().iter().rev().nth(1).unwrap().1.event.attrs_json();
    assert!(last["error"].as_str().unwrap().contains("signature does not verify"), "{last}");

    // Another key, checked only: the call goes ahead; the verdict says what it is.
    let checked = relay(dir.path(), "checked", &up.base, &format!(", card_key = {}", toml_jwk(&other)));
    assert!(healthz_card(&checked).await.contains("signature does not verify"));
    let (_, body) = checked.invoke("echo", json!({ "text": "hi" })).await;
    assert_eq!(body["status"], "completed", "{body}");
}

#[test]
fn required_without_a_key_is_a_manifest_error() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("agents.toml");
    std::fs::write(
        &manifest,
        "[[agent]]\nname = \"relay\"\nupstream = { kind = \"a2a\", url = \"http://127.0.0.1:9\", card_signature = \"required\" }\n[[agent.skill]]\nid = \"x\"\nname = \"x\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_runtime-gateway"))
        .args([
            "--embedded",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--manifest",
            manifest.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs card_key") && err.contains("card_jwks"), "{err}");
}
