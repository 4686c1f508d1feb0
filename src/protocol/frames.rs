//! Typed payloads of the fire-and-forget and unsolicited frames. Request kinds and their
//! payloads live in [`super::requests`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ErrorBody;

/// Frame type names, broker → worker.
pub mod to_worker {
    pub const INPUT: &str = "input";
    pub const RESIZE: &str = "resize";
    pub const SHUTDOWN: &str = "shutdown";
    /// An agent's own hook reported an event (forwarded by the broker from the API).
    pub const HOOK: &str = "hook";
    /// Someone watches the output: forward it, within the credit granted ([`WatchPayload`]).
    /// Sent again with a higher grant as the watchers consume what they got.
    pub const WATCH: &str = "watch";
    /// Nobody watches any more: stop forwarding output (it is still parsed).
    pub const UNWATCH: &str = "unwatch";
}

/// Frame type names, worker → broker.
pub mod from_worker {
    pub const READY: &str = "ready";
    pub const OUTPUT: &str = "output";
    pub const RESPONSE: &str = "response";
    pub const DELIVERY: &str = "delivery";
    pub const MODE_CHANGED: &str = "mode_changed";
    pub const EXITED: &str = "exited";
    /// Just before `exited`: the screen as the program left it (`LastScreen`).
    pub const LAST_SCREEN: &str = "last_screen";
    pub const WORKER_ERROR: &str = "worker_error";
    /// The worker's agent changed state.
    pub const AGENT_STATE: &str = "agent_state";
}

/// `input`: bytes for the PTY, as UTF-8 text or base64.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_b64: Option<String>,
}

impl InputPayload {
    /// The raw bytes this payload carries; exactly one of `data` / `data_b64` must be set.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        match (&self.data, &self.data_b64) {
            (Some(text), None) => Ok(text.as_bytes().to_vec()),
            (None, Some(b64)) => crate::b64::decode(b64).map_err(|e| format!("bad data_b64: {e}")),
            _ => Err("exactly one of \"data\" or \"data_b64\" is required".into()),
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => InputPayload {
                data: Some(text.to_string()),
                data_b64: None,
            },
            Err(_) => InputPayload {
                data: None,
                data_b64: Some(crate::b64::encode(bytes)),
            },
        }
    }
}

/// `watch`: the worker may forward output until it has forwarded `grant` bytes in all (counted
/// over every `output` frame it has sent since it started; the broker counts what it received
/// the same way). Out of credit, the worker stops reading its PTY and the child blocks, as on
/// a slow terminal.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WatchPayload {
    pub grant: u64,
}

/// `resize`: new PTY size. Zero in either dimension is answered with `invalid_dimensions`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResizePayload {
    pub rows: u16,
    pub cols: u16,
}

impl ResizePayload {
    /// Both sides within `1..=MAX_DIMENSION`.
    pub fn check(&self) -> Result<(), String> {
        super::check_dimension("rows", self.rows)?;
        super::check_dimension("cols", self.cols).map(drop)
    }
}

/// `shutdown`: SIGHUP the child's session, wait `grace_ms`, SIGKILL what is left, exit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ShutdownPayload {
    #[serde(default = "default_grace_ms")]
    pub grace_ms: u32,
}

pub fn default_grace_ms() -> u32 {
    500
}

/// `ready`: the worker's first frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReadyPayload {
    pub pid: u32,
    pub rows: u16,
    pub cols: u16,
    pub protocol: u32,
    /// The cgroup the child runs in, if it has one of its own (the broker kills it if the
    /// worker dies first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<std::path::PathBuf>,
}

/// `output`: PTY bytes; `offset` is the count of PTY bytes sent before this chunk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutputPayload {
    pub offset: u64,
    pub data_b64: String,
}

/// `response`: the answer to the request with the envelope's `request_id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResponsePayload {
    pub kind: String,
    pub ok: Option<Value>,
    pub error: Option<ErrorBody>,
}

/// State of a relay message inside a worker.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Held: in the pending queue, or waiting for a safe moment (the reason says which).
    Queued,
    /// Text and Enter typed.
    Injected,
    /// Evidence that the program took it: its hook saw the prompt, or its screen did.
    Submitted,
    /// Typed, but no evidence arrived in time (Enter re-sent at most once; never retyped).
    Unconfirmed,
    /// Could not be typed (PTY gone, line too long); the broker keeps it.
    Failed,
    /// Given up on by a user.
    Dropped,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Injected => "injected",
            DeliveryState::Submitted => "submitted",
            DeliveryState::Unconfirmed => "unconfirmed",
            DeliveryState::Failed => "failed",
            DeliveryState::Dropped => "dropped",
        }
    }

    /// Whether the message is settled: nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Submitted | DeliveryState::Unconfirmed | DeliveryState::Dropped
        )
    }
}

/// `delivery`: a relay message changed state after its `deliver` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryPayload {
    pub id: String,
    pub state: DeliveryState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A worker's session mode: whether inbound relay messages are injected or held.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// Inbound messages are injected as they arrive (the default).
    #[default]
    Relay,
    /// A human is typing: inbound messages wait in the pending queue.
    Human,
}

impl SessionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionMode::Relay => "relay",
            SessionMode::Human => "human",
        }
    }
}

impl std::str::FromStr for SessionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "relay" => Ok(SessionMode::Relay),
            "human" => Ok(SessionMode::Human),
            other => Err(format!("unknown mode {other:?} (expected relay or human)")),
        }
    }
}

/// `mode_changed`: the worker's session mode changed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModeChangedPayload {
    pub mode: SessionMode,
    pub previous: SessionMode,
}

/// `exited`: the child exited; the worker's last frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ExitedPayload {
    pub code: Option<i32>,
    pub signal: Option<String>,
}

impl ExitedPayload {
    /// True for anything but a clean `exit 0`.
    pub fn is_abnormal(&self) -> bool {
        self.code != Some(0)
    }
}

impl std::fmt::Display for ExitedPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.code, &self.signal) {
            (_, Some(sig)) => write!(f, "killed by {sig}"),
            (Some(code), None) => write!(f, "exit {code}"),
            (None, None) => write!(f, "exited"),
        }
    }
}

/// What an agent is doing, as far as the worker can tell.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Spawned; has not yet shown that it takes input.
    #[default]
    Starting,
    /// Busy: generating, running a tool, a shell running a foreground job.
    Working,
    /// Waiting for the next prompt, its input empty.
    Idle,
    /// Waiting on the human: a permission or choice dialog, a question.
    Blocked,
    /// The program ended.
    Exited,
    /// No evidence either way.
    Unknown,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Starting => "starting",
            AgentState::Working => "working",
            AgentState::Idle => "idle",
            AgentState::Blocked => "blocked",
            AgentState::Exited => "exited",
            AgentState::Unknown => "unknown",
        }
    }
}

impl std::str::FromStr for AgentState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "starting" => AgentState::Starting,
            "working" => AgentState::Working,
            "idle" => AgentState::Idle,
            "blocked" => AgentState::Blocked,
            "exited" => AgentState::Exited,
            "unknown" => AgentState::Unknown,
            other => {
                return Err(format!(
                    "unknown agent state {other:?} (expected starting, working, idle, blocked, exited or unknown)"
                ));
            }
        })
    }
}

/// Where a state came from, best evidence first.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum AgentSource {
    Hook,
    #[default]
    Screen,
    Pty,
    Silence,
}

/// `agent_state` (worker → broker) and the `agent` object of the API: what the agent is doing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AgentReport {
    pub kind: String,
    pub state: AgentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<AgentState>,
    /// When the agent entered this state (ms since the Unix epoch).
    pub since_ms: u64,
    pub source: AgentSource,
    /// One sentence a person can check.
    pub reason: String,
}

/// `hook` (broker → worker): an event the agent's own hook reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HookPayload {
    /// The hook's event name (`UserPromptSubmit`, `Stop`, `Notification`, …).
    pub event: String,
    /// What the agent passed to the hook on stdin.
    #[serde(default)]
    pub data: Value,
}

/// `last_screen` (worker → broker, before `exited`): the screen the program left, so a dead
/// pane still shows why it ended — also to a client that arrives after its worker is gone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastScreen {
    pub plain: crate::protocol::requests::snapshot::Snapshot,
    pub ansi: crate::protocol::requests::snapshot::Snapshot,
}

impl LastScreen {
    /// Whether a request of `kind` can be answered by a dead worker's screen at all (only
    /// those need their payload kept while in flight).
    pub fn may_answer(kind: crate::protocol::requests::RequestKind) -> bool {
        kind == crate::protocol::requests::RequestKind::Snapshot
    }

    /// The answer a dead worker gives to a request: a snapshot in one of the two formats
    /// kept is the screen its program left; anything else has no answer.
    pub fn answer(
        &self,
        kind: crate::protocol::requests::RequestKind,
        payload: &Value,
    ) -> Option<Value> {
        use crate::protocol::requests::snapshot::SnapshotFormat;
        if !Self::may_answer(kind) {
            return None;
        }
        let format = payload
            .get("format")
            .and_then(|f| SnapshotFormat::deserialize(f).ok())?;
        let snap = match format {
            SnapshotFormat::Plain => &self.plain,
            SnapshotFormat::Ansi => &self.ansi,
            SnapshotFormat::Cells => return None,
        };
        Some(serde_json::to_value(snap).expect("a snapshot serializes"))
    }
}
