//! A subscriber that shows a worker's output as the TUI does: through a pane feed (output
//! parsed into a mirror, or a flood dropped and the pane resynced from a snapshot a little
//! later) and redrawn at most once per frame. Its pace is what credit flows back at.

use std::time::{Duration, Instant};

use brokertui::broker::{BrokerHandle, OutputChunk};
use brokertui::protocol::requests::snapshot::SnapshotFormat;
use brokertui::ui::feed::{Fed, PaneFeed};
use brokertui::ui::pane::PaneWidget;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

const FRAME: Duration = Duration::from_millis(16);

pub struct Drawn {
    broker: BrokerHandle,
    name: String,
    feed: PaneFeed,
    area: Rect,
    buf: Buffer,
    last_draw: Instant,
    resync_at: Option<Instant>,
    pub resyncs: usize,
}

impl Drawn {
    pub fn new(broker: BrokerHandle, name: &str, rows: u16, cols: u16) -> Drawn {
        let area = Rect::new(0, 0, cols, rows);
        Drawn {
            broker,
            name: name.to_string(),
            feed: PaneFeed::new(rows, cols, 0),
            area,
            buf: Buffer::empty(area),
            last_draw: Instant::now(),
            resync_at: None,
            resyncs: 0,
        }
    }

    /// Starts the pane over from a snapshot (as after a lag or a flood).
    pub async fn resync(&mut self) {
        let generation = self.feed.begin_resync();
        let snap = self
            .broker
            .snapshot(
                &self.name,
                SnapshotFormat::Ansi,
                Some(Duration::from_secs(30)),
            )
            .await;
        let _ = self.feed.snapshot(generation, snap.as_ref());
        self.resyncs += 1;
    }

    pub async fn take(&mut self, chunk: OutputChunk) {
        match self.feed.output(chunk.offset, chunk.data) {
            Fed::ResyncNow => self.resync().await,
            Fed::ResyncSoon => {
                self.resync_at = Some(Instant::now() + brokertui::ui::feed::FLOOD_REDRAW)
            }
            Fed::Applied(_) => {}
        }
        if self.last_draw.elapsed() >= FRAME {
            if self.resync_at.is_some_and(|at| at <= Instant::now()) {
                self.resync_at = None;
                self.resync().await;
            }
            self.draw();
        }
    }

    fn draw(&mut self) {
        PaneWidget {
            screen: self.feed.screen(),
            show_cursor: true,
        }
        .render(self.area, &mut self.buf);
        self.feed.frame_drawn();
        self.last_draw = Instant::now();
    }
}
