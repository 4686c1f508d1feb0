//! The TUI's loop: terminal input, broker events, worker output and the answers of the
//! requests it started, turned into [`App`] state; drawn when something changed.
//!
//! The loop never waits on a worker: requests run as tasks and report back as [`Msg`]s, and
//! keystrokes are read on their own channel, polled first, so a flooding pane cannot delay
//! typing. Output is taken from [`Outputs`] only as fast as the loop applies it (which paces
//! the worker). Drawing happens only when something changed, at most every [`FRAME`].

use std::collections::{HashMap, HashSet};
use std::io::Stdout;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::Event as TermEvent;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use super::new_worker::{parse_new_worker, trim_tail};
use super::outputs::Outputs;
use super::terminal::{Signals, spawn_terminal_reader};
use super::{FRAME, HUMAN, RunOptions};
use crate::backend::Backend;
use crate::broker::{
    BrokerError, Event, EventKind, OutputChunk, OutputSubscription, Received, RequestWorkerError,
    Severity, WorkerInfo,
};
use crate::config::{self, Config};
use crate::deadline::sleep_until;
use crate::protocol::AgentState;
use crate::protocol::requests::pending::PendingEntry;
use crate::protocol::requests::snapshot::{Snapshot, SnapshotFormat, SnapshotRequest};
use crate::ui::draw::{areas, draw};
use crate::ui::feed::{Fed, Generation, Synced};
use crate::ui::input::{handle_key, handle_mouse, handle_paste};
use crate::ui::layout::inner;
use crate::ui::state::{Action, Alert, App, Overlay};

/// A pane's PTY follows its size this long after the last layout change.
const RESIZE_DEBOUNCE: Duration = Duration::from_millis(100);
/// Most time spent applying output before input gets another look.
const OUTPUT_SLICE: Duration = Duration::from_millis(8);
/// How long a pane whose snapshot failed waits before asking again.
const RESYNC_RETRY: Duration = Duration::from_millis(200);

/// What tasks report back to the loop.
enum Msg {
    /// A pane's output subscription, once its worker is registered.
    Subscribed(String, OutputSubscription),
    /// (Re)build a pane's screen from a snapshot: after a resize.
    Resync(String),
    /// The answer to one resync's snapshot request (its generation, see `PaneFeed`).
    Synced(String, Generation, Result<Snapshot, RequestWorkerError>),
    SnapshotReady(String, Result<Snapshot, RequestWorkerError>),
    DiffReady(String, Result<crate::workspace::diff::Diff, BrokerError>),
    PendingReady(String, Result<Vec<PendingEntry>, RequestWorkerError>),
    Done(String),
    Failed {
        op: &'static str,
        worker: Option<String>,
        message: String,
    },
    /// A listing, asked for after the event with this `seq`.
    Workers(u64, Vec<WorkerInfo>),
}

pub(super) struct Runner<B: Backend> {
    /// Only this worker is shown (`ctl attach`).
    only: Option<String>,
    broker: B,
    tx: mpsc::Sender<Msg>,
    input_tx: mpsc::UnboundedSender<(String, Vec<u8>)>,
    outputs: Outputs,
    /// Panes whose subscription is on its way.
    subscribing: HashSet<String>,
    /// Exited panes whose screen was asked for once more after the exit.
    asked_after_exit: HashSet<String>,
    /// The `seq` of the latest broker event applied (a listing asked for now is at least
    /// this fresh).
    last_seq: u64,
    /// Per pane: when its PTY should follow its new size.
    resize_due: HashMap<String, Instant>,
    /// Per pane: when to ask for a fresh snapshot (a flood's next frame, a failed one's retry).
    resync_due: HashMap<String, Instant>,
    snapshots_dir: PathBuf,
    mode_changes: tokio::task::JoinSet<()>,
    attention: config::Attention,
}

pub(super) async fn run_loop<B: Backend>(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    broker: &B,
    config: &Config,
    state_dir: &Path,
    mut signals: Signals,
    opts: RunOptions,
) -> color_eyre::Result<()> {
    let mut keys = spawn_terminal_reader();
    let mut events = broker.subscribe().await?;
    let (tx, mut rx) = mpsc::channel::<Msg>(1024);
    let (input_tx, mut input_rx) = mpsc::unbounded_channel::<(String, Vec<u8>)>();
    // Keystrokes go out in order, one at a time, through one task.
    {
        let broker = broker.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some((name, bytes)) = input_rx.recv().await {
                if let Err(e) = broker.input(&name, bytes).await {
                    let _ = tx
                        .send(Msg::Failed {
                            op: "input",
                            worker: Some(name),
                            message: e.to_string(),
                        })
                        .await;
                }
            }
        });
    }
    let mut runner = Runner {
        only: opts.only.clone(),
        broker: broker.clone(),
        tx: tx.clone(),
        input_tx,
        outputs: Outputs::default(),
        subscribing: HashSet::new(),
        asked_after_exit: HashSet::new(),
        last_seq: 0,
        resize_due: HashMap::new(),
        resync_due: HashMap::new(),
        snapshots_dir: state_dir.join("snapshots"),
        mode_changes: tokio::task::JoinSet::new(),
        attention: config.attention.clone(),
    };
    let mut app = App::new(config.prefix_key, config.scrollback);
    app.owns_workers = !opts.remote;
    if let Some(note) = same_prefix_as_tmux(&app.prefix) {
        app.push_alert(alert(Severity::Info, None, "keys", note), Instant::now());
    }
    for note in &opts.notes {
        app.push_alert(
            alert(Severity::Warning, None, "priority", note.clone()),
            Instant::now(),
        );
    }
    // Workers already there (a remote broker), in the order they started.
    for w in broker.list().await.unwrap_or_default() {
        if runner.shows(&w.name) {
            app.add_pane(&w.name);
            if let Some(p) = app.pane_mut(&w.name) {
                p.update(&w, 0);
            }
            runner.subscribe(&w.name);
        }
    }
    if let Some(mode) = opts.attach
        && !app.panes.is_empty()
    {
        app.zoom = opts.only.is_some();
        let actions = crate::ui::input::attach(&mut app, mode);
        runner.perform(&mut app, actions);
    }
    // Every worker starts at its pane's size: a program resized just after it started (vim in
    // a large window) can come up garbled.
    let size = terminal.size()?;
    app.area = areas(ratatui::layout::Rect::new(0, 0, size.width, size.height)).0;
    for spec in &opts.spawn {
        app.add_pane(&spec.name);
    }
    for mut spec in opts.spawn {
        if spec.rows.is_none()
            && spec.cols.is_none()
            && let Some((rows, cols)) = app.pty_size_of(&spec.name)
        {
            spec.rows = Some(rows);
            spec.cols = Some(cols);
            if let Some(p) = app.pane_mut(&spec.name) {
                p.pty_size = Some((rows, cols));
            }
        }
        runner.subscribe(&spec.name);
        let (broker, tx) = (broker.clone(), tx.clone());
        tokio::spawn(async move {
            if let Err(e) = broker.spawn(spec.clone()).await {
                let _ = tx
                    .send(Msg::Failed {
                        op: "spawn",
                        worker: Some(spec.name),
                        message: e.to_string(),
                    })
                    .await;
            }
        });
    }

    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    let mut cursor_shape = 0u8;
    let mut attached_to: Option<String> = None;
    let mut layout_sig = Vec::new();
    loop {
        let now = Instant::now();
        // Layout follows the terminal and the panes; PTYs follow the layout (debounced).
        let size = terminal.size()?;
        app.area = areas(ratatui::layout::Rect::new(0, 0, size.width, size.height)).0;
        let sig: Vec<(String, u16, u16)> = app
            .layout()
            .into_iter()
            .map(|(i, r)| {
                let r = inner(r);
                (app.panes[i].name.clone(), r.height.max(1), r.width.max(1))
            })
            .collect();
        if sig != layout_sig {
            for (name, rows, cols) in &sig {
                if let Some(p) = app.pane_mut(name)
                    && p.pty_size != Some((*rows, *cols))
                {
                    // The first size is sent at once; later ones wait for resizing to settle.
                    let due = if p.pty_size.is_none() {
                        now
                    } else {
                        now + RESIZE_DEBOUNCE
                    };
                    runner.resize_due.insert(name.clone(), due);
                }
            }
            layout_sig = sig;
            dirty = true;
        }
        let resize_at = runner.resize_due.values().min().copied();
        let resync_at = runner.resync_due.values().min().copied();
        let expiry = app.expire(now);
        let draw_at = dirty.then(|| (last_draw + FRAME).max(now));

        tokio::select! {
            biased;
            ev = keys.recv() => {
                let Some(ev) = ev else { break };
                let actions = match ev {
                    TermEvent::Key(key) => handle_key(&mut app, key),
                    TermEvent::Paste(text) => handle_paste(&mut app, &text),
                    TermEvent::Mouse(m) => handle_mouse(&mut app, m),
                    _ => Vec::new(),
                };
                runner.perform(&mut app, actions);
                let focus = focus_reports(&app, &mut attached_to);
                runner.perform(&mut app, focus);
                dirty = true;
            }
            _ = signals.recv() => break,
            ev = events.recv() => {
                runner.on_event(&mut app, ev);
                dirty = true;
            }
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                dirty |= runner.on_msg(&mut app, msg);
            }
            (name, chunk) = runner.outputs.next() => {
                dirty |= runner.on_output(&mut app, &name, chunk);
                // Apply whatever else is waiting, but only for a slice of time: keys first.
                let slice_end = Instant::now() + OUTPUT_SLICE;
                while Instant::now() < slice_end && keys.is_empty() {
                    match runner.outputs.try_next() {
                        Some((name, chunk)) => dirty |= runner.on_output(&mut app, &name, chunk),
                        None => break,
                    }
                }
            }
            _ = sleep_until(resize_at), if resize_at.is_some() => runner.apply_resizes(&mut app),
            _ = sleep_until(resync_at), if resync_at.is_some() => runner.apply_resyncs(&mut app),
            _ = sleep_until(expiry), if expiry.is_some() => dirty = true,
            _ = sleep_until(draw_at), if draw_at.is_some() => {}
        }
        if app.quit {
            break;
        }
        if dirty && Instant::now() >= last_draw + FRAME {
            terminal.draw(|f| draw(f, &app))?;
            last_draw = Instant::now();
            // The cursor the focused program asked for (DECSCUSR), the terminal's own otherwise.
            let shape = app
                .focused()
                .filter(|_| app.mode != crate::ui::state::ClientMode::View)
                .map_or(0, |p| p.feed.mirror.modes().cursor_shape);
            if shape != cursor_shape {
                cursor_shape = shape;
                super::terminal::write_to_outer(format!("\x1b[{shape} q").as_bytes());
            }
            dirty = false;
            for pane in &mut app.panes {
                pane.feed.frame_drawn();
            }
            // For the terminal-restore test: a panic in the middle of a live TUI.
            #[cfg(feature = "test-hooks")]
            if std::env::var_os("BROKERTUI_TEST_PANIC").is_some() {
                panic!("BROKERTUI_TEST_PANIC is set: panicking on purpose");
            }
        }
    }
    // Leaving while attached: put the worker's mode back (a remote broker's workers live
    // on), and let mode changes already on their way arrive.
    let actions = crate::ui::input::detach(&mut app);
    runner.perform(&mut app, actions);
    let settle = async { while runner.mode_changes.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(2), settle).await;
    Ok(())
}

/// The panes whose time has come, taken out of `due`.
fn take_due(due: &mut HashMap<String, Instant>) -> Vec<String> {
    let now = Instant::now();
    let names: Vec<String> = due
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(n, _)| n.clone())
        .collect();
    for name in &names {
        due.remove(name);
    }
    names
}

fn alert(severity: Severity, worker: Option<String>, op: &str, message: String) -> Alert {
    Alert {
        severity,
        worker,
        op: op.to_string(),
        message,
        at: std::time::SystemTime::now(),
    }
}

impl<B: Backend> Runner<B> {
    fn shows(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == name)
    }

    fn spawn_task<F>(&self, fut: F)
    where
        F: std::future::Future<Output = Option<Msg>> + Send + 'static,
    {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            if let Some(msg) = fut.await {
                let _ = tx.send(msg).await;
            }
        });
    }

    /// Tells the human that `name` needs them: the outer terminal's bell, a desktop
    /// notification (OSC 9, and OSC 777 for terminals that read that one), a command.
    fn attention(&self, name: &str, state: &str, reason: &str) {
        let text: String = format!("brokertui: {name} is {state}: {reason}")
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        self.pass_on(true, std::slice::from_ref(&text), &[]);
        if let Some((program, args)) = self
            .attention
            .command
            .as_ref()
            .and_then(|c| c.split_first())
        {
            let spawned = std::process::Command::new(program)
                .args(args)
                .arg(&text)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            match spawned {
                // Reaped in the background so it never becomes a zombie.
                Ok(mut child) => drop(std::thread::spawn(move || child.wait())),
                Err(e) => tracing::warn!("attention command {program:?} failed: {e}"),
            }
        }
    }

    /// Rings the outer terminal's bell, raises its desktop notifications and passes clipboard
    /// copies on to it (each as configured).
    fn pass_on(&self, bell: bool, notifications: &[String], clipboard: &[String]) {
        let mut out = Vec::new();
        if bell && self.attention.bell {
            out.push(0x07);
        }
        if self.attention.notify {
            for text in notifications {
                out.extend_from_slice(format!("\x1b]9;{text}\x07").as_bytes());
                out.extend_from_slice(format!("\x1b]777;notify;brokertui;{text}\x07").as_bytes());
            }
        }
        if self.attention.clipboard {
            for copy in clipboard {
                out.extend_from_slice(format!("\x1b]52;{copy}\x07").as_bytes());
            }
        }
        super::terminal::write_to_outer(&out);
    }

    /// Subscribes to a worker's output (the loop polls it in [`Outputs`]); a pane starts
    /// from a snapshot taken after the subscription, so nothing falls between the two.
    fn subscribe(&mut self, name: &str) {
        if self.outputs.contains(name) || !self.subscribing.insert(name.to_string()) {
            return;
        }
        let (broker, name) = (self.broker.clone(), name.to_string());
        self.spawn_task(async move {
            // The worker may not be registered yet: retry briefly.
            for _ in 0..200 {
                match broker.subscribe_output(&name).await {
                    Ok(sub) => return Some(Msg::Subscribed(name, sub)),
                    Err(BrokerError::WorkerNotFound(_)) => {
                        tokio::time::sleep(Duration::from_millis(10)).await
                    }
                    // Gone before we came: the pane shows the screen its program left.
                    Err(BrokerError::WorkerUnavailable { .. }) => return Some(Msg::Resync(name)),
                    Err(_) => return None,
                }
            }
            None
        });
    }

    /// One chunk (or lag) of a pane's output; whether the screen may have changed.
    fn on_output(&mut self, app: &mut App, name: &str, chunk: Received<OutputChunk>) -> bool {
        let chunk = match chunk {
            Received::Item(chunk) => chunk,
            Received::Lagged(_) => {
                self.resync(app, name);
                return false;
            }
            Received::Closed => return false,
        };
        let focused = app.focused_name().as_deref() == Some(name);
        let Some(pane) = app.pane_mut(name) else {
            return false;
        };
        let signals = pane.bells.scan(&chunk.data);
        if signals.bell || !signals.notifications.is_empty() {
            pane.attention |= !focused;
        }
        self.pass_on(signals.bell, &signals.notifications, &signals.clipboard);
        match pane.feed.output(chunk.offset, chunk.data) {
            Fed::Applied(changed) => changed,
            Fed::ResyncNow => {
                self.resync(app, name);
                false
            }
            Fed::ResyncSoon => {
                self.resync_due.insert(
                    name.to_string(),
                    Instant::now() + crate::ui::feed::FLOOD_REDRAW,
                );
                false
            }
        }
    }

    fn apply_resyncs(&mut self, app: &mut App) {
        for name in take_due(&mut self.resync_due) {
            self.resync(app, &name);
        }
    }

    fn refresh_workers(&self) {
        let (broker, asked_after) = (self.broker.clone(), self.last_seq);
        self.spawn_task(async move {
            let list = broker.list().await.ok()?;
            Some(Msg::Workers(asked_after, list))
        });
    }

    fn on_event(&mut self, app: &mut App, ev: Received<Arc<Event>>) {
        let event = match ev {
            Received::Item(e) => e,
            Received::Lagged(_) => return self.refresh_workers(),
            Received::Closed => {
                app.quit = true;
                return;
            }
        };
        self.last_seq = self.last_seq.max(event.seq);
        if let Some(p) = event.kind.worker().and_then(|name| app.pane_mut(name)) {
            p.saw_event(event.seq);
        }
        match &event.kind {
            EventKind::WorkerSpawned { name, .. } if !self.shows(name) => {}
            EventKind::WorkerSpawned { name, .. } => {
                if let Some(p) = app.pane_mut(name) {
                    // Started again (R): the same pane, in its place, follows the new worker.
                    p.exit = None;
                    p.attention = false;
                    self.outputs.remove(name);
                    self.subscribing.remove(name);
                    self.asked_after_exit.remove(name);
                    if app
                        .status
                        .as_ref()
                        .is_some_and(|(a, _)| a.worker.as_deref() == Some(name.as_str()))
                    {
                        app.status = None;
                    }
                }
                app.add_pane(name);
                self.subscribe(name);
            }
            EventKind::WorkerReleased { name } => {
                app.remove_pane(name);
                self.outputs.remove(name);
                self.subscribing.remove(name);
                self.resync_due.remove(name);
                self.resize_due.remove(name);
            }
            EventKind::WorkerExited { name, code, signal } => {
                if let Some(p) = app.pane_mut(name) {
                    p.exit = Some(crate::protocol::ExitedPayload {
                        code: *code,
                        signal: signal.clone(),
                    });
                }
                if app.attached.as_ref().is_some_and(|a| &a.name == name) {
                    crate::ui::input::detach(app);
                }
            }
            EventKind::ModeChanged { name, mode, .. } => {
                if let Some(p) = app.pane_mut(name) {
                    p.mode = *mode;
                }
            }
            EventKind::Alert {
                severity,
                worker,
                op,
                message,
                ..
            } => {
                app.push_alert(
                    alert(*severity, worker.clone(), op, message.clone()),
                    Instant::now(),
                );
            }
            // Deliveries carry the counts they change: no list() per message.
            EventKind::Delivery {
                name,
                undelivered: Some(n),
                ..
            } => {
                if let Some(p) = app.pane_mut(name) {
                    p.undelivered = *n;
                }
            }
            EventKind::MessageAccepted { undelivered, .. } if !undelivered.is_empty() => {
                for (name, n) in undelivered {
                    if let Some(p) = app.pane_mut(name) {
                        p.undelivered = *n;
                    }
                }
            }
            EventKind::WorkerReady { .. }
            | EventKind::Delivery { .. }
            | EventKind::MessageAccepted { .. } => self.refresh_workers(),
            EventKind::AgentState {
                name,
                state,
                previous,
                reason,
                ..
            } => {
                let focused = app.focused_name().as_deref() == Some(name.as_str());
                if let Some(p) = app.pane_mut(name) {
                    p.agent.state = *state;
                    p.agent.reason = reason.clone();
                    let needs = *state == AgentState::Blocked
                        || (*previous == Some(AgentState::Working)
                            && *state == AgentState::Idle
                            && !focused);
                    if needs {
                        p.attention = true;
                        self.attention(name, state.as_str(), reason);
                    } else if matches!(state, AgentState::Working) {
                        p.attention = false;
                    }
                }
            }
            EventKind::Resized { .. } => {}
        }
    }

    /// Returns whether the screen may have changed.
    fn on_msg(&mut self, app: &mut App, msg: Msg) -> bool {
        match msg {
            Msg::Subscribed(name, sub) => {
                self.subscribing.remove(&name);
                if app.pane_mut(&name).is_some() {
                    self.outputs.insert(&name, sub);
                    self.resync(app, &name);
                }
                false
            }
            Msg::Resync(name) => {
                self.resync(app, &name);
                false
            }
            Msg::Synced(name, generation, result) => {
                let Some(pane) = app.pane_mut(&name) else {
                    return false;
                };
                match pane.feed.snapshot(generation, result.as_ref()) {
                    Synced::Applied => {
                        pane.scroll = 0;
                        true
                    }
                    Synced::Stale => false,
                    Synced::Retry => {
                        if let Err(e) = &result {
                            tracing::warn!(%name, "resync failed, asking again: {e}");
                        }
                        // Once more after an exit: a request that failed otherwise (a timeout
                        // as the worker died) is answered now with the screen its program left.
                        let once =
                            pane.exit.is_some() && self.asked_after_exit.insert(name.clone());
                        if pane.exit.is_none() || result.is_ok() || once {
                            self.resync_due.insert(name, Instant::now() + RESYNC_RETRY);
                        }
                        false
                    }
                }
            }
            Msg::SnapshotReady(name, Ok(snap)) => {
                app.overlay = Some(Overlay::Snapshot {
                    name,
                    lines: trim_tail(snap.plain_lines()),
                    saved: None,
                });
                true
            }
            Msg::DiffReady(name, Ok(diff)) => {
                let drafts = app.review_drafts.remove(&name).unwrap_or_default();
                let review = crate::ui::review::Review::new(&name, diff, drafts);
                app.overlay = Some(Overlay::Review(Box::new(review)));
                true
            }
            Msg::DiffReady(name, Err(e)) => {
                app.push_alert(
                    alert(Severity::Warning, Some(name), "diff", e.to_string()),
                    Instant::now(),
                );
                true
            }
            Msg::PendingReady(name, Ok(entries)) => {
                app.overlay = Some(Overlay::Pending { name, entries });
                true
            }
            // Request failures reach the status bar as the broker's alert events.
            Msg::SnapshotReady(_, Err(_)) | Msg::PendingReady(_, Err(_)) => false,
            Msg::Done(note) => {
                app.note(note, Instant::now());
                true
            }
            Msg::Failed {
                op,
                worker,
                message,
            } => {
                if op == "spawn"
                    && let Some(pane) = worker.as_deref().and_then(|w| app.pane_mut(w))
                {
                    // The reason where the user looks: in the pane that stayed empty.
                    let text = format!("\r\n\x1b[31mbrokertui: {message}\x1b[m\r\n");
                    pane.feed.mirror.parser.process(text.as_bytes());
                }
                app.push_alert(
                    alert(Severity::Warning, worker, op, message),
                    Instant::now(),
                );
                true
            }
            Msg::Workers(asked_after, list) => {
                for info in &list {
                    if let Some(p) = app.pane_mut(&info.name) {
                        p.update(info, asked_after);
                    }
                }
                true
            }
        }
    }

    /// Asks for a fresh snapshot of `name`'s screen; output is held until it arrives.
    fn resync(&self, app: &mut App, name: &str) {
        let Some(pane) = app.pane_mut(name) else {
            return;
        };
        let generation = pane.feed.begin_resync();
        let request = SnapshotRequest {
            format: SnapshotFormat::Ansi,
            scrollback: u32::try_from(pane.feed.mirror.wants_history()).unwrap_or(u32::MAX),
        };
        let (broker, name) = (self.broker.clone(), name.to_string());
        self.spawn_task(async move {
            let snap = broker.snapshot(&name, request).await;
            Some(Msg::Synced(name, generation, snap))
        });
    }

    fn apply_resizes(&mut self, app: &mut App) {
        for name in take_due(&mut self.resize_due) {
            let Some((i, area)) = app
                .layout()
                .into_iter()
                .find(|(i, _)| app.panes[*i].name == name)
            else {
                continue;
            };
            let area = inner(area);
            let (rows, cols) = (area.height.max(1), area.width.max(1));
            let pane = &mut app.panes[i];
            if pane.exit.is_some() || pane.pty_size == Some((rows, cols)) {
                continue;
            }
            pane.pty_size = Some((rows, cols));
            pane.feed.set_size(rows, cols);
            let broker = self.broker.clone();
            self.spawn_task(async move {
                match broker.resize(&name, rows, cols).await {
                    // Re-read the screen as the worker now has it (programs repaint on SIGWINCH).
                    Ok(()) => Some(Msg::Resync(name)),
                    Err(BrokerError::WorkerUnavailable { .. }) => None,
                    Err(e) => Some(Msg::Failed {
                        op: "resize",
                        worker: Some(name),
                        message: e.to_string(),
                    }),
                }
            });
        }
    }

    fn perform(&mut self, app: &mut App, actions: Vec<Action>) {
        for action in actions {
            let broker = self.broker.clone();
            match action {
                Action::Input { name, bytes } => {
                    let _ = self.input_tx.send((name, bytes));
                }
                Action::Snapshot { name } => self.spawn_task(async move {
                    let snap = broker.snapshot(&name, SnapshotFormat::Plain.into()).await;
                    Some(Msg::SnapshotReady(name, snap))
                }),
                Action::Restart { name } => self.spawn_task(async move {
                    Some(match broker.restart(&name).await {
                        Ok(_) => Msg::Done(format!("{name} started again")),
                        Err(e) => Msg::Failed {
                            op: "restart",
                            worker: Some(name),
                            message: e.to_string(),
                        },
                    })
                }),
                Action::Diff { name } => self.spawn_task(async move {
                    let diff = broker.diff(&name).await;
                    Some(Msg::DiffReady(name, diff))
                }),
                Action::Pending { name } => self.spawn_task(async move {
                    let list = broker.pending(&name).await.map(|p| p.pending);
                    Some(Msg::PendingReady(name, list))
                }),
                Action::Flush { name } => self.spawn_task(async move {
                    let r = broker.flush(&name).await;
                    r.ok()
                        .map(|n| Msg::Done(format!("flushed {n} message(s) into {name}")))
                }),
                Action::SetMode { name, mode } => {
                    if let Some(p) = app.pane_mut(&name) {
                        p.mode = mode; // optimistic; the worker's mode_changed confirms
                    }
                    // Tracked: a mode put back on detach must reach the broker even if we
                    // quit right after (a remote worker would stay in `human`).
                    let (tx, asked_after) = (self.tx.clone(), self.last_seq);
                    self.mode_changes.spawn(async move {
                        let msg = match broker.set_mode(&name, mode).await {
                            Ok(r) if r.flushed.unwrap_or(0) > 0 => Some(Msg::Done(format!(
                                "{name} → {}; flushed {}",
                                mode.as_str(),
                                r.flushed.unwrap_or(0)
                            ))),
                            Ok(_) => None,
                            // The broker alerts; put the real mode back.
                            Err(_) => broker
                                .list()
                                .await
                                .ok()
                                .map(|l| Msg::Workers(asked_after, l)),
                        };
                        if let Some(msg) = msg {
                            let _ = tx.send(msg).await;
                        }
                    });
                }
                Action::Send { to, body } => self.spawn_task(async move {
                    Some(match broker.send_message(HUMAN, &to, &body).await {
                        Ok(a) if a.recipients.is_empty() => {
                            Msg::Done("no other worker to send to".into())
                        }
                        Ok(a) => Msg::Done(format!("message sent to {}", a.recipients.join(", "))),
                        Err(e) => Msg::Failed {
                            op: "send",
                            worker: Some(to),
                            message: e.to_string(),
                        },
                    })
                }),
                Action::Spawn { arg, worktree } => {
                    let taken: Vec<String> = app.panes.iter().map(|p| p.name.clone()).collect();
                    let mut spec = match parse_new_worker(&arg, &taken) {
                        Ok(spec) => spec,
                        Err(message) => {
                            app.push_alert(
                                alert(Severity::Warning, None, "spawn", message),
                                Instant::now(),
                            );
                            continue;
                        }
                    };
                    if worktree {
                        spec.worktree = Some(crate::workspace::WorktreeChoice::Flag(true));
                    }
                    app.focus_new = Some(spec.name.clone());
                    let (rows, cols) = app.next_pane_size();
                    spec.rows.get_or_insert(rows);
                    spec.cols.get_or_insert(cols);
                    self.spawn_task(async move {
                        match broker.spawn(spec.clone()).await {
                            Ok(_) => None,
                            Err(e) => Some(Msg::Failed {
                                op: "spawn",
                                worker: Some(spec.name),
                                message: e.to_string(),
                            }),
                        }
                    })
                }
                Action::Release { name, opts } => self.spawn_task(async move {
                    Some(match broker.release(&name, opts).await {
                        Ok(()) if opts.worktree == crate::workspace::OnRelease::Remove => {
                            Msg::Done(format!("released {name}; its worktree is removed"))
                        }
                        Ok(()) => Msg::Done(format!("released {name}")),
                        Err(e) => Msg::Failed {
                            op: "release",
                            worker: Some(name),
                            message: e.to_string(),
                        },
                    })
                }),
                Action::SaveSnapshot { name, lines } => {
                    let path = self
                        .snapshots_dir
                        .join(format!("{name}-{}.txt", crate::protocol::now_ms()));
                    let saved = std::fs::create_dir_all(&self.snapshots_dir)
                        .and_then(|_| std::fs::write(&path, lines.join("\n") + "\n"));
                    match saved {
                        Ok(()) => {
                            if let Some(Overlay::Snapshot { saved, .. }) = &mut app.overlay {
                                *saved = Some(path.display().to_string());
                            }
                            app.note(
                                format!("saved {name}'s screen to {}", path.display()),
                                Instant::now(),
                            );
                        }
                        Err(e) => app.push_alert(
                            alert(
                                Severity::Warning,
                                Some(name),
                                "save",
                                format!("{}: {e}", path.display()),
                            ),
                            Instant::now(),
                        ),
                    }
                }
                Action::Copy { text } => super::clipboard::copy(&text),
                Action::Quit => app.quit = true,
            }
        }
    }
}

/// Said once at start when brokertui runs inside a tmux whose prefix is ours: tmux takes the
/// key first, so brokertui gets it only when pressed twice.
fn same_prefix_as_tmux(prefix: &crate::config::PrefixKey) -> Option<String> {
    std::env::var_os("TMUX")?;
    let out = std::process::Command::new("tmux")
        .args(["show-options", "-gv", "prefix"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // tmux says `C-b`; ours is `Ctrl-b`.
    let ours = prefix.label().replace("Ctrl-", "C-").replace("Alt-", "M-");
    (theirs == ours).then(|| {
        format!(
            "tmux around brokertui uses the same prefix ({}): press it twice to reach brokertui, or set prefix_key in brokertui.toml (e.g. prefix_key = \"ctrl-a\")",
            prefix.label()
        )
    })
}

/// Focus in and out (`CSI I`, `CSI O`) for programs that asked for them (DECSET 1004), when
/// the pane typed into changes: a pane is focused while it is attached (drive or relay) and
/// focused in the TUI.
fn focus_reports(app: &App, attached_to: &mut Option<String>) -> Vec<Action> {
    let now = app
        .focused_name()
        .filter(|_| app.mode != crate::ui::state::ClientMode::View);
    if now == *attached_to {
        return Vec::new();
    }
    let wants = |name: &str| {
        app.panes
            .iter()
            .find(|p| p.name == name)
            .is_some_and(|p| p.exit.is_none() && p.feed.mirror.modes().focus_events)
    };
    let mut out = Vec::new();
    if let Some(old) = attached_to.take().filter(|n| wants(n)) {
        out.push(Action::Input {
            name: old,
            bytes: b"\x1b[O".to_vec(),
        });
    }
    if let Some(new) = now.clone().filter(|n| wants(n)) {
        out.push(Action::Input {
            name: new,
            bytes: b"\x1b[I".to_vec(),
        });
    }
    *attached_to = now;
    out
}
