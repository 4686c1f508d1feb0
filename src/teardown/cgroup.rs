//! A cgroup (v2) per worker's child: `<the broker's cgroup>/brokertui-<broker pid>/<name>.<worker
//! pid>`. The worker steps into it just to spawn the child — so the child is in it from its
//! first instruction — and steps back out, so it can kill the whole cgroup at the end without
//! killing itself. Everything the child starts stays in it, whatever sessions or process groups
//! it makes, so `cgroup.kill` ends all of it.
//!
//! Used where a v2 hierarchy is mounted and writable (root, or a delegated subtree);
//! `BROKERTUI_CGROUPS=off` turns it off. If broker and workers are all killed at once (an OOM
//! kill), their cgroups outlive them: the next broker to start sweeps the cgroups of brokers
//! that are gone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PREFIX: &str = "brokertui-";

/// One worker child's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    pub path: PathBuf,
}

/// Whether cgroups are wanted at all (`BROKERTUI_CGROUPS=off` says no).
fn enabled() -> bool {
    std::env::var("BROKERTUI_CGROUPS").map_or(true, |v| v != "off" && v != "0")
}

/// This process's own cgroup directory in the v2 hierarchy, if one is mounted.
fn own_dir() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let (before, after) = l.split_once(" - ")?;
        after
            .starts_with("cgroup2 ")
            .then(|| before.split(' ').nth(4).map(PathBuf::from))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(mount.join(rel.trim_start_matches('/')))
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

impl Cgroup {
    /// Runs `spawn` with this process moved into a new cgroup for a child of worker `name`,
    /// and moves back after. Without a usable hierarchy, just runs `spawn`.
    pub fn spawn_in<T>(name: &str, spawn: impl FnOnce() -> T) -> (T, Option<Cgroup>) {
        let Some((cgroup, home)) = enabled().then(|| Self::enter(name)).flatten() else {
            return (spawn(), None);
        };
        let result = spawn();
        let me = std::process::id().to_string();
        if let Err(e) = write(&home.join("cgroup.procs"), &me) {
            tracing::warn!("cannot leave {}: {e}", cgroup.path.display());
        }
        (result, Some(cgroup))
    }

    fn enter(name: &str) -> Option<(Cgroup, PathBuf)> {
        let home = own_dir()?;
        // SAFETY: getppid has no preconditions.
        let broker = unsafe { libc::getppid() };
        let path = home
            .join(format!("{PREFIX}{broker}"))
            .join(format!("{name}.{}", std::process::id()));
        let made = std::fs::create_dir_all(&path)
            .and_then(|_| write(&path.join("cgroup.procs"), &std::process::id().to_string()));
        match made {
            Ok(()) => Some((Cgroup { path }, home)),
            Err(e) => {
                tracing::info!(
                    "no cgroup for the child ({}: {e}); session and subreaper only",
                    path.display()
                );
                let _ = std::fs::remove_dir(&path);
                None
            }
        }
    }

    /// Live processes in it.
    pub fn members(&self) -> Vec<i32> {
        std::fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills everything in it, waits (bounded) until it is empty, and removes it (and its
    /// broker's directory, once that is empty). Returns how many processes it held.
    pub fn kill_and_remove(&self) -> usize {
        let members = self.members();
        if !members.is_empty() && write(&self.path.join("cgroup.kill"), "1").is_err() {
            // Kernels before 5.14 have no cgroup.kill.
            super::session::signal_all(&members, nix::sys::signal::Signal::SIGKILL);
        }
        let until = Instant::now() + Duration::from_secs(2);
        while !self.members().is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = std::fs::remove_dir(&self.path);
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        members.len()
    }
}

/// Kills and removes the cgroups of brokers that are gone (killed with their workers); returns
/// how many processes they still held. A broker's directory, or a worker's within it, is left
/// alone while a live process has its pid (pid reuse can only keep leftovers alive longer, never
/// kill what a live broker or worker is still ending).
pub fn sweep_stale() -> usize {
    if !enabled() {
        return 0;
    }
    let Some(home) = own_dir() else { return 0 };
    let Ok(dir) = std::fs::read_dir(&home) else {
        return 0;
    };
    let mut killed = 0;
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if super::session::running(pid) {
            continue;
        }
        for worker in std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            // A worker that outlived its broker is still ending its child's session itself.
            let worker_pid = worker
                .file_name()
                .to_string_lossy()
                .rsplit_once('.')
                .and_then(|(_, pid)| pid.parse::<i32>().ok());
            if worker_pid.is_some_and(super::session::running) {
                continue;
            }
            if worker.path().is_dir() {
                killed += Cgroup {
                    path: worker.path(),
                }
                .kill_and_remove();
            }
        }
        let _ = std::fs::remove_dir(entry.path());
    }
    if killed > 0 {
        tracing::warn!(
            killed,
            "killed what brokers that are gone left in their cgroups"
        );
    }
    killed
}
