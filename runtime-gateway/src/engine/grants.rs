//! Grants: what a run's agent may do in its workspace. A grant is a JWT (HS256, signed with the
//! gateway's grant key) with `jti` = grant id, `sub` = the run, `aud` = the agent, `exp`, `iat`,
//! and the scope: `read` and `write` path globs and the output prefix `out`.
//!
//! Security rules kept here:
//! - every workspace operation checks the grant in full, not only at task start: signature,
//!   audience, expiry, that it is the run's current grant (a rotated grant is dead), the path's
//!   shape, the globs, and for writes the output prefix;
//! - the grant key never leaves this module and the data directory (mode 0600); a grant token is
//!   never recorded or logged, only its id.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The file under the data directory holding the grant key (hex, mode 0600).
pub const GRANT_KEY_FILE: &str = "grant.key";

/// What a grant allows. In a manifest: `workspace = { read = [...], write = [...], out = "out/" }`
/// on a skill; the default reads everything and writes `out/**`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scope {
    /// Globs of paths it may read (and list).
    pub read: Vec<String>,
    /// Globs of paths it may write; writes must also be under `out`.
    pub write: Vec<String>,
    /// The output prefix.
    pub out: String,
}

impl Default for Scope {
    fn default() -> Scope {
        Scope { read: vec!["**".into()], write: vec!["out/**".into()], out: "out/".into() }
    }
}

impl Scope {
    /// This scope with `paths` added: all of them to `read`, those under the output prefix also
    /// to `write`.
    pub fn widened(&self, paths: &[String]) -> Scope {
        let mut s = self.clone();
        for p in paths {
            if !s.read.contains(p) {
                s.read.push(p.clone());
            }
            if p.starts_with(&s.out) && !s.write.contains(p) {
                s.write.push(p.clone());
            }
        }
        s
    }

    /// Checks every glob compiles.
    pub fn check(&self) -> Result<()> {
        compile(&self.read).context("read globs")?;
        compile(&self.write).context("write globs")?;
        if self.out.is_empty() || !self.out.ends_with('/') || check_path(self.out.trim_end_matches('/')).is_err() {
            anyhow::bail!("the output prefix {:?} must be a relative directory ending in '/'", self.out);
        }
        Ok(())
    }
}

/// The claims of a grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Grant id.
    pub jti: String,
    /// The run.
    pub sub: String,
    /// The agent.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Read globs.
    pub read: Vec<String>,
    /// Write globs.
    pub write: Vec<String>,
    /// Output prefix.
    pub out: String,
}

/// A workspace operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read a file.
    Read,
    /// List a directory.
    List,
    /// Write a file.
    Write,
}

impl Op {
    /// The name `workspace.denied` records.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::List => "list",
            Op::Write => "write",
        }
    }
}

/// Why an operation was refused (recorded as `workspace.denied`'s `reason`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

fn compile(globs: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        b.add(Glob::new(g).with_context(|| format!("glob {g:?}"))?);
    }
    Ok(b.build()?)
}

/// Checks a workspace path: relative, `/`-separated, no empty, `.` or `..` segments, no
/// backslashes or control characters, at most 1024 bytes.
pub fn check_path(path: &str) -> Result<(), Denied> {
    let bad = |why: &str| Err(Denied(format!("path {path:?} {why}")));
    if path.is_empty() || path.len() > 1024 {
        return bad("must be 1 to 1024 bytes");
    }
    if path.starts_with('/') {
        return bad("must be relative");
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return bad("has a backslash or a control character");
    }
    if path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return bad("has an empty, '.' or '..' segment");
    }
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Issues and checks grants.
pub struct Grants {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    /// Compiled globs by grant id (compiling costs more than the rest of a check).
    compiled: Mutex<lru::LruCache<String, Arc<(GlobSet, GlobSet)>>>,
}

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grants").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// An issued grant.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Its id (`jti`).
    pub id: String,
    /// The JWT, for the agent only.
    pub token: String,
    /// Its claims.
    pub claims: Claims,
}

impl Grants {
    /// Grants signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Grants {
        Grants {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
            compiled: Mutex::new(lru::LruCache::new(NonZeroUsize::new(4096).expect("nonzero"))),
        }
    }

    /// Loads the grant key under `data`, or creates it (32 random bytes, mode 0600).
    pub fn load_or_create(data: &Path, ttl: Duration) -> Result<Grants> {
        let path = data.join(GRANT_KEY_FILE);
        let secret = match std::fs::read_to_string(&path) {
            Ok(text) => hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = [0u8; 32];
                getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
                ledger_core::keys::write_private_file(&path, hex::encode(b).as_bytes())?;
                b.to_vec()
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if secret.len() < 32 {
            anyhow::bail!("{} must hold at least 32 bytes", path.display());
        }
        Ok(Grants::new(&secret, ttl))
    }

    /// Issues a grant for `run`'s agent.
    pub fn issue(&self, run: &str, agent: &str, scope: &Scope) -> Issued {
        let mut id = [0u8; 12];
        let _ = getrandom::fill(&mut id);
        let iat = unix_now();
        let claims = Claims {
            jti: format!("g-{}", hex::encode(id)),
            sub: run.to_string(),
            aud: agent.to_string(),
            exp: iat + self.ttl.as_secs().max(1),
            iat,
            read: scope.read.clone(),
            write: scope.write.clone(),
            out: scope.out.clone(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 encodes");
        Issued { id: claims.jti.clone(), token, claims }
    }

    /// Checks `token` for `op` on `path` of `run`, whose agent is `agent` and whose current grant
    /// is `current`. Returns the grant's id on success. An empty path lists the workspace's root.
    pub fn check(
        &self,
        token: &str,
        run: &str,
        agent: &str,
        current: &str,
        op: Op,
        path: &str,
    ) -> Result<String, Denied> {
        let claims = self.verify(token, run, agent, current)?;
        self.authorize(&claims, op, path)?;
        Ok(claims.jti)
    }

    /// Checks that verified `claims` allow `op` on `path`.
    pub fn authorize(&self, claims: &Claims, op: Op, path: &str) -> Result<(), Denied> {
        if !(op == Op::List && path.is_empty()) {
            check_path(path)?;
        }
        let sets = self.compiled(claims)?;
        match op {
            Op::Read | Op::List => {
                // A listing of a directory is allowed when the directory itself or anything
                // under it may be read.
                let probe = if op == Op::List { format!("{}/x", path.trim_end_matches('/')) } else { path.to_string() };
                let probe = probe.trim_start_matches('/');
                if !sets.0.is_match(path) && !sets.0.is_match(probe) {
                    return Err(Denied(format!("{path:?} is outside the grant's read globs {:?}", claims.read)));
                }
            }
            Op::Write => {
                if !path.starts_with(&claims.out) {
                    return Err(Denied(format!("{path:?} is outside the output prefix {:?}", claims.out)));
                }
                if !sets.1.is_match(path) {
                    return Err(Denied(format!("{path:?} is outside the grant's write globs {:?}", claims.write)));
                }
            }
        }
        Ok(())
    }

    /// Checks `token`'s signature and expiry only, whatever run and agent it is for (the caller
    /// then checks it is the current grant of its run). Returns its claims.
    pub fn verify_unbound(&self, token: &str) -> Result<Claims, Denied> {
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp", "sub", "jti"]);
        v.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v).map(|d| d.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            Denied(match e.kind() {
                K::ExpiredSignature => "the grant has expired".into(),
                K::InvalidSignature => "the grant's signature does not verify".into(),
                _ => format!("the grant is malformed: {e}"),
            })
        })
    }

    /// Checks `token` is the current grant of `run` for `agent`: signature, audience, expiry,
    /// subject and id. Returns its claims.
    pub fn verify(&self, token: &str, run: &str, agent: &str, current: &str) -> Result<Claims, Denied> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[agent]);
        v.set_required_spec_claims(&["exp", "aud", "sub", "jti"]);
        v.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                Denied(match e.kind() {
                    K::ExpiredSignature => "the grant has expired".into(),
                    K::InvalidAudience => format!("the grant is not for agent {agent:?}"),
                    K::InvalidSignature => "the grant's signature does not verify".into(),
                    _ => format!("the grant is malformed: {e}"),
                })
            })?
            .claims;
        if claims.sub != run {
            return Err(Denied(format!("the grant is for run {:?}, not this one", claims.sub)));
        }
        if claims.jti != current {
            return Err(Denied(format!("grant {} was replaced by a newer grant", claims.jti)));
        }
        Ok(claims)
    }

    fn compiled(&self, c: &Claims) -> Result<Arc<(GlobSet, GlobSet)>, Denied> {
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = cache.get(&c.jti) {
            return Ok(s.clone());
        }
        let read = compile(&c.read).map_err(|e| Denied(format!("the grant's read globs: {e:#}")))?;
        let write = compile(&c.write).map_err(|e| Denied(format!("the grant's write globs: {e:#}")))?;
        let sets = Arc::new((read, write));
        cache.put(c.jti.clone(), sets.clone());
        Ok(sets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> Grants {
        Grants::new(&[7; 32], Duration::from_secs(60))
    }

    #[test]
    fn a_grant_allows_exactly_its_scope() {
        let g = grants();
        let scope =
            Scope { read: vec!["in/**".into(), "out/**".into()], write: vec!["out/*.md".into()], out: "out/".into() };
        let i = g.issue("run-1", "agent", &scope);
        let check = |op, path: &str| g.check(&i.token, "run-1", "agent", &i.id, op, path);
        assert_eq!(check(Op::Read, "in/a/b.txt"), Ok(i.id.clone()));
        assert_eq!(check(Op::List, "in"), Ok(i.id.clone()));
        assert_eq!(check(Op::Write, "out/notes.md"), Ok(i.id.clone()));
        assert!(check(Op::Read, "secrets/key").unwrap_err().0.contains("read globs"));
        assert!(check(Op::Write, "out/notes.txt").unwrap_err().0.contains("write globs"));
        assert!(check(Op::Write, "in/a.md").unwrap_err().0.contains("output prefix"));
        for bad in ["../etc/passwd", "/abs", "in//x", "in/./x", "in\\x", ""] {
            assert!(check(Op::Read, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expired_foreign_tampered_and_replaced_grants_are_refused() {
        let g = grants();
        let i = g.issue("run-1", "agent", &Scope::default());
        assert!(g.check(&i.token, "run-1", "other", &i.id, Op::Read, "x").unwrap_err().0.contains("not for agent"));
        assert!(g.check(&i.token, "run-2", "agent", &i.id, Op::Read, "x").unwrap_err().0.contains("for run"));
        assert!(g.check(&i.token, "run-1", "agent", "g-newer", Op::Read, "x").unwrap_err().0.contains("replaced"));
        let mut t = i.token.clone().into_bytes();
        let n = t.len() - 5;
        t[n] = if t[n] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(t).unwrap();
        assert!(g.check(&tampered, "run-1", "agent", &i.id, Op::Read, "x").unwrap_err().0.contains("signature"));
        let other_key = Grants::new(&[8; 32], Duration::from_secs(60)).issue("run-1", "agent", &Scope::default());
        assert!(g.check(&other_key.token, "run-1", "agent", &other_key.id, Op::Read, "x").is_err());
        let old = Grants::new(&[7; 32], Duration::from_secs(1));
        let mut claims = old.issue("run-1", "agent", &Scope::default()).claims;
        claims.exp = unix_now() - 5;
        let expired =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&[7; 32])).unwrap();
        assert!(g.check(&expired, "run-1", "agent", &claims.jti, Op::Read, "x").unwrap_err().0.contains("expired"));
    }

    #[test]
    fn widening_adds_reads_and_writes_under_the_prefix() {
        let s = Scope::default().widened(&["extra/**".into(), "out/reports/**".into()]);
        assert!(s.read.contains(&"extra/**".to_string()) && s.read.contains(&"out/reports/**".to_string()));
        assert!(s.write.contains(&"out/reports/**".to_string()) && !s.write.contains(&"extra/**".to_string()));
    }
}
