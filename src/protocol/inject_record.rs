//! The record of injections a worker leaves behind, `<log dir>/<name>.injected`: written and
//! fsynced by the worker (the process that types), read by the broker before it hands messages
//! to the next worker of the same name. Two lines per message:
//!
//! ```text
//! typed <id>      before the first byte of it is written to the PTY
//! entered <id>    after its Enter is written
//! ```
//!
//! An id that was `entered` may have reached the program: it is never typed again. An id that
//! was only `typed` died with the program whose input line it sat in, without its Enter: it
//! is typed again into the next worker. A bare `<id>` line (an older worker's record) counts as
//! entered.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the broker asks a worker named `name` to keep its record.
pub fn path(log_dir: &Path, name: &str) -> PathBuf {
    log_dir.join(format!("{name}.injected"))
}

/// What an earlier worker of a name recorded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// May have reached the program: never typed again.
    pub entered: HashSet<String>,
    /// Typed without its Enter (not in `entered`).
    pub typed_only: HashSet<String>,
}

/// Reads the record (empty if there is none).
pub fn read(path: &Path) -> Recorded {
    let text = crate::fsutil::open_private(path)
        .and_then(|mut f| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut f, &mut s).map(|_| s)
        })
        .unwrap_or_default();
    let mut r = Recorded::default();
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("typed", id)) => {
                r.typed_only.insert(id.to_string());
            }
            Some(("entered", id)) => {
                r.entered.insert(id.to_string());
            }
            _ if !line.is_empty() => {
                r.entered.insert(line.to_string());
            }
            _ => {}
        }
    }
    r.typed_only.retain(|id| !r.entered.contains(id));
    r
}

/// Forgets the record (nothing is owed to that name any more). Truncated in place: a worker
/// of that name may already hold it open for appending.
pub fn clear(path: &Path) {
    let _ = crate::fsutil::truncate_private(path);
}

/// The worker's side: appends records, each fsynced before it returns.
pub struct Writer {
    file: std::fs::File,
}

impl Writer {
    pub fn open(path: &Path) -> std::io::Result<Writer> {
        crate::fsutil::append_private(path).map(|file| Writer { file })
    }

    pub fn typed(&mut self, id: &str) -> std::io::Result<()> {
        self.line("typed", id)
    }

    pub fn entered(&mut self, id: &str) -> std::io::Result<()> {
        self.line("entered", id)
    }

    fn line(&mut self, what: &str, id: &str) -> std::io::Result<()> {
        writeln!(self.file, "{what} {id}")?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_without_enter_is_told_apart_from_entered() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "bob");
        std::fs::write(&p, "old-format-id\n").unwrap();
        let mut w = Writer::open(&p).unwrap();
        w.typed("a").unwrap();
        w.entered("a").unwrap();
        w.typed("b").unwrap();
        let r = read(&p);
        assert_eq!(
            r.entered,
            HashSet::from(["a".into(), "old-format-id".into()])
        );
        assert_eq!(r.typed_only, HashSet::from(["b".into()]));
        clear(&p);
        assert_eq!(read(&p), Recorded::default());
        // A writer that had it open before the clear still records into it.
        w.typed("c").unwrap();
        assert_eq!(read(&p).typed_only, HashSet::from(["c".into()]));
    }
}
