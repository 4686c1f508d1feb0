//! Safe delivery into shells and generic programs (the rules of docs/agents.md that need no
//! agent CLI): a shell's foreground job is never typed into, a half-typed line is never glued
//! onto, and a program that throws its input away is not reported as having taken a message.

mod common;

use std::time::Duration;

use common::eventually;
use common::serve::Serve;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);

async fn send(s: &Serve, to: &str, body: &str) -> String {
    let (st, v) = s
        .call(
            Method::POST,
            "/api/send",
            Some(json!({"to": to, "body": body})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn wait_message(s: &Serve, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    eventually(T, what, || async {
        let m = s.message(id).await;
        ok(&m).then_some(m)
    })
    .await
}

async fn agent_state(s: &Serve, name: &str) -> Value {
    let (_, v) = s
        .call(Method::GET, &format!("/api/spawned/{name}/agent"), None)
        .await;
    v
}

async fn input(s: &Serve, name: &str, data: &str) {
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/api/input/{name}"),
            Some(json!({"data": data})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
}

async fn shell_at_prompt(s: &Serve, name: &str) {
    s.spawn(name, &["sh"]).await;
    eventually(T, "the shell is idle", || async {
        (agent_state(s, name).await["state"] == "idle").then_some(())
    })
    .await;
}

/// A job in the foreground of a shell (`dialog`, `vim`) is never typed into: the message
/// waits, saying why, and reaches the shell once the job ends.
async fn held_while_a_job_runs(job: &str, on_screen: &str, quit: &str) {
    let s = Serve::start(&[]);
    shell_at_prompt(&s, "sh").await;
    input(&s, "sh", &format!("{job}; echo job-ended-$?\r")).await;
    s.wait_screen("sh", on_screen).await;
    eventually(T, "the shell is working", || async {
        (agent_state(&s, "sh").await["state"] == "working").then_some(())
    })
    .await;
    let id = send(&s, "sh", "yes please").await;
    let m = wait_message(&s, &id, "held with a reason", |m| m["reason"].is_string()).await;
    assert!(
        m["reason"].as_str().unwrap().contains("foreground job"),
        "{m}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let screen = s.screen("sh").await;
    assert!(
        !screen.contains("job-ended"),
        "the message answered the job:\n{screen}"
    );
    assert!(
        !screen.contains("yes please"),
        "typed into the job:\n{screen}"
    );
    input(&s, "sh", quit).await;
    s.wait_screen("sh", "job-ended").await;
    wait_message(&s, &id, "submitted once the shell is back", |m| {
        m["state"] == "submitted"
    })
    .await;
    s.wait_screen("sh", "yes please").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialog_in_a_shell_is_not_answered_by_a_message() {
    // "Relay…" starts with the y of Yes: typed into dialog, it would answer it.
    held_while_a_job_runs(
        "dialog --defaultno --yesno 'Proceed?' 8 40",
        "Proceed?",
        "\x1b",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_running_vim_holds_messages() {
    held_while_a_job_runs("vim -u NONE -N", "VIM", "\x1b:q!\r").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_typed_line_is_not_glued_onto() {
    let s = Serve::start(&[]);
    shell_at_prompt(&s, "sh").await;
    input(&s, "sh", "echo half").await;
    s.wait_screen("sh", "echo half").await;
    let id = send(&s, "sh", "glued?").await;
    let m = wait_message(&s, &id, "held with a reason", |m| m["reason"].is_string()).await;
    assert!(m["reason"].as_str().unwrap().contains("typing"), "{m}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!s.screen("sh").await.contains("halfRelay"));
    // The human finishes their line: the message follows on a line of its own.
    input(&s, "sh", "-done\r").await;
    wait_message(&s, &id, "submitted", |m| m["state"] == "submitted").await;
    let screen = s.screen("sh").await;
    assert!(screen.contains("half-done"), "{screen}");
    assert!(!screen.contains("half-doneRelay"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_flushes_its_input_does_not_get_a_receipt() {
    let s = Serve::start(&[]);
    // Raw, no echo; then the terminal's input is thrown away, as TCSAFLUSH at start-up does.
    let script = "stty raw -echo; printf 'ready> '; sleep 1; \
                  python3 -c 'import termios; termios.tcflush(0, termios.TCIFLUSH)'; sleep 30";
    s.spawn("raw", &["sh", "-c", script]).await;
    s.wait_screen("raw", "ready>").await;
    let id = send(&s, "raw", "lost in the flush").await;
    let m = wait_message(&s, &id, "settled", |m| {
        m["state"] == "unconfirmed" || m["state"] == "submitted"
    })
    .await;
    assert_eq!(m["state"], "unconfirmed", "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_cut_by_the_canonical_limit_is_not_reported_submitted() {
    let s = Serve::start(&[]);
    s.spawn("reader", &["sh", "-c", "printf 'go\\n'; exec cat"])
        .await;
    s.wait_screen("reader", "go").await;
    let long = "x".repeat(5000);
    let id = send(&s, "reader", &long).await;
    let m = wait_message(&s, &id, "settled", |m| {
        m["state"] == "unconfirmed" || m["state"] == "submitted"
    })
    .await;
    assert_eq!(m["state"], "unconfirmed", "{m}");
    assert!(m["reason"].as_str().unwrap().contains("canonical"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_wait_returns_when_the_state_is_reached_or_times_out() {
    let s = Serve::start(&[]);
    s.spawn("sh", &["sh"]).await;
    let run = |state: &'static str, ms: &'static str| {
        let (url, token) = (s.url.clone(), s.token.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(common::exe())
                .args(["ctl", "wait", "sh", "--state", state, "--timeout-ms", ms])
                .env("BROKERTUI_URL", url)
                .env("BROKERTUI_TOKEN", token)
                .output()
                .unwrap()
        })
    };
    let idle = run("idle", "10000").await.unwrap();
    assert_eq!(
        idle.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&idle.stderr)
    );
    let v: Value = serde_json::from_slice(&idle.stdout).unwrap();
    assert_eq!(v["state"], "idle");
    let blocked = run("blocked", "300").await.unwrap();
    assert_eq!(blocked.status.code(), Some(8), "timed out");
}

/// A job that ends without the screen changing (here the prompt is empty) leaves no output
/// to look at the terminal again for; messages waiting behind it used to wait for good,
/// and a flush the human asked for was refused as "running a foreground job".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_ends_silently_does_not_keep_messages_waiting() {
    let s = Serve::start(&[]);
    let job = r#"python3 -c "print('JOB RUNS', flush=True); import time; time.sleep(1.5)""#;
    for (name, mode) in [("quietq", "relay"), ("quietf", "human")] {
        let (st, v) = s
            .call(
                Method::POST,
                "/api/spawn",
                Some(json!({"name": name, "cmd": ["sh"], "env": {"PS1": ""}, "mode": mode})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    for name in ["quietq", "quietf"] {
        eventually(T, "the shell to start", || async {
            (agent_state(&s, name).await["state"] == "idle").then_some(())
        })
        .await;
        input(&s, name, &format!("{job}\r")).await;
        s.wait_screen(name, "JOB RUNS").await;
    }
    // Queued while the job runs; typed once it has ended.
    let id = send(&s, "quietq", "after the quiet job").await;
    wait_message(&s, &id, "the queued message typed", |m| {
        m["state"] == "submitted" || m["state"] == "injected"
    })
    .await;
    // Held (human mode), then flushed by hand after the job has ended.
    let held = send(&s, "quietf", "flushed by hand").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (st, v) = s
        .call(Method::POST, "/api/spawned/quietf/flush", None)
        .await;
    assert_eq!((st, &v), (StatusCode::OK, &json!({"flushed": 1})), "{v}");
    wait_message(&s, &held, "the flushed message typed", |m| {
        m["state"] == "submitted" || m["state"] == "injected"
    })
    .await;
}

/// In a pane narrower than the typed message, the terminal wraps it (its id split across
/// rows); the echo still counts as the program taking it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_terminal_wrapped_is_still_seen_taken() {
    let s = Serve::start(&[]);
    s.spawn("narrow", &["sh"]).await;
    s.resize("narrow", 24, 30).await;
    eventually(T, "the shell is idle", || async {
        (agent_state(&s, "narrow").await["state"] == "idle").then_some(())
    })
    .await;
    let id = send(&s, "narrow", "wrapped across rows").await;
    let m = wait_message(&s, &id, "settled", |m| {
        m["state"] == "unconfirmed" || m["state"] == "submitted"
    })
    .await;
    assert_eq!(m["state"], "submitted", "{m}\n{}", s.screen("narrow").await);
}
