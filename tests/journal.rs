//! The message journal (`state.db` in the state dir) under the failures a hand-rolled file
//! got wrong: a bad record in the middle of an old journal, a full disk, a journal that cannot
//! be opened, two brokers on one state dir, bodies and files others could read, and a broker
//! or worker killed in the middle of typing a message.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::{QUIET_CAT, Serve};
use common::*;
use nix::sys::signal::Signal;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(10);

async fn send(s: &Serve, to: &str, body: &str) -> (StatusCode, Value) {
    s.call(
        Method::POST,
        "/api/send",
        Some(json!({"to": to, "body": body})),
    )
    .await
}

async fn spawn_held(s: &Serve, name: &str) {
    // Human mode: messages wait in the worker, owed, until the human hands over.
    let (st, v) = s
        .call(
            Method::POST,
            "/api/spawn",
            Some(json!({"name": name, "cmd": QUIET_CAT, "mode": "human"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// A broker that must refuse to start: its exit status and what it printed on stderr.
fn start_refused(state: &Path) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(exe())
        .args(["--serve", "--state-dir"])
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the broker started although it should have refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_record_in_an_old_journal_costs_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |id: &str| {
        format!(
            r#"{{"op":"accept","to":"bob","msg":{{"id":"{id}","from":"a","to":"bob","body":"body-{id}","sent_at_ms":1}}}}"#
        )
    };
    let text = format!(
        "{}\nnot json at all\n{}\n{{\"op\":\"accept\",\"to\":\"bob\"}}\n{}\n",
        rec("m1"),
        rec("m2"),
        rec("m3")
    );
    std::fs::write(dir.path().join("messages.jsonl"), text).unwrap();
    let s = Serve::start_in(dir.path(), &[]);
    let bodies: Vec<Value> = s.owed().await.iter().map(|m| m["body"].clone()).collect();
    assert_eq!(
        bodies,
        [json!("body-m1"), json!("body-m2"), json!("body-m3")]
    );
    let mut ws = s.ws("since=0").await;
    use futures_util::StreamExt;
    let alert: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(alert["code"], "journal_bad_record", "{alert}");
    let message = alert["message"].as_str().unwrap();
    assert!(
        message.contains("line 2 ") && message.contains("line 4 "),
        "{message}"
    );
    assert!(!dir.path().join("messages.jsonl").exists(), "imported once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_opened_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("state.db")).unwrap();
    let (status, err) = start_refused(dir.path());
    assert!(!status.success());
    assert!(err.contains("state.db"), "{err}");
    assert!(
        !err.contains("Backtrace") && !err.contains("Location:"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("messages.jsonl")).unwrap();
    let (status, err) = start_refused(dir.path());
    assert!(!status.success());
    assert!(
        err.contains("cannot import") && err.contains("messages.jsonl"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_broker_on_the_same_state_dir_is_refused_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let first = Serve::start_in(dir.path(), &[]);
    let (status, err) = start_refused(dir.path());
    assert!(!status.success());
    assert!(err.contains("in use by another broker"), "{err}");
    assert!(
        err.contains(&format!("pid {}", first.child.id())) && err.contains(&first.url),
        "{err}"
    );
    // The first one is untouched: still serving, its connection file still its own.
    let (st, _) = first.call(Method::GET, "/api/spawned", None).await;
    assert_eq!(st, StatusCode::OK);
    let conn: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("connection.json")).unwrap())
            .unwrap();
    assert_eq!(conn["pid"], first.child.id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_leave_the_journal_once_submitted_and_its_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let s = Serve::start_in(&state, &[]);
    s.spawn("bob", &["cat"]).await;
    let (st, v) = send(&s, "bob", "secret-body-4711").await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    eventually(T, "submitted", || async {
        (s.message(&id).await["state"] == "submitted").then_some(())
    })
    .await;
    drop(s);
    let db = std::fs::read(state.join("state.db")).unwrap();
    assert!(
        !db.windows(16).any(|w| w == b"secret-body-4711"),
        "the submitted body is gone from the journal"
    );
    assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
    for entry in std::fs::read_dir(&state).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().mode() & 0o777;
        let want = if entry.file_type().unwrap().is_dir() {
            0o700
        } else {
            0o600
        };
        assert_eq!(mode, want, "{:?}", entry.file_name());
    }
    let again = Serve::start_in(&state, &[]);
    let (_, v) = again.call(Method::GET, "/api/messages", None).await;
    let kept = &v["messages"][0];
    assert_eq!(kept["id"], id.as_str(), "{v}");
    assert_eq!(kept["state"], "submitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_in_the_state_dir_is_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, state.join("connection.json")).unwrap();
    std::os::unix::fs::symlink(&victim, state.join(".connection.json.tmp")).unwrap();
    let s = Serve::start_in(&state, &[]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(state.join("connection.json")).unwrap();
    assert!(meta.is_file() && meta.mode() & 0o777 == 0o600);
    drop(s);

    // A planted database symlink refuses the start instead of writing through it.
    let state = dir.path().join("state2");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::symlink(&victim, state.join("state.db")).unwrap();
    let (status, err) = start_refused(&state);
    assert!(!status.success(), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs");
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the filesystem under `path` until a write fails.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_messages_with_journal_full_and_loses_none() {
    let Some(fs) = Tmpfs::mount("3m") else { return };
    let state = fs.path().join("state");
    let mut a = Serve::start_in(&state, &[]);
    spawn_held(&a, "bob").await;
    let (st, _) = send(&a, "bob", "before-the-disk-filled").await;
    assert_eq!(st, StatusCode::ACCEPTED);
    fill(&fs.path().join("filler"));
    let big = "x".repeat(200 * 1024);
    let mut accepted_while_full = 0;
    let refused = loop {
        let (st, v) = send(
            &a,
            "bob",
            &format!("while-full-{accepted_while_full} {big}"),
        )
        .await;
        if st != StatusCode::ACCEPTED {
            break (st, v);
        }
        accepted_while_full += 1;
        assert!(accepted_while_full < 50, "the disk never filled");
    };
    assert_eq!(refused.0, StatusCode::INSUFFICIENT_STORAGE, "{}", refused.1);
    assert_eq!(refused.1["error"]["code"], "journal_full");
    // `send` from inside a worker says so too, with its own exit code.
    let out = Command::new(exe())
        .args(["send", "bob", "from-the-cli"])
        .env("BROKERTUI_URL", &a.url)
        .env("BROKERTUI_TOKEN", &a.token)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(11), "{out:?}");
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    let (st, v) = send(&a, "bob", "after-space-was-freed").await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");

    signal(a.child.id(), Signal::SIGKILL);
    a.child.wait().unwrap();
    let b = Serve::start_in(&state, &[]);
    let bodies: Vec<String> = b
        .owed()
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap().chars().take(22).collect())
        .collect();
    let mut want = vec!["before-the-disk-filled".to_string()];
    for i in 0..accepted_while_full {
        want.push(
            format!("while-full-{i} xxxxxxxxxxxxxxxxx")
                .chars()
                .take(22)
                .collect(),
        );
    }
    want.push("after-space-was-freed".into());
    assert_eq!(bodies, want);
}

/// A state dir whose broker waits 1.5 s between typing a message and its Enter — so a kill
/// lands in that window every time — and a worker program that appends what it reads to a
/// file.
struct SlowTyping {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    record: std::path::PathBuf,
    cmd: String,
}

impl SlowTyping {
    /// `program` reads stdin (after `stty -echo`), its output appended to the record.
    fn new(program: &str) -> SlowTyping {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("brokertui.toml");
        std::fs::write(&config, "settle_ms = 1500\n").unwrap();
        let record = dir.path().join("bob-received");
        let cmd = format!("stty -echo; {program} >> {}", record.display());
        SlowTyping {
            dir,
            config,
            record,
            cmd,
        }
    }

    async fn start_with_bob(&self) -> Serve {
        // --fresh: each start spawns its own bob (tests/fleet.rs has bob itself come back).
        let s = Serve::start_in(
            self.dir.path(),
            &["--fresh", "--config", self.config.to_str().unwrap()],
        );
        s.spawn("bob", &["sh", "-c", &self.cmd]).await;
        s
    }

    fn received(&self) -> String {
        std::fs::read_to_string(&self.record).unwrap_or_default()
    }

    /// Waits until every body arrived, a while longer for duplicates, then checks each arrived
    /// exactly once.
    async fn each_arrived_once(&self, bodies: &[&str]) {
        eventually(T, "every message read", || async {
            let text = self.received();
            bodies.iter().all(|b| text.contains(b)).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let text = self.received();
        for body in bodies {
            assert_eq!(text.matches(body).count(), 1, "{body} in {text}");
        }
    }
}

/// Waits until `s`'s worker bob recorded `typed <what>`.
async fn typed(s: &Serve, what: &str) {
    let injected = s.state.join("logs/bob.injected");
    let line = format!("typed {what}");
    eventually(T, "the message typed", || async {
        std::fs::read_to_string(&injected)
            .unwrap_or_default()
            .contains(&line)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_while_a_message_is_typed_loses_nothing() {
    // A program that takes its hang-up gracefully (as agents do: they save their state), so
    // what it read before is written before it goes.
    let fx = SlowTyping::new("trap '' HUP; exec cat");
    let mut a = fx.start_with_bob().await;
    let (st, _) = send(&a, "bob", "in-flight-when-the-broker-died").await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = send(&a, "bob", "still-queued-when-it-died").await;
    assert_eq!(st, StatusCode::ACCEPTED);
    typed(&a, "").await;
    a.crash("bob").await;
    let first = fx.received();
    assert!(
        first.contains("in-flight-when-the-broker-died"),
        "the message in flight got its Enter before the worker ended: {first:?}\nworker log:\n{}",
        std::fs::read_to_string(a.state.join("logs/bob.log")).unwrap_or_default()
    );
    let _b = fx.start_with_bob().await;
    fx.each_arrived_once(&[
        "in-flight-when-the-broker-died",
        "still-queued-when-it-died",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_a_message_is_typed_gets_it_typed_again_once() {
    let fx = SlowTyping::new("exec cat");
    let s = fx.start_with_bob().await;
    let (st, v) = send(&s, "bob", "typed-when-the-worker-died").await;
    assert_eq!(st, StatusCode::ACCEPTED);
    typed(&s, v["id"].as_str().unwrap()).await;
    signal(s.worker_pid("bob").await, Signal::SIGKILL);
    eventually(T, "bob to exit", || async {
        let (_, v) = s.call(Method::GET, "/api/spawned", None).await;
        (v["workers"][0]["state"] == "exited").then_some(())
    })
    .await;
    assert!(!fx.received().contains("typed-when-the-worker-died"));
    let (st, v) = s
        .call(
            Method::POST,
            "/api/spawn",
            Some(json!({"name": "bob", "cmd": ["sh", "-c", &fx.cmd]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    fx.each_arrived_once(&["typed-when-the-worker-died"]).await;
}
