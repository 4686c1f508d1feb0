//! What a user reads when the command line is wrong: one line, the argument named once, and
//! nothing started.

mod common;

use std::process::Command;

use common::*;

fn run_tui(args: &[&str]) -> (bool, String) {
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(exe())
        .arg("--state-dir")
        .arg(state.path().join("state"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_worker_argument_is_named_once() {
    let (ok, err) = run_tui(&["-w", "bash"]);
    assert!(!ok);
    assert_eq!(
        err.trim_end(),
        r#"brokertui: error: -w "bash": expected NAME=CMD"#
    );
}

#[test]
fn two_workers_of_one_name_are_refused() {
    let (ok, err) = run_tui(&["-w", "a=sh", "-w", "a=cat"]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(r#"-w "a=cat": the name "a" is given twice"#),
        "{err}"
    );
}

#[test]
fn connecting_to_a_broker_that_is_not_there_says_so() {
    let (ok, err) = run_tui(&["--connect", "http://127.0.0.1:1", "--token", "x"]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach"), "{err}");
    assert!(!err.contains("shutting down"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_does_not_exist_is_one_clear_error_and_no_alerts() {
    let f = Fixture::new();
    let mut events = f.broker.subscribe();
    for (cmd, want) in [
        ("/no/such/cmd", "no such command: /no/such/cmd"),
        (
            "no-such-program-here",
            "no such command: no-such-program-here (not found on PATH)",
        ),
        (
            "/etc/passwd",
            "cannot run /etc/passwd: it is not an executable file",
        ),
    ] {
        let err = f
            .broker
            .spawn(brokertui::broker::SpawnSpec {
                name: "bad".into(),
                cmd: vec![cmd.into()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("could not start the worker: {want}")
        );
    }
    // The caller heard why; nothing else says it again.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    while let Some(brokertui::broker::Received::Item(e)) = events.try_recv() {
        assert!(
            !matches!(e.kind, brokertui::broker::EventKind::Alert { .. }),
            "{e:?}"
        );
    }
}
