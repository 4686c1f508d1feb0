//! A program in a pane sees the terminal brokertui emulates, not the outer one: `TERM` is
//! `xterm-256color` (unless the worker's env says otherwise), `COLORTERM=truecolor`, and an
//! outer tmux's or screen's variables, and CI's, are gone.

mod common;

use common::serve::Serve;
use reqwest::{Method, StatusCode};
use serde_json::json;

const SHOW: &str = r#"echo "T=$TERM C=$COLORTERM X=${TMUX:-none} P=${TMUX_PANE:-none} S=${STY:-none} Z=${ZELLIJ_SESSION_NAME:-none} CI=${CI:-none} J=${CI_JOB_ID:-none}"; sleep 30"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_get_the_emulated_term_and_no_outer_multiplexer() {
    // SAFETY: set before any thread of this test binary reads the environment; this file
    // holds only this test.
    unsafe {
        std::env::set_var("TERM", "tmux-256color");
        std::env::set_var("TMUX", "/tmp/tmux-0/default,1,0");
        std::env::set_var("TMUX_PANE", "%3");
        std::env::set_var("STY", "123.pts-0.host");
        std::env::set_var("ZELLIJ_SESSION_NAME", "outer");
        // CI says nobody watches: ink-based agents then draw nothing in the pane.
        std::env::set_var("CI", "true");
        std::env::set_var("CI_JOB_ID", "42");
    }
    let s = Serve::start(&[]);
    s.spawn("plain", &["sh", "-c", SHOW]).await;
    let screen = s.wait_screen("plain", "T=").await;
    assert!(
        screen.contains("T=xterm-256color C=truecolor X=none P=none S=none Z=none CI=none J=none"),
        "{screen}"
    );
    let (st, v) = s
        .call(
            Method::POST,
            "/api/spawn",
            Some(json!({"name": "vt", "cmd": ["sh", "-c", SHOW], "env": {"TERM": "vt100", "CI": "1"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let screen = s.wait_screen("vt", "T=").await;
    assert!(
        screen.contains("T=vt100 ") && screen.contains(" CI=1 "),
        "the worker's own env wins: {screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cwd_that_does_not_exist_is_refused_not_replaced_by_home() {
    let s = Serve::start(&[]);
    let (st, v) = s
        .call(
            Method::POST,
            "/api/spawn",
            Some(json!({"name": "lost", "cmd": ["sh"], "cwd": "/no/such/dir"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "spawn_failed");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/no/such/dir"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_or_exited_workers_token_no_longer_works() {
    let s = Serve::start(&[]);
    // The worker hands its own token out through its screen.
    s.spawn(
        "agent",
        &["sh", "-c", "echo TOKEN=$BROKERTUI_TOKEN; sleep 30"],
    )
    .await;
    s.spawn(
        "short",
        &["sh", "-c", "echo TOKEN=$BROKERTUI_TOKEN; sleep 1"],
    )
    .await;
    s.spawn("other", &["sh"]).await;
    let token = |screen: String| {
        screen
            .split("TOKEN=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let agent = token(s.wait_screen("agent", "TOKEN=").await);
    let short = token(s.wait_screen("short", "TOKEN=").await);
    let send = json!({"to": "other", "body": "hi"});
    let (st, _) = s
        .call_as(Some(&agent), Method::POST, "/api/send", Some(send.clone()))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "valid while it runs");
    let (st, _) = s.call(Method::DELETE, "/api/spawned/agent", None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s
        .call_as(Some(&agent), Method::POST, "/api/send", Some(send.clone()))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "released: revoked");
    common::eventually(
        std::time::Duration::from_secs(10),
        "short exits",
        || async {
            let (st, _) = s
                .call_as(Some(&short), Method::POST, "/api/send", Some(send.clone()))
                .await;
            (st == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;
}
