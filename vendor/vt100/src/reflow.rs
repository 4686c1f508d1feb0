//! brokertui patch: rewrapping the main screen and its scrollback on a resize, as tmux does.
//!
//! Rows a line soft-wrapped across (`Row::wrapped`) are joined into one logical line and cut
//! again at the new width, so a long line narrowed and widened again comes back whole instead
//! of losing what fell off the right edge. Lines past the cursor that hold nothing are not
//! kept, so narrowing pushes the top of the screen into the scrollback (the cursor's line
//! stays in view) and widening or growing pulls it back.

use super::{Grid, Pos, Size};
use crate::row::Row;

/// Where the cursor sits in a logical line: cells from the line's start, and whether it was
/// waiting to wrap (at the right edge, past the last column).
struct LineCursor {
    offset: usize,
    pending_wrap: bool,
}

impl Grid {
    /// Resizes, rewrapping soft-wrapped lines to the new width (scrollback included).
    pub fn set_size_reflow(&mut self, size: Size) {
        if self.rows.is_empty() || size == self.size {
            return self.set_size(size);
        }
        let old = self.size;
        let cursor_row = self.scrollback.len() + usize::from(self.pos.row);
        let cursor = LineCursor {
            offset: usize::from(self.pos.col.min(old.cols)),
            pending_wrap: self.pos.col >= old.cols,
        };
        let mut all: Vec<Row> =
            self.scrollback.drain(..).chain(self.rows.drain(..)).collect();
        let last_content =
            all.iter().rposition(|row| !row.is_blank()).unwrap_or(0);
        all.truncate(last_content.max(cursor_row) + 1);

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
                    rewrap(&line, size.cols, line_cursor.take(), &mut out)
                {
                    new_cursor = pos;
                }
                line.clear();
            }
        }

        let rows = usize::from(size.rows);
        let cursor_at = new_cursor.0;
        while out.len() < rows {
            out.push(Row::new(size.cols));
        }
        // The screen ends where the content does, unless that would put the cursor above
        // it; then what lies below the screen is dropped.
        let top = (out.len() - rows).min(cursor_at);
        out.truncate(top + rows);
        let visible = out.split_off(top);
        let drop = out.len().saturating_sub(self.scrollback_len);
        self.scrollback = out.into_iter().skip(drop).collect();
        self.rows = visible;
        self.scrollback_offset = 0;

        // Everything else (scroll region, saved cursor, clamps) as a plain resize does; it
        // clears wrap flags, which are right by now.
        let wraps: Vec<bool> = self.rows.iter().map(Row::wrapped).collect();
        self.set_size(size);
        for (row, wrapped) in self.rows.iter_mut().zip(wraps) {
            row.wrap(wrapped);
        }
        self.pos = Pos {
            // fits: `top` was chosen so that the cursor is on the screen
            row: u16::try_from(cursor_at - top).unwrap_or(0),
            col: new_cursor.1.min(size.cols),
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
            let cells = row.cells_slice();
            let end = if wrapped {
                cells.len()
            } else {
                cells.iter().rposition(|c| !c.is_blank()).map_or(0, |p| p + 1)
            };
            for cell in &cells[..end] {
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
