//! Agent-aware brokering against the real Claude Code CLI, offline: `claude` runs in a worker
//! against `tests/agents/model_standin.py`, a loopback stand-in for the Anthropic API whose
//! request log is the proof of what the agent received. `.ci/run` installs the CLI;
//! `tests/agents/NOTES.md` says how it was made to start without its first-run screens.

mod common;

use std::process::Command;

use common::agent_cli::{
    Agent, CLAUDE_API_KEY, ONE_AT_A_TIME, Standin, T, claude_env, installed, prepare_home, texts,
};
use common::eventually;
use serde_json::Value;

/// The last user message of every main (conversational) request, in order.
fn prompts(standin: &Standin) -> Vec<String> {
    standin
        .requests()
        .iter()
        .filter(|r| r["kind"] == "main")
        .filter_map(|r| {
            let msgs = r["body"]["messages"].as_array()?;
            let last = msgs.iter().rev().find(|m| m["role"] == "user")?;
            Some(texts(&last["content"]))
        })
        .collect()
}

/// Claude Code in a worker named `cc`, idle at its prompt.
async fn claude() -> Option<Agent> {
    if !installed("claude", "@anthropic-ai/claude-code") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start("model_standin.py", dir.path());
    let (home, proj) = (dir.path().join("home"), dir.path().join("proj"));
    prepare_home(
        "claude_home.py",
        &home,
        &proj,
        &["--api-key", CLAUDE_API_KEY],
    );
    let env = claude_env(&home, &standin);
    Some(Agent::start(standin, dir, &["claude"], env).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_into_idle_claude_submits_each_message_once_in_order() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(f) = claude().await else { return };
    assert_eq!(f.agent().await["kind"], "claude");
    let records = f
        .relay_in_order(
            prompts,
            &[
                "first: hello from the broker",
                "second: a multi-line message\nline two of it\nline three",
                "third: the last one",
            ],
        )
        .await;
    for m in &records {
        // Any evidence counts: the hook's prompt, or the screen (which can show the agent at
        // work a few milliseconds before the hook arrives).
        let reason = m["reason"].as_str().unwrap_or("");
        assert!(
            ["hook", "started working", "left the input"]
                .iter()
                .any(|r| reason.contains(r)),
            "{m}"
        );
    }
    // The hooks brokertui installed through --settings reported every prompt.
    let log = std::fs::read_to_string(f.serve.state.join("logs/cc.log")).unwrap_or_default();
    assert!(
        log.matches("event=UserPromptSubmit").count() >= records.len(),
        "every prompt reached the broker through Claude Code's hook:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_during_the_permission_dialog_does_not_answer_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(f) = claude().await else { return };
    f.message_during_dialog(prompts, "Do you want to proceed?", "1")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_is_reported_and_send_wait_returns_submitted() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(f) = claude().await else { return };
    // A slow answer keeps Claude working long enough to see it.
    f.send("SLOW:4000 think about it").await;
    f.state_follows_screen("esc to interrupt", "working").await;
    // Its footer's hint comes back with the empty input box when the turn is over.
    f.state_follows_screen("? for shortcuts", "idle").await;

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
        prompts(&f.standin)
            .iter()
            .any(|p| p.contains("waited message"))
            .then_some(())
    })
    .await;
}
