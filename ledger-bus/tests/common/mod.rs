//! Real nats-servers on loopback for the bus tests: one node, or a JetStream cluster of three,
//! each in its own directory with `sync_interval: always`, killed (SIGKILL) on drop. The binary
//! is the pinned one that `./scripts/test` installs and checks (`A2A_LEDGER_NATS_SERVER`), never
//! whatever `nats-server` is on PATH.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Node {
    pub name: String,
    pub client_port: u16,
    pub monitor_port: u16,
    pub cluster_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

pub struct Nats {
    pub nodes: Vec<Node>,
    pub dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn binary() -> String {
    std::env::var("A2A_LEDGER_NATS_SERVER")
        .unwrap_or_else(|_| panic!("A2A_LEDGER_NATS_SERVER is not set: run the suite through ./scripts/test"))
}

impl Nats {
    /// One JetStream server.
    pub fn single() -> Nats {
        Nats::start(1, "")
    }

    /// One JetStream server whose configuration has `extra` too (e.g. `authorization { … }`).
    pub fn single_with(extra: &str) -> Nats {
        Nats::start(1, extra)
    }

    /// Three JetStream servers routed to each other (quorum 2 of 3).
    pub fn cluster() -> Nats {
        Nats::start(3, "")
    }

    fn start(n: usize, extra: &str) -> Nats {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Node> = (1..=n)
            .map(|i| Node {
                name: format!("n{i}"),
                client_port: free_port(),
                monitor_port: free_port(),
                cluster_port: free_port(),
                config: dir.path().join(format!("n{i}.conf")),
                child: None,
            })
            .collect();
        let routes: Vec<String> = nodes.iter().map(|m| format!("nats-route://127.0.0.1:{}", m.cluster_port)).collect();
        for node in &nodes {
            let store = dir.path().join(&node.name);
            let mut conf = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\nmax_payload: 8MB\n\
                 jetstream {{ store_dir: \"{store}\", sync_interval: always }}\n",
                name = node.name,
                client = node.client_port,
                monitor = node.monitor_port,
                store = store.display(),
            );
            if n > 1 {
                conf += &format!(
                    "cluster {{ name: a2a-ledger-test, listen: 127.0.0.1:{}, routes: [{}] }}\n",
                    node.cluster_port,
                    routes.join(", ")
                );
            }
            conf += extra;
            std::fs::write(&node.config, conf).unwrap();
        }
        for node in &mut nodes {
            node.spawn(dir.path());
        }
        let nats = Nats { nodes, dir };
        for node in &nats.nodes {
            node.wait_healthy();
        }
        nats
    }

    /// The client URLs of the running nodes, comma-separated, as clients take them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("nats://127.0.0.1:{}", n.client_port)).collect()
    }

    /// A connected JetStream context, once JetStream answers (a new cluster elects its meta
    /// leader first).
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(self.urls())
            .await
            .expect("connect to nats");
        let js = async_nats::jetstream::new(client);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match js.query_account().await {
                Ok(_) => return js,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("JetStream did not answer within 30 s: {e}"),
            }
        }
    }

    pub fn node(&mut self, name: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.name == name).unwrap_or_else(|| panic!("no node {name}"))
    }
}

/// The name of the server leading `stream`, once it has one (within 30 s).
pub async fn stream_leader(js: &async_nats::jetstream::Context, stream: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = js.get_stream(stream).await
            && let Ok(info) = s.info().await
            && let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone())
        {
            return leader;
        }
        assert!(Instant::now() < deadline, "{stream} has no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Node {
    fn spawn(&mut self, dir: &std::path::Path) {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{}.log", self.name))).unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary()));
        self.child = Some(child);
    }

    /// SIGKILL: no goodbye to the cluster, nothing flushed that was not.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts the node again on its ports and store.
    pub fn restart(&mut self, dir: &std::path::Path) {
        assert!(self.child.is_none(), "{} is running", self.name);
        self.spawn(dir);
        self.wait_healthy();
    }

    /// The server's own health check, JetStream included.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some((200, _)) = http(self.monitor_port, "/healthz?js-enabled-only=true") {
                return;
            }
            assert!(Instant::now() < deadline, "{} not healthy within 30 s", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `/varz`'s JSON, for which server leads what.
    pub fn monitor(&self, path: &str) -> serde_json::Value {
        let (_, body) = http(self.monitor_port, path).expect("monitor answers");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }
}

/// One HTTP/1.0 GET on loopback: the status and the body.
fn http(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    Some((head.split_whitespace().nth(1)?.parse().ok()?, body.to_owned()))
}
