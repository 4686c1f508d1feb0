//! The handle's side of workspaces: a worker's worktree is made before its spawn and removed
//! after its release, and its diff is read — all with git run off the broker task.

use serde::{Deserialize, Serialize};

use super::{BrokerError, BrokerHandle, Launch, SpawnSpec, WorkerInfo, WorkerState, validate_name};
use crate::workspace::diff::Diff;
use crate::workspace::{OnRelease, WorkspaceError, diff, worktree};

/// What a release does with the worker's worktree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseOptions {
    #[serde(default)]
    pub worktree: OnRelease,
    /// Remove it even with uncommitted changes or commits no other branch has.
    #[serde(default)]
    pub force: bool,
}

impl BrokerHandle {
    pub(super) async fn spawn_in_workspace(
        &self,
        spec: SpawnSpec,
    ) -> Result<WorkerInfo, BrokerError> {
        let Some(choice) = spec.worktree.clone().filter(|c| c.wanted()) else {
            return self.launch(Launch::plain(spec)).await;
        };
        // Before git runs: a worktree made for a name that cannot start would be litter.
        validate_name(&spec.name)?;
        let list = self.list().await?;
        if list
            .iter()
            .any(|w| w.name == spec.name && w.state != WorkerState::Exited)
        {
            return Err(BrokerError::NameTaken(spec.name.clone()));
        }
        let cwd = match &spec.cwd {
            Some(c) => c.clone(),
            None => std::env::current_dir().map_err(|e| {
                BrokerError::SpawnFailed(format!("no working directory to start from: {e}"))
            })?,
        };
        let (config, name) = (self.config.worktree.clone(), spec.name.clone());
        let prepared = blocking(move || worktree::prepare(&cwd, &name, &choice, &config))
            .await
            .map_err(|e| BrokerError::SpawnFailed(e.to_string()))?;
        let setup = self
            .config
            .worktree
            .setup
            .clone()
            .filter(|_| prepared.created);
        let launch = Launch {
            worktree: Some(prepared.worktree.clone()),
            setup,
            warnings: prepared.warnings,
            ..Launch::plain(spec)
        };
        let result = self.launch(launch).await;
        if result.is_err() && prepared.created {
            let wt = prepared.worktree;
            let _ = blocking(move || worktree::remove(&wt, true)).await;
        }
        result
    }

    /// [`release`](Self::release), and then what `opts` says of its worktree. A removal
    /// that would lose work is refused before anything is released.
    pub async fn release_with(&self, name: &str, opts: ReleaseOptions) -> Result<(), BrokerError> {
        let info = self.info(name).await?;
        let remove = match (opts.worktree, info.worktree) {
            (OnRelease::Remove, Some(wt)) => Some(wt),
            _ => None,
        };
        if let Some(wt) = &remove
            && !opts.force
        {
            let check = wt.clone();
            if let Some(what) = blocking(move || worktree::unsaved_work(&check))
                .await
                .map_err(|e| BrokerError::Workspace(e.to_string()))?
            {
                let e = WorkspaceError::WouldLoseWork {
                    path: wt.path.clone(),
                    what,
                };
                return Err(BrokerError::WouldLoseWork(e.to_string()));
            }
        }
        self.release(name).await?;
        if let Some(wt) = remove {
            blocking(move || worktree::remove(&wt, opts.force))
                .await
                .map_err(|e| {
                    BrokerError::Workspace(format!(
                        "{name} is released, but its worktree stays: {e}"
                    ))
                })?;
        }
        Ok(())
    }

    /// What worker `name` changed: its worktree against its base, or — without one — its
    /// working directory against `HEAD`.
    pub async fn diff(&self, name: &str) -> Result<Diff, BrokerError> {
        let info = self.info(name).await?;
        let (dir, base) = match info.worktree {
            Some(wt) => (wt.path, wt.base),
            None => match info.cwd {
                Some(cwd) => (cwd, "HEAD".to_string()),
                None => (
                    std::env::current_dir().map_err(|e| BrokerError::Workspace(e.to_string()))?,
                    "HEAD".to_string(),
                ),
            },
        };
        blocking(move || {
            if !crate::workspace::git::succeeds(&dir, &["rev-parse", "--git-dir"]) {
                return Err(WorkspaceError::NotARepository(dir));
            }
            diff::changes(&dir, &base)
        })
        .await
        .map_err(|e| BrokerError::Workspace(e.to_string()))
    }
}

impl Launch {
    pub(crate) fn plain(spec: SpawnSpec) -> Launch {
        Launch {
            spec,
            worktree: None,
            setup: None,
            warnings: Vec::new(),
            restored: false,
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WorkspaceError> + Send + 'static,
) -> Result<T, WorkspaceError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(WorkspaceError::Io(format!("the git task failed: {e}"))))
}
