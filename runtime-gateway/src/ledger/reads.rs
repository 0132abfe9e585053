//! [`Reads`]: the read half of a ledger reached over gRPC (`ledger.v1`), shared by the remote
//! sink (one `ledger-server`) and the bus sink (a list of read replicas, tried in turn).
//!
//! A read goes to the first server and, when that one is unavailable (no connection, a
//! deadline, or `not_caught_up`: a replica that could not apply the stream as far as the read
//! asks within its deadline), to the next; any other answer, refusals included, is final.
//!
//! Read-your-writes on the bus: every request carries the metadata
//! `a2a-ledger-min-position: <n>`, the highest stream position this gateway has had
//! acknowledged, so a replica answers only once it has applied the stream that far.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ledger_core::{Error, Result, RunSearch, SearchPage};
use tokio_stream::StreamExt as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};

use super::{Payload, ReceiptError, RunEntries, RunPage, RunRef, RunsBy};
use ledger_wire as proto;
use proto::ErrorCode;
use proto::ledger_client::LedgerClient;

/// The gRPC metadata key of the lowest stream position a replica must have applied.
pub const MIN_POSITION: &str = "a2a-ledger-min-position";

/// Most runs one `ListRuns` answers.
const LIST_MAX: usize = 1000;

/// Where a request's minimum position comes from (the bus publisher's highest acknowledged).
pub type MinPosition = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Adds the bearer token, and the minimum position when there is one, to every request.
#[derive(Clone)]
pub struct Bearer {
    token: MetadataValue<Ascii>,
    min_position: Option<MinPosition>,
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bearer")
            .field("min_position", &self.min_position.as_ref().map(|at| at()))
            .finish_non_exhaustive()
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.token.clone());
        if let Some(at) = &self.min_position {
            let at = MetadataValue::try_from(at().to_string()).expect("digits are ASCII");
            req.metadata_mut().insert(MIN_POSITION, at);
        }
        Ok(req)
    }
}

/// A `ledger.v1` client with its bearer token.
pub type Client = LedgerClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>;

/// A client of the ledger at `url` (`http://`, or `https://` trusting the web roots and `ca`),
/// connected on first use.
pub fn client(url: &str, token: &str, ca: Option<&Path>, min_position: Option<MinPosition>) -> anyhow::Result<Client> {
    use anyhow::Context as _;
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .with_context(|| format!("ledger URL {url:?}"))?
        .connect_timeout(Duration::from_secs(5));
    if url.starts_with("https://") {
        // TLS (rustls with ring): the public web roots, plus the operator's CA if given.
        let mut tls = tonic::transport::ClientTlsConfig::new().with_webpki_roots();
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).with_context(|| format!("reading the ledger CA {}", ca.display()))?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls).context("the TLS settings for the ledger")?;
    } else if ca.is_some() {
        anyhow::bail!("--ledger-ca is for a TLS ledger: give its URL as https://");
    }
    let token = MetadataValue::try_from(format!("Bearer {token}"))
        .context("the ledger token has characters not allowed in a header")?;
    Ok(LedgerClient::with_interceptor(endpoint.connect_lazy(), Bearer { token, min_position }))
}

pub(crate) fn storage(what: impl std::fmt::Display) -> Error {
    Error::Storage(what.to_string())
}

pub(crate) fn status_error(s: &tonic::Status) -> Error {
    storage(format!("ledger-server: {} ({:?})", s.message(), s.code()))
}

/// Whether the next server may answer what this one could not: it is unreachable, too slow, or
/// a replica not caught up with the stream as far as the read asks.
fn try_next(s: &tonic::Status) -> bool {
    matches!(s.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown)
        || ErrorCode::of(s) == Some(ErrorCode::NotCaughtUp)
}

/// The read side of one ledger, served by one or more servers.
#[derive(Clone, Debug)]
pub struct Reads {
    clients: Vec<Client>,
}

impl Reads {
    /// Reads from `clients`, in this order of preference (at least one).
    pub fn new(clients: Vec<Client>) -> Reads {
        assert!(!clients.is_empty(), "a ledger to read from");
        Reads { clients }
    }

    /// `call` on the first server that can answer (see [`try_next`]); the last one's failure
    /// when none can.
    async fn each<T, F, Fut>(&self, mut call: F) -> std::result::Result<T, tonic::Status>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let mut last = None;
        for c in &self.clients {
            match call(c.clone()).await {
                Err(s) if try_next(&s) => last = Some(s),
                answer => return answer,
            }
        }
        Err(last.expect("at least one client"))
    }

    /// The log the servers serve.
    pub async fn log(&self, within: Duration) -> std::result::Result<proto::LogInfo, tonic::Status> {
        self.each(|mut c| async move {
            tokio::time::timeout(within, c.get_log(proto::GetLogRequest {}))
                .await
                .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded(format!("no answer in {within:?}"))))
                .map(tonic::Response::into_inner)
        })
        .await
    }

    /// The run's entries with their indices (empty for an unknown run).
    pub async fn run_entries(&self, run: &str) -> Result<RunEntries> {
        let got =
            self.each(|mut c| async move { c.get_run(proto::GetRunRequest { run: run.to_string() }).await }).await;
        match got {
            Ok(r) => {
                let r = r.into_inner();
                Ok(r.indices.into_iter().zip(r.entries).collect())
            }
            Err(s) if ErrorCode::of(&s) == Some(ErrorCode::UnknownRun) => Ok(Vec::new()),
            Err(s) => Err(status_error(&s)),
        }
    }

    /// The run's receipt JSON. `waiting` > 0 batches of this gateway are not in the log yet:
    /// then a run the ledger does not know, or knows unsealed, is "unavailable", not "unknown".
    pub async fn receipt(&self, run: &str, wait: Duration, waiting: u64) -> std::result::Result<String, ReceiptError> {
        let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
        let got = self
            .each(
                |mut c| async move { c.get_receipt(proto::GetReceiptRequest { run: run.to_string(), wait_ms }).await },
            )
            .await;
        match got {
            Ok(r) => Ok(r.into_inner().json),
            Err(s)
                if waiting > 0
                    && matches!(
                        ErrorCode::of(&s),
                        Some(ErrorCode::UnknownRun | ErrorCode::RunUnsealed | ErrorCode::NotYetCheckpointed)
                    ) =>
            {
                Err(ReceiptError::Unavailable(format!(
                    "{waiting} batches of this gateway are not in the ledger yet; the run's seal may be among them"
                )))
            }
            Err(s) => {
                let run = run.to_string();
                match ErrorCode::of(&s) {
                    Some(ErrorCode::UnknownRun) => Err(ReceiptError::UnknownRun(run)),
                    Some(ErrorCode::RunUnsealed) => Err(ReceiptError::Unsealed(run)),
                    Some(ErrorCode::NotYetCheckpointed) => Err(ReceiptError::NotYetCheckpointed(run)),
                    _ => Err(ReceiptError::Unavailable(format!("{} ({:?})", s.message(), s.code()))),
                }
            }
        }
    }

    /// The payload under `hash`: its bytes or its erasure; any other answer (`payload_missing`
    /// included) as the server gave it.
    pub async fn payload(&self, hash: [u8; 32]) -> std::result::Result<Payload, tonic::Status> {
        let got = self
            .each(|mut c| async move {
                let mut stream = c.get_payload(proto::GetPayloadRequest { hash: hash.to_vec() }).await?.into_inner();
                let mut out = Vec::new();
                while let Some(chunk) = stream.next().await {
                    out.extend_from_slice(&chunk?.data);
                }
                Ok(out)
            })
            .await;
        match got {
            Ok(bytes) => Ok(Payload::Present(bytes.into())),
            Err(s) if ErrorCode::of(&s) == Some(ErrorCode::PayloadErased) => {
                Ok(Payload::Erased { index: proto::Detail::of(&s).index.unwrap_or(0) })
            }
            Err(s) => Err(s),
        }
    }

    /// One `ListRuns` request, at the first replica that answers.
    async fn list_runs(
        &self,
        req: &proto::ListRunsRequest,
    ) -> std::result::Result<tonic::Response<proto::ListRunsResponse>, tonic::Status> {
        self.each(|mut c| {
            let req = req.clone();
            async move { c.list_runs(req).await }
        })
        .await
    }

    /// Runs by caller, context or parent, newest first.
    pub async fn runs(&self, by: RunsBy, before: Option<u64>, limit: usize) -> Result<RunPage> {
        use proto::list_runs_request::Key;
        let key = match by {
            RunsBy::Caller(c) => Key::Caller(c),
            RunsBy::Context(c) => Key::Context(c),
            RunsBy::Parent(p) => Key::Parent(p),
        };
        let limit = u32::try_from(limit.clamp(1, LIST_MAX)).expect("at most LIST_MAX");
        let req = proto::ListRunsRequest { key: Some(key), before, limit, ..Default::default() };
        let r = self.list_runs(&req).await.map_err(|s| status_error(&s))?.into_inner();
        Ok(RunPage {
            runs: r.runs.into_iter().map(|r| RunRef { run: r.run, index: r.index }).collect(),
            total: r.total,
        })
    }

    /// One page of a run search (`LedgerSink::search_runs`).
    pub async fn search_runs(&self, q: RunSearch, cursor: Option<String>, limit: usize) -> Result<SearchPage> {
        use ledger_core::{RunStatus, RunSummary, Scan, SealSummary, StatusFilter};
        use proto::list_runs_request::Key;
        let is_search =
            q.skill.is_some() || q.agent.is_some() || q.status.is_some() || q.from.is_some() || q.until.is_some();
        // A caller alone is a listing on the server, paged with `before`/`next`: its cursor
        // here is the `caller` scan's, whose position is that accepted index.
        let listing = q.caller.is_some() && !is_search;
        let key = match &q.caller {
            Some(c) => Some(Key::Caller(c.clone())),
            None if is_search => None,
            None => Some(Key::All(true)),
        };
        let (before, cursor) = match cursor {
            Some(c) if listing => {
                let at = c
                    .strip_prefix("caller.")
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| Error::BadSearch(format!("{c:?}: not a cursor of this search")))?;
                (Some(at), None)
            }
            c => (None, c),
        };
        let status = match q.status {
            None => String::new(),
            Some(StatusFilter::Open) => "open".into(),
            Some(StatusFilter::Sealed(s)) => s.as_str().into(),
        };
        let limit = u32::try_from(limit.clamp(1, LIST_MAX)).expect("at most LIST_MAX");
        let req = proto::ListRunsRequest {
            key,
            limit,
            skill: q.skill.clone().unwrap_or_default(),
            agent: q.agent.clone().unwrap_or_default(),
            status,
            from: q.from,
            until: q.until,
            before,
            cursor: cursor.unwrap_or_default(),
            summary: true,
        };
        let r = self.list_runs(&req).await.map_err(|s| match ErrorCode::of(&s) {
            // The gateway checked every filter: what the server refuses is the cursor.
            Some(ErrorCode::BadQuery) => Error::BadSearch(s.message().to_string()),
            _ => status_error(&s),
        })?;
        let r = r.into_inner();
        let corrupt = |what: &str| storage(format!("ledger-server: a run search answered {what}"));
        let mut runs = Vec::with_capacity(r.runs.len());
        for run in r.runs {
            let s = run.summary.ok_or_else(|| corrupt("a run without its summary"))?;
            let sealed = match (s.status.as_str(), s.sealed_index, s.sealed_ts) {
                ("open", _, _) => None,
                (status, Some(index), Some(ts)) => Some(SealSummary {
                    index,
                    ts,
                    status: status.parse::<RunStatus>().map_err(|_| corrupt("an unknown status"))?,
                }),
                _ => return Err(corrupt("a sealed run without its seal")),
            };
            runs.push(RunSummary {
                run: run.run,
                index: run.index,
                ts: s.ts,
                skill: s.skill,
                caller: s.caller,
                agent: s.agent,
                sealed,
                entries: s.entries,
            });
        }
        let (scan, cursor) = if listing {
            (Scan::Caller, r.next.map(|n| format!("caller.{}", hex::encode(n.to_be_bytes()))))
        } else {
            (Scan::from_name(&r.scan).ok_or_else(|| corrupt("an unknown scan"))?, r.cursor)
        };
        Ok(SearchPage { runs, cursor, scan, examined: 0 })
    }

    /// Runs accepted but not sealed, oldest first.
    pub async fn open_runs(&self) -> Result<Vec<RunRef>> {
        use proto::list_runs_request::Key;
        let mut out = Vec::new();
        let mut before = None;
        loop {
            let req = proto::ListRunsRequest {
                key: Some(Key::Open(true)),
                before,
                limit: LIST_MAX as u32,
                ..Default::default()
            };
            let r = self.list_runs(&req).await.map_err(|s| status_error(&s))?.into_inner();
            let n = r.runs.len();
            before = r.runs.last().map(|r| r.index);
            out.extend(r.runs.into_iter().map(|r| RunRef { run: r.run, index: r.index }));
            if n < LIST_MAX {
                break;
            }
        }
        // Oldest first, as the trait says (the server lists newest first).
        out.reverse();
        Ok(out)
    }

    /// Up to `limit` runs with an entry naming payload `hash`.
    pub async fn payload_runs(&self, hash: [u8; 32], limit: usize) -> Result<Vec<String>> {
        use proto::list_runs_request::Key;
        let limit = u32::try_from(limit.clamp(1, LIST_MAX)).expect("at most LIST_MAX");
        let req = proto::ListRunsRequest {
            key: Some(Key::Payload(hash.to_vec())),
            before: None,
            limit,
            ..Default::default()
        };
        let r = self.list_runs(&req).await.map_err(|s| status_error(&s))?.into_inner();
        Ok(r.runs.into_iter().map(|r| r.run).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_server_is_asked_only_when_this_one_is_away_or_behind() {
        let coded = |code| proto::to_status(code, "x", proto::Detail::default());
        assert!(try_next(&tonic::Status::unavailable("connection refused")));
        assert!(try_next(&tonic::Status::deadline_exceeded("slow")));
        assert!(try_next(&coded(ErrorCode::NotCaughtUp)));
        assert!(!try_next(&coded(ErrorCode::RunUnsealed)));
        assert!(!try_next(&coded(ErrorCode::UnknownRun)));
        assert!(!try_next(&tonic::Status::permission_denied("forbidden")));
        assert!(!try_next(&tonic::Status::not_found("unknown run")));
    }
}
