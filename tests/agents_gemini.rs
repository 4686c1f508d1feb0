//! Agent-aware brokering against the real Gemini CLI, offline, against
//! `tests/agents/gemini_standin.py` (the Gemini API's `streamGenerateContent`). Gemini takes an
//! Enter that follows typed text too closely as a newline — the loss every tool that types into
//! agents is blamed for — so these runs also prove the Enter is timed to its screen.

mod common;

use common::agent_cli::{
    Agent, ONE_AT_A_TIME, Standin, gemini_env, installed, prepare_home, texts,
};

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
    let port = standin.port.to_string();
    prepare_home(
        "gemini_home.py",
        &home,
        &dir.path().join("proj"),
        &["--port", &port],
    );
    let env = gemini_env(&home, &standin);
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
