//! `draw(frame, &app)`: the whole screen as a function of [`App`].

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use super::layout::inner;
use super::pane::PaneWidget;
use super::state::{App, ClientMode, Overlay, Pane};
use crate::broker::Severity;
use crate::protocol::{AgentState, SessionMode};

/// Splits the terminal into the pane area and the one-line status bar.
pub fn areas(size: Rect) -> (Rect, Rect) {
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(size);
    (main, status)
}

pub fn draw(frame: &mut Frame, app: &App) {
    let (_, status) = areas(frame.area());
    let shown = app.layout();
    for &(i, area) in &shown {
        draw_pane(frame, app, i, area);
    }
    if app.panes.is_empty() {
        let msg = Paragraph::new("No workers. Press n to start one, q to quit.")
            .style(Style::new().fg(Color::DarkGray));
        frame.render_widget(msg, inner(app.area));
    } else if !app.zoom && shown.len() < app.panes.len() {
        // Too small for every pane to get a row: the focused one only, or none.
        let size = frame.area();
        let note = match shown.len() {
            0 => format!("{}x{}: too small", size.width, size.height),
            _ => format!("too small: 1 of {}", app.panes.len()),
        };
        let style = Style::new().fg(Color::Black).bg(Color::Yellow);
        let row = if shown.is_empty() {
            app.area
        } else {
            Rect::new(
                app.area.x,
                app.area.bottom().saturating_sub(1),
                app.area.width,
                1,
            )
        };
        frame.render_widget(
            Paragraph::new(note).style(style).wrap(Wrap { trim: true }),
            row,
        );
    }
    draw_status(frame, app, status);
    if let Some(overlay) = &app.overlay {
        draw_overlay(frame, app, overlay);
    }
}

fn severity_color(s: Severity) -> Color {
    match s {
        Severity::Info => Color::Cyan,
        Severity::Warning => Color::Yellow,
        Severity::Error => Color::Red,
    }
}

fn mode_color(mode: ClientMode) -> Color {
    match mode {
        ClientMode::View => Color::Cyan,
        ClientMode::Drive => Color::Yellow,
        ClientMode::Relay => Color::Magenta,
    }
}

/// ` 1 alice │ relay │ ✉ 2 │ DRIVE ` — number, name, session mode, messages waiting, and
/// the client mode when attached; exited workers show their exit status.
pub fn pane_title(app: &App, index: usize, pane: &Pane) -> Line<'static> {
    let focused = index == app.focus;
    let shown = match &pane.label {
        Some(label) => format!("{label} · {}", pane.name),
        None => pane.name.clone(),
    };
    let mut spans = vec![Span::styled(
        format!(" {} {shown} ", index + 1),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if focused && app.zoom && app.panes.len() > 1 {
        spans.push(Span::styled(
            format!("│ ZOOM 1/{} (z) ", app.panes.len()),
            Style::new().fg(Color::Black).bg(Color::Cyan),
        ));
    }
    match &pane.exit {
        Some(exit) => spans.push(Span::styled(
            format!("│ {exit} "),
            Style::new().fg(if exit.is_abnormal() {
                Color::Red
            } else {
                Color::DarkGray
            }),
        )),
        None => {
            let (label, color) = match pane.mode {
                SessionMode::Relay => ("relay", Color::Green),
                SessionMode::Human => ("human", Color::Yellow),
            };
            spans.push(Span::raw("│ "));
            spans.push(Span::styled(format!("{label} "), Style::new().fg(color)));
        }
    }
    if !pane.agent.kind.is_empty() && pane.exit.is_none() {
        let state = pane.agent.state;
        spans.push(Span::styled(
            format!("│ ● {} ", state.as_str()),
            Style::new().fg(agent_color(state)),
        ));
    }
    if let Some(wt) = &pane.worktree {
        spans.push(Span::styled(
            format!("│ ⎇ {} ", wt.branch),
            Style::new().fg(Color::Magenta),
        ));
    }
    if pane.restored {
        spans.push(Span::styled("│ restored ", Style::new().fg(Color::Cyan)));
    }
    if pane.attention {
        spans.push(Span::styled(
            "│ ⚑ needs you ",
            Style::new()
                .fg(Color::Black)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if pane.undelivered > 0 {
        spans.push(Span::styled(
            format!("│ ✉ {} ", pane.undelivered),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    let title = &pane.feed.mirror.modes().title;
    if !title.is_empty() {
        let short: String = title.chars().take(40).collect();
        spans.push(Span::styled(
            format!("│ {short} "),
            Style::new().fg(Color::Gray).add_modifier(Modifier::ITALIC),
        ));
    }
    if pane.scroll > 0 {
        spans.push(Span::styled(
            format!("│ ↑{} ", pane.scroll),
            Style::new().fg(Color::Cyan),
        ));
    }
    if let Some(copy) = app.copy.as_deref().filter(|c| c.pane == pane.name) {
        spans.push(Span::styled(
            format!("│ COPY {}/{} ", copy.cursor.0 + 1, copy.total_lines()),
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if focused && app.mode != ClientMode::View {
        spans.push(Span::styled(
            format!("│ {} ", app.mode.label()),
            Style::new()
                .fg(Color::Black)
                .bg(mode_color(app.mode))
                .add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans)
}

fn draw_pane(frame: &mut Frame, app: &App, index: usize, area: Rect) {
    let pane = &app.panes[index];
    let focused = index == app.focus;
    let border = if focused {
        Style::new()
            .fg(mode_color(app.mode))
            .add_modifier(Modifier::BOLD)
    } else if pane.attention {
        Style::new().fg(Color::Red)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let block = Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(border)
        .title(pane_title(app, index, pane));
    frame.render_widget(block, area);
    if let Some(copy) = app.copy.as_deref().filter(|c| c.pane == pane.name) {
        frame.render_widget(
            PaneWidget {
                screen: &copy.screen,
                show_cursor: false,
            },
            inner(area),
        );
        copy.highlight(frame.buffer_mut(), inner(area));
        return;
    }
    // The focused pane in drive or relay shows the terminal's own cursor, in the shape its
    // program asked for (the loop sets the shape); a synchronized update in progress shows
    // the picture from before it.
    let screen = if pane.scroll != 0 {
        pane.feed.mirror.parser.screen()
    } else {
        pane.feed.mirror.shown()
    };
    frame.render_widget(
        PaneWidget {
            screen,
            show_cursor: false,
        },
        inner(area),
    );
    // No cursor while scrolled back: `cursor_cell` knows.
    if focused
        && app.mode != ClientMode::View
        && let Some((x, y)) = crate::ui::pane::cursor_cell(screen)
    {
        let area = inner(area);
        if x < area.width && y < area.height {
            frame.set_cursor_position((area.x + x, area.y + y));
        }
    }
}

/// The colour of an agent state's badge.
pub fn agent_color(state: AgentState) -> Color {
    match state {
        AgentState::Working => Color::Blue,
        AgentState::Idle => Color::Green,
        AgentState::Blocked => Color::Red,
        AgentState::Starting | AgentState::Exited => Color::DarkGray,
        AgentState::Unknown => Color::Gray,
    }
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::styled(
        format!(" {} ", app.mode.label()),
        Style::new()
            .fg(Color::Black)
            .bg(mode_color(app.mode))
            .add_modifier(Modifier::BOLD),
    )];
    if let Some(name) = app.focused_name() {
        spans.push(Span::raw(format!(" {name} ")));
    }
    // Why the focused agent waits on the human, where the human is looking.
    if let Some(p) = app.focused()
        && matches!(p.agent.state, AgentState::Blocked | AgentState::Unknown)
        && !p.agent.reason.is_empty()
    {
        spans.push(Span::styled(
            format!(" {}: {} ", p.agent.state.as_str(), p.agent.reason),
            Style::new().fg(agent_color(p.agent.state)),
        ));
    }
    let needs = app.panes.iter().filter(|p| p.attention).count();
    if needs > 0 {
        spans.push(Span::styled(
            format!(" needs you: {needs} (!) "),
            Style::new()
                .fg(Color::Black)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
    }
    let now = Instant::now();
    if let Some((alert, until)) = &app.status
        && *until > now
    {
        let who = alert
            .worker
            .as_deref()
            .map(|w| format!("{w}: "))
            .unwrap_or_default();
        spans.push(Span::styled(
            format!(" ⚠ {who}{} — {} ", alert.op, alert.message),
            Style::new()
                .fg(Color::Black)
                .bg(severity_color(alert.severity)),
        ));
    } else if let Some((note, until)) = &app.note
        && *until > now
    {
        spans.push(Span::styled(
            format!(" {note} "),
            Style::new().fg(Color::Green),
        ));
    }
    if let Some(copy) = app.copy.as_deref() {
        let line = match (&copy.prompt, &copy.message) {
            (Some((forward, text)), _) => {
                format!(" {}{text}▏", if *forward { "/" } else { "?" })
            }
            (None, Some(message)) => format!(" {message} "),
            (None, None) => " copy mode: hjkl w b e 0 $ g G move · v/V select · y copy · / ? n N search · q leave ".to_string(),
        };
        let status = Line::from(vec![
            Span::styled(
                " COPY ",
                Style::new()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ),
            Span::raw(line),
        ]);
        frame.render_widget(Paragraph::new(status), area);
        return;
    }
    let hint = match (app.mode, app.prefix_armed) {
        (ClientMode::View, _) => {
            " Enter drive · r relay · c message · ? help · q quit ".to_string()
        }
        (_, true) => format!(
            " {}: d view · f flush · p pending · z zoom ",
            app.prefix.label()
        ),
        (_, false) => format!(" {} d: back to view ", app.prefix.label()),
    };
    // The alert count stays visible after the alert itself has left the bar.
    let count = if app.alerts.is_empty() {
        String::new()
    } else {
        format!(" alerts: {} (a) ", app.alerts.len())
    };
    let used: usize = spans.iter().map(|s| s.width()).sum();
    // The hint gives way first when the bar is crowded (an alert matters more).
    let hint = if used + count.chars().count() + hint.chars().count() > area.width as usize {
        String::new()
    } else {
        hint
    };
    let right = count.chars().count() + hint.chars().count();
    spans.push(Span::raw(
        " ".repeat((area.width as usize).saturating_sub(used + right)),
    ));
    spans.push(Span::styled(count, Style::new().fg(Color::Yellow)));
    spans.push(Span::styled(hint, Style::new().fg(Color::DarkGray)));
    frame.render_widget(Line::from(spans), area);
}

/// A centred rectangle of at most `w`×`h` inside `area`.
fn centred(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn popup(frame: &mut Frame, title: &str, lines: Vec<Line<'static>>, w: u16, h: u16, footer: &str) {
    let area = centred(frame.area(), w, h);
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(Color::Cyan))
        .title(Span::styled(
            format!(" {title} "),
            Style::new().add_modifier(Modifier::BOLD),
        ))
        .title_bottom(Span::styled(
            format!(" {footer} "),
            Style::new().fg(Color::DarkGray),
        ));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// One key table as lines of the help: its heading, then each key and what it does (the
/// prefix named as configured).
fn help_lines(table: &super::keymap::KeyTable, prefix: &str) -> Vec<Line<'static>> {
    let key = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    let named = |s: &str| s.replace("prefix", prefix).replace("Ctrl-b", prefix);
    let mut lines = vec![Line::from(Span::styled(
        named(table.title),
        Style::new().add_modifier(Modifier::BOLD),
    ))];
    for (keys, does) in table.keys {
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<28}", named(keys)), key),
            Span::raw(*does),
        ]));
    }
    lines.push(Line::from(""));
    lines
}

fn draw_help(frame: &mut Frame, app: &App) {
    use super::keymap::{COPY, PREFIX, REVIEW, VIEW};
    let prefix = app.prefix.label();
    let (main, _) = areas(frame.area());
    let left = help_lines(&VIEW, &prefix);
    let mut right = help_lines(&PREFIX, &prefix);
    right.extend(help_lines(&COPY, &prefix));
    right.extend(help_lines(&REVIEW, &prefix));
    // Side by side where they fit, else one after the other (j/k scroll).
    let two = main.width >= 2 * 96 + 2;
    let (w, columns) = if two {
        (2 * 96 + 2, vec![left, right])
    } else {
        let mut all = left;
        all.extend(right);
        (98, vec![all])
    };
    let h = columns.iter().map(Vec::len).max().unwrap_or(0) as u16 + 2;
    let area = centred(main, w, h);
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(Color::Cyan))
        .title(Span::styled(
            " brokertui keys ",
            Style::new().add_modifier(Modifier::BOLD),
        ))
        .title_bottom(Span::styled(
            " j/k scroll · Esc or ? closes ",
            Style::new().fg(Color::DarkGray),
        ));
    let inside = block.inner(area);
    frame.render_widget(block, area);
    let parts = Layout::horizontal(vec![
        Constraint::Ratio(1, columns.len() as u32);
        columns.len()
    ])
    .split(inside);
    for (lines, part) in columns.into_iter().zip(parts.iter()) {
        frame.render_widget(Paragraph::new(lines).scroll((app.help_scroll, 0)), *part);
    }
}

fn draw_overlay(frame: &mut Frame, app: &App, overlay: &Overlay) {
    let key = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    match overlay {
        Overlay::Help => draw_help(frame, app),
        Overlay::Alerts => {
            let lines: Vec<Line> = if app.alerts.is_empty() {
                vec![Line::from("No alerts.")]
            } else {
                app.alerts
                    .iter()
                    .rev()
                    .map(|a| {
                        let secs =
                            a.at.duration_since(std::time::UNIX_EPOCH)
                                .map(|d| d.as_secs() % 86_400)
                                .unwrap_or(0);
                        Line::from(vec![
                            Span::raw(format!(
                                "{:02}:{:02}:{:02} ",
                                secs / 3600,
                                secs / 60 % 60,
                                secs % 60
                            )),
                            Span::styled(
                                format!("{:<7} ", format!("{:?}", a.severity).to_lowercase()),
                                Style::new().fg(severity_color(a.severity)),
                            ),
                            Span::raw(format!(
                                "{}{} — {}",
                                a.worker
                                    .as_deref()
                                    .map(|w| format!("{w} "))
                                    .unwrap_or_default(),
                                a.op,
                                a.message
                            )),
                        ])
                    })
                    .collect()
            };
            popup(frame, "alerts (newest first)", lines, 100, 20, "Esc closes");
        }
        Overlay::Snapshot { name, lines, saved } => {
            let body: Vec<Line> = lines.iter().map(|l| Line::from(l.clone())).collect();
            let footer = match saved {
                // The file's name: the directory is in the status bar (a long path was cut off).
                Some(path) => format!(
                    "saved as {} · Esc closes",
                    std::path::Path::new(path)
                        .file_name()
                        .map_or(path.clone(), |n| n.to_string_lossy().into_owned())
                ),
                None => "w saves to a file · Esc closes".to_string(),
            };
            let w = lines.iter().map(|l| l.chars().count()).max().unwrap_or(20) as u16 + 4;
            popup(
                frame,
                &format!("snapshot of {name}"),
                body,
                w.max(40),
                lines.len() as u16 + 2,
                &footer,
            );
        }
        Overlay::Pending { name, entries } => {
            let lines: Vec<Line> = if entries.is_empty() {
                vec![Line::from("Nothing pending.")]
            } else {
                entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let mut spans = vec![
                            Span::styled(format!("{:>2}. {} ", i + 1, e.from), key),
                            Span::raw(e.body.replace('\n', "⏎ ")),
                        ];
                        if let Some(reason) = &e.reason {
                            spans.push(Span::styled(
                                format!("  (waits: {reason})"),
                                Style::new().fg(Color::DarkGray),
                            ));
                        }
                        Line::from(spans)
                    })
                    .collect()
            };
            let h = lines.len() as u16 + 2;
            popup(
                frame,
                &format!("pending for {name}"),
                lines,
                80,
                h,
                "f flushes · Esc closes",
            );
        }
        Overlay::Compose { to, text } => {
            let lines = vec![
                Line::from(vec![
                    Span::raw("to: "),
                    Span::styled(to.clone(), key),
                    // Only where it fits on the line: wrapped, it pushed the text out of sight.
                    Span::styled(
                        if frame.area().width >= 40 {
                            "  (Tab switches)"
                        } else {
                            ""
                        },
                        Style::new().fg(Color::DarkGray),
                    ),
                ]),
                Line::from(format!("{text}▏")),
            ];
            popup(
                frame,
                "relay message",
                lines,
                70,
                4,
                "Enter sends · Esc cancels",
            );
        }
        Overlay::NewWorker { text, worktree } => {
            let lines = vec![
                Line::from("NAME=CMD, or just CMD"),
                Line::from(format!("{text}▏")),
                Line::from(vec![
                    Span::styled(if *worktree { "[x]" } else { "[ ]" }, key),
                    Span::raw(" in its own git worktree (Tab)"),
                ]),
            ];
            popup(
                frame,
                "new worker",
                lines,
                60,
                5,
                "Enter starts · Tab worktree · Esc cancels",
            );
        }
        Overlay::ConfirmRelease {
            name,
            worktree: false,
        } => popup(
            frame,
            "release worker",
            vec![Line::from(format!(
                "End {name} and everything it started? (y/n)"
            ))],
            60,
            3,
            "y releases · any other key cancels",
        ),
        Overlay::ConfirmRelease {
            name,
            worktree: true,
        } => {
            let wt = app
                .panes
                .iter()
                .find(|p| &p.name == name)
                .and_then(|p| p.worktree.as_ref());
            let place = wt.map_or_else(String::new, |w| {
                format!("{} (branch {})", w.path.display(), w.branch)
            });
            let lines = vec![
                Line::from(format!("End {name} and everything it started?")),
                Line::from(format!("Its worktree: {place}")),
                Line::from(""),
                Line::from(vec![
                    Span::styled("  y", key),
                    Span::raw("  release, keep the worktree and branch"),
                ]),
                Line::from(vec![
                    Span::styled("  r", key),
                    Span::raw("  release and remove them (not if they hold unsaved work)"),
                ]),
                Line::from(vec![
                    Span::styled("  R", key),
                    Span::raw("  release and remove them, unsaved work too"),
                ]),
            ];
            popup(
                frame,
                "release worker",
                lines,
                76,
                8,
                "any other key cancels",
            )
        }
        Overlay::Review(review) => {
            let (main, _) = areas(frame.area());
            super::review::draw(frame, review, main);
        }
        Overlay::Rename { name, text } => popup(
            frame,
            &format!("label for {name}"),
            vec![
                Line::from("Shown before its name; empty: none"),
                Line::from(format!("{text}▏")),
            ],
            60,
            4,
            "Enter keeps · Esc cancels",
        ),
        Overlay::ConfirmQuit => {
            let running = app.panes.iter().filter(|p| p.exit.is_none()).count();
            popup(
                frame,
                "quit",
                vec![Line::from(format!(
                    "Quit and end {running} running worker(s)? (y/n)"
                ))],
                60,
                3,
                "y quits · any other key cancels",
            )
        }
    }
}
