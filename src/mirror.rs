//! A client-side copy of a worker's screen, kept exact by byte offsets: start from an `ansi`
//! snapshot (which says how many PTY bytes it reflects), then apply only output past that
//! offset. A chunk that straddles the offset is trimmed; one from before it is skipped; a
//! gap (lost bytes) is reported so the caller can resync from a new snapshot.

use crate::protocol::requests::snapshot::Snapshot;

pub struct ScreenMirror {
    pub parser: vt100::Parser,
    scrollback: usize,
    /// Offset of the next byte this mirror expects; `None` until the first snapshot.
    next: Option<u64>,
}

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
            parser: vt100::Parser::new(nz(rows), nz(cols), scrollback),
            scrollback,
            next: None,
        }
    }

    pub fn synced(&self) -> bool {
        self.next.is_some()
    }

    pub fn next_offset(&self) -> Option<u64> {
        self.next
    }

    /// Starts over from an `ansi` snapshot (keeping scrollback capacity).
    pub fn reset(&mut self, snap: &Snapshot) {
        self.parser = vt100::Parser::new(nz(snap.rows), nz(snap.cols), self.scrollback);
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
}
