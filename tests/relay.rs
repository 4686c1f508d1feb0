//! Relay messages through real workers: human-mode queueing and flush, relay-mode
//! injection, broadcast, bracketed paste.

mod common;

use std::time::Duration;

use brokertui::broker::{EventKind, Received, SpawnSpec};
use brokertui::protocol::requests::snapshot::SnapshotFormat;
use brokertui::protocol::{DeliveryState, SessionMode};
use common::*;

const T: Duration = Duration::from_secs(10);

async fn screen_text(fx: &Fixture, name: &str) -> String {
    fx.broker
        .snapshot(name, SnapshotFormat::Plain, None)
        .await
        .unwrap()
        .plain_lines()
        .join("\n")
}

/// A worker "bob" running `cat` in `human` mode: relay messages wait in its queue.
async fn spawn_human_bob(fx: &Fixture) {
    fx.spawn_spec(SpawnSpec {
        name: "bob".into(),
        cmd: vec!["cat".into()],
        mode: Some(SessionMode::Human),
        ..Default::default()
    })
    .await;
}

/// Sends `body` from alice to bob and waits until it is the one message in bob's queue.
async fn queue_for_bob(fx: &Fixture, body: &str) -> brokertui::broker::Accepted {
    let accepted = fx.broker.send_message("alice", "bob", body).await.unwrap();
    eventually(T, "queued", || async {
        (fx.broker.pending("bob", None).await.unwrap().pending.len() == 1).then_some(())
    })
    .await;
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_mode_queues_until_flush_then_injects_in_order() {
    let fx = Fixture::new();
    spawn_human_bob(&fx).await;
    let first = fx
        .broker
        .send_message("alice", "bob", "first message")
        .await
        .unwrap();
    fx.broker
        .send_message("alice", "bob", "second message")
        .await
        .unwrap();
    assert_eq!(first.recipients, ["bob"]);
    let pending = eventually(T, "two pending", || async {
        let p = fx.broker.pending("bob", None).await.unwrap().pending;
        (p.len() == 2).then_some(p)
    })
    .await;
    assert_eq!(pending[0].body, "first message");
    assert_eq!(pending[1].body, "second message");
    assert_eq!(pending[0].id, first.id);
    assert!(pending[0].queued_at_ms <= pending[1].queued_at_ms);
    assert!(
        !screen_text(&fx, "bob").await.contains("first message"),
        "nothing injected before flush"
    );
    assert_eq!(fx.broker.info("bob").await.unwrap().undelivered, 2);

    assert_eq!(fx.broker.flush("bob", None).await.unwrap().flushed, 2);
    let text = screen_text(&fx, "bob").await;
    let a = text.find("Relay message from alice").expect(&text);
    let (one, two) = (
        text.find("first message").unwrap(),
        text.find("second message").unwrap(),
    );
    assert!(a < one && one < two, "{text}");
    assert!(
        fx.broker
            .pending("bob", None)
            .await
            .unwrap()
            .pending
            .is_empty()
    );
    eventually(T, "outbox emptied", || async {
        (fx.broker.info("bob").await.unwrap().undelivered == 0).then_some(())
    })
    .await;
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_mode_injects_without_flush() {
    let fx = Fixture::new();
    fx.spawn("bob", &["cat"]).await;
    let mut events = fx.broker.subscribe();
    let accepted = fx
        .broker
        .send_message("alice", "bob", "hello bob")
        .await
        .unwrap();
    eventually(T, "injected text", || async {
        screen_text(&fx, "bob")
            .await
            .contains("Relay message from alice [")
            .then_some(())
    })
    .await;
    assert!(
        screen_text(&fx, "bob")
            .await
            .contains(&format!("[{}]: hello bob", accepted.id))
    );
    // The broker saw it injected and forgot it.
    loop {
        match tokio::time::timeout(T, events.recv()).await.unwrap() {
            Received::Item(e) => {
                if let EventKind::Delivery {
                    id,
                    state: DeliveryState::Injected,
                    ..
                } = &e.kind
                {
                    assert_eq!(id, &accepted.id);
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(fx.broker.info("bob").await.unwrap().undelivered, 0);
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_every_other_worker() {
    let fx = Fixture::new();
    for name in ["alice", "bob", "carol"] {
        fx.spawn(name, &["cat"]).await;
    }
    let accepted = fx
        .broker
        .send_message("alice", "*", "all hands")
        .await
        .unwrap();
    assert_eq!(accepted.recipients, ["bob", "carol"]);
    for name in ["bob", "carol"] {
        eventually(T, name, || async {
            screen_text(&fx, name)
                .await
                .contains("all hands")
                .then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !screen_text(&fx, "alice").await.contains("all hands"),
        "not to the sender"
    );
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_line_body_arrives_intact_as_bracketed_paste() {
    let fx = Fixture::new();
    let file = fx.dir.path().join("received");
    // A program that turns bracketed paste on and records exactly what it is sent.
    let script = format!(
        "printf '\\033[?2004h'; stty -echo; exec cat > {}",
        file.display()
    );
    fx.spawn("rec", &["sh", "-c", &script]).await;
    eventually(T, "bracketed paste on", || async {
        let s = fx
            .broker
            .snapshot("rec", SnapshotFormat::Ansi, None)
            .await
            .unwrap();
        String::from_utf8_lossy(&s.ansi_bytes())
            .contains("\x1b[?2004h")
            .then_some(())
    })
    .await;
    fx.broker
        .send_message("alice", "rec", "line one\nline two\n\ttabbed")
        .await
        .unwrap();
    let got = eventually(T, "recorded paste", || async {
        let got = std::fs::read_to_string(&file).unwrap_or_default();
        got.contains("\x1b[201~").then_some(got)
    })
    .await;
    assert!(
        got.contains("\x1b[200~Relay message from alice [")
            && got.contains("]: line one\nline two\n\ttabbed\x1b[201~"),
        "{got:?}"
    );
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_for_a_dead_worker_wait_for_its_successor() {
    let fx = Fixture::new();
    spawn_human_bob(&fx).await;
    queue_for_bob(&fx, "survive me").await;
    let info = fx.broker.info("bob").await.unwrap();
    signal(info.worker_pid, nix::sys::signal::Signal::SIGKILL);
    eventually(T, "worker gone", || async {
        fx.broker.get_mode("bob", None).await.is_err().then_some(())
    })
    .await;
    assert_eq!(fx.broker.info("bob").await.unwrap().undelivered, 1);
    fx.spawn("bob", &["cat"]).await;
    eventually(T, "redelivered", || async {
        screen_text(&fx, "bob")
            .await
            .contains("survive me")
            .then_some(())
    })
    .await;
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_recipient_is_an_error() {
    let fx = Fixture::new();
    assert!(
        fx.broker
            .send_message("alice", "ghost", "hi")
            .await
            .is_err()
    );
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_a_dead_worker_may_have_typed_is_not_typed_again() {
    let fx = Fixture::new();
    spawn_human_bob(&fx).await;
    let accepted = queue_for_bob(&fx, "maybe-typed").await;
    // What a worker killed between its Enter and reporting it leaves behind.
    let record = brokertui::protocol::inject_record::path(&fx.dir.path().join("logs"), "bob");
    std::fs::write(&record, format!("typed {0}\nentered {0}\n", accepted.id)).unwrap();
    let info = fx.broker.info("bob").await.unwrap();
    signal(info.worker_pid, nix::sys::signal::Signal::SIGKILL);
    eventually(T, "worker gone", || async {
        fx.broker.get_mode("bob", None).await.is_err().then_some(())
    })
    .await;
    fx.spawn("bob", &["cat"]).await;
    eventually(T, "counted as delivered", || async {
        (fx.broker.info("bob").await.unwrap().undelivered == 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !screen_text(&fx, "bob").await.contains("maybe-typed"),
        "typed twice"
    );
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        "",
        "record cleared once nothing is owed"
    );
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_events_carry_the_undelivered_count_they_change() {
    // A client follows each worker's count of owed messages from events alone.
    let fx = Fixture::new();
    spawn_human_bob(&fx).await;
    let mut events = fx.broker.subscribe();
    queue_for_bob(&fx, "one").await;
    let mut accepted = None;
    let mut queued = None;
    while accepted.is_none() || queued.is_none() {
        let Received::Item(ev) = tokio::time::timeout(T, events.recv()).await.unwrap() else {
            continue;
        };
        match &ev.kind {
            EventKind::MessageAccepted { undelivered, .. } => {
                accepted = undelivered.get("bob").copied()
            }
            EventKind::Delivery {
                state: DeliveryState::Queued,
                undelivered,
                ..
            } => queued = *undelivered,
            _ => {}
        }
    }
    assert_eq!(accepted, Some(1), "accepted: one owed to bob");
    assert_eq!(queued, Some(1), "queued in bob's worker: still owed");
    fx.broker.flush("bob", None).await.unwrap();
    loop {
        let Received::Item(ev) = tokio::time::timeout(T, events.recv()).await.unwrap() else {
            continue;
        };
        if let EventKind::Delivery {
            state: DeliveryState::Injected,
            undelivered,
            ..
        } = &ev.kind
        {
            assert_eq!(*undelivered, Some(0), "injected: nothing owed");
            break;
        }
    }
    fx.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_gets_the_messages_held_for_its_name() {
    let fx = Fixture::new();
    // Exits the first time; the second time (restarted) it reads what it is sent.
    let flag = fx.dir.path().join("ran-once");
    let script = format!(
        "if [ -e {0} ]; then stty -echo; exec cat; else touch {0}; exit 4; fi",
        flag.display()
    );
    fx.spawn("carol", &["sh", "-c", &script]).await;
    common::eventually(Duration::from_secs(5), "carol to exit", || async {
        let info = fx.broker.info("carol").await.ok()?;
        info.exit.is_some().then_some(())
    })
    .await;
    fx.broker
        .send_message("alice", "carol", "held-for-carol")
        .await
        .unwrap();
    assert_eq!(fx.broker.info("carol").await.unwrap().undelivered, 1);
    let err = fx.broker.restart("nobody").await.unwrap_err();
    assert!(matches!(
        err,
        brokertui::broker::BrokerError::WorkerNotFound(_)
    ));
    fx.spawn("dave", &["cat"]).await;
    let err = fx.broker.restart("dave").await.unwrap_err();
    assert!(err.to_string().contains("still running"), "{err}");

    let info = fx.broker.restart("carol").await.unwrap();
    assert_eq!(info.cmd, vec!["sh", "-c", script.as_str()]);
    let text = common::eventually(Duration::from_secs(10), "the held message", || async {
        let text = screen_text(&fx, "carol").await;
        text.contains("held-for-carol").then_some(text)
    })
    .await;
    assert_eq!(text.matches("held-for-carol").count(), 1, "{text}");
}
