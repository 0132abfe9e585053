//! The ledger's ingest bus on NATS JetStream (issue 20): the one crate that talks to NATS.
//!
//! One machine is where a ledger starts; when gateways outgrow one host, the order of record for
//! ingest is a Raft-replicated JetStream stream per log, consumed in stream order by sequencers
//! that are pure functions of it, and exactly one of them — the holder of a lease — signs.
//!
//! - [`names`]: the names every process agrees on: a log's name, its streams, subjects, and the
//!   lease bucket and key.
//! - [`provision`]: the streams and the lease bucket a log needs, created when absent and checked
//!   field by field when present (a stream with another configuration is an error, never
//!   silently updated: replicas, storage and the duplicate window are durability decisions).
//! - [`follow`]: the stream followed into a `ledger_core::Log` at each message's stream sequence,
//!   every refusal a function of the message, its subject and the log so far, so any process
//!   that replays the stream reaches the same tree.
//! - [`signer`]: checkpoints signed by whoever holds the lease, published fenced to the log's
//!   checkpoint subject, and served by every process from there.
//! - [`publish`]: a gateway's batches published to its ingest subject, pipelined but never
//!   reordered within a run, each retried under its own message id until the stream has it; the
//!   sequencer's result for each handed to whoever waits for it.
//! - [`results`]: what the sequencer says back about each ingest message (the indices its
//!   entries got, or why it was refused), as the JSON body of a result message.
//! - [`lease`]: the signer's lease in a JetStream key-value bucket: acquired by compare-and-set
//!   on an absent key, renewed by compare-and-set on its revision, given up by the holder before
//!   the server can expire it, and taken over by another only after the server has.

pub mod follow;
pub mod lease;
pub mod names;
pub mod ordered;
pub mod provision;
pub mod publish;
pub mod results;
pub mod signer;

pub use follow::{Outcome, Refused, follow};
pub use lease::{Lease, LeaseConfig, Term};
pub use names::LogName;
pub use provision::{Topology, provision};
pub use publish::{Publisher, PublisherConfig};

/// What went wrong on the bus, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A log name that is not `[a-z0-9-]{1,32}`.
    #[error("log name {0:?}: use 1 to 32 of a-z, 0-9 and '-'")]
    LogName(String),
    /// An existing stream or bucket whose configuration differs from the one asked for.
    #[error(
        "{what} exists with {field} = {found}, expected {expected}: change it by hand (nats stream edit) or provision with the same settings"
    )]
    Mismatch {
        /// The stream or bucket.
        what: String,
        /// The configuration field.
        field: &'static str,
        /// What the topology asks for.
        expected: String,
        /// What the server holds.
        found: String,
    },
    /// A gateway name that cannot be one NATS subject token of a message id.
    #[error(
        "gateway name {0:?}: on the bus a gateway's name is one NATS subject token (no '.', '*', '>', '/', whitespace or control characters, not empty)"
    )]
    GatewayName(String),
    /// A batch the publisher refuses before sending it.
    #[error("batch refused before publishing: {0}")]
    Batch(String),
    /// The publisher was closed before the batch or result was.
    #[error("the bus publisher is closed")]
    Closed,
    /// A result message's body that is not one (`results`).
    #[error("result message: {0}")]
    Result(String),
    /// A request to the NATS server failed.
    #[error("{doing}: {source}")]
    Nats {
        /// What was being done.
        doing: String,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },
}

/// How a process authenticates to the NATS servers, and where its replies come back.
///
/// With per-gateway permissions ([`names::LogName::gateway_permissions`]) a gateway may
/// subscribe only under its own inbox prefix (`_INBOX_<gateway>`), so it must ask for its replies
/// there: [`Auth::inbox_prefix`].
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// The user, if the servers require one.
    pub user: Option<String>,
    /// Its password (never from a command line: from the environment, [`PASSWORD_ENV`]).
    pub password: Option<String>,
    /// The prefix of this connection's reply subjects (`_INBOX` when `None`).
    pub inbox_prefix: Option<String>,
}

/// The environment variable holding the bus password of `--bus-user`.
pub const PASSWORD_ENV: &str = "A2A_LEDGER_BUS_PASSWORD";

impl Auth {
    /// `user` (if any) with the password from [`PASSWORD_ENV`], replies under `inbox_prefix`.
    pub fn from_env(user: Option<String>, inbox_prefix: Option<String>) -> Result<Auth, Error> {
        let password = match &user {
            Some(u) => Some(std::env::var(PASSWORD_ENV).map_err(|_| {
                Error::nats("authenticating to the bus", format!("--bus-user {u} needs its password in {PASSWORD_ENV}"))
            })?),
            None => None,
        };
        Ok(Auth { user, password, inbox_prefix })
    }

    fn options(&self, name: &str) -> async_nats::ConnectOptions {
        let mut o = match (&self.user, &self.password) {
            (Some(u), Some(p)) => async_nats::ConnectOptions::with_user_and_password(u.clone(), p.clone()),
            _ => async_nats::ConnectOptions::new(),
        };
        if let Some(prefix) = &self.inbox_prefix {
            o = o.custom_inbox_prefix(prefix.clone());
        }
        o.name(name).retry_on_initial_connect()
    }
}

/// A client of a deployment's NATS servers (`servers`: comma-separated URLs, any one of which
/// will do), named `name` (servers show it to operators), once one answers, within `wait`.
pub async fn client(
    servers: &str,
    name: &str,
    auth: &Auth,
    wait: std::time::Duration,
) -> Result<async_nats::Client, Error> {
    let urls: Vec<&str> = servers.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
    if urls.is_empty() {
        return Err(Error::nats("connecting to the bus", "no server URL given"));
    }
    let doing = || format!("connecting to the bus at {servers}");
    tokio::time::timeout(wait, auth.options(name).connect(urls.as_slice()))
        .await
        .map_err(|_| Error::nats(doing(), format!("no server answered within {wait:?}")))?
        .map_err(|e| Error::nats(doing(), e))
}

/// Connects like [`client`] and waits until JetStream answers (a cluster that just started
/// elects its leaders first), for up to `wait`.
pub async fn connect(
    servers: &str,
    name: &str,
    auth: &Auth,
    wait: std::time::Duration,
) -> Result<async_nats::jetstream::Context, Error> {
    let js = async_nats::jetstream::new(client(servers, name, auth, wait).await?);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match js.query_account().await {
            Ok(_) => return Ok(js),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(Error::nats(format!("connecting to the bus at {servers}: JetStream does not answer"), e));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// The lease time of the bus's lease bucket, as it was provisioned (`max_age`): every holder
/// times its renewals and its margin from this, never from a setting of its own that could
/// disagree.
pub async fn lease_ttl(js: &async_nats::jetstream::Context) -> Result<std::time::Duration, Error> {
    let name = format!("KV_{}", names::LEASE_BUCKET);
    let doing =
        || format!("reading the lease bucket {} (create it with `ledger-server bus init`)", names::LEASE_BUCKET);
    let mut stream = js.get_stream(&name).await.map_err(|e| Error::nats(doing(), e))?;
    Ok(stream.info().await.map_err(|e| Error::nats(doing(), e))?.config.max_age)
}

impl Error {
    pub(crate) fn nats(doing: impl Into<String>, source: impl Into<async_nats::Error>) -> Error {
        Error::Nats { doing: doing.into(), source: source.into() }
    }
}
