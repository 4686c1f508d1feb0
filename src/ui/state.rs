//! The TUI's state: plain data. [`super::draw::draw`] only reads it; [`super::input`] turns
//! keys into changes and [`Action`]s that the app loop carries out.

use std::time::{Duration, Instant};

use ratatui::layout::Rect;

use super::feed::PaneFeed;
use crate::broker::{Severity, WorkerInfo};
use crate::config::PrefixKey;
use crate::protocol::requests::pending::PendingEntry;
use crate::protocol::{ExitedPayload, SessionMode};

/// How the human is attached to the focused worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    /// Read-only: keys are commands, nothing reaches workers.
    View,
    /// Keys go to the worker, which is in `human` mode (messages wait) while attached.
    Drive,
    /// Keys go to the worker, which stays in `relay` mode (messages keep arriving).
    Relay,
}

impl ClientMode {
    pub fn label(self) -> &'static str {
        match self {
            ClientMode::View => "VIEW",
            ClientMode::Drive => "DRIVE",
            ClientMode::Relay => "RELAY",
        }
    }
}

pub struct Pane {
    pub name: String,
    /// The pane's screen and everything that keeps it in step with the worker.
    pub feed: PaneFeed,
    pub mode: SessionMode,
    pub exit: Option<ExitedPayload>,
    pub undelivered: usize,
    /// Rows scrolled back from the live screen.
    pub scroll: usize,
    /// What its agent is doing.
    pub agent: crate::protocol::AgentReport,
    /// It went blocked, finished while unfocused, or rang its bell: flagged until the human
    /// looks.
    pub attention: bool,
    /// Finds the program's bells and notifications in its output.
    pub bells: super::bells::BellScanner,
    /// The PTY size last asked of the worker.
    pub pty_size: Option<(u16, u16)>,
    /// Its own git worktree, if it runs in one.
    pub worktree: Option<crate::workspace::Worktree>,
    /// Started again by a broker restart.
    pub restored: bool,
    /// Its share along the way its slice of the layout is cut (see `layout`).
    pub weight: u32,
    /// A label the human gave it (`,`), shown before its name.
    pub label: Option<String>,
    /// The `seq` of the latest broker event about it that was applied.
    seen_seq: u64,
}

impl Pane {
    pub fn new(name: &str, rows: u16, cols: u16, scrollback: usize) -> Self {
        Pane {
            name: name.to_string(),
            feed: PaneFeed::new(rows, cols, scrollback),
            mode: SessionMode::Relay,
            exit: None,
            undelivered: 0,
            scroll: 0,
            pty_size: None,
            agent: Default::default(),
            attention: false,
            bells: Default::default(),
            worktree: None,
            restored: false,
            weight: super::layout::WEIGHT,
            label: None,
            seen_seq: 0,
        }
    }

    /// An event about this pane, numbered `seq`, has been applied.
    pub fn saw_event(&mut self, seq: u64) {
        self.seen_seq = self.seen_seq.max(seq);
    }

    /// Takes what a listing says of its worker. The listing was asked for after the event
    /// `asked_after`; it and the event stream come by different routes, so an event about
    /// this pane applied since may be newer than the listing: then what events keep up to
    /// date (mode, exit, agent, undelivered) stays as those events left it — a listing taken
    /// just before an exit must not undo the exit — and only what is fixed at spawn is taken.
    pub fn update(&mut self, info: &WorkerInfo, asked_after: u64) {
        if self.seen_seq <= asked_after {
            self.mode = info.mode;
            self.exit = info.exit.clone();
            self.undelivered = info.undelivered;
            self.agent = info.agent.clone();
        }
        self.worktree = info.worktree.clone();
        self.restored = info.restored;
    }
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub severity: Severity,
    pub worker: Option<String>,
    pub op: String,
    pub message: String,
    pub at: std::time::SystemTime,
}

/// How long an alert stays in the status bar (it stays in the log).
pub const ALERT_SHOWN_FOR: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help,
    Alerts,
    Snapshot {
        name: String,
        lines: Vec<String>,
        saved: Option<String>,
    },
    Pending {
        name: String,
        entries: Vec<PendingEntry>,
    },
    Compose {
        to: String,
        text: String,
    },
    NewWorker {
        text: String,
        /// Start it in its own git worktree.
        worktree: bool,
    },
    ConfirmRelease {
        name: String,
        /// It runs in a worktree: ask what becomes of it.
        worktree: bool,
    },
    Review(Box<super::review::Review>),
    /// A label for a pane.
    Rename {
        name: String,
        text: String,
    },
    ConfirmQuit,
}

/// Side effects the app loop performs for the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Input {
        name: String,
        bytes: Vec<u8>,
    },
    Snapshot {
        name: String,
    },
    Pending {
        name: String,
    },
    Flush {
        name: String,
    },
    SetMode {
        name: String,
        mode: SessionMode,
    },
    Send {
        to: String,
        body: String,
    },
    Spawn {
        arg: String,
        worktree: bool,
    },
    Release {
        name: String,
        opts: crate::broker::ReleaseOptions,
    },
    Diff {
        name: String,
    },
    /// Start an exited worker again as it was.
    Restart {
        name: String,
    },
    SaveSnapshot {
        name: String,
        lines: Vec<String>,
    },
    /// Put text on the clipboard (the outer terminal's, through OSC 52, and the system's).
    Copy {
        text: String,
    },
    Quit,
}

/// A left mouse press: in pane `pane` at `at` (inside the pane), the `clicks`-th in a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Press {
    pub pane: usize,
    pub at: (u16, u16),
    pub when: Instant,
    pub clicks: u8,
    pub dragged: bool,
}

/// A border between panes `before` (left or above) and `after`, being dragged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BorderDrag {
    pub before: usize,
    pub after: usize,
    /// A vertical border (moved left and right).
    pub vertical: bool,
}

/// A worker the human is attached to, and the mode to put back on detach.
#[derive(Debug, Clone, PartialEq)]
pub struct Attached {
    pub name: String,
    pub restore: SessionMode,
}

pub struct App {
    pub panes: Vec<Pane>,
    pub focus: usize,
    pub mode: ClientMode,
    pub attached: Option<Attached>,
    pub zoom: bool,
    pub overlay: Option<Overlay>,
    pub alerts: Vec<Alert>,
    /// The alert in the status bar and when it leaves.
    pub status: Option<(Alert, Instant)>,
    /// A transient note in the status bar (e.g. "flushed 2").
    pub note: Option<(String, Instant)>,
    pub prefix: PrefixKey,
    /// The prefix was pressed in drive/relay; the next key is a command.
    pub prefix_armed: bool,
    pub scrollback: usize,
    /// Where panes are drawn (everything but the status bar).
    pub area: Rect,
    pub quit: bool,
    /// Quitting ends the workers (the in-process broker); a client of a remote broker
    /// leaves them running.
    pub owns_workers: bool,
    /// Copy mode on one pane (its screen frozen), if on.
    pub copy: Option<Box<super::copy::CopyMode>>,
    /// The last left mouse press, for drags and double and triple clicks.
    pub press: Option<Press>,
    /// How far the help is scrolled.
    pub help_scroll: u16,
    pub arrangement: super::layout::Arrangement,
    /// The main pane's share of a main layout, in percent.
    pub main_share: u16,
    /// A pane border being dragged: the panes on either side of it, and which way it runs.
    pub border_drag: Option<BorderDrag>,
    /// A worker just asked for from this TUI: its pane takes the focus when it comes.
    pub focus_new: Option<String>,
    /// Review comments not sent yet, by worker: back when its review opens again.
    pub review_drafts: std::collections::HashMap<String, Vec<crate::workspace::diff::Comment>>,
}

/// Whether a pane in `r` has at least one row and two columns inside its border.
fn fits(r: Rect) -> bool {
    r.height >= 3 && r.width >= 4
}

impl App {
    pub fn new(prefix: PrefixKey, scrollback: usize) -> Self {
        App {
            panes: Vec::new(),
            focus: 0,
            mode: ClientMode::View,
            attached: None,
            zoom: false,
            overlay: None,
            alerts: Vec::new(),
            status: None,
            note: None,
            prefix,
            prefix_armed: false,
            scrollback,
            area: Rect::default(),
            quit: false,
            owns_workers: true,
            review_drafts: Default::default(),
            copy: None,
            press: None,
            help_scroll: 0,
            arrangement: Default::default(),
            main_share: super::layout::MAIN_SHARE,
            border_drag: None,
            focus_new: None,
        }
    }

    pub fn focused(&self) -> Option<&Pane> {
        self.panes.get(self.focus)
    }

    pub fn focused_name(&self) -> Option<String> {
        self.focused().map(|p| p.name.clone())
    }

    pub fn pane_mut(&mut self, name: &str) -> Option<&mut Pane> {
        self.panes.iter_mut().find(|p| p.name == name)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.panes.iter().position(|p| p.name == name)
    }

    /// Adds a pane for a new worker (no-op if it exists).
    pub fn add_pane(&mut self, name: &str) {
        if self.index_of(name).is_none() {
            self.panes.push(Pane::new(name, 24, 80, self.scrollback));
        }
        if self.focus_new.as_deref() == Some(name) {
            self.focus_new = None;
            self.focus = self.index_of(name).unwrap_or(self.focus);
        }
    }

    fn arranged(&self, weights: &[u32]) -> Vec<Rect> {
        super::layout::arrange(self.arrangement, self.area, weights, self.main_share)
    }

    /// Grows (`by` > 0) or shrinks the focused pane along the layout's main axis.
    pub fn resize_focused(&mut self, by: i32) {
        if self.arrangement.has_main() {
            // The main pane grows with the share; a stacked one grows as the main shrinks.
            let sign = if self.focus == 0 { 1 } else { -1 };
            let share = i32::from(self.main_share) + sign * by * 5;
            self.main_share = share.clamp(20, 80) as u16;
        } else if let Some(p) = self.panes.get_mut(self.focus) {
            p.weight = (p.weight as i32 + by * 20).clamp(20, 500) as u32;
        }
    }

    /// Moves the dragged border to `at` (column for a vertical border, row otherwise).
    pub fn drag_border(&mut self, drag: BorderDrag, at: u16) {
        let areas: Vec<Rect> = self.layout().into_iter().map(|(_, r)| r).collect();
        let (Some(a), Some(b)) = (areas.get(drag.before), areas.get(drag.after)) else {
            return;
        };
        let (start, both) = if drag.vertical {
            (a.x, a.width + b.width)
        } else {
            (a.y, a.height + b.height)
        };
        // The first pane keeps at least 3 cells, the second too.
        let first = at
            .saturating_sub(start)
            .saturating_add(1)
            .clamp(3, both.saturating_sub(3).max(3));
        let main_border = self.arrangement.has_main() && drag.before == 0;
        if main_border {
            let whole = if drag.vertical {
                self.area.width
            } else {
                self.area.height
            };
            self.main_share =
                (u32::from(first) * 100 / u32::from(whole.max(1))).clamp(10, 90) as u16;
            return;
        }
        let total = self.panes[drag.before].weight + self.panes[drag.after].weight;
        let w = (u64::from(total) * u64::from(first) / u64::from(both.max(1))) as u32;
        let w = w.clamp(1, total.saturating_sub(1).max(1));
        self.panes[drag.before].weight = w;
        self.panes[drag.after].weight = total - w;
    }

    pub fn remove_pane(&mut self, name: &str) {
        if self.copy.as_ref().is_some_and(|c| c.pane == name) {
            self.copy = None;
        }
        if let Some(i) = self.index_of(name) {
            self.panes.remove(i);
            if self.attached.as_ref().is_some_and(|a| a.name == name) {
                self.attached = None;
                self.mode = ClientMode::View;
            }
            if self.focus >= self.panes.len() {
                self.focus = self.panes.len().saturating_sub(1);
            }
        }
    }

    /// Visible panes and their outer areas: every pane tiled, or the focused one zoomed.
    /// The terminal size pane `name` gets in the current layout: (rows, cols) inside its border.
    pub fn pty_size_of(&self, name: &str) -> Option<(u16, u16)> {
        self.layout()
            .into_iter()
            .find(|(i, _)| self.panes[*i].name == name)
            .map(|(_, r)| {
                let r = super::layout::inner(r);
                (r.height.max(1), r.width.max(1))
            })
    }

    /// The terminal size a pane added now would get (it goes last in the tiling).
    pub fn next_pane_size(&self) -> (u16, u16) {
        let mut weights: Vec<u32> = self.panes.iter().map(|p| p.weight).collect();
        weights.push(super::layout::WEIGHT);
        let tiles = self.arranged(&weights);
        let r = super::layout::inner(tiles.last().copied().unwrap_or(self.area));
        (r.height.max(1), r.width.max(1))
    }

    /// Where each shown pane goes. When the terminal is too small for every pane to get a row
    /// inside its border, only the focused one is shown; when it is too small even for that
    /// one, none is.
    pub fn layout(&self) -> Vec<(usize, Rect)> {
        if self.panes.is_empty() || !fits(self.area) {
            return Vec::new();
        }
        let weights: Vec<u32> = self.panes.iter().map(|p| p.weight).collect();
        let tiles = self.arranged(&weights);
        if self.zoom || !tiles.iter().all(|r| fits(*r)) {
            return vec![(self.focus, self.area)];
        }
        tiles.into_iter().enumerate().collect()
    }

    pub fn push_alert(&mut self, alert: Alert, now: Instant) {
        self.status = Some((alert.clone(), now + ALERT_SHOWN_FOR));
        self.alerts.push(alert);
        // The log is for humans: keep the last thousand.
        if self.alerts.len() > 1000 {
            self.alerts.remove(0);
        }
    }

    /// Enters copy mode on the focused pane (where it is scrolled to).
    pub fn enter_copy(&mut self) -> Option<&mut super::copy::CopyMode> {
        let pane = self.panes.get(self.focus)?;
        let screen = pane.feed.mirror.parser.screen();
        let mode = super::copy::CopyMode::new(&pane.name, screen, pane.scroll);
        self.copy = Some(Box::new(mode));
        self.copy.as_deref_mut()
    }

    pub fn note(&mut self, text: impl Into<String>, now: Instant) {
        self.note = Some((text.into(), now + Duration::from_secs(4)));
    }

    /// Drops expired status-bar items; returns when the next one expires.
    pub fn expire(&mut self, now: Instant) -> Option<Instant> {
        if self.status.as_ref().is_some_and(|(_, until)| *until <= now) {
            self.status = None;
        }
        if self.note.as_ref().is_some_and(|(_, until)| *until <= now) {
            self.note = None;
        }
        [
            self.status.as_ref().map(|s| s.1),
            self.note.as_ref().map(|n| n.1),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(exit: Option<ExitedPayload>, restored: bool) -> WorkerInfo {
        serde_json::from_value(serde_json::json!({
            "name": "w", "pid": 1, "worker_pid": 2, "cmd": ["sh"], "rows": 24, "cols": 80,
            "mode": "relay", "state": if exit.is_some() { "exited" } else { "running" },
            "started_at_ms": 0, "undelivered": 0, "exit": exit,
            "agent": crate::protocol::AgentReport::default(), "restored": restored,
        }))
        .expect("a listing")
    }

    /// The race behind a pane restarted with R that never said it had exited again: the
    /// listing asked for when the worker became ready was taken before it exited, and it
    /// came back after the exit event.
    #[test]
    fn a_listing_older_than_an_applied_event_does_not_undo_it() {
        let mut pane = Pane::new("w", 24, 80, 0);
        let exit = ExitedPayload {
            code: Some(3),
            signal: None,
        };
        // The listing is asked for after event 7 (ready); the exit is event 9.
        pane.saw_event(9);
        pane.exit = Some(exit.clone());
        pane.update(&listed(None, true), 7);
        assert_eq!(pane.exit, Some(exit), "the older listing undid the exit");
        assert!(pane.restored, "what is fixed at spawn is still taken");
        // A listing asked for after everything the pane has seen is taken whole.
        pane.update(&listed(None, true), 9);
        assert_eq!(pane.exit, None);
    }
}
