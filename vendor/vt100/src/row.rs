use crate::term::BufWrite as _;

#[derive(Clone, Debug)]
pub struct Row {
    cells: Vec<crate::Cell>,
    wrapped: bool,
    /// brokertui patch: every cell from here on reads as blank (`Cell::new()`) whatever its
    /// bytes hold, so recycling a row (`reset`) wipes nothing: a row scrolled in at the
    /// bottom of a busy screen is written over anyway. Cells are wiped when something
    /// reaches them ([`Row::touch`]), and every read past it sees [`BLANK`].
    dirty: usize,
}

/// What a cell at or past a row's `dirty` mark reads as.
static BLANK: crate::Cell = crate::Cell::new();

impl Row {
    pub fn new(cols: u16) -> Self {
        Self {
            cells: vec![crate::Cell::new(); usize::from(cols)],
            wrapped: false,
            dirty: 0,
        }
    }

    /// brokertui patch: makes this row equal to `Row::new(cols)`, keeping its
    /// allocation and wiping nothing (see `dirty`).
    pub fn reset(&mut self, cols: u16) {
        self.cells.resize(usize::from(cols), crate::Cell::new());
        self.wrapped = false;
        self.dirty = 0;
    }

    /// brokertui patch: cells before `end` are about to be read or changed in place:
    /// the stale ones among them are wiped first.
    fn touch(&mut self, end: usize) {
        let end = end.min(self.cells.len());
        if end > self.dirty {
            self.cells[self.dirty..end].fill(crate::Cell::new());
            self.dirty = end;
        }
    }

    /// brokertui patch: every cell as it reads, for the rare changes that move cells.
    fn touch_all(&mut self) {
        self.touch(self.cells.len());
    }

    /// brokertui patch: the cell at `col` as it reads (in range).
    fn cell(&self, col: usize) -> &crate::Cell {
        if col < self.dirty {
            &self.cells[col]
        } else {
            &BLANK
        }
    }

    pub(crate) fn cols(&self) -> u16 {
        self.cells
            .len()
            .try_into()
            // we limit the number of cols to a u16 (see Size)
            .unwrap()
    }

    pub fn clear(&mut self, attrs: crate::attrs::Attrs) {
        self.wrapped = false;
        if attrs == crate::attrs::Attrs::default() {
            self.dirty = 0;
            return;
        }
        for cell in &mut self.cells {
            cell.clear(attrs);
        }
        self.dirty = self.cells.len();
    }

    /// brokertui patch (reflow).
    pub(crate) fn into_cells(mut self) -> Vec<crate::Cell> {
        self.touch_all();
        self.cells
    }

    /// brokertui patch (reflow).
    pub(crate) fn set_cell(&mut self, col: usize, cell: crate::Cell) {
        self.touch(col + 1);
        if let Some(c) = self.cells.get_mut(col) {
            *c = cell;
        }
    }

    /// brokertui patch: the cells written since the row was last blank; every cell after
    /// them, up to [`Row::cols`], is blank.
    pub(crate) fn cells_slice(&self) -> &[crate::Cell] {
        &self.cells[..self.dirty.min(self.cells.len())]
    }

    pub(crate) fn cells(&self) -> impl Iterator<Item = &crate::Cell> {
        let written = self.cells_slice();
        written
            .iter()
            .chain(std::iter::repeat_n(&BLANK, self.cells.len() - written.len()))
    }

    pub fn get(&self, col: u16) -> Option<&crate::Cell> {
        let col = usize::from(col);
        (col < self.cells.len()).then(|| self.cell(col))
    }

    pub fn get_mut(&mut self, col: u16) -> Option<&mut crate::Cell> {
        // The caller may write a wide character's two cells through this one.
        self.touch(usize::from(col) + 2);
        self.cells.get_mut(usize::from(col))
    }

    /// brokertui patch: printable ASCII `bytes` written from `col` on, up to the row's end
    /// or the first wide character's cell; returns how many were written.
    pub fn write_ascii(
        &mut self,
        col: u16,
        bytes: &[u8],
        attrs: crate::attrs::Attrs,
    ) -> usize {
        let start = usize::from(col);
        if start >= self.cells.len() {
            return 0;
        }
        self.touch(start);
        // Cells before `dirty` are live (one may be half of a wide character); the
        // rest are blank, whatever their stale bytes say.
        let live = self.dirty;
        let mut written = 0;
        for (i, (cell, &b)) in
            self.cells[start..].iter_mut().zip(bytes).enumerate()
        {
            if start + i < live
                && (cell.is_wide() || cell.is_wide_continuation())
            {
                break;
            }
            cell.set_ascii(b, attrs);
            written += 1;
        }
        self.dirty = self.dirty.max(start + written);
        written
    }

    pub fn insert(&mut self, i: u16, cell: crate::Cell) {
        self.touch_all();
        self.cells.insert(usize::from(i), cell);
        self.wrapped = false;
        // Every cell reads as it is, the one shifted past the old end included.
        self.dirty = self.cells.len();
    }

    pub fn remove(&mut self, i: u16) {
        self.touch_all();
        self.clear_wide(i);
        self.cells.remove(usize::from(i));
        self.dirty = self.cells.len();
        self.wrapped = false;
    }

    /// brokertui patch: what `erase(i)` for every `i` from `start` to the
    /// end does when `erase(start - 1)` came first: every cell cleared, and
    /// the row unwrapped if any cell was.
    pub fn clear_from(&mut self, start: u16, attrs: crate::attrs::Attrs) {
        let start = usize::from(start);
        if start >= self.cells.len() {
            return;
        }
        self.wrapped = false;
        if attrs == crate::attrs::Attrs::default() {
            // Blank from `start` on is what `dirty` says.
            self.dirty = self.dirty.min(start);
            return;
        }
        self.touch(start);
        for cell in &mut self.cells[start..] {
            cell.clear(attrs);
        }
        self.dirty = self.cells.len();
    }

    pub fn erase(&mut self, i: u16, attrs: crate::attrs::Attrs) {
        self.touch(usize::from(i) + 2);
        let wide = self.cells[usize::from(i)].is_wide();
        self.clear_wide(i);
        self.cells[usize::from(i)].clear(attrs);
        if i == self.cols() - if wide { 2 } else { 1 } {
            self.wrapped = false;
        }
    }

    pub fn truncate(&mut self, len: u16) {
        self.cells.truncate(usize::from(len));
        self.dirty = self.dirty.min(self.cells.len());
        self.wrapped = false;
        let last_live = self.cells.len() <= self.dirty;
        let last_cell = &mut self.cells[usize::from(len) - 1];
        if last_live && last_cell.is_wide() {
            last_cell.clear(*last_cell.attrs());
        }
    }

    pub fn resize(&mut self, len: u16, cell: crate::Cell) {
        let shrinking = usize::from(len) < self.cells.len();
        let blank = cell == crate::Cell::new();
        if !blank {
            // The new cells follow the old ones: those must read as they are.
            self.touch_all();
        }
        self.cells.resize(usize::from(len), cell);
        self.wrapped = false;
        if blank {
            self.dirty = self.dirty.min(self.cells.len());
        } else {
            self.dirty = self.cells.len();
        }
        // brokertui patch: as `truncate` does, a wide character cut in half by the new
        // width becomes blank (upstream left it wide, and writing over it then indexed
        // past the row and panicked).
        if shrinking && self.cells.len() <= self.dirty {
            if let Some(last) = self.cells.last_mut() {
                if last.is_wide() {
                    last.clear(*last.attrs());
                }
            }
        }
    }

    pub fn wrap(&mut self, wrap: bool) {
        self.wrapped = wrap;
    }

    pub fn wrapped(&self) -> bool {
        self.wrapped
    }

    pub fn clear_wide(&mut self, col: u16) {
        self.touch(usize::from(col) + 2);
        let cell = &self.cells[usize::from(col)];
        let other = if cell.is_wide() {
            &mut self.cells[usize::from(col + 1)]
        } else if cell.is_wide_continuation() {
            &mut self.cells[usize::from(col - 1)]
        } else {
            return;
        };
        other.clear(*other.attrs());
    }

    pub fn write_contents(
        &self,
        contents: &mut String,
        start: u16,
        width: u16,
        wrapping: bool,
    ) {
        let mut prev_was_wide = false;

        let mut prev_col = start;
        for (col, cell) in self
            .cells()
            .enumerate()
            .skip(usize::from(start))
            .take(usize::from(width))
        {
            if prev_was_wide {
                prev_was_wide = false;
                continue;
            }
            prev_was_wide = cell.is_wide();

            // we limit the number of cols to a u16 (see Size)
            let col: u16 = col.try_into().unwrap();
            if cell.has_contents() {
                for _ in 0..(col - prev_col) {
                    contents.push(' ');
                }
                prev_col += col - prev_col;

                contents.push_str(cell.contents());
                prev_col += if cell.is_wide() { 2 } else { 1 };
            }
        }
        if prev_col == start && wrapping {
            contents.push('\n');
        }
    }

    pub fn write_contents_formatted(
        &self,
        contents: &mut Vec<u8>,
        start: u16,
        width: u16,
        row: u16,
        wrapping: bool,
        prev_pos: Option<crate::grid::Pos>,
        prev_attrs: Option<crate::attrs::Attrs>,
    ) -> (crate::grid::Pos, crate::attrs::Attrs) {
        let mut prev_was_wide = false;
        let default_cell = crate::Cell::new();

        let mut prev_pos = prev_pos.unwrap_or_else(|| {
            if wrapping {
                crate::grid::Pos {
                    row: row - 1,
                    col: self.cols(),
                }
            } else {
                crate::grid::Pos { row, col: start }
            }
        });
        let mut prev_attrs = prev_attrs.unwrap_or_default();

        let first_cell = self.cell(usize::from(start));
        if wrapping && first_cell == &default_cell {
            let default_attrs = default_cell.attrs();
            if &prev_attrs != default_attrs {
                default_attrs.write_escape_code_diff(contents, &prev_attrs);
                prev_attrs = *default_attrs;
            }
            contents.push(b' ');
            crate::term::Backspace.write_buf(contents);
            crate::term::EraseChar::new(1).write_buf(contents);
            prev_pos = crate::grid::Pos { row, col: 0 };
        }

        let mut erase: Option<(u16, &crate::attrs::Attrs)> = None;
        for (col, cell) in self
            .cells()
            .enumerate()
            .skip(usize::from(start))
            .take(usize::from(width))
        {
            if prev_was_wide {
                prev_was_wide = false;
                continue;
            }
            prev_was_wide = cell.is_wide();

            // we limit the number of cols to a u16 (see Size)
            let col: u16 = col.try_into().unwrap();
            let pos = crate::grid::Pos { row, col };

            if let Some((prev_col, attrs)) = erase {
                if cell.has_contents() || cell.attrs() != attrs {
                    let new_pos = crate::grid::Pos { row, col: prev_col };
                    if wrapping
                        && prev_pos.row + 1 == new_pos.row
                        && prev_pos.col >= self.cols()
                    {
                        if new_pos.col > 0 {
                            contents.extend(
                                " ".repeat(usize::from(new_pos.col))
                                    .as_bytes(),
                            );
                        } else {
                            contents.extend(b" ");
                            crate::term::Backspace.write_buf(contents);
                        }
                    } else {
                        crate::term::MoveFromTo::new(prev_pos, new_pos)
                            .write_buf(contents);
                    }
                    prev_pos = new_pos;
                    if &prev_attrs != attrs {
                        attrs.write_escape_code_diff(contents, &prev_attrs);
                        prev_attrs = *attrs;
                    }
                    crate::term::EraseChar::new(pos.col - prev_col)
                        .write_buf(contents);
                    erase = None;
                }
            }

            if cell != &default_cell {
                let attrs = cell.attrs();
                if cell.has_contents() {
                    if pos != prev_pos {
                        if !wrapping
                            || prev_pos.row + 1 != pos.row
                            || prev_pos.col
                                < self.cols() - u16::from(cell.is_wide())
                            || pos.col != 0
                        {
                            crate::term::MoveFromTo::new(prev_pos, pos)
                                .write_buf(contents);
                        }
                        prev_pos = pos;
                    }

                    if &prev_attrs != attrs {
                        attrs.write_escape_code_diff(contents, &prev_attrs);
                        prev_attrs = *attrs;
                    }

                    prev_pos.col += if cell.is_wide() { 2 } else { 1 };
                    let cell_contents = cell.contents();
                    contents.extend(cell_contents.as_bytes());
                } else if erase.is_none() {
                    erase = Some((pos.col, attrs));
                }
            }
        }
        if let Some((prev_col, attrs)) = erase {
            let new_pos = crate::grid::Pos { row, col: prev_col };
            if wrapping
                && prev_pos.row + 1 == new_pos.row
                && prev_pos.col >= self.cols()
            {
                if new_pos.col > 0 {
                    contents.extend(
                        " ".repeat(usize::from(new_pos.col)).as_bytes(),
                    );
                } else {
                    contents.extend(b" ");
                    crate::term::Backspace.write_buf(contents);
                }
            } else {
                crate::term::MoveFromTo::new(prev_pos, new_pos)
                    .write_buf(contents);
            }
            prev_pos = new_pos;
            if &prev_attrs != attrs {
                attrs.write_escape_code_diff(contents, &prev_attrs);
                prev_attrs = *attrs;
            }
            crate::term::ClearRowForward.write_buf(contents);
        }

        (prev_pos, prev_attrs)
    }

    // while it's true that most of the logic in this is identical to
    // write_contents_formatted, i can't figure out how to break out the
    // common parts without making things noticeably slower.
    pub fn write_contents_diff(
        &self,
        contents: &mut Vec<u8>,
        prev: &Self,
        start: u16,
        width: u16,
        row: u16,
        wrapping: bool,
        prev_wrapping: bool,
        mut prev_pos: crate::grid::Pos,
        mut prev_attrs: crate::attrs::Attrs,
    ) -> (crate::grid::Pos, crate::attrs::Attrs) {
        let mut prev_was_wide = false;

        let first_cell = self.cell(usize::from(start));
        let prev_first_cell = prev.cell(usize::from(start));
        if wrapping
            && !prev_wrapping
            && first_cell == prev_first_cell
            && prev_pos.row + 1 == row
            && prev_pos.col
                >= self.cols() - u16::from(prev_first_cell.is_wide())
        {
            let first_cell_attrs = first_cell.attrs();
            if &prev_attrs != first_cell_attrs {
                first_cell_attrs
                    .write_escape_code_diff(contents, &prev_attrs);
                prev_attrs = *first_cell_attrs;
            }
            let mut cell_contents = prev_first_cell.contents();
            let need_erase = if cell_contents.is_empty() {
                cell_contents = " ";
                true
            } else {
                false
            };
            contents.extend(cell_contents.as_bytes());
            crate::term::Backspace.write_buf(contents);
            if prev_first_cell.is_wide() {
                crate::term::Backspace.write_buf(contents);
            }
            if need_erase {
                crate::term::EraseChar::new(1).write_buf(contents);
            }
            prev_pos = crate::grid::Pos { row, col: 0 };
        }

        let mut erase: Option<(u16, &crate::attrs::Attrs)> = None;
        for (col, (cell, prev_cell)) in self
            .cells()
            .zip(prev.cells())
            .enumerate()
            .skip(usize::from(start))
            .take(usize::from(width))
        {
            if prev_was_wide {
                prev_was_wide = false;
                continue;
            }
            prev_was_wide = cell.is_wide();

            // we limit the number of cols to a u16 (see Size)
            let col: u16 = col.try_into().unwrap();
            let pos = crate::grid::Pos { row, col };

            if let Some((prev_col, attrs)) = erase {
                if cell.has_contents() || cell.attrs() != attrs {
                    let new_pos = crate::grid::Pos { row, col: prev_col };
                    if wrapping
                        && prev_pos.row + 1 == new_pos.row
                        && prev_pos.col >= self.cols()
                    {
                        if new_pos.col > 0 {
                            contents.extend(
                                " ".repeat(usize::from(new_pos.col))
                                    .as_bytes(),
                            );
                        } else {
                            contents.extend(b" ");
                            crate::term::Backspace.write_buf(contents);
                        }
                    } else {
                        crate::term::MoveFromTo::new(prev_pos, new_pos)
                            .write_buf(contents);
                    }
                    prev_pos = new_pos;
                    if &prev_attrs != attrs {
                        attrs.write_escape_code_diff(contents, &prev_attrs);
                        prev_attrs = *attrs;
                    }
                    crate::term::EraseChar::new(pos.col - prev_col)
                        .write_buf(contents);
                    erase = None;
                }
            }

            if cell != prev_cell {
                let attrs = cell.attrs();
                if cell.has_contents() {
                    if pos != prev_pos {
                        if !wrapping
                            || prev_pos.row + 1 != pos.row
                            || prev_pos.col
                                < self.cols() - u16::from(cell.is_wide())
                            || pos.col != 0
                        {
                            crate::term::MoveFromTo::new(prev_pos, pos)
                                .write_buf(contents);
                        }
                        prev_pos = pos;
                    }

                    if &prev_attrs != attrs {
                        attrs.write_escape_code_diff(contents, &prev_attrs);
                        prev_attrs = *attrs;
                    }

                    prev_pos.col += if cell.is_wide() { 2 } else { 1 };
                    contents.extend(cell.contents().as_bytes());
                } else if erase.is_none() {
                    erase = Some((pos.col, attrs));
                }
            }
        }
        if let Some((prev_col, attrs)) = erase {
            let new_pos = crate::grid::Pos { row, col: prev_col };
            if wrapping
                && prev_pos.row + 1 == new_pos.row
                && prev_pos.col >= self.cols()
            {
                if new_pos.col > 0 {
                    contents.extend(
                        " ".repeat(usize::from(new_pos.col)).as_bytes(),
                    );
                } else {
                    contents.extend(b" ");
                    crate::term::Backspace.write_buf(contents);
                }
            } else {
                crate::term::MoveFromTo::new(prev_pos, new_pos)
                    .write_buf(contents);
            }
            prev_pos = new_pos;
            if &prev_attrs != attrs {
                attrs.write_escape_code_diff(contents, &prev_attrs);
                prev_attrs = *attrs;
            }
            crate::term::ClearRowForward.write_buf(contents);
        }

        // if this row is going from wrapped to not wrapped, we need to erase
        // and redraw the last character to break wrapping. if this row is
        // wrapped, we need to redraw the last character without erasing it to
        // position the cursor after the end of the line correctly so that
        // drawing the next line can just start writing and be wrapped.
        if (!self.wrapped && prev.wrapped) || (!prev.wrapped && self.wrapped)
        {
            let end_pos = if self
                .cell(usize::from(self.cols() - 1))
                .is_wide_continuation()
            {
                crate::grid::Pos {
                    row,
                    col: self.cols() - 2,
                }
            } else {
                crate::grid::Pos {
                    row,
                    col: self.cols() - 1,
                }
            };
            crate::term::MoveFromTo::new(prev_pos, end_pos)
                .write_buf(contents);
            prev_pos = end_pos;
            if !self.wrapped {
                crate::term::EraseChar::new(1).write_buf(contents);
            }
            let end_cell = self.cell(usize::from(end_pos.col));
            if end_cell.has_contents() {
                let attrs = end_cell.attrs();
                if &prev_attrs != attrs {
                    attrs.write_escape_code_diff(contents, &prev_attrs);
                    prev_attrs = *attrs;
                }
                contents.extend(end_cell.contents().as_bytes());
                prev_pos.col += if end_cell.is_wide() { 2 } else { 1 };
            }
        }

        (prev_pos, prev_attrs)
    }
}
