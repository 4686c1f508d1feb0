//! Keystroke echo latency (drive-mode input to the echoed byte at a subscriber, and to a
//! redrawn pane) and pane rendering cost.

use std::time::{Duration, Instant};

use brokertui::broker::Received;
use brokertui::mirror::ScreenMirror;
use brokertui::protocol::SessionMode;
use brokertui::protocol::requests::snapshot::SnapshotFormat;
use brokertui::ui::pane::PaneWidget;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

use crate::stats::{header, row, summarize};

pub async fn run(n: usize) {
    // `cat` in a PTY: the line discipline echoes each key, as a shell prompt would.
    let broker = crate::requests::broker_with(1, &["cat"]).await;
    broker
        .set_mode("w0", SessionMode::Human, None)
        .await
        .expect("drive mode");
    let mut sub = broker.subscribe_output("w0").await.expect("subscribe");
    let snap = broker
        .snapshot("w0", SnapshotFormat::Ansi, None)
        .await
        .expect("snapshot");
    let mut mirror = ScreenMirror::new(50, 200, 0);
    mirror.reset(&snap);
    let area = Rect::new(0, 0, 200, 50);
    let mut buf = Buffer::empty(area);
    let (mut to_sub, mut to_pane) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let key = if i % 60 == 59 {
            b'\r'
        } else {
            b'a' + (i % 26) as u8
        };
        let t = Instant::now();
        broker.input("w0", vec![key]).await.expect("input");
        loop {
            match sub.recv().await {
                Received::Item(chunk) => {
                    let got = t.elapsed();
                    mirror.apply(chunk.offset, &chunk.data);
                    PaneWidget {
                        screen: mirror.parser.screen(),
                        show_cursor: true,
                    }
                    .render(area, &mut buf);
                    let drawn = t.elapsed();
                    if chunk.data.contains(&key) || key == b'\r' {
                        to_sub.push(got);
                        to_pane.push(drawn);
                        break;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    header("Keystroke echo in drive mode (worker running cat; 200x50 pane)");
    row("key → echoed byte at output subscriber", &summarize(to_sub));
    row(
        "key → pane parsed and redrawn (buffer)",
        &summarize(to_pane),
    );
    broker.shutdown().await;
}

/// A screen as busy as it gets: every cell written, colours and attributes changing.
fn busy_screen(seed: usize) -> vt100::Parser {
    let mut p = vt100::Parser::new(50, 200, 0);
    let mut bytes = Vec::new();
    for row in 0..50 {
        bytes.extend(format!("\x1b[{};1H", row + 1).as_bytes());
        for col in 0..20 {
            let c = (seed + row * 7 + col) % 216 + 16;
            bytes.extend(format!("\x1b[38;5;{c}m{}abcdefghi", col % 10).as_bytes());
            if col % 3 == 0 {
                bytes.extend(b"\x1b[1m");
            }
        }
        bytes.extend(b"\x1b[0m");
    }
    p.process(&bytes);
    p
}

pub fn render(frames: usize) {
    header("Rendering busy 200x50 panes (release build, one frame = every pane)");
    for panes in [1usize, 4, 16] {
        let screens: Vec<vt100::Parser> = (0..panes).map(busy_screen).collect();
        let cols = (panes as f64).sqrt().ceil() as u16;
        let area = Rect::new(0, 0, 202 * cols, 52 * cols);
        let mut buf = Buffer::empty(area);
        let mut lat = Vec::with_capacity(frames);
        for _ in 0..frames {
            let t = Instant::now();
            for (i, s) in screens.iter().enumerate() {
                let (x, y) = ((i as u16 % cols) * 202 + 1, (i as u16 / cols) * 52 + 1);
                PaneWidget {
                    screen: s.screen(),
                    show_cursor: i == 0,
                }
                .render(Rect::new(x, y, 200, 50), &mut buf);
            }
            lat.push(t.elapsed());
        }
        row(&format!("{panes} pane(s)"), &summarize(lat));
    }
}
