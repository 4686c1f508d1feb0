//! Running one `brokertui worker` child process: spawning it, a task that writes frames to
//! its stdin, and a task that reads and decodes frames from its stdout.
//!
//! The reader does the decoding (JSON, base64). Output goes straight to the worker's
//! [`Feed`](super::feed) — never through the broker task — and everything else to the
//! broker over a bounded channel: if the broker falls behind, the reader waits, the worker's
//! stdout pipe fills and the worker's child is slowed, never the broker. The writer sends the
//! feed's `watch`/`unwatch` ahead of anything queued after them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::codec::FramedRead;

use crate::protocol::codec::{Line, LineCodec};

use super::WorkerId;
use super::feed::{FeedShared, FlowState};
use crate::protocol::{
    DecodeError, Envelope, MAX_FRAME_BYTES, OutputPayload, decode_envelope, decode_envelope_within,
    decode_payload, from_worker,
};

/// Frames buffered towards a worker's stdin before the broker treats it as stuck.
const STDIN_QUEUE: usize = 1024;

/// Where a worker's reader sends what it decodes, output aside: responses and lifecycle.
pub type ToBroker = mpsc::Sender<WorkerMsg>;

/// What a worker's reader tells the broker.
#[derive(Debug)]
pub enum WorkerMsg {
    Frame(WorkerId, Envelope),
    BadFrame(WorkerId, DecodeError),
    /// stdout closed and the process was reaped.
    Closed(WorkerId, Option<std::process::ExitStatus>),
}

/// Everything needed to start a worker process.
pub struct LaunchSpec {
    pub exe: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log_file: Option<PathBuf>,
}

/// The broker's side of a running worker process.
pub struct WorkerProcess {
    pub pid: u32,
    stdin: mpsc::Sender<(Vec<u8>, OwnedSemaphorePermit)>,
    /// Bytes that may wait for the worker to read them; each queued frame holds its share.
    stdin_budget: Arc<Semaphore>,
}

/// Inherited variables that tell a program it runs in CI with nobody watching, as the
/// `is-in-ci` check of ink-based agents reads them (Gemini CLI then draws nothing until it
/// exits). A pane is an interactive terminal, so a worker does not inherit them; its own env
/// (the config's or the spawn request's) may still set them.
fn says_no_human_watches(key: &str) -> bool {
    key == "CI" || key == "CONTINUOUS_INTEGRATION" || key.starts_with("CI_")
}

/// Why a frame could not be queued for a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// It is not reading what it was sent (stopped, or flooded with input).
    Backlog,
    /// Its input is closed (it is ending or gone).
    Closed,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendError::Backlog => "the worker is not reading its input (its queue is full)",
            SendError::Closed => "the worker's input is closed",
        })
    }
}

/// Bytes of frames that may wait for a worker to read them (the broker's memory for a worker
/// that stopped reading); above the largest frame, so one always fits an empty queue.
pub const STDIN_QUEUE_BYTES: usize = 16 * 1024 * 1024;

impl WorkerProcess {
    pub fn spawn(
        id: WorkerId,
        spec: LaunchSpec,
        to_broker: ToBroker,
        feed: Arc<FeedShared>,
        flow: tokio::sync::watch::Receiver<FlowState>,
    ) -> std::io::Result<Self> {
        let stderr = match &spec.log_file {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    crate::fsutil::create_private_dir(dir)?;
                }
                Stdio::from(crate::fsutil::append_private(path)?)
            }
            None => Stdio::null(),
        };
        let mut command = Command::new(&spec.exe);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if says_no_human_watches(&key) && !spec.env.iter().any(|(k, _)| *k == key) {
                command.env_remove(key.as_ref());
            }
        }
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(false);
        // A session of its own (and so a process group of its own): a Ctrl-C meant for the
        // broker's terminal must not reach workers directly, the broker ends them in order.
        // And where the kernel shares the CPU between sessions (autogroup), a flooding
        // worker's parsing competes as one job among the others, not inside the broker's
        // share: the TUI and the broker keep theirs (BENCHMARKS.md, tenth session).
        // SAFETY: `setsid` and `setpriority` are async-signal-safe and touch no memory of the
        // parent's.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid()
                    .map(drop)
                    .map_err(std::io::Error::from)?;
                // A raised front process (config `priority`) keeps its rank to itself.
                crate::sched::reset_for_child()
            });
        }
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");

        let (stdin_tx, stdin_rx) = mpsc::channel::<(Vec<u8>, OwnedSemaphorePermit)>(STDIN_QUEUE);
        tokio::spawn(write_frames(stdin, stdin_rx, flow));
        tokio::spawn(read_frames(id, child, stdout, to_broker, feed));
        Ok(WorkerProcess {
            pid,
            stdin: stdin_tx,
            stdin_budget: Arc::new(Semaphore::new(STDIN_QUEUE_BYTES)),
        })
    }

    /// Queues a frame for the worker's stdin without waiting. Fails if the worker has
    /// stopped reading (its queue holds [`STDIN_QUEUE_BYTES`] or [`STDIN_QUEUE`] frames) or
    /// is gone.
    pub fn send(&self, env: &Envelope) -> Result<(), SendError> {
        let line = env.to_line();
        let permit = u32::try_from(line.len())
            .ok()
            .and_then(|n| self.stdin_budget.clone().try_acquire_many_owned(n).ok())
            .ok_or(SendError::Backlog)?;
        self.stdin.try_send((line, permit)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Backlog,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    /// Closes the worker's stdin (it then ends its session and exits).
    pub fn close_stdin(&mut self) {
        let (dead, _) = mpsc::channel(1);
        self.stdin = dead;
    }
}

/// The worker's stdin: queued frames in batches, and the feed's flow state as it changes —
/// written before any batch queued after the change (a snapshot asked for right after a
/// subscription must see the worker already watched, or its output would have a hole).
async fn write_frames(
    mut stdin: tokio::process::ChildStdin,
    mut queue: mpsc::Receiver<(Vec<u8>, OwnedSemaphorePermit)>,
    mut flow: tokio::sync::watch::Receiver<FlowState>,
) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut permits = Vec::new();
    let mut flow_open = true;
    loop {
        tokio::select! {
            biased;
            changed = flow.changed(), if flow_open => {
                if changed.is_err() {
                    flow_open = false;
                    continue;
                }
            }
            item = queue.recv() => {
                let Some((line, permit)) = item else { break };
                batch.extend_from_slice(&line);
                permits.push(permit);
                // Whatever else is already queued goes out in the same write.
                while batch.len() < 64 * 1024 {
                    match queue.try_recv() {
                        Ok((more, permit)) => {
                            batch.extend_from_slice(&more);
                            permits.push(permit);
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        if flow_open && flow.has_changed().unwrap_or(false) {
            let line = flow_frame(*flow.borrow_and_update());
            batch.splice(0..0, line);
        } else if flow_open && batch.is_empty() {
            // Woken by a change alone.
            batch = flow_frame(*flow.borrow_and_update());
        }
        if stdin.write_all(&batch).await.is_err() {
            break;
        }
        batch.clear();
        permits.clear();
    }
    // Dropping stdin is the worker's signal to end its session.
}

fn flow_frame(state: FlowState) -> Vec<u8> {
    match state {
        Some(grant) => crate::protocol::frame(
            crate::protocol::to_worker::WATCH,
            &crate::protocol::WatchPayload { grant },
        ),
        None => crate::protocol::frame(crate::protocol::to_worker::UNWATCH, &serde_json::json!({})),
    }
    .to_line()
}

async fn read_frames(
    id: WorkerId,
    mut child: Child,
    stdout: tokio::process::ChildStdout,
    to_broker: ToBroker,
    feed: Arc<FeedShared>,
) {
    // Bytes, not `String`: output frames are most of the traffic and are decoded without a
    // separate UTF-8 pass (serde_json checks what it reads).
    let mut lines = FramedRead::with_capacity(stdout, LineCodec::new(MAX_FRAME_BYTES), 256 * 1024);
    let mut joiner = crate::protocol::parts::Joiner::default();
    loop {
        let stall = feed.stall_deadline();
        let line = tokio::select! {
            line = lines.next() => line,
            _ = crate::deadline::sleep_until(stall), if stall.is_some() => {
                feed.check_stall();
                continue;
            }
        };
        let Some(line) = line else { break };
        let msg = match line {
            Ok(Line::Frame(line)) if line.starts_with(PART_PREFIX) => {
                match decode_envelope(&line).and_then(|env| joiner.push(&env)) {
                    Ok(Some(whole)) => {
                        match decode_envelope_within(
                            &whole,
                            crate::protocol::parts::MAX_JOINED_BYTES,
                        ) {
                            Ok(env) => WorkerMsg::Frame(id, env),
                            Err(e) => WorkerMsg::BadFrame(id, e),
                        }
                    }
                    Ok(None) => continue,
                    Err(e) => WorkerMsg::BadFrame(id, e),
                }
            }
            Ok(Line::Frame(line)) => match decode(id, &line) {
                Decoded::Output(offset, data) => {
                    feed.forward(offset, data);
                    continue;
                }
                Decoded::Msg(msg) => msg,
            },
            Ok(Line::TooLong(n)) => WorkerMsg::BadFrame(id, DecodeError::TooLarge(n)),
            Err(_) => break,
        };
        if to_broker.send(msg).await.is_err() {
            break;
        }
    }
    // stdout is closed: the worker is exiting (or was killed). Reap it; if it lingers
    // without its stdout, it is broken, so kill it.
    let status = match tokio::time::timeout(Duration::from_secs(3), child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    };
    let _ = to_broker.send(WorkerMsg::Closed(id, status)).await;
}

/// An `output` frame read in place: the base64 text is borrowed from the line (it has no
/// escapes), so the only copy is the decoded bytes.
#[derive(serde::Deserialize)]
struct OutputFrame<'a> {
    v: u32,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    payload: OutputRef<'a>,
}

#[derive(serde::Deserialize)]
struct OutputRef<'a> {
    offset: u64,
    data_b64: &'a str,
}

const OUTPUT_PREFIX: &[u8] = b"{\"v\":1,\"type\":\"output\"";
/// How every `part` frame starts (see [`crate::protocol::parts`]).
const PART_PREFIX: &[u8] = b"{\"v\":1,\"type\":\"part\"";

/// A decoded frame: output for the feed, anything else for the broker.
pub(crate) enum Decoded {
    Output(u64, Bytes),
    Msg(WorkerMsg),
}

pub(crate) fn decode(id: WorkerId, line: &[u8]) -> Decoded {
    // Fast path for the frames the worker writes by hand; anything unusual takes the
    // general path, which also produces the precise error.
    if line.starts_with(OUTPUT_PREFIX)
        && let Ok(frame) = serde_json::from_slice::<OutputFrame>(line)
        && frame.v == crate::protocol::PROTOCOL_VERSION
        && frame.kind == from_worker::OUTPUT
    {
        return output_msg(id, frame.payload.offset, frame.payload.data_b64);
    }
    let env = match decode_envelope(line) {
        Ok(env) => env,
        Err(e) => return Decoded::Msg(WorkerMsg::BadFrame(id, e)),
    };
    if env.kind == from_worker::OUTPUT {
        return match decode_payload::<OutputPayload>(&env) {
            Ok(p) => output_msg(id, p.offset, &p.data_b64),
            Err(e) => Decoded::Msg(WorkerMsg::BadFrame(id, e)),
        };
    }
    Decoded::Msg(WorkerMsg::Frame(id, env))
}

/// An `output` payload's base64 decoded into a message (or why it could not be).
fn output_msg(id: WorkerId, offset: u64, data_b64: &str) -> Decoded {
    match crate::b64::decode(data_b64) {
        Ok(bytes) => Decoded::Output(offset, Bytes::from(bytes)),
        Err(e) => Decoded::Msg(WorkerMsg::BadFrame(
            id,
            DecodeError::BadPayload {
                kind: from_worker::OUTPUT.into(),
                message: format!("data_b64: {e}"),
            },
        )),
    }
}
