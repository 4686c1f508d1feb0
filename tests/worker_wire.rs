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
    /// A worker watched with all the credit it could want (as a broker with a subscriber
    /// that keeps up would grant).
    fn start(cmd: &[&str]) -> Worker {
        let mut w = Worker::spawn(cmd);
        watch(&mut w, u64::MAX);
        w
    }

    /// A worker nobody watches: it parses its output and forwards none.
    fn start_unwatched(cmd: &[&str]) -> Worker {
        Worker::spawn(cmd)
    }

    fn spawn(cmd: &[&str]) -> Worker {
        Worker::spawn_with(&[], cmd)
    }

    /// With worker options before the `--`.
    fn spawn_with(opts: &[&str], cmd: &[&str]) -> Worker {
        let mut child = Command::new(exe())
            .args(["worker", "--name", "t"])
            .args(opts)
            .arg("--")
            .args(cmd)
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

fn watch(w: &mut Worker, grant: u64) {
    w.send(&format!(
        r#"{{"v":1,"type":"watch","payload":{{"grant":{grant}}}}}"#
    ));
}

/// The offset of the worker's screen: PTY bytes it has read and parsed.
fn parsed(w: &mut Worker) -> u64 {
    w.send(r#"{"v":1,"type":"snapshot","request_id":"s","payload":{"format":"plain"}}"#);
    w.next("response")["payload"]["ok"]["offset"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_watched_flood_stops_at_its_credit_and_arrives_whole_and_in_order() {
    // Three floods with pauses, forwarded only as far as the credit the test grants; between
    // grants the worker must forward nothing and read nothing (the child blocks).
    const LINES: usize = 300_000;
    const STEP: u64 = 256 * 1024;
    let script = format!(
        "stty -onlcr; f=$(mktemp); for r in 1 2 3; do seq 1 {LINES} | sed \"s/^/$r:/\" > $f; \
         cat $f; sleep 0.3; done; rm $f; echo flood-done; read x; echo got-$x; read x"
    );
    let mut w = Worker::start_unwatched(&["sh", "-c", &script]);
    w.next("ready");
    let mut grant = STEP;
    watch(&mut w, grant);
    let mut text = Vec::new();
    let mut next_offset = None;
    let mut held_back = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&text[text.len().saturating_sub(64)..]).contains("flood-done") {
        let f = match w.frames.recv_timeout(Duration::from_millis(300)) {
            Ok(f) if f["type"] == "output" => f,
            Ok(_) => continue,
            Err(_) if (text.len() as u64) < grant => {
                // Between floods (the script pauses); never for long.
                assert!(Instant::now() < deadline, "the floods never finished");
                continue;
            }
            Err(_) => {
                // Nothing for a while with the credit used up: the worker waits for more.
                if held_back < 2 {
                    // Out of credit, the worker reads nothing more: its screen stays put.
                    let before = parsed(&mut w);
                    std::thread::sleep(Duration::from_millis(200));
                    assert_eq!(parsed(&mut w), before, "it kept reading without credit");
                    held_back += 1;
                }
                grant += STEP * 8;
                watch(&mut w, grant);
                continue;
            }
        };
        let offset = f["payload"]["offset"].as_u64().unwrap();
        // The first chunk may start after what the shell printed before the watch.
        assert_eq!(
            offset,
            *next_offset.get_or_insert(offset),
            "output offsets must be contiguous"
        );
        let bytes = brokertui::b64::decode(f["payload"]["data_b64"].as_str().unwrap()).unwrap();
        *next_offset.as_mut().unwrap() += bytes.len() as u64;
        text.extend(bytes);
        assert!(
            text.len() as u64 <= grant,
            "forwarded {} bytes past a grant of {grant}",
            text.len()
        );
    }
    assert!(held_back >= 2, "the flood never waited for credit");
    let text = String::from_utf8(text).unwrap();
    let got: Vec<&str> = text.lines().filter(|l| l.contains(':')).collect();
    let want: Vec<String> = (1..=3)
        .flat_map(|r| (1..=LINES).map(move |n| format!("{r}:{n}")))
        .collect();
    assert_eq!(got.len(), want.len(), "every line, none twice");
    assert!(got.iter().zip(&want).all(|(g, w)| g == w), "in order");
    // After the floods a keystroke's answer comes back at once.
    watch(&mut w, u64::MAX);
    let t = Instant::now();
    w.send(r#"{"v":1,"type":"input","payload":{"data":"ok\r"}}"#);
    w.output_until("got-ok");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(w.stdin.take());
    w.next("exited");
}

#[test]
fn unwatched_output_is_parsed_and_not_forwarded() {
    let mut w = Worker::start_unwatched(&["sh", "-c", "seq 1 200000; echo done; read x"]);
    w.next("ready");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        w.send(r#"{"v":1,"type":"snapshot","request_id":"s","payload":{"format":"plain"}}"#);
        let snap = w.next("response");
        let lines = snap["payload"]["ok"]["screen"].as_array().unwrap().clone();
        if lines.iter().any(|l| l == "done") {
            // seq's lines plus "done", each with CR LF.
            let bytes: u64 = (1..=200_000u64)
                .map(|n| n.to_string().len() as u64 + 2)
                .sum();
            assert_eq!(
                snap["payload"]["ok"]["offset"],
                bytes + 6,
                "every byte parsed"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never parsed it all: {lines:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nobody watched: nothing was forwarded.
    while let Ok(f) = w.frames.try_recv() {
        assert_ne!(f["type"], "output", "forwarded while unwatched: {f}");
    }
    // Watched from now on, output flows from where it is.
    watch(&mut w, u64::MAX);
    w.send(r#"{"v":1,"type":"input","payload":{"data":"x\r"}}"#);
    w.output_until("x");
    drop(w.stdin.take());
    w.next("exited");
}

#[test]
fn stdin_eof_ends_the_whole_session_including_background_jobs() {
    // The shell starts a background job in a group of its own (set -m) and a plain one,
    // prints their pids, then waits in the foreground.
    let mut w = Worker::start(&[
        "sh",
        "-c",
        "read go; set -m; sleep 300 & echo bg1=$!; trap '' HUP; (trap '' HUP; sleep 301) & echo bg2=$!; sleep 302",
    ]);
    let ready = w.next("ready");
    // Once watched (what the shell prints before the watch is parsed, not forwarded).
    w.send(r#"{"v":1,"type":"input","payload":{"data":"go\r"}}"#);
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

#[test]
fn a_working_directory_that_does_not_exist_is_reported_not_replaced() {
    // portable-pty would have started the program in $HOME.
    let w = Worker::spawn_with(&["--cwd", "/no/such/dir"], &["sh", "-c", "pwd"]);
    let err = w.next("worker_error");
    assert_eq!(err["payload"]["code"], "spawn_failed");
    let message = err["payload"]["message"].as_str().unwrap();
    assert!(
        message.contains("/no/such/dir") && message.contains("does not exist"),
        "{message}"
    );
    assert_eq!(w.next("exited")["payload"]["code"], 127);
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
