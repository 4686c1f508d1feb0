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
        // `cell` then says `None` past its end, and the slice is that much shorter.
        let slice = fast.row_cells(row).expect("visible row");
        for col in 0..cols {
            let by_cell = fast.cell(row, col);
            assert_eq!(by_cell.is_some(), usize::from(col) < slice.len());
            if let Some(by_cell) = by_cell {
                assert!(std::ptr::eq(by_cell, &slice[usize::from(col)]));
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
    assert_eq!(narrowed.screen().contents(), "        a");
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
