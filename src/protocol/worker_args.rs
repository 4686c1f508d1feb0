//! The `brokertui worker` command line: one type the worker parses (clap) and the broker
//! builds ([`WorkerArgs::to_args`]), so the two sides cannot drift apart; and the defaults
//! both sides share.

use std::path::PathBuf;
use std::time::Duration;

use super::SessionMode;

/// The injection template when the config names none; `{from}`, `{id}` and `{body}` are
/// filled in.
pub const DEFAULT_TEMPLATE: &str = "Relay message from {from} [{id}]: {body}";
/// Delay between an injected message and its Enter.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(30);
/// What brokertui's panes emulate (vt100 with xterm's keys and 256 colours).
pub const DEFAULT_TERM: &str = "xterm-256color";

/// The outer terminal's default colours (16 bits a channel), which a pane reports when a
/// program asks (OSC 10 / 11 / 12); known when the TUI could ask its terminal, or set in the
/// config's `[terminal]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TerminalColors {
    pub foreground: [u16; 3],
    pub background: [u16; 3],
}

impl TerminalColors {
    /// `#rrggbb` colours, as the config writes them.
    pub fn from_hex(foreground: &str, background: &str) -> Result<Self, String> {
        Ok(TerminalColors {
            foreground: Self::parse_hex(foreground)?,
            background: Self::parse_hex(background)?,
        })
    }

    /// One `#rrggbb` colour.
    pub fn parse_hex(s: &str) -> Result<[u16; 3], String> {
        let digits = s
            .strip_prefix('#')
            .filter(|d| d.len() == 6 && d.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| format!("{s:?} is not a #rrggbb colour"))?;
        let channel = |i: usize| {
            let v = u16::from_str_radix(&digits[i..i + 2], 16).unwrap_or(0);
            v << 8 | v
        };
        Ok([channel(0), channel(2), channel(4)])
    }

    /// One colour as OSC 10 / 11 answer it: `rgb:rrrr/gggg/bbbb`.
    pub fn x11(c: [u16; 3]) -> String {
        format!("rgb:{:04x}/{:04x}/{:04x}", c[0], c[1], c[2])
    }

    fn parse_x11(s: &str) -> Option<[u16; 3]> {
        let mut parts = s.strip_prefix("rgb:")?.split('/');
        let mut c = [0u16; 3];
        for v in &mut c {
            *v = u16::from_str_radix(parts.next()?, 16).ok()?;
        }
        parts.next().is_none().then_some(c)
    }
}

/// On the worker's command line: `rgb:…,rgb:…` (foreground, background).
impl std::fmt::Display for TerminalColors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{},{}",
            Self::x11(self.foreground),
            Self::x11(self.background)
        )
    }
}

impl std::str::FromStr for TerminalColors {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not `rgb:rrrr/gggg/bbbb,rgb:rrrr/gggg/bbbb`");
        let (fg, bg) = s.split_once(',').ok_or_else(bad)?;
        Ok(TerminalColors {
            foreground: Self::parse_x11(fg).ok_or_else(bad)?,
            background: Self::parse_x11(bg).ok_or_else(bad)?,
        })
    }
}

/// Arguments of the hidden `brokertui worker` subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Worker name, for logs.
    #[arg(long)]
    pub name: String,
    #[arg(long, default_value_t = 24)]
    pub rows: u16,
    #[arg(long, default_value_t = 80)]
    pub cols: u16,
    /// Initial session mode.
    #[arg(long, default_value = "relay")]
    pub mode: SessionMode,
    /// Injection template; `{from}`, `{id}` and `{body}` are filled in.
    #[arg(long, default_value = DEFAULT_TEMPLATE)]
    pub template: String,
    /// Delay between an injected message and its Enter, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_SETTLE.as_millis() as u64)]
    pub settle_ms: u64,
    /// Working directory of the command (default: the worker's own).
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// File that gets each message id before its injection (at-most-once across restarts).
    #[arg(long)]
    pub inject_log: Option<PathBuf>,
    /// The child's TERM (a worker's `env` in the config may choose another).
    #[arg(long, default_value = DEFAULT_TERM)]
    pub term: String,
    /// The agent kind (`claude`, `shell`, `generic`…): decides how its state is read.
    #[arg(long, default_value = "generic")]
    pub agent: String,
    /// The kind's rules as JSON (`crate::agent::KindRules`); the broker passes them.
    #[arg(long, default_value = "{}")]
    pub agent_rules: String,
    /// The outer terminal's colours, for programs that ask (unanswered without).
    #[arg(long)]
    pub colors: Option<TerminalColors>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    pub cmd: Vec<String>,
}

impl WorkerArgs {
    /// The arguments after the executable: `worker --name … -- CMD…`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "worker".into(),
            "--name".into(),
            self.name.clone(),
            "--rows".into(),
            self.rows.to_string(),
            "--cols".into(),
            self.cols.to_string(),
            "--mode".into(),
            self.mode.as_str().into(),
            "--template".into(),
            self.template.clone(),
            "--settle-ms".into(),
            self.settle_ms.to_string(),
            "--term".into(),
            self.term.clone(),
            "--agent".into(),
            self.agent.clone(),
            "--agent-rules".into(),
            self.agent_rules.clone(),
        ];
        if let Some(cwd) = &self.cwd {
            args.push("--cwd".into());
            args.push(cwd.display().to_string());
        }
        if let Some(path) = &self.inject_log {
            args.push("--inject-log".into());
            args.push(path.display().to_string());
        }
        if let Some(colors) = &self.colors {
            args.push("--colors".into());
            args.push(colors.to_string());
        }
        args.push("--".into());
        args.extend(self.cmd.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: WorkerArgs,
    }

    #[test]
    fn what_the_broker_builds_the_worker_parses_back() {
        let args = WorkerArgs {
            name: "w 1".into(),
            rows: 50,
            cols: 200,
            mode: SessionMode::Human,
            template: "{from}: {body} --".into(),
            settle_ms: 7,
            cwd: Some("/tmp/a dir".into()),
            inject_log: Some("/x/inject".into()),
            term: "screen".into(),
            agent: "claude".into(),
            agent_rules: r#"{"idle":["> "]}"#.into(),
            colors: Some(TerminalColors::from_hex("#e5e5e5", "#1e1e2e").unwrap()),
            cmd: vec!["sh".into(), "-c".into(), "echo --name".into()],
        };
        let mut argv = vec!["brokertui".to_string()];
        argv.extend(args.to_args().into_iter().skip(1));
        let parsed = Cli::try_parse_from(argv).unwrap().args;
        assert_eq!(format!("{parsed:?}"), format!("{args:?}"));
    }
}
