//! Flow control through the broker and real workers: output is forwarded only to watchers and
//! only as fast as they take it; a stopped watcher stops the flood (until it is cut loose);
//! bytes arrive whole and in order; a flood cannot starve another worker's requests.

mod common;

use std::time::{Duration, Instant};

use brokertui::broker::Received;
use brokertui::broker::feed::STALL;
use brokertui::protocol::requests::snapshot::SnapshotFormat;
use common::*;

/// PTY bytes the worker has read and parsed so far.
async fn parsed(fx: &Fixture, name: &str) -> u64 {
    fx.broker
        .snapshot(name, SnapshotFormat::Plain, Some(Duration::from_secs(20)))
        .await
        .unwrap()
        .offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_subscriber_stops_the_flood_until_it_is_cut_loose() {
    let fx = Fixture::new();
    fx.spawn("f", &["sh", "-c", "read x; yes flood"]).await;
    let mut stopped = fx.broker.subscribe_output("f").await.unwrap();
    let go = Instant::now();
    fx.broker.input("f", "go\r").await.unwrap();
    // The flood runs until the credit is used up, then the worker stops reading: its screen
    // stays where it is while nobody takes the output.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = parsed(&fx, "f").await;
    let held = loop {
        assert!(Instant::now() < deadline, "the flood was never held back");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = parsed(&fx, "f").await;
        if now == last && now > 0 {
            break now;
        }
        last = now;
    };
    // Past the stall the stopped subscriber is cut loose and the flood goes on.
    eventually(STALL * 3, "the flood resumed", || async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        (parsed(&fx, "f").await > held).then_some(())
    })
    .await;
    // The worker began to wait after "go", and was held for the whole stall.
    assert!(
        go.elapsed() >= STALL,
        "resumed {:?} after the flood began, before the stall of {STALL:?}",
        go.elapsed()
    );
    assert!(
        matches!(stopped.recv().await, Received::Lagged(_)),
        "a subscriber cut loose is told it lagged"
    );
    // Taking output again, it gets the newest chunks.
    assert!(matches!(stopped.recv().await, Received::Item(_)));
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_watching_means_nothing_forwarded_and_the_screen_still_exact() {
    let fx = Fixture::new();
    fx.spawn(
        "f",
        &["sh", "-c", "read x; seq 1 100000; read y; echo later"],
    )
    .await;
    fx.broker.input("f", "go\r").await.unwrap();
    let expected: u64 = 4
        + (1..=100_000u64)
            .map(|n| n.to_string().len() as u64 + 2)
            .sum::<u64>();
    eventually(Duration::from_secs(20), "the flood parsed", || async {
        (parsed(&fx, "f").await == expected).then_some(())
    })
    .await;
    // A subscriber from now on gets what follows, at offsets past everything parsed.
    let mut sub = fx.broker.subscribe_output("f").await.unwrap();
    fx.broker.input("f", "x\r").await.unwrap();
    let Received::Item(first) = sub.recv().await else {
        panic!("no output after the watch");
    };
    assert!(
        first.offset >= expected,
        "forwarded output from before the watch (offset {})",
        first.offset
    );
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_gets_every_byte_in_order_without_lagging() {
    let fx = Fixture::new();
    const LINES: u32 = 400_000;
    fx.spawn(
        "f",
        &[
            "sh",
            "-c",
            &format!("stty -onlcr; read x; seq 1 {LINES}; echo end-of-it; read y"),
        ],
    )
    .await;
    let mut sub = fx.broker.subscribe_output("f").await.unwrap();
    fx.broker.input("f", "go\r").await.unwrap();
    let mut text = Vec::new();
    let mut next: Option<u64> = None;
    let mut chunks = 0;
    while !String::from_utf8_lossy(&text[text.len().saturating_sub(32)..]).contains("end-of-it") {
        match tokio::time::timeout(Duration::from_secs(20), sub.recv()).await {
            Ok(Received::Item(chunk)) => {
                let at = *next.get_or_insert(chunk.offset);
                assert_eq!(chunk.offset, at, "offsets must be contiguous");
                next = Some(at + chunk.data.len() as u64);
                text.extend_from_slice(&chunk.data);
                chunks += 1;
                // Slower than the flood: the worker waits for credit instead of dropping.
                if chunks % 4 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ok(other) => panic!("a subscriber that keeps taking never lags: {other:?}"),
            Err(_) => panic!("stalled after {} bytes", text.len()),
        }
    }
    let text = String::from_utf8(text).unwrap();
    let numbers: Vec<u32> = text
        .split('\n')
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(numbers.len(), LINES as usize, "every line, none twice");
    assert!(numbers.iter().copied().eq(1..=LINES), "in order");
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_floods_cannot_starve_a_quiet_workers_requests() {
    let fx = Fixture::new();
    fx.spawn("quiet", &["sh"]).await;
    let mut watchers = Vec::new();
    for i in 0..4 {
        let name = format!("flood{i}");
        fx.spawn(&name, &["sh", "-c", "read x; yes flood-flood-flood"])
            .await;
        let mut sub = fx.broker.subscribe_output(&name).await.unwrap();
        fx.broker.input(&name, "go\r").await.unwrap();
        // Takes everything, as fast as it comes.
        watchers.push(tokio::spawn(async move {
            let mut bytes = 0u64;
            while let Received::Item(c) = sub.recv().await {
                bytes += c.data.len() as u64;
            }
            bytes
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..100 {
        let t = Instant::now();
        fx.broker.get_mode("quiet", None).await.unwrap();
        slowest = slowest.max(t.elapsed());
    }
    // Generous: a loaded CI machine is not a benchmark (BENCHMARKS.md has the figures).
    assert!(
        slowest < Duration::from_secs(1),
        "a request to a quiet worker took {slowest:?} among four watched floods"
    );
    let flooded = parsed(&fx, "flood0").await;
    assert!(flooded > 1 << 20, "the floods really ran ({flooded} bytes)");
    fx.broker.shutdown().await;
    for w in watchers {
        w.await.unwrap();
    }
}
