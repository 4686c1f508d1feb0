//! The `brokertui worker` process driven directly over its stdin/stdout, as a human
//! debugging it would, and a broker fed garbage by a fake worker.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use brokertui::protocol::SessionMode;
use common::*;
use serde_json::{Value, json};

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    frames: mpsc::Receiver<Value>,
}

impl Worker {
    fn start(cmd: &[&str]) -> Worker {
        Worker::start_with(&[], &[], cmd)
    }

    /// With extra worker options (before `--`) and environment.
    fn start_with(opts: &[&str], env: &[(&str, &str)], cmd: &[&str]) -> Worker {
        let mut child = Command::new(exe())
            .args(["worker", "--name", "t"])
            .args(opts)
            .arg("--")
            .args(cmd)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, frames) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).expect("worker wrote invalid JSON");
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Worker {
            child,
            stdin,
            frames,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Next frame of `kind`, skipping others (output etc.).
    fn next(&self, kind: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = self
                .frames
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {kind} frame"));
            if f["type"] == kind {
                return f;
            }
        }
    }

    /// Output bytes until `needle` appears.
    fn output_until(&self, needle: &str) -> String {
        self.output_while(|t| !t.contains(needle))
    }

    fn output_while(&self, more: impl Fn(&str) -> bool) -> String {
        let mut text = String::new();
        while more(&text) {
            let f = self.next("output");
            let bytes = brokertui::b64::decode(f["payload"]["data_b64"].as_str().unwrap()).unwrap();
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        text
    }
}

#[test]
fn garbage_gets_worker_error_and_the_worker_keeps_serving() {
    let mut w = Worker::start(&["sh"]);
    let ready = w.next("ready");
    assert_eq!(ready["payload"]["protocol"], 1);
    let cases = [
        ("this is not json", "invalid_json"),
        (r#"{"v":1,"type":"teleport","payload":{}}"#, "unknown_type"),
        (
            r#"{"v":1,"type":"resize","payload":{"rows":10}}"#,
            "bad_payload",
        ),
        (r#"{"v":1,"type":"input","payload":{}}"#, "bad_payload"),
        (
            r#"{"v":1,"type":"resize","payload":{"rows":0,"cols":80}}"#,
            "invalid_dimensions",
        ),
        (
            r#"{"v":1,"type":"get_mode","payload":{}}"#,
            "missing_request_id",
        ),
        (
            r#"{"v":9,"type":"get_mode","request_id":"1","payload":{}}"#,
            "bad_version",
        ),
        (
            r#"{"v":1,"type":"input","payload":{"data_b64":"!!!"}}"#,
            "bad_payload",
        ),
    ];
    for (line, code) in cases {
        w.send(line);
        let err = w.next("worker_error");
        assert_eq!(err["payload"]["code"], code, "for {line}");
    }
    // A request with a bad payload is answered as a request, with the error.
    w.send(r#"{"v":1,"type":"set_mode","request_id":"x1","payload":{"mode":"sideways"}}"#);
    let resp = w.next("response");
    assert_eq!(resp["request_id"], "x1");
    assert_eq!(resp["payload"]["error"]["code"], "bad_payload");
    // Still serving.
    w.send(r#"{"v":1,"type":"get_mode","request_id":"x2","payload":{}}"#);
    let resp = w.next("response");
    assert_eq!(resp["request_id"], "x2");
    assert_eq!(resp["payload"]["ok"], json!({"mode": "relay"}));
    w.send(r#"{"v":1,"type":"input","payload":{"data":"echo al''ive\r"}}"#);
    w.output_until("alive\r\n");
    drop(w.stdin.take());
    w.next("exited");
    assert!(w.child.wait().unwrap().success());
}

#[test]
fn a_huge_resize_is_refused_and_the_worker_still_ends_on_eof() {
    let mut w = Worker::start(&["sh"]);
    w.next("ready");
    let rss_kb = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap()
    };
    let before = rss_kb(w.child.id());
    for size in [(65535, 65535), (1001, 80), (24, 1001)] {
        w.send(&format!(
            r#"{{"v":1,"type":"resize","payload":{{"rows":{},"cols":{}}}}}"#,
            size.0, size.1
        ));
        let err = w.next("worker_error");
        assert_eq!(
            err["payload"]["code"], "invalid_dimensions",
            "{size:?}: {err}"
        );
    }
    w.send(r#"{"v":1,"type":"resize","payload":{"rows":1000,"cols":1000}}"#);
    w.send(r#"{"v":1,"type":"input","payload":{"data":"echo st''ill\r"}}"#);
    w.output_until("still\r\n");
    assert!(
        rss_kb(w.child.id()) < before + 64 * 1024,
        "the worker did not grow for a refused size"
    );
    let ended = Instant::now();
    drop(w.stdin.take());
    w.next("exited");
    assert!(ended.elapsed() < Duration::from_secs(5));
    assert!(w.child.wait().unwrap().success());
}

/// Bytes a reader thread that really read PTY output has read at least (schedstat reads
/// alone come to a few dozen bytes).
const READ_CHUNK_MIN: u64 = 64 * 1024;

/// Bytes the worker's thread `name` has read: `pty-reader` (the ordinary PTY reader) or
/// `pty-flood` (its `SCHED_IDLE` twin).
fn thread_bytes(pid: u32, name: &str) -> u64 {
    let mut names = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let io = std::fs::read_to_string(dir.join("io")).unwrap();
            let rchar = io.lines().find_map(|l| l.strip_prefix("rchar: ")).unwrap();
            return rchar.trim().parse().unwrap();
        }
        names.push(comm);
    }
    panic!("worker {pid} has no {name} thread, only {names:?}");
}

#[test]
fn floods_arrive_whole_and_in_order_across_reader_hand_offs() {
    // Three floods with pauses: output waiting at a read passes reading to the SCHED_IDLE
    // twin; a pause passes it back. Whether a flood lasts and starves its reader depends on
    // how busy the machine is, so the hook makes any waiting output a flood (those judgements
    // have their own unit tests in pty_reader.rs). Each flood is a file `cat` writes as fast
    // as the PTY takes it, so output waits at some read.
    const LINES: usize = 300_000;
    let script = format!(
        "stty -onlcr; f=$(mktemp); for r in 1 2 3; do seq 1 {LINES} | sed \"s/^/$r:/\" > $f; \
         cat $f; sleep 0.3; done; rm $f; echo flood-done; read x; echo got-$x; read x"
    );
    // The flooding worker marks itself in the broker's directory (worker::flood_peers).
    let floods = tempfile::tempdir().unwrap();
    let mut w = Worker::start_with(
        &["--floods-dir", floods.path().to_str().unwrap()],
        &[("BROKERTUI_TEST_EAGER_FLOOD", "1")],
        &["sh", "-c", &script],
    );
    let marker = floods.path().join(w.child.id().to_string());
    let mut marked = false;
    w.next("ready");
    let mut text = Vec::new();
    let mut next_offset = 0;
    while !String::from_utf8_lossy(&text[text.len().saturating_sub(64)..]).contains("flood-done") {
        let f = w.next("output");
        assert_eq!(
            f["payload"]["offset"], next_offset,
            "output offsets must be contiguous"
        );
        let bytes = brokertui::b64::decode(f["payload"]["data_b64"].as_str().unwrap()).unwrap();
        next_offset += bytes.len() as u64;
        text.extend(bytes);
        marked |= marker.exists();
    }
    assert!(marked, "the flooding worker never marked itself");
    let text = String::from_utf8(text).unwrap();
    let got: Vec<&str> = text.lines().filter(|l| l.contains(':')).collect();
    let want: Vec<String> = (1..=3)
        .flat_map(|r| (1..=LINES).map(move |n| format!("{r}:{n}")))
        .collect();
    assert_eq!(got.len(), want.len(), "every line, none twice");
    assert!(got.iter().zip(&want).all(|(g, w)| g == w), "in order");
    let pid = w.child.id();
    // (The readers also read their own /proc schedstat, a few dozen bytes at a time, so
    // these counts are PTY bytes plus a little.)
    let twin_read = thread_bytes(pid, "pty-flood");
    assert!(
        twin_read >= READ_CHUNK_MIN,
        "the floods never passed reading to the twin ({twin_read} bytes)"
    );
    // After the floods a keystroke's answer comes back at once, read by the ordinary reader:
    // the quiet after the last flood passed reading back.
    let read_before = thread_bytes(pid, "pty-reader");
    let t = Instant::now();
    w.send(r#"{"v":1,"type":"input","payload":{"data":"ok\r"}}"#);
    w.output_until("got-ok");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(
        thread_bytes(pid, "pty-reader") > read_before,
        "the ordinary reader never ran after the floods: reading never passed back"
    );
    // (Eagerly, "got-ok" waiting behind the echo is a flood too: wait out its quiet.)
    let deadline = Instant::now() + Duration::from_secs(2);
    while marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !marker.exists(),
        "still marked as flooding after the floods"
    );
    drop(w.stdin.take());
    w.next("exited");
}

#[test]
fn a_worker_ended_mid_flood_leaves_no_flood_marker() {
    let floods = tempfile::tempdir().unwrap();
    let mut w = Worker::start_with(
        &["--floods-dir", floods.path().to_str().unwrap()],
        &[("BROKERTUI_TEST_EAGER_FLOOD", "1")],
        &["yes", "flood"],
    );
    let marker = floods.path().join(w.child.id().to_string());
    w.next("ready");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the flood never marked itself");
        let _ = w.frames.recv_timeout(Duration::from_millis(10));
    }
    // The broker goes away while the child floods (a reader may be parked mid-hand-off).
    drop(w.stdin.take());
    w.next("exited");
    assert!(w.child.wait().unwrap().success());
    assert!(!marker.exists(), "the flood marker outlived its worker");
}

#[test]
fn stdin_eof_ends_the_whole_session_including_background_jobs() {
    // The shell starts a background job in a group of its own (set -m) and a plain one,
    // prints their pids, then waits in the foreground.
    let mut w = Worker::start(&[
        "sh",
        "-c",
        "set -m; sleep 300 & echo bg1=$!; trap '' HUP; (trap '' HUP; sleep 301) & echo bg2=$!; sleep 302",
    ]);
    let ready = w.next("ready");
    let shell = ready["payload"]["pid"].as_i64().unwrap() as i32;
    let text = w.output_while(|t| {
        !t.split("bg2=")
            .nth(1)
            .is_some_and(|rest| rest.contains('\n'))
    });
    let pid_of = |key: &str| -> i32 {
        let start = text.find(key).unwrap() + key.len();
        text[start..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (bg1, bg2) = (pid_of("bg1="), pid_of("bg2="));
    for pid in [shell, bg1, bg2] {
        assert!(alive(pid), "{pid} should be running");
    }
    drop(w.stdin.take()); // the broker is gone
    let exited = w.next("exited");
    assert!(exited["payload"]["signal"].is_string(), "{exited}");
    assert!(w.child.wait().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while [shell, bg1, bg2].iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in [shell, bg1, bg2] {
        assert!(
            !alive(pid),
            "{pid} survived the worker (one of them ignores SIGHUP)"
        );
    }
}

#[test]
fn a_command_that_does_not_exist_is_reported() {
    let w = Worker::start(&["/no/such/program"]);
    let err = w.next("worker_error");
    assert_eq!(err["payload"]["code"], "spawn_failed");
    let exited = w.next("exited");
    assert_eq!(exited["payload"]["code"], 127);
}

/// A fake worker that says it is ready, then writes garbage, an unknown frame, a response
/// nobody asked for, and answers nothing.
const FAKE_WORKER: &str = r#"#!/bin/sh
echo '{"v":1,"type":"ready","payload":{"pid":1,"rows":24,"cols":80,"protocol":1}}'
echo 'garbage {{{'
echo '{"v":1,"type":"bogus_type","payload":{}}'
echo '{"v":1,"type":"response","request_id":"999999","payload":{"kind":"get_mode","ok":{"mode":"relay"},"error":null}}'
echo '{"v":1,"type":"mode_changed","payload":{"mode":"teleport"}}'
exec cat > /dev/null
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_survives_a_worker_that_speaks_garbage() {
    let fx = Fixture::with_fake_worker(FAKE_WORKER);
    let broker = &fx.broker;
    let mut events = broker.subscribe();
    fx.spawn("liar", &["x"]).await;
    let mut codes = Vec::new();
    while codes.len() < 3 {
        let (code, worker) = next_alert(&mut events, Duration::from_secs(5)).await;
        assert_eq!(worker.as_deref(), Some("liar"));
        codes.push(code);
    }
    assert_eq!(codes, ["invalid_json", "unknown_type", "bad_payload"]);
    // The broker still answers, and a request to the mute worker times out cleanly.
    assert_eq!(broker.list().await.unwrap().len(), 1);
    let err = broker
        .get_mode("liar", Some(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "worker_timeout");
    assert_eq!(broker.info("liar").await.unwrap().mode, SessionMode::Relay);
    assert_eq!(broker.stats().await.unwrap().pending_requests, 0);
    broker.shutdown().await;
}
