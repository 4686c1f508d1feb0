//! A pane's feed: the one state machine that keeps a pane's [`ScreenMirror`] in step with its
//! worker's output.
//!
//! The mirror starts from an `ansi` snapshot and then applies output past the snapshot's
//! offset. Three things make that tricky, and this type owns all three:
//! - **Hold**: output that arrives while a snapshot is on its way is kept and applied after it.
//! - **Drop**: a flood (more than [`FLOOD_BYTES_PER_FRAME`] in one frame) is not parsed; the
//!   pane resyncs from a snapshot [`FLOOD_REDRAW`] later instead.
//! - **Resync generations**: several snapshots can be in flight at once (the first sync, a
//!   resize, a lag, a gap), and their answers can come back in any order. Only the answer to
//!   the *latest* request may be applied: an older one describes an older screen, and applied
//!   last it would leave the pane showing that older screen — possibly empty — until the
//!   worker next prints. A failed snapshot asks for another (the caller retries), because an
//!   unsynced pane holds output but shows none of it.

use bytes::Bytes;

use crate::mirror::{Applied, ScreenMirror};
use crate::protocol::requests::snapshot::Snapshot;

/// Most bytes held for a pane while it waits for its resync snapshot.
pub const MAX_HELD_BYTES: usize = 8 * 1024 * 1024;

/// More output than this in one frame and a pane stops parsing it and shows snapshots
/// instead (one per frame): nobody reads that much in 16 ms, and parsing it all would take
/// the CPU the rest of the UI needs.
pub const FLOOD_BYTES_PER_FRAME: usize = 512 * 1024;

/// How often a flooding pane is shown afresh (from a snapshot). Nobody reads a flood: a few
/// pictures a second show it moving, and every picture costs the worker a snapshot.
pub const FLOOD_REDRAW: std::time::Duration = std::time::Duration::from_millis(100);

/// Identifies one snapshot request; only the latest one's answer is applied.
pub type Generation = u64;

/// What the caller must do after feeding output.
#[derive(Debug, PartialEq, Eq)]
pub enum Fed {
    /// Applied (or held/dropped); `true` if the screen may have changed.
    Applied(bool),
    /// Bytes were missed: ask for a snapshot now.
    ResyncNow,
    /// A flood: ask for a snapshot [`FLOOD_REDRAW`] from now.
    ResyncSoon,
}

/// What the caller must do after a snapshot answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Synced {
    /// The pane now shows the snapshot plus whatever was held.
    Applied,
    /// The answer was to an older request; a newer one is on its way.
    Stale,
    /// The latest request failed: ask again.
    Retry,
}

pub struct PaneFeed {
    pub mirror: ScreenMirror,
    held: Vec<(u64, Bytes)>,
    held_bytes: usize,
    /// Output bytes applied since the last frame (flood detection).
    frame_bytes: usize,
    /// Flooding: output is dropped until the next resync.
    dropping: bool,
    /// The latest snapshot request.
    latest: Generation,
}

impl PaneFeed {
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> Self {
        PaneFeed {
            mirror: ScreenMirror::new(rows, cols, scrollback),
            held: Vec::new(),
            held_bytes: 0,
            frame_bytes: 0,
            dropping: false,
            latest: 0,
        }
    }

    /// Starts a resync: output is held from now on, and the returned generation must come
    /// back with the snapshot's answer.
    pub fn begin_resync(&mut self) -> Generation {
        self.mirror.unsync();
        self.dropping = false;
        self.frame_bytes = 0;
        self.latest += 1;
        self.latest
    }

    /// A new frame was drawn: the flood budget starts over.
    pub fn frame_drawn(&mut self) {
        self.frame_bytes = 0;
    }

    pub fn output(&mut self, offset: u64, data: Bytes) -> Fed {
        if self.dropping {
            return Fed::Applied(false);
        }
        if !self.mirror.synced() {
            self.held_bytes += data.len();
            self.held.push((offset, data));
            if self.held_bytes > MAX_HELD_BYTES {
                // The snapshot on its way will be older than what we dropped; the gap
                // check after it asks for a newer one.
                self.held.clear();
                self.held_bytes = 0;
            }
            return Fed::Applied(false);
        }
        self.frame_bytes += data.len();
        if self.frame_bytes > FLOOD_BYTES_PER_FRAME {
            self.dropping = true;
            self.mirror.unsync();
            self.clear_held();
            return Fed::ResyncSoon;
        }
        match self.mirror.apply(offset, &data) {
            Applied::Ok(changed) => Fed::Applied(changed),
            Applied::Gap { .. } => Fed::ResyncNow,
            Applied::Unsynced => Fed::Applied(false),
        }
    }

    /// The answer to the snapshot request `generation`.
    pub fn snapshot<E>(&mut self, generation: Generation, result: Result<&Snapshot, E>) -> Synced {
        if generation != self.latest {
            return Synced::Stale;
        }
        let Ok(snap) = result else {
            return Synced::Retry;
        };
        self.mirror.reset(snap);
        let mut gap = false;
        for (offset, data) in std::mem::take(&mut self.held) {
            gap |= matches!(self.mirror.apply(offset, &data), Applied::Gap { .. });
        }
        self.held_bytes = 0;
        if gap {
            // Held output was cut (over the cap): what the snapshot shows is older than
            // what followed; a fresh snapshot covers it.
            return Synced::Retry;
        }
        Synced::Applied
    }

    fn clear_held(&mut self) {
        self.held.clear();
        self.held_bytes = 0;
    }

    pub fn set_size(&mut self, rows: u16, cols: u16) {
        self.mirror.set_size(rows, cols);
    }

    pub fn screen(&self) -> &vt100::Screen {
        self.mirror.parser.screen()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::requests::snapshot::SnapshotFormat;
    use crate::worker::screen::Screen;

    fn text(feed: &PaneFeed) -> String {
        feed.screen().contents().trim_end().to_string()
    }

    /// The race behind a pane that never showed its first output: the first sync's snapshot
    /// (taken before the shell printed) answers *after* the resize's snapshot (taken after).
    #[test]
    fn an_older_snapshot_answering_last_is_not_applied() {
        let mut worker = Screen::new(4, 20);
        let mut feed = PaneFeed::new(4, 20, 0);
        let first = feed.begin_resync();
        let before = worker.snapshot(SnapshotFormat::Ansi);
        let offset = worker.offset();
        worker.process(b"$ ");
        assert_eq!(
            feed.output(offset, Bytes::from_static(b"$ ")),
            Fed::Applied(false)
        );
        let second = feed.begin_resync();
        let after = worker.snapshot(SnapshotFormat::Ansi);
        assert_eq!(feed.snapshot::<()>(second, Ok(&after)), Synced::Applied);
        assert_eq!(text(&feed), "$");
        assert_eq!(feed.snapshot::<()>(first, Ok(&before)), Synced::Stale);
        assert_eq!(text(&feed), "$", "the stale, empty screen must not win");
    }

    #[test]
    fn a_failed_snapshot_asks_again_and_held_output_survives() {
        let mut worker = Screen::new(4, 20);
        let mut feed = PaneFeed::new(4, 20, 0);
        let g = feed.begin_resync();
        assert_eq!(
            feed.snapshot(g, Err::<&Snapshot, _>("timeout")),
            Synced::Retry
        );
        let g = feed.begin_resync();
        let snap = worker.snapshot(SnapshotFormat::Ansi);
        let offset = worker.offset();
        worker.process(b"hello");
        feed.output(offset, Bytes::from_static(b"hello"));
        assert_eq!(feed.snapshot::<()>(g, Ok(&snap)), Synced::Applied);
        assert_eq!(text(&feed), "hello");
    }

    #[test]
    fn a_flood_drops_until_the_next_resync() {
        let mut feed = PaneFeed::new(4, 20, 0);
        let worker = Screen::new(4, 20);
        let g = feed.begin_resync();
        feed.snapshot::<()>(g, Ok(&worker.snapshot(SnapshotFormat::Ansi)));
        let big = Bytes::from(vec![b'x'; FLOOD_BYTES_PER_FRAME + 1]);
        assert_eq!(feed.output(0, big), Fed::ResyncSoon);
        assert_eq!(
            feed.output(1, Bytes::from_static(b"y")),
            Fed::Applied(false)
        );
    }

    #[test]
    fn overflowing_the_hold_asks_for_a_newer_snapshot() {
        let mut feed = PaneFeed::new(4, 20, 0);
        let worker = Screen::new(4, 20);
        let g = feed.begin_resync();
        let snap = worker.snapshot(SnapshotFormat::Ansi);
        let chunk = vec![b'a'; 1024 * 1024];
        let mut offset = 0;
        for _ in 0..9 {
            feed.output(offset, Bytes::from(chunk.clone()));
            offset += chunk.len() as u64;
        }
        feed.output(offset, Bytes::from_static(b"z"));
        assert_eq!(feed.snapshot::<()>(g, Ok(&snap)), Synced::Retry);
    }
}
