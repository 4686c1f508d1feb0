//! The hooks brokertui adds to one worker's agent, through the agent's own settings mechanism.
//!
//! Claude Code: a settings file passed with `--settings FILE` (merged with the user's own
//! settings, which are never touched). Each hook runs `brokertui hook EVENT`, which posts the
//! hook's stdin to the broker with the worker's own token and prints nothing (a
//! `UserPromptSubmit` hook's output would be added to the prompt).

use std::path::{Path, PathBuf};

use serde_json::json;

/// The events brokertui listens to.
pub const CLAUDE_EVENTS: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "Notification",
    "Stop",
];

/// The Claude Code settings that make every event above call `exe hook EVENT`.
pub fn claude_settings(exe: &Path) -> serde_json::Value {
    let quoted = shell_words::quote(&exe.to_string_lossy()).into_owned();
    let hooks: serde_json::Map<String, serde_json::Value> = CLAUDE_EVENTS
        .iter()
        .map(|event| {
            let command = format!("{quoted} hook {event}");
            (
                event.to_string(),
                json!([{ "hooks": [{ "type": "command", "command": command, "timeout": 5 }] }]),
            )
        })
        .collect();
    json!({ "hooks": hooks })
}

/// Writes the settings file for worker `name` under `dir` and returns the arguments to add
/// to its command line. `mechanism` is the kind's `hooks` field.
pub fn install(
    mechanism: &str,
    dir: &Path,
    name: &str,
    exe: &Path,
) -> std::io::Result<Vec<String>> {
    match mechanism {
        "claude" => {
            crate::fsutil::create_private_dir(dir)?;
            let path: PathBuf = dir.join(format!("{name}.claude-settings.json"));
            let body = serde_json::to_vec_pretty(&claude_settings(exe)).expect("serializes");
            crate::fsutil::write_private(&path, &body)?;
            Ok(vec!["--settings".into(), path.display().to_string()])
        }
        other => Err(std::io::Error::other(format!(
            "unknown hook mechanism {other:?} (known: claude)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_have_the_shape_claude_code_accepts() {
        let s = claude_settings(Path::new("/opt/my tools/brokertui"));
        let stop = &s["hooks"]["Stop"][0]["hooks"][0];
        assert_eq!(stop["type"], "command");
        assert_eq!(stop["command"], "'/opt/my tools/brokertui' hook Stop");
    }
}
