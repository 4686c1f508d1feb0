//! The idle sweep with a short timeout: a worker idle with nobody attached is warned, then
//! released; activity in between cancels it; a watched worker or one with its own timeout
//! of zero is never swept.

mod common;

use std::time::{Duration, Instant};

use brokertui::broker::{EventKind, EventSubscription, Received, SpawnSpec};
use common::Fixture;

/// Every worker: released after 3 s idle, warned 2 s before.
fn fixture() -> Fixture {
    Fixture::with(|c| {
        c.idle_timeout = Some(Duration::from_secs(3));
        c.idle_warning = Duration::from_secs(2);
    })
}

/// The sweep's events about `name` until `until` is seen: (code or "released", when).
async fn sweep_events(
    events: &mut EventSubscription,
    name: &str,
    until: &str,
    timeout: Duration,
) -> Vec<(String, Instant)> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let e = match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Received::Item(e)) => e,
            Ok(other) => panic!("{other:?}"),
            Err(_) => panic!("no {until:?} for {name} in time; saw {seen:?}"),
        };
        let code = match &e.kind {
            EventKind::Alert { code, worker, .. } if worker.as_deref() == Some(name) => {
                code.clone()
            }
            EventKind::WorkerReleased { name: n } if n == name => "released".into(),
            _ => continue,
        };
        let done = code == until;
        seen.push((code, Instant::now()));
        if done {
            return seen;
        }
    }
}

fn codes(seen: &[(String, Instant)]) -> Vec<&str> {
    seen.iter().map(|(c, _)| c.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_is_warned_then_released() {
    let f = fixture();
    let mut events = f.broker.subscribe();
    let start = Instant::now();
    f.spawn("sleepy", &["cat"]).await;
    let seen = sweep_events(&mut events, "sleepy", "released", Duration::from_secs(10)).await;
    assert_eq!(
        codes(&seen),
        ["idle_release_soon", "idle_released", "released"]
    );
    let warned = seen[0].1 - start;
    let released = seen[1].1 - start;
    assert!(warned >= Duration::from_millis(900), "warned at {warned:?}");
    assert!(
        released >= Duration::from_secs(3),
        "released at {released:?}"
    );
    assert!(
        released - warned >= Duration::from_millis(1500),
        "{warned:?} {released:?}"
    );
    assert!(f.broker.info("sleepy").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_after_the_warning_cancels_the_release() {
    let f = fixture();
    let mut events = f.broker.subscribe();
    f.spawn("busy", &["cat"]).await;
    sweep_events(
        &mut events,
        "busy",
        "idle_release_soon",
        Duration::from_secs(10),
    )
    .await;
    f.broker.input("busy", "still here\r").await.unwrap();
    let seen = sweep_events(
        &mut events,
        "busy",
        "idle_release_cancelled",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(codes(&seen), ["idle_release_cancelled"]);
    // Past the first deadline it is still there; left alone, it is warned afresh later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(f.broker.info("busy").await.is_ok());
    let seen = sweep_events(&mut events, "busy", "released", Duration::from_secs(10)).await;
    assert_eq!(
        codes(&seen),
        ["idle_release_soon", "idle_released", "released"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_worker_and_one_that_opted_out_are_not_swept() {
    let f = fixture();
    let mut events = f.broker.subscribe();
    f.spawn("watched", &["cat"]).await;
    let _sub = f.broker.subscribe_output("watched").await.unwrap();
    f.spawn_spec(SpawnSpec {
        name: "never".into(),
        cmd: vec!["cat".into()],
        idle_timeout_ms: Some(0),
        ..Default::default()
    })
    .await;
    f.spawn("control", &["cat"]).await;
    let seen = sweep_events(&mut events, "control", "released", Duration::from_secs(10)).await;
    assert_eq!(codes(&seen).last(), Some(&"released"));
    // Well past the timeout, neither of the others was warned or released.
    while let Some(Received::Item(e)) = events.try_recv() {
        if let EventKind::Alert { worker, code, .. } = &e.kind {
            assert_eq!(worker.as_deref(), Some("control"), "{code}");
        }
    }
    assert!(f.broker.info("watched").await.is_ok());
    assert!(f.broker.info("never").await.is_ok());
}
