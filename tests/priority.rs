//! Config `priority`: the front process (broker and TUI) outranks the programs in its panes
//! where the system grants it, keeps that rank to itself, and gives its session's share back
//! when it ends; where the system refuses, it says why and runs as before.
//!
//! One test per binary: raising the broker raises the session it shares with this test.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::serve::Serve;

/// A process's or thread's nice (field 19 of `stat`).
fn nice(stat_path: &str) -> i32 {
    let stat = std::fs::read_to_string(stat_path).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(16).unwrap().parse().unwrap()
}

/// Every thread's nice, by thread name.
fn thread_nices(pid: u32) -> Vec<(String, i32)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| {
            let dir = e.path();
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            (
                name.trim().to_string(),
                nice(&dir.join("stat").to_string_lossy()),
            )
        })
        .collect()
}

/// The nice of the autogroup `pid`'s session is in, where the kernel has autogroups.
fn autogroup(pid: u32) -> Option<i32> {
    brokertui::sched::autogroup_nice(Some(pid))
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn config(dir: &std::path::Path, nice: i32) -> std::path::PathBuf {
    let path = dir.join("brokertui.toml");
    std::fs::write(&path, format!("priority = {nice}\n")).unwrap();
    path
}

fn serve(wrapper: &[&str], config: &std::path::Path, state: &std::path::Path) -> Serve {
    let mut cmd = Command::new(wrapper.first().copied().unwrap_or("env"));
    cmd.args(wrapper.iter().skip(1))
        .arg(common::exe())
        .args(["--serve", "--state-dir"])
        .arg(state)
        .arg("--config")
        .arg(config);
    Serve::start_cmd(cmd, state)
}

fn may_raise() -> bool {
    // Root here; elsewhere an RLIMIT_NICE that allows nice -5 (limit 25).
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `geteuid` reads no memory; `getrlimit` writes only the `rlimit` we pass it.
    unsafe {
        libc::geteuid() == 0
            || (libc::getrlimit(libc::RLIMIT_NICE, &mut limit) == 0 && limit.rlim_cur >= 25)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_process_outranks_its_panes_and_keeps_it_to_itself() {
    if !may_raise() || Command::new("setpriv").arg("--help").output().is_err() {
        eprintln!("skipped: needs root (or RLIMIT_NICE ≥ 25) and setpriv");
        return;
    }
    let me = std::process::id();
    let session_before = autogroup(me);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), -5);

    // Granted: the broker's threads and its session at -5, its worker and the worker's
    // program at 0, each in a session (autogroup) of its own at 0.
    let state = dir.path().join("granted");
    let s = serve(&[], &cfg, &state);
    let broker = s.child.id();
    s.spawn("w", &["sh", "-c", "exec cat"]).await;
    let worker = s.worker_pid("w").await;
    // `--serve` answers everything on its main thread (threads started later, for blocking
    // work, start at 0: `SCHED_FLAG_RESET_ON_FORK`).
    assert_eq!(
        nice(&format!("/proc/{broker}/stat")),
        -5,
        "the broker is raised: {:?}",
        thread_nices(broker)
    );
    if session_before.is_some() {
        assert_eq!(autogroup(broker), Some(-5), "and its session's share");
        assert_eq!(autogroup(worker), Some(0), "the worker's session is not");
    }
    let worker_threads = thread_nices(worker);
    assert!(
        worker_threads.iter().all(|(_, n)| *n == 0),
        "the worker does not inherit the rank: {worker_threads:?}"
    );
    let program = children(worker);
    assert_eq!(program.len(), 1, "the worker runs cat");
    assert_eq!(nice(&format!("/proc/{}/stat", program[0])), 0);
    if session_before.is_some() {
        assert_eq!(autogroup(program[0]), Some(0));
    }
    drop(s);
    assert_eq!(
        autogroup(me),
        session_before,
        "the session's share is given back when the broker ends"
    );

    // Refused (no CAP_SYS_NICE, RLIMIT_NICE 0): said in the log, and nothing changes.
    let state = dir.path().join("refused");
    let s = serve(&["setpriv", "--bounding-set=-sys_nice"], &cfg, &state);
    let broker = s.child.id();
    s.spawn("w", &["cat"]).await;
    assert!(thread_nices(broker).iter().all(|(_, n)| *n == 0));
    assert_eq!(autogroup(broker), session_before);
    let log = state.join("brokertui.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("not granted") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        text.contains("nice -5 not granted") && text.contains("CAP_SYS_NICE"),
        "the log says why: {text}"
    );
}
