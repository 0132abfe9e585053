//! An `a2a` upstream's Agent Card signature (A2A 1.0 §8.4): each entry of the card's
//! `signatures` is a JWS (RFC 7515) with a detached payload, the RFC 8785 (JCS) form of the card
//! without `signatures`; the signing input is `<protected>.<base64url(payload)>`. The keys it
//! may verify under are the manifest's: one JWK (`card_key`) or a JWKS URL (`card_jwks`, its
//! keys matched by `kid`). Algorithms are the JWS ones `jsonwebtoken` verifies (EdDSA, ES256,
//! ES384, RS256 …); `none` and HMAC are refused, as a public card cannot be MACed.
//!
//! Security rule: only the manifest's keys are trusted. A `jwk` in the protected header is the
//! signer's claim, never a key used to verify.

use std::str::FromStr as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::base::jcs::jcs;

/// Which keys an upstream's card must be signed with, and whether a call may go ahead without.
#[derive(Clone, Debug, Default)]
pub struct CardTrust {
    /// One trusted key.
    pub key: Option<Jwk>,
    /// A JWKS URL whose keys are trusted.
    pub jwks: Option<String>,
    /// Calls are refused unless the card's signature verifies.
    pub required: bool,
}

impl CardTrust {
    /// Whether the manifest names any key to check the card with.
    pub fn checks(&self) -> bool {
        self.key.is_some() || self.jwks.is_some()
    }
}

/// The outcome of checking a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A signature verified under a trusted key.
    Verified {
        /// The JWS algorithm.
        alg: String,
        /// The key id the signature named, if any.
        kid: Option<String>,
    },
    /// The card carries no signature.
    Unsigned,
    /// Signatures are present but none verifies under a trusted key (why).
    Invalid(String),
    /// The manifest names no key: the card was not checked.
    NotChecked,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Verified { alg, kid: Some(kid) } => write!(f, "signature verified ({alg}, kid {kid:?})"),
            Verdict::Verified { alg, kid: None } => write!(f, "signature verified ({alg})"),
            Verdict::Unsigned => f.write_str("card is not signed"),
            Verdict::Invalid(why) => write!(f, "signature does not verify: {why}"),
            Verdict::NotChecked => f.write_str("not checked (the manifest names no card key)"),
        }
    }
}

/// Checks `card` (the upstream's card as served) under `trust`, fetching a JWKS with `http`.
pub async fn check(card: &Value, trust: &CardTrust, http: &reqwest::Client) -> Verdict {
    if !trust.checks() {
        return Verdict::NotChecked;
    }
    let Some(sigs) = card.get("signatures").and_then(Value::as_array).filter(|s| !s.is_empty()) else {
        return Verdict::Unsigned;
    };
    let keys = match trusted_keys(trust, http).await {
        Ok(k) => k,
        Err(e) => return Verdict::Invalid(e),
    };
    let mut unsigned = card.clone();
    if let Some(o) = unsigned.as_object_mut() {
        o.remove("signatures");
    }
    let payload = B64URL.encode(jcs(&unsigned));
    let mut why = Vec::new();
    for (i, sig) in sigs.iter().enumerate() {
        match check_one(sig, &payload, &keys) {
            Ok(v) => return v,
            Err(e) => why.push(format!("signatures[{i}]: {e}")),
        }
    }
    Verdict::Invalid(why.join("; "))
}

async fn trusted_keys(trust: &CardTrust, http: &reqwest::Client) -> Result<Vec<Jwk>, String> {
    let mut keys: Vec<Jwk> = trust.key.iter().cloned().collect();
    if let Some(url) = &trust.jwks {
        let r = http
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("fetching the JWKS {url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("the JWKS {url} answered {}", r.status()));
        }
        let set: JwkSet = r.json().await.map_err(|e| format!("the JWKS {url} is not a JWK set: {e}"))?;
        keys.extend(set.keys);
    }
    Ok(keys)
}

fn check_one(sig: &Value, payload: &str, keys: &[Jwk]) -> Result<Verdict, String> {
    let protected = sig.get("protected").and_then(Value::as_str).ok_or("no \"protected\" header")?;
    let signature = sig.get("signature").and_then(Value::as_str).ok_or("no \"signature\"")?;
    let header: Value = B64URL
        .decode(protected)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("the protected header is not base64url JSON")?;
    let alg_name = header.get("alg").and_then(Value::as_str).ok_or("the protected header names no \"alg\"")?;
    let alg = Algorithm::from_str(alg_name).map_err(|_| format!("algorithm {alg_name:?} is not supported"))?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(format!("{alg_name} is a MAC, not a signature"));
    }
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_string);
    let input = format!("{protected}.{payload}");
    // Keys with the signature's kid, or every key when the signature or the keys name none.
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|k| match (&kid, &k.common.key_id) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(format!("no trusted key has kid {:?}", kid.unwrap_or_default()));
    }
    for k in candidates {
        let Ok(key) = DecodingKey::from_jwk(k) else { continue };
        if jsonwebtoken::crypto::verify(signature, input.as_bytes(), &key, alg).unwrap_or(false) {
            return Ok(Verdict::Verified { alg: alg_name.to_string(), kid });
        }
    }
    Err(format!("no trusted key verifies its {alg_name} signature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signs a card as A2A §8.4 says (EdDSA, detached JCS payload).
    fn sign(mut card: Value, key: &ledger_core::NamedKey) -> Value {
        let protected = B64URL.encode(jcs(&serde_json::json!({"alg": "EdDSA", "typ": "JOSE", "kid": key.name()})));
        let input = format!("{protected}.{}", B64URL.encode(jcs(&card)));
        let signature = B64URL.encode(key.sign(input.as_bytes()));
        card["signatures"] = serde_json::json!([{ "protected": protected, "signature": signature }]);
        card
    }

    fn jwk_of(key: &ledger_core::NamedKey, kid: &str) -> Jwk {
        serde_json::from_value(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": B64URL.encode(key.public_key()),
        }))
        .unwrap()
    }

    fn trust(key: Jwk) -> CardTrust {
        CardTrust { key: Some(key), jwks: None, required: true }
    }

    #[tokio::test]
    async fn a_card_verifies_only_under_the_named_key_and_unchanged() {
        let key = ledger_core::NamedKey::from_seed("upstream", [4; 32]).unwrap();
        let other = ledger_core::NamedKey::from_seed("upstream", [5; 32]).unwrap();
        let card = sign(serde_json::json!({"name": "up", "version": "1", "skills": []}), &key);
        let http = reqwest::Client::new();
        let v = check(&card, &trust(jwk_of(&key, "upstream")), &http).await;
        assert!(matches!(v, Verdict::Verified { ref alg, .. } if alg == "EdDSA"), "{v}");
        let v = check(&card, &trust(jwk_of(&other, "upstream")), &http).await;
        assert!(matches!(v, Verdict::Invalid(_)), "{v}");
        let mut changed = card.clone();
        changed["name"] = "impostor".into();
        assert!(matches!(check(&changed, &trust(jwk_of(&key, "upstream")), &http).await, Verdict::Invalid(_)));
        let mut unsigned = card.clone();
        unsigned.as_object_mut().unwrap().remove("signatures");
        assert_eq!(check(&unsigned, &trust(jwk_of(&key, "upstream")), &http).await, Verdict::Unsigned);
        assert_eq!(check(&card, &CardTrust::default(), &http).await, Verdict::NotChecked);
        // A kid no trusted key has.
        let v = check(&card, &trust(jwk_of(&key, "someone-else")), &http).await;
        assert!(v.to_string().contains("no trusted key has kid"), "{v}");
    }
}
