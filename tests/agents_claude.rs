//! Agent-aware brokering against the real Claude Code CLI, offline: `claude` runs in a worker
//! against `tests/agents/model_standin.py`, a loopback stand-in for the Anthropic API whose
//! request log is the proof of what the agent received. `.ci/run` installs the CLI
//! (`npm install -g @anthropic-ai/claude-code`); `tests/agents/NOTES.md` says how it was
//! made to start without its first-run screens.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::eventually;
use common::serve::Serve;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const API_KEY: &str = "sk-ant-test-0123456789abcdefghijklmnop";
const T: Duration = Duration::from_secs(40);

/// One Claude Code at a time: three at once on a 2-core machine measure the machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn agents_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents")
}

/// The model stand-in, killed on drop.
struct Standin {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Standin {
    fn start(dir: &Path) -> Standin {
        let log = dir.join("requests.jsonl");
        let mut child = Command::new("python3")
            .arg(agents_dir().join("model_standin.py"))
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

    /// The text of the last user message of every main (conversational) request, in order.
    fn prompts(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["kind"] == "main")
            .filter_map(|r| {
                let msgs = r["body"]["messages"].as_array()?.clone();
                let last = msgs.iter().rev().find(|m| m["role"] == "user")?.clone();
                Some(match &last["content"] {
                    Value::String(s) => s.clone(),
                    Value::Array(parts) => parts
                        .iter()
                        .filter_map(|p| p["text"].as_str())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    _ => String::new(),
                })
            })
            .collect()
    }
}

fn claude_installed() -> bool {
    let found = Command::new("claude")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var_os("BROKERTUI_SKIP_AGENT_CLI").is_none() {
        panic!(
            "the Claude Code CLI is not installed: npm install -g @anthropic-ai/claude-code \
             (.ci/run does), or set BROKERTUI_SKIP_AGENT_CLI=1 to skip these tests"
        );
    }
    found
}

struct Fixture {
    serve: Serve,
    standin: Standin,
    proj: PathBuf,
    _dir: tempfile::TempDir,
}

/// A `--serve` broker with one `claude` worker, idle at its prompt.
async fn claude_worker() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let (home, proj) = (dir.path().join("home"), dir.path().join("proj"));
    std::fs::create_dir_all(&proj).unwrap();
    let status = Command::new("python3")
        .arg(agents_dir().join("claude_home.py"))
        .arg("--home")
        .arg(&home)
        .arg("--cwd")
        .arg(&proj)
        .args(["--api-key", API_KEY])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let serve = Serve::start(&[]);
    let env = json!({
        "HOME": home,
        "ANTHROPIC_BASE_URL": format!("http://127.0.0.1:{}", standin.port),
        "ANTHROPIC_API_KEY": API_KEY,
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    });
    let (st, v) = serve
        .call(
            Method::POST,
            "/api/spawn",
            Some(
                json!({"name": "cc", "cmd": ["claude"], "cwd": proj, "env": env,
                        "rows": 40, "cols": 120}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let f = Fixture {
        serve,
        standin,
        proj,
        _dir: dir,
    };
    f.wait_state("idle").await;
    f
}

impl Fixture {
    async fn agent(&self) -> Value {
        let (st, v) = self
            .serve
            .call(Method::GET, "/api/spawned/cc/agent", None)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }

    async fn wait_state(&self, state: &str) -> Value {
        eventually(T, &format!("claude {state}"), || async {
            let a = self.agent().await;
            (a["state"] == state).then_some(a)
        })
        .await
    }

    async fn send(&self, body: &str) -> String {
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

    async fn message(&self, id: &str) -> Value {
        let (_, v) = self.serve.call(Method::GET, "/api/messages", None).await;
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    }

    async fn wait_message(&self, id: &str, state: &str) -> Value {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_into_idle_claude_submits_each_message_once_in_order() {
    if !claude_installed() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let f = claude_worker().await;
    let agent = f.agent().await;
    assert_eq!(agent["kind"], "claude");
    let bodies = [
        "first: hello from the broker",
        "second: a multi-line message\nline two of it\nline three",
        "third: the last one",
    ];
    let mut ids = Vec::new();
    for body in bodies {
        ids.push(f.send(body).await);
    }
    for id in &ids {
        let m = f.wait_message(id, "submitted").await;
        // Either evidence counts: the hook's prompt, or the screen showing it went to work
        // (which can be seen a few milliseconds before the hook arrives).
        let reason = m["reason"].as_str().unwrap_or("");
        assert!(
            reason.contains("hook") || reason.contains("started working"),
            "{m}"
        );
    }
    f.wait_state("idle").await;
    let prompts = eventually(T, "the model got all three", || async {
        let p = f.standin.prompts();
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
            "body intact: {:?} in {:?}",
            body,
            hits[0]
        );
    }
    // The hooks brokertui installed through --settings reported every prompt.
    let log = std::fs::read_to_string(f.serve.state.join("logs/cc.log")).unwrap_or_default();
    assert!(
        log.matches("event=UserPromptSubmit").count() >= ids.len(),
        "every prompt reached the broker through Claude Code's hook:\n{log}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_during_the_permission_dialog_does_not_answer_it() {
    if !claude_installed() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let f = claude_worker().await;
    let marker = f.proj.join("approved.txt");
    f.send("RUN_TOOL:touch approved.txt").await;
    // The dialog on screen, then the state within a second of it.
    f.serve.wait_screen("cc", "Do you want to proceed?").await;
    let shown = Instant::now();
    let blocked = f.wait_state("blocked").await;
    assert!(
        shown.elapsed() < Duration::from_secs(1),
        "blocked reported {:?} after the dialog showed",
        shown.elapsed()
    );
    assert!(!blocked["reason"].as_str().unwrap().is_empty());

    // A message now must wait, and must not press the dialog's keys.
    let late = f.send("after-dialog: please continue").await;
    let m = eventually(T, "held with a reason", || async {
        let m = f.message(&late).await;
        (m["state"] == "queued" && m["reason"].is_string()).then_some(m)
    })
    .await;
    assert!(
        m["reason"].as_str().unwrap_or("").contains("blocked"),
        "held with its reason: {m}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!marker.exists(), "the message approved the command");
    assert!(
        f.serve
            .screen("cc")
            .await
            .contains("Do you want to proceed?"),
        "the dialog is still open"
    );
    assert_eq!(f.agent().await["state"], "blocked");

    // The human answers; the command runs, and the held message is submitted once.
    let (st, _) = f
        .serve
        .call(Method::POST, "/api/input/cc", Some(json!({"data": "1"})))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    eventually(T, "the approved command ran", || async {
        marker.exists().then_some(())
    })
    .await;
    f.wait_message(&late, "submitted").await;
    f.wait_state("idle").await;
    let prompts = eventually(T, "the model got the held message", || async {
        let p = f.standin.prompts();
        p.iter().any(|p| p.contains(&late)).then_some(p)
    })
    .await;
    let hits = prompts.iter().filter(|p| p.contains(&late)).count();
    assert_eq!(hits, 1, "{prompts:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_is_reported_and_send_wait_returns_submitted() {
    if !claude_installed() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let f = claude_worker().await;
    // A slow answer keeps Claude working long enough to see it.
    f.send("SLOW:4000 think about it").await;
    f.serve.wait_screen("cc", "esc to interrupt").await;
    let shown = Instant::now();
    f.wait_state("working").await;
    assert!(shown.elapsed() < Duration::from_secs(1));
    f.wait_state("idle").await;

    // `brokertui send --wait` from a script: exit 0 once submitted.
    let out = tokio::task::spawn_blocking({
        let (url, token) = (f.serve.url.clone(), f.serve.token.clone());
        move || {
            Command::new(common::exe())
                .args([
                    "send",
                    "--wait",
                    "--wait-ms",
                    "30000",
                    "cc",
                    "waited message",
                ])
                .env("BROKERTUI_URL", url)
                .env("BROKERTUI_TOKEN", token)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["messages"][0]["state"], "submitted");
    eventually(T, "the model got the waited message", || async {
        f.standin
            .prompts()
            .iter()
            .any(|p| p.contains("waited message"))
            .then_some(())
    })
    .await;
}
