//! Differential test of our vendored vt100 patches (vendor/vt100/PATCHES.md): random
//! streams of text, wide and combining characters, controls and escape sequences go through
//! a parser on the fast paths and one on upstream's paths; every cell, the cursor, wrap
//! flags and the formatted screen must match, with resizes in between. Sizes start at 1x1,
//! where upstream panicked.

use proptest::prelude::*;

const PIECES: &[&str] = &[
    "a",
    "xyz",
    " ",
    "\r",
    "\n",
    "\x08",
    "\t",
    "世",
    "界a",
    "e\u{301}",
    "\u{200b}",
    "\u{fffd}",
    "0123456789012345678901234567890123456789",
    "\x1b[31m",
    "\x1b[1;44m",
    "\x1b[0m",
    "\x1b[5;190H",
    "\x1b[H",
    "\x1b[2J",
    "\x1b[K",
    "\x1b[1K",
    "\x1b[2K",
    "\x1b[3@",
    "\x1b[2P",
    "\x1b[4h",
    "\x1b[4l",
    "\x1b[3b",
    "\x1b(0",
    "\x1b(B",
    "\x1b)0",
    "\x0e",
    "\x0f",
    "\x1bH",
    "\x1b[3g",
    "\x1b[g",
    "\x1b[2Z",
    "\x1b[2I",
    "\x1b[s",
    "\x1b[u",
    "\x1b#8",
    "\x1bD",
    "\x1bE",
    "\x1b[?47h",
    "\x1b[?47l",
    "\x1b[5`",
    "\x1b[2;3f",
    "\x1b[?7l",
    "\x1b[?7h",
    "\x1b[3;10r",
    "\x1b[r",
    "\x1b[?1049h",
    "\x1b[?1049l",
    "\x1b7",
    "\x1b8",
    "\x1bM",
    "\x1b[10G",
    "\x1b[199G",
    "\x1b[200G",
    "\x1b[?6h",
    "\x1b[?6l",
    "\x1b[L",
    "\x1b[M",
    "\x1b[S",
    "\x1b[T",
    "\x1b[X",
    "\x1b[3J",
    "\x1bc",
];

fn cell_view(c: &vt100::Cell) -> String {
    format!(
        "{:?}{}{}{:?}{:?}{}{}{}{}",
        c.contents(),
        c.is_wide(),
        c.is_wide_continuation(),
        c.fgcolor(),
        c.bgcolor(),
        c.bold(),
        c.italic(),
        c.underline(),
        c.inverse()
    )
}

/// A blank cell, as a fresh screen has them.
fn upstream_blank() -> &'static vt100::Cell {
    static BLANK: std::sync::OnceLock<vt100::Parser> = std::sync::OnceLock::new();
    BLANK
        .get_or_init(|| vt100::Parser::new(1, 1, 0))
        .screen()
        .cell(0, 0)
        .expect("a cell")
}

fn assert_same(fast: &vt100::Screen, upstream: &vt100::Screen) {
    assert_eq!(fast.contents_formatted(), upstream.contents_formatted());
    assert_eq!(fast.cursor_position(), upstream.cursor_position());
    let (rows, cols) = upstream.size();
    for row in 0..rows {
        assert_eq!(
            fast.row_wrapped(row),
            upstream.row_wrapped(row),
            "row {row}"
        );
        // A row kept from before a resize (scrollback) may be narrower than the screen;
        // `cell` then says `None` past its end. The slice holds the cells written since
        // the row was last blank; past it, up to the row's width, every cell is blank.
        let (slice, width) = fast.row_cells(row).expect("visible row");
        assert!(slice.len() <= width);
        for col in 0..cols {
            let by_cell = fast.cell(row, col);
            assert_eq!(by_cell.is_some(), usize::from(col) < width);
            match (by_cell, slice.get(usize::from(col))) {
                (Some(by_cell), Some(in_slice)) => assert!(std::ptr::eq(by_cell, in_slice)),
                (Some(by_cell), None) => assert_eq!(
                    cell_view(by_cell),
                    cell_view(upstream_blank()),
                    "cell {row},{col} past the written cells"
                ),
                _ => {}
            }
            assert_eq!(
                by_cell.map(cell_view),
                upstream.cell(row, col).map(cell_view),
                "cell {row},{col}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fast_paths_leave_the_same_screen_as_upstream(
        rows in 1u16..30,
        cols in 1u16..60,
        scrollback in 0usize..6,
        // Past the pieces' indices: a resize to (r, c).
        stream in prop::collection::vec((0..PIECES.len() + 4, 1u16..30, 1u16..60), 1..300),
        scroll_to in 0usize..8,
    ) {
        let mut fast = vt100::Parser::new(rows, cols, scrollback);
        let mut upstream = vt100::Parser::new(rows, cols, scrollback);
        upstream.screen_mut().set_upstream_paths(true);
        for &(i, r, c) in &stream {
            match PIECES.get(i) {
                Some(piece) => {
                    fast.process(piece.as_bytes());
                    upstream.process(piece.as_bytes());
                }
                None => {
                    fast.screen_mut().set_size(r, c);
                    upstream.screen_mut().set_size(r, c);
                }
            }
        }
        assert_same(fast.screen(), upstream.screen());
        // The scrollback too: the rows recycled out of it must not show up there.
        fast.screen_mut().set_scrollback(scroll_to);
        upstream.screen_mut().set_scrollback(scroll_to);
        assert_same(fast.screen(), upstream.screen());
    }
}

#[test]
fn upstream_panics_are_gone() {
    // These panicked in upstream 0.16.2 (a line wrapping on a 1-row screen; a wide
    // character on a 1-column one) — a worker resized to 1 row would have died.
    let mut one_row = vt100::Parser::new(1, 8, 0);
    one_row.process(b"0123456789abcdef");
    assert_eq!(one_row.screen().contents(), "89abcdef");
    let mut one_col = vt100::Parser::new(5, 1, 0);
    one_col.process("世a".as_bytes());
    assert_eq!(one_col.screen().contents(), "a");
    // Narrowing through a wide character, then writing over its cut half, panicked too.
    let mut narrowed = vt100::Parser::new(1, 12, 0);
    narrowed.process("\t世世".as_bytes());
    narrowed.screen_mut().set_size(1, 9);
    narrowed.process(b"a");
    // The line rewraps (the second 世 moves down to stay whole), and the cursor with it.
    assert_eq!(narrowed.screen().contents(), "世世a");
}

/// Every count a program sends is clamped to the screen: a huge one costs no more than the
/// largest that makes a difference (`CSI 999999999 @` cost ~0.9 s of worker CPU per 12 bytes
/// before, so ten of them froze a worker).
#[test]
fn huge_counts_in_every_parameterised_sequence_cost_next_to_nothing() {
    let finals = "@ABCDEFGHIJKLMPSTXZ`abcdefghlmnqrstuxz";
    let mut stream = Vec::new();
    for _ in 0..20 {
        for c in finals.chars() {
            // Scroll regions and the cursor in the middle, where each count matters most.
            stream.extend_from_slice(b"\x1b[5;45r\x1b[20;100H\x1b[44m");
            stream.extend_from_slice(format!("\x1b[999999999{c}").as_bytes());
            stream.extend_from_slice(format!("\x1b[999999999;999999999{c}").as_bytes());
            stream.extend_from_slice(format!("\x1b[?999999999{c}").as_bytes());
        }
    }
    let mut parser = vt100::Parser::new(50, 200, 1000);
    let started = std::time::Instant::now();
    parser.process(&stream);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(2),
        "{} sequences took {took:?}",
        finals.len() * 60
    );
}

/// Insert mode (`CSI 4 h`) pushes the line right, as tmux does; `mc`'s function-key bar lost a
/// cell without it.
#[test]
fn insert_mode_inserts_and_survives_a_snapshot() {
    let mut p = vt100::Parser::new(5, 20, 0);
    p.process(b"abcdef\x1b[4D\x1b[4hXY\x1b[4l");
    assert_eq!(p.screen().contents(), "abXYcdef");
    p.process(b"Z");
    assert_eq!(
        p.screen().contents(),
        "abXYZdef",
        "overwrites again after CSI 4 l"
    );
    // A parser rebuilt from a snapshot taken in insert mode keeps inserting.
    let mut q = vt100::Parser::new(5, 20, 0);
    q.process(b"12345\x1b[3D\x1b[4h");
    let mut r = vt100::Parser::new(5, 20, 0);
    r.process(&q.screen().state_formatted());
    q.process(b"X");
    r.process(b"X");
    assert_eq!(q.screen().contents(), "12X345");
    assert_eq!(r.screen().contents(), q.screen().contents());
}

/// Inserted characters and lines take the current background colour (tmux fills them too).
#[test]
fn inserted_cells_and_lines_take_the_background_colour() {
    let blue = vt100::Color::Idx(4);
    let mut p = vt100::Parser::new(5, 20, 0);
    p.process(b"abcdef\x1b[1;3H\x1b[44m\x1b[3@\x1b[0m");
    assert_eq!(p.screen().contents().lines().next(), Some("ab   cdef"));
    for col in 2..5 {
        assert_eq!(
            p.screen().cell(0, col).unwrap().bgcolor(),
            blue,
            "col {col}"
        );
    }
    assert_eq!(
        p.screen().cell(0, 5).unwrap().bgcolor(),
        vt100::Color::Default
    );
    p.process(b"\x1b[2;1H\x1b[44m\x1b[L\x1b[0m");
    for col in [0, 10, 19] {
        assert_eq!(
            p.screen().cell(1, col).unwrap().bgcolor(),
            blue,
            "col {col}"
        );
    }
}

/// Every row of a screen and its scrollback, oldest first, with its wrap flag.
fn history_and_screen(p: &mut vt100::Parser) -> Vec<(String, bool)> {
    let (rows, cols) = p.screen().size();
    let back = p.screen().scrollback_rows();
    let mut out = Vec::new();
    for top in (1..=back).rev() {
        p.screen_mut().set_scrollback(top);
        let line = p.screen().rows(0, cols).next().unwrap();
        out.push((line, p.screen().row_wrapped(0)));
    }
    p.screen_mut().set_scrollback(0);
    for (r, line) in p.screen().rows(0, cols).enumerate() {
        out.push((line, p.screen().row_wrapped(r as u16)));
    }
    assert_eq!(out.len(), back + rows as usize);
    out
}

/// A long line narrowed and widened again comes back whole (tmux rewraps it); before, what
/// fell off the right edge was gone for good.
#[test]
fn a_long_line_rewraps_when_narrowed_and_widened() {
    let line: String = (0..300).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let mut p = vt100::Parser::new(10, 200, 100);
    p.process(format!("$ {line}\r\n$ ").as_bytes());
    p.screen_mut().set_size(10, 100);
    // As in tmux, the blank rows under the cursor stay: the first two rows of the line
    // go into the scrollback.
    let rows: Vec<String> = history_and_screen(&mut p)
        .into_iter()
        .map(|(l, _)| l)
        .filter(|r| !r.is_empty())
        .collect();
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(p.screen().scrollback_rows(), 2);
    assert_eq!(p.screen().cursor_position(), (2, 2));
    p.screen_mut().set_size(10, 200);
    assert_eq!(p.screen().contents(), format!("$ {line}\n$ "));
    assert_eq!(p.screen().cursor_position(), (2, 2));
    p.process(b"typed");
    assert!(p.screen().contents().ends_with("\n$ typed"));
}

/// Shrinking the height keeps the cursor's line in view and moves the top into the
/// scrollback; growing pulls it back (before, the bottom rows were cut off).
#[test]
fn shrinking_keeps_the_cursor_line_and_growing_pulls_history_back() {
    let mut p = vt100::Parser::new(10, 20, 100);
    for i in 0..10 {
        p.process(format!("line {i}\r\n").as_bytes());
    }
    p.process(b"$ ");
    p.screen_mut().set_size(4, 20);
    assert_eq!(p.screen().contents(), "line 7\nline 8\nline 9\n$ ");
    assert_eq!(p.screen().cursor_position(), (3, 2));
    p.screen_mut().set_size(10, 20);
    assert!(p.screen().contents().ends_with("line 8\nline 9\n$ "));
    assert_eq!(p.screen().cursor_position(), (9, 2));
    // Nothing lost or doubled on the way.
    let all = history_and_screen(&mut p);
    let texts: Vec<&str> = all.iter().map(|(l, _)| l.as_str()).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
    assert_eq!(
        &texts[texts.len() - 11..texts.len() - 1],
        expected.as_slice()
    );
}

/// Colours, wide characters and the cursor's place survive a round of narrowing and
/// widening; the alternate screen is left to its program.
#[test]
fn reflow_keeps_colours_wide_characters_and_leaves_the_alternate_screen() {
    let mut p = vt100::Parser::new(5, 12, 100);
    p.process("\x1b[31mred text 世界 wide\x1b[0m end\r\nnext".as_bytes());
    let before = p.screen().contents();
    p.screen_mut().set_size(5, 7);
    p.screen_mut().set_size(5, 12);
    assert_eq!(p.screen().contents(), before);
    assert_eq!(
        p.screen().cell(0, 0).unwrap().fgcolor(),
        vt100::Color::Idx(1)
    );
    assert_eq!(p.screen().cursor_position(), (2, 4));

    let mut alt = vt100::Parser::new(5, 20, 100);
    alt.process(b"\x1b[?1049hfull screen long line here");
    alt.screen_mut().set_size(5, 10);
    // Cut, not rewrapped: the second row keeps what it had.
    assert_eq!(alt.screen().contents(), "full scree\ne here");
}

/// The scrollback sent to a client that attaches rebuilds the same history, wrap flags
/// included, in front of the same screen.
#[test]
fn scrollback_formatted_rebuilds_the_same_history() {
    let mut p = vt100::Parser::new(4, 10, 1000);
    for i in 0..30 {
        p.process(format!("\x1b[3{}mrow {i}\x1b[0m tail\r\n", i % 8).as_bytes());
    }
    p.process(b"a line long enough to wrap twice\r\n\x1b[44m blue \x1b[0m\r\n$ ");
    let mut q = vt100::Parser::new(4, 10, 1000);
    q.process(&p.screen().scrollback_formatted(usize::MAX));
    q.process(&p.screen().state_formatted());
    assert_eq!(q.screen().scrollback_rows(), p.screen().scrollback_rows());
    // The one thing not carried: that the last history row wraps onto the screen.
    let mut expected = history_and_screen(&mut p);
    let last = p.screen().scrollback_rows() - 1;
    assert!(expected[last].1);
    expected[last].1 = false;
    assert_eq!(history_and_screen(&mut q), expected);
    assert_eq!(q.screen().cursor_position(), p.screen().cursor_position());
    q.screen_mut().set_scrollback(5);
    p.screen_mut().set_scrollback(5);
    assert_eq!(
        q.screen().contents_formatted(),
        p.screen().contents_formatted()
    );
    // Bounded: only the last rows asked for.
    let mut r = vt100::Parser::new(4, 10, 1000);
    r.process(&p.screen().scrollback_formatted(7));
    assert_eq!(r.screen().scrollback_rows(), 7);
}
