//! What the worker's agent is doing: the state machine behind `agent_state` frames.
//!
//! Evidence, best first (see `docs/agents.md`):
//! 1. the agent's own hooks (forwarded by the broker as `hook` frames);
//! 2. the screen, through the kind's rules (`crate::agent`);
//! 3. the PTY: for a shell, whether the shell itself is the terminal's foreground process
//!    group (if not, a job is running in it);
//! 4. silence, for generic programs: recent output means working.
//!
//! A dialog on the screen always wins (a hook cannot show that the dialog was answered), and
//! a hook's verdict gives way to a screen that has disagreed with it for a while (Claude Code
//! fires no `Stop` when a turn is interrupted, so "working" from a hook can go stale).

use std::time::{Duration, Instant};

use regex::Regex;

use crate::agent::KindRules;
use crate::protocol::{AgentReport, AgentSource, AgentState, HookPayload, now_ms};

/// A generic program that printed within this long is working.
const QUIET: Duration = Duration::from_millis(1500);
/// A generic program that has said nothing this long after start takes input.
const SILENT_START: Duration = Duration::from_millis(500);
/// An agent is idle only once its screen has been still this long: Claude Code fires `Stop`
/// and draws its empty input box while it is still finishing the turn (running its stop
/// hooks), and text typed then is folded into the turn that is ending.
const IDLE_SETTLE: Duration = Duration::from_millis(300);
/// How long a hook's verdict stands against a screen that says otherwise.
const HOOK_TRUST: Duration = Duration::from_secs(3);

struct Rule {
    state: AgentState,
    pattern: Regex,
    bottom: usize,
    reason: String,
}

/// A verdict: state, where it came from, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub state: AgentState,
    pub source: AgentSource,
    pub reason: String,
}

impl Verdict {
    fn new(state: AgentState, source: AgentSource, reason: impl Into<String>) -> Self {
        Verdict {
            state,
            source,
            reason: reason.into(),
        }
    }
}

/// What the PTY says about the foreground job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Foreground {
    /// The program we started is in the foreground.
    Child,
    /// Another process group is (a shell running a job); its command name if known.
    Job(String),
    Unknown,
}

pub struct AgentTracker {
    kind: String,
    rules: Vec<Rule>,
    started: Instant,
    last_output: Option<Instant>,
    hook: Option<(Verdict, Instant)>,
    /// The screen's verdict and since when it has held.
    screen: Option<(Verdict, Instant)>,
    current: AgentReport,
    /// When `current.state` was entered (monotonic; `since_ms` is the wall clock).
    entered: Instant,
    exited: bool,
    /// A hook arrived since the last evaluation.
    dirty: bool,
    /// The time the last evaluation judged: a deadline after it is still to be looked at.
    evaluated: Option<Instant>,
}

impl AgentTracker {
    pub fn new(kind: &str, rules: &KindRules) -> Self {
        let rules = rules
            .screen
            .iter()
            .filter_map(|r| match Regex::new(&r.pattern) {
                Ok(pattern) => Some(Rule {
                    state: r.state,
                    pattern,
                    bottom: r.bottom,
                    reason: r
                        .reason
                        .clone()
                        .unwrap_or_else(|| format!("screen matches {:?}", r.pattern)),
                }),
                Err(e) => {
                    tracing::warn!("agent rule {:?} ignored: {e}", r.pattern);
                    None
                }
            })
            .collect();
        let now = Instant::now();
        AgentTracker {
            kind: kind.to_string(),
            rules,
            started: now,
            last_output: None,
            hook: None,
            screen: None,
            current: AgentReport {
                kind: kind.to_string(),
                state: AgentState::Starting,
                previous: None,
                since_ms: now_ms(),
                source: AgentSource::Pty,
                reason: "spawned; it has not shown that it takes input yet".into(),
            },
            entered: now,
            exited: false,
            dirty: false,
            evaluated: None,
        }
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn is_agent(&self) -> bool {
        crate::agent::is_agent(&self.kind)
    }

    pub fn report(&self) -> &AgentReport {
        &self.current
    }

    pub fn state(&self) -> AgentState {
        self.current.state
    }

    /// When the current state was entered.
    pub fn entered(&self) -> Instant {
        self.entered
    }

    pub fn output_seen(&mut self, now: Instant) {
        self.last_output = Some(now);
    }

    pub fn last_output(&self) -> Option<Instant> {
        self.last_output
    }

    pub fn child_exited(&mut self) {
        self.exited = true;
    }

    /// A hook event. Returns the prompt text of a `UserPromptSubmit` (for receipts).
    pub fn hook(&mut self, hook: &HookPayload, now: Instant) -> Option<String> {
        let text = |k: &str| hook.data.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let verdict = match hook.event.as_str() {
            "UserPromptSubmit" => Some(Verdict::new(
                AgentState::Working,
                AgentSource::Hook,
                "its UserPromptSubmit hook reported a prompt",
            )),
            "PreToolUse" | "PostToolUse" => Some(Verdict::new(
                AgentState::Working,
                AgentSource::Hook,
                format!(
                    "its {} hook reported tool {}",
                    hook.event,
                    text("tool_name")
                ),
            )),
            "PermissionRequest" => Some(Verdict::new(
                AgentState::Blocked,
                AgentSource::Hook,
                format!(
                    "its PermissionRequest hook reported a permission dialog for {}",
                    text("tool_name")
                ),
            )),
            "Notification" if text("notification_type") == "idle_prompt" => Some(Verdict::new(
                AgentState::Idle,
                AgentSource::Hook,
                format!("its Notification hook said {:?}", text("message")),
            )),
            "Notification" => Some(Verdict::new(
                AgentState::Blocked,
                AgentSource::Hook,
                format!("its Notification hook said {:?}", text("message")),
            )),
            "Stop" | "SessionStart" => Some(Verdict::new(
                AgentState::Idle,
                AgentSource::Hook,
                format!("its {} hook fired", hook.event),
            )),
            _ => None,
        };
        if let Some(v) = verdict {
            self.hook = Some((v, now));
            self.dirty = true;
        }
        (hook.event == "UserPromptSubmit").then(|| text("prompt").to_string())
    }

    /// Whether a hook arrived since the last call (the state should be read again).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The screen's verdict under the kind's rules, if any rule matches.
    fn judge_screen(&self, lines: &[String]) -> Option<Verdict> {
        let nonempty: Vec<&str> = lines
            .iter()
            .map(|l| l.as_str())
            .filter(|l| !l.trim().is_empty())
            .collect();
        for rule in &self.rules {
            let from = if rule.bottom == 0 {
                0
            } else {
                nonempty.len().saturating_sub(rule.bottom)
            };
            let text = nonempty[from..].join("\n");
            if rule.pattern.is_match(&text) {
                return Some(Verdict::new(rule.state, AgentSource::Screen, &rule.reason));
            }
        }
        None
    }

    /// Re-evaluates the state from the screen's plain lines and the PTY. Returns the new
    /// report if the state (or its reason) changed.
    pub fn evaluate(
        &mut self,
        now: Instant,
        lines: &[String],
        foreground: &Foreground,
    ) -> Option<AgentReport> {
        self.evaluated = Some(self.evaluated.map_or(now, |e| e.max(now)));
        let screen = self.judge_screen(lines);
        match (&self.screen, &screen) {
            (Some((old, _)), Some(new)) if old == new => {}
            (_, Some(new)) => self.screen = Some((new.clone(), now)),
            (_, None) => self.screen = None,
        }
        let mut verdict = self.decide(now, screen, foreground);
        if verdict.state == AgentState::Idle
            && self.is_agent()
            && self
                .last_output
                .is_some_and(|at| now.duration_since(at) < IDLE_SETTLE)
            && self.current.state != AgentState::Idle
        {
            verdict = Verdict::new(
                if self.current.state == AgentState::Starting {
                    AgentState::Starting
                } else {
                    AgentState::Working
                },
                verdict.source,
                "its screen is still changing",
            );
        }
        if verdict.state == self.current.state && verdict.reason == self.current.reason {
            return None;
        }
        let previous = self.current.state;
        if verdict.state != previous {
            self.entered = now;
            self.current.since_ms = now_ms();
            self.current.previous = Some(previous);
        }
        self.current.state = verdict.state;
        self.current.source = verdict.source;
        self.current.reason = verdict.reason;
        Some(self.current.clone())
    }

    fn decide(&self, now: Instant, screen: Option<Verdict>, fg: &Foreground) -> Verdict {
        if self.exited {
            return Verdict::new(AgentState::Exited, AgentSource::Pty, "the program ended");
        }
        if let Some(v) = screen.as_ref().filter(|v| v.state == AgentState::Blocked) {
            return v.clone();
        }
        if let Some((hook, at)) = &self.hook {
            let screen_disagrees_since = self
                .screen
                .as_ref()
                .filter(|(v, _)| v.state != hook.state)
                .map(|(_, since)| *since);
            let stale = screen_disagrees_since
                .is_some_and(|since| since > *at && now.duration_since(since) >= HOOK_TRUST);
            // A dialog reported by a hook ends when the screen stops showing one.
            let dialog_gone = hook.state == AgentState::Blocked && screen.is_some();
            // `Stop` fires while the turn is still finishing (its own hooks run, the screen
            // still says working): idle only once the screen agrees.
            let not_yet_idle = hook.state == AgentState::Idle
                && screen
                    .as_ref()
                    .is_some_and(|v| v.state == AgentState::Working);
            if !stale && !dialog_gone && !not_yet_idle {
                return hook.clone();
            }
        }
        if let Some(v) = screen {
            return v;
        }
        if self.kind == "shell" {
            return match fg {
                Foreground::Job(name) => Verdict::new(
                    AgentState::Working,
                    AgentSource::Pty,
                    format!("the shell is running a foreground job ({name})"),
                ),
                Foreground::Child
                    if self.last_output.is_some()
                        || now.duration_since(self.started) >= SILENT_START =>
                {
                    Verdict::new(
                        AgentState::Idle,
                        AgentSource::Pty,
                        "the shell itself is in the foreground",
                    )
                }
                _ => self.current_or_starting(),
            };
        }
        if self.is_agent() {
            // An agent whose screen no rule recognises: say so rather than guess idle.
            return if self.current.state == AgentState::Starting {
                self.current_or_starting()
            } else {
                Verdict::new(
                    AgentState::Unknown,
                    AgentSource::Screen,
                    "no screen rule of its kind matches",
                )
            };
        }
        match self.last_output {
            Some(at) if now.duration_since(at) < QUIET => Verdict::new(
                AgentState::Working,
                AgentSource::Silence,
                "it printed within the last 1.5 s",
            ),
            Some(_) => Verdict::new(
                AgentState::Idle,
                AgentSource::Silence,
                "it has been quiet for 1.5 s",
            ),
            None if now.duration_since(self.started) >= SILENT_START => Verdict::new(
                AgentState::Idle,
                AgentSource::Silence,
                "it has printed nothing since it started",
            ),
            None => self.current_or_starting(),
        }
    }

    fn current_or_starting(&self) -> Verdict {
        Verdict::new(
            AgentState::Starting,
            AgentSource::Pty,
            "spawned; it has not shown that it takes input yet",
        )
    }

    /// When a re-evaluation is due without new output (silence and stale hooks age). A
    /// deadline counts until an evaluation has judged a time at or after it, however late
    /// the caller asks: the worker's thread can be held up past one between evaluating and
    /// asking, and a deadline dropped then is never looked at again.
    pub fn next_check(&self) -> Option<Instant> {
        if self.exited {
            return None;
        }
        let unjudged = |at: Instant| self.evaluated.is_none_or(|e| e < at);
        let mut due: Vec<Instant> = Vec::new();
        if self.is_agent()
            && self.current.state != AgentState::Idle
            && let Some(at) = self.last_output
        {
            due.push(at + IDLE_SETTLE);
        }
        if self.kind == "shell" && self.last_output.is_none() {
            due.push(self.started + SILENT_START);
        }
        if !self.is_agent() && self.kind != "shell" {
            match self.last_output {
                Some(at) => due.push(at + QUIET),
                None => due.push(self.started + SILENT_START),
            }
        }
        if let (Some((hook, _)), Some((v, since))) = (&self.hook, &self.screen)
            && hook.state != v.state
        {
            due.push(*since + HOOK_TRUST);
        }
        due.into_iter().filter(|at| unjudged(*at)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Catalog;

    fn screen(name: &str) -> Vec<String> {
        let path = format!(
            "{}/tests/agents/screens/claude/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect()
    }

    fn claude() -> AgentTracker {
        AgentTracker::new("claude", &Catalog::default().rules("claude"))
    }

    /// Screens recorded from the real Claude Code CLI (tests/agents/NOTES.md says how).
    #[test]
    fn claude_screens_recorded_from_the_real_cli() {
        let cases = [
            ("a_idle_empty.txt", AgentState::Idle),
            ("b_working.txt", AgentState::Working),
            ("c_permission_dialog.txt", AgentState::Blocked),
            ("d_idle_after_answer.txt", AgentState::Idle),
            ("e_half_typed.txt", AgentState::Unknown),
            ("f_big_paste_unsubmitted.txt", AgentState::Unknown),
            ("h_idle_full_screen.txt", AgentState::Idle),
            ("i_working_full_screen.txt", AgentState::Working),
            ("j_permission_full_screen.txt", AgentState::Blocked),
            ("k_permission_write_tool.txt", AgentState::Blocked),
        ];
        for (file, want) in cases {
            let mut t = claude();
            t.evaluate(Instant::now(), &screen(file), &Foreground::Child);
            assert_eq!(t.state(), want, "{file}: {}", t.report().reason);
        }
    }

    /// Screens recorded from the real Gemini CLI 0.61.0 (tests/agents/NOTES.md).
    #[test]
    fn gemini_screens_recorded_from_the_real_cli() {
        use AgentState::*;
        let cases = [
            ("a_idle_empty", Idle),
            ("b_working", Working),
            ("b2_working_later", Working),
            ("c_confirm_dialog", Blocked),
            ("d_idle_after_answer", Idle),
            ("d2_idle_after_tool", Idle),
            ("e_half_typed", Unknown),
            ("f_trust_dialog", Blocked),
            ("g_auth_dialog", Blocked),
            ("h_idle_full_screen", Idle),
            ("i_after_reject_esc", Idle),
            ("j_working_with_queued", Working),
            ("k_after_esc_interrupt", Idle),
            ("l_working_full_screen", Working),
            ("m_confirm_full_screen", Blocked),
            ("n_paste_3_lines_unsubmitted", Unknown),
            ("o_big_paste_unsubmitted", Unknown),
            ("p_confirm_write_file", Blocked),
            ("q_ask_user_dialog", Blocked),
            ("r_idle_after_hooked_turn", Idle),
            ("s_idle_git_gemini_md", Idle),
            ("t_tool_running", Working),
            ("u_shell_mode_idle", Idle),
            ("v_two_line_input", Unknown),
            ("w_working_hook_executing", Working),
        ];
        for (file, want) in cases {
            let mut t = AgentTracker::new("gemini", &Catalog::default().rules("gemini"));
            let path = format!(
                "{}/tests/agents/screens/gemini/{file}.txt",
                env!("CARGO_MANIFEST_DIR")
            );
            let lines: Vec<String> = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .lines()
                .map(|l| l.trim_end().to_string())
                .collect();
            t.evaluate(Instant::now(), &lines, &Foreground::Child);
            assert_eq!(t.state(), want, "{file}: {}", t.report().reason);
        }
    }

    #[test]
    fn a_dialog_on_screen_beats_a_working_hook_and_a_stale_hook_gives_way() {
        let mut t = claude();
        let t0 = Instant::now();
        t.hook(
            &HookPayload {
                event: "UserPromptSubmit".into(),
                data: serde_json::json!({"prompt": "x"}),
            },
            t0,
        );
        t.evaluate(t0, &screen("c_permission_dialog.txt"), &Foreground::Child);
        assert_eq!(t.state(), AgentState::Blocked);
        // Interrupted turn: no Stop hook; the screen shows the idle box from t0+1s on.
        let idle = screen("a_idle_empty.txt");
        t.evaluate(t0 + Duration::from_secs(1), &idle, &Foreground::Child);
        assert_eq!(
            t.state(),
            AgentState::Working,
            "the hook stands for a while"
        );
        t.evaluate(t0 + Duration::from_secs(5), &idle, &Foreground::Child);
        assert_eq!(t.state(), AgentState::Idle);
        assert_eq!(t.report().source, AgentSource::Screen);
    }

    /// `Stop` fires while Claude Code still runs its stop hooks with "esc to interrupt" on
    /// screen; a message typed then is queued by Claude into the finishing turn.
    #[test]
    fn a_stop_hook_means_idle_only_once_the_screen_agrees() {
        let mut t = claude();
        let t0 = Instant::now();
        let stop = HookPayload {
            event: "Stop".into(),
            data: serde_json::json!({}),
        };
        t.hook(&stop, t0);
        t.evaluate(t0, &screen("b_working.txt"), &Foreground::Child);
        assert_eq!(t.state(), AgentState::Working);
        t.evaluate(t0, &screen("a_idle_empty.txt"), &Foreground::Child);
        assert_eq!(t.state(), AgentState::Idle);
        assert_eq!(t.report().source, AgentSource::Hook);
    }

    #[test]
    fn a_shell_is_working_while_a_job_has_the_terminal() {
        let mut t = AgentTracker::new("shell", &KindRules::default());
        let now = Instant::now();
        t.evaluate(now, &[], &Foreground::Child);
        assert_eq!(t.state(), AgentState::Starting, "no prompt printed yet");
        t.output_seen(now);
        t.evaluate(now, &["$".into()], &Foreground::Child);
        assert_eq!(t.state(), AgentState::Idle);
        t.evaluate(now, &["$ vim".into()], &Foreground::Job("vim".into()));
        assert_eq!(t.state(), AgentState::Working);
        assert!(t.report().reason.contains("vim"));
    }

    #[test]
    fn a_generic_program_works_while_it_prints() {
        let mut t = AgentTracker::new("generic", &KindRules::default());
        let now = Instant::now();
        t.output_seen(now);
        t.evaluate(now, &["x".into()], &Foreground::Child);
        assert_eq!(t.state(), AgentState::Working);
        t.evaluate(now + QUIET, &["x".into()], &Foreground::Child);
        assert_eq!(t.state(), AgentState::Idle);
    }

    /// A deadline that passed between an evaluation and the next look at `next_check` (a
    /// worker's thread preempted under load) must still be due: a quiet `cat` stayed
    /// `starting` for good, and a message for it waited forever.
    #[test]
    fn a_deadline_that_passed_unevaluated_is_still_due() {
        for kind in ["generic", "shell"] {
            let mut t = AgentTracker::new(kind, &KindRules::default());
            let start = t.started;
            t.evaluate(start + SILENT_START / 2, &[], &Foreground::Child);
            assert_eq!(t.state(), AgentState::Starting, "{kind}");
            let late = start + SILENT_START * 2;
            let due = t.next_check();
            assert!(
                due.is_some_and(|d| d <= late),
                "{kind}: the silent start is still due: {due:?}"
            );
            t.evaluate(late, &[], &Foreground::Child);
            assert_eq!(t.state(), AgentState::Idle, "{kind}");
            assert_eq!(t.next_check(), None, "{kind}: nothing more to decide");
        }
    }
}
