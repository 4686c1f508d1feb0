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
