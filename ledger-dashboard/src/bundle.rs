//! The dashboard bundle and how it is served.
//!
//! Security rules kept here:
//! - the page is one file with its script and style inline; the Content-Security-Policy allows
//!   exactly those (by their SHA-256, computed from the embedded bytes once), nothing from any
//!   other origin, and network requests only to the serving origin (`connect-src 'self'`);
//! - it may not be framed (`frame-ancestors 'none'`), its type is not sniffed, and it sends no
//!   referrer.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::Digest as _;

/// The built dashboard, `dashboard/dist/app.html` (the build, `dashboard/build.sh`, writes it;
/// the test command rebuilds it and fails if the committed file differs).
pub const APP_HTML: &[u8] = include_bytes!("../../dashboard/dist/app.html");

/// The bundle's integrity hash as in Subresource Integrity: `sha256-<base64>`.
pub fn integrity() -> String {
    format!("sha256-{}", B64.encode(sha2::Sha256::digest(APP_HTML)))
}

/// The `sha256-…` sources of the contents of every `<tag …>…</tag>` in `html`.
fn inline_hashes(html: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(gt) = after.find('>') else { break };
        let body = &after[gt + 1..];
        let Some(end) = body.find(&close) else { break };
        out.push(format!("'sha256-{}'", B64.encode(sha2::Sha256::digest(&body.as_bytes()[..end]))));
        rest = &body[end + close.len()..];
    }
    out
}

/// The Content-Security-Policy of `/app`: the inline script and style of this bundle by hash,
/// images only inline, connections only to the serving origin.
pub fn content_security_policy() -> &'static str {
    static CSP: LazyLock<String> = LazyLock::new(|| {
        let html = String::from_utf8_lossy(APP_HTML);
        let sources = |tag: &str| {
            let h = inline_hashes(&html, tag);
            if h.is_empty() { "'none'".to_string() } else { h.join(" ") }
        };
        format!(
            "default-src 'none'; script-src {}; style-src {}; img-src data:; connect-src 'self'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            sources("script"),
            sources("style")
        )
    });
    &CSP
}

/// `GET /app`: the bundle with its security headers. Not cached without revalidation: a new
/// server version serves a new bundle at the same URL.
pub fn app_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(content_security_policy())),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        APP_HTML,
    )
        .into_response()
}

/// `GET /app` and `GET /app/`, for any router state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/app", get(|| async { app_page() })).route("/app/", get(|| async { app_page() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_hashes_cover_each_element_exactly() {
        let html = "<html><style>a{}</style><script type=\"module\">x()</script><script>y</script></html>";
        let h = |s: &str| format!("'sha256-{}'", B64.encode(sha2::Sha256::digest(s.as_bytes())));
        assert_eq!(inline_hashes(html, "script"), vec![h("x()"), h("y")]);
        assert_eq!(inline_hashes(html, "style"), vec![h("a{}")]);
        assert!(inline_hashes("<p>no script</p>", "script").is_empty());
    }

    #[test]
    fn the_policy_names_the_bundles_own_script_and_no_other_origin() {
        let csp = content_security_policy();
        let html = String::from_utf8_lossy(APP_HTML);
        for h in inline_hashes(&html, "script") {
            assert!(csp.contains(&h), "{csp} lacks {h}");
        }
        assert!(csp.contains("connect-src 'self'") && csp.starts_with("default-src 'none'"));
        assert!(!csp.contains("http") && !csp.contains("unsafe"), "{csp}");
    }
}
