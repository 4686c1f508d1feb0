//! Running `git`: the one way this crate asks a repository anything, so every failure reads
//! the same (what was run, where, and git's own words).

use std::path::Path;
use std::process::{Command, Stdio};

use super::WorkspaceError;

/// Runs `git -C dir args…` and returns its stdout, or the error with git's stderr.
pub fn run(dir: &Path, args: &[&str]) -> Result<String, WorkspaceError> {
    run_env(dir, args, &[])
}

/// [`run`] with extra environment (e.g. `GIT_INDEX_FILE`).
pub fn run_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Result<String, WorkspaceError> {
    let out = command(dir, args, env)
        .output()
        .map_err(|e| WorkspaceError::Git {
            what: describe(args),
            dir: dir.to_path_buf(),
            message: format!("cannot run git: {e}"),
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(WorkspaceError::Git {
        what: describe(args),
        dir: dir.to_path_buf(),
        message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Whether `git -C dir args…` succeeds (for questions git answers with its exit code).
pub fn succeeds(dir: &Path, args: &[&str]) -> bool {
    command(dir, args, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn command(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args).stdin(Stdio::null());
    // Answers must not depend on the user's pager, colours or language.
    cmd.env("GIT_PAGER", "cat")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn describe(args: &[&str]) -> String {
    format!("git {}", args.join(" "))
}
