//! Agent kinds and the rules that recognise what an agent is doing.
//!
//! This is data both sides read: the broker picks a worker's kind and hands its rules to the
//! worker on the command line; the worker evaluates them against its screen
//! (`crate::worker::agent`). The built-in rules are `assets/agents.toml`; a config file can
//! override any kind with an `[agents.<kind>]` table of the same shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::protocol::AgentState;

pub mod hooks;

/// The built-in kinds' rules.
const BUILTIN: &str = include_str!("../../assets/agents.toml");

/// Names of programs that are shells (their kind is `shell`).
const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "fish", "dash", "ksh", "mksh", "tcsh", "csh",
];

/// Launchers whose first non-option argument names the real program (`env claude`, `npx codex`).
const LAUNCHERS: &[&str] = &["env", "npx", "node", "bunx", "exec", "nice", "nohup"];

/// One screen rule: if `pattern` matches, the agent is in `state`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScreenRule {
    pub state: AgentState,
    pub pattern: String,
    /// Only the last `bottom` non-empty rows are searched (0 = the whole screen).
    #[serde(default)]
    pub bottom: usize,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Everything brokertui knows about one kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KindRules {
    /// Screen rules, first match wins.
    #[serde(default)]
    pub screen: Vec<ScreenRule>,
    /// Which hook mechanism brokertui installs for this kind (`claude`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<String>,
    /// Arguments that resume the agent's last session (`claude --continue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Vec<String>>,
    /// How long after typed text shows on its screen the agent can take the Enter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enter_after_echo_ms: Option<u64>,
}

/// All kinds' rules: the built-ins with the user's overrides on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    kinds: BTreeMap<String, KindRules>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            kinds: toml::from_str(BUILTIN).expect("assets/agents.toml is valid"),
        }
    }
}

impl Catalog {
    /// The built-ins, with each kind in `overrides` replacing (per field given) the built-in.
    pub fn with_overrides(overrides: &BTreeMap<String, KindOverride>) -> Result<Self, String> {
        let mut catalog = Catalog::default();
        for (kind, o) in overrides {
            let rules = catalog.kinds.entry(kind.clone()).or_default();
            if let Some(screen) = &o.screen {
                rules.screen = screen.clone();
            }
            if o.hooks.is_some() {
                rules.hooks = o.hooks.clone().filter(|h| !h.is_empty());
            }
            if o.resume.is_some() {
                rules.resume = o.resume.clone();
            }
            if o.enter_after_echo_ms.is_some() {
                rules.enter_after_echo_ms = o.enter_after_echo_ms;
            }
            for rule in &rules.screen {
                regex::Regex::new(&rule.pattern)
                    .map_err(|e| format!("agents.{kind}: bad pattern {:?}: {e}", rule.pattern))?;
            }
        }
        Ok(catalog)
    }

    pub fn rules(&self, kind: &str) -> KindRules {
        self.kinds.get(kind).cloned().unwrap_or_default()
    }

    pub fn knows(&self, kind: &str) -> bool {
        self.kinds.contains_key(kind)
    }
}

/// A config file's `[agents.<kind>]` table: any field given replaces the built-in one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KindOverride {
    pub screen: Option<Vec<ScreenRule>>,
    pub hooks: Option<String>,
    pub resume: Option<Vec<String>>,
    pub enter_after_echo_ms: Option<u64>,
}

/// The kind of a command: its program's basename, seen through launchers like `env` and `npx`.
pub fn kind_of(cmd: &[String]) -> String {
    let base = |s: &str| {
        std::path::Path::new(s)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut program = cmd.first().map(|s| base(s)).unwrap_or_default();
    if LAUNCHERS.contains(&program.as_str())
        && let Some(next) = cmd[1..]
            .iter()
            .find(|a| !a.starts_with('-') && !a.contains('='))
    {
        program = base(next);
    }
    let program = program.strip_suffix(".js").unwrap_or(&program).to_string();
    match program.as_str() {
        "claude" | "codex" | "gemini" | "aider" | "opencode" => program,
        // `sh -c '…'` runs a script, not an interactive shell with a prompt to wait for.
        p if SHELLS.contains(&p.trim_start_matches('-')) && !cmd.iter().any(|a| a == "-c") => {
            "shell".into()
        }
        _ => "generic".into(),
    }
}

/// Whether `kind` is an AI agent (messages wait for it to be idle by default), as opposed
/// to a shell or a generic program.
pub fn is_agent(kind: &str) -> bool {
    !matches!(kind, "shell" | "generic")
}

/// Names a worker may not have: they mean someone else in a message's `from`/`to`.
pub const RESERVED_NAMES: &[&str] = &["human", "broker", "*"];

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kinds_come_from_the_program_name() {
        assert_eq!(kind_of(&cmd(&["/usr/bin/claude", "-p"])), "claude");
        assert_eq!(kind_of(&cmd(&["npx", "-y", "codex"])), "codex");
        assert_eq!(kind_of(&cmd(&["env", "FOO=1", "gemini"])), "gemini");
        assert_eq!(kind_of(&cmd(&["bash", "-l"])), "shell");
        assert_eq!(kind_of(&cmd(&["-zsh"])), "shell");
        assert_eq!(kind_of(&cmd(&["sh", "-c", "exec cat"])), "generic");
        assert_eq!(kind_of(&cmd(&["python3"])), "generic");
        assert_eq!(kind_of(&[]), "generic");
    }

    #[test]
    fn builtin_rules_compile_and_overrides_replace_fields() {
        let catalog = Catalog::default();
        for kind in [
            "claude", "codex", "gemini", "aider", "opencode", "shell", "generic",
        ] {
            assert!(catalog.knows(kind), "{kind}");
            for rule in catalog.rules(kind).screen {
                regex::Regex::new(&rule.pattern).unwrap();
            }
        }
        let mut o = BTreeMap::new();
        o.insert(
            "claude".to_string(),
            KindOverride {
                screen: Some(vec![]),
                ..Default::default()
            },
        );
        let c = Catalog::with_overrides(&o).unwrap();
        assert!(c.rules("claude").screen.is_empty());
        assert_eq!(c.rules("claude").hooks.as_deref(), Some("claude"));
        o.get_mut("claude").unwrap().screen = Some(vec![ScreenRule {
            state: AgentState::Idle,
            pattern: "(".into(),
            bottom: 0,
            reason: None,
        }]);
        assert!(
            Catalog::with_overrides(&o)
                .unwrap_err()
                .contains("bad pattern")
        );
    }
}
