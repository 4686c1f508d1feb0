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
        }
    }

    pub fn update(&mut self, info: &WorkerInfo) {
        self.mode = info.mode;
        self.exit = info.exit.clone();
        self.undelivered = info.undelivered;
        self.agent = info.agent.clone();
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
        let tiles = super::layout::tile(self.area, self.panes.len() + 1);
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
        let tiles = super::layout::tile(self.area, self.panes.len());
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
