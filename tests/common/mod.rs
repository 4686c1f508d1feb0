//! Shared helpers for the black-box tests: a broker running the real `brokertui worker`
//! binary, and ways to wait for what real PTYs print.
#![allow(dead_code)]

pub mod agent_cli;
pub mod git;
pub mod serve;
pub mod side_by_side;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use brokertui::broker::{
    BrokerConfig, BrokerHandle, EventKind, EventSubscription, OutputSubscription, Received,
    SpawnSpec, WorkerInfo,
};

pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_brokertui"))
}

pub struct Fixture {
    pub broker: BrokerHandle,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    pub fn with(tweak: impl FnOnce(&mut BrokerConfig)) -> Self {
        Self::start(tempfile::tempdir().unwrap(), exe(), tweak)
    }

    /// A broker whose workers are `script` instead of `brokertui worker` (see `fake_worker`).
    pub fn with_fake_worker(script: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let worker = fake_worker(&dir, script);
        Self::start(dir, worker, |_| {})
    }

    fn start(
        dir: tempfile::TempDir,
        worker_exe: PathBuf,
        tweak: impl FnOnce(&mut BrokerConfig),
    ) -> Self {
        let mut config = BrokerConfig::new(worker_exe);
        config.log_dir = Some(dir.path().join("logs"));
        tweak(&mut config);
        Fixture {
            broker: BrokerHandle::start(config),
            dir,
        }
    }

    pub async fn spawn(&self, name: &str, cmd: &[&str]) -> WorkerInfo {
        self.spawn_spec(SpawnSpec {
            name: name.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .await
    }

    pub async fn spawn_spec(&self, spec: SpawnSpec) -> WorkerInfo {
        self.broker.spawn(spec).await.expect("spawn")
    }

    pub async fn pending_requests(&self) -> usize {
        self.broker.stats().await.unwrap().pending_requests
    }
}

/// Reads a worker's output until `pred` holds for everything read so far (lossy UTF-8).
pub async fn wait_output(
    sub: &mut OutputSubscription,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let mut seen = Vec::new();
    let deadline = Instant::now() + timeout;
    loop {
        let text = String::from_utf8_lossy(&seen).to_string();
        if pred(&text) {
            return text;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, sub.recv()).await {
            Ok(Received::Item(chunk)) => seen.extend_from_slice(&chunk.data),
            Ok(Received::Lagged(n)) => panic!("lagged by {n}"),
            Ok(Received::Closed) | Err(_) => panic!("output never matched; got {text:?}"),
        }
    }
}

/// The next alert among `events`: (code, worker). Panics after `timeout` or if the
/// subscription lags or closes.
pub async fn next_alert(
    events: &mut EventSubscription,
    timeout: Duration,
) -> (String, Option<String>) {
    loop {
        match tokio::time::timeout(timeout, events.recv())
            .await
            .expect("no alert in time")
        {
            Received::Item(e) => {
                if let EventKind::Alert { code, worker, .. } = &e.kind {
                    return (code.clone(), worker.clone());
                }
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Polls `f` until it returns Some, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True if `pid` is a live process (a zombie counts as gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            !rest.starts_with('Z')
        }
        Err(_) => false,
    }
}

pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

/// Writes `script` as an executable stand-in for `brokertui worker` (the broker runs it with the
/// worker's arguments, which a script may ignore) and returns its path.
pub fn fake_worker(dir: &tempfile::TempDir, script: &str) -> PathBuf {
    use std::io::Write;
    let path = dir.path().join("fake-worker");
    // Written by a child process: a file this (multi-threaded) process had open for writing
    // can be inherited by a child another test forks at that moment, and exec'ing it then
    // fails with "text file busy".
    let mut writer = std::process::Command::new("sh")
        .args(["-c", "cat > \"$0\" && chmod 755 \"$0\""])
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writer
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(writer.wait().unwrap().success());
    path
}
