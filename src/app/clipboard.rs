//! Copied text to the clipboard: the outer terminal's through OSC 52 (works over SSH and
//! through tmux with `set-clipboard on`), and the system's where a clipboard program is
//! there to take it (`wl-copy`, `xclip`, `xsel`, `pbcopy`).

use std::io::Write;
use std::process::{Command, Stdio};

pub(super) fn copy(text: &str) {
    let osc = format!("\x1b]52;c;{}\x07", crate::b64::encode(text.as_bytes()));
    super::terminal::write_to_outer(osc.as_bytes());
    if let Some((program, args)) = system_clipboard() {
        let text = text.to_string();
        // Off the loop: a clipboard program may wait for its display.
        std::thread::spawn(move || {
            let child = Command::new(program)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if let Ok(mut child) = child {
                if let Some(mut stdin) = child.stdin.take() {
                    let _ = stdin.write_all(text.as_bytes());
                }
                let _ = child.wait();
            }
        });
    }
}

/// The system clipboard's program for this session, if it has one.
fn system_clipboard() -> Option<(&'static str, &'static [&'static str])> {
    let has = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    let candidates: &[(&str, &[&str])] = if cfg!(target_os = "macos") {
        &[("pbcopy", &[])]
    } else if has("WAYLAND_DISPLAY") {
        &[("wl-copy", &[])]
    } else if has("DISPLAY") {
        &[
            ("xclip", &["-selection", "clipboard"]),
            ("xsel", &["--clipboard", "--input"]),
        ]
    } else {
        &[]
    };
    candidates.iter().copied().find(|(p, _)| on_path(p))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
