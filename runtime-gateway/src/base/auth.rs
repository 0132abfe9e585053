//! Callers and how they authenticate: bearer API keys (stored as SHA-256 only) and JWTs
//! (HS256 or EdDSA, checked for signature, issuer, audience and expiry). Anonymous callers only
//! when the configuration says so, for local use.
//!
//! Security rules kept here:
//! - a token is never stored or logged: callers hold its SHA-256, and a presented token is
//!   hashed before it is compared (in constant time);
//! - the caller's credentials stop at the gateway: upstreams get the skill input only;
//! - every task operation after the first checks that the caller owns the task.

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use serde::Deserialize;
use sha2::Digest as _;

use crate::base::config::GatewayConfig;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The name recorded as `task.accepted`'s `caller`.
    pub name: String,
    /// The run on whose behalf the caller calls (its agent showed that run's current grant in
    /// [`PARENT_GRANT_HEADER`]): a run started now names it as its `parent`.
    pub parent: Option<String>,
}

/// The header an agent behind the gateway sends its run's grant in when it calls a skill through
/// the gateway for that run, so the new run records the agent's run as its `parent`.
pub const PARENT_GRANT_HEADER: &str = "a2a-ledger-parent-grant";

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unauthenticated(pub String);

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

/// Checks bearer tokens.
pub struct Authenticator {
    anonymous: bool,
    keys: Vec<(String, [u8; 32])>,
    jwt: Option<(jsonwebtoken::DecodingKey, jsonwebtoken::Validation)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("anonymous", &self.anonymous)
            .field("keys", &self.keys.len())
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

impl Authenticator {
    /// Builds the checker from the configuration.
    pub fn new(cfg: &GatewayConfig) -> Result<Authenticator> {
        let mut keys = Vec::new();
        for c in &cfg.callers {
            let h: [u8; 32] = hex::decode(&c.token_sha256)
                .ok()
                .and_then(|b| b.try_into().ok())
                .with_context(|| format!("caller {:?}: token_sha256 must be 64 hex digits", c.name))?;
            if c.name.is_empty() || c.name.len() > 256 {
                bail!("a caller's name must be 1..256 bytes");
            }
            keys.push((c.name.clone(), h));
        }
        let jwt = match &cfg.jwt {
            None => None,
            Some(j) => {
                use jsonwebtoken::{Algorithm, DecodingKey, Validation};
                let secret = match (&j.hs256_secret_env, &j.hs256_secret_file) {
                    (Some(var), None) => Some((
                        std::env::var(var)
                            .with_context(|| format!("[jwt] hs256_secret_env names {var}, which is not set"))?,
                        format!("${var}"),
                    )),
                    (None, Some(path)) => Some((
                        std::fs::read_to_string(path)
                            .with_context(|| format!("[jwt] hs256_secret_file {}", path.display()))?
                            .trim_end_matches(['\n', '\r'])
                            .to_string(),
                        path.display().to_string(),
                    )),
                    (None, None) => None,
                    (Some(_), Some(_)) => bail!("[jwt] takes hs256_secret_env or hs256_secret_file, not both"),
                };
                let (key, alg) = match (secret, &j.ed25519_public_key) {
                    (Some((secret, from)), None) => {
                        if secret.len() < 32 {
                            bail!("the HS256 secret in {from} must be at least 32 bytes");
                        }
                        (DecodingKey::from_secret(secret.as_bytes()), Algorithm::HS256)
                    }
                    (None, Some(pk)) => {
                        let raw = base64::engine::general_purpose::STANDARD
                            .decode(pk)
                            .ok()
                            .filter(|b| b.len() == 32)
                            .context("[jwt] ed25519_public_key must be 32 bytes, base64")?;
                        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
                        (DecodingKey::from_ed_components(&x)?, Algorithm::EdDSA)
                    }
                    _ => bail!(
                        "[jwt] needs exactly one key: an HS256 secret (hs256_secret_env or hs256_secret_file) or ed25519_public_key"
                    ),
                };
                let mut v = Validation::new(alg);
                v.set_issuer(&[&j.issuer]);
                v.set_audience(&[&j.audience]);
                v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                v.leeway = j.leeway_secs;
                Some((key, v))
            }
        };
        Ok(Authenticator { anonymous: cfg.anonymous, keys, jwt })
    }

    /// Authenticates the value of an `Authorization` header (or its absence).
    pub fn authenticate(&self, header: Option<&str>) -> Result<Caller, Unauthenticated> {
        self.authenticate_until(header).map(|(caller, _)| caller)
    }

    /// [`Authenticator::authenticate`], with when the credential ends: a JWT's `exp` (Unix
    /// seconds); API keys do not end.
    pub fn authenticate_until(&self, header: Option<&str>) -> Result<(Caller, Option<u64>), Unauthenticated> {
        let Some(header) = header else {
            if self.anonymous {
                return Ok((Caller { name: "anonymous".into(), parent: None }, None));
            }
            return Err(Unauthenticated("this gateway needs a bearer token (Authorization: Bearer <token>)".into()));
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| Unauthenticated("the Authorization header must be \"Bearer <token>\"".into()))?
            .trim();
        if token.matches('.').count() == 2
            && let Some((key, validation)) = &self.jwt
        {
            return jsonwebtoken::decode::<Claims>(token, key, validation)
                .map(|d| (Caller { name: d.claims.sub, parent: None }, Some(d.claims.exp)))
                .map_err(|e| Unauthenticated(format!("the JWT was refused: {e}")));
        }
        let presented: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (name, h) in &self.keys {
            // Compare every key in full, so timing says nothing about which matched.
            let diff = h.iter().zip(presented.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 {
                found = Some(name.clone());
            }
        }
        found.map(|name| (Caller { name, parent: None }, None)).ok_or_else(|| Unauthenticated("unknown token".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::config::{ApiKeyCaller, JwtConfig, token_hash_hex};
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    const SECRET: &str = "0123456789abcdef0123456789abcdef-secret";

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    fn token(claims: serde_json::Value, secret: &str) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    }

    #[test]
    fn api_keys_and_jwts_are_checked_and_nothing_else_gets_in() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("jwt.secret");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        let cfg = GatewayConfig {
            callers: vec![ApiKeyCaller { name: "ci".into(), token_sha256: token_hash_hex("a2ag_key") }],
            jwt: Some(JwtConfig {
                issuer: "https://issuer.example".into(),
                audience: "a2a-gateway".into(),
                hs256_secret_env: None,
                hs256_secret_file: Some(secret),
                ed25519_public_key: None,
                leeway_secs: 0,
            }),
            ..GatewayConfig::default()
        };
        let auth = Authenticator::new(&cfg).unwrap();
        let bearer = |t: &str| format!("Bearer {t}");
        assert_eq!(auth.authenticate(Some(&bearer("a2ag_key"))).unwrap().name, "ci");
        assert_eq!(auth.authenticate(Some(&bearer("a2ag_other"))).unwrap_err().0, "unknown token");
        assert!(auth.authenticate(None).is_err(), "anonymous is off unless configured");
        assert!(auth.authenticate(Some("Basic abc")).unwrap_err().0.contains("Bearer"));

        let good = json_claims("alice", "https://issuer.example", "a2a-gateway", now() + 60);
        assert_eq!(auth.authenticate(Some(&bearer(&token(good.clone(), SECRET)))).unwrap().name, "alice");
        let exp = good["exp"].as_u64();
        assert_eq!(auth.authenticate_until(Some(&bearer(&token(good.clone(), SECRET)))).unwrap().1, exp);
        assert_eq!(auth.authenticate_until(Some(&bearer("a2ag_key"))).unwrap().1, None, "API keys do not end");
        let refused = |claims: serde_json::Value, secret: &str| {
            auth.authenticate(Some(&bearer(&token(claims, secret)))).unwrap_err().0
        };
        assert!(
            refused(json_claims("alice", "https://issuer.example", "a2a-gateway", now() - 5), SECRET)
                .contains("Expired")
        );
        assert!(
            refused(json_claims("alice", "https://issuer.example", "someone-else", now() + 60), SECRET)
                .contains("Audience")
        );
        assert!(
            refused(json_claims("alice", "https://evil.example", "a2a-gateway", now() + 60), SECRET).contains("Issuer")
        );
        assert!(refused(good.clone(), "another-secret-another-secret-another").contains("Signature"));
        let mut no_exp = good;
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(refused(no_exp, SECRET).contains("exp"));
    }

    fn json_claims(sub: &str, iss: &str, aud: &str, exp: u64) -> serde_json::Value {
        serde_json::json!({ "sub": sub, "iss": iss, "aud": aud, "exp": exp, "iat": now() })
    }

    #[test]
    fn anonymous_only_when_configured_and_bad_configs_are_refused() {
        let auth = Authenticator::new(&GatewayConfig { anonymous: true, ..GatewayConfig::default() }).unwrap();
        assert_eq!(auth.authenticate(None).unwrap().name, "anonymous");
        let bad = GatewayConfig {
            callers: vec![ApiKeyCaller { name: "x".into(), token_sha256: "not hex".into() }],
            ..GatewayConfig::default()
        };
        assert!(Authenticator::new(&bad).unwrap_err().to_string().contains("64 hex digits"));
    }
}
