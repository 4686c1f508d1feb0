//! The worker's session: its mode, the pending queue of relay messages, and the injector
//! that types messages into the PTY one at a time.
//!
//! An injection is: the rendered message (as a bracketed paste when the program enabled
//! DECSET 2004), a settle delay, then Enter (`\r`). While an injection is under way, `input`
//! bytes from the broker are held and written right after its Enter, so a human's keystrokes
//! never land inside a message. This type is a plain state machine: the worker's loop feeds it
//! requests, input and the clock, and sends the frames it returns.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::protocol::{
    DeliveryPayload, DeliveryState, Envelope, ErrorBody, ModeChangedPayload, SessionMode, frame,
    from_worker, response_err, response_ok,
};
use crate::requests::RequestKind;
use crate::requests::deliver::{Delivered, RelayMessage};
use crate::requests::pending::{PendingEntry, PendingList};

/// Most messages a worker holds (pending plus waiting to be injected).
pub const QUEUE_LIMIT: usize = 1024;
pub const DEFAULT_TEMPLATE: &str = "Relay message from {from} [{id}]: {body}";
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(30);

const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

/// Where injected bytes go: the PTY writer in the worker, a buffer in tests.
pub trait PtySink {
    fn write(&mut self, bytes: Vec<u8>) -> Result<(), String>;
}

#[derive(Debug, Clone)]
struct Queued {
    msg: RelayMessage,
    queued_at_ms: u64,
}

/// What to do when an injection completes.
#[derive(Debug, Clone)]
enum Completion {
    /// Answer this `deliver` request with `injected`.
    DeliverResponse(String),
    /// The message had been answered `queued`: send a `delivery` frame.
    DeliveryFrame,
    /// One of a flush's messages; the group answers when its last one is in.
    Group(u64),
}

#[derive(Debug)]
struct Injection {
    item: Queued,
    completion: Completion,
}

/// A flush (or a `human → relay` switch) waiting for its messages to be injected.
struct Group {
    request_id: String,
    kind: RequestKind,
    remaining: usize,
    total: usize,
    previous: SessionMode,
}

pub struct Session<S: PtySink> {
    sink: S,
    mode: SessionMode,
    template: String,
    settle: Duration,
    pending: VecDeque<Queued>,
    line: VecDeque<Injection>,
    /// The injection whose paste is written and whose Enter is due at the instant.
    current: Option<(Injection, Instant)>,
    held_input: Vec<u8>,
    groups: HashMap<u64, Group>,
    next_group: u64,
    /// Recently delivered message ids and whether each was injected: a message delivered
    /// again (the broker retrying after a lost answer) is answered from here, never
    /// injected twice.
    seen: HashMap<String, bool>,
    seen_order: VecDeque<String>,
    /// Where the id of every message is written (and fsynced) *before* it is typed, so a
    /// worker that dies mid-injection leaves a record its successor's broker can check.
    inject_log: Option<std::fs::File>,
}

/// How many message ids a worker remembers for de-duplication.
const SEEN_LIMIT: usize = 8192;

impl<S: PtySink> Session<S> {
    pub fn new(sink: S, mode: SessionMode, template: String, settle: Duration) -> Self {
        Session {
            sink,
            mode,
            template,
            settle,
            pending: VecDeque::new(),
            line: VecDeque::new(),
            current: None,
            held_input: Vec::new(),
            groups: HashMap::new(),
            next_group: 0,
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
            inject_log: None,
        }
    }

    /// Records injected message ids in `file` (see [`crate::worker::inject_log`]).
    pub fn with_inject_log(mut self, file: std::fs::File) -> Self {
        self.inject_log = Some(file);
        self
    }

    pub fn mode(&self) -> SessionMode {
        self.mode
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    fn held(&self) -> usize {
        self.pending.len() + self.line.len() + usize::from(self.current.is_some())
    }

    /// Bytes from the broker for the PTY: written now, or held until the injection under way
    /// has sent its Enter.
    pub fn input(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        if self.current.is_some() {
            self.held_input.extend_from_slice(&bytes);
            Ok(())
        } else {
            self.sink.write(bytes)
        }
    }

    pub fn deliver(&mut self, request_id: &str, msg: RelayMessage) -> Vec<Envelope> {
        let kind = RequestKind::Deliver.as_str();
        if let Some(&injected) = self.seen.get(&msg.id) {
            let state = if injected {
                DeliveryState::Injected
            } else {
                DeliveryState::Queued
            };
            let ok = serde_json::to_value(Delivered { state }).expect("serializes");
            return vec![response_ok(request_id, kind, ok)];
        }
        if self.held() >= QUEUE_LIMIT {
            return vec![response_err(
                request_id,
                kind,
                ErrorBody::new(
                    "queue_full",
                    format!("worker already holds {QUEUE_LIMIT} messages"),
                ),
            )];
        }
        self.remember(&msg.id, false);
        let item = Queued {
            msg,
            queued_at_ms: crate::protocol::now_ms(),
        };
        match self.mode {
            SessionMode::Human => {
                self.pending.push_back(item);
                vec![queued_response(request_id)]
            }
            SessionMode::Relay if self.current.is_none() && self.line.is_empty() => {
                self.line.push_back(Injection {
                    item,
                    completion: Completion::DeliverResponse(request_id.to_string()),
                });
                Vec::new()
            }
            SessionMode::Relay => {
                self.line.push_back(Injection {
                    item,
                    completion: Completion::DeliveryFrame,
                });
                vec![queued_response(request_id)]
            }
        }
    }

    pub fn pending(&self) -> PendingList {
        PendingList {
            pending: self
                .pending
                .iter()
                .map(|q| PendingEntry {
                    id: q.msg.id.clone(),
                    from: q.msg.from.clone(),
                    body: q.msg.body.clone(),
                    sent_at_ms: q.msg.sent_at_ms,
                    queued_at_ms: q.queued_at_ms,
                })
                .collect(),
        }
    }

    pub fn flush(&mut self, request_id: &str) -> Vec<Envelope> {
        self.start_group(request_id, RequestKind::Flush, self.mode)
    }

    pub fn set_mode(&mut self, request_id: &str, mode: SessionMode) -> Vec<Envelope> {
        let previous = self.mode;
        let mut frames = Vec::new();
        if previous != mode {
            self.mode = mode;
            frames.push(frame(
                from_worker::MODE_CHANGED,
                &ModeChangedPayload { mode, previous },
            ));
        }
        if previous == SessionMode::Human && mode == SessionMode::Relay {
            frames.extend(self.start_group(request_id, RequestKind::SetMode, previous));
        } else {
            frames.push(response_ok(
                request_id,
                RequestKind::SetMode.as_str(),
                json!({"mode": mode, "previous": previous, "flushed": 0}),
            ));
        }
        frames
    }

    fn start_group(
        &mut self,
        request_id: &str,
        kind: RequestKind,
        previous: SessionMode,
    ) -> Vec<Envelope> {
        let total = self.pending.len();
        if total == 0 {
            return vec![group_reply(request_id, kind, self.mode, previous, 0)];
        }
        let group = self.next_group;
        self.next_group += 1;
        self.groups.insert(
            group,
            Group {
                request_id: request_id.to_string(),
                kind,
                remaining: total,
                total,
                previous,
            },
        );
        // Pending messages go ahead of anything already waiting: they arrived first.
        for item in self.pending.drain(..).rev() {
            self.line.push_front(Injection {
                item,
                completion: Completion::Group(group),
            });
        }
        Vec::new()
    }

    /// Whether the next [`step`](Self::step) may start an injection (and so needs the
    /// program's bracketed-paste state): one finishing can hand over to the next.
    pub fn starting_injection(&self) -> bool {
        !self.line.is_empty()
    }

    /// When the next step is due (an Enter to send), if an injection is under way.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.current.as_ref().map(|(_, due)| *due)
    }

    /// Advances the injector: sends a due Enter, then starts the next injection if idle.
    /// `bracketed` is the program's current DECSET 2004 state.
    pub fn step(&mut self, now: Instant, bracketed: bool) -> Vec<Envelope> {
        let mut frames = Vec::new();
        loop {
            if let Some((_, due)) = &self.current {
                if *due > now {
                    return frames;
                }
                let (injection, _) = self.current.take().expect("checked above");
                match self.sink.write(b"\r".to_vec()) {
                    Ok(()) => frames.extend(self.completed(injection)),
                    Err(e) => frames.extend(self.failed(injection, e)),
                }
                if !self.held_input.is_empty() {
                    let held = std::mem::take(&mut self.held_input);
                    if let Err(e) = self.sink.write(held) {
                        frames.push(write_error(&e));
                    }
                }
            }
            let Some(injection) = self.line.pop_front() else {
                return frames;
            };
            if let Some(log) = &mut self.inject_log {
                use std::io::Write;
                let id = &injection.item.msg.id;
                if let Err(e) = writeln!(log, "{id}").and_then(|_| log.sync_data()) {
                    tracing::warn!("could not record injection of {id}: {e}");
                }
            }
            let text = self.render(&injection.item.msg);
            let mut bytes = Vec::with_capacity(text.len() + 12);
            if bracketed {
                bytes.extend_from_slice(PASTE_START);
                bytes.extend_from_slice(text.as_bytes());
                bytes.extend_from_slice(PASTE_END);
            } else {
                bytes.extend_from_slice(text.as_bytes());
            }
            match self.sink.write(bytes) {
                Ok(()) => self.current = Some((injection, now + self.settle)),
                Err(e) => frames.extend(self.failed(injection, e)),
            }
        }
    }

    /// The template filled in. Control characters other than newline and tab are dropped from
    /// the message so a body cannot end the paste early or type keys (Ctrl-C, escapes).
    fn render(&self, msg: &RelayMessage) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
                .collect()
        };
        self.template
            .replace("{from}", &clean(&msg.from))
            .replace("{id}", &clean(&msg.id))
            .replace("{body}", &clean(&msg.body))
    }

    fn remember(&mut self, id: &str, injected: bool) {
        if self.seen.insert(id.to_string(), injected).is_none() {
            self.seen_order.push_back(id.to_string());
            if self.seen_order.len() > SEEN_LIMIT
                && let Some(old) = self.seen_order.pop_front()
            {
                self.seen.remove(&old);
            }
        }
    }

    fn completed(&mut self, injection: Injection) -> Vec<Envelope> {
        let id = injection.item.msg.id.clone();
        self.remember(&id, true);
        match injection.completion {
            Completion::DeliverResponse(rid) => vec![response_ok(
                &rid,
                RequestKind::Deliver.as_str(),
                serde_json::to_value(Delivered {
                    state: DeliveryState::Injected,
                })
                .expect("serializes"),
            )],
            Completion::DeliveryFrame => vec![delivery(&id, DeliveryState::Injected, None)],
            Completion::Group(g) => {
                let mut frames = vec![delivery(&id, DeliveryState::Injected, None)];
                let group = self.groups.get_mut(&g).expect("group exists while queued");
                group.remaining -= 1;
                if group.remaining == 0 {
                    let group = self.groups.remove(&g).expect("present");
                    frames.push(group_reply(
                        &group.request_id,
                        group.kind,
                        self.mode,
                        group.previous,
                        group.total,
                    ));
                }
                frames
            }
        }
    }

    /// An injection could not be written (the PTY is gone or broken). A flush stops here:
    /// this message and the rest of its group go back to the pending queue, in order.
    fn failed(&mut self, injection: Injection, error: String) -> Vec<Envelope> {
        let reason = format!("could not write to the PTY: {error}");
        let id = injection.item.msg.id.clone();
        // Not injected: a later delivery of it may try again.
        self.seen.remove(&id);
        match injection.completion {
            Completion::DeliverResponse(rid) => vec![response_err(
                &rid,
                RequestKind::Deliver.as_str(),
                ErrorBody::new("inject_failed", reason),
            )],
            Completion::DeliveryFrame => vec![delivery(&id, DeliveryState::Failed, Some(reason))],
            Completion::Group(g) => {
                let group = self.groups.remove(&g).expect("group exists while queued");
                let mut back = vec![injection.item];
                let mut rest = VecDeque::new();
                for inj in self.line.drain(..) {
                    match inj.completion {
                        Completion::Group(x) if x == g => back.push(inj.item),
                        _ => rest.push_back(inj),
                    }
                }
                self.line = rest;
                for item in back.into_iter().rev() {
                    self.pending.push_front(item);
                }
                if group.kind == RequestKind::SetMode {
                    self.mode = group.previous;
                }
                let injected = group.total - group.remaining;
                vec![response_err(
                    &group.request_id,
                    group.kind.as_str(),
                    ErrorBody::new(
                        "inject_failed",
                        format!("{reason}; {injected} injected, the rest kept queued"),
                    ),
                )]
            }
        }
    }
}

fn queued_response(request_id: &str) -> Envelope {
    response_ok(
        request_id,
        RequestKind::Deliver.as_str(),
        serde_json::to_value(Delivered {
            state: DeliveryState::Queued,
        })
        .expect("serializes"),
    )
}

fn group_reply(
    request_id: &str,
    kind: RequestKind,
    mode: SessionMode,
    previous: SessionMode,
    flushed: usize,
) -> Envelope {
    let ok = match kind {
        RequestKind::SetMode => json!({"mode": mode, "previous": previous, "flushed": flushed}),
        _ => json!({ "flushed": flushed }),
    };
    response_ok(request_id, kind.as_str(), ok)
}

fn delivery(id: &str, state: DeliveryState, reason: Option<String>) -> Envelope {
    frame(
        from_worker::DELIVERY,
        &DeliveryPayload {
            id: id.to_string(),
            state,
            reason,
        },
    )
}

pub fn write_error(e: &str) -> Envelope {
    frame(
        from_worker::WORKER_ERROR,
        &ErrorBody::new("pty_write_failed", e.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Buf {
        bytes: Vec<u8>,
        fail: bool,
    }
    impl PtySink for Buf {
        fn write(&mut self, bytes: Vec<u8>) -> Result<(), String> {
            if self.fail {
                return Err("closed".into());
            }
            self.bytes.extend(bytes);
            Ok(())
        }
    }

    fn msg(id: &str, body: &str) -> RelayMessage {
        RelayMessage {
            id: id.into(),
            from: "alice".into(),
            to: "bob".into(),
            body: body.into(),
            sent_at_ms: 1,
        }
    }

    fn session(mode: SessionMode) -> Session<Buf> {
        Session::new(
            Buf::default(),
            mode,
            DEFAULT_TEMPLATE.into(),
            Duration::from_millis(10),
        )
    }

    fn run_until_idle(s: &mut Session<Buf>, bracketed: bool) -> Vec<Envelope> {
        let mut frames = Vec::new();
        let mut now = Instant::now();
        for _ in 0..100 {
            frames.extend(s.step(now, bracketed));
            match s.next_deadline() {
                Some(d) => now = d,
                None => break,
            }
        }
        frames
    }

    #[test]
    fn relay_mode_injects_and_answers_after_enter() {
        let mut s = session(SessionMode::Relay);
        assert!(s.deliver("r1", msg("m1", "hi")).is_empty());
        let frames = run_until_idle(&mut s, false);
        assert_eq!(
            String::from_utf8(s.sink.bytes.clone()).unwrap(),
            "Relay message from alice [m1]: hi\r"
        );
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].request_id.as_deref(), Some("r1"));
        assert_eq!(frames[0].payload["ok"]["state"], "injected");
    }

    #[test]
    fn input_during_injection_waits_for_enter() {
        let mut s = session(SessionMode::Relay);
        s.deliver("r1", msg("m1", "hi"));
        s.step(Instant::now(), true);
        s.input(b"typed".to_vec()).unwrap();
        run_until_idle(&mut s, true);
        assert_eq!(
            String::from_utf8(s.sink.bytes.clone()).unwrap(),
            "\x1b[200~Relay message from alice [m1]: hi\x1b[201~\rtyped"
        );
    }

    #[test]
    fn human_mode_queues_then_flush_injects_in_order() {
        let mut s = session(SessionMode::Human);
        assert_eq!(
            s.deliver("r1", msg("m1", "one"))[0].payload["ok"]["state"],
            "queued"
        );
        s.deliver("r2", msg("m2", "two"));
        assert_eq!(s.pending().pending.len(), 2);
        assert!(s.flush("f").is_empty());
        let frames = run_until_idle(&mut s, false);
        let text = String::from_utf8(s.sink.bytes.clone()).unwrap();
        assert!(text.find("one").unwrap() < text.find("two").unwrap());
        let last = frames.last().unwrap();
        assert_eq!(last.request_id.as_deref(), Some("f"));
        assert_eq!(last.payload["ok"]["flushed"], 2);
        assert!(s.pending().pending.is_empty());
    }

    #[test]
    fn human_to_relay_flushes_first() {
        let mut s = session(SessionMode::Human);
        s.deliver("r1", msg("m1", "one"));
        let frames = s.set_mode("s", SessionMode::Relay);
        assert_eq!(frames[0].kind, "mode_changed");
        let frames = run_until_idle(&mut s, false);
        let last = frames.last().unwrap();
        assert_eq!(last.payload["ok"]["flushed"], 1);
        assert_eq!(last.payload["ok"]["previous"], "human");
    }

    #[test]
    fn full_queue_is_an_error_not_a_drop() {
        let mut s = session(SessionMode::Human);
        for i in 0..QUEUE_LIMIT {
            s.deliver(&format!("r{i}"), msg(&format!("m{i}"), "x"));
        }
        let frames = s.deliver("over", msg("over", "x"));
        assert_eq!(frames[0].payload["error"]["code"], "queue_full");
        assert_eq!(s.pending().pending.len(), QUEUE_LIMIT);
    }

    #[test]
    fn failed_flush_keeps_messages_queued_in_order() {
        let mut s = session(SessionMode::Human);
        s.deliver("r1", msg("m1", "one"));
        s.deliver("r2", msg("m2", "two"));
        s.sink.fail = true;
        s.flush("f");
        let frames = run_until_idle(&mut s, false);
        assert_eq!(frames[0].payload["error"]["code"], "inject_failed");
        let ids: Vec<_> = s.pending().pending.into_iter().map(|p| p.id).collect();
        assert_eq!(ids, ["m1", "m2"]);
    }

    #[test]
    fn a_message_delivered_twice_is_injected_once() {
        let mut s = session(SessionMode::Relay);
        s.deliver("r1", msg("m1", "once"));
        run_until_idle(&mut s, false);
        let again = s.deliver("r2", msg("m1", "once"));
        assert_eq!(again[0].payload["ok"]["state"], "injected");
        run_until_idle(&mut s, false);
        let text = String::from_utf8(s.sink.bytes.clone()).unwrap();
        assert_eq!(text.matches("once").count(), 1, "{text:?}");
        // Still queued: a repeat is answered "queued" and not queued twice.
        let mut h = session(SessionMode::Human);
        h.deliver("r1", msg("m2", "x"));
        assert_eq!(
            h.deliver("r2", msg("m2", "x"))[0].payload["ok"]["state"],
            "queued"
        );
        assert_eq!(h.pending().pending.len(), 1);
    }

    #[test]
    fn control_characters_are_stripped_from_bodies() {
        let mut s = session(SessionMode::Relay);
        s.deliver("r1", msg("m1", "a\x1b[201~\x03b\nc"));
        run_until_idle(&mut s, true);
        let text = String::from_utf8(s.sink.bytes.clone()).unwrap();
        assert!(text.contains("a[201~b\nc"), "{text:?}");
    }
}
