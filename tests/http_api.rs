//! The HTTP + WebSocket API of a real `brokertui --serve` process on port 0: every route's
//! success path, every error status provoked for real, scoped tokens, the event stream.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use brokertui::mirror::ScreenMirror;
use common::serve::Serve;
use common::*;
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_success_path() {
    let s = Serve::start(&[]);
    let (st, health) = s.call_as(None, Method::GET, "/health", None).await;
    assert_eq!(
        (st, health["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );

    let spawned = s.spawn("sh", &["sh"]).await;
    assert!(spawned["pid"].as_u64().unwrap() > 1);
    let (_, list) = s.call(Method::GET, "/api/spawned", None).await;
    assert_eq!(list["workers"][0]["name"], "sh");
    assert_eq!(list["workers"][0]["state"], "running");

    let (st, _) = s
        .call(
            Method::POST,
            "/api/input/sh",
            Some(json!({"data": "echo rou''te-ok\r"})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    s.wait_screen("sh", "route-ok").await;
    let (st, _) = s
        .call(
            Method::POST,
            "/api/input/sh",
            Some(json!({"data_b64": brokertui::b64::encode(b"stty size\r")})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    s.resize("sh", 30, 90).await;
    s.call(
        Method::POST,
        "/api/input/sh",
        Some(json!({"data": "stty size\r"})),
    )
    .await;
    s.wait_screen("sh", "30 90").await;

    for format in ["plain", "ansi", "cells"] {
        let (st, snap) = s
            .call(
                Method::GET,
                &format!("/api/spawned/sh/snapshot?format={format}&timeout_ms=2000"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{snap}");
        assert_eq!(snap["format"], format);
        assert_eq!(
            (snap["rows"].as_u64(), snap["cols"].as_u64()),
            (Some(30), Some(90))
        );
    }

    let (_, mode) = s.call(Method::GET, "/api/spawned/sh/mode", None).await;
    assert_eq!(mode, json!({"mode": "relay"}));
    let (_, set) = s
        .call(
            Method::PUT,
            "/api/spawned/sh/mode",
            Some(json!({"mode": "human"})),
        )
        .await;
    assert_eq!(
        set,
        json!({"mode": "human", "previous": "relay", "flushed": 0})
    );
    let (st, sent) = s
        .call(
            Method::POST,
            "/api/send",
            Some(json!({"to": "sh", "body": "held"})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(sent["recipients"], json!(["sh"]));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, p) = s.call(Method::GET, "/api/spawned/sh/pending", None).await;
        if p["pending"].as_array().unwrap().len() == 1 {
            assert_eq!(p["pending"][0]["body"], "held");
            assert_eq!(p["pending"][0]["from"], "human");
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, flushed) = s.call(Method::POST, "/api/spawned/sh/flush", None).await;
    assert_eq!(flushed, json!({"flushed": 1}));
    s.wait_screen("sh", "Relay message from human").await;

    let (st, released) = s.call(Method::DELETE, "/api/spawned/sh", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(released, json!({"name": "sh", "released": true}));
    let (_, list) = s.call(Method::GET, "/api/spawned", None).await;
    assert_eq!(list["workers"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_status_for_real() {
    let s = Serve::start(&[]);
    s.spawn("a", &["sh"]).await;
    s.spawn("b", &["sh"]).await;
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or_default().to_string();

    // 401
    let (st, v) = s.call_as(None, Method::GET, "/api/spawned", None).await;
    assert_eq!(
        (st, code(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (st, _) = s
        .call_as(Some("not-the-token"), Method::GET, "/api/spawned", None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // 400: bad JSON, unknown field, wrong type, bad names, zero and huge sizes, bad timeout
    for (method, path, body) in [
        (Method::POST, "/api/spawn", &b"{not json"[..]),
        (
            Method::POST,
            "/api/spawn",
            br#"{"name":"c","cmd":["sh"],"colour":"red"}"#,
        ),
        (
            Method::POST,
            "/api/spawn",
            br#"{"name":"bad name","cmd":["sh"]}"#,
        ),
        (
            Method::POST,
            "/api/spawn",
            br#"{"name":"c","cmd":["sh"],"rows":0}"#,
        ),
        (Method::POST, "/api/resize/a", br#"{"rows":0,"cols":80}"#),
        (Method::POST, "/api/resize/a", br#"{"rows":-1,"cols":80}"#),
        (
            Method::POST,
            "/api/resize/a",
            br#"{"rows":70000,"cols":80}"#,
        ),
        (Method::POST, "/api/resize/a", br#"{"rows":1001,"cols":80}"#),
        (Method::POST, "/api/input/a", br#"{"data":5}"#),
        (Method::POST, "/api/send", br#"{"to":"a"}"#),
    ] {
        let (st, v) = s.raw(method, path, body).await;
        assert_eq!(
            (st, code(&v).as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{path} {}",
            String::from_utf8_lossy(body)
        );
    }
    let (st, v) = s
        .raw(
            Method::POST,
            "/api/spawn",
            br#"{"name":"c","cmd":["sh"],"colour":"red"}"#,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("colour"),
        "names the field: {v}"
    );
    let (st, _) = s
        .call(Method::GET, "/api/spawned/a/mode?timeout_ms=0", None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .call(Method::GET, "/api/spawned/..hidden/mode", None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // 413
    let big = "x".repeat(2 * 1024 * 1024);
    let (st, v) = s
        .call(
            Method::POST,
            "/api/send",
            Some(json!({"to": "a", "body": big})),
        )
        .await;
    assert_eq!(
        (st, code(&v).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // 404 and 409
    let (st, v) = s.call(Method::GET, "/api/spawned/nobody/mode", None).await;
    assert_eq!(
        (st, code(&v).as_str()),
        (StatusCode::NOT_FOUND, "worker_not_found")
    );
    let (st, v) = s
        .call(
            Method::POST,
            "/api/spawn",
            Some(json!({"name": "a", "cmd": ["sh"]})),
        )
        .await;
    assert_eq!(
        (st, code(&v).as_str()),
        (StatusCode::CONFLICT, "name_taken")
    );

    // 403: a worker's own token typing into another worker.
    s.call(
        Method::POST,
        "/api/input/a",
        Some(json!({"data": "echo TOK''EN=$BROKERTUI_TOKEN\r"})),
    )
    .await;
    let text = s.wait_screen("a", "TOKEN=").await;
    let token = text
        .lines()
        .filter_map(|l| l.strip_prefix("TOKEN="))
        .next()
        .expect(&text)
        .trim()
        .to_string();
    assert_eq!(token.len(), 64);
    let (st, v) = s
        .call_as(
            Some(&token),
            Method::POST,
            "/api/input/b",
            Some(json!({"data": "x"})),
        )
        .await;
    assert_eq!(
        (st, code(&v).as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let (st, _) = s
        .call_as(Some(&token), Method::GET, "/api/spawned/b/pending", None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .call_as(
            Some(&token),
            Method::POST,
            "/api/send",
            Some(json!({"to": "b", "body": "x", "from": "b"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "may not send as someone else");
    // ...but it may send as itself, list, and read its own state.
    let (st, v) = s
        .call_as(
            Some(&token),
            Method::POST,
            "/api/send",
            Some(json!({"to": "b", "body": "from-a"})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    s.wait_screen("b", "Relay message from a [").await;
    assert_eq!(
        s.call_as(Some(&token), Method::GET, "/api/spawned", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        s.call_as(Some(&token), Method::GET, "/api/spawned/a/mode", None)
            .await
            .0,
        StatusCode::OK
    );

    // 504: a stopped worker.
    let pid = s.worker_pid("b").await;
    signal(pid, Signal::SIGSTOP);
    let (st, v) = s
        .call(Method::GET, "/api/spawned/b/mode?timeout_ms=300", None)
        .await;
    assert_eq!(
        (st, code(&v).as_str()),
        (StatusCode::GATEWAY_TIMEOUT, "worker_timeout")
    );

    // 503: killed while the request is in flight.
    let started = Instant::now();
    let request = s.call(Method::GET, "/api/spawned/b/pending?timeout_ms=10000", None);
    let killer = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        signal(pid, Signal::SIGKILL);
    };
    let ((st, v), ()) = tokio::join!(request, killer);
    assert_eq!(
        (st, code(&v).as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "worker_disappeared")
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // A response over a frame (the snapshot of a busy 1000×1000 screen, tens of MB)
    // travels in parts and arrives whole.
    s.spawn(
        "huge",
        &[
            "sh",
            "-c",
            "yes \"$(printf '\\033[31mA\\033[32mB')\" | tr -d '\\n' | head -c 12000000; sleep 100",
        ],
    )
    .await;
    s.call(
        Method::POST,
        "/api/resize/huge",
        Some(json!({"rows": 1000, "cols": 1000})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (st, v) = s
        .call(
            Method::GET,
            "/api/spawned/huge/snapshot?format=ansi&timeout_ms=30000",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{}", code(&v));

    // And over the WebSocket, its ANSI screen arrives in pieces a client can take.
    let mut ws = s.ws("output=huge").await;
    let mut data = String::new();
    let mut pieces = 0;
    loop {
        let m = ws.next().await.unwrap().unwrap();
        assert!(
            m.len() <= 5 * 1024 * 1024,
            "every message fits a client's frame"
        );
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        // Broker events (the worker's agent state) share the socket and may come between.
        if v["type"] != "screen" && v["type"] != "screen_more" {
            assert!(v["seq"].is_u64() && v["type"] != "output", "{v}");
            continue;
        }
        data.push_str(v["data_b64"].as_str().unwrap());
        pieces += 1;
        if v["more"] == false {
            break;
        }
    }
    assert!(pieces > 1, "a screen this large comes in pieces");
    let ansi = brokertui::b64::decode(&data).unwrap();
    let mut parser = vt100::Parser::new(1000, 1000, 0);
    parser.process(&ansi);
    assert!(parser.screen().contents().starts_with("ABABAB"));

    let (_, h) = s.call_as(None, Method::GET, "/health", None).await;
    assert_eq!(h["pending_requests"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_file_is_private_and_removed_on_exit() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = Serve::start(&[]);
    let path = s.state.join("connection.json");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    signal(s.child.id(), Signal::SIGTERM);
    let status = s.child.wait().unwrap();
    assert!(status.success());
    assert!(!path.exists(), "connection.json left behind");
    // A hang-up (its terminal closed) or a quit ends it the same way.
    for sig in [Signal::SIGHUP, Signal::SIGQUIT] {
        let mut s = Serve::start(&[]);
        let path = s.state.join("connection.json");
        signal(s.child.id(), sig);
        assert!(s.child.wait().unwrap().success(), "{sig}");
        assert!(!path.exists(), "{sig}: connection.json left behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_file_left_by_a_dead_broker_is_not_trusted() {
    let state = tempfile::tempdir().unwrap();
    let mut dead = Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    let conn = json!({"url": "http://127.0.0.1:1", "token": "t", "pid": pid});
    std::fs::write(state.path().join("connection.json"), conn.to_string()).unwrap();
    let dir = state.path().to_str().unwrap();
    for args in [
        &["ctl", "--state-dir", dir, "list"][..],
        &["--state-dir", dir, "--connect", ""][..],
    ] {
        let out = Command::new(exe()).args(args).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("(pid {pid}) is no longer running")),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_public_address_without_allow_remote() {
    let out = Command::new(exe())
        .args([
            "--serve",
            "--bind",
            "0.0.0.0:0",
            "--state-dir",
            "/tmp/never-used",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}

/// Builds a screen from a WebSocket's `screen` + `output` frames for `name`.
async fn mirror_until(
    ws: &mut (
             impl futures_util::Stream<
        Item = Result<
            tokio_tungstenite::tungstenite::Message,
            tokio_tungstenite::tungstenite::Error,
        >,
    > + Unpin
         ),
    name: &str,
    done: impl Fn(&ScreenMirror) -> bool,
) -> ScreenMirror {
    let mut mirror = ScreenMirror::new(24, 80, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(mirror.synced() && done(&mirror)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("stream stalled")
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        if v["name"] != name {
            continue;
        }
        match v["type"].as_str().unwrap() {
            "screen" => mirror.reset(&brokertui::protocol::requests::snapshot::Snapshot {
                format: brokertui::protocol::requests::snapshot::SnapshotFormat::Ansi,
                rows: v["rows"].as_u64().unwrap() as u16,
                cols: v["cols"].as_u64().unwrap() as u16,
                cursor: [0, 0],
                offset: v["offset"].as_u64().unwrap(),
                screen: v["data_b64"].clone(),
                scrollback: 0,
            }),
            "output" => {
                let data = brokertui::b64::decode(v["data_b64"].as_str().unwrap()).unwrap();
                let applied = mirror.apply(v["offset"].as_u64().unwrap(), &data);
                assert_eq!(
                    applied,
                    brokertui::mirror::Applied::Ok(true),
                    "output must continue exactly"
                );
            }
            "lagged" => panic!("test client lagged: {v}"),
            _ => {}
        }
    }
    mirror
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_subscriber_sees_exactly_the_continuous_screen() {
    let s = Serve::start(&[]);
    s.spawn(
        "gen",
        &["sh", "-c", "read go; i=0; while [ $i -lt 4000 ]; do printf '\\033[3%dmline %d\\033[0m\\n' $((i % 8)) $i; i=$((i+1)); done; echo ALL-DONE; sleep 100"],
    )
    .await;
    let mut early = s.ws("output=gen").await;
    s.call(
        Method::POST,
        "/api/input/gen",
        Some(json!({"data": "go\r"})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut late = s.ws("output=gen").await; // joins while output is flowing
    let finished = |m: &ScreenMirror| m.parser.screen().contents().contains("ALL-DONE");
    let (a, b) = tokio::join!(
        mirror_until(&mut early, "gen", finished),
        mirror_until(&mut late, "gen", finished)
    );
    assert_eq!(a.next_offset(), b.next_offset());
    assert_eq!(
        a.parser.screen().contents_formatted(),
        b.parser.screen().contents_formatted()
    );
    let plain = s.screen("gen").await;
    assert_eq!(a.parser.screen().contents().trim_end(), plain.trim_end());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_replays_and_reports_gaps() {
    let s = Serve::start(&["--replay-events", "5"]);
    s.spawn("w", &["sh"]).await; // worker_spawned, worker_ready
    for mode in ["human", "relay", "human", "relay"] {
        s.call(
            Method::PUT,
            "/api/spawned/w/mode",
            Some(json!({"mode": mode})),
        )
        .await;
    }
    let mut ws = s.ws("since=0").await;
    let first: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(first["type"], "gap", "{first}");
    let mut seqs = Vec::new();
    for _ in 0..5 {
        let v: Value =
            serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
        seqs.push(v["seq"].as_u64().unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // Resuming from the last seen seq: no gap, only newer events.
    let last = seqs[4];
    let mut ws = s.ws(&format!("since={last}")).await;
    s.call(
        Method::PUT,
        "/api/spawned/w/mode",
        Some(json!({"mode": "human"})),
    )
    .await;
    let v: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(v["type"], "mode_changed");
    assert!(v["seq"].as_u64().unwrap() > last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_scripted_session() {
    let s = Serve::start(&[]);
    let state = s.state.to_str().unwrap().to_string();
    let ctl = |args: &[&str]| -> (i32, Value) {
        let out = Command::new(exe())
            .arg("ctl")
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .output()
            .unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap(), v)
    };
    assert_eq!(ctl(&["spawn", "job", "--", "sh"]).0, 0);
    assert_eq!(ctl(&["input", "job", "echo ct''l-works\r"]).0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, snap) = ctl(&["snapshot", "job"]);
        if snap["screen"].to_string().contains("ctl-works") {
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ctl(&["mode", "job", "human"]).1["previous"], "relay");
    assert_eq!(
        ctl(&["send", "job", "queued"]).1["recipients"],
        json!(["job"])
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ctl(&["pending", "job"]).1["pending"][0]["body"], "queued");
    assert_eq!(ctl(&["flush", "job"]).1["flushed"], 1);
    assert_eq!(ctl(&["list"]).1["workers"][0]["name"], "job");
    assert_eq!(ctl(&["mode", "nobody"]).0, 4, "not found exits 4");
    assert_eq!(
        ctl(&["spawn", "ghost", "--", "/no/such/program"]).0,
        9,
        "a command that cannot start exits 9"
    );
    let bogus = Command::new(exe())
        .args(["ctl", "--state-dir", &state, "mode", "job", "bogus"])
        .output()
        .unwrap();
    assert_eq!(bogus.status.code(), Some(2), "a bad mode is a usage error");
    let err = String::from_utf8_lossy(&bogus.stderr);
    assert!(
        err.contains("unknown mode \"bogus\" (expected relay or human)"),
        "{err}"
    );
    assert_eq!(ctl(&["release", "job"]).1["released"], true);
    let out = Command::new(exe())
        .args(["ctl", "--url", "http://127.0.0.1:1", "--token", "x", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10), "unreachable exits 10");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}
