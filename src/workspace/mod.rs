//! Workspaces: a git worktree per worker, and the diff of what its agent changed there.
//!
//! Nothing here knows about brokers or panes: [`worktree`] creates, reuses and removes a
//! worker's worktree, [`diff`] reads what changed against its base and shapes a review, and
//! [`git`] is how both ask git. See `docs/workspaces.md`.

pub mod diff;
pub mod git;
pub mod worktree;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `worktree = true` or `worktree = "branch"` on a worker (config, `-w … --worktree`, API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WorktreeChoice {
    /// `true`: on the branch `<branch_prefix>/<name>`; `false`: no worktree.
    Flag(bool),
    /// On this branch.
    Branch(String),
}

impl WorktreeChoice {
    /// Whether a worktree is wanted at all.
    pub fn wanted(&self) -> bool {
        !matches!(self, WorktreeChoice::Flag(false))
    }
}

/// What to do when a worker's branch already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExistingBranch {
    /// Refuse to start the worker (the branch may be someone else's work).
    #[default]
    Refuse,
    /// Check the existing branch out in the new worktree.
    Reuse,
}

/// What to do when the base is the checked-out HEAD and the main working tree has
/// uncommitted changes (the new worktree will not have them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirtyBase {
    /// Start anyway and say so in an alert.
    #[default]
    Warn,
    /// Refuse to start the worker.
    Refuse,
}

/// The `[worktree]` table: how worktrees are made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorktreeConfig {
    /// Where worktrees go (`<dir>/<worker name>`); default `<repo>.worktrees` beside the
    /// repository. A relative path is relative to the repository's root.
    pub dir: Option<PathBuf>,
    /// A worker's branch is `<branch_prefix>/<name>`.
    pub branch_prefix: String,
    /// What a new branch starts from (any commit-ish; default the current HEAD).
    pub base: String,
    /// Untracked files to copy into a new worktree (globs relative to the repository root,
    /// e.g. `.env*`), so it does not start without them.
    pub copy: Vec<String>,
    /// Run in the worktree (`sh -c`) before the agent starts; its output shows in the pane.
    pub setup: Option<String>,
    pub existing_branch: ExistingBranch,
    pub dirty_base: DirtyBase,
}

impl Default for WorktreeConfig {
    fn default() -> Self {
        WorktreeConfig {
            dir: None,
            branch_prefix: "brokertui".into(),
            base: "HEAD".into(),
            copy: Vec::new(),
            setup: None,
            existing_branch: ExistingBranch::Refuse,
            dirty_base: DirtyBase::Warn,
        }
    }
}

/// A worker's worktree, as listed and journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worktree {
    /// The worktree's root.
    pub path: PathBuf,
    pub branch: String,
    /// The commit it started from: its diff is taken against this.
    pub base: String,
    /// The repository's main working tree.
    pub repo: PathBuf,
    /// Where in the worktree the worker runs (the part of its cwd below the repository root).
    #[serde(default, skip_serializing_if = "is_empty_path")]
    pub subdir: PathBuf,
}

fn is_empty_path(p: &std::path::Path) -> bool {
    p.as_os_str().is_empty()
}

impl Worktree {
    /// The worker's working directory inside it.
    pub fn cwd(&self) -> PathBuf {
        if is_empty_path(&self.subdir) {
            self.path.clone()
        } else {
            self.path.join(&self.subdir)
        }
    }
}

/// What to do with a worktree when its worker is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRelease {
    /// Keep the worktree and its branch.
    #[default]
    Keep,
    /// Remove both; refused while it holds work that would be lost, unless forced.
    Remove,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WorkspaceError {
    #[error(
        "{} is not inside a git repository: a worktree needs one (start the worker in a repository, or without worktree)",
        .0.display()
    )]
    NotARepository(PathBuf),
    #[error("{0}")]
    Refused(String),
    #[error(
        "{} has {what}; commit or stash it, keep the worktree, or force the removal",
        path.display()
    )]
    WouldLoseWork { path: PathBuf, what: String },
    #[error("{what} in {}: {message}", dir.display())]
    Git {
        what: String,
        dir: PathBuf,
        message: String,
    },
    #[error("{0}")]
    Io(String),
}
