//! Rendering a vt100 screen into a ratatui buffer.
//!
//! This is the hot path of every frame (up to 16 panes of 200x50), so it copies
//! cells straight from a row slice (`vt100::Screen::row_cells`, our vendored patch)
//! into the buffer's backing `Vec` without building `Line`s/`Span`s or allocating
//! per cell. Upstream's only per-cell API, `Screen::cell`, costs ~18 ns a call (it
//! rebuilds the scrollback/row iterators each time); the slice costs ~3 ns a cell.

use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::widgets::Widget;

/// Draws the visible part of `screen` (whatever its scrollback position is) into `area`.
/// Cells outside the screen size are left blank; a screen larger than `area` is clipped.
///
/// "Left blank" means untouched: ratatui clears the frame buffer before every draw, and not
/// writing there keeps any background a surrounding widget painted.
pub struct PaneWidget<'a> {
    pub screen: &'a vt100::Screen,
    /// Draw a fake block cursor. Several panes are visible at once but the terminal has
    /// only one real cursor, so each pane shows its own by reversing the cell under it.
    pub show_cursor: bool,
}

impl Widget for PaneWidget<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        // Never index outside the buffer, even if the caller's layout is off.
        let area = area.intersection(buf.area);
        let (rows, cols) = self.screen.size();
        let height = area.height.min(rows);
        let width = area.width.min(cols);

        for row in 0..height {
            let start = buf.index_of(area.x, area.y + row);
            let line = &mut buf.content[start..start + usize::from(width)];
            render_row(self.screen, row, line);
        }

        if self.show_cursor
            && let Some((x, y)) = cursor_cell(self.screen)
            && x < width
            && y < height
        {
            buf[(area.x + x, area.y + y)]
                .modifier
                .toggle(Modifier::REVERSED);
        }
    }
}

/// Copies one screen row into `line`, whose length is the number of visible columns.
fn render_row(screen: &vt100::Screen, row: u16, line: &mut [Cell]) {
    let Some((cells, row_width)) = screen.row_cells(row) else {
        return;
    };
    let row_width = line.len().min(row_width);
    // Past the written cells the row is blank: drawn as a reset cell, like any blank.
    for dst in line.get_mut(cells.len()..row_width).into_iter().flatten() {
        dst.reset();
    }
    let width = row_width.min(cells.len());
    let mut col = 0;
    while col < width {
        let src = &cells[col];
        let dst = &mut line[col];
        // A reset cell has no symbol, which ratatui draws (and compares) as a space: empty
        // cells, wide continuations and a wide char cut in half by the right edge (it can't
        // be drawn without spilling into the next pane) all end up blank but coloured.
        let wide_fits = src.is_wide() && col + 1 < width;
        dst.reset();
        match src.ascii() {
            // Most cells: a prepared `&str`, no UTF-8 validation of the cell's bytes.
            Some(b) => {
                dst.set_symbol(
                    ASCII_STR
                        .get(usize::from(b)..=usize::from(b))
                        .unwrap_or(" "),
                );
            }
            None if src.has_contents() && (!src.is_wide() || wide_fits) => {
                dst.set_symbol(src.contents());
            }
            None => {}
        }
        dst.fg = to_color(src.fgcolor());
        dst.bg = to_color(src.bgcolor());
        dst.modifier = modifier(src);
        if wide_fits && src.has_contents() {
            // ratatui's own convention (see `Buffer::set_stringn`): the column covered by
            // a wide symbol holds an empty cell, and the diff skips it based on the
            // symbol's width. `CellDiffOption::Skip` would be wrong: it means "never
            // draw here".
            line[col + 1].reset();
            col += 2;
            continue;
        }
        col += 1;
    }
}

/// Every ASCII byte in order, so `ASCII_STR[b..=b]` is the one-character string for `b`.
const ASCII_STR: &str = "\0\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\
    \x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f \
    !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\x7f";

fn modifier(cell: &vt100::Cell) -> Modifier {
    let mut m = Modifier::empty();
    m.set(Modifier::BOLD, cell.bold());
    m.set(Modifier::DIM, cell.dim());
    m.set(Modifier::ITALIC, cell.italic());
    m.set(Modifier::UNDERLINED, cell.underline());
    m.set(Modifier::REVERSED, cell.inverse());
    m
}

/// Where to draw the fake cursor, as (col, row) on the screen, or `None` if it shouldn't be
/// drawn: hidden by the program (DECTCEM) or scrolled back, where the cursor's row isn't on
/// screen at all.
pub fn cursor_cell(screen: &vt100::Screen) -> Option<(u16, u16)> {
    if screen.hide_cursor() || screen.scrollback() != 0 {
        return None;
    }
    let (row, col) = screen.cursor_position();
    // After writing the last column vt100 parks the cursor one past it (pending wrap);
    // xterm shows it on the last column.
    let mut col = col.min(screen.size().1.saturating_sub(1));
    // On the right half of a wide char the highlight must go on the left half, which is
    // the cell ratatui actually draws.
    if col > 0
        && screen
            .cell(row, col)
            .is_some_and(vt100::Cell::is_wide_continuation)
    {
        col -= 1;
    }
    Some((col, row))
}

/// Default→Reset, Idx(i)→Indexed(i), Rgb→Rgb.
///
/// Indexed colours stay indexed (rather than being mapped to ratatui's named colours) so
/// the user's terminal palette applies exactly as it would outside the multiplexer.
pub fn to_color(c: vt100::Color) -> Color {
    match c {
        vt100::Color::Default => Color::Reset,
        vt100::Color::Idx(i) => Color::Indexed(i),
        vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;

    fn parser(rows: u16, cols: u16, input: &str) -> vt100::Parser {
        let mut p = vt100::Parser::new(rows, cols, 100);
        p.process(input.as_bytes());
        p
    }

    fn render(screen: &vt100::Screen, area: Rect, show_cursor: bool) -> Buffer {
        let mut buf = Buffer::empty(area);
        PaneWidget {
            screen,
            show_cursor,
        }
        .render(area, &mut buf);
        buf
    }

    fn render_sized(input: &str, rows: u16, cols: u16) -> Buffer {
        let p = parser(rows, cols, input);
        render(p.screen(), Rect::new(0, 0, cols, rows), false)
    }

    #[test]
    fn to_color_maps_every_kind() {
        assert_eq!(to_color(vt100::Color::Default), Color::Reset);
        assert_eq!(to_color(vt100::Color::Idx(3)), Color::Indexed(3));
        assert_eq!(to_color(vt100::Color::Rgb(1, 2, 3)), Color::Rgb(1, 2, 3));
    }

    #[test]
    fn colours_indexed_256_and_truecolor() {
        let buf = render_sized(
            "\x1b[31mr\x1b[0m\x1b[38;5;200;48;5;17mi\x1b[0m\x1b[38;2;10;20;30;48;2;40;50;60mt\x1b[44m ",
            1,
            5,
        );
        assert_eq!(buf[(0, 0)].symbol(), "r");
        assert_eq!(buf[(0, 0)].fg, Color::Indexed(1));
        assert_eq!(buf[(0, 0)].bg, Color::Reset);
        assert_eq!(buf[(1, 0)].fg, Color::Indexed(200));
        assert_eq!(buf[(1, 0)].bg, Color::Indexed(17));
        assert_eq!(buf[(2, 0)].fg, Color::Rgb(10, 20, 30));
        assert_eq!(buf[(2, 0)].bg, Color::Rgb(40, 50, 60));
        // A written space keeps its background.
        assert_eq!(buf[(3, 0)].symbol(), " ");
        assert_eq!(buf[(3, 0)].bg, Color::Indexed(4));
    }

    #[test]
    fn erased_cells_are_spaces_with_their_background() {
        // EL with a background colour set paints the erased cells (BCE).
        let buf = render_sized("ab\x1b[42m\x1b[K", 1, 4);
        assert_eq!(buf[(2, 0)].symbol(), " ");
        assert_eq!(buf[(2, 0)].bg, Color::Indexed(2));
        assert_eq!(buf[(3, 0)].bg, Color::Indexed(2));
    }

    #[test]
    fn attributes() {
        let buf = render_sized(
            "\x1b[1mb\x1b[0m\x1b[2md\x1b[0m\x1b[3mi\x1b[0m\x1b[4mu\x1b[0m\x1b[7mr\x1b[0m\x1b[1;4mx\x1b[0mn",
            1,
            7,
        );
        let mods: Vec<Modifier> = (0..7).map(|x| buf[(x, 0)].modifier).collect();
        assert_eq!(
            mods,
            [
                Modifier::BOLD,
                Modifier::DIM,
                Modifier::ITALIC,
                Modifier::UNDERLINED,
                Modifier::REVERSED,
                Modifier::BOLD | Modifier::UNDERLINED,
                Modifier::empty(),
            ]
        );
    }

    #[test]
    fn wide_chars_take_two_cells() {
        let buf = render_sized("世界x", 1, 6);
        assert_eq!(buf, Buffer::with_lines(["世界x "]));
        assert_eq!(buf[(0, 0)].symbol(), "世");
        assert_eq!(buf[(2, 0)].symbol(), "界");
        assert_eq!(buf[(4, 0)].symbol(), "x");
    }

    /// A row scrolled off the top comes back as the new bottom row without being wiped
    /// (vt100 patch): what it held before must not show, and its blank cells are drawn
    /// like any blank cell (over whatever the frame held there).
    #[test]
    fn a_recycled_row_draws_blank_where_its_old_text_was() {
        let mut p = vt100::Parser::new(2, 6, 0);
        p.process(b"abcdef\r\nxy\r\nz");
        let area = Rect::new(0, 0, 6, 2);
        let mut buf = Buffer::empty(area);
        buf.set_style(area, ratatui::style::Style::new().bg(Color::Red));
        PaneWidget {
            screen: p.screen(),
            show_cursor: false,
        }
        .render(area, &mut buf);
        assert_eq!(buf, Buffer::with_lines(["xy    ", "z     "]));
    }

    #[test]
    fn combining_marks_stay_with_their_base() {
        let buf = render_sized("e\u{301}x", 1, 3);
        assert_eq!(buf[(0, 0)].symbol(), "e\u{301}");
        assert_eq!(buf[(1, 0)].symbol(), "x");
    }

    #[test]
    fn emoji_is_wide() {
        let buf = render_sized("🦀!", 1, 4);
        assert_eq!(buf, Buffer::with_lines(["🦀! "]));
    }

    #[test]
    fn wide_char_cut_by_the_right_edge_becomes_blank() {
        let p = parser(1, 4, "a世b");
        let buf = render(p.screen(), Rect::new(0, 0, 2, 1), false);
        assert_eq!(buf, Buffer::with_lines(["a "]));
    }

    #[test]
    fn cursor_is_reversed() {
        let p = parser(2, 4, "ab\r\nc");
        let buf = render(p.screen(), Rect::new(0, 0, 4, 2), true);
        assert_eq!(buf[(1, 1)].modifier, Modifier::REVERSED);
        assert_eq!(buf[(0, 1)].modifier, Modifier::empty());
    }

    #[test]
    fn cursor_toggles_reverse_on_inverse_text() {
        let p = parser(1, 4, "\x1b[7mab\x1b[D");
        let buf = render(p.screen(), Rect::new(0, 0, 4, 1), true);
        assert_eq!(buf[(0, 0)].modifier, Modifier::REVERSED);
        assert_eq!(buf[(1, 0)].modifier, Modifier::empty());
    }

    #[test]
    fn cursor_not_drawn_when_hidden_disabled_or_scrolled_back() {
        let area = Rect::new(0, 0, 4, 2);
        let hidden = parser(2, 4, "\x1b[?25l");
        let buf = render(hidden.screen(), area, true);
        assert_eq!(buf[(0, 0)].modifier, Modifier::empty());

        let shown = parser(2, 4, "");
        let buf = render(shown.screen(), area, false);
        assert_eq!(buf[(0, 0)].modifier, Modifier::empty());

        let mut scrolled = parser(2, 4, "1\r\n2\r\n3\r\n4");
        scrolled.screen_mut().set_scrollback(1);
        let buf = render(scrolled.screen(), area, true);
        assert_eq!(buf, Buffer::with_lines(["2   ", "3   "]));
    }

    #[test]
    fn cursor_after_last_column_stays_on_it() {
        let p = parser(2, 3, "abc");
        let buf = render(p.screen(), Rect::new(0, 0, 3, 2), true);
        assert_eq!(buf[(2, 0)].modifier, Modifier::REVERSED);
    }

    #[test]
    fn cursor_on_right_half_of_wide_char_marks_left_half() {
        let p = parser(1, 4, "世\x1b[D");
        assert_eq!(p.screen().cursor_position(), (0, 1));
        let buf = render(p.screen(), Rect::new(0, 0, 4, 1), true);
        assert_eq!(buf[(0, 0)].modifier, Modifier::REVERSED);
    }

    #[test]
    fn clipped_to_smaller_area() {
        let p = parser(3, 6, "abcdef\r\nghijkl\r\nmnopqr");
        let buf = render(p.screen(), Rect::new(0, 0, 4, 2), false);
        assert_eq!(buf, Buffer::with_lines(["abcd", "ghij"]));
    }

    #[test]
    fn area_larger_than_screen_leaves_rest_untouched() {
        let p = parser(1, 2, "ab");
        let mut buf = Buffer::filled(Rect::new(0, 0, 4, 2), Cell::new("."));
        PaneWidget {
            screen: p.screen(),
            show_cursor: false,
        }
        .render(buf.area, &mut buf);
        assert_eq!(buf, Buffer::with_lines(["ab..", "...."]));
    }

    #[test]
    fn area_offset_and_beyond_buffer() {
        let p = parser(2, 3, "abc\r\ndef");
        let mut buf = Buffer::empty(Rect::new(0, 0, 5, 3));
        // Partly outside the buffer: must clip, not panic.
        PaneWidget {
            screen: p.screen(),
            show_cursor: false,
        }
        .render(Rect::new(3, 1, 3, 5), &mut buf);
        assert_eq!(buf, Buffer::with_lines(["     ", "   ab", "   de"]));
    }

    #[test]
    fn overwrites_previous_styles() {
        let p = parser(1, 2, "ab");
        let mut buf = Buffer::filled(
            Rect::new(0, 0, 2, 1),
            Cell::new("z")
                .set_bg(Color::Red)
                .set_style(Modifier::BOLD)
                .clone(),
        );
        PaneWidget {
            screen: p.screen(),
            show_cursor: false,
        }
        .render(buf.area, &mut buf);
        assert_eq!(buf, Buffer::with_lines(["ab"]));
    }

    #[test]
    fn snapshot_small_screen() {
        let p = parser(
            4,
            12,
            "\x1b[1mbrokertui\x1b[0m $\r\n\x1b[32mok\x1b[0m 世界\r\nline three\r\n$ ",
        );
        let mut terminal = Terminal::new(TestBackend::new(14, 5)).unwrap();
        terminal
            .draw(|f| {
                let area = Rect::new(1, 1, 12, 4);
                f.render_widget(
                    PaneWidget {
                        screen: p.screen(),
                        show_cursor: true,
                    },
                    area,
                );
            })
            .unwrap();
        insta::assert_snapshot!(terminal.backend());
    }

    #[test]
    fn ascii_table_holds_every_byte_at_its_own_index() {
        assert_eq!(ASCII_STR.len(), 128);
        for (i, b) in ASCII_STR.bytes().enumerate() {
            assert_eq!(usize::from(b), i);
        }
    }
}
