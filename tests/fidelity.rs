//! A pane answers what a program asks its terminal, at once (see `docs/fidelity.md`): a
//! program that waits for the cursor position, as crossterm's `cursor::position()` and many
//! line editors do, used to hang in a pane.

mod common;

use common::serve::Serve;

/// In raw mode, asks the terminal each question and prints what came back.
const ASK: &str = r#"
import os, select, sys, tty
tty.setraw(0)
os.write(1, b"\x1b[3;7H\x1b[6n\x1b[c\x1b[>c\x1b[5n\x1b[?2004$p")
got = b""
while True:
    r, _, _ = select.select([0], [], [], 1.5)
    if not r:
        break
    got += os.read(0, 1024)
os.write(1, b"\r\nGOT " + repr(got).encode() + b"\r\n")
os.system("sleep 30")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_queries_are_answered_at_once_from_the_screen() {
    let s = Serve::start(&[]);
    s.spawn("ask", &["python3", "-c", ASK]).await;
    let screen = s.wait_screen("ask", "GOT ").await;
    let got = screen
        .lines()
        .find_map(|l| l.trim().strip_prefix("GOT "))
        .unwrap()
        .to_string();
    assert_eq!(
        got, r"b'\x1b[3;7R\x1b[?62;22c\x1b[>0;0;0c\x1b[0n\x1b[?2004;2$y'",
        "{screen}"
    );
}

/// A client that attaches late gets the worker's history on request (`?scrollback=N`), and
/// a worker's long line survives a resize round trip; a bad count is a clear 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_sent_on_request_and_a_long_line_survives_resizes() {
    use reqwest::{Method, StatusCode};
    let s = Serve::start(&[]);
    let script = "for i in $(seq 1 100); do echo history line $i; done; \
                  printf '%0300d\\n' 0; echo DONE; sleep 30";
    s.spawn("hist", &["sh", "-c", script]).await;
    s.wait_screen("hist", "DONE").await;
    let (status, v) = s
        .call(
            Method::GET,
            "/api/spawned/hist/snapshot?format=ansi&scrollback=50",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["scrollback"], 50, "{v}");
    let mut p = vt100::Parser::new(24, 80, 1000);
    p.process(&brokertui::b64::decode(v["screen"].as_str().unwrap()).unwrap());
    assert_eq!(p.screen().scrollback_rows(), 50);
    p.screen_mut().set_scrollback(50);
    let top = p.screen().rows(0, 80).next().unwrap();
    assert!(top.starts_with("history line "), "{top}");

    for (rows, cols) in [(24, 40), (24, 80)] {
        let (status, v) = s
            .call(
                Method::POST,
                "/api/resize/hist",
                Some(serde_json::json!({"rows": rows, "cols": cols})),
            )
            .await;
        assert!(status.is_success(), "{v}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let screen = s.screen("hist").await;
    let zeros: Vec<&str> = screen.lines().filter(|l| l.starts_with("0000")).collect();
    assert_eq!(
        zeros,
        [
            "0".repeat(80),
            "0".repeat(80),
            "0".repeat(80),
            "0".repeat(60)
        ]
    );

    let (status, v) = s
        .call(
            Method::GET,
            "/api/spawned/hist/snapshot?format=ansi&scrollback=lots",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
}
