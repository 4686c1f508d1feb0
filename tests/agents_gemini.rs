//! Agent-aware brokering against the real Gemini CLI, offline, against
//! `tests/agents/gemini_standin.py` (the Gemini API's `streamGenerateContent`). Gemini takes an
//! Enter that follows typed text too closely as a newline — the loss every tool that types into
//! agents is blamed for — so these runs also prove the Enter is timed to its screen.

mod common;

use std::process::{Command, Stdio};

use common::agent_cli::{Agent, ONE_AT_A_TIME, Standin, agents_dir, installed, texts};
use serde_json::json;

/// The user turns the model was sent (the last user content of each main request).
fn prompts(standin: &Standin) -> Vec<String> {
    standin
        .requests()
        .iter()
        .filter(|r| r["classification"] == "main")
        .filter_map(|r| {
            let contents = r["body"]["contents"].as_array()?;
            let last = contents.iter().rev().find(|c| c["role"] == "user")?;
            Some(texts(&last["parts"]))
        })
        .collect()
}

async fn gemini() -> Option<Agent> {
    if !installed("gemini", "@google/gemini-cli") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start("gemini_standin.py", dir.path());
    let home = dir.path().join("home");
    let out = Command::new("python3")
        .arg(agents_dir().join("gemini_home.py"))
        .arg("--home")
        .arg(&home)
        .arg("--cwd")
        .arg(dir.path().join("proj"))
        .args(["--port", &standin.port.to_string(), "--print-env"])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success());
    let env = json!({
        "HOME": home,
        "GEMINI_API_KEY": "test-key",
        "GOOGLE_GEMINI_BASE_URL": format!("http://127.0.0.1:{}", standin.port),
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "GEMINI_CLI_NO_RELAUNCH": "true",
    });
    Some(Agent::start(standin, dir, &["gemini"], env).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_into_idle_gemini_submits_each_message_once_in_order() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(f) = gemini().await else { return };
    assert_eq!(f.agent().await["kind"], "gemini");
    f.relay_in_order(
        prompts,
        &[
            "first: hello gemini",
            "second: three lines\nline two\nline three",
            "third: the end",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_during_gemini_confirmation_does_not_answer_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(f) = gemini().await else { return };
    f.message_during_dialog(prompts, "Allow execution of", "1")
        .await;
}
