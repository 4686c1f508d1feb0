//! Real PTY round trips through the broker and real `brokertui worker` processes.

mod common;

use std::time::Duration;

use brokertui::protocol::requests::snapshot::{CellRun, SnapshotFormat};
use common::*;

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_echo_reaches_output() {
    let fx = Fixture::new();
    fx.spawn("sh", &["sh"]).await;
    let mut out = fx.broker.subscribe_output("sh").await.unwrap();
    // The quotes keep the echoed command line from matching the output we wait for.
    fx.broker.input("sh", "echo h''i-there\r").await.unwrap();
    wait_output(&mut out, T, |s| s.contains("hi-there\r\n")).await;
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_reaches_the_child() {
    let fx = Fixture::new();
    fx.spawn("sh", &["sh"]).await;
    let mut out = fx.broker.subscribe_output("sh").await.unwrap();
    fx.broker.resize("sh", 40, 100).await.unwrap();
    fx.broker.input("sh", "stty size\r").await.unwrap();
    wait_output(&mut out, T, |s| s.contains("40 100")).await;
    let info = fx.broker.info("sh").await.unwrap();
    assert_eq!((info.rows, info.cols), (40, 100));
    assert!(
        fx.broker.resize("sh", 0, 10).await.is_err(),
        "0 rows must be refused"
    );
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_plain_has_screen_and_cursor() {
    let fx = Fixture::new();
    fx.spawn("p", &["sh", "-c", "printf 'hello\\nworld'; sleep 30"])
        .await;
    let snap = eventually(T, "plain snapshot", || async {
        let s = fx
            .broker
            .snapshot("p", SnapshotFormat::Plain, None)
            .await
            .unwrap();
        (s.plain_lines().first().map(String::as_str) == Some("hello")
            && s.plain_lines()[1] == "world")
            .then_some(s)
    })
    .await;
    assert_eq!(snap.cursor, [1, 5]);
    assert_eq!((snap.rows, snap.cols), (24, 80));
    assert_eq!(snap.plain_lines().len(), 24);
    assert_eq!(snap.offset, "hello\r\nworld".len() as u64);
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_ansi_repaints_the_same_screen() {
    let fx = Fixture::new();
    let script = "printf '\\033[1;31mred\\033[0m \\033[44mblue-bg\\033[0m\\n\\033[4munder\\033[0m 世界\\033[?2004h'; sleep 30";
    fx.spawn("a", &["sh", "-c", script]).await;
    let plain = eventually(T, "output", || async {
        let s = fx
            .broker
            .snapshot("a", SnapshotFormat::Plain, None)
            .await
            .unwrap();
        s.plain_lines()[1].contains("世界").then_some(s)
    })
    .await;
    let ansi = fx
        .broker
        .snapshot("a", SnapshotFormat::Ansi, None)
        .await
        .unwrap();
    let mut fresh = vt100::Parser::new(ansi.rows, ansi.cols, 0);
    fresh.process(&ansi.ansi_bytes());
    let cols = ansi.cols;
    let repainted: Vec<String> = fresh
        .screen()
        .rows(0, cols)
        .map(|l| l.trim_end().to_string())
        .collect();
    assert_eq!(repainted, plain.plain_lines());
    assert_eq!(
        [
            fresh.screen().cursor_position().0,
            fresh.screen().cursor_position().1
        ],
        ansi.cursor
    );
    assert!(
        fresh.screen().bracketed_paste(),
        "modes are part of the repaint"
    );
    let red = fresh.screen().cell(0, 0).unwrap();
    assert!(red.bold());
    assert_eq!(red.fgcolor(), vt100::Color::Idx(1));
    assert_eq!(
        fresh.screen().cell(0, 4).unwrap().bgcolor(),
        vt100::Color::Idx(4)
    );
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_cells_keep_wide_chars_and_colours() {
    let fx = Fixture::new();
    let script = "printf '\\033[38;5;208m世界\\033[0m-\\033[38;2;10;20;30;1mrgb\\033[0m'; sleep 30";
    fx.spawn("c", &["sh", "-c", script]).await;
    let snap = eventually(T, "cells", || async {
        let s = fx
            .broker
            .snapshot("c", SnapshotFormat::Cells, None)
            .await
            .unwrap();
        let row: Vec<CellRun> = serde_json::from_value(s.screen[0].clone()).unwrap();
        (row.len() >= 3).then_some(row)
    })
    .await;
    assert_eq!(snap[0].t, "世界");
    assert_eq!(snap[0].fg, Some(serde_json::json!(208)));
    assert_eq!(snap[1].t, "-");
    assert_eq!(snap[2].t, "rgb");
    assert_eq!(snap[2].fg, Some(serde_json::json!("#0a141e")));
    assert!(snap[2].b);
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_offset_is_exact_after_a_flood() {
    let fx = Fixture::new();
    fx.spawn("f", &["sh", "-c", "seq 1 200000; sleep 30"]).await;
    // Every line is its digits plus "\r\n" (the PTY turns \n into \r\n).
    let expected: u64 = (1..=200_000u64)
        .map(|n| n.to_string().len() as u64 + 2)
        .sum();
    let snap = eventually(Duration::from_secs(20), "flood parsed", || async {
        let s = fx
            .broker
            .snapshot("f", SnapshotFormat::Plain, None)
            .await
            .unwrap();
        (s.offset == expected).then_some(s)
    })
    .await;
    let lines = snap.plain_lines();
    assert_eq!(lines[snap.cursor[0] as usize - 1], "200000");
    assert_eq!(lines[snap.cursor[0] as usize - 2], "199999");
    fx.broker.shutdown().await;
}
