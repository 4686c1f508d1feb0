//! The worker's copy of its PTY's screen: every output byte goes through one vt100 parser,
//! and snapshots in the three wire formats are read off it.

use serde_json::{Value, json};

use crate::protocol::requests::snapshot::{CellRun, Snapshot, SnapshotFormat};

/// Rows of history the worker keeps (tmux's default `history-limit`): what a client that
/// attaches later (`--connect`) is sent on request so it scrolls back as far as one that
/// watched from the start, and what a resize rewraps. A client that watches keeps its own,
/// longer history. Once full, the row leaving it is recycled, as with none.
const WORKER_SCROLLBACK: usize = 2000;

pub struct Screen {
    parser: vt100::Parser<super::answers::Answers>,
    /// PTY bytes processed so far: the `offset` of the next output chunk.
    offset: u64,
}

fn nz(n: u16) -> u16 {
    n.max(1)
}

impl Screen {
    pub fn new(rows: u16, cols: u16) -> Self {
        Self::with_colors(rows, cols, None)
    }

    /// A screen that reports `colors` to programs that ask (OSC 10 / 11 / 12).
    pub fn with_colors(
        rows: u16,
        cols: u16,
        colors: Option<crate::protocol::worker_args::TerminalColors>,
    ) -> Self {
        Screen {
            parser: vt100::Parser::new_with_callbacks(
                nz(rows),
                nz(cols),
                WORKER_SCROLLBACK,
                super::answers::Answers::with_colors(colors),
            ),
            offset: 0,
        }
    }

    pub fn process(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
        self.offset += bytes.len() as u64;
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What the program asked its terminal since the last call, answered (see
    /// [`super::answers`]).
    pub fn take_answers(&mut self) -> Vec<u8> {
        self.parser.callbacks_mut().take()
    }

    pub fn set_size(&mut self, rows: u16, cols: u16) {
        self.parser.screen_mut().set_size(nz(rows), nz(cols));
    }

    /// Each visible row as text, trailing blanks trimmed.
    pub fn lines(&self) -> Vec<String> {
        let screen = self.parser.screen();
        plain_lines(screen, screen.size().1)
    }

    /// The visible screen as text, a line per row except where a row wrapped on its own
    /// into the next: those are one line, so text the terminal wrapped (a long message id in
    /// a narrow pane) is still found whole.
    pub fn text(&self) -> String {
        let screen = self.parser.screen();
        let cols = usize::from(screen.size().1);
        let mut text = String::new();
        for (row, line) in (0..).zip(plain_lines(screen, screen.size().1)) {
            text.push_str(&line);
            if screen.row_wrapped(row) {
                // Its trailing blanks were trimmed, but they are part of the wrapped text.
                let width = line.chars().count();
                text.extend(std::iter::repeat_n(' ', cols.saturating_sub(width)));
            } else {
                text.push('\n');
            }
        }
        text
    }

    /// Whether the program asked for bracketed paste (DECSET 2004).
    pub fn bracketed_paste(&self) -> bool {
        self.parser.screen().bracketed_paste()
    }

    pub fn snapshot(&self, format: SnapshotFormat) -> Snapshot {
        self.snapshot_with_history(format, 0)
    }

    /// A snapshot; an `ansi` one carries up to `history` rows of scrollback in front.
    pub fn snapshot_with_history(&self, format: SnapshotFormat, history: usize) -> Snapshot {
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        let (crow, ccol) = screen.cursor_position();
        let body = match format {
            SnapshotFormat::Plain => Value::from(plain_lines(screen, cols)),
            SnapshotFormat::Ansi => {
                let mut bytes = screen.scrollback_formatted(history);
                bytes.extend_from_slice(&ansi_repaint(screen));
                bytes.extend_from_slice(&self.parser.callbacks().modes.formatted());
                Value::from(crate::b64::encode(&bytes))
            }
            SnapshotFormat::Cells => cells(screen, rows, cols),
        };
        Snapshot {
            format,
            rows,
            cols,
            cursor: [crow, ccol],
            offset: self.offset,
            screen: body,
            scrollback: match format {
                SnapshotFormat::Ansi => {
                    u32::try_from(history.min(screen.scrollback_rows())).unwrap_or(u32::MAX)
                }
                _ => 0,
            },
        }
    }
}

/// Most PTY bytes forwarded but not yet parsed. Past it the worker stops reading the PTY
/// until the parser catches up (the child then blocks, like on a slow terminal).
pub const PARSE_BACKLOG_LIMIT: usize = 4 * 1024 * 1024;

/// The screen parsed on a thread of its own, so forwarding output never waits for vt100.
///
/// Bytes are forwarded first and parsed after; whoever needs the screen (a snapshot, an
/// injection checking bracketed paste, a resize) calls [`SharedScreen::caught_up`], which
/// waits until everything forwarded so far is parsed. The snapshot's `offset` is therefore
/// exactly the bytes its screen reflects.
pub struct SharedScreen {
    state: std::sync::Arc<(std::sync::Mutex<Screen>, std::sync::Condvar)>,
    tx: std::sync::mpsc::Sender<Vec<u8>>,
    backlog: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Fired when the backlog drops below the limit.
    pub relief: std::sync::Arc<tokio::sync::Notify>,
    sent: u64,
}

impl SharedScreen {
    /// `answer` gets the answers to the program's terminal queries, right after the bytes
    /// that asked them are parsed (the worker writes them to the PTY).
    pub fn new(
        rows: u16,
        cols: u16,
        colors: Option<crate::protocol::worker_args::TerminalColors>,
        mut answer: impl FnMut(Vec<u8>) + Send + 'static,
    ) -> Self {
        use std::sync::atomic::Ordering;
        let state = std::sync::Arc::new((
            std::sync::Mutex::new(Screen::with_colors(rows, cols, colors)),
            std::sync::Condvar::new(),
        ));
        let backlog = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let relief = std::sync::Arc::new(tokio::sync::Notify::new());
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let (st, bl, rl) = (state.clone(), backlog.clone(), relief.clone());
        std::thread::Builder::new()
            .name("vt-parser".into())
            .spawn(move || {
                crate::sched::throughput_thread();
                while let Ok(bytes) = rx.recv() {
                    let (lock, cvar) = &*st;
                    let answers = {
                        let mut screen = lock.lock().expect("screen lock");
                        screen.process(&bytes);
                        screen.take_answers()
                    };
                    cvar.notify_all();
                    if !answers.is_empty() {
                        answer(answers);
                    }
                    let before = bl.fetch_sub(bytes.len(), Ordering::AcqRel);
                    if before >= PARSE_BACKLOG_LIMIT && before - bytes.len() < PARSE_BACKLOG_LIMIT {
                        rl.notify_one();
                    }
                }
            })
            .expect("spawn parser thread");
        SharedScreen {
            state,
            tx,
            backlog,
            relief,
            sent: 0,
        }
    }

    /// Offset of the next byte to forward.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Hands forwarded bytes to the parser.
    pub fn feed(&mut self, bytes: Vec<u8>) {
        self.sent += bytes.len() as u64;
        self.backlog
            .fetch_add(bytes.len(), std::sync::atomic::Ordering::AcqRel);
        let _ = self.tx.send(bytes);
    }

    /// Whether the parser is so far behind that PTY reading should pause.
    pub fn backlogged(&self) -> bool {
        self.backlog.load(std::sync::atomic::Ordering::Acquire) >= PARSE_BACKLOG_LIMIT
    }

    /// The screen as parsed so far, without waiting for the backlog: for reading an agent's
    /// state, where a screen a chunk behind is read again a moment later anyway, and waiting
    /// would stall PTY reading during a flood.
    pub fn current(&self) -> std::sync::MutexGuard<'_, Screen> {
        self.state.0.lock().expect("screen lock")
    }

    /// The screen, once every forwarded byte is parsed (waits at most for the backlog).
    pub fn caught_up(&self) -> std::sync::MutexGuard<'_, Screen> {
        let (lock, cvar) = &*self.state;
        let guard = lock.lock().expect("screen lock");
        cvar.wait_while(guard, |s| s.offset() < self.sent)
            .expect("screen lock")
    }
}

/// The cells of visible row `row`, at most `cols` of them (a row kept from before a resize
/// can be shorter).
fn visible_row(screen: &vt100::Screen, row: u16, cols: u16) -> &[vt100::Cell] {
    // Past the written cells the row is blank, which a plain line trims anyway.
    let (cells, _) = screen.row_cells(row).unwrap_or_default();
    &cells[..cells.len().min(cols.into())]
}

/// Each visible row as text, trailing blanks trimmed — what `vt100::Screen::rows` gives,
/// read off row slices (`row_cells`, our vt100 patch) in one pass instead of an iterator
/// chain and a UTF-8 check per cell: a plain snapshot is the most common request.
pub fn plain_lines(screen: &vt100::Screen, cols: u16) -> Vec<String> {
    let rows = screen.size().0;
    (0..rows)
        .map(|row| {
            let cells = visible_row(screen, row, cols);
            // Trailing blanks are trimmed anyway: stop at the last cell with contents (a
            // tight backwards scan; most rows of most screens are empty).
            let Some(last) = cells.iter().rposition(vt100::Cell::has_contents) else {
                return String::new();
            };
            let mut line = String::new();
            let mut blanks = 0;
            let mut after_wide = false;
            for cell in &cells[..=last] {
                // The column a wide character covers is skipped, as vt100 does.
                if after_wide {
                    after_wide = false;
                    continue;
                }
                after_wide = cell.is_wide();
                if !cell.has_contents() {
                    blanks += 1;
                    continue;
                }
                line.extend(std::iter::repeat_n(' ', std::mem::take(&mut blanks)));
                match cell.ascii() {
                    Some(b) => line.push(char::from(b)),
                    None => line.push_str(cell.contents()),
                }
            }
            line.truncate(line.trim_end().len());
            line
        })
        .collect()
}

/// Bytes that repaint `screen` on a fresh terminal of the same size: the alternate screen
/// switch first (so the repaint lands on the right buffer), then contents, cursor and
/// input modes (bracketed paste, application cursor keys, mouse…).
pub fn ansi_repaint(screen: &vt100::Screen) -> Vec<u8> {
    let mut out = Vec::new();
    if screen.alternate_screen() {
        out.extend_from_slice(b"\x1b[?1049h");
    }
    out.extend_from_slice(&screen.state_formatted());
    out
}

fn color(c: vt100::Color) -> Option<Value> {
    match c {
        vt100::Color::Default => None,
        vt100::Color::Idx(i) => Some(json!(i)),
        vt100::Color::Rgb(r, g, b) => Some(json!(format!("#{r:02x}{g:02x}{b:02x}"))),
    }
}

/// Rows of runs of identically styled cells. A wide character's continuation cell is folded
/// into the character's run, so each run's text is exactly what a terminal would show.
fn cells(screen: &vt100::Screen, rows: u16, cols: u16) -> Value {
    let mut out = Vec::with_capacity(rows as usize);
    for row in 0..rows {
        let mut runs: Vec<CellRun> = Vec::new();
        for cell in visible_row(screen, row, cols) {
            if cell.is_wide_continuation() {
                continue;
            }
            let text = if cell.has_contents() {
                cell.contents()
            } else {
                " "
            };
            let style = (
                color(cell.fgcolor()),
                color(cell.bgcolor()),
                cell.bold(),
                cell.italic(),
                cell.underline(),
                cell.inverse(),
            );
            match runs.last_mut() {
                Some(last)
                    if (&last.fg, &last.bg, last.b, last.i, last.u, last.r)
                        == (&style.0, &style.1, style.2, style.3, style.4, style.5) =>
                {
                    last.t.push_str(text)
                }
                _ => runs.push(CellRun {
                    t: text.to_string(),
                    fg: style.0,
                    bg: style.1,
                    b: style.2,
                    i: style.3,
                    u: style.4,
                    r: style.5,
                }),
            }
        }
        out.push(serde_json::to_value(runs).expect("runs serialize"));
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_repaint_reproduces_screen_in_fresh_parser() {
        let mut s = Screen::new(5, 20);
        s.process(b"\x1b[31mred\x1b[0m plain\r\n\x1b[1;44mbold\x1b[0m\x1b[?2004h");
        let snap = s.snapshot(SnapshotFormat::Ansi);
        let mut fresh = vt100::Parser::new(nz(5), nz(20), 0);
        fresh.process(&snap.ansi_bytes());
        assert_eq!(
            fresh.screen().contents_formatted(),
            s.parser.screen().contents_formatted()
        );
        assert!(fresh.screen().bracketed_paste());
        assert_eq!(
            fresh.screen().cursor_position(),
            s.parser.screen().cursor_position()
        );
    }

    #[test]
    fn plain_lines_match_vt100_rows() {
        let mut s = Screen::new(6, 12);
        s.process(
            "a  b\x1b[31mred\x1b[0m   \r\n世界 e\u{301}x\r\n\x1b[3;5Hmid\x1b[5;1H  \t→\x1b[6;11H世"
                .as_bytes(),
        );
        let screen = s.parser.screen();
        let expected: Vec<String> = screen
            .rows(0, 12)
            .map(|l| l.trim_end().to_string())
            .collect();
        assert_eq!(plain_lines(screen, 12), expected);
        assert_eq!(expected[1], "世界 e\u{301}x");
        assert_eq!(expected[5], "          世");
    }

    #[test]
    fn text_joins_the_rows_the_terminal_wrapped() {
        let mut s = Screen::new(6, 10);
        s.process(b"id 0436ac66-dd0d\r\nabcdefg   hij\r\nlast");
        let text = s.text();
        assert!(text.contains("id 0436ac66-dd0d\n"), "{text:?}");
        // The wrapped row's trailing blanks are kept.
        assert!(text.contains("abcdefg   hij\n"), "{text:?}");
        assert!(text.ends_with("last\n\n"), "{text:?}");
        // A line ended by the program stays its own, even when it fills the row.
        let mut s = Screen::new(3, 4);
        s.process(b"abcd\r\nefgh");
        assert!(s.text().starts_with("abcd\nefgh\n"), "{:?}", s.text());
    }

    #[test]
    fn cells_keep_wide_chars_and_colours() {
        let mut s = Screen::new(2, 10);
        s.process("\x1b[38;2;1;2;3m世界\x1b[0mx".as_bytes());
        let snap = s.snapshot(SnapshotFormat::Cells);
        let row0: Vec<CellRun> = serde_json::from_value(snap.screen[0].clone()).unwrap();
        assert_eq!(row0[0].t, "世界");
        assert_eq!(row0[0].fg, Some(json!("#010203")));
        assert!(row0[1].t.starts_with('x'));
        assert_eq!(row0[1].fg, None);
    }
}
