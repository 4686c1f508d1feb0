//! A client-side copy of a worker's screen, kept exact by byte offsets: start from an `ansi`
//! snapshot (which says how many PTY bytes it reflects), then apply only output past that
//! offset. A chunk that straddles the offset is trimmed; one from before it is skipped; a
//! gap (lost bytes) is reported so the caller can resync from a new snapshot.

use std::time::{Duration, Instant};

use crate::pane_modes::{Changed, PaneModes};
use crate::protocol::requests::snapshot::Snapshot;

/// Longest a synchronized update may hold a pane's picture: a program that dies mid-frame
/// must not freeze its pane.
pub const MAX_SYNC: Duration = Duration::from_secs(1);

/// The mirror's parser callbacks: the modes the screen does not keep, and the picture to
/// show while a synchronized update (DEC mode 2026) is being drawn.
#[derive(Default)]
pub struct PaneEvents {
    pub modes: PaneModes,
    frozen: Option<(vt100::Screen, Instant)>,
}

impl vt100::Callbacks for PaneEvents {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.modes.set_title(title);
    }
    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        match self.modes.csi(i1, i2, params, c) {
            Changed::SyncBegan => {
                self.frozen = Some((screen.clone_without_scrollback(), Instant::now()));
            }
            Changed::Yes if !self.modes.synchronized => self.frozen = None,
            _ => {}
        }
    }
}

pub struct ScreenMirror {
    pub parser: vt100::Parser<PaneEvents>,
    scrollback: usize,
    /// Offset of the next byte this mirror expects; `None` until the first snapshot.
    next: Option<u64>,
    /// Whether the scrollback is this mirror's own (since its first snapshot).
    has_history: bool,
}

/// What a snapshot's repaint takes for granted of a fresh terminal and an older screen may
/// have changed: the main screen, plain attributes, no insert mode, no mouse reports, the
/// whole screen as the scroll region, absolute cursor addressing, the default cursor, no focus
/// reports, no synchronized update.
const FRESH_MODES: &[u8] = b"\x1b[?1049l\x1b[m\x1b[4l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[r\x1b[?6l\x1b[0 q\x1b[?1004l\x1b[?2026l";

/// What applying a chunk did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Bytes were parsed (or the chunk was already covered): the screen may have changed.
    Ok(bool),
    /// Bytes before this chunk were never seen; resync from a snapshot.
    Gap { expected: u64, got: u64 },
    /// No snapshot yet; the chunk was ignored.
    Unsynced,
}

fn nz(n: u16) -> u16 {
    n.max(1)
}

impl ScreenMirror {
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> Self {
        ScreenMirror {
            parser: vt100::Parser::new_with_callbacks(
                nz(rows),
                nz(cols),
                scrollback,
                PaneEvents::default(),
            ),
            scrollback,
            next: None,
            has_history: false,
        }
    }

    /// The modes the program set that the screen does not keep (title, cursor shape…).
    pub fn modes(&self) -> &PaneModes {
        &self.parser.callbacks().modes
    }

    /// The screen to draw: while the program is drawing a synchronized update, the picture
    /// from before it began (for at most [`MAX_SYNC`]).
    pub fn shown(&self) -> &vt100::Screen {
        match &self.parser.callbacks().frozen {
            Some((screen, since)) if since.elapsed() < MAX_SYNC => screen,
            _ => self.parser.screen(),
        }
    }

    pub fn synced(&self) -> bool {
        self.next.is_some()
    }

    pub fn next_offset(&self) -> Option<u64> {
        self.next
    }

    /// Rows of history worth asking a worker for: none once this mirror has its own.
    pub fn wants_history(&self) -> usize {
        if self.has_history { 0 } else { self.scrollback }
    }

    /// Starts over from an `ansi` snapshot. One that carries history replaces this mirror's;
    /// one without keeps it (after a resize, which rewrapped it as the worker rewrapped its
    /// own, or a flood the pane skipped), and only the screen is redrawn.
    pub fn reset(&mut self, snap: &Snapshot) {
        if snap.scrollback > 0 || !self.has_history {
            self.parser = vt100::Parser::new_with_callbacks(
                nz(snap.rows),
                nz(snap.cols),
                self.scrollback,
                PaneEvents::default(),
            );
            self.has_history = true;
        } else {
            self.parser
                .screen_mut()
                .set_size(nz(snap.rows), nz(snap.cols));
            self.parser.process(FRESH_MODES);
        }
        self.parser.process(&snap.ansi_bytes());
        self.next = Some(snap.offset);
    }

    /// Forgets the sync point (after a lag); chunks are ignored until the next `reset`.
    pub fn unsync(&mut self) {
        self.next = None;
    }

    pub fn apply(&mut self, offset: u64, data: &[u8]) -> Applied {
        let Some(next) = self.next else {
            return Applied::Unsynced;
        };
        let end = offset + data.len() as u64;
        if end <= next {
            return Applied::Ok(false);
        }
        if offset > next {
            self.next = None;
            return Applied::Gap {
                expected: next,
                got: offset,
            };
        }
        self.parser.process(&data[(next - offset) as usize..]);
        self.next = Some(end);
        Applied::Ok(true)
    }

    pub fn set_size(&mut self, rows: u16, cols: u16) {
        self.parser.screen_mut().set_size(nz(rows), nz(cols));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::requests::snapshot::SnapshotFormat;
    use crate::worker::screen::Screen;

    #[test]
    fn late_mirror_matches_continuous_one_byte_for_byte() {
        let stream: Vec<u8> = (0..200)
            .flat_map(|i| format!("\x1b[3{}mline {i}\x1b[0m\r\n", i % 8).into_bytes())
            .collect();
        let mut source = Screen::new(10, 40);
        let mut continuous = ScreenMirror::new(10, 40, 0);
        continuous.reset(&Screen::new(10, 40).snapshot(SnapshotFormat::Ansi));
        let mut late = ScreenMirror::new(10, 40, 0);
        for (n, chunk) in stream.chunks(37).enumerate() {
            let offset = source.offset();
            source.process(chunk);
            continuous.apply(offset, chunk);
            if n == 50 {
                // Joins mid-stream: snapshot taken after this chunk, which it also receives.
                late.reset(&source.snapshot(SnapshotFormat::Ansi));
            }
            late.apply(offset, chunk);
        }
        assert_eq!(
            late.parser.screen().contents_formatted(),
            continuous.parser.screen().contents_formatted()
        );
        assert_eq!(
            late.parser.screen().contents(),
            source
                .snapshot(SnapshotFormat::Plain)
                .plain_lines()
                .join("\n")
                .trim_end()
        );
    }

    #[test]
    fn gap_is_reported_and_unsyncs() {
        let mut m = ScreenMirror::new(2, 10, 0);
        assert_eq!(m.apply(0, b"x"), Applied::Unsynced);
        m.reset(&Screen::new(2, 10).snapshot(SnapshotFormat::Ansi));
        assert_eq!(m.apply(0, b"ab"), Applied::Ok(true));
        assert_eq!(
            m.apply(5, b"cd"),
            Applied::Gap {
                expected: 2,
                got: 5
            }
        );
        assert!(!m.synced());
    }

    /// Every history row of a mirror's screen, oldest first.
    fn history(m: &mut ScreenMirror) -> Vec<String> {
        let screen = m.parser.screen_mut();
        let cols = screen.size().1;
        let rows = screen.scrollback_rows();
        let out = (1..=rows)
            .rev()
            .map(|top| {
                screen.set_scrollback(top);
                screen.rows(0, cols).next().unwrap()
            })
            .collect();
        screen.set_scrollback(0);
        out
    }

    /// A resize resyncs the pane from a snapshot of the screen alone; its history stays
    /// (before, every resize wiped it) and matches the worker's, rewrapped alike.
    #[test]
    fn history_survives_a_resize_resync_and_a_late_mirror_is_sent_it() {
        let mut worker = Screen::new(5, 30);
        let mut m = ScreenMirror::new(5, 30, 1000);
        m.reset(&worker.snapshot(SnapshotFormat::Ansi));
        let stream: Vec<u8> = (0..40)
            .flat_map(|i| format!("line {i} with text that wraps when narrow\r\n").into_bytes())
            .collect();
        m.apply(worker.offset(), &stream);
        worker.process(&stream);
        assert_eq!(
            history(&mut m).len(),
            76,
            "two rows a line, four on the screen"
        );
        for (rows, cols) in [(5, 20), (7, 30)] {
            m.set_size(rows, cols);
            worker.set_size(rows, cols);
            m.reset(&worker.snapshot(SnapshotFormat::Ansi));
            let shown: Vec<String> = m.parser.screen().rows(0, cols).collect();
            assert_eq!(shown, worker.lines());
        }
        let kept = history(&mut m);
        assert_eq!(
            kept.first().map(String::as_str),
            Some("line 0 with text that wraps wh")
        );
        assert!(kept.len() >= 30, "{kept:?}");

        // A mirror that attaches now asks for history and gets the worker's.
        let mut late = ScreenMirror::new(7, 30, 1000);
        assert_eq!(late.wants_history(), 1000);
        late.reset(&worker.snapshot_with_history(SnapshotFormat::Ansi, late.wants_history()));
        assert_eq!(late.wants_history(), 0);
        assert_eq!(history(&mut late), kept);
        assert_eq!(
            late.parser.screen().contents(),
            m.parser.screen().contents()
        );
    }

    /// A pane is never drawn in the middle of a synchronized update (DEC mode 2026): until
    /// it ends, the picture from before it began is shown.
    #[test]
    fn a_synchronized_update_shows_the_frame_before_it_until_it_ends() {
        let mut m = ScreenMirror::new(3, 20, 100);
        m.reset(&Screen::new(3, 20).snapshot(SnapshotFormat::Ansi));
        m.apply(0, b"old frame");
        let half = b"\x1b[?2026h\x1b[2J\x1b[Hnew fr";
        m.apply(9, half);
        assert_eq!(m.shown().contents(), "old frame");
        assert_eq!(m.parser.screen().contents(), "new fr");
        m.apply(
            9 + half.len() as u64,
            b"ame\x1b[?2026l\x1b]2;my title\x07\x1b[6 q",
        );
        assert_eq!(m.shown().contents(), "new frame");
        assert_eq!(m.modes().title, "my title");
        assert_eq!(m.modes().cursor_shape, 6);
    }
}
