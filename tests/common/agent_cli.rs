//! A real agent CLI in a `--serve` worker, offline against a loopback stand-in for its model
//! API (`tests/agents/*_standin.py`), whose request log is the proof of what the agent got.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::eventually;
use super::serve::Serve;

pub const T: Duration = Duration::from_secs(40);

/// One agent CLI at a time: several at once on a 2-core machine measure the machine.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn agents_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents")
}

/// Whether `program` runs; without it the test fails, unless BROKERTUI_SKIP_AGENT_CLI is set.
pub fn installed(program: &str, package: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var_os("BROKERTUI_SKIP_AGENT_CLI").is_none() {
        panic!(
            "{program} is not installed: npm install -g {package} (.ci/run does), \
             or set BROKERTUI_SKIP_AGENT_CLI=1 to skip these tests"
        );
    }
    found
}

/// The API key Claude Code is given (the stand-in takes any).
pub const CLAUDE_API_KEY: &str = "sk-ant-test-0123456789abcdefghijklmnop";

/// Prepares `home` with `tests/agents/<script>` (the first-run screens skipped, `cwd`
/// trusted); returns what the script printed.
pub fn prepare_home(script: &str, home: &Path, cwd: &Path, extra: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(agents_dir().join(script))
        .arg("--home")
        .arg(home)
        .arg("--cwd")
        .arg(cwd)
        .args(extra)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{script} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Claude Code's environment: its home, its stand-in, nothing sent elsewhere.
pub fn claude_env(home: &Path, standin: &Standin) -> Value {
    json!({
        "HOME": home,
        "ANTHROPIC_BASE_URL": format!("http://127.0.0.1:{}", standin.port),
        "ANTHROPIC_API_KEY": CLAUDE_API_KEY,
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    })
}

/// Gemini CLI's environment: its home and its stand-in.
pub fn gemini_env(home: &Path, standin: &Standin) -> Value {
    json!({
        "HOME": home,
        "GEMINI_API_KEY": "test-key",
        "GOOGLE_GEMINI_BASE_URL": format!("http://127.0.0.1:{}", standin.port),
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "GEMINI_CLI_NO_RELAUNCH": "true",
    })
}

/// A model stand-in, killed on drop.
pub struct Standin {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Standin {
    pub fn start(script: &str, dir: &Path) -> Standin {
        let log = dir.join("requests.jsonl");
        let mut child = Command::new("python3")
            .arg(agents_dir().join(script))
            .args(["--port", "0", "--log"])
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the model stand-in");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .strip_prefix("PORT=")
            .expect(&first)
            .parse()
            .unwrap();
        Standin { child, port, log }
    }

    /// Every logged request, parsed.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// The text parts of a list of content parts (`{"text": …}` objects) joined by newlines.
pub fn texts(parts: &Value) -> String {
    match parts {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A `--serve` broker with one agent worker named `cc`.
pub struct Agent {
    pub serve: Serve,
    pub standin: Standin,
    pub proj: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Agent {
    /// Spawns `cmd` with `env` in a fresh project directory and waits until it is idle.
    pub async fn start(
        standin: Standin,
        dir: tempfile::TempDir,
        cmd: &[&str],
        env: Value,
    ) -> Agent {
        let proj = dir.path().join("proj");
        std::fs::create_dir_all(&proj).unwrap();
        let serve = Serve::start(&[]);
        let (st, v) = serve
            .call(
                Method::POST,
                "/api/spawn",
                Some(json!({"name": "cc", "cmd": cmd, "cwd": proj, "env": env,
                            "rows": 40, "cols": 120})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let a = Agent {
            serve,
            standin,
            proj,
            dir,
        };
        a.wait_state("idle").await;
        a
    }

    pub async fn agent(&self) -> Value {
        let (st, v) = self
            .serve
            .call(Method::GET, "/api/spawned/cc/agent", None)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }

    /// Waits for the agent to report `state`; on timeout says what it reports, what its screen
    /// shows and how many requests the model stand-in got.
    pub async fn wait_state(&self, state: &str) -> Value {
        let until = Instant::now() + T;
        loop {
            let a = self.agent().await;
            if a["state"] == state {
                return a;
            }
            if Instant::now() > until {
                panic!(
                    "agent never {state}: {a}\nstand-in requests: {}\nscreen:\n{}",
                    self.standin.requests().len(),
                    self.serve.screen("cc").await
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn send(&self, body: &str) -> String {
        let (st, v) = self
            .serve
            .call(
                Method::POST,
                "/api/send",
                Some(json!({"to": "cc", "body": body})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    pub async fn message(&self, id: &str) -> Value {
        self.serve.message(id).await
    }

    /// Relays `bodies` into the idle agent and checks the model got each exactly once, in
    /// order, intact; returns the messages' final records.
    pub async fn relay_in_order(
        &self,
        prompts: impl Fn(&Standin) -> Vec<String>,
        bodies: &[&str],
    ) -> Vec<Value> {
        let mut ids = Vec::new();
        for body in bodies {
            ids.push(self.send(body).await);
        }
        let mut records = Vec::new();
        for id in &ids {
            records.push(self.wait_message(id, "submitted").await);
        }
        self.wait_state("idle").await;
        self.assert_each_once_in_order(prompts, &ids, bodies).await;
        records
    }

    /// Asks for a tool call that the agent must confirm (`dialog` shows), sends a message
    /// meanwhile, and checks it waits with its reason without answering the dialog, then is
    /// submitted exactly once after the human answers with `approve`.
    pub async fn message_during_dialog(
        &self,
        prompts: impl Fn(&Standin) -> Vec<String>,
        dialog: &str,
        approve: &str,
    ) {
        let marker = self.proj.join("approved.txt");
        self.send("RUN_TOOL:touch approved.txt").await;
        let blocked = self.state_follows_screen(dialog, "blocked").await;
        assert!(!blocked["reason"].as_str().unwrap().is_empty());
        let late = self.send("after-dialog: please continue").await;
        let m = self.wait_held(&late).await;
        assert!(
            m["reason"].as_str().unwrap().contains("blocked"),
            "held with its reason: {m}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!marker.exists(), "the message approved the command");
        assert!(
            self.serve.screen("cc").await.contains(dialog),
            "the dialog is still open"
        );
        assert_eq!(self.agent().await["state"], "blocked");
        self.input(approve).await;
        eventually(T, "the approved command ran", || async {
            marker.exists().then_some(())
        })
        .await;
        self.wait_message(&late, "submitted").await;
        self.wait_state("idle").await;
        self.assert_each_once_in_order(prompts, &[late], &["after-dialog"])
            .await;
    }

    /// Waits for message `id` to reach `state`; on timeout says where it and the agent are.
    pub async fn wait_message(&self, id: &str, state: &str) -> Value {
        let until = Instant::now() + T;
        loop {
            let m = self.message(id).await;
            if m["state"] == state {
                return m;
            }
            if Instant::now() > until {
                panic!(
                    "message {id} never {state}: {m}\nagent: {}\nscreen:\n{}",
                    self.agent().await,
                    self.serve.screen("cc").await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a message is held, and returns it with its reason.
    pub async fn wait_held(&self, id: &str) -> Value {
        eventually(T, "held with a reason", || async {
            let m = self.message(id).await;
            (m["state"] == "queued" && m["reason"].is_string()).then_some(m)
        })
        .await
    }

    pub async fn input(&self, data: &str) {
        let (st, _) = self
            .serve
            .call(Method::POST, "/api/input/cc", Some(json!({"data": data})))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
    }

    /// Waits until `prompts` (the model's view of the user's turns) holds every id, and
    /// checks each arrived exactly once, in order, carrying its body.
    pub async fn assert_each_once_in_order(
        &self,
        prompts: impl Fn(&Standin) -> Vec<String>,
        ids: &[String],
        bodies: &[&str],
    ) {
        let prompts = eventually(T, "the model got every message", || async {
            let p = prompts(&self.standin);
            ids.iter()
                .all(|id| p.iter().any(|x| x.contains(id.as_str())))
                .then_some(p)
        })
        .await;
        for (id, body) in ids.iter().zip(bodies) {
            let hits: Vec<&String> = prompts.iter().filter(|p| p.contains(id.as_str())).collect();
            assert_eq!(hits.len(), 1, "{id} reached the model once: {prompts:#?}");
            assert!(
                hits[0].contains(body),
                "body intact: {body:?} in {:?}",
                hits[0]
            );
        }
        let order: Vec<usize> = ids
            .iter()
            .map(|id| {
                prompts
                    .iter()
                    .position(|p| p.contains(id.as_str()))
                    .unwrap()
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "in order: {order:?}");
    }

    /// The screen shows `needle`, and the agent reports `state` within a second of it.
    pub async fn state_follows_screen(&self, needle: &str, state: &str) -> Value {
        self.serve.wait_screen("cc", needle).await;
        let shown = Instant::now();
        let v = self.wait_state(state).await;
        assert!(
            shown.elapsed() < Duration::from_secs(1),
            "{state} reported {:?} after the screen showed it",
            shown.elapsed()
        );
        v
    }
}
