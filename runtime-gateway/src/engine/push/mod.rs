//! A2A push notifications: per-task webhook configs (create, get, list, delete) and their
//! delivery. Each config gets one worker that follows the task's event buffer from the moment
//! the config was made (from the start for a config given with SendMessage) and POSTs every
//! event, in order, as an A2A `StreamResponse` (`Content-Type: application/a2a+json`,
//! `Authorization: <scheme> <credentials>` when the config has authentication, the config's
//! token in `X-A2A-Notification-Token` and `A2A-Notification-Token`, the spellings of the two
//! reference SDKs). A failed attempt (network error, 408, 429, 5xx) is retried with exponential
//! backoff; another 4xx ends that event's delivery. The worker ends with the task or when its
//! config is deleted.
//!
//! The webhook address rule (SSRF) is [`policy`]'s.
//!
//! Configs persist ([`store`]): a restarted gateway resumes each config's deliveries from the
//! first event its webhook has not acknowledged, rebuilding the task from the ledger. Delivery is
//! at least once; every POST carries `A2A-Ledger-Event-Id: <task>/<event index>` (the index in
//! the task's events, the same after a restart), so a receiver can drop duplicates.
//!
//! Each attempt is one line of `<data>/push-deliveries.jsonl` (time, task, config, host, event
//! index and kind, attempt, HTTP status or error, outcome) and counts in `/metrics`. Attempts are
//! not ledger entries: SPEC §2 has no kind for them (see docs/FORMATS.md §9).

use std::collections::HashMap;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use a2a::{StreamResponse, TaskPushNotificationConfig};
use futures_util::StreamExt as _;
use opentelemetry::KeyValue;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub mod policy;
pub mod store;

pub use crate::base::config::PushConfig;
use crate::base::metrics::labelled;
use crate::engine::buffer::{TaskHandle, follow};
use policy::{GuardedResolver, Policy, check_url};
use store::{PushStore, Stored};

/// The header naming the event a POST delivers: `<task id>/<event index>`.
pub const EVENT_ID_HEADER: &str = "A2A-Ledger-Event-Id";

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

struct WorkerCount(tokio::sync::watch::Sender<usize>);

impl Drop for WorkerCount {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

struct Registered {
    config: TaskPushNotificationConfig,
    stop: CancellationToken,
    /// The first event the webhook has not acknowledged.
    next: Arc<std::sync::atomic::AtomicUsize>,
}

/// Push counters for `/metrics` (prometheus-client handles).
#[derive(Debug, Default)]
pub struct PushCounters {
    /// Attempts made.
    pub attempts: Counter,
    /// Events by `outcome`: `delivered` (a 2xx answer) or `given_up` (after the last attempt or a
    /// permanent refusal).
    pub deliveries: Family<Vec<(String, String)>, Counter>,
    /// Configs refused by the URL rules.
    pub refused_urls: Counter,
}

/// Push configs and their delivery workers.
pub struct Pusher {
    cfg: PushConfig,
    policy: Arc<Policy>,
    client: reqwest::Client,
    configs: Mutex<HashMap<String, Vec<Registered>>>,
    store: PushStore,
    journal: Mutex<Option<std::fs::File>>,
    /// Delivery workers running (a watch, so shutdown can wait for them).
    workers: tokio::sync::watch::Sender<usize>,
    /// Counters.
    pub counters: PushCounters,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

/// Why a config operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Push is switched off.
    #[error("push notifications are switched off on this gateway")]
    Disabled,
    /// The config is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The config could not be kept on disk (nothing was changed).
    #[error("the push config could not be stored: {0}")]
    Storage(String),
    /// No such config on the task.
    #[error("push notification config {config:?} not found on task {task:?}")]
    NotFound {
        /// The task.
        task: String,
        /// The config id.
        config: String,
    },
}

impl Pusher {
    /// A pusher whose attempts are journalled under `data`.
    pub fn new(cfg: PushConfig, data: &Path) -> anyhow::Result<Pusher> {
        let policy = Arc::new(Policy::new(cfg.allow_networks.clone()));
        let redirect = if cfg.follow_redirects {
            let p = policy.clone();
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    return attempt.error("more than 5 redirects");
                }
                let url = attempt.url().clone();
                if !matches!(url.scheme(), "http" | "https") {
                    return attempt.error(format!("redirect to a {} URL", url.scheme()));
                }
                // The notification token travels in headers reqwest does not strip on a
                // cross-origin redirect: stay on the webhook's origin.
                if attempt.previous().first().is_some_and(|first| first.origin() != url.origin()) {
                    return attempt.error("redirect to another origin");
                }
                let ip = match url.host() {
                    Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                    Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                    _ => None, // names go through the guarded resolver
                };
                match ip.and_then(|ip| p.refuses(ip).map(|why| (ip, why))) {
                    Some((ip, why)) => attempt.error(format!("redirect to {ip}, {why}")),
                    None => attempt.follow(),
                }
            })
        } else {
            reqwest::redirect::Policy::none()
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(redirect)
            .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
            .timeout(Duration::from_secs(cfg.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(cfg.timeout_secs.clamp(1, 10)))
            .user_agent(concat!("a2a-ledger-gateway/", env!("CARGO_PKG_VERSION"), " (push)"))
            .build()?;
        let journal = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("push-deliveries.jsonl"))
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", data.join("push-deliveries.jsonl").display()))?;
        let store =
            PushStore::open(data).map_err(|e| anyhow::anyhow!("opening {}: {e}", data.join("push").display()))?;
        Ok(Pusher {
            cfg,
            policy,
            client,
            configs: Mutex::new(HashMap::new()),
            store,
            journal: Mutex::new(Some(journal)),
            workers: tokio::sync::watch::Sender::new(0),
            counters: PushCounters::default(),
        })
    }

    /// Push is offered.
    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// Resumes the deliveries of every stored config: `load` rebuilds its task (from the ledger);
    /// a config whose task the log does not hold is dropped. Returns the configs resumed.
    pub async fn resume<F, Fut>(self: &Arc<Self>, load: F) -> anyhow::Result<usize>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Option<Arc<TaskHandle>>>,
    {
        let mut n = 0;
        for (task, configs) in self.store.load_all()? {
            let Some(handle) = load(task.clone()).await else {
                eprintln!("push: dropping the configs of task {task:?}: the ledger does not hold it");
                self.store.save(&task, &[], true)?;
                continue;
            };
            for c in configs {
                // Events published but never recorded (a crash inside the 2 ms they are held
                // back) are gone from the rebuilt task: a cursor past its events goes back to its
                // end, so what the task records next (its end) is still delivered. Their indices
                // are then used again by the events that follow.
                let from = c.next.min(handle.cursor());
                self.start(handle.clone(), c.config, from, false)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Writes task `task`'s configs with their cursors.
    fn persist(&self, all: &HashMap<String, Vec<Registered>>, task: &str, durable: bool) -> std::io::Result<()> {
        let list: Vec<Stored> = all
            .get(task)
            .map(|l| {
                l.iter()
                    .map(|r| Stored {
                        config: r.config.clone(),
                        next: r.next.load(std::sync::atomic::Ordering::SeqCst),
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.store.save(task, &list, durable)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Registered>>> {
        self.configs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a config before anything is done with it: push is on, the URL passes the address
    /// rule, the id, the authentication scheme and the header values are well formed.
    pub async fn validate(&self, config: &TaskPushNotificationConfig) -> Result<(), PushError> {
        if !self.cfg.enabled {
            return Err(PushError::Disabled);
        }
        if config.url.is_empty() {
            return Err(PushError::Invalid("url is required".into()));
        }
        if config.id.as_ref().is_some_and(|id| id.len() > 128) {
            return Err(PushError::Invalid("id is longer than 128 bytes".into()));
        }
        if let Some(a) = &config.authentication {
            if a.scheme.is_empty() || a.scheme.bytes().any(|b| !b.is_ascii_alphanumeric() && !b"-_".contains(&b)) {
                return Err(PushError::Invalid(format!(
                    "authentication.scheme {:?} must be an HTTP auth scheme such as Bearer",
                    a.scheme
                )));
            }
            if reqwest::header::HeaderValue::from_str(a.credentials.as_deref().unwrap_or("")).is_err() {
                return Err(PushError::Invalid("authentication.credentials must be a valid HTTP header value".into()));
            }
        }
        if config.token.as_deref().is_some_and(|t| reqwest::header::HeaderValue::from_str(t).is_err()) {
            return Err(PushError::Invalid("token must be a valid HTTP header value".into()));
        }
        if let Err(e) = check_url(&self.policy, &config.url).await {
            self.counters.refused_urls.inc();
            return Err(PushError::Invalid(e));
        }
        Ok(())
    }

    /// Validates `config`, then registers it (see [`Pusher::register`]).
    pub async fn create(
        self: &Arc<Self>,
        task: Arc<TaskHandle>,
        config: TaskPushNotificationConfig,
        from: usize,
    ) -> Result<TaskPushNotificationConfig, PushError> {
        self.validate(&config).await?;
        self.register(task, config, from)
    }

    /// Registers a config [`Pusher::validate`] passed and starts delivering the task's events
    /// from event `from`. A config with the id of an existing one replaces it. It fails only when
    /// the task has the most configs allowed already, which a new task never has.
    pub fn register(
        self: &Arc<Self>,
        task: Arc<TaskHandle>,
        mut config: TaskPushNotificationConfig,
        from: usize,
    ) -> Result<TaskPushNotificationConfig, PushError> {
        let id =
            config.id.take().filter(|s| !s.is_empty()).unwrap_or_else(|| format!("push-{}", hex::encode(rand_bytes())));
        config.id = Some(id.clone());
        config.task_id = task.id.clone();
        self.start(task, config, from, true)
    }

    /// Adds `config` to its task (replacing one with its id) and starts its worker at event
    /// `from`; `durable`: the config is on disk (fsynced) before this returns.
    fn start(
        self: &Arc<Self>,
        task: Arc<TaskHandle>,
        config: TaskPushNotificationConfig,
        from: usize,
        durable: bool,
    ) -> Result<TaskPushNotificationConfig, PushError> {
        let id = config.id.clone().unwrap_or_default();
        let stop = CancellationToken::new();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(from));
        {
            let mut all = self.lock();
            let list = all.entry(task.id.clone()).or_default();
            let old = list.iter().position(|r| r.config.id.as_deref() == Some(id.as_str()));
            if old.is_none() && list.len() >= self.cfg.max_configs_per_task {
                return Err(PushError::Invalid(format!(
                    "task {} has {} push configs already, the most allowed",
                    task.id, self.cfg.max_configs_per_task
                )));
            }
            let replaced = old.map(|i| list.remove(i));
            list.push(Registered { config: config.clone(), stop: stop.clone(), next: next.clone() });
            if let Err(e) = self.persist(&all, &task.id, durable) {
                // Not kept, so not taken: the task's configs stay as they were.
                let list = all.get_mut(&task.id).expect("just inserted");
                list.pop();
                if let Some(r) = replaced {
                    list.push(r);
                } else if list.is_empty() {
                    all.remove(&task.id);
                }
                return Err(PushError::Storage(e.to_string()));
            }
            if let Some(r) = replaced {
                r.stop.cancel();
            }
        }
        let this = self.clone();
        let cfg = config.clone();
        self.workers.send_modify(|n| *n += 1);
        tokio::spawn(async move {
            // Counted down however the worker ends (a panic included), so shutdown never waits
            // on a worker that is gone.
            let _running = WorkerCount(this.workers.clone());
            tokio::select! {
                () = this.deliver_all(task.clone(), &cfg, next) => {}
                () = stop.cancelled() => {}
            }
        });
        Ok(config)
    }

    /// At shutdown, after the tasks have ended: waits up to `limit` for the deliveries still
    /// under way (the tasks' last events among them); says how many were cut short.
    pub async fn drain(&self, limit: Duration) {
        let mut rx = self.workers.subscribe();
        if tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await.is_err() {
            let left = *self.workers.borrow();
            eprintln!(
                "push: {left} webhook deliveries still retrying at shutdown are abandoned (see push-deliveries.jsonl)"
            );
        }
    }

    /// One config of the task.
    pub fn get(&self, task: &str, id: &str) -> Result<TaskPushNotificationConfig, PushError> {
        self.lock()
            .get(task)
            .and_then(|l| l.iter().find(|r| r.config.id.as_deref() == Some(id)))
            .map(|r| r.config.clone())
            .ok_or_else(|| PushError::NotFound { task: task.into(), config: id.into() })
    }

    /// The task's configs, in creation order.
    pub fn list(&self, task: &str) -> Vec<TaskPushNotificationConfig> {
        self.lock().get(task).map(|l| l.iter().map(|r| r.config.clone()).collect()).unwrap_or_default()
    }

    /// Deletes a config and stops its deliveries; deleting one that is gone is not an error.
    pub fn delete(&self, task: &str, id: &str) -> Result<(), PushError> {
        let mut all = self.lock();
        let Some(list) = all.get_mut(task) else { return Ok(()) };
        let Some(at) = list.iter().position(|r| r.config.id.as_deref() == Some(id)) else { return Ok(()) };
        let removed = list.remove(at);
        if let Err(e) = self.persist(&all, task, true) {
            all.get_mut(task).expect("still there").insert(at, removed);
            return Err(PushError::Storage(e.to_string()));
        }
        removed.stop.cancel();
        if all.get(task).is_some_and(Vec::is_empty) {
            all.remove(task);
        }
        Ok(())
    }

    async fn deliver_all(
        &self,
        task: Arc<TaskHandle>,
        config: &TaskPushNotificationConfig,
        next: Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let from = next.load(std::sync::atomic::Ordering::SeqCst);
        let events = follow(task.clone(), from, false);
        futures_util::pin_mut!(events);
        while let Some((after, ev)) = events.next().await {
            // `follow` yields the cursor after the event: the event's own index is one less.
            self.deliver(&task, config, after - 1, &ev).await;
            // Answered (delivered or given up): the cursor moves past it, on disk without an
            // fsync (a crash may deliver it again: at least once).
            next.store(after, std::sync::atomic::Ordering::SeqCst);
            let all = self.lock();
            if let Err(e) = self.persist(&all, &task.id, false) {
                eprintln!("push: the delivery cursor of task {} could not be written: {e}", task.id);
            }
        }
    }

    /// Delivers one event, retrying as the rules say; every attempt is journalled.
    async fn deliver(&self, task: &TaskHandle, config: &TaskPushNotificationConfig, index: usize, ev: &StreamResponse) {
        let body = serde_json::to_vec(ev).expect("events serialise");
        let kind = match ev {
            StreamResponse::Task(_) => "task",
            StreamResponse::Message(_) => "message",
            StreamResponse::StatusUpdate(_) => "statusUpdate",
            StreamResponse::ArtifactUpdate(_) => "artifactUpdate",
        };
        let host =
            reqwest::Url::parse(&config.url).ok().and_then(|u| u.host_str().map(String::from)).unwrap_or_default();
        let mut wait = Duration::from_millis(self.cfg.backoff_ms).min(MAX_BACKOFF);
        for attempt in 1..=self.cfg.max_attempts.max(1) {
            self.counters.attempts.inc();
            let span = task.trace.child(
                "push.deliver",
                vec![
                    KeyValue::new("a2a_ledger.push.config", config.id.clone().unwrap_or_default()),
                    KeyValue::new("a2a_ledger.push.event", index as i64),
                    KeyValue::new("a2a_ledger.push.attempt", i64::from(attempt)),
                    KeyValue::new("server.address", host.clone()),
                ],
            );
            let mut req =
                self.client.post(&config.url).header("content-type", "application/a2a+json").body(body.clone());
            if let Some(a) = &config.authentication {
                req = req.header("authorization", format!("{} {}", a.scheme, a.credentials.as_deref().unwrap_or("")));
            }
            if let Some(t) = &config.token {
                req = req.header("X-A2A-Notification-Token", t).header("A2A-Notification-Token", t);
            }
            req = req.header(EVENT_ID_HEADER, format!("{}/{index}", task.id));
            let (status, error) = match req.send().await {
                Ok(r) => (Some(r.status().as_u16()), None),
                // Without the URL: webhook URLs often carry their secret in the path or query.
                Err(e) => (None, Some(error_chain(&e.without_url()))),
            };
            let retry = match status {
                Some(s) if (200..300).contains(&s) => false,
                Some(s) => s == 408 || s == 429 || s >= 500,
                None => true,
            };
            let delivered = status.is_some_and(|s| (200..300).contains(&s));
            if let Some(s) = status {
                span.set(KeyValue::new("http.response.status_code", i64::from(s)));
            }
            if !delivered {
                span.error(error.clone().unwrap_or_else(|| format!("HTTP {}", status.unwrap_or(0))));
            }
            span.end();
            let last = attempt == self.cfg.max_attempts.max(1);
            let outcome = if delivered {
                "delivered"
            } else if retry && !last {
                "retrying"
            } else {
                "given_up"
            };
            self.journal(json!({
                "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "task": task.id, "config": config.id, "host": host, "event": index, "kind": kind,
                "attempt": attempt, "status": status, "error": error, "outcome": outcome,
            }));
            match outcome {
                "delivered" => {
                    labelled(&self.counters.deliveries, "outcome", "delivered").inc();
                    return;
                }
                "given_up" => {
                    labelled(&self.counters.deliveries, "outcome", "given_up").inc();
                    return;
                }
                _ => {
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn journal(&self, line: serde_json::Value) {
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        // One write per line, so a reader never sees half of one.
        if let Some(f) = j.as_mut()
            && let Err(e) = f.write_all(format!("{line}\n").as_bytes())
        {
            eprintln!("push: writing the delivery journal failed, journalling stops: {e}");
            *j = None;
        }
    }
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random source works");
    b
}

/// An error and its causes on one line (reqwest hides the interesting part in `source`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
