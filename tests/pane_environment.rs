//! A program in a pane sees the terminal brokertui emulates, not the outer one: `TERM` is
//! `xterm-256color` (unless the worker's env says otherwise), `COLORTERM=truecolor`, and an
//! outer tmux's or screen's variables are gone.

mod common;

use common::serve::Serve;
use reqwest::{Method, StatusCode};
use serde_json::json;

const SHOW: &str = r#"echo "T=$TERM C=$COLORTERM X=${TMUX:-none} P=${TMUX_PANE:-none} S=${STY:-none} Z=${ZELLIJ_SESSION_NAME:-none}"; sleep 30"#;

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
    }
    let s = Serve::start(&[]);
    s.spawn("plain", &["sh", "-c", SHOW]).await;
    let screen = s.wait_screen("plain", "T=").await;
    assert!(
        screen.contains("T=xterm-256color C=truecolor X=none P=none S=none Z=none"),
        "{screen}"
    );
    let (st, v) = s
        .call(
            Method::POST,
            "/api/spawn",
            Some(json!({"name": "vt", "cmd": ["sh", "-c", SHOW], "env": {"TERM": "vt100"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let screen = s.wait_screen("vt", "T=").await;
    assert!(screen.contains("T=vt100 "), "the config's TERM wins: {screen}");
}
