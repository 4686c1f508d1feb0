//! Every path of the correlated request helper, against real worker processes.
//! After each, the pending-request map must be empty.

mod common;

use std::time::{Duration, Instant};

use brokertui::broker::RequestWorkerError;
use brokertui::protocol::SessionMode;
use brokertui::protocol::requests::RequestKind;
use brokertui::protocol::requests::snapshot::SnapshotFormat;
use common::*;
use nix::sys::signal::Signal;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_round_trip() {
    let fx = Fixture::new();
    fx.spawn("w", &["sh"]).await;
    assert_eq!(
        fx.broker.get_mode("w", None).await.unwrap(),
        SessionMode::Relay
    );
    let reply = fx
        .broker
        .set_mode("w", SessionMode::Human, None)
        .await
        .unwrap();
    assert_eq!(
        (reply.mode, reply.previous),
        (SessionMode::Human, Some(SessionMode::Relay))
    );
    assert_eq!(fx.broker.info("w").await.unwrap().mode, SessionMode::Human);
    assert!(
        fx.broker
            .pending("w", None)
            .await
            .unwrap()
            .pending
            .is_empty()
    );
    assert_eq!(fx.broker.flush("w", None).await.unwrap().flushed, 0);
    assert_eq!(fx.pending_requests().await, 0);
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_fires_at_the_deadline() {
    let fx = Fixture::new();
    let info = fx.spawn("w", &["sh"]).await;
    signal(info.worker_pid, Signal::SIGSTOP);
    let started = Instant::now();
    let err = fx
        .broker
        .get_mode("w", Some(Duration::from_secs(5)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, RequestWorkerError::Timeout { .. }), "{err:?}");
    assert_eq!(err.code(), "worker_timeout");
    assert!(took >= Duration::from_secs(5), "fired early: {took:?}");
    assert!(took <= Duration::from_millis(5050), "fired late: {took:?}");
    assert_eq!(fx.pending_requests().await, 0);
    // The worker still works once it is resumed; its late answer is dropped.
    signal(info.worker_pid, Signal::SIGCONT);
    assert_eq!(
        fx.broker.get_mode("w", None).await.unwrap(),
        SessionMode::Relay
    );
    assert_eq!(fx.pending_requests().await, 0);
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_error_carries_the_workers_code() {
    let fx = Fixture::new();
    fx.spawn("w", &["sh"]).await;
    let err = fx
        .broker
        .request_worker("w", RequestKind::Snapshot, json!({"format": "bogus"}), None)
        .await
        .unwrap_err();
    match &err {
        RequestWorkerError::WorkerError { code, message, .. } => {
            assert_eq!(code, "bad_payload");
            assert!(message.contains("bogus"), "{message}");
        }
        other => panic!("expected WorkerError, got {other:?}"),
    }
    assert_eq!(fx.pending_requests().await, 0);
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_request_fails_at_once() {
    let fx = Fixture::new();
    let info = fx.spawn("w", &["sh"]).await;
    let child = info.pid.unwrap() as i32;
    signal(info.worker_pid, Signal::SIGSTOP);
    let broker = fx.broker.clone();
    let started = Instant::now();
    let request =
        tokio::spawn(async move { broker.get_mode("w", Some(Duration::from_secs(5))).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(info.worker_pid, Signal::SIGKILL);
    let err = request.await.unwrap().unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, RequestWorkerError::WorkerDisappeared { .. }),
        "{err:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}, should be well under the 5 s deadline"
    );
    assert_eq!(fx.pending_requests().await, 0);
    // The broker ends the session the dead worker left behind.
    eventually(
        Duration::from_secs(5),
        "orphaned child to be killed",
        || async { (!alive(child)).then_some(()) },
    )
    .await;
    // Requests to the dead worker fail the same way, immediately.
    let again = fx.broker.get_mode("w", None).await.unwrap_err();
    assert!(matches!(
        again,
        RequestWorkerError::WorkerDisappeared { .. }
    ));
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_worker_is_not_found() {
    let fx = Fixture::new();
    let err = fx.broker.get_mode("nobody", None).await.unwrap_err();
    assert_eq!(err, RequestWorkerError::WorkerNotFound("nobody".into()));
    assert_eq!(err.code(), "worker_not_found");
    assert_eq!(fx.pending_requests().await, 0);
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_fails_in_flight_requests_with_channel_closed() {
    let fx = Fixture::new();
    let info = fx.spawn("w", &["sh"]).await;
    signal(info.worker_pid, Signal::SIGSTOP);
    let broker = fx.broker.clone();
    let request =
        tokio::spawn(async move { broker.get_mode("w", Some(Duration::from_secs(30))).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fx.pending_requests().await, 1);
    let started = Instant::now();
    let shutdown = tokio::spawn({
        let broker = fx.broker.clone();
        async move { broker.shutdown().await }
    });
    let err = request.await.unwrap().unwrap_err();
    assert_eq!(err, RequestWorkerError::ChannelClosed);
    assert!(started.elapsed() < Duration::from_secs(1));
    // A stopped worker cannot end itself: the broker kills it after the grace period.
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .unwrap()
        .unwrap();
    assert!(!alive(info.worker_pid as i32));
    assert!(!alive(info.pid.unwrap() as i32));
    // And the handle now answers ChannelClosed for everything.
    assert_eq!(
        fx.broker.get_mode("w", None).await.unwrap_err(),
        RequestWorkerError::ChannelClosed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests_all_answered() {
    let fx = Fixture::new();
    for i in 0..4 {
        fx.spawn(&format!("w{i}"), &["sh"]).await;
    }
    let mut tasks = Vec::new();
    for i in 0..200 {
        let broker = fx.broker.clone();
        tasks.push(tokio::spawn(async move {
            broker.get_mode(&format!("w{}", i % 4), None).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), SessionMode::Relay);
    }
    assert_eq!(fx.pending_requests().await, 0);
    fx.broker.shutdown().await;
}

/// A worker that exits with requests unanswered: it reads each request and, instead of
/// answering, leaves its last screen and ends, as a real worker does when its program exits
/// while a request is on its way to it.
const EXITS_UNANSWERED_WORKER: &str = r#"#!/bin/sh
echo '{"v":1,"type":"ready","payload":{"pid":1,"rows":24,"cols":80,"protocol":1}}'
read -r line
read -r line
echo '{"v":1,"type":"last_screen","payload":{"plain":{"format":"plain","rows":24,"cols":80,"cursor":[1,0],"offset":12,"screen":["last words"]},"ansi":{"format":"ansi","rows":24,"cols":80,"cursor":[1,0],"offset":12,"screen":"bGFzdCB3b3Jkcw=="}}}'
echo '{"v":1,"type":"exited","payload":{"code":3,"signal":null}}'
"#;

/// The race behind a pane that showed "exit 3" over an empty screen: its first snapshot was
/// in flight when the program exited. A snapshot in flight gets what one sent a moment later
/// gets — the screen the program left — and any other request still fails at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_in_flight_when_the_worker_exits_gets_its_last_screen() {
    let fx = Fixture::with_fake_worker(EXITS_UNANSWERED_WORKER);
    fx.spawn("w", &["x"]).await;
    let (snap, mode) = tokio::join!(
        fx.broker
            .snapshot("w", SnapshotFormat::Plain, Some(Duration::from_secs(10))),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            fx.broker.get_mode("w", Some(Duration::from_secs(10))).await
        }
    );
    let snap = snap.expect("the last screen answers the snapshot in flight");
    assert_eq!(snap.plain_lines(), ["last words"]);
    assert_eq!(snap.offset, 12);
    assert!(
        matches!(mode, Err(RequestWorkerError::WorkerDisappeared { .. })),
        "{mode:?}"
    );
    assert_eq!(fx.pending_requests().await, 0);
    fx.broker.shutdown().await;
}
