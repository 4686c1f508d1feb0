//! A worker's own git worktree: made on its branch from the configured base, with the
//! untracked files the config lists copied in; found again when it already exists (a
//! restart, a worker started again under its name); removed only when nothing would be lost.

use std::path::{Path, PathBuf};

use super::git;
use super::{DirtyBase, ExistingBranch, WorkspaceError, Worktree, WorktreeChoice, WorktreeConfig};

/// A worktree made (or found) for a worker, and what the user should hear about it.
#[derive(Debug)]
pub struct Prepared {
    pub worktree: Worktree,
    /// It was made now (so a failed start may remove it again).
    pub created: bool,
    pub warnings: Vec<String>,
}

/// Makes worker `name`'s worktree for a worker that would run in `cwd`.
pub fn prepare(
    cwd: &Path,
    name: &str,
    choice: &WorktreeChoice,
    config: &WorktreeConfig,
) -> Result<Prepared, WorkspaceError> {
    if !cwd.is_dir() {
        return Err(WorkspaceError::Refused(format!(
            "the working directory {} does not exist or is not a directory",
            cwd.display()
        )));
    }
    let toplevel = git::run(cwd, &["rev-parse", "--show-toplevel"])
        .map(|s| PathBuf::from(s.trim()))
        .map_err(|_| WorkspaceError::NotARepository(cwd.to_path_buf()))?;
    let repo = main_worktree(&toplevel)?;
    let subdir = canonical(cwd)
        .strip_prefix(canonical(&toplevel))
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let branch = match choice {
        WorktreeChoice::Branch(b) => b.clone(),
        _ => format!("{}/{name}", config.branch_prefix),
    };
    if !git::succeeds(&repo, &["check-ref-format", "--branch", &branch]) {
        return Err(WorkspaceError::Refused(format!(
            "{branch:?} is not a valid branch name"
        )));
    }
    let dir = worktrees_dir(&repo, config)?;
    let path = dir.join(name);
    let mut warnings = Vec::new();
    let prepared = |path, branch, base, created, warnings| Prepared {
        worktree: Worktree {
            path,
            branch,
            base,
            repo: repo.clone(),
            subdir: subdir.clone(),
        },
        created,
        warnings,
    };

    if path.exists() {
        // Found again: the same worker's worktree, from before a restart or a release
        // that kept it.
        return match registered(&repo)?.into_iter().find(|w| same(&w.0, &path)) {
            Some((_, Some(b))) if b == branch => {
                let base = base_of(&repo, &branch, config)?;
                Ok(prepared(path, branch, base, false, warnings))
            }
            Some((_, other)) => Err(WorkspaceError::Refused(format!(
                "{} is already a worktree, on {}, not on {branch}",
                path.display(),
                other.map_or("a detached HEAD".to_string(), |b| format!("branch {b}"))
            ))),
            None => Err(WorkspaceError::Refused(format!(
                "{} already exists and is not a worktree of {}; remove it or set [worktree] dir",
                path.display(),
                repo.display()
            ))),
        };
    }

    let base = commit(&repo, &config.base)?;
    if commit(&repo, "HEAD").ok().as_deref() == Some(base.as_str()) {
        let dirty = git::run(&repo, &["status", "--porcelain", "--untracked-files=no"])?;
        if !dirty.trim().is_empty() {
            let what = format!(
                "{} has uncommitted changes; the worktree starts from {} without them",
                repo.display(),
                short(&base)
            );
            match config.dirty_base {
                DirtyBase::Warn => warnings.push(what),
                DirtyBase::Refuse => {
                    return Err(WorkspaceError::Refused(format!(
                        "{what} (dirty_base = \"refuse\"): commit them first"
                    )));
                }
            }
        }
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| WorkspaceError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let path_str = path.to_string_lossy().into_owned();
    let exists = git::succeeds(
        &repo,
        &[
            "show-ref",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    );
    let base = if exists {
        match config.existing_branch {
            ExistingBranch::Refuse => {
                return Err(WorkspaceError::Refused(format!(
                    "branch {branch} already exists; pick another worker name or branch, or set existing_branch = \"reuse\" under [worktree]"
                )));
            }
            ExistingBranch::Reuse => {
                git::run(&repo, &["worktree", "add", "--quiet", &path_str, &branch])?;
                // Its changes are what it holds beyond the base.
                merge_base(&repo, &base, &branch).unwrap_or(base)
            }
        }
    } else {
        git::run(
            &repo,
            &[
                "worktree", "add", "--quiet", "-b", &branch, &path_str, &base,
            ],
        )?;
        base
    };
    let copied = copy_untracked(&repo, &path, &config.copy);
    if let Err(e) = copied {
        warnings.push(e);
    }
    Ok(prepared(path, branch, base, true, warnings))
}

/// What removing the worktree would lose: uncommitted changes (untracked files included)
/// and commits on its branch that nothing else has. `None`: nothing.
pub fn unsaved_work(wt: &Worktree) -> Result<Option<String>, WorkspaceError> {
    if !wt.path.exists() {
        return Ok(None);
    }
    let status = git::run(&wt.path, &["status", "--porcelain"])?;
    let changed = status.lines().count();
    let mut what = Vec::new();
    if changed > 0 {
        what.push(format!(
            "{changed} uncommitted change{}",
            if changed == 1 { "" } else { "s" }
        ));
    }
    // Commits on the branch that no other branch has would go with the branch.
    let unmerged = git::run(
        &wt.repo,
        &[
            "rev-list",
            "--count",
            &wt.branch,
            "--not",
            &wt.base,
            // (`--branches` patterns are without `refs/heads/`.)
            &format!("--exclude={}", wt.branch),
            "--branches",
        ],
    )?;
    let unmerged: usize = unmerged.trim().parse().unwrap_or(0);
    if unmerged > 0 {
        what.push(format!(
            "{unmerged} commit{} on {} that no other branch has",
            if unmerged == 1 { "" } else { "s" },
            wt.branch
        ));
    }
    Ok((!what.is_empty()).then(|| what.join(" and ")))
}

/// Removes the worktree and its branch. Without `force`, refuses while [`unsaved_work`]
/// finds anything.
pub fn remove(wt: &Worktree, force: bool) -> Result<(), WorkspaceError> {
    if !force && let Some(what) = unsaved_work(wt)? {
        return Err(WorkspaceError::WouldLoseWork {
            path: wt.path.clone(),
            what,
        });
    }
    if wt.path.exists() {
        let path = wt.path.to_string_lossy().into_owned();
        git::run(&wt.repo, &["worktree", "remove", "--force", &path])?;
    } else {
        git::run(&wt.repo, &["worktree", "prune"])?;
    }
    if git::succeeds(
        &wt.repo,
        &[
            "show-ref",
            "--verify",
            "--quiet",
            &format!("refs/heads/{}", wt.branch),
        ],
    ) {
        git::run(&wt.repo, &["branch", "-D", "--quiet", &wt.branch])?;
    }
    // The worktrees dir goes with its last worktree (remove_dir leaves a non-empty one).
    if let Some(dir) = wt.path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

/// The directory worktrees go in, never inside the repository's working tree.
fn worktrees_dir(repo: &Path, config: &WorktreeConfig) -> Result<PathBuf, WorkspaceError> {
    let dir = match &config.dir {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => repo.join(d),
        None => {
            let name = repo
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "repo".into());
            repo.parent()
                .unwrap_or(Path::new("/"))
                .join(format!("{name}.worktrees"))
        }
    };
    let dir = normalize(&dir);
    if dir.starts_with(canonical(repo)) || dir.starts_with(repo) {
        return Err(WorkspaceError::Refused(format!(
            "the worktree dir {} is inside the working tree of {}; set [worktree] dir to a place outside it",
            dir.display(),
            repo.display()
        )));
    }
    Ok(dir)
}

/// The repository's main working tree, also when `toplevel` is a linked worktree (so the
/// worktrees of workers started inside one do not nest).
fn main_worktree(toplevel: &Path) -> Result<PathBuf, WorkspaceError> {
    Ok(registered(toplevel)?
        .into_iter()
        .next()
        .map(|w| w.0)
        .unwrap_or_else(|| toplevel.to_path_buf()))
}

/// `git worktree list`: each worktree's path and branch (main first).
fn registered(repo: &Path) -> Result<Vec<(PathBuf, Option<String>)>, WorkspaceError> {
    let text = git::run(repo, &["worktree", "list", "--porcelain"])?;
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut path = None;
        let mut branch = None;
        for line in block.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                path = Some(PathBuf::from(p));
            } else if let Some(b) = line.strip_prefix("branch refs/heads/") {
                branch = Some(b.to_string());
            }
        }
        if let Some(p) = path {
            out.push((p, branch));
        }
    }
    Ok(out)
}

/// The base of a branch found again: where it left the configured base.
fn base_of(repo: &Path, branch: &str, config: &WorktreeConfig) -> Result<String, WorkspaceError> {
    let base = commit(repo, &config.base)?;
    Ok(merge_base(repo, &base, branch).unwrap_or(base))
}

fn merge_base(repo: &Path, a: &str, b: &str) -> Option<String> {
    git::run(repo, &["merge-base", a, b])
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn commit(repo: &Path, rev: &str) -> Result<String, WorkspaceError> {
    git::run(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .map(|s| s.trim().to_string())
    .map_err(|_| {
        WorkspaceError::Refused(format!(
            "the base {rev:?} is not a commit in {}",
            repo.display()
        ))
    })
}

/// Copies what the `copy` globs match in `repo` into `into`, where it does not exist yet
/// (tracked files are there already). An error names what could not be copied.
fn copy_untracked(repo: &Path, into: &Path, patterns: &[String]) -> Result<(), String> {
    let mut failed = Vec::new();
    for pattern in patterns {
        let full = repo.join(pattern).to_string_lossy().into_owned();
        let Ok(paths) = glob::glob(&full) else {
            failed.push(format!("{pattern:?} is not a valid glob"));
            continue;
        };
        for found in paths.flatten() {
            let Ok(rel) = found.strip_prefix(repo) else {
                continue;
            };
            if rel
                .components()
                .next()
                .is_some_and(|c| c.as_os_str() == ".git")
            {
                continue;
            }
            let dest = into.join(rel);
            if dest.exists() {
                continue;
            }
            if let Err(e) = copy_tree(&found, &dest) {
                failed.push(format!("{}: {e}", rel.display()));
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not copied into the worktree: {}",
            failed.join("; ")
        ))
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to).map(drop)
    }
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

fn same(a: &Path, b: &Path) -> bool {
    canonical(a) == canonical(b)
}

/// `..` and `.` resolved without touching the file system (the dir may not exist yet),
/// then the longest existing prefix canonicalized (so symlinks compare equal).
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    let mut existing = out.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match existing.file_name() {
            Some(n) => rest.push(n.to_os_string()),
            None => break,
        }
        existing.pop();
    }
    let mut out = canonical(&existing);
    out.extend(rest.into_iter().rev());
    out
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}
