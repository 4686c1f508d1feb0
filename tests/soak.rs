//! Soak: 32 clients doing random spawn/release/input/snapshot/mode/flush/send for a while,
//! with workers SIGKILLed at random; then every invariant is checked. `BROKERTUI_SOAK_SECS`
//! sets the length (CI runs a short one; docs/reliability.md records a long one).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brokertui::broker::{BrokerError, EventKind, Received, SpawnSpec};
use brokertui::protocol::requests::snapshot::SnapshotFormat;
use brokertui::protocol::{DeliveryState, SessionMode};
use common::*;
use rand::RngExt;

const NAMES: usize = 8;

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn spec(name: &str, quiet: bool) -> SpawnSpec {
    let cmd = if quiet {
        "stty -echo; exec cat"
    } else {
        "exec sh"
    };
    SpawnSpec {
        name: name.into(),
        cmd: vec!["sh".into(), "-c".into(), cmd.into()],
        ..Default::default()
    }
}

#[derive(Default)]
struct Tally {
    calls: u64,
    typed_errors: u64,
    kills: u64,
    accepted: HashSet<(String, String)>,
    pids: HashSet<i32>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_mixed_load_with_random_kills() {
    let secs: u64 = std::env::var("BROKERTUI_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let fds_before = fds();
    let fx = Fixture::new();
    let broker = fx.broker.clone();
    let tally = Arc::new(Mutex::new(Tally::default()));

    // Every delivery the broker reports, counted per (worker, id).
    let injected: Arc<Mutex<HashMap<(String, String), u32>>> = Arc::default();
    let lagged = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut events = broker.subscribe();
    let collector = {
        let (injected, lagged) = (injected.clone(), lagged.clone());
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Received::Item(e) => {
                        if let EventKind::Delivery {
                            name,
                            id,
                            state: DeliveryState::Injected,
                            ..
                        } = &e.kind
                        {
                            *injected
                                .lock()
                                .unwrap()
                                .entry((name.clone(), id.clone()))
                                .or_default() += 1;
                        }
                    }
                    Received::Lagged(_) => lagged.store(true, std::sync::atomic::Ordering::SeqCst),
                    Received::Closed => return,
                }
            }
        })
    };

    for i in 0..NAMES {
        let info = broker
            .spawn(spec(&format!("w{i}"), i % 2 == 0))
            .await
            .unwrap();
        tally.lock().unwrap().pids.insert(info.pid.unwrap() as i32);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut clients = Vec::new();
    for c in 0..32 {
        let (broker, tally) = (broker.clone(), tally.clone());
        clients.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let (op, n, to) = {
                    let mut rng = rand::rng();
                    (
                        rng.random_range(0..100u32),
                        rng.random_range(0..NAMES),
                        rng.random_range(0..NAMES),
                    )
                };
                let name = format!("w{n}");
                let t = Duration::from_millis(1500);
                // Every call must come back, with a result or a typed error.
                let outcome: Result<Result<(), String>, _> =
                    tokio::time::timeout(Duration::from_secs(15), async {
                        match op {
                            0..=4 => match broker.spawn(spec(&name, n % 2 == 0)).await {
                                Ok(info) => {
                                    tally
                                        .lock()
                                        .unwrap()
                                        .pids
                                        .insert(info.pid.unwrap_or(0) as i32);
                                    Ok(())
                                }
                                Err(e) => Err(e.to_string()),
                            },
                            5..=7 => broker.release(&name).await.map_err(|e| e.to_string()),
                            8..=9 if c % 4 == 0 => {
                                // A crash: SIGKILL the worker process.
                                if let Ok(info) = broker.info(&name).await
                                    && info.exit.is_none()
                                {
                                    // It may have ended since `info` (a release by another
                                    // client): ESRCH is fine, anything else is not.
                                    match nix::sys::signal::kill(
                                        nix::unistd::Pid::from_raw(info.worker_pid as i32),
                                        nix::sys::signal::Signal::SIGKILL,
                                    ) {
                                        Ok(()) => tally.lock().unwrap().kills += 1,
                                        Err(nix::errno::Errno::ESRCH) => {}
                                        Err(e) => panic!("kill {}: {e}", info.worker_pid),
                                    }
                                }
                                Ok(())
                            }
                            10..=29 => broker
                                .input(&name, "echo x\r")
                                .await
                                .map_err(|e| e.to_string()),
                            30..=44 => broker
                                .snapshot(&name, SnapshotFormat::Plain, Some(t))
                                .await
                                .map(drop)
                                .map_err(|e| e.to_string()),
                            45..=54 => {
                                let mode = if op % 2 == 0 {
                                    SessionMode::Human
                                } else {
                                    SessionMode::Relay
                                };
                                broker
                                    .set_mode(&name, mode, Some(t))
                                    .await
                                    .map(drop)
                                    .map_err(|e| e.to_string())
                            }
                            55..=64 => broker
                                .flush(&name, Some(t))
                                .await
                                .map(drop)
                                .map_err(|e| e.to_string()),
                            65..=74 => broker
                                .pending(&name, Some(t))
                                .await
                                .map(drop)
                                .map_err(|e| e.to_string()),
                            _ => {
                                let target = if op > 95 {
                                    "*".to_string()
                                } else {
                                    format!("w{to}")
                                };
                                match broker
                                    .send_message(
                                        &format!("client{c}"),
                                        &target,
                                        &format!("soak {c} {op}"),
                                    )
                                    .await
                                {
                                    Ok(a) => {
                                        let mut t = tally.lock().unwrap();
                                        for r in a.recipients {
                                            t.accepted.insert((r, a.id.clone()));
                                        }
                                        Ok(())
                                    }
                                    Err(BrokerError::WorkerNotFound(_)) => Err("not found".into()),
                                    Err(e) => Err(e.to_string()),
                                }
                            }
                        }
                    })
                    .await;
                let mut t = tally.lock().unwrap();
                t.calls += 1;
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => t.typed_errors += 1,
                    Err(_) => panic!("a call (op {op} on {name}) never came back"),
                }
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }

    // Drain: a live worker for every name, all in relay mode, until nothing is owed.
    for i in 0..NAMES {
        let name = format!("w{i}");
        match broker.info(&name).await {
            Ok(info) if info.exit.is_none() => {
                let _ = broker.set_mode(&name, SessionMode::Relay, None).await;
            }
            _ => {
                let info = broker.spawn(spec(&name, true)).await.unwrap();
                tally.lock().unwrap().pids.insert(info.pid.unwrap() as i32);
            }
        }
    }
    eventually(
        Duration::from_secs(60),
        "every accepted message to be injected",
        || async { (broker.stats().await.unwrap().undelivered_messages == 0).then_some(()) },
    )
    .await;
    let stats = broker.stats().await.unwrap();
    assert_eq!(
        stats.pending_requests, 0,
        "a request never left the pending map"
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    let pids: Vec<i32> = {
        let t = tally.lock().unwrap();
        let injected = injected.lock().unwrap();
        if !lagged.load(std::sync::atomic::Ordering::SeqCst) {
            for key in &t.accepted {
                assert_eq!(
                    injected.get(key).copied().unwrap_or(0),
                    1,
                    "{key:?} injected {:?} times",
                    injected.get(key)
                );
            }
            assert!(
                injected.values().all(|&n| n == 1),
                "a message was injected twice"
            );
        }
        println!(
            "soak: {secs}s, {} calls ({} typed errors), {} worker kills, {} messages accepted, {} injected, 0 lost",
            t.calls,
            t.typed_errors,
            t.kills,
            t.accepted.len(),
            injected.len()
        );
        t.pids.iter().copied().filter(|p| *p > 1).collect()
    };

    broker.shutdown().await;
    collector.abort();
    eventually(Duration::from_secs(10), "no child left alive", || async {
        pids.iter().all(|p| !alive(*p)).then_some(())
    })
    .await;
    let orphans: Vec<i32> = pids
        .iter()
        .flat_map(|p| brokertui::teardown::session::session_members(*p))
        .collect();
    assert!(orphans.is_empty(), "orphaned processes: {orphans:?}");
    let fds_after = fds();
    assert!(
        fds_after <= fds_before + 8,
        "file descriptors leaked: {fds_before} → {fds_after}"
    );
}
