//! Ending everything a worker's program started, as far as the machine allows (see
//! `docs/reliability.md`, "Processes"):
//!
//! - [`session`]: every process in the child's session (found in `/proc` by session id) gets
//!   SIGHUP, a grace period, then SIGKILL;
//! - [`cgroup`]: where a cgroup v2 hierarchy is writable (root, or a delegated subtree), the
//!   child starts in a cgroup of its own, and whatever is left in it at the end — processes
//!   that called `setsid` and left the session too — is killed with `cgroup.kill`; cgroups
//!   of brokers that died without cleaning up are swept when the next broker starts;
//! - the worker is a child subreaper: a process that leaves the session and double-forks is
//!   re-parented to the worker, and the worker's descendants are killed too (all there is
//!   without cgroups).

pub mod cgroup;
pub mod session;

use std::time::Duration;

/// Ends the child's session (SIGHUP, `grace`, SIGKILL), then the rest of its cgroup, if it
/// has one (what left the session). What the broker does for a worker that died first.
/// Returns how many processes needed SIGKILL.
pub fn end_child(child_sid: i32, cgroup: Option<&cgroup::Cgroup>, grace: Duration) -> usize {
    session::terminate_session(child_sid, grace) + cgroup.map_or(0, cgroup::Cgroup::kill_and_remove)
}

/// What the worker does at its end: [`end_child`], and its own other descendants (what left
/// the session and was re-parented to it, the subreaper).
pub fn end_all(child_sid: i32, cgroup: Option<&cgroup::Cgroup>, grace: Duration) -> usize {
    end_child(child_sid, cgroup, grace) + session::kill_descendants(std::process::id() as i32)
}

/// Reaps the exited orphans re-parented to this (subreaper) process — every child but
/// `main`, whose status its own waiter collects. Looks without reaping first (`WNOWAIT`), so
/// `main` is never taken from its waiter; once `main` is the one waiting, the rest wait for
/// the teardown.
pub fn reap_orphans(main: i32) {
    loop {
        // SAFETY: waitid fills a zeroed siginfo_t; WNOWAIT leaves the child waitable.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is valid for a child-state siginfo that waitid filled.
        let pid = unsafe { info.si_pid() };
        if r != 0 || pid == 0 || pid == main {
            return;
        }
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }
}

/// Makes this process a child subreaper: orphans among its descendants are re-parented to it
/// instead of init, so [`session::kill_descendants`] still finds them.
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers and changes only this
    // process's reaper flag.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r != 0 {
        tracing::warn!(
            "cannot become a child subreaper: {}",
            std::io::Error::last_os_error()
        );
    }
}
