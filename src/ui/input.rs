//! Keys, pastes and mouse events turned into state changes and [`Action`]s.
//!
//! View mode: keys are commands (README, "Keys"). Drive and relay: every key goes to the focused
//! worker as the bytes a terminal would send, except the prefix key (default Ctrl-b), after
//! which one key is a command.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Position;

use super::copy::Outcome as CopyOutcome;
use super::keys::{key_to_bytes, paste_to_bytes};
use super::layout::{inner, neighbour};
use super::state::{Action, App, Attached, ClientMode, Overlay, Press};
use crate::protocol::SessionMode;

pub fn handle_key(app: &mut App, key: KeyEvent) -> Vec<Action> {
    if key.kind == KeyEventKind::Release {
        return Vec::new();
    }
    if app.overlay.is_some() {
        return overlay_key(app, key);
    }
    if let Some(copy) = &mut app.copy {
        return match copy.key(key) {
            CopyOutcome::Stay => Vec::new(),
            CopyOutcome::Leave => {
                app.copy = None;
                Vec::new()
            }
            CopyOutcome::Copy(text) => {
                app.copy = None;
                copied(app, text)
            }
        };
    }
    match app.mode {
        ClientMode::View => view_key(app, key),
        ClientMode::Drive | ClientMode::Relay => attached_key(app, key),
    }
}

pub fn handle_paste(app: &mut App, text: &str) -> Vec<Action> {
    match &mut app.overlay {
        Some(Overlay::Compose { text: t, .. }) | Some(Overlay::NewWorker { text: t, .. }) => {
            t.push_str(text);
            return Vec::new();
        }
        Some(_) => return Vec::new(),
        None => {}
    }
    if app.mode == ClientMode::View {
        return Vec::new();
    }
    let Some(pane) = app.focused() else {
        return Vec::new();
    };
    let bracketed = pane.feed.mirror.parser.screen().bracketed_paste();
    vec![Action::Input {
        name: pane.name.clone(),
        bytes: paste_to_bytes(text, bracketed),
    }]
}

/// Two clicks at one place within this long are a double click (three a triple click).
const MULTI_CLICK: std::time::Duration = std::time::Duration::from_millis(400);

pub fn handle_mouse(app: &mut App, ev: MouseEvent) -> Vec<Action> {
    if app.overlay.is_some() {
        return Vec::new();
    }
    let at = Position::new(ev.column, ev.row);
    let hit = app.layout().into_iter().find(|(_, r)| r.contains(at));
    // Inside the pane under the mouse: (pane, column, row).
    let inside = hit.and_then(|(i, r)| {
        let r = inner(r);
        r.contains(at).then(|| (i, at.x - r.x, at.y - r.y))
    });
    if let Some(bytes) = forwarded(app, &ev, inside) {
        return bytes;
    }
    match ev.kind {
        MouseEventKind::Down(MouseButton::Left)
            if inside.is_none() && border_at(app, at).is_some() =>
        {
            app.border_drag = border_at(app, at);
            app.press = None;
            Vec::new()
        }
        MouseEventKind::Drag(MouseButton::Left) if app.border_drag.is_some() => {
            if let Some(drag) = app.border_drag {
                app.drag_border(drag, if drag.vertical { at.x } else { at.y });
            }
            Vec::new()
        }
        MouseEventKind::Up(MouseButton::Left) if app.border_drag.is_some() => {
            app.border_drag = None;
            Vec::new()
        }
        MouseEventKind::Down(MouseButton::Left) => {
            let mut actions = Vec::new();
            if let Some((i, _)) = hit
                && i != app.focus
            {
                actions = detach(app);
                app.focus = i;
            }
            app.copy = None;
            let Some((i, col, row)) = inside else {
                app.press = None;
                return actions;
            };
            let now = std::time::Instant::now();
            let clicks = match app.press {
                Some(p) if p.pane == i && p.at == (col, row) && now - p.when < MULTI_CLICK => {
                    p.clicks % 3 + 1
                }
                _ => 1,
            };
            app.press = Some(Press {
                pane: i,
                at: (col, row),
                when: now,
                clicks,
                dragged: false,
            });
            if clicks > 1
                && let Some(copy) = app.enter_copy()
            {
                // A word, or the whole line: selected and copied at once, as tmux does.
                let here = copy.at_view(row, col);
                let (from, to) = if clicks == 2 {
                    copy.word_at(here)
                } else {
                    (here, here)
                };
                copy.select(from, to, clicks == 3);
                if let Some(text) = copy.selection() {
                    actions.extend(copied(app, text));
                }
            }
            actions
        }
        MouseEventKind::Drag(MouseButton::Left) => {
            let Some(press) = app.press else {
                return Vec::new();
            };
            // The selection stays in the pane it started in.
            let Some((_, r)) = app.layout().into_iter().find(|(i, _)| *i == press.pane) else {
                return Vec::new();
            };
            let r = inner(r);
            if r.width == 0 || r.height == 0 {
                return Vec::new();
            }
            let col = at.x.clamp(r.x, r.x + r.width - 1) - r.x;
            let row = at.y.clamp(r.y, r.y + r.height - 1) - r.y;
            let (start, first) = (press.at, !press.dragged);
            if let Some(p) = app.press.as_mut() {
                p.dragged = true;
            }
            if first || app.copy.is_none() {
                app.enter_copy();
            }
            if let Some(copy) = app.copy.as_deref_mut() {
                let (from, to) = (copy.at_view(start.1, start.0), copy.at_view(row, col));
                copy.select(from, to, false);
            }
            Vec::new()
        }
        MouseEventKind::Up(MouseButton::Left) => {
            let dragged = app.press.is_some_and(|p| p.dragged);
            if !dragged {
                return Vec::new();
            }
            if let Some(p) = app.press.as_mut() {
                p.dragged = false;
            }
            match app.copy.take().and_then(|c| c.selection()) {
                Some(text) => copied(app, text),
                None => Vec::new(),
            }
        }
        MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
            let up = ev.kind == MouseEventKind::ScrollUp;
            if let Some(copy) = app.copy.as_deref_mut() {
                let k = if up { KeyCode::Up } else { KeyCode::Down };
                for _ in 0..3 {
                    copy.key(KeyEvent::new(k, KeyModifiers::NONE));
                }
                return Vec::new();
            }
            if let Some((i, _)) = hit
                && !owns_its_screen(app, i)
            {
                scroll(app, i, if up { 3 } else { -3 });
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// A mouse event for the attached worker's program, if it asked for mouse reports (vim
/// `:set mouse=a`, less, htop): encoded as it asked, at its pane-relative cell.
fn forwarded(app: &App, ev: &MouseEvent, inside: Option<(usize, u16, u16)>) -> Option<Vec<Action>> {
    if app.mode == ClientMode::View || app.copy.is_some() {
        return None;
    }
    let (i, col, row) = inside?;
    if i != app.focus {
        return None;
    }
    let pane = &app.panes[i];
    let screen = pane.feed.screen();
    let mode = screen.mouse_protocol_mode();
    if mode == vt100::MouseProtocolMode::None {
        return None;
    }
    let bytes = super::keys::mouse_to_bytes(ev, col, row, mode, screen.mouse_protocol_encoding());
    Some(
        bytes
            .map(|bytes| Action::Input {
                name: pane.name.clone(),
                bytes,
            })
            .into_iter()
            .collect(),
    )
}

/// Whether pane `i`'s program draws on the alternate screen (nothing scrolls off it to
/// scroll back to); if so, the status bar says how to scroll it instead.
fn owns_its_screen(app: &mut App, i: usize) -> bool {
    let Some(pane) = app.panes.get(i) else {
        return false;
    };
    if !pane.feed.screen().alternate_screen() {
        return false;
    }
    let note = format!(
        "{} draws its own screen (no scrollback here): attach (Enter) and scroll with its keys or, if it takes the mouse, the wheel",
        pane.name
    );
    app.note(note, std::time::Instant::now());
    true
}

/// Scrolls pane `i` back (positive) or forward; clamped by what scrollback holds.
fn scroll(app: &mut App, i: usize, rows: isize) {
    let Some(pane) = app.panes.get_mut(i) else {
        return;
    };
    let want = (pane.scroll as isize + rows).max(0) as usize;
    let screen = pane.feed.mirror.parser.screen_mut();
    screen.set_scrollback(want);
    pane.scroll = screen.scrollback();
}

fn page(app: &App) -> isize {
    app.layout()
        .into_iter()
        .find(|(i, _)| *i == app.focus)
        .map(|(_, r)| (inner(r).height as isize / 2).max(1))
        .unwrap_or(10)
}

fn view_key(app: &mut App, key: KeyEvent) -> Vec<Action> {
    let name = app.focused_name();
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c') if ctrl => {
            app.overlay = Some(Overlay::ConfirmQuit);
            Vec::new()
        }
        KeyCode::Left | KeyCode::Char('h') => move_focus(app, -1, 0),
        KeyCode::Right | KeyCode::Char('l') => move_focus(app, 1, 0),
        KeyCode::Up | KeyCode::Char('k') => move_focus(app, 0, -1),
        KeyCode::Down | KeyCode::Char('j') => move_focus(app, 0, 1),
        KeyCode::Tab => {
            if !app.panes.is_empty() {
                app.focus = (app.focus + 1) % app.panes.len();
            }
            Vec::new()
        }
        KeyCode::BackTab => {
            if !app.panes.is_empty() {
                app.focus = (app.focus + app.panes.len() - 1) % app.panes.len();
            }
            Vec::new()
        }
        KeyCode::Char(c @ '1'..='9') => {
            let i = c as usize - '1' as usize;
            if i < app.panes.len() {
                app.focus = i;
            }
            Vec::new()
        }
        KeyCode::Enter | KeyCode::Char('d') => attach(app, ClientMode::Drive),
        KeyCode::Char('r') => attach(app, ClientMode::Relay),
        KeyCode::Char('v') | KeyCode::Esc => {
            // Already in view: back to the live screen.
            scroll(app, app.focus, -(isize::MAX / 2));
            detach(app)
        }
        KeyCode::Char(c @ ('z' | '[' | ' ' | '<' | '>')) => layout_key(app, c),
        KeyCode::Char('/') => {
            if let Some(copy) = app.enter_copy() {
                copy.prompt = Some((true, String::new()));
            }
            Vec::new()
        }
        KeyCode::Char('!') => {
            // The next pane (after the focused one) whose agent needs the human.
            let n = app.panes.len();
            if let Some(i) = (1..=n)
                .map(|k| (app.focus + k) % n)
                .find(|&i| app.panes[i].attention)
            {
                app.focus = i;
                app.panes[i].attention = false;
            }
            Vec::new()
        }
        KeyCode::Char('?') => {
            app.help_scroll = 0;
            app.overlay = Some(Overlay::Help);
            Vec::new()
        }
        KeyCode::Char('a') => {
            app.overlay = Some(Overlay::Alerts);
            Vec::new()
        }
        KeyCode::Char('n') => {
            app.overlay = Some(Overlay::NewWorker {
                text: String::new(),
                worktree: false,
            });
            Vec::new()
        }
        KeyCode::Char('q') => {
            if app.owns_workers && app.panes.iter().any(|p| p.exit.is_none()) {
                app.overlay = Some(Overlay::ConfirmQuit);
                Vec::new()
            } else {
                vec![Action::Quit]
            }
        }
        KeyCode::PageUp => {
            let rows = page(app);
            if !owns_its_screen(app, app.focus) {
                scroll(app, app.focus, rows);
            }
            Vec::new()
        }
        KeyCode::PageDown => {
            let rows = page(app);
            scroll(app, app.focus, -rows);
            Vec::new()
        }
        KeyCode::Char('c') => {
            if let Some(to) = name {
                app.overlay = Some(Overlay::Compose {
                    to,
                    text: String::new(),
                });
            }
            Vec::new()
        }
        _ => {
            let Some(name) = name else {
                return Vec::new();
            };
            match key.code {
                KeyCode::Char('s') => vec![Action::Snapshot { name }],
                KeyCode::Char('p') => vec![Action::Pending { name }],
                KeyCode::Char('f') => vec![Action::Flush { name }],
                KeyCode::Char('x') => {
                    let worktree = app.focused().is_some_and(|p| p.worktree.is_some());
                    app.overlay = Some(Overlay::ConfirmRelease { name, worktree });
                    Vec::new()
                }
                KeyCode::Char('D') => vec![Action::Diff { name }],
                KeyCode::Char('R') => {
                    if app.focused().is_some_and(|p| p.exit.is_some()) {
                        vec![Action::Restart { name }]
                    } else {
                        app.note(
                            format!(
                                "{name} is running: R starts an exited worker again (x releases)"
                            ),
                            std::time::Instant::now(),
                        );
                        Vec::new()
                    }
                }
                KeyCode::Char(',') => {
                    let text = app
                        .focused()
                        .and_then(|p| p.label.clone())
                        .unwrap_or_default();
                    app.overlay = Some(Overlay::Rename { name, text });
                    Vec::new()
                }
                KeyCode::Char('m') => {
                    let mode = match app.focused().map(|p| p.mode) {
                        Some(SessionMode::Human) => SessionMode::Relay,
                        _ => SessionMode::Human,
                    };
                    vec![Action::SetMode { name, mode }]
                }
                _ => Vec::new(),
            }
        }
    }
}

fn move_focus(app: &mut App, dx: i32, dy: i32) -> Vec<Action> {
    if app.zoom {
        return Vec::new();
    }
    let areas: Vec<_> = app.layout().into_iter().map(|(_, r)| r).collect();
    if let Some(i) = neighbour(&areas, app.focus, dx, dy) {
        app.focus = i;
    }
    Vec::new()
}

/// Attaches to the focused worker: drive puts it in `human` (messages wait), relay keeps
/// it in `relay`; the mode it had is put back on detach.
pub fn attach(app: &mut App, mode: ClientMode) -> Vec<Action> {
    let Some(pane) = app.focused() else {
        return Vec::new();
    };
    if pane.exit.is_some() {
        let note = format!("{} has exited", pane.name);
        app.note(note, std::time::Instant::now());
        return Vec::new();
    }
    let (name, current) = (pane.name.clone(), pane.mode);
    let mut actions = Vec::new();
    let restore = match app.attached.take() {
        Some(a) if a.name == name => a.restore,
        Some(other) => {
            actions.push(Action::SetMode {
                name: other.name,
                mode: other.restore,
            });
            current
        }
        None => current,
    };
    let target = if mode == ClientMode::Drive {
        SessionMode::Human
    } else {
        SessionMode::Relay
    };
    if current != target {
        actions.push(Action::SetMode {
            name: name.clone(),
            mode: target,
        });
    }
    app.attached = Some(Attached { name, restore });
    app.mode = mode;
    app.prefix_armed = false;
    if let Some(i) = Some(app.focus) {
        scroll(app, i, -(isize::MAX / 2));
    }
    actions
}

/// Back to view, restoring the worker's mode from before the attach.
pub fn detach(app: &mut App) -> Vec<Action> {
    app.mode = ClientMode::View;
    app.prefix_armed = false;
    match app.attached.take() {
        Some(a) => {
            let current = app.panes.iter().find(|p| p.name == a.name).map(|p| p.mode);
            if current.is_some_and(|m| m != a.restore) {
                vec![Action::SetMode {
                    name: a.name,
                    mode: a.restore,
                }]
            } else {
                Vec::new()
            }
        }
        None => Vec::new(),
    }
}

fn attached_key(app: &mut App, key: KeyEvent) -> Vec<Action> {
    let Some(pane) = app.focused() else {
        return detach(app);
    };
    let name = pane.name.clone();
    if app.prefix_armed {
        app.prefix_armed = false;
        if app.prefix.matches(&key) {
            return vec![Action::Input {
                name,
                bytes: app.prefix.to_bytes(),
            }];
        }
        return match key.code {
            KeyCode::Char('d') | KeyCode::Esc | KeyCode::Char('v') => detach(app),
            KeyCode::Char('f') => vec![Action::Flush { name }],
            KeyCode::Char('p') => vec![Action::Pending { name }],
            KeyCode::Char(c @ ('z' | '[' | ' ' | '<' | '>')) => layout_key(app, c),
            KeyCode::Char('?') => {
                app.help_scroll = 0;
                app.overlay = Some(Overlay::Help);
                Vec::new()
            }
            _ => {
                // Never swallowed silently: say what the prefix takes.
                app.note(
                    format!(
                        "unknown key {} after the prefix: d detach · f flush · p pending · z zoom · ? help",
                        describe(&key)
                    ),
                    std::time::Instant::now(),
                );
                Vec::new()
            }
        };
    }
    if app.prefix.matches(&key) {
        app.prefix_armed = true;
        return Vec::new();
    }
    let app_cursor = pane.feed.mirror.parser.screen().application_cursor();
    match key_to_bytes(&key, app_cursor) {
        Some(bytes) => vec![Action::Input { name, bytes }],
        None => Vec::new(),
    }
}

/// A key as a person names it: `Ctrl-q`, `Alt-x`, `F5`.
fn describe(key: &KeyEvent) -> String {
    let mut name = String::new();
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        name.push_str("Ctrl-");
    }
    if key.modifiers.contains(KeyModifiers::ALT) {
        name.push_str("Alt-");
    }
    name.push_str(&key.code.to_string());
    name
}

fn overlay_key(app: &mut App, key: KeyEvent) -> Vec<Action> {
    let Some(overlay) = app.overlay.take() else {
        return Vec::new();
    };
    let esc = key.code == KeyCode::Esc;
    match overlay {
        Overlay::Help
            if !(esc || key.code == KeyCode::Char('?') || key.code == KeyCode::Char('q')) =>
        {
            let by: i32 = match key.code {
                KeyCode::Char('j') | KeyCode::Down => 1,
                KeyCode::Char('k') | KeyCode::Up => -1,
                KeyCode::PageDown | KeyCode::Char(' ') => 10,
                KeyCode::PageUp => -10,
                _ => 0,
            };
            app.help_scroll = (i32::from(app.help_scroll) + by).clamp(0, 60) as u16;
            app.overlay = Some(Overlay::Help);
            Vec::new()
        }
        Overlay::Help | Overlay::Alerts => Vec::new(),
        Overlay::Snapshot { name, lines, saved } => match key.code {
            KeyCode::Char('w') => {
                app.overlay = Some(Overlay::Snapshot {
                    name: name.clone(),
                    lines: lines.clone(),
                    saved,
                });
                vec![Action::SaveSnapshot { name, lines }]
            }
            _ if esc || key.code == KeyCode::Char('q') || key.code == KeyCode::Enter => Vec::new(),
            _ => {
                app.overlay = Some(Overlay::Snapshot { name, lines, saved });
                Vec::new()
            }
        },
        Overlay::Pending { name, entries } => match key.code {
            KeyCode::Char('f') => vec![Action::Flush { name }],
            _ if esc || key.code == KeyCode::Char('q') || key.code == KeyCode::Enter => Vec::new(),
            _ => {
                app.overlay = Some(Overlay::Pending { name, entries });
                Vec::new()
            }
        },
        Overlay::Compose { to, mut text } => match key.code {
            KeyCode::Esc => Vec::new(),
            KeyCode::Enter if key.modifiers.contains(KeyModifiers::ALT) => {
                text.push('\n');
                app.overlay = Some(Overlay::Compose { to, text });
                Vec::new()
            }
            KeyCode::Enter if !text.trim().is_empty() => vec![Action::Send { to, body: text }],
            KeyCode::Enter => {
                app.note(
                    "type a message first (Esc cancels)",
                    std::time::Instant::now(),
                );
                app.overlay = Some(Overlay::Compose { to, text });
                Vec::new()
            }
            KeyCode::Tab => {
                let to = if to == "*" {
                    app.focused_name().unwrap_or(to)
                } else {
                    "*".to_string()
                };
                app.overlay = Some(Overlay::Compose { to, text });
                Vec::new()
            }
            _ => {
                edit(&mut text, key);
                app.overlay = Some(Overlay::Compose { to, text });
                Vec::new()
            }
        },
        Overlay::NewWorker { mut text, worktree } => match key.code {
            KeyCode::Esc => Vec::new(),
            KeyCode::Enter if !text.trim().is_empty() => {
                vec![Action::Spawn {
                    arg: text,
                    worktree,
                }]
            }
            KeyCode::Enter => {
                app.note(
                    "type a command first: NAME=CMD or CMD (Esc cancels)",
                    std::time::Instant::now(),
                );
                app.overlay = Some(Overlay::NewWorker { text, worktree });
                Vec::new()
            }
            KeyCode::Tab => {
                app.overlay = Some(Overlay::NewWorker {
                    text,
                    worktree: !worktree,
                });
                Vec::new()
            }
            _ => {
                edit(&mut text, key);
                app.overlay = Some(Overlay::NewWorker { text, worktree });
                Vec::new()
            }
        },
        Overlay::ConfirmRelease { name, worktree } => {
            use crate::broker::ReleaseOptions;
            use crate::workspace::OnRelease;
            let remove = |force| ReleaseOptions {
                worktree: OnRelease::Remove,
                force,
            };
            match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => vec![Action::Release {
                    name,
                    opts: ReleaseOptions::default(),
                }],
                KeyCode::Char('r') if worktree => vec![Action::Release {
                    name,
                    opts: remove(false),
                }],
                KeyCode::Char('R') if worktree => vec![Action::Release {
                    name,
                    opts: remove(true),
                }],
                _ => Vec::new(),
            }
        }
        Overlay::Review(mut review) => {
            let page = (app.area.height as isize - 4).max(1);
            match review.key(key, page) {
                super::review::Outcome::Stay => {
                    app.overlay = Some(Overlay::Review(review));
                    Vec::new()
                }
                super::review::Outcome::Close(drafts) => {
                    app.review_drafts.insert(review.name.clone(), drafts);
                    Vec::new()
                }
                super::review::Outcome::Send(body) => {
                    app.review_drafts.remove(&review.name);
                    vec![Action::Send {
                        to: review.name.clone(),
                        body,
                    }]
                }
            }
        }
        Overlay::Rename { name, mut text } => match key.code {
            KeyCode::Esc => Vec::new(),
            KeyCode::Enter => {
                if let Some(p) = app.pane_mut(&name) {
                    let label = text.trim();
                    p.label = (!label.is_empty() && label != name).then(|| label.to_string());
                }
                Vec::new()
            }
            _ => {
                edit(&mut text, key);
                app.overlay = Some(Overlay::Rename { name, text });
                Vec::new()
            }
        },
        Overlay::ConfirmQuit => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Char('q') => vec![Action::Quit],
            _ => Vec::new(),
        },
    }
}

/// Minimal line editing for the popups' text fields.
fn edit(text: &mut String, key: KeyEvent) {
    match key.code {
        KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
        KeyCode::Char('w') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            let trimmed = text.trim_end().len();
            let cut = text[..trimmed].rfind(' ').map_or(0, |i| i + 1);
            text.truncate(cut);
        }
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => text.push(c),
        KeyCode::Backspace => {
            text.pop();
        }
        _ => {}
    }
}

fn next_layout(app: &mut App) -> Vec<Action> {
    app.arrangement = app.arrangement.next();
    app.zoom = false;
    let note = format!("layout: {} (Space for the next)", app.arrangement.label());
    app.note(note, std::time::Instant::now());
    Vec::new()
}

/// The border between two shown panes at `at`, if there is one.
fn border_at(app: &App, at: Position) -> Option<super::state::BorderDrag> {
    if app.zoom {
        return None;
    }
    let areas: Vec<_> = app.layout().into_iter().map(|(_, r)| r).collect();
    let overlap = |a0: u16, a1: u16, b0: u16, b1: u16| a0.max(b0) < a1.min(b1);
    for (i, a) in areas.iter().enumerate() {
        for (j, b) in areas.iter().enumerate() {
            if a.right() == b.x
                && (at.x + 1 == b.x || at.x == b.x)
                && (a.y..a.bottom()).contains(&at.y)
                && overlap(a.y, a.bottom(), b.y, b.bottom())
            {
                return Some(super::state::BorderDrag {
                    before: i,
                    after: j,
                    vertical: true,
                });
            }
            if a.bottom() == b.y
                && (at.y + 1 == b.y || at.y == b.y)
                && (a.x..a.right()).contains(&at.x)
                && overlap(a.x, a.right(), b.x, b.right())
            {
                return Some(super::state::BorderDrag {
                    before: i,
                    after: j,
                    vertical: false,
                });
            }
        }
    }
    None
}

/// What was copied goes to the clipboard, and the status bar says how much.
fn copied(app: &mut App, text: String) -> Vec<Action> {
    let lines = text.lines().count().max(1);
    let note = format!(
        "copied {} character{} ({lines} line{})",
        text.chars().count(),
        if text.chars().count() == 1 { "" } else { "s" },
        if lines == 1 { "" } else { "s" }
    );
    app.note(note, std::time::Instant::now());
    vec![Action::Copy { text }]
}

/// The keys that arrange panes, the same in view and after the prefix: zoom, copy mode, the
/// next layout, and a smaller or larger focused pane.
fn layout_key(app: &mut App, c: char) -> Vec<Action> {
    match c {
        'z' => app.zoom = !app.zoom,
        '[' => {
            app.enter_copy();
        }
        ' ' => return next_layout(app),
        '<' => app.resize_focused(-1),
        '>' => app.resize_focused(1),
        _ => {}
    }
    Vec::new()
}
