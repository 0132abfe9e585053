//! The browser surface that `ledger-server` and `runtime-gateway` share: the auditor's dashboard
//! (one HTML file, `dashboard/dist/app.html`, built from `dashboard/src/` and committed, embedded
//! here at compile time) served at `/app` with a strict Content-Security-Policy, and browser
//! sessions: a cookie made from a bearer token the person enters once, with CSRF protection on
//! every state change.
//!
//! Each service keeps its own notion of who is calling (`ledger-server`'s principals, the
//! gateway's callers); [`session::Sessions`] is generic over it.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ledger_dashboard::session::{Limits, Sessions};
//!
//! let sessions: Sessions<String> = Sessions::new(Limits { max_sessions: 10, lifetime: Duration::from_secs(60) });
//! let now = Instant::now();
//! let made = sessions.create("alice".to_string(), now, None);
//! let cookie = format!("{}={}", ledger_dashboard::session::COOKIE, made.id);
//! let mut headers = axum::http::HeaderMap::new();
//! headers.insert(axum::http::header::COOKIE, cookie.parse().unwrap());
//! assert_eq!(sessions.principal(&headers, now).unwrap().unwrap().principal, "alice");
//! assert!(ledger_dashboard::bundle::integrity().starts_with("sha256-"));
//! ```

pub mod bundle;
pub mod session;
