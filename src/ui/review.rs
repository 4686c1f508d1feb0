//! The diff review popup: a worker's changes against its base (file list, hunks, coloured
//! lines), comments left on lines, and all of them sent to the worker as one message.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::workspace::diff::{Comment, Diff, FileDiff, FileStatus, LineKind, review_message};

/// One row of the popup's right side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    File(usize),
    Hunk(usize, usize),
    Line(usize, usize, usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub name: String,
    pub diff: Diff,
    rows: Vec<Row>,
    pub cursor: usize,
    /// Comments by row.
    comments: Vec<(usize, Comment)>,
    /// The comment being written on the cursor's row.
    pub editing: Option<String>,
}

/// What a key did to the review.
pub enum Outcome {
    Stay,
    /// Closed; the comments not sent are kept for the next review of this worker.
    Close(Vec<Comment>),
    /// Send this message to the worker and close.
    Send(String),
}

impl Review {
    /// A review of `diff`, with `drafts` (comments kept from an earlier review) put back on
    /// the lines that are still there.
    pub fn new(name: &str, diff: Diff, drafts: Vec<Comment>) -> Review {
        let mut rows = Vec::new();
        for (f, file) in diff.files.iter().enumerate() {
            rows.push(Row::File(f));
            for (h, hunk) in file.hunks.iter().enumerate() {
                rows.push(Row::Hunk(f, h));
                rows.extend((0..hunk.lines.len()).map(|l| Row::Line(f, h, l)));
            }
        }
        let mut review = Review {
            name: name.to_string(),
            diff,
            rows,
            cursor: 0,
            comments: Vec::new(),
            editing: None,
        };
        for draft in drafts {
            if let Some(row) = (0..review.rows.len()).find(|&r| {
                review.anchor(r).is_some_and(|a| {
                    (a.path.as_str(), a.line, a.removed) == (&draft.path, draft.line, draft.removed)
                })
            }) {
                review.comments.push((row, draft));
            }
        }
        review.cursor = review.next_line(0, 1).unwrap_or(0);
        review
    }

    pub fn comments(&self) -> Vec<Comment> {
        let mut c = self.comments.clone();
        c.sort_by_key(|(row, _)| *row);
        c.into_iter().map(|(_, c)| c).collect()
    }

    /// The comment a line row would carry (its file and number), with no text yet.
    fn anchor(&self, row: usize) -> Option<Comment> {
        let Row::Line(f, h, l) = *self.rows.get(row)? else {
            return None;
        };
        let file = &self.diff.files[f];
        let line = &file.hunks[h].lines[l];
        let (number, removed) = match line.kind {
            LineKind::Removed => (line.old?, true),
            _ => (line.new?, false),
        };
        Some(Comment {
            path: file.path.clone(),
            line: number,
            removed,
            text: String::new(),
        })
    }

    /// The next row at or after `from` (`dir` 1) or before it (`dir` -1) that is a line.
    fn next_line(&self, from: usize, dir: isize) -> Option<usize> {
        let mut r = from as isize;
        while r >= 0 && (r as usize) < self.rows.len() {
            if matches!(self.rows[r as usize], Row::Line(..)) {
                return Some(r as usize);
            }
            r += dir;
        }
        None
    }

    fn move_by(&mut self, n: isize) {
        let dir = n.signum();
        for _ in 0..n.unsigned_abs() {
            match self.next_line((self.cursor as isize + dir).max(0) as usize, dir) {
                Some(r) if r != self.cursor => self.cursor = r,
                _ => break,
            }
        }
    }

    /// To the first line of the next (or previous) file.
    fn file_by(&mut self, dir: isize) {
        let current = self.file_of(self.cursor);
        let files = self.diff.files.len() as isize;
        let target = current as isize + dir;
        if target < 0 || target >= files {
            return;
        }
        if let Some(start) = self
            .rows
            .iter()
            .position(|r| *r == Row::File(target as usize))
            && let Some(r) = self.next_line(start, 1)
        {
            self.cursor = r;
        }
    }

    fn file_of(&self, row: usize) -> usize {
        match self.rows.get(row) {
            Some(Row::File(f) | Row::Hunk(f, _) | Row::Line(f, _, _)) => *f,
            None => 0,
        }
    }

    /// Handles a key; `page` is how many rows a page moves.
    pub fn key(&mut self, key: KeyEvent, page: isize) -> Outcome {
        if let Some(text) = &mut self.editing {
            match key.code {
                KeyCode::Esc => self.editing = None,
                KeyCode::Enter => {
                    let text = self.editing.take().unwrap_or_default();
                    self.comments.retain(|(row, _)| *row != self.cursor);
                    if !text.trim().is_empty()
                        && let Some(anchor) = self.anchor(self.cursor)
                    {
                        self.comments
                            .push((self.cursor, Comment { text, ..anchor }));
                    }
                }
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => text.push(c),
                _ => {}
            }
            return Outcome::Stay;
        }
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => return Outcome::Close(self.comments()),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::PageDown | KeyCode::Char(' ') => self.move_by(page),
            KeyCode::PageUp => self.move_by(-page),
            KeyCode::Char('g') | KeyCode::Home => {
                self.cursor = self.next_line(0, 1).unwrap_or(0);
            }
            KeyCode::Char('G') | KeyCode::End => {
                let last = self.rows.len().saturating_sub(1);
                self.cursor = self.next_line(last, -1).unwrap_or(0);
            }
            KeyCode::Char(']') | KeyCode::Tab => self.file_by(1),
            KeyCode::Char('[') | KeyCode::BackTab => self.file_by(-1),
            KeyCode::Char('c') | KeyCode::Enter if self.anchor(self.cursor).is_some() => {
                let existing = self
                    .comments
                    .iter()
                    .find(|(row, _)| *row == self.cursor)
                    .map(|(_, c)| c.text.clone());
                self.editing = Some(existing.unwrap_or_default());
            }
            KeyCode::Char('x') => self.comments.retain(|(row, _)| *row != self.cursor),
            KeyCode::Char('S') if !self.comments.is_empty() => {
                return Outcome::Send(review_message(&self.comments()));
            }
            _ => {}
        }
        Outcome::Stay
    }
}

/// Draws the review over `area` (most of the screen).
pub fn draw(frame: &mut Frame, review: &Review, area: Rect) {
    frame.render_widget(Clear, area);
    let (added, removed) = counts(review.diff.files.iter());
    let title = format!(
        " changes of {} against {} · {} file{} +{added} −{removed} ",
        review.name,
        &review.diff.base[..review.diff.base.len().min(10)],
        review.diff.files.len(),
        if review.diff.files.len() == 1 {
            ""
        } else {
            "s"
        },
    );
    let n = review.comments.len();
    let footer = if review.editing.is_some() {
        " Enter keeps the comment · Esc drops it ".to_string()
    } else if n > 0 {
        format!(
            " j/k move · ]/[ file · c comment · x delete · S sends {n} comment{} · Esc closes ",
            if n == 1 { "" } else { "s" }
        )
    } else {
        " j/k move · ]/[ file · c comment on the line · Esc closes ".to_string()
    };
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(Color::Cyan))
        .title(Span::styled(
            title,
            Style::new().add_modifier(Modifier::BOLD),
        ))
        .title_bottom(Span::styled(footer, Style::new().fg(Color::DarkGray)));
    let inside = block.inner(area);
    frame.render_widget(block, area);
    if review.diff.is_empty() {
        frame.render_widget(Paragraph::new("No changes against the base."), inside);
        return;
    }
    let list_w = (inside.width / 4).clamp(12, 32);
    let [list, _, body] = Layout::horizontal([
        Constraint::Length(list_w),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(inside);
    let [body, edit] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(u16::from(review.editing.is_some())),
    ])
    .areas(body);
    frame.render_widget(Paragraph::new(file_list(review)), list);
    let (lines, at) = body_lines(review);
    let h = body.height as usize;
    let top = at.saturating_sub(h / 3).min(lines.len().saturating_sub(h));
    let shown: Vec<Line> = lines.into_iter().skip(top).take(h).collect();
    frame.render_widget(Paragraph::new(shown), body);
    if let Some(text) = &review.editing {
        let place = review
            .anchor(review.cursor)
            .map(|a| a.place())
            .unwrap_or_default();
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(format!("{place}: "), Style::new().fg(Color::Yellow)),
                Span::raw(format!("{text}▏")),
            ])),
            edit,
        );
    }
}

/// Added and removed lines in `files`.
fn counts<'a>(files: impl Iterator<Item = &'a FileDiff>) -> (usize, usize) {
    let lines = files.flat_map(|f| &f.hunks).flat_map(|h| &h.lines);
    lines.fold((0, 0), |(a, r), l| match l.kind {
        LineKind::Added => (a + 1, r),
        LineKind::Removed => (a, r + 1),
        LineKind::Context => (a, r),
    })
}

fn file_list(review: &Review) -> Vec<Line<'static>> {
    let current = review.file_of(review.cursor);
    review
        .diff
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mark = match f.status {
                FileStatus::Added => "A",
                FileStatus::Deleted => "D",
                FileStatus::Modified => "M",
                FileStatus::Renamed => "R",
            };
            let style = if i == current {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            let (added, removed) = counts(std::iter::once(f));
            Line::from(vec![
                Span::styled(format!("{mark} {}", f.path), style),
                Span::styled(format!(" +{added}"), Style::new().fg(Color::Green)),
                Span::styled(format!(" −{removed}"), Style::new().fg(Color::Red)),
            ])
        })
        .collect()
}

/// Every line of the right side, and the index of the cursor's.
fn body_lines(review: &Review) -> (Vec<Line<'static>>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    for (r, row) in review.rows.iter().enumerate() {
        if r == review.cursor {
            at = out.len();
        }
        let line = match *row {
            Row::File(f) => {
                let file = &review.diff.files[f];
                let note = if file.binary { " (binary)" } else { "" };
                Line::from(Span::styled(
                    format!("▌{}{note}", file.path),
                    Style::new().fg(Color::White).add_modifier(Modifier::BOLD),
                ))
            }
            Row::Hunk(f, h) => Line::from(Span::styled(
                review.diff.files[f].hunks[h].header.clone(),
                Style::new().fg(Color::Cyan),
            )),
            Row::Line(f, h, l) => {
                let line = &review.diff.files[f].hunks[h].lines[l];
                let (sign, color) = match line.kind {
                    LineKind::Added => ('+', Color::Green),
                    LineKind::Removed => ('-', Color::Red),
                    LineKind::Context => (' ', Color::Reset),
                };
                let number = line
                    .new
                    .or(line.old)
                    .map_or_else(String::new, |n| n.to_string());
                let mut style = Style::new().fg(color);
                let here = r == review.cursor;
                if here {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                Line::from(vec![
                    Span::styled(if here { "›" } else { " " }, Style::new().fg(Color::Yellow)),
                    Span::styled(format!("{number:>4} "), Style::new().fg(Color::DarkGray)),
                    Span::styled(format!("{sign}{}", line.text), style),
                ])
            }
        };
        out.push(line);
        for (_, c) in review.comments.iter().filter(|(row, _)| *row == r) {
            out.push(Line::from(Span::styled(
                format!("      ▸ {}", c.text),
                Style::new()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::ITALIC),
            )));
        }
    }
    (out, at)
}
