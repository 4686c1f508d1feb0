//! `brokertui.toml` and `-w NAME=CMD`.
//!
//! The config file is optional: `brokertui --config FILE`, else `./brokertui.toml` if it exists,
//! else built-in defaults with one worker running `$SHELL` (see [`Config::discover`] and
//! [`default_worker`]). Every key is optional except a worker's `name` and `cmd`; unknown keys
//! are errors. A full example with the defaults spelled out:
//!
//! ```toml
//! request_timeout_ms = 5000      # how long a request to a worker may take; 1..=60000
//! prefix_key = "ctrl-b"          # the TUI's prefix in drive/relay modes:
//!                                # "ctrl-<letter>", "ctrl-space", "alt-<char>", "ctrl-alt-<letter>"
//! scrollback = 10000             # lines kept per pane; 0..=1000000
//! inject_template = "Relay message from {from} [{id}]: {body}"   # must contain {body}
//! settle_ms = 30                 # delay between an injected message and its Enter; 0..=10000
//! priority = -10                 # optional: the nice the broker and the TUI ask for, -20..=0,
//!                                # to run ahead of the programs in their panes under load
//!                                # (needs CAP_SYS_NICE or RLIMIT_NICE; else ignored, and logged)
//!
//! [[worker]]
//! name = "alice"                 # 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit
//! cmd = "sh demo/pinger.sh"      # a string, split like a shell would (shell-words) ...
//! cwd = "."                      # optional; a relative path is relative to this file's directory
//! env = { FOO = "bar" }          # optional, added to the worker's environment
//! mode = "relay"                 # optional: relay (inject messages) or human (hold them)
//! agent = "claude"               # optional: the agent kind (default: from the command's name)
//! worktree = true                # optional: run in its own git worktree (or a branch name)
//! idle_timeout_s = 3600          # optional: release it after this long idle (0: never)
//!
//! [[worker]]
//! name = "bob"
//! cmd = ["sh", "-c", "echo hi; exec sh"]   # ... or an array, taken as is
//!
//! [attention]                    # when an agent needs you (blocked, or done while unfocused)
//! bell = true                    # ring the outer terminal's bell
//! notify = true                  # desktop notification through the terminal (OSC 9 / OSC 777)
//! command = ["notify-send"]      # optional: also run this with the message as last argument
//! clipboard = true               # pass a program's OSC 52 copies on to the outer terminal
//!
//! [terminal]                     # optional: the outer terminal's colours, which panes report to
//! foreground = "#e5e5e5"         # programs that ask (OSC 10 / 11); the TUI asks its terminal
//! background = "#1e1e2e"         # when unset, and `--serve` leaves the question unanswered
//!
//! idle_timeout_s = 0             # release any worker idle this long with nobody attached (0: off)
//! idle_warning_s = 60            # the alert comes this long before
//!
//! [worktree]                     # how worktrees are made (see docs/workspaces.md)
//! dir = "../myrepo.worktrees"    # default: <repo>.worktrees beside the repository
//! branch_prefix = "brokertui"    # a worker's branch is <branch_prefix>/<name>
//! base = "HEAD"                  # what a new branch starts from
//! copy = [".env*"]               # untracked files copied into a new worktree
//! setup = "npm ci"               # run in a new worktree before the agent, in its pane
//! existing_branch = "refuse"     # or "reuse" a branch that already exists
//! dirty_base = "warn"            # or "refuse" when HEAD has uncommitted changes
//!
//! [agents.claude]                # override a kind's rules (see docs/agents.md)
//! screen = [{ state = "idle", pattern = "^> $", bottom = 2 }]
//! ```
//!
//! Errors name the file, the line and column, and the field, e.g.
//! `brokertui.toml:7:8: worker[1].mode: unknown mode "fast" (expected relay or human)`.
//! Worker indices count from 0 in file order.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::broker::{SpawnSpec, validate_name};
use crate::protocol::SessionMode;
use crate::protocol::worker_args::{DEFAULT_SETTLE, DEFAULT_TEMPLATE};

pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(5000);
pub const DEFAULT_SCROLLBACK: usize = 10_000;
const MAX_REQUEST_TIMEOUT_MS: i64 = 60_000;
const MAX_SCROLLBACK: i64 = 1_000_000;
const MAX_SETTLE_MS: i64 = 10_000;
/// Thirty days: longer than anyone leaves a worker on purpose.
const MAX_IDLE_S: i64 = 30 * 24 * 3600;
/// The file [`Config::discover`] looks for in the current directory.
pub const DEFAULT_FILE: &str = "brokertui.toml";

/// Everything `brokertui.toml` configures.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub workers: Vec<WorkerConfig>,
    pub request_timeout: Duration,
    pub prefix_key: PrefixKey,
    pub scrollback: usize,
    pub inject_template: String,
    pub settle: Duration,
    /// Agent kinds' rules: the built-ins with `[agents.<kind>]` on top.
    pub agents: crate::agent::Catalog,
    pub attention: Attention,
    pub worktree: crate::workspace::WorktreeConfig,
    /// Release workers idle this long with nobody attached.
    pub idle_timeout: Option<Duration>,
    pub idle_warning: Duration,
    /// The outer terminal's colours (`[terminal]`, or asked of it by the TUI).
    pub terminal_colors: Option<crate::protocol::worker_args::TerminalColors>,
    /// The nice the front process asks for (`priority`), to outrank its panes under load.
    pub priority: Option<i32>,
}

/// `[terminal]`: both colours, as `#rrggbb`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerminal {
    foreground: Spanned<String>,
    background: Spanned<String>,
}

/// What brokertui does when an agent needs the human.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Attention {
    pub bell: bool,
    pub notify: bool,
    pub command: Option<Vec<String>>,
    /// Pass a program's OSC 52 copies on to the outer terminal's clipboard (tmux's
    /// `set-clipboard on`).
    pub clipboard: bool,
}

impl Default for Attention {
    fn default() -> Self {
        Attention {
            bell: true,
            notify: true,
            command: None,
            clipboard: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: Vec::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            prefix_key: PrefixKey::CTRL_B,
            scrollback: DEFAULT_SCROLLBACK,
            inject_template: DEFAULT_TEMPLATE.to_string(),
            settle: DEFAULT_SETTLE,
            agents: crate::agent::Catalog::default(),
            attention: Attention::default(),
            worktree: Default::default(),
            idle_timeout: None,
            idle_warning: crate::broker::DEFAULT_IDLE_WARNING,
            terminal_colors: None,
            priority: None,
        }
    }
}

/// One worker to start, from a `[[worker]]` table or `-w NAME=CMD`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WorkerConfig {
    pub name: String,
    pub cmd: Vec<String>,
    /// Already resolved against the config file's directory (absolute when from a file).
    pub cwd: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub mode: Option<SessionMode>,
    pub agent: Option<String>,
    pub worktree: Option<crate::workspace::WorktreeChoice>,
    /// Its own idle timeout (zero: never), over the config's.
    pub idle_timeout: Option<Duration>,
}

impl WorkerConfig {
    /// What to ask the broker for; the size is left to the UI.
    pub fn to_spawn_spec(&self) -> SpawnSpec {
        SpawnSpec {
            name: self.name.clone(),
            cmd: self.cmd.clone(),
            cwd: self.cwd.clone(),
            env: self.env.clone(),
            rows: None,
            cols: None,
            mode: self.mode,
            agent: self.agent.clone(),
            worktree: self.worktree.clone(),
            idle_timeout_ms: self.idle_timeout.map(|d| d.as_millis() as u64),
        }
    }
}

/// `-w NAME=CMD` from the command line; CMD is split with shell-words.
pub fn parse_worker_arg(s: &str) -> Result<WorkerConfig, String> {
    let Some((name, cmd)) = s.split_once('=') else {
        return Err(format!("-w {s:?}: expected NAME=CMD"));
    };
    validate_name(name).map_err(|e| format!("-w {s:?}: {}", error_text(&e)))?;
    let cmd = split_command(cmd).map_err(|e| format!("-w {s:?}: {e}"))?;
    Ok(WorkerConfig {
        name: name.to_string(),
        cmd,
        ..Default::default()
    })
}

/// The default worker when nothing is configured: `$SHELL` (fallback `/bin/sh`), named "shell".
pub fn default_worker() -> WorkerConfig {
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "/bin/sh".to_string());
    WorkerConfig {
        name: "shell".to_string(),
        cmd: vec![shell],
        ..Default::default()
    }
}

/// `validate_name`'s message without the `BrokerError` variant's prefix.
fn error_text(e: &crate::broker::BrokerError) -> String {
    match e {
        crate::broker::BrokerError::InvalidRequest(m) => m.clone(),
        other => other.to_string(),
    }
}

fn split_command(cmd: &str) -> Result<Vec<String>, String> {
    let words = shell_words::split(cmd).map_err(|e| format!("cannot split command: {e}"))?;
    if words.first().is_none_or(|w| w.is_empty()) {
        return Err("command is empty".to_string());
    }
    Ok(words)
}

// ---------------------------------------------------------------------------------------------
// Prefix key

/// The TUI's prefix key (tmux-style), e.g. `ctrl-b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixKey {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl Default for PrefixKey {
    fn default() -> Self {
        PrefixKey::CTRL_B
    }
}

impl PrefixKey {
    pub const CTRL_B: PrefixKey = PrefixKey {
        code: KeyCode::Char('b'),
        modifiers: KeyModifiers::CONTROL,
    };

    /// `ctrl-<letter>`, `ctrl-space`, `alt-<printable ascii>`, `ctrl-alt-<letter>`; case-insensitive
    /// except for alt's character; `+` works as well as `-`. `ctrl-i`, `ctrl-m` and `ctrl-[`
    /// are refused: a terminal sends them as Tab, Enter and Esc.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("invalid prefix key {s:?}: {why}"));
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = s.trim();
        loop {
            let lower = rest.to_ascii_lowercase();
            let (m, len) = if lower.starts_with("ctrl-") || lower.starts_with("ctrl+") {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") || lower.starts_with("alt+") {
                (KeyModifiers::ALT, 4)
            } else {
                break;
            };
            if modifiers.contains(m) {
                return bad("modifier given twice");
            }
            modifiers |= m;
            rest = &rest[len..];
        }
        if modifiers.is_empty() {
            return bad("expected ctrl-KEY or alt-KEY, e.g. \"ctrl-b\"");
        }
        let ch = if rest.eq_ignore_ascii_case("space") {
            ' '
        } else {
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_graphic() => c,
                _ => return bad("the key must be one letter, digit or symbol, or \"space\""),
            }
        };
        let ch = if modifiers.contains(KeyModifiers::CONTROL) {
            if !(ch.is_ascii_alphabetic() || ch == ' ') {
                return bad("ctrl goes with a letter or space");
            }
            let ch = ch.to_ascii_lowercase();
            match ch {
                'i' => return bad("ctrl-i is the same as Tab in a terminal"),
                'm' => return bad("ctrl-m is the same as Enter in a terminal"),
                _ => ch,
            }
        } else {
            ch
        };
        Ok(PrefixKey {
            code: KeyCode::Char(ch),
            modifiers,
        })
    }

    /// Whether a key press is this prefix. Shift is ignored (ctrl-B is ctrl-b; alt's character
    /// already carries its case).
    pub fn matches(&self, key: &KeyEvent) -> bool {
        if key.kind == KeyEventKind::Release {
            return false;
        }
        let relevant = KeyModifiers::CONTROL | KeyModifiers::ALT;
        if key.modifiers & relevant != self.modifiers & relevant {
            return false;
        }
        match (self.code, key.code) {
            (KeyCode::Char(want), KeyCode::Char(got)) => {
                if self.modifiers.contains(KeyModifiers::CONTROL) {
                    want.eq_ignore_ascii_case(&got)
                } else {
                    want == got
                }
            }
            (want, got) => want == got,
        }
    }

    /// For the status bar and help: `Ctrl-b`, `Ctrl-Space`, `Alt-x`, `Ctrl-Alt-b`.
    pub fn label(&self) -> String {
        let mut out = String::new();
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            out.push_str("Ctrl-");
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            out.push_str("Alt-");
        }
        match self.code {
            KeyCode::Char(' ') => out.push_str("Space"),
            KeyCode::Char(c) => out.push(c),
            other => out.push_str(&other.to_string()),
        }
        out
    }

    /// The bytes the key sends in a terminal, to pass the prefix itself through (prefix twice):
    /// ctrl-b → `[0x02]`, ctrl-space → `[0x00]`, alt-x → `[ESC, b'x']`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let KeyCode::Char(c) = self.code else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if self.modifiers.contains(KeyModifiers::ALT) {
            out.push(0x1b);
        }
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            out.push(if c == ' ' {
                0
            } else {
                (c.to_ascii_lowercase() as u8) & 0x1f
            });
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Bad TOML or a bad value. `line`/`column` are 1-based; `field` is a path like
    /// `worker[1].mode` (absent for syntax errors outside any key).
    #[error("{}", located(file, *line, *column, field.as_deref(), message))]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        field: Option<String>,
        message: String,
    },
}

fn located(file: &Path, line: usize, column: usize, field: Option<&str>, msg: &str) -> String {
    match field {
        Some(f) => format!("{}:{line}:{column}: {f}: {msg}", file.display()),
        None => format!("{}:{line}:{column}: {msg}", file.display()),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

/// The path (`worker[1].env.FOO`) of the innermost key or value whose span contains `offset`.
/// Every child is searched, not just those of containers whose span contains `offset`: the
/// span of a `[[worker]]` element covers only its header.
fn field_at(doc: &Spanned<DeTable<'_>>, offset: usize) -> Option<String> {
    fn contains(span: Range<usize>, offset: usize) -> bool {
        span.start <= offset && offset < span.end.max(span.start + 1)
    }
    /// `Some(path below this table)` when something in it contains `offset`.
    fn in_table(table: &DeTable<'_>, offset: usize) -> Option<String> {
        table.iter().find_map(|(k, v)| {
            let below =
                in_value(v, offset).or_else(|| contains(k.span(), offset).then(String::new))?;
            Some(format!(".{}{below}", k.get_ref()))
        })
    }
    fn in_value(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<String> {
        let below = match value.get_ref() {
            DeValue::Table(t) => in_table(t, offset),
            DeValue::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, v)| in_value(v, offset).map(|p| format!("[{i}]{p}"))),
            _ => None,
        };
        below.or_else(|| contains(value.span(), offset).then(String::new))
    }
    let path = in_table(doc.get_ref(), offset)?;
    Some(path.trim_start_matches('.').to_string())
}

// ---------------------------------------------------------------------------------------------
// Parsing

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    request_timeout_ms: Option<Spanned<i64>>,
    prefix_key: Option<Spanned<String>>,
    scrollback: Option<Spanned<i64>>,
    inject_template: Option<Spanned<String>>,
    settle_ms: Option<Spanned<i64>>,
    priority: Option<Spanned<i64>>,
    #[serde(default)]
    worker: Vec<RawWorker>,
    #[serde(default)]
    agents: BTreeMap<String, crate::agent::KindOverride>,
    attention: Option<Attention>,
    worktree: Option<crate::workspace::WorktreeConfig>,
    idle_timeout_s: Option<Spanned<i64>>,
    idle_warning_s: Option<Spanned<i64>>,
    terminal: Option<Spanned<RawTerminal>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorker {
    name: Spanned<String>,
    cmd: Spanned<toml::Value>,
    cwd: Option<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<Spanned<String>, Spanned<String>>,
    mode: Option<Spanned<String>>,
    agent: Option<Spanned<String>>,
    worktree: Option<Spanned<toml::Value>>,
    idle_timeout_s: Option<Spanned<i64>>,
}

/// Builds located errors for one file.
struct Source<'a> {
    text: &'a str,
    origin: &'a Path,
}

impl Source<'_> {
    fn error(&self, span: Range<usize>, field: Option<String>, message: String) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        ConfigError::Invalid {
            file: self.origin.to_path_buf(),
            line,
            column,
            field,
            message,
        }
    }

    fn at<T>(&self, value: &Spanned<T>, field: impl Into<String>, message: String) -> ConfigError {
        self.error(value.span(), Some(field.into()), message)
    }

    fn int_in(
        &self,
        value: &Option<Spanned<i64>>,
        field: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ConfigError> {
        match value {
            None => Ok(None),
            Some(v) if range.contains(v.get_ref()) => Ok(Some(*v.get_ref())),
            Some(v) => Err(self.at(
                v,
                field,
                format!(
                    "{} is out of range (expected {}..={})",
                    v.get_ref(),
                    range.start(),
                    range.end()
                ),
            )),
        }
    }
}

impl Config {
    /// Parses the text of a config file. `origin` is the file's path: it appears in error
    /// messages, and relative `cwd`s are resolved against its directory.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let src = Source { text, origin };
        // The spanned document maps an error's position back to the field it is in.
        let (doc, syntax_errors) = DeTable::parse_recoverable(text);
        let error = |e: &toml::de::Error| {
            let span = e.span().unwrap_or(0..0);
            let field = field_at(&doc, span.start);
            let mut message = e
                .message()
                .trim()
                .replace("expected i64", "expected an integer");
            if field.as_deref() == Some("worker") && message.ends_with("expected a sequence") {
                message.push_str(" (write each worker as a [[worker]] table)");
            }
            src.error(span, field, message)
        };
        if let Some(e) = syntax_errors.first() {
            return Err(error(e));
        }
        let raw: RawConfig = toml::from_str(text).map_err(|e| error(&e))?;

        let mut config = Config::default();
        if let Some(ms) = src.int_in(
            &raw.request_timeout_ms,
            "request_timeout_ms",
            1..=MAX_REQUEST_TIMEOUT_MS,
        )? {
            config.request_timeout = Duration::from_millis(ms as u64);
        }
        if let Some(key) = &raw.prefix_key {
            config.prefix_key =
                PrefixKey::parse(key.get_ref()).map_err(|e| src.at(key, "prefix_key", e))?;
        }
        if let Some(n) = src.int_in(&raw.scrollback, "scrollback", 0..=MAX_SCROLLBACK)? {
            config.scrollback = n as usize;
        }
        if let Some(t) = &raw.inject_template {
            if !t.get_ref().contains("{body}") {
                return Err(src.at(
                    t,
                    "inject_template",
                    "must contain {body} (and may use {from} and {id})".to_string(),
                ));
            }
            config.inject_template = t.get_ref().clone();
        }
        if let Some(ms) = src.int_in(&raw.settle_ms, "settle_ms", 0..=MAX_SETTLE_MS)? {
            config.settle = Duration::from_millis(ms as u64);
        }
        if let Some(nice) = src.int_in(&raw.priority, "priority", -20..=0)? {
            config.priority = Some(nice as i32);
        }

        config.agents = crate::agent::Catalog::with_overrides(&raw.agents).map_err(|message| {
            ConfigError::Invalid {
                file: origin.to_path_buf(),
                line: 1,
                column: 1,
                field: Some("agents".into()),
                message,
            }
        })?;
        if let Some(a) = raw.attention {
            config.attention = a;
        }
        if let Some(w) = raw.worktree {
            config.worktree = w;
        }
        if let Some(t) = &raw.terminal {
            use crate::protocol::worker_args::TerminalColors;
            let t = t.get_ref();
            let colour = |v: &Spanned<String>, field: &str| {
                TerminalColors::parse_hex(v.get_ref()).map_err(|m| src.at(v, field, m))
            };
            config.terminal_colors = Some(TerminalColors {
                foreground: colour(&t.foreground, "terminal.foreground")?,
                background: colour(&t.background, "terminal.background")?,
            });
        }
        if let Some(s) = src.int_in(&raw.idle_timeout_s, "idle_timeout_s", 0..=MAX_IDLE_S)? {
            config.idle_timeout = (s > 0).then(|| Duration::from_secs(s as u64));
        }
        if let Some(s) = src.int_in(&raw.idle_warning_s, "idle_warning_s", 0..=MAX_IDLE_S)? {
            config.idle_warning = Duration::from_secs(s as u64);
        }
        let base = origin.parent().unwrap_or(Path::new(""));
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, w) in raw.worker.iter().enumerate() {
            let worker = parse_worker(&src, i, w, base)?;
            if let Some(first) = seen.insert(worker.name.clone(), i) {
                return Err(src.at(
                    &w.name,
                    format!("worker[{i}].name"),
                    format!(
                        "duplicate worker name {:?} (also worker[{first}])",
                        worker.name
                    ),
                ));
            }
            config.workers.push(worker);
        }
        Ok(config)
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// `--config FILE` if given (must exist), else `./brokertui.toml` if it exists, else None.
    pub fn discover(explicit: Option<&Path>) -> Result<Option<(PathBuf, Config)>, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from(DEFAULT_FILE);
                if !p.exists() {
                    return Ok(None);
                }
                p
            }
        };
        let config = Config::load(&path)?;
        Ok(Some((path, config)))
    }
}

fn parse_worker(
    src: &Source<'_>,
    i: usize,
    w: &RawWorker,
    base: &Path,
) -> Result<WorkerConfig, ConfigError> {
    let field = |f: &str| format!("worker[{i}].{f}");
    let name = w.name.get_ref();
    validate_name(name).map_err(|e| src.at(&w.name, field("name"), error_text(&e)))?;

    let cmd = match w.cmd.get_ref() {
        toml::Value::String(s) => split_command(s).map_err(|e| src.at(&w.cmd, field("cmd"), e))?,
        toml::Value::Array(items) => {
            let mut words = Vec::with_capacity(items.len());
            for (j, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) => words.push(s.to_string()),
                    None => {
                        return Err(src.at(
                            &w.cmd,
                            format!("worker[{i}].cmd[{j}]"),
                            format!("expected a string, found {}", item.type_str()),
                        ));
                    }
                }
            }
            if words.first().is_none_or(|w| w.is_empty()) {
                return Err(src.at(&w.cmd, field("cmd"), "command is empty".to_string()));
            }
            words
        }
        other => {
            return Err(src.at(
                &w.cmd,
                field("cmd"),
                format!(
                    "expected a string or an array of strings, found {}",
                    other.type_str()
                ),
            ));
        }
    };

    let cwd = match &w.cwd {
        None => None,
        Some(c) if c.get_ref().is_empty() => {
            return Err(src.at(c, field("cwd"), "empty path".to_string()));
        }
        Some(c) => Some(resolve(base, Path::new(c.get_ref()))),
    };

    let mut env = BTreeMap::new();
    for (k, v) in &w.env {
        let key = k.get_ref();
        if key.is_empty() || key.contains(['=', '\0']) {
            return Err(src.at(k, field("env"), format!("invalid variable name {key:?}")));
        }
        if v.get_ref().contains('\0') {
            return Err(src.at(
                v,
                format!("worker[{i}].env.{key}"),
                "value contains a NUL byte".to_string(),
            ));
        }
        env.insert(key.clone(), v.get_ref().clone());
    }

    let mode = match &w.mode {
        None => None,
        Some(m) => Some(match m.get_ref().as_str() {
            "relay" => SessionMode::Relay,
            "human" => SessionMode::Human,
            other => {
                return Err(src.at(
                    m,
                    field("mode"),
                    format!("unknown mode {other:?} (expected relay or human)"),
                ));
            }
        }),
    };

    let agent = match &w.agent {
        None => None,
        Some(a) if crate::agent::Catalog::default().knows(a.get_ref()) => Some(a.get_ref().clone()),
        Some(a) => {
            return Err(src.at(
                a,
                field("agent"),
                format!(
                    "unknown agent kind {:?} (expected claude, codex, gemini, aider, opencode, shell or generic)",
                    a.get_ref()
                ),
            ));
        }
    };

    let worktree = match &w.worktree {
        None => None,
        Some(v) => Some(match v.get_ref() {
            toml::Value::Boolean(b) => crate::workspace::WorktreeChoice::Flag(*b),
            toml::Value::String(b) if !b.trim().is_empty() => {
                crate::workspace::WorktreeChoice::Branch(b.clone())
            }
            other => {
                return Err(src.at(
                    v,
                    field("worktree"),
                    format!(
                        "expected true, false or a branch name, found {}",
                        other.type_str()
                    ),
                ));
            }
        }),
    };
    let idle_timeout = src
        .int_in(&w.idle_timeout_s, &field("idle_timeout_s"), 0..=MAX_IDLE_S)?
        .map(|s| Duration::from_secs(s as u64));

    Ok(WorkerConfig {
        name: name.clone(),
        cmd,
        cwd,
        env,
        mode,
        agent,
        worktree,
        idle_timeout,
    })
}

/// `base/path`, absolute (relative to the current directory) and without `.` components.
fn resolve(base: &Path, path: &Path) -> PathBuf {
    let joined = base.join(path);
    let joined = std::path::absolute(&joined).unwrap_or(joined);
    joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("conf/brokertui.toml"))
    }

    /// Parses, expects an error, and checks its message contains each of `parts`.
    #[track_caller]
    fn error(text: &str, parts: &[&str]) -> String {
        let msg = parse(text).expect_err("expected an error").to_string();
        for part in parts {
            assert!(msg.contains(part), "{msg:?} does not contain {part:?}");
        }
        msg
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.request_timeout, Duration::from_millis(5000));
        assert_eq!(c.prefix_key, PrefixKey::CTRL_B);
        assert_eq!(c.scrollback, 10_000);
        assert_eq!(c.inject_template, DEFAULT_TEMPLATE);
        assert_eq!(c.settle, DEFAULT_SETTLE);
        assert!(c.workers.is_empty());
    }

    #[test]
    fn terminal_colours_are_read_and_bad_ones_named() {
        let c = parse("[terminal]\nforeground = \"#102030\"\nbackground = \"#fafbfc\"\n").unwrap();
        let colors = c.terminal_colors.unwrap();
        assert_eq!(colors.foreground, [0x1010, 0x2020, 0x3030]);
        assert_eq!(colors.background, [0xfafa, 0xfbfb, 0xfcfc]);
        error(
            "[terminal]\nforeground = \"#102030\"\nbackground = \"white\"\n",
            &[
                "brokertui.toml:3:",
                "terminal.background",
                "not a #rrggbb colour",
            ],
        );
        error("[terminal]\nforeground = \"#102030\"\n", &["background"]);
    }

    #[test]
    fn full_file() {
        let c = parse(
            r#"
request_timeout_ms = 2500
prefix_key = "ctrl-a"
scrollback = 500
inject_template = "<{from}> {body}"
settle_ms = 0

[[worker]]
name = "alice"
cmd = "sh 'my script.sh' --flag"
cwd = "work"
env = { FOO = "bar", EMPTY = "" }
mode = "human"

[[worker]]
name = "bob"
cmd = ["/bin/echo", "a b"]
cwd = "/tmp/./x"
"#,
        )
        .unwrap();
        assert_eq!(c.request_timeout, Duration::from_millis(2500));
        assert_eq!(c.prefix_key, PrefixKey::parse("ctrl-a").unwrap());
        assert_eq!(c.scrollback, 500);
        assert_eq!(c.inject_template, "<{from}> {body}");
        assert_eq!(c.settle, Duration::ZERO);
        let [alice, bob] = &c.workers[..] else {
            panic!("two workers expected: {:?}", c.workers)
        };
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.cmd, ["sh", "my script.sh", "--flag"]);
        let cwd = alice.cwd.as_ref().unwrap();
        assert!(cwd.is_absolute(), "{cwd:?}");
        assert!(cwd.ends_with("conf/work"), "{cwd:?}");
        assert_eq!(alice.env.get("FOO").map(String::as_str), Some("bar"));
        assert_eq!(alice.env.get("EMPTY").map(String::as_str), Some(""));
        assert_eq!(alice.mode, Some(SessionMode::Human));
        assert_eq!(bob.cmd, ["/bin/echo", "a b"]);
        assert_eq!(bob.cwd.as_deref(), Some(Path::new("/tmp/x")));
        assert_eq!(bob.mode, None);

        let spec = alice.to_spawn_spec();
        assert_eq!(spec.name, "alice");
        assert_eq!(spec.cmd, alice.cmd);
        assert_eq!(spec.cwd, alice.cwd);
        assert_eq!(spec.env, alice.env);
        assert_eq!(spec.mode, Some(SessionMode::Human));
        assert_eq!((spec.rows, spec.cols), (None, None));
    }

    #[test]
    fn cwd_next_to_a_bare_file_name() {
        let c = Config::parse(
            "[[worker]]\nname = \"a\"\ncmd = \"true\"\ncwd = \".\"\n",
            Path::new("brokertui.toml"),
        )
        .unwrap();
        let here = std::env::current_dir().unwrap();
        assert_eq!(c.workers[0].cwd.as_deref(), Some(here.as_path()));
    }

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é = 1\nx", 3), (1, 3));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn syntax_error_is_located() {
        error(
            "scrollback = 10\nprefix_key = \n",
            &["conf/brokertui.toml:2:", "prefix_key"],
        );
        error("[[worker]\n", &["conf/brokertui.toml:1:"]);
    }

    #[test]
    fn unknown_keys_are_named() {
        error(
            "scrollback = 1\nscrolback = 2\n",
            &["brokertui.toml:2:1:", "scrolback"],
        );
        error(
            "[[worker]]\nname = \"a\"\ncmd = \"x\"\ncolour = \"red\"\n",
            &["brokertui.toml:4:1:", "worker[0]", "colour"],
        );
    }

    #[test]
    fn type_errors_name_the_field() {
        error(
            "request_timeout_ms = \"fast\"\n",
            &["brokertui.toml:1:22:", "request_timeout_ms"],
        );
        error(
            "[[worker]]\nname = \"a\"\ncmd = \"x\"\nenv = { FOO = 1 }\n",
            &["brokertui.toml:4:", "worker[0].env.FOO", "string"],
        );
        error(
            "[[worker]]\nname = 7\ncmd = \"x\"\n",
            &["brokertui.toml:2:8:", "worker[0].name"],
        );
        error(
            "[worker]\nname = \"a\"\ncmd = \"x\"\n",
            &["brokertui.toml:1:1: worker:", "[[worker]]"],
        );
    }

    #[test]
    fn missing_fields() {
        error(
            "[[worker]]\nname = \"a\"\ncmd = \"x\"\n\n[[worker]]\nname = \"b\"\n",
            &["brokertui.toml:5:1: worker[1]:", "missing field `cmd`"],
        );
    }

    #[test]
    fn ranges() {
        error(
            "request_timeout_ms = 0\n",
            &["brokertui.toml:1:22: request_timeout_ms:", "1..=60000"],
        );
        error(
            "x = 1\nrequest_timeout_ms = 60001\n",
            &["brokertui.toml:", "request_timeout_ms"],
        );
        parse("request_timeout_ms = 60000\n").unwrap();
        error(
            "scrollback = 1000001\n",
            &["brokertui.toml:1:14: scrollback:", "out of range"],
        );
        error("scrollback = -1\n", &["brokertui.toml:1:14: scrollback:"]);
        error("settle_ms = 99999\n", &["brokertui.toml:1:13: settle_ms:"]);
        error(
            "priority = 5\n",
            &["brokertui.toml:1:12: priority:", "out of range"],
        );
        error("priority = -21\n", &["brokertui.toml:1:12: priority:"]);
        assert_eq!(parse("priority = -10\n").unwrap().priority, Some(-10));
        error(
            "settle_ms = 1.5\n",
            &["brokertui.toml:1:13: settle_ms:", "expected an integer"],
        );
    }

    #[test]
    fn template_needs_body() {
        error(
            "inject_template = \"from {from}\"\n",
            &["brokertui.toml:1:19: inject_template:", "{body}"],
        );
    }

    #[test]
    fn bad_prefix_key() {
        error(
            "prefix_key = \"ctrl-\"\n",
            &["brokertui.toml:1:14: prefix_key:", "\"ctrl-\""],
        );
    }

    #[test]
    fn worker_errors() {
        let w =
            |body: &str| format!("[[worker]]\nname = \"ok\"\ncmd = \"x\"\n\n[[worker]]\n{body}\n");
        error(
            &w("name = \"b\"\ncmd = \"x\"\nmode = \"fast\""),
            &[
                "conf/brokertui.toml:8:8: worker[1].mode: unknown mode \"fast\" (expected relay or human)",
            ],
        );
        error(
            &w("name = \"-bad\"\ncmd = \"x\""),
            &[
                "brokertui.toml:6:8: worker[1].name:",
                "invalid worker name \"-bad\"",
            ],
        );
        error(
            &w("name = \"ok\"\ncmd = \"x\""),
            &[
                "brokertui.toml:6:8: worker[1].name:",
                "duplicate worker name \"ok\"",
                "worker[0]",
            ],
        );
        error(
            &w("name = \"b\"\ncmd = \"  \""),
            &["brokertui.toml:7:7: worker[1].cmd:", "empty"],
        );
        error(
            &w("name = \"b\"\ncmd = []"),
            &["brokertui.toml:7:7: worker[1].cmd:", "empty"],
        );
        error(
            &w("name = \"b\"\ncmd = \"sh 'unterminated\""),
            &["brokertui.toml:7:7: worker[1].cmd:", "cannot split"],
        );
        error(
            &w("name = \"b\"\ncmd = [\"sh\", 3]"),
            &["brokertui.toml:7:7: worker[1].cmd[1]:", "integer"],
        );
        error(
            &w("name = \"b\"\ncmd = 3"),
            &["brokertui.toml:7:7: worker[1].cmd:", "string or an array"],
        );
        error(
            &w("name = \"b\"\ncmd = \"x\"\ncwd = \"\""),
            &["brokertui.toml:8:7: worker[1].cwd:", "empty"],
        );
        error(
            &w("name = \"b\"\ncmd = \"x\"\nenv = { \"A=B\" = \"c\" }"),
            &["brokertui.toml:8:9: worker[1].env:", "\"A=B\""],
        );
    }

    #[test]
    fn load_and_discover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(
            &path,
            "[[worker]]\nname = \"a\"\ncmd = \"true\"\ncwd = \"sub\"\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(
            c.workers[0].cwd.as_deref(),
            Some(dir.path().join("sub").as_path())
        );

        let (found, c2) = Config::discover(Some(&path)).unwrap().unwrap();
        assert_eq!(found, path);
        assert_eq!(c2, c);

        let missing = dir.path().join("nope.toml");
        let msg = Config::discover(Some(&missing)).unwrap_err().to_string();
        assert!(msg.contains("nope.toml"), "{msg}");
        let msg = Config::load(&missing).unwrap_err().to_string();
        assert!(msg.contains("nope.toml"), "{msg}");

        std::fs::write(&path, "\n\nscrollback = true\n").unwrap();
        let msg = Config::load(&path).unwrap_err().to_string();
        assert!(msg.contains("x.toml:3:14: scrollback:"), "{msg}");
    }

    #[test]
    fn demo_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.toml");
        let c = Config::load(&path).unwrap();
        let names: Vec<&str> = c.workers.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["pinger", "ponger", "narrator"]);
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        for w in &c.workers {
            let cwd = w.cwd.as_deref().unwrap();
            assert_eq!(cwd, assets, "{}", w.name);
            // Every script the demo runs exists relative to its cwd.
            let script = w.cmd.iter().find(|a| a.ends_with(".sh")).unwrap();
            assert!(cwd.join(script).is_file(), "{} runs {script}", w.name);
        }
    }

    #[test]
    fn worker_arg() {
        let w = parse_worker_arg("bob=sh -c 'echo hi; exec sh'").unwrap();
        assert_eq!(w.name, "bob");
        assert_eq!(w.cmd, ["sh", "-c", "echo hi; exec sh"]);
        assert_eq!((w.cwd, w.mode), (None, None));
        let w = parse_worker_arg("a=b=c").unwrap();
        assert_eq!((w.name.as_str(), w.cmd), ("a", vec!["b=c".to_string()]));

        for (arg, part) in [
            ("bob", "NAME=CMD"),
            ("=sh", "invalid worker name"),
            ("b c=sh", "invalid worker name"),
            ("bob=", "empty"),
            ("bob=sh 'x", "cannot split"),
        ] {
            let e = parse_worker_arg(arg).unwrap_err();
            assert!(e.contains(part), "{arg}: {e}");
        }
    }

    #[test]
    fn default_worker_is_a_shell() {
        let w = default_worker();
        assert_eq!(w.name, "shell");
        assert_eq!(w.cmd.len(), 1);
        assert!(!w.cmd[0].is_empty());
        validate_name(&w.name).unwrap();
    }

    #[test]
    fn prefix_key_parse() {
        let ctrl = |c| PrefixKey {
            code: KeyCode::Char(c),
            modifiers: KeyModifiers::CONTROL,
        };
        assert_eq!(PrefixKey::parse("ctrl-b").unwrap(), ctrl('b'));
        assert_eq!(PrefixKey::parse("Ctrl+A").unwrap(), ctrl('a'));
        assert_eq!(PrefixKey::parse("ctrl-space").unwrap(), ctrl(' '));
        assert_eq!(
            PrefixKey::parse("alt-x").unwrap(),
            PrefixKey {
                code: KeyCode::Char('x'),
                modifiers: KeyModifiers::ALT
            }
        );
        assert_eq!(
            PrefixKey::parse("ctrl-alt-q").unwrap().modifiers,
            KeyModifiers::CONTROL | KeyModifiers::ALT
        );
        for bad in [
            "",
            "b",
            "ctrl-",
            "ctrl-bb",
            "ctrl-1",
            "ctrl-i",
            "ctrl-m",
            "shift-b",
            "ctrl-ctrl-b",
            "alt-é",
        ] {
            assert!(PrefixKey::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn prefix_key_label_and_bytes() {
        let k = |s| PrefixKey::parse(s).unwrap();
        assert_eq!(k("ctrl-b").label(), "Ctrl-b");
        assert_eq!(k("ctrl-space").label(), "Ctrl-Space");
        assert_eq!(k("alt-X").label(), "Alt-X");
        assert_eq!(k("ctrl-alt-b").label(), "Ctrl-Alt-b");
        assert_eq!(k("ctrl-b").to_bytes(), [0x02]);
        assert_eq!(k("ctrl-a").to_bytes(), [0x01]);
        assert_eq!(k("ctrl-z").to_bytes(), [0x1a]);
        assert_eq!(k("ctrl-space").to_bytes(), [0x00]);
        assert_eq!(k("alt-x").to_bytes(), [0x1b, b'x']);
        assert_eq!(k("ctrl-alt-b").to_bytes(), [0x1b, 0x02]);
    }

    #[test]
    fn prefix_key_matches() {
        let ev = |code, m| KeyEvent::new(code, m);
        let ctrl_b = k("ctrl-b");
        assert!(ctrl_b.matches(&ev(KeyCode::Char('b'), KeyModifiers::CONTROL)));
        assert!(ctrl_b.matches(&ev(
            KeyCode::Char('B'),
            KeyModifiers::CONTROL | KeyModifiers::SHIFT
        )));
        assert!(!ctrl_b.matches(&ev(KeyCode::Char('b'), KeyModifiers::NONE)));
        assert!(!ctrl_b.matches(&ev(KeyCode::Char('a'), KeyModifiers::CONTROL)));
        assert!(!ctrl_b.matches(&ev(
            KeyCode::Char('b'),
            KeyModifiers::CONTROL | KeyModifiers::ALT
        )));
        let mut release = ev(KeyCode::Char('b'), KeyModifiers::CONTROL);
        release.kind = KeyEventKind::Release;
        assert!(!ctrl_b.matches(&release));

        // crossterm reports NUL as Ctrl+' '.
        assert!(k("ctrl-space").matches(&ev(KeyCode::Char(' '), KeyModifiers::CONTROL)));
        let alt_x = k("alt-x");
        assert!(alt_x.matches(&ev(KeyCode::Char('x'), KeyModifiers::ALT)));
        assert!(!alt_x.matches(&ev(
            KeyCode::Char('X'),
            KeyModifiers::ALT | KeyModifiers::SHIFT
        )));
        assert!(!alt_x.matches(&ev(KeyCode::Char('x'), KeyModifiers::NONE)));

        fn k(s: &str) -> PrefixKey {
            PrefixKey::parse(s).unwrap()
        }
    }
}
