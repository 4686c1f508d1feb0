//! Worktrees on real temporary git repositories, with real workers in them: the branch,
//! base and copied files; the setup command in the pane; release keeping or removing; the
//! refusals; two agents editing one file apart; and the diff the review shows.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use brokertui::broker::{BrokerError, ReleaseOptions, SpawnSpec};
use brokertui::protocol::requests::snapshot::SnapshotFormat;
use brokertui::workspace::diff::{FileStatus, LineKind};
use brokertui::workspace::{ExistingBranch, OnRelease, WorktreeChoice, WorktreeConfig};
use common::git::git;
use common::{Fixture, eventually};

/// A repository `<tmp>/proj` with one commit (`file.txt`, `sub/inner.txt`, a `.gitignore`
/// that ignores `.env*`) and an untracked `.env`.
fn repo(tmp: &Path) -> PathBuf {
    let repo = common::git::repo(
        tmp,
        &[
            ("file.txt", "one\ntwo\nthree\n"),
            ("sub/inner.txt", "inner\n"),
            (".gitignore", ".env*\n"),
        ],
    );
    std::fs::write(repo.join(".env"), "SECRET=1\n").unwrap();
    repo
}

fn spec(name: &str, cwd: &Path, cmd: &[&str]) -> SpawnSpec {
    SpawnSpec {
        name: name.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        cwd: Some(cwd.to_path_buf()),
        worktree: Some(WorktreeChoice::Flag(true)),
        ..Default::default()
    }
}

fn fixture(config: WorktreeConfig) -> Fixture {
    Fixture::with(|c| c.worktree = config)
}

fn copying_env() -> WorktreeConfig {
    WorktreeConfig {
        copy: vec![".env*".into()],
        ..Default::default()
    }
}

async fn screen(f: &Fixture, name: &str) -> String {
    f.broker
        .snapshot(name, SnapshotFormat::Plain, None)
        .await
        .map(|s| s.plain_lines().join("\n"))
        .unwrap_or_default()
}

async fn wait_screen(f: &Fixture, name: &str, needle: &str) -> String {
    eventually(Duration::from_secs(10), needle, || async {
        let s = screen(f, name).await;
        s.contains(needle).then_some(s)
    })
    .await
}

#[tokio::test]
async fn a_worker_gets_its_own_worktree_on_its_branch_from_head_with_the_listed_files() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let f = fixture(copying_env());
    // Started from a subdirectory: it runs in the same subdirectory of its worktree.
    let info = f
        .spawn_spec(spec(
            "alice",
            &repo.join("sub"),
            &["sh", "-c", "pwd; exec cat"],
        ))
        .await;
    let wt = info.worktree.clone().expect("a worktree");
    assert_eq!(wt.branch, "brokertui/alice");
    assert_eq!(wt.base, head);
    assert_eq!(wt.path, tmp.path().join("proj.worktrees/alice"));
    assert_eq!(info.cwd.as_deref(), Some(wt.path.join("sub").as_path()));
    assert_eq!(
        git(&wt.path, &["branch", "--show-current"]),
        "brokertui/alice"
    );
    assert_eq!(git(&wt.path, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        std::fs::read_to_string(wt.path.join(".env")).unwrap(),
        "SECRET=1\n",
        "the untracked file the config lists is copied"
    );
    wait_screen(&f, "alice", &wt.path.join("sub").display().to_string()).await;
    // The list says where it runs.
    let listed = f.broker.info("alice").await.unwrap();
    assert_eq!(listed.worktree.unwrap().branch, "brokertui/alice");
}

#[tokio::test]
async fn the_setup_command_runs_in_the_new_worktree_and_shows_in_the_pane_first() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let f = fixture(WorktreeConfig {
        setup: Some("echo setting-up-in-$(basename $PWD); touch .setup-done".into()),
        ..Default::default()
    });
    let info = f
        .spawn_spec(spec(
            "bob",
            &repo,
            &["sh", "-c", "echo agent-started; exec cat"],
        ))
        .await;
    let text = wait_screen(&f, "bob", "agent-started").await;
    let setup = text.find("setting-up-in-bob").expect(&text);
    assert!(setup < text.find("agent-started").unwrap(), "{text}");
    assert!(info.worktree.unwrap().path.join(".setup-done").exists());
    // The command shown is the agent's, not the wrapper.
    assert_eq!(info.cmd, vec!["sh", "-c", "echo agent-started; exec cat"]);
}

#[tokio::test]
async fn a_failed_setup_says_so_and_the_agent_starts_anyway() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let f = fixture(WorktreeConfig {
        setup: Some("exit 3".into()),
        ..Default::default()
    });
    f.spawn_spec(spec("c", &repo, &["sh", "-c", "echo agent-up; exec cat"]))
        .await;
    let text = wait_screen(&f, "c", "agent-up").await;
    assert!(text.contains("the setup command failed (exit 3)"), "{text}");
}

#[tokio::test]
async fn releasing_keeps_the_worktree_or_removes_it_but_never_unsaved_work_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let f = fixture(Default::default());

    // Kept by default: the worker goes, the tree and branch stay.
    let wt = f
        .spawn_spec(spec("keep", &repo, &["cat"]))
        .await
        .worktree
        .unwrap();
    f.broker.release("keep").await.unwrap();
    assert!(wt.path.is_dir());
    assert!(git(&repo, &["branch", "--list", "brokertui/keep"]).contains("brokertui/keep"));
    // Started again under its name, it finds its worktree again.
    let again = f
        .spawn_spec(spec("keep", &repo, &["cat"]))
        .await
        .worktree
        .unwrap();
    assert_eq!(again.path, wt.path);

    // Uncommitted changes: removal is refused before anything is released.
    std::fs::write(again.path.join("new.txt"), "work\n").unwrap();
    let remove = ReleaseOptions {
        worktree: OnRelease::Remove,
        force: false,
    };
    let err = f.broker.release_with("keep", remove).await.unwrap_err();
    assert!(matches!(err, BrokerError::WouldLoseWork(_)), "{err:?}");
    assert!(err.to_string().contains("1 uncommitted change"), "{err}");
    assert!(f.broker.info("keep").await.is_ok(), "still running");
    assert!(again.path.join("new.txt").exists());

    // Committed on its branch and nowhere else: also work that would be lost.
    git(&again.path, &["add", "."]);
    git(&again.path, &["commit", "-q", "-m", "agent work"]);
    let err = f.broker.release_with("keep", remove).await.unwrap_err();
    assert!(
        err.to_string().contains("1 commit on brokertui/keep"),
        "{err}"
    );

    // Forced: both go.
    let force = ReleaseOptions {
        worktree: OnRelease::Remove,
        force: true,
    };
    f.broker.release_with("keep", force).await.unwrap();
    assert!(!again.path.exists());
    assert_eq!(git(&repo, &["branch", "--list", "brokertui/keep"]), "");
    assert!(f.broker.info("keep").await.is_err());

    // A clean worktree is removed without force.
    let clean = f
        .spawn_spec(spec("clean", &repo, &["cat"]))
        .await
        .worktree
        .unwrap();
    f.broker.release_with("clean", remove).await.unwrap();
    assert!(!clean.path.exists());
    assert_eq!(git(&repo, &["worktree", "list"]).lines().count(), 1);
}

#[tokio::test]
async fn what_cannot_be_a_worktree_is_refused_with_the_reason_and_nothing_is_left() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let f = fixture(Default::default());
    let refused = |r: Result<_, BrokerError>| match r {
        Err(BrokerError::SpawnFailed(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    };

    // Not a git repository.
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let m = refused(f.broker.spawn(spec("a", &plain, &["cat"])).await);
    assert!(m.contains("is not inside a git repository"), "{m}");

    // The branch exists already (refused by default)...
    git(&repo, &["branch", "brokertui/b"]);
    let m = refused(f.broker.spawn(spec("b", &repo, &["cat"])).await);
    assert!(m.contains("branch brokertui/b already exists"), "{m}");
    assert!(!tmp.path().join("proj.worktrees/b").exists());
    assert!(f.broker.info("b").await.is_err());

    // ... or reused when the config says so.
    let reuse = fixture(WorktreeConfig {
        existing_branch: ExistingBranch::Reuse,
        ..Default::default()
    });
    let wt = reuse
        .spawn_spec(spec("b", &repo, &["cat"]))
        .await
        .worktree
        .unwrap();
    assert_eq!(git(&wt.path, &["branch", "--show-current"]), "brokertui/b");

    // A dirty base with dirty_base = "refuse"; with the default it starts and warns.
    std::fs::write(repo.join("file.txt"), "changed\n").unwrap();
    let strict = fixture(WorktreeConfig {
        dirty_base: brokertui::workspace::DirtyBase::Refuse,
        ..Default::default()
    });
    let m = refused(strict.broker.spawn(spec("d", &repo, &["cat"])).await);
    assert!(m.contains("has uncommitted changes"), "{m}");
    let mut events = f.broker.subscribe();
    f.spawn_spec(spec("e", &repo, &["cat"])).await;
    let (code, worker) = common::next_alert(&mut events, Duration::from_secs(5)).await;
    assert_eq!(
        (code.as_str(), worker.as_deref()),
        ("worktree_warning", Some("e"))
    );

    // A worktree dir inside the working tree.
    let inside = fixture(WorktreeConfig {
        dir: Some("trees".into()),
        ..Default::default()
    });
    let m = refused(inside.broker.spawn(spec("g", &repo, &["cat"])).await);
    assert!(m.contains("is inside the working tree"), "{m}");

    // A path that exists and is not its worktree.
    std::fs::create_dir_all(tmp.path().join("proj.worktrees/h")).unwrap();
    let m = refused(f.broker.spawn(spec("h", &repo, &["cat"])).await);
    assert!(m.contains("already exists and is not a worktree"), "{m}");
}

#[tokio::test]
async fn two_agents_edit_the_same_file_in_their_own_worktrees_without_seeing_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let f = fixture(Default::default());
    for name in ["left", "right"] {
        f.spawn_spec(spec(name, &repo, &["sh"])).await;
    }
    f.broker
        .input("left", "echo left-edit > file.txt; echo done-$((1+1))\r")
        .await
        .unwrap();
    f.broker
        .input("right", "echo right-edit > file.txt; echo done-$((1+1))\r")
        .await
        .unwrap();
    wait_screen(&f, "left", "done-2").await;
    wait_screen(&f, "right", "done-2").await;
    f.broker.input("left", "cat file.txt\r").await.unwrap();
    f.broker.input("right", "cat file.txt\r").await.unwrap();
    let left = wait_screen(&f, "left", "\nleft-edit").await;
    let right = wait_screen(&f, "right", "\nright-edit").await;
    assert!(!left.contains("right-edit"), "{left}");
    assert!(!right.contains("left-edit"), "{right}");
    assert_eq!(
        std::fs::read_to_string(repo.join("file.txt")).unwrap(),
        "one\ntwo\nthree\n",
        "the main tree is untouched"
    );
}

#[tokio::test]
async fn the_diff_has_committed_uncommitted_and_untracked_changes_against_the_base() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let f = fixture(copying_env());
    let wt = f
        .spawn_spec(spec("dev", &repo, &["cat"]))
        .await
        .worktree
        .unwrap();
    // Committed on its branch ...
    std::fs::write(wt.path.join("file.txt"), "one\nTWO\nthree\n").unwrap();
    git(&wt.path, &["commit", "-q", "-am", "agent commit"]);
    // ... changed and not committed ...
    std::fs::remove_file(wt.path.join("sub/inner.txt")).unwrap();
    // ... and untracked (the ignored .env stays out).
    std::fs::write(wt.path.join("notes.md"), "new\n").unwrap();
    // The agent's own staging is not disturbed by a review.
    let staged_before = git(&wt.path, &["diff", "--cached", "--name-only"]);

    let diff = f.broker.diff("dev").await.unwrap();
    assert_eq!(diff.base, wt.base);
    let files: Vec<(&str, FileStatus)> = diff
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.status))
        .collect();
    assert_eq!(
        files,
        vec![
            ("file.txt", FileStatus::Modified),
            ("notes.md", FileStatus::Added),
            ("sub/inner.txt", FileStatus::Deleted),
        ]
    );
    let changed: Vec<_> = diff.files[0].hunks[0]
        .lines
        .iter()
        .filter(|l| l.kind != LineKind::Context)
        .map(|l| (l.kind, l.old, l.new, l.text.as_str()))
        .collect();
    assert_eq!(
        changed,
        vec![
            (LineKind::Removed, Some(2), None, "two"),
            (LineKind::Added, None, Some(2), "TWO"),
        ]
    );
    assert!(diff.text.contains("+++ b/notes.md"), "{}", diff.text);
    assert!(!diff.text.contains(".env"), "{}", diff.text);
    assert_eq!(
        git(&wt.path, &["diff", "--cached", "--name-only"]),
        staged_before
    );

    // Without a worktree: its directory against HEAD; outside a repository: the reason.
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    f.spawn_spec(SpawnSpec {
        cwd: Some(plain),
        worktree: None,
        ..spec("nogit", &repo, &["cat"])
    })
    .await;
    let err = f.broker.diff("nogit").await.unwrap_err();
    assert!(
        err.to_string().contains("not inside a git repository"),
        "{err}"
    );
}

/// `brokertui ctl --state-dir STATE args…`: (exit code, stdout, stderr).
fn ctl(state: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::exe())
        .arg("ctl")
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_creates_lists_diffs_and_releases_workers_in_worktrees() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let s = common::serve::Serve::start(&[]);
    let state = s.state.clone();
    let repo_s = repo.to_str().unwrap();
    let (code, out, err) = ctl(
        &state,
        &[
            "spawn",
            "w1",
            "--cwd",
            repo_s,
            "--branch",
            "feature/one",
            "--",
            "sh",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = ctl(&state, &["list"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let wt = &list["workers"][0]["worktree"];
    assert_eq!(wt["branch"], "feature/one");
    assert_eq!(
        wt["path"],
        tmp.path().join("proj.worktrees/w1").to_str().unwrap()
    );

    s.call(
        reqwest::Method::POST,
        "/api/input/w1",
        Some(serde_json::json!({"data": "echo changed > file.txt; echo ok-$((40+2))\r"})),
    )
    .await;
    s.wait_screen("w1", "ok-42").await;
    let (code, out, _) = ctl(&state, &["diff", "w1"]);
    assert_eq!(code, 0);
    assert!(out.contains("diff --git a/file.txt b/file.txt"), "{out}");
    assert!(out.contains("\n+changed\n"), "{out}");
    let (code, out, _) = ctl(&state, &["diff", "w1", "--json"]);
    assert_eq!(code, 0);
    let diff: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(diff["files"][0]["path"], "file.txt");

    // Refused with its work in it: exit 5 (conflict), the worker still there.
    let (code, _, err) = ctl(&state, &["release", "w1", "--remove-worktree"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("1 uncommitted change"), "{err}");
    let (code, _, err) = ctl(&state, &["release", "w1", "--remove-worktree", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(!tmp.path().join("proj.worktrees/w1").exists());

    // Bad input is a clear error.
    let (code, _, err) = ctl(
        &state,
        &["spawn", "w2", "--cwd", "/", "--worktree", "--", "sh"],
    );
    assert_eq!(code, 9, "{err}");
    assert!(err.contains("is not inside a git repository"), "{err}");
    let (st, v) = s
        .call(
            reqwest::Method::DELETE,
            "/api/spawned/w1?worktree=bin",
            None,
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{v}");
}
