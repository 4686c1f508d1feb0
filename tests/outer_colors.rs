//! The TUI asks its terminal for its colours (OSC 10 / 11) before it takes the screen over,
//! and its panes tell programs that ask. Here the "terminal" is a PTY whose master side
//! answers like a light-themed xterm; the pane's program prints what it was told.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const ASK: &str = r#"
import os, select, tty, time
tty.setraw(0)
os.write(1, b"\x1b]11;?\x07\x1b]10;?\x07\x1b[c")
got, t = b"", time.time()
while time.time() - t < 1.5:
    if select.select([0], [], [], 0.2)[0]:
        got += os.read(0, 1024)
os.write(1, b"\r\nGOT " + repr(got).encode().replace(b"\\x1b", b"ESC") + b"\r\n")
time.sleep(60)
"#;

#[test]
fn panes_report_the_outer_terminals_colours() {
    let dir = tempfile::tempdir().unwrap();
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 30,
            cols: 160,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(common::exe());
    cmd.args(["--state-dir".as_ref(), dir.path().as_os_str()]);
    cmd.args(["-w", &format!("ask=python3 -c '{ASK}'")]);
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("TMUX");
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let writer = Arc::new(Mutex::new(pair.master.take_writer().unwrap()));
    let screen = Arc::new(Mutex::new(vt100::Parser::new(30, 160, 0)));
    let (w, s) = (writer.clone(), screen.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            let mut w = w.lock().unwrap();
            // What a light-themed terminal answers.
            if chunk.windows(6).any(|x| x == b"\x1b]10;?") {
                let _ = w.write_all(b"\x1b]10;rgb:1010/2020/3030\x1b\\");
            }
            if chunk.windows(6).any(|x| x == b"\x1b]11;?") {
                let _ = w.write_all(b"\x1b]11;rgb:fafa/fbfb/fcfc\x1b\\");
            }
            if chunk.windows(3).any(|x| x == b"\x1b[c") {
                let _ = w.write_all(b"\x1b[?62;22c");
            }
            s.lock().unwrap().process(chunk);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let text = screen.lock().unwrap().screen().contents();
        if let Some(line) = text.lines().find(|l| l.contains("GOT b'")) {
            break line.to_string();
        }
        assert!(Instant::now() < deadline, "the pane never printed:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        got.contains(r"ESC]11;rgb:fafa/fbfb/fcfcESC\\ESC]10;rgb:1010/2020/3030ESC\\ESC[?62;22c"),
        "{got}"
    );
    // q, then y: the TUI ends its workers and exits.
    writer.lock().unwrap().write_all(b"q").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    writer.lock().unwrap().write_all(b"y").unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "the TUI did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}
