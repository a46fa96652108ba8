//! A `runner serve` (or `schedule --listen`) child on a free loopback port, and a small HTTP
//! client for it. The child is killed on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub struct Served {
    child: Child,
    pub base: String,
    pub rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// The JSON lines of a scan.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

impl Served {
    /// Starts `runner <args…> --listen 127.0.0.1:0` with `envs` and waits for its address.
    pub fn start(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Served {
        let mut cmd = super::runner_command(dir);
        cmd.args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start runner");
        let stdout = child.stdout.take().expect("stdout");
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("runner: {line}");
                if let Some(url) = line.strip_prefix("console on ") {
                    let _ = send.send(url.trim_end_matches('/').to_string());
                }
            }
        });
        let base = receive
            .recv_timeout(Duration::from_secs(60))
            .expect("runner printed its console address within 60 s");
        Served {
            child,
            base,
            rt: super::runtime(),
            client: reqwest::Client::new(),
        }
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            let mut request = self
                .client
                .request(method, &url)
                .timeout(Duration::from_secs(120));
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            Response {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                body: response.bytes().await.expect("body").to_vec(),
            }
        })
    }

    pub fn get(&self, path: &str) -> Response {
        self.request(reqwest::Method::GET, path, &[])
    }

    /// Asks `path` until `done` holds for its JSON, for at most `seconds`.
    pub fn get_until(
        &self,
        path: &str,
        seconds: u64,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let json = self.get(path).json();
            if done(&json) {
                return json;
            }
            assert!(Instant::now() < deadline, "{path} never got there: {json}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The messages of a scan, and its `done` line.
    pub fn scan(&self, topic: &str, query: &str) -> (Vec<serde_json::Value>, serde_json::Value) {
        let response = self.get(&format!("/api/topics/{topic}/messages?{query}"));
        assert_eq!(response.status, 200, "{}", response.text());
        let lines = response.lines();
        let done = lines
            .iter()
            .find_map(|l| l.get("done").cloned())
            .unwrap_or_else(|| panic!("no done line: {lines:?}"));
        let messages = lines
            .iter()
            .filter_map(|l| l.get("message").cloned())
            .collect();
        (messages, done)
    }
}

/// (partition, offset) of each message.
pub fn coordinates(messages: &[serde_json::Value]) -> Vec<(i64, i64)> {
    messages
        .iter()
        .map(|m| {
            (
                m["partition"].as_i64().unwrap(),
                m["offset"].as_i64().unwrap(),
            )
        })
        .collect()
}
