//! Which of a broker's workers are flooding right now, so a flood whose idle-priority reader
//! barely runs can tell the broker's own floods (stay aside) from other work (hand back).
//!
//! A starved flood passes its reading to an idle-priority thread (`pty_reader`). That keeps
//! twenty floods on two cores from starving the broker and every quiet worker — but when the
//! CPU is taken by something else (a build in another window), an idle-priority reader barely
//! runs at all, and a lone flood crawled 4–10x slower than with an ordinary reader
//! (BENCHMARKS.md), while stepping aside helped nobody of ours. Both look alike from inside
//! one worker (its twin barely runs); what tells them apart is whether at least as many of
//! the broker's workers flood as there are CPUs.
//!
//! The broker makes a private directory ([`FloodsDir`]) and names it to every worker
//! (`--floods-dir`); a flooding worker keeps a file named by its pid there ([`Marker`]).
//! Files of processes that no longer exist (a killed worker) are not counted, and are removed.

use std::path::{Path, PathBuf};

/// The broker's directory of flood markers; removed when dropped.
#[derive(Debug)]
pub struct FloodsDir {
    path: PathBuf,
}

impl FloodsDir {
    /// Creates a directory only we may use, under the temporary directory, and removes those
    /// of brokers that are gone (killed, they could not clean up).
    pub fn create() -> std::io::Result<FloodsDir> {
        use std::os::unix::fs::DirBuilderExt;
        let tmp = std::env::temp_dir();
        remove_abandoned(&tmp);
        let path = tmp.join(dir_name(std::process::id()));
        // Left over by an earlier broker with our pid that could not clean up: start afresh.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(FloodsDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn dir_name(pid: u32) -> String {
    format!("brokertui-{pid}-floods")
}

/// Whether process `pid` exists (signal 0; EPERM means it does, and is not ours).
fn alive(pid: i32) -> bool {
    let r = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None);
    !matches!(r, Err(nix::errno::Errno::ESRCH))
}

/// Removes the flood directories in `tmp` of brokers that no longer run (best effort; other
/// users' cannot be removed in a sticky `/tmp`, and are not tried).
fn remove_abandoned(tmp: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("brokertui-"))
            .and_then(|n| n.strip_suffix("-floods"))
            .and_then(|n| n.parse::<i32>().ok());
        let ours = entry.metadata().is_ok_and(|m| m.is_dir() && m.uid() == uid);
        if let Some(pid) = pid
            && ours
            && !alive(pid)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for FloodsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// How many of the broker's workers flood now.
#[derive(Clone)]
pub struct Peers {
    dir: PathBuf,
    /// Floods at once that crowd the machine: its CPU count.
    crowd: usize,
}

impl Peers {
    pub fn new(dir: PathBuf) -> Peers {
        let crowd = std::thread::available_parallelism().map_or(1, |n| n.get());
        Peers { dir, crowd }
    }

    /// Whether at least as many workers flood (this one included) as there are CPUs.
    pub fn crowded(&self) -> bool {
        self.floods() >= self.crowd
    }

    /// Workers flooding now: markers of processes that exist.
    fn floods(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter(|entry| {
                let live = entry
                    .file_name()
                    .to_str()
                    .and_then(|name| name.parse::<i32>().ok())
                    .is_some_and(alive);
                if !live {
                    let _ = std::fs::remove_file(entry.path());
                }
                live
            })
            .count()
    }
}

/// This worker's marker among its [`Peers`]: present while it floods.
pub struct Marker {
    peers: Peers,
    file: PathBuf,
    present: bool,
}

impl Marker {
    pub fn new(peers: Peers) -> Marker {
        let file = marker_path(&peers.dir);
        Marker {
            peers,
            file,
            present: false,
        }
    }

    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// This worker floods: its marker is there (one file creation when that starts).
    pub fn flooding(&mut self) {
        if !self.present {
            // Best effort: without a marker this flood is merely not counted.
            self.present = std::fs::File::create(&self.file).is_ok();
        }
    }

    /// This worker does not flood (any more): its marker goes.
    pub fn calm(&mut self) {
        if self.present {
            let _ = std::fs::remove_file(&self.file);
            self.present = false;
        }
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        self.calm();
    }
}

/// This process's marker file in `dir`.
fn marker_path(dir: &Path) -> PathBuf {
    dir.join(std::process::id().to_string())
}

/// Removes this process's marker from `dir`, if any: for the worker's last moments, when a
/// reader thread parked mid-flood will never drop its [`Marker`].
pub fn remove_own_marker(dir: &Path) {
    let _ = std::fs::remove_file(marker_path(dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_of_brokers_that_are_gone_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let gone = tmp.path().join(dir_name(dead));
        let running = tmp.path().join(dir_name(std::process::id()));
        let unrelated = tmp.path().join("brokertui-state");
        for dir in [&gone, &running, &unrelated] {
            std::fs::create_dir(dir).unwrap();
        }
        std::fs::write(gone.join("123"), "").unwrap();
        remove_abandoned(tmp.path());
        assert!(!gone.exists(), "a dead broker's directory stays");
        assert!(running.exists() && unrelated.exists());
    }

    #[test]
    fn floods_are_counted_while_marked_and_dead_ones_are_not() {
        let dir = FloodsDir::create().unwrap();
        let peers = Peers {
            dir: dir.path().to_path_buf(),
            crowd: 2,
        };
        let mut me = Marker::new(peers.clone());
        assert_eq!(peers.floods(), 0);
        me.flooding();
        me.flooding();
        assert_eq!(peers.floods(), 1);
        assert!(!peers.crowded(), "one flood on two CPUs");
        // Another live process flooding (our parent stands in for a second worker).
        let other = dir
            .path()
            .join(std::os::unix::process::parent_id().to_string());
        std::fs::write(&other, "").unwrap();
        assert!(me.peers().crowded(), "two floods on two CPUs");
        // A killed worker's marker: not counted, and cleaned up.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(dir.path().join(dead.to_string()), "").unwrap();
        assert_eq!(peers.floods(), 2);
        assert!(!dir.path().join(dead.to_string()).exists());
        me.calm();
        assert_eq!(peers.floods(), 1);
        me.flooding();
        drop(me);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "marker removed on drop"
        );
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "the broker's directory goes with it");
    }
}
