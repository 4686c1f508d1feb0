//! The record of injections a worker leaves behind: one message id per line, written and
//! fsynced before the message is typed. The broker reads it before handing messages to the
//! next worker of the same name: an id in it may already have reached the program, so it is
//! counted as injected, never typed again (at most once across worker restarts). The only
//! loss window left is between the fsync and the PTY write, microseconds.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where the broker asks a worker named `name` to keep its record.
pub fn path(log_dir: &Path, name: &str) -> PathBuf {
    log_dir.join(format!("{name}.injected"))
}

/// Ids recorded so far (empty if there is no record).
pub fn read(path: &Path) -> HashSet<String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Forgets the record (nothing is owed to that name any more).
pub fn clear(path: &Path) {
    if path.exists() {
        let _ = std::fs::write(path, b"");
    }
}
