//! A real `brokertui --serve` process for the black-box tests.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use brokertui::client::Connection;
use nix::sys::signal::Signal;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::exe;

/// `cat` without the terminal's echo, so each injected line shows exactly once.
pub const QUIET_CAT: &[&str] = &["sh", "-c", "stty -echo; exec cat"];

pub struct Serve {
    pub child: Child,
    pub url: String,
    pub token: String,
    pub state: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
    http: reqwest::Client,
}

impl Serve {
    pub fn start(extra: &[&str]) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Self::start_in(dir.path(), extra);
        s._dir = Some(dir);
        s
    }

    /// A broker allowed only `fds` open file descriptors (soft and hard limit).
    pub fn start_with_fd_limit(fds: u32) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("ulimit -n {fds} && exec \"$0\" \"$@\"")])
            .arg(exe())
            .args(["--serve", "--state-dir"])
            .arg(dir.path());
        let mut s = Self::start_cmd(cmd, dir.path());
        s._dir = Some(dir);
        s
    }

    /// A broker on an existing state dir (to restart one).
    pub fn start_in(state: &std::path::Path, extra: &[&str]) -> Serve {
        let mut cmd = Command::new(exe());
        cmd.args(["--serve", "--state-dir"]).arg(state).args(extra);
        Self::start_cmd(cmd, state)
    }

    pub fn start_cmd(mut cmd: Command, state: &std::path::Path) -> Serve {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .trim()
            .strip_prefix("brokertui serving on ")
            .expect(&first)
            .to_string();
        let conn: Connection =
            serde_json::from_str(&std::fs::read_to_string(state.join("connection.json")).unwrap())
                .unwrap();
        assert_eq!(conn.url, url);
        assert_eq!(conn.pid, child.id());
        Serve {
            child,
            url,
            token: conn.token,
            state: state.to_path_buf(),
            _dir: None,
            http: reqwest::Client::new(),
        }
    }

    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(Some(&self.token.clone()), method, path, body)
            .await
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: &'static [u8],
    ) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn spawn(&self, name: &str, cmd: &[&str]) -> Value {
        let (s, v) = self
            .call(
                Method::POST,
                "/api/spawn",
                Some(json!({"name": name, "cmd": cmd})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    /// Resizes a worker's PTY, and checks the broker accepted it.
    pub async fn resize(&self, name: &str, rows: u16, cols: u16) {
        let (st, v) = self
            .call(
                Method::POST,
                &format!("/api/resize/{name}"),
                Some(json!({"rows": rows, "cols": cols})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    }

    pub async fn screen(&self, name: &str) -> String {
        let (_, v) = self
            .call(Method::GET, &format!("/api/spawned/{name}/snapshot"), None)
            .await;
        v["screen"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn wait_screen(&self, name: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.screen(name).await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared in {name}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The broker crashes (SIGKILL: no shutdown, no cleanup); returns once `worker`'s worker
    /// process, which sees its stdin close, has ended too.
    pub async fn crash(&mut self, worker: &str) {
        let pid = self.worker_pid(worker).await;
        super::signal(self.child.id(), Signal::SIGKILL);
        self.child.wait().unwrap();
        super::eventually(
            Duration::from_secs(10),
            "the worker to follow its broker",
            || async { (!super::alive(pid as i32)).then_some(()) },
        )
        .await;
    }

    /// The messages still owed (`GET /api/messages?owed=true`).
    pub async fn owed(&self) -> Vec<Value> {
        let (st, v) = self
            .call(Method::GET, "/api/messages?owed=true", None)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v["messages"].as_array().unwrap().clone()
    }

    /// Message `id`'s entry in `GET /api/messages` (its delivery state), or null.
    pub async fn message(&self, id: &str) -> Value {
        let (_, v) = self.call(Method::GET, "/api/messages", None).await;
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub async fn worker_pid(&self, name: &str) -> u32 {
        let (_, v) = self.call(Method::GET, "/api/spawned", None).await;
        let w = v["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap()
            .clone();
        w["worker_pid"].as_u64().unwrap() as u32
    }

    pub async fn ws(
        &self,
        query: &str,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("{}/api/events?{query}", self.url.replacen("http", "ws", 1))
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        tokio_tungstenite::connect_async(req).await.unwrap().0
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}
