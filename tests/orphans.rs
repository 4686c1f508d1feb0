//! Nothing a worker's program starts outlives it: not what leaves its session with `setsid`
//! (as Codex's background app-server does), on release, on exit, or — with cgroups — after the
//! broker and its workers were killed together. Both ways this machine can run are tested:
//! a cgroup per child (root on a writable cgroup v2 hierarchy), and without cgroups
//! (`BROKERTUI_CGROUPS=off`), the worker as child subreaper.

mod common;

use std::process::Command;
use std::time::Duration;

use common::serve::Serve;
use common::*;
use nix::sys::signal::Signal;
use reqwest::{Method, StatusCode};

const T: Duration = Duration::from_secs(10);

fn serve(cgroups: bool) -> (Serve, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(exe());
    cmd.args(["--serve", "--state-dir"]).arg(dir.path());
    if !cgroups {
        cmd.env("BROKERTUI_CGROUPS", "off");
    }
    (Serve::start_cmd(cmd, dir.path()), dir)
}

/// Pids of live processes whose command line is exactly `sleep <secs>`.
fn sleepers(secs: u32) -> Vec<i32> {
    let out = Command::new("pgrep")
        .args(["-x", "-f", &format!("sleep {secs}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|&pid| alive(pid))
        .collect()
}

/// A worker whose program starts `sleep <secs>` in a session of its own; returns its pid.
async fn spawn_escaper(s: &Serve, name: &str, secs: u32) -> i32 {
    let before = sleepers(secs);
    let script = format!("setsid -f sleep {secs}; echo escaped; exec sleep 300");
    s.spawn(name, &["sh", "-c", &script]).await;
    s.wait_screen(name, "escaped").await;
    eventually(T, "the escaper running", || async {
        sleepers(secs).into_iter().find(|p| !before.contains(p))
    })
    .await
}

fn cgroups_usable() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let v2 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .contains(" - cgroup2 ");
    if !(root && v2) {
        eprintln!("skipped: needs root and a cgroup v2 hierarchy (CI has both)");
    }
    root && v2
}

async fn released_worker_leaves_nothing(cgroups: bool, secs: u32) {
    let (s, _dir) = serve(cgroups);
    let escaper = spawn_escaper(&s, "w", secs).await;
    let (st, v) = s.call(Method::DELETE, "/api/spawned/w", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    eventually(T, "the process that left the session gone", || async {
        (!alive(escaper)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cgroups_a_setsid_child_ends_with_its_released_worker() {
    if cgroups_usable() {
        released_worker_leaves_nothing(true, 31071).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_a_setsid_child_ends_with_its_released_worker() {
    released_worker_leaves_nothing(false, 31072).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cgroups_what_survives_an_oom_kill_of_everything_ends_at_the_next_start() {
    if !cgroups_usable() {
        return;
    }
    let (mut a, _dir) = serve(true);
    let escaper = spawn_escaper(&a, "w", 31073).await;
    let worker = a.worker_pid("w").await;
    // Broker and worker killed together, as the OOM killer does: nobody is left to clean up.
    signal(a.child.id(), Signal::SIGKILL);
    signal(worker, Signal::SIGKILL);
    a.child.wait().unwrap();
    eventually(T, "the worker gone", || async {
        (!alive(worker as i32)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(escaper), "it survived them");
    let (_b, _dir2) = serve(true);
    eventually(T, "the survivor ended by the next broker", || async {
        (!alive(escaper)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cgroups_a_killed_workers_escaped_children_end_too() {
    if !cgroups_usable() {
        return;
    }
    let (s, _dir) = serve(true);
    let escaper = spawn_escaper(&s, "w", 31074).await;
    signal(s.worker_pid("w").await, Signal::SIGKILL);
    eventually(T, "the escaper gone with its worker", || async {
        (!alive(escaper)).then_some(())
    })
    .await;
}
