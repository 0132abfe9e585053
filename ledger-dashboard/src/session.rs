//! Browser sessions: `POST /auth/session` with a bearer token makes one, a cookie names it.
//!
//! Security rules kept here:
//! - a session id is 32 random bytes from the OS; the server keeps only its SHA-256 (like
//!   tokens, an id is never stored or logged), and compares CSRF tokens in constant time;
//! - the cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page
//!   sends it), `Path=/`, `Secure` when the request came over TLS (the services serve plain
//!   HTTP; TLS is a proxy's, which says so with `X-Forwarded-Proto: https` or
//!   `Forwarded: proto=https`), and lives at most [`Limits::lifetime`] (never longer than the
//!   credential it was made from, e.g. a JWT's `exp`);
//! - a request that carries an `Authorization` header is a bearer request: the cookie is
//!   ignored, nothing changes for API clients;
//! - with the cookie, every request other than GET, HEAD and OPTIONS must carry
//!   `X-CSRF-Token` equal to the session's CSRF token ([`Sessions::guard`]), else 403
//!   `csrf_required` / `csrf_mismatch`: a page on another origin can neither read the token nor
//!   set the header without the server's CORS consent, which no cookie route gives;
//! - sessions live in memory only (a restart logs everyone out) and are bounded in number
//!   ([`Limits::max_sessions`]): when full, expired sessions are dropped, then the one closest
//!   to expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::Digest as _;

/// The session cookie's name.
pub const COOKIE: &str = "a2a_session";

/// The header a cookie request that changes state carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How many sessions, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Sessions kept at once, at most.
    pub max_sessions: usize,
    /// A session's lifetime from its creation (it is not extended by use).
    pub lifetime: Duration,
}

impl Default for Limits {
    /// 10,000 sessions of 8 hours.
    fn default() -> Limits {
        Limits { max_sessions: 10_000, lifetime: Duration::from_secs(8 * 3600) }
    }
}

/// One session.
#[derive(Clone, Debug)]
pub struct Session<P> {
    /// Who it is for.
    pub principal: P,
    /// Its CSRF token.
    pub csrf: String,
    /// When it ends.
    pub expires: Instant,
}

/// A session just made: the id for the cookie (given out once) and its CSRF token.
#[derive(Clone, Debug)]
pub struct Created {
    /// The cookie's value.
    pub id: String,
    /// The CSRF token.
    pub csrf: String,
    /// Time until it expires.
    pub lifetime: Duration,
}

/// Why a cookie request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The cookie names no live session (unknown, logged out, or expired): 401.
    NoSession,
    /// A state-changing cookie request without `X-CSRF-Token`: 403.
    CsrfRequired,
    /// A state-changing cookie request whose `X-CSRF-Token` is not its session's: 403.
    CsrfMismatch,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::NoSession => StatusCode::UNAUTHORIZED,
            Refusal::CsrfRequired | Refusal::CsrfMismatch => StatusCode::FORBIDDEN,
        }
    }

    /// The stable error code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NoSession => "unauthenticated",
            Refusal::CsrfRequired => "csrf_required",
            Refusal::CsrfMismatch => "csrf_mismatch",
        }
    }

    /// What to do about it.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::NoSession => "the session cookie names no live session (logged out or expired); log in again",
            Refusal::CsrfRequired => {
                "a request with the session cookie that changes state must carry X-CSRF-Token (from POST /auth/session)"
            }
            Refusal::CsrfMismatch => "X-CSRF-Token is not this session's CSRF token",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code(), "message": self.message()}});
        (self.status(), axum::Json(body)).into_response()
    }
}

/// The sessions of one server, in memory.
#[derive(Debug)]
pub struct Sessions<P> {
    limits: Limits,
    by_id: Mutex<HashMap<[u8; 32], Session<P>>>,
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    // Without OS randomness no session can be made safely: failing loudly is the only choice.
    getrandom::fill(&mut b).expect("OS randomness for a session id");
    B64URL.encode(b)
}

fn id_hash(id: &str) -> [u8; 32] {
    sha2::Sha256::digest(id.as_bytes()).into()
}

/// The value of the session cookie in `headers`, if any.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// Did the request come over TLS (as a proxy in front says)?
pub fn over_tls(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').next().unwrap_or("").trim().eq_ignore_ascii_case("https"));
    let forwarded = headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',').next().unwrap_or("").split(';').any(|kv| kv.trim().eq_ignore_ascii_case("proto=https"))
    });
    forwarded_proto || forwarded
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie(created: &Created, secure: bool) -> HeaderValue {
    let v = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        created.id,
        created.lifetime.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).expect("base64url and ASCII")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let v = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}", if secure { "; Secure" } else { "" });
    HeaderValue::from_str(&v).expect("ASCII")
}

/// Is this a bearer request (an `Authorization` header is present)? Then the cookie plays no part.
pub fn is_bearer(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
}

impl<P: Clone> Sessions<P> {
    /// No sessions yet.
    pub fn new(limits: Limits) -> Sessions<P> {
        Sessions { limits, by_id: Mutex::new(HashMap::new()) }
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Sessions held now (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.by_id.lock().expect("sessions lock").len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes a session for `principal`, ending at `now` + the lifetime or at `not_after`,
    /// whichever is first.
    pub fn create(&self, principal: P, now: Instant, not_after: Option<Instant>) -> Created {
        let mut expires = now + self.limits.lifetime;
        if let Some(n) = not_after {
            expires = expires.min(n);
        }
        let (id, csrf) = (random_token(), random_token());
        let mut map = self.by_id.lock().expect("sessions lock");
        if map.len() >= self.limits.max_sessions {
            map.retain(|_, s| s.expires > now);
        }
        while map.len() >= self.limits.max_sessions.max(1) {
            let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) else { break };
            map.remove(&oldest);
        }
        map.insert(id_hash(&id), Session { principal, csrf: csrf.clone(), expires });
        Created { id, csrf, lifetime: expires.saturating_duration_since(now) }
    }

    /// The session the request's cookie names: `Ok(None)` for a bearer request or one without
    /// the cookie, [`Refusal::NoSession`] for a cookie that names no live session.
    pub fn principal(&self, headers: &HeaderMap, now: Instant) -> Result<Option<Session<P>>, Refusal> {
        if is_bearer(headers) {
            return Ok(None);
        }
        let Some(id) = cookie_value(headers) else { return Ok(None) };
        let mut map = self.by_id.lock().expect("sessions lock");
        let key = id_hash(id);
        match map.get(&key) {
            Some(s) if s.expires > now => Ok(Some(s.clone())),
            Some(_) => {
                map.remove(&key);
                Err(Refusal::NoSession)
            }
            None => Err(Refusal::NoSession),
        }
    }

    /// The CSRF rule: a cookie request other than GET, HEAD or OPTIONS must name a live
    /// session and carry its CSRF token in `X-CSRF-Token`. Bearer requests and requests without
    /// the cookie pass (their own authentication decides).
    pub fn guard(&self, method: &Method, headers: &HeaderMap, now: Instant) -> Result<(), Refusal> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let Some(session) = self.principal(headers, now)? else { return Ok(()) };
        let Some(sent) = headers.get(CSRF_HEADER) else { return Err(Refusal::CsrfRequired) };
        if same(sent.as_bytes(), session.csrf.as_bytes()) { Ok(()) } else { Err(Refusal::CsrfMismatch) }
    }

    /// Ends the session the cookie names; whether there was one.
    pub fn remove(&self, headers: &HeaderMap) -> bool {
        cookie_value(headers).is_some_and(|id| self.by_id.lock().expect("sessions lock").remove(&id_hash(id)).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("theme=dark; {COOKIE}={id}; other=1").parse().unwrap());
        h
    }

    fn sessions(max: usize, secs: u64) -> Sessions<&'static str> {
        Sessions::new(Limits { max_sessions: max, lifetime: Duration::from_secs(secs) })
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_expires() {
        let s = sessions(10, 60);
        let t0 = Instant::now();
        let c = s.create("alice", t0, None);
        assert_eq!(c.lifetime, Duration::from_secs(60));
        assert_ne!(c.id, c.csrf);
        let h = with_cookie(&c.id);
        assert_eq!(s.principal(&h, t0).unwrap().unwrap().principal, "alice");
        assert_eq!(s.principal(&h, t0 + Duration::from_secs(59)).unwrap().unwrap().csrf, c.csrf);
        assert_eq!(s.principal(&h, t0 + Duration::from_secs(60)).unwrap_err(), Refusal::NoSession);
        assert_eq!(s.len(), 0, "an expired session is dropped when seen");
        assert_eq!(s.principal(&with_cookie("forged"), t0).unwrap_err(), Refusal::NoSession);
        assert!(s.principal(&HeaderMap::new(), t0).unwrap().is_none());
    }

    #[test]
    fn a_session_never_outlives_its_credential() {
        let s = sessions(10, 3600);
        let t0 = Instant::now();
        let c = s.create("jwt-user", t0, Some(t0 + Duration::from_secs(30)));
        assert_eq!(c.lifetime, Duration::from_secs(30));
        assert!(s.principal(&with_cookie(&c.id), t0 + Duration::from_secs(31)).is_err());
    }

    #[test]
    fn bearer_requests_ignore_the_cookie() {
        let s = sessions(10, 60);
        let t0 = Instant::now();
        let mut h = with_cookie("unknown");
        h.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert!(s.principal(&h, t0).unwrap().is_none());
        assert_eq!(s.guard(&Method::POST, &h, t0), Ok(()));
    }

    #[test]
    fn state_changes_with_the_cookie_need_the_csrf_token() {
        let s = sessions(10, 60);
        let t0 = Instant::now();
        let c = s.create("alice", t0, None);
        let mut h = with_cookie(&c.id);
        assert_eq!(s.guard(&Method::GET, &h, t0), Ok(()));
        assert_eq!(s.guard(&Method::POST, &h, t0), Err(Refusal::CsrfRequired));
        assert_eq!(s.guard(&Method::DELETE, &h, t0), Err(Refusal::CsrfRequired));
        h.insert(CSRF_HEADER, "wrong".parse().unwrap());
        assert_eq!(s.guard(&Method::PUT, &h, t0), Err(Refusal::CsrfMismatch));
        h.insert(CSRF_HEADER, c.csrf.parse().unwrap());
        assert_eq!(s.guard(&Method::POST, &h, t0), Ok(()));
        assert_eq!(s.guard(&Method::POST, &with_cookie("gone"), t0), Err(Refusal::NoSession));
        assert_eq!(s.guard(&Method::POST, &HeaderMap::new(), t0), Ok(()), "no cookie: not a session request");
        assert_eq!(Refusal::CsrfMismatch.status(), StatusCode::FORBIDDEN);
        assert_eq!(Refusal::NoSession.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn logout_ends_the_session() {
        let s = sessions(10, 60);
        let t0 = Instant::now();
        let c = s.create("alice", t0, None);
        assert!(s.remove(&with_cookie(&c.id)));
        assert!(!s.remove(&with_cookie(&c.id)));
        assert_eq!(s.principal(&with_cookie(&c.id), t0).unwrap_err(), Refusal::NoSession);
    }

    #[test]
    fn the_count_is_bounded_dropping_expired_then_the_oldest() {
        let s = sessions(2, 60);
        let t0 = Instant::now();
        let a = s.create("a", t0, None);
        let b = s.create("b", t0 + Duration::from_secs(1), None);
        let c = s.create("c", t0 + Duration::from_secs(2), None);
        assert_eq!(s.len(), 2);
        let now = t0 + Duration::from_secs(2);
        assert!(s.principal(&with_cookie(&a.id), now).is_err(), "the oldest went");
        assert!(s.principal(&with_cookie(&b.id), now).unwrap().is_some());
        assert!(s.principal(&with_cookie(&c.id), now).unwrap().is_some());
        // Later, when both have expired, a new one drops them both.
        let d = s.create("d", t0 + Duration::from_secs(100), None);
        assert_eq!(s.len(), 1);
        assert!(s.principal(&with_cookie(&d.id), t0 + Duration::from_secs(100)).unwrap().is_some());
    }

    #[test]
    fn cookie_attributes() {
        let c = Created { id: "abc".into(), csrf: "x".into(), lifetime: Duration::from_secs(90) };
        assert_eq!(set_cookie(&c, false), "a2a_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=90");
        assert!(set_cookie(&c, true).to_str().unwrap().ends_with("; Secure"));
        assert_eq!(clear_cookie(false), "a2a_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
        let mut h = HeaderMap::new();
        assert!(!over_tls(&h));
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(over_tls(&h));
        let mut h = HeaderMap::new();
        h.insert(header::FORWARDED, "for=1.2.3.4;proto=https".parse().unwrap());
        assert!(over_tls(&h));
    }
}
