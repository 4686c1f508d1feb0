//! brokertui patch: rewrapping the main screen and its scrollback on a resize, as tmux does.
//!
//! Rows a line soft-wrapped across (`Row::wrapped`) are joined into one logical line and cut
//! again at the new width, so a long line narrowed and widened again comes back whole instead
//! of losing what fell off the right edge. Where the screen's top lands follows tmux, so a
//! program sees the same screen in both after a resize: rows are taken from below the cursor
//! first when the height shrinks, and the screen is the last rows of the rewrapped lines.

use super::{Grid, Pos, Size};
use crate::row::Row;

/// Where the cursor sits in a logical line: cells from the line's start, and whether it was
/// waiting to wrap (at the right edge, past the last column).
struct LineCursor {
    offset: usize,
    pending_wrap: bool,
}

impl Grid {
    /// Resizes as tmux does: the height first (at the old width), then the width, rewrapping
    /// soft-wrapped lines (scrollback included).
    pub fn set_size_reflow(&mut self, size: Size) {
        if self.rows.is_empty() || size == self.size {
            return self.set_size(size);
        }
        if size.rows != self.size.rows {
            self.resize_height(size.rows);
        }
        if size.cols != self.size.cols {
            self.rewrap(size);
        }
        self.scrollback_offset = 0;
        // Everything else (scroll region, saved cursor, clamps) as a plain resize does; it
        // clears wrap flags and the pending wrap, which are right by now.
        let wraps: Vec<bool> = self.rows.iter().map(Row::wrapped).collect();
        let pos = self.pos;
        self.set_size(size);
        for (row, wrapped) in self.rows.iter_mut().zip(wraps) {
            row.wrap(wrapped);
        }
        self.pos = Pos {
            row: pos.row.min(size.rows - 1),
            col: pos.col.min(size.cols),
        };
    }

    /// Fewer rows: the rows below the cursor go first, then the top ones into the
    /// scrollback. More rows: the scrollback's last rows come back, then blank ones below.
    fn resize_height(&mut self, rows: u16) {
        let (old, new) = (self.rows.len(), usize::from(rows));
        let cursor = usize::from(self.pos.row).min(old.saturating_sub(1));
        if new < old {
            let below = old - 1 - cursor;
            let eaten = below.min(old - new);
            self.rows.truncate(old - eaten);
            let up = self.rows.len() - new;
            let gone: Vec<Row> = self.rows.drain(..up).collect();
            self.push_scrollback(gone);
            self.pos.row = u16::try_from(cursor - up).unwrap_or(0);
        } else {
            let back = (new - old).min(self.scrollback.len());
            let pulled = self.scrollback.split_off(self.scrollback.len() - back);
            self.rows.splice(0..0, pulled);
            self.pos.row = u16::try_from(cursor + back).unwrap_or(0);
            let cols = self.size.cols;
            self.rows.resize_with(new, || Row::new(cols));
        }
    }

    fn push_scrollback(&mut self, rows: Vec<Row>) {
        self.scrollback.extend(rows);
        let drop = self.scrollback.len().saturating_sub(self.scrollback_len);
        self.scrollback.drain(..drop);
    }

    /// Every line, history included, joined and cut again at `cols`; the screen is the last
    /// `size.rows` rows of the result (tmux keeps the blank rows below the cursor, so narrowing moves
    /// the top into the scrollback even with room below).
    fn rewrap(&mut self, size: Size) {
        let (old, cols) = (self.size, size.cols);
        let cursor_row = self.scrollback.len() + usize::from(self.pos.row);
        let cursor = LineCursor {
            offset: usize::from(self.pos.col.min(old.cols)),
            pending_wrap: self.pos.col >= old.cols,
        };
        let all: Vec<Row> =
            self.scrollback.drain(..).chain(self.rows.drain(..)).collect();
        let mut out: Vec<Row> = Vec::with_capacity(all.len());
        let mut new_cursor = (0usize, 0u16);
        let mut line: Vec<crate::Cell> = Vec::new();
        let mut line_cursor: Option<LineCursor> = None;
        let count = all.len();
        for (i, row) in all.into_iter().enumerate() {
            if i == cursor_row {
                line_cursor = Some(LineCursor {
                    offset: line.len() + cursor.offset,
                    pending_wrap: cursor.pending_wrap,
                });
            }
            let wrapped = row.wrapped();
            let mut cells = row.into_cells();
            if !wrapped {
                let keep = cells
                    .iter()
                    .rposition(|c| !c.is_blank())
                    .map_or(0, |p| p + 1);
                cells.truncate(keep);
            }
            line.extend(cells);
            if !wrapped || i + 1 == count {
                if let Some(pos) =
                    rewrap(&line, cols, line_cursor.take(), &mut out)
                {
                    new_cursor = pos;
                }
                line.clear();
            }
        }
        let rows = usize::from(size.rows);
        while out.len() < rows {
            out.push(Row::new(cols));
        }
        let top = out.len() - rows;
        self.rows = out.split_off(top);
        self.push_scrollback(out);
        // A cursor rewrapped into the scrollback goes to the top left, as in tmux.
        self.pos = match new_cursor.0.checked_sub(top) {
            Some(row) => Pos {
                row: u16::try_from(row).unwrap_or(0),
                col: new_cursor.1.min(cols),
            },
            None => Pos::default(),
        };
    }
}

/// Cuts one logical line into rows of `cols` cells (a wide character never split: it moves
/// to the next row, leaving a blank), appends them to `out`, and returns the cursor's new
/// place (row index into `out`, column) if it was on this line.
fn rewrap(
    line: &[crate::Cell],
    cols: u16,
    cursor: Option<LineCursor>,
    out: &mut Vec<Row>,
) -> Option<(usize, u16)> {
    let cols_n = usize::from(cols);
    let first = out.len();
    let mut row = Row::new(cols);
    let mut col = 0usize;
    let mut found: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < line.len() {
        let cell = &line[i];
        let width = if cell.is_wide() { 2 } else { 1 };
        if col + width > cols_n {
            row.wrap(true);
            out.push(std::mem::replace(&mut row, Row::new(cols)));
            col = 0;
        }
        if let Some(c) = &cursor {
            if c.offset == i || (width == 2 && c.offset == i + 1) {
                found = Some((out.len(), col));
            }
        }
        if width <= cols_n {
            row.set_cell(col, cell.clone());
            if width == 2 {
                if let Some(next) = line.get(i + 1) {
                    row.set_cell(col + 1, next.clone());
                }
            }
            col += width;
        }
        i += if width == 2 { 2 } else { 1 };
    }
    let Some(cursor) = cursor else {
        out.push(row);
        return None;
    };
    let (row_at, col_at) = match found {
        Some(at) => at,
        None => {
            // Past the line's last cell: count on from its end.
            let at = col + (cursor.offset - line.len().min(cursor.offset));
            let (mut extra, mut c) = (at / cols_n, at % cols_n);
            if cursor.pending_wrap && c == 0 && at > 0 {
                extra -= 1;
                c = cols_n;
            }
            for _ in 0..extra {
                row.wrap(true);
                out.push(std::mem::replace(&mut row, Row::new(cols)));
            }
            (out.len(), c)
        }
    };
    out.push(row);
    debug_assert!(row_at >= first);
    Some((row_at, u16::try_from(col_at).unwrap_or(cols)))
}

impl Grid {
    /// This grid with an empty scrollback and the scrolled-back view reset.
    pub fn clone_without_scrollback(&self) -> Self {
        Self {
            size: self.size,
            pos: self.pos,
            saved_pos: self.saved_pos,
            rows: self.rows.clone(),
            scroll_top: self.scroll_top,
            scroll_bottom: self.scroll_bottom,
            origin_mode: self.origin_mode,
            saved_origin_mode: self.saved_origin_mode,
            scrollback: std::collections::VecDeque::new(),
            scrollback_len: self.scrollback_len,
            scrollback_offset: 0,
            upstream_paths: self.upstream_paths,
        }
    }

    /// Rows held in the scrollback.
    pub fn scrollback_rows(&self) -> usize {
        self.scrollback.len()
    }

    /// The last `max` scrollback rows as bytes that, printed from the top-left corner of a
    /// fresh screen of this size, scroll exactly those rows into its scrollback (soft wraps
    /// kept) and leave its screen blank, ready for `state_formatted`.
    pub fn write_scrollback_formatted(&self, contents: &mut Vec<u8>, max: usize) {
        use crate::term::BufWrite as _;
        let skip = self.scrollback.len().saturating_sub(max);
        let count = self.scrollback.len() - skip;
        if count == 0 {
            return;
        }
        crate::term::ClearAttrs.write_buf(contents);
        let mut prev = crate::attrs::Attrs::default();
        for (i, row) in self.scrollback.iter().skip(skip).enumerate() {
            // The next row's first character wraps this one; the last always ends a line.
            let wrapped = row.wrapped() && i + 1 < count;
            let end = if wrapped {
                usize::from(row.cols())
            } else {
                row.cells_slice()
                    .iter()
                    .rposition(|c| !c.is_blank())
                    .map_or(0, |p| p + 1)
            };
            for cell in row.cells().take(end) {
                if cell.is_wide_continuation() {
                    continue;
                }
                if *cell.attrs() != prev {
                    cell.attrs().write_escape_code_diff(contents, &prev);
                    prev = *cell.attrs();
                }
                if cell.has_contents() {
                    contents.extend_from_slice(cell.contents().as_bytes());
                } else {
                    contents.push(b' ');
                }
            }
            if !wrapped {
                if prev != crate::attrs::Attrs::default() {
                    crate::term::ClearAttrs.write_buf(contents);
                    prev = crate::attrs::Attrs::default();
                }
                contents.extend_from_slice(b"\r\n");
            }
        }
        // Each row above moved the cursor down one line; these push the last screenful
        // off the top too.
        for _ in 1..self.size.rows {
            contents.push(b'\n');
        }
    }
}
