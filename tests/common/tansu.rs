//! tansu, a Kafka-compatible broker, run as a separate process for the tests.
// The benches include this file too and use only part of it.
#![allow(dead_code)]

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INSTALL: &str =
    "bash tests/run.sh (it installs tansu), or: cargo install tansu --locked --features libsql";

pub struct Tansu {
    child: Child,
    port: u16,
    /// The address it listens on: loopback, or its network namespace's.
    host: String,
    /// The network namespace it runs in, if any.
    netns: Option<String>,
    dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let in_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("tansu"))
        .find(|p| p.is_file());
    let cargo_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tansu"));
    in_path
        .or(cargo_bin.filter(|p| p.is_file()))
        .unwrap_or_else(|| panic!("tansu is not installed; install it with: {INSTALL}"))
}

impl Tansu {
    /// Starts tansu on a free port with sqlite storage in a temp folder; waits until it listens.
    pub fn start() -> Tansu {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = spawn(dir.path(), "127.0.0.1", port, None);
        Tansu {
            child,
            port,
            host: "127.0.0.1".into(),
            netns: None,
            dir,
        }
    }

    /// Starts tansu inside a network namespace, listening on its address there.
    pub fn start_in(netns: &super::netns::Netns) -> Tansu {
        let port = 9092;
        let dir = tempfile::tempdir().unwrap();
        let child = spawn(dir.path(), &netns.inside, port, Some(&netns.name));
        Tansu {
            child,
            port,
            host: netns.inside.clone(),
            netns: Some(netns.name.clone()),
            dir,
        }
    }

    /// Kills the broker and starts it again on the same port and storage, advertising
    /// `advertised` (a TLS front's port) instead of its own, and with SASL authentication
    /// required when `authentication` is set.
    pub fn restart_as(&mut self, advertised: u16, authentication: bool) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut extra = Vec::new();
        if authentication {
            extra.push("--authentication".to_string());
        }
        self.child = spawn_with(
            self.dir.path(),
            &self.host,
            self.port,
            advertised,
            &extra,
            self.netns.as_deref(),
        );
    }

    /// `tansu user create`: a SCRAM user (`scram256` or `scram512`) in the broker's storage.
    pub fn create_user(&self, name: &str, password: &str, mechanism: &str) {
        let out = Command::new(binary())
            .args(["user", "create", "--broker"])
            .arg(format!("tcp://{}", self.bootstrap_servers()))
            .args(["--mechanism", mechanism, name, password])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tansu user create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kills the broker and starts it again on the same port and storage.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(
            self.dir.path(),
            &self.host,
            self.port,
            self.netns.as_deref(),
        );
    }

    pub fn bootstrap_servers(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// tansu does not auto-create topics.
    pub fn create_topic(&self, rt: &tokio::runtime::Runtime, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap_servers())
            .create()
            .unwrap();
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let results = rt
            .block_on(admin.create_topics([&new], &AdminOptions::new()))
            .unwrap();
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs tansu on `port` with its sqlite storage in `dir`, once it listens.
fn spawn(dir: &std::path::Path, host: &str, port: u16, netns: Option<&str>) -> Child {
    spawn_with(dir, host, port, port, &[], netns)
}

/// Runs tansu on `port`, advertising `advertised`, with more broker arguments.
fn spawn_with(
    dir: &std::path::Path,
    host: &str,
    port: u16,
    advertised: u16,
    extra: &[String],
    netns: Option<&str>,
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tansu.log"))
        .unwrap();
    let url = format!("tcp://{host}:{port}");
    let advertised_url = format!("tcp://{host}:{advertised}");
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(binary());
            c
        }
        None => Command::new(binary()),
    };
    let mut child = command
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised_url,
        ])
        .args(extra)
        .args(["--storage-engine", "sqlite://tansu.db"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start tansu ({e}); install it with: {INSTALL}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect((host, port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("tansu.log")).unwrap_or_default();
            panic!("tansu exited with {status}: {log}");
        }
        assert!(
            Instant::now() < deadline,
            "tansu did not listen on port {port} within 30s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}
