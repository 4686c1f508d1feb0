//! A fleet that survives: `--serve` killed with SIGKILL and started again on its state dir
//! brings back the same workers in the same directories (an agent with its resume command),
//! the messages they were owed are delivered exactly once, a released worker stays gone, and
//! `--fresh` forgets the fleet.

mod common;

use std::time::Duration;

use common::eventually;
use common::serve::Serve;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(15);

async fn spawn(s: &Serve, spec: Value) {
    let (st, v) = s.call(Method::POST, "/api/spawn", Some(spec)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

async fn workers(s: &Serve) -> Vec<Value> {
    let (_, v) = s.call(Method::GET, "/api/spawned", None).await;
    v["workers"].as_array().unwrap().clone()
}

async fn stop(mut s: Serve) {
    common::signal(s.child.id(), nix::sys::signal::Signal::SIGTERM);
    let _ = s.child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_broker_comes_back_with_its_fleet_and_owed_messages_arrive_once() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let repo = common::git::repo(tmp.path(), &[("a.txt", "a\n")]);
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    // An "agent" of kind claude: a script that shows the arguments it was started with.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let claude = bin.join("claude");
    std::fs::write(&claude, "#!/bin/sh\necho \"started with: $*\"\nexec cat\n").unwrap();
    std::fs::set_permissions(&claude, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let record = tmp.path().join("owed-received");

    let mut a = Serve::start_in(&state, &[]);
    spawn(
        &a,
        json!({"name": "tree", "cmd": ["sh", "-c", "pwd; exec sh"], "cwd": repo, "worktree": true}),
    )
    .await;
    // Human mode holds its messages: they are owed when the broker dies.
    let owed_cmd = format!("stty -echo; exec cat >> {}", record.display());
    spawn(
        &a,
        json!({"name": "owed", "cmd": ["sh", "-c", owed_cmd], "cwd": plain, "mode": "human"}),
    )
    .await;
    spawn(
        &a,
        json!({"name": "agent", "cmd": [claude, "--model", "x"], "cwd": plain, "env": {"FOO": "bar"}}),
    )
    .await;
    spawn(&a, json!({"name": "gone", "cmd": ["cat"]})).await;
    let (st, _) = a.call(Method::DELETE, "/api/spawned/gone", None).await;
    assert_eq!(st, StatusCode::OK);
    for body in ["owed-one", "owed-two"] {
        let (st, _) = a
            .call(
                Method::POST,
                "/api/send",
                Some(json!({"to": "owed", "body": body})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
    }
    a.wait_screen("agent", "started with:").await;
    let before = workers(&a).await;
    let tree_before = before.iter().find(|w| w["name"] == "tree").unwrap()["worktree"].clone();
    assert_eq!(tree_before["branch"], "brokertui/tree");
    a.crash("owed").await;

    let b = Serve::start_in(&state, &[]);
    let back = eventually(T, "the fleet back", || async {
        let list = workers(&b).await;
        (list.len() == 3 && list.iter().all(|w| w["state"] == "running")).then_some(list)
    })
    .await;
    let names: Vec<&str> = back.iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["tree", "owed", "agent"],
        "in the order they were started"
    );
    assert!(back.iter().all(|w| w["restored"] == true), "{back:?}");
    let tree = &back[0];
    assert_eq!(tree["worktree"], tree_before, "the same worktree");
    assert_eq!(tree["cwd"], tree_before["path"]);
    b.wait_screen("tree", tree_before["path"].as_str().unwrap())
        .await;
    assert_eq!(back[1]["cwd"], json!(plain));
    assert_eq!(back[1]["mode"], "human");
    // The agent continues its session; what it was started with otherwise is kept.
    let screen = b.wait_screen("agent", "started with:").await;
    assert!(screen.contains("--continue"), "{screen}");
    assert!(screen.contains("--model x"), "{screen}");
    assert_eq!(back[2]["cmd"], json!([claude, "--model", "x"]));

    // The owed messages, handed over now, arrive once each.
    let (st, v) = b
        .call(
            Method::PUT,
            "/api/spawned/owed/mode",
            Some(json!({"mode": "relay"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    eventually(T, "both owed messages", || async {
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        (text.contains("owed-one") && text.contains("owed-two")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let text = std::fs::read_to_string(&record).unwrap();
    assert_eq!(text.matches("owed-one").count(), 1, "{text}");
    assert_eq!(text.matches("owed-two").count(), 1, "{text}");

    // An orderly stop keeps the fleet too; --fresh forgets it.
    stop(b).await;
    let c = Serve::start_in(&state, &["--fresh"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(workers(&c).await, Vec::<Value>::new());
    stop(c).await;
    let d = Serve::start_in(&state, &[]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(workers(&d).await, Vec::<Value>::new(), "forgotten for good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_worktree_is_gone_is_said_and_not_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let dir = tmp.path().join("here");
    std::fs::create_dir_all(&dir).unwrap();
    let mut a = Serve::start_in(&state, &[]);
    spawn(&a, json!({"name": "w", "cmd": ["cat"], "cwd": dir})).await;
    spawn(&a, json!({"name": "ok", "cmd": ["cat"]})).await;
    a.crash("w").await;
    std::fs::remove_dir(&dir).unwrap();
    let b = Serve::start_in(&state, &[]);
    let list = eventually(T, "the fleet back", || async {
        let list = workers(&b).await;
        (!list.is_empty()).then_some(list)
    })
    .await;
    let names: Vec<&str> = list.iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ok"]);
    // The alert is among the events a client replays from the start.
    use futures_util::StreamExt;
    let mut ws = b.ws("since=0").await;
    let alert = loop {
        let msg = tokio::time::timeout(T, ws.next())
            .await
            .expect("the not_restored alert in time")
            .expect("the stream open")
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        if v["code"] == "not_restored" {
            break v;
        }
    };
    assert_eq!(alert["worker"], "w");
    let message = alert["message"].as_str().unwrap();
    assert!(message.contains("does not exist"), "{message}");
}
