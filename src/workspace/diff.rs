//! What a worker changed: its tree against its base — committed, uncommitted and untracked
//! alike — as git's unified diff and as files, hunks and numbered lines; and a review of it
//! (comments on lines) as one message.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{WorkspaceError, git};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    /// The commit compared against.
    pub base: String,
    pub files: Vec<FileDiff>,
    /// git's unified diff, as `git diff` prints it.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    pub path: String,
    pub status: FileStatus,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
    pub hunks: Vec<Hunk>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Added,
    Deleted,
    Modified,
    Renamed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hunk {
    /// `@@ -a,b +c,d @@ …`
    pub header: String,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub kind: LineKind,
    /// Its number in the base (none for an added line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<u32>,
    /// Its number in the worker's tree (none for a removed line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<u32>,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Context,
    Added,
    Removed,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// The tree at `dir` (a work tree's root or anywhere in it) against `base`, untracked files
/// included (what `.gitignore` ignores is left out). Reads a private copy of the index, so
/// the worker's own staging is untouched.
pub fn changes(dir: &Path, base: &str) -> Result<Diff, WorkspaceError> {
    let index = TempIndex::new();
    let env = [("GIT_INDEX_FILE", index.0.as_path())];
    if git::succeeds(dir, &["rev-parse", "--verify", "--quiet", "HEAD"]) {
        git::run_env(dir, &["read-tree", "HEAD"], &env)?;
    } else {
        git::run_env(dir, &["read-tree", "--empty"], &env)?;
    }
    git::run_env(dir, &["add", "--all", "--", ":/"], &env)?;
    let text = git::run_env(
        dir,
        &[
            "-c",
            "core.quotePath=false",
            "diff",
            "--cached",
            "--no-color",
            "--no-ext-diff",
            "--find-renames",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            base,
        ],
        &env,
    )?;
    Ok(Diff {
        base: base.to_string(),
        files: parse(&text),
        text,
    })
}

/// A private index file, removed when dropped.
struct TempIndex(PathBuf);

impl TempIndex {
    fn new() -> Self {
        TempIndex(std::env::temp_dir().join(format!("brokertui-index-{}", uuid::Uuid::new_v4())))
    }
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// git's unified diff as files, hunks and numbered lines.
pub fn parse(text: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    let (mut old, mut new) = (0u32, 0u32);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            // `a/X b/X`: the name is the second half when both are the same.
            let path = rest.split_once(" b/").map_or(rest, |(_, b)| b).to_string();
            files.push(FileDiff {
                path,
                status: FileStatus::Modified,
                binary: false,
                hunks: Vec::new(),
            });
            continue;
        }
        let Some(file) = files.last_mut() else {
            continue;
        };
        if file.hunks.is_empty() {
            if line.starts_with("new file mode") {
                file.status = FileStatus::Added;
            } else if line.starts_with("deleted file mode") {
                file.status = FileStatus::Deleted;
            } else if let Some(to) = line.strip_prefix("rename to ") {
                file.status = FileStatus::Renamed;
                file.path = to.to_string();
            } else if line.starts_with("Binary files ") {
                file.binary = true;
            } else if let Some(p) = line.strip_prefix("+++ b/") {
                file.path = p.to_string();
            }
        }
        if let Some(header) = line.strip_prefix("@@ ") {
            (old, new) = hunk_starts(header);
            file.hunks.push(Hunk {
                header: line.to_string(),
                lines: Vec::new(),
            });
            continue;
        }
        let Some(hunk) = file.hunks.last_mut() else {
            continue;
        };
        let (kind, text) = match line.as_bytes().first() {
            Some(b'+') => (LineKind::Added, &line[1..]),
            Some(b'-') => (LineKind::Removed, &line[1..]),
            Some(b' ') => (LineKind::Context, &line[1..]),
            // `\ No newline at end of file`, and anything git may add later.
            _ => continue,
        };
        let (o, n) = match kind {
            LineKind::Added => (None, Some(new)),
            LineKind::Removed => (Some(old), None),
            LineKind::Context => (Some(old), Some(new)),
        };
        old += u32::from(o.is_some());
        new += u32::from(n.is_some());
        hunk.lines.push(Line {
            kind,
            old: o,
            new: n,
            text: text.to_string(),
        });
    }
    files
}

/// `-a,b +c,d @@` → (a, c).
fn hunk_starts(header: &str) -> (u32, u32) {
    let mut parts = header.split_whitespace();
    let start = |p: Option<&str>| {
        p.and_then(|p| p[1..].split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let old = start(parts.next());
    let new = start(parts.next());
    (old, new)
}

/// A comment on one line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub path: String,
    /// The line's number in the worker's tree (in the base, for a removed line).
    pub line: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    pub text: String,
}

impl Comment {
    /// Where it points, as `file:line` (a removed line says so).
    pub fn place(&self) -> String {
        if self.removed {
            format!("{}:{} (removed line)", self.path, self.line)
        } else {
            format!("{}:{}", self.path, self.line)
        }
    }
}

/// All comments of one review as the one message the agent gets.
pub fn review_message(comments: &[Comment]) -> String {
    let mut out = String::from("Review of your changes:");
    for c in comments {
        out.push_str(&format!("\n- {} — {}", c.place(), c.text.trim()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "diff --git a/src/a.rs b/src/a.rs
index 1111111..2222222 100644
--- a/src/a.rs
+++ b/src/a.rs
@@ -1,3 +1,4 @@ fn main() {
 one
-two
+TWO
+three
 four
diff --git a/new.txt b/new.txt
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/new.txt
@@ -0,0 +1 @@
+hello
\\ No newline at end of file
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
";

    #[test]
    fn parses_files_hunks_and_line_numbers() {
        let files = parse(SAMPLE);
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].path, "src/a.rs");
        assert_eq!(files[0].status, FileStatus::Modified);
        let lines = &files[0].hunks[0].lines;
        let numbered: Vec<_> = lines.iter().map(|l| (l.kind, l.old, l.new)).collect();
        use LineKind::*;
        assert_eq!(
            numbered,
            vec![
                (Context, Some(1), Some(1)),
                (Removed, Some(2), None),
                (Added, None, Some(2)),
                (Added, None, Some(3)),
                (Context, Some(3), Some(4)),
            ]
        );
        assert_eq!(files[1].path, "new.txt");
        assert_eq!(files[1].status, FileStatus::Added);
        assert_eq!(files[1].hunks[0].lines.len(), 1);
        assert_eq!(files[2].path, "old.txt");
        assert_eq!(files[2].status, FileStatus::Deleted);
        assert_eq!(files[2].hunks[0].lines[0].old, Some(1));
    }

    #[test]
    fn a_review_is_one_message_with_every_comment() {
        let c = |path: &str, line, removed, text: &str| Comment {
            path: path.into(),
            line,
            removed,
            text: text.into(),
        };
        let body = review_message(&[
            c("src/a.rs", 2, false, "name it for what it holds "),
            c("old.txt", 1, true, "why remove this?"),
        ]);
        assert_eq!(
            body,
            "Review of your changes:\n- src/a.rs:2 — name it for what it holds\n- old.txt:1 (removed line) — why remove this?"
        );
    }
}
