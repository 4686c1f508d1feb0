//! The real TUI in a real terminal: `brokertui` under tmux, driven with `send-keys` and read
//! with `capture-pane`. Needs tmux (`.ci/run` installs it).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::serve::Serve;
use common::*;

struct Tmux {
    socket: String,
    _state: tempfile::TempDir,
}

const W: usize = 160;

impl Tmux {
    fn start(args: &str) -> Tmux {
        Self::start_env(args, "")
    }

    /// With `env` (e.g. `FOO=1`) prefixed to the command.
    fn start_env(args: &str, env: &str) -> Tmux {
        assert!(
            Command::new("tmux").arg("-V").output().is_ok(),
            "tmux is required for the TUI end-to-end tests (apt-get install -y tmux)"
        );
        let state = tempfile::tempdir().unwrap();
        let socket = format!("brokertui-test-{}-{}", std::process::id(), rand_suffix());
        let cmd = format!(
            "{env} {} --state-dir {} {args}; echo TUI-EXITED-$?; stty -a | tr ' ;' '\\n\\n' | grep -x -e -icanon -e icanon -e -echo -e echo | tr '\\n' ' ' | sed 's/^/TTY: /'; echo; sleep 30",
            exe().display(),
            state.path().display()
        );
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &W.to_string(),
                "-y",
                "40",
                &cmd,
            ])
            .env_remove("TMUX")
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Tmux {
            socket,
            _state: state,
        }
    }

    fn keys(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "t"])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Literal text (no key-name lookup).
    fn type_text(&self, text: &str) {
        let ok = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "t", "-l", text])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn screen(&self) -> Vec<String> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The visible screen and what scrolled off it.
    fn history(&self) -> String {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "capture-pane",
                "-p",
                "-S",
                "-1000",
                "-t",
                "t",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Left and right halves of the screen (the two panes of a two-worker layout).
    fn halves(&self) -> (String, String) {
        let (mut l, mut r) = (String::new(), String::new());
        for line in self.screen() {
            let chars: Vec<char> = line.chars().collect();
            let mid = (W / 2).min(chars.len());
            l.extend(&chars[..mid]);
            l.push('\n');
            r.extend(&chars[mid..]);
            r.push('\n');
        }
        (l, r)
    }

    fn wait(&self, what: &str, timeout: Duration, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{}\n{}",
                screen.join("\n"),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_text(&self, text: &str, timeout: Duration) -> Vec<String> {
        self.wait(text, timeout, |s| s.iter().any(|l| l.contains(text)))
    }
}

impl Tmux {
    /// The last lines of every log under the state directory (the broker's and each
    /// worker's), for a failure to show what the processes saw.
    fn logs(&self) -> String {
        let mut out = String::new();
        let mut dirs = vec![self._state.path().to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    let tail = &lines[lines.len().saturating_sub(40)..];
                    out.push_str(&format!("--- {}\n{}\n", path.display(), tail.join("\n")));
                }
            }
        }
        out
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

fn worker_pid(name: &str) -> Option<u32> {
    let out = Command::new("pgrep")
        .args(["-f", &format!("brokertui worker --name {name} ")])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

const T: Duration = Duration::from_secs(10);

#[test]
fn drive_relay_alerts_and_clean_quit() {
    let id = std::process::id() % 100_000;
    let (a, b) = (format!("left{id}"), format!("right{id}"));
    let tui = Tmux::start(&format!("-w {a}=sh -w {b}=sh"));
    tui.wait_text(&format!("2 {b}"), T);
    tui.wait("both prompts", T, |s| {
        s.get(1).is_some_and(|l| l.matches('#').count() >= 2)
    });

    // Drive the left worker and run echo: output in its pane, not the other.
    tui.keys(&["Enter"]);
    tui.wait_text("DRIVE", T);
    tui.type_text("echo mark''er-one");
    tui.keys(&["Enter"]);
    tui.wait("echo output", T, |_| {
        tui.halves().0.contains("marker-one\n") || tui.halves().0.contains("marker-one ")
    });
    assert!(
        !tui.halves().1.contains("marker-one"),
        "output leaked into the other pane"
    );
    assert!(
        tui.screen()[0].contains("human"),
        "driving puts the worker in human mode"
    );

    // Ctrl-b d: back to view, mode restored.
    tui.keys(&["C-b", "d"]);
    tui.wait("view mode", T, |s| {
        s.last().is_some_and(|l| l.contains("VIEW")) && s[0].contains(&format!("{a} │ relay"))
    });

    // c: a relay message to the focused worker appears in it.
    tui.keys(&["Tab", "c"]);
    tui.wait_text("relay message", T);
    tui.type_text("hi-test");
    tui.keys(&["Enter"]);
    // Short body: the line holds a 36-character id and wraps in an 80-column pane.
    tui.wait("message in right pane", T, |_| {
        tui.halves().1.contains("]: hi-test")
    });
    assert!(tui.halves().1.contains("Relay message from human ["));

    // In drive mode a message waits until flushed: the left shell sends one after 2 s.
    tui.keys(&["1", "Enter"]);
    tui.type_text(&format!("sleep 2; \"$BROKERTUI_BIN\" send {b} 'qmsg'"));
    tui.keys(&["Enter"]);
    tui.keys(&["C-b", "d"]);
    tui.keys(&["2", "Enter"]);
    tui.wait("pending count 1", T, |s| s[0].contains("✉ 1"));
    assert!(!tui.halves().1.contains("]: qmsg"), "held while driving");
    tui.keys(&["C-b", "f"]);
    tui.wait("flushed message", T, |_| tui.halves().1.contains("]: qmsg"));
    tui.keys(&["C-b", "d"]);
    tui.wait("view", T, |s| s.last().is_some_and(|l| l.contains("VIEW")));

    // A stopped worker: s times out with an alert, and the other pane still takes typing.
    let pid = worker_pid(&b).expect("right worker pid");
    signal(pid, nix::sys::signal::Signal::SIGSTOP);
    let asked = Instant::now();
    tui.keys(&["s", "1", "Enter"]);
    tui.type_text("echo still-typ''ing");
    tui.keys(&["Enter"]);
    tui.wait(
        "typing while the other worker hangs",
        Duration::from_secs(3),
        |_| tui.halves().0.contains("still-typing"),
    );
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "typing was blocked by the hung request"
    );
    tui.wait("timeout alert", Duration::from_secs(8), |s| {
        s.last()
            .is_some_and(|l| l.contains("did not answer snapshot"))
    });
    signal(pid, nix::sys::signal::Signal::SIGCONT);
    tui.keys(&["C-b", "d"]);

    // A killed worker: an alert says it is gone.
    signal(pid, nix::sys::signal::Signal::SIGKILL);
    tui.wait("gone alert", T, |s| {
        s.last().is_some_and(|l| l.contains("died (SIGKILL)"))
    });
    tui.wait_text("killed by SIGKILL", T);

    // q quits (after confirming) and leaves no worker behind.
    tui.keys(&["q"]);
    tui.wait_text("Quit and end", T);
    tui.keys(&["y"]);
    tui.wait_text("TUI-EXITED-0", T);
    assert!(
        worker_pid(&a).is_none() && worker_pid(&b).is_none(),
        "worker processes left behind"
    );
}

#[test]
fn connect_detach_and_reattach_keep_workers_running() {
    let id = std::process::id() % 100_000;
    let name = format!("kept{id}");
    let mut serve = Serve::start(&["-w", &format!("{name}=sh")]);
    let args = format!("--connect {} --token {}", serve.url, serve.token);

    let tui = Tmux::start(&args);
    tui.wait_text(&format!("1 {name}"), T);
    tui.keys(&["Enter"]);
    tui.wait_text("DRIVE", T);
    tui.type_text("echo sur''vives");
    tui.keys(&["Enter"]);
    tui.wait_text("survives", T);
    tui.keys(&["C-b", "d"]);
    tui.keys(&["q"]); // no confirmation: quitting a remote TUI ends no worker
    tui.wait_text("TUI-EXITED-0", T);
    assert!(
        worker_pid(&name).is_some(),
        "the worker must outlive the client"
    );
    drop(tui);

    // A second client picks the worker up where it is: screen and mode.
    let again = Tmux::start(&args);
    again.wait_text("survives", T);
    again.wait(&format!("{name} in relay mode again"), T, |s| {
        s[0].contains("relay")
    });
    again.keys(&["q"]);
    again.wait_text("TUI-EXITED-0", T);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(serve.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(serve.child.wait().unwrap().success());
    assert!(
        worker_pid(&name).is_none(),
        "--serve ends its workers on SIGTERM"
    );
}

/// The terminal is back to normal (canonical mode, echo) once the TUI has gone.
fn assert_restored(tui: &Tmux) {
    let screen = tui.wait_text("TTY:", T);
    let tty = screen.iter().find(|l| l.contains("TTY:")).unwrap();
    assert!(
        tty.contains(" icanon") && tty.contains(" echo"),
        "terminal left raw: {tty}"
    );
    assert!(
        !tty.contains("-icanon") && !tty.contains("-echo"),
        "terminal left raw: {tty}"
    );
}

#[test]
fn terminal_is_restored_after_every_signal_that_would_kill_it() {
    use nix::sys::signal::Signal;
    // SIGINT and SIGQUIT left it raw, in the alternate screen, with mouse reporting on.
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
    ] {
        let id = std::process::id() % 100_000;
        let name = format!(
            "t{}{id}",
            sig.as_str().to_lowercase().trim_start_matches("sig")
        );
        let tui = Tmux::start(&format!("-w {name}=sh"));
        tui.wait_text(&format!("1 {name}"), T);
        tui.keys(&["Enter"]); // attached, in raw mode, worker in human mode
        tui.wait_text("DRIVE", T);
        let out = Command::new("pgrep")
            .args([
                "-f",
                "--",
                &format!("^{} --state-dir .* -w {name}=sh", exe().display()),
            ])
            .output()
            .unwrap();
        let pid: u32 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        signal(pid, sig);
        tui.wait_text("TUI-EXITED-0", T);
        assert_restored(&tui);
        assert!(worker_pid(&name).is_none(), "{sig}: workers ended");
    }
}

#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the TUI's panic hook: cargo test --features test-hooks"
)]
fn terminal_is_restored_after_a_panic() {
    let id = std::process::id() % 100_000;
    let tui = Tmux::start_env(&format!("-w pan{id}=sh"), "BROKERTUI_TEST_PANIC=1");
    tui.wait_text("TUI-EXITED-", T);
    assert_restored(&tui);
    let history = tui.history();
    assert!(
        history.contains("panicking on purpose"),
        "the panic report is readable: {history}"
    );
}

#[test]
fn attach_survives_a_lost_worker_and_a_lost_broker() {
    let id = std::process::id() % 100_000;
    let name = format!("lost{id}");
    let mut serve = Serve::start(&["-w", &format!("{name}=sh")]);
    let tui = Tmux::start(&format!(
        "ctl --url {} --token {} attach {name} --mode drive",
        serve.url, serve.token
    ));
    tui.wait_text("DRIVE", T);
    // The worker dies under us: the pane says so, the client stays usable.
    signal(
        worker_pid(&name).unwrap(),
        nix::sys::signal::Signal::SIGKILL,
    );
    tui.wait_text("killed by SIGKILL", T);
    tui.wait("back in view", T, |s| {
        s.last().is_some_and(|l| l.contains("VIEW"))
    });
    // The broker dies under us: the client exits and gives the terminal back.
    signal(serve.child.id(), nix::sys::signal::Signal::SIGKILL);
    serve.child.wait().unwrap();
    tui.wait_text("TUI-EXITED-", T);
    assert_restored(&tui);
}

#[test]
fn a_worker_starts_at_its_panes_size() {
    // Started at 80x24 and resized just after, vim in a large window came up garbled.
    let id = std::process::id() % 100_000;
    let tui = Tmux::start(&format!(
        "-w \"sz{id}=sh -c 'echo S1=\\$(stty size); sleep 1; echo S2=\\$(stty size); exec sleep 30'\""
    ));
    let screen = tui.wait_text("S2=", T).join("\n");
    let size = |tag: &str| {
        screen
            .split(tag)
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    assert_ne!(size("S1="), "24 80", "{screen}");
    assert_eq!(
        size("S1="),
        size("S2="),
        "never resized after start: {screen}"
    );
}

#[test]
fn a_review_of_a_worktree_sends_two_line_comments_as_one_message() {
    let id = std::process::id() % 100_000;
    let tmp = tempfile::tempdir().unwrap();
    let repo = common::git::repo(tmp.path(), &[("file.txt", "one\ntwo\nthree\n")]);
    // The "agent" changes a line in its worktree, then reads what it is sent.
    let config = tmp.path().join("brokertui.toml");
    std::fs::write(
        &config,
        format!(
            "[[worker]]\nname = \"rev{id}\"\ncmd = [\"sh\", \"-c\", \"printf 'one\\\\nTWO\\\\nthree\\\\n' > file.txt; echo EDITED; stty -echo; exec cat\"]\ncwd = \"{}\"\nworktree = true\n",
            repo.display()
        ),
    )
    .unwrap();
    let tui = Tmux::start(&format!("--config {}", config.display()));
    tui.wait_text("EDITED", T);
    tui.wait_text(&format!("brokertui/rev{id}"), T);
    tui.keys(&["D"]);
    tui.wait_text(&format!("changes of rev{id}"), T);
    // The cursor starts on the first line ("one"): down to "+TWO", comment; down to
    // "three", comment; send both.
    tui.keys(&["j", "j", "c"]);
    tui.type_text("why capitals");
    tui.keys(&["Enter", "j", "c"]);
    tui.type_text("keep this one");
    tui.keys(&["Enter"]);
    tui.wait_text("S sends 2 comments", T);
    tui.keys(&["S"]);
    let screen = tui
        .wait("both comments in the agent's pane", T, |s| {
            let text = s.join("\n");
            text.contains("file.txt:2 — why capitals")
                && text.contains("file.txt:3 — keep this one")
        })
        .join("\n");
    assert_eq!(
        screen.matches("Review of your changes:").count(),
        1,
        "one message: {screen}"
    );
    assert_eq!(screen.matches("Relay message from").count(), 1, "{screen}");
}

impl Tmux {
    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The status bar (the screen's last line).
    fn status(&self) -> String {
        self.screen().last().cloned().unwrap_or_default()
    }
}

#[test]
fn copy_mode_copies_a_multi_line_selection_to_the_outer_clipboard() {
    let id = std::process::id() % 100_000;
    let tui = Tmux::start(&format!(
        "-w \"cp{id}=sh -c 'for i in 1 2 3 4 5; do echo row-\\$i-of-five; done; exec sleep 60'\""
    ));
    // The outer tmux takes OSC 52 from the program in it (as a terminal with clipboard
    // access would).
    tui.tmux(&["set", "-g", "set-clipboard", "on"]);
    tui.wait_text("row-5-of-five", T);
    // Copy mode at the cursor (below row 5); up to row 4, select it and row 3 by line.
    tui.keys(&["["]);
    tui.wait_text("COPY", T);
    tui.keys(&["k", "k", "V", "k", "y"]);
    let deadline = Instant::now() + T;
    let buffer = loop {
        let buffer = tui.tmux(&["show-buffer"]);
        if !buffer.is_empty() || Instant::now() > deadline {
            break buffer;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(buffer, "row-3-of-five\nrow-4-of-five");
    tui.wait("y to leave copy mode", T, |s| {
        !s.join("\n").contains("COPY")
    });
}

#[test]
fn search_finds_text_in_scrollback() {
    let id = std::process::id() % 100_000;
    let tui = Tmux::start(&format!(
        "-w \"se{id}=sh -c 'seq 1 300 | sed s/^/item-/; echo needle-here-once; seq 1 300 | sed s/^/after-/; exec sleep 60'\""
    ));
    tui.wait_text("after-300", T);
    assert!(!tui.screen().join("\n").contains("needle-here-once"));
    tui.keys(&["/"]);
    tui.type_text("NEEDLE");
    tui.keys(&["Enter"]);
    // Smart case: a capital makes case matter, so nothing is found...
    tui.wait_text("not found: NEEDLE", T);
    tui.keys(&["/"]);
    tui.type_text("needle");
    tui.keys(&["Enter"]);
    // ... and lower case finds it, 300 lines back, and shows it.
    tui.wait_text("needle-here-once", T);
    tui.keys(&["?"]);
    tui.type_text("item-150");
    tui.keys(&["Enter"]);
    tui.wait_text("item-150", T);
    tui.keys(&["q"]);
    tui.wait("the live screen back", T, |s| {
        let text = s.join("\n");
        text.contains("after-300") && !text.contains("COPY")
    });
}

#[test]
fn an_exited_worker_starts_again_in_its_pane_with_one_key() {
    let id = std::process::id() % 100_000;
    let tui = Tmux::start(&format!(
        "-w first{id}=sh -w \"rs{id}=sh -c 'echo run-at-\\$(date +%s%N); exit 3'\""
    ));
    // The exit alert and the pane's last screen travel separately (an event, a snapshot
    // answer): wait for both.
    let before = tui
        .wait("the first run's output and its exit", T, |s| {
            let text = s.join("\n");
            text.contains("exit 3") && text.contains("run-at-")
        })
        .join("\n");
    let first_run = before
        .split("run-at-")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(str::to_string)
        .expect(&before);
    tui.keys(&["Tab"]);
    tui.wait(&format!("rs{id} focused"), T, |s| {
        s.last().is_some_and(|l| l.contains(&format!(" rs{id} ")))
    });
    tui.keys(&["R"]);
    let after = tui
        .wait("a second run", T, |s| {
            let text = s.join("\n");
            text.matches("run-at-").count() == 1 && !text.contains(&format!("run-at-{first_run}"))
        })
        .join("\n");
    // Same place: still pane 2, and focused.
    assert!(after.contains(&format!("2 rs{id}")), "{after}");
    assert!(tui.status().contains(&format!(" rs{id} ")), "{after}");
}

#[test]
fn arrows_focus_the_pane_on_that_side_in_the_demo_layout() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.toml");
    let tui = Tmux::start(&format!("--config {}", config.display()));
    tui.wait_text("I am narrator", T);
    let focused = |name: &str| {
        let want = format!(" VIEW  {name} ");
        tui.wait(&format!("{name} focused"), T, |s| {
            s.last().is_some_and(|l| l.contains(&want))
        });
    };
    focused("pinger");
    // Top left → right is the top right pane, not the wide one below.
    tui.keys(&["Right"]);
    focused("ponger");
    tui.keys(&["Down"]);
    focused("narrator");
    tui.keys(&["Up"]);
    focused("pinger");
    tui.keys(&["l"]);
    focused("ponger");
    tui.keys(&["h"]);
    focused("pinger");
}

/// The demo's agents show each message's id when they take it, so every delivery is
/// confirmed on screen: a newcomer's first run raises no "no sign that the program took it".
#[test]
fn the_demo_confirms_its_deliveries_without_alerts() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.toml");
    let tui = Tmux::start(&format!("--config {}", config.display()));
    // By the second pong, the first ping's and the first pong's receipts have been judged.
    tui.wait_text("(reply #2)", Duration::from_secs(30));
    tui.keys(&["a"]);
    let screen = tui.wait_text("alerts (newest first)", T);
    // A delivery alert's row in the log or the status bar (its reason may wrap).
    let unconfirmed: Vec<&String> = screen.iter().filter(|l| l.contains("deliver —")).collect();
    assert!(unconfirmed.is_empty(), "{}", screen.join("\n"));
}

#[test]
fn inside_a_tmux_with_the_same_prefix_it_says_once_how_to_change_it() {
    let id = std::process::id() % 100_000;
    let tui = Tmux::start(&format!("-w pf{id}=sh"));
    tui.wait_text("uses the same prefix (Ctrl-b)", T);
    tui.keys(&["a"]);
    let screen = tui.wait_text("alerts (newest first)", T);
    // Once in the alert log (the popup's rows, between its │ borders); the status bar may
    // still show the same alert for its first seconds.
    let log: Vec<&String> = screen.iter().filter(|l| l.contains('│')).collect();
    let said = log
        .iter()
        .filter(|l| l.contains("uses the same prefix"))
        .count();
    assert_eq!(said, 1, "{}", screen.join("\n"));
}

/// What a program sets for the human reaches the outer terminal: its title in the pane's
/// border, the real cursor at its place with the shape it asked for (DECSCUSR), and focus
/// in / out (DECSET 1004) when the pane is driven and left.
#[test]
fn title_cursor_shape_and_focus_events_reach_the_outer_terminal() {
    let id = std::process::id() % 100_000;
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("modes.py");
    std::fs::write(
        &script,
        r#"
import os, sys, tty
tty.setraw(0)
os.write(1, b"\x1b]2;shaped title\x07\x1b[6 q\x1b[?1004h\x1b[2J\x1b[3;5HREADY>")
while True:
    got = os.read(0, 64)
    os.write(1, b"\x1b[5;1H\x1b[2KGOT " + repr(got).encode().replace(b"\\x1b", b"ESC") + b"\x1b[3;11H")
"#,
    )
    .unwrap();
    let tui = Tmux::start(&format!("-w \"modes{id}=python3 {}\"", script.display()));
    let raw = tmp.path().join("outer.raw");
    let ok = Command::new("tmux")
        .args(["-L", &tui.socket, "pipe-pane", "-o", "-t", "t"])
        .arg(format!("cat >> {}", raw.display()))
        .status()
        .unwrap();
    assert!(ok.success());
    tui.wait_text("READY>", T);
    tui.wait_text("shaped title", T);

    tui.keys(&["Enter"]);
    tui.wait_text("DRIVE", T);
    tui.wait_text("GOT b'ESC[I'", T);
    // The outer terminal's cursor sits right after the prompt the program drew.
    let screen = tui.screen();
    let (row, line) = screen
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains("READY>"))
        .unwrap();
    let col = line.chars().take_while(|c| *c != '>').count() + 1;
    let cursor = Command::new("tmux")
        .args(["-L", &tui.socket, "display", "-p", "-t", "t"])
        .arg("#{cursor_x},#{cursor_y},#{cursor_flag}")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cursor.stdout).trim(),
        format!("{col},{row},1"),
        "{screen:#?}"
    );
    let drawn = std::fs::read(&raw).unwrap_or_default();
    assert!(
        drawn.windows(5).any(|w| w == b"\x1b[6 q"),
        "the bar cursor was never asked of the outer terminal"
    );

    tui.keys(&["C-b", "d"]);
    tui.wait_text("GOT b'ESC[O'", T);
    tui.keys(&["q"]);
    tui.wait_text("Quit and end", T);
    tui.keys(&["y"]);
    tui.wait_text("TUI-EXITED-0", T);
}
