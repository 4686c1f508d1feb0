//! The `n` dialog's command line, and small text helpers of the popups.

use std::path::Path;

use crate::config;
use crate::protocol::SessionMode;

/// Drops trailing empty lines (a snapshot popup shows what is there).
pub(super) fn trim_tail(mut lines: Vec<String>) -> Vec<String> {
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// `NAME=CMD`, or just `CMD` (named after the program, numbered if taken).
pub fn parse_new_worker(arg: &str, taken: &[String]) -> Result<crate::broker::SpawnSpec, String> {
    let arg = arg.trim();
    let named = arg
        .split_once('=')
        .is_some_and(|(n, _)| crate::broker::validate_name(n).is_ok());
    if named {
        return config::parse_worker_arg(arg).map(|w| w.to_spawn_spec());
    }
    let cmd = shell_words::split(arg).map_err(|e| format!("cannot parse {arg:?}: {e}"))?;
    let program = cmd.first().ok_or("empty command")?;
    let base: String = Path::new(program)
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("worker")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect();
    let base = if base.is_empty() {
        "worker".to_string()
    } else {
        base
    };
    let name = (1..)
        .map(|i| {
            if i == 1 {
                base.clone()
            } else {
                format!("{base}-{i}")
            }
        })
        .find(|n| !taken.contains(n))
        .expect("some name is free");
    Ok(crate::broker::SpawnSpec {
        name,
        cmd,
        mode: Some(SessionMode::Relay),
        ..Default::default()
    })
}
