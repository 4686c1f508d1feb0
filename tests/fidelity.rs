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
