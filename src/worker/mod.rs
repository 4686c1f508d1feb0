//! `brokertui worker`: one process per PTY.
//!
//! It spawns the command in a PTY, feeds every output byte to its vt100 [`screen::Screen`],
//! holds the session mode and pending queue ([`session::Session`]) and speaks NDJSON with
//! the broker on stdin/stdout (docs/architecture.md, "The wire"). Its stderr is the broker's log file for it.
//!
//! Output is forwarded only while the broker watches, within the credit it grants
//! ([`flow`]): out of credit the loop stops taking output and the child blocks, as on a slow
//! terminal. Unwatched, output is only parsed.
//!
//! Threads: one blocking reader of the PTY (bounded channel), one blocking writer (so a child
//! that stops reading its input never stalls the loop), one that waits for the child, and the
//! vt100 parser ([`screen::SharedScreen`]). Everything else happens in one `select!` loop on
//! a current-thread runtime.
//!
//! On stdin EOF or `shutdown` the child's whole session gets SIGHUP, a grace period, SIGKILL
//! ([`crate::teardown`]); the same happens to what a child leaves behind when it
//! exits on its own. `exited` is always the last frame.

pub mod agent;
pub mod answers;
pub mod flow;
pub mod pty;
pub mod pty_reader;
pub mod screen;
pub mod session;
pub mod stdio;

use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio_util::codec::FramedRead;

use crate::deadline::sleep_until;
use crate::protocol::codec::{Line, LineCodec};
pub use crate::protocol::worker_args::WorkerArgs;

use crate::protocol::requests::RequestKind;
use crate::protocol::requests::deliver::RelayMessage;
use crate::protocol::requests::mode::SetMode;
use crate::protocol::requests::snapshot::{SnapshotFormat, SnapshotRequest};
use crate::protocol::{
    self, Envelope, ErrorBody, ExitedPayload, InputPayload, MAX_FRAME_BYTES, ReadyPayload,
    ResizePayload, ShutdownPayload, decode_envelope, decode_payload, frame, from_worker,
    response_err, response_ok, to_worker,
};
use pty::{Pty, PtyWriter};
use screen::SharedScreen;
use session::Session;

/// How long an injection in flight may take to finish once the worker is told to end (or its
/// broker is gone): longer than any settle plus the wait for an agent's echo.
const FINISH_INJECTION: Duration = Duration::from_secs(3);
/// How often a worker told to end looks again whether its program has read its last input.
const SHUTDOWN_POLL: Duration = Duration::from_millis(5);
/// How long the child's leftovers get after the child itself exits on its own.
const LEFTOVER_GRACE: Duration = Duration::from_millis(200);
/// How long to keep reading the PTY after the child exits, for its last output: until it
/// has been quiet this long — counted only while output may be read (not while the
/// watchers' credit or the parser holds it back) — and never more than `DRAIN_LIMIT` in all
/// (a background job can keep the PTY open and busy).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(300);
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// Output chunks read back to back are merged into frames of at most this many bytes.
const MAX_OUTPUT_FRAME: usize = 256 * 1024;
/// The agent's state is re-read from the screen at most this often while output flows.
const AGENT_EVAL_EVERY: Duration = Duration::from_millis(50);
/// How often a shell's foreground job is looked at again while messages wait for it to end.
const JOB_POLL: Duration = Duration::from_millis(250);

pub fn run(args: WorkerArgs) -> color_eyre::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

struct Out {
    w: BufWriter<stdio::Output>,
    b64: String,
    broken: bool,
}

impl Out {
    async fn send(&mut self, env: &Envelope) {
        let line = env.to_line();
        if line.len() > MAX_FRAME_BYTES && line.len() <= crate::protocol::parts::MAX_JOINED_BYTES {
            for part in crate::protocol::parts::split(&line[..line.len() - 1]) {
                self.write(&part).await;
            }
            return;
        }
        if line.len() > MAX_FRAME_BYTES
            && let Some(rid) = env.request_id.as_deref()
        {
            // The broker would reject the frame and the caller would only see a timeout:
            // answer with what went wrong instead.
            let kind = env.payload["kind"]
                .as_str()
                .unwrap_or("unknown")
                .to_string();
            let error = ErrorBody::new(
                "response_too_large",
                format!(
                    "the {kind} response is {} bytes, over the {}-byte limit of a frame sent in parts; try format=plain",
                    line.len(),
                    crate::protocol::parts::MAX_JOINED_BYTES
                ),
            );
            self.write(&response_err(rid, &kind, error).to_line()).await;
            return;
        }
        self.write(&line).await;
    }

    async fn send_all(&mut self, envs: Vec<Envelope>) {
        for env in envs {
            self.send(&env).await;
        }
    }

    /// Output frames are the hot path: formatted by hand into a reused buffer.
    async fn output(&mut self, offset: u64, bytes: &[u8]) {
        use base64::Engine;
        self.b64.clear();
        self.b64
            .push_str("{\"v\":1,\"type\":\"output\",\"payload\":{\"offset\":");
        self.b64.push_str(&offset.to_string());
        self.b64.push_str(",\"data_b64\":\"");
        base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut self.b64);
        self.b64.push_str("\"}}\n");
        let line = std::mem::take(&mut self.b64);
        self.write(line.as_bytes()).await;
        self.b64 = line;
    }

    async fn write(&mut self, bytes: &[u8]) {
        if !self.broken && self.w.write_all(bytes).await.is_err() {
            // The broker is gone; stdin EOF will follow and end us.
            self.broken = true;
        }
    }

    async fn flush(&mut self) {
        if !self.broken && self.w.flush().await.is_err() {
            self.broken = true;
        }
    }
}

/// Output read from the PTY and not yet taken: forwarded within the watchers' credit (and
/// parsed), or only parsed while nobody watches. What exceeds the credit waits here, unread
/// by the parser too, so a snapshot's offset never runs ahead of what was forwarded.
async fn take_output(
    held: &mut Vec<u8>,
    flow: &mut flow::Flow,
    screen: &mut SharedScreen,
    out: &mut Out,
) {
    if held.is_empty() {
        return;
    }
    match flow.allowance() {
        None => screen.feed(std::mem::take(held)),
        Some(0) => {}
        Some(n) => {
            let rest = held.split_off(n.min(held.len()));
            let now = std::mem::replace(held, rest);
            out.output(screen.sent(), &now).await;
            flow.forwarded(now.len());
            screen.feed(now);
        }
    }
}

enum Control {
    Continue,
    Shutdown(Duration),
}

async fn run_async(args: WorkerArgs) -> color_eyre::Result<()> {
    let mut out = Out {
        w: BufWriter::with_capacity(MAX_OUTPUT_FRAME * 2, stdio::output()),
        b64: String::new(),
        broken: false,
    };
    let rows = args.rows.clamp(1, crate::protocol::MAX_DIMENSION);
    let cols = args.cols.clamp(1, crate::protocol::MAX_DIMENSION);
    // What leaves the session and double-forks is re-parented to us (before the child runs,
    // so nothing it starts slips past), and ended with the rest.
    crate::teardown::become_subreaper();
    let (spawned, cgroup) = crate::teardown::cgroup::Cgroup::spawn_in(&args.name, || {
        Pty::spawn(&args.cmd, args.cwd.as_deref(), rows, cols, &args.term)
    });
    let mut orphans = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
    let mut pty = match spawned {
        Ok(pty) => pty,
        Err(e) => {
            tracing::error!(name = %args.name, "spawn failed: {e:#}");
            out.send(&frame(
                from_worker::WORKER_ERROR,
                &ErrorBody::new("spawn_failed", format!("{e:#}")),
            ))
            .await;
            out.send(&frame(
                from_worker::EXITED,
                &ExitedPayload {
                    code: Some(127),
                    signal: None,
                },
            ))
            .await;
            out.flush().await;
            return Ok(());
        }
    };
    let pid = pty.pid;
    tracing::info!(name = %args.name, pid, cmd = ?args.cmd, "child spawned");
    out.send(&frame(
        from_worker::READY,
        &ReadyPayload {
            pid: pid as u32,
            rows,
            cols,
            protocol: protocol::PROTOCOL_VERSION,
            cgroup: cgroup.as_ref().map(|c| c.path.clone()),
        },
    ))
    .await;
    out.flush().await;

    let mut answers_to = pty.writer();
    let mut screen = SharedScreen::new(rows, cols, args.colors, move |bytes| {
        if let Err(e) = session::PtySink::write(&mut answers_to, bytes) {
            tracing::warn!("could not answer a terminal query: {e}");
        }
    });
    // After the child and our throughput threads exist: only this thread gets the short slice.
    crate::sched::latency_thread();
    let relief = screen.relief.clone();
    let rules: crate::agent::KindRules =
        serde_json::from_str(&args.agent_rules).unwrap_or_else(|e| {
            tracing::warn!("bad --agent-rules ({e}); using none");
            Default::default()
        });
    let mut tracker = agent::AgentTracker::new(&args.agent, &rules);
    let default_when = if tracker.is_agent() {
        crate::protocol::requests::deliver::When::Idle
    } else {
        crate::protocol::requests::deliver::When::Now
    };
    let mut session = Session::new(
        pty.writer(),
        args.mode,
        args.template.clone(),
        Duration::from_millis(args.settle_ms),
    )
    .with_default_when(default_when)
    .with_enter_after_echo(Duration::from_millis(
        rules.enter_after_echo_ms.unwrap_or(0),
    ));
    // When the agent's state should be read again (after output, a hook, a timer).
    let mut agent_eval: Option<tokio::time::Instant> = Some(tokio::time::Instant::now());
    if let Some(path) = &args.inject_log {
        match crate::protocol::inject_record::Writer::open(path) {
            Ok(record) => session = session.with_inject_log(record),
            Err(e) => tracing::warn!(
                "cannot open {}: {e}; injections are not recorded",
                path.display()
            ),
        }
    }
    let mut stdin = FramedRead::new(stdio::input(), LineCodec::new(MAX_FRAME_BYTES));
    let mut pty_open = true;
    let mut exit_status: Option<ExitedPayload> = None;
    // After the child exits: (stop reading the PTY at, never later than).
    let mut drain: Option<(tokio::time::Instant, tokio::time::Instant)> = None;
    let mut shutdown: Option<Duration> = None;
    let mut flow = flow::Flow::default();
    let mut held: Vec<u8> = Vec::new();
    // When shutting down with an injection in flight: how long it may take to finish.
    // (deadline, whether a message was being typed when it began).
    let mut finish_by: Option<(Instant, bool)> = None;

    loop {
        let inject_due = session.next_deadline();
        // While a shell's job holds the terminal, look again now and then: the job can end
        // without the screen changing, and queued messages wait for it.
        let job_poll = session
            .waits_on_job()
            .then(|| tokio::time::Instant::now() + JOB_POLL);
        let agent_due = [
            agent_eval,
            tracker.next_check().map(tokio::time::Instant::from_std),
            job_poll,
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            line = stdin.next(), if shutdown.is_none() => {
                match line {
                    Some(Ok(first)) => {
                        let mut next = Some(first);
                        // Answer every frame already buffered before flushing once: under
                        // load, requests arrive in batches and their responses leave in one.
                        while let Some(item) = next.take() {
                            match item {
                                Line::Frame(l) => {
                                    if let Control::Shutdown(grace) =
                                        handle_line(&l, &mut pty, &mut screen, &mut session, &mut tracker, &mut flow, &mut out).await
                                    {
                                        shutdown = Some(grace);
                                        break;
                                    }
                                }
                                Line::TooLong(n) => {
                                    out.send(&frame(from_worker::WORKER_ERROR, &ErrorBody::new(
                                        "frame_too_large",
                                        format!("a frame of {n} bytes (limit {MAX_FRAME_BYTES}) was discarded"),
                                    ))).await;
                                }
                            }
                            if let Some(Some(Ok(more))) = stdin.next().now_or_never() {
                                next = Some(more);
                            }
                        }
                    }
                    None | Some(Err(_)) => {
                        tracing::info!("stdin closed: the broker is gone, ending the session");
                        shutdown = Some(Duration::from_millis(protocol::default_grace_ms() as u64));
                    }
                }
            }
            _ = relief.notified(), if screen.backlogged() => {}
            chunk = pty.output.recv(), if pty_open && held.is_empty() && flow.may_read() && !screen.backlogged() => {
                match chunk {
                    Some(first) => {
                        held = first;
                        while held.len() < MAX_OUTPUT_FRAME {
                            match pty.output.try_recv() {
                                Ok(more) => held.extend_from_slice(&more),
                                Err(_) => break,
                            }
                        }
                        let now = Instant::now();
                        tracker.output_seen(now);
                        if agent_eval.is_none() {
                            agent_eval = Some(tokio::time::Instant::now() + AGENT_EVAL_EVERY);
                        }
                        if let Some((until, limit)) = drain.as_mut() {
                            *until = (*limit).min(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
                        }
                    }
                    None => pty_open = false,
                }
            }
            status = &mut pty.exit, if exit_status.is_none() => {
                let status = status.unwrap_or_default();
                tracing::info!(name = %args.name, %status, "child exited");
                exit_status = Some(status);
                tracker.child_exited();
                agent_eval = Some(tokio::time::Instant::now());
                let now = tokio::time::Instant::now();
                drain = Some((now + DRAIN_AFTER_EXIT, now + DRAIN_LIMIT));
            }
            _ = sleep_until(drain.map(|(until, _)| until)), if drain.is_some() => {
                pty_open = false;
            }
            _ = sleep_until(inject_due), if inject_due.is_some() => {}
            _ = sleep_until(agent_due), if agent_due.is_some() => {}
            _ = orphans.recv() => crate::teardown::reap_orphans(pid),
            _ = tokio::time::sleep(SHUTDOWN_POLL), if shutdown.is_some() => {}
        }
        take_output(&mut held, &mut flow, &mut screen, &mut out).await;
        if let Some((until, limit)) = drain.as_mut()
            && (!held.is_empty() || !flow.may_read() || screen.backlogged())
        {
            // Held back, not quiet: the drain's quiet counts only while output may be read.
            *until = (*limit).min(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
        }
        let now = Instant::now();
        if tracker.take_dirty() {
            agent_eval = Some(tokio::time::Instant::now());
        }
        if agent_due.is_some_and(|due| due.into_std() <= now)
            || agent_eval.is_some_and(|d| d.into_std() <= now)
        {
            agent_eval = None;
            let (lines, fg) = (screen.current().lines(), pty.foreground());
            if let Some(report) = tracker.evaluate(now, &lines, &fg) {
                tracing::info!(state = report.state.as_str(), reason = %report.reason, "agent state");
                out.send(&frame(from_worker::AGENT_STATE, &report)).await;
            }
            session.set_gate(gate_now(&tracker, &fg, &pty));
            if session.awaiting_receipt() {
                // Rows the terminal wrapped are one line here, so a long probe is found whole.
                let all = screen.current().text();
                let bottom = |n: usize| {
                    all.lines()
                        .rev()
                        .filter(|l| !l.trim().is_empty())
                        .take(n)
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                let (last4, last12) = (bottom(4), bottom(12));
                let view = session::ReceiptView {
                    is_agent: tracker.is_agent(),
                    state: tracker.state(),
                    state_entered: tracker.entered(),
                    last_output: tracker.last_output(),
                    on_screen: &|probe: &str| all.contains(probe),
                    in_input: &|probe: &str| last4.contains(probe),
                    near_input: &|probe: &str| last12.contains(probe),
                };
                let frames = session.check_receipts(now, &view);
                out.send_all(frames).await;
            }
        } else if session.awaiting_receipt() && inject_due.is_some_and(|d| d <= now) {
            // A receipt deadline: judge it on a fresh reading.
            agent_eval = Some(tokio::time::Instant::now());
        }
        if let Some(probe) = session.awaiting_echo()
            && screen.caught_up().text().contains(&probe)
        {
            session.set_echoed(Instant::now());
        }
        // Only an injection about to start needs the screen (for DECSET 2004).
        let bracketed = session.starting_injection() && screen.caught_up().bracketed_paste();
        let frames = session.step(Instant::now(), bracketed);
        out.send_all(frames).await;
        out.flush().await;

        if shutdown.is_some() {
            // An injection is one unit: the one typed already gets its Enter (and its record)
            // before the session ends, or a restarted broker would find it half-done.
            session.drain();
            let (limit, typing) = *finish_by.get_or_insert_with(|| {
                (
                    Instant::now() + FINISH_INJECTION,
                    session.injection_in_flight(),
                )
            });
            // Finished means entered and read: the program gets to take the message that was
            // being typed before its session is hung up.
            let unread = typing.then(|| pty.unread_input()).flatten();
            let finished = !session.injection_in_flight() && unread.is_none_or(|n| n == 0);
            if finished || !pty_open || Instant::now() >= limit {
                if typing {
                    tracing::info!(
                        finished,
                        ?unread,
                        "ending with the message that was being typed entered"
                    );
                }
                break;
            }
        }
        if exit_status.is_some() && !pty_open {
            break;
        }
    }

    // End the child's whole session: everything on a shutdown, the leftovers (background
    // jobs) when the child exited on its own.
    let grace = shutdown.unwrap_or(LEFTOVER_GRACE);
    let killed =
        tokio::task::spawn_blocking(move || crate::teardown::end_all(pid, cgroup.as_ref(), grace))
            .await
            .unwrap_or(0);
    if killed > 0 {
        tracing::warn!(killed, "processes ignored SIGHUP and were killed");
    }
    let status = match exit_status {
        Some(s) => s,
        None => tokio::time::timeout(Duration::from_secs(2), &mut pty.exit)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
    };
    // The last output held back for credit still goes to whoever watches.
    if !held.is_empty() {
        if flow.allowance().is_some() {
            out.output(screen.sent(), &held).await;
        }
        screen.feed(std::mem::take(&mut held));
    }
    let last = {
        let screen = screen.caught_up();
        crate::protocol::LastScreen {
            plain: screen.snapshot(SnapshotFormat::Plain),
            ansi: screen.snapshot(SnapshotFormat::Ansi),
        }
    };
    out.send(&frame(from_worker::LAST_SCREEN, &last)).await;
    out.send(&frame(from_worker::EXITED, &status)).await;
    out.flush().await;
    Ok(())
}

/// What decides whether a message may be typed now: the agent's state, a shell's
/// foreground job, the terminal's line mode.
fn gate_now(tracker: &agent::AgentTracker, fg: &agent::Foreground, pty: &Pty) -> session::Gate {
    session::Gate {
        state: tracker.state(),
        reason: tracker.report().reason.clone(),
        shell_job: match (fg, tracker.kind()) {
            (agent::Foreground::Job(name), "shell") => Some(name.clone()),
            _ => None,
        },
        canonical: pty.canonical(),
    }
}

fn worker_error(code: &str, message: impl Into<String>) -> Envelope {
    frame(from_worker::WORKER_ERROR, &ErrorBody::new(code, message))
}

async fn handle_line(
    line: &[u8],
    pty: &mut Pty,
    screen: &mut SharedScreen,
    session: &mut Session<PtyWriter>,
    tracker: &mut agent::AgentTracker,
    flow: &mut flow::Flow,
    out: &mut Out,
) -> Control {
    let env = match decode_envelope(line) {
        Ok(env) => env,
        Err(e) => {
            tracing::warn!("bad frame from broker: {e}");
            out.send(&worker_error(e.code(), e.to_string())).await;
            return Control::Continue;
        }
    };
    match env.kind.as_str() {
        to_worker::INPUT => {
            let bytes = decode_payload::<InputPayload>(&env)
                .map_err(|e| (e.code(), e.to_string()))
                .and_then(|p| p.bytes().map_err(|e| ("bad_payload", e)));
            match bytes {
                Ok(bytes) => {
                    if let Err(e) = session.input(bytes) {
                        out.send(&session::write_error(&e)).await;
                    }
                }
                Err((code, msg)) => out.send(&worker_error(code, msg)).await,
            }
        }
        to_worker::RESIZE => match decode_payload::<ResizePayload>(&env) {
            Ok(size) if let Err(why) = size.check() => {
                out.send(&worker_error(
                    "invalid_dimensions",
                    format!("cannot resize to {}x{}: {why}", size.rows, size.cols),
                ))
                .await
            }
            Ok(ResizePayload { rows, cols }) => {
                screen.caught_up().set_size(rows, cols);
                if let Err(e) = pty.resize(rows, cols) {
                    out.send(&worker_error("resize_failed", e.to_string()))
                        .await;
                }
            }
            Err(e) => out.send(&worker_error(e.code(), e.to_string())).await,
        },
        to_worker::HOOK => match decode_payload::<crate::protocol::HookPayload>(&env) {
            Ok(hook) => {
                tracing::info!(event = %hook.event, "agent hook");
                if let Some(prompt) = tracker.hook(&hook, Instant::now()) {
                    let frames = session.prompt_submitted(&prompt);
                    out.send_all(frames).await;
                }
            }
            Err(e) => out.send(&worker_error(e.code(), e.to_string())).await,
        },
        to_worker::WATCH => match decode_payload::<crate::protocol::WatchPayload>(&env) {
            Ok(w) => flow.watch(w.grant),
            Err(e) => out.send(&worker_error(e.code(), e.to_string())).await,
        },
        to_worker::UNWATCH => flow.unwatch(),
        to_worker::SHUTDOWN => {
            let grace = decode_payload::<ShutdownPayload>(&env)
                .map(|p| p.grace_ms)
                .unwrap_or_else(|_| protocol::default_grace_ms());
            return Control::Shutdown(Duration::from_millis(grace as u64));
        }
        other => match (RequestKind::from_type(other), env.request_id.as_deref()) {
            (Some(kind), Some(rid)) => {
                if kind == RequestKind::Flush {
                    // The human asked now: judge by the terminal as it is now. A job that
                    // ended without printing anything leaves the last gate stale.
                    session.set_gate(gate_now(tracker, &pty.foreground(), pty));
                }
                let frames = handle_request(kind, rid, &env, screen, session);
                out.send_all(frames).await;
            }
            (Some(kind), None) => {
                out.send(&worker_error(
                    "missing_request_id",
                    format!("{kind} is a request and needs a request_id"),
                ))
                .await
            }
            (None, _) => {
                out.send(&worker_error(
                    "unknown_type",
                    format!("unknown frame type {other:?}"),
                ))
                .await
            }
        },
    }
    Control::Continue
}

/// Answers one request. Every path returns exactly one `response` for `rid` — now, or (for
/// deliver/flush/set_mode that inject) later from [`Session::step`].
fn handle_request(
    kind: RequestKind,
    rid: &str,
    env: &Envelope,
    screen: &SharedScreen,
    session: &mut Session<PtyWriter>,
) -> Vec<Envelope> {
    let bad = |e: protocol::DecodeError| {
        vec![response_err(
            rid,
            kind.as_str(),
            ErrorBody::new("bad_payload", e.to_string()),
        )]
    };
    let ok = |v: serde_json::Value| vec![response_ok(rid, kind.as_str(), v)];
    match kind {
        RequestKind::Snapshot => match decode_payload::<SnapshotRequest>(env) {
            Ok(req) => {
                let mut snap = screen
                    .caught_up()
                    .snapshot_with_history(req.format, req.scrollback as usize);
                // The screen moves into the payload: `to_value` would deep-copy it.
                let body = std::mem::take(&mut snap.screen);
                let mut value = serde_json::to_value(&snap).expect("serializes");
                value["screen"] = body;
                ok(value)
            }
            Err(e) => bad(e),
        },
        RequestKind::GetMode => ok(json!({ "mode": session.mode() })),
        RequestKind::SetMode => match decode_payload::<SetMode>(env) {
            Ok(req) => session.set_mode(rid, req.mode),
            Err(e) => bad(e),
        },
        RequestKind::Pending => ok(serde_json::to_value(session.pending()).expect("serializes")),
        RequestKind::Flush => session.flush(rid),
        RequestKind::Deliver => match decode_payload::<RelayMessage>(env) {
            Ok(msg) => session.deliver(rid, msg),
            Err(e) => bad(e),
        },
    }
}
