//! Ending a child's whole session: SIGHUP to every process in it, a grace period, then
//! SIGKILL to what is left.
//!
//! The PTY child is a session leader (portable-pty calls `setsid`), so every process it
//! starts — its process group and the background jobs a shell moves into groups of their
//! own — keeps its session id, even after it is re-parented to init. Scanning `/proc` for that
//! session id finds all of them; only a process that calls `setsid` itself escapes.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What `/proc/<pid>/stat` says of a process.
struct Stat {
    pid: i32,
    zombie: bool,
    ppid: i32,
    session: i32,
}

fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces and parentheses):
    // state ppid pgrp session ...
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let zombie = fields.next()? == "Z";
    let ppid = fields.next()?.parse().ok()?;
    let session = fields.nth(1)?.parse().ok()?;
    Some(Stat {
        pid,
        zombie,
        ppid,
        session,
    })
}

/// Every live (non-zombie) process.
fn live_processes() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| stat(entry.ok()?.file_name().to_str()?.parse().ok()?))
        .filter(|s| !s.zombie)
        .collect()
}

/// Whether process `pid` exists and is not a zombie.
pub fn running(pid: i32) -> bool {
    stat(pid).is_some_and(|s| !s.zombie)
}

/// Live (non-zombie) processes whose session id is `sid`.
pub fn session_members(sid: i32) -> Vec<i32> {
    live_processes()
        .into_iter()
        .filter(|s| s.session == sid)
        .map(|s| s.pid)
        .collect()
}

pub(super) fn signal_all(pids: &[i32], sig: Signal) {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// SIGHUP (and SIGCONT, so stopped jobs see it) every process in session `sid`, wait up to
/// `grace` for them to go, then SIGKILL the rest. Returns how many needed SIGKILL.
///
/// The caller reaps its own direct child; the others are reaped by init.
pub fn terminate_session(sid: i32, grace: Duration) -> usize {
    let members = session_members(sid);
    if members.is_empty() {
        return 0;
    }
    signal_all(&members, Signal::SIGHUP);
    signal_all(&members, Signal::SIGCONT);
    let deadline = Instant::now() + grace;
    loop {
        let left = session_members(sid);
        if left.is_empty() {
            return 0;
        }
        if Instant::now() >= deadline {
            signal_all(&left, Signal::SIGKILL);
            // SIGKILL is not instant: return once they are really gone (bounded).
            let gone_by = Instant::now() + Duration::from_secs(1);
            while !session_members(sid).is_empty() && Instant::now() < gone_by {
                std::thread::sleep(Duration::from_millis(2));
            }
            return left.len();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Live descendants of `pid` (children, their children, …), found through `/proc`'s parent
/// links.
pub fn descendants(pid: i32) -> Vec<i32> {
    let live = live_processes();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(live.iter().filter(|s| s.ppid == parent).map(|s| s.pid));
        i += 1;
    }
    found.remove(0);
    found
}

/// SIGKILLs every live descendant of `pid`; returns how many there were.
pub fn kill_descendants(pid: i32) -> usize {
    let left = descendants(pid);
    signal_all(&left, Signal::SIGKILL);
    left.len()
}

/// The conventional name of a signal number (`SIGKILL`), or `SIG<n>`.
pub fn signal_name(signo: i32) -> String {
    Signal::try_from(signo)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("SIG{signo}"))
}
