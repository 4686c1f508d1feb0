//! Copy mode: a pane's screen and scrollback frozen, a cursor moved with vi or arrow keys,
//! a selection (`v` by character, `V` by line) copied with `y` or `Enter`, and search (`/`
//! forward, `?` backward, `n`/`N`, smart case) with every match highlighted. The mouse makes
//! selections through the same state (drag, double-click a word, triple-click a line).
//!
//! The pane's screen is cloned on entry, so what the program prints meanwhile does not move
//! what is being selected; leaving shows the live screen again.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};

/// A position: (line counted from the oldest line of scrollback, column).
pub type Pos = (usize, u16);

/// A wide character's second cell, in [`CopyMode`]'s lines.
const CONTINUATION: char = '\0';

#[derive(Clone)]
pub struct CopyMode {
    pub pane: String,
    /// The frozen screen, scrolled so that line `top` is its first visible row.
    pub screen: vt100::Screen,
    /// Every line, oldest first: one char per column.
    lines: Vec<Vec<char>>,
    /// Whether each line continues on the next (the program's text wrapped there).
    wrapped: Vec<bool>,
    rows: u16,
    cols: u16,
    pub top: usize,
    pub cursor: Pos,
    pub anchor: Option<Pos>,
    pub line_select: bool,
    /// The last search: what, and forward or not.
    pub query: Option<(String, bool)>,
    /// A search being typed: forward or not, and its text.
    pub prompt: Option<(bool, String)>,
    /// Where the last search matches: (line, first column, past the last column).
    matches: Vec<(usize, u16, u16)>,
    /// One line for the user (a search that found nothing).
    pub message: Option<String>,
}

/// What a key did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Stay,
    Leave,
    /// Copy this text, and leave.
    Copy(String),
}

impl CopyMode {
    /// Enters copy mode on `screen` (a pane's), showing what it showed: `scroll` rows back.
    pub fn new(pane: &str, screen: &vt100::Screen, scroll: usize) -> CopyMode {
        let mut screen = screen.clone();
        let (rows, cols) = screen.size();
        screen.set_scrollback(usize::MAX);
        let back = screen.scrollback();
        let total = back + usize::from(rows);
        let mut lines = vec![Vec::new(); total];
        let mut wrapped = vec![false; total];
        // Page by page from the oldest: row r shows line (back - offset + r).
        let mut offset = back;
        loop {
            screen.set_scrollback(offset);
            for r in 0..rows {
                let line = back - offset + usize::from(r);
                if lines[line].is_empty() {
                    lines[line] = row_chars(&screen, r, cols);
                    wrapped[line] = screen.row_wrapped(r);
                }
            }
            if offset == 0 {
                break;
            }
            offset = offset.saturating_sub(usize::from(rows));
        }
        let scroll = scroll.min(back);
        let top = back - scroll;
        let (crow, ccol) = screen.cursor_position();
        let mut mode = CopyMode {
            pane: pane.to_string(),
            screen,
            lines,
            wrapped,
            rows,
            cols,
            top,
            cursor: (back + usize::from(crow), ccol.min(cols.saturating_sub(1))),
            anchor: None,
            line_select: false,
            query: None,
            prompt: None,
            matches: Vec::new(),
            message: None,
        };
        if scroll > 0 {
            // Scrolled back: the cursor starts on the view, not below it.
            mode.cursor = (top + usize::from(rows) - 1, 0);
        }
        mode.follow();
        mode
    }

    pub fn total_lines(&self) -> usize {
        self.lines.len()
    }

    /// The cell under a point of the pane's inside (for the mouse).
    pub fn at_view(&self, row: u16, col: u16) -> Pos {
        let line = (self.top + usize::from(row)).min(self.lines.len().saturating_sub(1));
        (line, col.min(self.cols.saturating_sub(1)))
    }

    /// Starts a selection at `from` with the cursor at `to`.
    pub fn select(&mut self, from: Pos, to: Pos, lines: bool) {
        self.anchor = Some(from);
        self.cursor = to;
        self.line_select = lines;
        self.follow();
    }

    /// The word under `at`, as (first, last) positions.
    pub fn word_at(&self, at: Pos) -> (Pos, Pos) {
        let line = &self.lines[at.0];
        let class = |c: usize| line.get(c).map_or(0, |&ch| char_class(ch));
        let k = class(usize::from(at.1));
        let (mut a, mut b) = (usize::from(at.1), usize::from(at.1));
        while a > 0 && class(a - 1) == k {
            a -= 1;
        }
        while b + 1 < line.len() && class(b + 1) == k {
            b += 1;
        }
        ((at.0, a as u16), (at.0, b as u16))
    }

    /// The selected text: lines joined by newlines, trailing blanks dropped, a wrapped line
    /// joined to the next with nothing between.
    pub fn selection(&self) -> Option<String> {
        let anchor = self.anchor?;
        let (start, end) = ordered(anchor, self.cursor);
        let mut out = String::new();
        for line in start.0..=end.0 {
            let chars = &self.lines[line];
            let (from, to) = if self.line_select {
                (0, chars.len())
            } else {
                let from = if line == start.0 {
                    usize::from(start.1)
                } else {
                    0
                };
                let to = if line == end.0 {
                    (usize::from(end.1) + 1).min(chars.len())
                } else {
                    chars.len()
                };
                (from.min(to), to)
            };
            let text: String = chars[from..to]
                .iter()
                .filter(|&&c| c != CONTINUATION)
                .collect();
            let joined = self.wrapped[line] && line != end.0 && to == chars.len();
            if joined {
                out.push_str(&text);
            } else {
                out.push_str(text.trim_end());
                if line != end.0 {
                    out.push('\n');
                }
            }
        }
        Some(out)
    }

    pub fn key(&mut self, key: KeyEvent) -> Outcome {
        self.message = None;
        if let Some((forward, text)) = &mut self.prompt {
            match key.code {
                KeyCode::Esc => self.prompt = None,
                KeyCode::Enter => {
                    let (forward, text) = (*forward, std::mem::take(text));
                    self.prompt = None;
                    if !text.is_empty() {
                        self.search(text, forward);
                        self.follow();
                    }
                }
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => text.push(c),
                _ => {}
            }
            return Outcome::Stay;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let page = self.rows.max(2) as isize - 1;
        match key.code {
            KeyCode::Char('q') => return Outcome::Leave,
            KeyCode::Esc if self.anchor.is_some() => self.anchor = None,
            KeyCode::Esc => return Outcome::Leave,
            KeyCode::Char('c') if ctrl => return Outcome::Leave,
            KeyCode::Char('y') | KeyCode::Enter => {
                return match self.selection() {
                    Some(text) => Outcome::Copy(text),
                    None => Outcome::Leave,
                };
            }
            KeyCode::Char('v') | KeyCode::Char(' ') => self.toggle_selection(false),
            KeyCode::Char('V') => self.toggle_selection(true),
            KeyCode::Char('h') | KeyCode::Left => self.cursor.1 = self.cursor.1.saturating_sub(1),
            KeyCode::Char('l') | KeyCode::Right => {
                self.cursor.1 = (self.cursor.1 + 1).min(self.cols.saturating_sub(1));
            }
            KeyCode::Char('k') | KeyCode::Up => self.down(-1),
            KeyCode::Char('j') | KeyCode::Down => self.down(1),
            KeyCode::Char('u') if ctrl => self.scroll_by(-page / 2),
            KeyCode::Char('d') if ctrl => self.scroll_by(page / 2),
            KeyCode::Char('b') if ctrl => self.scroll_by(-page),
            KeyCode::Char('f') if ctrl => self.scroll_by(page),
            KeyCode::PageUp => self.scroll_by(-page),
            KeyCode::PageDown => self.scroll_by(page),
            KeyCode::Char('0') | KeyCode::Home => self.cursor.1 = 0,
            KeyCode::Char('^') => {
                let line = &self.lines[self.cursor.0];
                self.cursor.1 = line.iter().position(|c| !c.is_whitespace()).unwrap_or(0) as u16;
            }
            KeyCode::Char('$') | KeyCode::End => {
                let line = &self.lines[self.cursor.0];
                let last = line
                    .iter()
                    .rposition(|c| !c.is_whitespace() && *c != CONTINUATION);
                self.cursor.1 = last.unwrap_or(0) as u16;
            }
            KeyCode::Char('g') => self.cursor = (0, 0),
            KeyCode::Char('G') => self.cursor = (self.lines.len().saturating_sub(1), 0),
            KeyCode::Char('H') => self.cursor.0 = self.top,
            KeyCode::Char('M') => self.cursor.0 = self.top + usize::from(self.rows / 2),
            KeyCode::Char('L') => self.cursor.0 = self.top + usize::from(self.rows) - 1,
            KeyCode::Char('w') => self.word_forward(false),
            KeyCode::Char('e') => self.word_forward(true),
            KeyCode::Char('b') => self.word_back(),
            KeyCode::Char('/') => self.prompt = Some((true, String::new())),
            KeyCode::Char('?') => self.prompt = Some((false, String::new())),
            KeyCode::Char('n') => self.next_match(false),
            KeyCode::Char('N') => self.next_match(true),
            _ => {}
        }
        self.cursor.0 = self.cursor.0.min(self.lines.len().saturating_sub(1));
        self.follow();
        Outcome::Stay
    }

    fn toggle_selection(&mut self, lines: bool) {
        if self.anchor.is_some() && self.line_select == lines {
            self.anchor = None;
        } else {
            self.anchor = Some(self.anchor.unwrap_or(self.cursor));
            self.line_select = lines;
        }
    }

    fn down(&mut self, n: isize) {
        let line = (self.cursor.0 as isize + n).clamp(0, self.lines.len() as isize - 1);
        self.cursor.0 = line as usize;
    }

    /// Moves the view and the cursor together (a page, half a page).
    fn scroll_by(&mut self, n: isize) {
        let max_top = self.lines.len().saturating_sub(usize::from(self.rows)) as isize;
        let top = (self.top as isize + n).clamp(0, max_top) as usize;
        let moved = top as isize - self.top as isize;
        self.top = top;
        self.down(moved);
    }

    /// The position after `at`, in reading order, if any.
    fn after(&self, at: Pos) -> Option<Pos> {
        if usize::from(at.1) + 1 < self.lines[at.0].len() {
            Some((at.0, at.1 + 1))
        } else if at.0 + 1 < self.lines.len() {
            Some((at.0 + 1, 0))
        } else {
            None
        }
    }

    fn before(&self, at: Pos) -> Option<Pos> {
        if at.1 > 0 {
            Some((at.0, at.1 - 1))
        } else if at.0 > 0 {
            let len = self.lines[at.0 - 1].len().max(1);
            Some((at.0 - 1, len as u16 - 1))
        } else {
            None
        }
    }

    fn class(&self, at: Pos) -> u8 {
        self.lines[at.0]
            .get(usize::from(at.1))
            .map_or(0, |&c| char_class(c))
    }

    /// `w`: the start of the next word; `e` (`end`): the end of this or the next word.
    fn word_forward(&mut self, end: bool) {
        let mut at = self.cursor;
        if end {
            // Off the current end, over blanks, then to the last cell of that word.
            at = match self.after(at) {
                Some(p) => p,
                None => return,
            };
            while self.class(at) == 0 {
                match self.after(at) {
                    Some(p) => at = p,
                    None => return,
                }
            }
            let k = self.class(at);
            while let Some(p) = self
                .after(at)
                .filter(|p| p.0 == at.0 && self.class(*p) == k)
            {
                at = p;
            }
        } else {
            let k = self.class(at);
            while let Some(p) = self.after(at) {
                let new_line = p.0 != at.0;
                at = p;
                if new_line || self.class(at) != k {
                    break;
                }
            }
            while self.class(at) == 0 {
                match self.after(at) {
                    Some(p) => at = p,
                    None => break,
                }
            }
        }
        self.cursor = at;
    }

    /// `b`: the start of this or the previous word.
    fn word_back(&mut self) {
        let mut at = match self.before(self.cursor) {
            Some(p) => p,
            None => return,
        };
        while self.class(at) == 0 {
            match self.before(at) {
                Some(p) => at = p,
                None => break,
            }
        }
        let k = self.class(at);
        while let Some(p) = self
            .before(at)
            .filter(|p| p.0 == at.0 && self.class(*p) == k)
        {
            at = p;
        }
        self.cursor = at;
    }

    /// Finds every match of `text` (smart case: case matters only if it has a capital) and
    /// goes to the first one from the cursor in that direction.
    pub fn search(&mut self, text: String, forward: bool) {
        let sensitive = text.chars().any(char::is_uppercase);
        let needle: Vec<char> = if sensitive {
            text.chars().collect()
        } else {
            text.to_lowercase().chars().collect()
        };
        self.matches.clear();
        for (i, line) in self.lines.iter().enumerate() {
            // Columns of the line's characters (a wide character's second cell has none).
            let cells: Vec<(u16, char)> = line
                .iter()
                .enumerate()
                .filter(|(_, c)| **c != CONTINUATION)
                .map(|(col, &c)| {
                    let c = if sensitive {
                        c
                    } else {
                        c.to_lowercase().next().unwrap_or(c)
                    };
                    (col as u16, c)
                })
                .collect();
            let n = needle.len();
            let mut s = 0;
            while n > 0 && s + n <= cells.len() {
                if cells[s..s + n]
                    .iter()
                    .map(|c| c.1)
                    .eq(needle.iter().copied())
                {
                    let end = cells.get(s + n).map_or(line.len() as u16, |c| c.0);
                    self.matches.push((i, cells[s].0, end));
                    s += n;
                } else {
                    s += 1;
                }
            }
        }
        self.query = Some((text, forward));
        self.next_match(false);
    }

    /// To the next match in the search's direction (`reverse`: the other way), wrapping.
    fn next_match(&mut self, reverse: bool) {
        let Some((text, forward)) = self.query.clone() else {
            return;
        };
        if self.matches.is_empty() {
            self.message = Some(format!("not found: {text}"));
            return;
        }
        let forward = forward != reverse;
        let here = self.cursor;
        let found = if forward {
            self.matches
                .iter()
                .find(|m| (m.0, m.1) > here)
                .or(self.matches.first())
        } else {
            self.matches
                .iter()
                .rev()
                .find(|m| (m.0, m.1) < here)
                .or(self.matches.last())
        };
        if let Some(&(line, col, _)) = found {
            self.cursor = (line, col);
        }
    }

    /// Keeps the cursor in view, and the frozen screen scrolled to the view.
    fn follow(&mut self) {
        let rows = usize::from(self.rows);
        if self.cursor.0 < self.top {
            self.top = self.cursor.0;
        } else if self.cursor.0 >= self.top + rows {
            self.top = self.cursor.0 + 1 - rows;
        }
        let back = self.lines.len().saturating_sub(rows);
        self.top = self.top.min(back);
        self.screen.set_scrollback(back - self.top);
    }

    /// Paints the selection, the matches and the cursor over the frozen screen drawn in
    /// `area` (the pane's inside).
    pub fn highlight(&self, buf: &mut Buffer, area: Rect) {
        let area = area.intersection(buf.area);
        let selected = self.anchor.map(|a| ordered(a, self.cursor));
        for row in 0..area.height.min(self.rows) {
            let line = self.top + usize::from(row);
            if line >= self.lines.len() {
                break;
            }
            for &(_, a, b) in self.matches.iter().filter(|m| m.0 == line) {
                for col in a..b.min(area.width) {
                    let cell = &mut buf[(area.x + col, area.y + row)];
                    cell.set_bg(Color::Yellow).set_fg(Color::Black);
                }
            }
            if let Some((start, end)) = selected
                && (start.0..=end.0).contains(&line)
            {
                let (from, to) = if self.line_select {
                    (0, area.width)
                } else {
                    let from = if line == start.0 { start.1 } else { 0 };
                    let to = if line == end.0 { end.1 + 1 } else { area.width };
                    (from, to.min(area.width))
                };
                for col in from..to {
                    let cell = &mut buf[(area.x + col, area.y + row)];
                    cell.set_bg(Color::Blue).set_fg(Color::White);
                }
            }
        }
        let (line, col) = self.cursor;
        if line >= self.top && line < self.top + usize::from(area.height) && col < area.width {
            buf[(area.x + col, area.y + (line - self.top) as u16)]
                .modifier
                .insert(Modifier::REVERSED);
        }
    }
}

fn ordered(a: Pos, b: Pos) -> (Pos, Pos) {
    if a <= b { (a, b) } else { (b, a) }
}

/// 0 blank, 1 word character, 2 anything else (vi's "word" classes).
fn char_class(c: char) -> u8 {
    if c.is_whitespace() || c == CONTINUATION {
        0
    } else if c.is_alphanumeric() || c == '_' {
        1
    } else {
        2
    }
}

/// One row of the screen (at its scrollback position), one char per column.
fn row_chars(screen: &vt100::Screen, row: u16, cols: u16) -> Vec<char> {
    let mut out = vec![' '; usize::from(cols)];
    if let Some((cells, _)) = screen.row_cells(row) {
        for (col, cell) in cells.iter().enumerate().take(usize::from(cols)) {
            if cell.is_wide_continuation() {
                out[col] = CONTINUATION;
            } else if cell.has_contents() {
                out[col] = cell.contents().chars().next().unwrap_or(' ');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn mode(text: &str, rows: u16, cols: u16) -> CopyMode {
        let mut p = vt100::Parser::new(rows, cols, 100);
        p.process(text.as_bytes());
        CopyMode::new("p", p.screen(), 0)
    }

    fn keys(m: &mut CopyMode, ks: &str) -> Outcome {
        let mut last = Outcome::Stay;
        for c in ks.chars() {
            let k = match c {
                '\r' => KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
                c => key(c),
            };
            last = m.key(k);
        }
        last
    }

    #[test]
    fn scrollback_and_screen_are_one_text_with_words_and_lines_selectable() {
        let text: String = (0..30)
            .map(|i| format!("line {i} alpha-beta\r\n"))
            .collect();
        let mut m = mode(&text, 5, 40);
        assert_eq!(
            m.total_lines(),
            31,
            "26 lines of scrollback and the 5 of the screen"
        );
        // To the top, a word, then the next line whole.
        assert_eq!(keys(&mut m, "gwv"), Outcome::Stay);
        assert_eq!(m.cursor, (0, 5));
        assert_eq!(keys(&mut m, "e"), Outcome::Stay);
        assert_eq!(
            m.selection().as_deref(),
            Some("0 alpha"),
            "e: to the next word's end"
        );
        assert_eq!(keys(&mut m, "jV"), Outcome::Stay);
        assert_eq!(
            m.selection().as_deref(),
            Some("line 0 alpha-beta\nline 1 alpha-beta")
        );
        assert_eq!(
            keys(&mut m, "y"),
            Outcome::Copy("line 0 alpha-beta\nline 1 alpha-beta".into())
        );
    }

    #[test]
    fn search_is_smart_case_wraps_and_reports_nothing_found() {
        let mut m = mode("Foo one\r\nfoo two\r\nbar\r\n", 5, 20);
        keys(&mut m, "g/foo\r");
        assert_eq!(
            m.cursor,
            (1, 0),
            "from the top, the next match (the first line's is at the cursor)"
        );
        keys(&mut m, "n");
        assert_eq!(m.cursor, (0, 0), "wrapped; lower case matches both");
        keys(&mut m, "/Foo\r");
        assert_eq!(m.matches.len(), 1, "a capital makes case matter");
        keys(&mut m, "?zzz\r");
        assert_eq!(m.message.as_deref(), Some("not found: zzz"));
    }

    #[test]
    fn a_wrapped_line_copies_as_one() {
        let mut m = mode("abcdefghij\r\n", 4, 6);
        // "abcdef" wraps onto "ghij": no newline where it wrapped.
        keys(&mut m, "gvjl");
        assert_eq!(m.selection().as_deref(), Some("abcdefgh"));
    }
}
