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
            cmd: vec!["sh".into(), "-c".into(), "echo --name".into()],
        };
        let mut argv = vec!["brokertui".to_string()];
        argv.extend(args.to_args().into_iter().skip(1));
        let parsed = Cli::try_parse_from(argv).unwrap().args;
        assert_eq!(format!("{parsed:?}"), format!("{args:?}"));
    }
}
