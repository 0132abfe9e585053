//! Overload protection, the same for both front ends: a tower stack in front of the handlers.
//!
//! - **Concurrency limit with load shedding.** At most [`Limits::max_concurrent_requests`]
//!   requests of one front end are in progress at once, over all connections; one more is
//!   refused at once with `overloaded` (HTTP 503 with `Retry-After`, gRPC `UNAVAILABLE` with a
//!   `RetryInfo`) rather than queued, so an overloaded server answers quickly instead of hanging.
//! - **A request timeout on the time until the answer starts.** A request whose answer has not
//!   started within [`Limits::request_timeout`] is answered `timeout` (503 / `DEADLINE_EXCEEDED`).
//!   Streams are never cut: a pack, an `Append` or `GetEntries` stream and `WatchCheckpoints` start
//!   their answer at once and then run as long as they need, and they hold their slot only until
//!   then. Long polls (a receipt's `wait`, at most [`MAX_RECEIPT_WAIT`]) wait by design and get
//!   that long on top of the timeout.
//!
//! An append cut by the timeout may still commit; resending it is idempotent (SPEC's
//! duplicate rule), like any append whose answer was lost.
//!
//! Payload uploads (`PUT /v1/payloads/{hex}`, gRPC `PutPayload`) are streams in the other
//! direction: their answer can start only once the whole body is in (it says whether the bytes
//! hash to their name), so the timeout does not apply to them; the concurrency limit does.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::{BoxError, Layer, Service, ServiceBuilder};

use crate::error::ApiError;
use crate::service::MAX_RECEIPT_WAIT;

/// Default of [`Limits::max_concurrent_requests`].
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;
/// Default of [`Limits::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The request limits of each front end (`server.toml`: `max_concurrent_requests`,
/// `request_timeout_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Requests in progress at once on each front end (HTTP, gRPC) before more are refused.
    pub max_concurrent_requests: usize,
    /// How long a request may take until its answer starts.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS, request_timeout: DEFAULT_REQUEST_TIMEOUT }
    }
}

/// Whether the answer to `path` waits by design: `GET /runs/{id}/receipt?wait=S` and gRPC
/// `GetReceipt` with `wait_ms`.
fn long_poll(path: &str) -> bool {
    path == "/ledger.v1.Ledger/GetReceipt" || (path.starts_with("/runs/") && path.ends_with("/receipt"))
}

/// Whether the request is a payload upload, whose answer waits for its whole body (see the
/// module docs).
fn upload(method: &axum::http::Method, path: &str) -> bool {
    path == "/ledger.v1.Ledger/PutPayload" || (method == axum::http::Method::PUT && path.starts_with("/v1/payloads/"))
}

/// The tower stack of one front end: refusals answered by `R` ← load shedding ← one semaphore
/// for every connection (and, over HTTP, every route) ← the timeout.
pub type Stack<R> = ServiceBuilder<
    tower::layer::util::Stack<
        TimeoutLayer,
        tower::layer::util::Stack<
            GlobalConcurrencyLimitLayer,
            tower::layer::util::Stack<
                LoadShedLayer,
                tower::layer::util::Stack<HandleErrorLayer<R, ()>, tower::layer::util::Identity>,
            >,
        >,
    >,
>;

/// How the HTTP front end refuses: an [`ApiError`] (JSON body, 503, `Retry-After`).
pub type HttpRefusal = fn(BoxError) -> Ready<ApiError>;

/// How the gRPC front end refuses: a status with the typed code in its details.
pub type GrpcRefusal = fn(BoxError) -> Ready<axum::http::Response<axum::body::Body>>;

/// The stack in front of the HTTP router (`Router::layer`).
pub fn http(limits: &Limits) -> Stack<HttpRefusal> {
    stack(limits, |e| ready(ApiError::from_layer(e)))
}

/// The stack in front of the gRPC routes (`Server::builder().layer`).
pub fn grpc(limits: &Limits) -> Stack<GrpcRefusal> {
    stack(limits, |e| ready(ApiError::from_layer(e).to_status().into_http()))
}

fn stack<R: Clone>(limits: &Limits, refuse: R) -> Stack<R> {
    let permits = Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1)));
    ServiceBuilder::new()
        .layer(HandleErrorLayer::new(refuse))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(permits))
        .layer(TimeoutLayer { timeout: limits.request_timeout })
}

/// [`Timeout`] as a layer.
#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer {
    timeout: Duration,
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout { inner, timeout: self.timeout }
    }
}

/// Fails a request with [`tower::timeout::error::Elapsed`] when its answer has not started
/// within the timeout (plus [`MAX_RECEIPT_WAIT`] for a long poll). A started answer's body, a
/// stream, is not timed.
#[derive(Clone, Copy, Debug)]
pub struct Timeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B> Service<axum::http::Request<B>> for Timeout<S>
where
    S: Service<axum::http::Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let limit = if long_poll(req.uri().path()) { self.timeout + MAX_RECEIPT_WAIT } else { self.timeout };
        if upload(req.method(), req.uri().path()) {
            let answer = self.inner.call(req);
            return Box::pin(async move { answer.await.map_err(Into::into) });
        }
        let answer = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout(limit, answer).await {
                Ok(r) => r.map_err(Into::into),
                Err(_) => Err(tower::timeout::error::Elapsed::new().into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{StatusCode, header};
    use tower::ServiceExt as _;

    fn request(path: &str) -> axum::extract::Request {
        axum::http::Request::builder().uri(path).body(axum::body::Body::empty()).unwrap()
    }

    /// A handler that never answers is cut at the timeout with 503 `timeout` and `Retry-After`;
    /// a long poll's path is not cut then (it gets the longest wait on top).
    #[tokio::test]
    async fn an_answer_that_does_not_start_times_out() {
        let timeout = Duration::from_millis(100);
        let limits = Limits { max_concurrent_requests: 4, request_timeout: timeout };
        let app = axum::Router::new()
            .route("/slow", axum::routing::get(std::future::pending::<&'static str>))
            .route("/runs/{id}/receipt", axum::routing::get(std::future::pending::<&'static str>))
            .layer(http(&limits));
        let started = std::time::Instant::now();
        let r = app.clone().oneshot(request("/slow")).await.unwrap();
        assert!(started.elapsed() >= timeout);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "timeout");

        let long = tokio::time::timeout(5 * timeout, app.clone().oneshot(request("/runs/r/receipt"))).await;
        assert!(long.is_err(), "a long poll is still waiting at five times the timeout");
    }

    /// A payload upload is not cut by the timeout (its answer needs its whole body); a read of
    /// the same path is.
    #[tokio::test]
    async fn payload_uploads_are_not_timed() {
        let timeout = Duration::from_millis(50);
        let limits = Limits { max_concurrent_requests: 4, request_timeout: timeout };
        let pending = || std::future::pending::<&'static str>();
        let app = axum::Router::new()
            .route("/v1/payloads/{hex}", axum::routing::put(pending).get(pending))
            .layer(http(&limits));
        let put = axum::http::Request::builder()
            .method("PUT")
            .uri("/v1/payloads/ab")
            .body(axum::body::Body::empty())
            .unwrap();
        let upload = tokio::time::timeout(5 * timeout, app.clone().oneshot(put)).await;
        assert!(upload.is_err(), "an upload is still going at five times the timeout");
        let r = app.oneshot(request("/v1/payloads/ab")).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    /// With every slot taken, the next request is refused at once (not queued) with 503
    /// `overloaded`, on any route: the slots are shared. A freed slot serves again.
    #[tokio::test]
    async fn a_full_server_sheds_load_at_once() {
        let limits = Limits { max_concurrent_requests: 1, request_timeout: Duration::from_secs(3600) };
        let gate = Arc::new(tokio::sync::Notify::new());
        let entered = Arc::new(tokio::sync::Notify::new());
        let (g, e) = (gate.clone(), entered.clone());
        let app = axum::Router::new()
            .route(
                "/hold",
                axum::routing::get(move || async move {
                    e.notify_one();
                    g.notified().await;
                    "held"
                }),
            )
            .route("/quick", axum::routing::get(|| async { "quick" }))
            .layer(http(&limits));
        let held = tokio::spawn(app.clone().oneshot(request("/hold")));
        entered.notified().await;
        for path in ["/quick", "/hold"] {
            let r = app.clone().oneshot(request(path)).await.unwrap();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert_eq!(r.headers()[header::RETRY_AFTER], "1");
            let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["code"], "overloaded");
        }
        gate.notify_one();
        assert_eq!(held.await.unwrap().unwrap().status(), StatusCode::OK);
        assert_eq!(app.oneshot(request("/quick")).await.unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn long_polls_are_the_receipt_paths() {
        assert!(long_poll("/runs/abc/receipt"));
        assert!(long_poll("/ledger.v1.Ledger/GetReceipt"));
        assert!(!long_poll("/runs/abc"));
        assert!(!long_poll("/v1/entries"));
        assert!(!long_poll("/ledger.v1.Ledger/Append"));
        assert!(upload(&axum::http::Method::POST, "/ledger.v1.Ledger/PutPayload"));
        assert!(!upload(&axum::http::Method::GET, "/v1/payloads/ab"));
        assert!(!upload(&axum::http::Method::POST, "/v1/payloads/ab/erase"));
    }
}
