//! The saved fleet (`--serve`): each worker's spec and worktree, journaled beside the
//! messages so a restarted broker starts the same workers again — an agent with its own
//! resume command — and the messages they were owed follow.

use serde::{Deserialize, Serialize};

use super::SpawnSpec;
use crate::workspace::Worktree;

/// One worker as saved: enough to start it again where it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetRecord {
    /// As it was asked for, with its mode and size as they are now and its agent kind
    /// resolved.
    pub spec: SpawnSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<Worktree>,
}

/// The command that continues a restored agent's last session: its resume arguments right
/// after the program (`claude --continue …`, `codex resume --last …`).
pub fn resumed(cmd: &[String], resume: Option<&[String]>) -> Vec<String> {
    let mut out = cmd.to_vec();
    if let Some(args) = resume
        && !out.is_empty()
    {
        out.splice(1..1, args.iter().cloned()).for_each(drop);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_arguments_go_right_after_the_program() {
        let cmd = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let resume = cmd("resume --last");
        assert_eq!(
            resumed(&cmd("codex --model o3"), Some(&resume)),
            cmd("codex resume --last --model o3")
        );
        assert_eq!(resumed(&cmd("sh -i"), None), cmd("sh -i"));
    }
}
