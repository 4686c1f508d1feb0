//! Faults and hostile input: a broker that crashes with messages owed, workers that exit,
//! ignore SIGHUP, fork, or write a 64 MiB line, and HTTP clients that send garbage, hold
//! connections open or come a thousand at once.

mod common;

use std::time::{Duration, Instant};

use brokertui::broker::{EventKind, Received};
use common::serve::{QUIET_CAT, Serve};
use common::*;
use nix::sys::signal::Signal;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_messages_survive_a_broker_crash_and_arrive_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Serve::start_in(dir.path(), &[]);
    let (st, _) = a
        .call(
            Method::POST,
            "/api/spawn",
            Some(json!({"name": "bob", "cmd": QUIET_CAT, "mode": "human"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    for body in ["first-msg", "second-msg"] {
        let (st, _) = a
            .call(
                Method::POST,
                "/api/send",
                Some(json!({"to": "bob", "body": body})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
    }
    eventually(T, "both queued in the worker", || async {
        let m = a.owed().await;
        (m.len() == 2 && m.iter().all(|x| x["where"] == "in_worker")).then_some(())
    })
    .await;
    a.crash("bob").await;

    // --fresh: the messages wait for a new bob (tests/fleet.rs has bob itself come back).
    let b = Serve::start_in(dir.path(), &["--fresh"]);
    let owed = b.owed().await;
    assert_eq!(owed.len(), 2, "{owed:?}");
    assert_eq!(owed[0]["body"], "first-msg");
    assert_eq!(owed[1]["where"], "waiting");
    // What the program reads, recorded exactly (the terminal's echo would show lines twice).
    let record = dir.path().join("bob-received");
    let cmd = format!("exec cat >> {}", record.display());
    b.spawn("bob", &["sh", "-c", &cmd]).await;
    let text = eventually(T, "both messages read", || async {
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        text.contains("second-msg").then_some(text)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&record).unwrap_or(text);
    assert_eq!(text.matches("first-msg").count(), 1, "{text}");
    assert_eq!(text.matches("second-msg").count(), 1, "{text}");
    assert!(text.find("first-msg") < text.find("second-msg"));
    eventually(T, "journal emptied", || async {
        b.owed().await.is_empty().then_some(())
    })
    .await;
    drop(b);

    // A third start owes nothing: the deliveries were journalled too.
    let c = Serve::start_in(dir.path(), &["--fresh"]);
    assert!(c.owed().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_journal_record_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"op":"accept","to":"bob","msg":{"id":"m1","from":"a","to":"bob","body":"kept","sent_at_ms":1}}"#;
    std::fs::write(
        dir.path().join("messages.jsonl"),
        format!("{good}\n{{\"op\":\"accept\",\"to\":\"bo"),
    )
    .unwrap();
    let s = Serve::start_in(dir.path(), &[]);
    let owed = s.owed().await;
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0]["body"], "kept");
    let mut ws = s.ws("since=0").await;
    use futures_util::StreamExt;
    let first: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(first["code"], "journal_torn_record", "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_messages_can_be_listed_and_dropped() {
    let s = Serve::start(&[]);
    let (_, sent) = s
        .call(
            Method::POST,
            "/api/send",
            Some(json!({"to": "*", "body": "nobody home"})),
        )
        .await;
    assert_eq!(sent["recipients"], json!([]));
    s.call(
        Method::POST,
        "/api/spawn",
        Some(json!({"name": "w", "cmd": ["cat"], "mode": "human"})),
    )
    .await;
    let (_, sent) = s
        .call(
            Method::POST,
            "/api/send",
            Some(json!({"to": "w", "body": "drop me"})),
        )
        .await;
    let id = sent["id"].as_str().unwrap().to_string();
    eventually(T, "listed", || async {
        (s.owed().await.len() == 1).then_some(())
    })
    .await;
    let (st, v) = s
        .call(Method::DELETE, &format!("/api/messages/{id}"), None)
        .await;
    assert_eq!((st, v["dropped"].as_u64()), (StatusCode::OK, Some(1)));
    assert!(s.owed().await.is_empty());
    let (st, _) = s
        .call(Method::DELETE, &format!("/api/messages/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_that_exit_at_once_ignore_sighup_or_fork_leave_nothing_behind() {
    let fx = Fixture::new();
    let mut events = fx.broker.subscribe();
    // Exits instantly, cleanly and not.
    fx.spawn("ok", &["true"]).await;
    fx.spawn("bad", &["sh", "-c", "exit 3"]).await;
    eventually(T, "both exited", || async {
        let l = fx.broker.list().await.unwrap();
        l.iter().all(|w| w.exit.is_some()).then_some(())
    })
    .await;
    assert_eq!(
        fx.broker.info("bad").await.unwrap().exit.unwrap().code,
        Some(3)
    );
    let mut saw_alert = false;
    while let Some(Received::Item(e)) = events.try_recv() {
        if let EventKind::Alert {
            worker: Some(w),
            code,
            ..
        } = &e.kind
        {
            saw_alert |= w == "bad" && code == "worker_exited";
            assert_ne!(w, "ok", "a clean exit is not an alert");
        }
    }
    assert!(saw_alert, "exit 3 is alerted");

    // Ignores SIGHUP: released anyway, within the grace period plus a little.
    let stubborn = fx
        .spawn("stubborn", &["sh", "-c", "trap '' HUP; sleep 300"])
        .await;
    // Forks: a background job, and a grandchild in a group of its own.
    let forker = fx
        .spawn(
            "forker",
            &[
                "sh",
                "-c",
                "sleep 301 & (set -m; sleep 302 &); sh -c 'sleep 303' & sleep 304",
            ],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sessions: Vec<Vec<i32>> = [&stubborn, &forker]
        .iter()
        .map(|w| brokertui::teardown::session::session_members(w.pid.unwrap() as i32))
        .collect();
    assert!(
        sessions[1].len() >= 5,
        "forker's session: {:?}",
        sessions[1]
    );
    let started = Instant::now();
    fx.broker.release("stubborn").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "release took {:?}",
        started.elapsed()
    );
    fx.broker.release("forker").await.unwrap();
    for pid in sessions.iter().flatten() {
        assert!(!alive(*pid), "{pid} survived its release");
    }
    fx.broker.shutdown().await;
}

/// A worker that is ready, writes a 64 MiB line, then answers `get_mode` like a real one.
const HUGE_LINE_WORKER: &str = r#"#!/bin/sh
echo '{"v":1,"type":"ready","payload":{"pid":1,"rows":24,"cols":80,"protocol":1}}'
head -c 67108864 /dev/zero | tr '\0' 'x'; echo
while read -r line; do
  rid=$(printf '%s' "$line" | sed -n 's/.*"request_id":"\([^"]*\)".*/\1/p')
  [ -n "$rid" ] && printf '{"v":1,"type":"response","request_id":"%s","payload":{"kind":"get_mode","ok":{"mode":"relay"},"error":null}}\n' "$rid"
done
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_line_is_refused_and_the_worker_keeps_serving() {
    let fx = Fixture::with_fake_worker(HUGE_LINE_WORKER);
    let broker = &fx.broker;
    let mut events = broker.subscribe();
    fx.spawn("huge", &["x"]).await;
    let (code, _) = next_alert(&mut events, Duration::from_secs(30)).await;
    assert_eq!(code, "frame_too_large");
    let mode = broker
        .get_mode("huge", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(mode, brokertui::protocol::SessionMode::Relay);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_sizes_get_documented_statuses() {
    let s = Serve::start(&[]);
    s.spawn("w", &["sh"]).await;
    let long = "a".repeat(10_000);
    for (path, want) in [
        (
            "/api/spawned/%2E%2E/mode".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/spawned/a%2Fb/mode".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/spawned/a%00b/mode".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (format!("/api/spawned/{long}/mode"), StatusCode::BAD_REQUEST),
        (
            "/api/spawned/%C3%A9t%C3%A9/mode".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/spawned/w/../../etc/passwd".to_string(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/spawned/w/mode?timeout_ms=99999999".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/spawned/w/mode?timeout_ms=-5".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        ("/api/spawned/w/mode".to_string(), StatusCode::OK),
    ] {
        // Raw bytes on the wire: an HTTP client library would normalise `%2E%2E` away.
        let (st, v) = raw_get(&s, &path).await;
        assert_eq!(st, want.as_u16(), "{path}: {v}");
        if st != 200 {
            assert!(v["error"]["code"].is_string(), "{path}: error body {v}");
        }
    }
    for body in [
        json!({"rows": 65536, "cols": 1}),
        json!({"rows": "10", "cols": 1}),
        json!({"rows": 1.5, "cols": 1}),
        json!([1, 2]),
    ] {
        let (st, _) = s
            .call(Method::POST, "/api/resize/w", Some(body.clone()))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    }
    let (st, _) = s
        .call(
            Method::POST,
            "/api/spawn",
            Some(json!({"name": "x", "cmd": []})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .call(
            Method::POST,
            "/api/spawn",
            Some(json!({"name": "x", "cmd": ["/no/such/program"]})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing was written outside the state dir's own files.
    let mut names: Vec<String> = std::fs::read_dir(&s.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names.retain(|n| n != "state.db-wal");
    assert_eq!(
        names,
        ["brokertui.log", "connection.json", "logs", "state.db"]
    );
}

/// GET `path` exactly as written; returns the status and the JSON body.
async fn raw_get(s: &Serve, path: &str) -> (u16, Value) {
    let mut c = tokio::net::TcpStream::connect(addr(s)).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        s.token
    );
    c.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).await.unwrap();
    let text = String::from_utf8_lossy(&resp);
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // Chunked or not, the JSON object is the part between the outer braces.
    let json = body
        .find('{')
        .and_then(|a| body.rfind('}').map(|b| &body[a..=b]))
        .unwrap_or("null");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_body_closes_the_connection_and_says_so() {
    // A keep-alive client must not send its next request on a socket the server is closing
    // because it did not read a refused body (CI once saw reqwest's next request fail so).
    let s = Serve::start(&[]);
    let big = "x".repeat(2 * 1024 * 1024);
    let cases = [
        (format!("Authorization: Bearer {}\r\n", s.token), 413),
        (String::new(), 401),
    ];
    for (auth, want) in cases {
        let mut c = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
        let head = format!(
            "POST /api/send HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            big.len() + 22
        );
        c.write_all(head.as_bytes()).await.unwrap();
        // Just over the limit of the body, not all of it: the server answers without the rest.
        let (mut rx, mut tx) = c.into_split();
        let part = format!(r#"{{"to":"a","body":"{}"#, &big[..1024 * 1024]);
        let writer = tokio::spawn(async move {
            let _ = tx.write_all(part.as_bytes()).await;
            tx // the write half stays open: only the server may end the connection
        });
        let mut resp = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), rx.read_to_end(&mut resp))
            .await
            .expect("the server kept the refused connection open")
            .ok();
        drop(writer.await);
        let text = String::from_utf8_lossy(&resp).to_ascii_lowercase();
        assert!(text.starts_with(&format!("http/1.1 {want}")), "{text}");
        let head = text.split("\r\n\r\n").next().unwrap();
        assert!(head.contains("\r\nconnection: close"), "{want}: {head}");
    }
    // Requests without a body keep their connection after an error.
    let mut c = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    let req = format!(
        "GET /api/spawned/nobody/mode HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        s.token
    );
    c.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 404"), "{text}");
    assert!(!text.contains("connection: close"), "{text}");
}

fn addr(s: &Serve) -> String {
    s.url.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_many_connections_do_not_stall_the_broker() {
    let s = Serve::start(&[]);
    s.spawn("w", &["sh"]).await;
    // Slowloris: 200 connections that send half a request and then nothing.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut c = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
        c.write_all(b"POST /api/send HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"to\":")
            .await
            .unwrap();
        slow.push(c);
    }
    let t = Instant::now();
    let (st, _) = s.call(Method::GET, "/api/spawned/w/mode", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?} with 200 slow clients",
        t.elapsed()
    );

    // A thousand connections at once, each its own TCP connection.
    let token = s.token.clone();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (a, token) = (addr(&s), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = tokio::net::TcpStream::connect(&a).await.ok()?;
            let req = format!("GET /api/spawned HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
            c.write_all(req.as_bytes()).await.ok()?;
            let mut resp = Vec::new();
            c.read_to_end(&mut resp).await.ok()?;
            Some(resp.starts_with(b"HTTP/1.1 200"))
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == Some(true) {
            ok += 1;
        }
    }
    assert_eq!(ok, 1000, "every connection answered 200");
    drop(slow);
    let (st, h) = s.call_as(None, Method::GET, "/health", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["pending_requests"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_send_nothing_cannot_take_the_api_down() {
    // 400 of them at a 256-fd limit made the API dead for everyone, for good.
    let s = Serve::start_with_fd_limit(256);
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(tokio::net::TcpStream::connect(addr(&s)).await.unwrap());
    }
    // One past the cap is told so at once, not left hanging.
    let mut last = idle.pop().unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), last.read_to_end(&mut answer))
        .await
        .expect("answered at once")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("too_many_connections"),
        "{answer}"
    );
    // Within the header deadline the idle ones are closed and the API serves again, while
    // their clients still hold them open.
    let t = Instant::now();
    eventually(Duration::from_secs(15), "the API answers again", || async {
        let (st, v) = raw_get(&s, "/api/spawned").await;
        if st == 503 {
            assert_eq!(v["error"]["code"], "too_many_connections", "{v}");
        }
        (st == 200).then_some(())
    })
    .await;
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    s.spawn("w", &["sh"]).await;
    let (st, _) = s.call(Method::GET, "/api/spawned/w/mode", None).await;
    assert_eq!(st, StatusCode::OK);
    drop(idle);
}

fn rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .unwrap()
        / 1024
}

async fn input(s: &Serve, name: &str, data: &str) -> (StatusCode, Value) {
    s.call(
        Method::POST,
        &format!("/api/input/{name}"),
        Some(json!({"data": data})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_for_a_stopped_worker_is_bounded_and_refused_not_buffered() {
    // 240 × 900 KB to a SIGSTOPped worker grew the broker from 42 to 252 MB.
    let s = Serve::start(&[]);
    s.spawn("w", &["cat"]).await;
    let worker = s.worker_pid("w").await;
    let broker_before = rss_mib(s.child.id());
    signal(worker, Signal::SIGSTOP);
    let chunk = "y".repeat(900 * 1024);
    let mut refused = None;
    for i in 0..240 {
        let (st, v) = input(&s, "w", &chunk).await;
        if st != StatusCode::ACCEPTED {
            refused = Some((i, st, v));
            break;
        }
    }
    let (after, st, v) = refused.expect("the excess was refused");
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "input_backlog");
    assert!(after < 40, "refused after {after} chunks");
    assert!(
        rss_mib(s.child.id()) < broker_before + 64,
        "broker {} MiB (was {broker_before})",
        rss_mib(s.child.id())
    );
    // The worker reads again: its queue drains and input is taken again.
    signal(worker, Signal::SIGCONT);
    eventually(T, "input taken again", || async {
        (input(&s, "w", "z").await.0 == StatusCode::ACCEPTED).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_for_a_program_that_does_not_read_is_bounded_in_the_worker() {
    let s = Serve::start(&[]);
    // Raw mode: the terminal's buffer fills and the worker's writes block (a canonical-mode
    // line discipline would discard the excess itself).
    s.spawn("w", &["sh", "-c", "stty raw -echo; exec sleep 600"])
        .await;
    let worker = s.worker_pid("w").await;
    let worker_before = rss_mib(worker);
    let mut events = s.ws("since=0").await;
    let chunk = "y".repeat(900 * 1024);
    for _ in 0..60 {
        let (st, v) = input(&s, "w", &chunk).await;
        assert!(
            st == StatusCode::ACCEPTED || st == StatusCode::TOO_MANY_REQUESTS,
            "{st} {v}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The worker refuses what the program cannot take, and says so.
    use futures_util::StreamExt;
    let alert = tokio::time::timeout(T, async {
        loop {
            let m = events.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
            if v["type"] == "alert" && v["code"] == "pty_write_failed" {
                return v;
            }
        }
    })
    .await
    .expect("an alert about the refused input");
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("not reading its terminal"),
        "{alert}"
    );
    assert!(
        rss_mib(worker) < worker_before + 48,
        "worker {} MiB (was {worker_before})",
        rss_mib(worker)
    );
}

/// A worker is a session of its own, so what the kernel shares between sessions (autogroup)
/// it shares per worker: a flooding worker's parsing does not come out of the broker's (the
/// TUI's) share. And a Ctrl-C to the broker's terminal does not reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_is_a_session_of_its_own() {
    use nix::unistd::{Pid, getpgid, getsid};
    let s = Serve::start(&[]);
    s.spawn("w", &["cat"]).await;
    let worker = Pid::from_raw(s.worker_pid("w").await as i32);
    let broker = Pid::from_raw(s.child.id() as i32);
    assert_eq!(
        getsid(Some(worker)).unwrap(),
        worker,
        "the worker leads a session"
    );
    assert_eq!(
        getpgid(Some(worker)).unwrap(),
        worker,
        "and its process group"
    );
    assert_ne!(getsid(Some(worker)).unwrap(), getsid(Some(broker)).unwrap());
}
